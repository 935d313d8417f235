//! Model names that point beyond a local path (docs/models.md): `hf://ORG/REPO[:QUANT][@REV]`,
//! `hf://ORG/REPO/PATH.gguf[@REV]`, `https://.../NAME.gguf`, `ollama://[HOST/][NS/]NAME[:TAG]`.
//! Pure parsing: no file, environment or network is touched here, so every rule is tested.

use std::fmt;

/// Ollama's public registry, used when an `ollama://` name has no host.
pub const OLLAMA_REGISTRY: &str = "registry.ollama.ai";

/// A model name the remote layer understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteName {
    Hf(HfName),
    Url(String),
    Ollama(OllamaName),
}

/// `hf://ORG/REPO` with an optional quant tag or file path, and a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfName {
    /// `ORG/REPO`.
    pub repo: String,
    /// `Q4_K_M` as written (matched case-insensitively).
    pub quant: Option<String>,
    /// A file inside the repository (`sub/dir/name.gguf`).
    pub file: Option<String>,
    /// `main` unless `@REV` was given.
    pub revision: String,
}

/// `ollama://[HOST/][NAMESPACE/]NAME[:TAG]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OllamaName {
    pub host: String,
    pub namespace: String,
    pub name: String,
    pub tag: String,
}

/// Why a name cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name}: {why}")]
pub struct NameError {
    pub name: String,
    pub why: String,
}

fn bad(name: &str, why: impl Into<String>) -> NameError {
    NameError {
        name: name.to_string(),
        why: why.into(),
    }
}

/// Characters Hugging Face allows in an organisation or repository name (`[A-Za-z0-9_.-]`,
/// as llama.cpp's `is_valid_repo_id` checks), which also keeps names safe as folder names.
fn valid_part(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 96
        && p != "."
        && p != ".."
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl RemoteName {
    /// `Ok(None)` when `spec` is not a remote name (a path or a catalog name).
    pub fn parse(spec: &str) -> Result<Option<RemoteName>, NameError> {
        if let Some(rest) = spec.strip_prefix("hf://") {
            return parse_hf(spec, rest).map(|n| Some(RemoteName::Hf(n)));
        }
        if let Some(rest) = spec.strip_prefix("ollama://") {
            return parse_ollama(spec, rest).map(|n| Some(RemoteName::Ollama(n)));
        }
        let lower = spec.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            check_url(spec)?;
            return Ok(Some(RemoteName::Url(spec.to_string())));
        }
        Ok(None)
    }
}

fn parse_hf(spec: &str, rest: &str) -> Result<HfName, NameError> {
    let (body, revision) = match rest.rsplit_once('@') {
        Some((b, r)) if valid_revision(r) => (b, r.to_string()),
        Some(_) => {
            return Err(bad(
                spec,
                "the revision after '@' is empty or has odd characters",
            ))
        }
        None => (rest, "main".to_string()),
    };
    let mut parts = body.splitn(3, '/');
    let org = parts.next().unwrap_or_default();
    let repo_tag = parts.next().unwrap_or_default();
    let file = parts.next();
    let (repo, quant) = match (file, repo_tag.split_once(':')) {
        (None, Some((r, q))) => (r, Some(q)),
        (Some(_), Some(_)) => {
            return Err(bad(spec, "use either :QUANT or a file path, not both"));
        }
        (_, None) => (repo_tag, None),
    };
    if !valid_part(org) || !valid_part(repo) {
        return Err(bad(
            spec,
            "expected hf://ORG/REPO, hf://ORG/REPO:QUANT or hf://ORG/REPO/FILE.gguf (letters, digits, '_', '.', '-')",
        ));
    }
    if let Some(q) = quant {
        if !valid_part(q) {
            return Err(bad(
                spec,
                "the quant after ':' is empty or has odd characters",
            ));
        }
    }
    if let Some(f) = file {
        if !f.to_ascii_lowercase().ends_with(".gguf") || !f.split('/').all(valid_part) {
            return Err(bad(
                spec,
                "a file in a repository is a path ending in .gguf",
            ));
        }
    }
    Ok(HfName {
        repo: format!("{org}/{repo}"),
        quant: quant.map(str::to_string),
        file: file.map(str::to_string),
        revision,
    })
}

fn valid_revision(r: &str) -> bool {
    !r.is_empty() && !r.contains("..") && r.split('/').all(valid_part)
}

fn parse_ollama(spec: &str, rest: &str) -> Result<OllamaName, NameError> {
    let parts: Vec<&str> = rest.split('/').collect();
    // A first part with a dot, a colon (port) or "localhost" is a host, as in Docker names.
    let has_host = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    let (host, rest) = if has_host {
        (parts[0].to_string(), &parts[1..])
    } else {
        (OLLAMA_REGISTRY.to_string(), &parts[..])
    };
    let (namespace, last) = match rest {
        [name] => ("library", *name),
        [ns, name] => (*ns, *name),
        _ => return Err(bad(spec, "expected ollama://[HOST/][NAMESPACE/]NAME[:TAG]")),
    };
    let (name, tag) = last.split_once(':').unwrap_or((last, "latest"));
    if !valid_part(namespace) || !valid_part(name) || !valid_part(tag) {
        return Err(bad(
            spec,
            "expected ollama://[HOST/][NAMESPACE/]NAME[:TAG] (letters, digits, '_', '.', '-')",
        ));
    }
    if has_host && !valid_host(&host) {
        return Err(bad(spec, format!("'{host}' is not a host name")));
    }
    Ok(OllamaName {
        host,
        namespace: namespace.to_string(),
        name: name.to_string(),
        tag: tag.to_string(),
    })
}

fn valid_host(h: &str) -> bool {
    let (name, port) = h.rsplit_once(':').unwrap_or((h, "1"));
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        && port.parse::<u16>().is_ok()
}

/// `https://` anywhere; plain `http://` only to this machine (127.0.0.0/8, ::1, localhost),
/// where nothing crosses a network an attacker could sit on.
pub fn check_url(url: &str) -> Result<(), NameError> {
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        let host = host_of(r);
        if !is_loopback(host) {
            return Err(bad(
                url,
                "plain http:// is allowed only for this machine (127.0.0.1, ::1, localhost); use https://",
            ));
        }
        r
    } else {
        return Err(bad(
            url,
            "only https:// (and http:// to this machine) URLs are read",
        ));
    };
    if host_of(rest).is_empty() {
        return Err(bad(url, "the URL has no host"));
    }
    Ok(())
}

/// The host of `rest` (a URL after its scheme), without port, user or brackets.
pub fn host_of(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

impl fmt::Display for HfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hf://{}", self.repo)?;
        if let Some(file) = &self.file {
            write!(f, "/{file}")?;
        }
        if let Some(q) = &self.quant {
            write!(f, ":{q}")?;
        }
        if self.revision != "main" {
            write!(f, "@{}", self.revision)?;
        }
        Ok(())
    }
}

impl fmt::Display for OllamaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ollama://")?;
        if self.host != OLLAMA_REGISTRY {
            write!(f, "{}/", self.host)?;
        }
        if self.namespace != "library" {
            write!(f, "{}/", self.namespace)?;
        }
        write!(f, "{}:{}", self.name, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hf(s: &str) -> HfName {
        match RemoteName::parse(s).unwrap().unwrap() {
            RemoteName::Hf(h) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hf_forms() {
        let h = hf("hf://bartowski/Qwen2.5-7B-GGUF:q4_k_m");
        assert_eq!(h.repo, "bartowski/Qwen2.5-7B-GGUF");
        assert_eq!(h.quant.as_deref(), Some("q4_k_m"));
        assert_eq!(h.revision, "main");
        let h = hf("hf://org/repo/sub/x-00001-of-00002.gguf@abc123");
        assert_eq!(h.file.as_deref(), Some("sub/x-00001-of-00002.gguf"));
        assert_eq!(h.revision, "abc123");
        assert_eq!(hf("hf://org/repo").to_string(), "hf://org/repo");
        for bad in [
            "hf://org",
            "hf://org/",
            "hf://../repo",
            "hf://org/repo/../x.gguf",
            "hf://org/repo/x.bin",
            "hf://org/repo:",
            "hf://org/repo@",
            "hf://org/re po",
        ] {
            assert!(RemoteName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ollama_forms() {
        let o = |s| match RemoteName::parse(s).unwrap().unwrap() {
            RemoteName::Ollama(o) => o,
            other => panic!("{other:?}"),
        };
        let a = o("ollama://smollm2");
        assert_eq!(
            (a.host.as_str(), a.namespace.as_str()),
            (OLLAMA_REGISTRY, "library")
        );
        assert_eq!((a.name.as_str(), a.tag.as_str()), ("smollm2", "latest"));
        let b = o("ollama://127.0.0.1:8080/me/model:q4");
        assert_eq!(b.host, "127.0.0.1:8080");
        assert_eq!((b.namespace.as_str(), b.tag.as_str()), ("me", "q4"));
        assert_eq!(b.to_string(), "ollama://127.0.0.1:8080/me/model:q4");
        assert!(RemoteName::parse("ollama://a/b/c/d").is_err());
        assert!(RemoteName::parse("ollama://x:").is_err());
    }

    #[test]
    fn urls() {
        assert!(RemoteName::parse("https://example.com/x.gguf")
            .unwrap()
            .is_some());
        assert!(RemoteName::parse("http://127.0.0.1:9/x.gguf")
            .unwrap()
            .is_some());
        assert!(RemoteName::parse("http://[::1]:9/x.gguf")
            .unwrap()
            .is_some());
        assert!(RemoteName::parse("http://localhost/x.gguf")
            .unwrap()
            .is_some());
        assert!(RemoteName::parse("http://example.com/x.gguf").is_err());
        assert!(RemoteName::parse("http://127.0.0.1.evil.com/x.gguf").is_err());
        assert!(RemoteName::parse("http://user@127.0.0.1.x/").is_err());
        assert_eq!(RemoteName::parse("models/x.gguf").unwrap(), None);
        assert_eq!(RemoteName::parse("qwen2.5-coder:7b").unwrap(), None);
    }
}
