//! `layerfit check-requirements`: probe, plan, and answer with an exit code scripts and the
//! installer act on: 0 compatible, 10 degraded, 20 incompatible (2 bad input, 1 internal).
//! On a terminal, a degraded verdict asks before going on (unless `--yes`). Without a model
//! or profile it ranks every tier (cli/tiers.rs) and recommends one.

use super::output::{self, Printer};
use super::plan_report::{print_candidates, print_plan};
use super::planning::{make_plan, Candidate, PlanArgs, Planned, Purpose, ThisBinary};
use super::tiers::{plan_tiers, TierVerdict};
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
    /// When this binary cannot drive a GPU of the machine: what it would do instead.
    this_binary: Option<&'a ThisBinary>,
    /// Without a model or profile: every tier's verdict, best first (`profile` names the
    /// recommendation).
    #[serde(skip_serializing_if = "Option::is_none")]
    profiles: Option<&'a [TierVerdict]>,
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let (p, tiers) = if args.plan.model.is_empty() && args.plan.profile.is_none() {
        let t = plan_tiers(&args.plan)?;
        (t.best, Some((t.verdicts, t.from)))
    } else {
        (make_plan(&args.plan, Purpose::Report)?, None)
    };
    let code = super::verdict_code(p.plan.verdict);
    output::answer_code(code);
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
            this_binary: p.this_binary.as_ref(),
            profiles: tiers.as_ref().map(|t| t.0.as_slice()),
        })?;
        return Ok(code);
    }
    if let Some((verdicts, from)) = &tiers {
        report_tiers(verdicts, from.as_deref(), printer);
    }
    report(&p, &tips, printer);
    if let Some(pj) = &p.plan.projector {
        for line in super::projector::report_lines(pj) {
            printer.line(&line);
        }
    }
    let run = run_args(&p, &args.plan);
    if p.plan.verdict != Verdict::Incompatible {
        // A model not on this machine is fetched first: `run` takes only files here. One
        // that nothing can fetch (the catalog sources no file) is put there by hand first.
        let (when, start) = match (p.model.downloaded(), pull_first(&p)) {
            (true, _) => (String::new(), String::new()),
            (false, Some(pull)) => (String::new(), format!("{pull} && ")),
            (false, None) => (
                format!(" (once a GGUF of it is at {})", p.model.path.display()),
                String::new(),
            ),
        };
        printer.line(&format!(
            "start it with{when}: {start}layerfit {}",
            run.join(" ")
        ));
    }
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
        // Yes runs what was proposed: the line above, as printed.
        if !p.model.downloaded() {
            output::note(&format!(
                "{} is not on this machine: {}",
                p.model.label,
                match pull_first(&p) {
                    Some(pull) => format!("run `{pull}` first"),
                    None => p.model.where_to_get(),
                }
            ));
            return Ok(exit::DEGRADED);
        }
        return run_proposed(&run);
    }
    Ok(code)
}

/// `layerfit pull NAME` for the answer's model, when `pull` can fetch it: a remote model, or
/// a catalog entry whose sourced upstream `pull` reads; `None` when nothing can.
fn pull_first(p: &Planned) -> Option<String> {
    use crate::model_source::Origin;
    let remote = matches!(p.model.origin, Origin::Remote { .. });
    let sourced = p
        .model
        .upstream
        .as_deref()
        .and_then(super::pull::hf_of_upstream)
        .is_some();
    (remote || sourced).then(|| {
        format!(
            "layerfit pull {}",
            p.model
                .catalog_name
                .clone()
                .unwrap_or(p.model.label.clone())
        )
    })
}

/// Runs the proposed `layerfit run ...` in this terminal and exits with its code.
fn run_proposed(run: &[String]) -> Result<u8, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("cannot find layerfit itself: {e}")))?;
    let status = std::process::Command::new(exe)
        .args(run)
        .status()
        .map_err(|e| Failure::Internal(anyhow::anyhow!("cannot start layerfit run: {e}")))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::INTERRUPTED))
}

/// The `layerfit run` arguments that run this answer (the same choice: plan/choose.rs).
fn run_args(p: &Planned, a: &PlanArgs) -> Vec<String> {
    let mut v = vec!["run".to_string()];
    match &p.profile {
        Some(pr) if a.model.is_empty() => v.extend(["--profile".into(), pr.name.clone()]),
        _ => v.extend([
            "--model".into(),
            p.model
                .catalog_name
                .clone()
                .unwrap_or_else(|| p.model.path.display().to_string()),
        ]),
    }
    if let Some(c) = a.ctx {
        v.extend(["--ctx".into(), c.to_string()]);
    }
    // The plan's RPC servers: `run` needs them to run it.
    if !p.plan.rpc.is_empty() && a.hw.rpc.is_some() {
        v.extend(["--rpc".into(), p.plan.rpc.join(",")]);
    }
    // What is planned beside the model: `run` plans it again from the same flags.
    if let Some(d) = &a.draft {
        v.extend(["--draft".into(), d.clone()]);
    }
    if let Some(pj) = &p.plan.projector {
        let at = pj.url.clone();
        v.extend([
            "--mmproj".into(),
            at.unwrap_or_else(|| pj.path.display().to_string()),
        ]);
        if !pj.offload {
            v.push("--no-mmproj-offload".into());
        }
    }
    if p.plan.verdict == Verdict::Degraded {
        v.push("--accept-degraded".into());
    }
    v
}

fn report_tiers(verdicts: &[TierVerdict], from: Option<&std::path::Path>, printer: &Printer) {
    printer.line(&format!(
        "tiers: {} on this machine, best first",
        match from {
            Some(f) => format!("the profiles of {}", f.display()),
            None => "the built-in profiles".to_string(),
        }
    ));
    let mut t = printer.table(&["#", "profile", "verdict", "model", "tok/s", "why not first"]);
    for v in verdicts {
        printer.row(
            &mut t,
            vec![
                v.rank.to_string(),
                v.profile.clone(),
                format!("{:?}", v.verdict).to_lowercase(),
                format!(
                    "{}, {} KV, -ngl {}{}",
                    v.model,
                    v.kv_type,
                    v.n_gpu_layers,
                    if v.downloaded {
                        ""
                    } else {
                        " (not downloaded)"
                    }
                ),
                v.decode_tokens_per_s
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_else(|| "?".into()),
                v.lost_because.clone().unwrap_or_else(|| {
                    if v.verdict == Verdict::Incompatible {
                        "nearest to fitting".into()
                    } else {
                        "recommended".into()
                    }
                }),
            ],
        );
    }
    printer.print_table(t);
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
        "detected: RAM {} ({} available), {}, CPU {} ({})",
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
        super::output::count(h.cpu.physical_cores as u64, "core")
    ));
    print_plan(p, printer);
    print_candidates(&p.candidates, printer);
    for tip in tips {
        printer.tip(tip);
    }
}

/// Advice that follows from the figures and agrees with the verdict. A machine that is not
/// this one as probed (a description, flags) is never told to close programs.
fn tips(p: &Planned) -> Vec<String> {
    let plan = &p.plan;
    let here = p.hardware.source == "probe";
    let mut v = Vec::new();
    let short: Vec<String> = plan
        .devices
        .iter()
        .filter(|d| d.is_gpu && d.total_bytes > d.budget_bytes)
        .map(|d| {
            format!(
                "{} {}",
                d.device,
                d.total_bytes.saturating_sub(d.budget_bytes)
            )
        })
        .collect();
    let ram_short = plan.ram.total_bytes.saturating_sub(plan.ram.budget_bytes);
    if plan.verdict == Verdict::Incompatible {
        if !short.is_empty() || ram_short > Bytes::ZERO {
            let mut need = short;
            if ram_short > Bytes::ZERO {
                need.push(format!("RAM {ram_short}"));
            }
            v.push(format!(
                "this needs more memory ({}): {}a smaller model or variant, a shorter --ctx, or a machine with more memory",
                need.join(", "),
                if here { "free it (close other programs), or use " } else { "use " }
            ));
        }
        return v;
    }
    let headroom = plan.ram.budget_bytes.saturating_sub(plan.ram.total_bytes);
    if here && headroom < Bytes(1 << 30) {
        v.push(format!(
            "only {headroom} of RAM is left beyond the plan: close browsers and other large programs before running"
        ));
    }
    let ram_for_lock = plan.ram.page_cache_bytes <= headroom;
    if plan.cpu_blocks > 0 && plan.ram.page_cache_bytes > Bytes::ZERO {
        v.push(format!(
            "{} of weights are read from the mapped file on the CPU side: keep the model on an SSD{}",
            plan.ram.page_cache_bytes,
            if ram_for_lock { " and that RAM free, or use --mlock" } else { "" }
        ));
    }
    if plan.kv_type.name() == "q4_0" {
        v.push(
            "the KV cache is q4_0 (a measurable loss): more free memory would allow q8_0 or f16"
                .to_string(),
        );
    }
    v
}
