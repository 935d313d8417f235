//! The bundled inference engine (llama.cpp through `llama-cpp-2` / `llama-cpp-sys-2`).
//! Everything that calls into C lives under this module.

pub mod measure;
pub mod session;

use llama_cpp_sys_2 as sys;
use std::ffi::CStr;

/// GPU devices the built engine can offload to (`CUDA0`, `Vulkan0`, `Metal`, ...): empty in
/// a CPU-only build, whatever GPUs the machine has.
pub fn gpu_backends() -> Vec<String> {
    measure::init_backend();
    let mut v = Vec::new();
    unsafe {
        for i in 0..sys::ggml_backend_dev_count() {
            let d = sys::ggml_backend_dev_get(i);
            if d.is_null() || sys::ggml_backend_dev_type(d) != sys::GGML_BACKEND_DEVICE_TYPE_GPU {
                continue;
            }
            let name = sys::ggml_backend_dev_name(d);
            if !name.is_null() {
                v.push(CStr::from_ptr(name).to_string_lossy().into_owned());
            }
        }
    }
    v
}
