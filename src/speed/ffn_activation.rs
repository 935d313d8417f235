//! The feed-forward activation's cost per element: llama.cpp runs it on every token of every
//! block, and its cost depends on the function, not on the weights. GELU-gated models (the
//! gemma family, GPT-2, Falcon, ...) pay several times what SiLU-gated ones do: through
//! llama.cpp's eval callback on this 2-core machine (1 thread), Gemma 3 270M spent 52 ms of
//! a 512-token batch's 1.87 s and 0.35 ms of a 17.5 ms decode step in `GEGLU`, SmolLM2
//! 13 ms of 2.75 s in `SWIGLU`. ggml's GELU looks each value up in a table behind two
//! branches (`ggml_vec_geglu_f32`), so its cost also grows with the gate values' spread
//! (2.6 ns a value at a standard deviation of 1, 7.5 at 20 here): the calibration measures
//! it over drawn activations like every other figure (docs/speed.md).

use super::calibration::ThreadRates;
use serde::{Deserialize, Serialize};

/// The gating function of a model's feed-forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnActivation {
    Gelu,
    Silu,
}

impl FfnActivation {
    /// The function llama.cpp's graph for `architecture` uses (`LLM_FFN_GELU` in its model
    /// graphs: the gemma family, GPT-2, BLOOM, Falcon, StarCoder, Phi-2, MPT, GPT-NeoX, BERT,
    /// T5, Grok); everything else gates with SiLU.
    pub fn of_architecture(architecture: &str) -> FfnActivation {
        const GELU: &[&str] = &[
            "gemma",
            "gpt2",
            "bloom",
            "falcon",
            "starcoder",
            "phi2",
            "mpt",
            "gptneox",
            "bert",
            "t5",
            "grok",
            "codeshell",
        ];
        if GELU.iter().any(|g| architecture.starts_with(g)) {
            FfnActivation::Gelu
        } else {
            FfnActivation::Silu
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FfnActivation::Gelu => "gelu",
            FfnActivation::Silu => "silu",
        }
    }
}

/// Nanoseconds per activated element of one function, measured over `tokens` rows of
/// values drawn as activations are (`engine::bench_data`). The same figure serves a decode
/// step's one row: each node's fixed cost is in the engine's step cost already.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActivationRate {
    pub activation: String,
    pub tokens: u32,
    pub ns_per_element: f64,
}

impl ThreadRates {
    /// Seconds per activated element of `f`; 0 when not measured (calibrations before
    /// version 7).
    pub fn ffn_activation_seconds(&self, f: FfnActivation) -> f64 {
        self.ffn_activation_ns
            .iter()
            .filter(|r| r.activation == f.name())
            .map(|r| r.ns_per_element)
            .find(|x| x.is_finite() && *x > 0.0)
            .map_or(0.0, |ns| ns * 1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speed::model::{decode_seconds, prompt_seconds, Rates};
    use crate::speed::tests::{part, point};

    fn rate(activation: FfnActivation, tokens: u32, ns_per_element: f64) -> ActivationRate {
        ActivationRate {
            activation: activation.name().into(),
            tokens,
            ns_per_element,
        }
    }

    #[test]
    fn llama_cpp_gates_the_gemma_family_with_gelu_and_llama_with_silu() {
        for a in [
            "gemma",
            "gemma2",
            "gemma3",
            "gemma3n",
            "gpt2",
            "falcon",
            "starcoder2",
        ] {
            assert_eq!(
                FfnActivation::of_architecture(a),
                FfnActivation::Gelu,
                "{a}"
            );
        }
        for a in ["llama", "qwen3", "mistral3", "phi3", "deepseek2"] {
            assert_eq!(
                FfnActivation::of_architecture(a),
                FfnActivation::Silu,
                "{a}"
            );
        }
    }

    #[test]
    fn each_activated_element_costs_its_function_s_figure() {
        let mut r = point(1);
        r.ffn_activation_ns = vec![
            rate(FfnActivation::Gelu, 256, 3.0),
            rate(FfnActivation::Silu, 256, 1.0),
        ];
        let base = part(None);
        let with = |f: FfnActivation| crate::speed::Part {
            ffn_elements: 18.0 * 2048.0,
            ffn_activation: f,
            ..base.clone()
        };
        let rates = Rates::Measured(&r);
        let decode = |p: &crate::speed::Part| decode_seconds(p, &rates, 100.0).unwrap();
        let prompt = |p: &crate::speed::Part| prompt_seconds(p, &rates, 0.0, 512.0).unwrap();
        let elements = 18.0 * 2048.0;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12 * b.max(1.0);
        assert!(close(
            decode(&with(FfnActivation::Gelu)) - decode(&base),
            elements * 3e-9
        ));
        assert!(close(
            decode(&with(FfnActivation::Silu)) - decode(&base),
            elements * 1e-9
        ));
        assert!(close(
            prompt(&with(FfnActivation::Gelu)) - prompt(&base),
            512.0 * elements * 3e-9
        ));
        // Not measured (an older calibration): no charge, not a guess.
        r.ffn_activation_ns.clear();
        let rates = Rates::Measured(&r);
        let p = with(FfnActivation::Gelu);
        assert!(close(
            decode_seconds(&p, &rates, 100.0).unwrap(),
            decode_seconds(&base, &rates, 100.0).unwrap()
        ));
    }
}
