//! Checking a catalog entry against a real header (`layerfit catalog verify FILE`): the
//! hyperparameters as llama.cpp reads them, then every tensor's name, shape and type.

use super::quant::Ftype;
use super::Entry;
use crate::gguf::{Metadata, TensorInfo};
use crate::model::Shape;
use serde::Serialize;
use std::collections::BTreeMap;

/// Reads one hyperparameter of a shape, as text.
type ShapeField = fn(&Shape) -> String;

/// One disagreement between the catalog and the file.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Difference {
    pub what: String,
    pub catalog: String,
    pub file: String,
}

/// The outcome of a check.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub entry: String,
    /// The variant compared tensor by tensor (the file's `general.file_type`), if the entry has it.
    pub variant: Option<String>,
    pub tensors_compared: usize,
    pub differences: Vec<Difference>,
}

impl Report {
    pub fn agrees(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares `entry` with a file's metadata and tensors.
pub fn verify(
    entry: &Entry,
    metadata: &Metadata,
    tensors: &[TensorInfo],
    tensor_vocab: Option<u64>,
) -> Result<Report, super::CatalogError> {
    let shape_err = |e: crate::model::ShapeError| super::CatalogError::Shape(e.to_string());
    let file_shape = Shape::from_metadata(metadata, tensor_vocab).map_err(shape_err)?;
    let file_ftype = metadata
        .get("general.file_type")
        .and_then(|v| v.as_u64())
        .and_then(Ftype::from_id);
    let probe_ftype = file_ftype.unwrap_or(Ftype::F16);
    let cat_tensors = entry.tensors(probe_ftype)?;
    let cat_vocab = cat_tensors
        .iter()
        .find(|t| t.name == "token_embd.weight")
        .and_then(|t| t.dims.get(1).copied());
    let cat_shape =
        Shape::from_metadata(&entry.metadata(probe_ftype), cat_vocab).map_err(shape_err)?;
    let mut diffs = Vec::new();
    let mut cmp = |what: &str, c: String, f: String| {
        if c != f {
            diffs.push(Difference {
                what: what.into(),
                catalog: c,
                file: f,
            });
        }
    };
    // The hyperparameters as llama.cpp reads them, by the GGUF key they come from.
    let fields: [(&str, ShapeField); 8] = [
        ("architecture", |s| s.architecture.clone()),
        ("block_count", |s| s.block_count.to_string()),
        ("embedding_length", |s| s.n_embd.to_string()),
        ("vocab_size", |s| s.n_vocab.to_string()),
        ("context_length", |s| s.context_length.to_string()),
        ("feed_forward_length", |s| s.n_ff_max.to_string()),
        ("expert_count", |s| s.n_expert.to_string()),
        ("sliding_window", |s| s.n_swa.to_string()),
    ];
    for (what, get) in fields {
        cmp(what, get(&cat_shape), get(&file_shape));
    }
    let heads = |s: &Shape| {
        s.layers
            .iter()
            .map(|l| {
                format!(
                    "{}/{}x{}{}",
                    l.n_head,
                    l.n_head_kv,
                    l.head_dim_k,
                    if l.is_swa { " swa" } else { "" }
                )
            })
            .collect::<Vec<_>>()
    };
    let (ch, fh) = (heads(&cat_shape), heads(&file_shape));
    if ch != fh {
        let i = ch.iter().zip(&fh).position(|(a, b)| a != b).unwrap_or(0);
        cmp(
            &format!("attention of block {i} (heads/kv heads x head size)"),
            ch.get(i).cloned().unwrap_or_default(),
            fh.get(i).cloned().unwrap_or_default(),
        );
    }
    let variant = file_ftype.filter(|f| entry.variants.contains_key(f.name()));
    let mut compared = 0;
    if variant.is_some() {
        let file_by_name: BTreeMap<&str, &TensorInfo> =
            tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        let cat_by_name: BTreeMap<&str, &TensorInfo> =
            cat_tensors.iter().map(|t| (t.name.as_str(), t)).collect();
        for (name, c) in &cat_by_name {
            compared += 1;
            match file_by_name.get(name) {
                None => cmp(&format!("tensor {name}"), "present".into(), "absent".into()),
                Some(f) => cmp(
                    &format!("tensor {name}"),
                    format!("{:?} {}", c.dims, c.ggml_type.name()),
                    format!("{:?} {}", f.dims, f.ggml_type.name()),
                ),
            }
        }
        for name in file_by_name.keys() {
            if !cat_by_name.contains_key(name) {
                cmp(&format!("tensor {name}"), "absent".into(), "present".into());
            }
        }
    }
    Ok(Report {
        entry: entry.name.clone(),
        variant: variant.map(|f| f.name().to_string()),
        tensors_compared: compared,
        differences: diffs,
    })
}
