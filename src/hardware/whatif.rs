//! Hardware that is not here: a YAML description (`--hardware FILE`) that replaces the probe,
//! and flags (`--ram`, `--vram`, `--gpu`, `--no-gpu`) that amend whatever snapshot is in use.

use super::described_gpus::{described_gpu, flag_gpu};
use super::gpu_match::MatchError;
use super::table_gpu::size_unified;
use super::{Cpu, Disk, Gpu, Ram, Snapshot, Vendor};
use crate::bytes::Bytes;
use serde::Deserialize;

pub use super::size::{opt_size_text, parse_nonzero_size, parse_size, size_text, SizeError};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuDescription {
    /// A name from `profiles/gpus.yaml` (figures come from the table) or any name.
    pub name: String,
    #[serde(default, deserialize_with = "opt_size_text")]
    pub vram: Option<String>,
    /// The table's spelling of `vram` (a number of GiB), so that a row can be pasted as it is.
    #[serde(default)]
    pub vram_gib: Option<f64>,
    #[serde(default, deserialize_with = "opt_size_text")]
    pub vram_free: Option<String>,
    #[serde(default)]
    pub vendor: Option<Vendor>,
    #[serde(default)]
    pub bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub fp16_tflops: Option<f64>,
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub unified_memory: Option<bool>,
    /// Table fields that name rather than describe (kept for pasted rows; not used).
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub memory_options_gib: Vec<f64>,
    /// Where the figures come from; shown in the snapshot's notes.
    #[serde(default)]
    pub source: Option<String>,
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
    /// GPUs by table name, or `NAME:VRAM`, replacing the probed ones.
    pub gpus: Vec<String>,
    pub no_gpu: bool,
}

impl Amendments {
    pub fn is_empty(&self) -> bool {
        self.ram.is_none() && self.vram.is_empty() && self.gpus.is_empty() && !self.no_gpu
    }
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
    #[error(transparent)]
    Gpu(#[from] MatchError),
    #[error("{gpu} shares the machine's RAM: give its size, e.g. --ram {example}G or \"{gpu} {example}GB\"{sold}")]
    UnifiedNeedsRam {
        gpu: String,
        example: u64,
        sold: String,
    },
    #[error("{gpu}: the name says {named} GiB of unified memory, the machine has {ram} GiB of RAM: they are the same memory")]
    UnifiedSize { gpu: String, named: f64, ram: f64 },
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

pub(super) fn size(field: &'static str, s: &str) -> Result<u64, DescriptionError> {
    parse_size(s).map_err(|source| DescriptionError::Size { field, source })
}

pub(super) fn positive(
    field: &'static str,
    v: Option<f64>,
) -> Result<Option<f64>, DescriptionError> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => {
            Err(DescriptionError::BadNumber { field, value: x })
        }
        _ => Ok(v),
    }
}

/// Builds a snapshot from a description. The CPU, when not described, is `cpu`: for a
/// machine that is not this one, `hardware::target::unknown_cpu` (`target::described`).
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
    let mut notes = vec![format!("hardware described by {source}, not probed")];
    for g in &d.gpus {
        gpus.push(described_gpu(g, ram, &mut notes)?);
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
        notes,
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
        let mut gpus = Vec::new();
        for g in &a.gpus {
            gpus.push(flag_gpu(s, g, a.ram.is_some())?);
        }
        s.gpus = gpus;
    } else if a.ram.is_some() {
        // The RAM of a described Mac or APU machine is its GPU's memory too.
        let ram = s.ram.total_bytes;
        for g in s.gpus.iter_mut() {
            if g.unified_memory && g.source == "gpu table" {
                size_unified(g, ram, &mut s.notes);
            }
        }
    }
    for (i, &v) in a.vram.iter().enumerate() {
        if a.no_gpu {
            return Err(DescriptionError::Contradiction("--vram", "--no-gpu"));
        }
        match s.gpus.get_mut(i) {
            Some(g) => {
                g.vram_total_bytes = Bytes(v);
                g.vram_free_bytes = Bytes(v);
                // A described size: no back-end context is out of it yet.
                g.free_excludes_context = false;
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
