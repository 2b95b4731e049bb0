//! The lower bounds of the bounded enumerations: on the mappings that complete a partial
//! mapping (the first dims of [`Mapspace::dim_order`] chosen), and when they are worth computing.

use crate::eval::{CompletionBound, Evaluator};
use crate::mapspace::{Mapspace, SlotKind};
use crate::model::{Mapping, ModelOptions, Problem};
use itertools::Itertools;
use std::cell::Cell;

/// What bounds the factorisations that share the choices of the first dims of
/// [`Mapspace::dim_order`] ([`Mapspace::scan_part_bounded`]'s partial mappings), per depth k
/// (0 to the number of dims):
/// the problem whose dims after the first k have bound 1, and how its order-free counts are
/// raised to bound the completions ([`CompletionBound`], [`Evaluator::completion_count`]).
///
/// Where a left-out dim d scales a tensor's counts in proportion — every rank that uses d
/// uses no other dim of bound above 1, with a coefficient of at least 1 (exactly 1, and one
/// dim per rank, for a read-write tensor, whose partitions are subtracted) — every count of
/// that tensor at level l grows at least by the points of d that one instance of l covers:
/// D / (d's spatial factors above l), so by D / (the largest such product over d's factor
/// choices). The compute steps grow by D / (d's largest spatial product anywhere). Bounds are
/// at the full problem's MACs.
pub(super) struct PartialBounds<'a> {
    pub(super) depths: Vec<(Problem, CompletionBound)>,
    macs: u64,
    arch: &'a crate::model::Arch,
}

/// The bound [`enumerate`] puts on the mappings that complete `partial` (a mapping of `space`
/// whose dims after the first `depth` of [`Mapspace::dim_order`] have factors 1): energy (pJ)
/// and cycles, None when they are all invalid. For tests.
#[doc(hidden)]
pub fn partial_bound(
    space: &Mapspace,
    depth: usize,
    partial: &Mapping,
    opts: &ModelOptions,
) -> Option<(f64, u64)> {
    let pb = PartialBounds::new(space);
    let mut ev = Evaluator::new(&pb.depths[depth].0, space.arch());
    pb.score(&mut ev, depth, partial, opts)
}

/// Completion bounds (energy, pJ; None where every completion is invalid) of one keep pattern
/// `keep` of `space`: of all its mappings (every dim open), and, per dim of `dims`, of the
/// mappings that take each of its factorisations ([`Mapspace::dim_choices`]), every other dim
/// open. The bounds the enumeration puts on its partial mappings, for any set of chosen dims;
/// the MILP starts from them.
pub fn choice_bounds(
    space: &Mapspace,
    keep: &[Vec<bool>],
    opts: &ModelOptions,
    dims: &[usize],
) -> (Option<f64>, Vec<Vec<Option<f64>>>) {
    let (problem, arch) = (space.problem(), space.arch());
    let nd = problem.dims.len();
    let open = PartialBounds::open_dims(space);
    let mut chosen = vec![None; nd];
    let mut bounds = |open_dims: &[usize], d: Option<usize>| -> Vec<Option<f64>> {
        let at = open(open_dims);
        let mut ev = Evaluator::new(&at.0, arch);
        let n = d.map_or(1, |d| space.dim_choices(d).len());
        let out = (0..n)
            .map(|c| {
                if let Some(d) = d {
                    chosen[d] = Some(c);
                }
                let m = space.partial_mapping(&chosen, keep);
                completion_score(&mut ev, &at, problem.macs(), arch, &m, opts).map(|(e, _)| e)
            })
            .collect();
        if let Some(d) = d {
            chosen[d] = None;
        }
        out
    };
    let all: Vec<usize> = (0..nd).collect();
    let whole = bounds(&all, None)[0];
    let per_dim = dims
        .iter()
        .map(|&d| {
            let others: Vec<usize> = (0..nd).filter(|&o| o != d).collect();
            bounds(&others, Some(d))
        })
        .collect();
    (whole, per_dim)
}

/// The bound on the energy (pJ) and cycles of the mappings that complete `partial`, a partial
/// mapping of `at`'s problem (the full problem, of `macs` MACs, with some dims left out), with
/// `ev` an evaluator of that problem; None when they are all invalid.
pub(super) fn completion_score(
    ev: &mut Evaluator,
    at: &(Problem, CompletionBound),
    macs: u64,
    arch: &crate::model::Arch,
    partial: &Mapping,
    opts: &ModelOptions,
) -> Option<(f64, u64)> {
    let (p, bound) = at;
    let (e, cy) = ev.completion_score(partial, opts, bound)?;
    // At the MACs of the full problem.
    let left_out = macs - p.macs();
    let per_op = crate::eval::mac_energy_per_op(arch, p, opts);
    Some((e + left_out as f64 * per_op, cy))
}

/// Where a bounded scan bounds partial mappings: per depth, partial mappings seen, bounds
/// computed, and how many of those ruled their mappings out; factorisations reached.
#[derive(Default)]
pub(super) struct BoundStats {
    depths: Vec<Cell<(u64, u64, u64)>>,
    leaves: Cell<u64>,
}

impl<'a> PartialBounds<'a> {
    pub(super) fn new(space: &'a Mapspace) -> PartialBounds<'a> {
        let (problem, arch) = (space.problem(), space.arch());
        let open = Self::open_dims(space);
        let order = space.dim_order();
        let depths = (0..=order.len()).map(|k| &order[k..]).map(open).collect();
        PartialBounds {
            depths,
            macs: problem.macs(),
            arch,
        }
    }

    /// Per set of open dims (left out: bound 1), the problem whose open dims have bound 1 and
    /// how its order-free counts are raised to bound the completions.
    pub(super) fn open_dims<'s>(
        space: &'s Mapspace,
    ) -> impl Fn(&[usize]) -> (Problem, CompletionBound) + 's {
        let (problem, arch) = (space.problem(), space.arch());
        let (nl, nt) = (arch.levels.len(), problem.tensors.len());
        let slots = space.slots();
        // Per dim and level, the largest product of its spatial factors on the fanouts above
        // the level.
        let spread: Vec<Vec<u64>> = (0..problem.dims.len())
            .map(|d| {
                (0..nl)
                    .map(|l| {
                        let above = |(s, _): &(&crate::mapspace::Slot, &u64)| {
                            s.level > l && s.kind != SlotKind::Temporal
                        };
                        let spread = |c: &Vec<u64>| -> u64 {
                            slots.iter().zip(c).filter(above).map(|(_, f)| f).product()
                        };
                        space.dim_choices(d).iter().map(spread).max().unwrap_or(1)
                    })
                    .collect()
            })
            .collect();
        // The terms of a rank over dims of bound above 1.
        let wide = |r: &[crate::model::Term]| {
            r.iter()
                .filter(|x| problem.bounds[x.dim] > 1)
                .copied()
                .collect_vec()
        };
        let scales = move |t: usize, d: usize| {
            let tensor = &problem.tensors[t];
            let own = |r: &Vec<crate::model::Term>| {
                let w = wide(r);
                w.len() == 1 && w[0].dim == d && w[0].coef >= 1
            };
            tensor.relevant(d)
                && tensor
                    .ranks
                    .iter()
                    .filter(|r| r.iter().any(|x| x.dim == d))
                    .all(own)
                && (!tensor.read_write
                    || tensor.ranks.iter().all(|r| {
                        let w = wide(r);
                        w.len() <= 1 && w.iter().all(|x| x.coef == 1)
                    }))
        };
        // Per dim, its largest spatial product on any fanout.
        let spread_all: Vec<u64> = (0..problem.dims.len())
            .map(|d| {
                let spatial = |c: &Vec<u64>| -> u64 {
                    slots
                        .iter()
                        .zip(c)
                        .filter(|(s, _)| s.kind != SlotKind::Temporal)
                        .map(|(_, f)| f)
                        .product()
                };
                space.dim_choices(d).iter().map(spatial).max().unwrap_or(1)
            })
            .collect();
        let used_points: Vec<u64> = problem
            .tensors
            .iter()
            .map(|t| t.used_points(&problem.bounds))
            .collect();
        move |open: &[usize]| {
            let mut p = problem.clone();
            let mut bound = CompletionBound {
                scale: vec![1; nl * nt],
                steps_scale: 1,
                used_points: used_points.clone(),
                spread: vec![1; nl],
            };
            for &d in open {
                p.bounds[d] = 1;
                bound.steps_scale = bound
                    .steps_scale
                    .saturating_mul(problem.bounds[d] / spread_all[d]);
                for (l, &sp) in spread[d].iter().enumerate() {
                    bound.spread[l] = bound.spread[l].saturating_mul(sp);
                    let points = problem.bounds[d] / sp;
                    for t in (0..nt).filter(|&t| scales(t, d)) {
                        let s = &mut bound.scale[l * nt + t];
                        *s = s.saturating_mul(points);
                    }
                }
            }
            (p, bound)
        }
    }

    /// The bound on the energy (pJ) and cycles of the mappings that complete `partial` at
    /// `depth`, with `ev` an evaluator of depth's problem; None when they are all invalid.
    pub(super) fn score(
        &self,
        ev: &mut Evaluator,
        depth: usize,
        partial: &Mapping,
        opts: &ModelOptions,
    ) -> Option<(f64, u64)> {
        completion_score(ev, &self.depths[depth], self.macs, self.arch, partial, opts)
    }

    /// The least bound on the energy and cycles of the mappings of `parts` of `space` under
    /// any keep pattern, as `value(energy, cycles)` (infinity when none is valid).
    pub(super) fn parts_bound(
        &self,
        space: &Mapspace,
        parts: impl Iterator<Item = usize>,
        opts: &ModelOptions,
        value: impl Fn(f64, u64) -> f64,
    ) -> f64 {
        let mut evs = self.evaluators();
        let mut least = f64::INFINITY;
        for part in parts {
            space.part_partials(part, |depth, m| {
                if let Some((e, cy)) = self.score(&mut evs[depth], depth, m, opts) {
                    least = least.min(value(e, cy));
                }
            });
        }
        least
    }

    /// One evaluator per depth.
    pub(super) fn evaluators(&self) -> Vec<Evaluator<'_>> {
        self.depths
            .iter()
            .map(|(p, _)| Evaluator::new(p, self.arch))
            .collect()
    }
}

impl BoundStats {
    pub(super) fn new(space: &Mapspace) -> BoundStats {
        BoundStats {
            depths: vec![Cell::new((0, 0, 0)); space.dim_order().len()],
            leaves: Cell::new(0),
        }
    }

    /// Whether to bound a partial mapping at `depth`: while few have been, and then where the
    /// factorisations a bound saves on average (the share of bounds that rule their mappings
    /// out × the factorisations reached per partial mapping let through) are worth at least
    /// two bounds; else one partial mapping in sixteen, to notice when that changes. The
    /// answer does not depend on it, only the time.
    pub(super) fn worth(&self, depth: usize) -> bool {
        let (seen, done, cut) = self.depths[depth].get();
        self.depths[depth].set((seen + 1, done, cut));
        let through = (seen - cut).max(1) as f64;
        done < 64
            || cut as f64 / done as f64 * (self.leaves.get() as f64 / through) >= 2.0
            || seen % 16 == 0
    }

    pub(super) fn record(&self, depth: usize, cut: bool) {
        let (seen, done, cuts) = self.depths[depth].get();
        self.depths[depth].set((seen, done + 1, cuts + cut as u64));
    }

    /// A factorisation (with a keep pattern) reached.
    pub(super) fn leaf(&self) {
        self.leaves.set(self.leaves.get() + 1);
    }
}
