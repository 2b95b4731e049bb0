//! The checks a certificate passes before it is reported: `optimal` and `time_limit` answers
//! are probed with random valid mappings of the same mapspace, none of which may cost less
//! than the certified bound, and `infeasible` needs a reason that was checked. A failed check
//! is an internal error (a bug in qmap), never a result.
//!
//! The engines' own cross-checks come first: the MILP fails when its bound exceeds the
//! evaluator's value of a mapping it found ([`crate::milp`]), and [`crate::optimum::prove_best`]
//! when a mapping the enumeration saw costs less than the MILP's bound. The probe here is
//! independent of both: it shares only the mapspace and the evaluator with them. It is cheap
//! (at most [`PROBE_SAMPLES`] valid mappings, and [`PROBE_SHARE`] of the solve's time) and it
//! catches gross errors of a bound (the false certificates this module was written after were
//! 11× above a valid mapping), not slight ones; the oracle tests catch those.

use crate::eval::Evaluator;
use crate::mapspace::Mapspace;
use crate::model::ModelOptions;
use crate::spec::Objective;
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use serde::Serialize;
use std::time::{Duration, Instant};

/// Most valid random mappings one probe evaluates.
pub const PROBE_SAMPLES: u64 = 300;

/// Share of the solve's wall time a probe may take (it takes at least [`PROBE_MIN_SECONDS`]).
pub const PROBE_SHARE: f64 = 0.03;

/// A probe may always take this long (seconds), however fast the solve was.
pub const PROBE_MIN_SECONDS: f64 = 0.005;

/// Random samples (valid or not) a probe draws at most: spaces where almost nothing is valid
/// are not sampled forever.
const PROBE_DRAWS: u64 = 20_000;

/// How much a probed mapping may undercut a bound before it counts as a contradiction:
/// bounds are discounted by the solvers' own tolerances (1e-6 of the objective at most).
const PROBE_TOLERANCE: f64 = 1e-6;

/// What a passed probe did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SelfCheck {
    /// Random mappings drawn, and how many of them were valid.
    pub samples: u64,
    pub valid: u64,
    pub seconds: f64,
}

/// The message of an internal error: what went wrong, and that it is qmap's fault.
pub fn internal_error(what: &str) -> String {
    format!(
        "internal error: {what}. This is a bug in qmap, not in your input: please report it \
         with the instance and the command line"
    )
}

/// The time a probe after a solve of `solve_seconds` may take.
pub fn probe_budget(solve_seconds: f64) -> Duration {
    Duration::from_secs_f64((solve_seconds * PROBE_SHARE).max(PROBE_MIN_SECONDS))
}

/// Draws random mappings of `space` (Timeloop-style sampling, a fixed seed) for at most
/// `budget` and [`PROBE_SAMPLES`] valid ones, evaluating each at the bit choices in turn; fails
/// (an internal error) when a valid one's `objective` value is below the bound certified for
/// its choice (`bounds[i]` for `choices[i]`). Under a latency budget only mappings within it
/// are checked (the bound is of those).
pub fn probe(
    space: &Mapspace,
    choices: &[ModelOptions],
    bounds: &[f64],
    objective: Objective,
    budget: Duration,
) -> Result<SelfCheck, String> {
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5e1f_c4ec);
    let mut ev = Evaluator::new(space.problem(), space.arch());
    let mut check = SelfCheck::default();
    let drawable = !choices.is_empty() && !space.is_empty();
    while drawable && check.valid < PROBE_SAMPLES && check.samples < PROBE_DRAWS {
        if check.samples % 16 == 0 && start.elapsed() >= budget {
            break;
        }
        let i = (check.samples % choices.len() as u64) as usize;
        check.samples += 1;
        let m = space.sample(&mut rng);
        let Some((energy, cycles)) = ev.score(&m, &choices[i]) else {
            continue;
        };
        if !space.within_budget(cycles) {
            continue; // over the latency budget: no bound covers it
        }
        check.valid += 1;
        let value = crate::search::score_value(energy, cycles, objective);
        if value < bounds[i] * (1.0 - PROBE_TOLERANCE) {
            return Err(internal_error(&format!(
                "self-check failed: a random valid mapping of the mapspace has {} {value}, \
                 below the certified bound {}:\n{}",
                objective_word(objective),
                bounds[i],
                crate::report::loop_nest(&m, space.arch(), space.problem())
            )));
        }
    }
    check.seconds = start.elapsed().as_secs_f64();
    Ok(check)
}

fn objective_word(objective: Objective) -> &'static str {
    match objective {
        Objective::Energy => "energy (pJ)",
        Objective::Latency => "cycles",
        Objective::Edp => "EDP (pJ·cycles)",
    }
}
