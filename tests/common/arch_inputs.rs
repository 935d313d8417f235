//! What a synthetic model of an architecture needs beyond the keys and tensors llama.cpp's
//! loader asks for: per-layer head counts that make a hybrid's recurrent layers, tensors the
//! loader treats as optional but the graph uses, and (as retries) the hyperparameters of
//! experts, latent attention or fused projections that an architecture's graph asserts on.

use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::{GgufWriter, WriteValue};

/// A set of extra inputs the architecture sweep retries with when the plain model does not
/// load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// Mixture-of-experts hyperparameters (8 experts, 2 used, one shared).
    Moe,
    /// Multi-head latent attention, as DeepSeek-V2/V3 have it.
    Mla,
    /// A fused QKV projection in every block.
    FusedQkv,
}

/// The input sets the sweep tries, in order.
pub const HINT_SETS: &[&[Hint]] = &[
    &[],
    &[Hint::Moe],
    &[Hint::Mla],
    &[Hint::Moe, Hint::Mla],
    &[Hint::FusedQkv],
    &[Hint::Moe, Hint::FusedQkv],
];

impl Hint {
    pub fn name(self) -> &'static str {
        match self {
            Hint::Moe => "moe",
            Hint::Mla => "mla",
            Hint::FusedQkv => "fused-qkv",
        }
    }

    pub fn parse(s: &str) -> Option<Hint> {
        [Hint::Moe, Hint::Mla, Hint::FusedQkv]
            .into_iter()
            .find(|h| h.name() == s)
    }
}

/// 8 blocks; blocks 3 and 7 attend, the others are recurrent (hybrids that mark recurrent
/// layers by zero KV heads).
const HYBRID_KV_HEADS: [i32; 8] = [0, 0, 0, 2, 0, 0, 0, 2];

/// Adds what `arch` needs (see the module comment) and the inputs of `hints`.
pub fn prepare(w: &mut GgufWriter, arch: &str, hints: &[Hint]) {
    let k = |s: &str| format!("{arch}.{s}");
    let hybrid_heads = |w: &mut GgufWriter| {
        w.kv(
            &k("attention.head_count_kv"),
            WriteValue::ArrI32(HYBRID_KV_HEADS.to_vec()),
        );
    };
    match arch {
        "granitehybrid" | "plamo2" => {
            conv_bias(w, &[0, 1, 2, 4, 5, 6]);
            hybrid_heads(w);
        }
        "jamba" | "lfm2" | "lfm2moe" | "kimi-linear" | "bailingmoe3" | "kimi-k3" | "glm5-next" => {
            hybrid_heads(w)
        }
        "mamba2" | "falcon-h1" => conv_bias(w, &[0, 1, 2, 3, 4, 5, 6, 7]),
        "nemotron_h" | "nemotron_h_moe" => {
            // Mamba blocks 0, 2, 4, 6; feed-forward-only blocks 1 and 5; attention 3 and 7.
            conv_bias(w, &[0, 2, 4, 6]);
            hybrid_heads(w);
            w.kv(
                &k("feed_forward_length"),
                WriteValue::ArrI32(vec![0, 768, 0, 0, 0, 768, 0, 0]),
            );
        }
        "qwen3next" | "qwen35" | "qwen35moe" | "qwen4exp" => {
            // Widths as the real models have them: the value heads fill the inner size.
            w.kv(&k("ssm.conv_kernel"), WriteValue::U32(4))
                .kv(&k("ssm.state_size"), WriteValue::U32(32))
                .kv(&k("ssm.group_count"), WriteValue::U32(2))
                .kv(&k("ssm.time_step_rank"), WriteValue::U32(8))
                .kv(&k("ssm.inner_size"), WriteValue::U32(256));
            // The gated delta-net blocks' fused projections: optional to the loader, used by
            // the graph (the loader corrects the shapes).
            for il in [0, 1, 2, 4, 5, 6] {
                for t in ["attn_qkv", "attn_gate"] {
                    w.tensor(&format!("blk.{il}.{t}.weight"), &[256, 256], GgmlType::Q8_0);
                }
            }
        }
        "gemma2" => {
            w.kv(&k("attention.sliding_window"), WriteValue::U32(1024));
        }
        "gemma3" => {
            w.kv(&k("attention.sliding_window"), WriteValue::U32(512))
                .kv(&k("attention.key_length"), WriteValue::U32(128))
                .kv(&k("attention.value_length"), WriteValue::U32(128));
        }
        _ => {}
    }
    for h in hints {
        match h {
            Hint::Moe => {
                w.kv(&k("expert_count"), WriteValue::U32(8))
                    .kv(&k("expert_used_count"), WriteValue::U32(2))
                    .kv(&k("expert_shared_count"), WriteValue::U32(1))
                    .kv(&k("expert_feed_forward_length"), WriteValue::U32(256))
                    .kv(
                        &k("expert_shared_feed_forward_length"),
                        WriteValue::U32(256),
                    );
            }
            Hint::Mla => {
                w.kv(&k("attention.head_count_kv"), WriteValue::U32(1))
                    .kv(&k("attention.key_length"), WriteValue::U32(192))
                    .kv(&k("attention.value_length"), WriteValue::U32(128))
                    .kv(&k("attention.key_length_mla"), WriteValue::U32(128))
                    .kv(&k("attention.value_length_mla"), WriteValue::U32(64))
                    .kv(&k("attention.q_lora_rank"), WriteValue::U32(192))
                    .kv(&k("attention.kv_lora_rank"), WriteValue::U32(128))
                    .kv(&k("rope.dimension_count"), WriteValue::U32(64))
                    .kv(&k("leading_dense_block_count"), WriteValue::U32(1));
            }
            Hint::FusedQkv => {
                for il in 0..8 {
                    w.tensor(
                        &format!("blk.{il}.attn_qkv.weight"),
                        &[256, 384],
                        GgmlType::Q8_0,
                    );
                }
            }
        }
    }
}

/// Mamba-2 layers' convolution bias: optional to the loader, added by the graph.
fn conv_bias(w: &mut GgufWriter, layers: &[u32]) {
    for il in layers {
        w.tensor(&format!("blk.{il}.ssm_conv1d.bias"), &[1], GgmlType::F32);
    }
}
