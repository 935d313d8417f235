//! Parsed remote headers, kept under `$XDG_CACHE_HOME/layerfit/headers/` keyed by the URL
//! and the file's identity (its SHA-256 from a listing or manifest, else the server's
//! ETag), so a second plan of the same remote model reads no range at all.

use crate::gguf::{read_header_from, Header};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Entry {
    url: String,
    identity: String,
    size: u64,
}

fn dir() -> PathBuf {
    crate::hardware::probe::ProbeOptions::default()
        .cache_dir
        .join("headers")
}

fn key(url: &str, identity: &str) -> String {
    // FNV-1a: stable across builds and platforms, and the file names stay short.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in url.bytes().chain([0]).chain(identity.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// The cached header of `url` as it was when it had `identity`, if any (a damaged entry
/// reads as none and is fetched again).
pub fn load(url: &str, identity: &str) -> Option<Header> {
    let k = key(url, identity);
    let entry: Entry =
        serde_json::from_slice(&std::fs::read(dir().join(format!("{k}.json"))).ok()?).ok()?;
    if entry.url != url || entry.identity != identity {
        return None;
    }
    let prefix = std::fs::read(dir().join(format!("{k}.head"))).ok()?;
    read_header_from(Path::new(url), std::io::Cursor::new(prefix), entry.size).ok()
}

/// Keeps a header's bytes for next time; a cache that cannot be written is skipped.
pub fn store(url: &str, identity: &str, size: u64, prefix: &[u8]) {
    let d = dir();
    if std::fs::create_dir_all(&d).is_err() {
        return;
    }
    let k = key(url, identity);
    let entry = Entry {
        url: url.to_string(),
        identity: identity.to_string(),
        size,
    };
    let Ok(json) = serde_json::to_vec(&entry) else {
        return;
    };
    // The bytes first, then the entry that vouches for them; each by rename, so a reader
    // never sees half a file.
    let _ = write_atomic(&d.join(format!("{k}.head")), prefix)
        .and_then(|_| write_atomic(&d.join(format!("{k}.json")), &json));
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
