//! Reading a Timeloop mapping file (`mapping:` list of temporal, spatial and datatype/bypass
//! entries) into qmap's [`Mapping`].
//!
//! Mappings: factors missing at a level are 1, factor 0 means the whole dimension, missing
//! permutation dims are appended (outermost), spatial dims at permutation positions `< split`
//! go to X (default: all X). Timeloop does not fill a missing factor with the remaining
//! quotient: a mapping whose factors do not multiply to the bounds is an error, as in
//! Timeloop. A tensor the mapping says nothing about at a level is kept there (Timeloop's
//! default) unless the architecture forbids it.

use super::constraints::target_level;
use super::export::full_permutation;
use super::messages::{unknown_data_space, unknown_dim};
use super::yaml::{get, join, load_value, req_str, seq, str_list, value_text, value_u64, Src};
use crate::model::{Arch, KeepRule, LevelMapping, Loop, Mapping, Problem};
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::path::Path;

/// Entry keys of Timeloop's mapping format that qmap's model does not support.
const UNSUPPORTED_KEYS: &[&str] = &[
    "no_link_transfer",
    "no_multicast_no_reduction",
    "no_temporal_reuse",
    "rmw_on_first_writeback",
    "passthrough",
];

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
    let doc = if base.is_empty() { "(document)" } else { base };
    let mut entries = Entries::new(arch.levels.len(), problem.tensors.len());
    for (i, e) in seq(list, doc, src)?.iter().enumerate() {
        let p = if base.is_empty() {
            format!("[{i}]")
        } else {
            format!("{base}[{i}]")
        };
        entries.read(e, &p, arch, problem, src)?;
    }
    let levels: Vec<LevelMapping> = (0..arch.levels.len())
        .map(|l| entries.level_mapping(l, arch, problem))
        .collect();
    if let Some((d, prod)) = first_unmet_bound(&levels, problem) {
        return Err(src.err(
            doc,
            format!(
                "the factors of dimension {} multiply to {prod}, not to its bound {} \
                 (Timeloop rejects such a mapping; missing factors count as 1)",
                problem.dims[d], problem.bounds[d]
            ),
        ));
    }
    Ok(Mapping { levels })
}

/// The first dimension whose loops, over all levels, do not multiply to its bound, with the
/// product they give.
pub(super) fn first_unmet_bound(
    levels: &[LevelMapping],
    problem: &Problem,
) -> Option<(usize, u64)> {
    (0..problem.dims.len()).find_map(|d| {
        let prod = levels
            .iter()
            .flat_map(|lm| lm.temporal.iter().chain(&lm.spatial_x).chain(&lm.spatial_y))
            .filter(|l| l.dim == d)
            .fold(1u64, |acc, l| acc.saturating_mul(l.factor));
        (prod != problem.bounds[d]).then_some((d, prod))
    })
}

/// What a mapping file's entries say, level by level, before the levels are assembled.
struct Entries {
    temporal: Vec<Option<Directive>>,
    spatial: Vec<Option<Directive>>,
    /// Per level and tensor: kept, bypassed, or not said.
    keep: Vec<Vec<Option<bool>>>,
}

impl Entries {
    fn new(levels: usize, tensors: usize) -> Entries {
        Entries {
            temporal: (0..levels).map(|_| None).collect(),
            spatial: (0..levels).map(|_| None).collect(),
            keep: vec![vec![None; tensors]; levels],
        }
    }

    /// Reads one entry (`target`, `type` and what the type takes) at field path `p`.
    fn read(
        &mut self,
        e: &Value,
        p: &str,
        arch: &Arch,
        problem: &Problem,
        src: Src,
    ) -> Result<(), InputError> {
        if e.as_mapping().is_none() {
            return Err(src.err(p, "must be a mapping (target, type, ...)"));
        }
        let ty = req_str(e, "type", p, src)?;
        let target = get(e, "target").ok_or_else(|| src.err(join(p, "target"), "missing"))?;
        let l = target_level(arch, target, &join(p, "target"), src)?;
        if let Some(k) = UNSUPPORTED_KEYS.iter().find(|k| get(e, k).is_some()) {
            return Err(src.err(join(p, k), "not supported by qmap's model"));
        }
        match ty {
            "temporal" | "spatial" => {
                let d = Directive::parse(e, p, problem, src)?;
                self.set_directive(ty, l, d, p, arch, src)
            }
            "datatype" | "bypass" => self.read_keep(e, l, p, problem, src),
            other => Err(src.err(
                join(p, "type"),
                format!("`{other}`: expected temporal, spatial, datatype or bypass"),
            )),
        }
    }

    /// Records the `ty` (temporal or spatial) directive of level `l`: one of each per level,
    /// spatial factors only where the level fans out.
    fn set_directive(
        &mut self,
        ty: &str,
        l: usize,
        d: Directive,
        p: &str,
        arch: &Arch,
        src: Src,
    ) -> Result<(), InputError> {
        let slot = if ty == "temporal" {
            &mut self.temporal[l]
        } else {
            let (fx, fy) = arch.fanout(l);
            if fx * fy == 1 && d.factors.iter().any(|(_, f)| *f > 1) {
                return Err(src.err(
                    join(p, "target"),
                    format!(
                        "{} has no spatial fanout to the level below it",
                        arch.levels[l].name
                    ),
                ));
            }
            &mut self.spatial[l]
        };
        if slot.is_some() {
            return Err(src.err(
                join(p, "target"),
                format!("a second {ty} entry for level `{}`", arch.levels[l].name),
            ));
        }
        *slot = Some(d);
        Ok(())
    }

    /// Records the `keep` and `bypass` lists of a datatype / bypass entry for level `l`.
    fn read_keep(
        &mut self,
        e: &Value,
        l: usize,
        p: &str,
        problem: &Problem,
        src: Src,
    ) -> Result<(), InputError> {
        for (key, val) in [("keep", true), ("bypass", false)] {
            for name in str_list(get(e, key), &join(p, key), src)? {
                let t = problem.tensor_index(&name).ok_or_else(|| {
                    src.err(join(p, key), unknown_data_space(&name, &problem.tensors))
                })?;
                self.keep[l][t] = Some(val);
            }
        }
        Ok(())
    }

    /// Level `l`'s mapping: permutations padded with the dims they omit (outermost, as
    /// Timeloop does), spatial loops split into X and Y, tensors kept unless an entry or the
    /// architecture says otherwise.
    fn level_mapping(&self, l: usize, arch: &Arch, problem: &Problem) -> LevelMapping {
        let nd = problem.dims.len();
        let mut lm = LevelMapping::default();
        if let Some(d) = &self.temporal[l] {
            lm.temporal = d
                .full_perm(nd)
                .into_iter()
                .map(|dim| Loop {
                    dim,
                    factor: d.factor(dim),
                })
                .collect();
        }
        if let Some(d) = &self.spatial[l] {
            let split = d.split.unwrap_or(nd);
            for (pos, dim) in d.full_perm(nd).into_iter().enumerate() {
                let f = d.factor(dim);
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
            .map(|(t, tensor)| match self.keep[l][t] {
                Some(k) => k,
                None => level.keep_rule(&tensor.name) != KeepRule::Never,
            })
            .collect();
        lm
    }
}

/// One level's temporal or spatial directive.
struct Directive {
    factors: Vec<(usize, u64)>,
    perm: Vec<usize>,
    split: Option<usize>,
}

impl Directive {
    /// The `factors`, `permutation` and `split` of the entry at field path `p`.
    fn parse(e: &Value, p: &str, problem: &Problem, src: Src) -> Result<Directive, InputError> {
        let factors = match get(e, "factors") {
            Some(f) => parse_factors(f, problem, &join(p, "factors"), src)?,
            None => Vec::new(),
        };
        let perm = match get(e, "permutation") {
            Some(v) => parse_permutation(v, problem, &join(p, "permutation"), src)?,
            None => Vec::new(),
        };
        let split = match get(e, "split") {
            None => None,
            Some(v) => Some(
                value_u64(v).ok_or_else(|| src.err(join(p, "split"), "must be an integer >= 0"))?
                    as usize,
            ),
        };
        Ok(Directive {
            factors,
            perm,
            split,
        })
    }

    /// The permutation, innermost first, followed by the dims it leaves out.
    fn full_perm(&self, nd: usize) -> Vec<usize> {
        full_permutation(self.perm.iter().copied(), nd)
    }

    /// The factor of `dim` (1 when the entry does not name it).
    fn factor(&self, dim: usize) -> u64 {
        self.factors
            .iter()
            .find(|(x, _)| *x == dim)
            .map(|(_, f)| *f)
            .unwrap_or(1)
    }
}

/// Parses Timeloop factors (`C1 M8`, `P=4 Q=4`, `N=1,C=1`, a list of such tokens, or a mapping
/// `{C: 1}`) into (dim, factor); factor 0 means the whole dimension (Timeloop's rule).
fn parse_factors(
    v: &Value,
    problem: &Problem,
    path: &str,
    src: Src,
) -> Result<Vec<(usize, u64)>, InputError> {
    let pairs = match v {
        Value::Mapping(m) => {
            let mut pairs = Vec::new();
            for (k, x) in m {
                let k = value_text(k).unwrap_or_default();
                let x =
                    value_text(x).ok_or_else(|| src.err(join(path, &k), "must be an integer"))?;
                pairs.push((k, x));
            }
            pairs
        }
        Value::String(s) => factor_tokens(s, path, src)?,
        Value::Sequence(_) => factor_tokens(&str_list(Some(v), path, src)?.join(" "), path, src)?,
        _ => return Err(src.err(path, "must be a string like `C1 M8` or `P=4 Q=4`")),
    };
    let mut out: Vec<(usize, u64)> = Vec::new();
    for (name, num) in pairs {
        let d = problem
            .dim_index(&name)
            .ok_or_else(|| src.err(path, unknown_dim(&name, problem)))?;
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

/// Splits factor text (`C1 M8`, `P=4 Q=4`, `N=1,C=1`; a `#` starts a comment) into (name,
/// digits) pairs.
fn factor_tokens(text: &str, path: &str, src: Src) -> Result<Vec<(String, String)>, InputError> {
    let text = text.split('#').next().unwrap_or("");
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
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
        i = skip_while(&chars, i, |c| c.is_ascii_alphabetic() || c == '_');
        let name: String = chars[start..i].iter().collect();
        let ns = skip_while(&chars, i, |c| c.is_whitespace() || c == '=');
        i = skip_while(&chars, ns, |c| c.is_ascii_digit());
        if ns == i {
            return Err(src.err(path, format!("`{text}`: dimension `{name}` has no factor")));
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
    Ok(pairs)
}

/// The index of the first char at or after `i` that `keep` rejects (or the end).
fn skip_while(chars: &[char], mut i: usize, keep: impl Fn(char) -> bool) -> usize {
    while i < chars.len() && keep(chars[i]) {
        i += 1;
    }
    i
}

/// Parses a permutation (innermost first): `CMRS`, `C M R S`, or a list of names.
fn parse_permutation(
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
        let d = problem
            .dim_index(&t)
            .ok_or_else(|| src.err(path, unknown_dim(&t, problem)))?;
        if out.contains(&d) {
            return Err(src.err(path, format!("dimension `{t}` appears twice")));
        }
        out.push(d);
    }
    Ok(out)
}
