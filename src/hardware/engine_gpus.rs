//! Which GPUs the built engine can offload to. A Vulkan device is a GPU for planning only
//! when this build's llama.cpp lists it; a software device (Mesa's llvmpipe, which runs
//! "GPU" work on the CPU and whose memory is system RAM) only on explicit request.
//!
//! `merge` is pure (plain data in, plain data out) so every case, including GPUs that are
//! not here, is tested without the devices; `expose_software_devices` is the one side effect,
//! and must run before the engine is first initialised.

use super::backend::Backend;
use super::{Adapter, Gpu, Vendor};
use crate::bytes::Bytes;

/// One device as the engine reports it (mirrors `engine::EngineDevice`, kept here as plain
/// data so the hardware model does not depend on the engine).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineGpu {
    /// `Vulkan0`, `CUDA0`, ...
    pub name: String,
    /// The adapter's name.
    pub description: String,
    pub integrated: bool,
    pub total: Bytes,
    pub free: Bytes,
}

/// Names of software rasterizers that present themselves as Vulkan/GL devices.
const SOFTWARE_NAMES: &[&str] = &["llvmpipe", "lavapipe", "swiftshader", "softpipe"];

/// Whether `description` names a software device, by wgpu's device type (`adapters`) or by
/// the known software renderers' names.
pub fn is_software(description: &str, adapters: &[Adapter]) -> bool {
    let d = description.to_lowercase();
    adapters
        .iter()
        .any(|a| a.software && normalise(&a.name) == normalise(description))
        || SOFTWARE_NAMES.iter().any(|n| d.contains(n))
}

fn normalise(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Whether a probed GPU's name and an engine device's description are the same adapter
/// (Vulkan appends the driver, e.g. `AMD Radeon RX 7900 XTX (RADV NAVI31)`).
fn same_adapter(gpu: &str, description: &str) -> bool {
    let (g, d) = (normalise(gpu), normalise(description));
    !g.is_empty() && !d.is_empty() && (d.contains(&g) || g.contains(&d))
}

/// Merges the engine's devices into the probed GPUs.
///
/// - A probed GPU (NVML, sysfs) that the engine lists gets its `engine_device`.
/// - A hardware device only the engine sees (an Intel or AMD GPU without a vendor probe)
///   becomes a GPU with the engine's memory figures; a CUDA or HIP one's free memory already
///   lacks the back-end's context (`free_excludes_context`). A probed GPU keeps its probe's
///   figure, read before any context.
/// - A software device becomes a GPU (`software`, memory budgeted from RAM) only when
///   `software_opt_in`; otherwise a note says how to ask for it.
/// - `engine_built` false (a CPU-only build): probed GPUs stay (plans describe the machine,
///   and `install/install.sh` builds the engine for them) with a note that this binary cannot
///   offload.
pub fn merge(
    gpus: &mut Vec<Gpu>,
    engine: &[EngineGpu],
    adapters: &[Adapter],
    software_opt_in: bool,
    engine_built: bool,
    notes: &mut Vec<String>,
) {
    let mut unmatched: Vec<&EngineGpu> = Vec::new();
    for dev in engine {
        if is_software(&dev.description, adapters) {
            if software_opt_in {
                gpus.push(Gpu {
                    unified_memory: true,
                    engine_device: Some(dev.name.clone()),
                    software: true,
                    ..Gpu::new(
                        dev.description.clone(),
                        Vendor::Other,
                        dev.total,
                        dev.free,
                        "engine (software device)",
                    )
                });
                notes.push(format!(
                    "{} ({}) is a software device: its \"VRAM\" is system RAM and it computes on the CPU; planned onto because --software-gpu was given",
                    dev.description, dev.name
                ));
            } else {
                notes.push(format!(
                    "{} ({}) is a software device on the CPU, not a GPU: not planned onto (--software-gpu to plan onto it anyway)",
                    dev.description, dev.name
                ));
            }
            continue;
        }
        match gpus
            .iter_mut()
            .find(|g| g.engine_device.is_none() && same_adapter(&g.name, &dev.description))
        {
            Some(g) => g.engine_device = Some(dev.name.clone()),
            None => unmatched.push(dev),
        }
    }
    // One probed GPU and one engine device left unnamed alike are the same card.
    let free_probed: Vec<usize> = (0..gpus.len())
        .filter(|&i| gpus[i].engine_device.is_none() && !gpus[i].software)
        .collect();
    if free_probed.len() == 1 && unmatched.len() == 1 {
        gpus[free_probed[0]].engine_device = Some(unmatched[0].name.clone());
        unmatched.clear();
    }
    for dev in unmatched {
        gpus.push(Gpu {
            unified_memory: dev.integrated,
            // The engine's figure: CUDA and HIP create their context to answer it.
            free_excludes_context: Backend::of_device(&dev.name)
                .is_some_and(Backend::query_creates_context),
            engine_device: Some(dev.name.clone()),
            ..Gpu::new(
                dev.description.clone(),
                vendor_of(&dev.description),
                dev.total,
                dev.free,
                "engine",
            )
        });
    }
    for g in gpus.iter_mut() {
        let vulkan = g
            .engine_device
            .as_deref()
            .is_some_and(|d| d.starts_with("Vulkan"));
        if vulkan {
            g.max_tensor_bytes = adapters
                .iter()
                .filter(|a| a.backend == "vulkan" && same_adapter(&a.name, &g.name))
                .find_map(|a| a.max_buffer_bytes)
                .map(Bytes);
        }
    }
    for g in gpus.iter().filter(|g| g.engine_device.is_none()) {
        notes.push(if engine_built {
            format!(
                "{}: this build's engine does not list it (driver missing?); plans show what an engine that can use it would do",
                g.name
            )
        } else {
            format!(
                "{}: this layerfit build's engine is CPU-only and cannot offload to it; plans show what a GPU build would do (install/install.sh builds one)",
                g.name
            )
        });
    }
    // Hardware Vulkan adapters the built engine does not list are not GPUs for planning.
    for a in adapters
        .iter()
        .filter(|a| !a.software && a.backend == "vulkan")
    {
        let known = gpus.iter().any(|g| same_adapter(&g.name, &a.name));
        if !known {
            notes.push(format!(
                "{} (Vulkan) is not usable by this build's engine: not planned onto (a --features vulkan build can use it)",
                a.name
            ));
        }
    }
}

fn vendor_of(description: &str) -> Vendor {
    let d = description.to_lowercase();
    if d.contains("nvidia") || d.contains("geforce") || d.contains("quadro") {
        Vendor::Nvidia
    } else if d.contains("amd") || d.contains("radeon") {
        Vendor::Amd
    } else if d.contains("intel") {
        Vendor::Intel
    } else if d.contains("apple") {
        Vendor::Apple
    } else {
        Vendor::Other
    }
}

/// ggml's Vulkan backend skips CPU-type devices unless `GGML_VK_VISIBLE_DEVICES` lists them.
/// With the opt-in, and when every Vulkan adapter here is a software one (on a machine with a
/// real GPU a software device is never the better choice), this lists them all. A value the
/// user set is left alone. Must run before the engine's first initialisation.
pub fn expose_software_devices(adapters: &[Adapter]) {
    if std::env::var_os("GGML_VK_VISIBLE_DEVICES").is_some() {
        return;
    }
    let vulkan: Vec<&Adapter> = adapters.iter().filter(|a| a.backend == "vulkan").collect();
    if vulkan.is_empty() || !vulkan.iter().all(|a| a.software) {
        return;
    }
    let ids: Vec<String> = (0..vulkan.len()).map(|i| i.to_string()).collect();
    // SAFETY (set_var): called from the single-threaded start of a command, before llama.cpp
    // (the only reader) is initialised.
    std::env::set_var("GGML_VK_VISIBLE_DEVICES", ids.join(","));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, software: bool) -> Adapter {
        Adapter {
            name: name.into(),
            vendor_id: 0,
            device_type: if software { "cpu" } else { "discrete" }.into(),
            backend: "vulkan".into(),
            software,
            max_buffer_bytes: None,
        }
    }

    fn dev(name: &str, desc: &str, gib: u64) -> EngineGpu {
        EngineGpu {
            name: name.into(),
            description: desc.into(),
            integrated: false,
            total: Bytes(gib << 30),
            free: Bytes(gib << 30),
        }
    }

    const LLVMPIPE: &str = "llvmpipe (LLVM 15.0.6, 256 bits)";

    #[test]
    fn llvmpipe_is_a_gpu_only_on_request() {
        let mut adapters = [adapter(LLVMPIPE, true)];
        adapters[0].max_buffer_bytes = Some(128 << 20);
        let engine = [dev("Vulkan0", LLVMPIPE, 2)];
        let (mut gpus, mut notes) = (Vec::new(), Vec::new());
        merge(&mut gpus, &engine, &adapters, false, true, &mut notes);
        assert!(gpus.is_empty());
        assert!(notes[0].contains("software device") && notes[0].contains("--software-gpu"));

        let (mut gpus, mut notes) = (Vec::new(), Vec::new());
        merge(&mut gpus, &engine, &adapters, true, true, &mut notes);
        assert_eq!(gpus.len(), 1);
        let g = &gpus[0];
        assert!(g.software && g.unified_memory);
        assert_eq!(g.engine_device.as_deref(), Some("Vulkan0"));
        assert_eq!(g.vram_total_bytes, Bytes(2 << 30));
        assert_eq!(g.max_tensor_bytes, Some(Bytes(128 << 20)));
    }

    #[test]
    fn probed_gpus_get_their_engine_device() {
        let mut gpus = vec![
            Gpu::new(
                "NVIDIA GeForce RTX 4090".into(),
                Vendor::Nvidia,
                Bytes(24 << 30),
                Bytes(23 << 30),
                "nvml",
            ),
            Gpu::new(
                "AMD Radeon RX 7900 XTX".into(),
                Vendor::Amd,
                Bytes(24 << 30),
                Bytes(24 << 30),
                "sysfs",
            ),
        ];
        let engine = [
            dev("Vulkan0", "AMD Radeon RX 7900 XTX (RADV NAVI31)", 24),
            dev("Vulkan1", "NVIDIA GeForce RTX 4090", 24),
        ];
        let mut notes = Vec::new();
        merge(&mut gpus, &engine, &[], false, true, &mut notes);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].engine_device.as_deref(), Some("Vulkan1"));
        assert_eq!(gpus[1].engine_device.as_deref(), Some("Vulkan0"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn an_engine_only_gpu_is_added_and_a_cpu_build_says_so() {
        let mut gpus = Vec::new();
        let mut engine = dev("Vulkan0", "Intel(R) Arc(tm) Graphics (MTL)", 16);
        engine.integrated = true;
        let mut notes = Vec::new();
        merge(&mut gpus, &[engine], &[], false, true, &mut notes);
        assert_eq!(gpus.len(), 1);
        assert_eq!(gpus[0].vendor, Vendor::Intel);
        assert!(gpus[0].unified_memory);

        let mut gpus = vec![Gpu::new(
            "NVIDIA GeForce RTX 3060".into(),
            Vendor::Nvidia,
            Bytes(12 << 30),
            Bytes(12 << 30),
            "nvml",
        )];
        let adapters = [adapter("NVIDIA GeForce RTX 3060", false)];
        let mut notes = Vec::new();
        merge(&mut gpus, &[], &adapters, false, false, &mut notes);
        assert_eq!(gpus.len(), 1, "a probed GPU stays for planning");
        assert!(gpus[0].engine_device.is_none());
        assert!(notes.iter().any(|n| n.contains("CPU-only")), "{notes:?}");
    }

    #[test]
    fn only_an_engine_cuda_or_hip_figure_already_lacks_the_context() {
        // NVML's figure, read before the engine created its context, stays the GPU's.
        let mut gpus = vec![Gpu::new(
            "NVIDIA GeForce RTX 4060".into(),
            Vendor::Nvidia,
            Bytes(8 << 30),
            Bytes(7 << 30),
            "nvml",
        )];
        let engine = [
            dev("CUDA0", "NVIDIA GeForce RTX 4060", 8),
            dev("CUDA1", "NVIDIA GeForce RTX 3060", 12),
            dev("ROCm0", "AMD Radeon RX 7900 XTX", 24),
            dev("Vulkan0", "Intel(R) Arc(tm) A770 Graphics (DG2)", 16),
        ];
        let mut notes = Vec::new();
        merge(&mut gpus, &engine, &[], false, true, &mut notes);
        let flag = |name: &str| {
            gpus.iter()
                .find(|g| g.engine_device.as_deref() == Some(name))
                .map(|g| g.free_excludes_context)
                .unwrap()
        };
        assert!(!flag("CUDA0"), "NVML's figure holds no context");
        assert!(
            flag("CUDA1") && flag("ROCm0"),
            "cudaMemGetInfo/hipMemGetInfo"
        );
        assert!(!flag("Vulkan0"), "a memory-budget query holds no device");
    }

    #[test]
    fn a_vulkan_adapter_the_engine_cannot_use_is_not_a_gpu() {
        let mut gpus = Vec::new();
        let adapters = [adapter("AMD Radeon 780M (RADV GFX1103_R1)", false)];
        let mut notes = Vec::new();
        merge(&mut gpus, &[], &adapters, false, false, &mut notes);
        assert!(gpus.is_empty());
        assert!(notes[0].contains("not usable by this build"), "{notes:?}");
    }
}
