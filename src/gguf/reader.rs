//! The single-pass header parser.
//!
//! Limits are checked before every allocation: a count or length is accepted only if the
//! bytes left in the file could hold it, so a 100-byte hostile file can never make the reader
//! allocate more than about 100 bytes' worth of values, however large the numbers it claims.

use super::cursor::Cursor;
use super::{GgufError, Metadata};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 4] = b"GGUF";
/// GGUF's limit on key length.
const MAX_KEY_LEN: u64 = 65_535;
/// Arrays up to this length keep their items (per-layer hyperparameters have one per block);
/// longer ones (vocabulary, merges, scores) only keep their length.
pub(crate) const KEEP_ARRAY_ITEMS: u64 = 4096;
/// The buffer is large enough that a vocabulary of 262k strings costs a few hundred reads.
const BUFFER_BYTES: usize = 1 << 20;

/// One tensor's description in a GGUF header.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// `ne[0..n_dims]`, innermost first, as ggml counts them.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset relative to the start of the tensor data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Elements, saturating: the reader bounds the product of the dimensions, but a zero
    /// dimension anywhere makes that bound say nothing about the others (found by fuzzing).
    pub fn n_elements(&self) -> u64 {
        if self.dims.contains(&0) {
            return 0;
        }
        self.dims.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// Bytes of the tensor's data (`ggml_nbytes`), block-exact.
    pub fn n_bytes(&self) -> Bytes {
        if self.dims.contains(&0) {
            return Bytes::ZERO;
        }
        let rows = self
            .dims
            .iter()
            .skip(1)
            .fold(1u64, |a, &d| a.saturating_mul(d));
        let row = self
            .ggml_type
            .row_size(self.dims.first().copied().unwrap_or(1))
            .unwrap_or(Bytes::ZERO);
        row.times(rows)
    }
}

/// Everything a GGUF file says before its tensor data.
#[derive(Clone, Debug)]
pub struct Header {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: Metadata,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset where tensor data starts.
    pub data_offset: u64,
    /// Bytes the tensor data needs (the end of the last tensor, relative to `data_offset`).
    pub data_bytes: u64,
    /// The file's size on disk.
    pub file_size: u64,
}

impl Header {
    /// Bytes the complete file would have.
    pub fn expected_file_size(&self) -> u64 {
        self.data_offset.saturating_add(self.data_bytes)
    }

    /// Bytes of tensor data missing at the end (a partial download), 0 when complete.
    pub fn missing_bytes(&self) -> u64 {
        self.expected_file_size().saturating_sub(self.file_size)
    }
}

/// Reads the header of the GGUF file at `path`.
pub fn read_header(path: &Path) -> Result<Header, GgufError> {
    let meta = std::fs::metadata(path).map_err(|e| GgufError::new(path, None, io_reason(&e)))?;
    if meta.is_dir() {
        return Err(GgufError::new(
            path,
            None,
            "is a directory, not a GGUF file",
        ));
    }
    if !meta.is_file() {
        return Err(GgufError::new(
            path,
            None,
            "is not a regular file (device, pipe or socket)",
        ));
    }
    let file = File::open(path).map_err(|e| GgufError::new(path, None, io_reason(&e)))?;
    read_header_from(
        path,
        BufReader::with_capacity(BUFFER_BYTES, file),
        meta.len(),
    )
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Reads a header from any buffered, seekable source of `len` bytes (a file, a cached
/// remote prefix); `path` names it in errors.
pub fn read_header_from<R: BufRead + Seek>(
    path: &Path,
    inner: R,
    len: u64,
) -> Result<Header, GgufError> {
    let mut r = Cursor {
        inner,
        pos: 0,
        len,
        path,
    };
    if len == 0 {
        return Err(r.err_at(0, "file is empty"));
    }
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic, "the GGUF magic")?;
    if &magic != MAGIC {
        return Err(r.err_at(
            0,
            format!(
                "not a GGUF file (magic {:?}, expected \"GGUF\")",
                String::from_utf8_lossy(&magic)
            ),
        ));
    }
    let version = r.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => return Err(r.err_at(4, "GGUF version 1 is not supported (only 2 and 3)")),
        v if v.swap_bytes() == 2 || v.swap_bytes() == 3 => {
            return Err(r.err_at(4, "big-endian GGUF files are not supported"))
        }
        v => return Err(r.err_at(4, format!("unknown GGUF version {v} (only 2 and 3)"))),
    }
    let n_tensors = r.u64("the tensor count")?;
    let n_kv = r.u64("the metadata count")?;
    // Each key-value needs at least a key length, a one-byte key and a type.
    r.check_count(n_kv, 8 + 1 + 4, "metadata entries")?;
    // Each tensor description needs at least a name length, n_dims, one dim, type, offset.
    r.check_count(n_tensors, 8 + 4 + 8 + 4 + 8, "tensors")?;

    let mut metadata = Metadata::new();
    for _ in 0..n_kv {
        let at = r.pos;
        let key = r.string(MAX_KEY_LEN, "a metadata key")?;
        let ty = r.value_type(&key)?;
        let value = r.value(ty, &key, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(r.err_at(at, format!("metadata key '{key}' appears twice")));
        }
    }

    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
            _ => {
                return Err(r.err_at(
                    24,
                    format!("metadata key 'general.alignment' has invalid value {v:?}"),
                ))
            }
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        tensors.push(r.tensor_info()?);
    }
    let data_offset = r.pos.div_ceil(alignment) * alignment;
    let data_bytes = check_tensor_layout(&r, &tensors, alignment)?;
    Ok(Header {
        path: path.to_path_buf(),
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
        data_bytes,
        file_size: len,
    })
}

/// Checks that tensors are aligned, do not overlap, and are packed the way every GGUF writer
/// packs them (each at the previous end, padded to the alignment). Returns the data size.
/// A tensor placed past that packing is a corrupt or hostile offset, not a short download:
/// a short download has a correct header and simply ends early.
fn check_tensor_layout<R: BufRead + Seek>(
    r: &Cursor<'_, R>,
    tensors: &[TensorInfo],
    alignment: u64,
) -> Result<u64, GgufError> {
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    let mut packed_end = 0u64;
    let mut end = 0u64;
    for t in order {
        if t.offset % alignment != 0 {
            return Err(r.err(format!(
                "tensor '{}' data offset {} is not a multiple of the alignment {}",
                t.name, t.offset, alignment
            )));
        }
        if t.offset < end {
            return Err(r.err(format!(
                "tensor '{}' at data offset {} overlaps the previous tensor (which ends at {})",
                t.name, t.offset, end
            )));
        }
        if t.offset > packed_end {
            return Err(r.err(format!(
                "tensor '{}' data offset {} lies past the end of the tensor data ({} bytes)",
                t.name, t.offset, packed_end
            )));
        }
        let size = t.n_bytes().get();
        end = t.offset.checked_add(size).ok_or_else(|| {
            r.err(format!(
                "tensor '{}' offset {} + size overflows",
                t.name, t.offset
            ))
        })?;
        // Padding the end to the alignment can pass u64::MAX too (found by fuzzing).
        packed_end = end
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or_else(|| {
                r.err(format!(
                    "tensor '{}' ends at {end}, beyond any file size",
                    t.name
                ))
            })?;
    }
    Ok(end)
}
