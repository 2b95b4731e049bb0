//! The bit-width-independent counts of one mapping: the structural checks, then per (level,
//! tensor) the reads, fills and updates of every child-parent transfer, its tiles and partitions.

use super::loads::{order_free_loads, timeloop_loads};
use super::nest::{box_points, distinct_offsets, Nest, RankTerm};
use super::packing::div_ceil;
use super::{Evaluation, Evaluator};
use crate::model::{KeepRule, Mapping, ModelOptions};

/// The bit-width-independent part of an evaluation: per (level, tensor) scalar counts per
/// instance, tile extents and spatial use. Pricing turns them into words, energy and cycles at
/// some bit-widths, so one mapping can be priced at many bit-widths for the cost of one count.
/// Per (level, tensor) tables are flat, indexed `level * tensors + tensor`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Number of tensors (the row length of the per (level, tensor) tables).
    pub(super) nt: usize,
    pub(super) macs: u64,
    pub(super) keep: Vec<bool>,
    pub(super) spatial_above: Vec<u64>,
    pub(super) mac_instances_used: u64,
    pub(super) compute_cycles: u64,
    pub(super) reads: Vec<u64>,
    pub(super) fills: Vec<u64>,
    pub(super) updates: Vec<u64>,
    pub(super) partition: Vec<u64>,
    /// Points of each tensor's tile at each level.
    pub(super) tile_points: Vec<u64>,
    /// The outermost level keeping each tensor.
    pub(super) outer_keeper: Vec<usize>,
}

impl Counts {
    /// Index of (level `l`, tensor `t`) in the per (level, tensor) tables.
    pub(super) fn at(&self, l: usize, t: usize) -> usize {
        l * self.nt + t
    }
}

/// How the order-free counts of a partial mapping (the problem with some dims left out: their
/// bound is 1) are raised to bound every mapping that completes it
/// ([`Evaluator::completion_count`]).
/// Completing a partial mapping only adds loops, steps, tile points and instances in use, so
/// no count falls; beyond that:
/// - where the left-out dims scale a tensor's counts in proportion, its counts at a level are
///   multiplied by `scale` (worked out by `search::PartialBounds`);
/// - the MACs' operand reads grow with the compute steps: by `steps_scale`, the least product
///   of the left-out dims' temporal factors, whatever the tensor's ranks (halos included);
/// - every point some MAC uses is read from each level keeping the tensor, and filled into
///   each level but the outermost one keeping it (written, for a read-write tensor), at least
///   once in all: the per-instance counts are at least `used_points` over the instances a
///   completion can use (those in use times `spread`).
#[derive(Debug, Clone, Default)]
pub struct CompletionBound {
    /// Per (level, tensor) (`level * tensors + tensor`): the factor its counts grow by.
    pub scale: Vec<u64>,
    /// The factor the compute steps grow by.
    pub steps_scale: u64,
    /// Per tensor: the points of the full problem's tensor that some MAC uses
    /// ([`crate::model::Tensor::used_points`]).
    pub used_points: Vec<u64>,
    /// Per level: the largest factor the left-out dims' spatial loops above it multiply its
    /// instances in use by.
    pub spread: Vec<u64>,
}

impl<'a> Evaluator<'a> {
    /// The structural checks (factor products, fanouts, keep rules) and the scalar counts of a
    /// mapping; an invalid mapping comes back as its invalid evaluation. Of `opts` only the
    /// number of bit-widths and `seed_compat` are used.
    pub fn count(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
    ) -> Result<&Counts, Box<Evaluation>> {
        self.count_as(mapping, opts, false)
    }

    /// Counts no higher than those of any loop order of `mapping`'s factorisation and keep
    /// pattern: each transfer between a child and a parent keeper at the loop order best for
    /// it (`order_free_loads`). Priced like [`Evaluator::count`]'s (prices only grow with
    /// counts), they bound the energy and cycles of every such mapping from below. Validity
    /// does not depend on loop order: invalid exactly when `mapping` is.
    pub fn order_free_count(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
    ) -> Result<&Counts, Box<Evaluation>> {
        self.count_as(mapping, opts, true)
    }

    /// Counts no higher than those of any mapping that completes `mapping`, a partial mapping
    /// of the evaluator's problem (the full problem with some dims left out: bound 1), in the
    /// full problem: [`Evaluator::order_free_count`] raised as `bound` says
    /// ([`CompletionBound`]).
    pub fn completion_count(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
        bound: &CompletionBound,
    ) -> Result<&Counts, Box<Evaluation>> {
        self.count_as(mapping, opts, true)?;
        let c = &mut self.counts;
        let (nt, nl) = (c.nt, c.spatial_above.len());
        for (t, tensor) in self.problem.tensors.iter().enumerate() {
            let innermost = (0..nl).find(|&l| c.keep[l * nt + t]);
            for l in (0..nl).filter(|&l| c.keep[l * nt + t]) {
                let i = l * nt + t;
                let scale = bound.scale[i];
                // Every instance of l in use counts the same; a completion uses at most
                // `spread[l]` times as many.
                let floor = div_ceil(
                    bound.used_points[t],
                    c.spatial_above[l].saturating_mul(bound.spread[l]),
                );
                let (reads, fills, updates) = (&mut c.reads[i], &mut c.fills[i], &mut c.updates[i]);
                if tensor.read_write {
                    *reads = reads.saturating_mul(scale);
                    *fills = fills.saturating_mul(scale);
                    *updates = updates.saturating_mul(scale).max(floor);
                } else {
                    // The innermost keeper's reads are the MACs' operands, one per compute
                    // step and distinct tile.
                    let read_scale = if Some(l) == innermost {
                        scale.max(bound.steps_scale)
                    } else {
                        scale
                    };
                    *reads = reads.saturating_mul(read_scale).max(floor);
                    *fills = fills.saturating_mul(scale);
                    if l != c.outer_keeper[t] {
                        *fills = (*fills).max(floor);
                    }
                    *updates = updates.saturating_mul(scale);
                }
            }
        }
        Ok(&self.counts)
    }

    /// The checks and counts of [`Evaluator::count`]; with `order_free`, each child's loads at
    /// the loop order best for them ([`Evaluator::order_free_count`]).
    fn count_as(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
        order_free: bool,
    ) -> Result<&Counts, Box<Evaluation>> {
        self.check_shape(mapping, opts)?;
        self.nest.build(mapping, self.problem.dims.len());
        self.check_factors()?;
        for l in 0..mapping.levels.len() {
            self.check_level(mapping, l)?;
        }
        self.check_kept(mapping)?;
        self.reset_counts(mapping);
        // Tiles, partitions and distinct tiles per fanout depend only on the tile extents and
        // the spatial loops, often the same as the previous mapping's (another loop order).
        self.nest.tiles_key(&mut self.key.1);
        if self.key.1 != self.key.0 {
            std::mem::swap(&mut self.key.0, &mut self.key.1);
            self.count_tiles();
        }
        for t in 0..self.problem.tensors.len() {
            self.count_transfers(t, order_free, opts.seed_compat);
        }
        Ok(&self.counts)
    }

    /// The mapping's number of levels and the number of bit-widths in `opts` against the
    /// architecture's levels and the problem's tensors.
    fn check_shape(&self, mapping: &Mapping, opts: &ModelOptions) -> Result<(), Box<Evaluation>> {
        let (macs, nt, nl) = (
            self.problem.macs(),
            self.problem.tensors.len(),
            self.arch.levels.len(),
        );
        if mapping.levels.len() != nl {
            return Err(invalid(
                None,
                format!(
                    "mapping has {} levels, the architecture {}",
                    mapping.levels.len(),
                    nl
                ),
                macs,
            ));
        }
        if let Some(b) = &opts.bits {
            if b.0.len() != nt {
                return Err(invalid(
                    None,
                    format!("{} bit-widths for {} tensors", b.0.len(), nt),
                    macs,
                ));
            }
        }
        Ok(())
    }

    /// The factors of every dim in the nest multiply to its bound.
    fn check_factors(&self) -> Result<(), Box<Evaluation>> {
        let problem = self.problem;
        let outermost = self.nest.ext(self.arch.levels.len() - 1);
        for (d, &prod) in outermost.iter().enumerate() {
            if prod != problem.bounds[d] {
                return Err(invalid(
                    None,
                    format!(
                        "factors of {} multiply to {}, the bound is {}",
                        problem.dims[d], prod, problem.bounds[d]
                    ),
                    problem.macs(),
                ));
            }
        }
        Ok(())
    }

    /// Level `l`'s spatial factors fit its fanout and its keep list its keep rules.
    fn check_level(&self, mapping: &Mapping, l: usize) -> Result<(), Box<Evaluation>> {
        let (problem, level, lm) = (self.problem, &self.arch.levels[l], &mapping.levels[l]);
        let (macs, nt) = (problem.macs(), problem.tensors.len());
        let at_level = |reason: String| invalid(Some(&level.name), reason, macs);
        let (fx, fy) = self.fanouts[l];
        let (sx, sy) = self.nest.spatial_xy[l];
        if sx > fx || sy > fy {
            return Err(at_level(format!(
                "spatial factors {sx}x{sy} exceed the fanout {fx}x{fy}"
            )));
        }
        if lm.keep.len() != nt {
            return Err(at_level("keep list does not match the tensors".into()));
        }
        for (t, tensor) in problem.tensors.iter().enumerate() {
            match (self.keep_rules[l * nt + t], lm.keep[t]) {
                (KeepRule::Must, false) => {
                    return Err(at_level(format!(
                        "must keep {} but the mapping bypasses it",
                        tensor.name
                    )))
                }
                (KeepRule::Never, true) => {
                    return Err(at_level(format!(
                        "cannot keep {} but the mapping keeps it",
                        tensor.name
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Every tensor is kept at some level.
    fn check_kept(&self, mapping: &Mapping) -> Result<(), Box<Evaluation>> {
        for (t, tensor) in self.problem.tensors.iter().enumerate() {
            if !mapping.levels.iter().any(|lm| lm.keep[t]) {
                return Err(invalid(
                    None,
                    format!("{} is kept at no level", tensor.name),
                    self.problem.macs(),
                ));
            }
        }
        Ok(())
    }

    /// Sets the counts' keep pattern, instances in use and compute cycles from `mapping` and
    /// its nest, and zeroes the per (level, tensor) scalar counts.
    fn reset_counts(&mut self, mapping: &Mapping) {
        let (nest, c) = (&self.nest, &mut self.counts);
        let (nt, nl) = (self.problem.tensors.len(), self.arch.levels.len());
        c.nt = nt;
        c.macs = self.problem.macs();
        c.keep.clear();
        for lm in &mapping.levels {
            c.keep.extend_from_slice(&lm.keep);
        }
        // Instances used: product of the spatial factors above a level.
        c.spatial_above.clear();
        c.spatial_above.resize(nl, 1);
        for l in (0..nl - 1).rev() {
            let (sx, sy) = nest.spatial_xy[l + 1];
            c.spatial_above[l] = c.spatial_above[l + 1] * (sx * sy);
        }
        c.mac_instances_used = nest.spatial_xy.iter().map(|(x, y)| x * y).product();
        c.compute_cycles = nest.temporal_product;

        // Per (level, tensor) raw scalar counts per instance.
        for v in [&mut c.reads, &mut c.fills, &mut c.updates] {
            v.clear();
            v.resize(nl * nt, 0);
        }
        c.outer_keeper.resize(nt, 0);
    }

    /// Adds tensor `t`'s transfers between each keeper and the next one out (the MACs first)
    /// to the counts, and records its outermost keeper.
    fn count_transfers(&mut self, t: usize, order_free: bool, seed_compat: bool) {
        let (nest, c) = (&self.nest, &mut self.counts);
        let (nd, nt, nl) = (nest.nd, c.nt, self.arch.levels.len());
        let tensor = &self.problem.tensors[t];
        let terms = &self.terms[t][..];
        let relevant = &self.relevant[t * nd..(t + 1) * nd];
        let distinct = |l: usize| self.distinct[l * nt + t];
        // Child = None stands for the MACs.
        let mut child: Option<usize> = None;
        for parent in (0..nl).filter(|&l| c.keep[l * nt + t]) {
            let tile = child.map_or(1, |ch| c.tile_points[ch * nt + t]);
            let transfer = transfers(
                terms, nest, relevant, distinct, tile, child, parent, order_free,
            );
            match child {
                None => {
                    // The MACs: every compute step needs its operand.
                    if tensor.read_write {
                        c.updates[parent * nt + t] += transfer.parent_accesses;
                    } else {
                        c.reads[parent * nt + t] += transfer.parent_accesses;
                    }
                }
                Some(ch) => {
                    let i = ch * nt + t;
                    if tensor.read_write {
                        let mut f = transfer.child_loads - c.partition[i];
                        if seed_compat {
                            f += c.partition[i];
                        }
                        c.fills[i] += f;
                        c.updates[parent * nt + t] += transfer.parent_accesses;
                    } else {
                        c.fills[i] += transfer.child_loads;
                        c.reads[parent * nt + t] += transfer.parent_accesses;
                    }
                }
            }
            child = Some(parent);
        }
        c.outer_keeper[t] = child.expect("every tensor is kept somewhere");
        if tensor.read_write {
            for i in (0..nl).map(|l| l * nt + t).filter(|&i| c.keep[i]) {
                c.reads[i] += c.updates[i] - c.partition[i].min(c.updates[i]);
            }
        }
    }

    /// Tile points, partitions and distinct tiles per fanout of every (level, tensor), from
    /// the nest's extents and spatial loops.
    fn count_tiles(&mut self) {
        let (nest, c) = (&self.nest, &mut self.counts);
        let (nd, nt, nl) = (nest.nd, c.nt, nest.spatial_xy.len());
        c.partition.resize(nl * nt, 0);
        c.tile_points.resize(nl * nt, 0);
        self.distinct.resize(nl * nt, 1);
        for t in 0..nt {
            let terms = &self.terms[t][..];
            for l in 0..nl {
                let ext = nest.ext(l);
                c.tile_points[l * nt + t] = box_points(terms, |d| ext[d]);
                let fanout = nest.fanout_loops(l);
                self.distinct[l * nt + t] = if fanout.is_empty() {
                    1
                } else {
                    distinct_offsets(terms, fanout, &mut self.offsets)
                };
            }
            // Partition: the points one instance is responsible for over the whole run. From
            // the whole tensor at the outermost level down, each spatial fanout divides it by
            // the ratio of a child's tile to the bounding box of all its siblings' tiles
            // (Timeloop's rule; with halos the ratio is not the fanout, and the division
            // truncates).
            c.partition[(nl - 1) * nt + t] = c.tile_points[(nl - 1) * nt + t];
            for l in (0..nl - 1).rev() {
                let (above, tile) = (c.partition[(l + 1) * nt + t], c.tile_points[l * nt + t]);
                c.partition[l * nt + t] = if nest.spatial_xy[l + 1] == (1, 1) && tile != 0 {
                    // No fanout: the siblings' box is the child's tile, the ratio 1.
                    above
                } else {
                    let (ext, fanout) = (nest.ext(l), &nest.spatial[(l + 1) * nd..(l + 2) * nd]);
                    let siblings = box_points(terms, |d| ext[d] * fanout[d]);
                    // In u128: the product of two tensor sizes passes u64.
                    (above as u128 * tile as u128 / siblings as u128) as u64
                };
            }
        }
    }
}

/// The invalid evaluation of a mapping of `macs` MACs, boxed for a `Result`'s error.
fn invalid(level: Option<&str>, reason: String, macs: u64) -> Box<Evaluation> {
    Box::new(Evaluation::invalid(level, reason, macs))
}

/// Transfers of one tensor between a child keeper (None = the MACs) and its parent keeper.
pub(super) struct Transfer {
    /// Points loaded into one child instance over the run.
    child_loads: u64,
    /// Points one parent instance reads (or, for Outputs, absorbs) over the run for all the
    /// children it serves.
    parent_accesses: u64,
}

/// `relevant[d]`: whether the tensor uses dim d; `distinct(l)`: the distinct tiles among the
/// children of level l's fanout; `tile`: the points of the child's tile (1 for the MACs).
/// With `order_free`, the child's loads at the loop order best for them
/// ([`order_free_loads`]) instead of at the nest's.
#[allow(clippy::too_many_arguments)]
pub(super) fn transfers(
    terms: &[RankTerm],
    nest: &Nest,
    relevant: &[bool],
    distinct: impl Fn(usize) -> u64,
    tile: u64,
    child: Option<usize>,
    parent: usize,
    order_free: bool,
) -> Transfer {
    // One parent access serves every child with an identical tile (multicast; for Outputs,
    // spatial reduction). Identity is judged per level's fanout, as Timeloop groups the
    // children of each spatial fanout by identical tiles: children that differ only in loops
    // over dims the tensor does not use share a tile, and so do children whose offsets
    // coincide (e.g. spatial R and P with stride 2). Overlapping halos of neighbouring
    // tiles are not merged.
    let first_level = child.map_or(0, |c| c + 1);
    let distinct: u64 = (first_level..=parent).map(distinct).product();
    // The temporal loops above the child (for the MACs, every loop), innermost first.
    let above = nest.temporal_from(first_level);
    let steps: u64 = above.iter().map(|l| l.factor).product();
    if child.is_none() {
        // Operands are fetched for every compute step.
        return Transfer {
            child_loads: steps,
            parent_accesses: steps * distinct,
        };
    }
    // Timeloop counts the loads of a child tile from the deltas between consecutive tiles of
    // its extrapolated walk ([`timeloop_loads`]); the order-free bound takes the loop order
    // best for them ([`order_free_loads`]).
    let child_ext = nest.ext(first_level - 1);
    let child_loads = if order_free {
        order_free_loads(terms, nest, relevant, child_ext, tile, first_level, steps)
    } else {
        timeloop_loads(terms, child_ext, tile, above)
    };
    Transfer {
        child_loads,
        parent_accesses: child_loads * distinct,
    }
}
