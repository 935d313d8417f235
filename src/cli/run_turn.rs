//! One turn of `run`'s chat: the conversation fitted into the context, the answer streamed
//! (with a draft model or the conversation's images when there are), Ctrl-C stopping the
//! answer rather than the program, memory watched while generating, the speed recorded.

use super::output;
use super::output::Printer;
use super::run_prepare::PromptFormat;
use super::{exit, Failure};
use crate::engine::session::chat::{Conversation, Role};
use crate::engine::session::{GenOptions, GenStats, Session};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static GENERATING: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

/// Ctrl-C: stops the answer being generated, else ends `run` with the exit table's 130.
pub(super) extern "C" fn on_sigint(_: libc::c_int) {
    if GENERATING.load(Ordering::SeqCst) {
        STOP.store(true, Ordering::SeqCst);
    } else {
        // SAFETY: `_exit` is async-signal-safe; the other branch stores to an atomic.
        unsafe { libc::_exit(i32::from(exit::INTERRUPTED)) };
    }
}

/// How each answer is produced and shown.
pub(super) struct Turn<'a> {
    pub(super) opts: GenOptions,
    /// The degraded-mode banner, shown before every answer.
    pub(super) banner: Option<String>,
    /// Print the answer as it is generated (not with --json).
    pub(super) stream: bool,
    pub(super) format: PromptFormat,
    pub(super) watch_vram: bool,
    pub(super) printer: &'a Printer,
    /// Tokens drafted per step, with a draft model.
    pub(super) draft_max: u32,
    /// The projector and the conversation's images (`--image`), in message order.
    pub(super) vision: Option<&'a crate::engine::vision::Vision>,
    pub(super) images: &'a [crate::engine::vision::Image],
    /// The plan run, to record each answer's measured speeds for later plans.
    pub(super) timed: super::measured::Timed<'a>,
}

/// One turn: trims history to fit, streams the answer, appends it to the history.
pub(super) fn answer(
    session: &mut Session,
    draft: &mut Option<Session>,
    history: &mut Conversation,
    turn: &Turn,
) -> Result<(String, GenStats), Failure> {
    let internal = |e: crate::engine::measure::EngineError| Failure::Internal(anyhow::anyhow!(e));
    let budget = session
        .n_ctx()
        .saturating_sub(turn.opts.max_tokens.min(session.n_ctx() / 2)) as usize;
    let fitted = history.fit(budget, |messages| {
        let text = match turn.format {
            PromptFormat::Raw => crate::engine::session::plain_text(messages),
            PromptFormat::ChatTemplate => session.format(messages, true).map_err(internal)?,
        };
        let t = session.tokenize(&text, true);
        let n = t.len();
        Ok::<_, Failure>(((t, text), n))
    })?;
    let (tokens, prompt_text) = fitted.rendered;
    let trimmed = fitted.dropped;
    if trimmed > 0 {
        output::note(&format!(
            "dropped the {trimmed} oldest message(s) to keep the conversation within the context"
        ));
    }
    if let (Some(b), true) = (&turn.banner, turn.stream) {
        turn.printer.warning(b);
    }
    STOP.store(false, Ordering::SeqCst);
    GENERATING.store(true, Ordering::SeqCst);
    let mut text = String::new();
    // Memory is checked every two seconds, not per token: an NVML query costs milliseconds.
    let mut last_check = std::time::Instant::now();
    let n_max = turn.draft_max;
    let mut on_text = |piece: &str| {
        text.push_str(piece);
        if turn.stream {
            turn.printer.raw(piece);
            let _ = std::io::stdout().flush();
        }
        if last_check.elapsed() >= std::time::Duration::from_secs(2) {
            last_check = std::time::Instant::now();
            if let Some(alert) = crate::engine::monitor::memory_alert(turn.watch_vram) {
                output::warning(&alert);
            }
        }
    };
    // The images whose markers are still in the conversation (the oldest go with trimmed
    // messages).
    let marked = turn
        .vision
        .map_or(0, |_| {
            prompt_text
                .matches(&crate::engine::vision::Vision::marker())
                .count()
        })
        .min(turn.images.len());
    let result = match (draft, turn.vision) {
        (_, Some(v)) if marked > 0 => session.generate_with_images(
            v,
            &prompt_text,
            &turn.images[turn.images.len() - marked..],
            &turn.opts,
            &STOP,
            &mut on_text,
        ),
        (Some(d), _) => {
            session.generate_with_draft(d, n_max, &tokens, &turn.opts, &STOP, &mut on_text)
        }
        (None, _) => session.generate(&tokens, &turn.opts, &STOP, &mut on_text),
    };
    GENERATING.store(false, Ordering::SeqCst);
    let stats = result.map_err(internal)?;
    super::measured::record(&turn.timed, &stats);
    if turn.stream {
        turn.printer.raw("\n");
        if stats.interrupted {
            output::note("answer stopped (Ctrl-C)");
        }
        if let Some(a) = stats.draft_acceptance() {
            output::note(&format!(
                "draft: the model accepted {} of {} drafted tokens ({:.0}%)",
                stats.draft_accepted,
                stats.draft_tokens,
                a * 100.0
            ));
        }
    }
    if let Some(alert) = crate::engine::monitor::memory_alert(turn.watch_vram) {
        output::warning(&alert);
    }
    history.push(Role::Assistant, text.clone());
    Ok((text, stats))
}
