//! Human-readable reports: the loop nest of a mapping and the evaluator's per-level table; and
//! the careful file writer every output file (reports, mappings, caches) goes through, with
//! its check of output paths before any work starts.

use crate::eval::Evaluation;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use std::fmt::Write;

/// Writes `text` to `path` as a careful Unix tool does:
/// - a regular file (or a new one) is written to a temporary file in the same directory and
///   renamed over it (readers never see a half-written file), keeping the existing file's
///   permissions; on an error the temporary file is removed and `path` is untouched;
/// - a symbolic link is written through: its target is replaced that way, the link stays;
/// - a FIFO, a device or `/dev/stdout` is written in place (it cannot be replaced);
/// - a directory is an error.
pub fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    write_output(path, text.as_bytes())
}

/// [`write_atomic`] for bytes.
pub fn write_output(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::metadata(path) {
        // metadata follows links: this is what the path (or its link's target) is.
        Ok(m) if m.is_dir() => Err(Error::new(ErrorKind::IsADirectory, "it is a directory")),
        Ok(m) if m.is_file() => {
            replace(&std::fs::canonicalize(path)?, bytes, Some(m.permissions()))
        }
        Ok(_) => {
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            std::io::Write::write_all(&mut f, bytes)?;
            std::io::Write::flush(&mut f)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => replace(&link_target(path)?, bytes, None),
        Err(e) => Err(e),
    }
}

/// Where a write to `path` lands when nothing is there: `path` itself, or the (relative or
/// absolute) target of a dangling symbolic link, followed through a chain of links.
fn link_target(path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if t.is_relative() => dir.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Replaces the regular file `path` with `bytes` through a temporary file beside it (same
/// filesystem, so the rename is atomic), synced before the rename so that a full disk is an
/// error here and not a truncated file later; `perms` are the replaced file's.
fn replace(
    path: &std::path::Path,
    bytes: &[u8],
    perms: Option<std::fs::Permissions>,
) -> std::io::Result<()> {
    use std::io::Write;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.qmap-{}-{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(p) = perms {
            std::fs::set_permissions(&tmp, p)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether `path` can take an output before any work is done: an existing file or link target
/// is not a directory, and a new file's directory exists and takes a new file (a temporary
/// file is created and removed there). FIFOs and devices are taken as they are.
pub fn check_output(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::new(ErrorKind::IsADirectory, "it is a directory")),
        Ok(m) if !m.is_file() => Ok(()),
        Ok(_) | Err(_) => {
            let target = match std::fs::metadata(path) {
                Ok(_) => std::fs::canonicalize(path)?,
                Err(e) if e.kind() == ErrorKind::NotFound => link_target(path)?,
                Err(e) => return Err(e),
            };
            let dir = match target.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            if !dir.is_dir() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("its directory {} does not exist", dir.display()),
                ));
            }
            check_dir_writable(&dir)
        }
    }
}

/// Whether a new file can be created in `dir` (created and removed again).
pub fn check_dir_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".qmap-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// Formats an integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats an energy in pJ with a readable unit.
pub fn energy(pj: f64) -> String {
    if !pj.is_finite() {
        return "-".into();
    }
    let a = pj.abs();
    if a >= 1e6 {
        format!("{:.3} uJ", pj / 1e6)
    } else if a >= 1e3 {
        format!("{:.3} nJ", pj / 1e3)
    } else {
        format!("{pj:.3} pJ")
    }
}

/// The mapping as a loop nest, outermost first, in the style of Timeloop's `map.txt`.
pub fn loop_nest(mapping: &Mapping, arch: &Arch, problem: &Problem) -> String {
    let mut out = String::new();
    let mut indent = 0;
    for (lm, level) in mapping.levels.iter().zip(&arch.levels).rev() {
        let kept: Vec<&str> = problem
            .tensors
            .iter()
            .zip(&lm.keep)
            .filter(|(_, k)| **k)
            .map(|(t, _)| t.name.as_str())
            .collect();
        let loops: Vec<String> = lm
            .temporal
            .iter()
            .rev()
            .filter(|x| x.factor > 1)
            .map(|x| format!("for {} in [0:{})", problem.dims[x.dim], x.factor))
            .chain(lm.spatial_x.iter().filter(|x| x.factor > 1).map(|x| {
                format!(
                    "for {} in [0:{}) (Spatial-X)",
                    problem.dims[x.dim], x.factor
                )
            }))
            .chain(lm.spatial_y.iter().filter(|x| x.factor > 1).map(|x| {
                format!(
                    "for {} in [0:{}) (Spatial-Y)",
                    problem.dims[x.dim], x.factor
                )
            }))
            .collect();
        if kept.is_empty() && loops.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{} [ {} ]", level.name, kept.join(" "));
        for lp in loops {
            let _ = writeln!(out, "{}| {lp}", "  ".repeat(indent));
            indent += 1;
        }
    }
    let _ = writeln!(out, "{}<< Compute >>", "  ".repeat(indent));
    out
}

/// The evaluator's result as a per-level table (counts are totals over instances, in words).
pub fn evaluation_table(ev: &Evaluation) -> String {
    let mut out = String::new();
    if !ev.valid {
        let _ = writeln!(
            out,
            "INVALID: {}",
            ev.invalid
                .as_ref()
                .map(|i| i.to_string())
                .unwrap_or_default()
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<26} {:>6} {:<8} {:>5} {:>10} {:>14} {:>14} {:>14} {:>14}",
        "level", "inst", "tensor", "k", "tile(w)", "reads", "fills", "updates", "energy"
    );
    for l in ev.levels.iter().rev() {
        if l.tensors.is_empty() {
            continue;
        }
        for (i, t) in l.tensors.iter().enumerate() {
            let name = if i == 0 { l.name.as_str() } else { "" };
            let inst = if i == 0 {
                thousands(l.instances_used)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<26} {:>6} {:<8} {:>5} {:>10} {:>14} {:>14} {:>14} {:>14}",
                name,
                inst,
                t.name,
                t.packing,
                thousands(t.tile_words),
                thousands(t.reads),
                thousands(t.fills),
                thousands(t.updates),
                energy(t.energy_pj)
            );
        }
    }
    let _ = writeln!(
        out,
        "{:<26} {:>6} {:<8} {:>5} {:>10} {:>14} {:>14} {:>14} {:>14}",
        "MACs",
        thousands(ev.mac_instances_used),
        "",
        "",
        "",
        thousands(ev.macs),
        "",
        "",
        energy(ev.mac_energy_pj)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "energy {}  ({:.4} pJ/MAC)   cycles {}   utilization {:.2}%   EDP {:.4e} pJ*cycles",
        energy(ev.energy_pj),
        ev.energy_pj / ev.macs as f64,
        thousands(ev.cycles),
        ev.utilization * 100.0,
        ev.edp()
    );
    out
}

/// One line describing the model settings (bits, packing).
pub fn settings_line(problem: &Problem, opts: &ModelOptions) -> String {
    let bits = match &opts.bits {
        None => "native (each tensor at each level's word size)".to_string(),
        Some(b) => problem
            .tensors
            .iter()
            .zip(&b.0)
            .map(|(t, b)| format!("{} {b}", t.name))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let packing = format!("{:?}", opts.packing).to_lowercase();
    let mut s = format!("bits: {bits}; packing: {packing}");
    if let crate::model::PsumPolicy::Bits(b) = opts.psum {
        let _ = write!(s, "; psum_bits: {b}");
    }
    if opts.seed_compat {
        s.push_str("; seed_compat");
    }
    s
}

/// A mapspace's size as printed: `2.059e8 mappings`, or why it is not known (its count would
/// take longer than the count's own budget, or than the time limit allowed).
pub fn mapspace_size(size: Option<f64>) -> String {
    match size {
        Some(n) => format!("{n:.3e} mappings"),
        None => "not counted (too large to count within its budget)".into(),
    }
}

/// A status as reports name it.
pub fn status_name(s: crate::milp::Status) -> &'static str {
    match s {
        crate::milp::Status::Optimal => "optimal",
        crate::milp::Status::TimeLimit => "time_limit",
        crate::milp::Status::Infeasible => "infeasible",
        crate::milp::Status::Unknown => "unknown",
    }
}

/// `qmap gap`'s table for a terminal.
pub fn gap_text(r: &crate::app::gap::GapReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "qmap gap: {}  (max gap {:.2}%)",
        r.suite,
        r.max_gap * 100.0
    );
    let _ = writeln!(
        s,
        "{:<16} {:>14} {:>14} {:>9}  {:<8} note",
        "layer", "heuristic", "optimum", "gap", "verdict"
    );
    for row in &r.layers {
        let verdict = if row.pass {
            "ok"
        } else if row.mapping_file.is_empty() {
            "MISSING"
        } else if !row.valid {
            "INVALID"
        } else {
            "FAIL"
        };
        let note = [
            row.reason.clone(),
            (row.optimum_status != "optimal").then(|| format!("optimum {}", row.optimum_status)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        let _ = writeln!(
            s,
            "{:<16} {:>14} {:>14} {:>9}  {:<8} {note}",
            row.name,
            row.heuristic_pj.map_or("-".into(), energy),
            row.optimum_pj.map_or("-".into(), energy),
            row.gap.map_or("-".into(), |g| format!("{:.2}%", g * 100.0)),
            verdict
        );
    }
    let failed = r.layers.iter().filter(|x| !x.pass).count();
    let _ = writeln!(
        s,
        "{} of {} layers within the gap{}",
        r.layers.len() - failed,
        r.layers.len(),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    if !r.missing.is_empty() {
        let _ = writeln!(
            s,
            "no mapping for {} layer(s): {}",
            r.missing.len(),
            r.missing.join(", ")
        );
    }
    s
}

/// The warnings `qmap gap` gives on stderr: files that name no layer (with the nearest name).
pub fn gap_warnings(r: &crate::app::gap::GapReport) -> Vec<String> {
    r.unrecognised
        .iter()
        .map(|u| match &u.nearest {
            Some(n) => format!("{}: names no layer (did you mean `{n}`?)", u.file),
            None => format!("{}: names no layer", u.file),
        })
        .collect()
}

/// `qmap gap`'s JUnit XML report: one test suite, one test case per layer (with its numbers
/// as properties and its wall time as `time`), a failure per layer above the gap, invalid or
/// without a mapping; `error` (when the run itself failed) as one errored test case.
pub fn gap_junit(
    r: Option<&crate::app::gap::GapReport>,
    suite: &str,
    error: Option<&str>,
) -> String {
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let rows = r.map_or(&[][..], |r| &r.layers[..]);
    let failures = rows.iter().filter(|x| !x.pass).count();
    let mut ev = |e: Event| w.write_event(e).expect("writing to memory");
    ev(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let tests = (rows.len() + error.is_some() as usize).to_string();
    let (f, errs) = (failures.to_string(), (error.is_some() as usize).to_string());
    let time: f64 = rows.iter().map(|x| x.seconds).sum();
    let time = format!("{time:.3}");
    let counts = [
        ("tests", tests.as_str()),
        ("failures", f.as_str()),
        ("errors", errs.as_str()),
        ("time", time.as_str()),
    ];
    let mut top = BytesStart::new("testsuites").with_attributes([("name", "qmap gap")]);
    top.extend_attributes(counts);
    ev(Event::Start(top));
    let mut st = BytesStart::new("testsuite").with_attributes([("name", suite)]);
    st.extend_attributes(counts);
    ev(Event::Start(st));
    if let Some(message) = error {
        let case = BytesStart::new("testcase")
            .with_attributes([("name", "qmap gap"), ("classname", suite)]);
        ev(Event::Start(case));
        ev(Event::Empty(BytesStart::new("error").with_attributes([
            ("message", message),
            ("type", "error"),
        ])));
        ev(Event::End(BytesEnd::new("testcase")));
    }
    for row in rows {
        let t = format!("{:.3}", row.seconds);
        ev(Event::Start(BytesStart::new("testcase").with_attributes([
            ("name", row.name.as_str()),
            ("classname", suite),
            ("time", t.as_str()),
        ])));
        ev(Event::Start(BytesStart::new("properties")));
        for (name, value) in gap_properties(row, r.map_or(0.0, |r| r.max_gap)) {
            ev(Event::Empty(BytesStart::new("property").with_attributes([
                ("name", name),
                ("value", value.as_str()),
            ])));
        }
        ev(Event::End(BytesEnd::new("properties")));
        if !row.pass {
            let message = gap_failure(row, r.map_or(0.0, |r| r.max_gap));
            let kind = if row.mapping_file.is_empty() {
                "missing"
            } else if !row.valid {
                "invalid"
            } else {
                "gap"
            };
            ev(Event::Start(BytesStart::new("failure").with_attributes([
                ("message", message.as_str()),
                ("type", kind),
            ])));
            ev(Event::Text(BytesText::new(&format!(
                "mapping: {}",
                row.mapping_file
            ))));
            ev(Event::End(BytesEnd::new("failure")));
        }
        ev(Event::End(BytesEnd::new("testcase")));
    }
    ev(Event::End(BytesEnd::new("testsuite")));
    ev(Event::End(BytesEnd::new("testsuites")));
    let mut text = String::from_utf8(w.into_inner()).expect("utf-8");
    text.push('\n');
    text
}

/// A gap row's numbers as JUnit properties (empty values where there is none).
fn gap_properties(row: &crate::app::gap::GapRow, max_gap: f64) -> Vec<(&'static str, String)> {
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    vec![
        ("heuristic_pj", num(row.heuristic_pj)),
        (
            "heuristic_cycles",
            row.heuristic_cycles
                .map_or(String::new(), |c| c.to_string()),
        ),
        ("optimum_pj", num(row.optimum_pj)),
        ("optimum_bound_pj", num(row.optimum_bound_pj)),
        ("optimum_status", row.optimum_status.clone()),
        ("gap", num(row.gap)),
        ("max_gap", format!("{max_gap}")),
        ("in_mapspace", row.in_mapspace.to_string()),
        ("mapping_file", row.mapping_file.clone()),
    ]
}

/// Why a gap row failed, in one line.
fn gap_failure(row: &crate::app::gap::GapRow, max_gap: f64) -> String {
    match (row.valid, row.gap) {
        (true, Some(g)) => format!(
            "gap {:.2}% exceeds {:.2}% (heuristic {:.4} pJ, optimum {:.4} pJ)",
            g * 100.0,
            max_gap * 100.0,
            row.heuristic_pj.unwrap_or(f64::NAN),
            row.optimum_pj.unwrap_or(f64::NAN)
        ),
        _ => row.reason.clone().unwrap_or("invalid mapping".into()),
    }
}
