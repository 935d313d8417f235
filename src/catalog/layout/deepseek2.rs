//! DeepSeek V2/V3/R1 (`deepseek2`): multi-head latent attention stored split the way current
//! conversions store it (`attn_k_b`/`attn_v_b`), dense feed-forward in the leading blocks,
//! routed plus shared experts after them, as `llama_model_deepseek2::load_arch_tensors`
//! (`src/models/deepseek2.cpp`) creates them. The multi-token-prediction block is left out,
//! as conversions without `nextn_predict_layers` leave it out.

use super::super::Entry;

/// `(name, dims)` in file order.
pub fn tensors(e: &Entry) -> Vec<(String, Vec<u64>)> {
    let n_embd = e.embedding_length;
    let n_head = e.head_count as u64;
    let kv_lora = e.kv_lora_rank.unwrap_or(0);
    let rope = e.qk_rope_head_dim.unwrap_or(0) as u64;
    let nope = e.qk_nope_head_dim.unwrap_or(0) as u64;
    let v_head = e.v_head_dim.unwrap_or(0) as u64;
    let n_exp = e.expert_count as u64;
    let n_ff_exp = e
        .expert_feed_forward_length
        .unwrap_or(e.feed_forward_length);
    let n_ff_sh = n_ff_exp * e.expert_shared_count as u64;
    let n_ff = e.feed_forward_length;
    let mut v: Vec<(String, Vec<u64>)> = Vec::new();
    let mut push = |name: String, dims: &[u64]| v.push((name, dims.to_vec()));
    push("token_embd.weight".into(), &[n_embd, e.vocab_size]);
    for i in 0..e.block_count {
        let b = |s: &str| format!("blk.{i}.{s}");
        push(b("attn_norm.weight"), &[n_embd]);
        match e.q_lora_rank {
            Some(q_lora) => {
                push(b("attn_q_a_norm.weight"), &[q_lora]);
                push(b("attn_q_a.weight"), &[n_embd, q_lora]);
                push(b("attn_q_b.weight"), &[q_lora, n_head * (nope + rope)]);
            }
            None => push(b("attn_q.weight"), &[n_embd, n_head * (nope + rope)]),
        }
        push(b("attn_kv_a_norm.weight"), &[kv_lora]);
        push(b("attn_kv_a_mqa.weight"), &[n_embd, kv_lora + rope]);
        push(b("attn_k_b.weight"), &[nope, kv_lora, n_head]);
        push(b("attn_v_b.weight"), &[kv_lora, v_head, n_head]);
        push(b("attn_output.weight"), &[n_head * v_head, n_embd]);
        push(b("ffn_norm.weight"), &[n_embd]);
        if i < e.leading_dense_block_count {
            push(b("ffn_gate.weight"), &[n_embd, n_ff]);
            push(b("ffn_down.weight"), &[n_ff, n_embd]);
            push(b("ffn_up.weight"), &[n_embd, n_ff]);
            continue;
        }
        push(b("ffn_gate_inp.weight"), &[n_embd, n_exp]);
        if e.expert_probs_bias {
            push(b("exp_probs_b.bias"), &[n_exp]);
        }
        push(b("ffn_gate_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
        push(b("ffn_down_exps.weight"), &[n_ff_exp, n_embd, n_exp]);
        push(b("ffn_up_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
        if n_ff_sh > 0 {
            push(b("ffn_gate_shexp.weight"), &[n_embd, n_ff_sh]);
            push(b("ffn_down_shexp.weight"), &[n_ff_sh, n_embd]);
            push(b("ffn_up_shexp.weight"), &[n_embd, n_ff_sh]);
        }
    }
    push("output_norm.weight".into(), &[n_embd]);
    if !e.tied_embeddings {
        push("output.weight".into(), &[n_embd, e.vocab_size]);
    }
    v
}
