//! How much of a machine's RAM a unified-memory GPU may use. On Apple silicon and on APUs the
//! GPU's memory is the machine's RAM: a described machine's `--ram` sets both, and the GPU's
//! share is a rule of the RAM size, stated here with its sources (docs/hardware.md).

use super::Vendor;
use crate::bytes::Bytes;

const GIB: u64 = 1 << 30;

/// Metal's default `recommendedMaxWorkingSetSize`, the most an Apple GPU may wire: two thirds
/// of RAM up to 32 GiB, three quarters above. Every figure is llama.cpp's own start-up line
/// (`ggml_metal_init: recommendedMaxWorkingSetSize`):
/// - 16 GiB: 10922.67 MiB = 2/3 (M1 Pro, abetlen/llama-cpp-python#687; the same 11453.25 MB
///   in later llama.cpp logs, which print 1e6-byte MB);
/// - 24 GiB: 17179.89 MB = 16 GiB = 2/3; 32 GiB: 21845.34 MiB = 2/3 (M1 Max,
///   ggml-org/llama.cpp#2011; M2 Max, ollama/ollama#434);
/// - 36 GiB: 28991.03 MB = 27.0 GiB = 3/4; 64 GiB: 49152.00 MiB = 3/4 (M1 Max,
///   ggml-org/llama.cpp#1870).
///
/// Newer chips and macOS versions give more (M3 16 GB: 11.84 GiB, AlexsJones/llmfit#754; an
/// M4's 12713.12 MB; M3 Pro 18 GB: 14302.25 MB; M5 Max 128 GB: 107.52 GiB, antirez/ds4#893),
/// never less: the rule is the floor every measured Mac reached, so a plan that fits it loads.
/// `sudo sysctl iogpu.wired_limit_mb=N` raises the limit; Metal then reports N (llmfit#754).
pub fn metal_working_set(ram_total: Bytes) -> Bytes {
    let t = ram_total.get();
    if t <= 32 * GIB {
        Bytes(t / 3 * 2)
    } else {
        Bytes(t / 4 * 3)
    }
}

/// What the Linux amdgpu/i915 drivers let an integrated GPU map by default: half of RAM (the
/// TTM `pages_limit` default; a 128 GB Strix Halo shows a 64 GB ROCm pool,
/// lhl/strix-halo-testing#4; "half of my RAM available for GTT ... is the default",
/// rjmalagon/ollama-linux-amd-apu#4). `ttm.pages_limit` raises it (96 GiB measured on a
/// 128 GB Strix Halo, noamsto/nix-amd-ai#42); describe the raised limit as `NAME:VRAM`.
pub fn gtt_default(ram_total: Bytes) -> Bytes {
    Bytes(ram_total.get() / 2)
}

/// The share of `ram_total` a unified GPU of this vendor may use by default, and the rule's
/// name for notes.
pub fn default_limit(vendor: Vendor, ram_total: Bytes) -> (Bytes, &'static str) {
    match vendor {
        Vendor::Apple => (
            metal_working_set(ram_total),
            "Metal's working set: 2/3 of RAM up to 32 GiB, 3/4 above; `sysctl iogpu.wired_limit_mb` raises it",
        ),
        _ => (
            gtt_default(ram_total),
            "the driver's default GTT limit: half of RAM; `ttm.pages_limit` raises it (describe it as NAME:VRAM)",
        ),
    }
}

/// `iogpu.wired_limit_mb` on this Mac: `Some(MiB)` when set (0 means "the default").
#[cfg(target_os = "macos")]
pub fn wired_limit_mb() -> Option<u64> {
    let out = std::process::Command::new("sysctl")
        .args(["-n", "iogpu.wired_limit_mb"])
        .output()
        .ok()?;
    parse_wired_limit(&String::from_utf8_lossy(&out.stdout))
}

/// No `iogpu` on other systems.
#[cfg(not(target_os = "macos"))]
pub fn wired_limit_mb() -> Option<u64> {
    None
}

/// `sysctl -n iogpu.wired_limit_mb` output: a positive number of MiB, or nothing (0 = unset).
pub fn parse_wired_limit(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gib(b: Bytes) -> f64 {
        b.get() as f64 / GIB as f64
    }

    #[test]
    fn the_working_set_is_the_measured_floor() {
        // 16 GiB: llama.cpp printed 10922.67 MiB on an M1 Pro.
        assert!((gib(metal_working_set(Bytes(16 * GIB))) * 1024.0 - 10922.67).abs() < 0.01);
        assert_eq!(metal_working_set(Bytes(24 * GIB)), Bytes(16 * GIB));
        assert!((gib(metal_working_set(Bytes(32 * GIB))) * 1024.0 - 21845.33).abs() < 0.01);
        assert!((gib(metal_working_set(Bytes(36 * GIB))) - 27.0).abs() < 1e-9);
        assert_eq!(metal_working_set(Bytes(64 * GIB)), Bytes(48 * GIB));
        // Never above what a newer Mac measured: M3 16 GB 11.84 GiB, M5 Max 128 GB 107.52 GiB.
        assert!(gib(metal_working_set(Bytes(16 * GIB))) < 11.84);
        assert!(gib(metal_working_set(Bytes(128 * GIB))) < 107.52);
    }

    #[test]
    fn apus_get_half_of_ram_by_default() {
        assert_eq!(gtt_default(Bytes(128 * GIB)), Bytes(64 * GIB));
        assert_eq!(
            default_limit(Vendor::Amd, Bytes(32 * GIB)).0,
            Bytes(16 * GIB)
        );
    }

    #[test]
    fn wired_limit_text() {
        assert_eq!(parse_wired_limit("14000\n"), Some(14000));
        assert_eq!(parse_wired_limit("0\n"), None);
        assert_eq!(parse_wired_limit(""), None);
    }
}
