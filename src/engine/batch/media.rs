//! A request with images joins the batch: its prompt is split at the image markers by the
//! projector (`mtmd_tokenize`), and everything but its last token is read into the
//! request's sequence at once, text in plain batches and each image as the projector's
//! embeddings (`mtmd_helper_eval_chunk_single`, with non-causal attention where the model
//! needs it). The last token then goes through the shared batch like any prompt's, so the
//! answer is sampled at the step that reads it. llama-server also encodes an image when its
//! request starts, while the other sequences wait.

use super::{put, Token};
use crate::engine::vision::{placeholder, Piece, Vision};
use llama_cpp_sys_2 as sys;

/// What a request with images asks for: the formatted prompt (one image marker per image)
/// and each image file's bytes, in order.
#[derive(Clone, Debug, Default)]
pub struct Media {
    pub text: String,
    pub images: Vec<Vec<u8>>,
}

/// The sequence's state once everything but the last token is read.
pub(super) struct Admitted {
    /// The whole prompt, images as placeholder tokens (negative: never a real token).
    pub(super) prompt: Vec<Token>,
    /// Tokens read: all but the last.
    pub(super) fed: usize,
    /// The position after them (with M-RoPE, not the count of tokens).
    pub(super) n_past: i32,
}

/// Reads `m` into sequence `seq` of `ctx`, up to its last token, using `batch` (of
/// `n_batch` tokens) for the text.
pub(super) fn admit(
    vision: &Vision,
    ctx: *mut sys::llama_context,
    batch: &sys::llama_batch,
    n_batch: i32,
    seq: i32,
    n_ctx_seq: i32,
    m: &Media,
) -> Result<Admitted, String> {
    let images = m
        .images
        .iter()
        .map(|b| vision.image(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.0)?;
    let (chunks, pieces) = vision.tokenize(&m.text, &images).map_err(|e| e.0)?;
    let mut prompt = Vec::new();
    let mut n_image = 0;
    for p in &pieces {
        match p {
            Piece::Text(t) => prompt.extend_from_slice(t),
            Piece::Image { n_tokens, .. } => {
                prompt.extend(std::iter::repeat_n(placeholder(n_image), *n_tokens));
                n_image += 1;
            }
        }
    }
    if !matches!(pieces.last(), Some(Piece::Text(t)) if !t.is_empty()) {
        return Err("the prompt must end with text after its last image".into());
    }
    if prompt.len() as i32 >= n_ctx_seq {
        return Err(format!(
            "the prompt with its images ({} tokens) does not fit the {n_ctx_seq}-token context",
            prompt.len()
        ));
    }
    let last = prompt.len() - 1;
    let mut n_past = 0i32;
    let mut fed = 0usize;
    let mut n = 0i32;
    let flush = |n: &mut i32| -> Result<(), String> {
        if *n == 0 {
            return Ok(());
        }
        // SAFETY: the batch holds the `n` tokens `put` wrote, within its `n_batch`.
        let rc = unsafe {
            let mut b = *batch;
            b.n_tokens = *n;
            sys::llama_decode(ctx, b)
        };
        *n = 0;
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("llama_decode failed (code {rc})"))
        }
    };
    for p in &pieces {
        match p {
            Piece::Text(tokens) => {
                for &t in tokens {
                    if fed == last {
                        break;
                    }
                    put(batch, &mut n, t, n_past, seq, false);
                    n_past += 1;
                    fed += 1;
                    if n == n_batch {
                        flush(&mut n)?;
                    }
                }
            }
            Piece::Image { index, n_tokens } => {
                flush(&mut n)?;
                n_past = vision
                    .eval_image(ctx, &chunks, *index, n_past, seq, n_batch, false)
                    .map_err(|e| e.0)?;
                fed += n_tokens;
            }
        }
    }
    flush(&mut n)?;
    Ok(Admitted {
        prompt,
        fed,
        n_past,
    })
}
