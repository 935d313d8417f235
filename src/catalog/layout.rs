//! The tensors a GGUF conversion of a model has, from its hyperparameters: names and shapes
//! as llama.cpp's loaders create them (`src/models/<arch>.cpp`, `create_tensor` calls).
//! Every layout here is loaded by the bundled llama.cpp in the tests. Architectures whose
//! blocks differ from the llama family's have a module of their own.

mod deepseek2;
mod glm4moe;
mod gpt_oss;
mod qwen35;

use super::Entry;

/// `(name, dims)` in file order: embeddings, blocks in order, then the output layer.
pub fn tensors(e: &Entry) -> Result<Vec<(String, Vec<u64>)>, super::CatalogError> {
    let arch = e.architecture.as_str();
    match arch {
        "gpt-oss" => return Ok(gpt_oss::tensors(e)),
        "deepseek2" => return Ok(deepseek2::tensors(e)),
        "glm4moe" => return Ok(glm4moe::tensors(e)),
        "qwen35" | "qwen35moe" => return qwen35::tensors(e),
        _ => {}
    }
    let n_embd = e.embedding_length;
    let hd = e.head_dim() as u64;
    let q = e.head_count as u64 * hd;
    let kv = e.head_count_kv as u64 * hd;
    let n_ff = e.feed_forward_length;
    let mut v: Vec<(String, Vec<u64>)> = Vec::new();
    let mut push = |name: String, dims: &[u64]| v.push((name, dims.to_vec()));
    push("token_embd.weight".into(), &[n_embd, e.vocab_size]);
    if e.rope_freqs {
        push("rope_freqs.weight".into(), &[hd / 2]);
    }
    let moe = e.expert_count > 1;
    for i in 0..e.block_count {
        let b = |s: &str| format!("blk.{i}.{s}");
        push(b("attn_norm.weight"), &[n_embd]);
        match arch {
            "phi3" => {
                push(b("attn_qkv.weight"), &[n_embd, n_embd + 2 * kv]);
                push(b("attn_output.weight"), &[n_embd, n_embd]);
                push(b("ffn_norm.weight"), &[n_embd]);
                push(b("ffn_up.weight"), &[n_embd, 2 * n_ff]);
                push(b("ffn_down.weight"), &[n_ff, n_embd]);
                continue;
            }
            "llama" | "qwen2" | "qwen3" | "qwen3moe" | "gemma2" | "gemma3" => {}
            other => return Err(super::CatalogError::Architecture(other.to_string())),
        }
        push(b("attn_q.weight"), &[n_embd, q]);
        push(b("attn_k.weight"), &[n_embd, kv]);
        push(b("attn_v.weight"), &[n_embd, kv]);
        if arch == "qwen2" {
            push(b("attn_q.bias"), &[q]);
            push(b("attn_k.bias"), &[kv]);
            push(b("attn_v.bias"), &[kv]);
        }
        if matches!(arch, "qwen3" | "qwen3moe" | "gemma3") {
            push(b("attn_q_norm.weight"), &[hd]);
            push(b("attn_k_norm.weight"), &[hd]);
        }
        push(b("attn_output.weight"), &[q, n_embd]);
        if arch.starts_with("gemma") {
            push(b("post_attention_norm.weight"), &[n_embd]);
        }
        push(b("ffn_norm.weight"), &[n_embd]);
        if moe {
            // Mixtral (llama) sizes experts with feed_forward_length; qwen3moe has its own key.
            let n_ff_exp = e.expert_feed_forward_length.unwrap_or(n_ff);
            let n_exp = e.expert_count as u64;
            push(b("ffn_gate_inp.weight"), &[n_embd, n_exp]);
            push(b("ffn_gate_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
            push(b("ffn_down_exps.weight"), &[n_ff_exp, n_embd, n_exp]);
            push(b("ffn_up_exps.weight"), &[n_embd, n_ff_exp, n_exp]);
        } else {
            push(b("ffn_gate.weight"), &[n_embd, n_ff]);
            push(b("ffn_down.weight"), &[n_ff, n_embd]);
            push(b("ffn_up.weight"), &[n_embd, n_ff]);
        }
        if arch.starts_with("gemma") {
            push(b("post_ffw_norm.weight"), &[n_embd]);
        }
    }
    push("output_norm.weight".into(), &[n_embd]);
    if !e.tied_embeddings {
        push("output.weight".into(), &[n_embd, e.vocab_size]);
    }
    Ok(v)
}
