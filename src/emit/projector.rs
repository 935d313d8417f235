//! The vision projector in a runnable config: llama.cpp's `--mmproj FILE` and
//! `--no-mmproj-offload` (offload is llama.cpp's default, so only its absence is written).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The projector llama.cpp loads beside the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectorSettings {
    /// The projector file (`--mmproj`).
    pub path: PathBuf,
    /// A projector not on this machine, downloaded by llama.cpp (`--mmproj-url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// On the GPU (`--mmproj-offload`, the default) or the CPU (`--no-mmproj-offload`).
    #[serde(default = "yes")]
    pub offload: bool,
}

fn yes() -> bool {
    true
}

impl ProjectorSettings {
    pub fn from_plan(p: &crate::plan::projector::ProjectorPlan) -> ProjectorSettings {
        ProjectorSettings {
            path: p.path.clone(),
            url: p.url.clone(),
            offload: p.offload,
        }
    }

    /// llama.cpp's arguments for the projector.
    pub fn args(&self) -> Vec<String> {
        let mut v = match &self.url {
            Some(u) => vec!["--mmproj-url".into(), u.clone()],
            None => vec!["--mmproj".into(), self.path.display().to_string()],
        };
        if !self.offload {
            v.push("--no-mmproj-offload".into());
        }
        v
    }
}

/// The settings `--mmproj` and the offload flags fill while arguments are read back.
pub(super) fn projector(s: &mut Option<ProjectorSettings>) -> &mut ProjectorSettings {
    s.get_or_insert_with(|| ProjectorSettings {
        path: PathBuf::new(),
        url: None,
        offload: true,
    })
}
