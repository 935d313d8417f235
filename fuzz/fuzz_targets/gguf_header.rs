//! A whole GGUF header from arbitrary bytes: the reader must return a header or an error,
//! never panic, hang or allocate what the bytes merely claim. A header that parses goes on
//! through the model shape, the memory model and `inspect`, as `layerfit inspect` does.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| layerfit::fuzz_entry::gguf_header(data));
