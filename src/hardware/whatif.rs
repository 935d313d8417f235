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
    #[serde(deserialize_with = "size_text")]
    pub ram: String,
    #[serde(default, deserialize_with = "opt_size_text")]
    pub ram_available: Option<String>,
    #[serde(default)]
    pub gpus: Vec<GpuDescription>,
    #[serde(default)]
    pub cpu: Option<CpuDescription>,
    #[serde(default, deserialize_with = "opt_size_text")]
    pub disk_free: Option<String>,
    /// Other machines' devices over llama.cpp's RPC back-end, described without connecting.
    #[serde(default)]
    pub rpc: Vec<crate::rpc::hosts::HostDescription>,
}

/// A size as written in YAML: `16G`, or a bare number (`ram: 32`), kept as text so that
/// [`parse_size`] can ask for the unit instead of reading 32 bytes.
pub fn size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_norway::Value::deserialize(d)? {
        serde_norway::Value::String(s) => Ok(s),
        serde_norway::Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!(
            "expected a size such as 16G, found {other:?}"
        ))),
    }
}

pub fn opt_size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    size_text(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDescription {
    /// A name from `profiles/gpus.yaml` (figures come from the table) or any name.
    pub name: String,
    #[serde(default, deserialize_with = "opt_size_text")]
    pub vram: Option<String>,
    #[serde(default, deserialize_with = "opt_size_text")]
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

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("'{0}' is not a size (e.g. 16G, 512M)")]
    NotASize(String),
    #[error("{0}: add a unit, e.g. {0}G")]
    NoUnit(String),
    #[error("'{0}': unknown unit '{1}' (use B, K, M, G or T)")]
    UnknownUnit(String, String),
    #[error("'{0}' is negative: a size is a positive amount with a unit (e.g. 16G)")]
    Negative(String),
    #[error("'{0}' is out of range (at most 1024T)")]
    OutOfRange(String),
    #[error("'{0}' is zero: no machine has zero of it (e.g. 16G)")]
    Zero(String),
}

/// Why a machine description (YAML or flags) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    #[error("{field}")]
    Size {
        field: &'static str,
        #[source]
        source: SizeError,
    },
    #[error("unknown GPU '{0}': not in profiles/gpus.yaml (describe it with a name and vram in a --hardware file)")]
    UnknownGpu(String),
    #[error("{0} and {1} contradict each other")]
    Contradiction(&'static str, &'static str),
    #[error("{field} is {value}: it must be a positive finite number")]
    BadNumber { field: &'static str, value: f64 },
    #[error("{0}")]
    RemoteHost(String),
    #[error("cpu.cores is 0: a machine has at least one core")]
    NoCores,
    #[error("not a machine description")]
    Yaml(#[source] serde_norway::Error),
    #[error("the description is {0} bytes: a machine is described in far less (at most 1 MiB)")]
    TooLarge(u64),
}

/// The largest description file read (a hostile file must not be read whole).
pub const MAX_DESCRIPTION_BYTES: u64 = 1 << 20;

/// Reads a text file of at most [`MAX_DESCRIPTION_BYTES`] (a description, a profile, a run
/// file): a hostile or mistaken path (a model file, /dev/zero) is refused instead of read whole.
pub fn read_bounded(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    let n = f
        .take(MAX_DESCRIPTION_BYTES + 1)
        .read_to_string(&mut text)? as u64;
    if n > MAX_DESCRIPTION_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_DESCRIPTION_BYTES} bytes: not a layerfit text file"
        )));
    }
    Ok(text)
}

/// Parses a YAML machine description (bounded in size; unknown keys are errors).
pub fn parse_description(text: &str) -> Result<Description, DescriptionError> {
    if text.len() as u64 > MAX_DESCRIPTION_BYTES {
        return Err(DescriptionError::TooLarge(text.len() as u64));
    }
    serde_norway::from_str(text).map_err(DescriptionError::Yaml)
}

/// Parses `16G`, `16GB`, `16GiB`, `512M`, `1.5T`, `1073741824B` (G and GB are binary: 2^30).
/// A unit is required, except for a bare `0`: "16" could mean bytes or gigabytes, and the
/// wrong guess turns a 16 GB machine into a 16-byte one.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(SizeError::Negative(s.to_string()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| SizeError::NotASize(s.to_string()))?;
    let unit = unit.trim().to_ascii_lowercase();
    if unit.is_empty() && n != 0.0 {
        return Err(SizeError::NoUnit(t.to_string()));
    }
    let mul = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024f64.powi(2),
        "g" | "gb" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "tib" => 1024f64.powi(4),
        u => return Err(SizeError::UnknownUnit(s.to_string(), u.to_string())),
    };
    let v = n * mul;
    if !v.is_finite() || v > 1024f64.powi(5) {
        return Err(SizeError::OutOfRange(s.to_string()));
    }
    Ok(v as u64)
}

/// A size that must be above zero (RAM, VRAM): a zero-memory machine is a typo, not a plan.
pub fn parse_nonzero_size(s: &str) -> Result<u64, SizeError> {
    match parse_size(s)? {
        0 => Err(SizeError::Zero(s.to_string())),
        n => Ok(n),
    }
}

fn size(field: &'static str, s: &str) -> Result<u64, DescriptionError> {
    parse_size(s).map_err(|source| DescriptionError::Size { field, source })
}

fn positive(field: &'static str, v: Option<f64>) -> Result<Option<f64>, DescriptionError> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(DescriptionError::BadNumber { field, value: x })
        }
        _ => Ok(v),
    }
}

fn gpu_from_table(name: &str) -> Result<Gpu, DescriptionError> {
    let spec = lookup(name).ok_or_else(|| DescriptionError::UnknownGpu(name.to_string()))?;
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
        remote: None,
    })
}

/// Builds a snapshot from a description. The CPU, when not described, is `cpu` (usually
/// this machine's, since a plan needs one).
pub fn describe(d: &Description, source: &str, cpu: Cpu) -> Result<Snapshot, DescriptionError> {
    let ram = parse_nonzero_size(&d.ram).map_err(|source| DescriptionError::Size {
        field: "ram",
        source,
    })?;
    let ram_available = d
        .ram_available
        .as_deref()
        .map(|s| size("ram_available", s))
        .transpose()?
        .unwrap_or(ram);
    // Remote devices come first, as in llama.cpp's device order.
    let mut gpus = crate::rpc::hosts::described(&d.rpc).map_err(DescriptionError::RemoteHost)?;
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
            let v = size("gpus[].vram", v)?;
            gpu.vram_total_bytes = Bytes(v);
            gpu.vram_free_bytes = Bytes(v);
        }
        if let Some(v) = &g.vram_free {
            gpu.vram_free_bytes =
                Bytes(size("gpus[].vram_free", v)?.min(gpu.vram_total_bytes.get()));
        }
        if let Some(b) = positive("gpus[].bandwidth_gbps", g.bandwidth_gbps)? {
            gpu.bandwidth_gbps = Some(b);
        }
        if let Some(u) = g.unified_memory {
            gpu.unified_memory = u;
        }
        gpus.push(gpu);
    }
    if let Some(c) = &d.cpu {
        if c.cores == 0 {
            return Err(DescriptionError::NoCores);
        }
        positive("cpu.memory_bandwidth_gbps", c.memory_bandwidth_gbps)?;
        positive("cpu.frequency_ghz", c.frequency_ghz)?;
    }
    let cpu = match &d.cpu {
        Some(c) => Cpu {
            model: c.model.clone().unwrap_or_else(|| "described CPU".into()),
            physical_cores: c.cores,
            logical_cores: c.threads.unwrap_or(c.cores).max(c.cores),
            simd: c.simd.clone(),
            memory_bandwidth_gbps: c.memory_bandwidth_gbps,
            frequency_ghz: c.frequency_ghz,
        },
        None => cpu,
    };
    let disk = d
        .disk_free
        .as_deref()
        .map(|s| size("disk_free", s))
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
pub fn amend(s: &mut Snapshot, a: &Amendments) -> Result<(), DescriptionError> {
    if a.is_empty() {
        return Ok(());
    }
    if let Some(r) = a.ram {
        s.ram.total_bytes = Bytes(r);
        s.ram.available_bytes = Bytes(r);
        s.ram.limit_source = "described".into();
    }
    if a.no_gpu && !a.gpus.is_empty() {
        return Err(DescriptionError::Contradiction("--gpu", "--no-gpu"));
    }
    if a.no_gpu {
        // This machine's GPUs; other hosts' devices (`rpc:`) stay.
        s.gpus.retain(|g| g.remote.is_some());
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
            return Err(DescriptionError::Contradiction("--vram", "--no-gpu"));
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
