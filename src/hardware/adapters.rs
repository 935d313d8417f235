//! Every graphics adapter wgpu can see (Vulkan, GL, Metal, DX12), so that GPUs without a
//! vendor probe are still listed. wgpu reports no memory sizes; software rasterizers
//! (llvmpipe, lavapipe, SwiftShader) report device type `Cpu` and are never counted as GPUs.

use super::Adapter;

pub fn probe(notes: &mut Vec<String>) -> Vec<Adapter> {
    // Mesa's window-system code prints "error: XDG_RUNTIME_DIR is invalid" and the like on
    // headless machines while drivers load; layerfit promises one error line per failure, so
    // the C libraries' stderr is muted while adapters are enumerated.
    let found = with_stderr_muted(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        adapters
            .iter()
            .map(|a| (a.get_info(), a.limits()))
            .collect::<Vec<_>>()
    });
    let mut out: Vec<Adapter> = Vec::new();
    for (info, limits) in found {
        let device_type = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        };
        let adapter = Adapter {
            name: info.name.clone(),
            vendor_id: info.vendor,
            device_type: device_type.to_string(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            software: info.device_type == wgpu::DeviceType::Cpu,
            // A shader can address at most this much of one buffer (Vulkan's
            // maxStorageBufferRange, capped by the largest buffer): llama.cpp's Vulkan backend
            // keeps larger tensors, and ops producing larger results, on the CPU.
            max_buffer_bytes: Some(
                limits
                    .max_storage_buffer_binding_size
                    .min(limits.max_buffer_size),
            ),
        };
        if !out
            .iter()
            .any(|o| o.name == adapter.name && o.backend == adapter.backend)
        {
            out.push(adapter);
        }
    }
    for a in out.iter().filter(|a| a.software) {
        if !notes.iter().any(|n| n.contains(&a.name)) {
            notes.push(format!(
                "{} ({}) is a software renderer on the CPU, not a GPU",
                a.name, a.backend
            ));
        }
    }
    out
}

#[cfg(unix)]
fn with_stderr_muted<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else {
        return f();
    };
    // SAFETY: `dup` only reads the descriptor table; the new descriptor (or -1) is this
    // function's alone, closed once below.
    let saved = unsafe { libc::dup(2) };
    if saved < 0 {
        return f();
    }
    // SAFETY: `null` is an open descriptor owned by `null` for the whole call; fd 2 becomes a
    // copy of it, so `null` closing its own later leaves fd 2 open. Rust's stderr has no
    // buffer, so nothing written before is redirected.
    unsafe { libc::dup2(null.as_raw_fd(), 2) };
    let out = f();
    // SAFETY: `saved` is the open copy of the original fd 2 made above, put back on fd 2 and
    // then closed, once; nothing else holds it.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    out
}

#[cfg(not(unix))]
fn with_stderr_muted<T>(f: impl FnOnce() -> T) -> T {
    f()
}
