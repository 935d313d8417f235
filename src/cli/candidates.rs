//! The options of an answer as reports list them: each candidate's rank, verdict, measured
//! loss, expected speed and why it lost; and what this binary would do instead.

use crate::hardware::usable::Unusable;
use crate::model_source::ModelSource;
use crate::plan::choose::Ranked;
use crate::plan::{DegradationKind, Plan, Verdict};
use serde::Serialize;

/// One option considered (a model at a cache type and placement), and how it came out.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Candidate {
    pub model: String,
    pub bits_per_weight: f64,
    /// 1 is the recommendation; absent for a model that was not planned.
    pub rank: Option<usize>,
    pub verdict: Option<Verdict>,
    pub kv_type: Option<String>,
    pub n_gpu_layers: Option<u32>,
    /// With RPC servers given: the option leaves them out and runs on this machine alone
    /// (`plan.local_only`).
    #[serde(default)]
    pub local_only: bool,
    /// Measured quality loss the ranking compares (weights + KV cache, mean KLD).
    pub quality_kld: Option<f64>,
    /// Expected decode speed (tokens/s); absent when a device's bandwidth is unknown.
    pub decode_tokens_per_s: Option<f64>,
    /// The whole file is on disk.
    pub downloaded: bool,
    pub degradations: Vec<DegradationKind>,
    /// Why the recommendation beat it (the first rule it lost on).
    pub lost_because: Option<String>,
    /// Why it was not planned (below the profile's quality floor).
    pub skipped: Option<String>,
}

/// What this binary would do when the machine has GPUs it cannot drive.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ThisBinary {
    pub unusable: Vec<Unusable>,
    pub model: String,
    pub plan: Plan,
}

pub(super) fn candidate(src: &ModelSource, r: Option<&Ranked>) -> Candidate {
    let bpw = src.bits_per_weight();
    let label = src
        .catalog_name
        .clone()
        .unwrap_or_else(|| src.label.clone());
    Candidate {
        model: label,
        bits_per_weight: (bpw * 100.0).round() / 100.0,
        rank: r.map(|r| r.place),
        verdict: r.map(|r| r.plan.verdict),
        kv_type: r.map(|r| r.plan.kv_type.name().into()),
        n_gpu_layers: r.map(|r| r.plan.n_gpu_layers),
        local_only: r.is_some_and(|r| r.plan.local_only),
        quality_kld: r.map(|r| (r.plan.quality.effective_kld * 1e6).round() / 1e6),
        decode_tokens_per_s: r
            .and_then(|r| r.plan.speed.as_ref())
            .map(|s| (s.expected_decode() * 10.0).round() / 10.0),
        downloaded: src.downloaded(),
        degradations: r
            .map(|r| r.plan.degradations.iter().map(|d| d.kind).collect())
            .unwrap_or_default(),
        lost_because: r.and_then(|r| r.lost_because.clone()),
        skipped: None,
    }
}
