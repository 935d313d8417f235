//! How much of each device a plan may use.

use super::Requirements;
use crate::bytes::Bytes;
use crate::hardware::Snapshot;

/// Kept free on every GPU for the driver's context and fragmentation (a CUDA context alone
/// takes a few hundred MiB outside what NVML reports as used).
pub const VRAM_MARGIN: Bytes = Bytes(512 << 20);
/// Kept free in RAM for the operating system: this fraction of total RAM, at least 512 MiB
/// and at most 2 GiB.
pub const RAM_RESERVE_FRACTION: f64 = 0.10;

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
                    // budget is at most the RAM budget and its use is charged to RAM (the
                    // CPU side gets what remains). What the GPU may use of that RAM is its
                    // free memory: Metal's working set on Apple silicon (as the engine reports
                    // it, or `hardware::unified` for a described Mac), the driver's GTT limit
                    // on an APU. An iGPU without VRAM files (i915) reports 0 B: it draws on
                    // RAM alone.
                    let own = if g.vram_free_bytes > Bytes::ZERO {
                        g.vram_free_bytes
                    } else {
                        g.vram_total_bytes
                    };
                    if own > Bytes::ZERO {
                        ram.min(own)
                    } else {
                        ram
                    }
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
