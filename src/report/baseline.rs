//! The terminal text of `qmap baseline`: what was proved and written, the infeasible layers
//! and the entries not proven optimal.

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
