//! Matmul layers (two activation operands; the second in the Weights tensor's place, with the
//! N rank) against Timeloop v3.0.3: two designs qmap exported (`qmap export --timeloop-dir`:
//! the proven optimum of BERT-base's `scores` (Q K^T, 12 heads) on the Eyeriss-like design and
//! a random mapping of `context` (softmax(.) V) on the Simba-like one, native word widths), run
//! through `timeloop-model` (v3.0.3) and kept with its `timeloop-model.stats.txt` under
//! `tests/data/timeloop_matmul/`. Every per-level × tensor count must be exact, the energies
//! within 0.005 pJ, the cycles exact; the exported problem is the one qmap builds.

mod common;

use common::timeloop_stats::*;
use qmap::eval::evaluate;
use qmap::model::matmul_problem;
use qmap::timeloop::{load_arch, load_mapping, load_problem};
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
        let arch = load_arch(&d.join("arch.yaml"), Some(&d.join("ERT.yaml"))).unwrap();
        let (p, bits) = load_problem(&d.join("problem.yaml")).unwrap();
        let built = matmul_problem(&p.name, bounds);
        assert_eq!((&p.dims, &p.bounds), (&built.dims, &built.bounds), "{name}");
        assert_eq!(
            format!("{:?}", p.tensors),
            format!("{:?}", built.tensors),
            "{name}"
        );
        let m = load_mapping(&d.join("map.yaml"), &arch, &p).unwrap();
        let ev = evaluate(&p, &arch, &m, &opts(&p, &bits));
        assert!(ev.valid, "{name}: {:?}", ev.invalid);
        let text = std::fs::read_to_string(d.join("timeloop-model.stats.txt")).unwrap();
        let (errs, n) = compare_with_stats(&ev, &parse_stats(&text), Some(&arch.mac.name), true);
        assert!(errs.is_empty(), "{name}: {errs:#?}");
        assert_eq!(
            (summary_cycles(&text), ev.cycles),
            (cycles, cycles),
            "{name}"
        );
        blocks += n;
    }
    assert!(blocks >= 8, "{blocks} blocks");
}
