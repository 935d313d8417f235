//! Speeds `run` and `serve` measured on this machine, per model file and placement, as plain
//! data: later plans of that file and placement use them instead of the model's figure and
//! say so, and every run's error against the model's own figure sets how wide the bands of
//! the other plans on this machine are (docs/speed.md). The CLI stores them next to the
//! calibration (`cli::measured`).

use crate::ggml_type::GgmlType;
use serde::{Deserialize, Serialize};

/// Bump when the records change meaning: older files are dropped.
pub const MEASURED_VERSION: u32 = 1;

/// Runs kept per file, placement and thread count (the newest).
const KEEP_PER_KEY: usize = 5;
/// Runs kept in all (the newest).
const KEEP: usize = 200;
/// Generated tokens below which a run is too short to time (the first token's time and the
/// timer's resolution weigh too much).
pub const MIN_GENERATED: u32 = 16;
/// Prompt tokens below which a run's prompt rate says little about a micro-batch's.
pub const MIN_PROMPT: u32 = 32;
/// The least half-width of a band drawn from runs: one run shows no spread of its own, and
/// the same answer timed twice on an idle machine differs by a few percent.
pub const MIN_RUN_BAND: f64 = 0.05;

/// One answer timed by the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MeasuredRun {
    /// The model file (absolute path) and its size in bytes: another file at that path is
    /// another model.
    pub file: String,
    pub file_bytes: u64,
    /// The plan's placement (`placement_key`).
    pub placement: String,
    pub threads: u32,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub decode_tokens_per_s: f64,
    /// `None` when the prompt was too short to time (`MIN_PROMPT`).
    pub prompt_tokens_per_s: Option<f64>,
    /// What the plan expected at the start of a conversation, when it had a figure: the
    /// model's error on this run.
    pub expected_decode_tokens_per_s: Option<f64>,
    /// The 1-minute load average when the answer began.
    pub load_average: Option<f64>,
    /// Unix seconds.
    pub measured_at: u64,
}

impl MeasuredRun {
    /// Where the decode was timed: the cache position halfway through the answer.
    pub fn decode_position(&self) -> f64 {
        self.prompt_tokens as f64 + self.generated_tokens as f64 / 2.0
    }

    /// Measured over expected decode speed (1.0: the model was right).
    pub fn model_ratio(&self) -> Option<f64> {
        self.expected_decode_tokens_per_s
            .filter(|e| e.is_finite() && *e > 0.0)
            .map(|e| self.decode_tokens_per_s / e)
    }
}

/// Every run recorded on one machine with one engine build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MeasuredSpeeds {
    pub version: u32,
    /// The calibration's machine and engine keys: records are used only when both match.
    pub machine: String,
    pub engine: String,
    pub runs: Vec<MeasuredRun>,
}

/// A placement as the records key it: the cache type, llama.cpp's layer and tensor flags,
/// the devices and the sequences.
#[allow(clippy::too_many_arguments)]
pub fn placement_key(
    kv: GgmlType,
    ngl: u32,
    cpu_moe: u32,
    cpu_ffn: u32,
    no_repack: bool,
    gpu_unused: bool,
    rpc: &[String],
    parallel: u32,
) -> String {
    let mut k = format!("{} -ngl {ngl}", kv.name());
    if cpu_moe > 0 {
        k.push_str(&format!(" --n-cpu-moe {cpu_moe}"));
    }
    if cpu_ffn > 0 {
        k.push_str(&format!(" --n-cpu-ffn {cpu_ffn}"));
    }
    if no_repack {
        k.push_str(" --no-repack");
    }
    if gpu_unused {
        k.push_str(" -dev none");
    }
    if !rpc.is_empty() {
        k.push_str(&format!(" --rpc {}", rpc.join(",")));
    }
    if parallel > 1 {
        k.push_str(&format!(" -np {parallel}"));
    }
    k
}

impl MeasuredSpeeds {
    pub fn new(machine: String, engine: String) -> Self {
        MeasuredSpeeds {
            version: MEASURED_VERSION,
            machine,
            engine,
            runs: Vec::new(),
        }
    }

    /// Adds a run (too short ones are not timed well enough and are left out: `false`),
    /// keeping the newest few per file, placement and thread count.
    pub fn record(&mut self, run: MeasuredRun) -> bool {
        let ok = |x: f64| x.is_finite() && x > 0.0;
        if run.generated_tokens < MIN_GENERATED || !ok(run.decode_tokens_per_s) {
            return false;
        }
        let same = |r: &MeasuredRun| {
            r.file == run.file
                && r.file_bytes == run.file_bytes
                && r.placement == run.placement
                && r.threads == run.threads
        };
        let n_same = self.runs.iter().filter(|r| same(r)).count();
        if n_same >= KEEP_PER_KEY {
            if let Some(oldest) = self.runs.iter().position(same) {
                self.runs.remove(oldest);
            }
        }
        self.runs.push(run);
        if self.runs.len() > KEEP {
            let extra = self.runs.len() - KEEP;
            self.runs.drain(..extra);
        }
        true
    }

    /// The runs of one file at a thread count: those with `placement` when there are any
    /// (`true`), else those of its other placements (`false`: the model carries their
    /// measured-to-expected ratio over to this one).
    pub fn of(
        &self,
        file: &str,
        bytes: u64,
        placement: &str,
        threads: u32,
    ) -> (Vec<&MeasuredRun>, bool) {
        let file_runs: Vec<&MeasuredRun> = self
            .runs
            .iter()
            .filter(|r| r.file == file && r.file_bytes == bytes && r.threads == threads)
            .collect();
        let same: Vec<&MeasuredRun> = file_runs
            .iter()
            .copied()
            .filter(|r| r.placement == placement)
            .collect();
        if same.is_empty() {
            (file_runs, false)
        } else {
            (same, true)
        }
    }

    /// The model's error on this machine: the largest relative difference between a
    /// measured decode speed and the plan's figure for it, over every run recorded (each
    /// file's newest runs); `None` before any run with an expected figure.
    pub fn model_error(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter_map(MeasuredRun::model_ratio)
            .map(|r| (r - 1.0).abs())
            .filter(|e| e.is_finite())
            .max_by(f64::total_cmp)
    }
}

/// The median of `v` (not empty).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The largest relative distance of `v`'s values from `m`, at least `MIN_RUN_BAND`.
pub fn spread(v: &[f64], m: f64) -> f64 {
    v.iter()
        .map(|x| (x / m - 1.0).abs())
        .filter(|e| e.is_finite())
        .fold(MIN_RUN_BAND, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(placement: &str, decode: f64, expected: Option<f64>) -> MeasuredRun {
        MeasuredRun {
            file: "/m.gguf".into(),
            file_bytes: 10,
            placement: placement.into(),
            threads: 2,
            prompt_tokens: 40,
            generated_tokens: 64,
            decode_tokens_per_s: decode,
            prompt_tokens_per_s: Some(300.0),
            expected_decode_tokens_per_s: expected,
            load_average: None,
            measured_at: 0,
        }
    }

    #[test]
    fn runs_are_kept_per_key_and_short_ones_are_left_out() {
        let mut m = MeasuredSpeeds::new("m".into(), "e".into());
        for i in 0..8 {
            assert!(m.record(run("q8_0 -ngl 0", 100.0 + i as f64, None)));
        }
        assert!(m.record(run("f16 -ngl 0", 90.0, Some(100.0))));
        let mut short = run("f16 -ngl 0", 90.0, None);
        short.generated_tokens = 3;
        assert!(!m.record(short));
        let (q8, same) = m.of("/m.gguf", 10, "q8_0 -ngl 0", 2);
        assert!(same);
        assert_eq!(q8.len(), KEEP_PER_KEY);
        assert_eq!(q8[0].decode_tokens_per_s, 103.0, "the oldest went first");
        assert!(m.of("/m.gguf", 11, "q8_0 -ngl 0", 2).0.is_empty());
        // Another placement of the file: every run of the file, flagged as not its own.
        let (other, same) = m.of("/m.gguf", 10, "q4_0 -ngl 0", 2);
        assert!(!same);
        assert_eq!(other.len(), KEEP_PER_KEY + 1);
        assert!((m.model_error().unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn the_spread_is_the_largest_distance_and_at_least_the_floor() {
        let mut v = vec![90.0, 110.0, 100.0];
        let m = median(&mut v);
        assert_eq!(m, 100.0);
        assert!((spread(&v, m) - 0.1).abs() < 1e-12);
        assert_eq!(spread(&[100.0], 100.0), MIN_RUN_BAND);
    }

    #[test]
    fn placement_keys_name_every_flag_that_changes_speed() {
        let k = placement_key(GgmlType::Q8_0, 12, 0, 3, true, false, &["h:1".into()], 2);
        assert_eq!(k, "q8_0 -ngl 12 --n-cpu-ffn 3 --no-repack --rpc h:1 -np 2");
    }
}
