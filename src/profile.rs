//! Profiles (`profiles/*.yaml`): what a use case requires and prefers (minimum context,
//! candidate models best first, allowed KV cache types, a quality floor, RAM kept for the
//! rest of the application) and the machine it was written for. Never layer counts: the
//! planner computes those from the real header and the real (or target) machine.

use crate::hardware::whatif::{parse_size, Description};
use crate::memory::ggml_type::GgmlType;
use serde::Deserialize;
use std::path::Path;

const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/profile_files.rs"));

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Where the scenario comes from (a seed document) and what it claimed.
    pub source: String,
    pub min_context: u64,
    /// Candidate models, best first: catalog names (`qwen2.5-coder:7b-q4_k_m`) or files.
    pub models: Vec<String>,
    /// Allowed KV cache types, best first.
    #[serde(default = "default_kv")]
    pub kv_types: Vec<String>,
    /// Weights below this many bits per weight are not considered (variant search).
    #[serde(default)]
    pub min_bits_per_weight: Option<f64>,
    /// RAM for the rest of the application, e.g. `1G` (a size string).
    #[serde(default)]
    pub app_reserve: Option<String>,
    /// VRAM kept for other models sharing the GPU, e.g. `3.6G`.
    #[serde(default)]
    pub vram_reserve: Option<String>,
    /// A hard cap on the RAM the model may use (a process or container budget), e.g. `512M`.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// CPU threads the engine may use (a small machine's limit).
    #[serde(default)]
    pub threads: Option<u32>,
    /// The machine the profile was written for (`plan --on-target`).
    pub target: Description,
}

fn default_kv() -> Vec<String> {
    vec!["f16".into(), "q8_0".into(), "q4_0".into()]
}

impl Profile {
    pub fn kv(&self) -> Result<Vec<GgmlType>, String> {
        self.kv_types
            .iter()
            .map(|k| {
                GgmlType::from_name(k)
                    .filter(|t| crate::memory::ggml_type::KV_CACHE_TYPES.contains(t))
                    .ok_or_else(|| format!("profile {}: '{k}' is not a KV cache type", self.name))
            })
            .collect()
    }

    pub fn app_reserve_bytes(&self) -> Result<u64, String> {
        size_or_zero(&self.app_reserve)
    }

    pub fn vram_reserve_bytes(&self) -> Result<u64, String> {
        size_or_zero(&self.vram_reserve)
    }

    pub fn memory_limit_bytes(&self) -> Result<Option<u64>, String> {
        self.memory_limit.as_deref().map(parse_size).transpose()
    }
}

fn size_or_zero(s: &Option<String>) -> Result<u64, String> {
    s.as_deref()
        .map(parse_size)
        .transpose()
        .map(|v| v.unwrap_or(0))
}

fn parse(file: &str, text: &str) -> Result<Profile, String> {
    let p: Profile = serde_norway::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    if p.models.is_empty() {
        return Err(format!("{file}: a profile needs at least one model"));
    }
    p.kv().map_err(|e| format!("{file}: {e}"))?;
    p.app_reserve_bytes().map_err(|e| format!("{file}: {e}"))?;
    p.vram_reserve_bytes().map_err(|e| format!("{file}: {e}"))?;
    p.memory_limit_bytes().map_err(|e| format!("{file}: {e}"))?;
    Ok(p)
}

/// The built-in profiles (every `profiles/*.yaml` except the GPU table), by file name.
pub fn builtin() -> Result<Vec<Profile>, String> {
    FILES
        .iter()
        .filter(|(f, _)| *f != "gpus.yaml")
        .map(|(f, t)| parse(f, t))
        .collect()
}

/// A built-in profile by name, or a profile file by path.
pub fn load(name_or_path: &str) -> Result<Profile, String> {
    let path = Path::new(name_or_path);
    if name_or_path.ends_with(".yaml") || name_or_path.contains('/') {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{name_or_path}: {e}"))?;
        return parse(name_or_path, &text);
    }
    let all = builtin()?;
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    all.into_iter()
        .find(|p| p.name == name_or_path)
        .ok_or_else(|| {
            format!(
                "no profile '{name_or_path}' (built in: {})",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_name_catalog_models() {
        let all = builtin().unwrap();
        assert!(all.len() >= 8, "{} profiles", all.len());
        for p in &all {
            for m in &p.models {
                let r = crate::catalog::lookup(m).unwrap();
                assert!(r.is_some(), "profile {}: {m} is not in the catalog", p.name);
            }
        }
    }
}
