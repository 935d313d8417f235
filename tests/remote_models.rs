//! Remote models against a real HTTP server on 127.0.0.1 serving the real model files under
//! the Hub's and the Ollama registry's paths (tests/common/http_server.rs): the plan and
//! the inspection of a remote file equal those of the file on disk, the header is read by
//! range without the tensor data, and a second plan reads no range.

mod common;

use common::remote::*;
use serde_json::Value;

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
        common::assert_schema("inspect", &remote);
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
    common::assert_schema("plan", &remote);
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

#[test]
fn a_shard_name_means_its_whole_split_set() {
    let s = hub();
    let shards = common::write_split_set(&common::tempdir("split-shards"), "tiny-Q8_0");
    for (i, p) in shards.iter().enumerate() {
        let name = p.file_name().unwrap().to_str().unwrap();
        s.file(&format!("shard{i}"), p, None);
        s.hub_file(
            "test-org/split-GGUF",
            &format!("sub/{name}"),
            &format!("shard{i}"),
        );
    }
    let h = home("split");
    let local = json(&layerfit(
        &s,
        &h,
        &["inspect", shards[0].to_str().unwrap(), "--json"],
    ));
    for name in [
        "hf://test-org/split-GGUF/sub/tiny-Q8_0-00002-of-00003.gguf".to_string(),
        "hf://test-org/split-GGUF:Q8_0".to_string(),
    ] {
        let o = layerfit(&s, &h, &["inspect", &name, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let r = json(&o);
        assert_eq!(r["model"]["shards"], 3, "{name}");
        assert_eq!(r["weights"], local["weights"], "{name}");
        assert_eq!(r["kv_cache"], local["kv_cache"], "{name}");
    }
}

#[test]
fn an_ollama_registry_that_challenges_for_a_token_is_answered() {
    let s = hub();
    s.ollama_model("private/smollm2:135m", "smol");
    let h = home("ollama-token");
    let host = s.base.trim_start_matches("http://").to_string();
    let name = format!("ollama://{host}/private/smollm2:135m");
    let o = layerfit(
        &s,
        &h,
        &["pull", &name, "--ctx", "4096", "--ram", "16G", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["files"][0]["verified"], true, "{r}");
    let path = std::path::PathBuf::from(r["files"][0]["path"].as_str().unwrap());
    assert_eq!(
        path,
        h.join(format!("models/ollama/{host}/private/smollm2/135m.gguf"))
    );
    assert!(!s.requests("/token").is_empty());
    // The pulled model is found by the same name, with no request at all.
    s.clear_log();
    let p = json(&layerfit(
        &s,
        &h,
        &["plan", "--model", &name, "--ctx", "4096", "--json"],
    ));
    assert_eq!(p["origin"]["kind"], "file");
    assert!(s.requests("/").is_empty(), "{:?}", s.requests("/"));
    // A missing tag: the registry's 404, one line.
    assert_one_error(
        &layerfit(
            &s,
            &h,
            &["inspect", &format!("ollama://{host}/smollm2:nope")],
        ),
        &["404", "manifests/nope"],
    );
}
