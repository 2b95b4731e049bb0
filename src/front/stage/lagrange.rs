//! The Lagrangian bound of a stage.
//!
//! The producer links form a forest, so a dynamic program over it minimises any weighted sum of
//! the criteria over chained selections in linear time ([`Milp::dp`]; [`Milp::dp_through`] gives,
//! per candidate, the best total of a selection through it). With multipliers λ ≥ 0 on the
//! stage's bounds (the Lagrangian dual, maximised by Kelley's cutting planes, each cut one
//! dynamic-program solution and each master a tiny LP through [`crate::solver`]), the dynamic program bounds any
//! feasible selection from below ([`Milp::reduce`]). A bound that no selection can meet alone is
//! reported infeasible at once. The bound's reduced costs say which candidates can still be part
//! of a selection within a given gap of it ([`Milp::within`]).

use super::{upper_bounds, Milp};
use crate::front::selection::CRITERIA;
use crate::front::Criterion;
use crate::solver;

/// Iterations of the dual (cutting-plane) search of the Lagrangian reduction.
const MAX_DUAL_ITERATIONS: usize = 200;
/// Box on the multipliers of the cutting-plane master (coefficients are scaled to ≤ 1).
const MAX_MULTIPLIER: f64 = 1e6;

/// Kelley's master LP: maximise z subject to z ≤ f + Σ_i λ_i g_i for every cut (f, g), 0 ≤ λ ≤
/// [`MAX_MULTIPLIER`] (solved as the minimum of −z). Returns (z, λ), None if HiGHS fails.
fn kelley_master(cuts: &[(f64, [f64; 4])], cons: &[usize]) -> Option<(f64, [f64; 4])> {
    let mut pb = solver::Problem::default();
    let z = pb.add_column(-1.0, f64::NEG_INFINITY, f64::INFINITY, false);
    let lam: Vec<usize> = cons
        .iter()
        .map(|_| pb.add_column(0.0, 0.0, MAX_MULTIPLIER, false))
        .collect();
    for (f, g) in cuts {
        let mut row = vec![(z, 1.0)];
        for (k, &i) in cons.iter().enumerate() {
            row.push((lam[k], -g[i]));
        }
        pb.add_row(f64::NEG_INFINITY, *f, &row);
    }
    let settings = solver::Settings {
        options: vec![("threads", solver::Value::Int(1))],
        ..Default::default()
    };
    let solved = pb.solve(&settings).ok()?;
    if solved.status != solver::Status::Optimal {
        return None;
    }
    let x = &solved.columns;
    let mut out = [0.0; 4];
    for (k, &i) in cons.iter().enumerate() {
        out[i] = x[1 + k].max(0.0);
    }
    Some((x[0], out))
}

/// The Lagrangian bound of one solve (see [`Milp::reduce`]).
pub(super) struct Reduction {
    pub(super) bound: f64,
    /// Per layer and kept candidate: reduced cost (scaled units, ≥ 0 up to rounding).
    pub(super) reduced: Vec<Vec<f64>>,
    /// The best feasible selection met and its scaled objective.
    pub(super) incumbent: Option<(f64, Vec<usize>)>,
    /// The multipliers of `bound` and Σ λ·rhs (scaled units).
    pub(super) lam: [f64; 4],
    pub(super) lam_rhs: f64,
    /// The dynamic program at weights λ + objective (its `down` bounds completions).
    pub(super) lagrangian: Dp,
    /// Per bounded criterion: the dynamic program minimising it alone.
    pub(super) single: [Option<Dp>; 4],
}

impl Reduction {
    /// The reduced cost up to which a candidate may be part of a selection of scaled objective
    /// `u` (the gap of `u` to the bound, with a relative 1e-9 to spare).
    pub(super) fn tolerance(&self, u: f64) -> f64 {
        u - self.bound + 1e-9 * u.abs().max(1.0)
    }
}

/// What the dual search found: the best bound, its multipliers, and the best feasible selection
/// met (scaled objective, selection).
struct Dual {
    bound: f64,
    lam: [f64; 4],
    incumbent: Option<(f64, Vec<usize>)>,
}

/// The inside pass of the tree dynamic program over one cost per kept candidate.
#[derive(Clone)]
pub(super) struct Dp {
    /// Cost of a candidate plus the best of its consumers' subtrees.
    pub(super) inside: Vec<Vec<f64>>,
    /// Per layer and input bit index: the best inside cost and its candidate (kept index).
    pub(super) down: Vec<Vec<(f64, usize)>>,
    /// Best total over the whole network.
    pub(super) total: f64,
}

impl Milp<'_> {
    /// The tree dynamic program (producers before consumers; a consumer's input bits equal its
    /// producer's output bits) minimising Σ weights[c] · coef[c] over chained selections.
    pub(super) fn dp(&self, weights: &[f64; 4]) -> Dp {
        let n = self.kept.len();
        let mut inside: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut down = vec![vec![(f64::INFINITY, usize::MAX); self.nbits]; n];
        for l in (0..n).rev() {
            let mut v = Vec::with_capacity(self.kept[l].len());
            for (j, &(bi, bo)) in self.io[l].iter().enumerate() {
                let mut c = 0.0;
                for (t, w) in weights.iter().enumerate() {
                    if *w != 0.0 {
                        c += w * self.coef[t][l][j];
                    }
                }
                for &ch in &self.children[l] {
                    c += down[ch][bo].0;
                }
                if c < down[l][bi].0 {
                    down[l][bi] = (c, j);
                }
                v.push(c);
            }
            inside[l] = v;
        }
        let total = self
            .roots
            .iter()
            .map(|&r| down[r].iter().map(|d| d.0).fold(f64::INFINITY, f64::min))
            .sum();
        Dp {
            inside,
            down,
            total,
        }
    }

    /// The selection (candidate index per layer) achieving `dp.total`.
    pub(super) fn dp_argmin(&self, dp: &Dp) -> Option<Vec<usize>> {
        let n = self.kept.len();
        let mut pick = vec![usize::MAX; n];
        for l in 0..n {
            let j = match self.pb.producers[l] {
                None => dp.down[l]
                    .iter()
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|d| d.1)?,
                Some(p) => dp.down[l][self.io[p][pick[p]].1].1,
            };
            if j == usize::MAX {
                return None;
            }
            pick[l] = j;
        }
        Some(
            pick.iter()
                .enumerate()
                .map(|(l, &j)| self.kept[l][j])
                .collect(),
        )
    }

    /// Per layer and kept candidate: the best total of a chained selection through it.
    pub(super) fn dp_through(&self, dp: &Dp) -> Vec<Vec<f64>> {
        let n = self.kept.len();
        let mut outside = vec![vec![f64::INFINITY; self.nbits]; n];
        let root_best = |r: usize| dp.down[r].iter().map(|d| d.0).fold(f64::INFINITY, f64::min);
        for &r in &self.roots {
            let rest = dp.total - root_best(r);
            outside[r] = vec![rest; self.nbits];
        }
        for l in 0..n {
            for &ch in &self.children[l] {
                for (j, &(bi, bo)) in self.io[l].iter().enumerate() {
                    let sub = dp.down[ch][bo].0;
                    if !sub.is_finite() {
                        continue;
                    }
                    let v = outside[l][bi] + dp.inside[l][j] - sub;
                    if v < outside[ch][bo] {
                        outside[ch][bo] = v;
                    }
                }
            }
        }
        (0..n)
            .map(|l| {
                self.io[l]
                    .iter()
                    .enumerate()
                    .map(|(j, &(bi, _))| outside[l][bi] + dp.inside[l][j])
                    .collect()
            })
            .collect()
    }

    /// Lagrangian bound of one solve: with multipliers λ ≥ 0 on the bounds, every feasible
    /// selection through a candidate costs at least `bound` + its reduced cost (the best
    /// λ-weighted total through it − Σ λ·bound − `bound`), all in scaled units. Also returns the
    /// best feasible selection met (`incumbent` or a dynamic-program minimiser). None when some
    /// bound alone is infeasible.
    pub(super) fn reduce(
        &self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        incumbent: Option<&[usize]>,
    ) -> Option<Reduction> {
        // Bounds on scaled sums (the accuracy offset moved to the right-hand side).
        let ub = upper_bounds(bounds);
        let mut rhs = [f64::INFINITY; 4];
        for &(c, v) in bounds {
            let i = c.index();
            rhs[i] = rhs[i].min(self.scaled(c, v));
        }
        let cons: Vec<usize> = (0..4).filter(|&i| rhs[i].is_finite()).collect();
        let single = self.single_dps(&cons, &rhs)?;
        let incumbent = incumbent
            .filter(|s| self.meets(s, &ub))
            .map(|s| (self.value(objective, s), s.to_vec()));
        let dual = self.dual(objective, &cons, &rhs, &ub, incumbent)?;
        let lam = dual.lam;
        let mut w = lam;
        w[objective.index()] += 1.0;
        let lagrangian = self.dp(&w);
        let through = self.dp_through(&lagrangian);
        let lam_rhs: f64 = cons.iter().map(|&i| lam[i] * rhs[i]).sum();
        let shift = lam_rhs + dual.bound;
        let reduced = through
            .iter()
            .map(|t| t.iter().map(|v| v - shift).collect())
            .collect();
        Some(Reduction {
            bound: dual.bound,
            reduced,
            incumbent: dual.incumbent,
            lam,
            lam_rhs,
            lagrangian,
            single,
        })
    }

    /// Per bounded criterion `cons`: the dynamic program minimising it alone; None when its
    /// minimum exceeds its bound `rhs` (scaled), i.e. the bound alone is infeasible.
    fn single_dps(&self, cons: &[usize], rhs: &[f64; 4]) -> Option<[Option<Dp>; 4]> {
        let mut single: [Option<Dp>; 4] = [None, None, None, None];
        for &i in cons {
            let mut w = [0.0; 4];
            w[i] = 1.0;
            let dp = self.dp(&w);
            if dp.total > rhs[i] + 1e-9 * rhs[i].abs().max(1.0) {
                return None;
            }
            single[i] = Some(dp);
        }
        Some(single)
    }

    /// Maximises the concave dual L(λ) = min over selections of (objective + Σ λ·(bound sum −
    /// bound)) by Kelley's cutting planes: each dynamic-program minimiser is a cut, and a small LP
    /// (HiGHS) over the cuts gives the next λ. Any λ ≥ 0 gives a valid bound. Feasible minimisers
    /// (within `ub`) better than `incumbent` replace it. None when there is no chained selection
    /// at all.
    fn dual(
        &self,
        objective: Criterion,
        cons: &[usize],
        rhs: &[f64; 4],
        ub: &[f64; 4],
        mut best: Option<(f64, Vec<usize>)>,
    ) -> Option<Dual> {
        let o = objective.index();
        let mut lam = [0.0f64; 4];
        let mut best_bound = (f64::NEG_INFINITY, lam);
        let mut cuts: Vec<(f64, [f64; 4])> = Vec::new();
        for _ in 0..MAX_DUAL_ITERATIONS {
            let mut w = lam;
            w[o] += 1.0;
            let dp = self.dp(&w);
            if dp.total == f64::INFINITY {
                // No chained selection at all.
                return None;
            }
            let bound = dp.total - cons.iter().map(|&i| lam[i] * rhs[i]).sum::<f64>();
            if bound > best_bound.0 {
                best_bound = (bound, lam);
            }
            let Some(sel) = self.dp_argmin(&dp) else {
                break;
            };
            let v = self.pb.costs_of(&sel);
            let mut g = [0.0; 4];
            for &i in cons {
                g[i] = self.scaled(CRITERIA[i], v[i]) - rhs[i];
            }
            let f = self.value(objective, &sel);
            if self.meets(&sel, ub) && best.as_ref().is_none_or(|b| f < b.0) {
                best = Some((f, sel));
            }
            if cons.is_empty() {
                break;
            }
            cuts.push((f, g));
            let Some((z, next)) = kelley_master(&cuts, cons) else {
                break;
            };
            if z - best_bound.0 <= 1e-10 * z.abs().max(1.0) {
                break;
            }
            lam = next;
        }
        Some(Dual {
            bound: best_bound.0,
            lam: best_bound.1,
            incumbent: best,
        })
    }

    /// Whether a selection's costs are within the upper bounds `ub`.
    fn meets(&self, sel: &[usize], ub: &[f64; 4]) -> bool {
        let v = self.pb.costs_of(sel);
        (0..4).all(|i| v[i] <= ub[i])
    }

    /// The kept candidates with reduced cost ≤ `gap` (indices into the problem's candidates).
    pub(super) fn within(&self, red: &Reduction, gap: f64) -> Vec<Vec<usize>> {
        red.reduced
            .iter()
            .enumerate()
            .map(|(l, r)| {
                r.iter()
                    .enumerate()
                    .filter(|(_, v)| **v <= gap)
                    .map(|(j, _)| self.kept[l][j])
                    .collect()
            })
            .collect()
    }
}
