//! Capacities: per level, each kept tensor's tile fits alone (a row in log space), and the
//! tiles together fit (Σ exp ≤ capacity, by tangent cuts of the capacity terms).

use crate::milp::encode::build::Builder;
use crate::milp::encode::words_per_scalar;
use crate::milp::lin::Lin;
use crate::milp::model::ExpTerm;

impl Builder<'_> {
    /// The capacity rows of every level with a capacity.
    pub(super) fn capacities(&mut self) {
        for l in 0..self.v.nl {
            self.level_capacity(l);
        }
    }

    fn level_capacity(&mut self, l: usize) {
        let (v, keep) = (self.v, self.v.keep);
        let level = &v.arch.levels[l];
        let Some(cap) = level.capacity_words() else {
            return;
        };
        if level.dummy {
            return;
        }
        let kept: Vec<usize> = (0..v.problem.tensors.len())
            .filter(|&t| keep[l][t])
            .collect();
        let outer_of = |t: usize| (0..v.nl).rev().find(|&x| keep[x][t]).unwrap();
        let mut items = vec![];
        for &t in &kept {
            let (lt, _) = self.log_tile(t, l);
            let inner_psum = l < outer_of(t);
            let words_per = words_per_scalar(v.opts, v.problem, t, level.word_bits, inner_psum);
            // each tensor alone must fit
            self.m.le(&lt, (cap as f64 / words_per).ln() + 1e-9);
            items.push((t, words_per, lt));
        }
        if items.len() <= 1 {
            return;
        }
        let m = &mut self.m;
        let mut sum = Lin::default();
        for (t, wp, lt) in items {
            let u = m.col(0.0, f64::INFINITY, false, 0.0);
            let e = m.exponent(&lt);
            m.cap_terms.push(ExpTerm {
                coef: wp,
                a: lt,
                w: u,
                e,
                at: (l, t),
            });
            sum.t.push((u, 1.0));
        }
        m.le(&sum, cap as f64);
    }
}
