//! Building a `Shape` from GGUF metadata, the way `llama_model_base::load_hparams` does.

use super::arch::{rules_for, MemoryKind, SwaKind};
use super::keys;
use super::meta::{describe, layer_kinds, recurrent_state, sliding_window, Meta};
use crate::gguf::{Metadata, Value};
use serde::Serialize;
use std::fmt;

/// Why a header cannot describe a runnable model (missing architecture, zero heads, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeError(pub String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

/// One block's attention geometry (`llama_hparams` per-layer accessors).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LayerShape {
    pub n_head: u32,
    pub n_head_kv: u32,
    /// `n_embd_head_k(il)`: the SWA head size on sliding-window layers.
    pub head_dim_k: u32,
    pub head_dim_v: u32,
    pub is_swa: bool,
    pub is_recurrent: bool,
    /// The layer stores its own K/V (false when it reuses another layer's, or for
    /// multi-token-prediction layers the main context never attends).
    pub has_kv: bool,
}

impl LayerShape {
    /// `n_embd_k_gqa(il)`.
    pub fn n_embd_k_gqa(&self) -> u64 {
        self.head_dim_k as u64 * self.n_head_kv as u64
    }

    /// `n_embd_v_gqa(il)`.
    pub fn n_embd_v_gqa(&self) -> u64 {
        self.head_dim_v as u64 * self.n_head_kv as u64
    }
}

/// The per-sequence state of recurrent layers (`n_embd_r`, `n_embd_s`, both f32).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RecurrentState {
    pub n_embd_r: u64,
    pub n_embd_s: u64,
}

/// Everything the memory model needs to know about a model, per layer.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Shape {
    pub architecture: String,
    pub name: Option<String>,
    pub block_count: u32,
    /// Trailing blocks used only for multi-token prediction (`nextn_predict_layers`).
    pub nextn_layers: u32,
    pub context_length: u64,
    pub n_embd: u64,
    pub n_vocab: u64,
    pub n_expert: u32,
    pub n_expert_used: u32,
    /// Largest dense feed-forward width (`feed_forward_length`, per layer or scalar).
    pub n_ff_max: u64,
    /// Width of one expert's feed-forward (`expert_feed_forward_length`), 0 for dense models.
    pub n_ff_expert: u64,
    pub layers: Vec<LayerShape>,
    pub swa_kind: SwaKind,
    /// Sliding window size in tokens (0 when no layer slides).
    pub n_swa: u32,
    /// Multi-head latent attention (deepseek2-style): K holds the compressed latent, no V.
    pub mla: bool,
    pub recurrent: Option<RecurrentState>,
    #[serde(skip)]
    pub memory: MemoryKind,
    /// The architecture's rules were checked against llama.cpp in layerfit's tests.
    pub rules_verified: bool,
    pub chat_template: bool,
    /// `n_embd_out()`: the width of an output embedding (`embedding_length_out`, else
    /// `n_embd`), a row of the output buffer in embedding mode.
    #[serde(skip)]
    pub n_embd_out: u64,
    /// `pooling_type` as the file declares it (`None`: not declared, llama.cpp's
    /// `LLAMA_POOLING_TYPE_UNSPECIFIED`).
    #[serde(skip)]
    pub pooling_type: Option<u32>,
    /// `attention.causal` (true unless the file says otherwise, as llama.cpp's default).
    #[serde(skip)]
    pub causal: bool,
}

/// llama.cpp's `LLAMA_MAX_LAYERS`.
const MAX_LAYERS: u64 = 512;

impl Shape {
    /// Reads the shape from a model's metadata. `tensor_vocab` is the vocabulary size implied
    /// by the embedding tensor, used when the file has neither a `vocab_size` key nor a
    /// token list.
    pub fn from_metadata(md: &Metadata, tensor_vocab: Option<u64>) -> Result<Shape, ShapeError> {
        let arch = match md.get(keys::ARCHITECTURE) {
            None => {
                return Err(ShapeError(format!(
                    "metadata key '{}' is missing: cannot tell which model this is",
                    keys::ARCHITECTURE
                )))
            }
            Some(Value::String(s)) if !s.is_empty() => s.as_str(),
            Some(v) => {
                return Err(ShapeError(format!(
                    "metadata key '{}' should be a non-empty string, found {}",
                    keys::ARCHITECTURE,
                    describe(v)
                )))
            }
        };
        let m = Meta { md, arch };
        let rules = rules_for(arch);

        let block_count = m.u64_req(keys::BLOCK_COUNT)?;
        if block_count == 0 || block_count > MAX_LAYERS {
            return Err(ShapeError(format!(
                "metadata key '{}' is {block_count} (1 to {MAX_LAYERS} allowed)",
                m.key(keys::BLOCK_COUNT)
            )));
        }
        let n = block_count as usize;
        let context_length = m.u64_req(keys::CONTEXT_LENGTH)?;
        let n_embd = m.u64_req(keys::EMBEDDING_LENGTH)?;
        if n_embd == 0 {
            return Err(ShapeError(format!(
                "metadata key '{}' is 0",
                m.key(keys::EMBEDDING_LENGTH)
            )));
        }
        let nextn_layers = m.u32_opt(keys::NEXTN_PREDICT_LAYERS)?.unwrap_or(0);
        if nextn_layers as u64 > block_count {
            return Err(ShapeError(format!(
                "metadata key '{}' ({nextn_layers}) exceeds the block count",
                m.key(keys::NEXTN_PREDICT_LAYERS)
            )));
        }

        let n_vocab = match m.u64_opt(keys::VOCAB_SIZE)? {
            Some(v) => v,
            None => match md.get(keys::TOKENIZER_TOKENS).and_then(Value::as_array) {
                Some(a) => a.len,
                None => tensor_vocab.unwrap_or(0),
            },
        };

        let n_head = m
            .per_layer(keys::HEAD_COUNT, n)?
            .unwrap_or_else(|| vec![0; n]);
        let n_head_kv = m
            .per_layer(keys::HEAD_COUNT_KV, n)?
            .unwrap_or_else(|| n_head.clone());

        let n_ff = m
            .per_layer(keys::FEED_FORWARD_LENGTH, n)?
            .unwrap_or_else(|| vec![0; n]);
        let n_layer_main = n - nextn_layers as usize;
        let kinds = layer_kinds(&m, &rules, n_layer_main, &n_head_kv, &n_ff)?;
        let is_recurrent = &kinds.recurrent;
        let attends = |il: usize| kinds.attends[il];
        for il in 0..n {
            if attends(il) && (n_head[il] == 0 || n_head_kv[il] == 0) {
                let key = if n_head[il] == 0 {
                    keys::HEAD_COUNT
                } else {
                    keys::HEAD_COUNT_KV
                };
                return Err(ShapeError(format!(
                    "metadata key '{}' is 0 for block {il}: an attention block needs at least one head",
                    m.key(key)
                )));
            }
            if attends(il) && n_head_kv[il] > n_head[il] {
                return Err(ShapeError(format!(
                    "block {il} has more KV heads ({}) than attention heads ({})",
                    n_head_kv[il], n_head[il]
                )));
            }
        }

        // Head sizes: llama.cpp derives them from layer 0's head count.
        let (head_k, head_v) = if n_head[0] > 0 {
            let default = (n_embd / n_head[0] as u64) as u32;
            (
                m.u32_opt(keys::KEY_LENGTH)?.unwrap_or(default),
                m.u32_opt(keys::VALUE_LENGTH)?.unwrap_or(default),
            )
        } else {
            (0, 0)
        };
        let head_k_swa = m.u32_opt(keys::KEY_LENGTH_SWA)?.unwrap_or(head_k);
        let head_v_swa = m.u32_opt(keys::VALUE_LENGTH_SWA)?.unwrap_or(head_v);

        let mla = m.u32_opt(keys::KEY_LENGTH_MLA)?.unwrap_or(0) != 0
            && m.u32_opt(keys::VALUE_LENGTH_MLA)?.unwrap_or(0) != 0;

        let (swa_kind, n_swa, is_swa) = sliding_window(&m, &rules, &kinds.attends)?;

        let layers = (0..n)
            .map(|il| {
                let own_kv = match rules.kv_from_start {
                    Some(start) => il < start as usize,
                    None => true,
                };
                LayerShape {
                    n_head: n_head[il],
                    n_head_kv: n_head_kv[il],
                    head_dim_k: if is_swa[il] { head_k_swa } else { head_k },
                    head_dim_v: if is_swa[il] { head_v_swa } else { head_v },
                    is_swa: is_swa[il],
                    is_recurrent: is_recurrent[il],
                    has_kv: own_kv && il < n_layer_main && attends(il),
                }
            })
            .collect();

        let recurrent = if is_recurrent.iter().any(|&r| r) {
            Some(recurrent_state(
                &m,
                n_embd,
                n_head[0] as u64,
                m.u64_opt(keys::KEY_LENGTH)?
                    .unwrap_or(n_embd / n_head[0].max(1) as u64),
            )?)
        } else {
            None
        };

        Ok(Shape {
            architecture: arch.to_string(),
            name: md
                .get(keys::NAME)
                .and_then(Value::as_str)
                .map(str::to_string),
            block_count: block_count as u32,
            nextn_layers,
            context_length,
            n_embd,
            n_vocab,
            n_expert: m.u32_opt(keys::EXPERT_COUNT)?.unwrap_or(0),
            n_expert_used: m.u32_opt(keys::EXPERT_USED_COUNT)?.unwrap_or(0),
            n_ff_max: n_ff.iter().copied().max().unwrap_or(0) as u64,
            n_ff_expert: m
                .per_layer(keys::EXPERT_FEED_FORWARD_LENGTH, n)?
                .map(|v| v.into_iter().max().unwrap_or(0) as u64)
                .unwrap_or(0),
            layers,
            swa_kind,
            n_swa,
            mla,
            recurrent,
            memory: rules.memory,
            rules_verified: rules.verified,
            chat_template: md.contains_key(keys::CHAT_TEMPLATE),
            n_embd_out: m
                .u64_opt(keys::EMBEDDING_LENGTH_OUT)?
                .filter(|&w| w > 0)
                .unwrap_or(n_embd),
            pooling_type: m.u32_opt(keys::POOLING_TYPE)?,
            causal: !matches!(m.get(keys::CAUSAL), Some(Value::Bool(false))),
        })
    }

    /// The memory rules that size this model, in words (docs/architectures.md's column):
    /// the cache module llama.cpp builds, and what shapes it.
    pub fn rule_family(&self) -> String {
        let mut parts: Vec<String> = vec![match self.memory {
            MemoryKind::None => "no cache".into(),
            MemoryKind::Attention => "attention".into(),
            MemoryKind::Recurrent => "recurrent".into(),
            MemoryKind::Hybrid => {
                let r = self.layers.iter().filter(|l| l.is_recurrent).count();
                let a = self.layers.iter().filter(|l| l.has_kv).count();
                format!(
                    "hybrid ({a} attention, {r} recurrent of {})",
                    self.layers.len()
                )
            }
        }];
        if self.is_swa_any() {
            parts.push(format!("{:?} SWA", self.swa_kind).to_lowercase());
        }
        if self.mla {
            parts.push("MLA".into());
        }
        if self.n_expert > 0 {
            parts.push("MoE".into());
        }
        if self.layers.iter().any(|l| !l.has_kv && !l.is_recurrent)
            && self.memory != MemoryKind::None
        {
            parts.push("layers without own KV".into());
        }
        parts.join(", ")
    }

    /// An embedding model: its file declares a pooling (`pooling_type` other than none) or
    /// non-causal attention (BERT and its kind), so `serve` serves it in embedding mode.
    pub fn is_embedding_model(&self) -> bool {
        self.pooling_type.is_some_and(|p| p != 0) || !self.causal
    }

    pub fn is_swa_any(&self) -> bool {
        self.layers.iter().any(|l| l.is_swa)
    }

    /// `n_embd_v_gqa_max()`: the V row size every layer uses when V is stored transposed
    /// (no flash attention) and layers differ.
    pub fn n_embd_v_gqa_max(&self) -> u64 {
        self.layers
            .iter()
            .map(LayerShape::n_embd_v_gqa)
            .max()
            .unwrap_or(0)
    }
}
