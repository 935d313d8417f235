//! Several machines, pooled over llama.cpp's RPC back-end: server addresses, a bounded
//! client that asks each server what it has, and the remote devices as planning input
//! (docs/rpc.md).

pub mod client;
pub mod endpoint;
pub mod hosts;
