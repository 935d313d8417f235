//! A loaded vision projector: llama.cpp's multimodal context (`mtmd_context`) beside a text
//! model, turning images into the model's input as llama-server and `llama-mtmd-cli` do.

use super::measure::{capture, init_backend, EngineError};
use crate::bytes::Bytes;
use llama_cpp_sys_2 as sys;
use std::ffi::{CStr, CString};
use std::path::Path;

/// The projector, loaded for one text model.
pub struct Vision {
    ctx: *mut sys::mtmd_context,
    /// What llama.cpp's loader said it allocated: weights and compute buffers.
    pub loaded: Loaded,
}

/// The projector's buffers as llama.cpp's loader logs them (`clip.cpp`: "model size" and
/// each back-end's "compute buffer size", in MiB with two decimals).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    pub weights: Bytes,
    pub compute: Bytes,
}

/// One decoded image, ready to be tokenized with a prompt.
pub struct Image {
    bitmap: *mut sys::mtmd_bitmap,
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the bitmap was created by `Vision::image` and is freed once, here.
        unsafe { sys::mtmd_bitmap_free(self.bitmap) };
    }
}

impl Vision {
    /// Loads the projector at `path` for `model` (the text model's handle, alive as long as
    /// this context): on the first GPU when `offload`, else on the CPU.
    pub(crate) fn load(
        path: &Path,
        model: *const sys::llama_model,
        offload: bool,
        threads: i32,
    ) -> Result<Vision, EngineError> {
        init_backend();
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| EngineError("the projector path contains a NUL byte".into()))?;
        let log = capture();
        // SAFETY: `c_path` outlives the call; `model` is a live model (the caller's
        // contract); the returned context is freed once, in `Drop`.
        let ctx = unsafe {
            let mut p = sys::mtmd_context_params_default();
            p.use_gpu = offload;
            p.print_timings = false;
            p.n_threads = threads;
            sys::mtmd_init_from_file(c_path.as_ptr(), model, p)
        };
        let lines = log.finish();
        if ctx.is_null() {
            let why: Vec<&str> = lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| l.contains("error") || l.contains("mismatch") || l.contains("failed"))
                .collect();
            return Err(EngineError(format!(
                "{}: llama.cpp could not load the projector{}",
                path.display(),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", why.join(" | "))
                }
            )));
        }
        Ok(Vision {
            ctx,
            loaded: parse_loaded(&lines),
        })
    }

    pub(crate) fn raw(&self) -> *mut sys::mtmd_context {
        self.ctx
    }

    /// The text that stands for an image in a prompt (`<__media__>`).
    pub fn marker() -> String {
        // SAFETY: returns a pointer to a static NUL-terminated string.
        unsafe { CStr::from_ptr(sys::mtmd_default_marker()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Decodes an image file's bytes (PNG, JPEG, BMP, GIF: what stb_image reads).
    pub fn image(&self, bytes: &[u8]) -> Result<Image, EngineError> {
        // SAFETY: `bytes` outlives the call, which copies what it decodes; a null bitmap
        // is checked before use.
        let w = unsafe {
            sys::mtmd_helper_bitmap_init_from_buf(
                self.ctx,
                bytes.as_ptr(),
                bytes.len(),
                false,
                sys::mtmd_helper_init_opt_default(),
            )
        };
        if w.bitmap.is_null() {
            return Err(EngineError(
                "the image could not be decoded (llama.cpp reads PNG, JPEG, BMP and GIF)".into(),
            ));
        }
        Ok(Image { bitmap: w.bitmap })
    }
}

impl Image {
    pub(crate) fn raw(&self) -> *const sys::mtmd_bitmap {
        self.bitmap
    }
}

impl Drop for Vision {
    fn drop(&mut self) {
        // SAFETY: the context was created in `load` and is freed once, here.
        unsafe { sys::mtmd_free(self.ctx) };
    }
}

/// Sums the loader's "model size: X MiB" and "compute buffer size = X MiB" lines.
fn parse_loaded(lines: &[String]) -> Loaded {
    let mib = |l: &str, key: &str| -> Option<f64> {
        let rest = &l[l.find(key)? + key.len()..];
        rest.trim_start_matches([' ', ':', '='])
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut out = Loaded::default();
    for l in lines {
        if let Some(m) = mib(l, "model size") {
            out.weights += Bytes((m * 1048576.0).round() as u64);
        } else if let Some(m) = mib(l, "compute buffer size") {
            out.compute += Bytes((m * 1048576.0).round() as u64);
        }
    }
    out
}

/// One piece of a tokenized prompt.
pub(crate) enum Piece {
    Text(Vec<sys::llama_token>),
    /// An image: its chunk's index and how many tokens it takes.
    Image {
        index: usize,
        n_tokens: usize,
    },
}

/// The chunk list of one prompt, freed once.
pub(crate) struct Chunks(*mut sys::mtmd_input_chunks);

impl Drop for Chunks {
    fn drop(&mut self) {
        // SAFETY: created by `mtmd_input_chunks_init` and freed once, here.
        unsafe { sys::mtmd_input_chunks_free(self.0) };
    }
}

/// Tokens that stand for image `n` in the cache's record: negative, so no text token ever
/// matches one, and the same for the same image at the same place in the next turn.
pub(crate) fn placeholder(n: usize) -> sys::llama_token {
    -2 - n as sys::llama_token
}

impl Vision {
    /// Splits `text` at its image markers into text tokens and image chunks.
    pub(crate) fn tokenize(
        &self,
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
                self.raw(),
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

    /// Encodes image chunk `index` of `chunks` and decodes its embeddings into sequence `seq`
    /// of `ctx` from position `pos`; returns the position after it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn eval_image(
        &self,
        ctx: *mut sys::llama_context,
        chunks: &Chunks,
        index: usize,
        pos: i32,
        seq: i32,
        n_batch: i32,
        logits_last: bool,
    ) -> Result<i32, EngineError> {
        let mut new_pos: sys::llama_pos = 0;
        // SAFETY: the chunk belongs to `chunks`, alive for the call; `ctx` is a live context of
        // the model this projector was loaded for; `new_pos` is writable.
        let rc = unsafe {
            let chunk = sys::mtmd_input_chunks_get(chunks.0, index);
            sys::mtmd_helper_eval_chunk_single(
                self.ctx,
                ctx,
                chunk,
                pos,
                seq,
                n_batch,
                logits_last,
                &mut new_pos,
            )
        };
        if rc != 0 {
            return Err(EngineError(format!(
                "llama.cpp could not encode the image (code {rc})"
            )));
        }
        Ok(new_pos)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn serve_marks_images_as_llama_cpp_does() {
        assert_eq!(super::Vision::marker(), crate::serve::request::IMAGE_MARKER);
    }

    #[test]
    fn reads_the_loaders_lines() {
        let lines = [
            "load_hparams: model size:         812.28 MiB\n".to_string(),
            "alloc_compute_meta:        CPU compute buffer size =    23.50 MiB\n".to_string(),
        ];
        let l = super::parse_loaded(&lines);
        assert_eq!(l.weights.get(), (812.28f64 * 1048576.0).round() as u64);
        assert_eq!(l.compute.get(), 23 * 1048576 + 524288);
    }
}
