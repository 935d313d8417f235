//! The GPU spec table (`profiles/gpus.yaml`): its rows against figures from other sources
//! (`tests/data/gpu_facts.tsv`), its coverage, and how names people write find its rows.

use layerfit::hardware::gpu_match::{find, MatchError};
use layerfit::hardware::gpu_table::{lookup, table, GpuSpec};
use layerfit::hardware::Vendor;

fn field(g: &GpuSpec, f: &str) -> Option<String> {
    let num = |v: Option<f64>| v.map(|x| x.to_string());
    match f {
        "vram_gib" => num(g.vram_gib),
        "bandwidth_gbps" => num(g.bandwidth_gbps),
        "fp16_tflops" => num(g.fp16_tflops),
        "compute_capability" => g.compute_capability.clone(),
        "architecture" => g.architecture.clone(),
        other => panic!("gpu_facts.tsv: unknown field {other}"),
    }
}

#[test]
fn rows_agree_with_the_facts_from_other_sources() {
    let text = include_str!("data/gpu_facts.tsv");
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "gpu_facts.tsv: {line}");
        let (name, f, want, source) = (cols[0], cols[1], cols[2], cols[3]);
        assert!(!source.trim().is_empty(), "{name}: a fact needs its source");
        let row = table().into_iter().find(|g| g.name == name);
        let row = row.unwrap_or_else(|| panic!("{name}: no such row"));
        let got = field(&row, f).unwrap_or_else(|| panic!("{name}.{f}: missing ({source})"));
        match want.parse::<f64>() {
            Ok(w) if f != "compute_capability" => {
                let g: f64 = got.parse().unwrap();
                assert!(
                    (g - w).abs() <= w * 0.005,
                    "{name}.{f} = {g}, {source} says {w}"
                );
            }
            _ => assert_eq!(got, want, "{name}.{f} ({source})"),
        }
        checked += 1;
    }
    assert!(checked >= 40, "{checked} facts");
}

#[test]
fn every_row_has_a_source_and_the_fields_its_kind_needs() {
    let t = table();
    assert!(t.len() >= 150, "{} rows", t.len());
    let count = |v: Vendor| t.iter().filter(|g| g.vendor == v).count();
    assert!(count(Vendor::Nvidia) >= 100, "{}", count(Vendor::Nvidia));
    assert!(count(Vendor::Amd) >= 40 && count(Vendor::Intel) >= 10);
    assert!(count(Vendor::Apple) >= 19);
    let mut names = std::collections::HashSet::new();
    for g in &t {
        assert!(!g.source.trim().is_empty(), "{}: no source", g.name);
        assert!(
            names.insert(layerfit::hardware::gpu_match::normalize(&g.name)),
            "{}: twice",
            g.name
        );
        if g.unified_memory {
            // Its memory is the machine's RAM.
            assert!(g.vram_gib.is_none(), "{}", g.name);
        } else {
            assert!(g.vram_gib.is_some_and(|v| v > 0.0), "{}: memory", g.name);
            assert!(
                g.bandwidth_gbps.is_some_and(|b| b > 0.0),
                "{}: bandwidth",
                g.name
            );
        }
        if g.vendor == Vendor::Nvidia {
            assert!(
                g.compute_capability.is_some(),
                "{}: compute capability",
                g.name
            );
        }
        for x in [g.bandwidth_gbps, g.fp16_tflops].into_iter().flatten() {
            assert!(x.is_finite() && x > 0.0, "{}: {x}", g.name);
        }
    }
}

#[test]
fn the_gpus_people_own_are_all_there() {
    for name in [
        "GTX 1060 6GB",
        "GTX 1080 Ti",
        "GTX 1660 SUPER",
        "RTX 2080 Ti",
        "RTX 3060",
        "RTX 4060",
        "RTX 4060 Laptop",
        "RTX 4070",
        "RTX 4090",
        "RTX 5060 Ti 16GB",
        "RTX 5090",
        "RTX 5090 Laptop",
        "RTX A4000",
        "RTX 6000 Ada",
        "RTX PRO 6000 Blackwell",
        "T4",
        "A10",
        "L4",
        "L40S",
        "A100 80GB",
        "H100 80GB HBM3",
        "H200",
        "B200",
        "GB10",
        "RX 6800 XT",
        "RX 7900 XTX",
        "RX 9070 XT",
        "Radeon PRO W7900",
        "Instinct MI250X",
        "Instinct MI300X",
        "Radeon 780M",
        "Radeon 890M",
        "Radeon 8060S",
        "Arc A770",
        "Arc B580",
        "Apple M1",
        "Apple M2 Ultra",
        "Apple M3 Max (40-core GPU)",
        "Apple M4 Pro",
        "Apple M5",
    ] {
        assert_eq!(lookup(name).map(|g| g.name).as_deref(), Some(name));
    }
}

#[test]
fn names_match_loosely() {
    for (written, row) in [
        ("NVIDIA GeForce RTX 4060 Laptop GPU", "RTX 4060 Laptop"),
        ("rtx 4060 mobile", "RTX 4060 Laptop"),
        ("geforce rtx4070super", "RTX 4070 SUPER"),
        ("RTX 4070 Super", "RTX 4070 SUPER"),
        ("RTX 3060 8GB", "RTX 3060 8GB"),
        ("RTX 3060 12 GB", "RTX 3060"),
        ("rtx 3080 laptop 16gb", "RTX 3080 16GB Laptop"),
        ("AMD Radeon RX 7900 XTX", "RX 7900 XTX"),
        ("Intel(R) Arc(TM) A770 Graphics", "Arc A770"),
        ("AMD Instinct MI300X", "Instinct MI300X"),
        ("Tesla T4", "T4"),
        ("A10G", "A10G"),
        ("M2 Pro", "Apple M2 Pro"),
        ("Apple M4 Max 36GB", "Apple M4 Max (32-core GPU)"),
        ("Apple M4 Max 128GB", "Apple M4 Max (40-core GPU)"),
    ] {
        assert_eq!(
            find(written, None).map(|m| m.spec.name),
            Ok(row.to_string()),
            "{written}"
        );
    }
    // A unified part sold in several variants is picked by the machine's RAM.
    assert_eq!(
        find("Apple M3 Max", Some(96.0)).unwrap().spec.name,
        "Apple M3 Max (30-core GPU)"
    );
    assert!(matches!(
        find("Apple M3 Max", None),
        Err(MatchError::Ambiguous { .. })
    ));
    // A memory size no variant has is not silently another card.
    assert!(matches!(
        find("RTX 4090 48GB", None),
        Err(MatchError::Unknown { .. })
    ));
}

#[test]
fn a_miss_names_the_nearest_rows() {
    match find("RTX 4065", None) {
        Err(MatchError::Unknown { nearest, .. }) => {
            assert!(nearest.contains(&"RTX 4060".to_string()), "{nearest:?}")
        }
        other => panic!("{other:?}"),
    }
    match find("RTX 4090 48GB", None) {
        Err(MatchError::Unknown { nearest, .. }) => assert_eq!(nearest, ["RTX 4090"]),
        other => panic!("{other:?}"),
    }
    let e = find("Radeon 8600S", None).unwrap_err().to_string();
    assert!(e.contains("Radeon 8060S") && e.contains("NAME:VRAM"), "{e}");
}
