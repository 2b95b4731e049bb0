//! Text for people: the loop nest of a mapping, the evaluator's per-level table, energies,
//! sizes and statuses as the commands print them.

use crate::eval::Evaluation;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use std::fmt::Write;

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
