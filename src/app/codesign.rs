//! `qmap front`, network co-design: the exact Pareto front of energy × accuracy (× memory, or ×
//! cycles) over per-layer bit-widths, each layer mapped optimally, and the seed paper's
//! comparison.
//!
//! [`run`] builds the table E*(layer, bits) of proven per-layer optima at every bit
//! configuration some layer may take ([`crate::optimum::build`]: identical shapes and packing
//! classes solved once, cached), joins it with the instance's accuracy model into the selection
//! problem and traces the whole front ([`crate::front::trace_front`]) from the accuracy floor
//! (by default uniform 8-bit's accuracy minus 2 points) up, unless a point or time budget stops
//! it first (the report then says which, and where). The report adds the uniform 8- and 16-bit
//! designs and the headline ([`Headline`]): the least-energy design at no accuracy loss against
//! uniform 8-bit, and within a tolerance, against uniform 8-bit mapped optimally and mapped by
//! random search (10,000 valid samples per layer, the seed's mapper, [`random`]), and, with
//! [`Method::Nsga2`], the seed's NSGA-II over the same table with the hypervolumes of both
//! fronts. A network some layer of which has no mapping at any bit choice is reported
//! infeasible, with the reason. A complete front and the random-search baseline are cached
//! next to the table (each checked when read), so that a warm run only re-reads them; every
//! stage longer than a second shows its progress on stderr ([`crate::progress::Stage`]).
//!
//! The report is typed ([`CodesignReport`]); its JSON is `qmap front --json`, and
//! [`crate::report::codesign`] holds its terminal text and its CSV.

use crate::front::{self as fr, FrontKind, FrontPoint};
use crate::instance::{self, BitConfig, Instance};
use crate::mapspace::Constraints;
use crate::optimum::{Table, TableSettings};
use crate::progress::Stage;
use crate::spec::{InputError, MappingSpec};
use serde::{Serialize, Serializer};
use std::path::Path;

/// How the front is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The exact front (epsilon-constraint over the selection problem).
    Exact,
    /// The exact front and the seed's NSGA-II over the same table, compared (hypervolume).
    Nsga2,
}

/// What `qmap front` is asked.
#[derive(Debug, Clone)]
pub struct CodesignRequest<'a> {
    /// Instance with a network workload, bit-width lists and a `front:` section.
    pub instance: &'a Path,
    pub kind: FrontKind,
    pub method: Method,
    /// When the front's trace stops early (points, lowest energy first; seconds).
    pub limits: fr::TraceLimits,
    /// The headline's second comparison: the least-energy design within this many accuracy
    /// points of uniform 8-bit (the first is at no loss).
    /// None: the accuracy model's default ([`fr::AccuracyKind::default_tolerance`]).
    pub accuracy_tolerance: Option<f64>,
    /// Show no progress on stderr.
    pub quiet: bool,
    /// Accuracies closer than this count as equal (percentage points).
    pub accuracy_resolution: f64,
    /// What every point must meet: accuracy at least `min_accuracy` (None: uniform 8-bit's
    /// accuracy minus 2 points), weight memory at most `max_memory_bytes`, network cycles
    /// (Σ layer cycles) at most `max_cycles`, over the table's mappings ([`LatencyBudget`]).
    pub budgets: fr::Budgets,
    /// For a table selecting by KL: points' summed KL at most this (nats), the accuracy budget
    /// (`budgets.min_accuracy` = −this). None: uniform 8-bit's KL plus 0.1.
    pub max_kl: Option<f64>,
    /// Re-measure every point's accuracy ([`Verification`]).
    pub verify: Option<VerifyRequest>,
    /// Seed of NSGA-II and of the random search of the uniform 8-bit comparison.
    pub seed: u64,
    /// Write the front's points as CSV here ([`crate::report::codesign::csv`]).
    pub csv: Option<&'a Path>,
    /// Write an SVG plot of the front here (uniform 8- and 16-bit designs marked).
    pub svg: Option<&'a Path>,
    /// How the per-layer optima are proved and cached.
    pub settings: TableSettings,
}

/// Why co-design did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum CodesignError {
    /// Bad input: the instance, the accuracy model, the front's data, an output file.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Building the table of per-layer optima failed: the solver's message (an internal error,
    /// or a request the solver refuses).
    #[error("{0}")]
    Solver(String),
}

/// The outcome: the network is infeasible, or its front.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CodesignReport {
    Infeasible(InfeasibleNetwork),
    Front(Box<FrontReport>),
}

impl CodesignReport {
    /// False when the network is infeasible or some table entry is not proven optimal (a check
    /// failed: exit code 1).
    pub fn pass(&self) -> bool {
        match self {
            CodesignReport::Infeasible(_) => false,
            CodesignReport::Front(f) => f.table_entries_not_proven == 0,
        }
    }

    /// What the caller should tell the user about the cache (one line each): an unusable
    /// directory, and the cache files that did not check out (each recomputed).
    pub fn cache_warnings(&self) -> &[String] {
        match self {
            CodesignReport::Infeasible(i) => &i.cache_warnings,
            CodesignReport::Front(f) => &f.cache_warnings,
        }
    }
}

/// `front --max-cycles`: network cycles (the layers run one after another) at most
/// `max_cycles`. The selection chooses among the table's entries, one energy-optimal mapping
/// per layer and bit configuration (its cycles those of that mapping): every point is the
/// least energy over those designs within the budget, not over every mapping of each layer (a
/// layer's slower-to-faster trade-offs, `map --max-cycles`, are not in the table), so it is
/// an upper bound on the least energy at that latency, exact only over the table.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyBudget {
    pub max_cycles: u64,
    /// `table mappings (one energy-optimal mapping per layer and bits)`.
    pub optimal_over: &'static str,
}

/// What [`LatencyBudget::optimal_over`] says.
pub const LATENCY_BUDGET_SCOPE: &str =
    "table mappings (one energy-optimal mapping per layer and bits)";

/// A network that some layer makes infeasible: no mapping at any bit choice.
#[derive(Debug, Clone, Serialize)]
pub struct InfeasibleNetwork {
    /// The layer and why none of its mappings fits.
    pub reason: String,
    /// `infeasible`.
    pub status: &'static str,
    #[serde(skip)]
    pub cache_warnings: Vec<String>,
}

/// The front and the comparisons. Fields are in the order of `qmap front --json` (alphabetical);
/// wall times end in `seconds`.
#[derive(Debug, Clone, Serialize)]
pub struct FrontReport {
    /// `accuracy (table)` or `accuracy (proxy)` ([`fr::AccuracyKind::label`]).
    pub accuracy_model: &'static str,
    pub architecture: String,
    /// The least-energy design at least as accurate as uniform 8-bit.
    pub best_vs_uniform_8bit: Option<Design>,
    /// The seed's comparison, as a sentence.
    pub comparison: String,
    /// False when `max_points` or a time limit stopped the front.
    pub complete: bool,
    /// The front's kind, as Rust names it (`EnergyAccuracy`).
    #[serde(serialize_with = "debug_name")]
    pub front: FrontKind,
    pub front_seconds: f64,
    /// The designs at no accuracy loss and within the tolerance against uniform 8-bit, and
    /// what they save.
    pub headline: Vec<Headline>,
    /// Hypervolumes of the exact front and of NSGA-II's points within the budgets, against a
    /// common reference (NSGA-II against a complete exact front only).
    pub hypervolume: Option<Hypervolumes>,
    /// The network latency budget the points meet, and what it is optimal over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_budget: Option<LatencyBudget>,
    /// The accuracy budget of the points (the default window or `min_accuracy`).
    pub min_accuracy: Option<f64>,
    /// The point of least network EDP (energy × cycles fronts only).
    pub min_edp: Option<Design>,
    /// NSGA-II's points (status `heuristic`), with [`Method::Nsga2`].
    pub nsga2: Option<Vec<Design>>,
    /// How many of them meet the front's budgets.
    pub nsga2_within_budgets: Option<usize>,
    /// The front, in increasing energy.
    pub points: Vec<Design>,
    /// The front's cut when it is incomplete: why and where.
    pub stopped: Option<Stopped>,
    /// Table entries whose optimum is not proven (time limit).
    pub table_entries_not_proven: usize,
    pub table_seconds: f64,
    /// The uniform designs the front is compared with (`uniform_*`).
    #[serde(flatten)]
    pub baselines: Baselines,
    pub workload: String,
    /// Every point's accuracy measured (`--verify-accuracy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<verify::Verification>,
    /// What the terminal text says besides.
    #[serde(skip)]
    pub work: Work,
    #[serde(skip)]
    pub cache_warnings: Vec<String>,
}

/// The uniform designs a front is compared with.
#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    /// Uniform 16-bit (each layer at 16 bits, mapped optimally; the plot's mark).
    pub uniform_16bit: Option<Design>,
    /// Uniform 8-bit, mapped optimally.
    pub uniform_8bit: Option<Design>,
    /// Uniform 8-bit mapped by random search: its latency (cycles) and energy (pJ); None
    /// when a layer finds no valid mapping.
    pub uniform_8bit_random_search_cycles: Option<u64>,
    pub uniform_8bit_random_search_pj: Option<f64>,
}

/// Where and why a front stopped before it was complete.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    /// What to do about it, as a sentence.
    pub explanation: String,
    /// The last point traced: the front covers the points of less energy than it.
    #[serde(flatten)]
    pub last: LastPoint,
    /// `point_budget`, `time_budget` or `solve_time_limit`.
    pub reason: fr::StopReason,
}

/// The last point a stopped trace found (none when it found none): `last_accuracy`,
/// `last_cycles`, `last_energy_pj` and `last_memory_bytes` in the JSON.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LastPoint {
    #[serde(rename = "last_accuracy")]
    pub accuracy: Option<f64>,
    #[serde(rename = "last_cycles")]
    pub cycles: Option<u64>,
    #[serde(rename = "last_energy_pj")]
    pub energy_pj: Option<f64>,
    #[serde(rename = "last_memory_bytes")]
    pub memory_bytes: Option<f64>,
}

impl LastPoint {
    /// The coordinates of `p`, or none.
    pub fn of(p: Option<&FrontPoint>) -> LastPoint {
        LastPoint {
            accuracy: p.map(|p| p.accuracy),
            cycles: p.map(|p| p.cycles),
            energy_pj: p.map(|p| p.energy_pj),
            memory_bytes: p.map(|p| p.memory_bytes),
        }
    }
}

/// The least-energy design within `accuracy_tolerance` points of uniform 8-bit's accuracy and
/// what it saves against uniform 8-bit mapped optimally and mapped by random search.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    pub accuracy: f64,
    /// Points below uniform 8-bit's accuracy allowed (0: no loss).
    pub accuracy_tolerance: f64,
    pub cycles: u64,
    pub energy_pj: f64,
    /// Energy saved, percent of uniform 8-bit mapped optimally.
    pub energy_saved_vs_uniform_8bit_percent: f64,
    /// Energy saved, percent of uniform 8-bit mapped by random search.
    pub energy_saved_vs_uniform_8bit_random_search_percent: Option<f64>,
    pub memory_bytes: f64,
    /// Weight memory saved, percent of uniform 8-bit's.
    pub memory_saved_vs_uniform_8bit_percent: f64,
    /// Per weight bit-width, how many layers use it.
    pub weight_bits: Vec<(u32, usize)>,
}

/// The work behind a front (the terminal text's, not in the JSON).
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// Layers of the network.
    pub layers: usize,
    /// Distinct layer shapes of the table, and how many of them came from the cache.
    pub units: usize,
    pub cached_units: usize,
    /// Bit configurations some layer may take.
    pub bit_configurations: usize,
    /// Whether `min_accuracy` is the default window (not asked for).
    pub default_min_accuracy: bool,
    /// What the accuracy axis is (a score of −Σ KL for a table selecting by KL).
    pub accuracy_kind: fr::AccuracyKind,
    /// Lexicographic stages solved for the front.
    pub front_solves: usize,
    /// Designs NSGA-II evaluated.
    pub nsga2_evaluations: Option<usize>,
    /// Whether the front and the random-search baseline were read from the cache.
    pub front_cached: bool,
    pub random_search_cached: bool,
    pub random_search_seconds: f64,
    /// The point budget and the time budget (s) of the trace.
    pub limits: fr::TraceLimits,
}

/// The hypervolumes of the exact front and of NSGA-II's points.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Hypervolumes {
    pub exact: f64,
    pub nsga2: f64,
}

/// One network design: totals, status and per-layer choices with their optimal mappings.
#[derive(Debug, Clone, Serialize)]
pub struct Design {
    pub accuracy: f64,
    pub cycles: u64,
    pub energy_pj: f64,
    pub layers: Vec<LayerDesign>,
    pub memory_bytes: f64,
    pub status: fr::PointStatus,
}

impl Design {
    /// Network EDP (pJ · cycles).
    pub fn edp(&self) -> f64 {
        self.energy_pj * self.cycles as f64
    }
}

/// A layer's bits, energy and optimal mapping in a design.
#[derive(Debug, Clone, Serialize)]
pub struct LayerDesign {
    pub energy_pj: f64,
    pub input_bits: u32,
    /// The layer's optimal mapping at these bits (from the table), keys in alphabetical order.
    #[serde(serialize_with = "sorted_keys")]
    pub mapping: Option<MappingSpec>,
    pub name: String,
    pub output_bits: u32,
    pub weight_bits: u32,
}

/// Serialises a value's Rust name (`{:?}`).
fn debug_name<T: std::fmt::Debug, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:?}"))
}

/// Serialises a value through a JSON value, so that the keys of its maps and structs come in
/// alphabetical order (as `qmap front --json` has always printed mappings).
fn sorted_keys<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// Runs co-design (see the module doc). The CSV and SVG files are written before it returns.
pub fn run(req: &CodesignRequest) -> Result<CodesignReport, CodesignError> {
    let inputs = Inputs::load(req.instance)?;
    let table = build_table(req, &inputs)?;
    if let Some(reason) = infeasible_layer(&inputs.inst, &table) {
        return Ok(CodesignReport::Infeasible(InfeasibleNetwork {
            reason,
            status: "infeasible",
            cache_warnings: table.cache_warnings.clone(),
        }));
    }
    let unproven = table
        .layers
        .iter()
        .flatten()
        .filter(|e| !e.proof().optimal())
        .count();
    let exact = exact_front(req, &inputs, &table)?;
    let uniform16 = uniform16(&inputs, &req.settings);
    let random8 = random_baseline(req, &inputs);
    let headline = headline_points(req, &exact)?;
    let nsga = (req.method == Method::Nsga2).then(|| nsga2_run(req, &exact));
    let designs = Designs {
        uniform16,
        random8,
        headline,
        nsga,
    };
    let mut report = FrontReport::new(req, &inputs, &table, unproven, &exact, &designs);
    if let Some(v) = &req.verify {
        report.verification = Some(verify::verify(req, v, &inputs, &exact)?);
    }
    if let Some(csv) = req.csv {
        crate::report::write_atomic(csv, &crate::report::codesign::csv(&report))
            .map_err(|e| InputError::new(csv, "(file)", format!("cannot write: {e}")))?;
    }
    if let Some(svg) = req.svg {
        plot::write(svg, &inputs, &exact, &designs, &report)?;
    }
    Ok(CodesignReport::Front(Box::new(report)))
}

/// The table of per-layer optima, its progress shown by the table ([`crate::progress::Counter`]:
/// a bar of layer shapes on a terminal, a line every five seconds elsewhere).
fn build_table(req: &CodesignRequest, inputs: &Inputs) -> Result<Table, CodesignError> {
    let settings = TableSettings {
        progress: !req.quiet,
        ..req.settings.clone()
    };
    crate::optimum::build(&inputs.inst, &inputs.cons, &inputs.configs, &settings)
        .map_err(CodesignError::Solver)
}

/// The random-search baseline (uniform 8-bit), cached, its progress shown.
fn random_baseline(req: &CodesignRequest, inputs: &Inputs) -> (random::RandomBaseline, f64) {
    let t0 = std::time::Instant::now();
    let stage = Stage::start(req.quiet, "random-search baseline", true);
    if let Some(s) = &stage {
        s.set(format!(
            "uniform 8-bit, {} valid samples per layer shape",
            random::SAMPLES
        ));
    }
    let cache = crate::optimum::usable_cache(&req.settings).0.cache_dir;
    let r = random::uniform_random(
        &inputs.inst,
        &inputs.cons,
        BitConfig::uniform(8),
        req.seed,
        cache.as_deref(),
    );
    (r, t0.elapsed().as_secs_f64())
}

/// The instance with what the front needs: its constraints, accuracy model, bit sets and the
/// bit configurations the table needs.
struct Inputs {
    inst: Instance,
    cons: Constraints,
    accuracy: fr::AccuracyModel,
    bitsets: fr::BitSets,
    /// Every configuration some layer may take.
    configs: Vec<Option<BitConfig>>,
}

impl Inputs {
    fn load(path: &Path) -> Result<Inputs, InputError> {
        let inst = instance::load(path)?;
        refuse_matmul(&inst, path)?;
        let fs = inst.front.clone().ok_or_else(|| {
            InputError::new(
                path,
                "front",
                "missing: `qmap front` needs a `front:` section with the accuracy model",
            )
        })?;
        if inst.bits.is_native() {
            return Err(InputError::new(
                path,
                "bits",
                "`qmap front` needs bit-width lists (inputs/outputs: activation bits, weights)",
            ));
        }
        let cons = inst.constraints()?;
        let kinds: Vec<(String, bool)> = (inst.layers.iter())
            .map(|l| (l.name.clone(), l.problem.dims.iter().any(|d| d == "G")))
            .collect();
        let accuracy = fr::AccuracyModel::load(&fs.accuracy_file)?.for_network(&kinds);
        let mut activations: Vec<u32> = inst
            .bits
            .inputs
            .iter()
            .chain(&inst.bits.outputs)
            .copied()
            .collect();
        activations.sort_unstable();
        activations.dedup();
        let bitsets = fr::BitSets {
            weights: inst.bits.weights.clone(),
            activations,
            first_input: fs.first_input_bits,
            last_output: fs.last_output_bits,
        };
        let configs = network_configs(&inst, &bitsets);
        Ok(Inputs {
            inst,
            cons,
            accuracy,
            bitsets,
            configs,
        })
    }
}

/// `front` does not take matmul layers yet: their second operand is an activation whose bits
/// the selection would have to tie to its producer's output (a second producer per layer,
/// which the front's producer-forest chain and its Lagrangian DP do not have).
fn refuse_matmul(inst: &Instance, path: &Path) -> Result<(), InputError> {
    match (inst.layers.iter()).find(|l| l.problem.weights_are_activation()) {
        Some(l) => Err(InputError::new(
            path,
            "workload.network",
            format!(
                "layer `{}` is a matmul (two activation operands): `qmap front` does not take \
                 matmul layers yet (its chain ties one producer per layer); `map` and \
                 `baseline` do",
                l.name
            ),
        )),
        None => Ok(()),
    }
}

/// The bit choices of the tables `qmap front` builds for the instance at `path`, in order: the
/// network's table, then the uniform 16-bit design's (the plot's mark). `qmap table` shards
/// exactly these, so that a front over the filled cache reads every unit from it.
pub fn table_bit_choices(path: &Path) -> Result<Vec<Vec<Option<BitConfig>>>, InputError> {
    let inputs = Inputs::load(path)?;
    Ok(vec![inputs.configs, UNIFORM16.to_vec()])
}

/// The bit choice of the uniform 16-bit design.
const UNIFORM16: [Option<BitConfig>; 1] = [Some(BitConfig::uniform(16))];

/// Every bit configuration some layer of the network may take, in order of first appearance.
fn network_configs(inst: &Instance, bitsets: &fr::BitSets) -> Vec<Option<BitConfig>> {
    let n = inst.layers.len();
    let mut configs: Vec<Option<BitConfig>> = vec![];
    for (i, l) in inst.layers.iter().enumerate() {
        for c in bitsets.layer_configs(l.producer, i + 1 == n) {
            let t = Some(c);
            if !configs.contains(&t) {
                configs.push(t);
            }
        }
    }
    configs
}

/// A layer no bit choice maps (proved) makes the network infeasible: the reason, naming it.
fn infeasible_layer(inst: &Instance, table: &Table) -> Option<String> {
    let (layer, entries) = (inst.layers.iter().zip(&table.layers)).find(|(_, es)| {
        es.iter()
            .all(|e| e.energy_pj().is_none() && e.proof().optimal())
    })?;
    let why = entries.iter().find_map(|e| e.cert.reason.clone());
    Some(format!(
        "layer {}: no mapping at any bit choice: {}",
        layer.name,
        why.as_deref().unwrap_or("no mapping of the mapspace fits")
    ))
}

/// The exact front and what it was traced from.
struct ExactFront {
    problem: fr::SelectionProblem,
    uniform8: Option<FrontPoint>,
    /// The request's budgets, the accuracy budget resolved (asked for, or uniform 8-bit's
    /// accuracy minus 2 points).
    budgets: fr::Budgets,
    front: fr::Front,
    /// Whether the front was read from the cache.
    from_cache: bool,
}

/// The points' accuracy budget (on the model's score): `--min-accuracy`, or for a table selecting
/// by KL −`--max-kl`; by default uniform 8-bit's score less the model's window
/// ([`fr::AccuracyKind::default_window`]).
fn accuracy_budget(
    req: &CodesignRequest,
    model: &fr::AccuracyModel,
    uniform8: Option<&FrontPoint>,
) -> Result<Option<f64>, InputError> {
    let kind = model.kind();
    let asked = match (kind, req.budgets.min_accuracy, req.max_kl) {
        (fr::AccuracyKind::Kl, Some(_), _) => {
            let why =
                "the table selects by KL (`select_by: kl`): give --max-kl, not --min-accuracy";
            return Err(InputError::new(model.file(), "select_by", why));
        }
        (fr::AccuracyKind::Kl, None, max_kl) => max_kl.map(|k| -k),
        (_, _, Some(_)) => {
            let why = "--max-kl needs an accuracy table that selects by KL (`select_by: kl`)";
            return Err(InputError::new(model.file(), "select_by", why));
        }
        (_, min, None) => min,
    };
    Ok(asked.or(uniform8.map(|u| u.accuracy - kind.default_window())))
}

/// A front error about the instance's `front` data.
fn front_error(req: &CodesignRequest, e: fr::FrontError) -> InputError {
    InputError::new(req.instance, "front", e.to_string())
}

/// The selection problem over the table (per-layer weight budgets, `weight_budget_bytes`, apply
/// to it too) and its exact front within the budgets: from the cache when a stored front checks
/// out, else traced (its progress shown) and, when complete, stored.
fn exact_front(
    req: &CodesignRequest,
    inputs: &Inputs,
    table: &Table,
) -> Result<ExactFront, InputError> {
    let inst = &inputs.inst;
    let energy_table = front_table(inst, table, |weights, t| {
        inst.bits.weight_budget_bytes.is_none() || inst.bits.configs(weights).contains(&t)
    });
    let problem = fr::SelectionProblem::new(&energy_table, &inputs.accuracy, &inputs.bitsets)
        .map_err(|e| front_error(req, e))?;
    let uniform8 = problem.uniform(8);
    let budgets = fr::Budgets {
        min_accuracy: accuracy_budget(req, &inputs.accuracy, uniform8.as_ref())?,
        ..req.budgets
    };
    let opts = fr::FrontOptions {
        limits: req.limits,
        accuracy_resolution: req.accuracy_resolution,
        budgets,
        ..Default::default()
    };
    let cache = crate::optimum::usable_cache(&req.settings).0.cache_dir;
    let file = cache.map(|d| stored::file(&d, &problem, req.kind, &opts));
    let cached = file
        .as_deref()
        .and_then(|f| stored::read(f, &problem, &opts));
    let from_cache = cached.is_some();
    let front = match cached {
        Some(f) => f,
        None => {
            let f = trace(req, &problem, &opts)?;
            if let Some(file) = &file {
                stored::write(file, &f);
            }
            f
        }
    };
    Ok(ExactFront {
        problem,
        uniform8,
        budgets,
        front,
        from_cache,
    })
}

/// Traces the front, showing how far it got.
fn trace(
    req: &CodesignRequest,
    problem: &fr::SelectionProblem,
    opts: &fr::FrontOptions,
) -> Result<fr::Front, InputError> {
    let stage = Stage::start(req.quiet, "front", true);
    let mut progress = |n: usize, p: &FrontPoint| {
        if let Some(s) = &stage {
            s.set(format!(
                "{n} points (at most {}), last: {}, {:.3} % accuracy, {:.2} MiB, {} cycles",
                req.limits.max_points,
                crate::report::energy(p.energy_pj),
                p.accuracy,
                p.memory_bytes / (1024.0 * 1024.0),
                p.cycles
            ));
        }
    };
    fr::trace_front_with(problem, req.kind, opts, &mut progress).map_err(|e| front_error(req, e))
}

/// The uniform 16-bit design (the plot's mark only): its own table at 16 bits; None when that
/// fails.
fn uniform16(inputs: &Inputs, settings: &TableSettings) -> Option<FrontPoint> {
    let t16 = crate::optimum::build(&inputs.inst, &inputs.cons, &UNIFORM16, settings).ok()?;
    let et = front_table(&inputs.inst, &t16, |_, _| true);
    let b16 = fr::BitSets {
        weights: vec![16],
        activations: vec![16],
        first_input: 16,
        last_output: 16,
    };
    fr::SelectionProblem::new(&et, &inputs.accuracy, &b16)
        .ok()?
        .uniform(16)
}

/// The headline's designs: the least-energy design at least as accurate as uniform 8-bit, then
/// within the tolerance of it (each a point of the energy × accuracy front, solved directly,
/// whatever front was asked for), with the tolerance.
fn headline_points(
    req: &CodesignRequest,
    exact: &ExactFront,
) -> Result<Vec<(f64, FrontPoint)>, InputError> {
    let Some(u) = &exact.uniform8 else {
        return Ok(vec![]);
    };
    let kind = exact.problem.accuracy_kind();
    let mut out = vec![];
    let tolerance = req.accuracy_tolerance.unwrap_or(kind.default_tolerance());
    for tolerance in [0.0, tolerance] {
        if out.iter().any(|(t, _)| *t == tolerance) {
            continue;
        }
        let budgets = fr::Budgets {
            min_accuracy: Some(u.accuracy - tolerance),
            max_cycles: req.budgets.max_cycles,
            ..Default::default()
        };
        let best = fr::select(&exact.problem, fr::Goal::Energy, &budgets, None)
            .map_err(|e| front_error(req, e))?;
        out.extend(best.map(|p| (tolerance, p)));
    }
    Ok(out)
}

/// NSGA-II's run and its comparison with the exact front.
struct Nsga2Run {
    result: fr::Nsga2Result,
    /// Its points within the exact front's budgets (it searches without them).
    within: Vec<FrontPoint>,
    /// (exact, NSGA-II) hypervolumes; only against a complete exact front.
    hypervolume: Option<(f64, f64)>,
}

/// Runs the seed's NSGA-II over the same selection problem and compares it with the front.
fn nsga2_run(req: &CodesignRequest, exact: &ExactFront) -> Nsga2Run {
    let opts = fr::Nsga2Options {
        seed: req.seed,
        ..Default::default()
    };
    let stage = Stage::start(req.quiet, "NSGA-II", true);
    if let Some(s) = &stage {
        s.set(format!(
            "{} parents, {} offspring, {} generations",
            opts.parents, opts.offspring, opts.generations
        ));
    }
    let result = fr::nsga2(&exact.problem, &opts);
    drop(stage);
    let within: Vec<FrontPoint> = result
        .front
        .iter()
        .filter(|p| exact.budgets.admit(p))
        .cloned()
        .collect();
    let front = &exact.front;
    let hypervolume = front.complete.then(|| {
        let criteria = req.kind.criteria();
        let reference = hypervolume_reference(&front.points, &within, criteria);
        (
            fr::front_hypervolume(&front.points, criteria, &reference),
            fr::front_hypervolume(&within, criteria, &reference),
        )
    });
    Nsga2Run {
        result,
        within,
        hypervolume,
    }
}

/// The hypervolume reference: 1% beyond the worst value of either point set in each criterion.
fn hypervolume_reference(
    a: &[FrontPoint],
    b: &[FrontPoint],
    criteria: &[fr::Criterion],
) -> Vec<f64> {
    let all: Vec<Vec<f64>> = a.iter().chain(b).map(|p| p.costs(criteria)).collect();
    (0..criteria.len())
        .map(|c| {
            let (lo, hi) = all
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v[c]), hi.max(v[c]))
                });
            hi + 0.01 * (hi - lo).max(hi.abs() * 1e-6)
        })
        .collect()
}

/// The designs compared with the front.
struct Designs {
    uniform16: Option<FrontPoint>,
    /// Uniform 8-bit mapped by random search, and its wall time (s).
    random8: (random::RandomBaseline, f64),
    /// The headline's designs, with their tolerances.
    headline: Vec<(f64, FrontPoint)>,
    nsga: Option<Nsga2Run>,
}

impl FrontReport {
    fn new(
        req: &CodesignRequest,
        inputs: &Inputs,
        table: &Table,
        unproven: usize,
        exact: &ExactFront,
        d: &Designs,
    ) -> FrontReport {
        let design = |p: &FrontPoint| Design::new(p, table, &inputs.inst);
        let front = &exact.front;
        let accuracy_model = inputs.accuracy.label();
        let headline = headlines(exact.uniform8.as_ref(), d);
        FrontReport {
            accuracy_model,
            architecture: inputs.inst.arch.name.clone(),
            best_vs_uniform_8bit: d.headline.first().map(|(_, p)| design(p)),
            comparison: comparison(
                inputs.accuracy.kind(),
                &headline,
                exact.uniform8.as_ref(),
                d,
            ),
            complete: front.complete,
            stopped: stopped(req, front),
            headline,
            front: req.kind,
            front_seconds: front.seconds,
            hypervolume: d
                .nsga
                .as_ref()
                .and_then(|r| r.hypervolume)
                .map(|(e, n)| Hypervolumes { exact: e, nsga2: n }),
            latency_budget: req.budgets.max_cycles.map(|max_cycles| LatencyBudget {
                max_cycles,
                optimal_over: LATENCY_BUDGET_SCOPE,
            }),
            min_accuracy: exact.budgets.min_accuracy,
            min_edp: (req.kind == FrontKind::EnergyCycles)
                .then(|| fr::min_edp(front).map(design))
                .flatten(),
            nsga2: d
                .nsga
                .as_ref()
                .map(|r| r.result.front.iter().map(design).collect()),
            nsga2_within_budgets: d.nsga.as_ref().map(|r| r.within.len()),
            points: front.points.iter().map(design).collect(),
            table_entries_not_proven: unproven,
            table_seconds: table.seconds,
            baselines: Baselines {
                uniform_16bit: d.uniform16.as_ref().map(design),
                uniform_8bit: exact.uniform8.as_ref().map(design),
                uniform_8bit_random_search_cycles: d.random8.0.cycles,
                uniform_8bit_random_search_pj: d.random8.0.energy_pj,
            },
            workload: inputs.inst.workload_name.clone(),
            verification: None,
            work: Work {
                layers: inputs.inst.layers.len(),
                units: table.units,
                cached_units: table.cached_units,
                bit_configurations: inputs.configs.len(),
                default_min_accuracy: req.budgets.min_accuracy.is_none() && req.max_kl.is_none(),
                accuracy_kind: inputs.accuracy.kind(),
                front_solves: front.solves,
                nsga2_evaluations: d.nsga.as_ref().map(|r| r.result.evaluations),
                front_cached: exact.from_cache,
                random_search_cached: d.random8.0.cached_shapes == d.random8.0.shapes,
                random_search_seconds: d.random8.1,
                limits: req.limits,
            },
            cache_warnings: table.cache_warnings.clone(),
        }
    }
}

/// Why and where an incomplete front stopped (None when it is complete).
fn stopped(req: &CodesignRequest, front: &fr::Front) -> Option<Stopped> {
    let reason = front.stopped?;
    let explanation = match reason {
        fr::StopReason::PointBudget => format!(
            "stopped after {} points (the point budget, --points {}); raise --points for the rest",
            front.points.len(),
            req.limits.max_points
        ),
        fr::StopReason::TimeBudget => format!(
            "stopped after {:.0} s (the time budget, --front-time-limit {}); raise it for the rest",
            front.seconds,
            req.limits.time_budget.unwrap_or(0.0)
        ),
        fr::StopReason::SolveTimeLimit => {
            "a selection solve reached its time limit without a solution".to_string()
        }
    };
    // The last point traced: the one of most energy (2-D fronts come out in increasing energy).
    Some(Stopped {
        reason,
        explanation,
        last: LastPoint::of(front.points.last()),
    })
}

/// The headline's figures (see [`Headline`]).
fn headlines(uniform8: Option<&FrontPoint>, d: &Designs) -> Vec<Headline> {
    let Some(u) = uniform8 else {
        return vec![];
    };
    let saved = |base: f64, x: f64| 100.0 * (1.0 - x / base);
    d.headline
        .iter()
        .map(|(tolerance, p)| {
            let mut weight_bits: Vec<(u32, usize)> = vec![];
            for l in &p.layers {
                match weight_bits
                    .iter_mut()
                    .find(|(b, _)| *b == l.bits.weight_bits)
                {
                    Some(e) => e.1 += 1,
                    None => weight_bits.push((l.bits.weight_bits, 1)),
                }
            }
            weight_bits.sort_unstable();
            Headline {
                accuracy: p.accuracy,
                accuracy_tolerance: *tolerance,
                cycles: p.cycles,
                energy_pj: p.energy_pj,
                energy_saved_vs_uniform_8bit_percent: saved(u.energy_pj, p.energy_pj),
                energy_saved_vs_uniform_8bit_random_search_percent: d
                    .random8
                    .0
                    .energy_pj
                    .map(|r| saved(r, p.energy_pj)),
                memory_bytes: p.memory_bytes,
                memory_saved_vs_uniform_8bit_percent: saved(u.memory_bytes, p.memory_bytes),
                weight_bits,
            }
        })
        .collect()
}

impl Design {
    /// A point with each layer's optimal mapping at its bits (from `table`; None where the table
    /// has no entry at those bits).
    fn new(p: &FrontPoint, table: &Table, inst: &Instance) -> Design {
        let mapping_of = |l: usize, b: &fr::BitConfig| {
            let e = (table.layers[l].iter()).find(|e| e.bits == Some(*b))?;
            let m = e.cert.mapping.as_ref()?;
            Some(crate::model::mapping_to_spec(
                m,
                &inst.arch,
                &inst.layers[l].problem,
            ))
        };
        Design {
            accuracy: p.accuracy,
            cycles: p.cycles,
            energy_pj: p.energy_pj,
            layers: p
                .layers
                .iter()
                .enumerate()
                .map(|(i, l)| LayerDesign {
                    energy_pj: l.energy_pj,
                    input_bits: l.bits.input_bits,
                    mapping: mapping_of(i, &l.bits),
                    name: l.name.clone(),
                    output_bits: l.bits.output_bits,
                    weight_bits: l.bits.weight_bits,
                })
                .collect(),
            memory_bytes: p.memory_bytes,
            status: p.status,
        }
    }
}

/// The headline as sentences, one per tolerance: the design, and what it saves against uniform
/// 8-bit mapped optimally and by random search.
fn comparison(
    kind: fr::AccuracyKind,
    headline: &[Headline],
    uniform8: Option<&FrontPoint>,
    d: &Designs,
) -> String {
    let energy = crate::report::energy;
    let Some(u) = uniform8 else {
        return "no uniform 8-bit design in the table".into();
    };
    let lines: Vec<String> = headline
        .iter()
        .map(|h| {
            format!(
                "{}: {} ({:.4} {}, {:.1} KiB); saves {:.1}% energy vs uniform 8-bit mapped optimally ({}), {} vs uniform 8-bit mapped by random search ({}); {:.1}% weight memory",
                if h.accuracy_tolerance == 0.0 {
                    "at no accuracy loss vs uniform 8-bit".to_string()
                } else {
                    format!("within {} {} of uniform 8-bit", h.accuracy_tolerance, kind.unit())
                },
                energy(h.energy_pj),
                h.accuracy,
                kind.label(),
                h.memory_bytes / 1024.0,
                h.energy_saved_vs_uniform_8bit_percent,
                energy(u.energy_pj),
                h.energy_saved_vs_uniform_8bit_random_search_percent
                    .map_or("-".into(), |r| format!("{r:.1}%")),
                d.random8.0.energy_pj.map_or("no valid mapping".into(), energy),
                h.memory_saved_vs_uniform_8bit_percent,
            )
        })
        .collect();
    lines.join("\n")
}

/// The selection problem's table from the per-layer optima: the entries with a mapping whose
/// (layer weights, bits) `keep` accepts.
fn front_table(
    inst: &Instance,
    table: &Table,
    keep: impl Fn(u64, BitConfig) -> bool,
) -> fr::EnergyTable {
    let mut et = fr::EnergyTable::for_layers(&inst.layers);
    for (lt, entries) in et.layers.iter_mut().zip(&table.layers) {
        for e in entries {
            if let (Some(bits), Some(energy_pj), Some(cycles)) = (e.bits, e.energy_pj(), e.cycles())
            {
                if keep(lt.weights, bits) {
                    lt.entries.push(fr::TableEntry {
                        bits,
                        energy_pj,
                        cycles,
                    });
                }
            }
        }
    }
    et
}

mod plot;
pub mod random;
mod stored;
mod verify;

pub use verify::{
    Checked, HeadlinePoint, MeasuredHeadline, Predicted, PredictionError, References, Spread,
    Summary, Verification, VerifyRequest, MEASURED_TOLERANCE,
};
#[cfg(test)]
mod tests;
