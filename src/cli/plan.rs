//! `layerfit plan --model MODEL`: the layer split and settings for this (or a described)
//! machine, and a runnable llama.cpp command line.

use super::hardware::HardwareArgs;
use super::inspect::parse_cache_type;
use super::{exit, output, parse_tokens, Failure};
use crate::bytes::Bytes;
use crate::gguf::open_model;
use crate::hardware::whatif::parse_size;
use crate::hardware::Snapshot;
use crate::memory::ggml_type::GgmlType;
use crate::memory::weights;
use crate::model::Shape;
use crate::plan::{plan, plan_at, Plan, PlanInput, Requirements, Verdict};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// The GGUF model (a file or any shard of a split set).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Context the plan must hold (never lowered).
    #[arg(long, default_value = "32768", value_parser = parse_tokens, alias = "min-context")]
    pub ctx: u64,
    /// Allowed KV cache types, best first.
    #[arg(long, value_delimiter = ',', default_value = "f16,q8_0,q4_0", value_parser = parse_cache_type)]
    pub kv: Vec<GgmlType>,
    /// RAM to keep for the rest of the application, e.g. 1G.
    #[arg(long, value_parser = parse_size, default_value = "0")]
    pub reserve: u64,
    /// Force llama.cpp's -ngl instead of searching (with the first --kv type).
    #[arg(long)]
    pub ngl: Option<u32>,
    #[command(flatten)]
    pub hw: HardwareArgs,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Print a runnable configuration instead of the report.
    #[arg(long, value_parser = ["llama-server", "llama-cli"])]
    pub emit: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// The model, the machine and the plan, for `plan` and `check-requirements`.
pub struct Planned {
    pub model: PathBuf,
    pub shape: Shape,
    pub hardware: Snapshot,
    pub plan: Plan,
}

pub fn make_plan(a: &PlanArgs) -> Result<Planned, Failure> {
    let path = a
        .model
        .clone()
        .ok_or_else(|| Failure::BadInput("no model given: use --model FILE.gguf".into()))?;
    let file = open_model(&path).map_err(|e| Failure::BadInput(e.to_string()))?;
    let vocab = file.tensor_vocab();
    let shape = Shape::from_metadata(file.metadata(), vocab)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?;
    let w = weights(file.tensors(), shape.block_count as usize);
    let hardware = a.hw.snapshot()?;
    let input = PlanInput::new(shape.clone(), w, file.tensors(), &hardware.cpu.simd);
    let req = Requirements {
        min_context: a.ctx,
        kv_types: a.kv.clone(),
        app_reserve: Bytes(a.reserve),
        ..Requirements::default()
    };
    let plan = match a.ngl {
        Some(n) => plan_at(&input, &hardware, &req, a.kv[0], n),
        None => plan(&input, &hardware, &req),
    };
    Ok(Planned {
        model: path,
        shape,
        hardware,
        plan,
    })
}

/// llama.cpp's arguments for the plan.
pub fn llama_args(model: &Path, p: &Plan) -> Vec<String> {
    let mut v = vec![
        "-m".to_string(),
        model.display().to_string(),
        "-c".into(),
        p.context.to_string(),
        "-ngl".into(),
        p.n_gpu_layers.to_string(),
        "-ctk".into(),
        p.kv_type.name().into(),
        "-ctv".into(),
        p.kv_type.name().into(),
        "-fa".into(),
        if p.flash_attn { "on" } else { "off" }.into(),
    ];
    if !p.tensor_split.is_empty() {
        v.push("-ts".into());
        v.push(
            p.tensor_split
                .iter()
                .map(|f| format!("{f:.3}"))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    v
}

#[derive(Serialize)]
struct PlanDoc<'a> {
    model: String,
    architecture: &'a str,
    plan: &'a Plan,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let p = make_plan(&args.plan)?;
    if let Some(tool) = &args.emit {
        if p.plan.verdict == Verdict::Incompatible {
            return Err(Failure::Infeasible(
                p.plan.missing.clone().unwrap_or_default(),
            ));
        }
        for d in &p.plan.degradations {
            output::warning(&d.message);
        }
        let quoted: Vec<String> = llama_args(&p.model, &p.plan)
            .iter()
            .map(|a| shell_quote(a))
            .collect();
        println!("{tool} {}", quoted.join(" "));
        return Ok(exit::OK);
    }
    if args.json {
        output::json(&PlanDoc {
            model: p.model.display().to_string(),
            architecture: &p.shape.architecture,
            plan: &p.plan,
        })?;
    } else {
        print_plan(&p);
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

pub fn print_plan(p: &Planned) {
    let plan = &p.plan;
    let mut t = output::table(&[
        "device", "weights", "KV cache", "compute", "total", "budget",
    ]);
    for d in &plan.devices {
        t.add_row(vec![
            d.device.clone(),
            d.weights_bytes.to_string(),
            d.kv_bytes.to_string(),
            d.compute_bytes.to_string(),
            d.total_bytes.to_string(),
            d.budget_bytes.to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "model {} ({}), context {} tokens, KV cache {}, flash attention {}",
        p.model.display(),
        p.shape.architecture,
        plan.context,
        plan.kv_type,
        if plan.flash_attn { "on" } else { "off" }
    );
    println!(
        "GPU blocks {}/{} ({:.0}%), CPU blocks {}/{}, output layer on {} (-ngl {})",
        plan.gpu_blocks,
        plan.block_count,
        plan.gpu_share * 100.0,
        plan.cpu_blocks,
        plan.block_count,
        if plan.output_on_gpu { "GPU" } else { "CPU" },
        plan.n_gpu_layers
    );
    println!(
        "RAM: {} of {} usable ({} page cache for mapped weights, {} anonymous)",
        plan.ram.total_bytes,
        plan.ram.budget_bytes,
        plan.ram.page_cache_bytes,
        plan.ram.anonymous_bytes
    );
    if let Some(s) = &plan.speed {
        println!(
            "expected decode speed: {:.1} to {:.1} tokens/s",
            s.decode_tokens_per_s_low, s.decode_tokens_per_s_high
        );
    }
    println!("verdict: {}", verdict_word(plan.verdict));
    for d in &plan.degradations {
        output::warning(&format!(
            "{} ({})",
            d.message,
            format!("{:?}", d.severity).to_lowercase()
        ));
    }
    if let Some(m) = &plan.missing {
        output::error(m);
    }
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Compatible => "COMPATIBLE",
        Verdict::Degraded => "DEGRADED (runs, with the warnings below)",
        Verdict::Incompatible => "INCOMPATIBLE",
    }
}
