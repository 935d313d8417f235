//! The memory drawn (issue 32, item 5): the report's per-device bars (plain ASCII off a
//! terminal) and `plan --chart FILE.svg`, parsed as XML and checked against the plan's JSON.

mod common;

use serde_json::Value;

fn layerfit(args: &[&str]) -> (i32, String, String) {
    common::layerfit(env!("CARGO_BIN_EXE_layerfit"), args)
}

/// The texts of an SVG document, trimmed.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            n.descendants()
                .filter(|t| t.is_text())
                .filter_map(|t| t.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

fn mib(v: &Value) -> f64 {
    v.as_u64().unwrap() as f64 / 1048576.0
}

#[test]
fn the_chart_draws_the_plans_bars_and_each_cache_types_curve() {
    let dir = common::tempdir("memory-chart");
    let svg = dir.join("plan.svg");
    let m = common::smollm2();
    // 360M of RAM: an f16 cache fits only part of SmolLM2's 8192 trained tokens (6912).
    let (code, out, err) = layerfit(&[
        "plan",
        "--model",
        m.to_str().unwrap(),
        "--ram",
        "360M",
        "--no-gpu",
        "--ctx",
        "4096",
        "--max-context",
        "--json",
        "--chart",
        svg.to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 10, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let t = texts(&std::fs::read_to_string(&svg).unwrap());
    // One bar per device, its figures the plan's.
    for dev in d["plan"]["devices"].as_array().unwrap() {
        let label = format!(
            "{}: {:.0}% of {:.0} MiB (weights {:.1}, KV cache {:.1}, compute {:.1} MiB)",
            dev["device"].as_str().unwrap(),
            100.0 * mib(&dev["total_bytes"]) / mib(&dev["budget_bytes"]),
            mib(&dev["budget_bytes"]),
            mib(&dev["weights_bytes"]),
            mib(&dev["kv_bytes"]),
            mib(&dev["compute_bytes"]),
        );
        assert!(t.contains(&label), "{label} not in {t:?}");
    }
    for legend in ["weights", "KV cache", "compute", "budget"] {
        assert!(t.iter().any(|x| x == legend), "{legend}: {t:?}");
    }
    // Per cache type a curve, and the largest context that fits marked, as --max-context.
    let budget = mib(&d["plan"]["devices"][0]["budget_bytes"]);
    assert!(
        t.contains(&format!("budget of CPU: {budget:.0} MiB")),
        "{t:?}"
    );
    let max = &d["max_context"];
    for kv in ["f16", "q8_0", "q4_0"] {
        assert!(t.contains(&format!("{kv} cache")), "{kv}: {t:?}");
        let n = max[kv].as_u64().unwrap();
        assert!(
            t.contains(&format!("{kv}: fits up to {n} tokens")),
            "{kv} {n}: {t:?}"
        );
    }
    assert!(max["f16"].as_u64() < Some(8192), "{max}");
    // The curves and the budget line are lines.
    let doc = std::fs::read_to_string(&svg).unwrap();
    let xml = roxmltree::Document::parse(&doc).unwrap();
    let polylines = xml
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(polylines >= 5, "{polylines}");
}

#[test]
fn the_report_draws_each_budget_in_plain_text_off_a_terminal() {
    let m = common::smollm2();
    let (code, out, err) = layerfit(&[
        "plan",
        "--model",
        m.to_str().unwrap(),
        "--ram",
        "360M",
        "--no-gpu",
        "--ctx",
        "4096",
    ]);
    assert!(code == 0 || code == 10, "{err}");
    let bar = out
        .lines()
        .find(|l| l.starts_with("CPU ["))
        .unwrap_or_else(|| panic!("no bar:\n{out}"));
    let inside = &bar[bar.find('[').unwrap() + 1..bar.find(']').unwrap()];
    assert_eq!(inside.chars().count(), 40);
    assert!(inside.chars().all(|c| "#=+.|".contains(c)), "{bar}");
    // Weights, then KV cache, then compute, then free, in that order.
    let order: String = inside.chars().fold(String::new(), |mut s, c| {
        if !s.ends_with(c) {
            s.push(c);
        }
        s
    });
    assert_eq!(order, "#=+.", "{bar}");
    assert!(out.lines().any(|l| l.starts_with("# weights  = KV cache")));
}

#[test]
fn a_chart_that_cannot_be_written_is_one_error_line() {
    let m = common::smollm2();
    let (code, _, err) = layerfit(&[
        "plan",
        "--model",
        m.to_str().unwrap(),
        "--ctx",
        "4096",
        "--chart",
        "/nonexistent-dir/plan.svg",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("cannot draw /nonexistent-dir/plan.svg"),
        "{err}"
    );
}
