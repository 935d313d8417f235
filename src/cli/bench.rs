//! `layerfit bench`: calibrates the speed model on this machine through the bundled
//! engine (a few seconds) and caches the figures for `plan`, `check-requirements` and `run`.

use super::calibration;
use super::output::Printer;
use super::plan_report::rate;
use super::{exit, Failure};
use crate::engine::calibrate::{calibrate, Depth};
use crate::speed::calibration::TypeRate;
use crate::speed::ffn_activation::FfnActivation;
use crate::speed::{calibrated_threads, default_threads, Calibration, ThreadRates};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also measure at this many CPU threads (at least 1; repeatable). Always measured: 1,
    /// half the physical cores, all of them.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Vec<u32>,
    /// Print the cached calibration without measuring (exit 2 when there is none).
    #[arg(long, conflicts_with_all = ["threads", "quick"])]
    pub show: bool,
    /// Measure only at the default thread count, in one pass (a few seconds; less steady
    /// on a busy machine).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON document (the calibration and where it is cached).
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for a busy machine to settle before measuring (other work on the
    /// cores makes every figure low, and plans would cache it)
    #[arg(long, default_value_t = 60, conflicts_with = "show")]
    pub wait: u64,
    /// Measure and cache even on a busy machine (the calibration records the load)
    #[arg(long, conflicts_with = "show")]
    pub busy_ok: bool,
}

/// Waits up to `wait` seconds for the load average to leave every physical core free
/// (`speed::threads_for_load` finds none busy), saying so; the load at the end.
/// `Err` when the machine stays busy (and `--busy-ok` was not given).
fn settle(cores: usize, wait: u64, busy_ok: bool) -> Result<Option<f64>, Failure> {
    let busy = |load: f64| crate::speed::threads_for_load(cores, load).is_some();
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        let Some(load) = super::measured::load_average() else {
            return Ok(None);
        };
        if !busy(load) || busy_ok {
            if busy(load) {
                super::output::warning(&format!(
                    "measuring on a busy machine (load average {load:.1} on {}): the figures will be low, and plans will use them (--busy-ok)",
                    super::output::count(cores as u64, "physical core")
                ));
            }
            return Ok(Some(load));
        }
        let waited = start.elapsed().as_secs();
        if waited >= wait {
            return Err(Failure::BadInput(format!(
                "this machine stayed busy for {waited} s (load average {load:.1} on {}): a calibration measured now would be low, and every plan would use it; nothing was measured or cached",
                super::output::count(cores as u64, "physical core")
            ))
            .with_hint("run `layerfit bench` when the machine is idle, `--wait SECONDS` to wait longer, or `--busy-ok` to measure anyway"));
        }
        if !said {
            super::output::note(&format!(
                "this machine is busy (load average {load:.1} on {}): waiting up to {wait} s for it to settle before measuring",
                super::output::count(cores as u64, "physical core")
            ));
            said = true;
        }
        std::thread::sleep(
            std::time::Duration::from_secs(5).min(std::time::Duration::from_secs(wait - waited)),
        );
    }
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Doc {
    path: String,
    calibration: Calibration,
}

/// Measures at 1, half and all physical cores plus `extra` (`Quick`: all cores plus
/// `extra`), with a progress bar on a terminal.
pub fn measure(
    cpu: &crate::hardware::Cpu,
    extra: &[u32],
    depth: Depth,
    show_bar: bool,
) -> Result<Calibration, Failure> {
    let mut threads = match depth {
        Depth::Full => calibrated_threads(cpu.physical_cores),
        Depth::Quick => vec![default_threads(cpu.physical_cores)],
    };
    threads.extend(extra);
    let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
    if !show_bar || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("calibrating [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let avail = crate::hardware::ram::read(
        &crate::hardware::probe::ProbeOptions::default().cgroup_root,
        &mut Vec::new(),
    )
    .available_bytes
    .get();
    let result = calibrate(
        &threads,
        depth,
        avail / 8,
        calibration::machine_key(cpu),
        calibration::engine_key(),
        &mut |done, total, what| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(what.to_string());
        },
    );
    bar.finish_and_clear();
    result.map_err(|e| Failure::Internal(anyhow::anyhow!(e)))
}

/// The models disk's sequential read, for weights paged from it (cached per mount point);
/// said in a note, or why not.
fn measure_disk() {
    let dir = crate::model_source::default_models_dir();
    let disk = crate::hardware::disk::probe(&dir, &mut Vec::new());
    let Some(d) = disk else { return };
    match super::disk_speed::measure(&dir, &d.mount_point) {
        Some(s) => super::output::note(&format!(
            "models disk ({}): {:.2} GB/s sequential read ({} of {})",
            d.mount_point,
            s.bytes_per_s / 1e9,
            crate::bytes::Bytes(s.bytes_read),
            s.file
        )),
        None => super::output::note(&format!(
            "models disk ({}): not measured (no GGUF file in {} to read); weights paged from it are timed at the fastest consumer NVMe's 7.45 GB/s",
            d.mount_point,
            dir.display()
        )),
    }
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let cpu = crate::hardware::cpu::probe();
    let path = calibration::path(&cpu);
    let cal = if args.show {
        calibration::load(&cpu).ok_or_else(|| {
            Failure::BadInput(format!(
                "no calibration for this machine and engine build at {}",
                path.display()
            ))
            .with_hint("run `layerfit bench` to measure one")
        })?
    } else {
        let depth = if args.quick {
            Depth::Quick
        } else {
            Depth::Full
        };
        let load = settle(cpu.physical_cores, args.wait, args.busy_ok)?;
        let mut c = measure(&cpu, &args.threads, depth, true)?;
        c.load_average = load;
        measure_disk();
        calibration::save(&cpu, &c).map_err(|e| {
            Failure::Internal(anyhow::anyhow!("cannot write {}: {e}", path.display()))
        })?;
        c
    };
    if args.json {
        printer.json(&Doc {
            path: path.display().to_string(),
            calibration: cal,
        })?;
        return Ok(exit::OK);
    }
    print_table(&cal, printer);
    printer.line(&format!(
        "{} calibration of {} ({:.1} s), cached in {}",
        cal.kind,
        cal.machine,
        cal.seconds_taken,
        path.display()
    ));
    printer.line("plans on this machine now use these figures; run `layerfit bench` again after a hardware or engine change");
    Ok(exit::OK)
}

fn print_table(cal: &Calibration, printer: &Printer) {
    let mut header = vec!["measured".to_string()];
    header.extend(cal.points.iter().map(|p| format!("{} thr", p.threads)));
    let refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = printer.table(&refs);
    let Some(first) = cal.points.first() else {
        return;
    };
    let row = |label: String, f: &dyn Fn(&ThreadRates) -> Option<f64>, unit: &str| {
        let mut cells = vec![label];
        cells.extend(
            cal.points
                .iter()
                .map(|p| f(p).map_or("-".into(), |v| format!("{} {unit}", rate(v)))),
        );
        cells
    };
    // One row per weight type, for the decode and the prompt figures alike.
    type Figures = fn(&ThreadRates) -> &[TypeRate];
    let by_type: [(Figures, &str, &str); 3] = [
        (|p| &p.matvec_gb_per_s, "decode", "GB/s"),
        (
            |p| &p.matvec_short_rows_gb_per_s,
            "decode, 512-wide rows",
            "GB/s",
        ),
        (|p| &p.matmul_gflop_per_s, "prompt", "GFLOP/s"),
    ];
    for (figures, what, unit) in by_type {
        for r in figures(first) {
            let name = r.type_name.as_str();
            let cells = row(
                format!("{name} {what}"),
                &|p| {
                    figures(p)
                        .iter()
                        .find(|x| x.type_name == name)
                        .map(|x| x.value)
                },
                unit,
            );
            printer.row(&mut t, cells);
        }
    }
    for w in &first.working_set_curve {
        let size = w.working_set_bytes;
        let cells = row(
            format!("memory, {} MiB read", size >> 20),
            &|p| {
                p.working_set_curve
                    .iter()
                    .find(|x| x.working_set_bytes == size)
                    .map(|x| x.gb_per_s)
            },
            "GB/s",
        );
        printer.row(&mut t, cells);
    }
    for a in first.attn_decode_ns.iter().filter(|a| a.head_dim == 128) {
        let name = a.type_name.clone();
        let cells = row(
            format!("attention, {name} cache"),
            &|p| {
                p.attn_decode_ns
                    .iter()
                    .find(|x| x.type_name == name && x.head_dim == 128)
                    .map(|x| x.ns * 1000.0)
            },
            "ps/unit",
        );
        printer.row(&mut t, cells);
    }
    let cells = row("graph node".into(), &|p| Some(p.node_seconds * 1e6), "us");
    printer.row(&mut t, cells);
    let cells = row(
        "engine step overhead, per block".into(),
        &|p| Some(p.engine_block_seconds * 1e6),
        "us",
    );
    printer.row(&mut t, cells);
    let cells = row(
        "engine step overhead, per step".into(),
        &|p| Some(p.engine_step_seconds * 1e6),
        "us",
    );
    printer.row(&mut t, cells);
    for f in [FfnActivation::Gelu, FfnActivation::Silu] {
        let cells = row(
            format!("{} feed-forward activation", f.name()),
            &|p| Some(p.ffn_activation_seconds(f) * 1e9).filter(|x| *x > 0.0),
            "ns/value",
        );
        printer.row(&mut t, cells);
    }
    let cells = row(
        "logits copy + greedy sampling".into(),
        &|p| Some(p.sampling_ns_per_token),
        "ns/token id",
    );
    printer.row(&mut t, cells);
    printer.print_table(t);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_busy_machine_is_one_with_half_a_core_or_more_taken() {
        let busy = |cores, load| crate::speed::threads_for_load(cores, load).is_some();
        // The rule `bench` waits by, and `plan` recommends fewer threads by.
        assert!(!busy(2, 0.3));
        assert!(busy(2, 0.6));
        assert!(
            busy(2, 7.0),
            "issue 32: bench --quick at load 7 stored 0.1 GB/s"
        );
        assert!(!busy(16, 0.2));
    }
}
