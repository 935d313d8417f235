//! What `layerfit bench` measured on this machine through the bundled engine, as plain data:
//! per thread count, the rate of each weight type in a decode step (matrix x vector) and in
//! a prompt batch (matrix x 512 columns), flash attention per cache type, and the cost of a
//! graph node. The speed model reads it; the CLI stores it (XDG cache).

use crate::ggml_type::GgmlType;
use serde::{Deserialize, Serialize};

/// Query and KV heads of the calibration's decode attention at each head size: the
/// groupings of real models (SmolLM2, Llama 3, Gemma 3), since the kernels' cost per unit
/// depends on the group.
pub fn measured_heads(head_dim: u32) -> (u64, u64) {
    match head_dim {
        64 => (9, 3),
        128 => (8, 2),
        _ => (4, 1),
    }
}

/// f16 cache bytes per attention unit of the calibration's shape at `head_dim` (K and V,
/// 2 bytes each, per KV head, over the query heads that share it).
pub fn f16_bytes_per_unit(head_dim: u32) -> f64 {
    let (n_head, n_head_kv) = measured_heads(head_dim);
    4.0 * n_head_kv as f64 / n_head as f64
}

/// Bump when the measured figures change meaning: older files are measured again.
pub const CALIBRATION_VERSION: u32 = 7;

/// Row length (elements) of the matrices behind `matvec_gb_per_s`: a typical hidden size.
pub const MATVEC_ROW_ELEMENTS: u64 = 2048;
/// Row length of `matvec_short_rows_gb_per_s`: small models' hidden sizes (SmolLM2 576,
/// Gemma 3 270M 640), where each row's dot product has less to stream per fixed cost.
pub const MATVEC_SHORT_ROW_ELEMENTS: u64 = 512;

/// Cells of the prompt-attention measurements: every cache type and head size over the
/// first, f16 caches at head sizes 64 and 256 over the second too; their ratio grows a
/// prompt's attention cost with the cells each query sees.
pub const PROMPT_ATTN_CELLS: u64 = 512;
pub const LONG_PROMPT_ATTN_CELLS: u64 = 8192;

/// One figure per ggml type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TypeRate {
    /// ggml's type name (`q4_K`, `f16`).
    #[serde(rename = "type")]
    pub type_name: String,
    pub value: f64,
}

/// A decode step's weight rate at one working-set size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkingSetRate {
    pub working_set_bytes: u64,
    pub gb_per_s: f64,
}

/// Everything measured at one thread count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThreadRates {
    pub threads: u32,
    /// Matrix x vector (a decode step), GB of weights per second, working set
    /// `matvec_working_set_bytes`, each type in the buffer llama.cpp loads it into.
    pub matvec_gb_per_s: Vec<TypeRate>,
    pub matvec_working_set_bytes: u64,
    /// The same with rows of `MATVEC_SHORT_ROW_ELEMENTS` (matrices of the same bytes):
    /// rates for other row lengths are interpolated in log(row length).
    #[serde(default)]
    pub matvec_short_rows_gb_per_s: Vec<TypeRate>,
    /// How the matrix x vector rate of q8_0 changes with the bytes a step reads (caches,
    /// then memory): the other types scale by the same curve.
    pub working_set_curve: Vec<WorkingSetRate>,
    /// Matrix x 512-column batch (a prompt micro-batch), GFLOP/s.
    pub matmul_gflop_per_s: Vec<TypeRate>,
    /// Flash attention of one query token (decode), nanoseconds per query head x cached
    /// cell x head dimension, by cache type, at head size 64 and 128 and 256.
    pub attn_decode_ns: Vec<AttnRate>,
    /// Decode attention over many layers' caches at once (a long context: the cache comes
    /// from memory, not the CPU's caches), head size 128, by cache type; `ns` per unit.
    pub attn_decode_large_ns: Vec<AttnRate>,
    /// Flash attention of a prompt micro-batch, nanoseconds per query token x query head x
    /// visible cell x head dimension.
    pub attn_prompt_ns: Vec<AttnRate>,
    /// The same over `LONG_PROMPT_ATTN_CELLS` cells (f16 caches, head sizes 64 and 256).
    #[serde(default)]
    pub attn_prompt_long_ns: Vec<AttnRate>,
    /// Seconds per graph node that does almost nothing (thread wake-up and barrier).
    pub node_seconds: f64,
    /// Nanoseconds per vocabulary entry of a decode step's logits: the copy out of the
    /// graph and greedy sampling over all of them (llama.cpp's sampler).
    #[serde(default)]
    pub sampling_ns_per_token: f64,
    /// llama.cpp's own cost of a decode step beyond its kernels, per block and once per
    /// step (graph building and scheduling, each node's thread wake-up, the small
    /// operations), from the engine decoding a tiny model at two depths
    /// (`engine::step_probe`); 0 when not measured (then `node_seconds` stands in).
    #[serde(default)]
    pub engine_block_seconds: f64,
    #[serde(default)]
    pub engine_step_seconds: f64,
    /// The feed-forward activation per element, by function and row count
    /// (`ffn_activation`); empty before version 7.
    #[serde(default)]
    pub ffn_activation_ns: Vec<super::ffn_activation::ActivationRate>,
}

/// Attention cost at one cache type and head size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttnRate {
    #[serde(rename = "type")]
    pub type_name: String,
    pub head_dim: u32,
    pub ns: f64,
    /// Cache bytes the measurement read (K and V of every layer measured).
    pub cache_bytes: u64,
    /// Cache bytes of one of those layers (the long-context figures are measured with
    /// small and large layers); 0 where not recorded (calibrations before version 6).
    #[serde(default)]
    pub layer_cache_bytes: u64,
}

/// A machine's calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Calibration {
    pub version: u32,
    /// What it was measured on (CPU model, cores, RAM) and with (engine build): a cached
    /// calibration is used only when both still match.
    pub machine: String,
    pub engine: String,
    /// Unix seconds.
    pub measured_at: u64,
    /// `full` (`layerfit bench`) or `short` (measured by a plan that found none).
    pub kind: String,
    pub seconds_taken: f64,
    pub points: Vec<ThreadRates>,
    /// How far the passes of a figure lay from their median (a relative half-range, the
    /// median over the figures): part of the speed band (docs/speed.md). `None` after a
    /// single pass or from an older layerfit.
    #[serde(default)]
    pub spread: Option<f64>,
    /// The 1-minute load average when `bench` began (it measures only on a machine at rest,
    /// unless told to with `--busy-ok`).
    #[serde(default)]
    pub load_average: Option<f64>,
}

fn lookup(v: &[TypeRate], t: GgmlType) -> Option<f64> {
    v.iter()
        .find(|r| r.type_name == t.name())
        .map(|r| r.value)
        .filter(|x| x.is_finite() && *x > 0.0)
}

/// The measured type nearest in kernel and size when a type was not measured: k-quants
/// share kernels by family; everything else falls back to q8_0.
fn stand_in(t: GgmlType) -> GgmlType {
    use GgmlType as T;
    match t {
        T::Q2K
        | T::Q3K
        | T::Q5K
        | T::Iq2Xxs
        | T::Iq2Xs
        | T::Iq2S
        | T::Iq3Xxs
        | T::Iq3S
        | T::Iq1S
        | T::Iq1M => T::Q4K,
        T::Q5_1 | T::Iq4Nl | T::Iq4Xs => T::Q5_0,
        T::Bf16 | T::F32 => T::F16,
        _ => T::Q8_0,
    }
}

impl ThreadRates {
    /// Weight bytes per second of a decode step for `t` (rows of `row_elements`) when a
    /// step reads `working_set` bytes in all.
    pub fn matvec_bytes_per_s(
        &self,
        t: GgmlType,
        working_set: f64,
        row_elements: f64,
    ) -> Option<f64> {
        let v = &self.matvec_gb_per_s;
        let at_mid = lookup(v, t)
            .or_else(|| lookup(v, stand_in(t)))
            .or_else(|| lookup(v, GgmlType::Q8_0))?;
        let mid = self.matvec_working_set_bytes as f64;
        let mut scale = self.curve(working_set) / self.curve(mid);
        // Past the mid working set (twice a large L3) the weights stream from memory and a
        // larger set never streams faster: a curve point above the mid one is where two
        // buffers' pages happened to lie (10-20% between allocations on the bench machine,
        // docs/speed.md), not the memory, and would make every large model look fast.
        if working_set >= mid {
            scale = scale.min(1.0);
        }
        // The short-row ratio of this type's kernel, else of the kernel it borrows.
        let ratio = [t, stand_in(t), GgmlType::Q8_0].into_iter().find_map(|k| {
            let short = lookup(&self.matvec_short_rows_gb_per_s, k)?;
            Some(short / lookup(&self.matvec_gb_per_s, k)?)
        });
        let rows = match ratio {
            Some(ratio) => {
                let (lo, hi) = (
                    (MATVEC_SHORT_ROW_ELEMENTS as f64).ln(),
                    (MATVEC_ROW_ELEMENTS as f64).ln(),
                );
                let f = ((row_elements.max(1.0).ln() - lo) / (hi - lo)).clamp(0.0, 1.0);
                ratio * (1.0 - f) + f
            }
            None => 1.0,
        };
        Some(at_mid * 1e9 * if scale.is_finite() { scale } else { 1.0 } * rows)
    }

    /// Seconds a decode step spends on `n_vocab` logits (copy and greedy sampling).
    pub fn sampling_seconds(&self, n_vocab: f64) -> f64 {
        let ns = self.sampling_ns_per_token;
        if ns.is_finite() && ns > 0.0 {
            n_vocab * ns * 1e-9
        } else {
            0.0
        }
    }

    /// The working-set curve at `bytes`: linear in log(bytes) between measured sizes,
    /// flat beyond them.
    fn curve(&self, bytes: f64) -> f64 {
        let c = &self.working_set_curve;
        let (Some(first), Some(last)) = (c.first(), c.last()) else {
            return 1.0;
        };
        if bytes <= first.working_set_bytes as f64 {
            return first.gb_per_s;
        }
        if bytes >= last.working_set_bytes as f64 {
            return last.gb_per_s;
        }
        for w in c.windows(2) {
            let (a, b) = (w[0].working_set_bytes as f64, w[1].working_set_bytes as f64);
            if bytes <= b {
                let f = (bytes.ln() - a.ln()) / (b.ln() - a.ln());
                return w[0].gb_per_s + f * (w[1].gb_per_s - w[0].gb_per_s);
            }
        }
        last.gb_per_s
    }

    /// FLOP/s of a prompt micro-batch for weights of `t`.
    pub fn matmul_flops(&self, t: GgmlType) -> Option<f64> {
        lookup(&self.matmul_gflop_per_s, t)
            .or_else(|| lookup(&self.matmul_gflop_per_s, stand_in(t)))
            .or_else(|| lookup(&self.matmul_gflop_per_s, GgmlType::Q8_0))
            .map(|g| g * 1e9)
    }
}

impl Calibration {
    /// The figures at `threads`: the measured point with that count, else the nearest
    /// measured below it (more threads than measured never count as faster).
    pub fn at(&self, threads: u32) -> Option<&ThreadRates> {
        self.points
            .iter()
            .filter(|p| p.threads <= threads.max(1))
            .max_by_key(|p| p.threads)
            .or_else(|| self.points.iter().min_by_key(|p| p.threads))
    }
}
