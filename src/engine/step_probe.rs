//! llama.cpp's own cost per decode step beyond the kernels: the engine decodes a tiny
//! synthetic llama model (64 wide, one head, weights and cache that sit in the core's
//! caches, so the kernels take next to nothing) at two depths, and a step's time is what
//! llama.cpp spends around the kernels: building and scheduling the graph, waking the
//! threads for each of a block's nodes, the small operations, the logits' copy. Why: the
//! speed model summed the kernels timed alone and a per-node cost from a chain of tiny
//! nodes (about 0.2 us a node at 1 thread), and predicted SmolLM2's decode step 1.8 ms
//! (1 thread) to 2.9 ms (2 threads) shorter than llama.cpp then took.

use super::ggml_bench::median_seconds;
use super::measure::init_backend;
use crate::ggml_type::GgmlType;
use crate::gguf::writer::{Data, GgufWriter, WriteValue};
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::path::Path;
use std::time::Duration;

/// Block counts of the two probe models: the step time's growth between them is the cost
/// per block, the rest the cost per step.
pub const SHALLOW_BLOCKS: u32 = 2;
pub const DEEP_BLOCKS: u32 = 34;
const WIDTH: u64 = 64;
const VOCAB: usize = 256;
/// Steps between cache clears: attention then reads at most this many cells.
const STEPS_PER_FILL: i32 = 24;

struct Loaded {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    pos: i32,
}

/// The two probe models, loaded in the engine (CPU only).
pub struct StepProbe {
    shallow: Loaded,
    deep: Loaded,
}

impl StepProbe {
    /// Writes the probe models under `dir`, loads them (into memory, the files are removed
    /// after loading) and returns the probe; `Err` names what failed.
    pub fn new(dir: &Path) -> Result<StepProbe, String> {
        init_backend();
        let load = |blocks: u32| -> Result<Loaded, String> {
            let path = dir.join(format!(
                "layerfit-step-probe-{}-{blocks}.gguf",
                std::process::id()
            ));
            probe_model(blocks)
                .write(&path, Data::Sparse)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let loaded = load(&path);
            let _ = std::fs::remove_file(&path);
            loaded.ok_or_else(|| format!("the engine did not load {}", path.display()))
        };
        Ok(StepProbe {
            shallow: load(SHALLOW_BLOCKS)?,
            deep: load(DEEP_BLOCKS)?,
        })
    }

    /// Median seconds of one decode step of the probe with `blocks` blocks (one of the two)
    /// at `threads`, over `budget`.
    pub fn step_seconds(&mut self, blocks: u32, threads: u32, budget: Duration) -> Option<f64> {
        let m = if blocks == DEEP_BLOCKS {
            &mut self.deep
        } else {
            &mut self.shallow
        };
        // SAFETY: `m.ctx` is a live context of this probe; `&mut self` keeps it to one caller,
        // and its raw pointers keep the probe on the thread that loaded it.
        unsafe { sys::llama_set_n_threads(m.ctx, threads as i32, threads as i32) };
        median_seconds(budget, || {
            if m.pos >= STEPS_PER_FILL {
                // SAFETY: `m.ctx` is live (above); its memory handle belongs to it.
                unsafe { sys::llama_memory_clear(sys::llama_get_memory(m.ctx), true) };
                m.pos = 0;
            }
            let mut token: sys::llama_token = 16 + m.pos % 64;
            m.pos += 1;
            // SAFETY: `m.ctx` is live (above); the batch points at `token`, one token below the
            // model's 256-entry vocabulary, which outlives the decode that reads it, at a
            // position below the 256-cell context (the cache is cleared every
            // `STEPS_PER_FILL` steps).
            unsafe { sys::llama_decode(m.ctx, sys::llama_batch_get_one(&mut token, 1)) == 0 }
        })
    }
}

fn load(path: &Path) -> Option<Loaded> {
    let c = CString::new(path.to_str()?).ok()?;
    // SAFETY: returns plain parameter values.
    let mut mp = unsafe { sys::llama_model_default_params() };
    mp.n_gpu_layers = 0;
    mp.load_mode = sys::LLAMA_LOAD_MODE_NONE;
    // SAFETY: the engine is initialised (`StepProbe::new`); `c` is NUL-terminated and
    // outlives the call; `mp` is the defaults (their pointers null) with two plain fields
    // set. The model (or null) is owned by the `Loaded` made below, or freed below when its
    // context cannot be made.
    let model = unsafe { sys::llama_model_load_from_file(c.as_ptr(), mp) };
    if model.is_null() {
        return None;
    }
    // SAFETY: returns plain parameter values.
    let mut cp = unsafe { sys::llama_context_default_params() };
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_ubatch = 256;
    cp.n_seq_max = 1;
    cp.n_outputs_max = 1;
    cp.n_outputs_max_per_seq = 1;
    cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_ENABLED;
    // SAFETY: `model` is live and non-null; `cp` is the defaults (their pointers null) with
    // plain fields set. The context (or null) is owned by the `Loaded` made below.
    let ctx = unsafe { sys::llama_init_from_model(model, cp) };
    if ctx.is_null() {
        // SAFETY: `model` is live, has no context and is not used again.
        unsafe { sys::llama_model_free(model) };
        return None;
    }
    Some(Loaded { model, ctx, pos: 0 })
}

impl Drop for Loaded {
    fn drop(&mut self) {
        // SAFETY: `self` alone owns the context and the model, each freed once, here: the
        // context first, as it refers to the model.
        unsafe {
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}

/// A llama model of `blocks` blocks, 64 wide, one 64-wide head, q8_0 matrices, tied
/// output, 256 placeholder tokens; its data is zeros (the kernels' share is negligible).
fn probe_model(blocks: u32) -> GgufWriter {
    let mut w = GgufWriter::new();
    let q8 = GgmlType::Q8_0;
    w.kv("general.architecture", WriteValue::Str("llama".into()))
        .kv(
            "general.name",
            WriteValue::Str("layerfit step probe".into()),
        )
        .kv("llama.context_length", WriteValue::U32(4096))
        .kv("llama.embedding_length", WriteValue::U32(WIDTH as u32))
        .kv("llama.block_count", WriteValue::U32(blocks))
        .kv(
            "llama.feed_forward_length",
            WriteValue::U32(2 * WIDTH as u32),
        )
        .kv("llama.attention.head_count", WriteValue::U32(1))
        .kv("llama.attention.head_count_kv", WriteValue::U32(1))
        .kv("llama.rope.dimension_count", WriteValue::U32(WIDTH as u32))
        .loadable_defaults("llama", VOCAB);
    w.tensor("token_embd.weight", &[WIDTH, VOCAB as u64], q8);
    w.tensor("output_norm.weight", &[WIDTH], GgmlType::F32);
    for i in 0..blocks {
        let b = |s: &str| format!("blk.{i}.{s}.weight");
        w.tensor(&b("attn_norm"), &[WIDTH], GgmlType::F32);
        for m in ["attn_q", "attn_k", "attn_v", "attn_output"] {
            w.tensor(&b(m), &[WIDTH, WIDTH], q8);
        }
        w.tensor(&b("ffn_norm"), &[WIDTH], GgmlType::F32);
        w.tensor(&b("ffn_gate"), &[WIDTH, 2 * WIDTH], q8);
        w.tensor(&b("ffn_up"), &[WIDTH, 2 * WIDTH], q8);
        w.tensor(&b("ffn_down"), &[2 * WIDTH, WIDTH], q8);
    }
    w
}
