//! Reading a remote GGUF header by HTTP range requests in growing chunks (1 MiB, then
//! doubling), never the tensor data: the same parser as for a local file reads the bytes,
//! so the plan of a remote file equals the plan of the file on disk. A server that ignores
//! `Range` (200) is read as a stream and cut off at the cap.

use super::http::{io_error, net_error, status_error, Client, NetError};
use crate::gguf::{read_header_from, GgufError, Header};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// The first request's size; each next one doubles (a 262K-token vocabulary is ~6 MB).
pub const FIRST_CHUNK: u64 = 1 << 20;

/// The last header's size in this process: the variants of one repository share their
/// vocabulary, so the next header is about as large, and one request of that size (plus a
/// margin) reads it instead of 1 + 2 + 4 + ... MiB.
static LAST_HEADER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const HINT_MARGIN: u64 = 256 << 10;

fn first_chunk() -> u64 {
    let last = LAST_HEADER.load(std::sync::atomic::Ordering::Relaxed);
    (last + HINT_MARGIN).clamp(FIRST_CHUNK, HEADER_CAP / 2)
}
/// No real header comes near this; a header that would is hostile or not a GGUF.
pub const HEADER_CAP: u64 = 64 << 20;

/// A header read over the network, with what it cost.
#[derive(Debug)]
pub struct RemoteHeader {
    pub header: Header,
    /// The header's bytes (the prefix up to the tensor data), kept for the cache.
    pub prefix: Vec<u8>,
    /// Bytes received from the network for it.
    pub transferred: u64,
    /// The file's size as the server gave it.
    pub size: u64,
    /// The server's `ETag` (the Hub's `X-Linked-Etag` when redirected), for the cache key.
    pub etag: Option<String>,
}

/// Bytes `0..` of a remote file, fetched on demand and kept (the header is read in order).
struct RangeSource<'c> {
    client: &'c Client,
    url: String,
    buf: Vec<u8>,
    pos: u64,
    size: u64,
    /// The body of a server that ignored `Range`, read on as more is needed.
    stream: Option<Box<dyn Read + Send>>,
    next_chunk: u64,
    transferred: u64,
    etag: Option<String>,
    error: Option<NetError>,
}

impl RangeSource<'_> {
    /// Requests `bytes=from-to` and appends what comes back to `buf`.
    fn fetch(&mut self, want_end: u64) -> Result<(), NetError> {
        let from = self.buf.len() as u64;
        let end = want_end
            .max(from + self.next_chunk)
            .min(HEADER_CAP)
            .min(self.size.max(1));
        if from >= HEADER_CAP {
            return Err(net_error(
                &self.url,
                format!(
                    "the GGUF header is larger than {} MiB, the cap for remote headers",
                    HEADER_CAP >> 20
                ),
            ));
        }
        self.next_chunk = (self.next_chunk * 2).min(HEADER_CAP);
        if let Some(s) = &mut self.stream {
            return append(
                &self.url,
                s.as_mut(),
                &mut self.buf,
                end - from,
                &mut self.transferred,
            );
        }
        let r = self.client.get(
            &self.url,
            &[("Range", format!("bytes={from}-{}", end - 1))],
            false,
        )?;
        let url = r.url.clone();
        // 206: the range asked for; 200 from byte 0: Range ignored, so the body is the whole
        // file, read on as a stream up to the cap.
        let (total, streamed) = match r.status {
            206 => {
                let (start, total) = content_range(r.header("content-range"))
                    .ok_or_else(|| net_error(&url, "HTTP 206 without a usable Content-Range"))?;
                if start != from {
                    return Err(net_error(
                        &url,
                        format!("asked for bytes from {from}, got bytes from {start}"),
                    ));
                }
                (total, false)
            }
            200 if from == 0 => {
                let total = r
                    .header("content-length")
                    .and_then(|v| v.trim().parse().ok());
                (total.unwrap_or(u64::MAX), true)
            }
            200 => {
                return Err(net_error(
                    &url,
                    "the server stopped honouring Range requests",
                ))
            }
            s => return Err(status_error(&url, s, r.header("retry-after"))),
        };
        self.note_first(&r, total);
        let mut body = r.body;
        let n = end - from;
        append(&url, body.as_mut(), &mut self.buf, n, &mut self.transferred)?;
        if streamed {
            self.stream = Some(body);
        }
        Ok(())
    }

    fn note_first(&mut self, r: &super::http::Response, total: u64) {
        if self.buf.is_empty() {
            self.size = total;
            self.etag = r
                .header("x-linked-etag")
                .or(r.header("etag"))
                .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string());
        }
    }
}

/// Reads `n` bytes of `body` onto `buf`; a body that ends sooner is fine only at the
/// file's end (the reader then reports a truncated header).
fn append(
    url: &str,
    body: &mut dyn Read,
    buf: &mut Vec<u8>,
    n: u64,
    transferred: &mut u64,
) -> Result<(), NetError> {
    let before = buf.len();
    body.take(n)
        .read_to_end(buf)
        .map_err(|e| io_error(url, &e))?;
    *transferred += (buf.len() - before) as u64;
    Ok(())
}

/// `bytes START-END/TOTAL` → (START, TOTAL); an unknown total (`*`) is unbounded.
fn content_range(v: Option<&str>) -> Option<(u64, u64)> {
    let v = v?.trim().strip_prefix("bytes")?.trim();
    let (range, total) = v.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => u64::MAX,
        t => t.parse().ok()?,
    };
    Some((start, total))
}

impl Read for RangeSource<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size {
            return Ok(0);
        }
        if self.pos >= self.buf.len() as u64 {
            let want = self.pos + out.len() as u64;
            if let Err(e) = self.fetch(want) {
                let line = e.what.clone();
                self.error = Some(e);
                return Err(std::io::Error::other(line));
            }
            if self.pos >= self.buf.len() as u64 {
                return Ok(0);
            }
        }
        let at = self.pos as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeSource<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let base = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        };
        self.pos = base.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

/// Why a remote header could not be had: the network, or the file itself.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    File(#[from] GgufError),
}

/// Reads the header of the GGUF at `url`; `size` is the size a listing gave, if any.
pub fn read_remote_header(client: &Client, url: &str) -> Result<RemoteHeader, RemoteError> {
    let mut src = RangeSource {
        client,
        url: url.to_string(),
        buf: Vec::new(),
        pos: 0,
        size: u64::MAX,
        stream: None,
        next_chunk: first_chunk(),
        transferred: 0,
        etag: None,
        error: None,
    };
    // The first chunk tells the size; the parser then knows what the file can hold.
    src.fetch(first_chunk())?;
    let size = src.size;
    let parsed = read_header_from(
        Path::new(url),
        BufReader::with_capacity(64 << 10, &mut src),
        size,
    );
    if let Some(e) = src.error.take() {
        return Err(e.into());
    }
    let header = parsed?;
    LAST_HEADER.store(header.data_offset, std::sync::atomic::Ordering::Relaxed);
    let mut prefix = std::mem::take(&mut src.buf);
    prefix.truncate(header.data_offset.min(prefix.len() as u64) as usize);
    Ok(RemoteHeader {
        header,
        prefix,
        transferred: src.transferred,
        size,
        etag: src.etag,
    })
}

#[cfg(test)]
mod tests {
    use super::content_range;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(Some("bytes 0-99/1000")), Some((0, 1000)));
        assert_eq!(content_range(Some("bytes 5-9/*")), Some((5, u64::MAX)));
        assert_eq!(content_range(Some("items 0-1/2")), None);
        assert_eq!(content_range(None), None);
    }
}
