//! The model catalog (`model-catalog/*.yaml`): popular models' architecture hyperparameters,
//! every figure sourced in the file's comments, so a plan can be made before a file is
//! downloaded. A variant (`q4_k_m`, `q8_0`, `f16`, ...) is laid out the way a GGUF conversion
//! has it ([`layout`]) and typed by llama-quantize's mixture rules ([`quant`]); the result is a
//! header like a real file's, and the rest of layerfit cannot tell the difference.

pub mod layout;
pub mod quant;
pub mod verify;

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
    /// Quantizations, by llama.cpp's file-type name.
    pub variants: BTreeMap<String, Variant>,
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
        layout::tensors(self).map(|_| ())
    }

    /// The metadata a conversion of this model carries (the keys layerfit reads).
    pub fn metadata(&self, ftype: Ftype) -> Metadata {
        let a = &self.architecture;
        let mut m = Metadata::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.replace("{arch}", a), v);
        };
        put("general.architecture", Value::String(a.clone()));
        put(
            "general.name",
            Value::String(format!("{} {} (catalog)", self.name, ftype)),
        );
        put("general.file_type", Value::Uint(ftype.id()));
        put("{arch}.block_count", Value::Uint(self.block_count as u64));
        put("{arch}.context_length", Value::Uint(self.context_length));
        put(
            "{arch}.embedding_length",
            Value::Uint(self.embedding_length),
        );
        put(
            "{arch}.feed_forward_length",
            Value::Uint(self.feed_forward_length),
        );
        put("{arch}.vocab_size", Value::Uint(self.vocab_size));
        put(
            "{arch}.attention.head_count",
            Value::Uint(self.head_count as u64),
        );
        put(
            "{arch}.attention.head_count_kv",
            Value::Uint(self.head_count_kv as u64),
        );
        put(
            "{arch}.attention.key_length",
            Value::Uint(self.head_dim() as u64),
        );
        put(
            "{arch}.attention.value_length",
            Value::Uint(self.head_dim() as u64),
        );
        if let Some(w) = self.sliding_window {
            put("{arch}.attention.sliding_window", Value::Uint(w as u64));
        }
        if self.expert_count > 0 {
            put("{arch}.expert_count", Value::Uint(self.expert_count as u64));
            put(
                "{arch}.expert_used_count",
                Value::Uint(self.expert_used_count as u64),
            );
        }
        if let Some(f) = self.expert_feed_forward_length {
            put("{arch}.expert_feed_forward_length", Value::Uint(f));
        }
        m
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
    #[error("the catalog cannot lay out architecture '{0}' (known: llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3)")]
    Architecture(String),
    #[error("{entry}: no variant '{variant}' in the catalog (has: {known})")]
    NoVariant {
        entry: String,
        variant: String,
        known: String,
    },
    #[error("'{0}' is neither a file nor a catalog model (see `layerfit catalog list`)")]
    Unknown(String),
    /// The file (or the entry) does not describe a model: the shape error, in words.
    #[error("{0}")]
    Shape(String),
}

/// A model named the way users and profiles name them: `family:size-variant`
/// (`qwen2.5-coder:7b-q4_k_m`) or `family:size` (every variant, for variant search).
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogRef {
    pub entry: Entry,
    /// `None`: search the entry's variants.
    pub ftype: Option<Ftype>,
}

/// Looks a name up; `Ok(None)` when it is not a catalog name at all.
pub fn lookup(spec: &str) -> Result<Option<CatalogRef>, CatalogError> {
    let spec = spec.trim().to_ascii_lowercase();
    if !spec.contains(':') {
        return Ok(None);
    }
    let all = entries()?;
    if let Some(e) = all.iter().find(|e| e.name == spec) {
        return Ok(Some(CatalogRef {
            entry: e.clone(),
            ftype: None,
        }));
    }
    for e in &all {
        if let Some(v) = spec
            .strip_prefix(e.name.as_str())
            .and_then(|r| r.strip_prefix('-'))
        {
            let f = Ftype::from_name(v).filter(|f| e.variants.contains_key(f.name()));
            return match f {
                Some(f) => Ok(Some(CatalogRef {
                    entry: e.clone(),
                    ftype: Some(f),
                })),
                None => Err(CatalogError::NoVariant {
                    entry: e.name.clone(),
                    variant: v.to_string(),
                    known: e.variants.keys().cloned().collect::<Vec<_>>().join(", "),
                }),
            };
        }
    }
    Err(CatalogError::Unknown(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_entry_parses_and_lays_out() {
        let all = entries().unwrap();
        assert!(all.len() >= 5);
        for e in &all {
            for f in e.ftypes() {
                let t = e.tensors(f).unwrap();
                assert!(t.iter().any(|t| t.name == "token_embd.weight"));
            }
        }
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
