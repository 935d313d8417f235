//! Matching a GPU name the way people write it against the spec table: case, spaces and
//! punctuation do not matter, nor vendor words ("NVIDIA GeForce", "AMD Radeon", "Intel(R)
//! Arc(TM) ... Graphics", "Apple", "Tesla"), "Laptop" and "Mobile" are the same word, and a
//! memory size ("RTX 3060 8GB", "Apple M2 16 GB") picks the variant sold with it. A miss names
//! the nearest rows.

use super::gpu_table::{table, GpuSpec};

/// A table row and the memory size the name asked for, if it gave one.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub spec: GpuSpec,
    pub size_gib: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("unknown GPU '{name}': not in profiles/gpus.yaml{}; or describe it as NAME:VRAM, e.g. \"{name}:8G\"", nearest_text(.nearest))]
    Unknown { name: String, nearest: Vec<String> },
    #[error("GPU '{name}' could be {}: name one, or give the memory size (e.g. \"{name} 36GB\")", .choices.join(" or "))]
    Ambiguous { name: String, choices: Vec<String> },
}

fn nearest_text(n: &[String]) -> String {
    if n.is_empty() {
        String::new()
    } else {
        format!(" (nearest: {})", n.join(", "))
    }
}

/// Words that name a vendor or a product line rather than a GPU.
const NOISE: [&str; 12] = [
    "(r)",
    "(tm)",
    "nvidia",
    "geforce",
    "amd",
    "radeon",
    "intel",
    "graphics",
    "apple",
    "tesla",
    "gpu",
    "corporation",
];

/// The comparable form of a name: lower case, noise words out, "mobile" read as "laptop",
/// only letters and digits kept.
pub fn normalize(s: &str) -> String {
    let mut t = s.to_lowercase().replace("mobile", "laptop");
    for w in NOISE {
        t = t.replace(w, "");
    }
    t.chars().filter(|c| c.is_ascii_alphanumeric()).collect()
}

/// Splits a memory size out of a name: "RTX 3060 8GB" -> ("RTX 3060", 8), "Apple M2 16 GB"
/// -> ("Apple M2", 16). Only a whole word (or a number followed by a unit word) counts, so
/// "A10G" stays a name.
pub fn split_size(s: &str) -> (String, Option<f64>) {
    let words: Vec<&str> = s.split_whitespace().collect();
    let unit = |u: &str| matches!(u.to_ascii_lowercase().as_str(), "g" | "gb" | "gib");
    for i in 0..words.len() {
        let w = words[i];
        let digits = w
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(w.len());
        let (num, rest) = w.split_at(digits);
        let Ok(n) = num.parse::<f64>() else { continue };
        let (used, ok) = if rest.is_empty() {
            (2, words.get(i + 1).is_some_and(|u| unit(u)))
        } else {
            (1, unit(rest))
        };
        if ok && n > 0.0 {
            let mut kept: Vec<&str> = words[..i].to_vec();
            kept.extend_from_slice(&words[(i + used).min(words.len())..]);
            return (kept.join(" "), Some(n));
        }
    }
    (s.to_string(), None)
}

fn names(g: &GpuSpec) -> impl Iterator<Item = &String> {
    std::iter::once(&g.name).chain(g.aliases.iter())
}

/// Whether a row comes in `size` GiB: its card memory, or one of the sizes a unified part was
/// sold with (any size, when the row lists none).
fn sold_with(g: &GpuSpec, size: f64) -> bool {
    let same = |a: f64| (a - size).abs() < 0.01;
    match g.vram_gib {
        Some(v) => same(v),
        None => g.memory_options_gib.is_empty() || g.memory_options_gib.iter().any(|&o| same(o)),
    }
}

/// Finds the row a name means. `ram_gib` (the machine's RAM, when known) picks between
/// unified-memory variants sold with different sizes ("Apple M3 Max" with 36 or 128 GB).
pub fn find(name: &str, ram_gib: Option<f64>) -> Result<Match, MatchError> {
    let rows = table();
    let key = normalize(name);
    let exact: Vec<&GpuSpec> = rows
        .iter()
        .filter(|g| names(g).any(|n| normalize(n) == key))
        .collect();
    let (base, size) = split_size(name);
    let candidates: Vec<&GpuSpec> = if !exact.is_empty() {
        exact
    } else {
        let bkey = normalize(&base);
        rows.iter()
            .filter(|g| names(g).any(|n| normalize(&split_size(n).0) == bkey))
            .collect()
    };
    if candidates.is_empty() {
        return Err(MatchError::Unknown {
            name: name.to_string(),
            nearest: nearest(&rows, &key, 3),
        });
    }
    let want = size.or(ram_gib);
    let fitting: Vec<&GpuSpec> = match want {
        Some(s) if candidates.len() > 1 || size.is_some() => {
            let f: Vec<&GpuSpec> = candidates
                .iter()
                .copied()
                .filter(|g| sold_with(g, s))
                .collect();
            if f.is_empty() && size.is_some() {
                // A size no variant was sold with: name the variants instead.
                return Err(MatchError::Unknown {
                    name: name.to_string(),
                    nearest: candidates.iter().map(|g| g.name.clone()).collect(),
                });
            }
            if f.is_empty() {
                candidates
            } else {
                f
            }
        }
        _ => candidates,
    };
    match fitting.as_slice() {
        [one] => Ok(Match {
            spec: (*one).clone(),
            size_gib: size,
        }),
        many => Err(MatchError::Ambiguous {
            name: name.to_string(),
            choices: many.iter().map(|g| g.name.clone()).collect(),
        }),
    }
}

/// The `n` row names closest to `key` (edit distance on the normalized forms; a name that
/// contains the key, or is contained in it, counts as close).
fn nearest(rows: &[GpuSpec], key: &str, n: usize) -> Vec<String> {
    let scored = rows.iter().map(|g| {
        let d = names(g)
            .map(|a| crate::nearest::distance(key, &normalize(a)))
            .min()
            .unwrap_or(usize::MAX);
        (d, g.name.as_str())
    });
    crate::nearest::closest(scored, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_split_off_only_as_whole_words() {
        assert_eq!(split_size("RTX 3060 8GB"), ("RTX 3060".into(), Some(8.0)));
        assert_eq!(
            split_size("Apple M2 16 GB"),
            ("Apple M2".into(), Some(16.0))
        );
        assert_eq!(
            split_size("RTX 3080 Laptop 16G"),
            ("RTX 3080 Laptop".into(), Some(16.0))
        );
        assert_eq!(split_size("A10G"), ("A10G".into(), None));
        assert_eq!(split_size("RTX 4060"), ("RTX 4060".into(), None));
    }
}
