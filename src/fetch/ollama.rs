//! Ollama: its local store (`OLLAMA_MODELS`, `~/.ollama/models`, the Linux service's
//! `/usr/share/ollama/.ollama/models`: `manifests/HOST/NS/NAME/TAG` and `blobs/sha256-HEX`)
//! and its registry (`/v2/NS/NAME/manifests/TAG`, `/v2/NS/NAME/blobs/sha256:HEX`).
//! The model is the manifest layer of media type `application/vnd.ollama.image.model`.

use super::http::{net_error, Client, NetError};
use super::name::{is_loopback, OllamaName};
use std::path::{Path, PathBuf};

pub const MODEL_MEDIA_TYPE: &str = "application/vnd.ollama.image.model";
const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MANIFEST_CAP: u64 = 1 << 20;

/// The model layer of a manifest: its digest (`sha256:HEX`) and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelLayer {
    pub sha256: String,
    pub size: Option<u64>,
}

/// The media type of a vision model's projector layer (Ollama's `mmproj`).
pub const PROJECTOR_MEDIA_TYPE: &str = "application/vnd.ollama.image.projector";

/// Reads a manifest's model layer; `None` when the manifest has none (not a model).
pub fn model_layer(manifest: &[u8]) -> Result<Option<ModelLayer>, String> {
    layer_of(manifest, MODEL_MEDIA_TYPE)
}

/// Reads a manifest's projector layer; `None` for a text-only model.
pub fn projector_layer(manifest: &[u8]) -> Result<Option<ModelLayer>, String> {
    layer_of(manifest, PROJECTOR_MEDIA_TYPE)
}

/// The registry's manifest of `name` (at most 1 MiB).
pub fn registry_manifest(client: &Client, name: &OllamaName) -> Result<Vec<u8>, NetError> {
    let url = format!("{}/manifests/{}", base_url(name), name.tag);
    client.get_small(&url, &[("Accept", MANIFEST_ACCEPT.into())], MANIFEST_CAP)
}

fn layer_of(manifest: &[u8], media_type: &str) -> Result<Option<ModelLayer>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("not an Ollama manifest: {e}"))?;
    let layers = v
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or("not an Ollama manifest: no layers")?;
    for l in layers {
        if l.get("mediaType").and_then(|m| m.as_str()) != Some(media_type) {
            continue;
        }
        let digest = l.get("digest").and_then(|d| d.as_str()).unwrap_or("");
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                format!("the {media_type} layer's digest '{digest}' is not sha256:HEX")
            })?;
        return Ok(Some(ModelLayer {
            sha256: hex.to_ascii_lowercase(),
            size: l.get("size").and_then(|s| s.as_u64()),
        }));
    }
    Ok(None)
}

/// Ollama's store folders that exist, in the order Ollama itself would use them.
pub fn store_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = [
        std::env::var_os("OLLAMA_MODELS")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".ollama/models")),
        Some(PathBuf::from("/usr/share/ollama/.ollama/models")),
    ]
    .into_iter()
    .flatten()
    .collect();
    dirs.dedup();
    dirs.retain(|d| d.join("manifests").is_dir());
    dirs
}

/// The blob file of a model in a local store, if the store has the model and its blob.
pub fn find_local(name: &OllamaName) -> Option<(PathBuf, ModelLayer)> {
    store_dirs().into_iter().find_map(|store| {
        let manifest = store
            .join("manifests")
            .join(&name.host)
            .join(&name.namespace)
            .join(&name.name)
            .join(&name.tag);
        let bytes = read_small(&manifest)?;
        let layer = model_layer(&bytes).ok()??;
        let blob = blob_path(&store, &layer.sha256);
        blob.is_file().then_some((blob, layer))
    })
}

/// `blobs/sha256-HEX` (a `:` in the digest becomes `-` in the file name).
pub fn blob_path(store: &Path, sha256: &str) -> PathBuf {
    store.join("blobs").join(format!("sha256-{sha256}"))
}

fn read_small(p: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(p).ok()?;
    (meta.is_file() && meta.len() <= MANIFEST_CAP)
        .then(|| std::fs::read(p).ok())
        .flatten()
}

fn base_url(name: &OllamaName) -> String {
    let host = name
        .host
        .rsplit_once(':')
        .map_or(name.host.as_str(), |(h, _)| h);
    let scheme = if is_loopback(host) { "http" } else { "https" };
    format!(
        "{scheme}://{}/v2/{}/{}",
        name.host, name.namespace, name.name
    )
}

pub fn blob_url(name: &OllamaName, sha256: &str) -> String {
    format!("{}/blobs/sha256:{sha256}", base_url(name))
}

/// The model layer of `name` in its registry.
pub fn registry_layer(client: &Client, name: &OllamaName) -> Result<ModelLayer, NetError> {
    let url = format!("{}/manifests/{}", base_url(name), name.tag);
    let body = client.get_small(&url, &[("Accept", MANIFEST_ACCEPT.into())], MANIFEST_CAP)?;
    match model_layer(&body) {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(net_error(
            &url,
            "the manifest has no model layer (not a GGUF model)",
        )),
        Err(e) => Err(net_error(&url, e)),
    }
}

/// Every model in the local stores: (name, manifest file, the manifest's bytes).
pub fn list_local() -> Vec<(String, PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for store in store_dirs() {
        let root = store.join("manifests");
        for host in subdirs(&root) {
            for ns in subdirs(&host) {
                for model in subdirs(&ns) {
                    let Ok(rd) = std::fs::read_dir(&model) else {
                        continue;
                    };
                    for tag in rd.flatten().map(|e| e.path()).filter(|p| p.is_file()) {
                        let part = |p: &Path| {
                            p.file_name()
                                .map(|n| n.to_string_lossy().to_string())
                                .unwrap_or_default()
                        };
                        let name = OllamaName {
                            host: part(&host),
                            namespace: part(&ns),
                            name: part(&model),
                            tag: part(&tag),
                        };
                        let bytes = read_small(&tag);
                        out.push((name.to_string(), tag, bytes));
                    }
                }
            }
        }
    }
    out
}

fn subdirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Where `layerfit pull` keeps an Ollama model in the models folder.
pub fn pulled_path(models_dir: &Path, name: &OllamaName) -> PathBuf {
    models_dir
        .join("ollama")
        .join(&name.host)
        .join(&name.namespace)
        .join(&name.name)
        .join(format!("{}.gguf", name.tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests() {
        let hex = "a".repeat(64);
        let m = format!(
            r#"{{"schemaVersion":2,"layers":[{{"mediaType":"application/vnd.ollama.image.template","digest":"sha256:{hex}","size":3}},{{"mediaType":"{MODEL_MEDIA_TYPE}","digest":"sha256:{hex}","size":99}}]}}"#
        );
        assert_eq!(
            model_layer(m.as_bytes()).unwrap(),
            Some(ModelLayer {
                sha256: hex.clone(),
                size: Some(99)
            })
        );
        assert_eq!(model_layer(br#"{"layers":[]}"#).unwrap(), None);
        assert!(model_layer(b"nope").is_err());
        let bad = format!(
            r#"{{"layers":[{{"mediaType":"{MODEL_MEDIA_TYPE}","digest":"sha256:../../x"}}]}}"#
        );
        assert!(model_layer(bad.as_bytes()).is_err());
    }
}
