//! ggml tensor types and their block-exact sizes.
//!
//! Every figure here is the `blck_size` / `type_size` pair of `type_traits` in
//! `ggml/src/ggml.c` (block structs in `ggml/src/ggml-common.h`) of the vendored llama.cpp.
//! `ggml_row_size(type, n) = type_size * n / blck_size`, and a row must hold whole blocks.

use crate::bytes::Bytes;
use serde::Serialize;
use std::fmt;

macro_rules! ggml_types {
    ($( $variant:ident = $id:literal, $name:literal, $block:literal, $size:literal; )*) => {
        /// A tensor element type as stored in GGUF (`ggml_type`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum GgmlType { $( $variant, )* }

        impl GgmlType {
            pub const ALL: &'static [GgmlType] = &[ $( GgmlType::$variant, )* ];

            /// The type for a GGUF type id; `None` for ids ggml does not know (or removed).
            pub fn from_id(id: u32) -> Option<GgmlType> {
                match id { $( $id => Some(GgmlType::$variant), )* _ => None }
            }

            pub fn id(self) -> u32 {
                match self { $( GgmlType::$variant => $id, )* }
            }

            /// ggml's own lower-case name (`ggml_type_name`).
            pub fn name(self) -> &'static str {
                match self { $( GgmlType::$variant => $name, )* }
            }

            /// Values per block (`blck_size`).
            pub fn block_size(self) -> u64 {
                match self { $( GgmlType::$variant => $block, )* }
            }

            /// Bytes per block (`type_size`).
            pub fn type_size(self) -> u64 {
                match self { $( GgmlType::$variant => $size, )* }
            }
        }
    };
}

ggml_types! {
    F32 = 0, "f32", 1, 4;
    F16 = 1, "f16", 1, 2;
    Q4_0 = 2, "q4_0", 32, 18;
    Q4_1 = 3, "q4_1", 32, 20;
    Q5_0 = 6, "q5_0", 32, 22;
    Q5_1 = 7, "q5_1", 32, 24;
    Q8_0 = 8, "q8_0", 32, 34;
    Q8_1 = 9, "q8_1", 32, 36;
    Q2K = 10, "q2_K", 256, 84;
    Q3K = 11, "q3_K", 256, 110;
    Q4K = 12, "q4_K", 256, 144;
    Q5K = 13, "q5_K", 256, 176;
    Q6K = 14, "q6_K", 256, 210;
    Q8K = 15, "q8_K", 256, 292;
    Iq2Xxs = 16, "iq2_xxs", 256, 66;
    Iq2Xs = 17, "iq2_xs", 256, 74;
    Iq3Xxs = 18, "iq3_xxs", 256, 98;
    Iq1S = 19, "iq1_s", 256, 50;
    Iq4Nl = 20, "iq4_nl", 32, 18;
    Iq3S = 21, "iq3_s", 256, 110;
    Iq2S = 22, "iq2_s", 256, 82;
    Iq4Xs = 23, "iq4_xs", 256, 136;
    I8 = 24, "i8", 1, 1;
    I16 = 25, "i16", 1, 2;
    I32 = 26, "i32", 1, 4;
    I64 = 27, "i64", 1, 8;
    F64 = 28, "f64", 1, 8;
    Iq1M = 29, "iq1_m", 256, 56;
    Bf16 = 30, "bf16", 1, 2;
    Tq1_0 = 34, "tq1_0", 256, 54;
    Tq2_0 = 35, "tq2_0", 256, 66;
    Mxfp4 = 39, "mxfp4", 32, 17;
    Nvfp4 = 40, "nvfp4", 64, 36;
    Q1_0 = 41, "q1_0", 128, 18;
    Q2_0 = 42, "q2_0", 64, 18;
}

impl GgmlType {
    /// Bytes of one row of `n` values (`ggml_row_size`); `None` when `n` is not a whole number
    /// of blocks, which ggml refuses too.
    pub fn row_size(self, n: u64) -> Option<Bytes> {
        if !n.is_multiple_of(self.block_size()) {
            return None;
        }
        (n / self.block_size())
            .checked_mul(self.type_size())
            .map(Bytes)
    }

    /// Bits per weight, for display (`q4_K` = 4.5).
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }

    /// Looks a type up by ggml's name, case-insensitively (`q8_0`, `Q4_K`, `bf16`).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        GgmlType::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for GgmlType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// In JSON a ggml type is its name (`f16`, `q4_K`, ...).
impl schemars::JsonSchema for GgmlType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GgmlType".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "a ggml type name"})
    }
}

/// The KV cache types llama.cpp accepts for `-ctk`/`-ctv` (`kv_cache_types` in `common/arg.cpp`).
pub const KV_CACHE_TYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Bf16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Iq4Nl,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_removed_ids_are_unknown() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t.id()), Some(*t));
        }
        for removed in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
            assert_eq!(GgmlType::from_id(removed), None);
        }
    }

    #[test]
    fn row_sizes_are_block_exact() {
        assert_eq!(GgmlType::Q8_0.row_size(64), Some(Bytes(68)));
        assert_eq!(GgmlType::Q4_0.row_size(128), Some(Bytes(72)));
        assert_eq!(GgmlType::F16.row_size(3), Some(Bytes(6)));
        assert_eq!(GgmlType::Q4K.row_size(256 * 3), Some(Bytes(432)));
        assert_eq!(GgmlType::Q4K.row_size(100), None);
        assert_eq!(GgmlType::Q4K.bits_per_weight(), 4.5);
    }

    #[test]
    fn names_parse_case_insensitively() {
        assert_eq!(GgmlType::from_name("Q8_0"), Some(GgmlType::Q8_0));
        assert_eq!(GgmlType::from_name("q4_k"), Some(GgmlType::Q4K));
        assert_eq!(GgmlType::from_name("q9_9"), None);
    }
}
