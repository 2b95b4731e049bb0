//! `make bench`: the figures the issues ask for, on this machine, on the full declared mapspace
//! of the shipped instances (sizes printed, never shrunk).
//!
//! * `layers`: per layer of MobileNetV1/V2 on Eyeriss and Simba at 8 bits, under the seed's
//!   mapspace constraints: mapspace size (mappings, and factorisations × keep patterns), MILP
//!   time and status, exhaustive time (the oracle, up to 3e6 mappings) and the exhaustive/MILP
//!   time ratio, bounded-enumeration time (every layer), the time of qmap's default engine
//!   (`auto`: bounded enumeration up to `ENUMERATE_LIMIT` factorisations × keep patterns; above,
//!   the enumeration for up to `ENUMERATE_TRIAL_SECONDS`, then the MILP), and MILP / random-search (10,000 valid samples) energy; median and max MILP and
//!   default-engine time per (network, architecture), with the self-check's share of the latter
//!   (`check %`: the random probe of `certify`). All proofs must agree on the optimum.
//! * `table`: the per-layer optimum table of MobileNetV2 on Eyeriss at bits 2..8, cold (empty
//!   cache) and warm (cached).
//! * `front`: `qmap front --method nsga2` (the complete front) on the shipped front instances, cold and
//!   warm: table and front times, the seed's comparison line, NSGA-II's hypervolume against the
//!   exact front's.
//!
//! Usage: `qmap-bench [layers] [table] [front] [--all] [--time-limit S]` (default: all parts;
//! `layers` runs a representative subset of layer shapes unless `--all`).

use qmap::mapspace::Mapspace;
use qmap::milp::{solve, SolveOptions, Status};
use qmap::network::{
    enumeration_size, prove_best, Engine, ENUMERATE_LIMIT, ENUMERATE_TRIAL_SECONDS,
};
use qmap::search::{exhaustive, random};
use qmap::spec::Objective;
use std::path::PathBuf;
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Largest mapspace (in mappings) the exhaustive oracle is timed on.
const ORACLE_LIMIT: u128 = 3_000_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn layers(all: bool, limit: f64) {
    println!("== per-layer MILP (8-bit, seed constraints, MILP time limit {limit} s) ==");
    println!(
        "{:<8} {:<6} {:<9} {:>10} {:>10} {:>8} {:>10} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>12} {:>9}",
        "arch",
        "net",
        "layer",
        "mapspace",
        "fact×keep",
        "MILP s",
        "status",
        "gap",
        "exh. s",
        "exh/MILP",
        "enum s",
        "auto s",
        "check %",
        "MILP uJ",
        "MILP/rnd"
    );
    for net in ["v1", "v2"] {
        for arch in ["eyeriss", "simba"] {
            let file = root().join(format!("instances/front_mbv{}_{arch}.yaml", &net[1..]));
            let mut inst = qmap::instance::load(&file).expect("shipped instance loads");
            let cons = inst.constraints().expect("shipped constraints load");
            // Distinct layer shapes (identical shapes have identical optima).
            let mut seen = vec![];
            let mut picked = vec![];
            for (i, l) in inst.layers.iter().enumerate() {
                let key = qmap::network::shape_key(&l.problem);
                if !seen.contains(&key) {
                    seen.push(key);
                    picked.push(i);
                }
            }
            if !all {
                // A representative subset: first, second, a middle expansion and the last two.
                let n = picked.len();
                let mut sub = vec![
                    picked[0],
                    picked[1],
                    picked[n / 2],
                    picked[n - 2],
                    picked[n - 1],
                ];
                sub.dedup();
                picked = sub;
            }
            let mut times = vec![];
            // qmap's default engine (`Engine::Auto`).
            let mut auto_times = vec![];
            // The self-check's share of the default engine's time.
            let mut check_shares = vec![];
            let mut auto_proven = 0;
            for &i in &picked {
                inst.selected = i;
                let problem = inst.layer().problem.clone();
                let space = Mapspace::new(&problem, &inst.arch, &cons).expect("mapspace");
                let opts = inst.options(&problem, Some((8, 8, 8)));
                let t0 = Instant::now();
                let so = SolveOptions {
                    time_limit: Some(limit),
                    ..Default::default()
                };
                eprintln!("  [{} {}: MILP]", arch, inst.layer().name);
                let cert = solve(&space, &opts, Objective::Energy, &so);
                let milp_s = t0.elapsed().as_secs_f64();
                times.push(milp_s);
                let (status, gap, milp_uj) = match &cert {
                    Ok(c) => (
                        match c.status {
                            Status::Optimal => "optimal",
                            Status::TimeLimit => "limit",
                            Status::Infeasible => "infeasible",
                            Status::Unknown => "unknown",
                        },
                        c.gap,
                        c.value / 1e6,
                    ),
                    Err(_) => ("error", f64::NAN, f64::NAN),
                };
                eprintln!("  [enumeration, exhaustive, random]");
                let agrees = |what: &str, v: f64| {
                    if let Ok(c) = &cert {
                        if c.status == Status::Optimal {
                            assert!(
                                (c.value - v).abs() <= 1e-6 * v,
                                "{}: MILP {} vs {what} {v}",
                                inst.layer().name,
                                c.value
                            );
                        }
                    }
                };
                // An engine's certificate and time.
                let timed = |engine: Engine| {
                    let t = Instant::now();
                    let opts = std::slice::from_ref(&opts);
                    let (cert, _, _) = prove_best(
                        &space,
                        opts,
                        Objective::Energy,
                        engine,
                        ENUMERATE_LIMIT,
                        &so,
                    )
                    .expect("proves");
                    (cert, t.elapsed().as_secs_f64())
                };
                // The bounded enumeration (qmap's enumerating engine) on every layer.
                let (cert_enum, enum_s) = timed(Engine::Enumerate);
                agrees("enumeration", cert_enum.value);
                let (exh, ratio) = if space.size() <= ORACLE_LIMIT {
                    let t = Instant::now();
                    let ex =
                        exhaustive(&space, &opts, Objective::Energy, None).expect("enumerates");
                    let s = t.elapsed().as_secs_f64();
                    agrees("exhaustive", ex.value);
                    assert_eq!(ex.value, cert_enum.value, "{}", inst.layer().name);
                    (format!("{s:.2}"), format!("{:.2}", s / milp_s))
                } else {
                    ("-".into(), "-".into())
                };
                let (cert_auto, auto_s) = timed(Engine::Auto);
                agrees("default engine", cert_auto.value);
                assert_eq!(cert_auto.value, cert_enum.value, "{}", inst.layer().name);
                auto_proven += (cert_auto.status == Status::Optimal) as usize;
                auto_times.push(auto_s);
                let check_s = cert_auto.check.map_or(f64::NAN, |c| c.seconds);
                check_shares.push(check_s / auto_s);
                let rnd = random(&space, &opts, Objective::Energy, 1, 10_000, None);
                println!(
                    "{:<8} {:<6} {:<9} {:>10.3e} {:>10.3e} {:>8.2} {:>10} {:>9.1e} {:>8} {:>9} {:>8.2} {:>8.2} {:>8.1} {:>12.3} {:>9.4}",
                    arch,
                    format!("mbv{}", &net[1..]),
                    inst.layer().name,
                    space.size_f64(),
                    enumeration_size(&space),
                    milp_s,
                    status,
                    gap,
                    exh,
                    ratio,
                    enum_s,
                    auto_s,
                    100.0 * check_s / auto_s,
                    milp_uj,
                    milp_uj / (rnd.value / 1e6)
                );
            }
            let max = times.iter().cloned().fold(0.0, f64::max);
            println!(
                "{arch} mbv{}: MILP time median {:.2} s, max {:.2} s over {} layer shapes (target: median <= 0.5 s, max <= 5 s)",
                &net[1..],
                median(&mut times),
                max,
                times.len()
            );
            let auto_max = auto_times.iter().cloned().fold(0.0, f64::max);
            println!(
                "{arch} mbv{}: default engine (enumerates up to {ENUMERATE_LIMIT} factorisations × keep patterns; above, for up to {ENUMERATE_TRIAL_SECONDS} s before the MILP) time median {:.2} s, max {:.2} s, {} of {} proven optimal; self-check median {:.1} % of it",
                &net[1..],
                median(&mut auto_times),
                auto_max,
                auto_proven,
                auto_times.len(),
                100.0 * median(&mut check_shares)
            );
        }
    }
}

fn table() {
    println!("== per-layer optimum table: MobileNetV2 on Eyeriss, bits 2..8 (343 triples) ==");
    let file = root().join("instances/front_mbv2_eyeriss.yaml");
    let inst = qmap::instance::load(&file).expect("shipped instance loads");
    let cons = inst.constraints().expect("shipped constraints load");
    let triples: Vec<_> = inst.bits.triples(0).into_iter().map(Some).collect();
    let cache = std::env::temp_dir().join(format!("qmap-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let settings = qmap::network::TableSettings {
        cache_dir: Some(cache.clone()),
        progress: true,
        ..Default::default()
    };
    for run in ["cold", "warm"] {
        let t = qmap::network::build(&inst, &cons, &triples, &settings).expect("table builds");
        let proven = t
            .layers
            .iter()
            .flatten()
            .filter(|e| e.proof.optimal())
            .count();
        println!(
            "{run}: {:.2} s for {} layers, {} distinct shapes ({} from the cache), {} triples each; {} of {} entries proven optimal",
            t.seconds,
            inst.layers.len(),
            t.units,
            t.cached_units,
            triples.len(),
            proven,
            t.layers.iter().map(|l| l.len()).sum::<usize>()
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
}

fn front() {
    println!("== qmap front (the complete front within 2 accuracy points of uniform 8-bit, NSGA-II compared), cold and warm ==");
    let qmap = std::env::current_exe()
        .expect("own path")
        .parent()
        .expect("bin dir")
        .join("qmap");
    for net in ["v1", "v2"] {
        for arch in ["eyeriss", "simba"] {
            let file = root().join(format!("instances/front_mbv{}_{arch}.yaml", &net[1..]));
            let cache =
                std::env::temp_dir().join(format!("qmap-bench-front-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&cache);
            for run in ["cold", "warm"] {
                let t = Instant::now();
                let out = std::process::Command::new(&qmap)
                    .args([
                        "front",
                        file.to_str().unwrap(),
                        "--points",
                        "1000000",
                        "--method",
                        "nsga2",
                        "--json",
                        "--cache",
                    ])
                    .arg(&cache)
                    .output()
                    .expect("qmap runs");
                let wall = t.elapsed().as_secs_f64();
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
                    println!(
                        "mbv{} {arch} {run}: failed: {}",
                        &net[1..],
                        String::from_utf8_lossy(&out.stderr)
                    );
                    continue;
                };
                println!(
                    "mbv{} {arch:<8} {run}: wall {wall:.1} s, table {:.1} s, front {:.2} s ({} points), hypervolume NSGA-II / exact = {:.4}",
                    &net[1..],
                    v["table_seconds"].as_f64().unwrap_or(f64::NAN),
                    v["front_seconds"].as_f64().unwrap_or(f64::NAN),
                    v["points"].as_array().map_or(0, |p| p.len()),
                    v["hypervolume"]["nsga2"].as_f64().unwrap_or(f64::NAN)
                        / v["hypervolume"]["exact"].as_f64().unwrap_or(f64::NAN),
                );
                if run == "warm" {
                    println!("  {}", v["comparison"].as_str().unwrap_or(""));
                }
            }
            let _ = std::fs::remove_dir_all(&cache);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.iter().any(|a| a == "--all");
    let limit = args
        .iter()
        .position(|a| a == "--time-limit")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(20.0);
    let parts: Vec<&str> = args
        .iter()
        .map(|s| s.as_str())
        .filter(|a| ["layers", "table", "front"].contains(a))
        .collect();
    let parts = if parts.is_empty() {
        vec!["table", "front", "layers"]
    } else {
        parts
    };
    for p in parts {
        match p {
            "layers" => layers(all, limit),
            "table" => table(),
            "front" => front(),
            _ => unreachable!(),
        }
    }
}
