//! The terminal text of `qmap baseline`: per layer its optimum, proof, mapspace size and solve
//! time; the network's totals with its energy by level; the infeasible layers and the entries
//! not proven optimal.

use super::{energy, thousands};
use crate::app::baseline::BaselineReport;
use std::fmt::Write;
use std::path::Path;

/// `qmap baseline`'s text (`out`: the output directory).
pub fn text(r: &BaselineReport, out: &Path) -> String {
    let mut text = format!(
        "qmap baseline: {} layers ({} distinct shapes, {} from the cache) in {:.1} s -> {}\n",
        r.layers,
        r.units,
        r.cached_units,
        r.seconds,
        out.display()
    );
    text += &layer_table(r);
    text += &totals_text(r);
    for (layer, why) in &r.infeasible {
        writeln!(text, "layer {layer}: infeasible: {why}").unwrap();
    }
    if r.unproven > 0 {
        writeln!(
            text,
            "{} entries are not proven optimal (time limit): see summary.csv",
            r.unproven
        )
        .unwrap();
    }
    text
}

/// One line per layer: bits, energy, cycles, status and proof, mapspace size, solve time.
fn layer_table(r: &BaselineReport) -> String {
    let width = (r.rows.iter().map(|l| l.layer.len()).max().unwrap_or(5)).max(5);
    let mut text = format!(
        "\n{:<width$} {:>8} {:>12} {:>12} {:<22} {:>10} {:>8}\n",
        "layer", "bits iwo", "energy", "cycles", "status (proof)", "mapspace", "time"
    );
    for l in &r.rows {
        writeln!(
            text,
            "{:<width$} {:>8} {:>12} {:>12} {:<22} {:>10} {:>6.2} s",
            l.layer,
            l.bits.map_or("native".into(), |b| format!(
                "{}/{}/{}",
                b.inputs, b.weights, b.outputs
            )),
            l.energy_pj.map_or("-".into(), energy),
            l.cycles.map_or("-".into(), thousands),
            format!("{} ({})", l.verdict.status, l.verdict.proof),
            l.mapspace_size.map_or("-".into(), |n| format!("{n:.3e}")),
            l.solve_seconds
        )
        .unwrap();
    }
    text
}

/// The network's totals: energy, cycles, weight memory, and energy by level.
fn totals_text(r: &BaselineReport) -> String {
    let t = &r.totals;
    let mut text = format!(
        "\nnetwork: {} layers{}: energy {}, {} cycles (layers one after another), weights {:.1} KiB ({} bytes){}\n",
        t.layers,
        if r.several_bits { " at their least-energy bit choice (every choice is in summary.csv)" } else { "" },
        energy(t.energy_pj),
        thousands(t.cycles),
        t.weight_bytes / 1024.0,
        t.weight_bytes,
        if t.left_out > 0 { format!("; {} layers without a mapping left out", t.left_out) } else { String::new() },
    );
    text += "energy by level:";
    let levels = r.levels.iter().zip(&t.level_energy_pj);
    for (name, e) in levels.filter(|(_, e)| **e > 0.0) {
        let share = if t.energy_pj > 0.0 {
            100.0 * e / t.energy_pj
        } else {
            0.0
        };
        write!(text, "  {name} {} ({share:.1} %)", energy(*e)).unwrap();
    }
    text.push('\n');
    text
}
