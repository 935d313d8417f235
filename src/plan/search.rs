//! The candidate search: for each allowed cache type (best first), the largest `-ngl` whose
//! memory fits every device; the first type that fits at all wins (quality before speed).

use super::{
    Budgets, Degradation, DeviceUse, Plan, RamUse, Requirements, Severity, Speed, Verdict,
};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::gguf::TensorInfo;
use crate::hardware::Snapshot;
use crate::memory::weights::block_of;
use crate::memory::{compute_buffers, kv_cache, CacheConfig, ComputeEstimate, KvEstimate, Weights};
use crate::model::Shape;

/// Weight types llama.cpp repacks into anonymous `CPU_REPACK` buffers on x86 with AVX2
/// (`ggml/src/ggml-cpu/repack.cpp`); measured on Gemma 3 270M: exactly its q4_K tensors.
const REPACKED: &[GgmlType] = &[GgmlType::Q4_0, GgmlType::Q4K, GgmlType::Iq4Nl];

/// Everything the planner needs about a model, as plain data.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub shape: Shape,
    pub weights: Weights,
    /// No `output.weight`: the output reuses the embeddings (a copy on an offloaded output).
    pub tied_output: bool,
    /// Bytes per block that the CPU backend repacks (anonymous memory when on the CPU).
    pub repacked_per_block: Vec<Bytes>,
    pub repacked_output: Bytes,
    pub cpu_repacks: bool,
    /// The largest tensor of each block: under offload llama.cpp copies host-resident weights
    /// into the GPU's compute buffer one at a time, so the largest sets that buffer's share.
    pub largest_tensor_per_block: Vec<Bytes>,
    /// `output.weight` alone (zero when tied): the output layer's other tensors (its norm)
    /// follow `-ngl` even when the projection is too large for the device.
    pub output_projection: Bytes,
}

impl PlanInput {
    pub fn new<'a>(
        shape: Shape,
        weights: Weights,
        tensors: impl IntoIterator<Item = &'a TensorInfo>,
        cpu_simd: &[String],
    ) -> PlanInput {
        let n = shape.block_count as usize;
        let mut repacked_per_block = vec![Bytes::ZERO; n];
        let mut repacked_output = Bytes::ZERO;
        let mut tied_output = true;
        let mut largest_tensor_per_block = vec![Bytes::ZERO; n];
        let mut output_projection = Bytes::ZERO;
        for t in tensors {
            if let Some(b) = block_of(&t.name).filter(|&b| b < n) {
                largest_tensor_per_block[b] = largest_tensor_per_block[b].max(t.n_bytes());
            }
            if t.name == "output.weight" {
                tied_output = false;
                output_projection = t.n_bytes();
            }
            if t.dims.len() < 2
                || !REPACKED.contains(&t.ggml_type)
                || t.name.starts_with("token_embd")
            {
                continue;
            }
            match block_of(&t.name).filter(|&b| b < n) {
                Some(b) => repacked_per_block[b] += t.n_bytes(),
                None if t.name.starts_with("output") => repacked_output += t.n_bytes(),
                None => {}
            }
        }
        let cpu_repacks = cpu_simd.iter().any(|s| s == "avx2");
        PlanInput {
            shape,
            weights,
            tied_output,
            repacked_per_block,
            repacked_output,
            cpu_repacks,
            largest_tensor_per_block,
            output_projection,
        }
    }
}

/// Memory of one configuration, per device.
struct Layout {
    gpu: Vec<DeviceUse>,
    cpu: DeviceUse,
    ram: RamUse,
    gpu_blocks: u32,
    output_on_gpu: bool,
    split: Vec<f64>,
    cpu_moe: u32,
    /// Why llama.cpp would refuse this layout outright (a block's cache tensor larger than
    /// its device can address: it aborts at context creation).
    impossible: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn layout(
    inp: &PlanInput,
    kv: &KvEstimate,
    comp: &ComputeEstimate,
    cfg: &CacheConfig,
    ngl: u32,
    cpu_moe: u32,
    budgets: &Budgets,
    snap: &Snapshot,
    gpus_used: bool,
) -> Layout {
    let n = inp.shape.block_count as usize;
    // Every GPU of the plan is in llama.cpp's device list, so even at -ngl 0 it gets a compute
    // buffer (op offload, below), unless the plan hides them from llama.cpp (`-dev none`).
    let n_gpus = if gpus_used { budgets.gpus.len() } else { 0 };
    let start = (n + 1).saturating_sub(ngl as usize);
    let act = (ngl as usize).min(n + 1);
    // llama.cpp splits layers by free memory: cumulative fractions, upper_bound lookup.
    let free: Vec<f64> = snap
        .gpus
        .iter()
        .map(|g| g.vram_free_bytes.get().max(1) as f64)
        .collect();
    let sum: f64 = free.iter().sum();
    let mut cum = Vec::new();
    let mut acc = 0.0;
    for f in &free {
        acc += f / sum;
        cum.push(acc);
    }
    let device_of = |il: usize| -> Option<usize> {
        if n_gpus == 0 || il < start || il - start >= act {
            return None;
        }
        let x = (il - start) as f64 / act as f64;
        Some(cum.iter().position(|&c| c > x).unwrap_or(n_gpus - 1))
    };
    let limit = |d: usize| {
        snap.gpus
            .get(d)
            .and_then(|g| g.max_tensor_bytes)
            .unwrap_or(Bytes(u64::MAX))
    };
    let w = &inp.weights;
    // The output projection's weight: its own tensor, or (tied) a copy of the embeddings.
    let output_weight = if inp.tied_output {
        w.token_embd
    } else {
        inp.output_projection
    };
    // A device takes the output only if the weight and the logits it produces fit its
    // largest tensor (llama.cpp's `select_weight_buft` tries the op at 512 tokens).
    let output_fits = |d: usize| output_weight <= limit(d) && comp.logits <= limit(d);
    let mut gw = vec![Bytes::ZERO; n_gpus];
    let mut gk = vec![Bytes::ZERO; n_gpus];
    let mut layers_on = vec![0usize; n_gpus];
    let (mut cw, mut ck, mut c_repacked) = (w.token_embd, Bytes::ZERO, Bytes::ZERO);
    // Host-resident blocks: their largest tensor and KV (copied to the GPU under op offload
    // when the GPU can address them).
    let (mut host_largest, mut host_kv_max) = (Bytes::ZERO, Bytes::ZERO);
    let mut host_kv_tensor = Bytes::ZERO;
    let kv_tensor = |il: usize| {
        let l = &kv.per_layer[il];
        l.k.max(l.v).max(l.state)
    };
    let mut impossible = None;
    let addressable0 = |b: Bytes| if b <= limit(0) { b } else { Bytes::ZERO };
    for il in 0..n {
        let lkv = kv.per_layer[il].total();
        match device_of(il) {
            Some(d) if (il as u32) < cpu_moe => {
                // `--n-cpu-moe`: this block's expert tensors stay in host memory.
                let experts = w.experts_per_block[il];
                gw[d] += w.per_block[il].saturating_sub(experts);
                cw += experts;
                gk[d] += lkv;
                layers_on[d] += 1;
                host_largest = host_largest.max(addressable0(inp.largest_tensor_per_block[il]));
            }
            Some(d) => {
                gw[d] += w.per_block[il];
                gk[d] += lkv;
                layers_on[d] += 1;
            }
            None => {
                cw += w.per_block[il];
                ck += lkv;
                c_repacked += inp.repacked_per_block[il];
                host_largest = host_largest.max(addressable0(inp.largest_tensor_per_block[il]));
                host_kv_max = host_kv_max.max(lkv);
                host_kv_tensor = host_kv_tensor.max(kv_tensor(il));
            }
        }
        if let Some(d) = device_of(il) {
            if kv_tensor(il) > limit(d) && impossible.is_none() {
                impossible = Some(format!(
                    "block {il}'s cache tensor ({}) is larger than {} can address ({}): llama.cpp aborts; keep the blocks on the CPU (-ngl 1 or 0) or use a smaller context or cache type",
                    kv_tensor(il),
                    budgets.gpus[d].0,
                    limit(d)
                ));
            }
        }
    }
    let out_dev = device_of(n).filter(|&d| output_fits(d));
    // The output layer without its projection (the norm) follows -ngl in any case.
    let output_rest = w.output.saturating_sub(inp.output_projection);
    match (device_of(n), out_dev) {
        (Some(d), Some(_)) => gw[d] += output_rest + output_weight,
        (Some(d), None) => {
            gw[d] += output_rest;
            cw += inp.output_projection;
        }
        (None, _) => {
            cw += w.output;
            c_repacked += inp.repacked_output;
        }
    }
    let gpu_blocks: usize = layers_on.iter().sum();
    let host_blocks = n - gpu_blocks;
    // Compute buffers with GPUs (docs/memory-model.md, measured on llama.cpp's Vulkan
    // backend): the graph inputs (masks) are made on the host; with op offload (n_ubatch >= 32)
    // every matrix multiplication and attention of a host-resident layer runs on the first GPU,
    // which receives copies of the weight and the layer's K/V views and keeps its own copy
    // of the masks; the logits are computed on the output's GPU, or on the first GPU from a
    // copy of a host-resident output weight, unless a tensor is too large for the device.
    let rows = Bytes(inp.shape.n_embd * comp.n_tokens * 4);
    let attn_width = inp
        .shape
        .layers
        .iter()
        .map(|l| l.n_head as u64 * l.head_dim_k as u64)
        .max()
        .unwrap_or(0)
        .max(inp.shape.n_embd);
    let attn_rows = Bytes(attn_width * comp.n_tokens * 4);
    let scores_if_no_fa = if cfg.flash_attn {
        Bytes::ZERO
    } else {
        comp.attention_scores
    };
    let offload_ops = n_gpus > 0 && comp.n_tokens >= 32;
    // Host layers' attention moves to the first GPU only if it can address their K/V views
    // and the masks; otherwise it runs on the host, and the GPU needs no copy of the masks
    // unless it holds blocks of its own.
    let attention_offloaded =
        offload_ops && host_blocks > 0 && host_kv_tensor <= limit(0) && comp.masks <= limit(0);
    // Where the logits are computed, and whether the weight is copied there for it.
    let (logits_dev, output_copied) = match out_dev {
        Some(d) => (Some(d), false),
        None if offload_ops && output_fits(0) => (Some(0), true),
        None => (None, false),
    };
    let mut gc = vec![Bytes::ZERO; n_gpus];
    for (d, c) in gc.iter_mut().enumerate() {
        let mut peak = Bytes::ZERO;
        if layers_on[d] > 0 {
            peak = peak.max(comp.feed_forward + comp.masks + rows.times(4) + scores_if_no_fa);
        }
        if logits_dev == Some(d) {
            let mut p = comp.logits + rows.times(4);
            if gpu_blocks == n {
                p += comp.masks;
            }
            if output_copied {
                p += output_weight;
            }
            peak = peak.max(p);
        }
        if d == 0 && offload_ops && (host_blocks > 0 || cpu_moe > 0) {
            let masks = if attention_offloaded || layers_on[d] > 0 {
                comp.masks
            } else {
                Bytes::ZERO
            };
            if attention_offloaded {
                peak = peak.max(comp.masks + host_kv_max + attn_rows.times(4));
            }
            peak = peak.max(comp.feed_forward + masks + rows.times(4) + host_largest);
        }
        *c = peak;
    }
    let cpu_compute = if n_gpus == 0 {
        comp.bytes
    } else {
        let mut base = comp.masks + rows.times(4);
        if host_blocks > 0 && !attention_offloaded {
            base += attn_rows.times(2);
        }
        if logits_dev.is_none() {
            base.max(comp.logits + rows.times(2))
        } else {
            base
        }
    };
    let mut gpu = Vec::new();
    let mut unified_on_ram = Bytes::ZERO;
    for d in 0..n_gpus {
        let total = gw[d] + gk[d] + gc[d];
        if budgets.gpus[d].2 {
            unified_on_ram += total;
        }
        gpu.push(DeviceUse {
            device: budgets.gpus[d].0.clone(),
            is_gpu: true,
            weights_bytes: gw[d],
            kv_bytes: gk[d],
            compute_bytes: gc[d],
            total_bytes: total,
            budget_bytes: budgets.gpus[d].1,
        });
    }
    let output_buffer = comp.output_buffer;
    let cpu_total = cw + ck + cpu_compute + output_buffer;
    // With a GPU in llama.cpp's device list, host weights go to its host buffer type (or the
    // plain CPU buffer under mmap), never to CPU_REPACK (`make_cpu_buft_list`).
    let repacked = if inp.cpu_repacks && n_gpus == 0 {
        c_repacked
    } else {
        Bytes::ZERO
    };
    let page_cache = cw.saturating_sub(repacked);
    let anonymous = repacked + ck + cpu_compute + output_buffer + unified_on_ram;
    let split = if n_gpus > 1 && gpu_blocks > 0 {
        layers_on
            .iter()
            .map(|&l| l as f64 / gpu_blocks as f64)
            .collect()
    } else {
        Vec::new()
    };
    Layout {
        gpu,
        cpu: DeviceUse {
            device: "CPU".into(),
            is_gpu: false,
            weights_bytes: cw,
            kv_bytes: ck,
            compute_bytes: cpu_compute + output_buffer,
            total_bytes: cpu_total,
            budget_bytes: budgets.ram,
        },
        ram: RamUse {
            page_cache_bytes: page_cache,
            repacked_bytes: repacked,
            anonymous_bytes: anonymous,
            total_bytes: page_cache + anonymous,
            budget_bytes: budgets.ram,
        },
        gpu_blocks: gpu_blocks as u32,
        output_on_gpu: out_dev.is_some(),
        split,
        cpu_moe: if n_gpus == 0 || ngl == 0 { 0 } else { cpu_moe },
        impossible,
    }
}

fn fits(l: &Layout) -> bool {
    l.impossible.is_none()
        && l.gpu.iter().all(|g| g.total_bytes <= g.budget_bytes)
        && l.ram.total_bytes <= l.ram.budget_bytes
}

/// The cache settings every plan uses: the required context, one type for K and V, flash
/// attention on.
pub fn cache_config(req: &Requirements, t: GgmlType) -> CacheConfig {
    CacheConfig {
        n_ctx: req.min_context,
        type_k: t,
        type_v: t,
        flash_attn: true,
        n_ubatch: req.n_ubatch,
        ..CacheConfig::default()
    }
}

/// Plans `inp` on `snap` under `req`.
pub fn plan(inp: &PlanInput, snap: &Snapshot, req: &Requirements) -> Plan {
    let budgets = Budgets::from_snapshot(snap, req);
    let n = inp.shape.block_count;
    let max_ngl = if snap.gpus.is_empty() { 0 } else { n + 1 };
    let mut last: Option<(GgmlType, Layout, CacheConfig, KvEstimate)> = None;
    for &t in &req.kv_types {
        let cfg = cache_config(req, t);
        let Ok(kv) = kv_cache(&inp.shape, &cfg) else {
            continue;
        };
        let comp = compute_buffers(&inp.shape, &kv, &cfg);
        let full = layout(inp, &kv, &comp, &cfg, max_ngl, 0, &budgets, snap, true);
        if fits(&full) {
            return finish(inp, snap, req, t, max_ngl, full, &cfg, &kv, None, false);
        }
        // MoE: keep every block's attention and dense part on the GPU and move the experts
        // of the first blocks to the CPU, rather than dropping whole blocks.
        if req.allow_cpu_moe && max_ngl > 0 && inp.shape.n_expert > 1 {
            for k in 1..=n {
                let l = layout(inp, &kv, &comp, &cfg, max_ngl, k, &budgets, snap, true);
                if fits(&l) {
                    return finish(inp, snap, req, t, max_ngl, l, &cfg, &kv, None, false);
                }
            }
        }
        for ngl in (0..max_ngl).rev() {
            let l = layout(inp, &kv, &comp, &cfg, ngl, 0, &budgets, snap, true);
            if fits(&l) {
                return finish(inp, snap, req, t, ngl, l, &cfg, &kv, None, false);
            }
        }
        // A GPU too small for even the -ngl 0 offload buffers: hide it from llama.cpp.
        if max_ngl > 0 {
            let l = layout(inp, &kv, &comp, &cfg, 0, 0, &budgets, snap, false);
            if fits(&l) {
                return finish(inp, snap, req, t, 0, l, &cfg, &kv, None, true);
            }
        }
        let l = full;
        last = Some((t, l, cfg, kv));
    }
    // Nothing fits: report the smallest cache type's needs.
    let (t, l, cfg, kv) = last.expect("at least one cache type is usable");
    let missing = describe_shortfall(inp, snap, &budgets, &cfg, &kv);
    let ngl = if snap.gpus.is_empty() { 0 } else { n + 1 };
    finish(inp, snap, req, t, ngl, l, &cfg, &kv, Some(missing), false)
}

/// The plan at a fixed cache type and `-ngl` (a user's override), fitting or not; a plan that
/// does not fit is `incompatible` with what it lacks.
pub fn plan_at(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    kv_type: GgmlType,
    ngl: u32,
    cpu_moe: u32,
) -> Plan {
    let budgets = Budgets::from_snapshot(snap, req);
    let ngl = if snap.gpus.is_empty() {
        0
    } else {
        ngl.min(inp.shape.block_count + 1)
    };
    let cfg = cache_config(req, kv_type);
    let kv = match kv_cache(&inp.shape, &cfg) {
        Ok(kv) => kv,
        Err(_) => {
            return plan(
                inp,
                snap,
                &Requirements {
                    kv_types: vec![GgmlType::F16],
                    ..req.clone()
                },
            )
        }
    };
    let comp = compute_buffers(&inp.shape, &kv, &cfg);
    let l = layout(inp, &kv, &comp, &cfg, ngl, cpu_moe, &budgets, snap, true);
    let missing = (!fits(&l)).then(|| {
        let over: Vec<String> = l
            .gpu
            .iter()
            .chain(std::iter::once(&l.cpu))
            .filter(|d| d.total_bytes > d.budget_bytes && d.is_gpu)
            .map(|d| {
                format!(
                    "{} needs {} more",
                    d.device,
                    d.total_bytes.saturating_sub(d.budget_bytes)
                )
            })
            .chain((l.ram.total_bytes > l.ram.budget_bytes).then(|| {
                format!(
                    "RAM needs {} more",
                    l.ram.total_bytes.saturating_sub(l.ram.budget_bytes)
                )
            }))
            .collect();
        match &l.impossible {
            Some(why) => format!("-ngl {ngl} with a {kv_type} cache cannot run: {why}"),
            None => format!(
                "-ngl {ngl} (--n-cpu-moe {cpu_moe}) with a {kv_type} cache does not fit: {}",
                over.join(", ")
            ),
        }
    });
    finish(inp, snap, req, kv_type, ngl, l, &cfg, &kv, missing, false)
}

/// The plan at a fixed cache type with every GPU hidden from llama.cpp (`-dev none`): the
/// whole model on the CPU, nothing allocated on a GPU.
pub fn plan_gpu_unused(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    kv_type: GgmlType,
) -> Plan {
    let budgets = Budgets::from_snapshot(snap, req);
    let cfg = cache_config(req, kv_type);
    let Ok(kv) = kv_cache(&inp.shape, &cfg) else {
        return plan_at(inp, snap, req, kv_type, 0, 0);
    };
    let comp = compute_buffers(&inp.shape, &kv, &cfg);
    let l = layout(inp, &kv, &comp, &cfg, 0, 0, &budgets, snap, false);
    let missing = (!fits(&l)).then(|| {
        format!(
            "with the GPU unused and a {kv_type} cache, RAM needs {} more",
            l.ram.total_bytes.saturating_sub(l.ram.budget_bytes)
        )
    });
    finish(inp, snap, req, kv_type, 0, l, &cfg, &kv, missing, true)
}

fn describe_shortfall(
    inp: &PlanInput,
    snap: &Snapshot,
    budgets: &Budgets,
    cfg: &CacheConfig,
    kv: &KvEstimate,
) -> String {
    let comp = compute_buffers(&inp.shape, kv, cfg);
    let cpu_only = layout(inp, kv, &comp, cfg, 0, 0, budgets, snap, false);
    let ram_short = cpu_only
        .ram
        .total_bytes
        .saturating_sub(cpu_only.ram.budget_bytes);
    let mut s = format!(
        "at {} tokens with a {} cache, running on the CPU needs {} of RAM but {} is usable: {} more RAM",
        cfg.n_ctx, cfg.type_k, cpu_only.ram.total_bytes, cpu_only.ram.budget_bytes, ram_short
    );
    if !snap.gpus.is_empty() {
        let full = layout(
            inp,
            kv,
            &comp,
            cfg,
            inp.shape.block_count + 1,
            0,
            budgets,
            snap,
            true,
        );
        let vram_short: Bytes = full
            .gpu
            .iter()
            .map(|g| g.total_bytes.saturating_sub(g.budget_bytes))
            .sum();
        s.push_str(&format!(
            "; fully offloaded it needs {vram_short} more VRAM"
        ));
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn finish(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    t: GgmlType,
    ngl: u32,
    l: Layout,
    cfg: &CacheConfig,
    kv: &KvEstimate,
    missing: Option<String>,
    gpu_unused: bool,
) -> Plan {
    let n = inp.shape.block_count;
    let mut deg = Vec::new();
    if missing.is_none() {
        match t {
            GgmlType::F16 | GgmlType::F32 | GgmlType::Bf16 => {}
            GgmlType::Q8_0 => deg.push(Degradation {
                kind: "kv_quantized",
                severity: Severity::Mild,
                message: "KV cache quantized to q8_0 (small quality loss)".into(),
            }),
            other => deg.push(Degradation {
                kind: "kv_quantized",
                severity: Severity::Severe,
                message: format!(
                    "KV cache quantized to {other} (noticeable quality loss on long contexts)"
                ),
            }),
        }
        if snap.gpus.is_empty() {
            deg.push(Degradation {
                kind: "cpu_only",
                severity: Severity::Moderate,
                message: "no GPU: everything runs on the CPU".into(),
            });
        } else if gpu_unused {
            deg.push(Degradation {
                kind: "cpu_only",
                severity: Severity::Severe,
                message: "the GPU cannot hold even llama.cpp's -ngl 0 offload buffers: it is left unused (-dev none) and everything runs on the CPU".into(),
            });
        } else if l.gpu_blocks == 0 {
            deg.push(Degradation {
                kind: "cpu_only",
                severity: Severity::Severe,
                message: "nothing fits on the GPU: everything runs on the CPU".into(),
            });
        } else if l.cpu_moe > 0 {
            deg.push(Degradation {
                kind: "experts_on_cpu",
                severity: if l.cpu_moe * 2 <= n {
                    Severity::Mild
                } else {
                    Severity::Moderate
                },
                message: format!(
                    "expert tensors of the first {}/{} blocks run on the CPU (--n-cpu-moe {}); attention and the rest stay on the GPU",
                    l.cpu_moe, n, l.cpu_moe
                ),
            });
        } else if l.gpu_blocks < n || !l.output_on_gpu {
            deg.push(Degradation {
                kind: "partial_offload",
                severity: if l.gpu_blocks * 2 >= n {
                    Severity::Moderate
                } else {
                    Severity::Severe
                },
                message: format!(
                    "{}/{} blocks on the GPU, {} on the CPU",
                    l.gpu_blocks,
                    n,
                    n - l.gpu_blocks
                ),
            });
        }
        let on_gpu = l.gpu_blocks > 0 || l.output_on_gpu;
        if let Some(g) = snap.gpus.iter().find(|g| g.software).filter(|_| on_gpu) {
            deg.push(Degradation {
                kind: "software_gpu",
                severity: Severity::Moderate,
                message: format!(
                    "offloaded to {}, a software Vulkan device: it computes on the CPU and its memory is RAM (no speed-up; for testing the GPU path)",
                    g.name
                ),
            });
        }
        let headroom = l.ram.budget_bytes.saturating_sub(l.ram.total_bytes);
        if headroom.get() < l.ram.budget_bytes.get() / 10 {
            deg.push(Degradation {
                kind: "thin_ram_headroom",
                severity: Severity::Mild,
                message: format!("only {headroom} of RAM left beyond the plan"),
            });
        }
    }
    if req.min_context > inp.shape.context_length {
        deg.push(Degradation {
            kind: "beyond_trained_context",
            severity: Severity::Severe,
            message: format!(
                "context {} is beyond the {} tokens the model was trained for",
                req.min_context, inp.shape.context_length
            ),
        });
    }
    let bpw = if inp.weights.n_params > 0 {
        inp.weights.total.get() as f64 * 8.0 / inp.weights.n_params as f64
    } else {
        16.0
    };
    if bpw < 4.0 {
        deg.push(Degradation {
            kind: "low_bit_weights",
            severity: Severity::Mild,
            message: format!("weights average {bpw:.2} bits (below ~4 bits quality drops)"),
        });
    }
    let verdict = if missing.is_some() {
        Verdict::Incompatible
    } else if deg.is_empty() {
        Verdict::Compatible
    } else {
        Verdict::Degraded
    };
    let speed = speed(inp, snap, &l, cfg, kv);
    let mut devices = l.gpu;
    devices.push(l.cpu);
    Plan {
        verdict,
        context: req.min_context,
        kv_type: t,
        flash_attn: cfg.flash_attn,
        n_gpu_layers: ngl,
        block_count: n,
        gpu_blocks: l.gpu_blocks,
        cpu_blocks: n - l.gpu_blocks,
        output_on_gpu: l.output_on_gpu,
        n_cpu_moe: l.cpu_moe,
        gpu_share: l.gpu_blocks as f64 / n.max(1) as f64,
        tensor_split: l.split,
        devices,
        ram: l.ram,
        speed,
        degradations: deg,
        missing,
        gpu_unused,
    }
}

/// Decode is memory-bound: each token reads the weights on every device (only the used
/// experts of MoE layers; one row of the embeddings) and the KV cache filled so far.
/// High end: empty context at the device's full bandwidth; low end: full context at 60%.
///
/// Prompt processing is compute-bound: 2 FLOPs per active weight per token, plus attention
/// (4 x heads x head size per cached token and layer). High end: empty context at 50% of the
/// device's peak; low end: attention over a full context at 20%. A device without a known
/// bandwidth (or peak) leaves that figure out rather than guessing.
fn speed(
    inp: &PlanInput,
    snap: &Snapshot,
    l: &Layout,
    cfg: &CacheConfig,
    kv: &KvEstimate,
) -> Option<Speed> {
    let expert_fraction = if inp.shape.n_expert > 0 {
        inp.shape.n_expert_used as f64 / inp.shape.n_expert as f64
    } else {
        1.0
    };
    let experts: Bytes = inp.weights.experts_per_block.iter().copied().sum();
    let total_w = inp.weights.total.get().max(1) as f64;
    // Bytes of a device's weights read per token (inactive experts skipped).
    let active = |w: Bytes| {
        let share = w.get() as f64 / total_w;
        (w.get() as f64 - experts.get() as f64 * share * (1.0 - expert_fraction)).max(0.0)
    };
    // Weights per parameter, to turn bytes into FLOPs.
    let bytes_per_param = total_w / inp.weights.n_params.max(1) as f64;
    let attn_flops_per_ctx: f64 = inp
        .shape
        .layers
        .iter()
        .filter(|x| x.has_kv)
        .map(|x| 4.0 * x.n_head as f64 * x.head_dim_k as f64)
        .sum::<f64>();
    let filled = cfg.n_ctx as f64 / kv.cells.max(1) as f64;
    let n_blocks = inp.shape.block_count.max(1) as f64;
    let (mut t_low, mut t_high, mut b_low, mut b_high) = (0.0, 0.0, 0.0, 0.0);
    let (mut p_low, mut p_high) = (Some(0.0), Some(0.0));
    // `out`: bytes of the output projection on this device; a prompt batch computes logits
    // for its last token only, so prompt FLOPs leave it out.
    let mut add = |w: f64, out: f64, k: f64, bw: Option<f64>, flops: Option<f64>, blocks: f64| {
        b_high += w;
        b_low += w + k;
        let f_w = 2.0 * w / bytes_per_param;
        let f_a = attn_flops_per_ctx * (blocks / n_blocks) * cfg.n_ctx as f64;
        // A decoded token is bounded by memory (bytes over bandwidth) or, for small models on
        // CPUs, by the matrix-vector products (10-30% of peak FLOP/s): whichever is slower.
        match bw {
            Some(bw) => {
                let (c_hi, c_lo) = match flops {
                    Some(f) => (f_w / (f * 0.3), (f_w + f_a) / (f * 0.1)),
                    None => (0.0, 0.0),
                };
                t_high += (w / bw).max(c_hi);
                t_low += ((w + k) / (bw * 0.6)).max(c_lo);
            }
            None if w + k > 0.0 => t_high = f64::NAN,
            None => {}
        }
        match flops {
            Some(f) => {
                let f_p = 2.0 * (w - out).max(0.0) / bytes_per_param;
                p_high = p_high.map(|t| t + f_p / (f * 0.5));
                p_low = p_low.map(|t| t + (f_p + f_a) / (f * 0.2));
            }
            None if w > 0.0 => {
                p_high = None;
                p_low = None;
            }
            None => {}
        }
    };
    let output_proj = (if inp.tied_output {
        inp.weights.token_embd
    } else {
        inp.weights.output
    })
    .get() as f64;
    let out_gpu = l.gpu.len().saturating_sub(1);
    for (i, g) in l.gpu.iter().enumerate() {
        let gpu = snap.gpus.get(i)?;
        let share = g.weights_bytes.get() as f64 / total_w;
        add(
            active(g.weights_bytes),
            if l.output_on_gpu && i == out_gpu {
                output_proj
            } else {
                0.0
            },
            g.kv_bytes.get() as f64 * filled,
            gpu.bandwidth_gbps.map(|b| b * 1e9),
            gpu.fp16_tflops.map(|t| t * 1e12),
            n_blocks * share,
        );
    }
    // Only one embedding row is read per token, unless the output layer is tied to the
    // embeddings and runs here: then the whole matrix is read by the output projection.
    let cpu_w = if inp.tied_output && !l.output_on_gpu {
        l.cpu.weights_bytes
    } else {
        l.cpu.weights_bytes.saturating_sub(inp.weights.token_embd)
    };
    add(
        active(cpu_w),
        if l.output_on_gpu { 0.0 } else { output_proj },
        l.cpu.kv_bytes.get() as f64 * filled,
        snap.cpu.memory_bandwidth_gbps.map(|b| b * 1e9),
        snap.cpu.peak_flops(),
        n_blocks - l.gpu_blocks as f64,
    );
    if t_high.is_nan() || t_high <= 0.0 {
        return None;
    }
    let rate = |t: Option<f64>| t.filter(|&t| t > 0.0).map(|t| 1.0 / t);
    Some(Speed {
        decode_tokens_per_s_low: 1.0 / t_low,
        decode_tokens_per_s_high: 1.0 / t_high,
        bytes_per_token_low: Bytes(b_high as u64),
        bytes_per_token_high: Bytes(b_low as u64),
        prompt_tokens_per_s_low: rate(p_low),
        prompt_tokens_per_s_high: rate(p_high),
        basis: "decode: bytes read per token over device bandwidth (GPU table/NVML; CPU measured); prompt: FLOPs per token over peak FLOP/s (GPU table; CPU cores x SIMD x clock)".into(),
    })
}
