//! The evaluator: Timeloop's analytical model (v3 legacy nest analysis, dense tensors) plus the
//! seed's mixed-precision packing. The single source of truth for every cost qmap reports.
//!
//! The counting rules are written out in `docs/model.md`; in short, for each tensor and each pair
//! (child keeper, parent keeper) the temporal loops above the child decide how often the child's
//! tile is (re)loaded and the spatial loops between them decide how many of those loads one parent
//! read serves (multicast) or one parent update absorbs (spatial reduction).

use crate::model::{Arch, KeepRule, Loop, Mapping, ModelOptions, Problem, PsumPolicy};
use crate::spec::PackingMode;
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

/// Operands per word of a `bits`-wide value in `word_bits`-wide words (the seed's rule): words
/// of one bit are placeholders and never pack.
pub fn operands_per_word(word_bits: u64, bits: u64) -> u64 {
    if word_bits > 1 && bits < word_bits {
        div_floor(word_bits, bits)
    } else {
        1
    }
}

/// What the evaluator does with bit-widths, apart from MAC energy, as comparable data.
pub type PackingSignature = Vec<(u8, u64)>;

/// What pricing does with tensor `t`'s bit-width at every level: two option sets with equal
/// signatures for `t` price its transfers identically.
pub fn tensor_packing_signature(
    arch: &Arch,
    problem: &Problem,
    opts: &ModelOptions,
    t: usize,
) -> PackingSignature {
    let psum = match opts.psum {
        PsumPolicy::Bits(b) if problem.tensors[t].read_write => b as u64,
        _ => 0,
    };
    let mut sig = vec![(4, psum), (6, capacity_in_bits(opts) as u64)];
    for level in &arch.levels {
        let p = Packer::new(
            opts.packing,
            opts.bits
                .as_ref()
                .map_or(level.word_bits, |b| b.0[t] as u64),
            level.word_bits,
        );
        sig.push(if p.word_bits <= 1 || p.bits == p.word_bits {
            (0, 0)
        } else {
            match p.mode {
                PackingMode::Seed if p.bits > p.word_bits => (1, p.bits.div_ceil(p.word_bits)),
                PackingMode::Seed => (2, p.k()),
                PackingMode::Ideal => (3, p.bits),
            }
        });
    }
    sig
}

/// What the evaluator does with every tensor's bit-width, apart from MAC energy: two option
/// sets with equal signatures give every mapping the same storage counts, capacities and
/// storage energy (their energies differ only by MACs × the per-MAC energy difference).
pub fn packing_signature(arch: &Arch, problem: &Problem, opts: &ModelOptions) -> PackingSignature {
    let mut sig = vec![(5, opts.seed_compat as u64)];
    for t in 0..problem.tensors.len() {
        sig.extend(tensor_packing_signature(arch, problem, opts, t));
    }
    sig
}

/// How one tensor's counts at one level become words.
#[derive(Debug, Clone, Copy)]
struct Packer {
    mode: PackingMode,
    bits: u64,
    word_bits: u64,
    /// Operands per word ([`operands_per_word`]).
    k: u64,
}

impl Packer {
    fn new(mode: PackingMode, bits: u64, word_bits: u64) -> Packer {
        Packer {
            mode,
            bits,
            word_bits,
            k: operands_per_word(word_bits, bits),
        }
    }
    fn k(&self) -> u64 {
        self.k
    }
    /// Words for `n` scalars.
    fn words(&self, n: u64) -> u64 {
        if self.word_bits <= 1 || self.bits == self.word_bits {
            return n;
        }
        match self.mode {
            PackingMode::Seed => {
                if self.bits > self.word_bits {
                    n * self.bits.div_ceil(self.word_bits)
                } else {
                    div_ceil(n, self.k)
                }
            }
            PackingMode::Ideal => div_ceil(n * self.bits, self.word_bits),
        }
    }
}

/// `n / d`, by a shift when `d` is a power of two.
fn div_floor(n: u64, d: u64) -> u64 {
    if d.is_power_of_two() {
        n >> d.trailing_zeros()
    } else {
        n / d
    }
}

/// `n.div_ceil(d)`, by a shift when `d` is a power of two (word and block sizes usually are).
fn div_ceil(n: u64, d: u64) -> u64 {
    if d.is_power_of_two() {
        let s = d.trailing_zeros();
        (n >> s) + (n & (d - 1) != 0) as u64
    } else {
        n.div_ceil(d)
    }
}

/// The bit-width-independent part of an evaluation: per (level, tensor) scalar counts per
/// instance, tile extents and spatial use. Pricing turns them into words, energy and cycles at
/// some bit-widths, so one mapping can be priced at many bit-widths for the cost of one count.
/// Per (level, tensor) tables are flat, indexed `level * tensors + tensor`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Number of tensors (the row length of the per (level, tensor) tables).
    nt: usize,
    macs: u64,
    keep: Vec<bool>,
    spatial_above: Vec<u64>,
    mac_instances_used: u64,
    compute_cycles: u64,
    reads: Vec<u64>,
    fills: Vec<u64>,
    updates: Vec<u64>,
    partition: Vec<u64>,
    /// Points of each tensor's tile at each level.
    tile_points: Vec<u64>,
    /// The outermost level keeping each tensor.
    outer_keeper: Vec<usize>,
}

impl Counts {
    /// Index of (level `l`, tensor `t`) in the per (level, tensor) tables.
    fn at(&self, l: usize, t: usize) -> usize {
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

/// One loop of the flattened nest (innermost first).
#[derive(Debug, Clone, Copy)]
struct NestLoop {
    dim: usize,
    factor: u64,
    /// Product of the factors of the same dim on all loops inside this one.
    stride: u64,
}

impl NestLoop {
    /// Appends mapping loop `l` (a non-unit factor) to `loops`, outside the loops already
    /// there, and widens its dim's extent `ext` by the factor.
    fn push(loops: &mut Vec<NestLoop>, ext: &mut [u64], l: &Loop) {
        if l.factor > 1 {
            loops.push(NestLoop {
                dim: l.dim,
                factor: l.factor,
                stride: ext[l.dim],
            });
        }
        ext[l.dim] *= l.factor;
    }
}

/// The loop nest of one mapping flattened innermost first (per level, its spatial loops, the
/// fanout below it, then its temporal loops), and what the counting rules read from it: its
/// spatial and its temporal loops, each innermost first. Loops of factor 1 are left out of
/// them: they change no count.
#[derive(Debug, Clone, Default)]
struct Nest {
    nd: usize,
    spatial_loops: Vec<NestLoop>,
    temporal_loops: Vec<NestLoop>,
    /// Index of each level's first loop in `spatial_loops` and in `temporal_loops`, plus the
    /// ends (levels + 1 entries).
    level_start: Vec<(usize, usize)>,
    /// Per level, the products of its X and of its Y spatial factors.
    spatial_xy: Vec<(u64, u64)>,
    /// Per level and dim (`level * dims + dim`), the product of its spatial factors.
    spatial: Vec<u64>,
    /// Per level and dim, the tile extent: cumulative factors of the level and below.
    ext: Vec<u64>,
    /// The product of all temporal factors (the compute cycles).
    temporal_product: u64,
}

impl Nest {
    fn build(&mut self, mapping: &Mapping, nd: usize) {
        let nl = mapping.levels.len();
        self.nd = nd;
        self.spatial_loops.clear();
        self.temporal_loops.clear();
        self.level_start.clear();
        self.spatial_xy.clear();
        self.spatial.clear();
        self.spatial.resize(nl * nd, 1);
        self.ext.clear();
        self.ext.resize(nl * nd, 1);
        self.temporal_product = 1;
        for (level, lm) in mapping.levels.iter().enumerate() {
            self.level_start
                .push((self.spatial_loops.len(), self.temporal_loops.len()));
            let base = level * nd;
            if level > 0 {
                self.ext.copy_within(base - nd..base, base);
            }
            let ext = &mut self.ext[base..base + nd];
            let spatial = &mut self.spatial[base..base + nd];
            let mut xy = [1u64; 2];
            for (axis, loops) in [&lm.spatial_x, &lm.spatial_y].into_iter().enumerate() {
                for l in loops.iter().filter(|l| l.factor != 1) {
                    xy[axis] *= l.factor;
                    spatial[l.dim] *= l.factor;
                    NestLoop::push(&mut self.spatial_loops, ext, l);
                }
            }
            for l in lm.temporal.iter().filter(|l| l.factor != 1) {
                self.temporal_product *= l.factor;
                NestLoop::push(&mut self.temporal_loops, ext, l);
            }
            self.spatial_xy.push((xy[0], xy[1]));
        }
        self.level_start
            .push((self.spatial_loops.len(), self.temporal_loops.len()));
    }

    /// What the tiles, partitions and distinct tiles per fanout are computed from: the tile
    /// extents, the spatial factors per dim and the spatial loops of every level.
    fn tiles_key(&self, key: &mut Vec<u64>) {
        key.clear();
        key.extend_from_slice(&self.ext);
        key.extend_from_slice(&self.spatial);
        key.extend(self.level_start.iter().map(|s| s.0 as u64));
        for l in &self.spatial_loops {
            key.extend([l.dim as u64, l.factor]);
        }
    }

    /// Tile extents of level `l` (per dim).
    fn ext(&self, l: usize) -> &[u64] {
        &self.ext[l * self.nd..(l + 1) * self.nd]
    }

    /// The spatial loops of level `l` (its fanout to the level below).
    fn fanout_loops(&self, l: usize) -> &[NestLoop] {
        &self.spatial_loops[self.level_start[l].0..self.level_start[l + 1].0]
    }

    /// The temporal loops of level `l` and above.
    fn temporal_from(&self, l: usize) -> &[NestLoop] {
        &self.temporal_loops[self.level_start[l].1..]
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

    fn count_as(
        &mut self,
        mapping: &Mapping,
        opts: &ModelOptions,
        order_free: bool,
    ) -> Result<&Counts, Box<Evaluation>> {
        let (problem, arch) = (self.problem, self.arch);
        let macs = problem.macs();
        let nd = problem.dims.len();
        let nt = problem.tensors.len();
        let nl = arch.levels.len();
        if mapping.levels.len() != nl {
            return Err(Box::new(Evaluation::invalid(
                None,
                format!(
                    "mapping has {} levels, the architecture {}",
                    mapping.levels.len(),
                    nl
                ),
                macs,
            )));
        }
        if let Some(b) = &opts.bits {
            if b.0.len() != nt {
                return Err(Box::new(Evaluation::invalid(
                    None,
                    format!("{} bit-widths for {} tensors", b.0.len(), nt),
                    macs,
                )));
            }
        }
        let nest = &mut self.nest;
        nest.build(mapping, nd);
        // Factor products.
        for d in 0..nd {
            let prod = nest.ext(nl - 1)[d];
            if prod != problem.bounds[d] {
                return Err(Box::new(Evaluation::invalid(
                    None,
                    format!(
                        "factors of {} multiply to {}, the bound is {}",
                        problem.dims[d], prod, problem.bounds[d]
                    ),
                    macs,
                )));
            }
        }
        // Fanout and keep rules.
        for (l, (lm, level)) in mapping.levels.iter().zip(&arch.levels).enumerate() {
            let (fx, fy) = self.fanouts[l];
            let (sx, sy) = nest.spatial_xy[l];
            if sx > fx || sy > fy {
                return Err(Box::new(Evaluation::invalid(
                    Some(&level.name),
                    format!("spatial factors {sx}x{sy} exceed the fanout {fx}x{fy}"),
                    macs,
                )));
            }
            if lm.keep.len() != nt {
                return Err(Box::new(Evaluation::invalid(
                    Some(&level.name),
                    "keep list does not match the tensors".into(),
                    macs,
                )));
            }
            for (t, tensor) in problem.tensors.iter().enumerate() {
                match (self.keep_rules[l * nt + t], lm.keep[t]) {
                    (KeepRule::Must, false) => {
                        return Err(Box::new(Evaluation::invalid(
                            Some(&level.name),
                            format!("must keep {} but the mapping bypasses it", tensor.name),
                            macs,
                        )))
                    }
                    (KeepRule::Never, true) => {
                        return Err(Box::new(Evaluation::invalid(
                            Some(&level.name),
                            format!("cannot keep {} but the mapping keeps it", tensor.name),
                            macs,
                        )))
                    }
                    _ => {}
                }
            }
        }
        for (t, tensor) in problem.tensors.iter().enumerate() {
            if !mapping.levels.iter().any(|lm| lm.keep[t]) {
                return Err(Box::new(Evaluation::invalid(
                    None,
                    format!("{} is kept at no level", tensor.name),
                    macs,
                )));
            }
        }

        let nest = &self.nest;
        let c = &mut self.counts;
        c.nt = nt;
        c.macs = macs;
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
        // Tiles, partitions and distinct tiles per fanout depend only on the tile extents and
        // the spatial loops, often the same as the previous mapping's (another loop order).
        nest.tiles_key(&mut self.key.1);
        if self.key.1 != self.key.0 {
            std::mem::swap(&mut self.key.0, &mut self.key.1);
            self.count_tiles();
        }
        let (nest, c) = (&self.nest, &mut self.counts);
        for (t, tensor) in problem.tensors.iter().enumerate() {
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
                            if opts.seed_compat {
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
        Ok(&self.counts)
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

/// One term `coef · dim` of a tensor rank's index expression, flagged when it is its rank's
/// last: a tensor's ranks as one list.
#[derive(Debug, Clone, Copy)]
struct RankTerm {
    coef: u64,
    dim: usize,
    last: bool,
}

fn rank_terms(tensor: &crate::model::Tensor) -> Vec<RankTerm> {
    let mut out = Vec::new();
    for rank in &tensor.ranks {
        for (i, t) in rank.iter().enumerate() {
            out.push(RankTerm {
                coef: t.coef,
                dim: t.dim,
                last: i + 1 == rank.len(),
            });
        }
    }
    out
}

/// Points of a tensor's bounding box (its tile size) for per-dim extents `ext(d)`, the tensor
/// given by its [`rank_terms`]; the same as [`crate::model::Tensor::tile_points`].
fn box_points(terms: &[RankTerm], ext: impl Fn(usize) -> u64) -> u64 {
    let (mut points, mut span) = (1u64, 0u64);
    for t in terms {
        span += t.coef * (ext(t.dim) - 1);
        if t.last {
            points *= span + 1;
            span = 0;
        }
    }
    points
}

/// Why pricing rejects counted transfers at some bit-widths.
enum PriceInvalid {
    Width { level: usize, tensor: usize },
    Capacity { level: usize, used: u64, cap: u64 },
}

/// Energy of the mapping's MACs at the bit-widths of `opts` (pJ).
fn mac_energy(problem: &Problem, arch: &Arch, c: &Counts, opts: &ModelOptions) -> f64 {
    c.macs as f64 * mac_energy_per_op(arch, problem, opts)
}

/// Words, capacity checks, energy and cycles of counted transfers at the bit-widths of `opts`
/// (`prices` is scratch).
fn price(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    prices: &mut Vec<TensorPrice>,
    opts: &ModelOptions,
) -> Evaluation {
    let macs = c.macs;
    match price_core(problem, arch, c, prices, opts, true) {
        Err(PriceInvalid::Width { level, tensor }) => {
            let (level, bits) = (
                &arch.levels[level],
                opts.bits.as_ref().map_or(0, |b| b.0[tensor]),
            );
            Evaluation::invalid(
                Some(&level.name),
                format!(
                    "{} at {bits} bits does not fit a {}-bit word",
                    problem.tensors[tensor].name, level.word_bits
                ),
                macs,
            )
        }
        Err(PriceInvalid::Capacity { level, used, cap }) => Evaluation::invalid(
            Some(&arch.levels[level].name),
            format!("mapped tile size {used} exceeds buffer capacity {cap}"),
            macs,
        ),
        Ok((energy, cycles, levels)) => {
            let mac_energy = mac_energy(problem, arch, c, opts);
            Evaluation {
                valid: true,
                invalid: None,
                energy_pj: energy + mac_energy,
                cycles,
                macs,
                utilization: c.mac_instances_used as f64 / arch.mac.instances as f64
                    * c.compute_cycles as f64
                    / cycles as f64,
                mac_instances_used: c.mac_instances_used,
                mac_energy_pj: mac_energy,
                compute_cycles: c.compute_cycles,
                levels,
            }
        }
    }
}

/// How tensor `t`'s counts at level `l` become words under `opts` (partial sums below the
/// outermost Outputs level at `psum_bits` when set).
fn packer(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    opts: &ModelOptions,
    l: usize,
    t: usize,
) -> Packer {
    let level = &arch.levels[l];
    let bits = match &opts.bits {
        None => level.word_bits,
        Some(b) => match opts.psum {
            PsumPolicy::Bits(pb) if problem.tensors[t].read_write && l < c.outer_keeper[t] => {
                pb as u64
            }
            _ => b.0[t] as u64,
        },
    };
    Packer::new(opts.packing, bits, level.word_bits)
}

/// One tensor's transfers at one level, priced.
#[derive(Debug, Clone, Copy, Default)]
struct LevelPrice {
    reads: u64,
    fills: u64,
    updates: u64,
    energy: f64,
    /// What its tile takes of the level: words, or bits under ideal packing.
    capacity_use: u64,
}

/// One tensor's transfers priced at one bit-width, per level (zeros where it is not kept).
/// A mapping's price is the combination of its tensors' prices, so a batch search prices each
/// tensor at each of its own packing classes and combines them per bit choice.
#[derive(Debug, Clone, Default)]
pub struct TensorPrice {
    levels: Vec<LevelPrice>,
    /// Storage energy over all levels (the sum of `levels[..].energy`).
    energy: f64,
}

impl TensorPrice {
    /// The tensor's storage energy over all levels (pJ). The sum over tensors equals the
    /// mapping's storage energy up to rounding (the evaluator sums level by level).
    pub fn energy(&self) -> f64 {
        self.energy
    }
}

/// Whether capacities are summed in bits (ideal packing of sub-word bit-widths).
fn capacity_in_bits(opts: &ModelOptions) -> bool {
    opts.packing == PackingMode::Ideal && opts.bits.is_some()
}

/// Prices tensor `t`'s counted transfers at the bit-widths of `opts` into `out`.
fn tensor_price_checked(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    t: usize,
    opts: &ModelOptions,
    out: &mut TensorPrice,
) -> Result<(), PriceInvalid> {
    out.levels.clear();
    out.levels.resize(arch.levels.len(), LevelPrice::default());
    for (l, level) in arch.levels.iter().enumerate() {
        let i = c.at(l, t);
        if !c.keep[i] {
            continue;
        }
        let p = packer(problem, arch, c, opts, l, t);
        // Bit-widths above the word size are invalid (except partial sums, which span words).
        if opts.bits.is_some() && level.word_bits > 1 && p.bits > level.word_bits {
            let is_psum = matches!(opts.psum, PsumPolicy::Bits(_))
                && problem.tensors[t].read_write
                && l < c.outer_keeper[t];
            if !is_psum {
                return Err(PriceInvalid::Width {
                    level: l,
                    tensor: t,
                });
            }
        }
        let (r, f, u) = (
            p.words(c.reads[i]),
            p.words(c.fills[i]),
            p.words(c.updates[i]),
        );
        let b = level.block_size;
        let e_inst = div_ceil(r, b) as f64 * level.read_energy
            + div_ceil(f, b) as f64 * level.write_energy
            + div_ceil(u, b) as f64 * level.update_energy;
        // A cluster of instances shares one physical vector: its energy is spread over the
        // utilized instances of each utilized cluster (Timeloop's cluster utilisation).
        let energy = e_inst * utilized_clusters(level, c.spatial_above[l]) as f64;
        let capacity_use = if capacity_in_bits(opts) {
            c.tile_points[i] * p.bits
        } else {
            p.words(c.tile_points[i])
        };
        out.levels[l] = LevelPrice {
            reads: r,
            fills: f,
            updates: u,
            energy,
            capacity_use,
        };
    }
    out.energy = out.levels.iter().map(|lp| lp.energy).sum();
    Ok(())
}

/// Prices tensor `t`'s transfers at the bit-widths of `opts` into `out` (whose buffers are
/// reused); false when its bit-width does not fit the words of a level keeping it.
pub fn tensor_price(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    t: usize,
    opts: &ModelOptions,
    out: &mut TensorPrice,
) -> bool {
    tensor_price_checked(problem, arch, c, t, opts, out).is_ok()
}

/// Capacity checks and storage energy (MACs excluded) of a mapping whose tensors are priced by
/// `part(t)` (for each tensor index t). Energies are summed level by level, tensors inner,
/// whichever way the parts were computed.
fn combine<'p>(
    arch: &Arch,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice,
    in_bits: bool,
) -> Result<f64, PriceInvalid> {
    let mut total = 0.0;
    for (l, level) in arch.levels.iter().enumerate() {
        let (mut energy, mut used) = (0.0, 0u64);
        for t in 0..c.nt {
            if c.keep[c.at(l, t)] {
                let lp = &part(t).levels[l];
                energy += lp.energy;
                used += lp.capacity_use;
            }
        }
        if !level.dummy {
            if let Some(cap) = level.capacity_words() {
                let used = if in_bits {
                    div_ceil(used, level.word_bits)
                } else {
                    used
                };
                if used > cap {
                    return Err(PriceInvalid::Capacity {
                        level: l,
                        used,
                        cap,
                    });
                }
            }
        }
        total += energy;
    }
    Ok(total)
}

/// Cycles of level `l` for a mapping whose tensors are priced by `part(t)`
/// ([`level_cycles`] over the words each tensor it keeps reads and writes per instance).
fn level_cycles_of<'p>(
    level: &crate::model::Level,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice,
    l: usize,
) -> u64 {
    let words = (0..c.nt).filter(|&t| c.keep[c.at(l, t)]).map(|t| {
        let lp = &part(t).levels[l];
        (lp.reads, lp.fills + lp.updates)
    });
    level_cycles(level, c.compute_cycles, words)
}

/// Cycles of a mapping whose tensors are priced by `part(t)`: the compute cycles stretched by
/// the slowest level's bandwidth.
pub fn combined_cycles<'p>(
    arch: &Arch,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice + Copy,
) -> u64 {
    let mut cycles = c.compute_cycles;
    for (l, level) in arch.levels.iter().enumerate() {
        cycles = cycles.max(level_cycles_of(level, c, part, l));
    }
    cycles
}

/// Cycles of a level: its compute cycles stretched by its read, write and shared bandwidths,
/// computed as Timeloop v3.0.3 does (`BufferLevel::ComputePerformance`, `src/model/buffer.cpp`):
/// per tensor kept (in the problem's tensor order), the demands `reads / C` and
/// `(fills + updates) / C` words per cycle per instance in double precision (C = compute
/// cycles), summed over tensors into DR and DW; the slowdown is the least of 1, `read_bw / DR`,
/// `write_bw / DW` and `shared_bw / (DR + DW)` (each only where the bandwidth is below the
/// demand), and the level takes `ceil(C / slowdown)` cycles, also in double precision, so
/// floating-point rounding can add a cycle to the exact `ceil(words / bandwidth)` (eyeriss
/// exercise, C=M=64 P=Q=14 3×3: 206,193 where the exact quotient gives 206,192).
fn level_cycles(
    level: &crate::model::Level,
    compute_cycles: u64,
    words: impl Iterator<Item = (u64, u64)>,
) -> u64 {
    if level.read_bandwidth.is_none()
        && level.write_bandwidth.is_none()
        && level.shared_bandwidth.is_none()
    {
        return compute_cycles;
    }
    let cc = compute_cycles as f64;
    let (mut dr, mut dw) = (0.0f64, 0.0f64);
    for (r, w) in words {
        dr += r as f64 / cc;
        dw += w as f64 / cc;
    }
    let mut slowdown = 1.0f64;
    if let Some(bw) = level.read_bandwidth.filter(|&bw| bw < dr) {
        slowdown = slowdown.min(bw / dr);
    }
    if let Some(bw) = level.write_bandwidth.filter(|&bw| bw < dw) {
        slowdown = slowdown.min(bw / dw);
    }
    if let Some(bw) = level.shared_bandwidth.filter(|&bw| bw < dr + dw) {
        slowdown = slowdown.min(bw / (dr + dw));
    }
    (cc / slowdown).ceil() as u64
}

/// Storage energy (pJ, MACs excluded) of a mapping from its tensors' prices `part(t)` at the
/// bit-widths of `opts` (the parts must be priced at `opts`' classes); None when the tiles do
/// not fit. Add MACs × [`mac_energy_per_op`] for the mapping's energy, [`combined_cycles`] for
/// cycles.
pub fn combine_storage<'p>(
    arch: &Arch,
    c: &Counts,
    part: impl Fn(usize) -> &'p TensorPrice,
    opts: &ModelOptions,
) -> Option<f64> {
    combine(arch, c, part, capacity_in_bits(opts)).ok()
}

/// Storage energy (MACs excluded), cycles and, with `detail`, the per-level breakdown
/// (`prices` is scratch).
fn price_core(
    problem: &Problem,
    arch: &Arch,
    c: &Counts,
    prices: &mut Vec<TensorPrice>,
    opts: &ModelOptions,
    detail: bool,
) -> Result<(f64, u64, Vec<LevelStats>), PriceInvalid> {
    let nt = problem.tensors.len();
    prices.resize_with(nt, TensorPrice::default);
    for (t, out) in prices.iter_mut().enumerate() {
        tensor_price_checked(problem, arch, c, t, opts, out)?;
    }
    let parts = &*prices;
    let part = |t: usize| &parts[t];
    let energy = combine(arch, c, part, capacity_in_bits(opts))?;
    let cycles = combined_cycles(arch, c, part);
    if !detail {
        return Ok((energy, cycles, vec![]));
    }
    let mut levels = Vec::with_capacity(arch.levels.len());
    for (l, level) in arch.levels.iter().enumerate() {
        let inst = c.spatial_above[l];
        let (mut tensors, mut level_energy, mut utilized_words) = (vec![], 0.0, 0);
        for (t, tensor) in problem.tensors.iter().enumerate() {
            let i = c.at(l, t);
            if !c.keep[i] {
                continue;
            }
            let lp = parts[t].levels[l];
            let p = packer(problem, arch, c, opts, l, t);
            let tile_points = c.tile_points[i];
            let tile_words = p.words(tile_points);
            level_energy += lp.energy;
            utilized_words += tile_words;
            tensors.push(TensorStats {
                name: tensor.name.clone(),
                tile_points,
                tile_words,
                partition_size: c.partition[i],
                packing: p.k(),
                instances: inst,
                reads: lp.reads * inst,
                fills: lp.fills * inst,
                updates: lp.updates * inst,
                reads_per_instance: lp.reads,
                fills_per_instance: lp.fills,
                updates_per_instance: lp.updates,
                energy_pj: lp.energy,
            });
        }
        levels.push(LevelStats {
            name: level.name.clone(),
            instances_used: inst,
            energy_pj: level_energy,
            cycles: level_cycles_of(level, c, part, l),
            utilized_words,
            capacity_words: level.capacity_words(),
            tensors,
        });
    }
    Ok((energy, cycles, levels))
}

/// Energy of one MAC at the model's bit-widths (weights × input activations; native widths use
/// the MAC's default energy).
pub fn mac_energy_per_op(arch: &Arch, problem: &Problem, opts: &ModelOptions) -> f64 {
    match &opts.bits {
        Some(b) => {
            let w = problem
                .tensor_index("Weights")
                .map(|t| b.0[t])
                .unwrap_or(16);
            let a = problem.tensor_index("Inputs").map(|t| b.0[t]).unwrap_or(16);
            arch.mac.energy_at(w, a)
        }
        None => arch.mac.energy_at(u32::MAX, u32::MAX),
    }
}

/// Clusters in use when `used` instances of `level` hold data: with a cluster size of 1, one per
/// instance; otherwise at most the number of clusters the level has.
fn utilized_clusters(level: &crate::model::Level, used: u64) -> u64 {
    if level.cluster_size <= 1 {
        used
    } else {
        used.min((level.instances / level.cluster_size).max(1))
    }
}

/// Transfers of one tensor between a child keeper (None = the MACs) and its parent keeper.
struct Transfer {
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
fn transfers(
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

/// Most ranks a tensor's per-rank vectors are kept on the stack for (more use the heap).
const STACK_RANKS: usize = 8;

/// Calls `f` with `n` zeroed per-rank scratch vectors of `ranks` entries each.
fn with_rank_scratch<R>(ranks: usize, n: usize, f: impl FnOnce(&mut [u64]) -> R) -> R {
    if ranks * n <= 4 * STACK_RANKS {
        let mut buf = [0u64; 4 * STACK_RANKS];
        f(&mut buf[..ranks * n])
    } else {
        f(&mut vec![0u64; ranks * n])
    }
}

/// Number of ranks of a tensor given by its [`rank_terms`].
fn rank_count(terms: &[RankTerm]) -> usize {
    terms.iter().filter(|t| t.last).count()
}

/// Per-rank extents of a tile with per-dim extents `ext` (its bounding box's sides).
fn rank_extents(terms: &[RankTerm], ext: &[u64], out: &mut [u64]) {
    let (mut r, mut span) = (0, 0u64);
    for t in terms {
        span += t.coef * (ext[t.dim] - 1);
        if t.last {
            out[r] = span + 1;
            (r, span) = (r + 1, 0);
        }
    }
}

/// Per-rank translation of a tile by one step of loop `l` (its dim moves by `l.stride`).
fn rank_moves(terms: &[RankTerm], l: &NestLoop, out: &mut [u64]) {
    let (mut r, mut shift) = (0, 0u64);
    for t in terms {
        if t.dim == l.dim {
            shift += t.coef * l.stride;
        }
        if t.last {
            out[r] = shift;
            (r, shift) = (r + 1, 0);
        }
    }
}

/// Points a tile of per-rank `extents` shares with its translate by `moves` (all ≥ 0).
fn overlap(extents: &[u64], moves: &[u64]) -> u64 {
    extents
        .iter()
        .zip(moves)
        .map(|(e, m)| e.saturating_sub(*m))
        .product()
}

/// Loads of a child tile of `tile` points and extents `child_ext` under the temporal loops
/// `above` it (every non-unit temporal loop of the levels above the child, innermost first), as
/// Timeloop v3.0.3's nest analysis counts them (`src/loop-analysis/nest-analysis.cpp`,
/// `ComputeTemporalWorkingSet`; `OperationSpace::SaveAndSubtractIfSameStride`).
///
/// Timeloop's temporal extrapolation simulates iterations 0 and 1 of every loop only, the second
/// standing for the other N − 1 (its delta scaled by N − 1, the epochs of its subtree
/// multiplied by N − 1): the tile visits the 2^k corners of the loops' index box in odometer
/// order, the corner with indices b weighing Π over the loops at index 1 of (N − 1). Each
/// visit's delta is taken against the last *simulated* tile, with a translation test: the
/// first visit loads the whole tile; a visit whose translation t from the previous one equals
/// the last recorded translation (or follows a reset) loads the set difference and records t;
/// any other translation reloads the whole tile and resets the record. Consecutive corners
/// differ by the move of one loop j minus the moves of the loops inside it (which wrap back
/// from index 1 to 0), so by induction the record is always the innermost loop's move v1 after
/// an innermost step, and a step of loop j ≥ 2 loads the difference exactly when
/// `v_j = v1 + Σ_{i<j} v_i`, else the whole tile. The corners entered by a step of loop j
/// weigh `W_j = (N_j − 1) Π_{i>j} N_i` together, so with `S` the innermost loop and those j:
///
/// `loads = tile · Π N − overlap(v1) · Σ_{j∈S} W_j`,
///
/// where `overlap(v)` is the points a tile shares with its translate by v. A leading run of loops
/// the tensor does not use (v = 0) keeps the tile resident; when the innermost loop slides a
/// window, a later loop whose move lands exactly one window step further (e.g. `R3 M2 P28` with
/// P moving 2 and R 1: `v_P = v_R + v_R + v_M`) loads only the new part after the inner loops
/// wrap, although the full walk would show a different translation there.
fn timeloop_loads(terms: &[RankTerm], child_ext: &[u64], tile: u64, above: &[NestLoop]) -> u64 {
    let Some(l1) = above.first() else {
        return tile;
    };
    let steps: u64 = above.iter().map(|l| l.factor).product();
    let nr = rank_count(terms);
    with_rank_scratch(nr, 4, |buf| {
        let (ext, rest) = buf.split_at_mut(nr);
        let (v1, rest) = rest.split_at_mut(nr);
        let (sigma, v) = rest.split_at_mut(nr);
        rank_extents(terms, child_ext, ext);
        rank_moves(terms, l1, v1);
        let ov1 = overlap(ext, v1);
        if ov1 == 0 {
            return tile * steps;
        }
        sigma.copy_from_slice(v1);
        // `mass`: the product of the loops outside the current one (steps / Π of those inside
        // and at it); a member j gains W_j = mass before − mass after.
        let mut mass = steps / l1.factor;
        let mut gained = steps - mass;
        for l in &above[1..] {
            rank_moves(terms, l, v);
            let next = mass / l.factor;
            if v.iter()
                .zip(v1.iter().zip(sigma.iter()))
                .all(|(a, (b, c))| *a == b + c)
            {
                gained += mass - next;
            }
            for (s, m) in sigma.iter_mut().zip(v.iter()) {
                *s += m;
            }
            mass = next;
        }
        // In u128: tile · steps may pass u64 before the overlap is taken off.
        (tile as u128 * steps as u128 - ov1 as u128 * gained as u128) as u64
    })
}

/// How a loop above a child keeper can take part in [`timeloop_loads`]' reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoopRole {
    /// Over a dim the tensor does not use: moves it by nothing.
    Irrelevant,
    /// Over a dim of a rank of two or more terms (a sliding window such as W = P + R).
    Sliding,
    /// Over a dim only in single-term ranks: never in `S` when the innermost loop's overlap
    /// is non-zero, and no loop outside it is (its move can never be matched again).
    Breaker,
}

/// Most nodes [`order_free_loads`]' search over loop orders visits before it settles for a
/// coarser bound (the search is tiny on real nests: at most one sliding loop per sliding dim
/// per level).
const ORDER_SEARCH_NODES: usize = 20_000;

/// The fewest loads of a child tile (at level `first_level - 1`) over every order of the
/// temporal loops above it, whose product is `steps`: [`timeloop_loads`] minimised over the
/// orders of each level's loops (levels keep their places). Loads are `tile · steps −
/// overlap(v1) · G`, with G the weight of the loops in `S`, so for each choice of innermost loop
/// the search maximises G over the orders: loops the tensor does not use go first when the
/// innermost is one of them (they are all in `S`) and last otherwise (never in `S`, they only
/// dilute the weights of the loops outside them), breakers go after the sliding loops of their
/// level and end `S` there, and the sliding loops of each level are tried in every order.
fn order_free_loads(
    terms: &[RankTerm],
    nest: &Nest,
    relevant: &[bool],
    child_ext: &[u64],
    tile: u64,
    first_level: usize,
    steps: u64,
) -> u64 {
    let levels = nest.level_start.len() - 1;
    let groups: Vec<&[NestLoop]> = (first_level..levels)
        .map(|l| &nest.temporal_loops[nest.level_start[l].1..nest.level_start[l + 1].1])
        .filter(|g| !g.is_empty())
        .collect();
    let Some(first) = groups.first() else {
        return tile;
    };
    let nr = rank_count(terms);
    let role = |l: &NestLoop| {
        if !relevant[l.dim] {
            LoopRole::Irrelevant
        } else if terms
            .split_inclusive(|t| t.last)
            .any(|rank| rank.len() > 1 && rank.iter().any(|t| t.dim == l.dim))
        {
            LoopRole::Sliding
        } else {
            LoopRole::Breaker
        }
    };
    with_rank_scratch(nr, 2, |buf| {
        let (ext, v1) = buf.split_at_mut(nr);
        rank_extents(terms, child_ext, ext);
        let full = tile as u128 * steps as u128;
        let mut best = full;
        // Innermost loop irrelevant: the run of irrelevant loops, then the walk from the first
        // group with a relevant loop on.
        if first.iter().any(|l| role(l) == LoopRole::Irrelevant) {
            v1.fill(0);
            let mut search = OrderSearch::new(terms, &groups, &role, v1);
            let mut mass = steps;
            let mut g = 0;
            while g < groups.len() {
                for l in groups[g].iter().filter(|l| role(l) == LoopRole::Irrelevant) {
                    mass /= l.factor;
                }
                if groups[g].iter().any(|l| role(l) != LoopRole::Irrelevant) {
                    break;
                }
                g += 1;
            }
            let gained = search.best_from(g, steps - mass, mass, true);
            best = best.min(full - tile as u128 * gained as u128);
        }
        // Innermost loop sliding: the overlap of its own step, then the walk.
        for l1 in first.iter().filter(|l| role(l) == LoopRole::Sliding) {
            rank_moves(terms, l1, v1);
            let ov1 = overlap(ext, v1);
            if ov1 == 0 {
                continue;
            }
            let mut search = OrderSearch::new(terms, &groups, &role, v1);
            search.placed_first = Some(l1);
            let mass = steps / l1.factor;
            let gained = search.best_from(0, steps - mass, mass, false);
            best = best.min(full - ov1 as u128 * gained as u128);
        }
        best as u64
    })
}

/// The search of [`order_free_loads`] for one choice of innermost loop (move `v1`): the
/// largest weight of `S` over the orders of the groups' loops.
struct OrderSearch<'a, F: Fn(&NestLoop) -> LoopRole> {
    terms: &'a [RankTerm],
    groups: &'a [&'a [NestLoop]],
    role: &'a F,
    v1: Vec<u64>,
    /// The innermost loop, when it is a sliding loop (already placed).
    placed_first: Option<&'a NestLoop>,
    /// The sum of the moves of the loops placed so far.
    sigma: Vec<u64>,
    /// Scratch for one loop's moves.
    v: Vec<u64>,
    nodes: usize,
}

impl<'a, F: Fn(&NestLoop) -> LoopRole> OrderSearch<'a, F> {
    fn new(terms: &'a [RankTerm], groups: &'a [&'a [NestLoop]], role: &'a F, v1: &[u64]) -> Self {
        OrderSearch {
            terms,
            groups,
            role,
            v1: v1.to_vec(),
            placed_first: None,
            sigma: v1.to_vec(),
            v: vec![0; v1.len()],
            nodes: 0,
        }
    }

    /// The most weight `S` can reach from group `g` on, `gained` so far, `mass` the product of
    /// the loops not yet placed; `run` when the irrelevant loops of group g were placed first
    /// (the innermost loop is irrelevant).
    fn best_from(&mut self, g: usize, gained: u64, mass: u64, run: bool) -> u64 {
        let Some(&group) = self.groups.get(g) else {
            return gained;
        };
        let mut sliding: Vec<&'a NestLoop> = group
            .iter()
            .filter(|l| (self.role)(l) == LoopRole::Sliding)
            .filter(|l| !self.placed_first.is_some_and(|f| std::ptr::eq(*l, f)))
            .collect();
        // The group's other loops follow its sliding loops: irrelevant ones (unless the run
        // placed them first) only dilute the weights outside them; a breaker ends `S`.
        let others: u64 = group
            .iter()
            .filter(|l| match (self.role)(l) {
                LoopRole::Sliding => false,
                LoopRole::Irrelevant => !run,
                LoopRole::Breaker => true,
            })
            .map(|l| l.factor)
            .product();
        let breaks = group.iter().any(|l| (self.role)(l) == LoopRole::Breaker);
        let mut best = gained;
        self.permute(g, &mut sliding, 0, gained, mass, others, breaks, &mut best);
        best
    }

    /// Places the sliding loops `loops[i..]` in every order (each a member of `S` when its move
    /// is `v1 + sigma`), then the group's `others` (the product of its other loops not placed
    /// yet), then the next groups unless a breaker ends the walk.
    #[allow(clippy::too_many_arguments)]
    fn permute(
        &mut self,
        g: usize,
        loops: &mut [&'a NestLoop],
        i: usize,
        gained: u64,
        mass: u64,
        others: u64,
        breaks: bool,
        best: &mut u64,
    ) {
        self.nodes += 1;
        if self.nodes > ORDER_SEARCH_NODES {
            // Too many orders: every loop left might be in S.
            *best = (*best).max(gained + mass - 1);
            return;
        }
        // Even if every loop left joined S, no better.
        if gained + mass.saturating_sub(1) <= *best {
            return;
        }
        if i == loops.len() {
            if breaks {
                *best = (*best).max(gained);
            } else {
                let reached = self.best_from(g + 1, gained, mass / others, false);
                *best = (*best).max(reached);
            }
            return;
        }
        for k in i..loops.len() {
            loops.swap(i, k);
            let l = loops[i];
            rank_moves(self.terms, l, &mut self.v);
            let member = (self.v.iter())
                .zip(self.v1.iter().zip(&self.sigma))
                .all(|(a, (b, c))| *a == b + c);
            let next = mass / l.factor;
            let gain = if member { mass - next } else { 0 };
            for (s, m) in self.sigma.iter_mut().zip(&self.v) {
                *s += m;
            }
            self.permute(g, loops, i + 1, gained + gain, next, others, breaks, best);
            rank_moves(self.terms, l, &mut self.v);
            for (s, m) in self.sigma.iter_mut().zip(&self.v) {
                *s -= m;
            }
            loops.swap(i, k);
        }
    }
}

/// Number of distinct tiles among the children of one spatial fanout with `loops`: per rank,
/// the distinct offsets the loops over its dims produce; loops over dims the tensor does not
/// use produce none. `scratch` holds the offsets.
fn distinct_offsets(
    terms: &[RankTerm],
    loops: &[NestLoop],
    scratch: &mut (Vec<u64>, Vec<u64>),
) -> u64 {
    let mut n = 1;
    for rank in terms.split_inclusive(|t| t.last) {
        // The (step, factor) pairs of the rank's terms over the loops' dims.
        let pairs = loops.iter().flat_map(|l| {
            rank.iter()
                .filter(move |t| t.dim == l.dim)
                .map(move |t| (t.coef * l.stride, l.factor))
        });
        let (mut count, mut first) = (0, (0, 1));
        for l in loops {
            for t in rank.iter().filter(|t| t.dim == l.dim) {
                if count == 0 {
                    first = (t.coef * l.stride, l.factor);
                }
                count += 1;
            }
        }
        n *= match count {
            0 => 1,
            // One loop over one term: its offsets are distinct unless the step is 0.
            1 => {
                let (step, factor) = first;
                if step == 0 {
                    1
                } else {
                    factor
                }
            }
            _ => {
                let (offsets, next) = scratch;
                offsets.clear();
                offsets.push(0);
                for (step, factor) in pairs {
                    next.clear();
                    next.extend(
                        offsets
                            .iter()
                            .flat_map(|&o| (0..factor).map(move |i| o + i * step)),
                    );
                    next.sort_unstable();
                    next.dedup();
                    std::mem::swap(offsets, next);
                }
                offsets.len() as u64
            }
        };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::{conv_problem, Bits, Level, LevelMapping, Loop, Mac};

    /// One 16-bit-word buffer under a DRAM, a 1x1 conv of 3 input and 4 output channels.
    fn tiny() -> (Problem, Arch, Mapping) {
        let p = conv_problem("t", false, [1, 4, 3, 1, 1, 1, 1], [1, 1, 1, 1]);
        let level = |name: &str, depth| Level {
            name: name.into(),
            instances: 1,
            mesh_x: 1,
            mesh_y: 1,
            depth,
            width: 16,
            word_bits: 16,
            block_size: 1,
            cluster_size: 1,
            dummy: false,
            must_keep: vec![],
            must_bypass: vec![],
            read_energy: 1.0,
            write_energy: 2.0,
            update_energy: 3.0,
            read_bandwidth: None,
            write_bandwidth: None,
            shared_bandwidth: None,
        };
        let arch = Arch {
            name: "a".into(),
            levels: vec![level("buf", Some(64)), level("dram", None)],
            mac: Mac {
                name: "mac".into(),
                instances: 1,
                mesh_x: 1,
                mesh_y: 1,
                energy: 1.0,
                energy_table: vec![],
            },
        };
        // buf: for C3 (innermost) for M4, keeps everything; DRAM keeps everything.
        let m = Mapping {
            levels: vec![
                LevelMapping {
                    temporal: vec![Loop { dim: 2, factor: 3 }, Loop { dim: 1, factor: 4 }],
                    keep: vec![true; 3],
                    ..Default::default()
                },
                LevelMapping {
                    keep: vec![true; 3],
                    ..Default::default()
                },
            ],
        };
        (p, arch, m)
    }

    fn counts(ev: &Evaluation, level: &str, tensor: &str) -> (u64, u64, u64) {
        let l = ev.levels.iter().find(|l| l.name == level).unwrap();
        let t = l.tensors.iter().find(|t| t.name == tensor).unwrap();
        (t.reads, t.fills, t.updates)
    }

    #[test]
    fn seed_and_ideal_packing() {
        let (p, a, m) = tiny();
        // Tensor order: Weights, Inputs, Outputs. Native: 12 MACs read 12 weights and 12 inputs,
        // update outputs 12 times (reads 12 - 4 first writes).
        let native = evaluate(&p, &a, &m, &ModelOptions::default());
        assert_eq!(counts(&native, "buf", "Weights"), (12, 12, 0));
        assert_eq!(counts(&native, "buf", "Outputs"), (8, 0, 12));
        // Seed packing, 5-bit weights in 16-bit words: k = 3, ceil(12 / 3) = 4.
        let seed = ModelOptions {
            bits: Some(Bits(vec![5, 16, 16])),
            ..Default::default()
        };
        let ev = evaluate(&p, &a, &m, &seed);
        assert_eq!(counts(&ev, "buf", "Weights"), (4, 4, 0));
        assert_eq!(ev.levels[0].tensors[0].tile_words, 4);
        // Ideal packing counts bits: ceil(12 * 5 / 16) = 4 words, tile ceil(12 * 5 / 16) = 4.
        let ideal = ModelOptions {
            packing: PackingMode::Ideal,
            ..seed.clone()
        };
        let ev = evaluate(&p, &a, &m, &ideal);
        assert_eq!(counts(&ev, "buf", "Weights"), (4, 4, 0));
        // 6-bit weights: the seed packs 2 per word (6 words), ideal packs bits (ceil(72/16) = 5).
        let seed6 = ModelOptions {
            bits: Some(Bits(vec![6, 16, 16])),
            ..Default::default()
        };
        assert_eq!(
            counts(&evaluate(&p, &a, &m, &seed6), "buf", "Weights"),
            (6, 6, 0)
        );
        let ideal6 = ModelOptions {
            packing: PackingMode::Ideal,
            ..seed6
        };
        assert_eq!(
            counts(&evaluate(&p, &a, &m, &ideal6), "buf", "Weights"),
            (5, 5, 0)
        );
    }

    #[test]
    fn psum_bits_widen_inner_outputs() {
        let (p, a, m) = tiny();
        // 8-bit outputs pack 2 per word at both levels by default; with 32-bit partial sums the
        // inner level stores each partial sum in 2 words, the outermost keeps 8-bit outputs.
        let out8 = ModelOptions {
            bits: Some(Bits(vec![16, 16, 8])),
            ..Default::default()
        };
        let ev = evaluate(&p, &a, &m, &out8);
        assert_eq!(counts(&ev, "buf", "Outputs"), (4, 0, 6));
        let psum = ModelOptions {
            psum: PsumPolicy::Bits(32),
            ..out8
        };
        let ev = evaluate(&p, &a, &m, &psum);
        assert_eq!(counts(&ev, "buf", "Outputs"), (16, 0, 24));
        assert_eq!(counts(&ev, "dram", "Outputs"), (0, 0, 2));
    }

    #[test]
    fn bits_above_word_are_invalid() {
        let (p, a, m) = tiny();
        let wide = ModelOptions {
            bits: Some(Bits(vec![17, 16, 16])),
            ..Default::default()
        };
        let ev = evaluate(&p, &a, &m, &wide);
        assert!(!ev.valid);
        assert_eq!(ev.invalid.unwrap().level.as_deref(), Some("buf"));
    }

    /// The loads of a child tile under every order of the loops above it, per level: the least
    /// of [`timeloop_loads`] by brute force.
    fn loads_min_over_orders(
        terms: &[RankTerm],
        mapping: &Mapping,
        nd: usize,
        child: usize,
        tile: u64,
    ) -> u64 {
        use itertools::Itertools;
        let nl = mapping.levels.len();
        let perms: Vec<Vec<Vec<Loop>>> = (0..nl)
            .map(|l| {
                let t = &mapping.levels[l].temporal;
                if l <= child {
                    vec![t.clone()]
                } else {
                    t.iter().copied().permutations(t.len()).collect()
                }
            })
            .collect();
        let mut best = u64::MAX;
        for combo in perms.iter().map(|p| p.iter()).multi_cartesian_product() {
            let mut m = mapping.clone();
            for (l, t) in combo.into_iter().enumerate() {
                m.levels[l].temporal = t.clone();
            }
            let mut nest = Nest::default();
            nest.build(&m, nd);
            let ext = nest.ext(child).to_vec();
            best = best.min(timeloop_loads(
                terms,
                &ext,
                tile,
                nest.temporal_from(child + 1),
            ));
        }
        best
    }

    /// The order-free loads ([`order_free_loads`]) are the least loads over every order of the
    /// loops above the child, on random nests with halos (strides and dilations 1-2), for
    /// every tensor and child level: the bound is exact, and so never above any order.
    #[test]
    fn order_free_loads_are_the_least_over_orders() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(21);
        let (mut cases, mut below_canonical) = (0, 0);
        while cases < 3000 {
            let pick =
                |rng: &mut rand::rngs::ChaCha8Rng, v: &[u64]| v[rng.random_range(0..v.len())];
            let b = [
                pick(&mut rng, &[1, 2]),
                pick(&mut rng, &[1, 2, 3]),
                pick(&mut rng, &[1, 2, 3]),
                pick(&mut rng, &[2, 4, 6, 8]),
                pick(&mut rng, &[1, 2, 4]),
                pick(&mut rng, &[1, 2, 3]),
                pick(&mut rng, &[1, 2, 3]),
            ];
            let coef = [
                pick(&mut rng, &[1, 1, 2]),
                pick(&mut rng, &[1, 2]),
                pick(&mut rng, &[1, 1, 2]),
                1,
            ];
            let p = conv_problem("r", false, b, coef);
            let nd = p.dims.len();
            let nl = rng.random_range(2..=4usize);
            // Each prime factor of each bound at a random level's temporal loop.
            let mut f = vec![vec![1u64; nd]; nl];
            for (d, &bound) in p.bounds.iter().enumerate() {
                let mut n = bound;
                let mut q = 2;
                while n > 1 {
                    while n.is_multiple_of(q) {
                        f[rng.random_range(0..nl)][d] *= q;
                        n /= q;
                    }
                    q += 1;
                }
            }
            let mut m = Mapping::default();
            for fl in &f {
                let mut temporal: Vec<Loop> = (0..nd)
                    .filter(|&d| fl[d] > 1)
                    .map(|d| Loop {
                        dim: d,
                        factor: fl[d],
                    })
                    .collect();
                for i in (1..temporal.len()).rev() {
                    temporal.swap(i, rng.random_range(0..=i));
                }
                m.levels.push(LevelMapping {
                    temporal,
                    keep: vec![true; 3],
                    ..Default::default()
                });
            }
            if m.levels.iter().map(|l| l.temporal.len()).product::<usize>() > 400 {
                continue;
            }
            cases += 1;
            let mut nest = Nest::default();
            nest.build(&m, nd);
            for tensor in &p.tensors {
                let terms = rank_terms(tensor);
                let relevant: Vec<bool> = (0..nd).map(|d| tensor.relevant(d)).collect();
                for child in 0..nl - 1 {
                    let ext = nest.ext(child).to_vec();
                    let tile = box_points(&terms, |d| ext[d]);
                    let above = nest.temporal_from(child + 1);
                    let steps: u64 = above.iter().map(|l| l.factor).product();
                    let free =
                        order_free_loads(&terms, &nest, &relevant, &ext, tile, child + 1, steps);
                    let brute = loads_min_over_orders(&terms, &m, nd, child, tile);
                    assert_eq!(
                        free, brute,
                        "{} child {child}: {m:?} {b:?} {coef:?}",
                        tensor.name
                    );
                    let this = timeloop_loads(&terms, &ext, tile, above);
                    below_canonical += (free < this) as usize;
                }
            }
        }
        assert!(below_canonical > 500, "{below_canonical}");
    }

    /// Timeloop's extrapolated loads on the issue's VGG case (conv3 of VGG-16 on the simba
    /// exercise: C = M = 256, P = Q = 56, 3×3): the GlobalBuffer tile is C256 × W2 × H58 (P2 and
    /// Q56, S3 below it; R3 M2 P28 at DRAM), 29,696 points; a column of it (one W) is 14,848.
    /// Per DRAM order (innermost first), `loads = 168 tiles − overlap × Σ W_j` (docs/model.md):
    /// RMPCSNQ: R then P (v_P = 2 = v_R + v_R + v_M) carried: 168·29,696 − 14,848·(112 + 27)
    /// = 2,925,056; RPMCSNQ: R, P (v_P = v_R + v_R): 168·29,696 − 14,848·(112 + 54)
    /// = 2,524,160; MRPCSNQ: only M keeps the tile: 84 tiles = 2,494,464. Measured by Timeloop
    /// v3.0.3 on these mappings (issue 21); qmap counted 3,325,952 for the first two before.
    #[test]
    fn issue_vgg_window_counts() {
        let p = conv_problem("vgg3", false, [1, 256, 256, 56, 56, 3, 3], [1, 1, 1, 1]);
        let terms = rank_terms(&p.tensors[1]);
        let (m_, r, pp, q, s, c) = (1, 5, 3, 4, 6, 2);
        let ext = {
            let mut e = vec![1u64; 7];
            (e[c], e[pp], e[q], e[s], e[m_]) = (256, 2, 56, 3, 128);
            e
        };
        let tile = box_points(&terms, |d| ext[d]);
        assert_eq!(tile, 29_696);
        let loop_ = |dim: usize, factor: u64, stride: u64| NestLoop {
            dim,
            factor,
            stride,
        };
        let rr = loop_(r, 3, 1);
        let mm = loop_(m_, 2, 128);
        let p28 = loop_(pp, 28, 2);
        assert_eq!(
            timeloop_loads(&terms, &ext, tile, &[rr, mm, p28]),
            2_925_056
        );
        assert_eq!(
            timeloop_loads(&terms, &ext, tile, &[rr, p28, mm]),
            2_524_160
        );
        assert_eq!(
            timeloop_loads(&terms, &ext, tile, &[mm, rr, p28]),
            2_494_464
        );
    }

    /// Timeloop's bandwidth throttling in double precision (eyeriss exercise, shared_glb read
    /// bandwidth 16 words per cycle; `tests/timeloop_issue21.rs` runs the whole mapping): 4,608
    /// compute cycles, reads 73,728 (Inputs) and 8,192 (Outputs), writes 9,216 and 2,048 +
    /// 9,216. Demand 16 + 1.777… words per cycle, slowdown 0.9, ceil(4,608 / 0.9) = 5,121 (the
    /// exact ceil(81,920 / 16) is 5,120). Unthrottled levels keep the compute cycles, and an
    /// exact division stays exact (8,192 reads at 2 per cycle: 4,096 < 4,608).
    #[test]
    fn level_cycles_round_as_timeloop() {
        let (_, mut a, _) = tiny();
        let glb = &mut a.levels[0];
        glb.read_bandwidth = Some(16.0);
        glb.write_bandwidth = Some(16.0);
        let words = [(73_728, 9_216), (8_192, 11_264)];
        assert_eq!(level_cycles(glb, 4_608, words.into_iter()), 5_121);
        assert_eq!(level_cycles(glb, 4_608, [(8_192, 0)].into_iter()), 4_608);
        glb.read_bandwidth = Some(1.0);
        assert_eq!(level_cycles(glb, 4_608, [(9_216, 0)].into_iter()), 9_216);
        let mut free = a.levels[1].clone();
        free.read_bandwidth = None;
        assert_eq!(level_cycles(&free, 4_608, words.into_iter()), 4_608);
    }

    #[test]
    fn packing_rule() {
        assert_eq!(operands_per_word(16, 8), 2);
        assert_eq!(operands_per_word(16, 6), 2);
        assert_eq!(operands_per_word(16, 5), 3);
        assert_eq!(operands_per_word(16, 16), 1);
        assert_eq!(operands_per_word(1, 8), 1);
        assert_eq!(operands_per_word(8, 3), 2);
    }
}
