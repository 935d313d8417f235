//! How much of each device a plan may use.

use super::Requirements;
use crate::bytes::Bytes;
use crate::hardware::{Snapshot, Vendor};

/// Metal's `recommendedMaxWorkingSetSize`, the most an Apple GPU may wire by default: about
/// three quarters of RAM, and all but about 20.5 GiB on large machines. Measured: M3 16 GB
/// 11.84 GB (AlexsJones/llmfit PR #754), M5 Max 128 GB 107.52 GiB (antirez/ds4 PR #893);
/// gpustack reads it as 75% of RAM (gpustack/gpustack issue #1375). `iogpu.wired_limit_mb`
/// raises it; a described GPU's `vram` states the limit explicitly.
pub fn metal_working_set(ram_total: Bytes) -> Bytes {
    let t = ram_total.get();
    Bytes(((t as f64 * 0.75) as u64).max(t.saturating_sub(20 * (1 << 30) + (1 << 29))))
}

/// Kept free on every GPU for the driver's context and fragmentation (a CUDA context alone
/// takes a few hundred MiB outside what NVML reports as used).
pub const VRAM_MARGIN: Bytes = Bytes(512 << 20);
/// Kept free in RAM for the operating system: this fraction of total RAM, at least 512 MiB
/// and at most 2 GiB.
pub const RAM_RESERVE_FRACTION: f64 = 0.10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metal_working_set_matches_the_measurements() {
        let gib = |g: f64| Bytes((g * (1u64 << 30) as f64) as u64);
        // M3 16 GB: 11.84 GB measured (11.03 GiB); three quarters is 12 GiB.
        let m3 = metal_working_set(gib(16.0)).get() as f64 / (1u64 << 30) as f64;
        assert!((m3 - 12.0).abs() < 1.0, "{m3}");
        let m5 = metal_working_set(gib(128.0)).get() as f64 / (1u64 << 30) as f64;
        assert!((m5 - 107.52).abs() < 0.1, "{m5}");
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Budgets {
    /// Per GPU (dedicated memory only; unified-memory GPUs draw on `ram`).
    pub gpus: Vec<(String, Bytes, bool)>,
    pub ram: Bytes,
}

/// RAM kept for the operating system out of `total`.
pub fn os_reserve(total: Bytes) -> Bytes {
    Bytes(((total.get() as f64 * RAM_RESERVE_FRACTION) as u64).clamp(512 << 20, 2 << 30))
}

impl Budgets {
    pub fn from_snapshot(s: &Snapshot, req: &Requirements) -> Budgets {
        let ram = s
            .ram
            .available_bytes
            .saturating_sub(os_reserve(s.ram.total_bytes))
            .saturating_sub(req.app_reserve);
        let ram = match req.ram_limit {
            Some(limit) => ram.min(limit),
            None => ram,
        };
        let gpus = s
            .gpus
            .iter()
            .map(|g| {
                let b = if g.unified_memory {
                    // Shares RAM: the same bytes must not be counted twice, so the GPU's
                    // budget is the RAM budget and its use is charged to RAM. An iGPU without
                    // VRAM files (i915) reports 0 B: it draws on RAM alone. Apple GPUs may
                    // wire only Metal's working set.
                    let own = g.vram_free_bytes.max(g.vram_total_bytes);
                    let mut b = if own > Bytes::ZERO { ram.min(own) } else { ram };
                    if g.vendor == Vendor::Apple {
                        b = b.min(metal_working_set(s.ram.total_bytes));
                    }
                    b
                } else if g.remote.is_some() {
                    // What the server offers (`layerfit rpc-server` already keeps its own
                    // host's reserve out of it; docs/rpc.md).
                    g.vram_free_bytes.saturating_sub(req.vram_reserve)
                } else {
                    g.vram_free_bytes
                        .saturating_sub(VRAM_MARGIN)
                        .saturating_sub(req.vram_reserve)
                };
                (g.name.clone(), b, g.unified_memory)
            })
            .collect();
        Budgets { gpus, ram }
    }
}
