//! The exact per-layer mapper: a MILP over tiling, loop order and bypass whose optimum, refined
//! candidate by candidate against the evaluator, is proved optimal over the whole mapspace.
//!
//! # Method (DESIGN §3, "linearised per candidate")
//!
//! For a fixed keep/bypass pattern and fixed bit-widths, every energy term of the evaluator is a
//! product of loop factors, i.e. `coef · exp(a)` with `a` linear in the logs of the factors. The
//! MILP carries one epigraph column `w ≥ coef · exp(a)` per term and describes it by tangent
//! planes (valid underestimators everywhere, exact at the point of tangency). Each round solves
//! the MILP, turns its solution into a mapping, evaluates it exactly (the upper bound always
//! comes from the evaluator), adds tangents at that mapping and, when the MILP's value of the
//! mapping is still below the evaluator's (ceilings it drops, relaxed multicast counts) or the
//! mapping is invalid, a no-good cut on it. Every improving solution HiGHS finds on the way
//! (a callback collects them) is a mapping too: each is evaluated (a possible incumbent) and
//! gets its tangents, which cuts the rounds on Simba's layers about in half. It stops when the
//! evaluator's best value and the MILP's bound meet within the tolerance. HiGHS prunes nodes
//! within its feasibility tolerance (1e-6 in the MILP's objective units, where 1 is the
//! layer's MAC energy) of an incumbent, so every bound it reports is discounted by that much.
//!
//! Encoding:
//! * per dim, a one-hot over its allowed factor vectors ([`Mapspace::dim_choices`]): every
//!   per-dim quantity (slot factors, cumulative extents, non-unit flags) is linear in it;
//!   dims with no halo and many factorisations ([`sliced_dims`]: a channel dim has up to
//!   147,000 over Simba's slots) instead get a one-hot per slot group (a
//!   level's temporal slot, or its X and Y slots together) tied by the dim's exponent of every
//!   prime (DESIGN §3): exact, since the mapspace's per-dim rules are per slot group, with a
//!   weaker relaxation but a few hundred columns, and its slot factors, non-unit flags and log
//!   extents (sums of slot logs) are linear in the group one-hots;
//! * a square layer's mirror images (P↔Q with R↔S, where [`mirror_symmetry`] finds the
//!   problem and the mapspace's rules symmetric) cost the same: only the one whose P takes the
//!   earlier factorisation is kept (Simba conv1 and b2_pw prove in about 60 % of the time);
//! * halo ranks (`a·P + b·R`): a one-hot over pairs of cumulative extents per level, tied to the
//!   two dims' one-hots, gives the exact bounding-box extent;
//! * loop order: per level, a one-hot over the innermost non-unit dim. For problems where every
//!   dim is irrelevant to at most one tensor, the innermost dim fixes everything the evaluator
//!   needs (the leading run of irrelevant loops and the sliding-window loop), the rest of the
//!   order being canonical; partial permutation constraints are respected;
//! * the leading run of loops irrelevant to a tensor (temporal reuse) subtracts their logs,
//!   linearised with run/transparency indicators;
//! * the sliding window: a load mode per child (whole tiles, or sliding along a halo dim's loop
//!   at some level), each mode's terms switched off in log space (`a − M(1 − y)`). Timeloop's
//!   walk also carries the window across a wrap-around where an outer loop's move matches
//!   (`eval::timeloop_loads`): a loop is a possible member when its move, linear in its
//!   rank dims' one-hots, equals the inner moves' sum as the rule requires (`WindowCarry`;
//!   conditions no factorisation meets get no column), and each mode is bounded below over the
//!   orders of its class with the members' factors taken off its reloads. The class (innermost
//!   dim per level) no longer fixes the loads, so a candidate is the cheapest order of its
//!   class (`best_in_class`);
//! * Outputs' first-write elision subtracts the partition, exactly, through a one-hot over the
//!   product of the irrelevant spatial factors above the level;
//! * cluster energy (`min(instances, clusters)`) through a one-hot over the instances used;
//! * multicast: distinct child tiles per fanout, exact (for a halo rank whose two dims are both
//!   unrolled in one fanout, a one-hot over pairs of their spatial configurations counts the
//!   coinciding offsets);
//! * capacities: per tensor in log space, shared levels by tangent cuts of Σ exp ≤ capacity;
//! * the ceilings of packing and vector accesses: where the charged instance count is fixed, a
//!   count's epigraph is `unit · z` with `z` integer (one vector access on every instance), so
//!   the ceiling is exact wherever the tangents are; where it varies (over at most
//!   `CEILING_VALUES` values), the ceiling is first dropped (x ≤ ceil x, with a floor of one
//!   vector access per instance) and made exact once a candidate shows that it matters: per
//!   instance count `n` (a one-hot over the count's values) an integer per-instance count,
//!   switched off in log space unless the count is `n`. Otherwise tied mappings that differ only
//!   where the ceiling bites would each need a no-good cut. Tangents and lifting rows are
//!   shaved by `SHAVE` (relative), so floating-point error never adds a whole access (seen
//!   once: a bound one DRAM access above the enumerated optimum of Eyeriss MobileNetV1 pw5);
//!   mappings the MILP still undervalues are excluded by no-good cuts once evaluated;
//! * a count of two parts (a sliding-window load) is rounded as a sum by the evaluator: its
//!   ceiling is first dropped and made exact once a candidate shows that it matters: where the
//!   charged instance count is fixed, `Σ w_p + r = unit·z` (`z` integer, `r ≥ 0` in the
//!   objective); where it varies (over at most `CEILING_VALUES` values), per instance count `n`
//!   an integer `z_n` at least the parts' per-instance counts, each switched off unless the
//!   count is `n`, and `Σ w_p + r ≥ Σ_n unit·n·z_n`;
//! * one-hot lifting: each term is also bounded below by the exact exp of one one-hot's
//!   contribution with everything else at its minimum, which is linear in that one-hot and
//!   keeps the LP bound up where tangents at a fractional mix of choices are weak;
//! * completion bounds: each bypass pattern starts from the bound the enumeration puts on all
//!   its mappings ([`crate::search::choice_bounds`]; a pattern whose bound reaches the
//!   incumbent is closed without a MILP solve), and for each dim encoded by a one-hot over its
//!   factorisations the objective is at least the bound of the mappings that take the chosen
//!   one (`obj ≥ Σ_j LB_j x_j`, a row per dim; factorisations no completion makes valid are
//!   excluded). The LP then starts at the least of those bounds instead of far below (a
//!   random case with 64 patterns: 3,589 → 6,379 against an optimum of 6,424), and fixing a
//!   dim in the branch and bound raises it to that factorisation's bound;
//! * each term's exponent is a column of its own, so tangents are two-nonzero rows; a large
//!   one-hot group's part of an exponent or of a lifting row is a column shared by every term
//!   with the same coefficient profile, which keeps those rows sparse; HiGHS runs with presolve
//!   (minus probing, which costs seconds on dims with a thousand factorisations).
//!
//! Status: sound and complete on the tests' 300 random small layers (each proved at the
//! exhaustive optimum; the slowest, with 64 bypass patterns or 150,000 mappings, in about 30-60
//! s);
//! slow to close the gap on Simba's larger layers (2-8 s), where branch and bound, not the
//! candidate loop, takes the time: the root LP is 20-40 % below the optimum (Simba b2_pw; the LP
//! mixes two mappings at fractions, and in log space such a mix undervalues every term that
//! differs between them, and the one-dim completion bounds are at 62 % of it there), closed
//! over hundreds to thousands of nodes.
//! Under a time limit a short random search seeds the incumbent (`SEED_SAMPLES`, in at most
//! `SEED_SHARE` of the limit): on open mapspaces the first solves may not finish in time.
//! Energy objective only.
//! Under a latency budget ([`Mapspace::max_cycles`](crate::mapspace::Mapspace::max_cycles)) one
//! row caps the compute cycles (the product of the temporal factors, linear in the logs), which
//! is exact where no level's bandwidth stretches the cycles and a relaxation where it does;
//! every candidate is evaluated against the cap and one over it is cut like an invalid one (a
//! class whose loop orders were not all evaluated lowers the pattern's floor instead, since
//! another order may meet the cap), so the bound is of the constrained optimum.
//! Bypass patterns and bit-width choices are enumerated outside the MILP; the bound is the
//! smallest bound over them. With a second core, two bypass patterns are refined at once, and
//! a pattern whose solves have become slow is halved along its largest factorisation one-hot
//! (each half keeps the cuts so far) so that both cores work on it.
//!
//! [`Mapspace::dim_choices`]: crate::mapspace::Mapspace::dim_choices

// Model building indexes several parallel per-level / per-dim tables at once, and the one-hot
// helpers take boxed per-choice functions: these two lints would only obscure that.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

mod ceilings;
mod choices;
mod decode;
mod diagnose;
mod encode;
mod lin;
mod model;
mod onehot;
mod rounds;
mod run;
mod solve;
#[cfg(test)]
mod tests;

pub use crate::proof::{Certificate, ProofKind, Status};
pub(crate) use choices::solve_choices;
pub use choices::solve_each;
pub use diagnose::diagnose;
pub use encode::sliced_dims;
pub use encode::symmetry::mirror_symmetry;
pub use solve::{relative_gap, solve};

/// Solver settings.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// Wall-clock limit in seconds.
    pub time_limit: Option<f64>,
    /// Relative gap at which a solution is declared optimal.
    pub gap: f64,
    /// Upper limit on candidate rounds per bypass pattern.
    pub max_rounds: usize,
    /// Dims with more factorisations than this (for a dim some tensor is irrelevant to, and for
    /// one every tensor is relevant to) are encoded per slot group, tied by their exponents of
    /// every prime, where they can be (no halo: [`sliced_dims`]); the others by a one-hot over
    /// their factorisations.
    pub slice_choices: (usize, usize),
    /// Two-core refinement: unless the solve runs inside rayon's pool (a network's layers
    /// already share it), two open bypass patterns are refined at once, and once a MILP solve
    /// of the only open one took this long (seconds), its mapspace is halved along its largest
    /// factorisation one-hot ([`MAX_SPLITS`] times at most) and the halves refined at once.
    /// None: one pattern at a time, never halved (the default where rayon has one thread).
    pub split_after: Option<f64>,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            time_limit: None,
            gap: 1e-6,
            max_rounds: 10_000,
            slice_choices: SLICE_CHOICES,
            split_after: (rayon::current_num_threads() > 1).then_some(SPLIT_AFTER),
        }
    }
}

/// Default of [`SolveOptions::slice_choices`] ([`sliced_dims`]). A one-hot over thousands of
/// factorisations (a channel dim over Simba's eight slots: up to 147,000) makes a model HiGHS
/// cannot solve in time. Measured on the MobileNet layers: a dim some tensor is irrelevant to
/// (M, C) solves faster sliced from a few hundred factorisations on (Eyeriss MobileNetV1 pw2,
/// M with 260: 6.8 s whole, 0.6 s sliced); a depthwise layer's G, which every tensor is
/// relevant to, solves about twice as fast whole up to about 3,000 (Eyeriss dw1 and dw2, 776
/// and 1,644) and faster sliced from about 5,000 on.
pub const SLICE_CHOICES: (usize, usize) = (100, 1_000);

/// Default of [`SolveOptions::split_after`] (seconds). Measured on 13 MobileNet layers × 3
/// HiGHS seeds (2 cores): halving from the first solve on made Eyeriss layers slower (their
/// solves take 0.05–0.3 s, and a half is not always easier than the whole); from 0.3 s on,
/// Eyeriss is unchanged and Simba's slowest layers gain up to 2× (mean over the seeds: b1_pw
/// 14.3 → 6.8 s, b4_dw 21.4 → 15.5 s, conv1 8.9 → 6.7 s; b2_pw about unchanged, 8.7 → 8.5 s).
pub const SPLIT_AFTER: f64 = 0.3;

/// Most halvings of one solve's mapspace.
pub const MAX_SPLITS: usize = 8;

/// One-hot groups with more choices than this get shared columns for their parts of terms.
const SHARED_GROUP: usize = 8;

/// Largest number of charged instance counts a level's ceilings are made exact over
/// ([`Whole::PerInstance`]); above it they are dropped.
const CEILING_VALUES: usize = 24;

/// Tangents and lifting rows are shaved by this relative amount: they are exact only up to
/// floating-point error, and a whole-access (integer) column must not turn an error above a
/// whole number into one more access (an overestimate, i.e. an invalid bound).
const SHAVE: f64 = 1e-9;

/// The least energy of one vector access (in the objective's units, where the layer's MAC
/// energy is 1) whose ceilings are made exact. `w = unit·z` (`z` integer) ties a count to whole
/// accesses only where HiGHS holds it: it meets rows to within its primal feasibility tolerance
/// (1e-7) and drops matrix entries below 1e-9, which turned `w = unit·z` into `w = 0` and
/// excluded valid mappings (C = M = 4096, P = Q = 112 on Simba: units down to 2e-12, a false
/// `optimal` 11× above a valid mapping). Below it the ceiling is dropped, which is still a
/// valid underestimate: at most one such access per charged instance and term.
const MIN_UNIT: f64 = 1e-7;

const OFF: f64 = 60.0; // log-space switch-off of a gated term: e^-60 ≈ 1e-26
