//! gpt-oss (`general.architecture` = `gpt-oss`): attention with biases and per-head sinks,
//! every block a mixture of experts whose router and experts carry biases, as
//! `llama_model_openai_moe::load_arch_tensors` (`src/models/openai-moe.cpp`) creates them.

use super::super::Entry;

/// `(name, dims)` in file order.
pub fn tensors(e: &Entry) -> Vec<(String, Vec<u64>)> {
    let n_embd = e.embedding_length;
    let hd = e.head_dim() as u64;
    let q = e.head_count as u64 * hd;
    let kv = e.head_count_kv as u64 * hd;
    let n_exp = e.expert_count as u64;
    let n_ff_exp = e
        .expert_feed_forward_length
        .unwrap_or(e.feed_forward_length);
    let mut v: Vec<(String, Vec<u64>)> = Vec::new();
    let mut push = |name: String, dims: &[u64]| v.push((name, dims.to_vec()));
    push("token_embd.weight".into(), &[n_embd, e.vocab_size]);
    for i in 0..e.block_count {
        let b = |s: &str| format!("blk.{i}.{s}");
        push(b("attn_norm.weight"), &[n_embd]);
        push(b("attn_q.weight"), &[n_embd, q]);
        push(b("attn_q.bias"), &[q]);
        push(b("attn_k.weight"), &[n_embd, kv]);
        push(b("attn_k.bias"), &[kv]);
        push(b("attn_v.weight"), &[n_embd, kv]);
        push(b("attn_v.bias"), &[kv]);
        push(b("attn_output.weight"), &[q, n_embd]);
        push(b("attn_output.bias"), &[n_embd]);
        push(b("attn_sinks.weight"), &[e.head_count as u64]);
        push(b("post_attention_norm.weight"), &[n_embd]);
        push(b("ffn_gate_inp.weight"), &[n_embd, n_exp]);
        push(b("ffn_gate_inp.bias"), &[n_exp]);
        push(b("ffn_gate_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
        push(b("ffn_gate_exps.bias"), &[n_ff_exp, n_exp]);
        push(b("ffn_down_exps.weight"), &[n_ff_exp, n_embd, n_exp]);
        push(b("ffn_down_exps.bias"), &[n_embd, n_exp]);
        push(b("ffn_up_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
        push(b("ffn_up_exps.bias"), &[n_ff_exp, n_exp]);
    }
    push("output_norm.weight".into(), &[n_embd]);
    push("output.weight".into(), &[n_embd, e.vocab_size]);
    v
}
