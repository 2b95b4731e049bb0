//! The candidate loop of one bypass pattern (`Pattern`): each round a MILP solve, its
//! candidates evaluated, and the cuts they call for.

use crate::eval::{evaluate, Evaluation};
use crate::mapspace::Mapspace;
use crate::milp::decode::{best_in_class, model_value, term_values};
use crate::milp::encode::build::build_pattern;
use crate::milp::encode::{DimCols, Vars};
use crate::milp::lin::Lin;
use crate::milp::model::Model;
use crate::milp::run::run_highs;
use crate::milp::{SolveOptions, OFF, SHAVE};
use crate::model::{Mapping, ModelOptions};
use crate::solver::Status;
use std::time::Instant;

/// The outer-approximation state of one bypass pattern: its model with the cuts so far, its
/// best mapping and its proven lower bound. `step` runs one MILP solve and adds its cuts.
#[derive(Clone)]
pub(super) struct Pattern {
    pub(super) m: Model,
    pub(super) vars: Vars,
    pub(super) keep: Vec<Vec<bool>>,
    pub(super) scale: f64,
    pub(super) seen: std::collections::HashSet<Vec<u8>>,
    pub(super) best: Option<(Mapping, Evaluation)>,
    /// Proven lower bound of the pattern's mapspace.
    pub(super) bound: f64,
    /// The least model value of the loop order classes excluded without finding their best
    /// loop order (more orders than [`CLASS_ORDERS`]): the bound never goes above it.
    pub(super) floor: f64,
    /// The bound meets the best value (or the cutoff): nothing left to do.
    pub(super) done: bool,
    /// Whether `m` and `vars` are the pattern's model (else it waits, with its completion
    /// bound, for its first refinement).
    pub(super) built: bool,
    pub(super) rounds: usize,
    pub(super) solves: usize,
    /// Seconds of the last MILP solve.
    pub(super) last_solve: f64,
}

impl Pattern {
    /// A pattern not built yet: its keep pattern and its completion bound.
    pub(super) fn pending(keep: Vec<Vec<bool>>, bound: f64) -> Pattern {
        let vars = Vars {
            x: vec![],
            delta: vec![],
        };
        Pattern {
            bound,
            built: false,
            ..Pattern::built(Model::default(), vars, keep, 1.0)
        }
    }
    /// A pattern just built: its model, one-hots, keep pattern and energy scale, no round yet.
    pub(in crate::milp) fn built(
        m: Model,
        vars: Vars,
        keep: Vec<Vec<bool>>,
        scale: f64,
    ) -> Pattern {
        Pattern {
            m,
            vars,
            keep,
            scale,
            seen: Default::default(),
            best: None,
            bound: f64::NEG_INFINITY,
            floor: f64::INFINITY,
            done: false,
            built: true,
            rounds: 0,
            solves: 0,
            last_solve: 0.0,
        }
    }
    /// Builds the pattern's model and starts it from the completion bounds; a pattern with no
    /// valid mapping is closed (bound infinite).
    pub(super) fn build(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        slice_choices: (usize, usize),
    ) -> Result<(), String> {
        if let Some(mut p) = build_pattern(space, opts, &self.keep, slice_choices)? {
            if p.start_from_completion_bounds(space, opts) {
                *self = p;
                return Ok(());
            }
        }
        self.built = true;
        self.done = true;
        self.bound = f64::INFINITY;
        Ok(())
    }
    /// Starts the pattern from the enumeration's completion bounds
    /// ([`crate::search::choice_bounds`]): its bound is that of all its mappings; a
    /// factorisation of a dim encoded whole that no completion makes valid is excluded; and the
    /// objective is at least the bound of the factorisation each such dim takes, a row linear
    /// in the dim's one-hot, so that the LP's bound never falls below the least of them and
    /// rises to a factorisation's bound once the branch and bound fixes it. False when no
    /// mapping of the pattern is valid.
    pub(super) fn start_from_completion_bounds(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
    ) -> bool {
        let dims: Vec<usize> = (self.vars.x.iter().enumerate())
            .filter(|(_, x)| matches!(x, DimCols::Whole(c) if c.len() > 1))
            .map(|(d, _)| d)
            .collect();
        let (whole, per_dim) = crate::search::choice_bounds(space, &self.keep, opts, &dims);
        let Some(whole) = whole else {
            return false;
        };
        self.bound = whole * (1.0 - SHAVE);
        if std::env::var("QMAP_MILP_PROFILE").is_ok() {
            let range = |b: &Vec<Option<f64>>| {
                let v = b.iter().flatten();
                let lo = v.clone().copied().fold(f64::INFINITY, f64::min);
                (lo, v.copied().fold(0.0, f64::max))
            };
            eprintln!(
                "completion bounds: pattern {whole:.6e}, dims {:?}: {:?}",
                dims,
                per_dim.iter().map(range).collect::<Vec<_>>()
            );
        }
        for (&d, bounds) in dims.iter().zip(&per_dim) {
            let DimCols::Whole(cols) = &self.vars.x[d] else {
                unreachable!("only dims encoded whole are bounded")
            };
            let mut floor = vec![];
            for (col, b) in cols.iter().zip(bounds) {
                let col = col.expect("a dim with several factorisations has a column each");
                match b {
                    None => self.m.col_hi[col] = 0.0,
                    Some(b) => floor.push((col, b / self.scale * (1.0 - SHAVE))),
                }
            }
            if floor.is_empty() {
                return false;
            }
            self.m.objective_floors.push(floor);
        }
        true
    }
    /// Splits the pattern's mapspace in two along its largest factorisation one-hot that has
    /// two or more columns still free: this pattern keeps the second half of those columns,
    /// the returned one (with every cut so far, which stays valid) the first. Every mapping
    /// takes exactly one column of the one-hot, so the two halves cover the pattern. None when
    /// no one-hot is left to split.
    pub(super) fn split(&mut self) -> Option<Pattern> {
        let mut factorisation = std::collections::HashSet::new();
        for dim in &self.vars.x {
            match dim {
                DimCols::Whole(cols) => factorisation.extend(cols.iter().flatten()),
                DimCols::Sliced(groups) => {
                    factorisation.extend(groups.iter().flat_map(|g| &g.values).flat_map(|v| v.0))
                }
            }
        }
        let cols = self
            .m
            .groups
            .iter()
            .filter(|g| g.iter().all(|i| factorisation.contains(i)))
            .map(|g| {
                g.iter()
                    .copied()
                    .filter(|&i| self.m.col_hi[i] > 0.5)
                    .collect::<Vec<usize>>()
            })
            .rev() // ties: the first such one-hot
            .max_by_key(|c| c.len())?;
        if cols.len() < 2 {
            return None;
        }
        let mut other = self.clone();
        other.rounds = 0;
        other.solves = 0;
        let half = cols.len() / 2;
        for (j, &c) in cols.iter().enumerate() {
            if j < half {
                self.m.col_hi[c] = 0.0;
            } else {
                other.m.col_hi[c] = 0.0;
            }
        }
        Some(other)
    }
    /// One candidate round: solves the MILP (only mappings cheaper than `cutoff` when given),
    /// raises the bound, evaluates the candidate and adds its tangents (and a no-good cut when
    /// the model undervalues it). Returns false when the time limit stopped the solve.
    pub(super) fn step(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        so: &SolveOptions,
        time_left: Option<f64>,
        cutoff: Option<f64>,
    ) -> Result<bool, String> {
        let problem = space.problem();
        let scale = self.scale;
        let m = &mut self.m;
        let cutoff = match (&self.best, cutoff) {
            (Some(b), Some(c)) => Some(b.1.energy_pj.min(c)),
            (Some(b), None) => Some(b.1.energy_pj),
            (None, c) => c,
        };
        let t_solve = Instant::now();
        let (status, x, obj_bound, improving) = run_highs(
            m,
            time_left,
            cutoff.map(|c| c / scale * (1.0 - so.gap / 2.0)),
        )?;
        self.solves += 1;
        self.last_solve = t_solve.elapsed().as_secs_f64();
        if std::env::var("QMAP_MILP_PROFILE").is_ok() {
            eprintln!(
                "milp: {} cols ({} binary), {} rows, {} terms: {:?} in {:.3} s",
                m.col_lo.len(),
                m.col_int.iter().filter(|b| **b).count(),
                m.rows.len(),
                m.terms.len(),
                status,
                t_solve.elapsed().as_secs_f64()
            );
        }
        match status {
            Status::Infeasible => {
                // Nothing beats the cutoff (or nothing is feasible at all) in this pattern.
                self.bound = cutoff.map_or(f64::INFINITY, |c| c * (1.0 - so.gap / 2.0));
                self.bound = self.bound.min(self.floor);
                self.done = true;
                return Ok(true);
            }
            Status::Optimal => {}
            Status::ReachedTimeLimit => {
                // An interrupted solve may report no finite dual bound: then it proves nothing.
                let lb = Some(obj_bound * scale)
                    .filter(|b| b.is_finite())
                    .unwrap_or(f64::NEG_INFINITY);
                self.bound = self.bound.max(lb).min(self.floor);
                // What the interrupted search found still counts for the incumbent.
                for y in improving.iter().chain(&x) {
                    offer(space, opts, &self.vars, &self.keep, &mut self.best, y, lb)?;
                }
                return Ok(false);
            }
            other => return Err(format!("HiGHS ended with status {other:?}")),
        }
        let Some(mut x) = x else {
            return Err("HiGHS returned no solution".into());
        };
        let lb = obj_bound * scale;
        self.bound = self.bound.max(lb).min(self.floor);
        self.rounds += 1;
        let (ev, resolved) = offer(space, opts, &self.vars, &self.keep, &mut self.best, &x, lb)?;
        let model_value = model_value(m, &x) * scale;
        if std::env::var("QMAP_MILP_PROFILE").is_ok() {
            eprintln!(
                "  round: bound {lb:.6e} model {model_value:.6e} evaluator {:.6e} valid {}",
                ev.energy_pj, ev.valid
            );
            if std::env::var("QMAP_MILP_PROFILE").is_ok_and(|v| v == "2") {
                let (mapping, _) = best_in_class(space, opts, &self.vars, &self.keep, &x);
                eprint!(
                    "{}",
                    crate::report::loop_nest(&mapping, space.arch(), problem)
                );
            }
            // Per (level, tensor): the model's terms against the evaluator's energy (Outputs'
            // linear parts, the subtracted partitions, are not in the terms).
            if ev.valid {
                for (l, ls) in ev.levels.iter().enumerate() {
                    for (t, tensor) in problem.tensors.iter().enumerate() {
                        let Some(ts) = ls.tensors.iter().find(|ts| ts.name == tensor.name) else {
                            continue;
                        };
                        let mv: f64 = term_values(m, &x)
                            .iter()
                            .filter(|(at, _)| *at == (l, t))
                            .map(|(_, v)| v * scale)
                            .sum();
                        if (mv - ts.energy_pj).abs() > 1e-7 * ev.energy_pj {
                            eprintln!(
                                "    {} {}: terms {mv:.6e} evaluator {:.6e} (r {} f {} u {})",
                                ls.name,
                                tensor.name,
                                ts.energy_pj,
                                ts.reads_per_instance,
                                ts.fills_per_instance,
                                ts.updates_per_instance
                            );
                        }
                    }
                }
            }
        }
        // The improving solutions HiGHS found on the way are mappings too: each may be a better
        // incumbent, and tangents there tighten the model where the search has been.
        let key = m.identity_key(&x);
        let mut extra_keys = vec![];
        for y in &improving {
            let k = m.identity_key(y);
            if k == key || extra_keys.contains(&k) {
                continue;
            }
            extra_keys.push(k);
            offer(space, opts, &self.vars, &self.keep, &mut self.best, y, lb)?;
            m.tangents_at(y);
        }
        let ub = self
            .best
            .as_ref()
            .map_or(f64::INFINITY, |b| b.1.energy_pj)
            .min(cutoff.unwrap_or(f64::INFINITY));
        let lb = lb.min(self.floor);
        if ub.is_finite() && (ub - lb) <= so.gap * ub {
            self.bound = lb;
            self.done = true;
            return Ok(true);
        }
        // Tangents at the candidate for every term (as if each mode were active).
        m.tangents_at(&x);
        // Deferred ceilings that this candidate's value depends on: make them exact.
        if ev.valid && model_value < ev.energy_pj * (1.0 - so.gap * 0.5) {
            for i in 0..m.deferred.len() {
                let d = &m.deferred[i];
                if d.active {
                    continue;
                }
                let a = d.per_instance.value(&x);
                let v = d.per_vector * a.exp();
                if a > -OFF / 2.0 && (v - v.round()).abs() > 1e-9 * v.max(1.0) {
                    m.activate(i);
                }
            }
            for i in 0..m.multi.len() {
                if m.multi[i].r.is_some() || m.multi[i].dropped {
                    continue;
                }
                let (v, _, on) = m.multi_accesses(&m.multi[i], &x);
                if on && (v - v.round()).abs() > 1e-9 * v.max(1.0) {
                    m.activate_multi(i);
                }
            }
            // Columns added just now: the instance one-hots take their values at the candidate
            // (the new integer counts stay 0; only the tangents below read them).
            let old = x.len();
            if m.col_lo.len() > old {
                x.resize(m.col_lo.len(), 0.0);
                let charged = m
                    .deferred
                    .iter()
                    .filter(|d| d.active)
                    .map(|d| (&d.charged, d.level));
                let multi = m
                    .multi
                    .iter()
                    .filter(|mc| mc.r.is_some())
                    .filter_map(|mc| mc.per_instance.as_ref().map(|(c, l)| (c, *l)));
                for (charged, level) in charged.chain(multi) {
                    let n = charged.value(&x).exp();
                    for &(g, v) in m.instance_values.get(&level).into_iter().flatten() {
                        if g >= old && (v / n - 1.0).abs() < 1e-6 {
                            x[g] = 1.0;
                        }
                    }
                }
            }
        }
        // Ceilings only at the candidate's instance count (and load mode).
        for t in m.ceilings.clone() {
            let a = t.a.value(&x);
            if a > -OFF / 2.0 {
                m.tangent(&t, a);
            }
        }
        // The MILP may still value this mapping below the evaluator (ceilings, coinciding
        // offsets) or it may be invalid: exclude it.
        let exact_now = ev.valid && model_value >= ev.energy_pj * (1.0 - so.gap * 0.5);
        if ev.valid && !exact_now && !resolved {
            // Excluded without its best loop order: its model value still bounds it.
            self.floor = self.floor.min(model_value);
            self.bound = self.bound.min(self.floor);
        }
        if !ev.valid || !exact_now || !self.seen.insert(key.clone()) {
            let mut l = Lin::default();
            let mut ones = 0.0;
            for (&i, &b) in m.identity.iter().zip(&key) {
                if b == 1 {
                    l.t.push((i, 1.0));
                    ones += 1.0;
                } else {
                    l.t.push((i, -1.0));
                }
            }
            m.le(&l, ones - 1.0);
        }
        Ok(true)
    }
}

/// Evaluates the best mapping of MILP solution `y`'s loop order class ([`best_in_class`]) and
/// keeps it in `best` if it beats it; fails if the MILP's bound `lb` exceeds its evaluator
/// value (the cross-check). Returns the evaluation and whether it is the class's best.
pub(super) fn offer(
    space: &Mapspace,
    opts: &ModelOptions,
    vars: &Vars,
    keep: &[Vec<bool>],
    best: &mut Option<(Mapping, Evaluation)>,
    y: &[f64],
    lb: f64,
) -> Result<(Evaluation, bool), String> {
    let (mapping, resolved) = best_in_class(space, opts, vars, keep, y);
    let ev = evaluate(space.problem(), space.arch(), &mapping, opts);
    if !ev.valid {
        return Ok((ev, resolved));
    }
    if lb > ev.energy_pj * (1.0 + 1e-7) {
        return Err(format!(
            "internal error: the MILP bound {lb} pJ exceeds the evaluator's {} pJ for a mapping it found; the model overestimates a cost",
            ev.energy_pj
        ));
    }
    if best.as_ref().is_none_or(|b| ev.energy_pj < b.1.energy_pj) {
        *best = Some((mapping, ev.clone()));
    }
    Ok((ev, resolved))
}
