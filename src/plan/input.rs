//! What the planner needs about a model, as plain data, built from its tensor list.

use super::mapped::MappedFile;
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::gguf::TensorInfo;
use crate::memory::weights::{block_of, is_loaded};
use crate::memory::Weights;
use crate::model::Shape;
use crate::speed::ffn_activation::FfnActivation;

/// Weight types llama.cpp repacks into anonymous `CPU_REPACK` buffers on x86 with AVX2
/// (`ggml/src/ggml-cpu/repack.cpp`); measured on Gemma 3 270M: exactly its q4_K tensors.
const REPACKED: &[GgmlType] = &[GgmlType::Q4_0, GgmlType::Q4K, GgmlType::Iq4Nl];

/// Everything the planner needs about a model, as plain data.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub shape: Shape,
    pub weights: Weights,
    /// No `output.weight`: the output reuses the embeddings (a copy on an offloaded output).
    pub tied_output: bool,
    /// Bytes per block that the CPU backend repacks (anonymous memory when on the CPU).
    pub repacked_per_block: Vec<Bytes>,
    pub repacked_output: Bytes,
    pub cpu_repacks: bool,
    /// The largest tensor of each block: under offload llama.cpp copies host-resident weights
    /// into the GPU's compute buffer one at a time, so the largest sets that buffer's share.
    pub largest_tensor_per_block: Vec<Bytes>,
    /// `output.weight` alone (zero when tied): the output layer's other tensors (its norm)
    /// follow `-ngl` even when the projection is too large for the device.
    pub output_projection: Bytes,
    /// The file's quantization (`q4_k_m`, from `general.file_type` or the catalog variant),
    /// for the quality loss; `None`: judged by bits per weight.
    pub quant: Option<String>,
    /// Matrix weights of the blocks by type, summed over all blocks (the speed model's
    /// kernels run per type).
    pub block_types: Vec<(GgmlType, Bytes)>,
    /// The output projection's type (the embeddings' when tied): read whole every step.
    pub output_type: GgmlType,
    /// Row length (elements) of the block matrices, weighted by bytes, and of the output
    /// projection: the speed of a matrix x vector product depends on it.
    pub block_row_elements: f64,
    pub output_row_elements: f64,
    /// Feed-forward values one token activates, summed over the blocks (the up
    /// projections' outputs; of experts, the used ones), and the function that gates them:
    /// the speed model charges each its measured cost.
    pub ffn_elements: f64,
    pub ffn_activation: FfnActivation,
    /// Where each tensor lies in the file: the host range llama.cpp maps.
    pub mapped: MappedFile,
    /// The file on this machine (absolute path, bytes), for the speeds measured running it;
    /// `None` for a file not here.
    pub file: Option<(String, u64)>,
}

impl PlanInput {
    pub fn new<'a>(
        shape: Shape,
        weights: Weights,
        tensors: impl IntoIterator<Item = &'a TensorInfo>,
        cpu_simd: &[String],
    ) -> PlanInput {
        let n = shape.block_count as usize;
        let mut repacked_per_block = vec![Bytes::ZERO; n];
        let mut repacked_output = Bytes::ZERO;
        let mut tied_output = true;
        let mut largest_tensor_per_block = vec![Bytes::ZERO; n];
        let mut output_projection = Bytes::ZERO;
        let mut block_types: Vec<(GgmlType, Bytes)> = Vec::new();
        let (mut output_type, mut embd_type) = (None, GgmlType::F16);
        let (mut row_weighted, mut row_bytes) = (0.0f64, 0.0f64);
        let n_embd = shape.n_embd as f64;
        let (mut output_row, mut embd_row) = (None, n_embd);
        let mut ffn_elements = 0.0;
        // Only what llama.cpp loads: the skipped prediction blocks take no buffer, no mapped
        // range and no time (`memory::weights::is_loaded`).
        let tensors: Vec<&TensorInfo> = tensors
            .into_iter()
            .filter(|t| is_loaded(&shape, &t.name))
            .collect();
        let mapped = MappedFile::new(tensors.iter().copied(), shape.block_count);
        for t in tensors {
            if block_of(&t.name).is_some_and(|b| b < n) && t.name.contains(".ffn_up") {
                let used = if t.dims.len() >= 3 {
                    shape.n_expert_used.max(1) as f64
                } else {
                    1.0
                };
                ffn_elements += t.dims.get(1).copied().unwrap_or(0) as f64 * used;
            }
            if t.dims.len() >= 2 && block_of(&t.name).is_some_and(|b| b < n) {
                match block_types.iter_mut().find(|e| e.0 == t.ggml_type) {
                    Some(e) => e.1 += t.n_bytes(),
                    None => block_types.push((t.ggml_type, t.n_bytes())),
                }
                row_weighted += t.dims[0] as f64 * t.n_bytes().get() as f64;
                row_bytes += t.n_bytes().get() as f64;
            }
            if t.name == "token_embd.weight" {
                embd_type = t.ggml_type;
                embd_row = t.dims.first().copied().unwrap_or(0) as f64;
            }
            if let Some(b) = block_of(&t.name).filter(|&b| b < n) {
                largest_tensor_per_block[b] = largest_tensor_per_block[b].max(t.n_bytes());
            }
            if t.name == "output.weight" {
                tied_output = false;
                output_projection = t.n_bytes();
                output_type = Some(t.ggml_type);
                output_row = t.dims.first().map(|&d| d as f64);
            }
            if t.dims.len() < 2
                || !REPACKED.contains(&t.ggml_type)
                || t.name.starts_with("token_embd")
            {
                continue;
            }
            match block_of(&t.name).filter(|&b| b < n) {
                Some(b) => repacked_per_block[b] += t.n_bytes(),
                None if t.name.starts_with("output") => repacked_output += t.n_bytes(),
                None => {}
            }
        }
        let cpu_repacks = cpu_simd.iter().any(|s| s == "avx2");
        let ffn_activation = FfnActivation::of_architecture(&shape.architecture);
        PlanInput {
            shape,
            weights,
            tied_output,
            repacked_per_block,
            repacked_output,
            cpu_repacks,
            largest_tensor_per_block,
            output_projection,
            quant: None,
            block_types,
            output_type: output_type.unwrap_or(embd_type),
            block_row_elements: if row_bytes > 0.0 {
                row_weighted / row_bytes
            } else {
                n_embd
            },
            output_row_elements: output_row.unwrap_or(embd_row),
            ffn_elements,
            ffn_activation,
            mapped,
            file: None,
        }
    }

    /// Average bits per weight of the whole file.
    pub fn bits_per_weight(&self) -> f64 {
        if self.weights.n_params == 0 {
            return 16.0;
        }
        self.weights.total.get() as f64 * 8.0 / self.weights.n_params as f64
    }
}
