//! Models other tools keep, laid out as those tools lay them out, in a temporary HOME:
//! Ollama's store (`manifests/registry.ollama.ai/NS/NAME/TAG`, `blobs/sha256-HEX`), the
//! Hugging Face cache (`models--ORG--REPO/refs/main`, `snapshots/COMMIT/FILE` linking to
//! `blobs/HASH`), LM Studio's `~/.lmstudio/models/PUBLISHER/REPO/FILE.gguf` and llama.cpp's
//! older flat cache. `layerfit models` lists them all with a verdict, and the names it
//! prints find them again, with no network.

mod common;

use common::http_server::sha256_file;
use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A link to a real model, never a copy onto an existing path: copying onto a hard link
/// of the model would truncate the model itself.
fn link_or_copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        symlink(from, to).unwrap();
    }
}

/// A HOME with a model in every store, and one broken entry in most.
fn fixture_home(tag: &str) -> PathBuf {
    let home = common::tempdir(tag);
    let _ = std::fs::remove_dir_all(&home);
    let smol = common::smollm2();
    let gemma = common::gemma3();
    // Ollama.
    let store = home.join(".ollama/models");
    let sha = sha256_file(&smol);
    link_or_copy(&smol, &store.join(format!("blobs/sha256-{sha}")));
    let manifest = |digest: &str| {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": format!("sha256:{}", "c".repeat(64)), "size": 10},
            "layers": [
                {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{digest}"), "size": 1},
                {"mediaType": "application/vnd.ollama.image.params", "digest": format!("sha256:{}", "d".repeat(64)), "size": 1}
            ]
        })
        .to_string()
    };
    let m = store.join("manifests/registry.ollama.ai/library");
    std::fs::create_dir_all(m.join("smollm2")).unwrap();
    std::fs::write(m.join("smollm2/135m"), manifest(&sha)).unwrap();
    std::fs::create_dir_all(m.join("broken")).unwrap();
    std::fs::write(m.join("broken/latest"), manifest(&"e".repeat(64))).unwrap();
    // Hugging Face cache.
    let repo = home.join(".cache/huggingface/hub/models--test-org--cached-GGUF");
    let gsha = sha256_file(&gemma);
    link_or_copy(&gemma, &repo.join(format!("blobs/{gsha}")));
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    let snap = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snap).unwrap();
    symlink(
        format!("../../blobs/{gsha}"),
        snap.join("gemma-3-270m-it-Q4_K_M.gguf"),
    )
    .unwrap();
    symlink(
        "../../blobs/missing",
        snap.join("gemma-3-270m-it-Q8_0.gguf"),
    )
    .unwrap();
    // LM Studio.
    link_or_copy(
        &smol,
        &home.join(
            ".lmstudio/models/lmstudio-community/SmolLM2-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf",
        ),
    );
    // llama.cpp's flat cache: a good file and a truncated one.
    let lc = home.join(".cache/llama.cpp");
    link_or_copy(
        &smol,
        &lc.join("test-org_SmolLM2_SmolLM2-135M-Instruct-Q4_1.gguf"),
    );
    let bytes = std::fs::read(&smol).unwrap();
    std::fs::write(lc.join("truncated.gguf"), &bytes[..4000]).unwrap();
    std::fs::create_dir_all(home.join("models")).unwrap();
    home
}

fn layerfit(home: &Path, args: &[&str]) -> Output {
    // The Hub is unreachable: everything must come from the disk.
    common::in_home(home, "http://127.0.0.1:9")
        .args(args)
        .output()
        .unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

#[test]
fn models_lists_every_store_with_a_verdict_and_unreadable_entries_with_the_reason() {
    let home = fixture_home("stores-list");
    let o = layerfit(&home, &["models", "--ctx", "4096", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = json(&o);
    common::assert_schema("models", &r);
    assert_eq!(r["context"], 4096);
    let models = r["models"].as_array().unwrap();
    let find = |name: &str| {
        models
            .iter()
            .find(|m| m["name"].as_str().is_some_and(|n| n.ends_with(name)))
            .unwrap_or_else(|| panic!("{name} not in {r:#}"))
    };
    let ok = |m: &Value, store: &str, arch: &str, quant: &str| {
        assert_eq!(m["store"], store, "{m}");
        assert_eq!(m["architecture"], arch, "{m}");
        assert_eq!(m["quant"], quant, "{m}");
        assert!(
            matches!(m["verdict"].as_str(), Some("compatible" | "degraded")),
            "{m}"
        );
        assert!(m["decode_tokens_per_s"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["problem"].is_null(), "{m}");
    };
    ok(find("ollama://smollm2:135m"), "ollama", "llama", "q4_1");
    ok(
        find("hf://test-org/cached-GGUF:Q4_K_M"),
        "hf_cache",
        "gemma3",
        "q4_k_m",
    );
    ok(
        find("SmolLM2-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf"),
        "lm_studio",
        "llama",
        "q4_1",
    );
    ok(
        find("test-org_SmolLM2_SmolLM2-135M-Instruct-Q4_1.gguf"),
        "llama_cpp",
        "llama",
        "q4_1",
    );
    let broken = find("ollama://broken:latest");
    assert!(
        broken["problem"].as_str().unwrap().contains("missing"),
        "{broken}"
    );
    let dangling = find("hf://test-org/cached-GGUF:Q8_0");
    assert!(
        dangling["problem"]
            .as_str()
            .unwrap()
            .contains("a broken link to a missing blob"),
        "{dangling}"
    );
    let truncated = find("truncated.gguf");
    assert!(truncated["verdict"].is_null(), "{truncated}");
    assert!(
        truncated["problem"].as_str().unwrap().contains("truncated"),
        "{truncated}"
    );
    // The table says the same to people.
    let t = layerfit(&home, &["models", "--ctx", "4096"]);
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        text.contains("ollama://smollm2:135m") && text.contains("unreadable"),
        "{text}"
    );
    // Said once: the row's "unreadable:" is not repeated by the reason.
    let row = text
        .lines()
        .find(|l| l.contains("cached-GGUF:Q8_0"))
        .unwrap_or_else(|| panic!("no dangling row:\n{text}"));
    assert_eq!(row.matches("unreadable").count(), 1, "{row}");
}

#[test]
fn names_from_other_tools_find_their_files_offline() {
    let home = fixture_home("stores-names");
    let blob = home.join(format!(
        ".ollama/models/blobs/sha256-{}",
        sha256_file(&common::smollm2())
    ));
    for (name, file) in [
        ("smollm2:135m", blob.clone()),
        ("ollama://smollm2:135m", blob),
        (
            "hf://test-org/cached-GGUF:q4_k_m",
            home.join(".cache/huggingface/hub/models--test-org--cached-GGUF/snapshots")
                .join(COMMIT)
                .join("gemma-3-270m-it-Q4_K_M.gguf"),
        ),
    ] {
        let o = layerfit(&home, &["plan", "--model", name, "--ctx", "4096", "--json"]);
        assert!(
            o.status.code().is_some_and(|c| c == 0 || c == 10),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let p = json(&o);
        assert_eq!(p["origin"]["kind"], "file", "{name}");
        assert_eq!(
            p["origin"]["path"].as_str().map(PathBuf::from),
            Some(file),
            "{name}"
        );
    }
    let o = layerfit(
        &home,
        &["inspect", "hf://test-org/cached-GGUF:Q4_K_M", "--json"],
    );
    let i = json(&o);
    assert!(
        i["source"]["url"].is_null() && i["source"]["local_path"].is_string(),
        "{}",
        i["source"]
    );
}
