//! The calibration's attention figures at a model's shape: a decode step's attention per
//! cache type and head size, slowed by the step's bytes and the layer's size, and a prompt
//! batch's, grown by the cells its queries see.

use super::calibration::{
    f16_bytes_per_unit, AttnRate, ThreadRates, LONG_PROMPT_ATTN_CELLS, PROMPT_ATTN_CELLS,
};
use crate::ggml_type::GgmlType;

/// A usable f16 figure: the growth figures (long contexts, long prompts) are measured over
/// f16 caches only, and other cache types borrow their ratios.
fn measured_f16(r: &AttnRate) -> bool {
    r.type_name == "f16" && r.ns.is_finite() && r.ns > 0.0
}

impl ThreadRates {
    /// Seconds per unit of decode attention at cache type `kv` and `head_dim` when a step
    /// reads `step_bytes` in all (weights and cache: both pass through the CPU's caches), the
    /// layer `layer_bytes` of cache, and `bytes_per_unit` of cache per unit: the in-cache
    /// figure plus a stall per cache byte read, growing with the step's bytes (linear in
    /// log bytes between the in-cache and the long-context measurements' sizes) up to what
    /// the long-context figures of the nearest measured head sizes give (f16 caches at head
    /// sizes 64 and 128; linear between). Why the step's bytes and not the cache's alone:
    /// a model's weights stream through the CPU's caches between two layers' attention, so
    /// even a small cache comes from memory (SmolLM2 at 512 cells, 12 MB of cache in 108 MB
    /// a step: 0.55 ns a unit at 1 thread against 0.36 in cache). The stall per byte depends on the layer's size, linear in log bytes between
    /// the long-context figures measured over layers of 2048 and 16384 cells. Why per head
    /// size: at 16K cells head size 64 (SmolLM2) ran 1.8-2.3x its in-cache figure where head
    /// size 128 ran 1.6x. Why per layer size: a layer's K and V, read once per query head
    /// that shares them, stay in the core's own cache while the layer is small: SmolLM2's
    /// attention at 2000 cells (1.5 MB a layer, 46 MB in all) cost 0.55 ns a unit at 1
    /// thread where the 16384-cell figure (12.6 MB layers) gave 0.83 and the model 0.75.
    /// Why a stall per byte: other cache types and query groupings read other bytes per
    /// unit (q8_0 about half of f16).
    pub fn attn_decode_seconds(
        &self,
        kv: GgmlType,
        head_dim: u32,
        step_bytes: f64,
        bytes_per_unit: f64,
        layer_bytes: f64,
    ) -> Option<f64> {
        let hot = self.attn_seconds(kv, head_dim, false)?;
        let mut dims: Vec<u32> = self
            .attn_decode_large_ns
            .iter()
            .filter(|r| measured_f16(r))
            .map(|r| r.head_dim)
            .collect();
        dims.sort_unstable();
        dims.dedup();
        // Per head size: stall seconds per cache byte at this layer size, in-cache bytes,
        // long-context bytes.
        let stalls: Vec<(u32, [f64; 3])> = dims
            .into_iter()
            .filter_map(|d| {
                let cached = self
                    .attn_decode_ns
                    .iter()
                    .filter(|r| measured_f16(r))
                    .find(|r| r.head_dim == d)?;
                let per_unit = f16_bytes_per_unit(d);
                // (layer bytes, stall per byte, bytes in all), smallest layers first.
                let mut points: Vec<(f64, f64, f64)> = self
                    .attn_decode_large_ns
                    .iter()
                    .filter(|r| measured_f16(r))
                    .filter(|r| r.head_dim == d)
                    .map(|r| {
                        (
                            r.layer_cache_bytes as f64,
                            (r.ns - cached.ns).max(0.0) * 1e-9 / per_unit,
                            r.cache_bytes as f64,
                        )
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let (small, large) = (*points.first()?, *points.last()?);
                let per_byte = if small.0 > 0.0 && large.0 > small.0 {
                    let f = ((layer_bytes.max(1.0).ln() - small.0.ln())
                        / (large.0.ln() - small.0.ln()))
                    .clamp(0.0, 1.0);
                    small.1 + f * (large.1 - small.1)
                } else {
                    large.1
                };
                Some((
                    d,
                    [per_byte, cached.cache_bytes as f64, small.2.min(large.2)],
                ))
            })
            .collect();
        let Some([per_byte, lo, hi]) = at_head_dim(&stalls, head_dim) else {
            return Some(hot);
        };
        if hi <= lo || lo <= 0.0 {
            return Some(hot);
        }
        let f = ((step_bytes.max(1.0).ln() - lo.ln()) / (hi.ln() - lo.ln())).clamp(0.0, 1.0);
        Some(hot + per_byte * bytes_per_unit.max(0.0) * f)
    }

    /// Seconds per unit of a prompt batch's attention at cache type `kv` and `head_dim` when
    /// its queries see `cells` cells on average: the figure over `PROMPT_ATTN_CELLS` grown by
    /// the measured long-to-short ratio of f16 caches at the nearest head sizes (linear
    /// between them), linear in log(cells) from 512 to 8192 cells and on to 1.5 times that
    /// growth (32768 cells), never below the short figure. Why: over 16384 cells SmolLM2's
    /// prompt ran its attention at 0.136 ns a unit (1 thread) against 0.079-0.088 over 512;
    /// ggml's kernel alone, head size 64: 0.079 over 512 cells, 0.084-0.090 over 2048,
    /// 0.100-0.129 over 8192, 0.145 over 16384; head size 256 stayed at 0.071-0.084.
    pub fn attn_prompt_seconds(&self, kv: GgmlType, head_dim: u32, cells: f64) -> Option<f64> {
        let short = self.attn_seconds(kv, head_dim, true)?;
        let ratios: Vec<(u32, [f64; 1])> = self
            .attn_prompt_long_ns
            .iter()
            .filter(|r| measured_f16(r))
            .filter_map(|long| {
                let at_short = self
                    .attn_prompt_ns
                    .iter()
                    .filter(|r| measured_f16(r))
                    .find(|r| r.head_dim == long.head_dim)?;
                Some((long.head_dim, [(long.ns / at_short.ns).max(1.0)]))
            })
            .collect();
        let Some([ratio]) = at_head_dim(&ratios, head_dim) else {
            return Some(short);
        };
        let span = (LONG_PROMPT_ATTN_CELLS as f64 / PROMPT_ATTN_CELLS as f64).log2();
        let g = ((cells.max(1.0) / PROMPT_ATTN_CELLS as f64).log2() / span).clamp(0.0, 1.5);
        Some(short * (1.0 + (ratio - 1.0) * g))
    }

    /// Seconds per unit of attention work at cache type `kv` and `head_dim`, for a decode
    /// step (`prompt` false, caches in the CPU's caches) or a prompt batch: linear between
    /// the measured head sizes.
    pub fn attn_seconds(&self, kv: GgmlType, head_dim: u32, prompt: bool) -> Option<f64> {
        let rows: Vec<(u32, [f64; 1])> = if prompt {
            &self.attn_prompt_ns
        } else {
            &self.attn_decode_ns
        }
        .iter()
        .filter(|r| r.type_name == kv.name() && r.ns.is_finite() && r.ns > 0.0)
        .map(|r| (r.head_dim, [r.ns]))
        .collect();
        at_head_dim(&rows, head_dim).map(|[ns]| ns * 1e-9)
    }
}

/// Figures measured at some head sizes, at `head_dim`: linear between the nearest measured
/// below and above, the nearest one outside them.
fn at_head_dim<const N: usize>(points: &[(u32, [f64; N])], head_dim: u32) -> Option<[f64; N]> {
    let below = points
        .iter()
        .filter(|p| p.0 <= head_dim)
        .max_by_key(|p| p.0);
    let above = points
        .iter()
        .filter(|p| p.0 >= head_dim)
        .min_by_key(|p| p.0);
    match (below, above) {
        (Some(a), Some(b)) if a.0 != b.0 => {
            let f = (head_dim - a.0) as f64 / (b.0 - a.0) as f64;
            Some(std::array::from_fn(|i| a.1[i] + f * (b.1[i] - a.1[i])))
        }
        (Some(a), _) | (None, Some(a)) => Some(a.1),
        (None, None) => None,
    }
}
