//! `check-requirements` with no model and no profile: the first thing a user runs, before
//! installing. Plans every tier (the built-in profiles, or an application's own from a
//! `layerfit.yaml`) on this machine, ranks the tiers' answers by the same rules as
//! everything else (`plan::rank`; tiers listed first are preferred when all else is equal),
//! prints one line per tier and the recommendation in full.

use super::planning::{make_plan, PlanArgs, Planned, Purpose};
use super::Failure;
use crate::plan::rank::{rank, Contender, LISTED_AFTER};
use crate::plan::{DegradationKind, Verdict};
use serde::Serialize;
use std::path::PathBuf;

/// One tier's answer (`profiles[]` in JSON).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TierVerdict {
    pub profile: String,
    /// 1 is the recommendation.
    pub rank: usize,
    pub verdict: Verdict,
    pub model: String,
    pub context: u64,
    pub kv_type: String,
    pub n_gpu_layers: u32,
    pub decode_tokens_per_s: Option<f64>,
    pub downloaded: bool,
    pub degradations: Vec<DegradationKind>,
    pub lost_because: Option<String>,
}

/// Every tier planned, best first, and the recommendation's full plan.
pub struct Tiers {
    pub verdicts: Vec<TierVerdict>,
    pub best: Planned,
    /// The `layerfit.yaml` the tiers came from; `None`: the built-ins.
    pub from: Option<PathBuf>,
}

fn config_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("layerfit"))
}

pub fn plan_tiers(args: &PlanArgs) -> Result<Tiers, Failure> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let (names, from) =
        crate::profile::tiers(&cwd, config_dir().as_deref()).map_err(Failure::input)?;
    if let Some(file) = &from {
        // A tier the application's file names must exist: say which file names it.
        for name in &names {
            crate::profile::load(name).map_err(|e| Failure::input_in(file.display(), e))?;
        }
    }
    let mut planned = Vec::new();
    for name in &names {
        let mut a = args.clone();
        a.profile = Some(name.clone());
        planned.push(make_plan(&a, Purpose::Report)?);
    }
    let contenders: Vec<Contender> = planned
        .iter()
        .enumerate()
        .map(|(i, p)| Contender {
            plan: &p.plan,
            downloaded: p.model.downloaded(),
            preference: i,
            incomplete: false,
        })
        .collect();
    let order = rank(&contenders);
    let name = |p: &Planned| {
        p.profile
            .as_ref()
            .map(|x| x.name.clone())
            .unwrap_or_default()
    };
    let first = name(&planned[order[0].index]);
    let verdicts = order
        .iter()
        .enumerate()
        .map(|(place, s)| {
            let p = &planned[s.index];
            TierVerdict {
                profile: name(p),
                rank: place + 1,
                verdict: p.plan.verdict,
                model: p
                    .model
                    .catalog_name
                    .clone()
                    .unwrap_or(p.model.label.clone()),
                context: p.plan.context,
                kv_type: p.plan.kv_type.name().into(),
                n_gpu_layers: p.plan.n_gpu_layers,
                decode_tokens_per_s: p
                    .plan
                    .speed
                    .as_ref()
                    .map(|x| (x.expected_decode() * 10.0).round() / 10.0),
                downloaded: p.model.downloaded(),
                degradations: p.plan.degradations.iter().map(|d| d.kind).collect(),
                // Here the list is of tiers, best first.
                lost_because: s.lost_because.as_ref().map(|why| match why.as_str() {
                    LISTED_AFTER => format!("a tier listed after {first}, which runs as well"),
                    _ => why.clone(),
                }),
            }
        })
        .collect();
    let best = planned.swap_remove(order[0].index);
    Ok(Tiers {
        verdicts,
        best,
        from,
    })
}
