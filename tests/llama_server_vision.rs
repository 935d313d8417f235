//! The emitted `llama-server` command with a vision projector (issue 29, item 2), run on
//! llama.cpp's own server: it loads the projector the plan named, allocates for it what the
//! plan held (its loader's "model size" and "compute buffer size" lines), and reads an
//! image sent as a data URL, counting the image's tokens in the prompt.
//!
//! Needs the fixture from `bash tests/build-llama-server.sh` (or `LAYERFIT_LLAMA_SERVER`);
//! without it the test says SKIPPED on stderr (see tests/common/llama_server.rs).
//!
//!   cargo test --release --test llama_server_vision

mod common;

use base64::Engine;
use common::llama_server::{binary_or_skip, shell_words, LlamaServer};
use common::projector::{bmp, Projector};
use serde_json::{json, Value};

/// Sums llama.cpp's "model size: X MiB" and "compute buffer size = X MiB" lines of the clip
/// loader (bytes).
fn loaded(log: &str) -> (u64, u64) {
    let mib = |l: &str, key: &str| -> Option<f64> {
        let rest = &l[l.find(key)? + key.len()..];
        rest.trim_start_matches([' ', ':', '='])
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let (mut w, mut c) = (0.0, 0.0);
    let mut in_clip = false;
    for l in log.lines() {
        // The text model's own compute buffers are logged by llama_context, not by clip.
        if l.contains("clip_") || l.contains("load_hparams") || l.contains("reserve_compute_meta") {
            in_clip = true;
        }
        if !in_clip {
            continue;
        }
        if let Some(m) = mib(l, "model size") {
            w += m;
        } else if l.contains("reserve_compute_meta") {
            if let Some(m) = mib(l, "compute buffer size") {
                c += m;
            }
        }
    }
    ((w * 1048576.0) as u64, (c * 1048576.0) as u64)
}

#[test]
fn llama_server_runs_the_emitted_command_with_its_projector() {
    let Some(server) = binary_or_skip() else {
        return;
    };
    let dir = common::tempdir("llama-server-vision");
    let mm = dir.join("mmproj-gemma3-f16.gguf");
    Projector::for_gemma3_270m().write(&mm);
    let model = common::gemma3();
    let plan_args = |extra: &[&str]| {
        let mut a = vec![
            "plan",
            "--model",
            model.to_str().unwrap(),
            "--ctx",
            "4096",
            "--no-gpu",
            "--mmproj",
            mm.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let (code, out, err) = common::layerfit(env!("CARGO_BIN_EXE_layerfit"), &a);
        assert!(code == 0 || code == 10, "{err}");
        out
    };
    let plan: Value = serde_json::from_str(&plan_args(&["--json"])).unwrap();
    let pj = &plan["plan"]["projector"];
    let out = plan_args(&["--emit", "llama-server"]);
    let line = out
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no command in:\n{out}"));
    let words = shell_words(line);
    assert!(words.iter().any(|w| w == "--mmproj"), "{line}");
    // Verbose, so the projector loader's buffer lines are logged.
    let mut args = words[1..].to_vec();
    args.push("--verbose".into());
    let s = LlamaServer::start(&server, &args, dir.join("llama-server.log"));
    let img = dir.join("red.bmp");
    bmp(&img, 64, 64, [255, 0, 0]);
    let data = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&img).unwrap());
    let ask = |content: Value| {
        let (status, body) = s.post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": content}], "max_tokens": 2, "temperature": 0}),
        );
        assert_eq!(status, 200, "{body}\n{}", s.log_tail());
        body["usage"]["prompt_tokens"].as_u64().unwrap()
    };
    let with_image = ask(json!([
        {"type": "text", "text": "Describe this:"},
        {"type": "image_url", "image_url": {"url": format!("data:image/bmp;base64,{data}")}}
    ]));
    let text_only = ask(json!("Describe this:"));
    assert!(
        with_image >= text_only + pj["image_max_tokens"].as_u64().unwrap(),
        "{with_image} prompt tokens with the image, {text_only} without"
    );
    let log = std::fs::read_to_string(dir.join("llama-server.log")).unwrap();
    let (w, c) = loaded(&log);
    let close = |a: u64, b: u64| (a as f64 - b as f64).abs() <= (0.05 * b as f64).max(10486.0);
    let (pw, pc) = (
        pj["weights_bytes"].as_u64().unwrap(),
        pj["compute_bytes"].as_u64().unwrap(),
    );
    assert!(
        close(w, pw) && close(c, pc),
        "llama-server's projector: {w} B weights, {c} B compute; planned {pw} and {pc}"
    );
}
