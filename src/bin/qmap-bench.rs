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
//! * `front`: `qmap front --method nsga2` with the CLI's default budgets ([`qmap::app::codesign`]
//!   called in-process) on the shipped front instances, cold (empty cache) and warm (the table,
//!   the front and the random-search baseline cached): wall, table, front and random-search
//!   times, the front's size and completeness, the load average, the headline, NSGA-II's
//!   hypervolume against the exact front's.
//!
//! * `seed` (not in the default set): the seed paper's reproduction (`docs/reproduction.md`):
//!   `qmap baseline` of `models/nets/mobilenet_v1_seed.yaml` on the shipped Eyeriss and Simba
//!   designs under their constraints, 8-bit activations, weights 2..8 bits; qmap's proven
//!   network totals beside the paper's published ones, and the same optimal mappings priced
//!   with the paper's two model differences (the seed fork's extra inner-level Outputs fills,
//!   `seed_compat`, and its per-register charging of Simba's clustered PEWeightRegs), as a
//!   markdown table. `--out DIR` keeps the baseline outputs (default: a temporary directory).
//!
//! * `peers`: timeloop-mapper against qmap on the same layer, constraints and design. The
//!   mapper's runs are bench data (`bench/peers/`, written by `tools/peers/run_mapper.sh`:
//!   Timeloop v3.0.3, random-pruned, victory 500, 2 threads, energy objective, on the exercise
//!   designs of `../shared/reference/timeloop_exercises/`). Per layer: the mapspace size, the
//!   mapper's energy, cycles and wall time, its mapping re-evaluated by qmap (it must reproduce
//!   the mapper's `stats.txt`), and qmap's answer under `--time-limit` (status, energy, bound,
//!   gap, wall time). Skipped with a message where `../shared/reference` is absent (the
//!   environment variable `QMAP_REFERENCE` names it elsewhere).
//!
//! * `scale`: the wall of issue 23, the 1x1 C = M family at 56×56 on the shipped Simba (with
//!   its constraints), C = 192 … 3072, energy, 8 bits, `qmap map`'s default engine under a
//!   [`SCALE_SECONDS`] limit each: per C the factorisations × keep patterns, wall time (the
//!   self-check included), status, energy, bound and gap.
//!
//! Usage: `qmap-bench [layers] [table] [front] [seed] [peers] [scale] [--all] [--time-limit S]
//! [--out DIR]` (default: layers, table, front, peers and scale; `layers` runs a
//! representative subset of layer shapes unless `--all`).

use qmap::app::codesign::{self, CodesignReport, CodesignRequest, Method};
use qmap::eval::{evaluate, Evaluation};
use qmap::front::{FrontKind, TraceLimits};
use qmap::instance;
use qmap::mapspace::Mapspace;
use qmap::milp::{solve, SolveOptions, Status};
use qmap::model::{BitConfig, ModelOptions};
use qmap::optimum::{
    enumeration_size, prove_best, Engine, ENUMERATE_LIMIT, ENUMERATE_TRIAL_SECONDS,
};
use qmap::search::{exhaustive, random};
use qmap::spec::Objective;
use std::path::{Path, PathBuf};
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

/// The header of the `layers` table.
fn layers_header(limit: f64) {
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
}

/// The layers of `inst` the `layers` table times: one per distinct shape (identical shapes
/// have identical optima), or without `all` a representative subset of them: first, second,
/// a middle expansion and the last two.
fn picked_layers(inst: &instance::Instance, all: bool) -> Vec<usize> {
    let mut seen = vec![];
    let mut picked = vec![];
    for (i, l) in inst.layers.iter().enumerate() {
        let key = qmap::optimum::shape_key(&l.problem);
        if !seen.contains(&key) {
            seen.push(key);
            picked.push(i);
        }
    }
    if all {
        return picked;
    }
    let n = picked.len();
    let mut sub = vec![
        picked[0],
        picked[1],
        picked[n / 2],
        picked[n - 2],
        picked[n - 1],
    ];
    sub.dedup();
    sub
}

/// One layer's times: MILP, default engine, and the self-check's share of the latter; and
/// whether the default engine proved it optimal.
struct LayerTimes {
    milp: f64,
    auto: f64,
    check_share: f64,
    auto_proven: bool,
}

/// The MILP's status, gap and energy (µJ) as the `layers` table prints them.
fn milp_summary(cert: &Result<qmap::milp::Certificate, String>) -> (&'static str, f64, f64) {
    match cert {
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
    }
}

/// Times every engine on the selected layer of `inst` and prints its row: all proofs must
/// agree on the optimum.
fn layer_row(
    inst: &instance::Instance,
    cons: &qmap::mapspace::Constraints,
    net: &str,
    arch: &str,
    limit: f64,
) -> LayerTimes {
    let problem = inst.layer().problem.clone();
    let space = Mapspace::new(&problem, &inst.arch, cons).expect("mapspace");
    let opts = inst.options(&problem, Some(BitConfig::uniform(8)));
    let t0 = Instant::now();
    let so = SolveOptions {
        time_limit: Some(limit),
        ..Default::default()
    };
    eprintln!("  [{} {}: MILP]", arch, inst.layer().name);
    let cert = solve(&space, &opts, Objective::Energy, &so);
    let milp_s = t0.elapsed().as_secs_f64();
    let (status, gap, milp_uj) = milp_summary(&cert);
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
        let (cert, _) = prove_best(
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
        let ex = exhaustive(&space, &opts, Objective::Energy, None).expect("enumerates");
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
    let check_s = cert_auto.check.map_or(f64::NAN, |c| c.seconds);
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
    LayerTimes {
        milp: milp_s,
        auto: auto_s,
        check_share: check_s / auto_s,
        auto_proven: cert_auto.status == Status::Optimal,
    }
}

/// The medians and maxima of one (network, architecture)'s layer times.
fn layers_summary(net: &str, arch: &str, rows: &[LayerTimes]) {
    let mut times: Vec<f64> = rows.iter().map(|r| r.milp).collect();
    let mut auto_times: Vec<f64> = rows.iter().map(|r| r.auto).collect();
    let mut check_shares: Vec<f64> = rows.iter().map(|r| r.check_share).collect();
    let auto_proven = rows.iter().filter(|r| r.auto_proven).count();
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

fn layers(all: bool, limit: f64) {
    layers_header(limit);
    for net in ["v1", "v2"] {
        for arch in ["eyeriss", "simba"] {
            let file = root().join(format!("instances/front_mbv{}_{arch}.yaml", &net[1..]));
            let mut inst = qmap::instance::load(&file).expect("shipped instance loads");
            let cons = inst.constraints().expect("shipped constraints load");
            let mut rows = vec![];
            for i in picked_layers(&inst, all) {
                inst.selected = i;
                rows.push(layer_row(&inst, &cons, net, arch, limit));
            }
            layers_summary(net, arch, &rows);
        }
    }
}

fn table() {
    println!("== per-layer optimum table: MobileNetV2 on Eyeriss, bits 2..8 (343 configs) ==");
    let file = root().join("instances/front_mbv2_eyeriss.yaml");
    let inst = qmap::instance::load(&file).expect("shipped instance loads");
    let cons = inst.constraints().expect("shipped constraints load");
    let configs: Vec<_> = inst.bits.configs(0).into_iter().map(Some).collect();
    let cache = std::env::temp_dir().join(format!("qmap-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let settings = qmap::optimum::TableSettings {
        cache_dir: Some(cache.clone()),
        progress: true,
        ..Default::default()
    };
    for run in ["cold", "warm"] {
        let t = qmap::optimum::build(&inst, &cons, &configs, &settings).expect("table builds");
        let proven = t
            .layers
            .iter()
            .flatten()
            .filter(|e| e.proof().optimal())
            .count();
        println!(
            "{run}: {:.2} s for {} layers, {} distinct shapes ({} from the cache), {} configs each; {} of {} entries proven optimal",
            t.seconds,
            inst.layers.len(),
            t.units,
            t.cached_units,
            configs.len(),
            proven,
            t.layers.iter().map(|l| l.len()).sum::<usize>()
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
}

/// `qmap front --method nsga2` of `file` (the CLI's default budgets), with its cache in `cache`.
fn front_of(file: &Path, cache: &Path) -> Result<CodesignReport, String> {
    let req = CodesignRequest {
        instance: file,
        kind: FrontKind::EnergyAccuracy,
        method: Method::Nsga2,
        limits: TraceLimits {
            max_points: 5000,
            time_budget: Some(120.0),
        },
        accuracy_tolerance: Some(0.5),
        quiet: true,
        accuracy_resolution: 1e-6,
        budgets: Default::default(),
        max_kl: None,
        verify: None,
        seed: 1,
        csv: None,
        svg: None,
        settings: qmap::optimum::TableSettings {
            time_limit: Some(120.0),
            cache_dir: Some(cache.to_path_buf()),
            ..Default::default()
        },
    };
    codesign::run(&req).map_err(|e| e.to_string())
}

/// The 1-minute load average (`/proc/loadavg`), or `?`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn front() {
    println!("== qmap front (the whole front from uniform 8-bit - 2 accuracy points up, default budgets, NSGA-II compared), cold and warm ==");
    for net in ["v1", "v2"] {
        for arch in ["eyeriss", "simba"] {
            let file = root().join(format!("instances/front_mbv{}_{arch}.yaml", &net[1..]));
            let cache =
                std::env::temp_dir().join(format!("qmap-bench-front-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&cache);
            for run in ["cold", "warm"] {
                let t = Instant::now();
                let r = front_of(&file, &cache);
                let wall = t.elapsed().as_secs_f64();
                let f = match r {
                    Ok(CodesignReport::Front(f)) => f,
                    Ok(CodesignReport::Infeasible(i)) => {
                        println!("mbv{} {arch} {run}: failed: {}", &net[1..], i.reason);
                        continue;
                    }
                    Err(e) => {
                        println!("mbv{} {arch} {run}: failed: {e}", &net[1..]);
                        continue;
                    }
                };
                let hv = f.hypervolume.map_or(f64::NAN, |h| h.nsga2 / h.exact);
                println!(
                    "mbv{} {arch:<8} {run}: wall {wall:.1} s, table {:.1} s, front {:.2} s{} ({} points, {}), random-search baseline {:.1} s{}, hypervolume NSGA-II / exact = {hv:.4} (load average {})",
                    &net[1..],
                    f.table_seconds,
                    f.front_seconds,
                    if f.work.front_cached { " (cached)" } else { "" },
                    f.points.len(),
                    if f.complete { "complete" } else { "INCOMPLETE" },
                    f.work.random_search_seconds,
                    if f.work.random_search_cached { " (cached)" } else { "" },
                    load_average(),
                );
                if run == "warm" {
                    println!("  {}", f.comparison.replace('\n', "\n  "));
                }
            }
            let _ = std::fs::remove_dir_all(&cache);
        }
    }
}

/// The paper's published MobileNetV1 network totals (µJ) on its 16-bit designs with 8-bit
/// activations, weights 2..8 bits: all 28 layers, and layers 1-27 (its head's published MAC
/// count matches no 1024 -> 100 classifier). From the paper's public pipeline outputs,
/// summed over its per-layer figures (`../shared/reference/seed_toolchain/published_totals.md`).
const PUBLISHED: [(&str, [(f64, f64); 7]); 2] = [
    (
        "eyeriss",
        [
            (13_840.0, 13_680.0),
            (14_489.0, 14_316.0),
            (14_883.0, 14_702.0),
            (15_626.0, 15_431.0),
            (17_099.0, 16_876.0),
            (17_099.0, 16_876.0),
            (17_099.0, 16_876.0),
        ],
    ),
    (
        "simba",
        [
            (25_446.0, 25_216.0),
            (25_829.0, 25_588.0),
            (26_117.0, 25_868.0),
            (26_565.0, 26_303.0),
            (27_480.0, 27_192.0),
            (27_480.0, 27_192.0),
            (27_480.0, 27_192.0),
        ],
    ),
];

/// The energy (pJ) of an evaluation with the seed fork's charging of clustered levels: per
/// instance in use at the ERT energy ÷ cluster size, where Timeloop v3.0.3 charges the
/// per-instance energy once per cluster in use (`models/arch/simba.yaml`).
fn seed_cluster_energy(ev: &Evaluation, arch: &qmap::model::Arch) -> f64 {
    let mut e = ev.energy_pj;
    for (ls, level) in ev.levels.iter().zip(&arch.levels) {
        if level.cluster_size <= 1 {
            continue;
        }
        let used = ls.instances_used;
        let clusters = used.min((level.instances / level.cluster_size).max(1));
        e += ls.energy_pj * (used as f64 / (level.cluster_size * clusters) as f64 - 1.0);
    }
    e
}

/// One row of a baseline's summary.csv: layer index, weight bits, status, mapping file.
type BaselineRow = (usize, u32, String, String);

/// `qmap baseline` ([`qmap::app::baseline`], in-process) of the seed network on `arch` (8-bit activations, weights 2..8 bits) into
/// `dir/<arch><suffix>`: the instance, the output directory, and the rows of its summary.csv as
/// (layer index, weight bits, status, mapping file); the seconds it took.
fn seed_baseline(
    dir: &Path,
    arch: &str,
    seed_compat: bool,
) -> (instance::Instance, PathBuf, Vec<BaselineRow>, f64) {
    let name = format!("{arch}{}", if seed_compat { "_seed_compat" } else { "" });
    let inst_file = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &inst_file,
        format!(
            "architecture: {r}/models/arch/{arch}.yaml\nconstraints: \
             {r}/models/arch/{arch}_constraints.yaml\nworkload: {{network: \
             {r}/models/nets/mobilenet_v1_seed.yaml}}\nbits: {{inputs: 8, weights: [2, 3, 4, 5, \
             6, 7, 8], outputs: 8}}\npacking: seed\nseed_compat: {seed_compat}\n",
            r = root().display()
        ),
    )
    .expect("instance");
    let base = dir.join(&name);
    let t = Instant::now();
    let req = qmap::app::baseline::BaselineRequest {
        instance: &inst_file,
        out: &base,
        layers: &[],
        settings: qmap::optimum::TableSettings {
            time_limit: Some(120.0),
            progress: true,
            ..Default::default()
        },
    };
    let r = qmap::app::baseline::run(&req).unwrap_or_else(|e| panic!("qmap baseline: {e}"));
    assert!(
        r.pass(),
        "qmap baseline: {} entries not proven optimal, infeasible layers {:?}",
        r.unproven,
        r.infeasible
    );
    let seconds = t.elapsed().as_secs_f64();
    let inst = instance::load(&inst_file).expect("instance");
    let csv = std::fs::read_to_string(base.join("summary.csv")).expect("summary.csv");
    let rows = csv
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let li = inst
                .layers
                .iter()
                .position(|l| l.name == f[0])
                .expect("layer");
            (
                li,
                f[2].parse().unwrap(),
                f[6].to_string(),
                f[10].to_string(),
            )
        })
        .collect();
    (inst, base, rows, seconds)
}

fn seed(out: Option<PathBuf>) {
    println!("== the seed paper's MobileNetV1 (as its pipeline ran it), proven optima vs its published totals ==");
    let dir = out.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("qmap-bench-seed-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).expect("output directory");
    for (arch, published) in PUBLISHED {
        // Per weight bits: [qmap all, qmap 1-27, seed_compat optimum 1-27]; over all bits,
        // layers 1-27 of qmap's optima priced with the seed's Outputs fills, with its cluster
        // charging, with both.
        let mut sums = [[0.0f64; 3]; 7];
        let mut priced = [0.0f64; 3];
        let mut proven = (0, 0, 0.0);
        for seed_compat in [false, true] {
            let (inst, base, rows, seconds) = seed_baseline(&dir, arch, seed_compat);
            for (li, w, status, mapping) in rows {
                let problem = &inst.layers[li].problem;
                let m = instance::load_mapping_file(&base.join(mapping), &inst.arch, problem)
                    .expect("mapping");
                let opts = inst.options(problem, Some(BitConfig::new(8, w, 8)));
                let ev = evaluate(problem, &inst.arch, &m, &opts);
                let head = li + 1 == inst.layers.len();
                let s = &mut sums[(w - 2) as usize];
                if seed_compat {
                    s[2] += if head { 0.0 } else { ev.energy_pj };
                } else {
                    s[0] += ev.energy_pj;
                    if !head {
                        s[1] += ev.energy_pj;
                        let seed_opts = ModelOptions {
                            seed_compat: true,
                            ..opts.clone()
                        };
                        let fills = evaluate(problem, &inst.arch, &m, &seed_opts);
                        priced[0] += fills.energy_pj;
                        priced[1] += seed_cluster_energy(&ev, &inst.arch);
                        priced[2] += seed_cluster_energy(&fills, &inst.arch);
                    }
                }
                proven.0 += 1;
                proven.1 += (status == "optimal") as usize;
            }
            proven.2 += seconds;
        }
        println!(
            "\n{arch}: {} layer optima ({} proven optimal) in {:.1} s, outputs in {}\n",
            proven.0,
            proven.1,
            proven.2,
            dir.display()
        );
        println!("| weight bits | paper, 28 layers (µJ) | qmap optimum | Δ | paper, layers 1-27 | qmap optimum | Δ | qmap optimum, seed_compat | Δ |");
        println!("|---|---|---|---|---|---|---|---|---|");
        let uj = |pj: f64| pj / 1e6;
        let d = |q: f64, p: f64| format!("{:+.1} %", (uj(q) / p - 1.0) * 100.0);
        for (i, ((p_all, p_27), s)) in published.iter().zip(&sums).enumerate() {
            println!(
                "| {} | {p_all:.0} | {:.0} | {} | {p_27:.0} | {:.0} | {} | {:.0} | {} |",
                i + 2,
                uj(s[0]),
                d(s[0], *p_all),
                uj(s[1]),
                d(s[1], *p_27),
                uj(s[2]),
                d(s[2], *p_27)
            );
        }
        let total: f64 = sums.iter().map(|s| s[1]).sum();
        let pct = |x: f64| (x / total - 1.0) * 100.0;
        println!(
            "\nqmap's optima of layers 1-27 (all bit-widths together) priced with the paper's model: the seed fork's extra inner-level Outputs fills {:+.2} %, its per-register charging of clustered levels {:+.2} %, both {:+.2} %",
            pct(priced[0]),
            pct(priced[1]),
            pct(priced[2])
        );
    }
}

/// A number after `key` in a text file's lines (`Energy: 728.52 uJ`, `wall_seconds: 68.709`).
fn stated(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// One `peers` row: the mapper's stored run in `dir` re-evaluated by qmap, then qmap's answer.
fn peer_row(design: &Path, dir: &Path, limit: f64) -> Result<String, String> {
    let file = |f: &str| design.join(f);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map_err(|e| format!("{f}: {e}"));
    let stats = read("stats.txt")?;
    let (mapper_uj, mapper_cycles) = (stated(&stats, "Energy:"), stated(&stats, "Cycles:"));
    let wall = stated(&read("run.yaml")?, "wall_seconds:");
    let (Some(mapper_uj), Some(mapper_cycles), Some(wall)) = (mapper_uj, mapper_cycles, wall)
    else {
        return Err("stats.txt or run.yaml without its figures".into());
    };
    let (arch, ert, problem) = (
        file("arch.v3-hyphen.yaml"),
        file("ERT.v3-hyphen.yaml"),
        dir.join("problem.yaml"),
    );
    let files = [
        arch.clone(),
        problem.clone(),
        dir.join("map.yaml"),
        ert.clone(),
    ];
    let ev = qmap::app::eval::run(&qmap::app::eval::EvalRequest::Timeloop(&files))
        .map_err(|e| e.to_string())?
        .evaluation;
    let reproduced =
        (ev.energy_pj / 1e6 - mapper_uj).abs() <= 0.006 && ev.cycles as f64 == mapper_cycles;
    let design_files = [arch, problem, ert];
    let cons = file("constraints.v3-hyphen.yaml");
    let r = qmap::app::map::run(&qmap::app::map::MapRequest {
        instance: None,
        layer: None,
        timeloop: Some(&design_files),
        constraints: Some(&cons),
        objective: Some(Objective::Energy),
        time_limit: Some(limit),
        start: Instant::now(),
        gap: 1e-6,
        engine: qmap::optimum::Engine::Auto,
        enumerate_limit: qmap::optimum::ENUMERATE_LIMIT,
        progress: qmap::progress::Mode::Quiet,
        outputs: qmap::app::job::MappingOutputs {
            out: None,
            timeloop_out: None,
        },
        cache: None,
        budget: Default::default(),
    })
    .map_err(|e| e.to_string())?;
    let json = serde_json::to_value(&r).map_err(|e| e.to_string())?;
    let size = json["mapspace_size"]
        .as_f64()
        .map_or("-".into(), |v| format!("{v:.2e}"));
    let (c, uj) = (&r.cert, r.cert.value / 1e6);
    let faster = c.status == Status::Optimal && c.seconds < wall;
    Ok(format!(
        "{size:>9} | {mapper_uj:>10.2} {mapper_cycles:>11} {wall:>7.1} {} | {:>10} {uj:>10.3} {:>10.3} {:>6.2}% {:>6.1} | {:>+6.1}% {}",
        if reproduced { "yes" } else { "NO " },
        format!("{:?}", c.status),
        c.bound / 1e6,
        c.gap * 100.0,
        c.seconds,
        (mapper_uj / uj - 1.0) * 100.0,
        if faster { "yes" } else { "no" },
    ))
}

/// The time limit of each layer of the `scale` part (seconds).
const SCALE_SECONDS: f64 = 30.0;

/// `scale` (see the crate doc).
fn scale() {
    println!(
        "\n== scale: 1x1 C = M at 56x56 on the shipped Simba (constrained), energy, 8 bits, \
         time limit {SCALE_SECONDS} s each, load {} ==",
        load_average()
    );
    println!(
        "{:>5} {:>10} {:>8} {:>10} {:>12} {:>12} {:>8} {:>6}",
        "C", "fact×keep", "wall s", "status", "uJ", "bound uJ", "gap", "load"
    );
    let dir = std::env::temp_dir().join(format!("qmap-bench-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let r = root();
    for c in [192, 384, 768, 1536, 3072] {
        let file = dir.join(format!("c{c}.yaml"));
        let text = format!(
            "architecture: {}/models/arch/simba.yaml\nconstraints: {}/models/arch/simba_constraints.yaml\n\
             workload:\n  layer: {{name: pw{c}, kind: conv2d, C: {c}, M: {c}, P: 56, Q: 56}}\n\
             bits: {{inputs: 8, weights: 8, outputs: 8}}\npacking: seed\n",
            r.display(),
            r.display()
        );
        std::fs::write(&file, text).expect("a scratch instance");
        let inst = instance::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let problem = inst.layer().problem.clone();
        let cons = inst.constraints().unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        let space = Mapspace::new(&problem, &inst.arch, &cons).expect("mapspace");
        let opts = inst.fixed_options(&problem);
        let so = SolveOptions {
            time_limit: Some(SCALE_SECONDS),
            ..Default::default()
        };
        let one = std::slice::from_ref(&opts);
        eprintln!("  [scale C = {c}]");
        let solved = prove_best(
            &space,
            one,
            Objective::Energy,
            Engine::Auto,
            ENUMERATE_LIMIT,
            &so,
        );
        let wall = t.elapsed().as_secs_f64();
        let size = enumeration_size(&space);
        match solved {
            Ok((cert, _)) => println!(
                "{c:>5} {size:>10.2e} {wall:>8.1} {:>10} {:>12.3} {:>12.3} {:>7.2}% {:>6}",
                format!("{:?}", cert.status),
                cert.value / 1e6,
                cert.bound / 1e6,
                cert.gap * 100.0,
                load_average()
            ),
            Err(e) => println!("{c:>5} {size:>10.2e} {wall:>8.1} error: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `peers` (see the crate doc).
fn peers(limit: f64) {
    let root = root();
    // `QMAP_REFERENCE` names the shared reference folder where `../shared/reference` is not
    // beside the checkout (a git worktree elsewhere).
    let reference = std::env::var_os("QMAP_REFERENCE")
        .map_or_else(|| root.join("../shared/reference"), PathBuf::from)
        .join("timeloop_exercises");
    if !reference.is_dir() {
        println!(
            "peers: SKIPPED: {} not present (the designs)",
            reference.display()
        );
        return;
    }
    println!(
        "\npeers: timeloop-mapper (bench/peers) against qmap (--time-limit {limit} s), load {}",
        load_average()
    );
    println!(
        "design/layer                mapspace |  mapper uJ      cycles  wall s re-eval |       \
         qmap         uJ   bound uJ     gap      s |  mapper proved faster"
    );
    for design in ["eyeriss_like", "simba_like"] {
        let Ok(dirs) = std::fs::read_dir(root.join("bench/peers").join(design)) else {
            println!("{design}: no bench data (run tools/peers/run_mapper.sh)");
            continue;
        };
        let mut dirs: Vec<PathBuf> = dirs.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let name = format!(
                "{design}/{}",
                dir.file_name().unwrap_or_default().to_string_lossy()
            );
            match peer_row(&reference.join(design), &dir, limit) {
                Ok(row) => println!("{name:<26} {row}"),
                Err(e) => println!("{name:<26} error: {e}"),
            }
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
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let parts: Vec<&str> = args
        .iter()
        .map(|s| s.as_str())
        .filter(|a| ["layers", "table", "front", "seed", "peers", "scale"].contains(a))
        .collect();
    let parts = if parts.is_empty() {
        vec!["table", "front", "layers", "peers", "scale"]
    } else {
        parts
    };
    for p in parts {
        match p {
            "layers" => layers(all, limit),
            "table" => table(),
            "front" => front(),
            "seed" => seed(out.clone()),
            "peers" => peers(limit),
            "scale" => scale(),
            _ => unreachable!(),
        }
    }
}
