//! Loop order: per level (≥ 1) a one-hot over its innermost non-unit temporal dim, or none, with
//! the rows of the level's permutation constraint.

use crate::milp::encode::build::Builder;
use crate::milp::lin::Lin;

impl Builder<'_> {
    /// The innermost non-unit temporal dim of every level ≥ 1 (`vars.delta`, `none`).
    pub(super) fn loop_order(&mut self) {
        for l in 1..self.v.nl {
            self.level_order(l);
        }
    }

    /// Level l's one-hot over its innermost non-unit dim (or none).
    fn level_order(&mut self, l: usize) {
        let v = self.v;
        let s = v.space.level_slots(l).temporal;
        let cand: Vec<usize> = (0..v.nd).filter(|&d| v.can_nonunit(d, s)).collect();
        if cand.is_empty() {
            self.none[l] = Some(Lin::konst(1.0));
            return;
        }
        let m = &mut self.m;
        let nn = m.bin();
        let mut sum = Lin::var(nn, 1.0);
        for &d in &cand {
            let c = m.bin();
            self.vars.delta[l][d] = Some(c);
            sum.t.push((c, 1.0));
            // δ ≤ nonunit(d); none ≤ 1 − nonunit(d)
            m.le(&Lin::var(c, 1.0).minus(&v.nonunit(&self.vars, d, s)), 0.0);
            m.le(&Lin::var(nn, 1.0).plus(&v.nonunit(&self.vars, d, s)), 1.0);
        }
        m.eq(&sum, 1.0);
        m.identity.push(nn);
        m.identity
            .extend(cand.iter().map(|&d| self.vars.delta[l][d].unwrap()));
        self.prefix_rows(l, &cand);
        self.none[l] = Some(Lin::var(nn, 1.0));
    }

    /// The permutation constraint of level l (its innermost loops, in order): the innermost
    /// non-unit dim is the first non-unit one it names, and a dim it does not name is
    /// innermost only when all it names are unit.
    fn prefix_rows(&mut self, l: usize, cand: &[usize]) {
        let (v, vars, m) = (self.v, &self.vars, &mut self.m);
        let s = v.space.level_slots(l).temporal;
        let prefix = v.space.temporal_prefix(l).to_vec();
        for (i, &di) in prefix.iter().enumerate() {
            let Some(ci) = vars.delta[l][di] else {
                continue;
            };
            // δ[di] ≥ nonunit(di) − Σ_{j<i} nonunit(dj); δ[di] ≤ 1 − nonunit(dj), j < i
            let mut lhs = Lin::var(ci, 1.0).minus(&v.nonunit(vars, di, s));
            for &dj in &prefix[..i] {
                if v.can_nonunit(dj, s) {
                    lhs.add(&v.nonunit(vars, dj, s), 1.0);
                    m.le(&Lin::var(ci, 1.0).plus(&v.nonunit(vars, dj, s)), 1.0);
                }
            }
            m.ge(&lhs, 0.0);
        }
        for &d in cand {
            if prefix.contains(&d) {
                continue;
            }
            for &dj in &prefix {
                if v.can_nonunit(dj, s) {
                    let l2 = Lin::var(vars.delta[l][d].unwrap(), 1.0).plus(&v.nonunit(vars, dj, s));
                    m.le(&l2, 1.0);
                }
            }
        }
    }
}
