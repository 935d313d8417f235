//! The architecture sweep: every architecture name in the bundled llama.cpp
//! (`src/llama-arch.cpp`) as a synthetic model the engine completes itself (tensors and
//! metadata keys from its own loader errors), loaded in a dry run at three contexts and the
//! three headline cache types, and compared with layerfit's weights, KV cache, recurrent
//! state, compute and output buffers.
//!
//! Each architecture runs in its own process (this test binary, `sweep_worker`), so an
//! assertion inside llama.cpp ends one row, not the sweep. `cargo test` sweeps the
//! architectures docs/architectures.md lists as exact and fails, naming the architecture and
//! the quantity, when one is no longer exact; `LAYERFIT_SWEEP=all` sweeps every name, and
//! `LAYERFIT_SWEEP_WRITE=1` rewrites docs/architectures.md from the result
//! (`tests/arch-sweep.sh` does both and prints the summary line).

mod common;

use common::arch_inputs::{self, Hint, HINT_SETS};
use common::sweep_report::{
    architecture_names, documented_exact, render, unloaded, ComputeMiss, Row, DOC,
};
use layerfit::engine::measure::{measure, MeasureRequest};
use layerfit::ggml_type::GgmlType;
use layerfit::gguf::open_model;
use layerfit::gguf::writer::WriteValue;
use layerfit::memory::{compute_buffers, kv_cache, model_weights, CacheConfig};
use layerfit::model::arch::rules_for;
use layerfit::model::{MemoryKind, Shape};

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONTEXTS: [u32; 3] = [4096, 10000, 32768];
const TYPES: [GgmlType; 3] = [GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];
const ROW_TAG: &str = "SWEEP-ROW ";
const WORKER_ENV: &str = "LAYERFIT_SWEEP_ARCH";
const HINTS_ENV: &str = "LAYERFIT_SWEEP_HINTS";

/// One architecture, in this process (the worker), with the inputs `hints` name.
fn sweep_one(arch: &str, hints: &[Hint]) -> Row {
    let mut row = unloaded(arch);
    let dir = common::tempdir("sweep");
    let path = dir.join(format!("{arch}.gguf"));
    let mut w = common::base_writer(arch, 8, 256, 32000);
    let k = |s: &str| format!("{arch}.{s}");
    w.kv(&k("feed_forward_length"), WriteValue::U32(768))
        .kv(&k("attention.head_count"), WriteValue::U32(8))
        .kv(&k("attention.head_count_kv"), WriteValue::U32(2));
    arch_inputs::prepare(&mut w, arch, hints);
    if let Err(e) = common::complete::try_complete(w, &path) {
        row.not_loadable = Some(first_line(&e));
        return row;
    }
    let file = open_model(&path).unwrap();
    let shape = match Shape::from_metadata(file.metadata(), file.tensor_vocab()) {
        Ok(s) => s,
        Err(e) => {
            row.first_difference = Some(format!("layerfit cannot read the header: {e}"));
            return row;
        }
    };
    row.family = shape.rule_family();
    let wt = model_weights(&shape, file.tensors());
    let (mut weights_ok, mut kv_ok, mut state_ok, mut out_ok) = (true, true, true, true);
    let note = |row: &mut Row, what: String| {
        if row.first_difference.is_none() {
            row.first_difference = Some(what);
        }
    };
    for n_ctx in CONTEXTS {
        for t in TYPES {
            let cfg = CacheConfig {
                n_ctx: n_ctx as u64,
                type_k: t,
                type_v: t,
                ..CacheConfig::default()
            };
            let what = format!("ctx {n_ctx} {t}");
            let m = match measure(&path, &MeasureRequest::for_cache(&cfg, 0)) {
                Ok(m) => m,
                Err(e) => {
                    // A cache type the engine refuses for this model is not a difference
                    // when layerfit refuses it too.
                    if kv_cache(&shape, &cfg).is_err() {
                        continue;
                    }
                    kv_ok = false;
                    note(
                        &mut row,
                        format!("{what}: llama.cpp refused: {}", first_line(&e.0)),
                    );
                    continue;
                }
            };
            if m.model_bytes() != wt.total {
                weights_ok = false;
                note(
                    &mut row,
                    format!(
                        "{what}: weights {} B, llama.cpp {} B",
                        wt.total.get(),
                        m.model_bytes().get()
                    ),
                );
            }
            let kv = match kv_cache(&shape, &cfg) {
                Ok(kv) => kv,
                Err(e) => {
                    kv_ok = false;
                    note(
                        &mut row,
                        format!("{what}: layerfit refuses the cache ({e}), llama.cpp does not"),
                    );
                    continue;
                }
            };
            if m.context_bytes() != kv.total {
                kv_ok = false;
                note(
                    &mut row,
                    format!(
                        "{what}: KV cache + state {} B, llama.cpp {} B",
                        kv.total.get(),
                        m.context_bytes().get()
                    ),
                );
            }
            let state_mib = kv.recurrent.mib();
            let engine_state = m.recurrent_state_mib.unwrap_or(0.0);
            if (state_mib - engine_state).abs() > 0.006 {
                state_ok = false;
                note(
                    &mut row,
                    format!("{what}: recurrent state {state_mib:.2} MiB, llama.cpp {engine_state:.2} MiB"),
                );
            }
            let c = compute_buffers(&shape, &kv, &cfg);
            let (est, got) = (c.bytes.get() as f64, m.compute_bytes().get() as f64);
            // The largest miss of any configuration that is outside the tolerance (the
            // largest miss overall when every one is inside).
            let miss = ComputeMiss {
                pct: 100.0 * (est - got).abs() / got.max(1.0),
                mib: (est - got).abs() / 1048576.0,
            };
            let outside = !miss.within();
            let rank = |m: &ComputeMiss| (!m.within(), m.pct);
            if rank(&miss) > rank(&row.compute) {
                row.compute = miss;
            }
            if outside {
                note(
                    &mut row,
                    format!(
                        "{what}: compute {:.2} MiB, llama.cpp {:.2} MiB",
                        est / 1048576.0,
                        got / 1048576.0
                    ),
                );
            }
            if let Some(out) = m.output_mib {
                if (c.output_buffer.mib() - out).abs() >= 0.006 {
                    out_ok = false;
                    note(
                        &mut row,
                        format!(
                            "{what}: output buffer {:.2} MiB, llama.cpp {out:.2} MiB",
                            c.output_buffer.mib()
                        ),
                    );
                }
            }
        }
    }
    row.weights_exact = weights_ok;
    row.kv_exact = kv_ok;
    row.state_exact = state_ok;
    row.output_exact = out_ok;
    let _ = std::fs::remove_file(&path);
    row
}

fn first_line(s: &str) -> String {
    let s = s.split(" | ").next().unwrap_or(s);
    let s: String = s.chars().filter(|c| *c != '\n' && *c != '|').collect();
    s.chars().take(160).collect()
}

/// The worker: one architecture, named in the environment, reported on stdout.
#[test]
fn sweep_worker() {
    let Ok(arch) = std::env::var(WORKER_ENV) else {
        return;
    };
    let hints: Vec<Hint> = std::env::var(HINTS_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(Hint::parse)
        .collect();
    let row = sweep_one(&arch, &hints);
    println!("{ROW_TAG}{}", serde_json::to_string(&row).unwrap());
}

/// One architecture: the plain synthetic model first, then with each set of extra inputs
/// (experts, latent attention, fused projections) until llama.cpp loads one.
fn sweep_arch(arch: &str) -> Row {
    if rules_for(arch).memory == MemoryKind::None {
        return Row {
            not_loadable: Some(NOT_TEXT.into()),
            ..unloaded(arch)
        };
    }
    let mut first: Option<Row> = None;
    for hints in HINT_SETS {
        let row = run_worker(arch, hints);
        if row.not_loadable.is_none() {
            return row;
        }
        first.get_or_insert(row);
    }
    first.expect("at least one input set")
}

/// Runs one architecture in a child process, with a time limit.
fn run_worker(arch: &str, hints: &[Hint]) -> Row {
    let exe = std::env::current_exe().unwrap();
    let names: Vec<&str> = hints.iter().map(|h| h.name()).collect();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "sweep_worker",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(WORKER_ENV, arch)
        .env(HINTS_ENV, names.join(","))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    if let Some(line) = out
        .lines()
        .find_map(|l| l.find(ROW_TAG).map(|i| &l[i + ROW_TAG.len()..]))
    {
        return serde_json::from_str(line).unwrap();
    }
    // llama.cpp's own words for an assertion: "file:line: GGML_ASSERT(...) failed".
    let assertion = err
        .lines()
        .find(|l| l.contains("GGML_ASSERT") || l.contains("fatal error"))
        .map(|l| {
            let l = l.rsplit("llama.cpp/").next().unwrap_or(l);
            format!(
                ": {}",
                first_line(l.trim_start_matches("test sweep_worker ... "))
            )
        })
        .unwrap_or_default();
    let why = match status {
        None => "the dry run did not finish in 300 s".to_string(),
        Some(s) => format!("llama.cpp stopped the process ({s}){assertion}"),
    };
    Row {
        not_loadable: Some(why),
        ..unloaded(arch)
    }
}

/// `create_memory` builds no memory module for these (its first case).
const NOT_TEXT: &str = "not a text-generation model: llama.cpp builds no KV cache for it \
                        (an encoder, an embedding model, a diffusion model or an audio decoder)";

#[test]
fn architecture_sweep() {
    if std::env::var_os(WORKER_ENV).is_some() {
        return;
    }
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let doc = std::fs::read_to_string(&doc_path).unwrap_or_default();
    let promised = documented_exact(&doc);
    let all = std::env::var("LAYERFIT_SWEEP").is_ok_and(|v| v == "all");
    let names = architecture_names();
    assert!(
        names.len() > 100,
        "found only {} architecture names",
        names.len()
    );
    let todo: Vec<String> = if all {
        names.clone()
    } else {
        names
            .iter()
            .filter(|n| promised.contains(n))
            .cloned()
            .collect()
    };
    // Workers side by side, one per core; rows kept in llama.cpp's order.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(arch) = todo.get(i) else { break };
                let row = sweep_arch(arch);
                eprintln!(
                    "{arch}: {}",
                    match (&row.not_loadable, row.exact()) {
                        (Some(why), _) => format!("not loadable ({why})"),
                        (None, true) => "exact".into(),
                        (None, false) =>
                            format!("differs: {}", row.first_difference.as_deref().unwrap_or("")),
                    }
                );
                done.lock().unwrap().push((i, row));
            });
        }
    });
    let mut rows = done.into_inner().unwrap();
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    let loaded = rows.iter().filter(|r| r.not_loadable.is_none()).count();
    let exact = rows.iter().filter(|r| r.exact()).count();
    println!(
        "architecture sweep: {} names swept, {loaded} load as text models, {exact} exact",
        rows.len()
    );
    if all && std::env::var("LAYERFIT_SWEEP_WRITE").is_ok_and(|v| v == "1") {
        std::fs::write(&doc_path, render(&rows)).unwrap();
    }
    let regressions: Vec<String> = rows
        .iter()
        .filter(|r| promised.contains(&r.arch) && !r.exact())
        .map(|r| {
            format!(
                "{}: {}",
                r.arch,
                r.not_loadable
                    .clone()
                    .or_else(|| r.first_difference.clone())
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        regressions.is_empty(),
        "architectures {DOC} lists as exact differ from llama.cpp:\n{}",
        regressions.join("\n")
    );
}
