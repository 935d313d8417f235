//! Where `--mmproj` finds the projector: a file, `auto` (the `mmproj*.gguf` next to the
//! model; for a model named on the Hub, the repository's listing; for an Ollama model, its
//! manifest's projector layer), or a URL. A remote projector is measured from its header
//! alone, read by range requests: llama.cpp's loader reads no tensor data when it only
//! measures.

use super::Failure;
use crate::fetch::name::RemoteName;
use crate::fetch::{hf, ollama};
use crate::model_source::{ModelSource, Origin};
use std::path::{Path, PathBuf};

/// A projector on this machine, or one to download.
#[derive(Clone, Debug, PartialEq)]
pub enum Located {
    Local(PathBuf),
    /// `dest` is where it would be kept (its local copy is used when there).
    Remote {
        url: String,
        dest: PathBuf,
    },
}

fn remote(url: String, dest: PathBuf) -> Located {
    if dest.is_file() {
        Located::Local(dest)
    } else {
        Located::Remote { url, dest }
    }
}

/// The model a projector goes with: its file (or where it would be), its name in messages,
/// and where it came from.
pub struct ModelRef<'a> {
    pub path: &'a Path,
    pub label: &'a str,
    pub origin: Option<&'a Origin>,
}

impl<'a> From<&'a ModelSource> for ModelRef<'a> {
    fn from(m: &'a ModelSource) -> Self {
        ModelRef {
            path: &m.path,
            label: &m.label,
            origin: Some(&m.origin),
        }
    }
}

/// The projector `name` stands for, beside `model` for `auto`.
pub fn locate(name: &str, model: &ModelRef, models_dir: &Path) -> Result<Located, Failure> {
    if name == "auto" {
        return auto(model, models_dir);
    }
    if name.starts_with("https://") || name.starts_with("http://") {
        let file = name.rsplit('/').next().unwrap_or("mmproj.gguf");
        let dest = models_dir.join("mmproj").join(sanitize(file));
        return Ok(remote(name.to_string(), dest));
    }
    if name.starts_with("hf://") {
        let n = RemoteName::parse(name).map_err(Failure::input)?;
        if let Some(RemoteName::Hf(h)) = n {
            if let Some(file) = &h.file {
                return Ok(remote(
                    hf::resolve_url(&h.repo, &h.revision, file),
                    hf::pulled_dir(models_dir, &h.repo).join(file),
                ));
            }
        }
        return Err(Failure::BadInput(format!(
            "--mmproj {name}: name the projector's file (hf://ORG/REPO/mmproj-F16.gguf), or use --mmproj auto"
        )));
    }
    Ok(Located::Local(PathBuf::from(name)))
}

fn sanitize(file: &str) -> String {
    let f: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if f.starts_with('.') || f.is_empty() {
        format!("mmproj{f}")
    } else {
        f
    }
}

fn auto(model: &ModelRef, models_dir: &Path) -> Result<Located, Failure> {
    if let Some(p) = sibling(model.path) {
        return Ok(Located::Local(p));
    }
    let remote_name = match model.origin {
        Some(Origin::Remote { name, .. }) => RemoteName::parse(name).ok().flatten(),
        _ => None,
    };
    let client = crate::fetch::client();
    match remote_name {
        Some(RemoteName::Hf(h)) => {
            let files = hf::list_files(&client, &h.repo, &h.revision)
                .map_err(|e| Failure::BadInput(format!("--mmproj auto: {e}")))?;
            let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            let model_file = match model.origin {
                Some(Origin::Remote { url, .. }) => url.rsplit('/').next().unwrap_or(""),
                _ => "",
            };
            let best = closest(&names, model_file).ok_or_else(|| {
                Failure::BadInput(format!(
                    "--mmproj auto: hf://{} has no mmproj*.gguf file; name the projector with --mmproj FILE",
                    h.repo
                ))
            })?;
            Ok(remote(
                hf::resolve_url(&h.repo, &h.revision, best),
                hf::pulled_dir(models_dir, &h.repo).join(best),
            ))
        }
        Some(RemoteName::Ollama(o)) => {
            let manifest = ollama::registry_manifest(&client, &o)
                .map_err(|e| Failure::BadInput(format!("--mmproj auto: {e}")))?;
            let layer = ollama::projector_layer(&manifest)
                .map_err(|e| Failure::BadInput(format!("--mmproj auto: {e}")))?
                .ok_or_else(|| {
                    Failure::BadInput(format!(
                        "--mmproj auto: {} has no projector layer (a text-only model)",
                        model.label
                    ))
                })?;
            let dest = ollama::pulled_path(models_dir, &o).with_extension("mmproj.gguf");
            Ok(remote(ollama::blob_url(&o, &layer.sha256), dest))
        }
        _ => {
            let dir = model.path.parent().unwrap_or(Path::new("."));
            Err(Failure::BadInput(format!(
                "--mmproj auto: no mmproj*.gguf file next to {} (in {}); name the projector with --mmproj FILE",
                model.label,
                dir.display()
            )))
        }
    }
}

/// The `mmproj*.gguf` file next to `model_path`, if any.
pub fn sibling(model_path: &Path) -> Option<PathBuf> {
    let dir = model_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let found: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let names: Vec<&str> = found.iter().map(String::as_str).collect();
    let model_file = model_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    closest(&names, model_file).map(|n| dir.join(n))
}

/// Among `names`, the `mmproj*.gguf` llama.cpp would pick for `model_file`
/// (`common/download.cpp`, `find_best_sibling`): the quantization closest to the model's,
/// then the first by name.
pub fn closest<'a>(names: &[&'a str], model_file: &str) -> Option<&'a str> {
    let mut found: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            let base = n.rsplit('/').next().unwrap_or(n).to_ascii_lowercase();
            base.contains("mmproj") && base.ends_with(".gguf")
        })
        .collect();
    found.sort();
    let model_bits = bits(model_file);
    found
        .into_iter()
        .min_by_key(|n| (bits(n) - model_bits).abs())
}

/// The bits a file name's quantization says (`Q4_K_M` 4, `F16` 16), 0 when none.
fn bits(name: &str) -> i64 {
    crate::fetch::variants::quant_of(name)
        .and_then(|q| {
            q.trim_start_matches(|c: char| !c.is_ascii_digit())
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
        })
        .unwrap_or(0)
}

/// Reads the projector's header and has llama.cpp's loader measure it: a local file whole,
/// a remote one from its header alone (a header-only copy in the temporary folder, removed
/// after). Returns its shape, the loader's figures, and the remote URL if any.
pub fn measure(
    at: &Located,
    offload: bool,
) -> Result<
    (
        crate::model::projector::ProjectorShape,
        crate::engine::projector::ProjectorMemory,
    ),
    Failure,
> {
    let engine = |p: &Path| {
        crate::engine::projector::measure(p, offload, 4)
            .map_err(|e| Failure::BadInput(format!("--mmproj {}", e.0)))
    };
    match at {
        Located::Local(p) => {
            let shape = super::projector::read(p)?;
            Ok((shape, engine(p)?))
        }
        Located::Remote { url, .. } => {
            let client = crate::fetch::client();
            let h = crate::fetch::range::read_remote_header(&client, url)
                .map_err(|e| Failure::BadInput(format!("--mmproj {url}: {e}")))?;
            let shape =
                crate::model::projector::projector_shape(&h.header.metadata, &h.header.tensors)
                    .map_err(|e| Failure::BadInput(format!("--mmproj {url}: {e}")))?;
            let tmp = std::env::temp_dir().join(format!(
                "layerfit-mmproj-header-{}.gguf",
                std::process::id()
            ));
            std::fs::write(&tmp, &h.prefix)
                .map_err(|e| Failure::BadInput(format!("{}: {e}", tmp.display())))?;
            let m = engine(&tmp);
            let _ = std::fs::remove_file(&tmp);
            Ok((shape, m?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_closest_quantization() {
        let names = [
            "model-Q4_K_M.gguf",
            "mmproj-model-f16.gguf",
            "mmproj-model-Q8_0.gguf",
            "README.md",
        ];
        assert_eq!(
            closest(&names, "model-Q4_K_M.gguf"),
            Some("mmproj-model-Q8_0.gguf")
        );
        assert_eq!(
            closest(&names, "model-BF16.gguf"),
            Some("mmproj-model-f16.gguf")
        );
        assert_eq!(closest(&names[..1], "model-Q4_K_M.gguf"), None);
        assert_eq!(sanitize("../x.gguf"), "mmproj.._x.gguf");
    }
}
