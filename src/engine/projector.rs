//! Vision projectors on llama.cpp's multimodal library (`tools/mtmd`, the `mtmd` feature of
//! `llama-cpp-2`): what loading one would allocate (measured without allocating, as
//! llama-server does before it fits a model), and a loaded projector that turns images into
//! the text model's input.

use super::measure::EngineError;
use crate::bytes::Bytes;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;

#[repr(C)]
struct DeviceUse {
    name: [c_char; 64],
    bytes: u64,
}

#[repr(C)]
struct Usage {
    n_devices: i32,
    devices: [DeviceUse; 16],
    image_max_tokens: i32,
    non_causal: bool,
}

extern "C" {
    fn layerfit_mmproj_memory(
        path: *const c_char,
        use_gpu: bool,
        n_threads: i32,
        image_min_tokens: i32,
        image_max_tokens: i32,
        out: *mut Usage,
    ) -> i32;
}

/// What llama.cpp's multimodal loader would allocate for a projector: per device (ggml's
/// device names, `CPU`, `CUDA0`, ...), weights and compute together.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectorMemory {
    pub devices: Vec<(String, Bytes)>,
    /// The most tokens one image becomes at the default image budget.
    pub image_max_tokens: Option<u32>,
    /// The text model must read an image's tokens in one micro-batch (non-causal attention).
    pub non_causal: bool,
}

impl ProjectorMemory {
    pub fn total(&self) -> Bytes {
        self.devices.iter().map(|d| d.1).sum()
    }
}

/// Measures `path` as llama.cpp's multimodal loader would load it, without allocating its
/// buffers: `offload` puts it on the first GPU (llama-server's `--mmproj-offload`, the
/// default), else the CPU. Only the header is read, so a header-only copy measures too.
pub fn measure(path: &Path, offload: bool, threads: i32) -> Result<ProjectorMemory, EngineError> {
    super::measure::init_backend();
    let c_path = CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| EngineError(format!("{}: the path contains a NUL byte", path.display())))?;
    // SAFETY: `Usage` is plain data that the shim fills; zeroes are a valid value of it.
    let mut out: Usage = unsafe { std::mem::zeroed() };
    let _log = super::measure::capture();
    // SAFETY: `c_path` is a NUL-terminated string alive for the call; `out` is a valid,
    // writable `Usage` laid out as the shim's struct (`repr(C)`, same fields and order).
    let rc = unsafe { layerfit_mmproj_memory(c_path.as_ptr(), offload, threads, -1, -1, &mut out) };
    let log = _log.finish();
    if rc != 0 {
        return Err(EngineError(format!(
            "{}: llama.cpp's multimodal loader refused it{}",
            path.display(),
            reason(&log)
        )));
    }
    let n = out.n_devices.clamp(0, 16) as usize;
    let devices = out.devices[..n]
        .iter()
        .map(|d| {
            // SAFETY: the shim wrote a NUL-terminated name (strncpy into a zeroed array one
            // byte shorter than the buffer).
            let name = unsafe { CStr::from_ptr(d.name.as_ptr()) };
            (name.to_string_lossy().into_owned(), Bytes(d.bytes))
        })
        .collect();
    Ok(ProjectorMemory {
        devices,
        image_max_tokens: u32::try_from(out.image_max_tokens).ok(),
        non_causal: out.non_causal,
    })
}

/// The loader's own error lines, if it logged any.
fn reason(log: &[String]) -> String {
    let lines: Vec<&str> = log
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.contains("error") || l.contains("failed") || l.contains("missing"))
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join(" | "))
    }
}
