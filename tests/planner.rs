//! The planner on real model shapes and described machines: budgets never exceeded, the
//! chosen -ngl maximal, the context never lowered, llama.cpp's offload order, several GPUs.

mod common;

use layerfit::bytes::Bytes;
use layerfit::ggml_type::GgmlType;
use layerfit::model_source::ModelSource;
use layerfit::plan::{plan, plan_at, DegradationKind, PlanInput, Requirements, Verdict};
use std::path::Path;

fn input(path: &Path) -> PlanInput {
    ModelSource::from_file(path)
        .unwrap()
        .plan_input(&["avx2".to_string()])
        .unwrap()
}

fn within_budgets(p: &layerfit::plan::Plan) -> bool {
    p.devices
        .iter()
        .filter(|d| d.is_gpu)
        .all(|d| d.total_bytes <= d.budget_bytes)
        && p.ram.total_bytes <= p.ram.budget_bytes
}

#[test]
fn ngl_is_maximal_and_budgets_hold_across_vram_sizes() {
    let inp = input(&common::smollm2());
    let n = inp.shape.block_count;
    let req = Requirements::default();
    let mut seen_partial = false;
    for mib in (600..=2600).step_by(50) {
        let m = common::machine(&format!(
            "ram: 4G\ngpus:\n  - name: card\n    vram: {mib}M\n    bandwidth_gbps: 300\n"
        ));
        let p = plan(&inp, &m, &req);
        assert_eq!(p.context, 32768, "context never lowered");
        if p.verdict == Verdict::Incompatible {
            continue;
        }
        assert!(within_budgets(&p), "{mib} MiB: {p:?}");
        if p.n_gpu_layers <= n {
            let more = plan_at(&inp, &m, &req, p.kv_type, p.n_gpu_layers + 1, 0);
            assert!(
                !within_budgets(&more),
                "{mib} MiB: -ngl {} would also fit",
                p.n_gpu_layers + 1
            );
        }
        if p.gpu_blocks > 0 && p.gpu_blocks < n {
            seen_partial = true;
            // llama.cpp's order: the output layer first, then the last blocks.
            assert!(p.output_on_gpu);
            assert_eq!(p.gpu_blocks, p.n_gpu_layers - 1);
        }
    }
    assert!(seen_partial, "the sweep crosses partial offload");
}

#[test]
fn the_gpu_holds_offloaded_blocks_their_kv_and_a_tied_output_copy() {
    let inp = input(&common::smollm2());
    assert!(inp.tied_output, "SmolLM2 ties its output to the embeddings");
    let m = common::machine("ram: 8G\ngpus:\n  - name: RTX 4090\n");
    let req = Requirements::default();
    let p = plan_at(&inp, &m, &req, GgmlType::F16, 10, 0);
    let gpu = &p.devices[0];
    assert_eq!(p.gpu_blocks, 9);
    let blocks: Bytes = inp.weights.per_block[21..].iter().copied().sum();
    assert_eq!(
        gpu.weights_bytes,
        blocks + inp.weights.output + inp.weights.token_embd
    );
    // 9 blocks x 32768 cells x (3 KV heads x 64 x 2 bytes) x 2 (K and V): 216 MiB, the figure
    // llama.cpp's Vulkan backend allocates for this case (issue 7).
    assert_eq!(gpu.kv_bytes, Bytes(9 * 32768 * 768));
    let cpu = p.devices.last().unwrap();
    assert!(
        cpu.weights_bytes >= inp.weights.token_embd,
        "embeddings stay on the host"
    );
}

#[test]
fn no_gpu_means_cpu_only_and_a_4gb_machine_runs_gemma_at_32k() {
    let inp = input(&common::gemma3());
    let m = common::machine("ram: 4G\n");
    let p = plan(&inp, &m, &Requirements::default());
    assert_eq!(p.n_gpu_layers, 0);
    // f16 fits too, but a q8_0 cache loses nothing measurable (KLD within noise) and reads
    // half the bytes per token: as good, and faster.
    assert_eq!(
        p.kv_type,
        GgmlType::Q8_0,
        "q8_0 is as good as f16 and faster"
    );
    assert_eq!(p.verdict, Verdict::Degraded);
    assert!(p
        .degradations
        .iter()
        .any(|d| d.kind == DegradationKind::CpuOnly));
    assert!(within_budgets(&p));
    // Repacked q4_K weights are anonymous memory, the rest of the mapped file is page cache.
    assert!(p.ram.anonymous_bytes >= Bytes(13271040));
}

#[test]
fn a_1gb_machine_fits_smollm2_at_32k_with_a_q8_0_cache() {
    // 1 GiB machine: the OS keeps a quarter (256 MiB, src/plan/budget.rs), 768 MiB for the
    // model (seed 004's class of machine). With one output per sequence (n_outputs_max) the
    // compute buffer no longer holds a ubatch of logits: SmolLM2 at 32K with the q8_0 cache
    // (382.5 MiB) fits whole, where the f16 one (720 MiB) does not.
    let inp = input(&common::smollm2());
    let m = common::machine("ram: 1G\nram_available: 1G\n");
    let p = plan(&inp, &m, &Requirements::default());
    assert_ne!(p.verdict, Verdict::Incompatible, "{p:?}");
    assert_eq!(p.ram.budget_bytes, Bytes(768 << 20));
    assert_eq!(
        p.kv_type,
        GgmlType::Q8_0,
        "the f16 cache (720 MiB) does not fit"
    );
    assert!(within_budgets(&p));
    assert!(!p.degradations.iter().any(|d| matches!(
        d.kind,
        DegradationKind::KvQuantized | DegradationKind::WeightsPaged
    )));
    assert!(
        p.degradations
            .iter()
            .any(|d| d.kind == DegradationKind::BeyondTrainedContext),
        "SmolLM2 was trained on 8K"
    );
}

#[test]
fn nothing_fits_says_what_is_missing() {
    let inp = input(&common::gemma3());
    let m = common::machine("ram: 100M\n");
    let p = plan(&inp, &m, &Requirements::default());
    assert_eq!(p.verdict, Verdict::Incompatible);
    let why = p.missing.unwrap();
    assert!(why.contains("more RAM"), "{why}");
    assert_eq!(p.context, 32768);
}

#[test]
fn two_gpus_split_layers_by_free_memory() {
    let inp = input(&common::gemma3());
    let m = common::machine("ram: 16G\ngpus:\n  - name: a\n    vram: 8G\n    bandwidth_gbps: 300\n  - name: b\n    vram: 24G\n    bandwidth_gbps: 900\n");
    let p = plan(&inp, &m, &Requirements::default());
    assert_eq!(p.n_gpu_layers, inp.shape.block_count + 1);
    assert_eq!(p.tensor_split.len(), 2);
    assert!((p.tensor_split.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(
        p.tensor_split[1] > p.tensor_split[0],
        "{:?}",
        p.tensor_split
    );
    assert!(within_budgets(&p));
    let s = p.speed.unwrap();
    assert!(s.decode_tokens_per_s_high > s.decode_tokens_per_s_low);
}

/// With a GPU in llama.cpp's device list, -ngl 0 still gives it a compute buffer (op offload
/// runs the host layers' 512-token batches there), host
/// weights are never repacked, and a GPU too small even for that is hidden (`-dev none`).
/// Figures as llama.cpp allocated them on a Vulkan device (tests/vulkan_offload.rs).
#[test]
fn a_gpu_at_ngl_0_holds_the_offloaded_batches_and_a_tiny_one_is_hidden() {
    let inp = input(&common::gemma3());
    let req = Requirements::default();
    let mib = |b: Bytes| b.get() as f64 / 1048576.0;
    let big = common::machine("ram: 8G\ngpus:\n  - name: card\n    vram: 4G\n");
    let p = plan_at(&inp, &big, &req, GgmlType::F16, 0, 0);
    assert_eq!(p.devices.len(), 2);
    let (gpu, cpu) = (&p.devices[0], &p.devices[1]);
    assert_eq!(
        (gpu.weights_bytes, gpu.kv_bytes),
        (Bytes::ZERO, Bytes::ZERO)
    );
    // One output per sequence: the output projection's batch is one row, too small to be
    // op-offloaded, so the host computes the logits and the GPU gets no copy of the 170 MiB
    // embedding matrix. The GPU runs the host layers' attention: the masks (32 MiB + the
    // sliding-window one), one layer's K and V (32 MiB), 4 attention-width rows (8 MiB) and
    // the 2 copied input rows (2.5 MiB); llama.cpp allocated 73.44 MiB.
    assert_eq!(mib(gpu.compute_bytes), 33.0 + 32.0 + 8.0 + 2.5);
    // The host keeps the masks (32 MiB + the sliding-window one) and 4 rows, plus the output
    // buffer (1 MiB): 33 + 5 + 1.
    assert_eq!(mib(cpu.compute_bytes), 39.0);
    assert_eq!(
        p.ram.repacked_bytes,
        Bytes::ZERO,
        "no CPU_REPACK with a GPU"
    );
    let cpu_only = plan_at(
        &inp,
        &common::machine("ram: 8G\n"),
        &req,
        GgmlType::F16,
        0,
        0,
    );
    assert!(cpu_only.ram.repacked_bytes > Bytes::ZERO);

    let tiny = common::machine("ram: 8G\ngpus:\n  - name: card\n    vram: 150M\n");
    let p = plan(&inp, &tiny, &req);
    assert!(p.gpu_unused, "{p:?}");
    assert_eq!(p.n_gpu_layers, 0);
    assert_eq!(p.devices.len(), 1, "the hidden GPU gets nothing");
    assert_eq!(
        p.devices[0].compute_bytes,
        cpu_only.devices[0].compute_bytes
    );
    assert!(p
        .degradations
        .iter()
        .any(|d| d.message.contains("-dev none")));
}

/// The speed model charges each token's feed-forward activation by its function: Gemma 3
/// gates with GELU (llama.cpp's `LLM_FFN_GELU`), SmolLM2 with SiLU, and each activates its
/// blocks' up-projection widths (read from the tensors, not the header's scalar).
#[test]
fn the_feed_forward_activation_comes_from_the_architecture_and_the_tensors() {
    use layerfit::speed::ffn_activation::FfnActivation;
    let gemma = input(&common::gemma3());
    assert_eq!(gemma.ffn_activation, FfnActivation::Gelu);
    assert_eq!(gemma.ffn_elements, 18.0 * 2048.0);
    let smol = input(&common::smollm2());
    assert_eq!(smol.ffn_activation, FfnActivation::Silu);
    assert_eq!(smol.ffn_elements, 30.0 * 1536.0);
}
