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
use crate::plan::choose::Ranked;
use crate::plan::{Plan, Verdict};
use crate::rpc::endpoint::Endpoint;

/// Re-plans after a dry run that did not fit, each time with the device's estimate
/// corrected by what llama.cpp reserved beyond it.
const MAX_REPLANS: usize = 4;

/// Ranks the options with `choose`, then checks the recommendation with llama.cpp's dry run
/// on the servers; when a device would be over its budget, plans again with that device's
/// memory lowered by the excess (the estimate's error), until the recommendation fits. The
/// plans keep the servers' real budgets.
pub fn choose_checked(
    machine: &Snapshot,
    choose: impl Fn(&Snapshot) -> Vec<Ranked>,
    model_of: impl Fn(usize) -> (std::path::PathBuf, u64),
) -> Vec<Ranked> {
    let mut assumed = machine.clone();
    let mut ranked = choose(&assumed);
    for _ in 0..MAX_REPLANS {
        let (path, n_vocab) = model_of(ranked[0].model);
        let over = match measure_on_servers(&mut ranked[0].plan, machine, &path, n_vocab) {
            Some(false) => ranked[0]
                .plan
                .devices
                .iter()
                .enumerate()
                .filter(|(i, d)| {
                    d.is_gpu && *i < assumed.gpus.len() && d.total_bytes > d.budget_bytes
                })
                .map(|(i, d)| (i, d.total_bytes.saturating_sub(d.budget_bytes)))
                .max_by_key(|x| x.1),
            _ => None,
        };
        let Some((i, excess)) = over else { break };
        let g = &mut assumed.gpus[i];
        g.vram_free_bytes = g.vram_free_bytes.saturating_sub(excess + Bytes(1 << 20));
        ranked = choose(&assumed);
    }
    // The budgets are the servers' offers, not the corrected assumption.
    for r in ranked.iter_mut() {
        for (i, d) in r.plan.devices.iter_mut().enumerate() {
            if let (Some(a), Some(m)) = (assumed.gpus.get(i), machine.gpus.get(i)) {
                if d.is_gpu {
                    d.budget_bytes += m.vram_free_bytes.saturating_sub(a.vram_free_bytes);
                }
            }
        }
    }
    ranked
}

/// Replaces the plan's per-device compute with llama.cpp's dry run when the plan uses
/// connected RPC servers and the model is a local file: `Some(fits)` when measured.
pub fn measure_on_servers(
    plan: &mut Plan,
    machine: &Snapshot,
    model: &std::path::Path,
    n_vocab: u64,
) -> Option<bool> {
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
    let cache = crate::memory::CacheConfig {
        n_seq_max: plan.parallel.max(1),
        outputs_per_seq: 1 + plan.draft.as_ref().map_or(0, |d| d.draft_max),
        ..crate::memory::CacheConfig::default()
    };
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
        // As the engine sets them: every sequence's outputs, a draft's proposals included.
        n_outputs_max: cache.n_outputs_max(),
        n_outputs_max_per_seq: cache.n_outputs_max_per_seq(),
        embeddings: cache.embeddings,
        pooling_type: -1,
        rpc,
        tensor_split: plan.tensor_split.iter().map(|&f| f as f32).collect(),
    };
    // A failed dry run (llama.cpp refused the configuration) leaves the estimate.
    let m = measure(model, &req).ok()?;
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
        if !d.is_gpu {
            // The host's compute buffers are anonymous memory: the RAM figures follow.
            let ram = &mut plan.ram;
            ram.anonymous_bytes = ram.anonymous_bytes.saturating_sub(d.compute_bytes) + measured;
            ram.total_bytes = ram.page_cache_bytes + ram.anonymous_bytes;
        }
        d.total_bytes = d.total_bytes.saturating_sub(d.compute_bytes) + measured;
        d.compute_bytes = measured;
    }
    let ram_over = (plan.ram.total_bytes > plan.ram.budget_bytes).then(|| {
        format!(
            "RAM needs {} with the compute buffers llama.cpp reserves for this plan, and {} is usable",
            plan.ram.total_bytes, plan.ram.budget_bytes
        )
    });
    if let Some(why) = ram_over {
        plan.verdict = Verdict::Incompatible;
        plan.missing = Some(why);
        return Some(false);
    }
    if let Some(over) = plan.devices.iter().find(|d| d.total_bytes > d.budget_bytes) {
        plan.verdict = Verdict::Incompatible;
        plan.missing = Some(format!(
            "{} needs {} with the compute buffers llama.cpp reserves for this plan, and offers {}",
            over.device, over.total_bytes, over.budget_bytes
        ));
        return Some(false);
    }
    Some(true)
}
