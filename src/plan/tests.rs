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
            incomplete: false,
        },
        Contender {
            plan: q8,
            downloaded: true,
            preference: 0,
            incomplete: false,
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
fn below_the_speed_floor_quality_is_kept_within_the_estimates_error() {
    // A CPU-only machine where no 7B variant reaches 5 tokens/s.
    let m = slow_machine("ram: 64G\n");
    let models = catalog("qwen2.5-coder:7b", 0);
    let opts: Vec<ModelOption> = models.iter().map(|x| x.1.clone()).collect();
    let ranked = choose(&opts, &m, &Requirements::default(), None);
    let w = &ranked[0].plan;
    assert!(w
        .degradations
        .iter()
        .any(|d| d.kind == DegradationKind::BelowSpeedFloor));
    let sev = |p: &Plan| {
        let mut k: Vec<_> = p.degradations.iter().map(|d| d.severity).collect();
        k.sort();
        k
    };
    let peers: Vec<&Plan> = ranked
        .iter()
        .map(|r| &r.plan)
        .filter(|p| sev(p) == sev(w))
        .collect();
    let decode = |p: &Plan| p.speed.as_ref().unwrap().expected_decode();
    let high = |p: &Plan| p.speed.as_ref().unwrap().decode_at_context_high;
    let fastest = peers
        .iter()
        .copied()
        .max_by(|a, b| decode(a).total_cmp(&decode(b)))
        .unwrap();
    // The fastest is not faster than the winner beyond the winner's band...
    assert!(decode(fastest) <= high(w));
    // ...and no option within that error of the fastest loses less.
    for p in &peers {
        if decode(fastest) <= high(p) {
            assert!(p.quality.effective_kld >= w.quality.effective_kld);
        }
    }
    assert!(w.quality.effective_kld < fastest.quality.effective_kld);
    let lost = ranked
        .iter()
        .find(|r| std::ptr::eq(&r.plan, fastest))
        .and_then(|r| r.lost_because.clone())
        .unwrap();
    assert!(
        lost.contains("not faster beyond the estimate's error"),
        "{lost}"
    );
    // Without a floor, quality decides among the equally degraded.
    let req = Requirements {
        min_decode_tokens_per_s: None,
        ..Requirements::default()
    };
    let (name, _) = best(&models, &m, &req);
    assert!(name.ends_with("q8_0") || name.ends_with("f16"), "{name}");
}

/// A plan below the floor at `decode` tokens/s, its band ±`err` (a fraction).
fn below_floor_at(p: &Plan, decode: f64, err: f64) -> Plan {
    let mut p = p.clone();
    let sp = p.speed.as_mut().unwrap();
    sp.decode_tokens_per_s_at_context = decode;
    sp.decode_at_context_low = decode * (1.0 - err);
    sp.decode_at_context_high = decode * (1.0 + err);
    p.degradations
        .retain(|d| d.kind != DegradationKind::BelowSpeedFloor);
    p.degradations.push(super::Degradation {
        kind: DegradationKind::BelowSpeedFloor,
        severity: super::Severity::Moderate,
        message: String::new(),
    });
    p
}

#[test]
fn below_the_floor_a_speed_difference_within_the_error_does_not_buy_quality() {
    // Issue 32, W7: a q3_k_m-like plan at 2.3 tokens/s against a q4_k_m-like one at 2.0,
    // both with a ±15% band: the 0.3 is inside the error, so the better quality wins; at
    // 3.0 the faster wins.
    let m = machine("ram: 64G\n");
    let models = catalog("qwen2.5-coder:7b-q4_k_m", 0);
    let base = &options(&models[0].1.input, &m, &Requirements::default())[0];
    let mut better = below_floor_at(base, 2.0, 0.15);
    better.quality.effective_kld = 0.031;
    let order = |worse_speed: f64| {
        let mut worse = below_floor_at(base, worse_speed, 0.15);
        worse.quality.effective_kld = 0.102;
        let c = |plan| Contender {
            plan,
            downloaded: true,
            preference: 0,
            incomplete: false,
        };
        let r = rank(&[c(&worse), c(&better)]);
        (r[0].index, r[1].lost_because.clone().unwrap())
    };
    let (first, why) = order(2.3);
    assert_eq!(first, 1, "{why}");
    assert!(why.starts_with("lower quality"), "{why}");
    let (first, why) = order(3.0);
    assert_eq!(first, 0, "{why}");
    assert!(why.starts_with("slower"), "{why}");
}

#[test]
fn an_incomplete_file_is_ranked_as_the_finished_file_then_marked_incompatible() {
    // Issue 32, W9: a partial 7B on an RTX 3060 8GB was ranked by least memory (a q4_0
    // cache); ranked as the finished file, it gets the finished file's cache and placement.
    let m = machine("ram: 16G\ngpus: [{name: RTX 3060 8GB}]\n");
    let models = catalog("qwen2.5-coder:7b-q4_k_m", 0);
    let whole = models[0].1.clone();
    let mut partial = whole.clone();
    partial.incomplete = Some(crate::bytes::Bytes(1 << 30));
    let req = Requirements::default();
    let finished = choose(std::slice::from_ref(&whole), &m, &req, None);
    let cut = choose(std::slice::from_ref(&partial), &m, &req, None);
    assert_eq!(finished.len(), cut.len());
    for (f, c) in finished.iter().zip(&cut) {
        assert_eq!(
            (f.plan.kv_type, f.plan.n_gpu_layers),
            (c.plan.kv_type, c.plan.n_gpu_layers)
        );
        assert_eq!(c.plan.verdict, Verdict::Incompatible);
        let why = c.plan.missing.as_deref().unwrap();
        assert!(why.contains("the file is incomplete: 1.00 GiB"), "{why}");
    }
    assert_ne!(cut[0].plan.kv_type, GgmlType::Q4_0);
    // Beside a complete model, the incomplete one ranks after it and says why.
    let mut small = catalog("qwen2.5-coder:3b-q4_k_m", 1).swap_remove(0).1;
    small.preference = 1;
    let both = choose(&[partial, small], &m, &req, None);
    assert_eq!(both[0].model, 1);
    let lost = both.iter().find(|r| r.model == 0).unwrap();
    assert!(
        lost.lost_because
            .as_deref()
            .unwrap()
            .starts_with("the file is incomplete"),
        "{:?}",
        lost.lost_because
    );
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
