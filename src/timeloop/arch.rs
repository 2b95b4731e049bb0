//! Reading a Timeloop architecture into qmap's [`Arch`]: the storage components become its
//! levels (innermost first), the one compute component its [`Mac`]; the ERT and the file's own
//! constraints are applied on top.

use super::attrs::Attrs;
use super::components::{classic_components, walk_tree, Kind, RawComponent};
use super::constraints::apply_constraint_section;
use super::ert::apply_ert;
use super::level::{build_level, mesh_of};
use super::yaml::{get, join, load_value, strip_ranges, value_text, Src};
use crate::model::{Arch, Level, Mac};
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::path::Path;

/// Loads a Timeloop architecture (v0.3 / v0.4 tree, hyphenated or underscored keys, or the
/// classic `arch: {arithmetic, storage}` layout) and, when given, its ERT. Levels come back
/// innermost first. The file's own `architecture_constraints` (bypass / datatype targets) set
/// the levels' keep rules. Without an ERT the energies are the components'
/// `vector-access-energy` attributes, or 0.
pub fn load_arch(arch: &Path, ert: Option<&Path>) -> Result<Arch, InputError> {
    let src = Src { file: arch };
    let root = load_value(arch)?;
    let (comps, name) = read_components(&root, src)?;
    let compute = the_compute(&comps, src)?;
    let storage: Vec<&RawComponent> = comps
        .iter()
        .filter(|c| c.kind == Kind::Storage)
        .rev()
        .collect();
    let levels = build_levels(&storage, src)?;
    let mut a = Arch {
        name,
        levels,
        mac: build_mac(compute, src)?,
    };
    check_arch(&a, &storage, compute, src)?;
    if let Some(ert) = ert {
        apply_ert(&mut a, ert)?;
    }
    if let Some(c) = get(&root, "architecture_constraints") {
        apply_constraint_section(&mut a, c, "architecture_constraints", src)?;
    }
    Ok(a)
}

/// The file's components (outermost first) and the architecture's name: the tree's subtree
/// name, else the file's stem.
fn read_components(root: &Value, src: Src) -> Result<(Vec<RawComponent>, String), InputError> {
    let (comps, name) = if let Some(a) = get(root, "architecture") {
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
    } else if let Some(a) = get(root, "arch") {
        (classic_components(a, src)?, None)
    } else {
        return Err(src.err(
            "(document)",
            "no `architecture` (Timeloop v0.3/v0.4 tree) or `arch` (classic) section",
        ));
    };
    let name = name.unwrap_or_else(|| {
        src.file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok((comps, name))
}

/// The one compute component (qmap models one arithmetic level).
fn the_compute<'c>(comps: &'c [RawComponent], src: Src) -> Result<&'c RawComponent, InputError> {
    let computes: Vec<&RawComponent> = comps.iter().filter(|c| c.kind == Kind::Compute).collect();
    match computes.as_slice() {
        [c] => Ok(*c),
        [] => Err(src.err(
            "architecture",
            "no compute component (class intmac, mac, compute, ...)",
        )),
        [_, second, ..] => Err(src.err(
            second.path.clone(),
            "a second compute component: one arithmetic level is supported",
        )),
    }
}

/// The storage levels, innermost first: at least one, names unique.
fn build_levels(storage: &[&RawComponent], src: Src) -> Result<Vec<Level>, InputError> {
    if storage.is_empty() {
        return Err(src.err("architecture", "no storage level"));
    }
    let mut levels = Vec::new();
    for c in storage {
        if levels.iter().any(|l: &Level| l.name == c.name) {
            return Err(src.err(
                join(&c.path, "name"),
                format!("a second storage level named `{}`", c.name),
            ));
        }
        levels.push(build_level(c, src)?);
    }
    Ok(levels)
}

/// The MAC array a compute component describes.
fn build_mac(compute: &RawComponent, src: Src) -> Result<Mac, InputError> {
    let (instances, mesh_x, mesh_y) = mesh_of(compute, src)?;
    let energy = compute
        .attrs
        .f64("vector_access_energy", src)?
        .unwrap_or(0.0);
    Ok(Mac {
        name: compute.name.clone(),
        instances,
        mesh_x,
        mesh_y,
        energy,
        energy_table: Vec::new(),
    })
}

/// The whole architecture's checks, reported against the components they concern: fanouts,
/// value ranges, and no level with more instances than the one below it.
fn check_arch(
    a: &Arch,
    storage: &[&RawComponent],
    compute: &RawComponent,
    src: Src,
) -> Result<(), InputError> {
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
    Ok(())
}
