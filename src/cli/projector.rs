//! `--mmproj FILE|auto`: the vision projector, found, read and measured by llama.cpp's own
//! multimodal loader (without allocating), then handed to the planner (`plan::projector`),
//! and its lines in the human report.

use super::Failure;
use crate::bytes::Bytes;
use crate::hardware::Snapshot;
use crate::model::projector::{check_pair, projector_shape, ProjectorShape};
use crate::model_source::ModelSource;
use crate::plan::projector::{place, ProjectorPlan, ProjectorSpec};
use std::path::{Path, PathBuf};

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

/// The projector file `name` stands for, beside the model at `model_path` for `auto`.
pub fn find(name: &str, model_path: &Path, label: &str) -> Result<PathBuf, Failure> {
    if name != "auto" {
        return Ok(PathBuf::from(name));
    }
    let dir = model_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .map(str::to_ascii_lowercase)
                .is_some_and(|n| n.contains("mmproj") && n.ends_with(".gguf"))
        })
        .collect();
    found.sort();
    let model_bits = bits(model_path);
    // llama.cpp's choice among siblings (common/download.cpp, find_best_sibling): the
    // quantization closest to the model's; then the first by name.
    found
        .into_iter()
        .min_by_key(|p| (bits(p) - model_bits).abs())
        .ok_or_else(|| {
            Failure::BadInput(format!(
                "--mmproj auto: no mmproj*.gguf file next to {} (in {}); name the projector with --mmproj FILE",
                label,
                dir.display()
            ))
        })
}

/// The bits a file name's quantization says (`Q4_K_M` 4, `F16` 16), 0 when none.
fn bits(p: &Path) -> i64 {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    crate::fetch::variants::quant_of(name)
        .and_then(|q| {
            q.trim_start_matches(|c: char| !c.is_ascii_digit())
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
        })
        .unwrap_or(0)
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
pub fn spec(a: &ProjectorArgs, model: &ModelSource) -> Result<Option<ProjectorSpec>, Failure> {
    let Some(name) = &a.mmproj else {
        return Ok(None);
    };
    let path = find(name, &model.path, &model.label)?;
    let shape = read(&path)?;
    let offload = !a.no_mmproj_offload;
    let m = crate::engine::projector::measure(&path, offload, 4)
        .map_err(|e| Failure::BadInput(format!("--mmproj {}", e.0)))?;
    Ok(Some(ProjectorSpec {
        label: path.display().to_string(),
        path,
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
    let args = ProjectorArgs {
        mmproj: Some(s.path.display().to_string()),
        no_mmproj_offload: !s.offload,
    };
    let spec = spec(&args, model)?
        .ok_or_else(|| Failure::BadInput("the run file's mmproj names no file".into()))?;
    check(&spec, model, n_embd)?;
    let p = plan(&spec, hardware);
    *req = crate::plan::projector::holding(req, &p);
    Ok(p)
}

/// `inspect --mmproj`: the projector beside the model at `model_path`, measured on the CPU.
pub fn inspect(
    a: &ProjectorArgs,
    model_path: &Path,
    label: &str,
    n_embd: u64,
) -> Result<Option<crate::inspect::ProjectorInfo>, Failure> {
    let Some(name) = &a.mmproj else {
        return Ok(None);
    };
    let path = find(name, model_path, label)?;
    let shape = read(&path)?;
    check_pair(&shape, label, n_embd)
        .map_err(|e| Failure::BadInput(format!("--mmproj {}: {e}", path.display())))?;
    let m = crate::engine::projector::measure(&path, false, 4)
        .map_err(|e| Failure::BadInput(format!("--mmproj {}", e.0)))?;
    let total = m.total();
    Ok(Some(crate::inspect::ProjectorInfo {
        path: path.display().to_string(),
        compute_bytes: total.saturating_sub(shape.weight_bytes),
        total_bytes: total.max(shape.weight_bytes),
        image_max_tokens: m
            .image_max_tokens
            .filter(|&n| n > 0)
            .or(shape.image_tokens.and_then(|n| u32::try_from(n).ok())),
        shape,
    }))
}
