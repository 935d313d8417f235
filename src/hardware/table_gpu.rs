//! A `Gpu` from what a person wrote: a table row (`--gpu "RTX 4060"`), a row with its memory
//! stated (`--gpu "Radeon 890M:16G"`), or any other GPU by name and memory (`--gpu
//! "Voodoo 9:12G"`), whose bandwidth and compute are then unknown: left empty, so the plan
//! says its speed is rough and what it assumed, as for any GPU without figures.

use super::gpu_table::GpuSpec;
use super::size::{parse_nonzero_size, SizeError};
use super::unified::default_limit;
use super::{Gpu, Vendor};
use crate::bytes::Bytes;

/// `NAME` or `NAME:VRAM` as given to `--gpu`.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuArg {
    pub name: String,
    pub vram: Option<u64>,
}

/// Splits `NAME:VRAM` at the last colon when what follows reads as a size; a name with a
/// colon and no size after it stays whole.
pub fn parse_gpu_arg(s: &str) -> Result<GpuArg, SizeError> {
    if let Some((name, vram)) = s.rsplit_once(':') {
        let vram = vram.trim();
        if vram.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
            return Ok(GpuArg {
                name: name.trim().to_string(),
                vram: Some(parse_nonzero_size(vram)?),
            });
        }
    }
    Ok(GpuArg {
        name: s.trim().to_string(),
        vram: None,
    })
}

/// The vendor a name suggests (for GPUs outside the table).
pub fn vendor_of_name(name: &str) -> Vendor {
    let n = name.to_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| n.contains(x));
    if has(&["nvidia", "geforce", "rtx", "gtx", "quadro", "tesla"]) {
        Vendor::Nvidia
    } else if has(&["amd", "radeon", "instinct", " rx "]) || n.starts_with("rx ") {
        Vendor::Amd
    } else if has(&["intel", "arc "]) {
        Vendor::Intel
    } else if has(&["apple"]) {
        Vendor::Apple
    } else {
        Vendor::Other
    }
}

/// A table row as a GPU. A discrete row has its card's memory; a unified row starts with
/// none until [`size_unified`] gives it the machine's RAM.
pub fn from_spec(spec: &GpuSpec) -> Gpu {
    let vram = Bytes(
        spec.vram_gib
            .map_or(0, |g| (g * (1u64 << 30) as f64) as u64),
    );
    let mut g = Gpu::new(spec.name.clone(), spec.vendor, vram, vram, "gpu table");
    g.unified_memory = spec.unified_memory;
    g.bandwidth_gbps = spec.bandwidth_gbps;
    g.fp16_tflops = spec.fp16_tflops;
    g.precision_class = spec
        .compute_capability
        .as_deref()
        .and_then(super::precision_class);
    g.compute_capability = spec.compute_capability.clone();
    g.architecture = spec.architecture.clone();
    g
}

/// A GPU outside the table, known by name and memory only.
pub fn unknown(name: &str, vram: u64) -> Gpu {
    Gpu::new(
        name.to_string(),
        vendor_of_name(name),
        Bytes(vram),
        Bytes(vram),
        "described",
    )
}

/// Gives a unified-memory GPU the machine's RAM as its memory and, as what it may use, the
/// platform's default share of it; says so in `notes`.
pub fn size_unified(g: &mut Gpu, ram_total: Bytes, notes: &mut Vec<String>) {
    let (limit, rule) = default_limit(g.vendor, ram_total);
    g.vram_total_bytes = ram_total;
    g.vram_free_bytes = limit;
    notes.retain(|n| !n.starts_with(&format!("{}: unified memory", g.name)));
    notes.push(format!(
        "{}: unified memory: the GPU may use {limit} of the machine's {ram_total} ({rule})",
        g.name
    ));
}

/// States a GPU's memory explicitly (`NAME:VRAM`, a description's `vram`): for a unified GPU
/// it is the share of RAM the GPU may use (a raised `iogpu.wired_limit_mb` or GTT limit).
pub fn set_vram(g: &mut Gpu, v: u64) {
    g.vram_total_bytes = Bytes(v);
    g.vram_free_bytes = Bytes(v);
    if g.source == "gpu table" {
        g.source = "gpu table + vram".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_vram_split_at_the_last_colon() {
        assert_eq!(
            parse_gpu_arg("Radeon 890M:16G").unwrap(),
            GpuArg {
                name: "Radeon 890M".into(),
                vram: Some(16 << 30)
            }
        );
        assert_eq!(parse_gpu_arg("RTX 4060").unwrap().vram, None);
        assert_eq!(parse_gpu_arg("Odd:Name").unwrap().name, "Odd:Name");
        assert!(parse_gpu_arg("X:0G").is_err());
        assert!(parse_gpu_arg("X:12").is_err());
    }

    #[test]
    fn vendors_from_names() {
        assert_eq!(vendor_of_name("GeForce RTX 9090"), Vendor::Nvidia);
        assert_eq!(vendor_of_name("Radeon 890M"), Vendor::Amd);
        assert_eq!(vendor_of_name("Voodoo 5"), Vendor::Other);
    }
}
