//! `layerfit hardware`: what this machine (or a described one) has.

use super::output::{self, Printer};
use super::{exit, Failure};
use crate::bytes::Bytes;
use crate::hardware::probe::{probe, ProbeOptions};
use crate::hardware::target::{self, CpuFlags};
use crate::hardware::whatif::{
    amend, parse_description, parse_nonzero_size, Amendments, Description, DescriptionError,
};
use crate::hardware::Snapshot;
use std::path::PathBuf;

/// Flags that replace or amend the probe; shared by every command that takes hardware.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HardwareArgs {
    /// Describe the machine in a YAML file instead of probing [env: LAYERFIT_HARDWARE; empty = unset].
    #[arg(long)]
    pub hardware: Option<PathBuf>,
    /// Total RAM with a unit, e.g. 16G (replaces the probed figure).
    #[arg(long, allow_hyphen_values = true, value_parser = parse_nonzero_size)]
    pub ram: Option<u64>,
    /// VRAM of a GPU with a unit, e.g. 8G; repeat once per GPU.
    #[arg(long, allow_hyphen_values = true, value_parser = parse_nonzero_size)]
    pub vram: Vec<u64>,
    /// A GPU from profiles/gpus.yaml, e.g. "RTX 3060"; repeatable; replaces probed GPUs.
    #[arg(long)]
    pub gpu: Vec<String>,
    /// Plan as if there were no GPU.
    #[arg(long)]
    pub no_gpu: bool,
    /// The CPU's physical cores (describes the CPU: this host's calibration and load no
    /// longer apply) [default for a described machine: 4].
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_cores: Option<String>,
    /// The CPU's memory read bandwidth in GB/s (describes the CPU) [default for a described
    /// machine: 51.2, dual-channel DDR4-3200].
    #[arg(long, value_name = "GB/s", allow_hyphen_values = true)]
    pub cpu_bandwidth: Option<String>,
    /// Where models are kept; it must exist (its filesystem's free space is reported)
    /// [env: LAYERFIT_MODELS; default ~/.cache/layerfit/models].
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Count software Vulkan devices (Mesa's llvmpipe) as GPUs: a Vulkan build then offloads
    /// to them. They compute on the CPU: for testing the GPU path, never faster
    /// [env: LAYERFIT_SOFTWARE_GPU=1].
    #[arg(long)]
    pub software_gpu: bool,
    /// Other machines' devices over llama.cpp's RPC back-end: HOST:PORT[,HOST:PORT...] of
    /// running `layerfit rpc-server` (or llama.cpp `ggml-rpc-server`) processes. Their devices
    /// come first in the device order, as in llama.cpp (docs/rpc.md).
    #[arg(long, value_parser = parse_rpc_list)]
    pub rpc: Option<RpcList>,
}

/// `--rpc`'s servers, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RpcList(pub Vec<crate::rpc::endpoint::Endpoint>);

fn parse_rpc_list(s: &str) -> Result<RpcList, String> {
    crate::rpc::endpoint::Endpoint::parse_list(s)
        .map(RpcList)
        .map_err(|e| e.to_string())
}

/// Asks each server for its devices (bounded by `LAYERFIT_NET_TIMEOUT`, default 30 s) and
/// puts them first in the snapshot's device list.
fn add_remote_devices(snap: &mut Snapshot, list: &RpcList) -> Result<(), Failure> {
    if snap.gpus.iter().any(|g| g.remote.is_some()) {
        return Err(Failure::BadInput(
            "--rpc and the description's rpc: both name remote hosts: use one".into(),
        ));
    }
    if !crate::engine::rpc::available() {
        return Err(Failure::BadInput(
            "--rpc: this build of layerfit has no RPC back-end (build with GGML_RPC=ON, as .cargo/config.toml does)".into(),
        ));
    }
    let timeout = crate::env_vars::net_timeout();
    let mut infos = Vec::new();
    for e in &list.0 {
        infos.push(
            crate::rpc::client::probe(e, timeout).map_err(|x| Failure::BadInput(x.to_string()))?,
        );
    }
    let remote = crate::rpc::hosts::connected(&infos);
    snap.gpus.splice(0..0, remote);
    // The probe's "no GPU" notes are about this machine; the plan now has devices.
    snap.notes.retain(|n| !n.starts_with("no GPU"));
    snap.source = format!("{}+rpc", snap.source);
    Ok(())
}

impl HardwareArgs {
    /// The snapshot these flags ask for: described, probed, and/or amended.
    pub fn snapshot(&self) -> Result<Snapshot, Failure> {
        let cpu_flags = self.cpu_flags()?;
        let mut opts = ProbeOptions::default();
        if let Some(d) = &self.models_dir {
            opts.models_dir = d.clone();
        }
        check_models_dir(&opts.models_dir, self.models_dir.is_some())?;
        opts.software_gpu = self.software_gpu();
        let mut snap = match &self.hardware_file() {
            Some(path) => {
                let in_file = |e: DescriptionError| Failure::input_in(path.display(), e);
                let text = crate::hardware::whatif::read_bounded(path)
                    .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?;
                let d: Description = parse_description(&text).map_err(in_file)?;
                target::described(&d, &format!("file:{}", path.display()), &cpu_flags)
                    .map_err(in_file)?
            }
            None => probe(&opts),
        };
        let a = Amendments {
            ram: self.ram,
            vram: self.vram.clone(),
            gpus: self.gpu.clone(),
            no_gpu: self.no_gpu,
        };
        amend(&mut snap, &a).map_err(Failure::input)?;
        target::settle_probe(&mut snap, &cpu_flags);
        if let Some(list) = &self.rpc {
            add_remote_devices(&mut snap, list)?;
        }
        Ok(snap)
    }

    /// `--cpu-cores` and `--cpu-bandwidth`, validated (bad input: one line, exit 2).
    pub fn cpu_flags(&self) -> Result<CpuFlags, Failure> {
        Ok(CpuFlags {
            cores: self
                .cpu_cores
                .as_deref()
                .map(target::parse_cores)
                .transpose()
                .map_err(Failure::BadInput)?,
            bandwidth_gbps: self
                .cpu_bandwidth
                .as_deref()
                .map(target::parse_bandwidth)
                .transpose()
                .map_err(Failure::BadInput)?,
        })
    }

    /// `--software-gpu`, or `LAYERFIT_SOFTWARE_GPU` set to a true value.
    pub fn software_gpu(&self) -> bool {
        self.software_gpu || crate::env_vars::switch("LAYERFIT_SOFTWARE_GPU")
    }

    /// `--hardware FILE`, else `LAYERFIT_HARDWARE` (empty = unset).
    pub fn hardware_file(&self) -> Option<PathBuf> {
        self.hardware
            .clone()
            .or_else(|| crate::env_vars::path("LAYERFIT_HARDWARE"))
    }
}

/// The models folder must exist: its free space decides whether a download fits, and the free
/// space of some other filesystem would be a wrong answer. The default folder may be missing
/// (nothing downloaded yet): then the nearest existing parent's filesystem is reported.
fn check_models_dir(dir: &std::path::Path, given: bool) -> Result<(), Failure> {
    let from_env = crate::env_vars::path("LAYERFIT_MODELS").is_some();
    if (given || from_env) && !dir.is_dir() {
        let how = if given {
            "--models-dir"
        } else {
            "LAYERFIT_MODELS"
        };
        return Err(
            Failure::BadInput(format!("{how} {}: no such folder", dir.display())).with_hint(
                format!(
                    "create it first (mkdir -p {}), or name an existing folder",
                    dir.display()
                ),
            ),
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub hw: HardwareArgs,
    /// Print one JSON document instead of tables (docs/json-schema.md).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let snap = args.hw.snapshot()?;
    if args.json {
        printer.json(&snap)?;
        return Ok(exit::OK);
    }
    let mut t = printer.table(&["memory", ""]);
    printer.row(
        &mut t,
        vec![
            "RAM".to_string(),
            format!(
                "{} total, {} available ({})",
                snap.ram.total_bytes, snap.ram.available_bytes, snap.ram.limit_source
            ),
        ],
    );
    if snap.ram.swap_total_bytes > Bytes::ZERO {
        printer.row(
            &mut t,
            vec!["swap".to_string(), snap.ram.swap_total_bytes.to_string()],
        );
    }
    if let Some(d) = &snap.disk {
        printer.row(
            &mut t,
            vec![
                "disk".to_string(),
                format!("{} free on {} ({})", d.free_bytes, d.mount_point, d.path),
            ],
        );
    }
    if let Some(d) = &snap.install_disk {
        printer.row(
            &mut t,
            vec![
                "install target".to_string(),
                format!("{} free on {} ({})", d.free_bytes, d.mount_point, d.path),
            ],
        );
    }
    let c = &snap.cpu;
    let mut cpu = format!(
        "{}, {} / {}",
        c.model,
        output::count(c.physical_cores as u64, "core"),
        output::count(c.logical_cores as u64, "thread")
    );
    if !c.simd.is_empty() {
        cpu = format!("{cpu}, {}", c.simd.join(" "));
    }
    printer.row(&mut t, vec!["CPU".to_string(), cpu]);
    if let Some(b) = c.memory_bandwidth_gbps {
        printer.row(
            &mut t,
            vec![
                "memory read bandwidth".to_string(),
                format!(
                    "{b:.1} GB/s ({})",
                    if target::is_this_machine(&snap) {
                        "measured"
                    } else {
                        "described"
                    }
                ),
            ],
        );
    }
    printer.print_table(t);
    if !snap.gpus.is_empty() {
        let mut t = printer.table(&["GPU", "VRAM", "bandwidth", "notes"]);
        let names = output::distinct_names(snap.gpus.iter().map(|g| g.name.as_str()));
        for (g, name) in snap.gpus.iter().zip(names) {
            let mut extra = match &g.remote {
                Some(r) => {
                    let mut v = vec![format!("RPC: {}", r.description)];
                    if let Some(ms) = r.round_trip_ms {
                        v.push(format!("round trip {ms:.2} ms"));
                    }
                    if let Some(gb) = r.network_gbps {
                        v.push(format!("{gb:.1} Gbit/s"));
                    }
                    v
                }
                None => vec![format!("{:?}", g.vendor).to_lowercase(), g.source.clone()],
            };
            match &g.engine_device {
                Some(d) => extra.push(format!("engine device {d}")),
                None => extra.push("not usable by this build's engine".into()),
            }
            if g.software {
                extra.push("software device (computes on the CPU)".into());
            }
            if let Some(m) = g.max_tensor_bytes {
                extra.push(format!("largest tensor {m}"));
            }
            if g.unified_memory {
                extra.push("unified memory (shares RAM)".into());
            }
            let backend = crate::hardware::backend::Backend::of(g);
            if let Some(n) = backend.reserve_note(crate::plan::backend_reserve(g)) {
                extra.push(format!("budget: {n}"));
            }
            if let Some(cc) = &g.compute_capability {
                extra.push(format!("CC {cc}"));
            }
            if let Some(p) = &g.precision_class {
                extra.push(p.clone());
            }
            if let Some(d) = &g.driver {
                extra.push(format!("driver {d}"));
            }
            printer.row(
                &mut t,
                vec![
                    name,
                    format!("{} ({} free)", g.vram_total_bytes, g.vram_free_bytes),
                    g.bandwidth_gbps
                        .map(|b| format!("{b:.0} GB/s"))
                        .unwrap_or_else(|| "?".into()),
                    extra.join(", "),
                ],
            );
        }
        printer.print_table(t);
    }
    if !snap.adapters.is_empty() {
        let mut t = printer.table(&["graphics adapter", "type", "backend"]);
        for a in &snap.adapters {
            printer.row(
                &mut t,
                vec![a.name.clone(), a.device_type.clone(), a.backend.clone()],
            );
        }
        printer.print_table(t);
    }
    // Probe notes: what could not be probed, and why (stderr: not part of the figures).
    for n in &snap.notes {
        output::note(n);
    }
    Ok(exit::OK)
}
