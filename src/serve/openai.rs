//! The OpenAI wire format, as far as layerfit serves it: requests parsed with limits and
//! checked into plain settings, responses and stream chunks built, errors as OpenAI's error
//! objects. Pure: no engine, no sockets.

use serde::Deserialize;
use serde_json::{json, Value};

/// An OpenAI-style error: HTTP status, `type`, `code`, message.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            code,
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}})
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<ImageUrl>,
}

#[derive(Deserialize)]
struct ImageUrl {
    url: String,
}

/// The text that stands for an image in a prompt: llama.cpp's `mtmd_default_marker()`.
pub const IMAGE_MARKER: &str = "<__media__>";

/// The most bytes one image may have, decoded.
pub const MAX_IMAGE_BYTES: usize = 32 << 20;

/// An `image_url` part's image: a `data:` URL with base64 content (the server fetches no
/// URL: a remote one would let a client make it reach any host).
fn image_bytes(url: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    let bad = |m: &str| ApiError::bad("invalid_image_url", m.to_string());
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(bad(
            "image_url must be a data URL (data:image/png;base64,...): this server fetches no URLs",
        ));
    };
    let (head, data) = rest
        .split_once(',')
        .ok_or_else(|| bad("the data URL has no ',' before its data"))?;
    if !head.ends_with(";base64") {
        return Err(bad(
            "the data URL must be base64 (data:image/png;base64,...)",
        ));
    }
    if data.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
        return Err(bad("the image is larger than 32 MiB"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| bad(&format!("the data URL's base64 does not decode: {e}")))
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    prompt: Option<Prompt>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    n: Option<i64>,
}

/// What a request asks for, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub model: Option<String>,
    /// Chat: (role, text) pairs. Completion: empty.
    pub messages: Vec<(String, String)>,
    /// Completion: the prompt text.
    pub prompt: Option<String>,
    pub stream: bool,
    /// `None`: until the context is full.
    pub max_tokens: Option<u32>,
    pub temperature: f32,
    pub seed: u32,
    pub stop: Vec<String>,
    /// Chat: the images of `image_url` parts, in order; each stands at an `IMAGE_MARKER` in
    /// its message's text.
    pub images: Vec<Vec<u8>>,
}

/// Parses a chat (`chat == true`) or completion request body.
pub fn parse(body: &[u8], chat: bool) -> Result<Request, ApiError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(
            "invalid_json",
            format!("the request body is not valid JSON for this endpoint: {e}"),
        )
    })?;
    if raw.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad(
            "unsupported_value",
            "only n = 1 is supported",
        ));
    }
    let max = raw.max_completion_tokens.or(raw.max_tokens);
    if max.is_some_and(|m| m < 1 || m > u32::MAX as i64) {
        return Err(ApiError::bad(
            "invalid_max_tokens",
            "max_tokens must be at least 1",
        ));
    }
    let temperature = raw.temperature.unwrap_or(1.0);
    if !temperature.is_finite() || !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::bad(
            "invalid_temperature",
            "temperature must be from 0 to 2",
        ));
    }
    let stop = match raw.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > 4 || stop.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ApiError::bad(
            "invalid_stop",
            "stop takes up to 4 non-empty strings",
        ));
    }
    let mut req = Request {
        model: raw.model,
        messages: Vec::new(),
        prompt: None,
        stream: raw.stream.unwrap_or(false),
        max_tokens: max.map(|m| m as u32),
        temperature: temperature as f32,
        seed: raw.seed.map_or(42, |s| s as u32),
        stop,
        images: Vec::new(),
    };
    if chat {
        let msgs = raw.messages.filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::bad("missing_messages", "messages must be a non-empty array")
        })?;
        for m in msgs {
            if !matches!(
                m.role.as_str(),
                "system" | "developer" | "user" | "assistant" | "tool"
            ) {
                return Err(ApiError::bad(
                    "invalid_role",
                    format!("unknown role '{}'", m.role),
                ));
            }
            let text = match m.content {
                None => String::new(),
                Some(Content::Text(t)) => t,
                Some(Content::Parts(parts)) => content_text(parts, &mut req.images)?,
            };
            let role = if m.role == "developer" {
                "system".into()
            } else {
                m.role
            };
            req.messages.push((role, text));
        }
    } else {
        req.prompt = Some(match raw.prompt {
            Some(Prompt::One(p)) => p,
            Some(Prompt::Many(mut v)) if v.len() == 1 => v.remove(0),
            _ => return Err(ApiError::bad("invalid_prompt", "prompt must be a string")),
        });
    }
    Ok(req)
}

/// A message's parts as the model reads them: text parts joined, each image part an
/// `IMAGE_MARKER` whose image goes to `images`; any other part is refused, naming it.
fn content_text(parts: Vec<Part>, images: &mut Vec<Vec<u8>>) -> Result<String, ApiError> {
    let mut text = String::new();
    for p in parts {
        match (p.kind.as_str(), p.text, p.image_url) {
            ("text", Some(t), _) => text.push_str(&t),
            ("image_url", _, Some(u)) => {
                images.push(image_bytes(&u.url)?);
                text.push_str(IMAGE_MARKER);
            }
            (kind, _, _) => {
                return Err(ApiError::bad(
                    "unsupported_content",
                    format!(
                        "content parts of type '{kind}' are not supported (text and image_url are)"
                    ),
                ))
            }
        }
    }
    Ok(text)
}

/// The extension every response carries: whether the server runs degraded, and why; whether
/// the model is a base model, and how this request's prompt reached it.
pub fn extension(
    degraded: &[String],
    memory_alert: Option<&str>,
    base_model: bool,
    plain_text: bool,
) -> Value {
    json!({
        "degraded": !degraded.is_empty(), "reasons": degraded, "memory_alert": memory_alert,
        "base_model": base_model, "prompt_format": prompt_format(plain_text),
    })
}

/// `raw` (plain text) or `chat_template`, as `run --json` names them.
pub fn prompt_format(plain_text: bool) -> &'static str {
    if plain_text {
        "raw"
    } else {
        "chat_template"
    }
}

pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// What every response of one request shares: its kind, id, time and model name.
pub struct Answer<'a> {
    pub chat: bool,
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
}

impl Answer<'_> {
    /// The whole (not streamed) answer.
    pub fn response(&self, text: &str, finish: &str, usage: &Usage, ext: Value) -> Value {
        let choice = if self.chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": null})
        } else {
            json!({"index": 0, "text": text, "finish_reason": finish, "logprobs": null})
        };
        json!({
            "id": self.id,
            "object": if self.chat { "chat.completion" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "total_tokens": usage.prompt_tokens + usage.completion_tokens},
            "layerfit": ext,
        })
    }

    /// One streamed chunk: `text` as the delta, the finish reason on the last, the
    /// extension on the first.
    pub fn chunk(
        &self,
        text: Option<&str>,
        first: bool,
        finish: Option<&str>,
        ext: Option<Value>,
    ) -> Value {
        let choice = if self.chat {
            let mut delta = serde_json::Map::new();
            if first {
                delta.insert("role".into(), "assistant".into());
            }
            if let Some(t) = text {
                delta.insert("content".into(), t.into());
            }
            json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null})
        } else {
            json!({"index": 0, "text": text.unwrap_or(""), "finish_reason": finish, "logprobs": null})
        };
        let mut v = json!({
            "id": self.id,
            "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        });
        if let Some(e) = ext {
            v["layerfit"] = e;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_requests() {
        let r = parse(br#"{"model":"x","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":5,"temperature":0,"stop":"\n"}"#, true).unwrap();
        assert_eq!(
            r.messages,
            vec![("system".into(), "s".into()), ("user".into(), "hi".into())]
        );
        assert_eq!(
            (r.max_tokens, r.temperature, r.stop.len()),
            (Some(5), 0.0, 1)
        );
        for bad in [
            &b"{"[..],
            br#"{"messages":[]}"#,
            br#"{"messages":[{"role":"x","content":"a"}]}"#,
            br#"{"messages":[{"role":"user","content":"a"}],"max_tokens":0}"#,
            br#"{"messages":[{"role":"user","content":"a"}],"temperature":9}"#,
        ] {
            let e = parse(bad, true).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.body()["error"]["type"], "invalid_request_error");
        }
    }

    #[test]
    fn the_extension_says_how_the_prompt_reached_the_model() {
        let e = extension(&["no GPU".into()], None, true, true);
        assert_eq!(
            (&e["degraded"], &e["base_model"], &e["prompt_format"]),
            (&json!(true), &json!(true), &json!("raw"))
        );
        let e = extension(&[], Some("RAM at 96%"), false, false);
        assert_eq!(e["prompt_format"], "chat_template");
        assert_eq!(e["memory_alert"], "RAM at 96%");
    }

    #[test]
    fn completion_requests() {
        let r = parse(br#"{"prompt":"Once","stream":true}"#, false).unwrap();
        assert_eq!((r.prompt.as_deref(), r.stream), (Some("Once"), true));
        assert!(parse(br#"{"prompt":["a","b"]}"#, false).is_err());
    }
}
