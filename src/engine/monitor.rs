//! The memory monitor while generating: RAM through the probe's own cgroup-aware reader (a
//! 2 GiB container is a 2 GiB machine) and NVIDIA VRAM through NVML.

use crate::bytes::Bytes;

/// RAM or NVIDIA VRAM use at or above 95%: what is happening and what to do. VRAM is read
/// through NVML only when the plan put something on a GPU.
pub fn memory_alert(watch_vram: bool) -> Option<String> {
    if watch_vram {
        let mut notes = Vec::new();
        for g in crate::hardware::nvidia::probe(&mut notes) {
            let total = g.vram_total_bytes.get().max(1) as f64;
            let used = 1.0 - g.vram_free_bytes.get() as f64 / total;
            if used >= 0.95 {
                return Some(format!(
                    "VRAM on {} is {:.0}% used: close other GPU programs now, or restart with a smaller plan (the context is not lowered automatically)",
                    g.name,
                    used * 100.0
                ));
            }
        }
    }
    // The probe's reader: a container's cgroup limit counts, not the host's RAM.
    let ram = crate::hardware::ram::read(
        std::path::Path::new(crate::hardware::ram::CGROUP_ROOT),
        &mut Vec::new(),
    );
    if ram.total_bytes == Bytes::ZERO {
        return None;
    }
    let used = 1.0 - ram.available_bytes.get() as f64 / ram.total_bytes.get() as f64;
    (used >= 0.95).then(|| {
        format!(
            "RAM is {:.0}% used: close other programs now, or restart with a smaller plan (the context is not lowered automatically)",
            used * 100.0
        )
    })
}

/// This process's resident memory (`VmRSS`), in bytes.
pub fn resident_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// This process's peak resident memory (`VmHWM`), in bytes.
pub fn peak_resident_bytes() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// A `kB` figure of `/proc/self/status`, in bytes.
fn status_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}
