//! The speed model against the engine: for both real models, at ctx 4096 and 32768, with the
//! KV cache about empty and about half full, at 1 and 2 threads, the planner's expected
//! decode and prompt tokens/s next to what the bundled llama.cpp then does (a raw C-API loop:
//! a 512-token prompt batch, then 12 greedy decode steps, the median step), in 5 rounds at
//! the same position (thread counts alternating; the median round).
//! Targets: decode within 15%, prompt within 25%, every row.
//! Run: `cargo bench --bench speed_model` (after `bash tests/fetch-models.sh`). Each row is
//! predicted twice: from a paired calibration, one pass of `layerfit bench`'s list right
//! before each round of that cache position (the median of the 5 passes, so the figures and
//! the engine share the machine's phase; the targets are judged on it), and from the
//! calibration measured before the model's rows, as a cached one would be (`cached`).
//! `LAYERFIT_BENCH_ONLY=gemma` keeps the models whose file name contains that text;
//! `LAYERFIT_BENCH_THREADS=1` (or `1,2`) sets the thread counts; `LAYERFIT_BENCH_VERBOSE=1`
//! prints every round with a paired probe of the machine.

use layerfit::cli::calibration;
use layerfit::engine::calibrate::{calibrate, Calibrator, Depth};
use layerfit::engine::measure::init_backend;
use layerfit::ggml_type::GgmlType;
use layerfit::hardware::probe::{probe, ProbeOptions};
use layerfit::model_source::ModelSource;
use layerfit::plan::{plan, speed::step_seconds, Requirements};
use layerfit::speed::calibrated_threads;
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const PROMPT_BATCH: usize = 512;
const DECODE_STEPS: usize = 12;
/// Each row is measured in this many rounds, spread over the rows of its cache position
/// (thread counts alternate), and the median kept: a shared machine drifts over minutes.
const ROUNDS: usize = 5;
/// The largest buffer a calibration here may use (the bench machine has RAM to spare).
const MAX_WORKING_SET: u64 = 1 << 30;

/// One measured row: where in the cache, how fast.
struct Measured {
    threads: u32,
    prompt_pos: u64,
    prompt_tokens_per_s: f64,
    decode_pos: u64,
    decode_tokens_per_s: f64,
}

struct Engine {
    model: *mut sys::llama_model,
    ctx: *mut sys::llama_context,
    vocab: *const sys::llama_vocab,
    pos: usize,
    filler: Vec<sys::llama_token>,
}

impl Engine {
    fn load(path: &Path, n_ctx: u32, n_gpu_layers: i32) -> Engine {
        init_backend();
        // SAFETY: the backend is initialised; `c` outlives the load; the model and context are
        // freed once, in `Drop`.
        unsafe {
            let c = CString::new(path.to_str().unwrap()).unwrap();
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = n_gpu_layers;
            let model = sys::llama_model_load_from_file(c.as_ptr(), mp);
            assert!(!model.is_null(), "cannot load {}", path.display());
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = n_ctx;
            cp.n_batch = 2048;
            cp.n_ubatch = 512;
            cp.n_seq_max = 1;
            cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_ENABLED;
            let ctx = sys::llama_init_from_model(model, cp);
            assert!(!ctx.is_null());
            let vocab = sys::llama_model_get_vocab(model);
            let text =
                "The quick brown fox jumps over the lazy dog while the river flows to the sea. ";
            let mut toks = vec![0; 256];
            let n = sys::llama_tokenize(
                vocab,
                text.as_ptr() as *const _,
                text.len() as i32,
                toks.as_mut_ptr(),
                toks.len() as i32,
                false,
                false,
            );
            toks.truncate(n.max(1) as usize);
            Engine {
                model,
                ctx,
                vocab,
                pos: 0,
                filler: toks,
            }
        }
    }

    fn tokens(&self, n: usize) -> Vec<sys::llama_token> {
        self.filler.iter().copied().cycle().take(n).collect()
    }

    fn decode(&mut self, toks: &mut [sys::llama_token]) {
        for chunk in toks.chunks_mut(2048) {
            // SAFETY: the batch views `chunk`, which outlives the decode; `self.ctx` is live.
            let rc = unsafe {
                sys::llama_decode(
                    self.ctx,
                    sys::llama_batch_get_one(chunk.as_mut_ptr(), chunk.len() as i32),
                )
            };
            assert_eq!(rc, 0, "llama_decode failed at position {}", self.pos);
            self.pos += chunk.len();
        }
    }

    fn fill_to(&mut self, pos: usize) {
        if pos > self.pos {
            let mut t = self.tokens(pos - self.pos);
            self.decode(&mut t);
        }
    }

    /// Drops what was decoded after `pos` (so a measurement can be repeated at the same
    /// position); a sliding-window cache may refuse, and then the position moves on.
    fn rewind(&mut self, pos: usize) {
        // SAFETY: `self.ctx` is the live context this engine owns; sequence 0 exists.
        let ok =
            unsafe { sys::llama_memory_seq_rm(sys::llama_get_memory(self.ctx), 0, pos as i32, -1) };
        if ok {
            self.pos = pos;
        }
    }

    /// Touches every weight page once (the first pass over an mmap'd file pays page faults).
    fn warm_up(&mut self) {
        let mut t = self.tokens(64);
        self.decode(&mut t);
        // SAFETY: `self.ctx` is the live context this engine owns.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true) };
        self.pos = 0;
    }

    /// A 512-token prompt batch from the current position, then `DECODE_STEPS` greedy steps
    /// after it; the cache is rewound to where it was.
    fn measure(&mut self, threads: u32) -> Measured {
        // SAFETY: `self.ctx` is the live context this engine owns.
        unsafe { sys::llama_set_n_threads(self.ctx, threads as i32, threads as i32) };
        let prompt_pos = self.pos as u64;
        let p0 = self.pos;
        let mut t = self.tokens(PROMPT_BATCH);
        let start = Instant::now();
        self.decode(&mut t);
        let prompt = PROMPT_BATCH as f64 / start.elapsed().as_secs_f64();
        let decode_pos = self.pos as u64;
        let mut steps = Vec::new();
        // SAFETY: `self.ctx` is live; the sampler chain is created here and freed once at the
        // end of this block; each token buffer outlives the decode that reads it.
        unsafe {
            let smpl = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            sys::llama_sampler_chain_add(smpl, sys::llama_sampler_init_greedy());
            for _ in 0..DECODE_STEPS {
                let start = Instant::now();
                let mut tok = sys::llama_sampler_sample(smpl, self.ctx, -1);
                if sys::llama_vocab_is_eog(self.vocab, tok) {
                    tok = self.filler[0];
                }
                self.decode(std::slice::from_mut(&mut tok));
                steps.push(start.elapsed().as_secs_f64());
            }
            sys::llama_sampler_free(smpl);
        }
        self.rewind(p0);
        // The median step: one slow step (another process, a page fault) does not move it.
        steps.sort_by(f64::total_cmp);
        Measured {
            threads,
            prompt_pos,
            prompt_tokens_per_s: prompt,
            decode_pos,
            decode_tokens_per_s: 1.0 / steps[steps.len() / 2],
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: the context and model were created in `load` and are freed once, here.
        unsafe {
            sys::llama_free(self.ctx);
            sys::llama_model_free(self.model);
        }
    }
}

/// One round's figures and, right after it, a paired probe of the machine at the same
/// thread count (q8_0 matrix x vector over 60 MiB, matrix x 256 columns in the caches): with
/// `LAYERFIT_BENCH_VERBOSE=1`, to see how the machine itself drifts between rounds.
fn print_round(m: &Measured) {
    use layerfit::engine::ggml_bench::CpuBackend;
    use std::time::Duration;
    let Some(be) = CpuBackend::new(m.threads) else {
        return;
    };
    let q8 = GgmlType::Q8_0;
    let matrix = q8.row_size(2048).map_or(0, |b| b.get()) * 1024;
    let budget = Duration::from_millis(500);
    let matvec = be.mul_mat(q8, 2048, 1024, 1, 30, budget);
    let matmul = be.mul_mat(q8, 1024, 1024, 256, 2, budget);
    if let (Some(v), Some(b)) = (matvec, matmul) {
        println!(
            "  round: {} thr, decode at {} {:.1}, prompt at {} {:.1} | probe: q8_0 x vector {:.2} GB/s, x batch {:.1} GFLOP/s",
            m.threads,
            m.decode_pos,
            m.decode_tokens_per_s,
            m.prompt_pos,
            m.prompt_tokens_per_s,
            (matrix * 30) as f64 / v / 1e9,
            2.0 * (1024.0 * 1024.0 * 256.0 * 2.0) / b / 1e9
        );
    }
}

/// A fresh calibration (what `layerfit bench` measures, and cached like it), taken right
/// before a model's rows: what a user's plan would use.
fn calibration_for(snap: &layerfit::hardware::Snapshot) -> layerfit::speed::Calibration {
    let c = calibrate(
        &calibrated_threads(snap.cpu.physical_cores),
        Depth::Full,
        MAX_WORKING_SET,
        calibration::machine_key(&snap.cpu),
        calibration::engine_key(),
        &mut |_, _, _| {},
    )
    .expect("calibration");
    calibration::save(&snap.cpu, &c).expect("cache the calibration");
    c
}

/// Expected decode and prompt tokens/s at the measured positions under `cal`.
fn predict(
    inp: &layerfit::plan::PlanInput,
    snap: &layerfit::hardware::Snapshot,
    n_ctx: u32,
    cal: &Arc<layerfit::speed::Calibration>,
    m: &Measured,
) -> (f64, f64) {
    let req = Requirements {
        min_context: n_ctx as u64,
        kv_types: vec![GgmlType::F16],
        threads: Some(m.threads),
        calibration: Some(cal.clone()),
        ..Requirements::default()
    };
    let p = plan(inp, snap, &req);
    let (d, _) = step_seconds(inp, snap, &req, &p, m.decode_pos as f64, 1.0).unwrap();
    let (_, pr) = step_seconds(
        inp,
        snap,
        &req,
        &p,
        m.prompt_pos as f64,
        PROMPT_BATCH as f64,
    )
    .unwrap();
    (1.0 / d, PROMPT_BATCH as f64 / pr)
}

/// The worst errors over the rows: against the paired calibration (measured beside the
/// rounds) and against the calibration taken before the model.
#[derive(Default)]
struct Worst {
    rows: usize,
    decode: f64,
    prompt: f64,
    decode_within: usize,
    prompt_within: usize,
    cached_decode: f64,
    cached_prompt: f64,
}

impl Worst {
    fn note(&mut self, decode: f64, prompt: f64, cached_decode: f64, cached_prompt: f64) {
        self.rows += 1;
        self.decode = self.decode.max(decode.abs());
        self.prompt = self.prompt.max(prompt.abs());
        self.decode_within += usize::from(decode.abs() <= 0.15);
        self.prompt_within += usize::from(prompt.abs() <= 0.25);
        self.cached_decode = self.cached_decode.max(cached_decode.abs());
        self.cached_prompt = self.cached_prompt.max(cached_prompt.abs());
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("speed_model: run with `cargo bench --bench speed_model`");
        return;
    }
    let dir = std::env::var_os("LAYERFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/layerfit/models")
        });
    // The Vulkan stage: LAYERFIT_BENCH_OFFLOAD=1 in a `--features vulkan` build offloads
    // every layer to Mesa's software device (lavapipe) and predicts its part with this CPU's
    // calibration at all cores (it is a CPU in disguise); ctx 4096 only, all cores.
    let offload = std::env::var("LAYERFIT_BENCH_OFFLOAD").is_ok_and(|v| v == "1");
    let snap = probe(&ProbeOptions {
        software_gpu: offload,
        ..ProbeOptions::default()
    });
    let all = snap.cpu.physical_cores.max(1) as u32;
    let (contexts, thread_counts, ngl): (&[u32], Vec<u32>, i32) = if offload {
        println!(
            "offloading to: {:?}",
            snap.gpus
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
        );
        (&[4096], vec![all], 999)
    } else {
        // LAYERFIT_BENCH_THREADS=1 measures one thread count alone (no alternation).
        let threads = std::env::var("LAYERFIT_BENCH_THREADS")
            .ok()
            .and_then(|v| v.split(',').map(|x| x.trim().parse().ok()).collect())
            .unwrap_or(vec![1, 2]);
        (&[4096, 32768], threads, 0)
    };
    println!(
        "speed model vs engine: CPU {}, f16 cache, flash attention, {PROMPT_BATCH}-token prompt batch, {DECODE_STEPS} decode steps (median step), median of {ROUNDS} rounds",
        snap.cpu.model
    );
    println!(
        "{:<34} {:>6} {:>3} {:>6} {:>9} {:>9} {:>7} {:>7} {:>6} {:>9} {:>9} {:>7} {:>7}",
        "model",
        "ctx",
        "thr",
        "pos",
        "decode",
        "predicted",
        "error",
        "cached",
        "pos",
        "prompt",
        "predicted",
        "error",
        "cached"
    );
    let mut worst = Worst::default();
    let only = std::env::var("LAYERFIT_BENCH_ONLY").unwrap_or_default();
    let verbose = std::env::var_os("LAYERFIT_BENCH_VERBOSE").is_some();
    for name in [
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma-3-270m-q4_k_m.gguf",
    ] {
        if !name.contains(only.as_str()) {
            continue;
        }
        let path = dir.join(name);
        if !path.exists() {
            eprintln!("skipping {name}: run `bash tests/fetch-models.sh` first");
            continue;
        }
        let cal = Arc::new(calibration_for(&snap));
        println!("calibrated ({:.1} s, layerfit bench)", cal.seconds_taken);
        let src = ModelSource::from_file(&path).unwrap();
        let inp = src.plan_input(&snap.cpu.simd).unwrap();
        for &n_ctx in contexts {
            let mut e = Engine::load(&path, n_ctx, ngl);
            e.warm_up();
            for fill in [0usize, n_ctx as usize / 2] {
                e.fill_to(fill);
                let mut rounds: Vec<Vec<Measured>> =
                    thread_counts.iter().map(|_| Vec::new()).collect();
                let mut paired = Calibrator::new(
                    &calibrated_threads(snap.cpu.physical_cores),
                    MAX_WORKING_SET,
                )
                .expect("the engine's CPU back-end");
                for _ in 0..ROUNDS {
                    paired.pass(&mut |_| {});
                    for (i, &threads) in thread_counts.iter().enumerate() {
                        let m = e.measure(threads);
                        if verbose {
                            print_round(&m);
                        }
                        rounds[i].push(m);
                    }
                }
                let paired = Arc::new(paired.finish(
                    Depth::Full,
                    calibration::machine_key(&snap.cpu),
                    calibration::engine_key(),
                ));
                for mut ms in rounds {
                    let mid = |v: &mut Vec<Measured>, f: fn(&Measured) -> f64| {
                        v.sort_by(|a, b| f(a).total_cmp(&f(b)));
                        f(&v[v.len() / 2])
                    };
                    let prompt = mid(&mut ms, |m| m.prompt_tokens_per_s);
                    let decode = mid(&mut ms, |m| m.decode_tokens_per_s);
                    let m = Measured {
                        prompt_tokens_per_s: prompt,
                        decode_tokens_per_s: decode,
                        ..ms.swap_remove(0)
                    };
                    let (pd, pp) = predict(&inp, &snap, n_ctx, &paired, &m);
                    let (cd, cp) = predict(&inp, &snap, n_ctx, &cal, &m);
                    let err = |predicted: f64, measured: f64| predicted / measured - 1.0;
                    let (ed, ep) = (
                        err(pd, m.decode_tokens_per_s),
                        err(pp, m.prompt_tokens_per_s),
                    );
                    let (ecd, ecp) = (
                        err(cd, m.decode_tokens_per_s),
                        err(cp, m.prompt_tokens_per_s),
                    );
                    worst.note(ed, ep, ecd, ecp);
                    println!(
                        "{:<34} {:>6} {:>3} {:>6} {:>9.1} {:>9.1} {:>+6.1}% {:>+6.1}% {:>6} {:>9.1} {:>9.1} {:>+6.1}% {:>+6.1}%",
                        name, n_ctx, m.threads, m.decode_pos, m.decode_tokens_per_s, pd, ed * 100.0,
                        ecd * 100.0, m.prompt_pos, m.prompt_tokens_per_s, pp, ep * 100.0, ecp * 100.0
                    );
                }
            }
        }
    }
    println!(
        "paired calibration: worst decode error {:.1}% (target 15%, {} of {} rows within), worst prompt error {:.1}% (target 25%, {} of {} within)",
        worst.decode * 100.0,
        worst.decode_within,
        worst.rows,
        worst.prompt * 100.0,
        worst.prompt_within,
        worst.rows
    );
    println!(
        "calibration before the model (what a cached `layerfit bench` gives): worst decode error {:.1}%, worst prompt error {:.1}%",
        worst.cached_decode * 100.0,
        worst.cached_prompt * 100.0
    );
}
