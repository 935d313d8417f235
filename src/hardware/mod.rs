//! What the machine has: RAM, GPUs, disk, CPU. The `Snapshot` is plain data: probes fill it
//! (one file per source, each returning what it knows plus notes, never failing the whole
//! probe), and what-if descriptions (`--hardware FILE.yaml`, `--ram`, `--vram`, `--gpu`,
//! `--no-gpu`) replace or amend it, so planning for a machine that is not here goes through
//! exactly the same code.

pub mod adapters;
pub mod backend;
pub mod cgroup;
pub mod cpu;
pub mod described_gpus;
pub mod disk;
pub mod engine_gpus;
pub mod gpu_match;
pub mod gpu_table;
pub mod nvidia;
pub mod probe;
pub mod ram;
pub mod size;
pub mod sysfs;
pub mod table_gpu;
pub mod target;
pub mod unified;
pub mod usable;
pub mod whatif;

use crate::bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Snapshot {
    pub ram: Ram,
    pub gpus: Vec<Gpu>,
    /// Every adapter the graphics stack sees (wgpu), GPUs without a vendor probe included.
    #[serde(default)]
    pub adapters: Vec<Adapter>,
    /// Free space where models are kept.
    #[serde(default)]
    pub disk: Option<Disk>,
    /// Free space where layerfit installs (`$CARGO_HOME/bin`).
    #[serde(default)]
    pub install_disk: Option<Disk>,
    pub cpu: Cpu,
    /// Where the snapshot came from: `probe`, `probe+flags` (this machine, its GPUs amended),
    /// `flags` (RAM or CPU described by flags), `file:PATH`, `profile:NAME`; `+flags`, `+rpc`
    /// when amended.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ram {
    pub total_bytes: Bytes,
    pub available_bytes: Bytes,
    #[serde(default)]
    pub swap_total_bytes: Bytes,
    /// `host`, `cgroup v2 memory.max`, `cgroup v1 memory.limit_in_bytes`, or `described`.
    pub limit_source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Nvidia,
    Amd,
    Intel,
    Apple,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Gpu {
    pub name: String,
    pub vendor: Vendor,
    pub vram_total_bytes: Bytes,
    pub vram_free_bytes: Bytes,
    /// `vram_free_bytes` was read after the back-end's context existed on the device (the
    /// engine's own CUDA or HIP query, which creates it; an RPC server's offer, read by the
    /// server's running back-end), so the back-end reserve is already out of it and the
    /// budget does not keep it again (`hardware::backend`, `plan::budget`). False for NVML,
    /// sysfs, Vulkan's and Metal's figures and every described GPU.
    #[serde(default)]
    pub free_excludes_context: bool,
    /// Shares system RAM (Apple silicon, integrated GPUs): its budget comes out of `ram`.
    #[serde(default)]
    pub unified_memory: bool,
    #[serde(default)]
    pub bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub fp16_tflops: Option<f64>,
    #[serde(default)]
    pub compute_capability: Option<String>,
    /// The GPU architecture as the spec table's source names it (`Ada Lovelace`, `RDNA 3.0`).
    #[serde(default)]
    pub architecture: Option<String>,
    /// What the compute capability means for inference kernels (see `precision_class`).
    #[serde(default)]
    pub precision_class: Option<String>,
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub cuda_version: Option<String>,
    #[serde(default)]
    pub pcie: Option<String>,
    /// Where the figures come from: `nvml`, `sysfs`, `gpu table`, `described`, `engine`.
    #[serde(default)]
    pub source: String,
    /// The bundled engine's device for this GPU (`Vulkan0`, `CUDA0`): set when this build of
    /// layerfit can offload to it; `None` for described GPUs and GPUs the build cannot use.
    #[serde(default)]
    pub engine_device: Option<String>,
    /// A software device (Mesa's llvmpipe/lavapipe) that runs "GPU" work on the CPU: listed
    /// as a GPU only on request (`--software-gpu`), and its memory is system RAM.
    #[serde(default)]
    pub software: bool,
    /// The largest tensor the engine's device can hold or produce (Vulkan:
    /// maxStorageBufferRange, 128 MiB on llvmpipe); larger weights and results stay on the
    /// CPU. `None`: no limit that matters (CUDA, Metal, described GPUs).
    #[serde(default)]
    pub max_tensor_bytes: Option<Bytes>,
    /// A device on another machine, reached over llama.cpp's RPC back-end (`--rpc`, or `rpc:`
    /// in a description); `None` for this machine's devices.
    #[serde(default)]
    pub remote: Option<RemoteLink>,
}

/// Where a remote device lives and what the link to it costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RemoteLink {
    /// The server, `HOST:PORT`.
    pub endpoint: String,
    /// The device's index on its server.
    pub device_index: u32,
    /// For people: `HOST:PORT device N (what it is)`.
    pub description: String,
    /// Round trip of a small request (measured on connect, or described).
    pub round_trip_ms: Option<f64>,
    /// Transfer rate to the server in Gbit/s (measured on connect, or described).
    pub network_gbps: Option<f64>,
}

impl Gpu {
    /// A GPU known only by its memory; the optional figures start empty.
    pub fn new(name: String, vendor: Vendor, total: Bytes, free: Bytes, source: &str) -> Gpu {
        Gpu {
            name,
            vendor,
            vram_total_bytes: total,
            vram_free_bytes: free,
            free_excludes_context: false,
            unified_memory: false,
            bandwidth_gbps: None,
            fp16_tflops: None,
            compute_capability: None,
            architecture: None,
            precision_class: None,
            driver: None,
            cuda_version: None,
            pcie: None,
            source: source.to_string(),
            engine_device: None,
            software: false,
            max_tensor_bytes: None,
            remote: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Adapter {
    pub name: String,
    pub vendor_id: u32,
    /// `discrete`, `integrated`, `virtual`, `cpu` (software rendering), `other`.
    pub device_type: String,
    pub backend: String,
    /// A software device such as llvmpipe: never counted as a GPU.
    pub software: bool,
    /// The largest buffer a shader can address (wgpu's storage-binding and buffer limits).
    #[serde(default)]
    pub max_buffer_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Disk {
    pub path: String,
    pub mount_point: String,
    pub free_bytes: Bytes,
    pub total_bytes: Bytes,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Cpu {
    pub model: String,
    pub physical_cores: usize,
    pub logical_cores: usize,
    #[serde(default)]
    pub simd: Vec<String>,
    /// Memory read bandwidth (GB/s): measured here (cached per boot) or described; `None`
    /// until measured, and for a described CPU without the figure (the speed model's default).
    #[serde(default)]
    pub memory_bandwidth_gbps: Option<f64>,
    /// Clock (GHz) as the OS reports it, for the prompt-speed (FLOPs) estimate.
    #[serde(default)]
    pub frequency_ghz: Option<f64>,
}

impl Cpu {
    /// Peak f32 FLOP/s from cores x SIMD FMA width x clock (two FMA units per core).
    pub fn peak_flops(&self) -> Option<f64> {
        let ghz = self.frequency_ghz.filter(|&g| g > 0.0)?;
        let has = |f: &str| self.simd.iter().any(|s| s == f);
        let per_cycle = if has("avx512f") {
            64.0
        } else if has("avx2") && has("fma") {
            32.0
        } else if has("avx") || has("neon") {
            16.0
        } else {
            8.0
        };
        Some(self.physical_cores.max(1) as f64 * per_cycle * ghz * 1e9)
    }
}

/// The precision class of a CUDA compute capability: tensor cores arrived with Volta (7.0),
/// BF16 with Ampere (8.0), FP8 with Ada/Hopper (8.9/9.0) (NVIDIA CUDA C++ Programming
/// Guide, "Compute Capabilities").
pub fn precision_class(cc: &str) -> Option<String> {
    let (major, minor) = cc.split_once('.')?;
    let v = major.parse::<u32>().ok()? * 10 + minor.parse::<u32>().ok()?;
    Some(
        match v {
            0..=52 => "fp32 only (no fast fp16)",
            53..=69 => "fp16, no tensor cores",
            70..=79 => "fp16 tensor cores (Volta/Turing)",
            80..=88 => "fp16+bf16 tensor cores (Ampere)",
            _ => "fp16+bf16+fp8 tensor cores (Ada/Hopper or newer)",
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn precision_classes() {
        use super::precision_class as p;
        assert_eq!(p("6.1").unwrap(), "fp16, no tensor cores");
        assert_eq!(p("7.5").unwrap(), "fp16 tensor cores (Volta/Turing)");
        assert_eq!(p("8.6").unwrap(), "fp16+bf16 tensor cores (Ampere)");
        assert!(p("9.0").unwrap().contains("fp8"));
        assert_eq!(p("x"), None);
    }
}
