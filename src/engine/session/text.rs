//! A session's text: the conversation through the model's chat template (or as plain text,
//! for a base model), text to tokens and tokens back to bytes.

use super::chat::Message;
use super::Session;
use crate::engine::measure::EngineError;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_char, CString};

impl Session {
    /// The conversation formatted by the chat template.
    pub fn format(&self, messages: &[Message], add_assistant: bool) -> Result<String, EngineError> {
        if let Some(j) = &self.jinja {
            return j.apply(messages, add_assistant);
        }
        let owned: Vec<(CString, CString)> = messages
            .iter()
            .map(|m| {
                (
                    CString::new(m.role.as_str()).unwrap_or_default(),
                    CString::new(m.content.replace('\0', "")).unwrap_or_default(),
                )
            })
            .collect();
        let msgs: Vec<sys::llama_chat_message> = owned
            .iter()
            .map(|(r, c)| sys::llama_chat_message {
                role: r.as_ptr(),
                content: c.as_ptr(),
            })
            .collect();
        let chars: usize = messages
            .iter()
            .map(|m| m.role.as_str().len() + m.content.len())
            .sum();
        let mut buf = vec![0u8; chars * 2 + 256];
        for _ in 0..2 {
            // SAFETY: the message array and the template are NUL-terminated strings that
            // outlive the call; `buf` has the capacity given.
            let n = unsafe {
                sys::llama_chat_apply_template(
                    self.template.as_ptr(),
                    msgs.as_ptr(),
                    msgs.len(),
                    add_assistant,
                    buf.as_mut_ptr() as *mut c_char,
                    buf.len() as i32,
                )
            };
            if n < 0 {
                return Err(EngineError("the chat template could not be applied".into()));
            }
            if (n as usize) <= buf.len() {
                buf.truncate(n as usize);
                return Ok(String::from_utf8_lossy(&buf).into_owned());
            }
            buf.resize(n as usize, 0);
        }
        Err(EngineError("the chat template output kept growing".into()))
    }

    /// Tokens of `text` (special tokens in the text are parsed, as in a formatted chat).
    pub fn tokenize(&self, text: &str, add_special: bool) -> Vec<sys::llama_token> {
        // SAFETY: `text` and `out` outlive the call, which writes at most `out.len()` tokens.
        fill(text.len() + 8, |out: &mut [sys::llama_token]| unsafe {
            sys::llama_tokenize(
                self.vocab,
                text.as_ptr() as *const c_char,
                text.len() as i32,
                out.as_mut_ptr(),
                out.len() as i32,
                add_special,
                true,
            )
        })
    }

    pub(crate) fn piece(&self, token: sys::llama_token) -> Vec<u8> {
        // SAFETY: `buf` outlives the call, which writes at most `buf.len()` bytes.
        fill(64, |buf: &mut [u8]| unsafe {
            sys::llama_token_to_piece(
                self.vocab,
                token,
                buf.as_mut_ptr() as *mut c_char,
                buf.len() as i32,
                0,
                false,
            )
        })
    }
}

/// The conversation as plain text, for a base model (or `--raw`): the messages' contents in
/// order, one newline between two messages, roles left out and nothing added at the end, so
/// that one message is exactly its text (`run --prompt T --raw` and `/v1/completions` with
/// `prompt: T` see the same tokens).
pub fn plain_text(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Calls a llama.cpp function that fills a buffer and returns the count written, or minus
/// the size it needs when the buffer is too small.
fn fill<T: Default + Clone>(initial: usize, mut f: impl FnMut(&mut [T]) -> i32) -> Vec<T> {
    let mut buf = vec![T::default(); initial];
    let mut n = f(&mut buf);
    if n < 0 {
        buf.resize(n.unsigned_abs() as usize, T::default());
        n = f(&mut buf);
    }
    buf.truncate(n.max(0) as usize);
    buf
}

#[cfg(test)]
mod tests {
    use super::plain_text;
    use crate::engine::session::chat::{Message, Role};

    #[test]
    fn plain_text_is_the_contents_one_line_apart() {
        let m = |r: &str, c: &str| Message::new(Role::parse(r).unwrap(), c);
        assert_eq!(
            plain_text(&[m("user", "The capital of France is")]),
            "The capital of France is"
        );
        assert_eq!(
            plain_text(&[
                m("system", "Facts."),
                m("user", "Paris is"),
                m("assistant", " a city")
            ]),
            "Facts.\nParis is\n a city"
        );
        assert_eq!(plain_text(&[]), "");
    }
}
