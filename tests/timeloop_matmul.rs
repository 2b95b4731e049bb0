//! Matmul layers (two activation operands; the second in the Weights tensor's place, with the
//! N rank) against Timeloop v3.0.3: two designs qmap exported (`qmap export --timeloop-dir`:
//! the proven optimum of BERT-base's `scores` (Q K^T, 12 heads) on the Eyeriss-like design and
//! a random mapping of `context` (softmax(.) V) on the Simba-like one, native word widths), run
//! through `timeloop-model` (v3.0.3) and kept with its `timeloop-model.stats.txt` under
//! `tests/data/timeloop_matmul/`. Every per-level × tensor count must be exact, the energies
//! within 0.005 pJ, the cycles exact; the exported problem is the one qmap builds.

mod common;

use common::timeloop_stats::*;
use qmap::model::matmul_problem;
use qmap::timeloop::load_problem;
use std::path::PathBuf;

#[test]
fn matmuls_reproduce_timeloop() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/timeloop_matmul");
    let cases = [
        ("opt", [12, 128, 64, 128], 196_608),
        ("random", [12, 64, 128, 128], 786_432),
    ];
    let mut blocks = 0;
    for (name, bounds, cycles) in cases {
        let d = root.join(name);
        let (p, _) = load_problem(&d.join("problem.yaml")).unwrap();
        blocks += check_exported_design(&d, &matmul_problem(&p.name, bounds), cycles);
    }
    assert!(blocks >= 8, "{blocks} blocks");
}
