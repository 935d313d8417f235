//! Partial GPU offload proven on a real Vulkan device: Mesa's lavapipe (llvmpipe), a software
//! Vulkan implementation, runs llama.cpp's Vulkan backend on the CPU. For the real models and
//! synthetic ones, at -ngl 0, 1, a middle value and all layers, and f16/q8_0/q4_0 caches,
//! layerfit's plan for the probed device must equal what llama.cpp assigns to `Vulkan0` and to
//! the host: weights and KV cache to the byte, compute buffers within 5% or 16 MiB.
//!
//! Built only with `--features vulkan` (`tests/run.sh` runs it after preparing the toolchain
//! with `install/vulkan-toolchain.sh`); the default CPU build compiles it to nothing.
#![cfg(feature = "vulkan")]

mod common;

use layerfit::bytes::Bytes;
use layerfit::engine::measure::{measure, MeasureRequest, Measurement};
use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::WriteValue;
use layerfit::hardware::probe::{probe, ProbeOptions};
use layerfit::hardware::Snapshot;
use layerfit::model_source::ModelSource;
use layerfit::plan::{cache_config, plan_at, Plan, Requirements};
use std::path::Path;
use std::sync::OnceLock;

const TYPES: [GgmlType; 3] = [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];
const MIB: f64 = 1048576.0;

/// This machine probed with the software-device opt-in, once per process and before anything
/// initialises llama.cpp (the opt-in must be in place when the Vulkan backend starts).
fn machine() -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let snap = probe(&ProbeOptions {
            software_gpu: true,
            bandwidth: false,
            ..ProbeOptions::default()
        });
        assert_eq!(
            snap.gpus.len(),
            1,
            "expected lavapipe as the one GPU: {:#?}",
            snap
        );
        let g = &snap.gpus[0];
        assert!(g.software && g.unified_memory, "{g:?}");
        assert_eq!(g.engine_device.as_deref(), Some("Vulkan0"));
        snap
    })
}

/// One compared configuration: (what, planned, measured) for each figure.
struct Row {
    what: String,
    figures: Vec<(&'static str, Bytes, Bytes)>,
}

fn within(planned: Bytes, measured: Bytes) -> bool {
    let d = (planned.get() as f64 - measured.get() as f64).abs();
    d <= 16.0 * MIB || d <= 0.05 * measured.get() as f64
}

fn split(m: &Measurement) -> [(Bytes, Bytes, Bytes); 2] {
    let mut sides = [(Bytes::ZERO, Bytes::ZERO, Bytes::ZERO); 2];
    for b in &m.buffers {
        let side = &mut sides[b.is_host() as usize];
        side.0 += b.model;
        side.1 += b.context;
        side.2 += b.compute;
    }
    sides
}

/// Plans `path` at every `ngls` x cache type and compares each device with llama.cpp.
fn assert_offload_matches(path: &Path, n_ctx: u64, ngls: &[u32]) -> Vec<Row> {
    let snap = machine();
    let src = ModelSource::from_file(path).unwrap();
    let inp = src.plan_input(&snap.cpu.simd).unwrap();
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for &ngl in ngls {
        for t in TYPES {
            let req = Requirements {
                min_context: n_ctx,
                ..Requirements::default()
            };
            let p: Plan = plan_at(&inp, snap, &req, t, ngl, 0);
            let m = measure(
                path,
                &MeasureRequest::for_cache(&cache_config(&req, t), ngl as i32),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let [gpu, host] = split(&m);
            let output = Bytes((m.output_mib.expect("output buffer logged") * MIB).round() as u64);
            assert_eq!(p.devices.len(), 2, "lavapipe and the host: {:?}", p.devices);
            let (pg, pc) = (&p.devices[0], &p.devices[1]);
            assert!(pg.is_gpu && !pc.is_gpu);
            // The plan's CPU compute includes the host output buffer; the breakdown does not.
            let host_compute_planned = pc.compute_bytes.saturating_sub(output);
            let row = Row {
                what: format!(
                    "{} ngl={ngl} {t} (gpu blocks {}/{})",
                    path.file_name().unwrap().to_string_lossy(),
                    p.gpu_blocks,
                    p.block_count
                ),
                figures: vec![
                    ("gpu weights", pg.weights_bytes, gpu.0),
                    ("gpu kv", pg.kv_bytes, gpu.1),
                    ("gpu compute", pg.compute_bytes, gpu.2),
                    ("host weights", pc.weights_bytes, host.0),
                    ("host kv", pc.kv_bytes, host.1),
                    ("host compute", host_compute_planned, host.2),
                ],
            };
            for &(name, planned, measured) in &row.figures {
                let ok = if name.ends_with("compute") {
                    within(planned, measured)
                } else {
                    planned == measured
                };
                if !ok {
                    bad.push(format!(
                        "{}: {name} planned {:.2} MiB, llama.cpp {:.2} MiB",
                        row.what,
                        planned.get() as f64 / MIB,
                        measured.get() as f64 / MIB
                    ));
                }
            }
            rows.push(row);
        }
    }
    for r in &rows {
        let cells: Vec<String> = r
            .figures
            .iter()
            .map(|(n, p, m)| {
                format!(
                    "{n} {:.2}/{:.2}",
                    p.get() as f64 / MIB,
                    m.get() as f64 / MIB
                )
            })
            .collect();
        eprintln!("{}: {}", r.what, cells.join(", "));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    rows
}

/// A synthetic model; the machine is probed first so the engine starts with the opt-in.
fn synthetic(
    arch: &str,
    n_layer: u32,
    extra: impl FnOnce(&mut layerfit::gguf::writer::GgufWriter),
) -> std::path::PathBuf {
    machine();
    common::synthetic("vk", arch, n_layer, extra)
}

/// -ngl 0, 1, a middle value and all layers (output layer included).
fn ngls(n_layer: u32) -> Vec<u32> {
    vec![0, 1, n_layer / 2 + 1, n_layer + 1]
}

#[test]
fn smollm2_135m_partial_offload_matches_llama_cpp() {
    let p = common::smollm2();
    let rows = assert_offload_matches(&p, 32768, &ngls(30));
    // The measured figures: f16 KV at 32K with ngl=10 puts 216 MiB of KV on Vulkan0.
    let r = assert_offload_matches(&p, 32768, &[10]);
    assert_eq!(r[0].figures[1].2, Bytes(216 << 20));
    assert!(!rows.is_empty());
}

#[test]
fn gemma3_270m_partial_offload_matches_llama_cpp() {
    assert_offload_matches(&common::gemma3(), 32768, &ngls(18));
}

#[test]
fn synthetic_llama_untied_output() {
    // llama.cpp never asks for the optional output.weight: give it one (n_embd x n_vocab).
    let p = synthetic("llama", 6, |w| {
        w.tensor("output.weight", &[256, 32000], GgmlType::Q8_0);
    });
    let src = ModelSource::from_file(&p).unwrap();
    assert!(!src.plan_input(&[]).unwrap().tied_output);
    assert_offload_matches(&p, 8192, &ngls(6));
}

#[test]
fn synthetic_qwen2_biases() {
    let p = synthetic("qwen2", 6, |_| {});
    assert_offload_matches(&p, 32768, &ngls(6));
}

#[test]
fn synthetic_gemma2_sliding_window() {
    let p = synthetic("gemma2", 6, |w| {
        w.kv("gemma2.attention.sliding_window", WriteValue::U32(1024));
    });
    assert_offload_matches(&p, 32768, &ngls(6));
}

#[test]
fn synthetic_qwen3moe_experts() {
    let p = synthetic("qwen3moe", 4, |w| {
        w.kv("qwen3moe.expert_count", WriteValue::U32(8))
            .kv("qwen3moe.expert_used_count", WriteValue::U32(2))
            .kv("qwen3moe.expert_feed_forward_length", WriteValue::U32(256));
    });
    assert_offload_matches(&p, 16384, &ngls(4));
}

/// The Vulkan build of the binary, without the test process's own opt-in in its environment:
/// exit code, stdout, stderr.
fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

fn layerfit_json(args: &[&str]) -> (i32, serde_json::Value, String) {
    let (code, stdout, stderr) = layerfit(args);
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout} {stderr}"));
    (code, doc, stderr)
}

#[test]
fn hardware_lists_lavapipe_as_a_gpu_only_on_request() {
    let (code, d, err) = layerfit_json(&["hardware", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(d["gpus"].as_array().unwrap().len(), 0, "{d}");
    let notes: Vec<&str> = d["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("--software-gpu")),
        "{notes:?}"
    );

    let (code, d, err) = layerfit_json(&["hardware", "--json", "--software-gpu"]);
    assert_eq!(code, 0, "{err}");
    let gpus = d["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 1, "{d}");
    assert_eq!(gpus[0]["software"], true);
    assert_eq!(gpus[0]["unified_memory"], true);
    assert_eq!(gpus[0]["engine_device"], "Vulkan0");
    assert!(gpus[0]["name"].as_str().unwrap().contains("llvmpipe"));
    assert!(gpus[0]["vram_total_bytes"].as_u64().unwrap() > 0);
    // llvmpipe's maxStorageBufferRange, read through wgpu: 128 MiB.
    assert_eq!(gpus[0]["max_tensor_bytes"], 128 << 20);
}

#[test]
fn check_requirements_plans_onto_lavapipe_only_on_request() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let args = ["check-requirements", "--model", m, "--json", "--yes"];
    let (code, d, err) = layerfit_json(&args);
    assert_eq!(code, 10, "{err}");
    assert_eq!(d["plan"]["n_gpu_layers"], 0);
    assert_eq!(d["plan"]["devices"].as_array().unwrap().len(), 1);

    let mut with = args.to_vec();
    with.push("--software-gpu");
    let (code, d, err) = layerfit_json(&with);
    assert_eq!(code, 10, "degraded: {err}");
    let plan = &d["plan"];
    // 30 blocks + the output layer: everything fits lavapipe's 2 GiB heap.
    assert_eq!(plan["n_gpu_layers"], 31, "{plan}");
    assert_eq!(plan["gpu_blocks"], 30);
    assert_eq!(plan["devices"][0]["is_gpu"], true);
    let kinds: Vec<&str> = plan["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"software_gpu"), "{kinds:?}");
    assert!(!kinds.contains(&"cpu_only"), "{kinds:?}");
}

/// `layerfit run ARGS --prompt "What is the capital of France? Answer in one word."`, greedy,
/// short, as JSON (through SmolLM2's own template, with its default system message, the bare
/// question gets a French list on the CPU, as on llama-server).
fn ask(args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[
        "--prompt",
        "What is the capital of France? Answer in one word.",
        "--temp",
        "0",
        "--max-tokens",
        "16",
        "--accept-degraded",
        "--json",
    ]);
    layerfit_json(&a)
}

#[test]
fn run_offloads_to_lavapipe_and_its_self_check_holds() {
    let m = common::smollm2();
    let (code, d, err) = ask(&[
        "--software-gpu",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "8192",
    ]);
    assert_eq!(code, 0, "{err}");
    let answer = d["answer"].as_str().unwrap();
    assert!(answer.contains("Paris"), "{answer}");
    let checks = d["self_check"].as_array().unwrap();
    // Weights, KV cache and compute on lavapipe and on the host.
    assert_eq!(checks.len(), 6, "{checks:?}");
    for c in checks {
        assert_eq!(c["within_5_percent"], true, "{c}");
    }
    let gpu_kv = checks
        .iter()
        .find(|c| c["what"] == "KV cache" && c["device"].as_str().unwrap().contains("llvmpipe"))
        .expect("a KV check for the GPU");
    assert!(gpu_kv["allocated"].as_u64().unwrap() > 0, "{gpu_kv}");
}

#[test]
fn dev_none_keeps_every_buffer_off_lavapipe() {
    let m = common::smollm2();
    let (code, d, err) = ask(&[
        "--software-gpu",
        "--dev",
        "none",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "4096",
    ]);
    assert_eq!(code, 0, "{err}");
    // Only the host is planned; its compute check holds only if llama.cpp ran the whole graph
    // on the CPU: 18.6 MiB at 4096 tokens, where with lavapipe visible the host keeps the masks
    // and a few rows (8.5 MiB) and lavapipe takes the rest.
    let checks = d["self_check"].as_array().unwrap();
    assert_eq!(checks.len(), 3, "{checks:?}");
    for c in checks {
        assert_eq!(c["device"], "CPU", "{c}");
        assert_eq!(c["within_5_percent"], true, "{c}");
    }
    let compute = checks.iter().find(|c| c["what"] == "compute").unwrap();
    assert!(
        compute["allocated"].as_u64().unwrap() > 16 << 20,
        "{compute}"
    );
    assert!(d["answer"].as_str().unwrap().contains("Paris"), "{d}");
}

#[test]
fn emitted_configs_carry_the_software_device_and_a_run_file_runs_on_it() {
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let plan = |tool: &str| {
        let (code, out, err) = layerfit(&[
            "plan",
            "--software-gpu",
            "--model",
            m,
            "--ctx",
            "4096",
            "--emit",
            tool,
        ]);
        // `--emit` exits with the verdict: a software GPU is a degradation.
        assert_eq!(code, 10, "{err}");
        out
    };
    // llama.cpp needs the device named to see it; the command says so and parses back.
    let server = plan("llama-server")
        .lines()
        .filter(|l| !l.starts_with("# "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        server.starts_with("GGML_VK_VISIBLE_DEVICES=0 llama-server"),
        "{server}"
    );
    let args: Vec<String> = server.split_whitespace().map(String::from).collect();
    let s = layerfit::emit::RunSettings::from_llama_args(&args).unwrap();
    assert!(s.software_gpu && s.n_gpu_layers == 31, "{s:?}");

    // A run file made with --software-gpu runs on lavapipe without the flag.
    let dir = common::tempdir("vk-runfile");
    let file = dir.join("smollm2.yaml");
    std::fs::write(&file, plan("profile")).unwrap();
    let (code, d, err) = ask(&["--plan", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let checks = d["self_check"].as_array().unwrap();
    assert_eq!(checks.len(), 6, "{checks:?}");
    for c in checks {
        assert_eq!(c["within_5_percent"], true, "{c}");
    }
    let cpu_weights = |checks: &[serde_json::Value]| {
        checks
            .iter()
            .find(|c| c["what"] == "weights" && c["device"] == "CPU")
            .map(|c| c["allocated"].as_u64().unwrap())
            .unwrap()
    };
    let all_on_gpu = cpu_weights(checks);

    // The same run with the dense feed-forward weights of the first 12 blocks kept on the
    // CPU (`--n-cpu-ffn`, `-ot`): the engine's tensor overrides move exactly what the plan
    // moved, per device.
    let yaml = plan("profile");
    assert!(yaml.contains("n_cpu_ffn: 0"), "{yaml}");
    let file = dir.join("smollm2-ffn.yaml");
    std::fs::write(&file, yaml.replace("n_cpu_ffn: 0", "n_cpu_ffn: 12")).unwrap();
    let (code, d, err) = ask(&["--plan", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let checks = d["self_check"].as_array().unwrap();
    for c in checks {
        assert_eq!(c["within_5_percent"], true, "{c}");
    }
    let degradations = d["degradations"].as_array().unwrap();
    assert!(
        degradations
            .iter()
            .any(|x| x.as_str().unwrap().contains("feed-forward")),
        "{degradations:?}"
    );
    assert!(
        cpu_weights(checks) > all_on_gpu,
        "the CPU holds the moved weights"
    );
}

#[test]
fn synthetic_large_vocab_logits_too_large_for_the_device() {
    // 150k tokens: 293 MiB of logits at 512 tokens (the batch llama.cpp tries a weight's op
    // with) exceed lavapipe's 128 MiB storage-buffer range, so the output projection (its own
    // 73 MiB f16 weight) stays on the host at every -ngl while its norm follows -ngl. With one
    // output per sequence the logits are one row, computed on the host.
    machine();
    let dir = common::tempdir("vk");
    let path = dir.join("llama-large-vocab.gguf");
    let mut w = common::base_writer("llama", 4, 256, 150_000);
    w.kv("llama.feed_forward_length", WriteValue::U32(768))
        .kv("llama.attention.head_count", WriteValue::U32(8))
        .kv("llama.attention.head_count_kv", WriteValue::U32(2));
    w.tensor("output.weight", &[256, 150_000], GgmlType::F16);
    common::complete_with_engine(w, &path);
    let rows = assert_offload_matches(&path, 8192, &ngls(4));
    let projection = Bytes(256 * 150_000 * 2);
    assert!(rows
        .iter()
        .all(|r| r.figures[3].2 > projection && r.figures[0].2 < projection));
}

#[test]
fn synthetic_cache_tensors_too_large_for_the_device_stay_on_the_host() {
    // 2048-wide K and V without grouped-query attention: at 40960 tokens one layer's f16 K is
    // 160 MiB, beyond lavapipe's 128 MiB. llama.cpp aborts if such a layer is offloaded, so the
    // planner never offloads a block; at -ngl 0 and 1 the host keeps that attention (q8_0 and
    // q4_0 caches, at 85 and 45 MiB, go back to the GPU's copies).
    machine();
    let dir = common::tempdir("vk");
    let path = dir.join("llama-wide-kv.gguf");
    let mut w = common::base_writer("llama", 2, 2048, 32000);
    w.kv("llama.feed_forward_length", WriteValue::U32(768))
        .kv("llama.attention.head_count", WriteValue::U32(16))
        .kv("llama.attention.head_count_kv", WriteValue::U32(16))
        .kv("llama.context_length", WriteValue::U32(40960));
    common::complete_with_engine(w, &path);
    assert_offload_matches(&path, 40960, &[0, 1]);

    let snap = machine();
    let inp = ModelSource::from_file(&path)
        .unwrap()
        .plan_input(&snap.cpu.simd)
        .unwrap();
    let req = Requirements {
        min_context: 40960,
        kv_types: vec![GgmlType::F16],
        ..Requirements::default()
    };
    let p = layerfit::plan::plan(&inp, snap, &req);
    assert!(p.n_gpu_layers <= 1 && p.gpu_blocks == 0, "{p:?}");
    let all = plan_at(&inp, snap, &req, GgmlType::F16, 3, 0);
    assert_eq!(all.verdict, layerfit::plan::Verdict::Incompatible);
    assert!(all.missing.unwrap().contains("llama.cpp aborts"));
}

/// llama.cpp's own fitter (`common_fit_params`) and layerfit, given the same free memory on
/// lavapipe: for the real models and catalog layouts (header + sparse files), at budgets of
/// 30%, 60% and 90% of what the whole model needs on the device, both choose `-ngl`. Where
/// they differ, both settings are loaded for real and the device's allocation is compared
/// with the budget. Prints every case and the agreement.
#[test]
fn llama_cpp_fitter_and_layerfit_choose_the_offload_for_the_same_budget() {
    use layerfit::catalog::{self, quant::Ftype};
    use layerfit::engine::fit::llama_fit;
    use layerfit::gguf::writer::Data;
    use layerfit::plan::{backend_reserve, plan, VRAM_MARGIN};
    let snap = machine();
    let dev_free = snap.gpus[0].vram_free_bytes;
    let dir = common::tempdir("vk-fitter");
    let mut models = vec![common::smollm2(), common::gemma3()];
    for name in ["qwen2.5-coder:1.5b", "qwen3:0.6b", "llama3.2:1b"] {
        let e = catalog::entries()
            .unwrap()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap();
        let path = dir.join(format!("{}.gguf", name.replace(':', "-")));
        e.header(Ftype::Q4KM)
            .unwrap()
            .write(&path, Data::Sparse)
            .unwrap();
        models.push(path);
    }
    let (mut cases, mut agree) = (0, 0);
    let mut report = Vec::new();
    for path in &models {
        let inp = ModelSource::from_file(path)
            .unwrap()
            .plan_input(&snap.cpu.simd)
            .unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for ctx in [4096u64, 16384] {
            // Whole blocks only (as the fitter's -ngl), one cache type, no speed floor.
            let req = Requirements {
                min_context: ctx,
                kv_types: vec![GgmlType::F16],
                allow_cpu_moe: false,
                min_decode_tokens_per_s: None,
                ..Requirements::default()
            };
            let all = plan_at(
                &inp,
                snap,
                &req,
                GgmlType::F16,
                inp.shape.block_count + 1,
                0,
            );
            let need = all.devices[0].total_bytes;
            for share in [0.3, 0.6, 0.9] {
                let budget = Bytes((need.get() as f64 * share) as u64);
                let mut dev = snap.clone();
                let g = &mut dev.gpus[0];
                g.unified_memory = false;
                // What layerfit keeps on a discrete device: the back-end reserve (none
                // for Vulkan) and the margin.
                g.vram_free_bytes = budget + VRAM_MARGIN + backend_reserve(g);
                g.vram_total_bytes = g.vram_total_bytes.max(g.vram_free_bytes);
                let ours = plan(&inp, &dev, &req).n_gpu_layers;
                let margin = dev_free.saturating_sub(budget).get();
                let fit = llama_fit(path, ctx as u32, GgmlType::F16, 512, margin).unwrap();
                let theirs = fit.n_gpu_layers.max(0) as u32;
                cases += 1;
                // The fitter may also put part of one more layer on the device.
                let same = ours == theirs || (fit.overrides > 0 && theirs == ours + 1);
                let line = format!(
                    "{name} ctx {ctx} budget {budget}: layerfit -ngl {ours}, fitter -ngl {theirs} ({} overrides)",
                    fit.overrides
                );
                if same {
                    agree += 1;
                    report.push(format!("{line}: agree"));
                    continue;
                }
                // They differ: what does llama.cpp allocate on the device for each?
                let on_device = |ngl: u32| {
                    let m = measure(
                        path,
                        &MeasureRequest {
                            n_ctx: ctx as u32,
                            flash_attn: Some(true),
                            n_gpu_layers: ngl as i32,
                            dry_run: false,
                            ..MeasureRequest::default()
                        },
                    )
                    .unwrap();
                    let [gpu, _] = split(&m);
                    gpu.0 + gpu.1 + gpu.2
                };
                let (a, b) = (on_device(ours), on_device(theirs));
                report.push(format!(
                    "{line}: differ; on the device layerfit's {a} ({}), the fitter's {b} ({})",
                    if a <= budget { "within" } else { "OVER" },
                    if b <= budget { "within" } else { "OVER" }
                ));
                assert!(
                    a <= budget,
                    "{line}: layerfit's choice allocates {a} > {budget}"
                );
            }
        }
    }
    for r in &report {
        eprintln!("{r}");
    }
    eprintln!("llama.cpp's fitter and layerfit agree in {agree} of {cases} cases");
    assert!(cases >= 30);
}
