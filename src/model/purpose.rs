//! Whether a model chats or only continues text, from its GGUF metadata alone. A base model
//! (pretrained, not instruction-tuned) wrapped in a chat template answers with the template's
//! own words in a loop; completed as plain text it does what it was trained for. Pure: a
//! metadata map in, a `ModelPurpose` out.
//!
//! The keys are the ones llama.cpp's converter writes (`gguf-py`'s `Keys.General` and
//! `Keys.Tokenizer`; `src/llama-arch.cpp`, `LLM_KV_NAMES`): `tokenizer.chat_template`, named
//! templates `tokenizer.chat_template.NAME` (what `llama_model_chat_template(model, NAME)`
//! reads) and their list `tokenizer.chat_templates`; and the naming fields
//! `convert_hf_to_gguf.py` fills from the Hugging Face repository: `general.name`,
//! `general.basename`, `general.finetune` (`Instruct`, `it`, `chat`, ...), `general.tags`
//! (the repository's tags: `conversational`, `text-generation`, ...) and
//! `general.source.huggingface.repository`. `general.type` says `model` or `adapter`, never
//! chat or base, so it is not read.

use super::keys;
use crate::gguf::{Metadata, Value};

/// Named chat templates (`tokenizer.chat_template.NAME`) and their list
/// (`tokenizer.chat_templates`) share this prefix with the default template's key.
const TEMPLATE_PREFIX: &str = keys::CHAT_TEMPLATE;

/// The naming fields that can say "instruct" or "chat", in the order they are reported.
const MARKER_KEYS: [&str; 5] = [
    "general.finetune",
    keys::NAME,
    "general.basename",
    "general.tags",
    "general.source.huggingface.repository",
];

/// What a model is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelPurpose {
    /// No chat template and no chat or instruct marker: it continues text, it does not chat.
    Base,
    /// A chat or instruction-tuned model, and the metadata that says so.
    Chat(ChatEvidence),
}

/// Why a model is taken for a chat model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatEvidence {
    /// The file carries a chat template under this key.
    Template { key: String },
    /// A naming field says chat or instruct (e.g. `general.finetune` = `it`).
    Marker { key: String, value: String },
}

impl ModelPurpose {
    pub fn is_base(&self) -> bool {
        *self == ModelPurpose::Base
    }
}

/// A base model has no chat template (no `tokenizer.chat_template`, no named one) and no
/// naming field that says chat or instruct. A template decides on its own: some
/// instruction-tuned files name only their training run (SmolLM2-135M-Instruct's finetune is
/// `8k-lc100k-mix1-ep2`). A marker without a template is a chat model too (llama.cpp then
/// applies its built-in template for the architecture).
pub fn detect(meta: &Metadata) -> ModelPurpose {
    if let Some(key) = template_key(meta) {
        return ModelPurpose::Chat(ChatEvidence::Template { key });
    }
    for key in MARKER_KEYS {
        for value in strings(meta.get(key)) {
            if says_chat(value) {
                return ModelPurpose::Chat(ChatEvidence::Marker {
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }
    ModelPurpose::Base
}

/// The first key holding a chat template: a non-blank string, or a non-empty list of names.
fn template_key(meta: &Metadata) -> Option<String> {
    meta.range(TEMPLATE_PREFIX.to_string()..)
        .take_while(|(k, _)| k.starts_with(TEMPLATE_PREFIX))
        .filter(|(k, _)| {
            let rest = &k[TEMPLATE_PREFIX.len()..];
            // `tokenizer.chat_template`, `tokenizer.chat_template.NAME`,
            // `tokenizer.chat_templates`; not an unrelated key that merely starts alike.
            rest.is_empty() || rest.starts_with('.') || rest == "s"
        })
        .find(|(_, v)| match v {
            Value::String(s) => !s.trim().is_empty(),
            Value::Array(a) => a.len > 0,
            _ => false,
        })
        .map(|(k, _)| k.clone())
}

/// A string value, or the string items of an array value (`general.tags`).
fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.items.iter().flatten().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a name, tag or finetune label says chat or instruct, word by word (words split at
/// anything but letters and digits, so `gemma-3-270m-it` has the word `it` and
/// `Qwen3-4B-Instruct-2507` the word `instruct`, but `edit` or `text-generation` say nothing).
pub fn says_chat(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .any(|w| {
            // `it`: Gemma's instruction-tuned finetune label; `sft`, `dpo`, `rlhf`, `orpo`:
            // the tuning that makes a chat model out of a base one.
            matches!(
                w.as_str(),
                "it" | "conversational" | "assistant" | "sft" | "dpo" | "rlhf" | "orpo"
            ) || w.starts_with("instruct")
                || w.starts_with("chat")
                || w.ends_with("chat")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{Array, ValueType};

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    fn tags(t: &[&str]) -> Value {
        Value::Array(Array {
            elem: ValueType::String,
            len: t.len() as u64,
            items: Some(t.iter().map(|x| s(x)).collect()),
        })
    }

    fn meta(kv: &[(&str, Value)]) -> Metadata {
        let mut m = Metadata::new();
        m.insert("general.architecture".into(), s("gemma3"));
        m.insert("general.type".into(), s("model"));
        for (k, v) in kv {
            m.insert(k.to_string(), v.clone());
        }
        m
    }

    /// The real gemma-3-270m-q4_k_m.gguf: no template, no instruct tag.
    fn gemma3_270m() -> Metadata {
        meta(&[
            ("general.name", s("Gemma 3 270m")),
            ("general.basename", s("gemma-3")),
            ("general.size_label", s("270M")),
            (
                "general.tags",
                tags(&["gemma3", "gemma", "google", "text-generation"]),
            ),
            ("tokenizer.ggml.model", s("llama")),
        ])
    }

    #[test]
    fn the_real_files() {
        assert_eq!(detect(&gemma3_270m()), ModelPurpose::Base);
        // SmolLM2-135M-Instruct.Q4_1.gguf: its naming fields say nothing; its template does.
        let smollm2 = meta(&[
            ("general.name", s("Smollm2 135M 8k Lc100K Mix1 Ep2")),
            ("general.finetune", s("8k-lc100k-mix1-ep2")),
            ("general.basename", s("smollm2")),
            (
                "tokenizer.chat_template",
                s("{% for message in messages %}..."),
            ),
        ]);
        assert_eq!(
            detect(&smollm2),
            ModelPurpose::Chat(ChatEvidence::Template {
                key: "tokenizer.chat_template".into()
            })
        );
    }

    #[test]
    fn templates_under_every_key_llama_cpp_reads() {
        for key in [
            "tokenizer.chat_template",
            "tokenizer.chat_template.tool_use",
            "tokenizer.chat_template.rag",
        ] {
            let mut m = gemma3_270m();
            m.insert(key.into(), s("{{ messages }}"));
            assert_eq!(
                detect(&m),
                ModelPurpose::Chat(ChatEvidence::Template { key: key.into() }),
                "{key}"
            );
        }
        let mut m = gemma3_270m();
        m.insert("tokenizer.chat_templates".into(), tags(&["default", "rag"]));
        assert!(!detect(&m).is_base());
        // A blank template, an empty list, or a key that only starts alike: still base.
        for (key, v) in [
            ("tokenizer.chat_template", s("  \n")),
            ("tokenizer.chat_templates", tags(&[])),
            ("tokenizer.chat_template_kwargs", s("{}")),
        ] {
            let mut m = gemma3_270m();
            m.insert(key.into(), v);
            assert_eq!(detect(&m), ModelPurpose::Base, "{key}");
        }
    }

    #[test]
    fn instruct_and_chat_markers_without_a_template() {
        for (key, v) in [
            ("general.finetune", s("it")),
            ("general.finetune", s("Instruct")),
            ("general.finetune", s("Instruct-2507")),
            ("general.finetune", s("chat")),
            ("general.finetune", s("chat-hf")),
            ("general.name", s("Gemma 3 270m It")),
            ("general.name", s("Mistral 7B Instruct v0.3")),
            ("general.name", s("Llama 2 7b Chat Hf")),
            ("general.name", s("Zephyr 7B DPO")),
            ("general.basename", s("openchat")),
            ("general.tags", tags(&["text-generation", "conversational"])),
            ("general.tags", tags(&["instruct"])),
            (
                "general.source.huggingface.repository",
                s("google/gemma-3-270m-it"),
            ),
        ] {
            let mut m = gemma3_270m();
            m.insert(key.into(), v.clone());
            assert!(!detect(&m).is_base(), "{key} = {v:?}");
            if let ModelPurpose::Chat(ChatEvidence::Marker { key: k, .. }) = detect(&m) {
                assert_eq!(k, key);
            } else {
                panic!("{key}: not a marker");
            }
        }
    }

    #[test]
    fn words_that_do_not_say_chat() {
        for text in [
            "Gemma 3 270m",
            "text-generation",
            "Qwen2.5 Coder 7B",
            "edit",
            "Itsy 1B",
            "pt",
            "base",
            "Phi 2",
            "",
        ] {
            assert!(!says_chat(text), "{text}");
        }
        // General fields that name neither (license, organization, type) are not read.
        let m = meta(&[
            ("general.organization", s("Chat Labs")),
            ("general.license", s("it-license")),
            ("general.description", s("It is not instruction tuned")),
        ]);
        assert_eq!(detect(&m), ModelPurpose::Base);
        // Non-string values under a naming key are ignored.
        let m = meta(&[("general.finetune", Value::Uint(1))]);
        assert_eq!(detect(&m), ModelPurpose::Base);
    }
}
