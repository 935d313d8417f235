//! Tensor contents for the kernel timings of `ggml_bench`: values drawn as a real model's
//! are (normally distributed, weights in blocks whose scales spread as real files' do, then
//! converted or quantized by ggml's own quantizer). Why: on this project's bench machine
//! the same kernels ran at speeds that depend on the values. SmolLM2's exact shapes in the
//! engine, 1 thread: 7.4 ms a decode step over zero weights or a low-entropy fill, 11.3 ms
//! over the real file's bytes (11.8 ms with those bytes copied into the synthetic model).
//! The real files with their weights redrawn: plain normal values ran 9-21% (SmolLM2) and
//! 4-22% (Gemma 3) faster than the real bytes, and the step slows steadily as the blocks'
//! scales spread more; the spread used here (the natural log of a block's scale varies
//! with a standard deviation of about 0.3, as in SmolLM2's (0.28, the median over its bytes)
//! and Gemma 3's (0.37) files, where plain normal values give 0.17) ran within -15% to +4%
//! of the real bytes on both.

use llama_cpp_sys_2 as sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::rc::Rc;

/// What a tensor holds, by role: the spread of its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Weights (standard deviation 0.02, as initialised and trained models keep them).
    Weights,
    /// Activations, queries and cache entries (standard deviation 1).
    Activations,
}

impl Role {
    fn std_dev(self) -> f32 {
        match self {
            Role::Weights => 0.02,
            Role::Activations => 1.0,
        }
    }

    /// Half-width of the uniform spread of ln(scale) between blocks of 32 values: 0.43
    /// adds a standard deviation of 0.25 to the 0.17 normal blocks have (0.3 in all).
    fn block_log_spread(self) -> f64 {
        match self {
            Role::Weights => 0.43,
            Role::Activations => 0.0,
        }
    }
}

/// Values per block whose scale is drawn once (the quantized types' block size).
const BLOCK: usize = 32;

type Key = (sys::ggml_type, i64, i64, Role);

/// The bytes of each (type, row length, rows, role) drawn once and reused by every copy of
/// that shape: drawing and quantizing is slower than the timings it feeds.
#[derive(Default)]
pub struct Contents {
    drawn: RefCell<HashMap<Key, Rc<Vec<u8>>>>,
}

impl Contents {
    /// Writes values of `role` into `t` (any type ggml can quantize without an importance
    /// matrix), through its buffer's own setter (so repacked weights are repacked as
    /// llama.cpp's loader repacks them). `None` when ggml cannot produce the type.
    ///
    /// # Safety
    /// `t` must be an allocated tensor.
    pub unsafe fn fill(&self, t: *mut sys::ggml_tensor, role: Role) -> Option<()> {
        let ty = (*t).type_;
        let per_row = (*t).ne[0];
        let n = sys::ggml_nelements(t);
        if n <= 0 || per_row <= 0 {
            return Some(());
        }
        let rows = n / per_row;
        let whole_blocks = per_row % sys::ggml_blck_size(ty).max(1) == 0;
        if !whole_blocks || sys::ggml_quantize_requires_imatrix(ty) {
            return None;
        }
        let nbytes = sys::ggml_nbytes(t);
        let bytes = self.bytes((ty, per_row, rows, role), nbytes)?;
        sys::ggml_backend_tensor_set(t, bytes.as_ptr() as *const c_void, 0, nbytes);
        Some(())
    }

    fn bytes(&self, key: Key, nbytes: usize) -> Option<Rc<Vec<u8>>> {
        if let Some(b) = self.drawn.borrow().get(&key) {
            return Some(b.clone());
        }
        let (ty, per_row, rows, role) = key;
        let mut rng = Normal::new(key_seed(&key));
        let mut values = vec![0f32; (per_row * rows) as usize];
        let spread = role.block_log_spread();
        for block in values.chunks_mut(BLOCK) {
            let scale = role.std_dev() * ((rng.uniform() * 2.0 - 1.0) * spread).exp() as f32;
            for v in block {
                *v = rng.sample() * scale;
            }
        }
        let mut bytes = vec![0u8; nbytes];
        let written = if ty == sys::GGML_TYPE_F32 {
            for (b, v) in bytes.chunks_exact_mut(4).zip(&values) {
                b.copy_from_slice(&v.to_ne_bytes());
            }
            values.len() * 4
        } else {
            // SAFETY: a size computation; `per_row` is whole blocks of `ty` (`fill` checks),
            // as the call asserts.
            let row_size = unsafe { sys::ggml_row_size(ty, per_row) };
            if row_size * rows as usize != nbytes {
                return None;
            }
            // SAFETY: the call reads the `rows * per_row` floats of `values` and writes `rows`
            // rows of `ty`, `nbytes` bytes (checked just above), into `bytes`; both outlive
            // it. `ty` needs no importance matrix (`fill` checks), so the null one is allowed.
            unsafe {
                sys::ggml_quantize_chunk(
                    ty,
                    values.as_ptr(),
                    bytes.as_mut_ptr() as *mut c_void,
                    0,
                    rows,
                    per_row,
                    std::ptr::null(),
                )
            }
        };
        if written != nbytes {
            return None;
        }
        let bytes = Rc::new(bytes);
        self.drawn.borrow_mut().insert(key, bytes.clone());
        Some(bytes)
    }
}

fn key_seed(key: &Key) -> u64 {
    let (ty, per_row, rows, role) = *key;
    (ty as u64) << 48 ^ (per_row as u64) << 24 ^ rows as u64 ^ (role as u64) << 60
}

/// Standard normal values (SplitMix64 and Box-Muller): reproducible, no dependency.
struct Normal {
    state: u64,
    spare: Option<f32>,
}

impl Normal {
    fn new(seed: u64) -> Normal {
        Normal {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits in (0, 1].
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f32 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let a = std::f64::consts::TAU * v;
        self.spare = Some((r * a.sin()) as f32);
        (r * a.cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills a tensor of `ty` through a CPU buffer, reads it back and decodes it with ggml's
    /// own converter: (mean, standard deviation, share of zeros, standard deviation of the
    /// natural log of each 32-value block's largest magnitude).
    fn filled_values(ty: sys::ggml_type, role: Role) -> (f64, f64, f64, f64) {
        crate::engine::measure::init_backend();
        // SAFETY: the context (checked non-null) owns room for four tensor headers and no
        // data (no_alloc); `t` is its one tensor, which the CPU buffer then holds, so `fill`
        // gets an allocated tensor. `raw` has the tensor's `ggml_nbytes`, all
        // `ggml_backend_tensor_get` writes; for F32 those are the `n` floats' own 4 * `n`
        // bytes, else `to_float`, `ty`'s own converter, reads them as `n` values and writes
        // `n` floats into `values`. The buffer and the context are freed once, after the last
        // use of `t`.
        let values = unsafe {
            let ctx = sys::ggml_init(sys::ggml_init_params {
                mem_size: sys::ggml_tensor_overhead() * 4,
                mem_buffer: std::ptr::null_mut(),
                no_alloc: true,
            });
            assert!(!ctx.is_null());
            let t = sys::ggml_new_tensor_2d(ctx, ty, 2048, 64);
            let buf = sys::ggml_backend_alloc_ctx_tensors_from_buft(
                ctx,
                sys::ggml_backend_cpu_buffer_type(),
            );
            assert!(!buf.is_null());
            let contents = Contents::default();
            contents.fill(t, role).expect("fill");
            let n = sys::ggml_nelements(t) as usize;
            let mut raw = vec![0u8; sys::ggml_nbytes(t)];
            sys::ggml_backend_tensor_get(t, raw.as_mut_ptr() as *mut c_void, 0, raw.len());
            let mut values = vec![0f32; n];
            if ty == sys::GGML_TYPE_F32 {
                std::ptr::copy_nonoverlapping(raw.as_ptr(), values.as_mut_ptr() as *mut u8, n * 4);
            } else {
                let to_float = (*sys::ggml_get_type_traits(ty)).to_float.expect("to_float");
                to_float(raw.as_ptr() as *const c_void, values.as_mut_ptr(), n as i64);
            }
            sys::ggml_backend_buffer_free(buf);
            sys::ggml_free(ctx);
            values
        };
        let n = values.len();
        let log_max: Vec<f64> = values
            .chunks(BLOCK)
            .map(|b| {
                b.iter()
                    .fold(0f64, |m, &v| m.max(v.abs() as f64))
                    .max(1e-30)
                    .ln()
            })
            .collect();
        let lm = log_max.iter().sum::<f64>() / log_max.len() as f64;
        let block_spread =
            (log_max.iter().map(|x| (x - lm).powi(2)).sum::<f64>() / log_max.len() as f64).sqrt();
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n as f64;
        let zeros = values.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
        (mean, var.sqrt(), zeros, block_spread)
    }

    #[test]
    fn weights_and_caches_hold_values_spread_as_a_real_models() {
        // Weights: 0.02 x the mean square of exp(U(-0.43, 0.43)), sinh(0.86) / 0.86; block
        // scales' log spread about 0.3 (real files: 0.28 and 0.37; plain normal: 0.17).
        let weights = 0.02 * (0.86f64.sinh() / 0.86).sqrt();
        for (ty, role, spread, blocks) in [
            (sys::GGML_TYPE_Q4_K, Role::Weights, weights, 0.25..0.36),
            (sys::GGML_TYPE_Q4_1, Role::Weights, weights, 0.25..0.36),
            (sys::GGML_TYPE_Q8_0, Role::Weights, weights, 0.25..0.36),
            (sys::GGML_TYPE_F16, Role::Activations, 1.0, 0.1..0.22),
            (sys::GGML_TYPE_F32, Role::Activations, 1.0, 0.1..0.22),
        ] {
            let (mean, std, zeros, block_spread) = filled_values(ty, role);
            assert!(mean.abs() < spread * 0.05, "type {ty}: mean {mean}");
            assert!((std / spread - 1.0).abs() < 0.05, "type {ty}: spread {std}");
            assert!(
                blocks.contains(&block_spread),
                "type {ty}: block scales' log spread {block_spread}"
            );
            // A 4-bit grid puts some values on zero, never most of them.
            assert!(zeros < 0.2, "type {ty}: {:.0}% zeros", zeros * 100.0);
        }
    }

    #[test]
    fn normal_values_have_unit_spread_and_no_repeats() {
        let mut n = Normal::new(7);
        let v: Vec<f32> = (0..100_000).map(|_| n.sample()).collect();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.02, "mean {mean}");
        assert!((var - 1.0).abs() < 0.03, "variance {var}");
        let mut bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        assert!(bits.len() > 99_000, "{} distinct of 100000", bits.len());
    }
}
