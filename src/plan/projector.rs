//! A vision projector (`--mmproj`) placed beside the model. Pure code.
//!
//! llama.cpp's multimodal library loads the projector on one device: with
//! `--mmproj-offload` (llama-server's default) the first discrete GPU, else the first
//! integrated one, else the CPU (`tools/mtmd/clip.cpp`, `clip_ctx`); with
//! `--no-mmproj-offload` the CPU. Its weights and the compute buffer of its warm-up image (the
//! default image budget) stay allocated for the server's life. llama-server measures them
//! before it fits the model (`mtmd_get_memory_usage`) and adds them to the device's target;
//! layerfit does the same: the projector's bytes are held out of that device's budget
//! (`Requirements::held`) before the model is placed.

use super::{Held, Requirements};
use crate::bytes::Bytes;
use crate::hardware::Gpu;
use crate::model::projector::ProjectorShape;
use serde::Serialize;

/// What the user asked for, with what llama.cpp's loader measured for it.
#[derive(Clone, Debug)]
pub struct ProjectorSpec {
    pub label: String,
    /// The file llama.cpp loads (`--mmproj`), or where a remote one would be kept.
    pub path: std::path::PathBuf,
    /// A projector not on this machine: where it is (llama.cpp's `--mmproj-url`).
    pub url: Option<String>,
    pub shape: ProjectorShape,
    /// `--mmproj-offload` (the default) or `--no-mmproj-offload`.
    pub offload: bool,
    /// The loader's figure per device (ggml's device names), weights and compute together.
    pub measured: Vec<(String, Bytes)>,
    /// Tokens one image becomes at most (the default image budget).
    pub image_max_tokens: Option<u32>,
}

/// The projector as planned.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ProjectorPlan {
    pub file: String,
    pub path: std::path::PathBuf,
    /// Not on this machine: its URL (the emitted command downloads it with `--mmproj-url`;
    /// `run` needs it on disk).
    pub url: Option<String>,
    pub projector_type: String,
    pub vision: bool,
    pub audio: bool,
    /// `--mmproj-offload` asked for (llama-server's default).
    pub offload: bool,
    /// Where llama.cpp puts it: a GPU's name, or `CPU`.
    pub device: String,
    /// The GPU's index in the machine's list; `None` on the CPU.
    pub gpu_index: Option<usize>,
    /// Tensor bytes, from the file's header.
    pub weights_bytes: Bytes,
    /// The compute buffers of the warm-up image, from llama.cpp's loader (measured without
    /// allocating, as llama-server does).
    pub compute_bytes: Bytes,
    pub total_bytes: Bytes,
    /// Of `total_bytes`, what stays in host RAM (all of it on the CPU).
    pub ram_bytes: Bytes,
    /// Tokens one image takes in the model's context, at most.
    pub image_max_tokens: Option<u32>,
    /// How the compute figure was obtained: `engine` (llama.cpp's loader on this device)
    /// or `engine_cpu` (measured on the CPU back-end for a GPU that is not here; llama.cpp
    /// builds the same graph on every back-end that supports flash attention).
    pub basis: String,
}

/// The GPU llama.cpp's multimodal loader picks: the first discrete one, else the first
/// integrated (unified-memory) one.
pub fn loader_gpu(gpus: &[Gpu]) -> Option<usize> {
    gpus.iter()
        .position(|g| !g.unified_memory)
        .or_else(|| (!gpus.is_empty()).then_some(0))
}

/// Places the projector on `gpus` (the GPUs the engine will use; empty for a CPU plan).
pub fn place(spec: &ProjectorSpec, gpus: &[Gpu]) -> ProjectorPlan {
    let gpu = if spec.offload { loader_gpu(gpus) } else { None };
    let measured_total: Bytes = spec.measured.iter().map(|d| d.1).sum();
    let measured_cpu: Bytes = spec
        .measured
        .iter()
        .filter(|d| d.0.eq_ignore_ascii_case("cpu"))
        .map(|d| d.1)
        .sum();
    let on_gpu_here = measured_total.get() > measured_cpu.get();
    let weights = spec.shape.weight_bytes;
    let compute = measured_total.saturating_sub(weights);
    let (ram, basis) = match gpu {
        None => (measured_total, "engine"),
        // Measured on the GPU itself: the loader's CPU entry is its host-side compute.
        Some(_) if on_gpu_here => (measured_cpu, "engine"),
        Some(_) => (Bytes::ZERO, "engine_cpu"),
    };
    ProjectorPlan {
        file: spec.label.clone(),
        path: spec.path.clone(),
        url: spec.url.clone(),
        projector_type: spec.shape.projector_type.clone(),
        vision: spec.shape.vision,
        audio: spec.shape.audio,
        offload: spec.offload,
        device: gpu.map_or_else(|| "CPU".to_string(), |i| gpus[i].name.clone()),
        gpu_index: gpu,
        weights_bytes: weights,
        compute_bytes: compute,
        total_bytes: weights + compute,
        ram_bytes: ram,
        image_max_tokens: spec
            .image_max_tokens
            .filter(|&n| n > 0)
            .or(spec.shape.image_tokens.and_then(|n| u32::try_from(n).ok())),
        basis: basis.to_string(),
    }
}

/// `req` with the projector's memory held: what is on a GPU out of that GPU's budget, the
/// rest out of RAM.
pub fn holding(req: &Requirements, p: &ProjectorPlan) -> Requirements {
    let mut held = req.held.clone();
    held.ram += p.ram_bytes;
    if let Some(i) = p.gpu_index {
        if held.gpus.len() <= i {
            held.gpus.resize(i + 1, Bytes::ZERO);
        }
        held.gpus[i] += p.total_bytes.saturating_sub(p.ram_bytes);
    }
    Requirements {
        held: Held { ..held },
        ..req.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(offload: bool, measured: Vec<(String, Bytes)>) -> ProjectorSpec {
        ProjectorSpec {
            label: "mmproj.gguf".into(),
            path: "mmproj.gguf".into(),
            url: None,
            shape: ProjectorShape {
                projector_type: "gemma3".into(),
                vision: true,
                audio: false,
                image_size: Some(896),
                patch_size: Some(14),
                n_embd: Some(1152),
                n_layer: Some(27),
                projection_dim: Some(2560),
                image_tokens: Some(256),
                weight_bytes: Bytes(800 << 20),
                n_tensors: 439,
            },
            offload,
            measured,
            image_max_tokens: Some(256),
        }
    }

    fn gpu(name: &str, unified: bool) -> Gpu {
        let mut g: Gpu = serde_json::from_value(serde_json::json!({
            "name": name, "vendor": "nvidia",
            "vram_total_bytes": 8u64 << 30, "vram_free_bytes": 8u64 << 30
        }))
        .unwrap();
        g.unified_memory = unified;
        g
    }

    #[test]
    fn cpu_plan_holds_ram() {
        let s = spec(true, vec![("CPU".into(), Bytes(900 << 20))]);
        let p = place(&s, &[]);
        assert_eq!(p.device, "CPU");
        assert_eq!(p.compute_bytes, Bytes(100 << 20));
        let r = holding(&Requirements::default(), &p);
        assert_eq!(r.held.ram, Bytes(900 << 20));
        assert!(r.held.gpus.is_empty());
    }

    #[test]
    fn offloaded_to_the_first_discrete_gpu() {
        let s = spec(true, vec![("CPU".into(), Bytes(900 << 20))]);
        let gpus = [gpu("iGPU", true), gpu("RTX 4090", false)];
        let p = place(&s, &gpus);
        assert_eq!((p.gpu_index, p.basis.as_str()), (Some(1), "engine_cpu"));
        let r = holding(&Requirements::default(), &p);
        assert_eq!(r.held.ram, Bytes::ZERO);
        assert_eq!(r.held.gpus, vec![Bytes::ZERO, Bytes(900 << 20)]);
        // --no-mmproj-offload keeps it on the CPU.
        let p = place(&spec(false, s.measured.clone()), &gpus);
        assert_eq!(p.device, "CPU");
    }

    #[test]
    fn measured_on_a_gpu_splits_host_compute() {
        let s = spec(
            true,
            vec![
                ("CUDA0".into(), Bytes(880 << 20)),
                ("CPU".into(), Bytes(3 << 20)),
            ],
        );
        let p = place(&s, &[gpu("RTX 4090", false)]);
        assert_eq!(p.ram_bytes, Bytes(3 << 20));
        assert_eq!(p.total_bytes, Bytes(883 << 20));
        let r = holding(&Requirements::default(), &p);
        assert_eq!(r.held.gpus, vec![Bytes(880 << 20)]);
    }
}
