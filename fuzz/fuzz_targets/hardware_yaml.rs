//! A machine description (`--hardware FILE`, a profile's `target:`) from arbitrary text:
//! parsed, turned into a snapshot, and amended like the flags do.
#![no_main]
use layerfit::hardware::whatif::{amend, describe, parse_description, parse_size, Amendments};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_size(text);
    if let Ok(d) = parse_description(text) {
        let cpu = layerfit::hardware::Cpu {
            model: "fuzz".into(),
            physical_cores: 2,
            logical_cores: 2,
            simd: Vec::new(),
            memory_bandwidth_gbps: None,
            frequency_ghz: None,
        };
        if let Ok(mut snap) = describe(&d, "fuzz", cpu) {
            let a = Amendments {
                ram: Some(16 << 30),
                vram: vec![8 << 30],
                gpus: Vec::new(),
                no_gpu: false,
            };
            let _ = amend(&mut snap, &a);
        }
    }
});
