//! Rates of devices that are not measured here, from their spec-table figures and
//! efficiency factors fitted to published llama.cpp results (docs/speed.md lists them):
//!
//! - decode streams weights at 87% of the spec bandwidth, plus 25 us per block per step
//!   (kernel launches): fitted to RTX 3090, Llama 3 8B Q4_0, micro-batch 1, 155 tokens/s
//!   (llama.cpp PR #15802) and RTX 4090, Llama 1B Q4_K_M, tg128 762 tokens/s
//!   (geerlingguy/ai-benchmarks#43); checked against RTX 4090, Llama 3 8B Q4_0 at a 32768
//!   depth, 98 tokens/s (PR #17505): the model gives 91.
//! - prompt batches: RTX 4090, Llama 3 8B Q4_0, pp512 10359 tokens/s (PR #7676) is 2.0x the
//!   table's FP16 (non-tensor) TFLOPS on GPUs with tensor cores (int8 MMQ); Apple M2 Ultra,
//!   Llama 2 7B Q4_0, pp512 1238 tokens/s (llama.cpp discussion #4167) is 0.6x; GPUs without
//!   tensor cores get 0.6x as well. Narrower models keep the GPU less busy: RTX 4090, Llama
//!   1B Q4_K_M (hidden size 2048), pp4096 18709 tokens/s (geerlingguy/ai-benchmarks#43) is a
//!   quarter of the 8B's (4096) efficiency, so the factor scales with (hidden size / 4096)^2,
//!   at most 1.
//! - a CPU without a calibration: decode at 70% of its memory bandwidth and prompt at 25% of
//!   its SIMD peak (this machine's calibration against its measured figures), 1 us per
//!   graph node.

use super::model::{Rates, NODES_PER_BLOCK};
use super::Basis;
use crate::hardware::{Cpu, Gpu, Vendor};

pub const GPU_DECODE_BANDWIDTH_EFFICIENCY: f64 = 0.87;
pub const GPU_SECONDS_PER_BLOCK: f64 = 25e-6;
pub const GPU_PROMPT_TENSOR_CORE_FACTOR: f64 = 2.0;
pub const GPU_PROMPT_OTHER_FACTOR: f64 = 0.6;
pub const CPU_DECODE_BANDWIDTH_EFFICIENCY: f64 = 0.7;
pub const CPU_PROMPT_PEAK_EFFICIENCY: f64 = 0.25;
pub const CPU_NODE_SECONDS: f64 = 1e-6;
/// A GPU neither probed with figures nor in the spec table: an entry-level discrete card
/// (GTX 1650 class: 128 GB/s, 6 TFLOPS), said in the basis.
pub const UNKNOWN_GPU_BANDWIDTH_GBPS: f64 = 128.0;
pub const UNKNOWN_GPU_TFLOPS: f64 = 6.0;
/// A CPU without a bandwidth figure: one channel pair of DDR4-3200 (51.2 GB/s peak).
pub const UNKNOWN_CPU_BANDWIDTH_GBPS: f64 = 51.2;
/// PCIe bandwidth for host weights a GPU borrows during prompt batches, when the link is
/// not known: PCIe 4.0 x16 at 80% of its 31.5 GB/s.
pub const DEFAULT_PCIE_GBPS: f64 = 25.0;

/// A GPU's rates for a model of hidden size `n_embd`, and how sure they are.
pub fn gpu_rates(g: &Gpu, n_embd: u64) -> (Rates<'static>, Basis) {
    let known = g.bandwidth_gbps.filter(|b| b.is_finite() && *b > 0.0);
    let basis = if known.is_some() {
        Basis::Published
    } else {
        Basis::Rough
    };
    let bw = known.unwrap_or(UNKNOWN_GPU_BANDWIDTH_GBPS) * 1e9;
    let tflops = g
        .fp16_tflops
        .filter(|t| t.is_finite() && *t > 0.0)
        .unwrap_or(UNKNOWN_GPU_TFLOPS);
    let tensor_cores = g.vendor == Vendor::Nvidia
        && g.compute_capability
            .as_deref()
            .and_then(|c| c.split('.').next()?.parse::<u32>().ok())
            .is_some_and(|major| major >= 7);
    let width = (n_embd as f64 / 4096.0).min(1.0);
    let factor = if tensor_cores {
        GPU_PROMPT_TENSOR_CORE_FACTOR
    } else {
        GPU_PROMPT_OTHER_FACTOR
    } * (width * width).max(1e-3);
    (
        Rates::Spec {
            bytes_per_s: bw * GPU_DECODE_BANDWIDTH_EFFICIENCY,
            flops: tflops * 1e12 * factor,
            attn_flops: tflops * 1e12 * factor,
            seconds_per_block: GPU_SECONDS_PER_BLOCK,
        },
        basis,
    )
}

/// A CPU without a calibration, from its bandwidth (measured or described) and SIMD peak
/// at `threads`.
pub fn cpu_rates(cpu: &Cpu, threads: u32) -> Rates<'static> {
    let bw = cpu
        .memory_bandwidth_gbps
        .filter(|b| b.is_finite() && *b > 0.0)
        .unwrap_or(UNKNOWN_CPU_BANDWIDTH_GBPS)
        * 1e9;
    let cores = cpu.physical_cores.max(1) as f64;
    let used = (threads.max(1) as f64).min(cores);
    let peak = cpu.peak_flops().unwrap_or(cores * 16.0 * 2.5e9) * used / cores;
    Rates::Spec {
        bytes_per_s: bw * CPU_DECODE_BANDWIDTH_EFFICIENCY,
        flops: peak * CPU_PROMPT_PEAK_EFFICIENCY,
        attn_flops: peak * CPU_PROMPT_PEAK_EFFICIENCY,
        seconds_per_block: NODES_PER_BLOCK * CPU_NODE_SECONDS,
    }
}

/// PCIe bandwidth (bytes/s) of a GPU's link: from a probed `gen x width` string, else the
/// default.
pub fn pcie_bytes_per_s(g: &Gpu) -> f64 {
    let parsed = g.pcie.as_deref().and_then(|s| {
        let nums: Vec<f64> = s
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .filter_map(|x| x.parse().ok())
            .collect();
        let (gen, width) = (*nums.first()?, *nums.get(1)?);
        // GB/s per lane: gen 3 ~0.985, gen 4 ~1.97, gen 5 ~3.94.
        let per_lane = 0.985 * 2f64.powf(gen - 3.0);
        (gen >= 1.0 && width >= 1.0).then_some(per_lane * width * 0.8)
    });
    parsed.unwrap_or(DEFAULT_PCIE_GBPS) * 1e9
}
