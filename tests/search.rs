//! Mapspace and baseline mappers: the size equals what the enumeration yields, every enumerated
//! or sampled mapping belongs to the space, the exhaustive optimum bounds random search, random
//! search is reproducible, and Timeloop constraint files restrict the space as they say.

mod common;

use qmap::eval::evaluate;
use qmap::mapspace::{Constraints, KeepChoice, LoopKind, Mapspace, SlotKind, SpatialDir};
use qmap::model::{conv_problem, Arch, Level, Mac, Mapping, ModelOptions, Problem};
use qmap::search::{exhaustive, exhaustive_choices, objective_value, random, StopReason};
use qmap::spec::Objective;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use std::collections::HashSet;
use std::path::Path;

/// A storage level: `instances` laid out `mesh_x` wide, `depth` words (None = unbounded).
fn level(name: &str, instances: u64, mesh_x: u64, depth: Option<u64>, energy: f64) -> Level {
    Level {
        name: name.into(),
        instances,
        mesh_x,
        mesh_y: instances / mesh_x,
        depth,
        width: 16,
        word_bits: 16,
        block_size: 1,
        cluster_size: 1,
        dummy: false,
        must_keep: vec![],
        must_bypass: vec![],
        read_energy: energy,
        write_energy: energy * 1.2,
        update_energy: energy * 1.2,
        read_bandwidth: None,
        write_bandwidth: None,
        shared_bandwidth: None,
    }
}

fn dummy(name: &str, instances: u64, mesh_x: u64) -> Level {
    Level {
        dummy: true,
        ..level(name, instances, mesh_x, Some(1), 0.0)
    }
}

fn arch(name: &str, levels: Vec<Level>, macs: u64, mac_x: u64) -> Arch {
    Arch {
        name: name.into(),
        levels,
        mac: Mac {
            name: "mac".into(),
            instances: macs,
            mesh_x: mac_x,
            mesh_y: macs / mac_x,
            energy: 1.0,
            energy_table: vec![],
        },
    }
}

/// Register file per PE (2×2 PEs), a shared buffer, DRAM.
fn tiny_arch() -> Arch {
    let mut rf = level("RF", 4, 2, Some(8), 0.5);
    rf.must_keep = vec!["Weights".into()];
    arch(
        "tiny",
        vec![
            rf,
            level("Buf", 1, 1, Some(64), 6.0),
            level("DRAM", 1, 1, None, 200.0),
        ],
        4,
        2,
    )
}

fn tiny_problem() -> Problem {
    // N1 M4 C2 P3 Q1 R2 S1
    conv_problem("tiny", false, [1, 4, 2, 3, 1, 2, 1], [1, 1, 1, 1])
}

fn constraints(arch: &Arch, yaml: &str) -> Constraints {
    let mut c = Constraints::new(arch);
    c.add_yaml_str(yaml, Path::new("inline.yaml"), arch)
        .unwrap_or_else(|e| panic!("{e}"));
    c
}

/// Enumerates the space and checks that it yields exactly `size()` distinct mappings, each a
/// perfect factorisation inside the space; returns them.
fn enumerate_checked(space: &Mapspace) -> Vec<Mapping> {
    let p = space.problem();
    let mut all = Vec::new();
    space.for_each(|m| {
        for d in 0..p.dims.len() {
            let prod: u64 = m
                .levels
                .iter()
                .map(|lm| lm.temporal_factor(d) * lm.spatial_factor(d))
                .product();
            assert_eq!(prod, p.bounds[d], "factors of {}", p.dims[d]);
        }
        for (l, lm) in m.levels.iter().enumerate() {
            let (fx, fy) = space.arch().fanout(l);
            assert!(lm.spatial_x_product() <= fx && lm.spatial_y_product() <= fy);
            // Every dim appears once among the temporal loops (unit loops included).
            let dims: HashSet<usize> = lm.temporal.iter().map(|l| l.dim).collect();
            assert_eq!(dims.len(), p.dims.len());
            assert_eq!(lm.temporal.len(), p.dims.len());
        }
        if let Err(e) = space.check(m) {
            panic!("enumerated mapping not contained: {e}\n{m:?}");
        }
        all.push(m.clone());
    });
    assert_eq!(all.len() as u128, space.size(), "size() vs enumeration");
    let (by_levels, by_dims) = space.order_counts();
    assert_eq!(
        by_levels.unwrap().0,
        by_dims.unwrap().0,
        "the two order counts differ"
    );
    let distinct: HashSet<&Mapping> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "duplicate mappings enumerated");
    all
}

#[test]
fn size_matches_enumeration() {
    let a = tiny_arch();
    let p = tiny_problem();
    let space = Mapspace::unconstrained(&p, &a).unwrap();
    eprintln!(
        "tiny unconstrained: {} mappings, {} factorisations, {} bypass patterns",
        space.size(),
        space.factorisations(),
        space.bypass_patterns()
    );
    assert_eq!(space.size() as f64, space.size_f64());
    let all = enumerate_checked(&space);
    // Level 1 has a 2×2 fanout: slots RF:T, Buf:X, Buf:Y, Buf:T, DRAM:T.
    let kinds: Vec<(usize, SlotKind)> = space.slots().iter().map(|s| (s.level, s.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (0, SlotKind::Temporal),
            (1, SlotKind::SpatialX),
            (1, SlotKind::SpatialY),
            (1, SlotKind::Temporal),
            (2, SlotKind::Temporal),
        ]
    );
    // A dim may straddle X and Y when nothing forbids it.
    assert!(all.iter().any(|m| {
        let lm = &m.levels[1];
        lm.spatial_x
            .iter()
            .any(|x| lm.spatial_y.iter().any(|y| y.dim == x.dim))
    }));
    // Weights must be kept at RF; DRAM keeps everything; the rest is free.
    assert_eq!(space.keep_choice(0, 0), KeepChoice::Fixed(true));
    assert_eq!(space.keep_choice(2, 1), KeepChoice::Fixed(true));
    assert_eq!(
        space.free_keeps(),
        &[(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    );
    assert_eq!(space.bypass_patterns(), 32);
    // The accessors the MILP uses agree with the choices.
    for d in 0..p.dims.len() {
        let primes: u64 = space
            .prime_factors(d)
            .iter()
            .map(|&(q, e)| q.pow(e))
            .product();
        assert_eq!(primes, p.bounds[d]);
        for c in space.dim_choices(d) {
            for (s, f) in c.iter().enumerate() {
                assert!(space.allowed_factors(d, s).contains(f));
            }
        }
    }
    // Samples belong to the space.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..500 {
        let m = space.sample(&mut rng);
        assert!(space.contains(&m), "{:?}", space.check(&m));
    }
}

/// An independent count of the tiny unconstrained space: every factor vector per dim over the
/// five slots, the 2×2 fanout checked jointly, (non-unit loops)! orders at Buf and DRAM, 32
/// bypass patterns.
#[test]
fn size_matches_brute_force_count() {
    let a = tiny_arch();
    for p in [
        tiny_problem(),
        conv_problem("b", false, [2, 4, 3, 2, 2, 1, 2], [1, 1, 1, 1]),
    ] {
        let per_dim: Vec<Vec<[u64; 5]>> = p
            .bounds
            .iter()
            .map(|&b| {
                let divs: Vec<u64> = (1..=b).filter(|x| b % x == 0).collect();
                let mut out = Vec::new();
                for &t0 in &divs {
                    for &x in &divs {
                        for &y in &divs {
                            for &t1 in &divs {
                                if x <= 2 && y <= 2 && b % (t0 * x * y * t1) == 0 {
                                    out.push([t0, x, y, t1, b / (t0 * x * y * t1)]);
                                }
                            }
                        }
                    }
                }
                out
            })
            .collect();
        fn rec(d: usize, per_dim: &[Vec<[u64; 5]>], acc: &mut Vec<[u64; 5]>, total: &mut u128) {
            if d == per_dim.len() {
                let xs: u64 = acc.iter().map(|c| c[1]).product();
                let ys: u64 = acc.iter().map(|c| c[2]).product();
                if xs <= 2 && ys <= 2 {
                    let fact = |n: usize| (1..=n as u128).product::<u128>();
                    let buf = acc.iter().filter(|c| c[3] > 1).count();
                    let dram = acc.iter().filter(|c| c[4] > 1).count();
                    *total += fact(buf) * fact(dram);
                }
                return;
            }
            for c in &per_dim[d] {
                acc.push(*c);
                rec(d + 1, per_dim, acc, total);
                acc.pop();
            }
        }
        let mut total = 0u128;
        rec(0, &per_dim, &mut Vec::new(), &mut total);
        let space = Mapspace::unconstrained(&p, &a).unwrap();
        assert_eq!(space.size(), total * 32, "{}", p.name);
        let (by_levels, by_dims) = space.order_counts();
        assert_eq!(by_levels.unwrap().0, total);
        assert_eq!(by_dims.unwrap().0, total);
    }
}

#[test]
fn contains_rejects_what_the_space_excludes() {
    let a = tiny_arch();
    let p = tiny_problem();
    let space = Mapspace::unconstrained(&p, &a).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let m = space.sample(&mut rng);
    // Bypassing Weights at RF violates the architecture.
    let mut bad = m.clone();
    bad.levels[0].keep[0] = false;
    assert!(!space.contains(&bad));
    // Wrong factor product.
    let mut bad = m.clone();
    bad.levels[2]
        .temporal
        .push(qmap::model::Loop { dim: 1, factor: 2 });
    assert!(!space.contains(&bad));
    // Unit loops are optional: dropping them keeps the mapping in the space.
    let mut lean = m.clone();
    for lm in &mut lean.levels {
        lm.temporal.retain(|l| l.factor > 1);
    }
    assert!(space.contains(&lean));
}

/// Constraints of every kind on the tiny architecture: the enumeration still matches the size
/// and every mapping obeys them.
#[test]
fn constrained_spaces_match_their_size() {
    let a = tiny_arch();
    let p = tiny_problem();
    let cases = [
        // Partial temporal permutation at Buf (M innermost), split all-X, remaining factor.
        r#"
mapspace_constraints:
  targets:
    - {target: Buf, type: temporal, permutation: M}
    - {target: Buf, type: spatial, split: 999, factors: N=1 P=1}
    - {target: DRAM, type: temporal, factors: "C=0", permutation: "P R"}
"#,
        // Split all-Y with a listed order, max factor, bypass.
        r#"
architecture_constraints:
  targets:
    - {target: Buf, type: spatial, permutation: CMNPQRS, split: 0}
    - {target: RF, type: temporal, factors: "M<=2"}
    - {target: RF, type: bypass, bypass: [Outputs], keep: [Inputs]}
"#,
        // Spatial order without split on a 2-D fanout (the split point is free).
        r#"
targets:
  - {target: Buf, type: spatial, permutation: "R M C", factors: "N=1,P=1"}
  - {target: Buf, type: temporal, permutation: [R, C]}
"#,
        // v0.4 spelling with attributes and list factors.
        r#"
constraints:
  version: 0.4
  targets:
    - target: Buf[0..0]
      type: temporal
      attributes: {factors: ["M=2", "R=1"], permutation: "CP"}
    - target: 0
      type: datatype
      bypass: [Inputs]
"#,
    ];
    for (i, yaml) in cases.iter().enumerate() {
        let c = constraints(&a, yaml);
        let space = Mapspace::new(&p, &a, &c).unwrap_or_else(|e| panic!("case {i}: {e}"));
        eprintln!("case {i}: {} mappings", space.size());
        let all = enumerate_checked(&space);
        assert!(!all.is_empty());
        let (m_, c_, p_, r_) = (1, 2, 3, 5);
        for m in &all {
            let buf = &m.levels[1];
            let order: Vec<usize> = buf
                .temporal
                .iter()
                .filter(|l| l.factor > 1)
                .map(|l| l.dim)
                .collect();
            match i {
                0 => {
                    assert!(buf.spatial_y.is_empty());
                    assert!(buf.spatial_x.iter().all(|l| l.dim != 0 && l.dim != p_));
                    if buf.temporal_factor(m_) > 1 {
                        assert_eq!(order[0], m_);
                    }
                    assert_eq!(m.levels[2].temporal_factor(c_), 2);
                    assert_eq!(m.levels[0].temporal_factor(c_), 1);
                    assert_eq!(buf.temporal_factor(c_) * buf.spatial_factor(c_), 1);
                }
                1 => {
                    assert!(buf.spatial_x.is_empty());
                    assert!(m.levels[0].temporal_factor(m_) <= 2);
                    assert!(!m.levels[0].keep[2] && m.levels[0].keep[1]);
                }
                2 => {
                    // No X loop of a dim listed after a Y loop's dim; unlisted dims go last.
                    let pos = |d: usize| [r_, m_, c_].iter().position(|&x| x == d).unwrap_or(3);
                    let max_x = buf.spatial_x.iter().map(|l| pos(l.dim)).max();
                    let min_y = buf.spatial_y.iter().map(|l| pos(l.dim)).min();
                    if let (Some(x), Some(y)) = (max_x, min_y) {
                        assert!(x < y || (x == 3 && y == 3), "{buf:?}");
                    }
                    for l in &buf.spatial_x {
                        assert!(buf.spatial_y.iter().all(|y| y.dim != l.dim));
                    }
                    let listed: Vec<usize> = order
                        .iter()
                        .copied()
                        .filter(|d| [r_, c_].contains(d))
                        .collect();
                    assert_eq!(&order[..listed.len()], &listed[..]);
                    if listed.len() == 2 {
                        assert_eq!(listed, vec![r_, c_]);
                    }
                }
                _ => {
                    assert_eq!(buf.temporal_factor(m_), 2);
                    assert_eq!(buf.temporal_factor(r_), 1);
                    assert!(!m.levels[0].keep[1]);
                }
            }
        }
        if i == 2 {
            assert!(space.spatial_rule(1).order.is_some());
            // Some mapping uses both axes.
            assert!(all
                .iter()
                .any(|m| !m.levels[1].spatial_x.is_empty() && !m.levels[1].spatial_y.is_empty()));
        }
    }
}

#[test]
fn level0_loop_order_changes_no_count() {
    let a = tiny_arch();
    let p = conv_problem("l0", false, [1, 4, 4, 3, 2, 3, 1], [1, 1, 1, 1]);
    let space = Mapspace::unconstrained(&p, &a).unwrap();
    let opts = ModelOptions::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut compared = 0;
    for _ in 0..3000 {
        let m = space.sample(&mut rng);
        if m.levels[0].temporal.iter().filter(|l| l.factor > 1).count() < 2 {
            continue;
        }
        let e1 = evaluate(&p, &a, &m, &opts);
        let mut r = m.clone();
        r.levels[0].temporal.reverse();
        assert!(space.contains(&r));
        let e2 = evaluate(&p, &a, &r, &opts);
        assert_eq!(e1.valid, e2.valid);
        if e1.valid {
            assert_eq!(e1.energy_pj, e2.energy_pj);
            assert_eq!(e1.cycles, e2.cycles);
            compared += 1;
        }
    }
    assert!(compared > 20, "only {compared} comparisons");
}

#[test]
fn exhaustive_bounds_random_search() {
    let a = tiny_arch();
    let p = tiny_problem();
    let space = Mapspace::unconstrained(&p, &a).unwrap();
    eprintln!("exhaustive space: {} mappings", space.size());
    let opts = ModelOptions::default();
    for obj in [Objective::Energy, Objective::Latency, Objective::Edp] {
        let ex = exhaustive(&space, &opts, obj, Some(10_000_000)).unwrap();
        assert_eq!(ex.stop, StopReason::Exhausted);
        assert_eq!(ex.evaluated as u128, space.size());
        assert!(ex.valid > 0 && ex.valid <= ex.evaluated);
        let best = ex.best.as_ref().unwrap();
        assert!(space.contains(best));
        let e = evaluate(&p, &a, best, &opts);
        assert_eq!(objective_value(&e, obj), ex.value);
        // Sequential scan: same optimum, and the same (first) argmin.
        let mut seq: Option<(f64, f64, u64, Mapping)> = None;
        space.for_each(|m| {
            let e = evaluate(&p, &a, m, &opts);
            if e.valid {
                let k = (objective_value(&e, obj), e.energy_pj, e.cycles);
                if seq
                    .as_ref()
                    .is_none_or(|s| (k.0, k.1, k.2 as f64) < (s.0, s.1, s.2 as f64))
                {
                    seq = Some((k.0, k.1, k.2, m.clone()));
                }
            }
        });
        let seq = seq.unwrap();
        assert_eq!(seq.0, ex.value);
        assert_eq!(
            &seq.3, best,
            "tie-breaking differs from the sequential order"
        );
        // Random search never beats it; neither does any sample.
        let r = random(&space, &opts, obj, 11, 2000, Some(500));
        assert!(
            r.value >= ex.value,
            "{obj:?}: random {} < exhaustive {}",
            r.value,
            ex.value
        );
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..500 {
            let e = evaluate(&p, &a, &space.sample(&mut rng), &opts);
            if e.valid {
                assert!(objective_value(&e, obj) >= ex.value);
            }
        }
        eprintln!(
            "{obj:?}: optimum {} ({} valid of {}), random {} after {} valid ({:?})",
            ex.value, ex.valid, ex.evaluated, r.value, r.valid, r.stop
        );
    }
    // Over the limit: refused, naming the size.
    let err = exhaustive(&space, &opts, Objective::Energy, Some(10)).unwrap_err();
    assert!(err.contains(&space.size().to_string()), "{err}");
}

/// One enumeration priced at many bit-widths finds, for every choice, the optimum that a
/// separate exhaustive search at that choice finds (seed and ideal packing, psum bits).
#[test]
fn exhaustive_over_bit_choices_matches_one_search_per_choice() {
    use qmap::model::{Bits, PsumPolicy};
    use qmap::spec::PackingMode;
    let a = tiny_arch();
    let p = tiny_problem();
    let space = Mapspace::unconstrained(&p, &a).unwrap();
    let mut choices = vec![];
    for packing in [PackingMode::Seed, PackingMode::Ideal] {
        for psum in [PsumPolicy::OutputBits, PsumPolicy::Bits(16)] {
            for (w, i, o) in [
                (2, 2, 2),
                (3, 8, 4),
                (4, 4, 8),
                (5, 6, 7),
                (8, 8, 8),
                (16, 16, 16),
            ] {
                // tensor order of conv_problem: Weights, Inputs, Outputs
                choices.push(ModelOptions {
                    bits: Some(Bits(vec![w, i, o])),
                    packing,
                    psum,
                    seed_compat: false,
                });
            }
        }
    }
    choices.push(ModelOptions::default());
    let all = exhaustive_choices(&space, &choices, None, None).unwrap();
    let mut distinct = std::collections::BTreeSet::new();
    for (o, got) in choices.iter().zip(&all) {
        let ex = exhaustive(&space, o, Objective::Energy, None).unwrap();
        let e = got.evaluation.as_ref().unwrap();
        assert_eq!(e.energy_pj, ex.value, "{o:?}");
        assert_eq!(e.cycles, ex.evaluation.as_ref().unwrap().cycles, "{o:?}");
        assert!(space.contains(got.mapping.as_ref().unwrap()));
        distinct.insert((e.energy_pj * 1e6) as u64);
    }
    // The choices really differ (the test would be weak if they all had one optimum).
    assert!(distinct.len() >= 10, "{distinct:?}");
}

#[test]
fn random_search_is_reproducible() {
    let a = tiny_arch();
    let p = conv_problem("rnd", false, [1, 8, 4, 6, 2, 3, 1], [1, 1, 1, 1]);
    let space = Mapspace::unconstrained(&p, &a).unwrap();
    let opts = ModelOptions::default();
    let r1 = random(&space, &opts, Objective::Edp, 42, 300, None);
    let r2 = random(&space, &opts, Objective::Edp, 42, 300, None);
    assert_eq!(r1.stop, StopReason::MaxSamples);
    assert_eq!(r1.valid, 300);
    assert_eq!(r1.best, r2.best);
    assert_eq!(r1.value, r2.value);
    assert_eq!((r1.evaluated, r1.valid), (r2.evaluated, r2.valid));
    // Victory stops early and counts only valid samples.
    let r3 = random(&space, &opts, Objective::Energy, 9, 1_000_000, Some(50));
    assert_eq!(r3.stop, StopReason::Victory);
    assert!(r3.valid < 1_000_000 && r3.valid >= 50);
    // A different seed explores differently.
    let r4 = random(&space, &opts, Objective::Edp, 43, 300, None);
    assert!(r4.evaluated != r1.evaluated || r4.best != r1.best);
}

#[test]
fn constraint_errors_name_file_and_field() {
    let a = tiny_arch();
    let mut c = Constraints::new(&a);
    let e = c
        .add_yaml_str(
            "mapspace_constraints:\n  targets:\n    - {target: Buf, type: temporal}\n    - {target: GLB, type: temporal, factors: M=1}\n",
            Path::new("cons.yaml"),
            &a,
        )
        .unwrap_err();
    assert_eq!(e.file, "cons.yaml");
    assert_eq!(e.field, "mapspace_constraints.targets[1].target");
    assert!(
        e.message.contains("GLB") && e.message.contains("Buf"),
        "{e}"
    );
    // Re-specification with a different value.
    let e = c
        .add_yaml_str(
            "targets:\n  - {target: Buf, type: temporal, factors: M=2}\n  - {target: Buf, type: temporal, factors: M=4}\n",
            Path::new("x.yaml"),
            &a,
        )
        .unwrap_err();
    assert_eq!(e.field, "targets[1].factors");
    // Unknown type; unknown dim (reported by the mapspace with its origin).
    let e = Constraints::new(&a)
        .add_yaml_str(
            "targets: [{target: DRAM, type: foo}]",
            Path::new("y.yaml"),
            &a,
        )
        .unwrap_err();
    assert_eq!(e.field, "targets[0].type");
    let c = constraints(
        &a,
        "targets: [{target: DRAM, type: temporal, factors: K=1}]",
    );
    let err = Mapspace::new(&tiny_problem(), &a, &c).unwrap_err();
    assert!(err.contains("inline.yaml") && err.contains("`K`"), "{err}");
    // A fixed factor that does not divide the bound leaves no mapping: an empty space, with
    // the reason (infeasible, not an error).
    let c = constraints(&a, "targets: [{target: Buf, type: temporal, factors: P=2}]");
    let space = Mapspace::new(&tiny_problem(), &a, &c).unwrap();
    assert!(space.is_empty());
    let why = space.empty_reason().unwrap();
    assert!(
        why.contains("no factorisation of P") && why.contains("inline.yaml"),
        "{why}"
    );
    // Constraints against the architecture's keep rules.
    let c = constraints(
        &a,
        "targets: [{target: RF, type: bypass, bypass: [Weights]}]",
    );
    assert!(Mapspace::new(&tiny_problem(), &a, &c).is_err());
    // Ignored kinds leave a note.
    let c = constraints(
        &a,
        "targets: [{target: Buf, type: utilization, min: 0.5}, {target: Buf, type: max_overbooked_proportion, proportion: 0.1}]",
    );
    assert_eq!(c.notes.len(), 2);
}

#[test]
fn inline_instance_constraints() {
    let a = tiny_arch();
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "- {target: Buf, type: spatial, factors: M=2, split: 999}\n- {target: DRAM, type: temporal, factors: C=2 R=2}\n",
    )
    .unwrap();
    let c = Constraints::from_value(&v, Path::new("inst.yaml"), "constraints", &a).unwrap();
    let p = tiny_problem();
    let space = Mapspace::new(&p, &a, &c).unwrap();
    let x = space.level_slots(1).x.unwrap();
    assert_eq!(space.allowed_factors(1, x), &[2]);
    assert_eq!(space.spatial_rule(1).dir[1], SpatialDir::XOnly);
    assert_eq!(space.factor_rule(1, 1, LoopKind::Spatial).fixed, Some(2));
    // M = 4 on a 2-wide Y axis: impossible, so the space is empty.
    let v: serde_yaml_ng::Value =
        serde_yaml_ng::from_str("- {target: Buf, type: spatial, factors: M=4, split: 0}\n- {target: Buf, type: spatial, permutation: M}\n").unwrap();
    let c = Constraints::from_value(&v, Path::new("inst.yaml"), "constraints", &a).unwrap();
    assert!(Mapspace::new(&p, &a, &c).unwrap().is_empty());
    let v: serde_yaml_ng::Value =
        serde_yaml_ng::from_str("[{target: Nope, type: temporal}]").unwrap();
    let e = Constraints::from_value(&v, Path::new("inst.yaml"), "constraints", &a).unwrap_err();
    assert_eq!(e.field, "constraints[0].target");
}

// ---------------------------------------------------------------------------------------------
// Reference constraint files
// ---------------------------------------------------------------------------------------------

/// The seed's Eyeriss-like design: 14×12 PEs (psum, weights, ifmap spads), 14 dummy buffers,
/// the global buffer, DRAM.
fn seed_eyeriss() -> Arch {
    arch(
        "eyeriss_like",
        vec![
            level("psum_spad", 168, 14, Some(24), 0.3),
            level("weights_spad", 168, 14, Some(224), 1.0),
            level("ifmap_spad", 168, 14, Some(12), 0.3),
            dummy("DummyBuffer", 14, 14),
            level("shared_glb", 1, 1, Some(51200), 10.0),
            level("DRAM", 1, 1, None, 200.0),
        ],
        168,
        14,
    )
}

/// The seed's Simba-like design: 16 PEs, each with 4 weight/accumulation buffers and 16 weight
/// registers.
fn seed_simba() -> Arch {
    arch(
        "simba_like",
        vec![
            level("PEWeightRegs", 256, 16, Some(1), 0.1),
            level("PEAccuBuffer", 64, 16, Some(128), 1.0),
            level("PEWeightBuffer", 64, 16, Some(4096), 2.0),
            level("PEInputBuffer", 16, 16, Some(8192), 2.0),
            level("GlobalBuffer", 1, 1, Some(2048), 20.0),
            level("DRAM", 1, 1, None, 200.0),
        ],
        256,
        16,
    )
}

fn only_ones(space: &Mapspace, slot: usize, except: &[usize]) {
    for d in (0..space.problem().dims.len()).filter(|d| !except.contains(d)) {
        assert_eq!(space.allowed_factors(d, slot), &[1], "dim {d}, slot {slot}");
    }
}

#[test]
fn seed_eyeriss_constraints() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let a = seed_eyeriss();
    let mut c = Constraints::from_file(
        &dir.join("seed_toolchain/eyeriss_like_arch_constraints.yaml"),
        &a,
    )
    .unwrap();
    c.add_file(
        &dir.join("seed_toolchain/eyeriss_like_map_constraints.yaml"),
        &a,
    )
    .unwrap();
    let p = conv_problem("l", false, [1, 16, 8, 7, 7, 3, 3], [1, 1, 1, 1]);
    let (n, m, cc, pp, q, r, s) = (0, 1, 2, 3, 4, 5, 6);
    let space = Mapspace::new(&p, &a, &c).unwrap();
    eprintln!(
        "seed eyeriss, N1 M16 C8 P7 Q7 R3 S3: {} mappings ({} factorisations)",
        space.size(),
        space.factorisations()
    );
    let ls = |name: &str| space.level_slots(a.level_index(name).unwrap());
    // psum_spad: temporal only M.
    only_ones(&space, ls("psum_spad").temporal, &[m]);
    assert!(space.allowed_factors(m, ls("psum_spad").temporal).len() > 1);
    // weights_spad: R = the whole R (R=0), C free, the rest 1.
    only_ones(&space, ls("weights_spad").temporal, &[cc, r]);
    assert_eq!(space.allowed_factors(r, ls("weights_spad").temporal), &[3]);
    // ifmap_spad: nothing.
    only_ones(&space, ls("ifmap_spad").temporal, &[]);
    // DummyBuffer fans out 12 along Y: S whole, C and M free; split 4 keeps N P Q R on X (1).
    let db = ls("DummyBuffer");
    assert!(db.x.is_none());
    only_ones(&space, db.y.unwrap(), &[s, cc, m]);
    assert_eq!(space.allowed_factors(s, db.y.unwrap()), &[3]);
    only_ones(&space, db.temporal, &[]);
    // shared_glb fans out 14 along X: only M and Q; temporal P whole, Q R S 1.
    let glb = ls("shared_glb");
    assert!(glb.y.is_none());
    only_ones(&space, glb.x.unwrap(), &[m, q]);
    assert_eq!(space.allowed_factors(pp, glb.temporal), &[7]);
    for d in [q, r, s] {
        assert_eq!(space.allowed_factors(d, glb.temporal), &[1]);
    }
    // DRAM: R S P 1.
    for d in [r, s, pp] {
        assert_eq!(space.allowed_factors(d, ls("DRAM").temporal), &[1]);
    }
    // Bypass: each spad holds its one tensor; the dummy nothing; the glb no weights.
    let glb_l = a.level_index("shared_glb").unwrap();
    assert_eq!(space.keep_choice(glb_l, 0), KeepChoice::Fixed(false));
    assert_eq!(space.keep_choice(glb_l, 1), KeepChoice::Fixed(true));
    assert!(space.free_keeps().is_empty());
    // Every loop order is fixed by the permutations: the size is the factorisation count.
    assert_eq!(space.size() as f64, space.factorisations());
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for _ in 0..300 {
        let mapping = space.sample(&mut rng);
        assert!(space.contains(&mapping), "{:?}", space.check(&mapping));
        // shared_glb order: C innermost, then P, N, M (QRSC PNM).
        let order: Vec<usize> = mapping.levels[glb_l]
            .temporal
            .iter()
            .filter(|l| l.factor > 1)
            .map(|l| l.dim)
            .collect();
        let expected: Vec<usize> = [cc, pp, n, m]
            .into_iter()
            .filter(|d| order.contains(d))
            .collect();
        assert_eq!(order, expected);
    }
    // Small enough to enumerate: check size against the enumeration.
    if space.size() <= 200_000 {
        enumerate_checked(&space);
    }
    let opts = ModelOptions::default();
    let r = random(&space, &opts, Objective::Energy, 1, 200, Some(100));
    assert!(r.valid > 0, "no valid mapping sampled");
}

#[test]
fn seed_simba_constraints() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let a = seed_simba();
    let mut c = Constraints::from_file(
        &dir.join("seed_toolchain/simba_like_arch_constraints.yaml"),
        &a,
    )
    .unwrap();
    c.add_file(
        &dir.join("seed_toolchain/simba_like_map_constraints.yaml"),
        &a,
    )
    .unwrap();
    let p = conv_problem("l", false, [1, 16, 8, 7, 7, 3, 3], [1, 1, 1, 1]);
    let (_n, m, cc, pp, q, r, s) = (0, 1, 2, 3, 4, 5, 6);
    let space = Mapspace::new(&p, &a, &c).unwrap();
    eprintln!(
        "seed simba, N1 M16 C8 P7 Q7 R3 S3: {} mappings",
        space.size()
    );
    let ls = |name: &str| space.level_slots(a.level_index(name).unwrap());
    // PEAccuBuffer fans out 4 along Y: exactly C=4; PEInputBuffer: exactly M=4.
    let acc = ls("PEAccuBuffer").y.unwrap();
    assert_eq!(space.allowed_factors(cc, acc), &[4]);
    only_ones(&space, acc, &[cc]);
    let inb = ls("PEInputBuffer").y.unwrap();
    assert_eq!(space.allowed_factors(m, inb), &[4]);
    only_ones(&space, inb, &[m]);
    // GlobalBuffer fans out 16 along X: M and C only.
    only_ones(&space, ls("GlobalBuffer").x.unwrap(), &[m, cc]);
    // Temporal responsibilities.
    only_ones(&space, ls("PEWeightRegs").temporal, &[pp, q]);
    only_ones(&space, ls("PEInputBuffer").temporal, &[]);
    only_ones(&space, ls("PEAccuBuffer").temporal, &[m]);
    only_ones(&space, ls("PEWeightBuffer").temporal, &[r, s, cc]);
    for lvl in ["GlobalBuffer", "DRAM"] {
        for d in [r, s] {
            assert_eq!(space.allowed_factors(d, ls(lvl).temporal), &[1]);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..300 {
        let mapping = space.sample(&mut rng);
        assert!(space.contains(&mapping), "{:?}", space.check(&mapping));
    }
    if space.size() <= 200_000 {
        enumerate_checked(&space);
    }
}

#[test]
fn timeloop_exercise_constraints() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    // eyeriss_like (v0.4 exercise): the arch file's own architecture_constraints and the
    // hyphenated v3 copy must give the same constraints.
    let a = arch(
        "eyeriss_like",
        vec![
            level("psum_spad", 168, 14, Some(16), 0.3),
            level("weights_spad", 168, 14, Some(192), 1.0),
            level("ifmap_spad", 168, 14, Some(12), 0.3),
            dummy("inter_PE_spatial", 14, 14),
            dummy("inter_PE_column_spatial", 1, 1),
            level("shared_glb", 1, 1, Some(16384), 10.0),
            level("DRAM", 1, 1, None, 200.0),
        ],
        168,
        14,
    );
    let ex = dir.join("timeloop_exercises/eyeriss_like");
    let c1 = Constraints::from_file(&ex.join("arch.yaml"), &a).unwrap();
    let c2 = Constraints::from_file(&ex.join("constraints.v3-hyphen.yaml"), &a).unwrap();
    let strip = |c: &Constraints| -> Vec<_> {
        c.levels
            .iter()
            .map(|l| {
                let f = |lc: &qmap::mapspace::LoopConstraints| {
                    (
                        lc.factors
                            .iter()
                            .map(|(k, r)| (k.clone(), r.fixed, r.max, r.min))
                            .collect::<Vec<_>>(),
                        lc.permutation.clone(),
                    )
                };
                let dt: Vec<_> = l.datatype.iter().map(|(k, v)| (k.clone(), v.0)).collect();
                (f(&l.temporal), f(&l.spatial), l.split, dt)
            })
            .collect()
    };
    assert_eq!(strip(&c1), strip(&c2));
    // The exercise's layer: C3 M32 R3 S3 P112 Q112, stride 2.
    let p = conv_problem("ex", false, [1, 32, 3, 112, 112, 3, 3], [2, 2, 1, 1]);
    let (m, cc, q, r, s) = (1, 2, 4, 5, 6);
    let space = Mapspace::new(&p, &a, &c1).unwrap();
    eprintln!(
        "eyeriss exercise layer: {} mappings (~{:.3e}), {} factorisations",
        space.size(),
        space.size_f64(),
        space.factorisations()
    );
    let ls = |name: &str| space.level_slots(a.level_index(name).unwrap());
    // split 999: Q and M on X at the column level; split 0: S C M on Y below it.
    let col = ls("inter_PE_column_spatial");
    only_ones(&space, col.x.unwrap(), &[q, m]);
    let pe = ls("inter_PE_spatial");
    only_ones(&space, pe.y.unwrap(), &[s, cc, m]);
    only_ones(&space, ls("psum_spad").temporal, &[m]);
    only_ones(&space, ls("weights_spad").temporal, &[r, cc]);
    only_ones(&space, ls("ifmap_spad").temporal, &[]);
    // `permutation: N` is partial: N innermost at DRAM, the rest free outside it.
    let dram = a.level_index("DRAM").unwrap();
    assert_eq!(space.temporal_prefix(dram), &[0]);
    assert!(space.orders_enumerated(dram));
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for _ in 0..300 {
        let mapping = space.sample(&mut rng);
        assert!(space.contains(&mapping), "{:?}", space.check(&mapping));
    }

    // simba_like (v0.4 exercise, hyphenated copy).
    let a = arch(
        "simba_like",
        vec![
            level("PEWeightRegs", 256, 16, Some(1), 0.1),
            dummy("inter_reg_mac_spatial", 64, 16),
            level("PEAccuBuffer", 64, 16, Some(128), 1.0),
            level("PEWeightBuffer", 64, 16, Some(4096), 2.0),
            dummy("inter_distributed_buffers_spatial", 16, 16),
            level("PEInputBuffer", 16, 16, Some(8192), 2.0),
            dummy("inter_PE_spatial", 1, 1),
            level("GlobalBuffer", 1, 1, Some(2048), 20.0),
            level("DRAM", 1, 1, None, 200.0),
        ],
        256,
        16,
    );
    let c = Constraints::from_file(
        &dir.join("timeloop_exercises/simba_like/constraints.v3-hyphen.yaml"),
        &a,
    )
    .unwrap();
    let space = Mapspace::new(&p, &a, &c).unwrap();
    eprintln!("simba exercise layer: ~{:.3e} mappings", space.size_f64());
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..100 {
        let mapping = space.sample(&mut rng);
        assert!(space.contains(&mapping), "{:?}", space.check(&mapping));
    }
}

#[test]
fn depthwise_drops_m_and_c_constraints() {
    let a = tiny_arch();
    // N1 G4 P3 Q2 R2 S1
    let p = conv_problem("dw", true, [1, 4, 1, 3, 2, 2, 1], [1, 1, 1, 1]);
    let c = constraints(
        &a,
        "targets: [{target: Buf, type: temporal, factors: M=1 C=1 P=1, permutation: CMG}]",
    );
    let space = Mapspace::new(&p, &a, &c).unwrap();
    assert_eq!(space.notes().len(), 4, "{:?}", space.notes());
    let buf_t = space.level_slots(1).temporal;
    assert_eq!(space.allowed_factors(2, buf_t), &[1]);
    assert!(space.allowed_factors(1, buf_t).len() > 1);
    assert_eq!(space.temporal_prefix(1), &[1]);
    enumerate_checked(&space);
}

/// The exercises' reference mappings (imported with qmap's Timeloop importer) satisfy their
/// architecture constraints.
#[test]
fn reference_mappings_satisfy_their_constraints() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    for design in ["eyeriss_like", "simba_like"] {
        let ex = dir.join("timeloop_exercises").join(design);
        let a = qmap::timeloop::load_arch(&ex.join("arch.yaml"), Some(&ex.join("ERT.yaml")))
            .unwrap_or_else(|e| panic!("{e}"));
        let (p, _) = qmap::timeloop::load_problem(&ex.join("problem.yaml")).unwrap();
        let m = qmap::timeloop::load_mapping(&ex.join("map.yaml"), &a, &p).unwrap();
        let c = Constraints::from_file(&ex.join("constraints.v3-hyphen.yaml"), &a).unwrap();
        let space = Mapspace::new(&p, &a, &c).unwrap();
        if let Err(e) = space.check(&m) {
            panic!("{design}: reference mapping outside the constrained space: {e}");
        }
        eprintln!("{design}: ~{:.3e} mappings", space.size_f64());
    }
}
