//! `layerfit plan --model MODEL`: the layer split and settings for this (or a described)
//! machine, and a runnable llama.cpp command line.

use super::output::Printer;
use super::plan_report::print_plan;
use super::planning::{make_plan, Candidate, PlanArgs, Purpose};
use super::{exit, Failure};
use crate::emit::{RunFile, RunSettings};
use crate::model_source::Origin;
use crate::plan::{Plan, Verdict};
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Print a runnable configuration instead of the report: llama.cpp arguments, an Ollama
    /// Modelfile script, or a layerfit run file (`layerfit run --plan FILE`).
    #[arg(long, value_parser = ["llama-server", "llama-cli", "ollama", "profile"])]
    pub emit: Option<String>,
    /// Print one JSON document instead of the report (docs/json-schema.md).
    #[arg(long, conflicts_with = "emit")]
    pub json: bool,
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PlanDoc<'a> {
    model: String,
    origin: &'a Origin,
    architecture: &'a str,
    profile: Option<&'a str>,
    plan: &'a Plan,
    candidates: &'a [Candidate],
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let mut p = make_plan(&args.plan, Purpose::Report)?;
    if let Some(tool) = &args.emit {
        if tool == "ollama" && p.plan.n_cpu_moe > 0 {
            // Ollama cannot keep experts on the CPU: plan whole blocks instead.
            let mut a = args.plan.clone();
            a.no_cpu_moe = true;
            p = make_plan(&a, Purpose::Report)?;
        }
        if p.plan.verdict == Verdict::Incompatible {
            return Err(Failure::Infeasible(
                p.plan.missing.clone().unwrap_or_default(),
            ));
        }
        // Warnings are part of the answer: comment lines, valid in every emitted format
        // (shell, Ollama script, YAML run file).
        for d in &p.plan.degradations {
            printer.raw(&format!("# warning: {}\n", d.message));
        }
        if let Origin::Catalog { .. } = p.model.origin {
            printer.raw(&format!(
                "# note: planned from the catalog; download the model to {} first\n",
                p.model.path.display()
            ));
        }
        let settings = RunSettings::from_plan(&p.plan, p.model.path.clone());
        match tool.as_str() {
            "ollama" => {
                let from = match &p.model.origin {
                    Origin::Catalog { .. } => p.model.catalog_name.clone().unwrap_or_default(),
                    Origin::File { path } => path.display().to_string(),
                };
                let tag = format!(
                    "layerfit-{}",
                    p.model
                        .catalog_name
                        .clone()
                        .unwrap_or_else(|| p.shape.architecture.clone())
                        .replace([':', '.', '/'], "-")
                );
                printer.raw(&settings.ollama(&from, &tag).script());
            }
            "profile" => {
                let threads = p.profile.as_ref().and_then(|pr| pr.threads);
                printer.raw(
                    &RunFile::from_plan(
                        &p.plan,
                        p.model.path.clone(),
                        p.model.catalog_name.clone(),
                        threads,
                    )
                    .to_yaml(),
                );
            }
            _ => {
                let quoted: Vec<String> = settings
                    .llama_args()
                    .iter()
                    .map(|a| shell_quote(a))
                    .collect();
                // llama.cpp sees a software Vulkan device only when it is named.
                let env = match std::env::var("GGML_VK_VISIBLE_DEVICES") {
                    Ok(v) if settings.software_gpu => format!("GGML_VK_VISIBLE_DEVICES={v} "),
                    _ => String::new(),
                };
                printer.raw(&format!("{env}{tool} {}\n", quoted.join(" ")));
            }
        }
        return Ok(exit::OK);
    }
    if args.json {
        printer.json(&PlanDoc {
            model: p.model.label.clone(),
            origin: &p.model.origin,
            architecture: &p.shape.architecture,
            profile: p.profile.as_ref().map(|x| x.name.as_str()),
            plan: &p.plan,
            candidates: &p.candidates,
        })?;
    } else {
        print_plan(&p, printer);
    }
    Ok(super::verdict_code(p.plan.verdict))
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./,=:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
