//! Prompts with images: the text is split at each image marker by llama.cpp's multimodal
//! tokenizer (`mtmd_tokenize`), text chunks are decoded as any prompt, and each image chunk
//! is encoded by the projector and decoded as embeddings (`mtmd_helper_eval_chunk_single`,
//! which also switches to non-causal attention where the model needs it). What the cache
//! already holds from the previous turn is kept, up to the first chunk that changed.

use super::{GenOptions, GenStats, Session};
use crate::engine::measure::EngineError;
use crate::engine::vision::{Image, Vision};
use llama_cpp_sys_2 as sys;
use std::ffi::CString;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// One piece of a tokenized prompt.
enum Piece {
    Text(Vec<sys::llama_token>),
    /// An image: its chunk's index and how many tokens it takes.
    Image {
        index: usize,
        n_tokens: usize,
    },
}

/// The chunk list of one prompt, freed once.
struct Chunks(*mut sys::mtmd_input_chunks);

impl Drop for Chunks {
    fn drop(&mut self) {
        // SAFETY: created by `mtmd_input_chunks_init` and freed once, here.
        unsafe { sys::mtmd_input_chunks_free(self.0) };
    }
}

/// Tokens that stand for image `n` in the cache's record: negative, so no text token ever
/// matches one, and the same for the same image at the same place in the next turn.
fn placeholder(n: usize) -> sys::llama_token {
    -2 - n as sys::llama_token
}

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
        let (chunks, pieces) = tokenize(vision, text, images)?;
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
                        self.eval_image(vision, &chunks, *index, pos, i == last)?;
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

    /// Encodes image chunk `index` and decodes its embeddings at position `pos`.
    fn eval_image(
        &mut self,
        vision: &Vision,
        chunks: &Chunks,
        index: usize,
        pos: usize,
        logits_last: bool,
    ) -> Result<(), EngineError> {
        let mut new_pos: sys::llama_pos = 0;
        // SAFETY: the chunk belongs to `chunks`, alive for the call; the multimodal and
        // text contexts are live and belong to the same model; `new_pos` is writable.
        let rc = unsafe {
            let chunk = sys::mtmd_input_chunks_get(chunks.0, index);
            sys::mtmd_helper_eval_chunk_single(
                vision.raw(),
                self.ctx,
                chunk,
                pos as sys::llama_pos,
                0,
                self.n_batch as i32,
                logits_last,
                &mut new_pos,
            )
        };
        if rc != 0 {
            return Err(EngineError(format!(
                "llama.cpp could not encode the image (code {rc})"
            )));
        }
        Ok(())
    }
}

/// Splits `text` at its image markers into text tokens and image chunks.
fn tokenize(
    vision: &Vision,
    text: &str,
    images: &[Image],
) -> Result<(Chunks, Vec<Piece>), EngineError> {
    let c_text = CString::new(text)
        .map_err(|_| EngineError("the prompt contains a NUL character".into()))?;
    let input = sys::mtmd_input_text {
        text: c_text.as_ptr(),
        text_len: text.len(),
        add_special: true,
        parse_special: true,
    };
    let mut bitmaps: Vec<*const sys::mtmd_bitmap> = images.iter().map(Image::raw).collect();
    // SAFETY: a new, empty list, freed by `Chunks`.
    let chunks = Chunks(unsafe { sys::mtmd_input_chunks_init() });
    // SAFETY: `input` points into `c_text` and `bitmaps` holds live bitmaps, all alive for
    // the call, which fills `chunks`.
    let rc = unsafe {
        sys::mtmd_tokenize(
            vision.raw(),
            chunks.0,
            &input,
            bitmaps.as_mut_ptr(),
            bitmaps.len(),
        )
    };
    match rc {
        0 => {}
        1 => {
            return Err(EngineError(format!(
                "the prompt has a different number of image markers than the {} image(s) given",
                images.len()
            )))
        }
        _ => {
            return Err(EngineError(format!(
                "llama.cpp could not preprocess the image (code {rc})"
            )))
        }
    }
    let mut pieces = Vec::new();
    // SAFETY: indices stay below the list's size; token pointers are valid for the counts
    // llama.cpp returns, while `chunks` is alive (they are copied out at once).
    unsafe {
        for i in 0..sys::mtmd_input_chunks_size(chunks.0) {
            let c = sys::mtmd_input_chunks_get(chunks.0, i);
            if sys::mtmd_input_chunk_get_type(c) == sys::MTMD_INPUT_CHUNK_TYPE_TEXT {
                let mut n = 0usize;
                let p = sys::mtmd_input_chunk_get_tokens_text(c, &mut n);
                let tokens = if p.is_null() || n == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(p, n).to_vec()
                };
                pieces.push(Piece::Text(tokens));
            } else {
                pieces.push(Piece::Image {
                    index: i,
                    n_tokens: sys::mtmd_input_chunk_get_n_tokens(c),
                });
            }
        }
    }
    Ok((chunks, pieces))
}
