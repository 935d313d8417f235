//! The answers a well-informed user would choose (issue: rank by the experience), each case
//! one that the earlier ranking got wrong, asserted through the binary's JSON.

mod common;

use serde_json::Value;

fn run(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

fn json(args: &[&str]) -> (i32, Value) {
    let (code, out, err) = run(args);
    let d = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, d)
}

fn hardware(tag: &str, yaml: &str) -> String {
    let p = common::tempdir(tag).join("machine.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

fn candidate<'a>(d: &'a Value, model: &str, kv: &str) -> &'a Value {
    d["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == model && c["kv_type"] == kv)
        .unwrap_or_else(|| panic!("{model} {kv} not among the candidates"))
}

#[test]
fn an_8gb_card_runs_a_quantized_7b_entirely_on_the_gpu_not_f16_split_with_the_cpu() {
    let (code, d) = json(&[
        "check-requirements",
        "--model",
        "qwen2.5-coder:7b",
        "--gpu",
        "RTX 3060 8GB",
        "--ram",
        "16G",
        "--json",
    ]);
    assert_eq!(code, 0, "{d}");
    assert_eq!(d["verdict"], "compatible");
    let plan = &d["plan"];
    assert_eq!(plan["gpu_blocks"], plan["block_count"], "fully on the GPU");
    assert!(plan["degradations"].as_array().unwrap().is_empty());
    // The Q4_K_M is compatible and ranked, with why it lost (not "not needed").
    let q4 = candidate(&d, "qwen2.5-coder:7b-q4_k_m", "q8_0");
    assert_eq!(q4["verdict"], "compatible");
    assert_eq!(q4["n_gpu_layers"], 29);
    assert!(q4["lost_because"]
        .as_str()
        .unwrap()
        .starts_with("lower quality"));
    // f16 weights split with the CPU rank below everything that fits the GPU. The split is
    // either whole blocks (`partial_offload`) or the feed-forward weights (`ffn_on_cpu`),
    // whichever is faster: with the CUDA reserve kept out of the 8 GiB budget, whole blocks
    // hold 12 of 28 and keeping every block's feed-forward on the CPU ranks first.
    let f16 = candidate(&d, "qwen2.5-coder:7b-f16", "f16");
    assert!(f16["rank"].as_u64().unwrap() > q4["rank"].as_u64().unwrap());
    assert!(f16["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "partial_offload" || k == "ffn_on_cpu"));
}

#[test]
fn a_q8_0_cache_fully_on_the_gpu_beats_an_f16_cache_split_with_the_cpu() {
    let (_, d) = json(&[
        "plan",
        "--model",
        "qwen2.5-coder:7b-q4_k_m",
        "--vram",
        "6G",
        "--ram",
        "16G",
        "--json",
    ]);
    assert_eq!(d["plan"]["kv_type"], "q8_0");
    assert_eq!(d["plan"]["n_gpu_layers"], 29);
    assert_eq!(d["plan"]["verdict"], "compatible");
    // The f16 cache needs a spill: whole blocks or feed-forward weights on the CPU.
    let f16 = candidate(&d, "qwen2.5-coder:7b-q4_k_m", "f16");
    let why = f16["lost_because"].as_str().unwrap();
    assert!(
        why.contains("partial_offload") || why.contains("ffn_on_cpu"),
        "{why}"
    );
}

#[test]
fn the_4090_workstation_takes_q8_0_on_the_gpu_over_f16_split() {
    let (_, d) = json(&[
        "plan",
        "--profile",
        "workstation_4090",
        "--on-target",
        "--json",
    ]);
    let plan = &d["plan"];
    assert_ne!(d["model"], "qwen3:8b-f16", "{}", d["model"]);
    assert_eq!(plan["gpu_blocks"], plan["block_count"]);
    let f16 = d["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == "qwen3:8b-f16")
        .unwrap();
    assert!(f16["rank"].as_u64().unwrap() > 1);
}

#[test]
fn without_a_model_check_requirements_ranks_the_tiers_and_no_gpu_tier_wins_on_a_slow_cpu() {
    // A laptop's memory bandwidth, described: on a faster CPU (30 GB/s and more) the 3B
    // coder at 32K is above the speed floor and its tier rightly wins.
    let cpu = hardware(
        "tiers-cpu",
        "ram: 16G\ncpu: {cores: 2, memory_bandwidth_gbps: 10}\n",
    );
    let (code, d) = json(&["check-requirements", "--hardware", &cpu, "--json"]);
    assert_eq!(code, 10, "{d}");
    let tiers = d["profiles"].as_array().unwrap();
    assert!(tiers.len() >= 8);
    assert_eq!(tiers[0]["profile"], d["profile"]);
    assert_eq!(tiers[0]["rank"], 1);
    assert_eq!(d["profile"], "chat_4gb_cpu");
    for t in &tiers[1..] {
        assert!(t["lost_because"].as_str().is_some(), "{t}");
    }
    // The GPU tiers are slower than reading speed on this CPU: below the speed floor.
    let premium = tiers
        .iter()
        .find(|t| t["profile"] == "premium_24gb")
        .unwrap();
    assert!(premium["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "below_speed_floor"));
    // The exit code is the recommendation's verdict.
    assert_eq!(d["verdict"], "degraded");

    // A workstation's memory bandwidth: a coder tier is fast enough on the CPU and wins.
    let fast = hardware(
        "tiers-fast-cpu",
        "ram: 16G\ncpu: {cores: 16, memory_bandwidth_gbps: 60}\n",
    );
    let (code, d) = json(&["check-requirements", "--hardware", &fast, "--json"]);
    assert_eq!(code, 10, "{d}");
    assert_ne!(d["profile"], "chat_4gb_cpu", "{d}");
    let winner = &d["profiles"][0];
    assert!(!winner["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == "below_speed_floor"));
}

/// Losing by the list's order is said as what it is: for models, listed after the
/// recommended one; for tiers, listed after the recommended tier, by name.
#[test]
fn losing_by_list_order_names_what_was_listed_first() {
    let (code, d) = json(&[
        "plan",
        "--ram",
        "32G",
        "--gpu",
        "RTX 4090",
        "--model",
        "qwen2.5-coder:7b-q4_k_m",
        "--model",
        "qwen2.5-coder:3b-q4_k_m",
        "--json",
    ]);
    assert!(code == 0 || code == 10, "{d}");
    let three_b = candidate(&d, "qwen2.5-coder:3b-q4_k_m", "q8_0");
    assert_eq!(
        three_b["lost_because"], "listed after the recommended model, which runs as well",
        "{d}"
    );

    let m = hardware("tiers-4090", "ram: 64G\ngpus: [{name: RTX 4090}]\n");
    let (_, d) = json(&["check-requirements", "--hardware", &m, "--json"]);
    let tiers = d["profiles"].as_array().unwrap();
    let first = tiers[0]["profile"].as_str().unwrap();
    let by_order: Vec<&str> = tiers
        .iter()
        .filter_map(|t| t["lost_because"].as_str())
        .filter(|w| w.contains("listed after"))
        .collect();
    assert!(!by_order.is_empty(), "{d}");
    for why in by_order {
        assert_eq!(
            why,
            format!("a tier listed after {first}, which runs as well"),
            "{d}"
        );
    }
}

#[test]
fn an_application_ships_its_own_tiers_in_layerfit_yaml() {
    let dir = common::tempdir("app-tiers");
    std::fs::write(
        dir.join("layerfit.yaml"),
        "profiles: [chromebook_512mb, chat_4gb_cpu]\n",
    )
    .unwrap();
    let out = common::isolate(&mut std::process::Command::new(env!(
        "CARGO_BIN_EXE_layerfit"
    )))
    .args(["check-requirements", "--ram", "16G", "--no-gpu", "--json"])
    .current_dir(&dir)
    .env_remove("LAYERFIT_HARDWARE")
    .output()
    .unwrap();
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = d["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"chat_4gb_cpu") && names.contains(&"chromebook_512mb"));
    // A broken tier list is bad input naming the file.
    for bad in ["profiles: [no_such_tier]\n", "tiers: 3\n", "profiles: []\n"] {
        std::fs::write(dir.join("layerfit.yaml"), bad).unwrap();
        let out = common::isolate(&mut std::process::Command::new(env!(
            "CARGO_BIN_EXE_layerfit"
        )))
        .args(["check-requirements", "--ram", "16G", "--no-gpu"])
        .current_dir(&dir)
        .env_remove("LAYERFIT_HARDWARE")
        .output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("layerfit.yaml"),
            "{err}"
        );
    }
}

#[test]
fn a_cpu_build_with_a_described_rtx_4090_shows_the_gpu_plan_and_runs_the_cpu() {
    if cfg!(feature = "cuda") || cfg!(feature = "vulkan") {
        return; // this case is about a binary without a GPU back-end
    }
    let s = common::smollm2();
    let s = s.to_str().unwrap();
    let (_, d) = json(&["plan", "--model", s, "--gpu", "RTX 4090", "--json"]);
    assert_eq!(d["plan"]["n_gpu_layers"], 31, "the plan for a CUDA build");
    let mine = &d["this_binary"];
    assert_eq!(mine["unusable"][0]["needs_feature"], "cuda");
    assert_eq!(mine["plan"]["n_gpu_layers"], 0);
    assert!(mine["plan"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .all(|dev| dev["is_gpu"] == false));
    // run plans only what this binary drives: the CPU, said once, and no drift.
    let (code, out, err) = run(&[
        "run",
        "--model",
        s,
        "--gpu",
        "RTX 4090",
        "--ctx",
        "2048",
        "--prompt",
        "Hi",
        "--max-tokens",
        "2",
        "--accept-degraded",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no CUDA back-end"), "{err}");
    assert!(!err.contains("drift") && !out.contains("drift"), "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    for c in d["self_check"].as_array().unwrap() {
        assert_eq!(c["device"], "CPU", "{c}");
        assert_eq!(c["within_5_percent"], true, "{c}");
    }
}

#[test]
fn plan_and_run_name_the_same_variant() {
    // SmolLM2 without a variant: Q8_0 (as good as f16, faster) is the answer, though only
    // the Q4_1 file is on disk; run gives the same answer and names the file it could run.
    let (_, d) = json(&["plan", "--model", "smollm2:135m", "--json"]);
    assert_eq!(d["model"], "smollm2:135m-q8_0");
    let (code, _, err) = run(&["run", "--model", "smollm2:135m", "--prompt", "Hi"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("smollm2:135m-q8_0 is the recommendation"),
        "{err}"
    );
    assert!(err.contains("--model smollm2:135m-q4_1"), "{err}");
    let (code, _, err) = run(&[
        "run",
        "--model",
        "smollm2:135m-q4_1",
        "--ctx",
        "2048",
        "--prompt",
        "Hi",
        "--max-tokens",
        "2",
        "--accept-degraded",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("running smollm2:135m-q4_1 (q4_1)"), "{err}");
}

#[test]
fn an_incomplete_file_is_flagged_and_run_refuses_it() {
    let dir = common::tempdir("partial");
    let partial = dir.join("gemma-partial.gguf");
    let bytes = std::fs::read(common::gemma3()).unwrap();
    std::fs::write(&partial, &bytes[..bytes.len() / 3]).unwrap();
    let p = partial.to_str().unwrap();
    let (code, d) = json(&["plan", "--model", p, "--json"]);
    assert_eq!(code, 20, "{d}");
    assert_eq!(d["plan"]["verdict"], "incompatible");
    let missing = d["plan"]["missing"].as_str().unwrap();
    assert!(missing.contains("the file is incomplete"), "{missing}");
    let (code, _, err) = run(&["run", "--model", p, "--prompt", "Hi"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("incomplete"), "{err}");
}

#[test]
fn a_run_file_is_replanned_and_what_no_longer_fits_is_refused() {
    let s = common::smollm2();
    let (_, yaml, _) = run(&[
        "plan",
        "--model",
        s.to_str().unwrap(),
        "--ctx",
        "4096",
        "--emit",
        "profile",
    ]);
    let file = common::tempdir("replan").join("plan.yaml");
    // The same file with a 4M-token context: valid syntax, but no machine here holds it.
    std::fs::write(&file, yaml.replace("context: 4096", "context: 4000000")).unwrap();
    let (code, _, err) = run(&[
        "run",
        "--plan",
        file.to_str().unwrap(),
        "--prompt",
        "Hi",
        "--accept-degraded",
    ]);
    assert_eq!(code, 20, "{err}");
    assert!(err.contains("no longer fit"), "{err}");
}

#[test]
fn tips_agree_with_the_verdict_and_never_tell_a_described_machine_to_close_programs() {
    // Incompatible for RAM: no --mlock tip.
    let tiny = hardware("tips-tiny", "ram: 100M\n");
    let g = common::gemma3();
    let (code, d) = json(&[
        "check-requirements",
        "--model",
        g.to_str().unwrap(),
        "--hardware",
        &tiny,
        "--json",
    ]);
    assert_eq!(code, 20);
    for t in d["tips"].as_array().unwrap() {
        let t = t.as_str().unwrap();
        assert!(!t.contains("mlock"), "{t}");
        assert!(!t.contains("close"), "{t}");
    }
    // Thin headroom on a described machine: no "close other programs".
    let thin = hardware("tips-thin", "ram: 2G\n");
    let (_, d) = json(&[
        "check-requirements",
        "--model",
        g.to_str().unwrap(),
        "--ctx",
        "256",
        "--hardware",
        &thin,
        "--json",
    ]);
    for t in d["tips"].as_array().unwrap() {
        assert!(!t.as_str().unwrap().contains("close"), "{t}");
    }
}

#[test]
fn a_download_must_fit_on_the_models_disk() {
    let hw = hardware(
        "disk",
        "ram: 32G\ndisk_free: 1G\ngpus: [{name: RTX 4090}]\n",
    );
    let (code, d) = json(&[
        "plan",
        "--model",
        "qwen2.5-coder:7b-q4_k_m",
        "--hardware",
        &hw,
        "--json",
    ]);
    assert_eq!(code, 20, "{d}");
    let missing = d["plan"]["missing"].as_str().unwrap();
    assert!(missing.contains("the download needs"), "{missing}");
}

#[test]
fn max_context_answers_per_cache_type_and_keeps_the_plan() {
    let g = common::gemma3();
    let (_, d) = json(&[
        "plan",
        "--model",
        g.to_str().unwrap(),
        "--ram",
        "2G",
        "--ctx",
        "4096",
        "--max-context",
        "--json",
    ]);
    assert_eq!(
        d["plan"]["context"], 4096,
        "the required context is unchanged"
    );
    let m = &d["max_context"];
    let f16 = m["f16"].as_u64().unwrap();
    let q8 = m["q8_0"].as_u64().unwrap();
    let q4 = m["q4_0"].as_u64().unwrap();
    assert!(f16 % 256 == 0 && q8 % 256 == 0 && q4 % 256 == 0);
    assert!(f16 >= 4096 && q8 >= f16 && q4 >= q8, "{m}");
    // The largest context is a plan that fits, and 256 more does not (unless capped at the
    // trained context).
    let at = |ctx: u64| {
        let c = ctx.to_string();
        json(&[
            "plan",
            "--model",
            g.to_str().unwrap(),
            "--ram",
            "2G",
            "--ctx",
            &c,
            "--kv",
            "f16",
            "--json",
        ])
        .1["plan"]["verdict"]
            .clone()
    };
    assert_ne!(at(f16), "incompatible");
    if f16 < 32768 {
        assert_eq!(at(f16 + 256), "incompatible");
    }
    // The table's rows come best first, as `--kv` lists the types: f16, q8_0, q4_0.
    let (_, text, _) = run(&[
        "plan",
        "--model",
        g.to_str().unwrap(),
        "--ram",
        "2G",
        "--ctx",
        "4096",
        "--max-context",
    ]);
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("| KV cache"))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .filter(|c| ["f16", "q8_0", "q4_0"].contains(c))
        .collect();
    assert_eq!(rows, ["f16", "q8_0", "q4_0"], "{text}");
}

#[test]
fn an_intel_igpu_without_vram_files_draws_on_ram() {
    use layerfit::bytes::Bytes;
    use layerfit::hardware::{Gpu, Vendor};
    use layerfit::plan::{Budgets, Requirements};
    let mut m = common::machine("ram: 16G\n");
    let mut g = Gpu::new(
        "Intel UHD 770".into(),
        Vendor::Intel,
        Bytes::ZERO,
        Bytes::ZERO,
        "sysfs",
    );
    g.unified_memory = true;
    m.gpus.push(g);
    let b = Budgets::from_snapshot(&m, &Requirements::default());
    // Driven by Vulkan, whose context keeps no device memory (hardware::backend).
    assert_eq!(b.gpus[0].budget, b.ram);
    assert!(b.ram > Bytes(10 << 30));
}

#[test]
fn the_mmap_route_runs_when_only_the_anonymous_memory_fits_and_no_repack_is_real() {
    // Seed 003: Mistral 7B Q4_K_M at 32K on a 5 GB machine: the whole plan does not fit,
    // its anonymous memory does; the weights that do not fit are re-read from disk.
    // A described AVX2 machine: its CPU repacks q4_K weights (anonymous memory) unless told not to.
    let m = hardware(
        "mmap-route",
        "ram: 5G\ncpu: {cores: 4, memory_bandwidth_gbps: 40, simd: [avx2]}\n",
    );
    let (code, d) = json(&[
        "plan",
        "--profile",
        "lowram_mmap_7b",
        "--hardware",
        &m,
        "--json",
    ]);
    assert_eq!(code, 10, "{d}");
    let plan = &d["plan"];
    assert_eq!(plan["no_repack"], true);
    // Bounded by the disk: 1.85 GiB per token at the fastest consumer NVMe's 7.45 GB/s.
    let high = plan["speed"]["decode_tokens_per_s_high"].as_f64().unwrap();
    assert!(high < 7.45e9 / (1.85 * (1u64 << 30) as f64), "{high}");
    let kinds: Vec<&str> = plan["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"weights_paged") && kinds.contains(&"no_repack"),
        "{kinds:?}"
    );
    assert!(kinds.contains(&"below_speed_floor"), "{kinds:?}");
    assert!(plan["ram"]["anonymous_bytes"].as_u64() <= plan["ram"]["budget_bytes"].as_u64());

    // --no-repack on the real engine: Gemma's q4_K weights are not copied into CPU_REPACK
    // buffers, and the self-check against the plan holds.
    let g = common::gemma3();
    let (_, yaml, _) = run(&[
        "plan",
        "--model",
        g.to_str().unwrap(),
        "--ctx",
        "2048",
        "--emit",
        "profile",
    ]);
    let dir = common::tempdir("norepack");
    let cpu_weights = |yaml: &str, name: &str| {
        let f = dir.join(name);
        std::fs::write(&f, yaml).unwrap();
        let (code, d) = json(&[
            "run",
            "--plan",
            f.to_str().unwrap(),
            "--prompt",
            "Hi",
            "--max-tokens",
            "2",
            "--accept-degraded",
            "--json",
        ]);
        assert_eq!(code, 0, "{d}");
        for c in d["self_check"].as_array().unwrap() {
            assert_eq!(c["within_5_percent"], true, "{c}");
        }
        d["self_check"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["what"] == "weights")
            .unwrap()["allocated"]
            .as_u64()
            .unwrap()
    };
    assert!(yaml.contains("no_repack: false"), "{yaml}");
    let repacked = cpu_weights(&yaml, "repack.yaml");
    let mapped = cpu_weights(
        &yaml.replace("no_repack: false", "no_repack: true"),
        "mapped.yaml",
    );
    // Gemma 3 270M repacks 12.66 MiB of q4_K weights (docs/memory-model.md).
    assert_eq!(repacked - mapped, 13_271_040, "{repacked} vs {mapped}");
}

#[test]
fn on_target_with_hardware_flags_is_bad_usage_not_a_silent_choice() {
    let (code, _, err) = run(&[
        "plan",
        "--profile",
        "hybrid_8gb",
        "--on-target",
        "--ram",
        "4G",
        "--json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--on-target") && err.contains("--ram"),
        "{err}"
    );
}
