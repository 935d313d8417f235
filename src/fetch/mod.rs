//! Models from where they live (docs/models.md): Hugging Face repositories, Ollama's store
//! and registry, plain URLs, and the caches other tools fill. This is an edge of the
//! program: it turns a name into files on this machine or remote files whose headers are
//! read by range, and hands plain headers to the core.

pub mod download;
pub mod header_cache;
pub mod hf;
pub mod http;
pub mod name;
pub mod ollama;
pub mod range;
pub mod stores;
pub mod variants;

use crate::gguf::{assemble, ModelFile};
use http::{net_error, Client, NetError};
use name::{HfName, OllamaName, RemoteName};
use range::{read_remote_header, RemoteError};
use std::path::{Path, PathBuf};
use variants::{containing, group, pick, Variant};

/// One model a name stands for: already on this machine, or to be read over the network.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The name that finds this model again (`hf://ORG/REPO:Q4_K_M`, `ollama://NAME:TAG`).
    pub name: String,
    pub place: Place,
}

#[derive(Clone, Debug)]
pub enum Place {
    /// The file (first shard) on disk.
    Local(PathBuf),
    /// The files to fetch, shards in order.
    Remote(Vec<Download>),
}

/// A remote file: where it is, what the source says of it, and where `pull` puts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    pub url: String,
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub dest: PathBuf,
}

/// A client with the Hub's token (for the Hub's host only).
pub fn client() -> Client {
    Client::new(hf::token().into_iter().collect())
}

/// What `name` stands for, local copies first (pulled, the Hugging Face cache, Ollama's
/// store), then the network.
pub fn candidates(
    name: &RemoteName,
    models_dir: &Path,
    client: &Client,
) -> Result<Vec<Candidate>, NetError> {
    match name {
        RemoteName::Hf(h) => hf_candidates(h, models_dir, client),
        RemoteName::Url(u) => Ok(vec![url_candidate(u, models_dir)]),
        RemoteName::Ollama(o) => ollama_candidate(o, models_dir, client).map(|c| vec![c]),
    }
}

fn variant_name(h: &HfName, v: &Variant) -> String {
    let rev = if h.revision == "main" {
        String::new()
    } else {
        format!("@{}", h.revision)
    };
    match &v.quant {
        Some(q) if h.file.is_none() => format!("hf://{}:{q}{rev}", h.repo),
        _ => format!("hf://{}/{}{rev}", h.repo, v.files[0].path),
    }
}

fn hf_candidates(
    h: &HfName,
    models_dir: &Path,
    client: &Client,
) -> Result<Vec<Candidate>, NetError> {
    let local = hf::local(models_dir, &h.repo, &h.revision);
    let local_path = |p: &str| {
        local
            .iter()
            .find(|(f, _)| f.path == p)
            .map(|(_, path)| path.clone())
    };
    let on_disk = |v: &Variant| -> Option<PathBuf> {
        // Every shard present, and as large as the listing says (a partial file is not a copy).
        let ok = v.files.iter().all(|f| {
            local
                .iter()
                .any(|(g, _)| g.path == f.path && (f.size.is_none() || g.size == f.size))
        });
        ok.then(|| local_path(&v.files[0].path)).flatten()
    };
    let local_variants = group(local.iter().map(|(f, _)| f.clone()).collect());
    let select = |vs: &[Variant]| -> Vec<Variant> {
        match (&h.file, &h.quant) {
            (Some(f), _) => containing(vs, f).cloned().into_iter().collect(),
            (None, Some(q)) => pick(vs, q).cloned().into_iter().collect(),
            (None, None) => vs.to_vec(),
        }
    };
    let to_candidate = |v: &Variant| Candidate {
        name: variant_name(h, v),
        place: match on_disk(v) {
            Some(p) => Place::Local(p),
            None => Place::Remote(
                v.files
                    .iter()
                    .map(|f| Download {
                        url: hf::resolve_url(&h.repo, &h.revision, &f.path),
                        size: f.size,
                        sha256: f.sha256.clone(),
                        dest: hf::pulled_dir(models_dir, &h.repo).join(&f.path),
                    })
                    .collect(),
            ),
        },
    };
    // A named file or quant that is here needs no network at all.
    if h.file.is_some() || h.quant.is_some() {
        let here = select(&local_variants);
        if let Some(v) = here.first() {
            if on_disk(v).is_some() {
                return Ok(vec![to_candidate(v)]);
            }
        }
    }
    let listed = match hf::list(client, &h.repo, &h.revision) {
        Ok(v) => v,
        // Offline with the repository here: what is here is the answer, said as a warning
        // (the repository may have other variants the ranking cannot see).
        Err(e) => {
            let here: Vec<Candidate> = select(&local_variants)
                .iter()
                .filter(|v| on_disk(v).is_some())
                .map(to_candidate)
                .collect();
            if here.is_empty() {
                return Err(e);
            }
            crate::cli::output::warning(&format!(
                "listing hf://{} failed ({e}): only the {} on this machine {} considered",
                h.repo,
                if here.len() == 1 { "copy" } else { "copies" },
                if here.len() == 1 { "is" } else { "are" }
            ));
            return Ok(here);
        }
    };
    let listing_url = format!("{}/{}", hf::endpoint(), h.repo);
    if listed.is_empty() {
        return Err(net_error(&listing_url, "the repository has no GGUF files"));
    }
    let chosen = select(&listed);
    if chosen.is_empty() {
        let quants: Vec<String> = listed
            .iter()
            .map(|v| v.quant.clone().unwrap_or_else(|| v.files[0].path.clone()))
            .collect();
        let what = match (&h.file, &h.quant) {
            (Some(f), _) => format!("no file {f}"),
            (None, Some(q)) => format!("no file with the quant {q}"),
            _ => unreachable!("a repository-wide name selects every variant"),
        };
        return Err(net_error(
            &listing_url,
            format!("{what}; it has: {}", quants.join(", ")),
        ));
    }
    Ok(chosen.iter().map(to_candidate).collect())
}

/// Shard URLs of a split set named by one of them (llama.cpp's `-NNNNN-of-MMMMM` naming).
fn shard_urls(url: &str) -> Vec<String> {
    let (dir, file) = url.rsplit_once('/').unwrap_or(("", url));
    match crate::gguf::split_shard_paths(Path::new(file)) {
        Some(paths) => paths
            .iter()
            .map(|p| format!("{dir}/{}", p.display()))
            .collect(),
        None => vec![url.to_string()],
    }
}

/// `MODELS/url/HOST/PATH`, each part kept to safe characters.
fn url_dest(models_dir: &Path, url: &str) -> PathBuf {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let safe = |p: &str| -> String {
        let s: String = p
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if s.is_empty() || s == "." || s == ".." {
            "_".into()
        } else {
            s
        }
    };
    rest.split('/')
        .filter(|p| !p.is_empty())
        .fold(models_dir.join("url"), |d, p| d.join(safe(p)))
}

fn url_candidate(url: &str, models_dir: &Path) -> Candidate {
    let urls = shard_urls(url);
    let downloads: Vec<Download> = urls
        .iter()
        .map(|u| Download {
            url: u.clone(),
            size: None,
            sha256: None,
            dest: url_dest(models_dir, u),
        })
        .collect();
    let place = if downloads.iter().all(|d| d.dest.is_file()) {
        Place::Local(url_dest(models_dir, url))
    } else {
        Place::Remote(downloads)
    };
    Candidate {
        name: url.to_string(),
        place,
    }
}

fn ollama_candidate(
    o: &OllamaName,
    models_dir: &Path,
    client: &Client,
) -> Result<Candidate, NetError> {
    let name = o.to_string();
    if let Some((blob, _)) = ollama::find_local(o) {
        return Ok(Candidate {
            name,
            place: Place::Local(blob),
        });
    }
    let pulled = ollama::pulled_path(models_dir, o);
    if pulled.is_file() {
        return Ok(Candidate {
            name,
            place: Place::Local(pulled),
        });
    }
    let layer = ollama::registry_layer(client, o)?;
    Ok(Candidate {
        name,
        place: Place::Remote(vec![Download {
            url: ollama::blob_url(o, &layer.sha256),
            size: layer.size,
            sha256: Some(layer.sha256),
            dest: pulled,
        }]),
    })
}

/// What reading remote headers cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Transfer {
    /// Bytes received for the headers (0 when every header came from the cache).
    pub bytes_transferred: u64,
    /// Bytes of the headers themselves (up to the tensor data).
    pub header_bytes: u64,
    /// Headers read from layerfit's cache, not the network.
    pub cached_headers: u32,
}

/// The headers of a remote model (every shard), from the cache when the source's identity
/// (SHA-256, else ETag) matches, else by range requests.
pub fn remote_model(
    client: &Client,
    downloads: &[Download],
) -> Result<(ModelFile, Transfer), RemoteError> {
    let mut shards = Vec::with_capacity(downloads.len());
    let mut t = Transfer::default();
    for d in downloads {
        let identity = match &d.sha256 {
            Some(s) => Some(s.clone()),
            None => etag_of(client, &d.url)?,
        };
        if let Some(h) = identity
            .as_deref()
            .and_then(|id| header_cache::load(&d.url, id))
        {
            t.header_bytes += h.data_offset;
            t.cached_headers += 1;
            shards.push(h);
            continue;
        }
        let r = read_remote_header(client, &d.url)?;
        t.bytes_transferred += r.transferred;
        t.header_bytes += r.header.data_offset;
        if let Some(id) = identity.or(r.etag.clone()) {
            header_cache::store(&d.url, &id, r.size, &r.prefix);
        }
        shards.push(r.header);
    }
    let first = downloads.first().map(|d| d.url.clone()).unwrap_or_default();
    Ok((assemble(Path::new(&first), shards)?, t))
}

/// The server's ETag for `url`, from a one-byte range request (the cache key of a plain URL).
fn etag_of(client: &Client, url: &str) -> Result<Option<String>, NetError> {
    let r = client.get(url, &[("Range", "bytes=0-0".into())], false)?;
    if !(200..300).contains(&r.status) {
        return Err(http::status_error(
            &r.url,
            r.status,
            r.header("retry-after"),
        ));
    }
    // The body is dropped unread: a server that ignored the range is cut off here.
    Ok(r.header("x-linked-etag")
        .or(r.header("etag"))
        .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string()))
}
