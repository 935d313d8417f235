//! The plan as people read it: the per-device table and the lines under it, shared by
//! `plan` and `check-requirements`.

use super::output::Printer;
use super::planning::Planned;
use crate::plan::Verdict;

pub fn print_plan(p: &Planned, printer: &Printer) {
    let plan = &p.plan;
    let mut t = printer.table(&[
        "device", "weights", "KV cache", "compute", "total", "budget",
    ]);
    for d in &plan.devices {
        printer.row(
            &mut t,
            vec![
                d.device.clone(),
                d.weights_bytes.to_string(),
                d.kv_bytes.to_string(),
                d.compute_bytes.to_string(),
                d.total_bytes.to_string(),
                d.budget_bytes.to_string(),
            ],
        );
    }
    printer.print_table(t);
    printer.line(&format!(
        "model {} ({}), context {} tokens, KV cache {}, flash attention {}",
        p.model.label,
        p.shape.architecture,
        plan.context,
        plan.kv_type,
        if plan.flash_attn { "on" } else { "off" }
    ));
    printer.line(&format!(
        "GPU blocks {}/{} ({:.0}%), CPU blocks {}/{}, output layer on {} (-ngl {})",
        plan.gpu_blocks,
        plan.block_count,
        plan.gpu_share * 100.0,
        plan.cpu_blocks,
        plan.block_count,
        if plan.output_on_gpu { "GPU" } else { "CPU" },
        plan.n_gpu_layers
    ));
    printer.line(&format!(
        "RAM: {} of {} usable ({} page cache for mapped weights, {} anonymous)",
        plan.ram.total_bytes,
        plan.ram.budget_bytes,
        plan.ram.page_cache_bytes,
        plan.ram.anonymous_bytes
    ));
    if let Some(s) = &plan.speed {
        printer.line(&format!(
            "expected decode speed: {:.1} to {:.1} tokens/s{}",
            s.decode_tokens_per_s_low,
            s.decode_tokens_per_s_high,
            match (s.prompt_tokens_per_s_low, s.prompt_tokens_per_s_high) {
                (Some(lo), Some(hi)) => format!("; prompt {lo:.0} to {hi:.0} tokens/s"),
                _ => String::new(),
            }
        ));
    }
    printer.line(&format!("verdict: {}", verdict_word(plan.verdict)));
    for d in &plan.degradations {
        printer.warning(&format!(
            "{} ({})",
            d.message,
            format!("{:?}", d.severity).to_lowercase()
        ));
    }
    if let Some(m) = &plan.missing {
        printer.missing(m);
    }
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Compatible => "COMPATIBLE",
        Verdict::Degraded => "DEGRADED (runs, with the warnings below)",
        Verdict::Incompatible => "INCOMPATIBLE",
    }
}
