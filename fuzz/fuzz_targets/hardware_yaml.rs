//! A machine description (`--hardware FILE`, a profile's `target:`) from arbitrary text:
//! parsed, turned into a snapshot, and amended like the flags do.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| layerfit::fuzz_entry::hardware_yaml(data));
