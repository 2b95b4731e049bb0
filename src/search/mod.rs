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
//! factorisation and keep pattern
//! ([`Evaluator::order_free_count`](crate::eval::Evaluator::order_free_count)) and the
//! factorisations that share the choices of their first dims
//! ([`Mapspace::scan_part_bounded`]); what a bound puts strictly above the best mapping found
//! so far is skipped, so the answer is the oracle's, ties included.

mod bounded;
mod choices;
mod exhaustive;
mod random;

pub use bounded::{choice_bounds, partial_bound};
pub use choices::exhaustive_choices;
pub use exhaustive::{enumerate, exhaustive, exhaustive_until};
pub use random::{random, random_until, Sampling};

use crate::eval::{evaluate, Evaluation};
use crate::mapspace::Mapspace;
use crate::model::{Mapping, ModelOptions};
use crate::spec::Objective;

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
    /// The latency budget ([`Mapspace::max_cycles`]): valid mappings above it are counted but
    /// never the best.
    cap: Option<u64>,
}

impl Best {
    fn new(cap: Option<u64>) -> Best {
        Best {
            best: None,
            evaluated: 0,
            valid: 0,
            cap,
        }
    }
    /// Records a mapping's score (None = invalid); returns whether it is the new best.
    fn offer(&mut self, m: &Mapping, score: Option<(f64, u64)>, objective: Objective) -> bool {
        self.evaluated += 1;
        let Some((energy, cycles)) = score else {
            return false;
        };
        self.valid += 1;
        if self.cap.is_some_and(|cap| cycles > cap) {
            return false;
        }
        let r = rank(energy, cycles, objective);
        let improves = self.improved_by(&r);
        if improves {
            self.best = Some((r, m.clone()));
        }
        improves
    }
    /// Whether rank `r` is strictly better than the best so far (or there is none).
    fn improved_by(&self, r: &Rank) -> bool {
        match &self.best {
            None => true,
            Some((b, _)) => better(r, b),
        }
    }
    /// Adds part `p`'s tallies, and takes its best where strictly better (merged in part
    /// order, ties go to the earlier part).
    fn merge(&mut self, p: Best) {
        self.evaluated += p.evaluated;
        self.valid += p.valid;
        if let Some((r, m)) = p.best {
            if self.improved_by(&r) {
                self.best = Some((r, m));
            }
        }
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
