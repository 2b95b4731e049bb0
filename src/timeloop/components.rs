//! The components of a Timeloop architecture, collected from the v0.3/v0.4 tree or the classic
//! `arch: {arithmetic, storage}` layout before they become levels and the MAC.
//!
//! Architecture trees: each `subtree` list holds one node; a name `X[a..b]` multiplies the
//! instances of everything below it by `b - a + 1`; `local` lists run outermost → innermost.
//! Components whose class contains `DRAM`, `SRAM`, `regfile`, `smartbuffer` or `storage` are
//! storage levels (`dummy_storage` → a dummy level that holds nothing), classes containing `mac`
//! or `compute` the arithmetic units; other classes (networks) are ignored. Attributes of a tree
//! node are inherited by everything below it (Accelergy's rule; a component's own attributes
//! win), except `instances` and the mesh.

use super::attrs::Attrs;
use super::yaml::{get, join, parse_instance_name, req_str, seq, value_text, Src};
use crate::spec::InputError;
use serde_yaml_ng::Value;

/// What a component is to qmap: a storage level or the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Storage,
    Compute,
}

/// A component of the tree, before it becomes a [`Level`](crate::model::Level) or the
/// [`Mac`](crate::model::Mac).
#[derive(Debug, Clone)]
pub(super) struct RawComponent {
    pub name: String,
    /// Field path of the component (`architecture.subtree[0].local[3]`).
    pub path: String,
    pub class: String,
    pub kind: Kind,
    pub attrs: Attrs,
    /// Instances from the names' ranges (the `instances` attribute overrides it).
    pub elements: u64,
}

/// Timeloop's class test (`isBufferClass` / `isComputeClass`), case-insensitive.
pub(super) fn classify(class: &str) -> Option<Kind> {
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
pub(super) fn walk_tree(
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
            out.extend(local_component(
                c,
                format!("{lpath}[{i}]"),
                mult,
                &attrs,
                src,
            )?);
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

/// One component of a `local` list at field path `cpath`, below tree attributes `attrs` and
/// `mult` instances; None for a disabled component or one that is neither storage nor compute.
fn local_component(
    c: &Value,
    cpath: String,
    mult: u64,
    attrs: &Attrs,
    src: Src,
) -> Result<Option<RawComponent>, InputError> {
    if c.as_mapping().is_none() {
        return Err(src.err(cpath, "must be a mapping (name, class, attributes)"));
    }
    if get(c, "enabled").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let raw = req_str(c, "name", &cpath, src)?;
    let (name, size) = parse_instance_name(raw).map_err(|m| src.err(join(&cpath, "name"), m))?;
    let class = get(c, "class").and_then(value_text).unwrap_or_default();
    let Some(kind) = classify(&class) else {
        return Ok(None); // networks and unknown classes: not part of the storage hierarchy
    };
    let own = Attrs::parse(get(c, "attributes"), &join(&cpath, "attributes"), src)?;
    Ok(Some(RawComponent {
        name,
        path: cpath,
        class,
        kind,
        attrs: own.below(attrs),
        elements: mult.saturating_mul(size),
    }))
}

/// Timeloop's classic `arch: {arithmetic, storage}` layout (storage listed innermost first).
pub(super) fn classic_components(arch: &Value, src: Src) -> Result<Vec<RawComponent>, InputError> {
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
