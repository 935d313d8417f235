//! Resolving the planning flags shared by `plan`, `check-requirements` and `run` into one
//! answer: which model (of the candidates given or the profile's), on which machine, with
//! which plan. Not a command: the commands call it with their parsed flags and print.

use super::candidates::candidate;
pub use super::candidates::{Candidate, ThisBinary};
use super::hardware::HardwareArgs;
use super::inspect::parse_cache_type;
use super::{parse_tokens, Failure};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::usable::{built_backends, for_this_binary, Unusable};
use crate::hardware::whatif::parse_size;
use crate::hardware::Snapshot;
use crate::model::Shape;
use crate::model_source::{default_models_dir, resolve, smaller_variants, ModelSource};
use crate::plan::choose::{Forced, Ranked};
use crate::plan::draft::{choose_with_draft, DraftSpec};
use crate::plan::{Plan, PlanInput, Requirements, Verdict, DEFAULT_MIN_SPEED};
use crate::profile::Profile;

/// A speed floor: a finite number of tokens/s, 0 or more.
fn parse_speed(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a speed: give tokens per second, e.g. 5 (0 turns the floor off)"
        )),
    }
}

/// Whether the plan is for llama.cpp's embedding context (`serve --embeddings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Embeddings {
    /// Generation (`plan`, `run`).
    #[default]
    Off,
    /// `serve --embeddings`.
    On,
    /// `serve` without the flag: embedding mode for an embedding model.
    Auto,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// A GGUF file (or any shard of a split set), a catalog model (qwen2.5-coder:7b-q4_k_m;
    /// without a variant, every variant is tried, best quality first), a Hugging Face
    /// repository or file (hf://ORG/REPO[:QUANT][@REV], hf://ORG/REPO/PATH.gguf), a URL
    /// (https://.../NAME.gguf) or an Ollama model (ollama://[HOST/]NAME[:TAG], or NAME:TAG in
    /// Ollama's store); a remote file's header is read by range. Repeat to compare
    /// candidates, best first.
    #[arg(long)]
    pub model: Vec<String>,
    /// A built-in profile (see `layerfit profiles`) or a profile YAML file: its models,
    /// context, cache types and reserves, unless flags say otherwise.
    #[arg(long)]
    pub profile: Option<String>,
    /// Plan on the profile's target machine instead of this one (not with hardware flags,
    /// which describe another machine).
    #[arg(
        long,
        requires = "profile",
        conflicts_with_all = ["hardware", "ram", "vram", "gpu", "no_gpu", "cpu_cores", "cpu_bandwidth"]
    )]
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
    /// Speed floor in generated tokens/s: better quality is worth speed only down to it;
    /// slower plans are degraded [default: the profile's, else 5; 0: no floor].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_speed)]
    pub min_speed: Option<f64>,
    /// CPU threads, at least 1 [default: the profile's, else the physical cores, as
    /// llama.cpp]; the expected speed is computed for them.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Sequences served at once (`serve --parallel`), each holding the whole context: the
    /// KV cache is sized for all of them, as llama.cpp's `-np` sizes it.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub parallel: u32,
    /// Embedding mode, set by `serve` (not a flag of its own here): `Auto` plans it when every
    /// candidate is an embedding model (`Shape::is_embedding_model`).
    #[arg(skip)]
    pub embeddings: Embeddings,
    /// A draft model for speculative decoding (any name --model takes): planned beside the
    /// model at the same context, on the device that leaves the model the better plan.
    #[arg(long)]
    pub draft: Option<String>,
    /// The draft's KV cache type (llama.cpp's -ctkd/-ctvd).
    #[arg(long, default_value = "f16", value_parser = parse_cache_type)]
    pub draft_kv: GgmlType,
    /// Tokens drafted per step (llama.cpp's --spec-draft-n-max).
    #[arg(long, default_value_t = crate::plan::draft::DEFAULT_DRAFT_MAX, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub draft_max: u32,
    #[command(flatten)]
    pub projector: super::projector::ProjectorArgs,
    #[command(flatten)]
    pub hw: HardwareArgs,
}

/// The model, the machine and the plan, for `plan`, `check-requirements` and `run`.
pub struct Planned {
    pub model: ModelSource,
    pub shape: Shape,
    /// The machine planned on (for `run`: only the GPUs this binary can drive).
    pub hardware: Snapshot,
    pub plan: Plan,
    pub profile: Option<Profile>,
    pub candidates: Vec<Candidate>,
    /// Report only: the answer of this binary, when it cannot drive a GPU of the machine.
    pub this_binary: Option<ThisBinary>,
    /// Run only: GPUs left out because this binary cannot drive them.
    pub unusable: Vec<Unusable>,
    pub requirements: Requirements,
    pub input: PlanInput,
}

/// What the plan is for: a report plans on the machine as described (GPU plans for the
/// build that can drive them); a run plans only on what this binary drives and needs the
/// file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Report,
    Run,
}

/// Every candidate model with its place in the list (the variants of one name share it).
fn sources(a: &PlanArgs, profile: Option<&Profile>) -> Result<Vec<(usize, ModelSource)>, Failure> {
    let models_dir = a.hw.models_dir.clone().unwrap_or_else(default_models_dir);
    let specs: Vec<String> = if !a.model.is_empty() {
        a.model.clone()
    } else if let Some(p) = profile {
        p.models.clone()
    } else {
        return Err(Failure::BadInput(
            "no model given: use --model FILE.gguf, --model a catalog name, or --profile".into(),
        ));
    };
    let mut out = Vec::new();
    for (place, s) in specs.iter().enumerate() {
        let found = resolve(s, &models_dir).map_err(|e| {
            use crate::model_source::ModelSourceError as E;
            let unknown = matches!(
                e,
                E::Unknown { .. } | E::Catalog(crate::catalog::CatalogError::Unknown { .. })
            );
            let f = Failure::input(e);
            if unknown {
                f.with_hint(
                    "name a GGUF file by its path, or a catalog model such as qwen2.5-coder:7b-q4_k_m",
                )
            } else {
                f
            }
        })?;
        out.extend(found.into_iter().map(|m| (place, m)));
    }
    Ok(out)
}

pub(super) fn requirements(a: &PlanArgs, pr: Option<&Profile>) -> Result<Requirements, Failure> {
    let kv_types = if !a.kv.is_empty() {
        a.kv.clone()
    } else if let Some(p) = pr {
        p.kv().map_err(Failure::input)?
    } else {
        vec![GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0]
    };
    let bytes = |r: Result<u64, crate::profile::ProfileError>| r.map_err(Failure::input);
    let floor = a
        .min_speed
        .or(pr.and_then(|p| p.min_speed))
        .unwrap_or(DEFAULT_MIN_SPEED);
    Ok(Requirements {
        min_context: a.ctx.or(pr.map(|p| p.min_context)).unwrap_or(32768),
        kv_types,
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
        min_decode_tokens_per_s: (floor > 0.0).then_some(floor),
        parallel: a.parallel,
        embeddings: a.embeddings == Embeddings::On,
        ..Requirements::default()
    })
}

/// Embedding mode for `serve`: with `--embeddings`, or (`Auto`) when every candidate is an
/// embedding model. An input never spans more than one ubatch (llama.cpp pools a sequence
/// per ubatch), so without `--ctx` or a profile the context is one ubatch per sequence.
fn embedding_mode(
    a: &PlanArgs,
    pr: Option<&Profile>,
    shapes: &[&crate::model::Shape],
    req: &mut Requirements,
) {
    req.embeddings = match a.embeddings {
        Embeddings::Off => false,
        Embeddings::On => true,
        Embeddings::Auto => shapes.iter().all(|s| s.is_embedding_model()),
    };
    if req.embeddings && a.ctx.is_none() && pr.is_none() {
        req.min_context = req.n_ubatch as u64;
    }
}

/// Threads, calibration and load for the speed figures. This machine's calibration and
/// load apply only when the machine planned for is this one (`hardware::target`): never to
/// a profile's target, a description, or RAM or a CPU described by flags.
pub fn speed_inputs(
    a: &PlanArgs,
    pr: Option<&Profile>,
    machine: &Snapshot,
    req: &mut Requirements,
) {
    req.threads = a.threads.or(pr.and_then(|p| p.threads));
    // The models disk is this machine's whenever it was probed (RAM or a CPU described by
    // flags leave it as it is): its read speed, when `bench` measured it.
    req.disk_read_bytes_per_s = machine
        .disk
        .as_ref()
        .and_then(|d| super::disk_speed::load(&d.mount_point))
        .map(|d| d.bytes_per_s);
    if crate::hardware::target::is_this_machine(machine) {
        req.calibration = super::calibration::load(&machine.cpu).map(std::sync::Arc::new);
        req.measured = super::measured::load(&machine.cpu).map(std::sync::Arc::new);
        req.load_average = super::measured::load_average();
    }
}

pub(super) fn hardware(a: &PlanArgs, profile: Option<&Profile>) -> Result<Snapshot, Failure> {
    match (profile, a.on_target) {
        // The same rule as `--hardware` and flags (`hardware::target`).
        (Some(p), true) => crate::hardware::target::described(
            &p.target,
            &format!("profile:{}", p.name),
            &a.hw.cpu_flags()?,
        )
        .map_err(|e| Failure::input_in(format!("profile {}", p.name), e)),
        _ => a.hw.snapshot(),
    }
}

/// The one answer: every candidate model's options ranked together (`plan::choose`).
pub fn make_plan(a: &PlanArgs, purpose: Purpose) -> Result<Planned, Failure> {
    let profile = a
        .profile
        .as_deref()
        .map(crate::profile::load)
        .transpose()
        .map_err(Failure::input)?;
    let pr = profile.as_ref();
    let all = sources(a, pr)?;
    let mut machine = hardware(a, pr)?;
    // `run` executes here whatever memory it is limited to: the engine repacks and threads
    // for this host's CPU, so the plan does too (unless the CPU was described by flags).
    if purpose == Purpose::Run
        && !crate::hardware::target::is_this_machine(&machine)
        && a.hw.cpu_flags()?.is_empty()
    {
        machine.cpu = crate::hardware::cpu::probe();
        machine
            .notes
            .retain(|n| !n.starts_with("CPU not fully described"));
    }
    let mut req = requirements(a, pr)?;
    speed_inputs(a, pr, &machine, &mut req);
    let forced = match (a.ngl, a.dev.is_some()) {
        (Some(ngl), _) => Some(Forced::Layers {
            kv: req.kv_types[0],
            ngl,
            cpu_moe: a.n_cpu_moe,
        }),
        (None, true) => Some(Forced::GpusUnused {
            kv: req.kv_types[0],
        }),
        (None, false) => None,
    };
    let floor = pr.and_then(|p| p.min_bits_per_weight);
    let mut skipped = Vec::new();
    let mut srcs = Vec::new();
    let mut opts = Vec::new();
    for (place, src) in all {
        let bpw = src.bits_per_weight();
        if let Some(f) = floor.filter(|&f| bpw < f) {
            let mut c = candidate(&src, None);
            c.skipped = Some(format!(
                "{bpw:.2} bits per weight is below the profile's floor of {f}"
            ));
            skipped.push(c);
            continue;
        }
        let mut opt = src.option(&machine.cpu.simd).map_err(Failure::input)?;
        opt.preference = place;
        if src.downloaded() {
            opt.input.file = super::measured::file_key(&src.path);
        }
        opts.push(opt);
        srcs.push(src);
    }
    if srcs.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|c| format!("{}: {}", c.model, c.skipped.clone().unwrap_or_default()))
            .collect();
        return Err(Failure::BadInput(format!(
            "no candidate model can be planned ({})",
            why.join("; ")
        )));
    }
    let shapes: Vec<&crate::model::Shape> = opts.iter().map(|o| &o.input.shape).collect();
    embedding_mode(a, pr, &shapes, &mut req);
    let (usable, unusable) = for_this_binary(&machine, &built_backends());
    let hardware = if purpose == Purpose::Run {
        usable.clone()
    } else {
        machine
    };
    let draft = super::draft::spec(a, &hardware.cpu.simd, purpose)?;
    let dspec = draft.as_ref().map(|d| &d.0);
    // The projector goes beside the first candidate's file (`auto`); its memory is held
    // out of the device llama.cpp's multimodal loader puts it on before any model is placed.
    let models_dir = a.hw.models_dir.clone().unwrap_or_else(default_models_dir);
    let projector = super::projector::spec(&a.projector, &srcs[0], &models_dir)?;
    let projector_plan = projector
        .as_ref()
        .map(|p| super::projector::plan(p, &hardware));
    if let Some(p) = &projector_plan {
        req = crate::plan::projector::holding(&req, p);
    }
    let ranked = super::rpc_compute::choose_checked(
        &hardware,
        |hw| choose_with_draft(&opts, hw, &req, forced, dspec),
        |m| (srcs[m].path.clone(), opts[m].input.shape.n_vocab),
    );
    let best = &ranked[0];
    if let Some((_, d)) = &draft {
        super::draft::check_vocab(&srcs[best.model], d)?;
    }
    if let Some(p) = &projector {
        super::projector::check(p, &srcs[best.model], opts[best.model].input.shape.n_embd)?;
    }
    if purpose == Purpose::Run {
        refuse_what_cannot_run(&srcs, &ranked)?;
    }
    let this_binary = (purpose == Purpose::Report && !unusable.is_empty()).then(|| {
        let mine = choose_with_draft(&opts, &usable, &req, forced, dspec).swap_remove(0);
        ThisBinary {
            unusable: unusable.clone(),
            model: srcs[mine.model].label.clone(),
            plan: mine.plan,
        }
    });
    let mut candidates: Vec<Candidate> = ranked
        .iter()
        .map(|r| candidate(&srcs[r.model], Some(r)))
        .collect();
    candidates.extend(skipped);
    let mut plan = best.plan.clone();
    plan.projector = projector_plan;
    let model = srcs[best.model].clone();
    if plan.verdict == Verdict::Incompatible && forced.is_none() {
        hint_smaller_variant(&model, &hardware, &req, floor, &mut plan, a, dspec)?;
    }
    Ok(Planned {
        shape: opts[best.model].input.shape.clone(),
        input: opts[best.model].input.clone(),
        model,
        hardware,
        plan,
        profile,
        candidates,
        this_binary,
        unusable: if purpose == Purpose::Run {
            unusable
        } else {
            Vec::new()
        },
        requirements: req,
    })
}

/// `run` needs the recommendation's file, whole: a download or a partial file is bad input
/// (exit 2) naming the best option that is on disk.
fn refuse_what_cannot_run(srcs: &[ModelSource], ranked: &[Ranked]) -> Result<(), Failure> {
    let best = &ranked[0];
    let src = &srcs[best.model];
    if src.downloaded() {
        return Ok(());
    }
    let name = src
        .catalog_name
        .clone()
        .unwrap_or_else(|| src.label.clone());
    let problem = if src.missing_bytes > 0 {
        format!(
            "{}: the file is incomplete ({} of tensor data missing): it cannot run until the download completes",
            src.label,
            Bytes(src.missing_bytes)
        )
    } else {
        format!(
            "{name} is the recommendation but it is not downloaded: {}",
            src.where_to_get()
        )
    };
    let alternative = ranked
        .iter()
        .find(|r| srcs[r.model].downloaded() && r.plan.verdict != Verdict::Incompatible)
        .map(|r| {
            let s = &srcs[r.model];
            format!(
                "the best option on disk is {} (ranked {}): run it with --model {}",
                s.catalog_name.clone().unwrap_or_else(|| s.label.clone()),
                r.place,
                s.catalog_name.clone().unwrap_or_else(|| s.label.clone())
            )
        });
    let f = Failure::BadInput(problem);
    Err(match alternative {
        Some(h) => f.with_hint(h),
        None => f,
    })
}

/// An incompatible catalog variant: say which smaller variant of it would fit.
fn hint_smaller_variant(
    model: &ModelSource,
    hardware: &Snapshot,
    req: &Requirements,
    floor: Option<f64>,
    plan: &mut Plan,
    a: &PlanArgs,
    draft: Option<&DraftSpec>,
) -> Result<(), Failure> {
    let models_dir = a.hw.models_dir.clone().unwrap_or_else(default_models_dir);
    for alt in smaller_variants(model, &models_dir) {
        if floor.is_some_and(|f| alt.bits_per_weight() < f) {
            continue;
        }
        let opt = alt.option(&hardware.cpu.simd).map_err(Failure::input)?;
        let p = choose_with_draft(&[opt], hardware, req, None, draft)
            .swap_remove(0)
            .plan;
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
    Ok(())
}
