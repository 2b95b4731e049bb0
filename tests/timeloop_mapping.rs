//! Timeloop mappings in and out (`src/timeloop.rs`):
//! 1. the mappings Timeloop printed (map.txt, the loop nests of stats.txt), imported and
//!    evaluated, reproduce the stats.txt that printed them: the three exercises' mapper outputs,
//!    the seed's simple_2d_conv (three bit-width variants) and the seed's MobileNet layer-2 runs;
//! 2. export → `load_mapping` gives back the same mapping and the same evaluation on the 62
//!    generated cases, the three exercises and the printed mappings, and export is a fixed point;
//!    the exported problem reads back as the same problem and bit-widths;
//! 3. bad loop nests give an error naming the file and the line, never a panic (no reference
//!    needed).

mod common;

use qmap::eval::{evaluate, Evaluation};
use qmap::model::*;
use qmap::spec::{InputError, PackingMode};
use qmap::timeloop::{
    apply_bypass_constraints, export_mapping, export_problem, load_arch, load_loop_nest_text,
    load_mapping, load_mapping_any, load_problem, timeloop_export_issues,
};
use std::collections::HashMap;
use std::path::Path;

use common::design::{ARCH, MAP_TXT, PROBLEM, STATS_TXT};
use common::timeloop_stats::*;

const EXERCISES: [&str; 3] = ["eyeriss_like", "simba_like", "simple_weight_stationary"];

/// Both evaluations as JSON (every number qmap reports).
fn same_evaluation(a: &Evaluation, b: &Evaluation) -> bool {
    serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
}

/// Export → load_mapping gives back `m` and its evaluation, and export is a fixed point.
/// Returns the differences.
fn check_export(
    t: &TempDir,
    name: &str,
    m: &Mapping,
    arch: &Arch,
    p: &Problem,
    o: &ModelOptions,
) -> Vec<String> {
    let mut errs = Vec::new();
    let issues = timeloop_export_issues(m, arch, p);
    if !issues.is_empty() {
        errs.push(format!("export issues: {issues:?}"));
    }
    let text = export_mapping(m, arch, p);
    let path = t.file(&format!("{name}.map.yaml"), &text);
    let back = match load_mapping(&path, arch, p) {
        Ok(back) => back,
        Err(e) => return vec![format!("exported mapping does not load: {e}\n{text}")],
    };
    if &back != m {
        errs.push(format!("reloaded mapping differs:\n{m:?}\nvs\n{back:?}"));
    }
    if !same_evaluation(&evaluate(p, arch, m, o), &evaluate(p, arch, &back, o)) {
        errs.push("reloaded mapping evaluates differently".into());
    }
    if export_mapping(&back, arch, p) != text {
        errs.push("export is not a fixed point".into());
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// 1. Printed mappings reproduce the stats that printed them
// ---------------------------------------------------------------------------------------------

#[test]
fn exercise_mapper_outputs_reproduce_their_stats() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut failures = Vec::new();
    let mut blocks = 0;
    for (design, energy, cycles) in [
        ("eyeriss_like", 59_259_828.70, 86_016),
        ("simba_like", 237_411_436.28, 225_792),
        ("simple_weight_stationary", 151_652_275.20, 903_168),
    ] {
        let ex = dir.join("timeloop_exercises").join(design);
        let arch = load_arch(&ex.join("arch.yaml"), Some(&ex.join("ERT.yaml"))).unwrap();
        let (p, bits) = load_problem(&ex.join("problem.yaml")).unwrap();
        let map_txt = ex.join("ref-timeloop-mapper.map.txt");
        let m = load_loop_nest_text(&map_txt, &arch, &p).unwrap();
        // The same file through the dispatcher, and the exercise's directory (no `*.map.yaml`
        // there: the map.txt wins over the stats.txt).
        assert_eq!(load_mapping_any(&map_txt, &arch, &p).unwrap(), m);
        assert_eq!(load_mapping_any(&ex, &arch, &p).unwrap(), m);
        // Here the exercise's map.yaml is the mapping the mapper printed, to the loop order.
        assert_eq!(
            load_mapping(&ex.join("map.yaml"), &arch, &p).unwrap(),
            m,
            "{design}"
        );
        let ev = evaluate(&p, &arch, &m, &opts(&p, &bits));
        assert!(ev.valid, "{design}: {:?}", ev.invalid);
        let text = std::fs::read_to_string(ex.join("ref-timeloop-mapper.stats.txt")).unwrap();
        let (mut errs, n) =
            compare_with_stats(&ev, &parse_stats(&text), Some(&arch.mac.name), true);
        blocks += n;
        if summary_cycles(&text) != ev.cycles {
            errs.push(format!(
                "cycles: want {} got {}",
                summary_cycles(&text),
                ev.cycles
            ));
        }
        // The exercises' stats.txt leave out the dummy levels, whose spatial loops carry part
        // of the mapping: importing them says so and points to the map.txt.
        let stats_txt = ex.join("ref-timeloop-mapper.stats.txt");
        match load_loop_nest_text(&stats_txt, &arch, &p) {
            Ok(_) => errs.push("stats.txt without its dummy levels imported".into()),
            Err(e) => {
                let e = e.to_string();
                let dummies: Vec<&str> = arch
                    .levels
                    .iter()
                    .filter(|l| l.dummy)
                    .map(|l| l.name.as_str())
                    .collect();
                if !(e.contains("ref-timeloop-mapper.stats.txt: (document): the loops over")
                    && e.contains(&dummies.join(", "))
                    && e.contains("import the map.txt"))
                {
                    errs.push(format!("stats.txt error: {e}"));
                }
            }
        }
        // Timeloop v3.0.3's dynamic energy and cycles (reference/README.md).
        if common::rel_diff(energy, ev.energy_pj) > 1e-9 || cycles != ev.cycles {
            errs.push(format!(
                "total: want {energy} pJ / {cycles} cycles, got {} / {}",
                ev.energy_pj, ev.cycles
            ));
        }
        if !errs.is_empty() {
            failures.push(format!("{design}:\n    {}", errs.join("\n    ")));
        }
    }
    assert_eq!(blocks, 8 + 9 + 10, "tensor blocks compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_simple_2d_conv_printed_mappings_reproduce_their_stats() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut failures = Vec::new();
    for variant in ["native", "same_quantization", "different_quantization"] {
        let d = dir.join("seed_toolchain/simple_2d_conv").join(variant);
        let arch = load_arch(
            &d.join("1level.arch.yaml"),
            Some(&d.join("timeloop-model.ERT.yaml")),
        )
        .unwrap();
        let (p, bits) = load_problem(&d.join("cnn-layer.prob.yaml")).unwrap();
        let from_map = load_loop_nest_text(&d.join("timeloop-model.map.txt"), &arch, &p).unwrap();
        let from_stats =
            load_loop_nest_text(&d.join("timeloop-model.stats.txt"), &arch, &p).unwrap();
        // Both print the same nest, and it is the one of the map.yaml it was run with.
        assert_eq!(from_map, from_stats, "{variant}");
        let given = load_mapping(&d.join("conv-1level.yaml"), &arch, &p).unwrap();
        let dims = |m: &Mapping| -> Vec<(String, u64)> {
            m.levels[0]
                .temporal
                .iter()
                .filter(|l| l.factor > 1)
                .map(|l| (p.dims[l.dim].clone(), l.factor))
                .collect()
        };
        assert_eq!(dims(&from_map), dims(&given), "{variant}");
        assert_eq!(
            dims(&from_map),
            [("Q", 4), ("P", 4), ("R", 3), ("S", 3)].map(|(d, f)| (d.to_string(), f))
        );
        // The map.txt is found in the run's directory (no map.yaml there).
        assert_eq!(load_mapping_any(&d, &arch, &p).unwrap(), from_map);
        let ev = evaluate(&p, &arch, &from_map, &opts(&p, &bits));
        assert!(ev.valid, "{variant}: {:?}", ev.invalid);
        let text = std::fs::read_to_string(d.join("timeloop-model.stats.txt")).unwrap();
        let (mut errs, n) =
            compare_with_stats(&ev, &parse_stats(&text), Some(&arch.mac.name), true);
        assert_eq!(n, 3);
        if summary_cycles(&text) != ev.cycles {
            errs.push(format!("cycles: want {}", summary_cycles(&text)));
        }
        if !errs.is_empty() {
            failures.push(format!("{variant}:\n    {}", errs.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// MobileNet layer 2 (C32 M32 P112 Q112 R3 S3, stride 1: the same row in the seed's v1 and v2
/// lists) as the seed's pipeline ran it.
fn mobilenet_layer2(dir: &Path) -> Problem {
    let net: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("seed_toolchain/mobilenetv2.yaml")).unwrap(),
    )
    .unwrap();
    let row: Vec<u64> = net["layers"][1]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // [W, H, C, N, M, S, R, Wpad, Hpad, Wstride, Hstride]
    let [w, h, c, n, m, s, r, wp, hp, ws, hs] = row[..] else {
        panic!("row {row:?}")
    };
    let p = (w + 2 * wp - r) / ws + 1;
    let q = (h + 2 * hp - s) / hs + 1;
    conv_problem(
        "mobilenet_layer2",
        false,
        [n, m, c, p, q, r, s],
        [ws, hs, 1, 1],
    )
}

#[test]
fn seed_mobilenet_stats_loop_nests_reproduce_their_counts() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let seed = dir.join("seed_toolchain");
    let p = mobilenet_layer2(&dir);
    assert_eq!(p.bounds, [1, 32, 32, 112, 112, 3, 3]);
    let mut failures = Vec::new();
    let mut blocks = 0;
    // The seed fork: weights 4 / activations 8 bits packed into 16-bit words, or native; one
    // extra Outputs fill per element at inner levels (seed_compat). No ERT ships with these
    // runs, so energies are not compared.
    //
    // simba_native slides the Inputs window across the wrap-around of GlobalBuffer's Q2 inside
    // DRAM's Q28: PEInputBuffer fills 109,440 = 960 + 2 × 27 × 480 + 55 × 480 + ... as
    // Timeloop's extrapolated walk counts them (the step of Q28 moves the tile by two Q2 steps,
    // one more than Q2's own move after it wraps: docs/model.md), not the 161,280 of reloading
    // the whole 960-word tile at every wrap-around.
    let simba_native_known: [&str; 0] = [];
    for (arch_file, stats_file, bits, known) in [
        (
            "eyeriss_like",
            "eyeriss_16bit_act8_weights4_layer2.stats.txt",
            Some([4, 8, 8]),
            &[][..],
        ),
        (
            "simba_like",
            "simba_16bit_act8_weights4_layer2.stats.txt",
            Some([4, 8, 8]),
            &[][..],
        ),
        (
            "simba_like",
            "simba_native_layer2.stats.txt",
            None,
            &simba_native_known[..],
        ),
    ] {
        let mut arch = load_arch(&seed.join(format!("{arch_file}.yaml")), None).unwrap();
        apply_bypass_constraints(
            &mut arch,
            &seed.join(format!("{arch_file}_arch_constraints.yaml")),
        )
        .unwrap();
        let path = seed.join("mobilenet_stats").join(stats_file);
        let m = load_loop_nest_text(&path, &arch, &p).unwrap();
        let o = ModelOptions {
            bits: bits.map(|b| Bits(b.to_vec())),
            packing: PackingMode::Seed,
            seed_compat: true,
            ..Default::default()
        };
        let ev = evaluate(&p, &arch, &m, &o);
        assert!(ev.valid, "{stats_file}: {:?}", ev.invalid);
        let text = std::fs::read_to_string(&path).unwrap();
        let (mut errs, n) =
            compare_with_stats(&ev, &parse_stats(&text), Some(&arch.mac.name), false);
        blocks += n;
        if summary_cycles(&text) != ev.cycles {
            errs.push(format!(
                "cycles: want {} got {}",
                summary_cycles(&text),
                ev.cycles
            ));
        }
        if errs != known {
            failures.push(format!("{stats_file}:\n    {}", errs.join("\n    ")));
        }
    }
    assert_eq!(blocks, 8 + 9 + 9, "tensor blocks compared");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 2. Export round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn export_round_trips_on_every_reference_mapping() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let t = TempDir::new("export");
    let text = std::fs::read_to_string(dir.join("timeloop_generated/cases.jsonl")).unwrap();
    let mut archs: HashMap<String, Arch> = HashMap::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let rec: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = rec["id"].as_str().unwrap().to_string();
        let design = rec["design"].as_str().unwrap().to_string();
        let arch = archs
            .entry(design.clone())
            .or_insert_with(|| exercise_arch(&dir, &design));
        let case = dir.join("timeloop_generated/cases").join(&id);
        let (p, bits) = load_problem(&case.join("problem.yaml")).unwrap();
        let m = load_mapping(&case.join("map.yaml"), arch, &p).unwrap();
        let mut errs = check_export(&t, &id, &m, arch, &p, &opts(&p, &bits));
        // The problem file too: same problem, same bit-widths.
        let pfile = t.file(
            &format!("{id}.problem.yaml"),
            &export_problem(&p, bits_of(&p, &bits).as_ref()),
        );
        match load_problem(&pfile) {
            Ok((p2, bits2)) if p2 == p && bits2 == bits => {}
            other => errs.push(format!("exported problem reads back as {other:?}")),
        }
        checked += 1;
        if !errs.is_empty() {
            failures.push(format!("{id}:\n    {}", errs.join("\n    ")));
        }
    }
    assert_eq!(checked, 62);
    for design in EXERCISES {
        let ex = dir.join("timeloop_exercises").join(design);
        let arch = load_arch(&ex.join("arch.yaml"), Some(&ex.join("ERT.yaml"))).unwrap();
        let (p, bits) = load_problem(&ex.join("problem.yaml")).unwrap();
        for (what, m) in [
            (
                "map.yaml",
                load_mapping(&ex.join("map.yaml"), &arch, &p).unwrap(),
            ),
            (
                "map.txt",
                load_loop_nest_text(&ex.join("ref-timeloop-mapper.map.txt"), &arch, &p).unwrap(),
            ),
        ] {
            let errs = check_export(
                &t,
                &format!("{design}-{what}"),
                &m,
                &arch,
                &p,
                &opts(&p, &bits),
            );
            if !errs.is_empty() {
                failures.push(format!("{design} {what}:\n    {}", errs.join("\n    ")));
            }
        }
        // The exercise's own map.yaml spells the same permutations (innermost first, factor-1
        // dims after the others) as the export.
        let exported = export_mapping(
            &load_mapping(&ex.join("map.yaml"), &arch, &p).unwrap(),
            &arch,
            &p,
        );
        let theirs = std::fs::read_to_string(ex.join("map.yaml")).unwrap();
        let perms = |s: &str| -> Vec<String> {
            s.lines()
                .filter_map(|l| l.trim().strip_prefix("permutation: "))
                .map(str::to_string)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        assert_eq!(perms(&exported), perms(&theirs), "{design}");
        let pfile = t.file(&format!("{design}.problem.yaml"), &export_problem(&p, None));
        assert_eq!(load_problem(&pfile).unwrap(), (p, None), "{design}");
    }
    assert!(
        failures.is_empty(),
        "{} mappings differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A small design without the reference: the formats, the dispatcher, the errors
// ---------------------------------------------------------------------------------------------

fn small_design(t: &TempDir) -> (Arch, Problem) {
    let arch = load_arch(&t.file("arch.yaml", ARCH), None).unwrap();
    let (p, _) = load_problem(&t.file("prob.yaml", PROBLEM)).unwrap();
    (arch, p)
}

fn lp(p: &Problem, dim: &str, factor: u64) -> Loop {
    Loop {
        dim: p.dim_index(dim).unwrap(),
        factor,
    }
}

/// Temporal loops as the importers give them: every dim, the unlisted ones outermost with
/// factor 1.
fn temporal(p: &Problem, loops: &[(&str, u64)]) -> Vec<Loop> {
    let mut out: Vec<Loop> = loops.iter().map(|(d, f)| lp(p, d, *f)).collect();
    for d in &p.dims {
        if !loops.iter().any(|(x, _)| x == d) {
            out.push(lp(p, d, 1));
        }
    }
    out
}

fn err_text(r: Result<Mapping, InputError>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn small_loop_nests_import_and_dispatch() {
    let t = TempDir::new("small");
    let (arch, p) = small_design(&t);
    let names: Vec<&str> = arch.levels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["buf", "column", "DRAM"]);
    assert_eq!(
        (arch.fanout(0), arch.fanout(1), arch.fanout(2)),
        ((1, 1), (1, 2), (2, 1))
    );
    let m = load_loop_nest_text(&t.file("run.map.txt", MAP_TXT), &arch, &p).unwrap();
    let want = Mapping {
        levels: vec![
            LevelMapping {
                temporal: temporal(&p, &[("N", 2), ("K", 2)]),
                keep: vec![false, false, true],
                ..Default::default()
            },
            LevelMapping {
                temporal: temporal(&p, &[]),
                spatial_y: vec![lp(&p, "K", 2)],
                keep: vec![false; 3],
                ..Default::default()
            },
            LevelMapping {
                temporal: temporal(&p, &[("K", 2)]),
                spatial_x: vec![lp(&p, "N", 2)],
                keep: vec![true; 3],
                ..Default::default()
            },
        ],
    };
    assert_eq!(m, want);
    let ev = evaluate(&p, &arch, &m, &ModelOptions::default());
    assert!(ev.valid, "{:?}", ev.invalid);
    // The stats.txt leaves the dummy level out, and with it the spatial K2.
    let e = err_text(load_loop_nest_text(
        &t.file("run.stats.txt", STATS_TXT),
        &arch,
        &p,
    ));
    assert!(
        e.contains("run.stats.txt: (document): the loops over K multiply to 4, not to its bound 8")
            && e.contains("leaves out column"),
        "{e}"
    );
    // Without that spatial loop it imports, and agrees with the map.txt where both print.
    let no_k = MAP_TXT
        .replace("|     for K in [0:2) (Spatial-Y)", "")
        .replace(
            "K in [0:2)\n|   for N in [0:2) (Spatial-X)",
            "K in [0:4)\n|   for N in [0:2) (Spatial-X)",
        );
    let m1 = load_loop_nest_text(&t.file("nok.map.txt", &no_k), &arch, &p).unwrap();
    let m2 = load_loop_nest_text(
        &t.file(
            "nok.stats.txt",
            &STATS_TXT.replace(
                "for K in [0:2)\n        for N in [0:2) (Spatial-X)",
                "for K in [0:4)\n        for N in [0:2) (Spatial-X)",
            ),
        ),
        &arch,
        &p,
    )
    .unwrap();
    assert_eq!(m1, m2);
    assert_eq!(m1.levels[2].temporal, temporal(&p, &[("K", 4)]));

    // Export: a dummy level keeps nothing, spatial entries only where there is a fanout.
    let yaml = export_mapping(&m, &arch, &p);
    assert_eq!(
        yaml,
        "mapping:
  - target: buf
    type: bypass
    keep: [y]
    bypass: [A, x]
  - target: buf
    type: temporal
    factors: K=2 N=2
    permutation: NK
  - target: column
    type: bypass
    keep: []
    bypass: [A, x, y]
  - target: column
    type: temporal
    factors: K=1 N=1
    permutation: KN
  - target: column
    type: spatial
    factors: K=2 N=1
    permutation: KN
    split: 0
  - target: DRAM
    type: bypass
    keep: [A, x, y]
    bypass: []
  - target: DRAM
    type: temporal
    factors: K=2 N=1
    permutation: KN
  - target: DRAM
    type: spatial
    factors: K=1 N=2
    permutation: NK
    split: 1
"
    );
    assert!(timeloop_export_issues(&m, &arch, &p).is_empty());

    // The dispatcher: by extension, by content, and in a directory map.yaml > map.txt > stats.
    let run = TempDir::new("run");
    run.file(
        "timeloop-mapper.stats.txt",
        &STATS_TXT.replace(
            "for K in [0:2)\n        for N in [0:2) (Spatial-X)",
            "for K in [0:4)\n        for N in [0:2) (Spatial-X)",
        ),
    );
    assert_eq!(load_mapping_any(&run.0, &arch, &p).unwrap(), m2);
    run.file("timeloop-mapper.map.txt", MAP_TXT);
    assert_eq!(load_mapping_any(&run.0, &arch, &p).unwrap(), m);
    run.file("timeloop-mapper.map.yaml", &export_mapping(&m1, &arch, &p));
    assert_eq!(load_mapping_any(&run.0, &arch, &p).unwrap(), m1);
    run.file("other.map.yaml", "mapping: []\n");
    assert_eq!(load_mapping_any(&run.0, &arch, &p).unwrap(), m1);
    assert_eq!(
        load_mapping_any(&t.file("nest", MAP_TXT), &arch, &p).unwrap(),
        m
    );
    assert_eq!(
        load_mapping_any(&t.file("mapping", &yaml), &arch, &p).unwrap(),
        m
    );
    let empty = TempDir::new("empty");
    let e = load_mapping_any(&empty.0, &arch, &p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no *.map.yaml, *.map.txt or *.stats.txt"), "{e}");
    empty.file("a.map.txt", MAP_TXT);
    empty.file("b.map.txt", MAP_TXT);
    let e = load_mapping_any(&empty.0, &arch, &p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("several *.map.txt files (a.map.txt, b.map.txt)"),
        "{e}"
    );

    // A dimension split over X and Y at one level has no Timeloop spelling: reported.
    let mut split = m.clone();
    split.levels[2].spatial_x.push(lp(&p, "N", 1));
    assert!(timeloop_export_issues(&split, &arch, &p).is_empty());
    split.levels[1].spatial_x.push(lp(&p, "K", 2));
    let issues = timeloop_export_issues(&split, &arch, &p);
    assert!(
        issues
            .iter()
            .any(|i| i.contains("column: dimension K is split over X and Y")),
        "{issues:?}"
    );
}

#[test]
fn bad_loop_nests_name_the_file_and_line() {
    let t = TempDir::new("bad");
    let (arch, p) = small_design(&t);
    let cases: [(&str, &str, &str, &str); 11] = [
        (
            "|         for N in [0:2)",
            "|         for K in [0:2)",
            "line 14",
            "a second temporal loop over K at buf",
        ),
        (
            "|   for N in [0:2) (Spatial-X)",
            "|   for N in [0:x) (Spatial-X)",
            "line 5",
            "`x` is not a positive loop bound",
        ),
        (
            "|   for N in [0:2) (Spatial-X)",
            "|   for Z in [0:2) (Spatial-X)",
            "line 5",
            "unknown dimension `Z` (dims: K N)",
        ),
        (
            "|   for N in [0:2) (Spatial-X)",
            "|   for N in [0:2) (Spatial-Z)",
            "line 5",
            "expected nothing, `(Spatial-X)` or `(Spatial-Y)`",
        ),
        (
            "|   for N in [0:2) (Spatial-X)",
            "|   for N in [1:2) (Spatial-X)",
            "line 5",
            "loops must start at 0",
        ),
        (
            "|   for N in [0:2) (Spatial-X)",
            "|   for N in [0:2,1) (Spatial-X)",
            "line 5",
            "residual loop bounds",
        ),
        (
            "|   for N in [0:2) (Spatial-X)",
            "|   fore N",
            "line 5",
            "expected a level header",
        ),
        (
            "column [ ]",
            "glb [ ]",
            "line 7",
            "unknown level `glb` (levels: buf, column, DRAM)",
        ),
        (
            "buf [ y:2 (2) ]",
            "buf [ z:2 (2) ]",
            "line 11",
            "unknown data space `z` (data spaces: A, x, y)",
        ),
        (
            "|         for N in [0:2)",
            "|         for N in [0:2) (Spatial-X)",
            "line 14",
            "spatial loop at buf, which has no spatial fanout",
        ),
        (
            "|           << Compute >>",
            "|           << Compute >>\nDRAM [ ]",
            "line 16",
            "text after `<< Compute >>` (line 15)",
        ),
    ];
    for (from, to, line, msg) in cases {
        assert!(MAP_TXT.contains(from), "{from}");
        let e = err_text(load_loop_nest_text(
            &t.file("bad.map.txt", &MAP_TXT.replacen(from, to, 1)),
            &arch,
            &p,
        ));
        assert!(
            e.contains(&format!("bad.map.txt: {line}: ")) && e.contains(msg),
            "{from} → {to}: {e}"
        );
    }
    // Levels out of order, a loop before any header, a product that misses the bound.
    let swapped = MAP_TXT.replacen("column [ ]", "buf [ ]", 1);
    let e = err_text(load_loop_nest_text(
        &t.file("order.map.txt", &swapped),
        &arch,
        &p,
    ));
    assert!(
        e.contains("order.map.txt: line 11: level `buf` printed after `buf`"),
        "{e}"
    );
    let e = err_text(load_loop_nest_text(
        &t.file("early.map.txt", "| for K in [0:8)\n"),
        &arch,
        &p,
    ));
    assert!(
        e.contains("early.map.txt: line 1: a loop before the first level header"),
        "{e}"
    );
    let short = MAP_TXT.replacen("for K in [0:2)\n|   for N", "for K in [0:1)\n|   for N", 1);
    let e = err_text(load_loop_nest_text(
        &t.file("short.map.txt", &short),
        &arch,
        &p,
    ));
    assert!(
        e.contains("short.map.txt: (document): the loops over K multiply to 4, not to its bound 8"),
        "{e}"
    );
    // A non-dummy level missing.
    let e = err_text(load_loop_nest_text(
        &t.file(
            "nobuf.map.txt",
            &MAP_TXT.replacen("buf [ y:2 (2) ] ", "", 1),
        ),
        &arch,
        &p,
    ));
    assert!(e.contains("level `buf` is not in the loop nest"), "{e}");
    // stats.txt: unknown level, bad loop, unknown tensor block.
    for (from, to, line, msg) in [
        (
            "=== buf ===",
            "=== glb ===",
            "line 13",
            "unknown level `glb`",
        ),
        (
            "      for K in [0:2)\n        for N in [0:2)\n",
            "      for K in [0:2)\n        for W in [0:2)\n",
            "line 19",
            "unknown dimension `W`",
        ),
        (
            "    y:\n        Partition size                           : 2",
            "    z:\n",
            "line 24",
            "unknown data space `z`",
        ),
    ] {
        let e = err_text(load_loop_nest_text(
            &t.file("bad.stats.txt", &STATS_TXT.replacen(from, to, 1)),
            &arch,
            &p,
        ));
        assert!(
            e.contains(&format!("bad.stats.txt: {line}: ")) && e.contains(msg),
            "{to}: {e}"
        );
    }
    let e = err_text(load_loop_nest_text(
        &t.file("none.txt", "hello\n"),
        &arch,
        &p,
    ));
    assert!(
        e.contains("none.txt: line 1: `hello`: expected a level header"),
        "{e}"
    );
    let e = err_text(load_loop_nest_text(&t.file("blank.txt", "\n\n"), &arch, &p));
    assert!(e.contains("blank.txt: (document): no loop nest"), "{e}");
    let e = err_text(load_loop_nest_text(&t.0.join("missing.map.txt"), &arch, &p));
    assert!(e.contains("missing.map.txt: (file): cannot read"), "{e}");
}

/// Every single-line deletion and every numeric token replaced by odd values: errors or a
/// mapping, never a panic.
#[test]
fn mutated_loop_nests_never_panic() {
    let t = TempDir::new("mut");
    let (arch, p) = small_design(&t);
    let mut variants: Vec<String> = Vec::new();
    for base in [MAP_TXT, STATS_TXT] {
        let lines: Vec<&str> = base.lines().collect();
        for i in 0..lines.len() {
            let mut l = lines.clone();
            l.remove(i);
            variants.push(l.join("\n"));
        }
        for (i, c) in base.char_indices() {
            if c.is_ascii_digit() || "[]():|".contains(c) {
                for rep in ["0", "18446744073709551616", "", "-", "[", ")"] {
                    variants.push(format!("{}{rep}{}", &base[..i], &base[i + 1..]));
                }
            }
        }
    }
    for (n, text) in variants.iter().enumerate() {
        let path = t.file("v.txt", text);
        let r = std::panic::catch_unwind(|| {
            if let Ok(m) = load_loop_nest_text(&path, &arch, &p) {
                let _ = evaluate(&p, &arch, &m, &ModelOptions::default());
                let _ = export_mapping(&m, &arch, &p);
            }
        });
        assert!(r.is_ok(), "variant {n} panicked:\n{text}");
    }
}
