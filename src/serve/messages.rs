//! Chat messages and tools as OpenAI sends them, checked: the one place message content is
//! read, the roles, an assistant's tool calls, a tool's result; function tools and the
//! choice among them. Pure.

use super::openai::ApiError;
use super::request::{bad, string, unsupported};
use crate::engine::session::chat::{Message, Role};
use serde_json::{Map, Value};

/// How the model may call tools.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// This function, and only it.
    Function(String),
}

/// One chat message, as the template reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// An assistant's tool calls, in OpenAI's shape.
    pub tool_calls: Vec<Value>,
    /// A tool result's call.
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
    /// An assistant's earlier reasoning, for templates that render it.
    pub reasoning_content: Option<String>,
}

impl ChatMessage {
    /// The role and text, as a template without llama.cpp's chat layer (or plain text) reads it.
    pub fn message(&self) -> Message {
        Message::new(self.role, self.content.clone())
    }

    /// The message in OpenAI's shape, for llama.cpp's chat layer.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("role".into(), self.role.as_str().into());
        m.insert("content".into(), self.content.clone().into());
        if !self.tool_calls.is_empty() {
            m.insert("tool_calls".into(), self.tool_calls.clone().into());
        }
        if let Some(id) = &self.tool_call_id {
            m.insert("tool_call_id".into(), id.clone().into());
        }
        if let Some(n) = &self.name {
            m.insert("name".into(), n.clone().into());
        }
        if let Some(r) = &self.reasoning_content {
            m.insert("reasoning_content".into(), r.clone().into());
        }
        Value::Object(m)
    }
}

/// The text that stands for an image in a prompt: llama.cpp's `mtmd_default_marker()`.
pub const IMAGE_MARKER: &str = "<__media__>";

/// The most bytes one image may have, decoded.
pub const MAX_IMAGE_BYTES: usize = 32 << 20;

/// An `image_url` part's image: a `data:` URL with base64 content (the server fetches no
/// URL: a remote one would let a client make it reach any host).
fn image_bytes(url: &str, at: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    let no = |m: &str| ApiError::bad("invalid_image_url", format!("{at}: {m}")).param(at);
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(no(
            "image_url must be a data URL (data:image/png;base64,...): this server fetches no URLs",
        ));
    };
    let (head, data) = rest
        .split_once(',')
        .ok_or_else(|| no("the data URL has no ',' before its data"))?;
    if !head.ends_with(";base64") {
        return Err(no(
            "the data URL must be base64 (data:image/png;base64,...)",
        ));
    }
    if data.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
        return Err(no("the image is larger than 32 MiB"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| no(&format!("the data URL's base64 does not decode: {e}")))
}

/// A message's content as text: a string, or an array of parts of which only `text` parts
/// are read (joined); any other part (an image, audio, a file) is refused, naming it.
pub fn message_content(content: Option<&Value>, at: &str) -> Result<String, ApiError> {
    content_with_images(content, at, None)
}

/// The images of a request's messages, with where the first one is.
#[derive(Default)]
pub struct Images {
    pub bytes: Vec<Vec<u8>>,
    pub first_at: Option<String>,
}

/// A message's content as text, the one place message content is read. With `images`, an
/// `image_url` part (a data URL) becomes an `IMAGE_MARKER` and its bytes go to `images`;
/// without, it is refused like any part that is not text.
pub fn content_with_images(
    content: Option<&Value>,
    at: &str,
    mut images: Option<&mut Images>,
) -> Result<String, ApiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
                let url = p
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str);
                match (
                    kind,
                    p.get("text").and_then(Value::as_str),
                    url,
                    &mut images,
                ) {
                    ("text" | "input_text" | "output_text", Some(t), _, _) => text.push_str(t),
                    ("image_url", _, Some(u), Some(images)) => {
                        images
                            .bytes
                            .push(image_bytes(u, &format!("{at}.content[{j}].image_url"))?);
                        images
                            .first_at
                            .get_or_insert_with(|| format!("{at}.content[{j}].type"));
                        text.push_str(IMAGE_MARKER);
                    }
                    _ => {
                        let also = if images.is_some() {
                            " and image_url"
                        } else {
                            ""
                        };
                        return Err(unsupported(
                            &format!("{at}.content[{j}].type"),
                            &format!(
                                "content parts of type '{kind}' are not read; only text{also}"
                            ),
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(bad(
            &format!("{at}.content"),
            "must be a string or an array of parts",
        )),
    }
}

pub(super) fn message(m: &Value, i: usize, images: &mut Images) -> Result<ChatMessage, ApiError> {
    let at = format!("messages[{i}]");
    let obj = m.as_object().ok_or_else(|| bad(&at, "must be an object"))?;
    for key in obj.keys() {
        match key.as_str() {
            "role" | "content" | "name" | "tool_calls" | "tool_call_id" | "refusal"
            | "reasoning_content" => {}
            "audio" | "function_call" => {
                return Err(unsupported(&format!("{at}.{key}"), "not read here"))
            }
            other => return Err(bad(&format!("{at}.{other}"), "unknown field")),
        }
    }
    let named = obj.get("role").and_then(Value::as_str).unwrap_or("");
    let role = Role::parse(named).ok_or_else(|| {
        ApiError::bad("invalid_role", format!("{at}.role: unknown role '{named}'"))
            .param(&format!("{at}.role"))
    })?;
    let mut content = content_with_images(obj.get("content"), &at, Some(images))?;
    // An assistant's refusal is what it said.
    if let (true, Some(r)) = (content.is_empty(), string(obj, "refusal")?) {
        content = r.to_string();
    }
    let tool_calls = match obj.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(calls)) if role == Role::Assistant => {
            for (j, c) in calls.iter().enumerate() {
                let f = &c["function"];
                if f["name"].as_str().is_none() || f["arguments"].as_str().is_none() {
                    return Err(bad(
                        &format!("{at}.tool_calls[{j}]"),
                        "needs function.name and function.arguments (strings)",
                    ));
                }
            }
            calls.clone()
        }
        Some(_) => {
            return Err(bad(
                &format!("{at}.tool_calls"),
                "an assistant's array of calls",
            ))
        }
    };
    let tool_call_id = string(obj, "tool_call_id")?.map(str::to_string);
    if role == Role::Tool && tool_call_id.is_none() {
        return Err(bad(
            &format!("{at}.tool_call_id"),
            "a tool message names its call",
        ));
    }
    Ok(ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
        name: string(obj, "name")?.map(str::to_string),
        reasoning_content: string(obj, "reasoning_content")?.map(str::to_string),
    })
}

/// Function tools in OpenAI's chat shape; any other kind is refused.
pub fn tools(v: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = v
        .as_array()
        .ok_or_else(|| bad("tools", "must be an array"))?;
    for (i, t) in list.iter().enumerate() {
        if t["type"] != "function" {
            return Err(unsupported(
                &format!("tools[{i}].type"),
                "only function tools are served",
            ));
        }
        if t["function"]["name"].as_str().is_none_or(str::is_empty) {
            return Err(bad(
                &format!("tools[{i}].function.name"),
                "a function needs a name",
            ));
        }
    }
    Ok(list.clone())
}

/// `tool_choice`: a word or `{"type": "function", "function": {"name": N}}` (chat) /
/// `{"type": "function", "name": N}` (responses).
pub fn tool_choice(v: Option<&Value>, tools: &[Value]) -> Result<ToolChoice, ApiError> {
    let choice = match v {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(bad("tool_choice", "auto, none, required or a function")),
        },
        Some(o) if o["type"] == "function" => {
            let name = o["function"]["name"].as_str().or(o["name"].as_str());
            ToolChoice::Function(
                name.ok_or_else(|| bad("tool_choice", "a function choice names the function"))?
                    .to_string(),
            )
        }
        Some(_) => {
            return Err(unsupported(
                "tool_choice",
                "only auto, none, required or a function",
            ))
        }
    };
    match &choice {
        ToolChoice::Required if tools.is_empty() => Err(bad("tool_choice", "required needs tools")),
        ToolChoice::Function(n) if !tools.iter().any(|t| t["function"]["name"] == n.as_str()) => {
            Err(bad("tool_choice", format!("no tool named '{n}'")))
        }
        _ => Ok(choice),
    }
}
