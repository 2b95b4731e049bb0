//! The network front: per-layer bit-widths chosen from a table E*(layer, bits) (selection MILP, exact ε-constraint fronts, EDP, NSGA-II baseline, hypervolume, SVG plot) and the accuracy models.
//!
//! # Inputs
//! - [`EnergyTable`]: for every layer its name, weight count, producer and entries: for a bit
//!   configuration (input, weight, output bits) the optimal energy (pJ) and its cycles. A bit
//!   configuration may have several entries (its (energy, cycles) Pareto set, for latency and EDP);
//!   entries with a non-finite energy (no valid mapping) are ignored.
//! - [`BitSets`]: the allowed weight bits and activation bits (default 2..=8 both) and the bits of
//!   the network input (`first_input`, read by every layer without producer) and of the last
//!   layer's output (`last_output`), both 8 by default. Table entries outside the sets are ignored.
//! - [`AccuracyModel`]: `table` (additive per-layer accuracy deltas per (weight bits, activation
//!   bits), measured by the user) or `proxy` (HAWQ-style: delta_l = −(s_w,l·noise(w_l) +
//!   s_a,l·noise(a_l)), noise(b) = 2^(−2b)). Network accuracy = full-precision accuracy + Σ_l delta_l.
//!   **The activation bits of a layer's delta are its input activation bits**: the bits of the
//!   activations its MACs consume (its producer's output bits, or `first_input`). The label of a
//!   model kind ([`AccuracyKind::label`]) says `accuracy (proxy)` for the proxy: never print a proxy
//!   value as measured accuracy.
//!
//! # The selection MILP
//! One binary per (layer, table entry), one-hot per layer; activation bits are chained: for every
//! layer with a producer and every activation bit value b, Σ(entries of the layer with input b) =
//! Σ(entries of the producer with output b). Layers without producer read `first_input`; the last
//! layer of the table writes `last_output`; other layers' outputs take any activation bits.
//! Producers come from the network file (`Layer::producer`): MobileNetV2's residual adds are not
//! layers, the layer after an add reads the sum, which keeps its producer's bits.
//! Totals are sums over layers: energy (pJ), cycles (layers run one after another), accuracy
//! deltas, weight memory Σ_l weights_l · weight_bits_l / 8 bytes. Objectives are minimised
//! exactly, by the search below or, as a fallback, by HiGHS (threads 1, mip_rel_gap 0,
//! mip_abs_gap 0, feasibility tolerances 1e-9), each criterion's coefficients scaled to at most 1
//! in magnitude. Network EDP = (ΣE)(Σcycles) is not additive: it is
//! read off the exact (energy, cycles) front ([`min_edp`]).
//!
//! Before solving, within every (layer, input bits, output bits) the entries dominated
//! in the criteria that matter (the front's criteria and the budgeted ones: energy, accuracy delta,
//! weight memory, cycles) are pruned: chaining only sees input and output bits, so replacing an
//! entry by one that dominates it never makes a network worse. The pruning is exact: fronts are
//! unchanged (tests compare with brute force on the unpruned table).
//!
//! Each stage is then solved exactly but fast (MobileNetV2, bits 2..8: 18k entries): the
//! producer links form a forest, so a dynamic program over it minimises any weighted sum of the
//! criteria over chained selections in linear time. With multipliers λ ≥ 0 on the stage's bounds
//! (the Lagrangian dual, maximised by Kelley's cutting planes, each cut one dynamic-program
//! solution and each master a tiny HiGHS LP), the dynamic program bounds any feasible selection
//! from below. A bound that no selection can meet alone is reported infeasible at once. Otherwise
//! a label-setting search over the layers in order (`Milp::label_search`) finds the optimum: a
//! label is a partial selection of the first layers (its sums, added in the order
//! `SelectionProblem::costs_of` adds them, and the output bits of the layers still awaiting a
//! consumer); a label is dropped when a bounded sum cannot be met by the best completion, when its
//! Lagrangian bound (for λ and a few multiples of λ) exceeds a target, or when a label of the same
//! state is at least as good in every criterion the stage and the later stages look at. Every
//! selection within the target survives (or one as good in all those criteria), so the best
//! complete feasible label is optimal once it meets the target; the target starts just above the
//! Lagrangian bound, at the gap the previous point needed, and doubles its distance to the bound
//! (capped by the best feasible selection met) until it does. The complete labels of the first
//! stage are all the feasible selections up to the target: when the first stage's optimum plus its
//! tolerance is within the target, the later lexicographic stages are read off them without a
//! search. Should the labels outgrow a limit, the stage falls back to HiGHS: the MILP over the
//! entries whose Lagrangian bound does not exceed the best feasible selection met (first over the
//! entries of smallest reduced cost; that optimum is accepted only if no dropped entry could beat
//! it).
//!
//! # Fronts
//! [`trace_front`] traces, exactly, every non-dominated point of energy × accuracy, energy ×
//! memory, energy × accuracy × memory or energy × cycles, each objective vector once, no weakly
//! dominated point. Each point is a lexicographic solve (minimise energy; then, at that energy,
//! the second criterion; for 3-D, then memory), one solve per stage, under ε bounds:
//! - 2-D: ε on the second criterion, starting unbounded and tightened to just beyond the last
//!   point found (accuracy > last + `accuracy_resolution`, memory < last, cycles < last), until
//!   infeasible. Points come out in increasing energy.
//! - 3-D: the 2-D energy × accuracy front (lexicographic in energy, accuracy, memory) under a
//!   memory cap, for caps +∞, then just below the largest memory of the previous cap's front, until
//!   infeasible (Özlen & Azizoğlu's recursion). Every 3-D non-dominated point z is lexicographically
//!   optimal under the cap memory(z), and the caps visited skip no such cap. A solve whose bounds are
//!   tighter than a solved one's and whose solution satisfies them is answered from that solution
//!   (cache; `Front::cache_hits`).
//!
//! Exactness holds up to two resolutions: accuracies closer than `accuracy_resolution` (default
//! 1e-6 percentage points) count as equal (of two such points, the lower-energy one is reported),
//! and in a lexicographic stage energies within a relative 1e-9 count as equal. Memory (multiples of
//! 1/8 byte) and cycles (integers) are exact. Each point carries the status of its solves
//! ([`PointStatus`]); a front stops at `max_points` (then `complete` is false), keeping the points
//! found first (lowest energy first).
//!
//! # Baseline and checks
//! [`nsga2`] is the seed paper's NSGA-II over the same table (genome: per-layer weight bits and
//! output activation bits, inputs chained; objectives energy, −accuracy, memory; initial population
//! the uniform configurations; seeded ChaCha8). [`hypervolume`] is exact in any dimension (slicing)
//! for minimised objective vectors and an explicit reference point. [`brute_force_front`]
//! enumerates every chained selection (small networks, for tests). [`FrontPlot`] writes an SVG
//! (plotters' SVG backend without default features: text is emitted as SVG `<text>` elements
//! rendered by the viewer, with plotters' built-in size estimate for layout, so no system fonts are
//! needed).

use crate::spec::{self, InputError};
use crate::workload::Layer;
use highs::{HighsModelStatus, RowProblem, Sense};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Errors of the network front.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// An input file (the accuracy model) is wrong; names the file and the field.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The energy table is inconsistent (a programming error of whoever built it).
    #[error("energy table: {0}")]
    Table(String),
    /// HiGHS failed (not: the problem is infeasible, which is a normal outcome).
    #[error("selection MILP: {0}")]
    Solver(String),
    /// Writing the SVG failed.
    #[error("plot {file}: {message}")]
    Plot { file: String, message: String },
}

// ---------------------------------------------------------------------------------------------
// The table E*(layer, bits)
// ---------------------------------------------------------------------------------------------

/// A bit configuration of one layer: input activation, weight and output activation bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BitConfig {
    pub input_bits: u32,
    pub weight_bits: u32,
    pub output_bits: u32,
}

/// One entry of a layer's table: the optimal energy of a bit configuration and its cycles. Several
/// entries may share a bit configuration (its (energy, cycles) Pareto set).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub bits: BitConfig,
    pub energy_pj: f64,
    pub cycles: u64,
}

/// One layer of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerTable {
    pub name: String,
    /// Number of weights (memory = weights · weight bits).
    pub weights: u64,
    /// Index of the layer producing this layer's input (an earlier layer), None for the network
    /// input.
    pub producer: Option<usize>,
    pub entries: Vec<TableEntry>,
}

/// The table E*(layer, bits) of a network, layers in execution order (producers first).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnergyTable {
    pub layers: Vec<LayerTable>,
}

impl EnergyTable {
    /// A table with the network's layer names, weight counts and producers, and no entries yet.
    pub fn for_layers(layers: &[Layer]) -> EnergyTable {
        EnergyTable {
            layers: layers
                .iter()
                .map(|l| LayerTable {
                    name: l.name.clone(),
                    weights: l.weights,
                    producer: l.producer,
                    entries: Vec::new(),
                })
                .collect(),
        }
    }
}

/// The allowed bit-widths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitSets {
    /// Weight bits of every layer.
    pub weights: Vec<u32>,
    /// Activation bits between layers.
    pub activations: Vec<u32>,
    /// Bits of the network input (read by every layer without producer).
    pub first_input: u32,
    /// Bits of the last layer's output.
    pub last_output: u32,
}

impl Default for BitSets {
    /// The seed's: weights and activations in 2..=8, network input and output at 8 bits.
    fn default() -> Self {
        BitSets {
            weights: (2..=8).collect(),
            activations: (2..=8).collect(),
            first_input: 8,
            last_output: 8,
        }
    }
}

impl BitSets {
    /// Input bits a layer may read.
    pub fn input_bits(&self, producer: Option<usize>) -> Vec<u32> {
        match producer {
            None => vec![self.first_input],
            Some(_) => self.activations.clone(),
        }
    }

    /// Output bits a layer may write.
    pub fn output_bits(&self, is_last: bool) -> Vec<u32> {
        if is_last {
            vec![self.last_output]
        } else {
            self.activations.clone()
        }
    }

    /// Every bit configuration a layer may take (what the table needs for it).
    pub fn layer_configs(&self, producer: Option<usize>, is_last: bool) -> Vec<BitConfig> {
        let mut v = Vec::new();
        for &input_bits in &self.input_bits(producer) {
            for &weight_bits in &self.weights {
                for &output_bits in &self.output_bits(is_last) {
                    v.push(BitConfig {
                        input_bits,
                        weight_bits,
                        output_bits,
                    });
                }
            }
        }
        v
    }

    fn allows(&self, producer: Option<usize>, is_last: bool, b: BitConfig) -> bool {
        self.input_bits(producer).contains(&b.input_bits)
            && self.weights.contains(&b.weight_bits)
            && self.output_bits(is_last).contains(&b.output_bits)
    }
}

// ---------------------------------------------------------------------------------------------
// Accuracy models
// ---------------------------------------------------------------------------------------------

/// The kind of an accuracy model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccuracyKind {
    /// Per-layer deltas measured by the user.
    Table,
    /// HAWQ-style noise proxy: not a measured accuracy.
    Proxy,
}

impl AccuracyKind {
    /// How to name the accuracy column: `accuracy (table)` or `accuracy (proxy)`.
    pub fn label(self) -> &'static str {
        match self {
            AccuracyKind::Table => "accuracy (table)",
            AccuracyKind::Proxy => "accuracy (proxy)",
        }
    }
}

/// An accuracy model: accuracy = full-precision accuracy + Σ_l delta_l(weight bits, input bits).
#[derive(Debug, Clone)]
pub enum AccuracyModel {
    Table(AccuracyTable),
    Proxy(AccuracyProxy),
}

/// A layer's accuracy deltas: (weight bits, activation bits) → delta (percentage points).
pub type LayerDeltas = BTreeMap<(u32, u32), f64>;

/// Additive per-layer accuracy deltas (percentage points) per (weight bits, activation bits).
#[derive(Debug, Clone)]
pub struct AccuracyTable {
    pub full_precision_accuracy: f64,
    pub source: String,
    /// The file the deltas came from (errors name it).
    pub file: PathBuf,
    /// The field of `file` holding the deltas (`deltas`, or a CSV's rows).
    pub field: String,
    /// layer name → (weight bits, activation bits) → delta.
    pub deltas: BTreeMap<String, LayerDeltas>,
}

/// HAWQ-style proxy: delta_l = −(weight · 2^(−2·w) + activation · 2^(−2·a)).
#[derive(Debug, Clone)]
pub struct AccuracyProxy {
    pub full_precision_accuracy: f64,
    pub source: String,
    pub file: PathBuf,
    /// layer name → sensitivities.
    pub layers: BTreeMap<String, Sensitivity>,
}

/// A layer's proxy sensitivities (percentage points per unit noise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sensitivity {
    pub weight: f64,
    pub activation: f64,
}

/// The proxy's noise of a b-bit uniform quantizer, relative to its range (up to a constant): 2^(−2b).
pub fn quantization_noise(bits: u32) -> f64 {
    (-2.0 * bits as f64).exp2()
}

/// An accuracy file (YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccuracyFile {
    kind: AccuracyKind,
    /// Informational: the network the file is for.
    #[serde(default)]
    #[allow(dead_code)]
    network: Option<String>,
    full_precision_accuracy: f64,
    /// Where the numbers come from.
    source: String,
    /// Proxy: per-layer sensitivities.
    #[serde(default)]
    layers: Option<Vec<ProxyLayerSpec>>,
    /// Table: the deltas inline.
    #[serde(default)]
    deltas: Option<Vec<DeltaRow>>,
    /// Table: the deltas in a CSV file (relative to this file).
    #[serde(default)]
    deltas_csv: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyLayerSpec {
    name: String,
    weight_sensitivity: f64,
    activation_sensitivity: f64,
}

/// One row of an accuracy table (YAML `deltas` entry or CSV row with header
/// `layer,weight_bits,activation_bits,delta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaRow {
    pub layer: String,
    pub weight_bits: u32,
    pub activation_bits: u32,
    /// Accuracy change in percentage points (negative = loss).
    pub delta: f64,
}

impl AccuracyModel {
    /// Loads a YAML accuracy file (`kind: table` or `kind: proxy`); a table's deltas are inline
    /// (`deltas`) or in a CSV file (`deltas_csv`).
    pub fn load(path: &Path) -> Result<AccuracyModel, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        AccuracyModel::parse(path, &text)
    }

    /// Parses YAML text that came from `path` (relative CSV paths resolve against its folder).
    pub fn parse(path: &Path, text: &str) -> Result<AccuracyModel, InputError> {
        let f: AccuracyFile = spec::parse_yaml(path, text)?;
        let fp = f.full_precision_accuracy;
        if !fp.is_finite() || fp <= 0.0 || fp > 100.0 {
            return Err(InputError::new(
                path,
                "full_precision_accuracy",
                format!("must be a percentage in (0, 100], got {fp}"),
            ));
        }
        if f.source.trim().is_empty() {
            return Err(InputError::new(
                path,
                "source",
                "say where the numbers come from",
            ));
        }
        match f.kind {
            AccuracyKind::Proxy => {
                for (k, present) in [
                    ("deltas", f.deltas.is_some()),
                    ("deltas_csv", f.deltas_csv.is_some()),
                ] {
                    if present {
                        return Err(InputError::new(
                            path,
                            k,
                            "a proxy takes `layers`, not deltas",
                        ));
                    }
                }
                let specs = f.layers.ok_or_else(|| {
                    InputError::new(path, "layers", "a proxy needs per-layer sensitivities")
                })?;
                let mut layers = BTreeMap::new();
                for (i, l) in specs.iter().enumerate() {
                    for (k, v) in [
                        ("weight_sensitivity", l.weight_sensitivity),
                        ("activation_sensitivity", l.activation_sensitivity),
                    ] {
                        if !v.is_finite() || v < 0.0 {
                            return Err(InputError::new(
                                path,
                                format!("layers[{i}].{k}"),
                                format!("must be a finite number >= 0, got {v}"),
                            ));
                        }
                    }
                    let s = Sensitivity {
                        weight: l.weight_sensitivity,
                        activation: l.activation_sensitivity,
                    };
                    if layers.insert(l.name.clone(), s).is_some() {
                        return Err(InputError::new(
                            path,
                            format!("layers[{i}].name"),
                            format!("duplicate layer `{}`", l.name),
                        ));
                    }
                }
                Ok(AccuracyModel::Proxy(AccuracyProxy {
                    full_precision_accuracy: fp,
                    source: f.source,
                    file: path.to_path_buf(),
                    layers,
                }))
            }
            AccuracyKind::Table => {
                if f.layers.is_some() {
                    return Err(InputError::new(
                        path,
                        "layers",
                        "a table takes `deltas` or `deltas_csv`, not sensitivities",
                    ));
                }
                match (f.deltas, f.deltas_csv) {
                    (Some(rows), None) => {
                        let deltas = collect_deltas(path, "deltas", rows.into_iter().map(Ok))?;
                        Ok(AccuracyModel::Table(AccuracyTable {
                            full_precision_accuracy: fp,
                            source: f.source,
                            file: path.to_path_buf(),
                            field: "deltas".into(),
                            deltas,
                        }))
                    }
                    (None, Some(csv)) => {
                        let dir = path.parent().unwrap_or(Path::new("."));
                        AccuracyModel::table_from_csv(&dir.join(csv), fp, &f.source)
                    }
                    (Some(_), Some(_)) => Err(InputError::new(
                        path,
                        "deltas_csv",
                        "give `deltas` or `deltas_csv`, not both",
                    )),
                    (None, None) => Err(InputError::new(
                        path,
                        "deltas",
                        "a table needs `deltas` (inline) or `deltas_csv` (a file)",
                    )),
                }
            }
        }
    }

    /// Reads a CSV table with header `layer,weight_bits,activation_bits,delta` (`#` starts a
    /// comment line); the full-precision accuracy and the source are given by the caller.
    pub fn table_from_csv(
        path: &Path,
        full_precision_accuracy: f64,
        source: &str,
    ) -> Result<AccuracyModel, InputError> {
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        let headers = rdr
            .headers()
            .map_err(|e| InputError::new(path, "(header)", e.to_string()))?
            .clone();
        let rows = rdr.deserialize::<DeltaRow>().map(|r| {
            r.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let field = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => {
                        match err.field().and_then(|i| headers.get(i as usize)) {
                            Some(h) => format!("line {line}: {h}"),
                            None => format!("line {line}"),
                        }
                    }
                    _ => format!("line {line}"),
                };
                let msg = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
                    _ => e.to_string(),
                };
                InputError::new(path, field, msg)
            })
        });
        let deltas = collect_deltas(path, "rows", rows)?;
        Ok(AccuracyModel::Table(AccuracyTable {
            full_precision_accuracy,
            source: source.to_string(),
            file: path.to_path_buf(),
            field: "rows".into(),
            deltas,
        }))
    }

    pub fn kind(&self) -> AccuracyKind {
        match self {
            AccuracyModel::Table(_) => AccuracyKind::Table,
            AccuracyModel::Proxy(_) => AccuracyKind::Proxy,
        }
    }

    /// `accuracy (table)` or `accuracy (proxy)`.
    pub fn label(&self) -> &'static str {
        self.kind().label()
    }

    pub fn full_precision_accuracy(&self) -> f64 {
        match self {
            AccuracyModel::Table(t) => t.full_precision_accuracy,
            AccuracyModel::Proxy(p) => p.full_precision_accuracy,
        }
    }

    pub fn source(&self) -> &str {
        match self {
            AccuracyModel::Table(t) => &t.source,
            AccuracyModel::Proxy(p) => &p.source,
        }
    }

    pub fn file(&self) -> &Path {
        match self {
            AccuracyModel::Table(t) => &t.file,
            AccuracyModel::Proxy(p) => &p.file,
        }
    }

    /// Layer names the model covers.
    pub fn layer_names(&self) -> Vec<&str> {
        match self {
            AccuracyModel::Table(t) => t.deltas.keys().map(String::as_str).collect(),
            AccuracyModel::Proxy(p) => p.layers.keys().map(String::as_str).collect(),
        }
    }

    /// The accuracy delta of layer `layer` at `weight_bits` and input `activation_bits`; None
    /// when the model has no value for it.
    pub fn delta(&self, layer: &str, weight_bits: u32, activation_bits: u32) -> Option<f64> {
        match self {
            AccuracyModel::Table(t) => t
                .deltas
                .get(layer)
                .and_then(|m| m.get(&(weight_bits, activation_bits)))
                .copied(),
            AccuracyModel::Proxy(p) => p.layers.get(layer).map(|s| {
                -(s.weight * quantization_noise(weight_bits)
                    + s.activation * quantization_noise(activation_bits))
            }),
        }
    }

    /// The field of the model's file that per-layer values live in (for error messages).
    fn layers_field(&self) -> &str {
        match self {
            AccuracyModel::Table(t) => &t.field,
            AccuracyModel::Proxy(_) => "layers",
        }
    }
}

fn collect_deltas(
    path: &Path,
    field: &str,
    rows: impl Iterator<Item = Result<DeltaRow, InputError>>,
) -> Result<BTreeMap<String, LayerDeltas>, InputError> {
    let mut deltas: BTreeMap<String, LayerDeltas> = BTreeMap::new();
    for (i, r) in rows.enumerate() {
        let r = r?;
        let at = |k: &str| format!("{field}[{i}].{k}");
        if !r.delta.is_finite() {
            return Err(InputError::new(
                path,
                at("delta"),
                "must be a finite number",
            ));
        }
        for (k, b) in [
            ("weight_bits", r.weight_bits),
            ("activation_bits", r.activation_bits),
        ] {
            if b == 0 {
                return Err(InputError::new(path, at(k), "must be > 0"));
            }
        }
        let m = deltas.entry(r.layer.clone()).or_default();
        if m.insert((r.weight_bits, r.activation_bits), r.delta)
            .is_some()
        {
            return Err(InputError::new(
                path,
                format!("{field}[{i}]"),
                format!(
                    "duplicate row for layer `{}`, weight_bits {}, activation_bits {}",
                    r.layer, r.weight_bits, r.activation_bits
                ),
            ));
        }
    }
    if deltas.is_empty() {
        return Err(InputError::new(path, field, "no rows"));
    }
    Ok(deltas)
}

// ---------------------------------------------------------------------------------------------
// The selection problem
// ---------------------------------------------------------------------------------------------

/// One selectable entry of a layer, with its totals.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    entry: usize,
    bits: BitConfig,
    energy_pj: f64,
    cycles: u64,
    delta: f64,
    memory_bytes: f64,
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

const CRITERIA: [Criterion; 4] = [
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

    fn index(self) -> usize {
        self as usize
    }

    /// The candidate's contribution to the cost (accuracy: −delta; the constant −full precision
    /// is added by the caller).
    fn of(self, c: &Candidate) -> f64 {
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
    names: Vec<String>,
    producers: Vec<Option<usize>>,
    cands: Vec<Vec<Candidate>>,
    full_precision_accuracy: f64,
    accuracy_kind: AccuracyKind,
    bits: BitSets,
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
            let is_last = i + 1 == n;
            let mut v = Vec::new();
            for (e, t) in l.entries.iter().enumerate() {
                if !t.energy_pj.is_finite() || !bits.allows(l.producer, is_last, t.bits) {
                    continue;
                }
                let b = t.bits;
                let delta = accuracy
                    .delta(&l.name, b.weight_bits, b.input_bits)
                    .ok_or_else(|| {
                        InputError::new(
                            file,
                            field,
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
            full_precision_accuracy: accuracy.full_precision_accuracy(),
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

    /// The point of a selection from [`for_each_selection`] (status `evaluated`).
    pub fn point_of(&self, selection: &[usize]) -> FrontPoint {
        self.point(selection, PointStatus::Evaluated)
    }

    /// The point of a selection: `choice[l]` indexes layer l's selectable entries.
    fn point(&self, choice: &[usize], status: PointStatus) -> FrontPoint {
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

    /// The costs (minimisation sense, indexed like [`CRITERIA`]) of a selection, summed in the
    /// same order as [`SelectionProblem::point`] so that both give identical numbers.
    fn costs_of(&self, choice: &[usize]) -> [f64; 4] {
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
    fn choice_for(&self, bits: &[(u32, u32)]) -> Result<Vec<usize>, usize> {
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
    fn prune(&self, criteria: &[Criterion], tiebreak: &[Criterion]) -> Vec<Vec<usize>> {
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

// ---------------------------------------------------------------------------------------------
// The selection MILP
// ---------------------------------------------------------------------------------------------

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
    fn bounds(&self) -> Vec<(Criterion, f64)> {
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

    fn criteria(&self) -> Vec<Criterion> {
        self.bounds().into_iter().map(|(c, _)| c).collect()
    }
}

/// What [`select`] minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Total energy (ties: higher accuracy).
    Energy,
    /// Total cycles (ties: lower energy).
    Latency,
}

/// Feasibility and integrality tolerance given to HiGHS (coefficients are scaled to ≤ 1).
const HIGHS_TOLERANCE: f64 = 1e-9;
/// Relative tolerance on a criterion fixed by an earlier lexicographic stage.
const LEX_REL_TOL: f64 = 1e-9;

/// Iterations of the dual (cutting-plane) search of the Lagrangian reduction.
const MAX_DUAL_ITERATIONS: usize = 200;
/// Box on the multipliers of the cutting-plane master (coefficients are scaled to ≤ 1).
const MAX_MULTIPLIER: f64 = 1e6;

/// Kelley's master LP: maximise z subject to z ≤ f + Σ_i λ_i g_i for every cut (f, g), 0 ≤ λ ≤
/// [`MAX_MULTIPLIER`]. Returns (z, λ), None if HiGHS fails.
fn kelley_master(cuts: &[(f64, [f64; 4])], cons: &[usize]) -> Option<(f64, [f64; 4])> {
    let mut rp = RowProblem::default();
    let z = rp.add_column(1.0, f64::NEG_INFINITY..f64::INFINITY);
    let lam: Vec<highs::Col> = cons
        .iter()
        .map(|_| rp.add_column(0.0, 0.0..=MAX_MULTIPLIER))
        .collect();
    for (f, g) in cuts {
        let mut row = vec![(z, 1.0)];
        for (k, &i) in cons.iter().enumerate() {
            row.push((lam[k], -g[i]));
        }
        rp.add_row(..=*f, row);
    }
    let mut model = rp.try_optimise(Sense::Maximise).ok()?;
    model.make_quiet();
    model.set_option("threads", 1);
    let solved = model.try_solve().ok()?;
    if solved.status() != HighsModelStatus::Optimal {
        return None;
    }
    let x = solved.get_solution();
    let x = x.columns();
    let mut out = [0.0; 4];
    for (k, &i) in cons.iter().enumerate() {
        out[i] = x[1 + k].max(0.0);
    }
    Some((x[0], out))
}

/// Candidates per layer up to which a MILP is solved directly; beyond, a restricted MILP over
/// the candidates of smallest reduced cost comes first.
const RESTRICTED_PER_LAYER: usize = 3;

/// The Lagrangian bound of one solve (see [`Milp::reduce`]).
struct Reduction {
    bound: f64,
    /// Per layer and kept candidate: reduced cost (scaled units, ≥ 0 up to rounding).
    reduced: Vec<Vec<f64>>,
    /// The best feasible selection met and its scaled objective.
    incumbent: Option<(f64, Vec<usize>)>,
    /// The multipliers of `bound` and Σ λ·rhs (scaled units).
    lam: [f64; 4],
    lam_rhs: f64,
    /// The dynamic program at weights λ + objective (its `down` bounds completions).
    lagrangian: Dp,
    /// Per bounded criterion: the dynamic program minimising it alone.
    single: [Option<Dp>; 4],
}

/// Labels per layer beyond which [`Milp::label_search`] gives up by default
/// ([`FrontOptions::max_labels`]).
const MAX_LABELS: usize = 1 << 20;

/// A partial selection of [`Milp::label_search`].
#[derive(Debug, Clone, Copy)]
struct Label {
    /// Σ energy, Σ delta, Σ memory (in layer order) and the cycles as f64.
    sums: [f64; 4],
    cycles: u64,
    /// Output bit index of each open layer, 8 bits per slot.
    key: u128,
    /// Index of the label it extends (previous layer) and the kept candidate it adds.
    parent: u32,
    cand: u32,
}

impl Label {
    /// The sum of criterion `i` in minimisation sense (accuracy: −Σ delta).
    fn cost(&self, i: usize) -> f64 {
        if i == 1 {
            -self.sums[1]
        } else {
            self.sums[i]
        }
    }
}

/// The labels not weakly dominated, within their state, in the criteria `dims` (of two equal
/// ones, one is kept). Sorted lexicographically, a label can only be dominated by an earlier
/// one: with two criteria, by the least second criterion so far; with three, by the staircase of
/// the (second, third) pairs so far; beyond, by any label kept so far.
fn dominance_filter(mut labels: Vec<Label>, dims: &[usize]) -> Vec<Label> {
    labels.sort_unstable_by(|a, b| {
        a.key.cmp(&b.key).then_with(|| {
            dims.iter()
                .map(|&i| a.cost(i).total_cmp(&b.cost(i)))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        })
    });
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    let mut group = 0;
    // Three criteria: second → third, the second increasing and the third decreasing.
    let mut stairs: BTreeMap<OrdF64, f64> = BTreeMap::new();
    for lab in labels {
        if out.get(group).is_none_or(|g| g.key != lab.key) {
            group = out.len();
            stairs.clear();
        } else {
            let dominated = match dims.len() {
                1 => true,
                2 => lab.cost(dims[1]) >= out[out.len() - 1].cost(dims[1]),
                3 => stairs
                    .range(..=OrdF64(lab.cost(dims[1])))
                    .next_back()
                    .is_some_and(|(_, &z)| z <= lab.cost(dims[2])),
                _ => out[group..]
                    .iter()
                    .any(|k| dims.iter().all(|&i| k.cost(i) <= lab.cost(i))),
            };
            if dominated {
                continue;
            }
        }
        if dims.len() == 3 {
            let (y, z) = (lab.cost(dims[1]), lab.cost(dims[2]));
            // Steps at or after y with a third criterion ≥ z are now dominated.
            let gone: Vec<OrdF64> = stairs
                .range(OrdF64(y)..)
                .take_while(|(_, &w)| w >= z)
                .map(|(k, _)| *k)
                .collect();
            for k in gone {
                stairs.remove(&k);
            }
            stairs.insert(OrdF64(y), z);
        }
        out.push(lab);
    }
    out
}

/// An f64 ordered by [`f64::total_cmp`].
#[derive(Debug, Clone, Copy)]
struct OrdF64(f64);

impl PartialEq for OrdF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Multiples of the Lagrangian multipliers whose bounds [`Milp::label_search`] also applies.
const LABEL_MULTIPLIER_FACTORS: [f64; 5] = [1.0, 0.0, 0.5, 2.0, 4.0];

/// One layer of [`Milp::label_search`]: where its producer's output bits sit in the previous
/// state (None: it reads the network input), where each slot of the new state comes from (None:
/// this layer's output bits), per slot the consumers not chosen yet (whose subtrees complete the
/// selection with the roots not reached yet).
struct Step {
    input_slot: Option<usize>,
    from: Vec<Option<usize>>,
    pending: Vec<Vec<usize>>,
    roots_after: Vec<usize>,
}

/// The best completion of a label after a step by one dynamic program: a constant (the roots not
/// reached yet) plus, per slot of the state, a value per output bit index.
struct Completion {
    base: f64,
    per_slot: Vec<Vec<f64>>,
}

impl Completion {
    fn new(dp: &Dp, st: &Step, scale: f64) -> Completion {
        let base = st
            .roots_after
            .iter()
            .map(|&r| dp.down[r].iter().map(|d| d.0).fold(f64::INFINITY, f64::min))
            .sum::<f64>()
            * scale;
        let per_slot = st
            .pending
            .iter()
            .map(|cs| {
                (0..dp.down.first().map_or(0, Vec::len))
                    .map(|b| cs.iter().map(|&c| dp.down[c][b].0).sum::<f64>() * scale)
                    .collect()
            })
            .collect();
        Completion { base, per_slot }
    }

    fn at(&self, key: u128) -> f64 {
        let mut v = self.base;
        for (s, t) in self.per_slot.iter().enumerate() {
            v += t[key_slot(key, s)];
        }
        v
    }
}

fn key_slot(key: u128, s: usize) -> usize {
    ((key >> (8 * s)) & 0xff) as usize
}

/// The complete feasible selections of a label search (costs, selection) and the objective
/// value up to which they are all there (up to dominance): later lexicographic stages whose
/// bound on that objective is within it are answered from the pool.
struct Pool {
    objective: Criterion,
    covered: f64,
    selections: Vec<([f64; 4], Vec<usize>)>,
}

/// Outcome of one solve.
enum Solve {
    Found(Vec<usize>, PointStatus),
    Infeasible,
    /// Time limit without a feasible solution.
    Unknown,
}

/// The selection MILP over a pruned problem, with its solve counters and a cache of solved
/// bound sets.
struct Milp<'a> {
    pb: &'a SelectionProblem,
    /// Per layer, the candidates kept by pruning.
    kept: Vec<Vec<usize>>,
    /// Per criterion, the largest |coefficient| (coefficients are divided by it).
    scale: [f64; 4],
    /// Per criterion, layer and kept candidate: the scaled coefficient.
    coef: [Vec<Vec<f64>>; 4],
    /// Per layer and kept candidate: (input bit index, output bit index).
    io: Vec<Vec<(usize, usize)>>,
    nbits: usize,
    children: Vec<Vec<usize>>,
    roots: Vec<usize>,
    time_limit: Option<f64>,
    /// Labels per layer beyond which the label search gives up (the MILP takes over).
    max_labels: usize,
    solves: usize,
    cache_hits: usize,
    /// Lexicographic solves proved optimal (or infeasible).
    cache: Vec<CacheEntry>,
    /// Per objective: the gap between the Lagrangian bound and the optimum in the last label
    /// search (where the next search starts its target).
    label_gap: [Option<f64>; 4],
    /// The pool of the last stage's label search.
    pool: Option<Pool>,
}

/// A solved lexicographic problem: its upper bounds per criterion, its order, its outcome
/// (None: infeasible).
struct CacheEntry {
    ub: [f64; 4],
    lex: Vec<Criterion>,
    outcome: Option<Vec<usize>>,
}

/// The inside pass of the tree dynamic program over one cost per kept candidate.
#[derive(Clone)]
struct Dp {
    /// Cost of a candidate plus the best of its consumers' subtrees.
    inside: Vec<Vec<f64>>,
    /// Per layer and input bit index: the best inside cost and its candidate (kept index).
    down: Vec<Vec<(f64, usize)>>,
    /// Best total over the whole network.
    total: f64,
}

impl<'a> Milp<'a> {
    fn new(
        pb: &'a SelectionProblem,
        kept: Vec<Vec<usize>>,
        time_limit: Option<f64>,
        max_labels: usize,
    ) -> Self {
        let mut scale = [0.0f64; 4];
        for cs in &pb.cands {
            for c in cs {
                for k in CRITERIA {
                    scale[k.index()] = scale[k.index()].max(k.of(c).abs());
                }
            }
        }
        for s in &mut scale {
            if *s == 0.0 {
                *s = 1.0;
            }
        }
        let coef = CRITERIA.map(|c| {
            kept.iter()
                .enumerate()
                .map(|(l, ks)| {
                    ks.iter()
                        .map(|&k| c.of(&pb.cands[l][k]) / scale[c.index()])
                        .collect()
                })
                .collect()
        });
        let mut values: Vec<u32> = pb
            .cands
            .iter()
            .flatten()
            .flat_map(|c| [c.bits.input_bits, c.bits.output_bits])
            .collect();
        values.sort_unstable();
        values.dedup();
        let idx = |b: u32| values.binary_search(&b).expect("collected above");
        let io = kept
            .iter()
            .enumerate()
            .map(|(l, ks)| {
                ks.iter()
                    .map(|&k| {
                        let b = pb.cands[l][k].bits;
                        (idx(b.input_bits), idx(b.output_bits))
                    })
                    .collect()
            })
            .collect();
        let n = pb.cands.len();
        let mut children = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for l in 0..n {
            match pb.producers[l] {
                Some(p) => children[p].push(l),
                None => roots.push(l),
            }
        }
        Milp {
            pb,
            kept,
            scale,
            coef,
            io,
            nbits: values.len(),
            children,
            roots,
            time_limit,
            max_labels,
            solves: 0,
            cache_hits: 0,
            cache: Vec::new(),
            label_gap: [None; 4],
            pool: None,
        }
    }

    fn offset(&self, c: Criterion) -> f64 {
        if c == Criterion::Accuracy {
            -self.pb.full_precision_accuracy
        } else {
            0.0
        }
    }

    /// The tree dynamic program (producers before consumers; a consumer's input bits equal its
    /// producer's output bits) minimising Σ weights[c] · coef[c] over chained selections.
    fn dp(&self, weights: &[f64; 4]) -> Dp {
        let n = self.kept.len();
        let mut inside: Vec<Vec<f64>> = vec![Vec::new(); n];
        let mut down = vec![vec![(f64::INFINITY, usize::MAX); self.nbits]; n];
        for l in (0..n).rev() {
            let mut v = Vec::with_capacity(self.kept[l].len());
            for (j, &(bi, bo)) in self.io[l].iter().enumerate() {
                let mut c = 0.0;
                for (t, w) in weights.iter().enumerate() {
                    if *w != 0.0 {
                        c += w * self.coef[t][l][j];
                    }
                }
                for &ch in &self.children[l] {
                    c += down[ch][bo].0;
                }
                if c < down[l][bi].0 {
                    down[l][bi] = (c, j);
                }
                v.push(c);
            }
            inside[l] = v;
        }
        let total = self
            .roots
            .iter()
            .map(|&r| down[r].iter().map(|d| d.0).fold(f64::INFINITY, f64::min))
            .sum();
        Dp {
            inside,
            down,
            total,
        }
    }

    /// The selection (candidate index per layer) achieving `dp.total`.
    fn dp_argmin(&self, dp: &Dp) -> Option<Vec<usize>> {
        let n = self.kept.len();
        let mut pick = vec![usize::MAX; n];
        for l in 0..n {
            let j = match self.pb.producers[l] {
                None => dp.down[l]
                    .iter()
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|d| d.1)?,
                Some(p) => dp.down[l][self.io[p][pick[p]].1].1,
            };
            if j == usize::MAX {
                return None;
            }
            pick[l] = j;
        }
        Some(
            pick.iter()
                .enumerate()
                .map(|(l, &j)| self.kept[l][j])
                .collect(),
        )
    }

    /// Per layer and kept candidate: the best total of a chained selection through it.
    fn dp_through(&self, dp: &Dp) -> Vec<Vec<f64>> {
        let n = self.kept.len();
        let mut outside = vec![vec![f64::INFINITY; self.nbits]; n];
        let root_best = |r: usize| dp.down[r].iter().map(|d| d.0).fold(f64::INFINITY, f64::min);
        for &r in &self.roots {
            let rest = dp.total - root_best(r);
            outside[r] = vec![rest; self.nbits];
        }
        for l in 0..n {
            for &ch in &self.children[l] {
                for (j, &(bi, bo)) in self.io[l].iter().enumerate() {
                    let sub = dp.down[ch][bo].0;
                    if !sub.is_finite() {
                        continue;
                    }
                    let v = outside[l][bi] + dp.inside[l][j] - sub;
                    if v < outside[ch][bo] {
                        outside[ch][bo] = v;
                    }
                }
            }
        }
        (0..n)
            .map(|l| {
                self.io[l]
                    .iter()
                    .enumerate()
                    .map(|(j, &(bi, _))| outside[l][bi] + dp.inside[l][j])
                    .collect()
            })
            .collect()
    }

    /// Lagrangian bound of one solve: with multipliers λ ≥ 0 on the bounds, every feasible
    /// selection through a candidate costs at least `bound` + its reduced cost (the best
    /// λ-weighted total through it − Σ λ·bound − `bound`), all in scaled units. Also returns the
    /// best feasible selection met (`incumbent` or a dynamic-program minimiser). None when some
    /// bound alone is infeasible.
    fn reduce(
        &self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        incumbent: Option<&[usize]>,
    ) -> Option<Reduction> {
        // Bounds on scaled sums (the accuracy offset moved to the right-hand side).
        let mut rhs = [f64::INFINITY; 4];
        let mut ub = [f64::INFINITY; 4];
        for &(c, v) in bounds {
            let i = c.index();
            ub[i] = ub[i].min(v);
            rhs[i] = rhs[i].min((v - self.offset(c)) / self.scale[i]);
        }
        let cons: Vec<usize> = (0..4).filter(|&i| rhs[i].is_finite()).collect();
        let mut single: [Option<Dp>; 4] = [None, None, None, None];
        for &i in &cons {
            let mut w = [0.0; 4];
            w[i] = 1.0;
            let dp = self.dp(&w);
            if dp.total > rhs[i] + 1e-9 * rhs[i].abs().max(1.0) {
                return None;
            }
            single[i] = Some(dp);
        }
        let o = objective.index();
        let feasible = |sel: &[usize]| {
            let v = self.pb.costs_of(sel);
            (0..4).all(|i| v[i] <= ub[i])
        };
        let value =
            |sel: &[usize]| (self.pb.costs_of(sel)[o] - self.offset(objective)) / self.scale[o];
        let mut best: Option<(f64, Vec<usize>)> = incumbent
            .filter(|s| feasible(s))
            .map(|s| (value(s), s.to_vec()));
        // Maximise the concave dual L(λ) = min over selections of (objective + Σ λ·(bound sum −
        // bound)) by Kelley's cutting planes: each dynamic-program minimiser is a cut, and a
        // small LP (HiGHS) over the cuts gives the next λ. Any λ ≥ 0 gives a valid bound.
        let mut lam = [0.0f64; 4];
        let mut best_bound = (f64::NEG_INFINITY, lam);
        let mut cuts: Vec<(f64, [f64; 4])> = Vec::new();
        for _ in 0..MAX_DUAL_ITERATIONS {
            let mut w = lam;
            w[o] += 1.0;
            let dp = self.dp(&w);
            if dp.total == f64::INFINITY {
                // No chained selection at all.
                return None;
            }
            let bound = dp.total - cons.iter().map(|&i| lam[i] * rhs[i]).sum::<f64>();
            if bound > best_bound.0 {
                best_bound = (bound, lam);
            }
            let Some(sel) = self.dp_argmin(&dp) else {
                break;
            };
            let v = self.pb.costs_of(&sel);
            let mut g = [0.0; 4];
            for &i in &cons {
                g[i] = (v[i] - self.offset(CRITERIA[i])) / self.scale[i] - rhs[i];
            }
            let f = value(&sel);
            if feasible(&sel) && best.as_ref().is_none_or(|b| f < b.0) {
                best = Some((f, sel));
            }
            if cons.is_empty() {
                break;
            }
            cuts.push((f, g));
            let Some((z, next)) = kelley_master(&cuts, &cons) else {
                break;
            };
            if z - best_bound.0 <= 1e-10 * z.abs().max(1.0) {
                break;
            }
            lam = next;
        }
        let lam = best_bound.1;
        let mut w = lam;
        w[o] += 1.0;
        let lagrangian = self.dp(&w);
        let through = self.dp_through(&lagrangian);
        let lam_rhs: f64 = cons.iter().map(|&i| lam[i] * rhs[i]).sum();
        let shift = lam_rhs + best_bound.0;
        let reduced = through
            .iter()
            .map(|t| t.iter().map(|v| v - shift).collect())
            .collect();
        Some(Reduction {
            bound: best_bound.0,
            reduced,
            incumbent: best,
            lam,
            lam_rhs,
            lagrangian,
            single,
        })
    }

    /// The kept candidates with reduced cost ≤ `gap` (indices into the problem's candidates).
    fn within(&self, red: &Reduction, gap: f64) -> Vec<Vec<usize>> {
        red.reduced
            .iter()
            .enumerate()
            .map(|(l, r)| {
                r.iter()
                    .enumerate()
                    .filter(|(_, v)| **v <= gap)
                    .map(|(j, _)| self.kept[l][j])
                    .collect()
            })
            .collect()
    }

    /// Exact search for one stage: a label-setting dynamic program over the layers in order. A
    /// label is a partial selection of layers 0..=l: its sums (energy, Σ delta, memory, cycles,
    /// added in layer order exactly as [`SelectionProblem::costs_of`] adds them) and the output
    /// bits of the layers whose consumers are not all chosen yet (its state). Labels are dropped
    /// when a bounded sum cannot be met by the best completion (single-criterion dynamic
    /// programs), when a Lagrangian bound (λ-weighted sums plus the best λ-weighted completion,
    /// for λ the multipliers of `red` and a few multiples of them) exceeds a target, and when
    /// another label of the same state is at least as good in the objective, every bounded
    /// criterion and every criterion of `later` (the next lexicographic stages). Every selection
    /// whose objective is within the target survives (or one as good in all those criteria), so
    /// the best complete feasible label is optimal if it meets the target; the target starts just
    /// above the Lagrangian bound (at the gap the previous search of this objective needed) and
    /// doubles its distance to the bound, up to the best feasible selection met. Returns the outcome and the pool of complete feasible labels
    /// with the objective value up to which it is complete; None when the labels outgrow
    /// [`MAX_LABELS`] or the state does not fit (the MILP takes over).
    fn label_search(
        &mut self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        red: &Reduction,
        later: &[Criterion],
    ) -> Option<(Solve, Option<Pool>)> {
        let n = self.kept.len();
        let o = objective.index();
        let fp = self.pb.full_precision_accuracy;
        // Bounds on the costs and on the sums in minimisation sense (energy, −Σ delta, memory,
        // cycles).
        let mut ub = [f64::INFINITY; 4];
        for &(c, v) in bounds {
            ub[c.index()] = ub[c.index()].min(v);
        }
        let mut sum_ub = ub;
        sum_ub[Criterion::Accuracy.index()] += fp;
        let cons: Vec<usize> = (0..4).filter(|&i| ub[i].is_finite()).collect();
        let slack = |v: f64| 1e-9 * v.abs().max(1.0);
        let steps = self.label_steps()?;
        // Per layer and input bit index: the kept candidates.
        let by_input: Vec<Vec<Vec<usize>>> = self
            .io
            .iter()
            .map(|io| {
                let mut v = vec![Vec::new(); self.nbits];
                for (j, &(bi, _)) in io.iter().enumerate() {
                    v[bi].push(j);
                }
                v
            })
            .collect();
        // The Lagrangian bounds: λ and a few multiples (each λ ≥ 0 gives a valid bound; the
        // best λ of a partial selection is not the best λ of the whole).
        let mut lagrangians: Vec<([f64; 4], f64, Dp)> = Vec::new();
        for f in LABEL_MULTIPLIER_FACTORS {
            let mut w = red.lam.map(|x| x * f);
            w[o] += 1.0;
            let lam_rhs = red.lam_rhs * f;
            let dp = if f == 1.0 {
                red.lagrangian.clone()
            } else if cons.iter().all(|&i| red.lam[i] == 0.0) {
                continue;
            } else {
                self.dp(&w)
            };
            let scaled: [f64; 4] = std::array::from_fn(|t| w[t] / self.scale[t]);
            lagrangians.push((scaled, lam_rhs, dp));
        }
        // Dominance over the objective, the bounded criteria and the later stages' criteria.
        let mut dims = vec![o];
        for i in cons.iter().copied().chain(later.iter().map(|c| c.index())) {
            if !dims.contains(&i) {
                dims.push(i);
            }
        }
        let mut inc = red.incumbent.as_ref().map(|(u, _)| *u);
        let mut delta = match self.label_gap[o] {
            Some(g) => 1.25 * g,
            None => 1e-6 * red.bound.abs().max(1.0),
        }
        .max(1e-9 * red.bound.abs().max(1.0));
        loop {
            let target = match inc {
                Some(u) if red.bound + delta >= u => u,
                _ => red.bound + delta,
            };
            let limit = target + slack(target);
            let mut pruned = false;
            let mut layers: Vec<Vec<Label>> = Vec::with_capacity(n);
            let mut prev = vec![Label {
                sums: [0.0; 4],
                cycles: 0,
                key: 0,
                parent: 0,
                cand: 0,
            }];
            for (l, st) in steps.iter().enumerate() {
                // Completion bounds of this step: per bounded criterion (raw units) and per λ.
                let feas: Vec<(usize, Completion)> = cons
                    .iter()
                    .map(|&i| {
                        let dp = red.single[i].as_ref().expect("a bounded criterion");
                        (i, Completion::new(dp, st, self.scale[i]))
                    })
                    .collect();
                let lag: Vec<Completion> = lagrangians
                    .iter()
                    .map(|(_, _, dp)| Completion::new(dp, st, 1.0))
                    .collect();
                let mut next: Vec<Label> = Vec::new();
                for (pi, lab) in prev.iter().enumerate() {
                    let bi = match st.input_slot {
                        Some(s) => key_slot(lab.key, s),
                        None => self.io[l].first().map_or(0, |x| x.0),
                    };
                    for &j in &by_input[l][bi] {
                        let c = &self.pb.cands[l][self.kept[l][j]];
                        let mut key = 0u128;
                        for (s, f) in st.from.iter().enumerate() {
                            let b = match f {
                                Some(f) => key_slot(lab.key, *f),
                                None => self.io[l][j].1,
                            };
                            key |= (b as u128) << (8 * s);
                        }
                        let mut sums = lab.sums;
                        sums[0] += c.energy_pj;
                        sums[1] += c.delta;
                        sums[2] += c.memory_bytes;
                        let cycles = lab.cycles + c.cycles;
                        sums[3] = cycles as f64;
                        // Sums in minimisation sense (accuracy: −Σ delta).
                        let cost = [sums[0], -sums[1], sums[2], sums[3]];
                        if feas.iter().any(|(i, comp)| {
                            cost[*i] + comp.at(key) > sum_ub[*i] + slack(sum_ub[*i])
                        }) {
                            continue;
                        }
                        if lagrangians.iter().zip(&lag).any(|((w, lam_rhs, _), comp)| {
                            (0..4).map(|t| w[t] * cost[t]).sum::<f64>() + comp.at(key) - lam_rhs
                                > limit
                        }) {
                            pruned = true;
                            continue;
                        }
                        next.push(Label {
                            sums,
                            cycles,
                            key,
                            parent: pi as u32,
                            cand: j as u32,
                        });
                    }
                }
                let next = dominance_filter(next, &dims);
                if next.len() > self.max_labels {
                    return None;
                }
                layers.push(std::mem::replace(&mut prev, next));
            }
            layers.remove(0);
            layers.push(prev);
            // The complete feasible labels (costs exactly as `costs_of`) and the best.
            let mut pool: Vec<([f64; 4], usize)> = Vec::new();
            for (k, lab) in layers[n - 1].iter().enumerate() {
                let v = [
                    lab.sums[0],
                    -(fp + lab.sums[1]),
                    lab.sums[2],
                    lab.cycles as f64,
                ];
                if (0..4).all(|i| v[i] <= ub[i]) {
                    pool.push((v, k));
                }
            }
            let value = |v: &[f64; 4]| (v[o] - self.offset(objective)) / self.scale[o];
            let best = pool
                .iter()
                .min_by(|a, b| a.0[o].total_cmp(&b.0[o]).then_with(|| lex_cmp(&a.0, &b.0)));
            let done = match best {
                Some((v, _)) => value(v) <= target || !pruned,
                None => !pruned,
            };
            if done {
                let Some(&(v, k)) = best else {
                    return Some((Solve::Infeasible, None));
                };
                self.label_gap[o] = Some((value(&v) - red.bound).max(0.0));
                let selection = |k: usize| {
                    let mut sel = vec![0; n];
                    let mut at = k;
                    for l in (0..n).rev() {
                        let lab = &layers[l][at];
                        sel[l] = self.kept[l][lab.cand as usize];
                        at = lab.parent as usize;
                    }
                    sel
                };
                let covered = if pruned {
                    target * self.scale[o] + self.offset(objective)
                } else {
                    f64::INFINITY
                };
                let pool = Pool {
                    objective,
                    covered,
                    selections: pool.iter().map(|&(v, k)| (v, selection(k))).collect(),
                };
                return Some((Solve::Found(selection(k), PointStatus::Optimal), Some(pool)));
            }
            if inc.is_some_and(|u| target >= u) {
                // Cannot happen (the incumbent survives); let the MILP decide.
                return None;
            }
            if let Some((v, _)) = best {
                // A feasible selection beyond the target: the next target need not exceed it.
                inc = Some(inc.map_or(value(v), |u| u.min(value(v))));
            }
            delta *= 2.0;
        }
    }

    /// The steps of [`Milp::label_search`] (one per layer); None when more than 16 layers are
    /// open at once or there are more than 255 bit values.
    fn label_steps(&self) -> Option<Vec<Step>> {
        let n = self.kept.len();
        if self.nbits > 255 {
            return None;
        }
        let mut last_child = vec![None; n];
        for (l, p) in self.pb.producers.iter().enumerate() {
            if let Some(p) = *p {
                last_child[p] = Some(l);
            }
        }
        // The open layers (a layer is open from itself to its last consumer).
        let mut open: Vec<usize> = Vec::new();
        let mut steps = Vec::with_capacity(n);
        for l in 0..n {
            let input_slot = match self.pb.producers[l] {
                Some(p) => Some(open.iter().position(|&x| x == p)?),
                None => None,
            };
            let mut next: Vec<usize> = open
                .iter()
                .copied()
                .filter(|&p| last_child[p].is_some_and(|c| c > l))
                .collect();
            if last_child[l].is_some() {
                next.push(l);
            }
            if next.len() > 16 {
                return None;
            }
            let from = next
                .iter()
                .map(|&x| open.iter().position(|&y| y == x))
                .collect();
            let pending = next
                .iter()
                .map(|&p| {
                    self.children[p]
                        .iter()
                        .copied()
                        .filter(|&c| c > l)
                        .collect()
                })
                .collect();
            let roots_after = self.roots.iter().copied().filter(|&r| r > l).collect();
            steps.push(Step {
                input_slot,
                from,
                pending,
                roots_after,
            });
            open = next;
        }
        Some(steps)
    }

    /// One lexicographic stage: minimise `objective` subject to `bounds` (point costs ≤ value),
    /// by the label search (its pool, for the stages `later`, left in `self.pool`) or, if that
    /// gives up, by the MILP: candidates that cannot be optimal by the Lagrangian bound are left
    /// out; when that leaves many, the MILP is first solved over the candidates of smallest
    /// reduced cost, and its optimum is kept only if no left-out candidate could beat it (else the
    /// MILP over every candidate that could is solved). Exact either way.
    fn solve_once(
        &mut self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        hint: Option<&[usize]>,
        later: &[Criterion],
    ) -> Result<Solve, FrontError> {
        self.pool = None;
        let Some(red) = self.reduce(objective, bounds, hint) else {
            return Ok(Solve::Infeasible);
        };
        self.solves += 1;
        let tol = |u: f64| u - red.bound + 1e-9 * u.abs().max(1.0);
        let n = self.kept.len();
        let count = |a: &[Vec<usize>]| a.iter().map(Vec::len).sum::<usize>();
        let inc = red.incumbent.as_ref();
        let survivors = inc.map(|(u, _)| self.within(&red, tol(*u)));
        if let Some(s) = &survivors {
            if s.iter().all(|ks| ks.len() == 1) {
                // The bound left only the incumbent: it is optimal.
                return Ok(Solve::Found(inc.unwrap().1.clone(), PointStatus::Optimal));
            }
        }
        if let Some((solve, pool)) = self.label_search(objective, bounds, &red, later) {
            self.pool = pool;
            return Ok(solve);
        }
        if let Some(s) = &survivors {
            if count(s) <= RESTRICTED_PER_LAYER * n {
                return self.milp(objective, bounds, s);
            }
        }
        let mut sorted: Vec<f64> = red.reduced.iter().flatten().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let mut k = RESTRICTED_PER_LAYER * n;
        loop {
            if k >= sorted.len() {
                let all = survivors.unwrap_or_else(|| self.kept.clone());
                return self.milp(objective, bounds, &all);
            }
            let mut restricted = self.within(&red, sorted[k - 1]);
            if let Some((_, sel)) = inc {
                // The incumbent keeps the restricted MILP feasible.
                for (l, &c) in sel.iter().enumerate() {
                    if !restricted[l].contains(&c) {
                        restricted[l].push(c);
                    }
                }
            }
            match self.milp(objective, bounds, &restricted)? {
                Solve::Found(sel, PointStatus::Optimal) => {
                    let mut u = (self.pb.costs_of(&sel)[objective.index()]
                        - self.offset(objective))
                        / self.scale[objective.index()];
                    if let Some((v, _)) = inc {
                        u = u.min(*v);
                    }
                    let need = self.within(&red, tol(u));
                    if need
                        .iter()
                        .zip(&restricted)
                        .all(|(a, b)| a.iter().all(|c| b.contains(c)))
                    {
                        return Ok(Solve::Found(sel, PointStatus::Optimal));
                    }
                    return self.milp(objective, bounds, &need);
                }
                Solve::Infeasible => k *= 4,
                other => return Ok(other),
            }
        }
    }

    /// The MILP over the given candidates. (No MIP start: HiGHS 1.16 may return the start's
    /// columns with the objective of a better solution found in the presolved space.)
    fn milp(
        &mut self,
        objective: Criterion,
        bounds: &[(Criterion, f64)],
        active: &[Vec<usize>],
    ) -> Result<Solve, FrontError> {
        if active.iter().any(Vec::is_empty) {
            return Ok(Solve::Infeasible);
        }
        if active.iter().all(|ks| ks.len() == 1) {
            // One selection left: no MILP needed.
            let sel: Vec<usize> = active.iter().map(|ks| ks[0]).collect();
            let v = self.pb.costs_of(&sel);
            let chained = (0..sel.len()).all(|l| {
                self.pb.producers[l].is_none_or(|p| {
                    self.pb.cands[p][sel[p]].bits.output_bits
                        == self.pb.cands[l][sel[l]].bits.input_bits
                })
            });
            return Ok(
                if chained && bounds.iter().all(|&(c, b)| v[c.index()] <= b) {
                    Solve::Found(sel, PointStatus::Optimal)
                } else {
                    Solve::Infeasible
                },
            );
        }
        let pb = self.pb;
        let mut rp = RowProblem::default();
        let oscale = self.scale[objective.index()];
        let mut cols: Vec<Vec<highs::Col>> = Vec::with_capacity(pb.cands.len());
        for (l, ks) in active.iter().enumerate() {
            cols.push(
                ks.iter()
                    .map(|&k| rp.add_integer_column(objective.of(&pb.cands[l][k]) / oscale, 0..=1))
                    .collect(),
            );
        }
        for c in &cols {
            rp.add_row(1.0..=1.0, c.iter().map(|&x| (x, 1.0)));
        }
        for (l, ks) in active.iter().enumerate() {
            let Some(p) = pb.producers[l] else { continue };
            for &b in &pb.bits.activations {
                let mut f: Vec<(highs::Col, f64)> = Vec::new();
                for (j, &k) in ks.iter().enumerate() {
                    if pb.cands[l][k].bits.input_bits == b {
                        f.push((cols[l][j], 1.0));
                    }
                }
                for (j, &k) in active[p].iter().enumerate() {
                    if pb.cands[p][k].bits.output_bits == b {
                        f.push((cols[p][j], -1.0));
                    }
                }
                if !f.is_empty() {
                    rp.add_row(0.0..=0.0, f);
                }
            }
        }
        for &(c, ub) in bounds {
            let s = self.scale[c.index()];
            let mut f = Vec::new();
            for (l, ks) in active.iter().enumerate() {
                for (j, &k) in ks.iter().enumerate() {
                    let v = c.of(&pb.cands[l][k]);
                    if v != 0.0 {
                        f.push((cols[l][j], v / s));
                    }
                }
            }
            rp.add_row(..=((ub - self.offset(c)) / s), f);
        }
        let mut model = rp
            .try_optimise(Sense::Minimise)
            .map_err(|e| FrontError::Solver(format!("HiGHS rejected the model: {e:?}")))?;
        model.make_quiet();
        model.set_option("threads", 1);
        model.set_option("mip_rel_gap", 0.0);
        model.set_option("mip_abs_gap", 0.0);
        model.set_option("primal_feasibility_tolerance", HIGHS_TOLERANCE);
        model.set_option("mip_feasibility_tolerance", HIGHS_TOLERANCE);
        // Sub-MIP heuristics cost more than they save on these small reduced models.
        model.set_option("mip_heuristic_run_rins", false);
        model.set_option("mip_heuristic_run_rens", false);
        if let Some(t) = self.time_limit {
            model.set_option("time_limit", t.max(0.01));
        }
        let solved = model
            .try_solve()
            .map_err(|e| FrontError::Solver(format!("HiGHS failed: {e:?}")))?;
        let status = match solved.status() {
            HighsModelStatus::Optimal | HighsModelStatus::ModelEmpty => PointStatus::Optimal,
            HighsModelStatus::ReachedTimeLimit => PointStatus::TimeLimit,
            HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
                return Ok(Solve::Infeasible)
            }
            s => return Err(FrontError::Solver(format!("HiGHS status {s:?}"))),
        };
        let x = solved.get_solution();
        let x = x.columns();
        if x.len() != cols.iter().map(Vec::len).sum::<usize>() {
            return Ok(Solve::Unknown);
        }
        let mut choice = Vec::with_capacity(cols.len());
        let mut at = 0;
        for ks in active {
            let (j, v) = x[at..at + ks.len()]
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("a layer has candidates");
            if *v < 0.5 {
                return Ok(Solve::Unknown);
            }
            choice.push(ks[j]);
            at += ks.len();
        }
        let got = (self.pb.costs_of(&choice)[objective.index()] - self.offset(objective)) / oscale;
        let reported = solved.objective_value();
        if status == PointStatus::Optimal && (got - reported).abs() > 1e-6 * reported.abs().max(1.0)
        {
            return Err(FrontError::Solver(format!(
                "HiGHS returned a selection of objective {got} for a reported optimum {reported}"
            )));
        }
        Ok(Solve::Found(choice, status))
    }

    /// Lexicographic minimisation of `lex` under `bounds`, answered from the cache when a solved
    /// relaxation's solution satisfies the bounds.
    fn solve_lex(
        &mut self,
        lex: &[Criterion],
        bounds: &[(Criterion, f64)],
    ) -> Result<Solve, FrontError> {
        let mut ub = [f64::INFINITY; 4];
        for &(c, v) in bounds {
            ub[c.index()] = ub[c.index()].min(v);
        }
        for e in &self.cache {
            if e.lex != lex || (0..4).any(|i| e.ub[i] < ub[i]) {
                continue;
            }
            match &e.outcome {
                None => {
                    self.cache_hits += 1;
                    return Ok(Solve::Infeasible);
                }
                Some(choice) => {
                    let v = self.pb.costs_of(choice);
                    if (0..4).all(|i| v[i] <= ub[i]) {
                        self.cache_hits += 1;
                        return Ok(Solve::Found(choice.clone(), PointStatus::Optimal));
                    }
                }
            }
        }
        let mut bounds: Vec<(Criterion, f64)> = bounds.to_vec();
        let mut best: Option<(Vec<usize>, PointStatus)> = None;
        // The first stage's label search pool, if it covers the later stages.
        let mut pool: Option<Pool> = None;
        for (i, &c) in lex.iter().enumerate() {
            let hint = best.as_ref().map(|b| b.0.clone());
            let from_pool = pool.as_ref().and_then(|p| {
                let covered = bounds
                    .iter()
                    .any(|&(b, v)| b == p.objective && v <= p.covered);
                let mut ub = [f64::INFINITY; 4];
                for &(b, v) in &bounds {
                    ub[b.index()] = ub[b.index()].min(v);
                }
                p.selections
                    .iter()
                    .filter(|_| covered)
                    .filter(|(v, _)| (0..4).all(|k| v[k] <= ub[k]))
                    .min_by(|a, b| {
                        a.0[c.index()]
                            .total_cmp(&b.0[c.index()])
                            .then_with(|| lex_cmp(&a.0, &b.0))
                    })
                    .map(|(_, sel)| Solve::Found(sel.clone(), PointStatus::Optimal))
            });
            let solved = match from_pool {
                Some(s) => s,
                None => {
                    let s = self.solve_once(c, &bounds, hint.as_deref(), &lex[i + 1..])?;
                    if i == 0 {
                        pool = self.pool.take();
                    }
                    s
                }
            };
            match solved {
                Solve::Found(choice, status) => {
                    let v = c.cost(&self.pb.point(&choice, status));
                    bounds.push((c, v + LEX_REL_TOL * v.abs().max(1.0)));
                    let status = match &best {
                        Some((_, PointStatus::TimeLimit)) => PointStatus::TimeLimit,
                        _ => status,
                    };
                    best = Some((choice, status));
                }
                Solve::Infeasible if i == 0 => {
                    self.cache.push(CacheEntry {
                        ub,
                        lex: lex.to_vec(),
                        outcome: None,
                    });
                    return Ok(Solve::Infeasible);
                }
                Solve::Unknown if i == 0 => return Ok(Solve::Unknown),
                // A later stage can only fail through tolerances: keep the earlier stage's.
                _ => break,
            }
        }
        let (choice, status) = best.expect("stage 0 found a point");
        if status == PointStatus::Optimal {
            self.cache.push(CacheEntry {
                ub,
                lex: lex.to_vec(),
                outcome: Some(choice.clone()),
            });
        }
        Ok(Solve::Found(choice, status))
    }
}

/// Minimises total energy or latency subject to the budgets (one lexicographic MILP). None when
/// the budgets are infeasible.
pub fn select(
    problem: &SelectionProblem,
    goal: Goal,
    budgets: &Budgets,
    time_limit: Option<f64>,
) -> Result<Option<FrontPoint>, FrontError> {
    let lex = match goal {
        Goal::Energy => [Criterion::Energy, Criterion::Accuracy],
        Goal::Latency => [Criterion::Cycles, Criterion::Energy],
    };
    let mut crit = lex.to_vec();
    crit.extend(budgets.criteria());
    let kept = problem.prune(&crit, &[]);
    let mut milp = Milp::new(problem, kept, time_limit, MAX_LABELS);
    match milp.solve_lex(&lex, &budgets.bounds())? {
        Solve::Found(choice, status) => Ok(Some(problem.point(&choice, status))),
        Solve::Infeasible => Ok(None),
        Solve::Unknown => Err(FrontError::Solver(
            "time limit reached before a feasible selection was found".into(),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Fronts
// ---------------------------------------------------------------------------------------------

/// Which front to trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontKind {
    EnergyAccuracy,
    EnergyMemory,
    EnergyAccuracyMemory,
    /// For latency and EDP.
    EnergyCycles,
}

impl FrontKind {
    /// The front's criteria (minimisation sense).
    pub fn criteria(self) -> &'static [Criterion] {
        match self {
            FrontKind::EnergyAccuracy => &[Criterion::Energy, Criterion::Accuracy],
            FrontKind::EnergyMemory => &[Criterion::Energy, Criterion::Memory],
            FrontKind::EnergyAccuracyMemory => {
                &[Criterion::Energy, Criterion::Accuracy, Criterion::Memory]
            }
            FrontKind::EnergyCycles => &[Criterion::Energy, Criterion::Cycles],
        }
    }
}

/// Settings of [`trace_front`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontOptions {
    /// Stop after this many points (`Front::complete` is then false).
    pub max_points: usize,
    /// Accuracies closer than this (percentage points) count as equal.
    pub accuracy_resolution: f64,
    /// Time limit per MILP solve (s); a point from a timed-out solve has status `time_limit`.
    pub time_limit: Option<f64>,
    /// Budgets every point must meet.
    pub budgets: Budgets,
    /// Labels per layer beyond which the exact label search hands a stage to the selection MILP
    /// (0: every stage goes to the MILP).
    pub max_labels: usize,
}

impl Default for FrontOptions {
    fn default() -> Self {
        FrontOptions {
            max_points: 100,
            accuracy_resolution: 1e-6,
            time_limit: None,
            budgets: Budgets::default(),
            max_labels: MAX_LABELS,
        }
    }
}

/// A traced front.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Front {
    pub kind: FrontKind,
    /// Non-dominated points, increasing energy.
    pub points: Vec<FrontPoint>,
    /// False when `max_points` stopped the loop or a solve timed out without a solution.
    pub complete: bool,
    /// Lexicographic stages solved (by the label search or the MILP; stages read off the first
    /// stage's pool are not counted).
    pub solves: usize,
    /// Lexicographic solves answered from an earlier solve.
    pub cache_hits: usize,
    /// Selectable entries before and after pruning (all layers).
    pub entries: usize,
    pub entries_kept: usize,
    pub seconds: f64,
}

/// The ε step below the last value of a criterion (see the module doc).
fn step(c: Criterion, opts: &FrontOptions) -> f64 {
    match c {
        Criterion::Accuracy => opts.accuracy_resolution,
        Criterion::Memory => 1.0 / 16.0,
        Criterion::Cycles => 0.5,
        Criterion::Energy => 0.0,
    }
}

/// Traces a front exactly (see the module doc).
pub fn trace_front(
    problem: &SelectionProblem,
    kind: FrontKind,
    opts: &FrontOptions,
) -> Result<Front, FrontError> {
    let t0 = Instant::now();
    let mut crit = kind.criteria().to_vec();
    for c in opts.budgets.criteria() {
        if !crit.contains(&c) {
            crit.push(c);
        }
    }
    let tiebreak: Vec<Criterion> = CRITERIA
        .iter()
        .copied()
        .filter(|c| !crit.contains(c))
        .collect();
    let kept = problem.prune(&crit, &tiebreak);
    let entries = problem.cands.iter().map(Vec::len).sum();
    let entries_kept = kept.iter().map(Vec::len).sum();
    let mut milp = Milp::new(problem, kept, opts.time_limit, opts.max_labels);
    let base = opts.budgets.bounds();
    let mut points: Vec<FrontPoint> = Vec::new();
    let max = opts.max_points;
    let complete = match kind {
        FrontKind::EnergyAccuracyMemory => {
            let lex = [Criterion::Energy, Criterion::Accuracy, Criterion::Memory];
            let mut cap: Option<f64> = None;
            loop {
                let mut bounds = base.clone();
                if let Some(m) = cap {
                    bounds.push((Criterion::Memory, m));
                }
                let mut max_memory: Option<f64> = None;
                let done = front_2d(&mut milp, &lex, &bounds, opts, |p| {
                    max_memory = Some(max_memory.map_or(p.memory_bytes, |m| m.max(p.memory_bytes)));
                    // Points of earlier caps come again; only new ones count towards the limit.
                    if points.iter().any(|q| same_costs(q, &p, kind.criteria())) {
                        true
                    } else if points.len() >= max {
                        false
                    } else {
                        points.push(p);
                        true
                    }
                })?;
                match max_memory {
                    Some(m) if done => cap = Some(m - step(Criterion::Memory, opts)),
                    _ => break done,
                }
            }
        }
        _ => front_2d(&mut milp, kind.criteria(), &base, opts, |p| {
            if points.len() >= max {
                false
            } else {
                points.push(p);
                true
            }
        })?,
    };
    points.sort_by(|a, b| lex_cmp(&a.costs(kind.criteria()), &b.costs(kind.criteria())));
    Ok(Front {
        kind,
        points,
        complete,
        solves: milp.solves,
        cache_hits: milp.cache_hits,
        entries,
        entries_kept,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn same_costs(a: &FrontPoint, b: &FrontPoint, criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| c.cost(a) == c.cost(b))
}

/// The 2-D ε-constraint loop: lexicographic minimisation of `lex` (lex[0] primary, lex[1] under
/// the ε bound) within `bounds`, until infeasible, handing each point to `accept`. Returns true
/// when the loop ran to infeasibility, false when `accept` refused a point (a limit) or a solve
/// timed out without a solution.
fn front_2d(
    milp: &mut Milp,
    lex: &[Criterion],
    bounds: &[(Criterion, f64)],
    opts: &FrontOptions,
    mut accept: impl FnMut(FrontPoint) -> bool,
) -> Result<bool, FrontError> {
    let second = lex[1];
    let mut eps: Option<f64> = None;
    loop {
        let mut b = bounds.to_vec();
        if let Some(e) = eps {
            b.push((second, e));
        }
        match milp.solve_lex(lex, &b)? {
            Solve::Infeasible => return Ok(true),
            Solve::Unknown => return Ok(false),
            Solve::Found(choice, status) => {
                let p = milp.pb.point(&choice, status);
                let next = second.cost(&p) - step(second, opts);
                // Progress even if a solve returned a point slightly outside its bound.
                eps = Some(eps.map_or(next, |e| next.min(e - step(second, opts))));
                if !accept(p) {
                    return Ok(false);
                }
            }
        }
    }
}

/// The point of a front with the least network EDP ((Σ energy)(Σ cycles)); exact on a complete
/// energy × cycles front (the EDP optimum is on it).
pub fn min_edp(front: &Front) -> Option<&FrontPoint> {
    front
        .points
        .iter()
        .min_by(|a, b| a.edp().total_cmp(&b.edp()))
}

// ---------------------------------------------------------------------------------------------
// Brute force and non-dominated filtering
// ---------------------------------------------------------------------------------------------

/// Calls `f` with every chained selection (`choice[l]` indexes layer l's selectable entries, in
/// the order of the table's entries within the bit sets). Exponential: for small networks.
pub fn for_each_selection(problem: &SelectionProblem, mut f: impl FnMut(&[usize])) {
    fn rec(pb: &SelectionProblem, l: usize, choice: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
        if l == pb.cands.len() {
            f(choice);
            return;
        }
        let need = pb.producers[l].map(|p| pb.cands[p][choice[p]].bits.output_bits);
        for (k, c) in pb.cands[l].iter().enumerate() {
            if need.is_some_and(|b| c.bits.input_bits != b) {
                continue;
            }
            choice.push(k);
            rec(pb, l + 1, choice, f);
            choice.pop();
        }
    }
    rec(problem, 0, &mut Vec::new(), &mut f);
}

/// The exact front by enumerating every chained selection within the budgets: non-dominated in
/// `kind`'s criteria, one point per objective vector (the first enumerated).
pub fn brute_force_front(
    problem: &SelectionProblem,
    kind: FrontKind,
    budgets: &Budgets,
) -> Vec<FrontPoint> {
    let crit = kind.criteria();
    let bounds = budgets.bounds();
    let mut archive: Vec<(Vec<f64>, Vec<usize>)> = Vec::new();
    for_each_selection(problem, |choice| {
        let all = problem.costs_of(choice);
        if bounds.iter().any(|&(c, v)| all[c.index()] > v) {
            return;
        }
        let v: Vec<f64> = crit.iter().map(|c| all[c.index()]).collect();
        if archive.iter().any(|(a, _)| weakly_dominates(a, &v)) {
            return;
        }
        archive.retain(|(a, _)| !weakly_dominates(&v, a));
        archive.push((v, choice.to_vec()));
    });
    let mut pts: Vec<FrontPoint> = archive
        .into_iter()
        .map(|(_, c)| problem.point(&c, PointStatus::Optimal))
        .collect();
    pts.sort_by(|a, b| lex_cmp(&a.costs(crit), &b.costs(crit)));
    pts
}

fn lex_cmp(a: &[f64], b: &[f64]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// a ≤ b in every coordinate (minimisation).
fn weakly_dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

/// a ≤ b everywhere and a < b somewhere (minimisation).
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    weakly_dominates(a, b) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// The points not dominated in `criteria`, one per objective vector (the first given).
pub fn non_dominated(points: &[FrontPoint], criteria: &[Criterion]) -> Vec<FrontPoint> {
    let costs: Vec<Vec<f64>> = points.iter().map(|p| p.costs(criteria)).collect();
    let mut out: Vec<FrontPoint> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let beaten = costs
            .iter()
            .enumerate()
            .any(|(j, c)| dominates(c, &costs[i]) || (j < i && c == &costs[i]));
        if !beaten {
            out.push(p.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// NSGA-II baseline
// ---------------------------------------------------------------------------------------------

/// Settings of the NSGA-II baseline (defaults: the seed paper's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Nsga2Options {
    pub parents: usize,
    pub offspring: usize,
    pub generations: usize,
    pub seed: u64,
    /// Probability that a child is the uniform crossover of its two parents (else a copy of the
    /// first).
    pub crossover_probability: f64,
    /// Per-gene mutation probability; None = 1 / number of genes.
    pub mutation_probability: Option<f64>,
}

impl Default for Nsga2Options {
    fn default() -> Self {
        Nsga2Options {
            parents: 10,
            offspring: 10,
            generations: 25,
            seed: 0,
            crossover_probability: 0.9,
            mutation_probability: None,
        }
    }
}

/// What NSGA-II found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nsga2Result {
    /// The final population's first front (feasible, one per objective vector), status
    /// `heuristic`.
    pub front: Vec<FrontPoint>,
    /// Designs evaluated.
    pub evaluations: usize,
}

/// An individual: genes = per-layer weight bits then per-layer output bits.
#[derive(Clone)]
struct Individual {
    genes: Vec<u32>,
    /// Layers without a table entry for their bits (0 = feasible).
    violation: usize,
    costs: [f64; 3],
    choice: Vec<usize>,
    rank: usize,
    crowding: f64,
}

const NSGA_CRITERIA: [Criterion; 3] = [Criterion::Energy, Criterion::Accuracy, Criterion::Memory];

/// NSGA-II over the table (objectives: energy, −accuracy, memory): fast non-dominated sort,
/// crowding distance, binary tournament, uniform crossover, per-gene mutation; the initial
/// population holds the uniform configurations (every bit value in both sets; evenly spread if
/// more than `parents`), the rest random. Deterministic for a seed.
pub fn nsga2(problem: &SelectionProblem, opts: &Nsga2Options) -> Nsga2Result {
    let n = problem.layer_count();
    let bits = &problem.bits;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let parents = opts.parents.max(2);
    let genes = 2 * n;
    let pm = opts
        .mutation_probability
        .unwrap_or(1.0 / genes as f64)
        .clamp(0.0, 1.0);
    let mut evaluations = 0;
    let mut eval = |g: Vec<u32>| -> Individual {
        evaluations += 1;
        let pairs: Vec<(u32, u32)> = (0..n).map(|l| (g[l], g[n + l])).collect();
        match problem.choice_for(&pairs) {
            Ok(choice) => {
                let p = problem.point(&choice, PointStatus::Heuristic);
                Individual {
                    genes: g,
                    violation: 0,
                    costs: [p.energy_pj, -p.accuracy, p.memory_bytes],
                    choice,
                    rank: 0,
                    crowding: 0.0,
                }
            }
            Err(missing) => Individual {
                genes: g,
                violation: missing,
                costs: [f64::INFINITY; 3],
                choice: Vec::new(),
                rank: 0,
                crowding: 0.0,
            },
        }
    };
    let random_gene = |rng: &mut ChaCha8Rng, i: usize| -> u32 {
        let set = if i < n {
            &bits.weights
        } else {
            &bits.activations
        };
        set[rng.random_range(0..set.len())]
    };
    let mut uniform: Vec<u32> = bits
        .weights
        .iter()
        .copied()
        .filter(|b| bits.activations.contains(b))
        .collect();
    uniform.sort_unstable();
    if uniform.len() > parents {
        let m = uniform.len() - 1;
        uniform = (0..parents)
            .map(|i| uniform[(i * m + (parents - 1) / 2) / (parents - 1)])
            .collect();
    }
    let mut pop: Vec<Individual> = uniform.iter().map(|&b| eval(vec![b; genes])).collect();
    while pop.len() < parents {
        let g = (0..genes).map(|i| random_gene(&mut rng, i)).collect();
        pop.push(eval(g));
    }
    rank_and_crowd(&mut pop);
    for _ in 0..opts.generations {
        let mut children = Vec::with_capacity(opts.offspring);
        for _ in 0..opts.offspring {
            let a = tournament(&pop, &mut rng);
            let b = tournament(&pop, &mut rng);
            let mut g = pop[a].genes.clone();
            if rng.random_bool(opts.crossover_probability.clamp(0.0, 1.0)) {
                for (i, x) in g.iter_mut().enumerate() {
                    if rng.random_bool(0.5) {
                        *x = pop[b].genes[i];
                    }
                }
            }
            for (i, x) in g.iter_mut().enumerate() {
                if rng.random_bool(pm) {
                    *x = random_gene(&mut rng, i);
                }
            }
            children.push(eval(g));
        }
        pop.extend(children);
        rank_and_crowd(&mut pop);
        pop.sort_by(|a, b| a.rank.cmp(&b.rank).then(b.crowding.total_cmp(&a.crowding)));
        pop.truncate(parents);
        rank_and_crowd(&mut pop);
    }
    let mut front: Vec<FrontPoint> = Vec::new();
    for ind in pop.iter().filter(|i| i.rank == 0 && i.violation == 0) {
        let p = problem.point(&ind.choice, PointStatus::Heuristic);
        if !front.iter().any(|q| same_costs(q, &p, &NSGA_CRITERIA)) {
            front.push(p);
        }
    }
    front.sort_by(|a, b| lex_cmp(&a.costs(&NSGA_CRITERIA), &b.costs(&NSGA_CRITERIA)));
    Nsga2Result { front, evaluations }
}

/// Deb's constrained domination: fewer violations, or both feasible and Pareto-dominating.
fn constrained_dominates(a: &Individual, b: &Individual) -> bool {
    if a.violation != b.violation {
        return a.violation < b.violation;
    }
    a.violation == 0 && dominates(&a.costs, &b.costs)
}

/// Fast non-dominated sort and crowding distance (per front, objectives normalised by range).
fn rank_and_crowd(pop: &mut [Individual]) {
    let n = pop.len();
    let mut dominated_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut count = vec![0usize; n];
    for i in 0..n {
        for j in 0..n {
            if i != j && constrained_dominates(&pop[i], &pop[j]) {
                dominated_by[i].push(j);
            } else if i != j && constrained_dominates(&pop[j], &pop[i]) {
                count[i] += 1;
            }
        }
    }
    let mut current: Vec<usize> = (0..n).filter(|&i| count[i] == 0).collect();
    let mut rank = 0;
    while !current.is_empty() {
        for &i in &current {
            pop[i].rank = rank;
        }
        crowding(pop, &current);
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominated_by[i] {
                count[j] -= 1;
                if count[j] == 0 {
                    next.push(j);
                }
            }
        }
        current = next;
        rank += 1;
    }
}

fn crowding(pop: &mut [Individual], front: &[usize]) {
    for &i in front {
        pop[i].crowding = 0.0;
    }
    for m in 0..3 {
        let mut idx = front.to_vec();
        idx.sort_by(|&a, &b| pop[a].costs[m].total_cmp(&pop[b].costs[m]));
        let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
            return;
        };
        let (lo, hi) = (pop[first].costs[m], pop[last].costs[m]);
        pop[first].crowding = f64::INFINITY;
        pop[last].crowding = f64::INFINITY;
        let range = hi - lo;
        if !range.is_finite() || range <= 0.0 {
            continue;
        }
        for w in 1..idx.len().saturating_sub(1) {
            let d = (pop[idx[w + 1]].costs[m] - pop[idx[w - 1]].costs[m]) / range;
            pop[idx[w]].crowding += d;
        }
    }
}

/// Binary tournament: lower rank, then larger crowding distance, then the first drawn.
fn tournament(pop: &[Individual], rng: &mut ChaCha8Rng) -> usize {
    let a = rng.random_range(0..pop.len());
    let b = rng.random_range(0..pop.len());
    let (x, y) = (&pop[a], &pop[b]);
    if y.rank < x.rank || (y.rank == x.rank && y.crowding > x.crowding) {
        b
    } else {
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Hypervolume
// ---------------------------------------------------------------------------------------------

/// The hypervolume dominated by `points` (minimised objective vectors) and bounded by
/// `reference`, exact in any dimension (slicing along the last objective; O(n^d log n), meant for
/// d ≤ 3). Points not strictly better than the reference in every objective contribute nothing.
pub fn hypervolume(points: &[Vec<f64>], reference: &[f64]) -> f64 {
    let d = reference.len();
    let pts: Vec<&[f64]> = points
        .iter()
        .map(Vec::as_slice)
        .filter(|p| p.len() == d && p.iter().zip(reference).all(|(x, r)| x < r))
        .collect();
    hv(&pts, reference)
}

fn hv(points: &[&[f64]], reference: &[f64]) -> f64 {
    let d = reference.len();
    if points.is_empty() {
        return 0.0;
    }
    if d == 1 {
        let m = points.iter().map(|p| p[0]).fold(f64::INFINITY, f64::min);
        return reference[0] - m;
    }
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a[d - 1].total_cmp(&b[d - 1]));
    let mut vol = 0.0;
    for i in 0..sorted.len() {
        let z = sorted[i][d - 1];
        let next = sorted.get(i + 1).map_or(reference[d - 1], |p| p[d - 1]);
        if next <= z {
            continue;
        }
        let slice: Vec<&[f64]> = sorted[..=i].iter().map(|p| &p[..d - 1]).collect();
        vol += hv(&slice, &reference[..d - 1]) * (next - z);
    }
    vol
}

/// The hypervolume of points over `criteria` (see [`hypervolume`]).
pub fn front_hypervolume(points: &[FrontPoint], criteria: &[Criterion], reference: &[f64]) -> f64 {
    let v: Vec<Vec<f64>> = points.iter().map(|p| p.costs(criteria)).collect();
    hypervolume(&v, reference)
}

// ---------------------------------------------------------------------------------------------
// SVG plot
// ---------------------------------------------------------------------------------------------

/// A design to mark on the plot (e.g. the uniform 8-bit and 16-bit designs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotMark {
    pub label: String,
    pub energy_pj: f64,
    pub accuracy: f64,
    pub memory_bytes: f64,
}

impl PlotMark {
    pub fn from_point(label: impl Into<String>, p: &FrontPoint) -> PlotMark {
        PlotMark {
            label: label.into(),
            energy_pj: p.energy_pj,
            accuracy: p.accuracy,
            memory_bytes: p.memory_bytes,
        }
    }
}

/// The horizontal axis of the plot (energy is vertical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotAxis {
    Accuracy,
    Memory,
}

/// A front plot: energy (µJ) against accuracy or weight memory (MiB).
#[derive(Debug, Clone)]
pub struct FrontPlot<'a> {
    pub title: &'a str,
    pub x_axis: PlotAxis,
    /// The accuracy axis name, e.g. [`AccuracyKind::label`].
    pub accuracy_label: &'a str,
    pub front: &'a [FrontPoint],
    /// Another point set (e.g. NSGA-II's), with its legend name.
    pub baseline: Option<(&'a str, &'a [FrontPoint])>,
    pub marks: &'a [PlotMark],
}

impl FrontPlot<'_> {
    /// Writes the plot as an SVG file.
    pub fn write_svg(&self, path: &Path) -> Result<(), FrontError> {
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let err = |e: String| FrontError::Plot {
            file: path.display().to_string(),
            message: e,
        };
        let x_of = |acc: f64, mem: f64| match self.x_axis {
            PlotAxis::Accuracy => acc,
            PlotAxis::Memory => mem / (1024.0 * 1024.0),
        };
        let xy = |p: &FrontPoint| (x_of(p.accuracy, p.memory_bytes), p.energy_pj * 1e-6);
        let mut front: Vec<(f64, f64)> = self.front.iter().map(xy).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        let base: Vec<(f64, f64)> = self
            .baseline
            .map(|(_, b)| b.iter().map(xy).collect())
            .unwrap_or_default();
        let marks: Vec<(f64, f64, &str)> = self
            .marks
            .iter()
            .map(|m| {
                (
                    x_of(m.accuracy, m.memory_bytes),
                    m.energy_pj * 1e-6,
                    m.label.as_str(),
                )
            })
            .collect();
        let all: Vec<(f64, f64)> = front
            .iter()
            .chain(&base)
            .copied()
            .chain(marks.iter().map(|m| (m.0, m.1)))
            .collect();
        if all.is_empty() {
            return Err(err("nothing to plot".into()));
        }
        let range = |v: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(x), b.max(x))
            });
            let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-9);
            (lo - pad)..(hi + pad)
        };
        let xr = range(&mut all.iter().map(|p| p.0));
        let yr = range(&mut all.iter().map(|p| p.1));
        let x_desc = match self.x_axis {
            PlotAxis::Accuracy => format!("{} [%]", self.accuracy_label),
            PlotAxis::Memory => "weight memory [MiB]".to_string(),
        };
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (900, 600)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title, ("sans-serif", 22))
                .margin(15)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(xr, yr)
                .map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc(x_desc)
                .y_desc("energy [µJ]")
                .draw()
                .map_err(|e| err(e.to_string()))?;
            chart
                .draw_series(LineSeries::new(front.clone(), BLUE.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label("exact front (MILP)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
            chart
                .draw_series(front.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
                .map_err(|e| err(e.to_string()))?;
            if let Some((name, _)) = self.baseline {
                chart
                    .draw_series(base.iter().map(|&p| Cross::new(p, 4, RED.stroke_width(2))))
                    .map_err(|e| err(e.to_string()))?
                    .label(name)
                    .legend(|(x, y)| Cross::new((x + 10, y), 4, RED.stroke_width(2)));
            }
            // Marks (uniform designs sit at the high-accuracy, high-memory end): the label left of
            // the triangle.
            let label_style = ("sans-serif", 14)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            chart
                .draw_series(marks.iter().map(|&(x, y, label)| {
                    EmptyElement::at((x, y))
                        + TriangleMarker::new((0, 0), 7, BLACK.filled())
                        + Text::new(label.to_string(), (-10, 0), label_style.clone())
                }))
                .map_err(|e| err(e.to_string()))?
                .label("uniform designs")
                .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        // Written like every other output (atomic, through links, in place into a FIFO).
        crate::report::write_atomic(path, &text).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// A random tree-shaped problem with `n` layers, bits {2, 4} and a proxy-free table model.
    fn random_problem(seed: u64, n: usize) -> SelectionProblem {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bits = BitSets {
            weights: vec![2, 4],
            activations: vec![2, 4],
            first_input: 8,
            last_output: 8,
        };
        let mut table = EnergyTable::default();
        let mut deltas = BTreeMap::new();
        for l in 0..n {
            let producer = if l == 0 {
                None
            } else {
                Some(rng.random_range(0..l))
            };
            let entries = bits
                .layer_configs(producer, l + 1 == n)
                .into_iter()
                .map(|b| TableEntry {
                    bits: b,
                    energy_pj: rng.random_range(1..100u32) as f64,
                    cycles: rng.random_range(1..100u64),
                })
                .collect();
            table.layers.push(LayerTable {
                name: format!("l{l}"),
                weights: rng.random_range(1..100u64),
                producer,
                entries,
            });
            let mut m = BTreeMap::new();
            for w in [2, 4] {
                for a in [2, 4, 8] {
                    m.insert((w, a), -(rng.random_range(0..64u32) as f64) / 64.0);
                }
            }
            deltas.insert(format!("l{l}"), m);
        }
        let acc = AccuracyModel::Table(AccuracyTable {
            full_precision_accuracy: 70.0,
            source: "test".into(),
            file: "t.yaml".into(),
            field: "deltas".into(),
            deltas,
        });
        SelectionProblem::new(&table, &acc, &bits).unwrap()
    }

    #[test]
    fn dp_through_is_the_best_selection_through_each_candidate() {
        for seed in 0..30 {
            let pb = random_problem(seed, 2 + seed as usize % 4);
            let kept = pb.prune(&CRITERIA, &[]);
            let milp = Milp::new(&pb, kept.clone(), None, MAX_LABELS);
            let w = [1.0, 0.3, 0.2, 0.1];
            let dp = milp.dp(&w);
            let through = milp.dp_through(&dp);
            let cost = |sel: &[usize]| -> f64 {
                sel.iter()
                    .enumerate()
                    .map(|(l, &k)| {
                        let j = kept[l].iter().position(|&x| x == k).unwrap();
                        (0..4).map(|t| w[t] * milp.coef[t][l][j]).sum::<f64>()
                    })
                    .sum()
            };
            let mut best: Vec<Vec<f64>> =
                kept.iter().map(|k| vec![f64::INFINITY; k.len()]).collect();
            let mut total = f64::INFINITY;
            for_each_selection(&pb, |sel| {
                if sel.iter().enumerate().any(|(l, k)| !kept[l].contains(k)) {
                    return;
                }
                let c = cost(sel);
                total = total.min(c);
                for (l, &k) in sel.iter().enumerate() {
                    let j = kept[l].iter().position(|&x| x == k).unwrap();
                    best[l][j] = best[l][j].min(c);
                }
            });
            assert!((dp.total - total).abs() < 1e-9, "seed {seed}: total");
            let arg = milp.dp_argmin(&dp).unwrap();
            assert!((cost(&arg) - total).abs() < 1e-9, "seed {seed}: argmin");
            for l in 0..kept.len() {
                for j in 0..kept[l].len() {
                    let (a, b) = (through[l][j], best[l][j]);
                    assert!(
                        (a == b) || (a - b).abs() < 1e-9,
                        "seed {seed}: layer {l} candidate {j}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_solve_is_exact() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for seed in 0..200 {
            let pb = random_problem(seed, 2 + seed as usize % 5);
            let kept = pb.prune(&CRITERIA, &[]);
            let mut all = Vec::new();
            for_each_selection(&pb, |sel| all.push(pb.costs_of(sel)));
            let objective = CRITERIA[rng.random_range(0..4usize)];
            let mut bounds = Vec::new();
            for c in CRITERIA {
                if c != objective && rng.random_bool(0.5) {
                    let v = all[rng.random_range(0..all.len())][c.index()];
                    bounds.push((c, v));
                }
            }
            let feasible = |v: &[f64; 4]| bounds.iter().all(|&(c, b)| v[c.index()] <= b);
            let want = all
                .iter()
                .filter(|v| feasible(v))
                .map(|v| v[objective.index()])
                .fold(f64::INFINITY, f64::min);
            let mut milp = Milp::new(&pb, kept, None, MAX_LABELS);
            match milp.solve_once(objective, &bounds, None, &[]).unwrap() {
                Solve::Found(sel, _) => {
                    let v = pb.costs_of(&sel);
                    assert!(feasible(&v), "seed {seed}");
                    assert_eq!(
                        v[objective.index()],
                        want,
                        "seed {seed}: {objective:?} {bounds:?}"
                    );
                }
                Solve::Infeasible => assert!(want.is_infinite(), "seed {seed}"),
                Solve::Unknown => panic!("no time limit"),
            }
        }
    }
}
