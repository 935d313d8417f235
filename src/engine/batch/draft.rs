//! The draft model of a served model: one sequence per slot, proposing tokens for every
//! generating slot at once (llama.cpp's `draft-simple`: argmax, `n_max` tokens a step at most).
//! Its cache follows each slot's conversation: what it shares with the slot's tokens is kept,
//! the rest dropped and read again.

use super::{put, Token};
use crate::engine::session::Session;
use llama_cpp_sys_2 as sys;

/// What a slot asks of the draft this step.
pub struct Want<'a> {
    pub seq: i32,
    /// The slot's tokens so far: the prompt and the answer, its last token not yet read by
    /// the model.
    pub history: &'a [Token],
    /// Tokens to propose at most.
    pub n: u32,
}

pub struct Drafter<'a> {
    session: &'a Session,
    /// Per sequence: the tokens in the draft's cache.
    cached: Vec<Vec<Token>>,
    batch: sys::llama_batch,
    n_batch: i32,
    /// Drafted tokens must exist in the model's vocabulary (the two may differ by 128).
    limit: Token,
}

impl<'a> Drafter<'a> {
    pub fn new(session: &'a Session, n_seq: u32, limit: Token) -> Drafter<'a> {
        let n_batch = session.n_batch().max(1) as i32;
        Drafter {
            session,
            cached: vec![Vec::new(); n_seq as usize],
            // SAFETY: a batch of `n_batch` tokens with one sequence id each, freed in `Drop`.
            batch: unsafe { sys::llama_batch_init(n_batch, 0, 1) },
            n_batch,
            limit,
        }
    }

    fn mem(&self) -> sys::llama_memory_t {
        let (ctx, _) = self.session.raw();
        // SAFETY: the draft session's context lives as long as `self.session`.
        unsafe { sys::llama_get_memory(ctx) }
    }

    /// Drops sequence `seq` (its slot ended).
    pub fn forget(&mut self, seq: i32) {
        // SAFETY: the context is live; removing a whole sequence always succeeds.
        unsafe { sys::llama_memory_seq_rm(self.mem(), seq, -1, -1) };
        self.cached[seq as usize].clear();
    }

    fn decode(&mut self, n: i32) -> bool {
        let (ctx, _) = self.session.raw();
        let mut b = self.batch;
        b.n_tokens = n;
        // SAFETY: the batch holds `n` tokens written by `put`, within its `n_batch`.
        n == 0 || unsafe { sys::llama_decode(ctx, b) } == 0
    }

    fn argmax(&self, at: i32) -> Token {
        let (ctx, vocab) = self.session.raw();
        crate::engine::session::argmax_at(ctx, vocab, at)
    }

    /// Proposes tokens for each slot that wants them; an empty list where the draft failed
    /// or proposed a token the model lacks.
    pub fn propose(&mut self, wants: &[Want]) -> Vec<Vec<Token>> {
        let mem = self.mem();
        let mut out: Vec<Vec<Token>> = vec![Vec::new(); wants.len()];
        // What each sequence must still read: its history beyond what the cache shares.
        let mut next_fed: Vec<usize> = Vec::with_capacity(wants.len());
        for w in wants {
            let cached = &mut self.cached[w.seq as usize];
            let mut keep = crate::engine::session::reusable(cached, w.history);
            // SAFETY: the context is live; `seq` is one of its sequences (both calls).
            if !unsafe { sys::llama_memory_seq_rm(mem, w.seq, keep as i32, -1) } {
                // SAFETY: as above; a whole sequence can always be removed.
                unsafe { sys::llama_memory_seq_rm(mem, w.seq, -1, -1) };
                keep = 0;
            }
            cached.truncate(keep);
            next_fed.push(keep);
        }
        // Catch up, `n_batch` tokens a decode; a sequence's first proposal comes from the
        // decode that reads its last token.
        let mut live = vec![true; wants.len()];
        loop {
            let mut n = 0;
            let mut ends: Vec<(usize, i32)> = Vec::new();
            for (i, w) in wants.iter().enumerate() {
                while next_fed[i] < w.history.len() && n < self.n_batch {
                    let pos = next_fed[i];
                    let last = pos + 1 == w.history.len();
                    let at = put(&self.batch, &mut n, w.history[pos], pos as i32, w.seq, last);
                    self.cached[w.seq as usize].push(w.history[pos]);
                    next_fed[i] += 1;
                    if last {
                        ends.push((i, at));
                    }
                }
            }
            if n == 0 {
                break;
            }
            if !self.decode(n) {
                return vec![Vec::new(); wants.len()];
            }
            for (i, at) in ends {
                let t = self.argmax(at);
                if t < self.limit && wants[i].n > 0 {
                    out[i].push(t);
                } else {
                    live[i] = false;
                }
            }
        }
        // Then one token a step for every sequence still drafting.
        loop {
            let mut n = 0;
            let mut at: Vec<(usize, i32)> = Vec::new();
            for (i, w) in wants.iter().enumerate() {
                if !live[i] || out[i].len() as u32 >= w.n {
                    continue;
                }
                let t = *out[i].last().expect("a first proposal");
                let cached = &mut self.cached[w.seq as usize];
                at.push((
                    i,
                    put(&self.batch, &mut n, t, cached.len() as i32, w.seq, true),
                ));
                cached.push(t);
            }
            if n == 0 {
                break;
            }
            if !self.decode(n) {
                return vec![Vec::new(); wants.len()];
            }
            for (i, a) in at {
                let t = self.argmax(a);
                if t < self.limit {
                    out[i].push(t);
                } else {
                    live[i] = false;
                }
            }
        }
        out
    }
}

impl Drop for Drafter<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once.
        unsafe { sys::llama_batch_free(self.batch) };
    }
}
