//! The context a llama.cpp server slot holds. llama-server (and llama-cli, which runs on the
//! same slots) gives each slot the smaller of its share of `-c` and the model's training
//! context (`n_ctx_slot` in tools/server/server-context.cpp: `min(llama_n_ctx_seq,
//! llama_model_n_ctx_train)`), whatever `-c` and `-np` say. A plan beyond the training context
//! (SmolLM2 at 32768, trained on 8192) would otherwise be a command whose slot refuses every
//! prompt past 8192 tokens (`exceed_context_size_error`), while `layerfit serve` holds it.
//!
//! The cap is lifted by raising the training context llama.cpp reads from the file
//! (`--override-kv ARCH.context_length=int:N`). Nothing else changes for a model whose
//! positions are rotary: the training context reaches the graph only through YaRN's
//! original context (`n_ctx_orig_yarn`, which defaults to it), pinned to the file's value with
//! `--yarn-orig-ctx`. Where the graph sizes something by the training context, the cap
//! stays, and the emitted command says so:
//! - learned absolute positions (a `position_embd.weight` tensor: gpt2, starcoder, mpt,
//!   bert): the table has one row per trained position, and llama.cpp checks its shape
//!   against the training context;
//! - glm-dsa reads the training context to tell GLM 5.2 (1M tokens or more) from earlier
//!   releases, so it may not cross 1M.

use crate::gguf::{Metadata, TensorInfo};
use crate::model::keys::{self, arch_key};

/// How a llama.cpp server slot holds the planned per-sequence context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotContext {
    /// Within the training context: the slot holds the plan as it is.
    Holds,
    /// Beyond it: these arguments lift the cap, and the slot holds the plan.
    Lifted(Vec<String>),
    /// Beyond it, and the cap cannot be lifted: each slot holds `tokens`.
    Capped { tokens: u64, why: &'static str },
}

/// Where glm-dsa's graph switches from GLM 5/5.1's indexers to GLM 5.2's.
const GLM_DSA_LONG: u64 = 1 << 20;

impl SlotContext {
    /// The slot context of a model (its metadata and tensor list) planned at `context` tokens
    /// per sequence.
    pub fn of(metadata: &Metadata, tensors: &[TensorInfo], context: u64) -> SlotContext {
        let Some(arch) = metadata.get(keys::ARCHITECTURE).and_then(|v| v.as_str()) else {
            return SlotContext::Holds;
        };
        let get = |t: &str| metadata.get(&arch_key(t, arch)).and_then(|v| v.as_u64());
        let Some(trained) = get(keys::CONTEXT_LENGTH).filter(|&t| t > 0) else {
            return SlotContext::Holds;
        };
        if context <= trained {
            return SlotContext::Holds;
        }
        if tensors.iter().any(|t| t.name == "position_embd.weight") {
            return SlotContext::Capped {
                tokens: trained,
                why: "its positions are learned, one per trained token",
            };
        }
        if arch == "glm-dsa" && trained < GLM_DSA_LONG && context >= GLM_DSA_LONG {
            return SlotContext::Capped {
                tokens: trained,
                why: "a larger training context would make llama.cpp read it as GLM 5.2",
            };
        }
        let mut args = vec![
            "--override-kv".to_string(),
            format!("{arch}.context_length=int:{context}"),
        ];
        // llama.cpp's YaRN original context is the file's, or else the training context:
        // keep it where the file puts it.
        if get(keys::ROPE_SCALING_ORIG_CTX_LEN).unwrap_or(0) == 0 {
            args.push("--yarn-orig-ctx".into());
            args.push(trained.to_string());
        }
        SlotContext::Lifted(args)
    }

    /// The arguments to add to the llama.cpp command.
    pub fn args(&self) -> &[String] {
        match self {
            SlotContext::Lifted(a) => a,
            _ => &[],
        }
    }

    /// What the emitted command's user must know, when the slot holds less than the plan.
    pub fn warning(&self, context: u64) -> Option<String> {
        match self {
            SlotContext::Capped { tokens, why } => Some(format!(
                "llama.cpp's server caps each slot at the {tokens} tokens the model was trained for ({why}): the plan's {context} tokens are allocated, but a longer prompt is refused"
            )),
            _ => None,
        }
    }
}

/// Whether `--override-kv VALUE` is one [`SlotContext`] emits (`ARCH.context_length=int:N`).
pub fn is_context_override(value: &str) -> bool {
    value.split_once('=').is_some_and(|(key, v)| {
        key.ends_with(".context_length")
            && v.strip_prefix("int:")
                .is_some_and(|n| n.parse::<u64>().is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ggml_type::GgmlType;
    use crate::gguf::Value;

    fn md(arch: &str, pairs: &[(&str, u64)]) -> Metadata {
        let mut m = Metadata::new();
        m.insert(keys::ARCHITECTURE.into(), Value::String(arch.into()));
        for (k, v) in pairs {
            m.insert(arch_key(k, arch), Value::Uint(*v));
        }
        m
    }

    fn tensor(name: &str) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dims: vec![64, 64],
            ggml_type: GgmlType::F16,
            offset: 0,
        }
    }

    #[test]
    fn within_the_training_context_nothing_is_added() {
        let m = md("llama", &[(keys::CONTEXT_LENGTH, 8192)]);
        assert_eq!(SlotContext::of(&m, &[], 8192), SlotContext::Holds);
        assert!(SlotContext::of(&m, &[], 4096).args().is_empty());
    }

    #[test]
    fn beyond_it_the_training_context_is_raised_and_yarn_keeps_the_files() {
        let m = md("llama", &[(keys::CONTEXT_LENGTH, 8192)]);
        let s = SlotContext::of(&m, &[tensor("token_embd.weight")], 32768);
        assert_eq!(
            s.args(),
            [
                "--override-kv",
                "llama.context_length=int:32768",
                "--yarn-orig-ctx",
                "8192"
            ]
        );
        assert_eq!(s.warning(32768), None);
        assert!(is_context_override(&s.args()[1]));
        // A file that names YaRN's original context keeps it without help.
        let m = md(
            "qwen3",
            &[
                (keys::CONTEXT_LENGTH, 40960),
                (keys::ROPE_SCALING_ORIG_CTX_LEN, 32768),
            ],
        );
        assert_eq!(
            SlotContext::of(&m, &[], 131072).args(),
            ["--override-kv", "qwen3.context_length=int:131072"]
        );
    }

    #[test]
    fn learned_positions_and_glm_5_2_keep_the_cap_and_say_so() {
        let m = md("gpt2", &[(keys::CONTEXT_LENGTH, 1024)]);
        let s = SlotContext::of(&m, &[tensor("position_embd.weight")], 4096);
        assert!(s.args().is_empty());
        let w = s.warning(4096).unwrap();
        assert!(
            w.contains("at the 1024 tokens") && w.contains("4096"),
            "{w}"
        );
        let m = md("glm-dsa", &[(keys::CONTEXT_LENGTH, 202752)]);
        assert!(matches!(
            SlotContext::of(&m, &[], 1 << 20),
            SlotContext::Capped { tokens: 202752, .. }
        ));
        assert!(matches!(
            SlotContext::of(&m, &[], 524288),
            SlotContext::Lifted(_)
        ));
    }

    #[test]
    fn only_context_overrides_are_recognised() {
        assert!(is_context_override("gemma3.context_length=int:65536"));
        assert!(!is_context_override("gemma3.context_length=str:65536"));
        assert!(!is_context_override(
            "tokenizer.ggml.add_bos_token=bool:false"
        ));
        assert!(!is_context_override("llama.context_length=int:-1"));
    }
}
