//! The install script itself (bash), as CI runs it: the gate on simulated compatible,
//! degraded and incompatible machines, and the prerequisite check with a tool missing.
//! Nothing is installed on the host.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

fn script() -> String {
    format!("{}/install/install.sh", env!("CARGO_MANIFEST_DIR"))
}

fn machine(tag: &str, yaml: &str) -> String {
    let p = common::tempdir("installer").join(format!("{tag}.yaml"));
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

fn install(args: &[&str], path_env: Option<&str>) -> (i32, String) {
    // The shell is found before PATH is replaced for the script.
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("bash");
    let mut c = Command::new(bash);
    c.arg(script())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("LAYERFIT_HARDWARE")
        .stdin(Stdio::null());
    if let Some(p) = path_env {
        c.env("PATH", p);
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn gate(hardware: &str, extra: &[&str]) -> (i32, String) {
    let mut a = vec![
        "--check-only",
        "--bin",
        env!("CARGO_BIN_EXE_layerfit"),
        "--hardware",
        hardware,
    ];
    a.extend_from_slice(extra);
    install(&a, None)
}

#[test]
fn gate_on_compatible_degraded_and_incompatible_machines() {
    // The gate is layerfit's own ranking of every tier (check-requirements without a
    // model): on a 24 GB GPU the 7B coder's tier runs entirely on the GPU at 32K.
    let big = machine("rtx4090", "ram: 32G\ngpus: [{name: RTX 4090}]\n");
    let (code, out) = gate(&big, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tiers: the built-in profiles"), "{out}");
    // The recommended variant is not here and the catalog sources no file for it: the line
    // says where to put one, and begins with no `pull` that would fail.
    let start = out
        .lines()
        .find(|l| l.starts_with("start it with"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        start.starts_with("start it with (once a GGUF of it is at ")
            && start.ends_with(".gguf): layerfit run --profile standard_16gb"),
        "{start}"
    );

    // CPU only, a laptop's memory bandwidth (described, so the answer does not depend on the
    // machine the tests run on): no GPU tier is recommended; degraded, and without a
    // terminal it needs --yes.
    let cpu = machine(
        "cpu16",
        "ram: 16G\ncpu: {cores: 2, memory_bandwidth_gbps: 10}\n",
    );
    let (code, out) = gate(&cpu, &[]);
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("profile chat_4gb_cpu"), "{out}");
    assert!(out.contains("degraded machine not accepted"), "{out}");
    assert!(out.contains("no GPU"), "{out}");
    let (code, out) = gate(&cpu, &["--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--accept-degraded"), "{out}");

    // 2 GB still runs a small tier (degraded); 256 MB runs no tier at its context: exit 20
    // (SmolLM2's q4_0 cache alone is 202.5 MiB at 32K).
    let (code, out) = gate(&machine("ram2g", "ram: 2G\n"), &["--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("start it with") && l.contains("layerfit run --profile")),
        "{out}"
    );
    assert!(
        out.contains("profile chat_4gb_cpu") || out.contains("profile chromebook_512mb"),
        "{out}"
    );
    let (code, out) = gate(&machine("ram256m", "ram: 256M\n"), &[]);
    assert_eq!(code, 20, "{out}");
    assert!(out.contains("cannot run the required context"), "{out}");
    assert!(out.contains("more memory"), "{out}");

    // A named profile and a model, at a given context.
    let (code, out) = gate(&big, &["--profile", "hybrid_8gb", "--min-context", "65536"]);
    assert_eq!(code, 10, "{out}"); // 64K is beyond Qwen2.5-Coder's trained 32K
    let g = common::gemma3();
    let (code, out) = gate(&cpu, &["--model", g.to_str().unwrap(), "--yes"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn bad_usage_and_missing_binary() {
    let (code, out) = install(&["--frobnicate"], None);
    assert_eq!(code, 2, "{out}");
    let (code, out) = install(&["--check-only", "--bin", "/nonexistent/layerfit"], None);
    assert_eq!(code, 2, "{out}");
    let (code, out) = install(&["--check-only", "--hardware", "/nonexistent.yaml"], None);
    assert_eq!(code, 2, "{out}");
}

/// A PATH where everything needed exists except cmake, and a package manager that only
/// records its arguments: install.sh hands the prerequisites to install/prerequisites.sh, which
/// names cmake, calls the package manager for it (no terminal: it does not ask), checks again,
/// and stops with exit 4 because cmake is still not there.
#[test]
fn missing_prerequisite_is_installed_through_the_package_manager_and_checked_again() {
    let dir = common::tempdir("fake-path");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = |name: &str| -> Option<String> {
        let out = Command::new("bash")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()?;
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!p.is_empty()).then_some(p)
    };
    for tool in [
        "cargo", "c++", "g++", "gcc", "make", "grep", "ls", "id", "uname", "dirname", "sed", "tr",
        "env", "bash",
    ] {
        if let Some(p) = real(tool) {
            let _ = std::os::unix::fs::symlink(&p, bin.join(tool));
        }
    }
    let script = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        Command::new("chmod")
            .args(["+x", p.to_str().unwrap()])
            .status()
            .unwrap();
    };
    // A package manager that records its calls and installs nothing; sudo for non-root runs.
    let calls = dir.join("apt-calls");
    script("apt-get", &format!("echo \"$*\" >> {}", calls.display()));
    script("sudo", "exec \"$@\"");
    // libclang is present as far as the check can tell (a folder with a loadable name).
    let libs = dir.join("lib");
    std::fs::create_dir_all(&libs).unwrap();
    std::fs::write(libs.join("libclang-14.so.1"), b"").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(bin.join("bash"))
            .arg(script_path("prerequisites.sh"))
            .args(args)
            .env("PATH", &bin)
            .env("LAYERFIT_LIBCLANG_DIRS", &libs)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, out) = run(&["--check"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("missing: cmake"), "{out}");
    assert!(!calls.exists(), "--check called the package manager");

    let (code, out) = run(&[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("still missing after"), "{out}");
    let recorded = std::fs::read_to_string(&calls).unwrap();
    assert!(recorded.lines().any(|l| l == "update -qq"), "{recorded}");
    assert!(
        recorded.lines().any(|l| l == "install -y -qq cmake"),
        "{recorded}"
    );
}

fn script_path(name: &str) -> String {
    format!("{}/install/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// bindgen loads libclang.so, libclang.so.N, libclang-N.so or libclang-N.so.M; a folder that
/// holds only LLVM's C++ library (libclang-cpp.so.14, on many machines without libclang) is
/// reported as missing libclang.
#[test]
fn libclang_cpp_alone_is_not_libclang() {
    let check = |files: &[&str]| {
        let dir = common::tempdir(&format!("libclang-{}", files.join("+")));
        for f in files {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        let out = Command::new("bash")
            .arg(script_path("prerequisites.sh"))
            .arg("--check")
            .env("LAYERFIT_LIBCLANG_DIRS", &dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        let missing_line = text
            .lines()
            .find(|l| l.starts_with("prerequisites: missing:"))
            .unwrap_or("")
            .to_string();
        missing_line.split_whitespace().any(|w| w == "libclang")
    };
    assert!(check(&["libclang-cpp.so.14"]));
    assert!(check(&[]));
    assert!(!check(&["libclang-cpp.so.14", "libclang-14.so.1"]));
    assert!(!check(&["libclang.so"]));
    assert!(!check(&["libclang.so.14.0.6"]));
}
