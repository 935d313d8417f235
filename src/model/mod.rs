//! The model's shape: per-layer hyperparameters read from GGUF metadata and completed with
//! llama.cpp's per-architecture rules. Pure code over a metadata map: no I/O.

pub mod arch;
pub mod keys;
mod meta;
pub mod projector;
pub mod purpose;
mod shape;
pub mod vocab;

pub use arch::{ArchRules, MemoryKind, SwaKind};
pub use shape::{LayerShape, RecurrentState, Shape, ShapeError};
