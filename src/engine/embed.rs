//! Embeddings on llama.cpp's embedding context (`llama_context_params.embeddings`), as
//! llama-server computes them for `/v1/embeddings`: inputs decoded together, one sequence id
//! each, as many as the context has sequences and one batch holds; the pooled vector of each
//! read with `llama_get_embeddings_seq` and L2-normalised (`common_embd_normalize`, norm 2).
//! Inputs share a decode only when they have as many tokens (see `embed`).
//! Runs on the engine thread of `serve` in embedding mode.

use super::batch::{put, EngineStats, Token};
use super::session::Session;
use llama_cpp_sys_2 as sys;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

/// How a sequence's token vectors become one vector (llama.cpp's `llama_pooling_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// No pooling: a vector per token (not an OpenAI embedding; `serve` refuses it).
    None,
    Mean,
    /// The first token's vector.
    Cls,
    /// The last token's vector.
    Last,
    /// A reranker's classification head: scores, not embeddings (`serve` refuses it).
    Rank,
}

impl Pooling {
    /// The names llama.cpp's `--pooling` takes.
    pub const NAMES: [&'static str; 5] = ["none", "mean", "cls", "last", "rank"];

    pub fn parse(name: &str) -> Option<Pooling> {
        Some(match name {
            "none" => Pooling::None,
            "mean" => Pooling::Mean,
            "cls" => Pooling::Cls,
            "last" => Pooling::Last,
            "rank" => Pooling::Rank,
            _ => return None,
        })
    }

    /// A GGUF's `{arch}.pooling_type` (the enum's values); `None` for a value llama.cpp
    /// does not define.
    pub fn from_gguf(v: u32) -> Option<Pooling> {
        Pooling::NAMES
            .get(v as usize)
            .and_then(|n| Pooling::parse(n))
    }

    pub fn name(self) -> &'static str {
        Pooling::NAMES[self.raw() as usize]
    }

    /// The `llama_pooling_type` value.
    pub fn raw(self) -> sys::llama_pooling_type {
        match self {
            Pooling::None => sys::LLAMA_POOLING_TYPE_NONE,
            Pooling::Mean => sys::LLAMA_POOLING_TYPE_MEAN,
            Pooling::Cls => sys::LLAMA_POOLING_TYPE_CLS,
            Pooling::Last => sys::LLAMA_POOLING_TYPE_LAST,
            Pooling::Rank => sys::LLAMA_POOLING_TYPE_RANK,
        }
    }
}

/// One `/v1/embeddings` request for the engine: its inputs, tokenized and checked (each
/// non-empty and at most a batch), and where the vectors go.
pub struct EmbedJob {
    pub inputs: Vec<Vec<Token>>,
    pub reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
}

/// Serves embedding jobs until the channel closes, one at a time (each is decoded in as
/// few batches as its inputs allow).
pub fn run(session: &Session, n_seq: u32, jobs: Receiver<EmbedJob>, stats: &EngineStats) {
    for job in jobs {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let n: usize = job.inputs.iter().map(Vec::len).sum();
        stats.prompt_tokens.fetch_add(n as u64, Ordering::Relaxed);
        stats.active.store(1, Ordering::Relaxed);
        let vectors = embed(session, n_seq, &job.inputs);
        stats.active.store(0, Ordering::Relaxed);
        let _ = job.reply.send(vectors);
    }
}

/// A `llama_batch` of `n` tokens with one sequence id each, freed when dropped.
struct Batch(sys::llama_batch);

impl Batch {
    fn new(n: i32) -> Batch {
        // SAFETY: allocates token, position, sequence-id and output arrays for `n` tokens.
        Batch(unsafe { sys::llama_batch_init(n, 0, 1) })
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: the batch was allocated in `new` and is freed once, here.
        unsafe { sys::llama_batch_free(self.0) };
    }
}

/// The L2-normalised pooled vector of every input, in order. `session` must have been loaded
/// in embedding mode with a pooling other than none or rank; each input must be non-empty
/// and hold at most `session.n_batch()` tokens (an input longer than a batch is refused:
/// llama.cpp pools a sequence within one ubatch).
pub fn embed(
    session: &Session,
    n_seq: u32,
    inputs: &[Vec<Token>],
) -> Result<Vec<Vec<f32>>, String> {
    let (ctx, _) = session.raw();
    let n_batch = session.n_batch().max(1) as usize;
    let width = session.n_embd_out() as usize;
    let n_seq = n_seq.max(1) as usize;
    if let Some((i, t)) = inputs
        .iter()
        .enumerate()
        .find(|(_, t)| t.is_empty() || t.len() > n_batch)
    {
        return Err(format!(
            "input {i} has {} tokens: from 1 to {n_batch} fit a batch",
            t.len()
        ));
    }
    let batch = Batch::new(n_batch as i32);
    // SAFETY: `ctx` is the session's live context; its memory (null for a model without
    // a cache) lives as long.
    let mem = unsafe { sys::llama_get_memory(ctx) };
    // Only inputs of one length share a decode: with several sequences (a cache stream
    // each) llama.cpp splits a batch into ubatches of equally many tokens per sequence
    // (`split_equal`) and pools a sequence within one ubatch, so inputs of different lengths
    // in one batch would be pooled over a part of their tokens.
    let mut order: Vec<usize> = (0..inputs.len()).collect();
    order.sort_by_key(|&i| inputs[i].len());
    let mut out = vec![Vec::new(); inputs.len()];
    let mut next = 0;
    while next < order.len() {
        let len = inputs[order[next]].len();
        let mut group = Vec::new();
        while next < order.len()
            && inputs[order[next]].len() == len
            && group.len() < n_seq
            && (group.len() + 1) * len <= n_batch
        {
            group.push(order[next]);
            next += 1;
        }
        let mut n = 0i32;
        for (seq, &i) in group.iter().enumerate() {
            for (pos, &tok) in inputs[i].iter().enumerate() {
                put(&batch.0, &mut n, tok, pos as i32, seq as i32, true);
            }
        }
        if !mem.is_null() {
            // SAFETY: `mem` is the live context's memory; no other thread decodes.
            unsafe { sys::llama_memory_clear(mem, true) };
        }
        let mut b = batch.0;
        b.n_tokens = n;
        // SAFETY: the batch holds `n` tokens written by `put`, within its allocation.
        let rc = unsafe { sys::llama_decode(ctx, b) };
        if rc != 0 {
            return Err(format!("llama_decode failed (code {rc})"));
        }
        for (seq, &i) in group.iter().enumerate() {
            // SAFETY: sequence `seq` was pooled by the decode above; llama.cpp returns null
            // or a row of `n_embd_out` floats that lives until the next decode.
            let row = unsafe { sys::llama_get_embeddings_seq(ctx, seq as i32) };
            if row.is_null() {
                return Err(format!("llama.cpp pooled no vector for sequence {seq}"));
            }
            // SAFETY: see above: `row` points at `width` floats.
            let v = unsafe { std::slice::from_raw_parts(row, width) };
            out[i] = normalized(v);
        }
    }
    if !mem.is_null() {
        // SAFETY: as above.
        unsafe { sys::llama_memory_clear(mem, true) };
    }
    Ok(out)
}

/// `v` scaled to unit Euclidean length (`common_embd_normalize` with norm 2; a zero vector
/// stays zero).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let sum = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    let k = if sum > 0.0 { 1.0 / sum } else { 0.0 };
    v.iter().map(|&x| (x as f64 * k) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_out_unit_length() {
        let v = normalized(&[3.0, 4.0]);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn pooling_names_follow_llama_cpp() {
        for (i, name) in Pooling::NAMES.iter().enumerate() {
            let p = Pooling::parse(name).unwrap();
            assert_eq!(p.name(), *name);
            assert_eq!(p.raw() as usize, i);
            assert_eq!(Pooling::from_gguf(i as u32), Some(p));
        }
        assert_eq!(Pooling::from_gguf(7), None);
        assert_eq!(Pooling::parse("max"), None);
    }
}
