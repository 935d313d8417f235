//! The speed model: tokens/s of a plan from what each device can do. This CPU's figures are
//! measured by `layerfit bench` through the bundled engine (`calibration`); GPUs that are
//! not here, and CPUs that are only described, use published figures (`published`).

mod attention_rates;
pub mod calibration;
pub mod ffn_activation;
pub mod measured;
pub mod model;
pub mod published;

pub use calibration::{Calibration, ThreadRates};
pub use model::{AttnLayer, Part, Rates};

/// How sure a figure is, as a relative half-width of its band: what the speed benchmark
/// (`cargo bench --bench speed_model`) found on the calibrated CPU, and wider where the
/// figures are published rather than measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Basis {
    /// This machine, calibrated.
    Measured,
    /// Published GPU figures (spec table x efficiency from llama.cpp benchmarks).
    Published,
    /// Rough figures (an uncalibrated or described CPU, a GPU without a table entry).
    Rough,
}

impl Basis {
    /// Relative half-width of the band: (decode, prompt).
    pub fn band(self) -> (f64, f64) {
        match self {
            Basis::Measured => (0.15, 0.25),
            Basis::Published => (0.25, 0.35),
            Basis::Rough => (0.5, 0.6),
        }
    }

    /// The least sure of two.
    pub fn worst(self, other: Basis) -> Basis {
        let rank = |b: Basis| match b {
            Basis::Measured => 0,
            Basis::Published => 1,
            Basis::Rough => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Basis::Measured => "measured",
            Basis::Published => "published",
            Basis::Rough => "rough",
        }
    }
}

/// The thread count llama.cpp uses by default: the physical cores (`cpu_get_num_math`).
pub fn default_threads(physical_cores: usize) -> u32 {
    physical_cores.clamp(1, 1024) as u32
}

/// The thread counts a full calibration measures: 1, half and all physical cores (plans
/// pick the nearest measured at or below their own).
pub fn calibrated_threads(physical_cores: usize) -> Vec<u32> {
    let all = default_threads(physical_cores);
    vec![1, (all / 2).max(1), all]
}

/// Threads to recommend on a machine whose other work keeps `load` cores busy (the
/// 1-minute load average before layerfit runs): the free physical cores, at least 1.
/// `None` when the default is fine (less than half a core busy).
pub fn threads_for_load(physical_cores: usize, load: f64) -> Option<u32> {
    if !load.is_finite() || load < 0.5 {
        return None;
    }
    let free = (physical_cores as f64 - load).floor().max(1.0) as u32;
    (free < default_threads(physical_cores)).then_some(free)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_published;
