//! Hostile and broken input: every case gets exit code 2 and one `error:` line that names the
//! file and what is wrong where, without a panic, a hang or a huge allocation.

mod common;

use layerfit::ggml_type::GgmlType;
use layerfit::gguf::writer::{Data, GgufWriter, WriteValue};
use std::path::{Path, PathBuf};

fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

/// Runs `inspect` on `path` and checks the contract; returns the error line.
fn rejects(path: &Path, expect: &str) -> String {
    let (code, stdout, stderr) = layerfit(&["inspect", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{}: exit code (stderr: {stderr})", path.display());
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("error: "), "{line}");
    assert!(
        line.contains(path.to_str().unwrap()),
        "names the file: {line}"
    );
    assert!(line.contains(expect), "says '{expect}': {line}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    line.to_string()
}

fn valid() -> GgufWriter {
    let mut w = common::base_writer("llama", 2, 64, 64);
    w.kv("llama.attention.head_count", WriteValue::U32(4))
        .kv("llama.attention.head_count_kv", WriteValue::U32(2))
        .kv("llama.feed_forward_length", WriteValue::U32(128));
    w.tensor("token_embd.weight", &[64, 64], GgmlType::Q8_0)
        .tensor("blk.0.attn_q.weight", &[64, 64], GgmlType::F16)
        .tensor("blk.1.attn_q.weight", &[64, 64], GgmlType::F16);
    w
}

fn dir() -> PathBuf {
    common::tempdir("bad")
}

fn write_bytes(name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn patched(name: &str, f: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let (mut h, _) = valid().header_bytes();
    f(&mut h);
    write_bytes(name, &h)
}

fn find(h: &[u8], needle: &[u8]) -> usize {
    h.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn the_valid_fixture_is_accepted() {
    let p = dir().join("valid.gguf");
    valid().write(&p, Data::Sparse).unwrap();
    let (code, _, stderr) = layerfit(&["inspect", p.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn empty_file() {
    rejects(&write_bytes("empty.gguf", b""), "file is empty");
}

#[test]
fn wrong_magic() {
    rejects(
        &write_bytes("text.gguf", b"hello, this is not a model at all\n"),
        "not a GGUF file",
    );
}

#[test]
fn truncated_header() {
    let (h, _) = valid().header_bytes();
    rejects(
        &write_bytes("cut.gguf", &h[..h.len() / 2]),
        "truncated header",
    );
    rejects(&write_bytes("cut8.gguf", &h[..8]), "truncated header");
}

#[test]
fn gguf_version_1_and_unknown_versions() {
    rejects(
        &patched("v1.gguf", |h| h[4..8].copy_from_slice(&1u32.to_le_bytes())),
        "version 1",
    );
    rejects(
        &patched("v9.gguf", |h| h[4..8].copy_from_slice(&9u32.to_le_bytes())),
        "unknown GGUF version 9",
    );
    rejects(
        &patched("be.gguf", |h| h[4..8].copy_from_slice(&3u32.to_be_bytes())),
        "big-endian",
    );
}

#[test]
fn absurd_counts() {
    let l = rejects(
        &patched("kv.gguf", |h| {
            h[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes())
        }),
        "metadata entries",
    );
    assert!(l.contains("offset"), "{l}");
    rejects(
        &patched("tensors.gguf", |h| {
            h[8..16].copy_from_slice(&u64::MAX.to_le_bytes())
        }),
        "tensors cannot fit",
    );
}

#[test]
fn absurd_string_and_array_lengths() {
    let l = rejects(
        &patched("keylen.gguf", |h| {
            h[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes())
        }),
        "a metadata key claims",
    );
    assert!(l.contains("offset 24"), "{l}");
    let l = rejects(
        &patched("arraylen.gguf", |h| {
            // tokenizer.ggml.scores: key, type 9 (array), elem type 6 (f32), then the length.
            let at = find(h, b"tokenizer.ggml.scores") + "tokenizer.ggml.scores".len() + 8;
            h[at..at + 8].copy_from_slice(&(1u64 << 61).to_le_bytes());
        }),
        "claims an array of",
    );
    assert!(l.contains("'tokenizer.ggml.scores'"), "names the key: {l}");
}

#[test]
fn unknown_value_type() {
    let l = rejects(
        &patched("vtype.gguf", |h| {
            let at = find(h, b"general.architecture") + "general.architecture".len();
            h[at..at + 4].copy_from_slice(&77u32.to_le_bytes());
        }),
        "unknown type 77",
    );
    assert!(l.contains("'general.architecture'"), "{l}");
}

fn tensor_field(h: &[u8], name: &str, n_dims: usize) -> usize {
    // name, n_dims (u32), dims (u64 each): returns the offset of the type field.
    find(h, name.as_bytes()) + name.len() + 4 + 8 * n_dims
}

#[test]
fn unknown_tensor_type_and_bad_dims() {
    let l = rejects(
        &patched("ttype.gguf", |h| {
            let at = tensor_field(h, "blk.0.attn_q.weight", 2);
            h[at..at + 4].copy_from_slice(&4u32.to_le_bytes());
        }),
        "unknown ggml type 4",
    );
    assert!(l.contains("'blk.0.attn_q.weight'"), "{l}");
    rejects(
        &patched("ndims.gguf", |h| {
            let at = find(h, b"blk.1.attn_q.weight") + "blk.1.attn_q.weight".len();
            h[at..at + 4].copy_from_slice(&9u32.to_le_bytes());
        }),
        "has 9 dimensions",
    );
    rejects(
        &patched("shape.gguf", |h| {
            let at = find(h, b"token_embd.weight") + "token_embd.weight".len() + 4;
            h[at..at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
            h[at + 8..at + 16].copy_from_slice(&(1u64 << 62).to_le_bytes());
        }),
        "absurd shape",
    );
}

#[test]
fn offsets_misaligned_overlapping_or_past_the_end() {
    let offset_of = |h: &[u8], name: &str| tensor_field(h, name, 2) + 4;
    rejects(
        &patched("misaligned.gguf", |h| {
            let at = offset_of(h, "blk.1.attn_q.weight");
            let v = u64::from_le_bytes(h[at..at + 8].try_into().unwrap()) + 4;
            h[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }),
        "not a multiple of the alignment",
    );
    rejects(
        &patched("overlap.gguf", |h| {
            let at = offset_of(h, "blk.1.attn_q.weight");
            h[at..at + 8].copy_from_slice(&32u64.to_le_bytes());
        }),
        "overlaps",
    );
    let l = rejects(
        &patched("past.gguf", |h| {
            let at = offset_of(h, "blk.1.attn_q.weight");
            h[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        }),
        "past the end of the tensor data",
    );
    assert!(l.contains("'blk.1.attn_q.weight'"), "{l}");
}

#[test]
fn duplicate_key() {
    let mut w = valid();
    w.kv("general.dupe_a", WriteValue::U32(1))
        .kv("general.dupe_b", WriteValue::U32(2));
    let (mut h, _) = w.header_bytes();
    let at = find(&h, b"general.dupe_b");
    h[at + "general.dupe_".len()] = b'a';
    let l = rejects(
        &write_bytes("dup.gguf", &h),
        "'general.dupe_a' appears twice",
    );
    assert!(l.contains("offset"), "{l}");
}

#[test]
fn semantic_errors_name_the_key() {
    let d = dir();
    let mut w = valid();
    w.remove_kv("general.architecture");
    let p = d.join("noarch.gguf");
    w.write(&p, Data::Sparse).unwrap();
    rejects(&p, "'general.architecture' is missing");

    let mut w = valid();
    w.kv("llama.attention.head_count", WriteValue::U32(0));
    let p = d.join("zeroheads.gguf");
    w.write(&p, Data::Sparse).unwrap();
    rejects(&p, "'llama.attention.head_count' is 0");

    let mut w = valid();
    w.kv("llama.attention.head_count_kv", WriteValue::U32(0));
    let p = d.join("zerokv.gguf");
    w.write(&p, Data::Sparse).unwrap();
    rejects(&p, "'llama.attention.head_count_kv' is 0");

    let mut w = valid();
    w.remove_kv("llama.block_count");
    let p = d.join("noblocks.gguf");
    w.write(&p, Data::Sparse).unwrap();
    rejects(&p, "'llama.block_count' is missing");

    let mut w = valid();
    w.kv("llama.block_count", WriteValue::Str("two".into()));
    let p = d.join("strblocks.gguf");
    w.write(&p, Data::Sparse).unwrap();
    rejects(&p, "should be a non-negative integer");
}

#[test]
fn not_a_file() {
    rejects(&dir(), "is a directory");
    rejects(Path::new("/dev/null"), "not a regular file");
    rejects(&dir().join("does-not-exist.gguf"), "no such file");
}

#[test]
fn missing_shard_of_a_split_set() {
    let d = dir();
    let p1 = d.join("model-00001-of-00002.gguf");
    valid().write(&p1, Data::Sparse).unwrap();
    let (code, _, stderr) = layerfit(&["inspect", p1.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("model-00002-of-00002.gguf") && stderr.contains("shard 2 of 2"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_are_bad_input() {
    let (code, _, stderr) = layerfit(&["inspect", "x.gguf", "--ctx", "lots"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = layerfit(&["inspect", "x.gguf", "--cache-type", "q9_9"]);
    assert_eq!(code, 2);
}

/// A model name that is neither a file nor in the catalog gets the nearest catalog names, in
/// plan and inspect alike, still as bad input (exit 2) on one `error:` line.
#[test]
fn unknown_model_names_get_did_you_mean() {
    for (args, expect) in [
        (
            &["plan", "--model", "qwen-coder:7b"][..],
            "qwen2.5-coder:7b",
        ),
        (&["inspect", "qwen-coder:7b"][..], "qwen2.5-coder:7b"),
        (
            &["check-requirements", "--model", "llama3"][..],
            "llama3:8b",
        ),
        (
            &["plan", "--model", "smolm2:135m-q4_1"][..],
            "smollm2:135m-q4_1",
        ),
    ] {
        let (code, stdout, stderr) = layerfit(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        let suggested = errors[0]
            .split_once("did you mean ")
            .unwrap_or_else(|| panic!("{args:?}: no suggestion: {stderr}"))
            .1;
        assert!(suggested.contains(expect), "{args:?}: {stderr}");
    }
}
