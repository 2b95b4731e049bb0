//! Unit tests of the model's pieces: liftings, ceilings, product one-hots, tangents, HiGHS's
//! improving solutions.

use super::ceilings::{MultiCount, Whole};
use super::decode::model_value;
use super::lin::Lin;
use super::model::Model;
use super::onehot::product_onehot;
use super::run::{run_highs, HIGHS_MIP_FEASTOL};
use super::OFF;
use crate::solver::Status;

/// One-hot groups of the given sizes (binary columns summing to one).
fn onehot_groups(m: &mut Model, sizes: &[usize]) -> Vec<Vec<usize>> {
    sizes
        .iter()
        .map(|&n| {
            let g: Vec<usize> = (0..n).map(|_| m.bin()).collect();
            m.eq(&Lin::ones(&g), 1.0);
            g
        })
        .collect()
}

/// The lower bound a lifting row `w − Σ k_j x_j ≥ lo` puts on `w` at `x`.
fn lifted_bound(lo: f64, row: &[(usize, f64)], w: usize, x: &[f64]) -> f64 {
    lo + row
        .iter()
        .filter(|(c, _)| *c != w)
        .map(|&(c, v)| -v * x[c])
        .sum::<f64>()
}

/// The one-hot lifting rows never exceed the term they bound, at any integer point and any
/// value of a continuous column, and are exact when the rest is at its minimum.
#[test]
fn lifting_underestimates_the_term_everywhere() {
    let mut m = Model::default();
    let [g1, g2]: [Vec<usize>; 2] = onehot_groups(&mut m, &[3, 4]).try_into().unwrap();
    assert_eq!(m.groups.len(), 2);
    let free = m.col(0.0, 2.0, false, 0.0);
    // a = 0.5 + (0, 1.2, 2.0)·g1 + (−0.7, 0, 0.3, 1.1)·g2 − 0.4·free (g2's first member
    // twice, as the model builder may write it)
    let a = Lin {
        c: 0.5,
        t: vec![
            (g1[1], 1.2),
            (g1[2], 2.0),
            (g2[0], -0.3),
            (g2[0], -0.4),
            (g2[2], 0.3),
            (g2[3], 1.1),
            (free, -0.4),
        ],
    };
    let w = m.term(2.5, a.clone()).unwrap();
    let before = m.rows.len();
    m.lift(&m.terms[0].clone());
    let lifted: Vec<_> = m.rows[before..].to_vec();
    assert_eq!(lifted.len(), 2, "one row per group");
    let mut exact_hits = 0;
    for i in 0..3 {
        for j in 0..4 {
            for f in [0.0, 1.0, 2.0] {
                let mut x = vec![0.0; m.col_lo.len()];
                x[g1[i]] = 1.0;
                x[g2[j]] = 1.0;
                x[free] = f;
                let term = 2.5 * a.value(&x).exp();
                for (lo, _, row) in &lifted {
                    let need = lifted_bound(*lo, row, w, &x);
                    assert!(
                        need <= term * (1.0 + 1e-12),
                        "{need} > {term} at {i} {j} {f}"
                    );
                    if (need - term).abs() <= 1e-8 * term {
                        exact_hits += 1;
                    }
                }
            }
        }
    }
    // exact (up to SHAVE) where the other group sits at its minimum (g2[0] for g1's row,
    // g1[0] for g2's) and the free column at its maximum: 3 + 4 points
    assert_eq!(exact_hits, 7);
}

/// A term whose charged instance count varies: once activated, its ceilings per instance
/// count bound the term by the evaluator's whole vector accesses, exactly at a point whose
/// tangents are in, and never above the true cost anywhere.
#[test]
fn ceilings_per_instance_count_are_exact_at_candidates_and_valid_everywhere() {
    let mut m = Model::default();
    let [inst, size]: [Vec<usize>; 2] = onehot_groups(&mut m, &[3, 4]).try_into().unwrap();
    let ns = [1.0, 2.0, 4.0];
    let scalars = [3.0, 5.0, 8.0, 9.0];
    let (unit, per_vector) = (1.5, 0.5); // energy per vector access; two scalars per word
    let log_of = |cols: &[usize], vals: &[f64]| Lin {
        c: 0.0,
        t: cols.iter().zip(vals).map(|(&c, v)| (c, v.ln())).collect(),
    };
    let charged = log_of(&inst, &ns);
    let a = charged.clone().plus(&log_of(&size, &scalars));
    // level 3's instance counts, as the model builder registers a clustered level's
    let values: Vec<(usize, f64)> = inst.iter().copied().zip(ns).collect();
    m.instance_values.insert(3, values);
    m.term_with_floor(
        unit * per_vector,
        a,
        unit,
        charged.clone(),
        Whole::PerInstance {
            charged: &charged,
            level: 3,
        },
    );
    assert_eq!(m.deferred.len(), 1);
    let w = m.terms[0].w;
    m.activate(0);
    assert_eq!(m.ceilings.len(), 3, "one integer count per instance value");
    let point = |i: usize, j: usize, m: &Model| {
        let mut x = vec![0.0; m.col_lo.len()];
        x[inst[i]] = 1.0;
        x[size[j]] = 1.0;
        x
    };
    // The smallest w the ceiling rows allow at x: each z_n at the ceiling of its largest
    // tangent, w at Σ unit·n·z_n.
    let least_w = |m: &Model, x: &[f64]| -> f64 {
        let mut total = 0.0;
        for &(i, u) in &m.ceiling_units[&w] {
            let c = &m.ceilings[i];
            let e = c.a.value(x);
            let mut z: f64 = 0.0;
            for (lo, _, row) in &m.rows {
                if let [(p, pv), (q, qv)] = row.as_slice() {
                    let (zc, k) = if (*p, *pv, *q) == (c.w, 1.0, c.e) {
                        (*p, -qv)
                    } else if (*q, *qv, *p) == (c.w, 1.0, c.e) {
                        (*q, -pv)
                    } else {
                        continue;
                    };
                    assert_eq!(zc, c.w);
                    z = z.max(lo + k * e);
                }
            }
            total += u * (z * (1.0 - 1e-12)).ceil();
        }
        total
    };
    let truth = |i: usize, j: usize| unit * ns[i] * (per_vector * scalars[j]).ceil();
    // Tangents at three candidates, as a round adds them (active ceilings only); (0, 2) is
    // a whole count (4 vectors), which must not round up to 5.
    let visited = [(1, 0), (2, 3), (0, 2)];
    for (i, j) in visited {
        let x = point(i, j, &m);
        for c in m.ceilings.clone() {
            let e = c.a.value(&x);
            if e > -OFF / 2.0 {
                m.tangent(&c, e);
            }
        }
    }
    for i in 0..3 {
        for j in 0..4 {
            let x = point(i, j, &m);
            let least = least_w(&m, &x);
            assert!(
                least <= truth(i, j) * (1.0 + 1e-12),
                "{least} > {} at {i} {j}",
                truth(i, j)
            );
            if visited.contains(&(i, j)) {
                assert!(
                    (least - truth(i, j)).abs() < 1e-9,
                    "not exact at {i} {j}: {least}"
                );
            }
        }
    }
    // 2 instances × ceil(1.5) vectors, where the dropped ceiling gave 2 × 1.5
    assert_eq!(truth(1, 0), unit * 4.0);
}

/// The product one-hot (here: instances = spatial factors of two dims) satisfies its rows at
/// exactly the product's value for every combination of the dims' choices, and refuses more
/// values than its limit.
#[test]
fn product_onehot_pins_the_product() {
    let mut m = Model::default();
    let [d0, d1]: [Vec<usize>; 2] = onehot_groups(&mut m, &[3, 2]).try_into().unwrap();
    let (v0, v1) = ([1u64, 2, 12], [1u64, 3]);
    let parts = vec![
        d0.iter().map(|&c| Some(c)).zip(v0).collect::<Vec<_>>(),
        d1.iter().map(|&c| Some(c)).zip(v1).collect::<Vec<_>>(),
    ];
    assert!(product_onehot(&mut m, &parts, &|v| v as f64, 5, u64::MAX).is_none());
    let before = m.rows.len();
    let one = product_onehot(&mut m, &parts, &|v| v as f64, 6, u64::MAX).unwrap();
    let counts: Vec<f64> = one.t.iter().map(|x| x.1).collect();
    assert_eq!(counts, vec![1.0, 2.0, 3.0, 6.0, 12.0, 36.0]);
    let rows: Vec<_> = m.rows[before..].to_vec();
    for i in 0..3 {
        for j in 0..2 {
            let fitting: Vec<f64> = one
                .t
                .iter()
                .filter(|&&(g, _)| {
                    let mut x = vec![0.0; m.col_lo.len()];
                    x[d0[i]] = 1.0;
                    x[d1[j]] = 1.0;
                    x[g] = 1.0;
                    rows.iter().all(|(lo, hi, row)| {
                        let v: f64 = row.iter().map(|&(c, k)| k * x[c]).sum();
                        v >= lo - 1e-9 && v <= hi + 1e-9
                    })
                })
                .map(|x| x.1)
                .collect();
            assert_eq!(fitting, vec![(v0[i] * v1[j]) as f64], "at {i} {j}");
        }
    }
    // With at most 12 (say, the fanouts above a level), 36 is left out and the five
    // values left fit the limit the six did not.
    let capped = product_onehot(&mut m, &parts, &|v| v as f64, 5, 12).unwrap();
    let counts: Vec<f64> = capped.t.iter().map(|x| x.1).collect();
    assert_eq!(counts, vec![1.0, 2.0, 3.0, 6.0, 12.0]);
}

/// A whole-access count whose exponent is a sum of logs: the tangent at it, shaved by
/// `SHAVE`, never exceeds the count, so its integer column never rounds up to one access
/// more. (Unshaved, `exp` of the summed logs lands above the whole number for about a
/// quarter of these products.)
#[test]
fn tangents_at_whole_counts_never_round_up() {
    let mut above_unshaved = 0;
    for f1 in [2u64, 3, 4, 7, 8, 14, 16, 28, 32, 56, 112] {
        for f2 in [1u64, 2, 3, 5, 8, 13] {
            for f3 in [4u64, 9, 16, 25, 64] {
                let n = (f1 * f2 * f3) as f64;
                let mut m = Model::default();
                let a = Lin::konst((f1 as f64).ln() + (f2 as f64).ln() + (f3 as f64).ln());
                let unit = 0.37;
                let w = m.term(unit, a.clone()).unwrap();
                let e = m.terms[0].e;
                m.tangent(&m.terms[0].clone(), a.c);
                let (lo, _, row) = m.rows.last().unwrap().clone();
                let k = -row.iter().find(|x| x.0 == e).unwrap().1;
                assert!(row.contains(&(w, 1.0)));
                let least = (lo + k * a.c) / unit; // w / unit at the tangent point
                assert!(least <= n, "{f1}·{f2}·{f3}: {least} > {n}");
                assert!(
                    least > n * (1.0 - 1e-8),
                    "{f1}·{f2}·{f3}: {least} far below {n}"
                );
                if a.c.exp() > n {
                    above_unshaved += 1;
                }
            }
        }
    }
    assert!(
        above_unshaved > 0,
        "the case this guards against did not occur"
    );
}

/// A two-part count made exact rounds the parts' sum, not each part, up to whole vector
/// accesses: HiGHS's optimum is `unit · ceil(sum / unit)`, a whole number of accesses
/// stays whole, and the model's own value agrees; before activation the sum is not rounded.
#[test]
fn multi_part_counts_round_their_sum() {
    let unit = 0.5;
    // (parts' values) → vector accesses: 1.3 + 2.45 = 3.75 → 4; 1.5 + 2.5 = 4 (whole).
    for (p1, p2, whole) in [(0.65, 1.225, 4.0), (0.75, 1.25, 4.0), (0.1, 0.05, 1.0)] {
        let mut m = Model::default();
        let ws: Vec<usize> = [p1, p2]
            .iter()
            .map(|&p: &f64| m.term(1.0, Lin::konst(p.ln())).unwrap())
            .collect();
        for t in m.terms.clone() {
            m.tangent(&t, t.a.c);
        }
        m.multi.push(MultiCount::new(ws, unit, None));
        let (_, x, bound, _) = run_highs(&m, None, None).unwrap();
        let dropped = model_value(&m, &x.unwrap());
        assert!((dropped - (p1 + p2)).abs() < 1e-9, "{dropped}");
        assert!(bound <= p1 + p2 + 1e-9);
        m.activate_multi(0);
        let (status, x, bound, _) = run_highs(&m, None, None).unwrap();
        assert_eq!(status, Status::Optimal);
        let exact = unit * whole;
        assert!(bound <= exact, "{p1}+{p2}: bound {bound} above {exact}");
        assert!(
            bound > exact - 2e-6,
            "{p1}+{p2}: bound {bound} far below {exact}"
        );
        let own = model_value(&m, &x.unwrap());
        assert!((own - exact).abs() < 1e-9, "{p1}+{p2}: model value {own}");
    }
}

/// A two-part count whose charged instance count varies (a sliding-window load below a
/// fanout): once activated, the MILP's least cost at every point is at most the evaluator's
/// (the sum, not each part, rounded up to whole vector accesses per instance), and equal to
/// it at the points whose tangents are in; before, the ceiling was dropped.
#[test]
fn multi_part_counts_at_varying_instance_counts_round_their_sum_per_instance() {
    let mut m = Model::default();
    let [inst, size1, size2]: [Vec<usize>; 3] =
        onehot_groups(&mut m, &[3, 4, 3]).try_into().unwrap();
    let ns = [1.0, 2.0, 4.0];
    let (s1, s2) = ([3.0, 5.0, 8.0, 9.0], [2.0, 7.0, 4.0]);
    let (unit, per_vector) = (1.5, 0.25); // energy per vector access; 4 scalars per vector
    let log_of = |cols: &[usize], vals: &[f64]| Lin {
        c: 0.0,
        t: cols.iter().zip(vals).map(|(&c, v)| (c, v.ln())).collect(),
    };
    let charged = log_of(&inst, &ns);
    let ws: Vec<usize> = [log_of(&size1, &s1), log_of(&size2, &s2)]
        .iter()
        .map(|a| m.term(unit * per_vector, charged.clone().plus(a)).unwrap())
        .collect();
    m.instance_values
        .insert(3, inst.iter().copied().zip(ns).collect());
    m.multi.push(MultiCount::new(ws, unit, Some((charged, 3))));
    let truth = |i: usize, j: usize, k: usize| unit * ns[i] * (per_vector * (s1[j] + s2[k])).ceil();
    let point = |(i, j, k): (usize, usize, usize), m: &Model| {
        let mut x = vec![0.0; m.col_lo.len()];
        x[inst[i]] = 1.0;
        x[size1[j]] = 1.0;
        x[size2[k]] = 1.0;
        x
    };
    // The model's least cost with the one-hots pinned at (i, j, k).
    let least = |m: &Model, at: (usize, usize, usize)| -> f64 {
        let mut pinned = m.clone();
        let x = point(at, m);
        for &c in inst.iter().chain(&size1).chain(&size2) {
            pinned.col_lo[c] = x[c];
            pinned.col_hi[c] = x[c];
        }
        let (status, y, _, _) = run_highs(&pinned, None, None).unwrap();
        assert_eq!(status, Status::Optimal);
        let y = y.unwrap();
        pinned.cost_const
            + pinned
                .col_cost
                .iter()
                .zip(&y)
                .map(|(c, v)| c * v)
                .sum::<f64>()
    };
    let visited = [(1, 0, 0), (2, 3, 1), (0, 2, 2), (1, 1, 1)];
    let tangents = |m: &mut Model, at: (usize, usize, usize)| {
        let x = point(at, m);
        m.tangents_at(&x);
        for c in m.ceilings.clone() {
            let e = c.a.value(&x);
            if e > -OFF / 2.0 {
                m.tangent(&c, e);
            }
        }
    };
    for at in visited {
        tangents(&mut m, at);
    }
    // (1, 0, 0): 2 instances × (3 + 2)/4 = 1.25 vectors each, charged as 2 × 2 once exact.
    assert!((least(&m, (1, 0, 0)) - unit * 2.0 * 1.25).abs() < 1e-6);
    m.activate_multi(0);
    assert_eq!(m.ceilings.len(), 6, "one count per part and instance value");
    for at in visited {
        tangents(&mut m, at);
    }
    for i in 0..3 {
        for j in 0..4 {
            for k in 0..3 {
                let (got, want) = (least(&m, (i, j, k)), truth(i, j, k));
                assert!(got <= want * (1.0 + 1e-9), "{got} > {want} at {i} {j} {k}");
                if visited.contains(&(i, j, k)) {
                    assert!(
                        got > want - 1e-5,
                        "not exact at {i} {j} {k}: {got} < {want}"
                    );
                    let x = point((i, j, k), &m);
                    assert!((model_value(&m, &x) - want).abs() < 1e-9);
                }
            }
        }
    }
    assert_eq!(truth(1, 0, 0), unit * 4.0);
}

/// A tangent at a point the term already has (to within 1e-7 in log space) adds no row.
#[test]
fn tangents_are_added_once_per_point() {
    let mut m = Model::default();
    m.term(2.0, Lin::konst(0.0)).unwrap();
    let t = m.terms[0].clone();
    let rows = m.rows.len();
    m.tangent(&t, 1.0);
    assert_eq!(m.rows.len(), rows + 1);
    m.tangent(&t, 1.0);
    m.tangent(&t, 1.0 + 3e-8);
    assert_eq!(m.rows.len(), rows + 1);
    m.tangent(&t, 1.5);
    assert_eq!(m.rows.len(), rows + 2);
    // The same point on another term is that term's first tangent.
    m.term(3.0, Lin::konst(0.0)).unwrap();
    let (u, rows) = (m.terms[1].clone(), m.rows.len());
    m.tangent(&u, 1.0);
    assert_eq!(m.rows.len(), rows + 1);
}

/// HiGHS's improving solutions come back as full, feasible column vectors with falling
/// objectives, the last one the optimum; an optimal solve's bound is the optimum less
/// HiGHS's pruning tolerance.
#[test]
fn highs_reports_improving_solutions_and_a_discounted_bound() {
    // A small covering knapsack: min Σ c_i x_i, Σ a_i x_i ≥ 50, x binary.
    let (a, c) = (
        [7.0, 11.0, 13.0, 17.0, 19.0, 23.0, 29.0, 31.0, 5.0, 3.0],
        [8.0, 12.5, 13.0, 19.0, 20.5, 24.0, 31.0, 32.5, 6.0, 4.0],
    );
    let mut m = Model::default();
    let x: Vec<usize> = c.iter().map(|&ci| m.col(0.0, 1.0, true, ci)).collect();
    let cover = Lin {
        c: 0.0,
        t: x.iter().zip(a).map(|(&i, ai)| (i, ai)).collect(),
    };
    m.ge(&cover, 50.0);
    let (status, best, bound, improving) = run_highs(&m, None, None).unwrap();
    assert_eq!(status, Status::Optimal);
    let best = best.unwrap();
    let cost = |y: &[f64]| x.iter().zip(c).map(|(&i, ci)| ci * y[i]).sum::<f64>();
    assert!(!improving.is_empty());
    let mut last = f64::INFINITY;
    for y in &improving {
        assert_eq!(y.len(), x.len());
        assert!(y.iter().all(|v| (v - v.round()).abs() < 1e-6));
        assert!(cover.value(y) >= 50.0 - 1e-6);
        assert!(cost(y) < last);
        last = cost(y);
    }
    assert!((last - cost(&best)).abs() < 1e-9);
    // The optimum by enumeration of all 2^10 choices.
    let optimum = (0u32..1 << 10)
        .map(|s| (0..10).map(|i| (s >> i & 1) as f64).collect::<Vec<_>>())
        .filter(|y| cover.value(y) >= 50.0)
        .map(|y| cost(&y))
        .fold(f64::INFINITY, f64::min);
    assert!((cost(&best) - optimum).abs() < 1e-9);
    assert!(
        (bound - (optimum - HIGHS_MIP_FEASTOL)).abs() < 1e-9,
        "{bound}"
    );
}

/// Large one-hot groups enter exponents and lifting rows through shared columns: the
/// exponent keeps its value at every integer point, the lifting rows stay valid and exact
/// where they were, and a second term with the same profile reuses the columns.
#[test]
fn shared_group_columns_keep_exponents_and_liftings_exact() {
    let mut m = Model::default();
    let [big, small]: [Vec<usize>; 2] = onehot_groups(&mut m, &[12, 3]).try_into().unwrap();
    let mut a = Lin::konst(-0.2);
    for (j, &i) in big.iter().enumerate() {
        a.t.push((i, (j as f64 * 0.37).sin() - 0.5));
    }
    a.t.push((small[1], 0.8));
    let w = m.term(1.5, a.clone()).unwrap();
    let cols = m.col_lo.len();
    m.term(0.7, a.clone()).unwrap();
    assert_eq!(
        m.shared.len(),
        1,
        "one shared column for the big group's profile"
    );
    assert_eq!(
        m.col_lo.len(),
        cols + 2,
        "the second term adds only its w and e"
    );
    let before = m.rows.len();
    m.lift(&m.terms[0].clone());
    assert_eq!(
        m.shared.len(),
        2,
        "the lifting row's exp profile is shared too"
    );
    let lifted: Vec<_> = m.rows[before..].to_vec();
    let value = |m: &Model, x: &mut Vec<f64>| {
        for ((kind, g, profile), &y) in &m.shared {
            x[y] = m.groups[*g]
                .iter()
                .zip(profile)
                .map(|(&i, &p)| {
                    let v = f64::from_bits(p);
                    x[i] * if *kind == 0 { v } else { v.exp() }
                })
                .sum();
        }
    };
    let mut exact_hits = 0;
    for i in 0..12 {
        for j in 0..3 {
            let mut x = vec![0.0; m.col_lo.len()];
            x[big[i]] = 1.0;
            x[small[j]] = 1.0;
            value(&m, &mut x);
            let e = m.terms[0].e;
            // the exponent column's defining row holds at the true exponent
            let def = m
                .rows
                .iter()
                .find(|(lo, hi, t)| lo == hi && t.iter().any(|&(c, _)| c == e))
                .unwrap();
            x[e] = a.value(&x);
            let lhs: f64 = def.2.iter().map(|&(c, v)| v * x[c]).sum();
            assert!((lhs - def.0).abs() < 1e-9, "exponent row off at {i} {j}");
            let term = 1.5 * a.value(&x).exp();
            for (lo, _, row) in &lifted {
                let need = lifted_bound(*lo, row, w, &x);
                assert!(need <= term * (1.0 + 1e-12), "{need} > {term} at {i} {j}");
                if (need - term).abs() <= 1e-8 * term {
                    exact_hits += 1;
                }
            }
        }
    }
    // big's row is exact (up to SHAVE) where small sits at its minimum (small[0] or
    // small[2]: 24 points), small's where big does (3 points)
    assert_eq!(exact_hits, 27);
}
