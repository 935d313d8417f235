//! What `run` runs: the recommendation planned on the devices this binary drives, or a run
//! file re-planned on this machine as it is now.

use super::output;
use super::planning::PlanArgs;
use super::planning::{make_plan, Purpose};
use super::Failure;
use crate::bytes::Bytes;
use crate::emit::{RunFile, RunSettings};
use crate::engine::self_check::DriverBaseline;
use crate::hardware::usable::{built_backends, for_this_binary};
use crate::model::purpose::{self, ModelPurpose};
use crate::model::Shape;
use crate::model_source::ModelSource;
use crate::plan::{plan_fixed, plan_gpu_unused, DeviceUse, Fixed, Requirements, Verdict};
use std::path::Path;

/// What to run: the settings, the promises, and the model's header.
pub(super) struct Prepared {
    pub settings: RunSettings,
    pub verdict: Verdict,
    pub degradations: Vec<String>,
    pub expected: Vec<DeviceUse>,
    /// Each local GPU's free memory before the plan, for the driver check after loading.
    pub baselines: Vec<DriverBaseline>,
    pub repacked: Bytes,
    pub shape: Shape,
    pub threads: Option<u32>,
    pub label: String,
    /// The plan's expected speed, for the note before the answer and `run --json`.
    pub speed: Option<crate::plan::Speed>,
    /// The plan itself (`serve`'s `/v1/layerfit/plan`).
    pub plan: crate::plan::Plan,
    /// Chat or base model, from the file's metadata (`model::purpose`).
    pub purpose: ModelPurpose,
}

impl Prepared {
    /// How to load the draft model (`--draft`), beside the model's own configuration.
    pub fn draft_config(
        &self,
        model: &crate::engine::session::SessionConfig,
    ) -> Result<Option<crate::engine::session::SessionConfig>, Failure> {
        let Some(d) = &self.settings.draft else {
            return Ok(None);
        };
        let kv = d.kv_type().map_err(Failure::input)?;
        Ok(Some(crate::engine::session::SessionConfig {
            model: d.model.clone(),
            n_gpu_layers: d.n_gpu_layers as i32,
            n_cpu_moe: 0,
            n_cpu_ffn: 0,
            no_gpu_devices: d.gpu_unused,
            type_k: kv,
            type_v: kv,
            flash_attn: model.flash_attn || kv != crate::ggml_type::GgmlType::F16,
            rpc: Vec::new(),
            tensor_split: Vec::new(),
            // The draft proposes one token per sequence a step (llama-server's draft context:
            // `n_outputs_max = n_parallel`, `common/speculative.cpp`).
            n_outputs_per_seq: 1,
            ..model.clone()
        }))
    }
}

/// How the prompt reaches the model: through a chat template, or as plain text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum PromptFormat {
    ChatTemplate,
    Raw,
}

impl PromptFormat {
    /// A base model is completed as plain text unless `--chat` forces a template; `--raw`
    /// (which clap keeps apart from `--chat`) completes any model as plain text.
    pub fn choose(purpose: &ModelPurpose, raw: bool, chat: bool) -> PromptFormat {
        if raw || (purpose.is_base() && !chat) {
            PromptFormat::Raw
        } else {
            PromptFormat::ChatTemplate
        }
    }
}

/// The one line `run` and `serve` print (and `run --json` carries) for a base model, saying
/// what is done with it and how to override that; `None` for a chat model.
pub(super) fn base_model_note(purpose: &ModelPurpose, format: PromptFormat) -> Option<String> {
    purpose.is_base().then(|| match format {
        PromptFormat::Raw => "base model: it continues text, it does not chat: the prompt is completed as plain text (`--chat` forces a chat template)".to_string(),
        PromptFormat::ChatTemplate => "base model: it continues text, it does not chat: `--chat` wraps the prompt in a chat template anyway".to_string(),
    })
}

impl Prepared {
    /// How to load the engine for this plan (`run` with one sequence, `serve` with the
    /// plan's), and the thread count: `--threads`, the run file's, else the plan's
    /// recommendation on a busy machine, else the physical cores.
    pub fn session_config(
        &self,
        threads: Option<u32>,
        mlock: bool,
    ) -> Result<(crate::engine::session::SessionConfig, u32), Failure> {
        let s = &self.settings;
        let kv = s.kv_type().map_err(Failure::input)?;
        let busy = self.plan.speed.as_ref().and_then(|sp| sp.busy.as_ref());
        let threads = threads
            .or(self.threads)
            .or(busy.map(|b| b.recommended_threads))
            .unwrap_or_else(|| crate::hardware::cpu::probe().physical_cores.max(1) as u32);
        let cfg = crate::engine::session::SessionConfig {
            model: s.model.clone(),
            n_ctx: s.context as u32,
            n_gpu_layers: s.n_gpu_layers as i32,
            n_cpu_moe: s.n_cpu_moe,
            n_cpu_ffn: s.n_cpu_ffn,
            no_repack: s.no_repack,
            no_gpu_devices: s.gpu_unused,
            type_k: kv,
            type_v: kv,
            // llama.cpp needs flash attention for a quantized V cache.
            flash_attn: s.flash_attn || kv != crate::ggml_type::GgmlType::F16,
            swa_full: false,
            n_batch: 2048,
            n_ubatch: 512,
            threads: threads as i32,
            use_mmap: true,
            use_mlock: mlock,
            fallback_template: crate::engine::session::fallback_template(&self.shape.architecture)
                .into(),
            n_seq: self.plan.parallel.max(1),
            // The model verifies a draft's proposals and the token before them in one batch.
            n_outputs_per_seq: 1 + s.draft.as_ref().map_or(0, |d| d.draft_max),
            rpc: s
                .rpc
                .iter()
                .map(|e| crate::rpc::endpoint::Endpoint::parse(e))
                .collect::<Result<_, _>>()
                .map_err(|e| Failure::BadInput(format!("the plan's rpc servers: {e}")))?,
            tensor_split: s.tensor_split.iter().map(|&f| f as f32).collect(),
            embeddings: None,
        };
        Ok((cfg, threads))
    }
}

/// What the self-check expects on the host: with per-tensor overrides llama.cpp reports the
/// mapped file range of the host weights, not their sum (`self_check::mapped_host_span`).
/// With only remote devices the plan's own host weights are that range already (the plan
/// sizes RAM by it).
fn expected_on_devices(
    plan: &crate::plan::Plan,
    src: &ModelSource,
    s: &RunSettings,
) -> Vec<DeviceUse> {
    let mut expected = plan.devices.clone();
    let overrides = s.n_cpu_moe > 0 || s.n_cpu_ffn > 0;
    let gpus = expected.iter().any(|d| d.is_gpu);
    if overrides && s.n_gpu_layers > 0 && gpus {
        let span = crate::engine::self_check::mapped_host_span(
            &src.tensors,
            plan.block_count,
            s.n_gpu_layers,
            s.n_cpu_moe,
            s.n_cpu_ffn,
        );
        for d in expected.iter_mut().filter(|d| !d.is_gpu) {
            d.weights_bytes = span;
        }
    }
    expected
}

/// The plan `run` and `serve` execute: from the planning flags, or a run file re-planned.
pub(super) fn prepare(plan: &PlanArgs, plan_file: Option<&Path>) -> Result<Prepared, Failure> {
    if let Some(f) = plan_file {
        return replan_run_file(f, plan);
    }
    let p = make_plan(plan, Purpose::Run)?;
    for u in &p.unusable {
        output::warning(&format!(
            "{}: {}; this run plans without it",
            u.gpu, u.reason
        ));
    }
    if p.plan.verdict == Verdict::Incompatible {
        return Err(Failure::Infeasible(format!(
            "{}: cannot run at {} tokens on this machine: {}",
            p.model.label,
            p.plan.context,
            p.plan.missing.clone().unwrap_or_default()
        )));
    }
    let label = p
        .model
        .catalog_name
        .clone()
        .unwrap_or(p.model.label.clone());
    output::note(&format!(
        "running {label} ({}) with a {} KV cache and -ngl {}: the recommendation for this machine (`layerfit plan` shows the ranking)",
        p.model.quant().unwrap_or_else(|| "unknown quantization".into()),
        p.plan.kv_type,
        p.plan.n_gpu_layers
    ));
    let settings = RunSettings::from_plan(&p.plan, p.model.path.clone());
    Ok(Prepared {
        expected: expected_on_devices(&p.plan, &p.model, &settings),
        baselines: DriverBaseline::of_plan(&p.plan.devices, &p.hardware.gpus),
        settings,
        verdict: p.plan.verdict,
        degradations: messages(&p.plan),
        repacked: p.plan.ram.repacked_bytes,
        threads: p.profile.as_ref().and_then(|x| x.threads),
        label,
        shape: p.shape,
        speed: p.plan.speed.clone(),
        plan: p.plan.clone(),
        purpose: purpose::detect(&p.model.metadata),
    })
}

fn messages(plan: &crate::plan::Plan) -> Vec<String> {
    plan.degradations
        .iter()
        .map(|d| d.message.clone())
        .collect()
}

/// A run file is re-planned on this machine as it is now, at the file's settings: what no
/// longer fits is refused (exit 20), an incomplete model file is bad input (exit 2), and
/// the self-check compares against the fresh figures, not the file's.
fn replan_run_file(f: &Path, plan: &PlanArgs) -> Result<Prepared, Failure> {
    let text = crate::hardware::whatif::read_bounded(f)
        .map_err(|e| Failure::BadInput(format!("{}: {e}", f.display())))?;
    let rf = RunFile::parse(&text).map_err(|e| Failure::input_in(f.display(), e))?;
    if rf.settings.software_gpu {
        // Planned onto a software Vulkan device: make it visible to llama.cpp, as the
        // probe does with --software-gpu (before the engine starts).
        let adapters = crate::hardware::adapters::probe(&mut Vec::new());
        crate::hardware::engine_gpus::expose_software_devices(&adapters);
    }
    let src = ModelSource::from_file(&rf.settings.model).map_err(Failure::input)?;
    if src.missing_bytes > 0 {
        return Err(Failure::BadInput(format!(
            "{}: the file is incomplete ({} of tensor data missing): it cannot run until the download completes",
            src.label,
            Bytes(src.missing_bytes)
        )));
    }
    // A file planned onto a software Vulkan device is re-planned with it (as the probe
    // lists it with --software-gpu).
    let mut hw = plan.hw.clone();
    hw.software_gpu |= rf.settings.software_gpu;
    // The run file's RPC servers are asked again for their devices (unless --rpc names others).
    if hw.rpc.is_none() && !rf.settings.rpc.is_empty() {
        let list = crate::rpc::endpoint::Endpoint::parse_list(&rf.settings.rpc.join(","))
            .map_err(|e| Failure::BadInput(format!("{}: rpc: {e}", f.display())))?;
        hw.rpc = Some(super::hardware::RpcList(list));
    }
    let machine = hw.snapshot()?;
    let (hardware, unusable) = for_this_binary(&machine, &built_backends());
    for u in &unusable {
        output::warning(&format!(
            "{}: {}; this run plans without it",
            u.gpu, u.reason
        ));
    }
    let input = src.plan_input(&hardware.cpu.simd).map_err(Failure::input)?;
    let s = &rf.settings;
    let kv = s.kv_type().map_err(|e| Failure::input_in(f.display(), e))?;
    let mut req = Requirements {
        min_context: s.context,
        kv_types: vec![kv],
        // The run file's sequences, unless the command line asks for more.
        parallel: plan.parallel.max(s.parallel),
        // `serve --embeddings`, or an embedding model's file (the run file's context stays).
        embeddings: match plan.embeddings {
            super::planning::Embeddings::Off => false,
            super::planning::Embeddings::On => true,
            super::planning::Embeddings::Auto => input.shape.is_embedding_model(),
        },
        ..Requirements::default()
    };
    super::planning::speed_inputs(plan, None, &hardware, &mut req);
    req.threads = req.threads.or(rf.threads);
    let draft = s
        .draft
        .as_ref()
        .map(|d| super::draft::replan(d, &src, &hardware, &mut req))
        .transpose()?;
    let projector = s
        .mmproj
        .as_ref()
        .map(|m| super::projector::replan(m, &src, input.shape.n_embd, &hardware, &mut req))
        .transpose()?;
    let mut plan = if s.gpu_unused {
        plan_gpu_unused(&input, &hardware, &req, kv)
    } else {
        let fixed = Fixed {
            kv_type: kv,
            ngl: s.n_gpu_layers,
            cpu_moe: s.n_cpu_moe,
            cpu_ffn: s.n_cpu_ffn,
            no_repack: s.no_repack,
        };
        plan_fixed(&input, &hardware, &req, fixed)
    };
    if let Some(d) = &draft {
        d.attach(&mut plan);
    }
    plan.projector = projector;
    if plan.verdict == Verdict::Incompatible {
        return Err(Failure::Infeasible(format!(
            "{}: the run file's settings no longer fit this machine ({} tokens, {} cache, -ngl {}): {}",
            f.display(),
            s.context,
            kv,
            s.n_gpu_layers,
            plan.missing.clone().unwrap_or_default()
        )));
    }
    let mut settings = RunSettings::from_plan(&plan, src.path.clone());
    settings.software_gpu = s.software_gpu;
    Ok(Prepared {
        label: rf.catalog_name.clone().unwrap_or(src.label.clone()),
        expected: expected_on_devices(&plan, &src, &settings),
        baselines: DriverBaseline::of_plan(&plan.devices, &hardware.gpus),
        settings,
        verdict: plan.verdict,
        degradations: messages(&plan),
        repacked: plan.ram.repacked_bytes,
        shape: input.shape,
        threads: rf.threads,
        speed: plan.speed.clone(),
        plan,
        purpose: purpose::detect(&src.metadata),
    })
}
