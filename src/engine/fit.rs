//! llama.cpp's own fitter (`common_fit_params`, through llama-cpp-sys-2's
//! `llama_rs_fit_params`): given the free memory it measures on each device and a margin to
//! leave free, it picks `-ngl` (and a tensor split) by loading the model without allocating.
//! layerfit's placement is compared with it in the tests (docs/ranking.md, "Checked against
//! llama.cpp's fitter").

use super::measure::{capture, init_backend, EngineError};
use crate::ggml_type::GgmlType;
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::path::Path;

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
/// bytes free on every device (the host included when there is no GPU). It takes turns with
/// measurements; it must not run beside a session or a kernel timing, which log without
/// taking turns (the tests that call it run neither).
pub fn llama_fit(
    model: &Path,
    n_ctx: u32,
    kv: GgmlType,
    n_ubatch: u32,
    margin: u64,
) -> Result<FitAnswer, EngineError> {
    init_backend();
    let c_path = CString::new(model.to_string_lossy().as_bytes())
        .map_err(|_| EngineError("the model path contains a NUL byte".into()))?;
    // SAFETY: queries of compile-time limits and llama.cpp's default parameter values.
    let (n_dev, n_buft, mut mp, mut cp) = unsafe {
        (
            sys::llama_max_devices(),
            sys::llama_max_tensor_buft_overrides(),
            sys::llama_model_default_params(),
            sys::llama_context_default_params(),
        )
    };
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
    // The fitter swaps llama.cpp's process-global logger while it runs (fit.h: "NOT thread
    // safe"), so it takes the measurements' turn: no fit or measurement overlaps another.
    let turn = capture();
    // SAFETY: the engine is initialised (above); the logger is this call's alone (the turn,
    // and the contract above). The path is NUL-terminated; the buffers have the sizes fit.h asks for (a split
    // of `llama_max_devices()`, `llama_max_tensor_buft_overrides()` overrides plus the null
    // end, a margin per device, at least one), and they, `mp` and `cp` outlive the call,
    // which writes into them and keeps none; no extra model (null). `mp` and `cp` may point
    // into `split` and `overrides` afterwards; only their plain fields are read.
    let status = unsafe {
        sys::llama_rs_fit_params(
            c_path.as_ptr(),
            &mut mp,
            &mut cp,
            split.as_mut_ptr(),
            overrides.as_mut_ptr(),
            margins.as_mut_ptr(),
            n_ctx,
            std::ptr::null(),
            sys::GGML_LOG_LEVEL_ERROR,
        )
    };
    // The fitter's own log is not shown, as before the turn was taken.
    drop(turn.finish());
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
