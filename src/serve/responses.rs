//! `POST /v1/responses`, stateless, as llama-server and Ollama offer it: the request (input
//! text or items, instructions, function tools, text format) becomes a chat request and goes
//! the same way (template, grammar, engine, parser); the answer comes back as a Response
//! object, or streamed as its events. Nothing is stored: `store: true`,
//! `previous_response_id` and `conversation` are refused with a 400 that names them.

use super::answer::{collect, Reader};
use super::handlers::{banner, body, error, rand_id, sse, submit};
use super::openai::{self, ApiError, Usage};
use super::prepare::prepare;
use super::request::{self, message_content};
use super::responses_out::{output_items, EventStream, Head};
use super::App;
use crate::engine::batch::FinishReason;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

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
    Json(head.response(status, output, Some(&Usage::of(&f)), Some(f.reason))).into_response()
}
