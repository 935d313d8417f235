//! Resolving the planning flags shared by `plan`, `check-requirements` and `run` into one
//! answer: which model (of the candidates given or the profile's), on which machine, with
//! which plan. Not a command: the commands call it with their parsed flags and print.

use super::hardware::HardwareArgs;
use super::inspect::parse_cache_type;
use super::{parse_tokens, Failure};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::cpu;
use crate::hardware::whatif::{describe, parse_size};
use crate::hardware::Snapshot;
use crate::model::Shape;
use crate::model_source::{default_models_dir, resolve, smaller_variants, ModelSource, Origin};
use crate::plan::{plan, plan_at, plan_gpu_unused, Plan, Requirements, Verdict};
use crate::profile::Profile;
use serde::Serialize;

#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// A GGUF file (or any shard of a split set) or a catalog model (qwen2.5-coder:7b-q4_k_m;
    /// without a variant, every variant is tried, best quality first). Repeat to compare
    /// candidates, best first.
    #[arg(long)]
    pub model: Vec<String>,
    /// A built-in profile (see `layerfit profiles`) or a profile YAML file: its models,
    /// context, cache types and reserves, unless flags say otherwise.
    #[arg(long)]
    pub profile: Option<String>,
    /// Plan on the profile's target machine instead of this one.
    #[arg(long, requires = "profile")]
    pub on_target: bool,
    /// Context the plan must hold (never lowered) [default: the profile's, else 32768].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_tokens, alias = "min-context")]
    pub ctx: Option<u64>,
    /// Allowed KV cache types, best first [default: the profile's, else f16,q8_0,q4_0].
    #[arg(long, value_delimiter = ',', value_parser = parse_cache_type)]
    pub kv: Vec<GgmlType>,
    /// RAM to keep for the rest of the application, with a unit, e.g. 1G [default: the
    /// profile's, else 0].
    #[arg(long, allow_hyphen_values = true, value_parser = parse_size)]
    pub reserve: Option<u64>,
    /// Force llama.cpp's -ngl instead of searching (with the first --kv type).
    #[arg(long, allow_negative_numbers = true)]
    pub ngl: Option<u32>,
    /// With --ngl: llama.cpp's --n-cpu-moe (experts of the first N blocks on the CPU).
    #[arg(
        long,
        requires = "ngl",
        default_value = "0",
        allow_negative_numbers = true
    )]
    pub n_cpu_moe: u32,
    /// `--dev none`: hide every GPU from llama.cpp (as its `-dev none`) and plan on the CPU.
    #[arg(long = "dev", value_parser = ["none"], conflicts_with = "ngl")]
    pub dev: Option<String>,
    /// Do not keep MoE experts on the CPU (for engines without --n-cpu-moe, e.g. Ollama).
    #[arg(long, hide = true)]
    pub no_cpu_moe: bool,
    #[command(flatten)]
    pub hw: HardwareArgs,
}

/// One model considered, and how it came out.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Candidate {
    pub model: String,
    pub bits_per_weight: f64,
    pub verdict: Option<Verdict>,
    pub kv_type: Option<String>,
    pub n_gpu_layers: Option<u32>,
    /// Why it was not planned (below the profile's quality floor).
    pub skipped: Option<String>,
}

/// The model, the machine and the plan, for `plan` and `check-requirements`.
pub struct Planned {
    pub model: ModelSource,
    pub shape: Shape,
    pub hardware: Snapshot,
    pub plan: Plan,
    pub profile: Option<Profile>,
    pub candidates: Vec<Candidate>,
}

fn plan_one(
    src: &ModelSource,
    hardware: &Snapshot,
    req: &Requirements,
    forced: Option<(GgmlType, Option<u32>, u32)>,
) -> Result<(Shape, Plan), Failure> {
    let input = src.plan_input(&hardware.cpu.simd).map_err(Failure::input)?;
    let shape = input.shape.clone();
    let plan = match forced {
        Some((t, Some(ngl), moe)) => plan_at(&input, hardware, req, t, ngl, moe),
        Some((t, None, _)) => plan_gpu_unused(&input, hardware, req, t),
        None => plan(&input, hardware, req),
    };
    Ok((shape, plan))
}

/// What the plan is for: a report may plan a model before it is downloaded; a run needs the
/// file, so catalog-only candidates are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Report,
    Run,
}

pub fn make_plan(a: &PlanArgs, purpose: Purpose) -> Result<Planned, Failure> {
    let profile = a
        .profile
        .as_deref()
        .map(crate::profile::load)
        .transpose()
        .map_err(Failure::input)?;
    let models_dir = a.hw.models_dir.clone().unwrap_or_else(default_models_dir);
    let specs: Vec<String> = if !a.model.is_empty() {
        a.model.clone()
    } else if let Some(p) = &profile {
        p.models.clone()
    } else {
        return Err(Failure::BadInput(
            "no model given: use --model FILE.gguf, --model a catalog name, or --profile".into(),
        ));
    };
    let mut sources = Vec::new();
    for s in &specs {
        sources.extend(resolve(s, &models_dir).map_err(|e| {
            use crate::model_source::ModelSourceError as E;
            let unknown = matches!(
                e,
                E::Unknown(_) | E::Catalog(crate::catalog::CatalogError::Unknown(_))
            );
            let f = Failure::input(e);
            if unknown {
                f.with_hint(
                    "name a GGUF file by its path, or a catalog model such as qwen2.5-coder:7b-q4_k_m",
                )
            } else {
                f
            }
        })?);
    }
    let hardware = match (&profile, a.on_target) {
        (Some(p), true) => {
            let mut c = cpu::probe();
            c.memory_bandwidth_gbps = None;
            describe(&p.target, &format!("profile:{}", p.name), c)
                .map_err(|e| Failure::input_in(format!("profile {}", p.name), e))?
        }
        _ => a.hw.snapshot()?,
    };
    let pr = profile.as_ref();
    let kv_types = if !a.kv.is_empty() {
        a.kv.clone()
    } else if let Some(p) = pr {
        p.kv().map_err(Failure::input)?
    } else {
        vec![GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0]
    };
    let bytes = |r: Result<u64, crate::profile::ProfileError>| r.map_err(Failure::input);
    let req = Requirements {
        min_context: a.ctx.or(pr.map(|p| p.min_context)).unwrap_or(32768),
        kv_types: kv_types.clone(),
        app_reserve: Bytes(match (a.reserve, pr) {
            (Some(r), _) => r,
            (None, Some(p)) => bytes(p.app_reserve_bytes())?,
            _ => 0,
        }),
        vram_reserve: Bytes(
            pr.map(|p| bytes(p.vram_reserve_bytes()))
                .transpose()?
                .unwrap_or(0),
        ),
        ram_limit: match pr {
            Some(p) => p.memory_limit_bytes().map_err(Failure::input)?.map(Bytes),
            None => None,
        },
        allow_cpu_moe: !a.no_cpu_moe,
        ..Requirements::default()
    };
    let floor = pr.and_then(|p| p.min_bits_per_weight);
    let forced = match (a.ngl, a.dev.is_some()) {
        (Some(n), _) => Some((kv_types[0], Some(n), a.n_cpu_moe)),
        (None, true) => Some((kv_types[0], None, 0)),
        (None, false) => None,
    };
    let mut candidates = Vec::new();
    let mut chosen: Option<(ModelSource, Shape, Plan)> = None;
    let mut first: Option<(ModelSource, Shape, Plan)> = None;
    for src in sources {
        let bpw = src.bits_per_weight();
        let mut c = Candidate {
            model: src
                .catalog_name
                .clone()
                .unwrap_or_else(|| src.label.clone()),
            bits_per_weight: (bpw * 100.0).round() / 100.0,
            verdict: None,
            kv_type: None,
            n_gpu_layers: None,
            skipped: None,
        };
        if let Some(f) = floor.filter(|&f| bpw < f) {
            c.skipped = Some(format!(
                "{bpw:.2} bits per weight is below the profile's floor of {f}"
            ));
            candidates.push(c);
            continue;
        }
        if chosen.is_some() {
            candidates.push(c);
            continue;
        }
        if purpose == Purpose::Run && matches!(src.origin, Origin::Catalog { .. }) {
            c.skipped = Some(format!(
                "not downloaded (expected at {})",
                src.path.display()
            ));
            candidates.push(c);
            continue;
        }
        let (shape, plan) = plan_one(&src, &hardware, &req, forced)?;
        c.verdict = Some(plan.verdict);
        c.kv_type = Some(plan.kv_type.name().into());
        c.n_gpu_layers = Some(plan.n_gpu_layers);
        candidates.push(c);
        if plan.verdict != Verdict::Incompatible {
            chosen = Some((src, shape, plan));
        } else if first.is_none() {
            first = Some((src, shape, plan));
        }
    }
    let (model, shape, mut plan) = match chosen.or(first) {
        Some(x) => x,
        None => {
            let why: Vec<String> = candidates
                .iter()
                .map(|c| format!("{}: {}", c.model, c.skipped.clone().unwrap_or_default()))
                .collect();
            return Err(Failure::BadInput(format!(
                "no candidate model can be planned ({})",
                why.join("; ")
            )));
        }
    };
    if plan.verdict == Verdict::Incompatible && forced.is_none() {
        // Say what would fit instead: a smaller variant of the same catalog model.
        for alt in smaller_variants(&model, &models_dir) {
            if floor.is_some_and(|f| alt.bits_per_weight() < f) {
                continue;
            }
            let (_, p) = plan_one(&alt, &hardware, &req, None)?;
            if p.verdict != Verdict::Incompatible {
                let hint = format!(
                    "{} would fit ({}, -ngl {}, {} cache)",
                    alt.label,
                    format!("{:?}", p.verdict).to_lowercase(),
                    p.n_gpu_layers,
                    p.kv_type
                );
                plan.missing = Some(match plan.missing.take() {
                    Some(m) => format!("{m}; {hint}"),
                    None => hint,
                });
                break;
            }
        }
    }
    Ok(Planned {
        model,
        shape,
        hardware,
        plan,
        profile,
        candidates,
    })
}
