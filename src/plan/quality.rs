//! Quality loss, as measured, per weight quantization and per KV cache type: the mean
//! Kullback-Leibler divergence (nats per token) of the model's next-token distribution from
//! the unquantized model's. The ranking adds the two and treats losses below what the
//! measurements can tell apart as zero (docs/ranking.md).
//!
//! Weights: llama.cpp's own table (vendored `tools/perplexity/README.md`, "LLaMA 3 8B
//! Scoreboard", CUDA, no importance matrix; the iq* rows use its Wikitext imatrix).
//! KV cache: llama.cpp PR #7412 (JohannesGaessler, LLaMA 3 8B f16 weights: f16/f16 0.000189,
//! q8_0/q8_0 0.000980) and, for q4_0 (absent from that excerpt), the localbench KV cache
//! benchmark (oobabooga, 2026: q4_0 cache 0.087 to 0.117 on Qwen 3.6; the lower figure).

use crate::ggml_type::GgmlType;
use serde::Serialize;

/// Losses below this are the f16 cast's own noise (f16 0.00055, q8_0 0.00136 in the same
/// table): the measurements cannot tell them apart, so they count as zero.
pub const NOISE_KLD: f64 = 0.002;

/// One row of llama.cpp's scoreboard: name, size of the 8.03B model in GiB, mean KLD.
const WEIGHTS: &[(&str, f64, f64)] = &[
    ("f16", 14.97, 0.000551),
    ("bf16", 14.97, 0.000551),
    ("f32", 29.94, 0.0),
    ("q8_0", 7.96, 0.001355),
    ("q6_k", 6.14, 0.005452),
    ("q5_k_m", 5.33, 0.010762),
    ("q5_k_s", 5.21, 0.016595),
    ("q5_1", 5.65, 0.018045),
    ("q5_0", 5.21, 0.022239),
    ("q4_k_m", 4.58, 0.031273),
    ("q4_k_s", 4.37, 0.043136),
    ("iq4_nl", 4.35, 0.035742),
    ("iq4_xs", 4.14, 0.036334),
    ("q4_1", 4.78, 0.071683),
    ("q4_0", 4.34, 0.071940),
    ("q3_k_l", 4.03, 0.087176),
    ("q3_k_m", 3.74, 0.101913),
    ("iq3_m", 3.53, 0.102534),
    ("iq3_s", 3.42, 0.111278),
    ("iq3_xs", 3.28, 0.138693),
    ("iq3_xxs", 3.05, 0.183625),
    ("q3_k_s", 3.41, 0.228217),
    ("iq2_m", 2.74, 0.325989),
    ("q2_k", 2.96, 0.445132),
    ("iq2_s", 2.56, 0.439197),
    ("iq2_xs", 2.43, 0.546290),
    ("iq2_xxs", 2.24, 0.812022),
    ("iq1_m", 2.01, 1.393084),
    ("iq1_s", 1.88, 2.211278),
];

/// Parameters of the scoreboard's model (LLaMA 3 8B), to turn its sizes into bits per weight.
const SCOREBOARD_PARAMS: f64 = 8.03e9;

/// A loss figure and where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Loss {
    /// Mean KLD per token (nats).
    pub kld: f64,
    /// The row it comes from: the quantization's name, or "nearest to N bits per weight".
    pub basis: String,
}

impl Loss {
    /// The loss the ranking compares: zero below what measurements tell apart.
    pub fn effective(&self) -> f64 {
        if self.kld < NOISE_KLD {
            0.0
        } else {
            self.kld
        }
    }
}

/// The weights' loss: by the file's quantization name when the scoreboard has it, else the
/// row whose bits per weight are nearest (a mixture the table does not name).
pub fn weights_loss(quant: Option<&str>, bits_per_weight: f64) -> Loss {
    if let Some(q) = quant.map(str::to_ascii_lowercase) {
        if let Some(&(name, _, kld)) = WEIGHTS.iter().find(|r| r.0 == q) {
            return Loss {
                kld,
                basis: name.into(),
            };
        }
    }
    let bpw = |gib: f64| gib * (1u64 << 30) as f64 * 8.0 / SCOREBOARD_PARAMS;
    let nearest = WEIGHTS
        .iter()
        .filter(|r| r.0 != "f32")
        .min_by(|a, b| {
            (bpw(a.1) - bits_per_weight)
                .abs()
                .total_cmp(&(bpw(b.1) - bits_per_weight).abs())
        })
        .expect("the table is not empty");
    Loss {
        kld: nearest.2,
        basis: format!(
            "{} (nearest to {bits_per_weight:.2} bits per weight)",
            nearest.0
        ),
    }
}

/// The KV cache type's loss (K and V of the same type).
pub fn kv_loss(t: GgmlType) -> Loss {
    let (kld, basis) = match t {
        GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => (0.000189, "f16 cache"),
        GgmlType::Q8_0 => (0.000980, "q8_0 cache"),
        GgmlType::Q5_1 | GgmlType::Q5_0 => (0.0176, "q5 cache"),
        _ => (0.087, "q4 cache"),
    };
    Loss {
        kld,
        basis: basis.into(),
    }
}

/// How the weights' loss reads to a person, and how much it degrades the experience:
/// below 0.1 (q4_0 and better) none; Q3_K_M-class mild, Q3_K_S-class moderate, Q2_K and
/// below severe.
pub fn weights_severity(kld: f64) -> Option<super::Severity> {
    use super::Severity::*;
    match kld {
        k if k < 0.1 => None,
        k if k < 0.2 => Some(Mild),
        k if k < 0.3 => Some(Moderate),
        _ => Some(Severe),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_and_q8_0_count_as_equal_q4_k_m_does_not() {
        let f16 = weights_loss(Some("F16"), 16.0);
        let q8 = weights_loss(Some("q8_0"), 8.5);
        let q4 = weights_loss(Some("q4_k_m"), 4.9);
        assert_eq!(f16.effective(), q8.effective());
        assert!(q4.effective() > q8.effective());
        assert_eq!(
            kv_loss(GgmlType::F16).effective(),
            kv_loss(GgmlType::Q8_0).effective()
        );
        assert!(kv_loss(GgmlType::Q4_0).effective() > 0.05);
    }

    #[test]
    fn an_unnamed_mixture_takes_the_nearest_row() {
        let l = weights_loss(None, 8.5);
        assert!(l.basis.starts_with("q8_0"), "{}", l.basis);
        let l = weights_loss(Some("mostly_q4_k_xl"), 4.8);
        assert!(l.basis.starts_with("q4_1") || l.basis.starts_with("q4_k_m"));
        assert_eq!(weights_severity(0.445), Some(crate::plan::Severity::Severe));
        assert_eq!(weights_severity(0.031), None);
    }
}
