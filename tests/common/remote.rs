//! Helpers of the remote-model tests: layerfit in a private HOME against a test hub, and
//! the one-error-line check.
#![allow(dead_code)]

use super::http_server::Server;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// layerfit with a private cache, models folder and HOME, pointed at `server` as the Hub.
pub fn layerfit(server: &Server, home: &Path, args: &[&str]) -> Output {
    super::in_home(home, &server.base)
        .args(args)
        .output()
        .unwrap()
}

pub fn json(o: &Output) -> Value {
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

pub fn home(tag: &str) -> std::path::PathBuf {
    let h = super::tempdir(&format!("remote-{tag}"));
    let _ = std::fs::remove_dir_all(&h);
    std::fs::create_dir_all(h.join("models")).unwrap();
    h
}

/// The hub with both real models in one repository.
pub fn hub() -> Server {
    let s = Server::start();
    s.file("smol", &super::smollm2(), None);
    s.file("gemma", &super::gemma3(), None);
    s.hub_file(
        "test-org/tiny-GGUF",
        "SmolLM2-135M-Instruct-Q4_1.gguf",
        "smol",
    );
    s.hub_file("test-org/tiny-GGUF", "gemma-3-270m-it-Q4_K_M.gguf", "gemma");
    s.ollama_model("library/smollm2:135m", "smol");
    s
}

/// The hub with SmolLM2 also in `repo`.
pub fn hub_with_smol_in(repo: &str) -> Server {
    let s = hub();
    s.hub_file(repo, "SmolLM2-135M-Instruct-Q4_1.gguf", "smol");
    s
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// One `error:` line that names `what`, exit 2.
pub fn assert_one_error(o: &Output, what: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for w in what {
        assert!(lines[0].contains(w), "{w:?} not in {err}");
    }
}
