//! How much of each device a plan may use.

use super::Requirements;
use crate::bytes::Bytes;
use crate::hardware::backend::Backend;
use crate::hardware::{Gpu, Snapshot};

/// Kept free on every local discrete GPU besides its back-end reserve
/// ([`backend_reserve`]): for what the back-end allocates while it runs, outside llama.cpp's
/// buffers and outside its context (ggml-cuda's pool of temporary buffers, CUDA graphs,
/// ggml-vulkan's scratch buffers sized at the first graph), and for fragmentation. llama.cpp's
/// own fitter keeps 1024 MiB for the same purpose and for other programs, above a free figure
/// it reads after the context exists (`fit_params_target` in the vendored `common/common.h`;
/// docs/hardware.md, "Back-end reserves").
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

/// What a plan may put on one GPU, and what its budget keeps for the back-end.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuBudget {
    pub name: String,
    pub budget: Bytes,
    /// Shares RAM (Apple silicon, APUs, software devices): what the plan puts on it, and its
    /// back-end reserve, are charged to the RAM budget.
    pub unified: bool,
    pub backend: Backend,
    /// The back-end reserve kept out of `budget` ([`backend_reserve`]).
    pub backend_reserve: Bytes,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Budgets {
    /// Per GPU, in the snapshot's order.
    pub gpus: Vec<GpuBudget>,
    pub ram: Bytes,
}

/// The back-end reserve a GPU's budget keeps: what its back-end's context takes on the
/// device before any llama.cpp buffer (`hardware::backend`), once. A free figure read after
/// the context existed (the engine's CUDA or HIP query, an RPC server's offer:
/// `free_excludes_context`) already lacks it, so nothing more is kept.
pub fn backend_reserve(g: &Gpu) -> Bytes {
    if g.free_excludes_context {
        Bytes::ZERO
    } else {
        Backend::of(g).reserve()
    }
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
                let reserve = backend_reserve(g);
                let budget = if g.unified_memory {
                    // Shares RAM: the same bytes must not be counted twice, so the GPU's
                    // budget is at most the RAM budget and its use is charged to RAM (the
                    // CPU side gets what remains). What the GPU may use of that RAM is its
                    // free memory: Metal's working set on Apple silicon (as the engine reports
                    // it, or `hardware::unified` for a described Mac), the driver's GTT limit
                    // on an APU. An iGPU without VRAM files (i915) reports 0 B: it draws on
                    // RAM alone. The back-end's context comes out of the same memory.
                    let own = if g.vram_free_bytes > Bytes::ZERO {
                        g.vram_free_bytes
                    } else {
                        g.vram_total_bytes
                    };
                    let share = if own > Bytes::ZERO {
                        ram.min(own.saturating_sub(held))
                    } else {
                        ram
                    };
                    share.saturating_sub(reserve)
                } else if g.remote.is_some() {
                    // What the server offers, read by its running back-end (no reserve left to
                    // keep; `layerfit rpc-server` keeps its own host's OS reserve: docs/rpc.md).
                    g.vram_free_bytes
                        .saturating_sub(reserve)
                        .saturating_sub(req.vram_reserve)
                        .saturating_sub(held)
                } else {
                    g.vram_free_bytes
                        .saturating_sub(reserve)
                        .saturating_sub(VRAM_MARGIN)
                        .saturating_sub(req.vram_reserve)
                        .saturating_sub(held)
                };
                GpuBudget {
                    name: g.name.clone(),
                    budget,
                    unified: g.unified_memory,
                    backend: Backend::of(g),
                    backend_reserve: reserve,
                }
            })
            .collect();
        Budgets { gpus, ram }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::whatif::{describe, parse_description};

    const MIB: u64 = 1 << 20;

    /// A described 32 GiB machine with these GPUs (from the GPU table or `NAME:VRAM`).
    fn machine(gpus: &str) -> Snapshot {
        let d = parse_description(&format!("ram: 32G\ngpus:\n{gpus}")).unwrap();
        describe(&d, "flags", crate::hardware::target::unknown_cpu()).unwrap()
    }

    fn gpu_budget(s: &Snapshot) -> GpuBudget {
        Budgets::from_snapshot(s, &Requirements::default()).gpus[0].clone()
    }

    #[test]
    fn a_described_gpu_keeps_its_backends_reserve_and_the_margin() {
        // RTX 4060: 8 GiB, driven by CUDA (what install.sh builds for NVIDIA).
        let s = machine("  - name: RTX 4060\n");
        let b = gpu_budget(&s);
        assert_eq!(b.backend, Backend::Cuda);
        assert_eq!(b.backend_reserve, Bytes(457 * MIB));
        assert_eq!(b.budget, Bytes((8192 - 457 - 512) * MIB));
        // A Radeon on ROCm keeps the same, an Arc on Vulkan nothing but the margin.
        let b = gpu_budget(&machine("  - name: RX 7600\n"));
        assert_eq!(
            (b.backend, b.backend_reserve),
            (Backend::Rocm, Bytes(457 * MIB))
        );
        let arc = machine("  - name: Arc A770\n");
        let b = gpu_budget(&arc);
        assert_eq!(
            (b.backend, b.backend_reserve),
            (Backend::Vulkan, Bytes::ZERO)
        );
        assert_eq!(
            b.budget,
            arc.gpus[0].vram_free_bytes.saturating_sub(VRAM_MARGIN)
        );
        // A profile's `vram_reserve` comes on top.
        let req = Requirements {
            vram_reserve: Bytes(1024 * MIB),
            ..Requirements::default()
        };
        let b = &Budgets::from_snapshot(&s, &req).gpus[0];
        assert_eq!(b.budget, Bytes((8192 - 457 - 512 - 1024) * MIB));
    }

    #[test]
    fn a_free_figure_read_after_the_context_is_not_charged_twice() {
        let mut s = machine("  - name: RTX 4060\n");
        let g = &mut s.gpus[0];
        g.engine_device = Some("CUDA0".into());
        g.vram_free_bytes = Bytes(7600 * MIB);
        // Read by NVML before the engine's context existed: the reserve is kept.
        assert_eq!(gpu_budget(&s).budget, Bytes((7600 - 457 - 512) * MIB));
        // Read by the engine (cudaMemGetInfo after cudaSetDevice): already out of it.
        s.gpus[0].free_excludes_context = true;
        let b = gpu_budget(&s);
        assert_eq!(b.backend_reserve, Bytes::ZERO);
        assert_eq!(b.budget, Bytes((7600 - 512) * MIB));
        assert_eq!(backend_reserve(&s.gpus[0]), Bytes::ZERO);
    }

    #[test]
    fn a_unified_gpu_keeps_its_reserve_out_of_its_share_of_ram() {
        // Apple M2 with 16 GiB: Metal's working set is 2/3 of RAM; Metal keeps 512 MiB of it.
        let d = parse_description("ram: 16G\ngpus:\n  - name: Apple M2\n").unwrap();
        let s = describe(&d, "flags", crate::hardware::target::unknown_cpu()).unwrap();
        let b = gpu_budget(&s);
        assert!(b.unified);
        assert_eq!(b.backend, Backend::Metal);
        let working_set = crate::hardware::unified::metal_working_set(Bytes(16 << 30));
        assert_eq!(b.budget, working_set.saturating_sub(Bytes(512 * MIB)));
    }

    #[test]
    fn a_remote_device_is_budgeted_at_its_servers_offer() {
        // A described server offers what its running back-end reads: the context is out.
        let d = parse_description(
            "ram: 16G\nrpc:\n  - endpoint: 10.0.0.2:50052\n    devices:\n      - {name: RTX 3090, memory: 24G, memory_free: 20G}\n",
        )
        .unwrap();
        let s = describe(&d, "flags", crate::hardware::target::unknown_cpu()).unwrap();
        assert!(s.gpus[0].free_excludes_context);
        let b = gpu_budget(&s);
        assert_eq!((b.backend, b.backend_reserve), (Backend::Rpc, Bytes::ZERO));
        assert_eq!(b.budget, Bytes(20 << 30));
    }

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
