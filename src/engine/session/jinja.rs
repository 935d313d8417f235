//! The model's own chat template, through llama.cpp's chat layer (`common_chat_templates_*`,
//! src/engine/chat_template.cpp): the Jinja template in the file, rendered as llama-server
//! renders it.

use crate::engine::measure::EngineError;
use llama_cpp_sys_2 as sys;
use std::ffi::{c_char, c_void, CStr, CString};

extern "C" {
    fn layerfit_chat_init(
        model: *const sys::llama_model,
        err: *mut c_char,
        err_cap: i32,
    ) -> *mut c_void;
    fn layerfit_chat_free(tmpls: *mut c_void);
    fn layerfit_chat_apply(
        tmpls: *const c_void,
        roles: *const *const c_char,
        contents: *const *const c_char,
        n: i32,
        add_generation_prompt: bool,
        out: *mut c_char,
        cap: std::ffi::c_long,
    ) -> std::ffi::c_long;
}

/// A model's chat templates, as llama.cpp's chat layer holds them.
pub struct Templates(*mut c_void);

impl Templates {
    /// The templates of `model` (it must outlive them).
    pub fn new(model: *const sys::llama_model) -> Result<Templates, EngineError> {
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

    /// The conversation (`role`, `content` pairs) rendered by the template.
    pub fn apply(
        &self,
        messages: &[(String, String)],
        add_assistant: bool,
    ) -> Result<String, EngineError> {
        let owned: Vec<(CString, CString)> = messages
            .iter()
            .map(|(r, c)| {
                (
                    CString::new(r.replace('\0', "")).unwrap_or_default(),
                    CString::new(c.replace('\0', "")).unwrap_or_default(),
                )
            })
            .collect();
        let roles: Vec<*const c_char> = owned.iter().map(|(r, _)| r.as_ptr()).collect();
        let contents: Vec<*const c_char> = owned.iter().map(|(_, c)| c.as_ptr()).collect();
        let chars: usize = messages.iter().map(|(r, c)| r.len() + c.len()).sum();
        let mut buf = vec![0u8; chars * 2 + 1024];
        for _ in 0..2 {
            // SAFETY: the pointer arrays hold `n` NUL-terminated strings that outlive the
            // call; `buf` has the capacity given.
            let n = unsafe {
                layerfit_chat_apply(
                    self.0,
                    roles.as_ptr(),
                    contents.as_ptr(),
                    roles.len() as i32,
                    add_assistant,
                    buf.as_mut_ptr() as *mut c_char,
                    buf.len() as std::ffi::c_long,
                )
            };
            if n < 0 {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                return Err(EngineError(format!(
                    "the chat template could not be applied: {}",
                    String::from_utf8_lossy(&buf[..end])
                )));
            }
            let n = n as usize;
            if n < buf.len() {
                buf.truncate(n);
                return Ok(String::from_utf8_lossy(&buf).into_owned());
            }
            buf.resize(n + 1, 0);
        }
        Err(EngineError("the chat template output kept growing".into()))
    }
}

impl Drop for Templates {
    fn drop(&mut self) {
        // SAFETY: created by `layerfit_chat_init`, freed once.
        unsafe { layerfit_chat_free(self.0) };
    }
}
