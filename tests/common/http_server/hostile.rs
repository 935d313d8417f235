//! The hostile behaviours of the test server, each on its own path: `/norange/ID` ignores
//! Range, `/flaky/ID` cuts the first whole-file download halfway, `/liar/ID` promises more
//! than it sends, `/drip/X` sends a byte a second, `/loop/N` redirects forever, and
//! `/billion.gguf` is a 100 GB file whose header declares a billion strings.

use super::{head, parse_range, send_file, Routes};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Answers a hostile path; `None` for any other.
pub(super) fn route(
    conn: &mut TcpStream,
    parts: &[&str],
    range: Option<&str>,
    routes: &Routes,
    flaky: &AtomicBool,
) -> Option<std::io::Result<u64>> {
    let sent = (|| -> std::io::Result<Option<u64>> {
        Ok(Some(match parts {
            ["norange", id] => match routes.files.get(*id).cloned() {
                Some(f) => send_file(conn, &f, range, false, None, &[])?,
                None => 0,
            },
            ["flaky", id] => match routes.files.get(*id).cloned() {
                Some(f) => {
                    // Only a whole-file download is cut (not a header's range read).
                    let from_zero = range.is_none_or(|r| r == "bytes=0-");
                    let cut =
                        (from_zero && !flaky.swap(true, Ordering::SeqCst)).then_some(f.size / 2);
                    send_file(conn, &f, range, true, cut, &[])?
                }
                None => 0,
            },
            ["liar", id] => match routes.files.get(*id).cloned() {
                // Promises the whole range, sends a tenth of it, hangs up.
                Some(f) => {
                    let (a, b) = range
                        .and_then(|r| parse_range(r, f.size))
                        .unwrap_or((0, f.size));
                    send_file(conn, &f, range, true, Some((b - a) / 10), &[])?
                }
                None => 0,
            },
            ["drip", _] => {
                head(conn, "200 OK", &[("Content-Length", "100000000".into())])?;
                let mut n = 0;
                for b in b"GGUF\x03\x00\x00\x00" {
                    std::thread::sleep(Duration::from_secs(1));
                    if conn.write_all(&[*b]).is_err() {
                        break;
                    }
                    n += 1;
                }
                n
            }
            ["loop", n] => {
                let next = n.parse::<u32>().unwrap_or(0) + 1;
                head(
                    conn,
                    "302 Found",
                    &[
                        ("Location", format!("/loop/{next}")),
                        ("Content-Length", "0".into()),
                    ],
                )?;
                0
            }
            ["billion.gguf"] => {
                let prefix = billion_prefix();
                let size = 100_000_000_000u64;
                let (a, b) = range
                    .and_then(|r| parse_range(r, size))
                    .unwrap_or((0, size));
                let b = b.min(a + (256 << 20));
                head(
                    conn,
                    "206 Partial Content",
                    &[
                        ("Content-Length", (b - a).to_string()),
                        ("Content-Range", format!("bytes {a}-{}/{size}", b - 1)),
                    ],
                )?;
                let chunk: Vec<u8> = (a..b).map(|o| billion_byte(o, &prefix)).collect();
                conn.write_all(&chunk)
                    .map(|_| chunk.len() as u64)
                    .unwrap_or(0)
            }
            _ => return Ok(None),
        }))
    })();
    sent.transpose()
}

/// A GGUF header declaring a string array of a billion entries, then the entries: served
/// as a 100 GB file by range, generated on the fly.
fn billion_byte(off: u64, prefix: &[u8]) -> u8 {
    if off < prefix.len() as u64 {
        prefix[off as usize]
    } else {
        // Each entry: u64 length 1, then 'a'.
        let pattern = [1u8, 0, 0, 0, 0, 0, 0, 0, b'a'];
        pattern[((off - prefix.len() as u64) % 9) as usize]
    }
}

fn billion_prefix() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(b"GGUF");
    p.extend_from_slice(&3u32.to_le_bytes());
    p.extend_from_slice(&0u64.to_le_bytes()); // tensors
    p.extend_from_slice(&1u64.to_le_bytes()); // kv
    let key = b"tokenizer.ggml.tokens";
    p.extend_from_slice(&(key.len() as u64).to_le_bytes());
    p.extend_from_slice(key);
    p.extend_from_slice(&9u32.to_le_bytes()); // array
    p.extend_from_slice(&8u32.to_le_bytes()); // of strings
    p.extend_from_slice(&1_000_000_000u64.to_le_bytes());
    p
}
