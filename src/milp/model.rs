//! The MILP of one bypass pattern (`Model`): its columns and rows, the epigraph terms
//! `w ≥ coef·exp(a)` with their exponent columns, and the tangent cuts on them.

use crate::milp::ceilings::{Deferred, MultiCount};
use crate::milp::lin::Lin;
use crate::milp::{OFF, SHAVE};
use crate::solver::MIN_COEF;
use std::collections::HashMap;

/// `w ≥ coef · exp(a)`.
#[derive(Debug, Clone)]
pub(super) struct ExpTerm {
    /// The coefficient.
    pub(super) coef: f64,
    /// The exponent, linear in the columns.
    pub(super) a: Lin,
    /// The epigraph column.
    pub(super) w: usize,
    /// A column equal to `a`, so that each tangent is a two-nonzero row.
    pub(super) e: usize,
    /// The (level, tensor) whose energy the term is part of (for diagnostics).
    pub(super) at: (usize, usize),
}

/// The MILP of one bypass pattern: columns, fixed rows, terms; cuts accumulate across rounds.
#[derive(Default, Clone)]
pub(super) struct Model {
    pub(super) col_lo: Vec<f64>,
    pub(super) col_hi: Vec<f64>,
    pub(super) col_int: Vec<bool>,
    pub(super) col_cost: Vec<f64>,
    pub(super) rows: Vec<(f64, f64, Vec<(usize, f64)>)>,
    pub(super) terms: Vec<ExpTerm>,
    /// Capacity constraints of shared levels: Σ_j coef_j exp(a_j) ≤ cap, via epigraph columns.
    pub(super) cap_terms: Vec<ExpTerm>,
    /// Lower bounds of one vector access per instance on terms' epigraph columns.
    pub(super) floors: Vec<ExpTerm>,
    /// Per-instance vector counts of terms whose charged instance count varies: `w` is an
    /// integer column `z_n ≥ coef·exp(a)`, `a` switched off unless the instance count is `n`.
    pub(super) ceilings: Vec<ExpTerm>,
    /// Per term epigraph column: its ceilings (indices into `ceilings`) with the energy of one
    /// of their accesses (`w ≥ Σ_n unit_n · z_n`).
    pub(super) ceiling_units: HashMap<usize, Vec<(usize, f64)>>,
    /// Terms whose ceilings can be made exact per charged instance count, made so
    /// ([`Model::activate`]) once a candidate shows that their ceiling matters.
    pub(super) deferred: Vec<Deferred>,
    /// Multi-part counts whose ceiling is first dropped, made exact once a candidate shows
    /// that it matters ([`Model::activate_multi`]).
    pub(super) multi: Vec<MultiCount>,
    /// Per level whose charged instance count varies: the per-dim parts of the count (each
    /// dim's choice columns and spatial products) and the most instances the fanouts above the
    /// level allow, until its one-hot is built ...
    pub(super) instance_parts: HashMap<usize, (Vec<Vec<(Option<usize>, u64)>>, u64)>,
    /// ... and then the one-hot's columns with their counts (empty: more than
    /// `CEILING_VALUES` counts).
    pub(super) instance_values: HashMap<usize, Vec<(usize, f64)>>,
    pub(super) cost_const: f64,
    /// Binary columns whose values identify a mapping (for no-good cuts).
    pub(super) identity: Vec<usize>,
    /// The (level, tensor) the terms being added belong to.
    pub(super) at: (usize, usize),
    /// Epigraph columns counted in whole vector accesses: `w = unit · z`, `z` integer.
    pub(super) units: HashMap<usize, f64>,
    /// One-hot groups (binary columns summing to exactly one) and each grouped column's group.
    pub(super) groups: Vec<Vec<usize>>,
    pub(super) group_of: HashMap<usize, usize>,
    /// Shared columns of one-hot groups' parts: (kind, group, coefficient profile) → column
    /// (kind 0: `Σ_j c_j x_j`, kind 1: `Σ_j e^{c_j} x_j`), so that the exponent and lifting
    /// rows of terms that share a dim's profile stay sparse.
    pub(super) shared: HashMap<(u8, usize, Vec<u64>), usize>,
    /// Per dim encoded by a one-hot over its factorisations: each choice's column with the
    /// bound (objective units) on the mappings that take it; the objective is at least the
    /// bound of the choice taken (a row per dim, over the whole objective at solve time).
    pub(super) objective_floors: Vec<Vec<(usize, f64)>>,
    /// Tangents already in the model: (epigraph column, exponent column, coefficient, point).
    pub(super) tangents: std::collections::HashSet<(usize, usize, u64, i64)>,
}

impl Model {
    pub(super) fn col(&mut self, lo: f64, hi: f64, int: bool, cost: f64) -> usize {
        self.col_lo.push(lo);
        self.col_hi.push(hi);
        self.col_int.push(int);
        self.col_cost.push(cost);
        self.col_lo.len() - 1
    }
    pub(super) fn bin(&mut self) -> usize {
        self.col(0.0, 1.0, true, 0.0)
    }
    pub(super) fn row(&mut self, lo: f64, hi: f64, l: &Lin) {
        self.rows.push((lo - l.c, hi - l.c, l.merged()));
    }
    /// `l ≤ hi`
    pub(super) fn le(&mut self, l: &Lin, hi: f64) {
        self.row(f64::NEG_INFINITY, hi, l);
    }
    /// `l ≥ lo`
    pub(super) fn ge(&mut self, l: &Lin, lo: f64) {
        self.row(lo, f64::INFINITY, l);
    }
    pub(super) fn eq(&mut self, l: &Lin, v: f64) {
        self.row(v, v, l);
        let onehot = v == 1.0
            && l.c == 0.0
            && l.t.len() > 1
            && l.t.iter().all(|&(i, k)| {
                k == 1.0
                    && self.col_int[i]
                    && self.col_lo[i] == 0.0
                    && self.col_hi[i] == 1.0
                    && !self.group_of.contains_key(&i)
            });
        if onehot {
            let g = self.groups.len();
            let cols: Vec<usize> = l.t.iter().map(|x| x.0).collect();
            for &i in &cols {
                self.group_of.insert(i, g);
            }
            self.groups.push(cols);
        }
    }
    pub(super) fn term(&mut self, coef: f64, a: Lin) -> Option<usize> {
        if coef <= 0.0 {
            return None;
        }
        let w = self.col(0.0, f64::INFINITY, false, 1.0);
        let e = self.exponent(&a);
        let at = self.at;
        self.terms.push(ExpTerm { coef, a, w, e, at });
        Some(w)
    }
    /// A column equal to the linear expression `a` (bounded by its range over the columns).
    pub(super) fn exponent(&mut self, a: &Lin) -> usize {
        let a = &self.sparse(a);
        let (mut lo, mut hi) = (a.c, a.c);
        for &(i, v) in &a.t {
            let (x, y) = (v * self.col_lo[i], v * self.col_hi[i]);
            lo += x.min(y);
            hi += x.max(y);
        }
        let lo = if lo.is_nan() { f64::NEG_INFINITY } else { lo };
        let hi = if hi.is_nan() { f64::INFINITY } else { hi };
        let e = self.col(lo, hi, false, 0.0);
        self.eq(&Lin::var(e, 1.0).minus(a), 0.0);
        e
    }
    /// Tangents at solution `x` of every term and floor (a switched-off mode's where it would
    /// be active) and of every capacity term.
    pub(super) fn tangents_at(&mut self, x: &[f64]) {
        let (terms, caps, floors) = (
            self.terms.clone(),
            self.cap_terms.clone(),
            self.floors.clone(),
        );
        for t in &terms {
            let mut a = t.a.value(x);
            if a < -OFF / 2.0 {
                a += OFF; // a switched-off mode: tangent where it would be active
            }
            self.tangent(t, a);
        }
        for t in &caps {
            self.tangent(t, t.a.value(x));
        }
        for t in &floors {
            let mut a = t.a.value(x);
            if a < -OFF / 2.0 {
                a += OFF;
            }
            self.tangent(t, a);
        }
    }
    /// The values of the binary columns that identify a mapping, at `x`.
    pub(super) fn identity_key(&self, x: &[f64]) -> Vec<u8> {
        self.identity.iter().map(|&i| (x[i] > 0.5) as u8).collect()
    }
    /// A tangent of `w ≥ coef·exp(a)` at `a = at`.
    pub(super) fn tangent(&mut self, t: &ExpTerm, at: f64) {
        let k = t.coef * at.exp() * (1.0 - SHAVE);
        if !(k.is_finite() && (MIN_COEF..1e9).contains(&k)) {
            return;
        }
        // A point already tangent (to within 1e-7 in log space, where the two tangents differ
        // by under 1e-14 relative) adds nothing but a row.
        if !self
            .tangents
            .insert((t.w, t.e, t.coef.to_bits(), (at * 1e7).round() as i64))
        {
            return;
        }
        // w − k·e ≥ k·(1 − at), with e = a
        let l = Lin::var(t.w, 1.0).minus(&Lin::var(t.e, k));
        self.ge(&l, k * (1.0 - at));
    }
    /// The no-good cut excluding the mapping whose identity columns take the values `key`.
    pub(super) fn no_good(&mut self, key: &[u8]) {
        let mut l = Lin::default();
        let mut ones = 0.0;
        for (&i, &b) in self.identity.iter().zip(key) {
            if b == 1 {
                l.t.push((i, 1.0));
                ones += 1.0;
            } else {
                l.t.push((i, -1.0));
            }
        }
        self.le(&l, ones - 1.0);
    }
}

pub(super) fn min_of(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Range of a linear expression over its columns' bounds.
pub(super) fn lin_range(l: &Lin, m: &Model) -> (f64, f64) {
    let (mut lo, mut hi) = (l.c, l.c);
    for &(i, v) in &l.t {
        let (a, b) = (m.col_lo[i], m.col_hi[i].min(1e3));
        if v >= 0.0 {
            lo += v * a;
            hi += v * b;
        } else {
            lo += v * b;
            hi += v * a;
        }
    }
    (lo, hi)
}
