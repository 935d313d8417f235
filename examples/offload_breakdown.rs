//! Prints what the bundled llama.cpp assigns to each buffer (model / KV / compute) at several
//! `-ngl` values next to layerfit's plan for the probed GPU: the calibration aid behind the
//! offload rules in docs/memory-model.md. Needs a GPU build; Mesa's software device counts
//! (the probe runs with `--software-gpu`'s opt-in).
//!
//!   cargo run --release --features vulkan --example offload_breakdown -- MODEL.gguf 32768 f16 0,1,10,31
//!   ... -- cat:qwen2.5-coder:7b 32768 q8_0 0,29     (a catalog entry's Q4_K_M layout, sparse)
use layerfit::bytes::Bytes;
use layerfit::engine::measure::{measure, MeasureRequest};
use layerfit::ggml_type::GgmlType;
use layerfit::hardware::probe::{probe, ProbeOptions};
use layerfit::model_source::ModelSource;
use layerfit::plan::{cache_config, plan_at, Requirements};

fn main() {
    let snap = probe(&ProbeOptions {
        software_gpu: true,
        bandwidth: false,
        ..ProbeOptions::default()
    });
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: offload_breakdown MODEL|cat:NAME N_CTX CACHE_TYPE NGL[,NGL...]");
        std::process::exit(2);
    }
    let path = match a[1].strip_prefix("cat:") {
        Some(name) => {
            let e = layerfit::catalog::entries()
                .unwrap()
                .into_iter()
                .find(|e| e.name == name)
                .expect("catalog entry");
            let w = e.header(layerfit::catalog::quant::Ftype::Q4KM).unwrap();
            let p = std::env::temp_dir().join(format!("offload-{}.gguf", name.replace(':', "_")));
            w.write(&p, layerfit::gguf::writer::Data::Sparse).unwrap();
            p
        }
        None => std::path::PathBuf::from(&a[1]),
    };
    let n_ctx: u32 = a[2].parse().expect("context");
    let t = GgmlType::from_name(&a[3]).expect("cache type");
    let inp = ModelSource::from_file(&path)
        .and_then(|s| s.plan_input(&snap.cpu.simd))
        .expect("model");
    let req = Requirements {
        min_context: n_ctx as u64,
        ..Requirements::default()
    };
    for ngl in a[4].split(',').map(|x| x.parse::<i32>().expect("ngl")) {
        let mreq = MeasureRequest::for_cache(&cache_config(&req, t), ngl);
        let m = measure(&path, &mreq).unwrap_or_else(|e| panic!("{e}"));
        let measured = m
            .buffers
            .iter()
            .map(|b| (b.name.as_str(), b.model, b.context, b.compute));
        println!(
            "{}",
            row(
                &format!("ngl={ngl:3} output={:?} MiB", m.output_mib),
                measured
            )
        );
        let p = plan_at(&inp, &snap, &req, t, ngl as u32, 0);
        let planned = p.devices.iter().map(|d| {
            (
                d.device.as_str(),
                d.weights_bytes,
                d.kv_bytes,
                d.compute_bytes,
            )
        });
        println!("{}", row("        layerfit plan", planned));
    }
}

/// One line: a label, then model / KV / compute MiB per device or buffer.
fn row<'a>(label: &str, parts: impl Iterator<Item = (&'a str, Bytes, Bytes, Bytes)>) -> String {
    let mut line = format!("{label:<30} |");
    for (name, model, kv, compute) in parts {
        line += &format!(
            " {name}: model {:.2} kv {:.2} compute {:.2} |",
            model.mib(),
            kv.mib(),
            compute.mib()
        );
    }
    line
}
