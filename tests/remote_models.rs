//! Remote models against a real HTTP server on 127.0.0.1 serving the real model files under
//! the Hub's and the Ollama registry's paths (tests/common/http_server.rs): the plan and
//! the inspection of a remote file equal those of the file on disk, the header is read by
//! range without the tensor data, and a second plan reads no range.

mod common;

use common::http_server::Server;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// layerfit with a private cache, models folder and HOME, pointed at `server` as the Hub.
fn layerfit(server: &Server, home: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_layerfit"));
    common::isolate(&mut c);
    c.args(args)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("LAYERFIT_MODELS", home.join("models"))
        .env("HF_ENDPOINT", &server.base)
        .env("LAYERFIT_NET_TIMEOUT", "3")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HOME")
        .env_remove("LLAMA_CACHE")
        .env_remove("OLLAMA_MODELS")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY");
    c.output().unwrap()
}

fn json(o: &Output) -> Value {
    assert!(
        !o.stdout.is_empty(),
        "no JSON; stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn home(tag: &str) -> std::path::PathBuf {
    let h = common::tempdir(&format!("remote-{tag}"));
    let _ = std::fs::remove_dir_all(&h);
    std::fs::create_dir_all(h.join("models")).unwrap();
    h
}

/// The hub with both real models in one repository.
fn hub() -> Server {
    let s = Server::start();
    s.file("smol", &common::smollm2(), None);
    s.file("gemma", &common::gemma3(), None);
    s.hub_file(
        "test-org/tiny-GGUF",
        "SmolLM2-135M-Instruct-Q4_1.gguf",
        "smol",
    );
    s.hub_file("test-org/tiny-GGUF", "gemma-3-270m-it-Q4_K_M.gguf", "gemma");
    s.ollama_model("library/smollm2:135m", "smol");
    s
}

#[test]
fn remote_inspect_equals_local_and_reads_only_the_header() {
    let s = hub();
    let h = home("inspect");
    let local = json(&layerfit(
        &s,
        &h,
        &["inspect", common::smollm2().to_str().unwrap(), "--json"],
    ));
    for (i, name) in [
        "hf://test-org/tiny-GGUF:q4_1".to_string(),
        "hf://test-org/tiny-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf".to_string(),
        format!("{}/files/smol", s.base),
        format!(
            "ollama://{}/smollm2:135m",
            s.base.trim_start_matches("http://")
        ),
    ]
    .into_iter()
    .enumerate()
    {
        s.clear_log();
        // A fresh cache each time: every form reads its header over the network.
        let h = home(&format!("inspect-{i}"));
        let o = layerfit(&s, &h, &["inspect", &name, "--json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut remote = json(&o);
        let src = remote["source"].take();
        assert!(
            src["name"].as_str().unwrap().eq_ignore_ascii_case(&name),
            "{src}"
        );
        let t = &src["transfer"];
        let header = t["header_bytes"].as_u64().unwrap();
        let moved = t["bytes_transferred"].as_u64().unwrap();
        let sent = s.bytes_sent("/");
        let size = std::fs::metadata(common::smollm2()).unwrap().len();
        println!(
            "{name}: header {header} bytes, {moved} transferred (server sent {sent}), file {size}"
        );
        assert!(
            moved >= header && moved <= header.max(1 << 20) * 4,
            "{moved} for a {header}-byte header"
        );
        assert!(
            sent < size / 10,
            "the server sent {sent} bytes of a {size}-byte file"
        );
        let mut l = local.clone();
        l["model"]["path"] = Value::Null;
        l["source"] = Value::Null;
        remote["model"]["path"] = Value::Null;
        assert_eq!(remote, l, "{name}");
    }
}

/// The plan's figures, without what names the model or where its file is.
fn plan_figures(v: &Value) -> Value {
    let mut p = v["plan"].clone();
    if let Some(o) = p.as_object_mut() {
        o.remove("speed");
    }
    p
}

#[test]
fn a_repository_is_planned_like_a_catalog_model_and_a_second_plan_reads_no_range() {
    let s = hub();
    let h = home("repo-plan");
    let args = ["--ctx", "4096", "--threads", "2", "--ram", "16G", "--json"];
    let o = layerfit(
        &s,
        &h,
        &[&["plan", "--model", "hf://test-org/tiny-GGUF"], &args[..]].concat(),
    );
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 10),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let remote = json(&o);
    let names: Vec<&str> = remote["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["model"].as_str())
        .collect();
    assert!(names.contains(&"hf://test-org/tiny-GGUF:Q4_1"), "{names:?}");
    assert!(
        names.contains(&"hf://test-org/tiny-GGUF:Q4_K_M"),
        "{names:?}"
    );
    assert_eq!(remote["origin"]["kind"], "remote", "{}", remote["origin"]);
    let picked = remote["model"].as_str().unwrap_or_default().to_string();
    let local_file = if picked.ends_with("Q4_1") {
        common::smollm2()
    } else {
        common::gemma3()
    };
    let local = json(&layerfit(
        &s,
        &h,
        &[
            "plan",
            "--model",
            local_file.to_str().unwrap(),
            "--ctx",
            "4096",
            "--threads",
            "2",
            "--ram",
            "16G",
            "--json",
        ],
    ));
    assert_eq!(plan_figures(&remote), plan_figures(&local), "{picked}");
    // Again: the listing only; every header comes from the cache.
    s.clear_log();
    let again = json(&layerfit(
        &s,
        &h,
        &[&["plan", "--model", "hf://test-org/tiny-GGUF"], &args[..]].concat(),
    ));
    assert_eq!(plan_figures(&again), plan_figures(&remote));
    let ranged: Vec<_> = s
        .requests("/")
        .into_iter()
        .filter(|l| l.range.is_some())
        .collect();
    assert!(ranged.is_empty(), "{ranged:?}");
    assert_eq!(s.requests("/api/models/").len(), 1);
}
