//! OpenAI's chat completions and completions requests, checked: every field is one layerfit
//! honours (read into [`Request`]) or one it refuses with a 400 that names it; a field
//! OpenAI does not define is refused too, apart from the vendor extensions listed in
//! [`EXTENSIONS`]. docs/serve.md has the table. Pure: no engine, no sockets.

pub use super::messages::{
    content_with_images, message_content, ChatMessage, ToolChoice, IMAGE_MARKER,
};
use super::messages::{message, tool_choice, tools, Images};
use super::openai::ApiError;
pub use crate::engine::session::chat::{Message, Role};
use serde_json::{Map, Value};

/// Vendor extensions (llama-server's names) accepted beside OpenAI's fields.
pub const EXTENSIONS: &[&str] = &["top_k", "min_p"];

/// Fields OpenAI defines that layerfit refuses, with why (the 400's message).
const REFUSED: &[(&str, &str)] = &[
    ("audio", "audio output is not available"),
    (
        "function_call",
        "the deprecated functions API is not served; use tools and tool_choice",
    ),
    (
        "functions",
        "the deprecated functions API is not served; use tools and tool_choice",
    ),
    (
        "metadata",
        "nothing is stored, so metadata has nowhere to go",
    ),
    ("prediction", "predicted outputs are not available"),
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
    ("verbosity", "verbosity is not available"),
    ("web_search_options", "web search is not available"),
    ("suffix", "suffix (insertion) is not available"),
];

/// What a request asks for, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub model: Option<String>,
    /// Chat: the messages. Completion: empty.
    pub messages: Vec<ChatMessage>,
    /// Completion: the prompt text.
    pub prompt: Option<String>,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage and no choices.
    pub include_usage: bool,
    /// `None`: until the context is full.
    pub max_tokens: Option<u32>,
    pub temperature: f32,
    pub seed: Option<u32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i32>,
    pub min_p: Option<f32>,
    pub presence_penalty: f32,
    pub frequency_penalty: f32,
    /// (token id, bias).
    pub logit_bias: Vec<(i32, f32)>,
    pub stop: Vec<String>,
    /// Report log-probabilities, with this many alternatives per token.
    pub logprobs: Option<u32>,
    /// Function tools, in OpenAI's chat shape (`{"type": "function", "function": {..}}`).
    pub tools: Vec<Value>,
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: Option<bool>,
    /// `response_format`: a JSON schema the answer must follow (`{}`: any JSON object).
    pub json_schema: Option<Value>,
    /// Completion: the prompt comes back before the answer.
    pub echo: bool,
    /// `reasoning_effort`, for templates that think (`none` turns thinking off).
    pub reasoning_effort: Option<String>,
    /// Chat: the images of `image_url` parts, in order; each stands at an `IMAGE_MARKER` in
    /// its message's text.
    pub images: Vec<Vec<u8>>,
    /// Where the first image part is (`messages[0].content[1].type`), for a refusal that
    /// names it on a server without a projector.
    pub first_image_at: Option<String>,
}

impl Request {
    /// The messages' roles and texts: what a template without llama.cpp's chat layer, or
    /// plain text, reads.
    pub fn chat(&self) -> Vec<Message> {
        self.messages.iter().map(ChatMessage::message).collect()
    }

    /// Whether the model's answer is read for tool calls.
    pub fn wants_tools(&self) -> bool {
        !self.tools.is_empty() && self.tool_choice != ToolChoice::None
    }
}

pub(super) fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad("invalid_value", format!("{field}: {why}")).param(field)
}

pub(super) fn unsupported(field: &str, why: &str) -> ApiError {
    ApiError::bad(
        "unsupported_parameter",
        format!("{field} is not supported: {why}"),
    )
    .param(field)
}

/// `body[field]` as a number within `lo..=hi` (absent or null: `None`).
pub(super) fn number(
    body: &Map<String, Value>,
    field: &str,
    lo: f64,
    hi: f64,
) -> Result<Option<f64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(Some(x)),
            _ => Err(bad(field, format!("must be a number from {lo} to {hi}"))),
        },
    }
}

pub(super) fn boolean(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(field, "must be true or false")),
    }
}

pub(super) fn string<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(field, "must be a string")),
    }
}

/// `response_format`: `text` (nothing), `json_object` (any object) or `json_schema`.
fn response_format(v: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match v["type"].as_str() {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(serde_json::json!({"type": "object"}))),
        Some("json_schema") => match v["json_schema"].get("schema") {
            Some(s) if s.is_object() => Ok(Some(s.clone())),
            None => Ok(Some(serde_json::json!({"type": "object"}))),
            Some(_) => Err(bad(
                "response_format.json_schema.schema",
                "must be an object",
            )),
        },
        _ => Err(bad(
            "response_format",
            "type must be text, json_object or json_schema",
        )),
    }
}

/// A request body as a JSON object (400 `invalid_json` otherwise).
pub fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(
            "invalid_json",
            format!("the request body is not valid JSON for this endpoint: {e}"),
        )
    })?;
    let Value::Object(body) = v else {
        return Err(ApiError::bad(
            "invalid_json",
            "the request body must be a JSON object",
        ));
    };
    Ok(body)
}

/// Parses a chat (`chat == true`) or completion request body.
pub fn parse(body: &[u8], chat: bool) -> Result<Request, ApiError> {
    let body = object(body)?;
    let fields: &[&str] = if chat {
        &[
            "model",
            "messages",
            "stream",
            "stream_options",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "seed",
            "stop",
            "n",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "store",
            "modalities",
            "service_tier",
            "reasoning_effort",
        ]
    } else {
        &[
            "model",
            "prompt",
            "stream",
            "stream_options",
            "max_tokens",
            "temperature",
            "top_p",
            "seed",
            "stop",
            "n",
            "best_of",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "logprobs",
            "echo",
        ]
    };
    for key in body.keys() {
        let k = key.as_str();
        if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == k) {
            if !(k == "suffix" && body[k].as_str().is_some_and(str::is_empty)) {
                return Err(unsupported(k, why));
            }
        } else if !fields.contains(&k) && !EXTENSIONS.contains(&k) {
            return Err(ApiError::bad("unknown_parameter", format!("{k}: unknown field")).param(k));
        }
    }
    check_refusable(&body)?;
    let max = body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .map(|v| ("max_completion_tokens", v))
        .or(body
            .get("max_tokens")
            .filter(|v| !v.is_null())
            .map(|v| ("max_tokens", v)));
    let max_tokens = match max {
        None => None,
        Some((f, v)) => match v.as_i64() {
            Some(m) if m >= 1 && m <= u32::MAX as i64 => Some(m as u32),
            _ => {
                return Err(
                    ApiError::bad("invalid_max_tokens", format!("{f} must be at least 1")).param(f),
                )
            }
        },
    };
    let temperature = number(&body, "temperature", 0.0, 2.0)?.unwrap_or(1.0) as f32;
    let stop = match body.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Some(_) => return Err(bad("stop", "a string or an array of strings")),
    };
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(
            ApiError::bad("invalid_stop", "stop takes up to 4 non-empty strings").param("stop"),
        );
    }
    let logit_bias = match body.get("logit_bias") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, b)| match (k.parse::<i32>(), b.as_f64()) {
                (Ok(t), Some(b)) if t >= 0 && (-100.0..=100.0).contains(&b) => Ok((t, b as f32)),
                _ => Err(bad(
                    "logit_bias",
                    "token ids mapped to numbers from -100 to 100",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("logit_bias", "an object of token ids")),
    };
    let logprobs = if chat {
        let top = number(&body, "top_logprobs", 0.0, 20.0)?;
        match boolean(&body, "logprobs")? {
            Some(true) => Some(top.unwrap_or(0.0) as u32),
            _ if top.is_some() => return Err(bad("top_logprobs", "needs logprobs: true")),
            _ => None,
        }
    } else {
        number(&body, "logprobs", 0.0, 5.0)?.map(|n| n as u32)
    };
    let stream = boolean(&body, "stream")?.unwrap_or(false);
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => {
            if !stream {
                return Err(bad("stream_options", "only with stream: true"));
            }
            if o.get("include_obfuscation").and_then(Value::as_bool) == Some(true) {
                return Err(unsupported(
                    "stream_options.include_obfuscation",
                    "chunks are not padded",
                ));
            }
            if let Some(k) = o
                .keys()
                .find(|k| !matches!(k.as_str(), "include_usage" | "include_obfuscation"))
            {
                return Err(bad(&format!("stream_options.{k}"), "unknown field"));
            }
            o.get("include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        }
        Some(_) => return Err(bad("stream_options", "must be an object")),
    };
    let tools = tools(body.get("tools"))?;
    let mut req = Request {
        model: string(&body, "model")?.map(str::to_string),
        messages: Vec::new(),
        prompt: None,
        stream,
        include_usage,
        max_tokens,
        temperature,
        seed: number(&body, "seed", i64::MIN as f64, i64::MAX as f64)?.map(|s| s as i64 as u32),
        top_p: number(&body, "top_p", 0.0, 1.0)?.map(|x| x as f32),
        top_k: number(&body, "top_k", 0.0, 1e6)?.map(|x| x as i32),
        min_p: number(&body, "min_p", 0.0, 1.0)?.map(|x| x as f32),
        presence_penalty: number(&body, "presence_penalty", -2.0, 2.0)?.unwrap_or(0.0) as f32,
        frequency_penalty: number(&body, "frequency_penalty", -2.0, 2.0)?.unwrap_or(0.0) as f32,
        logit_bias,
        stop,
        logprobs,
        tool_choice: tool_choice(body.get("tool_choice"), &tools)?,
        tools,
        parallel_tool_calls: boolean(&body, "parallel_tool_calls")?,
        json_schema: response_format(body.get("response_format"))?,
        echo: boolean(&body, "echo")?.unwrap_or(false),
        reasoning_effort: string(&body, "reasoning_effort")?.map(str::to_string),
        images: Vec::new(),
        first_image_at: None,
    };
    if chat {
        let msgs = body
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::bad("missing_messages", "messages must be a non-empty array")
                    .param("messages")
            })?;
        let mut images = Images::default();
        req.messages = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| message(m, i, &mut images))
            .collect::<Result<_, _>>()?;
        req.images = images.bytes;
        req.first_image_at = images.first_at;
    } else {
        req.prompt = Some(match body.get("prompt") {
            Some(Value::String(p)) => p.clone(),
            Some(Value::Array(v)) if v.len() == 1 && v[0].is_string() => {
                v[0].as_str().unwrap_or_default().to_string()
            }
            _ => {
                return Err(
                    ApiError::bad("invalid_prompt", "prompt must be a string").param("prompt")
                )
            }
        });
    }
    Ok(req)
}

/// The fields OpenAI defines that layerfit takes in one value only.
fn check_refusable(body: &Map<String, Value>) -> Result<(), ApiError> {
    for f in ["n", "best_of"] {
        if let Some(n) = body.get(f).filter(|v| !v.is_null()) {
            if n.as_i64() != Some(1) {
                return Err(unsupported(
                    f,
                    "one answer per request (n = 1); send the request again for another",
                ));
            }
        }
    }
    if boolean(body, "store")? == Some(true) {
        return Err(unsupported("store", "nothing is stored (store: false)"));
    }
    if let Some(m) = body.get("modalities").filter(|v| !v.is_null()) {
        if m.as_array().is_none_or(|a| a.iter().any(|x| x != "text")) {
            return Err(unsupported("modalities", "text only"));
        }
    }
    if let Some(t) = string(body, "service_tier")? {
        if !matches!(t, "auto" | "default") {
            return Err(unsupported("service_tier", "one tier (auto or default)"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
