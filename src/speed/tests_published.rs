//! The speed model's figures for GPUs without a calibration (published llama.cpp results
//! and spec tables) and the thread count on a busy machine.

use super::ffn_activation::FfnActivation;
use super::model::{decode_seconds, AttnLayer, Part, Rates};
use super::{published, threads_for_load, Basis};
use crate::ggml_type::GgmlType;
use crate::hardware::{Gpu, Vendor};

fn rtx_4090() -> Gpu {
    let mut g = Gpu::new(
        "RTX 4090".into(),
        Vendor::Nvidia,
        crate::bytes::Bytes(24 << 30),
        crate::bytes::Bytes(24 << 30),
        "described",
    );
    g.bandwidth_gbps = Some(1008.0);
    g.fp16_tflops = Some(82.58);
    g.compute_capability = Some("8.9".into());
    g
}

#[test]
fn published_gpu_figures_reproduce_the_sources() {
    let (r, basis) = published::gpu_rates(&rtx_4090(), 4096);
    assert_eq!(basis, Basis::Published);
    // Llama 3 8B Q4_0 (4.33 GiB, 32 blocks) on an RTX 4090 at a depth of 32768 (f16
    // cache, 8 KV heads x 128 x 2 x 2 bytes per layer and cell): 98 tokens/s published
    // (llama.cpp PR #17505).
    let part = Part {
        weights: vec![(GgmlType::Q4_0, 4.33 * (1u64 << 30) as f64)],
        output: None,
        attn: vec![
            AttnLayer {
                n_head: 32,
                head_dim: 128,
                window: None,
                kv_bytes_per_cell: 4096.0,
            };
            32
        ],
        attn_share: 1.0,
        kv_type: GgmlType::F16,
        blocks: 32.0,
        has_outside: true,
        row_elements: 4096.0,
        output_row_elements: 4096.0,
        sampled_vocab: 0.0,
        ffn_elements: 0.0,
        ffn_activation: FfnActivation::Silu,
    };
    let tps = 1.0 / decode_seconds(&part, &r, 32768.0).unwrap();
    assert!((tps / 98.0 - 1.0).abs() < 0.15, "{tps}");
    // A 135M model cannot outrun the per-block cost of a step (30 blocks x 25 us).
    let tiny = Part {
        weights: vec![(GgmlType::Q4_1, 66e6)],
        blocks: 30.0,
        attn: Vec::new(),
        ..part
    };
    let tiny_tps = 1.0 / decode_seconds(&tiny, &r, 0.0).unwrap();
    assert!(
        tiny_tps < 1.0 / (30.0 * 25e-6) && tiny_tps > 500.0,
        "{tiny_tps}"
    );
}

#[test]
fn a_gpu_without_figures_is_rough_and_slow() {
    let mut g = rtx_4090();
    g.bandwidth_gbps = None;
    g.fp16_tflops = None;
    let (r, basis) = published::gpu_rates(&g, 4096);
    assert_eq!(basis, Basis::Rough);
    match r {
        Rates::Spec { bytes_per_s, .. } => {
            assert!((bytes_per_s - 128e9 * published::GPU_DECODE_BANDWIDTH_EFFICIENCY).abs() < 1.0)
        }
        _ => panic!("spec rates expected"),
    }
}

#[test]
fn a_busy_machine_gets_fewer_threads() {
    assert_eq!(threads_for_load(2, 0.2), None);
    assert_eq!(threads_for_load(2, 1.7), Some(1));
    assert_eq!(threads_for_load(8, 3.2), Some(4));
    assert_eq!(threads_for_load(8, 30.0), Some(1));
    assert_eq!(threads_for_load(8, f64::NAN), None);
}

#[test]
fn pcie_links_parse_from_the_probe() {
    let mut g = rtx_4090();
    g.pcie = Some("4.0 x16".into());
    assert!((published::pcie_bytes_per_s(&g) / 1e9 - 25.216).abs() < 0.01);
    g.pcie = Some("garbage".into());
    assert_eq!(
        published::pcie_bytes_per_s(&g),
        published::DEFAULT_PCIE_GBPS * 1e9
    );
}
