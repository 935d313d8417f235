//! What `layerfit bench` measures: the list of figures (weight types, working sets,
//! attention shapes, the engine's probe steps, the feed-forward activation) and how each
//! measured list becomes one thread count's `ThreadRates`. `calibrate` times them.

use super::ggml_bench::AttnShape;
use super::step_probe::{DEEP_BLOCKS, SHALLOW_BLOCKS};
use crate::ggml_type::GgmlType;
use crate::speed::calibration::{
    measured_heads, AttnRate, ThreadRates, TypeRate, WorkingSetRate, LONG_PROMPT_ATTN_CELLS,
    MATVEC_ROW_ELEMENTS, PROMPT_ATTN_CELLS,
};
use crate::speed::ffn_activation::{ActivationRate, FfnActivation};

/// Weight types whose kernels are measured: the common quantizations of published GGUF
/// files (others borrow the nearest, `calibration::stand_in`).
const WEIGHT_TYPES: &[GgmlType] = &[
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q8_0,
    GgmlType::Q6K,
    GgmlType::Q5K,
    GgmlType::Q5_0,
    GgmlType::Q4K,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q3K,
    GgmlType::Q2K,
    GgmlType::Iq4Xs,
];
const KV_TYPES: &[GgmlType] = &[GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];
const HEAD_DIMS: &[u32] = &[64, 128, 256];
/// Columns of the measured matrices (a typical hidden size; a multiple of every block).
pub(super) const K: u64 = MATVEC_ROW_ELEMENTS;
/// Query tokens of the prompt-attention measurement: enough that ggml's row chunks per
/// thread hold whole 64-row tiles as a 512-token micro-batch's do (64 queries gave 2
/// threads half tiles), over 512 cells (128 cells sat in the core's cache and measured
/// the prompt attention at 2K cells about 30% too fast).
const PROMPT_QUERIES: u64 = 256;
/// Logits of the sampling measurement (a large vocabulary; the cost is per entry).
pub(super) const SAMPLED_VOCAB: usize = 131072;
pub(super) const MID_WORKING_SET: u64 = 64 << 20;
/// Cache bytes of the long-context attention measurements.
const LARGE_CACHE: u64 = 128 << 20;
/// Cells of each layer in the long-context attention measurements.
const LONG_CONTEXT_LAYER_CELLS: [u64; 2] = [2048, 16384];
/// Rows and width of the activation measurement: a million values, so that no row repeats
/// and the branch predictor cannot learn the inputs (ggml's GELU branches on each value; a
/// few thousand values timed over and over measured half the cost).
const ACTIVATION_ROWS: u64 = 256;
pub(super) const ACTIVATION_WIDTH: u64 = 2048;

/// Bytes of one measured q8_0 matrix (1024 rows of `K`): the unit working sets are made of.
fn q8_matrix_bytes() -> u64 {
    GgmlType::Q8_0.row_size(K).map_or(1, |b| b.get()) * 1024
}

/// One figure to measure at one thread count.
#[derive(Clone, Copy, Debug)]
pub(super) enum Item {
    MatVec(GgmlType),
    MatVecShortRows(GgmlType),
    MatMul(GgmlType),
    Curve(u64),
    Attn(AttnShape),
    AttnPrompt(AttnShape),
    AttnPromptLong(AttnShape),
    AttnLarge(AttnShape),
    Node,
    Sampling,
    /// A decode step of the engine's probe model of this many blocks (`step_probe`).
    Step(u32),
    /// The feed-forward activation over this many rows.
    FfnActivation(FfnActivation, u64),
}

/// Grouped-query shapes of real models at each head size (SmolLM2, Llama 3, Gemma 3): the
/// kernels' cost per unit depends on the group.
fn decode_shape(kv: GgmlType, d: u32) -> AttnShape {
    let (n_head, n_head_kv) = measured_heads(d);
    AttnShape {
        kv,
        head_dim: d as u64,
        n_head,
        n_head_kv,
        n_kv: 4096,
        n_q: 1,
        copies: 1,
    }
}

pub(super) fn items(max_working_set: u64) -> Vec<Item> {
    let mut v = Vec::new();
    for &t in WEIGHT_TYPES {
        v.push(Item::MatVec(t));
        v.push(Item::MatVecShortRows(t));
        v.push(Item::MatMul(t));
    }
    for s in [8u64 << 20, MID_WORKING_SET, 256 << 20] {
        if s <= max_working_set.max(MID_WORKING_SET) {
            v.push(Item::Curve(s));
        }
    }
    for &kv in KV_TYPES {
        for &d in HEAD_DIMS {
            let hot = decode_shape(kv, d);
            v.push(Item::Attn(hot));
            v.push(Item::AttnPrompt(AttnShape {
                n_kv: PROMPT_ATTN_CELLS,
                n_q: PROMPT_QUERIES,
                ..hot
            }));
        }
    }
    // The prompt attention's growth with the cells seen, on f16 caches at the smallest and
    // largest head sizes (calibration::attn_prompt_seconds).
    for d in [64, 256] {
        v.push(Item::AttnPromptLong(AttnShape {
            n_kv: LONG_PROMPT_ATTN_CELLS,
            n_q: PROMPT_QUERIES,
            ..decode_shape(GgmlType::F16, d)
        }));
    }
    // The long-context figures are measured on f16 caches at head sizes 64 and 128, over
    // layers of 2048 and of 16384 cells; their excess over the in-cache figures is a stall
    // per cache byte that every cache type pays, by the layer's size
    // (calibration::attn_decode_seconds).
    for d in [64, 128] {
        for n_kv in LONG_CONTEXT_LAYER_CELLS {
            let one = AttnShape {
                n_kv,
                ..decode_shape(GgmlType::F16, d)
            };
            let copies = (LARGE_CACHE.min(max_working_set) / one.cache_bytes().max(1)).max(1);
            v.push(Item::AttnLarge(AttnShape {
                copies: copies as usize,
                ..one
            }));
        }
    }
    v.push(Item::Node);
    v.push(Item::Sampling);
    v.push(Item::Step(SHALLOW_BLOCKS));
    v.push(Item::Step(DEEP_BLOCKS));
    for f in [FfnActivation::Gelu, FfnActivation::Silu] {
        v.push(Item::FfnActivation(f, ACTIVATION_ROWS));
    }
    v
}

pub(super) fn label(item: &Item) -> String {
    match item {
        Item::MatVec(t) => format!("{} x vector", t.name()),
        Item::MatVecShortRows(t) => format!("{} x vector, short rows", t.name()),
        Item::MatMul(t) => format!("{} x batch", t.name()),
        Item::Curve(s) => format!("memory at {} MiB", s >> 20),
        Item::Attn(a) => format!("attention, {} cache, head {}", a.kv.name(), a.head_dim),
        Item::AttnPrompt(a) => format!(
            "prompt attention, {} cache, head {}",
            a.kv.name(),
            a.head_dim
        ),
        Item::AttnPromptLong(a) => format!(
            "prompt attention, {} cache, head {}, {} cells",
            a.kv.name(),
            a.head_dim,
            a.n_kv
        ),
        Item::AttnLarge(a) => format!(
            "long-context attention, {} cache, head {}, {}-cell layers",
            a.kv.name(),
            a.head_dim,
            a.n_kv
        ),
        Item::Node => "graph nodes".into(),
        Item::Sampling => "sampling".into(),
        Item::Step(b) => format!("engine decode step, {b} blocks"),
        Item::FfnActivation(f, tokens) => format!("{} activation, {tokens} rows", f.name()),
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// One thread count's figures from the passes' measurements.
pub(super) fn point(threads: u32, list: &[Item], figures: Vec<Vec<f64>>) -> ThreadRates {
    let mut p = ThreadRates {
        threads,
        matvec_gb_per_s: Vec::new(),
        matvec_working_set_bytes: MID_WORKING_SET,
        matvec_short_rows_gb_per_s: Vec::new(),
        working_set_curve: Vec::new(),
        matmul_gflop_per_s: Vec::new(),
        attn_decode_ns: Vec::new(),
        attn_decode_large_ns: Vec::new(),
        attn_prompt_ns: Vec::new(),
        attn_prompt_long_ns: Vec::new(),
        node_seconds: 1e-6,
        sampling_ns_per_token: 0.0,
        engine_block_seconds: 0.0,
        engine_step_seconds: 0.0,
        ffn_activation_ns: Vec::new(),
    };
    let (mut shallow, mut deep) = (None, None);
    let rate = |t: GgmlType, value: f64| TypeRate {
        type_name: t.name().into(),
        value,
    };
    let attn = |a: &AttnShape, ns: f64| AttnRate {
        type_name: a.kv.name().into(),
        head_dim: a.head_dim as u32,
        ns,
        cache_bytes: a.cache_bytes(),
        layer_cache_bytes: a.cache_bytes() / a.copies.max(1) as u64,
    };
    for (item, xs) in list.iter().zip(figures) {
        let Some(x) = median(xs) else { continue };
        match item {
            Item::MatVec(t) => p.matvec_gb_per_s.push(rate(*t, x)),
            Item::MatVecShortRows(t) => p.matvec_short_rows_gb_per_s.push(rate(*t, x)),
            Item::MatMul(t) => p.matmul_gflop_per_s.push(rate(*t, x)),
            Item::Curve(s) => {
                let one = q8_matrix_bytes();
                p.working_set_curve.push(WorkingSetRate {
                    working_set_bytes: (s / one).max(1) * one,
                    gb_per_s: x,
                })
            }
            Item::Attn(a) => p.attn_decode_ns.push(attn(a, x)),
            Item::AttnPrompt(a) => p.attn_prompt_ns.push(attn(a, x)),
            Item::AttnPromptLong(a) => p.attn_prompt_long_ns.push(attn(a, x)),
            Item::AttnLarge(a) => p.attn_decode_large_ns.push(attn(a, x)),
            Item::Node => p.node_seconds = x,
            Item::Sampling => p.sampling_ns_per_token = x,
            Item::Step(SHALLOW_BLOCKS) => shallow = Some(x),
            Item::Step(_) => deep = Some(x),
            Item::FfnActivation(f, tokens) => p.ffn_activation_ns.push(ActivationRate {
                activation: f.name().into(),
                tokens: *tokens as u32,
                ns_per_element: x,
            }),
        }
    }
    if let (Some(shallow), Some(deep)) = (shallow, deep) {
        let block = ((deep - shallow) / (DEEP_BLOCKS - SHALLOW_BLOCKS) as f64).max(0.0);
        p.engine_block_seconds = block;
        p.engine_step_seconds = (shallow - SHALLOW_BLOCKS as f64 * block).max(0.0);
    }
    let one = q8_matrix_bytes();
    let mid = (MID_WORKING_SET / one).max(1) * one;
    p.matvec_working_set_bytes = mid;
    // The mid working set is measured twice (the q8_0 rate and the curve's point): the
    // curve's point is replaced by the per-type figure so both agree.
    let q8 = p
        .matvec_gb_per_s
        .iter()
        .find(|r| r.type_name == GgmlType::Q8_0.name())
        .map(|r| r.value);
    if let (Some(q8), Some(w)) = (
        q8,
        p.working_set_curve
            .iter_mut()
            .find(|w| w.working_set_bytes == mid),
    ) {
        w.gb_per_s = q8;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_context_shapes_read_the_bytes_per_unit_the_speed_model_assumes() {
        let large: Vec<AttnShape> = items(1 << 30)
            .into_iter()
            .filter_map(|i| match i {
                Item::AttnLarge(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(large.len(), 4);
        for a in large {
            let per_unit = a.cache_bytes() as f64 / a.units();
            let assumed = crate::speed::calibration::f16_bytes_per_unit(a.head_dim as u32);
            assert!((per_unit - assumed).abs() < 1e-12, "{per_unit} {assumed}");
        }
    }
}
