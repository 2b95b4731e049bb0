//! Building a [`Mapspace`]: its slots, and the constraints resolved against a problem (factor
//! rules, spatial rules, keeps) into each dim's factor choices.

use super::constraints::{Constraints, FixedFactor, LoopKind};
use super::count::count_bypass_patterns;
use super::{
    divisors, prime_factors, KeepChoice, LevelSlots, Mapspace, Rule, Slot, SlotKind, SpatialDir,
    SpatialRule, MAX_DIM_CHOICES, MAX_FREE_KEEPS,
};
use crate::model::{Arch, KeepRule, Problem};
use itertools::Itertools;
use std::collections::HashMap;
use std::sync::OnceLock;

impl Mapspace {
    /// The mapspace of `problem` on `arch` without constraints.
    pub fn unconstrained(problem: &Problem, arch: &Arch) -> Result<Mapspace, String> {
        Mapspace::new(problem, arch, &Constraints::new(arch))
    }

    /// Builds the mapspace; errors when a constraint names an unknown dim or tensor, when
    /// constraints contradict the architecture, or when no mapping is left.
    pub fn new(problem: &Problem, arch: &Arch, cons: &Constraints) -> Result<Mapspace, String> {
        check_sizes(problem, arch, cons)?;
        let (nd, nl) = (problem.dims.len(), arch.levels.len());
        let mut notes = cons.notes.clone();
        let (slots, level_slots) = build_slots(arch);
        let spatial_slots: Vec<usize> = (0..slots.len())
            .filter(|&s| slots[s].kind != SlotKind::Temporal)
            .collect();
        let rules = resolve_factor_rules(problem, cons, &mut notes)?;
        let (spatial_rules, coupled) =
            resolve_spatial_rules(problem, cons, &level_slots, &mut notes)?;
        let prefix = resolve_prefixes(problem, cons, &mut notes)?;
        let keep = resolve_keeps(problem, arch, cons)?;
        let free_keeps = free_keeps(problem, &keep)?;
        let bypass_patterns = count_bypass_patterns(problem, &keep)?;
        let choices = (0..nd)
            .map(|d| dim_factor_choices(problem, d, &slots, &level_slots, &rules, &spatial_rules))
            .collect::<Result<Vec<_>, _>>()?;
        // A dim with no factorisation leaves no mapping: the space is empty (infeasible, for
        // that reason), not an error.
        let empty_reason = (0..nd)
            .find(|&d| choices[d].is_empty())
            .map(|d| no_factorisation(problem, d, cons));
        let mut space = Mapspace {
            problem: problem.clone(),
            arch: arch.clone(),
            allowed: allowed_factors(&choices, slots.len()),
            choice_index: choice_indices(&choices),
            dim_order: dim_order(&choices),
            slots,
            level_slots,
            spatial_slots,
            primes: problem.bounds.iter().map(|&b| prime_factors(b)).collect(),
            rules,
            spatial_rules,
            coupled,
            prefix,
            enumerate_orders: (0..nl).map(|l| l > 0).collect(),
            keep,
            free_keeps,
            empty_reason,
            max_cycles: None,
            choices,
            sigs: Vec::new(),
            steps: Vec::new(),
            factorisations: 0.0,
            parts: Vec::new(),
            size: OnceLock::new(),
            bypass_patterns,
            notes,
        };
        space.build_joint();
        Ok(space)
    }

    /// The joint part of the space over its dims' choices: their signatures, the DAG and its
    /// parts (an empty DAG empties the space).
    fn build_joint(&mut self) {
        self.sigs = (0..self.problem.dims.len())
            .map(|d| {
                self.choices[d]
                    .iter()
                    .map(|c| self.signature(d, c))
                    .collect()
            })
            .collect();
        self.build_dag();
        if self.factorisations == 0.0 && self.empty_reason.is_none() {
            self.empty_reason = Some(format!(
                "no factorisation of {}'s dims fits the spatial fanouts under the constraints",
                self.problem.name
            ));
        }
        self.parts = self.split_parts();
    }
}

/// Errors unless the problem has a dim, the architecture a level and the constraints as many
/// levels as it.
fn check_sizes(problem: &Problem, arch: &Arch, cons: &Constraints) -> Result<(), String> {
    let nl = arch.levels.len();
    if problem.dims.is_empty() || nl == 0 {
        return Err("the problem needs a dimension and the architecture a level".into());
    }
    if cons.levels.len() != nl {
        return Err(format!(
            "constraints are for {} levels, the architecture has {nl}",
            cons.levels.len()
        ));
    }
    Ok(())
}

/// Per level, the dims of its temporal permutation constraint (innermost first).
fn resolve_prefixes(
    problem: &Problem,
    cons: &Constraints,
    notes: &mut Vec<String>,
) -> Result<Vec<Vec<usize>>, String> {
    cons.levels
        .iter()
        .map(|lc| {
            let lp = &lc.temporal;
            resolve_dims(problem, &lp.permutation, &lp.permutation_origin, notes)
        })
        .collect()
}

/// The free (level, tensor) keep choices; errors past [`MAX_FREE_KEEPS`].
fn free_keeps(problem: &Problem, keep: &[Vec<KeepChoice>]) -> Result<Vec<(usize, usize)>, String> {
    let free_keeps: Vec<(usize, usize)> = (0..keep.len())
        .flat_map(|l| (0..problem.tensors.len()).map(move |t| (l, t)))
        .filter(|&(l, t)| keep[l][t] == KeepChoice::Free)
        .collect();
    if free_keeps.len() > MAX_FREE_KEEPS {
        return Err(format!(
            "{} keep/bypass choices are free (2^{} bypass patterns), more than qmap enumerates \
             (2^{MAX_FREE_KEEPS}): fix keep or bypass per level in the architecture or the \
             constraints",
            free_keeps.len(),
            free_keeps.len()
        ));
    }
    Ok(free_keeps)
}

/// Per dim and slot, the factors its choices use there (sorted, distinct).
fn allowed_factors(choices: &[Vec<Vec<u64>>], slots: usize) -> Vec<Vec<Vec<u64>>> {
    choices
        .iter()
        .map(|cs| {
            (0..slots)
                .map(|s| cs.iter().map(|c| c[s]).sorted().dedup().collect())
                .collect()
        })
        .collect()
}

/// Per dim, the index of each of its choices.
fn choice_indices(choices: &[Vec<Vec<u64>>]) -> Vec<HashMap<Vec<u64>, u32>> {
    choices
        .iter()
        .map(|cs| {
            cs.iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i as u32))
                .collect()
        })
        .collect()
}

/// The order the DAG takes the dims in: dims with one choice go first (they do not branch,
/// and bounds on partial mappings are tighter with them chosen), then the dim with the most
/// choices (its choices are the parallel parts), then the others.
fn dim_order(choices: &[Vec<Vec<u64>>]) -> Vec<usize> {
    let nd = choices.len();
    let first = (0..nd)
        .max_by_key(|&d| (choices[d].len(), std::cmp::Reverse(d)))
        .unwrap();
    let single = |d: &usize| choices[*d].len() == 1;
    (0..nd)
        .filter(single)
        .chain(std::iter::once(first).filter(|d| !single(d)))
        .chain((0..nd).filter(|d| *d != first && !single(d)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Building a mapspace: slots and constraints resolved against a problem
// ---------------------------------------------------------------------------------------------

/// The slots of `arch`, innermost level first: per level spatial X and Y (where its fanout in
/// that direction is > 1), then temporal.
pub(super) fn build_slots(arch: &Arch) -> (Vec<Slot>, Vec<LevelSlots>) {
    let mut slots = Vec::new();
    let mut level_slots = Vec::new();
    for l in 0..arch.levels.len() {
        let (fx, fy) = arch.fanout(l);
        let mut ls = LevelSlots::default();
        for (fanout, kind, at) in [
            (fx, SlotKind::SpatialX, &mut ls.x),
            (fy, SlotKind::SpatialY, &mut ls.y),
        ] {
            if fanout > 1 {
                *at = Some(slots.len());
                slots.push(Slot {
                    level: l,
                    kind,
                    fanout: Some(fanout),
                });
            }
        }
        ls.temporal = slots.len();
        slots.push(Slot {
            level: l,
            kind: SlotKind::Temporal,
            fanout: None,
        });
        level_slots.push(ls);
    }
    (slots, level_slots)
}

/// Resolves a dim name of a constraint; None = dropped (M or C on a depthwise problem).
pub(super) fn resolve_dim(
    problem: &Problem,
    name: &str,
    origin: &str,
    notes: &mut Vec<String>,
) -> Result<Option<usize>, String> {
    match problem.dim_index(name) {
        Some(d) => Ok(Some(d)),
        None if problem.dim_index("G").is_some() && (name == "M" || name == "C") => {
            let note = format!(
                "{origin}: `{name}` does not exist in depthwise problem `{}`; constraint dropped",
                problem.name
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
            Ok(None)
        }
        None => Err(format!(
            "{origin}: unknown dimension `{name}` (dims of {}: {})",
            problem.name,
            problem.dims.join(" ")
        )),
    }
}

/// Resolves a permutation's dim names (dropped ones left out).
pub(super) fn resolve_dims(
    problem: &Problem,
    names: &[String],
    origin: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for name in names {
        if let Some(d) = resolve_dim(problem, name, origin, notes)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// Factor rules per [dim][level][temporal, spatial], with fixed factors clamped to the bound
/// and `D=0` resolved to the remaining factor (every other unfixed slot of D at 1).
pub(super) fn resolve_factor_rules(
    problem: &Problem,
    cons: &Constraints,
    notes: &mut Vec<String>,
) -> Result<Vec<Vec<[Rule; 2]>>, String> {
    let (nd, nl) = (problem.dims.len(), cons.levels.len());
    let mut rules = vec![vec![[Rule::default(); 2]; nl]; nd];
    // Per dim: the `D=0` positions and the product of the fixed factors.
    let mut remaining: Vec<Vec<(usize, usize, String)>> = vec![Vec::new(); nd];
    let mut fixed_prod = vec![1u64; nd];
    for (l, lc) in cons.levels.iter().enumerate() {
        for (k, kind) in [LoopKind::Temporal, LoopKind::Spatial]
            .into_iter()
            .enumerate()
        {
            for (name, fr) in &lc.loops(kind).factors {
                let Some(d) = resolve_dim(problem, name, &fr.origin, notes)? else {
                    continue;
                };
                let bound = problem.bounds[d];
                let rule = &mut rules[d][l][k];
                rule.max = fr.max;
                rule.min = fr.min;
                match fr.fixed {
                    Some(FixedFactor::Value(v)) => {
                        if v > bound {
                            notes.push(format!(
                                "{}: factor {name}={v} exceeds the bound {bound}; clamped",
                                fr.origin
                            ));
                        }
                        rule.fixed = Some(v.min(bound));
                        fixed_prod[d] = fixed_prod[d].saturating_mul(v.min(bound));
                    }
                    Some(FixedFactor::Remaining) => remaining[d].push((l, k, fr.origin.clone())),
                    None => {}
                }
            }
        }
    }
    for (d, rem) in remaining.into_iter().enumerate() {
        let (bound, name) = (problem.bounds[d], &problem.dims[d]);
        if rem.len() > 1 {
            return Err(format!(
                "{} and {}: `{name}=0` (the whole remaining factor) is given twice",
                rem[0].2, rem[1].2
            ));
        }
        let Some((l, k, origin)) = rem.into_iter().next() else {
            continue;
        };
        if !bound.is_multiple_of(fixed_prod[d]) {
            return Err(format!(
                "{origin}: `{name}=0`: the factors fixed elsewhere ({}) do not divide the bound \
                 {bound}",
                fixed_prod[d]
            ));
        }
        for (ll, row) in rules[d].iter_mut().enumerate() {
            for (kk, r) in row.iter_mut().enumerate() {
                if (ll, kk) == (l, k) {
                    r.fixed = Some(bound / fixed_prod[d]);
                } else if r.fixed.is_none() {
                    r.fixed = Some(1);
                }
            }
        }
    }
    Ok(rules)
}

/// The X/Y rule of every level, and the levels whose split point follows a permutation order.
pub(super) fn resolve_spatial_rules(
    problem: &Problem,
    cons: &Constraints,
    level_slots: &[LevelSlots],
    notes: &mut Vec<String>,
) -> Result<(Vec<SpatialRule>, Vec<usize>), String> {
    let nd = problem.dims.len();
    let mut rules = Vec::new();
    let mut coupled = Vec::new();
    for (l, lc) in cons.levels.iter().enumerate() {
        let lp = &lc.spatial;
        let perm = resolve_dims(problem, &lp.permutation, &lp.permutation_origin, notes)?;
        let ls = level_slots[l];
        let mut rule = SpatialRule {
            dir: vec![SpatialDir::Any; nd],
            order: None,
        };
        if let Some(split) = lc.split {
            // Positions < split are X; unlisted dims take the positions after the listed ones.
            let split = split as usize;
            for (d, dir) in rule.dir.iter_mut().enumerate() {
                *dir = match perm.iter().position(|&x| x == d) {
                    Some(i) if i < split => SpatialDir::XOnly,
                    Some(_) => SpatialDir::YOnly,
                    None if split <= perm.len() => SpatialDir::YOnly,
                    None if split >= nd => SpatialDir::XOnly,
                    None => SpatialDir::OneOf,
                };
            }
        } else if !perm.is_empty() && ls.x.is_some() && ls.y.is_some() {
            // The split point is free but follows the order.
            rule.dir = vec![SpatialDir::OneOf; nd];
            rule.order = Some(
                (0..nd)
                    .map(|d| perm.iter().position(|&x| x == d).unwrap_or(perm.len()))
                    .collect(),
            );
            coupled.push(l);
        }
        rules.push(rule);
    }
    Ok((rules, coupled))
}

/// Keep/bypass per [level][tensor]: the architecture's rule, a constraint, or free; the
/// outermost level keeps what nothing forbids.
pub(super) fn resolve_keeps(
    problem: &Problem,
    arch: &Arch,
    cons: &Constraints,
) -> Result<Vec<Vec<KeepChoice>>, String> {
    let nl = arch.levels.len();
    let mut keep = Vec::new();
    for (l, level) in arch.levels.iter().enumerate() {
        let dt = &cons.levels[l].datatype;
        if let Some((name, (_, origin))) = dt
            .iter()
            .find(|(name, _)| problem.tensor_index(name).is_none())
        {
            return Err(format!(
                "{origin}: unknown tensor `{name}` (tensors: {})",
                problem.tensors.iter().map(|t| t.name.as_str()).join(", ")
            ));
        }
        let mut row = Vec::new();
        for tensor in &problem.tensors {
            row.push(
                match (arch.keep_rule(l, &tensor.name), dt.get(&tensor.name)) {
                    (KeepRule::Must, Some((false, o))) => {
                        return Err(format!(
                            "{o}: bypasses {} at {}, which the architecture makes keep it",
                            tensor.name, level.name
                        ))
                    }
                    (KeepRule::Never, Some((true, o))) => {
                        return Err(format!(
                            "{o}: keeps {} at {}, which cannot hold it",
                            tensor.name, level.name
                        ))
                    }
                    (KeepRule::Must, _) => KeepChoice::Fixed(true),
                    (KeepRule::Never, _) => KeepChoice::Fixed(false),
                    (KeepRule::Free, Some((k, _))) => KeepChoice::Fixed(*k),
                    (KeepRule::Free, None) if l == nl - 1 => KeepChoice::Fixed(true),
                    (KeepRule::Free, None) => KeepChoice::Free,
                },
            );
        }
        keep.push(row);
    }
    Ok(keep)
}

/// Every per-slot factor vector of dim `d` that satisfies the per-dim constraints.
pub(super) fn dim_factor_choices(
    problem: &Problem,
    d: usize,
    slots: &[Slot],
    level_slots: &[LevelSlots],
    rules: &[Vec<[Rule; 2]>],
    spatial_rules: &[SpatialRule],
) -> Result<Vec<Vec<u64>>, String> {
    let bound = problem.bounds[d];
    let divs = divisors(bound);
    let allowed: Vec<Vec<u64>> = slots
        .iter()
        .map(|s| {
            let dir = spatial_rules[s.level].dir[d];
            let fits = |f: u64| f <= s.fanout.unwrap_or(u64::MAX);
            divs.iter()
                .copied()
                .filter(|&f| match s.kind {
                    SlotKind::Temporal => rules[d][s.level][0].admits(f),
                    SlotKind::SpatialX => fits(f) && (f == 1 || dir != SpatialDir::YOnly),
                    SlotKind::SpatialY => fits(f) && (f == 1 || dir != SpatialDir::XOnly),
                })
                .collect()
        })
        .collect();
    let accept = |cur: &[u64]| {
        level_slots.iter().enumerate().all(|(l, ls)| {
            let x = ls.x.map_or(1, |s| cur[s]);
            let y = ls.y.map_or(1, |s| cur[s]);
            let one_axis = spatial_rules[l].dir[d] == SpatialDir::OneOf;
            rules[d][l][1].admits(x * y) && !(one_axis && x > 1 && y > 1)
        })
    };
    let mut out = Vec::new();
    if !gen_choices(
        0,
        bound,
        &allowed,
        &mut vec![1; slots.len()],
        &mut out,
        &accept,
    ) {
        return Err(format!(
            "{} = {bound} has more than {MAX_DIM_CHOICES} factorisations over the \
             architecture's {} loop slots, more than qmap keeps in memory: constrain its \
             factors per level (e.g. `{}=1` at the levels where it should not be split)",
            problem.dims[d],
            slots.len(),
            problem.dims[d]
        ));
    }
    Ok(out)
}

/// Why dim `d` has no factorisation: the constraints that restrict it, grouped by file
/// (`no factorisation of M = 997 satisfies the constraints (c.yaml: targets[1].factors,
/// targets[3].factors)`).
pub(super) fn no_factorisation(problem: &Problem, d: usize, cons: &Constraints) -> String {
    let mut by_file: Vec<(String, Vec<String>)> = vec![];
    let origins = cons.levels.iter().flat_map(|lc| {
        [&lc.temporal, &lc.spatial]
            .into_iter()
            .filter_map(|lp| lp.factors.get(&problem.dims[d]))
            .map(|r| r.origin.clone())
    });
    for o in origins.unique() {
        let (file, field) = o.rsplit_once(": ").unwrap_or(("", o.as_str()));
        match by_file.iter_mut().find(|(f, _)| f == file) {
            Some((_, fields)) => fields.push(field.to_string()),
            None => by_file.push((file.to_string(), vec![field.to_string()])),
        }
    }
    let origins: Vec<String> = by_file
        .into_iter()
        .map(|(f, fields)| match f.as_str() {
            "" => fields.join(", "),
            _ => format!("{f}: {}", fields.join(", ")),
        })
        .collect();
    format!(
        "no factorisation of {} = {} satisfies the constraints{}",
        problem.dims[d],
        problem.bounds[d],
        if origins.is_empty() {
            String::new()
        } else {
            format!(" ({})", origins.join("; "))
        }
    )
}

/// All per-slot factor vectors from slot `s` on whose product is `rem`; false (stopped) when
/// there are more than [`MAX_DIM_CHOICES`].
pub(super) fn gen_choices(
    s: usize,
    rem: u64,
    allowed: &[Vec<u64>],
    cur: &mut Vec<u64>,
    out: &mut Vec<Vec<u64>>,
    accept: &impl Fn(&[u64]) -> bool,
) -> bool {
    if s == allowed.len() {
        if rem == 1 && accept(cur) {
            out.push(cur.clone());
        }
        return out.len() <= MAX_DIM_CHOICES;
    }
    for &a in &allowed[s] {
        if rem.is_multiple_of(a) {
            cur[s] = a;
            if !gen_choices(s + 1, rem / a, allowed, cur, out, accept) {
                return false;
            }
        }
    }
    cur[s] = 1;
    true
}
