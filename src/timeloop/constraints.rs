//! Keep / bypass rules from Timeloop constraints (`bypass` and `datatype` targets), and the
//! level a constraint or mapping `target` names.

use super::messages::unknown_level;
use super::yaml::{get, join, load_value, req_str, seq, str_list, strip_ranges, Src};
use crate::model::Arch;
use crate::spec::InputError;
use serde_yaml_ng::Value;
use std::path::Path;

/// The architecture level a constraint or mapping `target` names (by name, with or without
/// its instance range, or by storage-level index, innermost 0).
pub(super) fn target_level(
    arch: &Arch,
    v: &Value,
    path: &str,
    src: Src,
) -> Result<usize, InputError> {
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
    arch.level_index(&name)
        .ok_or_else(|| src.err(path, unknown_level(&name, arch)))
}

/// Applies the `bypass` / `datatype` targets of one constraint section (`{targets: [...]}` or
/// a bare list).
pub(super) fn apply_constraint_section(
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
