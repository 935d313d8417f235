//! llama.cpp's chat layer on a template that calls tools natively (Qwen 2.5's, with
//! `<tool_call>` tags), without a model: the lazy grammar and its trigger, the preserved
//! tags, and the parser reading a call back, whole and in streamed steps.

use super::*;

/// llama.cpp's models/templates/Qwen-Qwen2.5-7B-Instruct.jinja (llama-cpp-python 0.3.36's
/// vendored tree), verbatim.
const QWEN25: &str = r#"{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}"#;

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn qwen() -> Templates {
    Templates::from_source(QWEN25, "", "<|im_end|>").unwrap()
}

#[test]
fn tools_give_a_lazy_grammar_triggered_by_the_preserved_tag() {
    let t = qwen();
    let msgs = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let a = t
        .apply_json(&json!({"messages": msgs, "tools": tools(), "tool_choice": "auto"}))
        .unwrap();
    assert!(a["prompt"].as_str().unwrap().contains("get_weather"), "{a}");
    assert!(
        a["grammar"].as_str().unwrap().contains("get_weather"),
        "{a}"
    );
    assert_eq!(a["grammar_lazy"], true, "{a}");
    let triggers = a["grammar_triggers"].as_array().unwrap();
    assert!(
        triggers
            .iter()
            .any(|t| t["value"].as_str().unwrap().starts_with("<tool_call>")),
        "{a}"
    );
    assert!(
        a["preserved_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "<tool_call>"),
        "{a}"
    );
    // Required: the grammar holds from the first token.
    let r = t
        .apply_json(&json!({"messages": msgs, "tools": tools(), "tool_choice": "required"}))
        .unwrap();
    assert_eq!(r["grammar_lazy"], false, "{r}");
    // None: no grammar.
    let n = t
        .apply_json(&json!({"messages": msgs, "tools": tools(), "tool_choice": "none"}))
        .unwrap();
    assert_eq!(n["grammar"], "", "{n}");
    // A JSON schema without tools: a grammar from the first token.
    let s = t
        .apply_json(&json!({"messages": msgs, "json_schema": {"type": "object"}}))
        .unwrap();
    assert!(
        !s["grammar"].as_str().unwrap().is_empty() && s["grammar_lazy"] == false,
        "{s}"
    );
}

#[test]
fn a_call_is_read_back_whole_and_in_openai_shaped_steps() {
    let t = qwen();
    let msgs = json!([{"role": "user", "content": "Weather in Paris?"}]);
    let a = t
        .apply_json(&json!({"messages": msgs, "tools": tools()}))
        .unwrap();
    let answer = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    let whole = ChatParser::new(&a, true)
        .unwrap()
        .feed(answer, false)
        .unwrap();
    let call = &whole["message"]["tool_calls"][0];
    assert_eq!(call["name"], "get_weather", "{whole}");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(whole["message"]["content"], "");

    // Streamed: the id and name come once, first; the arguments add up to the whole.
    let mut p = ChatParser::new(&a, true).unwrap();
    let mut deltas = Vec::new();
    let chars: Vec<char> = answer.chars().collect();
    for piece in chars.chunks(5) {
        let s: String = piece.iter().collect();
        deltas.extend(
            p.feed(&s, true).unwrap()["deltas"]
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    deltas.extend(
        p.feed("", false).unwrap()["deltas"]
            .as_array()
            .unwrap()
            .clone(),
    );
    let calls: Vec<&Value> = deltas.iter().filter(|d| d["index"] == 0).collect();
    assert!(!calls.is_empty(), "{deltas:?}");
    assert_eq!(calls[0]["name"], "get_weather", "{deltas:?}");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert!(
        calls[1..].iter().all(|d| d["name"] == "" && d["id"] == ""),
        "{deltas:?}"
    );
    let args: String = calls
        .iter()
        .map(|d| d["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Paris"})
    );
    assert!(deltas.iter().all(|d| d["content"] == ""), "{deltas:?}");
}

#[test]
fn history_with_calls_and_results_renders_through_the_template() {
    let t = qwen();
    let msgs = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 24 C"},
    ]);
    let a = t
        .apply_json(&json!({"messages": msgs, "tools": tools()}))
        .unwrap();
    let prompt = a["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("<tool_response>\nSunny, 24 C\n</tool_response>"),
        "{prompt}"
    );
    assert!(prompt.contains("\"name\": \"get_weather\""), "{prompt}");
}

#[test]
fn a_json_schema_becomes_a_grammar() {
    let g = json_schema_to_grammar(
        &json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
    )
    .unwrap();
    assert!(g.contains("root ::="), "{g}");
}
