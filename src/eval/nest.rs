//! The flattened loop nest of one mapping and the per-rank geometry of a tensor's tiles over it
//! (bounding boxes, moves, overlaps, distinct tiles per fanout), after Timeloop v3.0.3's
//! `src/loop-analysis/nest-analysis.cpp`.

use crate::model::{Loop, Mapping};

/// One loop of the flattened nest (innermost first).
#[derive(Debug, Clone, Copy)]
pub(super) struct NestLoop {
    pub(super) dim: usize,
    pub(super) factor: u64,
    /// Product of the factors of the same dim on all loops inside this one.
    pub(super) stride: u64,
}

impl NestLoop {
    /// Appends mapping loop `l` (a non-unit factor) to `loops`, outside the loops already
    /// there, and widens its dim's extent `ext` by the factor.
    pub(super) fn push(loops: &mut Vec<NestLoop>, ext: &mut [u64], l: &Loop) {
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
pub(super) struct Nest {
    pub(super) nd: usize,
    spatial_loops: Vec<NestLoop>,
    pub(super) temporal_loops: Vec<NestLoop>,
    /// Index of each level's first loop in `spatial_loops` and in `temporal_loops`, plus the
    /// ends (levels + 1 entries).
    pub(super) level_start: Vec<(usize, usize)>,
    /// Per level, the products of its X and of its Y spatial factors.
    pub(super) spatial_xy: Vec<(u64, u64)>,
    /// Per level and dim (`level * dims + dim`), the product of its spatial factors.
    pub(super) spatial: Vec<u64>,
    /// Per level and dim, the tile extent: cumulative factors of the level and below.
    ext: Vec<u64>,
    /// The product of all temporal factors (the compute cycles).
    pub(super) temporal_product: u64,
}

impl Nest {
    pub(super) fn build(&mut self, mapping: &Mapping, nd: usize) {
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
    pub(super) fn tiles_key(&self, key: &mut Vec<u64>) {
        key.clear();
        key.extend_from_slice(&self.ext);
        key.extend_from_slice(&self.spatial);
        key.extend(self.level_start.iter().map(|s| s.0 as u64));
        for l in &self.spatial_loops {
            key.extend([l.dim as u64, l.factor]);
        }
    }

    /// Tile extents of level `l` (per dim).
    pub(super) fn ext(&self, l: usize) -> &[u64] {
        &self.ext[l * self.nd..(l + 1) * self.nd]
    }

    /// The spatial loops of level `l` (its fanout to the level below).
    pub(super) fn fanout_loops(&self, l: usize) -> &[NestLoop] {
        &self.spatial_loops[self.level_start[l].0..self.level_start[l + 1].0]
    }

    /// The temporal loops of level `l` and above.
    pub(super) fn temporal_from(&self, l: usize) -> &[NestLoop] {
        &self.temporal_loops[self.level_start[l].1..]
    }
}

/// One term `coef · dim` of a tensor rank's index expression, flagged when it is its rank's
/// last: a tensor's ranks as one list.
#[derive(Debug, Clone, Copy)]
pub(super) struct RankTerm {
    coef: u64,
    pub(super) dim: usize,
    pub(super) last: bool,
}

pub(super) fn rank_terms(tensor: &crate::model::Tensor) -> Vec<RankTerm> {
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
pub(super) fn box_points(terms: &[RankTerm], ext: impl Fn(usize) -> u64) -> u64 {
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

/// Most ranks a tensor's per-rank vectors are kept on the stack for (more use the heap).
pub(super) const STACK_RANKS: usize = 8;

/// Calls `f` with `n` zeroed per-rank scratch vectors of `ranks` entries each.
pub(super) fn with_rank_scratch<R>(ranks: usize, n: usize, f: impl FnOnce(&mut [u64]) -> R) -> R {
    if ranks * n <= 4 * STACK_RANKS {
        let mut buf = [0u64; 4 * STACK_RANKS];
        f(&mut buf[..ranks * n])
    } else {
        f(&mut vec![0u64; ranks * n])
    }
}

/// Number of ranks of a tensor given by its [`rank_terms`].
pub(super) fn rank_count(terms: &[RankTerm]) -> usize {
    terms.iter().filter(|t| t.last).count()
}

/// Per-rank extents of a tile with per-dim extents `ext` (its bounding box's sides).
pub(super) fn rank_extents(terms: &[RankTerm], ext: &[u64], out: &mut [u64]) {
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
pub(super) fn rank_moves(terms: &[RankTerm], l: &NestLoop, out: &mut [u64]) {
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
pub(super) fn overlap(extents: &[u64], moves: &[u64]) -> u64 {
    extents
        .iter()
        .zip(moves)
        .map(|(e, m)| e.saturating_sub(*m))
        .product()
}

/// Number of distinct tiles among the children of one spatial fanout with `loops`: per rank,
/// the distinct offsets the loops over its dims produce; loops over dims the tensor does not
/// use produce none. `scratch` holds the offsets.
pub(super) fn distinct_offsets(
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
