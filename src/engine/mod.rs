//! The bundled inference engine (llama.cpp through `llama-cpp-2` / `llama-cpp-sys-2`).
//! Everything that calls into C lives under this module.

pub mod batch;
pub mod bench_data;
pub mod calibrate;
mod calibration_list;
pub mod embed;
pub mod fit;
pub mod ggml_bench;
pub mod measure;
pub mod monitor;
pub mod overrides;
pub mod projector;
pub mod rpc;
pub mod rpc_offer;
mod sampler_bench;
pub mod self_check;
pub mod session;
pub mod step_probe;
pub mod vision;

use crate::bytes::Bytes;
use llama_cpp_sys_2 as sys;
use std::ffi::CStr;

/// A device the built engine can offload layers to, as ggml reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineDevice {
    /// ggml's device name, the name of its buffers: `Vulkan0`, `CUDA0`, `Metal`.
    pub name: String,
    /// The adapter's own name: `NVIDIA GeForce RTX 4090`, `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub description: String,
    /// ggml's integrated type (shares system RAM); llama.cpp uses these only without a
    /// discrete GPU.
    pub integrated: bool,
    pub memory_total: Bytes,
    pub memory_free: Bytes,
}

/// Devices the built engine can offload to: empty in a CPU-only build, whatever GPUs the
/// machine has. The Vulkan backend lists software devices (llvmpipe) only when
/// `GGML_VK_VISIBLE_DEVICES` names them before the first call (see
/// `hardware::engine_gpus::expose_software_devices`).
pub fn devices() -> Vec<EngineDevice> {
    measure::init_backend();
    let mut v = Vec::new();
    // SAFETY: the backend is initialised; indices stay below `ggml_backend_dev_count`, and
    // null devices are skipped before use.
    unsafe {
        for i in 0..sys::ggml_backend_dev_count() {
            let d = sys::ggml_backend_dev_get(i);
            if d.is_null() {
                continue;
            }
            let t = sys::ggml_backend_dev_type(d);
            if rpc::is_remote(d) {
                continue;
            }
            if t != sys::GGML_BACKEND_DEVICE_TYPE_GPU && t != sys::GGML_BACKEND_DEVICE_TYPE_IGPU {
                continue;
            }
            let text = |p: *const std::ffi::c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            let (mut free, mut total) = (0usize, 0usize);
            sys::ggml_backend_dev_memory(d, &mut free, &mut total);
            v.push(EngineDevice {
                name: text(sys::ggml_backend_dev_name(d)),
                description: text(sys::ggml_backend_dev_description(d)),
                integrated: t == sys::GGML_BACKEND_DEVICE_TYPE_IGPU,
                memory_total: Bytes(total as u64),
                memory_free: Bytes(free as u64),
            });
        }
    }
    v
}

/// Each device's free memory as its driver reports it now, by engine device name (`devices`):
/// the driver check after loading (`self_check::driver_check`).
pub fn free_memory() -> Vec<(String, Bytes)> {
    devices()
        .into_iter()
        .map(|d| (d.name, d.memory_free))
        .collect()
}

/// Names of the devices the built engine can offload to (`devices`).
pub fn gpu_backends() -> Vec<String> {
    devices().into_iter().map(|d| d.name).collect()
}
