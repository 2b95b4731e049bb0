//! The candidate loop of one bypass pattern (`Pattern`): each round a MILP solve, its
//! candidates evaluated, and the cuts they call for.

use crate::eval::{evaluate, Evaluation};
use crate::mapspace::Mapspace;
use crate::milp::decode::{best_in_class, model_value, term_values};
use crate::milp::encode::build::build_pattern;
use crate::milp::encode::{DimCols, Vars};
use crate::milp::model::Model;
use crate::milp::run::{run_highs, Solved};
use crate::milp::{SolveOptions, OFF, SHAVE};
use crate::model::{Mapping, ModelOptions};
use crate::solver::Status;
use std::time::Instant;

/// The outer-approximation state of one bypass pattern: its model with the cuts so far, its
/// best mapping and its proven lower bound. `step` runs one MILP solve and adds its cuts.
#[derive(Clone)]
pub(super) struct Pattern {
    /// The model with the cuts so far.
    pub(super) m: Model,
    /// The model's one-hots.
    pub(super) vars: Vars,
    /// The keep/bypass pattern (per level, per tensor).
    pub(super) keep: Vec<Vec<bool>>,
    /// pJ per objective unit of the model.
    pub(super) scale: f64,
    /// The identity keys of the candidates met (a repeat gets a no-good cut).
    pub(super) seen: std::collections::HashSet<Vec<u8>>,
    /// The best mapping met and its evaluation.
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
    /// Candidate rounds so far.
    pub(super) rounds: usize,
    /// MILP solves so far.
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
        let cutoff = match (&self.best, cutoff) {
            (Some(b), Some(c)) => Some(b.1.energy_pj.min(c)),
            (Some(b), None) => Some(b.1.energy_pj),
            (None, c) => c,
        };
        let (status, x, obj_bound, improving) = self.solve(time_left, cutoff, so.gap)?;
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
                self.interrupted(space, opts, obj_bound, &improving, x.as_ref())?;
                return Ok(false);
            }
            other => return Err(format!("HiGHS ended with status {other:?}")),
        }
        let Some(x) = x else {
            return Err("HiGHS returned no solution".into());
        };
        let lb = obj_bound * self.scale;
        self.bound = self.bound.max(lb).min(self.floor);
        self.rounds += 1;
        let (ev, resolved) = self.offer(space, opts, &x, lb)?;
        let model_value = model_value(&self.m, &x) * self.scale;
        if profiling() {
            self.profile_round(space, opts, &x, (lb, model_value), &ev);
        }
        let key = self.m.identity_key(&x);
        self.offer_improving(space, opts, &improving, &key, lb)?;
        if self.within_gap(lb, cutoff, so.gap) {
            return Ok(true);
        }
        // Over the latency budget counts as invalid, except that a class not resolved
        // (`best_in_class`) may hold orders within it: the floor below keeps them bounded.
        let fits = ev.valid && space.within_budget(ev.cycles);
        let undervalued = fits && model_value < ev.energy_pj * (1.0 - so.gap * 0.5);
        self.cut_at(x, undervalued);
        // The MILP may still value this mapping below the evaluator (ceilings, coinciding
        // offsets) or it may be invalid: exclude it.
        let exact_now = fits && model_value >= ev.energy_pj * (1.0 - so.gap * 0.5);
        if ev.valid && !exact_now && !resolved {
            // Excluded without its best loop order: its model value still bounds it.
            self.floor = self.floor.min(model_value);
            self.bound = self.bound.min(self.floor);
        }
        if !exact_now || !self.seen.insert(key.clone()) {
            self.m.no_good(&key);
        }
        Ok(true)
    }

    /// One MILP solve of the pattern's model below `cutoff` (pJ, less half the gap).
    fn solve(
        &mut self,
        time_left: Option<f64>,
        cutoff: Option<f64>,
        gap: f64,
    ) -> Result<Solved, String> {
        let m = &self.m;
        let t_solve = Instant::now();
        let cutoff = cutoff.map(|c| c / self.scale * (1.0 - gap / 2.0));
        let solved = run_highs(m, time_left, cutoff)?;
        self.solves += 1;
        self.last_solve = t_solve.elapsed().as_secs_f64();
        if profiling() {
            eprintln!(
                "milp: {} cols ({} binary), {} rows, {} terms: {:?} in {:.3} s",
                m.col_lo.len(),
                m.col_int.iter().filter(|b| **b).count(),
                m.rows.len(),
                m.terms.len(),
                solved.0,
                t_solve.elapsed().as_secs_f64()
            );
        }
        Ok(solved)
    }

    /// A solve the time limit stopped: its bound (when finite) still counts, and so does what
    /// the interrupted search found for the incumbent.
    fn interrupted(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        obj_bound: f64,
        improving: &[Vec<f64>],
        x: Option<&Vec<f64>>,
    ) -> Result<(), String> {
        // An interrupted solve may report no finite dual bound: then it proves nothing.
        let lb = Some(obj_bound * self.scale)
            .filter(|b| b.is_finite())
            .unwrap_or(f64::NEG_INFINITY);
        self.bound = self.bound.max(lb).min(self.floor);
        for y in improving.iter().chain(x) {
            self.offer(space, opts, y, lb)?;
        }
        Ok(())
    }

    /// The improving solutions HiGHS found on the way are mappings too: each may be a better
    /// incumbent, and tangents there tighten the model where the search has been (each
    /// mapping once, and not the candidate `key` itself).
    fn offer_improving(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        improving: &[Vec<f64>],
        key: &[u8],
        lb: f64,
    ) -> Result<(), String> {
        let mut extra_keys = vec![];
        for y in improving {
            let k = self.m.identity_key(y);
            if k == key || extra_keys.contains(&k) {
                continue;
            }
            extra_keys.push(k);
            self.offer(space, opts, y, lb)?;
            self.m.tangents_at(y);
        }
        Ok(())
    }

    /// Whether the best value (or the cutoff) is within the gap of bound `lb`: the pattern is
    /// then closed at `lb`.
    fn within_gap(&mut self, lb: f64, cutoff: Option<f64>, gap: f64) -> bool {
        let ub = self
            .best
            .as_ref()
            .map_or(f64::INFINITY, |b| b.1.energy_pj)
            .min(cutoff.unwrap_or(f64::INFINITY));
        let lb = lb.min(self.floor);
        if ub.is_finite() && (ub - lb) <= gap * ub {
            self.bound = lb;
            self.done = true;
            return true;
        }
        false
    }

    /// The cuts at candidate `x`: tangents of every term (as if each mode were active), the
    /// ceilings its value depends on made exact when the model `undervalued` it, and the
    /// ceilings' tangents at its instance counts (and load mode).
    fn cut_at(&mut self, mut x: Vec<f64>, undervalued: bool) {
        let m = &mut self.m;
        m.tangents_at(&x);
        if undervalued {
            m.make_ceilings_exact(&mut x);
        }
        for t in m.ceilings.clone() {
            let a = t.a.value(&x);
            if a > -OFF / 2.0 {
                m.tangent(&t, a);
            }
        }
    }

    /// Evaluates the best mapping of MILP solution `y`'s loop order class ([`best_in_class`])
    /// and keeps it as the pattern's best if it beats it; fails if the MILP's bound `lb`
    /// exceeds its evaluator value (the cross-check). Returns the evaluation and whether it is
    /// the class's best.
    fn offer(
        &mut self,
        space: &Mapspace,
        opts: &ModelOptions,
        y: &[f64],
        lb: f64,
    ) -> Result<(Evaluation, bool), String> {
        let (mapping, resolved) = best_in_class(space, opts, &self.vars, &self.keep, y);
        let ev = evaluate(space.problem(), space.arch(), &mapping, opts);
        if !ev.valid || !space.within_budget(ev.cycles) {
            return Ok((ev, resolved));
        }
        if lb > ev.energy_pj * (1.0 + 1e-7) {
            return Err(format!(
                "internal error: the MILP bound {lb} pJ exceeds the evaluator's {} pJ for a mapping it found; the model overestimates a cost",
                ev.energy_pj
            ));
        }
        if self
            .best
            .as_ref()
            .is_none_or(|b| ev.energy_pj < b.1.energy_pj)
        {
            self.best = Some((mapping, ev.clone()));
        }
        Ok((ev, resolved))
    }

    /// The profile of a round (`QMAP_MILP_PROFILE`): bound, model and evaluator values, the
    /// mapping (`=2`), and per (level, tensor) where the model's terms and the evaluator's
    /// energy differ (Outputs' linear parts, the subtracted partitions, are not in the terms).
    fn profile_round(
        &self,
        space: &Mapspace,
        opts: &ModelOptions,
        x: &[f64],
        (lb, model_value): (f64, f64),
        ev: &Evaluation,
    ) {
        let problem = space.problem();
        eprintln!(
            "  round: bound {lb:.6e} model {model_value:.6e} evaluator {:.6e} valid {}",
            ev.energy_pj, ev.valid
        );
        if std::env::var("QMAP_MILP_PROFILE").is_ok_and(|v| v == "2") {
            let (mapping, _) = best_in_class(space, opts, &self.vars, &self.keep, x);
            eprint!(
                "{}",
                crate::report::loop_nest(&mapping, space.arch(), problem)
            );
        }
        if !ev.valid {
            return;
        }
        for (l, ls) in ev.levels.iter().enumerate() {
            for (t, tensor) in problem.tensors.iter().enumerate() {
                let Some(ts) = ls.tensors.iter().find(|ts| ts.name == tensor.name) else {
                    continue;
                };
                let mv: f64 = term_values(&self.m, x)
                    .iter()
                    .filter(|(at, _)| *at == (l, t))
                    .map(|(_, v)| v * self.scale)
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

/// Whether `QMAP_MILP_PROFILE` asks for a profile of every solve and round.
fn profiling() -> bool {
    std::env::var("QMAP_MILP_PROFILE").is_ok()
}
