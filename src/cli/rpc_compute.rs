//! Compute buffers of a plan over connected RPC servers, from llama.cpp's own dry run.
//! With several devices and every layer offloaded, llama.cpp turns on pipeline parallelism:
//! its scheduler keeps four copies of every graph input and of every activation crossing a
//! device boundary (`GGML_SCHED_MAX_COPIES`), which the single-machine compute model does not
//! describe. So when the servers are there, the chosen plan's compute figures are what
//! llama.cpp reserves for exactly that plan (no memory is allocated, on any host), and the
//! plan says so (docs/rpc.md). Weights and KV cache stay the memory model's (exact).

use crate::bytes::Bytes;
use crate::engine::measure::{measure, MeasureRequest};
use crate::hardware::Snapshot;
use crate::plan::{Plan, Verdict};
use crate::rpc::endpoint::Endpoint;

/// Replaces the plan's per-device compute with llama.cpp's dry run when the plan uses
/// connected RPC servers and the model is a local file. Returns a note for the report.
pub fn measure_on_servers(
    plan: &mut Plan,
    machine: &Snapshot,
    model: &std::path::Path,
    n_vocab: u64,
) -> Option<String> {
    let connected = machine
        .gpus
        .iter()
        .any(|g| g.remote.is_some() && g.engine_device.is_some());
    let overrides = plan.n_cpu_moe > 0 || plan.n_cpu_ffn > 0;
    if plan.rpc.is_empty() || !connected || overrides || !model.is_file() {
        return None;
    }
    let rpc: Vec<Endpoint> = plan
        .rpc
        .iter()
        .filter_map(|e| Endpoint::parse(e).ok())
        .collect();
    let req = MeasureRequest {
        n_ctx: plan.context as u32,
        n_ubatch: 512,
        n_batch: 2048,
        type_k: plan.kv_type,
        type_v: plan.kv_type,
        flash_attn: Some(plan.flash_attn),
        swa_full: false,
        n_gpu_layers: plan.n_gpu_layers as i32,
        dry_run: true,
        n_seq_max: plan.parallel.max(1),
        rpc,
        tensor_split: plan.tensor_split.iter().map(|&f| f as f32).collect(),
    };
    let m = match measure(model, &req) {
        Ok(m) => m,
        Err(e) => {
            return Some(format!(
                "compute buffers estimated: llama.cpp's dry run on the servers failed ({e})"
            ))
        }
    };
    let (host, remote): (Vec<_>, Vec<_>) = m.buffers.iter().partition(|b| b.is_host());
    let mut gpu_i = 0;
    for d in plan.devices.iter_mut() {
        let measured = if d.is_gpu {
            let b = remote.get(gpu_i)?;
            gpu_i += 1;
            b.compute
        } else {
            host.iter().map(|b| b.compute).sum::<Bytes>() + Bytes(n_vocab.saturating_mul(4))
        };
        d.total_bytes = d.total_bytes.saturating_sub(d.compute_bytes) + measured;
        d.compute_bytes = measured;
    }
    if let Some(over) = plan.devices.iter().find(|d| d.total_bytes > d.budget_bytes) {
        plan.verdict = Verdict::Incompatible;
        plan.missing = Some(format!(
            "{} needs {} with the compute buffers llama.cpp reserves for this plan, and offers {}",
            over.device, over.total_bytes, over.budget_bytes
        ));
    }
    Some("compute buffers: llama.cpp's dry run of this plan on the RPC servers (pipeline parallelism)".into())
}
