//! Model names, Hub listings and Ollama manifests from arbitrary bytes (what a hostile
//! server or a damaged store hands layerfit): parsed without panicking; a parsed name
//! prints back to the same name.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| layerfit::fuzz_entry::remote_answers(data));
