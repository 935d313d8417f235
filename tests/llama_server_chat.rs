//! Parity with llama.cpp's own server on chat formatting and drafting (issue 34, item 2;
//! issue 29, item 3): `layerfit serve` renders a conversation through the model's own
//! (Jinja) template exactly as llama-server does (`/apply-template` on both, byte for byte),
//! and the `llama-server` command layerfit emits with `--draft` decodes speculatively there.
//!
//! Needs the fixture from `bash tests/build-llama-server.sh` (or `LAYERFIT_LLAMA_SERVER`);
//! without it each test says SKIPPED on stderr (tests/common/llama_server.rs).
//!
//!   cargo test --release --test llama_server_chat

mod common;

use common::llama_server::{binary_or_skip, shell_words, LlamaServer};
use serde_json::json;

#[test]
fn conversations_are_formatted_as_llama_server_formats_them() {
    let Some(bin) = binary_or_skip() else { return };
    let m = common::smollm2();
    let m = m.to_str().unwrap().to_string();
    let dir = common::tempdir("chat-template");
    let theirs = LlamaServer::start(
        &bin,
        &["-m", &m, "-c", "2048", "-np", "1"].map(String::from),
        dir.join("llama-server.log"),
    );
    let ours = LlamaServer::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_layerfit")),
        &[
            "serve",
            "--model",
            &m,
            "--ctx",
            "2048",
            "--accept-degraded",
            "--dev",
            "none",
        ]
        .map(String::from),
        dir.join("layerfit.log"),
    );
    let conversations = [
        // SmolLM2's template adds its own system message when none is given (the legacy
        // C API dropped it).
        json!([{"role": "user", "content": "What is the capital of France?"}]),
        json!([
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "Capital of Italy?"},
        ]),
        json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Écris « bonjour » en grec: ✓"},
        ]),
    ];
    for messages in conversations {
        let body = json!({ "messages": messages });
        let (s1, a) = theirs.post("/apply-template", &body);
        let (s2, b) = ours.post("/apply-template", &body);
        assert_eq!((s1, s2), (200, 200), "{a} {b}");
        assert_eq!(
            a["prompt"], b["prompt"],
            "llama-server and layerfit format {messages} alike"
        );
        assert!(a["prompt"]
            .as_str()
            .unwrap()
            .contains("<|im_start|>assistant\n"));
    }
}

#[test]
fn the_emitted_command_with_a_draft_decodes_speculatively_on_llama_server() {
    let Some(bin) = binary_or_skip() else { return };
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let (code, out, err) = common::layerfit(
        env!("CARGO_BIN_EXE_layerfit"),
        &[
            "plan",
            "--model",
            m,
            "--draft",
            m,
            "--ctx",
            "4096",
            "--no-gpu",
            "--emit",
            "llama-server",
        ],
    );
    assert!(code == 0 || code == 10, "{err}");
    let line = out.lines().find(|l| l.starts_with("llama-server")).unwrap();
    let words = shell_words(line);
    let server = LlamaServer::start(
        &bin,
        &words[1..],
        common::tempdir("draft-llama-server").join("llama-server.log"),
    );
    let (status, r) = server.post(
        "/completion",
        &json!({"prompt": "The capital of France is", "n_predict": 16, "temperature": 0}),
    );
    assert_eq!(status, 200, "{r}");
    let t = &r["timings"];
    let (drafted, kept) = (t["draft_n"].as_u64(), t["draft_n_accepted"].as_u64());
    assert!(
        drafted.is_some_and(|n| n > 0) && kept.is_some_and(|k| k > 0),
        "llama-server drafted with the emitted draft: {t}\n{}",
        server.log_tail()
    );
}
