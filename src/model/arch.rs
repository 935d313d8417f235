//! Per-architecture rules that the GGUF metadata leaves implicit, copied from the vendored
//! llama.cpp (`src/models/<arch>.cpp`, `load_arch_hparams`; `llama_model::create_memory` in
//! `src/llama-model.cpp`; `llm_arch_is_recurrent`/`llm_arch_is_hybrid` in `src/llama-arch.cpp`).

/// Which memory module llama.cpp builds for the architecture (`create_memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryKind {
    /// Encoders and embedding models: no KV cache at all.
    None,
    /// `llama_kv_cache` (or `llama_kv_cache_iswa` when some layers use a sliding window).
    Attention,
    /// `llama_memory_recurrent`: a fixed-size state per sequence, independent of context.
    Recurrent,
    /// `llama_memory_hybrid`: attention layers get a KV cache, recurrent layers a state.
    Hybrid,
}

/// Sliding-window flavour (`llama_swa_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwaKind {
    None,
    Standard,
    Chunked,
    Symmetric,
}

/// Where a sliding window's size comes from, and whether the file can switch it off
/// (each architecture's `load_arch_hparams`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// `sliding_window` is required.
    Required,
    /// `sliding_window`, or this size without it (gemma2).
    Default(u32),
    /// SWA is on only when the file carries a non-zero `sliding_window` (gemma3, olmo2).
    IfPresent,
    /// Always this size, whatever the file says (exaone-moe).
    Fixed(u32),
    /// On when the file carries a non-zero `sliding_window`, at this size (smallthinker).
    FixedIfPresent(u32),
    /// On at this size unless the file sets `sliding_window` to 0 (llama4's chunks).
    FixedUnlessZero(u32),
}

/// How an architecture marks its sliding-window layers when the file has no explicit
/// per-layer pattern: `set_swa_pattern(n_pattern, dense_first)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwaRule {
    pub kind: SwaKind,
    /// The default `n_pattern` (a file's `sliding_window_pattern` overrides it).
    pub pattern: u32,
    pub dense_first: bool,
    pub window: Window,
    /// Every attention layer of a hybrid slides (lfm2), instead of a pattern.
    pub attention_layers: bool,
}

/// How a hybrid architecture marks its recurrent layers (`hparams.is_recr_impl`) and which
/// layers `create_memory`'s filters give a KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recurrence {
    /// Every layer of a recurrent architecture; none of an attention one.
    ByMemory,
    /// Every layer has both a KV cache and a recurrent state (falcon-h1).
    Both,
    /// A layer is recurrent when its `head_count_kv` is 0 (jamba, lfm2, granitehybrid, the
    /// KDA models, ...); the others attend.
    NoKvHeads,
    /// nemotron-h: recurrent when it has neither KV heads nor a feed-forward; a layer with a
    /// feed-forward is a plain MLP block (no cache at all); only main-trunk layers count.
    NoKvHeadsNoFfn,
    /// `attention.recurrent_layers` (one bool a layer) when the file has it, otherwise every
    /// `full_attention_interval`-th layer attends and the rest are recurrent (default period
    /// given); multi-token-prediction layers are neither (qwen3next, qwen35, minimax-01).
    Interval(u32),
}

/// What layerfit knows about an architecture beyond its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchRules {
    pub memory: MemoryKind,
    pub swa: Option<SwaRule>,
    /// llama.cpp ignores the file's sliding window for this architecture (phi3).
    pub swa_disabled: bool,
    /// Layers from this index on reuse an earlier layer's KV (`n_layer_kv_from_start`).
    pub kv_from_start: Option<u32>,
    /// Which layers of a hybrid model are recurrent (`is_recr_impl` in `load_arch_hparams`).
    pub recurrence: Recurrence,
    /// The architecture's rules were checked against llama.cpp's own allocations in tests.
    pub verified: bool,
}

const ATTENTION: ArchRules = ArchRules {
    memory: MemoryKind::Attention,
    swa: None,
    swa_disabled: false,
    kv_from_start: None,
    recurrence: Recurrence::ByMemory,
    verified: false,
};

const fn swa(kind: SwaKind, pattern: u32, window: Window) -> Option<SwaRule> {
    Some(SwaRule {
        kind,
        pattern,
        dense_first: false,
        window,
        attention_layers: false,
    })
}

const fn swa_dense_first(pattern: u32, window: Window) -> Option<SwaRule> {
    Some(SwaRule {
        kind: SwaKind::Standard,
        pattern,
        dense_first: true,
        window,
        attention_layers: false,
    })
}

const fn with_swa(rule: Option<SwaRule>) -> ArchRules {
    ArchRules {
        swa: rule,
        ..ATTENTION
    }
}

/// The architectures docs/architectures.md marks exact: the architecture sweep
/// (tests/arch_sweep.rs) found weights, KV cache, recurrent state and output buffer equal to
/// llama.cpp's allocation and compute within 5% (or 4 MiB on its small synthetic graphs).
const VERIFIED: &[&str] = include!(concat!(env!("OUT_DIR"), "/verified_archs.rs"));

/// The rules for `general.architecture` = `arch`. Unknown architectures get plain full
/// attention on every layer and `verified: false`, which the report says out loud.
pub fn rules_for(arch: &str) -> ArchRules {
    ArchRules {
        verified: VERIFIED.contains(&arch),
        ..memory_rules(arch)
    }
}

fn memory_rules(arch: &str) -> ArchRules {
    use SwaKind::{Chunked, Standard};
    use Window::*;
    match arch {
        "phi3" => ArchRules {
            swa_disabled: true,
            ..ATTENTION
        },
        "gemma2" => with_swa(swa(Standard, 2, Default(4096))),
        "gemma3" => with_swa(swa(Standard, 6, IfPresent)),
        "gemma3n" => ArchRules {
            kv_from_start: Some(20),
            ..with_swa(swa(Standard, 5, Required))
        },
        "cohere2" | "muse-glimmer" => with_swa(swa(Standard, 4, Required)),
        "gpt-oss" => with_swa(swa(Standard, 2, Required)),
        "llama4" => with_swa(swa(Chunked, 4, FixedUnlessZero(8192))),
        "afmoe" | "mellum" | "olmo2" => with_swa(swa(Standard, 4, IfPresent)),
        "plamo3" => with_swa(swa(Standard, 8, IfPresent)),
        "cohere2moe" => with_swa(swa_dense_first(4, Required)),
        "laguna" => with_swa(swa_dense_first(4, IfPresent)),
        "smallthinker" => with_swa(swa_dense_first(4, FixedIfPresent(4096))),
        "exaone-moe" => with_swa(swa(Standard, 4, Fixed(128))),
        // The per-layer pattern array is required: no default period.
        "granite_swa" | "maple" | "mimo2" | "spark2_5" | "step35" => {
            with_swa(swa(Standard, 1, Required))
        }
        _ if NO_MEMORY.contains(&arch) => ArchRules {
            memory: MemoryKind::None,
            ..ATTENTION
        },
        _ if RECURRENT.contains(&arch) => ArchRules {
            memory: MemoryKind::Recurrent,
            ..ATTENTION
        },
        "falcon-h1" => hybrid(Recurrence::Both),
        "nemotron_h" | "nemotron_h_moe" => hybrid(Recurrence::NoKvHeadsNoFfn),
        "qwen3next" | "qwen35" | "qwen35moe" | "qwen4exp" => hybrid(Recurrence::Interval(4)),
        "minimax-01" => hybrid(Recurrence::Interval(8)),
        "lfm2" => ArchRules {
            swa: Some(SwaRule {
                kind: Standard,
                pattern: 1,
                dense_first: false,
                window: IfPresent,
                attention_layers: true,
            }),
            ..hybrid(Recurrence::NoKvHeads)
        },
        _ if HYBRID.contains(&arch) => hybrid(Recurrence::NoKvHeads),
        _ => ATTENTION,
    }
}

/// Architectures whose loader creates the tied copy of a tensor before the tensor itself
/// (`create_tensor(..., TENSOR_DUPLICATED)` first), so llama.cpp allocates both when the file
/// ties them: `(the tensor the file lacks, the tensor it is copied from)`. Found by comparing
/// the creation order in every `src/models/*.cpp`; the architecture sweep checks the bytes.
pub fn tied_copy(arch: &str) -> Option<(&'static str, &'static str)> {
    match arch {
        "gemma3n" | "gemma4" => Some(("output.weight", "token_embd.weight")),
        "codeshell" => Some(("token_embd.weight", "output.weight")),
        _ => None,
    }
}

const fn hybrid(recurrence: Recurrence) -> ArchRules {
    ArchRules {
        memory: MemoryKind::Hybrid,
        recurrence,
        ..ATTENTION
    }
}

/// `llama_model::create_memory`'s first case: no memory module at all (encoders, diffusion
/// models, the audio decoder).
const NO_MEMORY: &[&str] = &[
    "bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "eurobert",
    "wavtokenizer-dec",
    "modern-bert",
    "gemma-embedding",
    "dream",
    "llada",
    "llada-moe",
    "rnd1",
    "clef",
];

/// `llm_arch_is_recurrent`.
const RECURRENT: &[&str] = &["mamba", "mamba2", "rwkv6", "rwkv6qwen2", "rwkv7", "arwkv7"];

/// `llm_arch_is_hybrid`.
const HYBRID: &[&str] = &[
    "jamba",
    "falcon-h1",
    "plamo2",
    "granitehybrid",
    "lfm2",
    "lfm2moe",
    "nemotron_h",
    "nemotron_h_moe",
    "qwen3next",
    "kimi-linear",
    "bailingmoe3",
    "kimi-k3",
    "glm5-next",
    "qwen35",
    "qwen35moe",
    "qwen4exp",
    "deepseek4",
    "minimax-01",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hybrid_and_recurrent_name_gets_its_memory_kind() {
        for a in HYBRID {
            assert_eq!(rules_for(a).memory, MemoryKind::Hybrid, "{a}");
        }
        for a in RECURRENT {
            assert_eq!(rules_for(a).memory, MemoryKind::Recurrent, "{a}");
        }
        for a in NO_MEMORY {
            assert_eq!(rules_for(a).memory, MemoryKind::None, "{a}");
        }
        assert_eq!(rules_for("qwen35").recurrence, Recurrence::Interval(4));
        assert_eq!(rules_for("llama").memory, MemoryKind::Attention);
        // docs/architectures.md, written by the sweep, is where `verified` comes from.
        assert!(rules_for("llama").verified);
        assert!(!rules_for("no-such-architecture").verified);
    }
}
