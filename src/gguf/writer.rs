//! Writing GGUF headers. layerfit uses this to build synthetic models of any architecture
//! (tests, benchmarks) and "header + sparse hole" files that llama.cpp can measure without the
//! real weights: its dry run never reads tensor data, it only checks the file is long enough.

use super::ValueType;
use crate::ggml_type::GgmlType;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// A metadata value with its exact GGUF type.
#[derive(Clone, Debug)]
pub enum WriteValue {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Bool(bool),
    Str(String),
    ArrU32(Vec<u32>),
    ArrI32(Vec<i32>),
    ArrF32(Vec<f32>),
    ArrBool(Vec<bool>),
    ArrStr(Vec<String>),
}

/// Builds a GGUF file: metadata in insertion order, tensors packed at the alignment.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    pub version: u32,
    pub alignment: u64,
    metadata: Vec<(String, WriteValue)>,
    tensors: Vec<(String, Vec<u64>, GgmlType)>,
}

/// What to put after the header.
#[derive(Clone, Copy, Debug)]
pub enum Data {
    /// Extend the file to its full size without writing: a sparse hole (cheap on disk).
    Sparse,
    /// Stop `n` bytes short of the full size, as an interrupted download would.
    Short(u64),
    /// Only the header.
    None,
}

impl Default for GgufWriter {
    fn default() -> Self {
        GgufWriter {
            version: 3,
            alignment: 32,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// What a header-only model needs, besides its hyperparameters and tensors, to load in
    /// llama.cpp: norm epsilons and a tokenizer of `n_vocab` placeholder tokens (common
    /// special tokens first, since some architectures look them up by text).
    pub fn loadable_defaults(&mut self, arch: &str, n_vocab: usize) -> &mut Self {
        const SPECIAL: [&str; 13] = [
            "<unk>",
            "<s>",
            "</s>",
            "<mask>",
            "<|endoftext|>",
            "<|end|>",
            "<|user|>",
            "<|assistant|>",
            "<|system|>",
            "<|im_start|>",
            "<|im_end|>",
            "<start_of_turn>",
            "<end_of_turn>",
        ];
        let tokens = (0..n_vocab)
            .map(|i| {
                SPECIAL
                    .get(i)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("<t{i}>"))
            })
            .collect();
        self.kv(
            &format!("{arch}.attention.layer_norm_rms_epsilon"),
            WriteValue::F32(1e-6),
        )
        .kv(
            &format!("{arch}.attention.layer_norm_epsilon"),
            WriteValue::F32(1e-6),
        )
        .kv("tokenizer.ggml.model", WriteValue::Str("llama".into()))
        .kv("tokenizer.ggml.tokens", WriteValue::ArrStr(tokens))
        .kv(
            "tokenizer.ggml.scores",
            WriteValue::ArrF32(vec![0.0; n_vocab]),
        )
        .kv(
            "tokenizer.ggml.token_type",
            WriteValue::ArrI32(vec![1; n_vocab]),
        )
    }

    pub fn kv(&mut self, key: &str, value: WriteValue) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self.metadata.push((key.to_string(), value));
        self
    }

    /// The value written under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&WriteValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn remove_kv(&mut self, key: &str) -> &mut Self {
        self.metadata.retain(|(k, _)| k != key);
        self
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType) -> &mut Self {
        self.tensors.retain(|(n, _, _)| n != name);
        self.tensors.push((name.to_string(), dims.to_vec(), ty));
        self
    }

    pub fn remove_tensor(&mut self, name: &str) -> &mut Self {
        self.tensors.retain(|(n, _, _)| n != name);
        self
    }

    pub fn tensor_shape(&self, name: &str) -> Option<(Vec<u64>, GgmlType)> {
        self.tensors
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, d, t)| (d.clone(), *t))
    }

    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _, _)| n.as_str())
    }

    fn tensor_bytes(dims: &[u64], ty: GgmlType) -> u64 {
        let rows: u64 = dims.iter().skip(1).product();
        ty.row_size(dims[0]).map(|b| b.get()).unwrap_or(0) * rows
    }

    /// The header bytes (magic to the padding before tensor data) and the data size.
    pub fn header_bytes(&self) -> (Vec<u8>, u64) {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut out, k);
            put_value(&mut out, v);
        }
        let mut offset = 0u64;
        for (name, dims, ty) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += Self::tensor_bytes(dims, *ty).div_ceil(self.alignment) * self.alignment;
        }
        let data_bytes = match self.tensors.last() {
            Some((_, dims, ty)) => {
                offset - Self::tensor_bytes(dims, *ty).div_ceil(self.alignment) * self.alignment
                    + Self::tensor_bytes(dims, *ty)
            }
            None => 0,
        };
        while !(out.len() as u64).is_multiple_of(self.alignment) {
            out.push(0);
        }
        (out, data_bytes)
    }

    /// Writes the file; returns its full (complete) size.
    pub fn write(&self, path: &Path, data: Data) -> io::Result<u64> {
        let (header, data_bytes) = self.header_bytes();
        let full = header.len() as u64 + data_bytes;
        let mut f = File::create(path)?;
        f.write_all(&header)?;
        match data {
            Data::Sparse => f.set_len(full)?,
            Data::Short(n) => f.set_len(full.saturating_sub(n).max(header.len() as u64))?,
            Data::None => {}
        }
        Ok(full)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_type(out: &mut Vec<u8>, t: ValueType) {
    out.extend_from_slice(&t.id().to_le_bytes());
}

fn put_array_head(out: &mut Vec<u8>, elem: ValueType, len: usize) {
    put_type(out, ValueType::Array);
    put_type(out, elem);
    out.extend_from_slice(&(len as u64).to_le_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &WriteValue) {
    match v {
        WriteValue::U32(x) => {
            put_type(out, ValueType::U32);
            out.extend_from_slice(&x.to_le_bytes());
        }
        WriteValue::I32(x) => {
            put_type(out, ValueType::I32);
            out.extend_from_slice(&x.to_le_bytes());
        }
        WriteValue::U64(x) => {
            put_type(out, ValueType::U64);
            out.extend_from_slice(&x.to_le_bytes());
        }
        WriteValue::F32(x) => {
            put_type(out, ValueType::F32);
            out.extend_from_slice(&x.to_le_bytes());
        }
        WriteValue::Bool(x) => {
            put_type(out, ValueType::Bool);
            out.push(*x as u8);
        }
        WriteValue::Str(s) => {
            put_type(out, ValueType::String);
            put_str(out, s);
        }
        WriteValue::ArrU32(xs) => {
            put_array_head(out, ValueType::U32, xs.len());
            xs.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        WriteValue::ArrI32(xs) => {
            put_array_head(out, ValueType::I32, xs.len());
            xs.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        WriteValue::ArrF32(xs) => {
            put_array_head(out, ValueType::F32, xs.len());
            xs.iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
        }
        WriteValue::ArrBool(xs) => {
            put_array_head(out, ValueType::Bool, xs.len());
            xs.iter().for_each(|x| out.push(*x as u8));
        }
        WriteValue::ArrStr(xs) => {
            put_array_head(out, ValueType::String, xs.len());
            xs.iter().for_each(|x| put_str(out, x));
        }
    }
}
