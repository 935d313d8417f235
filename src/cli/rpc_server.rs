//! `layerfit rpc-server`: this machine's devices served to other machines' llama.cpp (or
//! layerfit `--rpc`) over llama.cpp's RPC back-end, protocol 7.x, as `ggml-rpc-server` does,
//! with what each device offers stated (docs/rpc.md).

use super::output::Printer;
use super::Failure;
use crate::bytes::Bytes;
use crate::hardware::whatif::parse_nonzero_size;
use crate::rpc::endpoint::{Endpoint, DEFAULT_PORT};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. Loopback by default; any other needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// A ggml device to serve (CPU, Vulkan0, CUDA0); repeatable. Default: every GPU, or the
    /// CPU when there is none (as ggml-rpc-server).
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// Threads for the CPU device [default: physical cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// The most memory each device offers clients, with a unit (e.g. 2G). Default: a GPU's
    /// free memory; the CPU's available RAM less the OS reserve.
    #[arg(long, value_parser = parse_nonzero_size)]
    pub memory: Option<u64>,
    /// Keep large tensors sent by clients in a local cache (llama.cpp's `-c`), under
    /// $XDG_CACHE_HOME/layerfit/rpc.
    #[arg(long)]
    pub cache: bool,
    /// Listen on a non-loopback address. The RPC protocol has no authentication and no
    /// encryption: trusted networks only.
    #[arg(long)]
    pub allow_remote: bool,
}

/// llama.cpp's warning (tools/rpc/README.md), printed for any non-loopback bind.
pub const WARNING: &str = "the RPC server has no authentication and no encryption: anyone who can reach this address can run code on its devices and read what they hold. Never run it on an open network or in a sensitive environment (llama.cpp, tools/rpc/README.md).";

pub fn run(a: Args, _p: &Printer) -> Result<u8, Failure> {
    let endpoint = Endpoint::parse(&format!("{}:{}", a.host, a.port))
        .map_err(|e| Failure::BadInput(format!("--host/--port: {e}")))?;
    if !endpoint.is_loopback() {
        if !a.allow_remote {
            return Err(Failure::BadInput(format!(
                "--host {}: not a loopback address; add --allow-remote to serve other machines ({WARNING})",
                a.host
            )));
        }
        eprintln!("warning: {WARNING}");
    }
    if a.threads == Some(0) {
        return Err(Failure::BadInput("--threads 0: give at least 1".into()));
    }
    // A clear error for an address that cannot be bound (llama.cpp only says it failed).
    std::net::TcpListener::bind((a.host.as_str(), a.port))
        .map_err(|e| Failure::BadInput(format!("cannot listen on {endpoint}: {e}")))?;
    let threads = a
        .threads
        .unwrap_or_else(|| crate::hardware::cpu::probe().physical_cores.max(1));
    let mut notes = Vec::new();
    let ram = crate::hardware::ram::read(std::path::Path::new("/sys/fs/cgroup"), &mut notes);
    let cpu_offer = ram
        .available_bytes
        .saturating_sub(crate::plan::os_reserve(ram.total_bytes));
    // A GPU reports its own free memory; only the CPU's figure (all of RAM) and a
    // `--memory` cap need the device wrapped.
    let offer = |name: &str, free: u64, total: u64| -> Option<u64> {
        let limit = match (a.memory, name == "CPU") {
            (Some(m), _) => Some(m.min(total)),
            (None, true) => Some(cpu_offer.get()),
            (None, false) => None,
        };
        println!(
            "layerfit rpc-server: {name} offers {} (of {} total)",
            Bytes(limit.unwrap_or(free)),
            Bytes(total)
        );
        limit
    };
    let cache = a.cache.then(|| {
        crate::hardware::probe::ProbeOptions::default()
            .cache_dir
            .join("rpc")
    });
    if let Some(c) = &cache {
        std::fs::create_dir_all(c)
            .map_err(|e| Failure::BadInput(format!("{}: {e}", c.display())))?;
    }
    println!(
        "layerfit rpc-server: listening on {endpoint}, {}",
        super::output::count(threads as u64, "thread")
    );
    crate::engine::rpc::serve(&endpoint, &a.devices, threads, cache.as_deref(), &offer)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    Ok(0)
}
