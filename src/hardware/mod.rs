//! What the machine has: RAM, GPUs, disk, CPU. The `Snapshot` is plain data: probes fill it
//! (one file per source, each returning what it knows plus notes, never failing the whole
//! probe), and what-if descriptions (`--hardware FILE.yaml`, `--ram`, `--vram`, `--gpu`,
//! `--no-gpu`) replace or amend it, so planning for a machine that is not here goes through
//! exactly the same code.

pub mod adapters;
pub mod cgroup;
pub mod cpu;
pub mod disk;
pub mod gpu_table;
pub mod nvidia;
pub mod probe;
pub mod ram;
pub mod sysfs;
pub mod whatif;

use crate::bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub ram: Ram,
    pub gpus: Vec<Gpu>,
    /// Every adapter the graphics stack sees (wgpu), GPUs without a vendor probe included.
    #[serde(default)]
    pub adapters: Vec<Adapter>,
    #[serde(default)]
    pub disk: Option<Disk>,
    pub cpu: Cpu,
    /// Where the snapshot came from: `probe`, `file:PATH`, or `probe+flags`.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ram {
    pub total_bytes: Bytes,
    pub available_bytes: Bytes,
    #[serde(default)]
    pub swap_total_bytes: Bytes,
    /// `host`, `cgroup v2 memory.max`, `cgroup v1 memory.limit_in_bytes`, or `described`.
    pub limit_source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Nvidia,
    Amd,
    Intel,
    Apple,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    pub name: String,
    pub vendor: Vendor,
    pub vram_total_bytes: Bytes,
    pub vram_free_bytes: Bytes,
    /// Shares system RAM (Apple silicon, integrated GPUs): its budget comes out of `ram`.
    #[serde(default)]
    pub unified_memory: bool,
    #[serde(default)]
    pub bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub fp16_tflops: Option<f64>,
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub cuda_version: Option<String>,
    #[serde(default)]
    pub pcie: Option<String>,
    /// Where the figures come from: `nvml`, `sysfs`, `gpu table`, `described`.
    #[serde(default)]
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adapter {
    pub name: String,
    pub vendor_id: u32,
    /// `discrete`, `integrated`, `virtual`, `cpu` (software rendering), `other`.
    pub device_type: String,
    pub backend: String,
    /// A software device such as llvmpipe: never counted as a GPU.
    pub software: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub path: String,
    pub mount_point: String,
    pub free_bytes: Bytes,
    pub total_bytes: Bytes,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub model: String,
    pub physical_cores: usize,
    pub logical_cores: usize,
    #[serde(default)]
    pub simd: Vec<String>,
    /// Measured memory read bandwidth (GB/s), cached per boot; `None` until measured.
    #[serde(default)]
    pub memory_bandwidth_gbps: Option<f64>,
}
