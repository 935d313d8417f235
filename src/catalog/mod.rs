//! The model catalog (`model-catalog/*.yaml`): popular models' architecture hyperparameters,
//! every figure sourced in the file's comments, so a plan can be made before a file is
//! downloaded. A variant (`q4_k_m`, `q8_0`, `f16`, ...) is laid out the way a GGUF conversion
//! has it ([`layout`]) and typed by llama-quantize's mixture rules ([`quant`]); the result is a
//! header like a real file's, and the rest of layerfit cannot tell the difference.

pub mod layout;
mod lookup;
mod metadata;
pub mod projector;
pub mod quant;
pub mod verify;

pub use lookup::{did_you_mean, lookup, suggestions, CatalogRef};

use crate::ggml_type::GgmlType;
use crate::gguf::writer::{GgufWriter, WriteValue};
use crate::gguf::{Metadata, TensorInfo, Value};
use quant::{assign_types, Ftype, MixtureModel};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalog_files.rs"));

/// One model. Field names follow the GGUF keys they become.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `family:size`, as Ollama names models (e.g. `qwen2.5-coder:7b`).
    pub name: String,
    pub architecture: String,
    pub block_count: u32,
    pub embedding_length: u64,
    pub head_count: u32,
    pub head_count_kv: u32,
    /// Per-head size; `embedding_length / head_count` when the config has none.
    #[serde(default)]
    pub head_dim: Option<u32>,
    pub feed_forward_length: u64,
    pub vocab_size: u64,
    /// The trained context (`max_position_embeddings`).
    pub context_length: u64,
    #[serde(default)]
    pub sliding_window: Option<u32>,
    #[serde(default)]
    pub tied_embeddings: bool,
    #[serde(default)]
    pub expert_count: u32,
    #[serde(default)]
    pub expert_used_count: u32,
    #[serde(default)]
    pub expert_feed_forward_length: Option<u64>,
    /// Llama 3 rope scaling: the converter writes a `rope_freqs.weight` vector.
    #[serde(default)]
    pub rope_freqs: bool,
    /// Blocks before the first mixture-of-experts block, with a dense feed-forward of
    /// `feed_forward_length` (`first_k_dense_replace`; deepseek2).
    #[serde(default)]
    pub leading_dense_block_count: u32,
    /// Experts every token goes through beside the routed ones (`n_shared_experts`), each of
    /// `expert_feed_forward_length` (deepseek2).
    #[serde(default)]
    pub expert_shared_count: u32,
    /// The router adds a learned per-expert bias before choosing (`topk_method: noaux_tc`,
    /// `e_score_correction_bias`): an `exp_probs_b.bias` vector per MoE block (deepseek2).
    #[serde(default)]
    pub expert_probs_bias: bool,
    /// Multi-head latent attention (deepseek2), the query's low-rank size (`q_lora_rank`);
    /// absent when queries are not compressed.
    #[serde(default)]
    pub q_lora_rank: Option<u64>,
    /// Multi-head latent attention: the compressed key/value latent (`kv_lora_rank`).
    #[serde(default)]
    pub kv_lora_rank: Option<u64>,
    /// Multi-head latent attention: per-head query/key size without rotary embedding.
    #[serde(default)]
    pub qk_nope_head_dim: Option<u32>,
    /// Multi-head latent attention: per-head query/key size with rotary embedding (the GGUF's
    /// `rope.dimension_count`).
    #[serde(default)]
    pub qk_rope_head_dim: Option<u32>,
    /// Multi-head latent attention: per-head value size.
    #[serde(default)]
    pub v_head_dim: Option<u32>,
    /// Rotary dimensions per head when only part of the head rotates (`partial_rotary_factor`
    /// × head size; qwen35, glm4moe); the head size when absent.
    #[serde(default)]
    pub rope_dimension_count: Option<u32>,
    /// Multimodal rotary sections (`mrope_section`, padded to four; qwen35 requires them).
    #[serde(default)]
    pub rope_dimension_sections: Option<Vec<u32>>,
    /// Hybrid models: every n-th block attends, the others are recurrent (qwen35).
    #[serde(default)]
    pub full_attention_interval: Option<u32>,
    /// The recurrent blocks' sizes (gated delta-net: qwen35).
    #[serde(default)]
    pub ssm: Option<Ssm>,
    /// Width of the shared expert when it differs from a routed one's
    /// (`shared_expert_intermediate_size`; qwen35moe).
    #[serde(default)]
    pub expert_shared_feed_forward_length: Option<u64>,
    /// Trailing multi-token-prediction blocks counted in `block_count` (glm4moe).
    #[serde(default)]
    pub nextn_predict_layers: u32,
    /// Query/key/value projections carry biases (`attention_bias`; glm4moe).
    #[serde(default)]
    pub attention_bias: bool,
    /// The vision projector published beside the model (its own `mmproj` file).
    #[serde(default)]
    pub projector: Option<projector::Projector>,
    /// Quantizations, by llama.cpp's file-type name.
    pub variants: BTreeMap<String, Variant>,
}

/// Recurrent-block sizes, under the GGUF `ssm.*` keys llama.cpp reads for gated delta-net
/// blocks (`qwen35`): key heads of `state_size` (`group_count` of them), value heads of
/// `state_size` (`time_step_rank` of them), `inner_size` = value heads × `state_size`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ssm {
    pub conv_kernel: u64,
    pub state_size: u64,
    pub group_count: u64,
    pub time_step_rank: u64,
    pub inner_size: u64,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// The usual file name; when it is in the models folder, its real header is used.
    #[serde(default)]
    pub file: Option<String>,
    /// Where a real file of this variant is published, as a sourced fact (repository and
    /// file, with the source key of CATALOG-FACTS.md or docs/seeds); absent when unknown.
    #[serde(default)]
    pub upstream: Option<String>,
}

impl Entry {
    pub fn head_dim(&self) -> u32 {
        self.head_dim
            .unwrap_or((self.embedding_length / self.head_count.max(1) as u64) as u32)
    }

    /// Quantizations the entry lists, best quality first.
    pub fn ftypes(&self) -> Vec<Ftype> {
        let mut v: Vec<Ftype> = self
            .variants
            .keys()
            .filter_map(|k| Ftype::from_name(k))
            .collect();
        v.sort();
        v
    }

    fn check(&self) -> Result<(), CatalogError> {
        let invalid = |what: String| CatalogError::Invalid {
            entry: self.name.clone(),
            what,
        };
        if self.block_count == 0 || self.head_count == 0 || self.embedding_length == 0 {
            return Err(invalid(
                "block_count, head_count and embedding_length must be positive".into(),
            ));
        }
        if self.head_count_kv == 0 || !self.head_count.is_multiple_of(self.head_count_kv) {
            return Err(invalid(
                "head_count must be a multiple of head_count_kv".into(),
            ));
        }
        for k in self.variants.keys() {
            if Ftype::from_name(k).is_none() {
                return Err(invalid(format!(
                    "unknown variant '{k}' (known: {})",
                    Ftype::BY_QUALITY
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        self.projector_header()?;
        layout::tensors(self).map(|_| ())
    }

    /// The metadata a conversion of this model carries (the keys layerfit reads).
    pub fn metadata(&self, ftype: Ftype) -> Metadata {
        metadata::metadata(self, ftype)
    }

    /// The tensors of the `ftype` variant, typed as llama-quantize would type them.
    pub fn tensors(&self, ftype: Ftype) -> Result<Vec<TensorInfo>, CatalogError> {
        let layout = layout::tensors(self)?;
        let mix = MixtureModel {
            n_layer: self.block_count,
            n_gqa: self.head_count / self.head_count_kv.max(1),
            n_expert: self.expert_count,
            is_70b: self.architecture == "llama"
                && self.block_count == 80
                && self.head_count != self.head_count_kv,
        };
        let types = assign_types(&layout, ftype, mix);
        let mut offset = 0u64;
        Ok(layout
            .into_iter()
            .zip(types)
            .map(
                |((name, dims), ggml_type): ((String, Vec<u64>), GgmlType)| {
                    let t = TensorInfo {
                        name,
                        dims,
                        ggml_type,
                        offset,
                    };
                    offset += t.n_bytes().get().next_multiple_of(32);
                    t
                },
            )
            .collect())
    }

    /// A header llama.cpp can load for the `ftype` variant (placeholder tokenizer; write it
    /// with `Data::Sparse` to measure the variant without its weights).
    pub fn header(&self, ftype: Ftype) -> Result<GgufWriter, CatalogError> {
        let mut w = GgufWriter::new();
        for (k, v) in &self.metadata(ftype) {
            let wv = match v {
                Value::Uint(u) => match u32::try_from(*u) {
                    Ok(u) => WriteValue::U32(u),
                    Err(_) => WriteValue::U64(*u),
                },
                Value::String(s) => WriteValue::Str(s.clone()),
                Value::Array(a) => WriteValue::ArrI32(
                    a.items
                        .iter()
                        .flatten()
                        .filter_map(|v| v.as_u64().map(|u| u as i32))
                        .collect(),
                ),
                _ => continue,
            };
            w.kv(k, wv);
        }
        w.loadable_defaults(&self.architecture, self.vocab_size as usize);
        for t in self.tensors(ftype)? {
            w.tensor(&t.name, &t.dims, t.ggml_type);
        }
        Ok(w)
    }
}

/// Every embedded entry, or the first file that does not parse. Parsed once per process:
/// lookups and variant searches call this for every model they resolve.
pub fn entries() -> Result<Vec<Entry>, CatalogError> {
    static PARSED: OnceLock<Result<Vec<Entry>, CatalogError>> = OnceLock::new();
    PARSED
        .get_or_init(|| FILES.iter().map(|(f, text)| parse(f, text)).collect())
        .clone()
}

/// Parses and checks one catalog file.
pub fn parse(file: &str, text: &str) -> Result<Entry, CatalogError> {
    let e: Entry = serde_norway::from_str(text).map_err(|e| CatalogError::Yaml {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    e.check()?;
    Ok(e)
}

/// Why a catalog entry or name cannot be used. Cloneable: the parsed catalog (or its first
/// error) is kept for the whole process.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog entry {entry}: {what}")]
    Invalid { entry: String, what: String },
    #[error("{file}: not a catalog entry: {message}")]
    Yaml { file: String, message: String },
    #[error("the catalog cannot lay out architecture '{0}' (known: llama, qwen2, qwen3, qwen3moe, qwen35, qwen35moe, gemma2, gemma3, phi3, gpt-oss, deepseek2, glm4moe)")]
    Architecture(String),
    #[error("{entry}: no variant '{variant}' in the catalog (has: {known})")]
    NoVariant {
        entry: String,
        variant: String,
        known: String,
    },
    #[error("'{name}' is neither a file nor a catalog model{} (see `layerfit catalog list`)", did_you_mean(.nearest))]
    Unknown { name: String, nearest: Vec<String> },
    /// The file (or the entry) does not describe a model: the shape error, in words.
    #[error("{0}")]
    Shape(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_entry_parses_and_lays_out() {
        let all = entries().unwrap();
        assert!(all.len() >= 67, "{} entries", all.len());
        let mut names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "catalog names are unique");
        for e in &all {
            for f in e.ftypes() {
                let t = e.tensors(f).unwrap();
                assert!(t.iter().any(|t| t.name == "token_embd.weight"));
            }
        }
    }

    #[test]
    fn mla_entries_are_written_the_way_the_converter_writes_them() {
        let text = include_str!("../../model-catalog/pending/deepseek-r1-671b.yaml");
        let e = parse("deepseek-r1-671b.yaml", text).unwrap();
        let m = e.metadata(Ftype::Q4KM);
        let get = |k: &str| m.get(k).and_then(|v| v.as_u64());
        assert_eq!(get("deepseek2.attention.head_count_kv"), Some(1));
        assert_eq!(get("deepseek2.attention.key_length"), Some(512 + 64));
        assert_eq!(get("deepseek2.attention.value_length"), Some(512));
        assert_eq!(get("deepseek2.attention.key_length_mla"), Some(128 + 64));
        assert_eq!(get("deepseek2.rope.dimension_count"), Some(64));
        let t = e.tensors(Ftype::Q4KM).unwrap();
        assert!(t.iter().any(|t| t.name == "blk.2.ffn_down.weight"));
        assert!(!t.iter().any(|t| t.name == "blk.3.ffn_down.weight"));
        assert!(t.iter().any(|t| t.name == "blk.3.ffn_down_shexp.weight"));
    }

    #[test]
    fn hybrid_entries_attend_every_fourth_block_and_carry_the_delta_net_keys() {
        let e = lookup("qwen3.5:27b").unwrap().unwrap().entry;
        let m = e.metadata(Ftype::Q4KM);
        let get = |k: &str| m.get(k).and_then(|v| v.as_u64());
        assert_eq!(get("qwen35.full_attention_interval"), Some(4));
        assert_eq!(get("qwen35.ssm.inner_size"), Some(48 * 128));
        assert_eq!(get("qwen35.rope.dimension_count"), Some(64));
        let sections = m["qwen35.rope.dimension_sections"].as_array().unwrap();
        assert_eq!(sections.len, 4);
        let t = e.tensors(Ftype::Q4KM).unwrap();
        let has = |n: &str| t.iter().any(|t| t.name == n);
        // Blocks 0-2 are gated delta-net, block 3 attends (query doubled by its gate).
        assert!(has("blk.0.ssm_conv1d.weight") && !has("blk.0.attn_q.weight"));
        assert!(has("blk.3.attn_q.weight") && !has("blk.3.ssm_out.weight"));
        let q = t.iter().find(|t| t.name == "blk.3.attn_q.weight").unwrap();
        assert_eq!(q.dims, vec![5120, 2 * 24 * 256]);
        // The conv kernel stays f32 (llama-quantize leaves ssm_conv1d alone).
        let conv = t
            .iter()
            .find(|t| t.name == "blk.0.ssm_conv1d.weight")
            .unwrap();
        assert_eq!(conv.ggml_type, GgmlType::F32);
        // The MoE entries write no dense width: the config has none.
        let moe = lookup("qwen3.5:35b-a3b").unwrap().unwrap().entry;
        assert!(!moe
            .metadata(Ftype::Q4KM)
            .contains_key("qwen35moe.feed_forward_length"));
    }

    #[test]
    fn glm_keeps_its_prediction_block() {
        let all = entries().unwrap();
        let e = all
            .iter()
            .find(|e| e.name == "glm-4.5-air:106b-a12b")
            .unwrap();
        let t = e.tensors(Ftype::Q4KM).unwrap();
        // 803 tensors, as the published q3_K_M conversion has (llama.cpp PR 14939's dump).
        assert_eq!(t.len(), 803);
        assert!(t.iter().any(|t| t.name == "blk.46.nextn.eh_proj.weight"));
        assert!(t.iter().any(|t| t.name == "blk.0.ffn_down.weight"));
        assert!(t.iter().any(|t| t.name == "blk.1.exp_probs_b.bias"));
    }

    #[test]
    fn lookup_splits_name_and_variant() {
        let r = lookup("qwen2.5-coder:7b-q4_k_m").unwrap().unwrap();
        assert_eq!(r.entry.name, "qwen2.5-coder:7b");
        assert_eq!(r.ftype, Some(Ftype::Q4KM));
        assert!(lookup("qwen2.5-coder:7b").unwrap().unwrap().ftype.is_none());
        assert!(lookup("qwen2.5-coder:7b-q9_z").is_err());
        assert!(lookup("nonexistent:1b").is_err());
        assert!(lookup("model.gguf").unwrap().is_none());
    }
}
