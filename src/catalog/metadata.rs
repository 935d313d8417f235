//! The GGUF metadata a conversion of a catalog entry carries: the keys layerfit and
//! llama.cpp's loaders read, written the way `convert_hf_to_gguf.py` writes them.

use super::quant::Ftype;
use super::Entry;
use crate::gguf::{Array, Metadata, Value, ValueType};

/// Keys of `e`'s `ftype` variant. `{arch}` stands for the architecture name.
pub fn metadata(e: &Entry, ftype: Ftype) -> Metadata {
    let a = &e.architecture;
    let mut m = Metadata::new();
    let mut put = |k: &str, v: u64| {
        m.insert(k.replace("{arch}", a), Value::Uint(v));
    };
    put("general.file_type", ftype.id());
    put("{arch}.block_count", e.block_count as u64);
    put("{arch}.context_length", e.context_length);
    put("{arch}.embedding_length", e.embedding_length);
    // 0: the config has no dense width and the converter writes no key (qwen35moe).
    if e.feed_forward_length > 0 {
        put("{arch}.feed_forward_length", e.feed_forward_length);
    }
    put("{arch}.vocab_size", e.vocab_size);
    put("{arch}.attention.head_count", e.head_count as u64);
    match e.kv_lora_rank {
        // Multi-head latent attention, as the converter stores it for deepseek2: one shared
        // "KV head" holding the latent plus the rotary part, the decompressed sizes apart.
        Some(kv_lora) => {
            let rope = e.qk_rope_head_dim.unwrap_or(0) as u64;
            let nope = e.qk_nope_head_dim.unwrap_or(0) as u64;
            put("{arch}.attention.head_count_kv", 1);
            put("{arch}.attention.key_length", kv_lora + rope);
            put("{arch}.attention.value_length", kv_lora);
            put("{arch}.attention.key_length_mla", nope + rope);
            put(
                "{arch}.attention.value_length_mla",
                e.v_head_dim.unwrap_or(0) as u64,
            );
            put("{arch}.attention.kv_lora_rank", kv_lora);
            put("{arch}.rope.dimension_count", rope);
            if let Some(q_lora) = e.q_lora_rank {
                put("{arch}.attention.q_lora_rank", q_lora);
            }
        }
        None => {
            put("{arch}.attention.head_count_kv", e.head_count_kv as u64);
            put("{arch}.attention.key_length", e.head_dim() as u64);
            put("{arch}.attention.value_length", e.head_dim() as u64);
        }
    }
    if let Some(w) = e.sliding_window {
        put("{arch}.attention.sliding_window", w as u64);
    }
    if e.expert_count > 0 {
        put("{arch}.expert_count", e.expert_count as u64);
        put("{arch}.expert_used_count", e.expert_used_count as u64);
    }
    if let Some(f) = e.expert_feed_forward_length {
        put("{arch}.expert_feed_forward_length", f);
    }
    if e.leading_dense_block_count > 0 {
        put(
            "{arch}.leading_dense_block_count",
            e.leading_dense_block_count as u64,
        );
    }
    if e.expert_shared_count > 0 {
        put("{arch}.expert_shared_count", e.expert_shared_count as u64);
    }
    if let Some(f) = e.expert_shared_feed_forward_length {
        put("{arch}.expert_shared_feed_forward_length", f);
    }
    if e.nextn_predict_layers > 0 {
        put("{arch}.nextn_predict_layers", e.nextn_predict_layers as u64);
    }
    if let Some(n) = e.rope_dimension_count {
        put("{arch}.rope.dimension_count", n as u64);
    }
    if let Some(n) = e.full_attention_interval {
        put("{arch}.full_attention_interval", n as u64);
    }
    if let Some(s) = &e.ssm {
        put("{arch}.ssm.conv_kernel", s.conv_kernel);
        put("{arch}.ssm.state_size", s.state_size);
        put("{arch}.ssm.group_count", s.group_count);
        put("{arch}.ssm.time_step_rank", s.time_step_rank);
        put("{arch}.ssm.inner_size", s.inner_size);
    }
    if let Some(sections) = &e.rope_dimension_sections {
        let items: Vec<Value> = sections.iter().map(|&x| Value::Uint(x as u64)).collect();
        m.insert(
            format!("{a}.rope.dimension_sections"),
            Value::Array(Array {
                elem: ValueType::I32,
                len: items.len() as u64,
                items: Some(items),
            }),
        );
    }
    m.insert("general.architecture".into(), Value::String(a.clone()));
    m.insert(
        "general.name".into(),
        Value::String(format!("{} {} (catalog)", e.name, ftype)),
    );
    m
}
