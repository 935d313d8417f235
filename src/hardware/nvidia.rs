//! NVIDIA GPUs through NVML. The library is opened at run time; without a driver
//! (`libnvidia-ml.so.1` missing, the common case) this returns no GPUs and a note.

use super::{Gpu, Vendor};
use crate::bytes::Bytes;
use nvml_wrapper::Nvml;

pub fn probe(notes: &mut Vec<String>) -> Vec<Gpu> {
    let nvml = match Nvml::init() {
        Ok(n) => n,
        Err(e) => {
            notes.push(format!("no NVIDIA driver (NVML unavailable: {e})"));
            return Vec::new();
        }
    };
    let driver = nvml.sys_driver_version().ok();
    let cuda = nvml
        .sys_cuda_driver_version()
        .ok()
        .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let count = match nvml.device_count() {
        Ok(c) => c,
        Err(e) => {
            notes.push(format!("NVML could not count devices: {e}"));
            return Vec::new();
        }
    };
    let mut gpus = Vec::new();
    for i in 0..count {
        let dev = match nvml.device_by_index(i) {
            Ok(d) => d,
            Err(e) => {
                notes.push(format!("NVML device {i}: {e}"));
                continue;
            }
        };
        let Ok(mem) = dev.memory_info() else {
            notes.push(format!("NVML device {i}: memory information unavailable"));
            continue;
        };
        // Bandwidth = bus width (bits) / 8 x max memory clock (MHz) x 2 (double data rate).
        let bandwidth = match (
            dev.memory_bus_width(),
            dev.max_clock_info(nvml_wrapper::enum_wrappers::device::Clock::Memory),
        ) {
            (Ok(bits), Ok(mhz)) if bits > 0 && mhz > 0 => {
                Some(bits as f64 / 8.0 * mhz as f64 * 2.0 / 1000.0)
            }
            _ => None,
        };
        let pcie = match (dev.current_pcie_link_gen(), dev.current_pcie_link_width()) {
            (Ok(g), Ok(w)) => Some(format!("gen{g} x{w}")),
            _ => None,
        };
        let cc = dev
            .cuda_compute_capability()
            .ok()
            .map(|c| format!("{}.{}", c.major, c.minor));
        gpus.push(Gpu {
            name: dev.name().unwrap_or_else(|_| format!("NVIDIA GPU {i}")),
            vendor: Vendor::Nvidia,
            vram_total_bytes: Bytes(mem.total),
            // Read before this process creates a CUDA context (the engine is asked next).
            vram_free_bytes: Bytes(mem.free),
            free_excludes_context: false,
            unified_memory: false,
            bandwidth_gbps: bandwidth,
            fp16_tflops: None,
            precision_class: cc.as_deref().and_then(super::precision_class),
            compute_capability: cc,
            architecture: None,
            driver: driver.clone(),
            cuda_version: cuda.clone(),
            pcie,
            source: "nvml".into(),
            engine_device: None,
            software: false,
            max_tensor_bytes: None,
            remote: None,
        });
    }
    gpus
}
