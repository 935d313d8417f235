//! Compiles the one C++ function layerfit needs from llama.cpp that has no C API:
//! `llama_get_memory_breakdown` returns a `std::map`, so a shim copies it into plain structs.
fn main() {
    println!("cargo:rerun-if-changed=src/engine/breakdown.cpp");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file("src/engine/breakdown.cpp")
        .compile("layerfit_breakdown");
}
