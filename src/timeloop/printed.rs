//! Reading the mappings Timeloop prints: the loop nest of a `map.txt` and the `Loop nest:`
//! sections of a `stats.txt`, checked against the architecture and problem.
//!
//! Printed mappings (`map.txt`, and the `Loop nest:` of each level in `stats.txt`): loops
//! outermost first, a level's temporal loops before its spatial ones (X inside Y), loops of
//! factor 1 not printed. In map.txt the header `NAME [ Tensor:tile (words) ... ]` lists the
//! tensors kept, and a level without loops prints its header alone, straight above the next
//! one; in stats.txt the kept tensors are the blocks under `STATS`. Timeloop's stats.txt
//! leaves `dummy_storage` levels out, and with them their spatial loops: such a nest is
//! reported, not guessed.

use super::mapping::first_unmet_bound;
use super::messages::{unknown_data_space, unknown_dim, unknown_level};
use super::yaml::read_text;
use crate::model::{Arch, LevelMapping, Loop, Mapping, Problem};
use crate::spec::InputError;
use std::path::Path;

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

impl PrintedLevel {
    /// Level `level`, before its loops and kept tensors are read.
    fn new(level: usize, problem: &Problem) -> PrintedLevel {
        PrintedLevel {
            level,
            loops: Vec::new(),
            keep: vec![false; problem.tensors.len()],
        }
    }
}

/// Loads the mapping Timeloop prints, from a map.txt (`timeloop-mapper.map.txt`) or from the
/// loop nests of a stats.txt, for `arch` and `problem`.
pub fn load_loop_nest_text(
    path: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    let text = read_text(path)?;
    let is_stats = text.lines().any(|l| {
        let t = l.trim();
        t == "Loop nest:" || (t.starts_with("=== ") && t.ends_with(" ==="))
    });
    let reader = Reader {
        file: path,
        arch,
        problem,
    };
    let printed = if is_stats {
        reader.stats_txt(&text)?
    } else {
        reader.map_txt(&text)?
    };
    reader.mapping(printed)
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
    let dim = problem
        .dim_index(name)
        .ok_or_else(|| format!("`{text}`: {}", unknown_dim(name, problem)))?;
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

/// The part of a stats.txt level section a line is in.
#[derive(PartialEq)]
enum Part {
    Other,
    Loops,
    Stats,
}

/// What a printed loop nest is read against: its file (errors name it and the line), the
/// architecture and the problem.
#[derive(Clone, Copy)]
struct Reader<'a> {
    file: &'a Path,
    arch: &'a Arch,
    problem: &'a Problem,
}

impl Reader<'_> {
    /// An error at line `n`.
    fn err(&self, n: usize, message: impl Into<String>) -> InputError {
        InputError::new(self.file, format!("line {n}"), message)
    }

    /// An error about the whole file.
    fn doc_err(&self, message: impl Into<String>) -> InputError {
        InputError::new(self.file, "(document)", message)
    }

    /// The loop printed on line `n` (`t`, without its `|` bars).
    fn printed_loop(&self, t: &str, n: usize) -> Result<PrintedLoop, InputError> {
        parse_printed_loop(t, n, self.problem).map_err(|m| self.err(n, m))
    }

    /// The level a header on line `n` names, printed after `last` in the file's order:
    /// outermost first in a map.txt (`outer_first`), innermost first in a stats.txt, each once.
    fn next_level(
        &self,
        name: &str,
        last: Option<&PrintedLevel>,
        outer_first: bool,
        n: usize,
    ) -> Result<usize, InputError> {
        let arch = self.arch;
        let l = arch
            .level_index(name)
            .ok_or_else(|| self.err(n, unknown_level(name, arch)))?;
        let misplaced = |p: &&PrintedLevel| {
            if outer_first {
                p.level <= l
            } else {
                p.level >= l
            }
        };
        if let Some(prev) = last.filter(misplaced) {
            let (listing, order) = if outer_first {
                ("map.txt", "outermost")
            } else {
                ("stats.txt", "innermost")
            };
            return Err(self.err(
                n,
                format!(
                    "level `{name}` printed after `{}`: {listing} lists levels {order} first, \
                     each once",
                    arch.levels[prev.level].name
                ),
            ));
        }
        Ok(l)
    }

    /// The tensor a printed name on line `n` refers to.
    fn tensor_at(&self, name: &str, n: usize) -> Result<usize, InputError> {
        let tensors = &self.problem.tensors;
        self.problem
            .tensor_index(name)
            .ok_or_else(|| self.err(n, unknown_data_space(name, tensors)))
    }

    /// Reads a map.txt loop nest: level headers `NAME [ Tensor:tile (words) ... ]` (outermost
    /// first; the tensors listed are the ones kept), `---` underlines, loops `| for C in [0:3)`
    /// and `<< Compute >>`. Loops belong to the header printed last: a level without loops
    /// prints its header alone, straight before the next one.
    fn map_txt(&self, text: &str) -> Result<Vec<PrintedLevel>, InputError> {
        let mut levels: Vec<PrintedLevel> = Vec::new();
        let mut compute_line: Option<usize> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let t = raw.trim();
            if t.is_empty() || t.chars().all(|c| c == '-') {
                continue;
            }
            if let Some(c) = compute_line {
                return Err(self.err(
                    n,
                    format!("`{t}`: text after `<< Compute >>` (line {c}), the innermost point"),
                ));
            }
            let body = t.trim_start_matches('|').trim();
            if body == "<< Compute >>" {
                compute_line = Some(n);
            } else if body.starts_with("for ") {
                let lp = self.printed_loop(body, n)?;
                let Some(level) = levels.last_mut() else {
                    return Err(self.err(n, "a loop before the first level header"));
                };
                level.loops.push(lp);
            } else if let Some((name, inner)) = t
                .strip_suffix(']')
                .and_then(|h| h.split_once('['))
                .filter(|_| !t.starts_with('|'))
            {
                let l = self.next_level(name.trim(), levels.last(), true, n)?;
                let mut level = PrintedLevel::new(l, self.problem);
                self.header_tensors(inner, &mut level, n)?;
                levels.push(level);
            } else {
                return Err(self.err(
                    n,
                    format!(
                        "`{t}`: expected a level header `NAME [ Tensor:tile (words) ... ]`, a \
                         loop `| for DIM in [0:N)` or `<< Compute >>`"
                    ),
                ));
            }
        }
        Ok(levels)
    }

    /// Marks the tensors a map.txt header on line `n` lists (`Weights:9 Inputs:24 (words)`) as
    /// kept.
    fn header_tensors(
        &self,
        inner: &str,
        level: &mut PrintedLevel,
        n: usize,
    ) -> Result<(), InputError> {
        for tok in inner.split_whitespace().filter(|t| !t.starts_with('(')) {
            let (tname, size) = tok.split_once(':').ok_or_else(|| {
                self.err(
                    n,
                    format!("`{tok}`: expected a kept tensor as `Name:tile (words)`"),
                )
            })?;
            let ti = self.tensor_at(tname, n)?;
            if size.parse::<u64>().is_err() {
                return Err(self.err(n, format!("`{tok}`: `{size}` is not a tile size")));
            }
            level.keep[ti] = true;
        }
        Ok(())
    }

    /// Reads the loop nests of a stats.txt: per level (`Level k`, `=== NAME ===`, innermost
    /// first, level 0 the arithmetic) the loops under `Loop nest:` (outermost first) and, under
    /// `STATS`, one block (`Weights:`) per tensor the level keeps. Reading stops at `Networks`.
    fn stats_txt(&self, text: &str) -> Result<Vec<PrintedLevel>, InputError> {
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
            } else if let Some(name) = t.strip_prefix("=== ").and_then(|s| s.strip_suffix(" ===")) {
                part = Part::Other;
                let name = name.trim();
                in_level = !(level_number == Some(0)
                    || (level_number.is_none() && name == self.arch.mac.name));
                level_number = None;
                if in_level {
                    let l = self.next_level(name, levels.last(), false, n)?;
                    levels.push(PrintedLevel::new(l, self.problem));
                }
            } else if let Some(level) = levels.last_mut().filter(|_| in_level) {
                part = self.stats_line(t, part, level, n)?;
            }
        }
        Ok(levels)
    }

    /// Reads line `n` (trimmed: `t`) of a storage level's section, in `part`: a loop of its
    /// nest or the block of a kept tensor. Returns the part the next line is in.
    fn stats_line(
        &self,
        t: &str,
        part: Part,
        level: &mut PrintedLevel,
        n: usize,
    ) -> Result<Part, InputError> {
        match t {
            "Loop nest:" => return Ok(Part::Loops),
            "STATS" => return Ok(Part::Stats),
            "SPECS" | "MAPPING" => return Ok(Part::Other),
            "" if part == Part::Loops => return Ok(Part::Other),
            _ if part == Part::Loops => {
                let lp = self.printed_loop(t.trim_start_matches('|').trim(), n)?;
                level.loops.push(lp);
            }
            _ if part == Part::Stats && t.ends_with(':') && !t.contains(char::is_whitespace) => {
                let ti = self.tensor_at(t.trim_end_matches(':'), n)?;
                level.keep[ti] = true;
            }
            _ => {}
        }
        Ok(part)
    }

    /// Builds the mapping from printed levels: loops reversed to innermost first, spatial
    /// loops split into X and Y. Levels not printed must be dummy levels (they hold nothing).
    fn mapping(&self, printed: Vec<PrintedLevel>) -> Result<Mapping, InputError> {
        if printed.is_empty() {
            return Err(self.doc_err(
                "no loop nest: expected Timeloop's map.txt (`NAME [ ... ]` headers and `| for` \
                 loops) or a stats.txt (`=== NAME ===` sections with `Loop nest:`)",
            ));
        }
        let (arch, problem) = (self.arch, self.problem);
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
            self.place(p, &mut levels)?;
        }
        // Timeloop prints no factor-1 loops; like `load_mapping`, list every dim's temporal
        // loop, the unprinted ones outermost in the problem's order.
        for lm in &mut levels {
            for dim in 0..problem.dims.len() {
                if !lm.temporal.iter().any(|l| l.dim == dim) {
                    lm.temporal.push(Loop { dim, factor: 1 });
                }
            }
        }
        self.check_cover(&levels, &seen)?;
        Ok(Mapping { levels })
    }

    /// Puts a printed level's loops, innermost first, into its level of `levels`: one loop per
    /// dimension and direction, spatial loops only where the level fans out.
    fn place(&self, p: PrintedLevel, levels: &mut [LevelMapping]) -> Result<(), InputError> {
        let (fx, fy) = self.arch.fanout(p.level);
        let name = &self.arch.levels[p.level].name;
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
                return Err(self.err(
                    lp.line,
                    format!(
                        "a second {} loop over {} at {name} (Timeloop has one per dimension \
                         and level)",
                        if spatial { "spatial" } else { "temporal" },
                        self.problem.dims[lp.dim],
                    ),
                ));
            }
            if spatial && fx * fy == 1 && lp.factor > 1 {
                return Err(self.err(
                    lp.line,
                    format!(
                        "spatial loop at {name}, which has no spatial fanout to the level \
                         below it"
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
        Ok(())
    }

    /// Checks that every level left out of the printed nest is a dummy level and that each
    /// dimension's loops multiply to its bound (naming the levels left out when they do not).
    fn check_cover(&self, levels: &[LevelMapping], seen: &[bool]) -> Result<(), InputError> {
        let (arch, problem) = (self.arch, self.problem);
        let unprinted: Vec<&str> = arch
            .levels
            .iter()
            .zip(seen)
            .filter(|(_, s)| !**s)
            .map(|(l, _)| l.name.as_str())
            .collect();
        if let Some((level, _)) = arch.levels.iter().zip(seen).find(|(l, s)| !**s && !l.dummy) {
            return Err(self.doc_err(format!(
                "level `{}` is not in the loop nest (only dummy levels may be left out)",
                level.name
            )));
        }
        let Some((d, prod)) = first_unmet_bound(levels, problem) else {
            return Ok(());
        };
        let mut msg = format!(
            "the loops over {} multiply to {prod}, not to its bound {}",
            problem.dims[d], problem.bounds[d]
        );
        if !unprinted.is_empty() {
            msg += &format!(
                "; the loop nest leaves out {} (Timeloop's stats.txt omits dummy levels, and \
                 their spatial loops with them): import the map.txt printed next to it",
                unprinted.join(", ")
            );
        }
        Err(self.doc_err(msg))
    }
}
