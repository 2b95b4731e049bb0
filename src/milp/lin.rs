//! Linear expressions over the MILP's columns (`Lin`), the currency of the model builder.

use crate::milp::OFF;
use std::collections::HashMap;

/// A linear expression over MILP columns plus a constant.
#[derive(Debug, Clone, Default)]
pub(super) struct Lin {
    pub(super) c: f64,
    pub(super) t: Vec<(usize, f64)>,
}

impl Lin {
    pub(super) fn konst(c: f64) -> Lin {
        Lin { c, t: vec![] }
    }
    pub(super) fn add(&mut self, o: &Lin, k: f64) {
        self.c += k * o.c;
        self.t.extend(o.t.iter().map(|&(i, v)| (i, v * k)));
    }
    pub(super) fn plus(mut self, o: &Lin) -> Lin {
        self.add(o, 1.0);
        self
    }
    pub(super) fn minus(mut self, o: &Lin) -> Lin {
        self.add(o, -1.0);
        self
    }
    /// The sum of the columns `cols` (a one-hot's row).
    pub(super) fn ones(cols: &[usize]) -> Lin {
        Lin {
            c: 0.0,
            t: cols.iter().map(|&c| (c, 1.0)).collect(),
        }
    }
    pub(super) fn var(i: usize, k: f64) -> Lin {
        Lin {
            c: 0.0,
            t: vec![(i, k)],
        }
    }
    pub(super) fn value(&self, x: &[f64]) -> f64 {
        self.c + self.t.iter().map(|&(i, v)| v * x[i]).sum::<f64>()
    }
    /// `self − OFF·(1 − y)`: the exponent switched off (e^-60) unless binary `y` is 1.
    pub(super) fn switched(mut self, y: usize) -> Lin {
        self.c -= OFF;
        self.t.push((y, OFF));
        self
    }
    /// The terms with each column's coefficients summed, zeros dropped, sorted by column (so
    /// that rows, shared columns and sums come out the same on every run).
    pub(super) fn merged(&self) -> Vec<(usize, f64)> {
        let mut sum: HashMap<usize, f64> = HashMap::new();
        for &(i, v) in &self.t {
            *sum.entry(i).or_default() += v;
        }
        let mut t: Vec<(usize, f64)> = sum.into_iter().filter(|(_, v)| *v != 0.0).collect();
        t.sort_unstable_by_key(|x| x.0);
        t
    }
}
