//! Described machines whose GPU shares the RAM (Apple silicon, APUs) and GPUs described as
//! `NAME:VRAM`, through the binary: the GPU's memory is the machine's RAM, its budget is the
//! platform's rule (Metal's working set on a Mac), and the RAM is counted once.

mod common;

use serde_json::Value;

const GIB: u64 = 1 << 30;

fn run(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

fn hardware(args: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["hardware"];
    a.extend_from_slice(args);
    a.push("--json");
    let (code, out, err) = run(&a);
    (code, serde_json::from_str(&out).unwrap_or(Value::Null), err)
}

#[test]
fn ram_sets_an_apple_gpus_memory_and_metal_caps_what_it_may_use() {
    let (code, d, err) = hardware(&["--gpu", "Apple M2", "--ram", "16G"]);
    assert_eq!(code, 0, "{err}");
    let g = &d["gpus"][0];
    assert_eq!(g["name"], "Apple M2");
    assert_eq!(g["unified_memory"], true);
    assert_eq!(g["vram_total_bytes"].as_u64(), Some(16 * GIB));
    // Metal's working set on a 16 GiB Mac: 2/3 (10922.67 MiB in llama.cpp's logs).
    assert_eq!(g["vram_free_bytes"].as_u64(), Some(16 * GIB / 3 * 2));
    assert_eq!(d["ram"]["total_bytes"].as_u64(), Some(16 * GIB));

    // A size in the name is the machine's RAM too.
    let (code, d, _) = hardware(&["--gpu", "Apple M4 Pro 48GB"]);
    assert_eq!(code, 0);
    assert_eq!(d["ram"]["total_bytes"].as_u64(), Some(48 * GIB));
    assert_eq!(d["gpus"][0]["vram_free_bytes"].as_u64(), Some(36 * GIB));
}

#[test]
fn an_apple_gpu_without_its_memory_or_with_two_sizes_is_bad_input() {
    let (code, _, err) = hardware(&["--gpu", "Apple M2"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--ram 8G") && err.contains("8, 16, 24"),
        "{err}"
    );
    let (code, _, err) = hardware(&["--gpu", "Apple M2 16GB", "--ram", "32G"]);
    assert_eq!(code, 2);
    assert!(err.contains("16 GiB") && err.contains("32 GiB"), "{err}");
}

#[test]
fn a_14b_model_that_would_not_load_on_a_16gb_m3_is_not_compatible() {
    let (code, out, err) = run(&[
        "plan",
        "--model",
        "qwen2.5-coder:14b-q4_k_m",
        "--gpu",
        "Apple M3 16GB",
        "--json",
    ]);
    assert_eq!(code, 10, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let p = &d["plan"];
    assert_eq!(p["verdict"], "degraded");
    let gpu = &p["devices"][0];
    assert_eq!(gpu["device"], "Apple M3");
    let budget = gpu["budget_bytes"].as_u64().unwrap();
    // Metal's working set (2/3 of 16 GiB) less the 512 MiB Metal keeps for itself.
    assert_eq!(gpu["backend"], "metal");
    let reserve = gpu["backend_reserve_bytes"].as_u64().unwrap();
    assert_eq!(reserve, 512 << 20);
    assert_eq!(budget, 16 * GIB / 3 * 2 - reserve);
    assert!(gpu["total_bytes"].as_u64().unwrap() <= budget);
    // The GPU's share, its back-end reserve included, is charged to RAM once: the GPU's use
    // plus the CPU's fits the RAM budget.
    let cpu = &p["devices"][1];
    assert_eq!(cpu["device"], "CPU");
    assert!(
        gpu["total_bytes"].as_u64().unwrap() + reserve + cpu["total_bytes"].as_u64().unwrap()
            <= cpu["budget_bytes"].as_u64().unwrap()
    );
}

#[test]
fn name_vram_describes_any_gpu_with_unknown_speed() {
    // A table row with its memory stated: an APU's raised GTT limit.
    let (code, d, err) = hardware(&["--gpu", "Radeon 890M:16G", "--ram", "32G"]);
    assert_eq!(code, 0, "{err}");
    let g = &d["gpus"][0];
    assert_eq!(g["name"], "Radeon 890M");
    assert_eq!(g["vendor"], "amd");
    assert_eq!(g["unified_memory"], true);
    assert_eq!(g["vram_total_bytes"].as_u64(), Some(16 * GIB));
    assert!(g["bandwidth_gbps"].is_null());
    // Without the size, the driver's default: half of RAM.
    let (_, d, _) = hardware(&["--gpu", "Radeon 890M", "--ram", "32G"]);
    assert_eq!(d["gpus"][0]["vram_free_bytes"].as_u64(), Some(16 * GIB));

    // Anything else: its name and memory; bandwidth and compute unknown, and the plan says so.
    let (code, d, _) = hardware(&["--gpu", "Voodoo 9 Ultra:12G"]);
    assert_eq!(code, 0);
    let g = &d["gpus"][0];
    assert_eq!(
        (g["name"].as_str(), g["vendor"].as_str()),
        (Some("Voodoo 9 Ultra"), Some("other"))
    );
    assert_eq!(g["vram_total_bytes"].as_u64(), Some(12 * GIB));
    assert!(g["bandwidth_gbps"].is_null() && g["fp16_tflops"].is_null());
    let m = common::gemma3();
    let (code, out, err) = run(&[
        "plan",
        "--model",
        m.to_str().unwrap(),
        "--gpu",
        "Voodoo 9 Ultra:12G",
        "--ram",
        "16G",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    // The speed's basis, wherever the plan keeps it, states the assumption.
    let said = |v: &Value| {
        v.to_string()
            .contains("Voodoo 9 Ultra has no bandwidth figure: assumed")
    };
    assert!(said(&plan["plan"]), "{out}");
}

#[test]
fn an_unknown_name_is_one_line_with_the_nearest_rows() {
    let (code, _, err) = hardware(&["--gpu", "RTX 4065"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: unknown GPU 'RTX 4065'"), "{err}");
    assert!(err.contains("nearest: RTX 4060"), "{err}");
    let (code, _, err) = hardware(&["--gpu", "Voodoo:0G"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_description_accepts_every_field_the_table_has() {
    let dir = std::env::temp_dir().join(format!("layerfit-unified-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("m.yaml");
    std::fs::write(
        &f,
        "ram: 64G\ngpus:\n  - name: Future Card\n    aliases: [FC]\n    vendor: nvidia\n    vram_gib: 20\n    bandwidth_gbps: 700\n    fp16_tflops: 40.5\n    compute_capability: \"12.0\"\n    architecture: Blackwell 2.0\n    unified_memory: false\n    memory_options_gib: []\n    source: a datasheet\n",
    )
    .unwrap();
    let (code, d, err) = hardware(&["--hardware", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let g = &d["gpus"][0];
    assert_eq!(g["vendor"], "nvidia");
    assert_eq!(g["vram_total_bytes"].as_u64(), Some(20 * GIB));
    assert_eq!(g["fp16_tflops"].as_f64(), Some(40.5));
    assert_eq!(g["compute_capability"], "12.0");
    assert_eq!(g["architecture"], "Blackwell 2.0");
    assert!(d["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "Future Card: figures from a datasheet"));
    // A described Mac: ram is its GPU's memory.
    std::fs::write(&f, "ram: 36G\ngpus: [{name: Apple M3 Max}]\n").unwrap();
    let (code, d, err) = hardware(&["--hardware", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d["gpus"][0]["name"], "Apple M3 Max (30-core GPU)");
    assert_eq!(d["gpus"][0]["vram_free_bytes"].as_u64(), Some(27 * GIB));
    std::fs::remove_dir_all(&dir).unwrap();
}
