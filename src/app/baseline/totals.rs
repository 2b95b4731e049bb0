//! What `qmap baseline` reports beside its files: per entry its energy by level, weight
//! memory, solve time and mapspace size; and the network's totals (energy, cycles, weight
//! memory, energy by level) over one entry per layer (its least-energy bit choice).

use crate::app::job::RoleBits;
use crate::eval::Evaluation;
use crate::instance::{BitConfig, Instance};
use crate::mapspace::{Constraints, Mapspace};
use crate::optimum::{shape_key, Entry};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One entry (a layer at a bit choice) as the outputs show it.
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    pub layer: String,
    pub bits: Option<RoleBits>,
    pub energy_pj: Option<f64>,
    pub cycles: Option<u64>,
    /// Bytes of the layer's weights at the entry's weight bits (native: the outermost
    /// level's word).
    pub weight_bytes: f64,
    /// How the entry's optimum stands.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Wall time of the layer's shape in this run (shared by the layers of that shape; a cache
    /// hit's is its check).
    pub solve_seconds: f64,
    /// Mappings in the layer's mapspace (null when too large to count within a second).
    pub mapspace_size: Option<f64>,
    /// Energy by level, as the report's `levels` lists them (empty without a mapping).
    pub level_energy_pj: Vec<f64>,
}

/// How an entry's optimum stands, as the outputs show it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verdict {
    /// `optimal`, `time_limit`, `infeasible`, ...
    pub status: &'static str,
    /// The proof's engine.
    pub proof: &'static str,
    /// The proof is complete (an optimum, or infeasibility, proven).
    pub proven: bool,
}

impl Verdict {
    /// The verdict of a table entry.
    pub fn of(e: &Entry) -> Verdict {
        Verdict {
            status: entry_status(e),
            proof: e.proof().engine(),
            proven: e.proof().optimal(),
        }
    }
}

/// The network's totals over one entry per layer.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkTotals {
    pub energy_pj: f64,
    /// Layers run one after another: the sum of their cycles.
    pub cycles: u64,
    pub weight_bytes: f64,
    /// Energy by level, as the report's `levels` lists them.
    pub level_energy_pj: Vec<f64>,
    /// Layers counted, and those left out (no mapping at any bit choice).
    pub layers: usize,
    pub left_out: usize,
    /// Every layer proven optimal.
    pub optimal: bool,
    /// Wall time of the whole table.
    pub solve_seconds: f64,
}

/// The levels an energy breakdown lists: outermost first, then the MACs.
pub fn level_names(inst: &Instance) -> Vec<String> {
    let mut names: Vec<String> = inst
        .arch
        .levels
        .iter()
        .rev()
        .map(|l| l.name.clone())
        .collect();
    names.push("MACs".into());
    names
}

/// An evaluation's energy by level, as the report's `levels` lists them.
pub fn level_energies(ev: &Evaluation) -> Vec<f64> {
    let mut e: Vec<f64> = ev.levels.iter().rev().map(|l| l.energy_pj).collect();
    e.push(ev.mac_energy_pj);
    e
}

/// Bytes of a layer's `weights` at the weight bits of `bits` (native: the outermost level's
/// word bits).
pub fn weight_bytes(inst: &Instance, weights: u64, bits: Option<BitConfig>) -> f64 {
    let word = inst.arch.levels.last().map_or(8, |l| l.word_bits);
    let w = bits.map_or(word, |b| b.weight_bits as u64);
    weights as f64 * w as f64 / 8.0
}

/// Every layer's mapspace size, counted once per shape, each count given a second.
pub fn mapspace_sizes(sub: &Instance, cons: &Constraints) -> Vec<Option<f64>> {
    let mut by_shape: HashMap<String, Option<f64>> = HashMap::new();
    (sub.layers.iter())
        .map(|l| {
            let key = shape_key(&l.problem);
            *by_shape.entry(key).or_insert_with(|| {
                let deadline = Instant::now() + Duration::from_secs(1);
                let space = Mapspace::new(&l.problem, &sub.arch, cons).ok()?;
                space.size_until(Some(deadline))
            })
        })
        .collect()
}

/// An entry's status: `infeasible` without a mapping, else its proof's.
pub fn entry_status(e: &Entry) -> &'static str {
    if e.energy_pj().is_none() {
        "infeasible"
    } else {
        crate::report::status_name(e.proof().status())
    }
}

/// Per layer, its least-energy row (the first when none has a mapping); `rows` are grouped by
/// layer in order.
pub fn least_energy_per_layer(rows: &[LayerRow]) -> Vec<LayerRow> {
    let mut chosen: Vec<LayerRow> = vec![];
    for r in rows {
        match chosen.last_mut() {
            Some(c) if c.layer == r.layer => {
                let better = r
                    .energy_pj
                    .is_some_and(|e| c.energy_pj.is_none_or(|ce| e < ce));
                if better {
                    *c = r.clone();
                }
            }
            _ => chosen.push(r.clone()),
        }
    }
    chosen
}

/// The network's totals over `chosen` (one row per layer), `seconds` the table's wall time.
pub fn network_totals(chosen: &[LayerRow], levels: usize, seconds: f64) -> NetworkTotals {
    let mapped: Vec<&LayerRow> = chosen.iter().filter(|r| r.energy_pj.is_some()).collect();
    let mut level_energy_pj = vec![0.0; levels];
    for r in &mapped {
        for (sum, e) in level_energy_pj.iter_mut().zip(&r.level_energy_pj) {
            *sum += e;
        }
    }
    NetworkTotals {
        energy_pj: mapped.iter().filter_map(|r| r.energy_pj).sum(),
        cycles: mapped.iter().filter_map(|r| r.cycles).sum(),
        weight_bytes: mapped.iter().map(|r| r.weight_bytes).sum(),
        level_energy_pj,
        layers: mapped.len(),
        left_out: chosen.len() - mapped.len(),
        optimal: chosen.iter().all(|r| r.verdict.status == "optimal"),
        solve_seconds: seconds,
    }
}
