//! The self-check as `run` and `serve` report it: what llama.cpp allocated against the
//! plan, per device and buffer, and what each GPU's driver says loading took.

use super::output::{self, Printer};
use crate::bytes::Bytes;
use crate::engine::self_check::{Check, DriverCheck};

/// llama.cpp's buffers against the plan: a note when every figure is within 5%, else a
/// warning per drifting figure; with `table`, every figure.
pub(super) fn report_self_check(checks: &[Check], name: &str, table: bool, printer: &Printer) {
    let planned: Bytes = checks.iter().map(|c| c.planned).sum();
    let allocated: Bytes = checks.iter().map(|c| c.allocated).sum();
    let bad: Vec<&Check> = checks.iter().filter(|c| !c.within_5_percent).collect();
    if table {
        let mut t = printer.table(&["device", "what", "planned", "llama.cpp allocated", "ok"]);
        for c in checks {
            printer.row(
                &mut t,
                vec![
                    c.device.clone(),
                    c.what.to_string(),
                    c.planned.to_string(),
                    c.allocated.to_string(),
                    if c.within_5_percent { "yes" } else { "DRIFT" }.to_string(),
                ],
            );
        }
        printer.print_table(t);
    }
    if bad.is_empty() {
        output::note(&format!(
            "{name}: llama.cpp allocated {allocated}, the plan said {planned}: every figure within 5%"
        ));
    } else {
        for c in bad {
            printer.warning(&format!(
                "{name} drift: {} {} planned {} but llama.cpp allocated {} (a memory-model bug: please report it)",
                c.device, c.what, c.planned, c.allocated
            ));
        }
    }
}

/// The driver check: per local GPU, the free memory loading took next to what the plan kept.
pub(super) fn report_driver_check(checks: &[DriverCheck], table: bool, printer: &Printer) {
    if table && !checks.is_empty() {
        let mut t = printer.table(&[
            "GPU",
            "free before",
            "free after",
            "taken",
            "plan kept (of it back-end reserve)",
            "ok",
        ]);
        for c in checks {
            printer.row(
                &mut t,
                vec![
                    format!("{} ({})", c.device, c.engine_device),
                    c.free_before.to_string(),
                    c.free_after.to_string(),
                    c.used.to_string(),
                    format!("{} ({})", c.planned, c.backend_reserve),
                    if c.within_plan { "yes" } else { "OVER" }.to_string(),
                ],
            );
        }
        printer.print_table(t);
    }
    for c in checks {
        if c.used == Bytes::ZERO && c.planned > c.backend_reserve {
            // lavapipe without VK_EXT_memory_budget reports its heap size as free throughout.
            output::note(&format!(
                "self-check: the driver of {} ({}) reports the same free memory before and after loading (it does not track use): only llama.cpp's buffers were checked there",
                c.device, c.engine_device
            ));
        } else if c.within_plan {
            output::note(&format!(
                "self-check: the driver reports {} taken on {} ({}); the plan kept {} there (buffers and {} of back-end reserve)",
                c.used, c.device, c.engine_device, c.planned, c.backend_reserve
            ));
        } else {
            printer.warning(&format!(
                "self-check drift: the driver reports {} taken on {} ({}), more than the {} the plan kept (buffers and {} of back-end reserve): another program allocated meanwhile, or the reserve is too small (please report it)",
                c.used, c.device, c.engine_device, c.planned, c.backend_reserve
            ));
        }
    }
}
