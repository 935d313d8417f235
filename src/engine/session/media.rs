//! Prompts with images: the text is split at each image marker by llama.cpp's multimodal
//! tokenizer (`mtmd_tokenize`), text chunks are decoded as any prompt, and each image chunk
//! is encoded by the projector and decoded as embeddings (`mtmd_helper_eval_chunk_single`,
//! which also switches to non-causal attention where the model needs it). What the cache
//! already holds from the previous turn is kept, up to the first chunk that changed.

use super::{GenOptions, GenStats, Session};
use crate::engine::measure::EngineError;
use crate::engine::vision::{placeholder, Image, Piece, Vision};
use llama_cpp_sys_2 as sys;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

impl Session {
    /// Answers `text` (a formatted prompt with one image marker per image), streaming text
    /// to `on_text`.
    pub fn generate_with_images(
        &mut self,
        vision: &Vision,
        text: &str,
        images: &[Image],
        opts: &GenOptions,
        stop: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<GenStats, EngineError> {
        let (chunks, pieces) = vision.tokenize(text, images)?;
        // The record of the whole prompt, images as placeholders.
        let mut flat = Vec::new();
        let mut n_image = 0;
        for p in &pieces {
            match p {
                Piece::Text(t) => flat.extend_from_slice(t),
                Piece::Image { n_tokens, .. } => {
                    flat.extend(std::iter::repeat_n(placeholder(n_image), *n_tokens));
                    n_image += 1;
                }
            }
        }
        if flat.len() as u32 >= self.n_ctx {
            return Err(EngineError(format!(
                "the prompt with its images ({} tokens) does not fit the {}-token context",
                flat.len(),
                self.n_ctx
            )));
        }
        let mut keep = super::reusable(&self.cached, &flat);
        // An image is decoded whole: keep nothing of one that is only partly cached.
        let mut pos = 0;
        for p in &pieces {
            let n = match p {
                Piece::Text(t) => t.len(),
                Piece::Image { n_tokens, .. } => *n_tokens,
            };
            if matches!(p, Piece::Image { .. }) && keep > pos && keep < pos + n {
                keep = pos;
            }
            pos += n;
        }
        // Never keep the whole prompt: the answer needs the logits of its last token.
        if keep == flat.len() {
            keep = flat.len().saturating_sub(1);
            if let Some(Piece::Image { n_tokens, .. }) = pieces.last() {
                keep = flat.len() - n_tokens;
            }
        }
        if !self.truncate(keep) {
            // SAFETY: `self.ctx` is the live context this session owns.
            unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.ctx), true) };
            self.cached.clear();
            keep = 0;
        }
        let mut stats = GenStats {
            prompt_tokens: flat.len() as u32,
            reused_tokens: keep as u32,
            ..GenStats::default()
        };
        let t = Instant::now();
        let last = pieces.len().saturating_sub(1);
        let mut pos = 0;
        for (i, p) in pieces.iter().enumerate() {
            match p {
                Piece::Text(tokens) => {
                    let from = keep.saturating_sub(pos).min(tokens.len());
                    self.decode(&tokens[from..])?;
                    pos += tokens.len();
                }
                Piece::Image { index, n_tokens } => {
                    if pos >= keep {
                        vision.eval_image(
                            self.ctx,
                            &chunks,
                            *index,
                            pos as i32,
                            0,
                            self.n_batch as i32,
                            i == last,
                        )?;
                        self.cached
                            .extend(std::iter::repeat_n(flat[pos], *n_tokens));
                    }
                    pos += n_tokens;
                }
            }
        }
        stats.prompt_seconds = t.elapsed().as_secs_f64();
        self.answer(stats, opts, stop, on_text)
    }
}
