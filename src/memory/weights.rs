//! Weight bytes per tensor, per block and outside blocks, block-exact (`ggml_nbytes`).

use crate::bytes::Bytes;
use crate::gguf::TensorInfo;
use serde::Serialize;

/// Where the weights are, as llama.cpp's offload rules need them: per repeating block
/// (`blk.N.*`) and outside the blocks (token embeddings, output norm and head).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Weights {
    pub total: Bytes,
    pub per_block: Vec<Bytes>,
    pub outside_blocks: Bytes,
    /// `token_embd.*`: stays in host memory whatever is offloaded.
    pub token_embd: Bytes,
    /// `output.*` plus `output_norm.*` (or the tied embedding's copy): the output layer that
    /// `-ngl` counts first.
    pub output: Bytes,
    /// Bytes of expert tensors (`*_exps`) per block, for MoE placement.
    pub experts_per_block: Vec<Bytes>,
    /// Bytes of the dense feed-forward tensors per block (llama.cpp's `--n-cpu-ffn` regex
    /// `\.ffn_(up|down|gate)\.`), which may stay on the CPU while attention and the KV
    /// cache go to the GPU.
    pub ffn_per_block: Vec<Bytes>,
    pub n_tensors: usize,
    pub n_params: u64,
    /// Bytes of the file's tensors that llama.cpp's default load skips ([`is_loaded`]): the
    /// multi-token-prediction blocks. `llama_model_size` counts them, no buffer holds them,
    /// and they are in none of the fields above.
    pub not_loaded: Bytes,
}

/// The block index of a tensor named `blk.N.<rest>`.
pub fn block_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// A dense feed-forward tensor as llama.cpp's `--n-cpu-ffn` matches it
/// (`\.ffn_(up|down|gate)\.`, common/common.h `LLM_FFN_DENSE_REGEX`).
pub fn is_dense_ffn(name: &str) -> bool {
    [".ffn_up.", ".ffn_down.", ".ffn_gate."]
        .iter()
        .any(|p| name.contains(p))
}

/// Sums tensor sizes into `Weights`. Tensors of blocks beyond `block_count` (which a valid
/// file never has) are counted outside the blocks rather than dropped.
pub fn weights<'a>(
    tensors: impl IntoIterator<Item = &'a TensorInfo>,
    block_count: usize,
) -> Weights {
    let mut w = Weights {
        total: Bytes::ZERO,
        per_block: vec![Bytes::ZERO; block_count],
        outside_blocks: Bytes::ZERO,
        token_embd: Bytes::ZERO,
        output: Bytes::ZERO,
        experts_per_block: vec![Bytes::ZERO; block_count],
        ffn_per_block: vec![Bytes::ZERO; block_count],
        n_tensors: 0,
        n_params: 0,
        not_loaded: Bytes::ZERO,
    };
    for t in tensors {
        let b = t.n_bytes();
        w.total += b;
        w.n_tensors += 1;
        w.n_params = w.n_params.saturating_add(t.n_elements());
        match block_of(&t.name).filter(|&i| i < block_count) {
            Some(i) => {
                w.per_block[i] += b;
                if t.name.contains("_exps.") || t.name.contains("_exps_") {
                    w.experts_per_block[i] += b;
                }
                if is_dense_ffn(&t.name) {
                    w.ffn_per_block[i] += b;
                }
            }
            None => {
                w.outside_blocks += b;
                if t.name.starts_with("token_embd.") {
                    w.token_embd += b;
                } else if t.name.starts_with("output") {
                    w.output += b;
                }
            }
        }
    }
    w
}

/// Whether llama.cpp's default load creates tensor `name` of a model of `shape`. Every
/// architecture that reads `nextn_predict_layers` creates each tensor of the trailing
/// `n_layer_nextn` blocks with `TENSOR_SKIP` unless the context asks for the prediction head
/// (`ml.load_mtp`, off by default: `llama_model_default_params`); the loader then drops the
/// tensor (`llama_model_loader::create_tensor`: "model has unused tensor ... ignoring"), so no
/// buffer holds it, while `llama_model_size` (the file's tensor bytes) still counts it. A
/// model made only of those blocks (an MTP draft file, gemma4-assistant) loads them.
pub fn is_loaded(shape: &crate::model::Shape, name: &str) -> bool {
    let first_mtp = shape.block_count.saturating_sub(shape.nextn_layers) as usize;
    first_mtp == 0 || block_of(name).is_none_or(|b| b < first_mtp)
}

/// The weights llama.cpp allocates for a model of `shape`: [`weights`] of the tensors it
/// loads ([`is_loaded`]; the skipped ones' bytes in [`Weights::not_loaded`]), plus the tied copy
/// that some architectures' loaders make of the embedding (or output head) before the tensor
/// itself is created, so both are allocated and counted by `llama_model_size`
/// ([`crate::model::arch::tied_copy`]).
pub fn model_weights<'a>(
    shape: &crate::model::Shape,
    tensors: impl IntoIterator<Item = &'a TensorInfo>,
) -> Weights {
    let (tensors, skipped): (Vec<&TensorInfo>, Vec<&TensorInfo>) =
        tensors.into_iter().partition(|t| is_loaded(shape, &t.name));
    let mut w = weights(tensors.iter().copied(), shape.block_count as usize);
    w.not_loaded = skipped.iter().map(|t| t.n_bytes()).sum();
    let Some((absent, source)) = crate::model::arch::tied_copy(&shape.architecture) else {
        return w;
    };
    let (mut has_absent, mut copy) = (false, None);
    for t in tensors {
        if t.name == absent {
            has_absent = true;
        } else if t.name == source {
            copy = Some(t.n_bytes());
        }
    }
    if let (false, Some(b)) = (has_absent, copy) {
        w.total += b;
        w.outside_blocks += b;
        if absent.starts_with("token_embd") {
            w.token_embd += b;
        } else {
            w.output += b;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml_type::GgmlType;

    fn t(name: &str, dims: &[u64], ty: GgmlType) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dims: dims.to_vec(),
            ggml_type: ty,
            offset: 0,
        }
    }

    #[test]
    fn sums_per_block_and_outside() {
        let ts = [
            t("token_embd.weight", &[64, 100], GgmlType::Q8_0),
            t("blk.0.attn_q.weight", &[64, 64], GgmlType::Q4_0),
            t("blk.1.ffn_up_exps.weight", &[64, 32, 4], GgmlType::F16),
            t("output_norm.weight", &[64], GgmlType::F32),
        ];
        let w = weights(&ts, 2);
        assert_eq!(w.token_embd, Bytes(68 * 100));
        assert_eq!(w.per_block[0], Bytes(36 * 64));
        assert_eq!(w.per_block[1], Bytes(64 * 32 * 4 * 2));
        assert_eq!(w.experts_per_block[1], w.per_block[1]);
        assert_eq!(w.output, Bytes(256));
        assert_eq!(
            w.total,
            w.per_block.iter().copied().sum::<Bytes>() + w.outside_blocks
        );
        assert_eq!(block_of("blk.12.attn_k.weight"), Some(12));
        assert_eq!(block_of("blkx.1"), None);
    }
}
