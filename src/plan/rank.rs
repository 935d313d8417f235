//! The ranking every command shares (docs/ranking.md): feasible before infeasible; then
//! fewer and milder degradations; then the model listed first; then the smaller measured
//! quality loss (losses within
//! measurement noise are equal) unless the plan is below the speed floor, where the faster
//! wins; then the faster; then a downloaded file over a download; then less memory.

use super::{DegradationKind, Plan, Severity, Verdict};
use crate::bytes::Bytes;
use std::cmp::Ordering;

/// One option to rank: a plan, whether its file is already on disk, and where its model
/// stands in the user's list (models are listed best first: a 7B before its 3B fallback;
/// the variants of one model share a place).
#[derive(Clone, Copy, Debug)]
pub struct Contender<'a> {
    pub plan: &'a Plan,
    pub downloaded: bool,
    pub preference: usize,
}

/// A contender's place: its index in the input, and (for every place but the first) the
/// first rule by which the winner beat it, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub index: usize,
    pub lost_because: Option<String>,
}

fn counts(p: &Plan) -> (usize, usize, usize) {
    let n = |s: Severity| p.degradations.iter().filter(|d| d.severity == s).count();
    (
        n(Severity::Severe),
        n(Severity::Moderate),
        n(Severity::Mild),
    )
}

fn below_floor(p: &Plan) -> bool {
    p.degradations
        .iter()
        .any(|d| d.kind == DegradationKind::BelowSpeedFloor)
}

fn memory(p: &Plan) -> Bytes {
    p.devices.iter().map(|d| d.total_bytes).sum()
}

/// Decode speed where known; `None` when a device's bandwidth is unknown.
fn speed(p: &Plan) -> Option<f64> {
    p.speed.as_ref().map(|s| s.expected_decode())
}

/// The share of the bytes read per token (weights and KV cache) that a GPU reads.
fn gpu_byte_share(p: &Plan) -> f64 {
    let read = |d: &super::DeviceUse| (d.weights_bytes + d.kv_bytes).get() as f64;
    let all: f64 = p.devices.iter().map(read).sum();
    let gpu: f64 = p.devices.iter().filter(|d| d.is_gpu).map(read).sum();
    if all > 0.0 {
        gpu / all
    } else {
        0.0
    }
}

/// Faster first: by the expected figure when both are known, else by the share of the bytes
/// read per token that a GPU reads, then the fewer bytes of weights.
fn faster(a: &Plan, b: &Plan) -> Ordering {
    match (speed(a), speed(b)) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        _ => gpu_byte_share(b)
            .total_cmp(&gpu_byte_share(a))
            .then_with(|| {
                let w = |p: &Plan| -> Bytes { p.devices.iter().map(|d| d.weights_bytes).sum() };
                w(a).cmp(&w(b))
            }),
    }
}

/// Why an option lost by the third rule: the winner runs as well and its model comes first
/// in the user's list. Callers whose list is of something else (`check-requirements`' tiers)
/// say it in their own words.
pub const LISTED_AFTER: &str = "listed after the recommended model, which runs as well";

/// One rule: what losing it means, and the comparison (`Less`: the first is better).
type Rule<'a> = (&'static str, fn(&Contender<'a>, &Contender<'a>) -> Ordering);

/// The rules in order.
fn rules<'a>() -> [Rule<'a>; 7] {
    [
        ("does not fit", |a, b| infeasible(a).cmp(&infeasible(b))),
        ("more or worse degradations", |a, b| {
            counts(a.plan).cmp(&counts(b.plan))
        }),
        (LISTED_AFTER, |a, b| a.preference.cmp(&b.preference)),
        ("lower quality", |a, b| {
            if below_floor(a.plan) && below_floor(b.plan) {
                return Ordering::Equal;
            }
            a.plan
                .quality
                .effective_kld
                .total_cmp(&b.plan.quality.effective_kld)
        }),
        ("slower", |a, b| faster(a.plan, b.plan)),
        ("not downloaded", |a, b| b.downloaded.cmp(&a.downloaded)),
        ("needs more memory", |a, b| {
            memory(a.plan).cmp(&memory(b.plan))
        }),
    ]
}

fn infeasible(c: &Contender) -> bool {
    c.plan.verdict == Verdict::Incompatible
}

fn compare(a: &Contender, b: &Contender) -> Ordering {
    // Among plans that do not fit, the one that needs the least memory is the nearest to
    // fitting: its shortfall is what the report states.
    if infeasible(a) && infeasible(b) {
        return memory(a.plan).cmp(&memory(b.plan));
    }
    rules()
        .iter()
        .map(|(_, f)| f(a, b))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// Why `loser` ranks below `winner`, in words with the figures.
fn why_lost(winner: &Contender, loser: &Contender) -> String {
    if infeasible(loser) {
        return if infeasible(winner) {
            format!(
                "does not fit either, and needs more memory: {} against {}",
                memory(loser.plan),
                memory(winner.plan)
            )
        } else {
            "does not fit".into()
        };
    }
    let rule = rules()
        .iter()
        .find(|(_, f)| f(winner, loser) == Ordering::Less)
        .map(|(name, _)| *name)
        .unwrap_or("ranked later (an equal option)");
    let (w, l) = (winner.plan, loser.plan);
    match rule {
        "more or worse degradations" => {
            let kinds: Vec<String> = l
                .degradations
                .iter()
                .map(|d| {
                    format!(
                        "{} ({})",
                        serde_json::to_value(d.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                        format!("{:?}", d.severity).to_lowercase()
                    )
                })
                .collect();
            format!("{rule}: {}", kinds.join(", "))
        }
        "lower quality" => format!(
            "{rule}: KLD {:.4} against {:.4}",
            l.quality.effective_kld, w.quality.effective_kld
        ),
        "slower" => match (speed(l), speed(w)) {
            (Some(x), Some(y)) => format!("{rule}: about {x:.1} against {y:.1} tokens/s"),
            _ => format!(
                "{rule}: a GPU reads {:.0}% of the bytes per token against {:.0}%",
                gpu_byte_share(l) * 100.0,
                gpu_byte_share(w) * 100.0
            ),
        },
        "needs more memory" => format!("{rule}: {} against {}", memory(l), memory(w)),
        other => other.to_string(),
    }
}

/// The contenders best first. Stable: equal contenders keep their input order.
pub fn rank(cs: &[Contender]) -> Vec<Standing> {
    let mut order: Vec<usize> = (0..cs.len()).collect();
    order.sort_by(|&a, &b| compare(&cs[a], &cs[b]));
    order
        .iter()
        .enumerate()
        .map(|(place, &i)| Standing {
            index: i,
            lost_because: (place > 0).then(|| why_lost(&cs[order[0]], &cs[i])),
        })
        .collect()
}
