//! Hardware that is not here: a YAML description (`--hardware FILE`) that replaces the probe,
//! and flags (`--ram`, `--vram`, `--gpu`, `--no-gpu`) that amend whatever snapshot is in use.

use super::gpu_table::lookup;
use super::{Cpu, Disk, Gpu, Ram, Snapshot, Vendor};
use crate::bytes::Bytes;
use serde::Deserialize;

/// A described machine. Sizes are strings like `16G`, `512M`, `24GiB` (binary units).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Description {
    pub ram: String,
    #[serde(default)]
    pub ram_available: Option<String>,
    #[serde(default)]
    pub gpus: Vec<GpuDescription>,
    #[serde(default)]
    pub cpu: Option<CpuDescription>,
    #[serde(default)]
    pub disk_free: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDescription {
    /// A name from `profiles/gpus.yaml` (figures come from the table) or any name.
    pub name: String,
    #[serde(default)]
    pub vram: Option<String>,
    #[serde(default)]
    pub vram_free: Option<String>,
    #[serde(default)]
    pub bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub unified_memory: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuDescription {
    #[serde(default)]
    pub model: Option<String>,
    pub cores: usize,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub memory_bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub simd: Vec<String>,
    #[serde(default)]
    pub frequency_ghz: Option<f64>,
}

/// Flags that amend a snapshot.
#[derive(Clone, Debug, Default)]
pub struct Amendments {
    pub ram: Option<u64>,
    /// VRAM per GPU, in order.
    pub vram: Vec<u64>,
    /// GPUs by table name, replacing the probed ones.
    pub gpus: Vec<String>,
    pub no_gpu: bool,
}

impl Amendments {
    pub fn is_empty(&self) -> bool {
        self.ram.is_none() && self.vram.is_empty() && self.gpus.is_empty() && !self.no_gpu
    }
}

/// Parses `16G`, `16GB`, `16GiB`, `512M`, `1.5T`, `1073741824` (G and GB are binary: 2^30).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 16G, 512M)"))?;
    let mul = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024f64.powi(2),
        "g" | "gb" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "tib" => 1024f64.powi(4),
        u => return Err(format!("'{s}': unknown unit '{u}' (use K, M, G or T)")),
    };
    let v = n * mul;
    if !v.is_finite() || v < 0.0 || v > 1024f64.powi(5) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(v as u64)
}

fn gpu_from_table(name: &str) -> Result<Gpu, String> {
    let spec = lookup(name).ok_or_else(|| {
        format!("unknown GPU '{name}': not in profiles/gpus.yaml (describe it with a name and vram in a --hardware file)")
    })?;
    let vram = (spec.vram_gib * 1024f64.powi(3)) as u64;
    Ok(Gpu {
        name: spec.name,
        vendor: spec.vendor,
        vram_total_bytes: Bytes(vram),
        vram_free_bytes: Bytes(vram),
        unified_memory: spec.unified_memory,
        bandwidth_gbps: Some(spec.bandwidth_gbps),
        fp16_tflops: spec.fp16_tflops,
        precision_class: spec
            .compute_capability
            .as_deref()
            .and_then(super::precision_class),
        compute_capability: spec.compute_capability,
        driver: None,
        cuda_version: None,
        pcie: None,
        source: "gpu table".into(),
        engine_device: None,
        software: false,
        max_tensor_bytes: None,
    })
}

/// Builds a snapshot from a description. The CPU, when not described, is `cpu` (usually
/// this machine's, since a plan needs one).
pub fn describe(d: &Description, source: &str, cpu: Cpu) -> Result<Snapshot, String> {
    let ram = parse_size(&d.ram)?;
    let ram_available = d
        .ram_available
        .as_deref()
        .map(parse_size)
        .transpose()?
        .unwrap_or(ram);
    let mut gpus = Vec::new();
    for g in &d.gpus {
        let mut gpu = match (lookup(&g.name), &g.vram) {
            (Some(_), _) => gpu_from_table(&g.name)?,
            (None, Some(_)) => Gpu::new(
                g.name.clone(),
                Vendor::Other,
                Bytes::ZERO,
                Bytes::ZERO,
                "described",
            ),
            (None, None) => return Err(gpu_from_table(&g.name).unwrap_err()),
        };
        if let Some(v) = &g.vram {
            let v = parse_size(v)?;
            gpu.vram_total_bytes = Bytes(v);
            gpu.vram_free_bytes = Bytes(v);
        }
        if let Some(v) = &g.vram_free {
            gpu.vram_free_bytes = Bytes(parse_size(v)?.min(gpu.vram_total_bytes.get()));
        }
        if let Some(b) = g.bandwidth_gbps {
            gpu.bandwidth_gbps = Some(b);
        }
        if let Some(u) = g.unified_memory {
            gpu.unified_memory = u;
        }
        gpus.push(gpu);
    }
    let cpu = match &d.cpu {
        Some(c) => Cpu {
            model: c.model.clone().unwrap_or_else(|| "described CPU".into()),
            physical_cores: c.cores,
            logical_cores: c.threads.unwrap_or(c.cores),
            simd: c.simd.clone(),
            memory_bandwidth_gbps: c.memory_bandwidth_gbps,
            frequency_ghz: c.frequency_ghz,
        },
        None => cpu,
    };
    let disk = d
        .disk_free
        .as_deref()
        .map(parse_size)
        .transpose()?
        .map(|free| Disk {
            path: "described".into(),
            mount_point: "described".into(),
            free_bytes: Bytes(free),
            total_bytes: Bytes(free),
        });
    Ok(Snapshot {
        ram: Ram {
            total_bytes: Bytes(ram),
            available_bytes: Bytes(ram_available.min(ram)),
            swap_total_bytes: Bytes::ZERO,
            limit_source: "described".into(),
        },
        gpus,
        adapters: Vec::new(),
        disk,
        install_disk: None,
        cpu,
        source: source.to_string(),
        notes: vec![format!("hardware described by {source}, not probed")],
    })
}

/// Applies flag amendments to a snapshot.
pub fn amend(s: &mut Snapshot, a: &Amendments) -> Result<(), String> {
    if a.is_empty() {
        return Ok(());
    }
    if let Some(r) = a.ram {
        s.ram.total_bytes = Bytes(r);
        s.ram.available_bytes = Bytes(r);
        s.ram.limit_source = "described".into();
    }
    if a.no_gpu && !a.gpus.is_empty() {
        return Err("--gpu and --no-gpu contradict each other".into());
    }
    if a.no_gpu {
        s.gpus.clear();
    }
    if !a.gpus.is_empty() {
        s.gpus = a
            .gpus
            .iter()
            .map(|g| gpu_from_table(g))
            .collect::<Result<_, _>>()?;
    }
    for (i, &v) in a.vram.iter().enumerate() {
        if a.no_gpu {
            return Err("--vram and --no-gpu contradict each other".into());
        }
        match s.gpus.get_mut(i) {
            Some(g) => {
                g.vram_total_bytes = Bytes(v);
                g.vram_free_bytes = Bytes(v);
                g.source = format!("{} + --vram", g.source);
            }
            None => s.gpus.push(Gpu::new(
                format!("GPU {i} (described)"),
                Vendor::Other,
                Bytes(v),
                Bytes(v),
                "--vram",
            )),
        }
    }
    if !s.gpus.is_empty() {
        s.notes.retain(|n| !n.starts_with("no GPU"));
    }
    s.source = format!("{}+flags", s.source);
    s.notes
        .push("hardware amended by command-line flags".into());
    Ok(())
}
