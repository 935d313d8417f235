//! Downloading one file for `layerfit pull`: into `DEST.part`, resumed from where an
//! interrupted download stopped (a `Range` request), hashed as it arrives, checked against
//! the SHA-256 the source publishes, and renamed into place only when whole and right.
//! A file that fails the check is not kept; a different file at the destination is never
//! overwritten.

use super::http::{io_error, net_error, status_error, Client, NetError};
use super::Download;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Below this many bytes in a whole timeout window, a download has stalled (a server that
/// drips a byte a second would otherwise hold it for weeks).
const MIN_BYTES_PER_WINDOW: u64 = 16 * 1024;

/// How a file came to be in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Fetched whole in this run.
    Downloaded,
    /// Continued from an earlier, interrupted run's partial file.
    Resumed,
    /// Already there, with the published SHA-256 (or the same size, when none is published).
    AlreadyThere,
}

/// What happened to one file.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct Fetched {
    pub url: String,
    pub path: PathBuf,
    pub bytes: u64,
    /// Bytes received in this run.
    pub bytes_transferred: u64,
    pub sha256: String,
    /// The published SHA-256 matched (false when the source publishes none).
    pub verified: bool,
    pub outcome: Outcome,
}

fn part_path(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

fn local_error(path: &Path, what: impl std::fmt::Display) -> NetError {
    net_error(&path.display().to_string(), what.to_string())
}

/// SHA-256 of a file's first `len` bytes (all when `None`).
fn hash_file(path: &Path, hasher: &mut Sha256) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok(n);
        }
        hasher.update(&buf[..k]);
        n += k as u64;
    }
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Fetches `d` to `d.dest`. `progress(done, total)` is called as bytes arrive.
pub fn fetch(
    client: &Client,
    d: &Download,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Fetched, NetError> {
    if d.dest.exists() {
        return already_there(d);
    }
    let dir = d.dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| local_error(dir, format!("cannot create the folder: {e}")))?;
    let part = part_path(&d.dest);
    let mut hasher = Sha256::new();
    let have = if part.is_file() {
        hash_file(&part, &mut hasher).map_err(|e| local_error(&part, e))?
    } else {
        0
    };
    if d.size.is_some_and(|s| have > s) {
        // Longer than the file: not a prefix of it.
        let _ = std::fs::remove_file(&part);
        return fetch(client, d, progress);
    }
    let range = format!("bytes={have}-");
    let r = client.get(&d.url, &[("Range", range)], true)?;
    let url = r.url.clone();
    let (resumed, mut file) = match r.status {
        206 if have > 0 => (true, open_append(&part)?),
        206 | 200 => {
            // A fresh start (or a server that cannot resume): begin again from byte 0.
            hasher = Sha256::new();
            (
                false,
                std::fs::File::create(&part).map_err(|e| local_error(&part, e))?,
            )
        }
        416 if have > 0 && d.size == Some(have) => (true, open_append(&part)?),
        s => return Err(status_error(&url, s, r.header("retry-after"))),
    };
    let mut done = if resumed { have } else { 0 };
    if r.status == 206 && resumed {
        let start = r
            .header("content-range")
            .and_then(|v| v.trim().strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if start != Some(have) {
            return Err(net_error(
                &url,
                format!("asked to resume at byte {have}, the server answered another range"),
            ));
        }
    }
    let total = d.size.or_else(|| {
        r.header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|n| n + done)
    });
    let mut body = r.body;
    let mut buf = vec![0u8; 256 * 1024];
    let mut window = (Instant::now(), done);
    let stall = client.timeout.max(Duration::from_secs(1));
    loop {
        let k = body.read(&mut buf).map_err(|e| {
            let mut n = io_error(&url, &e);
            n.what
                .push_str(" (the partial file is kept; run pull again to resume)");
            n
        })?;
        if k == 0 {
            break;
        }
        if total.is_some_and(|t| done + k as u64 > t) {
            drop(file);
            let _ = std::fs::remove_file(&part);
            return Err(net_error(
                &url,
                "the server sent more bytes than the file has; nothing kept",
            ));
        }
        file.write_all(&buf[..k])
            .map_err(|e| local_error(&part, e))?;
        hasher.update(&buf[..k]);
        done += k as u64;
        progress(done, total);
        if window.0.elapsed() >= stall {
            if done - window.1 < MIN_BYTES_PER_WINDOW {
                return Err(net_error(
                    &url,
                    format!("stalled: fewer than {MIN_BYTES_PER_WINDOW} bytes in {} s (the partial file is kept; run pull again to resume)", stall.as_secs()),
                ));
            }
            window = (Instant::now(), done);
        }
    }
    file.sync_all().map_err(|e| local_error(&part, e))?;
    drop(file);
    if let Some(t) = total {
        if done < t {
            return Err(net_error(
                &url,
                format!("the connection ended at byte {done} of {t} (the partial file is kept; run pull again to resume)"),
            ));
        }
    }
    let got = hex(hasher.finalize());
    if let Some(want) = &d.sha256 {
        if !got.eq_ignore_ascii_case(want) {
            let _ = std::fs::remove_file(&part);
            return Err(net_error(
                &url,
                format!("SHA-256 mismatch: the source publishes {want}, the download is {got}; nothing was kept"),
            ));
        }
    }
    std::fs::rename(&part, &d.dest).map_err(|e| local_error(&d.dest, e))?;
    Ok(Fetched {
        url: d.url.clone(),
        path: d.dest.clone(),
        bytes: done,
        bytes_transferred: done - if resumed { have } else { 0 },
        sha256: got,
        verified: d.sha256.is_some(),
        outcome: if resumed {
            Outcome::Resumed
        } else {
            Outcome::Downloaded
        },
    })
}

fn open_append(p: &Path) -> Result<std::fs::File, NetError> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(p)
        .map_err(|e| local_error(p, e))
}

/// The destination exists: the same file (by SHA-256, or size when none is published) is
/// done; anything else is left alone and refused.
fn already_there(d: &Download) -> Result<Fetched, NetError> {
    let mut hasher = Sha256::new();
    let len = hash_file(&d.dest, &mut hasher).map_err(|e| local_error(&d.dest, e))?;
    let got = hex(hasher.finalize());
    let same = match (&d.sha256, d.size) {
        (Some(want), _) => got.eq_ignore_ascii_case(want),
        (None, Some(size)) => size == len,
        (None, None) => false,
    };
    if !same {
        return Err(local_error(
            &d.dest,
            format!("a different file is already there (it is not {}); it was not overwritten: move it away to pull", d.url),
        ));
    }
    Ok(Fetched {
        url: d.url.clone(),
        path: d.dest.clone(),
        bytes: len,
        bytes_transferred: 0,
        sha256: got,
        verified: d.sha256.is_some(),
        outcome: Outcome::AlreadyThere,
    })
}
