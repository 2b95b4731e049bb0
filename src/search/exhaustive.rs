//! The enumerations of one objective: the exhaustive oracle and the bounded enumeration that
//! proves the same optimum with fewer evaluations, both over the parts of a [`Mapspace`] in
//! parallel.

use super::bounded::{BoundStats, PartialBounds};
use super::{score_value, Best, SearchResult, StopReason};
use crate::eval::Evaluator;
use crate::mapspace::{Mapspace, Visit};
use crate::model::{Mapping, ModelOptions};
use crate::spec::Objective;
use rayon::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Instant;

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
    check_limit(space, limit, "; add constraints or force the search")?;
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
/// `bound` is the value. Under a latency budget ([`Mapspace::max_cycles`]) the optimum is over
/// the mappings within it, and a bound whose cycles exceed it rules its mappings out.
pub fn enumerate(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    deadline: Option<Instant>,
) -> SearchResult {
    scan(space, opts, objective, true, deadline)
}

/// Refuses, naming its size, a space of more than `limit` mappings (None = no limit);
/// `advice` ends the message.
pub(super) fn check_limit(
    space: &Mapspace,
    limit: Option<u128>,
    advice: &str,
) -> Result<(), String> {
    if let Some(limit) = limit {
        if space.size() > limit {
            return Err(format!(
                "the mapspace has {} mappings (~{:.3e}), more than the limit {limit}{advice}",
                space.size(),
                space.size_f64()
            ));
        }
    }
    Ok(())
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
    let s = Scan {
        space,
        opts,
        objective,
        deadline,
        pb: prune.then(|| PartialBounds::new(space)),
        incumbent: AtomicU64::new(f64::INFINITY.to_bits()),
        done: AtomicUsize::new(0),
    };
    // Per part, the best found and whether the part was searched whole (a part not started,
    // or stopped by the deadline, is bounded below instead).
    let parts: Vec<(Best, bool)> = (0..space.num_parts())
        .into_par_iter()
        .map_init(|| s.job(), |job, p| s.part(job, p))
        .collect();
    let unsearched = s.unsearched(&parts);
    let stop = if parts.iter().all(|p| p.1) {
        StopReason::Exhausted
    } else {
        StopReason::Deadline
    };
    // Merge in part order, so ties go to the first mapping in enumeration order.
    let mut total = Best::new(space.max_cycles());
    for (p, _) in parts {
        total.merge(p);
    }
    total.into_result(space, opts, objective, stop, Some(unsearched))
}

/// One [`scan`]: what it searches and ranks by, and what its parts share.
struct Scan<'a> {
    space: &'a Mapspace,
    opts: &'a ModelOptions,
    objective: Objective,
    deadline: Option<Instant>,
    /// The bounds of the bounded enumeration (None: the oracle, which bounds nothing).
    pb: Option<PartialBounds<'a>>,
    /// The best objective value found in any part (bits of a non-negative f64, which order
    /// like the values). What a bound puts strictly above it cannot be, or tie, the optimum.
    incumbent: AtomicU64,
    /// Parts done, for the progress line.
    done: AtomicUsize,
}

/// Evaluators, bound statistics and scratch of one rayon job, reused over its parts.
struct ScanJob<'e> {
    ev: Evaluator<'e>,
    /// Per depth, an evaluator of its partial problem.
    partial: Vec<Evaluator<'e>>,
    stats: BoundStats,
    /// Per keep pattern, the bound of the current factorisation with it.
    bounds: Vec<f64>,
}

impl Scan<'_> {
    fn job(&self) -> ScanJob<'_> {
        ScanJob {
            ev: Evaluator::new(self.space.problem(), self.space.arch()),
            partial: self
                .pb
                .as_ref()
                .map_or_else(Vec::new, PartialBounds::evaluators),
            stats: BoundStats::new(self.space),
            bounds: vec![0.0; 1 << self.space.free_keeps().len()],
        }
    }

    /// Whether a bound of `v` rules its mappings out.
    fn beaten(&self, v: f64) -> bool {
        self.pb.is_some() && v > f64::from_bits(self.incumbent.load(Relaxed)) * (1.0 + 1e-9)
    }

    /// The objective value of a bound of `energy` and `cycles`: infinity when the cycles
    /// (a lower bound) are over the latency budget, where no mapping it bounds fits.
    fn bound_value(&self, energy: f64, cycles: u64) -> f64 {
        match self.space.within_budget(cycles) {
            true => score_value(energy, cycles, self.objective),
            false => f64::INFINITY,
        }
    }

    /// Whether a bound of `energy` and `cycles` rules its mappings out: beaten, or over the
    /// latency budget.
    fn beaten_or_over(&self, energy: f64, cycles: u64) -> bool {
        !self.space.within_budget(cycles) || self.beaten(self.bound_value(energy, cycles))
    }

    /// Searches part `p`: its best and whether it was searched whole.
    fn part(&self, job: &mut ScanJob<'_>, p: usize) -> (Best, bool) {
        let mut b = Best::new(self.space.max_cycles());
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return (b, false);
        }
        let ScanJob {
            ev,
            partial,
            stats,
            bounds,
        } = job;
        let stats = &*stats;
        let visit = |m: &Mapping, v: Visit| self.visit(ev, stats, bounds, &mut b, m, v);
        let complete = match &self.pb {
            Some(pb) => {
                let bound_partial = |depth: usize, m: &Mapping| {
                    if !stats.worth(depth) {
                        return true;
                    }
                    let go_on = pb
                        .score(&mut partial[depth], depth, m, self.opts)
                        .is_some_and(|(e, cy)| !self.beaten_or_over(e, cy));
                    stats.record(depth, !go_on);
                    go_on
                };
                (self.space)
                    .scan_part_bounded(p, self.deadline, bound_partial, visit)
                    .complete
            }
            None => {
                let scanned = self.space.scan_part_until(p, self.deadline, visit);
                b.evaluated += scanned.skipped;
                scanned.complete
            }
        };
        let done = self.done.fetch_add(1, Relaxed) + 1;
        crate::progress::parts(done, self.space.num_parts());
        (b, complete)
    }

    /// Scores mapping `m` into `b`; false when it is invalid or (bounded enumeration) the
    /// bound of its factorisation and keep pattern over every loop order rules them out: its
    /// other loop orders are skipped.
    fn visit(
        &self,
        ev: &mut Evaluator,
        stats: &BoundStats,
        bounds: &mut [f64],
        b: &mut Best,
        m: &Mapping,
        v: Visit,
    ) -> bool {
        if self.pb.is_some() {
            if v.first {
                stats.leaf();
            }
            // A factorisation with one loop order is evaluated at once (its bound would cost
            // as much).
            if v.first && v.orders > 1 {
                let Some((e, cy)) = ev.order_free_score(m, self.opts) else {
                    return false;
                };
                bounds[v.keep] = self.bound_value(e, cy);
                if self.beaten_or_over(e, cy) {
                    return false;
                }
            } else if !v.first && self.beaten(bounds[v.keep]) {
                return true;
            }
        }
        let score = ev.score(m, self.opts);
        if b.offer(m, score, self.objective) {
            let v = b.best.as_ref().map_or(f64::INFINITY, |(r, _)| r.0);
            self.incumbent.fetch_min(v.to_bits(), Relaxed);
            crate::progress::incumbent(v);
        }
        score.is_some()
    }

    /// The least bound of the parts not searched whole (the oracle bounds nothing: minus
    /// infinity when there are any).
    fn unsearched(&self, parts: &[(Best, bool)]) -> f64 {
        let left = (0..parts.len()).filter(|&p| !parts[p].1);
        match &self.pb {
            Some(pb) => {
                pb.parts_bound(self.space, left, self.opts, |e, cy| self.bound_value(e, cy))
            }
            None if left.count() > 0 => f64::NEG_INFINITY,
            None => f64::INFINITY,
        }
    }
}
