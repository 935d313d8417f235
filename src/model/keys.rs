//! Every GGUF metadata key layerfit reads, in one table (names from `src/llama-arch.cpp`,
//! `LLM_KV_NAMES`). Architecture keys are templates: `{arch}` is `general.architecture`.

pub const ARCHITECTURE: &str = "general.architecture";
pub const NAME: &str = "general.name";
pub const FILE_TYPE: &str = "general.file_type";
pub const TOKENIZER_TOKENS: &str = "tokenizer.ggml.tokens";
pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
pub const CHAT_TEMPLATE: &str = "tokenizer.chat_template";

pub const VOCAB_SIZE: &str = "{arch}.vocab_size";
pub const CONTEXT_LENGTH: &str = "{arch}.context_length";
pub const EMBEDDING_LENGTH: &str = "{arch}.embedding_length";
pub const BLOCK_COUNT: &str = "{arch}.block_count";
pub const NEXTN_PREDICT_LAYERS: &str = "{arch}.nextn_predict_layers";
pub const FEED_FORWARD_LENGTH: &str = "{arch}.feed_forward_length";
pub const EXPERT_FEED_FORWARD_LENGTH: &str = "{arch}.expert_feed_forward_length";
pub const EXPERT_COUNT: &str = "{arch}.expert_count";
pub const EXPERT_USED_COUNT: &str = "{arch}.expert_used_count";
pub const HEAD_COUNT: &str = "{arch}.attention.head_count";
pub const HEAD_COUNT_KV: &str = "{arch}.attention.head_count_kv";
pub const KEY_LENGTH: &str = "{arch}.attention.key_length";
pub const VALUE_LENGTH: &str = "{arch}.attention.value_length";
pub const KEY_LENGTH_SWA: &str = "{arch}.attention.key_length_swa";
pub const VALUE_LENGTH_SWA: &str = "{arch}.attention.value_length_swa";
pub const KEY_LENGTH_MLA: &str = "{arch}.attention.key_length_mla";
pub const VALUE_LENGTH_MLA: &str = "{arch}.attention.value_length_mla";
pub const KV_LORA_RANK: &str = "{arch}.attention.kv_lora_rank";
pub const SLIDING_WINDOW: &str = "{arch}.attention.sliding_window";
pub const SLIDING_WINDOW_PATTERN: &str = "{arch}.attention.sliding_window_pattern";
pub const SSM_CONV_KERNEL: &str = "{arch}.ssm.conv_kernel";
pub const SSM_INNER_SIZE: &str = "{arch}.ssm.inner_size";
pub const SSM_STATE_SIZE: &str = "{arch}.ssm.state_size";
pub const SSM_GROUP_COUNT: &str = "{arch}.ssm.group_count";
pub const WKV_HEAD_SIZE: &str = "{arch}.wkv.head_size";
pub const TOKEN_SHIFT_COUNT: &str = "{arch}.token_shift_count";
pub const SHORTCONV_L_CACHE: &str = "{arch}.shortconv.l_cache";
pub const KDA_HEAD_DIM: &str = "{arch}.kda.head_dim";
pub const RECURRENT_LAYERS: &str = "{arch}.attention.recurrent_layers";
pub const FULL_ATTENTION_INTERVAL: &str = "{arch}.full_attention_interval";
pub const CAUSAL: &str = "{arch}.attention.causal";
/// How an embedding model pools its tokens (llama.cpp's `llama_pooling_type`).
pub const POOLING_TYPE: &str = "{arch}.pooling_type";
/// The width of the output embeddings where it differs from `embedding_length`.
pub const EMBEDDING_LENGTH_OUT: &str = "{arch}.embedding_length_out";
/// YaRN's original context; llama.cpp takes the training context when it is absent.
pub const ROPE_SCALING_ORIG_CTX_LEN: &str = "{arch}.rope.scaling.original_context_length";

/// Expands a key template for an architecture.
pub fn arch_key(template: &str, arch: &str) -> String {
    template.replace("{arch}", arch)
}
