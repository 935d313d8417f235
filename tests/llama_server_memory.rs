//! The emitted `llama-server` command holds the plan's memory on the real llama-server
//! (issue 32, item 2): it pins `-np`, `--cache-ram 0` and `--ctx-checkpoints 0`, without
//! which llama-server's host-RAM prompt cache (8192 MiB by default) and context checkpoints
//! (32 per slot) grow its resident memory with every new prompt (the audit: SmolLM2 at 32K,
//! 852 MB after load, 1,144 MB after 30 requests).
//!
//! Needs the fixture from `bash tests/build-llama-server.sh` (or `LAYERFIT_LLAMA_SERVER`);
//! without it the test says SKIPPED on stderr (tests/common/llama_server.rs).
//!
//!   cargo test --release --test llama_server_memory

mod common;

use common::llama_server::{binary_or_skip, shell_words, LlamaServer};
use serde_json::{json, Value};

/// The process's resident set (`VmRSS`), in bytes.
fn resident(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn thirty_prompts_later_llama_server_is_still_inside_the_plan() {
    let Some(bin) = binary_or_skip() else { return };
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let layerfit = |emit: &[&str]| {
        let mut args = vec!["plan", "--model", m, "--no-gpu"];
        args.extend_from_slice(emit);
        let (code, out, err) = common::layerfit(env!("CARGO_BIN_EXE_layerfit"), &args);
        assert!(code == 0 || code == 10, "{err}");
        out
    };
    let plan: Value = serde_json::from_str(&layerfit(&["--json"])).unwrap();
    let planned = plan["plan"]["ram"]["total_bytes"].as_u64().unwrap();
    let out = layerfit(&["--emit", "llama-server"]);
    let line = out.lines().find(|l| l.starts_with("llama-server")).unwrap();
    let server = LlamaServer::start(
        &bin,
        &shell_words(line)[1..],
        common::tempdir("llama-server-memory").join("llama-server.log"),
    );
    let loaded = resident(server.pid());
    for i in 0..30 {
        let prompt = format!(
            "Prompt {i}: tell me about the number {} and why it matters",
            i * 7
        );
        let (status, r) = server.post("/completion", &json!({"prompt": prompt, "n_predict": 8}));
        assert_eq!(status, 200, "{r}");
    }
    let after = resident(server.pid());
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    assert!(
        after <= planned,
        "llama-server holds {:.1} MiB after 30 prompts; the plan said {:.1} MiB",
        mib(after),
        mib(planned)
    );
    // No cache that grows with prompts: within 16 MiB of what it held after loading.
    assert!(
        after <= loaded + (16 << 20),
        "resident memory grew from {:.1} to {:.1} MiB over 30 prompts",
        mib(loaded),
        mib(after)
    );
}
