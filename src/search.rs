//! Baseline mappers over a [`Mapspace`] and the evaluator: exhaustive enumeration (the test
//! oracle for small layers) and Timeloop's random-pruned search.
//!
//! Both rank valid mappings by the objective (energy, cycles or EDP) and break ties by lower
//! energy, then lower cycles, then the first found (in enumeration order for the exhaustive
//! search, whatever the number of threads; in sampling order for random search).

use crate::eval::{evaluate, Evaluation};
use crate::mapspace::Mapspace;
use crate::model::{Mapping, ModelOptions};
use crate::spec::Objective;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use rayon::prelude::*;

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
    /// Mappings evaluated (valid or not).
    pub evaluated: u64,
    /// Valid mappings among them.
    pub valid: u64,
    pub stop: StopReason,
}

/// The objective value of an evaluation: energy (pJ), cycles or energy × cycles.
pub fn objective_value(e: &Evaluation, objective: Objective) -> f64 {
    match objective {
        Objective::Energy => e.energy_pj,
        Objective::Latency => e.cycles as f64,
        Objective::Edp => e.edp(),
    }
}

/// Whether valid evaluation `a` is strictly better than `b`: objective, then energy, then
/// cycles.
fn better(a: &Evaluation, b: &Evaluation, objective: Objective) -> bool {
    let ka = (objective_value(a, objective), a.energy_pj, a.cycles as f64);
    let kb = (objective_value(b, objective), b.energy_pj, b.cycles as f64);
    ka.partial_cmp(&kb) == Some(std::cmp::Ordering::Less)
}

/// The best of one part of a search.
struct Best {
    best: Option<(Mapping, Evaluation)>,
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
    /// Records an evaluation; returns whether it is the new best.
    fn offer(&mut self, m: &Mapping, e: Evaluation, objective: Objective) -> bool {
        self.evaluated += 1;
        if !e.valid {
            return false;
        }
        self.valid += 1;
        let improves = match &self.best {
            None => true,
            Some((_, b)) => better(&e, b, objective),
        };
        if improves {
            self.best = Some((m.clone(), e));
        }
        improves
    }
    fn into_result(self, objective: Objective, stop: StopReason) -> SearchResult {
        let (best, evaluation) = match self.best {
            Some((m, e)) => (Some(m), Some(e)),
            None => (None, None),
        };
        SearchResult {
            objective,
            value: evaluation
                .as_ref()
                .map_or(f64::INFINITY, |e| objective_value(e, objective)),
            best,
            evaluation,
            evaluated: self.evaluated,
            valid: self.valid,
            stop,
        }
    }
}

/// Evaluates every mapping of `space` (in parallel over its parts) and returns the best.
/// Refuses, naming the size, when the space has more than `limit` mappings (None = no limit).
pub fn exhaustive(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    limit: Option<u128>,
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
    let (problem, arch) = (space.problem(), space.arch());
    let parts: Vec<Best> = (0..space.num_parts())
        .into_par_iter()
        .map(|p| {
            let mut b = Best::new();
            space.for_each_part(p, |m| {
                let e = evaluate(problem, arch, m, opts);
                b.offer(m, e, objective);
            });
            b
        })
        .collect();
    // Merge in part order, so ties go to the first mapping in enumeration order.
    let mut total = Best::new();
    for p in parts {
        total.evaluated += p.evaluated;
        total.valid += p.valid;
        if let Some((m, e)) = p.best {
            let improves = match &total.best {
                None => true,
                Some((_, b)) => better(&e, b, objective),
            };
            if improves {
                total.best = Some((m, e));
            }
        }
    }
    Ok(total.into_result(objective, StopReason::Exhausted))
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
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (problem, arch) = (space.problem(), space.arch());
    let mut b = Best::new();
    let mut since_improvement = 0u64;
    let mut invalid_streak = 0u64;
    let stop = loop {
        if b.valid >= max_samples {
            break StopReason::MaxSamples;
        }
        let m = space.sample(&mut rng);
        let e = evaluate(problem, arch, &m, opts);
        let valid = e.valid;
        let improved = b.offer(&m, e, objective);
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
        } else {
            since_improvement += 1;
            if victory.is_some_and(|v| since_improvement >= v) {
                break StopReason::Victory;
            }
        }
    };
    b.into_result(objective, stop)
}
