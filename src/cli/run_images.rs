//! `run --image FILE`: the plan's vision projector loaded beside the model, checked against
//! the plan, and the images it reads.

use super::output::{self, Printer};
use super::Failure;
use crate::bytes::Bytes;
use crate::engine::session::Session;
use crate::engine::vision::{Image, Vision};
use crate::plan::projector::ProjectorPlan;
use serde::Serialize;
use std::path::PathBuf;

/// `run --json`'s account of the projector: planned against what llama.cpp's loader said.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ProjectorDoc {
    pub file: String,
    pub device: String,
    pub planned_weights_bytes: Bytes,
    pub planned_compute_bytes: Bytes,
    /// llama.cpp's "model size" and "compute buffer size" log lines (MiB, two decimals).
    pub loaded_weights_bytes: Bytes,
    pub loaded_compute_bytes: Bytes,
    /// Both figures within 5% (or 0.01 MiB, the log's precision) of the plan.
    pub within_5_percent: bool,
    /// Images read with the prompt.
    pub images: usize,
}

fn close(planned: Bytes, loaded: Bytes) -> bool {
    let (p, l) = (planned.get() as f64, loaded.get() as f64);
    (p - l).abs() <= (0.05 * p).max(0.01 * 1048576.0)
}

/// Refuses a projector that is not on this machine (planned from its remote header).
pub fn on_disk(p: &ProjectorPlan) -> Result<(), Failure> {
    match p.url.as_ref().filter(|_| !p.path.is_file()) {
        Some(url) => Err(Failure::BadInput(format!(
            "--mmproj: the projector is not on this machine: download {url} to {} (e.g. curl -L -o FILE URL) and run again",
            p.path.display()
        ))),
        None => Ok(()),
    }
}

/// Loads the plan's projector for `session`; `None` when the plan has none.
pub fn load(
    plan: Option<&ProjectorPlan>,
    session: &Session,
    threads: i32,
    printer: &Printer,
) -> Result<Option<(Vision, ProjectorDoc)>, Failure> {
    let Some(p) = plan else {
        return Ok(None);
    };
    on_disk(p)?;
    let v = Vision::load(&p.path, session.model_raw(), p.offload, threads)
        .map_err(|e| Failure::BadInput(format!("--mmproj {}", e.0)))?;
    let doc = ProjectorDoc {
        file: p.file.clone(),
        device: p.device.clone(),
        planned_weights_bytes: p.weights_bytes,
        planned_compute_bytes: p.compute_bytes,
        loaded_weights_bytes: v.loaded.weights,
        loaded_compute_bytes: v.loaded.compute,
        within_5_percent: close(p.weights_bytes, v.loaded.weights)
            && close(p.compute_bytes, v.loaded.compute),
        images: 0,
    };
    if doc.within_5_percent {
        output::note(&format!(
            "self-check (projector): llama.cpp loaded {} of weights and {} of compute buffers, the plan said {} and {}",
            doc.loaded_weights_bytes,
            doc.loaded_compute_bytes,
            doc.planned_weights_bytes,
            doc.planned_compute_bytes
        ));
    } else {
        printer.warning(&format!(
            "self-check (projector) drift: llama.cpp loaded {} of weights and {} of compute buffers, the plan said {} and {} (a memory-model bug: please report it)",
            doc.loaded_weights_bytes,
            doc.loaded_compute_bytes,
            doc.planned_weights_bytes,
            doc.planned_compute_bytes
        ));
    }
    Ok(Some((v, doc)))
}

/// Reads and decodes `--image` files (none without the flag).
pub fn read(paths: &[PathBuf], vision: Option<&Vision>) -> Result<Vec<Image>, Failure> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let Some(v) = vision else {
        return Err(Failure::BadInput(
            "--image needs a vision projector: add --mmproj FILE (or --mmproj auto for the mmproj file next to the model)".into(),
        ));
    };
    paths
        .iter()
        .map(|p| {
            let bytes = read_image_file(p)
                .map_err(|e| Failure::BadInput(format!("--image {}: {e}", p.display())))?;
            v.image(&bytes)
                .map_err(|e| Failure::BadInput(format!("--image {}: {}", p.display(), e.0)))
        })
        .collect()
}

/// The first user message with one image marker per image in front of its text.
pub fn with_markers(text: &str, n: usize) -> String {
    let marker = Vision::marker();
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(&marker);
        s.push('\n');
    }
    s.push_str(text);
    s
}

/// The largest image file read: an image llama.cpp resizes to a few hundred patches is
/// never this large; anything bigger is refused before it is read.
pub const MAX_IMAGE_BYTES: u64 = 64 << 20;

fn read_image_file(p: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => e.to_string(),
    })?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(p)
        .and_then(|f| f.take(MAX_IMAGE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_IMAGE_BYTES {
        return Err(format!("larger than {} MiB", MAX_IMAGE_BYTES >> 20));
    }
    Ok(bytes)
}
