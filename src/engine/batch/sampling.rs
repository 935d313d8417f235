//! How one request picks its tokens: the sampler chain built from its settings (logit bias,
//! penalties, the grammar that holds a tool call or a JSON schema, top-k/top-p/min-p,
//! temperature, seed), as llama.cpp's `common_sampler_init` (common/sampling.cpp) builds it;
//! and the log-probabilities of a sampled position, as llama-server reports them.

use super::Token;
use crate::engine::session::Session;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_char, CStr, CString};

extern "C" {
    fn layerfit_sampler_sample(
        smpl: *mut sys::llama_sampler,
        ctx: *mut sys::llama_context,
        idx: i32,
        err: *mut c_char,
        err_cap: i32,
    ) -> Token;
    fn layerfit_sampler_accept(
        smpl: *mut sys::llama_sampler,
        token: Token,
        err: *mut c_char,
        err_cap: i32,
    ) -> bool;
}

/// `llama_sampler_sample` through src/engine/sampler_guard.cpp: a sampler that throws (a
/// grammar handed text it cannot take) ends this request with its message, not the process.
pub(super) fn sample(
    smpl: *mut sys::llama_sampler,
    ctx: *mut sys::llama_context,
    idx: i32,
) -> Result<Token, String> {
    let mut err = [0 as c_char; 512];
    // SAFETY: `smpl` and `ctx` are live; output `idx` of the last decode has logits; `err`
    // has the capacity given.
    let t = unsafe { layerfit_sampler_sample(smpl, ctx, idx, err.as_mut_ptr(), 512) };
    // LLAMA_TOKEN_NULL.
    if t == -1 {
        // SAFETY: the shim wrote a NUL-terminated message within `err`.
        let why = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        return Err(format!("sampling failed: {why}"));
    }
    Ok(t)
}

/// A grammar the answer must follow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grammar {
    /// GBNF, root rule `root`.
    pub text: String,
    /// Lazy: it holds only from a trigger on (a tool call's opening), as in llama-server.
    pub lazy: bool,
    /// Regular expressions that trigger a lazy grammar.
    pub patterns: Vec<String>,
    /// Tokens that trigger a lazy grammar.
    pub tokens: Vec<Token>,
    /// Tokens the template already put at the start of the answer (its generation prompt),
    /// fed to a grammar that spells them out (llama.cpp's prefill).
    pub prefill: Vec<Token>,
}

/// One request's sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// 0: greedy.
    pub temperature: f32,
    pub seed: u32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    /// OpenAI's penalties, over the tokens generated so far.
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// Added to a token's logit before sampling.
    pub logit_bias: Vec<(Token, f32)>,
    pub grammar: Option<Grammar>,
    /// Report the sampled token's log-probability and this many alternatives.
    pub logprobs: Option<u32>,
    /// Special tokens whose text is part of the answer (a tool call's tags).
    pub preserved: Vec<Token>,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            temperature: 1.0,
            seed: 42,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
            grammar: None,
            logprobs: None,
            preserved: Vec::new(),
        }
    }
}

/// The sampler chain of `s`, or why it cannot be built (a grammar llama.cpp rejects).
/// Penalties count the answer's tokens only (the chain accepts generated tokens), over
/// the whole sequence (`n_ctx_seq`).
pub(super) fn sampler(
    s: &Sampling,
    session: &Session,
    n_ctx_seq: i32,
) -> Result<*mut sys::llama_sampler, String> {
    let (_, vocab) = session.raw();
    // SAFETY: `vocab` belongs to the session's live model.
    let n_vocab = unsafe { sys::llama_vocab_n_tokens(vocab) };
    let grammar = match &s.grammar {
        Some(g) => Some(grammar(g, vocab)?),
        None => None,
    };
    // SAFETY: each `init` returns a new sampler the chain takes ownership of; the chain is
    // freed once, by `release`. The bias array outlives its `init`, which copies it.
    unsafe {
        let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
        let add = |smpl| sys::llama_sampler_chain_add(chain, smpl);
        if !s.logit_bias.is_empty() {
            let bias: Vec<sys::llama_logit_bias> = s
                .logit_bias
                .iter()
                .map(|&(token, bias)| sys::llama_logit_bias { token, bias })
                .collect();
            add(sys::llama_sampler_init_logit_bias(
                n_vocab,
                bias.len() as i32,
                bias.as_ptr(),
            ));
        }
        if s.presence_penalty != 0.0 || s.frequency_penalty != 0.0 {
            add(sys::llama_sampler_init_penalties(
                n_vocab,
                n_ctx_seq,
                1.0,
                s.frequency_penalty,
                s.presence_penalty,
            ));
        }
        // The grammar masks the candidates before any is picked (llama.cpp's `grammar_first`).
        if let Some(g) = grammar {
            add(g);
        }
        if s.temperature <= 0.0 {
            add(sys::llama_sampler_init_greedy());
        } else {
            add(sys::llama_sampler_init_top_k(s.top_k));
            add(sys::llama_sampler_init_top_p(s.top_p, 1));
            if s.min_p > 0.0 {
                add(sys::llama_sampler_init_min_p(s.min_p, 1));
            }
            add(sys::llama_sampler_init_temp(s.temperature));
            add(sys::llama_sampler_init_dist(s.seed));
        }
        Ok(chain)
    }
}

/// llama.cpp's grammar sampler for `g` (lazy with its triggers), its prefill accepted.
fn grammar(g: &Grammar, vocab: *const sys::llama_vocab) -> Result<*mut sys::llama_sampler, String> {
    let text = CString::new(g.text.as_str()).map_err(|_| "the grammar holds a NUL".to_string())?;
    let root = c"root";
    let patterns: Vec<CString> = g
        .patterns
        .iter()
        .map(|p| CString::new(p.as_str()).unwrap_or_default())
        .collect();
    let mut ptrs: Vec<*const c_char> = patterns.iter().map(|p| p.as_ptr()).collect();
    // SAFETY: every string is NUL-terminated and outlives the call; the arrays hold the
    // counts given; llama.cpp copies what it keeps.
    let smpl = unsafe {
        if g.lazy {
            sys::llama_sampler_init_grammar_lazy_patterns(
                vocab,
                text.as_ptr(),
                root.as_ptr(),
                ptrs.as_mut_ptr(),
                ptrs.len(),
                g.tokens.as_ptr(),
                g.tokens.len(),
            )
        } else {
            sys::llama_sampler_init_grammar(vocab, text.as_ptr(), root.as_ptr())
        }
    };
    if smpl.is_null() {
        return Err("llama.cpp could not parse the grammar".into());
    }
    if !g.lazy {
        for &t in &g.prefill {
            let mut err = [0 as c_char; 512];
            // SAFETY: `smpl` is the live grammar sampler made above; `err` has the capacity
            // given.
            if !unsafe { layerfit_sampler_accept(smpl, t, err.as_mut_ptr(), 512) } {
                // SAFETY: the shim wrote a NUL-terminated message into `err`.
                let why = unsafe { CStr::from_ptr(err.as_ptr()) }
                    .to_string_lossy()
                    .into_owned();
                // SAFETY: `smpl` is the sampler made above, owned here and freed once.
                unsafe { sys::llama_sampler_free(smpl) };
                return Err(format!(
                    "the grammar does not start with the generation prompt: {why}"
                ));
            }
        }
    }
    Ok(smpl)
}

/// The log-probability of one answer token, with the most likely alternatives.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: Vec<u8>,
    pub logprob: f32,
    /// (token text, log-probability), most likely first.
    pub top: Vec<(Vec<u8>, f32)>,
}

/// The log-softmax of the model's raw logits (before any sampler) for `tok`, and the `top`
/// most likely tokens: what llama-server reports as `logprobs` (`probs` without
/// `post_sampling_probs`). Every value is <= 0.
pub(super) fn logprob(
    logits: &[f32],
    tok: Token,
    top: u32,
    text: impl Fn(Token) -> Vec<u8>,
) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_z = max as f64 + sum.ln();
    let lp = |l: f32| (f64::from(l) - log_z).min(0.0) as f32;
    let mut best: Vec<(usize, f32)> = Vec::new();
    if top > 0 {
        let k = (top as usize).min(logits.len());
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        idx.select_nth_unstable_by(k - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
        idx.truncate(k);
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        best = idx.into_iter().map(|i| (i, logits[i])).collect();
    }
    TokenLogprob {
        token: text(tok),
        logprob: logits
            .get(tok as usize)
            .map_or(f32::NEG_INFINITY, |&l| lp(l)),
        top: best
            .into_iter()
            .map(|(i, l)| (text(i as Token), lp(l)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probabilities_are_a_log_softmax_and_the_top_come_first() {
        let logits = [1.0f32, 3.0, 2.0, -1.0];
        let t = logprob(&logits, 2, 2, |t| vec![t as u8]);
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        assert!(
            (f64::from(t.logprob) - (2.0 - z.ln())).abs() < 1e-5,
            "{t:?}"
        );
        assert_eq!(t.top.iter().map(|x| x.0[0]).collect::<Vec<_>>(), vec![1, 2]);
        assert!(t.top.iter().all(|x| x.1 <= 0.0));
        let total: f64 = (0..4)
            .map(|i| f64::from(logprob(&logits, i, 0, |_| vec![]).logprob).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
