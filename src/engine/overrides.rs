//! llama.cpp's tensor buffer overrides for the placements layerfit plans: MoE experts
//! (`--n-cpu-moe`) and dense feed-forward weights (`--n-cpu-ffn`, or `-ot` for a llama.cpp
//! that predates it) of the first blocks kept in CPU memory. The patterns are llama.cpp's own
//! (common/common.h `LLM_FFN_EXPS_REGEX`, `LLM_FFN_DENSE_REGEX`), so the emitted command and
//! `run` place the same tensors.

/// The dense feed-forward tensors (`blk.N.ffn_up.weight` ...), after the block prefix.
const DENSE: &str = "\\.ffn_(up|down|gate)\\.";
/// The MoE expert tensors, after the block prefix.
const EXPERTS: &str = "\\.ffn_(up|down|gate|gate_up)_(ch|)exps";

/// One regex per block, as llama.cpp builds them for `--n-cpu-moe` / `--n-cpu-ffn`.
pub fn per_block_patterns(n_cpu_moe: u32, n_cpu_ffn: u32) -> Vec<String> {
    (0..n_cpu_moe)
        .map(|i| format!("blk\\.{i}{EXPERTS}"))
        .chain((0..n_cpu_ffn).map(|i| format!("blk\\.{i}{DENSE}")))
        .collect()
}

/// The `-ot` value keeping the dense feed-forward weights of the first `n` blocks on the
/// CPU: one pattern with the block numbers as alternatives.
pub fn ffn_override_arg(n: u32) -> String {
    let blocks: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!("blk\\.({}){DENSE}=CPU", blocks.join("|"))
}

/// Reads an `-ot` value written by `ffn_override_arg` back to its block count; `None` for
/// any other override (which layerfit does not plan).
pub fn parse_ffn_override_arg(v: &str) -> Option<u32> {
    let inner = v
        .strip_prefix("blk\\.(")?
        .strip_suffix(&format!("){DENSE}=CPU"))?;
    let blocks: Vec<u32> = inner
        .split('|')
        .map(|b| b.parse().ok())
        .collect::<Option<_>>()?;
    let n = blocks.len() as u32;
    (blocks.iter().copied().eq(0..n) && n > 0).then_some(n)
}

/// The overrides in the form llama.cpp's model parameters take: patterns and a
/// NULL-terminated array pointing at them, both owned here.
pub struct CpuOverrides {
    _patterns: Vec<std::ffi::CString>,
    array: Vec<llama_cpp_sys_2::llama_model_tensor_buft_override>,
}

impl CpuOverrides {
    pub fn new(n_cpu_moe: u32, n_cpu_ffn: u32) -> CpuOverrides {
        use llama_cpp_sys_2 as sys;
        let patterns: Vec<std::ffi::CString> = per_block_patterns(n_cpu_moe, n_cpu_ffn)
            .into_iter()
            .filter_map(|p| std::ffi::CString::new(p).ok())
            .collect();
        let mut array: Vec<sys::llama_model_tensor_buft_override> = patterns
            .iter()
            .map(|p| sys::llama_model_tensor_buft_override {
                pattern: p.as_ptr(),
                // SAFETY: returns a pointer to ggml's static CPU buffer type.
                buft: unsafe { sys::ggml_backend_cpu_buffer_type() },
            })
            .collect();
        array.push(sys::llama_model_tensor_buft_override {
            pattern: std::ptr::null(),
            buft: std::ptr::null_mut(),
        });
        CpuOverrides {
            _patterns: patterns,
            array,
        }
    }

    /// The NULL-terminated array for `llama_model_params::tensor_buft_overrides`; `None`
    /// when there is nothing to override (llama.cpp's default placement).
    pub fn as_ptr(&self) -> Option<*const llama_cpp_sys_2::llama_model_tensor_buft_override> {
        (self.array.len() > 1).then_some(self.array.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_argument_round_trips_and_matches_llama_cpp_names() {
        let a = ffn_override_arg(3);
        assert_eq!(a, "blk\\.(0|1|2)\\.ffn_(up|down|gate)\\.=CPU");
        assert_eq!(parse_ffn_override_arg(&a), Some(3));
        assert_eq!(
            parse_ffn_override_arg("blk\\.(0|2)\\.ffn_(up|down|gate)\\.=CPU"),
            None
        );
        assert_eq!(parse_ffn_override_arg("exps=CPU"), None);
        assert_eq!(per_block_patterns(1, 2).len(), 3);
        assert!(per_block_patterns(0, 1)[0].starts_with("blk\\.0\\.ffn_"));
    }
}
