//! Typed reads of a model's metadata under its architecture's key names, with errors that
//! name the key, and the two hyperparameter groups `load_hparams` derives from several
//! keys: the sliding-window pattern and the recurrent state sizes.

use super::arch::{ArchRules, MemoryKind, Recurrence, SwaKind, Window};
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
    attends: &[bool],
) -> Result<(SwaKind, u32, Vec<bool>), ShapeError> {
    let n = attends.len();
    let none = (SwaKind::None, 0, vec![false; n]);
    let Some(rule) = rules.swa else {
        return Ok(none);
    };
    if rules.swa_disabled {
        return Ok(none);
    }
    let window = m.u32_opt(keys::SLIDING_WINDOW)?;
    let n_swa = match (rule.window, window) {
        (Window::Required, Some(w)) | (Window::Default(_), Some(w)) => w,
        (Window::Default(d), None) => d,
        (Window::Required, None) => {
            return Err(ShapeError(format!(
                "metadata key '{}' is missing (required for {})",
                m.key(keys::SLIDING_WINDOW),
                m.arch
            )))
        }
        (Window::IfPresent, Some(w)) if w > 0 => w,
        (Window::IfPresent, _) => return Ok(none),
        (Window::Fixed(w), _) => w,
        (Window::FixedIfPresent(w), Some(x)) if x > 0 => w,
        (Window::FixedIfPresent(_), _) => return Ok(none),
        (Window::FixedUnlessZero(_), Some(0)) => return Ok(none),
        (Window::FixedUnlessZero(w), _) => w,
    };
    if rule.attention_layers {
        return Ok((rule.kind, n_swa, attends.to_vec()));
    }
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

/// Which layers are recurrent and which get a KV cache: `is_recr_impl` as each
/// architecture's `load_arch_hparams` sets it, and `create_memory`'s layer filters.
/// `n_main` excludes trailing multi-token-prediction blocks.
pub(super) struct LayerKinds {
    pub(super) recurrent: Vec<bool>,
    pub(super) attends: Vec<bool>,
}

pub(super) fn layer_kinds(
    m: &Meta<'_>,
    rules: &ArchRules,
    n_main: usize,
    n_head_kv: &[u32],
    n_ff: &[u32],
) -> Result<LayerKinds, ShapeError> {
    let n = n_head_kv.len();
    let (recurrent, attends): (Vec<bool>, Vec<bool>) = match (rules.memory, rules.recurrence) {
        (MemoryKind::None, _) => (vec![false; n], vec![false; n]),
        (MemoryKind::Recurrent, _) => (vec![true; n], vec![false; n]),
        (MemoryKind::Attention, _) | (MemoryKind::Hybrid, Recurrence::ByMemory) => {
            (vec![false; n], vec![true; n])
        }
        (MemoryKind::Hybrid, Recurrence::Both) => (vec![true; n], vec![true; n]),
        (MemoryKind::Hybrid, Recurrence::NoKvHeads) => {
            let r: Vec<bool> = (0..n).map(|il| il < n_main && n_head_kv[il] == 0).collect();
            let a = r.iter().map(|r| !r).collect();
            (r, a)
        }
        (MemoryKind::Hybrid, Recurrence::NoKvHeadsNoFfn) => (0..n)
            .map(|il| {
                let r = il < n_main && n_head_kv[il] == 0 && n_ff[il] == 0;
                (r, !r && n_ff[il] == 0)
            })
            .unzip(),
        (MemoryKind::Hybrid, Recurrence::Interval(default)) => {
            let r = match recurrent_layers(m, n)? {
                Some(r) => r,
                None => {
                    let p = m.u32_opt(keys::FULL_ATTENTION_INTERVAL)?.unwrap_or(default);
                    if p == 0 {
                        return Err(ShapeError(format!(
                            "metadata key '{}' is 0",
                            m.key(keys::FULL_ATTENTION_INTERVAL)
                        )));
                    }
                    (0..n)
                        .map(|il| il < n_main && !(il as u32 + 1).is_multiple_of(p))
                        .collect()
                }
            };
            let a = (0..n).map(|il| il < n_main && !r[il]).collect();
            (r, a)
        }
    };
    Ok(LayerKinds { recurrent, attends })
}

/// `attention.recurrent_layers`: one bool (or 0/1) a block.
fn recurrent_layers(m: &Meta<'_>, n: usize) -> Result<Option<Vec<bool>>, ShapeError> {
    let key = m.key(keys::RECURRENT_LAYERS);
    let Some(v) = m.md.get(&key) else {
        return Ok(None);
    };
    let items = v
        .as_array()
        .filter(|a| a.len as usize == n)
        .and_then(|a| a.items.as_ref())
        .ok_or_else(|| {
            ShapeError(format!(
                "metadata key '{key}' should be an array of {n} values, found {}",
                describe(v)
            ))
        })?;
    Ok(Some(
        items
            .iter()
            .map(|x| match x {
                Value::Bool(b) => *b,
                other => other.as_u64().unwrap_or(0) != 0,
            })
            .collect(),
    ))
}

/// `llama_hparams::n_embd_r` / `n_embd_s` for Mamba, RWKV, short-convolution, Kimi delta
/// attention (KDA) and MiniMax lightning-attention layers. `n_head` and `head_k` are layer
/// 0's head count and key head size (`n_head()`, `n_embd_head_k_full`).
pub(super) fn recurrent_state(
    m: &Meta<'_>,
    n_embd: u64,
    n_head: u64,
    head_k: u64,
) -> Result<RecurrentState, ShapeError> {
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
    let kda = m.u64_opt(keys::KDA_HEAD_DIM)?.unwrap_or(0);
    if kda != 0 {
        let conv = if d_conv > 0 { d_conv - 1 } else { 3 };
        return Ok(RecurrentState {
            n_embd_r: 3 * conv * n_head * kda,
            n_embd_s: kda * kda * n_head,
        });
    }
    let d_inner = m.u64_opt(keys::SSM_INNER_SIZE)?.unwrap_or(0);
    let d_state = m.u64_opt(keys::SSM_STATE_SIZE)?.unwrap_or(0);
    let n_group = m.u64_opt(keys::SSM_GROUP_COUNT)?.unwrap_or(0);
    // MiniMax-01's lightning attention: `n_embd_head_la = n_embd_head_k_full`.
    let n_embd_s = if m.arch == "minimax-01" {
        head_k * head_k * n_head
    } else {
        d_state * d_inner
    };
    Ok(RecurrentState {
        n_embd_r: d_conv.saturating_sub(1) * (d_inner + 2 * n_group * d_state),
        n_embd_s,
    })
}
