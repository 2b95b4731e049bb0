//! Enumerating mappers over a [`Mapspace`] and the evaluator: exhaustive enumeration (the test
//! oracle for small layers), the bounded enumeration that proves optima with far fewer
//! evaluations (qmap's enumerating engine: [`enumerate`], [`exhaustive_choices`]) and
//! Timeloop's random-pruned search.
//!
//! All rank valid mappings by the objective (energy, cycles or EDP) and break ties by lower
//! energy, then lower cycles, then the first found (in enumeration order for the enumerations,
//! whatever the number of threads; in sampling order for random search).
//!
//! The bounded enumeration bounds from below, before evaluating them, the loop orders of each
//! factorisation and keep pattern ([`Evaluator::order_free_count`]) and the factorisations
//! that share the choices of their first dims ([`Mapspace::scan_part_bounded`]); what a bound
//! puts strictly above the best mapping found so far is skipped, so the answer is the
//! oracle's, ties included.

use crate::eval::{
    combine_storage, combined_cycles, evaluate, tensor_price, CompletionBound, Evaluation,
    Evaluator, TensorPrice,
};
use crate::mapspace::{Mapspace, SlotKind, Visit};
use crate::model::{Mapping, ModelOptions, Problem};
use crate::spec::Objective;
use itertools::Itertools;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

/// Random search gives up after this many invalid samples in a row.
pub const MAX_CONSECUTIVE_INVALID: u64 = 100_000;

/// Why a search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every mapping was evaluated (exhaustive search).
    Exhausted,
    /// `max_samples` valid mappings were evaluated.
    MaxSamples,
    /// `victory` valid mappings in a row did not improve the best.
    Victory,
    /// [`MAX_CONSECUTIVE_INVALID`] samples in a row were invalid.
    InvalidStreak,
    /// The deadline passed before every part of the space was searched (bounded enumeration).
    Deadline,
}

/// The outcome of a search.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub objective: Objective,
    /// The best valid mapping, if any mapping was valid.
    pub best: Option<Mapping>,
    /// Its evaluation.
    pub evaluation: Option<Evaluation>,
    /// Its objective value (infinity when there is none).
    pub value: f64,
    /// Mappings evaluated (valid or not). For the exhaustive search, every mapping of the space:
    /// the other loop orders of a factorisation and keep pattern found invalid at its first
    /// order are counted as invalid without evaluating them (validity does not depend on loop
    /// order; see [`Mapspace::scan_part`]).
    pub evaluated: u64,
    /// Valid mappings among them.
    pub valid: u64,
    pub stop: StopReason,
    /// For the enumerations, a lower bound on the objective value of every mapping of the
    /// space: `value` when the whole space was searched, else the least of `value` and the
    /// bounds of the parts left unsearched at the deadline. None for random search.
    pub bound: Option<f64>,
}

/// The objective value of an evaluation: energy (pJ), cycles or energy × cycles.
pub fn objective_value(e: &Evaluation, objective: Objective) -> f64 {
    score_value(e.energy_pj, e.cycles, objective)
}

/// The objective value of a mapping of energy `energy_pj` and `cycles` cycles.
/// The objective value of a mapping of this energy and these cycles.
pub fn score_value(energy_pj: f64, cycles: u64, objective: Objective) -> f64 {
    match objective {
        Objective::Energy => energy_pj,
        Objective::Latency => cycles as f64,
        Objective::Edp => energy_pj * cycles as f64,
    }
}

/// What valid mappings are ranked by: objective, then energy, then cycles (lower is better).
type Rank = (f64, f64, f64);

fn rank(energy_pj: f64, cycles: u64, objective: Objective) -> Rank {
    (
        score_value(energy_pj, cycles, objective),
        energy_pj,
        cycles as f64,
    )
}

/// Whether rank `a` is strictly better than `b`.
fn better(a: &Rank, b: &Rank) -> bool {
    a.partial_cmp(b) == Some(std::cmp::Ordering::Less)
}

/// The best of one part of a search.
struct Best {
    best: Option<(Rank, Mapping)>,
    evaluated: u64,
    valid: u64,
}

impl Best {
    fn new() -> Best {
        Best {
            best: None,
            evaluated: 0,
            valid: 0,
        }
    }
    /// Records a mapping's score (None = invalid); returns whether it is the new best.
    fn offer(&mut self, m: &Mapping, score: Option<(f64, u64)>, objective: Objective) -> bool {
        self.evaluated += 1;
        let Some((energy, cycles)) = score else {
            return false;
        };
        self.valid += 1;
        let r = rank(energy, cycles, objective);
        let improves = match &self.best {
            None => true,
            Some((b, _)) => better(&r, b),
        };
        if improves {
            self.best = Some((r, m.clone()));
        }
        improves
    }
    /// The result, the best mapping evaluated in full.
    /// `unsearched`: the least bound of the parts not searched (None: random search).
    fn into_result(
        self,
        space: &Mapspace,
        opts: &ModelOptions,
        objective: Objective,
        stop: StopReason,
        unsearched: Option<f64>,
    ) -> SearchResult {
        let (best, evaluation) = match self.best {
            Some((_, m)) => {
                let e = evaluate(space.problem(), space.arch(), &m, opts);
                (Some(m), Some(e))
            }
            None => (None, None),
        };
        let value = evaluation
            .as_ref()
            .map_or(f64::INFINITY, |e| objective_value(e, objective));
        SearchResult {
            objective,
            value,
            best,
            evaluation,
            evaluated: self.evaluated,
            valid: self.valid,
            stop,
            bound: unsearched.map(|b| b.min(value)),
        }
    }
}

/// Evaluates every mapping of `space` (in parallel over its parts) and returns the best: the
/// test oracle. Loop orders of an invalid factorisation and keep pattern are skipped (they are
/// invalid too). Refuses, naming the size, when the space has more than `limit` mappings (None
/// = no limit).
pub fn exhaustive(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    limit: Option<u128>,
) -> Result<SearchResult, String> {
    exhaustive_until(space, opts, objective, limit, None)
}

/// [`exhaustive`] stopped at `deadline` (stop [`StopReason::Deadline`]): the best of what it
/// evaluated by then, with no bound on the rest (`bound` minus infinity).
pub fn exhaustive_until(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    limit: Option<u128>,
    deadline: Option<Instant>,
) -> Result<SearchResult, String> {
    if let Some(limit) = limit {
        if space.size() > limit {
            return Err(format!(
                "the mapspace has {} mappings (~{:.3e}), more than the limit {limit}; add \
                 constraints or force the search",
                space.size(),
                space.size_f64()
            ));
        }
    }
    Ok(scan(space, opts, objective, false, deadline))
}

/// The optimum of `space` with [`exhaustive`]'s answer (ties included), proved with fewer
/// evaluations: each factorisation and keep pattern with several loop orders is first bounded
/// over all of them ([`Evaluator::order_free_score`]), and the factorisations that share the
/// choices of their first dims are bounded together (`PartialBounds`); what a bound puts
/// above the best mapping found so far (in any part) is not evaluated. `evaluated` counts the
/// mappings evaluated, the others are not counted; `valid` counts valid mappings among them.
///
/// With a `deadline`, the search stops there (stop [`StopReason::Deadline`]): the parts of the
/// space ([`Mapspace::num_parts`]) not searched whole by then (not started, or stopped inside)
/// are bounded, and `bound` is the least of the value found and their bounds; otherwise
/// `bound` is the value.
pub fn enumerate(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    deadline: Option<Instant>,
) -> SearchResult {
    scan(space, opts, objective, true, deadline)
}

/// What bounds the factorisations that share the choices of the first dims of
/// [`Mapspace::dim_order`] ([`Mapspace::scan_part_bounded`]'s partial mappings), per depth k
/// (0 to the number of dims):
/// the problem whose dims after the first k have bound 1, and how its order-free counts are
/// raised to bound the completions ([`CompletionBound`], [`Evaluator::completion_count`]).
///
/// Where a left-out dim d scales a tensor's counts in proportion — every rank that uses d
/// uses no other dim of bound above 1, with a coefficient of at least 1 (exactly 1, and one
/// dim per rank, for a read-write tensor, whose partitions are subtracted) — every count of
/// that tensor at level l grows at least by the points of d that one instance of l covers:
/// D / (d's spatial factors above l), so by D / (the largest such product over d's factor
/// choices). The compute steps grow by D / (d's largest spatial product anywhere). Bounds are
/// at the full problem's MACs.
struct PartialBounds<'a> {
    depths: Vec<(Problem, CompletionBound)>,
    macs: u64,
    arch: &'a crate::model::Arch,
}

/// The bound [`enumerate`] puts on the mappings that complete `partial` (a mapping of `space`
/// whose dims after the first `depth` of [`Mapspace::dim_order`] have factors 1): energy (pJ)
/// and cycles, None when they are all invalid. For tests.
#[doc(hidden)]
pub fn partial_bound(
    space: &Mapspace,
    depth: usize,
    partial: &Mapping,
    opts: &ModelOptions,
) -> Option<(f64, u64)> {
    let pb = PartialBounds::new(space);
    let mut ev = Evaluator::new(&pb.depths[depth].0, space.arch());
    pb.score(&mut ev, depth, partial, opts)
}

/// Completion bounds (energy, pJ; None where every completion is invalid) of one keep pattern
/// `keep` of `space`: of all its mappings (every dim open), and, per dim of `dims`, of the
/// mappings that take each of its factorisations ([`Mapspace::dim_choices`]), every other dim
/// open. The bounds the enumeration puts on its partial mappings, for any set of chosen dims;
/// the MILP starts from them.
pub fn choice_bounds(
    space: &Mapspace,
    keep: &[Vec<bool>],
    opts: &ModelOptions,
    dims: &[usize],
) -> (Option<f64>, Vec<Vec<Option<f64>>>) {
    let (problem, arch) = (space.problem(), space.arch());
    let nd = problem.dims.len();
    let open = PartialBounds::open_dims(space);
    let mut chosen = vec![None; nd];
    let mut bounds = |open_dims: &[usize], d: Option<usize>| -> Vec<Option<f64>> {
        let at = open(open_dims);
        let mut ev = Evaluator::new(&at.0, arch);
        let n = d.map_or(1, |d| space.dim_choices(d).len());
        let out = (0..n)
            .map(|c| {
                if let Some(d) = d {
                    chosen[d] = Some(c);
                }
                let m = space.partial_mapping(&chosen, keep);
                completion_score(&mut ev, &at, problem.macs(), arch, &m, opts).map(|(e, _)| e)
            })
            .collect();
        if let Some(d) = d {
            chosen[d] = None;
        }
        out
    };
    let all: Vec<usize> = (0..nd).collect();
    let whole = bounds(&all, None)[0];
    let per_dim = dims
        .iter()
        .map(|&d| {
            let others: Vec<usize> = (0..nd).filter(|&o| o != d).collect();
            bounds(&others, Some(d))
        })
        .collect();
    (whole, per_dim)
}

/// The bound on the energy (pJ) and cycles of the mappings that complete `partial`, a partial
/// mapping of `at`'s problem (the full problem, of `macs` MACs, with some dims left out), with
/// `ev` an evaluator of that problem; None when they are all invalid.
fn completion_score(
    ev: &mut Evaluator,
    at: &(Problem, CompletionBound),
    macs: u64,
    arch: &crate::model::Arch,
    partial: &Mapping,
    opts: &ModelOptions,
) -> Option<(f64, u64)> {
    let (p, bound) = at;
    let (e, cy) = ev.completion_score(partial, opts, bound)?;
    // At the MACs of the full problem.
    let left_out = macs - p.macs();
    let per_op = crate::eval::mac_energy_per_op(arch, p, opts);
    Some((e + left_out as f64 * per_op, cy))
}

/// Where a bounded scan bounds partial mappings: per depth, partial mappings seen, bounds
/// computed, and how many of those ruled their mappings out; factorisations reached.
#[derive(Default)]
struct BoundStats {
    depths: Vec<Cell<(u64, u64, u64)>>,
    leaves: Cell<u64>,
}

impl<'a> PartialBounds<'a> {
    fn new(space: &'a Mapspace) -> PartialBounds<'a> {
        let (problem, arch) = (space.problem(), space.arch());
        let open = Self::open_dims(space);
        let order = space.dim_order();
        let depths = (0..=order.len()).map(|k| &order[k..]).map(open).collect();
        PartialBounds {
            depths,
            macs: problem.macs(),
            arch,
        }
    }

    /// Per set of open dims (left out: bound 1), the problem whose open dims have bound 1 and
    /// how its order-free counts are raised to bound the completions.
    fn open_dims<'s>(space: &'s Mapspace) -> impl Fn(&[usize]) -> (Problem, CompletionBound) + 's {
        let (problem, arch) = (space.problem(), space.arch());
        let (nl, nt) = (arch.levels.len(), problem.tensors.len());
        let slots = space.slots();
        // Per dim and level, the largest product of its spatial factors on the fanouts above
        // the level.
        let spread: Vec<Vec<u64>> = (0..problem.dims.len())
            .map(|d| {
                (0..nl)
                    .map(|l| {
                        let above = |(s, _): &(&crate::mapspace::Slot, &u64)| {
                            s.level > l && s.kind != SlotKind::Temporal
                        };
                        let spread = |c: &Vec<u64>| -> u64 {
                            slots.iter().zip(c).filter(above).map(|(_, f)| f).product()
                        };
                        space.dim_choices(d).iter().map(spread).max().unwrap_or(1)
                    })
                    .collect()
            })
            .collect();
        // The terms of a rank over dims of bound above 1.
        let wide = |r: &[crate::model::Term]| {
            r.iter()
                .filter(|x| problem.bounds[x.dim] > 1)
                .copied()
                .collect_vec()
        };
        let scales = move |t: usize, d: usize| {
            let tensor = &problem.tensors[t];
            let own = |r: &Vec<crate::model::Term>| {
                let w = wide(r);
                w.len() == 1 && w[0].dim == d && w[0].coef >= 1
            };
            tensor.relevant(d)
                && tensor
                    .ranks
                    .iter()
                    .filter(|r| r.iter().any(|x| x.dim == d))
                    .all(own)
                && (!tensor.read_write
                    || tensor.ranks.iter().all(|r| {
                        let w = wide(r);
                        w.len() <= 1 && w.iter().all(|x| x.coef == 1)
                    }))
        };
        // Per dim, its largest spatial product on any fanout.
        let spread_all: Vec<u64> = (0..problem.dims.len())
            .map(|d| {
                let spatial = |c: &Vec<u64>| -> u64 {
                    slots
                        .iter()
                        .zip(c)
                        .filter(|(s, _)| s.kind != SlotKind::Temporal)
                        .map(|(_, f)| f)
                        .product()
                };
                space.dim_choices(d).iter().map(spatial).max().unwrap_or(1)
            })
            .collect();
        let used_points: Vec<u64> = problem
            .tensors
            .iter()
            .map(|t| t.used_points(&problem.bounds))
            .collect();
        move |open: &[usize]| {
            let mut p = problem.clone();
            let mut bound = CompletionBound {
                scale: vec![1; nl * nt],
                steps_scale: 1,
                used_points: used_points.clone(),
                spread: vec![1; nl],
            };
            for &d in open {
                p.bounds[d] = 1;
                bound.steps_scale = bound
                    .steps_scale
                    .saturating_mul(problem.bounds[d] / spread_all[d]);
                for (l, &sp) in spread[d].iter().enumerate() {
                    bound.spread[l] = bound.spread[l].saturating_mul(sp);
                    let points = problem.bounds[d] / sp;
                    for t in (0..nt).filter(|&t| scales(t, d)) {
                        let s = &mut bound.scale[l * nt + t];
                        *s = s.saturating_mul(points);
                    }
                }
            }
            (p, bound)
        }
    }

    /// The bound on the energy (pJ) and cycles of the mappings that complete `partial` at
    /// `depth`, with `ev` an evaluator of depth's problem; None when they are all invalid.
    fn score(
        &self,
        ev: &mut Evaluator,
        depth: usize,
        partial: &Mapping,
        opts: &ModelOptions,
    ) -> Option<(f64, u64)> {
        completion_score(ev, &self.depths[depth], self.macs, self.arch, partial, opts)
    }

    /// The least bound on the energy and cycles of the mappings of `parts` of `space` under
    /// any keep pattern, as `value(energy, cycles)` (infinity when none is valid).
    fn parts_bound(
        &self,
        space: &Mapspace,
        parts: impl Iterator<Item = usize>,
        opts: &ModelOptions,
        value: impl Fn(f64, u64) -> f64,
    ) -> f64 {
        let mut evs = self.evaluators();
        let mut least = f64::INFINITY;
        for part in parts {
            space.part_partials(part, |depth, m| {
                if let Some((e, cy)) = self.score(&mut evs[depth], depth, m, opts) {
                    least = least.min(value(e, cy));
                }
            });
        }
        least
    }

    /// One evaluator per depth.
    fn evaluators(&self) -> Vec<Evaluator<'_>> {
        self.depths
            .iter()
            .map(|(p, _)| Evaluator::new(p, self.arch))
            .collect()
    }
}

impl BoundStats {
    fn new(space: &Mapspace) -> BoundStats {
        BoundStats {
            depths: vec![Cell::new((0, 0, 0)); space.dim_order().len()],
            leaves: Cell::new(0),
        }
    }

    /// Whether to bound a partial mapping at `depth`: while few have been, and then where the
    /// factorisations a bound saves on average (the share of bounds that rule their mappings
    /// out × the factorisations reached per partial mapping let through) are worth at least
    /// two bounds; else one partial mapping in sixteen, to notice when that changes. The
    /// answer does not depend on it, only the time.
    fn worth(&self, depth: usize) -> bool {
        let (seen, done, cut) = self.depths[depth].get();
        self.depths[depth].set((seen + 1, done, cut));
        let through = (seen - cut).max(1) as f64;
        done < 64
            || cut as f64 / done as f64 * (self.leaves.get() as f64 / through) >= 2.0
            || seen % 16 == 0
    }

    fn record(&self, depth: usize, cut: bool) {
        let (seen, done, cuts) = self.depths[depth].get();
        self.depths[depth].set((seen, done + 1, cuts + cut as u64));
    }

    /// A factorisation (with a keep pattern) reached.
    fn leaf(&self) {
        self.leaves.set(self.leaves.get() + 1);
    }
}

/// [`exhaustive_until`] (`prune` false) or [`enumerate`] (`prune` true), both stopped at the
/// `deadline`.
fn scan(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    prune: bool,
    deadline: Option<Instant>,
) -> SearchResult {
    let (problem, arch) = (space.problem(), space.arch());
    // The best objective value found in any part (bits of a non-negative f64, which order
    // like the values). What a bound puts strictly above it cannot be, or tie, the optimum.
    let incumbent = AtomicU64::new(f64::INFINITY.to_bits());
    let beaten = |v: f64| prune && v > f64::from_bits(incumbent.load(Relaxed)) * (1.0 + 1e-9);
    let pb = prune.then(|| PartialBounds::new(space));
    // Evaluators, bound statistics and scratch are per rayon job, reused over its parts.
    let init = || {
        (
            Evaluator::new(problem, arch),
            pb.as_ref().map_or_else(Vec::new, PartialBounds::evaluators),
            BoundStats::new(space),
            // Per keep pattern, the bound of the current factorisation with it.
            vec![0.0; 1 << space.free_keeps().len()],
        )
    };
    let done = AtomicUsize::new(0);
    // Per part, the best found and whether the part was searched whole (a part not started,
    // or stopped by the deadline, is bounded below instead).
    let parts: Vec<(Best, bool)> = (0..space.num_parts())
        .into_par_iter()
        .map_init(init, |(ev, partial, stats, bounds), p| {
            let mut b = Best::new();
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return (b, false);
            }
            let stats = &*stats;
            let bound_partial = |depth: usize, m: &Mapping| {
                let Some(pb) = &pb else { return true };
                if !stats.worth(depth) {
                    return true;
                }
                let go_on = pb
                    .score(&mut partial[depth], depth, m, opts)
                    .is_some_and(|(e, cy)| !beaten(score_value(e, cy, objective)));
                stats.record(depth, !go_on);
                go_on
            };
            let visit = |m: &Mapping, v: Visit| {
                if prune {
                    if v.first {
                        stats.leaf();
                    }
                    // A factorisation with one loop order is evaluated at once (its bound would
                    // cost as much).
                    if v.first && v.orders > 1 {
                        let Some((e, cy)) = ev.order_free_score(m, opts) else {
                            return false;
                        };
                        bounds[v.keep] = score_value(e, cy, objective);
                        if beaten(bounds[v.keep]) {
                            return false;
                        }
                    } else if !v.first && beaten(bounds[v.keep]) {
                        return true;
                    }
                }
                let score = ev.score(m, opts);
                if b.offer(m, score, objective) {
                    let v = b.best.as_ref().map_or(f64::INFINITY, |(r, _)| r.0);
                    incumbent.fetch_min(v.to_bits(), Relaxed);
                    crate::progress::incumbent(v);
                }
                score.is_some()
            };
            let complete = if prune {
                space
                    .scan_part_bounded(p, deadline, bound_partial, visit)
                    .complete
            } else {
                let scanned = space.scan_part_until(p, deadline, visit);
                b.evaluated += scanned.skipped;
                scanned.complete
            };
            crate::progress::parts(done.fetch_add(1, Relaxed) + 1, space.num_parts());
            (b, complete)
        })
        .collect();
    // The parts left unsearched at the deadline, bounded (the oracle has no bounds).
    let left = (0..parts.len()).filter(|&p| !parts[p].1);
    let unsearched = match &pb {
        Some(pb) => pb.parts_bound(space, left, opts, |e, cy| score_value(e, cy, objective)),
        None if left.count() > 0 => f64::NEG_INFINITY,
        None => f64::INFINITY,
    };
    let stop = if parts.iter().all(|p| p.1) {
        StopReason::Exhausted
    } else {
        StopReason::Deadline
    };
    // Merge in part order, so ties go to the first mapping in enumeration order.
    let mut total = Best::new();
    for (p, _) in parts {
        total.evaluated += p.evaluated;
        total.valid += p.valid;
        if let Some((r, m)) = p.best {
            let improves = match &total.best {
                None => true,
                Some((b, _)) => better(&r, b),
            };
            if improves {
                total.best = Some((r, m));
            }
        }
    }
    total.into_result(space, opts, objective, stop, Some(unsearched))
}

/// The energy optimum of one bit-width choice found by [`exhaustive_choices`].
#[derive(Debug, Clone)]
pub struct ChoiceBest {
    /// The best valid mapping (None when no mapping fits at these bit-widths).
    pub mapping: Option<Mapping>,
    /// Its evaluation at the choice's bit-widths.
    pub evaluation: Option<Evaluation>,
    /// A lower bound on the energy (pJ) of every mapping at these bit-widths: the mapping's
    /// when the whole space was searched, else the least of it and the bounds of the parts
    /// left unsearched at the deadline (infinity when nothing fits).
    pub bound: f64,
}

/// Enumerates `space` once and finds the energy optimum of every bit-width choice: each
/// mapping is counted once ([`Evaluator::count`]), each tensor is priced at each of its
/// packing classes ([`tensor_price`]) and the prices are combined per bit choice
/// ([`combine_storage`]). As in [`enumerate`], the loop orders of a factorisation and keep
/// pattern, and the factorisations that share the choices of their first dims, are skipped
/// when their bound is worse than the best found at every class.
/// Ties go to lower cycles, then to the first mapping in enumeration order. Every winner is
/// re-evaluated in full. Refuses spaces above `limit` like [`exhaustive`]. With a `deadline`,
/// the search stops there, as in [`enumerate`].
pub fn exhaustive_choices(
    space: &Mapspace,
    choices: &[ModelOptions],
    limit: Option<u128>,
    deadline: Option<Instant>,
) -> Result<Vec<ChoiceBest>, String> {
    if let Some(limit) = limit {
        if space.size() > limit {
            return Err(format!(
                "the mapspace has {} mappings (~{:.3e}), more than the limit {limit}",
                space.size(),
                space.size_f64()
            ));
        }
    }
    let (problem, arch) = (space.problem(), space.arch());
    if choices.is_empty() {
        return Ok(vec![]);
    }
    if choices
        .iter()
        .any(|o| o.seed_compat != choices[0].seed_compat)
    {
        return Err("bit choices must agree on seed_compat (it changes the counts)".into());
    }
    // Per tensor, its packing classes (each with a representative choice); per choice, the
    // tuple of its tensors' classes; the distinct tuples (with a representative) are priced.
    let nt = problem.tensors.len();
    let mut tensor_reps: Vec<Vec<(crate::eval::PackingSignature, usize)>> = vec![vec![]; nt];
    let tuples: Vec<Vec<usize>> = choices
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (0..nt)
                .map(|t| {
                    let sig = crate::eval::tensor_packing_signature(arch, problem, o, t);
                    let reps = &mut tensor_reps[t];
                    reps.iter().position(|(s, _)| *s == sig).unwrap_or_else(|| {
                        reps.push((sig, i));
                        reps.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    let mut classes: Vec<(Vec<usize>, usize)> = vec![];
    let class_of: Vec<usize> = tuples
        .iter()
        .enumerate()
        .map(|(i, tu)| {
            classes
                .iter()
                .position(|(c, _)| c == tu)
                .unwrap_or_else(|| {
                    classes.push((tu.clone(), i));
                    classes.len() - 1
                })
        })
        .collect();
    let mac_energy: Vec<f64> = classes
        .iter()
        .map(|(_, rep)| {
            problem.macs() as f64 * crate::eval::mac_energy_per_op(arch, problem, &choices[*rep])
        })
        .collect();
    type PartBest = Vec<Option<(f64, u64, Mapping)>>;
    // Merged pairwise in part order (rayon's reduce keeps the order), so ties go to the first
    // mapping in enumeration order and only a few part results are alive at a time.
    let merge = |mut a: PartBest, b: PartBest| {
        for (x, y) in a.iter_mut().zip(b) {
            if let Some(y) = y {
                if x.as_ref().is_none_or(|x| (y.0, y.1) < (x.0, x.1)) {
                    *x = Some(y);
                }
            }
        }
        a
    };
    // Per class, the least energy found so far in any part (bits of a non-negative f64, which
    // order like the values). A factorisation and keep pattern whose order-free lower bound
    // exceeds it at every class cannot hold an optimum (nor tie one): its loop orders are
    // skipped. What is skipped is strictly worse than a mapping found, so the answer (ties
    // included) is the same as without skipping, whatever the timing of the parts.
    let incumbents: Vec<AtomicU64> = classes
        .iter()
        .map(|_| AtomicU64::new(f64::INFINITY.to_bits()))
        .collect();
    let beaten =
        |k: usize, lb: f64| lb > f64::from_bits(incumbents[k].load(Relaxed)) * (1.0 + 1e-9);
    // Per tensor and packing class, its price and whether its bit-width fits; then per class,
    // the storage energy plus MACs, None when the bit-widths or the capacities rule it out.
    let price_tensors = |c: &crate::eval::Counts, prices: &mut Vec<Vec<(TensorPrice, bool)>>| {
        for (t, reps) in tensor_reps.iter().enumerate() {
            for ((_, rep), (price, ok)) in reps.iter().zip(&mut prices[t]) {
                *ok = tensor_price(problem, arch, c, t, &choices[*rep], price);
            }
        }
    };
    let class_energies = |c: &crate::eval::Counts,
                          prices: &mut Vec<Vec<(TensorPrice, bool)>>,
                          out: &mut Vec<Option<f64>>| {
        price_tensors(c, prices);
        out.clear();
        out.extend(classes.iter().enumerate().map(|(k, (tuple, rep))| {
            if (0..nt).any(|t| !prices[t][tuple[t]].1) {
                return None;
            }
            let part = |t: usize| &prices[t][tuple[t]].0;
            Some(combine_storage(arch, c, part, &choices[*rep])? + mac_energy[k])
        }));
    };
    let pb = PartialBounds::new(space);
    let all_beaten = |b: &[Option<f64>]| {
        b.iter()
            .enumerate()
            .all(|(k, b)| b.is_none_or(|b| beaten(k, b)))
    };
    // Per tensor and packing class, its price and whether its bit-width fits (scratch).
    let new_prices = || -> Vec<Vec<(TensorPrice, bool)>> {
        tensor_reps
            .iter()
            .map(|reps| vec![(TensorPrice::default(), false); reps.len()])
            .collect()
    };
    // Evaluators, bound statistics and scratch are per rayon job, reused over its parts.
    let init = || {
        let prices = new_prices();
        (
            Evaluator::new(problem, arch),
            pb.evaluators(),
            BoundStats::new(space),
            // Per keep pattern and class, the lower bound of the current factorisation with
            // that keep pattern (None: invalid at that class).
            vec![Vec::<Option<f64>>::new(); 1 << space.free_keeps().len()],
            (prices.clone(), prices, Vec::new()),
        )
    };
    let done = AtomicUsize::new(0);
    // Which parts were searched (those not started by the deadline were not).
    let searched: Vec<AtomicBool> = (0..space.num_parts())
        .map(|_| AtomicBool::new(true))
        .collect();
    let best: PartBest = (0..space.num_parts())
        .into_par_iter()
        .map_init(init, |state, p| {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                searched[p].store(false, Relaxed);
                return vec![None; classes.len()];
            }
            let (ev, partial, stats, bounds, (prices, partial_prices, partial_bounds)) = state;
            let stats = &*stats;
            let mut best: PartBest = vec![None; classes.len()];
            let bound_partial = |depth: usize, m: &Mapping| {
                if !stats.worth(depth) {
                    return true;
                }
                let bound = &pb.depths[depth].1;
                let go_on = match partial[depth].completion_count(m, &choices[0], bound) {
                    // Storage at the partial problem, MACs at the full one.
                    Ok(c) => {
                        class_energies(c, partial_prices, partial_bounds);
                        !all_beaten(partial_bounds)
                    }
                    Err(_) => false,
                };
                stats.record(depth, !go_on);
                go_on
            };
            let scanned = space.scan_part_bounded(p, deadline, bound_partial, |m, v| {
                let bounds = &mut bounds[v.keep];
                if v.first {
                    stats.leaf();
                }
                if v.first && v.orders == 1 {
                    // Evaluated at once (its bound would cost as much).
                    bounds.clear();
                    bounds.resize(classes.len(), Some(0.0));
                } else if v.first {
                    // Skip every loop order when no class is valid or can be improved.
                    let Ok(c) = ev.order_free_count(m, &choices[0]) else {
                        return false;
                    };
                    class_energies(c, prices, bounds);
                    if all_beaten(bounds) {
                        return false;
                    }
                } else if all_beaten(bounds) {
                    return true; // beaten since the first order: skip this one
                }
                let Ok(c) = ev.count(m, &choices[0]) else {
                    return false;
                };
                price_tensors(c, prices);
                for (k, (tuple, rep)) in classes.iter().enumerate() {
                    if bounds[k].is_none_or(|b| beaten(k, b))
                        || (0..nt).any(|t| !prices[t][tuple[t]].1)
                    {
                        continue;
                    }
                    let part = |t: usize| &prices[t][tuple[t]].0;
                    // Cheap pre-check (sum of per-tensor energies; equal to the mapping's
                    // storage energy up to rounding): skip what cannot beat or tie the best.
                    if let Some(b) = &best[k] {
                        let approx: f64 =
                            (0..nt).map(|t| part(t).energy()).sum::<f64>() + mac_energy[k];
                        if approx > b.0 * (1.0 + 1e-9) {
                            continue;
                        }
                    }
                    let Some(storage) = combine_storage(arch, c, part, &choices[*rep]) else {
                        continue;
                    };
                    let e = storage + mac_energy[k];
                    // Cycles only break energy ties.
                    if best[k].as_ref().is_some_and(|b| e > b.0) {
                        continue;
                    }
                    let cy = combined_cycles(arch, c, part);
                    if best[k].as_ref().is_none_or(|b| (e, cy) < (b.0, b.1)) {
                        best[k] = Some((e, cy, m.clone()));
                        incumbents[k].fetch_min(e.to_bits(), Relaxed);
                        crate::progress::incumbent(e);
                    }
                }
                true
            });
            if !scanned.complete {
                searched[p].store(false, Relaxed);
            }
            crate::progress::parts(done.fetch_add(1, Relaxed) + 1, space.num_parts());
            best
        })
        .reduce(|| vec![None; classes.len()], merge);
    // Per class, the least bound of the parts left unsearched at the deadline.
    let mut unsearched = vec![f64::INFINITY; classes.len()];
    let mut evs = pb.evaluators();
    let mut prices = new_prices();
    let mut energies = vec![];
    for p in (0..searched.len()).filter(|&p| !searched[p].load(Relaxed)) {
        space.part_partials(p, |depth, m| {
            let bound = &pb.depths[depth].1;
            if let Ok(c) = evs[depth].completion_count(m, &choices[0], bound) {
                class_energies(c, &mut prices, &mut energies);
                for (u, e) in unsearched.iter_mut().zip(&energies) {
                    *u = u.min(e.unwrap_or(f64::INFINITY));
                }
            }
        });
    }
    let mut out = vec![];
    for (i, o) in choices.iter().enumerate() {
        let k = class_of[i];
        let Some((_, _, m)) = &best[k] else {
            out.push(ChoiceBest {
                mapping: None,
                evaluation: None,
                bound: unsearched[k],
            });
            continue;
        };
        let ev = evaluate(problem, arch, m, o);
        if !ev.valid {
            return Err(format!(
                "internal error: a mapping priced valid for bit choice {i} is invalid: {:?}",
                ev.invalid
            ));
        }
        out.push(ChoiceBest {
            mapping: Some(m.clone()),
            bound: unsearched[k].min(ev.energy_pj),
            evaluation: Some(ev),
        });
    }
    Ok(out)
}

/// Timeloop's random-pruned search: samples mappings of `space` with a ChaCha8 generator
/// seeded by `seed`, counts only valid samples toward `max_samples`, and stops early after
/// `victory` valid samples in a row without improvement (or [`MAX_CONSECUTIVE_INVALID`]
/// invalid ones in a row). Deterministic for a seed.
pub fn random(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    seed: u64,
    max_samples: u64,
    victory: Option<u64>,
) -> SearchResult {
    random_until(space, opts, objective, seed, max_samples, victory, None)
}

/// [`random`] that also stops at `deadline` (stop [`StopReason::Deadline`]), looking at the
/// clock every 64 samples.
pub fn random_until(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    seed: u64,
    max_samples: u64,
    victory: Option<u64>,
    deadline: Option<Instant>,
) -> SearchResult {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ev = Evaluator::new(space.problem(), space.arch());
    let mut b = Best::new();
    let mut since_improvement = 0u64;
    let mut invalid_streak = 0u64;
    let mut samples = 0u64;
    let stop = loop {
        if space.is_empty() {
            break StopReason::Exhausted;
        }
        if b.valid >= max_samples {
            break StopReason::MaxSamples;
        }
        samples += 1;
        if samples.is_multiple_of(64) && deadline.is_some_and(|d| Instant::now() >= d) {
            break StopReason::Deadline;
        }
        let m = space.sample(&mut rng);
        let score = ev.score(&m, opts);
        let valid = score.is_some();
        let improved = b.offer(&m, score, objective);
        if !valid {
            invalid_streak += 1;
            if invalid_streak >= MAX_CONSECUTIVE_INVALID {
                break StopReason::InvalidStreak;
            }
            continue;
        }
        invalid_streak = 0;
        if improved {
            since_improvement = 0;
            crate::progress::incumbent(b.best.as_ref().map_or(f64::INFINITY, |(r, _)| r.0));
        } else {
            since_improvement += 1;
            if victory.is_some_and(|v| since_improvement >= v) {
                break StopReason::Victory;
            }
        }
    };
    b.into_result(space, opts, objective, stop, None)
}
