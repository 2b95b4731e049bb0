//! The layered DAG of partial factorisations: the joint constraints (fanouts, X/Y split
//! order) over the dims' factor choices, with the number of completions of every state.

use super::Mapspace;
use std::collections::HashMap;

/// What one per-dim factor choice contributes to the joint constraints.
#[derive(Debug, Clone)]
pub(super) struct Sig {
    /// Factor per spatial slot (indexed like `Mapspace::spatial_slots`).
    spatial: Vec<u64>,
    /// Per coupled level: position if the dim is on X, position if on Y.
    coup: Vec<(Option<u64>, Option<u64>)>,
    /// Levels where the dim is a non-unit temporal loop whose place in the order is free.
    pub(super) free: u64,
}

/// One transition of the factorisation DAG.
#[derive(Debug, Clone, Copy)]
pub(super) struct Trans {
    pub(super) choice: u32,
    pub(super) next: u32,
    /// Cumulative number of completions up to and including this transition.
    pub(super) cum: f64,
}

/// One layer of the factorisation DAG (after choosing the first i dims of `dim_order`).
#[derive(Debug, Clone, Default)]
pub(super) struct Step {
    pub(super) states: Vec<Vec<u64>>,
    pub(super) index: HashMap<Vec<u64>, u32>,
    /// Per state, its live transitions (to states with completions).
    pub(super) trans: Vec<Vec<Trans>>,
    /// Per state, the number of ways to complete the factorisation.
    comp: Vec<f64>,
}

impl Step {
    pub(super) fn intern(&mut self, s: Vec<u64>) -> u32 {
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        let i = self.states.len() as u32;
        self.index.insert(s.clone(), i);
        self.states.push(s);
        i
    }
}

impl Mapspace {
    /// What a per-dim factor vector `c` of dim `d` contributes to the joint constraints.
    pub(super) fn signature(&self, d: usize, c: &[u64]) -> Sig {
        Sig {
            spatial: self.spatial_slots.iter().map(|&s| c[s]).collect(),
            coup: self
                .coupled
                .iter()
                .map(|&l| {
                    let pos = self.spatial_rules[l].order.as_ref().unwrap()[d] as u64;
                    let ls = self.level_slots[l];
                    (
                        (c[ls.x.unwrap()] > 1).then_some(pos),
                        (c[ls.y.unwrap()] > 1).then_some(pos),
                    )
                })
                .collect(),
            free: (0..self.arch.levels.len())
                .filter(|&l| {
                    self.enumerate_orders[l]
                        && c[self.level_slots[l].temporal] > 1
                        && !self.prefix[l].contains(&d)
                })
                .fold(0u64, |m, l| m | (1 << l)),
        }
    }

    /// The DAG state after adding a dim's choice to `state`, if the joint constraints allow it.
    pub(super) fn advance(&self, state: &[u64], sig: &Sig) -> Option<Vec<u64>> {
        let ns = self.spatial_slots.len();
        let mut next = state.to_vec();
        for (k, &f) in sig.spatial.iter().enumerate() {
            let p = next[k] * f;
            if p > self.slots[self.spatial_slots[k]].fanout.unwrap() {
                return None;
            }
            next[k] = p;
        }
        for (j, &(xp, yp)) in sig.coup.iter().enumerate() {
            let (mx, my) = (ns + 2 * j, ns + 2 * j + 1);
            if let Some(p) = xp {
                if p > next[my] {
                    return None;
                }
                next[mx] = next[mx].max(p + 1);
            }
            if let Some(q) = yp {
                if next[mx] > q + 1 {
                    return None;
                }
                next[my] = next[my].min(q);
            }
        }
        Some(next)
    }

    pub(super) fn initial_state(&self) -> Vec<u64> {
        let mut s = vec![1u64; self.spatial_slots.len()];
        for _ in &self.coupled {
            s.push(0);
            s.push(u64::MAX);
        }
        s
    }

    /// Builds the layered DAG of partial factorisations (dims in `dim_order`), with the number
    /// of completions of every state, keeping only live transitions.
    pub(super) fn build_dag(&mut self) {
        let n = self.dim_order.len();
        let mut steps: Vec<Step> = vec![Step::default(); n + 1];
        steps[0].intern(self.initial_state());
        let mut raw: Vec<Vec<Vec<(u32, u32)>>> = vec![Vec::new(); n];
        for i in 0..n {
            let d = self.dim_order[i];
            let (cur, rest) = steps.split_at_mut(i + 1);
            let cur = &cur[i];
            let next = &mut rest[0];
            for s in 0..cur.states.len() {
                let mut ts = Vec::new();
                for (c, sig) in self.sigs[d].iter().enumerate() {
                    if let Some(ns) = self.advance(&cur.states[s], sig) {
                        ts.push((c as u32, next.intern(ns)));
                    }
                }
                raw[i].push(ts);
            }
        }
        steps[n].comp = vec![1.0; steps[n].states.len()];
        steps[n].trans = vec![Vec::new(); steps[n].states.len()];
        for i in (0..n).rev() {
            let (cur, rest) = steps.split_at_mut(i + 1);
            let cur = &mut cur[i];
            let next = &rest[0];
            cur.comp = Vec::with_capacity(cur.states.len());
            cur.trans = Vec::with_capacity(cur.states.len());
            for raw_ts in &raw[i] {
                let mut cum = 0.0;
                let mut ts = Vec::new();
                for &(c, ns) in raw_ts {
                    let w = next.comp[ns as usize];
                    if w > 0.0 {
                        cum += w;
                        ts.push(Trans {
                            choice: c,
                            next: ns,
                            cum,
                        });
                    }
                }
                cur.trans.push(ts);
                cur.comp.push(cum);
            }
        }
        self.factorisations = steps[0].comp[0];
        self.steps = steps;
    }
}
