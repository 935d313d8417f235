//! Every architecture rule against the real engine: synthetic models (layout discovered from
//! llama.cpp, sparse tensor data) measured by llama.cpp's dry run, compared with layerfit's
//! estimate at several contexts and the three headline cache types.

mod common;

use common::arch_inputs::{self, Hint};

use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::{GgufWriter, WriteValue};
use layerfit::memory::CacheConfig;
use std::path::Path;

const CONTEXTS: [u32; 3] = [4096, 10000, 32768];
const TYPES: [GgmlType; 3] = [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];

/// Every context x cache type, flash attention on (llama.cpp's automatic choice on CPU).
fn assert_matches_engine(path: &Path, contexts: &[u32], types: &[GgmlType]) {
    for &n_ctx in contexts {
        for &t in types {
            let cfg = CacheConfig {
                n_ctx: n_ctx as u64,
                type_k: t,
                type_v: t,
                ..CacheConfig::default()
            };
            common::assert_matches_engine(path, &cfg);
        }
    }
}

fn build(arch: &str, n_layer: u32, extra: impl FnOnce(&mut GgufWriter)) -> std::path::PathBuf {
    common::synthetic("archs", arch, n_layer, extra)
}

#[test]
fn llama_gqa() {
    let p = build("llama", 4, |_| {});
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn openelm_per_layer_head_counts() {
    let p = build("openelm", 4, |w| {
        w.kv(
            "openelm.attention.head_count",
            WriteValue::ArrI32(vec![4, 4, 8, 8]),
        )
        .kv(
            "openelm.attention.head_count_kv",
            WriteValue::ArrI32(vec![1, 2, 2, 4]),
        )
        .kv("openelm.attention.key_length", WriteValue::U32(64))
        .kv("openelm.attention.value_length", WriteValue::U32(64))
        .kv(
            "openelm.feed_forward_length",
            WriteValue::ArrI32(vec![512, 512, 768, 768]),
        );
    });
    assert_matches_engine(&p, &[8192], &TYPES);
}

#[test]
fn qwen2_with_biases() {
    let p = build("qwen2", 4, |_| {});
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn qwen3_explicit_head_size() {
    let p = build("qwen3", 4, |w| {
        w.kv("qwen3.attention.key_length", WriteValue::U32(64))
            .kv("qwen3.attention.value_length", WriteValue::U32(64));
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn gemma2_sliding_window_every_other_layer() {
    let p = build("gemma2", 4, |w| {
        w.kv("gemma2.attention.sliding_window", WriteValue::U32(1024));
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn gemma3_sliding_window_pattern_6() {
    let p = build("gemma3", 8, |w| {
        w.kv("gemma3.attention.sliding_window", WriteValue::U32(512))
            .kv("gemma3.attention.key_length", WriteValue::U32(128))
            .kv("gemma3.attention.value_length", WriteValue::U32(128));
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn gemma3_explicit_per_layer_pattern() {
    let p = build("gemma3", 4, |w| {
        w.kv("gemma3.attention.sliding_window", WriteValue::U32(256))
            .kv(
                "gemma3.attention.sliding_window_pattern",
                WriteValue::ArrBool(vec![true, false, false, true]),
            );
    });
    assert_matches_engine(&p, &[32768], &TYPES);
}

#[test]
fn phi3_ignores_its_sliding_window() {
    let p = build("phi3", 4, |w| {
        w.kv("phi3.attention.sliding_window", WriteValue::U32(2047))
            .kv("phi3.rope.dimension_count", WriteValue::U32(32));
        // The fused QKV projection is optional to llama.cpp (so never asked for), but the
        // graph needs it or separate Q/K/V: n_embd -> n_embd + 2 * n_embd_k_gqa.
        for i in 0..4 {
            w.tensor(
                &format!("blk.{i}.attn_qkv.weight"),
                &[256, 384],
                GgmlType::Q8_0,
            );
        }
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn qwen3moe_experts() {
    let p = build("qwen3moe", 4, |w| {
        w.kv("qwen3moe.expert_count", WriteValue::U32(8))
            .kv("qwen3moe.expert_used_count", WriteValue::U32(2))
            .kv("qwen3moe.expert_feed_forward_length", WriteValue::U32(256));
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn deepseek2_mla() {
    // Latent attention (key_length_mla, kv_lora_rank, ...), one leading dense block, experts.
    let p = build("deepseek2", 4, |w| {
        arch_inputs::prepare(w, "deepseek2", &[Hint::Mla, Hint::Moe]);
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

fn ssm_keys(w: &mut GgufWriter, arch: &str) {
    let k = |s: &str| format!("{arch}.{s}");
    w.kv(&k("ssm.conv_kernel"), WriteValue::U32(4))
        .kv(&k("ssm.inner_size"), WriteValue::U32(512))
        .kv(&k("ssm.state_size"), WriteValue::U32(16))
        .kv(&k("ssm.time_step_rank"), WriteValue::U32(16));
}

#[test]
fn mamba_recurrent_state_is_independent_of_context() {
    let p = build("mamba", 4, |w| {
        w.remove_kv("mamba.attention.head_count")
            .remove_kv("mamba.attention.head_count_kv")
            .remove_kv("mamba.feed_forward_length");
        ssm_keys(w, "mamba");
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

#[test]
fn jamba_hybrid_attention_and_ssm_layers() {
    let p = build("jamba", 4, |w| {
        w.kv(
            "jamba.attention.head_count_kv",
            WriteValue::ArrI32(vec![0, 2, 0, 0]),
        );
        ssm_keys(w, "jamba");
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);
}

/// A header shaped like Qwen3.5 (8 blocks, every 4th one full attention, the rest gated
/// delta-net): the KV cache on the 2 attention blocks only, the recurrent state on the other 6,
/// both to llama.cpp's byte, and `inspect --json` says so (`model.recurrent_layers`,
/// `kv_cache.recurrent_state_bytes`, `kv_cache.bytes`, `model.rules_verified`).
#[test]
fn qwen35_hybrid_every_fourth_block_attends() {
    let p = build("qwen35", 8, |w| {
        // Delta-net widths and the blocks' fused projections (tests/common/arch_inputs.rs).
        arch_inputs::prepare(w, "qwen35", &[]);
        w.kv(
            "qwen35.rope.dimension_sections",
            WriteValue::ArrI32(vec![8, 8, 8, 0]),
        )
        .kv("qwen35.full_attention_interval", WriteValue::U32(4));
    });
    assert_matches_engine(&p, &CONTEXTS, &TYPES);

    let bin = env!("CARGO_BIN_EXE_layerfit");
    let (code, out, err) = common::layerfit(bin, &["inspect", p.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    common::assert_schema("inspect", &v);
    assert_eq!(v["model"]["recurrent_layers"], 6);
    assert_eq!(
        v["model"]["rules_verified"], true,
        "docs/architectures.md lists qwen35 as exact"
    );
    let cfg = CacheConfig::default();
    let m = layerfit::engine::measure::measure(
        &p,
        &layerfit::engine::measure::MeasureRequest::for_cache(&cfg, 0),
    )
    .unwrap();
    let state = v["kv_cache"]["recurrent_state_bytes"].as_u64().unwrap();
    assert!(state > 0);
    assert!(
        (state as f64 / 1048576.0 - m.recurrent_state_mib.unwrap()).abs() < 0.006,
        "recurrent state {state} B against llama.cpp's {:?} MiB",
        m.recurrent_state_mib
    );
    assert_eq!(
        v["kv_cache"]["bytes"]["f16"].as_u64().unwrap(),
        m.context_bytes().get(),
        "KV cache + state at 32768 (f16)"
    );
    // The KV cache is on 2 blocks of 8: a quarter of what all 8 would hold.
    let file = layerfit::gguf::open_model(&p).unwrap();
    let shape =
        layerfit::model::Shape::from_metadata(file.metadata(), file.tensor_vocab()).unwrap();
    assert_eq!(shape.layers.iter().filter(|l| l.has_kv).count(), 2);
}

/// A model with one multi-token-prediction block after its `n_trunk` blocks
/// (`nextn_predict_layers` 1): the loader's probe tensor, `blk.N.nextn.eh_proj.weight`, makes
/// every tensor of that block required, and `blk.0.attn_norm.weight` the trunk's (without it
/// the loader takes the file for a prediction head alone); the engine completes the rest.
fn with_nextn_block(arch: &str, n_trunk: u32, hints: &[Hint]) -> std::path::PathBuf {
    build(arch, n_trunk + 1, |w| {
        arch_inputs::prepare(w, arch, hints);
        w.kv(&format!("{arch}.nextn_predict_layers"), WriteValue::U32(1))
            .tensor("blk.0.attn_norm.weight", &[256], GgmlType::F32)
            .tensor(
                &format!("blk.{n_trunk}.nextn.eh_proj.weight"),
                &[2 * 256, 256],
                GgmlType::Q8_0,
            );
    })
}

/// llama.cpp's default load skips every tensor of the prediction block (`TENSOR_SKIP`, no
/// `load_mtp`) and gives it no KV cache (the layer filter `il < n_layer()`), while
/// `llama_model_size` counts its bytes: weights, KV and the offload slot follow that.
fn assert_nextn_block_skipped(path: &Path) {
    let file = layerfit::gguf::open_model(path).unwrap();
    let shape =
        layerfit::model::Shape::from_metadata(file.metadata(), file.tensor_vocab()).unwrap();
    let w = layerfit::memory::model_weights(&shape, file.tensors());
    let last = shape.block_count as usize - 1;
    assert_eq!(shape.nextn_layers, 1);
    let in_block: u64 = file
        .tensors()
        .filter(|t| t.name.starts_with(&format!("blk.{last}.")))
        .map(|t| t.n_bytes().get())
        .sum();
    assert!(in_block > 0, "the prediction block has tensors");
    assert_eq!(w.not_loaded.get(), in_block, "the whole block is skipped");
    assert_eq!(
        w.per_block[last].get(),
        0,
        "no block weights in the -ngl slot"
    );
    assert!(
        !shape.layers[last].has_kv,
        "no KV cache for the prediction block"
    );
    assert_matches_engine(path, &[4096, 32768], &TYPES);
}

#[test]
fn glm4moe_nextn_block_is_not_loaded() {
    // GLM-4.5-Air's layout: a leading dense block, experts after it, one prediction block.
    let p = with_nextn_block("glm4moe", 3, &[Hint::Moe]);
    assert_nextn_block_skipped(&p);
}

#[test]
fn deepseek2_nextn_block_is_not_loaded() {
    let p = with_nextn_block("deepseek2", 3, &[Hint::Mla, Hint::Moe]);
    assert_nextn_block_skipped(&p);
}
