//! `plan` and `check-requirements` through the binary: the exit-code contract (0 compatible,
//! 10 degraded, 20 incompatible, 2 bad input) and the JSON documents, parsed.

mod common;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

#[test]
fn check_requirements_exit_codes_and_json() {
    let g = common::gemma3();
    let g = g.to_str().unwrap();
    // Compatible: a described GPU holds everything.
    let (code, out, err) = run(&[
        "check-requirements",
        "--model",
        g,
        "--gpu",
        "RTX 3060",
        "--ram",
        "16G",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["verdict"], "compatible");
    assert_eq!(d["hardware"]["gpus"][0]["name"], "RTX 3060");
    assert_eq!(d["plan"]["n_gpu_layers"], 19);
    assert_eq!(d["plan"]["context"], 32768);
    assert!(d["warnings"].as_array().unwrap().is_empty());

    // Degraded: CPU only.
    let (code, out, _) = run(&[
        "check-requirements",
        "--model",
        g,
        "--no-gpu",
        "--ram",
        "4G",
        "--json",
    ]);
    assert_eq!(code, 10);
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["verdict"], "degraded");
    assert!(d["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("CPU")));

    // Incompatible: not enough memory anywhere; the context is not lowered.
    let (code, out, _) = run(&[
        "check-requirements",
        "--model",
        g,
        "--no-gpu",
        "--ram",
        "100M",
        "--json",
    ]);
    assert_eq!(code, 20);
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["verdict"], "incompatible");
    assert_eq!(d["plan"]["context"], 32768);
    assert!(d["plan"]["missing"].as_str().unwrap().contains("more RAM"));

    // Bad input.
    let (code, _, _) = run(&["check-requirements", "--model", "/nonexistent.gguf"]);
    assert_eq!(code, 2);
    // No model and no profile is not bad input: it ranks the tiers (tests/recommendations.rs).
    let (code, out, err) = run(&["check-requirements", "--ram", "16G", "--no-gpu", "--json"]);
    assert_eq!(code, 10, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert!(d["profiles"].as_array().is_some_and(|p| p.len() >= 8));
}

#[test]
fn plan_emits_a_runnable_llama_cpp_command() {
    let s = common::smollm2();
    let (code, out, err) = run(&[
        "plan",
        "--model",
        s.to_str().unwrap(),
        "--gpu",
        "RTX 3060",
        "--emit",
        "llama-server",
    ]);
    // `--emit` exits with the verdict: 32K is beyond SmolLM2's trained 8K (degraded).
    assert_eq!(code, 10, "{err}");
    // The warnings are part of the answer: comment lines before the command.
    let command = out
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap_or_default();
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[0], "llama-server");
    let flag = |f: &str| {
        args.iter()
            .position(|a| *a == f)
            .map(|i| args[i + 1])
            .unwrap()
    };
    assert_eq!(flag("-c"), "32768");
    assert_eq!(flag("-ngl"), "31");
    assert_eq!(
        flag("-ctk"),
        "q8_0",
        "as good as f16 (KLD within noise) and faster"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("# warning: ") && l.contains("beyond the 8192 tokens")),
        "the warnings are in the emitted config: {out}"
    );
    assert!(!err.contains("warning:"), "{err}");

    let (code, _, err) = run(&[
        "plan",
        "--model",
        s.to_str().unwrap(),
        "--no-gpu",
        "--ram",
        "256M",
        "--emit",
        "llama-cli",
    ]);
    assert_eq!(code, 20, "{err}");
    assert!(err.contains("more RAM"));
}

/// The GPU rows of `plan --json`, typed (docs/json-schema.md).
#[derive(serde::Deserialize)]
struct PlanDoc {
    plan: PlanFigures,
}

#[derive(serde::Deserialize)]
struct PlanFigures {
    devices: Vec<DeviceRow>,
}

#[derive(serde::Deserialize)]
struct DeviceRow {
    device: String,
    is_gpu: bool,
    budget_bytes: u64,
    backend: Option<String>,
    backend_reserve_bytes: u64,
}

fn gpu_rows(args: &[&str]) -> Vec<DeviceRow> {
    let (code, out, err) = run(args);
    assert!(code == 0 || code == 10, "{code}: {err}");
    let doc: PlanDoc = serde_json::from_str(&out).unwrap();
    doc.plan.devices.into_iter().filter(|d| d.is_gpu).collect()
}

const MIB: u64 = 1 << 20;

#[test]
fn a_described_gpus_budget_is_its_vram_less_the_backend_reserve_and_the_margin() {
    let g = common::gemma3();
    let rows = gpu_rows(&[
        "plan",
        "--model",
        g.to_str().unwrap(),
        "--gpu",
        "RTX 4060",
        "--json",
    ]);
    let gpu = &rows[0];
    assert_eq!(gpu.device, "RTX 4060");
    // A described NVIDIA card is planned for CUDA (what install.sh builds for it), whose
    // context takes 457 MiB before any llama.cpp buffer; the 512 MiB margin comes on top.
    assert_eq!(gpu.backend.as_deref(), Some("cuda"));
    assert_eq!(gpu.backend_reserve_bytes, 457 * MIB);
    assert_eq!(
        gpu.budget_bytes,
        8192 * MIB - gpu.backend_reserve_bytes - layerfit::plan::VRAM_MARGIN.get()
    );
}

#[test]
fn a_servers_offer_already_lacks_its_backends_context() {
    // A described RPC server offers what its running back-end reads (context already out):
    // the budget is the offer, with no reserve and no margin kept again.
    let dir = common::tempdir("rpc-offer");
    let file = dir.join("cluster.yaml");
    std::fs::write(
        &file,
        "ram: 16G\nrpc:\n  - endpoint: 10.0.0.2:50052\n    devices:\n      - {name: RTX 3090, memory: 24G, memory_free: 20G}\n",
    )
    .unwrap();
    let g = common::gemma3();
    let rows = gpu_rows(&[
        "plan",
        "--model",
        g.to_str().unwrap(),
        "--hardware",
        file.to_str().unwrap(),
        // Every layer on the server (this machine alone may be faster, and recommended).
        "--ngl",
        "19",
        "--json",
    ]);
    let gpu = &rows[0];
    assert_eq!(gpu.device, "RPC0");
    assert_eq!(gpu.backend.as_deref(), Some("rpc"));
    assert_eq!(gpu.backend_reserve_bytes, 0);
    assert_eq!(gpu.budget_bytes, 20 * 1024 * MIB);
}

/// `plan --emit ollama` re-plans with whole blocks when the plan keeps experts on the CPU
/// (Ollama cannot), and whole blocks can rank another variant first: here qwen3:30b-a3b's
/// q4_k_m with experts on the CPU of a 13 GB card (`NAME:VRAM`; the 12 GB RTX 3060 keeps
/// q4_k_m both ways since the CUDA context is in its budget), then q5_k_m in whole blocks. The emitted
/// Modelfile never switches without a `# note:` naming both variants.
#[test]
fn emit_ollama_never_switches_variants_silently() {
    let machine = ["--gpu", "RTX 3060:13G", "--ram", "32G"];
    let plan = |extra: &[&str]| {
        let args = [&["plan", "--model", "qwen3:30b-a3b"][..], &machine, extra].concat();
        let (code, out, err) = run(&args);
        assert!(code == 0 || code == 10, "{args:?}: {err}");
        out
    };
    let d: Value = serde_json::from_str(&plan(&["--json"])).unwrap();
    let planned = d["model"].as_str().unwrap().to_string();
    assert!(d["plan"]["n_cpu_moe"].as_u64().unwrap() > 0, "{d}");
    let script = plan(&["--emit", "ollama"]);
    let from = script
        .lines()
        .find_map(|l| l.strip_prefix("FROM "))
        .unwrap_or_else(|| panic!("no FROM line:\n{script}"));
    assert_ne!(from, planned, "the case this test is about:\n{script}");
    let note = script
        .lines()
        .find(|l| l.starts_with("# note: variant switched"))
        .unwrap_or_else(|| panic!("switched silently:\n{script}"));
    assert!(note.contains(from) && note.contains(&planned), "{note}");
}
