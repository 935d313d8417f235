//! `POST /v1/responses`, stateless, as llama-server and Ollama offer it: the request (input
//! text or items, instructions, function tools, text format) becomes a chat request and goes
//! the same way (template, grammar, engine, parser); the answer comes back as a Response
//! object, or streamed as its events. Nothing is stored: `store: true`,
//! `previous_response_id` and `conversation` are refused with a 400 that names them.

use super::answer::{collect, Reader};
use super::handlers::{banner, body, error, rand_id, sse, submit, CancelOnDrop, Steps};
use super::openai::{self, ApiError, Delta, Output};
use super::prepare::prepare;
use super::request::{self, message_content};
use super::App;
use crate::engine::batch::{Event, FinishReason};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedReceiver;

/// Responses fields read, beside those that map onto chat fields one to one.
const FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "stream",
    "stream_options",
    "text",
    "store",
    "reasoning",
    "truncation",
    "include",
    "background",
    "service_tier",
];

/// Responses fields refused, with why.
const REFUSED: &[(&str, &str)] = &[
    (
        "previous_response_id",
        "responses are not stored: send the whole conversation as input",
    ),
    (
        "conversation",
        "conversations are not stored: send the whole conversation as input",
    ),
    ("prompt", "stored prompt templates are not available"),
    (
        "metadata",
        "nothing is stored, so metadata has nowhere to go",
    ),
    (
        "max_tool_calls",
        "the number of tool calls is not limited here",
    ),
    (
        "top_logprobs",
        "log-probabilities are served by /v1/chat/completions",
    ),
    ("prompt_cache_key", "prompt caching takes no key here"),
    (
        "prompt_cache_retention",
        "prompt caching takes no retention here",
    ),
    (
        "safety_identifier",
        "no safety system reads an identifier here",
    ),
    ("user", "no end-user identifier is read here"),
];

fn unsupported(field: &str, why: &str) -> ApiError {
    ApiError::bad(
        "unsupported_parameter",
        format!("{field} is not supported: {why}"),
    )
    .param(field)
}

fn bad(field: &str, why: &str) -> ApiError {
    ApiError::bad("invalid_value", format!("{field}: {why}")).param(field)
}

/// The input items as chat messages: messages (text parts), function calls (joined into the
/// assistant message before them) and their outputs (tool messages).
fn messages(input: &Value, instructions: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let mut out: Vec<Value> = Vec::new();
    if let Some(i) = instructions {
        out.push(json!({"role": "system", "content": i}));
    }
    let items = match input {
        Value::String(s) => return Ok([out, vec![json!({"role": "user", "content": s})]].concat()),
        Value::Array(a) => a,
        _ => return Err(bad("input", "a string or an array of items")),
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("input[{i}]");
        match item["type"].as_str().unwrap_or("message") {
            "message" => {
                let role = item["role"].as_str().unwrap_or("");
                let content = message_content(item.get("content"), &at)?;
                out.push(json!({"role": role, "content": content}));
            }
            "function_call" => {
                let call = json!({"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}});
                match out.last_mut() {
                    Some(m) if m["role"] == "assistant" => {
                        if !m["tool_calls"].is_array() {
                            m["tool_calls"] = json!([]);
                        }
                        if let Some(a) = m["tool_calls"].as_array_mut() {
                            a.push(call);
                        }
                    }
                    _ => {
                        out.push(json!({"role": "assistant", "content": "", "tool_calls": [call]}))
                    }
                }
            }
            "function_call_output" => {
                let output = match &item["output"] {
                    Value::String(s) => s.clone(),
                    o => message_content(Some(o), &at)?,
                };
                out.push(
                    json!({"role": "tool", "tool_call_id": item["call_id"], "content": output}),
                );
            }
            other => {
                return Err(unsupported(
                    &format!("{at}.type"),
                    &format!("input items of type '{other}' are not read"),
                ))
            }
        }
    }
    Ok(out)
}

/// A Responses request as the chat request it asks for (then checked by `request::parse`).
fn to_chat(body: &Map<String, Value>) -> Result<Value, ApiError> {
    for key in body.keys() {
        let k = key.as_str();
        if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == k) {
            if !body[k].is_null() {
                return Err(unsupported(k, why));
            }
        } else if !FIELDS.contains(&k) && !request::EXTENSIONS.contains(&k) && k != "seed" {
            return Err(ApiError::bad("unknown_parameter", format!("{k}: unknown field")).param(k));
        }
    }
    if body.get("store").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(
            "store",
            "responses are not stored (store: false)",
        ));
    }
    if body.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported(
            "background",
            "answers are not kept to fetch later",
        ));
    }
    if body
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Err(unsupported("include", "no extra output is available"));
    }
    if body
        .get("truncation")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "disabled")
    {
        return Err(unsupported(
            "truncation",
            "a prompt longer than the context gets a 400 (disabled)",
        ));
    }
    let input = body
        .get("input")
        .ok_or_else(|| bad("input", "is required"))?;
    let instructions = body.get("instructions").and_then(Value::as_str);
    let mut chat = Map::new();
    chat.insert("messages".into(), messages(input, instructions)?.into());
    for (from, to) in [
        ("model", "model"),
        ("max_output_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("parallel_tool_calls", "parallel_tool_calls"),
        ("stream", "stream"),
        ("service_tier", "service_tier"),
        ("top_k", "top_k"),
        ("min_p", "min_p"),
        ("seed", "seed"),
    ] {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            chat.insert(to.into(), v.clone());
        }
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array) {
        let mut list = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            if t["type"] != "function" {
                return Err(unsupported(
                    &format!("tools[{i}].type"),
                    "only function tools are served",
                ));
            }
            let mut f = json!({"name": t["name"], "parameters": t["parameters"]});
            if let Some(d) = t.get("description") {
                f["description"] = d.clone();
            }
            list.push(json!({"type": "function", "function": f}));
        }
        chat.insert("tools".into(), list.into());
    }
    if let Some(c) = body.get("tool_choice").filter(|v| !v.is_null()) {
        let c = match c {
            Value::String(_) => c.clone(),
            o if o["type"] == "function" => {
                json!({"type": "function", "function": {"name": o["name"]}})
            }
            _ => {
                return Err(unsupported(
                    "tool_choice",
                    "auto, none, required or a function",
                ))
            }
        };
        chat.insert("tool_choice".into(), c);
    }
    if let Some(f) = body
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| !v.is_null())
    {
        let rf = match f["type"].as_str() {
            Some("json_schema") => {
                json!({"type": "json_schema", "json_schema": {"name": f["name"], "schema": f["schema"]}})
            }
            Some(t @ ("text" | "json_object")) => json!({ "type": t }),
            _ => {
                return Err(bad(
                    "text.format",
                    "type must be text, json_object or json_schema",
                ))
            }
        };
        chat.insert("response_format".into(), rf);
    }
    if let Some(e) = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|v| !v.is_null())
    {
        chat.insert("reasoning_effort".into(), e.clone());
    }
    Ok(Value::Object(chat))
}

/// What a Response object says besides its output.
struct Head {
    id: String,
    created: u64,
    model: String,
    echo: Map<String, Value>,
    ext: Value,
}

impl Head {
    fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<(u32, u32)>,
        reason: Option<FinishReason>,
    ) -> Value {
        let mut r = json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "model": self.model, "output": output, "error": null,
            "incomplete_details": match reason {
                Some(FinishReason::Length) => json!({"reason": "max_output_tokens"}),
                Some(FinishReason::Shutdown) => json!({"reason": "shutdown"}),
                _ => Value::Null,
            },
            "usage": usage.map(|(i, o)| json!({
                "input_tokens": i, "output_tokens": o, "total_tokens": i + o,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            })),
            "store": false, "previous_response_id": null, "metadata": {},
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
            "text": {"format": {"type": "text"}}, "layerfit": self.ext,
        });
        for (k, v) in &self.echo {
            r[k] = v.clone();
        }
        r
    }
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

fn call_item(c: &Value, status: &str) -> Value {
    json!({"type": "function_call", "id": format!("fc_{}", c["id"].as_str().unwrap_or("")),
           "call_id": c["id"], "name": c["name"], "arguments": c["arguments"], "status": status})
}

/// The output items of a whole answer: its text as a message, then its function calls.
fn output_items(out: &Output, msg_id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    if !out.content.is_empty() || out.tool_calls.is_empty() {
        items.push(message_item(msg_id, &out.content, "completed"));
    }
    items.extend(out.tool_calls.iter().map(|c| call_item(c, "completed")));
    items
}

pub(super) async fn responses(State(app): State<Arc<App>>, req: Request) -> Response {
    let bytes = match body(&app, req).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let parsed: Result<Map<String, Value>, ApiError> =
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad(
                "invalid_json",
                format!("the request body is not a JSON object: {e}"),
            )
        });
    let body = match parsed {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let r = match to_chat(&body).and_then(|c| request::parse(c.to_string().as_bytes(), true)) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let p = match prepare(&app, &r, true) {
        Ok(p) => p,
        Err(e) => return error(&e),
    };
    let (mut rx, mut guard, _) = match submit(&app, &p, r.max_tokens) {
        Ok(x) => x,
        Err(e) => return error(&e),
    };
    let echo: Map<String, Value> = [
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
    ]
    .iter()
    .filter_map(|k| body.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    let head = Head {
        id: format!("resp_{:x}", rand_id()),
        created: super::now(),
        model: r
            .model
            .clone()
            .unwrap_or_else(|| app.settings.model_name.clone()),
        echo,
        ext: openai::extension(
            &app.settings.degraded,
            app.alert().as_deref(),
            app.settings.base_model,
            p.plain,
        ),
    };
    let reader = Reader::new(&p, r.wants_tools(), false, banner(&app));
    let msg_id = format!("msg_{:x}", rand_id());
    if r.stream {
        return sse(EventStream {
            rx,
            guard,
            reader,
            head,
            msg_id,
            seq: 0,
            started: false,
            text: None,
            calls: Vec::new(),
            done: false,
        });
    }
    let (out, f) = match collect(&mut rx, reader).await {
        Ok(x) => x,
        Err(e) => return error(&e),
    };
    guard.ended();
    let status = if f.reason == FinishReason::Stop {
        "completed"
    } else {
        "incomplete"
    };
    let output = output_items(&out, &msg_id);
    Json(head.response(
        status,
        output,
        Some((f.prompt_tokens, f.completion_tokens)),
        Some(f.reason),
    ))
    .into_response()
}

/// A Response streamed as its events: `response.created`, then each output item added, its
/// text or arguments in deltas, done; then `response.completed` with the whole Response.
struct EventStream {
    rx: UnboundedReceiver<Event>,
    guard: CancelOnDrop,
    reader: Reader,
    head: Head,
    msg_id: String,
    seq: u64,
    started: bool,
    /// The message item's output index and text, while it is open.
    text: Option<(usize, String)>,
    /// The function calls: output index, `{"id", "name", "arguments"}`.
    calls: Vec<(usize, Value)>,
    done: bool,
}

type Out = Vec<(Option<&'static str>, String)>;

impl EventStream {
    fn emit(&mut self, out: &mut Out, kind: &'static str, mut v: Value) {
        v["type"] = kind.into();
        v["sequence_number"] = self.seq.into();
        self.seq += 1;
        out.push((Some(kind), v.to_string()));
    }

    fn n_items(&self) -> usize {
        self.calls.len() + usize::from(self.text.is_some())
    }

    fn close_text(&mut self, out: &mut Out) {
        let Some((i, text)) = self.text.clone() else {
            return;
        };
        let id = self.msg_id.clone();
        let part = json!({"type": "output_text", "text": text, "annotations": []});
        self.emit(out, "response.output_text.done", json!({"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []}));
        self.emit(
            out,
            "response.content_part.done",
            json!({"item_id": id, "output_index": i, "content_index": 0, "part": part}),
        );
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": i, "item": message_item(&id, &text, "completed")}),
        );
    }

    fn delta(&mut self, out: &mut Out, d: Delta) {
        if let Some(t) = d.content.filter(|t| !t.is_empty()) {
            if self.text.is_none() {
                let i = self.n_items();
                let id = self.msg_id.clone();
                let mut item = message_item(&id, "", "in_progress");
                item["content"] = json!([]);
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": i, "item": item}),
                );
                self.emit(out, "response.content_part.added", json!({"item_id": id, "output_index": i, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
                self.text = Some((i, String::new()));
            }
            if let Some((i, text)) = &mut self.text {
                text.push_str(&t);
                let i = *i;
                let id = self.msg_id.clone();
                self.emit(out, "response.output_text.delta", json!({"item_id": id, "output_index": i, "content_index": 0, "delta": t, "logprobs": []}));
            }
        }
        for c in d.tool_calls {
            let f = &c["function"];
            if let Some(id) = c["id"].as_str() {
                let i = self.n_items();
                let call = json!({"id": id, "name": f["name"], "arguments": ""});
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": i, "item": call_item(&call, "in_progress")}),
                );
                self.calls.push((i, call));
            }
            let args = f["arguments"].as_str().unwrap_or_default().to_string();
            let Some((i, call)) = self.calls.last_mut() else {
                continue;
            };
            if args.is_empty() {
                continue;
            }
            let i = *i;
            let whole = format!("{}{args}", call["arguments"].as_str().unwrap_or_default());
            call["arguments"] = whole.into();
            let item_id = format!("fc_{}", call["id"].as_str().unwrap_or(""));
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": item_id, "output_index": i, "delta": args}),
            );
        }
    }

    fn end(&mut self, out: &mut Out, reason: FinishReason, usage: (u32, u32)) {
        self.close_text(out);
        let mut items: Vec<(usize, Value)> = Vec::new();
        if let Some((i, t)) = &self.text {
            items.push((*i, message_item(&self.msg_id, t, "completed")));
        }
        for (i, c) in self.calls.clone() {
            let item = call_item(&c, "completed");
            self.emit(out, "response.function_call_arguments.done", json!({"item_id": item["id"], "output_index": i, "name": c["name"], "arguments": c["arguments"]}));
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": i, "item": item}),
            );
            items.push((i, item));
        }
        items.sort_by_key(|x| x.0);
        let status = if reason == FinishReason::Stop {
            "completed"
        } else {
            "incomplete"
        };
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        let r = self.head.response(
            status,
            items.into_iter().map(|x| x.1).collect(),
            Some(usage),
            Some(reason),
        );
        self.emit(out, kind, json!({ "response": r }));
    }
}

impl Steps for EventStream {
    async fn step(&mut self) -> Option<Out> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            let r = self.head.response("in_progress", Vec::new(), None, None);
            self.emit(
                &mut out,
                "response.created",
                json!({ "response": r.clone() }),
            );
            self.emit(&mut out, "response.in_progress", json!({ "response": r }));
            let prefix = self.reader.take_prefix();
            self.delta(
                &mut out,
                Delta {
                    content: Some(prefix),
                    ..Delta::default()
                },
            );
            return Some(out);
        }
        loop {
            match self.rx.recv().await {
                Some(Event::Text(t)) => {
                    for d in self.reader.push(&t) {
                        self.delta(&mut out, d);
                    }
                    if !out.is_empty() {
                        return Some(out);
                    }
                }
                Some(Event::Logprob(_)) => {}
                Some(Event::Done(f)) => {
                    for d in self.reader.end() {
                        self.delta(&mut out, d);
                    }
                    self.guard.ended();
                    self.done = true;
                    self.end(&mut out, f.reason, (f.prompt_tokens, f.completion_tokens));
                    return Some(out);
                }
                Some(Event::Failed(m)) => {
                    self.guard.ended();
                    self.done = true;
                    self.emit(
                        &mut out,
                        "error",
                        json!({"code": "engine_failed", "message": m, "param": null}),
                    );
                    return Some(out);
                }
                None => {
                    self.done = true;
                    return Some(out);
                }
            }
        }
    }
}
