//! Every model already on this machine, wherever a tool put it: layerfit's models folder,
//! Ollama's store, the Hugging Face cache (which llama.cpp's `-hf` fills too), llama.cpp's
//! older flat cache, and LM Studio's folder. An entry that cannot be read is listed with the
//! reason, never dropped.

use super::name::OllamaName;
use super::{hf, ollama, variants::quant_of};
use std::path::{Path, PathBuf};

/// Which tool's folder a model was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// layerfit's models folder (`--models-dir`, `LAYERFIT_MODELS`), where `pull` puts files.
    Models,
    Ollama,
    HfCache,
    LlamaCpp,
    LmStudio,
}

/// One model found on disk, or the reason an entry is unusable.
#[derive(Clone, Debug)]
pub struct Found {
    /// The name that finds it again (`hf://`, `ollama://`, or the path).
    pub name: String,
    pub store: Store,
    pub path: PathBuf,
    pub problem: Option<String>,
}

/// `.gguf` files under `root` (at most `depth` levels), with a broken link or unreadable
/// entry reported rather than skipped; only the first shard of a split set.
fn ggufs(root: &Path, depth: usize, out: &mut Vec<(PathBuf, Option<String>)>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => {
                if depth > 0 {
                    ggufs(&p, depth - 1, out)
                }
            }
            _ if !name.ends_with(".gguf") || name.contains("mmproj") => {}
            _ if crate::gguf::split_shard_paths(&p).is_some_and(|s| s[0] != p) => {}
            Ok(_) => out.push((p, None)),
            Err(e) => out.push((
                p,
                // The reason only: the models table says "unreadable:" itself.
                Some(format!("{e} (a broken link to a missing blob?)")),
            )),
        }
    }
}

fn env_dir(k: &str) -> Option<PathBuf> {
    std::env::var_os(k)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The name a file in the models folder is found by: `hf/ORG/REPO/...` and
/// `ollama/HOST/NS/NAME/TAG.gguf` are where `pull` put them; anything else is its path.
fn models_folder_name(models_dir: &Path, p: &Path) -> String {
    let rel: Vec<String> = p
        .strip_prefix(models_dir)
        .map(|r| r.iter().map(|c| c.to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    match rel
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["hf", org, repo, rest @ ..] if !rest.is_empty() => {
            match quant_of(rest.last().unwrap_or(&"")) {
                Some(q) => format!("hf://{org}/{repo}:{q}"),
                None => format!("hf://{org}/{repo}/{}", rest.join("/")),
            }
        }
        ["ollama", host, ns, name, tag] => OllamaName {
            host: host.to_string(),
            namespace: ns.to_string(),
            name: name.to_string(),
            tag: tag.trim_end_matches(".gguf").to_string(),
        }
        .to_string(),
        _ => p.display().to_string(),
    }
}

/// Every model in every store, in store order.
pub fn scan(models_dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let mut push = |store, name: String, path: PathBuf, problem| {
        out.push(Found {
            name,
            store,
            path,
            problem,
        })
    };
    let mut files = Vec::new();
    ggufs(models_dir, 6, &mut files);
    for (p, problem) in files {
        push(
            Store::Models,
            models_folder_name(models_dir, &p),
            p,
            problem,
        );
    }
    for (name, manifest, bytes) in ollama::list_local() {
        let store = manifest
            .ancestors()
            .nth(5)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let layer = match bytes.map(|b| ollama::model_layer(&b)) {
            None => Err("the manifest cannot be read".to_string()),
            Some(Err(e)) => Err(e),
            Some(Ok(None)) => continue, // not a GGUF model (an embedding-only or other artifact)
            Some(Ok(Some(l))) => Ok(l),
        };
        match layer {
            Ok(l) => {
                let blob = ollama::blob_path(&store, &l.sha256);
                let problem = (!blob.is_file())
                    .then(|| format!("its model blob {} is missing", blob.display()));
                push(Store::Ollama, name, blob, problem);
            }
            Err(e) => push(Store::Ollama, name, manifest, Some(e)),
        }
    }
    for cache in hf::cache_dirs() {
        let Ok(rd) = std::fs::read_dir(&cache) else {
            continue;
        };
        let mut repos: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        repos.sort();
        for folder in repos {
            let Some(repo) = folder
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("models--"))
                .map(|r| r.replacen("--", "/", 1))
            else {
                continue;
            };
            let Some(snap) = hf::snapshot(&cache, &repo, "main") else {
                continue;
            };
            let mut files = Vec::new();
            ggufs(&snap, 8, &mut files);
            for (p, problem) in files {
                let rel = p
                    .strip_prefix(&snap)
                    .map(|r| r.display().to_string())
                    .unwrap_or_default();
                let name = match quant_of(&rel) {
                    Some(q) => format!("hf://{repo}:{q}"),
                    None => format!("hf://{repo}/{rel}"),
                };
                push(Store::HfCache, name, p, problem);
            }
        }
    }
    // llama.cpp before it moved to the Hugging Face layout: flat files in its own cache.
    let llama_cache = env_dir("LLAMA_CACHE")
        .or_else(|| env_dir("XDG_CACHE_HOME").map(|d| d.join("llama.cpp")))
        .or_else(|| env_dir("HOME").map(|h| h.join(".cache/llama.cpp")));
    if let Some(d) = llama_cache {
        let mut files = Vec::new();
        ggufs(&d, 0, &mut files);
        for (p, problem) in files {
            push(Store::LlamaCpp, p.display().to_string(), p, problem);
        }
    }
    // LM Studio: PUBLISHER/REPO/FILE.gguf under ~/.lmstudio/models (older: ~/.cache/lm-studio/models).
    if let Some(home) = env_dir("HOME") {
        for d in [
            home.join(".lmstudio/models"),
            home.join(".cache/lm-studio/models"),
        ] {
            let mut files = Vec::new();
            ggufs(&d, 3, &mut files);
            for (p, problem) in files {
                push(Store::LmStudio, p.display().to_string(), p, problem);
            }
        }
    }
    out
}
