//! The label-setting search that solves a stage exactly.
//!
//! After the Lagrangian bound ([`super::lagrange`]), a label-setting search over the layers in
//! order ([`Milp::label_search`]) finds the optimum: a label is a partial selection of the first
//! layers (its sums, added in the order `SelectionProblem::costs_of` adds them, and the output
//! bits of the layers still awaiting a consumer); a label is dropped when a bounded sum cannot be
//! met by the best completion, when its Lagrangian bound (for λ and a few multiples of λ) exceeds
//! a target, or when a label of the same state is at least as good in every criterion the stage
//! and the later stages look at. Every selection within the target survives (or one as good in
//! all those criteria), so the best complete feasible label is optimal once it meets the target;
//! the target starts just above the Lagrangian bound, at the gap the previous point needed, and
//! doubles its distance to the bound (capped by the best feasible selection met) until it does.
//! The complete labels of the first stage are all the feasible selections up to the target
//! ([`Pool`]): when the first stage's optimum plus its tolerance is within the target, the later
//! lexicographic stages are read off them without a search. Should the labels outgrow a limit,
//! the stage falls back to the MILP ([`super::milp`]).

use super::lagrange::{Dp, Reduction};
use super::{upper_bounds, Milp, Solve};
use crate::front::trace::lex_cmp;
use crate::front::{Criterion, PointStatus};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Labels per layer beyond which [`Milp::label_search`] gives up by default
/// ([`FrontOptions::max_labels`](crate::front::FrontOptions::max_labels)).
pub(crate) const MAX_LABELS: usize = 1 << 20;

/// A partial selection of [`Milp::label_search`].
#[derive(Debug, Clone, Copy)]
struct Label {
    /// Σ energy, Σ delta, Σ memory (in layer order) and the cycles as f64.
    sums: [f64; 4],
    cycles: u64,
    /// Output bit index of each open layer, 8 bits per slot.
    key: u128,
    /// Index of the label it extends (previous layer) and the kept candidate it adds.
    parent: u32,
    cand: u32,
}

impl Label {
    /// The sum of criterion `i` in minimisation sense (accuracy: −Σ delta).
    fn cost(&self, i: usize) -> f64 {
        if i == 1 {
            -self.sums[1]
        } else {
            self.sums[i]
        }
    }
}

/// The labels not weakly dominated, within their state, in the criteria `dims` (of two equal
/// ones, one is kept). Sorted lexicographically, a label can only be dominated by an earlier
/// one: with two criteria, by the least second criterion so far; with three, by the staircase of
/// the (second, third) pairs so far; beyond, by any label kept so far.
fn dominance_filter(mut labels: Vec<Label>, dims: &[usize]) -> Vec<Label> {
    labels.sort_unstable_by(|a, b| {
        a.key.cmp(&b.key).then_with(|| {
            dims.iter()
                .map(|&i| a.cost(i).total_cmp(&b.cost(i)))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        })
    });
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    let mut group = 0;
    // Three criteria: second → third, the second increasing and the third decreasing.
    let mut stairs: BTreeMap<OrdF64, f64> = BTreeMap::new();
    for lab in labels {
        if out.get(group).is_none_or(|g| g.key != lab.key) {
            group = out.len();
            stairs.clear();
        } else {
            let dominated = match dims.len() {
                1 => true,
                2 => lab.cost(dims[1]) >= out[out.len() - 1].cost(dims[1]),
                3 => stairs
                    .range(..=OrdF64(lab.cost(dims[1])))
                    .next_back()
                    .is_some_and(|(_, &z)| z <= lab.cost(dims[2])),
                _ => out[group..]
                    .iter()
                    .any(|k| dims.iter().all(|&i| k.cost(i) <= lab.cost(i))),
            };
            if dominated {
                continue;
            }
        }
        if dims.len() == 3 {
            let (y, z) = (lab.cost(dims[1]), lab.cost(dims[2]));
            // Steps at or after y with a third criterion ≥ z are now dominated.
            let gone: Vec<OrdF64> = stairs
                .range(OrdF64(y)..)
                .take_while(|(_, &w)| w >= z)
                .map(|(k, _)| *k)
                .collect();
            for k in gone {
                stairs.remove(&k);
            }
            stairs.insert(OrdF64(y), z);
        }
        out.push(lab);
    }
    out
}

/// An f64 ordered by [`f64::total_cmp`].
#[derive(Debug, Clone, Copy)]
struct OrdF64(f64);

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Multiples of the Lagrangian multipliers whose bounds [`Milp::label_search`] also applies.
const LABEL_MULTIPLIER_FACTORS: [f64; 5] = [1.0, 0.0, 0.5, 2.0, 4.0];

/// One layer of [`Milp::label_search`]: where its producer's output bits sit in the previous
/// state (None: it reads the network input), where each slot of the new state comes from (None:
/// this layer's output bits), per slot the consumers not chosen yet (whose subtrees complete the
/// selection with the roots not reached yet).
struct Step {
    input_slot: Option<usize>,
    from: Vec<Option<usize>>,
    pending: Vec<Vec<usize>>,
    roots_after: Vec<usize>,
}

/// The best completion of a label after a step by one dynamic program: a constant (the roots not
/// reached yet) plus, per slot of the state, a value per output bit index.
struct Completion {
    base: f64,
    per_slot: Vec<Vec<f64>>,
}

impl Completion {
    fn new(dp: &Dp, st: &Step, scale: f64) -> Completion {
        let base = st
            .roots_after
            .iter()
            .map(|&r| dp.down[r].iter().map(|d| d.0).fold(f64::INFINITY, f64::min))
            .sum::<f64>()
            * scale;
        let per_slot = st
            .pending
            .iter()
            .map(|cs| {
                (0..dp.down.first().map_or(0, Vec::len))
                    .map(|b| cs.iter().map(|&c| dp.down[c][b].0).sum::<f64>() * scale)
                    .collect()
            })
            .collect();
        Completion { base, per_slot }
    }

    fn at(&self, key: u128) -> f64 {
        let mut v = self.base;
        for (s, t) in self.per_slot.iter().enumerate() {
            v += t[key_slot(key, s)];
        }
        v
    }
}

fn key_slot(key: u128, s: usize) -> usize {
    ((key >> (8 * s)) & 0xff) as usize
}

/// The complete feasible selections of a label search (costs, selection) and the objective
/// value up to which they are all there (up to dominance): later lexicographic stages whose
/// bound on that objective is within it are answered from the pool.
pub(super) struct Pool {
    objective: Criterion,
    covered: f64,
    selections: Vec<([f64; 4], Vec<usize>)>,
}

impl Pool {
    /// The pool's best selection for `objective` within `bounds` (ties: lexicographic in all
    /// criteria), when the pool holds them all: when `bounds` limit the pool's objective to at
    /// most the value up to which it is complete. None otherwise (the stage is solved).
    pub(super) fn best(&self, objective: Criterion, bounds: &[(Criterion, f64)]) -> Option<Solve> {
        let covered = bounds
            .iter()
            .any(|&(b, v)| b == self.objective && v <= self.covered);
        if !covered {
            return None;
        }
        let ub = upper_bounds(bounds);
        self.selections
            .iter()
            .filter(|(v, _)| (0..4).all(|k| v[k] <= ub[k]))
            .min_by(|a, b| {
                a.0[objective.index()]
                    .total_cmp(&b.0[objective.index()])
                    .then_with(|| lex_cmp(&a.0, &b.0))
            })
            .map(|(_, sel)| Solve::Found(sel.clone(), PointStatus::Optimal))
    }
}

impl Milp<'_> {
    /// Exact search for one stage: a label-setting dynamic program over the layers in order. A
    /// label is a partial selection of layers 0..=l: its sums (energy, Σ delta, memory, cycles,
    /// added in layer order exactly as `SelectionProblem::costs_of` adds them) and the output
    /// bits of the layers whose consumers are not all chosen yet (its state). Labels are dropped
    /// when a bounded sum cannot be met by the best completion (single-criterion dynamic
    /// programs), when a Lagrangian bound (λ-weighted sums plus the best λ-weighted completion,
    /// for λ the multipliers of `red` and a few multiples of them) exceeds a target, and when
    /// another label of the same state is at least as good in the objective, every bounded
    /// criterion and every criterion of `later` (the next lexicographic stages). Every selection
    /// whose objective is within the target survives (or one as good in all those criteria), so
    /// the best complete feasible label is optimal if it meets the target; the target starts just
    /// above the Lagrangian bound (at the gap the previous search of this objective needed) and
    /// doubles its distance to the bound, up to the best feasible selection met. Returns the
    /// outcome and the pool of complete feasible labels with the objective value up to which it
    /// is complete; None when the labels outgrow [`MAX_LABELS`] or the state does not fit (the
    /// MILP takes over).
    pub(super) fn label_search(
        &mut self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        red: &Reduction,
        later: &[Criterion],
    ) -> Option<(Solve, Option<Pool>)> {
        let o = objective.index();
        let search = Search::new(self, objective, bounds, red, later)?;
        let (outcome, pool, gap) = search.run(self.label_gap[o])?;
        if gap.is_some() {
            self.label_gap[o] = gap;
        }
        Some((outcome, pool))
    }

    /// The steps of [`Milp::label_search`] (one per layer); None when more than 16 layers are
    /// open at once or there are more than 255 bit values.
    fn label_steps(&self) -> Option<Vec<Step>> {
        let n = self.kept.len();
        if self.nbits > 255 {
            return None;
        }
        let mut last_child = vec![None; n];
        for (l, p) in self.pb.producers.iter().enumerate() {
            if let Some(p) = *p {
                last_child[p] = Some(l);
            }
        }
        // The open layers (a layer is open from itself to its last consumer).
        let mut open: Vec<usize> = Vec::new();
        let mut steps = Vec::with_capacity(n);
        for l in 0..n {
            let input_slot = match self.pb.producers[l] {
                Some(p) => Some(open.iter().position(|&x| x == p)?),
                None => None,
            };
            let mut next: Vec<usize> = open
                .iter()
                .copied()
                .filter(|&p| last_child[p].is_some_and(|c| c > l))
                .collect();
            if last_child[l].is_some() {
                next.push(l);
            }
            if next.len() > 16 {
                return None;
            }
            let from = next
                .iter()
                .map(|&x| open.iter().position(|&y| y == x))
                .collect();
            let pending = next
                .iter()
                .map(|&p| {
                    self.children[p]
                        .iter()
                        .copied()
                        .filter(|&c| c > l)
                        .collect()
                })
                .collect();
            let roots_after = self.roots.iter().copied().filter(|&r| r > l).collect();
            steps.push(Step {
                input_slot,
                from,
                pending,
                roots_after,
            });
            open = next;
        }
        Some(steps)
    }
}

/// Slack on a bound or target: a relative 1e-9 (at least 1e-9).
fn slack(v: f64) -> f64 {
    1e-9 * v.abs().max(1.0)
}

/// What one label search works with: the stage, its bounds, the steps over the layers, and the
/// bounds labels are pruned with.
struct Search<'s, 'a> {
    milp: &'s Milp<'a>,
    red: &'s Reduction,
    objective: Criterion,
    /// Bounds on the costs and on the sums in minimisation sense (energy, −Σ delta, memory,
    /// cycles), and the bounded criteria.
    ub: [f64; 4],
    sum_ub: [f64; 4],
    cons: Vec<usize>,
    steps: Vec<Step>,
    /// Per layer and input bit index: the kept candidates.
    by_input: Vec<Vec<Vec<usize>>>,
    /// The Lagrangian bounds: per multiple of λ, the scaled weights, Σ λ·rhs and the dynamic
    /// program.
    lagrangians: Vec<([f64; 4], f64, Dp)>,
    /// The criteria of the dominance test: the objective, the bounded ones, the later stages'.
    dims: Vec<usize>,
}

/// The labels of one pass over the layers for a target, and whether the target pruned any.
struct Sweep {
    layers: Vec<Vec<Label>>,
    pruned: bool,
}

impl<'s, 'a> Search<'s, 'a> {
    /// The search of a stage; None when the state does not fit its labels.
    fn new(
        milp: &'s Milp<'a>,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        red: &'s Reduction,
        later: &[Criterion],
    ) -> Option<Self> {
        let o = objective.index();
        let ub = upper_bounds(bounds);
        let mut sum_ub = ub;
        sum_ub[Criterion::Accuracy.index()] += milp.pb.full_precision_accuracy;
        let cons: Vec<usize> = (0..4).filter(|&i| ub[i].is_finite()).collect();
        let steps = milp.label_steps()?;
        let by_input: Vec<Vec<Vec<usize>>> = milp
            .io
            .iter()
            .map(|io| {
                let mut v = vec![Vec::new(); milp.nbits];
                for (j, &(bi, _)) in io.iter().enumerate() {
                    v[bi].push(j);
                }
                v
            })
            .collect();
        let lagrangians = Search::lagrangians(milp, o, red, &cons);
        let mut dims = vec![o];
        for i in cons.iter().copied().chain(later.iter().map(|c| c.index())) {
            if !dims.contains(&i) {
                dims.push(i);
            }
        }
        Some(Search {
            milp,
            red,
            objective,
            ub,
            sum_ub,
            cons,
            steps,
            by_input,
            lagrangians,
            dims,
        })
    }

    /// The Lagrangian bounds: λ and a few multiples (each λ ≥ 0 gives a valid bound; the best λ
    /// of a partial selection is not the best λ of the whole).
    fn lagrangians(
        milp: &Milp,
        o: usize,
        red: &Reduction,
        cons: &[usize],
    ) -> Vec<([f64; 4], f64, Dp)> {
        let mut lagrangians: Vec<([f64; 4], f64, Dp)> = Vec::new();
        for f in LABEL_MULTIPLIER_FACTORS {
            let mut w = red.lam.map(|x| x * f);
            w[o] += 1.0;
            let lam_rhs = red.lam_rhs * f;
            let dp = if f == 1.0 {
                red.lagrangian.clone()
            } else if cons.iter().all(|&i| red.lam[i] == 0.0) {
                continue;
            } else {
                milp.dp(&w)
            };
            let scaled: [f64; 4] = std::array::from_fn(|t| w[t] / milp.scale[t]);
            lagrangians.push((scaled, lam_rhs, dp));
        }
        lagrangians
    }

    /// The search proper, the target raised until the best complete feasible label meets it:
    /// the outcome and the pool, and the gap of the optimum to the bound (when one was found).
    /// `last_gap` is the gap the previous search of this objective needed.
    fn run(&self, last_gap: Option<f64>) -> Option<(Solve, Option<Pool>, Option<f64>)> {
        let red = self.red;
        let o = self.objective.index();
        let mut inc = red.incumbent.as_ref().map(|(u, _)| *u);
        let mut delta = match last_gap {
            Some(g) => 1.25 * g,
            None => 1e-6 * red.bound.abs().max(1.0),
        }
        .max(1e-9 * red.bound.abs().max(1.0));
        loop {
            let target = match inc {
                Some(u) if red.bound + delta >= u => u,
                _ => red.bound + delta,
            };
            let sweep = self.sweep(target + slack(target))?;
            let pool = self.complete(&sweep.layers);
            let best = pool
                .iter()
                .min_by(|a, b| a.0[o].total_cmp(&b.0[o]).then_with(|| lex_cmp(&a.0, &b.0)));
            let done = match best {
                Some((v, _)) => self.value(v) <= target || !sweep.pruned,
                None => !sweep.pruned,
            };
            if done {
                let Some(&(v, k)) = best else {
                    return Some((Solve::Infeasible, None, None));
                };
                let gap = (self.value(&v) - red.bound).max(0.0);
                let (found, pool) = self.found(&sweep, &pool, k, target);
                return Some((found, Some(pool), Some(gap)));
            }
            if inc.is_some_and(|u| target >= u) {
                // Cannot happen (the incumbent survives); let the MILP decide.
                return None;
            }
            if let Some((v, _)) = best {
                // A feasible selection beyond the target: the next target need not exceed it.
                inc = Some(inc.map_or(self.value(v), |u| u.min(self.value(v))));
            }
            delta *= 2.0;
        }
    }

    /// The scaled objective of a cost vector.
    fn value(&self, v: &[f64; 4]) -> f64 {
        self.milp.scaled(self.objective, v[self.objective.index()])
    }

    /// One pass over the layers: the labels of each layer that survive a Lagrangian bound up to
    /// `limit`; None when they outgrow the label limit.
    fn sweep(&self, limit: f64) -> Option<Sweep> {
        let n = self.milp.kept.len();
        let mut pruned = false;
        let mut layers: Vec<Vec<Label>> = Vec::with_capacity(n);
        let mut prev = vec![Label {
            sums: [0.0; 4],
            cycles: 0,
            key: 0,
            parent: 0,
            cand: 0,
        }];
        for (l, st) in self.steps.iter().enumerate() {
            let next = dominance_filter(self.extend(l, st, &prev, limit, &mut pruned), &self.dims);
            if next.len() > self.milp.max_labels {
                return None;
            }
            layers.push(std::mem::replace(&mut prev, next));
        }
        layers.remove(0);
        layers.push(prev);
        Some(Sweep { layers, pruned })
    }

    /// The labels of layer `l` (step `st`) extending the labels `prev` of the layers before, but
    /// those that cannot meet a bound or whose Lagrangian bound exceeds `limit` (then `pruned`
    /// is set); not filtered for dominance yet.
    fn extend(
        &self,
        l: usize,
        st: &Step,
        prev: &[Label],
        limit: f64,
        pruned: &mut bool,
    ) -> Vec<Label> {
        let milp = self.milp;
        // Completion bounds of this step: per bounded criterion (raw units) and per λ.
        let feas: Vec<(usize, Completion)> = self
            .cons
            .iter()
            .map(|&i| {
                let dp = self.red.single[i].as_ref().expect("a bounded criterion");
                (i, Completion::new(dp, st, milp.scale[i]))
            })
            .collect();
        let lag: Vec<Completion> = self
            .lagrangians
            .iter()
            .map(|(_, _, dp)| Completion::new(dp, st, 1.0))
            .collect();
        let sum_ub = &self.sum_ub;
        let mut next: Vec<Label> = Vec::new();
        for (pi, lab) in prev.iter().enumerate() {
            let bi = match st.input_slot {
                Some(s) => key_slot(lab.key, s),
                None => milp.io[l].first().map_or(0, |x| x.0),
            };
            for &j in &self.by_input[l][bi] {
                let c = &milp.pb.cands[l][milp.kept[l][j]];
                let mut key = 0u128;
                for (s, f) in st.from.iter().enumerate() {
                    let b = match f {
                        Some(f) => key_slot(lab.key, *f),
                        None => milp.io[l][j].1,
                    };
                    key |= (b as u128) << (8 * s);
                }
                let mut sums = lab.sums;
                sums[0] += c.energy_pj;
                sums[1] += c.delta;
                sums[2] += c.memory_bytes;
                let cycles = lab.cycles + c.cycles;
                sums[3] = cycles as f64;
                // Sums in minimisation sense (accuracy: −Σ delta).
                let cost = [sums[0], -sums[1], sums[2], sums[3]];
                if feas
                    .iter()
                    .any(|(i, comp)| cost[*i] + comp.at(key) > sum_ub[*i] + slack(sum_ub[*i]))
                {
                    continue;
                }
                if self
                    .lagrangians
                    .iter()
                    .zip(&lag)
                    .any(|((w, lam_rhs, _), comp)| {
                        (0..4).map(|t| w[t] * cost[t]).sum::<f64>() + comp.at(key) - lam_rhs > limit
                    })
                {
                    *pruned = true;
                    continue;
                }
                next.push(Label {
                    sums,
                    cycles,
                    key,
                    parent: pi as u32,
                    cand: j as u32,
                });
            }
        }
        next
    }

    /// The complete feasible labels of a sweep: their costs (exactly as `costs_of` adds them)
    /// and their index in the last layer.
    fn complete(&self, layers: &[Vec<Label>]) -> Vec<([f64; 4], usize)> {
        let fp = self.milp.pb.full_precision_accuracy;
        let mut pool: Vec<([f64; 4], usize)> = Vec::new();
        for (k, lab) in layers[layers.len() - 1].iter().enumerate() {
            let v = [
                lab.sums[0],
                -(fp + lab.sums[1]),
                lab.sums[2],
                lab.cycles as f64,
            ];
            if (0..4).all(|i| v[i] <= self.ub[i]) {
                pool.push((v, k));
            }
        }
        pool
    }

    /// The selection of complete label `k` (candidate per layer), traced back through the
    /// parents.
    fn selection(&self, layers: &[Vec<Label>], k: usize) -> Vec<usize> {
        let n = layers.len();
        let mut sel = vec![0; n];
        let mut at = k;
        for l in (0..n).rev() {
            let lab = &layers[l][at];
            sel[l] = self.milp.kept[l][lab.cand as usize];
            at = lab.parent as usize;
        }
        sel
    }

    /// The outcome of a finished search: complete label `k`, optimal, and the pool of the
    /// complete feasible labels, complete up to `target` when the target pruned labels.
    fn found(
        &self,
        sweep: &Sweep,
        pool: &[([f64; 4], usize)],
        k: usize,
        target: f64,
    ) -> (Solve, Pool) {
        let o = self.objective.index();
        let covered = if sweep.pruned {
            target * self.milp.scale[o] + self.milp.offset(self.objective)
        } else {
            f64::INFINITY
        };
        let pool = Pool {
            objective: self.objective,
            covered,
            selections: pool
                .iter()
                .map(|&(v, k)| (v, self.selection(&sweep.layers, k)))
                .collect(),
        };
        let found = Solve::Found(self.selection(&sweep.layers, k), PointStatus::Optimal);
        (found, pool)
    }
}
