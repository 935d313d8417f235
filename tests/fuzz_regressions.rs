//! Every fuzz finding, and every committed seed, replayed through the exact entry point the
//! fuzzer ran (`layerfit::fuzz_entry`): `fuzz/regressions/TARGET/*` holds the inputs that once
//! crashed, hung or exhausted memory (fixed since), `fuzz/seeds/TARGET/*` the starting corpus.

use std::path::Path;

#[test]
fn fuzz_findings_and_seeds_run_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (name, entry) in layerfit::fuzz_entry::TARGETS {
        for dir in ["regressions", "seeds"] {
            let Ok(files) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for f in files.flatten() {
                let data = std::fs::read(f.path()).unwrap();
                entry(&data);
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 5, "only {replayed} inputs replayed");
}
