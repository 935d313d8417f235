//! What `/v1/responses` answers: the Response object and its output items, whole or streamed
//! as its events (src/serve/responses.rs turns the request into a chat request).

use super::answer::Reader;
use super::handlers::{CancelOnDrop, Steps};
use super::openai::{Delta, Output, Usage};
use crate::engine::batch::{Event, FinishReason};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc::UnboundedReceiver;

pub(super) struct Head {
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) model: String,
    pub(super) echo: Map<String, Value>,
    pub(super) ext: Value,
}

impl Head {
    pub(super) fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<&Usage>,
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
            "usage": usage.map(|u| json!({
                "input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens,
                "total_tokens": u.prompt_tokens + u.completion_tokens,
                "input_tokens_details": {"cached_tokens": u.cached_tokens},
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
pub(super) fn output_items(out: &Output, msg_id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    if !out.content.is_empty() || out.tool_calls.is_empty() {
        items.push(message_item(msg_id, &out.content, "completed"));
    }
    items.extend(out.tool_calls.iter().map(|c| call_item(c, "completed")));
    items
}

/// A Response streamed as its events: `response.created`, then each output item added, its
/// text or arguments in deltas, done; then `response.completed` with the whole Response.
pub(super) struct EventStream {
    pub(super) rx: UnboundedReceiver<Event>,
    pub(super) guard: CancelOnDrop,
    pub(super) reader: Reader,
    pub(super) head: Head,
    pub(super) msg_id: String,
    pub(super) seq: u64,
    pub(super) started: bool,
    /// The message item's output index and text, while it is open.
    pub(super) text: Option<(usize, String)>,
    /// The function calls: output index, `{"id", "name", "arguments"}`.
    pub(super) calls: Vec<(usize, Value)>,
    pub(super) done: bool,
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

    fn end(&mut self, out: &mut Out, reason: FinishReason, usage: &Usage) {
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
                    self.end(&mut out, f.reason, &Usage::of(&f));
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
