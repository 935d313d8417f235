//! The machine a plan is for, when it is not this one: one rule for a profile's `target:`,
//! a `--hardware` file and flags, so that the same machine gets the same answer however it
//! is described. Its CPU is what the description (or `--cpu-cores`, `--cpu-bandwidth`)
//! says, else [`unknown_cpu`]: never this host's probe, calibration or load.

use super::whatif::{describe, Description, DescriptionError};
use super::{Cpu, Snapshot};

/// The cores assumed for a CPU nobody described: a quad-core, the count of the entry
/// machines the small profiles are written for (Intel N100/N200 laptops and Chromebooks,
/// Raspberry Pi 4 and 5).
pub const UNKNOWN_CPU_CORES: usize = 4;
/// The name an undescribed CPU carries in the snapshot.
pub const UNKNOWN_CPU_MODEL: &str = "unknown CPU (not described)";
/// The largest core count `--cpu-cores` takes (more than any machine sold has).
pub const MAX_CPU_CORES: usize = 4096;
/// The largest memory bandwidth `--cpu-bandwidth` takes, GB/s (above any memory sold).
pub const MAX_CPU_BANDWIDTH_GBPS: f64 = 20_000.0;

/// `--cpu-cores` and `--cpu-bandwidth`, validated.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuFlags {
    pub cores: Option<usize>,
    pub bandwidth_gbps: Option<f64>,
}

impl CpuFlags {
    pub fn is_empty(&self) -> bool {
        self.cores.is_none() && self.bandwidth_gbps.is_none()
    }
}

/// `--cpu-cores N`: a whole number from 1 to [`MAX_CPU_CORES`].
pub fn parse_cores(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CPU_CORES).contains(&n) => Ok(n),
        _ => Err(format!(
            "--cpu-cores '{s}': give the CPU's physical cores, a whole number from 1 to {MAX_CPU_CORES}, e.g. --cpu-cores 8"
        )),
    }
}

/// `--cpu-bandwidth GB/s`: a positive number of GB/s (a `GB/s` suffix is accepted).
pub fn parse_bandwidth(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_suffix("GB/s").unwrap_or(t).trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_CPU_BANDWIDTH_GBPS => Ok(v),
        _ => Err(format!(
            "--cpu-bandwidth '{s}': give the memory read bandwidth in GB/s, a number above 0 and at most {MAX_CPU_BANDWIDTH_GBPS}, e.g. --cpu-bandwidth 60"
        )),
    }
}

/// A CPU nobody described: [`UNKNOWN_CPU_CORES`] cores, no SIMD or clock figure, and no
/// bandwidth, so that the speed model uses its stated default
/// (`speed::published::UNKNOWN_CPU_BANDWIDTH_GBPS`) and calls the figures rough.
pub fn unknown_cpu() -> Cpu {
    Cpu {
        model: UNKNOWN_CPU_MODEL.into(),
        physical_cores: UNKNOWN_CPU_CORES,
        logical_cores: UNKNOWN_CPU_CORES,
        simd: Vec::new(),
        memory_bandwidth_gbps: None,
        frequency_ghz: None,
    }
}

/// The note a snapshot carries when its CPU is (partly) assumed.
fn assumed_note(cpu: &Cpu) -> Option<String> {
    let cores = cpu.model == UNKNOWN_CPU_MODEL;
    let bw = cpu.memory_bandwidth_gbps.is_none();
    if !cores && !bw {
        return None;
    }
    let mut what = Vec::new();
    if cores {
        what.push(format!("{UNKNOWN_CPU_CORES} cores"));
    }
    if bw {
        what.push(format!(
            "{} GB/s of memory bandwidth (dual-channel DDR4-3200)",
            crate::speed::published::UNKNOWN_CPU_BANDWIDTH_GBPS
        ));
    }
    Some(format!(
        "CPU not fully described: assumed {} (describe it with --cpu-cores/--cpu-bandwidth or cpu: in a description)",
        what.join(" and ")
    ))
}

/// Applies the CPU flags to a described machine's CPU and notes what is assumed.
pub fn describe_cpu(s: &mut Snapshot, flags: &CpuFlags) {
    if let Some(n) = flags.cores {
        s.cpu.physical_cores = n;
        s.cpu.logical_cores = s.cpu.logical_cores.max(n);
        if s.cpu.model == UNKNOWN_CPU_MODEL {
            s.cpu.model = "described CPU".into();
            s.cpu.logical_cores = n;
        }
    }
    if let Some(b) = flags.bandwidth_gbps {
        s.cpu.memory_bandwidth_gbps = Some(b);
    }
    s.notes
        .retain(|n| !n.starts_with("CPU not fully described"));
    if let Some(n) = assumed_note(&s.cpu) {
        s.notes.push(n);
    }
}

/// A described machine (a file or a profile's `target:`), with the CPU flags applied.
pub fn described(
    d: &Description,
    source: &str,
    flags: &CpuFlags,
) -> Result<Snapshot, DescriptionError> {
    let mut s = describe(d, source, unknown_cpu())?;
    describe_cpu(&mut s, flags);
    Ok(s)
}

/// After flags amended a probed snapshot: when they described the RAM (`--ram`, a unified
/// GPU's size) or the CPU, the machine is another one, and this host's CPU is replaced by
/// the described (or unknown) one. `--no-gpu`, `--vram` and a discrete `--gpu` alone leave
/// this machine's RAM and CPU: it is still this machine.
pub fn settle_probe(s: &mut Snapshot, flags: &CpuFlags) {
    if !is_this_machine(s) {
        describe_cpu(s, flags);
        return;
    }
    if s.ram.limit_source != "described" && flags.is_empty() {
        return;
    }
    s.cpu = unknown_cpu();
    // Called right after the flags amended the probe (before any `--rpc` devices join).
    s.source = "flags".into();
    describe_cpu(s, flags);
}

/// Whether a snapshot is this machine (probed, perhaps with its GPUs amended): only then do
/// this host's calibration and load apply.
pub fn is_this_machine(s: &Snapshot) -> bool {
    s.source == "probe" || s.source.starts_with("probe+")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::whatif::parse_description;

    #[test]
    fn flags_are_validated_with_one_clear_line() {
        assert_eq!(parse_cores("8"), Ok(8));
        assert_eq!(parse_bandwidth("60"), Ok(60.0));
        assert_eq!(parse_bandwidth("51.2 GB/s"), Ok(51.2));
        for bad in ["0", "-1", "x", "1.5", "4097"] {
            let e = parse_cores(bad).unwrap_err();
            assert!(e.contains("--cpu-cores") && !e.contains('\n'), "{e}");
        }
        for bad in ["0", "-5", "nan", "inf", "fast", "20001"] {
            let e = parse_bandwidth(bad).unwrap_err();
            assert!(e.contains("--cpu-bandwidth") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn an_undescribed_cpu_is_the_stated_default_and_flags_describe_it() {
        let d = parse_description("ram: 4G\n").unwrap();
        let s = described(&d, "test", &CpuFlags::default()).unwrap();
        assert_eq!(s.cpu, unknown_cpu());
        assert!(s.notes.iter().any(|n| n.contains("assumed 4 cores")));
        let f = CpuFlags {
            cores: Some(2),
            bandwidth_gbps: Some(17.0),
        };
        let s = described(&d, "test", &f).unwrap();
        assert_eq!(
            (s.cpu.physical_cores, s.cpu.logical_cores),
            (2, 2),
            "{:?}",
            s.cpu
        );
        assert_eq!(s.cpu.memory_bandwidth_gbps, Some(17.0));
        assert!(!s.notes.iter().any(|n| n.contains("assumed")));
        // A described CPU keeps what its description says unless a flag says otherwise.
        let d = parse_description("ram: 4G\ncpu:\n  cores: 8\n  threads: 16\n").unwrap();
        let s = described(
            &d,
            "test",
            &CpuFlags {
                cores: None,
                bandwidth_gbps: Some(90.0),
            },
        )
        .unwrap();
        assert_eq!((s.cpu.physical_cores, s.cpu.logical_cores), (8, 16));
        assert_eq!(s.cpu.memory_bandwidth_gbps, Some(90.0));
    }

    #[test]
    fn described_ram_on_a_probe_is_another_machine() {
        let d = parse_description("ram: 16G\n").unwrap();
        let mut s = describe(&d, "probe", crate::hardware::cpu::probe()).unwrap();
        s.ram.limit_source = "host".into();
        s.source = "probe+flags".into();
        settle_probe(&mut s, &CpuFlags::default());
        assert!(is_this_machine(&s), "--no-gpu alone: still this machine");
        assert_ne!(s.cpu.model, UNKNOWN_CPU_MODEL);
        s.ram.limit_source = "described".into();
        settle_probe(&mut s, &CpuFlags::default());
        assert!(!is_this_machine(&s));
        assert_eq!(s.source, "flags");
        assert_eq!(s.cpu, unknown_cpu());
    }
}
