//! The co-design report for people and spreadsheets: the terminal text of `qmap front` and the
//! CSV of its points (`--csv`). Its JSON (`--json`) is the report's serialisation.

use super::text::{energy, thousands};
use crate::app::codesign::{CodesignReport, Design, FrontReport};
use crate::front::{AccuracyKind, FrontKind, PointStatus};
use std::fmt::Write;

/// The terminal text of a report; `detail`: every point's per-layer bits too.
pub fn text(r: &CodesignReport, detail: bool) -> String {
    match r {
        CodesignReport::Infeasible(i) => {
            format!("status: infeasible\nreason: {}\n", i.reason)
        }
        CodesignReport::Front(f) => front_text(f, detail),
    }
}

/// The front's text: what was solved, the points, and the comparisons.
fn front_text(r: &FrontReport, detail: bool) -> String {
    let mut out = summary(r);
    out += &points_table(r, detail);
    out += &comparisons(r);
    if let Some(v) = &r.verification {
        out += &super::verification::text(r, v);
    }
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
    let kl = t.accuracy_kind == AccuracyKind::Kl;
    if let Some(m) = r.min_accuracy {
        let window = match (t.default_min_accuracy, kl) {
            (false, _) => "",
            (true, false) => {
                " (default window: uniform 8-bit - 2 points; --min-accuracy 0 for the whole front)"
            }
            (true, true) => " (default window: uniform 8-bit's KL + 0.1; --max-kl to change)",
        };
        let _ = match kl {
            true => writeln!(out, "summed KL <= {:.4} nats{window}", -m),
            false => writeln!(out, "accuracy >= {m:.4}{window}"),
        };
    }
    if let Some(b) = &r.latency_budget {
        let _ = writeln!(
            out,
            "network cycles <= {}: least energy over the {} (not every mapping: a bound from \
             above at that latency)",
            b.max_cycles, b.optimal_over
        );
    }
    out += &front_line(r);
    out
}

/// The front's size, whether it is complete (or where and why it stopped), and its time.
fn front_line(r: &FrontReport) -> String {
    let t = &r.work;
    let how = if t.front_cached {
        "read from the cache".to_string()
    } else {
        format!("{:.2} s, {} stage solves", r.front_seconds, t.front_solves)
    };
    let range = |f: fn(&Design) -> f64| {
        (r.points.iter().map(f)).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        })
    };
    let span = if r.points.is_empty() {
        String::new()
    } else {
        let (e, a) = (range(|p| p.energy_pj), range(|p| p.accuracy));
        format!(
            ", energy {} .. {}, accuracy {:.4} .. {:.4}",
            energy(e.0),
            energy(e.1),
            a.0,
            a.1
        )
    };
    match &r.stopped {
        None => format!("front: {} points, complete{span} ({how})\n", r.points.len()),
        Some(s) => format!(
            "front: {} points, INCOMPLETE{span} ({how})\n  {}\n",
            r.points.len(),
            s.explanation
        ),
    }
}

/// A histogram of bit-widths: `4:12 5:30 8:11` (bits:layers).
fn histogram(bits: impl Iterator<Item = u32>) -> String {
    let mut h: Vec<(u32, usize)> = vec![];
    for b in bits {
        match h.iter_mut().find(|(x, _)| *x == b) {
            Some(e) => e.1 += 1,
            None => h.push((b, 1)),
        }
    }
    h.sort_unstable();
    let parts: Vec<String> = h.iter().map(|(b, n)| format!("{b}:{n}")).collect();
    parts.join(" ")
}

/// The points, one line each: totals, status and the histograms of weight and output bits
/// (bits:layers); with `detail`, each point's per-layer weight / output bits by layer name.
fn points_table(r: &FrontReport, detail: bool) -> String {
    let mut out = String::from("\n");
    let cycles_front = r.front == FrontKind::EnergyCycles;
    let _ = writeln!(
        out,
        "{:>4} {:>14} {:>9} {:>11} {:>14}{} {:<9} {:<20} output bits",
        "#",
        "energy",
        "accuracy",
        "memory KiB",
        "cycles",
        if cycles_front {
            "     EDP [pJ*cyc]"
        } else {
            ""
        },
        "status",
        "weight bits:layers",
    );
    for (i, p) in r.points.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>4} {:>14} {:>9.4} {:>11.1} {:>14}{} {:<9} {:<20} {}",
            i,
            energy(p.energy_pj),
            p.accuracy,
            p.memory_bytes / 1024.0,
            thousands(p.cycles),
            if cycles_front {
                format!(" {:>16.4e}", p.edp())
            } else {
                String::new()
            },
            status_name(p.status),
            histogram(p.layers.iter().map(|l| l.weight_bits)),
            histogram(p.layers.iter().map(|l| l.output_bits)),
        );
        if detail {
            out += &layer_bits(p);
        }
    }
    if !r.points.is_empty() {
        out += match r.work.accuracy_kind {
            AccuracyKind::Kl => {
                "(accuracy: the selection's score, -(summed KL of the logits) in nats; "
            }
            _ => "(accuracy: the accuracy model's, %; ",
        };
        out += if detail {
            "per layer: name weight/output bits)\n"
        } else {
            "--detail: each point's bits per layer)\n"
        };
    }
    out
}

/// A point's per-layer `name w/o` (weight / output bits), wrapped at about 100 columns.
fn layer_bits(p: &Design) -> String {
    let mut out = String::new();
    let mut line = String::from("      ");
    for l in &p.layers {
        let item = format!("{} {}/{}", l.name, l.weight_bits, l.output_bits);
        if line.len() + item.len() > 100 {
            out += line.trim_end();
            out += "\n";
            line = String::from("      ");
        }
        line += &item;
        line += "  ";
    }
    out += line.trim_end();
    out += "\n";
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
                "min EDP{}: {} x {} cycles = {:.4e} pJ*cycles",
                if r.complete {
                    ""
                } else {
                    " of the points traced (the front is incomplete)"
                },
                energy(p.energy_pj),
                thousands(p.cycles),
                p.edp()
            );
        }
    }
    let uniform: [(&str, &Option<Design>); 2] = [
        ("uniform 8-bit", &r.baselines.uniform_8bit),
        ("uniform 16-bit", &r.baselines.uniform_16bit),
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
                "NSGA-II ({} evaluations): {} points, {} within the budgets; no hypervolume comparison: the exact front is incomplete (raise --points or --front-time-limit)",
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
