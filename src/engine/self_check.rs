//! The self-check after loading: the plan's per-device weights, KV cache and compute next to
//! what llama.cpp allocated (`llama_get_memory_breakdown`), and each GPU's free memory as its
//! driver reports it before the plan and after loading next to what the plan kept there (its
//! buffers and the back-end reserve). Pure arithmetic over the plan, the engine's buffer list
//! and the drivers' figures, so it is tested without loading a model.

use super::measure::BufferUse;
use crate::bytes::Bytes;
use crate::plan::DeviceUse;
use serde::Serialize;

/// One figure of the self-check.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub device: String,
    pub what: &'static str,
    pub planned: Bytes,
    pub allocated: Bytes,
    pub within_5_percent: bool,
}

/// Plan vs allocation per device: weights, KV cache, compute. `output_buffer` is the host
/// output buffer the plan counts in the host's compute (a row of logits per output the
/// context may decode at once), which llama.cpp's breakdown leaves out.
pub fn self_check(
    expected: &[DeviceUse],
    repacked: Bytes,
    output_buffer: Bytes,
    buffers: &[BufferUse],
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut push = |device: &str, what: &'static str, planned: Bytes, allocated: Bytes| {
        let diff = planned.get().abs_diff(allocated.get()) as f64;
        let ok = diff <= 0.05 * planned.get().max(1) as f64
            || (what == "compute" && diff <= 16.0 * 1048576.0);
        checks.push(Check {
            device: device.to_string(),
            what,
            planned,
            allocated,
            within_5_percent: ok,
        });
    };
    let (host, gpu_buffers): (Vec<&BufferUse>, Vec<&BufferUse>) =
        buffers.iter().partition(|b| b.is_host());
    let sum = |v: &[&BufferUse], f: fn(&BufferUse) -> Bytes| v.iter().map(|b| f(b)).sum::<Bytes>();
    let mut gpu_i = 0;
    for d in expected {
        if d.is_gpu {
            // A device the engine never listed has no buffers: nothing to compare, and not a
            // drift (run plans only on devices the engine lists).
            let Some(&buffer) = gpu_buffers.get(gpu_i) else {
                continue;
            };
            let b = vec![buffer];
            gpu_i += 1;
            push(&d.device, "weights", d.weights_bytes, sum(&b, |x| x.model));
            push(&d.device, "KV cache", d.kv_bytes, sum(&b, |x| x.context));
            push(
                &d.device,
                "compute",
                d.compute_bytes,
                sum(&b, |x| x.compute),
            );
        } else {
            // The file is mapped whole, so repacked weights appear in both buffers.
            push(
                &d.device,
                "weights",
                d.weights_bytes + repacked,
                sum(&host, |x| x.model),
            );
            push(&d.device, "KV cache", d.kv_bytes, sum(&host, |x| x.context));
            push(
                &d.device,
                "compute",
                d.compute_bytes.saturating_sub(output_buffer),
                sum(&host, |x| x.compute),
            );
        }
    }
    checks
}

/// Allocation slack the driver check allows above the plan: llama.cpp's device buffers are
/// rounded up to their allocation granularity (2 MiB pages on CUDA) and a back-end may keep
/// small bookkeeping allocations; the same 16 MiB the compute check allows.
const DRIVER_SLACK: Bytes = Bytes(16 << 20);

/// One local GPU as the plan found it: the free memory the plan started from (the probe's
/// figure), what the plan puts there, and the back-end reserve its budget kept.
#[derive(Clone, Debug, PartialEq)]
pub struct DriverBaseline {
    /// The GPU's name, as the plan's device rows name it.
    pub device: String,
    /// The engine's device (`CUDA0`, `Vulkan0`, `MTL0`).
    pub engine_device: String,
    pub free_before: Bytes,
    /// The plan's weights, KV cache and compute on the device.
    pub buffers: Bytes,
    pub backend_reserve: Bytes,
}

impl DriverBaseline {
    /// The local GPUs of a plan, from the snapshot it was made on (the plan's GPU rows follow
    /// the snapshot's GPUs in order). Remote devices have no local driver to ask.
    pub fn of_plan(devices: &[DeviceUse], gpus: &[crate::hardware::Gpu]) -> Vec<DriverBaseline> {
        devices
            .iter()
            .filter(|d| d.is_gpu)
            .zip(gpus)
            .filter(|(_, g)| g.remote.is_none())
            .filter_map(|(d, g)| {
                Some(DriverBaseline {
                    device: d.device.clone(),
                    engine_device: g.engine_device.clone()?,
                    free_before: g.vram_free_bytes,
                    buffers: d.total_bytes,
                    backend_reserve: d.backend_reserve_bytes,
                })
            })
            .collect()
    }
}

/// One GPU's memory by its driver: what loading took, next to what the plan kept for it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct DriverCheck {
    pub device: String,
    pub engine_device: String,
    /// Free memory the plan started from (NVML, sysfs, or the engine's query when probed).
    pub free_before: Bytes,
    /// Free memory after loading, as the engine's device reports it (`cudaMemGetInfo`,
    /// `hipMemGetInfo`, Vulkan's memory budget, Metal's working set less what this process
    /// allocated).
    pub free_after: Bytes,
    /// `free_before - free_after`: what loading took on the device, the back-end's context
    /// included (and anything another program allocated meanwhile).
    pub used: Bytes,
    /// What the plan put on the device (weights, KV cache, compute) plus the back-end reserve
    /// its budget kept.
    pub planned: Bytes,
    pub backend_reserve: Bytes,
    /// `used` is at most `planned` (with 16 MiB of allocation slack): the plan's buffers and
    /// back-end reserve held what the driver saw taken.
    pub within_plan: bool,
}

/// The driver's view of each planned local GPU after loading. `now` holds each engine
/// device's free memory after loading; a GPU whose device is not there is left out.
pub fn driver_check(baselines: &[DriverBaseline], now: &[(String, Bytes)]) -> Vec<DriverCheck> {
    baselines
        .iter()
        .filter_map(|b| {
            let free_after = now.iter().find(|(n, _)| *n == b.engine_device)?.1;
            let planned = b.buffers + b.backend_reserve;
            let used = b.free_before.saturating_sub(free_after);
            Some(DriverCheck {
                device: b.device.clone(),
                engine_device: b.engine_device.clone(),
                free_before: b.free_before,
                free_after,
                used,
                planned,
                backend_reserve: b.backend_reserve,
                within_plan: used <= planned + DRIVER_SLACK,
            })
        })
        .collect()
}

/// The host weights as llama.cpp maps them when per-tensor overrides (`--n-cpu-moe`,
/// `--n-cpu-ffn`) interleave host and GPU tensors: one range of the file per buffer type,
/// from the first host tensor to the end of the last, the GPU tensors between them included
/// (`plan::MappedFile`, the rule the plan sizes RPC hosts by). Its buffer report counts that
/// range; with local GPUs the RAM actually resident is only the host tensors' pages (the
/// plan's figure).
pub fn mapped_host_span(
    tensors: &[crate::gguf::TensorInfo],
    n_layer: u32,
    ngl: u32,
    cpu_moe: u32,
    cpu_ffn: u32,
) -> Bytes {
    crate::plan::MappedFile::new(tensors, n_layer).host_span(ngl, cpu_moe, cpu_ffn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn device(name: &str, is_gpu: bool, w: u64, kv: u64, c: u64) -> DeviceUse {
        DeviceUse {
            device: name.into(),
            is_gpu,
            weights_bytes: Bytes(w * MIB),
            kv_bytes: Bytes(kv * MIB),
            compute_bytes: Bytes(c * MIB),
            total_bytes: Bytes((w + kv + c) * MIB),
            budget_bytes: Bytes(1 << 40),
            backend: None,
            backend_reserve_bytes: Bytes::ZERO,
        }
    }

    fn buffer(name: &str, w: u64, kv: u64, c: u64) -> BufferUse {
        BufferUse {
            name: name.into(),
            model: Bytes(w * MIB),
            context: Bytes(kv * MIB),
            compute: Bytes(c * MIB),
        }
    }

    #[test]
    fn figures_within_five_percent_pass_and_a_drift_is_named() {
        let expected = [
            device("GPU", true, 100, 50, 40),
            device("CPU", false, 10, 0, 20),
        ];
        // No output buffer to take off the host compute figure.
        let ok = self_check(
            &expected,
            Bytes::ZERO,
            Bytes::ZERO,
            &[buffer("Vulkan0", 102, 50, 41), buffer("CPU", 10, 0, 20)],
        );
        assert_eq!(ok.len(), 6);
        assert!(ok.iter().all(|c| c.within_5_percent), "{ok:?}");
        let drift = self_check(
            &expected,
            Bytes::ZERO,
            Bytes::ZERO,
            &[buffer("Vulkan0", 100, 80, 40), buffer("CPU", 10, 0, 20)],
        );
        let bad: Vec<_> = drift.iter().filter(|c| !c.within_5_percent).collect();
        assert_eq!(bad.len(), 1, "{drift:?}");
        assert_eq!((bad[0].device.as_str(), bad[0].what), ("GPU", "KV cache"));
    }

    #[test]
    fn the_driver_check_counts_the_reserve_once() {
        let expected = [
            device("RTX 4060", true, 4000, 500, 300),
            device("CPU", false, 10, 0, 20),
        ];
        let mut gpu = crate::hardware::Gpu::new(
            "RTX 4060".into(),
            crate::hardware::Vendor::Nvidia,
            Bytes(8192 * MIB),
            Bytes(8000 * MIB),
            "nvml",
        );
        gpu.engine_device = Some("CUDA0".into());
        let base = |reserve: u64, free: u64| {
            let mut b = DriverBaseline::of_plan(&expected, std::slice::from_ref(&gpu));
            assert_eq!(b.len(), 1);
            b[0].free_before = Bytes(free * MIB);
            b[0].backend_reserve = Bytes(reserve * MIB);
            b.swap_remove(0)
        };
        assert_eq!(base(0, 0).buffers, Bytes(4800 * MIB));
        // NVML's figure, read before the context: the context (here 300 MiB) and the buffers
        // come out of it, within the 457 MiB reserve.
        let now = [("CUDA0".to_string(), Bytes((8000 - 4800 - 300) * MIB))];
        let c = driver_check(&[base(457, 8000)], &now);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].used, Bytes(5100 * MIB));
        assert_eq!(c[0].planned, Bytes((4800 + 457) * MIB));
        assert!(c[0].within_plan, "{c:?}");
        // A context larger than the reserve is named.
        let now = [("CUDA0".to_string(), Bytes((8000 - 4800 - 700) * MIB))];
        assert!(!driver_check(&[base(457, 8000)], &now)[0].within_plan);
        // The engine's figure already lacked the context: no reserve, and none needed.
        let now = [("CUDA0".to_string(), Bytes((7700 - 4800) * MIB))];
        let c = driver_check(&[base(0, 7700)], &now);
        assert_eq!(
            (c[0].used, c[0].planned),
            (Bytes(4800 * MIB), Bytes(4800 * MIB))
        );
        assert!(c[0].within_plan);
        // A device the engine does not list after loading is left out.
        assert!(driver_check(&[base(457, 8000)], &[]).is_empty());
    }

    #[test]
    fn interleaved_host_tensors_are_mapped_as_one_range() {
        use crate::gguf::TensorInfo;
        let t = |name: &str, offset: u64| TensorInfo {
            name: name.into(),
            dims: vec![1024],
            ggml_type: crate::ggml_type::GgmlType::F32,
            offset,
        };
        // token_embd, then per block attention and feed-forward, 4 KiB each.
        let tensors = vec![
            t("token_embd.weight", 0),
            t("blk.0.attn_q.weight", 4096),
            t("blk.0.ffn_up.weight", 8192),
            t("blk.1.attn_q.weight", 12288),
            t("blk.1.ffn_up.weight", 16384),
            t("output_norm.weight", 20480),
        ];
        // Everything on the GPU but block 0's feed-forward: token_embd to blk.0.ffn_up.
        assert_eq!(mapped_host_span(&tensors, 2, 3, 0, 1), Bytes(12288));
        // Both blocks' feed-forward: up to the end of blk.1.ffn_up, attention between.
        assert_eq!(mapped_host_span(&tensors, 2, 3, 0, 2), Bytes(20480));
        // Nothing offloaded: the whole file.
        assert_eq!(mapped_host_span(&tensors, 2, 0, 0, 0), Bytes(24576));
    }

    #[test]
    fn compute_may_differ_by_16_mib_and_repacked_weights_count_on_the_host() {
        let expected = [device("CPU", false, 100, 10, 20)];
        let checks = self_check(
            &expected,
            Bytes(30 * MIB),
            Bytes::ZERO,
            &[buffer("CPU", 130, 10, 35)],
        );
        assert!(checks.iter().all(|c| c.within_5_percent), "{checks:?}");
    }

    #[test]
    fn the_host_output_buffer_comes_off_the_planned_compute() {
        // The plan counts 24 MiB of output rows (a draft's proposals verified at once) in the
        // host's compute; llama.cpp's breakdown lists them apart, so the check compares the
        // other 20 MiB with the 20 MiB allocated.
        let expected = [device("CPU", false, 100, 10, 44)];
        let ok = self_check(
            &expected,
            Bytes::ZERO,
            Bytes(24 * MIB),
            &[buffer("CPU", 100, 10, 20)],
        );
        let compute = ok.iter().find(|c| c.what == "compute").unwrap();
        assert_eq!(compute.planned, Bytes(20 * MIB));
        assert!(compute.within_5_percent);
    }
}
