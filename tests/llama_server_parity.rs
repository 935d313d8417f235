//! Parity with llama.cpp's own server (issue 34, item 3): the `llama-server` command layerfit
//! emits holds the context the plan promised. llama-server caps every slot at the model's
//! training context (tools/server/server-context.cpp, `n_ctx_slot`), so SmolLM2 (trained on
//! 8192 tokens) planned at 32768 needs the emitted command to lift the cap; a prompt longer
//! than the training context but inside the plan must then be accepted.
//!
//! Needs the fixture from `bash tests/build-llama-server.sh` (or `LAYERFIT_LLAMA_SERVER`);
//! without it each test says SKIPPED on stderr (see tests/common/llama_server.rs).
//!
//!   cargo test --release --test llama_server_parity

mod common;

use common::llama_server::{binary_or_skip, shell_words, LlamaServer};
use serde_json::{json, Value};

/// The plan's context per sequence, four times SmolLM2's training context.
const PLANNED: u64 = 32768;
const TRAINED: u64 = 8192;
/// The prompt: past the training context, well inside the plan.
const PROMPT_TOKENS: usize = 8400;

/// `layerfit plan --emit llama-server` for SmolLM2 at `ctx` tokens on the CPU: exit code,
/// stdout, stderr.
fn emit(ctx: u64) -> (i32, String, String) {
    let m = common::smollm2();
    let ctx = ctx.to_string();
    let args = [
        "plan",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        &ctx,
        "--no-gpu",
        "--emit",
        "llama-server",
    ];
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), &args)
}

/// The emitted command at the planned context, as words (warning lines dropped), checked to
/// be what the plan sized.
fn emitted_command() -> Vec<String> {
    let ctx = PLANNED.to_string();
    let (code, out, err) = emit(PLANNED);
    // Degraded: 32768 is beyond the 8192 tokens SmolLM2 was trained for.
    assert_eq!(code, 10, "{err}\n{out}");
    let line = out
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no command in:\n{out}"));
    let words = shell_words(line);
    let flag = |f: &str| {
        let i = words.iter().position(|w| w == f);
        i.map(|i| words[i + 1].as_str())
    };
    assert_eq!(flag("-c"), Some(ctx.as_str()), "{line}");
    assert_eq!(flag("-np"), Some("1"), "{line}");
    words
}

/// A prompt of about `PROMPT_TOKENS` tokens by the server's own tokenizer.
fn long_prompt(server: &LlamaServer) -> String {
    let sentence = "The quick brown fox jumps over the lazy dog near the riverbank. ";
    let count = |text: &str| -> usize {
        let (status, v) = server.post("/tokenize", &json!({ "content": text }));
        assert_eq!(status, 200, "{v}");
        v["tokens"].as_array().unwrap().len()
    };
    let per = count(&sentence.repeat(100)) as f64 / 100.0;
    let text = sentence.repeat((PROMPT_TOKENS as f64 / per) as usize);
    let n = count(&text) as u64;
    assert!(n > TRAINED + 100 && n < PLANNED / 2, "{n} tokens");
    text
}

/// Starts the fixture with `words` (the emitted command, its program replaced).
fn start(bin: &std::path::Path, words: &[String], tag: &str) -> LlamaServer {
    let program = words
        .iter()
        .position(|w| w == "llama-server")
        .expect("the command runs llama-server");
    let mut args: Vec<String> = words[..program].to_vec();
    args.extend_from_slice(&words[program + 1..]);
    LlamaServer::start(bin, &args, common::tempdir(tag).join("llama-server.log"))
}

/// The slot context llama-server reports (`/props`).
fn slot_context(server: &LlamaServer) -> u64 {
    let (status, props) = server.get("/props");
    assert_eq!(status, 200, "{props}");
    props["default_generation_settings"]["n_ctx"]
        .as_u64()
        .unwrap_or_else(|| panic!("no n_ctx in /props: {props}"))
}

fn complete(server: &LlamaServer, prompt: &str) -> (u16, Value) {
    server.post(
        "/v1/completions",
        &json!({ "prompt": prompt, "max_tokens": 4, "temperature": 0 }),
    )
}

#[test]
fn the_emitted_command_holds_the_planned_context_past_the_training_context() {
    let Some(bin) = binary_or_skip() else {
        return;
    };
    let words = emitted_command();
    let server = start(&bin, &words, "parity-lifted");
    assert_eq!(
        slot_context(&server),
        PLANNED,
        "the slot holds the plan's context:\n{}",
        server.log_tail()
    );
    let prompt = long_prompt(&server);
    let (status, v) = complete(&server, &prompt);
    assert_eq!(
        status,
        200,
        "a prompt past the training context, inside the plan, is accepted: {v}\n{}",
        server.log_tail()
    );
    let prompt_tokens = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        prompt_tokens > TRAINED && prompt_tokens <= PLANNED,
        "prompt tokens counted: {prompt_tokens}: {v}"
    );
    assert!(
        v["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
        "{v}"
    );
}

/// The control: the same command without what layerfit adds to lift the cap is refused at
/// the training context, so the test above checks the emitter, not a server that never caps.
#[test]
fn without_the_lift_llama_server_caps_the_slot_at_the_training_context() {
    let Some(bin) = binary_or_skip() else {
        return;
    };
    let words = emitted_command();
    let mut plain = Vec::new();
    let mut it = words.iter();
    let mut lifted = 0;
    while let Some(w) = it.next() {
        if w == "--override-kv" || w == "--yarn-orig-ctx" {
            it.next();
            lifted += 1;
        } else {
            plain.push(w.clone());
        }
    }
    assert!(lifted > 0, "the emitted command lifts the cap: {words:?}");
    let server = start(&bin, &plain, "parity-capped");
    assert_eq!(slot_context(&server), TRAINED, "{}", server.log_tail());
    let prompt = long_prompt(&server);
    let (status, v) = complete(&server, &prompt);
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["type"], "exceed_context_size_error", "{v}");
}

/// Without the fixture too: past the training context the emitted command carries what lifts
/// the cap, and it still reads back to the plan's settings.
#[test]
fn the_emitted_command_lifts_the_cap_and_reads_back() {
    let words = emitted_command();
    let tail: Vec<&str> = words
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "--override-kv",
            "llama.context_length=int:32768",
            "--yarn-orig-ctx",
            "8192"
        ],
        "{words:?}"
    );
    let s = layerfit::emit::RunSettings::from_llama_args(&words).unwrap();
    assert_eq!((s.context, s.parallel), (PLANNED, 1));
    // Within the training context nothing is added.
    let (_, out, err) = emit(TRAINED);
    assert!(
        out.contains(" -c 8192 ") && !out.contains("--override-kv"),
        "{out}{err}"
    );
}
