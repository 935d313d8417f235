//! Speculative decoding with a draft model, as llama.cpp's `draft-simple` does it
//! (`common/speculative.cpp`): the draft proposes up to `n_max` tokens by argmax, the model
//! reads them in one batch, and its own sampler runs over each position in turn, keeping a
//! drafted token only when it samples that very token. What is emitted is therefore exactly
//! what the model's sampler would emit without the draft (greedy: the same text); the draft
//! only saves steps.

use super::{GenOptions, GenStats, Sampler, Session, Utf8Out};
use crate::engine::measure::EngineError;
use llama_cpp_sys_2 as sys;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A cache that cannot drop rejected tokens (recurrent, or a sliding window).
fn cannot_drop(who: &str) -> EngineError {
    EngineError(format!(
        "speculative decoding needs a cache that can drop rejected tokens, and the {who}'s cannot (a recurrent or sliding-window cache)"
    ))
}

impl Session {
    /// Reads `tokens` at the next positions with logits at every one (the verification
    /// batch).
    fn decode_all_logits(&mut self, tokens: &[sys::llama_token]) -> Result<(), EngineError> {
        let n = tokens.len() as i32;
        let start = self.cached.len() as i32;
        // SAFETY: the batch is allocated for `n` tokens with one sequence id each, every
        // field written is inside those allocations, and it is freed once after the decode.
        let rc = unsafe {
            let mut batch = sys::llama_batch_init(n, 0, 1);
            for (i, &t) in tokens.iter().enumerate() {
                *batch.token.add(i) = t;
                *batch.pos.add(i) = start + i as i32;
                *batch.n_seq_id.add(i) = 1;
                **batch.seq_id.add(i) = 0;
                *batch.logits.add(i) = 1;
            }
            batch.n_tokens = n;
            let rc = sys::llama_decode(self.ctx, batch);
            sys::llama_batch_free(batch);
            rc
        };
        if rc != 0 {
            return Err(EngineError(format!("llama_decode failed (code {rc})")));
        }
        self.cached.extend_from_slice(tokens);
        Ok(())
    }

    /// The most likely next token after the last decode (the draft's argmax).
    fn argmax(&self) -> sys::llama_token {
        argmax_at(self.ctx, self.vocab, -1)
    }

    /// The vocabulary's size (token ids run from 0 below it).
    pub(crate) fn n_vocab(&self) -> i32 {
        // SAFETY: `self.vocab` belongs to the model this session owns.
        unsafe { sys::llama_vocab_n_tokens(self.vocab) }
    }

    /// Proposes up to `n_max` tokens after `emitted` (the whole conversation so far, the
    /// prompt and the answer): catches the cache up, then argmax, one token at a time.
    fn propose(
        &mut self,
        emitted: &[sys::llama_token],
        n_max: u32,
        limit: i32,
    ) -> Result<Vec<sys::llama_token>, EngineError> {
        let keep = reusable(&self.cached, emitted);
        if !self.truncate(keep) {
            return Err(cannot_drop("draft"));
        }
        self.decode(&emitted[keep..])?;
        let mut drafted = Vec::new();
        loop {
            let t = self.argmax();
            // A token the model's vocabulary lacks (they may differ by 128) ends the draft.
            if t >= limit {
                break;
            }
            drafted.push(t);
            if drafted.len() as u32 >= n_max || self.cached.len() as u32 + 1 >= self.n_ctx {
                break;
            }
            self.decode(&[t])?;
        }
        Ok(drafted)
    }

    /// Answers `prompt` as [`Session::generate`] does, drafting with `draft` (`n_max` tokens a
    /// step at most). The stats count the drafted and the accepted tokens.
    pub fn generate_with_draft(
        &mut self,
        draft: &mut Session,
        n_max: u32,
        prompt: &[sys::llama_token],
        opts: &GenOptions,
        stop: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenStats, EngineError> {
        let mut stats = self.read_prompt(prompt)?;
        // The draft reads the prompt too (its cache keeps the previous turn the same way).
        let t = Instant::now();
        draft.read_prompt(prompt)?;
        stats.prompt_seconds += t.elapsed().as_secs_f64();
        let smpl = Sampler::new(opts);
        let mut out = Utf8Out::default();
        let limit = self.n_vocab();
        let t = Instant::now();
        // The conversation so far; its last token is sampled but not yet read by the model.
        let mut emitted: Vec<sys::llama_token> = prompt.to_vec();
        let result = (|| {
            let mut next = smpl.sample(self.ctx, -1);
            'answer: loop {
                if stop.load(Ordering::Relaxed) {
                    stats.interrupted = true;
                    break;
                }
                // SAFETY: `self.vocab` belongs to the model this session owns.
                if unsafe { sys::llama_vocab_is_eog(self.vocab, next) } {
                    break;
                }
                stats.generated_tokens += 1;
                out.push(&self.piece(next), on_text);
                emitted.push(next);
                let room = self.n_ctx.saturating_sub(self.cached.len() as u32 + 2);
                if stats.generated_tokens >= opts.max_tokens || room == 0 {
                    break;
                }
                let want = n_max
                    .min(room)
                    .min(opts.max_tokens - stats.generated_tokens);
                let drafted = draft.propose(&emitted, want, limit)?;
                let base = self.cached.len();
                let mut batch = vec![next];
                batch.extend_from_slice(&drafted);
                self.decode_all_logits(&batch)?;
                stats.draft_tokens += drafted.len() as u32;
                let mut accepted = 0;
                for (i, &d) in drafted.iter().enumerate() {
                    let s = smpl.sample(self.ctx, i as i32);
                    if s != d {
                        next = s;
                        break;
                    }
                    accepted += 1;
                    stats.draft_accepted += 1;
                    // SAFETY: as above.
                    let eog = unsafe { sys::llama_vocab_is_eog(self.vocab, s) };
                    if eog || stop.load(Ordering::Relaxed) {
                        if !self.truncate(base + 1 + accepted) {
                            return Err(cannot_drop("model"));
                        }
                        stats.interrupted = !eog;
                        break 'answer;
                    }
                    stats.generated_tokens += 1;
                    out.push(&self.piece(s), on_text);
                    emitted.push(s);
                    if stats.generated_tokens >= opts.max_tokens {
                        if !self.truncate(base + 1 + accepted) {
                            return Err(cannot_drop("model"));
                        }
                        break 'answer;
                    }
                }
                if accepted == drafted.len() {
                    // Every drafted token kept: the model's own token follows them.
                    next = smpl.sample(self.ctx, drafted.len() as i32);
                }
                if !self.truncate(base + 1 + accepted) {
                    return Err(cannot_drop("model"));
                }
            }
            Ok(())
        })();
        stats.decode_seconds = t.elapsed().as_secs_f64();
        out.flush(on_text);
        result.map(|_| stats)
    }
}

/// The most likely token at output `at` of the last decode (-1: the last output).
pub(crate) fn argmax_at(
    ctx: *mut sys::llama_context,
    vocab: *const sys::llama_vocab,
    at: i32,
) -> sys::llama_token {
    // SAFETY: `ctx` is live, its last decode produced output `at`, and that output has
    // `n_vocab` logits (`vocab` is its model's).
    let logits = unsafe {
        let n = sys::llama_vocab_n_tokens(vocab) as usize;
        std::slice::from_raw_parts(sys::llama_get_logits_ith(ctx, at), n)
    };
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as sys::llama_token
}

/// How many cached tokens a new sequence `tokens` can keep: their common prefix, leaving at
/// least one token of `tokens` to decode (its logits are needed).
pub(crate) fn reusable(cached: &[sys::llama_token], tokens: &[sys::llama_token]) -> usize {
    cached
        .iter()
        .zip(tokens)
        .take_while(|(a, b)| a == b)
        .count()
        .min(tokens.len().saturating_sub(1))
}
