//! Expected speed of a layout: decode is memory-bound, prompt processing compute-bound.

use super::input::PlanInput;
use super::layout::Layout;
use super::Speed;
use crate::bytes::Bytes;
use crate::hardware::Snapshot;
use crate::memory::{CacheConfig, KvEstimate};

/// Decode is memory-bound: each token reads the weights on every device (only the used
/// experts of MoE layers; one row of the embeddings) and the KV cache filled so far.
/// High end: empty context at the device's full bandwidth; low end: full context at 60%.
///
/// Prompt processing is compute-bound: 2 FLOPs per active weight per token, plus attention
/// (4 x heads x head size per cached token and layer). High end: empty context at 50% of the
/// device's peak; low end: attention over a full context at 20%. A device without a known
/// bandwidth (or peak) leaves that figure out rather than guessing.
pub(super) fn speed(
    inp: &PlanInput,
    snap: &Snapshot,
    l: &Layout,
    cfg: &CacheConfig,
    kv: &KvEstimate,
) -> Option<Speed> {
    let expert_fraction = if inp.shape.n_expert > 0 {
        inp.shape.n_expert_used as f64 / inp.shape.n_expert as f64
    } else {
        1.0
    };
    let experts: Bytes = inp.weights.experts_per_block.iter().copied().sum();
    let total_w = inp.weights.total.get().max(1) as f64;
    // Bytes of a device's weights read per token (inactive experts skipped).
    let active = |w: Bytes| {
        let share = w.get() as f64 / total_w;
        (w.get() as f64 - experts.get() as f64 * share * (1.0 - expert_fraction)).max(0.0)
    };
    // Weights per parameter, to turn bytes into FLOPs.
    let bytes_per_param = total_w / inp.weights.n_params.max(1) as f64;
    let attn_flops_per_ctx: f64 = inp
        .shape
        .layers
        .iter()
        .filter(|x| x.has_kv)
        .map(|x| 4.0 * x.n_head as f64 * x.head_dim_k as f64)
        .sum::<f64>();
    let filled = cfg.n_ctx as f64 / kv.cells.max(1) as f64;
    let n_blocks = inp.shape.block_count.max(1) as f64;
    let (mut t_low, mut t_high, mut b_low, mut b_high) = (0.0, 0.0, 0.0, 0.0);
    let (mut p_low, mut p_high) = (Some(0.0), Some(0.0));
    // `out`: bytes of the output projection on this device; a prompt batch computes logits
    // for its last token only, so prompt FLOPs leave it out.
    let mut add = |w: f64, out: f64, k: f64, bw: Option<f64>, flops: Option<f64>, blocks: f64| {
        b_high += w;
        b_low += w + k;
        let f_w = 2.0 * w / bytes_per_param;
        let f_a = attn_flops_per_ctx * (blocks / n_blocks) * cfg.n_ctx as f64;
        // A decoded token is bounded by memory (bytes over bandwidth) or, for small models on
        // CPUs, by the matrix-vector products (10-30% of peak FLOP/s): whichever is slower.
        match bw {
            Some(bw) => {
                let (c_hi, c_lo) = match flops {
                    Some(f) => (f_w / (f * 0.3), (f_w + f_a) / (f * 0.1)),
                    None => (0.0, 0.0),
                };
                t_high += (w / bw).max(c_hi);
                t_low += ((w + k) / (bw * 0.6)).max(c_lo);
            }
            None if w + k > 0.0 => t_high = f64::NAN,
            None => {}
        }
        match flops {
            Some(f) => {
                let f_p = 2.0 * (w - out).max(0.0) / bytes_per_param;
                p_high = p_high.map(|t| t + f_p / (f * 0.5));
                p_low = p_low.map(|t| t + (f_p + f_a) / (f * 0.2));
            }
            None if w > 0.0 => {
                p_high = None;
                p_low = None;
            }
            None => {}
        }
    };
    let output_proj = (if inp.tied_output {
        inp.weights.token_embd
    } else {
        inp.weights.output
    })
    .get() as f64;
    let out_gpu = l.gpu.len().saturating_sub(1);
    for (i, g) in l.gpu.iter().enumerate() {
        let gpu = snap.gpus.get(i)?;
        let share = g.weights_bytes.get() as f64 / total_w;
        add(
            active(g.weights_bytes),
            if l.output_on_gpu && i == out_gpu {
                output_proj
            } else {
                0.0
            },
            g.kv_bytes.get() as f64 * filled,
            gpu.bandwidth_gbps.map(|b| b * 1e9),
            gpu.fp16_tflops.map(|t| t * 1e12),
            n_blocks * share,
        );
    }
    // Only one embedding row is read per token, unless the output layer is tied to the
    // embeddings and runs here: then the whole matrix is read by the output projection.
    let cpu_w = if inp.tied_output && !l.output_on_gpu {
        l.cpu.weights_bytes
    } else {
        l.cpu.weights_bytes.saturating_sub(inp.weights.token_embd)
    };
    add(
        active(cpu_w),
        if l.output_on_gpu { 0.0 } else { output_proj },
        l.cpu.kv_bytes.get() as f64 * filled,
        snap.cpu.memory_bandwidth_gbps.map(|b| b * 1e9),
        snap.cpu.peak_flops(),
        n_blocks - l.gpu_blocks as f64,
    );
    if t_high.is_nan() || t_high <= 0.0 {
        return None;
    }
    let rate = |t: Option<f64>| t.filter(|&t| t > 0.0).map(|t| 1.0 / t);
    Some(Speed {
        decode_tokens_per_s_low: 1.0 / t_low,
        decode_tokens_per_s_high: 1.0 / t_high,
        bytes_per_token_low: Bytes(b_high as u64),
        bytes_per_token_high: Bytes(b_low as u64),
        prompt_tokens_per_s_low: rate(p_low),
        prompt_tokens_per_s_high: rate(p_high),
        basis: "decode: bytes read per token over device bandwidth (GPU table/NVML; CPU measured); prompt: FLOPs per token over peak FLOP/s (GPU table; CPU cores x SIMD x clock)".into(),
    })
}
