//! Time of a full candidate search (every KV type x every -ngl) for one model.
//! Target: <= 10 ms. Run: `cargo bench --bench plan_search` (after tests/fetch-models.sh).

use layerfit::ggml_type::GgmlType;
use layerfit::gguf::open_model;
use layerfit::hardware::whatif::{describe, Description};
use layerfit::hardware::Cpu;
use layerfit::memory::weights;
use layerfit::model::Shape;
use layerfit::plan::{plan, PlanInput, Requirements};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let dir = std::env::var_os("LAYERFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/layerfit/models")
        });
    let path = dir.join("gemma-3-270m-q4_k_m.gguf");
    if !path.exists() {
        eprintln!("skipping: run `bash tests/fetch-models.sh` first");
        return;
    }
    let f = open_model(&path).unwrap();
    let shape = Shape::from_metadata(f.metadata(), None).unwrap();
    let w = weights(f.tensors(), shape.block_count as usize);
    let inp = PlanInput::new(shape, w, f.tensors(), &["avx2".into()]);
    let cpu = Cpu {
        model: "bench".into(),
        physical_cores: 8,
        logical_cores: 8,
        simd: vec![],
        memory_bandwidth_gbps: Some(40.0),
        frequency_ghz: Some(3.0),
    };
    // A GPU too small for everything, so the search walks every -ngl of every cache type.
    let d: Description = serde_norway::from_str(
        "ram: 1G\ngpus:\n  - name: tiny\n    vram: 600M\n    bandwidth_gbps: 200\n",
    )
    .unwrap();
    let snap = describe(&d, "bench", cpu).unwrap();
    let req = Requirements {
        kv_types: vec![GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0],
        ..Requirements::default()
    };
    let mut v: Vec<f64> = (0..101)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(plan(&inp, &snap, &req));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = plan(&inp, &snap, &req);
    println!(
        "full candidate search (Gemma 3 270M, 3 cache types x 20 -ngl values): median {:.3} ms, max {:.3} ms; outcome {:?} (worst case: every candidate tried)",
        v[50], v[100], p.verdict
    );

    // Variant search from the catalog: every quantization of a 7B (resolving the name,
    // synthesizing each layout, planning each) on a GPU that holds none of them entirely.
    let empty = std::env::temp_dir().join("layerfit-bench-no-models");
    let d: Description = serde_norway::from_str(
        "ram: 8G\ngpus:\n  - name: small\n    vram: 3G\n    bandwidth_gbps: 300\n",
    )
    .unwrap();
    let snap = describe(&d, "bench", snap.cpu.clone()).unwrap();
    let search = || {
        let mut outcomes = Vec::new();
        for src in layerfit::model_source::resolve("qwen2.5-coder:7b", &empty).unwrap() {
            let inp = src.plan_input(&["avx2".into()]).unwrap();
            outcomes.push(plan(&inp, &snap, &req).verdict);
        }
        outcomes
    };
    let mut v: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(search());
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "variant search (qwen2.5-coder:7b from the catalog, {} variants x 3 cache types x 30 -ngl values): median {:.3} ms, max {:.3} ms; outcomes {:?}",
        search().len(),
        v[10],
        v[20],
        search()
    );
}
