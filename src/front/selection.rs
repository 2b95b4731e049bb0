//! The selection problem: the table joined with the accuracy model and the bit sets, its
//! criteria, budgets and points.
//!
//! One binary per (layer, table entry), one-hot per layer; activation bits are chained: for every
//! layer with a producer and every activation bit value b, Σ(entries of the layer with input b) =
//! Σ(entries of the producer with output b). Layers without producer read `first_input`; the last
//! layer of the table writes `last_output`; other layers' outputs take any activation bits.
//! Producers come from the network file (`Layer::producer`): MobileNetV2's residual adds are not
//! layers, the layer after an add reads the sum, which keeps its producer's bits.
//! Totals are sums over layers: energy (pJ), cycles (layers run one after another), accuracy
//! deltas, weight memory Σ_l weights_l · weight_bits_l / 8 bytes. Objectives are minimised
//! exactly, one lexicographic stage at a time (see the module `stage`). Network EDP =
//! (ΣE)(Σcycles) is not additive: it is read off the exact (energy, cycles) front
//! ([`min_edp`](super::min_edp)).
//!
//! Before solving, within every (layer, input bits, output bits) the entries dominated
//! in the criteria that matter (the front's criteria and the budgeted ones: energy, accuracy delta,
//! weight memory, cycles) are pruned (`SelectionProblem::prune`): chaining only sees input and
//! output bits, so replacing an entry by one that dominates it never makes a network worse. The
//! pruning is exact: fronts are unchanged (tests compare with brute force on the unpruned table).

use super::{AccuracyKind, AccuracyModel, BitConfig, BitSets, EnergyTable, FrontError, LayerTable};
use crate::spec::InputError;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One selectable entry of a layer, with its totals.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) entry: usize,
    pub(crate) bits: BitConfig,
    pub(crate) energy_pj: f64,
    pub(crate) cycles: u64,
    pub(crate) delta: f64,
    pub(crate) memory_bytes: f64,
}

/// A criterion of the fronts, minimised as [`Criterion::cost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    Energy,
    /// Maximised: its cost is −accuracy.
    Accuracy,
    Memory,
    Cycles,
}

pub(crate) const CRITERIA: [Criterion; 4] = [
    Criterion::Energy,
    Criterion::Accuracy,
    Criterion::Memory,
    Criterion::Cycles,
];

impl Criterion {
    /// The point's value in minimisation sense (accuracy negated).
    pub fn cost(self, p: &FrontPoint) -> f64 {
        match self {
            Criterion::Energy => p.energy_pj,
            Criterion::Accuracy => -p.accuracy,
            Criterion::Memory => p.memory_bytes,
            Criterion::Cycles => p.cycles as f64,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The candidate's contribution to the cost (accuracy: −delta; the constant −full precision
    /// is added by the caller).
    pub(crate) fn of(self, c: &Candidate) -> f64 {
        match self {
            Criterion::Energy => c.energy_pj,
            Criterion::Accuracy => -c.delta,
            Criterion::Memory => c.memory_bytes,
            Criterion::Cycles => c.cycles as f64,
        }
    }
}

/// How a point was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointStatus {
    /// Every solve proved optimal (or the point was enumerated).
    Optimal,
    /// A solve hit the time limit: feasible, not proved non-dominated.
    TimeLimit,
    /// Found by NSGA-II.
    Heuristic,
    /// A given design, evaluated (e.g. a uniform design): no optimality claim.
    Evaluated,
}

/// A layer's part of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerChoice {
    pub name: String,
    /// Index of the chosen entry in the table's layer.
    pub entry: usize,
    pub bits: BitConfig,
    pub energy_pj: f64,
    pub cycles: u64,
    pub accuracy_delta: f64,
    pub memory_bytes: f64,
}

/// One network design: totals, per-layer choices and how it was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    pub energy_pj: f64,
    /// Full precision + Σ deltas, in percent (a proxy value when the model is a proxy).
    pub accuracy: f64,
    /// Weight memory Σ weights · weight bits / 8.
    pub memory_bytes: f64,
    /// Network latency: Σ layer cycles.
    pub cycles: u64,
    pub status: PointStatus,
    pub layers: Vec<LayerChoice>,
}

impl FrontPoint {
    /// Network EDP (pJ · cycles).
    pub fn edp(&self) -> f64 {
        self.energy_pj * self.cycles as f64
    }

    /// The objective vector over `criteria` in minimisation sense.
    pub fn costs(&self, criteria: &[Criterion]) -> Vec<f64> {
        criteria.iter().map(|c| c.cost(self)).collect()
    }
}

/// The table joined with the accuracy model and the bit sets: what the fronts select from.
#[derive(Debug, Clone)]
pub struct SelectionProblem {
    pub(crate) names: Vec<String>,
    pub(crate) producers: Vec<Option<usize>>,
    /// Per layer, the selectable entries (within the bit sets).
    pub(crate) cands: Vec<Vec<Candidate>>,
    pub(crate) full_precision_accuracy: f64,
    accuracy_kind: AccuracyKind,
    pub(crate) bits: BitSets,
}

impl SelectionProblem {
    /// Joins a table, an accuracy model and bit sets. Fails when a producer is not an earlier
    /// layer, a layer has no entry within the bit sets, or the accuracy model misses a layer or a
    /// (weight bits, input bits) pair some entry needs, or names a layer the table lacks.
    pub fn new(
        table: &EnergyTable,
        accuracy: &AccuracyModel,
        bits: &BitSets,
    ) -> Result<SelectionProblem, FrontError> {
        let n = table.layers.len();
        if n == 0 {
            return Err(FrontError::Table("no layers".into()));
        }
        let file = accuracy.file();
        let field = accuracy.layers_field();
        let covered = accuracy.layer_names();
        for &name in &covered {
            if !table.layers.iter().any(|l| l.name == name) {
                return Err(InputError::new(
                    file,
                    field,
                    format!("layer `{name}` is not a layer of the network"),
                )
                .into());
            }
        }
        let mut cands = Vec::with_capacity(n);
        for (i, l) in table.layers.iter().enumerate() {
            if let Some(p) = l.producer {
                if p >= i {
                    return Err(FrontError::Table(format!(
                        "layer `{}`: producer {p} is not an earlier layer",
                        l.name
                    )));
                }
            }
            if !covered.contains(&l.name.as_str()) {
                return Err(InputError::new(
                    file,
                    field,
                    format!("no values for layer `{}`", l.name),
                )
                .into());
            }
            let v = candidates(l, i + 1 == n, accuracy, bits)?;
            if v.is_empty() {
                return Err(FrontError::Table(format!(
                    "layer `{}` has no entry within the bit sets",
                    l.name
                )));
            }
            cands.push(v);
        }
        Ok(SelectionProblem {
            names: table.layers.iter().map(|l| l.name.clone()).collect(),
            producers: table.layers.iter().map(|l| l.producer).collect(),
            cands,
            full_precision_accuracy: accuracy.origin(),
            accuracy_kind: accuracy.kind(),
            bits: bits.clone(),
        })
    }

    pub fn layer_count(&self) -> usize {
        self.names.len()
    }

    /// Number of selectable entries (within the bit sets) per layer.
    pub fn entry_counts(&self) -> Vec<usize> {
        self.cands.iter().map(Vec::len).collect()
    }

    pub fn accuracy_kind(&self) -> AccuracyKind {
        self.accuracy_kind
    }

    pub fn full_precision_accuracy(&self) -> f64 {
        self.full_precision_accuracy
    }

    pub fn bits(&self) -> &BitSets {
        &self.bits
    }

    /// The point of a selection from [`for_each_selection`](super::for_each_selection) (status `evaluated`).
    pub fn point_of(&self, selection: &[usize]) -> FrontPoint {
        self.point(selection, PointStatus::Evaluated)
    }

    /// The point of a selection: `choice[l]` indexes layer l's selectable entries.
    pub(crate) fn point(&self, choice: &[usize], status: PointStatus) -> FrontPoint {
        let mut p = FrontPoint {
            energy_pj: 0.0,
            accuracy: 0.0,
            memory_bytes: 0.0,
            cycles: 0,
            status,
            layers: Vec::with_capacity(choice.len()),
        };
        let mut delta = 0.0;
        for (l, &k) in choice.iter().enumerate() {
            let c = &self.cands[l][k];
            p.energy_pj += c.energy_pj;
            p.cycles += c.cycles;
            p.memory_bytes += c.memory_bytes;
            delta += c.delta;
            p.layers.push(LayerChoice {
                name: self.names[l].clone(),
                entry: c.entry,
                bits: c.bits,
                energy_pj: c.energy_pj,
                cycles: c.cycles,
                accuracy_delta: c.delta,
                memory_bytes: c.memory_bytes,
            });
        }
        p.accuracy = self.full_precision_accuracy + delta;
        p
    }

    /// The point of a selection given by table entry indices per layer
    /// ([`LayerChoice::entry`]); None when some entry is not selectable or the activation bits
    /// do not chain.
    pub fn point_of_entries(&self, entries: &[usize], status: PointStatus) -> Option<FrontPoint> {
        if entries.len() != self.cands.len() {
            return None;
        }
        let choice: Vec<usize> = (entries.iter().enumerate())
            .map(|(l, &e)| self.cands[l].iter().position(|c| c.entry == e))
            .collect::<Option<_>>()?;
        let chained = (self.producers.iter().enumerate()).all(|(l, p)| {
            p.is_none_or(|p| {
                self.cands[p][choice[p]].bits.output_bits
                    == self.cands[l][choice[l]].bits.input_bits
            })
        });
        chained.then(|| self.point(&choice, status))
    }

    /// The costs (minimisation sense, indexed like [`CRITERIA`]) of a selection, summed in the
    /// same order as [`SelectionProblem::point`] so that both give identical numbers.
    pub(crate) fn costs_of(&self, choice: &[usize]) -> [f64; 4] {
        let (mut e, mut d, mut m, mut c) = (0.0, 0.0, 0.0, 0u64);
        for (l, &k) in choice.iter().enumerate() {
            let x = &self.cands[l][k];
            e += x.energy_pj;
            d += x.delta;
            m += x.memory_bytes;
            c += x.cycles;
        }
        [e, -(self.full_precision_accuracy + d), m, c as f64]
    }

    /// The network with the given per-layer (weight bits, output bits) (a layer's input bits are
    /// its producer's output bits or the network input's; the last layer's output bits are
    /// `last_output` whatever is given), each layer at its lowest-energy entry (then fewest
    /// cycles) for those bits. None when some layer has no such entry.
    pub fn evaluate(&self, bits: &[(u32, u32)]) -> Option<FrontPoint> {
        let choice = self.choice_for(bits).ok()?;
        Some(self.point(&choice, PointStatus::Evaluated))
    }

    /// The uniform design: every weight and inner activation at `bits`.
    pub fn uniform(&self, bits: u32) -> Option<FrontPoint> {
        self.evaluate(&vec![(bits, bits); self.layer_count()])
    }

    /// Per-layer choice for (weight bits, output bits); Err(number of layers without entry).
    pub(crate) fn choice_for(&self, bits: &[(u32, u32)]) -> Result<Vec<usize>, usize> {
        let n = self.layer_count();
        let mut missing = 0;
        let mut choice = vec![0; n];
        for l in 0..n {
            let input_bits = match self.producers[l] {
                Some(p) => bits[p].1,
                None => self.bits.first_input,
            };
            let output_bits = if l + 1 == n {
                self.bits.last_output
            } else {
                bits[l].1
            };
            let want = BitConfig {
                input_bits,
                weight_bits: bits[l].0,
                output_bits,
            };
            let best = self.cands[l]
                .iter()
                .enumerate()
                .filter(|(_, c)| c.bits == want)
                .min_by(|(_, a), (_, b)| {
                    a.energy_pj
                        .total_cmp(&b.energy_pj)
                        .then(a.cycles.cmp(&b.cycles))
                });
            match best {
                Some((k, _)) => choice[l] = k,
                None => missing += 1,
            }
        }
        if missing == 0 {
            Ok(choice)
        } else {
            Err(missing)
        }
    }

    /// Per layer, the selectable entries kept by pruning: within a (input bits, output bits)
    /// group, those not weakly dominated in `criteria` by an earlier-kept one (sorted by
    /// `criteria` then `tiebreak`).
    pub(crate) fn prune(&self, criteria: &[Criterion], tiebreak: &[Criterion]) -> Vec<Vec<usize>> {
        self.cands
            .iter()
            .map(|cs| {
                let mut groups: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
                for (k, c) in cs.iter().enumerate() {
                    groups
                        .entry((c.bits.input_bits, c.bits.output_bits))
                        .or_default()
                        .push(k);
                }
                let mut kept_all = Vec::new();
                for (_, mut g) in groups {
                    g.sort_by(|&a, &b| {
                        criteria
                            .iter()
                            .chain(tiebreak)
                            .map(|c| c.of(&cs[a]).total_cmp(&c.of(&cs[b])))
                            .find(|o| *o != Ordering::Equal)
                            .unwrap_or(Ordering::Equal)
                    });
                    let mut kept: Vec<usize> = Vec::new();
                    for k in g {
                        let dominated = kept
                            .iter()
                            .any(|&j| criteria.iter().all(|c| c.of(&cs[j]) <= c.of(&cs[k])));
                        if !dominated {
                            kept.push(k);
                        }
                    }
                    kept_all.extend(kept);
                }
                kept_all.sort_unstable();
                kept_all
            })
            .collect()
    }
}

/// The selectable entries of layer `l` (`is_last`: the network's last layer): those with a
/// finite energy within the bit sets, with their accuracy delta and weight memory. Fails when
/// the accuracy model has no value for an entry's (weight bits, input bits).
fn candidates(
    l: &LayerTable,
    is_last: bool,
    accuracy: &AccuracyModel,
    bits: &BitSets,
) -> Result<Vec<Candidate>, InputError> {
    let mut v = Vec::new();
    for (e, t) in l.entries.iter().enumerate() {
        if !t.energy_pj.is_finite() || !bits.allows(l.producer, is_last, t.bits) {
            continue;
        }
        let b = t.bits;
        if accuracy.excluded(&l.name, b.weight_bits, b.input_bits) {
            continue;
        }
        let delta = accuracy
            .score(&l.name, b.weight_bits, b.input_bits)
            .ok_or_else(|| {
                InputError::new(
                    accuracy.file(),
                    accuracy.layers_field(),
                    format!(
                        "layer `{}` has no value for weight_bits {}, activation_bits {}",
                        l.name, b.weight_bits, b.input_bits
                    ),
                )
            })?;
        v.push(Candidate {
            entry: e,
            bits: b,
            energy_pj: t.energy_pj,
            cycles: t.cycles,
            delta,
            memory_bytes: (l.weights * b.weight_bits as u64) as f64 / 8.0,
        });
    }
    Ok(v)
}

/// Upper bounds on a design's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Budgets {
    /// accuracy ≥ this (percent).
    pub min_accuracy: Option<f64>,
    /// weight memory ≤ this (bytes).
    pub max_memory_bytes: Option<f64>,
    /// network cycles ≤ this.
    pub max_cycles: Option<u64>,
}

impl Budgets {
    /// Whether `p` meets every budget.
    pub fn admit(&self, p: &FrontPoint) -> bool {
        self.min_accuracy.is_none_or(|m| p.accuracy >= m)
            && self.max_memory_bytes.is_none_or(|m| p.memory_bytes <= m)
            && self.max_cycles.is_none_or(|c| p.cycles <= c)
    }

    pub(crate) fn bounds(&self) -> Vec<(Criterion, f64)> {
        let mut b = Vec::new();
        if let Some(a) = self.min_accuracy {
            b.push((Criterion::Accuracy, -a));
        }
        if let Some(m) = self.max_memory_bytes {
            b.push((Criterion::Memory, m));
        }
        if let Some(c) = self.max_cycles {
            b.push((Criterion::Cycles, c as f64));
        }
        b
    }

    pub(crate) fn criteria(&self) -> Vec<Criterion> {
        self.bounds().into_iter().map(|(c, _)| c).collect()
    }
}
