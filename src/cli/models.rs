//! `layerfit models`: every model already on this machine (models folder, Ollama's store,
//! the Hugging Face cache, llama.cpp's cache, LM Studio's folder), each with its verdict on
//! this machine at the context: the seed's question for everything the user already has.

use super::hardware::HardwareArgs;
use super::output::Printer;
use super::plan_report::rate;
use super::planning::{self, PlanArgs};
use super::{exit, parse_tokens, Failure};
use crate::bytes::Bytes;
use crate::fetch::stores::{scan, Store};
use crate::model_source::{default_models_dir, ModelSource};
use crate::plan::choose::choose;
use crate::plan::Verdict;
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Context each model must hold (tokens; 32k = 32768) [default: 32768].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_tokens)]
    pub ctx: Option<u64>,
    /// CPU threads for the expected speed [default: the physical cores].
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Print a JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hw: HardwareArgs,
}

/// `layerfit models --json` (docs/schemas/models.schema.json).
#[derive(Serialize, schemars::JsonSchema)]
pub struct ModelsReport {
    pub context: u64,
    pub models: Vec<LocalModel>,
}

/// One model on disk and its answer; `problem` instead of an answer when it cannot be read.
#[derive(Serialize, schemars::JsonSchema)]
pub struct LocalModel {
    /// The name `--model` takes to find it again.
    pub name: String,
    pub store: Store,
    pub path: String,
    pub size_bytes: Option<u64>,
    pub architecture: Option<String>,
    pub quant: Option<String>,
    pub verdict: Option<Verdict>,
    pub kv_type: Option<String>,
    pub n_gpu_layers: Option<u32>,
    /// Expected generation speed at the full context.
    pub decode_tokens_per_s: Option<f64>,
    pub problem: Option<String>,
}

fn plan_args(a: &Args) -> PlanArgs {
    PlanArgs {
        model: Vec::new(),
        profile: None,
        on_target: false,
        ctx: a.ctx,
        kv: Vec::new(),
        reserve: None,
        ngl: None,
        n_cpu_moe: 0,
        dev: None,
        no_cpu_moe: false,
        min_speed: None,
        draft: None,
        draft_kv: crate::ggml_type::GgmlType::F16,
        draft_max: crate::plan::draft::DEFAULT_DRAFT_MAX,
        projector: Default::default(),
        threads: a.threads,
        parallel: 1,
        embeddings: Default::default(),
        hw: a.hw.clone(),
    }
}

pub fn run(a: Args, printer: &Printer) -> Result<u8, Failure> {
    let pa = plan_args(&a);
    let machine = planning::hardware(&pa, None)?;
    let mut req = planning::requirements(&pa, None)?;
    planning::speed_inputs(&pa, None, &machine, &mut req);
    let models_dir = a.hw.models_dir.clone().unwrap_or_else(default_models_dir);
    let mut out = Vec::new();
    for f in scan(&models_dir) {
        let mut m = LocalModel {
            name: f.name.clone(),
            store: f.store,
            path: f.path.display().to_string(),
            size_bytes: std::fs::metadata(&f.path).ok().map(|m| m.len()),
            architecture: None,
            quant: None,
            verdict: None,
            kv_type: None,
            n_gpu_layers: None,
            decode_tokens_per_s: None,
            problem: f.problem.clone(),
        };
        if m.problem.is_none() {
            let planned = ModelSource::from_file(&f.path)
                .and_then(|s| Ok((s.option(&machine.cpu.simd)?, s)))
                .map_err(|e| e.to_string());
            match planned {
                Ok((opt, src)) => {
                    m.architecture = Some(opt.input.shape.architecture.clone());
                    m.quant = src.quant();
                    let plan = choose(&[opt], &machine, &req, None).swap_remove(0).plan;
                    m.verdict = Some(plan.verdict);
                    m.kv_type = Some(plan.kv_type.name().to_string());
                    m.n_gpu_layers = Some(plan.n_gpu_layers);
                    m.decode_tokens_per_s = plan
                        .speed
                        .as_ref()
                        .map(|s| (s.expected_decode() * 10.0).round() / 10.0);
                    if plan.verdict == Verdict::Incompatible {
                        m.problem = plan.missing.clone();
                    }
                }
                Err(e) => m.problem = Some(e),
            }
        }
        out.push(m);
    }
    let report = ModelsReport {
        context: req.min_context,
        models: out,
    };
    if a.json {
        printer.json(&report)?;
    } else {
        print_table(&report, printer, &models_dir);
    }
    Ok(exit::OK)
}

/// Paths under HOME as `~/...`, as people type them (JSON keeps them whole).
fn tilde(text: &str, home: &str) -> String {
    if home.len() > 1 {
        text.replace(&format!("{home}/"), "~/")
    } else {
        text.to_string()
    }
}

fn print_table(r: &ModelsReport, printer: &Printer, models_dir: &std::path::Path) {
    if r.models.is_empty() {
        printer.line(&format!(
            "no models found (looked in {}, Ollama's store, the Hugging Face cache, llama.cpp's cache and LM Studio's folder); `layerfit pull hf://ORG/REPO` fetches one",
            models_dir.display()
        ));
        return;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let mut t = printer.table(&[
        "model",
        "where",
        "size",
        "arch",
        "quant",
        &format!("at {} tokens", r.context),
    ]);
    for m in &r.models {
        let answer = match (m.verdict, &m.problem) {
            (Some(Verdict::Incompatible), p) => format!("no: {}", p.clone().unwrap_or_default()),
            (None, p) => format!(
                "unreadable: {}",
                tilde(&p.clone().unwrap_or_default(), &home)
            ),
            (Some(v), _) => format!(
                "{} ({} KV, -ngl {}, {} tokens/s)",
                if v == Verdict::Compatible {
                    "yes"
                } else {
                    "degraded"
                },
                m.kv_type.clone().unwrap_or_default(),
                m.n_gpu_layers.unwrap_or(0),
                m.decode_tokens_per_s
                    .map(rate)
                    .unwrap_or_else(|| "?".into())
            ),
        };
        printer.row(
            &mut t,
            vec![
                tilde(&m.name, &home),
                serde_json::to_value(m.store)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                m.size_bytes
                    .map(|b| Bytes(b).to_string())
                    .unwrap_or_default(),
                m.architecture.clone().unwrap_or_default(),
                m.quant.clone().unwrap_or_default(),
                answer,
            ],
        );
    }
    printer.print_table(t);
}
