//! Each device's budget drawn as a bar split into weights, KV cache and compute: block
//! characters on a terminal, plain ASCII off it (a pipe, a file, a log).

use crate::plan::DeviceUse;

/// The characters of one style: weights, KV cache, compute, free, the budget's end when the
/// plan needs more.
struct Style {
    cells: [char; 4],
    over: char,
}

const UNICODE: Style = Style {
    cells: ['█', '▓', '▒', '░'],
    over: '│',
};
const ASCII: Style = Style {
    cells: ['#', '=', '+', '.'],
    over: '|',
};

/// Cells of a bar.
pub const WIDTH: usize = 40;

/// One device's bar, `width` cells: the budget is the whole bar (or, when the plan needs
/// more, the total is, with the budget's end marked).
pub fn bar(d: &DeviceUse, width: usize, unicode: bool) -> String {
    let style = if unicode { &UNICODE } else { &ASCII };
    let parts = [d.weights_bytes, d.kv_bytes, d.compute_bytes].map(|b| b.get() as f64);
    let used: f64 = parts.iter().sum();
    let budget = d.budget_bytes.get() as f64;
    let scale = used.max(budget).max(1.0);
    // Cumulative boundaries, rounded once each: the segments add up to the used cells.
    let mut cum = 0.0;
    let mut out = String::with_capacity(width * 3);
    let mut at = 0usize;
    for (i, p) in parts.iter().enumerate() {
        cum += p;
        let end = ((cum / scale) * width as f64).round() as usize;
        while at < end.min(width) {
            out.push(style.cells[i]);
            at += 1;
        }
    }
    while at < width {
        out.push(style.cells[3]);
        at += 1;
    }
    if used > budget {
        let mark = ((budget / scale) * width as f64).round() as usize;
        let mut chars: Vec<char> = out.chars().collect();
        if let Some(c) = chars.get_mut(mark.min(width.saturating_sub(1))) {
            *c = style.over;
        }
        out = chars.into_iter().collect();
    }
    out
}

/// The legend under the bars.
pub fn legend(unicode: bool) -> String {
    let s = if unicode { &UNICODE } else { &ASCII };
    format!(
        "{} weights  {} KV cache  {} compute  {} free  {} budget's end (over budget)",
        s.cells[0], s.cells[1], s.cells[2], s.cells[3], s.over
    )
}

/// Every device's bar with its name and its share of the budget, then the legend.
pub fn lines(devices: &[DeviceUse], names: &[String], unicode: bool) -> Vec<String> {
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut v: Vec<String> = devices
        .iter()
        .zip(names)
        .map(|(d, n)| {
            let share = d.total_bytes.get() as f64 / d.budget_bytes.get().max(1) as f64;
            format!(
                "{n:<w$} [{}] {:.0}% of {}",
                bar(d, WIDTH, unicode),
                share * 100.0,
                d.budget_bytes
            )
        })
        .collect();
    v.push(legend(unicode));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Bytes;

    fn dev(w: u64, kv: u64, c: u64, budget: u64) -> DeviceUse {
        DeviceUse {
            device: "GPU".into(),
            is_gpu: true,
            weights_bytes: Bytes(w),
            kv_bytes: Bytes(kv),
            compute_bytes: Bytes(c),
            total_bytes: Bytes(w + kv + c),
            budget_bytes: Bytes(budget),
            backend: None,
            backend_reserve_bytes: Bytes::ZERO,
        }
    }

    #[test]
    fn a_bar_splits_the_budget_by_what_uses_it() {
        // Half weights, a quarter KV, an eighth compute, an eighth free.
        let b = bar(&dev(400, 200, 100, 800), 8, false);
        assert_eq!(b, "####==+.");
        assert_eq!(bar(&dev(400, 200, 100, 800), 8, true), "████▓▓▒░");
        // Nothing used: all free.
        assert_eq!(bar(&dev(0, 0, 0, 100), 4, false), "....");
    }

    #[test]
    fn over_budget_the_total_fills_the_bar_and_the_budget_end_is_marked() {
        // 1000 used of 800: the budget ends at 80% of the bar.
        let b = bar(&dev(600, 300, 100, 800), 10, false);
        assert_eq!(b, "######==|+");
        assert_eq!(b.chars().count(), 10);
    }

    #[test]
    fn lines_name_each_device_and_end_with_the_legend() {
        let d = [dev(400, 200, 100, 800), dev(10, 0, 10, 1000)];
        let l = lines(&d, &["RTX 3060".into(), "CPU".into()], false);
        assert_eq!(l.len(), 3);
        assert!(l[0].starts_with("RTX 3060 [####"), "{}", l[0]);
        assert!(l[1].starts_with("CPU      ["), "{}", l[1]);
        assert!(l[0].ends_with("88% of 800 B"), "{}", l[0]);
        assert!(l[2].starts_with("# weights"));
    }
}
