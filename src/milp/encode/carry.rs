//! Timeloop's window carried across a wrap-around: which conditions a rank's factorisations can
//! meet (`carry_possible`) and the rows that bound the carried loads (`WindowCarry`).

use crate::mapspace::{Mapspace, SlotKind};
use crate::milp::encode::view::View;
use crate::milp::encode::Vars;
use crate::milp::lin::Lin;
use crate::milp::model::{lin_range, Model};

/// Builds the model of one bypass pattern (None when a dim has no allowed factorisation).
/// Which conditions of [`WindowCarry`] some factorisation of a two-term rank's dims can meet
/// (the others get no column): keys `(first, i, lam, j, g, partner)` with `first` true for the
/// run's conditions (`after_run`: i and lam unused) and false for a member j at level g of the
/// sliding mode whose innermost loop is term i at level lam; `partner`: with the partner of j
/// at g inside j. None when there are too many pairs of factorisations to check (then every
/// condition counts as possible).
pub(in crate::milp) type CarryKey = (bool, usize, usize, usize, usize, bool);

/// Most pairs of factorisations [`carry_possible`] checks.
pub(in crate::milp) const CARRY_PAIRS: usize = 200_000;

pub(in crate::milp) fn carry_possible(
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
pub(in crate::milp) struct WindowCarry<'a> {
    /// The mapspace, whose loop moves, non-unit flags and log factors the rows read
    /// ([`View::moves`], [`View::temporal_nonunit`], [`View::log_factor`]).
    pub(in crate::milp) view: &'a View<'a>,
    pub(in crate::milp) tensor: &'a crate::model::Tensor,
    pub(in crate::milp) child: usize,
    /// Per rank, the conditions some factorisation meets ([`carry_possible`]).
    pub(in crate::milp) possible: Vec<Option<std::collections::HashSet<CarryKey>>>,
}

impl WindowCarry<'_> {
    pub(in crate::milp) fn can(&self, r: usize, key: CarryKey) -> bool {
        self.possible[r].as_ref().is_none_or(|s| s.contains(&key))
    }
    pub(in crate::milp) fn levels(&self) -> usize {
        self.view.space.arch().levels.len()
    }
    /// The dims that break a chain along rank r: those the tensor uses outside it.
    pub(in crate::milp) fn breakers(&self, r: usize) -> Vec<usize> {
        let rank = &self.tensor.ranks[r];
        (0..self.view.space.problem().dims.len())
            .filter(|&d| self.tensor.relevant(d) && !rank.iter().any(|t| t.dim == d))
            .collect()
    }
    /// `y` only where no breaker of rank r has a non-unit loop at levels `from..to`.
    pub(in crate::milp) fn no_breakers(
        &self,
        m: &mut Model,
        vars: &Vars,
        y: usize,
        r: usize,
        from: usize,
        to: usize,
    ) {
        for l in from..to {
            for k in self.breakers(r) {
                if let Some(nk) = self.view.temporal_nonunit(vars, k, l) {
                    m.le(&Lin::var(y, 1.0).plus(&nk), 1.0);
                }
            }
        }
    }
    /// A binary that can be 1 only where the integer-valued expression `e` is 0.
    pub(in crate::milp) fn zero(m: &mut Model, e: &Lin) -> usize {
        let (lo, hi) = lin_range(e, m);
        let big = lo.abs().max(hi.abs()) + 1.0;
        let y = m.bin();
        m.le(&e.clone().plus(&Lin::var(y, big)), big + 0.5);
        m.ge(&e.clone().minus(&Lin::var(y, big)), -big - 0.5);
        y
    }
    /// The sum of the moves along rank r of its loops at levels `from..to`.
    pub(in crate::milp) fn rank_moves(&self, vars: &Vars, r: usize, from: usize, to: usize) -> Lin {
        let mut sum = Lin::default();
        for l in from..to {
            for t in &self.tensor.ranks[r] {
                sum.add(&self.view.moves(vars, t.dim, t.coef, l), 1.0);
            }
        }
        sum
    }
    /// A binary that can be 1 only where rank r's loop `tj` at level g moves by `target` plus
    /// the moves of its rank's loops below g (all inside it), or plus its partner's at g too
    /// (`key(partner)`: whether some factorisation can); None when neither can happen.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::milp) fn lands(
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
        let base = self
            .view
            .moves(vars, tj.dim, tj.coef, g)
            .minus(target)
            .minus(&self.rank_moves(vars, r, from, g));
        let mut any = Lin::default();
        if self.can(r, key(false)) {
            any.t.push((Self::zero(m, &base), 1.0));
        }
        for other in self.tensor.ranks[r].iter().filter(|t| t.dim != tj.dim) {
            if self.view.temporal_nonunit(vars, other.dim, g).is_some() && self.can(r, key(true)) {
                let with = base
                    .clone()
                    .minus(&self.view.moves(vars, other.dim, other.coef, g));
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
    pub(in crate::milp) fn members(
        &self,
        m: &mut Model,
        vars: &Vars,
        r: usize,
        term: &crate::model::Term,
        lam: usize,
    ) -> Lin {
        let rank = &self.tensor.ranks[r];
        let i = rank.iter().position(|t| t.dim == term.dim).unwrap_or(0);
        let v1 = self.view.moves(vars, term.dim, term.coef, lam);
        let mut total = Lin::default();
        for g in lam..self.levels() {
            for (j, tj) in rank.iter().enumerate() {
                if g == lam && tj.dim == term.dim {
                    continue;
                }
                let Some(nu) = self.view.temporal_nonunit(vars, tj.dim, g) else {
                    continue;
                };
                // At the innermost loop's level j comes right after it: v_j = 2 v1; above,
                // v_j = v1 + every move along the rank below g (+ its partner's at g).
                let key = |partner| (false, i, lam, j, g, partner);
                let pm = if g == lam {
                    if !self.can(r, key(false)) {
                        continue;
                    }
                    let e = self
                        .view
                        .moves(vars, tj.dim, tj.coef, g)
                        .minus(&v1)
                        .minus(&v1);
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
    pub(in crate::milp) fn after_run(
        &self,
        m: &mut Model,
        vars: &Vars,
        none: &[Option<Lin>],
    ) -> Option<(usize, Lin)> {
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
                    let Some(nu) = self.view.temporal_nonunit(vars, tj.dim, g) else {
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
        let nd = self.view.space.problem().dims.len();
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
    pub(in crate::milp) fn log_factor_if(
        &self,
        m: &mut Model,
        vars: &Vars,
        d: usize,
        g: usize,
        y: usize,
    ) -> usize {
        let (lfv, maxlog) = self.view.log_factor(vars, d, g);
        let u = m.col(0.0, maxlog, false, 0.0);
        m.le(&Lin::var(u, 1.0).minus(&lfv), 0.0);
        m.le(&Lin::var(u, 1.0).minus(&Lin::var(y, maxlog)), 0.0);
        u
    }
}
