//! Tiles and instance counts in log space: a tensor's tile at a level (exact for halo ranks
//! through pair one-hots), its distinct tiles among a fanout's children, the instances a level
//! is charged for, and Outputs' partition over them.

use crate::mapspace::SlotKind;
use crate::milp::encode::build::Builder;
use crate::milp::encode::view::ln;
use crate::milp::encode::DimCols;
use crate::milp::lin::Lin;
use crate::milp::onehot::{pair_onehot, product_onehot};
use crate::milp::CEILING_VALUES;
use crate::model::Term;

impl Builder<'_> {
    /// One-hot over the values of a product of per-dim quantities ([`product_onehot`]).
    fn product(&mut self, parts: &[(usize, Vec<usize>)], f: &dyn Fn(u64) -> f64) -> Lin {
        let values = self.v.part_values(&self.vars, parts);
        product_onehot(&mut self.m, &values, f, usize::MAX, u64::MAX).expect("no limit")
    }

    /// log tile of tensor t at level l and its ranks' parts (exact: pair one-hots for
    /// two-term ranks).
    pub(super) fn log_tile(&mut self, t: usize, l: usize) -> (Lin, Vec<Lin>) {
        if let Some(v) = self.tile_cache.get(&(t, l)) {
            return v.clone();
        }
        let tensor = &self.v.problem.tensors[t];
        let mut ranks = Vec::new();
        for rank in &tensor.ranks {
            let e = match rank.as_slice() {
                [term] => self.rank_extent(term, l),
                [t1, t2] => self.halo_extent(t1, t2, l),
                _ => unreachable!("checked in solve"),
            };
            ranks.push(e);
        }
        let mut total = Lin::default();
        for r in &ranks {
            total.add(r, 1.0);
        }
        self.tile_cache
            .insert((t, l), (total.clone(), ranks.clone()));
        (total, ranks)
    }

    /// log extent of a one-term rank at level l.
    fn rank_extent(&self, term: &Term, l: usize) -> Lin {
        let (v, vars) = (self.v, &self.vars);
        let (a, d) = (term.coef, term.dim);
        match vars.x[d] {
            DimCols::Whole(_) => v.per_dim(vars, d, &|c| ln(a * (v.cum(c, l) - 1) + 1)),
            // sliced: a = 1, so the log extent is the sum of the logs
            DimCols::Sliced(_) => v.slot_sum(vars, d, &|s| v.slots[s].level <= l, &ln),
        }
    }

    /// log extent of a two-term (halo) rank at level l: per-dim when one side is fixed, else a
    /// pair one-hot over the two dims' cumulative extents.
    fn halo_extent(&mut self, t1: &Term, t2: &Term, l: usize) -> Lin {
        let (v, vars) = (self.v, &self.vars);
        let cum = |c: &[u64]| v.cum(c, l);
        let (v1, v2) = (v.values(t1.dim, &cum), v.values(t2.dim, &cum));
        let ext = |a: u64, b: u64| t1.coef * (a - 1) + t2.coef * (b - 1) + 1;
        if v1.len() == 1 {
            // One side fixed: per-dim in the other.
            v.per_dim(vars, t2.dim, &|c| ln(ext(v1[0], cum(c))))
        } else if v2.len() == 1 {
            v.per_dim(vars, t1.dim, &|c| ln(ext(cum(c), v2[0])))
        } else {
            self.value_pairs((t1.dim, t2.dim), &cum, |a, b| ln(ext(a, b)))
        }
    }

    /// A pair one-hot over the values `key` takes on the factorisations of dims `d1` and `d2`
    /// ([`pair_onehot`]): `Σ value(a, b)·h[a][b]`.
    fn value_pairs<K: Copy + Ord>(
        &mut self,
        (d1, d2): (usize, usize),
        key: &dyn Fn(&[u64]) -> K,
        value: impl Fn(K, K) -> f64,
    ) -> Lin {
        let (v, vars) = (self.v, &self.vars);
        let (k1, k2) = (v.values(d1, key), v.values(d2, key));
        let is = |d: usize, k: K| v.per_dim(vars, d, &|c| (key(c) == k) as u8 as f64);
        pair_onehot(&mut self.m, &k1, &k2, |a| is(d1, a), |b| is(d2, b), value)
    }

    /// log distinct tiles of tensor t among the children of level l's fanout.
    pub(super) fn log_distinct(&mut self, t: usize, l: usize) -> Lin {
        let v = self.v;
        let tensor = &v.problem.tensors[t];
        let mut e = Lin::default();
        for rank in &tensor.ranks {
            let dims: Vec<usize> = rank.iter().map(|x| x.dim).collect();
            let sp: Vec<usize> = [SlotKind::SpatialX, SlotKind::SpatialY]
                .iter()
                .filter_map(|&k| v.slot_of(l, k))
                .collect();
            let active: Vec<usize> = dims
                .iter()
                .copied()
                .filter(|&d| sp.iter().any(|&s| v.can_nonunit(d, s)))
                .collect();
            if active.len() <= 1 {
                for &d in &active {
                    for &s in &sp {
                        e.add(&v.lf(&self.vars, d, s), 1.0);
                    }
                }
            } else {
                let pairs = self.distinct_offsets(rank[0], rank[1], l);
                e.add(&pairs, 1.0);
            }
        }
        e
    }

    /// Offsets of a halo rank's two dims may coincide (e.g. spatial P and R with stride 2): a
    /// one-hot over pairs of the dims' spatial configurations at level l gives the log of the
    /// exact number of distinct offsets.
    fn distinct_offsets(&mut self, t1: Term, t2: Term, l: usize) -> Lin {
        let v = self.v;
        let inner = |c: &[u64]| -> u64 {
            (v.slots.iter().zip(c))
                .filter(|(s, _)| s.level < l)
                .map(|(_, f)| *f)
                .product()
        };
        let sx = v.slot_of(l, SlotKind::SpatialX);
        let sy = v.slot_of(l, SlotKind::SpatialY);
        let key = |c: &[u64]| -> (u64, u64, u64) {
            (inner(c), sx.map_or(1, |s| c[s]), sy.map_or(1, |s| c[s]))
        };
        self.value_pairs((t1.dim, t2.dim), &key, |a, b| {
            let (oa, ob) = (offsets(t1.coef, a), offsets(t2.coef, b));
            let mut all: Vec<u64> = oa
                .iter()
                .flat_map(|x| ob.iter().map(move |y| x + y))
                .collect();
            all.sort_unstable();
            all.dedup();
            (all.len() as f64).ln()
        })
    }

    /// log of the instances the energy of level l is charged for: instances used, or
    /// min(used, clusters) for clustered levels; with the level when that count varies (its
    /// one-hot over the counts registered in the model for `Model::activate`).
    pub(super) fn charged_log(&mut self, l: usize) -> (Lin, Option<usize>) {
        if let Some(v) = self.charged_cache.get(&l) {
            return v.clone();
        }
        let v = self.v;
        let level = &v.arch.levels[l];
        let parts = v.spatial_above_parts(l, &|_| true);
        let e = if level.cluster_size <= 1 {
            let e = v.inst_log(&self.vars, l);
            if !e.t.is_empty() {
                // the one-hot over the instance counts is built once a ceiling needs it; the
                // spatial fanouts above the level bound the count
                let most = (v.slots.iter())
                    .filter(|s| s.level > l && s.kind != SlotKind::Temporal)
                    .map(|s| s.fanout.unwrap_or(u64::MAX))
                    .fold(1u64, |a, b| a.saturating_mul(b));
                let values = v.part_values(&self.vars, &parts);
                self.m.instance_parts.insert(l, (values, most));
            }
            e
        } else {
            let clusters = (level.instances / level.cluster_size).max(1);
            let e = self.product(&parts, &|n| (n.min(clusters) as f64).ln());
            if !e.t.is_empty() && e.t.len() <= CEILING_VALUES {
                let values = e.t.iter().map(|&(g, c)| (g, c.exp())).collect();
                self.m.instance_values.insert(l, values);
            }
            e
        };
        let varies = !e.t.is_empty();
        let out = (e, varies.then_some(l));
        self.charged_cache.insert(l, out.clone());
        out
    }

    /// Outputs: the total partition of tensor t over the instances at level l = |O| × Π of
    /// the irrelevant spatial factors above l.
    pub(super) fn part_total(&mut self, t: usize, l: usize) -> Lin {
        let tensor = &self.v.problem.tensors[t];
        let size = self.v.problem.tensor_size(t) as f64;
        let parts = self.v.spatial_above_parts(l, &|d| !tensor.relevant(d));
        self.product(&parts, &|n| size * n as f64)
    }
}

/// The offsets of a rank term's spatial instances at a level (a dim's cumulative extent below
/// it and its X and Y factors there).
fn offsets(coef: u64, (cum, fx, fy): (u64, u64, u64)) -> Vec<u64> {
    let mut o = vec![];
    for y in 0..fy {
        for x in 0..fx {
            o.push(coef * (x * cum + y * cum * fx));
        }
    }
    o
}
