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
//! Bypass patterns and bit-width choices are enumerated outside the MILP; the bound is the
//! smallest bound over them. With a second core, two bypass patterns are refined at once, and
//! a pattern whose solves have become slow is halved along its largest factorisation one-hot
//! (each half keeps the cuts so far) so that both cores work on it.

// Model building indexes several parallel per-level / per-dim tables at once, and the one-hot
// helpers take boxed per-choice functions: these two lints would only obscure that.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

use crate::eval::{evaluate, operands_per_word, Evaluation};
use crate::mapspace::{prime_factors, KeepChoice, LoopKind, Mapspace, SlotKind};
use crate::model::{LevelMapping, Loop, Mapping, ModelOptions, PsumPolicy};
use crate::spec::{Objective, PackingMode};
use highs::{HighsModelStatus, RowProblem, Sense};
use itertools::Itertools;
use std::collections::HashMap;
use std::time::{Duration, Instant};

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

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Optimal,
    TimeLimit,
    Infeasible,
    /// No mapping was found, and the reason none fits could not be checked.
    Unknown,
}

/// The answer with its proof: the evaluator's value of the mapping and the MILP's bound.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub status: Status,
    pub mapping: Option<Mapping>,
    pub evaluation: Option<Evaluation>,
    /// The evaluator's objective value of `mapping` (upper bound); infinite when none.
    pub value: f64,
    /// Proven lower bound over the whole mapspace.
    pub bound: f64,
    /// (value − bound) / value.
    pub gap: f64,
    pub rounds: usize,
    pub milp_solves: usize,
    /// Halvings of the mapspace ([`SolveOptions::split_after`]).
    pub splits: usize,
    pub seconds: f64,
    /// Why nothing fits, when infeasible (checked); why it is not known, when unknown.
    pub reason: Option<String>,
    /// The independent probe the answer passed ([`crate::certify::probe`]), once run.
    pub check: Option<crate::certify::SelfCheck>,
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

/// The least coefficient a row may carry: HiGHS treats entries at or below 1e-9 as zero, so a
/// tangent with a smaller slope would not be the row it claims to be. Such tangents are left
/// out (a tangent is only ever a cut); other rows have such entries moved into their bounds
/// ([`relax_tiny`]), which relaxes them.
const MIN_COEF: f64 = 1e-8;

const OFF: f64 = 60.0; // log-space switch-off of a gated term: e^-60 ≈ 1e-26

/// A linear expression over MILP columns plus a constant.
#[derive(Debug, Clone, Default)]
struct Lin {
    c: f64,
    t: Vec<(usize, f64)>,
}

impl Lin {
    fn konst(c: f64) -> Lin {
        Lin { c, t: vec![] }
    }
    fn add(&mut self, o: &Lin, k: f64) {
        self.c += k * o.c;
        self.t.extend(o.t.iter().map(|&(i, v)| (i, v * k)));
    }
    fn plus(mut self, o: &Lin) -> Lin {
        self.add(o, 1.0);
        self
    }
    fn minus(mut self, o: &Lin) -> Lin {
        self.add(o, -1.0);
        self
    }
    fn var(i: usize, k: f64) -> Lin {
        Lin {
            c: 0.0,
            t: vec![(i, k)],
        }
    }
    fn value(&self, x: &[f64]) -> f64 {
        self.c + self.t.iter().map(|&(i, v)| v * x[i]).sum::<f64>()
    }
    /// `self − OFF·(1 − y)`: the exponent switched off (e^-60) unless binary `y` is 1.
    fn switched(mut self, y: usize) -> Lin {
        self.c -= OFF;
        self.t.push((y, OFF));
        self
    }
    /// The terms with each column's coefficients summed, zeros dropped, sorted by column (so
    /// that rows, shared columns and sums come out the same on every run).
    fn merged(&self) -> Vec<(usize, f64)> {
        let mut sum: HashMap<usize, f64> = HashMap::new();
        for &(i, v) in &self.t {
            *sum.entry(i).or_default() += v;
        }
        let mut t: Vec<(usize, f64)> = sum.into_iter().filter(|(_, v)| *v != 0.0).collect();
        t.sort_unstable_by_key(|x| x.0);
        t
    }
}

/// `w ≥ coef · exp(a)`.
#[derive(Debug, Clone)]
struct ExpTerm {
    coef: f64,
    a: Lin,
    w: usize,
    /// A column equal to `a`, so that each tangent is a two-nonzero row.
    e: usize,
    /// The (level, tensor) whose energy the term is part of (for diagnostics).
    at: (usize, usize),
}

/// A count of two or more parts (a sliding-window load): the parts' epigraph columns and the
/// energy of one vector access on every charged instance (`per_instance` None: the count is
/// fixed) or on one (`per_instance`: the log of the varying count and its level). Once active,
/// the sum, not each part, is rounded up to whole vector accesses per instance, as the
/// evaluator does: `Σ w_p + r = unit · z` with `z` integer and `r ≥ 0` (in the objective) for a
/// fixed count; per instance count `n`, an integer `z_n ≥ Σ_p u_{p,n}` with `u_{p,n}` part p's
/// per-instance vectors switched off unless the count is `n`, and `Σ w_p + r ≥ Σ_n unit·n·z_n`,
/// for a varying one.
#[derive(Debug, Clone)]
struct MultiCount {
    ws: Vec<usize>,
    unit: f64,
    per_instance: Option<(Lin, usize)>,
    /// The rounding column `r`, once active.
    r: Option<usize>,
    /// The varying count takes more than `CEILING_VALUES` values: the ceiling stays dropped.
    dropped: bool,
}

impl MultiCount {
    /// An inactive count (its ceiling dropped until [`Model::activate_multi`]).
    fn new(ws: Vec<usize>, unit: f64, per_instance: Option<(Lin, usize)>) -> MultiCount {
        MultiCount {
            ws,
            unit,
            per_instance,
            r: None,
            dropped: false,
        }
    }
}

/// A term whose per-instance vector count is `exp(per_instance)·per_vector`, charged `unit`
/// per vector access on each of the instances `level`'s count says.
#[derive(Debug, Clone)]
struct Deferred {
    w: usize,
    per_vector: f64,
    unit: f64,
    per_instance: Lin,
    /// The log of the charged instance count.
    charged: Lin,
    level: usize,
    active: bool,
    at: (usize, usize),
}

/// How a term's count comes back in whole vector accesses per charged instance
/// ([`Model::term_with_floor`]).
enum Whole<'a> {
    /// Not at all (the ceilings are dropped).
    Dropped,
    /// The charged instance count is fixed: the energy of one vector access on all of them.
    Fixed(f64),
    /// The charged instance count varies: its log and the level it is of (whose one-hot over
    /// the count's values the model builds on first use).
    PerInstance { charged: &'a Lin, level: usize },
}

/// The MILP of one bypass pattern: columns, fixed rows, terms; cuts accumulate across rounds.
#[derive(Default, Clone)]
struct Model {
    col_lo: Vec<f64>,
    col_hi: Vec<f64>,
    col_int: Vec<bool>,
    col_cost: Vec<f64>,
    rows: Vec<(f64, f64, Vec<(usize, f64)>)>,
    terms: Vec<ExpTerm>,
    /// Capacity constraints of shared levels: Σ_j coef_j exp(a_j) ≤ cap, via epigraph columns.
    cap_terms: Vec<ExpTerm>,
    /// Lower bounds of one vector access per instance on terms' epigraph columns.
    floors: Vec<ExpTerm>,
    /// Per-instance vector counts of terms whose charged instance count varies: `w` is an
    /// integer column `z_n ≥ coef·exp(a)`, `a` switched off unless the instance count is `n`.
    ceilings: Vec<ExpTerm>,
    /// Per term epigraph column: its ceilings (indices into `ceilings`) with the energy of one
    /// of their accesses (`w ≥ Σ_n unit_n · z_n`).
    ceiling_units: HashMap<usize, Vec<(usize, f64)>>,
    /// Terms whose ceilings can be made exact per charged instance count, made so
    /// ([`Model::activate`]) once a candidate shows that their ceiling matters.
    deferred: Vec<Deferred>,
    /// Multi-part counts whose ceiling is first dropped, made exact once a candidate shows
    /// that it matters ([`Model::activate_multi`]).
    multi: Vec<MultiCount>,
    /// Per level whose charged instance count varies: the per-dim parts of the count (each
    /// dim's choice columns and spatial products) and the most instances the fanouts above the
    /// level allow, until its one-hot is built ...
    instance_parts: HashMap<usize, (Vec<Vec<(Option<usize>, u64)>>, u64)>,
    /// ... and then the one-hot's columns with their counts (empty: more than
    /// `CEILING_VALUES` counts).
    instance_values: HashMap<usize, Vec<(usize, f64)>>,
    cost_const: f64,
    /// Binary columns whose values identify a mapping (for no-good cuts).
    identity: Vec<usize>,
    /// The (level, tensor) the terms being added belong to.
    at: (usize, usize),
    /// Epigraph columns counted in whole vector accesses: `w = unit · z`, `z` integer.
    units: HashMap<usize, f64>,
    /// One-hot groups (binary columns summing to exactly one) and each grouped column's group.
    groups: Vec<Vec<usize>>,
    group_of: HashMap<usize, usize>,
    /// Shared columns of one-hot groups' parts: (kind, group, coefficient profile) → column
    /// (kind 0: `Σ_j c_j x_j`, kind 1: `Σ_j e^{c_j} x_j`), so that the exponent and lifting
    /// rows of terms that share a dim's profile stay sparse.
    shared: HashMap<(u8, usize, Vec<u64>), usize>,
    /// Per dim encoded by a one-hot over its factorisations: each choice's column with the
    /// bound (objective units) on the mappings that take it; the objective is at least the
    /// bound of the choice taken (a row per dim, over the whole objective at solve time).
    objective_floors: Vec<Vec<(usize, f64)>>,
    /// Tangents already in the model: (epigraph column, exponent column, coefficient, point).
    tangents: std::collections::HashSet<(usize, usize, u64, i64)>,
}

impl Model {
    fn col(&mut self, lo: f64, hi: f64, int: bool, cost: f64) -> usize {
        self.col_lo.push(lo);
        self.col_hi.push(hi);
        self.col_int.push(int);
        self.col_cost.push(cost);
        self.col_lo.len() - 1
    }
    fn bin(&mut self) -> usize {
        self.col(0.0, 1.0, true, 0.0)
    }
    fn row(&mut self, lo: f64, hi: f64, l: &Lin) {
        self.rows.push((lo - l.c, hi - l.c, l.merged()));
    }
    /// `l ≤ hi`
    fn le(&mut self, l: &Lin, hi: f64) {
        self.row(f64::NEG_INFINITY, hi, l);
    }
    /// `l ≥ lo`
    fn ge(&mut self, l: &Lin, lo: f64) {
        self.row(lo, f64::INFINITY, l);
    }
    fn eq(&mut self, l: &Lin, v: f64) {
        self.row(v, v, l);
        let onehot = v == 1.0
            && l.c == 0.0
            && l.t.len() > 1
            && l.t.iter().all(|&(i, k)| {
                k == 1.0
                    && self.col_int[i]
                    && self.col_lo[i] == 0.0
                    && self.col_hi[i] == 1.0
                    && !self.group_of.contains_key(&i)
            });
        if onehot {
            let g = self.groups.len();
            let cols: Vec<usize> = l.t.iter().map(|x| x.0).collect();
            for &i in &cols {
                self.group_of.insert(i, g);
            }
            self.groups.push(cols);
        }
    }
    fn term(&mut self, coef: f64, a: Lin) -> Option<usize> {
        if coef <= 0.0 {
            return None;
        }
        let w = self.col(0.0, f64::INFINITY, false, 1.0);
        let e = self.exponent(&a);
        let at = self.at;
        self.terms.push(ExpTerm { coef, a, w, e, at });
        Some(w)
    }
    /// Makes the ceilings of deferred term `i` exact: per charged instance count `n` an integer
    /// `z_n ≥ exp(per_instance)·per_vector` switched off unless the count is `n`, and
    /// `w ≥ Σ_n unit · n · z_n`.
    fn activate(&mut self, i: usize) {
        self.deferred[i].active = true;
        let d = self.deferred[i].clone();
        let values = self.instance_onehot(d.level);
        if values.is_empty() {
            return; // too many instance counts: the ceiling stays dropped
        }
        let mut sum = Lin::var(d.w, 1.0);
        let mut units = vec![];
        for &(g, n) in &values {
            let z = self.col(0.0, f64::INFINITY, true, 0.0);
            units.push((self.ceilings.len(), d.unit * n));
            self.ceiling(z, d.per_vector, d.per_instance.clone().switched(g), d.at);
            sum.t.push((z, -d.unit * n));
        }
        self.ge(&sum, 0.0);
        self.ceiling_units.insert(d.w, units);
    }
    /// A per-instance-count ceiling term `w ≥ coef·exp(a)` (tangents only at candidates).
    fn ceiling(&mut self, w: usize, coef: f64, a: Lin, at: (usize, usize)) {
        let e = self.exponent(&a);
        self.ceilings.push(ExpTerm { coef, a, w, e, at });
    }
    /// The one-hot over the charged instance count of `level` (columns with their counts),
    /// built on first use; empty when the count takes more than `CEILING_VALUES` values.
    fn instance_onehot(&mut self, level: usize) -> Vec<(usize, f64)> {
        if !self.instance_values.contains_key(&level) {
            let (parts, most) = self
                .instance_parts
                .remove(&level)
                .unwrap_or((vec![], u64::MAX));
            let values = product_onehot(self, &parts, &|v| v as f64, CEILING_VALUES, most)
                .map(|one| one.t)
                .unwrap_or_default();
            self.instance_values.insert(level, values);
        }
        self.instance_values[&level].clone()
    }
    /// Makes the ceiling of multi-part count `i` exact ([`MultiCount`]).
    fn activate_multi(&mut self, i: usize) {
        let mc = self.multi[i].clone();
        let values = match &mc.per_instance {
            Some((_, level)) => self.instance_onehot(*level),
            None => vec![],
        };
        if mc.per_instance.is_some() && values.is_empty() {
            self.multi[i].dropped = true;
            return;
        }
        let r = self.col(0.0, f64::INFINITY, false, 1.0);
        self.multi[i].r = Some(r);
        let mut l = Lin::var(r, 1.0);
        for &w in &mc.ws {
            l.t.push((w, 1.0));
        }
        let Some((charged, _)) = &mc.per_instance else {
            let z = self.col(0.0, f64::INFINITY, true, 0.0);
            self.eq(&l.minus(&Lin::var(z, mc.unit)), 0.0);
            return;
        };
        let parts: Vec<ExpTerm> = mc
            .ws
            .iter()
            .filter_map(|w| self.terms.iter().find(|t| t.w == *w).cloned())
            .collect();
        for &(g, n) in &values {
            let z = self.col(0.0, f64::INFINITY, true, 0.0);
            let mut zsum = Lin::var(z, 1.0);
            for t in &parts {
                let u = self.col(0.0, f64::INFINITY, false, 0.0);
                let ua = t.a.clone().minus(charged).switched(g);
                self.ceiling(u, t.coef / mc.unit, ua, t.at);
                zsum.t.push((u, -1.0));
            }
            self.ge(&zsum, 0.0);
            l.t.push((z, -mc.unit * n));
        }
        self.ge(&l, 0.0);
    }
    /// The vector accesses per charged instance of multi-part count `mc` at `x` (its parts'
    /// sum over the energy of one access on each), its parts' sum, and whether its load mode
    /// is on.
    fn multi_accesses(&self, mc: &MultiCount, x: &[f64]) -> (f64, f64, bool) {
        let (sum, on) = self.multi_sum(mc, x);
        let unit = match &mc.per_instance {
            None => mc.unit,
            Some((charged, _)) => mc.unit * charged.value(x).exp(),
        };
        (sum / unit, sum, on)
    }
    /// The exact value of multi-part count `mc` at `x`: its parts' sum, and whether its load
    /// mode is on.
    fn multi_sum(&self, mc: &MultiCount, x: &[f64]) -> (f64, bool) {
        let (mut sum, mut on) = (0.0, false);
        for t in self.terms.iter().filter(|t| mc.ws.contains(&t.w)) {
            let a = t.a.value(x);
            if a > -OFF / 2.0 {
                sum += t.coef * a.exp();
                on = true;
            }
        }
        (sum, on)
    }
    /// A term whose per-instance count is at least one vector access: besides `coef·exp(a)`,
    /// `w ≥ floor_coef · exp(floor_a)` (the ceilings the evaluator applies).
    ///
    /// `whole` says how the evaluator's whole vector accesses per instance come back:
    /// * [`Whole::Fixed`] (the charged instance count is fixed; `unit` is the energy of one
    ///   vector access on every charged instance): `w = unit · z` with `z` integer, so the
    ///   ceilings the exponent drops come back exactly at every point where the tangents are;
    /// * [`Whole::PerInstance`] (it varies, over a one-hot of its values `n`): per value an
    ///   integer `z_n ≥ exp(a − charged)·coef/floor_coef` switched off unless the count is `n`,
    ///   and `w ≥ Σ_n floor_coef · n · z_n`: exact wherever the tangents of `z_n` are.
    fn term_with_floor(&mut self, coef: f64, a: Lin, floor_coef: f64, floor_a: Lin, whole: Whole) {
        let Some(w) = self.term(coef, a.clone()) else {
            return;
        };
        match whole {
            Whole::Fixed(u) if u > 0.0 && u.is_finite() => {
                let z = self.col(0.0, f64::INFINITY, true, 0.0);
                self.eq(&Lin::var(w, 1.0).minus(&Lin::var(z, u)), 0.0);
                self.units.insert(w, u);
            }
            Whole::PerInstance { charged, level } if floor_coef > 0.0 => {
                self.deferred.push(Deferred {
                    w,
                    per_vector: coef / floor_coef,
                    unit: floor_coef,
                    per_instance: a.clone().minus(charged),
                    charged: charged.clone(),
                    level,
                    active: false,
                    at: self.at,
                });
            }
            _ => {}
        }
        if floor_coef > 0.0 {
            let e = self.exponent(&floor_a);
            let at = self.at;
            self.floors.push(ExpTerm {
                coef: floor_coef,
                a: floor_a,
                w,
                e,
                at,
            });
        }
    }
    /// One-hot lifting of `w ≥ coef·exp(a)`: for each one-hot group `g` in `a`, the other
    /// groups and columns at their smallest contribution `m`, `exp` of the group's part is
    /// linear in its one-hot, so `w ≥ coef·e^m · Σ_j e^{a_j} x_j` holds at every integer point
    /// (exact when the rest is at its minimum). Unlike tangents it stays strong when the LP
    /// spreads a dim over several choices.
    fn lift(&mut self, t: &ExpTerm) {
        let (outside, parts) = self.split_by_group(&t.a, 0);
        let mut rest = t.a.c;
        for (i, v) in outside {
            let (lo, hi) = (v * self.col_lo[i], v * self.col_hi[i]);
            let lo = if v > 0.0 { lo } else { hi };
            if !lo.is_finite() {
                return;
            }
            rest += lo;
        }
        let mins: Vec<f64> = parts.iter().map(|(_, c)| min_of(c)).collect();
        let total_min = rest + mins.iter().sum::<f64>();
        let mut cuts = vec![];
        let mut dense = vec![];
        for ((g, c), gmin) in parts.into_iter().zip(mins) {
            let others = total_min - gmin;
            let k = t.coef * others.exp() * (1.0 - SHAVE);
            let cmax = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let top = k * cmax.exp();
            if !(top.is_finite() && top > 1e-9 && top < 1e9) {
                continue;
            }
            if self.groups[g].len() > SHARED_GROUP {
                // w ≥ top · Σ_j e^{c_j − cmax} x_j through the group's shared column.
                let shifted: Vec<f64> = c.iter().map(|v| v - cmax).collect();
                cuts.push((g, shifted, top));
                continue;
            }
            let mut l = Lin::var(t.w, 1.0);
            l.t.extend(
                self.groups[g]
                    .iter()
                    .zip(&c)
                    .map(|(&i, v)| (i, -k * v.exp())),
            );
            dense.push(l);
        }
        for (g, shifted, top) in cuts {
            let y = self.group_part(1, g, &shifted, f64::exp);
            self.ge(&Lin::var(t.w, 1.0).minus(&Lin::var(y, top)), 0.0);
        }
        for l in dense {
            self.ge(&l, 0.0);
        }
    }
    /// A column equal to `Σ_j f(c_j) x_j` over one-hot group `g` (`coefs` in the group's
    /// column order), shared by every caller with the same profile.
    fn group_part(&mut self, kind: u8, g: usize, coefs: &[f64], f: fn(f64) -> f64) -> usize {
        let key = (kind, g, coefs.iter().map(|c| c.to_bits()).collect());
        if let Some(&c) = self.shared.get(&key) {
            return c;
        }
        let vals: Vec<f64> = coefs.iter().map(|&c| f(c)).collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let y = self.col(lo, hi, false, 0.0);
        let mut l = Lin::var(y, 1.0);
        for (&i, &v) in self.groups[g].clone().iter().zip(&vals) {
            l.t.push((i, -v));
        }
        self.row(0.0, 0.0, &l);
        self.shared.insert(key, y);
        y
    }
    /// `a` with each large one-hot group's part replaced by a shared column (the group sums to
    /// one, so a part is its smallest coefficient plus a shifted profile).
    fn sparse(&mut self, a: &Lin) -> Lin {
        let (outside, parts) = self.split_by_group(a, SHARED_GROUP);
        let mut out = Lin { c: a.c, t: outside };
        for (g, c) in parts {
            let min = min_of(&c);
            let shifted: Vec<f64> = c.iter().map(|v| v - min).collect();
            let y = self.group_part(0, g, &shifted, |v| v);
            out.c += min;
            out.t.push((y, 1.0));
        }
        out.t.sort_by_key(|x| x.0);
        out
    }
    /// `a`'s merged terms split into those outside one-hot groups of more than `min_size`
    /// choices and, per such group (in group order), its coefficients in the group's column
    /// order (0 for members `a` does not name).
    fn split_by_group(
        &self,
        a: &Lin,
        min_size: usize,
    ) -> (Vec<(usize, f64)>, Vec<(usize, Vec<f64>)>) {
        let mut outside = vec![];
        let mut parts: std::collections::BTreeMap<usize, HashMap<usize, f64>> = Default::default();
        for (i, v) in a.merged() {
            match self.group_of.get(&i) {
                Some(&g) if self.groups[g].len() > min_size => {
                    parts.entry(g).or_default().insert(i, v);
                }
                _ => outside.push((i, v)),
            }
        }
        let parts = parts
            .into_iter()
            .map(|(g, coefs)| {
                let c = self.groups[g]
                    .iter()
                    .map(|i| coefs.get(i).copied().unwrap_or(0.0))
                    .collect();
                (g, c)
            })
            .collect();
        (outside, parts)
    }
    /// A column equal to the linear expression `a` (bounded by its range over the columns).
    fn exponent(&mut self, a: &Lin) -> usize {
        let a = &self.sparse(a);
        let (mut lo, mut hi) = (a.c, a.c);
        for &(i, v) in &a.t {
            let (x, y) = (v * self.col_lo[i], v * self.col_hi[i]);
            lo += x.min(y);
            hi += x.max(y);
        }
        let lo = if lo.is_nan() { f64::NEG_INFINITY } else { lo };
        let hi = if hi.is_nan() { f64::INFINITY } else { hi };
        let e = self.col(lo, hi, false, 0.0);
        self.eq(&Lin::var(e, 1.0).minus(a), 0.0);
        e
    }
    /// Tangents at solution `x` of every term and floor (a switched-off mode's where it would
    /// be active) and of every capacity term.
    fn tangents_at(&mut self, x: &[f64]) {
        let (terms, caps, floors) = (
            self.terms.clone(),
            self.cap_terms.clone(),
            self.floors.clone(),
        );
        for t in &terms {
            let mut a = t.a.value(x);
            if a < -OFF / 2.0 {
                a += OFF; // a switched-off mode: tangent where it would be active
            }
            self.tangent(t, a);
        }
        for t in &caps {
            self.tangent(t, t.a.value(x));
        }
        for t in &floors {
            let mut a = t.a.value(x);
            if a < -OFF / 2.0 {
                a += OFF;
            }
            self.tangent(t, a);
        }
    }
    /// The values of the binary columns that identify a mapping, at `x`.
    fn identity_key(&self, x: &[f64]) -> Vec<u8> {
        self.identity.iter().map(|&i| (x[i] > 0.5) as u8).collect()
    }
    /// A tangent of `w ≥ coef·exp(a)` at `a = at`.
    fn tangent(&mut self, t: &ExpTerm, at: f64) {
        let k = t.coef * at.exp() * (1.0 - SHAVE);
        if !(k.is_finite() && (MIN_COEF..1e9).contains(&k)) {
            return;
        }
        // A point already tangent (to within 1e-7 in log space, where the two tangents differ
        // by under 1e-14 relative) adds nothing but a row.
        if !self
            .tangents
            .insert((t.w, t.e, t.coef.to_bits(), (at * 1e7).round() as i64))
        {
            return;
        }
        // w − k·e ≥ k·(1 − at), with e = a
        let l = Lin::var(t.w, 1.0).minus(&Lin::var(t.e, k));
        self.ge(&l, k * (1.0 - at));
    }
}

/// A one-hot over the values of a product (one factor per part; each part lists, per choice
/// of its dim, the choice's column, None for a dim's only choice, and its value), tied to the
/// dims' one-hots through the product's exponent of every prime: `Σ_v f(v)·g_v`. Values above
/// `most` are left out (the caller knows no mapping reaches them). None when the product takes
/// more than `limit` values.
fn product_onehot(
    m: &mut Model,
    parts: &[Vec<(Option<usize>, u64)>],
    f: &dyn Fn(u64) -> f64,
    limit: usize,
    most: u64,
) -> Option<Lin> {
    // The reachable values: products over the parts' possible values.
    let mut values = vec![1u64];
    for part in parts {
        let mut opts: Vec<u64> = part.iter().map(|x| x.1).collect();
        opts.sort_unstable();
        opts.dedup();
        let mut next: Vec<u64> = values
            .iter()
            .flat_map(|a| opts.iter().map(move |b| a * b))
            .collect();
        next.retain(|&v| v <= most);
        next.sort_unstable();
        next.dedup();
        values = next;
    }
    if values.len() == 1 {
        return Some(Lin::konst(f(values[0])));
    }
    if values.len() > limit {
        return None;
    }
    let primes: Vec<u64> = values
        .iter()
        .flat_map(|&v| prime_factors(v).into_iter().map(|(p, _)| p))
        .sorted()
        .dedup()
        .collect();
    let val = |mut n: u64, p: u64| {
        let mut e = 0.0;
        while n.is_multiple_of(p) {
            n /= p;
            e += 1.0;
        }
        e
    };
    let g: Vec<usize> = values.iter().map(|_| m.bin()).collect();
    m.eq(
        &Lin {
            c: 0.0,
            t: g.iter().map(|&c| (c, 1.0)).collect(),
        },
        1.0,
    );
    for &p in &primes {
        let mut l = Lin {
            c: 0.0,
            t: values
                .iter()
                .zip(&g)
                .map(|(&v, &c)| (c, val(v, p)))
                .collect(),
        };
        for part in parts {
            for &(col, q) in part {
                match col {
                    Some(c) => l.t.push((c, -val(q, p))),
                    None => l.c -= val(q, p),
                }
            }
        }
        m.eq(&l, 0.0);
    }
    Some(Lin {
        c: 0.0,
        t: values.iter().zip(&g).map(|(&v, &c)| (c, f(v))).collect(),
    })
}

/// How a count at a level charged for `charged` instances (its log, and the level when it
/// varies) comes back in whole vector accesses of `energy` each.
fn whole(energy: f64, charged: &(Lin, Option<usize>)) -> Whole<'_> {
    match charged {
        // A vector access worth less than MIN_UNIT of the objective cannot be held whole.
        _ if energy < MIN_UNIT => Whole::Dropped,
        (log, _) if log.t.iter().all(|&(_, v)| v == 0.0) => Whole::Fixed(energy * log.c.exp()),
        (log, Some(level)) => Whole::PerInstance {
            charged: log,
            level: *level,
        },
        (_, None) => Whole::Dropped,
    }
}

fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// A mirror symmetry of the mapspace: a swap of dims (P↔Q with R↔S on a square layer) that
/// maps the problem, the mapspace's rules and every dim's factorisations onto themselves, so
/// that mirroring a mapping keeps it in the space at the same cost. Returned as the permutation
/// of dims (an involution other than the identity).
///
/// The candidate swaps come from two ranks of one tensor with the same coefficients (an input
/// tensor's `P·s + R` and `Q·s + S`).
pub fn mirror_symmetry(space: &Mapspace) -> Option<Vec<usize>> {
    let problem = space.problem();
    let nd = problem.dims.len();
    let nl = space.arch().levels.len();
    let ranks_of = |sigma: &[usize], t: &crate::model::Tensor| -> Vec<Vec<(u64, usize)>> {
        let mut ranks: Vec<Vec<(u64, usize)>> = t
            .ranks
            .iter()
            .map(|r| {
                let mut r: Vec<(u64, usize)> = r.iter().map(|x| (x.coef, sigma[x.dim])).collect();
                r.sort_unstable();
                r
            })
            .collect();
        ranks.sort_unstable();
        ranks
    };
    let symmetric = |sigma: &[usize]| -> bool {
        let identity: Vec<usize> = (0..nd).collect();
        let same_problem = (0..nd).all(|d| problem.bounds[sigma[d]] == problem.bounds[d])
            && problem
                .tensors
                .iter()
                .all(|t| ranks_of(sigma, t) == ranks_of(&identity, t));
        let same_rules = (0..nd).all(|d| {
            space.dim_choices(sigma[d]) == space.dim_choices(d)
                && (0..nl).all(|l| {
                    let rule = space.spatial_rule(l);
                    [LoopKind::Temporal, LoopKind::Spatial]
                        .iter()
                        .all(|&k| space.factor_rule(sigma[d], l, k) == space.factor_rule(d, l, k))
                        && rule.dir[sigma[d]] == rule.dir[d]
                        && rule.order.as_ref().is_none_or(|o| o[sigma[d]] == o[d])
                })
        });
        // A permutation constraint names the innermost loops in order: the dims it names that
        // can be non-unit at its level must be mirrored onto themselves.
        let same_orders = (0..nl).all(|l| {
            let s = space.level_slots(l).temporal;
            let named: Vec<usize> = space
                .temporal_prefix(l)
                .iter()
                .copied()
                .filter(|&d| space.dim_choices(d).iter().any(|c| c[s] > 1))
                .collect();
            named.iter().map(|&d| sigma[d]).eq(named.iter().copied())
        });
        same_problem && same_rules && same_orders
    };
    for t in &problem.tensors {
        for (i, a) in t.ranks.iter().enumerate() {
            for b in &t.ranks[i + 1..] {
                if a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.coef != y.coef) {
                    continue;
                }
                let mut sigma: Vec<usize> = (0..nd).collect();
                for (x, y) in a.iter().zip(b) {
                    if sigma[x.dim] != x.dim || sigma[y.dim] != y.dim || x.dim == y.dim {
                        continue;
                    }
                    sigma[x.dim] = y.dim;
                    sigma[y.dim] = x.dim;
                }
                if sigma.iter().enumerate().any(|(d, &e)| d != e) && symmetric(&sigma) {
                    return Some(sigma);
                }
            }
        }
    }
    None
}

/// Which tensor a dim is irrelevant to (None: relevant to all).
fn irrelevant_to(space: &Mapspace, d: usize) -> Option<usize> {
    space.problem().tensors.iter().position(|t| !t.relevant(d))
}

/// Solves the mapspace for `objective` (energy only so far) under `opts` (fixed bit-widths).
pub fn solve(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    so: &SolveOptions,
) -> Result<Certificate, String> {
    if objective != Objective::Energy {
        return Err("the MILP proves energy optima; latency and EDP are not supported yet".into());
    }
    let problem = space.problem();
    for d in 0..problem.dims.len() {
        let n = problem.tensors.iter().filter(|t| !t.relevant(d)).count();
        if n > 1 {
            return Err(format!(
                "the MILP needs every dimension irrelevant to at most one tensor; {} is irrelevant to {n}",
                problem.dims[d]
            ));
        }
    }
    let start = Instant::now();
    let deadline = so
        .time_limit
        .map(|t| start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let past = || deadline.is_some_and(|d| Instant::now() >= d);
    // One model per bypass pattern, built when it is first refined; best-first: always refine
    // the open pattern with the lowest bound, so patterns that cannot beat the incumbent are
    // closed by their completion bound or by one infeasible solve, and never built.
    let mut patterns: Vec<Pattern> = vec![];
    let mut timed_out = false;
    for keep in keep_patterns(space) {
        // Past the deadline, the patterns left keep the bound every mapping has: its MACs.
        let bound = if past() {
            timed_out = true;
            Some(mac_energy(space, opts))
        } else {
            crate::search::choice_bounds(space, &keep, opts, &[]).0
        };
        if let Some(b) = bound {
            patterns.push(Pattern::pending(keep, b * (1.0 - SHAVE)));
        }
    }
    // Under a time limit the first solves may not finish (a large model, an open mapspace): a
    // short random search over the same mapspace gives an incumbent (and a cutoff) to start
    // from, so that a time-limited answer is never worse than that search.
    let seeded: Option<(Mapping, Evaluation)> = deadline.and_then(|d| {
        let share = Duration::from_secs_f64(so.time_limit.unwrap_or(0.0).max(0.0) * SEED_SHARE);
        let until = d.min(Instant::now() + share);
        let r = crate::search::random_until(
            space,
            opts,
            Objective::Energy,
            0,
            SEED_SAMPLES,
            None,
            Some(until),
        );
        r.best.zip(r.evaluation)
    });
    let parallel = so.split_after.is_some() && rayon::current_thread_index().is_none();
    let mut splits = 0;
    loop {
        let incumbent = patterns
            .iter()
            .filter_map(|p| p.best.as_ref().map(|b| b.1.energy_pj))
            .chain(seeded.as_ref().map(|b| b.1.energy_pj))
            .fold(f64::INFINITY, f64::min);
        let open = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.done)
            .min_by(|a, b| a.1.bound.total_cmp(&b.1.bound))
            .map(|(i, _)| i);
        let Some(i) = open else { break };
        crate::progress::incumbent(incumbent);
        crate::progress::bound(patterns[i].bound.min(incumbent));
        if incumbent.is_finite() && patterns[i].bound >= incumbent * (1.0 - so.gap) {
            break; // every open pattern's bound is within the gap of the incumbent
        }
        if timed_out || past() {
            timed_out = true;
            break;
        }
        if !patterns[i].built {
            patterns[i].build(space, opts, so.slice_choices)?;
            continue;
        }
        let remaining = so.time_limit.map(|t| t - start.elapsed().as_secs_f64());
        let rounds: usize = patterns.iter().map(|p| p.rounds).sum();
        if remaining.is_some_and(|r| r <= 0.0) || rounds >= so.max_rounds {
            timed_out = true;
            break;
        }
        let cutoff = incumbent.is_finite().then_some(incumbent);
        // A second open pattern to refine on the other core: the next lowest bound, or else,
        // once a solve of this one took `split_after`, one half of it.
        let mut second = patterns
            .iter()
            .enumerate()
            .filter(|&(j, p)| j != i && !p.done)
            .filter(|(_, p)| !(incumbent.is_finite() && p.bound >= incumbent * (1.0 - so.gap)))
            .min_by(|a, b| a.1.bound.total_cmp(&b.1.bound))
            .map(|(j, _)| j);
        let slow = so
            .split_after
            .is_some_and(|t| patterns[i].solves > 0 && patterns[i].last_solve >= t);
        if parallel && second.is_none() && slow && splits < MAX_SPLITS {
            if let Some(half) = patterns[i].split() {
                patterns.push(half);
                second = Some(patterns.len() - 1);
                splits += 1;
            }
        }
        if let Some(j) = second.filter(|&j| parallel && !patterns[j].built) {
            patterns[j].build(space, opts, so.slice_choices)?;
            continue;
        }
        let stepped = match second.filter(|_| parallel) {
            None => patterns[i].step(space, opts, so, remaining, cutoff)?,
            Some(j) => {
                let (a, b) = if i < j {
                    let (lo, hi) = patterns.split_at_mut(j);
                    (&mut lo[i], &mut hi[0])
                } else {
                    let (lo, hi) = patterns.split_at_mut(i);
                    (&mut hi[0], &mut lo[j])
                };
                let (ra, rb) = rayon::join(
                    || a.step(space, opts, so, remaining, cutoff),
                    || b.step(space, opts, so, remaining, cutoff),
                );
                ra? & rb?
            }
        };
        if !stepped {
            timed_out = true;
            break;
        }
    }
    let rounds = patterns.iter().map(|p| p.rounds).sum();
    let solves = patterns.iter().map(|p| p.solves).sum();
    let bound = patterns
        .iter()
        .map(|p| p.bound)
        .fold(f64::INFINITY, f64::min);
    // The bound is of the optimum, which no mapping the run evaluated can undercut.
    let seen = patterns
        .iter()
        .filter_map(|p| p.best.as_ref().map(|b| b.1.energy_pj))
        .chain(seeded.as_ref().map(|b| b.1.energy_pj))
        .fold(f64::INFINITY, f64::min);
    if seen < bound * (1.0 - 1e-6) {
        return Err(crate::certify::internal_error(&format!(
            "the MILP's bound {bound} pJ is above a valid mapping it evaluated ({seen} pJ)"
        )));
    }
    let best = patterns
        .into_iter()
        .filter_map(|p| p.best)
        .chain(seeded)
        .min_by(|a, b| a.1.energy_pj.total_cmp(&b.1.energy_pj));
    let seconds = start.elapsed().as_secs_f64();
    let value = best.as_ref().map_or(f64::INFINITY, |b| b.1.energy_pj);
    if best.is_none() && !timed_out {
        // Infeasible as far as the MILP sees; the reason is checked, or left to the caller
        // to check (None).
        return Ok(Certificate {
            status: Status::Infeasible,
            mapping: None,
            evaluation: None,
            value,
            bound: f64::INFINITY,
            gap: 0.0,
            rounds,
            milp_solves: solves,
            splits,
            seconds,
            reason: diagnose(space, opts),
            check: None,
        });
    }
    let bound = bound.min(value);
    let gap = relative_gap(value, bound);
    let status = if !timed_out && gap <= so.gap {
        Status::Optimal
    } else {
        Status::TimeLimit
    };
    Ok(Certificate {
        status,
        mapping: best.as_ref().map(|b| b.0.clone()),
        evaluation: best.map(|b| b.1),
        value,
        bound,
        gap,
        rounds,
        milp_solves: solves,
        splits,
        seconds,
        reason: None,
        check: None,
    })
}

/// Every keep/bypass pattern of `space` in which each tensor is kept somewhere, in the order
/// of their numbers (bit i: the i-th free keep choice kept).
fn keep_patterns(space: &Mapspace) -> impl Iterator<Item = Vec<Vec<bool>>> + '_ {
    let free = space.free_keeps();
    let nt = space.problem().tensors.len();
    let nl = space.arch().levels.len();
    (0u64..1u64 << free.len()).filter_map(move |pattern| {
        let mut keep = vec![vec![false; nt]; nl];
        for (l, row) in keep.iter_mut().enumerate() {
            for (t, k) in row.iter_mut().enumerate() {
                *k = match space.keep_choice(l, t) {
                    KeepChoice::Fixed(b) => b,
                    KeepChoice::Free => false,
                };
            }
        }
        for (i, &(l, t)) in free.iter().enumerate() {
            keep[l][t] = pattern >> i & 1 == 1;
        }
        (0..nt).all(|t| (0..nl).any(|l| keep[l][t])).then_some(keep)
    })
}

/// The MAC energy of the layer (pJ): a lower bound on every mapping's energy.
fn mac_energy(space: &Mapspace, opts: &ModelOptions) -> f64 {
    let (problem, arch) = (space.problem(), space.arch());
    problem.macs() as f64 * crate::eval::mac_energy_per_op(arch, problem, opts)
}

/// A certificate's gap, `(value − bound) / value`: 0 where they meet (nothing valid, proved),
/// infinite where no mapping was found.
pub fn relative_gap(value: f64, bound: f64) -> f64 {
    if value == bound {
        0.0
    } else if value.is_finite() {
        ((value - bound) / value).max(0.0)
    } else {
        f64::INFINITY
    }
}

/// The optimum of every bit-width choice (one `ModelOptions` each): choices with the same
/// packing signature share one MILP solve (their energies differ by MACs × the MAC-energy
/// difference for every mapping), so each member's certificate is its class's, with the
/// mapping re-evaluated at the member's bit-widths and the bound shifted by the MAC energy.
/// The solve counts are on the certificate of each class's first member only (so they add up).
/// `so.time_limit` is for all classes together, or for each class with `per_class_limit`.
pub fn solve_each(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    so: &SolveOptions,
    per_class_limit: bool,
) -> Result<Vec<Certificate>, String> {
    let start = Instant::now();
    let (problem, arch) = (space.problem(), space.arch());
    let macs = problem.macs() as f64;
    let mac_e = |o: &ModelOptions| macs * crate::eval::mac_energy_per_op(arch, problem, o);
    let mut classes: Vec<(crate::eval::PackingSignature, usize, Certificate)> = vec![];
    let mut out = vec![];
    for (i, o) in choices.iter().enumerate() {
        let sig = crate::eval::packing_signature(arch, problem, o);
        let k = match classes.iter().position(|(s, _, _)| *s == sig) {
            Some(k) => k,
            None => {
                let mut class_so = so.clone();
                if let (Some(t), false) = (so.time_limit, per_class_limit) {
                    class_so.time_limit = Some(t - start.elapsed().as_secs_f64());
                }
                let cert = solve(space, o, objective, &class_so)?;
                classes.push((sig, i, cert));
                classes.len() - 1
            }
        };
        let (_, rep, class) = &classes[k];
        let mut cert = class.clone();
        if *rep != i {
            cert.rounds = 0;
            cert.milp_solves = 0;
            cert.splits = 0;
        }
        let shift = mac_e(o) - mac_e(&choices[*rep]);
        cert.bound += shift;
        if let Some(m) = &cert.mapping {
            let ev = evaluate(problem, arch, m, o);
            if !ev.valid || (ev.energy_pj - (class.value + shift)).abs() > 1e-9 * ev.energy_pj {
                return Err(format!(
                    "internal error: the packing signature promised {} pJ for bit choice {i}, the evaluator gives {} pJ",
                    class.value + shift,
                    ev.energy_pj
                ));
            }
            cert.value = ev.energy_pj;
            cert.gap = ((cert.value - cert.bound) / cert.value).max(0.0);
            cert.evaluation = Some(ev);
        }
        out.push(cert);
    }
    Ok(out)
}

/// The optimum over several bit-width choices ([`solve_each`], one time limit for all):
/// the certificate of the best choice and its index; the bound is the minimum over all choices.
pub fn solve_choices(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    so: &SolveOptions,
) -> Result<(Certificate, usize), String> {
    if choices.is_empty() {
        return Err("no bit-width choice is left (check the weight budget)".into());
    }
    let start = Instant::now();
    let certs = solve_each(space, choices, objective, so, false)?;
    let seconds = start.elapsed().as_secs_f64();
    let rounds = certs.iter().map(|c| c.rounds).sum();
    let solves = certs.iter().map(|c| c.milp_solves).sum();
    let splits = certs.iter().map(|c| c.splits).sum();
    let timed_out = certs.iter().any(|c| c.status == Status::TimeLimit);
    let bound = certs.iter().map(|c| c.bound).fold(f64::INFINITY, f64::min);
    let best = certs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.mapping.is_some())
        .min_by(|a, b| a.1.value.total_cmp(&b.1.value))
        .map(|(i, _)| i);
    let Some(i) = best else {
        // Checked only when every choice's reason is.
        let mut reasons: Vec<String> = vec![];
        for r in certs.iter().map(|c| c.reason.clone()) {
            if r.as_ref().is_none_or(|r| !reasons.contains(r)) {
                reasons.extend(r);
            }
        }
        let checked = certs.iter().all(|c| c.reason.is_some());
        let mut c = certs.into_iter().next().expect("at least one choice");
        c.seconds = seconds;
        c.milp_solves = solves;
        c.splits = splits;
        c.rounds = rounds;
        c.reason = checked.then(|| reasons.join("; "));
        if timed_out {
            c.status = Status::TimeLimit;
            c.reason = None;
        }
        return Ok((c, 0));
    };
    let mut cert = certs[i].clone();
    cert.bound = bound.min(cert.value);
    cert.gap = ((cert.value - cert.bound) / cert.value).max(0.0);
    cert.status = if !timed_out && cert.gap <= so.gap {
        Status::Optimal
    } else {
        Status::TimeLimit
    };
    cert.rounds = rounds;
    cert.milp_solves = solves;
    cert.splits = splits;
    cert.seconds = seconds;
    Ok((cert, i))
}

/// A checked reason why no mapping of `space` is valid at `opts`, where one of these is: a dim
/// the constraints leave no factorisation ([`Mapspace::empty_reason`]), a level whose
/// smallest possible tiles of the tensors it must keep do not fit (every
/// mapping's tiles are at least those). None when neither applies (the reason is then not
/// known without searching).
pub fn diagnose(space: &Mapspace, opts: &ModelOptions) -> Option<String> {
    if let Some(r) = space.empty_reason() {
        return Some(r.to_string());
    }
    let problem = space.problem();
    let arch = space.arch();
    for (l, level) in arch.levels.iter().enumerate() {
        let Some(cap) = level.capacity_words() else {
            continue;
        };
        if level.dummy {
            continue;
        }
        let mut need = 0;
        for (t, tensor) in problem.tensors.iter().enumerate() {
            if space.keep_choice(l, t) != KeepChoice::Fixed(true) {
                continue;
            }
            // The smallest tile: every dim at its smallest cumulative extent over its choices.
            let ext: Vec<u64> = (0..problem.dims.len())
                .map(|d| {
                    space
                        .dim_choices(d)
                        .iter()
                        .map(|c| cumulative(space, c, l))
                        .min()
                        .unwrap_or(1)
                })
                .collect();
            let pts = tensor.tile_points(&ext);
            let bits = tensor_bits(opts, problem, t, level.word_bits, false) as u64;
            need += match (opts.packing, &opts.bits) {
                (PackingMode::Ideal, Some(_)) => (pts * bits).div_ceil(level.word_bits),
                _ => pts.div_ceil(operands_per_word(level.word_bits, bits)),
            };
        }
        if need > cap {
            return Some(format!(
                "capacity: the smallest tiles of the tensors {} must keep need {need} words, it has {cap}",
                level.name
            ));
        }
    }
    None
}

/// The dims the MILP encodes per slot group ([`SolveOptions::slice_choices`]). A dim can be
/// sliced when it is no term of a two-term rank (no halo, no sliding window: those need their
/// cumulative extents' exact values) and every rank it is in counts it with coefficient 1 (a
/// log extent is then the sum of the factors' logs). It is sliced when it has more
/// factorisations than `slice_choices.0` (a dim some tensor is irrelevant to) or
/// `slice_choices.1` (a dim every tensor is relevant to).
pub fn sliced_dims(space: &Mapspace, slice_choices: (usize, usize)) -> Vec<usize> {
    let problem = space.problem();
    (0..problem.dims.len())
        .filter(|&d| {
            let shared = problem.tensors.iter().all(|t| t.relevant(d));
            let most = if shared {
                slice_choices.1
            } else {
                slice_choices.0
            };
            space.dim_choices(d).len() > most.max(1)
                && problem.tensors.iter().all(|t| {
                    t.ranks
                        .iter()
                        .all(|r| !r.iter().any(|x| x.dim == d) || (r.len() == 1 && r[0].coef == 1))
                })
        })
        .collect()
}

/// Cumulative extent of a dim's factor vector at level `l` (all slots of levels ≤ l).
fn cumulative(space: &Mapspace, choice: &[u64], l: usize) -> u64 {
    space
        .slots()
        .iter()
        .zip(choice)
        .filter(|(s, _)| s.level <= l)
        .map(|(_, f)| *f)
        .product()
}

fn tensor_bits(
    opts: &ModelOptions,
    problem: &crate::model::Problem,
    t: usize,
    word_bits: u64,
    inner_psum: bool,
) -> u32 {
    match &opts.bits {
        None => word_bits as u32,
        Some(b) => match opts.psum {
            PsumPolicy::Bits(pb) if problem.tensors[t].read_write && inner_psum => pb,
            _ => b.0[t],
        },
    }
}

/// A one-hot over pairs (a, b) of two one-hot families (continuous: the marginals force it
/// integral): Σ_b h[a][b] = marg_a(a), Σ_a h[a][b] = marg_b(b). Returns Σ value(a, b)·h[a][b].
fn pair_onehot<K: Copy>(
    m: &mut Model,
    a_keys: &[K],
    b_keys: &[K],
    marg_a: impl Fn(K) -> Lin,
    marg_b: impl Fn(K) -> Lin,
    value: impl Fn(K, K) -> f64,
) -> Lin {
    let h: Vec<Vec<usize>> = a_keys
        .iter()
        .map(|_| b_keys.iter().map(|_| m.col(0.0, 1.0, false, 0.0)).collect())
        .collect();
    let mut out = Lin::default();
    for (i, &a) in a_keys.iter().enumerate() {
        for (j, &b) in b_keys.iter().enumerate() {
            out.t.push((h[i][j], value(a, b)));
        }
    }
    for (i, &a) in a_keys.iter().enumerate() {
        let l = Lin {
            c: 0.0,
            t: h[i].iter().map(|&c| (c, 1.0)).collect(),
        }
        .minus(&marg_a(a));
        m.eq(&l, 0.0);
    }
    for (j, &b) in b_keys.iter().enumerate() {
        let l = Lin {
            c: 0.0,
            t: h.iter().map(|r| (r[j], 1.0)).collect(),
        }
        .minus(&marg_b(b));
        m.eq(&l, 0.0);
    }
    out
}

/// Words one scalar of tensor `t` occupies at a level with `word_bits`-bit words, without the
/// ceilings the evaluator applies to per-instance totals (the MILP's underestimate of them).
fn words_per_scalar(
    opts: &ModelOptions,
    problem: &crate::model::Problem,
    t: usize,
    word_bits: u64,
    inner_psum: bool,
) -> f64 {
    let bits = tensor_bits(opts, problem, t, word_bits, inner_psum) as f64;
    let w = word_bits as f64;
    if word_bits <= 1 || opts.bits.is_none() || bits == w {
        1.0
    } else {
        match opts.packing {
            PackingMode::Seed if bits > w => (bits / w).ceil(),
            PackingMode::Seed => 1.0 / operands_per_word(word_bits, bits as u64) as f64,
            PackingMode::Ideal => bits / w,
        }
    }
}

/// The outer-approximation state of one bypass pattern: its model with the cuts so far, its
/// best mapping and its proven lower bound. `step` runs one MILP solve and adds its cuts.
#[derive(Clone)]
struct Pattern {
    m: Model,
    vars: Vars,
    keep: Vec<Vec<bool>>,
    scale: f64,
    seen: std::collections::HashSet<Vec<u8>>,
    best: Option<(Mapping, Evaluation)>,
    /// Proven lower bound of the pattern's mapspace.
    bound: f64,
    /// The least model value of the loop order classes excluded without finding their best
    /// loop order (more orders than [`CLASS_ORDERS`]): the bound never goes above it.
    floor: f64,
    /// The bound meets the best value (or the cutoff): nothing left to do.
    done: bool,
    /// Whether `m` and `vars` are the pattern's model (else it waits, with its completion
    /// bound, for its first refinement).
    built: bool,
    rounds: usize,
    solves: usize,
    /// Seconds of the last MILP solve.
    last_solve: f64,
}

/// How a dim's factorisation is encoded.
#[derive(Clone)]
enum DimCols {
    /// A one-hot over the dim's factor vectors: column of choice j (None: the dim's only
    /// choice). Every per-dim quantity is linear in it.
    Whole(Vec<Option<usize>>),
    /// Per slot group (a level's temporal slot, or its X and Y slots together), a one-hot over
    /// the group's factors, tied by the dim's exponent of every prime ([`SLICE_CHOICES`]).
    Sliced(Vec<SlotGroup>),
}

/// One slot group of a sliced dim: its slots and, per value, its column (None: the group's
/// only value) and the factors of those slots.
#[derive(Clone)]
struct SlotGroup {
    slots: Vec<usize>,
    values: Vec<(Option<usize>, Vec<u64>)>,
}

/// Everything the model builder knows about the one-hots.
#[derive(Clone)]
struct Vars {
    /// How each dim's factorisation is encoded.
    x: Vec<DimCols>,
    /// delta[l][d]: the innermost non-unit temporal loop of level l is d.
    delta: Vec<Vec<Option<usize>>>,
}

/// Builds the model of one bypass pattern (None when a dim has no allowed factorisation).
/// Which conditions of [`WindowCarry`] some factorisation of a two-term rank's dims can meet
/// (the others get no column): keys `(first, i, lam, j, g, partner)` with `first` true for the
/// run's conditions (`after_run`: i and lam unused) and false for a member j at level g of the
/// sliding mode whose innermost loop is term i at level lam; `partner`: with the partner of j
/// at g inside j. None when there are too many pairs of factorisations to check (then every
/// condition counts as possible).
type CarryKey = (bool, usize, usize, usize, usize, bool);

/// Most pairs of factorisations [`carry_possible`] checks.
const CARRY_PAIRS: usize = 200_000;

fn carry_possible(
    space: &Mapspace,
    rank: &[crate::model::Term],
    child: usize,
) -> Option<std::collections::HashSet<CarryKey>> {
    let [t1, t2] = rank else {
        return Some(Default::default());
    };
    let (ca, cb) = (space.dim_choices(t1.dim), space.dim_choices(t2.dim));
    if ca.len().saturating_mul(cb.len()) > CARRY_PAIRS {
        return None;
    }
    let nl = space.arch().levels.len();
    let slots = space.slots();
    // Per choice and level: the move of the dim's temporal loop there (0 when unit).
    let moves = |choices: &[Vec<u64>], coef: u64| -> Vec<Vec<u64>> {
        choices
            .iter()
            .map(|c| {
                (0..nl)
                    .map(|g| {
                        if c[space.level_slots(g).temporal] <= 1 {
                            return 0;
                        }
                        let inner: u64 = slots
                            .iter()
                            .zip(c)
                            .filter(|(s, _)| {
                                s.level < g || (s.level == g && s.kind != SlotKind::Temporal)
                            })
                            .map(|(_, f)| *f)
                            .product();
                        coef * inner
                    })
                    .collect()
            })
            .collect()
    };
    let (ma, mb) = (moves(ca, t1.coef), moves(cb, t2.coef));
    let mut out = std::collections::HashSet::new();
    let first = child + 1;
    for a in &ma {
        for b in &mb {
            let m = [a, b];
            let below = |from: usize, g: usize| -> u64 { (from..g).map(|l| a[l] + b[l]).sum() };
            // A loop carried after the run: v_j = Σ below (+ its partner at g).
            for g in first..nl {
                for j in 0..2 {
                    let vj = m[j][g];
                    if vj == 0 {
                        continue;
                    }
                    let s = below(first, g);
                    if vj == s {
                        out.insert((true, 0, 0, j, g, false));
                    }
                    let p = m[1 - j][g];
                    if p > 0 && vj == s + p {
                        out.insert((true, 0, 0, j, g, true));
                    }
                }
            }
            // A member of the sliding mode of term i at lam.
            for lam in first..nl {
                for i in 0..2 {
                    let v1 = m[i][lam];
                    if v1 == 0 {
                        continue;
                    }
                    for g in lam..nl {
                        for j in 0..2 {
                            let vj = m[j][g];
                            if vj == 0 || (g == lam && j == i) {
                                continue;
                            }
                            if g == lam {
                                if vj == 2 * v1 {
                                    out.insert((false, i, lam, j, g, false));
                                }
                                continue;
                            }
                            let s = v1 + below(lam, g);
                            if vj == s {
                                out.insert((false, i, lam, j, g, false));
                            }
                            let p = m[1 - j][g];
                            if p > 0 && vj == s + p {
                                out.insert((false, i, lam, j, g, true));
                            }
                        }
                    }
                }
            }
        }
    }
    Some(out)
}

/// How the MILP bounds the loads of Timeloop's window carried across a wrap-around
/// (`eval::timeloop_loads`): a loop j outside the innermost one loads only the new part of the
/// tile when `v_j = v1 + Σ_{i<j} v_i` (v: a loop's move of the tile), which needs every
/// relevant loop inside j to move along j's sliding rank (any other relevant loop, a
/// *breaker*, ends it). Along a two-term rank (W = P·s + R·d) the moves of its dims' loops are
/// linear in those dims' one-hots over their factorisations, so the condition is exact up to
/// the order of j's own level: every loop of the levels below j is inside it; j's partner on
/// the rank at its level may be inside or outside (both are tried). Per loop order class (the
/// innermost dim of each level) the bounds below are therefore at most the loads of every
/// order in the class.
struct WindowCarry<'a> {
    space: &'a Mapspace,
    tensor: &'a crate::model::Tensor,
    child: usize,
    /// The move of dim d's temporal loop at level g along a rank term of coefficient `coef`
    /// (coef × the product of d's factors inside it), 0 when the loop is unit: linear in d's
    /// one-hot.
    moves: &'a dyn Fn(&Vars, usize, u64, usize) -> Lin,
    /// Whether dim d's temporal loop at level g is non-unit (None: it never is).
    nonunit: &'a dyn Fn(&Vars, usize, usize) -> Option<Lin>,
    /// log of dim d's temporal factor at level g, and its largest value.
    log_factor: &'a dyn Fn(&Vars, usize, usize) -> (Lin, f64),
    /// Per rank, the conditions some factorisation meets ([`carry_possible`]).
    possible: Vec<Option<std::collections::HashSet<CarryKey>>>,
}

impl WindowCarry<'_> {
    fn can(&self, r: usize, key: CarryKey) -> bool {
        self.possible[r].as_ref().is_none_or(|s| s.contains(&key))
    }

    fn levels(&self) -> usize {
        self.space.arch().levels.len()
    }

    /// The dims that break a chain along rank r: those the tensor uses outside it.
    fn breakers(&self, r: usize) -> Vec<usize> {
        let rank = &self.tensor.ranks[r];
        (0..self.space.problem().dims.len())
            .filter(|&d| self.tensor.relevant(d) && !rank.iter().any(|t| t.dim == d))
            .collect()
    }

    /// `y` only where no breaker of rank r has a non-unit loop at levels `from..to`.
    fn no_breakers(&self, m: &mut Model, vars: &Vars, y: usize, r: usize, from: usize, to: usize) {
        for l in from..to {
            for k in self.breakers(r) {
                if let Some(nk) = (self.nonunit)(vars, k, l) {
                    m.le(&Lin::var(y, 1.0).plus(&nk), 1.0);
                }
            }
        }
    }

    /// A binary that can be 1 only where the integer-valued expression `e` is 0.
    fn zero(m: &mut Model, e: &Lin) -> usize {
        let (lo, hi) = lin_range(e, m);
        let big = lo.abs().max(hi.abs()) + 1.0;
        let y = m.bin();
        m.le(&e.clone().plus(&Lin::var(y, big)), big + 0.5);
        m.ge(&e.clone().minus(&Lin::var(y, big)), -big - 0.5);
        y
    }

    /// The sum of the moves along rank r of its loops at levels `from..to`.
    fn rank_moves(&self, vars: &Vars, r: usize, from: usize, to: usize) -> Lin {
        let mut sum = Lin::default();
        for l in from..to {
            for t in &self.tensor.ranks[r] {
                sum.add(&(self.moves)(vars, t.dim, t.coef, l), 1.0);
            }
        }
        sum
    }

    /// A binary that can be 1 only where rank r's loop `tj` at level g moves by `target` plus
    /// the moves of its rank's loops below g (all inside it), or plus its partner's at g too
    /// (`key(partner)`: whether some factorisation can); None when neither can happen.
    #[allow(clippy::too_many_arguments)]
    fn lands(
        &self,
        m: &mut Model,
        vars: &Vars,
        r: usize,
        tj: &crate::model::Term,
        g: usize,
        from: usize,
        target: &Lin,
        key: impl Fn(bool) -> CarryKey,
    ) -> Option<usize> {
        let base = (self.moves)(vars, tj.dim, tj.coef, g)
            .minus(target)
            .minus(&self.rank_moves(vars, r, from, g));
        let mut any = Lin::default();
        if self.can(r, key(false)) {
            any.t.push((Self::zero(m, &base), 1.0));
        }
        for other in self.tensor.ranks[r].iter().filter(|t| t.dim != tj.dim) {
            if (self.nonunit)(vars, other.dim, g).is_some() && self.can(r, key(true)) {
                let with = base
                    .clone()
                    .minus(&(self.moves)(vars, other.dim, other.coef, g));
                any.t.push((Self::zero(m, &with), 1.0));
            }
        }
        match any.t.as_slice() {
            [] => None,
            [(y, _)] => Some(*y),
            _ => {
                let y = m.bin();
                m.le(&Lin::var(y, 1.0).minus(&any), 0.0);
                Some(y)
            }
        }
    }

    /// The log of the product of the loops that may be carried after the innermost loop when
    /// it is `term`'s dim at level `lam` (the sliding mode of rank r): a sum of columns, each at
    /// most a possible member's log factor.
    fn members(
        &self,
        m: &mut Model,
        vars: &Vars,
        r: usize,
        term: &crate::model::Term,
        lam: usize,
    ) -> Lin {
        let rank = &self.tensor.ranks[r];
        let i = rank.iter().position(|t| t.dim == term.dim).unwrap_or(0);
        let v1 = (self.moves)(vars, term.dim, term.coef, lam);
        let mut total = Lin::default();
        for g in lam..self.levels() {
            for (j, tj) in rank.iter().enumerate() {
                if g == lam && tj.dim == term.dim {
                    continue;
                }
                let Some(nu) = (self.nonunit)(vars, tj.dim, g) else {
                    continue;
                };
                // At the innermost loop's level j comes right after it: v_j = 2 v1; above,
                // v_j = v1 + every move along the rank below g (+ its partner's at g).
                let key = |partner| (false, i, lam, j, g, partner);
                let pm = if g == lam {
                    if !self.can(r, key(false)) {
                        continue;
                    }
                    let e = (self.moves)(vars, tj.dim, tj.coef, g).minus(&v1).minus(&v1);
                    Self::zero(m, &e)
                } else {
                    let Some(pm) = self.lands(m, vars, r, tj, g, lam, &v1, key) else {
                        continue;
                    };
                    self.no_breakers(m, vars, pm, r, lam, g);
                    pm
                };
                m.le(&Lin::var(pm, 1.0).minus(&nu), 0.0);
                total
                    .t
                    .push((self.log_factor_if(m, vars, tj.dim, g, pm), 1.0));
            }
        }
        total
    }

    /// When the innermost loop does not use the tensor: a binary (the run's carried mode) that
    /// can be 1 only where a loop may be carried after the first relevant loop (`v_j = Σ_{i<j} v_i`: one whose move
    /// is the sum of the moves along its rank below it, + its partner's at its level), with no
    /// breaker below it, and the log of the product of those loops (columns each at most a
    /// possible one's log factor); None when none can be.
    fn after_run(&self, m: &mut Model, vars: &Vars, none: &[Option<Lin>]) -> Option<(usize, Lin)> {
        let nl = self.levels();
        let first = self.child + 1;
        let mut possible = Lin::default();
        let mut log_k = Lin::default();
        for (r, rank) in self.tensor.ranks.iter().enumerate() {
            let [t1, t2] = rank.as_slice() else {
                continue;
            };
            for g in first..nl {
                for (j, tj) in [t1, t2].into_iter().enumerate() {
                    let Some(nu) = (self.nonunit)(vars, tj.dim, g) else {
                        continue;
                    };
                    let key = |partner| (true, 0, 0, j, g, partner);
                    let Some(y) = self.lands(m, vars, r, tj, g, first, &Lin::default(), key) else {
                        continue;
                    };
                    m.le(&Lin::var(y, 1.0).minus(&nu), 0.0);
                    self.no_breakers(m, vars, y, r, first, g);
                    possible.t.push((y, 1.0));
                    log_k
                        .t
                        .push((self.log_factor_if(m, vars, tj.dim, g, y), 1.0));
                }
            }
        }
        if possible.t.is_empty() {
            return None;
        }
        // ... and only where the innermost loop above the child is irrelevant to the tensor:
        // the first level with loops has an irrelevant dim innermost.
        let mut irrelevant_first = Lin::default();
        let nd = self.space.problem().dims.len();
        for l in first..nl {
            let z = m.col(0.0, 1.0, false, 0.0);
            let mut inner = Lin::default();
            for d in (0..nd).filter(|&d| !self.tensor.relevant(d)) {
                if let Some(c) = vars.delta[l][d] {
                    inner.t.push((c, 1.0));
                }
            }
            m.le(&Lin::var(z, 1.0).minus(&inner), 0.0);
            for n in none.iter().take(l).skip(first).flatten() {
                m.le(&Lin::var(z, 1.0).minus(n), 0.0);
            }
            irrelevant_first.t.push((z, 1.0));
        }
        let y = m.bin();
        m.le(&Lin::var(y, 1.0).minus(&possible), 0.0);
        m.le(&Lin::var(y, 1.0).minus(&irrelevant_first), 0.0);
        Some((y, log_k))
    }

    /// A column at most dim d's log factor at level g, and 0 unless binary `y` is 1.
    fn log_factor_if(&self, m: &mut Model, vars: &Vars, d: usize, g: usize, y: usize) -> usize {
        let (lfv, maxlog) = (self.log_factor)(vars, d, g);
        let u = m.col(0.0, maxlog, false, 0.0);
        m.le(&Lin::var(u, 1.0).minus(&lfv), 0.0);
        m.le(&Lin::var(u, 1.0).minus(&Lin::var(y, maxlog)), 0.0);
        u
    }
}

fn build_pattern(
    space: &Mapspace,
    opts: &ModelOptions,
    keep: &[Vec<bool>],
    slice_choices: (usize, usize),
) -> Result<Option<Pattern>, String> {
    let problem = space.problem();
    let arch = space.arch();
    let nd = problem.dims.len();
    let nl = arch.levels.len();
    let slots = space.slots();
    let mut m = Model::default();

    // Scale: energies are divided by this so that the MILP works with numbers near 1.
    let scale = {
        let e = arch.mac.energy.max(1e-3) * problem.macs() as f64;
        if e > 0.0 {
            e
        } else {
            1.0
        }
    };

    // ---- per-dim choice one-hots
    let choices: Vec<&[Vec<u64>]> = (0..nd).map(|d| space.dim_choices(d)).collect();
    if choices.iter().any(|c| c.is_empty()) {
        return Ok(None);
    }
    let mut vars = Vars {
        x: vec![],
        delta: vec![vec![None; nd]; nl],
    };
    // A one-hot over `n` values (None: one value, no column).
    let onehot = |m: &mut Model, n: usize| -> Vec<Option<usize>> {
        if n == 1 {
            return vec![None];
        }
        let cols: Vec<usize> = (0..n).map(|_| m.bin()).collect();
        m.eq(
            &Lin {
                c: 0.0,
                t: cols.iter().map(|&c| (c, 1.0)).collect(),
            },
            1.0,
        );
        m.identity.extend(&cols);
        cols.into_iter().map(Some).collect()
    };
    let sliced = sliced_dims(space, slice_choices);
    for d in 0..nd {
        if !sliced.contains(&d) {
            let cols = onehot(&mut m, choices[d].len());
            vars.x.push(DimCols::Whole(cols));
            continue;
        }
        // Slot groups: per level its temporal slot, and its X and Y slots together (the
        // spatial rule bounds their product).
        let mut groups = vec![];
        for l in 0..nl {
            let ls = space.level_slots(l);
            groups.push(vec![ls.temporal]);
            let sp: Vec<usize> = ls.x.into_iter().chain(ls.y).collect();
            if !sp.is_empty() {
                groups.push(sp);
            }
        }
        let mut slot_groups = vec![];
        let mut exps: HashMap<u64, Lin> = HashMap::new();
        for slots_g in groups {
            let mut vals: Vec<Vec<u64>> = choices[d]
                .iter()
                .map(|c| slots_g.iter().map(|&s| c[s]).collect())
                .collect();
            vals.sort_unstable();
            vals.dedup();
            let cols = onehot(&mut m, vals.len());
            for (col, v) in cols.iter().zip(&vals) {
                let product: u64 = v.iter().product();
                for (p, e) in prime_factors(product) {
                    let l = exps.entry(p).or_default();
                    match col {
                        Some(c) => l.t.push((*c, e as f64)),
                        None => l.c += e as f64,
                    }
                }
            }
            slot_groups.push(SlotGroup {
                slots: slots_g,
                values: cols.into_iter().zip(vals).collect(),
            });
        }
        // The factors multiply to the dim's bound: Σ exponents of p = the bound's exponent
        // (every value divides the bound, so its primes are the bound's).
        for &(p, e) in space.prime_factors(d) {
            m.eq(&exps[&p], e as f64);
        }
        vars.x.push(DimCols::Sliced(slot_groups));
    }
    // A per-dim quantity of a whole-encoded dim as a linear expression:
    // Σ_j value(choice j) · x[d][j].
    let per_dim = |vars: &Vars, d: usize, f: &dyn Fn(&[u64]) -> f64| -> Lin {
        let DimCols::Whole(x) = &vars.x[d] else {
            unreachable!("sliced dims need no per-choice quantity")
        };
        let mut l = Lin::default();
        for (j, ch) in choices[d].iter().enumerate() {
            let v = f(ch);
            match x[j] {
                None => l.c += v,
                Some(c) => {
                    if v != 0.0 {
                        l.t.push((c, v))
                    }
                }
            }
        }
        l
    };
    // Σ over the slots `sel` admits of g(dim d's factor there), linear in either encoding.
    let slot_sum =
        |vars: &Vars, d: usize, sel: &dyn Fn(usize) -> bool, g: &dyn Fn(u64) -> f64| match &vars.x
            [d]
        {
            DimCols::Whole(_) => per_dim(vars, d, &|c| {
                (0..c.len()).filter(|&s| sel(s)).map(|s| g(c[s])).sum()
            }),
            DimCols::Sliced(groups) => {
                let mut l = Lin::default();
                for grp in groups {
                    for (col, v) in &grp.values {
                        let val: f64 = grp
                            .slots
                            .iter()
                            .zip(v)
                            .filter(|(&s, _)| sel(s))
                            .map(|(_, &f)| g(f))
                            .sum();
                        match col {
                            None => l.c += val,
                            Some(c) => {
                                if val != 0.0 {
                                    l.t.push((*c, val))
                                }
                            }
                        }
                    }
                }
                l
            }
        };
    let slot_of = |l: usize, k: SlotKind| -> Option<usize> {
        let ls = space.level_slots(l);
        match k {
            SlotKind::Temporal => Some(ls.temporal),
            SlotKind::SpatialX => ls.x,
            SlotKind::SpatialY => ls.y,
        }
    };
    let ln = |v: u64| (v as f64).ln();
    // log factor of dim d in slot s
    let lf = |vars: &Vars, d: usize, s: usize| slot_sum(vars, d, &|x| x == s, &|f| ln(f));
    let nonunit =
        |vars: &Vars, d: usize, s: usize| slot_sum(vars, d, &|x| x == s, &|f| (f > 1) as u8 as f64);
    let can_nonunit = |d: usize, s: usize| choices[d].iter().any(|c| c[s] > 1);

    // ---- mirror symmetry: of a mapping and its mirror image (which costs the same), only the
    // one whose first mirrored dim takes the earlier factorisation (of the two dims' identical
    // lists) is kept: Σ_j j·x[d][j] ≤ Σ_j j·x[σd][j]
    if let Some(sigma) = mirror_symmetry(space) {
        let pair = (0..nd).find_map(|d| match (&vars.x[d], &vars.x[sigma[d]]) {
            (DimCols::Whole(a), DimCols::Whole(b)) if sigma[d] > d && a.len() > 1 => Some((a, b)),
            _ => None,
        });
        if let Some((a, b)) = pair {
            let mut l = Lin::default();
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                l.t.push((x.unwrap(), j as f64));
                l.t.push((y.unwrap(), -(j as f64)));
            }
            m.le(&l, 0.0);
        }
    }

    // ---- fanouts and the X/Y order rule
    for l in 0..nl {
        for k in [SlotKind::SpatialX, SlotKind::SpatialY] {
            if let Some(s) = slot_of(l, k) {
                let fan = slots[s].fanout.unwrap_or(1);
                let mut sum = Lin::default();
                for d in 0..nd {
                    sum.add(&lf(&vars, d, s), 1.0);
                }
                m.le(&sum, ln(fan) + 1e-9);
            }
        }
        if let (Some(order), Some(sx), Some(sy)) = (
            &space.spatial_rule(l).order,
            slot_of(l, SlotKind::SpatialX),
            slot_of(l, SlotKind::SpatialY),
        ) {
            for a in 0..nd {
                for b in 0..nd {
                    if order[a] > order[b] && can_nonunit(a, sx) && can_nonunit(b, sy) {
                        let l2 = nonunit(&vars, a, sx).plus(&nonunit(&vars, b, sy));
                        m.le(&l2, 1.0);
                    }
                }
            }
        }
    }

    // ---- loop order: innermost non-unit temporal dim per level (levels ≥ 1)
    let mut none: Vec<Option<Lin>> = vec![None; nl];
    for l in 1..nl {
        let s = space.level_slots(l).temporal;
        let cand: Vec<usize> = (0..nd).filter(|&d| can_nonunit(d, s)).collect();
        if cand.is_empty() {
            none[l] = Some(Lin::konst(1.0));
            continue;
        }
        let nn = m.bin();
        let mut sum = Lin::var(nn, 1.0);
        for &d in &cand {
            let c = m.bin();
            vars.delta[l][d] = Some(c);
            sum.t.push((c, 1.0));
            // δ ≤ nonunit(d); none ≤ 1 − nonunit(d)
            m.le(&Lin::var(c, 1.0).minus(&nonunit(&vars, d, s)), 0.0);
            m.le(&Lin::var(nn, 1.0).plus(&nonunit(&vars, d, s)), 1.0);
        }
        m.eq(&sum, 1.0);
        m.identity.push(nn);
        m.identity
            .extend(cand.iter().map(|&d| vars.delta[l][d].unwrap()));
        let prefix = space.temporal_prefix(l).to_vec();
        for (i, &di) in prefix.iter().enumerate() {
            let Some(ci) = vars.delta[l][di] else {
                continue;
            };
            // δ[di] ≥ nonunit(di) − Σ_{j<i} nonunit(dj); δ[di] ≤ 1 − nonunit(dj), j < i
            let mut lhs = Lin::var(ci, 1.0).minus(&nonunit(&vars, di, s));
            for &dj in &prefix[..i] {
                if can_nonunit(dj, s) {
                    lhs.add(&nonunit(&vars, dj, s), 1.0);
                    m.le(&Lin::var(ci, 1.0).plus(&nonunit(&vars, dj, s)), 1.0);
                }
            }
            m.ge(&lhs, 0.0);
        }
        for &d in &cand {
            if prefix.contains(&d) {
                continue;
            }
            for &dj in &prefix {
                if can_nonunit(dj, s) {
                    let l2 = Lin::var(vars.delta[l][d].unwrap(), 1.0).plus(&nonunit(&vars, dj, s));
                    m.le(&l2, 1.0);
                }
            }
        }
        none[l] = Some(Lin::var(nn, 1.0));
    }

    // ---- helper expressions
    let temporal_log = |vars: &Vars, l: usize| -> Lin {
        let s = space.level_slots(l).temporal;
        let mut e = Lin::default();
        for d in 0..nd {
            e.add(&lf(vars, d, s), 1.0);
        }
        e
    };
    let spatial_log_dims = |vars: &Vars, l: usize, dims: &dyn Fn(usize) -> bool| -> Lin {
        let mut e = Lin::default();
        for k in [SlotKind::SpatialX, SlotKind::SpatialY] {
            if let Some(s) = slot_of(l, k) {
                for d in (0..nd).filter(|&d| dims(d)) {
                    e.add(&lf(vars, d, s), 1.0);
                }
            }
        }
        e
    };
    // log instances used of level l
    let inst_log = |vars: &Vars, l: usize| -> Lin {
        let mut e = Lin::default();
        for l2 in l + 1..nl {
            e.add(&spatial_log_dims(vars, l2, &|_| true), 1.0);
        }
        e
    };
    let cum = |c: &[u64], l: usize| cumulative(space, c, l);

    // The factors of a product over (dim, its slots) parts, as the parts of a product
    // one-hot: per one-hot (a whole dim's, or a sliced dim's slot group's), each choice's
    // column (None: the only choice) and its product over the part's slots.
    let part_values = |vars: &Vars, parts: &[(usize, Vec<usize>)]| {
        let mut out: Vec<Vec<(Option<usize>, u64)>> = vec![];
        for (d, sl) in parts {
            match &vars.x[*d] {
                DimCols::Whole(x) => out.push(
                    choices[*d]
                        .iter()
                        .zip(x)
                        .map(|(c, &col)| (col, sl.iter().map(|&s| c[s]).product()))
                        .collect(),
                ),
                DimCols::Sliced(groups) => {
                    for grp in groups
                        .iter()
                        .filter(|g| g.slots.iter().any(|s| sl.contains(s)))
                    {
                        out.push(
                            grp.values
                                .iter()
                                .map(|(col, v)| {
                                    let q = grp
                                        .slots
                                        .iter()
                                        .zip(v)
                                        .filter(|(s, _)| sl.contains(s))
                                        .map(|(_, &f)| f)
                                        .product();
                                    (*col, q)
                                })
                                .collect(),
                        )
                    }
                }
            }
        }
        out
    };
    // One-hot over the values of a product of per-dim quantities ([`product_onehot`]).
    let product_onehot = |m: &mut Model,
                          vars: &Vars,
                          parts: &[(usize, Vec<usize>)],
                          f: &dyn Fn(u64) -> f64|
     -> Lin {
        product_onehot(m, &part_values(vars, parts), f, usize::MAX, u64::MAX).expect("no limit")
    };

    // log tile of tensor t at level l (exact: pair one-hots for two-term ranks).
    let mut tile_cache: HashMap<(usize, usize), (Lin, Vec<Lin>)> = HashMap::new();
    let mut log_tile = |m: &mut Model, vars: &Vars, t: usize, l: usize| -> (Lin, Vec<Lin>) {
        if let Some(v) = tile_cache.get(&(t, l)) {
            return v.clone();
        }
        let tensor = &problem.tensors[t];
        let mut ranks = Vec::new();
        for rank in &tensor.ranks {
            let e = match rank.as_slice() {
                [term] => {
                    let (a, d) = (term.coef, term.dim);
                    match vars.x[d] {
                        DimCols::Whole(_) => per_dim(vars, d, &|c| ln(a * (cum(c, l) - 1) + 1)),
                        // sliced: a = 1, so the log extent is the sum of the logs
                        DimCols::Sliced(_) => slot_sum(vars, d, &|s| slots[s].level <= l, &ln),
                    }
                }
                [t1, t2] => {
                    let vals = |d: usize| {
                        let mut v: Vec<u64> = choices[d].iter().map(|c| cum(c, l)).collect();
                        v.sort_unstable();
                        v.dedup();
                        v
                    };
                    let (v1, v2) = (vals(t1.dim), vals(t2.dim));
                    let ext = |a: u64, b: u64| t1.coef * (a - 1) + t2.coef * (b - 1) + 1;
                    if v1.len() == 1 || v2.len() == 1 {
                        // One side fixed: per-dim in the other.
                        if v1.len() == 1 {
                            per_dim(vars, t2.dim, &|c| ln(ext(v1[0], cum(c, l))))
                        } else {
                            per_dim(vars, t1.dim, &|c| ln(ext(cum(c, l), v2[0])))
                        }
                    } else {
                        pair_onehot(
                            m,
                            &v1,
                            &v2,
                            |a| per_dim(vars, t1.dim, &|c| (cum(c, l) == a) as u8 as f64),
                            |b| per_dim(vars, t2.dim, &|c| (cum(c, l) == b) as u8 as f64),
                            |a, b| ln(ext(a, b)),
                        )
                    }
                }
                _ => unreachable!("checked in solve"),
            };
            ranks.push(e);
        }
        let mut total = Lin::default();
        for r in &ranks {
            total.add(r, 1.0);
        }
        tile_cache.insert((t, l), (total.clone(), ranks.clone()));
        (total, ranks)
    };
    for t in &problem.tensors {
        if t.ranks.iter().any(|r| r.len() > 2) {
            return Err(format!(
                "the MILP supports ranks of at most two terms ({} has more)",
                t.name
            ));
        }
        if t.read_write && t.ranks.iter().any(|r| r.len() != 1 || r[0].coef != 1) {
            return Err("the MILP needs the read-write tensor's ranks to be single dims".into());
        }
    }

    // log distinct tiles of tensor t among the children of level l's fanout.
    let log_distinct = |m: &mut Model, vars: &Vars, t: usize, l: usize| -> Lin {
        let tensor = &problem.tensors[t];
        let mut e = Lin::default();
        for rank in &tensor.ranks {
            let dims: Vec<usize> = rank.iter().map(|x| x.dim).collect();
            let sp: Vec<usize> = [SlotKind::SpatialX, SlotKind::SpatialY]
                .iter()
                .filter_map(|&k| slot_of(l, k))
                .collect();
            let active: Vec<usize> = dims
                .iter()
                .copied()
                .filter(|&d| sp.iter().any(|&s| can_nonunit(d, s)))
                .collect();
            if active.len() <= 1 {
                for &d in &active {
                    for &s in &sp {
                        e.add(&lf(vars, d, s), 1.0);
                    }
                }
            } else {
                // Offsets of the two dims may coincide (e.g. spatial P and R with stride 2): a
                // one-hot over pairs of the dims' spatial configurations at this level gives the
                // exact number of distinct offsets.
                let (t1, t2) = (rank[0], rank[1]);
                let inner = |c: &[u64]| -> u64 {
                    slots
                        .iter()
                        .zip(c)
                        .filter(|(s, _)| s.level < l)
                        .map(|(_, f)| *f)
                        .product()
                };
                let sx = slot_of(l, SlotKind::SpatialX);
                let sy = slot_of(l, SlotKind::SpatialY);
                let key = |c: &[u64]| -> (u64, u64, u64) {
                    (inner(c), sx.map_or(1, |s| c[s]), sy.map_or(1, |s| c[s]))
                };
                let keys = |d: usize| {
                    let mut v: Vec<(u64, u64, u64)> = choices[d].iter().map(|c| key(c)).collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                };
                let offsets = |coef: u64, (cum, fx, fy): (u64, u64, u64)| -> Vec<u64> {
                    let mut o = vec![];
                    for y in 0..fy {
                        for x in 0..fx {
                            o.push(coef * (x * cum + y * cum * fx));
                        }
                    }
                    o
                };
                let (k1, k2) = (keys(t1.dim), keys(t2.dim));
                let pairs = pair_onehot(
                    m,
                    &k1,
                    &k2,
                    |a| per_dim(vars, t1.dim, &|c| (key(c) == a) as u8 as f64),
                    |b| per_dim(vars, t2.dim, &|c| (key(c) == b) as u8 as f64),
                    |a, b| {
                        let (oa, ob) = (offsets(t1.coef, a), offsets(t2.coef, b));
                        let mut all: Vec<u64> = oa
                            .iter()
                            .flat_map(|x| ob.iter().map(move |y| x + y))
                            .collect();
                        all.sort_unstable();
                        all.dedup();
                        (all.len() as f64).ln()
                    },
                );
                e.add(&pairs, 1.0);
            }
        }
        e
    };

    // Energy coefficient per counted scalar at (level l, tensor t) for an action energy.
    let coef = |l: usize, t: usize, energy: f64, outer_keeper: usize| -> f64 {
        let level = &arch.levels[l];
        energy * words_per_scalar(opts, problem, t, level.word_bits, l < outer_keeper)
            / level.block_size as f64
            / scale
    };
    // Per selected dim, its product of spatial factors above level l (the parts of a product
    // one-hot).
    let spatial_above_parts = |l: usize, dims: &dyn Fn(usize) -> bool| {
        let sl: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.level > l && s.kind != SlotKind::Temporal)
            .map(|(i, _)| i)
            .collect();
        (0..nd)
            .filter(|&d| dims(d))
            .map(|d| (d, sl.clone()))
            .collect::<Vec<_>>()
    };
    // log of the instances the energy of level l is charged for: instances used, or
    // min(used, clusters) for clustered levels; with the level when that count varies (its
    // one-hot over the counts registered in the model for `Model::activate`).
    let mut charged_cache: HashMap<usize, (Lin, Option<usize>)> = HashMap::new();
    let mut charged_log = |m: &mut Model, vars: &Vars, l: usize| -> (Lin, Option<usize>) {
        if let Some(v) = charged_cache.get(&l) {
            return v.clone();
        }
        let level = &arch.levels[l];
        let parts = spatial_above_parts(l, &|_| true);
        let e = if level.cluster_size <= 1 {
            let e = inst_log(vars, l);
            if !e.t.is_empty() {
                // the one-hot over the instance counts is built once a ceiling needs it; the
                // spatial fanouts above the level bound the count
                let most = slots
                    .iter()
                    .filter(|s| s.level > l && s.kind != SlotKind::Temporal)
                    .map(|s| s.fanout.unwrap_or(u64::MAX))
                    .fold(1u64, |a, b| a.saturating_mul(b));
                m.instance_parts
                    .insert(l, (part_values(vars, &parts), most));
            }
            e
        } else {
            let clusters = (level.instances / level.cluster_size).max(1);
            let e = product_onehot(m, vars, &parts, &|v| (v.min(clusters) as f64).ln());
            if !e.t.is_empty() && e.t.len() <= CEILING_VALUES {
                let values = e.t.iter().map(|&(g, c)| (g, c.exp())).collect();
                m.instance_values.insert(l, values);
            }
            e
        };
        let varies = !e.t.is_empty();
        let out = (e, varies.then_some(l));
        charged_cache.insert(l, out.clone());
        out
    };

    let all_temporal = {
        let mut e = Lin::default();
        for l in 0..nl {
            e.add(&temporal_log(&vars, l), 1.0);
        }
        e
    };
    let mut linear_cost = Lin::default();
    for (t, tensor) in problem.tensors.iter().enumerate() {
        let keepers: Vec<usize> = (0..nl).filter(|&l| keep[l][t]).collect();
        let outer = *keepers.last().unwrap();
        // Outputs: total partition over instances at level l = |O| × Π irrelevant spatial above.
        let part_total = |m: &mut Model, vars: &Vars, l: usize| -> Lin {
            let size = problem.tensor_size(t) as f64;
            let parts = spatial_above_parts(l, &|d| !tensor.relevant(d));
            product_onehot(m, vars, &parts, &|v| size * v as f64)
        };
        // MACs → innermost keeper.
        let k0 = keepers[0];
        let mut a = all_temporal.clone();
        for l in 0..=k0 {
            a.add(&log_distinct(&mut m, &vars, t, l), 1.0);
        }
        let charged = charged_log(&mut m, &vars, k0);
        let ch = charged.0.clone();
        let level = &arch.levels[k0];
        let count = a.plus(&ch); // total scalar accesses at k0 (charged instances)
        m.at = (k0, t);
        if tensor.read_write {
            if level.cluster_size > 1 {
                return Err(
                    "the MILP does not support clustered levels keeping the read-write tensor"
                        .into(),
                );
            }
            m.term_with_floor(
                coef(k0, t, level.update_energy, outer),
                count.clone(),
                level.update_energy / scale,
                ch.clone(),
                whole(level.update_energy / scale, &charged),
            );
            m.term(coef(k0, t, level.read_energy, outer), count.clone());
            let p = part_total(&mut m, &vars, k0);
            linear_cost.add(&p, -coef(k0, t, level.read_energy, outer));
        } else {
            m.term_with_floor(
                coef(k0, t, level.read_energy, outer),
                count,
                level.read_energy / scale,
                ch.clone(),
                whole(level.read_energy / scale, &charged),
            );
        }
        // Keeper pairs.
        for w in keepers.windows(2) {
            let (c, p) = (w[0], w[1]);
            let (lt, rank_logs) = log_tile(&mut m, &vars, t, c);
            let above = {
                let mut e = Lin::default();
                for l in c + 1..nl {
                    e.add(&temporal_log(&vars, l), 1.0);
                }
                e
            };
            // Temporal reuse: savings from the leading run of irrelevant loops.
            let mut savings = Lin::default();
            let mut reach_prev: Option<usize> = None;
            for l in c + 1..nl {
                let s = space.level_slots(l).temporal;
                let irr: Vec<usize> = (0..nd)
                    .filter(|&d| !tensor.relevant(d) && can_nonunit(d, s))
                    .collect();
                let rel: Vec<usize> = (0..nd)
                    .filter(|&d| tensor.relevant(d) && can_nonunit(d, s))
                    .collect();
                // reach: every level between c and l is transparent for t
                let reach = m.col(0.0, 1.0, false, 0.0);
                if let Some(rp) = reach_prev {
                    m.le(&Lin::var(reach, 1.0).minus(&Lin::var(rp, 1.0)), 0.0);
                    // transparency of level l−1: no relevant non-unit loop there
                    let sp = space.level_slots(l - 1).temporal;
                    for d in (0..nd).filter(|&d| tensor.relevant(d) && can_nonunit(d, sp)) {
                        m.le(&Lin::var(reach, 1.0).plus(&nonunit(&vars, d, sp)), 1.0);
                    }
                }
                reach_prev = Some(reach);
                if irr.is_empty() {
                    continue;
                }
                let prefix = space.temporal_prefix(l).to_vec();
                for &d in &irr {
                    let in_run = m.col(0.0, 1.0, false, 0.0);
                    if let Some(pos) = prefix.iter().position(|&x| x == d) {
                        for &dj in &prefix[..pos] {
                            if rel.contains(&dj) {
                                m.le(&Lin::var(in_run, 1.0).plus(&nonunit(&vars, dj, s)), 1.0);
                            }
                        }
                    } else {
                        for &dj in &prefix {
                            if rel.contains(&dj) {
                                m.le(&Lin::var(in_run, 1.0).plus(&nonunit(&vars, dj, s)), 1.0);
                            }
                        }
                        // the innermost loop must be irrelevant to t (or the level all unit)
                        let mut l2 = Lin::var(in_run, 1.0);
                        for d2 in (0..nd).filter(|&d2| !tensor.relevant(d2)) {
                            if let Some(cd) = vars.delta[l][d2] {
                                l2.t.push((cd, -1.0));
                            }
                        }
                        if let Some(nn) = &none[l] {
                            l2.add(nn, -1.0);
                        }
                        m.le(&l2, 0.0);
                    }
                    let maxlog = choices[d].iter().map(|c| ln(c[s])).fold(0.0, f64::max);
                    let wv = m.col(0.0, maxlog, false, 0.0);
                    m.le(&Lin::var(wv, 1.0).minus(&lf(&vars, d, s)), 0.0);
                    m.le(&Lin::var(wv, 1.0).minus(&Lin::var(in_run, maxlog)), 0.0);
                    m.le(&Lin::var(wv, 1.0).minus(&Lin::var(reach, maxlog)), 0.0);
                    savings.t.push((wv, 1.0));
                }
            }
            // Load modes: whole tiles (with the run's reuse), or sliding windows. Timeloop's
            // walk (eval::timeloop_loads) also loads only the new part at the step of a loop j
            // outside the innermost one when `v_j = v1 + Σ_{i<j} v_i` (the window carried
            // across the inner loops' wrap-around): each mode is a lower bound over the loop
            // orders of its class (innermost dim per level) with such loops where they are
            // possible ([`WindowCarry`]).
            let mut modes: Vec<(Option<usize>, Vec<Lin>)> = vec![];
            let ns = lt.clone().plus(&above).minus(&savings);
            modes.push((None, vec![ns.clone()]));
            let carry = WindowCarry {
                space,
                tensor,
                child: c,
                moves: &|vars: &Vars, d: usize, coef: u64, g: usize| {
                    let s = space.level_slots(g).temporal;
                    per_dim(vars, d, &|ch| {
                        if ch[s] <= 1 {
                            return 0.0;
                        }
                        let inner: u64 = slots
                            .iter()
                            .enumerate()
                            .filter(|(_, sl)| {
                                sl.level < g || (sl.level == g && sl.kind != SlotKind::Temporal)
                            })
                            .map(|(i, _)| ch[i])
                            .product();
                        (coef * inner) as f64
                    })
                },
                nonunit: &|vars: &Vars, d: usize, g: usize| {
                    let s = space.level_slots(g).temporal;
                    can_nonunit(d, s).then(|| nonunit(vars, d, s))
                },
                log_factor: &|vars: &Vars, d: usize, g: usize| {
                    let s = space.level_slots(g).temporal;
                    let maxlog = choices[d].iter().map(|c| ln(c[s])).fold(0.0, f64::max);
                    (lf(vars, d, s), maxlog)
                },
                possible: tensor
                    .ranks
                    .iter()
                    .map(|rank| carry_possible(space, rank, c))
                    .collect(),
            };
            // The run's mode when a window loop may be carried after the first relevant loop:
            // at least half of it (the first relevant loop's own steps reload: docs/model.md).
            // The run's mode when loops may be carried after the first relevant loop a: with
            // K the product of those loops, loads ≥ T·steps/run · (1 − 1/N_a + 1/(N_a·K)) ≥
            // T·steps/run · (1 + 1/K) / 2 (N_a ≥ 2).
            let carried_run = carry.after_run(&mut m, &vars, &none);
            if let Some((y, log_k)) = carried_run {
                let half = ns.clone().plus(&Lin::konst(-2f64.ln()));
                modes.push((Some(y), vec![half.clone(), half.minus(&log_k)]));
            }
            for (r, rank) in tensor.ranks.iter().enumerate() {
                if rank.len() != 2 {
                    continue;
                }
                for term in rank {
                    let d = term.dim;
                    for lam in c + 1..nl {
                        let Some(dl) = vars.delta[lam][d] else {
                            continue;
                        };
                        let s = space.level_slots(lam).temporal;
                        let y = m.bin();
                        m.le(&Lin::var(y, 1.0).minus(&Lin::var(dl, 1.0)), 0.0);
                        for l2 in c + 1..lam {
                            if let Some(nn) = &none[l2] {
                                m.le(&Lin::var(y, 1.0).minus(nn), 0.0);
                            }
                        }
                        // log B1 and log(1 − 1/B1) of the sliding loop, log shift
                        let lb1 = lf(&vars, d, s);
                        let l1m = per_dim(&vars, d, &|ch| {
                            if ch[s] > 1 {
                                (1.0 - 1.0 / ch[s] as f64).ln()
                            } else {
                                -OFF
                            }
                        });
                        let lshift = per_dim(&vars, d, &|ch| {
                            let inner: u64 = slots
                                .iter()
                                .enumerate()
                                .filter(|(i, sl)| sl.level < lam || (sl.level == lam && *i != s))
                                .map(|(i, _)| ch[i])
                                .product();
                            ln(term.coef * inner)
                        });
                        // Loops that may be carried after this one: their factors come off the
                        // reloads (the whole tile once per Π of the loops outside all of them).
                        let carried = carry.members(&mut m, &vars, r, term, lam);
                        // With K the product of the loops carried after this one (placed right
                        // after it: the most weight), loads ≥ T·steps/(B1·K) +
                        // D·steps·(1 − 1/(B1·K)), and 1 − 1/(B1·K) ≥ 1 − 1/B1 + [K ≥ 2]/(2·B1)
                        // + [K ≥ 4]/(4·B1).
                        let t1 = above.clone().minus(&lb1).plus(&lt).minus(&carried);
                        let d_steps = above.clone().plus(&lt).minus(&rank_logs[r]).plus(&lshift);
                        let t2 = d_steps.clone().plus(&l1m);
                        let mut parts = vec![t1, t2];
                        if !carried.t.is_empty() {
                            // K's factors count only with the parts they bring: without y2 no
                            // loop is carried (K = 1), without y4 K ≤ 4.
                            let (lo, hi) = lin_range(&carried, &m);
                            let most = hi.max(-lo).max(0.0) + 1.0;
                            for (k, cap) in [(2.0f64, 0.0), (4.0, 4f64.ln())] {
                                let yk = m.bin();
                                m.le(&carried.clone().minus(&Lin::var(yk, most)), cap);
                                let part = d_steps.clone().minus(&lb1);
                                parts.push(part.plus(&Lin::konst(-k.ln())).switched(yk));
                            }
                        }
                        modes.push((Some(y), parts));
                    }
                }
            }
            if modes.len() > 1 {
                // Exactly one load mode.
                modes[0].0 = Some(m.bin());
                let sum = Lin {
                    c: 0.0,
                    t: modes.iter().map(|(y, _)| (y.unwrap(), 1.0)).collect(),
                };
                m.eq(&sum, 1.0);
            }
            // Consumers of the loads.
            let mut distinct = Lin::default();
            for l in c + 1..=p {
                distinct.add(&log_distinct(&mut m, &vars, t, l), 1.0);
            }
            let charged_c = charged_log(&mut m, &vars, c);
            let charged_p = charged_log(&mut m, &vars, p);
            let (ch_c, ch_p) = (charged_c.0.clone(), charged_p.0.clone());
            let (lc, lp) = (&arch.levels[c], &arch.levels[p]);
            // (level, coefficient, multiplier, floor energy when the count is at least one
            // vector, charged instances: their log and the level when they vary)
            let mut consumers: Vec<(usize, f64, Lin, f64, (Lin, Option<usize>))> = vec![];
            if tensor.read_write {
                consumers.push((
                    c,
                    coef(c, t, lc.write_energy, outer),
                    ch_c.clone(),
                    0.0,
                    Default::default(),
                ));
                consumers.push((
                    p,
                    coef(p, t, lp.update_energy, outer),
                    ch_p.clone().plus(&distinct),
                    lp.update_energy / scale,
                    charged_p.clone(),
                ));
                consumers.push((
                    p,
                    coef(p, t, lp.read_energy, outer),
                    ch_p.clone().plus(&distinct),
                    0.0,
                    Default::default(),
                ));
                let pc = part_total(&mut m, &vars, c);
                linear_cost.add(&pc, -coef(c, t, lc.write_energy, outer));
                let pp = part_total(&mut m, &vars, p);
                linear_cost.add(&pp, -coef(p, t, lp.read_energy, outer));
            } else {
                consumers.push((
                    c,
                    coef(c, t, lc.write_energy, outer),
                    ch_c.clone(),
                    lc.write_energy / scale,
                    charged_c.clone(),
                ));
                consumers.push((
                    p,
                    coef(p, t, lp.read_energy, outer),
                    ch_p.clone().plus(&distinct),
                    lp.read_energy / scale,
                    charged_p.clone(),
                ));
            }
            let gate = |a: Lin, y: &Option<usize>| match y {
                Some(y) => a.switched(*y),
                None => a,
            };
            for (at, k, mult, floor_k, charged) in &consumers {
                m.at = (*at, t);
                for (y, parts) in &modes {
                    let a = |part: &Lin| gate(part.clone().plus(mult), y);
                    if parts.len() == 1 {
                        // One part: its count is at least one vector access per instance.
                        m.term_with_floor(
                            *k,
                            a(&parts[0]),
                            *floor_k,
                            gate(charged.0.clone(), y),
                            whole(*floor_k, charged),
                        );
                    } else {
                        let ws: Vec<usize> = parts
                            .iter()
                            .filter_map(|part| m.term(*k, a(part)))
                            .collect();
                        if ws.len() > 1 {
                            match whole(*floor_k, charged) {
                                Whole::Fixed(unit) if unit > 0.0 && unit.is_finite() => {
                                    m.multi.push(MultiCount::new(ws, unit, None));
                                }
                                Whole::PerInstance { charged, level } if *floor_k > 0.0 => {
                                    let per_instance = Some((charged.clone(), level));
                                    m.multi.push(MultiCount::new(ws, *floor_k, per_instance));
                                }
                                _ => {}
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- capacities
    for (l, level) in arch.levels.iter().enumerate() {
        let Some(cap) = level.capacity_words() else {
            continue;
        };
        if level.dummy {
            continue;
        }
        let kept: Vec<usize> = (0..problem.tensors.len()).filter(|&t| keep[l][t]).collect();
        let outer_of = |t: usize| (0..nl).rev().find(|&x| keep[x][t]).unwrap();
        let mut items = vec![];
        for &t in &kept {
            let (lt, _) = log_tile(&mut m, &vars, t, l);
            let words_per = words_per_scalar(opts, problem, t, level.word_bits, l < outer_of(t));
            // each tensor alone must fit
            m.le(&lt, (cap as f64 / words_per).ln() + 1e-9);
            items.push((t, words_per, lt));
        }
        if items.len() > 1 {
            let mut sum = Lin::default();
            for (t, wp, lt) in items {
                let u = m.col(0.0, f64::INFINITY, false, 0.0);
                let e = m.exponent(&lt);
                m.cap_terms.push(ExpTerm {
                    coef: wp,
                    a: lt,
                    w: u,
                    e,
                    at: (l, t),
                });
                sum.t.push((u, 1.0));
            }
            m.le(&sum, cap as f64);
        }
    }

    // Linear parts of the objective.
    for &(i, v) in &linear_cost.t {
        m.col_cost[i] += v;
    }
    m.cost_const = linear_cost.c
        + problem.macs() as f64 * crate::eval::mac_energy_per_op(arch, problem, opts) / scale;

    // A-priori tangents: at every term's exponent range midpoint grid (coarse).
    let grid = |m: &mut Model, t: &ExpTerm| {
        let (lo, hi) = lin_range(&t.a, m);
        let hi = hi.min(80.0);
        let lo = lo.max(hi - 40.0);
        let n = (((hi - lo) / 3.0).ceil() as usize).clamp(1, 6);
        for i in 0..=n {
            m.tangent(t, lo + (hi - lo) * i as f64 / n as f64);
        }
    };
    for t in m.terms.clone() {
        grid(&mut m, &t);
    }
    for t in m.cap_terms.clone() {
        grid(&mut m, &t);
    }
    for t in m.floors.clone() {
        grid(&mut m, &t);
    }
    // One-hot lifting of every term.
    for t in m
        .terms
        .iter()
        .chain(&m.cap_terms)
        .chain(&m.floors)
        .cloned()
        .collect::<Vec<_>>()
    {
        m.lift(&t);
    }

    Ok(Some(Pattern {
        m,
        vars,
        keep: keep.to_vec(),
        scale,
        seen: Default::default(),
        best: None,
        bound: f64::NEG_INFINITY,
        floor: f64::INFINITY,
        done: false,
        built: true,
        rounds: 0,
        solves: 0,
        last_solve: 0.0,
    }))
}

impl Pattern {
    /// A pattern not built yet: its keep pattern and its completion bound.
    fn pending(keep: Vec<Vec<bool>>, bound: f64) -> Pattern {
        Pattern {
            m: Model::default(),
            vars: Vars {
                x: vec![],
                delta: vec![],
            },
            keep,
            scale: 1.0,
            seen: Default::default(),
            best: None,
            bound,
            floor: f64::INFINITY,
            done: false,
            built: false,
            rounds: 0,
            solves: 0,
            last_solve: 0.0,
        }
    }
    /// Builds the pattern's model and starts it from the completion bounds; a pattern with no
    /// valid mapping is closed (bound infinite).
    fn build(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        slice_choices: (usize, usize),
    ) -> Result<(), String> {
        if let Some(mut p) = build_pattern(space, opts, &self.keep, slice_choices)? {
            if p.start_from_completion_bounds(space, opts) {
                *self = p;
                return Ok(());
            }
        }
        self.built = true;
        self.done = true;
        self.bound = f64::INFINITY;
        Ok(())
    }
    /// Starts the pattern from the enumeration's completion bounds
    /// ([`crate::search::choice_bounds`]): its bound is that of all its mappings; a
    /// factorisation of a dim encoded whole that no completion makes valid is excluded; and the
    /// objective is at least the bound of the factorisation each such dim takes, a row linear
    /// in the dim's one-hot, so that the LP's bound never falls below the least of them and
    /// rises to a factorisation's bound once the branch and bound fixes it. False when no
    /// mapping of the pattern is valid.
    fn start_from_completion_bounds(&mut self, space: &Mapspace, opts: &ModelOptions) -> bool {
        let dims: Vec<usize> = (self.vars.x.iter().enumerate())
            .filter(|(_, x)| matches!(x, DimCols::Whole(c) if c.len() > 1))
            .map(|(d, _)| d)
            .collect();
        let (whole, per_dim) = crate::search::choice_bounds(space, &self.keep, opts, &dims);
        let Some(whole) = whole else {
            return false;
        };
        self.bound = whole * (1.0 - SHAVE);
        if std::env::var("QMAP_MILP_PROFILE").is_ok() {
            let range = |b: &Vec<Option<f64>>| {
                let v = b.iter().flatten();
                let lo = v.clone().copied().fold(f64::INFINITY, f64::min);
                (lo, v.copied().fold(0.0, f64::max))
            };
            eprintln!(
                "completion bounds: pattern {whole:.6e}, dims {:?}: {:?}",
                dims,
                per_dim.iter().map(range).collect::<Vec<_>>()
            );
        }
        for (&d, bounds) in dims.iter().zip(&per_dim) {
            let DimCols::Whole(cols) = &self.vars.x[d] else {
                unreachable!("only dims encoded whole are bounded")
            };
            let mut floor = vec![];
            for (col, b) in cols.iter().zip(bounds) {
                let col = col.expect("a dim with several factorisations has a column each");
                match b {
                    None => self.m.col_hi[col] = 0.0,
                    Some(b) => floor.push((col, b / self.scale * (1.0 - SHAVE))),
                }
            }
            if floor.is_empty() {
                return false;
            }
            self.m.objective_floors.push(floor);
        }
        true
    }
    /// Splits the pattern's mapspace in two along its largest factorisation one-hot that has
    /// two or more columns still free: this pattern keeps the second half of those columns,
    /// the returned one (with every cut so far, which stays valid) the first. Every mapping
    /// takes exactly one column of the one-hot, so the two halves cover the pattern. None when
    /// no one-hot is left to split.
    fn split(&mut self) -> Option<Pattern> {
        let mut factorisation = std::collections::HashSet::new();
        for dim in &self.vars.x {
            match dim {
                DimCols::Whole(cols) => factorisation.extend(cols.iter().flatten()),
                DimCols::Sliced(groups) => {
                    factorisation.extend(groups.iter().flat_map(|g| &g.values).flat_map(|v| v.0))
                }
            }
        }
        let cols = self
            .m
            .groups
            .iter()
            .filter(|g| g.iter().all(|i| factorisation.contains(i)))
            .map(|g| {
                g.iter()
                    .copied()
                    .filter(|&i| self.m.col_hi[i] > 0.5)
                    .collect::<Vec<usize>>()
            })
            .rev() // ties: the first such one-hot
            .max_by_key(|c| c.len())?;
        if cols.len() < 2 {
            return None;
        }
        let mut other = self.clone();
        other.rounds = 0;
        other.solves = 0;
        let half = cols.len() / 2;
        for (j, &c) in cols.iter().enumerate() {
            if j < half {
                self.m.col_hi[c] = 0.0;
            } else {
                other.m.col_hi[c] = 0.0;
            }
        }
        Some(other)
    }
    /// One candidate round: solves the MILP (only mappings cheaper than `cutoff` when given),
    /// raises the bound, evaluates the candidate and adds its tangents (and a no-good cut when
    /// the model undervalues it). Returns false when the time limit stopped the solve.
    fn step(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        so: &SolveOptions,
        time_left: Option<f64>,
        cutoff: Option<f64>,
    ) -> Result<bool, String> {
        let problem = space.problem();
        let scale = self.scale;
        let m = &mut self.m;
        let cutoff = match (&self.best, cutoff) {
            (Some(b), Some(c)) => Some(b.1.energy_pj.min(c)),
            (Some(b), None) => Some(b.1.energy_pj),
            (None, c) => c,
        };
        let t_solve = Instant::now();
        let (status, x, obj_bound, improving) = run_highs(
            m,
            time_left,
            cutoff.map(|c| c / scale * (1.0 - so.gap / 2.0)),
        )?;
        self.solves += 1;
        self.last_solve = t_solve.elapsed().as_secs_f64();
        if std::env::var("QMAP_MILP_PROFILE").is_ok() {
            eprintln!(
                "milp: {} cols ({} binary), {} rows, {} terms: {:?} in {:.3} s",
                m.col_lo.len(),
                m.col_int.iter().filter(|b| **b).count(),
                m.rows.len(),
                m.terms.len(),
                status,
                t_solve.elapsed().as_secs_f64()
            );
        }
        match status {
            HighsModelStatus::Infeasible => {
                // Nothing beats the cutoff (or nothing is feasible at all) in this pattern.
                self.bound = cutoff.map_or(f64::INFINITY, |c| c * (1.0 - so.gap / 2.0));
                self.bound = self.bound.min(self.floor);
                self.done = true;
                return Ok(true);
            }
            HighsModelStatus::Optimal => {}
            HighsModelStatus::ReachedTimeLimit => {
                // An interrupted solve may report no finite dual bound: then it proves nothing.
                let lb = Some(obj_bound * scale)
                    .filter(|b| b.is_finite())
                    .unwrap_or(f64::NEG_INFINITY);
                self.bound = self.bound.max(lb).min(self.floor);
                // What the interrupted search found still counts for the incumbent.
                for y in improving.iter().chain(&x) {
                    offer(space, opts, &self.vars, &self.keep, &mut self.best, y, lb)?;
                }
                return Ok(false);
            }
            other => return Err(format!("HiGHS ended with status {other:?}")),
        }
        let Some(mut x) = x else {
            return Err("HiGHS returned no solution".into());
        };
        let lb = obj_bound * scale;
        self.bound = self.bound.max(lb).min(self.floor);
        self.rounds += 1;
        let (ev, resolved) = offer(space, opts, &self.vars, &self.keep, &mut self.best, &x, lb)?;
        let model_value = model_value(m, &x) * scale;
        if std::env::var("QMAP_MILP_PROFILE").is_ok() {
            eprintln!(
                "  round: bound {lb:.6e} model {model_value:.6e} evaluator {:.6e} valid {}",
                ev.energy_pj, ev.valid
            );
            if std::env::var("QMAP_MILP_PROFILE").is_ok_and(|v| v == "2") {
                let (mapping, _) = best_in_class(space, opts, &self.vars, &self.keep, &x);
                eprint!(
                    "{}",
                    crate::report::loop_nest(&mapping, space.arch(), problem)
                );
            }
            // Per (level, tensor): the model's terms against the evaluator's energy (Outputs'
            // linear parts, the subtracted partitions, are not in the terms).
            if ev.valid {
                for (l, ls) in ev.levels.iter().enumerate() {
                    for (t, tensor) in problem.tensors.iter().enumerate() {
                        let Some(ts) = ls.tensors.iter().find(|ts| ts.name == tensor.name) else {
                            continue;
                        };
                        let mv: f64 = term_values(m, &x)
                            .iter()
                            .filter(|(at, _)| *at == (l, t))
                            .map(|(_, v)| v * scale)
                            .sum();
                        if (mv - ts.energy_pj).abs() > 1e-7 * ev.energy_pj {
                            eprintln!(
                                "    {} {}: terms {mv:.6e} evaluator {:.6e} (r {} f {} u {})",
                                ls.name,
                                tensor.name,
                                ts.energy_pj,
                                ts.reads_per_instance,
                                ts.fills_per_instance,
                                ts.updates_per_instance
                            );
                        }
                    }
                }
            }
        }
        // The improving solutions HiGHS found on the way are mappings too: each may be a better
        // incumbent, and tangents there tighten the model where the search has been.
        let key = m.identity_key(&x);
        let mut extra_keys = vec![];
        for y in &improving {
            let k = m.identity_key(y);
            if k == key || extra_keys.contains(&k) {
                continue;
            }
            extra_keys.push(k);
            offer(space, opts, &self.vars, &self.keep, &mut self.best, y, lb)?;
            m.tangents_at(y);
        }
        let ub = self
            .best
            .as_ref()
            .map_or(f64::INFINITY, |b| b.1.energy_pj)
            .min(cutoff.unwrap_or(f64::INFINITY));
        let lb = lb.min(self.floor);
        if ub.is_finite() && (ub - lb) <= so.gap * ub {
            self.bound = lb;
            self.done = true;
            return Ok(true);
        }
        // Tangents at the candidate for every term (as if each mode were active).
        m.tangents_at(&x);
        // Deferred ceilings that this candidate's value depends on: make them exact.
        if ev.valid && model_value < ev.energy_pj * (1.0 - so.gap * 0.5) {
            for i in 0..m.deferred.len() {
                let d = &m.deferred[i];
                if d.active {
                    continue;
                }
                let a = d.per_instance.value(&x);
                let v = d.per_vector * a.exp();
                if a > -OFF / 2.0 && (v - v.round()).abs() > 1e-9 * v.max(1.0) {
                    m.activate(i);
                }
            }
            for i in 0..m.multi.len() {
                if m.multi[i].r.is_some() || m.multi[i].dropped {
                    continue;
                }
                let (v, _, on) = m.multi_accesses(&m.multi[i], &x);
                if on && (v - v.round()).abs() > 1e-9 * v.max(1.0) {
                    m.activate_multi(i);
                }
            }
            // Columns added just now: the instance one-hots take their values at the candidate
            // (the new integer counts stay 0; only the tangents below read them).
            let old = x.len();
            if m.col_lo.len() > old {
                x.resize(m.col_lo.len(), 0.0);
                let charged = m
                    .deferred
                    .iter()
                    .filter(|d| d.active)
                    .map(|d| (&d.charged, d.level));
                let multi = m
                    .multi
                    .iter()
                    .filter(|mc| mc.r.is_some())
                    .filter_map(|mc| mc.per_instance.as_ref().map(|(c, l)| (c, *l)));
                for (charged, level) in charged.chain(multi) {
                    let n = charged.value(&x).exp();
                    for &(g, v) in m.instance_values.get(&level).into_iter().flatten() {
                        if g >= old && (v / n - 1.0).abs() < 1e-6 {
                            x[g] = 1.0;
                        }
                    }
                }
            }
        }
        // Ceilings only at the candidate's instance count (and load mode).
        for t in m.ceilings.clone() {
            let a = t.a.value(&x);
            if a > -OFF / 2.0 {
                m.tangent(&t, a);
            }
        }
        // The MILP may still value this mapping below the evaluator (ceilings, coinciding
        // offsets) or it may be invalid: exclude it.
        let exact_now = ev.valid && model_value >= ev.energy_pj * (1.0 - so.gap * 0.5);
        if ev.valid && !exact_now && !resolved {
            // Excluded without its best loop order: its model value still bounds it.
            self.floor = self.floor.min(model_value);
            self.bound = self.bound.min(self.floor);
        }
        if !ev.valid || !exact_now || !self.seen.insert(key.clone()) {
            let mut l = Lin::default();
            let mut ones = 0.0;
            for (&i, &b) in m.identity.iter().zip(&key) {
                if b == 1 {
                    l.t.push((i, 1.0));
                    ones += 1.0;
                } else {
                    l.t.push((i, -1.0));
                }
            }
            m.le(&l, ones - 1.0);
        }
        Ok(true)
    }
}

/// Evaluates the best mapping of MILP solution `y`'s loop order class ([`best_in_class`]) and
/// keeps it in `best` if it beats it; fails if the MILP's bound `lb` exceeds its evaluator
/// value (the cross-check). Returns the evaluation and whether it is the class's best.
fn offer(
    space: &Mapspace,
    opts: &ModelOptions,
    vars: &Vars,
    keep: &[Vec<bool>],
    best: &mut Option<(Mapping, Evaluation)>,
    y: &[f64],
    lb: f64,
) -> Result<(Evaluation, bool), String> {
    let (mapping, resolved) = best_in_class(space, opts, vars, keep, y);
    let ev = evaluate(space.problem(), space.arch(), &mapping, opts);
    if !ev.valid {
        return Ok((ev, resolved));
    }
    if lb > ev.energy_pj * (1.0 + 1e-7) {
        return Err(format!(
            "internal error: the MILP bound {lb} pJ exceeds the evaluator's {} pJ for a mapping it found; the model overestimates a cost",
            ev.energy_pj
        ));
    }
    if best.as_ref().is_none_or(|b| ev.energy_pj < b.1.energy_pj) {
        *best = Some((mapping, ev.clone()));
    }
    Ok((ev, resolved))
}

/// Most loop orders [`best_in_class`] evaluates for one class.
const CLASS_ORDERS: usize = 40_320;

/// The cheapest mapping of MILP solution `x`'s loop order class: its factorisation and keep
/// pattern, each level's innermost loop (or permutation prefix) as the MILP chose it, and the
/// other loops of each level in every order (the canonical order of [`candidate`] first, so
/// that ties keep it). The MILP cannot tell these orders apart (Timeloop's window carried
/// across a wrap-around, `eval::timeloop_loads`, depends on more than the innermost loops),
/// so a class is excluded only once its best order is known. True when every order was
/// evaluated (at most [`CLASS_ORDERS`]); else the canonical order alone.
fn best_in_class(
    space: &Mapspace,
    opts: &ModelOptions,
    vars: &Vars,
    keep: &[Vec<bool>],
    x: &[f64],
) -> (Mapping, bool) {
    let canonical = candidate(space, vars, keep, x);
    // Per level, the position from which its loops are free, and their permutations.
    let mut free: Vec<(usize, Vec<Vec<Loop>>)> = vec![];
    let mut total = 1usize;
    for (l, lm) in canonical.levels.iter().enumerate() {
        if !space.orders_enumerated(l) {
            continue;
        }
        let prefix = space.temporal_prefix(l);
        let nonunit: Vec<&Loop> = lm.temporal.iter().filter(|lp| lp.factor > 1).collect();
        let fixed = nonunit
            .iter()
            .take_while(|lp| prefix.contains(&lp.dim))
            .count()
            .max(1)
            .min(nonunit.len());
        let rest = &nonunit[fixed..];
        if rest.len() < 2 {
            continue;
        }
        let perms: Vec<Vec<Loop>> = rest
            .iter()
            .map(|lp| **lp)
            .permutations(rest.len())
            .collect();
        total = total.saturating_mul(perms.len());
        free.push((l, perms));
    }
    if free.is_empty() {
        return (canonical, true);
    }
    if total > CLASS_ORDERS {
        return (canonical, false);
    }
    let mut ev = crate::eval::Evaluator::new(space.problem(), space.arch());
    let mut best = (canonical.clone(), ev.score(&canonical, opts).map(|s| s.0));
    if best.1.is_none() {
        // Invalid: so is every order of the class.
        return (canonical, true);
    }
    let mut m = canonical.clone();
    let mut idx = vec![0usize; free.len()];
    loop {
        for ((l, perms), &i) in free.iter().zip(&idx) {
            let lm = &canonical.levels[*l];
            let head = lm.temporal.len() - perms[i].len();
            m.levels[*l].temporal.truncate(head);
            m.levels[*l].temporal.extend_from_slice(&perms[i]);
        }
        if let Some((e, _)) = ev.score(&m, opts) {
            if best.1.is_none_or(|b| e < b) {
                best = (m.clone(), Some(e));
            }
        }
        // Next combination.
        let mut k = 0;
        while k < idx.len() {
            idx[k] += 1;
            if idx[k] < free[k].1.len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
        if k == idx.len() {
            break;
        }
    }
    (best.0, true)
}

/// Range of a linear expression over its columns' bounds.
fn lin_range(l: &Lin, m: &Model) -> (f64, f64) {
    let (mut lo, mut hi) = (l.c, l.c);
    for &(i, v) in &l.t {
        let (a, b) = (m.col_lo[i], m.col_hi[i].min(1e3));
        if v >= 0.0 {
            lo += v * a;
            hi += v * b;
        } else {
            lo += v * b;
            hi += v * a;
        }
    }
    (lo, hi)
}

/// The model's own value of a solution: exact exp of every term plus the linear parts.
fn model_value(m: &Model, x: &[f64]) -> f64 {
    let mut v = m.cost_const;
    let rounding: Vec<usize> = m.multi.iter().filter_map(|mc| mc.r).collect();
    for (i, c) in m.col_cost.iter().enumerate() {
        if *c != 0.0 && !m.terms.iter().any(|t| t.w == i) && !rounding.contains(&i) {
            v += c * x[i];
        }
    }
    v + term_values(m, x).iter().map(|(_, v)| v).sum::<f64>()
}

/// The model's exact value at `x` of each term, with the (level, tensor) it belongs to: its
/// exp, floors and ceilings, and for a multi-part count made exact, what rounding the parts'
/// sum up adds (on its first part).
fn term_values(m: &Model, x: &[f64]) -> Vec<((usize, usize), f64)> {
    let mut out = vec![];
    for mc in m.multi.iter().filter(|mc| mc.r.is_some()) {
        let (accesses, sum, _) = m.multi_accesses(mc, x);
        let unit = sum / accesses;
        let first = m.terms.iter().find(|t| t.w == mc.ws[0]);
        if let (true, Some(t)) = (unit.is_finite(), first) {
            out.push((
                t.at,
                (unit * (accesses * (1.0 - SHAVE)).ceil() - sum).max(0.0),
            ));
        }
    }
    for t in &m.terms {
        let a = t.a.value(x);
        if a > -OFF / 2.0 {
            let floor = m
                .floors
                .iter()
                .filter(|f| f.w == t.w)
                .map(|f| f.coef * f.a.value(x).exp())
                .fold(0.0, f64::max);
            let term = term_value(m, t, (t.coef * a.exp()).max(floor));
            // w ≥ Σ_n unit_n · z_n, z_n the whole vector accesses at instance count n.
            let whole: f64 = m.ceiling_units.get(&t.w).map_or(0.0, |units| {
                units
                    .iter()
                    .map(|&(i, u)| {
                        let c = &m.ceilings[i];
                        let a = c.a.value(x);
                        if a > -OFF / 2.0 {
                            u * (c.coef * a.exp() * (1.0 - SHAVE)).ceil()
                        } else {
                            0.0
                        }
                    })
                    .sum()
            });
            out.push((t.at, term.max(whole)));
        }
    }
    out
}

/// A term's value from its exponent's: rounded up to whole vector accesses when it has a unit.
fn term_value(m: &Model, t: &ExpTerm, v: f64) -> f64 {
    match m.units.get(&t.w) {
        Some(&u) => u * (v * (1.0 - SHAVE) / u).ceil(),
        None => v,
    }
}

/// Under a time limit the MILP starts from the best of `SEED_SAMPLES` valid random mappings,
/// drawn in at most `SEED_SHARE` of the limit (a few milliseconds on the shipped layers).
const SEED_SAMPLES: u64 = 2_000;
const SEED_SHARE: f64 = 0.05;

/// HiGHS's MIP feasibility tolerance (its default), in objective units it is also the margin
/// by which it prunes nodes against an incumbent, so the bounds it reports are discounted by it.
const HIGHS_MIP_FEASTOL: f64 = 1e-6;

/// HiGHS's `presolve_rule_off` bit of its probing rule (`kPresolveRuleProbing`).
const PRESOLVE_PROBING: i32 = 1 << 15;

fn run_highs(m: &Model, time_limit: Option<f64>, cutoff: Option<f64>) -> Result<Solved, String> {
    // HiGHS's presolve occasionally ends in a numerical error on these models; the same
    // model without presolve is then solved as before (slower, not different).
    run_highs_with(m, time_limit, cutoff, true)
        .or_else(|_| run_highs_with(m, time_limit, cutoff, false))
}

fn run_highs_with(
    m: &Model,
    time_limit: Option<f64>,
    cutoff: Option<f64>,
    presolve: bool,
) -> Result<Solved, String> {
    let mut pb = RowProblem::default();
    let cols: Vec<highs::Col> = (0..m.col_lo.len())
        .map(|i| {
            if m.col_int[i] {
                pb.add_integer_column(m.col_cost[i], m.col_lo[i]..=m.col_hi[i])
            } else {
                pb.add_column(m.col_cost[i], m.col_lo[i]..=m.col_hi[i])
            }
        })
        .collect();
    // The objective's columns: the cutoff and the completion-bound floors are rows over them.
    let objective: Vec<(usize, f64)> = (m.col_cost.iter().enumerate())
        .filter(|(_, v)| **v != 0.0)
        .map(|(i, v)| (i, *v))
        .collect();
    let mut rows: Vec<(f64, f64, Vec<(usize, f64)>)> = vec![];
    if let Some(c) = cutoff {
        // Only mappings that beat the incumbent by more than the tolerance are of interest.
        rows.push((f64::NEG_INFINITY, c - m.cost_const, objective.clone()));
    }
    // The objective is at least the completion bound of each dim's factorisation.
    for floor in &m.objective_floors {
        let mut l = Lin {
            c: 0.0,
            t: objective.clone(),
        };
        l.t.extend(floor.iter().map(|&(i, b)| (i, -b)));
        rows.push((-m.cost_const, f64::INFINITY, l.merged()));
    }
    for (lo, hi, t) in rows.iter().chain(&m.rows) {
        let (lo, hi, t) = relax_tiny(m, *lo, *hi, t);
        let factors: Vec<(highs::Col, f64)> = t.iter().map(|&(i, v)| (cols[i], v)).collect();
        match (lo.is_finite(), hi.is_finite()) {
            (true, true) => pb.add_row(lo..=hi, factors),
            (true, false) => pb.add_row(lo.., factors),
            (false, true) => pb.add_row(..=hi, factors),
            (false, false) => {}
        }
    }
    let mut model = pb
        .try_optimise(Sense::Minimise)
        .map_err(|e| format!("HiGHS rejected the model: {e:?}"))?;
    if std::env::var("QMAP_HIGHS_LOG").is_ok() {
        // Debug switch: HiGHS's own log of every solve (presolve, B&B nodes, timing).
        model.set_option("output_flag", true);
        model.set_option("log_to_console", true);
    } else {
        model.make_quiet();
    }
    model.set_option("threads", 1);
    model.set_option("mip_rel_gap", 0.0);
    model.set_option("mip_feasibility_tolerance", HIGHS_MIP_FEASTOL);
    model.set_option("mip_abs_gap", 0.0);
    model.set_option("mip_allow_restart", false);
    // Presolve shrinks the dense one-hot rows a lot (the B&B is then several times faster),
    // but its probing alone costs seconds on dims with a thousand factorisations: probing off.
    model.set_option("presolve", if presolve { "on" } else { "off" });
    model.set_option("presolve_rule_off", PRESOLVE_PROBING);
    model.set_option("mip_heuristic_run_rins", false);
    model.set_option("mip_heuristic_run_rens", false);
    model.set_option("mip_heuristic_run_root_reduced_cost", false);
    model.set_option("mip_heuristic_run_feasibility_jump", false);
    if let Some(t) = time_limit {
        model.set_option("time_limit", t.max(0.01));
    }
    // Debug switch: the model as HiGHS has it (after `relax_tiny`), in the file's format (`.lp`,
    // `.mps`), overwritten by each solve: the last solve's model is left.
    if let Some(path) = std::env::var_os("QMAP_MILP_WRITE")
        .and_then(|p| std::ffi::CString::new(p.to_string_lossy().into_owned()).ok())
    {
        // SAFETY: `model` owns a live Highs instance and `path` is a NUL-terminated string
        // that outlives the call.
        unsafe { highs_sys::Highs_writeModel(model.as_mut_ptr(), path.as_ptr()) };
    }
    // Every improving solution of the branch and bound, not only the last one.
    let mut improving: Vec<Vec<f64>> = vec![];
    // SAFETY: `model` owns a live Highs instance; the callback only reads HiGHS's solution
    // array of the size HiGHS states and pushes a copy into `improving`, which outlives the
    // solve below (HiGHS calls back only from inside `try_solve`).
    unsafe {
        let ptr = model.as_mut_ptr();
        highs_sys::Highs_setCallback(
            ptr,
            Some(collect_improving),
            &mut improving as *mut Vec<Vec<f64>> as *mut std::ffi::c_void,
        );
        highs_sys::Highs_startCallback(ptr, highs_sys::kHighsCallbackMipImprovingSolution);
    }
    let solved = model
        .try_solve()
        .map_err(|e| format!("HiGHS failed: {e:?}"))?;
    let status = solved.status();
    let bound = solved
        .double_info_value(c"mip_dual_bound")
        .unwrap_or(f64::NEG_INFINITY)
        + m.cost_const;
    let x = match status {
        HighsModelStatus::Optimal | HighsModelStatus::ReachedTimeLimit => {
            let s = solved.get_solution();
            if s.columns().len() == m.col_lo.len() {
                Some(s.columns().to_vec())
            } else {
                None
            }
        }
        _ => None,
    };
    let bound = if status == HighsModelStatus::Optimal {
        let obj = solved.objective_value() + m.cost_const;
        if bound.is_finite() {
            obj.min(bound)
        } else {
            obj
        }
    } else {
        bound
    };
    // Once it has an incumbent, HiGHS prunes nodes whose bound is within its feasibility
    // tolerance of it (`upper_limit = incumbent − feastol` for a continuous objective), so a
    // mapping up to that much better may go unseen: the bound is valid only that much lower.
    let bound = bound - HIGHS_MIP_FEASTOL;
    let n = m.col_lo.len();
    improving.retain(|s| s.len() == n);
    Ok((status, x, bound, improving))
}

/// A row `lo ≤ Σ v·x ≤ hi` as HiGHS may be given it: HiGHS reads entries below 1e-9 as zero,
/// which would turn the row into another one (`w = unit·z` into `w = 0`). Each entry below
/// [`MIN_COEF`] is taken out and its range over its column's bounds moved into the row's
/// bounds, so the row HiGHS solves is a relaxation of the row the model states.
fn relax_tiny(m: &Model, lo: f64, hi: f64, t: &[(usize, f64)]) -> (f64, f64, Vec<(usize, f64)>) {
    let (mut lo, mut hi) = (lo, hi);
    let mut kept = Vec::with_capacity(t.len());
    for &(i, v) in t {
        if v == 0.0 || v.abs() >= MIN_COEF {
            kept.push((i, v));
            continue;
        }
        let (a, b) = (v * m.col_lo[i], v * m.col_hi[i]);
        let (least, most) = (a.min(b), a.max(b));
        // Infinite bounds give NaN products at most with v = 0, excluded above.
        lo -= most;
        hi -= least;
    }
    (lo, hi, kept)
}

/// Status, the final solution, the dual bound and every improving solution found on the way.
type Solved = (HighsModelStatus, Option<Vec<f64>>, f64, Vec<Vec<f64>>);

/// HiGHS callback: keeps a copy of each improving MIP solution (full column vectors).
unsafe extern "C" fn collect_improving(
    kind: std::ffi::c_int,
    _message: *const std::ffi::c_char,
    out: *const highs_sys::HighsCallbackDataOut,
    _input: *mut highs_sys::HighsCallbackDataIn,
    data: *mut std::ffi::c_void,
) {
    if kind != highs_sys::kHighsCallbackMipImprovingSolution || out.is_null() || data.is_null() {
        return;
    }
    let out = &*out;
    if out.mip_solution.is_null() || out.mip_solution_size <= 0 {
        return;
    }
    let sols = &mut *(data as *mut Vec<Vec<f64>>);
    sols.push(
        std::slice::from_raw_parts(out.mip_solution, out.mip_solution_size as usize).to_vec(),
    );
}

/// Turns a MILP solution into a mapping: factors from the per-dim one-hots, loop orders from the
/// innermost-dim choices (canonical completion), keep from the pattern.
fn candidate(space: &Mapspace, vars: &Vars, keep: &[Vec<bool>], x: &[f64]) -> Mapping {
    let problem = space.problem();
    let nd = problem.dims.len();
    let nl = space.arch().levels.len();
    // The chosen entry of a one-hot (its columns in order; None: the only entry).
    let pick = |cols: &[Option<usize>]| {
        cols.iter()
            .position(|c| c.is_none_or(|c| x[c] > 0.5))
            .unwrap_or(0)
    };
    let chosen: Vec<Vec<u64>> = (0..nd)
        .map(|d| match &vars.x[d] {
            DimCols::Whole(cols) => space.dim_choices(d)[pick(cols)].clone(),
            DimCols::Sliced(groups) => {
                let mut c = vec![1; space.slots().len()];
                for grp in groups {
                    let cols: Vec<Option<usize>> = grp.values.iter().map(|v| v.0).collect();
                    let v = &grp.values[pick(&cols)].1;
                    for (&s, &f) in grp.slots.iter().zip(v) {
                        c[s] = f;
                    }
                }
                c
            }
        })
        .collect();
    let mut levels = Vec::with_capacity(nl);
    for l in 0..nl {
        let ls = space.level_slots(l);
        let f = |d: usize, s: usize| chosen[d][s];
        let nonunit: Vec<usize> = (0..nd).filter(|&d| f(d, ls.temporal) > 1).collect();
        let innermost = (0..nd).find(|&d| vars.delta[l][d].is_some_and(|c| x[c] > 0.5));
        let prefix = space.temporal_prefix(l);
        let mut order: Vec<usize> = prefix
            .iter()
            .copied()
            .filter(|d| nonunit.contains(d))
            .collect();
        let rest: Vec<usize> = nonunit
            .iter()
            .copied()
            .filter(|d| !prefix.contains(d))
            .collect();
        // The tensor the innermost loop is irrelevant to: its irrelevant loops come next.
        let head = order.first().copied().or(innermost);
        let stationary = head.and_then(|d| irrelevant_to(space, d));
        let mut rest_sorted: Vec<usize> = vec![];
        if order.is_empty() {
            if let Some(d) = innermost.filter(|d| rest.contains(d)) {
                rest_sorted.push(d);
            }
        }
        for &d in &rest {
            if !rest_sorted.contains(&d)
                && stationary.is_some()
                && irrelevant_to(space, d) == stationary
            {
                rest_sorted.push(d);
            }
        }
        for &d in &rest {
            if !rest_sorted.contains(&d) {
                rest_sorted.push(d);
            }
        }
        order.extend(rest_sorted);
        let loops = |s: Option<usize>| -> Vec<Loop> {
            match s {
                None => vec![],
                Some(s) => (0..nd)
                    .filter(|&d| f(d, s) > 1)
                    .map(|d| Loop {
                        dim: d,
                        factor: f(d, s),
                    })
                    .collect(),
            }
        };
        levels.push(LevelMapping {
            temporal: order
                .iter()
                .map(|&d| Loop {
                    dim: d,
                    factor: f(d, ls.temporal),
                })
                .collect(),
            spatial_x: loops(ls.x),
            spatial_y: loops(ls.y),
            keep: keep[l].clone(),
        });
    }
    Mapping { levels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One-hot groups of the given sizes (binary columns summing to one).
    fn onehot_groups(m: &mut Model, sizes: &[usize]) -> Vec<Vec<usize>> {
        sizes
            .iter()
            .map(|&n| {
                let g: Vec<usize> = (0..n).map(|_| m.bin()).collect();
                m.eq(
                    &Lin {
                        c: 0.0,
                        t: g.iter().map(|&i| (i, 1.0)).collect(),
                    },
                    1.0,
                );
                g
            })
            .collect()
    }

    /// The lower bound a lifting row `w − Σ k_j x_j ≥ lo` puts on `w` at `x`.
    fn lifted_bound(lo: f64, row: &[(usize, f64)], w: usize, x: &[f64]) -> f64 {
        lo + row
            .iter()
            .filter(|(c, _)| *c != w)
            .map(|&(c, v)| -v * x[c])
            .sum::<f64>()
    }

    /// The one-hot lifting rows never exceed the term they bound, at any integer point and any
    /// value of a continuous column, and are exact when the rest is at its minimum.
    #[test]
    fn lifting_underestimates_the_term_everywhere() {
        let mut m = Model::default();
        let [g1, g2]: [Vec<usize>; 2] = onehot_groups(&mut m, &[3, 4]).try_into().unwrap();
        assert_eq!(m.groups.len(), 2);
        let free = m.col(0.0, 2.0, false, 0.0);
        // a = 0.5 + (0, 1.2, 2.0)·g1 + (−0.7, 0, 0.3, 1.1)·g2 − 0.4·free (g2's first member
        // twice, as the model builder may write it)
        let a = Lin {
            c: 0.5,
            t: vec![
                (g1[1], 1.2),
                (g1[2], 2.0),
                (g2[0], -0.3),
                (g2[0], -0.4),
                (g2[2], 0.3),
                (g2[3], 1.1),
                (free, -0.4),
            ],
        };
        let w = m.term(2.5, a.clone()).unwrap();
        let before = m.rows.len();
        m.lift(&m.terms[0].clone());
        let lifted: Vec<_> = m.rows[before..].to_vec();
        assert_eq!(lifted.len(), 2, "one row per group");
        let mut exact_hits = 0;
        for i in 0..3 {
            for j in 0..4 {
                for f in [0.0, 1.0, 2.0] {
                    let mut x = vec![0.0; m.col_lo.len()];
                    x[g1[i]] = 1.0;
                    x[g2[j]] = 1.0;
                    x[free] = f;
                    let term = 2.5 * a.value(&x).exp();
                    for (lo, _, row) in &lifted {
                        let need = lifted_bound(*lo, row, w, &x);
                        assert!(
                            need <= term * (1.0 + 1e-12),
                            "{need} > {term} at {i} {j} {f}"
                        );
                        if (need - term).abs() <= 1e-8 * term {
                            exact_hits += 1;
                        }
                    }
                }
            }
        }
        // exact (up to SHAVE) where the other group sits at its minimum (g2[0] for g1's row,
        // g1[0] for g2's) and the free column at its maximum: 3 + 4 points
        assert_eq!(exact_hits, 7);
    }

    /// A term whose charged instance count varies: once activated, its ceilings per instance
    /// count bound the term by the evaluator's whole vector accesses, exactly at a point whose
    /// tangents are in, and never above the true cost anywhere.
    #[test]
    fn ceilings_per_instance_count_are_exact_at_candidates_and_valid_everywhere() {
        let mut m = Model::default();
        let [inst, size]: [Vec<usize>; 2] = onehot_groups(&mut m, &[3, 4]).try_into().unwrap();
        let ns = [1.0, 2.0, 4.0];
        let scalars = [3.0, 5.0, 8.0, 9.0];
        let (unit, per_vector) = (1.5, 0.5); // energy per vector access; two scalars per word
        let log_of = |cols: &[usize], vals: &[f64]| Lin {
            c: 0.0,
            t: cols.iter().zip(vals).map(|(&c, v)| (c, v.ln())).collect(),
        };
        let charged = log_of(&inst, &ns);
        let a = charged.clone().plus(&log_of(&size, &scalars));
        // level 3's instance counts, as the model builder registers a clustered level's
        let values: Vec<(usize, f64)> = inst.iter().copied().zip(ns).collect();
        m.instance_values.insert(3, values);
        m.term_with_floor(
            unit * per_vector,
            a,
            unit,
            charged.clone(),
            Whole::PerInstance {
                charged: &charged,
                level: 3,
            },
        );
        assert_eq!(m.deferred.len(), 1);
        let w = m.terms[0].w;
        m.activate(0);
        assert_eq!(m.ceilings.len(), 3, "one integer count per instance value");
        let point = |i: usize, j: usize, m: &Model| {
            let mut x = vec![0.0; m.col_lo.len()];
            x[inst[i]] = 1.0;
            x[size[j]] = 1.0;
            x
        };
        // The smallest w the ceiling rows allow at x: each z_n at the ceiling of its largest
        // tangent, w at Σ unit·n·z_n.
        let least_w = |m: &Model, x: &[f64]| -> f64 {
            let mut total = 0.0;
            for &(i, u) in &m.ceiling_units[&w] {
                let c = &m.ceilings[i];
                let e = c.a.value(x);
                let mut z: f64 = 0.0;
                for (lo, _, row) in &m.rows {
                    if let [(p, pv), (q, qv)] = row.as_slice() {
                        let (zc, k) = if (*p, *pv, *q) == (c.w, 1.0, c.e) {
                            (*p, -qv)
                        } else if (*q, *qv, *p) == (c.w, 1.0, c.e) {
                            (*q, -pv)
                        } else {
                            continue;
                        };
                        assert_eq!(zc, c.w);
                        z = z.max(lo + k * e);
                    }
                }
                total += u * (z * (1.0 - 1e-12)).ceil();
            }
            total
        };
        let truth = |i: usize, j: usize| unit * ns[i] * (per_vector * scalars[j]).ceil();
        // Tangents at three candidates, as a round adds them (active ceilings only); (0, 2) is
        // a whole count (4 vectors), which must not round up to 5.
        let visited = [(1, 0), (2, 3), (0, 2)];
        for (i, j) in visited {
            let x = point(i, j, &m);
            for c in m.ceilings.clone() {
                let e = c.a.value(&x);
                if e > -OFF / 2.0 {
                    m.tangent(&c, e);
                }
            }
        }
        for i in 0..3 {
            for j in 0..4 {
                let x = point(i, j, &m);
                let least = least_w(&m, &x);
                assert!(
                    least <= truth(i, j) * (1.0 + 1e-12),
                    "{least} > {} at {i} {j}",
                    truth(i, j)
                );
                if visited.contains(&(i, j)) {
                    assert!(
                        (least - truth(i, j)).abs() < 1e-9,
                        "not exact at {i} {j}: {least}"
                    );
                }
            }
        }
        // 2 instances × ceil(1.5) vectors, where the dropped ceiling gave 2 × 1.5
        assert_eq!(truth(1, 0), unit * 4.0);
    }

    /// The product one-hot (here: instances = spatial factors of two dims) satisfies its rows at
    /// exactly the product's value for every combination of the dims' choices, and refuses more
    /// values than its limit.
    #[test]
    fn product_onehot_pins_the_product() {
        let mut m = Model::default();
        let [d0, d1]: [Vec<usize>; 2] = onehot_groups(&mut m, &[3, 2]).try_into().unwrap();
        let (v0, v1) = ([1u64, 2, 12], [1u64, 3]);
        let parts = vec![
            d0.iter().map(|&c| Some(c)).zip(v0).collect::<Vec<_>>(),
            d1.iter().map(|&c| Some(c)).zip(v1).collect::<Vec<_>>(),
        ];
        assert!(product_onehot(&mut m, &parts, &|v| v as f64, 5, u64::MAX).is_none());
        let before = m.rows.len();
        let one = product_onehot(&mut m, &parts, &|v| v as f64, 6, u64::MAX).unwrap();
        let counts: Vec<f64> = one.t.iter().map(|x| x.1).collect();
        assert_eq!(counts, vec![1.0, 2.0, 3.0, 6.0, 12.0, 36.0]);
        let rows: Vec<_> = m.rows[before..].to_vec();
        for i in 0..3 {
            for j in 0..2 {
                let fitting: Vec<f64> = one
                    .t
                    .iter()
                    .filter(|&&(g, _)| {
                        let mut x = vec![0.0; m.col_lo.len()];
                        x[d0[i]] = 1.0;
                        x[d1[j]] = 1.0;
                        x[g] = 1.0;
                        rows.iter().all(|(lo, hi, row)| {
                            let v: f64 = row.iter().map(|&(c, k)| k * x[c]).sum();
                            v >= lo - 1e-9 && v <= hi + 1e-9
                        })
                    })
                    .map(|x| x.1)
                    .collect();
                assert_eq!(fitting, vec![(v0[i] * v1[j]) as f64], "at {i} {j}");
            }
        }
        // With at most 12 (say, the fanouts above a level), 36 is left out and the five
        // values left fit the limit the six did not.
        let capped = product_onehot(&mut m, &parts, &|v| v as f64, 5, 12).unwrap();
        let counts: Vec<f64> = capped.t.iter().map(|x| x.1).collect();
        assert_eq!(counts, vec![1.0, 2.0, 3.0, 6.0, 12.0]);
    }

    /// A whole-access count whose exponent is a sum of logs: the tangent at it, shaved by
    /// `SHAVE`, never exceeds the count, so its integer column never rounds up to one access
    /// more. (Unshaved, `exp` of the summed logs lands above the whole number for about a
    /// quarter of these products.)
    #[test]
    fn tangents_at_whole_counts_never_round_up() {
        let mut above_unshaved = 0;
        for f1 in [2u64, 3, 4, 7, 8, 14, 16, 28, 32, 56, 112] {
            for f2 in [1u64, 2, 3, 5, 8, 13] {
                for f3 in [4u64, 9, 16, 25, 64] {
                    let n = (f1 * f2 * f3) as f64;
                    let mut m = Model::default();
                    let a = Lin::konst((f1 as f64).ln() + (f2 as f64).ln() + (f3 as f64).ln());
                    let unit = 0.37;
                    let w = m.term(unit, a.clone()).unwrap();
                    let e = m.terms[0].e;
                    m.tangent(&m.terms[0].clone(), a.c);
                    let (lo, _, row) = m.rows.last().unwrap().clone();
                    let k = -row.iter().find(|x| x.0 == e).unwrap().1;
                    assert!(row.contains(&(w, 1.0)));
                    let least = (lo + k * a.c) / unit; // w / unit at the tangent point
                    assert!(least <= n, "{f1}·{f2}·{f3}: {least} > {n}");
                    assert!(
                        least > n * (1.0 - 1e-8),
                        "{f1}·{f2}·{f3}: {least} far below {n}"
                    );
                    if a.c.exp() > n {
                        above_unshaved += 1;
                    }
                }
            }
        }
        assert!(
            above_unshaved > 0,
            "the case this guards against did not occur"
        );
    }

    /// A two-part count made exact rounds the parts' sum, not each part, up to whole vector
    /// accesses: HiGHS's optimum is `unit · ceil(sum / unit)`, a whole number of accesses
    /// stays whole, and the model's own value agrees; before activation the sum is not rounded.
    #[test]
    fn multi_part_counts_round_their_sum() {
        let unit = 0.5;
        // (parts' values) → vector accesses: 1.3 + 2.45 = 3.75 → 4; 1.5 + 2.5 = 4 (whole).
        for (p1, p2, whole) in [(0.65, 1.225, 4.0), (0.75, 1.25, 4.0), (0.1, 0.05, 1.0)] {
            let mut m = Model::default();
            let ws: Vec<usize> = [p1, p2]
                .iter()
                .map(|&p: &f64| m.term(1.0, Lin::konst(p.ln())).unwrap())
                .collect();
            for t in m.terms.clone() {
                m.tangent(&t, t.a.c);
            }
            m.multi.push(MultiCount::new(ws, unit, None));
            let (_, x, bound, _) = run_highs(&m, None, None).unwrap();
            let dropped = model_value(&m, &x.unwrap());
            assert!((dropped - (p1 + p2)).abs() < 1e-9, "{dropped}");
            assert!(bound <= p1 + p2 + 1e-9);
            m.activate_multi(0);
            let (status, x, bound, _) = run_highs(&m, None, None).unwrap();
            assert_eq!(status, HighsModelStatus::Optimal);
            let exact = unit * whole;
            assert!(bound <= exact, "{p1}+{p2}: bound {bound} above {exact}");
            assert!(
                bound > exact - 2e-6,
                "{p1}+{p2}: bound {bound} far below {exact}"
            );
            let own = model_value(&m, &x.unwrap());
            assert!((own - exact).abs() < 1e-9, "{p1}+{p2}: model value {own}");
        }
    }

    /// A two-part count whose charged instance count varies (a sliding-window load below a
    /// fanout): once activated, the MILP's least cost at every point is at most the evaluator's
    /// (the sum, not each part, rounded up to whole vector accesses per instance), and equal to
    /// it at the points whose tangents are in; before, the ceiling was dropped.
    #[test]
    fn multi_part_counts_at_varying_instance_counts_round_their_sum_per_instance() {
        let mut m = Model::default();
        let [inst, size1, size2]: [Vec<usize>; 3] =
            onehot_groups(&mut m, &[3, 4, 3]).try_into().unwrap();
        let ns = [1.0, 2.0, 4.0];
        let (s1, s2) = ([3.0, 5.0, 8.0, 9.0], [2.0, 7.0, 4.0]);
        let (unit, per_vector) = (1.5, 0.25); // energy per vector access; 4 scalars per vector
        let log_of = |cols: &[usize], vals: &[f64]| Lin {
            c: 0.0,
            t: cols.iter().zip(vals).map(|(&c, v)| (c, v.ln())).collect(),
        };
        let charged = log_of(&inst, &ns);
        let ws: Vec<usize> = [log_of(&size1, &s1), log_of(&size2, &s2)]
            .iter()
            .map(|a| m.term(unit * per_vector, charged.clone().plus(a)).unwrap())
            .collect();
        m.instance_values
            .insert(3, inst.iter().copied().zip(ns).collect());
        m.multi.push(MultiCount::new(ws, unit, Some((charged, 3))));
        let truth =
            |i: usize, j: usize, k: usize| unit * ns[i] * (per_vector * (s1[j] + s2[k])).ceil();
        let point = |(i, j, k): (usize, usize, usize), m: &Model| {
            let mut x = vec![0.0; m.col_lo.len()];
            x[inst[i]] = 1.0;
            x[size1[j]] = 1.0;
            x[size2[k]] = 1.0;
            x
        };
        // The model's least cost with the one-hots pinned at (i, j, k).
        let least = |m: &Model, at: (usize, usize, usize)| -> f64 {
            let mut pinned = m.clone();
            let x = point(at, m);
            for &c in inst.iter().chain(&size1).chain(&size2) {
                pinned.col_lo[c] = x[c];
                pinned.col_hi[c] = x[c];
            }
            let (status, y, _, _) = run_highs(&pinned, None, None).unwrap();
            assert_eq!(status, HighsModelStatus::Optimal);
            let y = y.unwrap();
            pinned.cost_const
                + pinned
                    .col_cost
                    .iter()
                    .zip(&y)
                    .map(|(c, v)| c * v)
                    .sum::<f64>()
        };
        let visited = [(1, 0, 0), (2, 3, 1), (0, 2, 2), (1, 1, 1)];
        let tangents = |m: &mut Model, at: (usize, usize, usize)| {
            let x = point(at, m);
            m.tangents_at(&x);
            for c in m.ceilings.clone() {
                let e = c.a.value(&x);
                if e > -OFF / 2.0 {
                    m.tangent(&c, e);
                }
            }
        };
        for at in visited {
            tangents(&mut m, at);
        }
        // (1, 0, 0): 2 instances × (3 + 2)/4 = 1.25 vectors each, charged as 2 × 2 once exact.
        assert!((least(&m, (1, 0, 0)) - unit * 2.0 * 1.25).abs() < 1e-6);
        m.activate_multi(0);
        assert_eq!(m.ceilings.len(), 6, "one count per part and instance value");
        for at in visited {
            tangents(&mut m, at);
        }
        for i in 0..3 {
            for j in 0..4 {
                for k in 0..3 {
                    let (got, want) = (least(&m, (i, j, k)), truth(i, j, k));
                    assert!(got <= want * (1.0 + 1e-9), "{got} > {want} at {i} {j} {k}");
                    if visited.contains(&(i, j, k)) {
                        assert!(
                            got > want - 1e-5,
                            "not exact at {i} {j} {k}: {got} < {want}"
                        );
                        let x = point((i, j, k), &m);
                        assert!((model_value(&m, &x) - want).abs() < 1e-9);
                    }
                }
            }
        }
        assert_eq!(truth(1, 0, 0), unit * 4.0);
    }

    /// A tangent at a point the term already has (to within 1e-7 in log space) adds no row.
    #[test]
    fn tangents_are_added_once_per_point() {
        let mut m = Model::default();
        m.term(2.0, Lin::konst(0.0)).unwrap();
        let t = m.terms[0].clone();
        let rows = m.rows.len();
        m.tangent(&t, 1.0);
        assert_eq!(m.rows.len(), rows + 1);
        m.tangent(&t, 1.0);
        m.tangent(&t, 1.0 + 3e-8);
        assert_eq!(m.rows.len(), rows + 1);
        m.tangent(&t, 1.5);
        assert_eq!(m.rows.len(), rows + 2);
        // The same point on another term is that term's first tangent.
        m.term(3.0, Lin::konst(0.0)).unwrap();
        let (u, rows) = (m.terms[1].clone(), m.rows.len());
        m.tangent(&u, 1.0);
        assert_eq!(m.rows.len(), rows + 1);
    }

    /// HiGHS's improving solutions come back as full, feasible column vectors with falling
    /// objectives, the last one the optimum; an optimal solve's bound is the optimum less
    /// HiGHS's pruning tolerance.
    #[test]
    fn highs_reports_improving_solutions_and_a_discounted_bound() {
        // A small covering knapsack: min Σ c_i x_i, Σ a_i x_i ≥ 50, x binary.
        let (a, c) = (
            [7.0, 11.0, 13.0, 17.0, 19.0, 23.0, 29.0, 31.0, 5.0, 3.0],
            [8.0, 12.5, 13.0, 19.0, 20.5, 24.0, 31.0, 32.5, 6.0, 4.0],
        );
        let mut m = Model::default();
        let x: Vec<usize> = c.iter().map(|&ci| m.col(0.0, 1.0, true, ci)).collect();
        let cover = Lin {
            c: 0.0,
            t: x.iter().zip(a).map(|(&i, ai)| (i, ai)).collect(),
        };
        m.ge(&cover, 50.0);
        let (status, best, bound, improving) = run_highs(&m, None, None).unwrap();
        assert_eq!(status, HighsModelStatus::Optimal);
        let best = best.unwrap();
        let cost = |y: &[f64]| x.iter().zip(c).map(|(&i, ci)| ci * y[i]).sum::<f64>();
        assert!(!improving.is_empty());
        let mut last = f64::INFINITY;
        for y in &improving {
            assert_eq!(y.len(), x.len());
            assert!(y.iter().all(|v| (v - v.round()).abs() < 1e-6));
            assert!(cover.value(y) >= 50.0 - 1e-6);
            assert!(cost(y) < last);
            last = cost(y);
        }
        assert!((last - cost(&best)).abs() < 1e-9);
        // The optimum by enumeration of all 2^10 choices.
        let optimum = (0u32..1 << 10)
            .map(|s| (0..10).map(|i| (s >> i & 1) as f64).collect::<Vec<_>>())
            .filter(|y| cover.value(y) >= 50.0)
            .map(|y| cost(&y))
            .fold(f64::INFINITY, f64::min);
        assert!((cost(&best) - optimum).abs() < 1e-9);
        assert!(
            (bound - (optimum - HIGHS_MIP_FEASTOL)).abs() < 1e-9,
            "{bound}"
        );
    }

    /// Large one-hot groups enter exponents and lifting rows through shared columns: the
    /// exponent keeps its value at every integer point, the lifting rows stay valid and exact
    /// where they were, and a second term with the same profile reuses the columns.
    #[test]
    fn shared_group_columns_keep_exponents_and_liftings_exact() {
        let mut m = Model::default();
        let [big, small]: [Vec<usize>; 2] = onehot_groups(&mut m, &[12, 3]).try_into().unwrap();
        let mut a = Lin::konst(-0.2);
        for (j, &i) in big.iter().enumerate() {
            a.t.push((i, (j as f64 * 0.37).sin() - 0.5));
        }
        a.t.push((small[1], 0.8));
        let w = m.term(1.5, a.clone()).unwrap();
        let cols = m.col_lo.len();
        m.term(0.7, a.clone()).unwrap();
        assert_eq!(
            m.shared.len(),
            1,
            "one shared column for the big group's profile"
        );
        assert_eq!(
            m.col_lo.len(),
            cols + 2,
            "the second term adds only its w and e"
        );
        let before = m.rows.len();
        m.lift(&m.terms[0].clone());
        assert_eq!(
            m.shared.len(),
            2,
            "the lifting row's exp profile is shared too"
        );
        let lifted: Vec<_> = m.rows[before..].to_vec();
        let value = |m: &Model, x: &mut Vec<f64>| {
            for ((kind, g, profile), &y) in &m.shared {
                x[y] = m.groups[*g]
                    .iter()
                    .zip(profile)
                    .map(|(&i, &p)| {
                        let v = f64::from_bits(p);
                        x[i] * if *kind == 0 { v } else { v.exp() }
                    })
                    .sum();
            }
        };
        let mut exact_hits = 0;
        for i in 0..12 {
            for j in 0..3 {
                let mut x = vec![0.0; m.col_lo.len()];
                x[big[i]] = 1.0;
                x[small[j]] = 1.0;
                value(&m, &mut x);
                let e = m.terms[0].e;
                // the exponent column's defining row holds at the true exponent
                let def = m
                    .rows
                    .iter()
                    .find(|(lo, hi, t)| lo == hi && t.iter().any(|&(c, _)| c == e))
                    .unwrap();
                x[e] = a.value(&x);
                let lhs: f64 = def.2.iter().map(|&(c, v)| v * x[c]).sum();
                assert!((lhs - def.0).abs() < 1e-9, "exponent row off at {i} {j}");
                let term = 1.5 * a.value(&x).exp();
                for (lo, _, row) in &lifted {
                    let need = lifted_bound(*lo, row, w, &x);
                    assert!(need <= term * (1.0 + 1e-12), "{need} > {term} at {i} {j}");
                    if (need - term).abs() <= 1e-8 * term {
                        exact_hits += 1;
                    }
                }
            }
        }
        // big's row is exact (up to SHAVE) where small sits at its minimum (small[0] or
        // small[2]: 24 points), small's where big does (3 points)
        assert_eq!(exact_hits, 27);
    }
}
