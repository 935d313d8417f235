//! `layerfit inspect --json`: the public JSON contract, parsed (never grepped), on real models,
//! partial downloads, split sets and GGUF v2 files.

mod common;

use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::{Data, WriteValue};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::Command;

fn inspect_json(args: &[&str]) -> Value {
    let out = common::isolate(&mut Command::new(env!("CARGO_BIN_EXE_layerfit")))
        .arg("inspect")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

fn per_block_bytes(d: &Value) -> Vec<u64> {
    d["weights"]["per_block_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(u)
        .collect()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn gemma3_json_contract() {
    let p = common::gemma3();
    let d = inspect_json(&[p.to_str().unwrap()]);
    assert_eq!(d["model"]["architecture"], "gemma3");
    assert_eq!(u(&d["model"]["block_count"]), 18);
    assert_eq!(u(&d["model"]["context_length"]), 32768);
    assert_eq!(d["model"]["file_complete"], true);
    assert_eq!(u(&d["model"]["sliding_window"]["window"]), 512);
    let per_block = per_block_bytes(&d);
    assert_eq!(per_block.len(), 18);
    let total = u(&d["weights"]["total_bytes"]);
    assert_eq!(total, 246_587_904, "llama_model_size of this file");
    assert_eq!(
        per_block.iter().sum::<u64>() + u(&d["weights"]["outside_blocks_bytes"]),
        total
    );
    assert_eq!(u(&d["kv_cache"]["context"]), 32768);
    let bytes = d["kv_cache"]["bytes"].as_object().unwrap();
    for t in [
        "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
    ] {
        assert!(bytes.contains_key(t), "kv_cache.bytes.{t}");
    }
    // Measured from llama.cpp in tests/real_models.rs; pinned here as the contract's values.
    assert_eq!(u(&bytes["f16"]), 116_391_936);
    assert_eq!(u(&bytes["q4_0"]), 32_735_232);
    // One output per sequence (llama-server's n_outputs_max): the logits are one row of the
    // 262144-token vocabulary, not a 512-token ubatch's 512 MiB.
    assert_eq!(u(&d["compute"]["logits"]), 262_144 * 4);
    assert!(
        u(&d["compute"]["bytes"]) < 64 << 20,
        "compute {} B",
        u(&d["compute"]["bytes"])
    );
}

#[test]
fn context_beyond_training_is_kept_and_flagged() {
    let p = common::smollm2();
    let d = inspect_json(&[p.to_str().unwrap(), "--ctx", "40k"]);
    assert_eq!(u(&d["kv_cache"]["context"]), 40960);
    assert_eq!(u(&d["model"]["context_length"]), 8192);
    let notes: Vec<&str> = d["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("beyond the 8192 tokens")),
        "{notes:?}"
    );
    // 30 blocks x 3 KV heads x 64 x 2 (K,V) x 2 bytes x 40960 cells.
    assert_eq!(
        u(&d["kv_cache"]["bytes"]["f16"]),
        30 * 3 * 64 * 2 * 2 * 40960
    );
}

#[test]
fn partial_download_is_inspectable_and_flagged() {
    let src = common::smollm2();
    let dst = common::tempdir("partial").join("SmolLM2-partial.gguf");
    let keep = 20 << 20;
    let mut f = std::fs::File::open(&src).unwrap();
    let mut buf = vec![0; keep];
    f.read_exact(&mut buf).unwrap();
    std::fs::File::create(&dst)
        .unwrap()
        .write_all(&buf)
        .unwrap();
    let full = std::fs::metadata(&src).unwrap().len();
    let d = inspect_json(&[dst.to_str().unwrap()]);
    assert_eq!(d["model"]["file_complete"], false);
    assert_eq!(u(&d["model"]["missing_bytes"]), full - keep as u64);
    let whole = inspect_json(&[src.to_str().unwrap()]);
    assert_eq!(d["weights"], whole["weights"]);
    assert_eq!(d["kv_cache"], whole["kv_cache"]);
}

#[test]
fn split_set_sums_every_shard() {
    let shards = common::write_split_set(&common::tempdir("split"), "tiny");
    let d = inspect_json(&[shards[1].to_str().unwrap()]);
    assert_eq!(u(&d["model"]["shards"]), 3);
    let per_block = per_block_bytes(&d);
    assert_eq!(per_block, vec![64 * 68; 3]);
}

#[test]
fn gguf_v2_is_read() {
    let mut w = common::base_writer("llama", 2, 64, 64);
    w.version = 2;
    w.kv("llama.attention.head_count", WriteValue::U32(4));
    w.tensor("blk.0.attn_q.weight", &[64, 64], GgmlType::Q4_0);
    let p = common::tempdir("v2").join("v2.gguf");
    w.write(&p, Data::Sparse).unwrap();
    let d = inspect_json(&[p.to_str().unwrap(), "--ctx", "1000"]);
    assert_eq!(u(&d["model"]["gguf_version"]), 2);
    assert_eq!(u(&d["kv_cache"]["cells"]), 1024);
    assert_eq!(u(&d["weights"]["per_block_bytes"][0]), 64 * 36);
}

#[test]
fn human_table_shows_the_headline_figures() {
    let p = common::gemma3();
    let out = common::isolate(&mut Command::new(env!("CARGO_BIN_EXE_layerfit")))
        .args(["inspect", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gemma3") && text.contains("111.00 MiB") && text.contains("31.22 MiB"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes when not on a terminal"
    );
}

/// Sliding-window cells are shown for a model with sliding-window layers (Gemma 3) and not
/// for one without (SmolLM2), where they would be the full context under a wrong name.
#[test]
fn sliding_window_cells_only_where_the_model_has_them() {
    let cells = |p: std::path::PathBuf| {
        let out = common::isolate(&mut Command::new(env!("CARGO_BIN_EXE_layerfit")))
            .args(["inspect", p.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("cells:"))
            .unwrap_or_else(|| panic!("no cells line:\n{text}"))
            .to_string()
    };
    let smol = cells(common::smollm2());
    assert!(smol.starts_with("cells: 32768 full-attention;"), "{smol}");
    assert!(!smol.contains("sliding"), "{smol}");
    let gemma = cells(common::gemma3());
    assert!(
        gemma.starts_with("cells: 32768 full-attention, 1024 sliding-window;"),
        "{gemma}"
    );
}

/// `inspect` takes the names `plan` takes: a catalog name with variants inspects the one
/// downloaded (and says so), a catalog variant not downloaded is inspected from the catalog
/// and says where `pull` puts it, and both agree with `plan` on the weights.
#[test]
fn inspect_takes_the_names_plan_takes() {
    let d = inspect_json(&["smollm2:135m"]);
    assert_eq!(d["source"]["name"], "smollm2:135m-q4_1", "{d}");
    assert_eq!(
        d["model"]["path"],
        common::smollm2().display().to_string(),
        "{d}"
    );
    let said = |d: &Value, what: &str| {
        d["notes"]
            .as_array()
            .is_some_and(|ns| ns.iter().any(|n| n.as_str().unwrap().contains(what)))
    };
    assert!(
        said(&d, "inspected smollm2:135m-q4_1, the one downloaded"),
        "{d}"
    );

    let d = inspect_json(&["qwen2.5-coder:7b-q4_k_m"]);
    assert_eq!(d["source"]["name"], "qwen2.5-coder:7b-q4_k_m", "{d}");
    assert!(d["source"]["local_path"].is_null(), "{d}");
    assert!(said(&d, "layerfit pull qwen2.5-coder:7b-q4_k_m"), "{d}");
    let out = common::isolate(&mut Command::new(env!("CARGO_BIN_EXE_layerfit")))
        .args([
            "plan",
            "--model",
            "qwen2.5-coder:7b-q4_k_m",
            "--ram",
            "64G",
            "--no-gpu",
            "--json",
        ])
        .output()
        .unwrap();
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned: u64 = plan["plan"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["weights_bytes"].as_u64().unwrap())
        .sum();
    let total = d["weights"]["total_bytes"].as_u64().unwrap();
    assert_eq!(planned, total, "plan and inspect weigh the same model");
}
