//! The report's JSON is what `qmap front --json` printed when it was built with `json!`
//! literals (keys in alphabetical order at every level, mappings included): the same text for
//! the same numbers. (`tests/front_cli.rs` checks that real runs print key-sorted JSON.)

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
        stopped: (!full).then(|| Stopped {
            reason: crate::front::StopReason::PointBudget,
            explanation: "stopped after 2 points".into(),
            last: LastPoint {
                accuracy: Some(69.5),
                energy_pj: Some(1.5),
                memory_bytes: Some(1536.125),
                cycles: Some(1234567),
            },
        }),
        headline: if full {
            vec![Headline {
                accuracy: 70.25,
                accuracy_tolerance: 0.5,
                cycles: 99,
                energy_pj: 3.5,
                energy_saved_vs_uniform_8bit_percent: 12.5,
                energy_saved_vs_uniform_8bit_random_search_percent: Some(20.0),
                memory_bytes: 1024.0,
                memory_saved_vs_uniform_8bit_percent: 30.0,
                weight_bits: vec![(4, 1), (8, 1)],
            }]
        } else {
            vec![]
        },
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
        latency_budget: None,
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
        baselines: Baselines {
            uniform_16bit: some(design(4.0, PointStatus::Evaluated, false)),
            uniform_8bit: some(design(3.0, PointStatus::Evaluated, true)),
            uniform_8bit_random_search_cycles: full.then_some(12345678),
            uniform_8bit_random_search_pj: full.then_some(3201548633.033),
        },
        workload: "mobilenet_v1".into(),
        verification: None,
        work: Work {
            nsga2_evaluations: full.then_some(260),
            ..Work::default()
        },
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
        "stopped": r.stopped.as_ref().map(|s| json!({
            "reason": s.reason,
            "explanation": s.explanation,
            "last_accuracy": s.last.accuracy,
            "last_energy_pj": s.last.energy_pj,
            "last_memory_bytes": s.last.memory_bytes,
            "last_cycles": s.last.cycles,
        })),
        "headline": r.headline.iter().map(|h| json!({
            "accuracy": h.accuracy,
            "accuracy_tolerance": h.accuracy_tolerance,
            "cycles": h.cycles,
            "energy_pj": h.energy_pj,
            "energy_saved_vs_uniform_8bit_percent": h.energy_saved_vs_uniform_8bit_percent,
            "energy_saved_vs_uniform_8bit_random_search_percent": h.energy_saved_vs_uniform_8bit_random_search_percent,
            "memory_bytes": h.memory_bytes,
            "memory_saved_vs_uniform_8bit_percent": h.memory_saved_vs_uniform_8bit_percent,
            "weight_bits": h.weight_bits,
        })).collect::<Vec<_>>(),
        "points": r.points.iter().map(point_json).collect::<Vec<_>>(),
        "uniform_8bit": r.baselines.uniform_8bit.as_ref().map(point_json),
        "uniform_16bit": r.baselines.uniform_16bit.as_ref().map(point_json),
        "uniform_8bit_random_search_cycles": r.baselines.uniform_8bit_random_search_cycles,
        "uniform_8bit_random_search_pj": r.baselines.uniform_8bit_random_search_pj,
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
