//! Where each tensor lies in the file, for the host weights llama.cpp maps: it maps one
//! range per buffer type, from the first host tensor to the end of the last
//! (`llama_model_loader::get_mapping_range`), the device tensors between them included. When
//! the host weights stay in the plain mapped CPU buffer (only RPC devices besides the CPU:
//! they have no host buffer type) or per-tensor overrides interleave host and device
//! tensors, llama.cpp's buffer report counts that whole range, and the pages of the device
//! tensors inside it are read through it while loading.

use crate::bytes::Bytes;
use crate::gguf::TensorInfo;
use crate::memory::weights::{block_of, is_dense_ffn};

/// One tensor's place in the file and what decides whether it stays on the host.
#[derive(Clone, Debug, PartialEq)]
struct Placed {
    start: u64,
    end: u64,
    /// `token_embd`: always on the host.
    embd: bool,
    /// The block it belongs to; `None` for the output layer's tensors.
    block: Option<usize>,
    /// An expert tensor (`--n-cpu-moe`) or a dense feed-forward one (`--n-cpu-ffn`).
    experts: bool,
    dense_ffn: bool,
}

/// The file's tensors, for the mapped host range of a placement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MappedFile {
    tensors: Vec<Placed>,
    n_layer: usize,
}

impl MappedFile {
    pub fn new<'a>(tensors: impl IntoIterator<Item = &'a TensorInfo>, n_layer: u32) -> Self {
        let n_layer = n_layer as usize;
        let tensors = tensors
            .into_iter()
            .map(|t| Placed {
                start: t.offset,
                end: t.offset.saturating_add(t.n_bytes().get()),
                embd: t.name.starts_with("token_embd"),
                block: block_of(&t.name).filter(|&b| b < n_layer),
                experts: t.name.contains("_exps"),
                dense_ffn: is_dense_ffn(&t.name),
            })
            .collect();
        MappedFile { tensors, n_layer }
    }

    /// The file range llama.cpp maps for the host weights at `-ngl ngl` with the experts
    /// (`--n-cpu-moe`) or dense feed-forward weights (`--n-cpu-ffn`) of the first blocks on
    /// the host: from the first host tensor to the end of the last.
    pub fn host_span(&self, ngl: u32, cpu_moe: u32, cpu_ffn: u32) -> Bytes {
        let start = (self.n_layer + 1).saturating_sub(ngl as usize);
        let host = |t: &Placed| match t.block {
            _ if t.embd => true,
            Some(il) => {
                il < start
                    || (il < cpu_moe as usize && t.experts)
                    || (il < cpu_ffn as usize && t.dense_ffn)
            }
            None => ngl == 0,
        };
        let (mut first, mut last) = (u64::MAX, 0u64);
        for t in self.tensors.iter().filter(|t| host(t)) {
            first = first.min(t.start);
            last = last.max(t.end);
        }
        Bytes(last.saturating_sub(first.min(last)))
    }
}
