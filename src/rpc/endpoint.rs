//! `HOST:PORT[,HOST:PORT...]`, as llama.cpp's `--rpc` takes it.

use std::fmt;

/// One RPC server's address. The host is kept as written (a name or an address), so what
/// layerfit connects to is what llama.cpp would connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// llama.cpp's RPC server default port (`ggml-rpc-server`, `layerfit rpc-server`).
pub const DEFAULT_PORT: u16 = 50052;
/// llama.cpp accepts at most this many servers (`GGML_RPC_MAX_SERVERS`).
pub const MAX_SERVERS: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EndpointError {
    #[error("'{0}': expected HOST:PORT (e.g. 192.168.1.20:50052)")]
    Shape(String),
    #[error("'{0}': the port must be a number from 1 to 65535")]
    Port(String),
    #[error("'{0}' is listed twice")]
    Duplicate(String),
    #[error("{0} servers: llama.cpp takes at most {MAX_SERVERS}")]
    TooMany(usize),
    #[error("no server named")]
    Empty,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        let s = s.trim();
        // llama.cpp splits at the first ':' (`parse_endpoint`), so a bare IPv6 address cannot
        // be named; brackets are refused for the same reason.
        let (host, port) = s
            .split_once(':')
            .ok_or_else(|| EndpointError::Shape(s.into()))?;
        let valid_host = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_');
        if !valid_host {
            return Err(EndpointError::Shape(s.into()));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| EndpointError::Port(s.into()))?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    /// A comma-separated list, in order (llama.cpp's device order follows it).
    pub fn parse_list(s: &str) -> Result<Vec<Endpoint>, EndpointError> {
        let mut v: Vec<Endpoint> = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let e = Endpoint::parse(part)?;
            if v.contains(&e) {
                return Err(EndpointError::Duplicate(e.to_string()));
            }
            v.push(e);
        }
        match v.len() {
            0 => Err(EndpointError::Empty),
            n if n > MAX_SERVERS => Err(EndpointError::TooMany(n)),
            _ => Ok(v),
        }
    }

    /// Loopback: `localhost`, 127.0.0.0/8, `::1` never leave the machine.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.to_string()
    }
}

impl TryFrom<String> for Endpoint {
    type Error = EndpointError;
    fn try_from(s: String) -> Result<Endpoint, EndpointError> {
        Endpoint::parse(&s)
    }
}

/// The list as llama.cpp's `--rpc` takes it.
pub fn join(list: &[Endpoint]) -> String {
    list.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_order_and_bad_ones_are_named() {
        let v = Endpoint::parse_list("127.0.0.1:50052, gpu-box:50053").unwrap();
        assert_eq!(join(&v), "127.0.0.1:50052,gpu-box:50053");
        assert!(v[0].is_loopback() && !v[1].is_loopback());
        assert_eq!(
            Endpoint::parse("host"),
            Err(EndpointError::Shape("host".into()))
        );
        assert_eq!(
            Endpoint::parse("h:0"),
            Err(EndpointError::Port("h:0".into()))
        );
        assert_eq!(
            Endpoint::parse("h:99999"),
            Err(EndpointError::Port("h:99999".into()))
        );
        assert!(Endpoint::parse("[::1]:50052").is_err());
        assert!(Endpoint::parse("a b:1").is_err());
        assert_eq!(
            Endpoint::parse_list("h:1,h:1"),
            Err(EndpointError::Duplicate("h:1".into()))
        );
        assert_eq!(Endpoint::parse_list(" , "), Err(EndpointError::Empty));
        let many: Vec<String> = (1..=17).map(|p| format!("h:{p}")).collect();
        assert_eq!(
            Endpoint::parse_list(&many.join(",")),
            Err(EndpointError::TooMany(17))
        );
    }
}
