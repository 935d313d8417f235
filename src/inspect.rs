//! A model's full memory picture at one context: the data behind `layerfit inspect`, as a
//! serialize-only document whose field names are a public contract (docs/json-schema.md).
//! Pure: it works on an already-read `ModelFile`.

use crate::bytes::Bytes;
use crate::ggml_type::{GgmlType, KV_CACHE_TYPES};
use crate::gguf::ModelFile;
use crate::memory::{
    compute_buffers, kv_cache, model_weights, CacheConfig, ComputeEstimate, Weights,
};
use crate::model::{Shape, ShapeError, SwaKind};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct Inspection {
    pub model: ModelInfo,
    pub weights: WeightsInfo,
    pub kv_cache: KvInfo,
    pub compute: ComputeInfo,
    pub notes: Vec<String>,
    /// Where a model named by `hf://`, `ollama://` or a URL came from; `null` for a path.
    pub source: Option<RemoteSource>,
    /// With `--mmproj`: the vision projector (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projector: Option<ProjectorInfo>,
}

/// A projector's shape and what llama.cpp's loader would allocate for it on the CPU.
#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ProjectorInfo {
    pub path: String,
    #[serde(flatten)]
    pub shape: crate::model::projector::ProjectorShape,
    /// The warm-up image's compute buffers, from llama.cpp's loader (without allocating).
    pub compute_bytes: Bytes,
    pub total_bytes: Bytes,
    /// Tokens one image takes at most; `null` when unknown.
    pub image_max_tokens: Option<u32>,
}

/// A named model's origin, and what reading its header over the network cost.
#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct RemoteSource {
    /// The name that finds it again (`hf://ORG/REPO:Q4_K_M`).
    pub name: String,
    /// The URL the header was read from (`null` when a local copy was read).
    pub url: Option<String>,
    /// The local copy read instead of the network (pulled, Hugging Face cache, Ollama store).
    pub local_path: Option<String>,
    pub transfer: Option<crate::fetch::Transfer>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ModelInfo {
    pub path: String,
    pub architecture: String,
    pub name: Option<String>,
    pub block_count: u32,
    pub context_length: u64,
    pub embedding_length: u64,
    pub vocab_size: u64,
    pub parameters: u64,
    pub file_complete: bool,
    pub missing_bytes: u64,
    pub file_bytes: u64,
    pub shards: usize,
    pub gguf_version: u32,
    pub sliding_window: Option<SlidingWindow>,
    pub mla: bool,
    pub recurrent_layers: usize,
    pub experts: Option<Experts>,
    pub chat_template: bool,
    pub rules_verified: bool,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct SlidingWindow {
    pub kind: SwaKind,
    pub window: u32,
    pub swa_layers: usize,
    pub full_layers: usize,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct Experts {
    pub count: u32,
    pub used: u32,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct WeightsInfo {
    pub total_bytes: Bytes,
    pub per_block_bytes: Vec<Bytes>,
    pub outside_blocks_bytes: Bytes,
    pub token_embd_bytes: Bytes,
    pub output_bytes: Bytes,
    pub bits_per_weight: f64,
    /// Bytes of the file's multi-token-prediction blocks, which llama.cpp's default load
    /// skips: in the file (and in `llama_model_size`), in no buffer, not in `total_bytes`.
    pub not_loaded_bytes: Bytes,
    /// Bytes per tensor type, e.g. `{"q4_K": ..., "q6_K": ..., "f32": ...}`.
    pub by_type: BTreeMap<String, Bytes>,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct KvInfo {
    /// The requested context.
    pub context: u64,
    /// What llama.cpp allocates: the context padded to 256 cells.
    pub cells: u64,
    pub swa_cells: u64,
    pub flash_attention: bool,
    pub swa_full: bool,
    /// Bytes for K and V both of this type; `null` when llama.cpp cannot use the type here.
    pub bytes: BTreeMap<String, Option<Bytes>>,
    /// Why a type is unavailable.
    pub unavailable: BTreeMap<String, String>,
    pub recurrent_state_bytes: Bytes,
}

#[derive(Serialize, Debug, schemars::JsonSchema)]
pub struct ComputeInfo {
    pub bytes: Bytes,
    pub n_ubatch: u64,
    pub output_buffer_bytes: Bytes,
    #[serde(flatten)]
    pub detail: ComputeEstimate,
}

/// Reads the shape and computes everything at `cfg`; `cfg.type_k/type_v` pick the cache
/// type of the compute estimate, every type is reported for the KV cache.
pub fn inspect(file: &ModelFile, cfg: &CacheConfig) -> Result<Inspection, ShapeError> {
    let tensor_vocab = file.tensor_vocab();
    let shape = Shape::from_metadata(file.metadata(), tensor_vocab)?;
    let w = model_weights(&shape, file.tensors());
    let mut notes = Vec::new();

    let mut bytes = BTreeMap::new();
    let mut unavailable = BTreeMap::new();
    let mut recurrent = Bytes::ZERO;
    for &t in KV_CACHE_TYPES {
        let c = CacheConfig {
            type_k: t,
            type_v: t,
            ..*cfg
        };
        match kv_cache(&shape, &c) {
            Ok(kv) => {
                recurrent = kv.recurrent;
                bytes.insert(t.name().to_string(), Some(kv.total));
            }
            Err(e) => {
                bytes.insert(t.name().to_string(), None);
                unavailable.insert(t.name().to_string(), e.to_string());
            }
        }
    }
    let base = kv_cache(&shape, cfg)
        .or_else(|_| {
            kv_cache(
                &shape,
                &CacheConfig {
                    type_k: GgmlType::F16,
                    type_v: GgmlType::F16,
                    ..*cfg
                },
            )
        })
        .map_err(|e| ShapeError(format!("cannot size the KV cache: {e}")))?;
    let compute = compute_buffers(&shape, &base, cfg);

    if !shape.rules_verified {
        notes.push(format!(
            "architecture '{}' is not among those whose memory rules layerfit has checked against llama.cpp; figures assume its generic rules",
            shape.architecture
        ));
    }
    if cfg.n_ctx > shape.context_length {
        notes.push(format!(
            "context {} is beyond the {} tokens the model was trained for: quality degrades past it",
            cfg.n_ctx, shape.context_length
        ));
    }
    if !file.is_complete() {
        notes.push(format!(
            "the file is incomplete: {} of tensor data missing; figures come from the header",
            Bytes(file.missing_bytes())
        ));
    }
    if shape.is_swa_any() && !cfg.swa_full {
        notes.push(format!(
            "sliding-window layers keep {} cells (window {} + ubatch {}), not the full context",
            base.swa_cells,
            shape.n_swa,
            cfg.effective_ubatch()
        ));
    }

    let swa_layers = shape.layers.iter().filter(|l| l.is_swa).count();
    let model = ModelInfo {
        path: file.path.display().to_string(),
        architecture: shape.architecture.clone(),
        name: shape.name.clone(),
        block_count: shape.block_count,
        context_length: shape.context_length,
        embedding_length: shape.n_embd,
        vocab_size: shape.n_vocab,
        parameters: w.n_params,
        file_complete: file.is_complete(),
        missing_bytes: file.missing_bytes(),
        file_bytes: file.expected_size(),
        shards: file.shards.len(),
        gguf_version: file.shards[0].version,
        sliding_window: shape.is_swa_any().then(|| SlidingWindow {
            kind: shape.swa_kind,
            window: shape.n_swa,
            swa_layers,
            full_layers: shape.layers.len() - swa_layers,
        }),
        mla: shape.mla,
        recurrent_layers: shape.layers.iter().filter(|l| l.is_recurrent).count(),
        experts: (shape.n_expert > 0).then_some(Experts {
            count: shape.n_expert,
            used: shape.n_expert_used,
        }),
        chat_template: shape.chat_template,
        rules_verified: shape.rules_verified,
    };
    Ok(Inspection {
        model,
        weights: weights_info(&w, file),
        kv_cache: KvInfo {
            context: cfg.n_ctx,
            cells: base.cells,
            swa_cells: base.swa_cells,
            flash_attention: cfg.flash_attn,
            swa_full: cfg.swa_full,
            bytes,
            unavailable,
            recurrent_state_bytes: recurrent,
        },
        compute: ComputeInfo {
            bytes: compute.bytes,
            n_ubatch: compute.n_tokens,
            output_buffer_bytes: compute.output_buffer,
            detail: compute,
        },
        notes,
        source: None,
        projector: None,
    })
}

fn weights_info(w: &Weights, file: &ModelFile) -> WeightsInfo {
    let mut by_type: BTreeMap<String, Bytes> = BTreeMap::new();
    for t in file.tensors() {
        *by_type.entry(t.ggml_type.name().to_string()).or_default() += t.n_bytes();
    }
    WeightsInfo {
        total_bytes: w.total,
        per_block_bytes: w.per_block.clone(),
        outside_blocks_bytes: w.outside_blocks,
        token_embd_bytes: w.token_embd,
        output_bytes: w.output,
        not_loaded_bytes: w.not_loaded,
        bits_per_weight: if w.n_params > 0 {
            w.total.get() as f64 * 8.0 / w.n_params as f64
        } else {
            0.0
        },
        by_type,
    }
}
