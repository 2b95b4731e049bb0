//! The evaluator: Timeloop's analytical model (v3 legacy nest analysis, dense tensors) plus the
//! seed's mixed-precision packing. The single source of truth for every cost qmap reports.
//!
//! The counting rules are written out in `docs/model.md`; in short, for each tensor and each pair
//! (child keeper, parent keeper) the temporal loops above the child decide how often the child's
//! tile is (re)loaded and the spatial loops between them decide how many of those loads one parent
//! read serves (multicast) or one parent update absorbs (spatial reduction).

mod counts;
mod loads;
mod nest;
mod packing;
mod price;
#[cfg(test)]
mod tests;

pub use counts::{CompletionBound, Counts};
pub use packing::{
    operands_per_word, packing_signature, tensor_packing_signature, PackingSignature,
};
pub use price::{combine_storage, combined_cycles, mac_energy_per_op, tensor_price, TensorPrice};

use crate::model::{Arch, KeepRule, Mapping, ModelOptions, Problem};
use nest::{rank_terms, Nest, RankTerm};
use price::{mac_energy, price, price_core};
use serde::Serialize;

/// Why a mapping is not valid for the architecture and problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invalid {
    /// The level at fault, when there is one.
    pub level: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.level {
            Some(l) => write!(f, "level {l}: {}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Counts and energy of one tensor at one level.
#[derive(Debug, Clone, Serialize)]
pub struct TensorStats {
    pub name: String,
    /// Points of the tensor in one instance's tile (bounding box).
    pub tile_points: u64,
    /// Words the tile occupies after packing.
    pub tile_words: u64,
    /// Distinct points one instance touches over the whole run.
    pub partition_size: u64,
    /// Operands per word (1 = no packing).
    pub packing: u64,
    /// Instances of this level that hold the tensor.
    pub instances: u64,
    pub reads: u64,
    pub fills: u64,
    pub updates: u64,
    pub reads_per_instance: u64,
    pub fills_per_instance: u64,
    pub updates_per_instance: u64,
    pub energy_pj: f64,
}

/// One storage level's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct LevelStats {
    pub name: String,
    pub instances_used: u64,
    pub energy_pj: f64,
    /// Cycles this level needs (compute cycles stretched by its bandwidth).
    pub cycles: u64,
    /// Words of the level used by the tiles it keeps (per instance).
    pub utilized_words: u64,
    pub capacity_words: Option<u64>,
    pub tensors: Vec<TensorStats>,
}

/// The evaluator's full result for one mapping.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<Invalid>,
    /// Dynamic energy: MACs + all levels (pJ).
    pub energy_pj: f64,
    pub cycles: u64,
    pub macs: u64,
    pub utilization: f64,
    pub mac_instances_used: u64,
    pub mac_energy_pj: f64,
    pub compute_cycles: u64,
    pub levels: Vec<LevelStats>,
}

impl Evaluation {
    fn invalid(level: Option<&str>, reason: String, macs: u64) -> Evaluation {
        Evaluation {
            valid: false,
            invalid: Some(Invalid {
                level: level.map(str::to_string),
                reason,
            }),
            energy_pj: f64::INFINITY,
            cycles: 0,
            macs,
            utilization: 0.0,
            mac_instances_used: 0,
            mac_energy_pj: 0.0,
            compute_cycles: 0,
            levels: Vec::new(),
        }
    }

    /// Energy × cycles (pJ·cycles).
    pub fn edp(&self) -> f64 {
        self.energy_pj * self.cycles as f64
    }
}

/// Per (problem, architecture) tables of the evaluator and the buffers it counts and prices
/// one mapping in: evaluating many mappings of one problem on one architecture through one
/// `Evaluator` allocates nothing per mapping. [`evaluate`] is an `Evaluator` used once.
#[derive(Debug, Clone)]
pub struct Evaluator<'a> {
    problem: &'a Problem,
    arch: &'a Arch,
    /// Keep rule of each tensor at each level (`level * tensors + tensor`).
    keep_rules: Vec<KeepRule>,
    fanouts: Vec<(u64, u64)>,
    /// Whether each tensor uses each dim (`tensor * dims + dim`).
    relevant: Vec<bool>,
    /// Per tensor, its ranks' terms in one list ([`RankTerm`]).
    terms: Vec<Vec<RankTerm>>,
    nest: Nest,
    /// Distinct tiles among the children of each level's fanout, per tensor
    /// (`level * tensors + tensor`).
    distinct: Vec<u64>,
    /// Scratch offsets for [`distinct_offsets`].
    offsets: (Vec<u64>, Vec<u64>),
    /// What the tiles in `counts` and `distinct` were counted for ([`Nest::tiles_key`]), and
    /// scratch for the current mapping's.
    key: (Vec<u64>, Vec<u64>),
    counts: Counts,
    prices: Vec<TensorPrice>,
}

/// Evaluates `mapping` of `problem` on `arch` under `opts`. Invalid mappings come back with
/// `valid: false` and the reason; malformed inputs (wrong number of levels or tensors) too.
pub fn evaluate(
    problem: &Problem,
    arch: &Arch,
    mapping: &Mapping,
    opts: &ModelOptions,
) -> Evaluation {
    Evaluator::new(problem, arch).evaluate(mapping, opts)
}

impl<'a> Evaluator<'a> {
    pub fn new(problem: &'a Problem, arch: &'a Arch) -> Evaluator<'a> {
        let nd = problem.dims.len();
        Evaluator {
            problem,
            arch,
            keep_rules: (0..arch.levels.len())
                .flat_map(|l| {
                    problem
                        .tensors
                        .iter()
                        .map(move |t| arch.keep_rule(l, &t.name))
                })
                .collect(),
            fanouts: (0..arch.levels.len()).map(|l| arch.fanout(l)).collect(),
            relevant: problem
                .tensors
                .iter()
                .flat_map(|t| (0..nd).map(|d| t.relevant(d)))
                .collect(),
            terms: problem.tensors.iter().map(rank_terms).collect(),
            nest: Nest::default(),
            distinct: Vec::new(),
            offsets: (Vec::new(), Vec::new()),
            key: (Vec::new(), Vec::new()),
            counts: Counts::default(),
            prices: Vec::new(),
        }
    }

    /// Evaluates `mapping` under `opts`, like [`evaluate`].
    pub fn evaluate(&mut self, mapping: &Mapping, opts: &ModelOptions) -> Evaluation {
        if let Err(invalid) = self.count(mapping, opts) {
            return *invalid;
        }
        price(
            self.problem,
            self.arch,
            &self.counts,
            &mut self.prices,
            opts,
        )
    }

    /// The energy (pJ, MACs included) and cycles [`Evaluator::evaluate`] gives `mapping`, None
    /// when it is invalid; the same computation without the per-level breakdown.
    pub fn score(&mut self, mapping: &Mapping, opts: &ModelOptions) -> Option<(f64, u64)> {
        self.count(mapping, opts).ok()?;
        self.score_counts(opts)
    }

    /// The energy (pJ, MACs included) and cycles of the counts last counted, priced under
    /// `opts`; None when they do not fit.
    fn score_counts(&mut self, opts: &ModelOptions) -> Option<(f64, u64)> {
        let c = &self.counts;
        let (storage, cycles, _) =
            price_core(self.problem, self.arch, c, &mut self.prices, opts, false).ok()?;
        Some((
            storage + mac_energy(self.problem, self.arch, c, opts),
            cycles,
        ))
    }

    /// Lower bounds on the energy (pJ, MACs included) and the cycles of every mapping that
    /// differs from `mapping` only in its loop orders ([`Evaluator::order_free_count`] priced);
    /// None when they are invalid.
    pub fn order_free_score(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
    ) -> Option<(f64, u64)> {
        self.order_free_count(mapping, opts).ok()?;
        self.score_counts(opts)
    }

    /// [`Evaluator::completion_count`] priced like [`Evaluator::order_free_score`].
    pub fn completion_score(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
        bound: &CompletionBound,
    ) -> Option<(f64, u64)> {
        self.completion_count(mapping, opts, bound).ok()?;
        self.score_counts(opts)
    }
}
