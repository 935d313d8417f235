//! A run file (`layerfit run --plan FILE`) from arbitrary text: parsed and validated; one
//! that parses serializes back and parses to the same settings.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| layerfit::fuzz_entry::run_file(data));
