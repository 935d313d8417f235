//! The memory model: pure functions from a model's shape and settings to exact byte counts.
//! No I/O, no globals; every formula names the llama.cpp code it follows.

pub mod compute;
pub mod kv;
pub mod weights;

pub use compute::{compute_buffers, ComputeEstimate};
pub use kv::{kv_cache, CacheConfig, KvError, KvEstimate};
pub use weights::{model_weights, weights, Weights};
