//! The candidate search for one model: for each allowed cache type, the placement that puts
//! the most on the GPUs and fits (whole model, MoE experts on the CPU, fewer layers, GPUs
//! unused); `plan` then ranks those options (plan/rank.rs). Also fixed placements (a user's
//! `-ngl`, `-dev none`) and the largest context a placement holds.

use super::input::PlanInput;
use super::layout::{fits, layout, Layout, Placement, Setup};
use super::rank::{rank, Contender};
use super::verdict::finish;
use super::{Budgets, Plan, Requirements};
use crate::bytes::Bytes;
use crate::ggml_type::GgmlType;
use crate::hardware::Snapshot;
use crate::memory::{compute_buffers, kv_cache, CacheConfig};

/// The cache settings every plan uses: the required context, one type for K and V, flash
/// attention on. In embedding mode the batch is one ubatch, as llama-server sets it
/// (`common_init_from_params`: embeddings need the whole batch in one ubatch).
pub fn cache_config(req: &Requirements, t: GgmlType) -> CacheConfig {
    let n_batch = if req.embeddings {
        req.n_ubatch
    } else {
        CacheConfig::default().n_batch
    };
    CacheConfig {
        n_ctx: req.min_context,
        type_k: t,
        type_v: t,
        flash_attn: true,
        n_ubatch: req.n_ubatch,
        n_seq_max: req.parallel.max(1),
        outputs_per_seq: req.outputs_per_seq.max(1),
        embeddings: req.embeddings,
        n_batch,
        ..CacheConfig::default()
    }
}

/// The fixed part of every layout at cache type `t`; `None` when the model cannot have such
/// a cache (a context or type its shape rejects).
fn setup<'a>(
    inp: &'a PlanInput,
    snap: &'a Snapshot,
    budgets: &'a Budgets,
    cfg: CacheConfig,
) -> Option<Setup<'a>> {
    let kv = kv_cache(&inp.shape, &cfg).ok()?;
    let comp = compute_buffers(&inp.shape, &kv, &cfg);
    Some(Setup {
        inp,
        snap,
        budgets,
        cfg,
        kv,
        comp,
    })
}

/// The placements worth ranking at one cache type: everything on the GPUs when it fits;
/// else the ways to put less there, each at its most offloaded: MoE experts of the first
/// blocks on the CPU, dense feed-forward weights of the first blocks on the CPU (attention
/// and the KV cache stay on the GPU), whole blocks on the CPU (`-ngl`), and the GPUs hidden.
/// The ranking (speed among them) decides between them.
fn placements(s: &Setup, req: &Requirements) -> Vec<(Placement, Layout, bool)> {
    let n = s.inp.shape.block_count;
    let max_ngl = if s.snap.gpus.is_empty() { 0 } else { n + 1 };
    let full = layout(s, Placement::layers(max_ngl));
    if fits(&full) {
        return vec![(Placement::layers(max_ngl), full, false)];
    }
    let mut out = Vec::new();
    let spill = |p: &dyn Fn(u32) -> Placement| {
        (1..=n).find_map(|k| {
            let l = layout(s, p(k));
            fits(&l).then(|| (p(k), l, false))
        })
    };
    if req.allow_cpu_moe && max_ngl > 0 && s.inp.shape.n_expert > 1 {
        let moe = |k| Placement {
            cpu_moe: k,
            ..Placement::layers(max_ngl)
        };
        out.extend(spill(&moe));
    }
    let has_ffn = s.inp.weights.ffn_per_block.iter().any(|b| b.get() > 0);
    if req.allow_cpu_moe && max_ngl > 0 && s.inp.shape.n_expert <= 1 && has_ffn {
        let ffn = |k| Placement {
            cpu_ffn: k,
            ..Placement::layers(max_ngl)
        };
        out.extend(spill(&ffn));
    }
    if let Some(ngl) = (0..max_ngl)
        .rev()
        .find(|&ngl| fits(&layout(s, Placement::layers(ngl))))
    {
        out.push((
            Placement::layers(ngl),
            layout(s, Placement::layers(ngl)),
            false,
        ));
    }
    // On the CPU alone, when the whole plan does not fit in RAM but its anonymous memory
    // does: the mapped weights that do not fit are re-read from disk as they are needed
    // (seed 003's mmap route), with no repacked copies (`--no-repack`), which would be
    // anonymous memory. Runs, at the disk's pace.
    if out.is_empty() && max_ngl == 0 {
        let p = Placement {
            no_repack: s.inp.cpu_repacks,
            ..Placement::layers(0)
        };
        let mut l = layout(s, p);
        if l.impossible.is_none() && l.ram.anonymous_bytes <= l.ram.budget_bytes {
            l.paged = l.ram.total_bytes.saturating_sub(l.ram.budget_bytes);
            out.push((p, l, false));
        }
    }
    // A GPU too small for even the -ngl 0 offload buffers: hide it from llama.cpp.
    if out.is_empty() && max_ngl > 0 {
        let p = Placement {
            gpus_used: false,
            ..Placement::layers(0)
        };
        let l = layout(s, p);
        if fits(&l) {
            out.push((p, l, true));
        }
    }
    out
}

/// One plan per allowed cache type, each at its best placement; a type that fits nowhere
/// gives an incompatible plan saying what is missing. With remote devices, the placements on
/// this machine alone (`local_only`) are options too: the ranking recommends a split only
/// when it is faster or needed to fit. Unranked, in `req.kv_types` order.
pub fn options(inp: &PlanInput, snap: &Snapshot, req: &Requirements) -> Vec<Plan> {
    let mut out = options_on(inp, snap, req);
    if snap.gpus.iter().any(|g| g.remote.is_some()) {
        let mut local = snap.clone();
        local.gpus.retain(|g| g.remote.is_none());
        out.extend(
            options_on(inp, &local, req)
                .into_iter()
                .filter(|p| p.verdict != super::Verdict::Incompatible)
                .map(local_only),
        );
    }
    out
}

/// The machine a plan was made on: without the remote devices for a `local_only` plan.
fn own_devices(snap: &Snapshot, plan: &Plan) -> Option<Snapshot> {
    plan.local_only.then(|| {
        let mut local = snap.clone();
        local.gpus.retain(|g| g.remote.is_none());
        local
    })
}

/// A plan on this machine's own devices, with remote devices at hand: its placement
/// degradations say the servers are left out.
fn local_only(mut p: Plan) -> Plan {
    use super::DegradationKind as K;
    p.local_only = true;
    for d in p.degradations.iter_mut() {
        if d.kind == K::CpuOnly && p.devices.iter().all(|x| !x.is_gpu) {
            d.message =
                "the RPC servers are left out: everything runs on this machine's CPU".into();
        } else if matches!(d.kind, K::CpuOnly | K::PartialOffload) {
            d.message.push_str(" (the RPC servers are left out)");
        }
    }
    p
}

fn options_on(inp: &PlanInput, snap: &Snapshot, req: &Requirements) -> Vec<Plan> {
    let budgets = Budgets::from_snapshot(snap, req);
    let n = inp.shape.block_count;
    let mut out = Vec::new();
    for &t in &req.kv_types {
        let Some(s) = setup(inp, snap, &budgets, cache_config(req, t)) else {
            continue;
        };
        let found = placements(&s, req);
        for (p, l, hidden) in &found {
            out.push(finish(&s, req, t, p.ngl, l.clone(), None, *hidden));
        }
        if found.is_empty() {
            let ngl = if snap.gpus.is_empty() { 0 } else { n + 1 };
            let l = layout(&s, Placement::layers(ngl));
            let missing = describe_shortfall(&s);
            out.push(finish(&s, req, t, ngl, l, Some(missing), false));
        }
    }
    if out.is_empty() {
        // No allowed type is possible for this shape: f16 always is.
        let s = setup(inp, snap, &budgets, cache_config(req, GgmlType::F16));
        if let Some(s) = s {
            let l = layout(&s, Placement::layers(0));
            let fit = fits(&l);
            let missing = (!fit).then(|| describe_shortfall(&s));
            out.push(finish(&s, req, GgmlType::F16, 0, l, missing, false));
        }
    }
    out
}

/// Plans `inp` on `snap` under `req`: the best-ranked of its options.
pub fn plan(inp: &PlanInput, snap: &Snapshot, req: &Requirements) -> Plan {
    let mut all = options(inp, snap, req);
    let contenders: Vec<Contender> = all
        .iter()
        .map(|p| Contender {
            plan: p,
            downloaded: true,
            preference: 0,
            incomplete: false,
        })
        .collect();
    let best = rank(&contenders)[0].index;
    all.swap_remove(best)
}

/// The plan at a fixed cache type and `-ngl` (a user's override), fitting or not; a plan that
/// does not fit is `incompatible` with what it lacks.
pub fn plan_at(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    kv_type: GgmlType,
    ngl: u32,
    cpu_moe: u32,
) -> Plan {
    let fixed = Fixed {
        kv_type,
        ngl,
        cpu_moe,
        cpu_ffn: 0,
        no_repack: false,
    };
    plan_fixed(inp, snap, req, fixed)
}

/// A placement fixed by the user or a run file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub kv_type: GgmlType,
    /// llama.cpp's `-ngl`, `--n-cpu-moe`, `--n-cpu-ffn`.
    pub ngl: u32,
    pub cpu_moe: u32,
    pub cpu_ffn: u32,
    /// `--no-repack`.
    pub no_repack: bool,
}

/// `plan_at` with every part of a placement (a run file's).
pub fn plan_fixed(inp: &PlanInput, snap: &Snapshot, req: &Requirements, f: Fixed) -> Plan {
    let Fixed {
        kv_type,
        ngl,
        cpu_moe,
        cpu_ffn,
        no_repack,
    } = f;
    let budgets = Budgets::from_snapshot(snap, req);
    let ngl = if snap.gpus.is_empty() {
        0
    } else {
        ngl.min(inp.shape.block_count + 1)
    };
    let Some(s) = setup(inp, snap, &budgets, cache_config(req, kv_type)) else {
        return plan(
            inp,
            snap,
            &Requirements {
                kv_types: vec![GgmlType::F16],
                ..req.clone()
            },
        );
    };
    let l = layout(
        &s,
        Placement {
            cpu_moe,
            cpu_ffn,
            no_repack,
            ..Placement::layers(ngl)
        },
    );
    let missing = (!fits(&l)).then(|| {
        let over: Vec<String> = l
            .gpu
            .iter()
            .filter(|d| d.total_bytes > d.budget_bytes)
            .map(|d| {
                format!(
                    "{} needs {} more",
                    d.device,
                    d.total_bytes.saturating_sub(d.budget_bytes)
                )
            })
            .chain((l.ram.total_bytes > l.ram.budget_bytes).then(|| {
                format!(
                    "RAM needs {} more",
                    l.ram.total_bytes.saturating_sub(l.ram.budget_bytes)
                )
            }))
            .collect();
        match &l.impossible {
            Some(why) => format!("-ngl {ngl} with a {kv_type} cache cannot run: {why}"),
            None => format!(
                "-ngl {ngl} (--n-cpu-moe {cpu_moe}) with a {kv_type} cache does not fit: {}",
                over.join(", ")
            ),
        }
    });
    finish(&s, req, kv_type, ngl, l, missing, false)
}

/// The plan at a fixed cache type with every GPU hidden from llama.cpp (`-dev none`): the
/// whole model on the CPU, nothing allocated on a GPU.
pub fn plan_gpu_unused(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    kv_type: GgmlType,
) -> Plan {
    let budgets = Budgets::from_snapshot(snap, req);
    let Some(s) = setup(inp, snap, &budgets, cache_config(req, kv_type)) else {
        return plan_at(inp, snap, req, kv_type, 0, 0);
    };
    let p = Placement {
        gpus_used: false,
        ..Placement::layers(0)
    };
    let l = layout(&s, p);
    let missing = (!fits(&l)).then(|| {
        format!(
            "with the GPU unused and a {kv_type} cache, RAM needs {} more",
            l.ram.total_bytes.saturating_sub(l.ram.budget_bytes)
        )
    });
    finish(&s, req, kv_type, 0, l, missing, true)
}

/// The largest context (a multiple of 256, at most the model's trained context or the
/// required one when larger) that `plan`'s placement holds with cache type `t`; `None` when
/// not even 256 tokens fit. The plan's own required context is not changed.
pub fn max_context(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    plan: &Plan,
    t: GgmlType,
) -> Option<u64> {
    let local = own_devices(snap, plan);
    let snap = local.as_ref().unwrap_or(snap);
    let budgets = Budgets::from_snapshot(snap, req);
    let placement = Placement {
        ngl: plan.n_gpu_layers,
        cpu_moe: plan.n_cpu_moe,
        cpu_ffn: plan.n_cpu_ffn,
        gpus_used: !plan.gpu_unused,
        no_repack: plan.no_repack,
    };
    let fits_at = |ctx: u64| {
        let cfg = CacheConfig {
            n_ctx: ctx,
            ..cache_config(req, t)
        };
        setup(inp, snap, &budgets, cfg).is_some_and(|s| fits(&layout(&s, placement)))
    };
    let top = inp.shape.context_length.max(req.min_context) / 256;
    if top == 0 || !fits_at(256) {
        return None;
    }
    // Memory grows with the context: the largest fitting multiple by bisection.
    let (mut lo, mut hi) = (1u64, top);
    if fits_at(hi * 256) {
        return Some(hi * 256);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits_at(mid * 256) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo * 256)
}

/// The memory `plan`'s placement needs on each device (GPUs, then the CPU) with cache type
/// `t` at `ctx` tokens per sequence; `None` where the shape rejects that cache.
pub fn devices_at(
    inp: &PlanInput,
    snap: &Snapshot,
    req: &Requirements,
    plan: &Plan,
    t: GgmlType,
    ctx: u64,
) -> Option<Vec<super::DeviceUse>> {
    let local = own_devices(snap, plan);
    let snap = local.as_ref().unwrap_or(snap);
    let budgets = Budgets::from_snapshot(snap, req);
    let cfg = CacheConfig {
        n_ctx: ctx,
        ..cache_config(req, t)
    };
    let s = setup(inp, snap, &budgets, cfg)?;
    let l = layout(
        &s,
        Placement {
            ngl: plan.n_gpu_layers,
            cpu_moe: plan.n_cpu_moe,
            cpu_ffn: plan.n_cpu_ffn,
            gpus_used: !plan.gpu_unused,
            no_repack: plan.no_repack,
        },
    );
    let mut v = l.gpu;
    v.push(l.cpu);
    Some(v)
}

/// What is missing when nothing fits: RAM on the CPU alone, VRAM fully offloaded.
fn describe_shortfall(s: &Setup) -> String {
    let cpu_only = layout(
        s,
        Placement {
            gpus_used: false,
            ..Placement::layers(0)
        },
    );
    let ram_short = cpu_only
        .ram
        .total_bytes
        .saturating_sub(cpu_only.ram.budget_bytes);
    let mut text = format!(
        "at {} tokens with a {} cache, running on the CPU needs {} of RAM but {} is usable: {} more RAM",
        s.cfg.n_ctx, s.cfg.type_k, cpu_only.ram.total_bytes, cpu_only.ram.budget_bytes, ram_short
    );
    if !s.snap.gpus.is_empty() {
        let full = layout(s, Placement::layers(s.inp.shape.block_count + 1));
        let vram_short: Bytes = full
            .gpu
            .iter()
            .map(|g| g.total_bytes.saturating_sub(g.budget_bytes))
            .sum();
        text.push_str(&format!(
            "; fully offloaded it needs {vram_short} more VRAM"
        ));
    }
    text
}
