//! Reading the mappings Timeloop prints: the loop nest of a `map.txt` and the `Loop nest:`
//! sections of a `stats.txt`, checked against the architecture and problem.

use crate::model::{Arch, LevelMapping, Loop, Mapping, Problem};
use crate::spec::InputError;
use std::path::Path;

/// Where a printed loop runs: in time, or across the fanout along X or Y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoopKind {
    Temporal,
    SpatialX,
    SpatialY,
}

/// One printed loop and the line it was printed on.
#[derive(Debug, Clone, Copy)]
pub(super) struct PrintedLoop {
    dim: usize,
    factor: u64,
    kind: LoopKind,
    line: usize,
}

/// One printed storage level: its loops (outermost first, as printed) and the tensors it keeps.
#[derive(Debug, Clone)]
pub(super) struct PrintedLevel {
    level: usize,
    loops: Vec<PrintedLoop>,
    keep: Vec<bool>,
}

pub(super) fn line_err(file: &Path, line: usize, message: impl Into<String>) -> InputError {
    InputError::new(file, format!("line {line}"), message)
}

pub(super) fn level_names(arch: &Arch) -> String {
    arch.levels
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn tensor_names(problem: &Problem) -> String {
    problem
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses one printed loop, `for C in [0:3)` with an optional `(Spatial-X)` / `(Spatial-Y)`.
pub(super) fn parse_printed_loop(
    text: &str,
    line: usize,
    problem: &Problem,
) -> Result<PrintedLoop, String> {
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
pub(super) fn parse_map_txt(
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
pub(super) fn parse_stats_txt(
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
pub(super) fn mapping_from_printed(
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
pub(super) fn is_loop_nest_text(text: &str) -> bool {
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
