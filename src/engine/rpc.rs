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
    // SAFETY: the backend is initialised (above); the name is a NUL-terminated literal that
    // ggml only compares with its registries' names. The result is null or a registry that
    // ggml keeps until the process ends.
    let reg = unsafe { sys::ggml_backend_reg_by_name(c"RPC".as_ptr()) };
    if reg.is_null() {
        return Err(missing());
    }
    let c = CString::new(name).unwrap();
    // SAFETY: `reg` is a live, non-null registry; `c` is NUL-terminated and outlives the call,
    // which only compares it with the names the RPC back-end exports (ggml-rpc.cpp,
    // `ggml_backend_rpc_get_proc_address`) and returns a function's address or null.
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
    let address = proc_address("ggml_backend_rpc_add_server")?;
    // SAFETY: under this name the RPC registry returns `ggml_backend_rpc_add_server` itself
    // (ggml-rpc.cpp), declared in ggml-rpc.h as
    // `ggml_backend_reg_t ggml_backend_rpc_add_server(const char * endpoint)`: `AddServer` is
    // that signature. The address is non-null (`proc_address` checks) and belongs to the
    // linked engine, so it stays callable for the whole process.
    let add = unsafe { std::mem::transmute::<*mut c_void, AddServer>(address) };
    install_fault_handler();
    let mut names = Vec::new();
    for e in list {
        let c = CString::new(e.to_string()).unwrap();
        SERVERS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e.to_string());
        // SAFETY: `add` has the C signature (above); `c` is a NUL-terminated endpoint that
        // outlives the call (llama.cpp copies it). The server answered the caller's handshake
        // just before, and a later failure aborts through the handler installed above. The
        // result is null or a registry llama.cpp keeps, with its devices, until the process
        // ends.
        let reg = unsafe { add(c.as_ptr()) };
        if reg.is_null() {
            return Err(EngineError(format!("RPC server {e}: reports no device")));
        }
        // SAFETY: `reg` is the live, non-null registry of this server.
        let count = unsafe { sys::ggml_backend_reg_dev_count(reg) };
        for i in 0..count {
            // SAFETY: `i` is below the registry's device count. Registering appends the device
            // to ggml's device list, which has no lock of its own: layerfit registers devices
            // only here, under `connect`'s lock, on the thread about to load a model and
            // before llama.cpp reads the list for that load; the commands that take `--rpc`
            // load their models one after another, with no other engine work running.
            let d = unsafe {
                let d = sys::ggml_backend_reg_dev_get(reg, i);
                sys::ggml_backend_device_register(d);
                d
            };
            names.push(dev_name(d));
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

/// Whether a ggml device is a remote one (its registry is `RPC[HOST:PORT]`). `dev` is a
/// non-null device of ggml's registry, as every caller passes.
pub(super) fn is_remote(dev: sys::ggml_backend_dev_t) -> bool {
    // SAFETY: `dev` is a registered device (callers' contract above), which ggml keeps until
    // the process ends; the call reads its registry field.
    let reg = unsafe { sys::ggml_backend_dev_backend_reg(dev) };
    if reg.is_null() {
        return false;
    }
    // SAFETY: `reg` is a live, non-null registry; its name is a NUL-terminated string it
    // owns for as long as it lives (the process), read at once.
    unsafe { CStr::from_ptr(sys::ggml_backend_reg_name(reg)) }
        .to_bytes()
        .starts_with(b"RPC")
}

/// A device's name. `dev` is a non-null device of ggml's registry (or `rpc_offer`'s wrapper
/// of one), as every caller passes.
fn dev_name(dev: sys::ggml_backend_dev_t) -> String {
    // SAFETY: `dev` is a live device (callers' contract above); its name is a NUL-terminated
    // string the device owns for as long as it lives, copied here at once.
    unsafe { CStr::from_ptr(sys::ggml_backend_dev_name(dev)) }
        .to_string_lossy()
        .into_owned()
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
    // SAFETY: `on_abort` has the C type `ggml_abort_callback_t`, `void (*)(const char *)`.
    // ggml calls it from `ggml_abort` (on whichever thread fails) with a NUL-terminated
    // message in its own stack buffer, which `on_abort` copies before anything else, and it
    // ends the process itself. ggml keeps the pointer in a plain global: it is written here,
    // on the thread that adds the servers, before their devices exist, and the function lives
    // for the whole process.
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
    let address = proc_address("ggml_backend_rpc_start_server")?;
    // SAFETY: under this name the RPC registry returns `ggml_backend_rpc_start_server` itself
    // (ggml-rpc.cpp), declared in ggml-rpc.h as `void ggml_backend_rpc_start_server(const
    // char * endpoint, const char * cache_dir, size_t n_threads, size_t n_devices,
    // ggml_backend_dev_t * devices)`: `StartServer` is that signature. The address is
    // non-null (`proc_address` checks) and belongs to the linked engine.
    let start = unsafe { std::mem::transmute::<*mut c_void, StartServer>(address) };
    let mut devs = pick_devices(devices)?;
    for d in devs.iter_mut() {
        let name = dev_name(*d);
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: `*d` is a registered device (`pick_devices`); `free` and `total` are
        // writable and outlive the call.
        unsafe { sys::ggml_backend_dev_memory(*d, &mut free, &mut total) };
        if let Some(limit) = offer(&name, free as u64, total as u64) {
            *d = super::rpc_offer::wrap(*d, limit)?;
        }
    }
    let ep = CString::new(endpoint.to_string()).unwrap();
    let cache = cache_dir.map(|p| CString::new(p.to_string_lossy().as_bytes()).unwrap());
    // SAFETY: `start` has the C signature (above). The endpoint and the cache directory (or
    // null, which llama.cpp accepts) are NUL-terminated; they and `devs` (`devs.len()`
    // registered devices or `rpc_offer` wrappers, which are never freed) outlive the call,
    // which returns only when the server fails and keeps none of them after. llama.cpp
    // starts its own backends of the devices and frees neither the strings nor the devices.
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
        for d in registered_devices() {
            // SAFETY: `d` is a registered device; its description is a NUL-terminated string
            // it owns for as long as it lives, copied here at once.
            let (t, description) = unsafe {
                let t = sys::ggml_backend_dev_type(d);
                let text = CStr::from_ptr(sys::ggml_backend_dev_description(d));
                (t, text.to_string_lossy().into_owned())
            };
            let software = description.contains("llvmpipe");
            if t == sys::GGML_BACKEND_DEVICE_TYPE_GPU && !software && !is_remote(d) {
                v.push(d);
            }
        }
        if v.is_empty() {
            // SAFETY: a search of the initialised registry; every build registers the CPU.
            v.push(unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU) });
        }
        return Ok(v);
    }
    for n in names {
        let c = CString::new(n.as_str()).unwrap();
        // SAFETY: `c` is NUL-terminated and outlives the call, which compares it with the
        // registered devices' names and returns one of them or null.
        let d = unsafe { sys::ggml_backend_dev_by_name(c.as_ptr()) };
        if d.is_null() || is_remote(d) {
            let known: Vec<String> = registered_devices()
                .into_iter()
                .filter(|&d| !is_remote(d))
                .map(dev_name)
                .collect();
            return Err(EngineError(format!(
                "--device {n}: no such device in this build (devices: {})",
                known.join(", ")
            )));
        }
        v.push(d);
    }
    Ok(v)
}

/// ggml's registered devices, in its order (the backend initialised).
fn registered_devices() -> Vec<sys::ggml_backend_dev_t> {
    // SAFETY: reads the length of ggml's device list, which the caller initialised.
    let count = unsafe { sys::ggml_backend_dev_count() };
    (0..count)
        // SAFETY: `i` is below the count just read; the list only grows (`add_servers`), and
        // its devices live until the process ends.
        .map(|i| unsafe { sys::ggml_backend_dev_get(i) })
        .collect()
}
