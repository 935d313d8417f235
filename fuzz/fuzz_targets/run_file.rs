//! A run file (`layerfit run --plan FILE`) from arbitrary text: parsed and validated; one
//! that parses serializes back and parses to the same settings.
#![no_main]
use layerfit::emit::RunFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = RunFile::parse(text) {
        let again = RunFile::parse(&f.to_yaml()).expect("a parsed run file round-trips");
        assert_eq!(again.settings, f.settings);
    }
});
