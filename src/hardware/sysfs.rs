//! AMD and Intel GPUs from the Linux DRM sysfs tree (`/sys/class/drm/cardN/device`).
//! amdgpu exposes `mem_info_vram_total`/`_used` and the GTT (system memory it may map);
//! i915/xe expose no dedicated memory for integrated parts, which share system RAM.

use super::{Gpu, Vendor};
use crate::bytes::Bytes;
use std::path::Path;

const PCI_AMD: &str = "0x1002";
const PCI_INTEL: &str = "0x8086";
/// An AMD device with less dedicated VRAM than this and a GTT is an APU whose "VRAM" is a
/// BIOS carve-out of system RAM.
const APU_CARVEOUT_MAX: u64 = 2 << 30;

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Scans `root/class/drm/card*/device` (root is `/sys` normally, a fixture tree in tests).
pub fn probe(root: &Path, notes: &mut Vec<String>) -> Vec<Gpu> {
    let drm = root.join("class/drm");
    let Ok(entries) = std::fs::read_dir(&drm) else {
        return Vec::new();
    };
    let mut cards: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("card") && n[4..].chars().all(|c| c.is_ascii_digit()) && n.len() > 4
        })
        .collect();
    cards.sort();
    let mut gpus = Vec::new();
    for card in cards {
        let dev = drm.join(&card).join("device");
        let vendor = std::fs::read_to_string(dev.join("vendor")).unwrap_or_default();
        let device = std::fs::read_to_string(dev.join("device")).unwrap_or_default();
        let name = std::fs::read_to_string(dev.join("product_name"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        match vendor.trim() {
            PCI_AMD => {
                let Some(total) = read_u64(&dev.join("mem_info_vram_total")) else {
                    notes.push(format!(
                        "{card}: AMD GPU without mem_info_vram_total (amdgpu driver not loaded?)"
                    ));
                    continue;
                };
                let used = read_u64(&dev.join("mem_info_vram_used")).unwrap_or(0);
                let gtt = read_u64(&dev.join("mem_info_gtt_total"));
                let unified = total < APU_CARVEOUT_MAX && gtt.is_some();
                gpus.push(Gpu {
                    unified_memory: unified,
                    driver: Some("amdgpu".into()),
                    ..Gpu::new(
                        name.unwrap_or_else(|| format!("AMD GPU {}", device.trim())),
                        Vendor::Amd,
                        Bytes(total),
                        Bytes(total.saturating_sub(used)),
                        "sysfs",
                    )
                });
                if unified {
                    notes.push(format!(
                        "{card}: integrated AMD GPU ({} carve-out, GTT {}): budgeted from system RAM",
                        Bytes(total),
                        Bytes(gtt.unwrap_or(0))
                    ));
                }
            }
            PCI_INTEL => {
                // Discrete Arc cards on the xe driver expose VRAM; integrated parts share RAM.
                let total = read_u64(&dev.join("mem_info_vram_total"));
                let used = read_u64(&dev.join("mem_info_vram_used")).unwrap_or(0);
                gpus.push(Gpu {
                    unified_memory: total.is_none(),
                    ..Gpu::new(
                        name.unwrap_or_else(|| format!("Intel GPU {}", device.trim())),
                        Vendor::Intel,
                        Bytes(total.unwrap_or(0)),
                        Bytes(total.unwrap_or(0).saturating_sub(used)),
                        "sysfs",
                    )
                });
            }
            _ => {}
        }
    }
    gpus
}
