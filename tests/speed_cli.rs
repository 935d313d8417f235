//! The speed contract through the binary: `layerfit bench` caches a calibration that plans
//! then use (`source: measured`), without one the figures are rough and say so, `--threads`
//! reaches the figures, a described GPU uses published figures bounded by the per-block cost,
//! and a context that does not fit gets no speed. JSON is parsed, never grepped.

mod common;

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_layerfit");

/// Runs layerfit with its cache in `cache` (a fresh folder: no calibration unless a test
/// measures one there).
fn layerfit_in(cache: &std::path::Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("LAYERFIT_HARDWARE")
        .env_remove("LAYERFIT_SOFTWARE_GPU")
        .env("XDG_CACHE_HOME", cache)
        .env("LAYERFIT_MODELS", common::models_dir())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn speed(doc: &Value) -> &Value {
    &doc["plan"]["speed"]
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Every figure positive and finite, each inside its band, the full context no faster
/// than the start.
fn assert_sane(s: &Value) {
    for k in [
        "decode_tokens_per_s",
        "decode_tokens_per_s_at_context",
        "prompt_tokens_per_s",
    ] {
        let x = num(&s[k]);
        assert!(x.is_finite() && x > 0.0, "{k} = {x}");
    }
    assert!(num(&s["decode_tokens_per_s_low"]) < num(&s["decode_tokens_per_s"]));
    assert!(num(&s["decode_tokens_per_s"]) < num(&s["decode_tokens_per_s_high"]));
    assert!(num(&s["decode_at_context_low"]) < num(&s["decode_tokens_per_s_at_context"]));
    assert!(num(&s["decode_tokens_per_s_at_context"]) < num(&s["decode_at_context_high"]));
    assert!(num(&s["prompt_tokens_per_s_low"]) < num(&s["prompt_tokens_per_s"]));
    assert!(num(&s["decode_tokens_per_s_at_context"]) <= num(&s["decode_tokens_per_s"]));
    assert!(num(&s["threads"]) >= 1.0);
}

#[test]
fn without_a_calibration_the_figures_are_rough_and_say_how_to_measure() {
    let cache = common::tempdir("speed-rough");
    let m = common::smollm2();
    let (code, doc, err) = layerfit_in(
        &cache,
        &[
            "plan",
            "--model",
            m.to_str().unwrap(),
            "--ctx",
            "4096",
            "--json",
        ],
    );
    assert!(code == 0 || code == 10, "{err}");
    let s = speed(&doc);
    assert_sane(s);
    assert_eq!(s["source"], "rough");
    assert!(
        s["basis"].as_str().unwrap().contains("layerfit bench"),
        "{s}"
    );

    let (code, _, err) = layerfit_in(&cache, &["bench", "--show"]);
    assert_eq!(code, 2, "no calibration to show: {err}");
    assert!(err.contains("layerfit bench"), "{err}");
}

#[test]
fn bench_caches_a_calibration_that_plans_use_at_the_threads_asked() {
    let cache = common::tempdir("speed-measured");
    // --busy-ok: the tests run beside other work (a busy machine makes bench wait, then
    // refuse: bench_refuses_a_busy_machine_unless_told).
    let (code, doc, err) = layerfit_in(
        &cache,
        &["bench", "--quick", "--threads", "1", "--busy-ok", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let cal = &doc["calibration"];
    assert_eq!(cal["kind"], "quick");
    let points = cal["points"].as_array().unwrap();
    assert!(points.iter().any(|p| p["threads"] == 1), "{cal}");
    for p in points {
        for r in p["matvec_gb_per_s"].as_array().unwrap() {
            assert!(num(&r["value"]) > 0.0, "{r}");
        }
        assert!(!p["attn_decode_ns"].as_array().unwrap().is_empty());
    }
    assert!(std::path::Path::new(doc["path"].as_str().unwrap()).exists());
    // --show reads the same file back.
    let (code, shown, _) = layerfit_in(&cache, &["bench", "--show", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(shown["calibration"], doc["calibration"]);

    let m = common::gemma3();
    let m = m.to_str().unwrap();
    let (_, plan, err) = layerfit_in(&cache, &["plan", "--model", m, "--ctx", "4096", "--json"]);
    let s = speed(&plan);
    assert_sane(s);
    assert_eq!(s["source"], "measured", "{err}");
    let (_, one, _) = layerfit_in(
        &cache,
        &[
            "plan",
            "--model",
            m,
            "--ctx",
            "4096",
            "--threads",
            "1",
            "--json",
        ],
    );
    assert_eq!(speed(&one)["threads"], 1);
    assert_eq!(
        speed(&one)["busy"],
        Value::Null,
        "--threads is the user's choice"
    );
    // check-requirements computes the same figures.
    let (_, check, _) = layerfit_in(
        &cache,
        &[
            "check-requirements",
            "--model",
            m,
            "--ctx",
            "4096",
            "--threads",
            "1",
            "--json",
        ],
    );
    assert_eq!(
        speed(&check)["decode_tokens_per_s"],
        speed(&one)["decode_tokens_per_s"]
    );
    // Weights paged from disk (640M of RAM for SmolLM2 at 32K on the CPU) are timed at the
    // models disk's read speed that bench measured, not the fastest NVMe's.
    let smol = common::smollm2();
    let (_, paged, err) = layerfit_in(
        &cache,
        &[
            "plan",
            "--model",
            smol.to_str().unwrap(),
            "--ctx",
            "32768",
            "--kv",
            "q8_0",
            "--no-gpu",
            "--ram",
            "640M",
            "--json",
        ],
    );
    let kinds: Vec<&str> = paged["plan"]["degradations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"weights_paged"), "{kinds:?} {err}");
    let basis = speed(&paged)["basis"].as_str().unwrap();
    assert!(
        basis.contains("at the models disk's measured") && basis.contains("GB/s (layerfit bench)"),
        "{basis}"
    );
    // A described machine never uses this machine's calibration.
    let (_, described, _) = layerfit_in(
        &cache,
        &[
            "plan", "--model", m, "--ctx", "4096", "--gpu", "RTX 4090", "--json",
        ],
    );
    assert_eq!(speed(&described)["source"], "published");
}

#[test]
fn a_tiny_model_on_a_huge_gpu_is_bounded_by_the_cost_of_a_step() {
    let cache = common::tempdir("speed-gpu");
    let m = common::smollm2();
    let (code, doc, err) = layerfit_in(
        &cache,
        &[
            "plan",
            "--model",
            m.to_str().unwrap(),
            "--ctx",
            "8192",
            "--gpu",
            "RTX 4090",
            "--ram",
            "64G",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let s = speed(&doc);
    assert_sane(s);
    assert_eq!(s["source"], "published");
    // 30 blocks x 25 us per step: at most 1333 tokens/s, whatever the bandwidth.
    let d = num(&s["decode_tokens_per_s"]);
    assert!(d < 1333.0 && d > 300.0, "{d}");
    // A 576-wide model keeps a big GPU's matrix units mostly idle: tens of thousands of
    // prompt tokens/s, not the hundreds of thousands its TFLOPS would give.
    assert!(num(&s["prompt_tokens_per_s"]) < 50_000.0, "{s}");
}

#[test]
fn a_context_that_does_not_fit_gets_no_speed() {
    let cache = common::tempdir("speed-none");
    let m = common::smollm2();
    let (code, doc, err) = layerfit_in(
        &cache,
        &[
            "plan",
            "--model",
            m.to_str().unwrap(),
            "--ctx",
            "10000000",
            "--ram",
            "8G",
            "--no-gpu",
            "--json",
        ],
    );
    assert_eq!(code, 20, "{err}");
    assert_eq!(doc["plan"]["verdict"], "incompatible");
    assert_eq!(speed(&doc), &Value::Null);
}

#[test]
fn zero_threads_is_bad_input() {
    let cache = common::tempdir("speed-threads");
    for cmd in ["plan", "check-requirements", "run"] {
        let (code, _, err) = layerfit_in(
            &cache,
            &[cmd, "--model", "smollm2:135m-q4_1", "--threads", "0"],
        );
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("--threads"), "{err}");
    }
}

/// Every `run` records the decode and prompt speed it measured for its file and placement;
/// later plans of that file use them and say so (`source: measured_run`, `measured`), for
/// the other placements too (the runs' ratio to the model carried over). Issue 32, item 3.
#[test]
fn runs_record_their_speed_and_later_plans_say_measured() {
    let cache = common::tempdir("speed-runs");
    let m = common::smollm2();
    let m = m.to_str().unwrap();
    let base = [
        "--model",
        m,
        "--ctx",
        "4096",
        "--kv",
        "q8_0",
        "--threads",
        "1",
    ];
    let prompt = "List the days of the week, then the months of the year, each on its own line, with a short note about each one.";
    let run = |max: &str| {
        let (code, doc, err) = layerfit_in(
            &cache,
            &[
                &["run", "--json", "--accept-degraded", "--temp", "0"][..],
                &base,
                &["--prompt", prompt, "--max-tokens", max],
            ]
            .concat(),
        );
        assert_eq!(code, 0, "{err}");
        doc
    };
    // Too short to time: nothing recorded, the plan keeps the model's figures.
    run("4");
    let (_, plan, err) = layerfit_in(&cache, &[&["plan", "--json"][..], &base].concat());
    assert_ne!(speed(&plan)["source"], "measured_run", "{err}");
    assert!(speed(&plan).get("measured").is_none());

    let doc = run("48");
    let decode = num(&doc["decode_tokens_per_s"]);
    let (_, plan, err) = layerfit_in(&cache, &[&["plan", "--json"][..], &base].concat());
    let s = speed(&plan);
    assert_sane(s);
    assert_eq!(s["source"], "measured_run", "{err}");
    assert_eq!(s["measured"]["runs"], 1);
    assert_eq!(s["measured"]["threads"], 1);
    assert_eq!(num(&s["measured"]["decode_tokens_per_s"]), decode);
    // The start of a conversation is no slower than where the run timed it (a few dozen
    // tokens in), and within the band of it.
    assert!(num(&s["decode_tokens_per_s"]) >= decode * 0.999, "{s}");
    assert!(num(&s["decode_tokens_per_s_low"]) <= decode, "{s}");
    // Another cache type of the same file: the run's ratio to the model, carried over.
    let (_, f16, _) = layerfit_in(
        &cache,
        &[
            "plan",
            "--json",
            "--model",
            m,
            "--ctx",
            "4096",
            "--kv",
            "f16",
            "--threads",
            "1",
        ],
    );
    assert_eq!(speed(&f16)["source"], "measured_run");
    assert!(speed(&f16)["basis"]
        .as_str()
        .unwrap()
        .contains("other placements"));
    // Another thread count is another measurement.
    let (_, two, _) = layerfit_in(
        &cache,
        &[
            "plan",
            "--json",
            "--model",
            m,
            "--ctx",
            "4096",
            "--kv",
            "q8_0",
            "--threads",
            "2",
        ],
    );
    assert_ne!(speed(&two)["source"], "measured_run");
}
