//! The co-design report for people and spreadsheets: the terminal text of `qmap front` and the
//! CSV of its points (`--csv`). Its JSON (`--json`) is the report's serialisation.

use super::text::{energy, thousands};
use crate::app::codesign::{CodesignReport, Design, FrontReport};
use crate::front::{FrontKind, PointStatus};
use std::fmt::Write;

/// The terminal text of a report.
pub fn text(r: &CodesignReport) -> String {
    match r {
        CodesignReport::Infeasible(i) => {
            format!("status: infeasible\nreason: {}\n", i.reason)
        }
        CodesignReport::Front(f) => front_text(f),
    }
}

/// The front's text: what was solved, the points, and the comparisons.
fn front_text(r: &FrontReport) -> String {
    let mut out = summary(r);
    out += &points_table(r);
    out += &comparisons(r);
    out
}

/// The header lines: the instance, the table, the accuracy budget and the front's size.
fn summary(r: &FrontReport) -> String {
    let mut out = String::new();
    let t = &r.work;
    let unproven = r.table_entries_not_proven;
    let _ = writeln!(
        out,
        "qmap front: {} on {} ({:?})",
        r.workload, r.architecture, r.front
    );
    let _ = writeln!(
        out,
        "table: {} layers, {} distinct shapes ({} cached), {} bit configurations, {:.1} s{}",
        t.layers,
        t.units,
        t.cached_units,
        t.bit_configurations,
        r.table_seconds,
        if unproven > 0 {
            format!("; {unproven} entries NOT proven optimal (time limit)")
        } else {
            String::new()
        }
    );
    if let Some(m) = r.min_accuracy {
        let _ = writeln!(
            out,
            "accuracy >= {m:.4}{}",
            if t.default_min_accuracy {
                " (default window: uniform 8-bit - 2 points; --min-accuracy 0 for the whole front)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "front: {} points{} in {:.2} s ({} stage solves)",
        r.points.len(),
        if r.complete {
            ""
        } else {
            " (incomplete: --points or a time limit)"
        },
        r.front_seconds,
        t.front_solves
    );
    out
}

/// The points: totals, status and per-layer weight / output bits.
fn points_table(r: &FrontReport) -> String {
    let mut out = String::from("\n");
    let _ = writeln!(
        out,
        "{:>4} {:>14} {:>12} {:>12} {:>14} {:<9} weight bits / output bits per layer",
        "#", "energy", r.accuracy_model, "memory KiB", "cycles", "status"
    );
    for (i, p) in r.points.iter().enumerate() {
        let bits: Vec<String> = p
            .layers
            .iter()
            .map(|l| format!("{}/{}", l.weight_bits, l.output_bits))
            .collect();
        let _ = writeln!(
            out,
            "{:>4} {:>14} {:>12.4} {:>12.1} {:>14} {:<9} {}",
            i,
            energy(p.energy_pj),
            p.accuracy,
            p.memory_bytes / 1024.0,
            thousands(p.cycles),
            status_name(p.status),
            bits.join(" ")
        );
    }
    out
}

/// The minimum-EDP point, the uniform designs, the seed's comparison and NSGA-II's.
fn comparisons(r: &FrontReport) -> String {
    let mut out = String::new();
    let acc_label = r.accuracy_model;
    if r.front == FrontKind::EnergyCycles {
        if let Some(p) = &r.min_edp {
            let _ = writeln!(
                out,
                "min EDP: {} x {} cycles = {:.4e} pJ*cycles",
                energy(p.energy_pj),
                thousands(p.cycles),
                p.edp()
            );
        }
    }
    let uniform: [(&str, &Option<Design>); 2] = [
        ("uniform 8-bit", &r.uniform_8bit),
        ("uniform 16-bit", &r.uniform_16bit),
    ];
    for (label, u) in uniform {
        if let Some(u) = u {
            let _ = writeln!(
                out,
                "{label}: {}, {:.4} {acc_label}, {:.1} KiB",
                energy(u.energy_pj),
                u.accuracy,
                u.memory_bytes / 1024.0
            );
        }
    }
    let _ = writeln!(out, "{}", r.comparison);
    if let (Some(points), Some(within), Some(evaluations)) =
        (&r.nsga2, r.nsga2_within_budgets, r.work.nsga2_evaluations)
    {
        let _ = match r.hypervolume {
            Some(hv) => writeln!(
                out,
                "NSGA-II ({} evaluations): {} points, {} within the budgets; hypervolume {:.6e} vs exact {:.6e} ({:.2}%)",
                evaluations,
                points.len(),
                within,
                hv.nsga2,
                hv.exact,
                100.0 * hv.nsga2 / hv.exact
            ),
            None => writeln!(
                out,
                "NSGA-II ({} evaluations): {} points, {} within the budgets; no hypervolume comparison: the exact front is incomplete (raise --points)",
                evaluations,
                points.len(),
                within
            ),
        };
    }
    out
}

/// The front's points as CSV, one row per (point, layer).
pub fn csv(r: &FrontReport) -> String {
    let mut text = String::from("point,energy_pj,accuracy,memory_bytes,cycles,status,layer,input_bits,weight_bits,output_bits,layer_energy_pj\n");
    for (i, p) in r.points.iter().enumerate() {
        for l in &p.layers {
            let _ = writeln!(
                text,
                "{i},{},{},{},{},{},{},{},{},{},{}",
                p.energy_pj,
                p.accuracy,
                p.memory_bytes,
                p.cycles,
                status_name(p.status),
                l.name,
                l.input_bits,
                l.weight_bits,
                l.output_bits,
                l.energy_pj
            );
        }
    }
    text
}

/// A point's status as its JSON names it (`optimal`, `time_limit`, ...).
fn status_name(s: PointStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
