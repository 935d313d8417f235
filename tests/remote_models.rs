//! Remote models against a real HTTP server on 127.0.0.1 serving the real model files under
//! the Hub's and the Ollama registry's paths (tests/common/http_server.rs): the plan and
//! the inspection of a remote file equal those of the file on disk, the header is read by
//! range without the tensor data, and a second plan reads no range.

mod common;

use common::http_server::Server;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// layerfit with a private cache, models folder and HOME, pointed at `server` as the Hub.
fn layerfit(server: &Server, home: &Path, args: &[&str]) -> Output {
    common::in_home(home, &server.base)
        .args(args)
        .output()
        .unwrap()
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

/// The hub with SmolLM2 also in `repo`.
fn hub_with_smol_in(repo: &str) -> Server {
    let s = hub();
    s.hub_file(repo, "SmolLM2-135M-Instruct-Q4_1.gguf", "smol");
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

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// One `error:` line that names `what`, exit 2.
fn assert_one_error(o: &Output, what: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    for w in what {
        assert!(lines[0].contains(w), "{w:?} not in {err}");
    }
}

#[test]
fn pull_picks_the_recommendation_verifies_it_and_run_finds_it_offline() {
    let s = hub();
    let h = home("pull");
    let o = layerfit(
        &s,
        &h,
        &[
            "pull",
            "hf://test-org/tiny-GGUF",
            "--ctx",
            "4096",
            "--ram",
            "16G",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json(&o);
    common::assert_schema("pull", &r);
    let name = r["name"].as_str().unwrap().to_string();
    assert_eq!(r["variants"], 2, "{r}");
    assert!(stderr(&o).contains("picked"), "{}", stderr(&o));
    let f = &r["files"][0];
    assert_eq!(f["verified"], true);
    assert_eq!(f["outcome"], "downloaded");
    let path = std::path::PathBuf::from(f["path"].as_str().unwrap());
    assert!(
        path.starts_with(h.join("models/hf/test-org/tiny-GGUF")),
        "{path:?}"
    );
    let served = if name.ends_with("Q4_1") {
        common::smollm2()
    } else {
        common::gemma3()
    };
    assert_eq!(
        common::http_server::sha256_file(&path),
        common::http_server::sha256_file(&served)
    );
    assert_eq!(
        f["sha256"].as_str().unwrap(),
        common::http_server::sha256_file(&served)
    );
    // Offline (the Hub unreachable): the same name finds the pulled file and runs it.
    let dead = Server::start();
    let mut offline = layerfit(
        &dead,
        &h,
        &["plan", "--model", &name, "--ctx", "4096", "--json"],
    );
    let plan = json(&offline);
    assert_eq!(plan["origin"]["kind"], "file", "{}", plan["origin"]);
    assert_eq!(
        plan["origin"]["path"]
            .as_str()
            .map(std::path::PathBuf::from),
        Some(path.clone())
    );
    offline = layerfit(
        &dead,
        &h,
        &[
            "run",
            "--model",
            &name,
            "--ctx",
            "4096",
            "--prompt",
            "Hello",
            "--max-tokens",
            "4",
            "--accept-degraded",
            "--json",
        ],
    );
    assert!(
        offline.status.code().is_some_and(|c| c == 0 || c == 10),
        "{}",
        stderr(&offline)
    );
    // Pulling again finds it in place.
    let again = json(&layerfit(
        &s,
        &h,
        &["pull", &name, "--ctx", "4096", "--ram", "16G", "--json"],
    ));
    assert_eq!(again["files"].as_array().map(Vec::len), Some(0), "{again}");
}

#[test]
fn an_interrupted_pull_resumes_to_the_right_sha256() {
    let s = hub_with_smol_in("test-org/flaky-GGUF");
    s.cdn_mode("test-org/flaky-GGUF", "flaky");
    let h = home("resume");
    let name = "hf://test-org/flaky-GGUF:Q4_1";
    let first = layerfit(
        &s,
        &h,
        &["pull", name, "--ctx", "4096", "--ram", "16G", "--json"],
    );
    assert_one_error(&first, &["ended", "resume"]);
    let dest = h.join("models/hf/test-org/flaky-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf");
    let part = std::path::PathBuf::from(format!("{}.part", dest.display()));
    let size = std::fs::metadata(common::smollm2()).unwrap().len();
    assert_eq!(std::fs::metadata(&part).unwrap().len(), size / 2);
    assert!(!dest.exists());
    s.clear_log();
    let second = layerfit(
        &s,
        &h,
        &["pull", name, "--ctx", "4096", "--ram", "16G", "--json"],
    );
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let r = json(&second);
    assert_eq!(r["files"][0]["outcome"], "resumed");
    assert_eq!(r["files"][0]["verified"], true);
    assert_eq!(r["files"][0]["bytes_transferred"], size - size / 2);
    assert!(!part.exists());
    assert_eq!(
        common::http_server::sha256_file(&dest),
        common::http_server::sha256_file(&common::smollm2())
    );
    let resumed: Vec<_> = s
        .requests("/flaky/")
        .into_iter()
        .filter(|l| l.range.as_deref() == Some(&format!("bytes={}-", size / 2)))
        .collect();
    assert_eq!(resumed.len(), 1, "{:?}", s.requests("/"));
}

#[test]
fn a_corrupted_byte_is_caught_and_nothing_is_kept() {
    let s = hub();
    s.file("bad", &common::smollm2(), Some(50_000_000));
    s.hub_file(
        "test-org/bad-GGUF",
        "SmolLM2-135M-Instruct-Q4_1.gguf",
        "bad",
    );
    let h = home("corrupt");
    let o = layerfit(
        &s,
        &h,
        &[
            "pull",
            "hf://test-org/bad-GGUF:Q4_1",
            "--ctx",
            "4096",
            "--ram",
            "16G",
        ],
    );
    assert_one_error(&o, &["SHA-256 mismatch", "nothing was kept"]);
    let dir = h.join("models/hf/test-org/bad-GGUF");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_disk_too_small_is_refused_before_any_byte_is_fetched() {
    let s = hub();
    let h = home("small-disk");
    let machine = h.join("machine.yaml");
    std::fs::write(&machine, "ram: 16G\ndisk_free: 10M\n").unwrap();
    let o = layerfit(
        &s,
        &h,
        &[
            "pull",
            "hf://test-org/tiny-GGUF:Q4_1",
            "--ctx",
            "4096",
            "--hardware",
            machine.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(20), "{}", stderr(&o));
    assert!(stderr(&o).contains("disk"), "{}", stderr(&o));
    let downloads: Vec<_> = s
        .requests("/cdn/")
        .into_iter()
        .filter(|l| l.range.as_deref() == Some("bytes=0-"))
        .collect();
    assert!(downloads.is_empty(), "{downloads:?}");
    assert!(!h.join("models/hf").exists());
}

#[test]
fn hostile_servers_get_one_error_line_in_bounded_time_and_memory() {
    let s = hub();
    let h = home("hostile");
    // Range ignored: the header is still read, and the stream is cut off.
    let o = layerfit(
        &s,
        &h,
        &["inspect", &format!("{}/norange/smol", s.base), "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = &json(&o)["source"]["transfer"];
    assert!(t["bytes_transferred"].as_u64().unwrap() <= 4 << 20, "{t}");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("{}/billion.gguf", s.base), vec!["64 MiB"]),
        (
            format!("{}/drip/x.gguf", s.base),
            vec!["timed out", "/drip/"],
        ),
        (
            format!("{}/liar/smol", s.base),
            vec!["ended before", "/liar/"],
        ),
        (format!("{}/loop/0", s.base), vec!["redirects", "/loop/"]),
        (format!("{}/files/none.gguf", s.base), vec!["404"]),
        (
            "hf://test-org/nope".to_string(),
            vec!["404", "/api/models/test-org/nope"],
        ),
        (
            "hf://test-org/tiny-GGUF:Q2_K".to_string(),
            vec!["Q2_K", "Q4_1", "Q4_K_M"],
        ),
        ("http://example.com/x.gguf".to_string(), vec!["https"]),
    ];
    for (url, what) in cases {
        let t0 = std::time::Instant::now();
        let o = layerfit(&s, &h, &["inspect", &url]);
        println!(
            "{url}: {:.1} s: {}",
            t0.elapsed().as_secs_f64(),
            stderr(&o).trim()
        );
        assert_one_error(&o, &what);
    }
}

#[test]
fn a_gated_model_needs_hf_token_and_the_token_is_never_shown() {
    let s = hub_with_smol_in("test-org/gated-GGUF");
    s.gate("test-org/gated-GGUF", "hf_sekrit_token_42");
    let h = home("gated");
    let name = "hf://test-org/gated-GGUF:Q4_1";
    let o = layerfit(&s, &h, &["inspect", name]);
    assert_one_error(&o, &["401", "HF_TOKEN"]);
    for token in ["hf_wrong_token_7", "hf_sekrit_token_42"] {
        let o = common::in_home(&h, &s.base)
            .args(["plan", "--model", name, "--ctx", "4096", "--json"])
            .env("XDG_CACHE_HOME", h.join(format!(".cache-{token}")))
            .env("HF_TOKEN", token)
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(!all.contains(token), "the token leaked: {all}");
        if token.contains("wrong") {
            assert_one_error(&o, &["401"]);
        } else {
            assert!(o.status.code().is_some_and(|c| c == 0 || c == 10), "{all}");
        }
    }
    // The token went to the Hub's host only with the resolve request, never elsewhere.
    assert!(s
        .requests("/")
        .iter()
        .any(|l| l.auth.as_deref() == Some("Bearer hf_sekrit_token_42")));
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

#[test]
fn proxies_from_the_environment_are_used() {
    let origin = hub();
    let proxy = hub();
    let h = home("proxy");
    let o = common::in_home(&h, &origin.base)
        .args(["inspect", &format!("{}/files/smol", origin.base), "--json"])
        .env("HTTP_PROXY", &proxy.base)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let tunnels = proxy.requests("CONNECT ");
    let origin_host = origin.base.trim_start_matches("http://");
    assert!(
        !tunnels.is_empty(),
        "went around the proxy: {:?}",
        proxy.requests("")
    );
    assert!(
        tunnels.iter().all(|l| l.path.ends_with(origin_host)),
        "{tunnels:?}"
    );
    assert!(!origin.requests("/files/smol").is_empty());
}
