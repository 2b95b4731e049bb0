//! Grouped convolutions (`groups` on a conv2d layer) against Timeloop v3.0.3: three designs
//! qmap exported (`qmap export --timeloop-dir`: a proven optimum and a random mapping of a
//! 4-group 3x3 conv on the Eyeriss-like design, and a random mapping of a 2-group stride-2 conv
//! on the Simba-like one), run through `timeloop-model` (v3.0.3, built from source) and kept
//! with its `timeloop-model.stats.txt` under `tests/data/timeloop_grouped/`. Every per-level ×
//! tensor count must be exact, the energies within 0.005 pJ, the cycles exact; the exported
//! problem is the one qmap builds from the layer spec.

mod common;

use common::timeloop_stats::*;
use qmap::model::grouped_problem;
use qmap::timeloop::load_problem;
use std::path::PathBuf;

#[test]
fn grouped_convs_reproduce_timeloop() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/timeloop_grouped");
    let cases = [
        ("opt", [1, 4, 16, 8, 14, 14, 3, 3], [1, 1, 1, 1], 75_264),
        ("random", [1, 4, 16, 8, 14, 14, 3, 3], [1, 1, 1, 1], 21_504),
        ("simba_s2", [1, 2, 4, 8, 7, 7, 3, 3], [2, 2, 1, 1], 3_528),
    ];
    let mut blocks = 0;
    for (name, bounds, coef, cycles) in cases {
        let d = root.join(name);
        let (p, _) = load_problem(&d.join("problem.yaml")).unwrap();
        let n = check_exported_design(&d, &grouped_problem(&p.name, bounds, coef), cycles);
        blocks += n;
    }
    // Every kept (level, tensor) of the three designs was compared.
    assert!(blocks >= 18, "{blocks} blocks");
}
