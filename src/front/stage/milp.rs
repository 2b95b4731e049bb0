//! The selection MILP in HiGHS: the fallback of a stage whose labels outgrow their limit.
//!
//! One binary per (layer, kept candidate), one-hot per layer, activation bits chained between
//! producer and consumer, one row per bound; solved by HiGHS with threads 1, mip_rel_gap 0,
//! mip_abs_gap 0 and feasibility tolerances 1e-9, each criterion's coefficients scaled to at most
//! 1 in magnitude. The MILP is solved over the entries whose Lagrangian bound does not exceed the
//! best feasible selection met; when that leaves many, first over the entries of smallest reduced
//! cost, and that optimum is accepted only if no dropped entry could beat it.

use super::lagrange::Reduction;
use super::{Milp, Solve};
use crate::front::{Criterion, FrontError, PointStatus};
use crate::solver::{Problem, Settings, Status, Value};

/// Feasibility and integrality tolerance given to HiGHS (coefficients are scaled to ≤ 1).
const HIGHS_TOLERANCE: f64 = 1e-9;

/// Candidates per layer up to which a MILP is solved directly; beyond, a restricted MILP over
/// the candidates of smallest reduced cost comes first.
const RESTRICTED_PER_LAYER: usize = 3;

impl Milp<'_> {
    /// The stage when the label search gave up, by the MILP: over `survivors` (the candidates
    /// the Lagrangian bound `red` leaves within the incumbent) when they are few; else first over
    /// the candidates of smallest reduced cost (and the incumbent's), whose optimum is kept only if
    /// no left-out candidate could beat it (else the MILP over every candidate that could is
    /// solved), the restriction widened while it is infeasible.
    pub(super) fn milp_fallback(
        &self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        red: &Reduction,
        survivors: Option<Vec<Vec<usize>>>,
    ) -> Result<Solve, FrontError> {
        let n = self.kept.len();
        let count = |a: &[Vec<usize>]| a.iter().map(Vec::len).sum::<usize>();
        let inc = red.incumbent.as_ref();
        if let Some(s) = &survivors {
            if count(s) <= RESTRICTED_PER_LAYER * n {
                return self.milp(objective, bounds, s);
            }
        }
        let mut sorted: Vec<f64> = red.reduced.iter().flatten().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let mut k = RESTRICTED_PER_LAYER * n;
        loop {
            if k >= sorted.len() {
                let all = survivors.unwrap_or_else(|| self.kept.clone());
                return self.milp(objective, bounds, &all);
            }
            let mut restricted = self.within(red, sorted[k - 1]);
            if let Some((_, sel)) = inc {
                // The incumbent keeps the restricted MILP feasible.
                for (l, &c) in sel.iter().enumerate() {
                    if !restricted[l].contains(&c) {
                        restricted[l].push(c);
                    }
                }
            }
            match self.milp(objective, bounds, &restricted)? {
                Solve::Found(sel, PointStatus::Optimal) => {
                    let mut u = self.value(objective, &sel);
                    if let Some((v, _)) = inc {
                        u = u.min(*v);
                    }
                    let need = self.within(red, red.tolerance(u));
                    if need
                        .iter()
                        .zip(&restricted)
                        .all(|(a, b)| a.iter().all(|c| b.contains(c)))
                    {
                        return Ok(Solve::Found(sel, PointStatus::Optimal));
                    }
                    return self.milp(objective, bounds, &need);
                }
                Solve::Infeasible => k *= 4,
                other => return Ok(other),
            }
        }
    }

    /// The MILP over the given candidates. (No MIP start: HiGHS 1.16 may return the start's
    /// columns with the objective of a better solution found in the presolved space.)
    fn milp(
        &self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        active: &[Vec<usize>],
    ) -> Result<Solve, FrontError> {
        if active.iter().any(Vec::is_empty) {
            return Ok(Solve::Infeasible);
        }
        self.milp_solves.set(self.milp_solves.get() + 1);
        if active.iter().all(|ks| ks.len() == 1) {
            return Ok(self.only_selection(bounds, active));
        }
        let (pb, cols) = self.model(objective, bounds, active);
        let solved = pb.solve(&self.settings()).map_err(FrontError::Solver)?;
        let status = match solved.status {
            Status::Optimal | Status::ModelEmpty => PointStatus::Optimal,
            Status::ReachedTimeLimit => PointStatus::TimeLimit,
            Status::Infeasible | Status::UnboundedOrInfeasible => return Ok(Solve::Infeasible),
            s => return Err(FrontError::Solver(format!("HiGHS status {s:?}"))),
        };
        let x = &solved.columns;
        if x.len() != cols.iter().map(Vec::len).sum::<usize>() {
            return Ok(Solve::Unknown);
        }
        let Some(choice) = decode(x, active) else {
            return Ok(Solve::Unknown);
        };
        let got = self.value(objective, &choice);
        let reported = solved.objective;
        if status == PointStatus::Optimal && (got - reported).abs() > 1e-6 * reported.abs().max(1.0)
        {
            return Err(FrontError::Solver(format!(
                "HiGHS returned a selection of objective {got} for a reported optimum {reported}"
            )));
        }
        Ok(Solve::Found(choice, status))
    }

    /// One candidate per layer left: no MILP needed; the selection if it is chained and within
    /// the bounds.
    fn only_selection(&self, bounds: &[(Criterion, f64)], active: &[Vec<usize>]) -> Solve {
        let sel: Vec<usize> = active.iter().map(|ks| ks[0]).collect();
        let v = self.pb.costs_of(&sel);
        let chained = (0..sel.len()).all(|l| {
            self.pb.producers[l].is_none_or(|p| {
                self.pb.cands[p][sel[p]].bits.output_bits
                    == self.pb.cands[l][sel[l]].bits.input_bits
            })
        });
        if chained && bounds.iter().all(|&(c, b)| v[c.index()] <= b) {
            Solve::Found(sel, PointStatus::Optimal)
        } else {
            Solve::Infeasible
        }
    }

    /// The model: a binary per active candidate (cost: the scaled objective), one-hot per layer,
    /// per consumer and activation bit value the chaining row, one row per bound. Returns the
    /// problem and the columns per layer.
    fn model(
        &self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        active: &[Vec<usize>],
    ) -> (Problem, Vec<Vec<usize>>) {
        let pb = self.pb;
        let mut rp = Problem::default();
        let oscale = self.scale[objective.index()];
        let mut cols: Vec<Vec<usize>> = Vec::with_capacity(pb.cands.len());
        for (l, ks) in active.iter().enumerate() {
            let cost = |k: usize| objective.of(&pb.cands[l][k]) / oscale;
            cols.push(
                ks.iter()
                    .map(|&k| rp.add_column(cost(k), 0.0, 1.0, true))
                    .collect(),
            );
        }
        for c in &cols {
            let ones: Vec<(usize, f64)> = c.iter().map(|&x| (x, 1.0)).collect();
            rp.add_row(1.0, 1.0, &ones);
        }
        for (l, ks) in active.iter().enumerate() {
            let Some(p) = pb.producers[l] else { continue };
            for &b in &pb.bits.activations {
                let mut f: Vec<(usize, f64)> = Vec::new();
                for (j, &k) in ks.iter().enumerate() {
                    if pb.cands[l][k].bits.input_bits == b {
                        f.push((cols[l][j], 1.0));
                    }
                }
                for (j, &k) in active[p].iter().enumerate() {
                    if pb.cands[p][k].bits.output_bits == b {
                        f.push((cols[p][j], -1.0));
                    }
                }
                if !f.is_empty() {
                    rp.add_row(0.0, 0.0, &f);
                }
            }
        }
        for &(c, ub) in bounds {
            let s = self.scale[c.index()];
            let mut f = Vec::new();
            for (l, ks) in active.iter().enumerate() {
                for (j, &k) in ks.iter().enumerate() {
                    let v = c.of(&pb.cands[l][k]);
                    if v != 0.0 {
                        f.push((cols[l][j], v / s));
                    }
                }
            }
            rp.add_row(f64::NEG_INFINITY, (ub - self.offset(c)) / s, &f);
        }
        (rp, cols)
    }

    /// The settings of the module doc (and the stage's time limit).
    fn settings(&self) -> Settings {
        Settings {
            options: vec![
                ("threads", Value::Int(1)),
                ("mip_rel_gap", Value::Float(0.0)),
                ("mip_abs_gap", Value::Float(0.0)),
                (
                    "primal_feasibility_tolerance",
                    Value::Float(HIGHS_TOLERANCE),
                ),
                ("mip_feasibility_tolerance", Value::Float(HIGHS_TOLERANCE)),
                // Sub-MIP heuristics cost more than they save on these small reduced models.
                ("mip_heuristic_run_rins", Value::Bool(false)),
                ("mip_heuristic_run_rens", Value::Bool(false)),
            ],
            time_limit: self.time_limit,
            ..Settings::default()
        }
    }
}

/// The selection of a MILP solution `x` (columns in the order of `active`): per layer the
/// candidate of its largest column; None when that column is below 0.5.
fn decode(x: &[f64], active: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut choice = Vec::with_capacity(active.len());
    let mut at = 0;
    for ks in active {
        let (j, v) = x[at..at + ks.len()]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("a layer has candidates");
        if *v < 0.5 {
            return None;
        }
        choice.push(ks[j]);
        at += ks.len();
    }
    Some(choice)
}
