//! The reader's one error type: which file, where in it, and what was wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a GGUF file could not be read. `Display` gives one line:
/// `FILE: offset N: WHAT` (or `FILE: WHAT` when no offset applies).
#[derive(Debug)]
pub struct GgufError {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub message: String,
}

impl GgufError {
    pub fn new(path: &Path, offset: Option<u64>, message: impl Into<String>) -> GgufError {
        GgufError {
            path: path.to_path_buf(),
            offset,
            message: message.into(),
        }
    }
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{}: offset {}: {}", self.path.display(), o, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for GgufError {}
