//! One answer for every command: each model's options (cache types at their best
//! placement, or a forced placement) ranked together (plan/rank.rs). `plan`,
//! `check-requirements`, `run` and the installer all choose through `choose`.

use super::rank::{rank, Contender};
use super::{options, plan_at, plan_gpu_unused, Plan, PlanInput, Requirements, Verdict};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::Snapshot;

/// A model that may be chosen: its planner input and the state of its file.
#[derive(Clone, Debug)]
pub struct ModelOption {
    pub input: PlanInput,
    /// The whole file is on disk.
    pub downloaded: bool,
    /// Bytes still to download (the file, or what an interrupted download lacks); checked
    /// against the models disk's free space.
    pub to_download: Bytes,
    /// Tensor data the file on disk lacks (a partial download): it cannot run.
    pub incomplete: Option<Bytes>,
    /// The model's place in the user's list, best first (variants of one model share it).
    pub preference: usize,
}

/// Marks `p` incompatible when its file cannot run (an interrupted download: checked after
/// ranking, so that its options are ranked as the finished file's would be) or cannot be
/// stored here (checked before).
fn check_file(p: &mut Plan, m: &ModelOption, snap: &Snapshot, ranked: bool) {
    let mut why = Vec::new();
    if let Some(missing) = m.incomplete.filter(|_| ranked) {
        why.push(format!(
            "the file is incomplete: {missing} of its tensor data is missing (an interrupted download?); it cannot run until complete"
        ));
    }
    if let Some(d) = snap.disk.as_ref().filter(|_| !ranked) {
        if m.to_download > d.free_bytes {
            why.push(format!(
                "the download needs {} but the models disk ({}) has {} free",
                m.to_download, d.mount_point, d.free_bytes
            ));
        }
    }
    if why.is_empty() {
        return;
    }
    p.verdict = Verdict::Incompatible;
    let text = why.join("; ");
    p.missing = Some(match p.missing.take() {
        Some(m) => format!("{text}; {m}"),
        None => text,
    });
}

/// A placement the user fixed instead of the search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Forced {
    /// `--ngl N [--n-cpu-moe K]` with the first allowed cache type.
    Layers {
        kv: GgmlType,
        ngl: u32,
        cpu_moe: u32,
    },
    /// `--dev none`.
    GpusUnused { kv: GgmlType },
}

/// One option in the final order.
#[derive(Clone, Debug)]
pub struct Ranked {
    /// Index into the models given.
    pub model: usize,
    pub plan: Plan,
    /// 1 is the recommendation.
    pub place: usize,
    pub lost_because: Option<String>,
    pub downloaded: bool,
}

/// Every option of every model, best first.
pub fn choose(
    models: &[ModelOption],
    snap: &Snapshot,
    req: &Requirements,
    forced: Option<Forced>,
) -> Vec<Ranked> {
    let mut all: Vec<(usize, Plan)> = Vec::new();
    for (i, m) in models.iter().enumerate() {
        match forced {
            Some(Forced::Layers { kv, ngl, cpu_moe }) => {
                all.push((i, plan_at(&m.input, snap, req, kv, ngl, cpu_moe)))
            }
            Some(Forced::GpusUnused { kv }) => {
                all.push((i, plan_gpu_unused(&m.input, snap, req, kv)))
            }
            None => all.extend(options(&m.input, snap, req).into_iter().map(|p| (i, p))),
        }
    }
    for (i, p) in all.iter_mut() {
        check_file(p, &models[*i], snap, false);
    }
    let contenders: Vec<Contender> = all
        .iter()
        .map(|(i, p)| Contender {
            plan: p,
            downloaded: models[*i].downloaded,
            preference: models[*i].preference,
            incomplete: models[*i].incomplete.is_some(),
        })
        .collect();
    let order = rank(&contenders);
    let mut slots: Vec<Option<(usize, Plan)>> = all.into_iter().map(Some).collect();
    order
        .into_iter()
        .enumerate()
        .filter_map(|(place, s)| {
            let (model, mut plan) = slots[s.index].take()?;
            check_file(&mut plan, &models[model], snap, true);
            Some(Ranked {
                model,
                plan,
                place: place + 1,
                lost_because: s.lost_because,
                downloaded: models[model].downloaded,
            })
        })
        .collect()
}
