//! Hugging Face: the Hub's file listing and download URLs (`HF_ENDPOINT`, `HF_TOKEN` as the
//! Hub's own tools honour them), and the local Hugging Face cache that huggingface_hub and
//! llama.cpp fill (`models--ORG--REPO/refs/REV` → `snapshots/COMMIT/PATH`).

use super::http::{net_error, Client, NetError, Token};
use super::name::host_of;
use super::variants::{group, local_files, RepoFile, Variant};
use std::path::{Path, PathBuf};

/// Listing pages followed (the Hub pages at 1,000 entries; a GGUF repository has far fewer).
const MAX_PAGES: usize = 20;
/// A listing page larger than this is not a listing.
const LISTING_CAP: u64 = 16 << 20;

/// `HF_ENDPOINT`, else the Hub.
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().trim_end_matches('/').to_string())
        .unwrap_or_else(|| "https://huggingface.co".to_string())
}

/// `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), for the endpoint's host only.
pub fn token() -> Option<Token> {
    let secret = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))?;
    let ep = endpoint();
    let host = host_of(ep.split_once("://").map_or("", |(_, r)| r)).to_string();
    Some(Token::new(&host, secret.trim().to_string()))
}

pub fn resolve_url(repo: &str, revision: &str, path: &str) -> String {
    format!("{}/{repo}/resolve/{revision}/{path}", endpoint())
}

/// Every GGUF variant of `repo` at `revision`, from the Hub's tree listing.
pub fn list(client: &Client, repo: &str, revision: &str) -> Result<Vec<Variant>, NetError> {
    list_files(client, repo, revision).map(group)
}

/// Every file of `repo` at `revision` (projectors included), from the Hub's tree listing.
pub fn list_files(client: &Client, repo: &str, revision: &str) -> Result<Vec<RepoFile>, NetError> {
    let mut url = format!(
        "{}/api/models/{repo}/tree/{revision}?recursive=true",
        endpoint()
    );
    let mut files = Vec::new();
    for _ in 0..MAX_PAGES {
        let r = client.get(&url, &[("Accept", "application/json".into())], false)?;
        if !(200..300).contains(&r.status) {
            return Err(super::http::status_error(
                &r.url,
                r.status,
                r.header("retry-after"),
            ));
        }
        let next = r.header("link").and_then(next_link);
        let page_url = r.url.clone();
        let body = r.read_capped(LISTING_CAP)?;
        files.extend(parse_listing(&body).map_err(|e| net_error(&page_url, e))?);
        match next {
            Some(n) => url = n,
            None => return Ok(files),
        }
    }
    Err(net_error(
        &url,
        format!("the listing has more than {MAX_PAGES} pages"),
    ))
}

/// The files of one page of the Hub's tree listing (directories skipped). A path that could
/// climb out of the repository's folder is refused, since files are saved under it.
pub fn parse_listing(body: &[u8]) -> Result<Vec<RepoFile>, String> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a Hub file listing: {e}"))?;
    let mut files = Vec::new();
    for e in entries {
        if e.get("type").and_then(|t| t.as_str()) != Some("file") {
            continue;
        }
        let Some(path) = e.get("path").and_then(|p| p.as_str()) else {
            continue;
        };
        if path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            || path.contains('\\')
        {
            return Err(format!("the listing names an unsafe path {path:?}"));
        }
        let lfs = e.get("lfs");
        files.push(RepoFile {
            path: path.to_string(),
            size: lfs
                .and_then(|l| l.get("size"))
                .or(e.get("size"))
                .and_then(|s| s.as_u64()),
            sha256: lfs
                .and_then(|l| l.get("oid"))
                .and_then(|s| s.as_str())
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase),
        });
    }
    Ok(files)
}

/// `<URL>; rel="next"` from a `Link` header.
fn next_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let (u, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            u.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// The Hugging Face cache folders to look in, in the order llama.cpp's `hf_cache` tries
/// them (`LLAMA_CACHE`, `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`,
/// `XDG_CACHE_HOME/huggingface/hub`, `~/.cache/huggingface/hub`); every one that exists.
pub fn cache_dirs() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut dirs: Vec<PathBuf> = [
        env("LLAMA_CACHE"),
        env("HF_HUB_CACHE"),
        env("HUGGINGFACE_HUB_CACHE"),
        env("HF_HOME").map(|h| h.join("hub")),
        env("XDG_CACHE_HOME").map(|h| h.join("huggingface/hub")),
        env("HOME").map(|h| h.join(".cache/huggingface/hub")),
    ]
    .into_iter()
    .flatten()
    .collect();
    dirs.dedup();
    dirs.retain(|d| d.is_dir());
    dirs
}

/// `ORG/REPO` → `models--ORG--REPO`.
pub fn cache_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

/// The snapshot folder of `repo` at `revision` in a cache: a commit hash as written, or
/// the commit a ref (`refs/main`) points at.
pub fn snapshot(cache: &Path, repo: &str, revision: &str) -> Option<PathBuf> {
    let base = cache.join(cache_folder(repo));
    let commit = if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        revision.to_string()
    } else {
        let text = std::fs::read_to_string(base.join("refs").join(revision)).ok()?;
        text.trim().to_string()
    };
    if commit.is_empty() || commit.contains(['/', '.']) {
        return None;
    }
    let dir = base.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

/// The GGUF files of `repo` already on this machine: pulled into the models folder
/// (`MODELS/hf/ORG/REPO/`) or in a Hugging Face cache snapshot. Repository path → file.
pub fn local(models_dir: &Path, repo: &str, revision: &str) -> Vec<(RepoFile, PathBuf)> {
    let mut out = local_files(&pulled_dir(models_dir, repo), 8);
    for c in cache_dirs() {
        if let Some(s) = snapshot(&c, repo, revision) {
            for (f, p) in local_files(&s, 8) {
                if !out.iter().any(|(g, _)| g.path == f.path) {
                    out.push((f, p));
                }
            }
        }
    }
    out
}

/// Where `layerfit pull` keeps a repository's files.
pub fn pulled_dir(models_dir: &Path, repo: &str) -> PathBuf {
    models_dir.join("hf").join(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings() {
        let ok = br#"[{"type":"directory","path":"d"},{"type":"file","path":"d/a-Q8_0.gguf","size":3,"lfs":{"oid":"AB00000000000000000000000000000000000000000000000000000000000000","size":9}}]"#;
        let f = parse_listing(ok).unwrap();
        assert_eq!(
            (f[0].size, f[0].sha256.as_deref().map(|s| &s[..2])),
            (Some(9), Some("ab"))
        );
        assert!(parse_listing(br#"[{"type":"file","path":"../../x.gguf"}]"#).is_err());
        assert!(parse_listing(br#"[{"type":"file","path":"/etc/x.gguf"}]"#).is_err());
        assert!(parse_listing(b"{}").is_err());
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link("<https://h/api/x?cursor=a>; rel=\"next\"").as_deref(),
            Some("https://h/api/x?cursor=a")
        );
        assert_eq!(next_link("<https://h/x>; rel=\"prev\""), None);
    }
}
