//! layerfit: can this machine run this local LLM at the context I need, and how?
//!
//! Data flows one way: [`ggml_type`] (the tensor type table) is the bottom layer, [`gguf`] reads a header, [`model::Shape`] describes the model per layer,
//! [`memory`] turns shape and settings into exact byte figures. [`engine`] is the bundled
//! llama.cpp, used to run models and to check the figures against what it really allocates.
//! docs/architecture.md is the map: the layers, the direction of imports, where I/O may
//! happen, and how `--model` and `--rpc` reach the engine.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bytes;
pub mod catalog;
pub mod cli;
pub mod emit;
pub mod engine;
pub mod env_vars;
pub mod fetch;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod ggml_type;
pub mod gguf;
pub mod hardware;
pub mod inspect;
pub mod memory;
pub mod model;
pub mod model_source;
pub mod nearest;
pub mod plan;
pub mod profile;
pub mod rpc;
pub mod serve;
pub mod speed;
