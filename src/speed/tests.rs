//! The speed model's arithmetic on hand-made calibrations and parts.

use super::calibration::{AttnRate, Calibration, ThreadRates, TypeRate, WorkingSetRate};
use super::ffn_activation::FfnActivation;
use super::model::{decode_seconds, prompt_seconds, AttnLayer, Part, Rates};
use crate::ggml_type::GgmlType;

fn rate(t: GgmlType, value: f64) -> TypeRate {
    TypeRate {
        type_name: t.name().into(),
        value,
    }
}

fn attn(t: GgmlType, head_dim: u32, ns: f64, cache_bytes: u64) -> AttnRate {
    AttnRate {
        type_name: t.name().into(),
        head_dim,
        ns,
        cache_bytes,
        layer_cache_bytes: 0,
    }
}

/// 10 GB/s for q8_0 at 64 MiB, 20 in the caches (8 MiB), 5 from memory (1 GiB).
pub(super) fn point(threads: u32) -> ThreadRates {
    ThreadRates {
        threads,
        matvec_gb_per_s: vec![rate(GgmlType::Q8_0, 10.0), rate(GgmlType::Q5_0, 8.0)],
        matvec_working_set_bytes: 64 << 20,
        matvec_short_rows_gb_per_s: vec![rate(GgmlType::Q8_0, 8.0)],
        working_set_curve: vec![
            WorkingSetRate {
                working_set_bytes: 8 << 20,
                gb_per_s: 20.0,
            },
            WorkingSetRate {
                working_set_bytes: 64 << 20,
                gb_per_s: 10.0,
            },
            WorkingSetRate {
                working_set_bytes: 1 << 30,
                gb_per_s: 5.0,
            },
        ],
        matmul_gflop_per_s: vec![rate(GgmlType::Q8_0, 100.0)],
        attn_decode_ns: vec![
            attn(GgmlType::F16, 64, 1.0, 4 << 20),
            attn(GgmlType::F16, 128, 0.5, 4 << 20),
        ],
        attn_decode_large_ns: vec![attn(GgmlType::F16, 128, 1.0, 256 << 20)],
        attn_prompt_ns: vec![attn(GgmlType::F16, 128, 0.1, 1 << 20)],
        attn_prompt_long_ns: Vec::new(),
        node_seconds: 1e-6,
        sampling_ns_per_token: 4.0,
        engine_block_seconds: 0.0,
        engine_step_seconds: 0.0,
        ffn_activation_ns: Vec::new(),
    }
}

fn calibration() -> Calibration {
    Calibration {
        version: super::calibration::CALIBRATION_VERSION,
        machine: "m".into(),
        engine: "e".into(),
        measured_at: 0,
        kind: "full".into(),
        seconds_taken: 1.0,
        points: vec![point(1), point(4)],
        spread: None,
        load_average: None,
    }
}

/// A 30-block dense model: 60 MB of q8_0 weights, 30 MB output, 30 attention layers.
pub(super) fn part(window: Option<u64>) -> Part {
    Part {
        weights: vec![(GgmlType::Q8_0, 60e6)],
        output: Some((GgmlType::Q8_0, 30e6)),
        attn: vec![
            AttnLayer {
                n_head: 8,
                head_dim: 128,
                window,
                kv_bytes_per_cell: 2048.0,
            };
            30
        ],
        attn_share: 1.0,
        kv_type: GgmlType::F16,
        blocks: 30.0,
        has_outside: true,
        row_elements: 2048.0,
        output_row_elements: 2048.0,
        sampled_vocab: 0.0,
        ffn_elements: 0.0,
        ffn_activation: FfnActivation::Silu,
    }
}

#[test]
fn the_thread_count_picks_the_nearest_measured_below() {
    let c = calibration();
    assert_eq!(c.at(1).unwrap().threads, 1);
    assert_eq!(c.at(3).unwrap().threads, 1);
    assert_eq!(c.at(16).unwrap().threads, 4);
    // Fewer than any measured: the smallest measured.
    let only4 = Calibration {
        points: vec![point(4)],
        ..calibration()
    };
    assert_eq!(only4.at(1).unwrap().threads, 4);
}

#[test]
fn decode_rates_follow_the_working_set_curve() {
    let p = point(1);
    let at = |t, ws: u64| p.matvec_bytes_per_s(t, ws as f64, 2048.0).unwrap() / 1e9;
    assert!((at(GgmlType::Q8_0, 64 << 20) - 10.0).abs() < 1e-9);
    assert!((at(GgmlType::Q8_0, 8 << 20) - 20.0).abs() < 1e-9);
    assert!((at(GgmlType::Q8_0, 4 << 30) - 5.0).abs() < 1e-9);
    let between = at(GgmlType::Q8_0, 256 << 20);
    assert!(between < 10.0 && between > 5.0, "{between}");
    // Same curve for other types, from their own figure; unmeasured types borrow the
    // nearest kernel (q5_1 uses q5_0's).
    assert!((at(GgmlType::Q5_0, 8 << 20) - 16.0).abs() < 1e-9);
    assert_eq!(at(GgmlType::Q5_1, 64 << 20), at(GgmlType::Q5_0, 64 << 20));
    // A point past the mid set measured faster than the mid one is not believed.
    let mut p = point(1);
    p.working_set_curve[2].gb_per_s = 12.0;
    let at = |ws: u64| {
        p.matvec_bytes_per_s(GgmlType::Q8_0, ws as f64, 2048.0)
            .unwrap()
            / 1e9
    };
    assert!((at(256 << 20) - 10.0).abs() < 1e-9 && (at(4 << 30) - 10.0).abs() < 1e-9);
    assert!((at(8 << 20) - 20.0).abs() < 1e-9);
}

#[test]
fn short_rows_slow_the_decode_rate_by_the_measured_ratio() {
    let p = point(1);
    let at = |t, row: f64| p.matvec_bytes_per_s(t, (64u64 << 20) as f64, row).unwrap() / 1e9;
    // q8_0: 10 GB/s with 2048-element rows, 8 with 512; log-linear between, flat outside.
    assert!((at(GgmlType::Q8_0, 2048.0) - 10.0).abs() < 1e-9);
    assert!((at(GgmlType::Q8_0, 8192.0) - 10.0).abs() < 1e-9);
    assert!((at(GgmlType::Q8_0, 512.0) - 8.0).abs() < 1e-9);
    assert!((at(GgmlType::Q8_0, 256.0) - 8.0).abs() < 1e-9);
    assert!((at(GgmlType::Q8_0, 1024.0) - 9.0).abs() < 1e-9);
    // q5_0 has no short-row figure of its own: it borrows q8_0's ratio (0.8).
    assert!((at(GgmlType::Q5_0, 512.0) - 6.4).abs() < 1e-9);
    // A calibration from before the short-row figure: no change.
    let old = ThreadRates {
        matvec_short_rows_gb_per_s: Vec::new(),
        ..point(1)
    };
    let r = old
        .matvec_bytes_per_s(GgmlType::Q8_0, (64u64 << 20) as f64, 512.0)
        .unwrap();
    assert!((r / 1e9 - 10.0).abs() < 1e-9);
}

#[test]
fn the_host_pays_for_the_logits_of_each_decode_step() {
    let p = point(1);
    let rates = Rates::Measured(&p);
    let plain = decode_seconds(&part(None), &rates, 0.0).unwrap();
    let sampled = Part {
        sampled_vocab: 262144.0,
        ..part(None)
    };
    let with = decode_seconds(&sampled, &rates, 0.0).unwrap();
    // 4 ns per entry x 262144 entries.
    assert!((with - plain - 262144.0 * 4e-9).abs() < 1e-12);
}

#[test]
fn the_engines_measured_overhead_replaces_the_per_node_cost() {
    let nodes_only = point(1);
    let measured = ThreadRates {
        engine_block_seconds: 50e-6,
        engine_step_seconds: 300e-6,
        ..point(1)
    };
    let host = part(None);
    let t_nodes = decode_seconds(&host, &Rates::Measured(&nodes_only), 0.0).unwrap();
    let t_engine = decode_seconds(&host, &Rates::Measured(&measured), 0.0).unwrap();
    // 30 blocks x 30 nodes + 6 outside at 1 us, against 30 x 50 us + 300 us.
    let expected = (30.0 * 50e-6 + 300e-6) - (30.0 * 30.0 + 6.0) * 1e-6;
    assert!((t_engine - t_nodes - expected).abs() < 1e-12);
    // A part without the embeddings and output pays per block only.
    let blocks_only = Part {
        has_outside: false,
        ..part(None)
    };
    let t_blocks = decode_seconds(&blocks_only, &Rates::Measured(&measured), 0.0).unwrap();
    assert!((t_engine - t_blocks - 300e-6).abs() < 1e-12);
}

#[test]
fn long_context_attention_slows_toward_the_memory_figure() {
    let p = point(1);
    let f = |bytes: u64| {
        p.attn_decode_seconds(GgmlType::F16, 128, bytes as f64, 1.0, 0.0)
            .unwrap()
            * 1e9
    };
    assert!((f(1 << 20) - 0.5).abs() < 1e-9, "in cache");
    assert!((f(256 << 20) - 1.0).abs() < 1e-9, "from memory");
    assert!((f(4 << 30) - 1.0).abs() < 1e-9, "clamped");
    let mid = f(32 << 20);
    assert!(mid > 0.5 && mid < 1.0);
    // Head size 64 (in cache 1.0 ns) waits the same 0.5 ns per cache byte out of memory:
    // 4/3 bytes per unit with 3 query heads per KV head, 2/3 with 6.
    let d64 = |bytes_per_unit: f64| {
        p.attn_decode_seconds(
            GgmlType::F16,
            64,
            (256u64 << 20) as f64,
            bytes_per_unit,
            0.0,
        )
        .unwrap()
            * 1e9
    };
    assert!((d64(4.0 / 3.0) - (1.0 + 0.5 * 4.0 / 3.0)).abs() < 1e-9);
    assert!((d64(2.0 / 3.0) - (1.0 + 0.5 * 2.0 / 3.0)).abs() < 1e-9);
}

#[test]
fn decode_slows_as_the_cache_fills_and_a_window_caps_it() {
    let p = point(1);
    let r = Rates::Measured(&p);
    let full = part(None);
    let swa = part(Some(512));
    let t0 = decode_seconds(&full, &r, 0.0).unwrap();
    let t1 = decode_seconds(&full, &r, 4096.0).unwrap();
    let t2 = decode_seconds(&full, &r, 32768.0).unwrap();
    assert!(t0 < t1 && t1 < t2, "{t0} {t1} {t2}");
    let w1 = decode_seconds(&swa, &r, 4096.0).unwrap();
    let w2 = decode_seconds(&swa, &r, 32768.0).unwrap();
    assert!(
        (w1 - w2).abs() < 1e-12,
        "a sliding window sees the same cells"
    );
    // Weights alone: 60 + 30 MB at ~10 GB/s is about 9 ms, plus 30*30+6 nodes at 1 us.
    assert!(t0 > 0.008 && t0 < 0.012, "{t0}");
}

#[test]
fn prompt_batches_count_flops_and_the_output_once() {
    let p = point(1);
    let r = Rates::Measured(&p);
    let t = prompt_seconds(&part(None), &r, 0.0, 512.0).unwrap();
    // 60 MB of q8_0 = 56.5M weights, 2 FLOPs each per token, 512 tokens, 100 GFLOP/s;
    // attention: 512 queries x 8 heads x 256 cells on average x 128 x 30 layers at 0.1 ns;
    // the 30 MB output once (about 2.4 ms) and 906 nodes at 1 us.
    let weights = 2.0 * 60e6 * 8.0 / 8.5 * 512.0 / 100e9;
    let attention = 512.0 * 8.0 * 256.0 * 128.0 * 30.0 * 0.1e-9;
    let fixed = weights + attention;
    assert!(t > fixed && t < fixed + 0.005, "{t} vs {fixed}");
}

#[test]
fn each_head_size_stalls_by_its_own_long_context_figure() {
    let mut p = point(1);
    // Head size 64 measured at 2.0 ns from memory over 1.0 in cache (9 query heads over 3
    // KV heads: 4/3 bytes per unit): 0.75 ns per byte, against 0.5 at head size 128.
    p.attn_decode_large_ns
        .push(attn(GgmlType::F16, 64, 2.0, 256 << 20));
    let at = |d: u32, per_unit: f64| {
        p.attn_decode_seconds(GgmlType::F16, d, (256u64 << 20) as f64, per_unit, 0.0)
            .unwrap()
            * 1e9
    };
    assert!((at(64, 4.0 / 3.0) - 2.0).abs() < 1e-9);
    assert!((at(128, 1.0) - 1.0).abs() < 1e-9);
    // Between the two: the stall per byte is linear in the head size; the in-cache figure is
    // the interpolated one too (0.75 ns at 96).
    let mid = at(96, 1.0);
    assert!((mid - (0.75 + 0.625)).abs() < 1e-9, "{mid}");
    // A layer reading about half the bytes per unit (a q8_0 cache) stalls half as long.
    let q8 = at(128, 0.53125);
    assert!((q8 - (0.5 + 0.5 * 0.53125)).abs() < 1e-9, "{q8}");
}

#[test]
fn small_layers_stall_by_the_small_layer_figure() {
    let mut p = point(1);
    // Head size 128 (8 query heads over 2 KV heads: 1 byte per unit), 256 MiB in all: layers
    // of 2 MiB measured at 0.7 ns, layers of 16 MiB at 1.0, in cache 0.5.
    let layer = |ns: f64, layer_mib: u64| AttnRate {
        layer_cache_bytes: layer_mib << 20,
        ..attn(GgmlType::F16, 128, ns, 256 << 20)
    };
    p.attn_decode_large_ns = vec![layer(1.0, 16), layer(0.7, 2)];
    let at = |layer_mib: f64| {
        p.attn_decode_seconds(
            GgmlType::F16,
            128,
            (256u64 << 20) as f64,
            1.0,
            layer_mib * (1u64 << 20) as f64,
        )
        .unwrap()
            * 1e9
    };
    assert!((at(2.0) - 0.7).abs() < 1e-9);
    assert!((at(16.0) - 1.0).abs() < 1e-9);
    // Linear in log(layer bytes) between, clamped outside.
    assert!(
        (at(32f64.sqrt()) - 0.85).abs() < 1e-9,
        "{}",
        at(32f64.sqrt())
    );
    assert!((at(0.5) - 0.7).abs() < 1e-9);
    assert!((at(64.0) - 1.0).abs() < 1e-9);
    // A smaller cache in all still ramps from the in-cache figure.
    let ramp = p
        .attn_decode_seconds(
            GgmlType::F16,
            128,
            (4u64 << 20) as f64,
            1.0,
            2.0 * (1 << 20) as f64,
        )
        .unwrap()
        * 1e9;
    assert!((ramp - 0.5).abs() < 1e-9, "{ramp}");
}

#[test]
fn padded_cache_views_split_unevenly_between_threads() {
    // 30 layers of 8 query heads x 128, 2048 bytes a cell; the same figures at 1 and 4
    // threads.
    let mut four = point(4);
    // A flat working-set curve: the weights cost the same with or without the cache.
    four.working_set_curve.clear();
    four.attn_decode_ns
        .push(attn(GgmlType::Q8_0, 128, 0.4, 4 << 20));
    let one = ThreadRates {
        threads: 1,
        ..four.clone()
    };
    let attn_seconds = |r: &ThreadRates, pos: f64, kv: GgmlType| {
        let host = Part {
            kv_type: kv,
            ..part(None)
        };
        let empty = Part {
            attn: Vec::new(),
            ..host.clone()
        };
        decode_seconds(&host, &Rates::Measured(r), pos).unwrap()
            - decode_seconds(&empty, &Rates::Measured(r), pos).unwrap()
    };
    // 523 cells before the token: 524 visible in a view of 768; 4 threads get runs of 192,
    // the busiest 192 visible cells: 192 x 4 / 524 of an even split.
    let even = attn_seconds(&one, 523.0, GgmlType::F16);
    let split = attn_seconds(&four, 523.0, GgmlType::F16);
    assert!(
        (split / even - 192.0 * 4.0 / 524.0).abs() < 1e-9,
        "{}",
        split / even
    );
    // Below 512 cells in view, and for quantized caches, the heads are split instead.
    assert!(
        (attn_seconds(&four, 200.0, GgmlType::F16) / attn_seconds(&one, 200.0, GgmlType::F16)
            - 1.0)
            .abs()
            < 1e-9
    );
    assert!(
        (attn_seconds(&four, 523.0, GgmlType::Q8_0) / attn_seconds(&one, 523.0, GgmlType::Q8_0)
            - 1.0)
            .abs()
            < 1e-9
    );
    // A full view splits evenly.
    assert!(
        (attn_seconds(&four, 1023.0, GgmlType::F16) / attn_seconds(&one, 1023.0, GgmlType::F16)
            - 1.0)
            .abs()
            < 1e-9
    );
}

#[test]
fn prompt_attention_grows_with_the_cells_each_query_sees() {
    let mut p = point(1);
    // Head size 128: 0.1 ns over 512 cells, 0.16 over 8192 (a ratio of 1.6).
    p.attn_prompt_long_ns = vec![attn(GgmlType::F16, 128, 0.16, 1 << 20)];
    let at = |cells: f64| p.attn_prompt_seconds(GgmlType::F16, 128, cells).unwrap() * 1e9;
    assert!((at(256.0) - 0.1).abs() < 1e-12);
    assert!((at(512.0) - 0.1).abs() < 1e-12);
    // Linear in log(cells): 2048 is half way.
    assert!((at(2048.0) - 0.13).abs() < 1e-12, "{}", at(2048.0));
    assert!((at(8192.0) - 0.16).abs() < 1e-12);
    // On to 1.5 times the growth, then flat.
    assert!((at(32768.0) - 0.19).abs() < 1e-12, "{}", at(32768.0));
    assert!((at(1e6) - 0.19).abs() < 1e-12);
    // A long figure below the short one (noise) never makes a long prompt faster.
    p.attn_prompt_long_ns = vec![attn(GgmlType::F16, 128, 0.09, 1 << 20)];
    assert!(
        (p.attn_prompt_seconds(GgmlType::F16, 128, 16384.0).unwrap() * 1e9 - 0.1).abs() < 1e-12
    );
}
