//! Timing llama.cpp's greedy sampler over a step's logits, as a decode step pays it after
//! the graph (the speed model's cost per vocabulary entry).

use super::ggml_bench::median_seconds;
use super::measure::init_backend;
use llama_cpp_sys_2 as sys;
use std::time::Duration;

/// Seconds a decode step spends after the graph on `n_vocab` logits: the copy out of the
/// output tensor and llama.cpp's greedy sampler over all of them, as `llama_sampler_sample`
/// fills a sampler chain's candidate array (median of runs within `budget`).
pub fn greedy_sampling(n_vocab: usize, budget: Duration) -> Option<f64> {
    init_backend();
    let logits: Vec<f32> = (0..n_vocab)
        .map(|i| ((i * 7919) % 1000) as f32 * 0.001)
        .collect();
    let mut copied = vec![0f32; n_vocab];
    let mut cur: Vec<sys::llama_token_data> = Vec::with_capacity(n_vocab);
    // SAFETY: makes a new greedy sampler, or null; a non-null one is owned here and freed
    // once, below.
    let smpl = unsafe { sys::llama_sampler_init_greedy() };
    if smpl.is_null() {
        return None;
    }
    let seconds = median_seconds(budget, || {
        copied.copy_from_slice(&logits);
        cur.clear();
        cur.extend(
            copied
                .iter()
                .enumerate()
                .map(|(i, &logit)| sys::llama_token_data {
                    id: i as i32,
                    logit,
                    p: 0.0,
                }),
        );
        let mut arr = sys::llama_token_data_array {
            data: cur.as_mut_ptr(),
            size: cur.len(),
            selected: -1,
            sorted: false,
        };
        // SAFETY: `smpl` is live; `arr` points at `cur`'s `size` entries, which outlive the
        // call; the greedy sampler reads them and writes only `arr.selected`.
        unsafe { sys::llama_sampler_apply(smpl, &mut arr) };
        std::hint::black_box(arr.selected);
        true
    });
    // SAFETY: `smpl` is live and freed once, here, after its last use.
    unsafe { sys::llama_sampler_free(smpl) };
    seconds
}
