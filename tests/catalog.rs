//! The model catalog against reality: entries agree tensor for tensor with the real files
//! here, catalog plans equal header plans, and every entry's layout loads in the bundled
//! llama.cpp with exactly the bytes layerfit computes.

mod common;

use layerfit::catalog::{self, quant::Ftype, verify::verify};
use layerfit::engine::projector::measure as measure_projector;
use layerfit::ggml_type::GgmlType;
use layerfit::gguf::open_model;
use layerfit::gguf::writer::Data;
use layerfit::hardware::Snapshot;
use layerfit::memory::{weights, CacheConfig};
use layerfit::model::projector::projector_shape;
use layerfit::model::Shape;
use layerfit::model_source::{resolve, ModelSource};
use layerfit::plan::{plan, Requirements};

fn plan_of(src: &ModelSource, snap: &Snapshot) -> layerfit::plan::Plan {
    let inp = src.plan_input(&snap.cpu.simd).unwrap();
    plan(&inp, snap, &Requirements::default())
}

#[test]
fn real_files_agree_with_their_catalog_entries_tensor_for_tensor() {
    let entries = catalog::entries().unwrap();
    for (path, entry, variant) in [
        (common::smollm2(), "smollm2:135m", "q4_1"),
        (common::gemma3(), "gemma3:270m", "q4_k_m"),
    ] {
        let f = open_model(&path).unwrap();
        let e = entries.iter().find(|e| e.name == entry).unwrap();
        let tensors: Vec<_> = f.tensors().cloned().collect();
        let r = verify(e, f.metadata(), &tensors, f.tensor_vocab()).unwrap();
        assert_eq!(r.variant.as_deref(), Some(variant));
        assert_eq!(r.tensors_compared, tensors.len());
        assert!(r.agrees(), "{entry}: {:?}", r.differences);
        // And the synthesized weights are byte-identical to the file's.
        let ft = Ftype::from_name(variant).unwrap();
        let n = e.block_count as usize;
        assert_eq!(
            weights(&e.tensors(ft).unwrap(), n),
            weights(&tensors, n),
            "{entry}"
        );
    }
}

#[test]
fn verify_command_exit_codes_and_differences() {
    let bin = env!("CARGO_BIN_EXE_layerfit");
    let gemma = common::gemma3();
    let (code, out, _) = common::layerfit(
        bin,
        &["catalog", "verify", gemma.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["entry"], "gemma3:270m");
    assert_eq!(v["differences"].as_array().unwrap().len(), 0);
    // Against the wrong entry: exit 3 and the differing fields, named.
    let smol = common::smollm2();
    let (code, out, _) = common::layerfit(
        bin,
        &[
            "catalog",
            "verify",
            smol.to_str().unwrap(),
            "--entry",
            "smollm2:360m",
            "--json",
        ],
    );
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let what: Vec<&str> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["what"].as_str().unwrap())
        .collect();
    assert!(what.contains(&"block_count"), "{what:?}");
    assert!(what.contains(&"embedding_length"), "{what:?}");
}

#[test]
fn catalog_plans_equal_header_plans_for_the_real_models() {
    let empty = common::tempdir("no-models");
    let machines = [
        common::machine("ram: 4G\n"),
        common::machine("ram: 16G\ngpus: [{name: small, vram: 1G}]\n"),
        common::machine("ram: 2G\ngpus: [{name: tiny, vram: 300M}]\n"),
        common::machine("ram: 600M\n"),
    ];
    for (path, name) in [
        (common::smollm2(), "smollm2:135m-q4_1"),
        (common::gemma3(), "gemma3:270m-q4_k_m"),
    ] {
        let from_file = ModelSource::from_file(&path).unwrap();
        let from_catalog = resolve(name, &empty).unwrap().remove(0);
        assert!(matches!(
            from_catalog.origin,
            layerfit::model_source::Origin::Catalog { .. }
        ));
        let s1 = Shape::from_metadata(&from_file.metadata, from_file.tensor_vocab).unwrap();
        let s2 = Shape::from_metadata(&from_catalog.metadata, from_catalog.tensor_vocab).unwrap();
        assert_eq!(s1.layers, s2.layers, "{name}");
        for m in &machines {
            assert_eq!(plan_of(&from_file, m), plan_of(&from_catalog, m), "{name}");
        }
        // With the file in the models folder, the catalog name reads the real header.
        let dir = path.parent().unwrap();
        let found = resolve(name, dir).unwrap().remove(0);
        assert!(matches!(
            found.origin,
            layerfit::model_source::Origin::File { .. }
        ));
    }
}

/// Every catalog entry, at q4_k_m, written as a header + sparse file and loaded by llama.cpp:
/// the loader accepts every tensor name and shape, and weights, KV cache and compute match.
#[test]
fn every_catalog_layout_loads_in_llama_cpp_with_the_computed_bytes() {
    let dir = common::tempdir("catalog-layouts");
    for e in catalog::entries().unwrap() {
        let w = e.header(Ftype::Q4KM).unwrap();
        let path = dir.join(format!("{}.gguf", e.name.replace(':', "-")));
        w.write(&path, Data::Sparse).unwrap();
        let cfg = CacheConfig {
            n_ctx: 4096,
            type_k: GgmlType::F16,
            type_v: GgmlType::F16,
            ..CacheConfig::default()
        };
        common::assert_matches_engine(&path, &cfg);
        std::fs::remove_file(&path).unwrap();
    }
}

/// Every catalog projector (Gemma 3's), written as a header + sparse file: llama.cpp's
/// multimodal loader accepts every tensor name and shape, layerfit reads it as a projector of
/// the model's width, and the weights are those the catalog lays out (as `--mmproj` counts
/// them); Gemma 3 4B's agree with the published f16 file's size.
#[test]
fn every_catalog_projector_loads_in_llama_cpp_with_the_computed_weights() {
    let dir = common::tempdir("catalog-projectors");
    let mut checked = Vec::new();
    for e in catalog::entries().unwrap() {
        let Some((meta, tensors)) = e.projector_parts().unwrap() else {
            continue;
        };
        let planned = projector_shape(&meta, &tensors).unwrap();
        assert_eq!(
            planned.projection_dim,
            Some(e.embedding_length),
            "{}",
            e.name
        );
        assert_eq!(planned.image_tokens, Some(256), "{}", e.name);
        let path = dir.join(format!("mmproj-{}.gguf", e.name.replace(':', "-")));
        e.projector_header()
            .unwrap()
            .unwrap()
            .write(&path, Data::Sparse)
            .unwrap();
        let f = open_model(&path).unwrap();
        let file_tensors: Vec<_> = f.tensors().cloned().collect();
        let read = projector_shape(f.metadata(), &file_tensors).unwrap();
        assert_eq!(read, planned, "{}", e.name);
        let m =
            measure_projector(&path, false, 1).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert!(m.total() > planned.weight_bytes, "{}: {m:?}", e.name);
        eprintln!(
            "{}: projector weights {} ({} bytes), llama.cpp weights+compute {}",
            e.name,
            planned.weight_bytes,
            planned.weight_bytes.get(),
            m.total()
        );
        checked.push((e.name.clone(), planned.weight_bytes.get()));
        std::fs::remove_file(&path).unwrap();
    }
    let names: Vec<&str> = checked.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["gemma3:12b", "gemma3:27b", "gemma3:4b"]);
    // bartowski's mmproj-gemma-3-4b-it-f16.gguf: 851MB (the card's decimal megabytes).
    let w4 = checked[2].1 as f64 / 1e6;
    assert!((w4 - 851.0).abs() < 1.0, "gemma3:4b projector {w4:.1} MB");
}

/// `catalog list --json` carries the new layouts' facts: the hybrid's recurrent sizes and
/// Gemma 3's projector.
#[test]
fn catalog_list_json_carries_hybrid_and_projector_facts() {
    let bin = env!("CARGO_BIN_EXE_layerfit");
    let (code, out, _) = common::layerfit(bin, &["catalog", "list", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = v["entries"].as_array().unwrap();
    let by_name = |n: &str| entries.iter().find(|e| e["name"] == n).unwrap();
    let g = by_name("gemma3:4b");
    assert_eq!(g["projector"]["projector_type"], "gemma3");
    assert_eq!(g["projector"]["image_size"], 896);
    assert!(by_name("gemma3:1b")["projector"].is_null());
    let q = by_name("qwen3.5:27b");
    assert_eq!(q["full_attention_interval"], 4);
    assert_eq!(q["ssm"]["time_step_rank"], 48);
}
