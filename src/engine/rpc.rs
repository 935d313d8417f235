//! llama.cpp's RPC back-end (`GGML_RPC`, `.cargo/config.toml`): serving this machine's
//! devices (`layerfit rpc-server`) and adding remote servers' devices to the engine (`--rpc`).
//! The back-end is reached through ggml's registry (`ggml_backend_reg_by_name("RPC")` and its
//! proc addresses), as llama.cpp's own tools do, so a build without it says so instead of
//! failing to link.

use super::measure::{init_backend, EngineError};
use crate::rpc::endpoint::Endpoint;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Mutex;

type AddServer = unsafe extern "C" fn(*const c_char) -> sys::ggml_backend_reg_t;
type StartServer =
    unsafe extern "C" fn(*const c_char, *const c_char, usize, usize, *mut sys::ggml_backend_dev_t);

fn proc_address(name: &str) -> Result<*mut c_void, EngineError> {
    init_backend();
    let missing = || {
        EngineError(
            "this build of layerfit has no RPC back-end (build with GGML_RPC=ON, as .cargo/config.toml does)"
                .into(),
        )
    };
    let reg = unsafe { sys::ggml_backend_reg_by_name(c"RPC".as_ptr()) };
    if reg.is_null() {
        return Err(missing());
    }
    let c = CString::new(name).unwrap();
    let p = unsafe { sys::ggml_backend_reg_get_proc_address(reg, c.as_ptr()) };
    if p.is_null() {
        return Err(missing());
    }
    Ok(p)
}

/// Whether this build carries the RPC back-end.
pub fn available() -> bool {
    proc_address("ggml_backend_rpc_add_server").is_ok()
}

/// Servers added to the engine, for the fault handler's message.
static SERVERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds each server's devices to ggml's device list (llama.cpp puts them first, in this
/// order) and returns their names (`RPC0`, `RPC1`, ...). Each server must have answered
/// `rpc::client::probe` just before: llama.cpp's client aborts on a server it cannot reach.
pub fn add_servers(list: &[Endpoint]) -> Result<Vec<String>, EngineError> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let add: AddServer =
        unsafe { std::mem::transmute(proc_address("ggml_backend_rpc_add_server")?) };
    install_fault_handler();
    let mut names = Vec::new();
    for e in list {
        let c = CString::new(e.to_string()).unwrap();
        SERVERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.to_string());
        unsafe {
            let reg = add(c.as_ptr());
            if reg.is_null() {
                return Err(EngineError(format!("RPC server {e}: reports no device")));
            }
            for i in 0..sys::ggml_backend_reg_dev_count(reg) {
                let d = sys::ggml_backend_reg_dev_get(reg, i);
                sys::ggml_backend_device_register(d);
                names.push(
                    CStr::from_ptr(sys::ggml_backend_dev_name(d))
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    Ok(names)
}

/// Checks each server with layerfit's bounded client, then adds it to the engine (once per
/// process: llama.cpp keeps its servers until the process ends).
pub fn connect(list: &[Endpoint]) -> Result<Vec<String>, EngineError> {
    static DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    let new: Vec<Endpoint> = list
        .iter()
        .filter(|e| !done.contains(&e.to_string()))
        .cloned()
        .collect();
    // The handshake only: the link was measured when the plan was made.
    for e in &new {
        crate::rpc::client::handshake(e, crate::env_vars::net_timeout())
            .map_err(|x| EngineError(x.to_string()))?;
    }
    let names = add_servers(&new)?;
    done.extend(new.iter().map(|e| e.to_string()));
    Ok(names)
}

/// Where a buffer of an RPC device (`RPC{index on its server}[HOST:PORT]`) falls in
/// llama.cpp's device order: servers in the order they were added, then the index. Other
/// buffers sort after. (llama.cpp's memory breakdown lists buffer types in pointer order.)
pub fn device_order(buffer_name: &str) -> (usize, u32) {
    let parsed = buffer_name.strip_prefix("RPC").and_then(|rest| {
        let (index, endpoint) = rest.split_once('[')?;
        Some((index.parse::<u32>().ok()?, endpoint.strip_suffix(']')?))
    });
    let Some((index, endpoint)) = parsed else {
        return (usize::MAX, 0);
    };
    let servers = SERVERS.lock().map(|s| s.clone()).unwrap_or_default();
    let server = servers
        .iter()
        .position(|s| s == endpoint)
        .unwrap_or(usize::MAX - 1);
    (server, index)
}

/// Whether a ggml device is a remote one (its registry is `RPC[HOST:PORT]`).
pub(super) fn is_remote(dev: sys::ggml_backend_dev_t) -> bool {
    unsafe {
        let reg = sys::ggml_backend_dev_backend_reg(dev);
        !reg.is_null()
            && CStr::from_ptr(sys::ggml_backend_reg_name(reg))
                .to_bytes()
                .starts_with(b"RPC")
    }
}

/// llama.cpp's RPC client aborts the process when a server dies or answers nonsense
/// (`RPC_STATUS_ASSERT`). This turns the abort into layerfit's one error line naming the
/// servers that no longer accept connections, and exit code 1, within the time the
/// operating system takes to report the closed connection.
fn install_fault_handler() {
    unsafe extern "C" fn on_abort(message: *const c_char) {
        let msg = if message.is_null() {
            String::new()
        } else {
            CStr::from_ptr(message).to_string_lossy().into_owned()
        };
        let servers = SERVERS.lock().map(|s| s.clone()).unwrap_or_default();
        // A server that just died may still hold its listening socket for a moment: ask a
        // few times over a second.
        let mut down: Vec<String> = Vec::new();
        for _ in 0..10 {
            for s in &servers {
                let refused = Endpoint::parse(s).is_ok_and(|e| {
                    crate::rpc::client::reachable(&e, std::time::Duration::from_millis(500))
                        .is_err()
                });
                if refused && !down.contains(s) {
                    down.push(s.clone());
                }
            }
            if !down.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let what = msg.rsplit(": ").next().unwrap_or(&msg).trim().to_string();
        let line = if down.is_empty() {
            format!(
                "error: the engine stopped: {what} (RPC servers: {})\n",
                servers.join(", ")
            )
        } else {
            format!(
                "error: RPC server {} stopped answering during the run ({what})\n",
                down.join(", ")
            )
        };
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
        libc::_exit(1);
    }
    unsafe {
        sys::ggml_set_abort_callback(Some(on_abort));
    }
}

/// Serves `devices` (ggml device names; empty: every GPU, else the CPU, as
/// `ggml-rpc-server` does) on `endpoint` until the process ends. `offer` says, per device
/// (name, free, total), the memory it reports to clients, or `None` for its own figure.
pub fn serve(
    endpoint: &Endpoint,
    devices: &[String],
    threads: usize,
    cache_dir: Option<&std::path::Path>,
    offer: &dyn Fn(&str, u64, u64) -> Option<u64>,
) -> Result<(), EngineError> {
    let start: StartServer =
        unsafe { std::mem::transmute(proc_address("ggml_backend_rpc_start_server")?) };
    let mut devs = pick_devices(devices)?;
    for d in devs.iter_mut() {
        let name = unsafe {
            CStr::from_ptr(sys::ggml_backend_dev_name(*d))
                .to_string_lossy()
                .into_owned()
        };
        let (mut free, mut total) = (0usize, 0usize);
        unsafe { sys::ggml_backend_dev_memory(*d, &mut free, &mut total) };
        if let Some(limit) = offer(&name, free as u64, total as u64) {
            *d = super::rpc_offer::wrap(*d, limit)?;
        }
    }
    let ep = CString::new(endpoint.to_string()).unwrap();
    let cache = cache_dir.map(|p| CString::new(p.to_string_lossy().as_bytes()).unwrap());
    unsafe {
        start(
            ep.as_ptr(),
            cache.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            threads,
            devs.len(),
            devs.as_mut_ptr(),
        );
    }
    Err(EngineError(format!(
        "{endpoint}: the RPC server stopped (the address is in use or cannot be bound)"
    )))
}

fn pick_devices(names: &[String]) -> Result<Vec<sys::ggml_backend_dev_t>, EngineError> {
    init_backend();
    let mut v = Vec::new();
    if names.is_empty() {
        unsafe {
            for i in 0..sys::ggml_backend_dev_count() {
                let d = sys::ggml_backend_dev_get(i);
                let t = sys::ggml_backend_dev_type(d);
                let software = CStr::from_ptr(sys::ggml_backend_dev_description(d))
                    .to_string_lossy()
                    .contains("llvmpipe");
                if t == sys::GGML_BACKEND_DEVICE_TYPE_GPU && !software && !is_remote(d) {
                    v.push(d);
                }
            }
            if v.is_empty() {
                v.push(sys::ggml_backend_dev_by_type(
                    sys::GGML_BACKEND_DEVICE_TYPE_CPU,
                ));
            }
        }
        return Ok(v);
    }
    for n in names {
        let c = CString::new(n.as_str()).unwrap();
        let d = unsafe { sys::ggml_backend_dev_by_name(c.as_ptr()) };
        if d.is_null() || is_remote(d) {
            let known: Vec<String> = unsafe {
                (0..sys::ggml_backend_dev_count())
                    .map(|i| sys::ggml_backend_dev_get(i))
                    .filter(|&d| !is_remote(d))
                    .map(|d| {
                        CStr::from_ptr(sys::ggml_backend_dev_name(d))
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect()
            };
            return Err(EngineError(format!(
                "--device {n}: no such device in this build (devices: {})",
                known.join(", ")
            )));
        }
        v.push(d);
    }
    Ok(v)
}
