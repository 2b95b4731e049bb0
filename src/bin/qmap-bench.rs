//! `make bench`: per-layer MILP solve time, the exhaustive/MILP time ratio where enumeration is
//! feasible, and the energy ratio MILP / random search (10,000 valid samples), on the full
//! declared mapspace of the shipped constrained instances (sizes printed, never shrunk).
//!
//! Usage: `qmap-bench [LAYER...]` (1-based MobileNetV2 layer indices; default a representative
//! set). Environment: `QMAP_BENCH_TIME_LIMIT` (seconds per MILP solve, default 60).

use qmap::mapspace::{Constraints, Mapspace};
use qmap::milp::{solve, SolveOptions, Status};
use qmap::search::{exhaustive, random};
use qmap::spec::Objective;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let layers: Vec<usize> = {
        let v: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![1, 2, 5, 6, 7, 52, 53]
        } else {
            v
        }
    };
    let limit: f64 = std::env::var("QMAP_BENCH_TIME_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60.0);
    println!("qmap bench — MobileNetV2 layers {layers:?}, 8-bit, seed constraints, MILP time limit {limit} s");
    println!(
        "{:<8} {:<10} {:>11} {:>10} {:>9} {:>12} {:>10} {:>12} {:>9}",
        "arch",
        "layer",
        "mapspace",
        "MILP s",
        "status",
        "MILP uJ",
        "exh. s",
        "random uJ",
        "MILP/rnd"
    );
    for arch in ["eyeriss", "simba"] {
        let inst_path = root.join(format!("instances/{arch}_mbv2_l7.yaml"));
        let mut inst = qmap::instance::load(&inst_path).expect("shipped instance loads");
        let mut times = vec![];
        for &l in &layers {
            inst.selected = l - 1;
            let problem = inst.layer().problem.clone();
            let mut cons = Constraints::new(&inst.arch);
            cons.add_file(
                &root.join(format!("models/arch/{arch}_constraints.yaml")),
                &inst.arch,
            )
            .expect("shipped constraints load");
            let space = Mapspace::new(&problem, &inst.arch, &cons).expect("mapspace");
            let opts = inst.fixed_options(&problem);
            let t0 = Instant::now();
            let so = SolveOptions {
                time_limit: Some(limit),
                ..Default::default()
            };
            let cert = solve(&space, &opts, Objective::Energy, &so);
            let milp_s = t0.elapsed().as_secs_f64();
            times.push(milp_s);
            let (status, milp_uj) = match &cert {
                Ok(c) => (
                    match c.status {
                        Status::Optimal => "optimal",
                        Status::TimeLimit => "limit",
                        Status::Infeasible => "infeasible",
                    },
                    c.value / 1e6,
                ),
                Err(_) => ("error", f64::NAN),
            };
            let exh = if space.size() <= 5_000_000 {
                let t = Instant::now();
                let _ = exhaustive(&space, &opts, Objective::Energy, None);
                format!("{:.2}", t.elapsed().as_secs_f64())
            } else {
                "-".into()
            };
            let rnd = random(&space, &opts, Objective::Energy, 1, 10_000, None);
            println!(
                "{:<8} {:<10} {:>11.3e} {:>10.2} {:>9} {:>12.3} {:>10} {:>12.3} {:>9.4}",
                arch,
                inst.layer().name,
                space.size_f64(),
                milp_s,
                status,
                milp_uj,
                exh,
                rnd.value / 1e6,
                milp_uj / (rnd.value / 1e6)
            );
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{arch}: MILP time median {:.2} s, max {:.2} s over {} layers",
            times[times.len() / 2],
            times.last().unwrap(),
            times.len()
        );
    }
}
