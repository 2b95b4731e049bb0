//! From a MILP solution back to mappings (`candidate`, `best_in_class`), and the model's own
//! value of a solution.

use crate::mapspace::Mapspace;
use crate::milp::encode::symmetry::irrelevant_to;
use crate::milp::encode::{DimCols, Vars};
use crate::milp::model::{ExpTerm, Model};
use crate::milp::{OFF, SHAVE};
use crate::model::{LevelMapping, Loop, Mapping, ModelOptions};
use itertools::Itertools;

/// Most loop orders [`best_in_class`] evaluates for one class.
pub(super) const CLASS_ORDERS: usize = 40_320;

/// The cheapest mapping of MILP solution `x`'s loop order class: its factorisation and keep
/// pattern, each level's innermost loop (or permutation prefix) as the MILP chose it, and the
/// other loops of each level in every order (the canonical order of [`candidate`] first, so
/// that ties keep it). The MILP cannot tell these orders apart (Timeloop's window carried
/// across a wrap-around, `eval::timeloop_loads`, depends on more than the innermost loops),
/// so a class is excluded only once its best order is known. Under a latency budget
/// ([`Mapspace::max_cycles`]) the cheapest order within it (the canonical one when none is).
/// True when every order was evaluated (at most [`CLASS_ORDERS`]); else the canonical order
/// alone.
pub(super) fn best_in_class(
    space: &Mapspace,
    opts: &ModelOptions,
    vars: &Vars,
    keep: &[Vec<bool>],
    x: &[f64],
) -> (Mapping, bool) {
    let canonical = candidate(space, vars, keep, x);
    // Per level, the position from which its loops are free, and their permutations.
    let mut free: Vec<(usize, Vec<Vec<Loop>>)> = vec![];
    let mut total = 1usize;
    for (l, lm) in canonical.levels.iter().enumerate() {
        if !space.orders_enumerated(l) {
            continue;
        }
        let prefix = space.temporal_prefix(l);
        let nonunit: Vec<&Loop> = lm.temporal.iter().filter(|lp| lp.factor > 1).collect();
        let fixed = nonunit
            .iter()
            .take_while(|lp| prefix.contains(&lp.dim))
            .count()
            .max(1)
            .min(nonunit.len());
        let rest = &nonunit[fixed..];
        if rest.len() < 2 {
            continue;
        }
        let perms: Vec<Vec<Loop>> = rest
            .iter()
            .map(|lp| **lp)
            .permutations(rest.len())
            .collect();
        total = total.saturating_mul(perms.len());
        free.push((l, perms));
    }
    if free.is_empty() {
        return (canonical, true);
    }
    if total > CLASS_ORDERS {
        return (canonical, false);
    }
    let mut ev = crate::eval::Evaluator::new(space.problem(), space.arch());
    // The energy of an order that is valid and within the latency budget.
    let fits = |s: Option<(f64, u64)>| s.filter(|s| space.within_budget(s.1)).map(|s| s.0);
    let first = ev.score(&canonical, opts);
    if first.is_none() {
        // Invalid: so is every order of the class.
        return (canonical, true);
    }
    // None while no order met the budget (the canonical one is returned if none does).
    let mut best = (canonical.clone(), fits(first));
    let mut m = canonical.clone();
    let mut idx = vec![0usize; free.len()];
    loop {
        for ((l, perms), &i) in free.iter().zip(&idx) {
            let lm = &canonical.levels[*l];
            let head = lm.temporal.len() - perms[i].len();
            m.levels[*l].temporal.truncate(head);
            m.levels[*l].temporal.extend_from_slice(&perms[i]);
        }
        if let Some(e) = fits(ev.score(&m, opts)) {
            if best.1.is_none_or(|b| e < b) {
                best = (m.clone(), Some(e));
            }
        }
        // Next combination.
        let mut k = 0;
        while k < idx.len() {
            idx[k] += 1;
            if idx[k] < free[k].1.len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
        if k == idx.len() {
            break;
        }
    }
    (best.0, true)
}

/// The model's own value of a solution: exact exp of every term plus the linear parts.
pub(super) fn model_value(m: &Model, x: &[f64]) -> f64 {
    let mut v = m.cost_const;
    let rounding: Vec<usize> = m.multi.iter().filter_map(|mc| mc.r).collect();
    for (i, c) in m.col_cost.iter().enumerate() {
        if *c != 0.0 && !m.terms.iter().any(|t| t.w == i) && !rounding.contains(&i) {
            v += c * x[i];
        }
    }
    v + term_values(m, x).iter().map(|(_, v)| v).sum::<f64>()
}

/// The model's exact value at `x` of each term, with the (level, tensor) it belongs to: its
/// exp, floors and ceilings, and for a multi-part count made exact, what rounding the parts'
/// sum up adds (on its first part).
pub(super) fn term_values(m: &Model, x: &[f64]) -> Vec<((usize, usize), f64)> {
    let mut out = vec![];
    for mc in m.multi.iter().filter(|mc| mc.r.is_some()) {
        let (accesses, sum, _) = m.multi_accesses(mc, x);
        let unit = sum / accesses;
        let first = m.terms.iter().find(|t| t.w == mc.ws[0]);
        if let (true, Some(t)) = (unit.is_finite(), first) {
            out.push((
                t.at,
                (unit * (accesses * (1.0 - SHAVE)).ceil() - sum).max(0.0),
            ));
        }
    }
    for t in &m.terms {
        let a = t.a.value(x);
        if a > -OFF / 2.0 {
            let floor = m
                .floors
                .iter()
                .filter(|f| f.w == t.w)
                .map(|f| f.coef * f.a.value(x).exp())
                .fold(0.0, f64::max);
            let term = term_value(m, t, (t.coef * a.exp()).max(floor));
            // w ≥ Σ_n unit_n · z_n, z_n the whole vector accesses at instance count n.
            let whole: f64 = m.ceiling_units.get(&t.w).map_or(0.0, |units| {
                units
                    .iter()
                    .map(|&(i, u)| {
                        let c = &m.ceilings[i];
                        let a = c.a.value(x);
                        if a > -OFF / 2.0 {
                            u * (c.coef * a.exp() * (1.0 - SHAVE)).ceil()
                        } else {
                            0.0
                        }
                    })
                    .sum()
            });
            out.push((t.at, term.max(whole)));
        }
    }
    out
}

/// A term's value from its exponent's: rounded up to whole vector accesses when it has a unit.
pub(super) fn term_value(m: &Model, t: &ExpTerm, v: f64) -> f64 {
    match m.units.get(&t.w) {
        Some(&u) => u * (v * (1.0 - SHAVE) / u).ceil(),
        None => v,
    }
}

/// Turns a MILP solution into a mapping: factors from the per-dim one-hots, loop orders from the
/// innermost-dim choices (canonical completion), keep from the pattern.
pub(super) fn candidate(space: &Mapspace, vars: &Vars, keep: &[Vec<bool>], x: &[f64]) -> Mapping {
    let problem = space.problem();
    let nd = problem.dims.len();
    let nl = space.arch().levels.len();
    // The chosen entry of a one-hot (its columns in order; None: the only entry).
    let pick = |cols: &[Option<usize>]| {
        cols.iter()
            .position(|c| c.is_none_or(|c| x[c] > 0.5))
            .unwrap_or(0)
    };
    let chosen: Vec<Vec<u64>> = (0..nd)
        .map(|d| match &vars.x[d] {
            DimCols::Whole(cols) => space.dim_choices(d)[pick(cols)].clone(),
            DimCols::Sliced(groups) => {
                let mut c = vec![1; space.slots().len()];
                for grp in groups {
                    let cols: Vec<Option<usize>> = grp.values.iter().map(|v| v.0).collect();
                    let v = &grp.values[pick(&cols)].1;
                    for (&s, &f) in grp.slots.iter().zip(v) {
                        c[s] = f;
                    }
                }
                c
            }
        })
        .collect();
    let mut levels = Vec::with_capacity(nl);
    for l in 0..nl {
        let ls = space.level_slots(l);
        let f = |d: usize, s: usize| chosen[d][s];
        let nonunit: Vec<usize> = (0..nd).filter(|&d| f(d, ls.temporal) > 1).collect();
        let innermost = (0..nd).find(|&d| vars.delta[l][d].is_some_and(|c| x[c] > 0.5));
        let prefix = space.temporal_prefix(l);
        let mut order: Vec<usize> = prefix
            .iter()
            .copied()
            .filter(|d| nonunit.contains(d))
            .collect();
        let rest: Vec<usize> = nonunit
            .iter()
            .copied()
            .filter(|d| !prefix.contains(d))
            .collect();
        // The tensor the innermost loop is irrelevant to: its irrelevant loops come next.
        let head = order.first().copied().or(innermost);
        let stationary = head.and_then(|d| irrelevant_to(space, d));
        let mut rest_sorted: Vec<usize> = vec![];
        if order.is_empty() {
            if let Some(d) = innermost.filter(|d| rest.contains(d)) {
                rest_sorted.push(d);
            }
        }
        for &d in &rest {
            if !rest_sorted.contains(&d)
                && stationary.is_some()
                && irrelevant_to(space, d) == stationary
            {
                rest_sorted.push(d);
            }
        }
        for &d in &rest {
            if !rest_sorted.contains(&d) {
                rest_sorted.push(d);
            }
        }
        order.extend(rest_sorted);
        let loops = |s: Option<usize>| -> Vec<Loop> {
            match s {
                None => vec![],
                Some(s) => (0..nd)
                    .filter(|&d| f(d, s) > 1)
                    .map(|d| Loop {
                        dim: d,
                        factor: f(d, s),
                    })
                    .collect(),
            }
        };
        levels.push(LevelMapping {
            temporal: order
                .iter()
                .map(|&d| Loop {
                    dim: d,
                    factor: f(d, ls.temporal),
                })
                .collect(),
            spatial_x: loops(ls.x),
            spatial_y: loops(ls.y),
            keep: keep[l].clone(),
        });
    }
    Mapping { levels }
}
