//! Whole vector accesses: the ceilings of packing and vector accesses, fixed where the charged
//! instance count is, deferred per instance count where it varies, and multi-part counts.

use crate::milp::lin::Lin;
use crate::milp::model::{ExpTerm, Model};
use crate::milp::onehot::product_onehot;
use crate::milp::{CEILING_VALUES, MIN_UNIT, OFF};

/// A count of two or more parts (a sliding-window load): the parts' epigraph columns and the
/// energy of one vector access on every charged instance (`per_instance` None: the count is
/// fixed) or on one (`per_instance`: the log of the varying count and its level). Once active,
/// the sum, not each part, is rounded up to whole vector accesses per instance, as the
/// evaluator does: `Σ w_p + r = unit · z` with `z` integer and `r ≥ 0` (in the objective) for a
/// fixed count; per instance count `n`, an integer `z_n ≥ Σ_p u_{p,n}` with `u_{p,n}` part p's
/// per-instance vectors switched off unless the count is `n`, and `Σ w_p + r ≥ Σ_n unit·n·z_n`,
/// for a varying one.
#[derive(Debug, Clone)]
pub(super) struct MultiCount {
    pub(super) ws: Vec<usize>,
    pub(super) unit: f64,
    pub(super) per_instance: Option<(Lin, usize)>,
    /// The rounding column `r`, once active.
    pub(super) r: Option<usize>,
    /// The varying count takes more than `CEILING_VALUES` values: the ceiling stays dropped.
    pub(super) dropped: bool,
}

impl MultiCount {
    /// An inactive count (its ceiling dropped until [`Model::activate_multi`]).
    pub(super) fn new(ws: Vec<usize>, unit: f64, per_instance: Option<(Lin, usize)>) -> MultiCount {
        MultiCount {
            ws,
            unit,
            per_instance,
            r: None,
            dropped: false,
        }
    }
}

/// A term whose per-instance vector count is `exp(per_instance)·per_vector`, charged `unit`
/// per vector access on each of the instances `level`'s count says.
#[derive(Debug, Clone)]
pub(super) struct Deferred {
    /// The term's epigraph column.
    pub(super) w: usize,
    /// Its per-instance count is `exp(per_instance)·per_vector` vector accesses.
    pub(super) per_vector: f64,
    /// The energy of one vector access on one instance (objective units).
    pub(super) unit: f64,
    /// The log of the per-instance count, less `per_vector`'s.
    pub(super) per_instance: Lin,
    /// The log of the charged instance count.
    pub(super) charged: Lin,
    /// The level whose charged instance count varies.
    pub(super) level: usize,
    /// Whether its ceilings are exact ([`Model::activate`]).
    pub(super) active: bool,
    /// The (level, tensor) the term belongs to.
    pub(super) at: (usize, usize),
}

/// How a term's count comes back in whole vector accesses per charged instance
/// ([`Model::term_with_floor`]).
pub(super) enum Whole<'a> {
    /// Not at all (the ceilings are dropped).
    Dropped,
    /// The charged instance count is fixed: the energy of one vector access on all of them.
    Fixed(f64),
    /// The charged instance count varies: its log and the level it is of (whose one-hot over
    /// the count's values the model builds on first use).
    PerInstance { charged: &'a Lin, level: usize },
}

impl Model {
    /// Makes the ceilings of deferred term `i` exact: per charged instance count `n` an integer
    /// `z_n ≥ exp(per_instance)·per_vector` switched off unless the count is `n`, and
    /// `w ≥ Σ_n unit · n · z_n`.
    pub(super) fn activate(&mut self, i: usize) {
        self.deferred[i].active = true;
        let d = self.deferred[i].clone();
        let values = self.instance_onehot(d.level);
        if values.is_empty() {
            return; // too many instance counts: the ceiling stays dropped
        }
        let mut sum = Lin::var(d.w, 1.0);
        let mut units = vec![];
        for &(g, n) in &values {
            let z = self.col(0.0, f64::INFINITY, true, 0.0);
            units.push((self.ceilings.len(), d.unit * n));
            self.ceiling(z, d.per_vector, d.per_instance.clone().switched(g), d.at);
            sum.t.push((z, -d.unit * n));
        }
        self.ge(&sum, 0.0);
        self.ceiling_units.insert(d.w, units);
    }
    /// A per-instance-count ceiling term `w ≥ coef·exp(a)` (tangents only at candidates).
    pub(super) fn ceiling(&mut self, w: usize, coef: f64, a: Lin, at: (usize, usize)) {
        let e = self.exponent(&a);
        self.ceilings.push(ExpTerm { coef, a, w, e, at });
    }
    /// The one-hot over the charged instance count of `level` (columns with their counts),
    /// built on first use; empty when the count takes more than `CEILING_VALUES` values.
    pub(super) fn instance_onehot(&mut self, level: usize) -> Vec<(usize, f64)> {
        if !self.instance_values.contains_key(&level) {
            let (parts, most) = self
                .instance_parts
                .remove(&level)
                .unwrap_or((vec![], u64::MAX));
            let values = product_onehot(self, &parts, &|v| v as f64, CEILING_VALUES, most)
                .map(|one| one.t)
                .unwrap_or_default();
            self.instance_values.insert(level, values);
        }
        self.instance_values[&level].clone()
    }
    /// Makes the ceiling of multi-part count `i` exact ([`MultiCount`]).
    pub(super) fn activate_multi(&mut self, i: usize) {
        let mc = self.multi[i].clone();
        let values = match &mc.per_instance {
            Some((_, level)) => self.instance_onehot(*level),
            None => vec![],
        };
        if mc.per_instance.is_some() && values.is_empty() {
            self.multi[i].dropped = true;
            return;
        }
        let r = self.col(0.0, f64::INFINITY, false, 1.0);
        self.multi[i].r = Some(r);
        let mut l = Lin::var(r, 1.0);
        for &w in &mc.ws {
            l.t.push((w, 1.0));
        }
        let Some((charged, _)) = &mc.per_instance else {
            let z = self.col(0.0, f64::INFINITY, true, 0.0);
            self.eq(&l.minus(&Lin::var(z, mc.unit)), 0.0);
            return;
        };
        let parts: Vec<ExpTerm> = mc
            .ws
            .iter()
            .filter_map(|w| self.terms.iter().find(|t| t.w == *w).cloned())
            .collect();
        for &(g, n) in &values {
            let z = self.col(0.0, f64::INFINITY, true, 0.0);
            let mut zsum = Lin::var(z, 1.0);
            for t in &parts {
                let u = self.col(0.0, f64::INFINITY, false, 0.0);
                let ua = t.a.clone().minus(charged).switched(g);
                self.ceiling(u, t.coef / mc.unit, ua, t.at);
                zsum.t.push((u, -1.0));
            }
            self.ge(&zsum, 0.0);
            l.t.push((z, -mc.unit * n));
        }
        self.ge(&l, 0.0);
    }
    /// The vector accesses per charged instance of multi-part count `mc` at `x` (its parts'
    /// sum over the energy of one access on each), its parts' sum, and whether its load mode
    /// is on.
    pub(super) fn multi_accesses(&self, mc: &MultiCount, x: &[f64]) -> (f64, f64, bool) {
        let (sum, on) = self.multi_sum(mc, x);
        let unit = match &mc.per_instance {
            None => mc.unit,
            Some((charged, _)) => mc.unit * charged.value(x).exp(),
        };
        (sum / unit, sum, on)
    }
    /// The exact value of multi-part count `mc` at `x`: its parts' sum, and whether its load
    /// mode is on.
    pub(super) fn multi_sum(&self, mc: &MultiCount, x: &[f64]) -> (f64, bool) {
        let (mut sum, mut on) = (0.0, false);
        for t in self.terms.iter().filter(|t| mc.ws.contains(&t.w)) {
            let a = t.a.value(x);
            if a > -OFF / 2.0 {
                sum += t.coef * a.exp();
                on = true;
            }
        }
        (sum, on)
    }
    /// A term whose per-instance count is at least one vector access: besides `coef·exp(a)`,
    /// `w ≥ floor_coef · exp(floor_a)` (the ceilings the evaluator applies).
    ///
    /// `whole` says how the evaluator's whole vector accesses per instance come back:
    /// * [`Whole::Fixed`] (the charged instance count is fixed; `unit` is the energy of one
    ///   vector access on every charged instance): `w = unit · z` with `z` integer, so the
    ///   ceilings the exponent drops come back exactly at every point where the tangents are;
    /// * [`Whole::PerInstance`] (it varies, over a one-hot of its values `n`): per value an
    ///   integer `z_n ≥ exp(a − charged)·coef/floor_coef` switched off unless the count is `n`,
    ///   and `w ≥ Σ_n floor_coef · n · z_n`: exact wherever the tangents of `z_n` are.
    pub(super) fn term_with_floor(
        &mut self,
        coef: f64,
        a: Lin,
        floor_coef: f64,
        floor_a: Lin,
        whole: Whole,
    ) {
        let Some(w) = self.term(coef, a.clone()) else {
            return;
        };
        match whole {
            Whole::Fixed(u) if u > 0.0 && u.is_finite() => {
                let z = self.col(0.0, f64::INFINITY, true, 0.0);
                self.eq(&Lin::var(w, 1.0).minus(&Lin::var(z, u)), 0.0);
                self.units.insert(w, u);
            }
            Whole::PerInstance { charged, level } if floor_coef > 0.0 => {
                self.deferred.push(Deferred {
                    w,
                    per_vector: coef / floor_coef,
                    unit: floor_coef,
                    per_instance: a.clone().minus(charged),
                    charged: charged.clone(),
                    level,
                    active: false,
                    at: self.at,
                });
            }
            _ => {}
        }
        if floor_coef > 0.0 {
            let e = self.exponent(&floor_a);
            let at = self.at;
            self.floors.push(ExpTerm {
                coef: floor_coef,
                a: floor_a,
                w,
                e,
                at,
            });
        }
    }
    /// Makes exact the ceilings that candidate `x`'s value depends on (a deferred term or a
    /// multi-part count whose count at `x` is not whole), and gives the columns this adds
    /// their values at `x`: the instance one-hots take the candidate's counts (the new integer
    /// counts stay 0; only the tangents at `x` read them).
    pub(super) fn make_ceilings_exact(&mut self, x: &mut Vec<f64>) {
        for i in 0..self.deferred.len() {
            let d = &self.deferred[i];
            if d.active {
                continue;
            }
            let a = d.per_instance.value(x);
            let v = d.per_vector * a.exp();
            if a > -OFF / 2.0 && (v - v.round()).abs() > 1e-9 * v.max(1.0) {
                self.activate(i);
            }
        }
        for i in 0..self.multi.len() {
            if self.multi[i].r.is_some() || self.multi[i].dropped {
                continue;
            }
            let (v, _, on) = self.multi_accesses(&self.multi[i], x);
            if on && (v - v.round()).abs() > 1e-9 * v.max(1.0) {
                self.activate_multi(i);
            }
        }
        let old = x.len();
        if self.col_lo.len() <= old {
            return;
        }
        x.resize(self.col_lo.len(), 0.0);
        let charged = (self.deferred.iter())
            .filter(|d| d.active)
            .map(|d| (&d.charged, d.level));
        let multi = (self.multi.iter())
            .filter(|mc| mc.r.is_some())
            .filter_map(|mc| mc.per_instance.as_ref().map(|(c, l)| (c, *l)));
        for (charged, level) in charged.chain(multi) {
            let n = charged.value(x).exp();
            for &(g, v) in self.instance_values.get(&level).into_iter().flatten() {
                if g >= old && (v / n - 1.0).abs() < 1e-6 {
                    x[g] = 1.0;
                }
            }
        }
    }
}

/// How a count at a level charged for `charged` instances (its log, and the level when it
/// varies) comes back in whole vector accesses of `energy` each.
pub(super) fn whole(energy: f64, charged: &(Lin, Option<usize>)) -> Whole<'_> {
    match charged {
        // A vector access worth less than MIN_UNIT of the objective cannot be held whole.
        _ if energy < MIN_UNIT => Whole::Dropped,
        (log, _) if log.t.iter().all(|&(_, v)| v == 0.0) => Whole::Fixed(energy * log.c.exp()),
        (log, Some(level)) => Whole::PerInstance {
            charged: log,
            level: *level,
        },
        (_, None) => Whole::Dropped,
    }
}
