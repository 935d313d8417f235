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

/// How an architecture marks its sliding-window layers when the file has no explicit
/// per-layer pattern: `set_swa_pattern(n_pattern, dense_first)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwaRule {
    pub kind: SwaKind,
    /// The default `n_pattern` (a file's `sliding_window_pattern` overrides it).
    pub pattern: u32,
    pub dense_first: bool,
    /// Window used when the file has no `sliding_window` key (`None`: the key is required,
    /// or, for `only_if_window`, SWA is off without it).
    pub default_window: Option<u32>,
    /// SWA is enabled only when the file carries a non-zero `sliding_window` (gemma3).
    pub only_if_window: bool,
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
    /// Hybrid models: a layer is recurrent when its `head_count_kv` is 0 (jamba, lfm2, ...);
    /// otherwise every layer has both (falcon-h1).
    pub recurrent_when_no_kv_heads: bool,
    /// The architecture's rules were checked against llama.cpp's own allocations in tests.
    pub verified: bool,
}

const ATTENTION: ArchRules = ArchRules {
    memory: MemoryKind::Attention,
    swa: None,
    swa_disabled: false,
    kv_from_start: None,
    recurrent_when_no_kv_heads: false,
    verified: false,
};

const fn swa(kind: SwaKind, pattern: u32, default_window: Option<u32>) -> Option<SwaRule> {
    Some(SwaRule {
        kind,
        pattern,
        dense_first: false,
        default_window,
        only_if_window: false,
    })
}

/// The rules for `general.architecture` = `arch`. Unknown architectures get plain full
/// attention on every layer and `verified: false`, which the report says out loud.
pub fn rules_for(arch: &str) -> ArchRules {
    let verified = ArchRules {
        verified: true,
        ..ATTENTION
    };
    match arch {
        "llama" | "qwen2" | "qwen3" | "qwen3moe" | "deepseek2" | "openelm" => verified,
        "phi3" => ArchRules {
            swa_disabled: true,
            ..verified
        },
        "gemma2" => ArchRules {
            swa: swa(SwaKind::Standard, 2, Some(4096)),
            ..verified
        },
        "gemma3" => ArchRules {
            swa: Some(SwaRule {
                kind: SwaKind::Standard,
                pattern: 6,
                dense_first: false,
                default_window: None,
                only_if_window: true,
            }),
            ..verified
        },
        "gemma3n" => ArchRules {
            swa: swa(SwaKind::Standard, 5, None),
            kv_from_start: Some(20),
            ..ATTENTION
        },
        "cohere2" => ArchRules {
            swa: swa(SwaKind::Standard, 4, None),
            ..ATTENTION
        },
        "gpt-oss" => ArchRules {
            swa: swa(SwaKind::Standard, 2, None),
            ..ATTENTION
        },
        "gemma-embedding" | "bert" | "nomic-bert" | "jina-bert-v2" | "modern-bert" | "neo-bert" => {
            ArchRules {
                memory: MemoryKind::None,
                ..ATTENTION
            }
        }
        "mamba" | "mamba2" | "rwkv6" | "rwkv6qwen2" | "rwkv7" | "arwkv7" => ArchRules {
            memory: MemoryKind::Recurrent,
            verified: arch == "mamba",
            ..ATTENTION
        },
        "jamba" | "granitehybrid" | "lfm2" => ArchRules {
            memory: MemoryKind::Hybrid,
            recurrent_when_no_kv_heads: true,
            verified: arch == "jamba",
            ..ATTENTION
        },
        "falcon-h1" => ArchRules {
            memory: MemoryKind::Hybrid,
            ..ATTENTION
        },
        _ => ATTENTION,
    }
}
