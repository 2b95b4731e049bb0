//! A component's attributes under their canonical names: the spellings Timeloop and Accelergy
//! accept for each, inheritance down the architecture tree, and typed access.

use super::yaml::{get_any, join, value_f64, value_u64, Src};
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::collections::HashMap;

/// Attribute spellings, canonical name first, in Timeloop's order of precedence.
pub(super) const ATTR_ALIASES: &[(&str, &[&str])] = &[
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
pub(super) const NOT_INHERITED: &[&str] = &["instances", "mesh_x", "mesh_y"];

/// Canonical attributes: value and the field path it came from.
#[derive(Debug, Clone, Default)]
pub(super) struct Attrs(HashMap<&'static str, (Value, String)>);

impl Attrs {
    pub(super) fn parse(v: Option<&Value>, path: &str, src: Src) -> Result<Attrs, InputError> {
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
    pub(super) fn below(self, parent: &Attrs) -> Attrs {
        let mut out: HashMap<_, _> = parent
            .0
            .iter()
            .filter(|(k, _)| !NOT_INHERITED.contains(k))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        out.extend(self.0);
        Attrs(out)
    }

    pub(super) fn path(&self, key: &str, default_path: &str) -> String {
        self.0
            .get(key)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| join(default_path, key))
    }

    pub(super) fn u64(&self, key: &str, src: Src) -> Result<Option<u64>, InputError> {
        match self.0.get(key) {
            None => Ok(None),
            Some((v, p)) => value_u64(v)
                .map(Some)
                .ok_or_else(|| src.err(p.clone(), "must be a non-negative integer")),
        }
    }

    /// A positive integer attribute.
    pub(super) fn pos_u64(&self, key: &str, src: Src) -> Result<Option<u64>, InputError> {
        match self.u64(key, src)? {
            Some(0) => Err(src.err(self.0[key].1.clone(), "must be > 0")),
            x => Ok(x),
        }
    }

    pub(super) fn f64(&self, key: &str, src: Src) -> Result<Option<f64>, InputError> {
        match self.0.get(key) {
            None => Ok(None),
            Some((v, p)) => match value_f64(v) {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(src.err(p.clone(), "must be a number")),
            },
        }
    }
}
