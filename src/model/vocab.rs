//! Whether a draft model's vocabulary can draft for a target's, from the two headers. Pure.
//!
//! llama.cpp refuses a pair whose vocabularies differ (`common/speculative.cpp`,
//! `common_speculative_are_compatible`): the tokenizer type, the BOS and EOS tokens when
//! added, a token count more than `SPEC_VOCAB_MAX_SIZE_DIFFERENCE` (128) apart, and any token
//! text from id 5 on. The header keeps the first four; the token texts are compared by the
//! engine when `run` loads both (`engine::speculative`).

use crate::gguf::{Metadata, Value};

/// llama.cpp's `SPEC_VOCAB_MAX_SIZE_DIFFERENCE`.
pub const MAX_SIZE_DIFFERENCE: u64 = 128;

fn text<'a>(m: &'a Metadata, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn number(m: &Metadata, key: &str) -> Option<u64> {
    m.get(key).and_then(Value::as_u64)
}

fn tokens(m: &Metadata) -> Option<u64> {
    m.get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .map(|a| a.len)
}

/// Why `draft` cannot draft for `target`, in words; `None` when the headers agree.
pub fn mismatch(target: &Metadata, draft: &Metadata) -> Option<String> {
    let (tm, dm) = (
        text(target, "tokenizer.ggml.model"),
        text(draft, "tokenizer.ggml.model"),
    );
    if tm != dm {
        return Some(format!(
            "its tokenizer is {} where the model's is {}",
            dm.unwrap_or("unnamed"),
            tm.unwrap_or("unnamed")
        ));
    }
    if let (Some(t), Some(d)) = (tokens(target), tokens(draft)) {
        if t.abs_diff(d) > MAX_SIZE_DIFFERENCE {
            return Some(format!(
                "its vocabulary has {d} tokens where the model's has {t} (llama.cpp allows {MAX_SIZE_DIFFERENCE} apart)"
            ));
        }
    }
    for (what, add_key, id_key) in [
        (
            "BOS",
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.bos_token_id",
        ),
        (
            "EOS",
            "tokenizer.ggml.add_eos_token",
            "tokenizer.ggml.eos_token_id",
        ),
    ] {
        let (ta, da) = (number(target, add_key), number(draft, add_key));
        let (ti, di) = (number(target, id_key), number(draft, id_key));
        if ta.unwrap_or(0) != da.unwrap_or(0) || (ta == Some(1) && ti != di) {
            return Some(format!(
                "its {what} token differs from the model's (id {} against {})",
                di.map_or("none".into(), |v| v.to_string()),
                ti.map_or("none".into(), |v| v.to_string())
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{Array, ValueType};

    fn header(model: &str, n: u64, bos: u64) -> Metadata {
        let mut m = Metadata::new();
        m.insert("tokenizer.ggml.model".into(), Value::String(model.into()));
        m.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(Array {
                elem: ValueType::String,
                len: n,
                items: None,
            }),
        );
        m.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(true));
        m.insert("tokenizer.ggml.bos_token_id".into(), Value::Uint(bos));
        m
    }

    #[test]
    fn llama_cpp_s_header_rules() {
        let t = header("gpt2", 49152, 1);
        assert_eq!(mismatch(&t, &header("gpt2", 49152, 1)), None);
        assert_eq!(mismatch(&t, &header("gpt2", 49152 + 128, 1)), None);
        assert!(mismatch(&t, &header("gpt2", 49152 + 129, 1))
            .unwrap()
            .contains("49281 tokens"));
        assert!(mismatch(&t, &header("llama", 49152, 1))
            .unwrap()
            .contains("tokenizer is llama"));
        assert!(mismatch(&t, &header("gpt2", 49152, 2))
            .unwrap()
            .contains("BOS"));
    }
}
