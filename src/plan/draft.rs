//! A draft model for speculative decoding, placed beside the model it drafts for. Pure code.
//!
//! llama.cpp loads the draft as a second model with a context of its own that holds as many
//! tokens per sequence as the target's (`common/speculative.cpp`,
//! `common_speculative_init_result`: `cparams.n_ctx = llama_n_ctx(ctx_tgt)`), its own cache
//! type (`-ctkd`/`-ctvd`, default f16) and its own offload (`-ngld`, `-devd`). Its weights,
//! KV cache and compute buffers are sized here by the same planner as any model; the target
//! is then planned in what the draft leaves (`Requirements::held`).
//!
//! Two placements are tried: every draft layer on the GPUs, or the GPUs hidden from the draft
//! (`-devd none`). The one that leaves the better target plan wins (verdict, then the
//! target's decode speed); on a tie the draft stays on the GPU, where it drafts fastest.

use super::choose::{choose, Forced, ModelOption, Ranked};
use super::{plan_at, plan_gpu_unused, DeviceUse, Held, Plan, PlanInput, RamUse, Requirements};
use super::{Speed, Verdict};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::Snapshot;
use serde::Serialize;

/// llama.cpp's default number of tokens drafted per step (`common/common.h`,
/// `common_params_speculative_draft::n_max`).
pub const DEFAULT_DRAFT_MAX: u32 = 3;

/// The acceptance rates the speed answer is given at (the share of drafted tokens the
/// target accepts depends on the pair and the text; `run` measures it).
pub const ACCEPTANCE_POINTS: [f64; 3] = [0.5, 0.7, 0.9];

/// What the user asked for: the draft's planner input, cache type and draft length.
#[derive(Clone, Debug)]
pub struct DraftSpec {
    pub label: String,
    /// The file llama.cpp loads.
    pub path: std::path::PathBuf,
    pub input: PlanInput,
    pub kv_type: GgmlType,
    pub draft_max: u32,
}

/// Where the draft's layers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DraftPlacement {
    /// Every layer on the GPUs (`-ngld` = all layers).
    Gpu,
    /// The GPUs hidden from the draft (`-devd none`), or a machine without one.
    Cpu,
}

/// The draft as planned: its memory on each device and what it should give.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DraftPlan {
    pub model: String,
    /// The file llama.cpp loads (`-md`).
    pub path: std::path::PathBuf,
    pub kv_type: GgmlType,
    pub placement: DraftPlacement,
    /// llama.cpp's `-ngld`.
    pub n_gpu_layers: u32,
    pub block_count: u32,
    /// The draft's vocabulary (its output buffer is one row of logits per output).
    pub n_vocab: u64,
    /// Tokens drafted per step (llama.cpp's `--spec-draft-n-max`).
    pub draft_max: u32,
    /// Tokens its context holds per sequence: the target's.
    pub context: u64,
    pub weights_bytes: Bytes,
    pub kv_bytes: Bytes,
    pub compute_bytes: Bytes,
    pub total_bytes: Bytes,
    pub devices: Vec<DeviceUse>,
    pub ram: RamUse,
    /// The speed speculative decoding should give; `None` when either model has no speed
    /// figures.
    pub speed: Option<SpeculativeSpeed>,
}

/// Expected decode speed with the draft, from the two plans' own figures.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SpeculativeSpeed {
    /// The target alone, at the start of a conversation (tokens/s).
    pub target_tokens_per_s: f64,
    /// How fast the target reads the drafted tokens it checks (tokens/s): its prompt rate
    /// when it runs on a GPU; on the CPU its decode rate, since a batch of a few tokens is
    /// compute-bound there (measured: SmolLM2 checked 4 tokens in the time of 4 decode steps
    /// on this 2-core EPYC, docs/speed.md).
    pub verify_prompt_tokens_per_s: f64,
    /// The draft's own decode speed at the start (tokens/s).
    pub draft_tokens_per_s: f64,
    /// Seconds the target takes to check one step's drafted tokens plus one: a decode step
    /// when memory-bound, or the tokens at its prompt rate when compute-bound.
    pub verify_seconds: f64,
    /// The acceptance rate above which the draft makes decoding faster; `None` when it
    /// cannot at any rate.
    pub break_even_acceptance: Option<f64>,
    pub at_acceptance: Vec<AtAcceptance>,
}

/// Expected decode speed at one acceptance rate.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AtAcceptance {
    pub acceptance: f64,
    pub tokens_per_s: f64,
}

/// Tokens one step gives when each drafted token is accepted with probability `a`: the
/// accepted run plus the target's own token (`(1 - a^(n+1)) / (1 - a)`).
pub fn tokens_per_step(a: f64, draft_max: u32) -> f64 {
    let n = draft_max as i32;
    if (1.0 - a).abs() < 1e-12 {
        return (n + 1) as f64;
    }
    (1.0 - a.powi(n + 1)) / (1.0 - a)
}

/// Decode speed with the draft at acceptance `a`, from the target's decode and prompt rates
/// and the draft's decode rate (tokens/s).
pub fn speculative_rate(target: f64, target_prompt: f64, draft: f64, n: u32, a: f64) -> f64 {
    if target <= 0.0 || draft <= 0.0 {
        return 0.0;
    }
    let draft_s = n as f64 / draft;
    tokens_per_step(a, n) / (draft_s + verify_seconds(target, target_prompt, n))
}

fn verify_seconds(target: f64, target_prompt: f64, n: u32) -> f64 {
    let step = 1.0 / target;
    if target_prompt > 0.0 {
        step.max((n + 1) as f64 / target_prompt)
    } else {
        step
    }
}

/// What the draft should give beside `target`'s speed (`target_on_cpu`: no block of the
/// target is on a GPU).
pub fn speculative_speed(
    target: &Speed,
    draft: &Speed,
    n: u32,
    target_on_cpu: bool,
) -> SpeculativeSpeed {
    let t = target.decode_tokens_per_s;
    let tp = if target_on_cpu {
        t
    } else {
        target.prompt_tokens_per_s
    };
    let d = draft.decode_tokens_per_s;
    let rate = |a| speculative_rate(t, tp, d, n, a);
    let break_even = (rate(1.0) > t).then(|| {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..50 {
            let mid = (lo + hi) / 2.0;
            if rate(mid) > t {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        (hi * 1000.0).round() / 1000.0
    });
    SpeculativeSpeed {
        target_tokens_per_s: t,
        verify_prompt_tokens_per_s: tp,
        draft_tokens_per_s: d,
        verify_seconds: verify_seconds(t, tp, n),
        break_even_acceptance: break_even,
        at_acceptance: ACCEPTANCE_POINTS
            .iter()
            .map(|&a| AtAcceptance {
                acceptance: a,
                tokens_per_s: rate(a),
            })
            .collect(),
    }
}

/// The draft's own requirements: the target's context, sequences, reserves and CPU, its own
/// cache type, and no speed floor (the draft's speed is judged through the target's).
fn draft_requirements(req: &Requirements, spec: &DraftSpec) -> Requirements {
    Requirements {
        kv_types: vec![spec.kv_type],
        min_decode_tokens_per_s: None,
        held: Held::default(),
        // The draft reads one token per sequence a step (llama-server's draft context).
        outputs_per_seq: 1,
        ..req.clone()
    }
}

/// The draft at a fixed placement (`-ngld ngl`, or `-devd none` when `gpu_unused`), on its
/// own: a run file's draft, re-planned.
pub fn plan_draft(
    spec: &DraftSpec,
    snap: &Snapshot,
    req: &Requirements,
    ngl: u32,
    gpu_unused: bool,
) -> (DraftPlacement, Plan) {
    let dreq = draft_requirements(req, spec);
    if gpu_unused || snap.gpus.is_empty() {
        let p = if snap.gpus.is_empty() {
            plan_at(&spec.input, snap, &dreq, spec.kv_type, 0, 0)
        } else {
            plan_gpu_unused(&spec.input, snap, &dreq, spec.kv_type)
        };
        (DraftPlacement::Cpu, p)
    } else {
        let p = plan_at(&spec.input, snap, &dreq, spec.kv_type, ngl, 0);
        (DraftPlacement::Gpu, p)
    }
}

/// The draft's placements that fit this machine on their own.
fn placements(
    spec: &DraftSpec,
    snap: &Snapshot,
    req: &Requirements,
) -> Vec<(DraftPlacement, Plan)> {
    let all_layers = spec.input.shape.block_count + 1;
    let mut out = Vec::new();
    if !snap.gpus.is_empty() {
        out.push(plan_draft(spec, snap, req, all_layers, false));
    }
    out.push(plan_draft(spec, snap, req, 0, true));
    out.retain(|(_, p)| p.verdict != Verdict::Incompatible);
    out
}

/// The target's requirements with the draft's memory held and room for its `draft_max`
/// proposals per sequence, which the target verifies in one batch.
pub fn holding(req: &Requirements, draft: &Plan, draft_max: u32) -> Requirements {
    Requirements {
        outputs_per_seq: 1 + draft_max,
        held: Held {
            ram: req.held.ram + draft.ram.total_bytes,
            gpus: draft
                .devices
                .iter()
                .filter(|d| d.is_gpu)
                .enumerate()
                .map(|(i, d)| req.held.gpus.get(i).copied().unwrap_or(Bytes::ZERO) + d.total_bytes)
                .collect(),
        },
        ..req.clone()
    }
}

/// The draft's report beside `target`, the plan made in what it leaves.
pub fn draft_plan(
    spec: &DraftSpec,
    placement: DraftPlacement,
    p: &Plan,
    target: &Plan,
) -> DraftPlan {
    let sum = |f: fn(&DeviceUse) -> Bytes| p.devices.iter().map(f).sum::<Bytes>();
    DraftPlan {
        model: spec.label.clone(),
        path: spec.path.clone(),
        kv_type: spec.kv_type,
        placement,
        n_gpu_layers: p.n_gpu_layers,
        block_count: p.block_count,
        n_vocab: spec.input.shape.n_vocab,
        draft_max: spec.draft_max,
        context: p.context,
        weights_bytes: sum(|d| d.weights_bytes),
        kv_bytes: sum(|d| d.kv_bytes),
        compute_bytes: sum(|d| d.compute_bytes),
        total_bytes: sum(|d| d.total_bytes),
        devices: p.devices.clone(),
        ram: p.ram.clone(),
        speed: match (&target.speed, &p.speed) {
            (Some(t), Some(d)) => Some(speculative_speed(
                t,
                d,
                spec.draft_max,
                target.gpu_blocks == 0,
            )),
            _ => None,
        },
    }
}

/// Better of two target plans: a better verdict, then the faster one at the context.
fn better(a: &Plan, b: &Plan) -> bool {
    let speed = |p: &Plan| p.speed.as_ref().map_or(0.0, |s| s.expected_decode());
    (a.verdict, -speed(a)).partial_cmp(&(b.verdict, -speed(b))) == Some(std::cmp::Ordering::Less)
}

/// Every option of every model, best first, each planned beside the draft where the draft
/// leaves the best plan. Without a draft this is [`choose`]. When the draft fits nowhere on
/// its own, every option is incompatible and says so.
pub fn choose_with_draft(
    models: &[ModelOption],
    snap: &Snapshot,
    req: &Requirements,
    forced: Option<Forced>,
    draft: Option<&DraftSpec>,
) -> Vec<Ranked> {
    let Some(spec) = draft else {
        return choose(models, snap, req, forced);
    };
    let places = placements(spec, snap, req);
    if places.is_empty() {
        let mut ranked = choose(models, snap, req, forced);
        let why = format!(
            "the draft model {} does not fit this machine on its own at {} tokens with a {} cache",
            spec.label, req.min_context, spec.kv_type
        );
        for r in ranked.iter_mut() {
            r.plan.verdict = Verdict::Incompatible;
            r.plan.speed = None;
            r.plan.missing = Some(match r.plan.missing.take() {
                Some(m) => format!("{why}; {m}"),
                None => why.clone(),
            });
        }
        return ranked;
    }
    let mut best: Option<(Vec<Ranked>, DraftPlacement, Plan)> = None;
    for (placement, dp) in places {
        let ranked = choose(models, snap, &holding(req, &dp, spec.draft_max), forced);
        let wins = match &best {
            None => true,
            Some((b, _, _)) => better(&ranked[0].plan, &b[0].plan),
        };
        if wins {
            best = Some((ranked, placement, dp));
        }
    }
    let (mut ranked, placement, dp) = best.expect("at least one placement");
    for r in ranked.iter_mut() {
        r.plan.draft = Some(draft_plan(spec, placement, &dp, &r.plan));
    }
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_per_step_follows_the_geometric_series() {
        assert_eq!(tokens_per_step(0.0, 3), 1.0);
        assert_eq!(tokens_per_step(1.0, 3), 4.0);
        assert!((tokens_per_step(0.5, 3) - 1.875).abs() < 1e-12);
    }

    #[test]
    fn a_draft_pays_off_only_above_its_break_even_rate() {
        // A target at 20 tokens/s (prompt 400/s: verifying 4 tokens costs one step) and a
        // draft 10 times faster: 3 drafted tokens cost 0.015 s beside a 0.05 s step.
        let r0 = speculative_rate(20.0, 400.0, 200.0, 3, 0.0);
        assert!((r0 - 1.0 / 0.065).abs() < 1e-9, "{r0}");
        let r1 = speculative_rate(20.0, 400.0, 200.0, 3, 1.0);
        assert!((r1 - 4.0 / 0.065).abs() < 1e-9, "{r1}");
        // A draft slower than the model never pays off, even when always right.
        assert!(speculative_rate(20.0, 400.0, 15.0, 3, 1.0) < 20.0);
        // Compute-bound verification: 4 tokens at 40 tokens/s take 0.1 s, not 0.05.
        let slow = speculative_rate(20.0, 40.0, 200.0, 3, 1.0);
        assert!((slow - 4.0 / 0.115).abs() < 1e-9, "{slow}");
    }
}
