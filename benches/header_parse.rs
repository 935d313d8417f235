//! Header-parse time for the real models (target: Gemma 3 270M's 6.5 MB header in <= 15 ms
//! median on the 2-core reference machine) and the cost of a full memory estimate.
//! Run: `cargo bench --bench header_parse` (after `bash tests/fetch-models.sh`).

use layerfit::gguf::open_model;
use layerfit::inspect::inspect;
use layerfit::memory::CacheConfig;
use std::path::PathBuf;
use std::time::Instant;

fn median_ms(mut f: impl FnMut(), runs: usize) -> (f64, f64, f64) {
    f(); // warm the page cache
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let dir = std::env::var_os("LAYERFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/layerfit/models")
        });
    for name in [
        "gemma-3-270m-q4_k_m.gguf",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    ] {
        let path = dir.join(name);
        if !path.exists() {
            eprintln!("skipping {name}: run `bash tests/fetch-models.sh` first");
            continue;
        }
        let file = open_model(&path).unwrap();
        let header = file.shards[0].data_offset;
        let (min, med, max) = median_ms(
            || {
                std::hint::black_box(open_model(&path).unwrap());
            },
            51,
        );
        println!("header parse  {name}: header {:.2} MB, median {med:.2} ms (min {min:.2}, max {max:.2}) over 51 runs", header as f64 / 1e6);
        let cfg = CacheConfig::default();
        let (min, med, max) = median_ms(
            || {
                std::hint::black_box(inspect(&file, &cfg).unwrap());
            },
            201,
        );
        println!(
            "full estimate {name}: median {:.1} us (min {:.1}, max {:.1}) over 201 runs",
            med * 1e3,
            min * 1e3,
            max * 1e3
        );
    }
}
