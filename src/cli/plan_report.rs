//! The plan as people read it: the per-device table and the lines under it, shared by
//! `plan` and `check-requirements`.

use super::output::Printer;
use super::planning::{Candidate, Planned};
use crate::plan::Verdict;

/// Runners-up shown in the table (JSON holds every option).
const SHOWN_RUNNERS_UP: usize = 5;

/// What the GPU budgets above keep for their back-ends' contexts (docs/hardware.md,
/// "Back-end reserves"); `None` when no GPU keeps or lacks one.
fn reserve_line(plan: &crate::plan::Plan) -> Option<String> {
    let notes: Vec<String> = plan
        .devices
        .iter()
        .filter(|d| d.is_gpu)
        .filter_map(|d| {
            let n = d.backend?.reserve_note(d.backend_reserve_bytes)?;
            Some(format!("{}: {n}", d.device))
        })
        .collect();
    (!notes.is_empty()).then(|| format!("budget: {}", notes.join("; ")))
}

pub fn print_plan(p: &Planned, printer: &Printer) {
    let plan = &p.plan;
    let mut t = printer.table(&[
        "device", "weights", "KV cache", "compute", "total", "budget",
    ]);
    let names = super::output::distinct_names(plan.devices.iter().map(|d| d.device.as_str()));
    for (d, name) in plan.devices.iter().zip(names.iter().cloned()) {
        printer.row(
            &mut t,
            vec![
                name,
                d.weights_bytes.to_string(),
                d.kv_bytes.to_string(),
                d.compute_bytes.to_string(),
                d.total_bytes.to_string(),
                d.budget_bytes.to_string(),
            ],
        );
    }
    printer.print_table(t);
    for line in super::memory_bars::lines(&plan.devices, &names, printer.is_terminal()) {
        printer.line(&line);
    }
    if let Some(line) = reserve_line(plan) {
        printer.line(&line);
    }
    printer.line(&format!(
        "model {} ({}), context {} tokens, KV cache {}, flash attention {}",
        p.model.label,
        p.shape.architecture,
        plan.context,
        plan.kv_type,
        if plan.flash_attn { "on" } else { "off" }
    ));
    let (offload, output) = offload_words(p);
    printer.line(&format!(
        "{offload} blocks {}/{} ({:.0}%), CPU blocks {}/{}, output layer on {output} (-ngl {})",
        plan.gpu_blocks,
        plan.block_count,
        plan.gpu_share * 100.0,
        plan.cpu_blocks,
        plan.block_count,
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
        for line in speed_lines(s, plan.context) {
            printer.line(&line);
        }
        if let Some(b) = &s.busy {
            printer.warning(&busy_line(b));
        }
    }
    if let Some(d) = &plan.draft {
        for line in super::draft::lines(d) {
            printer.line(&line);
        }
    }
    if let Some(p) = &plan.projector {
        for line in super::projector::report_lines(p) {
            printer.line(&line);
        }
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
    if !p.model.downloaded() && p.model.missing_bytes == 0 {
        printer.note(&format!(
            "{} is not downloaded: {}",
            p.model
                .catalog_name
                .clone()
                .unwrap_or(p.model.label.clone()),
            p.model.where_to_get()
        ));
    }
    if let Some(b) = &p.this_binary {
        // Two GPUs of one model that this binary cannot drive get one line.
        let mut shown = std::collections::HashSet::new();
        for u in &b.unusable {
            let line = format!("{}: {}", u.gpu, u.reason);
            if shown.insert(line.clone()) {
                printer.warning(&line);
            }
        }
        printer.line(&format!(
            "this binary would run {} with -ngl {} and a {} cache: {}{}",
            b.model,
            b.plan.n_gpu_layers,
            b.plan.kv_type,
            format!("{:?}", b.plan.verdict).to_lowercase(),
            b.plan
                .speed
                .as_ref()
                .map(|s| format!(", about {:.1} tokens/s", s.expected_decode()))
                .unwrap_or_default()
        ));
    }
}

/// The recommendation and the runners-up: quality loss, expected speed, why each lost.
pub fn print_candidates(cands: &[Candidate], printer: &Printer) {
    if cands.len() < 2 {
        return;
    }
    let mut t = printer.table(&["#", "option", "verdict", "KLD", "tok/s", "why not first"]);
    let ranked = cands.iter().filter(|c| c.rank.is_some());
    for c in ranked.clone().take(SHOWN_RUNNERS_UP + 1) {
        printer.row(
            &mut t,
            vec![
                c.rank.map(|r| r.to_string()).unwrap_or_default(),
                format!(
                    "{}, {} KV, -ngl {}{}{}",
                    c.model,
                    c.kv_type.clone().unwrap_or_default(),
                    c.n_gpu_layers.unwrap_or(0),
                    if c.local_only {
                        ", this machine alone"
                    } else {
                        ""
                    },
                    if c.downloaded {
                        ""
                    } else {
                        " (not downloaded)"
                    }
                ),
                c.verdict
                    .map(|v| format!("{v:?}").to_lowercase())
                    .unwrap_or_default(),
                c.quality_kld.map(|k| format!("{k:.4}")).unwrap_or_default(),
                c.decode_tokens_per_s
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_else(|| "?".into()),
                c.lost_because
                    .clone()
                    .unwrap_or_else(|| "recommended".into()),
            ],
        );
    }
    printer.print_table(t);
    let more = ranked.count().saturating_sub(SHOWN_RUNNERS_UP + 1);
    if more > 0 {
        printer.note(&format!(
            "{more} more options ranked lower (--json lists them all)"
        ));
    }
    for c in cands.iter().filter(|c| c.skipped.is_some()) {
        printer.note(&format!(
            "{}: skipped: {}",
            c.model,
            c.skipped.clone().unwrap_or_default()
        ));
    }
}

pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Compatible => "COMPATIBLE",
        Verdict::Degraded => "DEGRADED (runs, with the warnings below)",
        Verdict::Incompatible => "INCOMPATIBLE",
    }
}

/// A rate as people read it: whole tokens/s from 10 up, one decimal below.
pub fn rate(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// The speed in two lines: decode at the start and at the full context, then prompt
/// processing, each an expected figure with its band.
pub fn speed_lines(s: &crate::plan::Speed, context: u64) -> Vec<String> {
    let mut v = vec![
        format!(
            "expected decode: about {} tokens/s ({} to {}) at the start, about {} ({} to {}) with {context} tokens in context",
            rate(s.decode_tokens_per_s),
            rate(s.decode_tokens_per_s_low),
            rate(s.decode_tokens_per_s_high),
            rate(s.decode_tokens_per_s_at_context),
            rate(s.decode_at_context_low),
            rate(s.decode_at_context_high),
        ),
        format!(
            "expected prompt processing: about {} tokens/s ({} to {}); {}, {}",
            rate(s.prompt_tokens_per_s),
            rate(s.prompt_tokens_per_s_low),
            rate(s.prompt_tokens_per_s_high),
            super::output::count(u64::from(s.threads), "thread"),
            source_words(s)
        ),
    ];
    if let Some(n) = s.network_share {
        v.push(format!(
            "network: about {:.0}% of each generated token's time crosses the RPC links",
            n * 100.0
        ));
    }
    v
}

/// Where the figures come from, in words: "measured figures" (the calibration), "measured
/// in 2 runs of this file here (median 125 tokens/s)", "published figures", "rough figures".
pub fn source_words(s: &crate::plan::Speed) -> String {
    match &s.measured {
        Some(m) => format!(
            "measured in {} of this file here (median {} tokens/s)",
            super::output::count(u64::from(m.runs), "run"),
            rate(m.decode_tokens_per_s)
        ),
        None => format!("{} figures", s.source),
    }
}

/// What the offloaded blocks are on, and where the output layer is. llama.cpp's RPC server
/// does not say what kind of device it offers (often a remote CPU), so remote devices are
/// "RPC", never "GPU": "GPU blocks", "RPC blocks" or "GPU+RPC blocks"; the output layer,
/// with the last offloaded blocks, is on "CPU", "GPU" or the remote device's name.
fn offload_words(p: &Planned) -> (&'static str, String) {
    let remote = |name: &str| {
        p.hardware
            .gpus
            .iter()
            .any(|g| g.name == name && g.remote.is_some())
    };
    let used: Vec<&str> = p
        .plan
        .devices
        .iter()
        .filter(|d| d.is_gpu && d.weights_bytes > crate::bytes::Bytes::ZERO)
        .map(|d| d.device.as_str())
        .collect();
    // Nothing offloaded: name what could have been.
    let kinds: Vec<bool> = if used.is_empty() {
        p.hardware.gpus.iter().map(|g| g.remote.is_some()).collect()
    } else {
        used.iter().map(|d| remote(d)).collect()
    };
    let offload = match (kinds.contains(&false), kinds.contains(&true)) {
        (_, false) => "GPU",
        (false, true) => "RPC",
        (true, true) => "GPU+RPC",
    };
    let output = match used.last() {
        _ if !p.plan.output_on_gpu => "CPU".to_string(),
        Some(d) if remote(d) => d.to_string(),
        _ => "GPU".to_string(),
    };
    (offload, output)
}

/// The warning for a loaded machine.
pub fn busy_line(b: &crate::plan::Busy) -> String {
    format!(
        "this machine is busy (load average {:.1} on {}): the figures assume idle cores; use --threads {} so the engine does not fight the other work",
        b.load_average,
        super::output::count(b.physical_cores as u64, "physical core"),
        b.recommended_threads
    )
}
