//! "Did you mean": the names nearest to one that matched nothing, for GPU names
//! (`hardware::gpu_match`) and model names (`catalog`).

/// Edit distance with adjacent swaps counted as one edit ("8600S" is one slip from "8060S").
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// How far `name` is from `key`, both in the same (normalized) form: the edit distance, and
/// a name that contains the key, or is contained in it, counts as close.
pub fn distance(key: &str, name: &str) -> usize {
    let d = edit_distance(key, name);
    if !key.is_empty() && (name.contains(key) || key.contains(name)) {
        d.min(name.len().abs_diff(key.len()).min(2))
    } else {
        d
    }
}

/// The `n` names of the lowest scores, lowest first, shorter first on a tie, each once.
pub fn closest<'a>(scored: impl IntoIterator<Item = (usize, &'a str)>, n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = scored.into_iter().collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.len().cmp(&b.1.len())));
    let mut out: Vec<String> = Vec::new();
    for (_, name) in scored {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// The `n` names nearest to `key`, ignoring case.
pub fn nearest<'a>(key: &str, names: impl IntoIterator<Item = &'a str>, n: usize) -> Vec<String> {
    let key = key.trim().to_ascii_lowercase();
    let scored = names
        .into_iter()
        .map(|name| (distance(&key, &name.to_ascii_lowercase()), name));
    closest(scored, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("rtx4060", "rtx4060"), 0);
        assert_eq!(edit_distance("rtx4065", "rtx4060"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("8600s", "8060s"), 1);
    }

    #[test]
    fn nearest_names_come_closest_first() {
        let names = ["llama3.1:8b", "llama3.2:3b", "qwen3:8b", "gemma3:270m"];
        assert_eq!(
            nearest("llama3:8b", names, 2),
            ["llama3.1:8b", "llama3.2:3b"]
        );
        assert_eq!(nearest("QWEN3:8B", names, 1), ["qwen3:8b"]);
    }
}
