//! The prompt cache across requests, as llama-server's slots keep it (`cache_prompt`, on by
//! default): a sequence's cells stay in the cache after its answer, and the next request goes
//! to the free sequence whose cached tokens share the longest prefix with its prompt, so only
//! the rest of the prompt is decoded. A chat's every request starts with the same template
//! and system prompt, and a conversation's next turn repeats the whole previous one.

use super::Token;
use crate::engine::session::reusable;
use llama_cpp_sys_2 as sys;

/// What each sequence's cells hold while no request owns it (token `i` at position `i`).
pub(super) struct Kept {
    tokens: Vec<Vec<Token>>,
}

impl Kept {
    pub(super) fn new(n_seq: u32) -> Kept {
        Kept {
            tokens: vec![Vec::new(); n_seq as usize],
        }
    }

    /// Of the `free` sequences, the one whose cache shares the longest prefix with `prompt`
    /// (the first on a tie); `None` when none is free.
    pub(super) fn choose(
        &self,
        free: impl Iterator<Item = usize>,
        prompt: &[Token],
    ) -> Option<usize> {
        let mut best: Option<(usize, usize)> = None;
        for i in free {
            let n = reusable(&self.tokens[i], prompt);
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((i, n));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Makes sequence `seq` ready for `prompt`: drops its cells past the common prefix and
    /// returns how many prompt tokens the cache already holds (at most all but the last,
    /// whose logits are needed). Everything is dropped, and 0 returned, when the cache cannot
    /// drop a suffix (a recurrent one) or a sliding window has moved past the prefix's start
    /// (its first cells are gone).
    pub(super) fn take(&mut self, mem: sys::llama_memory_t, seq: usize, prompt: &[Token]) -> usize {
        let cached = std::mem::take(&mut self.tokens[seq]);
        let keep = reusable(&cached, prompt);
        // SAFETY: `mem` is the live context's memory and `seq` one of its sequences; removing
        // a range of a sequence only frees cells.
        let kept = keep > 0
            && unsafe {
                sys::llama_memory_seq_rm(mem, seq as i32, keep as i32, -1)
                    && sys::llama_memory_seq_pos_min(mem, seq as i32) <= 0
            };
        if kept {
            return keep;
        }
        // SAFETY: as above; a whole sequence can always be removed.
        unsafe { sys::llama_memory_seq_rm(mem, seq as i32, -1, -1) };
        0
    }

    /// Sequence `seq` is free again and its cells hold `tokens`.
    pub(super) fn keep(&mut self, seq: usize, tokens: &[Token]) {
        self.tokens[seq] = tokens.to_vec();
    }

    /// Sequence `seq` is free again with nothing kept (its cells may not match a token list:
    /// a failed decode, a cancelled step, a shutdown).
    pub(super) fn clear(&mut self, mem: sys::llama_memory_t, seq: usize) {
        self.tokens[seq].clear();
        // SAFETY: `mem` is the live context's memory; a whole sequence can always be removed.
        unsafe { sys::llama_memory_seq_rm(mem, seq as i32, -1, -1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_shared_prefix_wins_and_the_first_on_a_tie() {
        let mut k = Kept::new(3);
        k.keep(0, &[1, 2, 9]);
        k.keep(1, &[1, 2, 3, 4]);
        k.keep(2, &[1, 2, 3, 4]);
        assert_eq!(k.choose(0..3, &[1, 2, 3, 5]), Some(1));
        // Sequence 1 is busy: of the free ones, 2 shares the most.
        assert_eq!(k.choose([0, 2].into_iter(), &[1, 2, 3, 5]), Some(2));
        assert_eq!(k.choose([0].into_iter(), &[7]), Some(0));
        assert_eq!(k.choose(std::iter::empty(), &[7]), None);
    }
}
