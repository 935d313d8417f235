//! The OpenAI wire format, as far as layerfit serves it: requests parsed with limits and
//! checked into plain settings, responses and stream chunks built, errors as OpenAI's error
//! objects. Pure: no engine, no sockets.

use crate::engine::batch::TokenLogprob;
use serde_json::{json, Value};

/// An OpenAI-style error: HTTP status, `type`, `code`, message.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: &'static str,
    pub message: String,
    /// The request field at fault.
    pub param: Option<String>,
}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            code,
            message: message.into(),
            param: None,
        }
    }

    /// A server-side error (`server_error`).
    pub fn server(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind: "server_error",
            code,
            message: message.into(),
            param: None,
        }
    }

    /// The same error, naming the field at fault.
    pub fn param(mut self, field: &str) -> ApiError {
        self.param = Some(field.to_string());
        self
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": self.param}})
    }
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
    /// Of the prompt tokens, those read from the cache (a prefix an earlier request left).
    pub cached_tokens: u32,
}

impl Usage {
    pub fn of(f: &crate::engine::batch::Finish) -> Usage {
        Usage {
            prompt_tokens: f.prompt_tokens,
            completion_tokens: f.completion_tokens,
            cached_tokens: f.cached_tokens,
        }
    }

    pub fn json(&self) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
               "total_tokens": self.prompt_tokens + self.completion_tokens,
               "prompt_tokens_details": {"cached_tokens": self.cached_tokens}})
    }
}

/// A whole answer, read: the text, what the chat format took apart from it, the
/// log-probabilities of its tokens (when asked for).
#[derive(Default)]
pub struct Output {
    pub content: String,
    pub reasoning: String,
    /// `{"id", "name", "arguments"}`.
    pub tool_calls: Vec<Value>,
    pub logprobs: Option<Vec<TokenLogprob>>,
}

/// A tool call in OpenAI's chat shape, from the parser's `{"id", "name", "arguments"}`;
/// `index` for a streamed delta.
pub fn tool_call(c: &Value, index: Option<usize>) -> Value {
    let mut v = json!({"id": c["id"], "type": "function",
                       "function": {"name": c["name"], "arguments": c["arguments"]}});
    if let Some(i) = index {
        v["index"] = i.into();
    }
    v
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Chat log-probabilities: `{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}`.
pub fn chat_logprobs(lps: &[TokenLogprob]) -> Value {
    let entry = |t: &[u8], lp: f32| json!({"token": text(t), "logprob": lp, "bytes": t});
    let content: Vec<Value> = lps
        .iter()
        .map(|l| {
            let mut e = entry(&l.token, l.logprob);
            e["top_logprobs"] = l.top.iter().map(|(t, lp)| entry(t, *lp)).collect();
            e
        })
        .collect();
    json!({"content": content, "refusal": null})
}

/// Completion log-probabilities: `{"tokens", "token_logprobs", "top_logprobs",
/// "text_offset"}`, offsets counted from `start` bytes.
pub fn completion_logprobs(lps: &[TokenLogprob], start: usize) -> Value {
    let mut offset = start;
    let mut offsets = Vec::new();
    for l in lps {
        offsets.push(offset);
        offset += l.token.len();
    }
    json!({
        "tokens": lps.iter().map(|l| text(&l.token)).collect::<Vec<_>>(),
        "token_logprobs": lps.iter().map(|l| l.logprob).collect::<Vec<_>>(),
        "top_logprobs": lps.iter().map(|l| {
            l.top.iter().map(|(t, lp)| (text(t), json!(lp))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

/// One streamed chat delta.
#[derive(Default)]
pub struct Delta {
    pub role: bool,
    pub content: Option<String>,
    pub reasoning: Option<String>,
    /// Tool-call deltas in OpenAI's shape (with `index`).
    pub tool_calls: Vec<Value>,
}

/// What every response of one request shares: its kind, id, time and model name.
pub struct Answer<'a> {
    pub chat: bool,
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
    /// Stream chunks carry `"usage": null` (`stream_options.include_usage`).
    pub usage_chunks: bool,
}

impl Answer<'_> {
    /// The whole (not streamed) answer; `finish` becomes `tool_calls` when it called tools.
    pub fn response(&self, out: &Output, finish: &str, usage: &Usage, ext: Value) -> Value {
        let choice = if self.chat {
            let mut msg = json!({"role": "assistant", "content": out.content});
            if !out.tool_calls.is_empty() {
                msg["tool_calls"] = out.tool_calls.iter().map(|c| tool_call(c, None)).collect();
                if out.content.is_empty() {
                    msg["content"] = Value::Null;
                }
            }
            if !out.reasoning.is_empty() {
                msg["reasoning_content"] = out.reasoning.clone().into();
            }
            let finish = if out.tool_calls.is_empty() || finish != "stop" {
                finish
            } else {
                "tool_calls"
            };
            json!({"index": 0, "message": msg, "finish_reason": finish,
                   "logprobs": out.logprobs.as_deref().map(chat_logprobs)})
        } else {
            json!({"index": 0, "text": out.content, "finish_reason": finish,
                   "logprobs": out.logprobs.as_deref().map(|l| completion_logprobs(l, 0))})
        };
        json!({
            "id": self.id,
            "object": if self.chat { "chat.completion" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage.json(),
            "layerfit": ext,
        })
    }

    fn envelope(&self, choices: Value) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.usage_chunks {
            v["usage"] = Value::Null;
        }
        v
    }

    /// One streamed chunk: the delta, the finish reason on the last, the extension on the
    /// first, the log-probabilities of the tokens it carries.
    pub fn chunk(
        &self,
        d: Delta,
        finish: Option<&str>,
        ext: Option<Value>,
        lps: Option<&[TokenLogprob]>,
    ) -> Value {
        let choice = if self.chat {
            let mut delta = serde_json::Map::new();
            if d.role {
                delta.insert("role".into(), "assistant".into());
            }
            if let Some(t) = d.content {
                delta.insert("content".into(), t.into());
            }
            if let Some(t) = d.reasoning {
                delta.insert("reasoning_content".into(), t.into());
            }
            if !d.tool_calls.is_empty() {
                delta.insert("tool_calls".into(), d.tool_calls.into());
            }
            json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": lps.map(chat_logprobs)})
        } else {
            json!({"index": 0, "text": d.content.unwrap_or_default(), "finish_reason": finish,
                   "logprobs": lps.map(|l| completion_logprobs(l, 0))})
        };
        let mut v = self.envelope(json!([choice]));
        if let Some(e) = ext {
            v["layerfit"] = e;
        }
        v
    }

    /// The last chunk of `stream_options.include_usage`: no choices, the usage.
    pub fn usage_chunk(&self, usage: &Usage) -> Value {
        let mut v = self.envelope(json!([]));
        v["usage"] = usage.json();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn tool_calls_end_with_finish_reason_tool_calls_and_null_content() {
        let a = Answer {
            chat: true,
            id: "x",
            created: 1,
            model: "m",
            usage_chunks: false,
        };
        let out = Output {
            tool_calls: vec![json!({"id": "call_1", "name": "f", "arguments": "{}"})],
            ..Output::default()
        };
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            cached_tokens: 1,
        };
        let r = a.response(&out, "stop", &usage, json!({}));
        let c = &r["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls");
        assert_eq!(c["message"]["content"], Value::Null);
        assert_eq!(c["message"]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(r["usage"]["total_tokens"], 5);
        assert_eq!(
            a.response(&out, "length", &usage, json!({}))["choices"][0]["finish_reason"],
            "length"
        );
    }

    #[test]
    fn completion_logprobs_count_offsets_in_bytes() {
        let l = |t: &str, lp: f32| TokenLogprob {
            token: t.as_bytes().to_vec(),
            logprob: lp,
            top: vec![(t.as_bytes().to_vec(), lp)],
        };
        let v = completion_logprobs(&[l("ab", -0.5), l("c", -1.0)], 4);
        assert_eq!(v["text_offset"], json!([4, 6]));
        assert_eq!(v["top_logprobs"][1]["c"], json!(-1.0));
    }
}
