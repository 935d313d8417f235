//! Looking catalog names up: `family:size-variant` or `family:size`, with the nearest names
//! when a name is unknown.

use super::quant::Ftype;
use super::{entries, CatalogError, Entry};

/// A model named the way users and profiles name them: `family:size-variant`
/// (`qwen2.5-coder:7b-q4_k_m`) or `family:size` (every variant, for variant search).
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogRef {
    pub entry: Entry,
    /// `None`: search the entry's variants.
    pub ftype: Option<Ftype>,
}

/// Looks a name up; `Ok(None)` when it is not a catalog name at all.
pub fn lookup(spec: &str) -> Result<Option<CatalogRef>, CatalogError> {
    let spec = spec.trim().to_ascii_lowercase();
    if !spec.contains(':') {
        return Ok(None);
    }
    let all = entries()?;
    if let Some(e) = all.iter().find(|e| e.name == spec) {
        return Ok(Some(CatalogRef {
            entry: e.clone(),
            ftype: None,
        }));
    }
    for e in &all {
        if let Some(v) = spec
            .strip_prefix(e.name.as_str())
            .and_then(|r| r.strip_prefix('-'))
        {
            let f = Ftype::from_name(v).filter(|f| e.variants.contains_key(f.name()));
            return match f {
                Some(f) => Ok(Some(CatalogRef {
                    entry: e.clone(),
                    ftype: Some(f),
                })),
                None => Err(CatalogError::NoVariant {
                    entry: e.name.clone(),
                    variant: v.to_string(),
                    known: e.variants.keys().cloned().collect::<Vec<_>>().join(", "),
                }),
            };
        }
    }
    Err(CatalogError::Unknown {
        nearest: nearest_names(&spec, &all),
        name: spec,
    })
}

/// The catalog names nearest to a name that is neither a file nor in the catalog.
pub fn suggestions(spec: &str) -> Vec<String> {
    entries()
        .map(|all| nearest_names(spec, &all))
        .unwrap_or_default()
}

/// The catalog names nearest to an unknown one: entries (`llama3.1:8b`) and their variants
/// (`llama3.1:8b-q4_k_m`), three at most.
fn nearest_names(spec: &str, all: &[Entry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in all {
        names.push(e.name.clone());
        names.extend(e.variants.keys().map(|v| format!("{}-{v}", e.name)));
    }
    crate::nearest::nearest(spec, names.iter().map(String::as_str), 3)
}

/// ": did you mean a, b or c?", or nothing when there is nothing to suggest.
pub fn did_you_mean(nearest: &[String]) -> String {
    match nearest {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [rest @ .., last] => format!("; did you mean {} or {last}?", rest.join(", ")),
    }
}
