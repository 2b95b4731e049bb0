//! Timeloop importer and exporter: flattened architecture, ERT, problem, mapping and constraint
//! files (v0.3 and v0.4 spellings) and the mappings Timeloop prints, read into qmap's model
//! types; mappings and problems written back as Timeloop files.
//!
//! The readers follow Timeloop v3's own parsers (`model/topology.cpp`, `model/buffer.cpp`,
//! `workload/problem-shape.cpp`, `mapping/parser.cpp`) wherever they define a default:
//! - Architecture trees: each `subtree` list holds one node; a name `X[a..b]` multiplies the
//!   instances of everything below it by `b - a + 1`; `local` lists run outermost → innermost.
//!   Components whose class contains `DRAM`, `SRAM`, `regfile`, `smartbuffer` or `storage` are
//!   storage levels (`dummy_storage` → a dummy level that holds nothing), classes containing `mac`
//!   or `compute` the arithmetic units; other classes (networks) are ignored. Attributes of a tree
//!   node are inherited by everything below it (Accelergy's rule; a component's own attributes
//!   win), except `instances` and the mesh.
//! - Word bits: `word-bits` | `word_bits` | `word_width` | `datawidth` (default 16). Block size
//!   (`block-size` | `block_size` | `n_words`) and cluster size (`cluster-size` | `cluster_size`)
//!   follow Timeloop's rules against the width (`width` | `memory_width`): both given → they
//!   must multiply to the width; one given → the other is derived; neither → block = width / word
//!   bits, cluster 1; no width → block 1 and cluster 1 unless given. Capacity: `entries` words,
//!   or `depth` | `memory_depth` rows of one block each, or `sizeKB`; divided by
//!   `multiple-buffering`.
//! - Mesh: `meshX` and/or `meshY` against the instances; neither → all instances along X.
//! - ERT: tables matched to components by their last path segment without the instance range;
//!   when an action lists several argument variants the largest energy is taken (as Timeloop
//!   does). `update` defaults to `write`; the MAC's energy is `compute` (or the largest `mac_*`).
//! - Mappings: factors missing at a level are 1, factor 0 means the whole dimension, missing
//!   permutation dims are appended (outermost), spatial dims at permutation positions `< split`
//!   go to X (default: all X). Timeloop does not fill a missing factor with the remaining
//!   quotient: a mapping whose factors do not multiply to the bounds is an error, as in
//!   Timeloop. A tensor the mapping says nothing about at a level is kept there (Timeloop's
//!   default) unless the architecture forbids it.
//! - Printed mappings (`map.txt`, and the `Loop nest:` of each level in `stats.txt`): loops
//!   outermost first, a level's temporal loops before its spatial ones (X inside Y), loops of
//!   factor 1 not printed. In map.txt the header `NAME [ Tensor:tile (words) ... ]` lists the
//!   tensors kept, and a level without loops prints its header alone, straight above the next
//!   one; in stats.txt the kept tensors are the blocks under `STATS`. Timeloop's stats.txt
//!   leaves `dummy_storage` levels out, and with them their spatial loops: such a nest is
//!   reported, not guessed.
//! - Export follows Timeloop's own `FormatAsConstraints`: per level a datatype (`bypass`) entry,
//!   factors for every dimension, permutations innermost first listing every dimension (the
//!   mapping's temporal order, then the dimensions it leaves out), spatial X dimensions before
//!   Y with `split` = their count, and spatial entries only at levels with a fanout (Timeloop
//!   rejects the others).

use crate::model::{
    Arch, Bits, KeepRule, Level, LevelMapping, Loop, Mac, Mapping, Problem, Tensor, Term,
};
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::collections::HashMap;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// YAML helpers
// ---------------------------------------------------------------------------------------------

/// The file errors are reported against.
#[derive(Clone, Copy)]
struct Src<'a> {
    file: &'a Path,
}

impl Src<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> InputError {
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

fn load_value(path: &Path) -> Result<Value, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
    parse_value(path, &text)
}

fn parse_value(path: &Path, text: &str) -> Result<Value, InputError> {
    let mut v = crate::spec::yaml_value(path, text)?;
    v.apply_merge()
        .map_err(|e| InputError::new(path, "(document)", format!("invalid YAML merge: {e}")))?;
    Ok(untag(v))
}

/// `parent.key`, or `key` at the root.
fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A non-null value under `key` of a mapping.
fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// The first of `keys` present (non-null) in `v`, with the key found.
fn get_any<'v>(v: &'v Value, keys: &[&'static str]) -> Option<(&'static str, &'v Value)> {
    keys.iter().find_map(|k| get(v, k).map(|x| (*k, x)))
}

fn value_u64(v: &Value) -> Option<u64> {
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

fn value_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A scalar as text (strings, numbers and booleans).
fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn req_str<'v>(v: &'v Value, key: &str, path: &str, src: Src) -> Result<&'v str, InputError> {
    match get(v, key) {
        None => Err(src.err(join(path, key), "missing")),
        Some(x) => x
            .as_str()
            .ok_or_else(|| src.err(join(path, key), "must be a string")),
    }
}

fn seq<'v>(v: &'v Value, path: &str, src: Src) -> Result<&'v [Value], InputError> {
    v.as_sequence()
        .map(|s| s.as_slice())
        .ok_or_else(|| src.err(path, "must be a list"))
}

/// A list of strings (a single string counts as a one-element list; null as empty).
fn str_list(v: Option<&Value>, path: &str, src: Src) -> Result<Vec<String>, InputError> {
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
fn strip_ranges(name: &str) -> String {
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

/// The component an ERT table name refers to: its last path segment without the range
/// (`system_top_level.shared_glb[1..1]` → `shared_glb`, `PE.Buffer` → `Buffer`).
fn ert_component(name: &str) -> String {
    let s = strip_ranges(name);
    s.rsplit('.').next().unwrap_or("").trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// Architecture
// ---------------------------------------------------------------------------------------------

/// Attribute spellings, canonical name first, in Timeloop's order of precedence.
const ATTR_ALIASES: &[(&str, &[&str])] = &[
    (
        "word_bits",
        &["word-bits", "word_bits", "word_width", "datawidth"],
    ),
    ("block_size", &["block-size", "block_size", "n_words"]),
    ("cluster_size", &["cluster-size", "cluster_size"]),
    ("width", &["width", "memory_width", "data_storage_width"]),
    ("depth", &["depth", "memory_depth", "data_storage_depth"]),
    ("entries", &["entries"]),
    ("size_kb", &["sizeKB", "size_kb"]),
    ("read_bandwidth", &["read_bandwidth", "read-bandwidth"]),
    ("write_bandwidth", &["write_bandwidth", "write-bandwidth"]),
    (
        "shared_bandwidth",
        &["shared_bandwidth", "shared-bandwidth"],
    ),
    ("bandwidth", &["bandwidth"]),
    (
        "multiple_buffering",
        &["multiple-buffering", "multiple_buffering"],
    ),
    (
        "vector_access_energy",
        &["vector-access-energy", "vector_access_energy"],
    ),
    ("instances", &["instances"]),
    ("mesh_x", &["meshX", "mesh_x", "mesh-x"]),
    ("mesh_y", &["meshY", "mesh_y", "mesh-y"]),
];

/// Attributes that describe one component only and are not inherited down the tree.
const NOT_INHERITED: &[&str] = &["instances", "mesh_x", "mesh_y"];

/// Canonical attributes: value and the field path it came from.
#[derive(Debug, Clone, Default)]
struct Attrs(HashMap<&'static str, (Value, String)>);

impl Attrs {
    fn parse(v: Option<&Value>, path: &str, src: Src) -> Result<Attrs, InputError> {
        let mut out = Attrs::default();
        let Some(v) = v else { return Ok(out) };
        if v.is_null() {
            return Ok(out);
        }
        if v.as_mapping().is_none() {
            return Err(src.err(path, "must be a mapping of attributes"));
        }
        for (canon, aliases) in ATTR_ALIASES {
            if let Some((k, x)) = get_any(v, aliases) {
                out.0.insert(canon, (x.clone(), join(path, k)));
            }
        }
        Ok(out)
    }

    /// `self` below `parent`: the parent's inheritable attributes, overridden by our own.
    fn below(self, parent: &Attrs) -> Attrs {
        let mut out: HashMap<_, _> = parent
            .0
            .iter()
            .filter(|(k, _)| !NOT_INHERITED.contains(k))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        out.extend(self.0);
        Attrs(out)
    }

    fn path(&self, key: &str, default_path: &str) -> String {
        self.0
            .get(key)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| join(default_path, key))
    }

    fn u64(&self, key: &str, src: Src) -> Result<Option<u64>, InputError> {
        match self.0.get(key) {
            None => Ok(None),
            Some((v, p)) => value_u64(v)
                .map(Some)
                .ok_or_else(|| src.err(p.clone(), "must be a non-negative integer")),
        }
    }

    /// A positive integer attribute.
    fn pos_u64(&self, key: &str, src: Src) -> Result<Option<u64>, InputError> {
        match self.u64(key, src)? {
            Some(0) => Err(src.err(self.0[key].1.clone(), "must be > 0")),
            x => Ok(x),
        }
    }

    fn f64(&self, key: &str, src: Src) -> Result<Option<f64>, InputError> {
        match self.0.get(key) {
            None => Ok(None),
            Some((v, p)) => match value_f64(v) {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(src.err(p.clone(), "must be a number")),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Storage,
    Compute,
}

/// A component of the tree, before it becomes a [`Level`] or the [`Mac`].
#[derive(Debug, Clone)]
struct RawComponent {
    name: String,
    /// Field path of the component (`architecture.subtree[0].local[3]`).
    path: String,
    class: String,
    kind: Kind,
    attrs: Attrs,
    /// Instances from the names' ranges (the `instances` attribute overrides it).
    elements: u64,
}

/// Timeloop's class test (`isBufferClass` / `isComputeClass`), case-insensitive.
fn classify(class: &str) -> Option<Kind> {
    let c = class.to_ascii_lowercase();
    if ["dram", "sram", "regfile", "smartbuffer", "storage"]
        .iter()
        .any(|k| c.contains(k))
    {
        Some(Kind::Storage)
    } else if ["mac", "compute"].iter().any(|k| c.contains(k)) {
        Some(Kind::Compute)
    } else {
        None
    }
}

/// Walks one tree node (`architecture` itself at the root) and collects its components,
/// outermost first.
fn walk_tree(
    node: &Value,
    path: &str,
    mult: u64,
    parent: &Attrs,
    src: Src,
    out: &mut Vec<RawComponent>,
) -> Result<(), InputError> {
    if node.as_mapping().is_none() {
        return Err(src.err(path, "must be a mapping (name, attributes, local, subtree)"));
    }
    let mut mult = mult;
    if let Some(n) = get(node, "name") {
        let raw = value_text(n).ok_or_else(|| src.err(join(path, "name"), "must be a string"))?;
        let (_, size) = parse_instance_name(&raw).map_err(|m| src.err(join(path, "name"), m))?;
        mult = mult.saturating_mul(size);
    }
    let attrs =
        Attrs::parse(get(node, "attributes"), &join(path, "attributes"), src)?.below(parent);
    if let Some(local) = get(node, "local") {
        let lpath = join(path, "local");
        for (i, c) in seq(local, &lpath, src)?.iter().enumerate() {
            let cpath = format!("{lpath}[{i}]");
            if c.as_mapping().is_none() {
                return Err(src.err(cpath, "must be a mapping (name, class, attributes)"));
            }
            if get(c, "enabled").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let raw = req_str(c, "name", &cpath, src)?;
            let (name, size) =
                parse_instance_name(raw).map_err(|m| src.err(join(&cpath, "name"), m))?;
            let class = get(c, "class").and_then(value_text).unwrap_or_default();
            let Some(kind) = classify(&class) else {
                continue; // networks and unknown classes: not part of the storage hierarchy
            };
            let own = Attrs::parse(get(c, "attributes"), &join(&cpath, "attributes"), src)?;
            out.push(RawComponent {
                name,
                path: cpath,
                class,
                kind,
                attrs: own.below(&attrs),
                elements: mult.saturating_mul(size),
            });
        }
    }
    if let Some(sub) = get(node, "subtree") {
        let spath = join(path, "subtree");
        let items = seq(sub, &spath, src)?;
        match items.len() {
            0 => {}
            1 => walk_tree(&items[0], &format!("{spath}[0]"), mult, &attrs, src, out)?,
            n => {
                return Err(src.err(
                    spath,
                    format!("{n} subtrees: Timeloop supports one subtree per level"),
                ))
            }
        }
    }
    Ok(())
}

/// Timeloop's classic `arch: {arithmetic, storage}` layout (storage listed innermost first).
fn classic_components(arch: &Value, src: Src) -> Result<Vec<RawComponent>, InputError> {
    let mut out = Vec::new();
    let comp = |v: &Value, path: String, kind: Kind| -> Result<RawComponent, InputError> {
        let raw = match (get(v, "name"), kind) {
            (None, Kind::Compute) => "mac",
            _ => req_str(v, "name", &path, src)?,
        };
        let (name, size) = parse_instance_name(raw).map_err(|m| src.err(join(&path, "name"), m))?;
        let (attrs, apath) = match get(v, "attributes") {
            Some(a) => (Some(a), join(&path, "attributes")),
            None => (Some(v), path.clone()),
        };
        Ok(RawComponent {
            name,
            class: get(v, "class").and_then(value_text).unwrap_or_default(),
            kind,
            attrs: Attrs::parse(attrs, &apath, src)?,
            elements: size,
            path,
        })
    };
    let storage = get(arch, "storage").ok_or_else(|| src.err("arch.storage", "missing"))?;
    let items = seq(storage, "arch.storage", src)?;
    for (i, s) in items.iter().enumerate().rev() {
        out.push(comp(s, format!("arch.storage[{i}]"), Kind::Storage)?);
    }
    let a = get(arch, "arithmetic").ok_or_else(|| src.err("arch.arithmetic", "missing"))?;
    out.push(comp(a, "arch.arithmetic".into(), Kind::Compute)?);
    Ok(out)
}

/// Instances and mesh (Timeloop's `ValidateTopology`): neither meshX nor meshY → all along X.
fn mesh_of(c: &RawComponent, src: Src) -> Result<(u64, u64, u64), InputError> {
    let apath = join(&c.path, "attributes");
    let instances = c.attrs.pos_u64("instances", src)?.unwrap_or(c.elements);
    if instances == 0 {
        return Err(src.err(join(&c.path, "name"), "instance count must be > 0"));
    }
    let mx = c.attrs.pos_u64("mesh_x", src)?;
    let my = c.attrs.pos_u64("mesh_y", src)?;
    let px = c.attrs.path("mesh_x", &apath);
    let py = c.attrs.path("mesh_y", &apath);
    let (x, y) = match (mx, my) {
        (Some(x), Some(y)) => {
            if x.checked_mul(y) != Some(instances) {
                return Err(src.err(
                    px,
                    format!("meshX {x} × meshY {y} differs from the {instances} instances"),
                ));
            }
            (x, y)
        }
        (Some(x), None) => {
            if !instances.is_multiple_of(x) {
                return Err(src.err(px, format!("must divide the {instances} instances")));
            }
            (x, instances / x)
        }
        (None, Some(y)) => {
            if !instances.is_multiple_of(y) {
                return Err(src.err(py, format!("must divide the {instances} instances")));
            }
            (instances / y, y)
        }
        (None, None) => (instances, 1),
    };
    Ok((instances, x, y))
}

fn build_level(c: &RawComponent, src: Src) -> Result<Level, InputError> {
    let a = &c.attrs;
    let apath = join(&c.path, "attributes");
    let p = |k: &str| a.path(k, &apath);
    let dummy = c.class.to_ascii_lowercase().contains("dummy");
    let word_bits = a.pos_u64("word_bits", src)?.unwrap_or(16);
    let block = a.pos_u64("block_size", src)?;
    let cluster = a.pos_u64("cluster_size", src)?;
    let (block_size, cluster_size, width) = match a.pos_u64("width", src)? {
        Some(w) => {
            let b0 = block.unwrap_or(1);
            if !w.is_multiple_of(word_bits.saturating_mul(b0)) {
                return Err(src.err(
                    p("width"),
                    format!(
                        "width {w} is not a multiple of word bits {word_bits} × block size {b0}"
                    ),
                ));
            }
            match (block, cluster) {
                (Some(b), Some(cs)) => {
                    if b.checked_mul(word_bits).and_then(|x| x.checked_mul(cs)) != Some(w) {
                        return Err(src.err(
                            p("width"),
                            format!(
                                "block size {b} × word bits {word_bits} × cluster size {cs} \
                                 differs from the width {w}"
                            ),
                        ));
                    }
                    (b, cs, w)
                }
                (None, Some(cs)) => {
                    let b = w / cs / word_bits;
                    if b == 0 {
                        return Err(src.err(
                            p("cluster_size"),
                            format!(
                                "cluster size {cs} × word bits {word_bits} exceeds the width {w}"
                            ),
                        ));
                    }
                    (b, cs, w)
                }
                (Some(b), None) => (b, w / (word_bits * b), w),
                (None, None) => (w / word_bits, 1, w),
            }
        }
        None => {
            let (b, cs) = (block.unwrap_or(1), cluster.unwrap_or(1));
            (b, cs, word_bits.saturating_mul(b).saturating_mul(cs))
        }
    };
    // Capacity in words.
    let size = match a.pos_u64("entries", src)? {
        Some(e) => Some((e, p("entries"))),
        None => match a.pos_u64("depth", src)? {
            Some(d) => Some((d.saturating_mul(block_size), p("depth"))),
            None => a
                .pos_u64("size_kb", src)?
                .map(|kb| (kb.saturating_mul(8192) / word_bits, p("size_kb"))),
        },
    };
    let depth = match size {
        _ if dummy => None,
        None => None,
        Some((words, field)) => {
            let mb = a.f64("multiple_buffering", src)?.unwrap_or(1.0);
            if mb < 1.0 {
                return Err(src.err(p("multiple_buffering"), "must be >= 1"));
            }
            let effective = (words as f64 / mb).floor() as u64;
            if effective == 0 {
                return Err(src.err(field, "capacity must be > 0"));
            }
            if !effective.is_multiple_of(block_size) {
                return Err(src.err(
                    field,
                    format!(
                        "capacity {effective} words is not a whole number of {block_size}-word \
                         blocks (not supported)"
                    ),
                ));
            }
            Some(effective / block_size)
        }
    };
    // DRAM (like any level) is unbounded unless a size is given, as in Timeloop.
    let bw = |k: &str| -> Result<Option<f64>, InputError> {
        match a.f64(k, src)? {
            Some(x) if x <= 0.0 => Err(src.err(p(k), "must be > 0")),
            x => Ok(x),
        }
    };
    let half = bw("bandwidth")?.map(|b| b / 2.0);
    let read_bandwidth = bw("read_bandwidth")?.or(half);
    let write_bandwidth = bw("write_bandwidth")?.or(half);
    let shared_bandwidth = bw("shared_bandwidth")?;
    let energy = match a.f64("vector_access_energy", src)? {
        Some(e) if e < 0.0 => return Err(src.err(p("vector_access_energy"), "must be >= 0")),
        Some(e) => e,
        None => 0.0,
    };
    let (instances, mesh_x, mesh_y) = mesh_of(c, src)?;
    Ok(Level {
        name: c.name.clone(),
        instances,
        mesh_x,
        mesh_y,
        depth,
        width,
        word_bits,
        block_size,
        cluster_size,
        dummy,
        must_keep: Vec::new(),
        must_bypass: Vec::new(),
        read_energy: energy,
        write_energy: energy,
        update_energy: energy,
        read_bandwidth,
        write_bandwidth,
        shared_bandwidth,
    })
}

/// Loads a Timeloop architecture (v0.3 / v0.4 tree, hyphenated or underscored keys, or the
/// classic `arch: {arithmetic, storage}` layout) and, when given, its ERT. Levels come back
/// innermost first. The file's own `architecture_constraints` (bypass / datatype targets) set
/// the levels' keep rules. Without an ERT the energies are the components'
/// `vector-access-energy` attributes, or 0.
pub fn load_arch(arch: &Path, ert: Option<&Path>) -> Result<Arch, InputError> {
    let src = Src { file: arch };
    let root = load_value(arch)?;
    let (comps, name) = if let Some(a) = get(&root, "architecture") {
        if get(a, "nodes").is_some() {
            return Err(src.err(
                "architecture.nodes",
                "the Timeloop v4 `nodes` layout is not supported; use the v0.3/v0.4 `subtree` \
                 layout (what timeloop-model v3 reads)",
            ));
        }
        let mut comps = Vec::new();
        walk_tree(a, "architecture", 1, &Attrs::default(), src, &mut comps)?;
        let name = get(a, "subtree")
            .and_then(|s| s.as_sequence())
            .and_then(|s| s.first())
            .and_then(|n| get(n, "name"))
            .and_then(value_text)
            .map(|n| strip_ranges(&n));
        (comps, name)
    } else if let Some(a) = get(&root, "arch") {
        (classic_components(a, src)?, None)
    } else {
        return Err(src.err(
            "(document)",
            "no `architecture` (Timeloop v0.3/v0.4 tree) or `arch` (classic) section",
        ));
    };
    let name = name.unwrap_or_else(|| {
        arch.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let computes: Vec<&RawComponent> = comps.iter().filter(|c| c.kind == Kind::Compute).collect();
    let compute = match computes.as_slice() {
        [c] => *c,
        [] => {
            return Err(src.err(
                "architecture",
                "no compute component (class intmac, mac, compute, ...)",
            ))
        }
        [_, second, ..] => {
            return Err(src.err(
                second.path.clone(),
                "a second compute component: one arithmetic level is supported",
            ))
        }
    };
    let storage: Vec<&RawComponent> = comps
        .iter()
        .filter(|c| c.kind == Kind::Storage)
        .rev()
        .collect();
    if storage.is_empty() {
        return Err(src.err("architecture", "no storage level"));
    }
    let mut levels = Vec::new();
    for c in &storage {
        if levels.iter().any(|l: &Level| l.name == c.name) {
            return Err(src.err(
                join(&c.path, "name"),
                format!("a second storage level named `{}`", c.name),
            ));
        }
        levels.push(build_level(c, src)?);
    }
    let (mi, mx, my) = mesh_of(compute, src)?;
    let mac_energy = compute
        .attrs
        .f64("vector_access_energy", src)?
        .unwrap_or(0.0);
    let mut a = Arch {
        name,
        levels,
        mac: Mac {
            name: compute.name.clone(),
            instances: mi,
            mesh_x: mx,
            mesh_y: my,
            energy: mac_energy,
            energy_table: Vec::new(),
        },
    };
    a.check_fanouts().map_err(|(i, m)| {
        src.err(
            join(&storage[i].path, "attributes.meshX"),
            format!("{}: {m}", storage[i].name),
        )
    })?;
    a.check_ranges().map_err(|(i, field, m)| match i {
        Some(i) => src.err(
            join(&storage[i].path, "attributes"),
            format!("{field}: {m}"),
        ),
        None => src.err(join(&compute.path, "name"), format!("{field}: {m}")),
    })?;
    for (i, l) in a.levels.iter().enumerate() {
        let below = if i == 0 {
            a.mac.instances
        } else {
            a.levels[i - 1].instances
        };
        if below < l.instances {
            return Err(src.err(
                join(&storage[i].path, "name"),
                format!(
                    "{} has {} instances, more than the {} of the level below it",
                    l.name, l.instances, below
                ),
            ));
        }
    }
    if let Some(ert) = ert {
        apply_ert(&mut a, ert)?;
    }
    if let Some(c) = get(&root, "architecture_constraints") {
        apply_constraint_section(&mut a, c, "architecture_constraints", src)?;
    }
    Ok(a)
}

/// ERT tables by component: action → largest energy, and the table's field path.
type ErtTables = HashMap<String, (HashMap<String, f64>, String)>;

/// Reads an ERT file into [`ErtTables`].
fn load_ert(path: &Path) -> Result<ErtTables, InputError> {
    let src = Src { file: path };
    let root = load_value(path)?;
    let (ert, base) = match get(&root, "ERT") {
        Some(e) => (e, "ERT"),
        None => (&root, ""),
    };
    let tpath = join(base, "tables");
    let tables = get(ert, "tables").ok_or_else(|| src.err(tpath.clone(), "missing"))?;
    let mut out: ErtTables = HashMap::new();
    for (i, t) in seq(tables, &tpath, src)?.iter().enumerate() {
        let path = format!("{tpath}[{i}]");
        let name = req_str(t, "name", &path, src)?;
        let key = ert_component(name);
        let mut actions: HashMap<String, f64> = HashMap::new();
        if let Some(acts) = get(t, "actions") {
            let apath = join(&path, "actions");
            for (j, act) in seq(acts, &apath, src)?.iter().enumerate() {
                let p = format!("{apath}[{j}]");
                let an = req_str(act, "name", &p, src)?;
                let e = get(act, "energy").ok_or_else(|| src.err(join(&p, "energy"), "missing"))?;
                let e = value_f64(e)
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| src.err(join(&p, "energy"), "must be a number >= 0"))?;
                // Several argument variants of one action: Timeloop takes the largest.
                let slot = actions.entry(an.to_string()).or_insert(e);
                *slot = slot.max(e);
            }
        }
        if out.contains_key(&key) {
            return Err(src.err(
                join(&path, "name"),
                format!("a second table for component `{key}`"),
            ));
        }
        out.insert(key, (actions, path));
    }
    Ok(out)
}

fn apply_ert(arch: &mut Arch, ert: &Path) -> Result<(), InputError> {
    let src = Src { file: ert };
    let tables = load_ert(ert)?;
    let known = || {
        let mut k: Vec<&str> = tables.keys().map(String::as_str).collect();
        k.sort_unstable();
        k.join(", ")
    };
    for l in arch.levels.iter_mut() {
        if l.dummy {
            l.read_energy = 0.0;
            l.write_energy = 0.0;
            l.update_energy = 0.0;
            continue;
        }
        let Some((acts, path)) = tables.get(&l.name) else {
            return Err(src.err(
                "ERT.tables",
                format!(
                    "no table for storage level `{}` (tables: {})",
                    l.name,
                    known()
                ),
            ));
        };
        let find = |names: &[&str]| names.iter().find_map(|n| acts.get(*n).copied());
        l.read_energy = find(&["read", "random_read"]).ok_or_else(|| {
            src.err(
                join(path, "actions"),
                format!("{}: no `read` action", l.name),
            )
        })?;
        l.write_energy = find(&["write", "random_fill", "fill"]).ok_or_else(|| {
            src.err(
                join(path, "actions"),
                format!("{}: no `write` action", l.name),
            )
        })?;
        l.update_energy = find(&["update", "random_update"]).unwrap_or(l.write_energy);
    }
    let Some((acts, path)) = tables.get(&arch.mac.name) else {
        return Err(src.err(
            "ERT.tables",
            format!(
                "no table for compute `{}` (tables: {})",
                arch.mac.name,
                known()
            ),
        ));
    };
    arch.mac.energy = match acts.get("compute") {
        Some(e) => *e,
        None => acts
            .iter()
            .filter(|(k, _)| k.starts_with("mac"))
            .map(|(_, e)| *e)
            .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))))
            .ok_or_else(|| {
                src.err(
                    join(path, "actions"),
                    format!("{}: no `compute` or `mac_*` action", arch.mac.name),
                )
            })?,
    };
    Ok(())
}

/// The architecture level a constraint or mapping `target` names (by name, with or without
/// its instance range, or by storage-level index, innermost 0).
fn target_level(arch: &Arch, v: &Value, path: &str, src: Src) -> Result<usize, InputError> {
    if let Some(i) = v.as_u64() {
        return if (i as usize) < arch.levels.len() {
            Ok(i as usize)
        } else {
            Err(src.err(path, format!("level index {i} out of range")))
        };
    }
    let name = v
        .as_str()
        .ok_or_else(|| src.err(path, "must be a level name"))?;
    let name = strip_ranges(name);
    arch.level_index(&name).ok_or_else(|| {
        src.err(
            path,
            format!(
                "unknown level `{name}` (levels: {})",
                arch.levels
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

/// Applies the `bypass` / `datatype` targets of one constraint section (`{targets: [...]}` or
/// a bare list).
fn apply_constraint_section(
    arch: &mut Arch,
    section: &Value,
    path: &str,
    src: Src,
) -> Result<(), InputError> {
    let (targets, tpath) = match get(section, "targets") {
        Some(t) => (t, join(path, "targets")),
        None if section.is_sequence() => (section, path.to_string()),
        None => return Err(src.err(join(path, "targets"), "missing")),
    };
    for (i, t) in seq(targets, &tpath, src)?.iter().enumerate() {
        let p = format!("{tpath}[{i}]");
        let ty = req_str(t, "type", &p, src)?;
        if ty != "bypass" && ty != "datatype" {
            continue;
        }
        let target = get(t, "target").ok_or_else(|| src.err(join(&p, "target"), "missing"))?;
        let l = target_level(arch, target, &join(&p, "target"), src)?;
        let keep = str_list(get(t, "keep"), &join(&p, "keep"), src)?;
        let bypass = str_list(get(t, "bypass"), &join(&p, "bypass"), src)?;
        if let Some(x) = keep.iter().find(|x| bypass.contains(x)) {
            return Err(src.err(join(&p, "keep"), format!("{x} is both kept and bypassed")));
        }
        let level = &mut arch.levels[l];
        if level.dummy && !keep.is_empty() {
            return Err(src.err(
                join(&p, "keep"),
                format!("{} is a dummy level and holds nothing", level.name),
            ));
        }
        for x in keep {
            level.must_bypass.retain(|b| *b != x);
            if !level.must_keep.contains(&x) {
                level.must_keep.push(x);
            }
        }
        for x in bypass {
            level.must_keep.retain(|k| *k != x);
            if !level.must_bypass.contains(&x) {
                level.must_bypass.push(x);
            }
        }
    }
    Ok(())
}

/// Applies the keep / bypass rules of a Timeloop constraints file (`architecture_constraints`,
/// `constraints` or `mapspace_constraints` sections, or top-level `targets`; entries of type
/// `bypass` or `datatype`) to the architecture's levels. Later entries override earlier ones.
pub fn apply_bypass_constraints(
    arch: &mut Arch,
    constraints_yaml: &Path,
) -> Result<(), InputError> {
    let src = Src {
        file: constraints_yaml,
    };
    let root = load_value(constraints_yaml)?;
    let mut found = false;
    for key in [
        "architecture_constraints",
        "constraints",
        "mapspace_constraints",
    ] {
        if let Some(c) = get(&root, key) {
            apply_constraint_section(arch, c, key, src)?;
            found = true;
        }
    }
    if get(&root, "targets").is_some() {
        apply_constraint_section(arch, &root, "", src)?;
        found = true;
    }
    if !found {
        return Err(src.err(
            "(document)",
            "no `architecture_constraints`, `constraints`, `mapspace_constraints` or `targets`",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Problem
// ---------------------------------------------------------------------------------------------

/// Timeloop's built-in `cnn-layer` shape (what `shape: cnn-layer` refers to).
const CNN_LAYER_SHAPE: &str = "
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
fn parse_term(
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
fn parse_rank(
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

/// Loads a Timeloop problem (v0.3 `data-spaces` / v0.4 `data_spaces`, any shape) and the seed
/// fork's per-data-space bit-widths (`instance.bitwidths`, or `instance.commonDatawidth` for
/// all of them), returned separately.
pub fn load_problem(path: &Path) -> Result<(Problem, Option<HashMap<String, u32>>), InputError> {
    let src = Src { file: path };
    let root = load_value(path)?;
    let (prob, ppath) = match get(&root, "problem") {
        Some(p) => (p, "problem"),
        None => (&root, ""),
    };
    let spath = join(ppath, "shape");
    let shape_v = get(prob, "shape").ok_or_else(|| src.err(spath.clone(), "missing"))?;
    let builtin;
    let shape = match shape_v {
        Value::String(s) => {
            let n = s.to_ascii_lowercase().replace('_', "-");
            if n == "cnn-layer" || n == "cnn-layer.yaml" {
                builtin = parse_value(path, CNN_LAYER_SHAPE)?;
                &builtin
            } else {
                return Err(src.err(
                    spath,
                    format!("unknown built-in shape `{s}` (only cnn-layer); give the shape inline"),
                ));
            }
        }
        v => v,
    };
    let name = get(shape, "name").and_then(value_text).unwrap_or_default();
    let dpath = join(&spath, "dimensions");
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
    let (instance, ipath) = match get(prob, "instance") {
        Some(i) => (i, join(ppath, "instance")),
        None => (prob, ppath.to_string()),
    };
    // Coefficients: defaults overridden by the instance.
    let mut coefs: HashMap<String, i64> = HashMap::new();
    if let Some(cs) = get(shape, "coefficients") {
        let cpath = join(&spath, "coefficients");
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
                    .ok_or_else(|| src.err(join(&ipath, n), "must be an integer"))?,
            };
            coefs.insert(n.to_string(), value);
        }
    }
    let mut bounds = Vec::new();
    for d in &dims {
        let v = get(instance, d)
            .ok_or_else(|| src.err(join(&ipath, d), "missing (every dimension needs a bound)"))?;
        match value_u64(v) {
            Some(b) if b > 0 => bounds.push(b),
            _ => return Err(src.err(join(&ipath, d), "must be a positive integer")),
        }
    }
    let (ds, dspath) = match get_any(shape, &["data-spaces", "data_spaces", "dataspaces"]) {
        Some((k, v)) => (v, join(&spath, k)),
        None => return Err(src.err(join(&spath, "data_spaces"), "missing")),
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
        let ppath = join(&p, "projection");
        let proj = get(t, "projection").ok_or_else(|| src.err(ppath.clone(), "missing"))?;
        let ranks = seq(proj, &ppath, src)?
            .iter()
            .enumerate()
            .map(|(r, v)| parse_rank(v, &dims, &coefs, &format!("{ppath}[{r}]"), src))
            .collect::<Result<Vec<_>, _>>()?;
        let read_write = match get_any(t, &["read-write", "read_write"]) {
            None => false,
            Some((k, v)) => v
                .as_bool()
                .ok_or_else(|| src.err(join(&p, k), "must be true or false"))?,
        };
        tensors.push(Tensor {
            name: tname.to_string(),
            ranks,
            read_write,
        });
    }
    if tensors.is_empty() {
        return Err(src.err(dspath, "at least one data space is required"));
    }
    // Bit-widths (the seed fork's extension).
    let bits_of = |v: &Value, field: String| -> Result<u32, InputError> {
        value_u64(v)
            .filter(|b| *b > 0 && *b <= 64)
            .map(|b| b as u32)
            .ok_or_else(|| src.err(field, "must be an integer in 1..=64"))
    };
    let mut bits: Option<HashMap<String, u32>> = None;
    if let Some((k, v)) = get_any(instance, &["commonDatawidth", "common_datawidth"]) {
        let b = bits_of(v, join(&ipath, k))?;
        bits = Some(tensors.iter().map(|t| (t.name.clone(), b)).collect());
    }
    if let Some(bw) = get(instance, "bitwidths") {
        let bpath = join(&ipath, "bitwidths");
        let m = bw
            .as_mapping()
            .ok_or_else(|| src.err(bpath.clone(), "must map data-space names to bits"))?;
        let out = bits.get_or_insert_with(HashMap::new);
        for (k, v) in m {
            let k = value_text(k).unwrap_or_default();
            if !tensors.iter().any(|t| t.name == k) {
                return Err(src.err(
                    join(&bpath, &k),
                    format!(
                        "unknown data space `{k}` (data spaces: {})",
                        tensors
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            out.insert(k.clone(), bits_of(v, join(&bpath, &k))?);
        }
    }
    let problem = Problem {
        name,
        dims,
        bounds,
        tensors,
    };
    problem.check_ranges().map_err(|m| src.err(ipath, m))?;
    Ok((problem, bits))
}

// ---------------------------------------------------------------------------------------------
// Mapping
// ---------------------------------------------------------------------------------------------

/// Parses Timeloop factors (`C1 M8`, `P=4 Q=4`, `N=1,C=1`, a list of such tokens, or a mapping
/// `{C: 1}`) into (dim, factor); factor 0 means the whole dimension (Timeloop's rule).
fn parse_factors(
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
struct Directive {
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

// ---------------------------------------------------------------------------------------------
// Export: qmap mappings and problems as Timeloop files
// ---------------------------------------------------------------------------------------------

/// Words a YAML reader may take for a boolean or null when plain (YAML 1.2, and YAML 1.1's
/// longer spellings; single letters such as `N` stay plain, as in Timeloop's own files).
const YAML_RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off"];

/// `s` as a YAML scalar: plain when that reads back as the same string, else single-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-= ".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !s.ends_with(' ')
        && !YAML_RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// A flow list of YAML scalars: `[Weights, Inputs]`.
fn yaml_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(yaml_str).collect();
    format!("[{}]", items.join(", "))
}

/// A permutation as Timeloop reads it: one character per dimension (`MCRSNPQ`) when every name
/// is a single character, else the names separated by spaces.
fn permutation_text(dims: &[usize], problem: &Problem) -> String {
    let names: Vec<&str> = dims.iter().map(|&d| problem.dims[d].as_str()).collect();
    if names.iter().all(|n| n.chars().count() == 1) {
        names.concat()
    } else {
        names.join(" ")
    }
}

/// Every dimension with its factor, in the problem's order: `C=3 M=2 R=1`.
fn factors_text(problem: &Problem, factor: impl Fn(usize) -> u64) -> String {
    (0..problem.dims.len())
        .map(|d| format!("{}={}", problem.dims[d], factor(d)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Dimensions in order of first appearance, without repeats.
fn unique_dims(dims: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for d in dims {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// `order` without repeats, followed by the dimensions it leaves out, in the problem's order.
fn full_permutation(order: impl IntoIterator<Item = usize>, nd: usize) -> Vec<usize> {
    unique_dims(order.into_iter().chain(0..nd))
}

/// The dimensions of the non-unit loops of `loops`, innermost first, without repeats.
fn loop_dims(loops: &[Loop]) -> Vec<usize> {
    unique_dims(loops.iter().filter(|l| l.factor > 1).map(|l| l.dim))
}

/// Why `mapping` has no exact Timeloop spelling (empty when [`export_mapping`] is exact):
/// Timeloop gives each dimension one loop per level and direction, reads permutations one
/// character per dimension and factors as letters followed by digits.
pub fn timeloop_export_issues(mapping: &Mapping, arch: &Arch, problem: &Problem) -> Vec<String> {
    let mut issues = Vec::new();
    for d in &problem.dims {
        if d.chars().count() != 1 || !d.chars().all(|c| c.is_ascii_alphabetic()) {
            issues.push(format!(
                "dimension `{d}`: Timeloop reads dimensions as single letters"
            ));
        }
    }
    for (l, (lm, level)) in mapping.levels.iter().zip(&arch.levels).enumerate() {
        let name = &level.name;
        let repeated = |loops: &[Loop]| {
            let dims: Vec<usize> = loops
                .iter()
                .filter(|x| x.factor > 1)
                .map(|x| x.dim)
                .collect();
            dims.len() != loop_dims(loops).len()
        };
        if repeated(&lm.temporal) {
            issues.push(format!("{name}: a dimension has two temporal loops"));
        }
        if repeated(&lm.spatial_x) || repeated(&lm.spatial_y) {
            issues.push(format!(
                "{name}: a dimension has two spatial loops in one direction"
            ));
        }
        let x = loop_dims(&lm.spatial_x);
        if let Some(d) = loop_dims(&lm.spatial_y).iter().find(|d| x.contains(d)) {
            issues.push(format!(
                "{name}: dimension {} is split over X and Y (Timeloop has one spatial loop per \
                 dimension and level; the export puts it all on X)",
                problem.dims[*d]
            ));
        }
        let (fx, fy) = arch.fanout(l);
        if fx * fy == 1 && lm.spatial_x_product() * lm.spatial_y_product() > 1 {
            issues.push(format!("{name}: spatial loops but no spatial fanout"));
        }
    }
    issues
}

/// Writes a mapping as a Timeloop mapping file (a v0.4 `mapping:` list, which timeloop-model v3
/// reads too): per level, innermost first, a `bypass` entry (`keep` / `bypass` lists), a
/// `temporal` entry and, where the level has a spatial fanout, a `spatial` entry with its X/Y
/// `split`. Factors name every dimension; permutations list every dimension, innermost first.
pub fn export_mapping(mapping: &Mapping, arch: &Arch, problem: &Problem) -> String {
    let nd = problem.dims.len();
    let mut out = String::from("mapping:\n");
    let tensors = |lm: &LevelMapping, keep: bool| {
        yaml_list(
            problem
                .tensors
                .iter()
                .zip(&lm.keep)
                .filter(|(_, k)| **k == keep)
                .map(|(t, _)| t.name.as_str()),
        )
    };
    for (l, (lm, level)) in mapping.levels.iter().zip(&arch.levels).enumerate() {
        let head = |ty: &str| format!("  - target: {}\n    type: {ty}\n", yaml_str(&level.name));
        out += &head("bypass");
        out += &format!("    keep: {}\n", tensors(lm, true));
        out += &format!("    bypass: {}\n", tensors(lm, false));
        // Temporal: the mapping's own order (factor-1 loops included), the rest appended.
        let perm = full_permutation(lm.temporal.iter().map(|x| x.dim), nd);
        out += &head("temporal");
        out += &format!(
            "    factors: {}\n",
            yaml_str(&factors_text(problem, |d| lm.temporal_factor(d)))
        );
        out += &format!(
            "    permutation: {}\n",
            yaml_str(&permutation_text(&perm, problem))
        );
        // Spatial: X loops first (innermost), then Y; `split` = number of X positions.
        let (fx, fy) = arch.fanout(l);
        if fx * fy > 1 {
            let x = loop_dims(&lm.spatial_x);
            let y: Vec<usize> = loop_dims(&lm.spatial_y)
                .into_iter()
                .filter(|d| !x.contains(d))
                .collect();
            let perm = full_permutation(x.iter().chain(&y).copied(), nd);
            out += &head("spatial");
            out += &format!(
                "    factors: {}\n",
                yaml_str(&factors_text(problem, |d| lm.spatial_factor(d)))
            );
            out += &format!(
                "    permutation: {}\n",
                yaml_str(&permutation_text(&perm, problem))
            );
            out += &format!("    split: {}\n", x.len());
        }
    }
    out
}

/// A component name for a Timeloop tree: the name with its instance range (`psum_spad[1..168]`).
fn ranged(name: &str, instances: u64) -> String {
    format!("{name}[1..{instances}]")
}

/// An energy as Accelergy writes ERT values: the shortest decimal that reads back exactly.
fn energy_text(e: f64) -> String {
    let s = format!("{e}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// The name a Timeloop tree gives the architecture's single subtree.
fn system_name(arch: &Arch) -> String {
    let name: String = arch
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        format!("system_{name}")
    } else {
        name
    }
}

/// Why `arch` has no exact Timeloop spelling (empty when [`export_arch`] is exact).
pub fn arch_export_issues(arch: &Arch) -> Vec<String> {
    let mut issues = Vec::new();
    if !arch.mac.energy_table.is_empty() {
        issues.push(format!(
            "{}: the per-bit-width MAC energy table has no Timeloop spelling (the ERT gives the \
             default {} pJ per MAC)",
            arch.mac.name, arch.mac.energy
        ));
    }
    for l in &arch.levels {
        if l.width != l.word_bits * l.block_size * l.cluster_size {
            issues.push(format!(
                "{}: width {} is not word bits × block size × cluster size ({}); the export \
                 writes the product (qmap's counts and energies do not use the width)",
                l.name,
                l.width,
                l.word_bits * l.block_size * l.cluster_size
            ));
        }
    }
    issues
}

/// Writes an architecture as a Timeloop architecture file: the v0.4 tree (one subtree whose
/// `local` list holds every level, outermost first, then the MACs, instance counts as name
/// ranges and meshes as `meshX`/`meshY`), with the hyphenated attribute spellings Timeloop v3.0.3
/// reads (`word-bits`, `block-size`, `cluster-size`), and the levels' keep rules as
/// `architecture_constraints` (bypass targets). The outermost unbounded level is class `DRAM`,
/// dummy levels `dummy_storage`, the others `storage`, the MACs `intmac`. Energies go to the
/// ERT ([`export_ert`]); [`arch_export_issues`] says what the format cannot carry.
pub fn export_arch(arch: &Arch) -> String {
    let mut out = String::from("architecture:\n  version: '0.4'\n  subtree:\n");
    out += &format!(
        "    - name: {}\n      local:\n",
        yaml_str(&system_name(arch))
    );
    let outer = arch.levels.len() - 1;
    for (i, l) in arch.levels.iter().enumerate().rev() {
        let class = if l.dummy {
            "dummy_storage"
        } else if i == outer && l.depth.is_none() {
            "DRAM"
        } else {
            "storage"
        };
        out += &format!(
            "        - name: {}\n          class: {class}\n          attributes:\n",
            yaml_str(&ranged(&l.name, l.instances))
        );
        let mut attr = |k: &str, v: String| out += &format!("            {k}: {v}\n");
        if let Some(d) = l.depth {
            attr("depth", d.to_string());
        }
        attr(
            "width",
            (l.word_bits * l.block_size * l.cluster_size).to_string(),
        );
        attr("word-bits", l.word_bits.to_string());
        attr("block-size", l.block_size.to_string());
        attr("cluster-size", l.cluster_size.to_string());
        attr("meshX", l.mesh_x.to_string());
        attr("meshY", l.mesh_y.to_string());
        for (k, bw) in [
            ("read_bandwidth", l.read_bandwidth),
            ("write_bandwidth", l.write_bandwidth),
            ("shared_bandwidth", l.shared_bandwidth),
        ] {
            if let Some(bw) = bw {
                attr(k, format!("{bw}"));
            }
        }
    }
    let m = &arch.mac;
    out += &format!(
        "        - name: {}\n          class: intmac\n          attributes:\n            \
         meshX: {}\n            meshY: {}\n",
        yaml_str(&ranged(&m.name, m.instances)),
        m.mesh_x,
        m.mesh_y
    );
    let rules: Vec<&Level> = arch
        .levels
        .iter()
        .filter(|l| !l.dummy && (!l.must_keep.is_empty() || !l.must_bypass.is_empty()))
        .collect();
    if !rules.is_empty() {
        out += "architecture_constraints:\n  targets:\n";
        for l in rules {
            out += &format!(
                "    - target: {}\n      type: bypass\n      keep: {}\n      bypass: {}\n",
                yaml_str(&l.name),
                yaml_list(l.must_keep.iter().map(String::as_str)),
                yaml_list(l.must_bypass.iter().map(String::as_str))
            );
        }
    }
    out
}

/// Writes an architecture's energies as a Timeloop energy reference table (Accelergy's ERT
/// v0.4): per level the energies of one vector `read`, `write` (fill) and `update`, and `leak`
/// 0 (Timeloop v3.0.3 charges no leakage); per MAC `compute`. Dummy levels have no table
/// (they hold nothing, so Timeloop never charges them).
pub fn export_ert(arch: &Arch) -> String {
    let sys = system_name(arch);
    let mut out = String::from("ERT:\n  version: '0.4'\n  tables:\n");
    let mut table = |name: &str, instances: u64, actions: &[(&str, f64)]| {
        out += &format!(
            "    - name: {}\n      actions:\n",
            yaml_str(&format!("{sys}.{}", ranged(name, instances)))
        );
        for (a, e) in actions {
            out += &format!(
                "        - name: {a}\n          arguments: null\n          energy: {}\n",
                energy_text(*e)
            );
        }
    };
    for l in arch.levels.iter().rev().filter(|l| !l.dummy) {
        table(
            &l.name,
            l.instances,
            &[
                ("read", l.read_energy),
                ("write", l.write_energy),
                ("update", l.update_energy),
                ("leak", 0.0),
            ],
        );
    }
    table(
        &arch.mac.name,
        arch.mac.instances,
        &[("compute", arch.mac.energy), ("leak", 0.0)],
    );
    out
}

/// Writes a problem as a Timeloop problem file (inline shape, the hyphenated keys timeloop-model
/// v3 reads), with the seed fork's `instance.bitwidths` when `bits` are given.
pub fn export_problem(problem: &Problem, bits: Option<&Bits>) -> String {
    let dims = &problem.dims;
    // Coefficients other than 1 are named after their value (`coef2`), clear of the dims.
    let coef_name = |c: u64| {
        let mut name = format!("coef{c}");
        while dims.contains(&name) {
            name.insert(0, '_');
        }
        name
    };
    let mut coefs: Vec<u64> = problem
        .tensors
        .iter()
        .flat_map(|t| t.ranks.iter().flatten())
        .map(|term| term.coef)
        .filter(|&c| c != 1)
        .collect();
    coefs.sort_unstable();
    coefs.dedup();
    let mut out = String::from("problem:\n  version: '0.4'\n  shape:\n");
    if !problem.name.is_empty() {
        out += &format!("    name: {}\n", yaml_str(&problem.name));
    }
    out += &format!(
        "    dimensions: {}\n",
        yaml_list(dims.iter().map(String::as_str))
    );
    if !coefs.is_empty() {
        out += "    coefficients:\n";
        for c in &coefs {
            out += &format!("      - {{name: {}, default: {c}}}\n", coef_name(*c));
        }
    }
    out += "    data-spaces:\n";
    for t in &problem.tensors {
        let ranks: Vec<String> = t
            .ranks
            .iter()
            .map(|rank| {
                let terms: Vec<String> = rank
                    .iter()
                    .map(|term| {
                        let d = yaml_str(&dims[term.dim]);
                        if term.coef == 1 {
                            format!("[{d}]")
                        } else {
                            format!("[{d}, {}]", coef_name(term.coef))
                        }
                    })
                    .collect();
                format!("[{}]", terms.join(", "))
            })
            .collect();
        out += &format!("      - name: {}\n", yaml_str(&t.name));
        out += &format!("        projection: [{}]\n", ranks.join(", "));
        if t.read_write {
            out += "        read-write: true\n";
        }
    }
    out += "  instance:\n";
    for (d, b) in dims.iter().zip(&problem.bounds) {
        out += &format!("    {}: {b}\n", yaml_str(d));
    }
    if let Some(Bits(b)) = bits {
        let pairs: Vec<String> = problem
            .tensors
            .iter()
            .zip(b)
            .map(|(t, b)| format!("{}: {b}", yaml_str(&t.name)))
            .collect();
        out += &format!("    bitwidths: {{{}}}\n", pairs.join(", "));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Printed loop nests: Timeloop's map.txt and the loop nests of stats.txt
// ---------------------------------------------------------------------------------------------

/// Where a printed loop runs: in time, or across the fanout along X or Y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopKind {
    Temporal,
    SpatialX,
    SpatialY,
}

/// One printed loop and the line it was printed on.
#[derive(Debug, Clone, Copy)]
struct PrintedLoop {
    dim: usize,
    factor: u64,
    kind: LoopKind,
    line: usize,
}

/// One printed storage level: its loops (outermost first, as printed) and the tensors it keeps.
#[derive(Debug, Clone)]
struct PrintedLevel {
    level: usize,
    loops: Vec<PrintedLoop>,
    keep: Vec<bool>,
}

fn line_err(file: &Path, line: usize, message: impl Into<String>) -> InputError {
    InputError::new(file, format!("line {line}"), message)
}

fn level_names(arch: &Arch) -> String {
    arch.levels
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn tensor_names(problem: &Problem) -> String {
    problem
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses one printed loop, `for C in [0:3)` with an optional `(Spatial-X)` / `(Spatial-Y)`.
fn parse_printed_loop(text: &str, line: usize, problem: &Problem) -> Result<PrintedLoop, String> {
    let shape = "expected a loop `for DIM in [0:N)`, optionally followed by `(Spatial-X)` or \
                 `(Spatial-Y)`";
    let rest = text
        .strip_prefix("for ")
        .ok_or_else(|| format!("`{text}`: {shape}"))?;
    let (name, rest) = rest
        .split_once(" in ")
        .ok_or_else(|| format!("`{text}`: {shape}"))?;
    let name = name.trim();
    let dim = problem.dim_index(name).ok_or_else(|| {
        format!(
            "`{text}`: unknown dimension `{name}` (dims: {})",
            problem.dims.join(" ")
        )
    })?;
    let (range, tail) = rest
        .trim_start()
        .strip_prefix('[')
        .and_then(|r| r.split_once(')'))
        .ok_or_else(|| format!("`{text}`: {shape}"))?;
    let (start, end) = range
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: {shape}"))?;
    if start.trim() != "0" {
        return Err(format!("`{text}`: loops must start at 0"));
    }
    let (end, residual) = match end.split_once(',') {
        Some((e, r)) => (e.trim(), Some(r.trim())),
        None => (end.trim(), None),
    };
    let factor: u64 = match end.parse() {
        Ok(f) if f > 0 => f,
        _ => return Err(format!("`{text}`: `{end}` is not a positive loop bound")),
    };
    if residual.is_some_and(|r| r != end) {
        return Err(format!(
            "`{text}`: residual loop bounds (imperfect factorization) are not supported"
        ));
    }
    let kind = match tail.trim() {
        "" => LoopKind::Temporal,
        "(Spatial-X)" => LoopKind::SpatialX,
        "(Spatial-Y)" => LoopKind::SpatialY,
        other => {
            return Err(format!(
                "`{text}`: `{other}`: expected nothing, `(Spatial-X)` or `(Spatial-Y)` after the \
                 range"
            ))
        }
    };
    Ok(PrintedLoop {
        dim,
        factor,
        kind,
        line,
    })
}

/// Reads a map.txt loop nest: level headers `NAME [ Tensor:tile (words) ... ]` (outermost
/// first; the tensors listed are the ones kept), `---` underlines, loops `| for C in [0:3)`
/// and `<< Compute >>`. Loops belong to the header printed last: a level without loops prints
/// its header alone, straight before the next one.
fn parse_map_txt(
    text: &str,
    file: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Vec<PrintedLevel>, InputError> {
    let mut levels: Vec<PrintedLevel> = Vec::new();
    let mut compute_line: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.chars().all(|c| c == '-') {
            continue;
        }
        if let Some(c) = compute_line {
            return Err(line_err(
                file,
                n,
                format!("`{t}`: text after `<< Compute >>` (line {c}), the innermost point"),
            ));
        }
        let body = t.trim_start_matches('|').trim();
        if body == "<< Compute >>" {
            compute_line = Some(n);
        } else if body.starts_with("for ") {
            let lp = parse_printed_loop(body, n, problem).map_err(|m| line_err(file, n, m))?;
            let Some(level) = levels.last_mut() else {
                return Err(line_err(file, n, "a loop before the first level header"));
            };
            level.loops.push(lp);
        } else if let Some((name, inner)) = t
            .strip_suffix(']')
            .and_then(|h| h.split_once('['))
            .filter(|_| !t.starts_with('|'))
        {
            let name = name.trim();
            let l = arch.level_index(name).ok_or_else(|| {
                line_err(
                    file,
                    n,
                    format!("unknown level `{name}` (levels: {})", level_names(arch)),
                )
            })?;
            if let Some(prev) = levels.last().filter(|p| p.level <= l) {
                return Err(line_err(
                    file,
                    n,
                    format!(
                        "level `{name}` printed after `{}`: map.txt lists levels outermost \
                         first, each once",
                        arch.levels[prev.level].name
                    ),
                ));
            }
            let mut keep = vec![false; problem.tensors.len()];
            for tok in inner.split_whitespace().filter(|t| !t.starts_with('(')) {
                let (tname, size) = tok.split_once(':').ok_or_else(|| {
                    line_err(
                        file,
                        n,
                        format!("`{tok}`: expected a kept tensor as `Name:tile (words)`"),
                    )
                })?;
                let ti = problem.tensor_index(tname).ok_or_else(|| {
                    line_err(
                        file,
                        n,
                        format!(
                            "unknown data space `{tname}` (data spaces: {})",
                            tensor_names(problem)
                        ),
                    )
                })?;
                if size.parse::<u64>().is_err() {
                    return Err(line_err(
                        file,
                        n,
                        format!("`{tok}`: `{size}` is not a tile size"),
                    ));
                }
                keep[ti] = true;
            }
            levels.push(PrintedLevel {
                level: l,
                loops: Vec::new(),
                keep,
            });
        } else {
            return Err(line_err(
                file,
                n,
                format!(
                    "`{t}`: expected a level header `NAME [ Tensor:tile (words) ... ]`, a loop \
                     `| for DIM in [0:N)` or `<< Compute >>`"
                ),
            ));
        }
    }
    Ok(levels)
}

/// Reads the loop nests of a stats.txt: per level (`Level k`, `=== NAME ===`, innermost first,
/// level 0 the arithmetic) the loops under `Loop nest:` (outermost first) and, under `STATS`,
/// one block (`Weights:`) per tensor the level keeps. Reading stops at `Networks`.
fn parse_stats_txt(
    text: &str,
    file: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Vec<PrintedLevel>, InputError> {
    #[derive(PartialEq)]
    enum Part {
        Other,
        Loops,
        Stats,
    }
    let mut levels: Vec<PrintedLevel> = Vec::new();
    let mut level_number: Option<u64> = None;
    // Whether the current section is a storage level (the last of `levels`).
    let mut in_level = false;
    let mut part = Part::Other;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let t = raw.trim();
        if t == "Networks" || t.starts_with("Operational Intensity") || t == "Summary Stats" {
            break;
        }
        if let Some(k) = t.strip_prefix("Level ").and_then(|k| k.parse().ok()) {
            level_number = Some(k);
            continue;
        }
        if let Some(name) = t.strip_prefix("=== ").and_then(|s| s.strip_suffix(" ===")) {
            part = Part::Other;
            let name = name.trim();
            in_level =
                !(level_number == Some(0) || (level_number.is_none() && name == arch.mac.name));
            level_number = None;
            if !in_level {
                continue;
            }
            let l = arch.level_index(name).ok_or_else(|| {
                line_err(
                    file,
                    n,
                    format!("unknown level `{name}` (levels: {})", level_names(arch)),
                )
            })?;
            if let Some(prev) = levels.last().filter(|p| p.level >= l) {
                return Err(line_err(
                    file,
                    n,
                    format!(
                        "level `{name}` printed after `{}`: stats.txt lists levels innermost \
                         first, each once",
                        arch.levels[prev.level].name
                    ),
                ));
            }
            levels.push(PrintedLevel {
                level: l,
                loops: Vec::new(),
                keep: vec![false; problem.tensors.len()],
            });
            continue;
        }
        let Some(level) = levels.last_mut().filter(|_| in_level) else {
            continue;
        };
        match t {
            "Loop nest:" => part = Part::Loops,
            "STATS" => part = Part::Stats,
            "SPECS" | "MAPPING" => part = Part::Other,
            _ if part == Part::Loops => {
                if t.is_empty() {
                    part = Part::Other;
                } else {
                    let lp = parse_printed_loop(t.trim_start_matches('|').trim(), n, problem)
                        .map_err(|m| line_err(file, n, m))?;
                    level.loops.push(lp);
                }
            }
            _ if part == Part::Stats && t.ends_with(':') && !t.contains(char::is_whitespace) => {
                let tname = t.trim_end_matches(':');
                let ti = problem.tensor_index(tname).ok_or_else(|| {
                    line_err(
                        file,
                        n,
                        format!(
                            "unknown data space `{tname}` (data spaces: {})",
                            tensor_names(problem)
                        ),
                    )
                })?;
                level.keep[ti] = true;
            }
            _ => {}
        }
    }
    Ok(levels)
}

/// Builds the mapping from printed levels: loops reversed to innermost first, spatial loops
/// split into X and Y. Levels not printed must be dummy levels (they hold nothing).
fn mapping_from_printed(
    printed: Vec<PrintedLevel>,
    file: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    if printed.is_empty() {
        return Err(InputError::new(
            file,
            "(document)",
            "no loop nest: expected Timeloop's map.txt (`NAME [ ... ]` headers and `| for` \
             loops) or a stats.txt (`=== NAME ===` sections with `Loop nest:`)",
        ));
    }
    let nt = problem.tensors.len();
    let mut levels: Vec<LevelMapping> = (0..arch.levels.len())
        .map(|_| LevelMapping {
            keep: vec![false; nt],
            ..Default::default()
        })
        .collect();
    let mut seen = vec![false; arch.levels.len()];
    for p in printed {
        seen[p.level] = true;
        let (fx, fy) = arch.fanout(p.level);
        let lm = &mut levels[p.level];
        lm.keep = p.keep;
        for lp in p.loops.iter().rev() {
            let lo = Loop {
                dim: lp.dim,
                factor: lp.factor,
            };
            let spatial = lp.kind != LoopKind::Temporal;
            if p.loops.iter().any(|o| {
                o.line < lp.line && o.dim == lp.dim && (o.kind != LoopKind::Temporal) == spatial
            }) {
                return Err(line_err(
                    file,
                    lp.line,
                    format!(
                        "a second {} loop over {} at {} (Timeloop has one per dimension and \
                         level)",
                        if spatial { "spatial" } else { "temporal" },
                        problem.dims[lp.dim],
                        arch.levels[p.level].name
                    ),
                ));
            }
            if spatial && fx * fy == 1 && lp.factor > 1 {
                return Err(line_err(
                    file,
                    lp.line,
                    format!(
                        "spatial loop at {}, which has no spatial fanout to the level below it",
                        arch.levels[p.level].name
                    ),
                ));
            }
            match lp.kind {
                LoopKind::Temporal => lm.temporal.push(lo),
                LoopKind::SpatialX if lp.factor > 1 => lm.spatial_x.push(lo),
                LoopKind::SpatialY if lp.factor > 1 => lm.spatial_y.push(lo),
                _ => {}
            }
        }
    }
    // Timeloop prints no factor-1 loops; like `load_mapping`, list every dim's temporal loop,
    // the unprinted ones outermost in the problem's order.
    for lm in &mut levels {
        for dim in 0..problem.dims.len() {
            if !lm.temporal.iter().any(|l| l.dim == dim) {
                lm.temporal.push(Loop { dim, factor: 1 });
            }
        }
    }
    let unprinted: Vec<&str> = arch
        .levels
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(l, _)| l.name.as_str())
        .collect();
    if let Some((level, _)) = arch
        .levels
        .iter()
        .zip(&seen)
        .find(|(l, s)| !**s && !l.dummy)
    {
        return Err(InputError::new(
            file,
            "(document)",
            format!(
                "level `{}` is not in the loop nest (only dummy levels may be left out)",
                level.name
            ),
        ));
    }
    for d in 0..problem.dims.len() {
        let prod = levels
            .iter()
            .flat_map(|lm| lm.temporal.iter().chain(&lm.spatial_x).chain(&lm.spatial_y))
            .filter(|l| l.dim == d)
            .fold(1u64, |acc, l| acc.saturating_mul(l.factor));
        if prod != problem.bounds[d] {
            let mut msg = format!(
                "the loops over {} multiply to {prod}, not to its bound {}",
                problem.dims[d], problem.bounds[d]
            );
            if !unprinted.is_empty() {
                msg += &format!(
                    "; the loop nest leaves out {} (Timeloop's stats.txt omits dummy levels, \
                     and their spatial loops with them): import the map.txt printed next to it",
                    unprinted.join(", ")
                );
            }
            return Err(InputError::new(file, "(document)", msg));
        }
    }
    Ok(Mapping { levels })
}

/// Whether `text` is a printed loop nest (map.txt / stats.txt) rather than YAML.
fn is_loop_nest_text(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim().trim_start_matches('|').trim();
        t == "<< Compute >>"
            || t == "Loop nest:"
            || (t.starts_with("for ") && t.contains(" in ["))
            || (t.starts_with("=== ") && t.ends_with(" ==="))
    })
}

/// Loads the mapping Timeloop prints, from a map.txt (`timeloop-mapper.map.txt`) or from the
/// loop nests of a stats.txt, for `arch` and `problem`.
pub fn load_loop_nest_text(
    path: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
    let is_stats = text.lines().any(|l| {
        let t = l.trim();
        t == "Loop nest:" || (t.starts_with("=== ") && t.ends_with(" ==="))
    });
    let printed = if is_stats {
        parse_stats_txt(&text, path, arch, problem)?
    } else {
        parse_map_txt(&text, path, arch, problem)?
    };
    mapping_from_printed(printed, path, arch, problem)
}

/// Loads a mapping from a Timeloop map.yaml, a printed loop nest (map.txt / stats.txt), or a
/// Timeloop output directory (its `*.map.yaml`, else `*.map.txt`, else `*.stats.txt`).
pub fn load_mapping_any(
    path: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| InputError::new(path, "(directory)", format!("cannot read: {e}")))?;
        let mut files: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        files.sort();
        for suffix in [".map.yaml", ".map.txt", ".stats.txt"] {
            let found: Vec<&String> = files.iter().filter(|f| f.ends_with(suffix)).collect();
            let chosen = match found.as_slice() {
                [] => continue,
                [one] => *one,
                many => match ["timeloop-mapper", "timeloop-model"]
                    .iter()
                    .find_map(|p| many.iter().find(|f| **f == &format!("{p}{suffix}")))
                {
                    Some(f) => *f,
                    None => {
                        return Err(InputError::new(
                            path,
                            "(directory)",
                            format!(
                                "several *{suffix} files ({}): name the one to load",
                                many.iter()
                                    .map(|f| f.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ))
                    }
                },
            };
            return load_mapping_any(&path.join(chosen), arch, problem);
        }
        return Err(InputError::new(
            path,
            "(directory)",
            "no *.map.yaml, *.map.txt or *.stats.txt file",
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("yaml" | "yml") => load_mapping(path, arch, problem),
        Some("txt") => load_loop_nest_text(path, arch, problem),
        _ => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
            if is_loop_nest_text(&text) {
                load_loop_nest_text(path, arch, problem)
            } else {
                load_mapping(path, arch, problem)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert_eq!(
            parse_instance_name("PE[0..167]").unwrap(),
            ("PE".into(), 168)
        );
        assert_eq!(
            parse_instance_name("shared_glb[1..1]").unwrap(),
            ("shared_glb".into(), 1)
        );
        assert_eq!(parse_instance_name("Buffer").unwrap(), ("Buffer".into(), 1));
        assert!(parse_instance_name("PE[3..1]").is_err());
        assert!(parse_instance_name("PE[0..x]").is_err());
        assert_eq!(
            ert_component("system_top_level.shared_glb[1..1]"),
            "shared_glb"
        );
        assert_eq!(ert_component("system.PE[0..167].mac"), "mac");
        assert_eq!(ert_component("PE.Buffer"), "Buffer");
    }
}
