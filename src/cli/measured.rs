//! Where the speeds `run` and `serve` measure live: one JSON file per machine and engine
//! build next to the calibration (`$XDG_CACHE_HOME/layerfit/measured-<key>.json`), read by
//! later plans (`speed::measured`).

use super::calibration::{engine_key, machine_key};
use crate::hardware::Cpu;
use crate::speed::measured::{placement_key, MeasuredRun, MeasuredSpeeds, MEASURED_VERSION};
use std::path::{Path, PathBuf};

pub fn path(cpu: &Cpu) -> PathBuf {
    let cal = super::calibration::path(cpu);
    let name = cal
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("calibration.json")
        .replacen("calibration-", "measured-", 1);
    cal.with_file_name(name)
}

/// This machine's records, if a file for this CPU and engine build exists and reads.
pub fn load(cpu: &Cpu) -> Option<MeasuredSpeeds> {
    let file = path(cpu);
    if std::fs::metadata(&file).ok()?.len() > 4 << 20 {
        return None;
    }
    let m: MeasuredSpeeds = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
    (m.version == MEASURED_VERSION && m.machine == machine_key(cpu) && m.engine == engine_key())
        .then_some(m)
}

/// The file's identity for the records: its absolute path and size.
pub fn file_key(model: &Path) -> Option<(String, u64)> {
    let meta = std::fs::metadata(model).ok()?;
    let abs = std::fs::canonicalize(model).ok()?;
    Some((abs.to_string_lossy().into_owned(), meta.len()))
}

/// The plan an engine runs, for recording its answers' speeds.
#[derive(Clone, Copy)]
pub struct Timed<'a> {
    pub plan: &'a crate::plan::Plan,
    pub model: &'a Path,
    pub threads: u32,
    /// The 1-minute load average before the engine loaded.
    pub load_average: Option<f64>,
}

/// Records one answer's speeds (`stats`) for later plans; a failure to write is a warning,
/// never the answer's failure. Interrupted or too short answers, and answers with a draft
/// model (another speed), are not recorded.
pub fn record(t: &Timed, stats: &crate::engine::session::GenStats) {
    if stats.interrupted || stats.draft_tokens > 0 {
        return;
    }
    let (Some((file, file_bytes)), Some(decode)) = (file_key(t.model), stats.decode_tokens_per_s())
    else {
        return;
    };
    let cpu = crate::hardware::cpu::probe();
    let mut all =
        load(&cpu).unwrap_or_else(|| MeasuredSpeeds::new(machine_key(&cpu), engine_key()));
    let p = t.plan;
    let run = MeasuredRun {
        file,
        file_bytes,
        placement: placement_key(
            p.kv_type,
            p.n_gpu_layers,
            p.n_cpu_moe,
            p.n_cpu_ffn,
            p.no_repack,
            p.gpu_unused,
            &p.rpc,
            p.parallel.max(1),
        ),
        threads: t.threads,
        prompt_tokens: stats.prompt_tokens - stats.reused_tokens,
        generated_tokens: stats.generated_tokens,
        decode_tokens_per_s: decode,
        prompt_tokens_per_s: stats.prompt_tokens_per_s().filter(|_| {
            stats.prompt_tokens - stats.reused_tokens >= crate::speed::measured::MIN_PROMPT
        }),
        // The model's own figure (not one already scaled to earlier runs).
        expected_decode_tokens_per_s: p
            .speed
            .as_ref()
            .filter(|s| s.measured.is_none())
            .map(|s| s.decode_tokens_per_s),
        load_average: t.load_average,
        measured_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    if !all.record(run) {
        return;
    }
    if let Err(e) = save(&path(&cpu), &all) {
        super::output::warning(&format!(
            "cannot record the measured speed in {}: {e}",
            path(&cpu).display()
        ));
    }
}

fn save(file: &Path, m: &MeasuredSpeeds) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(m).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(&tmp, file)
}

/// The 1-minute load average, where the system says it.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
}
