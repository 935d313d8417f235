//! A multimodal projector (`mmproj`) from its GGUF header: the vision (or audio) encoder
//! that llama.cpp's multimodal library (`tools/mtmd`) loads beside a text model. Pure: a
//! metadata map and a tensor list in, a `ProjectorShape` out.
//!
//! The keys are the ones `tools/mtmd/clip-impl.h` reads (`KEY_*`) and the converter writes:
//! `general.architecture` is `clip`, `clip.has_vision_encoder` / `clip.has_audio_encoder`
//! say which encoders the file holds, `clip.projector_type` (or, in a file with both,
//! `clip.vision.projector_type`) names the projector, `clip.vision.*` its shape. The loader
//! counts each loaded tensor's `ggml_nbytes` as weight memory (`clip.cpp`, `mem_usage`), so
//! the weights are the sum of the tensors' bytes.

use crate::bytes::Bytes;
use crate::gguf::{Metadata, TensorInfo, Value};

/// The architecture name of every projector file.
pub const PROJECTOR_ARCH: &str = "clip";

/// What a projector file holds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ProjectorShape {
    /// llama.cpp's projector type (`gemma3`, `mlp`, `qwen2.5vl_merger`, `pixtral`, ...).
    pub projector_type: String,
    /// The file has a vision encoder (images).
    pub vision: bool,
    /// The file has an audio encoder.
    pub audio: bool,
    /// The image side the encoder was trained at, in pixels (`clip.vision.image_size`; 0
    /// for dynamic-resolution encoders).
    pub image_size: Option<u64>,
    /// Pixels per patch side (`clip.vision.patch_size`).
    pub patch_size: Option<u64>,
    /// The encoder's width and depth.
    pub n_embd: Option<u64>,
    pub n_layer: Option<u64>,
    /// The width of the embeddings it hands the text model (`clip.vision.projection_dim`):
    /// llama.cpp refuses a text model of another width.
    pub projection_dim: Option<u64>,
    /// Tokens one image becomes, for encoders of one fixed resolution whose rule is known
    /// (`clip.cpp`, `clip_n_output_tokens`); `None` for dynamic-resolution encoders.
    pub image_tokens: Option<u64>,
    /// Bytes of the tensors the loader reads.
    pub weight_bytes: Bytes,
    pub n_tensors: usize,
}

/// Why a file is not a projector llama.cpp can load.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProjectorError {
    #[error("its architecture is {0}, not clip: it is a model, not a projector (a projector file's name usually starts with mmproj)")]
    NotAProjector(String),
    #[error("it has no general.architecture key")]
    NoArchitecture,
    #[error("it has neither a vision nor an audio encoder (clip.has_vision_encoder and clip.has_audio_encoder are both missing or false)")]
    NoEncoder,
    #[error("it has no tensors")]
    NoTensors,
    #[error("its projector gives {projector}-wide embeddings and the model {model} reads {model_embd}-wide ones: llama.cpp refuses the pair")]
    WidthMismatch {
        projector: u64,
        model: String,
        model_embd: u64,
    },
}

/// A header is a projector's when its architecture is `clip`.
pub fn is_projector(meta: &Metadata) -> bool {
    meta.get("general.architecture").and_then(Value::as_str) == Some(PROJECTOR_ARCH)
}

fn flag(meta: &Metadata, key: &str) -> bool {
    matches!(meta.get(key), Some(Value::Bool(true)))
        || meta.get(key).and_then(Value::as_u64) == Some(1)
}

fn uint(meta: &Metadata, key: &str) -> Option<u64> {
    meta.get(key).and_then(Value::as_u64)
}

/// The projector a header describes.
pub fn projector_shape(
    meta: &Metadata,
    tensors: &[TensorInfo],
) -> Result<ProjectorShape, ProjectorError> {
    match meta.get("general.architecture").and_then(Value::as_str) {
        None => return Err(ProjectorError::NoArchitecture),
        Some(a) if a != PROJECTOR_ARCH => return Err(ProjectorError::NotAProjector(a.into())),
        Some(_) => {}
    }
    let vision = flag(meta, "clip.has_vision_encoder");
    let audio = flag(meta, "clip.has_audio_encoder");
    if !vision && !audio {
        return Err(ProjectorError::NoEncoder);
    }
    if tensors.is_empty() {
        return Err(ProjectorError::NoTensors);
    }
    let projector_type = projector_type_of(meta);
    let prefix = if vision { "clip.vision" } else { "clip.audio" };
    Ok(ProjectorShape {
        projection_dim: output_width(&projector_type, tensors)
            .or_else(|| uint(meta, &format!("{prefix}.projection_dim"))),
        image_tokens: fixed_image_tokens(&projector_type, meta),
        projector_type,
        vision,
        audio,
        image_size: uint(meta, "clip.vision.image_size"),
        patch_size: uint(meta, "clip.vision.patch_size"),
        n_embd: uint(meta, &format!("{prefix}.embedding_length")),
        n_layer: uint(meta, &format!("{prefix}.block_count")),
        weight_bytes: tensors.iter().map(TensorInfo::n_bytes).sum(),
        n_tensors: tensors.len(),
    })
}

/// Gemma 3's encoder sees the whole image at `image_size` and average-pools its patches
/// `n_merge` × `n_merge` (4 unless `clip.vision.projector.scale_factor` says otherwise).
fn fixed_image_tokens(projector_type: &str, meta: &Metadata) -> Option<u64> {
    let side = uint(meta, "clip.vision.image_size")? / uint(meta, "clip.vision.patch_size")?.max(1);
    match projector_type {
        "gemma3" => {
            let merge = uint(meta, "clip.vision.projector.scale_factor")
                .unwrap_or(4)
                .max(1);
            Some((side / merge).pow(2))
        }
        _ => None,
    }
}

fn projector_type_of(meta: &Metadata) -> String {
    ["clip.vision.projector_type", "clip.projector_type"]
        .iter()
        .find_map(|k| meta.get(*k).and_then(Value::as_str))
        // clip.cpp: a file without the key is a LLaVA-style MLP projector.
        .unwrap_or("mlp")
        .to_string()
}

/// The width of the embeddings a projector hands the text model, read where llama.cpp reads
/// it (`clip.cpp`, `clip_n_mmproj_embd`) for the common projector types: a tensor's
/// dimension. `None` for other types (then `projection_dim`, and llama.cpp checks at load).
fn output_width(projector_type: &str, tensors: &[TensorInfo]) -> Option<u64> {
    let (name, dim) = match projector_type {
        "gemma3" | "gemma3nv" => ("mm.input_projection.weight", 0),
        "gemma4v" | "gemma4uv" | "gemma4a" | "gemma4ua" => ("mm.input_projection.weight", 1),
        "mlp" | "phi4" | "pixtral" | "lightonocr" | "lfm2" | "kimivl" | "glma" | "ultravox"
        | "voxtral" | "qwen3a" | "paddleocr" | "kimik25" => ("mm.2.weight", 1),
        "qwen2vl_merger" | "qwen2.5vl_merger" | "janus_pro" | "youtuvl" => ("mm.1.bias", 0),
        "idefics3" => ("mm.model.fc.weight", 1),
        _ => return None,
    };
    tensors
        .iter()
        .find(|t| t.name == name)
        .and_then(|t| t.dims.get(dim).copied())
}

/// llama.cpp's multimodal context refuses a text model whose embedding width differs from
/// the projector's output (`mtmd_context`: "mismatch between text model ... and mmproj").
pub fn check_pair(p: &ProjectorShape, model: &str, model_embd: u64) -> Result<(), ProjectorError> {
    match p.projection_dim {
        Some(d) if d != 0 && d != model_embd => Err(ProjectorError::WidthMismatch {
            projector: d,
            model: model.to_string(),
            model_embd,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml_type::GgmlType;

    fn meta(pairs: &[(&str, Value)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn t(name: &str, dims: &[u64], ty: GgmlType) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dims: dims.to_vec(),
            ggml_type: ty,
            offset: 0,
        }
    }

    #[test]
    fn reads_a_gemma3_projector() {
        let m = meta(&[
            ("general.architecture", Value::String("clip".into())),
            ("clip.has_vision_encoder", Value::Bool(true)),
            ("clip.projector_type", Value::String("gemma3".into())),
            ("clip.vision.image_size", Value::Uint(896)),
            ("clip.vision.patch_size", Value::Uint(14)),
            ("clip.vision.projection_dim", Value::Uint(1)),
        ]);
        let ts = [
            t("v.patch_embd.weight", &[14, 14, 3, 1152], GgmlType::F16),
            // llama.cpp reads the width from ne[0] for gemma3.
            t("mm.input_projection.weight", &[2560, 1152], GgmlType::F32),
        ];
        let p = projector_shape(&m, &ts).unwrap();
        assert_eq!(p.projector_type, "gemma3");
        assert!(p.vision && !p.audio);
        assert_eq!(p.image_size, Some(896));
        assert_eq!(
            p.weight_bytes.get(),
            14 * 14 * 3 * 1152 * 2 + 1152 * 2560 * 4
        );
        assert_eq!(p.projection_dim, Some(2560));
        // 64x64 patches pooled 4x4: Gemma 3's 256 tokens an image.
        assert_eq!(p.image_tokens, Some(256));
        assert!(check_pair(&p, "gemma-3-4b", 2560).is_ok());
        let e = check_pair(&p, "smollm2", 576).unwrap_err().to_string();
        assert!(e.contains("2560") && e.contains("576"), "{e}");
    }

    #[test]
    fn refuses_models_and_empty_encoders() {
        let m = meta(&[("general.architecture", Value::String("llama".into()))]);
        assert_eq!(
            projector_shape(&m, &[]).unwrap_err(),
            ProjectorError::NotAProjector("llama".into())
        );
        let m = meta(&[("general.architecture", Value::String("clip".into()))]);
        assert_eq!(
            projector_shape(&m, &[]).unwrap_err(),
            ProjectorError::NoEncoder
        );
        assert_eq!(
            projector_shape(&Metadata::new(), &[]).unwrap_err(),
            ProjectorError::NoArchitecture
        );
    }
}
