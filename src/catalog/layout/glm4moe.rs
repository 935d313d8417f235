//! GLM-4.5 (`glm4moe`): attention with query/key/value biases, a post-attention norm,
//! dense feed-forward in the leading blocks, routed experts with a router bias and shared
//! experts after them, and `nextn_predict_layers` trailing multi-token-prediction blocks, as
//! `llama_model_glm4_moe::load_arch_tensors` (`src/models/glm4-moe.cpp`) creates them and as
//! the published conversions carry them (`block_count` counts the prediction blocks).

use super::super::Entry;

/// `(name, dims)` in file order.
pub fn tensors(e: &Entry) -> Vec<(String, Vec<u64>)> {
    let n_embd = e.embedding_length;
    let hd = e.head_dim() as u64;
    let q = e.head_count as u64 * hd;
    let kv = e.head_count_kv as u64 * hd;
    let n_exp = e.expert_count as u64;
    let n_ff = e.feed_forward_length;
    let n_ff_exp = e
        .expert_feed_forward_length
        .unwrap_or(e.feed_forward_length);
    let n_ff_sh = n_ff_exp * e.expert_shared_count as u64;
    let first_mtp = e.block_count.saturating_sub(e.nextn_predict_layers);
    let mut v: Vec<(String, Vec<u64>)> = Vec::new();
    let mut push = |name: String, dims: &[u64]| v.push((name, dims.to_vec()));
    push("token_embd.weight".into(), &[n_embd, e.vocab_size]);
    for i in 0..e.block_count {
        let b = |s: &str| format!("blk.{i}.{s}");
        push(b("attn_norm.weight"), &[n_embd]);
        push(b("attn_q.weight"), &[n_embd, q]);
        push(b("attn_k.weight"), &[n_embd, kv]);
        push(b("attn_v.weight"), &[n_embd, kv]);
        if e.attention_bias {
            push(b("attn_q.bias"), &[q]);
            push(b("attn_k.bias"), &[kv]);
            push(b("attn_v.bias"), &[kv]);
        }
        push(b("attn_output.weight"), &[q, n_embd]);
        push(b("post_attention_norm.weight"), &[n_embd]);
        if i < e.leading_dense_block_count {
            push(b("ffn_gate.weight"), &[n_embd, n_ff]);
            push(b("ffn_down.weight"), &[n_ff, n_embd]);
            push(b("ffn_up.weight"), &[n_embd, n_ff]);
        } else {
            push(b("ffn_gate_inp.weight"), &[n_embd, n_exp]);
            push(b("exp_probs_b.bias"), &[n_exp]);
            push(b("ffn_gate_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
            push(b("ffn_down_exps.weight"), &[n_ff_exp, n_embd, n_exp]);
            push(b("ffn_up_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
            if n_ff_sh > 0 {
                push(b("ffn_gate_shexp.weight"), &[n_embd, n_ff_sh]);
                push(b("ffn_down_shexp.weight"), &[n_ff_sh, n_embd]);
                push(b("ffn_up_shexp.weight"), &[n_embd, n_ff_sh]);
            }
        }
        if i >= first_mtp {
            push(b("nextn.eh_proj.weight"), &[2 * n_embd, n_embd]);
            push(b("nextn.embed_tokens.weight"), &[n_embd, e.vocab_size]);
            push(b("nextn.enorm.weight"), &[n_embd]);
            push(b("nextn.hnorm.weight"), &[n_embd]);
            push(b("nextn.shared_head_head.weight"), &[n_embd, e.vocab_size]);
            push(b("nextn.shared_head_norm.weight"), &[n_embd]);
        }
    }
    push("output_norm.weight".into(), &[n_embd]);
    if !e.tied_embeddings {
        push("output.weight".into(), &[n_embd, e.vocab_size]);
    }
    v
}
