//! A repository's GGUF files grouped the way a user picks them: one variant per quant, the
//! shards of a split set together, vision projectors (`mmproj`) left out. Pure functions
//! over file lists, shared by the Hub listing, the Hugging Face cache and the models folder.

use std::path::PathBuf;

/// One file of a variant: where it is in the repository, and how to get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    /// The path inside the repository (`sub/name-00001-of-00002.gguf`).
    pub path: String,
    pub size: Option<u64>,
    /// The SHA-256 the source publishes (the Hub's `lfs.oid`, Ollama's digest).
    pub sha256: Option<String>,
}

/// One model of a repository: a quant, possibly split into shards (in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// `Q4_K_M` as the file names write it; `None` when no name says.
    pub quant: Option<String>,
    pub files: Vec<RepoFile>,
}

impl Variant {
    pub fn size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// The quant a file name carries (llama.cpp's `-hf REPO:QUANT` matches these): the last
/// `-`/`.`-separated part that reads as one (`Q4_K_M`, `IQ4_XS`, `F16`, `BF16`, `Q8_0`).
pub fn quant_of(file_name: &str) -> Option<String> {
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    let stem = base
        .strip_suffix(".gguf")
        .or_else(|| base.strip_suffix(".GGUF"))
        .unwrap_or(base);
    let stem = split_prefix(stem).unwrap_or(stem);
    stem.rsplit(['-', '.'])
        .find(|p| is_quant(p))
        .map(str::to_string)
}

fn is_quant(p: &str) -> bool {
    let u = p.to_ascii_uppercase();
    let digit_after = |pre: &str| {
        u.strip_prefix(pre)
            .and_then(|r| r.chars().next())
            .is_some_and(|c| c.is_ascii_digit())
    };
    let known = ["F16", "F32", "BF16"].contains(&u.as_str());
    (known || digit_after("Q") || digit_after("IQ") || digit_after("TQ") || digit_after("MXFP"))
        && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `name-00001-of-00003` → `name` (llama.cpp's split naming).
fn split_prefix(stem: &str) -> Option<&str> {
    let (rest, count) = stem.rsplit_once("-of-")?;
    let (prefix, index) = rest.rsplit_once('-')?;
    (index.len() == 5
        && count.len() == 5
        && index.bytes().all(|b| b.is_ascii_digit())
        && count.bytes().all(|b| b.is_ascii_digit()))
    .then_some(prefix)
}

/// Groups a listing's GGUF files into variants, in listing order of their first file.
pub fn group(files: Vec<RepoFile>) -> Vec<Variant> {
    let mut out: Vec<(String, Variant)> = Vec::new();
    for f in files {
        let lower = f.path.to_ascii_lowercase();
        if !lower.ends_with(".gguf")
            || lower
                .rsplit('/')
                .next()
                .is_some_and(|n| n.contains("mmproj"))
        {
            continue;
        }
        let stem = &f.path[..f.path.len() - 5];
        let set = split_prefix(stem).unwrap_or(stem).to_string();
        match out.iter_mut().find(|(k, _)| *k == set) {
            Some((_, v)) => v.files.push(f),
            None => out.push((
                set,
                Variant {
                    quant: quant_of(&f.path),
                    files: vec![f],
                },
            )),
        }
    }
    for (_, v) in &mut out {
        v.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    out.into_iter().map(|(_, v)| v).collect()
}

/// The variant `tag` names: its quant, case-insensitively (several files of one quant:
/// the first, as llama.cpp takes it).
pub fn pick<'v>(variants: &'v [Variant], tag: &str) -> Option<&'v Variant> {
    variants.iter().find(|v| {
        v.quant
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case(tag))
    })
}

/// The variant whose files include `path` (a shard names its whole set).
pub fn containing<'v>(variants: &'v [Variant], path: &str) -> Option<&'v Variant> {
    variants
        .iter()
        .find(|v| v.files.iter().any(|f| f.path == path))
}

/// Every `.gguf` under `root` as repository-relative paths (following the Hugging Face
/// cache's symlinks to blobs), with sizes; at most `limit` levels deep.
pub fn local_files(root: &std::path::Path, limit: usize) -> Vec<(RepoFile, PathBuf)> {
    let mut out = Vec::new();
    walk(root, root, limit, &mut out);
    out.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    out
}

fn walk(
    root: &std::path::Path,
    dir: &std::path::Path,
    depth: usize,
    out: &mut Vec<(RepoFile, PathBuf)>,
) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() && depth > 0 {
            walk(root, &p, depth - 1, out);
        } else if meta.is_file()
            && p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
        {
            let Ok(rel) = p.strip_prefix(root) else {
                continue;
            };
            let Some(rel) = rel.to_str() else { continue };
            out.push((
                RepoFile {
                    path: rel.replace('\\', "/"),
                    size: Some(meta.len()),
                    sha256: None,
                },
                p,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &str) -> RepoFile {
        RepoFile {
            path: p.into(),
            size: Some(1),
            sha256: None,
        }
    }

    #[test]
    fn quants_from_names() {
        assert_eq!(
            quant_of("Qwen2.5-7B-Instruct-Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(
            quant_of("smollm2-135m-instruct-q4_1.gguf").as_deref(),
            Some("q4_1")
        );
        assert_eq!(
            quant_of("gemma-3-270m-it-Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(
            quant_of("x/model.IQ4_XS-00001-of-00002.gguf").as_deref(),
            Some("IQ4_XS")
        );
        assert_eq!(quant_of("phi-3-mini-4k-instruct-fp16.gguf"), None);
        assert_eq!(quant_of("llama-bf16.gguf").as_deref(), Some("bf16"));
        assert_eq!(quant_of("Qwen3-8B.gguf"), None);
    }

    #[test]
    fn grouping() {
        let v = group(vec![
            f("a-Q8_0.gguf"),
            f("big/a-Q4_K_M-00002-of-00002.gguf"),
            f("big/a-Q4_K_M-00001-of-00002.gguf"),
            f("mmproj-a-f16.gguf"),
            f("README.md"),
        ]);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].files[0].path, "big/a-Q4_K_M-00001-of-00002.gguf");
        assert_eq!(pick(&v, "q4_k_m").unwrap().files.len(), 2);
        assert!(pick(&v, "q2_k").is_none());
        assert_eq!(
            containing(&v, "big/a-Q4_K_M-00002-of-00002.gguf")
                .unwrap()
                .quant
                .as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(v[0].size(), Some(1));
    }
}
