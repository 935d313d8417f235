//! A placement's step times: the model split into one part per device (its weights by
//! type, its attention layers, its blocks), each part timed with that device's rates
//! (`crate::speed`), summed per step, plus a copy of the activations at each device
//! boundary and, for RPC servers, the network.

use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::Snapshot;
use crate::memory::CacheConfig;
use crate::plan::input::PlanInput;
use crate::plan::{DeviceUse, Requirements};
use crate::speed::model::{bytes_per_step, decode_seconds, prompt_seconds};
use crate::speed::{published, AttnLayer, Basis, Part, Rates};

/// One activation copy between devices per step (PCIe latency dominates the few KiB);
/// an assumption, not a measurement (docs/speed.md).
const BOUNDARY_SECONDS: f64 = 20e-6;

/// A link to an RPC server when not measured or described: a gigabit LAN.
const ASSUMED_ROUND_TRIP_S: f64 = 0.5e-3;
const ASSUMED_NETWORK_BYTES_PER_S: f64 = 125e6;
/// Requests per step that wait for a remote device's answer (its inputs, then its result:
/// llama.cpp's RPC client sends the graph asynchronously and reads the output back).
const ROUND_TRIPS_PER_STEP: f64 = 2.0;
/// Per step and per block on a remote device: the RPC client serialising that part of the
/// graph and the server rebuilding and scheduling it. Fitted with `benches/rpc_split.sh` on
/// loopback (2-core Xeon, one thread per process): the split step minus the local step,
/// per remote block, is 0.41 ms for SmolLM2 (30 blocks) and 0.42 ms for Gemma 3 (18).
const RPC_SECONDS_PER_REMOTE_BLOCK: f64 = 0.41e-3;

/// One remote device doing work in a step: the link's round trip and rate.
#[derive(Clone, Copy, Debug)]
struct Link {
    round_trip_s: f64,
    bytes_per_s: f64,
    /// Holds the output layer: the logits come back over the link.
    output: bool,
    /// Blocks on the device.
    blocks: f64,
}

/// Where the model sits: the parts of a layout or of a finished plan the speed needs.
pub struct Placed<'a> {
    pub gpus: &'a [DeviceUse],
    pub cpu: &'a DeviceUse,
    pub gpu_blocks: u32,
    pub output_on_gpu: bool,
}

struct Device<'a> {
    part: Part,
    rates: Rates<'a>,
    /// A GPU that borrows host weights for prompt batches (llama.cpp's op offload).
    pcie: Option<(f64, Rates<'a>)>,
}

/// The figures of one placement, or `None` when nothing is placed.
pub(super) struct Timing<'a> {
    devices: Vec<Device<'a>>,
    boundaries: usize,
    links: Vec<Link>,
    /// Bytes of one token's activations, of one token's mask row per cached cell, of the
    /// logits.
    activation_bytes: f64,
    mask_bytes_per_cell: f64,
    logits_bytes: f64,
    pub basis: Basis,
    pub threads: u32,
    pub notes: Vec<String>,
}

impl Timing<'_> {
    /// Seconds a step of `tokens` tokens at cache position `pos` spends on the network:
    /// per remote device, its round trips and its inputs (activations and mask rows), and
    /// the logits of one token from the device that holds the output.
    pub fn network(&self, pos: f64, tokens: f64) -> f64 {
        self.links
            .iter()
            .map(|l| {
                let bytes = tokens
                    * (self.activation_bytes + (pos + tokens) * self.mask_bytes_per_cell)
                    + if l.output { self.logits_bytes } else { 0.0 };
                ROUND_TRIPS_PER_STEP * l.round_trip_s
                    + bytes / l.bytes_per_s
                    + l.blocks * RPC_SECONDS_PER_REMOTE_BLOCK
            })
            .sum()
    }

    /// Seconds of a decode step with `pos` cells filled.
    pub fn decode(&self, pos: f64) -> Option<f64> {
        let mut t = self.boundaries as f64 * BOUNDARY_SECONDS + self.network(pos, 1.0);
        for d in &self.devices {
            t += decode_seconds(&d.part, &d.rates, pos)?;
        }
        Some(t)
    }

    /// Seconds of a prompt micro-batch of `batch` tokens from `pos`.
    pub fn prompt(&self, pos: f64, batch: f64) -> Option<f64> {
        let mut t = self.boundaries as f64 * BOUNDARY_SECONDS + self.network(pos, batch);
        for d in &self.devices {
            match &d.pcie {
                // Host weights go over the link to the GPU for each batch; the host keeps
                // the attention over its own cache.
                Some((link, gpu)) => {
                    let weights: f64 = d.part.weights.iter().map(|w| w.1).sum();
                    let moved = Part {
                        attn: Vec::new(),
                        output: None,
                        blocks: 0.0,
                        has_outside: false,
                        ..d.part.clone()
                    };
                    let attn_only = Part {
                        weights: Vec::new(),
                        ..d.part.clone()
                    };
                    t += weights / link
                        + prompt_seconds(&moved, gpu, pos, batch)?
                        + prompt_seconds(&attn_only, &d.rates, pos, batch)?;
                }
                None => t += prompt_seconds(&d.part, &d.rates, pos, batch)?,
            }
        }
        Some(t)
    }

    /// Some of the placement sits on RPC servers (the speed then says the network's share).
    pub fn has_links(&self) -> bool {
        !self.links.is_empty()
    }

    pub fn bytes(&self, pos: f64) -> f64 {
        self.devices
            .iter()
            .map(|d| bytes_per_step(&d.part, pos))
            .sum()
    }
}

/// The parts and rates of a placement.
pub(super) fn timing<'a>(
    inp: &PlanInput,
    snap: &'a Snapshot,
    req: &'a Requirements,
    at: &Placed,
    cfg: &CacheConfig,
) -> Timing<'a> {
    let threads = req
        .threads
        .unwrap_or_else(|| crate::speed::default_threads(snap.cpu.physical_cores));
    let mut notes = Vec::new();
    let (cpu_rates, cpu_basis) = cpu_rates_at(req, snap, threads);
    let mut basis = Basis::Measured;
    let total_kv: f64 = at
        .gpus
        .iter()
        .chain([at.cpu])
        .map(|d| d.kv_bytes.get() as f64)
        .sum();
    let expert_fraction = if inp.shape.n_expert > 0 {
        inp.shape.n_expert_used as f64 / inp.shape.n_expert as f64
    } else {
        1.0
    };
    let block_total: f64 = inp.block_types.iter().map(|t| t.1.get() as f64).sum();
    let experts: f64 = inp
        .weights
        .experts_per_block
        .iter()
        .map(|b| b.get() as f64)
        .sum();
    let tied_bytes = inp.weights.token_embd.get() as f64;
    let output_bytes = if inp.tied_output {
        tied_bytes
    } else {
        inp.output_projection.get() as f64
    };
    let attn: Vec<AttnLayer> = inp
        .shape
        .layers
        .iter()
        .filter(|l| l.has_kv)
        .map(|l| AttnLayer {
            n_head: l.n_head,
            head_dim: l.head_dim_k,
            window: (l.is_swa && inp.shape.n_swa > 0).then_some(inp.shape.n_swa as u64),
            kv_bytes_per_cell: kv_bytes(l.n_embd_k_gqa(), cfg.type_k)
                + kv_bytes(l.n_embd_v_gqa(), cfg.type_v),
        })
        .collect();
    let n_blocks = inp.shape.block_count as f64;
    let part = |d: &DeviceUse, outside: f64, output: bool, blocks: f64| {
        let block_bytes = (d.weights_bytes.get() as f64 - outside).max(0.0);
        let share = if block_total > 0.0 {
            (block_bytes / block_total).min(1.0)
        } else {
            0.0
        };
        // Inactive experts are not read: scale by the active share of the block bytes.
        let active = if block_total > 0.0 {
            1.0 - experts / block_total * (1.0 - expert_fraction)
        } else {
            1.0
        };
        Part {
            weights: inp
                .block_types
                .iter()
                .map(|&(t, b)| (t, b.get() as f64 * share * active))
                .collect(),
            output: output.then_some((inp.output_type, output_bytes)),
            attn: attn.clone(),
            attn_share: if total_kv > 0.0 {
                d.kv_bytes.get() as f64 / total_kv
            } else {
                0.0
            },
            kv_type: cfg.type_k,
            blocks,
            has_outside: output,
            row_elements: inp.block_row_elements,
            output_row_elements: inp.output_row_elements,
            sampled_vocab: 0.0,
            ffn_elements: if n_blocks > 0.0 {
                inp.ffn_elements * blocks / n_blocks
            } else {
                0.0
            },
            ffn_activation: inp.ffn_activation,
        }
    };
    let mut devices = Vec::new();
    let mut links = Vec::new();
    let last = at.gpus.len().saturating_sub(1);
    let gpu_weights: f64 = at.gpus.iter().map(|g| g.weights_bytes.get() as f64).sum();
    for (i, d) in at.gpus.iter().enumerate() {
        let Some(g) = snap.gpus.get(i) else { continue };
        let output = at.output_on_gpu && i == last;
        let blocks = if gpu_weights > 0.0 {
            at.gpu_blocks as f64 * d.weights_bytes.get() as f64 / gpu_weights
        } else {
            0.0
        };
        let (rates, b) = if let Some(r) = &g.remote {
            if d.weights_bytes > Bytes::ZERO || output {
                let measured = r.round_trip_ms.is_some() && r.network_gbps.is_some();
                if !measured {
                    notes.push(format!(
                        "{} ({}): network assumed {} ms round trip, {} Gbit/s",
                        g.name,
                        r.endpoint,
                        ASSUMED_ROUND_TRIP_S * 1e3,
                        ASSUMED_NETWORK_BYTES_PER_S * 8.0 / 1e9
                    ));
                }
                links.push(Link {
                    round_trip_s: r.round_trip_ms.map_or(ASSUMED_ROUND_TRIP_S, |ms| ms / 1e3),
                    bytes_per_s: r
                        .network_gbps
                        .map_or(ASSUMED_NETWORK_BYTES_PER_S, |g| g * 1e9 / 8.0),
                    output,
                    blocks,
                });
            }
            remote_rates(req, snap, g, threads, &mut notes)
        } else if g.software {
            // llvmpipe/lavapipe computes on this CPU's cores: the CPU's own rates at all
            // of them (its thread pool), not a GPU's.
            cpu_rates_at(
                req,
                snap,
                crate::speed::default_threads(snap.cpu.physical_cores),
            )
        } else {
            published::gpu_rates(g, inp.shape.n_embd)
        };
        if g.bandwidth_gbps.is_none() && !g.software && g.remote.is_none() {
            notes.push(format!(
                "{} has no bandwidth figure: assumed {} GB/s",
                g.name,
                published::UNKNOWN_GPU_BANDWIDTH_GBPS
            ));
        }
        basis = basis.worst(b);
        let outside = if output { output_bytes } else { 0.0 };
        devices.push(Device {
            part: part(d, outside, output, blocks),
            rates,
            pcie: None,
        });
    }
    let cpu_outside = tied_bytes
        + if at.output_on_gpu || inp.tied_output {
            0.0
        } else {
            output_bytes
        };
    let cpu_blocks = (n_blocks - at.gpu_blocks as f64).max(0.0);
    let mut cpu = Device {
        part: Part {
            // The host copies the logits out and samples, wherever the output ran.
            sampled_vocab: inp.shape.n_vocab as f64,
            ..part(at.cpu, cpu_outside, !at.output_on_gpu, cpu_blocks)
        },
        rates: cpu_rates,
        pcie: None,
    };
    // The CPU's figures matter when it does the work of a block or the output (a GPU-only
    // plan leaves it one embedding row per token).
    if cpu.part.weights.iter().any(|w| w.1 > 0.0)
        || cpu.part.output.is_some()
        || cpu.part.attn_share > 0.0
    {
        basis = basis.worst(cpu_basis);
    }
    // llama.cpp runs a prompt batch's host matrix products on the first real GPU
    // (op offload), moving the host weights over PCIe each batch.
    if let Some(g) = snap.gpus[..at.gpus.len().min(snap.gpus.len())]
        .iter()
        .find(|g| !g.software)
    {
        cpu.pcie = Some((
            published::pcie_bytes_per_s(g),
            published::gpu_rates(g, inp.shape.n_embd).0,
        ));
    }
    let boundaries = devices.len()
        - usize::from(cpu.part.weights.iter().all(|w| w.1 == 0.0) && cpu.part.attn_share == 0.0);
    devices.push(cpu);
    // Graph inputs crossing to a remote device: the activations (f32) and one f16 mask row
    // per attention kind (full, and sliding-window when the model has it).
    let mask_kinds = if inp.shape.layers.iter().any(|l| l.is_swa) && inp.shape.n_swa > 0 {
        2.0
    } else {
        1.0
    };
    Timing {
        devices,
        boundaries,
        links,
        activation_bytes: inp.shape.n_embd as f64 * 4.0,
        mask_bytes_per_cell: 2.0 * mask_kinds,
        logits_bytes: inp.shape.n_vocab as f64 * 4.0,
        basis,
        threads,
        notes,
    }
}

/// A remote device's rates: from its described memory bandwidth (a CPU-like device), else
/// taken as fast as this machine's CPU (an RPC server does not say what its device is).
fn remote_rates<'a>(
    req: &'a Requirements,
    snap: &Snapshot,
    g: &crate::hardware::Gpu,
    threads: u32,
    notes: &mut Vec<String>,
) -> (Rates<'a>, Basis) {
    match g.bandwidth_gbps {
        Some(bw) => {
            let mut cpu = snap.cpu.clone();
            cpu.memory_bandwidth_gbps = Some(bw);
            (published::cpu_rates(&cpu, threads), Basis::Rough)
        }
        None => {
            notes.push(format!(
                "{} is taken as fast as this machine's CPU (describe its bandwidth_gbps to say otherwise)",
                g.name
            ));
            cpu_rates_at(req, snap, threads)
        }
    }
}

/// This CPU's rates at `threads`: the calibration's when there is one, else rough figures.
fn cpu_rates_at<'a>(req: &'a Requirements, snap: &Snapshot, threads: u32) -> (Rates<'a>, Basis) {
    match req.calibration.as_deref().and_then(|c| c.at(threads)) {
        Some(r) => (Rates::Measured(r), Basis::Measured),
        None => (published::cpu_rates(&snap.cpu, threads), Basis::Rough),
    }
}

fn kv_bytes(n: u64, t: GgmlType) -> f64 {
    t.row_size(n).map_or(0.0, |b| b.get() as f64)
}
