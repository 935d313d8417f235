//! The GPU spec table (`profiles/gpus.yaml`): memory, bandwidth, FP16 TFLOPS, compute
//! capability and architecture of the GPUs people own, each row with its source, for
//! `--gpu NAME` and for GPUs a probe finds without those figures. Embedded at build time.
//! Matching a name against it is `gpu_match`'s job.

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub vendor: super::Vendor,
    /// Memory on the card; `None` for unified-memory rows (their memory is the machine's RAM).
    #[serde(default)]
    pub vram_gib: Option<f64>,
    /// Unified rows: the memory sizes the product was sold with.
    #[serde(default)]
    pub memory_options_gib: Vec<f64>,
    #[serde(default)]
    pub bandwidth_gbps: Option<f64>,
    #[serde(default)]
    pub fp16_tflops: Option<f64>,
    #[serde(default)]
    pub compute_capability: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub unified_memory: bool,
    /// Where the row's figures come from.
    pub source: String,
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

/// Finds a GPU by name or alias, matched loosely (see [`super::gpu_match::find`]); `None`
/// when no row matches or the name is ambiguous.
pub fn lookup(name: &str) -> Option<GpuSpec> {
    super::gpu_match::find(name, None).ok().map(|m| m.spec)
}
