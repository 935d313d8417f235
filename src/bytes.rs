//! A byte amount with its own type, so that sizes are never confused with counts and every
//! sum is checked: a hostile header must not be able to wrap a total around to a small number.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};

/// A number of bytes. Arithmetic saturates at `u64::MAX` instead of wrapping; the GGUF reader
/// rejects anything that large long before it reaches the memory model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub u64);

impl Bytes {
    pub const ZERO: Bytes = Bytes(0);
    const MIB: f64 = 1024.0 * 1024.0;

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn mib(self) -> f64 {
        self.0 as f64 / Self::MIB
    }

    pub fn gib(self) -> f64 {
        self.0 as f64 / (Self::MIB * 1024.0)
    }

    pub fn checked_add(self, other: Bytes) -> Option<Bytes> {
        self.0.checked_add(other.0).map(Bytes)
    }

    pub fn saturating_sub(self, other: Bytes) -> Bytes {
        Bytes(self.0.saturating_sub(other.0))
    }

    /// Scales by a count (cells, rows, layers), saturating.
    pub fn times(self, n: u64) -> Bytes {
        Bytes(self.0.saturating_mul(n))
    }
}

impl Add for Bytes {
    type Output = Bytes;
    fn add(self, rhs: Bytes) -> Bytes {
        Bytes(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Bytes {
    fn add_assign(&mut self, rhs: Bytes) {
        *self = *self + rhs;
    }
}

impl Sum for Bytes {
    fn sum<I: Iterator<Item = Bytes>>(iter: I) -> Bytes {
        iter.fold(Bytes::ZERO, |a, b| a + b)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// In JSON a byte amount is a plain non-negative integer.
impl schemars::JsonSchema for Bytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bytes".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "integer", "minimum": 0, "description": "bytes"})
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        u64::deserialize(d).map(Bytes)
    }
}

/// Human form with binary units, the way llama.cpp logs its buffers (MiB with two decimals).
impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0 as f64;
        if self.0 < 1024 {
            write!(f, "{} B", self.0)
        } else if b < Self::MIB {
            write!(f, "{:.2} KiB", b / 1024.0)
        } else if b < Self::MIB * 1024.0 {
            write!(f, "{:.2} MiB", b / Self::MIB)
        } else {
            write!(f, "{:.2} GiB", b / (Self::MIB * 1024.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_uses_binary_units() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536).to_string(), "1.50 KiB");
        assert_eq!(Bytes(3 * 1024 * 1024).to_string(), "3.00 MiB");
        assert_eq!(Bytes(5 * 1024 * 1024 * 1024 / 2).to_string(), "2.50 GiB");
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        assert_eq!(Bytes(u64::MAX) + Bytes(1), Bytes(u64::MAX));
        assert_eq!(Bytes(u64::MAX / 2).times(3), Bytes(u64::MAX));
        assert_eq!(Bytes(1).checked_add(Bytes(u64::MAX)), None);
    }
}
