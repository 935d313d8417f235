//! Profiles (`profiles/*.yaml`): what a use case requires and prefers (minimum context,
//! candidate models best first, allowed KV cache types, a quality floor, RAM kept for the
//! rest of the application) and the machine it was written for. Never layer counts: the
//! planner computes those from the real header and the real (or target) machine.

use crate::ggml_type::GgmlType;
use crate::hardware::whatif::{opt_size_text, parse_size, Description, SizeError};
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
    #[serde(default, deserialize_with = "opt_size_text")]
    pub app_reserve: Option<String>,
    /// VRAM kept for other models sharing the GPU, e.g. `3.6G`.
    #[serde(default, deserialize_with = "opt_size_text")]
    pub vram_reserve: Option<String>,
    /// A hard cap on the RAM the model may use (a process or container budget), e.g. `512M`.
    #[serde(default, deserialize_with = "opt_size_text")]
    pub memory_limit: Option<String>,
    /// Speed floor (generated tokens/s): better quality is worth speed only down to it
    /// (`--min-speed`; 0 turns it off) [default: 5].
    #[serde(default)]
    pub min_speed: Option<f64>,
    /// CPU threads the engine may use (a small machine's limit).
    #[serde(default)]
    pub threads: Option<u32>,
    /// The machine the profile was written for (`plan --on-target`).
    pub target: Description,
}

/// Why a profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {profile}: '{kv}' is not a KV cache type")]
    NotACacheType { profile: String, kv: String },
    #[error("profile {profile}: {field}")]
    Size {
        profile: String,
        field: &'static str,
        #[source]
        source: SizeError,
    },
    #[error("{file}: not a profile")]
    Yaml {
        file: String,
        #[source]
        source: serde_norway::Error,
    },
    #[error("{file}: {what}")]
    Invalid { file: String, what: &'static str },
    #[error("{file}: cannot be read")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a tier list (`profiles: [NAME or FILE.yaml, ...]`, best first)")]
    AppTiers {
        file: String,
        #[source]
        source: serde_norway::Error,
    },
    #[error("no profile '{name}' (built in: {known})")]
    Unknown { name: String, known: String },
}

fn default_kv() -> Vec<String> {
    vec!["f16".into(), "q8_0".into(), "q4_0".into()]
}

impl Profile {
    pub fn kv(&self) -> Result<Vec<GgmlType>, ProfileError> {
        self.kv_types
            .iter()
            .map(|k| {
                GgmlType::from_name(k)
                    .filter(|t| crate::ggml_type::KV_CACHE_TYPES.contains(t))
                    .ok_or_else(|| ProfileError::NotACacheType {
                        profile: self.name.clone(),
                        kv: k.clone(),
                    })
            })
            .collect()
    }

    fn size(&self, field: &'static str, v: &Option<String>) -> Result<Option<u64>, ProfileError> {
        v.as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|source| ProfileError::Size {
                profile: self.name.clone(),
                field,
                source,
            })
    }

    pub fn app_reserve_bytes(&self) -> Result<u64, ProfileError> {
        Ok(self.size("app_reserve", &self.app_reserve)?.unwrap_or(0))
    }

    pub fn vram_reserve_bytes(&self) -> Result<u64, ProfileError> {
        Ok(self.size("vram_reserve", &self.vram_reserve)?.unwrap_or(0))
    }

    pub fn memory_limit_bytes(&self) -> Result<Option<u64>, ProfileError> {
        self.size("memory_limit", &self.memory_limit)
    }
}

fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
    let p: Profile = serde_norway::from_str(text).map_err(|source| ProfileError::Yaml {
        file: file.to_string(),
        source,
    })?;
    let invalid = |what| ProfileError::Invalid {
        file: file.to_string(),
        what,
    };
    if p.models.is_empty() {
        return Err(invalid("a profile needs at least one model"));
    }
    if p.min_context == 0 {
        return Err(invalid("min_context is 0: a profile needs a context"));
    }
    if p.threads == Some(0) {
        return Err(invalid("threads is 0: use at least one, or leave it out"));
    }
    if p.min_bits_per_weight
        .is_some_and(|b| !(b.is_finite() && b > 0.0))
    {
        return Err(invalid("min_bits_per_weight must be a positive number"));
    }
    if p.min_speed.is_some_and(|s| !(s.is_finite() && s >= 0.0)) {
        return Err(invalid("min_speed must be a number of tokens/s, 0 or more"));
    }
    p.kv()?;
    p.app_reserve_bytes()?;
    p.vram_reserve_bytes()?;
    p.memory_limit_bytes()?;
    Ok(p)
}

/// The built-in profiles (every `profiles/*.yaml` except the GPU table), by file name.
pub fn builtin() -> Result<Vec<Profile>, ProfileError> {
    FILES
        .iter()
        .filter(|(f, _)| *f != "gpus.yaml")
        .map(|(f, t)| parse(f, t))
        .collect()
}

/// A built-in profile by name, or a profile file by path.
pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
    let path = Path::new(name_or_path);
    if name_or_path.ends_with(".yaml") || name_or_path.contains('/') {
        let text =
            crate::hardware::whatif::read_bounded(path).map_err(|source| ProfileError::Read {
                file: name_or_path.to_string(),
                source,
            })?;
        return parse(name_or_path, &text);
    }
    let all = builtin()?;
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    all.into_iter()
        .find(|p| p.name == name_or_path)
        .ok_or_else(|| ProfileError::Unknown {
            name: name_or_path.to_string(),
            known: names.join(", "),
        })
}

/// The built-in tiers, best experience first: without a model, `check-requirements` plans
/// them all and, other rules equal, prefers the earlier (docs/ranking.md).
pub const TIERS: &[&str] = &[
    "workstation_4090",
    "premium_24gb",
    "standard_16gb",
    "basic_12gb",
    "hybrid_8gb",
    "lowram_mmap_7b",
    "chat_4gb_cpu",
    "chromebook_512mb",
];

/// An application's own tiers: `layerfit.yaml` with `profiles:`, best first; each a
/// built-in name or a profile file relative to the `layerfit.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppTiers {
    profiles: Vec<String>,
}

/// The tiers to rank and where they come from: the `profiles:` of `layerfit.yaml` in `cwd`,
/// else in `config_dir` (the user's `~/.config/layerfit`), else the built-in `TIERS`.
pub fn tiers(
    cwd: &Path,
    config_dir: Option<&Path>,
) -> Result<(Vec<String>, Option<std::path::PathBuf>), ProfileError> {
    let candidates = std::iter::once(cwd.join("layerfit.yaml"))
        .chain(config_dir.map(|d| d.join("layerfit.yaml")));
    if let Some(file) = candidates.into_iter().find(|f| f.is_file()) {
        let name = file.display().to_string();
        let text =
            crate::hardware::whatif::read_bounded(&file).map_err(|source| ProfileError::Read {
                file: name.clone(),
                source,
            })?;
        let app: AppTiers =
            serde_norway::from_str(&text).map_err(|source| ProfileError::AppTiers {
                file: name.clone(),
                source,
            })?;
        if app.profiles.is_empty() {
            return Err(ProfileError::Invalid {
                file: name,
                what: "profiles: lists no profile",
            });
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let list = app
            .profiles
            .iter()
            .map(|p| {
                if p.ends_with(".yaml") || p.contains('/') {
                    base.join(p).display().to_string()
                } else {
                    p.clone()
                }
            })
            .collect();
        return Ok((list, Some(file)));
    }
    let mut list: Vec<String> = TIERS.iter().map(|s| s.to_string()).collect();
    for p in builtin()? {
        if !list.contains(&p.name) {
            list.push(p.name);
        }
    }
    Ok((list, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_come_from_an_application_file_else_the_builtins() {
        let dir = std::env::temp_dir().join(format!("layerfit-tiers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (list, from) = tiers(&dir, None).unwrap();
        assert_eq!(from, None);
        assert_eq!(list[0], "workstation_4090");
        assert_eq!(list.len(), builtin().unwrap().len());
        std::fs::write(
            dir.join("layerfit.yaml"),
            "profiles: [mine.yaml, chat_4gb_cpu]\n",
        )
        .unwrap();
        let (list, from) = tiers(&dir, None).unwrap();
        assert_eq!(from, Some(dir.join("layerfit.yaml")));
        assert_eq!(
            list,
            vec![
                dir.join("mine.yaml").display().to_string(),
                "chat_4gb_cpu".into()
            ]
        );
        std::fs::write(dir.join("layerfit.yaml"), "profiles: []\n").unwrap();
        assert!(tiers(&dir, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
