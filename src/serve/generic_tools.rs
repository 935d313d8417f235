//! Tool calls for a model whose chat template cannot express them (SmolLM2's, for one):
//! llama.cpp's former generic format (`common_chat_params_init_generic`, with minja's tool
//! polyfills), which the bundled llama.cpp no longer has — its chat layer now drops the
//! tools of such a template without a word, and llama-server with it. The tools are
//! described in the system message, the answer is held by a JSON schema (through the chat
//! layer's grammar) to `{"tool_calls": [...]}` (or `{"tool_call": {...}}` without parallel
//! calls) or `{"response": ...}`, and past calls and results are written into the messages
//! as that JSON. Pure.

use super::request::{ChatMessage, ToolChoice};
use crate::engine::session::chat::Role;
use serde_json::{json, Value};

const RESPOND: &str = "Respond in JSON format, either with `tool_call` (a request to call tools) or with `response` reply to the user's request";

/// The messages with the tools described in the system message (added before the others
/// when there is none), an assistant's tool calls written as its content, and tool results
/// as user messages, as minja's polyfills write them.
pub fn messages(msgs: &[ChatMessage], tools: &[Value], offer: bool) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = msgs
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let args = c["function"]["arguments"].as_str().unwrap_or("{}");
                        json!({"name": c["function"]["name"], "arguments":
                            serde_json::from_str::<Value>(args).unwrap_or_else(|_| args.into()),
                            "id": c["id"]})
                    })
                    .collect();
                let text = json!({ "tool_calls": calls }).to_string();
                m.content = if m.content.is_empty() { text } else { format!("{}\n{text}", m.content) };
                m.tool_calls.clear();
            }
            if m.role == Role::Tool {
                m.content = json!({"tool_response": {"tool_call_id": m.tool_call_id, "content": m.content}}).to_string();
                m.role = Role::User;
                m.tool_call_id = None;
                m.name = None;
            }
            m
        })
        .collect();
    if offer {
        let list: Vec<&Value> = tools.iter().map(|t| &t["function"]).collect();
        let text = format!(
            "You can call any of the following tools to satisfy the user's requests: {}\n\n{RESPOND}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        match out.first_mut() {
            Some(m) if m.role == Role::System => m.content = format!("{}\n\n{text}", m.content),
            _ => out.insert(
                0,
                ChatMessage {
                    role: Role::System,
                    content: text,
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                    name: None,
                    reasoning_content: None,
                },
            ),
        }
    }
    out
}

/// The schema the answer must follow: a call of one of `tools` (several with `parallel`),
/// or (unless a call is required) a response, itself held to `response_schema` when given.
pub fn schema(
    tools: &[Value],
    choice: &ToolChoice,
    parallel: bool,
    response_schema: Option<&Value>,
) -> Value {
    let calls: Vec<Value> = tools
        .iter()
        .filter(|t| match choice {
            ToolChoice::Function(n) => t["function"]["name"] == n.as_str(),
            _ => true,
        })
        .map(|t| {
            let f = &t["function"];
            let params = match f.get("parameters") {
                Some(p) if p.is_object() && p.as_object().is_some_and(|o| !o.is_empty()) => {
                    p.clone()
                }
                _ => json!({"type": "object", "properties": {}}),
            };
            json!({"type": "object", "properties": {"name": {"type": "string", "const": f["name"]},
                   "arguments": params}, "required": ["name", "arguments"]})
        })
        .collect();
    let call = json!({"anyOf": calls});
    let tool_call = if parallel {
        json!({"type": "object", "properties": {"tool_calls": {"type": "array", "items": call, "minItems": 1}},
               "required": ["tool_calls"]})
    } else {
        json!({"type": "object", "properties": {"tool_call": call}, "required": ["tool_call"]})
    };
    if matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
        return tool_call;
    }
    let response = response_schema
        .cloned()
        .unwrap_or_else(|| json!({"type": "string"}));
    json!({"anyOf": [tool_call, {"type": "object", "properties": {"response": response}, "required": ["response"]}]})
}

/// The answer read back: (content, tool calls as `{"id", "name", "arguments"}`). Text that
/// is not the JSON asked for is content as it stands.
pub fn parse(text: &str, mut new_id: impl FnMut() -> String) -> (String, Vec<Value>) {
    // The chat layer's grammar lets the JSON come in a Markdown fence.
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .and_then(|x| x.strip_suffix("```"))
        .unwrap_or(t);
    let Ok(v) = serde_json::from_str::<Value>(t.trim()) else {
        return (text.to_string(), Vec::new());
    };
    let calls: Vec<&Value> = match (&v["tool_calls"], &v["tool_call"]) {
        (Value::Array(a), _) => a.iter().collect(),
        (_, c) if c.is_object() => vec![c],
        _ => Vec::new(),
    };
    if !calls.is_empty() {
        let calls = calls
            .into_iter()
            .map(|c| {
                let args = match &c["arguments"] {
                    Value::String(s) => s.clone(),
                    a => a.to_string(),
                };
                json!({"id": new_id(), "name": c["name"], "arguments": args})
            })
            .collect();
        return (String::new(), calls);
    }
    match &v["response"] {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Null => (text.to_string(), Vec::new()),
        r => (r.to_string(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object",
               "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
    }

    #[test]
    fn calls_and_responses_are_read_back() {
        let mut n = 0;
        let mut id = || {
            n += 1;
            format!("call_{n}")
        };
        let (c, calls) = parse(
            r#"{"tool_call": {"name": "w", "arguments": {"city": "Paris"}}}"#,
            &mut id,
        );
        assert_eq!((c.as_str(), calls.len()), ("", 1));
        assert_eq!(calls[0]["arguments"], r#"{"city":"Paris"}"#);
        assert_eq!(calls[0]["id"], "call_1");
        let (c, calls) = parse(r#"{"response": "It is sunny."}"#, &mut id);
        assert_eq!((c.as_str(), calls.len()), ("It is sunny.", 0));
        assert_eq!(parse("plain", &mut id).0, "plain");
        assert_eq!(parse("```json\n{\"response\": \"x\"}\n```", &mut id).0, "x");
    }

    #[test]
    fn the_schema_requires_a_call_when_asked_and_offers_only_the_named_function() {
        let tools = [tool("a"), tool("b")];
        let s = schema(&tools, &ToolChoice::Required, false, None);
        assert_eq!(s["required"], json!(["tool_call"]));
        let s = schema(&tools, &ToolChoice::Function("b".into()), true, None);
        let any = &s["properties"]["tool_calls"]["items"]["anyOf"];
        assert_eq!(any.as_array().unwrap().len(), 1);
        assert_eq!(any[0]["properties"]["name"]["const"], "b");
        assert!(schema(&tools, &ToolChoice::Auto, false, None)["anyOf"].is_array());
    }

    #[test]
    fn history_is_written_as_the_json_the_model_answers_with() {
        let m = |role: &str, content: &str| ChatMessage {
            role: Role::parse(role).unwrap(),
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
            reasoning_content: None,
        };
        let mut call = m("assistant", "");
        call.tool_calls = vec![
            json!({"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{\"city\":\"Paris\"}"}}),
        ];
        let mut result = m("tool", "21 C");
        result.tool_call_id = Some("c1".into());
        let out = messages(&[m("user", "Weather?"), call, result], &[tool("a")], true);
        assert_eq!(out[0].role, Role::System);
        assert!(out[0].content.contains("\"a\"") && out[0].content.contains("tool_call"));
        let calls: Value = serde_json::from_str(&out[2].content).unwrap();
        assert_eq!(calls["tool_calls"][0]["arguments"]["city"], "Paris");
        assert_eq!(out[3].role, Role::User);
        assert!(out[3].content.contains("21 C") && out[3].content.contains("c1"));
    }
}
