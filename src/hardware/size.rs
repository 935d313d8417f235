//! Sizes as people write them (`16G`, `512M`, `1.5T`): the parser shared by flags and YAML
//! descriptions, and its errors.

use serde::Deserialize;

/// A size as written in YAML: `16G`, or a bare number (`ram: 32`), kept as text so that
/// [`parse_size`] can ask for the unit instead of reading 32 bytes.
pub fn size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match serde_norway::Value::deserialize(d)? {
        serde_norway::Value::String(s) => Ok(s),
        serde_norway::Value::Number(n) => Ok(n.to_string()),
        other => Err(D::Error::custom(format!(
            "expected a size such as 16G, found {other:?}"
        ))),
    }
}

pub fn opt_size_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    size_text(d).map(Some)
}

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("'{0}' is not a size (e.g. 16G, 512M)")]
    NotASize(String),
    #[error("{0}: add a unit, e.g. {0}G")]
    NoUnit(String),
    #[error("'{0}': unknown unit '{1}' (use B, K, M, G or T)")]
    UnknownUnit(String, String),
    #[error("'{0}' is negative: a size is a positive amount with a unit (e.g. 16G)")]
    Negative(String),
    #[error("'{0}' is out of range (at most 1024T)")]
    OutOfRange(String),
    #[error("'{0}' is zero: no machine has zero of it (e.g. 16G)")]
    Zero(String),
}

/// Parses `16G`, `16GB`, `16GiB`, `512M`, `1.5T`, `1073741824B` (G and GB are binary: 2^30).
/// A unit is required, except for a bare `0`: "16" could mean bytes or gigabytes, and the
/// wrong guess turns a 16 GB machine into a 16-byte one.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(SizeError::Negative(s.to_string()));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| SizeError::NotASize(s.to_string()))?;
    let unit = unit.trim().to_ascii_lowercase();
    if unit.is_empty() && n != 0.0 {
        return Err(SizeError::NoUnit(t.to_string()));
    }
    let mul = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024f64.powi(2),
        "g" | "gb" | "gib" => 1024f64.powi(3),
        "t" | "tb" | "tib" => 1024f64.powi(4),
        u => return Err(SizeError::UnknownUnit(s.to_string(), u.to_string())),
    };
    let v = n * mul;
    if !v.is_finite() || v > 1024f64.powi(5) {
        return Err(SizeError::OutOfRange(s.to_string()));
    }
    Ok(v as u64)
}

/// A size that must be above zero (RAM, VRAM): a zero-memory machine is a typo, not a plan.
pub fn parse_nonzero_size(s: &str) -> Result<u64, SizeError> {
    match parse_size(s)? {
        0 => Err(SizeError::Zero(s.to_string())),
        n => Ok(n),
    }
}
