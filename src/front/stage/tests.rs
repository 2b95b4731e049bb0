//! The stage solver's parts against brute force on small random tree-shaped problems: the
//! dynamic program's totals, minimisers and best-through values, and each stage's optimum.

use super::{Milp, Solve, MAX_LABELS};
use crate::front::selection::CRITERIA;
use crate::front::{
    for_each_selection, AccuracyModel, AccuracyTable, BitSets, EnergyTable, LayerTable,
    SelectionProblem, TableEntry,
};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::collections::BTreeMap;

/// A random tree-shaped problem with `n` layers, bits {2, 4} and a proxy-free table model.
fn random_problem(seed: u64, n: usize) -> SelectionProblem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bits = BitSets {
        weights: vec![2, 4],
        activations: vec![2, 4],
        first_input: 8,
        last_output: 8,
    };
    let mut table = EnergyTable::default();
    let mut deltas = BTreeMap::new();
    for l in 0..n {
        let producer = if l == 0 {
            None
        } else {
            Some(rng.random_range(0..l))
        };
        let entries = bits
            .layer_configs(producer, l + 1 == n)
            .into_iter()
            .map(|b| TableEntry {
                bits: b,
                energy_pj: rng.random_range(1..100u32) as f64,
                cycles: rng.random_range(1..100u64),
            })
            .collect();
        table.layers.push(LayerTable {
            name: format!("l{l}"),
            weights: rng.random_range(1..100u64),
            producer,
            entries,
        });
        let mut m = BTreeMap::new();
        for w in [2, 4] {
            for a in [2, 4, 8] {
                m.insert((w, a), -(rng.random_range(0..64u32) as f64) / 64.0);
            }
        }
        deltas.insert(format!("l{l}"), m);
    }
    let acc = AccuracyModel::Table(AccuracyTable {
        full_precision_accuracy: 70.0,
        source: "test".into(),
        file: "t.yaml".into(),
        field: "deltas".into(),
        deltas,
        kls: Default::default(),
        select_by: Default::default(),
        max_cell_loss: None,
    });
    SelectionProblem::new(&table, &acc, &bits).unwrap()
}

#[test]
fn dp_through_is_the_best_selection_through_each_candidate() {
    for seed in 0..30 {
        let pb = random_problem(seed, 2 + seed as usize % 4);
        let kept = pb.prune(&CRITERIA, &[]);
        let milp = Milp::new(&pb, kept.clone(), None, MAX_LABELS);
        let w = [1.0, 0.3, 0.2, 0.1];
        let dp = milp.dp(&w);
        let through = milp.dp_through(&dp);
        let cost = |sel: &[usize]| -> f64 {
            sel.iter()
                .enumerate()
                .map(|(l, &k)| {
                    let j = kept[l].iter().position(|&x| x == k).unwrap();
                    (0..4).map(|t| w[t] * milp.coef[t][l][j]).sum::<f64>()
                })
                .sum()
        };
        let mut best: Vec<Vec<f64>> = kept.iter().map(|k| vec![f64::INFINITY; k.len()]).collect();
        let mut total = f64::INFINITY;
        for_each_selection(&pb, |sel| {
            if sel.iter().enumerate().any(|(l, k)| !kept[l].contains(k)) {
                return;
            }
            let c = cost(sel);
            total = total.min(c);
            for (l, &k) in sel.iter().enumerate() {
                let j = kept[l].iter().position(|&x| x == k).unwrap();
                best[l][j] = best[l][j].min(c);
            }
        });
        assert!((dp.total - total).abs() < 1e-9, "seed {seed}: total");
        let arg = milp.dp_argmin(&dp).unwrap();
        assert!((cost(&arg) - total).abs() < 1e-9, "seed {seed}: argmin");
        for l in 0..kept.len() {
            for j in 0..kept[l].len() {
                let (a, b) = (through[l][j], best[l][j]);
                assert!(
                    (a == b) || (a - b).abs() < 1e-9,
                    "seed {seed}: layer {l} candidate {j}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn each_solve_is_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for seed in 0..200 {
        let pb = random_problem(seed, 2 + seed as usize % 5);
        let kept = pb.prune(&CRITERIA, &[]);
        let mut all = Vec::new();
        for_each_selection(&pb, |sel| all.push(pb.costs_of(sel)));
        let objective = CRITERIA[rng.random_range(0..4usize)];
        let mut bounds = Vec::new();
        for c in CRITERIA {
            if c != objective && rng.random_bool(0.5) {
                let v = all[rng.random_range(0..all.len())][c.index()];
                bounds.push((c, v));
            }
        }
        let feasible = |v: &[f64; 4]| bounds.iter().all(|&(c, b)| v[c.index()] <= b);
        let want = all
            .iter()
            .filter(|v| feasible(v))
            .map(|v| v[objective.index()])
            .fold(f64::INFINITY, f64::min);
        let mut milp = Milp::new(&pb, kept, None, MAX_LABELS);
        match milp.solve_once(objective, &bounds, None, &[]).unwrap() {
            Solve::Found(sel, _) => {
                let v = pb.costs_of(&sel);
                assert!(feasible(&v), "seed {seed}");
                assert_eq!(
                    v[objective.index()],
                    want,
                    "seed {seed}: {objective:?} {bounds:?}"
                );
            }
            Solve::Infeasible => assert!(want.is_infinite(), "seed {seed}"),
            Solve::Unknown => panic!("no time limit"),
        }
    }
}
