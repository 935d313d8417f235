//! Which GPUs of a snapshot this binary's engine can drive. A plan that `run` executes may
//! place work only there; `plan` and `check-requirements` show the plan for the build that
//! can use the GPU and, beside it, what this binary would do. Pure: the back-ends built in
//! arrive as a list.

use super::backend::Backend;
use super::{Gpu, Snapshot};

/// The engine back-ends compiled into this binary (Cargo features).
pub fn built_backends() -> Vec<&'static str> {
    [
        ("cuda", cfg!(feature = "cuda")),
        ("vulkan", cfg!(feature = "vulkan")),
        ("metal", cfg!(feature = "metal")),
        ("rocm", cfg!(feature = "rocm")),
    ]
    .into_iter()
    .filter(|b| b.1)
    .map(|b| b.0)
    .collect()
}

/// A GPU this binary cannot use, and why, in words.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Unusable {
    pub gpu: String,
    /// The Cargo feature of a build that could use it (`cuda`, `rocm`, `metal`, `vulkan`),
    /// when this binary lacks it.
    pub needs_feature: Option<String>,
    pub reason: String,
}

fn why(g: &Gpu, built: &[&str]) -> Unusable {
    // The back-end a GPU of this vendor is best driven by (never RPC or CPU).
    let backend = Backend::for_vendor(g.vendor);
    let wanted = backend.feature().unwrap_or("vulkan");
    // Vulkan drives NVIDIA, AMD and Intel GPUs too.
    let has = built.contains(&wanted) || (wanted != "metal" && built.contains(&"vulkan"));
    let described = matches!(g.source.as_str(), "described" | "gpu table");
    let (needs_feature, reason) = if !has {
        let name = backend.label();
        (
            Some(wanted.to_string()),
            format!(
                "this binary has no {name} back-end: rebuild with `--features {wanted}` (install/install.sh picks it)"
            ),
        )
    } else if described {
        (
            None,
            "a described GPU, not a device this binary's engine can run on".to_string(),
        )
    } else {
        (
            None,
            "this binary's engine does not list it (driver or runtime missing?)".to_string(),
        )
    };
    Unusable {
        gpu: g.name.clone(),
        needs_feature,
        reason,
    }
}

/// The snapshot with only the GPUs this binary's engine lists (`engine_device` set), and the
/// GPUs left out with the reason. Unchanged when every GPU is usable.
pub fn for_this_binary(s: &Snapshot, built: &[&str]) -> (Snapshot, Vec<Unusable>) {
    let (keep, drop): (Vec<&Gpu>, Vec<&Gpu>) =
        s.gpus.iter().partition(|g| g.engine_device.is_some());
    let unusable: Vec<Unusable> = drop.iter().map(|g| why(g, built)).collect();
    let mut out = s.clone();
    out.gpus = keep.into_iter().cloned().collect();
    (out, unusable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Bytes;
    use crate::hardware::whatif::{describe, parse_description};
    use crate::hardware::Vendor;

    fn machine(gpu: &str) -> Snapshot {
        let d = parse_description(&format!("ram: 32G\ngpus:\n  - name: {gpu}\n")).unwrap();
        describe(&d, "flags", crate::hardware::cpu::probe()).unwrap()
    }

    #[test]
    fn a_cpu_build_drops_a_described_rtx_4090_and_names_the_cuda_feature() {
        let (s, why) = for_this_binary(&machine("RTX 4090"), &[]);
        assert!(s.gpus.is_empty());
        assert_eq!(why.len(), 1);
        assert_eq!(why[0].needs_feature.as_deref(), Some("cuda"));
        assert!(
            why[0].reason.contains("--features cuda"),
            "{}",
            why[0].reason
        );
    }

    #[test]
    fn a_cuda_build_still_cannot_run_on_a_described_gpu() {
        let (_, why) = for_this_binary(&machine("RTX 4090"), &["cuda"]);
        assert_eq!(why[0].needs_feature, None);
        assert!(why[0].reason.contains("described"));
    }

    #[test]
    fn an_amd_card_found_in_sysfs_needs_rocm_or_vulkan() {
        let mut m = machine("RTX 4090");
        m.gpus[0].vendor = Vendor::Amd;
        m.gpus[0].source = "sysfs".into();
        let (s, why) = for_this_binary(&m, &[]);
        assert!(s.gpus.is_empty());
        assert_eq!(why[0].needs_feature.as_deref(), Some("rocm"));
        // A Vulkan build drives it; when its engine still does not list it, that is the reason.
        let (_, why) = for_this_binary(&m, &["vulkan"]);
        assert_eq!(why[0].needs_feature, None);
        assert!(
            why[0].reason.contains("does not list it"),
            "{}",
            why[0].reason
        );
    }

    #[test]
    fn an_engine_listed_gpu_is_kept() {
        let mut m = machine("RTX 4090");
        m.gpus[0].engine_device = Some("CUDA0".into());
        m.gpus[0].vram_free_bytes = Bytes(1 << 30);
        let (s, why) = for_this_binary(&m, &["cuda"]);
        assert_eq!(s, m);
        assert!(why.is_empty());
    }
}
