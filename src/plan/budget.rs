//! How much of each device a plan may use.

use super::Requirements;
use crate::bytes::Bytes;
use crate::hardware::Snapshot;

/// Kept free on every GPU for the driver's context and fragmentation (a CUDA context alone
/// takes a few hundred MiB outside what NVML reports as used).
pub const VRAM_MARGIN: Bytes = Bytes(512 << 20);
/// Kept free in RAM for the operating system: this fraction of total RAM, at least
/// [`RAM_RESERVE_MIN`] and at most [`RAM_RESERVE_MAX`], and never more than
/// [`RAM_RESERVE_MAX_SHARE`] of the machine (docs/hardware.md, "The OS reserve").
pub const RAM_RESERVE_FRACTION: f64 = 0.10;
/// The reserve of a desktop-sized machine (2 GiB of RAM and more).
pub const RAM_RESERVE_MIN: Bytes = Bytes(512 << 20);
pub const RAM_RESERVE_MAX: Bytes = Bytes(2 << 30);
/// A small machine keeps a quarter of its RAM: a headless 64-bit Raspberry Pi OS Lite
/// (Bookworm) on a 512 MB Pi Zero 2 W uses 125.4 MiB after boot (103.1 MiB for the 32-bit
/// image; `top`, docs.printercow.com/guide/32bit-vs-64bit.html), and a quarter of 512 MiB is
/// 128 MiB. The share meets the 512 MiB floor at 2 GiB, so larger machines are unchanged.
pub const RAM_RESERVE_MAX_SHARE: f64 = 0.25;

#[derive(Clone, Debug, PartialEq)]
pub struct Budgets {
    /// Per GPU (dedicated memory only; unified-memory GPUs draw on `ram`).
    pub gpus: Vec<(String, Bytes, bool)>,
    pub ram: Bytes,
}

/// RAM kept for the operating system out of `total`: the same rule for every machine,
/// probed, described by a file, by flags or by a profile's `target:`.
pub fn os_reserve(total: Bytes) -> Bytes {
    let t = total.get() as f64;
    let scaled =
        ((t * RAM_RESERVE_FRACTION) as u64).clamp(RAM_RESERVE_MIN.get(), RAM_RESERVE_MAX.get());
    Bytes(scaled.min((t * RAM_RESERVE_MAX_SHARE) as u64))
}

impl Budgets {
    pub fn from_snapshot(s: &Snapshot, req: &Requirements) -> Budgets {
        let ram = s
            .ram
            .available_bytes
            .saturating_sub(os_reserve(s.ram.total_bytes))
            .saturating_sub(req.app_reserve)
            .saturating_sub(req.held.ram);
        let ram = match req.ram_limit {
            Some(limit) => ram.min(limit),
            None => ram,
        };
        let gpus = s
            .gpus
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let held = req.held.gpus.get(i).copied().unwrap_or(Bytes::ZERO);
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
                        ram.min(own.saturating_sub(held))
                    } else {
                        ram
                    }
                } else if g.remote.is_some() {
                    // What the server offers (`layerfit rpc-server` already keeps its own
                    // host's reserve out of it; docs/rpc.md).
                    g.vram_free_bytes
                        .saturating_sub(req.vram_reserve)
                        .saturating_sub(held)
                } else {
                    g.vram_free_bytes
                        .saturating_sub(VRAM_MARGIN)
                        .saturating_sub(req.vram_reserve)
                        .saturating_sub(held)
                };
                (g.name.clone(), b, g.unified_memory)
            })
            .collect();
        Budgets { gpus, ram }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_os_reserve_scales_with_the_machine() {
        // Small machines keep a quarter: 512 MiB leaves 384 MiB, not nothing.
        assert_eq!(os_reserve(Bytes(512 * MIB)), Bytes(128 * MIB));
        assert_eq!(os_reserve(Bytes(1024 * MIB)), Bytes(256 * MIB));
        // From 2 GiB on: 10%, at least 512 MiB, at most 2 GiB (as before).
        assert_eq!(os_reserve(Bytes(2048 * MIB)), Bytes(512 * MIB));
        assert_eq!(os_reserve(Bytes(4096 * MIB)), Bytes(512 * MIB));
        assert_eq!(os_reserve(Bytes(16 << 30)), Bytes((16u64 << 30) / 10));
        assert_eq!(os_reserve(Bytes(64 << 30)), Bytes(2 << 30));
        // Never more than the machine, never a cliff between sizes.
        let mut last = Bytes::ZERO;
        for mib in (64..=65536).step_by(64) {
            let r = os_reserve(Bytes(mib * MIB));
            assert!(r < Bytes(mib * MIB) && r >= last, "{mib} MiB: {r}");
            last = r;
        }
    }
}
