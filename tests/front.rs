//! The network front: ε-constraint fronts against brute-force enumeration on small random
//! networks, point bookkeeping, NSGA-II and hypervolume, the shipped accuracy proxies, accuracy
//! file errors, the SVG plot, and a timing print on MobileNetV2 with bits 2..8.

use qmap::front::{
    brute_force_front, dominates, for_each_selection, front_hypervolume, hypervolume, min_edp,
    non_dominated, nsga2, select, trace_front, AccuracyKind, AccuracyModel, AccuracyTable, BitSets,
    Budgets, Criterion, EnergyTable, FrontError, FrontKind, FrontOptions, FrontPlot, FrontPoint,
    Goal, LayerTable, MarkStyle, Nsga2Options, PlotMark, SelectBy, SelectionProblem, TableEntry,
    TraceLimits,
};
use qmap::spec::{self, NetworkSpec};
use qmap::workload::{self, Layer};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const KINDS: [FrontKind; 4] = [
    FrontKind::EnergyAccuracy,
    FrontKind::EnergyMemory,
    FrontKind::EnergyAccuracyMemory,
    FrontKind::EnergyCycles,
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A random small network: its table, accuracy table and bit sets. Energies and cycles are
/// integers and accuracy deltas dyadic rationals, so that every total is exact in f64 and the
/// fronts can be compared exactly.
struct Case {
    table: EnergyTable,
    accuracy: AccuracyModel,
    bits: BitSets,
}

fn random_subset(rng: &mut ChaCha8Rng, k: usize) -> Vec<u32> {
    let mut all: Vec<u32> = (2..=8).collect();
    let mut out = Vec::new();
    while out.len() < k {
        let i = rng.random_range(0..all.len());
        out.push(all.remove(i));
    }
    out.sort_unstable();
    out
}

fn random_case(seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.random_range(3..=6usize);
    // Keep brute force small: at most ~2e5 selections.
    let (kw, ka) = if n >= 5 { (2, 2) } else { (3, 3) };
    let bits = BitSets {
        weights: random_subset(&mut rng, kw),
        activations: random_subset(&mut rng, ka),
        first_input: 8,
        last_output: if rng.random_bool(0.5) { 8 } else { 4 },
    };
    // Noisy energies also trade energy against weight memory (else fewer weight bits always
    // save energy and the energy × memory front is one point).
    let noise = if rng.random_bool(0.5) { 3000 } else { 40 };
    let mut layers = Vec::new();
    for l in 0..n {
        let producer = if l == 0 {
            None
        } else if rng.random_bool(0.3) {
            Some(rng.random_range(0..l))
        } else {
            Some(l - 1)
        };
        let weights = rng.random_range(1..2000u64);
        let (a, b, c) = (
            rng.random_range(1..20u32),
            rng.random_range(1..20u32),
            rng.random_range(1..20u32),
        );
        let mut entries = Vec::new();
        for cfg in bits.layer_configs(producer, l + 1 == n) {
            // Energy grows with bits, with noise: the fronts have real trade-offs.
            let e = (a * cfg.weight_bits * cfg.input_bits + b * cfg.output_bits) as f64 * 10.0
                + c as f64 * cfg.weight_bits as f64
                + rng.random_range(0..noise) as f64;
            let cy = 100 + (cfg.weight_bits + cfg.input_bits) as u64 * rng.random_range(1..10u64);
            entries.push(TableEntry {
                bits: cfg,
                energy_pj: e,
                cycles: cy,
            });
            // Sometimes a second (energy, cycles) Pareto entry, sometimes a dominated one.
            if rng.random_bool(0.3) {
                let de = rng.random_range(1..30u32) as f64;
                let dc = rng.random_range(1..50u64);
                let cycles = if rng.random_bool(0.5) {
                    cy.saturating_sub(dc)
                } else {
                    cy + dc
                };
                entries.push(TableEntry {
                    bits: cfg,
                    energy_pj: e + de,
                    cycles,
                });
            }
        }
        layers.push(LayerTable {
            name: format!("l{l}"),
            weights,
            producer,
            entries,
        });
    }
    let table = EnergyTable { layers };
    let mut deltas = BTreeMap::new();
    let mut acts = bits.activations.clone();
    acts.push(bits.first_input);
    for l in &table.layers {
        let (sw, sa) = (rng.random_range(0..256u32), rng.random_range(0..256u32));
        let mut m = BTreeMap::new();
        for &w in &bits.weights {
            for &a in &acts {
                let noise = |b: u32| (-2.0 * b as f64).exp2();
                let d = -(sw as f64 / 16.0 * noise(w) + sa as f64 / 16.0 * noise(a))
                    - rng.random_range(0..4u32) as f64 / 1024.0;
                m.insert((w, a), d);
            }
        }
        deltas.insert(l.name.clone(), m);
    }
    let accuracy = AccuracyModel::Table(AccuracyTable {
        full_precision_accuracy: 70.0,
        source: "random test data".into(),
        file: PathBuf::from("random.yaml"),
        field: "deltas".into(),
        deltas,
        kls: BTreeMap::new(),
        select_by: SelectBy::Top1,
        max_cell_loss: None,
    });
    Case {
        table,
        accuracy,
        bits,
    }
}

fn problem(c: &Case) -> SelectionProblem {
    SelectionProblem::new(&c.table, &c.accuracy, &c.bits).expect("valid case")
}

fn sorted_costs(points: &[FrontPoint], crit: &[Criterion]) -> Vec<Vec<f64>> {
    let mut v: Vec<Vec<f64>> = points.iter().map(|p| p.costs(crit)).collect();
    v.sort_by(|a, b| {
        a.iter()
            .zip(b)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v
}

fn unlimited() -> FrontOptions {
    FrontOptions {
        limits: TraceLimits::points(100_000),
        ..FrontOptions::default()
    }
}

/// Every total of a point recomputes from its per-layer choices and the table; activation bits
/// are chained; bits are within the sets.
fn check_point(c: &Case, p: &FrontPoint) {
    let t = &c.table;
    let n = t.layers.len();
    assert_eq!(p.layers.len(), n);
    let (mut e, mut cy, mut m, mut d) = (0.0, 0u64, 0.0, 0.0);
    for (l, lc) in p.layers.iter().enumerate() {
        let lt = &t.layers[l];
        assert_eq!(lc.name, lt.name);
        let entry = &lt.entries[lc.entry];
        assert_eq!(entry.bits, lc.bits);
        assert_eq!(entry.energy_pj, lc.energy_pj);
        assert_eq!(entry.cycles, lc.cycles);
        let b = lc.bits;
        let want_in = match lt.producer {
            Some(q) => p.layers[q].bits.output_bits,
            None => c.bits.first_input,
        };
        assert_eq!(b.input_bits, want_in, "chaining at layer {l}");
        if l + 1 == n {
            assert_eq!(b.output_bits, c.bits.last_output);
        } else {
            assert!(c.bits.activations.contains(&b.output_bits));
        }
        assert!(c.bits.weights.contains(&b.weight_bits));
        let delta = c
            .accuracy
            .delta(&lt.name, b.weight_bits, b.input_bits)
            .unwrap();
        assert_eq!(lc.accuracy_delta, delta);
        assert_eq!(
            lc.memory_bytes,
            (lt.weights * b.weight_bits as u64) as f64 / 8.0
        );
        e += lc.energy_pj;
        cy += lc.cycles;
        m += lc.memory_bytes;
        d += lc.accuracy_delta;
    }
    assert_eq!(p.energy_pj, e);
    assert_eq!(p.cycles, cy);
    assert_eq!(p.memory_bytes, m);
    assert_eq!(p.accuracy, c.accuracy.full_precision_accuracy() + d);
}

#[test]
fn front_equals_brute_force_on_random_small_networks() {
    let mut sizes = Vec::new();
    for seed in 0..16 {
        let c = random_case(seed);
        let pb = problem(&c);
        for kind in KINDS {
            let f = trace_front(&pb, kind, &unlimited()).unwrap();
            assert!(f.complete, "seed {seed} {kind:?}");
            let bf = brute_force_front(&pb, kind, &Budgets::default());
            let crit = kind.criteria();
            assert_eq!(
                sorted_costs(&f.points, crit),
                sorted_costs(&bf, crit),
                "seed {seed} {kind:?}: ε-constraint front differs from brute force"
            );
            // The selection MILP alone (every stage handed over by the label search) traces
            // the same front (on the first seeds: it is much slower).
            if seed < 6 {
                let by_milp = trace_front(
                    &pb,
                    kind,
                    &FrontOptions {
                        max_labels: 0,
                        ..unlimited()
                    },
                )
                .unwrap();
                assert!(by_milp.complete, "seed {seed} {kind:?}");
                assert_eq!(
                    sorted_costs(&by_milp.points, crit),
                    sorted_costs(&bf, crit),
                    "seed {seed} {kind:?}: the MILP's front differs from brute force"
                );
                for p in &by_milp.points {
                    check_point(&c, p);
                    assert_eq!(p.status, qmap::front::PointStatus::Optimal);
                }
            }
            for p in &f.points {
                check_point(&c, p);
                assert_eq!(p.status, qmap::front::PointStatus::Optimal);
            }
            // Non-dominated and each vector once.
            assert_eq!(non_dominated(&f.points, crit).len(), f.points.len());
            sizes.push((
                seed,
                kind,
                f.points.len(),
                f.solves,
                f.entries,
                f.entries_kept,
            ));
        }
    }
    for s in &sizes {
        println!(
            "seed {:2} {:?}: {} points, {} solves, entries {} -> {} after pruning",
            s.0, s.1, s.2, s.3, s.4, s.5
        );
    }
    // The test is only meaningful if fronts have several points.
    assert!(sizes.iter().filter(|s| s.2 >= 5).count() >= 20);
    assert!(
        sizes
            .iter()
            .filter(|s| s.1 == FrontKind::EnergyMemory && s.2 >= 3)
            .count()
            >= 2
    );
}

#[test]
fn budgets_restrict_fronts_exactly() {
    for seed in 100..108 {
        let c = random_case(seed);
        let pb = problem(&c);
        // Budgets met by one front point (so never infeasible) and binding for others.
        let all = brute_force_front(&pb, FrontKind::EnergyAccuracyMemory, &Budgets::default());
        let mid = &all[all.len() / 2];
        let budgets = Budgets {
            min_accuracy: Some(mid.accuracy),
            max_memory_bytes: Some(mid.memory_bytes),
            max_cycles: None,
        };
        for kind in KINDS {
            let opts = FrontOptions {
                budgets,
                ..unlimited()
            };
            let f = trace_front(&pb, kind, &opts).unwrap();
            let bf = brute_force_front(&pb, kind, &budgets);
            assert!(!bf.is_empty());
            assert_eq!(
                sorted_costs(&f.points, kind.criteria()),
                sorted_costs(&bf, kind.criteria()),
                "seed {seed} {kind:?} with budgets"
            );
            for p in &f.points {
                assert!(p.accuracy >= mid.accuracy);
                assert!(p.memory_bytes <= mid.memory_bytes);
            }
        }
        // select(): the least energy, and the least cycles, within the budgets.
        let (mut best_e, mut best_c) = (f64::INFINITY, u64::MAX);
        for_each_selection(&pb, |ch| {
            let p = pb.point_of(ch);
            if p.accuracy >= mid.accuracy && p.memory_bytes <= mid.memory_bytes {
                best_e = best_e.min(p.energy_pj);
                best_c = best_c.min(p.cycles);
            }
        });
        let e = select(&pb, Goal::Energy, &budgets, None).unwrap().unwrap();
        assert_eq!(e.energy_pj, best_e, "seed {seed}");
        check_point(&c, &e);
        let l = select(&pb, Goal::Latency, &budgets, None).unwrap().unwrap();
        assert_eq!(l.cycles, best_c, "seed {seed}");
        let b = Budgets {
            max_cycles: Some(best_c),
            ..budgets
        };
        let f = trace_front(
            &pb,
            FrontKind::EnergyAccuracy,
            &FrontOptions {
                budgets: b,
                ..unlimited()
            },
        )
        .unwrap();
        assert_eq!(
            sorted_costs(&f.points, FrontKind::EnergyAccuracy.criteria()),
            sorted_costs(
                &brute_force_front(&pb, FrontKind::EnergyAccuracy, &b),
                FrontKind::EnergyAccuracy.criteria()
            ),
            "seed {seed}: cycles budget"
        );
    }
    // Infeasible budgets give no point.
    let c = random_case(7);
    let pb = problem(&c);
    let b = Budgets {
        min_accuracy: Some(100.0),
        ..Budgets::default()
    };
    assert!(select(&pb, Goal::Energy, &b, None).unwrap().is_none());
    let f = trace_front(
        &pb,
        FrontKind::EnergyAccuracy,
        &FrontOptions {
            budgets: b,
            ..unlimited()
        },
    )
    .unwrap();
    assert!(f.points.is_empty() && f.complete);
}

#[test]
fn min_edp_is_the_least_edp_of_all_selections() {
    for seed in 200..206 {
        let c = random_case(seed);
        let pb = problem(&c);
        let ec = trace_front(&pb, FrontKind::EnergyCycles, &unlimited()).unwrap();
        let mut best = f64::INFINITY;
        let mut count = 0;
        for_each_selection(&pb, |_| count += 1);
        for p in brute_force_front(&pb, FrontKind::EnergyCycles, &Budgets::default()) {
            best = best.min(p.edp());
        }
        assert_eq!(min_edp(&ec).unwrap().edp(), best, "seed {seed}");
        assert!(count > 0);
    }
}

#[test]
fn max_points_truncates_and_says_so() {
    let c = random_case(3);
    let pb = problem(&c);
    let full = trace_front(&pb, FrontKind::EnergyAccuracyMemory, &unlimited()).unwrap();
    assert!(full.points.len() > 4);
    let opts = FrontOptions {
        limits: TraceLimits::points(4),
        ..FrontOptions::default()
    };
    for kind in KINDS {
        let f = trace_front(&pb, kind, &opts).unwrap();
        let all = trace_front(&pb, kind, &unlimited()).unwrap();
        if all.points.len() > 4 {
            assert_eq!(f.points.len(), 4, "{kind:?}");
            assert!(!f.complete);
            // Truncated points are still exact front points.
            let want = sorted_costs(&all.points, kind.criteria());
            for v in sorted_costs(&f.points, kind.criteria()) {
                assert!(want.contains(&v));
            }
        }
    }
    let exact = trace_front(
        &pb,
        FrontKind::EnergyAccuracyMemory,
        &FrontOptions {
            limits: TraceLimits::points(full.points.len()),
            ..FrontOptions::default()
        },
    )
    .unwrap();
    assert!(exact.complete);
}

#[test]
fn nsga2_never_dominates_the_exact_front() {
    let crit3 = FrontKind::EnergyAccuracyMemory.criteria();
    for seed in 300..312 {
        let c = random_case(seed);
        let pb = problem(&c);
        let exact = trace_front(&pb, FrontKind::EnergyAccuracyMemory, &unlimited()).unwrap();
        let opts = Nsga2Options {
            seed,
            ..Nsga2Options::default()
        };
        let ga = nsga2(&pb, &opts);
        assert_eq!(ga.evaluations, 10 + 10 * 25);
        assert!(!ga.front.is_empty());
        // Deterministic for a seed.
        let again = nsga2(&pb, &opts);
        assert_eq!(
            sorted_costs(&ga.front, crit3),
            sorted_costs(&again.front, crit3)
        );
        for g in &ga.front {
            check_point(&c, g);
            for e in &exact.points {
                assert!(
                    !dominates(&g.costs(crit3), &e.costs(crit3)),
                    "seed {seed}: NSGA-II point dominates an exact point"
                );
            }
        }
        // Hypervolumes, 3-D and the 2-D projections, from a common reference point.
        for crit in [
            crit3,
            FrontKind::EnergyAccuracy.criteria(),
            FrontKind::EnergyMemory.criteria(),
        ] {
            let exact2 = non_dominated(&exact.points, crit);
            let ga2 = non_dominated(&ga.front, crit);
            let reference: Vec<f64> = (0..crit.len())
                .map(|i| {
                    exact2
                        .iter()
                        .chain(&ga2)
                        .map(|p| p.costs(crit)[i])
                        .fold(f64::MIN, f64::max)
                        + 1.0
                })
                .collect();
            let he = front_hypervolume(&exact2, crit, &reference);
            let hg = front_hypervolume(&ga2, crit, &reference);
            assert!(he >= hg, "seed {seed} {crit:?}: {he} < {hg}");
            if crit.len() == 3 {
                println!(
                    "seed {seed}: exact {} points HV {he:.4e}, NSGA-II {} points HV {hg:.4e} ({:.1} %)",
                    exact.points.len(),
                    ga.front.len(),
                    100.0 * hg / he
                );
            }
        }
    }
}

/// Hypervolume by inclusion–exclusion over subsets (exact, tiny sets only).
fn hv_inclusion_exclusion(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let n = points.len();
    let mut total = 0.0;
    for mask in 1u32..(1 << n) {
        let mut corner = vec![f64::MIN; reference.len()];
        for (i, p) in points.iter().enumerate() {
            if mask & (1 << i) != 0 {
                for (c, x) in corner.iter_mut().zip(p) {
                    *c = c.max(*x);
                }
            }
        }
        let vol: f64 = corner
            .iter()
            .zip(reference)
            .map(|(c, r)| (r - c).max(0.0))
            .product();
        if mask.count_ones() % 2 == 1 {
            total += vol;
        } else {
            total -= vol;
        }
    }
    total
}

#[test]
fn hypervolume_is_exact() {
    assert_eq!(
        hypervolume(&[vec![1.0, 2.0], vec![2.0, 1.0]], &[3.0, 3.0]),
        3.0
    );
    assert_eq!(hypervolume(&[vec![0.0, 0.0, 0.0]], &[1.0, 2.0, 3.0]), 6.0);
    assert_eq!(
        hypervolume(
            &[vec![0.0, 0.0, 1.0], vec![1.0, 1.0, 0.0]],
            &[2.0, 2.0, 2.0]
        ),
        5.0
    );
    // Points outside the reference box count nothing.
    assert_eq!(hypervolume(&[vec![4.0, 0.0]], &[3.0, 3.0]), 0.0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for d in [2usize, 3] {
        for _ in 0..50 {
            let n = rng.random_range(1..8usize);
            let pts: Vec<Vec<f64>> = (0..n)
                .map(|_| (0..d).map(|_| rng.random_range(0..16u32) as f64).collect())
                .collect();
            let reference = vec![16.0; d];
            assert_eq!(
                hypervolume(&pts, &reference),
                hv_inclusion_exclusion(&pts, &reference),
                "{pts:?}"
            );
        }
    }
}

fn load_network(name: &str) -> Vec<Layer> {
    let path = root().join(format!("models/nets/{name}.yaml"));
    let net: NetworkSpec = spec::load_yaml(&path).unwrap();
    workload::build_network(&net, false, None, &path).unwrap()
}

/// A synthetic table for a real network: energies and cycles from a simple packing model (16-bit
/// words, floor(16/b) values per word), plus for some configurations a faster, costlier entry.
fn synthetic_table(layers: &[Layer], bits: &BitSets) -> EnergyTable {
    let mut t = EnergyTable::for_layers(layers);
    let words = |n: u64, b: u32| n.div_ceil((16 / b) as u64) as f64;
    for (i, l) in layers.iter().enumerate() {
        let size = |name: &str| l.problem.tensor_size(l.problem.tensor_index(name).unwrap());
        let (wsz, isz, osz) = (size("Weights"), size("Inputs"), size("Outputs"));
        let macs = l.problem.macs();
        let n = layers.len();
        let layer = &mut t.layers[i];
        for cfg in bits.layer_configs(l.producer, i + 1 == n) {
            let mac = 0.05 + 0.01 * (cfg.weight_bits * cfg.input_bits) as f64 / 8.0;
            let traffic = 2.0
                * (3.0 * words(wsz, cfg.weight_bits)
                    + 2.0 * words(isz, cfg.input_bits)
                    + 2.0 * words(osz, cfg.output_bits));
            let energy = macs as f64 * mac + traffic;
            let cycles = (macs / 168).max(
                ((words(wsz, cfg.weight_bits)
                    + words(isz, cfg.input_bits)
                    + words(osz, cfg.output_bits))
                    / 4.0) as u64,
            );
            layer.entries.push(TableEntry {
                bits: cfg,
                energy_pj: energy,
                cycles,
            });
            if (cfg.weight_bits + cfg.output_bits) % 3 == 0 {
                layer.entries.push(TableEntry {
                    bits: cfg,
                    energy_pj: energy * 1.04,
                    cycles: cycles * 4 / 5,
                });
            }
        }
    }
    t
}

#[test]
fn shipped_proxies_cover_the_networks() {
    for (net, fp) in [("mobilenet_v1", 70.6), ("mobilenet_v2", 72.0)] {
        let layers = load_network(net);
        let path = root().join(format!("models/accuracy/{net}_proxy.yaml"));
        let acc = AccuracyModel::load(&path).unwrap();
        assert_eq!(acc.kind(), AccuracyKind::Proxy);
        assert_eq!(acc.label(), "accuracy (proxy)");
        assert_eq!(acc.full_precision_accuracy(), fp);
        assert!(acc.source().contains("PROXY, NOT MEASURED"));
        assert!(acc.source().contains("must never be read"));
        let mut names: Vec<&str> = acc.layer_names();
        names.sort_unstable();
        let mut want: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        want.sort_unstable();
        assert_eq!(names, want, "{net}: proxy layers = network layers");
        let bits = BitSets::default();
        let table = synthetic_table(&layers, &bits);
        let pb = SelectionProblem::new(&table, &acc, &bits).unwrap();
        assert_eq!(pb.accuracy_kind(), AccuracyKind::Proxy);
        // Uniform designs: accuracy rises with bits; 8-bit loses little.
        let u: Vec<FrontPoint> = (2..=8).map(|b| pb.uniform(b).unwrap()).collect();
        for w in u.windows(2) {
            assert!(w[1].accuracy > w[0].accuracy);
            assert!(w[1].memory_bytes > w[0].memory_bytes);
        }
        assert!(fp - u[6].accuracy < 0.02);
        println!(
            "{net}: proxy accuracy of uniform 2..8-bit: {:?}",
            u.iter()
                .map(|p| (p.accuracy * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
    }
}

fn input_error(r: Result<AccuracyModel, qmap::spec::InputError>) -> qmap::spec::InputError {
    r.expect_err("the file is wrong")
}

#[test]
fn bad_kl_selections_name_the_field() {
    let p = Path::new("acc.yaml");
    let table = "kind: table\nfull_precision_accuracy: 90.0\nsource: test\n";
    let row = |kl: &str| {
        format!("deltas:\n  - {{layer: a, weight_bits: 4, activation_bits: 4, delta: -1{kl}}}\n  - {{layer: a, weight_bits: 8, activation_bits: 8, delta: 0, kl: 0.001}}\n")
    };
    for (text, field, says) in [
        (format!("{table}select_by: kl\n{}", row("")), "select_by", "every row"),
        (format!("{table}select_by: kl\n{}", row(", kl: -0.1")), "deltas[0].kl", ">= 0"),
        (format!("{table}max_cell_loss: -2\n{}", row(", kl: 0.1")), "max_cell_loss", ">= 0"),
        (format!("kind: kl\nfull_precision_accuracy: 90.0\nsource: test\n{}", row("")), "kind", "select_by"),
        (
            "kind: proxy\nfull_precision_accuracy: 70.0\nsource: t\nselect_by: kl\nrule: {first: 1, last: 1, grouped: 1, other: 1, total: 10}\n".into(),
            "select_by",
            "proxy",
        ),
    ] {
        let e = input_error(AccuracyModel::parse(p, &text));
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(says), "{e}");
    }
    // A good one: the score is −KL, the origin 0, the top-1 delta kept for reporting.
    let m = AccuracyModel::parse(
        p,
        &format!(
            "{table}select_by: kl\nmax_cell_loss: 0.5\n{}",
            row(", kl: 0.25")
        ),
    )
    .unwrap();
    assert_eq!((m.kind(), m.origin()), (AccuracyKind::Kl, 0.0));
    assert_eq!(
        (m.score("a", 4, 4), m.delta("a", 4, 4), m.kl("a", 8, 8)),
        (Some(-0.25), Some(-1.0), Some(0.001))
    );
    assert!(m.excluded("a", 4, 4) && !m.excluded("a", 8, 8));
}

#[test]
fn bad_accuracy_files_name_the_field() {
    let p = Path::new("acc.yaml");
    let head = "kind: proxy\nfull_precision_accuracy: 70.0\nsource: test\n";
    let e = input_error(AccuracyModel::parse(
        p,
        &format!("{head}layers:\n  - {{name: a, weight_sensitivity: 1, activation_sensitivity: 1}}\n  - {{name: b, weight_sensitivity: high, activation_sensitivity: 1}}\n"),
    ));
    assert_eq!(e.file, "acc.yaml");
    assert!(e.field.contains("weight_sensitivity"), "{e}");
    let e = input_error(AccuracyModel::parse(
        p,
        &format!(
            "{head}layers:\n  - {{name: a, weight_sensitivity: -1, activation_sensitivity: 1}}\n"
        ),
    ));
    assert_eq!(e.field, "layers[0].weight_sensitivity", "{e}");
    let e = input_error(AccuracyModel::parse(
        p,
        &format!("{head}layers:\n  - {{name: a, weight_sensitivity: 1, activation_sensitivity: 1, bias: 2}}\n"),
    ));
    assert!(e.to_string().contains("bias"), "{e}");
    let e = input_error(AccuracyModel::parse(
        p,
        "kind: proxy\nfull_precision_accuracy: 170.0\nsource: x\nlayers: []\n",
    ));
    assert_eq!(e.field, "full_precision_accuracy");
    let e = input_error(AccuracyModel::parse(
        p,
        "kind: table\nfull_precision_accuracy: 70.0\nsource: x\n",
    ));
    assert_eq!(e.field, "deltas");
    let e = input_error(AccuracyModel::parse(
        p,
        "kind: guess\nfull_precision_accuracy: 70.0\nsource: x\n",
    ));
    assert!(
        e.field.contains("kind") || e.message.contains("guess"),
        "{e}"
    );
    let e = input_error(AccuracyModel::parse(
        p,
        "kind: table\nfull_precision_accuracy: 70.0\nsource: x\ndeltas:\n  - {layer: a, weight_bits: 8, activation_bits: 8, delta: 0}\n  - {layer: a, weight_bits: 8, activation_bits: 8, delta: -1}\n",
    ));
    assert_eq!(e.field, "deltas[1]", "{e}");

    // CSV: a bad number names the line and the column.
    let dir = std::env::temp_dir().join(format!("qmap-front-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("deltas.csv");
    std::fs::write(
        &csv,
        "# measured with PTQ\nlayer,weight_bits,activation_bits,delta\na,8,8,-0.1\na,4,8,minus\n",
    )
    .unwrap();
    let yaml = dir.join("acc.yaml");
    std::fs::write(
        &yaml,
        "kind: table\nfull_precision_accuracy: 70.0\nsource: x\ndeltas_csv: deltas.csv\n",
    )
    .unwrap();
    let e = input_error(AccuracyModel::load(&yaml));
    assert_eq!(e.file, csv.display().to_string());
    assert_eq!(e.field, "line 4: delta", "{e}");

    // A table missing a pair the network needs: the selection names the file and field.
    std::fs::write(
        &csv,
        "layer,weight_bits,activation_bits,delta\nl0,8,8,0\nl0,4,8,-1\nl1,8,8,0\n",
    )
    .unwrap();
    let acc = AccuracyModel::load(&yaml).unwrap();
    assert_eq!(acc.kind(), AccuracyKind::Table);
    assert_eq!(acc.label(), "accuracy (table)");
    assert_eq!(acc.delta("l0", 4, 8), Some(-1.0));
    let bits = BitSets {
        weights: vec![4, 8],
        activations: vec![4, 8],
        ..BitSets::default()
    };
    let mut table = EnergyTable::default();
    for (l, producer) in [(0, None), (1, Some(0))] {
        table.layers.push(LayerTable {
            name: format!("l{l}"),
            weights: 10,
            producer,
            entries: bits
                .layer_configs(producer, l == 1)
                .into_iter()
                .map(|bits| TableEntry {
                    bits,
                    energy_pj: 1.0,
                    cycles: 1,
                })
                .collect(),
        });
    }
    match SelectionProblem::new(&table, &acc, &bits) {
        Err(FrontError::Input(e)) => {
            assert_eq!(e.file, csv.display().to_string());
            assert_eq!(e.field, "rows");
            assert!(e.message.contains("l1"), "{e}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    // Inline deltas work the same.
    let inline = AccuracyModel::parse(
        p,
        "kind: table\nfull_precision_accuracy: 70.0\nsource: x\ndeltas:\n  - {layer: l0, weight_bits: 8, activation_bits: 8, delta: 0}\n  - {layer: zz, weight_bits: 8, activation_bits: 8, delta: 0}\n",
    )
    .unwrap();
    match SelectionProblem::new(&table, &inline, &bits) {
        Err(FrontError::Input(e)) => {
            assert_eq!(e.field, "deltas");
            assert!(e.message.contains("zz"), "{e}");
        }
        other => panic!("expected an input error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn svg_plot_is_written() {
    let c = random_case(11);
    let pb = problem(&c);
    let f = trace_front(&pb, FrontKind::EnergyAccuracy, &unlimited()).unwrap();
    let ga = nsga2(&pb, &Nsga2Options::default());
    let u = pb.uniform(c.bits.weights[c.bits.weights.len() - 1]);
    let marks: Vec<PlotMark> = u
        .iter()
        .map(|p| PlotMark::from_point("uniform", p))
        .chain(std::iter::once(PlotMark {
            label: "uniform 16-bit".into(),
            energy_pj: f.points.last().unwrap().energy_pj * 1.5,
            accuracy: 70.0,
            memory_bytes: 1e4,
            cycles: None,
            style: MarkStyle::Reference,
        }))
        .collect();
    let dir = std::env::temp_dir().join(format!("qmap-front-svg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (kind, name, x_desc) in [
        (FrontKind::EnergyAccuracy, "acc.svg", "accuracy (proxy) [%]"),
        (FrontKind::EnergyMemory, "mem.svg", "weight memory [MiB]"),
        (
            FrontKind::EnergyCycles,
            "cyc.svg",
            "latency [million cycles]",
        ),
        (
            FrontKind::EnergyAccuracyMemory,
            "both.svg",
            "weight memory [MiB]",
        ),
    ] {
        let path = dir.join(name);
        let incomplete = (kind == FrontKind::EnergyMemory).then_some("stopped after 3 points");
        FrontPlot {
            title: "test front",
            kind,
            method: "exact front (label search)",
            accuracy_label: AccuracyKind::Proxy.label(),
            front: &f.points,
            baseline: Some(("NSGA-II", &ga.front)),
            marks: &marks,
            incomplete,
        }
        .write_svg(&path)
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("<svg"));
        assert!(svg.contains("<text"), "axis labels are SVG text");
        assert!(svg.contains("energy [µJ]"));
        assert!(svg.contains(x_desc), "{name}: the x axis is {x_desc}");
        assert!(svg.contains("exact front (label search)"));
        // The 16-bit mark has no cycles: on every axis but cycles.
        assert_eq!(
            svg.contains("uniform 16-bit"),
            kind != FrontKind::EnergyCycles,
            "{name}"
        );
        assert_eq!(
            svg.contains("INCOMPLETE FRONT"),
            incomplete.is_some(),
            "{name}"
        );
    }
    let both = std::fs::read_to_string(dir.join("both.svg")).unwrap();
    assert!(
        both.contains("accuracy (proxy) [%]"),
        "the 3-D plot has both panels"
    );
    assert!(svg_has_accuracy_label(&dir.join("acc.svg")));
    std::fs::remove_dir_all(&dir).ok();
}

fn svg_has_accuracy_label(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .unwrap()
        .contains("accuracy (proxy) [%]")
}

/// Not an assertion on time: prints how long the fronts take on MobileNetV2 (53 layers) with
/// bits 2..8, the shipped proxy and a synthetic packing-model table.
#[test]
fn timing_mobilenet_v2_bits_2_to_8() {
    let layers = load_network("mobilenet_v2");
    let bits = BitSets::default();
    let table = synthetic_table(&layers, &bits);
    let acc = AccuracyModel::load(&root().join("models/accuracy/mobilenet_v2_proxy.yaml")).unwrap();
    let pb = SelectionProblem::new(&table, &acc, &bits).unwrap();
    let u8 = pb.uniform(8).unwrap();
    let opts = FrontOptions {
        limits: TraceLimits::points(15),
        budgets: Budgets {
            min_accuracy: Some(u8.accuracy - 2.0),
            ..Budgets::default()
        },
        ..FrontOptions::default()
    };
    for kind in KINDS {
        let f = trace_front(&pb, kind, &opts).unwrap();
        println!(
            "MobileNetV2 {kind:?}: {} points in {:.2} s ({:.3} s/point), {} solves ({:.3} s/solve), {} cache hits, entries {} -> {} after pruning, complete {}",
            f.points.len(),
            f.seconds,
            f.seconds / f.points.len().max(1) as f64,
            f.solves,
            f.seconds / f.solves.max(1) as f64,
            f.cache_hits,
            f.entries,
            f.entries_kept,
            f.complete
        );
        assert!(!f.points.is_empty());
        for p in &f.points {
            assert!(p.accuracy >= u8.accuracy - 2.0);
        }
        if kind == FrontKind::EnergyCycles {
            let m = min_edp(&f).unwrap();
            println!(
                "  min-EDP point of the truncated front: {:.4e} pJ·cycles",
                m.edp()
            );
        }
    }
    let t = Instant::now();
    let ga = nsga2(&pb, &Nsga2Options::default());
    println!(
        "MobileNetV2 NSGA-II: {} points, {} evaluations, {:.3} s",
        ga.front.len(),
        ga.evaluations,
        t.elapsed().as_secs_f64()
    );
    let s = select(&pb, Goal::Energy, &opts.budgets, None)
        .unwrap()
        .unwrap();
    println!(
        "MobileNetV2 select(energy, accuracy >= uniform8 - 2): {:.4e} pJ vs uniform 8-bit {:.4e} pJ, accuracy {:.3} (proxy)",
        s.energy_pj, u8.energy_pj, s.accuracy
    );
}

/// A measured table selecting by KL (`select_by: kl`, with `max_cell_loss`), read from YAML:
/// its fronts equal brute force over a hand-built top-1 table whose deltas are −KL and which
/// lacks the cells whose delta is below −max_cell_loss; every point's score is −Σ KL of its
/// cells and no point uses a left-out cell. Over random cases, with the left-out cells counted.
#[test]
fn kl_table_selects_by_kl_without_left_out_cells() {
    let dir = std::env::temp_dir().join(format!("qmap-front-kl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut left_out, mut points) = (0, 0);
    for seed in 0..12u64 {
        let c = random_case(seed);
        let AccuracyModel::Table(top1) = &c.accuracy else {
            unreachable!()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
        // Leave out cells below −t, where t keeps every layer's best selectable cell (its
        // input bits: the network input's for the first layer, else an activation width).
        let best = |(name, m): (&String, &BTreeMap<(u32, u32), f64>)| {
            let first = c
                .table
                .layers
                .iter()
                .any(|l| &l.name == name && l.producer.is_none());
            let ok = |a: u32| {
                if first {
                    a == c.bits.first_input
                } else {
                    c.bits.activations.contains(&a)
                }
            };
            let d = m.iter().filter(|((_, a), _)| ok(*a)).map(|(_, &d)| d);
            -d.fold(f64::MIN, f64::max)
        };
        let t = top1.deltas.iter().map(best).fold(0.0, f64::max) + 1.0 / 64.0;
        let (mut yaml, mut oracle) = (String::new(), BTreeMap::new());
        yaml += &format!("kind: table\nfull_precision_accuracy: 70.0\nsource: test\nselect_by: kl\nmax_cell_loss: {t}\ndeltas:\n");
        for (layer, cells) in &top1.deltas {
            let mut m = BTreeMap::new();
            for (&(w, a), &d) in cells {
                let kl = rng.random_range(0..4096u32) as f64 / 1024.0;
                yaml += &format!("  - {{layer: {layer}, weight_bits: {w}, activation_bits: {a}, delta: {d}, kl: {kl}}}\n");
                // A left-out cell: a score no design within the budget below can have.
                m.insert((w, a), if d >= -t { -kl } else { -1e6 });
                left_out += usize::from(d < -t);
            }
            oracle.insert(layer.clone(), m);
        }
        let file = dir.join(format!("kl{seed}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        let model = AccuracyModel::load(&file).unwrap();
        assert_eq!(model.kind(), AccuracyKind::Kl);
        let by_kl = SelectionProblem::new(&c.table, &model, &c.bits).unwrap();
        let by_hand = AccuracyModel::Table(AccuracyTable {
            full_precision_accuracy: 0.0,
            deltas: oracle.clone(),
            ..top1.clone()
        });
        let hand = SelectionProblem::new(&c.table, &by_hand, &c.bits).unwrap();
        let kind = FrontKind::EnergyAccuracy;
        let f = trace_front(&by_kl, kind, &unlimited()).unwrap();
        let budgets = Budgets {
            min_accuracy: Some(-1e5),
            ..Budgets::default()
        };
        let bf = brute_force_front(&hand, kind, &budgets);
        assert_eq!(
            sorted_costs(&f.points, kind.criteria()),
            sorted_costs(&bf, kind.criteria()),
            "seed {seed}"
        );
        for p in &f.points {
            let cell = |l: &qmap::front::LayerChoice| {
                oracle[&l.name]
                    .get(&(l.bits.weight_bits, l.bits.input_bits))
                    .copied()
            };
            let score: Option<f64> = p.layers.iter().map(cell).sum();
            assert_eq!(Some(p.accuracy), score, "seed {seed}: a wrong score");
            assert!(p.accuracy > -1e5, "seed {seed}: a left-out cell selected");
        }
        points += f.points.len();
    }
    assert!(
        left_out > 20 && points > 20,
        "coverage: {left_out} cells left out, {points} points"
    );
    std::fs::remove_dir_all(&dir).ok();
}
