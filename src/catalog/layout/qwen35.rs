//! Qwen3.5 (`qwen35`, `qwen35moe`): a hybrid of gated delta-net blocks and gated full
//! attention every `full_attention_interval`-th block, as `llama_model_qwen35(moe)::
//! load_arch_tensors` (`src/models/qwen35.cpp`, `qwen35moe.cpp`) creates them. The
//! delta-net projections are stored fused (`attn_qkv`, `attn_gate`), as conversions store
//! them; the attention query carries its output gate (twice the heads' width). The
//! multi-token-prediction block is left out, as conversions without `nextn_predict_layers`
//! leave it out.

use super::super::{CatalogError, Entry};

/// `(name, dims)` in file order.
pub fn tensors(e: &Entry) -> Result<Vec<(String, Vec<u64>)>, CatalogError> {
    let invalid = |what: &str| CatalogError::Invalid {
        entry: e.name.clone(),
        what: what.to_string(),
    };
    let ssm = e
        .ssm
        .as_ref()
        .ok_or_else(|| invalid("a qwen35 entry needs its gated delta-net sizes (ssm:)"))?;
    let interval = u64::from(e.full_attention_interval.unwrap_or(4).max(1));
    let n_embd = e.embedding_length;
    let hd = e.head_dim() as u64;
    let q = e.head_count as u64 * hd;
    let kv = e.head_count_kv as u64 * hd;
    // llama.cpp: head_k_dim = head_v_dim = state_size, key heads = group_count, value heads =
    // time_step_rank.
    let key_dim = ssm.state_size * ssm.group_count;
    let value_dim = ssm.state_size * ssm.time_step_rank;
    let conv_dim = 2 * key_dim + value_dim;
    let moe = e.expert_count > 1;
    let mut v: Vec<(String, Vec<u64>)> = Vec::new();
    let mut push = |name: String, dims: &[u64]| v.push((name, dims.to_vec()));
    push("token_embd.weight".into(), &[n_embd, e.vocab_size]);
    for i in 0..e.block_count {
        let b = |s: &str| format!("blk.{i}.{s}");
        push(b("attn_norm.weight"), &[n_embd]);
        push(b("post_attention_norm.weight"), &[n_embd]);
        if (u64::from(i) + 1).is_multiple_of(interval) {
            push(b("attn_q.weight"), &[n_embd, 2 * q]);
            push(b("attn_k.weight"), &[n_embd, kv]);
            push(b("attn_v.weight"), &[n_embd, kv]);
            push(b("attn_output.weight"), &[q, n_embd]);
            push(b("attn_q_norm.weight"), &[hd]);
            push(b("attn_k_norm.weight"), &[hd]);
        } else {
            push(b("attn_qkv.weight"), &[n_embd, conv_dim]);
            push(b("attn_gate.weight"), &[n_embd, value_dim]);
            push(b("ssm_conv1d.weight"), &[ssm.conv_kernel, conv_dim]);
            push(b("ssm_dt.bias"), &[ssm.time_step_rank]);
            push(b("ssm_a"), &[ssm.time_step_rank]);
            push(b("ssm_beta.weight"), &[n_embd, ssm.time_step_rank]);
            push(b("ssm_alpha.weight"), &[n_embd, ssm.time_step_rank]);
            push(b("ssm_norm.weight"), &[ssm.state_size]);
            push(b("ssm_out.weight"), &[value_dim, n_embd]);
        }
        if moe {
            let n_exp = e.expert_count as u64;
            let n_ff_exp = e
                .expert_feed_forward_length
                .unwrap_or(e.feed_forward_length);
            let n_ff_sh = e.expert_shared_feed_forward_length.unwrap_or(n_ff_exp);
            push(b("ffn_gate_inp.weight"), &[n_embd, n_exp]);
            push(b("ffn_down_exps.weight"), &[n_ff_exp, n_embd, n_exp]);
            push(b("ffn_gate_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
            push(b("ffn_up_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
            push(b("ffn_gate_inp_shexp.weight"), &[n_embd]);
            push(b("ffn_gate_shexp.weight"), &[n_embd, n_ff_sh]);
            push(b("ffn_up_shexp.weight"), &[n_embd, n_ff_sh]);
            push(b("ffn_down_shexp.weight"), &[n_ff_sh, n_embd]);
        } else {
            let n_ff = e.feed_forward_length;
            push(b("ffn_gate.weight"), &[n_embd, n_ff]);
            push(b("ffn_down.weight"), &[n_ff, n_embd]);
            push(b("ffn_up.weight"), &[n_embd, n_ff]);
        }
    }
    push("output_norm.weight".into(), &[n_embd]);
    if !e.tied_embeddings {
        push("output.weight".into(), &[n_embd, e.vocab_size]);
    }
    Ok(v)
}
