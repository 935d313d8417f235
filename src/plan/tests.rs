//! The planner's rules on catalog models (no downloaded file needed): the ranking, the
//! placements, the chooser.

use super::choose::{choose, ModelOption};
use super::rank::{rank, Contender};
use super::{options, DegradationKind, Plan, Requirements, Verdict};
use crate::ggml_type::GgmlType;
use crate::hardware::whatif::{describe, parse_description};
use crate::hardware::{Cpu, Snapshot};
use crate::model_source::resolve;

fn cpu() -> Cpu {
    Cpu {
        model: "test".into(),
        physical_cores: 8,
        logical_cores: 8,
        simd: vec!["avx2".into(), "fma".into()],
        memory_bandwidth_gbps: Some(40.0),
        frequency_ghz: Some(3.0),
    }
}

fn machine(yaml: &str) -> Snapshot {
    describe(&parse_description(yaml).unwrap(), "test", cpu()).unwrap()
}

/// A small laptop's CPU: 2 cores, 10 GB/s.
fn slow_machine(yaml: &str) -> Snapshot {
    let c = Cpu {
        physical_cores: 2,
        logical_cores: 4,
        memory_bandwidth_gbps: Some(10.0),
        ..cpu()
    };
    describe(&parse_description(yaml).unwrap(), "test", c).unwrap()
}

/// Every variant of a catalog model (or the one named), as the chooser takes them.
fn catalog(name: &str, preference: usize) -> Vec<(String, ModelOption)> {
    let none = std::env::temp_dir().join("layerfit-plan-tests-no-models");
    resolve(name, &none)
        .unwrap()
        .into_iter()
        .map(|s| {
            let mut o = s.option(&cpu().simd).unwrap();
            o.preference = preference;
            o.to_download = crate::bytes::Bytes::ZERO;
            (s.label.clone(), o)
        })
        .collect()
}

fn best(models: &[(String, ModelOption)], m: &Snapshot, req: &Requirements) -> (String, Plan) {
    let opts: Vec<ModelOption> = models.iter().map(|x| x.1.clone()).collect();
    let r = choose(&opts, m, req, None).swap_remove(0);
    (models[r.model].0.clone(), r.plan)
}

#[test]
fn a_quantized_7b_fully_on_an_8gb_card_beats_f16_split_with_the_cpu() {
    let m = machine("ram: 16G\ngpus: [{name: RTX 3060 8GB}]\n");
    let (name, p) = best(
        &catalog("qwen2.5-coder:7b", 0),
        &m,
        &Requirements::default(),
    );
    assert_ne!(name, "qwen2.5-coder:7b-f16");
    assert_eq!(p.verdict, Verdict::Compatible, "{name}");
    assert_eq!(p.gpu_blocks, p.block_count);
}

#[test]
fn f16_and_q8_0_caches_are_equal_in_quality_so_the_faster_wins() {
    let m = machine("ram: 16G\ngpus: [{name: RTX 3060 8GB}]\n");
    let models = catalog("qwen2.5-coder:7b-q4_k_m", 0);
    let all = options(&models[0].1.input, &m, &Requirements::default());
    let f16 = all.iter().find(|p| p.kv_type == GgmlType::F16).unwrap();
    let q8 = all.iter().find(|p| p.kv_type == GgmlType::Q8_0).unwrap();
    assert_eq!(f16.quality.effective_kld, q8.quality.effective_kld);
    let order = rank(&[
        Contender {
            plan: f16,
            downloaded: true,
            preference: 0,
        },
        Contender {
            plan: q8,
            downloaded: true,
            preference: 0,
        },
    ]);
    assert_eq!(order[0].index, 1, "q8_0 reads fewer bytes per token");
    assert!(order[1]
        .lost_because
        .as_deref()
        .unwrap()
        .starts_with("slower"));
}

#[test]
fn the_model_listed_first_wins_when_both_run_well() {
    let m = machine("ram: 32G\ngpus: [{name: RTX 4090}]\n");
    let mut models = catalog("qwen2.5-coder:7b-q4_k_m", 0);
    models.extend(catalog("qwen2.5-coder:3b-q4_k_m", 1));
    let (name, _) = best(&models, &m, &Requirements::default());
    assert_eq!(
        name, "qwen2.5-coder:7b-q4_k_m",
        "the 3B is faster, but listed after"
    );
}

#[test]
fn below_the_speed_floor_the_fastest_of_the_least_degraded_wins() {
    // A CPU-only machine where no 7B variant reaches 5 tokens/s.
    let m = slow_machine("ram: 64G\n");
    let models = catalog("qwen2.5-coder:7b", 0);
    let (name, p) = best(&models, &m, &Requirements::default());
    assert!(p
        .degradations
        .iter()
        .any(|d| d.kind == DegradationKind::BelowSpeedFloor));
    // Not f16 or Q8_0 (slow), not Q3/Q2 (a measurable loss is one more degradation): the
    // fastest 4-bit variant.
    assert_eq!(name, "qwen2.5-coder:7b-q4_0");
    // Without a floor, quality decides among the equally degraded.
    let req = Requirements {
        min_decode_tokens_per_s: None,
        ..Requirements::default()
    };
    let (name, _) = best(&models, &m, &req);
    assert!(name.ends_with("q8_0") || name.ends_with("f16"), "{name}");
}

#[test]
fn feed_forward_weights_on_the_cpu_are_an_option_beside_whole_blocks() {
    // Q8_0 7B at 32K does not fit an 8 GB card whole: both spills are offered, ranked by
    // the speed model.
    let m = machine("ram: 32G\ngpus: [{name: RTX 3060 8GB}]\n");
    let models = catalog("qwen2.5-coder:7b-q8_0", 0);
    let req = Requirements {
        kv_types: vec![GgmlType::Q8_0],
        ..Requirements::default()
    };
    let all = options(&models[0].1.input, &m, &req);
    let ffn = all.iter().find(|p| p.n_cpu_ffn > 0).expect("an FFN spill");
    let blocks = all
        .iter()
        .find(|p| p.n_cpu_ffn == 0 && p.gpu_blocks < p.block_count)
        .expect("a partial offload");
    assert_eq!(
        ffn.gpu_blocks, ffn.block_count,
        "attention stays on the GPU"
    );
    assert_eq!(ffn.devices[1].kv_bytes, crate::bytes::Bytes::ZERO);
    assert!(blocks.devices[1].kv_bytes > crate::bytes::Bytes::ZERO);
    for p in [ffn, blocks] {
        assert!(p.devices.iter().all(|d| d.total_bytes <= d.budget_bytes));
    }
}

#[test]
fn infeasible_options_rank_by_how_close_they_come() {
    // 512 MiB: the OS reserve of a small machine is a quarter (plan::budget), so 1 GiB now
    // leaves 768 MiB, enough to stream a 7B's weights from disk (degraded, not infeasible).
    let m = machine("ram: 512M\n");
    let models = catalog("qwen2.5-coder:7b", 0);
    let (_, p) = best(&models, &m, &Requirements::default());
    assert_eq!(p.verdict, Verdict::Incompatible);
    assert_eq!(p.kv_type, GgmlType::Q4_0, "the smallest cache");
}

/// llama.cpp's layer assignment (`llama_model::load_tensors`): cumulative float shares,
/// normalised, and `upper_bound` of `il / act`.
fn llama_cpp_devices(split: &[f32], act: usize) -> Vec<usize> {
    let sum: f32 = split.iter().sum();
    let mut cum = Vec::new();
    let mut acc = 0f32;
    for s in split {
        acc += s;
        cum.push(acc);
    }
    let cum: Vec<f32> = cum.iter().map(|c| c / sum).collect();
    (0..act)
        .map(|il| {
            let x = il as f32 / act as f32;
            cum.iter().position(|&c| c > x).unwrap_or(split.len())
        })
        .collect()
}

#[test]
fn the_tensor_split_gives_llama_cpp_exactly_the_planned_layers() {
    for n_dev in 2..=4usize {
        for act in 1..=160usize {
            // Every way of cutting `act` layers at a few places, empty devices included.
            for cut in 0..act.min(7) {
                let mut owners = Vec::new();
                for il in 0..act {
                    let d = ((il + cut) * n_dev / (act + cut)).min(n_dev - 1);
                    owners.push(d);
                }
                let split = super::layout::tensor_split(&owners, n_dev);
                // As the engine gets it (f32), and as `-ts` prints it (4 decimals).
                let engine: Vec<f32> = split.iter().map(|&f| f as f32).collect();
                let printed: Vec<f32> = split
                    .iter()
                    .map(|f| format!("{f:.4}").parse().unwrap())
                    .collect();
                assert_eq!(llama_cpp_devices(&engine, act), owners, "{split:?}");
                assert_eq!(llama_cpp_devices(&printed, act), owners, "{split:?}");
            }
        }
    }
}
