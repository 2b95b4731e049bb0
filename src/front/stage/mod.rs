//! The exact solver of one lexicographic stage of the selection problem, and of a
//! lexicographic solve (one stage per criterion), with a cache of solved bound sets.
//!
//! Each stage is solved exactly but fast (MobileNetV2, bits 2..8: 18k entries), in three steps:
//! - [`lagrange`]: a Lagrangian bound from a dynamic program over the producer forest, its dual
//!   maximised by Kelley's cutting planes; a bound that no selection can meet alone is reported
//!   infeasible at once.
//! - [`labels`]: a label-setting search over the layers, pruned with those bounds, finds the
//!   optimum; the complete labels of a lexicographic solve's first stage answer its later stages
//!   when they cover them.
//! - [`milp`]: should the labels outgrow a limit, the stage falls back to the selection MILP in
//!   HiGHS over the entries the Lagrangian bound cannot rule out.
//!
//! A lexicographic solve ([`Milp::solve_lex`]) fixes each stage's optimum (up to a relative
//! 1e-9) before the next; a solve whose bounds are tighter than a solved one's and whose solution
//! satisfies them is answered from that solution (the cache, `Front::cache_hits`).

mod labels;
mod lagrange;
mod milp;
#[cfg(test)]
mod tests;

use labels::Pool;
pub(crate) use labels::MAX_LABELS;

use super::selection::CRITERIA;
use super::{Budgets, Criterion, FrontError, FrontPoint, PointStatus, SelectionProblem};
use serde::{Deserialize, Serialize};

/// What [`select`] minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Total energy (ties: higher accuracy).
    Energy,
    /// Total cycles (ties: lower energy).
    Latency,
}

/// Relative tolerance on a criterion fixed by an earlier lexicographic stage.
const LEX_REL_TOL: f64 = 1e-9;

/// Outcome of one solve.
pub(crate) enum Solve {
    Found(Vec<usize>, PointStatus),
    Infeasible,
    /// Time limit without a feasible solution.
    Unknown,
}

/// The stage solver over a pruned problem (named for the selection MILP it grew from: the
/// Lagrangian bound, the label search and the MILP fallback are its methods), with its solve
/// counters and a cache of solved bound sets.
pub(crate) struct Milp<'a> {
    pub(crate) pb: &'a SelectionProblem,
    /// Per layer, the candidates kept by pruning.
    kept: Vec<Vec<usize>>,
    /// Per criterion, the largest |coefficient| (coefficients are divided by it).
    scale: [f64; 4],
    /// Per criterion, layer and kept candidate: the scaled coefficient.
    coef: [Vec<Vec<f64>>; 4],
    /// Per layer and kept candidate: (input bit index, output bit index).
    io: Vec<Vec<(usize, usize)>>,
    nbits: usize,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
    time_limit: Option<f64>,
    /// Labels per layer beyond which the label search gives up (the MILP takes over).
    max_labels: usize,
    /// Stages solved (by the label search or the MILP).
    pub(crate) solves: usize,
    /// Lexicographic solves answered from the cache.
    pub(crate) cache_hits: usize,
    /// Stages handed to the selection MILP (HiGHS).
    pub(crate) milp_solves: std::cell::Cell<usize>,
    /// Lexicographic solves proved optimal (or infeasible).
    cache: Vec<CacheEntry>,
    /// Per objective: the gap between the Lagrangian bound and the optimum in the last label
    /// search (where the next search starts its target).
    label_gap: [Option<f64>; 4],
    /// The pool of the last stage's label search.
    pool: Option<Pool>,
}

/// A solved lexicographic problem: its upper bounds per criterion, its order, its outcome
/// (None: infeasible).
struct CacheEntry {
    ub: [f64; 4],
    lex: Vec<Criterion>,
    outcome: Option<Vec<usize>>,
}

impl<'a> Milp<'a> {
    /// The solver over the candidates `kept` by pruning, each stage limited to `time_limit`
    /// seconds in the MILP and to `max_labels` labels per layer in the label search.
    pub(crate) fn new(
        pb: &'a SelectionProblem,
        kept: Vec<Vec<usize>>,
        time_limit: Option<f64>,
        max_labels: usize,
    ) -> Self {
        let scale = scales(pb);
        let coef = CRITERIA.map(|c| {
            kept.iter()
                .enumerate()
                .map(|(l, ks)| {
                    ks.iter()
                        .map(|&k| c.of(&pb.cands[l][k]) / scale[c.index()])
                        .collect()
                })
                .collect()
        });
        let (io, nbits) = bit_indices(pb, &kept);
        let (children, roots) = forest(&pb.producers);
        Milp {
            pb,
            kept,
            scale,
            coef,
            io,
            nbits,
            children,
            roots,
            time_limit,
            max_labels,
            solves: 0,
            cache_hits: 0,
            milp_solves: std::cell::Cell::new(0),
            cache: Vec::new(),
            label_gap: [None; 4],
            pool: None,
        }
    }

    /// The constant part of criterion `c`'s cost (accuracy: −full precision).
    fn offset(&self, c: Criterion) -> f64 {
        if c == Criterion::Accuracy {
            -self.pb.full_precision_accuracy
        } else {
            0.0
        }
    }

    /// A value `v` of criterion `c` (a point's cost) in scaled units, its constant part removed.
    fn scaled(&self, c: Criterion, v: f64) -> f64 {
        (v - self.offset(c)) / self.scale[c.index()]
    }

    /// The scaled value of a selection's criterion `c`.
    fn value(&self, c: Criterion, sel: &[usize]) -> f64 {
        self.scaled(c, self.pb.costs_of(sel)[c.index()])
    }

    /// One lexicographic stage: minimise `objective` subject to `bounds` (point costs ≤ value),
    /// by the label search (its pool, for the stages `later`, left in `self.pool`) or, if that
    /// gives up, by the MILP: candidates that cannot be optimal by the Lagrangian bound are left
    /// out; when that leaves many, the MILP is first solved over the candidates of smallest
    /// reduced cost, and its optimum is kept only if no left-out candidate could beat it (else the
    /// MILP over every candidate that could is solved). Exact either way.
    fn solve_once(
        &mut self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        hint: Option<&[usize]>,
        later: &[Criterion],
    ) -> Result<Solve, FrontError> {
        self.pool = None;
        let Some(red) = self.reduce(objective, bounds, hint) else {
            return Ok(Solve::Infeasible);
        };
        self.solves += 1;
        let survivors = red
            .incumbent
            .as_ref()
            .map(|(u, _)| self.within(&red, red.tolerance(*u)));
        if let Some(s) = &survivors {
            if s.iter().all(|ks| ks.len() == 1) {
                // The bound left only the incumbent: it is optimal.
                let sel = &red.incumbent.as_ref().expect("survivors come from it").1;
                return Ok(Solve::Found(sel.clone(), PointStatus::Optimal));
            }
        }
        if let Some((solve, pool)) = self.label_search(objective, bounds, &red, later) {
            self.pool = pool;
            return Ok(solve);
        }
        self.milp_fallback(objective, bounds, &red, survivors)
    }

    /// Lexicographic minimisation of `lex` under `bounds`, answered from the cache when a solved
    /// relaxation's solution satisfies the bounds.
    pub(crate) fn solve_lex(
        &mut self,
        lex: &[Criterion],
        bounds: &[(Criterion, f64)],
    ) -> Result<Solve, FrontError> {
        let ub = upper_bounds(bounds);
        if let Some(hit) = self.cached(lex, &ub) {
            self.cache_hits += 1;
            return Ok(hit);
        }
        let mut bounds: Vec<(Criterion, f64)> = bounds.to_vec();
        let mut best: Option<(Vec<usize>, PointStatus)> = None;
        // The first stage's label search pool, if it covers the later stages.
        let mut pool: Option<Pool> = None;
        for (i, &c) in lex.iter().enumerate() {
            let hint = best.as_ref().map(|b| b.0.clone());
            let from_pool = pool.as_ref().and_then(|p| p.best(c, &bounds));
            let solved = match from_pool {
                Some(s) => s,
                None => {
                    let s = self.solve_once(c, &bounds, hint.as_deref(), &lex[i + 1..])?;
                    if i == 0 {
                        pool = self.pool.take();
                    }
                    s
                }
            };
            match solved {
                Solve::Found(choice, status) => {
                    let v = c.cost(&self.pb.point(&choice, status));
                    bounds.push((c, v + LEX_REL_TOL * v.abs().max(1.0)));
                    let status = match &best {
                        Some((_, PointStatus::TimeLimit)) => PointStatus::TimeLimit,
                        _ => status,
                    };
                    best = Some((choice, status));
                }
                Solve::Infeasible if i == 0 => {
                    self.cache.push(CacheEntry {
                        ub,
                        lex: lex.to_vec(),
                        outcome: None,
                    });
                    return Ok(Solve::Infeasible);
                }
                Solve::Unknown if i == 0 => return Ok(Solve::Unknown),
                // A later stage can only fail through tolerances: keep the earlier stage's.
                _ => break,
            }
        }
        let (choice, status) = best.expect("stage 0 found a point");
        if status == PointStatus::Optimal {
            self.cache.push(CacheEntry {
                ub,
                lex: lex.to_vec(),
                outcome: Some(choice.clone()),
            });
        }
        Ok(Solve::Found(choice, status))
    }

    /// The cached answer to the lexicographic solve `lex` under upper bounds `ub`: the first
    /// solve of `lex` under looser bounds that was infeasible, or whose solution meets `ub`.
    fn cached(&self, lex: &[Criterion], ub: &[f64; 4]) -> Option<Solve> {
        for e in &self.cache {
            if e.lex != lex || (0..4).any(|i| e.ub[i] < ub[i]) {
                continue;
            }
            match &e.outcome {
                None => return Some(Solve::Infeasible),
                Some(choice) => {
                    let v = self.pb.costs_of(choice);
                    if (0..4).all(|i| v[i] <= ub[i]) {
                        return Some(Solve::Found(choice.clone(), PointStatus::Optimal));
                    }
                }
            }
        }
        None
    }
}

/// Minimises total energy or latency subject to the budgets (one lexicographic MILP). None when
/// the budgets are infeasible.
pub fn select(
    problem: &SelectionProblem,
    goal: Goal,
    budgets: &Budgets,
    time_limit: Option<f64>,
) -> Result<Option<FrontPoint>, FrontError> {
    let lex = match goal {
        Goal::Energy => [Criterion::Energy, Criterion::Accuracy],
        Goal::Latency => [Criterion::Cycles, Criterion::Energy],
    };
    let mut crit = lex.to_vec();
    crit.extend(budgets.criteria());
    let kept = problem.prune(&crit, &[]);
    let mut milp = Milp::new(problem, kept, time_limit, MAX_LABELS);
    match milp.solve_lex(&lex, &budgets.bounds())? {
        Solve::Found(choice, status) => Ok(Some(problem.point(&choice, status))),
        Solve::Infeasible => Ok(None),
        Solve::Unknown => Err(FrontError::Solver(
            "time limit reached before a feasible selection was found".into(),
        )),
    }
}

/// Per criterion, the tightest of `bounds` on it (+∞ for none).
fn upper_bounds(bounds: &[(Criterion, f64)]) -> [f64; 4] {
    let mut ub = [f64::INFINITY; 4];
    for &(c, v) in bounds {
        ub[c.index()] = ub[c.index()].min(v);
    }
    ub
}

/// Per criterion, the largest |coefficient| of any candidate (1 when all are 0): the scale the
/// coefficients are divided by.
fn scales(pb: &SelectionProblem) -> [f64; 4] {
    let mut scale = [0.0f64; 4];
    for cs in &pb.cands {
        for c in cs {
            for k in CRITERIA {
                scale[k.index()] = scale[k.index()].max(k.of(c).abs());
            }
        }
    }
    for s in &mut scale {
        if *s == 0.0 {
            *s = 1.0;
        }
    }
    scale
}

/// Per layer and kept candidate: (input bit index, output bit index) among the bit values of
/// all candidates; and the number of bit values.
fn bit_indices(pb: &SelectionProblem, kept: &[Vec<usize>]) -> (Vec<Vec<(usize, usize)>>, usize) {
    let mut values: Vec<u32> = pb
        .cands
        .iter()
        .flatten()
        .flat_map(|c| [c.bits.input_bits, c.bits.output_bits])
        .collect();
    values.sort_unstable();
    values.dedup();
    let idx = |b: u32| values.binary_search(&b).expect("collected above");
    let io = kept
        .iter()
        .enumerate()
        .map(|(l, ks)| {
            ks.iter()
                .map(|&k| {
                    let b = pb.cands[l][k].bits;
                    (idx(b.input_bits), idx(b.output_bits))
                })
                .collect()
        })
        .collect();
    (io, values.len())
}

/// The producer forest: per layer its consumers, and the layers without producer.
fn forest(producers: &[Option<usize>]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let n = producers.len();
    let mut children = vec![Vec::new(); n];
    let mut roots = Vec::new();
    for (l, producer) in producers.iter().enumerate() {
        match *producer {
            Some(p) => children[p].push(l),
            None => roots.push(l),
        }
    }
    (children, roots)
}
