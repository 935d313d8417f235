//! The planner: given a model (shape, weights), a machine (`hardware::Snapshot`) and
//! requirements, find the best configuration that holds the required context. Pure code: no
//! I/O, no device queries; everything it knows arrives as plain data.
//!
//! Offload follows llama.cpp exactly (`llama_model::load_tensors`): `-ngl N` puts layers
//! `il >= n_layer + 1 - N` on the GPU, where layer `n_layer` is the output layer (so it is
//! counted first); token embeddings always stay in host memory; a tied output (no
//! `output.weight`) is a duplicate of the embeddings on the output's device; the KV cache of
//! a block lives on that block's device; with several GPUs, layers are split in proportion to
//! free memory.

mod budget;
pub mod choose;
pub mod draft;
mod input;
mod layout;
mod mapped;
pub mod projector;
pub mod quality;
pub mod rank;
mod search;
pub mod speed;
mod verdict;

pub use budget::{
    backend_reserve, os_reserve, Budgets, GpuBudget, RAM_RESERVE_FRACTION, VRAM_MARGIN,
};
pub use input::PlanInput;
pub use mapped::MappedFile;
pub use search::{
    cache_config, devices_at, max_context, options, plan, plan_at, plan_fixed, plan_gpu_unused,
    Fixed,
};
pub use verdict::{Degradation, DegradationKind, Quality, Severity};

use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::backend::Backend;
use serde::{Deserialize, Serialize};

/// What the user needs.
#[derive(Clone, Debug)]
pub struct Requirements {
    /// Context that must be held; never lowered.
    pub min_context: u64,
    /// Cache types allowed, best quality first.
    pub kv_types: Vec<GgmlType>,
    /// RAM kept for the rest of the application (embedding model, index, UI, runtime).
    pub app_reserve: Bytes,
    /// VRAM kept free on every GPU for other work (other models sharing the GPU).
    pub vram_reserve: Bytes,
    /// A hard cap on the RAM budget (a process or container limit).
    pub ram_limit: Option<Bytes>,
    /// MoE models may keep the experts of the first blocks on the CPU (`--n-cpu-moe`);
    /// off for engines that cannot (Ollama).
    pub allow_cpu_moe: bool,
    /// Lock weights in RAM (`--mlock`): page cache becomes pinned memory.
    pub mlock: bool,
    pub n_ubatch: u32,
    /// Decode speed (tokens/s) below which a plan counts as degraded (`--min-speed`, a
    /// profile's `min_speed`); `None`: no floor.
    pub min_decode_tokens_per_s: Option<f64>,
    /// CPU threads (`--threads`); `None`: the physical cores, as llama.cpp.
    pub threads: Option<u32>,
    /// This machine's speed calibration; `None` for described machines or when none is
    /// cached (rough figures, said so in the plan's speed basis).
    pub calibration: Option<std::sync::Arc<crate::speed::Calibration>>,
    /// Speeds `run` and `serve` measured on this machine (`speed::measured`); `None` for
    /// described machines or before any run.
    pub measured: Option<std::sync::Arc<crate::speed::measured::MeasuredSpeeds>>,
    /// The models disk's measured sequential read (bytes/s, `layerfit bench`), for weights
    /// paged from it; `None`: the fastest consumer NVMe's rated read bounds the speed.
    pub disk_read_bytes_per_s: Option<f64>,
    /// The 1-minute load average of this machine before layerfit ran (other work on the
    /// cores the engine's threads need); `None` for described machines.
    pub load_average: Option<f64>,
    /// Sequences served at once (`serve --parallel N`), each holding `min_context`: the KV
    /// cache and output buffers are sized for all of them, as llama.cpp sizes them.
    pub parallel: u32,
    /// Outputs each sequence may ask for in one batch: 1, or 1 + the draft's tokens per
    /// step when a draft model's proposals are verified in one batch (`plan::draft`).
    pub outputs_per_seq: u32,
    /// Embedding mode (`serve --embeddings`, or an embedding model): the output buffer and
    /// batch follow llama.cpp's embedding context (`CacheConfig::embeddings`).
    pub embeddings: bool,
    /// Memory another model loaded beside this one already holds (a draft model,
    /// `plan::draft`): taken out of the budgets before this model is placed.
    pub held: Held,
}

/// Memory held by another model on the same machine, per device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Held {
    /// Host RAM (page cache and anonymous memory alike).
    pub ram: Bytes,
    /// Per GPU, in the snapshot's order (a missing entry holds nothing).
    pub gpus: Vec<Bytes>,
}

fn one() -> u32 {
    1
}

/// The default speed floor for interactive use: about reading speed (250 words a minute at
/// roughly 1.3 tokens a word is 5.4 tokens/s).
pub const DEFAULT_MIN_SPEED: f64 = 5.0;

impl Default for Requirements {
    fn default() -> Self {
        Requirements {
            min_context: 32768,
            kv_types: vec![GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0],
            app_reserve: Bytes::ZERO,
            vram_reserve: Bytes::ZERO,
            ram_limit: None,
            allow_cpu_moe: true,
            mlock: false,
            n_ubatch: 512,
            min_decode_tokens_per_s: Some(DEFAULT_MIN_SPEED),
            threads: None,
            calibration: None,
            measured: None,
            disk_read_bytes_per_s: None,
            load_average: None,
            parallel: 1,
            outputs_per_seq: 1,
            embeddings: false,
            held: Held::default(),
        }
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Compatible,
    Degraded,
    Incompatible,
}

/// Memory one device uses under the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeviceUse {
    pub device: String,
    pub is_gpu: bool,
    pub weights_bytes: Bytes,
    pub kv_bytes: Bytes,
    pub compute_bytes: Bytes,
    pub total_bytes: Bytes,
    /// What the plan may put here: for a GPU its free memory less its back-end reserve, the
    /// VRAM margin and a profile's `vram_reserve` (`plan::budget`).
    pub budget_bytes: Bytes,
    /// The llama.cpp back-end that drives the device (`cuda`, `rocm`, `metal`, `vulkan`,
    /// `rpc`, `cpu`); `None` in run files written before it was recorded.
    #[serde(default)]
    pub backend: Option<Backend>,
    /// The back-end reserve `budget_bytes` keeps for the back-end's context (zero when the
    /// device's free memory was read after the context existed; docs/hardware.md).
    #[serde(default)]
    pub backend_reserve_bytes: Bytes,
}

/// How host RAM is used: weights mapped from the file are page cache (droppable by the
/// kernel, but they must stay resident to run at speed); everything else is anonymous memory
/// counted in the process's RSS (KV cache, compute and output buffers, weights repacked for
/// the CPU's SIMD kernels, weights on a unified-memory GPU).
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RamUse {
    pub page_cache_bytes: Bytes,
    /// Weights the CPU backend repacks into its own (anonymous) buffers. With mmap their
    /// file pages are mapped too (read once at load, then evictable), so llama.cpp's own
    /// buffer report counts them twice.
    pub repacked_bytes: Bytes,
    pub anonymous_bytes: Bytes,
    pub total_bytes: Bytes,
    pub budget_bytes: Bytes,
}

/// Expected speed (tokens/s), each figure with its band: decode at the start of a
/// conversation and with the cache filled to the context (attention over every cached
/// token slows each step), prompt processing in micro-batches from an empty cache.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Speed {
    /// CPU threads the figures assume (`--threads`, else the physical cores).
    pub threads: u32,
    /// Set when other work keeps this machine's cores busy (load average at least half a
    /// core): the figures assume idle cores, and fewer threads are recommended.
    pub busy: Option<Busy>,
    pub decode_tokens_per_s: f64,
    pub decode_tokens_per_s_low: f64,
    pub decode_tokens_per_s_high: f64,
    pub decode_tokens_per_s_at_context: f64,
    pub decode_at_context_low: f64,
    pub decode_at_context_high: f64,
    pub prompt_tokens_per_s: f64,
    pub prompt_tokens_per_s_low: f64,
    pub prompt_tokens_per_s_high: f64,
    /// Bytes read per generated token at an empty and at a full context.
    pub bytes_per_token_low: Bytes,
    pub bytes_per_token_high: Bytes,
    /// `measured` (this machine's calibration), `published` (GPU spec table x published
    /// efficiency), `rough` (no calibration, or a GPU without figures).
    pub source: String,
    pub basis: String,
    /// Across RPC servers: the share of a decode step (at the start) spent on the network
    /// (round trips, activations, mask rows and logits crossing host boundaries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_share: Option<f64>,
    /// When `source` is `measured_run`: the runs of this file and placement timed here
    /// that the figures come from. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<MeasuredSummary>,
}

/// Runs of the plan's file and placement that `run` or `serve` timed on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MeasuredSummary {
    pub runs: u32,
    /// The threads they ran with.
    pub threads: u32,
    /// The median measured decode speed (at each run's own cache position) and prompt
    /// speed (`null` when no prompt was long enough to time).
    pub decode_tokens_per_s: f64,
    pub prompt_tokens_per_s: Option<f64>,
}

impl Speed {
    /// The decode figure plans are ranked and judged by: with the cache filled to the
    /// required context, what a long session lives with.
    pub fn expected_decode(&self) -> f64 {
        self.decode_tokens_per_s_at_context
    }
}

/// A loaded machine: the 1-minute load average and the threads recommended for it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Busy {
    pub load_average: f64,
    pub physical_cores: usize,
    pub recommended_threads: u32,
}

/// The chosen configuration.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Plan {
    pub verdict: Verdict,
    /// Tokens each sequence holds.
    pub context: u64,
    /// Sequences served at once, each with `context` cells (`serve --parallel`).
    #[serde(default = "one")]
    pub parallel: u32,
    pub kv_type: GgmlType,
    pub flash_attn: bool,
    /// llama.cpp's `-ngl`.
    pub n_gpu_layers: u32,
    pub block_count: u32,
    pub gpu_blocks: u32,
    pub cpu_blocks: u32,
    pub output_on_gpu: bool,
    /// llama.cpp's `--n-cpu-moe`: blocks whose expert tensors stay on the CPU.
    pub n_cpu_moe: u32,
    /// llama.cpp's `--n-cpu-ffn` (`-ot "blk\.(0|..)\.ffn_(up|down|gate)\.=CPU"`): blocks whose
    /// dense feed-forward weights stay on the CPU while their attention and KV cache are on
    /// the GPU.
    pub n_cpu_ffn: u32,
    /// llama.cpp's `--no-repack`: weights stay page cache instead of a repacked copy.
    pub no_repack: bool,
    pub gpu_share: f64,
    /// Fraction of layers per GPU (llama.cpp's `--tensor-split`), when more than one.
    pub tensor_split: Vec<f64>,
    pub devices: Vec<DeviceUse>,
    pub ram: RamUse,
    pub speed: Option<Speed>,
    pub quality: Quality,
    pub degradations: Vec<Degradation>,
    /// When incompatible: what is missing, in words.
    pub missing: Option<String>,
    /// Every GPU hidden from llama.cpp (`-dev none`): one too small even for the buffers
    /// llama.cpp gives it at `-ngl 0`.
    pub gpu_unused: bool,
    /// The RPC servers given (`--rpc`, a described cluster) are left out: this machine's own
    /// devices run the model, which is faster than the split or the only way it fits
    /// (docs/ranking.md). `false` without remote devices.
    #[serde(default)]
    pub local_only: bool,
    /// The RPC servers (`HOST:PORT`) whose devices the plan uses, in llama.cpp's `--rpc`
    /// order; empty on one machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpc: Vec<String>,
    /// The draft model for speculative decoding (`--draft`), placed beside this plan: its
    /// memory is already out of this plan's budgets. Absent without `--draft`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<draft::DraftPlan>,
    /// The vision projector (`--mmproj`), placed beside this plan: its memory is already out
    /// of this plan's budgets. Absent without `--mmproj`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projector: Option<projector::ProjectorPlan>,
}

#[cfg(test)]
mod tests;
