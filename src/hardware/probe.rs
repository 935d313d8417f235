//! Runs every probe and assembles a `Snapshot`. A missing source is a note, never a failure.

use super::engine_gpus::{self, EngineGpu};
use super::{adapters, cpu, disk, nvidia, ram, sysfs, Snapshot};
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Where models live: its filesystem's free space is reported.
    pub models_dir: PathBuf,
    /// Where layerfit gets installed (`$CARGO_HOME/bin`).
    pub install_dir: PathBuf,
    /// Measure (or reuse this boot's cached) CPU memory bandwidth.
    pub bandwidth: bool,
    pub cache_dir: PathBuf,
    /// Enumerate graphics adapters through wgpu (tens of ms warm, more cold).
    pub adapters: bool,
    /// Ask the built engine which devices it can offload to (and so which GPUs count).
    pub engine: bool,
    /// Plan onto software Vulkan devices (llvmpipe) too (`--software-gpu`).
    pub software_gpu: bool,
    pub sys_root: PathBuf,
    pub cgroup_root: PathBuf,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache"));
        ProbeOptions {
            models_dir: crate::env_vars::path("LAYERFIT_MODELS")
                .unwrap_or_else(|| cache.join("layerfit/models")),
            install_dir: std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".cargo"))
                .join("bin"),
            bandwidth: true,
            cache_dir: cache.join("layerfit"),
            adapters: true,
            engine: true,
            software_gpu: false,
            sys_root: PathBuf::from("/sys"),
            cgroup_root: PathBuf::from(ram::CGROUP_ROOT),
        }
    }
}

pub fn probe(opts: &ProbeOptions) -> Snapshot {
    let mut notes = Vec::new();
    let ram = ram::read(&opts.cgroup_root, &mut notes);
    let mut gpus = nvidia::probe(&mut notes);
    gpus.extend(sysfs::probe(&opts.sys_root, &mut notes));
    let adapters = if opts.adapters {
        adapters::probe(&mut notes)
    } else {
        Vec::new()
    };
    if opts.engine {
        if opts.software_gpu {
            engine_gpus::expose_software_devices(&adapters);
        }
        let devices: Vec<EngineGpu> = crate::engine::devices()
            .into_iter()
            .map(|d| EngineGpu {
                name: d.name,
                description: d.description,
                integrated: d.integrated,
                total: d.memory_total,
                free: d.memory_free,
            })
            .collect();
        let built = cfg!(any(
            feature = "cuda",
            feature = "vulkan",
            feature = "metal",
            feature = "rocm"
        ));
        engine_gpus::merge(
            &mut gpus,
            &devices,
            &adapters,
            opts.software_gpu,
            built,
            &mut notes,
        );
        if opts.software_gpu && !gpus.iter().any(|g| g.software) {
            notes.push(if cfg!(feature = "vulkan") {
                "--software-gpu: no software Vulkan device here (Mesa's mesa-vulkan-drivers provides lavapipe)".to_string()
            } else {
                "--software-gpu: this build's engine has no Vulkan backend, so nothing can run on a software device (build with --features vulkan)".to_string()
            });
        }
        // The opt-in makes a planned GPU of what the adapter list calls a software renderer.
        for g in gpus.iter().filter(|g| g.software) {
            notes.retain(|n| !(n.starts_with(&g.name) && n.contains("not a GPU")));
        }
        if cfg!(feature = "vulkan") && !opts.software_gpu && gpus.is_empty() {
            if let Some(a) = adapters
                .iter()
                .find(|a| a.software && a.backend == "vulkan")
            {
                notes.push(format!(
                    "{} can run this build's Vulkan engine on the CPU: --software-gpu plans onto it (for testing; no faster than the CPU)",
                    a.name
                ));
            }
        }
    }
    if gpus.is_empty() {
        let software_only = !adapters.is_empty() && adapters.iter().all(|a| a.software);
        notes.push(if software_only {
            "no GPU with its own memory: only software renderers; plans are CPU-only".to_string()
        } else {
            "no GPU found: plans are CPU-only".to_string()
        });
    }
    let disk = disk::probe(&opts.models_dir, &mut notes);
    let install_disk = disk::probe(&opts.install_dir, &mut notes);
    let mut cpu = cpu::probe();
    cpu.memory_bandwidth_gbps = cpu::bandwidth_cached(&opts.cache_dir, opts.bandwidth);
    // A software device computes on this CPU and reads this RAM.
    for g in gpus.iter_mut().filter(|g| g.software) {
        g.bandwidth_gbps = cpu.memory_bandwidth_gbps;
        g.fp16_tflops = cpu.peak_flops().map(|f| f / 1e12);
    }
    super::Snapshot {
        ram,
        gpus,
        adapters,
        disk,
        install_disk,
        cpu,
        source: "probe".into(),
        notes,
    }
}
