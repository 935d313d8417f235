//! The header parser's cursor: reads GGUF's little-endian values from a buffered file,
//! checking every count and length against the bytes left before allocating anything.

use super::reader::{TensorInfo, KEEP_ARRAY_ITEMS};
use super::{Array, GgufError, Value, ValueType};
use crate::ggml_type::GgmlType;
use std::io::{BufRead, Seek};
use std::path::Path;

/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are refused (GGUF writers never nest more than once).
const MAX_ARRAY_DEPTH: u32 = 3;

pub(super) struct Cursor<'p, R> {
    pub(super) inner: R,
    pub(super) pos: u64,
    pub(super) len: u64,
    pub(super) path: &'p Path,
}

impl<R: BufRead + Seek> Cursor<'_, R> {
    pub(super) fn err(&self, msg: impl Into<String>) -> GgufError {
        GgufError::new(self.path, Some(self.pos), msg)
    }

    pub(super) fn err_at(&self, at: u64, msg: impl Into<String>) -> GgufError {
        GgufError::new(self.path, Some(at), msg)
    }

    pub(super) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    pub(super) fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        if (buf.len() as u64) > self.remaining() {
            return Err(self.err(format!(
                "file ends while reading {what} (needs {} bytes, {} left): truncated header",
                buf.len(),
                self.remaining()
            )));
        }
        self.inner
            .read_exact(buf)
            .map_err(|e| self.err(format!("cannot read {what}: {e}")))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    pub(super) fn skip(&mut self, n: u64, what: &str) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "file ends inside {what} (needs {n} bytes, {} left): truncated header",
                self.remaining()
            )));
        }
        self.inner
            .seek_relative(n as i64)
            .map_err(|e| self.err(format!("cannot skip {what}: {e}")))?;
        self.pos += n;
        Ok(())
    }

    pub(super) fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    pub(super) fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        let mut b = [0u8; 8];
        self.read_exact(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Refuses a count whose minimal encoding could not fit in the rest of the file.
    pub(super) fn check_count(
        &self,
        count: u64,
        min_size: u64,
        what: &str,
    ) -> Result<(), GgufError> {
        let fits = count
            .checked_mul(min_size)
            .is_some_and(|b| b <= self.remaining());
        if !fits {
            return Err(self.err(format!(
                "{count} {what} cannot fit in the {} bytes left in the file",
                self.remaining()
            )));
        }
        Ok(())
    }

    pub(super) fn string(&mut self, max_len: u64, what: &str) -> Result<String, GgufError> {
        let at = self.pos;
        let n = self.u64(what)?;
        if n > max_len {
            return Err(self.err_at(at, format!("{what} claims {n} bytes (limit {max_len})")));
        }
        if n > self.remaining() {
            return Err(self.err_at(
                at,
                format!(
                    "{what} claims {n} bytes but only {} are left: truncated header or corrupt length",
                    self.remaining()
                ),
            ));
        }
        let mut buf = vec![0u8; n as usize];
        self.read_exact(&mut buf, what)?;
        String::from_utf8(buf).map_err(|_| self.err_at(at, format!("{what} is not valid UTF-8")))
    }

    pub(super) fn value_type(&mut self, key: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32("a value type")?;
        ValueType::from_id(id)
            .ok_or_else(|| self.err_at(at, format!("metadata key '{key}' has unknown type {id}")))
    }

    pub(super) fn value(
        &mut self,
        ty: ValueType,
        key: &str,
        depth: u32,
    ) -> Result<Value, GgufError> {
        let what = format!("the value of '{key}'");
        Ok(match ty {
            ValueType::U8 => {
                let mut b = [0u8; 1];
                self.read_exact(&mut b, &what)?;
                Value::Uint(b[0] as u64)
            }
            ValueType::I8 => {
                let mut b = [0u8; 1];
                self.read_exact(&mut b, &what)?;
                Value::Int(b[0] as i8 as i64)
            }
            ValueType::Bool => {
                let mut b = [0u8; 1];
                self.read_exact(&mut b, &what)?;
                Value::Bool(b[0] != 0)
            }
            ValueType::U16 => {
                let mut b = [0u8; 2];
                self.read_exact(&mut b, &what)?;
                Value::Uint(u16::from_le_bytes(b) as u64)
            }
            ValueType::I16 => {
                let mut b = [0u8; 2];
                self.read_exact(&mut b, &what)?;
                Value::Int(i16::from_le_bytes(b) as i64)
            }
            ValueType::U32 => Value::Uint(self.u32(&what)? as u64),
            ValueType::I32 => Value::Int(self.u32(&what)? as i32 as i64),
            ValueType::F32 => Value::Float(f32::from_bits(self.u32(&what)?) as f64),
            ValueType::U64 => Value::Uint(self.u64(&what)?),
            ValueType::I64 => Value::Int(self.u64(&what)? as i64),
            ValueType::F64 => Value::Float(f64::from_bits(self.u64(&what)?)),
            ValueType::String => Value::String(self.string(u64::MAX, &what)?),
            ValueType::Array => self.array(key, depth)?,
        })
    }

    pub(super) fn array(&mut self, key: &str, depth: u32) -> Result<Value, GgufError> {
        let at = self.pos;
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.err_at(
                at,
                format!("metadata key '{key}' nests arrays deeper than {MAX_ARRAY_DEPTH}"),
            ));
        }
        let elem = self.value_type(key)?;
        let len = self.u64("an array length")?;
        let min = elem.scalar_size().unwrap_or(8);
        if len.checked_mul(min).is_none_or(|b| b > self.remaining()) {
            return Err(self.err_at(
                at,
                format!(
                    "metadata key '{key}' claims an array of {len} items, which cannot fit in the {} bytes left",
                    self.remaining()
                ),
            ));
        }
        if len <= KEEP_ARRAY_ITEMS {
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(self.value(elem, key, depth + 1)?);
            }
            return Ok(Value::Array(Array {
                elem,
                len,
                items: Some(items),
            }));
        }
        // Long arrays: skip without materializing anything.
        match elem.scalar_size() {
            Some(size) => self.skip(len * size, &format!("the array '{key}'"))?,
            None if elem == ValueType::String => {
                let what = format!("an item of the array '{key}'");
                for _ in 0..len {
                    let n = self.u64(&what)?;
                    self.skip(n, &what)?;
                }
            }
            None => {
                for _ in 0..len {
                    self.array(key, depth + 1)?;
                }
            }
        }
        Ok(Value::Array(Array {
            elem,
            len,
            items: None,
        }))
    }

    pub(super) fn tensor_info(&mut self) -> Result<TensorInfo, GgufError> {
        let at = self.pos;
        let name = self.string(1 << 16, "a tensor name")?;
        let n_dims = self.u32("a tensor's dimension count")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(self.err_at(
                at,
                format!("tensor '{name}' has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = self.u64("a tensor dimension")?;
            elements = elements
                .checked_mul(d)
                .filter(|&e| e < i64::MAX as u64)
                .ok_or_else(|| {
                    self.err_at(
                        at,
                        format!("tensor '{name}' has an absurd shape {dims:?} x {d}"),
                    )
                })?;
            dims.push(d);
        }
        let type_at = self.pos;
        let type_id = self.u32("a tensor type")?;
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            self.err_at(
                type_at,
                format!("tensor '{name}' has unknown ggml type {type_id}"),
            )
        })?;
        if dims[0] % ggml_type.block_size() != 0 {
            return Err(self.err_at(
                at,
                format!(
                    "tensor '{name}' row of {} values is not a whole number of {} blocks ({} values each)",
                    dims[0],
                    ggml_type,
                    ggml_type.block_size()
                ),
            ));
        }
        let offset = self.u64("a tensor offset")?;
        Ok(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        })
    }
}
