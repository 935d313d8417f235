//! Every graphics adapter wgpu can see (Vulkan, GL, Metal, DX12), so that GPUs without a
//! vendor probe are still listed. wgpu reports no memory sizes; software rasterizers
//! (llvmpipe, lavapipe, SwiftShader) report device type `Cpu` and are never counted as GPUs.

use super::Adapter;

pub fn probe(notes: &mut Vec<String>) -> Vec<Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut out: Vec<Adapter> = Vec::new();
    for a in pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all())) {
        let info = a.get_info();
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
