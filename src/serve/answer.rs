//! Reads the engine's events for one request into what its response says: the text, taken
//! apart by the chat format's parser (llama.cpp's `common_chat_parse`) into content,
//! reasoning and tool calls, whole or step by step as OpenAI streams them; the tokens'
//! log-probabilities; the finish.

use super::generic_tools;
use super::openai::{self, ApiError, Delta, Output};
use super::prepare::Prepared;
use crate::engine::batch::{Event, Finish, TokenLogprob};
use crate::engine::session::jinja::ChatParser;
use serde_json::{json, Value};

pub(super) struct Reader {
    parser: Option<ChatParser>,
    /// The answer is llama.cpp's former generic tool-call JSON (module generic_tools), read
    /// once it is whole.
    generic: bool,
    /// The answer's text so far.
    pub raw: String,
    /// Text put before the answer (the degraded banner, a completion's echo).
    prefix: String,
    logprobs: Option<Vec<TokenLogprob>>,
    /// Log-probabilities not yet sent with a chunk.
    unsent: Vec<TokenLogprob>,
}

impl Reader {
    /// `applied`: what llama.cpp's chat layer returned for the prompt (no parser without it:
    /// the text is the content); `tools`: tool calls are read.
    pub fn new(p: &Prepared, tools: bool, logprobs: bool, prefix: String) -> Reader {
        let parser = match (&p.applied, p.generic_tools) {
            (Some(a), false) => ChatParser::new(a, tools).ok(),
            _ => None,
        };
        Reader {
            parser,
            generic: p.generic_tools,
            raw: String::new(),
            prefix,
            logprobs: logprobs.then(Vec::new),
            unsent: Vec::new(),
        }
    }

    pub fn logprob(&mut self, lp: TokenLogprob) {
        if let Some(all) = &mut self.logprobs {
            all.push(lp.clone());
            self.unsent.push(lp);
        }
    }

    /// The log-probabilities to send with the next chunk.
    pub fn take_logprobs(&mut self) -> Option<Vec<TokenLogprob>> {
        self.logprobs.as_ref()?;
        Some(std::mem::take(&mut self.unsent))
    }

    /// The prefix, for the first chunk.
    pub fn take_prefix(&mut self) -> String {
        std::mem::take(&mut self.prefix)
    }

    /// Adds streamed text: the deltas to send. Without a parser (or once it has failed) the
    /// text is the content.
    pub fn push(&mut self, text: &str) -> Vec<Delta> {
        self.raw.push_str(text);
        self.step(text, true)
    }

    /// The end of a streamed answer: the deltas the final parse adds.
    pub fn end(&mut self) -> Vec<Delta> {
        if self.generic {
            let (content, calls) = generic_tools::parse(&self.raw, new_call_id);
            let mut out: Vec<Delta> = calls
                .iter()
                .enumerate()
                .map(|(i, c)| Delta {
                    tool_calls: vec![openai::tool_call(c, Some(i))],
                    ..Delta::default()
                })
                .collect();
            if !content.is_empty() {
                out.insert(
                    0,
                    Delta {
                        content: Some(content),
                        ..Delta::default()
                    },
                );
            }
            return out;
        }
        self.step("", false)
    }

    fn step(&mut self, text: &str, partial: bool) -> Vec<Delta> {
        if self.generic {
            return Vec::new();
        }
        let Some(p) = &mut self.parser else {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![Delta {
                    content: Some(text.to_string()),
                    ..Delta::default()
                }]
            };
        };
        match p.feed(text, partial) {
            Ok(v) => v["deltas"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(delta)
                .collect(),
            Err(e) => {
                // The format's parser gave up: the rest goes out as it came.
                super::log::line(&format!("warning: {e}; the answer is sent as text"));
                self.parser = None;
                self.step(text, partial)
            }
        }
    }

    /// The whole answer, parsed once.
    pub fn output(mut self) -> Output {
        let mut out = Output {
            logprobs: self.logprobs.take(),
            ..Output::default()
        };
        let parsed = self.parser.as_mut().map(|p| p.feed(&self.raw, false));
        if self.generic {
            (out.content, out.tool_calls) = generic_tools::parse(&self.raw, new_call_id);
            out.content.insert_str(0, &self.prefix);
            return out;
        }
        match parsed {
            Some(Ok(v)) => {
                let m = &v["message"];
                out.content = m["content"].as_str().unwrap_or_default().to_string();
                out.reasoning = m["reasoning_content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                out.tool_calls = m["tool_calls"].as_array().cloned().unwrap_or_default();
            }
            Some(Err(e)) => {
                super::log::line(&format!("warning: {e}; the answer is sent as text"));
                out.content = self.raw;
            }
            None => out.content = self.raw,
        }
        out.content.insert_str(0, &self.prefix);
        out
    }
}

/// A tool call's id, as llama-server makes them.
fn new_call_id() -> String {
    format!("call_{:x}", super::handlers::rand_id())
}

/// One parser delta (`{"content", "reasoning_content", "index", "id", "name", "arguments"}`)
/// as OpenAI streams it: a tool call's first delta carries its id, type and name.
fn delta(d: &Value) -> Option<Delta> {
    let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    let index = d["index"].as_i64().unwrap_or(-1);
    if index >= 0 {
        let mut f = json!({"arguments": s("arguments")});
        let mut call = json!({"index": index});
        if !s("id").is_empty() {
            call["id"] = s("id").into();
            call["type"] = "function".into();
        }
        if !s("name").is_empty() {
            f["name"] = s("name").into();
        }
        call["function"] = f;
        return Some(Delta {
            tool_calls: vec![call],
            ..Delta::default()
        });
    }
    let (c, r) = (s("content"), s("reasoning_content"));
    (!c.is_empty() || !r.is_empty()).then(|| Delta {
        content: (!c.is_empty()).then_some(c),
        reasoning: (!r.is_empty()).then_some(r),
        ..Delta::default()
    })
}

/// The engine's answer, whole: the output and how it ended.
pub(super) async fn collect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    mut reader: Reader,
) -> Result<(Output, Finish), ApiError> {
    loop {
        match rx.recv().await {
            Some(Event::Text(t)) => reader.raw.push_str(&t),
            Some(Event::Logprob(l)) => reader.logprob(l),
            Some(Event::Done(f)) => return Ok((reader.output(), f)),
            Some(Event::Failed(m)) => return Err(ApiError::server(500, "engine_failed", m)),
            None => return Err(ApiError::server(503, "shutting_down", "the engine stopped")),
        }
    }
}
