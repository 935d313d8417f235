//! What the server says about itself: `/health` (slots, queue, degraded mode, memory alert)
//! and `/metrics` (Prometheus text).

use super::App;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

type St = State<Arc<App>>;

fn queued(app: &App) -> u64 {
    let s = &app.stats;
    app.submitted
        .load(Ordering::Relaxed)
        .saturating_sub(s.requests.load(Ordering::Relaxed))
}

pub(super) async fn health(State(app): St) -> Response {
    let busy = app.stats.active.load(Ordering::Relaxed);
    Json(json!({
        "status": "ok",
        "slots_idle": u64::from(app.settings.parallel).saturating_sub(busy),
        "slots_processing": busy,
        "requests_queued": queued(&app),
        "degraded": !app.settings.degraded.is_empty(),
        "reasons": app.settings.degraded,
        "memory_alert": app.alert(),
    }))
    .into_response()
}

pub(super) async fn metrics(State(app): St) -> Response {
    let s = &app.stats;
    let secs = s.decode_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let rate = if secs > 0.0 {
        s.decode_tokens.load(Ordering::Relaxed) as f64 / secs
    } else {
        0.0
    };
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in lines {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    let one = |v: u64| vec![(String::new(), v.to_string())];
    metric(
        "layerfit_requests_total",
        "counter",
        "Requests the engine took.",
        one(s.requests.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_requests_cancelled_total",
        "counter",
        "Requests whose client went away.",
        one(s.cancelled.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_prompt_tokens_total",
        "counter",
        "Prompt tokens processed.",
        one(s.prompt_tokens.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_generated_tokens_total",
        "counter",
        "Tokens generated.",
        one(s.generated_tokens.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_draft_tokens_total",
        "counter",
        "Tokens the draft model proposed (0 without --draft).",
        one(s.draft_tokens.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_draft_accepted_total",
        "counter",
        "Drafted tokens the model kept.",
        one(s.draft_accepted.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_requests_processing",
        "gauge",
        "Sequences being answered.",
        one(s.active.load(Ordering::Relaxed)),
    );
    metric(
        "layerfit_requests_queued",
        "gauge",
        "Requests waiting for a free sequence.",
        one(queued(&app)),
    );
    metric(
        "layerfit_decode_tokens_per_second",
        "gauge",
        "Tokens generated per second of decoding, all sequences together.",
        vec![(String::new(), format!("{rate:.3}"))],
    );
    let mut mem = Vec::new();
    for (dev, w, kv, c) in &app.settings.planned {
        for (kind, v) in [("weights", w), ("kv_cache", kv), ("compute", c)] {
            mem.push((
                format!("{{device=\"{dev}\",kind=\"{kind}\"}}"),
                v.to_string(),
            ));
        }
    }
    metric(
        "layerfit_memory_planned_bytes",
        "gauge",
        "Memory the plan gives each device.",
        mem,
    );
    metric(
        "layerfit_process_resident_bytes",
        "gauge",
        "Resident memory of this process.",
        one(crate::engine::monitor::resident_bytes().unwrap_or(0)),
    );
    metric(
        "layerfit_degraded",
        "gauge",
        "1 when the server runs a degraded plan.",
        one(u64::from(!app.settings.degraded.is_empty())),
    );
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}
