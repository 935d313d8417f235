//! `/v1/embeddings` (OpenAI's embeddings API, as llama-server serves it with `--embeddings`):
//! the request checked field by field (every field honoured or refused with a 400 that
//! names it), the inputs tokenized and bounded, the vectors from the engine thread
//! (`engine::embed`) answered as floats or base64. docs/serve.md.

use super::handlers::{body, error};
use super::openai::ApiError;
use super::App;
use crate::engine::batch::Token;
use crate::engine::embed::EmbedJob;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// One input, as sent.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Text(String),
    Tokens(Vec<i64>),
}

/// A checked embeddings request.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedRequest {
    pub model: Option<String>,
    pub inputs: Vec<Input>,
    /// `input` was one string or one token list (errors name it `input`, not `input[0]`).
    pub single: bool,
    pub base64: bool,
}

/// Fields OpenAI's embeddings API defines that layerfit refuses, with why.
const REFUSED: &[(&str, &str)] = &[("user", "no end-user identifier is read here")];

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad("invalid_value", message).param(param)
}

/// Parses and checks a request body; `width` is the model's embedding width (the only
/// `dimensions` served).
pub fn parse(bytes: &[u8], width: u32) -> Result<EmbedRequest, ApiError> {
    let body = super::request::object(bytes)?;
    for k in body.keys() {
        if let Some((_, why)) = REFUSED.iter().find(|(r, _)| *r == k.as_str()) {
            return Err(ApiError::bad(
                "unsupported_parameter",
                format!("{k} is not supported: {why}"),
            )
            .param(k));
        }
        if !["input", "model", "encoding_format", "dimensions"].contains(&k.as_str()) {
            return Err(ApiError::bad("unknown_parameter", format!("{k}: unknown field")).param(k));
        }
    }
    let model = match body.get("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("model", "model must be a string")),
    };
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(other) => {
            return Err(bad(
                "encoding_format",
                format!("encoding_format must be \"float\" or \"base64\", not {other}"),
            ))
        }
    };
    match body.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(d) if d.as_u64() == Some(width as u64) => {}
        Some(d) => {
            return Err(ApiError::bad(
                "unsupported_parameter",
                format!("dimensions {d} is not supported: this model's embeddings have {width} dimensions, and they are not shortened"),
            )
            .param("dimensions"))
        }
    }
    let single = match body.get("input") {
        Some(Value::Array(a)) => a.iter().all(Value::is_number),
        _ => true,
    };
    Ok(EmbedRequest {
        model,
        inputs: inputs(&body)?,
        single,
        base64,
    })
}

/// `input`: a string, an array of strings, an array of token ids, or an array of arrays of
/// token ids; never empty, at most [`MAX_INPUTS`].
fn inputs(body: &Map<String, Value>) -> Result<Vec<Input>, ApiError> {
    let ids = |v: &[Value], at: &str| -> Result<Vec<i64>, ApiError> {
        v.iter()
            .enumerate()
            .map(|(j, t)| {
                t.as_i64().ok_or_else(|| {
                    bad(
                        &format!("{at}[{j}]"),
                        format!("{at}[{j}] must be a token id (an integer)"),
                    )
                })
            })
            .collect()
    };
    let list = match body.get("input") {
        None | Some(Value::Null) => return Err(bad("input", "input is required")),
        Some(Value::String(s)) => vec![Input::Text(s.clone())],
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(bad(
                "input",
                "input is empty: send at least one string or token list",
            ))
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => {
            vec![Input::Tokens(ids(a, "input")?)]
        }
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(Input::Text(s.clone())),
                Value::Array(t) => Ok(Input::Tokens(ids(t, &format!("input[{i}]"))?)),
                _ => Err(bad(
                    &format!("input[{i}]"),
                    format!("input[{i}] must be a string or an array of token ids"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                "input",
                "input must be a string, an array of strings, or token ids",
            ))
        }
    };
    if list.len() > MAX_INPUTS {
        return Err(bad(
            "input",
            format!(
                "input has {} items: at most {MAX_INPUTS} are served a request",
                list.len()
            ),
        ));
    }
    Ok(list)
}

/// The name of input `i` in errors: `input` for a single string or token list.
fn name(i: usize, single: bool) -> String {
    if single {
        "input".into()
    } else {
        format!("input[{i}]")
    }
}

/// Tokens of every input (text tokenized as llama-server does: with the model's special
/// tokens), each checked: not empty, token ids in the vocabulary, at most `max_tokens`.
fn tokens(app: &App, r: &EmbedRequest) -> Result<Vec<Vec<Token>>, ApiError> {
    let session = &app.model.0;
    let n_vocab = session.n_vocab() as i64;
    let max = app.max_input_tokens;
    r.inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let at = name(i, r.single);
            let toks: Vec<Token> = match input {
                Input::Text(s) if s.is_empty() => {
                    return Err(bad(&at, format!("{at} is an empty string")))
                }
                Input::Text(s) => session.tokenize(s, true),
                Input::Tokens(t) => {
                    if let Some(bad_id) = t.iter().find(|&&id| id < 0 || id >= n_vocab) {
                        return Err(bad(
                            &at,
                            format!("{at} holds token id {bad_id}: the vocabulary has ids 0 to {}", n_vocab - 1),
                        ));
                    }
                    t.iter().map(|&id| id as Token).collect()
                }
            };
            if toks.is_empty() {
                return Err(bad(&at, format!("{at} has no tokens")));
            }
            if toks.len() > max as usize {
                return Err(ApiError::bad(
                    "context_length_exceeded",
                    format!(
                        "{at} has {} tokens: an input holds at most {max} here (one batch; llama.cpp pools an input within one batch)",
                        toks.len()
                    ),
                )
                .param(&at));
            }
            Ok(toks)
        })
        .collect()
}

/// A vector as OpenAI's `base64` format sends it: little-endian f32s.
pub fn base64_f32(v: &[f32]) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The 400 a generation endpoint answers in embedding mode, and `/v1/embeddings` without it.
pub fn wrong_mode(embeddings: bool, path: &str) -> ApiError {
    if embeddings {
        ApiError::bad(
            "embeddings_only",
            format!("{path} is not served: this server serves embeddings (POST /v1/embeddings); start `layerfit serve` without --embeddings, with a generative model, to chat or complete"),
        )
    } else {
        ApiError::bad(
            "embeddings_disabled",
            "this server does not serve embeddings: start it with `layerfit serve --embeddings` (an embedding model is served so without the flag; a generative model also needs --pooling mean|cls|last)",
        )
    }
}

pub(super) async fn embeddings(State(app): State<Arc<App>>, req: Request) -> Response {
    let Some(jobs) = &app.embed_jobs else {
        return error(&wrong_mode(false, "/v1/embeddings"));
    };
    let bytes = match body(&app, req).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    let r = match parse(&bytes, app.embed_width) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let inputs = match tokens(&app, &r) {
        Ok(t) => t,
        Err(e) => return error(&e),
    };
    let n_tokens: usize = inputs.iter().map(Vec::len).sum();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = jobs
        .lock()
        .map(|j| j.send(EmbedJob { inputs, reply: tx }).is_ok())
        .unwrap_or(false);
    if !sent {
        return error(&ApiError::server(
            503,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    let vectors = match rx.await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return error(&ApiError::server(500, "engine_error", e)),
        Err(_) => {
            return error(&ApiError::server(
                503,
                "shutting_down",
                "the server is shutting down",
            ))
        }
    };
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if r.base64 {
                json!(base64_f32(v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Json(json!({
        "object": "list",
        "data": data,
        "model": r.model.clone().unwrap_or_else(|| app.settings.model_name.clone()),
        "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(body: &str) -> Option<String> {
        parse(body.as_bytes(), 576).err().and_then(|e| e.param)
    }

    #[test]
    fn inputs_take_every_openai_shape() {
        let r = parse(br#"{"input": "hi"}"#, 576).unwrap();
        assert_eq!(r.inputs, vec![Input::Text("hi".into())]);
        let r = parse(
            br#"{"input": ["a", "b"], "encoding_format": "base64"}"#,
            576,
        )
        .unwrap();
        assert_eq!(r.inputs.len(), 2);
        assert!(r.base64);
        let r = parse(br#"{"input": [1, 2, 3], "dimensions": 576}"#, 576).unwrap();
        assert_eq!(r.inputs, vec![Input::Tokens(vec![1, 2, 3])]);
        let r = parse(br#"{"input": [[1], [2, 3]], "model": "m"}"#, 576).unwrap();
        assert_eq!(r.inputs.len(), 2);
        assert_eq!(r.model.as_deref(), Some("m"));
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(
            param(r#"{"input": "a", "user": "u"}"#).as_deref(),
            Some("user")
        );
        assert_eq!(param(r#"{"input": "a", "foo": 1}"#).as_deref(), Some("foo"));
        assert_eq!(
            param(r#"{"input": "a", "dimensions": 64}"#).as_deref(),
            Some("dimensions")
        );
        assert_eq!(
            param(r#"{"input": "a", "encoding_format": "int8"}"#).as_deref(),
            Some("encoding_format")
        );
        assert_eq!(param(r#"{}"#).as_deref(), Some("input"));
        assert_eq!(param(r#"{"input": []}"#).as_deref(), Some("input"));
        assert_eq!(param(r#"{"input": ["a", 3]}"#).as_deref(), Some("input[1]"));
        assert_eq!(
            param(r#"{"input": [[1], [2, "x"]]}"#).as_deref(),
            Some("input[1][1]")
        );
        let many = format!(
            r#"{{"input": [{}]}}"#,
            vec!["\"a\""; MAX_INPUTS + 1].join(",")
        );
        assert_eq!(param(&many).as_deref(), Some("input"));
    }

    #[test]
    fn base64_is_little_endian_f32() {
        use base64::Engine;
        let s = base64_f32(&[1.0, -0.5]);
        let b = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        assert_eq!(b, [1.0f32.to_le_bytes(), (-0.5f32).to_le_bytes()].concat());
    }
}
