//! `layerfit pull` against a real HTTP server on 127.0.0.1 (tests/common/http_server.rs):
//! the recommended variant, verified and found again offline; an interrupted download
//! resumed to the right SHA-256; a corrupted byte caught with nothing kept; a disk too small
//! refused before any byte is fetched.

mod common;

use common::http_server::Server;
use common::remote::*;

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
