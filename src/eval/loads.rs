//! How often a child tile is loaded under the temporal loops above it: Timeloop v3.0.3's
//! extrapolated walk (`nest-analysis.cpp`) and its least value over loop orders.

use super::nest::{
    overlap, rank_count, rank_extents, rank_moves, with_rank_scratch, Nest, NestLoop, RankTerm,
};

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
pub(super) fn timeloop_loads(
    terms: &[RankTerm],
    child_ext: &[u64],
    tile: u64,
    above: &[NestLoop],
) -> u64 {
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
pub(super) fn order_free_loads(
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
