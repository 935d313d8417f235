//! `--mmproj FILE|auto`: the vision projector, found, read and measured by llama.cpp's own
//! multimodal loader (without allocating), then handed to the planner (`plan::projector`),
//! and its lines in the human report.

use super::projector_source::{locate, measure, Located, ModelRef};
use super::Failure;
use crate::bytes::Bytes;
use crate::hardware::Snapshot;
use crate::model::projector::{check_pair, projector_shape, ProjectorShape};
use crate::model_source::ModelSource;
use crate::plan::projector::{place, ProjectorPlan, ProjectorSpec};
use std::path::Path;

/// The flags, shared by inspect, plan, check-requirements, run and serve.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ProjectorArgs {
    /// A vision projector (mmproj) for image input, planned beside the model: a GGUF file,
    /// or `auto` for the mmproj file next to the model (llama.cpp's --mmproj).
    #[arg(long, value_name = "FILE|auto")]
    pub mmproj: Option<String>,
    /// Keep the projector on the CPU (llama.cpp's --no-mmproj-offload); by default it goes
    /// on the first GPU, as llama.cpp puts it.
    #[arg(long, requires = "mmproj")]
    pub no_mmproj_offload: bool,
}

/// Reads the projector's header (one clear error for a file that is not one).
pub fn read(path: &Path) -> Result<ProjectorShape, Failure> {
    let h =
        crate::gguf::read_header(path).map_err(|e| Failure::BadInput(format!("--mmproj: {e}")))?;
    if h.missing_bytes() > 0 {
        return Err(Failure::BadInput(format!(
            "--mmproj {}: the file is incomplete ({} of tensor data missing)",
            path.display(),
            Bytes(h.missing_bytes())
        )));
    }
    projector_shape(&h.metadata, &h.tensors)
        .map_err(|e| Failure::BadInput(format!("--mmproj {}: {e}", path.display())))
}

/// The projector `--mmproj` names for `model`, measured by llama.cpp's loader; `None`
/// without the flag.
pub fn spec(
    a: &ProjectorArgs,
    model: &ModelSource,
    models_dir: &Path,
) -> Result<Option<ProjectorSpec>, Failure> {
    let Some(name) = &a.mmproj else {
        return Ok(None);
    };
    let at = locate(name, &ModelRef::from(model), models_dir)?;
    let offload = !a.no_mmproj_offload;
    let (shape, m) = measure(&at, offload)?;
    let (path, url) = match at {
        Located::Local(p) => (p, None),
        Located::Remote { url, dest } => (dest, Some(url)),
    };
    Ok(Some(ProjectorSpec {
        label: url.clone().unwrap_or_else(|| path.display().to_string()),
        path,
        url,
        shape,
        offload,
        measured: m.devices,
        image_max_tokens: m.image_max_tokens,
    }))
}

/// Refuses a projector whose embeddings the model cannot read (llama.cpp refuses the pair).
pub fn check(p: &ProjectorSpec, model: &ModelSource, n_embd: u64) -> Result<(), Failure> {
    check_pair(&p.shape, &model.label, n_embd)
        .map_err(|e| Failure::BadInput(format!("--mmproj {}: {e}", p.path.display())))
}

/// The projector placed on the GPUs of `hardware` the plan uses.
pub fn plan(p: &ProjectorSpec, hardware: &Snapshot) -> ProjectorPlan {
    place(p, &hardware.gpus)
}

/// The report's lines for the projector.
pub fn report_lines(p: &ProjectorPlan) -> Vec<String> {
    let mut v = vec![format!(
        "projector: {} ({}{}) on {}: {} weights + {} compute = {}",
        p.file,
        p.projector_type,
        if p.audio && p.vision {
            ", vision and audio"
        } else if p.audio {
            ", audio"
        } else {
            ", vision"
        },
        p.device,
        p.weights_bytes,
        p.compute_bytes,
        p.total_bytes
    )];
    if let Some(n) = p.image_max_tokens {
        v.push(format!(
            "  an image takes up to {n} tokens of the context; the projector's memory is out of {}'s budget",
            p.device
        ));
    }
    if p.basis == "engine_cpu" {
        v.push(
            "  its compute buffer was measured on this machine's CPU back-end (the GPU is described, not here)"
                .into(),
        );
    }
    v
}

/// A run file's projector, measured again on this machine and held out of `req`.
pub fn replan(
    s: &crate::emit::ProjectorSettings,
    model: &ModelSource,
    n_embd: u64,
    hardware: &Snapshot,
    req: &mut crate::plan::Requirements,
) -> Result<ProjectorPlan, Failure> {
    let name = match &s.url {
        Some(u) if !s.path.is_file() => u.clone(),
        _ => s.path.display().to_string(),
    };
    let args = ProjectorArgs {
        mmproj: Some(name),
        no_mmproj_offload: !s.offload,
    };
    let spec = spec(&args, model, &crate::model_source::default_models_dir())?
        .ok_or_else(|| Failure::BadInput("the run file's mmproj names no file".into()))?;
    check(&spec, model, n_embd)?;
    let p = plan(&spec, hardware);
    *req = crate::plan::projector::holding(req, &p);
    Ok(p)
}

/// `inspect --mmproj`: the projector beside the model, measured on the CPU.
pub fn inspect(
    a: &ProjectorArgs,
    model: &ModelRef,
    n_embd: u64,
) -> Result<Option<crate::inspect::ProjectorInfo>, Failure> {
    let Some(name) = &a.mmproj else {
        return Ok(None);
    };
    let at = locate(name, model, &crate::model_source::default_models_dir())?;
    let (shape, m) = measure(&at, false)?;
    let path = match &at {
        Located::Local(p) => p.display().to_string(),
        Located::Remote { url, .. } => url.clone(),
    };
    check_pair(&shape, model.label, n_embd)
        .map_err(|e| Failure::BadInput(format!("--mmproj {path}: {e}")))?;
    let total = m.total();
    Ok(Some(crate::inspect::ProjectorInfo {
        path,
        compute_bytes: total.saturating_sub(shape.weight_bytes),
        total_bytes: total.max(shape.weight_bytes),
        image_max_tokens: m
            .image_max_tokens
            .filter(|&n| n > 0)
            .or(shape.image_tokens.and_then(|n| u32::try_from(n).ok())),
        shape,
    }))
}
