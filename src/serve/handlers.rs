//! The routes: `/v1/chat/completions`, `/v1/completions` (whole or streamed as server-sent
//! events), `/v1/embeddings` (serve/embeddings.rs), `/v1/models`, `/health`, `/metrics`, `/v1/layerfit/plan`; the key check and the
//! degraded-mode header on every response.

use super::answer::{collect, Reader};
use super::openai::{self, ApiError, Delta, Usage};
use super::prepare::{prepare, Prepared};
use super::request;
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
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

type St = State<Arc<App>>;

pub(super) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/responses", post(super::responses::responses))
        .route("/apply-template", post(apply_template))
        .route("/v1/embeddings", post(super::embeddings::embeddings))
        .route("/v1/models", get(models))
        .route("/v1/layerfit/plan", get(plan))
        .route("/metrics", get(super::status::metrics))
        .route("/health", get(super::status::health))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

pub(super) fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(e.body())).into_response()
}

async fn not_found() -> Response {
    error(&ApiError {
        status: 404,
        kind: "invalid_request_error",
        code: "not_found",
        message: "no such endpoint (see /v1/models, /v1/chat/completions, /v1/completions, /v1/responses, /v1/embeddings)".into(),
        param: None,
    })
}

/// The endpoints that generate text, which an embedding server refuses.
const GENERATION: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/apply-template",
];

/// The key (for everything but `/health`), then the degraded-mode headers on the answer.
async fn guard(State(app): St, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let open = path == "/health";
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let mut resp = if open || app.key_ok(presented) {
        if app.embed_jobs.is_some() && GENERATION.contains(&path.as_str()) {
            error(&super::embeddings::wrong_mode(true, &path))
        } else {
            next.run(req).await
        }
    } else {
        error(&ApiError {
            status: 401,
            kind: "authentication_error",
            code: "invalid_api_key",
            message: "a valid API key is needed (Authorization: Bearer KEY)".into(),
            param: None,
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
pub(super) async fn body(app: &App, req: Request) -> Result<axum::body::Bytes, Response> {
    let limit = app.settings.max_body_bytes;
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            error(&ApiError {
                status: 413,
                kind: "invalid_request_error",
                code: "body_too_large",
                message: format!("the request body exceeds {limit} bytes"),
                param: None,
            })
        })
}

/// llama-server's `/apply-template`: the chat request's messages as the model will read them
/// (`{"prompt": TEXT}`), nothing generated: the text a chat completion of the same request
/// reads, tools and JSON schema included.
async fn apply_template(State(app): St, req: Request) -> Response {
    let bytes = match body(&app, req).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    match request::parse(&bytes, true).and_then(|r| prepare(&app, &r, true)) {
        Ok(p) => Json(json!({ "prompt": p.text })).into_response(),
        Err(e) => error(&e),
    }
}

async fn completions(State(app): St, req: Request) -> Response {
    complete(app, req, false).await
}

/// Sets the job's cancel flag when dropped: the client went away (the handler's future or
/// the event stream was dropped), so the engine frees the sequence at its next step.
pub(super) struct CancelOnDrop(Arc<AtomicBool>, bool);

impl CancelOnDrop {
    /// The answer has ended: nothing to cancel.
    pub(super) fn ended(&mut self) {
        self.1 = true;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// A prepared request sent to the engine: its events, and the guard that cancels it when
/// dropped. `max_tokens` is checked against what the context leaves.
pub(super) fn submit(
    app: &App,
    p: &Prepared,
    max_tokens: Option<u32>,
) -> Result<(UnboundedReceiver<Event>, CancelOnDrop, u32), ApiError> {
    if !p.images.is_empty() && !app.settings.vision {
        let at = p
            .first_image_at
            .clone()
            .unwrap_or_else(|| "messages".into());
        return Err(ApiError::bad(
            "unsupported_parameter",
            format!("{at} is not supported: image_url parts need a vision projector, and this server has none (start it with --mmproj FILE or --mmproj auto)"),
        )
        .param(&at));
    }
    let ctx = app.n_ctx_seq as usize;
    let n = p.tokens.len();
    if n >= ctx {
        return Err(ApiError::bad(
            "context_length_exceeded",
            format!("the prompt has {n} tokens; the context holds {ctx}"),
        ));
    }
    let room = (ctx - n) as u32;
    let max_tokens = match max_tokens {
        Some(m) if m > room => {
            return Err(ApiError::bad(
                "context_length_exceeded",
                format!(
                    "max_tokens {m} does not fit: the prompt has {n} tokens and the context holds {ctx} (at most {room})"
                ),
            )
            .param("max_tokens"))
        }
        Some(m) => m,
        None => room,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let cancelled = Arc::new(AtomicBool::new(false));
    let job = Job {
        prompt: p.tokens.clone(),
        max_tokens,
        sampling: p.sampling.clone(),
        stop: p.stop.clone(),
        cancelled: cancelled.clone(),
        sink: Box::new(move |ev| tx.send(ev).is_ok()),
        media: (!p.images.is_empty()).then(|| crate::engine::batch::media::Media {
            text: p.text.clone(),
            images: p.images.clone(),
        }),
    };
    let sent = app
        .jobs
        .lock()
        .map(|j| j.send(job).is_ok())
        .unwrap_or(false);
    if !sent {
        return Err(ApiError::server(
            503,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    app.submitted.fetch_add(1, Ordering::Relaxed);
    Ok((rx, CancelOnDrop(cancelled, false), n as u32))
}

/// The degraded banner that starts the answer's text with `--banner-in-text`.
pub(super) fn banner(app: &App) -> String {
    if app.settings.banner_in_text && !app.settings.degraded.is_empty() {
        format!("[DEGRADED MODE: {}]\n", app.settings.degraded.join("; "))
    } else {
        String::new()
    }
}

async fn complete(app: Arc<App>, req: Request, chat: bool) -> Response {
    let bytes = match body(&app, req).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let r = match request::parse(&bytes, chat) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let p = match prepare(&app, &r, chat) {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let (mut rx, mut guard, _) = match submit(&app, &p, r.max_tokens) {
        Ok(x) => x,
        Err(e) => return error(&e),
    };
    let id = format!("{}-{:x}", if chat { "chatcmpl" } else { "cmpl" }, rand_id());
    let name = r
        .model
        .clone()
        .unwrap_or_else(|| app.settings.model_name.clone());
    let ext = openai::extension(
        &app.settings.degraded,
        app.alert().as_deref(),
        app.settings.base_model,
        p.plain,
    );
    let mut prefix = banner(&app);
    if r.echo {
        prefix.push_str(&p.text);
    }
    let reader = Reader::new(&p, r.wants_tools(), r.logprobs.is_some(), prefix);
    let created = super::now();
    if r.stream {
        return sse(ChatStream {
            rx,
            guard,
            reader,
            id,
            name,
            created,
            chat,
            include_usage: r.include_usage,
            ext: Some(ext),
            called_tools: false,
            done: false,
        });
    }
    let (out, f) = match collect(&mut rx, reader).await {
        Ok(x) => x,
        Err(e) => return error(&e),
    };
    guard.ended();
    let usage = Usage::of(&f);
    let answer = openai::Answer {
        chat,
        id: &id,
        created,
        model: &name,
        usage_chunks: false,
    };
    Json(answer.response(&out, finish(f.reason), &usage, ext)).into_response()
}

/// Server-sent events from a stream of steps, each some `data:` payloads.
pub(super) fn sse<S: Steps + Send + 'static>(steps: S) -> Response {
    use futures_util::StreamExt;
    let events = futures_util::stream::unfold(steps, |mut s| async move {
        let batch = s.step().await?;
        Some((futures_util::stream::iter(batch), s))
    })
    .flatten()
    .map(|(event, data): (Option<&'static str>, String)| {
        let e = SseEvent::default().data(data);
        Ok::<_, std::convert::Infallible>(match event {
            Some(name) => e.event(name),
            None => e,
        })
    });
    Sse::new(events).into_response()
}

/// A streamed answer, step by step: each step gives the events to send (an event name, or
/// none, and the data), `None` at the end.
pub(super) trait Steps {
    fn step(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Vec<(Option<&'static str>, String)>>> + Send;
}

/// A chat or completion answer as OpenAI streams it: the first chunk carries the role and
/// the extension, then deltas (content, reasoning, tool calls) with the log-probabilities
/// of their tokens, then the finish reason, the usage chunk when asked for, `[DONE]`.
struct ChatStream {
    rx: UnboundedReceiver<Event>,
    guard: CancelOnDrop,
    reader: Reader,
    id: String,
    name: String,
    created: u64,
    chat: bool,
    include_usage: bool,
    /// The extension, until the first chunk carries it.
    ext: Option<Value>,
    called_tools: bool,
    done: bool,
}

impl Steps for ChatStream {
    async fn step(&mut self) -> Option<Vec<(Option<&'static str>, String)>> {
        if self.done {
            return None;
        }
        let answer = openai::Answer {
            chat: self.chat,
            id: &self.id,
            created: self.created,
            model: &self.name,
            usage_chunks: self.include_usage,
        };
        let data = |v: Value| (None, v.to_string());
        if let Some(ext) = self.ext.take() {
            let first = Delta {
                role: true,
                content: Some(self.reader.take_prefix()),
                ..Delta::default()
            };
            return Some(vec![data(answer.chunk(first, None, Some(ext), None))]);
        }
        loop {
            let (deltas, end) = match self.rx.recv().await {
                Some(Event::Text(t)) => (self.reader.push(&t), None),
                Some(Event::Logprob(l)) => {
                    self.reader.logprob(l);
                    continue;
                }
                Some(Event::Done(f)) => (self.reader.end(), Some(f)),
                Some(Event::Failed(m)) => {
                    self.guard.ended();
                    self.done = true;
                    let e = json!({"error": {"message": m, "type": "server_error", "code": "engine_failed"}});
                    return Some(vec![data(e), (None, "[DONE]".into())]);
                }
                None => {
                    self.done = true;
                    return Some(vec![(None, "[DONE]".into())]);
                }
            };
            let mut out = Vec::new();
            for d in deltas {
                self.called_tools |= !d.tool_calls.is_empty();
                let lps = self.reader.take_logprobs();
                out.push(data(answer.chunk(d, None, None, lps.as_deref())));
            }
            let Some(f) = end else {
                if out.is_empty() {
                    continue;
                }
                return Some(out);
            };
            self.guard.ended();
            self.done = true;
            let reason = match finish(f.reason) {
                "stop" if self.called_tools => "tool_calls",
                r => r,
            };
            let lps = self.reader.take_logprobs();
            out.push(data(answer.chunk(
                Delta::default(),
                Some(reason),
                None,
                lps.as_deref(),
            )));
            if self.include_usage {
                let usage = Usage::of(&f);
                out.push(data(answer.usage_chunk(&usage)));
            }
            out.push((None, "[DONE]".into()));
            return Some(out);
        }
    }
}

pub(super) fn finish(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Shutdown => "shutdown",
    }
}

pub(super) fn rand_id() -> u64 {
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
            "serves": if app.embed_jobs.is_some() { "embeddings" } else { "generation" },
            "pooling": app.settings.embeddings.map(|p| p.name()),
            "embedding_dimensions": app.embed_jobs.as_ref().map(|_| app.embed_width),
        }
    }]}))
    .into_response()
}

async fn plan(State(app): St) -> Response {
    Json(app.settings.plan.clone()).into_response()
}
