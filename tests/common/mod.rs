//! Test support: the real models' paths, and synthetic GGUF models of any architecture whose
//! tensor layout is discovered from the bundled llama.cpp itself (it names each missing tensor
//! and, for a wrong shape, the shape it expects), so fixtures never drift from the engine.
#![allow(dead_code)]

pub mod arch_inputs;
pub mod complete;
pub mod http_server;
pub mod llama_server;
pub mod projector;
pub mod remote;
pub mod rpc;
pub mod sweep_report;

pub use complete::complete_with_engine;
use layerfit::engine::measure::{measure, MeasureRequest};
use layerfit::ggml_type::GgmlType;
use layerfit::gguf::open_model;
use layerfit::gguf::writer::{Data, GgufWriter, WriteValue};
use layerfit::memory::{compute_buffers, kv_cache, model_weights, CacheConfig};
use layerfit::model::Shape;
use std::path::{Path, PathBuf};

pub fn models_dir() -> PathBuf {
    let dir = std::env::var_os("LAYERFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/layerfit/models")
        });
    assert!(
        dir.join("SmolLM2-135M-Instruct.Q4_1.gguf").exists(),
        "real models missing in {}: run `bash tests/fetch-models.sh` (or `bash tests/run.sh`)",
        dir.display()
    );
    dir
}

/// Keeps a spawned layerfit away from the user's own cache: no speed calibration measured
/// on this machine by `layerfit bench` (plans use the rough figures a fresh machine gets,
/// so outcomes do not depend on who ran what before), while the real models stay where
/// they are.
pub fn isolate(c: &mut std::process::Command) -> &mut std::process::Command {
    let models = std::env::var_os("LAYERFIT_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/layerfit/models")
        });
    c.env("XDG_CACHE_HOME", tempdir("xdg-cache"))
        .env("LAYERFIT_MODELS", models)
}

pub fn smollm2() -> PathBuf {
    models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

pub fn gemma3() -> PathBuf {
    models_dir().join("gemma-3-270m-q4_k_m.gguf")
}

pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("layerfit-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A writer with the metadata every synthetic model shares: a small placeholder vocabulary
/// and the usual hyperparameter keys.
pub fn base_writer(arch: &str, n_layer: u32, n_embd: u32, n_vocab: u32) -> GgufWriter {
    let mut w = GgufWriter::new();
    let k = |s: &str| format!("{arch}.{s}");
    w.kv("general.architecture", WriteValue::Str(arch.into()))
        .kv("general.name", WriteValue::Str(format!("synthetic {arch}")))
        .kv(&k("context_length"), WriteValue::U32(32768))
        .kv(&k("embedding_length"), WriteValue::U32(n_embd))
        .kv(&k("block_count"), WriteValue::U32(n_layer))
        .loadable_defaults(arch, n_vocab as usize);
    w
}

/// A small synthetic model of `arch` (256 wide, 8 heads over 2 KV heads, 768-wide
/// feed-forward, 32000 tokens) with `extra` keys, completed by the engine, in a per-test file.
pub fn synthetic(
    tag: &str,
    arch: &str,
    n_layer: u32,
    extra: impl FnOnce(&mut GgufWriter),
) -> PathBuf {
    let dir = tempdir(tag);
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    let path = dir.join(format!("{arch}-{test}.gguf"));
    let mut w = base_writer(arch, n_layer, 256, 32000);
    let k = |s: &str| format!("{arch}.{s}");
    w.kv(&k("feed_forward_length"), WriteValue::U32(768))
        .kv(&k("attention.head_count"), WriteValue::U32(8))
        .kv(&k("attention.head_count_kv"), WriteValue::U32(2));
    extra(&mut w);
    complete_with_engine(w, &path);
    path
}

/// Asserts layerfit's estimate for `path` under `cfg` equals what llama.cpp's dry run
/// allocates: weights and KV cache to the byte, compute within 5% or 16 MiB, output buffer to
/// the log's 0.01 MiB. Returns (estimated, measured) compute bytes for reports.
pub fn assert_matches_engine(path: &Path, cfg: &CacheConfig) -> (u64, u64) {
    let file = open_model(path).unwrap();
    let vocab = file.tensor_vocab();
    let shape = Shape::from_metadata(file.metadata(), vocab).unwrap();
    let w = model_weights(&shape, file.tensors());
    let mut req = MeasureRequest::for_cache(cfg, 0);
    if cfg.embeddings {
        // `serve --embeddings --pooling mean`, the pooling the tests serve.
        req.pooling_type = 1;
    }
    let m = measure(path, &req).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let what = format!(
        "{} ({}) ctx {} x{} {}/{} fa={} ub={} swa_full={}",
        path.display(),
        shape.architecture,
        cfg.n_ctx,
        cfg.n_seq_max,
        cfg.type_k,
        cfg.type_v,
        cfg.flash_attn,
        cfg.n_ubatch,
        cfg.swa_full
    );
    // `llama_model_size` counts every tensor of the file, the skipped prediction blocks too.
    assert_eq!(
        m.model_size,
        w.total + w.not_loaded,
        "{what}: weights (llama_model_size)"
    );
    assert_eq!(m.model_bytes(), w.total, "{what}: model buffers");
    let kv = kv_cache(&shape, cfg).unwrap();
    assert_eq!(
        m.context_bytes(),
        kv.total,
        "{what}: KV cache / recurrent state"
    );
    // One stream of `cells` per sequence (`n_seq_max` > 1: a non-unified cache).
    assert_eq!(
        m.n_ctx as u64,
        kv.cells * u64::from(cfg.n_seq_max.max(1)),
        "{what}: padded context"
    );
    let c = compute_buffers(&shape, &kv, cfg);
    let (est, got) = (c.bytes.get(), m.compute_bytes().get());
    let diff = (est as f64 - got as f64).abs();
    assert!(
        diff <= 16.0 * 1024.0 * 1024.0 || diff <= 0.05 * got as f64,
        "{what}: compute estimate {:.2} MiB vs llama.cpp {:.2} MiB",
        est as f64 / 1048576.0,
        got as f64 / 1048576.0
    );
    // llama.cpp allocates one row per sequence at load and grows the buffer to the largest
    // batch of outputs decoded; the plan holds that largest one (`CacheConfig::output_rows`).
    let out = m.output_mib.expect("output buffer logged");
    let at_load = c.output_buffer.mib() * cfg.n_seq_max.max(1) as f64 / cfg.output_rows() as f64;
    assert!(
        (at_load - out).abs() < 0.006,
        "{what}: output buffer {} ({at_load:.2} MiB at load) vs {out} MiB",
        c.output_buffer
    );
    (est, got)
}

/// Runs the layerfit binary (no colour, no hardware description or software-GPU opt-in from
/// the environment): exit code, stdout, stderr.
pub fn layerfit(bin: &str, args: &[&str]) -> (i32, String, String) {
    let out = isolate(&mut std::process::Command::new(bin))
        .args(args)
        .env_remove("LAYERFIT_HARDWARE")
        .env_remove("LAYERFIT_SOFTWARE_GPU")
        .env_remove("GGML_VK_VISIBLE_DEVICES")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A described machine with a fixed test CPU (8 cores, AVX2, 40 GB/s, 3 GHz).
pub fn machine(yaml: &str) -> layerfit::hardware::Snapshot {
    let d: layerfit::hardware::whatif::Description = serde_norway::from_str(yaml).unwrap();
    let cpu = layerfit::hardware::Cpu {
        model: "test".into(),
        physical_cores: 8,
        logical_cores: 8,
        simd: vec!["avx2".into()],
        memory_bandwidth_gbps: Some(40.0),
        frequency_ghz: Some(3.0),
    };
    layerfit::hardware::whatif::describe(&d, "test", cpu).unwrap()
}

/// Checks a `--json` document against its published schema (docs/schemas/NAME.schema.json).
pub fn assert_schema(name: &str, doc: &serde_json::Value) {
    let path = format!(
        "{}/docs/schemas/{name}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{doc}");
}

/// A three-shard split set (`PREFIX-0000N-of-00003.gguf`, llama.cpp's naming) of a tiny
/// llama: one 64x64 q8_0 tensor per shard, the metadata in the first.
pub fn write_split_set(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..3u32)
        .map(|i| {
            let mut w = if i == 0 {
                let mut w = base_writer("llama", 3, 64, 64);
                w.kv("llama.attention.head_count", WriteValue::U32(4))
                    .kv("llama.feed_forward_length", WriteValue::U32(128));
                w
            } else {
                GgufWriter::new()
            };
            w.kv("split.no", WriteValue::U32(i))
                .kv("split.count", WriteValue::U32(3));
            w.tensor(&format!("blk.{i}.attn_q.weight"), &[64, 64], GgmlType::Q8_0);
            let p = dir.join(format!("{prefix}-{:05}-of-00003.gguf", i + 1));
            w.write(&p, Data::Sparse).unwrap();
            p
        })
        .collect()
}

/// A layerfit command in a private HOME (its caches and models folder inside it), with the
/// Hub at `hf_endpoint`, a short network timeout, and no other tool's variables or proxies
/// from the developer's environment.
pub fn in_home(home: &Path, hf_endpoint: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_layerfit"));
    c.env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("LAYERFIT_MODELS", home.join("models"))
        .env("HF_ENDPOINT", hf_endpoint)
        .env("LAYERFIT_NET_TIMEOUT", "3");
    for k in [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_CACHE",
        "HF_HOME",
        "HUGGINGFACE_HUB_CACHE",
        "LLAMA_CACHE",
        "OLLAMA_MODELS",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c.env_remove(k);
    }
    c
}
