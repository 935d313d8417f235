//! From a layout to a plan: what runs below the best experience (degradations, each with a
//! kind and a severity), the verdict, the quality loss and the speed.

use super::layout::{Layout, Setup};
use super::quality::{kv_loss, weights_loss, weights_severity, Loss};
use super::speed::speed;
use super::{Plan, Requirements, Verdict};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Mild,
    Moderate,
    Severe,
}

/// The ways a plan can run below the best experience (`degradations[].kind` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DegradationKind {
    /// The KV cache is stored quantized (q8_0: within measurement noise; q4_0: measurable).
    KvQuantized,
    /// Everything runs on the CPU.
    CpuOnly,
    /// MoE expert tensors of some blocks stay on the CPU (`--n-cpu-moe`).
    ExpertsOnCpu,
    /// Dense feed-forward weights of some blocks stay on the CPU (`--n-cpu-ffn`, `-ot`).
    FfnOnCpu,
    /// Weights are not repacked for the CPU's SIMD kernels (`--no-repack`), to save RAM.
    NoRepack,
    /// Mapped weights do not all fit in RAM: they are re-read from disk (mmap).
    WeightsPaged,
    /// Some blocks (weights and their KV cache) run on the CPU.
    PartialOffload,
    /// Offloaded to a software Vulkan device (no speed-up).
    SoftwareGpu,
    /// Less than a tenth of the RAM budget is left.
    ThinRamHeadroom,
    /// The context is longer than the model was trained for.
    BeyondTrainedContext,
    /// The weights' quantization loses measurably (llama.cpp's scoreboard).
    LowBitWeights,
    /// The expected decode speed is below the speed floor (`--min-speed`).
    BelowSpeedFloor,
}

/// One way the plan runs below the best experience, and how badly.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Degradation {
    pub kind: DegradationKind,
    pub severity: Severity,
    pub message: String,
}

/// The quality a plan gives up, as measured (plan/quality.rs).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Quality {
    pub weights: Loss,
    pub kv_cache: Loss,
    /// What the ranking compares: the two losses, each zero below measurement noise.
    pub effective_kld: f64,
}

fn degradation(kind: DegradationKind, severity: Severity, message: String) -> Degradation {
    Degradation {
        kind,
        severity,
        message,
    }
}

/// The fastest sequential read of a consumer SSD (PCIe 4.0 NVMe, Samsung 990 PRO datasheet:
/// 7,450 MB/s): weights re-read from disk for every token cannot come in faster.
const FASTEST_DISK_READ: f64 = 7.45e9;

/// Speed with `paged` bytes re-read from disk per token: the disk's time is added to every
/// token, at the models disk's measured sequential read (`layerfit bench`), else at the
/// fastest read any consumer disk sustains (an upper bound on the speed).
fn paged_bound(mut sp: super::Speed, paged: Bytes, measured: Option<f64>) -> super::Speed {
    if paged == Bytes::ZERO {
        return sp;
    }
    let rate = measured
        .filter(|r| r.is_finite() && *r > 0.0)
        .unwrap_or(FASTEST_DISK_READ);
    let disk = paged.get() as f64 / rate;
    let slow = |x: &mut f64| *x = 1.0 / (1.0 / *x + disk);
    for x in [
        &mut sp.decode_tokens_per_s,
        &mut sp.decode_tokens_per_s_low,
        &mut sp.decode_tokens_per_s_high,
        &mut sp.decode_tokens_per_s_at_context,
        &mut sp.decode_at_context_low,
        &mut sp.decode_at_context_high,
    ] {
        slow(x);
    }
    sp.basis.push_str(&match measured {
        Some(r) => format!(
            "; {paged} of weights re-read from disk per token, at the models disk's measured {:.2} GB/s (layerfit bench)",
            r / 1e9
        ),
        None => format!(
            "; {paged} of weights re-read from disk per token, at most at 7.45 GB/s (the fastest consumer NVMe; `layerfit bench` measures this disk)"
        ),
    });
    sp
}

/// Turns layout `l` (cache type `t`, `-ngl ngl`) into a plan; `missing` says why it does not
/// fit, when it does not.
pub(super) fn finish(
    s: &Setup,
    req: &Requirements,
    t: GgmlType,
    ngl: u32,
    l: Layout,
    missing: Option<String>,
    gpu_unused: bool,
) -> Plan {
    use DegradationKind as K;
    use Severity::*;
    let inp = s.inp;
    let n = inp.shape.block_count;
    let weights = weights_loss(inp.quant.as_deref(), inp.bits_per_weight());
    let kv = kv_loss(t);
    let placed = super::speed::Placed {
        gpus: &l.gpu,
        cpu: &l.cpu,
        gpu_blocks: l.gpu_blocks,
        output_on_gpu: l.output_on_gpu,
    };
    // A context that does not fit gets no speed: there is nothing to run.
    let speed = missing
        .is_none()
        .then(|| {
            let rpc = crate::rpc::hosts::endpoints(&s.snap.gpus);
            let key = crate::speed::measured::placement_key(
                t,
                ngl,
                l.cpu_moe,
                l.cpu_ffn,
                l.no_repack,
                gpu_unused,
                if gpu_unused { &[] } else { &rpc },
                req.parallel.max(1),
            );
            speed(inp, s.snap, req, &placed, &s.cfg, &key)
        })
        .flatten()
        .map(|sp| paged_bound(sp, l.paged, req.disk_read_bytes_per_s));
    let mut deg = Vec::new();
    if missing.is_none() {
        match t {
            // q8_0 is within measurement noise of f16 (plan/quality.rs): not a degradation.
            GgmlType::F16 | GgmlType::F32 | GgmlType::Bf16 | GgmlType::Q8_0 => {}
            other => deg.push(degradation(
                K::KvQuantized,
                Severe,
                format!(
                    "KV cache quantized to {other} (measurable quality loss, KLD {:.3}, worst on long contexts)",
                    kv.kld
                ),
            )),
        }
        if s.snap.gpus.is_empty() {
            deg.push(degradation(
                K::CpuOnly,
                Moderate,
                "no GPU: everything runs on the CPU".into(),
            ));
        } else if gpu_unused {
            deg.push(degradation(K::CpuOnly, Severe, "the GPU cannot hold even llama.cpp's -ngl 0 offload buffers: it is left unused (-dev none) and everything runs on the CPU".into()));
        } else if l.gpu_blocks == 0 {
            deg.push(degradation(
                K::CpuOnly,
                Severe,
                "nothing fits on the GPU: everything runs on the CPU".into(),
            ));
        } else if l.cpu_moe > 0 || l.cpu_ffn > 0 {
            // Tensors of the first blocks on the CPU, attention on the GPU: experts are read
            // only in part per token (milder), dense feed-forward weights whole.
            let (kind, k, flag, what, severity) = if l.cpu_moe > 0 {
                let sev = if l.cpu_moe * 2 <= n { Mild } else { Moderate };
                (
                    K::ExpertsOnCpu,
                    l.cpu_moe,
                    "--n-cpu-moe",
                    "expert tensors",
                    sev,
                )
            } else {
                let sev = if l.cpu_ffn * 2 <= n { Moderate } else { Severe };
                (
                    K::FfnOnCpu,
                    l.cpu_ffn,
                    "--n-cpu-ffn",
                    "feed-forward weights",
                    sev,
                )
            };
            let rest = if kind == K::ExpertsOnCpu {
                "attention and the rest stay on the GPU"
            } else {
                "attention and the KV cache stay on the GPU"
            };
            deg.push(degradation(
                kind,
                severity,
                format!("{what} of the first {k}/{n} blocks run on the CPU ({flag} {k}); {rest}"),
            ));
        } else if l.gpu_blocks < n || !l.output_on_gpu {
            deg.push(degradation(
                K::PartialOffload,
                if l.gpu_blocks * 2 >= n {
                    Moderate
                } else {
                    Severe
                },
                if !s.snap.gpus.is_empty() && s.snap.gpus.iter().all(|g| g.remote.is_some()) {
                    format!(
                        "{}/{} blocks on the RPC servers' devices, {} on this machine's CPU",
                        l.gpu_blocks,
                        n,
                        n - l.gpu_blocks
                    )
                } else {
                    format!(
                        "{}/{} blocks on the GPU, {} on the CPU",
                        l.gpu_blocks,
                        n,
                        n - l.gpu_blocks
                    )
                },
            ));
        }
        if l.paged > Bytes::ZERO {
            deg.push(degradation(
                K::WeightsPaged,
                Severe,
                format!(
                    "{} of the mapped weights do not fit in RAM: llama.cpp re-reads them from disk for every token (mmap), so the disk bounds the speed",
                    l.paged
                ),
            ));
        }
        if l.no_repack {
            deg.push(degradation(
                K::NoRepack,
                Mild,
                "weights are not repacked for the CPU (--no-repack): they stay in the page cache, slower matrix products but no second copy in RAM".into(),
            ));
        }
        let on_gpu = l.gpu_blocks > 0 || l.output_on_gpu;
        if let Some(g) = s.snap.gpus.iter().find(|g| g.software).filter(|_| on_gpu) {
            deg.push(degradation(K::SoftwareGpu, Moderate, format!(
                "offloaded to {}, a software Vulkan device: it computes on the CPU and its memory is RAM (no speed-up; for testing the GPU path)",
                g.name
            )));
        }
        let headroom = l.ram.budget_bytes.saturating_sub(l.ram.total_bytes);
        if headroom.get() < l.ram.budget_bytes.get() / 10 && l.paged == Bytes::ZERO {
            deg.push(degradation(
                K::ThinRamHeadroom,
                Mild,
                format!("only {headroom} of RAM left beyond the plan"),
            ));
        }
        if let (Some(floor), Some(sp)) = (req.min_decode_tokens_per_s, &speed) {
            let expected = sp.expected_decode();
            if expected < floor {
                deg.push(degradation(
                    K::BelowSpeedFloor,
                    Moderate,
                    format!(
                        "about {expected:.1} tokens/s expected, below the speed floor of {floor} tokens/s"
                    ),
                ));
            }
        }
    }
    if req.min_context > inp.shape.context_length {
        deg.push(degradation(
            K::BeyondTrainedContext,
            Severe,
            format!(
                "context {} is beyond the {} tokens the model was trained for",
                req.min_context, inp.shape.context_length
            ),
        ));
    }
    if let Some(sev) = weights_severity(weights.kld) {
        deg.push(degradation(
            K::LowBitWeights,
            sev,
            format!(
                "{} weights lose measurably (KLD {:.3} on llama.cpp's LLaMA 3 8B scoreboard)",
                weights.basis, weights.kld
            ),
        ));
    }
    let verdict = if missing.is_some() {
        Verdict::Incompatible
    } else if deg.is_empty() {
        Verdict::Compatible
    } else {
        Verdict::Degraded
    };
    let mut devices = l.gpu;
    devices.push(l.cpu);
    Plan {
        verdict,
        context: req.min_context,
        parallel: req.parallel.max(1),
        kv_type: t,
        flash_attn: s.cfg.flash_attn,
        n_gpu_layers: ngl,
        block_count: n,
        gpu_blocks: l.gpu_blocks,
        cpu_blocks: n - l.gpu_blocks,
        output_on_gpu: l.output_on_gpu,
        n_cpu_moe: l.cpu_moe,
        n_cpu_ffn: l.cpu_ffn,
        no_repack: l.no_repack,
        gpu_share: l.gpu_blocks as f64 / n.max(1) as f64,
        tensor_split: l.split,
        devices,
        ram: l.ram,
        speed,
        quality: Quality {
            effective_kld: weights.effective() + kv.effective(),
            weights,
            kv_cache: kv,
        },
        degradations: deg,
        missing,
        gpu_unused,
        local_only: false,
        rpc: if gpu_unused {
            Vec::new()
        } else {
            crate::rpc::hosts::endpoints(&s.snap.gpus)
        },
        draft: None,
        projector: None,
    }
}
