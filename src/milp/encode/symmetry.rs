//! Mirror symmetry of a square layer's mapspace (P↔Q with R↔S), of which the MILP keeps one
//! side.

use crate::mapspace::{LoopKind, Mapspace};

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
pub(in crate::milp) fn irrelevant_to(space: &Mapspace, d: usize) -> Option<usize> {
    space.problem().tensors.iter().position(|t| !t.relevant(d))
}
