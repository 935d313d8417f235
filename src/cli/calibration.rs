//! Where a calibration lives: one JSON file per machine and engine build under the XDG
//! cache (`$XDG_CACHE_HOME/layerfit/calibration-<key>.json`), found again only by the same
//! CPU and the same engine build.

use crate::hardware::probe::ProbeOptions;
use crate::hardware::Cpu;
use crate::speed::calibration::{Calibration, CALIBRATION_VERSION};
use std::path::PathBuf;

/// What the calibration was measured on: a described CPU with the same model and core
/// counts as this one is this one.
pub fn machine_key(cpu: &Cpu) -> String {
    format!(
        "{} | {} cores | {} threads",
        cpu.model.trim(),
        cpu.physical_cores,
        cpu.logical_cores
    )
}

/// The engine build: the bundled llama.cpp and the back-ends compiled in.
pub fn engine_key() -> String {
    format!(
        "{} | cpu{}",
        env!("LAYERFIT_LLAMA_CPP"),
        env!("LAYERFIT_BACKENDS")
    )
}

/// FNV-1a, for a short stable file name.
pub(super) fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

pub fn path(cpu: &Cpu) -> PathBuf {
    let key = format!("{}\n{}", machine_key(cpu), engine_key());
    ProbeOptions::default()
        .cache_dir
        .join(format!("calibration-{:016x}.json", hash(&key)))
}

/// The cached calibration for this CPU and engine build, if one matches (a file from an
/// older layerfit, another machine or a damaged file is ignored: measured again on demand).
pub fn load(cpu: &Cpu) -> Option<Calibration> {
    let file = path(cpu);
    let meta = std::fs::metadata(&file).ok()?;
    if meta.len() > 1 << 20 {
        return None;
    }
    let c: Calibration = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
    (c.version == CALIBRATION_VERSION
        && c.machine == machine_key(cpu)
        && c.engine == engine_key()
        && !c.points.is_empty())
    .then_some(c)
}

/// Writes atomically (a temporary file renamed over the old one).
pub fn save(cpu: &Cpu, c: &Calibration) -> std::io::Result<PathBuf> {
    let file = path(cpu);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(c).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, &file)?;
    Ok(file)
}
