//! The bundled inference engine (llama.cpp through `llama-cpp-2` / `llama-cpp-sys-2`).
//! Everything that calls into C lives under this module.

pub mod measure;
