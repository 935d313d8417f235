//! `layerfit bench`: measures the speed model's figures on this CPU through the bundled
//! engine's own kernels (`ggml_bench`), at the thread counts plans use.

use super::ggml_bench::CpuBackend;
use crate::ggml_type::GgmlType;
use crate::speed::calibration::{
    AttnRate, Calibration, ThreadRates, TypeRate, WorkingSetRate, CALIBRATION_VERSION,
};
use std::time::{Duration, Instant};

/// Weight types whose kernels are measured: the common quantizations of published GGUF
/// files (others borrow the nearest, `calibration::stand_in`).
pub const WEIGHT_TYPES: &[GgmlType] = &[
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q8_0,
    GgmlType::Q6K,
    GgmlType::Q5K,
    GgmlType::Q5_0,
    GgmlType::Q4K,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q3K,
    GgmlType::Q2K,
    GgmlType::Iq4Xs,
];
pub const KV_TYPES: &[GgmlType] = &[GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];
const HEAD_DIMS: &[u32] = &[64, 128, 256];
/// Rows of the measured matrices (a typical hidden size).
const K: u64 = 2048;
const MID_WORKING_SET: u64 = 64 << 20;

/// How long to spend: `Full` for `layerfit bench`, `Short` for a plan that found none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Depth {
    Full,
    Short,
}

impl Depth {
    fn budget(self) -> Duration {
        match self {
            Depth::Full => Duration::from_millis(120),
            Depth::Short => Duration::from_millis(40),
        }
    }
}

/// Measures at each of `threads` (deduplicated, ascending); `progress(done, total, what)`
/// after each figure. `max_working_set` caps the largest buffer (a fraction of free RAM).
pub fn calibrate(
    threads: &[u32],
    depth: Depth,
    max_working_set: u64,
    machine: String,
    engine: String,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Calibration, String> {
    let start = Instant::now();
    let mut counts: Vec<u32> = threads.iter().map(|&t| t.max(1)).collect();
    counts.sort_unstable();
    counts.dedup();
    let sizes: Vec<u64> = [8u64 << 20, 32 << 20, 128 << 20, 512 << 20]
        .into_iter()
        .filter(|&s| s <= max_working_set.max(8 << 20))
        .collect();
    let per_point = WEIGHT_TYPES.len() * 2 + sizes.len() + KV_TYPES.len() * HEAD_DIMS.len() * 2 + 1;
    let total = per_point * counts.len();
    let mut done = 0usize;
    let mut points = Vec::new();
    for &n in &counts {
        let be = CpuBackend::new(n).ok_or("the engine's CPU back-end did not start")?;
        let budget = depth.budget();
        let mut step = |what: &str| {
            done += 1;
            progress(done, total, &format!("{n} thread{}: {what}", if n == 1 { "" } else { "s" }));
        };
        let mut matvec = Vec::new();
        let mut matmul = Vec::new();
        for &t in WEIGHT_TYPES {
            let row = t.row_size(K).map_or(0, |b| b.get());
            let m = 1024u64;
            let copies = (MID_WORKING_SET / (row * m).max(1)).max(1) as usize;
            if let Some(s) = be.mul_mat(t, K, m, 1, copies, budget) {
                let bytes = (row * m) as f64 * copies as f64;
                matvec.push(rate(t, bytes / s / 1e9));
            }
            step(&format!("{} x vector", t.name()));
            if let Some(s) = be.mul_mat(t, K, K, 512, 1, budget) {
                matmul.push(rate(t, 2.0 * (K * K * 512) as f64 / s / 1e9));
            }
            step(&format!("{} x 512", t.name()));
        }
        let mut curve = Vec::new();
        for &size in &sizes {
            let t = GgmlType::Q8_0;
            let one = t.row_size(K).map_or(1, |b| b.get()) * 1024;
            let copies = (size / one).max(1) as usize;
            if let Some(s) = be.mul_mat(t, K, 1024, 1, copies, budget) {
                curve.push(WorkingSetRate {
                    working_set_bytes: one * copies as u64,
                    gb_per_s: (one * copies as u64) as f64 / s / 1e9,
                });
            }
            step(&format!("memory at {} MiB", size >> 20));
        }
        let (mut decode, mut prompt) = (Vec::new(), Vec::new());
        for &kv in KV_TYPES {
            for &d in HEAD_DIMS {
                let (h, hkv, cells) = (8u64, 2u64, 4096u64);
                if let Some(s) = be.flash_attn(kv, d as u64, h, hkv, cells, 1, budget) {
                    decode.push(attn(kv, d, s / (h * cells * d as u64) as f64));
                }
                step(&format!("attention over a {} cache, head {d}", kv.name()));
                let (q, cells) = (256u64, 1024u64);
                if let Some(s) = be.flash_attn(kv, d as u64, h, hkv, cells, q, budget) {
                    prompt.push(attn(kv, d, s / (q * h * cells * d as u64) as f64));
                }
                step(&format!("prompt attention, {} cache, head {d}", kv.name()));
            }
        }
        let node = be.tiny_nodes(500, 2048, budget).unwrap_or(1e-6);
        step("graph nodes");
        points.push(ThreadRates {
            threads: n,
            matvec_gb_per_s: matvec,
            matvec_working_set_bytes: MID_WORKING_SET,
            working_set_curve: curve,
            matmul_gflop_per_s: matmul,
            attn_decode_ns: decode,
            attn_prompt_ns: prompt,
            node_seconds: node,
        });
    }
    Ok(Calibration {
        version: CALIBRATION_VERSION,
        machine,
        engine,
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        kind: match depth {
            Depth::Full => "full",
            Depth::Short => "short",
        }
        .into(),
        seconds_taken: start.elapsed().as_secs_f64(),
        points,
    })
}

fn rate(t: GgmlType, value: f64) -> TypeRate {
    TypeRate {
        type_name: t.name().into(),
        value,
    }
}

fn attn(t: GgmlType, head_dim: u32, seconds: f64) -> AttnRate {
    AttnRate {
        type_name: t.name().into(),
        head_dim,
        ns: seconds * 1e9,
    }
}
