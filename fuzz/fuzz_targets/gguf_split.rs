//! A split set from arbitrary bytes: the first byte picks the shard count (1 to 4), the rest
//! is cut into that many headers at `\xff\xfe` markers. Every header is read from memory and
//! the set is checked as `open_model` checks shards on disk (`split.no`, `split.count`,
//! tensors in two shards).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| layerfit::fuzz_entry::gguf_split(data));
