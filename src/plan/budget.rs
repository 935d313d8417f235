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

impl Budgets {
    pub fn from_snapshot(s: &Snapshot, req: &Requirements) -> Budgets {
        let total = s.ram.total_bytes.get();
        let os = ((total as f64 * RAM_RESERVE_FRACTION) as u64).clamp(512 << 20, 2 << 30);
        let ram = s
            .ram
            .available_bytes
            .saturating_sub(Bytes(os))
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
                    // budget is the RAM budget and its use is charged to RAM.
                    ram.min(g.vram_free_bytes.max(g.vram_total_bytes))
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
