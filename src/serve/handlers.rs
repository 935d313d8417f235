//! The routes: `/v1/chat/completions`, `/v1/completions` (whole or streamed as server-sent
//! events), `/v1/models`, `/health`, `/metrics`, `/v1/layerfit/plan`; the key check and the
//! degraded-mode header on every response.

use super::openai::{self, ApiError, Usage};
use super::App;
use crate::engine::batch::{Event, FinishReason, Job};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

type St = State<Arc<App>>;

pub(super) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/apply-template", post(apply_template))
        .route("/v1/models", get(models))
        .route("/v1/layerfit/plan", get(plan))
        .route("/metrics", get(super::status::metrics))
        .route("/health", get(super::status::health))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(e.body())).into_response()
}

async fn not_found() -> Response {
    error(&ApiError {
        status: 404,
        kind: "invalid_request_error",
        code: "not_found",
        message: "no such endpoint (see /v1/models, /v1/chat/completions, /v1/completions)".into(),
    })
}

/// The key (for everything but `/health`), then the degraded-mode headers on the answer.
async fn guard(State(app): St, req: Request, next: Next) -> Response {
    let open = req.uri().path() == "/health";
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut resp = if open || app.key_ok(presented) {
        next.run(req).await
    } else {
        error(&ApiError {
            status: 401,
            kind: "authentication_error",
            code: "invalid_api_key",
            message: "a valid API key is needed (Authorization: Bearer KEY)".into(),
        })
    };
    let h = resp.headers_mut();
    let degraded = &app.settings.degraded;
    let value = if degraded.is_empty() {
        "no".to_string()
    } else {
        degraded.join("; ")
    };
    let ascii: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&ascii) {
        h.insert("x-layerfit-degraded", v);
    }
    if let Some(a) = app.alert() {
        let ascii: String = a
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect();
        if let Ok(v) = HeaderValue::from_str(&ascii) {
            h.insert("x-layerfit-memory-alert", v);
        }
    }
    resp
}

async fn chat(State(app): St, req: Request) -> Response {
    complete(app, req, true).await
}

/// The request body, at most `--max-body` bytes (413 past it).
async fn body(app: &App, req: Request) -> Result<axum::body::Bytes, Response> {
    let limit = app.settings.max_body_bytes;
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            error(&ApiError {
                status: 413,
                kind: "invalid_request_error",
                code: "body_too_large",
                message: format!("the request body exceeds {limit} bytes"),
            })
        })
}

/// A chat request's messages as the model reads them: as plain text for a base model
/// (docs/serve.md), else through the model's chat template.
fn chat_text(app: &App, messages: &[(String, String)]) -> Result<String, ApiError> {
    if app.settings.chat_as_plain_text {
        return Ok(crate::engine::session::plain_text(messages));
    }
    app.model
        .0
        .format(messages, true)
        .map_err(|e| ApiError::bad("template_failed", e.to_string()))
}

/// llama-server's `/apply-template`: the chat request's messages as the model will read them
/// (`{"prompt": TEXT}`), nothing generated.
async fn apply_template(State(app): St, req: Request) -> Response {
    let bytes = match body(&app, req).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let r = match openai::parse(&bytes, true) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let text = match chat_text(&app, &r.messages) {
        Ok(t) => t,
        Err(e) => return error(&e),
    };
    axum::Json(serde_json::json!({ "prompt": text })).into_response()
}

async fn completions(State(app): St, req: Request) -> Response {
    complete(app, req, false).await
}

/// Sets the job's cancel flag when dropped: the client went away (the handler's future or
/// the event stream was dropped), so the engine frees the sequence at its next step.
struct CancelOnDrop(Arc<AtomicBool>, bool);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

async fn complete(app: Arc<App>, req: Request, chat: bool) -> Response {
    let bytes = match body(&app, req).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let r = match openai::parse(&bytes, chat) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let model = &app.model.0;
    let plain = !chat || app.settings.chat_as_plain_text;
    let text = if !chat {
        r.prompt.clone().unwrap_or_default()
    } else {
        match chat_text(&app, &r.messages) {
            Ok(t) => t,
            Err(e) => return error(&e),
        }
    };
    if !r.images.is_empty() && !app.settings.vision {
        return error(&ApiError::bad(
            "unsupported_content",
            "this server has no vision projector: start it with --mmproj FILE (or --mmproj auto) to send images",
        ));
    }
    let prompt = model.tokenize(&text, true);
    let ctx = app.n_ctx_seq as usize;
    if prompt.len() >= ctx {
        return error(&ApiError::bad(
            "context_length_exceeded",
            format!(
                "the prompt has {} tokens; the context holds {ctx}",
                prompt.len()
            ),
        ));
    }
    let room = (ctx - prompt.len()) as u32;
    let max_tokens = match r.max_tokens {
        Some(m) if m > room => {
            return error(&ApiError::bad(
                "context_length_exceeded",
                format!(
                    "max_tokens {m} does not fit: the prompt has {} tokens and the context holds {ctx} (at most {room})",
                    prompt.len()
                ),
            ))
        }
        Some(m) => m,
        None => room,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let cancelled = Arc::new(AtomicBool::new(false));
    let job = Job {
        prompt,
        max_tokens,
        temperature: r.temperature,
        seed: r.seed,
        stop: r.stop.clone(),
        cancelled: cancelled.clone(),
        sink: Box::new(move |ev| tx.send(ev).is_ok()),
        media: (!r.images.is_empty()).then(|| crate::engine::batch::media::Media {
            text: text.clone(),
            images: r.images.clone(),
        }),
    };
    let sent = app
        .jobs
        .lock()
        .map(|j| j.send(job).is_ok())
        .unwrap_or(false);
    if !sent {
        return error(&ApiError {
            status: 503,
            kind: "server_error",
            code: "shutting_down",
            message: "the server is shutting down".into(),
        });
    }
    app.submitted.fetch_add(1, Ordering::Relaxed);
    let id = format!("{}-{:x}", if chat { "chatcmpl" } else { "cmpl" }, rand_id());
    let created = super::now();
    let name = r
        .model
        .clone()
        .unwrap_or_else(|| app.settings.model_name.clone());
    let answer = openai::Answer {
        chat,
        id: &id,
        created,
        model: &name,
    };
    let ext = openai::extension(
        &app.settings.degraded,
        app.alert().as_deref(),
        app.settings.base_model,
        plain,
    );
    let banner = (app.settings.banner_in_text && !app.settings.degraded.is_empty())
        .then(|| format!("[DEGRADED MODE: {}]\n", app.settings.degraded.join("; ")));
    let mut guard = CancelOnDrop(cancelled, false);
    if !r.stream {
        let mut out = banner.unwrap_or_default();
        loop {
            match rx.recv().await {
                Some(Event::Text(t)) => out.push_str(&t),
                Some(Event::Done(f)) => {
                    guard.1 = true;
                    let usage = Usage {
                        prompt_tokens: f.prompt_tokens,
                        completion_tokens: f.completion_tokens,
                    };
                    return Json(answer.response(&out, finish(f.reason), &usage, ext))
                        .into_response();
                }
                Some(Event::Failed(m)) => {
                    guard.1 = true;
                    return error(&ApiError {
                        status: 500,
                        kind: "server_error",
                        code: "engine_failed",
                        message: m,
                    });
                }
                None => {
                    return error(&ApiError {
                        status: 503,
                        kind: "server_error",
                        code: "shutting_down",
                        message: "the engine stopped".into(),
                    });
                }
            }
        }
    }
    // Streamed: the first chunk carries the role and the extension, then text deltas, then
    // the finish reason, then `[DONE]`.
    let first = answer.chunk(banner.as_deref().or(Some("")), true, None, Some(ext));
    let head = futures_util::stream::once(async move {
        Ok::<_, std::convert::Infallible>(SseEvent::default().data(first.to_string()))
    });
    let rest = futures_util::stream::unfold(
        (rx, Some(guard), id, name),
        move |(mut rx, mut guard, id, name)| async move {
            let g = guard.as_mut()?;
            let answer = openai::Answer {
                chat,
                id: &id,
                created,
                model: &name,
            };
            let ev = match rx.recv().await {
                Some(Event::Text(t)) => answer.chunk(Some(&t), false, None, None).to_string(),
                Some(Event::Done(f)) => {
                    g.1 = true;
                    guard = None;
                    let last = answer.chunk(None, false, Some(finish(f.reason)), None);
                    return Some((
                        Ok(SseEvent::default().data(format!("{last}"))),
                        (rx, guard, id, name),
                    ));
                }
                Some(Event::Failed(m)) => {
                    g.1 = true;
                    guard = None;
                    json!({"error": {"message": m, "type": "server_error", "code": "engine_failed"}}).to_string()
                }
                None => return None,
            };
            Some((Ok(SseEvent::default().data(ev)), (rx, guard, id, name)))
        },
    );
    let done = futures_util::stream::once(async { Ok(SseEvent::default().data("[DONE]")) });
    use futures_util::StreamExt;
    Sse::new(head.chain(rest).chain(done)).into_response()
}

fn finish(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Shutdown => "shutdown",
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

async fn models(State(app): St) -> Response {
    Json(json!({"object": "list", "data": [{
        "id": app.settings.model_name, "object": "model", "created": app.started, "owned_by": "layerfit",
        "meta": {
            "n_ctx": app.n_ctx_seq, "parallel": app.settings.parallel,
            "base_model": app.settings.base_model,
            "chat_prompt_format": openai::prompt_format(app.settings.chat_as_plain_text),
        }
    }]}))
    .into_response()
}

async fn plan(State(app): St) -> Response {
    Json(app.settings.plan.clone()).into_response()
}
