//! The YAML plumbing every Timeloop reader shares: loading and untagging documents, field
//! paths for errors, typed access to scalars and lists, and Timeloop's `name[a..b]` ranges.

use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::path::Path;

/// The file errors are reported against.
#[derive(Clone, Copy)]
pub(super) struct Src<'a> {
    pub file: &'a Path,
}

impl Src<'_> {
    pub(super) fn err(&self, field: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError::new(self.file, field, message)
    }
}

/// Removes YAML tags (`!Component` etc.) everywhere, keeping the tagged values.
fn untag(v: Value) -> Value {
    match v {
        Value::Tagged(t) => untag(t.value),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(untag).collect()),
        Value::Mapping(m) => {
            Value::Mapping(m.into_iter().map(|(k, v)| (untag(k), untag(v))).collect())
        }
        other => other,
    }
}

/// The text of a file.
pub(super) fn read_text(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))
}

pub(super) fn load_value(path: &Path) -> Result<Value, InputError> {
    parse_value(path, &read_text(path)?)
}

pub(super) fn parse_value(path: &Path, text: &str) -> Result<Value, InputError> {
    let mut v = crate::spec::yaml_value(path, text)?;
    v.apply_merge()
        .map_err(|e| InputError::new(path, "(document)", format!("invalid YAML merge: {e}")))?;
    Ok(untag(v))
}

/// `parent.key`, or `key` at the root.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A non-null value under `key` of a mapping.
pub(super) fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The section under `key` and its field path, or (no such key) the whole document at the
/// root path.
pub(super) fn section<'v>(root: &'v Value, key: &'static str) -> (&'v Value, &'static str) {
    match get(root, key) {
        Some(v) => (v, key),
        None => (root, ""),
    }
}

/// The first of `keys` present (non-null) in `v`, with the key found.
pub(super) fn get_any<'v>(
    v: &'v Value,
    keys: &[&'static str],
) -> Option<(&'static str, &'v Value)> {
    keys.iter().find_map(|k| get(v, k).map(|x| (*k, x)))
}

pub(super) fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A scalar as text (strings, numbers and booleans).
pub(super) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn req_str<'v>(
    v: &'v Value,
    key: &str,
    path: &str,
    src: Src,
) -> Result<&'v str, InputError> {
    match get(v, key) {
        None => Err(src.err(join(path, key), "missing")),
        Some(x) => x
            .as_str()
            .ok_or_else(|| src.err(join(path, key), "must be a string")),
    }
}

pub(super) fn seq<'v>(v: &'v Value, path: &str, src: Src) -> Result<&'v [Value], InputError> {
    v.as_sequence()
        .map(|s| s.as_slice())
        .ok_or_else(|| src.err(path, "must be a list"))
}

/// A list of strings (a single string counts as a one-element list; null as empty).
pub(super) fn str_list(v: Option<&Value>, path: &str, src: Src) -> Result<Vec<String>, InputError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                value_text(x).ok_or_else(|| src.err(format!("{path}[{i}]"), "must be a string"))
            })
            .collect(),
        Some(_) => Err(src.err(path, "must be a list of names")),
    }
}

/// Splits `name[a..b]` into the base name and its number of elements (`b - a + 1`).
pub fn parse_instance_name(raw: &str) -> Result<(String, u64), String> {
    let raw = raw.trim();
    let Some(open) = raw.find('[') else {
        return Ok((raw.to_string(), 1));
    };
    let rest = &raw[open + 1..];
    let close = rest
        .find(']')
        .ok_or_else(|| format!("`{raw}`: unclosed `[` in the instance range"))?;
    if !rest[close + 1..].trim().is_empty() {
        return Err(format!("`{raw}`: text after the instance range"));
    }
    let inner = &rest[..close];
    let (a, b) = inner
        .split_once("..")
        .ok_or_else(|| format!("`{raw}`: instance range must read `[first..last]`"))?;
    let parse = |s: &str| -> Result<u64, String> {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{raw}`: `{}` is not a non-negative integer", s.trim()))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if b < a {
        return Err(format!("`{raw}`: empty instance range"));
    }
    let base = raw[..open].trim();
    if base.is_empty() {
        return Err(format!("`{raw}`: missing name before the instance range"));
    }
    let n = (b - a)
        .checked_add(1)
        .ok_or_else(|| format!("`{raw}`: instance range too large"))?;
    Ok((base.to_string(), n))
}

/// Removes every `[...]` group of a name.
pub(super) fn strip_ranges(name: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}
