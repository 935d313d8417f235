//! The one HTTP client layerfit uses (ureq, rustls): bounded in time, redirects and bytes,
//! with errors that name the URL and say what to do. The network is hostile until proven
//! otherwise: every response's size is capped by the caller, every hop is checked like the
//! first URL (https, or http to this machine), and a token goes only to the host it is for.

use super::name::{check_url, host_of};
use std::io::Read;
use std::time::Duration;

/// Redirect hops followed before giving up (the Hub needs one, to its CDN).
pub const MAX_REDIRECTS: usize = 5;

/// Seconds without progress (connect, response, or a read) before a request fails.
fn timeout_secs() -> u64 {
    crate::env_vars::net_timeout().as_secs()
}

/// Why a request failed, in one line naming the URL.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {what}")]
pub struct NetError {
    pub url: String,
    pub what: String,
}

pub fn net_error(url: &str, what: impl Into<String>) -> NetError {
    NetError {
        url: url.to_string(),
        what: what.into(),
    }
}

/// A secret sent as `Authorization: Bearer` only to `host`. Never printed: `Debug` hides it.
#[derive(Clone)]
pub struct Token {
    pub host: String,
    secret: String,
}

impl Token {
    pub fn new(host: &str, secret: String) -> Token {
        Token {
            host: host.to_ascii_lowercase(),
            secret,
        }
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token {{ host: {:?}, secret: <hidden> }}", self.host)
    }
}

/// A response after redirects: its status, the headers layerfit reads, and the body.
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Headers of the redirect hops (the Hub's `X-Linked-Etag` is on its 302).
    pub hop_headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .chain(self.hop_headers.iter())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, at most `cap` bytes (more is an error naming the cap).
    pub fn read_capped(mut self, cap: u64) -> Result<Vec<u8>, NetError> {
        let mut out = Vec::new();
        let url = self.url.clone();
        (&mut self.body)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| io_error(&url, &e))?;
        if out.len() as u64 > cap {
            return Err(net_error(
                &url,
                format!("the response is larger than the {cap}-byte cap"),
            ));
        }
        Ok(out)
    }
}

/// Short requests (listings, manifests, header ranges) have one deadline each; downloads
/// only a per-read one, since a large file may take hours but must keep moving.
pub struct Client {
    short: ureq::Agent,
    long: ureq::Agent,
    /// Tokens by host: given (`HF_TOKEN`) or obtained from a registry's Bearer challenge.
    tokens: std::sync::Mutex<Vec<Token>>,
    pub timeout: Duration,
}

impl Client {
    pub fn new(tokens: Vec<Token>) -> Client {
        let timeout = Duration::from_secs(timeout_secs());
        let base = || {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .user_agent(concat!("layerfit/", env!("CARGO_PKG_VERSION")))
                .max_response_header_size(64 * 1024)
                .timeout_connect(Some(timeout))
                .timeout_recv_response(Some(timeout))
        };
        Client {
            short: base().timeout_global(Some(timeout * 2)).build().into(),
            long: base().timeout_per_read(Some(timeout)).build().into(),
            tokens: std::sync::Mutex::new(tokens),
            timeout,
        }
    }

    fn token_for(&self, host: &str) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        tokens
            .iter()
            .find(|t| t.host == host)
            .map(|t| t.secret.clone())
    }

    /// Answers a registry's `WWW-Authenticate: Bearer realm=...,service=...,scope=...` (the
    /// Docker registry token protocol Ollama's registry speaks): an anonymous token from the
    /// realm, kept for `host` only. False when there is no such challenge.
    fn answer_challenge(&self, host: &str, challenge: Option<&str>) -> Result<bool, NetError> {
        let Some(params) = challenge.and_then(|c| c.trim().strip_prefix("Bearer ")) else {
            return Ok(false);
        };
        let get = |k: &str| {
            params.split(',').find_map(|p| {
                let (key, v) = p.trim().split_once('=')?;
                (key == k).then(|| v.trim_matches('"').to_string())
            })
        };
        let Some(realm) = get("realm") else {
            return Ok(false);
        };
        let mut query = Vec::new();
        for k in ["service", "scope"] {
            if let Some(v) = get(k) {
                query.push(format!("{k}={}", v.replace(' ', "%20")));
            }
        }
        let url = if query.is_empty() {
            realm
        } else {
            format!("{realm}?{}", query.join("&"))
        };
        let body = self.get_small(&url, &[], 64 * 1024)?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| net_error(&url, format!("not a token answer: {e}")))?;
        let token = v
            .get("token")
            .or(v.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| net_error(&url, "the token answer has no token"))?;
        if let Ok(mut t) = self.tokens.lock() {
            t.push(Token::new(host, token.to_string()));
        }
        Ok(true)
    }

    /// `GET url` with `headers`, following redirects; any status comes back (the caller
    /// decides), network failures are errors. `long` is for downloads.
    pub fn get(
        &self,
        url: &str,
        headers: &[(&str, String)],
        long: bool,
    ) -> Result<Response, NetError> {
        let mut url = url.to_string();
        let mut hop_headers = Vec::new();
        let mut challenged = false;
        for _ in 0..=MAX_REDIRECTS {
            check_url(&url).map_err(|e| net_error(&url, e.why))?;
            let agent = if long { &self.long } else { &self.short };
            let mut req = agent.get(&url);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            let host = host_of(url.split_once("://").map_or("", |(_, r)| r)).to_ascii_lowercase();
            let token = self.token_for(&host);
            let had_token = token.is_some();
            if let Some(t) = token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            let resp = req.call().map_err(|e| call_error(&url, e))?;
            let status = resp.status().as_u16();
            if status == 401 && !had_token && !challenged {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                challenged = true;
                if self.answer_challenge(&host, challenge.as_deref())? {
                    continue;
                }
            }
            let hdrs: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
                .collect();
            if (300..400).contains(&status) && status != 304 {
                let loc = hdrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| net_error(&url, format!("HTTP {status} without a Location")))?;
                hop_headers.extend(hdrs);
                url = join_location(&url, &loc);
                continue;
            }
            return Ok(Response {
                url,
                status,
                headers: hdrs,
                hop_headers,
                body: Box::new(resp.into_body().into_reader()),
            });
        }
        Err(net_error(
            &url,
            format!("more than {MAX_REDIRECTS} redirects (a redirect loop?)"),
        ))
    }

    /// `GET` a small document (JSON listing, manifest) of at most `cap` bytes; a status
    /// other than 2xx is the error `status_error` describes.
    pub fn get_small(
        &self,
        url: &str,
        headers: &[(&str, String)],
        cap: u64,
    ) -> Result<Vec<u8>, NetError> {
        let r = self.get(url, headers, false)?;
        if !(200..300).contains(&r.status) {
            return Err(status_error(&r.url, r.status, r.header("retry-after")));
        }
        r.read_capped(cap)
    }
}

/// Resolves a `Location` against the URL that sent it.
fn join_location(base: &str, loc: &str) -> String {
    if loc.contains("://") {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split('/').next().unwrap_or("");
    if loc.starts_with("//") {
        format!("{scheme}:{loc}")
    } else if loc.starts_with('/') {
        format!("{scheme}://{authority}{loc}")
    } else {
        let path = rest.split(['?', '#']).next().unwrap_or(rest);
        let dir = path.rsplit_once('/').map_or(path, |(d, _)| d);
        format!("{scheme}://{dir}/{loc}")
    }
}

/// One line for an HTTP status, with what to do about it.
pub fn status_error(url: &str, status: u16, retry_after: Option<&str>) -> NetError {
    let what = match status {
        401 | 403 => format!(
            "HTTP {status}: access denied (a gated or private model: accept its terms on the Hub and set HF_TOKEN)"
        ),
        404 => "HTTP 404: not found (check the name, the quant and the revision)".to_string(),
        412 => "HTTP 412: the server refused the request's preconditions (a registry that rejects this client)".to_string(),
        416 => "HTTP 416: the server cannot serve that byte range (the file is shorter than it said)".to_string(),
        429 => format!(
            "HTTP 429: too many requests; try again {}",
            retry_after.map_or("later".to_string(), |s| format!("in {s} s"))
        ),
        s if s >= 500 => format!("HTTP {s}: the server failed; try again later"),
        s => format!("HTTP {s}: unexpected answer"),
    };
    net_error(url, what)
}

fn call_error(url: &str, e: ureq::Error) -> NetError {
    use ureq::Error as E;
    let what = match e {
        E::Timeout(t) => format!(
            "timed out ({t}) after {} s without progress",
            timeout_secs()
        ),
        E::HostNotFound => "host not found (no network, or a wrong host name)".into(),
        E::ConnectionFailed => "connection refused or failed".into(),
        E::Tls(m) => format!("TLS failure: {m}"),
        E::Rustls(r) => not_tls(&r.to_string()).unwrap_or_else(|| format!("TLS failure: {r}")),
        E::LargeResponseHeader(..) => "the response headers exceed 64 KiB".into(),
        E::Io(io) => return io_error(url, &io),
        other => other.to_string(),
    };
    net_error(url, what)
}

/// An https:// URL answered in plain text: rustls reads the first bytes of an HTTP answer
/// as a TLS record of an unknown type ("received corrupt message of type
/// InvalidContentType"), which says nothing to a user.
fn not_tls(text: &str) -> Option<String> {
    text.contains("InvalidContentType").then(|| {
        "the server answered without TLS (plain HTTP on an https:// URL?): check the scheme and the port".to_string()
    })
}

/// A failure while reading a body: a dropped connection or a stalled server.
pub fn io_error(url: &str, e: &std::io::Error) -> NetError {
    let text = e.to_string();
    use std::io::ErrorKind as K;
    let what = if let Some(m) = not_tls(&text) {
        m
    } else if e.kind() == K::ConnectionRefused {
        "connection refused (no server listens there)".into()
    } else if e.kind() == K::ConnectionReset || e.kind() == K::ConnectionAborted {
        "the server reset the connection".into()
    } else if e.kind() == std::io::ErrorKind::TimedOut
        || text.contains("imeout")
        || text.contains("imed out")
    {
        format!("timed out: no data for {} s", timeout_secs())
    } else if e.kind() == std::io::ErrorKind::UnexpectedEof || text.contains("closed") {
        "the connection ended before the promised bytes arrived".into()
    } else {
        format!("read failed: {text}")
    };
    net_error(url, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(join_location("https://a/b/c?x", "/d"), "https://a/d");
        assert_eq!(join_location("https://a/b/c?x", "d"), "https://a/b/d");
        assert_eq!(join_location("http://a/b", "https://c/e"), "https://c/e");
        assert_eq!(join_location("https://a/b", "//c/e"), "https://c/e");
    }

    #[test]
    fn token_is_hidden() {
        let t = Token::new("huggingface.co", "hf_secret".into());
        assert!(!format!("{t:?}").contains("hf_secret"));
    }
}
