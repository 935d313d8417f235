//! Expected speed of a placement: decode at the start and with the cache filled to the
//! context, prompt processing in micro-batches of `n_ubatch`, each with its band and the
//! basis of its figures (`timing` times one step of a placement).

mod timing;

use super::input::PlanInput;
use super::{Requirements, Speed};
use crate::bytes::Bytes;
use crate::hardware::Snapshot;
use crate::memory::CacheConfig;
use crate::speed::Basis;
use timing::timing;
pub use timing::Placed;

/// The speed of a placement: decode at the start and at the full context, prompt batches
/// from an empty cache, each with its band.
pub(super) fn speed(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    at: &Placed,
    cfg: &CacheConfig,
) -> Option<Speed> {
    let t = timing(inp, snap, req, at, cfg);
    let ctx = cfg.n_ctx as f64;
    let start = t.decode(0.0)?;
    let full = t.decode((ctx - 1.0).max(0.0))?;
    let batch = cfg.n_ubatch.max(1) as f64;
    let prompt = batch / t.prompt(0.0, batch)?;
    let (db, pb) = t.basis.band();
    let ok = |x: f64| x.is_finite() && x > 0.0;
    if !(ok(start) && ok(full) && ok(prompt)) {
        return None;
    }
    let mut basis = match t.basis {
        Basis::Measured => format!(
            "this machine's calibration (layerfit bench) at {} thread{}",
            t.threads,
            if t.threads == 1 { "" } else { "s" }
        ),
        Basis::Published => "GPU spec table x efficiency fitted to published llama.cpp results (docs/speed.md); CPU from this machine's calibration".to_string(),
        Basis::Rough => "rough figures: no calibration for this CPU (memory bandwidth x 70%, SIMD peak x 25%); run `layerfit bench` on the machine".to_string(),
    };
    for n in &t.notes {
        basis.push_str("; ");
        basis.push_str(n);
    }
    // A busy machine: only when the thread count is the default (an explicit --threads is
    // the user's choice) and other work would leave fewer free cores than threads.
    let cores = snap.cpu.physical_cores;
    let busy = req
        .load_average
        .filter(|_| req.threads.is_none())
        .and_then(|load| {
            crate::speed::threads_for_load(cores, load).map(|n| super::Busy {
                load_average: load,
                physical_cores: cores,
                recommended_threads: n,
            })
        });
    Some(Speed {
        threads: t.threads,
        busy,
        decode_tokens_per_s: 1.0 / start,
        decode_tokens_per_s_low: (1.0 - db) / start,
        decode_tokens_per_s_high: (1.0 + db) / start,
        decode_tokens_per_s_at_context: 1.0 / full,
        decode_at_context_low: (1.0 - db) / full,
        decode_at_context_high: (1.0 + db) / full,
        prompt_tokens_per_s: prompt,
        prompt_tokens_per_s_low: prompt * (1.0 - pb),
        prompt_tokens_per_s_high: prompt * (1.0 + pb),
        bytes_per_token_low: Bytes(t.bytes(0.0) as u64),
        bytes_per_token_high: Bytes(t.bytes(ctx) as u64),
        source: t.basis.name().to_string(),
        basis,
        network_share: t.has_links().then(|| t.network(0.0, 1.0) / start),
    })
}

/// Seconds of a decode step at cache position `pos` and of a prompt micro-batch of `batch`
/// tokens from `pos`, for a finished plan (the speed benchmark compares these with the
/// engine at the same positions).
pub fn step_seconds(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    plan: &super::Plan,
    pos: f64,
    batch: f64,
) -> Option<(f64, f64)> {
    let (cpu, gpus) = plan.devices.split_last()?;
    let placed = Placed {
        gpus,
        cpu,
        gpu_blocks: plan.gpu_blocks,
        output_on_gpu: plan.output_on_gpu,
    };
    let cfg = CacheConfig {
        n_ctx: plan.context,
        type_k: plan.kv_type,
        type_v: plan.kv_type,
        flash_attn: plan.flash_attn,
        n_ubatch: req.n_ubatch,
        ..CacheConfig::default()
    };
    let t = timing(inp, snap, req, &placed, &cfg);
    Some((t.decode(pos)?, t.prompt(pos, batch)?))
}
