//! `layerfit check-requirements`: probe, plan, and answer with an exit code scripts and the
//! installer act on: 0 compatible, 10 degraded, 20 incompatible (2 bad input, 1 internal).
//! On a terminal, a degraded verdict asks before going on (unless `--yes`).

use super::output::{self, Printer};
use super::plan_report::print_plan;
use super::planning::{make_plan, Candidate, PlanArgs, Planned, Purpose};
use super::{exit, Failure};
use crate::bytes::Bytes;
use crate::hardware::Snapshot;
use crate::plan::{Plan, Verdict};
use serde::Serialize;
use std::io::IsTerminal;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Accept a degraded configuration without asking (the exit code still says degraded).
    #[arg(long)]
    pub yes: bool,
    /// Print one JSON document instead of the report (docs/json-schema.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct Doc<'a> {
    verdict: Verdict,
    model: String,
    profile: Option<&'a str>,
    hardware: &'a Snapshot,
    plan: &'a Plan,
    warnings: Vec<String>,
    tips: Vec<String>,
    candidates: &'a [Candidate],
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let p = make_plan(&args.plan, Purpose::Report)?;
    let code = super::verdict_code(p.plan.verdict);
    let warnings: Vec<String> = p
        .plan
        .degradations
        .iter()
        .map(|d| d.message.clone())
        .collect();
    let tips = tips(&p);
    if args.json {
        printer.json(&Doc {
            verdict: p.plan.verdict,
            model: p.model.label.clone(),
            profile: p.profile.as_ref().map(|x| x.name.as_str()),
            hardware: &p.hardware,
            plan: &p.plan,
            warnings,
            tips,
            candidates: &p.candidates,
        })?;
        return Ok(code);
    }
    report(&p, &tips, printer);
    if p.plan.verdict == Verdict::Degraded && !args.yes && std::io::stdin().is_terminal() {
        let go_on = dialoguer::Confirm::new()
            .with_prompt("Continue with degraded experience?")
            .default(false)
            .interact()
            .unwrap_or(false);
        if !go_on {
            output::note("stopped: the degraded configuration was declined");
            return Ok(exit::DEGRADED);
        }
    }
    Ok(code)
}

fn report(p: &Planned, tips: &[String], printer: &Printer) {
    let h = &p.hardware;
    let plan = &p.plan;
    printer.line(&format!(
        "layerfit check-requirements: minimum context {} tokens{}",
        plan.context,
        p.profile
            .as_ref()
            .map(|x| format!(", profile {}", x.name))
            .unwrap_or_default()
    ));
    printer.line(&format!(
        "detected: RAM {} ({} available), {}, CPU {} ({} cores)",
        h.ram.total_bytes,
        h.ram.available_bytes,
        if h.gpus.is_empty() {
            "no GPU".to_string()
        } else {
            h.gpus
                .iter()
                .map(|g| {
                    format!(
                        "{} ({} VRAM, {} free)",
                        g.name, g.vram_total_bytes, g.vram_free_bytes
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        },
        h.cpu.model,
        h.cpu.physical_cores
    ));
    print_plan(p, printer);
    if p.candidates.len() > 1 {
        let mut t = printer.table(&["candidate", "bits/weight", "outcome"]);
        for c in &p.candidates {
            let outcome = match (&c.skipped, c.verdict) {
                (Some(why), _) => format!("skipped: {why}"),
                (None, Some(v)) => format!(
                    "{} (-ngl {}, {} cache)",
                    format!("{v:?}").to_lowercase(),
                    c.n_gpu_layers.unwrap_or(0),
                    c.kv_type.clone().unwrap_or_default()
                ),
                (None, None) => "not needed (a better candidate fits)".into(),
            };
            printer.row(
                &mut t,
                vec![
                    c.model.clone(),
                    format!("{:.2}", c.bits_per_weight),
                    outcome,
                ],
            );
        }
        printer.print_table(t);
    }
    for tip in tips {
        printer.tip(tip);
    }
}

/// Advice that follows from the figures: what would remove a degradation.
fn tips(p: &Planned) -> Vec<String> {
    let plan = &p.plan;
    let mut v = Vec::new();
    for d in &plan.devices {
        if d.is_gpu && d.total_bytes > d.budget_bytes {
            v.push(format!(
                "{} needs {} more free VRAM: close other GPU programs or use a smaller model",
                d.device,
                d.total_bytes.saturating_sub(d.budget_bytes)
            ));
        }
    }
    let headroom = plan.ram.budget_bytes.saturating_sub(plan.ram.total_bytes);
    if plan.ram.total_bytes > plan.ram.budget_bytes {
        v.push(format!(
            "free {} of RAM (close other programs) or add RAM",
            plan.ram.total_bytes.saturating_sub(plan.ram.budget_bytes)
        ));
    } else if headroom < Bytes(1 << 30) {
        v.push(format!(
            "only {headroom} of RAM is left beyond the plan: close browsers and other large programs before running"
        ));
    }
    if plan.cpu_blocks > 0 && plan.ram.page_cache_bytes > Bytes::ZERO {
        v.push(format!(
            "{} of weights are read from the mapped file on the CPU side: keep the model on an SSD and that RAM free, or use --mlock",
            plan.ram.page_cache_bytes
        ));
    }
    if plan.kv_type.name() != "f16" {
        v.push(format!(
            "the KV cache is {}: more free VRAM/RAM would allow f16 (better long-context quality)",
            plan.kv_type
        ));
    }
    v
}
