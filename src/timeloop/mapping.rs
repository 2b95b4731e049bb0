//! Reading a Timeloop mapping file (`mapping:` list of temporal, spatial and datatype/bypass
//! entries) into qmap's [`Mapping`].

use super::constraints::target_level;
use super::yaml::{get, join, load_value, req_str, seq, str_list, value_text, value_u64, Src};
use crate::model::{Arch, KeepRule, LevelMapping, Loop, Mapping, Problem};
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::path::Path;

/// Parses Timeloop factors (`C1 M8`, `P=4 Q=4`, `N=1,C=1`, a list of such tokens, or a mapping
/// `{C: 1}`) into (dim, factor); factor 0 means the whole dimension (Timeloop's rule).
pub(super) fn parse_factors(
    v: &Value,
    problem: &Problem,
    path: &str,
    src: Src,
) -> Result<Vec<(usize, u64)>, InputError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                let k = value_text(k).unwrap_or_default();
                let x =
                    value_text(x).ok_or_else(|| src.err(join(path, &k), "must be an integer"))?;
                pairs.push((k, x));
            }
        }
        Value::String(_) | Value::Sequence(_) => {
            let text = match v {
                Value::String(s) => s.clone(),
                _ => str_list(Some(v), path, src)?.join(" "),
            };
            let text = text.split('#').next().unwrap_or("");
            let chars: Vec<char> = text.chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                if c.is_whitespace() || c == ',' || c == ';' {
                    i += 1;
                    continue;
                }
                if !c.is_ascii_alphabetic() {
                    return Err(src.err(
                        path,
                        format!(
                            "`{text}`: expected a dimension name at `{}`",
                            chars[i..].iter().collect::<String>()
                        ),
                    ));
                }
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphabetic() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '=') {
                    i += 1;
                }
                let ns = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                if ns == i {
                    return Err(
                        src.err(path, format!("`{text}`: dimension `{name}` has no factor"))
                    );
                }
                let num: String = chars[ns..i].iter().collect();
                // A residual `,N` (Timeloop's imperfect factorization) is not supported.
                if i + 1 < chars.len() && chars[i] == ',' && chars[i + 1].is_ascii_digit() {
                    return Err(src.err(
                        path,
                        format!("`{text}`: residual factors (`{name}={num},R`) are not supported"),
                    ));
                }
                pairs.push((name, num));
            }
        }
        _ => return Err(src.err(path, "must be a string like `C1 M8` or `P=4 Q=4`")),
    }
    let mut out: Vec<(usize, u64)> = Vec::new();
    for (name, num) in pairs {
        let d = problem.dim_index(&name).ok_or_else(|| {
            src.err(
                path,
                format!(
                    "unknown dimension `{name}` (dims: {})",
                    problem.dims.join(" ")
                ),
            )
        })?;
        let f: u64 = num.trim().parse().map_err(|_| {
            src.err(
                path,
                format!("`{name}`: `{num}` is not a non-negative integer"),
            )
        })?;
        let f = if f == 0 { problem.bounds[d] } else { f };
        if out.iter().any(|(x, _)| *x == d) {
            return Err(src.err(path, format!("dimension `{name}` appears twice")));
        }
        out.push((d, f));
    }
    Ok(out)
}

/// Parses a permutation (innermost first): `CMRS`, `C M R S`, or a list of names.
pub(super) fn parse_permutation(
    v: &Value,
    problem: &Problem,
    path: &str,
    src: Src,
) -> Result<Vec<usize>, InputError> {
    let tokens: Vec<String> = match v {
        Value::Sequence(_) => str_list(Some(v), path, src)?,
        Value::String(s) => {
            let words: Vec<String> = s
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            if words.iter().all(|w| problem.dim_index(w).is_some()) {
                words
            } else {
                s.chars()
                    .filter(|c| !c.is_whitespace() && *c != ',')
                    .map(|c| c.to_string())
                    .collect()
            }
        }
        _ => return Err(src.err(path, "must be a string of dimension names")),
    };
    let mut out = Vec::new();
    for t in tokens {
        let d = problem.dim_index(&t).ok_or_else(|| {
            src.err(
                path,
                format!("unknown dimension `{t}` (dims: {})", problem.dims.join(" ")),
            )
        })?;
        if out.contains(&d) {
            return Err(src.err(path, format!("dimension `{t}` appears twice")));
        }
        out.push(d);
    }
    Ok(out)
}

/// One level's temporal or spatial directive.
pub(super) struct Directive {
    factors: Vec<(usize, u64)>,
    perm: Vec<usize>,
    split: Option<usize>,
}

/// Loads a Timeloop mapping (a top-level `mapping:` list, possibly next to other keys, or a bare
/// list) for `arch` and `problem`.
pub fn load_mapping(path: &Path, arch: &Arch, problem: &Problem) -> Result<Mapping, InputError> {
    let src = Src { file: path };
    let root = load_value(path)?;
    let (list, base) = match get(&root, "mapping") {
        Some(m) => (m, "mapping"),
        None if root.is_sequence() => (&root, ""),
        None => return Err(src.err("mapping", "missing")),
    };
    let nl = arch.levels.len();
    let nt = problem.tensors.len();
    let nd = problem.dims.len();
    let mut temporal: Vec<Option<Directive>> = (0..nl).map(|_| None).collect();
    let mut spatial: Vec<Option<Directive>> = (0..nl).map(|_| None).collect();
    let mut keep: Vec<Vec<Option<bool>>> = vec![vec![None; nt]; nl];
    let unsupported = [
        "no_link_transfer",
        "no_multicast_no_reduction",
        "no_temporal_reuse",
        "rmw_on_first_writeback",
        "passthrough",
    ];
    for (i, e) in seq(list, if base.is_empty() { "(document)" } else { base }, src)?
        .iter()
        .enumerate()
    {
        let p = if base.is_empty() {
            format!("[{i}]")
        } else {
            format!("{base}[{i}]")
        };
        if e.as_mapping().is_none() {
            return Err(src.err(p, "must be a mapping (target, type, ...)"));
        }
        let ty = req_str(e, "type", &p, src)?;
        let target = get(e, "target").ok_or_else(|| src.err(join(&p, "target"), "missing"))?;
        let l = target_level(arch, target, &join(&p, "target"), src)?;
        if let Some(k) = unsupported.iter().find(|k| get(e, k).is_some()) {
            return Err(src.err(join(&p, k), "not supported by qmap's model"));
        }
        match ty {
            "temporal" | "spatial" => {
                let factors = match get(e, "factors") {
                    Some(f) => parse_factors(f, problem, &join(&p, "factors"), src)?,
                    None => Vec::new(),
                };
                let perm = match get(e, "permutation") {
                    Some(v) => parse_permutation(v, problem, &join(&p, "permutation"), src)?,
                    None => Vec::new(),
                };
                let split = match get(e, "split") {
                    None => None,
                    Some(v) => Some(
                        value_u64(v)
                            .ok_or_else(|| src.err(join(&p, "split"), "must be an integer >= 0"))?
                            as usize,
                    ),
                };
                let d = Directive {
                    factors,
                    perm,
                    split,
                };
                let slot = if ty == "temporal" {
                    &mut temporal[l]
                } else {
                    let (fx, fy) = arch.fanout(l);
                    if fx * fy == 1 && d.factors.iter().any(|(_, f)| *f > 1) {
                        return Err(src.err(
                            join(&p, "target"),
                            format!(
                                "{} has no spatial fanout to the level below it",
                                arch.levels[l].name
                            ),
                        ));
                    }
                    &mut spatial[l]
                };
                if slot.is_some() {
                    return Err(src.err(
                        join(&p, "target"),
                        format!("a second {ty} entry for level `{}`", arch.levels[l].name),
                    ));
                }
                *slot = Some(d);
            }
            "datatype" | "bypass" => {
                for (key, val) in [("keep", true), ("bypass", false)] {
                    for name in str_list(get(e, key), &join(&p, key), src)? {
                        let t = problem.tensor_index(&name).ok_or_else(|| {
                            src.err(
                                join(&p, key),
                                format!(
                                    "unknown data space `{name}` (data spaces: {})",
                                    problem
                                        .tensors
                                        .iter()
                                        .map(|t| t.name.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                        })?;
                        keep[l][t] = Some(val);
                    }
                }
            }
            other => {
                return Err(src.err(
                    join(&p, "type"),
                    format!("`{other}`: expected temporal, spatial, datatype or bypass"),
                ))
            }
        }
    }
    // Assemble, padding permutations with the dims they omit (outermost, as Timeloop does).
    let full_perm = |d: &Directive| -> Vec<usize> {
        let mut perm = d.perm.clone();
        for x in 0..nd {
            if !perm.contains(&x) {
                perm.push(x);
            }
        }
        perm
    };
    let factor = |d: &Directive, dim: usize| -> u64 {
        d.factors
            .iter()
            .find(|(x, _)| *x == dim)
            .map(|(_, f)| *f)
            .unwrap_or(1)
    };
    let mut levels = Vec::with_capacity(nl);
    for l in 0..nl {
        let mut lm = LevelMapping::default();
        if let Some(d) = &temporal[l] {
            lm.temporal = full_perm(d)
                .into_iter()
                .map(|dim| Loop {
                    dim,
                    factor: factor(d, dim),
                })
                .collect();
        }
        if let Some(d) = &spatial[l] {
            let split = d.split.unwrap_or(nd);
            for (pos, dim) in full_perm(d).into_iter().enumerate() {
                let f = factor(d, dim);
                if f == 1 {
                    continue;
                }
                let lp = Loop { dim, factor: f };
                if pos < split {
                    lm.spatial_x.push(lp);
                } else {
                    lm.spatial_y.push(lp);
                }
            }
        }
        let level = &arch.levels[l];
        lm.keep = problem
            .tensors
            .iter()
            .enumerate()
            .map(|(t, tensor)| match keep[l][t] {
                Some(k) => k,
                None => level.keep_rule(&tensor.name) != KeepRule::Never,
            })
            .collect();
        levels.push(lm);
    }
    for d in 0..nd {
        let prod = levels
            .iter()
            .flat_map(|lm| lm.temporal.iter().chain(&lm.spatial_x).chain(&lm.spatial_y))
            .filter(|l| l.dim == d)
            .fold(1u64, |acc, l| acc.saturating_mul(l.factor));
        if prod != problem.bounds[d] {
            return Err(src.err(
                if base.is_empty() { "(document)" } else { base },
                format!(
                    "the factors of dimension {} multiply to {prod}, not to its bound {} \
                     (Timeloop rejects such a mapping; missing factors count as 1)",
                    problem.dims[d], problem.bounds[d]
                ),
            ));
        }
    }
    Ok(Mapping { levels })
}
