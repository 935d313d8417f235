//! One configuration on the devices: where each block's weights, KV cache and the compute
//! buffers land under llama.cpp's offload rules, and whether that fits every budget.

use super::input::PlanInput;
use super::{Budgets, DeviceUse, RamUse};
use crate::bytes::Bytes;
use crate::hardware::backend::Backend;
use crate::hardware::Snapshot;
use crate::memory::{CacheConfig, ComputeEstimate, KvEstimate};

/// Everything fixed while placements are tried: the model, the machine, the cache.
pub(super) struct Setup<'a> {
    pub inp: &'a PlanInput,
    pub snap: &'a Snapshot,
    pub budgets: &'a Budgets,
    pub cfg: CacheConfig,
    pub kv: KvEstimate,
    pub comp: ComputeEstimate,
}

/// Where the work goes: llama.cpp's `-ngl`, `--n-cpu-moe`, `--n-cpu-ffn` (dense
/// feed-forward weights of the first blocks on the CPU, `-ot` for older llama.cpp), and
/// whether the GPUs are in its device list at all (`-dev none` hides them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placement {
    pub ngl: u32,
    pub cpu_moe: u32,
    pub cpu_ffn: u32,
    pub gpus_used: bool,
    /// llama.cpp's `--no-repack`: weights stay in the mapped file's pages instead of being
    /// copied into anonymous `CPU_REPACK` buffers (less RAM, slower CPU kernels).
    pub no_repack: bool,
}

impl Placement {
    pub fn layers(ngl: u32) -> Placement {
        Placement {
            ngl,
            cpu_moe: 0,
            cpu_ffn: 0,
            gpus_used: true,
            no_repack: false,
        }
    }
}

/// llama.cpp's `GGML_SCHED_MAX_COPIES`: graph input copies under pipeline parallelism.
const PIPELINE_COPIES: u64 = 4;

/// Memory of one configuration, per device.
#[derive(Clone)]
pub(super) struct Layout {
    pub gpu: Vec<DeviceUse>,
    pub cpu: DeviceUse,
    pub ram: RamUse,
    pub gpu_blocks: u32,
    pub output_on_gpu: bool,
    pub split: Vec<f64>,
    pub cpu_moe: u32,
    pub cpu_ffn: u32,
    pub no_repack: bool,
    /// Mapped weights that do not fit in RAM and are re-read from disk (the mmap route;
    /// set by the search when only that fits).
    pub paged: Bytes,
    /// Why llama.cpp would refuse this layout outright (a block's cache tensor larger than
    /// its device can address: it aborts at context creation).
    pub impossible: Option<String>,
}

/// The memory of placement `p`, per device (docs/memory-model.md).
pub(super) fn layout(s: &Setup, p: Placement) -> Layout {
    let Setup {
        inp, snap, budgets, ..
    } = *s;
    let (kv, comp, cfg) = (&s.kv, &s.comp, &s.cfg);
    let Placement {
        ngl,
        cpu_moe,
        cpu_ffn,
        gpus_used,
        no_repack,
    } = p;
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
    // largest tensor (llama.cpp's `select_weight_buft` tries the op at 512 tokens, whatever
    // the outputs the context reserves).
    let logits_at_512 = Bytes(inp.shape.n_vocab.saturating_mul(512 * 4));
    let output_fits = |d: usize| output_weight <= limit(d) && logits_at_512 <= limit(d);
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
    // Ops of host-resident weights go to the first device that offloads ops: a local GPU.
    // llama.cpp's RPC devices do not (`offload_op` is NULL in ggml-rpc.cpp), so with only
    // remote devices the host runs its own layers.
    let offloader = (0..n_gpus).find(|&d| snap.gpus[d].remote.is_none());
    let o = offloader.unwrap_or(0);
    let addressable0 = |b: Bytes| if b <= limit(o) { b } else { Bytes::ZERO };
    for il in 0..n {
        let lkv = kv.per_layer[il].total();
        match device_of(il) {
            Some(d) => {
                // `--n-cpu-moe` keeps this block's expert tensors in host memory,
                // `--n-cpu-ffn` its dense feed-forward weights; attention and the block's KV
                // cache stay on the GPU either way.
                let spilled = if (il as u32) < cpu_moe {
                    w.experts_per_block[il]
                } else if (il as u32) < cpu_ffn {
                    w.ffn_per_block[il]
                } else {
                    Bytes::ZERO
                };
                gw[d] += w.per_block[il].saturating_sub(spilled);
                cw += spilled;
                gk[d] += lkv;
                layers_on[d] += 1;
                if (il as u32) < cpu_moe.max(cpu_ffn) {
                    host_largest = host_largest.max(addressable0(inp.largest_tensor_per_block[il]));
                }
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
                    budgets.gpus[d].name,
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
    // The output projection's batch is the outputs, not the tokens: with fewer than 32 (one
    // per sequence, as layerfit's engine and llama-server reserve them) a host-resident
    // output weight is not op-offloaded and the logits are computed on the host.
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
    let offload_ops = offloader.is_some() && comp.n_tokens >= 32;
    let offload_output = offloader.is_some() && cfg.reserved_outputs() >= 32;
    // Host layers' attention moves to the first GPU only if it can address their K/V views
    // and the masks; otherwise it runs on the host, and the GPU needs no copy of the masks
    // unless it holds blocks of its own.
    let attention_offloaded =
        offload_ops && host_blocks > 0 && host_kv_tensor <= limit(o) && comp.masks <= limit(o);
    // Where the logits are computed, and whether the weight is copied there for it.
    let (logits_dev, output_copied) = match out_dev {
        Some(d) => (Some(d), false),
        None if offload_output && output_weight <= limit(o) && comp.logits <= limit(o) => {
            (Some(o), true)
        }
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
        if d == o && offload_ops && (host_blocks > 0 || cpu_moe > 0 || cpu_ffn > 0) {
            let masks = if attention_offloaded || layers_on[d] > 0 {
                comp.masks
            } else {
                Bytes::ZERO
            };
            // The scheduler's copies into the GPU's splits: one host weight at a time (each
            // is its own split), and two hidden-state rows more than with every layer
            // offloaded (the graph's input embeddings, copied at the first GPU split). Measured
            // on lavapipe with one output per sequence, where the logits no longer hide them:
            // SmolLM2 at 4096 and 16384 tokens exact, Gemma 3 270M 1.1 and 2.1 MiB above.
            let copies = rows.times(2);
            if attention_offloaded {
                peak = peak.max(comp.masks + host_kv_max + attn_rows.times(4) + copies);
            }
            peak = peak.max(comp.feed_forward + masks + rows.times(4) + host_largest.max(copies));
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
    // Pipeline parallelism (llama.cpp turns it on with several devices, every layer
    // offloaded and no tensor overrides): the scheduler keeps GGML_SCHED_MAX_COPIES (4)
    // copies of the graph inputs and of each activation crossing devices. An estimate for
    // RPC devices (fitted on the real models, docs/rpc.md); with servers connected the
    // chosen plan's compute comes from llama.cpp's dry run (`cli::rpc_compute`).
    let pipeline = n_gpus > 1
        && ngl as usize > n
        && cpu_moe == 0
        && cpu_ffn == 0
        && (0..n_gpus).all(|d| snap.gpus[d].remote.is_some());
    let cpu_compute = if pipeline {
        let copies = (comp.masks + rows).times(PIPELINE_COPIES);
        for c in gc.iter_mut() {
            *c += copies;
        }
        cpu_compute + copies
    } else {
        cpu_compute
    };
    let mut gpu = Vec::new();
    let mut unified_on_ram = Bytes::ZERO;
    for d in 0..n_gpus {
        let total = gw[d] + gk[d] + gc[d];
        let b = &budgets.gpus[d];
        if b.unified {
            // The back-end's context on a unified GPU is RAM too, used once the GPU is in
            // llama.cpp's device list.
            unified_on_ram += total + b.backend_reserve;
        }
        gpu.push(DeviceUse {
            device: b.name.clone(),
            is_gpu: true,
            weights_bytes: gw[d],
            kv_bytes: gk[d],
            compute_bytes: gc[d],
            total_bytes: total,
            budget_bytes: b.budget,
            backend: Some(b.backend),
            backend_reserve_bytes: b.backend_reserve,
        });
    }
    let output_buffer = comp.output_buffer;
    // With a GPU in llama.cpp's device list, host weights go to its host buffer type (or the
    // plain CPU buffer under mmap), never to CPU_REPACK (`make_cpu_buft_list`).
    let host_buffer_type = (0..n_gpus).any(|d| snap.gpus[d].remote.is_none());
    let repacked = if inp.cpu_repacks && !host_buffer_type && !no_repack {
        c_repacked
    } else {
        Bytes::ZERO
    };
    // With only RPC devices beside the CPU the host weights stay in the plain mapped CPU
    // buffer: llama.cpp maps one range from the first host tensor to the end of the last,
    // and reads the device tensors inside it through the mapping while loading, so the
    // host holds that range (its buffer report, and `run`'s self-check, count the same).
    let only_remote = n_gpus > 0 && !host_buffer_type;
    let cw = if only_remote {
        cw.max(inp.mapped.host_span(ngl, cpu_moe, cpu_ffn))
    } else {
        cw
    };
    let cpu_total = cw + ck + cpu_compute + output_buffer;
    let page_cache = cw.saturating_sub(repacked);
    let anonymous = repacked + ck + cpu_compute + output_buffer + unified_on_ram;
    let split = if n_gpus > 1 && gpu_blocks > 0 {
        tensor_split(
            &(start..start + act)
                .filter_map(device_of)
                .collect::<Vec<_>>(),
            n_gpus,
        )
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
            backend: Some(Backend::Cpu),
            backend_reserve_bytes: Bytes::ZERO,
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
        cpu_ffn: if n_gpus == 0 || ngl == 0 { 0 } else { cpu_ffn },
        no_repack: no_repack && c_repacked > Bytes::ZERO,
        paged: Bytes::ZERO,
        impossible,
    }
}

/// llama.cpp's `--tensor-split` proportions that give each device exactly the layers of
/// `owners` (the device of each offloaded layer, output layer included, in order). llama.cpp
/// puts layer `i` of `act` on the first device whose cumulative share exceeds `i / act`
/// (float arithmetic); each boundary is placed half a layer before the first layer of the
/// next device, so rounding (and `-ts` printed to 4 decimals) cannot move a layer.
pub(super) fn tensor_split(owners: &[usize], n_devices: usize) -> Vec<f64> {
    let act = owners.len().max(1) as f64;
    let mut counts = vec![0usize; n_devices];
    for &d in owners {
        counts[d] += 1;
    }
    let mut cum = 0usize;
    let mut prev = 0.0;
    let mut v = Vec::with_capacity(n_devices);
    for (d, c) in counts.iter().enumerate() {
        cum += c;
        let boundary = if d + 1 == n_devices || cum == owners.len() {
            1.0
        } else if cum == 0 {
            0.0
        } else {
            (cum as f64 - 0.5) / act
        };
        v.push((boundary - prev).max(0.0));
        prev = boundary.max(prev);
    }
    v
}

pub(super) fn fits(l: &Layout) -> bool {
    l.impossible.is_none()
        && l.gpu.iter().all(|g| g.total_bytes <= g.budget_bytes)
        && l.ram.total_bytes <= l.ram.budget_bytes
}
