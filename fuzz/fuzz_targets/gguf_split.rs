//! A split set from arbitrary bytes: the first byte picks the shard count (1 to 4), the rest
//! is cut into that many headers at `\xff\xfe` markers. Every header is read from memory and
//! the set is checked as `open_model` checks shards on disk (`split.no`, `split.count`,
//! tensors in two shards).
#![no_main]
use layerfit::gguf::{assemble, read_header_from};
use libfuzzer_sys::fuzz_target;
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(first % 4) + 1;
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < rest.len() && parts.len() + 1 < count {
        if rest[i] == 0xff && rest[i + 1] == 0xfe {
            parts.push(&rest[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    parts.push(&rest[start..]);
    let mut headers = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let p = PathBuf::from(format!("m-{:05}-of-{:05}.gguf", n + 1, parts.len()));
        match read_header_from(&p, BufReader::new(Cursor::new(*part)), part.len() as u64) {
            Ok(h) => headers.push(h),
            Err(_) => return,
        }
    }
    if let Ok(file) = assemble(Path::new("m-00001-of-00002.gguf"), headers) {
        let _ = file.missing_bytes();
        let _ = file.expected_size();
        let _ = file.tensor_vocab();
    }
});
