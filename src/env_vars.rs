//! The environment variables layerfit documents, read in one place with one set of rules:
//! a switch accepts `1`, `true`, `yes`, `on` and `0`, `false`, `no`, `off` (any case), and an
//! empty value means unset, for every variable. Anything else is an error naming the variable,
//! checked once when a command starts ([`check_all`]), so no command half-runs on a typo.

use std::ffi::OsString;
use std::path::PathBuf;

/// How a variable's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// On or off.
    Switch,
    /// A file or folder.
    Path,
    /// Whole seconds, 1 to 3600.
    Seconds,
}

/// Every variable layerfit reads, with its kind (docs/user-guide.md lists them).
pub const DOCUMENTED: &[(&str, Kind)] = &[
    ("LAYERFIT_HARDWARE", Kind::Path),
    ("LAYERFIT_MODELS", Kind::Path),
    ("LAYERFIT_SOFTWARE_GPU", Kind::Switch),
    ("LAYERFIT_ENGINE_LOG", Kind::Switch),
    ("NO_COLOR", Kind::Switch),
    ("LAYERFIT_NET_TIMEOUT", Kind::Seconds),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("{name}={value:?} is not a switch: use 1, true, yes or on; 0, false, no or off; or leave it empty")]
    NotASwitch { name: String, value: String },
    #[error("{name}={value:?} is not a number of seconds from 1 to 3600")]
    NotSeconds { name: String, value: String },
    #[error("{name} is not valid UTF-8")]
    NotUnicode { name: String },
}

/// Parses a switch value: `Some(true/false)`, `None` for empty (unset).
pub fn parse_switch(value: &str) -> Option<Result<bool, ()>> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => None,
        "1" | "true" | "yes" | "on" | "y" => Some(Ok(true)),
        "0" | "false" | "no" | "off" | "n" => Some(Ok(false)),
        _ => Some(Err(())),
    }
}

fn raw(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// A switch variable; unset, empty or unparsable reads as off (see [`check_all`]).
pub fn switch(name: &str) -> bool {
    raw(name)
        .and_then(|v| v.to_str().and_then(parse_switch))
        .is_some_and(|r| r == Ok(true))
}

/// `NO_COLOR` follows its own convention (no-color.org): any non-empty value turns colour off,
/// and so does a switch value that says on; `NO_COLOR=0`/`false` leaves colour on.
pub fn no_color() -> bool {
    match raw("NO_COLOR") {
        None => false,
        Some(v) => !matches!(v.to_str().and_then(parse_switch), Some(Ok(false))),
    }
}

/// Whole seconds from 1 to 3600.
pub fn seconds(text: &str) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| (1..=3600).contains(v))
}

/// A seconds variable; unset, empty or out of range reads as `None` (see [`check_all`]).
pub fn seconds_var(name: &str) -> Option<u64> {
    raw(name).and_then(|v| v.to_str().and_then(seconds))
}

/// Seconds without progress before a network request (HTTP or RPC) fails:
/// `LAYERFIT_NET_TIMEOUT`, default 30.
pub fn net_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(seconds_var("LAYERFIT_NET_TIMEOUT").unwrap_or(30))
}

/// A path variable; empty means unset.
pub fn path(name: &str) -> Option<PathBuf> {
    raw(name).map(PathBuf::from)
}

/// Checks every documented variable's value; the first bad one is the error.
pub fn check_all() -> Result<(), EnvError> {
    for (name, kind) in DOCUMENTED {
        let Some(v) = raw(name) else { continue };
        let Some(text) = v.to_str() else {
            if *kind != Kind::Path {
                return Err(EnvError::NotUnicode {
                    name: name.to_string(),
                });
            }
            continue;
        };
        if *kind == Kind::Seconds && seconds(text).is_none() {
            return Err(EnvError::NotSeconds {
                name: name.to_string(),
                value: text.to_string(),
            });
        }
        // NO_COLOR takes any value by its own convention.
        if *kind == Kind::Switch && *name != "NO_COLOR" && parse_switch(text) == Some(Err(())) {
            return Err(EnvError::NotASwitch {
                name: name.to_string(),
                value: text.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_values() {
        for v in ["1", "true", "TRUE", "yes", "on"] {
            assert_eq!(parse_switch(v), Some(Ok(true)), "{v}");
        }
        for v in ["0", "false", "no", "Off"] {
            assert_eq!(parse_switch(v), Some(Ok(false)), "{v}");
        }
        assert_eq!(parse_switch(""), None);
        assert_eq!(parse_switch("maybe"), Some(Err(())));
    }
}
