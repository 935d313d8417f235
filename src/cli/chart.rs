//! `plan --chart FILE.svg`: the plan's memory drawn. Each device's budget as a bar split
//! into weights, KV cache and compute (the report's bars), and, per KV cache type, the
//! memory on the plan's fullest device against the context, from 4K tokens to the model's
//! trained context, with that device's budget and the largest context that fits marked.
//! Drawn with `plotters` (SVG only); the figures come from the plan's own memory model.

use super::planning::Planned;
use crate::ggml_type::GgmlType;
use plotters::prelude::*;
use std::path::Path;

const MIB: f64 = 1048576.0;

/// One cache type's curve.
pub struct Curve {
    pub kv: GgmlType,
    /// (context, MiB on the fullest device).
    pub points: Vec<(u64, f64)>,
    /// The largest context that fits with the plan's placement (`plan --max-context`), and
    /// the MiB it needs there.
    pub max_context: Option<(u64, f64)>,
}

/// What the chart draws, in MiB.
pub struct ChartData {
    /// Per device: name, weights, KV cache, compute, budget.
    pub devices: Vec<(String, f64, f64, f64, f64)>,
    /// The device the curves are drawn for: the one whose budget the plan fills most.
    pub fullest: usize,
    pub curves: Vec<Curve>,
}

/// Contexts from 4096, doubling, to the trained context (itself included).
fn contexts(trained: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut c = 4096;
    while c < trained {
        v.push(c);
        c *= 2;
    }
    v.push(trained.max(256));
    v
}

pub fn data(p: &Planned, kv_types: &[GgmlType]) -> ChartData {
    let plan = &p.plan;
    let names = super::output::distinct_names(plan.devices.iter().map(|d| d.device.as_str()));
    let mib = |b: crate::bytes::Bytes| b.get() as f64 / MIB;
    let devices: Vec<_> = plan
        .devices
        .iter()
        .zip(names)
        .map(|(d, n)| {
            (
                n,
                mib(d.weights_bytes),
                mib(d.kv_bytes),
                mib(d.compute_bytes),
                mib(d.budget_bytes),
            )
        })
        .collect();
    let fill = |d: &crate::plan::DeviceUse| {
        d.total_bytes.get() as f64 / d.budget_bytes.get().max(1) as f64
    };
    let fullest = (0..plan.devices.len())
        .max_by(|&a, &b| fill(&plan.devices[a]).total_cmp(&fill(&plan.devices[b])))
        .unwrap_or(0);
    let at = |t: GgmlType, ctx: u64| {
        crate::plan::devices_at(&p.input, &p.hardware, &p.requirements, plan, t, ctx)
            .and_then(|d| d.get(fullest).map(|d| mib(d.total_bytes)))
    };
    let curves = kv_types
        .iter()
        .map(|&t| Curve {
            kv: t,
            points: contexts(p.shape.context_length)
                .into_iter()
                .filter_map(|c| Some((c, at(t, c)?)))
                .collect(),
            max_context: crate::plan::max_context(&p.input, &p.hardware, &p.requirements, plan, t)
                .and_then(|c| Some((c, at(t, c)?))),
        })
        .collect();
    ChartData {
        devices,
        fullest,
        curves,
    }
}

const WEIGHTS: RGBColor = RGBColor(52, 101, 164);
const KV: RGBColor = RGBColor(245, 121, 0);
const COMPUTE: RGBColor = RGBColor(115, 210, 22);
const BUDGET: RGBColor = RGBColor(204, 0, 0);
const LINES: [RGBColor; 3] = [
    RGBColor(52, 101, 164),
    RGBColor(117, 80, 123),
    RGBColor(193, 125, 17),
];

/// Writes the chart to `path` (SVG).
pub fn write_svg(path: &Path, d: &ChartData) -> Result<(), String> {
    draw(path, d).map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn draw(path: &Path, d: &ChartData) -> Result<(), Box<dyn std::error::Error>> {
    let bars_height = 90 + 50 * d.devices.len() as u32;
    let root = SVGBackend::new(path, (900, bars_height + 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(bars_height);

    // Bars: each device's budget is 100%.
    let pct = |x: f64, b: f64| 100.0 * x / b.max(1e-9);
    let widest = d
        .devices
        .iter()
        .map(|(_, w, k, c, b)| pct(w + k + c, *b))
        .fold(100.0f64, f64::max);
    let n = d.devices.len() as f64;
    let mut bars = ChartBuilder::on(&top)
        .caption("Memory per device (its budget is 100%)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .build_cartesian_2d(0f64..widest * 1.05, 0f64..n)?;
    bars.configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("% of the device's budget")
        .draw()?;
    for (i, (name, w, k, c, b)) in d.devices.iter().enumerate() {
        let y = n - 1.0 - i as f64;
        let mut x = 0.0;
        for (v, colour) in [(w, WEIGHTS), (k, KV), (c, COMPUTE)] {
            let x1 = x + pct(*v, *b);
            bars.draw_series(std::iter::once(Rectangle::new(
                [(x, y + 0.15), (x1, y + 0.55)],
                colour.filled(),
            )))?;
            x = x1;
        }
        bars.draw_series(std::iter::once(Text::new(
            format!(
                "{name}: {:.0}% of {:.0} MiB (weights {w:.1}, KV cache {k:.1}, compute {c:.1} MiB)",
                pct(w + k + c, *b),
                b
            ),
            (0.5, y + 0.92),
            ("sans-serif", 13),
        )))?;
    }
    bars.draw_series(LineSeries::new(
        [(100.0, 0.0), (100.0, n)],
        BUDGET.stroke_width(2),
    ))?
    .label("budget")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BUDGET.stroke_width(2)));
    for (label, colour) in [("weights", WEIGHTS), ("KV cache", KV), ("compute", COMPUTE)] {
        bars.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.filled()));
    }
    bars.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    // Curves: memory on the fullest device against the context, per cache type.
    let (name, _, _, _, budget) = &d.devices[d.fullest.min(d.devices.len().saturating_sub(1))];
    let x_max = d
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(4096)
        .max(8192) as f64;
    let y_max = d
        .curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(*budget, f64::max)
        * 1.1;
    let mut lines = ChartBuilder::on(&bottom)
        .caption(
            format!("Memory on {name} against context, per KV cache type"),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max * 1.02, 0f64..y_max)?;
    lines
        .configure_mesh()
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("context (tokens per sequence)")
        .y_desc("MiB")
        .draw()?;
    lines
        .draw_series(LineSeries::new(
            [(0.0, *budget), (x_max * 1.02, *budget)],
            BUDGET.stroke_width(2),
        ))?
        .label(format!("budget of {name}: {budget:.0} MiB"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BUDGET.stroke_width(2)));
    for (i, c) in d.curves.iter().enumerate() {
        let colour = LINES[i % LINES.len()];
        lines
            .draw_series(LineSeries::new(
                c.points.iter().map(|&(x, y)| (x as f64, y)),
                colour.stroke_width(2),
            ))?
            .label(format!("{} cache", c.kv))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], colour.stroke_width(2)));
        lines.draw_series(
            c.points
                .iter()
                .map(|&(x, y)| Circle::new((x as f64, y), 3, colour.filled())),
        )?;
        if let Some((ctx, mib)) = c.max_context {
            let x = (ctx as f64).min(x_max);
            lines.draw_series(std::iter::once(TriangleMarker::new(
                (x, mib),
                7,
                BUDGET.filled(),
            )))?;
            lines.draw_series(std::iter::once(Text::new(
                format!("{}: fits up to {ctx} tokens", c.kv),
                (x, mib),
                ("sans-serif", 12),
            )))?;
        }
    }
    lines
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn contexts_double_from_4k_to_the_trained_context() {
        assert_eq!(super::contexts(32768), vec![4096, 8192, 16384, 32768]);
        assert_eq!(
            super::contexts(40960),
            vec![4096, 8192, 16384, 32768, 40960]
        );
        assert_eq!(super::contexts(2048), vec![2048]);
    }
}
