//! Outputs sized as llama-server sizes them (issue 34, item 1): llama-server reserves logits
//! for its sequences only (`n_outputs_max = n_parallel`, tools/server/server-context.cpp), and
//! so do layerfit's engine and its plan. The `llama-server` command layerfit emits is run
//! as printed (with llama.cpp's log at level 4), and the compute and output buffers it logs
//! at load are compared with the plan's host compute, which holds both: within 5%.
//!
//! Needs the fixture from `bash tests/build-llama-server.sh` (or `LAYERFIT_LLAMA_SERVER`);
//! without it each test says SKIPPED on stderr (see tests/common/llama_server.rs).
//!
//!   cargo test --release --test llama_server_buffers

mod common;

use common::llama_server::{binary_or_skip, shell_words, LlamaServer};
use serde_json::Value;
use std::path::Path;

const MIB: f64 = 1048576.0;

/// `layerfit plan` for `model` at 32768 tokens on the CPU with an f16 cache: the JSON plan and
/// the emitted llama-server command's words.
fn plan_and_command(model: &Path) -> (Value, Vec<String>) {
    let m = model.to_str().unwrap();
    let base = [
        "plan", "--model", m, "--ctx", "32768", "--no-gpu", "--kv", "f16",
    ];
    let json_args: Vec<&str> = base.iter().copied().chain(["--json"]).collect();
    let (_, out, err) = common::layerfit(env!("CARGO_BIN_EXE_layerfit"), &json_args);
    let plan: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let emit_args: Vec<&str> = base
        .iter()
        .copied()
        .chain(["--emit", "llama-server"])
        .collect();
    let (_, out, err) = common::layerfit(env!("CARGO_BIN_EXE_layerfit"), &emit_args);
    let line = out
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no command in:\n{out}\n{err}"));
    (plan, shell_words(line))
}

/// A `NAME buffer size = X MiB` figure of the CPU from llama.cpp's log.
fn logged_mib(log: &str, what: &str) -> f64 {
    log.lines()
        .filter(|l| l.contains("CPU") && l.contains(what))
        .filter_map(|l| {
            l.rsplit('=')
                .next()?
                .trim()
                .strip_suffix("MiB")?
                .trim()
                .parse()
                .ok()
        })
        .next_back()
        .unwrap_or_else(|| panic!("no CPU '{what}' in llama-server's log:\n{log}"))
}

/// Runs the emitted command and compares its compute + output buffers with the plan.
fn compare(model: &Path, tag: &str) -> (f64, f64) {
    let Some(bin) = binary_or_skip() else {
        return (0.0, 0.0);
    };
    let (plan, words) = plan_and_command(model);
    let at = words.iter().position(|w| w == "llama-server").unwrap();
    let mut args: Vec<String> = words[..at].to_vec();
    args.extend_from_slice(&words[at + 1..]);
    let flag = |f: &str| {
        args.iter()
            .position(|w| w == f)
            .map(|i| args[i + 1].clone())
    };
    assert_eq!(flag("-np").as_deref(), Some("1"), "{args:?}");
    args.extend(["-lv", "4", "-t", "2"].map(String::from));
    let server = LlamaServer::start(&bin, &args, common::tempdir(tag).join("llama-server.log"));
    let log = std::fs::read_to_string(&server.log).unwrap();
    drop(server);
    assert!(log.contains("n_outputs_max         = 1"), "{log}");
    let theirs = logged_mib(&log, "compute buffer size") + logged_mib(&log, "output buffer size");
    let cpu = plan["plan"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["is_gpu"] == false)
        .unwrap_or_else(|| panic!("no CPU row: {plan}"));
    let ours = cpu["compute_bytes"].as_u64().unwrap() as f64 / MIB;
    eprintln!("{tag}: plan {ours:.2} MiB, llama-server {theirs:.2} MiB (compute + output)");
    assert!(
        (ours / theirs - 1.0).abs() < 0.05,
        "{tag}: plan {ours:.2} MiB, llama-server {theirs:.2} MiB"
    );
    (ours, theirs)
}

#[test]
fn gemma3_at_32k_plans_the_compute_llama_server_allocates() {
    // llama.cpp's default (a ubatch of logits over a 262144-token vocabulary) was 551 MiB;
    // llama-server allocates about 51 MiB.
    let (ours, theirs) = compare(&common::gemma3(), "gemma3");
    if theirs > 0.0 {
        assert!(ours < 64.0 && theirs < 64.0, "{ours} {theirs}");
    }
}

#[test]
fn smollm2_at_32k_plans_the_compute_llama_server_allocates() {
    compare(&common::smollm2(), "smollm2");
}
