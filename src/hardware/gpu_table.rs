//! The GPU spec table (`profiles/gpus.yaml`): VRAM, bandwidth, FP16 TFLOPS and compute
//! capability of common GPUs, for `--gpu NAME` and for GPUs a probe finds without those
//! figures. Embedded at build time.

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GpuSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub vendor: super::Vendor,
    pub vram_gib: f64,
    pub bandwidth_gbps: f64,
    #[serde(default)]
    pub fp16_tflops: Option<f64>,
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub unified_memory: bool,
}

#[derive(Deserialize)]
struct Table {
    gpus: Vec<GpuSpec>,
}

pub const GPU_TABLE_YAML: &str = include_str!("../../profiles/gpus.yaml");

pub fn table() -> Vec<GpuSpec> {
    serde_norway::from_str::<Table>(GPU_TABLE_YAML)
        .expect("profiles/gpus.yaml is valid (tested)")
        .gpus
}

fn normalize(s: &str) -> String {
    s.to_lowercase()
        .replace("nvidia", "")
        .replace("geforce", "")
        .replace("amd", "")
        .replace("radeon", "")
        .replace("intel", "")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Finds a GPU by name or alias, ignoring case, spaces and vendor words
/// ("RTX 3060", "geforce rtx3060", "NVIDIA GeForce RTX 3060" all match).
pub fn lookup(name: &str) -> Option<GpuSpec> {
    let key = normalize(name);
    table()
        .into_iter()
        .find(|g| normalize(&g.name) == key || g.aliases.iter().any(|a| normalize(a) == key))
}
