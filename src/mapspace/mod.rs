//! The mapspace: the one definition of the set of mappings qmap searches (shared by the MILP,
//! the exhaustive enumerator and random search), and the Timeloop-style constraints that
//! restrict it.
//!
//! # The space
//!
//! *Slots.* Per architecture level ℓ (innermost first): spatial X and spatial Y — the fanout
//! from ℓ to the level below, present only where [`Arch::fanout`] is > 1 in that direction —
//! then temporal. A mapping is
//! - a perfect factorisation of every dimension over the slots (the factors of a dim multiply
//!   to its bound; per level, the product over dims of the X factors is ≤ the X fanout, Y
//!   likewise). A dim may use both X and Y of one level unless a spatial permutation/split
//!   constraint places it on one axis (Timeloop itself never splits a dim over both axes; the
//!   unconstrained space here is a superset of Timeloop's);
//! - a loop order per level: a permutation of the level's non-unit temporal loops. Unit loops
//!   are represented (every dim appears once in each level's `temporal` list, unit loops
//!   innermost in dim order, as Timeloop places them) but their order is not enumerated. The
//!   order at level 0 is not enumerated either (Timeloop's `use_canonical_permutation` for
//!   tiling level 0): the loops of the innermost level only feed the MACs, so their order
//!   changes no count (checked in `tests/search.rs`); [`Mapspace::contains`] accepts any
//!   level-0 order that satisfies its permutation constraint;
//! - keep/bypass per (level, tensor): fixed where the architecture's keep rule is Must/Never or
//!   a constraint says so, free otherwise; the outermost level keeps what nothing forbids (as
//!   Timeloop's default bypass string ends in `1`); every tensor must be kept somewhere.
//!
//! Spatial loops are sets per axis (their order inside X or Y changes no count): a mapping
//! lists them in dim order.
//!
//! # Constraints (Timeloop v3 semantics, from `mapping/constraints.cpp` and
//! `mapspaces/{uber,subspaces}.cpp`)
//!
//! Sections `architecture_constraints`, `mapspace_constraints`, `constraints` (a list, or a map
//! with `targets`), or a bare `targets` list / a bare list; keys in either spelling (hyphens or
//! underscores). Each target entry has `target` (level name, an instance range such as
//! `DummyBuffer[0..13]` is ignored, or a storage-level index, innermost 0), `type` and the
//! keys of that type, directly or under `attributes` (or a nested `constraints` list):
//! - `temporal` / `spatial`: `factors` as `N=1,C=1`, `N=1 P=1 S=0`, `C1 M8` or a list of such
//!   strings: `D=v` fixes the factor (for `spatial`, the level's spatial factor of D, i.e. X·Y),
//!   `D<=v` / `D<v` / `D>=v` / `D>v` bound it. `D=0`: Timeloop reads 0 as the full bound of D
//!   ("Interpreting 0 to mean full problem dimension"); qmap reads it as the whole *remaining*
//!   factor: bound ÷ the factors fixed for D elsewhere, with every other unfixed slot of D at 1.
//!   The two agree whenever Timeloop's reading admits any mapping. A fixed factor larger than
//!   the bound is clamped to the bound (as Timeloop does).
//! - `permutation`: dims innermost first, one character per dim when given as a string
//!   (whitespace is ignored, as Timeloop reads it char by char: `NPQR SCM` is `NPQRSCM`; the
//!   space in the seed's files only marks the `split` point for the reader), or a list of
//!   names. It may be partial: the listed dims are the innermost loops in the listed order and
//!   the unlisted ones are free *outside* them (Timeloop's "baked prefix" + permutable suffix).
//!   Unit-factor loops are ignored when checking it (Timeloop moves them innermost).
//! - `split` (spatial only): the position in the spatial permutation where X ends: dims at
//!   positions `< split` go to X, the rest to Y (`split: 999` = all X, `split: 0` = all Y).
//!   Positions count every dim, unit factors included (Timeloop does not prune spatial levels
//!   with a user split). Unlisted dims of a partial permutation take the positions after the
//!   listed ones in any order: when the split falls among them they may go to either axis
//!   (each to one). Without `split`, a spatial permutation on a level with both X and Y
//!   fanouts restricts the split to a point of that order: no dim on X may come after a dim on
//!   Y (Timeloop enumerates the split point over the permutation).
//! - `bypass` / `datatype` / `bypassing`: `keep` and `bypass` lists of tensor names.
//! - `max_overbooked_proportion`, `utilization`/`parallelism`, `no_multicast`, `no_reduction`,
//!   `no_link_transfer`, `no_temporal_reuse`: not modelled; ignored with a note
//!   ([`Constraints::notes`]).
//!
//! Re-specifying a fixed factor, permutation or split of the same level differently is an
//! error, as in Timeloop (identical repeats are accepted; repeated bounds combine, the tighter
//! wins). A dimension a constraint names that the problem lacks is an error, except M and C on
//! a depthwise problem (dim G): those constraints are dropped with a note.
//!
//! # Counting, enumerating, sampling
//!
//! Each dim's allowed factor vectors ([`Mapspace::dim_choices`]) are listed once; the joint
//! constraints (fanouts, X/Y split order) are a layered DAG over the dims whose states are the
//! spatial products so far. Enumeration walks it depth-first (split into parts for
//! parallelism), then every loop order and keep pattern. [`Mapspace::size`] counts
//! factorisations × orders × keep patterns with a DP over the levels (exact in u128, also as
//! f64). [`Mapspace::sample`] follows Timeloop's random mapper — an index per sub-space — but
//! draws the factorisation uniformly among those that fit the fanouts (Timeloop draws it from
//! the per-dim cartesian product and rejects misfits later: the same distribution, without the
//! rejections), then a uniform order per level and a uniform keep pattern.

use crate::model::{Arch, KeepRule, Loop, Mapping, Problem};
use crate::spec::InputError;
use itertools::Itertools;
use rand::{Rng, RngExt};
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

// =============================================================================================
// Constraints
// =============================================================================================

/// A fixed factor: a value, or "the whole remaining factor" (`D=0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedFactor {
    Value(u64),
    Remaining,
}

/// Constraints on the factor of one dim in one loop kind of one level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FactorRule {
    pub fixed: Option<FixedFactor>,
    pub max: Option<u64>,
    pub min: Option<u64>,
    /// Where the rule came from (`file: field`), for messages.
    pub origin: String,
}

/// Constraints on the temporal or the spatial loops of one level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopConstraints {
    /// Factor rules by dimension name.
    pub factors: BTreeMap<String, FactorRule>,
    /// Dims innermost first; possibly partial; empty = unconstrained.
    pub permutation: Vec<String>,
    pub permutation_origin: String,
}

/// Which loops of a level a constraint addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoopKind {
    Temporal,
    Spatial,
}

/// The constraints of one architecture level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelConstraints {
    pub temporal: LoopConstraints,
    pub spatial: LoopConstraints,
    /// Timeloop's spatial split: permutation positions `< split` go to X.
    pub split: Option<u32>,
    pub split_origin: String,
    /// Keep (true) or bypass (false) per tensor name, with its origin.
    pub datatype: BTreeMap<String, (bool, String)>,
}

impl LevelConstraints {
    pub fn loops(&self, kind: LoopKind) -> &LoopConstraints {
        match kind {
            LoopKind::Temporal => &self.temporal,
            LoopKind::Spatial => &self.spatial,
        }
    }
    pub fn loops_mut(&mut self, kind: LoopKind) -> &mut LoopConstraints {
        match kind {
            LoopKind::Temporal => &mut self.temporal,
            LoopKind::Spatial => &mut self.spatial,
        }
    }
}

/// Mapspace constraints for one architecture, per level (innermost first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    pub levels: Vec<LevelConstraints>,
    /// Constraint kinds that were read but are not modelled.
    pub notes: Vec<String>,
}

/// Constraint types Timeloop knows that qmap's model has no use for.
const IGNORED_TYPES: &[&str] = &[
    "max_overbooked_proportion",
    "utilization",
    "parallelism",
    "no_multicast",
    "no_reduction",
    "no_multicast_no_reduction",
    "no_link_transfer",
    "no_link_transfer_no_multicast",
    "no_temporal_reuse",
];

/// Comparison in a factor constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Le,
    Lt,
    Ge,
    Gt,
}

fn norm_key(k: &str) -> String {
    k.replace('-', "_").to_ascii_lowercase()
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        _ => v,
    }
}

/// The value under `key` (either spelling) and the key as written.
fn get_kv<'v>(v: &'v Value, key: &str) -> Option<(&'v str, &'v Value)> {
    untag(v).as_mapping()?.iter().find_map(|(k, x)| {
        let ks = k.as_str()?;
        (norm_key(ks) == key).then_some((ks, untag(x)))
    })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match untag(v) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a factor text (`N=1,C=1`, `N=1 P=1 S=0`, `C1 M8`, `M<=8`) into (dim, op, value).
fn parse_factor_text(text: &str) -> Result<Vec<(String, Op, u64)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i == chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_alphabetic() {
            i += 1;
        }
        if i == start {
            return Err(format!(
                "cannot read `{}`: expected a dimension name such as `M=8`",
                chars[start..].iter().collect::<String>()
            ));
        }
        let name: String = chars[start..i].iter().collect();
        skip_ws(&mut i);
        let op = {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            match two.as_str() {
                "<=" => {
                    i += 2;
                    Op::Le
                }
                ">=" => {
                    i += 2;
                    Op::Ge
                }
                "==" => {
                    i += 2;
                    Op::Eq
                }
                _ => match chars.get(i) {
                    Some('=') => {
                        i += 1;
                        Op::Eq
                    }
                    Some('<') => {
                        i += 1;
                        Op::Lt
                    }
                    Some('>') => {
                        i += 1;
                        Op::Gt
                    }
                    _ => Op::Eq,
                },
            }
        };
        skip_ws(&mut i);
        let vstart = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        if i == vstart {
            return Err(format!(
                "`{name}`: expected a factor after the dimension name"
            ));
        }
        let value: u64 = chars[vstart..i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|e| format!("`{name}`: {e}"))?;
        out.push((name, op, value));
    }
    Ok(out)
}

fn parse_factors(v: &Value) -> Result<Vec<(String, Op, u64)>, String> {
    match untag(v) {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => {
            let mut out = Vec::new();
            for x in items {
                let t = scalar_text(x).ok_or("each factor must be a string such as `M=8`")?;
                out.extend(parse_factor_text(&t)?);
            }
            Ok(out)
        }
        Value::Mapping(m) => {
            let mut out = Vec::new();
            for (k, x) in m {
                let name = k.as_str().ok_or("factor keys must be dimension names")?;
                let v = untag(x).as_u64().ok_or("factor values must be integers")?;
                out.push((name.to_string(), Op::Eq, v));
            }
            Ok(out)
        }
        other => {
            let t = scalar_text(other).ok_or("must be a string such as `N=1 C=1` or a list")?;
            parse_factor_text(&t)
        }
    }
}

fn parse_permutation(v: &Value) -> Result<Vec<String>, String> {
    let out: Vec<String> = match untag(v) {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .iter()
            .map(|x| {
                scalar_text(x)
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| "each entry must be a dimension name".to_string())
            })
            .collect::<Result<_, _>>()?,
        other => {
            let t = scalar_text(other).ok_or("must be a string of dimension letters or a list")?;
            let mut dims = Vec::new();
            for c in t.chars().filter(|c| !c.is_whitespace() && *c != ',') {
                if !c.is_ascii_alphabetic() {
                    return Err(format!("`{c}` is not a dimension letter"));
                }
                dims.push(c.to_string());
            }
            dims
        }
    };
    if let Some(d) = out.iter().duplicates().next() {
        return Err(format!("dimension `{d}` appears twice"));
    }
    Ok(out)
}

fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match untag(v) {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .map(|x| scalar_text(x).ok_or_else(|| "must be a list of tensor names".to_string()))
            .collect(),
        other => scalar_text(other)
            .map(|s| vec![s])
            .ok_or_else(|| "must be a list of tensor names".to_string()),
    }
}

/// The level a `target` names: a level name (instance range ignored) or a storage index.
fn target_level(arch: &Arch, v: &Value) -> Result<usize, String> {
    if let Some(i) = untag(v).as_u64() {
        return if (i as usize) < arch.levels.len() {
            Ok(i as usize)
        } else {
            Err(format!("level index {i} out of range"))
        };
    }
    let name = scalar_text(v).ok_or("must be a level name")?;
    let name = match name.find('[') {
        Some(p) => name[..p].trim().to_string(),
        None => name.trim().to_string(),
    };
    arch.level_index(&name).ok_or_else(|| {
        format!(
            "unknown target `{name}` (levels: {})",
            arch.levels.iter().map(|l| l.name.as_str()).join(", ")
        )
    })
}

impl Constraints {
    /// No constraints for `arch`.
    pub fn new(arch: &Arch) -> Constraints {
        Constraints {
            levels: vec![LevelConstraints::default(); arch.levels.len()],
            notes: Vec::new(),
        }
    }

    /// Reads a Timeloop constraints file.
    pub fn from_file(path: &Path, arch: &Arch) -> Result<Constraints, InputError> {
        let mut c = Constraints::new(arch);
        c.add_file(path, arch)?;
        Ok(c)
    }

    /// Adds the constraints of a Timeloop constraints file (e.g. the mapspace constraints on
    /// top of the architecture constraints).
    pub fn add_file(&mut self, path: &Path, arch: &Arch) -> Result<(), InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        self.add_yaml_str(&text, path, arch)
    }

    /// Adds constraints from YAML text; `file` names the source in errors.
    pub fn add_yaml_str(&mut self, text: &str, file: &Path, arch: &Arch) -> Result<(), InputError> {
        let v = crate::spec::yaml_value(file, text)?;
        self.add_value(&v, file, "", arch)
    }

    /// Constraints from a YAML value (e.g. an instance's inline `constraints:`, with
    /// `field = "constraints"`); `file` and `field` locate it in errors.
    pub fn from_value(
        v: &Value,
        file: &Path,
        field: &str,
        arch: &Arch,
    ) -> Result<Constraints, InputError> {
        let mut c = Constraints::new(arch);
        c.add_value(v, file, field, arch)?;
        Ok(c)
    }

    /// Adds the constraints of a YAML value: a document with `architecture_constraints`,
    /// `mapspace_constraints`, `constraints` or `targets`, or a bare list of targets.
    pub fn add_value(
        &mut self,
        v: &Value,
        file: &Path,
        field: &str,
        arch: &Arch,
    ) -> Result<(), InputError> {
        if self.levels.len() != arch.levels.len() {
            self.levels
                .resize(arch.levels.len(), LevelConstraints::default());
        }
        let err = |f: String, m: String| InputError::new(file, f, m);
        let v = untag(v);
        let mut sections: Vec<(String, &Value)> = Vec::new();
        if v.is_sequence() {
            sections.push((field.to_string(), v));
        } else if v.is_mapping() {
            for key in [
                "architecture_constraints",
                "mapspace_constraints",
                "constraints",
                "targets",
            ] {
                if let Some((k, x)) = get_kv(v, key) {
                    sections.push((join(field, k), x));
                }
            }
            if sections.is_empty() {
                return Err(err(
                    if field.is_empty() {
                        "(document)".into()
                    } else {
                        field.into()
                    },
                    "no `architecture_constraints`, `mapspace_constraints`, `constraints` or \
                     `targets`"
                        .into(),
                ));
            }
        } else if !v.is_null() {
            return Err(err(
                field.to_string(),
                "must be a map of constraint sections or a list of targets".into(),
            ));
        }
        for (path, sec) in sections {
            let (list, lpath) = if sec.is_sequence() || sec.is_null() {
                (sec, path)
            } else if let Some((k, t)) = get_kv(sec, "targets") {
                (t, join(&path, k))
            } else if let Some((k, t)) = get_kv(sec, "constraints").filter(|(_, t)| t.is_sequence())
            {
                (t, join(&path, k))
            } else {
                return Err(err(join(&path, "targets"), "missing".into()));
            };
            let Some(items) = list.as_sequence() else {
                if list.is_null() {
                    continue;
                }
                return Err(err(lpath, "must be a list of targets".into()));
            };
            for (i, e) in items.iter().enumerate() {
                self.add_target(e, &format!("{lpath}[{i}]"), file, arch)?;
            }
        }
        Ok(())
    }

    fn add_target(
        &mut self,
        e: &Value,
        path: &str,
        file: &Path,
        arch: &Arch,
    ) -> Result<(), InputError> {
        let e = untag(e);
        if !e.is_mapping() {
            return Err(InputError::new(file, path, "must be a map"));
        }
        let (tkey, target) = get_kv(e, "target")
            .or_else(|| get_kv(e, "name"))
            .ok_or_else(|| InputError::new(file, join(path, "target"), "missing"))?;
        let level =
            target_level(arch, target).map_err(|m| InputError::new(file, join(path, tkey), m))?;
        match get_kv(e, "constraints").filter(|(_, c)| c.is_sequence()) {
            Some((k, list)) => {
                for (j, c) in list.as_sequence().unwrap().iter().enumerate() {
                    self.add_constraint(level, c, &format!("{}[{j}]", join(path, k)), file)?;
                }
                Ok(())
            }
            None => self.add_constraint(level, e, path, file),
        }
    }

    fn add_constraint(
        &mut self,
        level: usize,
        c: &Value,
        path: &str,
        file: &Path,
    ) -> Result<(), InputError> {
        let err = |f: String, m: String| InputError::new(file, f, m);
        let origin = |f: &str| format!("{}: {}", file.display(), f);
        let (tykey, ty) =
            get_kv(c, "type").ok_or_else(|| err(join(path, "type"), "missing".into()))?;
        let ty = scalar_text(ty)
            .ok_or_else(|| err(join(path, tykey), "must be a string".into()))?
            .to_ascii_lowercase();
        // Timeloop reads the attributes from `attributes:` when present.
        let (attrs, apath) = match get_kv(c, "attributes").filter(|(_, a)| a.is_mapping()) {
            Some((k, a)) => (a, join(path, k)),
            None => (c, path.to_string()),
        };
        match ty.as_str() {
            "temporal" | "spatial" => {
                let kind = if ty == "temporal" {
                    LoopKind::Temporal
                } else {
                    LoopKind::Spatial
                };
                if let Some((k, f)) = get_kv(attrs, "factors") {
                    let fpath = join(&apath, k);
                    let items = parse_factors(f).map_err(|m| err(fpath.clone(), m))?;
                    for (name, op, value) in items {
                        self.add_factor(level, kind, &name, op, value, &origin(&fpath))
                            .map_err(|m| err(fpath.clone(), m))?;
                    }
                }
                if let Some((k, p)) = get_kv(attrs, "permutation") {
                    let ppath = join(&apath, k);
                    let perm = parse_permutation(p).map_err(|m| err(ppath.clone(), m))?;
                    if !perm.is_empty() {
                        let lc = self.levels[level].loops_mut(kind);
                        if !lc.permutation.is_empty() && lc.permutation != perm {
                            return Err(err(
                                ppath,
                                format!(
                                    "re-specification of the {ty} permutation (already `{}` from \
                                     {})",
                                    lc.permutation.join(""),
                                    lc.permutation_origin
                                ),
                            ));
                        }
                        lc.permutation = perm;
                        lc.permutation_origin = origin(&ppath);
                    }
                }
                if kind == LoopKind::Spatial {
                    if let Some((k, s)) = get_kv(c, "split").or_else(|| get_kv(attrs, "split")) {
                        let spath = join(path, k);
                        let split = untag(s)
                            .as_u64()
                            .ok_or_else(|| err(spath.clone(), "must be an integer >= 0".into()))?
                            .min(u32::MAX as u64) as u32;
                        let lc = &mut self.levels[level];
                        if lc.split.is_some_and(|x| x != split) {
                            return Err(err(
                                spath,
                                format!(
                                    "re-specification of the spatial split (already {} from {})",
                                    lc.split.unwrap(),
                                    lc.split_origin
                                ),
                            ));
                        }
                        lc.split = Some(split);
                        lc.split_origin = origin(&spath);
                    }
                }
                Ok(())
            }
            "bypass" | "datatype" | "bypassing" => {
                for (key, keep) in [("keep", true), ("bypass", false)] {
                    let Some((k, list)) = get_kv(attrs, key) else {
                        continue;
                    };
                    let lpath = join(&apath, k);
                    let names = string_list(list).map_err(|m| err(lpath.clone(), m))?;
                    for name in names {
                        let dt = &mut self.levels[level].datatype;
                        if let Some((old, o)) = dt.get(&name) {
                            if *old != keep {
                                return Err(err(
                                    lpath,
                                    format!("{name} is both kept and bypassed (see {o})"),
                                ));
                            }
                        }
                        dt.insert(name, (keep, origin(&lpath)));
                    }
                }
                Ok(())
            }
            t if IGNORED_TYPES.contains(&t) => {
                self.notes.push(format!(
                    "{}: constraint type `{t}` is not modelled; ignored",
                    origin(path)
                ));
                Ok(())
            }
            t => Err(err(
                join(path, tykey),
                format!(
                    "unknown constraint type `{t}` (expected temporal, spatial, bypass or \
                     datatype)"
                ),
            )),
        }
    }

    fn add_factor(
        &mut self,
        level: usize,
        kind: LoopKind,
        dim: &str,
        op: Op,
        value: u64,
        origin: &str,
    ) -> Result<(), String> {
        let rule = self.levels[level]
            .loops_mut(kind)
            .factors
            .entry(dim.to_string())
            .or_default();
        if rule.origin.is_empty() {
            rule.origin = origin.to_string();
        }
        match op {
            Op::Eq => {
                let f = if value == 0 {
                    FixedFactor::Remaining
                } else {
                    FixedFactor::Value(value)
                };
                if rule.fixed.is_some_and(|old| old != f) {
                    return Err(format!(
                        "re-specification of the factor of {dim} (already set by {})",
                        rule.origin
                    ));
                }
                rule.fixed = Some(f);
            }
            Op::Le | Op::Lt => {
                let m = if op == Op::Lt {
                    value.saturating_sub(1)
                } else {
                    value
                };
                if m == 0 {
                    return Err(format!("{dim}: a maximum factor must be >= 1"));
                }
                rule.max = Some(rule.max.map_or(m, |x| x.min(m)));
            }
            Op::Ge | Op::Gt => {
                let m = if op == Op::Gt { value + 1 } else { value };
                rule.min = Some(rule.min.map_or(m, |x| x.max(m)));
            }
        }
        Ok(())
    }
}

// =============================================================================================
// The mapspace
// =============================================================================================

/// The kind of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Temporal,
    SpatialX,
    SpatialY,
}

/// A place a factor of every dim goes: one level's temporal loops or one axis of its fanout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub level: usize,
    pub kind: SlotKind,
    /// The fanout of a spatial slot (the product of its factors over dims must not exceed it).
    pub fanout: Option<u64>,
}

/// The slot indices of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelSlots {
    pub x: Option<usize>,
    pub y: Option<usize>,
    pub temporal: usize,
}

/// A resolved factor rule (dim, level, loop kind): for the spatial kind it bounds X·Y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rule {
    pub fixed: Option<u64>,
    pub max: Option<u64>,
    pub min: Option<u64>,
}

impl Rule {
    pub fn admits(&self, f: u64) -> bool {
        self.fixed.is_none_or(|v| v == f)
            && self.max.is_none_or(|m| f <= m)
            && self.min.is_none_or(|m| f >= m)
    }
}

/// Which axis a dim's spatial factor of a level may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpatialDir {
    /// X, Y or both.
    Any,
    /// X or Y, not both.
    OneOf,
    XOnly,
    YOnly,
}

/// The X/Y rule of one level's spatial loops.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialRule {
    /// Per dim.
    pub dir: Vec<SpatialDir>,
    /// Per dim, its position in the level's spatial permutation (unlisted dims share the
    /// position after the listed ones), when the split point is free: every dim with an X
    /// factor > 1 must come no later than every dim with a Y factor > 1 (ties only between
    /// unlisted dims).
    pub order: Option<Vec<usize>>,
}

/// Keep/bypass of one (level, tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepChoice {
    Fixed(bool),
    Free,
}

/// The most factorisations of one dim a mapspace keeps (each is a vector of slot factors):
/// about 100 MB at eight slots. The shipped designs' largest is 147,000 (a channel dim over
/// Simba's slots); an unconstrained 2^20 over eight slots has 888,030.
pub const MAX_DIM_CHOICES: usize = 1_000_000;

/// The most free keep/bypass choices: every bypass pattern is enumerated.
pub const MAX_FREE_KEEPS: usize = 20;

/// The enumeration is split into at least this many parts where the space allows it.
pub const MIN_PARTS: usize = 64;

/// The most states either count of loop orders keeps at a time ([`Mapspace::size`]): the
/// counts are reports, so they must not take the memory and the time of the search itself
/// (an unconstrained space took ten seconds and 400 MB to count). Above it, or above
/// [`COUNT_OPS`] steps, the size is unknown.
const COUNT_STATES: usize = 1 << 20;

/// The most steps (state × option pairs) either count of loop orders takes: about half a
/// second here. Measured: Eyeriss, a 3x3 ResNet-50 layer without constraints, 1.2e7 steps
/// (0.3-0.8 s); the unconstrained Timeloop exercise `simple_weight_stationary` runs past it.
const COUNT_OPS: usize = 1 << 24;

/// The work left to the counts of loop orders: [`COUNT_OPS`] steps in all (for both), and a
/// deadline.
struct CountBudget {
    ops: usize,
    deadline: Option<Instant>,
    /// Whether the deadline, not the step limit, stopped a count.
    late: bool,
}

impl CountBudget {
    fn new(deadline: Option<Instant>) -> CountBudget {
        CountBudget {
            ops: 0,
            deadline,
            late: false,
        }
    }
    /// Takes `n` more steps; false when the budget is spent.
    fn spend(&mut self, n: usize) -> bool {
        let before = self.ops;
        self.ops = self.ops.saturating_add(n.max(1));
        if self.deadline.is_some() && before >> 12 != self.ops >> 12 {
            self.late |= self.deadline.is_some_and(|d| Instant::now() >= d);
        }
        self.ops <= COUNT_OPS && !self.late
    }
}

/// A number of mappings: exact (saturating) and as a float.
pub type Count = (u128, f64);

/// What one per-dim factor choice contributes to the joint constraints.
#[derive(Debug, Clone)]
struct Sig {
    /// Factor per spatial slot (indexed like `Mapspace::spatial_slots`).
    spatial: Vec<u64>,
    /// Per coupled level: position if the dim is on X, position if on Y.
    coup: Vec<(Option<u64>, Option<u64>)>,
    /// Levels where the dim is a non-unit temporal loop whose place in the order is free.
    free: u64,
}

/// One transition of the factorisation DAG.
#[derive(Debug, Clone, Copy)]
struct Trans {
    choice: u32,
    next: u32,
    /// Cumulative number of completions up to and including this transition.
    cum: f64,
}

/// One layer of the factorisation DAG (after choosing the first i dims of `dim_order`).
#[derive(Debug, Clone, Default)]
struct Step {
    states: Vec<Vec<u64>>,
    index: HashMap<Vec<u64>, u32>,
    /// Per state, its live transitions (to states with completions).
    trans: Vec<Vec<Trans>>,
    /// Per state, the number of ways to complete the factorisation.
    comp: Vec<f64>,
}

impl Step {
    fn intern(&mut self, s: Vec<u64>) -> u32 {
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        let i = self.states.len() as u32;
        self.index.insert(s.clone(), i);
        self.states.push(s);
        i
    }
}

/// Reusable buffers of the enumeration (one per part being enumerated).
#[derive(Debug, Default)]
struct Emit {
    mapping: Mapping,
    /// Per level, where its free dims start in the temporal loops, and the free dims.
    free: Vec<(usize, Vec<usize>)>,
    /// perms[k]: the permutations of 0..k in lexicographic order (filled on demand).
    perms: Vec<Vec<Vec<usize>>>,
    /// Per level, the index of its current order in `perms`.
    idx: Vec<usize>,
    /// Per keep mask, whether the visitor declined the current factorisation with it at its
    /// first loop order (its other orders are then skipped).
    invalid: Vec<bool>,
    /// Mappings skipped that way.
    skipped: u64,
    /// The partial mapping a bounded scan passes to its bound, and its free dims.
    partial: Mapping,
    partial_free: Vec<(usize, Vec<usize>)>,
    clock: Clock,
}

/// When a scan must stop (checked every [`DEADLINE_CHECK`] steps), and whether it has.
#[derive(Debug, Default)]
struct Clock {
    deadline: Option<Instant>,
    ticks: u32,
    stopped: bool,
}

/// Steps (DAG transitions and loop orders) between two looks at the clock in a scan with a
/// deadline: a step costs at least one evaluation or bound (about a microsecond), a look at
/// the clock some tens of nanoseconds.
const DEADLINE_CHECK: u32 = 64;

impl Clock {
    /// Whether the scan is past its deadline (from now on, always true once it was).
    fn past_deadline(&mut self) -> bool {
        if let (Some(d), false) = (self.deadline, self.stopped) {
            self.ticks = self.ticks.wrapping_add(1);
            if self.ticks.is_multiple_of(DEADLINE_CHECK) && Instant::now() >= d {
                self.stopped = true;
            }
        }
        self.stopped
    }
}

/// How a scan of one part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Mappings skipped as [`Mapspace::scan_part`] says.
    pub skipped: u64,
    /// Whether the whole part was visited (false: the deadline stopped it).
    pub complete: bool,
}

/// Where a mapping visited by [`Mapspace::scan_part`] stands.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    /// Its keep pattern's number (below 2^[`Mapspace::free_keeps`]`.len()`).
    pub keep: usize,
    /// Whether it is the first loop order visited of its factorisation with that keep pattern.
    pub first: bool,
    /// The number of loop orders of its factorisation.
    pub orders: u64,
}

/// In the `chosen` vector of a partial factorisation: this dim is not chosen yet (its factors
/// are all 1).
const UNCHOSEN: u32 = u32::MAX;

/// The set of mappings of one problem on one architecture under constraints.
#[derive(Debug, Clone)]
pub struct Mapspace {
    problem: Problem,
    arch: Arch,
    slots: Vec<Slot>,
    level_slots: Vec<LevelSlots>,
    /// Slot ids of the spatial slots (the order of the spatial part of a DAG state).
    spatial_slots: Vec<usize>,
    primes: Vec<Vec<(u64, u32)>>,
    /// rules[d][l] = [temporal, spatial].
    rules: Vec<Vec<[Rule; 2]>>,
    spatial_rules: Vec<SpatialRule>,
    /// Levels whose spatial split point is constrained by a permutation order.
    coupled: Vec<usize>,
    /// Temporal permutation constraint per level (dims innermost first, possibly partial).
    prefix: Vec<Vec<usize>>,
    enumerate_orders: Vec<bool>,
    keep: Vec<Vec<KeepChoice>>,
    free_keeps: Vec<(usize, usize)>,
    /// choices[d] = the per-slot factor vectors allowed for dim d on its own.
    choices: Vec<Vec<Vec<u64>>>,
    choice_index: Vec<HashMap<Vec<u64>, u32>>,
    sigs: Vec<Vec<Sig>>,
    allowed: Vec<Vec<Vec<u64>>>,
    dim_order: Vec<usize>,
    steps: Vec<Step>,
    factorisations: f64,
    /// The parts of the enumeration: choices of the first dims of `dim_order`, DAG state.
    parts: Vec<(Vec<u32>, u32)>,
    /// Factorisations × loop orders × bypass patterns, computed on first use.
    size: OnceLock<Count>,
    bypass_patterns: Count,
    notes: Vec<String>,
    /// Why the space has no mapping at all, when a dim has no factorisation.
    empty_reason: Option<String>,
}

/// The prime factorisation of `n`: (prime, exponent) in increasing order.
pub fn prime_factors(mut n: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let mut p = 2;
    while p * p <= n {
        let mut e = 0;
        while n.is_multiple_of(p) {
            n /= p;
            e += 1;
        }
        if e > 0 {
            out.push((p, e));
        }
        p += 1;
    }
    if n > 1 {
        out.push((n, 1));
    }
    out
}

fn divisors(n: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (1..)
        .take_while(|i| i * i <= n)
        .filter(|&i| n.is_multiple_of(i))
        .collect();
    let big: Vec<u64> = out
        .iter()
        .rev()
        .map(|i| n / i)
        .filter(|&j| j * j != n)
        .collect();
    out.extend(big);
    out
}

fn factorial(n: usize) -> u128 {
    (1..=n as u128).product()
}

impl Mapspace {
    /// The mapspace of `problem` on `arch` without constraints.
    pub fn unconstrained(problem: &Problem, arch: &Arch) -> Result<Mapspace, String> {
        Mapspace::new(problem, arch, &Constraints::new(arch))
    }

    /// Builds the mapspace; errors when a constraint names an unknown dim or tensor, when
    /// constraints contradict the architecture, or when no mapping is left.
    pub fn new(problem: &Problem, arch: &Arch, cons: &Constraints) -> Result<Mapspace, String> {
        let nd = problem.dims.len();
        let nl = arch.levels.len();
        if nd == 0 || nl == 0 {
            return Err("the problem needs a dimension and the architecture a level".into());
        }
        if cons.levels.len() != nl {
            return Err(format!(
                "constraints are for {} levels, the architecture has {nl}",
                cons.levels.len()
            ));
        }
        let mut notes = cons.notes.clone();
        let (slots, level_slots) = build_slots(arch);
        let spatial_slots: Vec<usize> = (0..slots.len())
            .filter(|&s| slots[s].kind != SlotKind::Temporal)
            .collect();
        let rules = resolve_factor_rules(problem, cons, &mut notes)?;
        let (spatial_rules, coupled) =
            resolve_spatial_rules(problem, cons, &level_slots, &mut notes)?;
        let prefix = cons
            .levels
            .iter()
            .map(|lc| {
                let lp = &lc.temporal;
                resolve_dims(problem, &lp.permutation, &lp.permutation_origin, &mut notes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keep = resolve_keeps(problem, arch, cons)?;
        let free_keeps: Vec<(usize, usize)> = (0..nl)
            .flat_map(|l| (0..problem.tensors.len()).map(move |t| (l, t)))
            .filter(|&(l, t)| keep[l][t] == KeepChoice::Free)
            .collect();
        if free_keeps.len() > MAX_FREE_KEEPS {
            return Err(format!(
                "{} keep/bypass choices are free (2^{} bypass patterns), more than qmap \
                 enumerates (2^{MAX_FREE_KEEPS}): fix keep or bypass per level in the \
                 architecture or the constraints",
                free_keeps.len(),
                free_keeps.len()
            ));
        }
        let bypass_patterns = count_bypass_patterns(problem, &keep)?;
        let choices = (0..nd)
            .map(|d| dim_factor_choices(problem, d, &slots, &level_slots, &rules, &spatial_rules))
            .collect::<Result<Vec<_>, _>>()?;
        // A dim with no factorisation leaves no mapping: the space is empty (infeasible, for
        // that reason), not an error.
        let empty_reason = (0..nd)
            .find(|&d| choices[d].is_empty())
            .map(|d| no_factorisation(problem, d, cons));
        let allowed = choices
            .iter()
            .map(|cs| {
                (0..slots.len())
                    .map(|s| cs.iter().map(|c| c[s]).sorted().dedup().collect())
                    .collect()
            })
            .collect();
        let choice_index = choices
            .iter()
            .map(|cs| {
                cs.iter()
                    .enumerate()
                    .map(|(i, c)| (c.clone(), i as u32))
                    .collect()
            })
            .collect();
        // Dims with one choice go first (they do not branch, and bounds on partial mappings
        // are tighter with them chosen), then the dim with the most choices: its choices are
        // the parallel parts.
        let first = (0..nd)
            .max_by_key(|&d| (choices[d].len(), std::cmp::Reverse(d)))
            .unwrap();
        let single = |d: &usize| choices[*d].len() == 1;
        let dim_order: Vec<usize> = (0..nd)
            .filter(single)
            .chain(std::iter::once(first).filter(|d| !single(d)))
            .chain((0..nd).filter(|d| *d != first && !single(d)))
            .collect();
        let mut space = Mapspace {
            problem: problem.clone(),
            arch: arch.clone(),
            slots,
            level_slots,
            spatial_slots,
            primes: problem.bounds.iter().map(|&b| prime_factors(b)).collect(),
            rules,
            spatial_rules,
            coupled,
            prefix,
            enumerate_orders: (0..nl).map(|l| l > 0).collect(),
            keep,
            free_keeps,
            empty_reason,
            choices,
            choice_index,
            sigs: Vec::new(),
            allowed,
            dim_order,
            steps: Vec::new(),
            factorisations: 0.0,
            parts: Vec::new(),
            size: OnceLock::new(),
            bypass_patterns,
            notes,
        };
        space.sigs = (0..nd)
            .map(|d| {
                space.choices[d]
                    .iter()
                    .map(|c| space.signature(d, c))
                    .collect()
            })
            .collect();
        space.build_dag();
        if space.factorisations == 0.0 && space.empty_reason.is_none() {
            space.empty_reason = Some(format!(
                "no factorisation of {}'s dims fits the spatial fanouts under the constraints",
                problem.name
            ));
        }
        space.parts = space.split_parts();
        Ok(space)
    }

    /// What a per-dim factor vector `c` of dim `d` contributes to the joint constraints.
    fn signature(&self, d: usize, c: &[u64]) -> Sig {
        Sig {
            spatial: self.spatial_slots.iter().map(|&s| c[s]).collect(),
            coup: self
                .coupled
                .iter()
                .map(|&l| {
                    let pos = self.spatial_rules[l].order.as_ref().unwrap()[d] as u64;
                    let ls = self.level_slots[l];
                    (
                        (c[ls.x.unwrap()] > 1).then_some(pos),
                        (c[ls.y.unwrap()] > 1).then_some(pos),
                    )
                })
                .collect(),
            free: (0..self.arch.levels.len())
                .filter(|&l| {
                    self.enumerate_orders[l]
                        && c[self.level_slots[l].temporal] > 1
                        && !self.prefix[l].contains(&d)
                })
                .fold(0u64, |m, l| m | (1 << l)),
        }
    }

    /// The DAG state after adding a dim's choice to `state`, if the joint constraints allow it.
    fn advance(&self, state: &[u64], sig: &Sig) -> Option<Vec<u64>> {
        let ns = self.spatial_slots.len();
        let mut next = state.to_vec();
        for (k, &f) in sig.spatial.iter().enumerate() {
            let p = next[k] * f;
            if p > self.slots[self.spatial_slots[k]].fanout.unwrap() {
                return None;
            }
            next[k] = p;
        }
        for (j, &(xp, yp)) in sig.coup.iter().enumerate() {
            let (mx, my) = (ns + 2 * j, ns + 2 * j + 1);
            if let Some(p) = xp {
                if p > next[my] {
                    return None;
                }
                next[mx] = next[mx].max(p + 1);
            }
            if let Some(q) = yp {
                if next[mx] > q + 1 {
                    return None;
                }
                next[my] = next[my].min(q);
            }
        }
        Some(next)
    }

    fn initial_state(&self) -> Vec<u64> {
        let mut s = vec![1u64; self.spatial_slots.len()];
        for _ in &self.coupled {
            s.push(0);
            s.push(u64::MAX);
        }
        s
    }

    /// Builds the layered DAG of partial factorisations (dims in `dim_order`), with the number
    /// of completions of every state, keeping only live transitions.
    fn build_dag(&mut self) {
        let n = self.dim_order.len();
        let mut steps: Vec<Step> = vec![Step::default(); n + 1];
        steps[0].intern(self.initial_state());
        let mut raw: Vec<Vec<Vec<(u32, u32)>>> = vec![Vec::new(); n];
        for i in 0..n {
            let d = self.dim_order[i];
            let (cur, rest) = steps.split_at_mut(i + 1);
            let cur = &cur[i];
            let next = &mut rest[0];
            for s in 0..cur.states.len() {
                let mut ts = Vec::new();
                for (c, sig) in self.sigs[d].iter().enumerate() {
                    if let Some(ns) = self.advance(&cur.states[s], sig) {
                        ts.push((c as u32, next.intern(ns)));
                    }
                }
                raw[i].push(ts);
            }
        }
        steps[n].comp = vec![1.0; steps[n].states.len()];
        steps[n].trans = vec![Vec::new(); steps[n].states.len()];
        for i in (0..n).rev() {
            let (cur, rest) = steps.split_at_mut(i + 1);
            let cur = &mut cur[i];
            let next = &rest[0];
            cur.comp = Vec::with_capacity(cur.states.len());
            cur.trans = Vec::with_capacity(cur.states.len());
            for raw_ts in &raw[i] {
                let mut cum = 0.0;
                let mut ts = Vec::new();
                for &(c, ns) in raw_ts {
                    let w = next.comp[ns as usize];
                    if w > 0.0 {
                        cum += w;
                        ts.push(Trans {
                            choice: c,
                            next: ns,
                            cum,
                        });
                    }
                }
                cur.trans.push(ts);
                cur.comp.push(cum);
            }
        }
        self.factorisations = steps[0].comp[0];
        self.steps = steps;
    }

    /// Σ over factorisations of the number of loop orders, exactly (saturating) and as f64, by
    /// a DP over the levels: the state is the factor each dim has used so far (a divisor of its
    /// bound per dim); within a level the dims are added one by one, tracking the level's X and
    /// Y products, its number of free non-unit temporal loops (the level weighs count!) and its
    /// X/Y order summary. None when the state does not fit the packed key.
    fn count_by_levels(&self, budget: &mut CountBudget) -> Option<Count> {
        struct Opt {
            delta: u128,
            x: u128,
            y: u128,
            free: u128,
            xpos: Option<u128>,
            ypos: Option<u128>,
        }
        let p = &self.problem;
        let dims: Vec<usize> = (0..p.dims.len()).filter(|&d| p.bounds[d] > 1).collect();
        if dims.len() > 63 {
            return None;
        }
        let divs: Vec<Vec<u64>> = dims.iter().map(|&d| divisors(p.bounds[d])).collect();
        let mut stride = Vec::new();
        let mut states: u128 = 1;
        for dv in &divs {
            stride.push(states);
            states *= dv.len() as u128;
            if states >= 1 << 48 {
                return None;
            }
        }
        let fan = |s: Option<usize>| s.map_or(1, |s| self.slots[s].fanout.unwrap());
        if self
            .level_slots
            .iter()
            .any(|ls| fan(ls.x) > 4095 || fan(ls.y) > 4095)
        {
            return None;
        }
        // Key: used-factor index (48 bits) | x (12) | y (12) | count (6) | max X pos + 1 (8) |
        // min Y pos (8, 255 = none).
        let low = (1u128 << 48) - 1;
        type Map = HashMap<u128, (u128, f64), BuildHasherDefault<KeyHasher>>;
        let mut outer = Map::default();
        outer.insert(0, (1, 1.0));
        for (l, ls) in self.level_slots.iter().enumerate() {
            let (fx, fy) = (fan(ls.x) as u128, fan(ls.y) as u128);
            let order = self.spatial_rules[l].order.as_ref();
            let mut inner: Map = outer
                .iter()
                .map(|(&k, &w)| (k | 1 << 48 | 1 << 60 | 255 << 86, w))
                .collect();
            for (k, &d) in dims.iter().enumerate() {
                let bound = p.bounds[d];
                let dir = self.spatial_rules[l].dir[d];
                let [rt, rs] = self.rules[d][l];
                // Options per current digit (the factor dim d has used so far).
                let opts: Vec<Vec<Opt>> = divs[k]
                    .iter()
                    .enumerate()
                    .map(|(i, &u)| {
                        let mut v = Vec::new();
                        for g in divisors(bound / u) {
                            let j = divs[k].binary_search(&(u * g)).unwrap();
                            for x in divisors(g) {
                                if x as u128 > fx || (x > 1 && dir == SpatialDir::YOnly) {
                                    continue;
                                }
                                for y in divisors(g / x) {
                                    let t = g / x / y;
                                    let ok = y as u128 <= fy
                                        && (y == 1 || dir != SpatialDir::XOnly)
                                        && !(dir == SpatialDir::OneOf && x > 1 && y > 1)
                                        && rt.admits(t)
                                        && rs.admits(x * y);
                                    if !ok {
                                        continue;
                                    }
                                    let free = self.enumerate_orders[l]
                                        && t > 1
                                        && !self.prefix[l].contains(&d);
                                    let pos = order.map(|o| o[d] as u128);
                                    v.push(Opt {
                                        delta: (j - i) as u128 * stride[k],
                                        x: x as u128,
                                        y: y as u128,
                                        free: u128::from(free),
                                        xpos: pos.filter(|_| x > 1),
                                        ypos: pos.filter(|_| y > 1),
                                    });
                                }
                            }
                        }
                        v
                    })
                    .collect();
                let nk = divs[k].len() as u128;
                let mut next = Map::default();
                next.reserve(inner.len());
                for (key, (a, b)) in inner {
                    let idx = key & low;
                    let digit = ((idx / stride[k]) % nk) as usize;
                    let (x, y) = ((key >> 48) & 0xfff, (key >> 60) & 0xfff);
                    let (cnt, mx, my) =
                        ((key >> 72) & 0x3f, (key >> 78) & 0xff, (key >> 86) & 0xff);
                    if !budget.spend(opts[digit].len()) {
                        return None;
                    }
                    for o in &opts[digit] {
                        let (x2, y2) = (x * o.x, y * o.y);
                        if x2 > fx || y2 > fy {
                            continue;
                        }
                        let (mut mx2, mut my2) = (mx, my);
                        if let Some(q) = o.xpos {
                            if q > my2 {
                                continue;
                            }
                            mx2 = mx2.max(q + 1);
                        }
                        if let Some(q) = o.ypos {
                            if mx2 > q + 1 {
                                continue;
                            }
                            my2 = my2.min(q);
                        }
                        let key2 = (idx + o.delta)
                            | x2 << 48
                            | y2 << 60
                            | (cnt + o.free) << 72
                            | mx2 << 78
                            | my2 << 86;
                        let e = next.entry(key2).or_insert((0, 0.0));
                        e.0 = e.0.saturating_add(a);
                        e.1 += b;
                    }
                }
                if next.len() > COUNT_STATES {
                    return None;
                }
                inner = next;
            }
            outer = Map::default();
            for (key, (a, b)) in inner {
                let c = ((key >> 72) & 0x3f) as usize;
                let e = outer.entry(key & low).or_insert((0, 0.0));
                e.0 = e.0.saturating_add(a.saturating_mul(factorial(c)));
                e.1 += b * factorial(c) as f64;
            }
        }
        let full: u128 = (0..dims.len())
            .map(|k| (divs[k].len() as u128 - 1) * stride[k])
            .sum();
        Some(outer.get(&full).copied().unwrap_or((0, 0.0)))
    }

    /// The number of factorisations × loop orders computed by both DPs (a cross-check for
    /// tests; the second is None when the first method's key does not fit).
    #[doc(hidden)]
    pub fn order_counts(&self) -> (Option<Count>, Result<Count, String>) {
        let budget = || CountBudget::new(None);
        (
            self.count_by_levels(&mut budget()),
            self.count_by_dims(&mut budget()),
        )
    }

    /// Σ over factorisations of the number of loop orders, exactly (saturating) and as f64, by
    /// a DP over the factorisation DAG (dims one by one) whose key also counts, per level, the
    /// non-unit loops whose place in the order is free (a factorisation weighs Π count!). The
    /// key grows as (dims + 1)^levels: used only where [`Mapspace::count_by_levels`] cannot.
    fn count_by_dims(&self, budget: &mut CountBudget) -> Result<Count, String> {
        let n = self.dim_order.len();
        let nl = self.arch.levels.len();
        // Counts packed `bpc` bits per level below bit 96, the DAG state above.
        let bpc = (usize::BITS - n.leading_zeros()) as usize;
        if nl * bpc > 96 {
            return Err(format!(
                "{nl} levels × {n} dims is beyond the loop-order counter"
            ));
        }
        let low = (1u128 << 96) - 1;
        type Map = HashMap<u128, (u128, f64), BuildHasherDefault<KeyHasher>>;
        let mut layer = Map::default();
        layer.insert(0, (1, 1.0));
        for i in 0..n {
            let d = self.dim_order[i];
            // Transitions grouped by (next state, count increment), with multiplicities.
            let grouped: Vec<Vec<(u128, u128, u128)>> = self.steps[i]
                .trans
                .iter()
                .map(|ts| {
                    let mut g: HashMap<(u32, u128), u128> = HashMap::new();
                    for t in ts {
                        let free = self.sigs[d][t.choice as usize].free;
                        let inc: u128 = (0..nl)
                            .filter(|l| free >> l & 1 == 1)
                            .map(|l| 1u128 << (l * bpc))
                            .sum();
                        *g.entry((t.next, inc)).or_insert(0) += 1;
                    }
                    g.into_iter()
                        .map(|((ns, inc), m)| ((ns as u128) << 96, inc, m))
                        .sorted()
                        .collect()
                })
                .collect();
            let mut next = Map::default();
            for (key, (a, b)) in layer {
                let cnt = key & low;
                let grouped = &grouped[(key >> 96) as usize];
                if !budget.spend(grouped.len()) {
                    return Err(format!("more than {COUNT_OPS} counter steps"));
                }
                for &(ns, inc, m) in grouped {
                    let e = next.entry(ns | (cnt + inc)).or_insert((0, 0.0));
                    e.0 = e.0.saturating_add(a.saturating_mul(m));
                    e.1 += b * m as f64;
                }
            }
            if next.len() > COUNT_STATES {
                return Err(format!("more than {COUNT_STATES} counter states"));
            }
            layer = next;
        }
        let mut total: u128 = 0;
        let mut total_f = 0.0;
        let field = (1u128 << bpc) - 1;
        for (key, (a, b)) in layer {
            let (mut w, mut wf) = (1u128, 1.0f64);
            for l in 0..nl {
                let c = ((key >> (l * bpc)) & field) as usize;
                w = w.saturating_mul(factorial(c));
                wf *= factorial(c) as f64;
            }
            total = total.saturating_add(a.saturating_mul(w));
            total_f += b * wf;
        }
        Ok((total, total_f))
    }

    // -----------------------------------------------------------------------------------------
    // Accessors
    // -----------------------------------------------------------------------------------------

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
    pub fn arch(&self) -> &Arch {
        &self.arch
    }
    /// All slots: per level (innermost first) spatial X, spatial Y (where present), temporal.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
    pub fn level_slots(&self, level: usize) -> LevelSlots {
        self.level_slots[level]
    }
    /// Prime factorisation of dim `d`'s bound: (prime, exponent), ascending.
    pub fn prime_factors(&self, d: usize) -> &[(u64, u32)] {
        &self.primes[d]
    }
    /// The factors dim `d` can take in `slot` (in at least one allowed per-dim factorisation).
    pub fn allowed_factors(&self, d: usize, slot: usize) -> &[u64] {
        &self.allowed[d][slot]
    }
    /// Every factor vector (per slot) dim `d` may take on its own: exactly the per-dim
    /// constraints (bound, fixed/min/max factors, X/Y axis rules). The joint constraints on top
    /// are the fanouts (product over dims per spatial slot) and [`SpatialRule::order`].
    pub fn dim_choices(&self, d: usize) -> &[Vec<u64>] {
        &self.choices[d]
    }
    /// The resolved factor rule of dim `d` at `level` (for `Spatial`, on X·Y).
    pub fn factor_rule(&self, d: usize, level: usize, kind: LoopKind) -> Rule {
        self.rules[d][level][kind as usize]
    }
    pub fn spatial_rule(&self, level: usize) -> &SpatialRule {
        &self.spatial_rules[level]
    }
    /// The temporal permutation constraint of `level`: these dims (those with a non-unit
    /// factor) are the innermost loops, in this order; the others are free outside them.
    pub fn temporal_prefix(&self, level: usize) -> &[usize] {
        &self.prefix[level]
    }
    /// Whether the loop orders of `level` are enumerated (false for level 0: see the module
    /// doc).
    pub fn orders_enumerated(&self, level: usize) -> bool {
        self.enumerate_orders[level]
    }
    pub fn keep_choice(&self, level: usize, tensor: usize) -> KeepChoice {
        self.keep[level][tensor]
    }
    /// Why the space has no mapping, when the constraints leave a dim no factorisation (a
    /// checked reason for `infeasible`).
    pub fn empty_reason(&self) -> Option<&str> {
        self.empty_reason.as_deref()
    }
    /// Whether the space has no mapping at all ([`Mapspace::empty_reason`]); [`Mapspace::sample`]
    /// needs a space that is not.
    pub fn is_empty(&self) -> bool {
        self.empty_reason.is_some()
    }
    /// The (level, tensor) pairs whose keep/bypass is free.
    pub fn free_keeps(&self) -> &[(usize, usize)] {
        &self.free_keeps
    }
    /// Number of mappings (factorisations × loop orders × bypass patterns), saturating at
    /// u128::MAX, which it also is when the count would take more than `COUNT_OPS` steps
    /// (about half a second). Computed on the first call.
    pub fn size(&self) -> u128 {
        self.count().0
    }
    /// Number of mappings as a float (for spaces beyond u128); infinite when not counted.
    pub fn size_f64(&self) -> f64 {
        self.count().1
    }
    /// The number of mappings as a float, counted by `deadline` at the latest: None when the
    /// deadline stopped the count (it is tried again next time) or it is too large to count.
    pub fn size_until(&self, deadline: Option<Instant>) -> Option<f64> {
        if let Some(c) = self.size.get() {
            return c.1.is_finite().then_some(c.1);
        }
        let mut budget = CountBudget::new(deadline);
        let counted = self
            .count_by_levels(&mut budget)
            .or_else(|| self.count_by_dims(&mut budget).ok());
        if counted.is_none() && budget.late {
            return None;
        }
        let c = self.size.get_or_init(|| self.with_bypass(counted));
        c.1.is_finite().then_some(c.1)
    }
    fn count(&self) -> Count {
        *self.size.get_or_init(|| {
            let mut budget = CountBudget::new(None);
            let counted = self
                .count_by_levels(&mut budget)
                .or_else(|| self.count_by_dims(&mut budget).ok());
            self.with_bypass(counted)
        })
    }
    /// Loop-order count × bypass patterns (unknown: saturated and infinite).
    fn with_bypass(&self, orders: Option<Count>) -> Count {
        let (orders, orders_f) = orders.unwrap_or((u128::MAX, f64::INFINITY));
        let (bypass, bypass_f) = self.bypass_patterns;
        (orders.saturating_mul(bypass), orders_f * bypass_f)
    }
    /// Number of factorisations (loop orders and bypass not counted).
    pub fn factorisations(&self) -> f64 {
        self.factorisations
    }
    /// Number of bypass patterns.
    pub fn bypass_patterns(&self) -> u128 {
        self.bypass_patterns.0
    }
    /// Constraints dropped or adjusted while building the space.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    // -----------------------------------------------------------------------------------------
    // Enumeration and sampling
    // -----------------------------------------------------------------------------------------

    /// Number of parts [`Mapspace::for_each_part`] splits the space into (for parallelism):
    /// the partial factorisations of the first dims (in the DAG's order), as many dims as it
    /// takes to have at least [`MIN_PARTS`] parts (or all of them).
    pub fn num_parts(&self) -> usize {
        self.parts.len()
    }

    /// Calls `f` on every mapping of the space, in a fixed order.
    pub fn for_each(&self, mut f: impl FnMut(&Mapping)) {
        for p in 0..self.num_parts() {
            self.for_each_part(p, &mut f);
        }
    }

    /// Calls `f` on every mapping of part `part` (the parts partition the space; concatenated in
    /// order they give [`Mapspace::for_each`]'s order).
    pub fn for_each_part(&self, part: usize, mut f: impl FnMut(&Mapping)) {
        self.scan_part(part, |m, _| {
            f(m);
            true
        });
    }

    /// [`Mapspace::for_each_part`] for a search that can skip loop orders: calls
    /// `f(mapping, visit)` ([`Visit`]); when `f` returns false at the first loop order of a
    /// factorisation with a keep pattern, the other loop orders of that factorisation and keep
    /// pattern are not visited (e.g. because the mapping is invalid: validity — factor
    /// products, fanouts, keep rules, word widths, capacities — does not depend on loop order).
    /// Returns how many mappings were skipped; the visited ones come in
    /// [`Mapspace::for_each_part`]'s order.
    pub fn scan_part(&self, part: usize, mut f: impl FnMut(&Mapping, Visit) -> bool) -> u64 {
        self.visit_part(part, None, None::<&mut fn(usize, &Mapping) -> bool>, &mut f)
            .skipped
    }

    /// [`Mapspace::scan_part`] stopped at `deadline` (within a few dozen steps of it): how
    /// many mappings were skipped and whether the part was visited whole.
    pub fn scan_part_until(
        &self,
        part: usize,
        deadline: Option<Instant>,
        mut f: impl FnMut(&Mapping, Visit) -> bool,
    ) -> Scanned {
        self.visit_part(
            part,
            deadline,
            None::<&mut fn(usize, &Mapping) -> bool>,
            &mut f,
        )
    }

    /// [`Mapspace::scan_part`] that can also skip whole sets of factorisations: before those
    /// that share the choices of the first `depth` dims of [`Mapspace::dim_order`] (`depth` at
    /// least 1 and below the number of dims) are visited, calls `bound(depth, partial)` with
    /// their partial mapping — those dims' factors as chosen, every other dim's factors 1,
    /// loops in canonical order — once per keep pattern; when it returns false for every keep
    /// pattern, none of them is visited. Returns how many mappings [`Mapspace::scan_part`]
    /// skipped (those skipped here are not counted) and whether the part was visited whole:
    /// past `deadline` the scan stops within a few dozen steps (a step being one set of
    /// factorisations bounded or one loop order visited), wherever it is.
    pub fn scan_part_bounded(
        &self,
        part: usize,
        deadline: Option<Instant>,
        mut bound: impl FnMut(usize, &Mapping) -> bool,
        mut f: impl FnMut(&Mapping, Visit) -> bool,
    ) -> Scanned {
        self.visit_part(part, deadline, Some(&mut bound), &mut f)
    }

    /// Calls `f(depth, partial)` with the partial mapping of part `part` under each keep
    /// pattern, as [`Mapspace::scan_part_bounded`] offers it to its bound: the choices of the
    /// part's first `depth` dims of [`Mapspace::dim_order`], every other dim's factors 1.
    pub fn part_partials(&self, part: usize, mut f: impl FnMut(usize, &Mapping)) {
        let (chosen, depth) = self.part_chosen(part);
        let mut scratch = Emit::default();
        self.bound_partial(depth, &chosen, &mut scratch, &mut |depth, m| {
            f(depth, m);
            false
        });
    }

    /// The partial mapping of `chosen` (per dim, the index of its factorisation in
    /// [`Mapspace::dim_choices`], or None: factors 1) with the keep pattern `keep`, loops in
    /// canonical order: what [`Mapspace::scan_part_bounded`] offers its bound, for any set of
    /// chosen dims.
    pub fn partial_mapping(&self, chosen: &[Option<usize>], keep: &[Vec<bool>]) -> Mapping {
        let chosen: Vec<u32> = chosen
            .iter()
            .map(|c| c.map_or(UNCHOSEN, |c| c as u32))
            .collect();
        let mut m = Mapping::default();
        self.fill_base_mapping(&chosen, &mut m, &mut vec![]);
        for (lm, k) in m.levels.iter_mut().zip(keep) {
            lm.keep.clone_from(k);
        }
        m
    }

    /// The `chosen` vector of part `part` (its first dims of `dim_order` chosen, the others
    /// [`UNCHOSEN`]) and how many dims it chooses.
    fn part_chosen(&self, part: usize) -> (Vec<u32>, usize) {
        let prefix = &self.parts[part].0;
        let mut chosen = vec![UNCHOSEN; self.problem.dims.len()];
        for (i, &c) in prefix.iter().enumerate() {
            chosen[self.dim_order[i]] = c;
        }
        (chosen, prefix.len())
    }

    /// The order in which the enumeration chooses the dims' factors (parts and
    /// [`Mapspace::scan_part_bounded`]'s depths follow it).
    pub fn dim_order(&self) -> &[usize] {
        &self.dim_order
    }

    fn visit_part(
        &self,
        part: usize,
        deadline: Option<Instant>,
        mut bound: Option<&mut impl FnMut(usize, &Mapping) -> bool>,
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) -> Scanned {
        let (mut chosen, depth) = self.part_chosen(part);
        let state = self.parts[part].1;
        let mut scratch = Emit {
            clock: Clock {
                deadline,
                ..Clock::default()
            },
            ..Emit::default()
        };
        if let Some(b) = bound.as_deref_mut() {
            if depth > 0
                && depth < self.dim_order.len()
                && !self.bound_partial(depth, &chosen, &mut scratch, b)
            {
                return Scanned {
                    skipped: 0,
                    complete: true,
                };
            }
        }
        self.dfs(depth, state, &mut chosen, &mut scratch, &mut bound, f);
        Scanned {
            skipped: scratch.skipped,
            complete: !scratch.clock.stopped,
        }
    }

    /// Whether `bound` goes on with the partial factorisation `chosen` (first `depth` dims of
    /// `dim_order`) under some keep pattern.
    fn bound_partial(
        &self,
        depth: usize,
        chosen: &[u32],
        scratch: &mut Emit,
        bound: &mut impl FnMut(usize, &Mapping) -> bool,
    ) -> bool {
        self.fill_base_mapping(chosen, &mut scratch.partial, &mut scratch.partial_free);
        let m = &mut scratch.partial;
        let nt = self.problem.tensors.len();
        for mask in 0..(1u64 << self.free_keeps.len()) {
            for (k, &(l, t)) in self.free_keeps.iter().enumerate() {
                m.levels[l].keep[t] = mask >> k & 1 == 1;
            }
            if (0..nt).all(|t| m.levels.iter().any(|lm| lm.keep[t])) && bound(depth, m) {
                return true;
            }
        }
        false
    }

    /// Splits the DAG into parts: the paths through its first layers, in DFS order.
    fn split_parts(&self) -> Vec<(Vec<u32>, u32)> {
        let mut parts = vec![(Vec::new(), 0u32)];
        let mut i = 0;
        while parts.len() < MIN_PARTS && i < self.dim_order.len() {
            parts = parts
                .into_iter()
                .flat_map(|(prefix, state)| {
                    self.steps[i].trans[state as usize].iter().map(move |t| {
                        let mut p = prefix.clone();
                        p.push(t.choice);
                        (p, t.next)
                    })
                })
                .collect();
            i += 1;
        }
        parts
    }

    fn dfs(
        &self,
        i: usize,
        state: u32,
        chosen: &mut [u32],
        scratch: &mut Emit,
        bound: &mut Option<&mut impl FnMut(usize, &Mapping) -> bool>,
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) {
        let n = self.dim_order.len();
        if i == n {
            self.emit(chosen, scratch, f);
            return;
        }
        for t in &self.steps[i].trans[state as usize] {
            if scratch.clock.past_deadline() {
                break;
            }
            chosen[self.dim_order[i]] = t.choice;
            if let Some(b) = bound.as_deref_mut() {
                if i + 1 < n && !self.bound_partial(i + 1, chosen, scratch, b) {
                    continue;
                }
            }
            self.dfs(i + 1, t.next, chosen, scratch, bound, f);
        }
        chosen[self.dim_order[i]] = UNCHOSEN;
    }

    /// The mapping of a factorisation with loops in canonical order and the default keep
    /// pattern (free keeps off), plus, per level, the dims whose order is free and where they
    /// start in the temporal list.
    fn base_mapping(&self, chosen: &[u32]) -> (Mapping, Vec<(usize, Vec<usize>)>) {
        let (mut m, mut free) = (Mapping::default(), Vec::new());
        self.fill_base_mapping(chosen, &mut m, &mut free);
        (m, free)
    }

    /// [`Mapspace::base_mapping`] into `m` and `free`, reusing their buffers.
    fn fill_base_mapping(
        &self,
        chosen: &[u32],
        m: &mut Mapping,
        free: &mut Vec<(usize, Vec<usize>)>,
    ) {
        let nd = self.problem.dims.len();
        let nl = self.level_slots.len();
        // The chosen factor of dim d in slot s (1 for a dim not chosen yet).
        let f = |d: usize, s: usize| match chosen[d] {
            UNCHOSEN => 1,
            k => self.choices[d][k as usize][s],
        };
        m.levels.resize_with(nl, Default::default);
        free.resize_with(nl, Default::default);
        for (l, ls) in self.level_slots.iter().enumerate() {
            let lm = &mut m.levels[l];
            lm.spatial_x.clear();
            lm.spatial_y.clear();
            lm.temporal.clear();
            let t = ls.temporal;
            for (d, (choices, &k)) in self.choices.iter().zip(chosen).enumerate() {
                if k == UNCHOSEN {
                    lm.temporal.push(Loop { dim: d, factor: 1 });
                    continue;
                }
                let c = &choices[k as usize];
                for (slot, loops) in [(ls.x, &mut lm.spatial_x), (ls.y, &mut lm.spatial_y)] {
                    if let Some(s) = slot.filter(|&s| c[s] > 1) {
                        loops.push(Loop {
                            dim: d,
                            factor: c[s],
                        });
                    }
                }
                if c[t] == 1 {
                    lm.temporal.push(Loop { dim: d, factor: 1 });
                }
            }
            for &d in self.prefix[l].iter().filter(|&&d| f(d, t) > 1) {
                lm.temporal.push(Loop {
                    dim: d,
                    factor: f(d, t),
                });
            }
            let (start, rest) = &mut free[l];
            *start = lm.temporal.len();
            rest.clear();
            for d in 0..nd {
                let factor = f(d, t);
                if factor > 1 && !self.prefix[l].contains(&d) {
                    rest.push(d);
                    lm.temporal.push(Loop { dim: d, factor });
                }
            }
            if !(self.enumerate_orders[l] && rest.len() > 1) {
                rest.clear();
            }
            lm.keep.clear();
            lm.keep
                .extend(self.keep[l].iter().map(|k| *k == KeepChoice::Fixed(true)));
        }
    }

    fn emit(&self, chosen: &[u32], s: &mut Emit, f: &mut impl FnMut(&Mapping, Visit) -> bool) {
        self.fill_base_mapping(chosen, &mut s.mapping, &mut s.free);
        let (m, free) = (&mut s.mapping, &s.free);
        // Per level, its free dims' orders: the permutations of their positions, in
        // lexicographic order (the first one keeps the base order).
        for (_, dims) in free {
            let k = dims.len();
            if s.perms.len() <= k {
                s.perms.resize_with(k + 1, Vec::new);
            }
            if k > 1 && s.perms[k].is_empty() {
                s.perms[k] = (0..k).permutations(k).collect();
            }
        }
        let nl = free.len();
        let orders = |l: usize| {
            let k = free[l].1.len();
            if k < 2 {
                1
            } else {
                s.perms[k].len()
            }
        };
        s.idx.clear();
        s.idx.resize(nl, 0);
        s.invalid.clear();
        s.invalid.resize(1 << self.free_keeps.len(), false);
        let all_orders: u64 = (0..nl).fold(1u64, |n, l| n.saturating_mul(orders(l) as u64));
        let mut first = true;
        loop {
            if !first && s.clock.past_deadline() {
                break;
            }
            let (visited, skipped) = self.emit_keeps(m, first, all_orders, &mut s.invalid, f);
            s.skipped += skipped;
            if first && s.invalid.iter().filter(|&&i| i).count() == visited {
                // Every keep pattern declined (or none in the space): skip the other orders.
                s.skipped = s
                    .skipped
                    .saturating_add((all_orders - 1).saturating_mul(visited as u64));
                break;
            }
            first = false;
            // Odometer over the levels' orders; levels 0..=l change.
            let mut l = 0;
            while l < nl {
                s.idx[l] += 1;
                if s.idx[l] < orders(l) {
                    break;
                }
                s.idx[l] = 0;
                l += 1;
            }
            if l == nl {
                break;
            }
            for (l, (start, dims)) in free.iter().enumerate().take(l + 1) {
                if dims.len() < 2 {
                    continue;
                }
                let lm = &mut m.levels[l];
                for (k, &i) in s.perms[dims.len()][s.idx[l]].iter().enumerate() {
                    let d = dims[i];
                    let factor = self.choices[d][chosen[d] as usize][self.level_slots[l].temporal];
                    lm.temporal[start + k] = Loop { dim: d, factor };
                }
            }
        }
    }

    /// Calls `f` on `m` with every keep pattern; at the `first` loop order of a factorisation,
    /// records in `invalid` the patterns for which `f` returned false, at the others skips
    /// them. Returns how many patterns `f` was called with and how many were skipped.
    fn emit_keeps(
        &self,
        m: &mut Mapping,
        first: bool,
        orders: u64,
        invalid: &mut [bool],
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) -> (usize, u64) {
        let nf = self.free_keeps.len();
        assert!(nf < 64, "too many free keep choices to enumerate");
        let nt = self.problem.tensors.len();
        let (mut visited, mut skipped) = (0, 0);
        for mask in 0..(1u64 << nf) {
            if !first && invalid[mask as usize] {
                skipped += 1;
                continue;
            }
            for (k, &(l, t)) in self.free_keeps.iter().enumerate() {
                m.levels[l].keep[t] = mask >> k & 1 == 1;
            }
            if (0..nt).all(|t| m.levels.iter().any(|lm| lm.keep[t])) {
                let visit = Visit {
                    keep: mask as usize,
                    first,
                    orders,
                };
                let go_on = f(m, visit);
                visited += 1;
                if first {
                    invalid[mask as usize] = !go_on;
                }
            }
        }
        (visited, skipped)
    }

    /// A random mapping of the space, Timeloop-style: a factorisation uniformly among the
    /// valid ones, then a uniform loop order per level and a uniform keep pattern.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Mapping {
        let mut chosen = vec![0u32; self.problem.dims.len()];
        let mut state = 0u32;
        for (i, &d) in self.dim_order.iter().enumerate() {
            let ts = &self.steps[i].trans[state as usize];
            let total = ts.last().map_or(0.0, |t| t.cum);
            let r = rng.random::<f64>() * total;
            let k = ts.partition_point(|t| t.cum <= r).min(ts.len() - 1);
            chosen[d] = ts[k].choice;
            state = ts[k].next;
        }
        let (mut m, free) = self.base_mapping(&chosen);
        for (l, (start, dims)) in free.iter().enumerate() {
            let lm = &mut m.levels[l];
            let seg = &mut lm.temporal[*start..*start + dims.len()];
            for i in (1..seg.len()).rev() {
                let j = rng.random_range(0..=i);
                seg.swap(i, j);
            }
        }
        let nt = self.problem.tensors.len();
        for t in 0..nt {
            let cells: Vec<usize> = self
                .free_keeps
                .iter()
                .filter(|&&(_, x)| x == t)
                .map(|&(l, _)| l)
                .collect();
            loop {
                for &l in &cells {
                    m.levels[l].keep[t] = rng.random::<bool>();
                }
                if m.levels.iter().any(|lm| lm.keep[t]) {
                    break;
                }
            }
        }
        m
    }

    // -----------------------------------------------------------------------------------------
    // Membership
    // -----------------------------------------------------------------------------------------

    /// Whether `m` is a mapping of this space (satisfies every constraint).
    pub fn contains(&self, m: &Mapping) -> bool {
        self.check(m).is_ok()
    }

    /// Why `m` is not a mapping of this space, if it is not.
    pub fn check(&self, m: &Mapping) -> Result<(), String> {
        let nd = self.problem.dims.len();
        let nt = self.problem.tensors.len();
        let nl = self.arch.levels.len();
        if m.levels.len() != nl {
            return Err(format!(
                "{} levels, the architecture has {nl}",
                m.levels.len()
            ));
        }
        let mut fac = vec![vec![1u64; self.slots.len()]; nd];
        for (l, lm) in m.levels.iter().enumerate() {
            let name = &self.arch.levels[l].name;
            let ls = self.level_slots[l];
            for (loops, slot, what) in [
                (&lm.temporal, Some(ls.temporal), "temporal"),
                (&lm.spatial_x, ls.x, "spatial X"),
                (&lm.spatial_y, ls.y, "spatial Y"),
            ] {
                for lp in loops {
                    if lp.dim >= nd || lp.factor == 0 {
                        return Err(format!("{name}: malformed {what} loop"));
                    }
                    if lp.factor == 1 {
                        continue;
                    }
                    let Some(s) = slot else {
                        return Err(format!("{name}: no {what} fanout"));
                    };
                    if fac[lp.dim][s] != 1 {
                        return Err(format!(
                            "{name}: two {what} loops over {}",
                            self.problem.dims[lp.dim]
                        ));
                    }
                    fac[lp.dim][s] = lp.factor;
                }
            }
            if lm.keep.len() != nt {
                return Err(format!("{name}: keep list does not match the tensors"));
            }
        }
        let mut chosen = vec![0u32; nd];
        for d in 0..nd {
            let prod: u64 = fac[d].iter().product();
            if prod != self.problem.bounds[d] {
                return Err(format!(
                    "factors of {} multiply to {prod}, the bound is {}",
                    self.problem.dims[d], self.problem.bounds[d]
                ));
            }
            chosen[d] = *self.choice_index[d].get(&fac[d]).ok_or_else(|| {
                format!(
                    "the factors of {} violate a constraint: {}",
                    self.problem.dims[d],
                    self.describe_factors(d, &fac[d])
                )
            })?;
        }
        let mut state = 0u32;
        for (i, &d) in self.dim_order.iter().enumerate() {
            let cur = &self.steps[i].states[state as usize];
            let next = self
                .advance(cur, &self.sigs[d][chosen[d] as usize])
                .ok_or_else(|| {
                    "spatial factors exceed a fanout or break the X/Y split order".to_string()
                })?;
            state = *self.steps[i + 1]
                .index
                .get(&next)
                .ok_or("spatial factors exceed a fanout")?;
        }
        for (l, lm) in m.levels.iter().enumerate() {
            let order: Vec<usize> = lm
                .temporal
                .iter()
                .filter(|lp| lp.factor > 1)
                .map(|lp| lp.dim)
                .collect();
            let listed: Vec<usize> = self.prefix[l]
                .iter()
                .copied()
                .filter(|d| order.contains(d))
                .collect();
            if order[..listed.len()] != listed[..] {
                return Err(format!(
                    "{}: loop order violates the permutation constraint {}",
                    self.arch.levels[l].name,
                    self.prefix[l]
                        .iter()
                        .map(|&d| &self.problem.dims[d])
                        .join("")
                ));
            }
            for t in 0..nt {
                if let KeepChoice::Fixed(k) = self.keep[l][t] {
                    if lm.keep[t] != k {
                        return Err(format!(
                            "{}: must {} {}",
                            self.arch.levels[l].name,
                            if k { "keep" } else { "bypass" },
                            self.problem.tensors[t].name
                        ));
                    }
                }
            }
        }
        for t in 0..nt {
            if !m.levels.iter().any(|lm| lm.keep[t]) {
                return Err(format!(
                    "{} is kept at no level",
                    self.problem.tensors[t].name
                ));
            }
        }
        Ok(())
    }

    fn describe_factors(&self, d: usize, f: &[u64]) -> String {
        self.slots
            .iter()
            .zip(f)
            .filter(|(_, &x)| x > 1)
            .map(|(s, x)| {
                let k = match s.kind {
                    SlotKind::Temporal => "T",
                    SlotKind::SpatialX => "X",
                    SlotKind::SpatialY => "Y",
                };
                format!(
                    "{}{}@{}:{k}",
                    self.problem.dims[d], x, self.arch.levels[s.level].name
                )
            })
            .join(" ")
    }
}

// ---------------------------------------------------------------------------------------------
// Building a mapspace: slots and constraints resolved against a problem
// ---------------------------------------------------------------------------------------------

/// The slots of `arch`, innermost level first: per level spatial X and Y (where its fanout in
/// that direction is > 1), then temporal.
fn build_slots(arch: &Arch) -> (Vec<Slot>, Vec<LevelSlots>) {
    let mut slots = Vec::new();
    let mut level_slots = Vec::new();
    for l in 0..arch.levels.len() {
        let (fx, fy) = arch.fanout(l);
        let mut ls = LevelSlots::default();
        for (fanout, kind, at) in [
            (fx, SlotKind::SpatialX, &mut ls.x),
            (fy, SlotKind::SpatialY, &mut ls.y),
        ] {
            if fanout > 1 {
                *at = Some(slots.len());
                slots.push(Slot {
                    level: l,
                    kind,
                    fanout: Some(fanout),
                });
            }
        }
        ls.temporal = slots.len();
        slots.push(Slot {
            level: l,
            kind: SlotKind::Temporal,
            fanout: None,
        });
        level_slots.push(ls);
    }
    (slots, level_slots)
}

/// Resolves a dim name of a constraint; None = dropped (M or C on a depthwise problem).
fn resolve_dim(
    problem: &Problem,
    name: &str,
    origin: &str,
    notes: &mut Vec<String>,
) -> Result<Option<usize>, String> {
    match problem.dim_index(name) {
        Some(d) => Ok(Some(d)),
        None if problem.dim_index("G").is_some() && (name == "M" || name == "C") => {
            let note = format!(
                "{origin}: `{name}` does not exist in depthwise problem `{}`; constraint dropped",
                problem.name
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
            Ok(None)
        }
        None => Err(format!(
            "{origin}: unknown dimension `{name}` (dims of {}: {})",
            problem.name,
            problem.dims.join(" ")
        )),
    }
}

/// Resolves a permutation's dim names (dropped ones left out).
fn resolve_dims(
    problem: &Problem,
    names: &[String],
    origin: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for name in names {
        if let Some(d) = resolve_dim(problem, name, origin, notes)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// Factor rules per [dim][level][temporal, spatial], with fixed factors clamped to the bound
/// and `D=0` resolved to the remaining factor (every other unfixed slot of D at 1).
fn resolve_factor_rules(
    problem: &Problem,
    cons: &Constraints,
    notes: &mut Vec<String>,
) -> Result<Vec<Vec<[Rule; 2]>>, String> {
    let (nd, nl) = (problem.dims.len(), cons.levels.len());
    let mut rules = vec![vec![[Rule::default(); 2]; nl]; nd];
    // Per dim: the `D=0` positions and the product of the fixed factors.
    let mut remaining: Vec<Vec<(usize, usize, String)>> = vec![Vec::new(); nd];
    let mut fixed_prod = vec![1u64; nd];
    for (l, lc) in cons.levels.iter().enumerate() {
        for (k, kind) in [LoopKind::Temporal, LoopKind::Spatial]
            .into_iter()
            .enumerate()
        {
            for (name, fr) in &lc.loops(kind).factors {
                let Some(d) = resolve_dim(problem, name, &fr.origin, notes)? else {
                    continue;
                };
                let bound = problem.bounds[d];
                let rule = &mut rules[d][l][k];
                rule.max = fr.max;
                rule.min = fr.min;
                match fr.fixed {
                    Some(FixedFactor::Value(v)) => {
                        if v > bound {
                            notes.push(format!(
                                "{}: factor {name}={v} exceeds the bound {bound}; clamped",
                                fr.origin
                            ));
                        }
                        rule.fixed = Some(v.min(bound));
                        fixed_prod[d] = fixed_prod[d].saturating_mul(v.min(bound));
                    }
                    Some(FixedFactor::Remaining) => remaining[d].push((l, k, fr.origin.clone())),
                    None => {}
                }
            }
        }
    }
    for (d, rem) in remaining.into_iter().enumerate() {
        let (bound, name) = (problem.bounds[d], &problem.dims[d]);
        if rem.len() > 1 {
            return Err(format!(
                "{} and {}: `{name}=0` (the whole remaining factor) is given twice",
                rem[0].2, rem[1].2
            ));
        }
        let Some((l, k, origin)) = rem.into_iter().next() else {
            continue;
        };
        if !bound.is_multiple_of(fixed_prod[d]) {
            return Err(format!(
                "{origin}: `{name}=0`: the factors fixed elsewhere ({}) do not divide the bound \
                 {bound}",
                fixed_prod[d]
            ));
        }
        for (ll, row) in rules[d].iter_mut().enumerate() {
            for (kk, r) in row.iter_mut().enumerate() {
                if (ll, kk) == (l, k) {
                    r.fixed = Some(bound / fixed_prod[d]);
                } else if r.fixed.is_none() {
                    r.fixed = Some(1);
                }
            }
        }
    }
    Ok(rules)
}

/// The X/Y rule of every level, and the levels whose split point follows a permutation order.
fn resolve_spatial_rules(
    problem: &Problem,
    cons: &Constraints,
    level_slots: &[LevelSlots],
    notes: &mut Vec<String>,
) -> Result<(Vec<SpatialRule>, Vec<usize>), String> {
    let nd = problem.dims.len();
    let mut rules = Vec::new();
    let mut coupled = Vec::new();
    for (l, lc) in cons.levels.iter().enumerate() {
        let lp = &lc.spatial;
        let perm = resolve_dims(problem, &lp.permutation, &lp.permutation_origin, notes)?;
        let ls = level_slots[l];
        let mut rule = SpatialRule {
            dir: vec![SpatialDir::Any; nd],
            order: None,
        };
        if let Some(split) = lc.split {
            // Positions < split are X; unlisted dims take the positions after the listed ones.
            let split = split as usize;
            for (d, dir) in rule.dir.iter_mut().enumerate() {
                *dir = match perm.iter().position(|&x| x == d) {
                    Some(i) if i < split => SpatialDir::XOnly,
                    Some(_) => SpatialDir::YOnly,
                    None if split <= perm.len() => SpatialDir::YOnly,
                    None if split >= nd => SpatialDir::XOnly,
                    None => SpatialDir::OneOf,
                };
            }
        } else if !perm.is_empty() && ls.x.is_some() && ls.y.is_some() {
            // The split point is free but follows the order.
            rule.dir = vec![SpatialDir::OneOf; nd];
            rule.order = Some(
                (0..nd)
                    .map(|d| perm.iter().position(|&x| x == d).unwrap_or(perm.len()))
                    .collect(),
            );
            coupled.push(l);
        }
        rules.push(rule);
    }
    Ok((rules, coupled))
}

/// Keep/bypass per [level][tensor]: the architecture's rule, a constraint, or free; the
/// outermost level keeps what nothing forbids.
fn resolve_keeps(
    problem: &Problem,
    arch: &Arch,
    cons: &Constraints,
) -> Result<Vec<Vec<KeepChoice>>, String> {
    let nl = arch.levels.len();
    let mut keep = Vec::new();
    for (l, level) in arch.levels.iter().enumerate() {
        let dt = &cons.levels[l].datatype;
        if let Some((name, (_, origin))) = dt
            .iter()
            .find(|(name, _)| problem.tensor_index(name).is_none())
        {
            return Err(format!(
                "{origin}: unknown tensor `{name}` (tensors: {})",
                problem.tensors.iter().map(|t| t.name.as_str()).join(", ")
            ));
        }
        let mut row = Vec::new();
        for tensor in &problem.tensors {
            row.push(
                match (arch.keep_rule(l, &tensor.name), dt.get(&tensor.name)) {
                    (KeepRule::Must, Some((false, o))) => {
                        return Err(format!(
                            "{o}: bypasses {} at {}, which the architecture makes keep it",
                            tensor.name, level.name
                        ))
                    }
                    (KeepRule::Never, Some((true, o))) => {
                        return Err(format!(
                            "{o}: keeps {} at {}, which cannot hold it",
                            tensor.name, level.name
                        ))
                    }
                    (KeepRule::Must, _) => KeepChoice::Fixed(true),
                    (KeepRule::Never, _) => KeepChoice::Fixed(false),
                    (KeepRule::Free, Some((k, _))) => KeepChoice::Fixed(*k),
                    (KeepRule::Free, None) if l == nl - 1 => KeepChoice::Fixed(true),
                    (KeepRule::Free, None) => KeepChoice::Free,
                },
            );
        }
        keep.push(row);
    }
    Ok(keep)
}

/// Number of keep patterns (exact, saturating; and as f64): per tensor 2^free, less the one
/// that keeps it nowhere when no level must keep it.
fn count_bypass_patterns(problem: &Problem, keep: &[Vec<KeepChoice>]) -> Result<Count, String> {
    let mut n = 1u128;
    let mut f = 1.0f64;
    for (t, tensor) in problem.tensors.iter().enumerate() {
        let free = keep.iter().filter(|row| row[t] == KeepChoice::Free).count() as u32;
        let kept = keep.iter().any(|row| row[t] == KeepChoice::Fixed(true));
        let c = 2u128.saturating_pow(free) - u128::from(!kept);
        if c == 0 {
            return Err(format!("{} can be kept at no level", tensor.name));
        }
        n = n.saturating_mul(c);
        f *= 2f64.powi(free as i32) - f64::from(u8::from(!kept));
    }
    Ok((n, f))
}

/// Every per-slot factor vector of dim `d` that satisfies the per-dim constraints.
fn dim_factor_choices(
    problem: &Problem,
    d: usize,
    slots: &[Slot],
    level_slots: &[LevelSlots],
    rules: &[Vec<[Rule; 2]>],
    spatial_rules: &[SpatialRule],
) -> Result<Vec<Vec<u64>>, String> {
    let bound = problem.bounds[d];
    let divs = divisors(bound);
    let allowed: Vec<Vec<u64>> = slots
        .iter()
        .map(|s| {
            let dir = spatial_rules[s.level].dir[d];
            let fits = |f: u64| f <= s.fanout.unwrap_or(u64::MAX);
            divs.iter()
                .copied()
                .filter(|&f| match s.kind {
                    SlotKind::Temporal => rules[d][s.level][0].admits(f),
                    SlotKind::SpatialX => fits(f) && (f == 1 || dir != SpatialDir::YOnly),
                    SlotKind::SpatialY => fits(f) && (f == 1 || dir != SpatialDir::XOnly),
                })
                .collect()
        })
        .collect();
    let accept = |cur: &[u64]| {
        level_slots.iter().enumerate().all(|(l, ls)| {
            let x = ls.x.map_or(1, |s| cur[s]);
            let y = ls.y.map_or(1, |s| cur[s]);
            let one_axis = spatial_rules[l].dir[d] == SpatialDir::OneOf;
            rules[d][l][1].admits(x * y) && !(one_axis && x > 1 && y > 1)
        })
    };
    let mut out = Vec::new();
    if !gen_choices(
        0,
        bound,
        &allowed,
        &mut vec![1; slots.len()],
        &mut out,
        &accept,
    ) {
        return Err(format!(
            "{} = {bound} has more than {MAX_DIM_CHOICES} factorisations over the \
             architecture's {} loop slots, more than qmap keeps in memory: constrain its \
             factors per level (e.g. `{}=1` at the levels where it should not be split)",
            problem.dims[d],
            slots.len(),
            problem.dims[d]
        ));
    }
    Ok(out)
}

/// Why dim `d` has no factorisation: the constraints that restrict it, grouped by file
/// (`no factorisation of M = 997 satisfies the constraints (c.yaml: targets[1].factors,
/// targets[3].factors)`).
fn no_factorisation(problem: &Problem, d: usize, cons: &Constraints) -> String {
    let mut by_file: Vec<(String, Vec<String>)> = vec![];
    let origins = cons.levels.iter().flat_map(|lc| {
        [&lc.temporal, &lc.spatial]
            .into_iter()
            .filter_map(|lp| lp.factors.get(&problem.dims[d]))
            .map(|r| r.origin.clone())
    });
    for o in origins.unique() {
        let (file, field) = o.rsplit_once(": ").unwrap_or(("", o.as_str()));
        match by_file.iter_mut().find(|(f, _)| f == file) {
            Some((_, fields)) => fields.push(field.to_string()),
            None => by_file.push((file.to_string(), vec![field.to_string()])),
        }
    }
    let origins: Vec<String> = by_file
        .into_iter()
        .map(|(f, fields)| match f.as_str() {
            "" => fields.join(", "),
            _ => format!("{f}: {}", fields.join(", ")),
        })
        .collect();
    format!(
        "no factorisation of {} = {} satisfies the constraints{}",
        problem.dims[d],
        problem.bounds[d],
        if origins.is_empty() {
            String::new()
        } else {
            format!(" ({})", origins.join("; "))
        }
    )
}

/// A fast hasher for the packed u128 keys of the loop-order DP.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.0 = (self.0 ^ x).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// All per-slot factor vectors from slot `s` on whose product is `rem`; false (stopped) when
/// there are more than [`MAX_DIM_CHOICES`].
fn gen_choices(
    s: usize,
    rem: u64,
    allowed: &[Vec<u64>],
    cur: &mut Vec<u64>,
    out: &mut Vec<Vec<u64>>,
    accept: &impl Fn(&[u64]) -> bool,
) -> bool {
    if s == allowed.len() {
        if rem == 1 && accept(cur) {
            out.push(cur.clone());
        }
        return out.len() <= MAX_DIM_CHOICES;
    }
    for &a in &allowed[s] {
        if rem.is_multiple_of(a) {
            cur[s] = a;
            if !gen_choices(s + 1, rem / a, allowed, cur, out, accept) {
                return false;
            }
        }
    }
    cur[s] = 1;
    true
}
