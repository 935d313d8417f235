//! Expected speed of a placement: decode at the start and with the cache filled to the
//! context, prompt processing in micro-batches of `n_ubatch`, each with its band and the
//! basis of its figures (`timing` times one step of a placement).

mod timing;

use super::input::PlanInput;
use super::{Requirements, Speed};
use crate::bytes::Bytes;
use crate::hardware::Snapshot;
use crate::memory::CacheConfig;
use crate::speed::{measured, Basis};
use timing::timing;
pub use timing::Placed;

/// The speed of a placement (`placement`: its `speed::measured::placement_key`): decode at
/// the start and at the full context, prompt batches from an empty cache, each with its
/// band. Where `run` or `serve` timed this file with this placement here, the model's
/// figures are scaled to those runs and the band is their spread; on a calibrated CPU the
/// band is the model's largest error on the runs recorded here (docs/speed.md).
pub(super) fn speed(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    at: &Placed,
    cfg: &CacheConfig,
    placement: &str,
) -> Option<Speed> {
    let t = timing(inp, snap, req, at, cfg);
    let ctx = cfg.n_ctx as f64;
    let mut start = t.decode(0.0)?;
    let mut full = t.decode((ctx - 1.0).max(0.0))?;
    let batch = cfg.n_ubatch.max(1) as f64;
    let mut prompt = batch / t.prompt(0.0, batch)?;
    let (mut db, mut pb) = t.basis.band();
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
    let mut source = t.basis.name().to_string();
    let mut threads = t.threads;
    if t.basis == Basis::Measured {
        // The band: the calibration's own spread and the model's error, on the runs timed
        // here where there are any, else on the real models of the speed benchmark.
        let spread = req
            .calibration
            .as_ref()
            .and_then(|c| c.spread)
            .unwrap_or(0.0);
        let (err, on) = match req.measured.as_ref().and_then(|m| m.model_error()) {
            Some(e) => (e, "the runs timed here"),
            None => (db, "the speed benchmark's real models"),
        };
        db = spread.hypot(err).clamp(measured::MIN_RUN_BAND, 0.9);
        basis.push_str(&format!(
            "; band ±{:.0}%: the calibration's spread ({:.0}%) and the model's error on {on} ({:.0}%)",
            db * 100.0,
            spread * 100.0,
            err * 100.0
        ));
    }
    // `run` follows a busy machine's thread recommendation: its runs are at that count.
    let run_threads = busy.as_ref().map_or(t.threads, |b| b.recommended_threads);
    let (runs, same_placement) = match (&req.measured, &inp.file) {
        (Some(m), Some((file, bytes))) => m.of(file, *bytes, placement, run_threads),
        _ => (Vec::new(), false),
    };
    let mut summary = None;
    // Measured over predicted, per run, at the run's own cache position and prompt length.
    let mut dr: Vec<f64> = runs
        .iter()
        .filter_map(|r| Some(r.decode_tokens_per_s * t.decode(r.decode_position())?))
        .filter(|x| ok(*x))
        .collect();
    if !dr.is_empty() {
        let k = measured::median(&mut dr);
        db = measured::spread(&dr, k);
        start /= k;
        full /= k;
        let mut pr: Vec<f64> = runs
            .iter()
            .filter(|r| r.prompt_tokens >= measured::MIN_PROMPT)
            .filter_map(|r| {
                let b = (r.prompt_tokens as f64).min(batch);
                Some(r.prompt_tokens_per_s? * t.prompt(0.0, b)? / b)
            })
            .filter(|x| ok(*x))
            .collect();
        if !pr.is_empty() {
            let kp = measured::median(&mut pr);
            pb = measured::spread(&pr, kp);
            prompt *= kp;
        }
        let mut d: Vec<f64> = runs.iter().map(|r| r.decode_tokens_per_s).collect();
        let mut p: Vec<f64> = runs.iter().filter_map(|r| r.prompt_tokens_per_s).collect();
        summary = Some(super::MeasuredSummary {
            runs: runs.len() as u32,
            threads: run_threads,
            decode_tokens_per_s: measured::median(&mut d),
            prompt_tokens_per_s: (!p.is_empty()).then(|| measured::median(&mut p)),
        });
        source = "measured_run".into();
        threads = run_threads;
        basis = format!(
            "measured: {} run{} of this file {} on this machine (layerfit run/serve), scaled along the context by the model; band: their spread; {basis}",
            runs.len(),
            if runs.len() == 1 { "" } else { "s" },
            if same_placement {
                "with this placement"
            } else {
                "with other placements (their ratio to the model carried over)"
            }
        );
    }
    Some(Speed {
        threads,
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
        source,
        basis,
        network_share: t.has_links().then(|| t.network(0.0, 1.0) / start),
        measured: summary,
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
