//! The mapspace: the one definition of the set of mappings qmap searches (shared by the MILP,
//! the exhaustive enumerator and random search), and the Timeloop-style constraints that
//! restrict it.
//!
//! # The space
//!
//! *Slots.* Per architecture level ℓ (innermost first): spatial X and spatial Y — the fanout
//! from ℓ to the level below, present only where [`Arch::fanout`] is > 1 in that direction —
//! then temporal. A mapping is
//! - a perfect factorisation of every dimension over the slots (the factors of a dim multiply
//!   to its bound; per level, the product over dims of the X factors is ≤ the X fanout, Y
//!   likewise). A dim may use both X and Y of one level unless a spatial permutation/split
//!   constraint places it on one axis (Timeloop itself never splits a dim over both axes; the
//!   unconstrained space here is a superset of Timeloop's);
//! - a loop order per level: a permutation of the level's non-unit temporal loops. Unit loops
//!   are represented (every dim appears once in each level's `temporal` list, unit loops
//!   innermost in dim order, as Timeloop places them) but their order is not enumerated. The
//!   order at level 0 is not enumerated either (Timeloop's `use_canonical_permutation` for
//!   tiling level 0): the loops of the innermost level only feed the MACs, so their order
//!   changes no count (checked in `tests/search.rs`); [`Mapspace::contains`] accepts any
//!   level-0 order that satisfies its permutation constraint;
//! - keep/bypass per (level, tensor): fixed where the architecture's keep rule is Must/Never or
//!   a constraint says so, free otherwise; the outermost level keeps what nothing forbids (as
//!   Timeloop's default bypass string ends in `1`); every tensor must be kept somewhere.
//!
//! Spatial loops are sets per axis (their order inside X or Y changes no count): a mapping
//! lists them in dim order.
//!
//! # Constraints (Timeloop v3 semantics, from `mapping/constraints.cpp` and
//! `mapspaces/{uber,subspaces}.cpp`)
//!
//! Sections `architecture_constraints`, `mapspace_constraints`, `constraints` (a list, or a map
//! with `targets`), or a bare `targets` list / a bare list; keys in either spelling (hyphens or
//! underscores). Each target entry has `target` (level name, an instance range such as
//! `DummyBuffer[0..13]` is ignored, or a storage-level index, innermost 0), `type` and the
//! keys of that type, directly or under `attributes` (or a nested `constraints` list):
//! - `temporal` / `spatial`: `factors` as `N=1,C=1`, `N=1 P=1 S=0`, `C1 M8` or a list of such
//!   strings: `D=v` fixes the factor (for `spatial`, the level's spatial factor of D, i.e. X·Y),
//!   `D<=v` / `D<v` / `D>=v` / `D>v` bound it. `D=0`: Timeloop reads 0 as the full bound of D
//!   ("Interpreting 0 to mean full problem dimension"); qmap reads it as the whole *remaining*
//!   factor: bound ÷ the factors fixed for D elsewhere, with every other unfixed slot of D at 1.
//!   The two agree whenever Timeloop's reading admits any mapping. A fixed factor larger than
//!   the bound is clamped to the bound (as Timeloop does).
//! - `permutation`: dims innermost first, one character per dim when given as a string
//!   (whitespace is ignored, as Timeloop reads it char by char: `NPQR SCM` is `NPQRSCM`; the
//!   space in the seed's files only marks the `split` point for the reader), or a list of
//!   names. It may be partial: the listed dims are the innermost loops in the listed order and
//!   the unlisted ones are free *outside* them (Timeloop's "baked prefix" + permutable suffix).
//!   Unit-factor loops are ignored when checking it (Timeloop moves them innermost).
//! - `split` (spatial only): the position in the spatial permutation where X ends: dims at
//!   positions `< split` go to X, the rest to Y (`split: 999` = all X, `split: 0` = all Y).
//!   Positions count every dim, unit factors included (Timeloop does not prune spatial levels
//!   with a user split). Unlisted dims of a partial permutation take the positions after the
//!   listed ones in any order: when the split falls among them they may go to either axis
//!   (each to one). Without `split`, a spatial permutation on a level with both X and Y
//!   fanouts restricts the split to a point of that order: no dim on X may come after a dim on
//!   Y (Timeloop enumerates the split point over the permutation).
//! - `bypass` / `datatype` / `bypassing`: `keep` and `bypass` lists of tensor names.
//! - `max_overbooked_proportion`, `utilization`/`parallelism`, `no_multicast`, `no_reduction`,
//!   `no_link_transfer`, `no_temporal_reuse`: not modelled; ignored with a note
//!   ([`Constraints::notes`]).
//!
//! Re-specifying a fixed factor, permutation or split of the same level differently is an
//! error, as in Timeloop (identical repeats are accepted; repeated bounds combine, the tighter
//! wins). A dimension a constraint names that the problem lacks is an error, except M and C on
//! a depthwise problem (dim G): those constraints are dropped with a note.
//!
//! # Counting, enumerating, sampling
//!
//! Each dim's allowed factor vectors ([`Mapspace::dim_choices`]) are listed once; the joint
//! constraints (fanouts, X/Y split order) are a layered DAG over the dims whose states are the
//! spatial products so far. Enumeration walks it depth-first (split into parts for
//! parallelism), then every loop order and keep pattern. [`Mapspace::size`] counts
//! factorisations × orders × keep patterns with a DP over the levels (exact in u128, also as
//! f64). [`Mapspace::sample`] follows Timeloop's random mapper — an index per sub-space — but
//! draws the factorisation uniformly among those that fit the fanouts (Timeloop draws it from
//! the per-dim cartesian product and rejects misfits later: the same distribution, without the
//! rejections), then a uniform order per level and a uniform keep pattern.

mod build;
mod check;
mod constraints;
mod count;
mod dag;
mod scan;

pub use constraints::{
    Constraints, FactorRule, FixedFactor, LevelConstraints, LoopConstraints, LoopKind,
};
pub use scan::{Scanned, Visit};

use crate::model::{Arch, Problem};
use dag::{Sig, Step};
use std::collections::HashMap;
use std::sync::OnceLock;

// =============================================================================================
// The mapspace
// =============================================================================================

/// The kind of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Temporal,
    SpatialX,
    SpatialY,
}

/// A place a factor of every dim goes: one level's temporal loops or one axis of its fanout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub level: usize,
    pub kind: SlotKind,
    /// The fanout of a spatial slot (the product of its factors over dims must not exceed it).
    pub fanout: Option<u64>,
}

/// The slot indices of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelSlots {
    pub x: Option<usize>,
    pub y: Option<usize>,
    pub temporal: usize,
}

/// A resolved factor rule (dim, level, loop kind): for the spatial kind it bounds X·Y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rule {
    pub fixed: Option<u64>,
    pub max: Option<u64>,
    pub min: Option<u64>,
}

impl Rule {
    pub fn admits(&self, f: u64) -> bool {
        self.fixed.is_none_or(|v| v == f)
            && self.max.is_none_or(|m| f <= m)
            && self.min.is_none_or(|m| f >= m)
    }
}

/// Which axis a dim's spatial factor of a level may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpatialDir {
    /// X, Y or both.
    Any,
    /// X or Y, not both.
    OneOf,
    XOnly,
    YOnly,
}

/// The X/Y rule of one level's spatial loops.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialRule {
    /// Per dim.
    pub dir: Vec<SpatialDir>,
    /// Per dim, its position in the level's spatial permutation (unlisted dims share the
    /// position after the listed ones), when the split point is free: every dim with an X
    /// factor > 1 must come no later than every dim with a Y factor > 1 (ties only between
    /// unlisted dims).
    pub order: Option<Vec<usize>>,
}

/// Keep/bypass of one (level, tensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepChoice {
    Fixed(bool),
    Free,
}

/// The most factorisations of one dim a mapspace keeps (each is a vector of slot factors):
/// about 100 MB at eight slots. The shipped designs' largest is 147,000 (a channel dim over
/// Simba's slots); an unconstrained 2^20 over eight slots has 888,030.
pub const MAX_DIM_CHOICES: usize = 1_000_000;

/// The most free keep/bypass choices: every bypass pattern is enumerated.
pub const MAX_FREE_KEEPS: usize = 20;

/// The enumeration is split into at least this many parts where the space allows it.
pub const MIN_PARTS: usize = 64;

/// A number of mappings: exact (saturating) and as a float.
pub type Count = (u128, f64);

/// The set of mappings of one problem on one architecture under constraints.
#[derive(Debug, Clone)]
pub struct Mapspace {
    problem: Problem,
    arch: Arch,
    slots: Vec<Slot>,
    level_slots: Vec<LevelSlots>,
    /// Slot ids of the spatial slots (the order of the spatial part of a DAG state).
    spatial_slots: Vec<usize>,
    primes: Vec<Vec<(u64, u32)>>,
    /// rules[d][l] = [temporal, spatial].
    rules: Vec<Vec<[Rule; 2]>>,
    spatial_rules: Vec<SpatialRule>,
    /// Levels whose spatial split point is constrained by a permutation order.
    coupled: Vec<usize>,
    /// Temporal permutation constraint per level (dims innermost first, possibly partial).
    prefix: Vec<Vec<usize>>,
    enumerate_orders: Vec<bool>,
    keep: Vec<Vec<KeepChoice>>,
    free_keeps: Vec<(usize, usize)>,
    /// choices[d] = the per-slot factor vectors allowed for dim d on its own.
    choices: Vec<Vec<Vec<u64>>>,
    choice_index: Vec<HashMap<Vec<u64>, u32>>,
    sigs: Vec<Vec<Sig>>,
    allowed: Vec<Vec<Vec<u64>>>,
    dim_order: Vec<usize>,
    steps: Vec<Step>,
    factorisations: f64,
    /// The parts of the enumeration: choices of the first dims of `dim_order`, DAG state.
    parts: Vec<(Vec<u32>, u32)>,
    /// Factorisations × loop orders × bypass patterns, computed on first use.
    size: OnceLock<Count>,
    bypass_patterns: Count,
    notes: Vec<String>,
    /// Why the space has no mapping at all, when a dim has no factorisation.
    empty_reason: Option<String>,
    /// The latency budget every engine searches under ([`Mapspace::with_max_cycles`]).
    max_cycles: Option<u64>,
}

/// The prime factorisation of `n`: (prime, exponent) in increasing order.
pub fn prime_factors(mut n: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let mut p = 2;
    while p * p <= n {
        let mut e = 0;
        while n.is_multiple_of(p) {
            n /= p;
            e += 1;
        }
        if e > 0 {
            out.push((p, e));
        }
        p += 1;
    }
    if n > 1 {
        out.push((n, 1));
    }
    out
}

fn divisors(n: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (1..)
        .take_while(|i| i * i <= n)
        .filter(|&i| n.is_multiple_of(i))
        .collect();
    let big: Vec<u64> = out
        .iter()
        .rev()
        .map(|i| n / i)
        .filter(|&j| j * j != n)
        .collect();
    out.extend(big);
    out
}

fn factorial(n: usize) -> u128 {
    (1..=n as u128).product()
}

impl Mapspace {
    // -----------------------------------------------------------------------------------------
    // Accessors
    // -----------------------------------------------------------------------------------------

    pub fn problem(&self) -> &Problem {
        &self.problem
    }
    pub fn arch(&self) -> &Arch {
        &self.arch
    }
    /// All slots: per level (innermost first) spatial X, spatial Y (where present), temporal.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
    pub fn level_slots(&self, level: usize) -> LevelSlots {
        self.level_slots[level]
    }
    /// Prime factorisation of dim `d`'s bound: (prime, exponent), ascending.
    pub fn prime_factors(&self, d: usize) -> &[(u64, u32)] {
        &self.primes[d]
    }
    /// The factors dim `d` can take in `slot` (in at least one allowed per-dim factorisation).
    pub fn allowed_factors(&self, d: usize, slot: usize) -> &[u64] {
        &self.allowed[d][slot]
    }
    /// Every factor vector (per slot) dim `d` may take on its own: exactly the per-dim
    /// constraints (bound, fixed/min/max factors, X/Y axis rules). The joint constraints on top
    /// are the fanouts (product over dims per spatial slot) and [`SpatialRule::order`].
    pub fn dim_choices(&self, d: usize) -> &[Vec<u64>] {
        &self.choices[d]
    }
    /// The resolved factor rule of dim `d` at `level` (for `Spatial`, on X·Y).
    pub fn factor_rule(&self, d: usize, level: usize, kind: LoopKind) -> Rule {
        self.rules[d][level][kind as usize]
    }
    pub fn spatial_rule(&self, level: usize) -> &SpatialRule {
        &self.spatial_rules[level]
    }
    /// The temporal permutation constraint of `level`: these dims (those with a non-unit
    /// factor) are the innermost loops, in this order; the others are free outside them.
    pub fn temporal_prefix(&self, level: usize) -> &[usize] {
        &self.prefix[level]
    }
    /// Whether the loop orders of `level` are enumerated (false for level 0: see the module
    /// doc).
    pub fn orders_enumerated(&self, level: usize) -> bool {
        self.enumerate_orders[level]
    }
    pub fn keep_choice(&self, level: usize, tensor: usize) -> KeepChoice {
        self.keep[level][tensor]
    }
    /// Why the space has no mapping, when the constraints leave a dim no factorisation (a
    /// checked reason for `infeasible`).
    pub fn empty_reason(&self) -> Option<&str> {
        self.empty_reason.as_deref()
    }
    /// Whether the space has no mapping at all ([`Mapspace::empty_reason`]); [`Mapspace::sample`]
    /// needs a space that is not.
    pub fn is_empty(&self) -> bool {
        self.empty_reason.is_some()
    }
    /// The space under a latency budget ([`crate::budget`]): every engine then ranks only the
    /// mappings the evaluator gives at most `max_cycles` cycles (at the bit choice priced), and
    /// its bounds are of that constrained problem. Membership ([`Mapspace::check`]), counts
    /// and sampling stay those of the whole space.
    pub fn with_max_cycles(mut self, max_cycles: Option<u64>) -> Mapspace {
        self.max_cycles = max_cycles;
        self
    }
    /// The latency budget, if any ([`Mapspace::with_max_cycles`]).
    pub fn max_cycles(&self) -> Option<u64> {
        self.max_cycles
    }
    /// Whether a mapping of `cycles` cycles meets the latency budget.
    pub fn within_budget(&self, cycles: u64) -> bool {
        self.max_cycles.is_none_or(|cap| cycles <= cap)
    }
    /// The (level, tensor) pairs whose keep/bypass is free.
    pub fn free_keeps(&self) -> &[(usize, usize)] {
        &self.free_keeps
    }
    /// Constraints dropped or adjusted while building the space.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}
