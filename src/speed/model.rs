//! Seconds per decoded token and per prompt micro-batch for one device's share of a model,
//! from that device's rates. Pure arithmetic: the plan splits the model into parts, the
//! rates come from a calibration (this CPU), a spec table (GPUs) or rough figures.

use super::calibration::ThreadRates;
use super::ffn_activation::FfnActivation;
use crate::ggml_type::GgmlType;

/// Graph nodes llama.cpp's CPU back-end runs per transformer block in a decode step (norms,
/// projections, rope, cache writes, attention, feed-forward, residuals: 26 to 33 in the
/// "graph nodes" line of llama.cpp's log for the llama and gemma3 graphs, divided by the
/// block count), and outside the blocks (embeddings, output norm and projection).
pub const NODES_PER_BLOCK: f64 = 30.0;
pub const NODES_OUTSIDE: f64 = 6.0;

/// One attention layer as the speed model sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnLayer {
    pub n_head: u32,
    pub head_dim: u32,
    /// Cells it can see at most (sliding window); `None`: the whole context.
    pub window: Option<u64>,
    /// K and V bytes per cell (read for every visible cell of a decode step).
    pub kv_bytes_per_cell: f64,
}

impl AttnLayer {
    /// Cells the token at position `pos` attends to.
    fn visible(&self, pos: f64) -> f64 {
        let all = pos + 1.0;
        self.window.map_or(all, |w| all.min(w as f64))
    }
}

/// One device's share of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Block weight bytes read per decode step, by type (only the active experts of MoE
    /// blocks); every prompt token multiplies by them too.
    pub weights: Vec<(GgmlType, f64)>,
    /// The output projection when it runs here: read whole by every step, but a prompt
    /// batch computes logits for its last token only.
    pub output: Option<(GgmlType, f64)>,
    pub attn: Vec<AttnLayer>,
    /// Fraction of each attention layer's heads here (layers are whole, so 1 or 0, but a
    /// share keeps multi-GPU splits simple).
    pub attn_share: f64,
    pub kv_type: GgmlType,
    /// Blocks here (graph nodes per step).
    pub blocks: f64,
    /// Holds the embeddings/output (the graph's nodes outside the blocks).
    pub has_outside: bool,
    /// Row length (elements) of the block matrices, weighted by their bytes, and of the
    /// output projection: short rows stream less per dot product's fixed cost.
    pub row_elements: f64,
    pub output_row_elements: f64,
    /// Logits this device copies and samples each decode step (the host: the vocabulary).
    pub sampled_vocab: f64,
    /// Feed-forward values one token activates here, and their function.
    pub ffn_elements: f64,
    pub ffn_activation: FfnActivation,
}

/// A device's throughput, however it is known.
#[derive(Clone, Debug, PartialEq)]
pub enum Rates<'a> {
    /// This machine's CPU, measured by `layerfit bench`.
    Measured(&'a ThreadRates),
    /// From published figures: bytes/s a decode step streams, FLOP/s a prompt batch
    /// reaches, attention FLOP/s, and the fixed cost per block of a step (kernel launches).
    Spec {
        bytes_per_s: f64,
        flops: f64,
        attn_flops: f64,
        seconds_per_block: f64,
    },
}

fn params(t: GgmlType, bytes: f64) -> f64 {
    bytes * 8.0 / t.bits_per_weight().max(0.5)
}

fn weight_bytes(part: &Part) -> f64 {
    part.weights.iter().map(|w| w.1).sum::<f64>() + part.output.map_or(0.0, |o| o.1)
}

/// Bytes a decode step reads on this part at position `pos`: weights and the visible cache.
pub fn bytes_per_step(part: &Part, pos: f64) -> f64 {
    let weights = weight_bytes(part);
    let kv: f64 = part
        .attn
        .iter()
        .map(|a| a.kv_bytes_per_cell * a.visible(pos))
        .sum();
    weights + part.attn_share * kv
}

/// Attention work of one query token at `pos` in one layer.
struct LayerAttn {
    head_dim: u32,
    /// Query heads x visible cells x head size.
    units: f64,
    /// Cache bytes read per unit, and in all.
    bytes_per_unit: f64,
    bytes: f64,
    /// Cells the token attends to.
    visible: f64,
    /// A sliding window the position has passed: its cache is a ring (the split below does
    /// not apply as computed).
    wrapped: bool,
}

fn attn_units(part: &Part, pos: f64) -> Vec<LayerAttn> {
    part.attn
        .iter()
        .map(|a| {
            let per_cell = a.n_head as f64 * a.head_dim as f64;
            let visible = a.visible(pos);
            LayerAttn {
                head_dim: a.head_dim,
                units: part.attn_share * per_cell * visible,
                bytes_per_unit: a.kv_bytes_per_cell / per_cell.max(1.0),
                bytes: part.attn_share * a.kv_bytes_per_cell * visible,
                visible,
                wrapped: a.window.is_some_and(|w| pos + 1.0 > w as f64),
            }
        })
        .collect()
}

/// How much longer than an even split a decode step's attention takes at `threads`: with
/// an f16 or f32 cache and at least 512 cells in its view, ggml's CPU kernel gives each
/// thread an equal run of the view's cells (`use_split_kv_path` in ggml-cpu's ops.cpp), and
/// llama.cpp pads the view to a multiple of 256 cells (`get_n_kv` in llama-kv-cache.cpp);
/// the padding is masked, so the first threads get the visible cells and the step waits
/// for the busiest. At 524 cells and 2 threads: a view of 768, runs of 384, 1.47x. The
/// calibration's own attention figures see every cell (an even split).
/// A sliding-window layer past its window (a ring cache) counts as even.
fn split_kv_imbalance(threads: u32, kv: GgmlType, layer: &LayerAttn) -> f64 {
    let visible = layer.visible;
    let split = matches!(kv, GgmlType::F16 | GgmlType::F32) && !layer.wrapped;
    let view = ((visible / 256.0).ceil() * 256.0).max(256.0);
    if !split || threads <= 1 || view < 512.0 || visible <= 0.0 {
        return 1.0;
    }
    let run = (view / threads as f64).ceil();
    (visible.min(run) * threads as f64 / visible).max(1.0)
}

/// Graph nodes of the part's share of a step.
fn graph_nodes(part: &Part) -> f64 {
    part.blocks * NODES_PER_BLOCK + if part.has_outside { NODES_OUTSIDE } else { 0.0 }
}

/// Seconds of one decode step at cache position `pos` (cells already filled).
pub fn decode_seconds(part: &Part, rates: &Rates, pos: f64) -> Option<f64> {
    match rates {
        Rates::Measured(r) => {
            let ws = bytes_per_step(part, pos);
            let mut t = 0.0;
            for &(ty, b) in &part.weights {
                t += b / r.matvec_bytes_per_s(ty, ws, part.row_elements)?;
            }
            if let Some((ty, b)) = part.output {
                t += b / r.matvec_bytes_per_s(ty, ws, part.output_row_elements)?;
            }
            for a in attn_units(part, pos) {
                let unit =
                    r.attn_decode_seconds(part.kv_type, a.head_dim, ws, a.bytes_per_unit, a.bytes)?;
                t += a.units * unit * split_kv_imbalance(r.threads, part.kv_type, &a);
            }
            Some(
                t + activation_seconds(part, r)
                    + decode_overhead(part, r)
                    + r.sampling_seconds(part.sampled_vocab),
            )
        }
        Rates::Spec {
            bytes_per_s,
            seconds_per_block,
            ..
        } => Some(bytes_per_step(part, pos) / bytes_per_s + part.blocks * seconds_per_block),
    }
}

/// Seconds of one token's feed-forward activation on the part (every token of a prompt
/// batch pays it as a decode step's does).
fn activation_seconds(part: &Part, r: &ThreadRates) -> f64 {
    part.ffn_elements * r.ffn_activation_seconds(part.ffn_activation)
}

/// What a decode step costs beyond its kernels: the engine's measured cost per block and
/// per step (the step's once on the part holding the embeddings and output), else the
/// per-node cost over the graph's nodes (calibrations before version 6).
fn decode_overhead(part: &Part, r: &ThreadRates) -> f64 {
    let (block, step) = (r.engine_block_seconds, r.engine_step_seconds);
    if block.is_finite() && block > 0.0 && step.is_finite() {
        part.blocks * block + if part.has_outside { step } else { 0.0 }
    } else {
        graph_nodes(part) * r.node_seconds
    }
}

/// Seconds of one prompt micro-batch of `batch` tokens starting at cache position `pos`.
pub fn prompt_seconds(part: &Part, rates: &Rates, pos: f64, batch: f64) -> Option<f64> {
    // Each query of the batch sees the cells before it: on average those at its middle.
    let mid = pos + batch / 2.0;
    let flops_weights = |ty: GgmlType, b: f64| 2.0 * params(ty, b) * batch;
    match rates {
        Rates::Measured(r) => {
            let mut t = 0.0;
            for &(ty, b) in &part.weights {
                t += flops_weights(ty, b) / r.matmul_flops(ty)?;
            }
            if let Some((ty, b)) = part.output {
                t += b / r.matvec_bytes_per_s(ty, b, part.output_row_elements)?;
            }
            for a in attn_units(part, mid) {
                let unit = r.attn_prompt_seconds(part.kv_type, a.head_dim, a.visible)?;
                t += batch * a.units * unit;
            }
            Some(t + batch * activation_seconds(part, r) + graph_nodes(part) * r.node_seconds)
        }
        Rates::Spec {
            bytes_per_s,
            flops,
            attn_flops,
            seconds_per_block,
        } => {
            let w: f64 = part
                .weights
                .iter()
                .map(|&(ty, b)| flops_weights(ty, b))
                .sum();
            let a: f64 = attn_units(part, mid)
                .iter()
                .map(|u| 4.0 * u.units * batch)
                .sum();
            let out = part.output.map_or(0.0, |o| o.1 / bytes_per_s);
            Some(w / flops + a / attn_flops + out + part.blocks * seconds_per_block)
        }
    }
}
