//! `layerfit run`: chat on the bundled llama.cpp with the plan. Refuses what does not fit
//! (exit 20), asks (or needs `--accept-degraded`) when degraded and then shows the degraded
//! banner with every answer, checks what llama.cpp allocated against the plan, and watches
//! memory while generating.

use super::output::{self, Printer};
use super::planning::PlanArgs;
use super::run_prepare::{base_model_note, PromptFormat};
use super::run_turn::{answer, on_sigint, Turn};
use super::self_check_report::{report_driver_check, report_self_check};
use super::{exit, Failure};
use crate::bytes::Bytes;
use crate::engine::self_check::{Check, DriverCheck};
use crate::engine::session::chat::{Conversation, Role};
use crate::engine::session::{GenOptions, GenStats, Session};
use crate::plan::Verdict;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// A run file from `layerfit plan --emit profile` (no planning; its settings are used).
    #[arg(long = "plan", conflicts_with_all = ["model", "profile"])]
    pub plan_file: Option<PathBuf>,
    /// Answer this once and exit (for scripts); otherwise chat (from stdin when not a terminal).
    #[arg(long)]
    pub prompt: Option<String>,
    /// A system message for the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens one answer may generate (at least 1).
    #[arg(long, default_value = "512", allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: u32,
    /// Sampling temperature, 0 (greedy) to 100.
    #[arg(long, default_value = "0.7", allow_negative_numbers = true, value_parser = parse_temperature)]
    pub temp: f32,
    /// Random seed for sampling (the same seed and prompt give the same answer).
    #[arg(long, default_value = "42", allow_negative_numbers = true)]
    pub seed: u32,
    /// Run a degraded plan without asking.
    #[arg(long)]
    pub accept_degraded: bool,
    /// Print the self-check table (plan vs what llama.cpp allocated).
    #[arg(long)]
    pub verify: bool,
    /// Lock the weights in RAM (mlock).
    #[arg(long)]
    pub mlock: bool,
    /// Plain text completion, no chat template, for any model (a base model, one with no
    /// chat template and no chat or instruct tag, is completed this way already).
    #[arg(long, conflicts_with = "chat")]
    pub raw: bool,
    /// Wrap the prompt in a chat template even for a base model (the file's template, else
    /// llama.cpp's built-in one for the architecture).
    #[arg(long)]
    pub chat: bool,
    /// With --prompt: print one JSON document (answer, self-check, speed, peak RSS)
    /// (docs/json-schema.md).
    #[arg(long, requires = "prompt")]
    pub json: bool,
    /// An image for the first message (repeatable; needs --mmproj): PNG, JPEG, BMP or GIF.
    #[arg(long, value_name = "FILE")]
    pub image: Vec<PathBuf>,
}

/// A temperature is a finite number from 0 to 100 (NaN or infinity would poison sampling).
fn parse_temperature(s: &str) -> Result<f32, String> {
    let t: f32 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number (e.g. 0.7; 0 is greedy)"))?;
    if !t.is_finite() || !(0.0..=100.0).contains(&t) {
        return Err(format!(
            "'{s}' is not a usable temperature: use a number from 0 (greedy) to 100"
        ));
    }
    Ok(t)
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct RunDoc<'a> {
    answer: String,
    model: String,
    verdict: Verdict,
    degradations: &'a [String],
    /// The model has no chat template and no chat or instruct tag (docs/json-schema.md).
    base_model: bool,
    /// The line printed for a base model, saying how it is run and how to override that.
    base_model_note: Option<&'a str>,
    /// How the prompt reached the model: `chat_template` or `raw` (plain text).
    prompt_format: PromptFormat,
    /// Why llama.cpp's built-in template stands in for the file's; `null` when none is used.
    template_note: Option<&'a str>,
    self_check: &'a [Check],
    /// Each local GPU's free memory by its driver before the plan and after loading, next to
    /// what the plan kept there (buffers and back-end reserve; docs/hardware.md).
    device_memory: &'a [DriverCheck],
    stats: &'a GenStats,
    prompt_tokens_per_s: Option<f64>,
    decode_tokens_per_s: Option<f64>,
    peak_rss_bytes: Option<u64>,
    context: u32,
    threads: u32,
    /// The plan's expected speed (docs/speed.md), to set beside the measured rates.
    expected_speed: Option<&'a crate::plan::Speed>,
    /// With `--draft`: the draft, its measured acceptance and what the plan expected at it.
    draft: Option<DraftDoc<'a>>,
    /// With `--mmproj`: the projector's planned bytes against what llama.cpp loaded.
    projector: Option<super::run_images::ProjectorDoc>,
}

/// `run --json`'s account of speculative decoding.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct DraftDoc<'a> {
    model: &'a str,
    /// Tokens drafted per step at most.
    draft_max: u32,
    /// The share of drafted tokens the model accepted (`stats.draft_accepted` /
    /// `stats.draft_tokens`); `null` when nothing was drafted.
    acceptance: Option<f64>,
    /// The plan's expected decode speed at the measured acceptance (tokens/s), to set
    /// beside `decode_tokens_per_s`.
    expected_decode_tokens_per_s: Option<f64>,
    /// The draft's planned bytes against what llama.cpp allocated for it.
    self_check: &'a [Check],
}

pub fn run(args: Args, printer: &Printer) -> Result<u8, Failure> {
    let prep = super::run_prepare::prepare(&args.plan, args.plan_file.as_deref())?;
    // Refused before anything loads.
    match &prep.plan.projector {
        Some(p) => super::run_images::on_disk(p)?,
        None => drop(super::run_images::read(&args.image, None)?),
    }
    let format = PromptFormat::choose(&prep.purpose, args.raw, args.chat);
    let base_note = base_model_note(&prep.purpose, format);
    if let Some(n) = &base_note {
        output::note(n);
    }
    let interactive = std::io::stdin().is_terminal() && args.prompt.is_none();
    if prep.verdict == Verdict::Degraded && !args.accept_degraded {
        for d in &prep.degradations {
            printer.warning(d);
        }
        if std::io::stdin().is_terminal() {
            let ok = dialoguer::Confirm::new()
                .with_prompt("Continue with degraded experience?")
                .default(false)
                .interact()
                .unwrap_or(false);
            if !ok {
                return Ok(exit::DEGRADED);
            }
        } else {
            output::error("the plan is degraded: pass --accept-degraded to run it anyway");
            return Ok(exit::DEGRADED);
        }
    }
    let s = &prep.settings;
    let load_average = super::measured::load_average();
    let (cfg, threads) = prep.session_config(args.plan.threads, args.mlock)?;
    if (s.n_cpu_moe > 0 || s.n_cpu_ffn > 0) && crate::engine::gpu_backends().is_empty() {
        output::note(
            "tensor overrides have no effect in a CPU-only build: every tensor is on the CPU",
        );
    }
    if let Some(sp) = &prep.speed {
        output::note(&format!(
            "expected: about {} tokens/s at the start, {} with the context full; prompt about {} tokens/s ({}, {})",
            super::plan_report::rate(sp.decode_tokens_per_s),
            super::plan_report::rate(sp.decode_tokens_per_s_at_context),
            super::plan_report::rate(sp.prompt_tokens_per_s),
            output::count(u64::from(threads), "thread"),
            super::plan_report::source_words(sp)
        ));
        if let Some(b) = &sp.busy {
            if threads == b.recommended_threads {
                output::note(&format!(
                    "this machine is busy (load average {:.1} on {}): running with {}, as the plan recommends (--threads to choose)",
                    b.load_average,
                    output::count(b.physical_cores as u64, "physical core"),
                    output::count(u64::from(threads), "thread")
                ));
            } else {
                output::warning(&super::plan_report::busy_line(b));
            }
        }
    }
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() || args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("loading {msg} [{bar:30}] {percent}%")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(prep.label.clone());
    let mut session = Session::load(&cfg, &mut |p| bar.set_position((p * 1000.0) as u64))
        .map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
    bar.finish_and_clear();
    // The template note matters only when a template is applied.
    let template_note = match format {
        PromptFormat::ChatTemplate => session.template_note.clone(),
        PromptFormat::Raw => None,
    };
    if let Some(n) = &template_note {
        output::note(n);
    }
    let checks = crate::engine::self_check::self_check(
        &prep.expected,
        prep.repacked,
        session.output_buffer(),
        &session.breakdown(),
    );
    report_self_check(&checks, "self-check", args.verify && !args.json, printer);
    let driver =
        crate::engine::self_check::driver_check(&prep.baselines, &crate::engine::free_memory());
    report_driver_check(&driver, args.verify && !args.json, printer);
    // The draft loads after the model's checks: the driver's view above is the model's alone.
    let mut draft = match prep.draft_config(&cfg)? {
        Some(dcfg) => {
            bar.reset();
            bar.set_message(format!("draft {}", dcfg.model.display()));
            let d = Session::load(&dcfg, &mut |p| bar.set_position((p * 1000.0) as u64))
                .map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
            bar.finish_and_clear();
            Some(d)
        }
        None => None,
    };
    let draft_plan = prep.plan.draft.as_ref();
    let draft_checks = match (&draft, draft_plan) {
        (Some(d), Some(dp)) => {
            let checks = crate::engine::self_check::self_check(
                &dp.devices,
                dp.ram.repacked_bytes,
                d.output_buffer(),
                &d.breakdown(),
            );
            report_self_check(
                &checks,
                "self-check (draft)",
                args.verify && !args.json,
                printer,
            );
            checks
        }
        _ => Vec::new(),
    };
    let vision =
        super::run_images::load(prep.plan.projector.as_ref(), &session, cfg.threads, printer)?;
    let images = super::run_images::read(&args.image, vision.as_ref().map(|v| &v.0))?;
    if !images.is_empty() && draft.is_some() {
        return Err(Failure::BadInput(
            "--image with --draft: the draft model cannot read the projector's embeddings (llama.cpp's draft-simple drafts from text); drop one of them".into(),
        ));
    }
    let projector_doc = vision
        .as_ref()
        .map(|(_, d)| super::run_images::ProjectorDoc {
            images: images.len(),
            ..d.clone()
        });

    // SAFETY: the handler only stores to atomics or calls `_exit`, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let opts = GenOptions {
        max_tokens: args.max_tokens,
        temperature: args.temp,
        seed: args.seed,
    };
    let mut history = Conversation::new(args.system.as_deref());
    let turn = Turn {
        opts,
        banner: degraded_banner(&prep),
        stream: true,
        format,
        // VRAM is read (NVML) only when the plan put something on a GPU.
        watch_vram: prep
            .expected
            .iter()
            .any(|d| d.is_gpu && d.total_bytes > Bytes::ZERO),
        printer,
        draft_max: prep.settings.draft.as_ref().map_or(0, |d| d.draft_max),
        vision: vision.as_ref().map(|v| &v.0),
        images: &images,
        timed: super::measured::Timed {
            plan: &prep.plan,
            model: &prep.settings.model,
            threads,
            load_average,
        },
    };
    // The images go with the first user message.
    let first_text = |q: &str| super::run_images::with_markers(q, images.len());
    if let Some(q) = &args.prompt {
        history.push(Role::User, first_text(q));
        let turn = Turn {
            stream: !args.json,
            ..turn
        };
        let (answer, stats) = answer(&mut session, &mut draft, &mut history, &turn)?;
        let draft_doc = draft_plan.map(|d| DraftDoc {
            model: &d.model,
            draft_max: d.draft_max,
            acceptance: stats.draft_acceptance(),
            expected_decode_tokens_per_s: d.speed.as_ref().zip(stats.draft_acceptance()).map(
                |(s, a)| {
                    crate::plan::draft::speculative_rate(
                        s.target_tokens_per_s,
                        s.verify_prompt_tokens_per_s,
                        s.draft_tokens_per_s,
                        d.draft_max,
                        a,
                    )
                },
            ),
            self_check: &draft_checks,
        });
        if args.json {
            printer.json(&RunDoc {
                answer,
                model: prep.label.clone(),
                verdict: prep.verdict,
                degradations: &prep.degradations,
                base_model: prep.purpose.is_base(),
                base_model_note: base_note.as_deref(),
                prompt_format: format,
                template_note: template_note.as_deref(),
                self_check: &checks,
                device_memory: &driver,
                prompt_tokens_per_s: stats.prompt_tokens_per_s(),
                decode_tokens_per_s: stats.decode_tokens_per_s(),
                stats: &stats,
                peak_rss_bytes: peak_rss(),
                context: session.n_ctx(),
                threads,
                expected_speed: prep.speed.as_ref(),
                draft: draft_doc,
                projector: projector_doc,
            })?;
        }
        // Ctrl-C during a one-shot answer: what came is printed, and the exit says it was
        // cut short (the exit table's 130), as a Ctrl-C before or after the answer does.
        return Ok(if stats.interrupted {
            exit::INTERRUPTED
        } else {
            exit::OK
        });
    }
    if interactive {
        let what = match format {
            PromptFormat::ChatTemplate => "chat with",
            PromptFormat::Raw => "plain-text completion (each line continues the text) with",
        };
        printer.line(&format!(
            "{what} {} ({} tokens of context); /exit or Ctrl-D to quit, Ctrl-C stops an answer",
            prep.label,
            session.n_ctx()
        ));
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            printer.raw("> ");
            let _ = std::io::stdout().flush();
        }
        let Some(Ok(line)) = lines.next() else { break };
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        if line == "/exit" || line == "/quit" {
            break;
        }
        let first = !history.has_user();
        history.push(Role::User, if first { first_text(&line) } else { line });
        answer(&mut session, &mut draft, &mut history, &turn)?;
    }
    Ok(exit::OK)
}

fn degraded_banner(prep: &super::run_prepare::Prepared) -> Option<String> {
    (prep.verdict == Verdict::Degraded)
        .then(|| format!("DEGRADED MODE: {}", prep.degradations.join("; ")))
}

/// The process's peak resident set (`VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    crate::engine::monitor::peak_resident_bytes()
}
