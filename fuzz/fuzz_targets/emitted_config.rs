//! The emitted configurations read back: llama.cpp arguments (split at spaces) and an Ollama
//! Modelfile with its environment (`NAME=VALUE` lines after a `---` line). Settings that
//! parse must emit again and parse back to the same settings.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| layerfit::fuzz_entry::emitted_config(data));
