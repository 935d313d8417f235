//! A real HTTP/1.1 server on 127.0.0.1 for the remote-model tests: it serves real model files
//! with Range support under the Hub's paths (`/api/models/ORG/REPO/tree/REV`,
//! `/ORG/REPO/resolve/REV/FILE` answering 302 to `/cdn/ID` as the Hub's CDN does) and the
//! Ollama registry's (`/v2/NS/NAME/manifests/TAG`, `/v2/NS/NAME/blobs/sha256:HEX`), plus
//! hostile behaviours on their own paths. Every response body's size is logged.
#![allow(dead_code)]

mod hostile;

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone)]
pub struct Served {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Serve this byte flipped (the listing still gives the true SHA-256).
    pub corrupt_at: Option<u64>,
}

#[derive(Clone, Default)]
pub struct Routes {
    pub files: HashMap<String, Served>,
    /// `ORG/REPO` → (path in the repository, file id).
    pub repos: HashMap<String, Vec<(String, String)>>,
    /// `NS/NAME:TAG` → file id.
    pub ollama: HashMap<String, String>,
    /// `NS/NAME:TAG` → the file id of its projector layer.
    pub ollama_projector: HashMap<String, String>,
    /// Repositories that need `Authorization: Bearer <token>`.
    pub gated: HashMap<String, String>,
    /// Repositories whose resolve redirects to another path than `/cdn/` (`flaky`).
    pub cdn: HashMap<String, String>,
}

/// One logged request: its path, its Range header and the body bytes sent.
#[derive(Clone, Debug)]
pub struct Logged {
    pub path: String,
    /// The request came as a proxy's (absolute-form URL).
    pub proxied: bool,
    pub range: Option<String>,
    pub auth: Option<String>,
    pub body_bytes: u64,
}

pub struct Server {
    pub base: String,
    pub log: Arc<Mutex<Vec<Logged>>>,
    routes: Arc<Mutex<Routes>>,
    /// `/flaky/ID`: the first full request is cut halfway.
    flaky_done: Arc<AtomicBool>,
}

pub fn sha256_file(p: &Path) -> String {
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(p).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let s = Server {
            base,
            log: Arc::default(),
            routes: Arc::default(),
            flaky_done: Arc::default(),
        };
        let (log, routes, flaky) = (s.log.clone(), s.routes.clone(), s.flaky_done.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (log, routes, flaky) = (log.clone(), routes.clone(), flaky.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &log, &routes, &flaky);
                });
            }
        });
        s
    }

    /// Registers a file under an id (served at `/files/ID`, `/cdn/ID` and hostile paths).
    pub fn file(&self, id: &str, path: &Path, corrupt_at: Option<u64>) -> Served {
        let served = Served {
            path: path.to_path_buf(),
            size: std::fs::metadata(path).unwrap().len(),
            sha256: sha256_file(path),
            corrupt_at,
        };
        self.routes
            .lock()
            .unwrap()
            .files
            .insert(id.into(), served.clone());
        served
    }

    pub fn hub_file(&self, repo: &str, repo_path: &str, id: &str) {
        self.routes
            .lock()
            .unwrap()
            .repos
            .entry(repo.into())
            .or_default()
            .push((repo_path.into(), id.into()));
    }

    pub fn gate(&self, repo: &str, token: &str) {
        self.routes
            .lock()
            .unwrap()
            .gated
            .insert(repo.into(), token.into());
    }

    /// Makes `repo`'s downloads go through `/MODE/ID` (e.g. `flaky`).
    pub fn cdn_mode(&self, repo: &str, mode: &str) {
        self.routes
            .lock()
            .unwrap()
            .cdn
            .insert(repo.into(), mode.into());
    }

    pub fn ollama_model(&self, ns_name_tag: &str, id: &str) {
        self.routes
            .lock()
            .unwrap()
            .ollama
            .insert(ns_name_tag.into(), id.into());
    }

    pub fn ollama_projector(&self, ns_name_tag: &str, id: &str) {
        self.routes
            .lock()
            .unwrap()
            .ollama_projector
            .insert(ns_name_tag.into(), id.into());
    }

    pub fn bytes_sent(&self, path_prefix: &str) -> u64 {
        self.requests(path_prefix)
            .iter()
            .map(|l| l.body_bytes)
            .sum()
    }

    pub fn requests(&self, path_prefix: &str) -> Vec<Logged> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

struct Req {
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, n: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    }
}

fn read_request(conn: &TcpStream) -> Option<Req> {
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut path = line.split_whitespace().nth(1)?.to_string();
    if line.starts_with("CONNECT ") {
        path = format!("CONNECT {path}");
    }
    // A proxy's request names the whole URL (absolute form): serve its path, and say so.
    let proxied = path.starts_with("http://");
    if proxied {
        let rest = &path["http://".len()..];
        path = format!("/{}", rest.split_once('/').map_or("", |(_, p)| p));
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if proxied {
        headers.push(("x-proxied".into(), "1".into()));
    }
    Some(Req { path, headers })
}

fn head(conn: &mut TcpStream, status: &str, headers: &[(&str, String)]) -> std::io::Result<()> {
    let mut s = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    conn.write_all(s.as_bytes())
}

fn small(conn: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<u64> {
    head(
        conn,
        status,
        &[
            ("Content-Type", ctype.into()),
            ("Content-Length", body.len().to_string()),
        ],
    )?;
    conn.write_all(body)?;
    Ok(body.len() as u64)
}

/// `bytes=a-b` / `bytes=a-` against a size → (start, end exclusive).
fn parse_range(v: &str, size: u64) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    let a: u64 = a.parse().ok()?;
    let b: u64 = if b.is_empty() {
        size - 1
    } else {
        b.parse().ok()?
    };
    (a < size).then_some((a, (b + 1).min(size)))
}

/// Sends `[start, end)` of a file (206 when `ranged`), flipping the corrupt byte; `cut`
/// stops after that many body bytes (a dropped connection).
fn send_file(
    conn: &mut TcpStream,
    f: &Served,
    range: Option<&str>,
    honour: bool,
    cut: Option<u64>,
    extra: &[(&str, String)],
) -> std::io::Result<u64> {
    let r = range.filter(|_| honour).map(|r| parse_range(r, f.size));
    let (start, end, status) = match r {
        Some(Some((a, b))) => (a, b, "206 Partial Content"),
        Some(None) => {
            head(
                conn,
                "416 Range Not Satisfiable",
                &[
                    ("Content-Range", format!("bytes */{}", f.size)),
                    ("Content-Length", "0".into()),
                ],
            )?;
            return Ok(0);
        }
        None => (0, f.size, "200 OK"),
    };
    let mut hs: Vec<(&str, String)> = vec![
        ("Content-Length", (end - start).to_string()),
        ("Accept-Ranges", "bytes".into()),
        ("ETag", format!("\"{}\"", f.sha256)),
    ];
    if status.starts_with("206") {
        hs.push((
            "Content-Range",
            format!("bytes {start}-{}/{}", end - 1, f.size),
        ));
    }
    hs.extend(extra.iter().cloned());
    head(conn, status, &hs)?;
    let mut file = std::fs::File::open(&f.path)?;
    file.seek(SeekFrom::Start(start))?;
    let mut left = cut.unwrap_or(u64::MAX).min(end - start);
    let mut sent = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if let Some(c) = f.corrupt_at {
            let pos = start + sent;
            if c >= pos && c < pos + n as u64 {
                buf[(c - pos) as usize] ^= 0xff;
            }
        }
        conn.write_all(&buf[..n])?;
        sent += n as u64;
        left -= n as u64;
    }
    Ok(sent)
}

fn handle(
    mut conn: TcpStream,
    log: &Mutex<Vec<Logged>>,
    routes: &Mutex<Routes>,
    flaky: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(req) = read_request(&conn) else {
        return Ok(());
    };
    // A proxy's tunnel (`CONNECT host:port`): join the two connections both ways.
    if let Some(target) = req.path.strip_prefix("CONNECT ") {
        log_it(log, &req, None, 0);
        let upstream = TcpStream::connect(target)?;
        conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
        let (mut a, mut b) = (conn.try_clone()?, upstream.try_clone()?);
        let t = std::thread::spawn(move || std::io::copy(&mut a, &mut b));
        let (mut up, mut down) = (upstream, conn);
        let _ = std::io::copy(&mut up, &mut down);
        let _ = down.shutdown(std::net::Shutdown::Both);
        let _ = t.join();
        return Ok(());
    }
    let range = req.header("range");
    let routes = routes.lock().unwrap().clone();
    let file = |id: &str| routes.files.get(id).cloned();
    let path = req.path.clone();
    let p = path.split('?').next().unwrap_or("").to_string();
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    let auth = req.header("authorization");
    // The "private" namespace speaks the registry token protocol: 401 with a Bearer
    // challenge until the client brings the token from /token.
    if parts.first() == Some(&"v2")
        && parts.get(1) == Some(&"private")
        && auth.as_deref() != Some("Bearer regtoken")
    {
        let host = req.header("host").unwrap_or_default();
        head(&mut conn, "401 Unauthorized", &[
            ("WWW-Authenticate", format!("Bearer realm=\"http://{host}/token\",service=\"test\",scope=\"repository:private/{}:pull\"", parts.get(2).unwrap_or(&""))),
            ("Content-Length", "0".into()),
        ])?;
        log_it(log, &req, auth, 0);
        return Ok(());
    }
    let sent = match parts.as_slice() {
        ["token"] => small(
            &mut conn,
            "200 OK",
            "application/json",
            b"{\"token\":\"regtoken\"}",
        )?,
        ["api", "models", org, repo, "tree", _rev] => {
            let key = format!("{org}/{repo}");
            match routes.repos.get(&key) {
                Some(files) => {
                    let mut entries = vec![
                        serde_json::json!({"type": "file", "path": "README.md", "size": 10, "oid": "0"}),
                    ];
                    entries.push(serde_json::json!({"type": "directory", "path": "sub", "size": 0, "oid": "1"}));
                    for (rp, id) in files {
                        let f = &routes.files[id];
                        entries.push(serde_json::json!({
                            "type": "file", "path": rp, "size": f.size, "oid": "abc",
                            "lfs": {"oid": f.sha256, "size": f.size, "pointerSize": 134}
                        }));
                    }
                    small(
                        &mut conn,
                        "200 OK",
                        "application/json",
                        serde_json::to_string(&entries).unwrap().as_bytes(),
                    )?
                }
                None => small(
                    &mut conn,
                    "404 Not Found",
                    "application/json",
                    b"{\"error\":\"Repository not found\"}",
                )?,
            }
        }
        [org, repo, "resolve", _rev, rest @ ..] => {
            let key = format!("{org}/{repo}");
            let want = rest.join("/");
            if let Some(tok) = routes.gated.get(&key) {
                if auth.as_deref() != Some(&format!("Bearer {tok}")) {
                    small(&mut conn, "401 Unauthorized", "text/plain", b"gated")?;
                    drop(routes);
                    log_it(log, &req, auth, 5);
                    return Ok(());
                }
            }
            let hit = routes
                .repos
                .get(&key)
                .and_then(|fs| fs.iter().find(|(rp, _)| *rp == want));
            match hit {
                Some((_, id)) => {
                    let f = &routes.files[id];
                    head(
                        &mut conn,
                        "302 Found",
                        &[
                            (
                                "Location",
                                format!(
                                    "/{}/{id}?signed=1",
                                    routes.cdn.get(&key).map_or("cdn", |m| m.as_str())
                                ),
                            ),
                            ("X-Linked-Etag", format!("\"{}\"", f.sha256)),
                            ("X-Linked-Size", f.size.to_string()),
                            ("Content-Length", "0".into()),
                        ],
                    )?;
                    0
                }
                None => small(&mut conn, "404 Not Found", "text/plain", b"Entry not found")?,
            }
        }
        ["cdn", id] | ["files", id] => match file(id) {
            Some(f) => send_file(&mut conn, &f, range.as_deref(), true, None, &[])?,
            None => small(&mut conn, "404 Not Found", "text/plain", b"no")?,
        },
        ["v2", ns, name, "manifests", tag] => {
            match routes.ollama.get(&format!("{ns}/{name}:{tag}")) {
                Some(id) => {
                    let f = &routes.files[id];
                    let mut m = serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": format!("sha256:{}", "0".repeat(64)), "size": 10},
                        "layers": [
                            {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{}", f.sha256), "size": f.size},
                            {"mediaType": "application/vnd.ollama.image.template", "digest": format!("sha256:{}", "1".repeat(64)), "size": 10}
                        ]
                    });
                    if let Some(pid) = routes.ollama_projector.get(&format!("{ns}/{name}:{tag}")) {
                        let p = &routes.files[pid];
                        m["layers"].as_array_mut().unwrap().push(serde_json::json!(
                            {"mediaType": "application/vnd.ollama.image.projector", "digest": format!("sha256:{}", p.sha256), "size": p.size}
                        ));
                    }
                    small(
                        &mut conn,
                        "200 OK",
                        "application/vnd.docker.distribution.manifest.v2+json",
                        m.to_string().as_bytes(),
                    )?
                }
                None => small(
                    &mut conn,
                    "404 Not Found",
                    "application/json",
                    b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}",
                )?,
            }
        }
        ["v2", _ns, _name, "blobs", digest] => {
            let hex = digest.trim_start_matches("sha256:");
            match routes.files.values().find(|f| f.sha256 == hex).cloned() {
                Some(f) => send_file(&mut conn, &f, range.as_deref(), true, None, &[])?,
                None => small(&mut conn, "404 Not Found", "text/plain", b"no")?,
            }
        }
        _ => match hostile::route(&mut conn, &parts, range.as_deref(), &routes, flaky) {
            Some(sent) => sent?,
            None => small(&mut conn, "404 Not Found", "text/plain", b"no route")?,
        },
    };
    drop(routes);
    log_it(log, &req, auth, sent);
    Ok(())
}

fn log_it(log: &Mutex<Vec<Logged>>, req: &Req, auth: Option<String>, body_bytes: u64) {
    log.lock().unwrap().push(Logged {
        path: req.path.clone(),
        proxied: req.header("x-proxied").is_some(),
        range: req.header("range"),
        auth,
        body_bytes,
    });
}
