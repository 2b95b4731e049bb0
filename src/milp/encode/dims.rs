//! The dims' factorisations: a one-hot per dim over its factor vectors, or per slot group for a
//! sliced dim (tied by its exponent of every prime); the mirror-symmetry cut; the fanouts and
//! the X/Y order rule.

use crate::mapspace::{prime_factors, SlotKind};
use crate::milp::encode::build::Builder;
use crate::milp::encode::symmetry::mirror_symmetry;
use crate::milp::encode::view::ln;
use crate::milp::encode::{sliced_dims, DimCols, SlotGroup};
use crate::milp::lin::Lin;
use std::collections::HashMap;

impl Builder<'_> {
    /// A one-hot over `n` values (None: one value, no column).
    fn onehot(&mut self, n: usize) -> Vec<Option<usize>> {
        if n == 1 {
            return vec![None];
        }
        let m = &mut self.m;
        let cols: Vec<usize> = (0..n).map(|_| m.bin()).collect();
        m.eq(&Lin::ones(&cols), 1.0);
        m.identity.extend(&cols);
        cols.into_iter().map(Some).collect()
    }

    /// Per dim, a one-hot over its factorisations, or over each slot group's factors for the
    /// dims [`sliced_dims`] picks.
    pub(super) fn choice_onehots(&mut self, slice_choices: (usize, usize)) {
        let sliced = sliced_dims(self.v.space, slice_choices);
        for d in 0..self.v.nd {
            let x = if sliced.contains(&d) {
                self.sliced_dim(d)
            } else {
                DimCols::Whole(self.onehot(self.v.choices[d].len()))
            };
            self.vars.x.push(x);
        }
    }

    /// Slot groups: per level its temporal slot, and its X and Y slots together (the spatial
    /// rule bounds their product).
    fn slot_groups(&self) -> Vec<Vec<usize>> {
        let mut groups = vec![];
        for l in 0..self.v.nl {
            let ls = self.v.space.level_slots(l);
            groups.push(vec![ls.temporal]);
            let sp: Vec<usize> = ls.x.into_iter().chain(ls.y).collect();
            if !sp.is_empty() {
                groups.push(sp);
            }
        }
        groups
    }

    /// A sliced dim: a one-hot per slot group over the group's factors, tied by the dim's
    /// exponent of every prime.
    fn sliced_dim(&mut self, d: usize) -> DimCols {
        let choices = self.v.choices[d];
        let mut slot_groups = vec![];
        let mut exps: HashMap<u64, Lin> = HashMap::new();
        for slots_g in self.slot_groups() {
            let mut vals: Vec<Vec<u64>> = choices
                .iter()
                .map(|c| slots_g.iter().map(|&s| c[s]).collect())
                .collect();
            vals.sort_unstable();
            vals.dedup();
            let cols = self.onehot(vals.len());
            for (col, v) in cols.iter().zip(&vals) {
                let product: u64 = v.iter().product();
                for (p, e) in prime_factors(product) {
                    let l = exps.entry(p).or_default();
                    match col {
                        Some(c) => l.t.push((*c, e as f64)),
                        None => l.c += e as f64,
                    }
                }
            }
            slot_groups.push(SlotGroup {
                slots: slots_g,
                values: cols.into_iter().zip(vals).collect(),
            });
        }
        // The factors multiply to the dim's bound: Σ exponents of p = the bound's exponent
        // (every value divides the bound, so its primes are the bound's).
        for &(p, e) in self.v.space.prime_factors(d) {
            self.m.eq(&exps[&p], e as f64);
        }
        DimCols::Sliced(slot_groups)
    }

    /// Mirror symmetry: of a mapping and its mirror image (which costs the same), only the one
    /// whose first mirrored dim takes the earlier factorisation (of the two dims' identical
    /// lists) is kept: Σ_j j·x[d][j] ≤ Σ_j j·x[σd][j].
    pub(super) fn mirror_cut(&mut self) {
        let Some(sigma) = mirror_symmetry(self.v.space) else {
            return;
        };
        let vars = &self.vars;
        let pair = (0..self.v.nd).find_map(|d| match (&vars.x[d], &vars.x[sigma[d]]) {
            (DimCols::Whole(a), DimCols::Whole(b)) if sigma[d] > d && a.len() > 1 => Some((a, b)),
            _ => None,
        });
        if let Some((a, b)) = pair {
            let mut l = Lin::default();
            for (j, (x, y)) in a.iter().zip(b).enumerate() {
                l.t.push((x.unwrap(), j as f64));
                l.t.push((y.unwrap(), -(j as f64)));
            }
            self.m.le(&l, 0.0);
        }
    }

    /// The latency budget ([`Mapspace::max_cycles`](crate::mapspace::Mapspace::max_cycles)):
    /// the compute cycles (the product of every temporal factor, linear in log space) at most
    /// the budget. A relaxation: bandwidth can stretch a mapping's cycles beyond its compute
    /// cycles, so every candidate is evaluated against the budget as well.
    pub(super) fn latency_budget(&mut self) {
        let Some(cap) = self.v.space.max_cycles() else {
            return;
        };
        let mut sum = Lin::default();
        for l in 0..self.v.nl {
            sum.add(&self.v.temporal_log(&self.vars, l), 1.0);
        }
        self.m.le(&sum, ln(cap.max(1)) + 1e-9);
    }

    /// Per level, the fanouts of its X and Y slots and its X/Y order rule.
    pub(super) fn fanouts(&mut self) {
        let (v, vars, m) = (self.v, &self.vars, &mut self.m);
        for l in 0..v.nl {
            for k in [SlotKind::SpatialX, SlotKind::SpatialY] {
                if let Some(s) = v.slot_of(l, k) {
                    let fan = v.slots[s].fanout.unwrap_or(1);
                    let mut sum = Lin::default();
                    for d in 0..v.nd {
                        sum.add(&v.lf(vars, d, s), 1.0);
                    }
                    m.le(&sum, ln(fan) + 1e-9);
                }
            }
            if let (Some(order), Some(sx), Some(sy)) = (
                &v.space.spatial_rule(l).order,
                v.slot_of(l, SlotKind::SpatialX),
                v.slot_of(l, SlotKind::SpatialY),
            ) {
                for a in 0..v.nd {
                    for b in 0..v.nd {
                        if order[a] > order[b] && v.can_nonunit(a, sx) && v.can_nonunit(b, sy) {
                            let l2 = v.nonunit(vars, a, sx).plus(&v.nonunit(vars, b, sy));
                            m.le(&l2, 1.0);
                        }
                    }
                }
            }
        }
    }
}
