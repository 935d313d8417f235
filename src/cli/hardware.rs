//! `layerfit hardware`: what this machine (or a described one) has.

use super::{exit, output, Failure};
use crate::bytes::Bytes;
use crate::hardware::probe::{probe, ProbeOptions};
use crate::hardware::whatif::{amend, describe, parse_size, Amendments, Description};
use crate::hardware::{cpu, Snapshot};
use std::path::PathBuf;

/// Flags that replace or amend the probe; shared by every command that takes hardware.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HardwareArgs {
    /// Describe the machine in a YAML file instead of probing (also: LAYERFIT_HARDWARE).
    #[arg(long, env = "LAYERFIT_HARDWARE")]
    pub hardware: Option<PathBuf>,
    /// Total RAM, e.g. 16G (replaces the probed figure).
    #[arg(long, value_parser = parse_size)]
    pub ram: Option<u64>,
    /// VRAM of a GPU, e.g. 8G; repeat once per GPU.
    #[arg(long, value_parser = parse_size)]
    pub vram: Vec<u64>,
    /// A GPU from profiles/gpus.yaml, e.g. "RTX 3060"; repeatable; replaces probed GPUs.
    #[arg(long)]
    pub gpu: Vec<String>,
    /// Plan as if there were no GPU.
    #[arg(long)]
    pub no_gpu: bool,
    /// Where models are kept (its filesystem's free space is reported).
    #[arg(long)]
    pub models_dir: Option<PathBuf>,
    /// Count software Vulkan devices (Mesa's llvmpipe) as GPUs: a Vulkan build then offloads
    /// to them. They compute on the CPU: for testing the GPU path, never faster.
    #[arg(long, env = "LAYERFIT_SOFTWARE_GPU")]
    pub software_gpu: bool,
}

impl HardwareArgs {
    /// The snapshot these flags ask for: described, probed, and/or amended.
    pub fn snapshot(&self) -> Result<Snapshot, Failure> {
        let mut opts = ProbeOptions::default();
        if let Some(d) = &self.models_dir {
            opts.models_dir = d.clone();
        }
        opts.software_gpu = self.software_gpu;
        let mut snap = match &self.hardware {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?;
                let d: Description = serde_norway::from_str(&text)
                    .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?;
                let mut c = cpu::probe();
                c.memory_bandwidth_gbps = cpu::bandwidth_cached(&opts.cache_dir, true);
                describe(&d, &format!("file:{}", path.display()), c)
                    .map_err(|e| Failure::BadInput(format!("{}: {e}", path.display())))?
            }
            None => probe(&opts),
        };
        let a = Amendments {
            ram: self.ram,
            vram: self.vram.clone(),
            gpus: self.gpu.clone(),
            no_gpu: self.no_gpu,
        };
        amend(&mut snap, &a).map_err(Failure::BadInput)?;
        Ok(snap)
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub hw: HardwareArgs,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<u8, Failure> {
    let snap = args.hw.snapshot()?;
    if args.json {
        output::json(&snap)?;
        return Ok(exit::OK);
    }
    let mut t = output::table(&["memory", ""]);
    t.add_row(vec![
        "RAM".to_string(),
        format!(
            "{} total, {} available ({})",
            snap.ram.total_bytes, snap.ram.available_bytes, snap.ram.limit_source
        ),
    ]);
    if snap.ram.swap_total_bytes > Bytes::ZERO {
        t.add_row(vec![
            "swap".to_string(),
            snap.ram.swap_total_bytes.to_string(),
        ]);
    }
    if let Some(d) = &snap.disk {
        t.add_row(vec![
            "disk".to_string(),
            format!("{} free on {} ({})", d.free_bytes, d.mount_point, d.path),
        ]);
    }
    if let Some(d) = &snap.install_disk {
        t.add_row(vec![
            "install target".to_string(),
            format!("{} free on {} ({})", d.free_bytes, d.mount_point, d.path),
        ]);
    }
    let c = &snap.cpu;
    t.add_row(vec![
        "CPU".to_string(),
        format!(
            "{}, {} cores / {} threads, {}",
            c.model,
            c.physical_cores,
            c.logical_cores,
            c.simd.join(" ")
        ),
    ]);
    if let Some(b) = c.memory_bandwidth_gbps {
        t.add_row(vec![
            "memory read bandwidth".to_string(),
            format!("{b:.1} GB/s (measured)"),
        ]);
    }
    println!("{t}");
    if !snap.gpus.is_empty() {
        let mut t = output::table(&[
            "GPU",
            "vendor",
            "VRAM total",
            "VRAM free",
            "bandwidth",
            "notes",
        ]);
        for g in &snap.gpus {
            let mut extra = vec![g.source.clone()];
            match &g.engine_device {
                Some(d) => extra.push(format!("engine device {d}")),
                None => extra.push("not usable by this build's engine".into()),
            }
            if g.software {
                extra.push("software device (computes on the CPU)".into());
            }
            if let Some(m) = g.max_tensor_bytes {
                extra.push(format!("largest tensor {m}"));
            }
            if g.unified_memory {
                extra.push("unified memory (shares RAM)".into());
            }
            if let Some(cc) = &g.compute_capability {
                extra.push(format!("CC {cc}"));
            }
            if let Some(p) = &g.precision_class {
                extra.push(p.clone());
            }
            if let Some(d) = &g.driver {
                extra.push(format!("driver {d}"));
            }
            t.add_row(vec![
                g.name.clone(),
                format!("{:?}", g.vendor).to_lowercase(),
                g.vram_total_bytes.to_string(),
                g.vram_free_bytes.to_string(),
                g.bandwidth_gbps
                    .map(|b| format!("{b:.0} GB/s"))
                    .unwrap_or_else(|| "?".into()),
                extra.join(", "),
            ]);
        }
        println!("{t}");
    }
    if !snap.adapters.is_empty() {
        let mut t = output::table(&["graphics adapter", "type", "backend"]);
        for a in &snap.adapters {
            t.add_row(vec![
                a.name.clone(),
                a.device_type.clone(),
                a.backend.clone(),
            ]);
        }
        println!("{t}");
    }
    for n in &snap.notes {
        output::note(n);
    }
    Ok(exit::OK)
}
