//! Where a model's header comes from: one local file or a split set of shards
//! (`name-00001-of-00003.gguf`), complete or partially downloaded.

use super::{read_header, GgufError, Header, Metadata, TensorInfo};
use std::path::{Path, PathBuf};

/// A model as layerfit sees it: the metadata of its first shard and the tensors of all of
/// them, plus how much of the tensor data is actually on disk.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// The path the user gave.
    pub path: PathBuf,
    pub shards: Vec<Header>,
}

impl ModelFile {
    pub fn metadata(&self) -> &Metadata {
        &self.shards[0].metadata
    }

    pub fn tensors(&self) -> impl Iterator<Item = &TensorInfo> {
        self.shards.iter().flat_map(|s| s.tensors.iter())
    }

    /// Bytes of tensor data missing across all shards (0 for a complete download).
    pub fn missing_bytes(&self) -> u64 {
        self.shards.iter().map(Header::missing_bytes).sum()
    }

    pub fn is_complete(&self) -> bool {
        self.missing_bytes() == 0
    }

    /// The vocabulary size implied by the embedding matrix (`token_embd.weight`, ne[1]), for
    /// files whose metadata has neither a vocabulary size nor a token list.
    pub fn tensor_vocab(&self) -> Option<u64> {
        self.tensors()
            .find(|t| t.name == "token_embd.weight")
            .and_then(|t| t.dims.get(1).copied())
    }

    /// Bytes the complete model occupies on disk.
    pub fn expected_size(&self) -> u64 {
        self.shards.iter().map(Header::expected_file_size).sum()
    }
}

/// If `path` names a shard of a split set, returns every shard's path in order.
pub fn split_shard_paths(path: &Path) -> Option<Vec<PathBuf>> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gguf")?;
    // `<prefix>-NNNNN-of-MMMMM`, the naming of llama.cpp's `llama_split_path`.
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, index) = rest.rsplit_once('-')?;
    if index.len() != 5 || count.len() != 5 {
        return None;
    }
    let _: u32 = index.parse().ok()?;
    let count: u32 = count.parse().ok()?;
    if count == 0 {
        return None;
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    Some(
        (1..=count)
            .map(|i| dir.join(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
            .collect(),
    )
}

/// Opens a local model: a single file, or every shard of a split set when `path` is one of
/// them. The shards must agree with each other (`split.count`, `split.no`).
pub fn open_model(path: &Path) -> Result<ModelFile, GgufError> {
    let Some(paths) = split_shard_paths(path) else {
        let header = read_header(path)?;
        return Ok(ModelFile {
            path: path.to_path_buf(),
            shards: vec![header],
        });
    };
    let mut shards = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        if !p.exists() {
            return Err(GgufError::new(
                p,
                None,
                format!(
                    "shard {} of {} of the split model {} is missing",
                    i + 1,
                    paths.len(),
                    path.display()
                ),
            ));
        }
        shards.push(read_header(p)?);
    }
    assemble(path, shards)
}

/// Checks that the headers of a split set (in shard order) belong together, as llama.cpp's
/// loader does: each shard's `split.count` and `split.no` match its place, and no tensor
/// appears twice. Pure, so the fuzzer can feed it headers read from memory.
pub fn assemble(path: &Path, shards: Vec<Header>) -> Result<ModelFile, GgufError> {
    let n = shards.len();
    for (i, h) in shards.iter().enumerate() {
        let count = h.metadata.get("split.count").and_then(|v| v.as_u64());
        let no = h.metadata.get("split.no").and_then(|v| v.as_u64());
        if count.is_some_and(|c| c != n as u64) || no.is_some_and(|x| x != i as u64) {
            return Err(GgufError::new(
                &h.path,
                None,
                format!(
                    "split metadata (split.no {:?}, split.count {:?}) does not match the file name (shard {} of {})",
                    no,
                    count,
                    i + 1,
                    n
                ),
            ));
        }
    }
    if shards.is_empty() {
        return Err(GgufError::new(
            path,
            None,
            "a split set needs at least one shard",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for s in &shards {
        for t in &s.tensors {
            if !seen.insert(t.name.as_str()) {
                return Err(GgufError::new(
                    &s.path,
                    None,
                    format!("tensor '{}' appears in more than one shard", t.name),
                ));
            }
        }
    }
    Ok(ModelFile {
        path: path.to_path_buf(),
        shards,
    })
}
