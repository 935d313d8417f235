use layerfit::engine::ggml_bench::CpuBackend;
use layerfit::ggml_type::GgmlType as T;
use std::time::Duration;
fn main() {
    let b = Duration::from_millis(400);
    for threads in [1u32, 2] {
        let be = CpuBackend::new(threads).unwrap();
        for ty in [T::F16, T::Q8_0, T::Q4_0, T::Q4_1, T::Q4K, T::Q5_0, T::Q6K] {
            for (m, copies) in [(1024u64, 4usize), (4096, 8), (4096, 32)] {
                let k = 1024u64 * 2;
                let bytes = ty.row_size(k).unwrap().get() as f64 * m as f64 * copies as f64;
                let t = be.mul_mat(ty, k, m, 1, copies, b).unwrap();
                let tp = be.mul_mat(ty, k, m, 512, 1, b).unwrap();
                let flops = 2.0 * k as f64 * m as f64 * 512.0;
                println!("thr {threads} {:5} ws {:6.1} MB  matvec {:6.2} GB/s  matmul512 {:6.1} GFLOP/s", ty.name(), bytes / 1e6, bytes / t / 1e9, flops / tp / 1e9);
            }
        }
        for kv in [T::F16, T::Q8_0, T::Q4_0] {
            for (d, h, hkv, nkv, nq) in [(64u64, 9u64, 3u64, 4096u64, 1u64), (64, 9, 3, 16384, 1), (256, 4, 1, 4096, 1), (64, 9, 3, 4096, 512)] {
                let t = be.flash_attn(kv, d, h, hkv, nkv, nq, b).unwrap();
                println!("thr {threads} fa {:5} d{d} h{h}/{hkv} kv{nkv} q{nq}: {:.3} ms  {:.3} ns/(q*h*cell*d)", kv.name(), t * 1e3, t * 1e9 / (nq * h * nkv * d) as f64);
            }
        }
        for w in [576u64, 4096] {
            println!("thr {threads} node w{w}: {:.2} us", be.tiny_nodes(1000, w, b).unwrap() * 1e6);
        }
    }
}
