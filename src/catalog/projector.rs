//! A catalog entry's vision projector (`mmproj`): the encoder facts a model card or config
//! gives (`projector:` in the YAML), laid out as llama.cpp's converter writes the f16
//! projector file (`convert_hf_to_gguf.py`, `MmprojModel`: matrices f16, vectors f32, the
//! patch and position embeddings f32, as Gemma 3's converter forces them) with the tensor
//! names llama.cpp's multimodal loader reads (`tools/mtmd/clip.cpp`). The header it gives is
//! what `--mmproj` reads from a real file, so its weights are counted the same way.

use super::Entry;
use crate::ggml_type::GgmlType;
use crate::gguf::writer::{GgufWriter, WriteValue};
use crate::gguf::{Metadata, TensorInfo, Value};
use serde::{Deserialize, Serialize};

/// The vision encoder and projection of a multimodal model (`vision_config` of its
/// config.json; the projection gives the text model's width, `embedding_length`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Projector {
    /// llama.cpp's projector type (`clip.projector_type`); only `gemma3` is laid out.
    pub projector_type: String,
    /// Encoder blocks (`num_hidden_layers`).
    pub block_count: u64,
    /// Encoder width (`hidden_size`).
    pub embedding_length: u64,
    /// Encoder feed-forward width (`intermediate_size`).
    pub feed_forward_length: u64,
    /// Encoder attention heads (`num_attention_heads`).
    pub head_count: u64,
    /// Image side in pixels (`image_size`).
    pub image_size: u64,
    /// Patch side in pixels (`patch_size`).
    pub patch_size: u64,
}

impl Entry {
    /// The projector file's header (f16 conversion, placeholder data: write it with
    /// `Data::Sparse`), or `None` for an entry without one.
    pub fn projector_header(&self) -> Result<Option<GgufWriter>, super::CatalogError> {
        let Some(parts) = self.projector_layout()? else {
            return Ok(None);
        };
        let mut w = GgufWriter::new();
        for (k, v) in parts.0 {
            w.kv(&k, v);
        }
        w.kv("clip.vision.image_mean", WriteValue::ArrF32(vec![0.5; 3]))
            .kv("clip.vision.image_std", WriteValue::ArrF32(vec![0.5; 3]));
        for (name, dims, ty) in parts.1 {
            w.tensor(&name, &dims, ty);
        }
        Ok(Some(w))
    }

    /// The projector's metadata and tensors as a reader sees them (for its weights:
    /// `model::projector::projector_shape`).
    pub fn projector_parts(
        &self,
    ) -> Result<Option<(Metadata, Vec<TensorInfo>)>, super::CatalogError> {
        let Some((kv, layout)) = self.projector_layout()? else {
            return Ok(None);
        };
        let mut meta = Metadata::new();
        for (k, v) in kv {
            let value = match v {
                WriteValue::U32(u) => Value::Uint(u64::from(u)),
                WriteValue::Bool(b) => Value::Bool(b),
                WriteValue::Str(s) => Value::String(s),
                _ => continue,
            };
            meta.insert(k, value);
        }
        let mut offset = 0;
        let tensors = layout
            .into_iter()
            .map(|(name, dims, ggml_type)| {
                let t = TensorInfo {
                    name,
                    dims,
                    ggml_type,
                    offset,
                };
                offset += t.n_bytes().get().next_multiple_of(32);
                t
            })
            .collect();
        Ok(Some((meta, tensors)))
    }

    /// Scalar metadata and typed tensors of the projector.
    fn projector_layout(&self) -> Result<Option<(Keys, Layout)>, super::CatalogError> {
        let Some(p) = &self.projector else {
            return Ok(None);
        };
        if p.projector_type != "gemma3" {
            return Err(super::CatalogError::Invalid {
                entry: self.name.clone(),
                what: format!(
                    "projector type '{}' is not laid out (known: gemma3)",
                    p.projector_type
                ),
            });
        }
        let u = |v: u64| WriteValue::U32(v as u32);
        let kv: Vec<(String, WriteValue)> = [
            ("general.architecture", WriteValue::Str("clip".into())),
            (
                "general.name",
                WriteValue::Str(format!("{} mmproj f16 (catalog)", self.name)),
            ),
            ("general.file_type", WriteValue::U32(1)),
            ("clip.has_vision_encoder", WriteValue::Bool(true)),
            (
                "clip.projector_type",
                WriteValue::Str(p.projector_type.clone()),
            ),
            ("clip.use_gelu", WriteValue::Bool(true)),
            ("clip.vision.image_size", u(p.image_size)),
            ("clip.vision.patch_size", u(p.patch_size)),
            ("clip.vision.embedding_length", u(p.embedding_length)),
            ("clip.vision.feed_forward_length", u(p.feed_forward_length)),
            ("clip.vision.block_count", u(p.block_count)),
            ("clip.vision.attention.head_count", u(p.head_count)),
            (
                "clip.vision.attention.layer_norm_epsilon",
                WriteValue::F32(1e-6),
            ),
            ("clip.vision.projection_dim", u(self.embedding_length)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(Some((kv, gemma3_tensors(p, self.embedding_length))))
    }
}

/// Scalar metadata keys and values, in file order.
type Keys = Vec<(String, WriteValue)>;

/// Tensors in file order: name, dims, type.
type Layout = Vec<(String, Vec<u64>, GgmlType)>;

/// Gemma 3's SigLIP encoder, average-pooled, RMS-normed and projected to `text_embd`.
fn gemma3_tensors(p: &Projector, text_embd: u64) -> Layout {
    let (e, f, ps) = (p.embedding_length, p.feed_forward_length, p.patch_size);
    let n_patches = (p.image_size / ps.max(1)).pow(2);
    let (h, s) = (GgmlType::F16, GgmlType::F32);
    let mut v: Layout = vec![
        ("v.patch_embd.weight".into(), vec![ps, ps, 3, e], s),
        ("v.patch_embd.bias".into(), vec![e], s),
        ("v.position_embd.weight".into(), vec![e, n_patches], s),
    ];
    for il in 0..p.block_count {
        for (n, dims, ty) in [
            ("attn_q.weight", vec![e, e], h),
            ("attn_q.bias", vec![e], s),
            ("attn_k.weight", vec![e, e], h),
            ("attn_k.bias", vec![e], s),
            ("attn_v.weight", vec![e, e], h),
            ("attn_v.bias", vec![e], s),
            ("attn_out.weight", vec![e, e], h),
            ("attn_out.bias", vec![e], s),
            ("ln1.weight", vec![e], s),
            ("ln1.bias", vec![e], s),
            ("ln2.weight", vec![e], s),
            ("ln2.bias", vec![e], s),
            ("ffn_up.weight", vec![e, f], h),
            ("ffn_up.bias", vec![f], s),
            ("ffn_down.weight", vec![f, e], h),
            ("ffn_down.bias", vec![e], s),
        ] {
            v.push((format!("v.blk.{il}.{n}"), dims, ty));
        }
    }
    v.push(("v.post_ln.weight".into(), vec![e], s));
    v.push(("v.post_ln.bias".into(), vec![e], s));
    v.push(("mm.soft_emb_norm.weight".into(), vec![e], s));
    v.push(("mm.input_projection.weight".into(), vec![text_embd, e], h));
    v
}
