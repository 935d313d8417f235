//! Unit tests of request.rs: what is read, what is refused and named.

use super::*;

#[test]
fn chat_requests() {
    let r = parse(br#"{"model":"x","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":5,"temperature":0,"stop":"\n","logprobs":true,"top_logprobs":3,"stream":true,"stream_options":{"include_usage":true},"response_format":{"type":"json_object"},"seed":7,"n":1,"top_k":5}"#, true).unwrap();
    assert_eq!(
        r.chat(),
        vec![
            Message::new(Role::System, "s"),
            Message::new(Role::User, "hi")
        ]
    );
    assert_eq!(
        (r.max_tokens, r.temperature, r.stop.len()),
        (Some(5), 0.0, 1)
    );
    assert_eq!(
        (r.logprobs, r.include_usage, r.seed, r.top_k),
        (Some(3), true, Some(7), Some(5))
    );
    assert_eq!(r.json_schema, Some(serde_json::json!({"type": "object"})));
    for bad in [
        &b"{"[..],
        br#"{"messages":[]}"#,
        br#"{"messages":[{"role":"x","content":"a"}]}"#,
        br#"{"messages":[{"role":"user","content":"a"}],"max_tokens":0}"#,
        br#"{"messages":[{"role":"user","content":"a"}],"temperature":9}"#,
        br#"{"messages":[{"role":"tool","content":"a"}]}"#,
    ] {
        let e = parse(bad, true).unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
    }
}

#[test]
fn every_refused_field_is_named() {
    let msg = r#""messages":[{"role":"user","content":"a"}]"#;
    for (field, value) in [
        ("n", "2"),
        ("audio", "{}"),
        ("functions", "[]"),
        ("user", "\"u\""),
        ("store", "true"),
        ("modalities", "[\"audio\"]"),
        ("prediction", "{}"),
        ("metadata", "{}"),
        ("web_search_options", "{}"),
        ("verbosity", "\"low\""),
        ("service_tier", "\"flex\""),
        ("made_up", "1"),
        ("top_logprobs", "2"),
    ] {
        let body = format!("{{{msg},\"{field}\":{value}}}");
        let e = parse(body.as_bytes(), true).unwrap_err();
        assert_eq!(e.param.as_deref(), Some(field), "{body}: {e:?}");
        assert!(e.message.contains(field), "{e:?}");
    }
    // An image must come as a data URL; other part types are refused by their type.
    let e = parse(br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#, true).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].image_url"));
    let e = parse(
        br#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
        true,
    )
    .unwrap_err();
    assert_eq!(e.param.as_deref(), Some("messages[0].content[0].type"));
    let r = parse(br#"{"messages":[{"role":"user","content":[{"type":"text","text":"see "},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw=="}}]}]}"#, true).unwrap();
    assert_eq!(r.messages[0].content, format!("see {IMAGE_MARKER}"));
    assert_eq!(r.images, vec![vec![0x89, b'P', b'N', b'G']]);
    for (field, value) in [("suffix", "\"x\""), ("best_of", "3"), ("n", "2")] {
        let body = format!("{{\"prompt\":\"a\",\"{field}\":{value}}}");
        assert_eq!(
            parse(body.as_bytes(), false).unwrap_err().param.as_deref(),
            Some(field)
        );
    }
}

#[test]
fn tools_and_the_choice_among_them() {
    let tools = r#""tools":[{"type":"function","function":{"name":"f","parameters":{}}}]"#;
    let msg = r#""messages":[{"role":"user","content":"a"}]"#;
    let r = parse(format!("{{{msg},{tools},\"tool_choice\":{{\"type\":\"function\",\"function\":{{\"name\":\"f\"}}}}}}").as_bytes(), true).unwrap();
    assert_eq!(r.tool_choice, ToolChoice::Function("f".into()));
    assert!(r.wants_tools());
    let r = parse(
        format!("{{{msg},{tools},\"tool_choice\":\"none\"}}").as_bytes(),
        true,
    )
    .unwrap();
    assert!(!r.wants_tools());
    for choice in [
        r#""required""#,
        r#"{"type":"function","function":{"name":"g"}}"#,
    ] {
        let no_tools = format!("{{{msg},\"tool_choice\":{choice}}}");
        assert!(parse(no_tools.as_bytes(), true).is_err(), "{no_tools}");
    }
    let custom =
        format!("{{{msg},\"tools\":[{{\"type\":\"custom\",\"custom\":{{\"name\":\"x\"}}}}]}}");
    assert_eq!(
        parse(custom.as_bytes(), true).unwrap_err().param.as_deref(),
        Some("tools[0].type")
    );
    let history = r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c","content":"r"}]}"#;
    let r = parse(history.as_bytes(), true).unwrap();
    assert_eq!(r.messages[1].tool_calls.len(), 1);
    assert_eq!(r.messages[2].tool_call_id.as_deref(), Some("c"));
}

#[test]
fn completion_requests() {
    let r = parse(
        br#"{"prompt":"Once","stream":true,"echo":true,"logprobs":2}"#,
        false,
    )
    .unwrap();
    assert_eq!(
        (r.prompt.as_deref(), r.stream, r.echo, r.logprobs),
        (Some("Once"), true, true, Some(2))
    );
    assert!(parse(br#"{"prompt":["a","b"]}"#, false).is_err());
    assert!(parse(br#"{"prompt":"a","messages":[]}"#, false).is_err());
}
