//! Runnable configurations from a plan, and back: llama.cpp arguments, an Ollama Modelfile
//! with the environment it needs, and layerfit's own run file (`layerfit run --plan FILE`).
//! Each format parses back into the same [`RunSettings`], so a config can be re-planned and
//! checked (tests: emitted configs round-trip to the same plan).

use crate::ggml_type::GgmlType;
use crate::plan::{DeviceUse, Plan, Verdict};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

mod ollama;
mod projector;
mod slot;
pub use ollama::OllamaConfig;
pub use projector::ProjectorSettings;
pub use slot::SlotContext;

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
    /// The draft model for speculative decoding (`-md`), as planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<DraftSettings>,
    /// The vision projector (`--mmproj`), as planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmproj: Option<ProjectorSettings>,
}

/// The draft model's settings: llama.cpp's `-md`, `-ngld`, `-ctkd`/`-ctvd`, `-devd none`
/// and `--spec-draft-n-max`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftSettings {
    pub model: PathBuf,
    pub n_gpu_layers: u32,
    pub cache_type: String,
    /// The GPUs hidden from the draft (`-devd none`).
    #[serde(default)]
    pub gpu_unused: bool,
    pub draft_max: u32,
}

impl DraftSettings {
    pub fn from_plan(d: &crate::plan::draft::DraftPlan) -> DraftSettings {
        DraftSettings {
            model: d.path.clone(),
            n_gpu_layers: d.n_gpu_layers,
            cache_type: d.kv_type.name().into(),
            gpu_unused: d.placement == crate::plan::draft::DraftPlacement::Cpu,
            draft_max: d.draft_max,
        }
    }

    pub fn kv_type(&self) -> Result<GgmlType, ConfigError> {
        GgmlType::from_name(&self.cache_type)
            .filter(|t| crate::ggml_type::KV_CACHE_TYPES.contains(t))
            .ok_or_else(|| ConfigError::NotACacheType(self.cache_type.clone()))
    }

    /// llama.cpp's arguments for the draft (`llama-server`, `llama-speculative`).
    fn args(&self) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "-md".into(),
            self.model.display().to_string(),
            "--spec-type".into(),
            "draft-simple".into(),
            "-ngld".into(),
            self.n_gpu_layers.to_string(),
            "-ctkd".into(),
            self.cache_type.clone(),
            "-ctvd".into(),
            self.cache_type.clone(),
            "--spec-draft-n-max".into(),
            self.draft_max.to_string(),
        ];
        if self.gpu_unused {
            v.push("-devd".into());
            v.push("none".into());
        }
        v
    }
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
            draft: plan.draft.as_ref().map(DraftSettings::from_plan),
            mmproj: plan.projector.as_ref().map(ProjectorSettings::from_plan),
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
        if self
            .mmproj
            .as_ref()
            .is_some_and(|p| p.path.as_os_str().is_empty() && p.url.is_none())
        {
            return Err(ConfigError::Missing("--no-mmproj-offload needs --mmproj"));
        }
        if let Some(d) = &self.draft {
            d.kv_type()?;
            if d.model.as_os_str().is_empty() {
                return Err(ConfigError::Missing("the draft needs -md"));
            }
        }
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
        if let Some(d) = &self.draft {
            v.extend(d.args());
        }
        if let Some(p) = &self.mmproj {
            v.extend(p.args());
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
            draft: None,
            mmproj: None,
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
                // What lifts llama-server's cap of a slot at the training context
                // (`SlotContext`): the plan is sized by `-c` and `-np` all the same.
                "--override-kv" => {
                    let v = it
                        .next()
                        .ok_or(ConfigError::MissingValue("--override-kv"))?;
                    if !slot::is_context_override(v) {
                        return Err(ConfigError::UnexpectedArgument(format!(
                            "--override-kv {v}"
                        )));
                    }
                }
                "--yarn-orig-ctx" => {
                    num(it.next(), a)?;
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
                "-mm" | "--mmproj" => {
                    projector::projector(&mut s.mmproj).path = it
                        .next()
                        .ok_or(ConfigError::MissingValue("--mmproj"))?
                        .into();
                }
                "-mmu" | "--mmproj-url" => {
                    projector::projector(&mut s.mmproj).url = Some(
                        it.next()
                            .ok_or(ConfigError::MissingValue("--mmproj-url"))?
                            .clone(),
                    );
                }
                "--no-mmproj-offload" => projector::projector(&mut s.mmproj).offload = false,
                "--mmproj-offload" => projector::projector(&mut s.mmproj).offload = true,
                "-md" | "--model-draft" | "--spec-draft-model" => {
                    draft(&mut s).model = it.next().ok_or(ConfigError::MissingValue("-md"))?.into();
                }
                "--spec-type" => {
                    let v = it.next().ok_or(ConfigError::MissingValue("--spec-type"))?;
                    if v != "draft-simple" {
                        return Err(ConfigError::UnexpectedArgument(format!("--spec-type {v}")));
                    }
                }
                "-ngld" | "--gpu-layers-draft" | "--n-gpu-layers-draft" | "--spec-draft-ngl" => {
                    draft(&mut s).n_gpu_layers = num(it.next(), a)?.min(u32::MAX as u64) as u32
                }
                "-ctkd" | "-ctvd" | "--cache-type-k-draft" | "--cache-type-v-draft" => {
                    let v = it.next().ok_or(ConfigError::MissingValue("-ctkd"))?.clone();
                    let d = draft(&mut s);
                    // One type for K and V, as for the model's own cache.
                    if !d.cache_type.is_empty() && d.cache_type != v {
                        return Err(ConfigError::MixedCacheTypes(d.cache_type.clone(), v));
                    }
                    d.cache_type = v;
                }
                "--spec-draft-n-max" => {
                    draft(&mut s).draft_max = num(it.next(), a)?.clamp(1, 64) as u32
                }
                "-devd" | "--device-draft" | "--spec-draft-device" => {
                    match it.next().map(String::as_str) {
                        Some("none") => draft(&mut s).gpu_unused = true,
                        other => {
                            return Err(ConfigError::PartialDevices(
                                other.unwrap_or("").to_string(),
                            ))
                        }
                    }
                }
                other => return Err(ConfigError::UnexpectedArgument(other.to_string())),
            }
        }
        if let Some(d) = &mut s.draft {
            if d.cache_type.is_empty() {
                d.cache_type = "f16".into();
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

/// The draft being read back from llama.cpp arguments (created by its first flag).
fn draft(s: &mut RunSettings) -> &mut DraftSettings {
    s.draft.get_or_insert_with(|| DraftSettings {
        model: PathBuf::new(),
        n_gpu_layers: 0,
        cache_type: String::new(),
        gpu_unused: false,
        draft_max: crate::plan::draft::DEFAULT_DRAFT_MAX,
    })
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
