//! Time of a full hardware probe (RAM + cgroup, NVML, sysfs, wgpu adapters, disk, CPU),
//! everything but the bandwidth measurement. Target: <= 300 ms.
//! Run: `cargo bench --bench probe`.

use layerfit::hardware::probe::{probe, ProbeOptions};
use std::time::Instant;

fn main() {
    let opts = ProbeOptions {
        bandwidth: false,
        ..ProbeOptions::default()
    };
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(probe(&opts));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let first = times[0];
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "full probe (no bandwidth): first {first:.1} ms, median {:.1} ms, max {:.1} ms over {} runs",
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    let no_gpu_stack = ProbeOptions {
        bandwidth: false,
        adapters: false,
        ..ProbeOptions::default()
    };
    let t = Instant::now();
    std::hint::black_box(probe(&no_gpu_stack));
    println!(
        "probe without wgpu adapters: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let bw = layerfit::hardware::cpu::measure_bandwidth(std::time::Duration::from_millis(200));
    println!(
        "bandwidth measurement: {bw:.1} GB/s in {:.0} ms (cached per boot afterwards)",
        t.elapsed().as_secs_f64() * 1e3
    );
}
