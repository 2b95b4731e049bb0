//! Timeloop's random-pruned search.

use super::{Best, SearchResult, StopReason, MAX_CONSECUTIVE_INVALID};
use crate::eval::Evaluator;
use crate::mapspace::Mapspace;
use crate::model::ModelOptions;
use crate::spec::Objective;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use std::time::Instant;

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
    let sampling = Sampling {
        seed,
        max_samples,
        victory,
        deadline: None,
    };
    random_until(space, opts, objective, &sampling)
}

/// How [`random_until`] samples: the seed, the valid samples it takes at most, the run of
/// valid samples without improvement it stops after, and a deadline.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub seed: u64,
    pub max_samples: u64,
    pub victory: Option<u64>,
    pub deadline: Option<Instant>,
}

/// [`random`] that also stops at the deadline (stop [`StopReason::Deadline`]), looking at the
/// clock every 64 samples.
pub fn random_until(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    sampling: &Sampling,
) -> SearchResult {
    let &Sampling {
        seed,
        max_samples,
        victory,
        deadline,
    } = sampling;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ev = Evaluator::new(space.problem(), space.arch());
    let mut b = Best::new(space.max_cycles());
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
