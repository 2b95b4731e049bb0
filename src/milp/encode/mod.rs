//! Encoding a bypass pattern's mapspace as a MILP: how dims are encoded (`DimCols`, `Vars`),
//! the per-scalar word counts, and the builder's parts.

pub(super) mod build;
mod capacity;
pub(super) mod carry;
mod dims;
mod order;
pub(super) mod symmetry;
mod tiles;
mod transfers;
pub(super) mod view;

use crate::eval::operands_per_word;
use crate::mapspace::Mapspace;
use crate::model::{ModelOptions, PsumPolicy};
use crate::spec::PackingMode;

/// The dims the MILP encodes per slot group ([`SolveOptions::slice_choices`](crate::milp::SolveOptions::slice_choices)). A dim can be
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
pub(in crate::milp) fn cumulative(space: &Mapspace, choice: &[u64], l: usize) -> u64 {
    space
        .slots()
        .iter()
        .zip(choice)
        .filter(|(s, _)| s.level <= l)
        .map(|(_, f)| *f)
        .product()
}

pub(in crate::milp) fn tensor_bits(
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

/// Words one scalar of tensor `t` occupies at a level with `word_bits`-bit words, without the
/// ceilings the evaluator applies to per-instance totals (the MILP's underestimate of them).
pub(in crate::milp) fn words_per_scalar(
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

/// How a dim's factorisation is encoded.
#[derive(Clone)]
pub(in crate::milp) enum DimCols {
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
pub(in crate::milp) struct SlotGroup {
    pub(in crate::milp) slots: Vec<usize>,
    pub(in crate::milp) values: Vec<(Option<usize>, Vec<u64>)>,
}

/// Everything the model builder knows about the one-hots.
#[derive(Clone)]
pub(in crate::milp) struct Vars {
    /// How each dim's factorisation is encoded.
    pub(in crate::milp) x: Vec<DimCols>,
    /// delta[l][d]: the innermost non-unit temporal loop of level l is d.
    pub(in crate::milp) delta: Vec<Vec<Option<usize>>>,
}
