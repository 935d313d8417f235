//! `--draft MODEL`: the draft model for speculative decoding, resolved like `--model` and
//! handed to the planner (`plan::draft`), and its lines in the human report.

use super::planning::{PlanArgs, Purpose};
use super::Failure;
use crate::emit::DraftSettings;
use crate::hardware::Snapshot;
use crate::model_source::{default_models_dir, resolve, ModelSource};
use crate::plan::draft::{holding, plan_draft, DraftPlacement, DraftPlan, DraftSpec};
use crate::plan::{Plan, Requirements, Verdict};

/// The draft named by `--draft`, with its source; `None` without the flag.
pub fn spec(
    a: &PlanArgs,
    cpu_simd: &[String],
    purpose: Purpose,
) -> Result<Option<(DraftSpec, ModelSource)>, Failure> {
    let Some(name) = &a.draft else {
        return Ok(None);
    };
    let models_dir = a.hw.models_dir.clone().unwrap_or_else(default_models_dir);
    let found =
        resolve(name, &models_dir).map_err(|e| Failure::input_in(format!("--draft {name}"), e))?;
    // A name with several variants drafts with the first (the catalog's best quality).
    let Some(src) = found.into_iter().next() else {
        return Err(Failure::BadInput(format!("--draft {name}: no such model")));
    };
    if purpose == Purpose::Run && !src.downloaded() {
        return Err(Failure::BadInput(format!(
            "--draft {name}: the draft model is not on disk: {}",
            src.where_to_get()
        )));
    }
    let input = src
        .plan_input(cpu_simd)
        .map_err(|e| Failure::input_in(format!("--draft {name}"), e))?;
    let spec = DraftSpec {
        label: src
            .catalog_name
            .clone()
            .unwrap_or_else(|| src.label.clone()),
        path: src.path.clone(),
        input,
        kv_type: a.draft_kv,
        draft_max: a.draft_max,
    };
    Ok(Some((spec, src)))
}

/// A run file's draft, re-planned on this machine at the file's placement: its memory is
/// taken out of `req` for the model, and `attach` puts its report on the model's plan.
pub struct Replanned {
    spec: DraftSpec,
    placement: DraftPlacement,
    plan: Plan,
}

pub fn replan(
    d: &DraftSettings,
    target: &ModelSource,
    snap: &Snapshot,
    req: &mut Requirements,
) -> Result<Replanned, Failure> {
    let src = ModelSource::from_file(&d.model).map_err(Failure::input)?;
    check_vocab(target, &src)?;
    let spec = DraftSpec {
        label: src.label.clone(),
        path: src.path.clone(),
        input: src.plan_input(&snap.cpu.simd).map_err(Failure::input)?,
        kv_type: d.kv_type().map_err(Failure::input)?,
        draft_max: d.draft_max,
    };
    let (placement, plan) = plan_draft(&spec, snap, req, d.n_gpu_layers, d.gpu_unused);
    if plan.verdict == Verdict::Incompatible {
        return Err(Failure::Infeasible(format!(
            "the run file's draft {} no longer fits this machine: {}",
            spec.label,
            plan.missing.clone().unwrap_or_default()
        )));
    }
    *req = holding(req, &plan, spec.draft_max);
    Ok(Replanned {
        spec,
        placement,
        plan,
    })
}

impl Replanned {
    pub fn attach(&self, target: &mut Plan) {
        target.draft = Some(crate::plan::draft::draft_plan(
            &self.spec,
            self.placement,
            &self.plan,
            target,
        ));
    }
}

/// A draft whose vocabulary cannot draft for the chosen model is bad input (llama.cpp
/// refuses the pair at load).
pub fn check_vocab(target: &ModelSource, draft: &ModelSource) -> Result<(), Failure> {
    match crate::model::vocab::mismatch(&target.metadata, &draft.metadata) {
        None => Ok(()),
        Some(why) => Err(Failure::BadInput(format!(
            "--draft {}: it cannot draft for {}: {why}",
            draft.label, target.label
        ))),
    }
}

/// The report's lines for the draft: where it goes, what it takes, what it should give.
pub fn lines(d: &DraftPlan) -> Vec<String> {
    let place = match d.placement {
        DraftPlacement::Gpu => format!("on the GPU (-ngld {})", d.n_gpu_layers),
        DraftPlacement::Cpu => "on the CPU".to_string(),
    };
    let mut out = vec![format!(
        "draft: {} {place}, {} cache at {} tokens: {} (weights {}, KV {}, compute {}), already out of the budgets above",
        d.model, d.kv_type, d.context, d.total_bytes, d.weights_bytes, d.kv_bytes, d.compute_bytes
    )];
    if let Some(s) = &d.speed {
        let at: Vec<String> = s
            .at_acceptance
            .iter()
            .map(|p| {
                format!(
                    "{} at {:.0}%",
                    super::plan_report::rate(p.tokens_per_s),
                    p.acceptance * 100.0
                )
            })
            .collect();
        let pays = match s.break_even_acceptance {
            Some(b) => format!(
                "it pays off when over {:.0}% of drafted tokens are accepted",
                b * 100.0
            ),
            None => "it cannot make decoding faster at any acceptance rate here (the draft is too slow beside the model)".to_string(),
        };
        out.push(format!(
            "draft: {} tokens drafted per step; expected tokens/s by the share accepted: {} (the model alone: {}); {pays}",
            d.draft_max,
            at.join(", "),
            super::plan_report::rate(s.target_tokens_per_s)
        ));
    }
    out
}
