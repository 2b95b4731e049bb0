//! The plot of `qmap front --svg`: the front with the uniform designs, the random-search
//! baseline, NSGA-II's points, the minimum-EDP point and the headline's designs marked, and an
//! incomplete front's cut.

use super::{Designs, ExactFront, FrontReport, Inputs};
use crate::front::{self as fr, MarkStyle, PlotMark};
use crate::spec::InputError;
use std::path::Path;

/// Writes the plot of the front to `path`.
pub(super) fn write(
    path: &Path,
    inputs: &Inputs,
    exact: &ExactFront,
    d: &Designs,
    report: &FrontReport,
) -> Result<(), InputError> {
    let marks = marks(exact, d, report);
    let title = format!(
        "{} on {}: {} points",
        inputs.inst.workload_name,
        inputs.inst.arch.name,
        exact.front.points.len()
    );
    let method = if exact.front.milp_solves == 0 {
        "exact front (label search)"
    } else {
        "exact front (label search + selection MILP)"
    };
    let plot = fr::FrontPlot {
        title: &title,
        kind: exact.front.kind,
        method,
        accuracy_label: inputs.accuracy.label(),
        front: &exact.front.points,
        baseline: d.nsga.as_ref().map(|r| {
            (
                "NSGA-II (heuristic), within the budgets",
                r.within.as_slice(),
            )
        }),
        marks: &marks,
        incomplete: report.stopped.as_ref().map(|s| s.explanation.as_str()),
    };
    plot.write_svg(path)
        .map_err(|e| InputError::new(path, "(file)", e.to_string()))
}

/// The plot's marks: uniform 8- and 16-bit, uniform 8-bit mapped by random search, the
/// minimum-EDP point and the headline's designs.
fn marks(exact: &ExactFront, d: &Designs, report: &FrontReport) -> Vec<PlotMark> {
    let mut marks = vec![];
    if let Some(u) = &exact.uniform8 {
        marks.push(PlotMark::from_point("uniform 8-bit", u));
        if let Some(e) = d.random8.0.energy_pj {
            marks.push(PlotMark {
                label: "uniform 8-bit, random-search mapping".into(),
                energy_pj: e,
                cycles: d.random8.0.cycles,
                style: MarkStyle::Baseline,
                ..PlotMark::from_point("", u)
            });
        }
    }
    if let Some(u) = &d.uniform16 {
        marks.push(PlotMark::from_point("uniform 16-bit", u));
    }
    if exact.front.kind == fr::FrontKind::EnergyCycles {
        if let Some(p) = fr::min_edp(&exact.front) {
            marks.push(PlotMark {
                style: MarkStyle::Chosen,
                ..PlotMark::from_point(
                    if exact.front.complete {
                        "min EDP"
                    } else {
                        "min EDP (of the points traced)"
                    },
                    p,
                )
            });
        }
    }
    for ((tolerance, p), h) in d.headline.iter().zip(&report.headline) {
        if *tolerance == 0.0 {
            continue; // the uniform 8-bit design itself, or a point near it
        }
        let label = format!(
            "-{:.0}% energy within {tolerance} pt",
            h.energy_saved_vs_uniform_8bit_percent
        );
        marks.push(PlotMark {
            style: MarkStyle::Chosen,
            ..PlotMark::from_point(label, p)
        });
    }
    marks
}
