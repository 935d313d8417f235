//! `layerfit serve` on the real SmolLM2 model (and the base Gemma 3 270M), driven by clients
//! nobody here wrote: the
//! official `openai` Python client (tests/serve_client.py; `LAYERFIT_TEST_PYTHON` names a
//! Python that has it, tests/run.sh prepares one) and plain HTTP for what a client library
//! hides (bad JSON, a huge body, a dropped stream, SIGTERM).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
    /// What the server logged on stderr so far.
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_model(&common::smollm2(), "4", extra)
    }

    fn start_model(model: &std::path::Path, parallel: &str, extra: &[&str]) -> Server {
        let mut c = Command::new(env!("CARGO_BIN_EXE_layerfit"));
        common::isolate(&mut c);
        let child = c
            .args([
                "serve",
                "--model",
                model.to_str().unwrap(),
                "--ctx",
                "2048",
                "--port",
                "0",
            ])
            .args([
                "--parallel",
                parallel,
                "--threads",
                "2",
                "--accept-degraded",
                "--dev",
                "none",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            addr: String::new(),
            log: Default::default(),
        };
        let mut out = BufReader::new(server.child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                server
                    .child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("serve ended before listening: {err}");
            }
            if let Some(rest) = line.split(" at http://").nth(1) {
                let addr = rest.split("/v1").next().unwrap().to_string();
                // Keep draining stdout so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in out.lines() {});
                server.addr = addr;
                let (log, err) = (server.log.clone(), server.child.stderr.take().unwrap());
                std::thread::spawn(move || {
                    for l in BufReader::new(err).lines().map_while(Result::ok) {
                        log.lock().unwrap().push_str(&(l + "\n"));
                    }
                });
                return server;
            }
        }
    }

    /// One request through curl (a client nobody here wrote); (status, body).
    fn http(&self, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-X", method, "-o", "-", "-w", "\n%{http_code}"])
            .args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ])
            .arg(format!("http://{}{path}", self.addr))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some(k) = key {
            c.args(["-H", &format!("Authorization: Bearer {k}")]);
        }
        let mut child = c.spawn().expect("curl is needed for this test");
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, m) = self.http("GET", "/metrics", Some(KEY), b"");
        m.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name} "))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("{name} not in {m}"))
    }

    /// SIGTERM: the server ends cleanly (exit 0).
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet (no reuse).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A failing test must not leave a server behind.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEY: &str = "test-key-5150";

/// tests/serve_client.py against a server: the figures it prints.
fn openai_client(server: &Server, mode: &[&str]) -> serde_json::Value {
    let python = std::env::var("LAYERFIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/serve_client.py");
    let out = Command::new(&python)
        .args([script, &format!("http://{}/v1", server.addr), KEY])
        .args(mode)
        .output()
        .unwrap_or_else(|e| {
            panic!("{python}: {e} (tests/run.sh prepares a Python with the openai package)")
        });
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("No module named 'openai'"),
        "{python} has no openai package: run tests/run.sh, or set LAYERFIT_TEST_PYTHON"
    );
    assert!(
        out.status.success(),
        "{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_openai_client_gets_answers_streams_and_errors_and_four_clients_are_independent() {
    let server = Server::start(&["--api-key", KEY]);
    let figures = openai_client(&server, &[]);
    assert!(
        figures["answer"].as_str().unwrap().contains("Paris"),
        "{figures}"
    );
    assert!(server.metric("layerfit_requests_total") >= 12.0);
    let log = server.log.clone();
    assert!(server.stop().success());
    // The self-check of `run`, after loading the four sequences.
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("self-check: llama.cpp allocated") && log.contains("every figure within 5%"),
        "{log}"
    );
    assert!(!log.contains(KEY), "the key was logged: {log}");
    assert!(!log.contains("base model"), "{log}");
}

const BASE_LINE: &str = "base model: it continues text, it does not chat";

/// A request's JSON body through curl, parsed.
fn post(server: &Server, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, b) = server.http("POST", path, Some(KEY), body.to_string().as_bytes());
    assert_eq!(status, 200, "{b}");
    serde_json::from_str(&b).unwrap()
}

#[test]
fn a_base_model_s_chat_messages_are_completed_as_plain_text_unless_chat_is_forced() {
    let gemma = common::gemma3();
    let server = Server::start_model(&gemma, "2", &["--api-key", KEY]);
    let figures = openai_client(&server, &["base"]);
    assert_eq!(figures["meta"]["base_model"], true, "{figures}");
    assert_eq!(figures["chat"], figures["completion"], "{figures}");
    let raw_tokens = figures["prompt_tokens"].as_u64().unwrap();
    let log = server.log.clone();
    assert!(server.stop().success());
    let log = log.lock().unwrap().clone();
    assert_eq!(log.matches(BASE_LINE).count(), 1, "{log}");
    assert!(log.contains("`--chat` forces a chat template"), "{log}");

    // `serve --chat`: the same messages go through llama.cpp's built-in Gemma template.
    let server = Server::start_model(&gemma, "1", &["--api-key", KEY, "--chat"]);
    let (status, models) = server.http("GET", "/v1/models", Some(KEY), b"");
    assert_eq!(status, 200, "{models}");
    let models: serde_json::Value = serde_json::from_str(&models).unwrap();
    let meta = &models["data"][0]["meta"];
    assert_eq!(meta["base_model"], true, "{models}");
    assert_eq!(meta["chat_prompt_format"], "chat_template", "{models}");
    let r = post(
        &server,
        "/v1/chat/completions",
        serde_json::json!({
            "messages": [
                {"role": "system", "content": "Facts about Europe."},
                {"role": "user", "content": "The capital of France is"},
            ],
            "max_tokens": 4,
            "temperature": 0,
        }),
    );
    assert_eq!(r["object"], "chat.completion", "{r}");
    assert_eq!(r["layerfit"]["prompt_format"], "chat_template", "{r}");
    assert_eq!(r["layerfit"]["base_model"], true, "{r}");
    assert!(
        r["usage"]["prompt_tokens"].as_u64().unwrap() > raw_tokens + 4,
        "{r} against {raw_tokens} plain-text tokens"
    );
    let log = server.log.clone();
    assert!(server.stop().success());
    let log = log.lock().unwrap().clone();
    assert!(log.contains("`--chat` wraps"), "{log}");
}

#[test]
fn bad_requests_get_4xx_a_dropped_stream_frees_its_sequence_and_sigterm_ends_cleanly() {
    let server = Server::start(&["--api-key", KEY, "--max-body", "65536"]);
    let chat = |body: &str| server.http("POST", "/v1/chat/completions", Some(KEY), body.as_bytes());
    let ok = r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0}"#;
    for (body, status, code) in [
        ("{not json".to_string(), 400, "invalid_json"),
        (
            r#"{"messages":[{"role":"user","content":"Hi"}],"max_tokens":100000}"#.into(),
            400,
            "context_length_exceeded",
        ),
        (
            format!(
                r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
                "word ".repeat(3000)
            ),
            400,
            "context_length_exceeded",
        ),
        (
            format!(
                r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
                "x".repeat(100_000)
            ),
            413,
            "body_too_large",
        ),
    ] {
        let (s, b) = chat(&body);
        assert_eq!(s, status, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
        // The server keeps serving.
        assert_eq!(chat(ok).0, 200);
    }
    // Every OpenAI field layerfit does not honour is refused with a 400 that names it
    // (docs/serve.md has the table); so is a field OpenAI does not define.
    let msg = r#""messages":[{"role":"user","content":"Hi"}]"#;
    for (path, field, body) in refused_requests(msg) {
        let (s, b) = server.http("POST", path, Some(KEY), body.as_bytes());
        assert_eq!(s, 400, "{path} {body}: {b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"]["param"], field, "{path} {body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(&field),
            "{v}"
        );
    }
    // A generative server answers /v1/embeddings with how to get embeddings.
    let (s, b) = server.http("POST", "/v1/embeddings", Some(KEY), br#"{"input":"hi"}"#);
    assert_eq!(s, 400, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["error"]["code"], "embeddings_disabled", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("serve --embeddings"),
        "{v}"
    );
    let (s, b) = server.http("GET", "/v1/models", Some("wrong"), b"");
    assert_eq!(s, 401, "{b}");
    let (s, b) = server.http("GET", "/health", None, b"");
    assert_eq!(s, 200, "{b}");
    // A streamed answer abandoned after its first chunk: the sequence is freed.
    let mut c = TcpStream::connect(&server.addr).unwrap();
    let body = r#"{"messages":[{"role":"user","content":"Write a long story."}],"max_tokens":1500,"temperature":0,"stream":true}"#;
    write!(
        c,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 512];
    let n = c.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).contains("200 OK"));
    drop(c);
    let t = Instant::now();
    while server.metric("layerfit_requests_cancelled_total") < 1.0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the dropped stream was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, h) = server.http("GET", "/health", None, b"");
    let h: serde_json::Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["slots_processing"], 0, "{h}");
    assert!(server.metric("layerfit_generated_tokens_total") < 1500.0);
    assert!(server.stop().success());
}

/// (endpoint, the field named in the 400, body) for each field refused.
fn refused_requests(msg: &str) -> Vec<(&'static str, String, String)> {
    let chat = "/v1/chat/completions";
    let mut cases: Vec<(&'static str, String, String)> = [
        ("n", "2"),
        ("audio", r#"{"voice":"alloy","format":"wav"}"#),
        ("modalities", r#"["text","audio"]"#),
        ("functions", r#"[{"name":"f"}]"#),
        ("function_call", r#""auto""#),
        ("prediction", r#"{"type":"content","content":"x"}"#),
        ("store", "true"),
        ("metadata", r#"{"a":"b"}"#),
        ("user", r#""u1""#),
        ("safety_identifier", r#""s""#),
        ("prompt_cache_key", r#""k""#),
        ("prompt_cache_retention", r#""24h""#),
        ("service_tier", r#""flex""#),
        ("verbosity", r#""low""#),
        ("web_search_options", "{}"),
        ("top_logprobs", "2"),
        ("no_such_field", "1"),
    ]
    .iter()
    .map(|(f, v)| (chat, f.to_string(), format!("{{{msg},\"{f}\":{v}}}")))
    .collect();
    cases.push((
        chat,
        "messages[0].content[1].type".into(),
        r#"{"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}"#.into(),
    ));
    cases.push((
        chat,
        "tools[0].type".into(),
        format!(r#"{{{msg},"tools":[{{"type":"custom","custom":{{"name":"x"}}}}]}}"#),
    ));
    for (f, v) in [
        ("suffix", r#""end""#),
        ("best_of", "2"),
        ("n", "3"),
        ("user", r#""u""#),
    ] {
        cases.push((
            "/v1/completions",
            f.to_string(),
            format!(r#"{{"prompt":"Hi","{f}":{v}}}"#),
        ));
    }
    for (f, v) in [
        ("previous_response_id", r#""resp_1""#),
        ("store", "true"),
        ("conversation", r#""conv_1""#),
        ("background", "true"),
        ("include", r#"["reasoning.encrypted_content"]"#),
        ("max_tool_calls", "2"),
    ] {
        cases.push((
            "/v1/responses",
            f.to_string(),
            format!(r#"{{"input":"Hi","{f}":{v}}}"#),
        ));
    }
    cases
}

/// `layerfit plan --model SmolLM2 ARGS`: its stdout (compatible or degraded).
fn plan_smollm2(args: &[&str]) -> String {
    let m = common::smollm2();
    let mut all = vec!["plan", "--model", m.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, out, err) = common::layerfit(env!("CARGO_BIN_EXE_layerfit"), &all);
    assert!(code == 0 || code == 10, "{err}");
    out
}

#[test]
fn the_plan_holds_every_parallel_sequence() {
    let kv = |n: &str| {
        let out = plan_smollm2(&["--ctx", "8192", "--parallel", n, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["plan"]["parallel"], n.parse::<u32>().unwrap());
        v["plan"]["devices"][0]["kv_bytes"].as_u64().unwrap()
    };
    assert_eq!(kv("4"), 4 * kv("1"));
}

#[test]
fn emitted_configs_carry_the_parallel_sequences_and_read_back() {
    let emit = |tool: &str| plan_smollm2(&["--ctx", "4096", "--parallel", "4", "--emit", tool]);
    let server = emit("llama-server");
    let line = server
        .lines()
        .find(|l| l.starts_with("llama-server"))
        .unwrap();
    let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    assert!(
        line.contains("-c 16384") && line.contains("-np 4"),
        "{line}"
    );
    let s = layerfit::emit::RunSettings::from_llama_args(&args).unwrap();
    assert_eq!((s.context, s.parallel), (4096, 4));
    let yaml = emit("profile");
    let f = layerfit::emit::RunFile::parse(&yaml).unwrap();
    assert_eq!((f.settings.context, f.settings.parallel), (4096, 4));
    assert!(emit("ollama").contains("OLLAMA_NUM_PARALLEL=4"));
}

/// Greedy completions of `prompts`, all sent at once.
fn completions_at_once(server: &Server, prompts: &[&str]) -> Vec<String> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = prompts
            .iter()
            .map(|p| {
                scope.spawn(move || {
                    let r = post(
                        server,
                        "/v1/completions",
                        serde_json::json!({"prompt": p, "max_tokens": 24, "temperature": 0}),
                    );
                    r["choices"][0]["text"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn with_a_draft_every_sequence_decodes_speculatively_to_the_same_text() {
    let m = common::smollm2();
    let prompts = [
        "The capital of France is",
        "Here is a list of fruits: apple,",
    ];
    let plain = Server::start_model(&m, "2", &["--api-key", KEY]);
    let expected = completions_at_once(&plain, &prompts);
    assert_eq!(plain.metric("layerfit_draft_tokens_total"), 0.0);
    assert!(plain.stop().success());

    let drafted = Server::start_model(&m, "2", &["--api-key", KEY, "--draft", m.to_str().unwrap()]);
    let got = completions_at_once(&drafted, &prompts);
    assert_eq!(
        got, expected,
        "speculative decoding keeps each sequence's greedy text"
    );
    let proposed = drafted.metric("layerfit_draft_tokens_total");
    let kept = drafted.metric("layerfit_draft_accepted_total");
    assert!(
        proposed > 0.0 && kept > 0.0 && kept <= proposed,
        "{kept} of {proposed}"
    );
    let log = drafted.log.clone();
    assert!(drafted.stop().success());
    let log = log.lock().unwrap().clone();
    assert!(log.contains("self-check (draft)"), "{log}");
}

/// Streams a long greedy completion through curl: the raw server-sent events.
fn stream_long(server: &Server) -> std::thread::JoinHandle<String> {
    let url = format!("http://{}/v1/completions", server.addr);
    std::thread::spawn(move || {
        let body = serde_json::json!({
            "prompt": "1, 2, 3, 4, 5, 6, 7, 8,",
            "max_tokens": 1900,
            "temperature": 0,
            "stream": true,
        });
        let out = Command::new("curl")
            .args(["-s", "-N", "-H", "Content-Type: application/json"])
            .args(["-H", &format!("Authorization: Bearer {KEY}")])
            .args(["--data-binary", &body.to_string(), &url])
            .output()
            .expect("curl is needed for this test");
        String::from_utf8_lossy(&out.stdout).to_string()
    })
}

#[test]
fn after_sigterm_answers_in_flight_get_the_drain_time_then_end_and_serve_exits_0() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start_model(
            &common::smollm2(),
            "1",
            &["--api-key", KEY, "--drain-timeout", "2s"],
        );
        let stream = stream_long(&server);
        // Let the answer start (tokens counted), then stop the server.
        let t = Instant::now();
        while server.metric("layerfit_generated_tokens_total") < 5.0 {
            assert!(t.elapsed() < Duration::from_secs(60), "no tokens");
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet (no reuse).
        unsafe { libc::kill(server.child.id() as i32, signal) };
        let stopped = Instant::now();
        let status = loop {
            if let Some(s) = server.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(30),
                "still running 30 s after the signal with a 2 s drain"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(0), "signal {signal}: {status}");
        let events = stream.join().unwrap();
        let chunks: Vec<serde_json::Value> = events
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let last = chunks
            .last()
            .unwrap_or_else(|| panic!("no chunks: {events}"));
        assert_eq!(
            last["choices"][0]["finish_reason"], "shutdown",
            "the answer was cut by the drain, and says so: {last}"
        );
        assert!(events.trim_end().ends_with("data: [DONE]"), "{events}");
        let log = server.log.lock().unwrap().clone();
        assert!(log.contains("get 2.0 s to finish"), "{log}");
    }
}

/// tests/serve_embeddings.py against an embedding server: the figures it prints.
fn embeddings_client(server: &Server) -> serde_json::Value {
    let python = std::env::var("LAYERFIT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/serve_embeddings.py");
    let out = Command::new(&python)
        .args([script, &format!("http://{}/v1", server.addr), KEY])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (tests/run.sh prepares one)"));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn embeddings_reach_the_openai_client_and_each_refusal_names_its_field() {
    let server = Server::start(&["--api-key", KEY, "--embeddings", "--pooling", "mean"]);
    let f = embeddings_client(&server);
    assert_eq!(f["width"], 576, "{f}");
    assert_eq!(f["pooling"], "mean", "{f}");
    for n in f["norms"].as_array().unwrap() {
        assert!((n.as_f64().unwrap() - 1.0).abs() < 1e-4, "{f}");
    }
    assert!(f["batch_vs_alone_max_diff"].as_f64().unwrap() < 1e-4, "{f}");
    assert!(
        f["max_cosine_between_different_inputs"].as_f64().unwrap() < 0.999,
        "{f}"
    );
    eprintln!("embeddings figures: {f}");
    let long = "word ".repeat(700);
    for (body, param, code) in [
        (
            r#"{"input":"a","user":"u"}"#.to_string(),
            "user",
            "unsupported_parameter",
        ),
        (
            r#"{"input":"a","foo":1}"#.into(),
            "foo",
            "unknown_parameter",
        ),
        (
            r#"{"input":"a","dimensions":64}"#.into(),
            "dimensions",
            "unsupported_parameter",
        ),
        (
            r#"{"input":"a","encoding_format":"int8"}"#.into(),
            "encoding_format",
            "invalid_value",
        ),
        (r#"{"model":"m"}"#.into(), "input", "invalid_value"),
        (r#"{"input":[]}"#.into(), "input", "invalid_value"),
        (r#"{"input":""}"#.into(), "input", "invalid_value"),
        (r#"{"input":["a",""]}"#.into(), "input[1]", "invalid_value"),
        (
            r#"{"input":[[1],[-1]]}"#.into(),
            "input[1]",
            "invalid_value",
        ),
        (
            r#"{"input":[[1],[2,"x"]]}"#.into(),
            "input[1][1]",
            "invalid_value",
        ),
        (
            r#"{"input":[1, 99999999]}"#.into(),
            "input",
            "invalid_value",
        ),
        (
            format!(r#"{{"input":"{long}"}}"#),
            "input",
            "context_length_exceeded",
        ),
        (
            format!(r#"{{"input":["a","{long}"]}}"#),
            "input[1]",
            "context_length_exceeded",
        ),
        (
            format!(r#"{{"input":[{}]}}"#, vec![r#""a""#; 2049].join(",")),
            "input",
            "invalid_value",
        ),
    ] {
        let (s, b) = server.http("POST", "/v1/embeddings", Some(KEY), body.as_bytes());
        assert_eq!(s, 400, "{body}: {b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // The generation endpoints say what this server serves.
    for path in ["/v1/chat/completions", "/v1/completions", "/v1/responses"] {
        let (s, b) = server.http("POST", path, Some(KEY), br#"{"prompt":"hi"}"#);
        assert_eq!(s, 400, "{path}: {b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["error"]["code"], "embeddings_only", "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/v1/embeddings"),
            "{v}"
        );
    }
    let log = server.log.clone();
    assert!(server.stop().success());
    // The self-check holds in embedding mode: the output buffer holds an embedding per
    // output beside the logits, and every token of a batch is an output.
    let log = log.lock().unwrap().clone();
    assert!(
        log.contains("self-check: llama.cpp allocated") && log.contains("every figure within 5%"),
        "{log}"
    );
}

#[test]
fn a_generative_model_needs_a_pooling_for_embeddings() {
    let model = common::smollm2();
    let bin = env!("CARGO_BIN_EXE_layerfit");
    let base = [
        "serve",
        "--model",
        model.to_str().unwrap(),
        "--port",
        "0",
        "--dev",
        "none",
    ];
    for (extra, want) in [
        (vec!["--embeddings"], "--pooling mean, cls or last"),
        (vec!["--embeddings", "--pooling", "none"], "--pooling none"),
        (vec!["--embeddings", "--pooling", "rank"], "--pooling rank"),
        (vec!["--pooling", "mean"], "add --embeddings"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, out, err) = common::layerfit(bin, &args);
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{extra:?}: {err}");
        assert!(errors[0].contains(want), "{extra:?}: {err}");
        assert!(!out.contains("serving"), "{out}");
    }
}
