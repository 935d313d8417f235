//! Profiles, variant search, MoE expert placement and the emitted configs, through the
//! binary and the library: every emitted config parses back into the same plan.

mod common;

use layerfit::catalog;
use layerfit::emit::{OllamaConfig, RunFile, RunSettings};
use layerfit::model_source::resolve;
use layerfit::plan::{plan, plan_at, PlanInput, Requirements, Verdict};
use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

fn catalog_input(name: &str) -> PlanInput {
    let src = resolve(name, &common::tempdir("empty-models"))
        .unwrap()
        .remove(0);
    src.plan_input(&["avx2".to_string()]).unwrap()
}

#[test]
fn every_profile_plans_on_its_target_machine() {
    for p in layerfit::profile::builtin().unwrap() {
        let (code, out, err) = run(&["plan", "--profile", &p.name, "--on-target", "--json"]);
        assert!([0, 10, 20].contains(&code), "{}: {code} {err}", p.name);
        let d: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(d["profile"], p.name.as_str());
        // The context is the profile's, never lowered.
        assert_eq!(
            d["plan"]["context"].as_u64(),
            Some(p.min_context),
            "{}",
            p.name
        );
        assert!(!d["candidates"].as_array().unwrap().is_empty());
    }
    // Seed 001's hybrid tier: the 7B coder at 32K fits an 8 GB card entirely (the seed
    // assumed 16 GB of KV cache and put 12 of 32 layers on the CPU).
    let (code, out, _) = run(&["plan", "--profile", "hybrid_8gb", "--on-target", "--json"]);
    assert_eq!(code, 0);
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["model"], "qwen2.5-coder:7b-q4_k_m");
    assert_eq!(d["plan"]["n_gpu_layers"], 29);
    // f16 fits too; q8_0 is within measurement noise of it and faster.
    assert_eq!(d["plan"]["kv_type"], "q8_0");
    // Seed 004: SmolLM2 at 32K inside 512 MB. With one output per sequence the compute
    // buffer is small enough that the q8_0 cache fits but for 9.42 MiB of mapped weights,
    // which the ranking prefers to the lossier q4_0 cache (tests/planner.rs).
    let (code, out, _) = run(&[
        "plan",
        "--profile",
        "chromebook_512mb",
        "--on-target",
        "--json",
    ]);
    assert_eq!(code, 10);
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["plan"]["kv_type"], "q8_0");
    assert!(d["plan"]["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["kind"] == "weights_paged"));
    assert!(d["plan"]["ram"]["budget_bytes"].as_u64().unwrap() <= 512 << 20);
}

#[test]
fn variant_search_picks_the_best_quality_that_fits_and_names_what_would() {
    // No variant named: the best that fits a 6 GB GPU at 32K (f16 and q8_0 do not).
    let (code, out, err) = run(&[
        "plan",
        "--model",
        "qwen2.5-coder:7b",
        "--vram",
        "6G",
        "--ram",
        "6G",
        "--json",
    ]);
    assert!(code == 0 || code == 10, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let cands = d["candidates"].as_array().unwrap();
    // Candidates are the ranking: the first is the recommendation, fully on the GPU with
    // a q8_0 cache (as good as f16), not f16 weights or an f16 cache split with the CPU.
    assert_eq!(cands[0]["rank"], 1);
    assert_eq!(cands[0]["model"], d["model"]);
    assert_eq!(d["model"], "qwen2.5-coder:7b-q4_k_m");
    assert_eq!(cands[0]["verdict"], "compatible");
    assert_eq!(d["plan"]["n_gpu_layers"], 29);
    assert_eq!(d["plan"]["kv_type"], "q8_0");
    for c in &cands[1..] {
        assert!(
            c["lost_because"].as_str().is_some_and(|w| !w.is_empty()),
            "{c}"
        );
    }
    let f16 = cands
        .iter()
        .find(|c| c["model"] == "qwen2.5-coder:7b-f16")
        .unwrap();
    assert_eq!(f16["verdict"], "incompatible");
    assert_eq!(f16["lost_because"], "does not fit");
    // An explicit variant that does not fit says which smaller one would.
    let (code, out, _) = run(&[
        "plan",
        "--model",
        "qwen2.5-coder:7b-q8_0",
        "--vram",
        "2G",
        "--ram",
        "4G",
        "--json",
    ]);
    assert_eq!(code, 20);
    let d: Value = serde_json::from_str(&out).unwrap();
    let missing = d["plan"]["missing"].as_str().unwrap();
    assert!(missing.contains("would fit"), "{missing}");
}

#[test]
fn moe_experts_go_to_the_cpu_before_whole_blocks_do() {
    let inp = catalog_input("qwen3:30b-a3b-q4_k_m");
    let n = inp.shape.block_count;
    let m = common::machine("ram: 64G\ngpus: [{name: RTX 4080}]\n");
    let req = Requirements::default();
    let p = plan(&inp, &m, &req);
    assert_ne!(p.verdict, Verdict::Incompatible);
    assert_eq!(
        p.n_gpu_layers,
        n + 1,
        "every block keeps attention on the GPU"
    );
    assert!(p.n_cpu_moe > 0 && p.n_cpu_moe < n, "{}", p.n_cpu_moe);
    assert!(p
        .degradations
        .iter()
        .any(|d| d.kind == layerfit::plan::DegradationKind::ExpertsOnCpu));
    let gpu = &p.devices[0];
    assert!(gpu.total_bytes <= gpu.budget_bytes);
    // Minimal: one block fewer on the CPU does not fit.
    let tighter = plan_at(&inp, &m, &req, p.kv_type, n + 1, p.n_cpu_moe - 1);
    assert_eq!(tighter.verdict, Verdict::Incompatible);
    // The experts' bytes moved to the CPU side, the rest stayed.
    let experts: u64 = inp.weights.experts_per_block[..p.n_cpu_moe as usize]
        .iter()
        .map(|b| b.get())
        .sum();
    let cpu = p.devices.last().unwrap();
    assert_eq!(
        cpu.weights_bytes.get(),
        inp.weights.token_embd.get() + experts
    );
    // Without expert placement (Ollama), whole blocks leave the GPU instead.
    let blocks = plan(
        &inp,
        &m,
        &Requirements {
            allow_cpu_moe: false,
            ..Requirements::default()
        },
    );
    assert_eq!(blocks.n_cpu_moe, 0);
    assert!(blocks.n_gpu_layers < n + 1);
    // The emitted llama.cpp command carries --n-cpu-moe.
    let (code, out, err) = run(&[
        "plan",
        "--model",
        "qwen3:30b-a3b-q4_k_m",
        "--gpu",
        "RTX 4080",
        "--ram",
        "64G",
        "--emit",
        "llama-server",
    ]);
    // `--emit` exits with the verdict: experts on the CPU is a degradation.
    assert_eq!(code, 10, "{err}");
    assert!(
        out.contains(&format!("--n-cpu-moe {}", p.n_cpu_moe)),
        "{out}"
    );
}

/// Emit with the binary, parse back, re-plan at the parsed settings: the same plan.
#[test]
fn emitted_configs_round_trip_to_the_same_plan() {
    let g = common::gemma3();
    let g = g.to_str().unwrap();
    // Explicit threads: the plans are compared whole, and with the default thread count a
    // busy machine's load average (read a moment apart) would be part of them.
    let hw = ["--vram", "700M", "--ram", "8G", "--threads", "2"];
    let json = |extra: &[&str]| -> Value {
        let mut a = vec!["plan", "--model", g, "--json"];
        a.extend_from_slice(&hw);
        a.extend_from_slice(extra);
        let (code, out, err) = run(&a);
        assert!(code == 0 || code == 10, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let emit = |tool: &str| -> String {
        let mut a = vec!["plan", "--model", g, "--emit", tool];
        a.extend_from_slice(&hw);
        let (code, out, err) = run(&a);
        assert!(code == 0 || code == 10, "{err}");
        out
    };
    let planned = json(&[]);
    let replan = |s: &RunSettings| -> Value {
        let ngl = s.n_gpu_layers.to_string();
        let ctx = s.context.to_string();
        if s.gpu_unused {
            json(&["--dev", "none", "--ctx", &ctx, "--kv", &s.cache_type_k])
        } else {
            json(&["--ngl", &ngl, "--ctx", &ctx, "--kv", &s.cache_type_k])
        }
    };

    let server = emit("llama-server")
        .lines()
        .filter(|l| !l.starts_with("# "))
        .collect::<Vec<_>>()
        .join("\n");
    let args: Vec<String> = server.split_whitespace().map(String::from).collect();
    let s1 = RunSettings::from_llama_args(&args).unwrap();
    assert_eq!(s1.model.to_str().unwrap(), g);
    assert_eq!(replan(&s1)["plan"], planned["plan"]);

    let script = emit("ollama");
    let (modelfile, env) = OllamaConfig::parse_script(&script);
    assert!(modelfile.starts_with(&format!("FROM {g}")), "{modelfile}");
    assert!(script.contains("ollama create"));
    let s2 = RunSettings::from_ollama(&modelfile, &env).unwrap();
    assert_eq!(
        s2,
        RunSettings {
            tensor_split: vec![],
            gpu_unused: s1.n_gpu_layers == 0,
            ..s1.clone()
        }
    );
    // Ollama's num_gpu 0 hides the GPU, where llama.cpp's -ngl 0 still gives it the offload
    // buffers: at -ngl 0 the Ollama config is the `-dev none` plan.
    let expected_ollama = if s1.n_gpu_layers == 0 {
        json(&[
            "--dev",
            "none",
            "--ctx",
            &s1.context.to_string(),
            "--kv",
            &s1.cache_type_k,
        ])
    } else {
        planned.clone()
    };
    assert_eq!(replan(&s2)["plan"], expected_ollama["plan"]);

    let yaml = emit("profile");
    let f = RunFile::parse(&yaml).unwrap();
    assert_eq!(f.settings, s1);
    assert_eq!(
        serde_json::to_value(&f.expected).unwrap(),
        planned["plan"]["devices"]
    );
    assert_eq!(replan(&f.settings)["plan"], planned["plan"]);
}

#[test]
fn profiles_and_catalog_list_commands() {
    let (code, out, _) = run(&["profiles", "--json"]);
    assert_eq!(code, 0);
    #[derive(serde::Deserialize)]
    struct Profiles {
        schema_version: u32,
        profiles: Vec<ProfileRow>,
    }
    #[derive(serde::Deserialize)]
    struct ProfileRow {
        name: String,
    }
    let d: Profiles = serde_json::from_str(&out).unwrap();
    assert_eq!(d.schema_version, 1);
    let names: Vec<&str> = d.profiles.iter().map(|p| p.name.as_str()).collect();
    for want in [
        "hybrid_8gb",
        "basic_12gb",
        "standard_16gb",
        "premium_24gb",
        "chat_4gb_cpu",
        "workstation_4090",
        "lowram_mmap_7b",
        "chromebook_512mb",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let (code, out, _) = run(&["catalog", "list", "--json"]);
    assert_eq!(code, 0);
    #[derive(serde::Deserialize)]
    struct Catalog {
        entries: Vec<serde::de::IgnoredAny>,
    }
    let d: Catalog = serde_json::from_str(&out).unwrap();
    assert_eq!(d.entries.len(), catalog::entries().unwrap().len());
    let (code, _, err) = run(&["plan", "--profile", "no_such_profile"]);
    assert_eq!(code, 2);
    assert!(err.contains("no profile"), "{err}");
    let (code, _, err) = run(&["plan", "--model", "qwen2.5-coder:7b-q9_x"]);
    assert_eq!(code, 2);
    assert!(err.contains("no variant"), "{err}");
}
