//! Reading GGUF model headers: metadata and tensor descriptions, never the tensor data.
//!
//! This is layerfit's own reader (see `docs/gguf-reader.md` for the measurements that ruled
//! out `gguf-rs`): one pass through a buffered file, every count and length checked against
//! what the file can hold before anything is allocated, and every error naming the file, the
//! offset and the key or tensor being read.

mod cursor;
mod error;
mod reader;
mod source;
pub mod writer;

pub use error::GgufError;
pub use reader::{read_header, read_header_from, Header, TensorInfo};
pub use source::{assemble, open_model, split_shard_paths, ModelFile};

use std::collections::BTreeMap;

/// GGUF metadata value types (`gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// Encoded size of a scalar; strings and arrays have none (they carry a length).
    pub fn scalar_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

/// A metadata value. Large arrays (the vocabulary, merges, scores) are counted, not kept.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    String(String),
    Array(Array),
}

/// An array value: its element type and length always; its items only when small enough to
/// matter to a memory estimate (per-layer hyperparameters), see `reader::KEEP_ARRAY_ITEMS`.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub elem: ValueType,
    pub len: u64,
    pub items: Option<Vec<Value>>,
}

impl Value {
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) if v >= 0 => Some(v as u64),
            Value::Bool(b) => Some(b as u64),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Uint(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Metadata keys in file order are not needed by anything; a sorted map makes lookups cheap.
pub type Metadata = BTreeMap<String, Value>;
