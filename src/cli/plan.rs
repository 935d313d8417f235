//! `layerfit plan --model MODEL`: the layer split and settings for this (or a described)
//! machine, and a runnable llama.cpp command line.

use super::output::Printer;
use super::plan_report::{print_candidates, print_plan};
use super::planning::{make_plan, Candidate, PlanArgs, Purpose, ThisBinary};
use super::Failure;
use crate::emit::{RunFile, RunSettings, SlotContext};
use crate::model_source::Origin;
use crate::plan::{Plan, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Also answer "how much context fits?": per KV cache type, the largest context (a
    /// multiple of 256) this machine holds with the chosen placement. The plan's own
    /// required context is unchanged.
    #[arg(long, conflicts_with = "emit")]
    pub max_context: bool,
    /// Also draw the plan's memory into an SVG file: each device's budget split into weights,
    /// KV cache and compute, and per KV cache type the memory against the context (4K to the
    /// trained context) with the budget and the largest context that fits marked
    #[arg(long, value_name = "FILE.svg", conflicts_with = "emit")]
    pub chart: Option<std::path::PathBuf>,
}

/// The KV cache types `--max-context` reports, best first: the table's rows keep this order
/// (the JSON is an object, keyed by type).
const MAX_CONTEXT_TYPES: [crate::ggml_type::GgmlType; 3] = [
    crate::ggml_type::GgmlType::F16,
    crate::ggml_type::GgmlType::Q8_0,
    crate::ggml_type::GgmlType::Q4_0,
];

/// Per KV type, best first, the largest context that fits (`None`: not even 256 tokens).
fn max_contexts(p: &super::planning::Planned) -> Vec<(String, Option<u64>)> {
    MAX_CONTEXT_TYPES
        .iter()
        .map(|&t| {
            let n = crate::plan::max_context(&p.input, &p.hardware, &p.requirements, &p.plan, t);
            (t.name().to_string(), n)
        })
        .collect()
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PlanDoc<'a> {
    model: String,
    origin: &'a Origin,
    architecture: &'a str,
    profile: Option<&'a str>,
    plan: &'a Plan,
    candidates: &'a [Candidate],
    /// When this binary cannot drive a GPU of the machine: what it would do instead.
    this_binary: Option<&'a ThisBinary>,
    /// With `--max-context`: per KV cache type, the largest context that fits with the
    /// plan's placement (null: not even 256 tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_context: Option<BTreeMap<String, Option<u64>>>,
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let mut p = make_plan(&args.plan, Purpose::Report)?;
    if let Some(tool) = &args.emit {
        super::output::answer_code(super::verdict_code(p.plan.verdict));
        let overrides = p.plan.n_cpu_moe > 0 || p.plan.n_cpu_ffn > 0;
        if tool == "ollama" && overrides {
            // Ollama cannot keep experts or feed-forward weights on the CPU: plan whole
            // blocks instead, and say so.
            let mut a = args.plan.clone();
            a.no_cpu_moe = true;
            let before = p.model.label.clone();
            p = make_plan(&a, Purpose::Report)?;
            super::output::answer_code(super::verdict_code(p.plan.verdict));
            printer.raw(&format!(
                "# note: Ollama cannot keep some tensors of a block on the CPU (llama.cpp's --n-cpu-moe/-ot); planned whole blocks instead: -ngl {}\n",
                p.plan.n_gpu_layers
            ));
            // Whole blocks can rank another variant first: never switch without saying so.
            if p.model.label != before {
                printer.raw(&format!(
                    "# note: variant switched: {}, not the plan's {}, because with whole blocks it ranks first (the {before} plan keeps some tensors of a block on the CPU, which Ollama cannot)\n",
                    p.model.label, before
                ));
            }
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
        match &p.model.origin {
            Origin::Catalog { .. } => printer.raw(&format!(
                "# note: planned from the catalog; download the model to {} first\n",
                p.model.path.display()
            )),
            Origin::Remote { name, .. } => printer.raw(&format!(
                "# note: planned from the remote header; `layerfit pull {name}` puts the file at {}\n",
                p.model.path.display()
            )),
            Origin::File { .. } => {}
        }
        let settings = RunSettings::from_plan(&p.plan, p.model.path.clone());
        match tool.as_str() {
            "ollama" => {
                if let Some(d) = &p.plan.draft {
                    printer.raw(&format!(
                        "# note: Ollama has no speculative decoding: the draft {} is not used (its memory stays planned)\n",
                        d.model
                    ));
                }
                if let Some(pp) = &p.plan.projector {
                    printer.raw(&format!(
                        "# note: this Modelfile carries the text model only: the projector {} is not in it (its memory stays planned)\n",
                        pp.file
                    ));
                }
                let from = match &p.model.origin {
                    Origin::Catalog { .. } => p.model.catalog_name.clone().unwrap_or_default(),
                    Origin::File { path } => path.display().to_string(),
                    Origin::Remote { .. } => p.model.path.display().to_string(),
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
                // llama-server caps each slot at the training context unless told otherwise.
                let slot = SlotContext::of(&p.model.metadata, &p.model.tensors, p.plan.context);
                if let Some(w) = slot.warning(p.plan.context) {
                    printer.raw(&format!("# warning: {w}\n"));
                }
                let mut args = settings.llama_args();
                args.extend_from_slice(slot.args());
                let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
                // llama.cpp sees a software Vulkan device only when it is named.
                let env = match std::env::var("GGML_VK_VISIBLE_DEVICES") {
                    Ok(v) if settings.software_gpu => format!("GGML_VK_VISIBLE_DEVICES={v} "),
                    _ => String::new(),
                };
                printer.raw(&format!("{env}{tool} {}\n", quoted.join(" ")));
            }
        }
        return Ok(super::verdict_code(p.plan.verdict));
    }
    super::output::answer_code(super::verdict_code(p.plan.verdict));
    if let Some(file) = &args.chart {
        let data = super::chart::data(&p, &MAX_CONTEXT_TYPES);
        super::chart::write_svg(file, &data).map_err(Failure::BadInput)?;
        printer.note(&format!("memory chart written to {}", file.display()));
    }
    if args.json {
        printer.json(&PlanDoc {
            model: p.model.label.clone(),
            origin: &p.model.origin,
            architecture: &p.shape.architecture,
            profile: p.profile.as_ref().map(|x| x.name.as_str()),
            plan: &p.plan,
            candidates: &p.candidates,
            this_binary: p.this_binary.as_ref(),
            max_context: args
                .max_context
                .then(|| max_contexts(&p).into_iter().collect()),
        })?;
    } else {
        print_plan(&p, printer);
        print_candidates(&p.candidates, printer);
        if args.max_context {
            let mut t = printer.table(&["KV cache", "largest context that fits"]);
            for (kv, n) in max_contexts(&p) {
                let text = match n {
                    Some(n) => format!("{n} tokens"),
                    None => "not even 256 tokens".into(),
                };
                printer.row(&mut t, vec![kv, text]);
            }
            printer.print_table(t);
            printer.note(&format!(
                "with -ngl {} as planned; the plan still holds {} tokens",
                p.plan.n_gpu_layers, p.plan.context
            ));
        }
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
