//! The CPU: model, cores, SIMD features, and a short memory-bandwidth measurement used by
//! the speed model. The measurement takes at most ~300 ms and is cached per boot.

use super::Cpu;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn probe() -> Cpu {
    let mut sys = sysinfo::System::new().ok();
    if let Some(s) = sys.as_mut() {
        s.refresh_cpu_all();
    }
    let cpus = sys.as_ref().map(|s| s.cpus()).unwrap_or(&[]);
    let model = cpus
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let logical = cpus.len().max(1);
    Cpu {
        model,
        physical_cores: sysinfo::System::physical_core_count().unwrap_or(logical),
        logical_cores: logical,
        simd: simd_features(),
        memory_bandwidth_gbps: None,
        frequency_ghz: cpus
            .first()
            .map(|c| c.frequency() as f64 / 1000.0)
            .filter(|&g| g > 0.0),
    }
}

/// SIMD extensions llama.cpp's CPU kernels use.
pub fn simd_features() -> Vec<String> {
    #[allow(unused_mut)]
    let mut v: Vec<String> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! f {
            ($($name:tt),*) => { $( if std::is_x86_feature_detected!($name) { v.push($name.to_string()); } )* };
        }
        f!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vnni",
            "avx512bf16"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! f {
            ($($name:tt),*) => { $( if std::arch::is_aarch64_feature_detected!($name) { v.push($name.to_string()); } )* };
        }
        f!("neon", "dotprod", "i8mm", "sve", "sve2", "fp16");
    }
    v
}

/// Reads a 64 MiB buffer repeatedly for up to `budget` and returns GB/s (the best pass).
pub fn measure_bandwidth(budget: Duration) -> f64 {
    let words = 8 << 20; // 64 MiB of u64
    let buf: Vec<u64> = (0..words as u64).collect();
    let start = Instant::now();
    let mut best = 0.0f64;
    while start.elapsed() < budget {
        let t = Instant::now();
        let mut acc = 0u64;
        for chunk in buf.chunks_exact(8) {
            acc = acc.wrapping_add(
                chunk[0]
                    ^ chunk[1]
                    ^ chunk[2]
                    ^ chunk[3]
                    ^ chunk[4]
                    ^ chunk[5]
                    ^ chunk[6]
                    ^ chunk[7],
            );
        }
        std::hint::black_box(acc);
        let secs = t.elapsed().as_secs_f64();
        best = best.max((words * 8) as f64 / secs / 1e9);
    }
    best
}

/// The bandwidth for this boot: cached in `cache_dir` under the kernel's boot id, measured
/// (about 200 ms, at most ~300 ms) when absent. `None` when there is no boot id to key the cache on and
/// `measure` is false.
pub fn bandwidth_cached(cache_dir: &Path, measure: bool) -> Option<f64> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string());
    let file = boot
        .as_ref()
        .map(|b| cache_dir.join(format!("bandwidth-{b}")));
    if let Some(v) = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .and_then(|s| s.trim().parse().ok())
    {
        return Some(v);
    }
    if !measure {
        return None;
    }
    let v = measure_bandwidth(Duration::from_millis(200));
    let Some(f) = file else { return Some(v) };
    // Processes started together all measure; the first to publish its figure wins and the
    // others use it, so every plan of this boot sees the same bandwidth.
    let _ = std::fs::create_dir_all(cache_dir);
    let tmp = f.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, format!("{v:.2}\n")).is_ok() {
        let _ = std::fs::hard_link(&tmp, &f);
        let _ = std::fs::remove_file(&tmp);
    }
    std::fs::read_to_string(&f)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .or(Some(v))
}
