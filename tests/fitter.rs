//! layerfit against llama.cpp's own fitter (`common_fit_params`) on the real models, on the
//! CPU: the fitter keeps `margin` bytes of the host's physical memory free and says whether
//! the model fits. Bisecting the margin finds the host memory the fitter projects; layerfit's
//! projection of llama.cpp's host buffers (its plan's CPU total, plus the repacked weights
//! that llama.cpp's mapped buffer counts twice) is compared with it and, where the two
//! differ, with what llama.cpp really allocates when it loads the model.

mod common;

use layerfit::bytes::Bytes;
use layerfit::engine::fit::llama_fit;
use layerfit::engine::measure::{measure, MeasureRequest};
use layerfit::ggml_type::GgmlType;
use layerfit::gguf::open_model;
use layerfit::memory::weights;
use layerfit::model::Shape;
use layerfit::plan::{plan_at, PlanInput, Requirements};
use std::path::Path;

fn host_total() -> u64 {
    // SAFETY: sysconf(3) with valid names only reads system configuration.
    unsafe {
        libc::sysconf(libc::_SC_PHYS_PAGES) as u64 * libc::sysconf(libc::_SC_PAGE_SIZE) as u64
    }
}

/// The host memory llama.cpp's fitter projects: the largest margin it still fits with,
/// subtracted from the host's physical memory (to 1 MiB).
fn fitter_projection(model: &Path, ctx: u32, kv: GgmlType) -> u64 {
    let total = host_total();
    let fits = |m: u64| llama_fit(model, ctx, kv, 512, m).unwrap().fits;
    assert!(fits(0), "the fitter must fit with no margin");
    let (mut lo, mut hi) = (0u64, total);
    while hi - lo > 1 << 20 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    total - lo
}

fn layerfit_projection(model: &Path, ctx: u64, kv: GgmlType) -> u64 {
    let f = open_model(model).unwrap();
    let shape = Shape::from_metadata(f.metadata(), f.tensor_vocab()).unwrap();
    let w = weights(f.tensors(), shape.block_count as usize);
    let simd = layerfit::hardware::cpu::probe().simd;
    let inp = PlanInput::new(shape, w, f.tensors(), &simd);
    let m = common::machine("ram: 64G\n");
    let req = Requirements {
        min_context: ctx,
        kv_types: vec![kv],
        ..Requirements::default()
    };
    let p = plan_at(&inp, &m, &req, kv, 0, 0);
    let cpu = p.devices.iter().find(|d| !d.is_gpu).unwrap();
    (cpu.total_bytes + p.ram.repacked_bytes).get()
}

/// What llama.cpp really allocates on the host when it loads the model (every buffer).
fn real_allocation(model: &Path, ctx: u32, kv: GgmlType) -> u64 {
    let m = measure(
        model,
        &MeasureRequest {
            n_ctx: ctx,
            type_k: kv,
            type_v: kv,
            flash_attn: Some(true),
            dry_run: false,
            ..MeasureRequest::default()
        },
    )
    .unwrap();
    (m.model_bytes() + m.context_bytes() + m.compute_bytes()).get()
}

#[test]
fn llama_cpp_fitter_and_layerfit_agree_on_the_host_memory_of_the_real_models() {
    let pct = |a: u64, b: u64| (a as f64 / b as f64 - 1.0) * 100.0;
    let (mut cases, mut agree) = (0, 0);
    for model in [common::smollm2(), common::gemma3()] {
        for (ctx, kv) in [
            (4096u32, GgmlType::F16),
            (32768, GgmlType::F16),
            (32768, GgmlType::Q8_0),
        ] {
            let theirs = fitter_projection(&model, ctx, kv);
            let ours = layerfit_projection(&model, ctx as u64, kv);
            let name = model.file_name().unwrap().to_string_lossy().into_owned();
            cases += 1;
            // Within the bisection's 1 MiB and 1%: the same answer.
            if ours.abs_diff(theirs) <= (2 << 20).max(theirs / 100) {
                agree += 1;
                eprintln!(
                    "{name} ctx {ctx} {kv}: fitter {}, layerfit {} ({:+.2}%): agree",
                    Bytes(theirs),
                    Bytes(ours),
                    pct(ours, theirs)
                );
                continue;
            }
            // They differ: load for real and see whose figure llama.cpp's allocation matches.
            let real = real_allocation(&model, ctx, kv);
            eprintln!(
                "{name} ctx {ctx} {kv}: fitter {} ({:+.2}% of the real load), layerfit {} ({:+.2}%), llama.cpp allocated {}",
                Bytes(theirs),
                pct(theirs, real),
                Bytes(ours),
                pct(ours, real),
                Bytes(real)
            );
            assert!(
                ours.abs_diff(real) <= theirs.abs_diff(real),
                "{name}: layerfit {ours} is further from the real {real} than the fitter's {theirs}"
            );
            assert!(
                ours.abs_diff(real) <= real / 20,
                "{name}: {ours} vs real {real}"
            );
        }
    }
    eprintln!("llama.cpp's fitter and layerfit agree in {agree} of {cases} cases");
}

#[test]
fn the_fitter_and_layerfit_agree_on_what_does_not_fit() {
    // A margin that leaves less than the model needs: the fitter fails, and layerfit's plan
    // for a machine with that much RAM is incompatible.
    let model = common::gemma3();
    let need = fitter_projection(&model, 32768, GgmlType::F16);
    let short = host_total() - need + (64 << 20);
    assert!(
        !llama_fit(&model, 32768, GgmlType::F16, 512, short)
            .unwrap()
            .fits
    );
    // layerfit's own figure for the same configuration is also more than that margin leaves.
    let ours = layerfit_projection(&model, 32768, GgmlType::F16);
    assert!(
        ours + short > host_total(),
        "{ours} + {short} vs {}",
        host_total()
    );
}
