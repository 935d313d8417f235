//! Compute (scratch) and output buffers.
//!
//! llama.cpp sizes the compute buffer by reserving the worst-case graph: a prompt ubatch of
//! `n_tokens = n_ubatch` tokens, all of them producing logits, against the full KV cache
//! (`llama_context` constructor, `graph_reserve`). ggml's allocator reuses memory, so the
//! buffer is the peak of live tensors over the graph, which is reached in one of three places:
//!
//! - the output: logits `n_vocab x n_tokens` f32, while the KQ masks (graph inputs, live for
//!   the whole graph) and a few hidden-state rows are still held;
//! - attention without flash attention: the `n_kv x n_tokens x n_head` f32 score matrix;
//! - the feed-forward: gate, up and their product, `n_ff x n_tokens` f32 each (experts: per
//!   used expert).
//!
//! The masks are `n_kv x n_tokens`, f16 with flash attention and f32 without
//! (`build_attn_inp_kq_mask` in `src/llama-graph.cpp`); sliding-window caches have their own.
//! The counts of hidden-state rows alive at each peak (5 at the output, 7 around attention,
//! 5 around the feed-forward, with 3 rows of feed-forward width) were measured on llama.cpp's own reservations
//! (`docs/memory-model.md`); tests hold the estimate within 5% or 16 MiB of llama.cpp.

use crate::bytes::Bytes;
use crate::memory::kv::{CacheConfig, KvEstimate};
use crate::model::Shape;
use serde::Serialize;

/// Hidden-state rows (`n_embd x n_tokens` f32) live at each peak, measured.
const ROWS_AT_OUTPUT: u64 = 5;
const ROWS_AT_ATTENTION: u64 = 7;
const ROWS_AT_FFN: u64 = 5;
/// Feed-forward-width rows (`n_ff x n_tokens` f32: gate, up and their product) at that peak.
const FF_ROWS_AT_FFN: u64 = 3;

/// Which part of the graph sets the compute buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Peak {
    Output,
    Attention,
    FeedForward,
}

#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ComputeEstimate {
    /// The compute buffer for one device holding the whole model (CPU-only, or all layers
    /// offloaded). Not serialized: documents that flatten this struct carry it themselves.
    #[serde(skip)]
    pub bytes: Bytes,
    pub peak: Peak,
    pub n_tokens: u64,
    pub logits: Bytes,
    pub masks: Bytes,
    pub attention_scores: Bytes,
    pub feed_forward: Bytes,
    /// The host output buffer: a row of logits per output (`output_reserve`), as many as the
    /// engine may ask for in one batch (`CacheConfig::output_rows`).
    pub output_buffer: Bytes,
}

/// Floats in one row of the host output buffer (`llama_context::output_reserve`): the
/// logits, which llama.cpp always reserves, and in embedding mode an embedding
/// (`n_embd_out`) beside them.
pub fn output_row(shape: &Shape, cfg: &CacheConfig) -> u64 {
    shape.n_vocab + if cfg.embeddings { shape.n_embd_out } else { 0 }
}

/// Compute and output buffer bytes for `shape` with cache `kv` under `cfg`.
pub fn compute_buffers(shape: &Shape, kv: &KvEstimate, cfg: &CacheConfig) -> ComputeEstimate {
    let n_tokens = cfg.effective_ubatch();
    let f32s = |n: u64| Bytes(n.saturating_mul(4));
    let mask_elem = if cfg.flash_attn { 2 } else { 4 };
    let attends = shape.layers.iter().any(|l| l.has_kv);
    let full_layers = shape.layers.iter().any(|l| l.has_kv && !l.is_swa);
    let swa_layers = shape.layers.iter().any(|l| l.has_kv && l.is_swa);
    let mut masks = Bytes::ZERO;
    if full_layers {
        masks += Bytes(kv.cells * n_tokens * mask_elem);
    }
    if swa_layers {
        masks += Bytes(kv.swa_cells * n_tokens * mask_elem);
    }
    let hidden = f32s(shape.n_embd * n_tokens);
    let logits = f32s(shape.n_vocab * cfg.reserved_outputs());
    let output_peak = logits + masks + hidden.times(ROWS_AT_OUTPUT);

    let n_head_max = shape
        .layers
        .iter()
        .filter(|l| l.has_kv)
        .map(|l| l.n_head as u64)
        .max()
        .unwrap_or(0);
    let n_kv_max = if full_layers { kv.cells } else { kv.swa_cells };
    let attention_scores = if attends && !cfg.flash_attn {
        f32s(n_kv_max * n_tokens * n_head_max)
    } else {
        Bytes::ZERO
    };
    let attention_peak = if attends && !cfg.flash_attn {
        attention_scores + masks + hidden.times(ROWS_AT_ATTENTION)
    } else {
        Bytes::ZERO
    };

    // Experts without their own width key (Mixtral, llama arch) use feed_forward_length.
    let expert_ff = if shape.n_ff_expert > 0 {
        shape.n_ff_expert
    } else {
        shape.n_ff_max
    };
    // A mixture-of-experts layer holds, per token, the used experts' gate, up and product
    // (`mul_mat_id` outputs, `n_ff_exp x n_expert_used` each). Their down projections
    // (`n_embd x n_expert_used`) reuse a freed gate or up block when they fit in one; when
    // they are wider (Qwen3-30B/235B: 2048/4096 wide over 768/1536-wide experts) the
    // allocator adds them: Qwen3-235B-A22B's layout reserves 180.02 MiB at 4096 tokens, exactly
    // this term plus the mask, while gpt-oss and Mixtral (down no wider than an expert's
    // gate) reserve the three rows alone.
    let moe_width = if shape.n_expert > 1 {
        let used = shape.n_expert_used as u64;
        let (ff, down) = (expert_ff * used, shape.n_embd * used);
        FF_ROWS_AT_FFN * ff + if down > ff { down } else { 0 }
    } else {
        0
    };
    let ff_width = (FF_ROWS_AT_FFN * shape.n_ff_max).max(moe_width);
    let feed_forward = f32s(ff_width * n_tokens);
    let ffn_peak = feed_forward + masks + hidden.times(ROWS_AT_FFN);

    let (bytes, peak) = [
        (output_peak, Peak::Output),
        (attention_peak, Peak::Attention),
        (ffn_peak, Peak::FeedForward),
    ]
    .into_iter()
    .max_by_key(|(b, _)| *b)
    .unwrap_or((output_peak, Peak::Output));

    ComputeEstimate {
        bytes,
        peak,
        n_tokens,
        logits,
        masks,
        attention_scores,
        feed_forward,
        output_buffer: f32s(output_row(shape, cfg) * cfg.output_rows()),
    }
}
