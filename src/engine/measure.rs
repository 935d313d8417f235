//! Asking llama.cpp itself how much memory a configuration takes.
//!
//! With `no_alloc` (a dry run) llama.cpp builds the model and the context, reserves the
//! compute graphs and records every buffer's size without allocating or reading tensor data
//! (`common/fit.cpp` uses the same path). layerfit uses it to pin its own memory model in tests
//! and to self-check a real load (`run --verify`).

use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::memory::CacheConfig;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;
use std::sync::{Mutex, Once};

/// One configuration to measure; mirrors the llama.cpp parameters that change memory.
#[derive(Clone, Debug)]
pub struct MeasureRequest {
    pub n_ctx: u32,
    pub n_ubatch: u32,
    pub n_batch: u32,
    pub type_k: GgmlType,
    pub type_v: GgmlType,
    /// `None`: llama.cpp's automatic choice.
    pub flash_attn: Option<bool>,
    pub swa_full: bool,
    pub n_gpu_layers: i32,
    /// Dry run (`no_alloc`): nothing is allocated and no tensor data is read.
    pub dry_run: bool,
    /// Parallel sequences, each with its own `n_ctx` cells (llama.cpp's `-np`, a
    /// non-unified cache: the context is created `n_seq_max` times as large).
    pub n_seq_max: u32,
    /// `n_outputs_max` (0: llama.cpp's default, `n_batch`) and `n_outputs_max_per_seq`, as
    /// layerfit's engine and llama-server set them (`CacheConfig::n_outputs_max`).
    pub n_outputs_max: u32,
    pub n_outputs_max_per_seq: u32,
    /// Embedding mode (`CacheConfig::embeddings`), with llama.cpp's `llama_pooling_type`
    /// (-1: the model's own).
    pub embeddings: bool,
    pub pooling_type: i32,
    /// RPC servers whose devices join the engine first, and llama.cpp's `--tensor-split`.
    pub rpc: Vec<crate::rpc::endpoint::Endpoint>,
    pub tensor_split: Vec<f32>,
}

impl Default for MeasureRequest {
    fn default() -> Self {
        MeasureRequest {
            n_ctx: 32768,
            n_ubatch: 512,
            n_batch: 2048,
            type_k: GgmlType::F16,
            type_v: GgmlType::F16,
            flash_attn: None,
            swa_full: false,
            n_gpu_layers: 0,
            dry_run: true,
            n_seq_max: 1,
            n_outputs_max: 1,
            n_outputs_max_per_seq: 1,
            embeddings: false,
            pooling_type: -1,
            rpc: Vec::new(),
            tensor_split: Vec::new(),
        }
    }
}

impl MeasureRequest {
    /// A dry run of the cache settings `cfg` with `n_gpu_layers` offloaded.
    pub fn for_cache(cfg: &CacheConfig, n_gpu_layers: i32) -> MeasureRequest {
        MeasureRequest {
            n_ctx: cfg.n_ctx as u32,
            n_ubatch: cfg.n_ubatch,
            n_batch: cfg.n_batch,
            type_k: cfg.type_k,
            type_v: cfg.type_v,
            flash_attn: Some(cfg.flash_attn),
            swa_full: cfg.swa_full,
            n_gpu_layers,
            dry_run: true,
            n_seq_max: cfg.n_seq_max.max(1),
            n_outputs_max: cfg.n_outputs_max(),
            n_outputs_max_per_seq: cfg.n_outputs_max_per_seq(),
            embeddings: cfg.embeddings,
            pooling_type: -1,
            rpc: Vec::new(),
            tensor_split: Vec::new(),
        }
    }
}

/// Bytes llama.cpp assigned to one buffer type (`CPU`, `CPU_REPACK`, `CUDA0`, `Vulkan0`, ...).
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct BufferUse {
    pub name: String,
    pub model: Bytes,
    /// KV cache and recurrent state.
    pub context: Bytes,
    pub compute: Bytes,
}

impl BufferUse {
    /// Host memory: the CPU's buffers and a GPU backend's pinned host buffers (`Vulkan_Host`,
    /// `CUDA_Host`); everything else is a GPU's own memory.
    pub fn is_host(&self) -> bool {
        self.name.starts_with("CPU") || self.name.ends_with("_Host")
    }
}

/// What llama.cpp reported for a configuration.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Measurement {
    /// `llama_model_size`: the sum of all weight tensors' bytes.
    pub model_size: Bytes,
    pub buffers: Vec<BufferUse>,
    /// The logits/embeddings output buffer, read from llama.cpp's log (2-decimal MiB).
    pub output_mib: Option<f64>,
    /// The recurrent-state buffers (`llama_memory_recurrent`), read from the log (2-decimal
    /// MiB); `None` for a model without recurrent layers.
    pub recurrent_state_mib: Option<f64>,
    /// Whether flash attention ended up on (after llama.cpp's automatic resolution).
    pub flash_attn: Option<bool>,
    /// The context llama.cpp actually created (`llama_n_ctx`, padded).
    pub n_ctx: u32,
}

impl Measurement {
    pub fn total(&self, pick: impl Fn(&BufferUse) -> Bytes) -> Bytes {
        self.buffers.iter().map(pick).sum()
    }
    pub fn model_bytes(&self) -> Bytes {
        self.total(|b| b.model)
    }
    pub fn context_bytes(&self) -> Bytes {
        self.total(|b| b.context)
    }
    pub fn compute_bytes(&self) -> Bytes {
        self.total(|b| b.compute)
    }
}

/// Why llama.cpp refused the configuration; carries its last error lines.
#[derive(Debug)]
pub struct EngineError(pub String);

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EngineError {}

#[repr(C)]
struct RawBufferUse {
    name: [c_char; 64],
    model: usize,
    context: usize,
    compute: usize,
}

extern "C" {
    fn layerfit_memory_breakdown(
        ctx: *const sys::llama_context,
        out: *mut RawBufferUse,
        cap: c_int,
    ) -> c_int;
}

/// llama.cpp's log is process-global, so measurements take turns and the log is captured
/// only while one runs.
static LOG: Mutex<Option<Vec<String>>> = Mutex::new(None);
static MEASURE: Mutex<()> = Mutex::new(());
static BACKEND: Once = Once::new();
/// `LAYERFIT_ENGINE_LOG=1` echoes llama.cpp's log to stderr (diagnosing a load or a buffer).
static ECHO_LOG: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| crate::env_vars::switch("LAYERFIT_ENGINE_LOG"));

unsafe extern "C" fn capture_log(_level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    let line = CStr::from_ptr(text).to_string_lossy().into_owned();
    if *ECHO_LOG {
        eprint!("{line}");
    }
    if let Ok(mut log) = LOG.lock() {
        if let Some(lines) = log.as_mut() {
            lines.push(line);
        }
    }
}

/// Initialises llama.cpp's backends once per process and routes its log through layerfit
/// (silent unless a measurement is capturing it).
pub fn init_backend() {
    // SAFETY: called once per process, before any other llama.cpp call; `capture_log`
    // matches ggml's log callback signature and reads only the text it is given.
    BACKEND.call_once(|| unsafe {
        sys::llama_log_set(Some(capture_log), std::ptr::null_mut());
        // The multimodal library (projectors) has its own logger, stderr by default.
        sys::mtmd_helper_log_set(Some(capture_log), std::ptr::null_mut());
        sys::llama_backend_init();
    });
}

/// llama.cpp's log lines while it is alive, one measurement at a time (`finish` takes them).
pub(crate) struct Capture {
    _turn: std::sync::MutexGuard<'static, ()>,
}

pub(crate) fn capture() -> Capture {
    let turn = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    *LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    Capture { _turn: turn }
}

impl Capture {
    pub(crate) fn finish(self) -> Vec<String> {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default()
    }
}

/// Loads `path` in llama.cpp with `req` and returns what it allocated (or, in a dry run,
/// would allocate).
pub fn measure(path: &Path, req: &MeasureRequest) -> Result<Measurement, EngineError> {
    init_backend();
    super::rpc::connect(&req.rpc)?;
    let _turn = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    *LOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    // SAFETY: the measurement lock is held (one llama.cpp load at a time in this process) and
    // the backend is initialised; `measure_locked` frees what it creates before it returns.
    let result = unsafe { measure_locked(path, req) };
    let log = LOG
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    match result {
        Ok(mut m) => {
            m.output_mib = parse_output_mib(&log);
            m.recurrent_state_mib = parse_buffer_mib(&log, "RS buffer size");
            m.flash_attn = parse_flash_attn(&log).or(req.flash_attn);
            Ok(m)
        }
        Err(what) => {
            let errors: Vec<&str> = log
                .iter()
                .map(|l| l.trim())
                .filter(|l| {
                    l.contains("error")
                        || l.contains("failed")
                        || l.contains("missing")
                        || l.contains("wrong")
                })
                .collect();
            Err(EngineError(format!("{what}: {}", errors.join(" | "))))
        }
    }
}

unsafe fn measure_locked(path: &Path, req: &MeasureRequest) -> Result<Measurement, String> {
    let c_path = CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| "path contains a NUL byte".to_string())?;
    let mut mp = sys::llama_model_default_params();
    mp.n_gpu_layers = req.n_gpu_layers;
    let mut split = vec![0f32; sys::llama_max_devices()];
    for (s, f) in split.iter_mut().zip(&req.tensor_split) {
        *s = *f;
    }
    if req.tensor_split.iter().any(|&f| f > 0.0) {
        mp.tensor_split = split.as_ptr();
    }
    mp.no_alloc = req.dry_run;
    if req.dry_run {
        // A dry run cannot map the file (llama.cpp asserts it), exactly as common/fit.cpp does.
        mp.load_mode = sys::LLAMA_LOAD_MODE_NONE;
    }
    let model = sys::llama_model_load_from_file(c_path.as_ptr(), mp);
    if model.is_null() {
        return Err("llama.cpp could not load the model".into());
    }
    let mut cp = sys::llama_context_default_params();
    let n_seq = req.n_seq_max.max(1);
    cp.n_ctx = if n_seq > 1 {
        req.n_ctx.div_ceil(256) * 256 * n_seq
    } else {
        req.n_ctx
    };
    cp.n_seq_max = n_seq;
    cp.n_outputs_max = req.n_outputs_max;
    cp.n_outputs_max_per_seq = req.n_outputs_max_per_seq;
    cp.embeddings = req.embeddings;
    cp.pooling_type = req.pooling_type as sys::llama_pooling_type;
    cp.n_batch = req.n_batch;
    cp.n_ubatch = req.n_ubatch;
    cp.type_k = req.type_k.id() as sys::ggml_type;
    cp.type_v = req.type_v.id() as sys::ggml_type;
    cp.flash_attn_type = match req.flash_attn {
        None => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
        Some(true) => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        Some(false) => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
    };
    cp.swa_full = req.swa_full;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    let ctx = sys::llama_init_from_model(model, cp);
    if ctx.is_null() {
        sys::llama_model_free(model);
        return Err("llama.cpp could not create the context".into());
    }
    let buffers = breakdown_of(ctx);
    let m = Measurement {
        model_size: Bytes(sys::llama_model_size(model)),
        buffers,
        output_mib: None,
        recurrent_state_mib: None,
        flash_attn: None,
        n_ctx: sys::llama_n_ctx(ctx),
    };
    sys::llama_free(ctx);
    sys::llama_model_free(model);
    Ok(m)
}

/// Every buffer type's bytes in a live context (`llama_get_memory_breakdown`).
///
/// # Safety
/// `ctx` must be a valid llama.cpp context.
pub unsafe fn breakdown_of(ctx: *const sys::llama_context) -> Vec<BufferUse> {
    let mut raw: Vec<RawBufferUse> = (0..16)
        .map(|_| RawBufferUse {
            name: [0; 64],
            model: 0,
            context: 0,
            compute: 0,
        })
        .collect();
    let n = layerfit_memory_breakdown(ctx, raw.as_mut_ptr(), raw.len() as c_int).max(0) as usize;
    let mut v: Vec<BufferUse> = raw
        .iter()
        .take(n.min(raw.len()))
        .map(|b| BufferUse {
            name: CStr::from_ptr(b.name.as_ptr())
                .to_string_lossy()
                .into_owned(),
            model: Bytes(b.model as u64),
            context: Bytes(b.context as u64),
            compute: Bytes(b.compute as u64),
        })
        .collect();
    // Remote devices in llama.cpp's device order (the breakdown is in pointer order).
    v.sort_by_key(|b| super::rpc::device_order(&b.name));
    v
}

fn parse_output_mib(log: &[String]) -> Option<f64> {
    parse_buffer_mib(log, "output buffer size")
}

/// The sum of the log's `<what> = N MiB` lines (2-decimal MiB).
fn parse_buffer_mib(log: &[String], what: &str) -> Option<f64> {
    log.iter()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split('=')
                .nth(1)?
                .trim()
                .trim_end_matches("MiB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .reduce(|a, b| a + b)
}

fn parse_flash_attn(log: &[String]) -> Option<bool> {
    log.iter().rev().find_map(|l| {
        if l.contains("Flash Attention enabled") {
            Some(true)
        } else if l.contains("Flash Attention not supported") {
            Some(false)
        } else {
            None
        }
    })
}
