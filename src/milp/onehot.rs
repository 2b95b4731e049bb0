//! One-hot groups: lifting rows and shared group columns over them, and one-hots over the
//! values of a product or over pairs of two families.

use crate::mapspace::prime_factors;
use crate::milp::lin::Lin;
use crate::milp::model::{min_of, ExpTerm, Model};
use crate::milp::{SHARED_GROUP, SHAVE};
use itertools::Itertools;
use std::collections::HashMap;

impl Model {
    /// One-hot lifting of `w ≥ coef·exp(a)`: for each one-hot group `g` in `a`, the other
    /// groups and columns at their smallest contribution `m`, `exp` of the group's part is
    /// linear in its one-hot, so `w ≥ coef·e^m · Σ_j e^{a_j} x_j` holds at every integer point
    /// (exact when the rest is at its minimum). Unlike tangents it stays strong when the LP
    /// spreads a dim over several choices.
    pub(super) fn lift(&mut self, t: &ExpTerm) {
        let (outside, parts) = self.split_by_group(&t.a, 0);
        let mut rest = t.a.c;
        for (i, v) in outside {
            let (lo, hi) = (v * self.col_lo[i], v * self.col_hi[i]);
            let lo = if v > 0.0 { lo } else { hi };
            if !lo.is_finite() {
                return;
            }
            rest += lo;
        }
        let mins: Vec<f64> = parts.iter().map(|(_, c)| min_of(c)).collect();
        let total_min = rest + mins.iter().sum::<f64>();
        let mut cuts = vec![];
        let mut dense = vec![];
        for ((g, c), gmin) in parts.into_iter().zip(mins) {
            let others = total_min - gmin;
            let k = t.coef * others.exp() * (1.0 - SHAVE);
            let cmax = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let top = k * cmax.exp();
            if !(top.is_finite() && top > 1e-9 && top < 1e9) {
                continue;
            }
            if self.groups[g].len() > SHARED_GROUP {
                // w ≥ top · Σ_j e^{c_j − cmax} x_j through the group's shared column.
                let shifted: Vec<f64> = c.iter().map(|v| v - cmax).collect();
                cuts.push((g, shifted, top));
                continue;
            }
            let mut l = Lin::var(t.w, 1.0);
            l.t.extend(
                self.groups[g]
                    .iter()
                    .zip(&c)
                    .map(|(&i, v)| (i, -k * v.exp())),
            );
            dense.push(l);
        }
        for (g, shifted, top) in cuts {
            let y = self.group_part(1, g, &shifted, f64::exp);
            self.ge(&Lin::var(t.w, 1.0).minus(&Lin::var(y, top)), 0.0);
        }
        for l in dense {
            self.ge(&l, 0.0);
        }
    }
    /// A column equal to `Σ_j f(c_j) x_j` over one-hot group `g` (`coefs` in the group's
    /// column order), shared by every caller with the same profile.
    pub(super) fn group_part(
        &mut self,
        kind: u8,
        g: usize,
        coefs: &[f64],
        f: fn(f64) -> f64,
    ) -> usize {
        let key = (kind, g, coefs.iter().map(|c| c.to_bits()).collect());
        if let Some(&c) = self.shared.get(&key) {
            return c;
        }
        let vals: Vec<f64> = coefs.iter().map(|&c| f(c)).collect();
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let y = self.col(lo, hi, false, 0.0);
        let mut l = Lin::var(y, 1.0);
        for (&i, &v) in self.groups[g].clone().iter().zip(&vals) {
            l.t.push((i, -v));
        }
        self.row(0.0, 0.0, &l);
        self.shared.insert(key, y);
        y
    }
    /// `a` with each large one-hot group's part replaced by a shared column (the group sums to
    /// one, so a part is its smallest coefficient plus a shifted profile).
    pub(super) fn sparse(&mut self, a: &Lin) -> Lin {
        let (outside, parts) = self.split_by_group(a, SHARED_GROUP);
        let mut out = Lin { c: a.c, t: outside };
        for (g, c) in parts {
            let min = min_of(&c);
            let shifted: Vec<f64> = c.iter().map(|v| v - min).collect();
            let y = self.group_part(0, g, &shifted, |v| v);
            out.c += min;
            out.t.push((y, 1.0));
        }
        out.t.sort_by_key(|x| x.0);
        out
    }
    /// `a`'s merged terms split into those outside one-hot groups of more than `min_size`
    /// choices and, per such group (in group order), its coefficients in the group's column
    /// order (0 for members `a` does not name).
    pub(super) fn split_by_group(
        &self,
        a: &Lin,
        min_size: usize,
    ) -> (Vec<(usize, f64)>, Vec<(usize, Vec<f64>)>) {
        let mut outside = vec![];
        let mut parts: std::collections::BTreeMap<usize, HashMap<usize, f64>> = Default::default();
        for (i, v) in a.merged() {
            match self.group_of.get(&i) {
                Some(&g) if self.groups[g].len() > min_size => {
                    parts.entry(g).or_default().insert(i, v);
                }
                _ => outside.push((i, v)),
            }
        }
        let parts = parts
            .into_iter()
            .map(|(g, coefs)| {
                let c = self.groups[g]
                    .iter()
                    .map(|i| coefs.get(i).copied().unwrap_or(0.0))
                    .collect();
                (g, c)
            })
            .collect();
        (outside, parts)
    }
}

/// A one-hot over the values of a product (one factor per part; each part lists, per choice
/// of its dim, the choice's column, None for a dim's only choice, and its value), tied to the
/// dims' one-hots through the product's exponent of every prime: `Σ_v f(v)·g_v`. Values above
/// `most` are left out (the caller knows no mapping reaches them). None when the product takes
/// more than `limit` values.
pub(super) fn product_onehot(
    m: &mut Model,
    parts: &[Vec<(Option<usize>, u64)>],
    f: &dyn Fn(u64) -> f64,
    limit: usize,
    most: u64,
) -> Option<Lin> {
    // The reachable values: products over the parts' possible values.
    let mut values = vec![1u64];
    for part in parts {
        let mut opts: Vec<u64> = part.iter().map(|x| x.1).collect();
        opts.sort_unstable();
        opts.dedup();
        let mut next: Vec<u64> = values
            .iter()
            .flat_map(|a| opts.iter().map(move |b| a * b))
            .collect();
        next.retain(|&v| v <= most);
        next.sort_unstable();
        next.dedup();
        values = next;
    }
    if values.len() == 1 {
        return Some(Lin::konst(f(values[0])));
    }
    if values.len() > limit {
        return None;
    }
    let primes: Vec<u64> = values
        .iter()
        .flat_map(|&v| prime_factors(v).into_iter().map(|(p, _)| p))
        .sorted()
        .dedup()
        .collect();
    let val = |mut n: u64, p: u64| {
        let mut e = 0.0;
        while n.is_multiple_of(p) {
            n /= p;
            e += 1.0;
        }
        e
    };
    let g: Vec<usize> = values.iter().map(|_| m.bin()).collect();
    m.eq(&Lin::ones(&g), 1.0);
    for &p in &primes {
        let mut l = Lin {
            c: 0.0,
            t: values
                .iter()
                .zip(&g)
                .map(|(&v, &c)| (c, val(v, p)))
                .collect(),
        };
        for part in parts {
            for &(col, q) in part {
                match col {
                    Some(c) => l.t.push((c, -val(q, p))),
                    None => l.c -= val(q, p),
                }
            }
        }
        m.eq(&l, 0.0);
    }
    Some(Lin {
        c: 0.0,
        t: values.iter().zip(&g).map(|(&v, &c)| (c, f(v))).collect(),
    })
}

/// A one-hot over pairs (a, b) of two one-hot families (continuous: the marginals force it
/// integral): Σ_b h[a][b] = marg_a(a), Σ_a h[a][b] = marg_b(b). Returns Σ value(a, b)·h[a][b].
pub(super) fn pair_onehot<K: Copy>(
    m: &mut Model,
    a_keys: &[K],
    b_keys: &[K],
    marg_a: impl Fn(K) -> Lin,
    marg_b: impl Fn(K) -> Lin,
    value: impl Fn(K, K) -> f64,
) -> Lin {
    let h: Vec<Vec<usize>> = a_keys
        .iter()
        .map(|_| b_keys.iter().map(|_| m.col(0.0, 1.0, false, 0.0)).collect())
        .collect();
    let mut out = Lin::default();
    for (i, &a) in a_keys.iter().enumerate() {
        for (j, &b) in b_keys.iter().enumerate() {
            out.t.push((h[i][j], value(a, b)));
        }
    }
    for (i, &a) in a_keys.iter().enumerate() {
        let l = Lin::ones(&h[i]).minus(&marg_a(a));
        m.eq(&l, 0.0);
    }
    for (j, &b) in b_keys.iter().enumerate() {
        let l = Lin {
            c: 0.0,
            t: h.iter().map(|r| (r[j], 1.0)).collect(),
        }
        .minus(&marg_b(b));
        m.eq(&l, 0.0);
    }
    out
}
