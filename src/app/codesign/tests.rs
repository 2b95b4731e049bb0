//! The report's JSON is what `qmap front --json` printed when it was built with `json!`
//! literals (keys in alphabetical order at every level, mappings included): the same text for
//! the same numbers, and key-sorted on a real run.

use super::*;
use crate::front::PointStatus;

/// A mapping with every field of a level set, and one level with defaults.
fn mapping(level: &str, factor: u32) -> MappingSpec {
    serde_yaml_ng::from_str(&format!(
        "mapping:\n\
         - {{level: {level}, temporal: M{factor} C2, spatial_x: Q7, spatial_y: S3, keep: [Weights, Inputs]}}\n\
         - {{level: DRAM}}\n"
    ))
    .unwrap()
}

fn design(energy: f64, status: PointStatus, mapped: bool) -> Design {
    Design {
        accuracy: 70.0 - energy * 1e-3,
        cycles: 1234567,
        energy_pj: energy,
        layers: (0..2)
            .map(|i| LayerDesign {
                energy_pj: energy / 2.0 + i as f64,
                input_bits: 8 - i,
                mapping: (mapped || i == 0).then(|| mapping("GLB", 4 + i)),
                name: format!("l{i}"),
                output_bits: 4,
                weight_bits: 6 + i,
            })
            .collect(),
        memory_bytes: 1536.125,
        status,
    }
}

fn report(full: bool) -> FrontReport {
    let some = |d: Design| full.then_some(d);
    FrontReport {
        accuracy_model: "accuracy (proxy)",
        architecture: "eyeriss_like".into(),
        best_vs_uniform_8bit: some(design(3.5, PointStatus::Optimal, true)),
        comparison: "best point at least as accurate as uniform 8-bit: ...".into(),
        complete: full,
        front: if full {
            FrontKind::EnergyCycles
        } else {
            FrontKind::EnergyAccuracyMemory
        },
        front_seconds: 0.125,
        hypervolume: full.then_some(Hypervolumes {
            exact: 1.5e12,
            nsga2: 1.25e12,
        }),
        min_accuracy: full.then_some(68.585351562438),
        min_edp: some(design(2.0, PointStatus::Optimal, true)),
        nsga2: full.then(|| vec![design(9.0, PointStatus::Heuristic, false)]),
        nsga2_within_budgets: full.then_some(1),
        points: vec![
            design(1.0, PointStatus::Optimal, true),
            design(1.5, PointStatus::TimeLimit, false),
        ],
        table_entries_not_proven: 3,
        table_seconds: 12.75,
        uniform_16bit: some(design(4.0, PointStatus::Evaluated, false)),
        uniform_8bit: some(design(3.0, PointStatus::Evaluated, true)),
        uniform_8bit_random_search_pj: full.then_some(3201548633.033),
        workload: "mobilenet_v1".into(),
        table: TableSummary::default(),
        default_min_accuracy: true,
        front_solves: 7,
        nsga2_evaluations: full.then_some(260),
        cache_warnings: vec!["a warning is not in the JSON".into()],
    }
}

/// The JSON `qmap front --json` built before the report was a type: `json!` literals over the
/// same numbers.
fn as_json_literal(r: &FrontReport) -> serde_json::Value {
    use serde_json::json;
    let point_json = |p: &Design| {
        json!({
            "energy_pj": p.energy_pj,
            "accuracy": p.accuracy,
            "memory_bytes": p.memory_bytes,
            "cycles": p.cycles,
            "status": p.status,
            "layers": p.layers.iter().map(|l| json!({
                "name": l.name,
                "input_bits": l.input_bits,
                "weight_bits": l.weight_bits,
                "output_bits": l.output_bits,
                "energy_pj": l.energy_pj,
                "mapping": l.mapping.clone(),
            })).collect::<Vec<_>>(),
        })
    };
    json!({
        "workload": r.workload,
        "architecture": r.architecture,
        "front": format!("{:?}", r.front),
        "accuracy_model": r.accuracy_model,
        "complete": r.complete,
        "points": r.points.iter().map(point_json).collect::<Vec<_>>(),
        "uniform_8bit": r.uniform_8bit.as_ref().map(point_json),
        "uniform_16bit": r.uniform_16bit.as_ref().map(point_json),
        "uniform_8bit_random_search_pj": r.uniform_8bit_random_search_pj,
        "min_edp": r.min_edp.as_ref().map(point_json),
        "nsga2": r.nsga2.as_ref().map(|v| v.iter().map(point_json).collect::<Vec<_>>()),
        "nsga2_within_budgets": r.nsga2_within_budgets,
        "hypervolume": r.hypervolume.map(|h| json!({"exact": h.exact, "nsga2": h.nsga2})),
        "comparison": r.comparison,
        "min_accuracy": r.min_accuracy,
        "best_vs_uniform_8bit": r.best_vs_uniform_8bit.as_ref().map(point_json),
        "table_entries_not_proven": r.table_entries_not_proven,
        "table_seconds": r.table_seconds,
        "front_seconds": r.front_seconds,
    })
}

#[test]
fn the_report_prints_as_the_json_literals_did() {
    for full in [true, false] {
        let r = CodesignReport::Front(Box::new(report(full)));
        let CodesignReport::Front(f) = &r else {
            unreachable!()
        };
        let want = serde_json::to_string_pretty(&as_json_literal(f)).unwrap();
        assert_eq!(
            serde_json::to_string_pretty(&r).unwrap(),
            want,
            "full: {full}"
        );
    }
    let r = CodesignReport::Infeasible(InfeasibleNetwork {
        reason: "layer b: no mapping at any bit choice: why".into(),
        status: "infeasible",
        cache_warnings: vec![],
    });
    let want = serde_json::json!({"status": "infeasible", "reason": "layer b: no mapping at any bit choice: why"});
    assert_eq!(
        serde_json::to_string_pretty(&r).unwrap(),
        serde_json::to_string_pretty(&want).unwrap()
    );
}

/// A four-layer network on the shipped Eyeriss, bits {4, 8}, a proxy (as in `tests/front_cli.rs`).
fn small_instance(dir: &Path) -> std::path::PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        dir.join("acc.yaml"),
        "kind: proxy\nfull_precision_accuracy: 70.0\nsource: test proxy\nlayers:\n\
         \x20 - {name: l1, weight_sensitivity: 40, activation_sensitivity: 40}\n\
         \x20 - {name: l2, weight_sensitivity: 80, activation_sensitivity: 20}\n\
         \x20 - {name: l3, weight_sensitivity: 10, activation_sensitivity: 60}\n\
         \x20 - {name: l4, weight_sensitivity: 30, activation_sensitivity: 30}\n",
    )
    .unwrap();
    let inst = dir.join("inst.yaml");
    std::fs::write(
        &inst,
        format!(
            "architecture: {root}/models/arch/eyeriss.yaml\n\
             constraints: {root}/models/arch/eyeriss_constraints.yaml\n\
             workload:\n  network:\n    name: tiny\n    input: {{channels: 8, height: 14, width: 14}}\n    layers:\n\
             \x20     - {{name: l1, kind: conv2d, C: 8, M: 16, P: 14, Q: 14, R: 1, S: 1}}\n\
             \x20     - {{name: l2, kind: depthwise, G: 16, P: 14, Q: 14, R: 3, S: 3, pad: 1}}\n\
             \x20     - {{name: l3, kind: conv2d, C: 16, M: 8, P: 14, Q: 14, R: 1, S: 1}}\n\
             \x20     - {{name: l4, kind: fc, C: 1568, M: 10}}\n\
             bits: {{inputs: [4, 8], weights: [4, 8], outputs: [4, 8]}}\n\
             front: {{accuracy: acc.yaml}}\n"
        ),
    )
    .unwrap();
    inst
}

/// On a real run (every field set: NSGA-II, the energy × cycles front's minimum EDP, mappings)
/// the report's JSON has its keys in alphabetical order at every level, as a `json!` value
/// prints: re-serialising it through a `serde_json::Value` changes nothing.
#[test]
fn a_real_report_prints_key_sorted() {
    let dir = std::env::temp_dir().join(format!("qmap-codesign-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let inst = small_instance(&dir);
    let req = CodesignRequest {
        instance: &inst,
        kind: FrontKind::EnergyCycles,
        method: Method::Nsga2,
        max_points: 50,
        min_accuracy: None,
        accuracy_resolution: 1e-6,
        max_memory_bytes: None,
        seed: 1,
        csv: None,
        svg: None,
        settings: TableSettings {
            engine: crate::network::Engine::Auto,
            enumerate_limit: crate::network::ENUMERATE_LIMIT,
            time_limit: Some(120.0),
            cache_dir: None,
            progress: false,
        },
    };
    let r = run(&req).unwrap();
    let CodesignReport::Front(f) = &r else {
        panic!("a feasible network")
    };
    assert!(f.min_edp.is_some() && f.nsga2.is_some() && f.uniform_16bit.is_some());
    assert!(f
        .points
        .iter()
        .all(|p| p.layers.iter().all(|l| l.mapping.is_some())));
    let text = serde_json::to_string_pretty(&r).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(text, serde_json::to_string_pretty(&value).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}
