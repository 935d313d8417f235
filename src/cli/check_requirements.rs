//! `layerfit check-requirements`: probe, plan, and answer with an exit code scripts and the
//! installer act on: 0 compatible, 10 degraded, 20 incompatible.

use super::plan::{make_plan, print_plan, PlanArgs};
use super::{output, Failure};
use crate::hardware::Snapshot;
use crate::plan::Plan;
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Accept a degraded configuration without asking (the exit code still says degraded).
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Doc<'a> {
    verdict: crate::plan::Verdict,
    model: String,
    hardware: &'a Snapshot,
    plan: &'a Plan,
    warnings: Vec<String>,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let p = make_plan(&args.plan)?;
    let warnings: Vec<String> = p
        .plan
        .degradations
        .iter()
        .map(|d| d.message.clone())
        .collect();
    if args.json {
        output::json(&Doc {
            verdict: p.plan.verdict,
            model: p.model.display().to_string(),
            hardware: &p.hardware,
            plan: &p.plan,
            warnings,
        })?;
        return Ok(super::verdict_code(p.plan.verdict));
    }
    let h = &p.hardware;
    println!(
        "layerfit check-requirements: minimum context {} tokens",
        p.plan.context
    );
    println!(
        "detected: RAM {} ({} available), {}",
        h.ram.total_bytes,
        h.ram.available_bytes,
        if h.gpus.is_empty() {
            "no GPU".to_string()
        } else {
            h.gpus
                .iter()
                .map(|g| format!("{} ({} VRAM)", g.name, g.vram_total_bytes))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    print_plan(&p);
    Ok(super::verdict_code(p.plan.verdict))
}
