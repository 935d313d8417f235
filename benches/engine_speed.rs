//! Prompt and decode speed of `layerfit run`'s engine session against (a) a minimal decode loop
//! on the raw llama.cpp C API of the same vendored version (layerfit's own overhead; target
//! ratio >= 0.97) and (b) llama-cpp-python when a Python with `llama_cpp` is given in
//! `LAYERFIT_BENCH_PYTHON`; then the planner's speed ranges for this machine next to the
//! measured figures. Same model, threads, context, batch and KV type on every side.
//! Run: `cargo bench --bench engine_speed` (after `bash tests/fetch-models.sh`).

use layerfit::engine::measure::init_backend;
use layerfit::engine::session::{GenOptions, Session, SessionConfig};
use layerfit::ggml_type::GgmlType;
use layerfit::hardware::probe::{probe, ProbeOptions};
use layerfit::model_source::ModelSource;
use layerfit::plan::{plan, Requirements};
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

const N_CTX: u32 = 4096;
const N_GEN: u32 = 64;
const RUNS: usize = 5;

struct Rates {
    prompt: f64,
    decode: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn prompt_text() -> String {
    "The quick brown fox jumps over the lazy dog while the river flows to the sea. ".repeat(16)
}

fn layerfit_once(path: &Path, threads: i32) -> Rates {
    let cfg = SessionConfig {
        model: path.to_path_buf(),
        n_ctx: N_CTX,
        n_gpu_layers: 0,
        n_cpu_moe: 0,
        n_cpu_ffn: 0,
        no_repack: false,
        no_gpu_devices: false,
        type_k: GgmlType::F16,
        type_v: GgmlType::F16,
        flash_attn: true,
        swa_full: false,
        n_batch: 2048,
        n_ubatch: 512,
        threads,
        use_mmap: true,
        use_mlock: false,
        fallback_template: "chatml".into(),
        n_seq: 1,
        n_outputs_per_seq: 1,
        rpc: Vec::new(),
        tensor_split: Vec::new(),
        embeddings: None,
    };
    {
        let mut s = Session::load(&cfg, &mut |_| {}).unwrap();
        let tokens = s.tokenize(&prompt_text(), true);
        let opts = GenOptions {
            max_tokens: N_GEN,
            temperature: 0.0,
            seed: 1,
        };
        let st = s
            .generate(&tokens, &opts, &AtomicBool::new(false), &mut |_| {})
            .unwrap();
        Rates {
            prompt: st.prompt_tokens_per_s().unwrap(),
            decode: st.decode_tokens_per_s().unwrap(),
        }
    }
}

/// The smallest correct program on the C API: load, tokenize, decode the prompt, then
/// greedy-sample and decode one token at a time.
fn raw_once(path: &Path, threads: i32) -> Rates {
    init_backend();
    {
        // SAFETY: the backend is initialised; `c`, the token buffers and the batch outlive
        // the calls that read them; the model, context and sampler are freed once at the end
        // of this block, in reverse order of creation.
        unsafe {
            let c = CString::new(path.to_str().unwrap()).unwrap();
            let mut mp = sys::llama_model_default_params();
            mp.n_gpu_layers = 0;
            let model = sys::llama_model_load_from_file(c.as_ptr(), mp);
            let mut cp = sys::llama_context_default_params();
            cp.n_ctx = N_CTX;
            cp.n_batch = 2048;
            cp.n_ubatch = 512;
            cp.n_seq_max = 1;
            cp.flash_attn_type = sys::LLAMA_FLASH_ATTN_TYPE_ENABLED;
            cp.n_threads = threads;
            cp.n_threads_batch = threads;
            let ctx = sys::llama_init_from_model(model, cp);
            let vocab = sys::llama_model_get_vocab(model);
            let text = prompt_text();
            let mut toks = vec![0; text.len() + 8];
            let n = sys::llama_tokenize(
                vocab,
                text.as_ptr() as *const _,
                text.len() as i32,
                toks.as_mut_ptr(),
                toks.len() as i32,
                true,
                true,
            );
            toks.truncate(n as usize);
            let t = Instant::now();
            sys::llama_decode(ctx, sys::llama_batch_get_one(toks.as_mut_ptr(), n));
            let prompt = n as f64 / t.elapsed().as_secs_f64();
            let smpl = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            sys::llama_sampler_chain_add(smpl, sys::llama_sampler_init_greedy());
            let t = Instant::now();
            let mut generated = 0;
            while generated < N_GEN {
                let mut tok = sys::llama_sampler_sample(smpl, ctx, -1);
                if sys::llama_vocab_is_eog(vocab, tok) {
                    break;
                }
                generated += 1;
                sys::llama_decode(ctx, sys::llama_batch_get_one(&mut tok, 1));
            }
            let decode = (generated - 1) as f64 / t.elapsed().as_secs_f64();
            sys::llama_sampler_free(smpl);
            sys::llama_free(ctx);
            sys::llama_model_free(model);
            Rates { prompt, decode }
        }
    }
}

/// Alternates the two sides (after one discarded warm-up each) so that machine noise and
/// cache warmth fall on both equally; medians of `RUNS`.
fn interleaved(path: &Path, threads: i32) -> (Rates, Rates) {
    layerfit_once(path, threads);
    raw_once(path, threads);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        a.push(layerfit_once(path, threads));
        b.push(raw_once(path, threads));
    }
    let m = |v: &[Rates]| Rates {
        prompt: median(v.iter().map(|r| r.prompt).collect()),
        decode: median(v.iter().map(|r| r.decode).collect()),
    };
    (m(&a), m(&b))
}

/// llama-cpp-python (it builds its own llama.cpp), timed the same way in Python.
fn python(py: &str, path: &Path, threads: i32) -> Option<Rates> {
    let script = format!(
        r#"
import time, llama_cpp
llm = llama_cpp.Llama(model_path={path:?}, n_ctx={N_CTX}, n_batch=2048, n_ubatch=512, n_threads={threads}, n_threads_batch={threads}, flash_attn=True, verbose=False)
toks = llm.tokenize({text:?}.encode(), add_bos=True, special=True)
ps, ds = [], []
for _ in range({RUNS}):
    llm.reset()
    t = time.perf_counter(); llm.eval(toks); ps.append(len(toks) / (time.perf_counter() - t))
    t = time.perf_counter(); n = 0
    for tok in llm.generate([], temp=0.0, reset=False):
        if llm.token_eos() == tok or n >= {N_GEN}: break
        n += 1
    ds.append((n - 1) / (time.perf_counter() - t))
    ps.sort(); ds.sort()
print(ps[len(ps)//2], ds[len(ds)//2])
"#,
        path = path.to_str().unwrap(),
        text = prompt_text(),
    );
    let out = std::process::Command::new(py)
        .args(["-c", &script])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "llama-cpp-python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    let mut it = s.split_whitespace().filter_map(|x| x.parse::<f64>().ok());
    Some(Rates {
        prompt: it.next()?,
        decode: it.next()?,
    })
}

fn main() {
    // `cargo test --all-targets` also runs benches; this one takes minutes, so it runs only
    // under `cargo bench` (which passes --bench).
    if !std::env::args().any(|a| a == "--bench") {
        println!("engine_speed: run with `cargo bench --bench engine_speed`");
        return;
    }
    let dir = std::env::var_os("LAYERFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/layerfit/models")
        });
    let snap = probe(&ProbeOptions::default());
    let threads = snap.cpu.physical_cores.max(1) as i32;
    println!(
        "engine speed, CPU {} ({} threads), context {N_CTX}, f16 cache, a 16-sentence prompt, {N_GEN} generated, median of {RUNS}",
        snap.cpu.model, threads
    );
    for name in [
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma-3-270m-q4_k_m.gguf",
    ] {
        let path = dir.join(name);
        if !path.exists() {
            eprintln!("skipping {name}: run `bash tests/fetch-models.sh` first");
            continue;
        }
        let (lf, raw) = interleaved(&path, threads);
        println!(
            "{name}: layerfit prompt {:.1} tok/s, decode {:.1} tok/s | raw C API prompt {:.1}, decode {:.1} | ratio prompt {:.3}, decode {:.3} (target >= 0.97)",
            lf.prompt,
            lf.decode,
            raw.prompt,
            raw.decode,
            lf.prompt / raw.prompt,
            lf.decode / raw.decode
        );
        if let Ok(py) = std::env::var("LAYERFIT_BENCH_PYTHON") {
            if let Some(r) = python(&py, &path, threads) {
                println!(
                    "{name}: llama-cpp-python prompt {:.1} tok/s, decode {:.1} tok/s | layerfit/llama-cpp-python: prompt {:.3}, decode {:.3}",
                    r.prompt,
                    r.decode,
                    lf.prompt / r.prompt,
                    lf.decode / r.decode
                );
            }
        }
        let src = ModelSource::from_file(&path).unwrap();
        let inp = src.plan_input(&snap.cpu.simd).unwrap();
        let p = plan(
            &inp,
            &snap,
            &Requirements {
                min_context: N_CTX as u64,
                kv_types: vec![GgmlType::F16],
                ..Requirements::default()
            },
        );
        if let Some(s) = &p.speed {
            println!(
                "{name}: planner on this machine: decode about {:.1} tok/s ({:.1}-{:.1}; measured {:.1}), prompt about {:.0} ({:.0}-{:.0}; measured {:.1}); {} figures (the speed_model bench compares position by position)",
                s.decode_tokens_per_s,
                s.decode_tokens_per_s_low,
                s.decode_tokens_per_s_high,
                lf.decode,
                s.prompt_tokens_per_s,
                s.prompt_tokens_per_s_low,
                s.prompt_tokens_per_s_high,
                lf.prompt,
                s.source
            );
        }
    }
}
