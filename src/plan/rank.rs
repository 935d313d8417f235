//! The ranking every command shares (docs/ranking.md): feasible before infeasible; a
//! complete file before an interrupted download; then fewer and milder degradations (between
//! a split over RPC servers and this machine alone, not counting where the weights are:
//! the speed decides that); then the model listed first; then the smaller measured quality
//! loss (losses within measurement noise are equal) unless both plans are below the speed
//! floor and one is faster beyond the estimate's error, where the faster wins; then the
//! faster; then a downloaded file over a download; then less memory.

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
    /// The file on disk lacks tensor data (an interrupted download): ranked as the finished
    /// file would be, after every complete one, then marked incompatible by the caller.
    pub incomplete: bool,
}

/// A contender's place: its index in the input, and (for every place but the first) the
/// first rule by which the winner beat it, in words.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub index: usize,
    pub lost_because: Option<String>,
}

/// Degradations that say where the weights run (the CPU, part on the CPU): between a split
/// over RPC servers and this machine alone the speed says what they cost.
fn placement(k: DegradationKind) -> bool {
    use DegradationKind as K;
    matches!(
        k,
        K::CpuOnly | K::PartialOffload | K::ExpertsOnCpu | K::FfnOnCpu
    )
}

/// Both plans are choices about RPC servers: each uses them or leaves them out.
fn local_against_remote(a: &Plan, b: &Plan) -> bool {
    let involved = |p: &Plan| p.local_only || !p.rpc.is_empty();
    involved(a) && involved(b)
}

fn degradation_order(a: &Plan, b: &Plan) -> Ordering {
    let skip = local_against_remote(a, b);
    counts(a, skip).cmp(&counts(b, skip))
}

fn counts(p: &Plan, skip_placement: bool) -> (usize, usize, usize) {
    let n = |s: Severity| {
        p.degradations
            .iter()
            .filter(|d| d.severity == s && !(skip_placement && placement(d.kind)))
            .count()
    };
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

/// The expected decode figure and its upper bound (the band at the required context).
fn band(p: &Plan) -> Option<(f64, f64)> {
    p.speed.as_ref().map(|s| {
        (
            s.expected_decode(),
            s.decode_at_context_high.max(s.expected_decode()),
        )
    })
}

fn speed_of(p: &Plan) -> f64 {
    band(p).map_or(0.0, |b| b.0)
}

/// Speed classes of the plans below the speed floor: the fastest, with every plan it is not
/// faster than beyond the estimate's own error (its expected figure within their upper
/// bound), is class 0; the same among the rest gives class 1, and so on. Within a class
/// speeds are equal, so quality decides: a smaller difference is no reason to give up
/// quality. Anchored at each class's fastest plan, the classes order the plans consistently.
fn speed_classes(cs: &[Contender]) -> Vec<usize> {
    let mut class = vec![usize::MAX; cs.len()];
    let below: Vec<usize> = (0..cs.len())
        .filter(|&i| below_floor(cs[i].plan) && band(cs[i].plan).is_some())
        .collect();
    let mut next = 0;
    loop {
        let fastest = below
            .iter()
            .filter(|&&i| class[i] == usize::MAX)
            .max_by(|&&a, &&b| speed_of(cs[a].plan).total_cmp(&speed_of(cs[b].plan)));
        let Some(&anchor) = fastest else { break };
        let top = speed_of(cs[anchor].plan);
        for &i in &below {
            if class[i] == usize::MAX && band(cs[i].plan).is_some_and(|(_, high)| top <= high) {
                class[i] = next;
            }
        }
        class[anchor] = next;
        next += 1;
    }
    class
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

/// Why an option lost by the fourth rule: the winner runs as well and its model comes first
/// in the user's list. Callers whose list is of something else (`check-requirements`' tiers)
/// say it in their own words.
pub const LISTED_AFTER: &str = "listed after the recommended model, which runs as well";

/// Why an option lost to a complete file: its own file is an interrupted download.
pub const INCOMPLETE: &str =
    "the file is incomplete (an interrupted download): it cannot run until complete";

/// One rule: what losing it means, and the comparison (`Less`: the first is better).
type Rule<'a> = (&'static str, fn(&Entry<'a>, &Entry<'a>) -> Ordering);

/// A contender with its speed class (`speed_classes`; `usize::MAX` above the floor).
#[derive(Clone, Copy)]
struct Entry<'a> {
    c: Contender<'a>,
    speed_class: usize,
}

impl<'a> std::ops::Deref for Entry<'a> {
    type Target = Contender<'a>;
    fn deref(&self) -> &Contender<'a> {
        &self.c
    }
}

/// The rules in order.
fn rules<'a>() -> [Rule<'a>; 8] {
    [
        ("does not fit", |a, b| infeasible(a).cmp(&infeasible(b))),
        (INCOMPLETE, |a, b| a.incomplete.cmp(&b.incomplete)),
        ("more or worse degradations", |a, b| {
            degradation_order(a.plan, b.plan)
        }),
        (LISTED_AFTER, |a, b| a.preference.cmp(&b.preference)),
        ("lower quality", |a, b| {
            if below_floor(a.plan) && below_floor(b.plan) && a.speed_class != b.speed_class {
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

fn infeasible(c: &Entry) -> bool {
    c.plan.verdict == Verdict::Incompatible
}

fn compare(a: &Entry, b: &Entry) -> Ordering {
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
fn why_lost(winner: &Entry, loser: &Entry) -> String {
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
            let skip = local_against_remote(w, l);
            let kinds: Vec<String> = l
                .degradations
                .iter()
                .filter(|d| !(skip && placement(d.kind)))
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
        "lower quality" if below_floor(l) && below_floor(w) => format!(
            "{rule}: KLD {:.4} against {:.4}; both below the speed floor, and it is not faster beyond the estimate's error ({})",
            l.quality.effective_kld,
            w.quality.effective_kld,
            speeds(l, w)
        ),
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

/// "about X (at most H) against Y tokens/s" for the loser and the winner.
fn speeds(l: &Plan, w: &Plan) -> String {
    match (&l.speed, &w.speed) {
        (Some(x), Some(y)) => format!(
            "about {:.1} (up to {:.1}) against {:.1} (up to {:.1}) tokens/s",
            x.expected_decode(),
            x.decode_at_context_high,
            y.expected_decode(),
            y.decode_at_context_high
        ),
        _ => "speed unknown".into(),
    }
}

/// The contenders best first. Stable: equal contenders keep their input order. An insertion
/// sort: a rule that depends on both plans (a split against a plan without the servers)
/// need not be a total order where such plans mix, and the standard sorts may panic on one
/// that is not; there are tens of options at most.
pub fn rank(contenders: &[Contender]) -> Vec<Standing> {
    let cs: Vec<Entry> = contenders
        .iter()
        .zip(speed_classes(contenders))
        .map(|(&c, speed_class)| Entry { c, speed_class })
        .collect();
    let mut order: Vec<usize> = Vec::with_capacity(cs.len());
    for i in 0..cs.len() {
        let at = order
            .iter()
            .position(|&j| compare(&cs[i], &cs[j]) == Ordering::Less)
            .unwrap_or(order.len());
        order.insert(at, i);
    }
    order
        .iter()
        .enumerate()
        .map(|(place, &i)| Standing {
            index: i,
            lost_because: (place > 0).then(|| why_lost(&cs[order[0]], &cs[i])),
        })
        .collect()
}
