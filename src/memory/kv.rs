//! KV cache and recurrent-state bytes, following llama.cpp's allocation exactly:
//! `llama_kv_cache::llama_kv_cache` (one K and one V tensor per layer that owns a cache,
//! `ggml_new_tensor_3d(type, n_embd_{k,v}_gqa(il), kv_size, n_stream)`),
//! `llama_kv_cache_iswa` (sliding-window layers get their own, smaller cache) and
//! `llama_memory_recurrent` (f32 r/s state rows per sequence).

use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::model::{MemoryKind, Shape};
use serde::Serialize;
use std::fmt;

/// The context parameters that change cache sizes (llama.cpp's defaults in `Default`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct CacheConfig {
    /// Requested context in tokens (`-c`).
    pub n_ctx: u64,
    pub type_k: GgmlType,
    pub type_v: GgmlType,
    /// Flash attention on: V is stored untransposed (required for a quantized V).
    pub flash_attn: bool,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub n_seq_max: u32,
    /// `--swa-full`: sliding-window layers keep the whole context.
    pub swa_full: bool,
    /// Logits reserved for every token of a ubatch: llama.cpp's default `n_outputs_max` (0,
    /// meaning `n_batch`), which a host that does not set it gets. `false`: one output per
    /// sequence, as layerfit's engine and llama-server (`n_outputs_max = n_parallel`,
    /// `tools/server/server-context.cpp`) set it.
    pub batch_outputs: bool,
    /// Outputs each sequence may ask for in one batch: 1, or 1 + the tokens a draft model
    /// proposes per step when speculative decoding verifies them in one batch (llama-server's
    /// `common_speculative_get_output_limits`: `n_outputs_max = n_parallel * (1 + n_draft)`).
    pub outputs_per_seq: u32,
    /// Embedding mode (`llama_context_params.embeddings`, `serve --embeddings`): every token
    /// of a batch is an output (`llama_context::decode`, `output_all`), so `n_outputs_max`
    /// is `n_batch`, and each output holds a row of logits and an embedding
    /// (`output_reserve`). llama-server sets `n_batch = n_ubatch` then, as `cache_config`
    /// does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub embeddings: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            n_ctx: 32768,
            type_k: GgmlType::F16,
            type_v: GgmlType::F16,
            flash_attn: true,
            n_batch: 2048,
            n_ubatch: 512,
            n_seq_max: 1,
            swa_full: false,
            batch_outputs: false,
            outputs_per_seq: 1,
            embeddings: false,
        }
    }
}

/// llama.cpp pads the context to whole 256-cell pages (`GGML_PAD(n_ctx, 256)`).
pub const CTX_PAD: u64 = 256;

pub fn pad(x: u64, to: u64) -> u64 {
    x.div_ceil(to) * to
}

impl CacheConfig {
    /// The context llama.cpp creates: padded to 256 cells.
    pub fn padded_ctx(&self) -> u64 {
        pad(self.n_ctx.max(1), CTX_PAD)
    }

    /// `cparams.n_batch` (capped by the context for causal models).
    pub fn effective_batch(&self) -> u64 {
        (self.n_batch as u64).min(self.padded_ctx())
    }

    /// `cparams.n_ubatch`.
    pub fn effective_ubatch(&self) -> u64 {
        (self.n_ubatch as u64).min(self.effective_batch())
    }

    /// `n_outputs_max` as layerfit's engine and llama-server set it: the sequences times the
    /// outputs each may ask for, at most `n_batch`; or 0 (llama.cpp's default, `n_batch`) with
    /// `batch_outputs`.
    pub fn n_outputs_max(&self) -> u32 {
        if self.batch_outputs || self.embeddings {
            0
        } else {
            let n = self.n_seq_max.max(1) as u64 * self.outputs_per_seq.max(1) as u64;
            n.min(self.effective_batch()) as u32
        }
    }

    /// `n_outputs_max_per_seq` as layerfit's engine and llama-server set it (llama.cpp's
    /// default, 1, with `batch_outputs`).
    pub fn n_outputs_max_per_seq(&self) -> u32 {
        if self.batch_outputs || self.embeddings {
            1
        } else {
            (self.outputs_per_seq.max(1) as u64).min(self.effective_batch()) as u32
        }
    }

    /// Outputs the worst-case graph reserves: `min(n_ubatch, n_outputs_max)` (`sched_reserve`).
    pub fn reserved_outputs(&self) -> u64 {
        match self.n_outputs_max() {
            0 => self.effective_ubatch(),
            n => self.effective_ubatch().min(n as u64),
        }
    }

    /// Rows of the host output buffer (`llama_context::output_reserve`): one per sequence at
    /// load, grown to the largest batch of outputs decoded, which is `n_outputs_max` when a
    /// draft's proposals are verified; one per sequence with llama.cpp's default, where a
    /// host asks for one output per sequence. In embedding mode every token of a batch is an
    /// output: the buffer grows to `n_batch` rows.
    pub fn output_rows(&self) -> u64 {
        let n_seq = self.n_seq_max.max(1) as u64;
        if self.embeddings {
            n_seq.max(self.effective_batch())
        } else if self.batch_outputs {
            n_seq
        } else {
            n_seq.max(self.n_outputs_max() as u64)
        }
    }

    /// Cells of a sliding-window layer's cache (`llama_kv_cache_iswa`):
    /// `PAD(min(n_ctx, n_swa * n_seq + n_ubatch), 256)`, or the full context with `swa_full`.
    pub fn swa_cells(&self, n_swa: u32) -> u64 {
        let full = self.padded_ctx();
        if self.swa_full {
            return full;
        }
        pad(full.min(n_swa as u64 + self.effective_ubatch()), CTX_PAD)
    }
}

/// Why a cache type cannot be used with a model (llama.cpp refuses these too).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub enum KvError {
    /// A quantized V cache needs flash attention (`llama_init_from_model`).
    QuantizedVNeedsFlashAttention(GgmlType),
    /// A row of `n` values is not a whole number of the type's blocks.
    RowNotBlockMultiple {
        layer: usize,
        n: u64,
        ggml_type: GgmlType,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::QuantizedVNeedsFlashAttention(t) => {
                write!(f, "a {t} V cache needs flash attention")
            }
            KvError::RowNotBlockMultiple { layer, n, ggml_type } => write!(
                f,
                "layer {layer}: {n} cache values per token are not a multiple of {ggml_type}'s block of {}",
                ggml_type.block_size()
            ),
        }
    }
}

/// One layer's cache.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LayerKv {
    pub cells: u64,
    pub k: Bytes,
    pub v: Bytes,
    /// Recurrent state (r + s rows), for SSM/RWKV layers.
    pub state: Bytes,
}

impl LayerKv {
    pub fn total(&self) -> Bytes {
        self.k + self.v + self.state
    }
}

/// The whole cache for a configuration.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct KvEstimate {
    /// Cells of full-attention layers (the padded context).
    pub cells: u64,
    /// Cells of sliding-window layers (equal to `cells` without SWA or with `swa_full`).
    pub swa_cells: u64,
    pub per_layer: Vec<LayerKv>,
    pub attention: Bytes,
    pub recurrent: Bytes,
    pub total: Bytes,
}

/// KV cache bytes for `shape` under `cfg`.
pub fn kv_cache(shape: &Shape, cfg: &CacheConfig) -> Result<KvEstimate, KvError> {
    if !cfg.flash_attn && is_quantized(cfg.type_v) && shape.memory != MemoryKind::Recurrent {
        return Err(KvError::QuantizedVNeedsFlashAttention(cfg.type_v));
    }
    let cells = cfg.padded_ctx();
    let swa_cells = if shape.is_swa_any() {
        cfg.swa_cells(shape.n_swa)
    } else {
        cells
    };
    // Without flash attention V is stored transposed and padded to the widest layer.
    let v_trans = !cfg.flash_attn;
    let v_max = shape.n_embd_v_gqa_max();
    let streams = cfg.n_seq_max.max(1) as u64;
    let mut per_layer = Vec::with_capacity(shape.layers.len());
    for (il, l) in shape.layers.iter().enumerate() {
        let mut lk = LayerKv {
            cells: 0,
            k: Bytes::ZERO,
            v: Bytes::ZERO,
            state: Bytes::ZERO,
        };
        if l.has_kv {
            // Hybrid models keep a full-size cache for their attention layers.
            let c = if l.is_swa { swa_cells } else { cells };
            let row = |t: GgmlType, n: u64| {
                t.row_size(n).ok_or(KvError::RowNotBlockMultiple {
                    layer: il,
                    n,
                    ggml_type: t,
                })
            };
            lk.cells = c;
            lk.k = row(cfg.type_k, l.n_embd_k_gqa())?.times(c * streams);
            if !shape.mla {
                let nv = if v_trans { v_max } else { l.n_embd_v_gqa() };
                lk.v = row(cfg.type_v, nv)?.times(c * streams);
            }
        }
        if l.is_recurrent {
            if let Some(r) = shape.recurrent {
                // r and s rows are f32, one row per sequence (`mem_size = max(1, n_seq_max)`).
                lk.state = Bytes((r.n_embd_r + r.n_embd_s) * 4).times(streams);
            }
        }
        per_layer.push(lk);
    }
    let attention: Bytes = per_layer.iter().map(|l| l.k + l.v).sum();
    let recurrent: Bytes = per_layer.iter().map(|l| l.state).sum();
    Ok(KvEstimate {
        cells,
        swa_cells,
        per_layer,
        attention,
        recurrent,
        total: attention + recurrent,
    })
}

fn is_quantized(t: GgmlType) -> bool {
    !matches!(t, GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16)
}
