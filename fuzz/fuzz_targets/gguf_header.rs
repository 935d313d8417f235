//! A whole GGUF header from arbitrary bytes: the reader must return a header or an error,
//! never panic, hang or allocate what the bytes merely claim. A header that parses goes on
//! through the model shape, the memory model and `inspect`, as `layerfit inspect` does.
#![no_main]
use layerfit::gguf::{read_header_from, ModelFile};
use libfuzzer_sys::fuzz_target;
use std::io::{BufReader, Cursor};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.gguf");
    let r = BufReader::new(Cursor::new(data));
    if let Ok(h) = read_header_from(path, r, data.len() as u64) {
        let file = ModelFile {
            path: path.to_path_buf(),
            shards: vec![h],
        };
        let cfg = layerfit::memory::CacheConfig {
            n_ctx: 4096,
            ..layerfit::memory::CacheConfig::default()
        };
        let _ = layerfit::inspect::inspect(&file, &cfg);
    }
});
