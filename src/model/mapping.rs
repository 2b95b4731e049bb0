//! A mapping: per level, temporal loops (innermost first), spatial loops and what the level
//! keeps; read from and written to the `spec` mapping format.

use super::*;
use crate::spec::{self, InputError};
use std::path::Path;

/// A loop: a dimension and its factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loop {
    pub dim: usize,
    pub factor: u64,
}

/// The mapping of one storage level: its temporal loops (innermost first), the spatial loops of
/// its fanout to the level below (X and Y), and which tensors it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LevelMapping {
    pub temporal: Vec<Loop>,
    pub spatial_x: Vec<Loop>,
    pub spatial_y: Vec<Loop>,
    /// `keep[t]` for each tensor of the problem.
    pub keep: Vec<bool>,
}

impl LevelMapping {
    pub fn temporal_factor(&self, dim: usize) -> u64 {
        self.temporal
            .iter()
            .filter(|l| l.dim == dim)
            .map(|l| l.factor)
            .product()
    }
    pub fn spatial_factor(&self, dim: usize) -> u64 {
        self.spatial_x
            .iter()
            .chain(&self.spatial_y)
            .filter(|l| l.dim == dim)
            .map(|l| l.factor)
            .product()
    }
    pub fn spatial_x_product(&self) -> u64 {
        self.spatial_x.iter().map(|l| l.factor).product()
    }
    pub fn spatial_y_product(&self) -> u64 {
        self.spatial_y.iter().map(|l| l.factor).product()
    }
}

/// A mapping: one [`LevelMapping`] per architecture level, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Mapping {
    pub levels: Vec<LevelMapping>,
}

/// Parses `"M8 R3 C1"` into loops over the problem's dims (factor-1 loops are kept: they carry
/// the order Timeloop prints but do not change any count).
pub fn parse_loops(text: &str, problem: &Problem) -> Result<Vec<Loop>, String> {
    let mut loops = Vec::new();
    for tok in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        let split = tok
            .find(|c: char| c.is_ascii_digit() || c == '=')
            .ok_or_else(|| {
                format!("`{tok}`: expected a dimension name followed by a factor, e.g. `M8`")
            })?;
        let (name, num) = tok.split_at(split);
        let num = num.trim_start_matches('=');
        let dim = problem.dim_index(name).ok_or_else(|| {
            format!(
                "`{tok}`: unknown dimension `{name}` (dims: {})",
                problem.dims.join(" ")
            )
        })?;
        let factor: u64 = num
            .parse()
            .map_err(|_| format!("`{tok}`: factor `{num}` is not a positive integer"))?;
        if factor == 0 {
            return Err(format!("`{tok}`: factor must be > 0"));
        }
        if loops.iter().any(|l: &Loop| l.dim == dim) {
            return Err(format!("`{tok}`: dimension `{name}` appears twice"));
        }
        loops.push(Loop { dim, factor });
    }
    Ok(loops)
}

/// Builds a mapping from its spec, for `arch` and `problem`; `file` names the source in errors.
pub fn mapping_from_spec(
    s: &spec::MappingSpec,
    arch: &Arch,
    problem: &Problem,
    file: &Path,
) -> Result<Mapping, InputError> {
    // A level whose entry gives no `keep` keeps every tensor the architecture lets it keep
    // (Timeloop's default).
    let mut levels: Vec<LevelMapping> = (0..arch.levels.len())
        .map(|l| LevelMapping {
            keep: problem
                .tensors
                .iter()
                .map(|t| arch.keep_rule(l, &t.name) != KeepRule::Never)
                .collect(),
            ..Default::default()
        })
        .collect();
    let mut seen = vec![false; arch.levels.len()];
    for (i, e) in s.mapping.iter().enumerate() {
        let f = |name: &str| format!("mapping[{i}].{name}");
        let l = arch.level_index(&e.level).ok_or_else(|| {
            InputError::new(
                file,
                f("level"),
                format!(
                    "unknown level `{}` (levels: {})",
                    e.level,
                    arch.levels
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if seen[l] {
            return Err(InputError::new(
                file,
                f("level"),
                format!("level `{}` is mapped twice", e.level),
            ));
        }
        seen[l] = true;
        let lm = &mut levels[l];
        lm.temporal = parse_loops(&e.temporal, problem)
            .map_err(|m| InputError::new(file, f("temporal"), m))?;
        lm.spatial_x = parse_loops(&e.spatial_x, problem)
            .map_err(|m| InputError::new(file, f("spatial_x"), m))?;
        lm.spatial_y = parse_loops(&e.spatial_y, problem)
            .map_err(|m| InputError::new(file, f("spatial_y"), m))?;
        if let Some(keep) = &e.keep {
            for name in keep {
                if problem.tensor_index(name).is_none() {
                    return Err(InputError::new(
                        file,
                        f("keep"),
                        format!("unknown tensor `{name}`"),
                    ));
                }
            }
            lm.keep = problem
                .tensors
                .iter()
                .map(|t| keep.contains(&t.name))
                .collect();
        }
    }
    Ok(Mapping { levels })
}

/// Converts a mapping back to its spec (innermost first, factor-1 loops dropped).
pub fn mapping_to_spec(m: &Mapping, arch: &Arch, problem: &Problem) -> spec::MappingSpec {
    let fmt = |loops: &[Loop]| {
        loops
            .iter()
            .filter(|l| l.factor > 1)
            .map(|l| format!("{}{}", problem.dims[l.dim], l.factor))
            .collect::<Vec<_>>()
            .join(" ")
    };
    spec::MappingSpec {
        mapping: m
            .levels
            .iter()
            .zip(&arch.levels)
            .map(|(lm, l)| spec::LevelMappingSpec {
                level: l.name.clone(),
                temporal: fmt(&lm.temporal),
                spatial_x: fmt(&lm.spatial_x),
                spatial_y: fmt(&lm.spatial_y),
                keep: Some(
                    problem
                        .tensors
                        .iter()
                        .zip(&lm.keep)
                        .filter(|(_, k)| **k)
                        .map(|(t, _)| t.name.clone())
                        .collect(),
                ),
            })
            .collect(),
    }
}
