//! Remote devices as planning input. A connected server's devices (`--rpc`) and a described
//! host's (`rpc:` in a `--hardware` file) become `Gpu` entries at the front of the
//! snapshot's device list, where llama.cpp puts RPC devices ("to minimize network
//! transfers", src/llama.cpp), named as llama.cpp names them (`RPC0`, `RPC1`, ... in the
//! order the servers are given).

use super::client::ServerInfo;
use super::endpoint::Endpoint;
use crate::bytes::Bytes;
use crate::hardware::whatif::{opt_size_text, parse_size, size_text};
use crate::hardware::{Gpu, RemoteLink, Vendor};
use serde::Deserialize;

/// A host described without connecting (what-if: a cluster not built yet).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDescription {
    /// `HOST:PORT`, as `--rpc` would name it.
    pub endpoint: String,
    pub devices: Vec<RemoteDeviceDescription>,
    /// Round trip of a small request, in milliseconds (e.g. 0.2 on a LAN).
    #[serde(default)]
    pub round_trip_ms: Option<f64>,
    /// Network transfer rate in Gbit/s (e.g. 1, 10).
    #[serde(default)]
    pub network_gbps: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteDeviceDescription {
    /// What the device is (`CPU`, `RTX 3090`): for people; the memory is what counts.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(deserialize_with = "size_text")]
    pub memory: String,
    #[serde(default, deserialize_with = "opt_size_text")]
    pub memory_free: Option<String>,
    /// The device's memory bandwidth (GB/s), for the speed estimate.
    #[serde(default)]
    pub bandwidth_gbps: Option<f64>,
}

/// The devices of connected servers, in order.
pub fn connected(servers: &[ServerInfo]) -> Vec<Gpu> {
    let mut v = Vec::new();
    for s in servers {
        for d in &s.devices {
            let name = format!("RPC{}", v.len());
            let mut g = Gpu::new(
                name.clone(),
                Vendor::Other,
                Bytes(d.total_bytes),
                Bytes(d.free_bytes),
                "rpc",
            );
            g.engine_device = Some(name);
            // Read by the server's own running back-end: its context is already out of it.
            g.free_excludes_context = true;
            g.remote = Some(RemoteLink {
                endpoint: s.endpoint.to_string(),
                device_index: d.index,
                description: format!("{} device {}", s.endpoint, d.index),
                round_trip_ms: Some(s.round_trip_s * 1e3),
                network_gbps: s.bytes_per_s.map(|b| b * 8.0 / 1e9),
            });
            v.push(g);
        }
    }
    v
}

/// The devices of described hosts, in order; errors name the field.
pub fn described(hosts: &[HostDescription]) -> Result<Vec<Gpu>, String> {
    let mut v = Vec::new();
    let mut seen = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let e = Endpoint::parse(&h.endpoint).map_err(|x| format!("rpc[{i}].endpoint: {x}"))?;
        if seen.contains(&e) {
            return Err(format!("rpc[{i}].endpoint: {e} is listed twice"));
        }
        seen.push(e.clone());
        for (field, x) in [
            ("round_trip_ms", h.round_trip_ms),
            ("network_gbps", h.network_gbps),
        ] {
            if x.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
                return Err(format!("rpc[{i}].{field}: must be a positive number"));
            }
        }
        if h.devices.is_empty() {
            return Err(format!(
                "rpc[{i}].devices: a host serves at least one device"
            ));
        }
        for (j, d) in h.devices.iter().enumerate() {
            let total = parse_size(&d.memory)
                .ok()
                .filter(|&b| b > 0)
                .ok_or_else(|| {
                    format!(
                        "rpc[{i}].devices[{j}].memory: '{}' is not a size (e.g. 16G)",
                        d.memory
                    )
                })?;
            let free = match &d.memory_free {
                Some(s) => parse_size(s)
                    .map_err(|x| format!("rpc[{i}].devices[{j}].memory_free: {x}"))?
                    .min(total),
                None => total,
            };
            if d.bandwidth_gbps
                .is_some_and(|x| !(x.is_finite() && x > 0.0))
            {
                return Err(format!(
                    "rpc[{i}].devices[{j}].bandwidth_gbps: must be a positive number"
                ));
            }
            let name = format!("RPC{}", v.len());
            let mut g = Gpu::new(name, Vendor::Other, Bytes(total), Bytes(free), "described");
            g.bandwidth_gbps = d.bandwidth_gbps;
            // What the server would offer: its back-end's figure, context already out.
            g.free_excludes_context = true;
            g.remote = Some(RemoteLink {
                endpoint: e.to_string(),
                device_index: j as u32,
                description: match &d.name {
                    Some(n) => format!("{e} device {j} ({n})"),
                    None => format!("{e} device {j}"),
                },
                round_trip_ms: h.round_trip_ms,
                network_gbps: h.network_gbps,
            });
            v.push(g);
        }
    }
    Ok(v)
}

/// The servers a plan's devices live on, in device order, each once.
pub fn endpoints(gpus: &[Gpu]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for g in gpus {
        if let Some(r) = &g.remote {
            if !v.contains(&r.endpoint) {
                v.push(r.endpoint.clone());
            }
        }
    }
    v
}
