//! Runnable configurations from a plan, and back: llama.cpp arguments, an Ollama Modelfile
//! with the environment it needs, and layerfit's own run file (`layerfit run --plan FILE`).
//! Each format parses back into the same [`RunSettings`], so a config can be re-planned and
//! checked (tests: emitted configs round-trip to the same plan).

use crate::ggml_type::GgmlType;
use crate::plan::{DeviceUse, Plan, Verdict};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

mod ollama;
pub use ollama::OllamaConfig;

/// Why a runnable config (llama.cpp arguments, a Modelfile, a run file) cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("K and V cache types differ ({0} / {1}); layerfit plans one type for both")]
    MixedCacheTypes(String, String),
    #[error("'{0}' is not a cache type")]
    NotACacheType(String),
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    #[error("{flag} needs a number, got {value:?}")]
    NotANumber { flag: String, value: String },
    #[error("-dev {0}: layerfit plans use every GPU or none")]
    PartialDevices(String),
    #[error("unexpected argument '{0}'")]
    UnexpectedArgument(String),
    #[error("{0}")]
    Missing(&'static str),
    #[error("context {0} is out of range (1 to 16M tokens)")]
    ContextRange(u64),
    #[error("tensor split {0:?}: each share must be a finite number of 0 or more")]
    TensorSplit(Vec<f64>),
    #[error("not a layerfit run file")]
    Yaml(#[source] serde_norway::Error),
    #[error("unsupported run file version {0} (this layerfit reads version 1)")]
    Version(u32),
}

/// The largest context a config may name (as `--ctx` accepts).
const MAX_CONTEXT: u64 = 1 << 24;

/// What a runnable config fixes: everything the engine needs to reproduce the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    pub model: PathBuf,
    pub context: u64,
    pub n_gpu_layers: u32,
    #[serde(default)]
    pub n_cpu_moe: u32,
    /// Blocks whose dense feed-forward weights stay on the CPU (`-ot`, `--n-cpu-ffn`).
    #[serde(default)]
    pub n_cpu_ffn: u32,
    /// `--no-repack`: weights stay in the mapped file's pages.
    #[serde(default)]
    pub no_repack: bool,
    pub cache_type_k: String,
    pub cache_type_v: String,
    pub flash_attn: bool,
    #[serde(default)]
    pub tensor_split: Vec<f64>,
    /// Hide every GPU from llama.cpp (`-dev none`).
    #[serde(default)]
    pub gpu_unused: bool,
    /// The GPU is a software Vulkan device (llvmpipe), which llama.cpp uses only when
    /// `GGML_VK_VISIBLE_DEVICES` names it (`layerfit run` sets it; emitted commands carry it).
    #[serde(default)]
    pub software_gpu: bool,
    /// Sequences served at once, each with `context` tokens (llama.cpp's `-np`; `-c` is
    /// then their sum).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub parallel: u32,
    /// RPC servers (`HOST:PORT`) whose devices come first (llama.cpp's `--rpc`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rpc: Vec<String>,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl RunSettings {
    pub fn from_plan(plan: &Plan, model: PathBuf) -> RunSettings {
        RunSettings {
            model,
            context: plan.context,
            n_gpu_layers: plan.n_gpu_layers,
            n_cpu_moe: plan.n_cpu_moe,
            n_cpu_ffn: plan.n_cpu_ffn,
            no_repack: plan.no_repack,
            cache_type_k: plan.kv_type.name().into(),
            cache_type_v: plan.kv_type.name().into(),
            flash_attn: plan.flash_attn,
            tensor_split: plan.tensor_split.clone(),
            gpu_unused: plan.gpu_unused,
            software_gpu: plan
                .degradations
                .iter()
                .any(|d| d.kind == crate::plan::DegradationKind::SoftwareGpu),
            parallel: plan.parallel.max(1),
            rpc: plan.rpc.clone(),
        }
    }

    /// The cache type, when K and V agree (they always do in layerfit's plans).
    pub fn kv_type(&self) -> Result<GgmlType, ConfigError> {
        if self.cache_type_k != self.cache_type_v {
            return Err(ConfigError::MixedCacheTypes(
                self.cache_type_k.clone(),
                self.cache_type_v.clone(),
            ));
        }
        GgmlType::from_name(&self.cache_type_k)
            .filter(|t| crate::ggml_type::KV_CACHE_TYPES.contains(t))
            .ok_or_else(|| ConfigError::NotACacheType(self.cache_type_k.clone()))
    }

    /// Settings a config may carry: a cache type llama.cpp has, a context in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kv_type()?;
        if self.context == 0 || self.context > MAX_CONTEXT {
            return Err(ConfigError::ContextRange(self.context));
        }
        if self
            .tensor_split
            .iter()
            .any(|x| !(x.is_finite() && *x >= 0.0))
        {
            return Err(ConfigError::TensorSplit(self.tensor_split.clone()));
        }
        Ok(())
    }

    /// llama.cpp's arguments (`llama-server` and `llama-cli` share them).
    pub fn llama_args(&self) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "-m".into(),
            self.model.display().to_string(),
            "-c".into(),
            (self.context * u64::from(self.parallel.max(1))).to_string(),
            "-ngl".into(),
            self.n_gpu_layers.to_string(),
            "-ctk".into(),
            self.cache_type_k.clone(),
            "-ctv".into(),
            self.cache_type_v.clone(),
            "-fa".into(),
            if self.flash_attn { "on" } else { "off" }.into(),
        ];
        // The plan holds only when the server keeps to it: the sequences it sized (llama-server
        // otherwise makes 4 unified slots and caps each at the training context), no host-RAM
        // prompt cache (default 8192 MiB) and no context checkpoints (default 32 per slot),
        // both of which grow resident memory with every new prompt (issue 32).
        v.push("-np".into());
        v.push(self.parallel.max(1).to_string());
        v.push("--cache-ram".into());
        v.push("0".into());
        v.push("--ctx-checkpoints".into());
        v.push("0".into());
        if self.gpu_unused {
            v.push("-dev".into());
            v.push("none".into());
        }
        if self.n_cpu_moe > 0 {
            v.push("--n-cpu-moe".into());
            v.push(self.n_cpu_moe.to_string());
        }
        if self.no_repack {
            v.push("--no-repack".into());
        }
        if self.n_cpu_ffn > 0 {
            v.push("-ot".into());
            v.push(crate::engine::overrides::ffn_override_arg(self.n_cpu_ffn));
        }
        if !self.rpc.is_empty() {
            v.push("--rpc".into());
            v.push(self.rpc.join(","));
        }
        if !self.tensor_split.is_empty() {
            v.push("-ts".into());
            v.push(
                self.tensor_split
                    .iter()
                    .map(|f| format!("{f:.4}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        v
    }

    /// Reads llama.cpp arguments back (the program name, if present, is skipped).
    pub fn from_llama_args(args: &[String]) -> Result<RunSettings, ConfigError> {
        let mut s = RunSettings {
            model: PathBuf::new(),
            context: 0,
            n_gpu_layers: 0,
            n_cpu_moe: 0,
            n_cpu_ffn: 0,
            no_repack: false,
            cache_type_k: "f16".into(),
            cache_type_v: "f16".into(),
            flash_attn: false,
            tensor_split: Vec::new(),
            gpu_unused: false,
            software_gpu: args
                .iter()
                .any(|a| a.starts_with("GGML_VK_VISIBLE_DEVICES=")),
            parallel: 1,
            rpc: Vec::new(),
        };
        let mut it = args.iter().skip_while(|a| !a.starts_with('-'));
        let num = |v: Option<&String>, flag: &str| -> Result<u64, ConfigError> {
            v.and_then(|x| x.parse().ok())
                .ok_or_else(|| ConfigError::NotANumber {
                    flag: flag.to_string(),
                    value: v.cloned().unwrap_or_default(),
                })
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "-m" | "--model" => {
                    s.model = it.next().ok_or(ConfigError::MissingValue("-m"))?.into();
                }
                "-c" | "--ctx-size" => s.context = num(it.next(), a)?,
                "-np" | "--parallel" => {
                    s.parallel = num(it.next(), a)?.clamp(1, 256) as u32;
                }
                "-ngl" | "--n-gpu-layers" => {
                    s.n_gpu_layers = num(it.next(), a)?.min(u32::MAX as u64) as u32
                }
                "--n-cpu-moe" | "-ncmoe" => {
                    s.n_cpu_moe = num(it.next(), a)?.min(u32::MAX as u64) as u32
                }
                "--no-repack" | "-nr" => s.no_repack = true,
                // Host-side caches layerfit's engine never keeps: the value must be a number.
                "-cram" | "--cache-ram" | "-ctxcp" | "--ctx-checkpoints" | "--swa-checkpoints" => {
                    let v = it.next();
                    if v.and_then(|x| x.parse::<i64>().ok()).is_none() {
                        return Err(ConfigError::NotANumber {
                            flag: a.clone(),
                            value: v.cloned().unwrap_or_default(),
                        });
                    }
                }
                "--n-cpu-ffn" | "-ncffn" => {
                    s.n_cpu_ffn = num(it.next(), a)?.min(u32::MAX as u64) as u32
                }
                "-ot" | "--override-tensor" => {
                    let v = it.next().ok_or(ConfigError::MissingValue("-ot"))?;
                    s.n_cpu_ffn = crate::engine::overrides::parse_ffn_override_arg(v)
                        .ok_or_else(|| ConfigError::UnexpectedArgument(format!("-ot {v}")))?;
                }
                "-dev" | "--device" => match it.next().map(String::as_str) {
                    Some("none") => s.gpu_unused = true,
                    other => {
                        return Err(ConfigError::PartialDevices(other.unwrap_or("").to_string()))
                    }
                },
                "-ctk" | "--cache-type-k" => {
                    s.cache_type_k = it.next().ok_or(ConfigError::MissingValue("-ctk"))?.clone()
                }
                "-ctv" | "--cache-type-v" => {
                    s.cache_type_v = it.next().ok_or(ConfigError::MissingValue("-ctv"))?.clone()
                }
                "-fa" | "--flash-attn" => {
                    s.flash_attn = matches!(
                        it.next().map(String::as_str),
                        Some("on" | "1" | "true" | "auto")
                    )
                }
                "--rpc" => {
                    let v = it.next().ok_or(ConfigError::MissingValue("--rpc"))?;
                    let list = crate::rpc::endpoint::Endpoint::parse_list(v)
                        .map_err(|_| ConfigError::UnexpectedArgument(format!("--rpc {v}")))?;
                    s.rpc = list.iter().map(|e| e.to_string()).collect();
                }
                "-ts" | "--tensor-split" => {
                    s.tensor_split = it
                        .next()
                        .ok_or(ConfigError::MissingValue("-ts"))?
                        .split(',')
                        .map(|x| {
                            x.parse().map_err(|_| ConfigError::NotANumber {
                                flag: "-ts".into(),
                                value: x.to_string(),
                            })
                        })
                        .collect::<Result<_, _>>()?
                }
                other => return Err(ConfigError::UnexpectedArgument(other.to_string())),
            }
        }
        if s.context == 0 || s.model.as_os_str().is_empty() {
            return Err(ConfigError::Missing("the arguments need -m and -c"));
        }
        // `-c` is the context of all sequences together.
        s.context /= u64::from(s.parallel);
        s.validate()?;
        Ok(s)
    }
}

/// layerfit's run file: the settings, and what the plan promised (checked after loading).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunFile {
    /// Format version of this file.
    pub layerfit_run: u32,
    #[serde(flatten)]
    pub settings: RunSettings,
    #[serde(default)]
    pub catalog_name: Option<String>,
    #[serde(default)]
    pub threads: Option<u32>,
    pub verdict: Verdict,
    /// One line per degradation, shown with every answer.
    #[serde(default)]
    pub degradations: Vec<String>,
    /// The plan's per-device bytes, for the self-check.
    #[serde(default)]
    pub expected: Vec<DeviceUse>,
    /// Weights repacked for the CPU (mapped and copied: see `RamUse::repacked_bytes`).
    #[serde(default)]
    pub repacked_bytes: crate::bytes::Bytes,
}

impl RunFile {
    pub fn from_plan(
        plan: &Plan,
        model: PathBuf,
        catalog_name: Option<String>,
        threads: Option<u32>,
    ) -> RunFile {
        RunFile {
            layerfit_run: 1,
            settings: RunSettings::from_plan(plan, model),
            catalog_name,
            threads,
            verdict: plan.verdict,
            degradations: plan
                .degradations
                .iter()
                .map(|d| d.message.clone())
                .collect(),
            expected: plan.devices.clone(),
            repacked_bytes: plan.ram.repacked_bytes,
        }
    }

    pub fn to_yaml(&self) -> String {
        let body = serde_norway::to_string(self).expect("a run file always serializes");
        format!("# layerfit run file: `layerfit run --plan THIS_FILE`\n{body}")
    }

    pub fn parse(text: &str) -> Result<RunFile, ConfigError> {
        let f: RunFile = serde_norway::from_str(text).map_err(ConfigError::Yaml)?;
        if f.layerfit_run != 1 {
            return Err(ConfigError::Version(f.layerfit_run));
        }
        f.settings.validate()?;
        Ok(f)
    }
}
