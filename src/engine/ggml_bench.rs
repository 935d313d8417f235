//! Timing single ggml operations on the CPU back-end of the bundled engine: matrix products
//! of each weight type (in the buffer type llama.cpp would load them into, repacked where it
//! repacks), flash attention over a KV cache of each cache type, and graphs of tiny nodes
//! (the per-node cost of a decode step).
//! `calibrate` turns these into the speed model's figures; nothing here knows about models.

use super::bench_data::{Contents, Role};
use super::measure::init_backend;
use crate::ggml_type::GgmlType;
use llama_cpp_sys_2 as sys;
use std::ffi::c_void;
use std::rc::Rc;
use std::time::{Duration, Instant};

type ExtraBufts =
    unsafe extern "C" fn(sys::ggml_backend_dev_t) -> *mut sys::ggml_backend_buffer_type_t;

/// The engine's CPU back-end at a thread count, with the weight buffer types llama.cpp
/// tries first (its "extra" types: repacked layouts for the CPU's SIMD kernels).
pub struct CpuBackend {
    backend: sys::ggml_backend_t,
    dev: sys::ggml_backend_dev_t,
    extra: Vec<sys::ggml_backend_buffer_type_t>,
    contents: Rc<Contents>,
}

impl CpuBackend {
    pub fn new(threads: u32) -> Option<CpuBackend> {
        Self::with_contents(threads, Rc::default())
    }

    /// The same, drawing tensor contents from `contents` (shared between thread counts, so
    /// each shape is drawn and held once).
    pub fn with_contents(threads: u32, contents: Rc<Contents>) -> Option<CpuBackend> {
        init_backend();
        // SAFETY: the engine is initialised (above); the call returns a new CPU backend or
        // null. A non-null one is owned by the `CpuBackend` built below and freed once, in its
        // `Drop`.
        let backend = unsafe { sys::ggml_backend_cpu_init() };
        if backend.is_null() {
            return None;
        }
        // SAFETY: `backend` is the live CPU backend just made (the thread setter asserts it is
        // one); its device and that device's registry are ggml's static CPU ones, alive for
        // the whole process.
        let (dev, reg) = unsafe {
            sys::ggml_backend_cpu_set_n_threads(backend, threads.max(1) as i32);
            let dev = sys::ggml_backend_get_device(backend);
            (dev, sys::ggml_backend_dev_backend_reg(dev))
        };
        let mut extra = Vec::new();
        // SAFETY: `reg` is the live CPU registry; the name is a NUL-terminated literal it only
        // compares with the names of the functions it exports.
        let f = unsafe {
            sys::ggml_backend_reg_get_proc_address(
                reg,
                c"ggml_backend_dev_get_extra_bufts".as_ptr(),
            )
        };
        if !f.is_null() {
            // SAFETY: under this name the CPU registry returns
            // `ggml_backend_cpu_device_get_extra_buffers_type` (ggml-cpu.cpp), stored as a
            // `ggml_backend_dev_get_extra_bufts_t`, declared in ggml-backend.h as
            // `ggml_backend_buffer_type_t * (*)(ggml_backend_dev_t device)`: `ExtraBufts` is
            // that signature. It is non-null (checked) and belongs to the linked engine.
            let f = unsafe { std::mem::transmute::<*mut c_void, ExtraBufts>(f) };
            // SAFETY: `dev` is the CPU device the function belongs to. It returns the start of
            // a static array (a function-local static vector) that ends with a null entry and
            // lives for the whole process, so every read stops inside the array.
            unsafe {
                let mut p = f(dev);
                while !p.is_null() && !(*p).is_null() {
                    extra.push(*p);
                    p = p.add(1);
                }
            }
        }
        Some(CpuBackend {
            backend,
            dev,
            extra,
            contents,
        })
    }

    /// Seconds for `y = W x` with W of `ty` (`k` x `m`, `copies` distinct matrices used in
    /// turn, so the working set is `copies` times one matrix) and x of `n_tokens` columns.
    pub fn mul_mat(
        &self,
        ty: GgmlType,
        k: u64,
        m: u64,
        n_tokens: u64,
        copies: usize,
        budget: Duration,
    ) -> Option<f64> {
        if !k.is_multiple_of(ty.block_size()) {
            return None;
        }
        let mut g = Graph::new(copies * 3 + 8)?;
        // SAFETY: `g.ctx` is a live no_alloc context with room for these tensors (`Graph::new`
        // sized it; ggml aborts rather than overruns a full context or graph). The calls only
        // describe tensors in it, which live as long as `g`; every tensor passed on is one of
        // them. The weights are allocated, filled and the outputs added to `g`'s graph as the
        // unsafe helpers' contracts ask: `weight_buft` gets an unallocated weight and the
        // product that reads it, `alloc_weights` unallocated weights, `fill` allocated ones.
        unsafe {
            let weights: Vec<_> = (0..copies)
                .map(|_| sys::ggml_new_tensor_2d(g.ctx, ty.id(), k as i64, m as i64))
                .collect();
            let mut x =
                sys::ggml_new_tensor_2d(g.ctx, sys::GGML_TYPE_F32, k as i64, n_tokens as i64);
            g.inputs.push(x);
            let mut outs = Vec::new();
            for &w in &weights {
                let y = sys::ggml_mul_mat(g.ctx, w, x);
                outs.push(y);
                x = sys::ggml_new_tensor_2d(g.ctx, sys::GGML_TYPE_F32, k as i64, n_tokens as i64);
                g.inputs.push(x);
            }
            let buft = self.weight_buft(weights[0], outs[0]);
            g.alloc_weights(&weights, buft)?;
            for &w in &weights {
                self.contents.fill(w, Role::Weights)?;
            }
            for y in outs {
                g.expand(y);
            }
        }
        g.run(self, budget)
    }

    /// Seconds for `shape.copies` flash-attention ops (one per layer, each over its own
    /// cache, so the working set is the copies' caches together).
    pub fn flash_attn(&self, shape: &AttnShape, budget: Duration) -> Option<f64> {
        let AttnShape {
            kv,
            head_dim,
            n_head,
            n_head_kv,
            n_kv,
            n_q,
            copies,
        } = *shape;
        let mut g = Graph::new(8 + copies * 8)?;
        // SAFETY: `g.ctx` is a live no_alloc context with room for these tensors (`Graph::new`
        // sized it; ggml aborts rather than overruns a full context or graph). The calls only
        // describe tensors and views in it, which live as long as `g`; every tensor passed on
        // is one of them, and `ggml_flash_attn_ext_set_prec` gets the flash-attention node it
        // expects.
        unsafe {
            let d = head_dim as i64;
            let q =
                sys::ggml_new_tensor_3d(g.ctx, sys::GGML_TYPE_F32, d, n_q as i64, n_head as i64);
            let mask = sys::ggml_new_tensor_2d(g.ctx, sys::GGML_TYPE_F16, n_kv as i64, n_q as i64);
            // The mask stays at the buffer's zeros: every cell visible.
            g.inputs.push(q);
            for _ in 0..copies.max(1) {
                // As llama.cpp's cache holds them: one row of all KV heads per cell, viewed
                // per head (each head's cells strided by the whole row).
                let kc = sys::ggml_new_tensor_3d(g.ctx, kv.id(), d, n_head_kv as i64, n_kv as i64);
                let vc = sys::ggml_new_tensor_3d(g.ctx, kv.id(), d, n_head_kv as i64, n_kv as i64);
                g.inputs.extend([kc, vc]);
                let k = sys::ggml_permute(g.ctx, kc, 0, 2, 1, 3);
                let v = sys::ggml_permute(g.ctx, vc, 0, 2, 1, 3);
                let out = sys::ggml_flash_attn_ext(
                    g.ctx,
                    q,
                    k,
                    v,
                    mask,
                    1.0 / (d as f32).sqrt(),
                    0.0,
                    0.0,
                );
                sys::ggml_flash_attn_ext_set_prec(out, sys::GGML_PREC_F32);
                g.expand(out);
            }
        }
        g.run(self, budget)
    }

    /// Seconds per node of a chain of `n` element-wise ops on `width`-wide rows: the cost a
    /// decode step pays per graph node (thread wake-up and barrier) whatever the work.
    pub fn tiny_nodes(&self, n: usize, width: u64, budget: Duration) -> Option<f64> {
        let mut g = Graph::new(n + 8)?;
        // SAFETY: `g.ctx` is a live no_alloc context with room for these `n + 2` tensors
        // (`Graph::new`; ggml aborts rather than overruns a full context or graph); the calls
        // only describe tensors in it, and every tensor passed on is one of them.
        unsafe {
            let a = sys::ggml_new_tensor_1d(g.ctx, sys::GGML_TYPE_F32, width as i64);
            let b = sys::ggml_new_tensor_1d(g.ctx, sys::GGML_TYPE_F32, width as i64);
            g.inputs.extend([a, b]);
            let mut x = a;
            for _ in 0..n {
                x = sys::ggml_add(g.ctx, x, b);
            }
            g.expand(x);
        }
        g.run(self, budget).map(|t| t / n as f64)
    }

    /// Seconds for `nodes` feed-forward activations (llama.cpp's split GLU: GELU-gated for
    /// the gemma family and other GELU models, SiLU-gated otherwise) over `width` x `tokens`
    /// gate and up values, each node on its own inputs as each block's is.
    pub fn ffn_activation(
        &self,
        gelu: bool,
        width: u64,
        tokens: u64,
        nodes: usize,
        budget: Duration,
    ) -> Option<f64> {
        let mut g = Graph::new(nodes * 3 + 8)?;
        // SAFETY: `g.ctx` is a live no_alloc context with room for these `3 * nodes` tensors
        // (`Graph::new`; ggml aborts rather than overruns a full context or graph); the calls
        // only describe tensors in it, and every tensor passed on is one of them.
        unsafe {
            for _ in 0..nodes {
                let [gate, up] = [0; 2].map(|_| {
                    sys::ggml_new_tensor_2d(g.ctx, sys::GGML_TYPE_F32, width as i64, tokens as i64)
                });
                g.inputs.extend([gate, up]);
                let y = if gelu {
                    sys::ggml_geglu_split(g.ctx, gate, up)
                } else {
                    sys::ggml_swiglu_split(g.ctx, gate, up)
                };
                g.expand(y);
            }
        }
        g.run(self, budget)
    }

    /// The first buffer type llama.cpp would load this weight into for this op.
    ///
    /// # Safety
    /// `w` is an unallocated tensor of a live context and `op` a tensor of it that reads `w`.
    unsafe fn weight_buft(
        &self,
        w: *mut sys::ggml_tensor,
        op: *mut sys::ggml_tensor,
    ) -> sys::ggml_backend_buffer_type_t {
        for &buft in &self.extra {
            (*w).buffer = sys::ggml_backend_buft_alloc_buffer(buft, 0);
            let ok = sys::ggml_backend_dev_supports_op(self.dev, op);
            sys::ggml_backend_buffer_free((*w).buffer);
            (*w).buffer = std::ptr::null_mut();
            if ok {
                return buft;
            }
        }
        sys::ggml_backend_dev_buffer_type(self.dev)
    }
}

/// Runs `once` until `budget` is spent (at least 4 times) and returns the median seconds,
/// leaving out the first run (it warms caches and pages); `None` when a run fails.
pub(crate) fn median_seconds(budget: Duration, mut once: impl FnMut() -> bool) -> Option<f64> {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 4 || (start.elapsed() < budget && times.len() < 1000) {
        let t = Instant::now();
        if !once() {
            return None;
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.remove(0);
    times.sort_by(f64::total_cmp);
    Some(times[times.len() / 2])
}

impl Drop for CpuBackend {
    fn drop(&mut self) {
        // SAFETY: `self.backend` came from `ggml_backend_cpu_init`, is owned by `self` alone
        // and is freed only here; the graphs that ran on it are gone (they borrow `self`).
        unsafe { sys::ggml_backend_free(self.backend) }
    }
}

/// One attention measurement: cache type, heads, cells, query tokens, layers.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub kv: GgmlType,
    pub head_dim: u64,
    pub n_head: u64,
    pub n_head_kv: u64,
    pub n_kv: u64,
    pub n_q: u64,
    pub copies: usize,
}

impl AttnShape {
    /// Cache bytes of all copies (K and V).
    pub fn cache_bytes(&self) -> u64 {
        let row = self
            .kv
            .row_size(self.head_dim * self.n_head_kv)
            .map_or(0, |b| b.get());
        2 * row * self.n_kv * self.copies.max(1) as u64
    }

    /// Query heads x cells x head size x copies: the unit attention costs are quoted in.
    pub fn units(&self) -> f64 {
        (self.n_q * self.n_head * self.n_kv * self.head_dim) as f64 * self.copies.max(1) as f64
    }
}

/// A ggml context, its graph and buffers, freed together.
struct Graph {
    ctx: *mut sys::ggml_context,
    graph: *mut sys::ggml_cgraph,
    inputs: Vec<*mut sys::ggml_tensor>,
    buffers: Vec<sys::ggml_backend_buffer_t>,
}

impl Graph {
    fn new(n_tensors: usize) -> Option<Graph> {
        let graph_size = n_tensors.max(16) * 2;
        // SAFETY: pure size queries; then `ggml_init` with a null buffer makes a context that
        // owns its own memory (freed once, by `ggml_free` in `Drop`), or returns null.
        let ctx = unsafe {
            let size = sys::ggml_tensor_overhead() * (n_tensors + 16)
                + sys::ggml_graph_overhead_custom(graph_size, false);
            sys::ggml_init(sys::ggml_init_params {
                mem_size: size,
                mem_buffer: std::ptr::null_mut(),
                no_alloc: true,
            })
        };
        if ctx.is_null() {
            return None;
        }
        // SAFETY: `ctx` is live and was sized above with room for a graph of `graph_size`
        // (`ggml_graph_overhead_custom`), which lives in it.
        let graph = unsafe { sys::ggml_new_graph_custom(ctx, graph_size, false) };
        Some(Graph {
            ctx,
            graph,
            inputs: Vec::new(),
            buffers: Vec::new(),
        })
    }

    /// # Safety
    /// `t` is a tensor of `self.ctx`.
    unsafe fn expand(&mut self, t: *mut sys::ggml_tensor) {
        sys::ggml_build_forward_expand(self.graph, t);
    }

    /// Weights get their own buffer of `buft` (cleared; the caller writes their values).
    ///
    /// # Safety
    /// `weights` are unallocated tensors of `self.ctx`; `buft` is a live buffer type.
    unsafe fn alloc_weights(
        &mut self,
        weights: &[*mut sys::ggml_tensor],
        buft: sys::ggml_backend_buffer_type_t,
    ) -> Option<()> {
        let size: usize = weights
            .iter()
            .map(|&w| sys::ggml_backend_buft_get_alloc_size(buft, w) + 256)
            .sum();
        let buf = sys::ggml_backend_buft_alloc_buffer(buft, size);
        if buf.is_null() {
            return None;
        }
        self.buffers.push(buf);
        sys::ggml_backend_buffer_clear(buf, 0);
        let base = sys::ggml_backend_buffer_get_base(buf) as usize;
        let align = sys::ggml_backend_buffer_get_alignment(buf).max(1);
        let mut offset = 0usize;
        for &w in weights {
            let addr = (base + offset).div_ceil(align) * align;
            if sys::ggml_backend_tensor_alloc(buf, w, addr as *mut c_void)
                != sys::GGML_STATUS_SUCCESS
            {
                return None;
            }
            offset = addr - base + sys::ggml_backend_buft_get_alloc_size(buft, w);
        }
        Some(())
    }

    /// Allocates what is left in a CPU buffer, fills inputs with values spread as
    /// activations and cache entries are (`bench_data`), then runs the graph until `budget`
    /// is spent (at least 3 times after a warm-up run) and returns the median seconds.
    fn run(&mut self, be: &CpuBackend, budget: Duration) -> Option<f64> {
        // SAFETY: `be.dev` is the CPU device of the live backend `be`; `self.ctx` is a live
        // no_alloc context. The buffer (null when it could not be made) holds every tensor not
        // yet allocated; it is owned by `self` and freed once, in `Drop`.
        unsafe {
            let buft = sys::ggml_backend_dev_buffer_type(be.dev);
            let buf = sys::ggml_backend_alloc_ctx_tensors_from_buft(self.ctx, buft);
            if !buf.is_null() {
                sys::ggml_backend_buffer_clear(buf, 0);
                self.buffers.push(buf);
            }
        }
        for &t in &self.inputs {
            // SAFETY: `t` is a tensor of `self.ctx`, which lives as long as `self`.
            if unsafe { (*t).data.is_null() } {
                return None;
            }
            // SAFETY: `t` is allocated (checked just above).
            let filled = unsafe { be.contents.fill(t, Role::Activations) };
            filled?;
        }
        median_seconds(budget, || {
            // SAFETY: every tensor of the graph has its data: the weights in their own buffer,
            // the rest in the buffer above. The CPU buffer type has no size limit, so ggml
            // makes that one buffer, sized for them all, or none, and then the inputs have no
            // data and this does not run. `be.backend` is live; the raw pointers keep `self`
            // and `be` on this thread.
            let status = unsafe { sys::ggml_backend_graph_compute(be.backend, self.graph) };
            status == sys::GGML_STATUS_SUCCESS
        })
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: `self` alone owns its buffers and its context, each freed once, here; the
        // tensors' data lives in the buffers, freed before the context that describes them.
        unsafe {
            for &b in &self.buffers {
                sys::ggml_backend_buffer_free(b);
            }
            sys::ggml_free(self.ctx);
        }
    }
}
