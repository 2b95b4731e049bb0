//! Reading a Timeloop problem (any shape, v0.3 or v0.4 spellings, the built-in `cnn-layer`)
//! into qmap's [`Problem`], with the seed fork's per-data-space bit-widths.

use super::messages::unknown_data_space;
use super::yaml::{
    get, get_any, join, load_value, parse_value, req_str, section, seq, str_list, value_text,
    value_u64, Src,
};
use crate::model::{Problem, Tensor, Term};
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

/// Timeloop's built-in `cnn-layer` shape (what `shape: cnn-layer` refers to).
pub(super) const CNN_LAYER_SHAPE: &str = "
name: CNN-Layer
dimensions: [R, S, P, Q, C, M, N]
coefficients:
  - {name: Wstride, default: 1}
  - {name: Hstride, default: 1}
  - {name: Wdilation, default: 1}
  - {name: Hdilation, default: 1}
data-spaces:
  - name: Weights
    projection: [[[C]], [[M]], [[R]], [[S]]]
  - name: Inputs
    projection: [[[N]], [[C]], [[R, Wdilation], [P, Wstride]], [[S, Hdilation], [Q, Hstride]]]
  - name: Outputs
    projection: [[[N]], [[M]], [[Q]], [[P]]]
    read-write: true
";

/// Parses one term (`coef * dim`, `dim`, `[dim]`, `[dim, coef]`) of a projection rank.
pub(super) fn parse_term(
    v: &Value,
    dims: &[String],
    coefs: &HashMap<String, i64>,
    path: &str,
    src: Src,
) -> Result<Term, InputError> {
    let parts: Vec<String> = match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                value_text(x).ok_or_else(|| src.err(format!("{path}[{i}]"), "must be a name"))
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) => s.split('*').map(|x| x.trim().to_string()).collect(),
        _ => return Err(src.err(path, "must be a dimension or [dimension, coefficient]")),
    };
    let mut dim = None;
    let mut coef: i64 = 1;
    for (i, p) in parts.iter().enumerate() {
        // Timeloop writes [dim, coefficient]: the first name that is a dimension is the dim.
        if dim.is_none() && (i == 0 || !coefs.contains_key(p)) {
            if let Some(d) = dims.iter().position(|x| x == p) {
                dim = Some(d);
                continue;
            }
        }
        if let Some(c) = coefs.get(p) {
            coef = coef.saturating_mul(*c);
        } else if let Ok(c) = p.parse::<i64>() {
            coef = coef.saturating_mul(c);
        } else {
            return Err(src.err(
                path,
                format!(
                    "`{p}` is neither a dimension ({}) nor a coefficient",
                    dims.join(" ")
                ),
            ));
        }
    }
    let dim = dim.ok_or_else(|| src.err(path, "term names no dimension"))?;
    if coef < 0 {
        return Err(src.err(
            path,
            format!("negative coefficient {coef} is not supported"),
        ));
    }
    Ok(Term {
        coef: coef as u64,
        dim,
    })
}

/// Parses one rank of a projection: a list of terms or an expression `a*b + c`.
pub(super) fn parse_rank(
    v: &Value,
    dims: &[String],
    coefs: &HashMap<String, i64>,
    path: &str,
    src: Src,
) -> Result<Vec<Term>, InputError> {
    let terms: Vec<Term> = match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, t)| parse_term(t, dims, coefs, &format!("{path}[{i}]"), src))
            .collect::<Result<_, _>>()?,
        Value::String(s) => s
            .split('+')
            .map(|t| parse_term(&Value::String(t.trim().to_string()), dims, coefs, path, src))
            .collect::<Result<_, _>>()?,
        _ => return Err(src.err(path, "must be a list of terms")),
    };
    if terms.is_empty() {
        return Err(src.err(path, "empty rank"));
    }
    Ok(terms)
}

/// Per-data-space bit-widths, by data-space name.
type BitWidths = HashMap<String, u32>;

/// Loads a Timeloop problem (v0.3 `data-spaces` / v0.4 `data_spaces`, any shape) and the seed
/// fork's per-data-space bit-widths (`instance.bitwidths`, or `instance.commonDatawidth` for
/// all of them), returned separately.
pub fn load_problem(path: &Path) -> Result<(Problem, Option<HashMap<String, u32>>), InputError> {
    let src = Src { file: path };
    let root = load_value(path)?;
    let (prob, ppath) = section(&root, "problem");
    let spath = join(ppath, "shape");
    let shape = shape_of(prob, &spath, src)?;
    let name = get(&shape, "name").and_then(value_text).unwrap_or_default();
    let dims = read_dims(&shape, &spath, src)?;
    let (instance, ipath) = match get(prob, "instance") {
        Some(i) => (i, join(ppath, "instance")),
        None => (prob, ppath.to_string()),
    };
    let coefs = read_coefficients(&shape, &spath, instance, &ipath, src)?;
    let bounds = read_bounds(&dims, instance, &ipath, src)?;
    let tensors = read_data_spaces(&shape, &spath, &dims, &coefs, src)?;
    let bits = read_bit_widths(instance, &ipath, &tensors, src)?;
    let problem = Problem {
        name,
        dims,
        bounds,
        tensors,
    };
    problem.check_ranges().map_err(|m| src.err(ipath, m))?;
    Ok((problem, bits))
}

/// The problem's shape: inline, or Timeloop's built-in `cnn-layer` named by a string.
fn shape_of<'v>(prob: &'v Value, spath: &str, src: Src) -> Result<Cow<'v, Value>, InputError> {
    let shape = get(prob, "shape").ok_or_else(|| src.err(spath, "missing"))?;
    let Value::String(s) = shape else {
        return Ok(Cow::Borrowed(shape));
    };
    let n = s.to_ascii_lowercase().replace('_', "-");
    if n == "cnn-layer" || n == "cnn-layer.yaml" {
        Ok(Cow::Owned(parse_value(src.file, CNN_LAYER_SHAPE)?))
    } else {
        Err(src.err(
            spath,
            format!("unknown built-in shape `{s}` (only cnn-layer); give the shape inline"),
        ))
    }
}

/// The shape's dimension names: at least one, each once.
fn read_dims(shape: &Value, spath: &str, src: Src) -> Result<Vec<String>, InputError> {
    let dpath = join(spath, "dimensions");
    let dims = str_list(get(shape, "dimensions"), &dpath, src)?;
    if dims.is_empty() {
        return Err(src.err(dpath, "at least one dimension is required"));
    }
    for (i, d) in dims.iter().enumerate() {
        if dims[..i].contains(d) {
            return Err(src.err(
                format!("{dpath}[{i}]"),
                format!("dimension `{d}` appears twice"),
            ));
        }
    }
    Ok(dims)
}

/// The shape's coefficients: their defaults, overridden by the instance.
fn read_coefficients(
    shape: &Value,
    spath: &str,
    instance: &Value,
    ipath: &str,
    src: Src,
) -> Result<HashMap<String, i64>, InputError> {
    let mut coefs: HashMap<String, i64> = HashMap::new();
    let Some(cs) = get(shape, "coefficients") else {
        return Ok(coefs);
    };
    let cpath = join(spath, "coefficients");
    for (i, c) in seq(cs, &cpath, src)?.iter().enumerate() {
        let p = format!("{cpath}[{i}]");
        let n = req_str(c, "name", &p, src)?;
        let default = match get(c, "default") {
            None => 1,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| src.err(join(&p, "default"), "must be an integer"))?,
        };
        let value = match get(instance, n) {
            None => default,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| src.err(join(ipath, n), "must be an integer"))?,
        };
        coefs.insert(n.to_string(), value);
    }
    Ok(coefs)
}

/// The instance's bound of every dimension (positive integers).
fn read_bounds(
    dims: &[String],
    instance: &Value,
    ipath: &str,
    src: Src,
) -> Result<Vec<u64>, InputError> {
    let mut bounds = Vec::new();
    for d in dims {
        let v = get(instance, d)
            .ok_or_else(|| src.err(join(ipath, d), "missing (every dimension needs a bound)"))?;
        match value_u64(v) {
            Some(b) if b > 0 => bounds.push(b),
            _ => return Err(src.err(join(ipath, d), "must be a positive integer")),
        }
    }
    Ok(bounds)
}

/// The shape's data spaces (at least one, names unique) as tensors.
fn read_data_spaces(
    shape: &Value,
    spath: &str,
    dims: &[String],
    coefs: &HashMap<String, i64>,
    src: Src,
) -> Result<Vec<Tensor>, InputError> {
    let (ds, dspath) = match get_any(shape, &["data-spaces", "data_spaces", "dataspaces"]) {
        Some((k, v)) => (v, join(spath, k)),
        None => return Err(src.err(join(spath, "data_spaces"), "missing")),
    };
    let mut tensors: Vec<Tensor> = Vec::new();
    for (i, t) in seq(ds, &dspath, src)?.iter().enumerate() {
        let p = format!("{dspath}[{i}]");
        let tname = req_str(t, "name", &p, src)?;
        if tensors.iter().any(|x| x.name == tname) {
            return Err(src.err(
                join(&p, "name"),
                format!("data space `{tname}` appears twice"),
            ));
        }
        tensors.push(read_data_space(t, tname, &p, dims, coefs, src)?);
    }
    if tensors.is_empty() {
        return Err(src.err(dspath, "at least one data space is required"));
    }
    Ok(tensors)
}

/// One data space (`name`, `projection`, `read-write`) at field path `p`.
fn read_data_space(
    t: &Value,
    tname: &str,
    p: &str,
    dims: &[String],
    coefs: &HashMap<String, i64>,
    src: Src,
) -> Result<Tensor, InputError> {
    let ppath = join(p, "projection");
    let proj = get(t, "projection").ok_or_else(|| src.err(ppath.clone(), "missing"))?;
    let ranks = seq(proj, &ppath, src)?
        .iter()
        .enumerate()
        .map(|(r, v)| parse_rank(v, dims, coefs, &format!("{ppath}[{r}]"), src))
        .collect::<Result<Vec<_>, _>>()?;
    let read_write = match get_any(t, &["read-write", "read_write"]) {
        None => false,
        Some((k, v)) => v
            .as_bool()
            .ok_or_else(|| src.err(join(p, k), "must be true or false"))?,
    };
    Ok(Tensor {
        name: tname.to_string(),
        ranks,
        read_write,
    })
}

/// The seed fork's bit-widths: `commonDatawidth` for every data space, overridden per data
/// space by `bitwidths`.
fn read_bit_widths(
    instance: &Value,
    ipath: &str,
    tensors: &[Tensor],
    src: Src,
) -> Result<Option<BitWidths>, InputError> {
    let mut bits: Option<BitWidths> = None;
    if let Some((k, v)) = get_any(instance, &["commonDatawidth", "common_datawidth"]) {
        let b = bit_width(v, join(ipath, k), src)?;
        bits = Some(tensors.iter().map(|t| (t.name.clone(), b)).collect());
    }
    if let Some(bw) = get(instance, "bitwidths") {
        let bpath = join(ipath, "bitwidths");
        let m = bw
            .as_mapping()
            .ok_or_else(|| src.err(bpath.clone(), "must map data-space names to bits"))?;
        let out = bits.get_or_insert_with(HashMap::new);
        for (k, v) in m {
            let k = value_text(k).unwrap_or_default();
            if !tensors.iter().any(|t| t.name == k) {
                return Err(src.err(join(&bpath, &k), unknown_data_space(&k, tensors)));
            }
            out.insert(k.clone(), bit_width(v, join(&bpath, &k), src)?);
        }
    }
    Ok(bits)
}

/// One bit-width: an integer in 1..=64.
fn bit_width(v: &Value, field: String, src: Src) -> Result<u32, InputError> {
    value_u64(v)
        .filter(|b| *b > 0 && *b <= 64)
        .map(|b| b as u32)
        .ok_or_else(|| src.err(field, "must be an integer in 1..=64"))
}
