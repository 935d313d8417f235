//! Which llama.cpp back-end drives a device, and what that back-end's own runtime takes on
//! the device before llama.cpp allocates any buffer: the back-end reserve that every GPU
//! budget keeps (`plan::budget`). Plain data: each figure names its source here and in
//! docs/hardware.md ("Back-end reserves").

use super::{Gpu, Vendor};
use crate::bytes::Bytes;
use serde::{Deserialize, Serialize};

const MIB: u64 = 1 << 20;

/// A llama.cpp back-end, as the bundled engine names its devices (`CUDA0`, `ROCm0`, `MTL0`,
/// `Vulkan0`, `RPC0`) or as `install/install.sh` would build it for a GPU of this vendor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cuda,
    Rocm,
    Metal,
    Vulkan,
    /// A device of an RPC server (`--rpc`): its own back-end runs on the server.
    Rpc,
    Cpu,
}

/// The CUDA runtime's per-device overhead before any llama.cpp buffer: ollama keeps 457 MiB
/// on every CUDA device for the llama.cpp runner it starts (`cudaMinimumMemory`,
/// ollama/ollama `discover/gpu.go`; its scheduler logs it as `minimum="457.0 MiB"`,
/// ollama/ollama#13303, 2025-12). Its free figure is read before the runner exists, so the
/// figure is the runner's whole context. It agrees with NVIDIA's account of a context: about
/// 300 MB since CUDA 11.7 loads kernels lazily (more than 1000 MB before; Piotr Bialecki of
/// NVIDIA, pytorch/pytorch#107667), plus cuBLAS's workspace (4 MiB, 32 MiB on Hopper: cuBLAS
/// API reference, `cublasSetWorkspace`) and the kernels llama.cpp loads as it first uses them.
pub const CUDA_RESERVE: Bytes = Bytes(457 * MIB);
/// HIP's per-device overhead: ollama keeps the same 457 MiB on every ROCm device
/// (`rocmMinimumMemory`, ollama/ollama `discover/gpu.go`; later `devInfoToInfoList` in the
/// same package sets `MinimumMemory` to 457 MiB for `CUDA` and `ROCm` devices alike).
pub const ROCM_RESERVE: Bytes = Bytes(457 * MIB);
/// Metal's per-device overhead (command queue, the compiled library's pipelines, residency
/// sets) inside the working set: ollama keeps 512 MiB of every Apple GPU's
/// `recommendedMaxWorkingSetSize` for it (`metalMinimumMemory`, ollama/ollama
/// `discover/gpu_darwin.go`).
pub const METAL_RESERVE: Bytes = Bytes(512 * MIB);
/// llama.cpp's Vulkan back-end allocates no device memory when it creates its device: its only
/// allocations outside llama.cpp's buffer types are the scratch buffers it sizes at the first
/// graph (`prealloc_x`, `prealloc_y`, `prealloc_split_k`, `prealloc_add_rms_partials` in
/// `ggml-vulkan.cpp` of the vendored llama.cpp), which the VRAM margin covers with the other
/// run-time allocations; its shaders take "negligible space in VRAM" (0cc4m, the back-end's
/// maintainer, ggml-org/llama.cpp#11339). ollama keeps nothing on Vulkan devices either
/// (`devInfoToInfoList`, ollama/ollama `discover`, sets `MinimumMemory` for CUDA and ROCm
/// only: "TODO any special processing of Vulkan devices?").
pub const VULKAN_RESERVE: Bytes = Bytes::ZERO;

impl Backend {
    /// The back-end of an engine device name, by ggml's prefixes (`GGML_CUDA_NAME` is `CUDA`
    /// or `ROCm`, `GGML_METAL_NAME` is `MTL`, ggml-vulkan's `Vulkan`, ggml-rpc's `RPC`).
    pub fn of_device(name: &str) -> Option<Backend> {
        [
            ("CUDA", Backend::Cuda),
            ("ROCm", Backend::Rocm),
            ("MTL", Backend::Metal),
            ("Vulkan", Backend::Vulkan),
            ("RPC", Backend::Rpc),
            ("CPU", Backend::Cpu),
        ]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, b)| b)
    }

    /// The back-end `install/install.sh` builds for a GPU of this vendor (Vulkan drives
    /// the rest).
    pub fn for_vendor(vendor: Vendor) -> Backend {
        match vendor {
            Vendor::Nvidia => Backend::Cuda,
            Vendor::Amd => Backend::Rocm,
            Vendor::Apple => Backend::Metal,
            Vendor::Intel | Vendor::Other => Backend::Vulkan,
        }
    }

    /// The back-end that drives (or, for a described GPU or one this build cannot use, would
    /// drive) `g`: its engine device's, a remote server's, else its vendor's.
    pub fn of(g: &Gpu) -> Backend {
        if g.remote.is_some() {
            return Backend::Rpc;
        }
        g.engine_device
            .as_deref()
            .and_then(Backend::of_device)
            .unwrap_or_else(|| Backend::for_vendor(g.vendor))
    }

    /// What the back-end's runtime takes on each device it drives before llama.cpp allocates
    /// any buffer (the constants above give the sources). A remote device's runtime is the
    /// server's, already out of what the server offers; the CPU back-end has no device
    /// context (the host keeps the OS reserve instead).
    pub fn reserve(self) -> Bytes {
        match self {
            Backend::Cuda => CUDA_RESERVE,
            Backend::Rocm => ROCM_RESERVE,
            Backend::Metal => METAL_RESERVE,
            Backend::Vulkan => VULKAN_RESERVE,
            Backend::Rpc | Backend::Cpu => Bytes::ZERO,
        }
    }

    /// Whether the back-end's own memory query creates its context before it answers: ggml's
    /// CUDA and HIP devices call `cudaSetDevice`/`hipSetDevice` and then
    /// `cudaMemGetInfo`/`hipMemGetInfo` (`ggml_backend_cuda_device_get_memory`), so the free
    /// memory they report already lacks the context. Vulkan reads the physical device's
    /// memory budget (`VK_EXT_memory_budget`, no logical device needed) and Metal its working
    /// set less what this process allocated: neither holds the context.
    pub fn query_creates_context(self) -> bool {
        matches!(self, Backend::Cuda | Backend::Rocm)
    }

    /// The Cargo feature of a layerfit build with this back-end (`None`: always built).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Backend::Cuda => Some("cuda"),
            Backend::Rocm => Some("rocm"),
            Backend::Metal => Some("metal"),
            Backend::Vulkan => Some("vulkan"),
            Backend::Rpc | Backend::Cpu => None,
        }
    }

    /// For people: what a GPU budget keeps for this back-end's context, given the reserve it
    /// applied (`plan::backend_reserve`); `None` when the back-end has none to keep.
    pub fn reserve_note(self, applied: Bytes) -> Option<String> {
        if applied > Bytes::ZERO {
            Some(format!("{applied} kept for the {} context", self.label()))
        } else if self.reserve() > Bytes::ZERO {
            Some(format!(
                "the {} context is already out of its free memory",
                self.label()
            ))
        } else {
            None
        }
    }

    /// For people: `CUDA`, `ROCm`, `Metal`, `Vulkan`, `RPC`, `CPU`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Cuda => "CUDA",
            Backend::Rocm => "ROCm",
            Backend::Metal => "Metal",
            Backend::Vulkan => "Vulkan",
            Backend::Rpc => "RPC",
            Backend::Cpu => "CPU",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_backend_has_its_sourced_reserve() {
        assert_eq!(Backend::Cuda.reserve(), Bytes(457 << 20));
        assert_eq!(Backend::Rocm.reserve(), Bytes(457 << 20));
        assert_eq!(Backend::Metal.reserve(), Bytes(512 << 20));
        assert_eq!(Backend::Vulkan.reserve(), Bytes::ZERO);
        assert_eq!(Backend::Rpc.reserve(), Bytes::ZERO);
        assert_eq!(Backend::Cpu.reserve(), Bytes::ZERO);
        // NVIDIA's ~300 MB lazily loaded context fits inside the CUDA figure, with room for
        // Hopper's 32 MiB cuBLAS workspace.
        assert!(Backend::Cuda.reserve() > Bytes((300_000_000) + (32 << 20)));
    }

    #[test]
    fn engine_device_names_and_vendors_pick_the_backend() {
        assert_eq!(Backend::of_device("CUDA0"), Some(Backend::Cuda));
        assert_eq!(Backend::of_device("ROCm1"), Some(Backend::Rocm));
        assert_eq!(Backend::of_device("MTL0"), Some(Backend::Metal));
        assert_eq!(Backend::of_device("Vulkan0"), Some(Backend::Vulkan));
        assert_eq!(
            Backend::of_device("RPC0[127.0.0.1:50052]"),
            Some(Backend::Rpc)
        );
        assert_eq!(Backend::of_device("BLAS"), None);
        let mut g = Gpu::new(
            "NVIDIA GeForce RTX 4060".into(),
            Vendor::Nvidia,
            Bytes(8 << 30),
            Bytes(8 << 30),
            "gpu table",
        );
        assert_eq!(Backend::of(&g), Backend::Cuda, "install.sh builds CUDA");
        g.engine_device = Some("Vulkan0".into());
        assert_eq!(Backend::of(&g), Backend::Vulkan, "a Vulkan build drives it");
        g.remote = Some(crate::hardware::RemoteLink {
            endpoint: "10.0.0.2:50052".into(),
            device_index: 0,
            description: String::new(),
            round_trip_ms: None,
            network_gbps: None,
        });
        assert_eq!(Backend::of(&g), Backend::Rpc);
        assert_eq!(Backend::for_vendor(Vendor::Apple), Backend::Metal);
        assert_eq!(Backend::for_vendor(Vendor::Intel), Backend::Vulkan);
    }

    #[test]
    fn the_note_says_what_was_kept_or_why_nothing_was() {
        let kept = Backend::Cuda.reserve_note(Bytes(457 << 20)).unwrap();
        assert!(kept.contains("457") && kept.contains("CUDA"), "{kept}");
        let out = Backend::Cuda.reserve_note(Bytes::ZERO).unwrap();
        assert!(out.contains("already out"), "{out}");
        assert_eq!(Backend::Vulkan.reserve_note(Bytes::ZERO), None);
        assert_eq!(Backend::Rpc.reserve_note(Bytes::ZERO), None);
    }

    #[test]
    fn only_cuda_and_hip_queries_hold_the_context() {
        assert!(Backend::Cuda.query_creates_context());
        assert!(Backend::Rocm.query_creates_context());
        for b in [Backend::Metal, Backend::Vulkan, Backend::Rpc, Backend::Cpu] {
            assert!(!b.query_creates_context(), "{b:?}");
        }
    }
}
