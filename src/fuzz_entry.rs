//! The fuzzed entry points (`fuzz/fuzz_targets/*`), here so that the regression test
//! (`tests/fuzz_regressions.rs`) replays every finding and seed through exactly the code the
//! fuzzer ran. Each takes arbitrary bytes and must return without panicking, hanging or
//! allocating what the bytes merely claim.

use crate::emit::{RunFile, RunSettings};
use crate::gguf::{assemble, read_header_from, ModelFile};
use crate::hardware::whatif::{amend, describe, parse_description, parse_size, Amendments};
use std::io::{BufReader, Cursor};
use std::path::{Path, PathBuf};

/// A whole GGUF header; one that parses goes on through shape, memory model and `inspect`.
pub fn gguf_header(data: &[u8]) {
    let path = Path::new("fuzz.gguf");
    let r = BufReader::new(Cursor::new(data));
    if let Ok(h) = read_header_from(path, r, data.len() as u64) {
        let file = ModelFile {
            path: path.to_path_buf(),
            shards: vec![h],
        };
        let cfg = crate::memory::CacheConfig {
            n_ctx: 4096,
            ..crate::memory::CacheConfig::default()
        };
        let _ = crate::inspect::inspect(&file, &cfg);
    }
}

/// A split set: the first byte picks the shard count (1 to 4), the rest is cut into that
/// many headers at `\xff\xfe` markers; the headers are checked together as `open_model` does.
pub fn gguf_split(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(first % 4) + 1;
    let mut parts: Vec<&[u8]> = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i + 1 < rest.len() && parts.len() + 1 < count {
        if rest[i] == 0xff && rest[i + 1] == 0xfe {
            parts.push(&rest[start..i]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    parts.push(&rest[start..]);
    let mut headers = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let p = PathBuf::from(format!("m-{:05}-of-{:05}.gguf", n + 1, parts.len()));
        match read_header_from(&p, BufReader::new(Cursor::new(*part)), part.len() as u64) {
            Ok(h) => headers.push(h),
            Err(_) => return,
        }
    }
    if let Ok(file) = assemble(Path::new("m-00001-of-00002.gguf"), headers) {
        let _ = (
            file.missing_bytes(),
            file.expected_size(),
            file.tensor_vocab(),
        );
    }
}

/// A machine description: parsed, described, amended like the flags do.
pub fn hardware_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_size(text);
    let Ok(d) = parse_description(text) else {
        return;
    };
    let cpu = crate::hardware::Cpu {
        model: "fuzz".into(),
        physical_cores: 2,
        logical_cores: 2,
        simd: Vec::new(),
        memory_bandwidth_gbps: None,
        frequency_ghz: None,
    };
    if let Ok(mut snap) = describe(&d, "fuzz", cpu) {
        let a = Amendments {
            ram: Some(16 << 30),
            vram: vec![8 << 30],
            gpus: Vec::new(),
            no_gpu: false,
        };
        let _ = amend(&mut snap, &a);
    }
}

/// A run file: one that parses must serialize and parse back to the same settings.
pub fn run_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = RunFile::parse(text) {
        let again = RunFile::parse(&f.to_yaml()).expect("a parsed run file round-trips");
        assert_eq!(again.settings, f.settings);
    }
}

/// Emitted configurations read back: llama.cpp arguments (split at whitespace), and an Ollama
/// Modelfile with `NAME=VALUE` environment lines after a `---` line. Arguments that parse
/// must emit again and parse back to the same settings.
pub fn emitted_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<String> = text.split_whitespace().map(String::from).collect();
    if let Ok(s) = RunSettings::from_llama_args(&args) {
        let again = RunSettings::from_llama_args(&s.llama_args()).expect("emitted args parse");
        // The software-GPU mark travels in the environment prefix, not in the arguments, and
        // tensor-split shares are written with three decimals.
        let close = |a: f64, b: f64| (a - b).abs() <= 5e-4 + 1e-12 * a.abs();
        assert_eq!(again.tensor_split.len(), s.tensor_split.len());
        assert!(again
            .tensor_split
            .iter()
            .zip(&s.tensor_split)
            .all(|(a, b)| close(*a, *b)));
        let again = RunSettings {
            software_gpu: s.software_gpu,
            tensor_split: s.tensor_split.clone(),
            ..again
        };
        assert_eq!(again, s);
    }
    let (modelfile, env_text) = text.split_once("\n---\n").unwrap_or((text, ""));
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = RunSettings::from_ollama(modelfile, &env);
}

/// A fuzzed entry point: arbitrary bytes in, no panic out.
pub type EntryPoint = fn(&[u8]);

/// Every target by name (the fuzz binaries' names).
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("gguf_header", gguf_header),
    ("gguf_split", gguf_split),
    ("hardware_yaml", hardware_yaml),
    ("run_file", run_file),
    ("emitted_config", emitted_config),
    ("remote_answers", remote_answers),
];

/// What remote servers and other tools' stores answer: the first line is tried as a model
/// name and a file name, the rest as a Hub listing and an Ollama manifest; a listing that
/// parses is grouped into variants and matched.
pub fn remote_answers(data: &[u8]) {
    use crate::fetch::{hf, name::RemoteName, ollama, variants};
    let cut = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (first, rest) = (&data[..cut], data.get(cut + 1..).unwrap_or(&[]));
    if let Ok(s) = std::str::from_utf8(first) {
        if let Ok(Some(n)) = RemoteName::parse(s) {
            // A parsed name prints back to a name that parses the same way.
            let again = match &n {
                RemoteName::Hf(h) => h.to_string(),
                RemoteName::Ollama(o) => o.to_string(),
                RemoteName::Url(u) => u.clone(),
            };
            assert_eq!(RemoteName::parse(&again).ok().flatten(), Some(n));
        }
        let _ = variants::quant_of(s);
    }
    let _ = ollama::model_layer(rest);
    if let Ok(files) = hf::parse_listing(rest) {
        let v = variants::group(files);
        let _ = variants::pick(&v, "Q4_K_M");
        let _ = v.iter().map(variants::Variant::size).count();
    }
}
