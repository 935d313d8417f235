//! `--draft MODEL`: the draft model for speculative decoding, planned beside the model
//! (its memory out of the model's budgets), checked against what llama.cpp allocates for it,
//! carried by the emitted llama.cpp command, and decoding the same greedy text as without it.

mod common;

use serde_json::Value;

fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

fn json(args: &[&str]) -> Value {
    let (code, out, err) = layerfit(args);
    assert!(code == 0 || code == 10, "exit {code}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn bytes(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("not a byte count: {v}"))
}

fn budget(plan: &Value, device: &str) -> u64 {
    let d = plan["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == device)
        .unwrap_or_else(|| panic!("no {device} in {plan}"));
    bytes(&d["budget_bytes"])
}

#[test]
fn the_draft_is_planned_beside_the_model_and_out_of_its_budgets() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    // A described machine with a GPU: the draft goes on the GPU, and the model's GPU and RAM
    // budgets are what it leaves.
    let machine = [
        "--gpu", "RTX 4060", "--ram", "16G", "--ctx", "32768", "--json",
    ];
    let alone = json(&[&["plan", "--model", m][..], &machine[..]].concat());
    let with = json(&[&["plan", "--model", m, "--draft", m][..], &machine[..]].concat());
    common::assert_schema("plan", &with);
    let (a, w) = (&alone["plan"], &with["plan"]);
    assert!(a.get("draft").is_none(), "no draft without --draft: {a}");
    let d = &w["draft"];
    assert_eq!(d["placement"], "gpu", "{d}");
    assert_eq!(d["kv_type"], "f16", "llama.cpp's default -ctkd: {d}");
    assert_eq!(d["draft_max"], 3, "llama.cpp's default n_max: {d}");
    assert_eq!(d["context"], 32768, "the model's context: {d}");
    assert_eq!(d["n_gpu_layers"], 31, "every block and the output: {d}");
    let on_gpu: u64 = d["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["is_gpu"] == true)
        .map(|x| bytes(&x["total_bytes"]))
        .sum();
    assert!(on_gpu > 0, "{d}");
    assert_eq!(
        budget(w, "RTX 4060"),
        budget(a, "RTX 4060") - on_gpu,
        "the draft's GPU bytes leave the model's GPU budget"
    );
    assert_eq!(
        budget(w, "CPU"),
        budget(a, "CPU") - bytes(&d["ram"]["total_bytes"]),
        "the draft's host bytes leave the model's RAM budget"
    );
    // The parts add up to the whole.
    let parts = bytes(&d["weights_bytes"]) + bytes(&d["kv_bytes"]) + bytes(&d["compute_bytes"]);
    assert_eq!(parts, bytes(&d["total_bytes"]), "{d}");
    // A speed answer: what the draft should give at each acceptance rate, rising with it.
    let at = d["speed"]["at_acceptance"].as_array().unwrap();
    assert_eq!(at.len(), 3, "{d}");
    let rates: Vec<f64> = at
        .iter()
        .map(|p| p["tokens_per_s"].as_f64().unwrap())
        .collect();
    assert!(rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");
}

#[test]
fn a_draft_that_does_not_fit_makes_the_plan_incompatible_and_says_why() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    // 1 GiB without a GPU: the model alone fits at 32K with a q4_0 cache, but an f16 draft
    // cache of 720 MiB beside it does not.
    let args = ["plan", "--model", m, "--no-gpu", "--ram", "1G", "--json"];
    let alone = json(&args);
    assert_ne!(alone["plan"]["verdict"], "incompatible", "{alone}");
    let (code, out, err) = layerfit(&[&args[..], &["--draft", m][..]].concat());
    assert_eq!(code, 20, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["plan"]["verdict"], "incompatible");
    let why = doc["plan"]["missing"].as_str().unwrap();
    assert!(why.contains("draft"), "{why}");
}

#[test]
fn a_draft_with_another_vocabulary_is_refused() {
    let (g, s) = (common::gemma3(), common::smollm2());
    let (code, _, err) = layerfit(&[
        "plan",
        "--model",
        g.to_str().unwrap(),
        "--draft",
        s.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--draft") && err.contains("tokenizer"),
        "one line naming the draft and why: {err}"
    );
    assert_eq!(
        err.trim()
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn the_llama_server_command_carries_the_draft_and_reads_back() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let (code, out, err) = layerfit(&[
        "plan",
        "--model",
        m,
        "--draft",
        m,
        "--draft-kv",
        "q8_0",
        "--ctx",
        "4096",
        "--emit",
        "llama-server",
    ]);
    assert!(code == 0 || code == 10, "{err}");
    let line = out.lines().find(|l| l.starts_with("llama-server")).unwrap();
    let args: Vec<String> = line.split_whitespace().map(String::from).collect();
    let after = |flag: &str| {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("no {flag}: {line}"));
        args[i + 1].clone()
    };
    assert_eq!(after("-md"), m);
    assert_eq!(after("--spec-type"), "draft-simple");
    assert_eq!(after("-ctkd"), "q8_0");
    assert_eq!(after("-ctvd"), "q8_0");
    assert_eq!(after("--spec-draft-n-max"), "3");
    // No GPU here: the draft's GPUs are hidden, as planned.
    assert_eq!(after("-devd"), "none");
    let back = layerfit::emit::RunSettings::from_llama_args(&args).unwrap();
    let d = back.draft.expect("the draft reads back");
    assert_eq!(d.model.to_str().unwrap(), m);
    assert_eq!(d.cache_type, "q8_0");
    assert!(d.gpu_unused);
}

#[test]
fn run_with_a_draft_gives_the_same_greedy_text_and_the_draft_holds_its_plan() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let common_args = [
        "run",
        "--model",
        m,
        "--ctx",
        "4096",
        "--temp",
        "0",
        "--max-tokens",
        "48",
        "--accept-degraded",
        "--prompt",
        "Name three colours of the rainbow.",
        "--json",
    ];
    let plain = json(&common_args);
    let drafted = json(&[&common_args[..], &["--draft", m][..]].concat());
    common::assert_schema("run", &drafted);
    assert_eq!(
        plain["answer"], drafted["answer"],
        "speculative decoding keeps the model's greedy text"
    );
    assert!(plain["draft"].is_null(), "{plain}");
    let stats = &drafted["stats"];
    let (n, ok) = (
        bytes(&stats["draft_tokens"]),
        bytes(&stats["draft_accepted"]),
    );
    assert!(n > 0 && ok <= n, "{stats}");
    let d = &drafted["draft"];
    let acceptance = d["acceptance"].as_f64().unwrap();
    assert!((acceptance - ok as f64 / n as f64).abs() < 1e-9, "{d}");
    // The model drafting for itself: most drafted tokens are its own choice.
    assert!(acceptance > 0.5, "{d}");
    assert!(
        d["expected_decode_tokens_per_s"].as_f64().unwrap() > 0.0,
        "{d}"
    );
    // The draft's buffers as planned: weights and KV exact, compute within 5%.
    let checks = d["self_check"].as_array().unwrap();
    assert_eq!(checks.len(), 3, "{checks:?}");
    for c in checks {
        assert_eq!(c["within_5_percent"], true, "{c}");
        if c["what"] != "compute" {
            assert_eq!(c["planned"], c["allocated"], "{c}");
        }
    }
}
