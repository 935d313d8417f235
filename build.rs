//! Compiles the one C++ function layerfit needs from llama.cpp that has no C API
//! (`llama_get_memory_breakdown` returns a `std::map`, so a shim copies it into plain
//! structs), and embeds every `model-catalog/*.yaml` and `profiles/*.yaml` file so the
//! binary works from any directory.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/engine/breakdown.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/engine/breakdown.cpp")
        .compile("layerfit_breakdown");
    let out = std::env::var("OUT_DIR").unwrap();
    embed("model-catalog", &Path::new(&out).join("catalog_files.rs"));
    embed("profiles", &Path::new(&out).join("profile_files.rs"));
}

/// Writes `&[(file name, contents)]` for the YAML files of `dir`, sorted by name.
fn embed(dir: &str, out: &Path) {
    println!("cargo:rerun-if-changed={dir}");
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut s = String::from("&[\n");
    for f in files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        s.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    s.push_str("]\n");
    std::fs::write(out, s).unwrap();
}
