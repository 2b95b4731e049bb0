//! Timeloop-style mapspace constraints: the [`Constraints`] of one architecture, read from
//! YAML (`mapping/constraints.cpp` semantics, see the module doc of [`crate::mapspace`]).

use crate::model::Arch;
use crate::spec::InputError;
use itertools::Itertools;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;

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

/// Where a constraint stands: its level, its YAML path and that of its attributes, its file.
struct Site<'p> {
    level: usize,
    path: &'p str,
    apath: String,
    file: &'p Path,
}

impl Site<'_> {
    fn err(&self, field: String, message: String) -> InputError {
        InputError::new(self.file, field, message)
    }

    /// Where a setting at YAML path `field` comes from, for later error messages.
    fn origin(&self, field: &str) -> String {
        format!("{}: {}", self.file.display(), field)
    }
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
        let (tykey, ty) = get_kv(c, "type")
            .ok_or_else(|| InputError::new(file, join(path, "type"), "missing"))?;
        let ty = scalar_text(ty)
            .ok_or_else(|| InputError::new(file, join(path, tykey), "must be a string"))?
            .to_ascii_lowercase();
        // Timeloop reads the attributes from `attributes:` when present.
        let (attrs, apath) = match get_kv(c, "attributes").filter(|(_, a)| a.is_mapping()) {
            Some((k, a)) => (a, join(path, k)),
            None => (c, path.to_string()),
        };
        let site = Site {
            level,
            path,
            apath,
            file,
        };
        match ty.as_str() {
            "temporal" => self.add_loops(&site, LoopKind::Temporal, &ty, c, attrs),
            "spatial" => self.add_loops(&site, LoopKind::Spatial, &ty, c, attrs),
            "bypass" | "datatype" | "bypassing" => self.add_datatypes(&site, attrs),
            t if IGNORED_TYPES.contains(&t) => {
                self.notes.push(format!(
                    "{}: constraint type `{t}` is not modelled; ignored",
                    site.origin(path)
                ));
                Ok(())
            }
            t => Err(site.err(
                join(path, tykey),
                format!(
                    "unknown constraint type `{t}` (expected temporal, spatial, bypass or \
                     datatype)"
                ),
            )),
        }
    }

    /// A `temporal` or `spatial` constraint (`ty`, of loop kind `kind`): its factors, its
    /// permutation and (spatial) its split.
    fn add_loops(
        &mut self,
        site: &Site,
        kind: LoopKind,
        ty: &str,
        c: &Value,
        attrs: &Value,
    ) -> Result<(), InputError> {
        if let Some((k, f)) = get_kv(attrs, "factors") {
            let fpath = join(&site.apath, k);
            let items = parse_factors(f).map_err(|m| site.err(fpath.clone(), m))?;
            for (name, op, value) in items {
                self.add_factor(site.level, kind, &name, op, value, &site.origin(&fpath))
                    .map_err(|m| site.err(fpath.clone(), m))?;
            }
        }
        if let Some((k, p)) = get_kv(attrs, "permutation") {
            self.add_permutation(site, kind, ty, join(&site.apath, k), p)?;
        }
        if kind == LoopKind::Spatial {
            if let Some((k, s)) = get_kv(c, "split").or_else(|| get_kv(attrs, "split")) {
                self.add_split(site, join(site.path, k), s)?;
            }
        }
        Ok(())
    }

    /// The permutation `p` (at `ppath`) of a `ty` constraint.
    fn add_permutation(
        &mut self,
        site: &Site,
        kind: LoopKind,
        ty: &str,
        ppath: String,
        p: &Value,
    ) -> Result<(), InputError> {
        let perm = parse_permutation(p).map_err(|m| site.err(ppath.clone(), m))?;
        if perm.is_empty() {
            return Ok(());
        }
        let lc = self.levels[site.level].loops_mut(kind);
        if !lc.permutation.is_empty() && lc.permutation != perm {
            return Err(site.err(
                ppath,
                format!(
                    "re-specification of the {ty} permutation (already `{}` from {})",
                    lc.permutation.join(""),
                    lc.permutation_origin
                ),
            ));
        }
        lc.permutation = perm;
        lc.permutation_origin = site.origin(&ppath);
        Ok(())
    }

    /// The spatial split `s` (at `spath`).
    fn add_split(&mut self, site: &Site, spath: String, s: &Value) -> Result<(), InputError> {
        let split = untag(s)
            .as_u64()
            .ok_or_else(|| site.err(spath.clone(), "must be an integer >= 0".into()))?
            .min(u32::MAX as u64) as u32;
        let lc = &mut self.levels[site.level];
        if lc.split.is_some_and(|x| x != split) {
            return Err(site.err(
                spath,
                format!(
                    "re-specification of the spatial split (already {} from {})",
                    lc.split.unwrap(),
                    lc.split_origin
                ),
            ));
        }
        lc.split = Some(split);
        lc.split_origin = site.origin(&spath);
        Ok(())
    }

    /// A `bypass` / `datatype` constraint: its `keep` and `bypass` lists.
    fn add_datatypes(&mut self, site: &Site, attrs: &Value) -> Result<(), InputError> {
        for (key, keep) in [("keep", true), ("bypass", false)] {
            let Some((k, list)) = get_kv(attrs, key) else {
                continue;
            };
            let lpath = join(&site.apath, k);
            let names = string_list(list).map_err(|m| site.err(lpath.clone(), m))?;
            for name in names {
                let dt = &mut self.levels[site.level].datatype;
                if let Some((old, o)) = dt.get(&name) {
                    if *old != keep {
                        return Err(
                            site.err(lpath, format!("{name} is both kept and bypassed (see {o})"))
                        );
                    }
                }
                dt.insert(name, (keep, site.origin(&lpath)));
            }
        }
        Ok(())
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
