//! Membership: whether a mapping belongs to a space, and why not.

use super::{KeepChoice, Mapspace, SlotKind};
use crate::model::{LevelMapping, Mapping};
use itertools::Itertools;

impl Mapspace {
    // -----------------------------------------------------------------------------------------
    // Membership
    // -----------------------------------------------------------------------------------------

    /// Whether `m` is a mapping of this space (satisfies every constraint).
    pub fn contains(&self, m: &Mapping) -> bool {
        self.check(m).is_ok()
    }

    /// Why `m` is not a mapping of this space, if it is not.
    pub fn check(&self, m: &Mapping) -> Result<(), String> {
        let nl = self.arch.levels.len();
        if m.levels.len() != nl {
            return Err(format!(
                "{} levels, the architecture has {nl}",
                m.levels.len()
            ));
        }
        let fac = self.slot_factors(m)?;
        let chosen = self.choice_of_dims(&fac)?;
        self.check_joint(&chosen)?;
        for (l, lm) in m.levels.iter().enumerate() {
            self.check_order(l, lm)?;
            self.check_keeps(l, lm)?;
        }
        for (t, tensor) in self.problem.tensors.iter().enumerate() {
            if !m.levels.iter().any(|lm| lm.keep[t]) {
                return Err(format!("{} is kept at no level", tensor.name));
            }
        }
        Ok(())
    }

    /// Per dim, `m`'s factor in each slot; errors on malformed loops, loops without a slot,
    /// two loops of one dim in one slot and keep lists of the wrong length.
    fn slot_factors(&self, m: &Mapping) -> Result<Vec<Vec<u64>>, String> {
        let nd = self.problem.dims.len();
        let mut fac = vec![vec![1u64; self.slots.len()]; nd];
        for (l, lm) in m.levels.iter().enumerate() {
            let name = &self.arch.levels[l].name;
            let ls = self.level_slots[l];
            for (loops, slot, what) in [
                (&lm.temporal, Some(ls.temporal), "temporal"),
                (&lm.spatial_x, ls.x, "spatial X"),
                (&lm.spatial_y, ls.y, "spatial Y"),
            ] {
                for lp in loops {
                    if lp.dim >= nd || lp.factor == 0 {
                        return Err(format!("{name}: malformed {what} loop"));
                    }
                    if lp.factor == 1 {
                        continue;
                    }
                    let Some(s) = slot else {
                        return Err(format!("{name}: no {what} fanout"));
                    };
                    if fac[lp.dim][s] != 1 {
                        return Err(format!(
                            "{name}: two {what} loops over {}",
                            self.problem.dims[lp.dim]
                        ));
                    }
                    fac[lp.dim][s] = lp.factor;
                }
            }
            if lm.keep.len() != self.problem.tensors.len() {
                return Err(format!("{name}: keep list does not match the tensors"));
            }
        }
        Ok(fac)
    }

    /// Per dim, the index of its factors `fac[d]` among its choices; errors when they do not
    /// multiply to its bound or break a per-dim constraint.
    fn choice_of_dims(&self, fac: &[Vec<u64>]) -> Result<Vec<u32>, String> {
        let mut chosen = vec![0u32; fac.len()];
        for d in 0..fac.len() {
            let prod: u64 = fac[d].iter().product();
            if prod != self.problem.bounds[d] {
                return Err(format!(
                    "factors of {} multiply to {prod}, the bound is {}",
                    self.problem.dims[d], self.problem.bounds[d]
                ));
            }
            chosen[d] = *self.choice_index[d].get(&fac[d]).ok_or_else(|| {
                format!(
                    "the factors of {} violate a constraint: {}",
                    self.problem.dims[d],
                    self.describe_factors(d, &fac[d])
                )
            })?;
        }
        Ok(chosen)
    }

    /// Whether the dims' choices `chosen` meet the joint constraints (a path through the DAG).
    fn check_joint(&self, chosen: &[u32]) -> Result<(), String> {
        let mut state = 0u32;
        for (i, &d) in self.dim_order.iter().enumerate() {
            let cur = &self.steps[i].states[state as usize];
            let next = self
                .advance(cur, &self.sigs[d][chosen[d] as usize])
                .ok_or_else(|| {
                    "spatial factors exceed a fanout or break the X/Y split order".to_string()
                })?;
            state = *self.steps[i + 1]
                .index
                .get(&next)
                .ok_or("spatial factors exceed a fanout")?;
        }
        Ok(())
    }

    /// Whether level `l`'s loop order `lm` meets its permutation constraint.
    fn check_order(&self, l: usize, lm: &LevelMapping) -> Result<(), String> {
        let order: Vec<usize> = lm
            .temporal
            .iter()
            .filter(|lp| lp.factor > 1)
            .map(|lp| lp.dim)
            .collect();
        let listed: Vec<usize> = self.prefix[l]
            .iter()
            .copied()
            .filter(|d| order.contains(d))
            .collect();
        if order[..listed.len()] != listed[..] {
            return Err(format!(
                "{}: loop order violates the permutation constraint {}",
                self.arch.levels[l].name,
                self.prefix[l]
                    .iter()
                    .map(|&d| &self.problem.dims[d])
                    .join("")
            ));
        }
        Ok(())
    }

    /// Whether level `l`'s keep list `lm` meets its fixed keep choices.
    fn check_keeps(&self, l: usize, lm: &LevelMapping) -> Result<(), String> {
        for (t, tensor) in self.problem.tensors.iter().enumerate() {
            if let KeepChoice::Fixed(k) = self.keep[l][t] {
                if lm.keep[t] != k {
                    return Err(format!(
                        "{}: must {} {}",
                        self.arch.levels[l].name,
                        if k { "keep" } else { "bypass" },
                        tensor.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The non-unit factors `f` of dim `d` by slot, for error messages.
    fn describe_factors(&self, d: usize, f: &[u64]) -> String {
        self.slots
            .iter()
            .zip(f)
            .filter(|(_, &x)| x > 1)
            .map(|(s, x)| {
                let k = match s.kind {
                    SlotKind::Temporal => "T",
                    SlotKind::SpatialX => "X",
                    SlotKind::SpatialY => "Y",
                };
                format!(
                    "{}{}@{}:{k}",
                    self.problem.dims[d], x, self.arch.levels[s.level].name
                )
            })
            .join(" ")
    }
}
