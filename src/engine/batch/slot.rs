//! One request's sequence in the batch: its sampler, the text it has sent, and what each
//! sampled token does to it.

use super::{EngineStats, Event, Finish, FinishReason, Job, Token};
use crate::engine::session::Session;
use llama_cpp_sys_2 as sys;
use std::sync::atomic::Ordering;

pub(super) struct Slot {
    pub(super) seq: i32,
    pub(super) job: Job,
    /// Prompt tokens already in the cache when the request came (an earlier request's).
    pub(super) cached: usize,
    /// Prompt tokens already in the cache.
    pub(super) fed: usize,
    pub(super) n_past: i32,
    /// The sampled token to feed at the next step.
    pub(super) next: Option<Token>,
    pub(super) generated: u32,
    pub(super) sampler: *mut sys::llama_sampler,
    pub(super) pending: Vec<u8>,
    /// Text not yet sent: it might be the start of a stop string.
    pub(super) held: String,
    pub(super) logits_at: Option<i32>,
    /// The prompt and the answer so far (the draft model follows it).
    pub(super) history: Vec<Token>,
    /// Tokens the draft proposed this step, read by the model after `next`.
    pub(super) drafted: Vec<Token>,
}

/// The text of `tok` in this answer: special tokens only when the request preserves them
/// (a tool call's tags, which its parser reads), as llama-server renders them.
pub(super) fn text_of(s: &Slot, session: &Session, tok: Token) -> Vec<u8> {
    if !s.job.sampling.preserved.contains(&tok) {
        return session.piece(tok);
    }
    let (_, vocab) = session.raw();
    let mut buf = vec![0u8; 256];
    // SAFETY: `vocab` belongs to the live model; `buf` outlives the call, which writes at
    // most `buf.len()` bytes.
    let n = unsafe {
        sys::llama_token_to_piece(
            vocab,
            tok,
            buf.as_mut_ptr() as *mut std::ffi::c_char,
            buf.len() as i32,
            0,
            true,
        )
    };
    buf.truncate(n.max(0) as usize);
    buf
}

impl Slot {
    /// Sends what cannot be part of a stop string; `true` when a stop string completed.
    pub(super) fn emit(&mut self, piece: &str) -> (bool, bool) {
        self.held.push_str(piece);
        if let Some(at) = self
            .job
            .stop
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let text: String = self.held[..at].to_string();
            self.held.clear();
            let alive = text.is_empty() || (self.job.sink)(Event::Text(text));
            return (alive, true);
        }
        let keep = self
            .job
            .stop
            .iter()
            .map(|s| s.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        let mut cut = self.held.len().saturating_sub(keep);
        while !self.held.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            return (true, false);
        }
        let text: String = self.held.drain(..cut).collect();
        ((self.job.sink)(Event::Text(text)), false)
    }
}

/// What one sampled token did to a slot.
pub(super) struct Taken {
    /// The client still listens.
    pub(super) alive: bool,
    pub(super) end: Option<FinishReason>,
}

/// Takes `tok`, sampled for slot `s` with `s.n_past` tokens before it in the cache: ends
/// the answer on an end-of-generation token, else sends its text (held back while it may
/// start a stop string) and ends the answer at a stop string, `max_tokens` or the context.
pub(super) fn take(
    s: &mut Slot,
    tok: Token,
    logprob: Option<super::TokenLogprob>,
    session: &Session,
    n_ctx_seq: i32,
    stats: &EngineStats,
) -> Taken {
    let (_, vocab) = session.raw();
    // SAFETY: `vocab` belongs to the session's live model.
    if unsafe { sys::llama_vocab_is_eog(vocab, tok) } {
        return Taken {
            alive: true,
            end: Some(FinishReason::Stop),
        };
    }
    let mut alive = true;
    let mut end = None;
    s.generated += 1;
    s.history.push(tok);
    stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
    if let Some(lp) = logprob {
        alive = (s.job.sink)(Event::Logprob(lp));
    }
    let piece = text_of(s, session, tok);
    s.pending.extend(piece);
    let valid = match std::str::from_utf8(&s.pending) {
        Ok(v) => v.len(),
        Err(e) => e.valid_up_to(),
    };
    if valid > 0 {
        let piece: String = String::from_utf8_lossy(&s.pending[..valid]).into();
        s.pending.drain(..valid);
        let (ok, stopped) = s.emit(&piece);
        alive &= ok;
        if stopped {
            end = Some(FinishReason::Stop);
        }
    }
    if end.is_none() && (s.generated >= s.job.max_tokens || s.n_past + 1 >= n_ctx_seq) {
        end = Some(FinishReason::Length);
    }
    Taken { alive, end }
}

/// Ends slot `s`'s answer: what text it still holds (all of it unless a stop string may be
/// pending), then the finish event.
pub(super) fn finish(s: &mut Slot, reason: FinishReason) {
    let mut rest = std::mem::take(&mut s.held);
    if reason != FinishReason::Stop || s.job.stop.is_empty() {
        rest.push_str(&String::from_utf8_lossy(&s.pending));
    }
    if !rest.is_empty() {
        (s.job.sink)(Event::Text(rest));
    }
    (s.job.sink)(Event::Done(Finish {
        reason,
        prompt_tokens: s.job.prompt.len() as u32,
        cached_tokens: s.cached as u32,
        completion_tokens: s.generated,
    }));
}

/// Frees slot `s`: its sampler and its cells in the draft's cache (its cells in the model's
/// cache are kept or cleared by the caller, `reuse::Kept`).
pub(super) fn release(s: Slot, draft: Option<&mut super::draft::Drafter>) {
    // SAFETY: the sampler is this slot's and is freed only here.
    unsafe { sys::llama_sampler_free(s.sampler) };
    if let Some(d) = draft {
        d.forget(s.seq);
    }
}
