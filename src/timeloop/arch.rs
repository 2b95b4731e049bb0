//! Reading a Timeloop architecture into qmap's [`Arch`]: each storage component becomes a
//! [`Level`] (geometry, capacity, bandwidths, mesh), the compute component the [`Mac`].

use super::attrs::Attrs;
use super::components::{classic_components, walk_tree, Kind, RawComponent};
use super::constraints::apply_constraint_section;
use super::ert::apply_ert;
use super::yaml::{get, join, load_value, strip_ranges, value_text, Src};
use crate::model::{Arch, Level, Mac};
use crate::spec::InputError;
use std::path::Path;

/// Instances and mesh (Timeloop's `ValidateTopology`): neither meshX nor meshY → all along X.
pub(super) fn mesh_of(c: &RawComponent, src: Src) -> Result<(u64, u64, u64), InputError> {
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

pub(super) fn build_level(c: &RawComponent, src: Src) -> Result<Level, InputError> {
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
