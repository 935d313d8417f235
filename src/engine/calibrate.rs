//! `layerfit bench`: measures the speed model's figures on this CPU through the bundled
//! engine's own kernels (`ggml_bench`), at the thread counts plans use. Every figure is
//! measured in several passes over the whole list, spread over the run, and the median pass
//! kept: a shared machine's slow phases (a neighbour's burst, a clock change) then move a
//! figure only when they last most of the run.

use super::bench_data::Contents;
use super::calibration_list::{
    items, label, point, Item, ACTIVATION_WIDTH, K, MID_WORKING_SET, SAMPLED_VOCAB,
};
use super::ggml_bench::CpuBackend;
use super::sampler_bench::greedy_sampling;
use super::step_probe::StepProbe;
use crate::ggml_type::GgmlType;
use crate::speed::calibration::{Calibration, CALIBRATION_VERSION, MATVEC_SHORT_ROW_ELEMENTS};
use crate::speed::ffn_activation::FfnActivation;
use std::time::{Duration, Instant};

/// How long to spend: `Full` for `layerfit bench`, `Quick` for `layerfit bench --quick`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Depth {
    Full,
    Quick,
}

impl Depth {
    fn passes(self) -> usize {
        match self {
            Depth::Full => 3,
            Depth::Quick => 1,
        }
    }
}

/// Time each figure is measured for in one pass (the median of its runs in that time).
const PASS_BUDGET: Duration = Duration::from_millis(30);

/// The figure of `item`: GB/s, GFLOP/s, ns per attention unit, seconds per node or per
/// probe step (at `be`'s thread count, `threads`).
fn measure(
    be: &CpuBackend,
    probe: &mut StepProbe,
    threads: u32,
    item: &Item,
    budget: Duration,
) -> Option<f64> {
    let row = |t: GgmlType| t.row_size(K).map_or(1, |b| b.get());
    match *item {
        Item::MatVec(_) | Item::Curve(_) => {
            let (t, ws) = match *item {
                Item::MatVec(t) => (t, MID_WORKING_SET),
                Item::Curve(s) => (GgmlType::Q8_0, s),
                _ => return None,
            };
            let one = row(t) * 1024;
            let copies = (ws / one).max(1);
            let s = be.mul_mat(t, K, 1024, 1, copies as usize, budget)?;
            Some((one * copies) as f64 / s / 1e9)
        }
        // Short rows in matrices of the same bytes (more rows), so the graph has as many
        // nodes and only the row length differs.
        Item::MatVecShortRows(t) => {
            let k = MATVEC_SHORT_ROW_ELEMENTS;
            let rows = 1024 * K / k;
            let one = t.row_size(k).map_or(1, |b| b.get()) * rows;
            let copies = (MID_WORKING_SET / one).max(1);
            let s = be.mul_mat(t, k, rows, 1, copies as usize, budget)?;
            Some((one * copies) as f64 / s / 1e9)
        }
        // Two matrices in turn, so each batch finds its weights outside the core's own
        // cache as a model's next layer does; 256 columns fill the kernels' tiles as 512 do.
        Item::MatMul(t) => {
            let s = be.mul_mat(t, 1024, 1024, 256, 2, budget)?;
            Some(2.0 * (1024 * 1024 * 256 * 2) as f64 / s / 1e9)
        }
        Item::Attn(a) | Item::AttnPrompt(a) | Item::AttnPromptLong(a) | Item::AttnLarge(a) => {
            Some(be.flash_attn(&a, budget)? * 1e9 / a.units())
        }
        Item::Node => be.tiny_nodes(500, 2048, budget),
        Item::Sampling => {
            Some(greedy_sampling(SAMPLED_VOCAB, budget)? * 1e9 / SAMPLED_VOCAB as f64)
        }
        Item::Step(blocks) => probe.step_seconds(blocks, threads, budget),
        Item::FfnActivation(f, rows) => {
            let s =
                be.ffn_activation(f == FfnActivation::Gelu, ACTIVATION_WIDTH, rows, 2, budget)?;
            Some(s * 1e9 / (2 * ACTIVATION_WIDTH * rows) as f64)
        }
    }
}

/// Measurements in progress at each thread count: passes over the whole list, each figure's
/// median kept by `finish`. `calibrate` runs its passes back to back; the speed benchmark
/// runs one pass beside each round of engine work, so that the figures and the engine see
/// the same phase of a shared machine.
pub struct Calibrator {
    counts: Vec<u32>,
    list: Vec<Item>,
    backends: Vec<CpuBackend>,
    probe: StepProbe,
    results: Vec<Vec<Vec<f64>>>,
    measuring: Duration,
}

impl Calibrator {
    /// At each of `threads` (deduplicated, ascending); `max_working_set` caps the largest
    /// buffer (a fraction of free RAM).
    pub fn new(threads: &[u32], max_working_set: u64) -> Result<Calibrator, String> {
        let mut counts: Vec<u32> = threads.iter().map(|&t| t.max(1)).collect();
        counts.sort_unstable();
        counts.dedup();
        let list = items(max_working_set);
        let contents = std::rc::Rc::new(Contents::default());
        let backends = counts
            .iter()
            .map(|&n| {
                CpuBackend::with_contents(n, contents.clone())
                    .ok_or("the engine's CPU back-end did not start")
            })
            .collect::<Result<_, _>>()?;
        let probe = StepProbe::new(&std::env::temp_dir())?;
        let results = vec![vec![Vec::new(); list.len()]; counts.len()];
        Ok(Calibrator {
            counts,
            list,
            backends,
            probe,
            results,
            measuring: Duration::ZERO,
        })
    }

    /// Figures one pass measures (every item at every thread count).
    pub fn figures_per_pass(&self) -> usize {
        self.list.len() * self.counts.len()
    }

    /// One pass over the whole list, one thread count at a time (a figure measured right
    /// after another thread count's would share the cores with that count's still-spinning
    /// workers: interleaved calibrations gave 1-thread figures well below those measured
    /// at 1 thread alone); `progress(what)` after each figure.
    pub fn pass(&mut self, progress: &mut dyn FnMut(&str)) {
        let start = Instant::now();
        for (j, be) in self.backends.iter().enumerate() {
            let n = self.counts[j];
            for (i, item) in self.list.iter().enumerate() {
                let x = measure(be, &mut self.probe, n, item, PASS_BUDGET);
                if let Some(x) = x.filter(|x| x.is_finite() && *x > 0.0) {
                    self.results[j][i].push(x);
                }
                progress(&format!(
                    "{n} thread{}: {}",
                    if n == 1 { "" } else { "s" },
                    label(item)
                ));
            }
        }
        self.measuring += start.elapsed();
    }

    /// The calibration: each figure's median over the passes; `seconds_taken` counts the
    /// passes only.
    pub fn finish(self, depth: Depth, machine: String, engine: String) -> Calibration {
        let list = self.list;
        let spread = spread_of_passes(&self.results);
        let points = self
            .counts
            .iter()
            .zip(self.results)
            .map(|(&n, figures)| point(n, &list, figures))
            .collect();
        Calibration {
            version: CALIBRATION_VERSION,
            machine,
            engine,
            measured_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            kind: match depth {
                Depth::Full => "full",
                Depth::Quick => "quick",
            }
            .into(),
            seconds_taken: self.measuring.as_secs_f64(),
            points,
            spread,
            load_average: None,
        }
    }
}

/// How far the passes of one figure lie from their median, as a relative half-range: the
/// median over every figure measured more than once (a few figures caught by a burst of
/// other work would dominate a mean); `None` after one pass.
fn spread_of_passes(results: &[Vec<Vec<f64>>]) -> Option<f64> {
    let mut per_figure: Vec<f64> = results
        .iter()
        .flatten()
        .filter(|v| v.len() > 1)
        .filter_map(|v| {
            let mut s = v.clone();
            let m = crate::speed::measured::median(&mut s);
            let (lo, hi) = (s[0], s[s.len() - 1]);
            let x = (hi - lo) / 2.0 / m;
            x.is_finite().then_some(x)
        })
        .collect();
    (!per_figure.is_empty()).then(|| crate::speed::measured::median(&mut per_figure))
}

/// Measures at each of `threads` (deduplicated, ascending); `progress(done, total, what)`
/// after each figure. `max_working_set` caps the largest buffer (a fraction of free RAM).
pub fn calibrate(
    threads: &[u32],
    depth: Depth,
    max_working_set: u64,
    machine: String,
    engine: String,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<Calibration, String> {
    let mut c = Calibrator::new(threads, max_working_set)?;
    let total = c.figures_per_pass() * depth.passes();
    let mut done = 0;
    for _ in 0..depth.passes() {
        c.pass(&mut |what| {
            done += 1;
            progress(done, total, what)
        });
    }
    Ok(c.finish(depth, machine, engine))
}
