//! Typed reads of a model's metadata under its architecture's key names, with errors that
//! name the key, and the two hyperparameter groups `load_hparams` derives from several
//! keys: the sliding-window pattern and the recurrent state sizes.

use super::arch::{ArchRules, SwaKind};
use super::keys::{self, arch_key};
use super::shape::{RecurrentState, ShapeError};
use crate::gguf::{Metadata, Value};

/// A model's metadata read under its architecture's key names (`{arch}` in a key template).
pub(super) struct Meta<'a> {
    pub(super) md: &'a Metadata,
    pub(super) arch: &'a str,
}

impl Meta<'_> {
    pub(super) fn key(&self, template: &str) -> String {
        arch_key(template, self.arch)
    }

    pub(super) fn get(&self, template: &str) -> Option<&Value> {
        self.md.get(&self.key(template))
    }

    pub(super) fn u64_opt(&self, template: &str) -> Result<Option<u64>, ShapeError> {
        match self.get(template) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                ShapeError(format!(
                    "metadata key '{}' should be a non-negative integer, found {}",
                    self.key(template),
                    describe(v)
                ))
            }),
        }
    }

    pub(super) fn u32_opt(&self, template: &str) -> Result<Option<u32>, ShapeError> {
        match self.u64_opt(template)? {
            None => Ok(None),
            Some(v) => u32::try_from(v).map(Some).map_err(|_| {
                ShapeError(format!(
                    "metadata key '{}' value {v} is out of range",
                    self.key(template)
                ))
            }),
        }
    }

    pub(super) fn u64_req(&self, template: &str) -> Result<u64, ShapeError> {
        self.u64_opt(template)?
            .ok_or_else(|| ShapeError(format!("metadata key '{}' is missing", self.key(template))))
    }

    /// `get_key_or_arr`: a scalar for every layer, or one value per layer.
    pub(super) fn per_layer(
        &self,
        template: &str,
        n: usize,
    ) -> Result<Option<Vec<u32>>, ShapeError> {
        let key = self.key(template);
        let Some(v) = self.md.get(&key) else {
            return Ok(None);
        };
        if let Some(x) = v.as_u64() {
            let x = u32::try_from(x).map_err(|_| {
                ShapeError(format!("metadata key '{key}' value {x} is out of range"))
            })?;
            return Ok(Some(vec![x; n]));
        }
        let arr = v.as_array().ok_or_else(|| {
            ShapeError(format!(
                "metadata key '{key}' should be an integer or an array, found {}",
                describe(v)
            ))
        })?;
        if arr.len as usize != n {
            return Err(ShapeError(format!(
                "metadata key '{key}' has {} values for {n} blocks",
                arr.len
            )));
        }
        let items = arr.items.as_ref().ok_or_else(|| {
            ShapeError(format!(
                "metadata key '{key}' is too long ({} values)",
                arr.len
            ))
        })?;
        items
            .iter()
            .map(|x| {
                x.as_u64()
                    .and_then(|x| u32::try_from(x).ok())
                    .ok_or_else(|| {
                        ShapeError(format!(
                            "metadata key '{key}' has a non-integer value {}",
                            describe(x)
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(a) => format!("an array of {} values", a.len),
        Value::Float(f) => format!("{f}"),
        Value::Int(i) => format!("{i}"),
        Value::Uint(u) => format!("{u}"),
        Value::Bool(b) => format!("{b}"),
    }
}

/// `load_swa_pattern`: an explicit per-layer bool array wins, then a pattern period from the
/// file, then the architecture's default period.
pub(super) fn sliding_window(
    m: &Meta<'_>,
    rules: &ArchRules,
    n: usize,
) -> Result<(SwaKind, u32, Vec<bool>), ShapeError> {
    let none = (SwaKind::None, 0, vec![false; n]);
    let Some(rule) = rules.swa else {
        return Ok(none);
    };
    if rules.swa_disabled {
        return Ok(none);
    }
    let window = m.u32_opt(keys::SLIDING_WINDOW)?;
    let n_swa = match (window, rule.only_if_window, rule.default_window) {
        (Some(w), true, _) if w > 0 => w,
        (_, true, _) => return Ok(none),
        (Some(w), false, _) => w,
        (None, false, Some(d)) => d,
        (None, false, None) => {
            return Err(ShapeError(format!(
                "metadata key '{}' is missing (required for {})",
                m.key(keys::SLIDING_WINDOW),
                m.arch
            )))
        }
    };
    let key = m.key(keys::SLIDING_WINDOW_PATTERN);
    let is_swa = match m.md.get(&key) {
        Some(Value::Array(a)) => {
            let items = a
                .items
                .as_ref()
                .filter(|_| a.len as usize == n)
                .ok_or_else(|| {
                    ShapeError(format!(
                        "metadata key '{key}' has {} values for {n} blocks",
                        a.len
                    ))
                })?;
            items.iter().map(|v| v.as_u64().unwrap_or(0) != 0).collect()
        }
        Some(v) => {
            let p = v
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| {
                    ShapeError(format!(
                        "metadata key '{key}' should be an integer or an array"
                    ))
                })?;
            set_swa_pattern(n, p, rule.dense_first)
        }
        None => set_swa_pattern(n, rule.pattern, rule.dense_first),
    };
    Ok((rule.kind, n_swa, is_swa))
}

/// `llama_hparams::set_swa_pattern`.
fn set_swa_pattern(n: usize, p: u32, dense_first: bool) -> Vec<bool> {
    (0..n as u32)
        .map(|il| {
            if p == 0 {
                true
            } else if dense_first {
                il % p != 0
            } else {
                il % p < p - 1
            }
        })
        .collect()
}

/// `llama_hparams::n_embd_r` / `n_embd_s` for Mamba, RWKV and short-convolution layers.
pub(super) fn recurrent_state(m: &Meta<'_>, n_embd: u64) -> Result<RecurrentState, ShapeError> {
    let wkv = m.u64_opt(keys::WKV_HEAD_SIZE)?.unwrap_or(0);
    if wkv != 0 {
        let shift = m.u64_opt(keys::TOKEN_SHIFT_COUNT)?.unwrap_or(2);
        return Ok(RecurrentState {
            n_embd_r: shift * n_embd,
            n_embd_s: n_embd * wkv,
        });
    }
    let l_cache = m.u64_opt(keys::SHORTCONV_L_CACHE)?.unwrap_or(0);
    if l_cache != 0 {
        return Ok(RecurrentState {
            n_embd_r: n_embd * (l_cache - 1),
            n_embd_s: 0,
        });
    }
    let d_conv = m.u64_opt(keys::SSM_CONV_KERNEL)?.unwrap_or(0);
    let d_inner = m.u64_opt(keys::SSM_INNER_SIZE)?.unwrap_or(0);
    let d_state = m.u64_opt(keys::SSM_STATE_SIZE)?.unwrap_or(0);
    let n_group = m.u64_opt(keys::SSM_GROUP_COUNT)?.unwrap_or(0);
    Ok(RecurrentState {
        n_embd_r: d_conv.saturating_sub(1) * (d_inner + 2 * n_group * d_state),
        n_embd_s: d_state * d_inner,
    })
}
