//! A checked request made ready for the engine: the prompt's tokens (through the model's chat
//! template and llama.cpp's chat layer with the request's tools and JSON schema, or as plain
//! text), the sampling settings with the grammar that holds the answer to them, the stop
//! strings, and what reads the answer back (the chat format's parser).

use super::generic_tools;
use super::openai::ApiError;
use super::request::{Request, ToolChoice};
use super::App;
use crate::engine::batch::{Grammar, Sampling, Token};
use crate::engine::session::chat::Role;
use crate::engine::session::jinja::json_schema_to_grammar;
use crate::engine::session::Session;
use serde_json::{json, Value};

pub(super) struct Prepared {
    /// The prompt as the model reads it.
    pub text: String,
    pub tokens: Vec<Token>,
    pub sampling: Sampling,
    /// The request's stop strings and those of the chat format.
    pub stop: Vec<String>,
    /// What llama.cpp's chat layer returned (the parser's settings), when it formatted the
    /// prompt.
    pub applied: Option<Value>,
    /// The prompt reached the model as plain text (no template).
    pub plain: bool,
    /// Tool calls come back in llama.cpp's former generic format (module generic_tools).
    pub generic_tools: bool,
    /// The request's images (each at an image marker of `text`), and where the first is.
    pub images: Vec<Vec<u8>>,
    pub first_image_at: Option<String>,
}

fn template_failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad("template_failed", e.to_string())
}

/// The request for llama.cpp's chat layer (`layerfit_chat_apply_json`).
fn chat_layer_request(r: &Request) -> Value {
    let (tools, choice): (Vec<&Value>, &str) = match &r.tool_choice {
        ToolChoice::Auto => (r.tools.iter().collect(), "auto"),
        ToolChoice::None => (r.tools.iter().collect(), "none"),
        ToolChoice::Required => (r.tools.iter().collect(), "required"),
        // One function, required: the grammar then allows that call only.
        ToolChoice::Function(n) => (
            r.tools
                .iter()
                .filter(|t| t["function"]["name"] == n.as_str())
                .collect(),
            "required",
        ),
    };
    let mut req = json!({
        "messages": r.messages.iter().map(|m| m.to_json()).collect::<Vec<_>>(),
        "tool_choice": choice,
        "add_generation_prompt": true,
        "enable_thinking": r.reasoning_effort.as_deref() != Some("none"),
    });
    if !tools.is_empty() {
        req["tools"] = tools.into_iter().cloned().collect();
    }
    if let Some(p) = r.parallel_tool_calls {
        req["parallel_tool_calls"] = p.into();
    }
    if let Some(s) = &r.json_schema {
        req["json_schema"] = s.clone();
    }
    if let Some(e) = r.reasoning_effort.as_deref().filter(|e| *e != "none") {
        req["chat_template_kwargs"] = json!({ "reasoning_effort": e });
    }
    req
}

/// Single-token ids of `texts` (longer ones are left out, as llama-server does).
fn single_tokens<'a>(model: &Session, texts: impl Iterator<Item = &'a str>) -> Vec<Token> {
    texts
        .filter_map(|t| match model.tokenize(t, false)[..] {
            [one] => Some(one),
            _ => None,
        })
        .collect()
}

/// The grammar llama.cpp's chat layer returned, with its triggers as the sampler takes them
/// (a trigger word that is one preserved token triggers on that token, as in llama-server).
fn grammar_of(model: &Session, applied: &Value, preserved: &[Token]) -> Option<Grammar> {
    let text = applied["grammar"].as_str().filter(|g| !g.is_empty())?;
    let mut g = Grammar {
        text: text.to_string(),
        lazy: applied["grammar_lazy"].as_bool().unwrap_or(false),
        ..Grammar::default()
    };
    for t in applied["grammar_triggers"].as_array().into_iter().flatten() {
        let value = t["value"].as_str().unwrap_or_default();
        if t["kind"] == "word" {
            if let [one] = model.tokenize(value, false)[..] {
                if preserved.contains(&one) {
                    g.tokens.push(one);
                    continue;
                }
            }
        }
        g.patterns
            .push(t["pattern"].as_str().unwrap_or_default().to_string());
    }
    // The generation prompt's tokens, which a grammar that spells out the whole answer
    // starts with (common_sampler_init's prefill).
    let gp = applied["generation_prompt"].as_str().unwrap_or_default();
    if !g.lazy && !gp.is_empty() {
        let tokens = model.tokenize(gp, false);
        for (i, &t) in tokens.iter().enumerate() {
            let piece = String::from_utf8_lossy(&model.piece(t)).into_owned();
            let leading_space = piece.chars().next().is_some_and(char::is_whitespace);
            if i == 0 && leading_space && !gp.starts_with(char::is_whitespace) {
                continue;
            }
            g.prefill.push(t);
        }
    }
    Some(g)
}

/// Everything the engine and the answer's reader need for `r` (`chat`: a chat request).
pub(super) fn prepare(app: &App, r: &Request, chat: bool) -> Result<Prepared, ApiError> {
    let model = &app.model.0;
    let plain = !chat || app.settings.chat_as_plain_text;
    let mut sampling = Sampling {
        temperature: r.temperature,
        seed: r.seed.unwrap_or(42),
        top_k: r.top_k.unwrap_or(40),
        top_p: r.top_p.unwrap_or(0.95),
        min_p: r.min_p.unwrap_or(0.0),
        presence_penalty: r.presence_penalty,
        frequency_penalty: r.frequency_penalty,
        logit_bias: r.logit_bias.clone(),
        grammar: None,
        logprobs: r.logprobs,
        preserved: Vec::new(),
    };
    let mut stop = r.stop.clone();
    let mut applied = None;
    let mut generic = false;
    let text = if chat && !plain && model.has_chat_layer() {
        let a = model
            .apply_chat(&chat_layer_request(r))
            .map_err(template_failed)?;
        let has_history = r
            .messages
            .iter()
            .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty());
        let a = if a["supports_tool_calls"] == false && (r.wants_tools() || has_history) {
            // The template cannot express tools: llama.cpp's former generic format.
            let parallel = r.parallel_tool_calls.unwrap_or(false);
            let mut g = r.clone();
            g.messages = generic_tools::messages(&r.messages, &r.tools, r.wants_tools());
            g.tools.clear();
            if r.wants_tools() {
                g.json_schema = Some(generic_tools::schema(
                    &r.tools,
                    &r.tool_choice,
                    parallel,
                    r.json_schema.as_ref(),
                ));
                generic = true;
            }
            g.tool_choice = ToolChoice::Auto;
            model
                .apply_chat(&chat_layer_request(&g))
                .map_err(template_failed)?
        } else {
            a
        };
        let words = a["preserved_tokens"].as_array().into_iter().flatten();
        sampling.preserved = single_tokens(model, words.filter_map(Value::as_str));
        sampling.grammar = grammar_of(model, &a, &sampling.preserved);
        stop.extend(
            a["additional_stops"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string)),
        );
        let text = a["prompt"].as_str().unwrap_or_default().to_string();
        applied = Some(a);
        text
    } else {
        if !r.tools.is_empty() {
            return Err(ApiError::bad(
                "unsupported_parameter",
                "tools is not supported for this model: tools need a chat template that llama.cpp's chat layer reads, and this model is served without one",
            )
            .param("tools"));
        }
        if let Some(schema) = &r.json_schema {
            let g = json_schema_to_grammar(schema).map_err(|e| {
                ApiError::bad("invalid_value", e.to_string()).param("response_format")
            })?;
            sampling.grammar = Some(Grammar {
                text: g,
                ..Grammar::default()
            });
        }
        match (&r.prompt, plain) {
            (Some(p), _) => p.clone(),
            (None, true) => crate::engine::session::plain_text(&r.chat()),
            (None, false) => model.format(&r.chat(), true).map_err(template_failed)?,
        }
    };
    let tokens = model.tokenize(&text, true);
    Ok(Prepared {
        text,
        tokens,
        sampling,
        stop,
        applied,
        plain,
        generic_tools: generic,
        images: r.images.clone(),
        first_image_at: r.first_image_at.clone(),
    })
}
