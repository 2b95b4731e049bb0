//! One enumeration for many bit-width choices: each mapping counted once, priced per packing
//! class, the energy optimum of every choice.

use super::bounded::{BoundStats, PartialBounds};
use super::exhaustive::check_limit;
use crate::eval::{
    combine_storage, combined_cycles, evaluate, mac_energy_per_op, tensor_packing_signature,
    tensor_price, Counts, Evaluator, PackingSignature, TensorPrice,
};
use crate::mapspace::{Mapspace, Visit};
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::proof::Certificate;
use rayon::prelude::*;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::Instant;
/// Enumerates `space` once and finds the energy optimum of every bit-width choice (its
/// [`Certificate`]: the bound is the mapping's energy when the whole space was searched, else
/// the least of it and the bounds of the parts left unsearched at the deadline; infinity when
/// nothing fits; `optimal` only when the bound reaches the energy): each
/// mapping is counted once ([`Evaluator::count`]), each tensor is priced at each of its
/// packing classes ([`tensor_price`]) and the prices are combined per bit choice
/// ([`combine_storage`]). As in [`enumerate`](super::enumerate), the loop orders of a factorisation and keep
/// pattern, and the factorisations that share the choices of their first dims, are skipped
/// when their bound is worse than the best found at every class.
/// Ties go to lower cycles, then to the first mapping in enumeration order. Every winner is
/// re-evaluated in full. Refuses spaces above `limit` like [`exhaustive`](super::exhaustive). With a `deadline`,
/// the search stops there, as in [`enumerate`](super::enumerate). Under a latency budget
/// ([`Mapspace::max_cycles`]) only mappings within it count, at each class's own cycles, and
/// bounds whose cycles exceed it rule their mappings out.
pub fn exhaustive_choices(
    space: &Mapspace,
    choices: &[ModelOptions],
    limit: Option<u128>,
    deadline: Option<Instant>,
) -> Result<Vec<Certificate>, String> {
    check_limit(space, limit, "")?;
    if choices.is_empty() {
        return Ok(vec![]);
    }
    if choices
        .iter()
        .any(|o| o.seed_compat != choices[0].seed_compat)
    {
        return Err("bit choices must agree on seed_compat (it changes the counts)".into());
    }
    let mut classes = Classes::new(space.problem(), space.arch(), choices);
    classes.cap = space.max_cycles();
    let search = ChoiceSearch {
        incumbents: (0..classes.len())
            .map(|_| AtomicU64::new(f64::INFINITY.to_bits()))
            .collect(),
        space,
        classes,
        pb: PartialBounds::new(space),
        done: AtomicUsize::new(0),
    };
    // Which parts were searched (those not started by the deadline were not).
    let searched: Vec<AtomicBool> = (0..space.num_parts())
        .map(|_| AtomicBool::new(true))
        .collect();
    let best = search.run(deadline, &searched);
    let unsearched = search.unsearched(&searched);
    search.classes.results(&best, &unsearched)
}

/// Per tensor and packing class, its price and whether its bit-width fits.
type Prices = Vec<Vec<(TensorPrice, bool)>>;

/// Per class, the best mapping of a part: its energy, cycles and itself.
type PartBest = Vec<Option<(f64, u64, Mapping)>>;

/// The packing classes of the bit choices: per tensor, its packing classes (each with a
/// representative choice); per choice, the tuple of its tensors' classes; the distinct tuples
/// (with a representative), which are what is priced.
struct Classes<'a> {
    problem: &'a Problem,
    arch: &'a Arch,
    choices: &'a [ModelOptions],
    tensor_reps: Vec<Vec<(PackingSignature, usize)>>,
    /// The distinct tuples, each with a representative choice.
    classes: Vec<(Vec<usize>, usize)>,
    /// Per choice, its class.
    class_of: Vec<usize>,
    /// Per class, the energy of the MACs.
    mac_energy: Vec<f64>,
    /// The latency budget ([`Mapspace::max_cycles`]).
    cap: Option<u64>,
}

impl<'a> Classes<'a> {
    fn new(problem: &'a Problem, arch: &'a Arch, choices: &'a [ModelOptions]) -> Classes<'a> {
        let nt = problem.tensors.len();
        let mut tensor_reps: Vec<Vec<(PackingSignature, usize)>> = vec![vec![]; nt];
        let tuples: Vec<Vec<usize>> = choices
            .iter()
            .enumerate()
            .map(|(i, o)| {
                (0..nt)
                    .map(|t| {
                        let sig = tensor_packing_signature(arch, problem, o, t);
                        let reps = &mut tensor_reps[t];
                        reps.iter().position(|(s, _)| *s == sig).unwrap_or_else(|| {
                            reps.push((sig, i));
                            reps.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let mut classes: Vec<(Vec<usize>, usize)> = vec![];
        let class_of: Vec<usize> = tuples
            .iter()
            .enumerate()
            .map(|(i, tu)| {
                classes
                    .iter()
                    .position(|(c, _)| c == tu)
                    .unwrap_or_else(|| {
                        classes.push((tu.clone(), i));
                        classes.len() - 1
                    })
            })
            .collect();
        let mac_energy: Vec<f64> = classes
            .iter()
            .map(|(_, rep)| {
                problem.macs() as f64 * mac_energy_per_op(arch, problem, &choices[*rep])
            })
            .collect();
        Classes {
            problem,
            arch,
            choices,
            tensor_reps,
            classes,
            class_of,
            mac_energy,
            cap: None,
        }
    }

    fn len(&self) -> usize {
        self.classes.len()
    }

    /// The options mappings are counted under (every choice counts alike).
    fn counting(&self) -> &ModelOptions {
        &self.choices[0]
    }

    /// Price scratch.
    fn new_prices(&self) -> Prices {
        (self.tensor_reps.iter())
            .map(|reps| vec![(TensorPrice::default(), false); reps.len()])
            .collect()
    }

    /// Prices every tensor of counts `c` at each of its packing classes.
    fn price_tensors(&self, c: &Counts, prices: &mut Prices) {
        for (t, reps) in self.tensor_reps.iter().enumerate() {
            for ((_, rep), (price, ok)) in reps.iter().zip(&mut prices[t]) {
                *ok = tensor_price(self.problem, self.arch, c, t, &self.choices[*rep], price);
            }
        }
    }

    /// Whether every tensor's bit-width fits at class `k`.
    fn fits(&self, k: usize, prices: &Prices) -> bool {
        let tuple = &self.classes[k].0;
        (0..tuple.len()).all(|t| prices[t][tuple[t]].1)
    }

    /// Per class, the storage energy of counts `c` plus MACs into `out`, None when the
    /// bit-widths or the capacities rule it out, or (counts that bound others from below)
    /// their cycles are over the latency budget.
    fn energies(&self, c: &Counts, prices: &mut Prices, out: &mut Vec<Option<f64>>) {
        self.price_tensors(c, prices);
        out.clear();
        out.extend(self.classes.iter().enumerate().map(|(k, (tuple, rep))| {
            if !self.fits(k, prices) {
                return None;
            }
            let part = |t: usize| &prices[t][tuple[t]].0;
            if !self.within_budget(combined_cycles(self.arch, c, part)) {
                return None;
            }
            Some(combine_storage(self.arch, c, part, &self.choices[*rep])? + self.mac_energy[k])
        }));
    }

    /// Whether `cycles` meet the latency budget.
    fn within_budget(&self, cycles: u64) -> bool {
        self.cap.is_none_or(|cap| cycles <= cap)
    }

    /// Per choice, its class's best re-evaluated in full at the choice's bit-widths, with the
    /// class's bound.
    fn results(&self, best: &PartBest, unsearched: &[f64]) -> Result<Vec<Certificate>, String> {
        let mut out = vec![];
        for (i, o) in self.choices.iter().enumerate() {
            let k = self.class_of[i];
            let Some((_, _, m)) = &best[k] else {
                let bound = unsearched[k];
                out.push(Certificate::enumerated(
                    None,
                    None,
                    f64::INFINITY,
                    bound,
                    0.0,
                ));
                continue;
            };
            let ev = evaluate(self.problem, self.arch, m, o);
            if !ev.valid {
                return Err(format!(
                    "internal error: a mapping priced valid for bit choice {i} is invalid: {:?}",
                    ev.invalid
                ));
            }
            let (value, bound) = (ev.energy_pj, unsearched[k].min(ev.energy_pj));
            out.push(Certificate::enumerated(
                Some(m.clone()),
                Some(ev),
                value,
                bound,
                0.0,
            ));
        }
        Ok(out)
    }
}

/// One [`exhaustive_choices`] search: the classes it prices and what its parts share.
struct ChoiceSearch<'a> {
    space: &'a Mapspace,
    classes: Classes<'a>,
    pb: PartialBounds<'a>,
    /// Per class, the least energy found so far in any part (bits of a non-negative f64,
    /// which order like the values). A factorisation and keep pattern whose order-free lower
    /// bound exceeds it at every class cannot hold an optimum (nor tie one): its loop orders
    /// are skipped. What is skipped is strictly worse than a mapping found, so the answer
    /// (ties included) is the same as without skipping, whatever the timing of the parts.
    incumbents: Vec<AtomicU64>,
    /// Parts done, for the progress line.
    done: AtomicUsize,
}

/// What one rayon job counts and prices full mappings with, reused over its parts.
struct FullScratch<'e> {
    ev: Evaluator<'e>,
    prices: Prices,
    /// Per keep pattern and class, the lower bound of the current factorisation with that
    /// keep pattern (None: invalid at that class).
    bounds: Vec<Vec<Option<f64>>>,
}

/// What one rayon job (or the bounds of the parts left at the deadline) bounds partial
/// mappings with: an evaluator per depth, price scratch and the per-class energies.
struct PartialScratch<'e> {
    evs: Vec<Evaluator<'e>>,
    prices: Prices,
    energies: Vec<Option<f64>>,
}

impl ChoiceSearch<'_> {
    /// Whether a lower bound `lb` at class `k` rules its mappings out.
    fn beaten(&self, k: usize, lb: f64) -> bool {
        lb > f64::from_bits(self.incumbents[k].load(Relaxed)) * (1.0 + 1e-9)
    }

    /// Whether per-class bounds `b` rule their mappings out at every class.
    fn all_beaten(&self, b: &[Option<f64>]) -> bool {
        b.iter()
            .enumerate()
            .all(|(k, b)| b.is_none_or(|b| self.beaten(k, b)))
    }

    fn partial_scratch(&self) -> PartialScratch<'_> {
        PartialScratch {
            evs: self.pb.evaluators(),
            prices: self.classes.new_prices(),
            energies: Vec::new(),
        }
    }

    /// Searches every part in parallel: per class, the best mapping (merged pairwise in part
    /// order: rayon's reduce keeps the order, so ties go to the first mapping in enumeration
    /// order and only a few part results are alive at a time).
    fn run(&self, deadline: Option<Instant>, searched: &[AtomicBool]) -> PartBest {
        let n = self.classes.len();
        let init = || {
            let full = FullScratch {
                ev: Evaluator::new(self.space.problem(), self.space.arch()),
                prices: self.classes.new_prices(),
                bounds: vec![Vec::new(); 1 << self.space.free_keeps().len()],
            };
            (full, self.partial_scratch(), BoundStats::new(self.space))
        };
        (0..self.space.num_parts())
            .into_par_iter()
            .map_init(init, |(full, partial, stats), p| {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    searched[p].store(false, Relaxed);
                    return vec![None; n];
                }
                let stats = &*stats;
                let mut best: PartBest = vec![None; n];
                let bound_partial = |depth: usize, m: &Mapping| {
                    if !stats.worth(depth) {
                        return true;
                    }
                    let go_on = (self.completion_energies(partial, depth, m))
                        .is_some_and(|e| !self.all_beaten(e));
                    stats.record(depth, !go_on);
                    go_on
                };
                let visit = |m: &Mapping, v: Visit| self.visit(full, stats, &mut best, m, v);
                let scanned = self
                    .space
                    .scan_part_bounded(p, deadline, bound_partial, visit);
                if !scanned.complete {
                    searched[p].store(false, Relaxed);
                }
                let done = self.done.fetch_add(1, Relaxed) + 1;
                crate::progress::parts(done, self.space.num_parts());
                best
            })
            .reduce(|| vec![None; n], merge)
    }

    /// The per-class energy bounds (storage at the partial problem, MACs at the full one) on
    /// the mappings that complete partial mapping `m` at `depth`; None when they are all
    /// invalid.
    fn completion_energies<'s>(
        &self,
        s: &'s mut PartialScratch,
        depth: usize,
        m: &Mapping,
    ) -> Option<&'s [Option<f64>]> {
        let bound = &self.pb.depths[depth].1;
        let c = (s.evs[depth].completion_count(m, self.classes.counting(), bound)).ok()?;
        self.classes.energies(c, &mut s.prices, &mut s.energies);
        Some(&s.energies)
    }

    /// Counts mapping `m` and offers it to every class its bound lets through; false when it
    /// is invalid or its factorisation and keep pattern are ruled out at every class (its
    /// other loop orders are skipped).
    fn visit(
        &self,
        s: &mut FullScratch,
        stats: &BoundStats,
        best: &mut PartBest,
        m: &Mapping,
        v: Visit,
    ) -> bool {
        let bounds = &mut s.bounds[v.keep];
        if v.first {
            stats.leaf();
        }
        if v.first && v.orders == 1 {
            // Evaluated at once (its bound would cost as much).
            bounds.clear();
            bounds.resize(self.classes.len(), Some(0.0));
        } else if v.first {
            // Skip every loop order when no class is valid or can be improved.
            let Ok(c) = s.ev.order_free_count(m, self.classes.counting()) else {
                return false;
            };
            self.classes.energies(c, &mut s.prices, bounds);
            if self.all_beaten(bounds) {
                return false;
            }
        } else if self.all_beaten(bounds) {
            return true; // beaten since the first order: skip this one
        }
        let Ok(c) = s.ev.count(m, self.classes.counting()) else {
            return false;
        };
        self.classes.price_tensors(c, &mut s.prices);
        for (k, best) in best.iter_mut().enumerate() {
            if bounds[k].is_none_or(|b| self.beaten(k, b)) || !self.classes.fits(k, &s.prices) {
                continue;
            }
            self.offer(k, c, &s.prices, best, m);
        }
        true
    }

    /// Offers mapping `m` (counts `c`, tensors priced in `prices`) to class `k`'s `best`.
    fn offer(
        &self,
        k: usize,
        c: &Counts,
        prices: &Prices,
        best: &mut Option<(f64, u64, Mapping)>,
        m: &Mapping,
    ) {
        let (tuple, rep) = &self.classes.classes[k];
        let (arch, mac_energy) = (self.classes.arch, self.classes.mac_energy[k]);
        let part = |t: usize| &prices[t][tuple[t]].0;
        // Cheap pre-check (sum of per-tensor energies; equal to the mapping's storage energy
        // up to rounding): skip what cannot beat or tie the best.
        if let Some(b) = best {
            let approx: f64 = (0..tuple.len()).map(|t| part(t).energy()).sum::<f64>() + mac_energy;
            if approx > b.0 * (1.0 + 1e-9) {
                return;
            }
        }
        let Some(storage) = combine_storage(arch, c, part, &self.classes.choices[*rep]) else {
            return;
        };
        let e = storage + mac_energy;
        // Cycles only break energy ties.
        if best.as_ref().is_some_and(|b| e > b.0) {
            return;
        }
        let cy = combined_cycles(arch, c, part);
        if !self.classes.within_budget(cy) {
            return;
        }
        if best.as_ref().is_none_or(|b| (e, cy) < (b.0, b.1)) {
            *best = Some((e, cy, m.clone()));
            self.incumbents[k].fetch_min(e.to_bits(), Relaxed);
            crate::progress::incumbent(e);
        }
    }

    /// Per class, the least bound of the parts left unsearched at the deadline.
    fn unsearched(&self, searched: &[AtomicBool]) -> Vec<f64> {
        let mut unsearched = vec![f64::INFINITY; self.classes.len()];
        let mut s = self.partial_scratch();
        for p in (0..searched.len()).filter(|&p| !searched[p].load(Relaxed)) {
            self.space.part_partials(p, |depth, m| {
                if let Some(energies) = self.completion_energies(&mut s, depth, m) {
                    for (u, e) in unsearched.iter_mut().zip(energies) {
                        *u = u.min(e.unwrap_or(f64::INFINITY));
                    }
                }
            });
        }
        unsearched
    }
}

/// Merges the per-class bests of two runs of parts, `a` before `b`: ties go to `a`.
fn merge(mut a: PartBest, b: PartBest) -> PartBest {
    for (x, y) in a.iter_mut().zip(b) {
        if let Some(y) = y {
            if x.as_ref().is_none_or(|x| (y.0, y.1) < (x.0, x.1)) {
                *x = Some(y);
            }
        }
    }
    a
}
