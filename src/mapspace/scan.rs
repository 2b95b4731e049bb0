//! Enumerating and sampling a space: its parts, the depth-first walk of the DAG (bounded or
//! not), every loop order and keep pattern of a factorisation, and Timeloop-style sampling.

use super::{KeepChoice, Mapspace, MIN_PARTS};
use crate::model::{Loop, Mapping};
use itertools::Itertools;
use rand::{Rng, RngExt};
use std::time::Instant;

/// Reusable buffers of the enumeration (one per part being enumerated).
#[derive(Debug, Default)]
pub(super) struct Emit {
    mapping: Mapping,
    /// Per level, where its free dims start in the temporal loops, and the free dims.
    free: Vec<(usize, Vec<usize>)>,
    /// perms[k]: the permutations of 0..k in lexicographic order (filled on demand).
    perms: Vec<Vec<Vec<usize>>>,
    /// Per level, the index of its current order in `perms`.
    idx: Vec<usize>,
    /// Per keep mask, whether the visitor declined the current factorisation with it at its
    /// first loop order (its other orders are then skipped).
    invalid: Vec<bool>,
    /// Mappings skipped that way.
    skipped: u64,
    /// The partial mapping a bounded scan passes to its bound, and its free dims.
    partial: Mapping,
    partial_free: Vec<(usize, Vec<usize>)>,
    clock: Clock,
}

/// When a scan must stop (checked every [`DEADLINE_CHECK`] steps), and whether it has.
#[derive(Debug, Default)]
pub(super) struct Clock {
    deadline: Option<Instant>,
    ticks: u32,
    stopped: bool,
}

/// Steps (DAG transitions and loop orders) between two looks at the clock in a scan with a
/// deadline: a step costs at least one evaluation or bound (about a microsecond), a look at
/// the clock some tens of nanoseconds.
pub(super) const DEADLINE_CHECK: u32 = 64;

impl Clock {
    /// Whether the scan is past its deadline (from now on, always true once it was).
    pub(super) fn past_deadline(&mut self) -> bool {
        if let (Some(d), false) = (self.deadline, self.stopped) {
            self.ticks = self.ticks.wrapping_add(1);
            if self.ticks.is_multiple_of(DEADLINE_CHECK) && Instant::now() >= d {
                self.stopped = true;
            }
        }
        self.stopped
    }
}

/// How a scan of one part ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Mappings skipped as [`Mapspace::scan_part`] says.
    pub skipped: u64,
    /// Whether the whole part was visited (false: the deadline stopped it).
    pub complete: bool,
}

/// Where a mapping visited by [`Mapspace::scan_part`] stands.
#[derive(Debug, Clone, Copy)]
pub struct Visit {
    /// Its keep pattern's number (below 2^[`Mapspace::free_keeps`]`.len()`).
    pub keep: usize,
    /// Whether it is the first loop order visited of its factorisation with that keep pattern.
    pub first: bool,
    /// The number of loop orders of its factorisation.
    pub orders: u64,
}

/// In the `chosen` vector of a partial factorisation: this dim is not chosen yet (its factors
/// are all 1).
pub(super) const UNCHOSEN: u32 = u32::MAX;

impl Mapspace {
    // -----------------------------------------------------------------------------------------
    // Enumeration and sampling
    // -----------------------------------------------------------------------------------------

    /// Number of parts [`Mapspace::for_each_part`] splits the space into (for parallelism):
    /// the partial factorisations of the first dims (in the DAG's order), as many dims as it
    /// takes to have at least [`MIN_PARTS`] parts (or all of them).
    pub fn num_parts(&self) -> usize {
        self.parts.len()
    }

    /// Calls `f` on every mapping of the space, in a fixed order.
    pub fn for_each(&self, mut f: impl FnMut(&Mapping)) {
        for p in 0..self.num_parts() {
            self.for_each_part(p, &mut f);
        }
    }

    /// Calls `f` on every mapping of part `part` (the parts partition the space; concatenated in
    /// order they give [`Mapspace::for_each`]'s order).
    pub fn for_each_part(&self, part: usize, mut f: impl FnMut(&Mapping)) {
        self.scan_part(part, |m, _| {
            f(m);
            true
        });
    }

    /// [`Mapspace::for_each_part`] for a search that can skip loop orders: calls
    /// `f(mapping, visit)` ([`Visit`]); when `f` returns false at the first loop order of a
    /// factorisation with a keep pattern, the other loop orders of that factorisation and keep
    /// pattern are not visited (e.g. because the mapping is invalid: validity — factor
    /// products, fanouts, keep rules, word widths, capacities — does not depend on loop order).
    /// Returns how many mappings were skipped; the visited ones come in
    /// [`Mapspace::for_each_part`]'s order.
    pub fn scan_part(&self, part: usize, mut f: impl FnMut(&Mapping, Visit) -> bool) -> u64 {
        self.visit_part(part, None, None::<&mut fn(usize, &Mapping) -> bool>, &mut f)
            .skipped
    }

    /// [`Mapspace::scan_part`] stopped at `deadline` (within a few dozen steps of it): how
    /// many mappings were skipped and whether the part was visited whole.
    pub fn scan_part_until(
        &self,
        part: usize,
        deadline: Option<Instant>,
        mut f: impl FnMut(&Mapping, Visit) -> bool,
    ) -> Scanned {
        self.visit_part(
            part,
            deadline,
            None::<&mut fn(usize, &Mapping) -> bool>,
            &mut f,
        )
    }

    /// [`Mapspace::scan_part`] that can also skip whole sets of factorisations: before those
    /// that share the choices of the first `depth` dims of [`Mapspace::dim_order`] (`depth` at
    /// least 1 and below the number of dims) are visited, calls `bound(depth, partial)` with
    /// their partial mapping — those dims' factors as chosen, every other dim's factors 1,
    /// loops in canonical order — once per keep pattern; when it returns false for every keep
    /// pattern, none of them is visited. Returns how many mappings [`Mapspace::scan_part`]
    /// skipped (those skipped here are not counted) and whether the part was visited whole:
    /// past `deadline` the scan stops within a few dozen steps (a step being one set of
    /// factorisations bounded or one loop order visited), wherever it is.
    pub fn scan_part_bounded(
        &self,
        part: usize,
        deadline: Option<Instant>,
        mut bound: impl FnMut(usize, &Mapping) -> bool,
        mut f: impl FnMut(&Mapping, Visit) -> bool,
    ) -> Scanned {
        self.visit_part(part, deadline, Some(&mut bound), &mut f)
    }

    /// Calls `f(depth, partial)` with the partial mapping of part `part` under each keep
    /// pattern, as [`Mapspace::scan_part_bounded`] offers it to its bound: the choices of the
    /// part's first `depth` dims of [`Mapspace::dim_order`], every other dim's factors 1.
    pub fn part_partials(&self, part: usize, mut f: impl FnMut(usize, &Mapping)) {
        let (chosen, depth) = self.part_chosen(part);
        let mut scratch = Emit::default();
        self.bound_partial(depth, &chosen, &mut scratch, &mut |depth, m| {
            f(depth, m);
            false
        });
    }

    /// The partial mapping of `chosen` (per dim, the index of its factorisation in
    /// [`Mapspace::dim_choices`], or None: factors 1) with the keep pattern `keep`, loops in
    /// canonical order: what [`Mapspace::scan_part_bounded`] offers its bound, for any set of
    /// chosen dims.
    pub fn partial_mapping(&self, chosen: &[Option<usize>], keep: &[Vec<bool>]) -> Mapping {
        let chosen: Vec<u32> = chosen
            .iter()
            .map(|c| c.map_or(UNCHOSEN, |c| c as u32))
            .collect();
        let mut m = Mapping::default();
        self.fill_base_mapping(&chosen, &mut m, &mut vec![]);
        for (lm, k) in m.levels.iter_mut().zip(keep) {
            lm.keep.clone_from(k);
        }
        m
    }

    /// The `chosen` vector of part `part` (its first dims of `dim_order` chosen, the others
    /// [`UNCHOSEN`]) and how many dims it chooses.
    pub(super) fn part_chosen(&self, part: usize) -> (Vec<u32>, usize) {
        let prefix = &self.parts[part].0;
        let mut chosen = vec![UNCHOSEN; self.problem.dims.len()];
        for (i, &c) in prefix.iter().enumerate() {
            chosen[self.dim_order[i]] = c;
        }
        (chosen, prefix.len())
    }

    /// The order in which the enumeration chooses the dims' factors (parts and
    /// [`Mapspace::scan_part_bounded`]'s depths follow it).
    pub fn dim_order(&self) -> &[usize] {
        &self.dim_order
    }

    pub(super) fn visit_part(
        &self,
        part: usize,
        deadline: Option<Instant>,
        mut bound: Option<&mut impl FnMut(usize, &Mapping) -> bool>,
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) -> Scanned {
        let (mut chosen, depth) = self.part_chosen(part);
        let state = self.parts[part].1;
        let mut scratch = Emit {
            clock: Clock {
                deadline,
                ..Clock::default()
            },
            ..Emit::default()
        };
        if let Some(b) = bound.as_deref_mut() {
            if depth > 0
                && depth < self.dim_order.len()
                && !self.bound_partial(depth, &chosen, &mut scratch, b)
            {
                return Scanned {
                    skipped: 0,
                    complete: true,
                };
            }
        }
        self.dfs(depth, state, &mut chosen, &mut scratch, &mut bound, f);
        Scanned {
            skipped: scratch.skipped,
            complete: !scratch.clock.stopped,
        }
    }

    /// Whether `bound` goes on with the partial factorisation `chosen` (first `depth` dims of
    /// `dim_order`) under some keep pattern.
    pub(super) fn bound_partial(
        &self,
        depth: usize,
        chosen: &[u32],
        scratch: &mut Emit,
        bound: &mut impl FnMut(usize, &Mapping) -> bool,
    ) -> bool {
        self.fill_base_mapping(chosen, &mut scratch.partial, &mut scratch.partial_free);
        let m = &mut scratch.partial;
        let nt = self.problem.tensors.len();
        for mask in 0..(1u64 << self.free_keeps.len()) {
            for (k, &(l, t)) in self.free_keeps.iter().enumerate() {
                m.levels[l].keep[t] = mask >> k & 1 == 1;
            }
            if (0..nt).all(|t| m.levels.iter().any(|lm| lm.keep[t])) && bound(depth, m) {
                return true;
            }
        }
        false
    }

    /// Splits the DAG into parts: the paths through its first layers, in DFS order.
    pub(super) fn split_parts(&self) -> Vec<(Vec<u32>, u32)> {
        let mut parts = vec![(Vec::new(), 0u32)];
        let mut i = 0;
        while parts.len() < MIN_PARTS && i < self.dim_order.len() {
            parts = parts
                .into_iter()
                .flat_map(|(prefix, state)| {
                    self.steps[i].trans[state as usize].iter().map(move |t| {
                        let mut p = prefix.clone();
                        p.push(t.choice);
                        (p, t.next)
                    })
                })
                .collect();
            i += 1;
        }
        parts
    }

    pub(super) fn dfs(
        &self,
        i: usize,
        state: u32,
        chosen: &mut [u32],
        scratch: &mut Emit,
        bound: &mut Option<&mut impl FnMut(usize, &Mapping) -> bool>,
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) {
        let n = self.dim_order.len();
        if i == n {
            self.emit(chosen, scratch, f);
            return;
        }
        for t in &self.steps[i].trans[state as usize] {
            if scratch.clock.past_deadline() {
                break;
            }
            chosen[self.dim_order[i]] = t.choice;
            if let Some(b) = bound.as_deref_mut() {
                if i + 1 < n && !self.bound_partial(i + 1, chosen, scratch, b) {
                    continue;
                }
            }
            self.dfs(i + 1, t.next, chosen, scratch, bound, f);
        }
        chosen[self.dim_order[i]] = UNCHOSEN;
    }

    /// The mapping of a factorisation with loops in canonical order and the default keep
    /// pattern (free keeps off), plus, per level, the dims whose order is free and where they
    /// start in the temporal list.
    pub(super) fn base_mapping(&self, chosen: &[u32]) -> (Mapping, Vec<(usize, Vec<usize>)>) {
        let (mut m, mut free) = (Mapping::default(), Vec::new());
        self.fill_base_mapping(chosen, &mut m, &mut free);
        (m, free)
    }

    /// [`Mapspace::base_mapping`] into `m` and `free`, reusing their buffers.
    pub(super) fn fill_base_mapping(
        &self,
        chosen: &[u32],
        m: &mut Mapping,
        free: &mut Vec<(usize, Vec<usize>)>,
    ) {
        let nd = self.problem.dims.len();
        let nl = self.level_slots.len();
        // The chosen factor of dim d in slot s (1 for a dim not chosen yet).
        let f = |d: usize, s: usize| match chosen[d] {
            UNCHOSEN => 1,
            k => self.choices[d][k as usize][s],
        };
        m.levels.resize_with(nl, Default::default);
        free.resize_with(nl, Default::default);
        for (l, ls) in self.level_slots.iter().enumerate() {
            let lm = &mut m.levels[l];
            lm.spatial_x.clear();
            lm.spatial_y.clear();
            lm.temporal.clear();
            let t = ls.temporal;
            for (d, (choices, &k)) in self.choices.iter().zip(chosen).enumerate() {
                if k == UNCHOSEN {
                    lm.temporal.push(Loop { dim: d, factor: 1 });
                    continue;
                }
                let c = &choices[k as usize];
                for (slot, loops) in [(ls.x, &mut lm.spatial_x), (ls.y, &mut lm.spatial_y)] {
                    if let Some(s) = slot.filter(|&s| c[s] > 1) {
                        loops.push(Loop {
                            dim: d,
                            factor: c[s],
                        });
                    }
                }
                if c[t] == 1 {
                    lm.temporal.push(Loop { dim: d, factor: 1 });
                }
            }
            for &d in self.prefix[l].iter().filter(|&&d| f(d, t) > 1) {
                lm.temporal.push(Loop {
                    dim: d,
                    factor: f(d, t),
                });
            }
            let (start, rest) = &mut free[l];
            *start = lm.temporal.len();
            rest.clear();
            for d in 0..nd {
                let factor = f(d, t);
                if factor > 1 && !self.prefix[l].contains(&d) {
                    rest.push(d);
                    lm.temporal.push(Loop { dim: d, factor });
                }
            }
            if !(self.enumerate_orders[l] && rest.len() > 1) {
                rest.clear();
            }
            lm.keep.clear();
            lm.keep
                .extend(self.keep[l].iter().map(|k| *k == KeepChoice::Fixed(true)));
        }
    }

    pub(super) fn emit(
        &self,
        chosen: &[u32],
        s: &mut Emit,
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) {
        self.fill_base_mapping(chosen, &mut s.mapping, &mut s.free);
        let (m, free) = (&mut s.mapping, &s.free);
        // Per level, its free dims' orders: the permutations of their positions, in
        // lexicographic order (the first one keeps the base order).
        for (_, dims) in free {
            let k = dims.len();
            if s.perms.len() <= k {
                s.perms.resize_with(k + 1, Vec::new);
            }
            if k > 1 && s.perms[k].is_empty() {
                s.perms[k] = (0..k).permutations(k).collect();
            }
        }
        let nl = free.len();
        let orders = |l: usize| {
            let k = free[l].1.len();
            if k < 2 {
                1
            } else {
                s.perms[k].len()
            }
        };
        s.idx.clear();
        s.idx.resize(nl, 0);
        s.invalid.clear();
        s.invalid.resize(1 << self.free_keeps.len(), false);
        let all_orders: u64 = (0..nl).fold(1u64, |n, l| n.saturating_mul(orders(l) as u64));
        let mut first = true;
        loop {
            if !first && s.clock.past_deadline() {
                break;
            }
            let (visited, skipped) = self.emit_keeps(m, first, all_orders, &mut s.invalid, f);
            s.skipped += skipped;
            if first && s.invalid.iter().filter(|&&i| i).count() == visited {
                // Every keep pattern declined (or none in the space): skip the other orders.
                s.skipped = s
                    .skipped
                    .saturating_add((all_orders - 1).saturating_mul(visited as u64));
                break;
            }
            first = false;
            // Odometer over the levels' orders; levels 0..=l change.
            let mut l = 0;
            while l < nl {
                s.idx[l] += 1;
                if s.idx[l] < orders(l) {
                    break;
                }
                s.idx[l] = 0;
                l += 1;
            }
            if l == nl {
                break;
            }
            for (l, (start, dims)) in free.iter().enumerate().take(l + 1) {
                if dims.len() < 2 {
                    continue;
                }
                let lm = &mut m.levels[l];
                for (k, &i) in s.perms[dims.len()][s.idx[l]].iter().enumerate() {
                    let d = dims[i];
                    let factor = self.choices[d][chosen[d] as usize][self.level_slots[l].temporal];
                    lm.temporal[start + k] = Loop { dim: d, factor };
                }
            }
        }
    }

    /// Calls `f` on `m` with every keep pattern; at the `first` loop order of a factorisation,
    /// records in `invalid` the patterns for which `f` returned false, at the others skips
    /// them. Returns how many patterns `f` was called with and how many were skipped.
    pub(super) fn emit_keeps(
        &self,
        m: &mut Mapping,
        first: bool,
        orders: u64,
        invalid: &mut [bool],
        f: &mut impl FnMut(&Mapping, Visit) -> bool,
    ) -> (usize, u64) {
        let nf = self.free_keeps.len();
        assert!(nf < 64, "too many free keep choices to enumerate");
        let nt = self.problem.tensors.len();
        let (mut visited, mut skipped) = (0, 0);
        for mask in 0..(1u64 << nf) {
            if !first && invalid[mask as usize] {
                skipped += 1;
                continue;
            }
            for (k, &(l, t)) in self.free_keeps.iter().enumerate() {
                m.levels[l].keep[t] = mask >> k & 1 == 1;
            }
            if (0..nt).all(|t| m.levels.iter().any(|lm| lm.keep[t])) {
                let visit = Visit {
                    keep: mask as usize,
                    first,
                    orders,
                };
                let go_on = f(m, visit);
                visited += 1;
                if first {
                    invalid[mask as usize] = !go_on;
                }
            }
        }
        (visited, skipped)
    }

    /// A random mapping of the space, Timeloop-style: a factorisation uniformly among the
    /// valid ones, then a uniform loop order per level and a uniform keep pattern.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Mapping {
        let mut chosen = vec![0u32; self.problem.dims.len()];
        let mut state = 0u32;
        for (i, &d) in self.dim_order.iter().enumerate() {
            let ts = &self.steps[i].trans[state as usize];
            let total = ts.last().map_or(0.0, |t| t.cum);
            let r = rng.random::<f64>() * total;
            let k = ts.partition_point(|t| t.cum <= r).min(ts.len() - 1);
            chosen[d] = ts[k].choice;
            state = ts[k].next;
        }
        let (mut m, free) = self.base_mapping(&chosen);
        for (l, (start, dims)) in free.iter().enumerate() {
            let lm = &mut m.levels[l];
            let seg = &mut lm.temporal[*start..*start + dims.len()];
            for i in (1..seg.len()).rev() {
                let j = rng.random_range(0..=i);
                seg.swap(i, j);
            }
        }
        let nt = self.problem.tensors.len();
        for t in 0..nt {
            let cells: Vec<usize> = self
                .free_keeps
                .iter()
                .filter(|&&(_, x)| x == t)
                .map(|&(l, _)| l)
                .collect();
            loop {
                for &l in &cells {
                    m.levels[l].keep[t] = rng.random::<bool>();
                }
                if m.levels.iter().any(|lm| lm.keep[t]) {
                    break;
                }
            }
        }
        m
    }
}
