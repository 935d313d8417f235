//! Which type each tensor gets in a quantized file: llama.cpp's `llama-quantize` mixture
//! rules (`src/llama-quant.cpp`: `llama_tensor_get_type_impl`, `tensor_type_fallback`,
//! `tensor_allows_quantization`), applied to an f16/bf16 conversion without an imatrix and
//! without manual overrides. Reproduces both real files here tensor for tensor (tests).

use crate::ggml_type::GgmlType;
use std::fmt;

/// A file type (`llama_ftype`) as quantizers name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ftype {
    F16,
    Bf16,
    Q8_0,
    Q6K,
    Q5KM,
    Q5KS,
    Q5_1,
    Q5_0,
    Q4KM,
    Q4KS,
    Q4_1,
    Q4_0,
    Q3KL,
    Q3KM,
    Q2K,
}

impl Ftype {
    /// Best quality first: the order variant search tries them in.
    pub const BY_QUALITY: &'static [Ftype] = &[
        Ftype::F16,
        Ftype::Bf16,
        Ftype::Q8_0,
        Ftype::Q6K,
        Ftype::Q5KM,
        Ftype::Q5KS,
        Ftype::Q5_1,
        Ftype::Q5_0,
        Ftype::Q4KM,
        Ftype::Q4KS,
        Ftype::Q4_1,
        Ftype::Q4_0,
        Ftype::Q3KL,
        Ftype::Q3KM,
        Ftype::Q2K,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ftype::F16 => "f16",
            Ftype::Bf16 => "bf16",
            Ftype::Q8_0 => "q8_0",
            Ftype::Q6K => "q6_k",
            Ftype::Q5KM => "q5_k_m",
            Ftype::Q5KS => "q5_k_s",
            Ftype::Q5_1 => "q5_1",
            Ftype::Q5_0 => "q5_0",
            Ftype::Q4KM => "q4_k_m",
            Ftype::Q4KS => "q4_k_s",
            Ftype::Q4_1 => "q4_1",
            Ftype::Q4_0 => "q4_0",
            Ftype::Q3KL => "q3_k_l",
            Ftype::Q3KM => "q3_k_m",
            Ftype::Q2K => "q2_k",
        }
    }

    pub fn from_name(s: &str) -> Option<Ftype> {
        let s = s.to_ascii_lowercase();
        Ftype::BY_QUALITY.iter().copied().find(|f| f.name() == s)
    }

    /// `general.file_type` (`llama_ftype` values, `include/llama.h`).
    pub fn id(self) -> u64 {
        match self {
            Ftype::F16 => 1,
            Ftype::Q4_0 => 2,
            Ftype::Q4_1 => 3,
            Ftype::Q8_0 => 7,
            Ftype::Q5_0 => 8,
            Ftype::Q5_1 => 9,
            Ftype::Q2K => 10,
            Ftype::Q3KM => 12,
            Ftype::Q3KL => 13,
            Ftype::Q4KS => 14,
            Ftype::Q4KM => 15,
            Ftype::Q5KS => 16,
            Ftype::Q5KM => 17,
            Ftype::Q6K => 18,
            Ftype::Bf16 => 32,
        }
    }

    pub fn from_id(id: u64) -> Option<Ftype> {
        Ftype::BY_QUALITY.iter().copied().find(|f| f.id() == id)
    }

    /// `llama_ftype_get_default_type`.
    fn default_type(self) -> GgmlType {
        match self {
            Ftype::F16 => GgmlType::F16,
            Ftype::Bf16 => GgmlType::Bf16,
            Ftype::Q8_0 => GgmlType::Q8_0,
            Ftype::Q6K => GgmlType::Q6K,
            Ftype::Q5KM | Ftype::Q5KS => GgmlType::Q5K,
            Ftype::Q5_1 => GgmlType::Q5_1,
            Ftype::Q5_0 => GgmlType::Q5_0,
            Ftype::Q4KM | Ftype::Q4KS => GgmlType::Q4K,
            Ftype::Q4_1 => GgmlType::Q4_1,
            Ftype::Q4_0 => GgmlType::Q4_0,
            Ftype::Q3KL | Ftype::Q3KM => GgmlType::Q3K,
            Ftype::Q2K => GgmlType::Q2K,
        }
    }

    fn is_quantized(self) -> bool {
        !matches!(self, Ftype::F16 | Ftype::Bf16)
    }
}

impl fmt::Display for Ftype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `tensor_get_category`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" {
        Category::TokenEmbd
    } else if name.contains("attn_qkv.weight") {
        Category::AttnQkv
    } else if name.contains("attn_v.weight") {
        Category::AttnV
    } else if name.contains("attn_k.weight") {
        Category::AttnK
    } else if name.contains("attn_q.weight") {
        Category::AttnQ
    } else if name.contains("attn_output.weight") {
        Category::AttnOutput
    } else if name.contains("ffn_up") {
        Category::FfnUp
    } else if name.contains("ffn_gate") {
        Category::FfnGate
    } else if name.contains("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// `tensor_allows_quantization` for the architectures the catalog knows.
fn quantizable(name: &str, dims: &[u64]) -> bool {
    dims.iter().filter(|&&d| d > 1).count() >= 2
        && name.ends_with("weight")
        && !name.contains("_norm.weight")
        && !name.contains("ffn_gate_inp.weight")
        && !name.contains("ssm_conv1d")
}

/// What the mixture rules need to know about the model.
#[derive(Clone, Copy, Debug)]
pub struct MixtureModel {
    pub n_layer: u32,
    /// `n_head / n_head_kv` (`n_gqa`).
    pub n_gqa: u32,
    pub n_expert: u32,
    /// llama.cpp's `LLM_TYPE_70B` (llama with 80 layers and grouped KV heads).
    pub is_70b: bool,
}

fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// The block index of `blk.N.*`, for expert tensors (llama.cpp parses the name there too).
fn layer_of(name: &str) -> Option<i64> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// Assigns a type to each tensor `(name, dims)`, in file order (the counters of attn_v and
/// ffn_down tensors advance in that order, as in llama.cpp). Vectors and norms stay f32.
pub fn assign_types(
    tensors: &[(String, Vec<u64>)],
    ftype: Ftype,
    m: MixtureModel,
) -> Vec<GgmlType> {
    let tied = !tensors.iter().any(|(n, _)| n == "output.weight");
    let n_attn_v = tensors
        .iter()
        .filter(|(n, _)| matches!(category(n), Category::AttnV | Category::AttnQkv))
        .count() as i64;
    let n_layer = m.n_layer as i64;
    let mut i_attn_v = 0i64;
    let mut i_ffn_down = 0i64;
    let default = ftype.default_type();
    tensors
        .iter()
        .map(|(name, dims)| {
            if !quantizable(name, dims) {
                return GgmlType::F32;
            }
            if !ftype.is_quantized() {
                return default;
            }
            let cat = category(name);
            let ncols = dims[0];
            let mut t = default;
            if cat == Category::Output || (tied && cat == Category::TokenEmbd) {
                if !ncols.is_multiple_of(t.block_size()) {
                    t = GgmlType::Q8_0;
                } else if t != GgmlType::Q8_0 {
                    t = GgmlType::Q6K;
                }
            } else if cat == Category::TokenEmbd {
                // Keeps the default type.
            } else if matches!(cat, Category::AttnV | Category::AttnQkv) {
                t = attn_v_type(ftype, t, i_attn_v, n_attn_v, m);
                i_attn_v += 1;
            } else if cat == Category::AttnK {
                if m.n_expert == 8 {
                    t = GgmlType::Q8_0;
                }
            } else if cat == Category::FfnDown {
                let i = if m.n_expert > 1 {
                    layer_of(name).unwrap_or(i_ffn_down)
                } else {
                    i_ffn_down
                };
                t = ffn_down_type(ftype, t, i, n_layer);
                i_ffn_down += 1;
            } else if cat == Category::AttnOutput {
                if m.n_expert == 8 {
                    if matches!(ftype, Ftype::Q2K | Ftype::Q3KM | Ftype::Q4KS | Ftype::Q4KM) {
                        t = GgmlType::Q5K;
                    }
                } else {
                    match ftype {
                        Ftype::Q2K => t = GgmlType::Q3K,
                        Ftype::Q3KM => t = GgmlType::Q4K,
                        Ftype::Q3KL => t = GgmlType::Q5K,
                        _ => {}
                    }
                }
            }
            fallback(t, ncols)
        })
        .collect()
}

fn attn_v_type(ftype: Ftype, t: GgmlType, i: i64, n: i64, m: MixtureModel) -> GgmlType {
    let mut t = match ftype {
        Ftype::Q2K if m.n_gqa >= 4 => GgmlType::Q4K,
        Ftype::Q2K => GgmlType::Q3K,
        Ftype::Q3KM if i < 2 => GgmlType::Q5K,
        Ftype::Q3KM => GgmlType::Q4K,
        Ftype::Q3KL => GgmlType::Q5K,
        Ftype::Q4KM | Ftype::Q5KM if use_more_bits(i, n) => GgmlType::Q6K,
        Ftype::Q4KS if i < 4 => GgmlType::Q5K,
        _ => t,
    };
    if m.is_70b && matches!(t, GgmlType::Q3K | GgmlType::Q4K) {
        t = GgmlType::Q5K;
    }
    if m.n_expert == 8 {
        t = GgmlType::Q8_0;
    }
    t
}

fn ffn_down_type(ftype: Ftype, t: GgmlType, i: i64, n: i64) -> GgmlType {
    match ftype {
        Ftype::Q2K => GgmlType::Q3K,
        Ftype::Q3KM if i < n / 16 => GgmlType::Q5K,
        Ftype::Q3KM => GgmlType::Q4K,
        Ftype::Q3KL => GgmlType::Q5K,
        Ftype::Q4KM | Ftype::Q5KM if use_more_bits(i, n) => GgmlType::Q6K,
        Ftype::Q4KS if i < n / 8 => GgmlType::Q5K,
        _ => t,
    }
}

/// `tensor_type_fallback`: rows that are not whole blocks of the chosen type.
fn fallback(t: GgmlType, ncols: u64) -> GgmlType {
    if ncols.is_multiple_of(t.block_size()) {
        return t;
    }
    let f = match t {
        GgmlType::Q2K | GgmlType::Q3K => GgmlType::Q4_0,
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        other => other,
    };
    if !ncols.is_multiple_of(f.block_size()) {
        GgmlType::F16
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_bits_pattern_matches_llama_cpp_for_18_layers() {
        let picked: Vec<i64> = (0..18).filter(|&i| use_more_bits(i, 18)).collect();
        assert_eq!(picked, vec![0, 1, 4, 7, 10, 13, 15, 16, 17]);
    }

    #[test]
    fn names_and_ids_round_trip() {
        for &f in Ftype::BY_QUALITY {
            assert_eq!(Ftype::from_name(f.name()), Some(f));
            assert_eq!(Ftype::from_id(f.id()), Some(f));
        }
    }

    #[test]
    fn fallback_follows_block_sizes() {
        assert_eq!(fallback(GgmlType::Q4K, 640), GgmlType::Q5_0);
        assert_eq!(fallback(GgmlType::Q6K, 576), GgmlType::Q8_0);
        assert_eq!(fallback(GgmlType::Q4K, 1024), GgmlType::Q4K);
        assert_eq!(fallback(GgmlType::Q4_0, 100), GgmlType::F16);
    }
}
