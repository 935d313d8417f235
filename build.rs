//! Compiles the one C++ function layerfit needs from llama.cpp that has no C API
//! (`llama_get_memory_breakdown` returns a `std::map`, so a shim copies it into plain
//! structs), and embeds every `model-catalog/*.yaml` and `profiles/*.yaml` file so the
//! binary works from any directory.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/engine/breakdown.cpp");
    println!("cargo:rerun-if-changed=src/engine/chat_template.cpp");
    println!("cargo:rerun-if-changed=src/engine/projector.cpp");
    println!("cargo:rerun-if-changed=src/engine/sampler_guard.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/engine/breakdown.cpp")
        .compile("layerfit_breakdown");
    let llama = vendored_llama_cpp();
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(llama.join("include"))
        .include(llama.join("ggml/include"))
        .include(llama.join("common"))
        .include(llama.join("vendor"))
        // llama.cpp's jinja headers define static helpers this file does not call.
        .flag_if_supported("-Wno-unused-function")
        .file("src/engine/chat_template.cpp")
        .file("src/engine/sampler_guard.cpp")
        .compile("layerfit_chat_template");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(llama.join("include"))
        .include(llama.join("ggml/include"))
        .include(llama.join("tools/mtmd"))
        .file("src/engine/projector.cpp")
        .compile("layerfit_projector");
    let out = std::env::var("OUT_DIR").unwrap();
    version_facts();
    embed("model-catalog", &Path::new(&out).join("catalog_files.rs"));
    embed("profiles", &Path::new(&out).join("profile_files.rs"));
    verified_architectures(&Path::new(&out).join("verified_archs.rs"));
}

/// The llama.cpp sources of the pinned `llama-cpp-sys-2` (Cargo.toml), whose headers the
/// chat-template shim is built against: the crate installs none, so they are read where
/// cargo unpacked it (or `LAYERFIT_LLAMA_CPP`).
fn vendored_llama_cpp() -> std::path::PathBuf {
    println!("cargo:rerun-if-env-changed=LAYERFIT_LLAMA_CPP");
    if let Ok(p) = std::env::var("LAYERFIT_LLAMA_CPP") {
        return p.into();
    }
    let manifest = std::fs::read_to_string(
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.toml"),
    )
    .unwrap();
    let version = manifest
        .lines()
        .find(|l| l.starts_with("llama-cpp-sys-2"))
        .and_then(|l| l.split("\"=").nth(1))
        .and_then(|v| v.split('"').next())
        .expect("Cargo.toml pins llama-cpp-sys-2 with =VERSION");
    let home = std::env::var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(&std::env::var("HOME").unwrap()).join(".cargo"));
    let registry = home.join("registry/src");
    for index in std::fs::read_dir(&registry).into_iter().flatten().flatten() {
        let dir = index
            .path()
            .join(format!("llama-cpp-sys-2-{version}/llama.cpp"));
        if dir.join("common/chat.h").is_file() {
            return dir;
        }
    }
    panic!(
        "llama-cpp-sys-2 {version}'s sources are not under {}: set LAYERFIT_LLAMA_CPP to its llama.cpp directory",
        registry.display()
    );
}

/// `&[names]` of the architectures docs/architectures.md (written by the architecture sweep,
/// tests/arch-sweep.sh) marks `exact`: layerfit's `rules_verified` comes from it.
fn verified_architectures(out: &Path) {
    let doc =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("docs/architectures.md");
    println!("cargo:rerun-if-changed={}", doc.display());
    let text = std::fs::read_to_string(&doc).unwrap_or_default();
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[cells.len() - 3] == "exact")
                .then(|| cells[1].trim_matches('`').to_string())
        })
        .collect();
    std::fs::write(out, format!("&{names:?}\n")).unwrap();
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

/// For `--version`: the engine back-ends compiled in (cargo features) and which llama.cpp is
/// bundled: the llama-cpp-sys-2 release (from Cargo.lock) and the ggml version its CMake build
/// installed (`DEP_LLAMA_GGML_CMAKE_DIR`, exported by llama-cpp-sys-2's build script).
fn version_facts() {
    let backends: String = ["cuda", "vulkan", "metal", "rocm"]
        .iter()
        .filter(|f| std::env::var_os(format!("CARGO_FEATURE_{}", f.to_uppercase())).is_some())
        .map(|f| format!(", {f}"))
        .collect();
    println!("cargo:rustc-env=LAYERFIT_BACKENDS={backends}");
    let lock = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let sys = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| {
            let i = text.find("name = \"llama-cpp-sys-2\"")?;
            let rest = &text[i..];
            let v = rest.lines().nth(1)?.strip_prefix("version = ")?;
            Some(v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_GGML_CMAKE_DIR");
    let ggml = std::env::var("DEP_LLAMA_GGML_CMAKE_DIR")
        .ok()
        .and_then(|d| {
            std::fs::read_to_string(Path::new(&d).join("ggml/ggml-config-version.cmake")).ok()
        })
        .and_then(|text| {
            let i = text.find("set(PACKAGE_VERSION \"")? + 4;
            let v = &text[i + 17..];
            Some(v[..v.find('"')?].to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LAYERFIT_LLAMA_CPP=llama-cpp-sys-2 {sys} (ggml {ggml})");
}
