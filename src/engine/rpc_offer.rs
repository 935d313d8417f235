//! The memory an RPC server offers per device. llama.cpp's CPU device reports all of RAM as
//! free ("ill-defined", ggml-cpu.cpp) and its server passes that on, so a client would plan
//! to fill the host. `layerfit rpc-server` wraps each served device so that it reports what
//! the host offers instead (`--memory`, or for the CPU its available RAM less the OS
//! reserve): the same figure reaches layerfit's planner and llama.cpp's default split.
//! The wrapper is a copy of ggml's device with two functions replaced; the layout of ggml's
//! device and backend structs (ggml-backend-impl.h, pinned by the vendored version) is
//! checked at run time before it is relied on.

use super::measure::EngineError;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_char, c_void};
use std::sync::Mutex;

/// `struct ggml_backend_device`: 15 interface functions, then `reg` and `context`.
#[repr(C)]
#[derive(Clone, Copy)]
struct DeviceRaw {
    iface: [*const c_void; 15],
    reg: *mut c_void,
    context: *mut c_void,
}

const GET_MEMORY: usize = 2;
const GET_PROPS: usize = 4;
const INIT_BACKEND: usize = 5;
/// `struct ggml_backend`: `guid`, 16 interface functions, then `device`.
const BACKEND_DEVICE_SLOT: usize = 17;

/// (wrapper, real device, bytes offered), as addresses.
static WRAPPED: Mutex<Vec<(usize, usize, u64)>> = Mutex::new(Vec::new());

fn lookup(dev: sys::ggml_backend_dev_t) -> Option<(sys::ggml_backend_dev_t, u64)> {
    WRAPPED
        .lock()
        .ok()?
        .iter()
        .find(|w| w.0 == dev as usize)
        .map(|w| (w.1 as sys::ggml_backend_dev_t, w.2))
}

// The three replacements have the C types of the slots they fill (`ggml_backend_device_i`,
// ggml-backend-impl.h). ggml calls them with a device (the wrapper, looked up in `WRAPPED`;
// any other is ignored) and, for the first two, writable out-pointers; they pass the call to
// the real device, alive for the whole process.
unsafe extern "C" fn get_memory(dev: sys::ggml_backend_dev_t, free: *mut usize, total: *mut usize) {
    let Some((real, limit)) = lookup(dev) else {
        return;
    };
    sys::ggml_backend_dev_memory(real, free, total);
    *total = (*total as u64).min(limit) as usize;
    *free = (*free as u64).min(limit) as usize;
}

unsafe extern "C" fn get_props(
    dev: sys::ggml_backend_dev_t,
    props: *mut sys::ggml_backend_dev_props,
) {
    let Some((real, limit)) = lookup(dev) else {
        return;
    };
    sys::ggml_backend_dev_get_props(real, props);
    (*props).memory_total = ((*props).memory_total as u64).min(limit) as usize;
    (*props).memory_free = ((*props).memory_free as u64).min(limit) as usize;
}

unsafe extern "C" fn init_backend(
    dev: sys::ggml_backend_dev_t,
    params: *const c_char,
) -> sys::ggml_backend_t {
    let Some((real, _)) = lookup(dev) else {
        return std::ptr::null_mut();
    };
    let b = sys::ggml_backend_dev_init(real, params);
    if !b.is_null() {
        // The server asks the backend for its device when a client asks for memory.
        let slot = (b as *mut *mut c_void).add(BACKEND_DEVICE_SLOT);
        if *slot == real as *mut c_void {
            *slot = dev as *mut c_void;
        }
    }
    b
}

/// `real`, reporting at most `limit` bytes free and total.
pub(super) fn wrap(
    real: sys::ggml_backend_dev_t,
    limit: u64,
) -> Result<sys::ggml_backend_dev_t, EngineError> {
    // The layout check: a backend of the device names the device where expected.
    // SAFETY: `real` is a registered device (`rpc::pick_devices`), which ggml keeps until the
    // process ends; with null parameters ggml starts a new backend of it, or returns null. A
    // non-null one is freed below.
    let b = unsafe { sys::ggml_backend_dev_init(real, std::ptr::null()) };
    if b.is_null() {
        return Err(EngineError("the device cannot start a backend".into()));
    }
    // SAFETY: `b` is a live backend. The vendored `struct ggml_backend` (ggml-backend-impl.h)
    // is a guid pointer, 16 interface function pointers, then the device pointer, so the
    // slot read lies inside it; it is compared with what `ggml_backend_get_device` returns.
    // `b` is freed once, here, and not used again.
    let ok = unsafe {
        let slot = (b as *mut *mut c_void).add(BACKEND_DEVICE_SLOT);
        let ok = *slot == real as *mut c_void && sys::ggml_backend_get_device(b) == real;
        sys::ggml_backend_free(b);
        ok
    };
    if !ok {
        return Err(EngineError(
            "this engine build's device layout is not the one the memory limit expects".into(),
        ));
    }
    // SAFETY: `real` points at a live `struct ggml_backend_device`: 15 interface function
    // pointers, `reg` and `context` (ggml-backend-impl.h), which `DeviceRaw` repeats in C
    // layout; the check above found this build's backend layout as expected. The copy is
    // plain pointers: the real device's context stays shared, owned by ggml.
    let mut copy = unsafe { *(real as *const DeviceRaw) };
    copy.iface[GET_MEMORY] = get_memory as *const c_void;
    copy.iface[GET_PROPS] = get_props as *const c_void;
    copy.iface[INIT_BACKEND] = init_backend as *const c_void;
    // Never freed: ggml's devices live until the process ends.
    let wrapper = Box::into_raw(Box::new(copy)) as sys::ggml_backend_dev_t;
    WRAPPED.lock().unwrap_or_else(|p| p.into_inner()).push((
        wrapper as usize,
        real as usize,
        limit,
    ));
    Ok(wrapper)
}
