//! A loaded vision projector: llama.cpp's multimodal context (`mtmd_context`) beside a text
//! model, turning images into the model's input as llama-server and `llama-mtmd-cli` do.

use super::measure::{capture, init_backend, EngineError};
use crate::bytes::Bytes;
use llama_cpp_sys_2 as sys;
use std::ffi::{CStr, CString};
use std::path::Path;

/// The projector, loaded for one text model.
pub struct Vision {
    ctx: *mut sys::mtmd_context,
    /// What llama.cpp's loader said it allocated: weights and compute buffers.
    pub loaded: Loaded,
}

/// The projector's buffers as llama.cpp's loader logs them (`clip.cpp`: "model size" and
/// each back-end's "compute buffer size", in MiB with two decimals).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    pub weights: Bytes,
    pub compute: Bytes,
}

/// One decoded image, ready to be tokenized with a prompt.
pub struct Image {
    bitmap: *mut sys::mtmd_bitmap,
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the bitmap was created by `Vision::image` and is freed once, here.
        unsafe { sys::mtmd_bitmap_free(self.bitmap) };
    }
}

impl Vision {
    /// Loads the projector at `path` for `model` (the text model's handle, alive as long as
    /// this context): on the first GPU when `offload`, else on the CPU.
    pub(crate) fn load(
        path: &Path,
        model: *const sys::llama_model,
        offload: bool,
        threads: i32,
    ) -> Result<Vision, EngineError> {
        init_backend();
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| EngineError("the projector path contains a NUL byte".into()))?;
        let log = capture();
        // SAFETY: `c_path` outlives the call; `model` is a live model (the caller's
        // contract); the returned context is freed once, in `Drop`.
        let ctx = unsafe {
            let mut p = sys::mtmd_context_params_default();
            p.use_gpu = offload;
            p.print_timings = false;
            p.n_threads = threads;
            sys::mtmd_init_from_file(c_path.as_ptr(), model, p)
        };
        let lines = log.finish();
        if ctx.is_null() {
            let why: Vec<&str> = lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| l.contains("error") || l.contains("mismatch") || l.contains("failed"))
                .collect();
            return Err(EngineError(format!(
                "{}: llama.cpp could not load the projector{}",
                path.display(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join(" | "))
                }
            )));
        }
        Ok(Vision {
            ctx,
            loaded: parse_loaded(&lines),
        })
    }

    pub(crate) fn raw(&self) -> *mut sys::mtmd_context {
        self.ctx
    }

    /// The text that stands for an image in a prompt (`<__media__>`).
    pub fn marker() -> String {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        unsafe { CStr::from_ptr(sys::mtmd_default_marker()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Decodes an image file's bytes (PNG, JPEG, BMP, GIF: what stb_image reads).
    pub fn image(&self, bytes: &[u8]) -> Result<Image, EngineError> {
        // SAFETY: `bytes` outlives the call, which copies what it decodes; a null bitmap
        // is checked before use.
        let w = unsafe {
            sys::mtmd_helper_bitmap_init_from_buf(
                self.ctx,
                bytes.as_ptr(),
                bytes.len(),
                false,
                sys::mtmd_helper_init_opt_default(),
            )
        };
        if w.bitmap.is_null() {
            return Err(EngineError(
                "the image could not be decoded (llama.cpp reads PNG, JPEG, BMP and GIF)".into(),
            ));
        }
        Ok(Image { bitmap: w.bitmap })
    }
}

impl Image {
    pub(crate) fn raw(&self) -> *const sys::mtmd_bitmap {
        self.bitmap
    }
}

impl Drop for Vision {
    fn drop(&mut self) {
        // SAFETY: the context was created in `load` and is freed once, here.
        unsafe { sys::mtmd_free(self.ctx) };
    }
}

/// Sums the loader's "model size: X MiB" and "compute buffer size = X MiB" lines.
fn parse_loaded(lines: &[String]) -> Loaded {
    let mib = |l: &str, key: &str| -> Option<f64> {
        let rest = &l[l.find(key)? + key.len()..];
        rest.trim_start_matches([' ', ':', '='])
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut out = Loaded::default();
    for l in lines {
        if let Some(m) = mib(l, "model size") {
            out.weights += Bytes((m * 1048576.0).round() as u64);
        } else if let Some(m) = mib(l, "compute buffer size") {
            out.compute += Bytes((m * 1048576.0).round() as u64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_loaders_lines() {
        let lines = [
            "load_hparams: model size:         812.28 MiB\n".to_string(),
            "alloc_compute_meta:        CPU compute buffer size =    23.50 MiB\n".to_string(),
        ];
        let l = super::parse_loaded(&lines);
        assert_eq!(l.weights.get(), (812.28f64 * 1048576.0).round() as u64);
        assert_eq!(l.compute.get(), 23 * 1048576 + 524288);
    }
}
