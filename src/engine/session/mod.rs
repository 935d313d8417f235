//! A chat session on the bundled llama.cpp, loaded exactly as a plan says: layers offloaded,
//! cache types, context, sliding-window cache size, batch sizes, threads, mmap/mlock. The
//! raw C API (`llama-cpp-sys-2`, the crate `llama-cpp-2` builds on) is used directly so the
//! same context can be asked what it allocated (`llama_get_memory_breakdown`).

pub mod chat;
pub mod jinja;
mod media;
mod speculative;
mod text;

pub(crate) use speculative::{argmax_at, reusable};
pub use text::plain_text;

use super::measure::{breakdown_of, init_backend, BufferUse, EngineError};
use crate::ggml_type::GgmlType;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How to load the model and create the context.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub model: PathBuf,
    pub n_ctx: u32,
    pub n_gpu_layers: i32,
    /// Blocks whose MoE experts / dense feed-forward weights stay in CPU memory.
    pub n_cpu_moe: u32,
    pub n_cpu_ffn: u32,
    /// `--no-repack`: no CPU_REPACK copies of the weights.
    pub no_repack: bool,
    /// Hide every GPU from llama.cpp (`-dev none`): no buffer at all on a GPU.
    pub no_gpu_devices: bool,
    pub type_k: GgmlType,
    pub type_v: GgmlType,
    pub flash_attn: bool,
    /// llama.cpp's default (and llama-cpp-2's) is a full-size sliding-window cache; plans
    /// size it to the window, so this is normally false.
    pub swa_full: bool,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub threads: i32,
    pub use_mmap: bool,
    pub use_mlock: bool,
    /// Built-in template used when the file has none (or one llama.cpp cannot apply).
    pub fallback_template: String,
    /// Sequences decoded together (`serve --parallel`), each with `n_ctx` cells of its own.
    pub n_seq: u32,
    /// Outputs (rows of logits) one sequence may ask for in one batch: 1, or 1 + the tokens
    /// a draft proposes per step, which the model verifies in one batch.
    pub n_outputs_per_seq: u32,
    /// RPC servers whose devices come first (`--rpc`), and the fraction of the offloaded
    /// layers per device (llama.cpp's `--tensor-split`; empty: llama.cpp's default split).
    pub rpc: Vec<crate::rpc::endpoint::Endpoint>,
    pub tensor_split: Vec<f32>,
    /// Embedding mode with this pooling (`serve --embeddings`, `engine::embed`): a context
    /// with `embeddings = true`, one ubatch a batch and every token an output.
    pub embeddings: Option<crate::engine::embed::Pooling>,
}

impl SessionConfig {
    /// llama.cpp's `n_outputs_max` for this context: every sequence's outputs, at most a
    /// batch (llama-server's `common_speculative_get_output_limits`).
    /// In embedding mode every token of a batch is an output: `n_batch`.
    pub fn n_outputs_max(&self) -> u32 {
        if self.embeddings.is_some() {
            return self.n_batch().max(1);
        }
        let n = self.n_seq.max(1) as u64 * self.n_outputs_per_seq.max(1) as u64;
        n.min(self.n_batch.max(1) as u64) as u32
    }

    /// The batch llama.cpp is given: one ubatch in embedding mode, as llama-server sets it
    /// (`plan::search::cache_config` plans the same).
    pub fn n_batch(&self) -> u32 {
        if self.embeddings.is_some() {
            self.n_ubatch
        } else {
            self.n_batch
        }
    }
}

/// Sampling and limits for one answer.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub max_tokens: u32,
    /// 0: greedy.
    pub temperature: f32,
    pub seed: u32,
}

/// What one answer took.
#[derive(Clone, Debug, Default, serde::Serialize, schemars::JsonSchema)]
pub struct GenStats {
    pub prompt_tokens: u32,
    /// Prompt tokens reused from the previous turn's cache.
    pub reused_tokens: u32,
    pub generated_tokens: u32,
    pub prompt_seconds: f64,
    pub decode_seconds: f64,
    /// Stopped by Ctrl-C, not by the model or the limit.
    pub interrupted: bool,
    /// With a draft model: tokens the draft proposed, and how many of them the model
    /// accepted (0 and 0 without a draft).
    pub draft_tokens: u32,
    pub draft_accepted: u32,
}

impl GenStats {
    pub fn prompt_tokens_per_s(&self) -> Option<f64> {
        let n = self.prompt_tokens - self.reused_tokens;
        (self.prompt_seconds > 0.0 && n > 0).then(|| n as f64 / self.prompt_seconds)
    }
    /// The share of drafted tokens the model accepted; `None` without drafting.
    pub fn draft_acceptance(&self) -> Option<f64> {
        (self.draft_tokens > 0).then(|| self.draft_accepted as f64 / self.draft_tokens as f64)
    }
    pub fn decode_tokens_per_s(&self) -> Option<f64> {
        (self.decode_seconds > 0.0 && self.generated_tokens > 1)
            .then(|| (self.generated_tokens - 1) as f64 / self.decode_seconds)
    }
}

pub struct Session {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    vocab: *const sys::llama_vocab,
    template: CString,
    /// The file's own (Jinja) template through llama.cpp's chat layer, as llama-server
    /// applies it; `None` when the file has none (then `template`, a built-in one).
    jinja: Option<jinja::Templates>,
    /// Set when the built-in fallback template is used, saying why.
    pub template_note: Option<String>,
    /// Tokens currently in the KV cache (sequence 0), to reuse across turns.
    cached: Vec<sys::llama_token>,
    n_ctx: u32,
    n_batch: u32,
    /// llama.cpp's `n_outputs_max` for this context (`SessionConfig::n_outputs_max`).
    n_outputs_max: u32,
    /// Embedding mode: each output row holds an embedding of `n_embd_out` floats too.
    embeddings: bool,
}

/// # Safety
/// `user` is the `&mut &mut dyn FnMut(f32)` that `load` passes, alive while llama.cpp loads.
unsafe extern "C" fn progress_trampoline(progress: f32, user: *mut c_void) -> bool {
    // SAFETY: see the function's contract.
    let f = &mut *(user as *mut &mut dyn FnMut(f32));
    f(progress);
    true
}

impl Session {
    /// Loads the model and creates the context; `on_progress` sees 0.0..=1.0 while loading.
    pub fn load(
        cfg: &SessionConfig,
        on_progress: &mut dyn FnMut(f32),
    ) -> Result<Session, EngineError> {
        init_backend();
        let c_path = CString::new(cfg.model.to_string_lossy().as_bytes())
            .map_err(|_| EngineError("the model path contains a NUL byte".into()))?;
        super::rpc::connect(&cfg.rpc)?;
        // SAFETY: a pure query of a compile-time constant.
        let mut split = vec![0f32; unsafe { sys::llama_max_devices() }];
        for (s, f) in split.iter_mut().zip(&cfg.tensor_split) {
            *s = *f;
        }
        // SAFETY: every pointer handed to llama.cpp (path, split, device list, overrides,
        // progress callback) outlives the load call that reads it; the model and context are
        // freed once, in `Drop`, or here when creating the context fails.
        unsafe {
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = cfg.n_gpu_layers;
            if cfg.tensor_split.iter().any(|&f| f > 0.0) {
                mp.tensor_split = split.as_ptr();
            }
            mp.use_extra_bufts = !cfg.no_repack;
            // An empty, NULL-terminated device list (a NULL list means "every device").
            let mut no_devices: [sys::ggml_backend_dev_t; 1] = [std::ptr::null_mut()];
            if cfg.no_gpu_devices {
                mp.devices = no_devices.as_mut_ptr();
            }
            mp.load_mode = match (cfg.use_mmap, cfg.use_mlock) {
                (true, true) => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
                (true, false) => sys::LLAMA_LOAD_MODE_MMAP,
                (false, true) => sys::LLAMA_LOAD_MODE_MLOCK,
                (false, false) => sys::LLAMA_LOAD_MODE_NONE,
            };
            // Tensors the plan keeps in CPU memory (`--n-cpu-moe`, `--n-cpu-ffn`); the list
            // lives until the model is loaded.
            let overrides = super::overrides::CpuOverrides::new(cfg.n_cpu_moe, cfg.n_cpu_ffn);
            if let Some(p) = overrides.as_ptr() {
                mp.tensor_buft_overrides = p;
            }
            let mut cb: &mut dyn FnMut(f32) = on_progress;
            mp.progress_callback = Some(progress_trampoline);
            mp.progress_callback_user_data = &mut cb as *mut &mut dyn FnMut(f32) as *mut c_void;
            let model = sys::llama_model_load_from_file(c_path.as_ptr(), mp);
            drop(overrides);
            if model.is_null() {
                return Err(EngineError(format!(
                    "{}: llama.cpp could not load the model",
                    cfg.model.display()
                )));
            }
            let mut cp = sys::llama_context_default_params();
            let n_seq = cfg.n_seq.max(1);
            // A non-unified cache: one stream of `n_ctx` cells per sequence.
            cp.n_ctx = if n_seq > 1 {
                cfg.n_ctx.div_ceil(256) * 256 * n_seq
            } else {
                cfg.n_ctx
            };
            cp.n_batch = cfg.n_batch();
            cp.n_ubatch = cfg.n_ubatch;
            if let Some(p) = cfg.embeddings {
                cp.embeddings = true;
                cp.pooling_type = p.raw();
            }
            cp.n_seq_max = n_seq;
            // The outputs the sequences may ask for, as llama-server sets them and the plan
            // sizes them (`CacheConfig::n_outputs_max`): the batch scheduler and the
            // speculative loop ask for no more (llama.cpp aborts past it).
            cp.n_outputs_max = cfg.n_outputs_max();
            cp.n_outputs_max_per_seq = cfg.n_outputs_per_seq.clamp(1, cp.n_outputs_max);
            if cfg.embeddings.is_some() {
                // Every token is an output: 0 is llama.cpp's `n_batch` (after it caps the
                // batch by the context).
                cp.n_outputs_max = 0;
                cp.n_outputs_max_per_seq = 1;
            }
            cp.type_k = cfg.type_k.id() as sys::ggml_type;
            cp.type_v = cfg.type_v.id() as sys::ggml_type;
            cp.flash_attn_type = if cfg.flash_attn {
                sys::LLAMA_FLASH_ATTN_TYPE_ENABLED
            } else {
                sys::LLAMA_FLASH_ATTN_TYPE_DISABLED
            };
            cp.swa_full = cfg.swa_full;
            cp.n_threads = cfg.threads;
            cp.n_threads_batch = cfg.threads;
            let ctx = sys::llama_init_from_model(model, cp);
            if ctx.is_null() {
                sys::llama_model_free(model);
                return Err(EngineError(format!(
                    "{}: llama.cpp could not create a {}-token context (out of memory?)",
                    cfg.model.display(),
                    cfg.n_ctx
                )));
            }
            let vocab = sys::llama_model_get_vocab(model);
            // In embedding mode the batch and the outputs are what llama.cpp resolved.
            let (n_batch, n_outputs_max) = if cfg.embeddings.is_some() {
                let n = sys::llama_n_batch(ctx);
                (n, n)
            } else {
                (cfg.n_batch.max(1), cp.n_outputs_max)
            };
            let mut s = Session {
                model,
                ctx,
                vocab,
                template: CString::new(cfg.fallback_template.clone()).unwrap_or_default(),
                jinja: None,
                template_note: None,
                cached: Vec::new(),
                n_ctx: sys::llama_n_ctx(ctx),
                n_batch,
                n_outputs_max,
                embeddings: cfg.embeddings.is_some(),
            };
            let own = sys::llama_model_chat_template(model, std::ptr::null());
            let probe = [chat::Message::new(chat::Role::User, "hi")];
            if own.is_null() {
                s.template_note = Some(format!(
                    "the model file has no chat template: using llama.cpp's built-in '{}' template",
                    cfg.fallback_template
                ));
            } else {
                // The file's Jinja template, as llama-server renders it; else llama.cpp's
                // legacy matcher on the same template; else the built-in one.
                s.jinja = jinja::Templates::new(model).ok();
                if s.jinja.is_some() && s.format(&probe, true).is_err() {
                    s.jinja = None;
                }
                if s.jinja.is_none() {
                    let own = CStr::from_ptr(own).to_owned();
                    let fallback = std::mem::replace(&mut s.template, own);
                    if s.format(&probe, true).is_err() {
                        s.template = fallback;
                        s.template_note = Some(format!(
                            "llama.cpp cannot apply the file's chat template: using its built-in '{}' template",
                            cfg.fallback_template
                        ));
                    }
                }
            }
            Ok(s)
        }
    }

    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// Cells each sequence has (the whole context with one sequence).
    pub fn n_ctx_seq(&self) -> u32 {
        // SAFETY: `self.ctx` is the live context this session owns.
        unsafe { sys::llama_n_ctx_seq(self.ctx) }
    }

    /// The host output buffer the plan holds for this context: a row of logits (and in
    /// embedding mode an embedding) per output it may decode at once
    /// (`CacheConfig::output_rows`, `memory::compute::output_row`), which the self-check
    /// takes off the host's compute figure.
    pub fn output_buffer(&self) -> crate::bytes::Bytes {
        // SAFETY: `self.vocab` belongs to the model this session owns.
        let n_vocab = unsafe { sys::llama_vocab_n_tokens(self.vocab) }.max(0) as u64;
        let row = n_vocab
            + if self.embeddings {
                self.n_embd_out() as u64
            } else {
                0
            };
        // SAFETY: `self.ctx` is the live context this session owns.
        let n_seq = unsafe { sys::llama_n_seq_max(self.ctx) } as u64;
        let rows = (self.n_outputs_max as u64).max(if self.embeddings { n_seq } else { 0 });
        crate::bytes::Bytes(row * 4 * rows)
    }

    /// The width of an output embedding (`llama_model_n_embd_out`).
    pub fn n_embd_out(&self) -> u32 {
        // SAFETY: `self.model` is the live model this session owns.
        unsafe { sys::llama_model_n_embd_out(self.model) }.max(0) as u32
    }

    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    /// The model's handle, for a projector loaded beside it (`engine::vision`).
    pub(crate) fn model_raw(&self) -> *const sys::llama_model {
        self.model
    }

    /// The context and vocabulary, for the batch engine that drives several sequences.
    pub(crate) fn raw(&self) -> (*mut sys::llama_context, *const sys::llama_vocab) {
        (self.ctx, self.vocab)
    }

    /// What llama.cpp allocated, per buffer type.
    pub fn breakdown(&self) -> Vec<BufferUse> {
        // SAFETY: `self.ctx` is the live context this session owns.
        unsafe { breakdown_of(self.ctx) }
    }

    fn decode(&mut self, tokens: &[sys::llama_token]) -> Result<(), EngineError> {
        for chunk in tokens.chunks(self.n_batch as usize) {
            let mut owned = chunk.to_vec();
            // SAFETY: the batch views `owned`, which lives past the decode.
            let rc = unsafe {
                let batch = sys::llama_batch_get_one(owned.as_mut_ptr(), owned.len() as i32);
                sys::llama_decode(self.ctx, batch)
            };
            if rc != 0 {
                return Err(EngineError(format!("llama_decode failed (code {rc})")));
            }
            self.cached.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// Keeps what the cache shares with `prompt` (the previous turn), drops the rest and
    /// reads the new part: the stats of an answer about to start, logits at the last token.
    fn read_prompt(&mut self, prompt: &[sys::llama_token]) -> Result<GenStats, EngineError> {
        if prompt.len() as u32 >= self.n_ctx {
            return Err(EngineError(format!(
                "the prompt ({} tokens) does not fit the {}-token context",
                prompt.len(),
                self.n_ctx
            )));
        }
        let mut keep = speculative::reusable(&self.cached, prompt);
        if !self.truncate(keep) {
            // Sliding-window and recurrent caches cannot always drop a suffix: start over.
            // SAFETY: `self.ctx` is the live context this session owns.
            unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true) };
            self.cached.clear();
            keep = 0;
        }
        let mut stats = GenStats {
            prompt_tokens: prompt.len() as u32,
            reused_tokens: keep as u32,
            ..GenStats::default()
        };
        let t = Instant::now();
        self.decode(&prompt[keep..])?;
        stats.prompt_seconds = t.elapsed().as_secs_f64();
        Ok(stats)
    }

    /// Drops every cached token from position `n` on; false when the cache cannot (a
    /// sliding-window or recurrent cache), and then nothing is dropped from `cached`.
    fn truncate(&mut self, n: usize) -> bool {
        if n >= self.cached.len() {
            return true;
        }
        // SAFETY: `self.ctx` is the live context this session owns; sequence 0 exists.
        let ok =
            unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ctx), 0, n as i32, -1) };
        if ok {
            self.cached.truncate(n);
        }
        ok
    }

    /// Answers `prompt` (a formatted conversation's tokens), streaming text to `on_text`.
    /// The cache keeps what the previous turn left when it is a prefix of this prompt.
    pub fn generate(
        &mut self,
        prompt: &[sys::llama_token],
        opts: &GenOptions,
        stop: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenStats, EngineError> {
        let stats = self.read_prompt(prompt)?;
        self.answer(stats, opts, stop, on_text)
    }

    /// Samples the answer once the prompt is read (logits at its last token).
    fn answer(
        &mut self,
        mut stats: GenStats,
        opts: &GenOptions,
        stop: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenStats, EngineError> {
        let smpl = Sampler::new(opts);
        let mut out = Utf8Out::default();
        let t = Instant::now();
        let result = (|| {
            while stats.generated_tokens < opts.max_tokens {
                if stop.load(Ordering::Relaxed) {
                    stats.interrupted = true;
                    break;
                }
                let tok = smpl.sample(self.ctx, -1);
                // SAFETY: `self.vocab` belongs to the model this session owns.
                if unsafe { sys::llama_vocab_is_eog(self.vocab, tok) } {
                    break;
                }
                stats.generated_tokens += 1;
                out.push(&self.piece(tok), on_text);
                if self.cached.len() as u32 + 1 >= self.n_ctx {
                    break;
                }
                self.decode(&[tok])?;
            }
            Ok(())
        })();
        stats.decode_seconds = t.elapsed().as_secs_f64();
        out.flush(on_text);
        result.map(|_| stats)
    }
}

/// The sampler chain of one answer: greedy at temperature 0, else top-k 40, top-p 0.95,
/// the temperature and a seeded draw.
struct Sampler(*mut sys::llama_sampler);

impl Sampler {
    fn new(opts: &GenOptions) -> Sampler {
        // SAFETY: each `init` returns a new sampler the chain takes ownership of; the chain
        // is freed once, in `Drop`.
        unsafe {
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            if opts.temperature <= 0.0 {
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_greedy());
            } else {
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_top_k(40));
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_top_p(0.95, 1));
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_temp(opts.temperature));
                sys::llama_sampler_chain_add(chain, sys::llama_sampler_init_dist(opts.seed));
            }
            Sampler(chain)
        }
    }

    /// Samples from the logits of output `idx` of the last decode (-1: the last output) and
    /// accepts the token into the chain's state.
    fn sample(&self, ctx: *mut sys::llama_context, idx: i32) -> sys::llama_token {
        // SAFETY: `ctx` is a live context whose last decode produced output `idx`.
        unsafe { sys::llama_sampler_sample(self.0, ctx, idx) }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the chain was created in `new` and is freed only here.
        unsafe { sys::llama_sampler_free(self.0) };
    }
}

/// Token bytes to text: whole UTF-8 characters are passed on as soon as they are complete.
#[derive(Default)]
struct Utf8Out {
    pending: Vec<u8>,
}

impl Utf8Out {
    fn push(&mut self, bytes: &[u8], on_text: &mut dyn FnMut(&str)) {
        self.pending.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        if valid > 0 {
            on_text(std::str::from_utf8(&self.pending[..valid]).unwrap_or(""));
            self.pending.drain(..valid);
        }
    }

    fn flush(&mut self, on_text: &mut dyn FnMut(&str)) {
        if !self.pending.is_empty() {
            on_text(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the context and the model were created in `load` and are freed once.
        unsafe {
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}

/// The built-in chat template llama.cpp knows for an architecture, for files without one.
pub fn fallback_template(architecture: &str) -> &'static str {
    match architecture {
        a if a.starts_with("gemma") => "gemma",
        "phi3" => "phi3",
        _ => "chatml",
    }
}
