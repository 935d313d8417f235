//! Completing a synthetic model until the bundled llama.cpp loads it: every tensor and every
//! metadata key the loader asks for is added, with the shape or type its error names, so the
//! fixtures follow the engine instead of a hand-written layout.

use layerfit::engine::measure::{measure, MeasureRequest};
use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::{Data, GgufWriter, WriteValue};
use std::path::Path;

/// Completes `w` with every tensor and metadata key llama.cpp requires, asking it through
/// dry-run loads, and writes the model (header + sparse hole) to `path`. Panics when the
/// engine cannot be satisfied.
pub fn complete_with_engine(w: GgufWriter, path: &Path) {
    if let Err(e) = try_complete(w, path) {
        panic!("cannot complete synthetic model {}: {e}", path.display());
    }
}

/// What [`complete_with_engine`] does, returning the engine's last refusal instead of
/// panicking (the architecture sweep records it).
pub fn try_complete(mut w: GgufWriter, path: &Path) -> Result<(), String> {
    let req = MeasureRequest {
        n_ctx: 256,
        ..MeasureRequest::default()
    };
    let mut last = String::new();
    for _ in 0..3000 {
        w.write(path, Data::Sparse).map_err(|e| e.to_string())?;
        let msg = match measure(path, &req) {
            Ok(_) => return Ok(()),
            Err(e) => e.0,
        };
        if msg == last {
            return Err(format!("no progress: {msg}"));
        }
        last.clone_from(&msg);
        if !(add_tensor(&mut w, &msg) || fix_shape(&mut w, &msg) || add_key(&mut w, &msg)) {
            return Err(msg);
        }
    }
    Err(format!("did not converge: {last}"))
}

/// The type a synthetic tensor gets: f32 for vectors and SSM parameters (as converters
/// write them), q8_0 where rows are whole blocks, f16 otherwise.
fn pick_type(name: &str, dims: &[u64]) -> GgmlType {
    if dims.len() == 1
        || dims.iter().skip(1).all(|&d| d == 1)
        || name.contains("ssm_")
        || name.contains("norm")
    {
        GgmlType::F32
    } else if dims[0].is_multiple_of(32) {
        GgmlType::Q8_0
    } else {
        GgmlType::F16
    }
}

fn quoted(msg: &str, after: &str) -> Option<String> {
    let i = msg.find(after)? + after.len();
    let rest = &msg[i..];
    let start = rest.find('\'')? + 1;
    let end = start + rest[start..].find('\'')?;
    Some(rest[start..end].to_string())
}

/// A missing tensor: guess the shape the same tensor has in another block (llama.cpp
/// corrects a wrong guess through [`fix_shape`]).
fn add_tensor(w: &mut GgufWriter, msg: &str) -> bool {
    let Some(name) = quoted(msg, "missing tensor").or_else(|| {
        msg.find("not found")
            .and_then(|_| quoted(msg, "check_tensor_dims: tensor"))
    }) else {
        return false;
    };
    let guess = name
        .split_once('.')
        .and_then(|(_, r)| r.split_once('.'))
        .and_then(|(_, rest)| {
            w.tensor_shape(&format!("blk.0.{rest}"))
                .or_else(|| w.tensor_shape(&format!("blk.1.{rest}")))
        });
    match guess {
        Some((dims, ty)) => w.tensor(&name, &dims, ty),
        None => w.tensor(&name, &[1], GgmlType::F32),
    };
    true
}

/// A tensor of the wrong shape: llama.cpp names the one it expects.
fn fix_shape(w: &mut GgufWriter, msg: &str) -> bool {
    let Some(name) = quoted(msg, "tensor").filter(|_| msg.contains("has wrong shape")) else {
        return false;
    };
    let Some(expected) = msg
        .split("expected")
        .nth(1)
        .and_then(|s| s.split(", got").next())
    else {
        return false;
    };
    let Ok(mut dims) = expected
        .split(',')
        .map(|d| d.trim().parse::<i64>())
        .collect::<Result<Vec<i64>, _>>()
    else {
        return false;
    };
    if dims.iter().any(|&d| d <= 0) {
        // A zero width: an optional hyperparameter the loader defaulted to 0.
        return add_hyperparameters_for(w, &name);
    }
    while dims.len() > 1 && dims.last() == Some(&1) {
        dims.pop();
    }
    let dims: Vec<u64> = dims.into_iter().map(|d| d as u64).collect();
    let ty = pick_type(&name, &dims);
    w.tensor(&name, &dims, ty);
    // Every block usually has the same tensor: guess the same shape for all of them.
    if let Some(rest) = name.strip_prefix("blk.0.") {
        for i in 1..64 {
            let other = format!("blk.{i}.{rest}");
            if w.tensor_names().any(|n| n == other) {
                w.tensor(&other, &dims, ty);
            }
        }
    }
    true
}

/// The optional keys a tensor's width comes from, by the tensor's name, each set once.
fn add_hyperparameters_for(w: &mut GgufWriter, tensor: &str) -> bool {
    let keys: &[&str] = if tensor.contains("_shexp") {
        &[
            "expert_shared_feed_forward_length",
            "expert_shared_count",
            "expert_count",
            "expert_used_count",
        ]
    } else if tensor.contains("_exps")
        || tensor.contains("ffn_gate_inp")
        || tensor.contains("exp_probs")
    {
        &[
            "expert_count",
            "expert_used_count",
            "expert_feed_forward_length",
        ]
    } else if tensor.contains("ssm_") {
        &[
            "ssm.conv_kernel",
            "ssm.inner_size",
            "ssm.state_size",
            "ssm.time_step_rank",
            "ssm.group_count",
        ]
    } else if tensor.contains("attn_q_a") || tensor.contains("attn_q_b") {
        &["attention.q_lora_rank"]
    } else if tensor.contains("attn_kv_a")
        || tensor.contains("attn_kv_b")
        || tensor.contains("attn_k_b")
        || tensor.contains("attn_v_b")
    {
        &["attention.kv_lora_rank"]
    } else {
        &[]
    };
    let arch = match w.get("general.architecture") {
        Some(WriteValue::Str(a)) => a.clone(),
        _ => return false,
    };
    let mut added = false;
    for k in keys {
        let key = format!("{arch}.{k}");
        if w.get(&key).is_none() {
            w.kv(&key, WriteValue::U32(default_u32(&key)));
            added = true;
        }
    }
    added
}

/// A missing metadata key, or one of the wrong type: a small plausible value of the type
/// the loader asks for.
fn add_key(w: &mut GgufWriter, msg: &str) -> bool {
    if msg.contains("zero experts") {
        return add_hyperparameters_for(w, "ffn_gate_inp");
    }
    if let Some(key) = after(msg, "array key not found in model: ") {
        let n = block_count(w);
        w.kv(&key, WriteValue::ArrU32(vec![default_u32(&key); n]));
        return true;
    }
    if let Some(key) = after(msg, "key not found in model: ") {
        w.kv(&key, default_value(&key));
        return true;
    }
    if let Some(key) = after(msg, "expected scalar, found array for key: ") {
        w.kv(&key, default_value(&key));
        return true;
    }
    // "key K has wrong type T but expected type E"
    if let (Some(i), Some(j)) = (msg.find("key "), msg.find(" has wrong type ")) {
        if i < j {
            let key = msg[i + 4..j].trim().to_string();
            let expected = msg[j..]
                .split("expected type ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            let n = w.get(&key).and_then(as_f64).unwrap_or(1.0);
            let v = match expected {
                "f32" | "float32" => WriteValue::F32(n as f32),
                "bool" => WriteValue::Bool(n != 0.0),
                "str" | "string" => WriteValue::Str(String::new()),
                "i32" | "int32" => WriteValue::I32(n as i32),
                "u64" | "uint64" => WriteValue::U64(n as u64),
                "u32" | "uint32" => WriteValue::U32(n as u32),
                _ => return false,
            };
            w.kv(&key, v);
            return true;
        }
    }
    false
}

fn after(msg: &str, prefix: &str) -> Option<String> {
    let i = msg.find(prefix)? + prefix.len();
    let key: String = msg[i..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '|' && *c != ',')
        .collect();
    (!key.is_empty()).then_some(key)
}

fn block_count(w: &GgufWriter) -> usize {
    let arch = match w.get("general.architecture") {
        Some(WriteValue::Str(a)) => a.clone(),
        _ => return 1,
    };
    match w.get(&format!("{arch}.block_count")) {
        Some(WriteValue::U32(n)) => *n as usize,
        _ => 1,
    }
}

fn as_f64(v: &WriteValue) -> Option<f64> {
    match v {
        WriteValue::U32(x) => Some(*x as f64),
        WriteValue::I32(x) => Some(*x as f64),
        WriteValue::U64(x) => Some(*x as f64),
        WriteValue::F32(x) => Some(*x as f64),
        WriteValue::Bool(b) => Some(*b as u8 as f64),
        _ => None,
    }
}

/// Float-valued keys by their name (epsilons, scales, rope bases); the rest are counts.
fn default_value(key: &str) -> WriteValue {
    const FLOATS: [(&str, f32); 14] = [
        ("epsilon", 1e-6),
        ("freq_base", 10000.0),
        ("scale", 1.0),
        ("factor", 1.0),
        ("softcap", 30.0),
        ("multiplier", 1.0),
        ("alpha", 1.0),
        ("beta", 1.0),
        ("temperature", 1.0),
        ("theta", 10000.0),
        ("weights_norm", 1.0),
        ("ratio", 1.0),
        ("clamp", 10.0),
        ("limit", 10.0),
    ];
    let leaf = key.rsplit('.').next().unwrap_or(key);
    match FLOATS.iter().find(|(k, _)| leaf.contains(k)) {
        Some((_, v)) => WriteValue::F32(*v),
        None if leaf == "causal" || leaf.starts_with("use_") || leaf.starts_with("is_") => {
            WriteValue::Bool(true)
        }
        None => WriteValue::U32(default_u32(key)),
    }
}

/// Counts and sizes that divide the synthetic model's widths (256 wide, 8 heads).
fn default_u32(key: &str) -> u32 {
    const COUNTS: [(&str, u32); 32] = [
        ("q_lora_rank", 192),
        ("kv_lora_rank", 128),
        ("expert_used_count", 2),
        ("expert_shared_count", 1),
        ("expert_group_used_count", 1),
        ("expert_group_count", 1),
        ("expert_count", 8),
        ("expert_feed_forward_length", 256),
        ("expert_shared_feed_forward_length", 256),
        ("expert_gating_func", 2),
        ("leading_dense_block_count", 1),
        ("conv_kernel", 4),
        ("inner_size", 512),
        ("state_size", 16),
        ("time_step_rank", 16),
        ("group_count", 1),
        ("head_size", 32),
        ("head_dim", 32),
        ("token_shift_count", 2),
        ("lora_rank", 32),
        ("l_cache", 3),
        ("sliding_window", 128),
        ("dimension_count", 32),
        ("key_length", 32),
        ("value_length", 32),
        ("feed_forward_length", 768),
        ("vocab_size", 32000),
        ("full_attention_interval", 4),
        ("chunk_size", 64),
        ("pooling_type", 0),
        ("nextn_predict_layers", 0),
        ("top_k", 16),
    ];
    let leaf = key.split_once('.').map_or(key, |(_, r)| r);
    COUNTS
        .iter()
        .find(|(k, _)| leaf.ends_with(k))
        .map_or(1, |(_, v)| *v)
}
