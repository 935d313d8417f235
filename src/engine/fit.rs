//! llama.cpp's own fitter (`common_fit_params`, through llama-cpp-sys-2's
//! `llama_rs_fit_params`): given the free memory it measures on each device and a margin to
//! leave free, it picks `-ngl` (and a tensor split) by loading the model without allocating.
//! layerfit's placement is compared with it in the tests (docs/ranking.md, "Checked against
//! llama.cpp's fitter").

use super::measure::{init_backend, EngineError};
use crate::ggml_type::GgmlType;
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::path::Path;
use std::sync::Mutex;

/// The fitter mutates llama.cpp's global logger: one call at a time.
static FIT: Mutex<()> = Mutex::new(());

/// What llama.cpp's fitter decided.
#[derive(Clone, Debug, PartialEq)]
pub struct FitAnswer {
    /// `true`: it found settings that leave every margin free.
    pub fits: bool,
    /// `-ngl` it chose (its default, -1 = all, when nothing needed changing).
    pub n_gpu_layers: i32,
    /// Fraction of layers per GPU, when it set a split.
    pub tensor_split: Vec<f32>,
    /// Tensor buffer overrides it set (parts of a layer kept off a device).
    pub overrides: usize,
    pub n_ctx: u32,
}

/// Runs llama.cpp's fitter for `model` at a fixed context and cache type, leaving `margin`
/// bytes free on every device (the host included when there is no GPU).
pub fn llama_fit(
    model: &Path,
    n_ctx: u32,
    kv: GgmlType,
    n_ubatch: u32,
    margin: u64,
) -> Result<FitAnswer, EngineError> {
    init_backend();
    let _turn = FIT.lock().unwrap_or_else(|p| p.into_inner());
    let c_path = CString::new(model.to_string_lossy().as_bytes())
        .map_err(|_| EngineError("the model path contains a NUL byte".into()))?;
    unsafe {
        let n_dev = sys::llama_max_devices();
        let n_buft = sys::llama_max_tensor_buft_overrides();
        let mut mp = sys::llama_model_default_params();
        let mut cp = sys::llama_context_default_params();
        cp.n_ctx = n_ctx;
        cp.n_batch = 2048;
        cp.n_ubatch = n_ubatch;
        cp.n_seq_max = 1;
        cp.n_outputs_max = 1;
        cp.n_outputs_max_per_seq = 1;
        cp.type_k = kv.id() as sys::ggml_type;
        cp.type_v = kv.id() as sys::ggml_type;
        cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_ENABLED;
        // As `run` loads it: sliding-window layers keep only their window (llama.cpp's
        // default here is a full-size cache for every layer).
        cp.swa_full = false;
        let mut split = vec![0f32; n_dev];
        let mut overrides = vec![
            sys::llama_model_tensor_buft_override {
                pattern: std::ptr::null(),
                buft: std::ptr::null_mut(),
            };
            n_buft + 1
        ];
        let mut margins = vec![margin as usize; n_dev.max(1)];
        let status = sys::llama_rs_fit_params(
            c_path.as_ptr(),
            &mut mp,
            &mut cp,
            split.as_mut_ptr(),
            overrides.as_mut_ptr(),
            margins.as_mut_ptr(),
            n_ctx,
            std::ptr::null(),
            sys::GGML_LOG_LEVEL_ERROR,
        );
        match status {
            0 | 1 => Ok(FitAnswer {
                fits: status == 0,
                n_gpu_layers: mp.n_gpu_layers,
                overrides: overrides
                    .iter()
                    .take_while(|o| !o.pattern.is_null())
                    .count(),
                tensor_split: split.into_iter().filter(|x| *x > 0.0).collect(),
                n_ctx: cp.n_ctx,
            }),
            _ => Err(EngineError(format!(
                "{}: llama.cpp's fitter could not read the model",
                model.display()
            ))),
        }
    }
}
