//! The GGUF metadata a conversion of a catalog entry carries: the keys layerfit and
//! llama.cpp's loaders read, written the way `convert_hf_to_gguf.py` writes them.

use super::quant::Ftype;
use super::Entry;
use crate::gguf::{Metadata, Value};

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
    put("{arch}.feed_forward_length", e.feed_forward_length);
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
    m.insert("general.architecture".into(), Value::String(a.clone()));
    m.insert(
        "general.name".into(),
        Value::String(format!("{} {} (catalog)", e.name, ftype)),
    );
    m
}
