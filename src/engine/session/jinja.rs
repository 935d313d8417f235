//! The model's own chat template, through llama.cpp's chat layer (`common/chat.h`,
//! src/engine/chat_template.cpp): the Jinja template in the file, rendered as llama-server
//! renders it, with the tools, the tool choice and the JSON schema of a request; the grammar
//! that holds the answer to them; and the parser that reads the answer back into content,
//! reasoning and tool calls. Requests and results cross the boundary as JSON text.

use crate::engine::measure::EngineError;
use llama_cpp_sys_2 as sys;
use serde_json::{json, Value};
use std::ffi::{c_char, c_void, CStr, CString};

extern "C" {
    fn layerfit_chat_init(
        model: *const sys::llama_model,
        err: *mut c_char,
        err_cap: i32,
    ) -> *mut c_void;
    fn layerfit_chat_init_source(
        src: *const c_char,
        bos: *const c_char,
        eos: *const c_char,
        err: *mut c_char,
        err_cap: i32,
    ) -> *mut c_void;
    fn layerfit_chat_free(tmpls: *mut c_void);
    fn layerfit_chat_string_free(s: *mut c_char);
    fn layerfit_chat_apply_json(tmpls: *const c_void, request: *const c_char) -> *mut c_char;
    fn layerfit_json_schema_to_grammar(schema: *const c_char) -> *mut c_char;
    fn layerfit_chat_parser_new(
        params: *const c_char,
        err: *mut c_char,
        err_cap: i32,
    ) -> *mut c_void;
    fn layerfit_chat_parser_free(parser: *mut c_void);
    fn layerfit_chat_parser_feed(
        parser: *mut c_void,
        text: *const c_char,
        is_partial: bool,
    ) -> *mut c_char;
}

/// `text` as a C string (a NUL inside cannot cross; it is dropped).
fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

/// Reads and frees a string the shim returned: its JSON, or its `{"error"}` as an error
/// that starts with `what`.
fn shim_json(s: *mut c_char, what: &str) -> Result<Value, EngineError> {
    if s.is_null() {
        return Err(EngineError(format!("{what}: out of memory")));
    }
    // SAFETY: the shim returned a NUL-terminated string it allocated; it is read, then freed
    // once, here.
    let text = unsafe {
        let t = CStr::from_ptr(s).to_string_lossy().into_owned();
        layerfit_chat_string_free(s);
        t
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| EngineError(format!("{what}: unreadable answer from llama.cpp: {e}")))?;
    match v.get("error").and_then(Value::as_str) {
        Some(e) => Err(EngineError(format!("{what}: {e}"))),
        None => Ok(v),
    }
}

/// A model's chat templates, as llama.cpp's chat layer holds them.
pub struct Templates(*mut c_void);

impl Templates {
    /// The templates of `model` (it must outlive them).
    pub(crate) fn new(model: *const sys::llama_model) -> Result<Templates, EngineError> {
        let mut err = [0 as c_char; 512];
        // SAFETY: `model` is a loaded model; `err` has the capacity given.
        let t = unsafe { layerfit_chat_init(model, err.as_mut_ptr(), err.len() as i32) };
        if t.is_null() {
            // SAFETY: the shim wrote a NUL-terminated message within `err`.
            let why = unsafe { CStr::from_ptr(err.as_ptr()) };
            return Err(EngineError(format!(
                "llama.cpp cannot read the chat template: {}",
                why.to_string_lossy()
            )));
        }
        Ok(Templates(t))
    }

    /// Templates from Jinja source, with no model: `bos` and `eos` are the texts of the
    /// tokens the template may name.
    pub fn from_source(src: &str, bos: &str, eos: &str) -> Result<Templates, EngineError> {
        let (src, bos, eos) = (c_text(src), c_text(bos), c_text(eos));
        let mut err = [0 as c_char; 512];
        // SAFETY: the strings are NUL-terminated and outlive the call; `err` has the
        // capacity given.
        let t = unsafe {
            layerfit_chat_init_source(
                src.as_ptr(),
                bos.as_ptr(),
                eos.as_ptr(),
                err.as_mut_ptr(),
                512,
            )
        };
        if t.is_null() {
            // SAFETY: the shim wrote a NUL-terminated message within `err`.
            let why = unsafe { CStr::from_ptr(err.as_ptr()) };
            return Err(EngineError(format!(
                "llama.cpp cannot read the chat template: {}",
                why.to_string_lossy()
            )));
        }
        Ok(Templates(t))
    }

    /// The conversation (`role`, `content` pairs) rendered by the template.
    pub fn apply(
        &self,
        messages: &[super::chat::Message],
        add_assistant: bool,
    ) -> Result<String, EngineError> {
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
            .collect();
        let out = self.apply_json(&json!({
            "messages": messages, "add_generation_prompt": add_assistant,
        }))?;
        Ok(out["prompt"].as_str().unwrap_or_default().to_string())
    }

    /// `common_chat_templates_apply` on a request in llama-server's terms (`messages` as
    /// OpenAI sends them, `tools`, `tool_choice`, `parallel_tool_calls`, `json_schema`,
    /// `add_generation_prompt`, `enable_thinking`): the prompt, the grammar with its triggers,
    /// the preserved tokens, the additional stops and the parser's settings (the shim's
    /// comment lists the fields).
    pub fn apply_json(&self, request: &Value) -> Result<Value, EngineError> {
        let req = c_text(&request.to_string());
        // SAFETY: `self.0` is live; `req` is NUL-terminated and outlives the call.
        let out = unsafe { layerfit_chat_apply_json(self.0, req.as_ptr()) };
        shim_json(out, "the chat template could not be applied")
    }
}

impl Drop for Templates {
    fn drop(&mut self) {
        // SAFETY: created by `layerfit_chat_init`, freed once.
        unsafe { layerfit_chat_free(self.0) };
    }
}

/// A JSON schema as a GBNF grammar, by llama.cpp's json-schema-to-grammar (an empty schema
/// means any object, as in llama-server).
pub fn json_schema_to_grammar(schema: &Value) -> Result<String, EngineError> {
    let s = c_text(&schema.to_string());
    // SAFETY: `s` is NUL-terminated and outlives the call.
    let out = unsafe { layerfit_json_schema_to_grammar(s.as_ptr()) };
    let v = shim_json(out, "the JSON schema cannot be turned into a grammar")?;
    Ok(v["grammar"].as_str().unwrap_or_default().to_string())
}

/// Reads one answer as it grows, with the chat format the template was applied with
/// (`common_chat_parse`): content, reasoning and tool calls, and what each step added.
pub struct ChatParser(*mut c_void);

// SAFETY: the parser is plain C++ data with no thread affinity; `&mut self` serialises use.
unsafe impl Send for ChatParser {}

impl ChatParser {
    /// A parser for an answer to a prompt from [`Templates::apply_json`] (`applied` is its
    /// result); tool calls are read only with `parse_tool_calls`.
    pub fn new(applied: &Value, parse_tool_calls: bool) -> Result<ChatParser, EngineError> {
        let mut params = applied.clone();
        params["parse_tool_calls"] = parse_tool_calls.into();
        let p = c_text(&params.to_string());
        let mut err = [0 as c_char; 512];
        // SAFETY: `p` is NUL-terminated and outlives the call; `err` has the capacity given.
        let h = unsafe { layerfit_chat_parser_new(p.as_ptr(), err.as_mut_ptr(), 512) };
        if h.is_null() {
            // SAFETY: the shim wrote a NUL-terminated message within `err`.
            let why = unsafe { CStr::from_ptr(err.as_ptr()) };
            return Err(EngineError(format!(
                "llama.cpp cannot read the chat format: {}",
                why.to_string_lossy()
            )));
        }
        Ok(ChatParser(h))
    }

    /// Adds `text` to the answer (`partial` until it has ended): `{"message": {"content",
    /// "reasoning_content", "tool_calls": [{"id", "name", "arguments"}]}, "deltas":
    /// [{"content", "reasoning_content", "index" (-1: no tool call), "id", "name",
    /// "arguments"}]}`.
    pub fn feed(&mut self, text: &str, partial: bool) -> Result<Value, EngineError> {
        let t = c_text(text);
        // SAFETY: `self.0` is live and used by one caller at a time; `t` outlives the call.
        let out = unsafe { layerfit_chat_parser_feed(self.0, t.as_ptr(), partial) };
        shim_json(out, "the answer could not be read in the chat format")
    }
}

impl Drop for ChatParser {
    fn drop(&mut self) {
        // SAFETY: created by `layerfit_chat_parser_new`, freed once.
        unsafe { layerfit_chat_parser_free(self.0) };
    }
}

impl super::Session {
    /// Whether llama.cpp's chat layer reads this model's template (tools and the template's
    /// own grammar need it).
    pub fn has_chat_layer(&self) -> bool {
        self.jinja.is_some()
    }

    /// The request through the model's Jinja template and llama.cpp's chat layer
    /// ([`Templates::apply_json`]); an error when llama.cpp cannot read the template (the
    /// session then formats with the C API's built-in templates, which know no tools).
    pub fn apply_chat(&self, request: &Value) -> Result<Value, EngineError> {
        match &self.jinja {
            Some(j) => j.apply_json(request),
            None => Err(EngineError(
                "llama.cpp's chat layer cannot read this model's chat template, so tools and response_format are not available".into(),
            )),
        }
    }
}

#[cfg(test)]
#[path = "jinja_tests.rs"]
mod tests;
