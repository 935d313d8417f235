//! The GPUs of a described machine: each `gpus:` entry of a `--hardware` file and each
//! `--gpu NAME[:VRAM]` flag, resolved against the spec table, with a unified-memory part
//! sized from the machine's RAM (the same memory, counted once).

use super::gpu_match::{find, MatchError};
use super::table_gpu::{from_spec, parse_gpu_arg, set_vram, size_unified, unknown};
use super::whatif::{positive, size, DescriptionError, GpuDescription};
use super::{Gpu, Snapshot};
use crate::bytes::Bytes;

/// GiB as a float, for matching RAM sizes against the table's.
fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

/// One described GPU: a table row (its figures; a unified row sized from `ram`) or, with its
/// memory given, any GPU; then the description's own figures over the table's.
pub fn described_gpu(
    g: &GpuDescription,
    ram: u64,
    notes: &mut Vec<String>,
) -> Result<Gpu, DescriptionError> {
    let vram = match (&g.vram, g.vram_gib) {
        (Some(_), Some(_)) => {
            return Err(DescriptionError::Contradiction(
                "gpus[].vram",
                "gpus[].vram_gib",
            ))
        }
        (Some(v), None) => Some(size("gpus[].vram", v)?),
        (None, Some(x)) => {
            positive("gpus[].vram_gib", Some(x))?;
            Some((x * (1u64 << 30) as f64) as u64)
        }
        (None, None) => None,
    };
    let mut gpu = match (find(&g.name, Some(gib(ram))), vram) {
        (Ok(m), _) => {
            if let (true, Some(named)) = (m.spec.unified_memory, m.size_gib) {
                if (named - gib(ram)).abs() > 0.01 {
                    return Err(DescriptionError::UnifiedSize {
                        gpu: m.spec.name,
                        named,
                        ram: gib(ram),
                    });
                }
            }
            from_spec(&m.spec)
        }
        (Err(MatchError::Unknown { .. }), Some(v)) => unknown(&g.name, v),
        (Err(e), _) => return Err(e.into()),
    };
    if let Some(v) = g.vendor {
        gpu.vendor = v;
    }
    if let Some(u) = g.unified_memory {
        gpu.unified_memory = u;
    }
    match vram {
        Some(v) => set_vram(&mut gpu, v),
        None if gpu.unified_memory => size_unified(&mut gpu, Bytes(ram), notes),
        None => {}
    }
    if let Some(v) = &g.vram_free {
        gpu.vram_free_bytes = Bytes(size("gpus[].vram_free", v)?.min(gpu.vram_total_bytes.get()));
    }
    if let Some(b) = positive("gpus[].bandwidth_gbps", g.bandwidth_gbps)? {
        gpu.bandwidth_gbps = Some(b);
    }
    if let Some(t) = positive("gpus[].fp16_tflops", g.fp16_tflops)? {
        gpu.fp16_tflops = Some(t);
    }
    if let Some(cc) = &g.compute_capability {
        gpu.precision_class = super::precision_class(cc);
        gpu.compute_capability = Some(cc.clone());
    }
    if let Some(a) = &g.architecture {
        gpu.architecture = Some(a.clone());
    }
    if let Some(src) = &g.source {
        notes.push(format!("{}: figures from {src}", gpu.name));
    }
    Ok(gpu)
}

/// One `--gpu NAME[:VRAM]`. A unified-memory part's memory is the machine's RAM: `--ram`,
/// or the size in its name ("Apple M2 16GB", which then sets the RAM), or the described
/// machine's RAM; never this host's probed RAM, which belongs to another machine.
pub fn flag_gpu(s: &mut Snapshot, text: &str, ram_given: bool) -> Result<Gpu, DescriptionError> {
    let arg = parse_gpu_arg(text).map_err(|source| DescriptionError::Size {
        field: "--gpu NAME:VRAM",
        source,
    })?;
    let ram_known = ram_given || s.ram.limit_source == "described";
    let ram = ram_known.then(|| gib(s.ram.total_bytes.get()));
    let m = match find(&arg.name, ram) {
        Ok(m) => m,
        Err(MatchError::Unknown { .. }) if arg.vram.is_some() => {
            return Ok(unknown(&arg.name, arg.vram.unwrap_or(0)))
        }
        Err(e) => return Err(e.into()),
    };
    let mut gpu = from_spec(&m.spec);
    if let Some(v) = arg.vram {
        set_vram(&mut gpu, v);
        return Ok(gpu);
    }
    if m.spec.unified_memory {
        let only = match m.spec.memory_options_gib.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        match (m.size_gib.or(only), ram) {
            (Some(named), Some(r)) if (named - r).abs() > 0.01 && m.size_gib.is_some() => {
                return Err(DescriptionError::UnifiedSize {
                    gpu: m.spec.name,
                    named,
                    ram: r,
                })
            }
            (Some(named), None) => {
                let b = Bytes((named * (1u64 << 30) as f64) as u64);
                s.ram.total_bytes = b;
                s.ram.available_bytes = b;
                s.ram.limit_source = "described".into();
            }
            (None, None) => {
                let opts = &m.spec.memory_options_gib;
                return Err(DescriptionError::UnifiedNeedsRam {
                    example: opts.first().map_or(16, |&o| o as u64),
                    sold: if opts.is_empty() {
                        String::new()
                    } else {
                        let v: Vec<String> = opts.iter().map(|o| format!("{o}")).collect();
                        format!(" (sold with {} GB)", v.join(", "))
                    },
                    gpu: m.spec.name,
                });
            }
            _ => {}
        }
        let sold = &m.spec.memory_options_gib;
        let r = gib(s.ram.total_bytes.get());
        if !sold.is_empty() && !sold.iter().any(|&o| (o - r).abs() < 0.01) {
            s.notes.push(format!(
                "{} was not sold with {r} GiB (sizes: {:?} GiB): planned as described",
                m.spec.name, sold
            ));
        }
        size_unified(&mut gpu, s.ram.total_bytes, &mut s.notes);
    }
    Ok(gpu)
}
