//! The command line: argument parsing and the commands, each a thin layer over the library.

use crate::eval::{evaluate, Evaluation};
use crate::instance;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::report;
use crate::spec::{InputError, Objective, PackingMode};
use crate::timeloop;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "qmap",
    version,
    about = "Provably optimal mappings and bit-widths for DNN accelerators"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate a mapping with Timeloop's cost model (plus mixed-precision packing).
    Eval(EvalArgs),
    /// Find the optimal mapping of the instance's layer and prove it (enumeration or MILP).
    Map(MapArgs),
    /// Baseline mappers on the same mapspace: exhaustive enumeration or random-pruned search.
    Search(SearchArgs),
    /// Write a mapping (any format qmap reads) as a Timeloop mapping + problem file.
    Export(ExportArgs),
    /// Proven-optimal mappings of every layer (and bit choice): qmap and Timeloop formats,
    /// certificates and a summary.csv.
    Baseline(BaselineArgs),
    /// Gap of a heuristic mapper's mappings to the proven optimum, layer by layer (for CI).
    Gap(GapArgs),
    /// Network co-design: the exact Pareto front of energy × accuracy × memory over per-layer
    /// bit-widths, each layer mapped optimally.
    Front(FrontArgs),
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontKindArg {
    /// Energy × accuracy.
    Accuracy,
    /// Energy × weight memory.
    Memory,
    /// Energy × accuracy × weight memory.
    Both,
    /// Energy × cycles (network latency), with the minimum-EDP point.
    Cycles,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontMethod {
    /// The exact front (epsilon-constraint over the selection problem: label search, MILP fallback).
    Exact,
    /// The seed's NSGA-II over the same table, compared with the exact front (hypervolume).
    Nsga2,
}

#[derive(clap::Args, Debug)]
pub struct FrontArgs {
    /// Instance with a network workload, bit-width lists and a `front:` section.
    pub instance: PathBuf,
    #[arg(long, value_enum, default_value_t = FrontKindArg::Accuracy)]
    pub front: FrontKindArg,
    #[arg(long, value_enum, default_value_t = FrontMethod::Exact)]
    pub method: FrontMethod,
    /// Stop after this many front points (lowest energy first).
    #[arg(long, default_value_t = 50)]
    pub points: usize,
    /// Only points with at least this accuracy (the accuracy model's unit, % top-1). Default:
    /// uniform 8-bit's accuracy minus 2 points (the front below is long and rarely wanted);
    /// `--min-accuracy 0` traces all of it.
    #[arg(long)]
    pub min_accuracy: Option<f64>,
    /// Accuracies closer than this count as equal (percentage points).
    #[arg(long, default_value_t = 1e-6)]
    pub accuracy_resolution: f64,
    /// Only points with at most this weight memory (bytes).
    #[arg(long)]
    pub max_memory: Option<f64>,
    /// NSGA-II seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
    /// Write the points as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write an SVG plot of the front (uniform 8- and 16-bit designs marked).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    #[command(flatten)]
    pub optimum: OptimumArgs,
}

/// How per-layer optima are proved.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineArg {
    /// Enumerate spaces up to --enumerate-limit factorisations × keep patterns, MILP above
    /// (first letting the enumeration try for 2 s per packing class).
    Auto,
    Milp,
    Enumerate,
}

/// How an optimum is proved: the engine flags of `map` and of the commands that need
/// per-layer optima.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// How the optimum is proved: `auto` enumerates mapspaces up to --enumerate-limit
    /// factorisations × keep patterns (every mapping evaluated or bounded: bound = value);
    /// above, it lets the enumeration try for 2 s per packing class of the bit choices and
    /// runs the MILP if it has not finished; latency and EDP are proved by enumeration only.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    pub engine: EngineArg,
    /// Largest mapspace the auto engine enumerates, in factorisations × keep patterns (each is
    /// bounded over its loop orders, which are evaluated only when the bound does not rule
    /// them out).
    #[arg(long, default_value_t = crate::network::ENUMERATE_LIMIT)]
    pub enumerate_limit: u128,
}

/// Options shared by the commands that need per-layer optima.
#[derive(clap::Args, Debug, Clone)]
pub struct OptimumArgs {
    #[command(flatten)]
    pub prover: EngineArgs,
    /// Wall-clock limit per layer shape (seconds): its enumeration and MILPs together, at
    /// every bit choice; on expiry the incumbent and its bound are kept (`time_limit`).
    #[arg(long, default_value_t = 120.0)]
    pub time_limit: f64,
    /// Cache of per-layer optima (content-hashed; `none` disables it).
    #[arg(long, default_value = ".qmap-cache")]
    pub cache: PathBuf,
}

impl From<EngineArg> for crate::network::Engine {
    fn from(e: EngineArg) -> crate::network::Engine {
        match e {
            EngineArg::Auto => crate::network::Engine::Auto,
            EngineArg::Milp => crate::network::Engine::Milp,
            EngineArg::Enumerate => crate::network::Engine::Enumerate,
        }
    }
}

impl OptimumArgs {
    fn settings(&self, progress: bool) -> crate::network::TableSettings {
        crate::network::TableSettings {
            engine: self.prover.engine.into(),
            enumerate_limit: self.prover.enumerate_limit,
            time_limit: Some(self.time_limit),
            cache_dir: (self.cache != std::path::Path::new("none")).then(|| self.cache.clone()),
            progress,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Instance file (architecture, workload, bits).
    pub instance: PathBuf,
    #[arg(long)]
    pub layer: Option<String>,
    /// The mapping: qmap YAML, Timeloop map.yaml / map.txt / stats.txt, or a mapper output dir
    /// (default: the instance's own mapping).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Output file (Timeloop v0.4 `problem:` + `mapping:`).
    #[arg(long, required_unless_present = "timeloop_dir")]
    pub out: Option<PathBuf>,
    /// Also write the architecture, its energies, the problem and the mapping as the four
    /// files `timeloop-model` takes (`arch.yaml`, `ERT.yaml`, `problem.yaml`, `map.yaml`) in
    /// this directory: `timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml` reruns the
    /// evaluation in Timeloop v3.0.3.
    #[arg(long)]
    pub timeloop_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// Instance file (a network or a layer).
    pub instance: PathBuf,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Only these layers (names or 1-based indices, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub layers: Vec<String>,
    #[command(flatten)]
    pub optimum: OptimumArgs,
}

#[derive(clap::Args, Debug)]
pub struct GapArgs {
    /// Instance file (a network or a layer).
    #[arg(required_unless_present = "timeloop")]
    pub instance: Option<PathBuf>,
    /// Timeloop-format design instead of an instance: ARCH PROBLEM ERT.
    #[arg(long, num_args = 3, value_names = ["ARCH", "PROBLEM", "ERT"], conflicts_with_all = ["instance", "layer"])]
    pub timeloop: Option<Vec<PathBuf>>,
    /// With a single mapping file and a network workload: its layer (name or 1-based index).
    #[arg(long)]
    pub layer: Option<String>,
    /// Timeloop-format mapspace constraints (added to the instance's own).
    #[arg(long)]
    pub constraints: Option<PathBuf>,
    /// The heuristic's mappings: one file (single layer), or a directory holding per layer
    /// `LAYER.yaml` (qmap), `LAYER.map.yaml` / `LAYER.map.txt` (Timeloop) or `LAYER/` (a
    /// timeloop-mapper output directory).
    #[arg(long)]
    pub mappings: PathBuf,
    /// Largest acceptable gap, as a fraction (0.05) or a percentage (5%).
    #[arg(long, default_value = "5%")]
    pub max_gap: String,
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML report (one test case per layer).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub optimum: OptimumArgs,
}

#[derive(clap::Args, Debug)]
pub struct MapArgs {
    /// Instance file.
    #[arg(required_unless_present = "timeloop")]
    pub instance: Option<PathBuf>,
    /// With a network workload: the layer (name or 1-based index).
    #[arg(long)]
    pub layer: Option<String>,
    /// Timeloop-format design instead of an instance: ARCH PROBLEM ERT (bit-widths from the
    /// problem's `instance.bitwidths`).
    #[arg(long, num_args = 3, value_names = ["ARCH", "PROBLEM", "ERT"], conflicts_with_all = ["instance", "layer"])]
    pub timeloop: Option<Vec<PathBuf>>,
    /// Timeloop-format mapspace constraints (added to the instance's own).
    #[arg(long)]
    pub constraints: Option<PathBuf>,
    /// Objective (default: the instance's, else energy).
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveArg>,
    /// Wall-clock limit in seconds (MILP or enumeration); on expiry the incumbent, the bound and
    /// the gap are printed.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Relative gap at which the answer counts as optimal.
    #[arg(long, default_value_t = 1e-6)]
    pub gap: f64,
    #[command(flatten)]
    pub prover: EngineArgs,
    /// Write the mapping (qmap format) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the mapping and problem in Timeloop's v0.4 format to this file.
    #[arg(long)]
    pub timeloop_out: Option<PathBuf>,
    /// Print the certificate as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// How a long solve shows its progress on stderr.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ProgressArgs {
    /// Show progress (engine, incumbent, bound, gap, elapsed) on stderr even when it is not a
    /// terminal: a line every 5 s (on a terminal it is shown anyway, redrawn every second).
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// Show no progress.
    #[arg(long)]
    pub quiet: bool,
}

impl ProgressArgs {
    fn mode(self) -> crate::progress::Mode {
        match (self.progress, self.quiet) {
            (_, true) => crate::progress::Mode::Quiet,
            (true, _) => crate::progress::Mode::Always,
            _ => crate::progress::Mode::Auto,
        }
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectiveArg {
    Energy,
    Latency,
    Edp,
}

impl From<ObjectiveArg> for Objective {
    fn from(o: ObjectiveArg) -> Objective {
        match o {
            ObjectiveArg::Energy => Objective::Energy,
            ObjectiveArg::Latency => Objective::Latency,
            ObjectiveArg::Edp => Objective::Edp,
        }
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMethod {
    Exhaustive,
    Random,
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Instance file.
    pub instance: PathBuf,
    #[arg(long, value_enum, default_value_t = SearchMethod::Random)]
    pub method: SearchMethod,
    #[arg(long)]
    pub layer: Option<String>,
    /// Random search: valid samples to draw.
    #[arg(long, default_value_t = 10_000)]
    pub samples: u64,
    /// Random search: stop after this many valid samples without improvement.
    #[arg(long)]
    pub victory: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Exhaustive: refuse spaces larger than this unless --force.
    #[arg(long, default_value_t = 10_000_000)]
    pub limit: u128,
    /// Wall-clock limit in seconds: the search stops there with the best mapping so far.
    #[arg(long)]
    pub time_limit: Option<f64>,
    #[arg(long)]
    pub force: bool,
    /// Objective (default: the instance's, else energy).
    #[arg(long, value_enum)]
    pub objective: Option<ObjectiveArg>,
    /// Write the best mapping (qmap format) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the best mapping and problem in Timeloop's v0.4 format to this file.
    #[arg(long)]
    pub timeloop_out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Instance file (qmap YAML).
    #[arg(required_unless_present = "timeloop")]
    pub instance: Option<PathBuf>,
    /// Mapping file (qmap format) instead of the instance's own `mapping`.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// With a network workload: the layer to evaluate (name or 1-based index).
    #[arg(long)]
    pub layer: Option<String>,
    /// Timeloop-format design instead of an instance: ARCH PROBLEM MAP ERT.
    #[arg(long, num_args = 4, value_names = ["ARCH", "PROBLEM", "MAP", "ERT"], conflicts_with_all = ["instance", "mapping", "layer"])]
    pub timeloop: Option<Vec<PathBuf>>,
    /// Print the evaluation as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a command ended: 0 success, 1 a check failed, 2 bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    CheckFailed,
    BadInput,
}

impl Outcome {
    pub fn code(self) -> i32 {
        match self {
            Outcome::Ok => 0,
            Outcome::CheckFailed => 1,
            Outcome::BadInput => 2,
        }
    }
}

/// Why a command did not run to its end: bad input (exit code 2) or a fault of qmap's own
/// (exit code 3: a failed self-check or a solver failure, with a request for a bug report).
#[derive(Debug)]
pub enum Failure {
    Input(InputError),
    Internal(String),
}

impl Failure {
    pub fn code(&self) -> i32 {
        match self {
            Failure::Input(_) => Outcome::BadInput.code(),
            Failure::Internal(_) => 3,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Input(e) => write!(f, "{e}"),
            Failure::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Failure {
        Failure::Input(e)
    }
}

/// A solver's error about `file`'s problem: an internal error (a failed check, HiGHS failing)
/// or a request the solver refuses (bad input).
fn solver_failure(file: &std::path::Path, e: String) -> Failure {
    if e.starts_with("internal error") {
        Failure::Internal(e)
    } else if e.starts_with("HiGHS") {
        Failure::Internal(crate::certify::internal_error(&e))
    } else {
        Failure::Input(InputError::new(file, "(solver)", e))
    }
}

/// Runs a parsed command line; failures come back as `Err` (exit code 2 or 3).
pub fn run(cli: Cli) -> Result<Outcome, Failure> {
    match cli.command {
        Command::Eval(a) => eval_cmd(a),
        Command::Map(a) => map_cmd(a),
        Command::Search(a) => search_cmd(a),
        Command::Export(a) => export_cmd(a),
        Command::Baseline(a) => baseline_cmd(a),
        Command::Gap(a) => gap_cmd(a),
        Command::Front(a) => front_cmd(a),
    }
}

/// One layer to map or search: its design, mapspace, bit-width choices and objective.
struct Job {
    /// "workload / layer on arch".
    title: String,
    arch: Arch,
    problem: Problem,
    space: crate::mapspace::Mapspace,
    /// The allowed bit-widths: the (inputs, weights, outputs) triple (None = native or per
    /// tensor from a Timeloop problem) and the model options it gives.
    choices: Vec<(Option<instance::BitTriple>, ModelOptions)>,
    objective: Objective,
    /// The file the job came from (errors name it).
    file: PathBuf,
}

/// Loads a job from an instance (layer selected) or from Timeloop design files, with extra
/// constraints and an objective override.
fn load_job(
    instance: Option<&std::path::Path>,
    layer: &Option<String>,
    tl: Option<&[PathBuf]>,
    extra_constraints: Option<&std::path::Path>,
    objective: Option<ObjectiveArg>,
) -> Result<Job, InputError> {
    let (title, arch, problem, mut cons, choices, inst_objective, file) = if let Some(tl) = tl {
        let (arch_f, prob_f, ert_f) = (&tl[0], &tl[1], &tl[2]);
        let (arch, problem, opts) = timeloop_design(arch_f, prob_f, ert_f)?;
        let cons = crate::mapspace::Constraints::new(&arch);
        let title = format!("{} on {}", problem.name, arch.name);
        (
            title,
            arch,
            problem,
            cons,
            vec![(None, opts)],
            Objective::Energy,
            prob_f.clone(),
        )
    } else {
        let path = instance.expect("clap requires INSTANCE without --timeloop");
        let mut inst = instance::load(path)?;
        if let Some(sel) = layer {
            inst.selected = select_layer(&inst, sel, path)?;
        }
        let cons = inst.constraints()?;
        let problem = inst.layer().problem.clone();
        let choices = if inst.bits.is_native() {
            vec![(None, inst.options(&problem, None))]
        } else {
            let triples = inst.bits.triples(inst.layer().weights);
            if triples.is_empty() {
                return Err(InputError::new(
                    path,
                    "bits.weight_budget_bytes",
                    format!(
                        "no weight bit-width of layer {} fits the budget",
                        inst.layer().name
                    ),
                ));
            }
            triples
                .into_iter()
                .map(|t| (Some(t), inst.options(&problem, Some(t))))
                .collect()
        };
        let title = format!(
            "{} / {} on {}",
            inst.workload_name,
            inst.layer().name,
            inst.arch.name
        );
        let objective = inst.objective;
        (
            title,
            inst.arch,
            problem,
            cons,
            choices,
            objective,
            path.to_path_buf(),
        )
    };
    if let Some(f) = extra_constraints {
        cons.add_file(f, &arch)?;
    }
    let space = crate::mapspace::Mapspace::new(&problem, &arch, &cons)
        .map_err(|e| InputError::new(extra_constraints.unwrap_or(&file), "constraints", e))?;
    Ok(Job {
        title,
        arch,
        problem,
        space,
        choices,
        objective: objective.map_or(inst_objective, Objective::from),
        file,
    })
}

/// A Timeloop-format design: the architecture with its ERT, the problem, and the model options
/// at the problem's `instance.bitwidths` (seed packing; native without bit-widths).
fn timeloop_design(
    arch_f: &std::path::Path,
    prob_f: &std::path::Path,
    ert_f: &std::path::Path,
) -> Result<(Arch, Problem, ModelOptions), InputError> {
    let arch = timeloop::load_arch(arch_f, Some(ert_f))?;
    let (problem, bitwidths) = timeloop::load_problem(prob_f)?;
    let bits = timeloop_bits(&problem, bitwidths, prob_f)?;
    let opts = ModelOptions {
        bits,
        packing: PackingMode::Seed,
        ..Default::default()
    };
    Ok((arch, problem, opts))
}

/// Per-tensor bits from a Timeloop problem's `instance.bitwidths` (None when it has none).
fn timeloop_bits(
    problem: &Problem,
    bitwidths: Option<std::collections::HashMap<String, u32>>,
    prob_f: &std::path::Path,
) -> Result<Option<crate::model::Bits>, InputError> {
    let Some(bw) = bitwidths else {
        return Ok(None);
    };
    let mut bits = vec![];
    for t in &problem.tensors {
        match bw.get(&t.name) {
            Some(&b) if b > 0 => bits.push(b),
            _ => {
                return Err(InputError::new(
                    prob_f,
                    "problem.instance.bitwidths",
                    format!("no bit-width for {}", t.name),
                ))
            }
        }
    }
    Ok(Some(crate::model::Bits(bits)))
}

fn select_layer(
    inst: &instance::Instance,
    sel: &str,
    path: &std::path::Path,
) -> Result<usize, InputError> {
    match sel.parse::<usize>() {
        Ok(i) if i >= 1 && i <= inst.layers.len() => Ok(i - 1),
        _ => inst
            .layers
            .iter()
            .position(|l| l.name == sel)
            .ok_or_else(|| {
                InputError::new(
                    path,
                    "--layer",
                    format!("no layer `{sel}` in {}", inst.workload_name),
                )
            }),
    }
}

/// Writes an output file atomically; an error names the file.
fn write_atomic(out: &std::path::Path, text: &str) -> Result<(), InputError> {
    crate::report::write_atomic(out, text)
        .map_err(|e| InputError::new(out, "(file)", format!("cannot write: {e}")))
}

fn mapping_yaml(m: &Mapping, arch: &Arch, problem: &Problem) -> String {
    let spec = crate::model::mapping_to_spec(m, arch, problem);
    serde_yaml_ng::to_string(&spec).expect("mapping serialises")
}

fn write_mapping(
    out: &std::path::Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
) -> Result<(), InputError> {
    write_atomic(out, &mapping_yaml(m, arch, problem))
}

/// The Timeloop v0.4 text of a mapping with its problem (and bit-widths); an error when
/// Timeloop's format cannot express the mapping exactly.
fn timeloop_text(
    out: &std::path::Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
    opts: &ModelOptions,
) -> Result<String, InputError> {
    let issues = timeloop::timeloop_export_issues(m, arch, problem);
    if !issues.is_empty() {
        return Err(InputError::new(
            out,
            "(export)",
            format!(
                "Timeloop's format cannot express this mapping exactly: {}",
                issues.join("; ")
            ),
        ));
    }
    Ok(format!(
        "{}{}",
        timeloop::export_problem(problem, opts.bits.as_ref()),
        timeloop::export_mapping(m, arch, problem)
    ))
}

fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::Energy => "energy",
        Objective::Latency => "latency",
        Objective::Edp => "EDP",
    }
}

/// How long counting the mapspace (a report, not part of the answer) may take under a time
/// limit: a tenth of it (at least 0.2 s), so that the count leaves the solve its time.
fn count_deadline(start: Instant, time_limit: Option<f64>) -> Option<Instant> {
    time_limit.map(|t| start + Duration::from_secs_f64((t / 10.0).clamp(0.2, 1e9).min(t.max(0.0))))
}

/// How values of an objective are printed.
fn value_unit(objective: Objective) -> fn(f64) -> String {
    match objective {
        Objective::Energy => report::energy,
        Objective::Latency => |v: f64| format!("{v:.0} cycles"),
        Objective::Edp => |v: f64| format!("{v:.4e} pJ*cycles"),
    }
}

fn status_name(s: crate::milp::Status) -> &'static str {
    match s {
        crate::milp::Status::Optimal => "optimal",
        crate::milp::Status::TimeLimit => "time_limit",
        crate::milp::Status::Infeasible => "infeasible",
        crate::milp::Status::Unknown => "unknown",
    }
}

fn bits_json(t: Option<instance::BitTriple>) -> serde_json::Value {
    match t {
        Some((i, w, o)) => serde_json::json!({"inputs": i, "weights": w, "outputs": o}),
        None => serde_json::Value::Null,
    }
}

fn map_cmd(a: MapArgs) -> Result<Outcome, Failure> {
    // The time limit is on the whole command: loading and counting the mapspace included.
    let start = Instant::now();
    let job = load_job(
        a.instance.as_deref(),
        &a.layer,
        a.timeloop.as_deref(),
        a.constraints.as_deref(),
        a.objective,
    )?;
    let size = job.space.size_until(count_deadline(start, a.time_limit));
    let so = crate::milp::SolveOptions {
        time_limit: a
            .time_limit
            .map(|t| (t - start.elapsed().as_secs_f64()).max(0.0)),
        gap: a.gap,
        ..Default::default()
    };
    let opts: Vec<ModelOptions> = job.choices.iter().map(|c| c.1.clone()).collect();
    let unit = value_unit(job.objective);
    let display = crate::progress::Display::start(a.progress.mode(), unit);
    let solved = crate::network::prove_best(
        &job.space,
        &opts,
        job.objective,
        a.prover.engine.into(),
        a.prover.enumerate_limit,
        &so,
    );
    drop(display);
    let (cert, chosen, proof) = solved.map_err(|e| solver_failure(&job.file, e))?;
    let (bits, opts) = &job.choices[chosen];
    // The cross-check: the returned mapping, evaluated again, must give the certified value.
    if let Some(m) = &cert.mapping {
        let ev = evaluate(&job.problem, &job.arch, m, opts);
        let v = crate::search::objective_value(&ev, job.objective);
        if !ev.valid || (v - cert.value).abs() > 1e-9 * v.abs().max(1.0) {
            return Err(InputError::new(
                &job.file,
                "(solver)",
                format!(
                    "internal error: the solver reports {} for its mapping, the evaluator {v}",
                    cert.value
                ),
            )
            .into());
        }
    }
    if let (Some(out), Some(m)) = (&a.out, &cert.mapping) {
        write_mapping(out, m, &job.arch, &job.problem)?;
    }
    if let (Some(out), Some(m)) = (&a.timeloop_out, &cert.mapping) {
        write_atomic(out, &timeloop_text(out, m, &job.arch, &job.problem, opts)?)?;
    }
    if a.json {
        let v = serde_json::json!({
            "status": cert.status,
            "objective": job.objective,
            "energy_pj": cert.evaluation.as_ref().map(|e| e.energy_pj),
            "cycles": cert.evaluation.as_ref().map(|e| e.cycles),
            "value": cert.value.is_finite().then_some(cert.value),
            "bound": cert.bound.is_finite().then_some(cert.bound),
            "gap": cert.gap.is_finite().then_some(cert.gap),
            "proof": proof,
            "rounds": cert.rounds,
            "milp_solves": cert.milp_solves,
            "halvings": cert.splits,
            "solve_seconds": cert.seconds,
            "mapspace_size": size,
            "bits": bits_json(*bits),
            "bit_choices": job.choices.len(),
            "reason": cert.reason,
            "self_check": cert.check,
            "mapping": cert.mapping.as_ref().map(|m| crate::model::mapping_to_spec(m, &job.arch, &job.problem)),
            "evaluation": cert.evaluation,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!("qmap map: {}", job.title);
        println!("{}", report::settings_line(&job.problem, opts));
        if job.choices.len() > 1 {
            println!("bit-width choices: {} (best shown)", job.choices.len());
        }
        println!("mapspace: {}", report::mapspace_size(size));
        if let (Some(m), Some(ev)) = (&cert.mapping, &cert.evaluation) {
            println!();
            print!("{}", report::loop_nest(m, &job.arch, &job.problem));
            println!();
            print!("{}", report::evaluation_table(ev));
        }
        println!();
        let value = |v: f64| {
            if v.is_finite() {
                unit(v)
            } else {
                "-".to_string()
            }
        };
        let how = match proof {
            crate::network::ProofKind::Enumerated
                if cert.status == crate::milp::Status::TimeLimit =>
            {
                format!(
                    "proof: enumeration stopped at the time limit (bound: the least bound of the \
                     parts left; {:.3e} factorisations × keep patterns)",
                    crate::network::enumeration_size(&job.space)
                )
            }
            crate::network::ProofKind::Enumerated => {
                format!(
                    "proof: enumerated ({}, {:.3e} factorisations × keep patterns)",
                    report::mapspace_size(size),
                    crate::network::enumeration_size(&job.space)
                )
            }
            crate::network::ProofKind::Milp if cert.splits > 0 => format!(
                "proof: MILP, rounds {}   MILP solves {}   halvings {}",
                cert.rounds, cert.milp_solves, cert.splits
            ),
            crate::network::ProofKind::Milp => format!(
                "proof: MILP, rounds {}   MILP solves {}",
                cert.rounds, cert.milp_solves
            ),
        };
        let found = if cert.mapping.is_none() && cert.status == crate::milp::Status::TimeLimit {
            "no mapping found yet".to_string()
        } else {
            format!("{} {}", objective_name(job.objective), value(cert.value))
        };
        println!(
            "status: {}   {found}   bound {}   gap {:.3e}   {how}   {:.2} s",
            status_name(cert.status),
            value(cert.bound),
            cert.gap,
            cert.seconds
        );
        if let Some(r) = &cert.reason {
            println!("reason: {r}");
        }
        if let Some(c) = &cert.check {
            println!(
                "self-check: {} random valid mappings of {} drawn, none below the bound ({:.2} s)",
                c.valid, c.samples, c.seconds
            );
        }
    }
    Ok(match cert.status {
        crate::milp::Status::Infeasible | crate::milp::Status::Unknown => Outcome::CheckFailed,
        _ => Outcome::Ok,
    })
}

fn search_cmd(a: SearchArgs) -> Result<Outcome, Failure> {
    let start = Instant::now();
    let deadline = a
        .time_limit
        .map(|t| start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let job = load_job(Some(&a.instance), &a.layer, None, None, a.objective)?;
    let size = job.space.size_until(count_deadline(start, a.time_limit));
    let unit = value_unit(job.objective);
    let display = crate::progress::Display::start(a.progress.mode(), unit);
    crate::progress::phase(match a.method {
        SearchMethod::Exhaustive => "exhaustive search",
        SearchMethod::Random => "random search",
    });
    let mut best: Option<(crate::search::SearchResult, usize)> = None;
    let (mut evaluated, mut valid, mut stopped) = (0, 0, false);
    for (i, (_, opts)) in job.choices.iter().enumerate() {
        let res = match a.method {
            SearchMethod::Exhaustive => {
                let limit = if a.force { None } else { Some(a.limit) };
                crate::search::exhaustive_until(&job.space, opts, job.objective, limit, deadline)
                    .map_err(|e| InputError::new(&a.instance, "--method exhaustive", e))?
            }
            SearchMethod::Random => crate::search::random_until(
                &job.space,
                opts,
                job.objective,
                a.seed,
                a.samples,
                a.victory,
                deadline,
            ),
        };
        evaluated += res.evaluated;
        valid += res.valid;
        stopped |= res.stop == crate::search::StopReason::Deadline;
        if res.best.is_some() && best.as_ref().is_none_or(|(b, _)| res.value < b.value) {
            best = Some((res, i));
        }
    }
    drop(display);
    let Some((res, chosen)) = best else {
        if a.json {
            println!(
                "{}",
                serde_json::json!({"method": format!("{:?}", a.method).to_lowercase(), "value": null, "evaluated": evaluated, "valid": valid})
            );
        } else {
            println!("qmap search ({:?}): {}", a.method, job.title);
            println!("no valid mapping found");
        }
        return Ok(Outcome::CheckFailed);
    };
    if let (Some(out), Some(m)) = (&a.out, &res.best) {
        write_mapping(out, m, &job.arch, &job.problem)?;
    }
    if let (Some(out), Some(m)) = (&a.timeloop_out, &res.best) {
        let opts = &job.choices[chosen].1;
        write_atomic(out, &timeloop_text(out, m, &job.arch, &job.problem, opts)?)?;
    }
    if a.json {
        let v = serde_json::json!({
            "method": format!("{:?}", a.method).to_lowercase(),
            "objective": job.objective,
            "value": res.value,
            "evaluated": evaluated,
            "valid": valid,
            "stopped_at_time_limit": stopped,
            "mapspace_size": size,
            "bits": bits_json(job.choices[chosen].0),
            "mapping": res.best.as_ref().map(|m| crate::model::mapping_to_spec(m, &job.arch, &job.problem)),
            "evaluation": res.evaluation,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!("qmap search ({:?}): {}", a.method, job.title);
        println!(
            "{}",
            report::settings_line(&job.problem, &job.choices[chosen].1)
        );
        println!(
            "mapspace: {}; evaluated {evaluated}, valid {valid}{}",
            report::mapspace_size(size),
            if stopped {
                " (stopped at the time limit)"
            } else {
                ""
            }
        );
        if let (Some(m), Some(ev)) = (&res.best, &res.evaluation) {
            println!();
            print!("{}", report::loop_nest(m, &job.arch, &job.problem));
            println!();
            print!("{}", report::evaluation_table(ev));
        }
    }
    Ok(Outcome::Ok)
}

fn export_cmd(a: ExportArgs) -> Result<Outcome, Failure> {
    let job = load_job(Some(&a.instance), &a.layer, None, None, None)?;
    if job.choices.len() != 1 {
        return Err(InputError::new(
            &a.instance,
            "bits",
            "export needs one bit-width per tensor role (the instance lists choices)",
        )
        .into());
    }
    let opts = &job.choices[0].1;
    let (m, mapping_file) = match &a.mapping {
        Some(f) => (
            instance::load_mapping_file(f, &job.arch, &job.problem)?,
            f.clone(),
        ),
        None => instance::load(&a.instance)?
            .mapping
            .filter(|_| a.layer.is_none())
            .ok_or_else(|| {
                InputError::new(
                    &a.instance,
                    "mapping",
                    "no mapping for this layer in the instance; pass --mapping FILE",
                )
            })?,
    };
    let ev = evaluate(&job.problem, &job.arch, &m, opts);
    if let Some(inv) = &ev.invalid {
        let field = inv
            .level
            .as_ref()
            .map_or("mapping".to_string(), |l| format!("mapping.{l}"));
        return Err(InputError::new(&mapping_file, field, inv.reason.clone()).into());
    }
    let title = format!(
        "{}: {}, {} cycles",
        job.title,
        report::energy(ev.energy_pj),
        ev.cycles
    );
    if let Some(out) = &a.out {
        write_atomic(out, &timeloop_text(out, &m, &job.arch, &job.problem, opts)?)?;
        println!("wrote {} ({title})", out.display());
    }
    if let Some(dir) = &a.timeloop_dir {
        let issues = timeloop::timeloop_export_issues(&m, &job.arch, &job.problem);
        if !issues.is_empty() {
            return Err(InputError::new(
                dir,
                "(export)",
                format!(
                    "Timeloop's format cannot express this mapping exactly: {}",
                    issues.join("; ")
                ),
            )
            .into());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| InputError::new(dir, "(directory)", e.to_string()))?;
        let files = [
            ("arch.yaml", timeloop::export_arch(&job.arch)),
            ("ERT.yaml", timeloop::export_ert(&job.arch)),
            (
                "problem.yaml",
                timeloop::export_problem(&job.problem, opts.bits.as_ref()),
            ),
            (
                "map.yaml",
                timeloop::export_mapping(&m, &job.arch, &job.problem),
            ),
        ];
        for (name, text) in files {
            write_atomic(&dir.join(name), &text)?;
        }
        println!(
            "wrote {}/{{arch,ERT,problem,map}}.yaml ({title})",
            dir.display()
        );
        for issue in timeloop::arch_export_issues(&job.arch) {
            println!("note: {issue}");
        }
        if opts.bits.is_some() {
            println!(
                "note: the problem carries `instance.bitwidths` (the seed fork's packing); \
                 Timeloop v3.0.3 itself has no packing"
            );
        }
        println!(
            "rerun: cd {} && timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml",
            dir.display()
        );
    }
    Ok(Outcome::Ok)
}

/// A file-name-safe form of a layer name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The instance with only `layers` (in that order) in its workload.
fn sub_instance(inst: &instance::Instance, layers: &[usize]) -> instance::Instance {
    let mut sub = inst.clone();
    sub.layers = layers.iter().map(|&i| inst.layers[i].clone()).collect();
    sub.selected = 0;
    sub
}

/// Content hash of what an instance asks for: its file, architecture, constraints, layers.
fn instance_hash(inst: &instance::Instance, cons: &crate::mapspace::Constraints) -> String {
    let text = std::fs::read_to_string(&inst.file).unwrap_or_default();
    crate::network::content_hash(&[
        text,
        format!("{:?}", inst.arch),
        format!("{cons:?}"),
        format!(
            "{:?}",
            inst.layers.iter().map(|l| &l.problem).collect::<Vec<_>>()
        ),
    ])
}

fn baseline_cmd(a: BaselineArgs) -> Result<Outcome, Failure> {
    let inst = instance::load(&a.instance)?;
    let cons = inst.constraints()?;
    let layers: Vec<usize> = if a.layers.is_empty() {
        (0..inst.layers.len()).collect()
    } else {
        a.layers
            .iter()
            .map(|l| select_layer(&inst, l, &a.instance))
            .collect::<Result<_, _>>()?
    };
    let sub = sub_instance(&inst, &layers);
    let all: Vec<Option<instance::BitTriple>> = if inst.bits.is_native() {
        vec![None]
    } else {
        let mut unbudgeted = inst.bits.clone();
        unbudgeted.weight_budget_bytes = None;
        unbudgeted.triples(0).into_iter().map(Some).collect()
    };
    let table = crate::network::build(&sub, &cons, &all, &a.optimum.settings(true))
        .map_err(|e| solver_failure(&a.instance, e))?;
    std::fs::create_dir_all(&a.out)
        .map_err(|e| InputError::new(&a.out, "(directory)", format!("cannot create: {e}")))?;
    let hash = instance_hash(&sub, &cons);
    let mut csv = String::from(
        "layer,input_bits,weight_bits,output_bits,energy_pj,cycles,status,bound_pj,gap,proof,mapping,timeloop_mapping,certificate\n",
    );
    let mut unproven = 0;
    for (layer, entries) in sub.layers.iter().zip(&table.layers) {
        let allowed = if inst.bits.is_native() {
            vec![None]
        } else {
            inst.bits
                .triples(layer.weights)
                .into_iter()
                .map(Some)
                .collect()
        };
        for e in entries.iter().filter(|e| allowed.contains(&e.bits)) {
            let mut stem = file_stem(&layer.name);
            if let (Some((i, w, o)), true) = (e.bits, all.len() > 1) {
                stem = format!("{stem}__i{i}w{w}o{o}");
            }
            let opts = sub.options(&layer.problem, e.bits);
            let status = status_name(e.proof.status());
            let (bound, gap) = e.proof.bound_and_gap(e.energy_pj.unwrap_or(f64::INFINITY));
            unproven += (!e.proof.optimal()) as usize;
            let (mut qfile, mut tfile) = (String::new(), String::new());
            if let Some(ms) = &e.mapping {
                let m = crate::model::mapping_from_spec(ms, &sub.arch, &layer.problem, &a.out)?;
                qfile = format!("{stem}.yaml");
                write_mapping(&a.out.join(&qfile), &m, &sub.arch, &layer.problem)?;
                let tpath = a.out.join(format!("{stem}.map.yaml"));
                if let Ok(text) = timeloop_text(&tpath, &m, &sub.arch, &layer.problem, &opts) {
                    write_atomic(&tpath, &text)?;
                    tfile = format!("{stem}.map.yaml");
                }
            }
            let cfile = format!("{stem}.cert.json");
            let cert = serde_json::json!({
                "layer": layer.name,
                "bits": bits_json(e.bits),
                "objective": "energy",
                "energy_pj": e.energy_pj,
                "cycles": e.cycles,
                "status": if e.energy_pj.is_none() { "infeasible" } else { status },
                "bound_pj": bound.is_finite().then_some(bound),
                "gap": gap,
                "proof": e.proof,
                "model_version": crate::network::MODEL_VERSION,
                "qmap_version": env!("CARGO_PKG_VERSION"),
                "instance": a.instance.display().to_string(),
                "instance_sha256": hash,
                "mapping": qfile,
                "timeloop_mapping": tfile,
            });
            write_atomic(
                &a.out.join(&cfile),
                &serde_json::to_string_pretty(&cert).expect("json"),
            )?;
            let (i, w, o) = e.bits.map_or(
                (String::new(), String::new(), String::new()),
                |(i, w, o)| (i.to_string(), w.to_string(), o.to_string()),
            );
            csv.push_str(&format!(
                "{},{i},{w},{o},{},{},{},{},{},{},{qfile},{tfile},{cfile}\n",
                layer.name,
                e.energy_pj.map_or(String::new(), |v| format!("{v:.4}")),
                e.cycles.map_or(String::new(), |v| v.to_string()),
                if e.energy_pj.is_none() {
                    "infeasible"
                } else {
                    status
                },
                if bound.is_finite() {
                    format!("{bound:.4}")
                } else {
                    String::new()
                },
                gap,
                e.proof.engine(),
            ));
        }
    }
    write_atomic(&a.out.join("summary.csv"), &csv)?;
    println!(
        "qmap baseline: {} layers ({} distinct shapes, {} from the cache) in {:.1} s -> {}",
        sub.layers.len(),
        table.units,
        table.cached_units,
        table.seconds,
        a.out.display()
    );
    if unproven > 0 {
        println!("{unproven} entries are not proven optimal (time limit): see summary.csv");
        return Ok(Outcome::CheckFailed);
    }
    Ok(Outcome::Ok)
}

/// Parses `5%` or `0.05`.
fn parse_gap(text: &str) -> Option<f64> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => t.parse::<f64>().ok()?,
    };
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// The heuristic's mapping file of a layer in a directory, if there is one.
fn layer_mapping_path(dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let stem = file_stem(name);
    [
        format!("{stem}.yaml"),
        format!("{stem}.map.yaml"),
        format!("{stem}.map.txt"),
        format!("{stem}.stats.txt"),
        stem.clone(),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.exists())
}

/// One layer's verdict in `qmap gap`.
#[derive(serde::Serialize)]
struct GapRow {
    name: String,
    heuristic_pj: Option<f64>,
    optimum_pj: Option<f64>,
    gap: Option<f64>,
    valid: bool,
    reason: Option<String>,
    /// Whether the heuristic's mapping lies in the declared mapspace (the optimum's domain).
    in_mapspace: bool,
    optimum_status: String,
    pass: bool,
    mapping_file: String,
}

fn gap_cmd(a: GapArgs) -> Result<Outcome, Failure> {
    let max_gap = parse_gap(&a.max_gap).ok_or_else(|| {
        InputError::new(
            std::path::Path::new("(command line)"),
            "--max-gap",
            format!("`{}` is not a gap (write 0.05 or 5%)", a.max_gap),
        )
    })?;
    let settings = a.optimum.settings(!a.json);
    // (name, arch, problem, space, opts, mapping file, optimum)
    struct Item {
        name: String,
        problem: Problem,
        space: crate::mapspace::Mapspace,
        opts: ModelOptions,
        file: PathBuf,
        optimum: Option<crate::network::Optimum>,
    }
    let mut items: Vec<Item> = vec![];
    let arch: Arch;
    let suite: String;
    if let Some(tl) = &a.timeloop {
        let job = load_job(None, &None, Some(tl), a.constraints.as_deref(), None)?;
        let opt = crate::network::solve_unit(&job.space, &[job.choices[0].1.clone()], &settings)
            .map_err(|e| solver_failure(&job.file, e))?;
        suite = job.title.clone();
        arch = job.arch;
        items.push(Item {
            name: job.problem.name.clone(),
            problem: job.problem,
            space: job.space,
            opts: job.choices[0].1.clone(),
            file: a.mappings.clone(),
            optimum: opt.into_iter().next(),
        });
    } else {
        let path = a
            .instance
            .as_ref()
            .expect("clap requires INSTANCE without --timeloop");
        let mut inst = instance::load(path)?;
        if let Some(sel) = &a.layer {
            inst.selected = select_layer(&inst, sel, path)?;
        }
        let mut cons = inst.constraints()?;
        if let Some(f) = &a.constraints {
            cons.add_file(f, &inst.arch)?;
        }
        let bits = match (inst.bits.is_native(), inst.bits.fixed()) {
            (true, _) => None,
            (false, Some(t)) => Some(t),
            (false, None) => {
                return Err(InputError::new(
                    path,
                    "bits",
                    "gap needs one bit-width per tensor role (the instance lists choices)",
                )
                .into())
            }
        };
        let mut chosen: Vec<(usize, PathBuf)> = vec![];
        if a.mappings.is_dir() && a.layer.is_none() {
            for (i, l) in inst.layers.iter().enumerate() {
                if let Some(p) = layer_mapping_path(&a.mappings, &l.name) {
                    chosen.push((i, p));
                }
            }
        }
        if chosen.is_empty() {
            // One mapping (a file, or a mapper's output directory) for the selected layer.
            chosen.push((inst.selected, a.mappings.clone()));
        }
        let idx: Vec<usize> = chosen.iter().map(|c| c.0).collect();
        let sub = sub_instance(&inst, &idx);
        let table = crate::network::build(&sub, &cons, &[bits], &settings)
            .map_err(|e| solver_failure(path, e))?;
        suite = format!("{} on {}", inst.workload_name, inst.arch.name);
        for ((layer, entries), (_, file)) in sub.layers.iter().zip(&table.layers).zip(chosen) {
            let e = &entries[0];
            let space = crate::mapspace::Mapspace::new(&layer.problem, &sub.arch, &cons)
                .map_err(|err| InputError::new(path, "constraints", err))?;
            let opts = sub.options(&layer.problem, bits);
            let mapping = match &e.mapping {
                Some(ms) => Some(crate::model::mapping_from_spec(
                    ms,
                    &sub.arch,
                    &layer.problem,
                    path,
                )?),
                None => None,
            };
            let evaluation = mapping
                .as_ref()
                .map(|m| evaluate(&layer.problem, &sub.arch, m, &opts));
            items.push(Item {
                name: layer.name.clone(),
                problem: layer.problem.clone(),
                space,
                opts,
                file,
                optimum: Some(crate::network::Optimum {
                    mapping,
                    evaluation,
                    proof: e.proof,
                }),
            });
        }
        arch = sub.arch;
    }
    let mut rows = vec![];
    for it in &items {
        let m = instance::load_mapping_file(&it.file, &arch, &it.problem)?;
        let ev = evaluate(&it.problem, &arch, &m, &it.opts);
        let opt = it
            .optimum
            .as_ref()
            .and_then(|o| o.evaluation.as_ref().map(|e| e.energy_pj));
        let proof = it.optimum.as_ref().map(|o| o.proof);
        let optimum_status = match proof {
            Some(p) => status_name(p.status()).to_string(),
            None => "infeasible".to_string(),
        };
        let in_mapspace = it.space.contains(&m);
        let (gap, reason) = match (&ev.invalid, opt) {
            (Some(inv), _) => (
                None,
                Some(match &inv.level {
                    Some(l) => format!("{l}: {}", inv.reason),
                    None => inv.reason.clone(),
                }),
            ),
            (None, Some(o)) => {
                let g = (ev.energy_pj - o) / o;
                let note = (!in_mapspace).then(|| {
                    format!(
                        "outside the declared mapspace ({}); the optimum covers the mapspace only",
                        it.space.check(&m).err().unwrap_or_default()
                    )
                });
                (Some(g), note)
            }
            (None, None) => (None, Some("no mapping of the mapspace fits".into())),
        };
        let pass = ev.valid && gap.is_some_and(|g| g <= max_gap);
        rows.push(GapRow {
            name: it.name.clone(),
            heuristic_pj: ev.valid.then_some(ev.energy_pj),
            optimum_pj: opt,
            gap,
            valid: ev.valid,
            reason,
            in_mapspace,
            optimum_status,
            pass,
            mapping_file: it.file.display().to_string(),
        });
    }
    let all_pass = rows.iter().all(|r| r.pass);
    if let Some(j) = &a.junit {
        write_atomic(j, &junit_xml(&suite, &rows, max_gap))?;
    }
    if a.json {
        let v = serde_json::json!({
            "max_gap": max_gap,
            "pass": all_pass,
            "layers": rows,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!("qmap gap: {suite}  (max gap {:.2}%)", max_gap * 100.0);
        println!(
            "{:<16} {:>14} {:>14} {:>9}  {:<8} note",
            "layer", "heuristic", "optimum", "gap", "verdict"
        );
        for r in &rows {
            println!(
                "{:<16} {:>14} {:>14} {:>9}  {:<8} {}",
                r.name,
                r.heuristic_pj.map_or("-".into(), report::energy),
                r.optimum_pj.map_or("-".into(), report::energy),
                r.gap.map_or("-".into(), |g| format!("{:.2}%", g * 100.0)),
                if !r.valid {
                    "INVALID"
                } else if r.pass {
                    "ok"
                } else {
                    "FAIL"
                },
                [
                    r.reason.clone(),
                    (r.optimum_status != "optimal")
                        .then(|| format!("optimum {}", r.optimum_status)),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
            );
        }
        let failed = rows.iter().filter(|r| !r.pass).count();
        println!(
            "{} of {} layers within the gap{}",
            rows.len() - failed,
            rows.len(),
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        );
    }
    Ok(if all_pass {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
    })
}

/// A JUnit XML report: one test suite, one test case per layer, a failure per layer above the
/// gap or invalid.
fn junit_xml(suite: &str, rows: &[GapRow], max_gap: f64) -> String {
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let failures = rows.iter().filter(|r| !r.pass).count();
    let mut ev = |e: Event| w.write_event(e).expect("writing to memory");
    ev(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let (n, f) = (rows.len().to_string(), failures.to_string());
    ev(Event::Start(BytesStart::new("testsuites").with_attributes(
        [
            ("name", "qmap gap"),
            ("tests", n.as_str()),
            ("failures", f.as_str()),
        ],
    )));
    ev(Event::Start(BytesStart::new("testsuite").with_attributes(
        [
            ("name", suite),
            ("tests", n.as_str()),
            ("failures", f.as_str()),
        ],
    )));
    for r in rows {
        let case = BytesStart::new("testcase")
            .with_attributes([("name", r.name.as_str()), ("classname", suite)]);
        if r.pass {
            ev(Event::Empty(case));
            continue;
        }
        ev(Event::Start(case));
        let message = if !r.valid {
            format!("invalid mapping: {}", r.reason.clone().unwrap_or_default())
        } else {
            match r.gap {
                Some(g) => format!(
                    "gap {:.2}% exceeds {:.2}% (heuristic {:.4} pJ, optimum {:.4} pJ)",
                    g * 100.0,
                    max_gap * 100.0,
                    r.heuristic_pj.unwrap_or(f64::NAN),
                    r.optimum_pj.unwrap_or(f64::NAN)
                ),
                None => r.reason.clone().unwrap_or_default(),
            }
        };
        ev(Event::Start(BytesStart::new("failure").with_attributes([
            ("message", message.as_str()),
            ("type", if r.valid { "gap" } else { "invalid" }),
        ])));
        ev(Event::Text(BytesText::new(&format!(
            "mapping: {}",
            r.mapping_file
        ))));
        ev(Event::End(BytesEnd::new("failure")));
        ev(Event::End(BytesEnd::new("testcase")));
    }
    ev(Event::End(BytesEnd::new("testsuite")));
    ev(Event::End(BytesEnd::new("testsuites")));
    let mut text = String::from_utf8(w.into_inner()).expect("utf-8");
    text.push('\n');
    text
}

/// The uniform-bits energy of a network when each layer is mapped by random search (the seed
/// paper's mapper: 10,000 valid samples per layer, seeded), in pJ; None when a layer finds no
/// valid mapping.
fn uniform_random_energy(
    inst: &instance::Instance,
    cons: &crate::mapspace::Constraints,
    bits: instance::BitTriple,
    seed: u64,
) -> Option<f64> {
    use rayon::prelude::*;
    inst.layers
        .par_iter()
        .map(|l| {
            let space = crate::mapspace::Mapspace::new(&l.problem, &inst.arch, cons).ok()?;
            let opts = inst.options(&l.problem, Some(bits));
            let r = crate::search::random(&space, &opts, Objective::Energy, seed, 10_000, None);
            r.value.is_finite().then_some(r.value)
        })
        .sum::<Option<f64>>()
}

/// The selection problem's table from the per-layer optima: the entries with a mapping whose
/// (layer weights, bits) `keep` accepts.
fn front_table(
    inst: &instance::Instance,
    table: &crate::network::Table,
    keep: impl Fn(u64, instance::BitTriple) -> bool,
) -> crate::front::EnergyTable {
    let mut et = crate::front::EnergyTable::for_layers(&inst.layers);
    for (lt, entries) in et.layers.iter_mut().zip(&table.layers) {
        for e in entries {
            if let (Some((i, w, o)), Some(energy_pj), Some(cycles)) =
                (e.bits, e.energy_pj, e.cycles)
            {
                if keep(lt.weights, (i, w, o)) {
                    lt.entries.push(crate::front::TableEntry {
                        bits: crate::front::BitConfig {
                            input_bits: i,
                            weight_bits: w,
                            output_bits: o,
                        },
                        energy_pj,
                        cycles,
                    });
                }
            }
        }
    }
    et
}

fn front_cmd(a: FrontArgs) -> Result<Outcome, Failure> {
    use crate::front::{self as fr, BitConfig};
    let inst = instance::load(&a.instance)?;
    let fs = inst.front.clone().ok_or_else(|| {
        InputError::new(
            &a.instance,
            "front",
            "missing: `qmap front` needs a `front:` section with the accuracy model",
        )
    })?;
    if inst.bits.is_native() {
        return Err(InputError::new(
            &a.instance,
            "bits",
            "`qmap front` needs bit-width lists (inputs/outputs: activation bits, weights)",
        )
        .into());
    }
    let cons = inst.constraints()?;
    let accuracy = fr::AccuracyModel::load(&fs.accuracy_file)?;
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
    // Every configuration some layer may take, plus uniform 16 bits for the plot's mark.
    let n = inst.layers.len();
    let mut triples: Vec<Option<instance::BitTriple>> = vec![];
    for (i, l) in inst.layers.iter().enumerate() {
        for c in bitsets.layer_configs(l.producer, i + 1 == n) {
            let t = Some((c.input_bits, c.weight_bits, c.output_bits));
            if !triples.contains(&t) {
                triples.push(t);
            }
        }
    }
    let settings = a.optimum.settings(!a.json);
    let table = crate::network::build(&inst, &cons, &triples, &settings)
        .map_err(|e| solver_failure(&a.instance, e))?;
    let unproven = table
        .layers
        .iter()
        .flatten()
        .filter(|e| !e.proof.optimal())
        .count();
    // Per-layer weight budgets (weight_budget_bytes) apply to the selection too.
    let energy_table = front_table(&inst, &table, |weights, t| {
        inst.bits.weight_budget_bytes.is_none() || inst.bits.triples(weights).contains(&t)
    });
    let front_err = |e: fr::FrontError| InputError::new(&a.instance, "front", e.to_string());
    let problem =
        fr::SelectionProblem::new(&energy_table, &accuracy, &bitsets).map_err(front_err)?;
    let kind = match a.front {
        FrontKindArg::Accuracy => fr::FrontKind::EnergyAccuracy,
        FrontKindArg::Memory => fr::FrontKind::EnergyMemory,
        FrontKindArg::Both => fr::FrontKind::EnergyAccuracyMemory,
        FrontKindArg::Cycles => fr::FrontKind::EnergyCycles,
    };
    let uniform8 = problem.uniform(8);
    let min_accuracy = a
        .min_accuracy
        .or(uniform8.as_ref().map(|u| u.accuracy - 2.0));
    let opts = fr::FrontOptions {
        max_points: a.points,
        accuracy_resolution: a.accuracy_resolution,
        budgets: fr::Budgets {
            min_accuracy,
            max_memory_bytes: a.max_memory,
            ..Default::default()
        },
        ..Default::default()
    };
    let front = fr::trace_front(&problem, kind, &opts).map_err(front_err)?;
    let front_seconds = front.seconds;
    // The uniform 16-bit design (mark only): its own table at 16 bits.
    let uniform16 = {
        let t16 = crate::network::build(&inst, &cons, &[Some((16, 16, 16))], &settings).ok();
        t16.and_then(|t16| {
            let et = front_table(&inst, &t16, |_, _| true);
            let b16 = fr::BitSets {
                weights: vec![16],
                activations: vec![16],
                first_input: 16,
                last_output: 16,
            };
            fr::SelectionProblem::new(&et, &accuracy, &b16)
                .ok()?
                .uniform(16)
        })
    };
    let random8 = uniform_random_energy(&inst, &cons, (8, 8, 8), a.seed);
    // The seed's comparison: the least-energy design at least as accurate as uniform 8-bit (a
    // point of the energy × accuracy front; solved directly, whatever front was asked for).
    let best_vs_8 = match &uniform8 {
        Some(u) => fr::select(
            &problem,
            fr::Goal::Energy,
            &fr::Budgets {
                min_accuracy: Some(u.accuracy),
                ..Default::default()
            },
            None,
        )
        .map_err(front_err)?,
        None => None,
    };
    let best_vs_8 = best_vs_8.as_ref();
    let nsga = (a.method == FrontMethod::Nsga2).then(|| {
        fr::nsga2(
            &problem,
            &fr::Nsga2Options {
                seed: a.seed,
                ..Default::default()
            },
        )
    });
    let criteria = kind.criteria();
    // NSGA-II's points within the same budgets as the exact front (it searches without them).
    let nsga_in: Vec<fr::FrontPoint> = nsga
        .as_ref()
        .map(|r| {
            r.front
                .iter()
                .filter(|p| {
                    min_accuracy.is_none_or(|m| p.accuracy >= m)
                        && a.max_memory.is_none_or(|m| p.memory_bytes <= m)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    // Hypervolumes are compared only against a complete exact front.
    let hv = nsga.as_ref().filter(|_| front.complete).map(|_| {
        // Reference: 1% beyond the worst value of either point set in each criterion.
        let all: Vec<Vec<f64>> = front
            .points
            .iter()
            .chain(&nsga_in)
            .map(|p| p.costs(criteria))
            .collect();
        let reference: Vec<f64> = (0..criteria.len())
            .map(|c| {
                let (lo, hi) = all
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        (lo.min(v[c]), hi.max(v[c]))
                    });
                hi + 0.01 * (hi - lo).max(hi.abs() * 1e-6)
            })
            .collect();
        (
            fr::front_hypervolume(&front.points, criteria, &reference),
            fr::front_hypervolume(&nsga_in, criteria, &reference),
        )
    });
    let acc_label = accuracy.label();
    // A layer's optimal mapping at a bit configuration (from the table).
    let mapping_of = |l: usize, b: &BitConfig| {
        table.layers[l]
            .iter()
            .find(|e| e.bits == Some((b.input_bits, b.weight_bits, b.output_bits)))
            .and_then(|e| e.mapping.clone())
    };
    let point_json = |p: &fr::FrontPoint| {
        serde_json::json!({
            "energy_pj": p.energy_pj,
            "accuracy": p.accuracy,
            "memory_bytes": p.memory_bytes,
            "cycles": p.cycles,
            "status": p.status,
            "layers": p.layers.iter().enumerate().map(|(i, l)| serde_json::json!({
                "name": l.name,
                "input_bits": l.bits.input_bits,
                "weight_bits": l.bits.weight_bits,
                "output_bits": l.bits.output_bits,
                "energy_pj": l.energy_pj,
                "mapping": mapping_of(i, &l.bits),
            })).collect::<Vec<_>>(),
        })
    };
    let saving = |base: f64, p: &fr::FrontPoint| 1.0 - p.energy_pj / base;
    let comparison = match (&uniform8, best_vs_8) {
        (Some(u), Some(b)) => format!(
            "best point at least as accurate as uniform 8-bit: {} ({:.4} {acc_label}); saves {:.1}% vs uniform 8-bit mapped optimally ({}), {} vs uniform 8-bit mapped by random search ({})",
            report::energy(b.energy_pj),
            b.accuracy,
            saving(u.energy_pj, b) * 100.0,
            report::energy(u.energy_pj),
            random8.map_or("-".into(), |r| format!("{:.1}%", saving(r, b) * 100.0)),
            random8.map_or("no valid mapping".into(), report::energy),
        ),
        _ => "no uniform 8-bit design in the table".into(),
    };
    if let Some(csv) = &a.csv {
        let mut text = String::from("point,energy_pj,accuracy,memory_bytes,cycles,status,layer,input_bits,weight_bits,output_bits,layer_energy_pj\n");
        for (i, p) in front.points.iter().enumerate() {
            for l in &p.layers {
                text.push_str(&format!(
                    "{i},{},{},{},{},{},{},{},{},{},{}\n",
                    p.energy_pj,
                    p.accuracy,
                    p.memory_bytes,
                    p.cycles,
                    serde_json::to_value(p.status)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    l.name,
                    l.bits.input_bits,
                    l.bits.weight_bits,
                    l.bits.output_bits,
                    l.energy_pj
                ));
            }
        }
        write_atomic(csv, &text)?;
    }
    if let Some(svg) = &a.svg {
        let mut marks = vec![];
        if let Some(u) = &uniform8 {
            marks.push(fr::PlotMark::from_point("uniform 8-bit", u));
        }
        if let Some(u) = &uniform16 {
            marks.push(fr::PlotMark::from_point("uniform 16-bit", u));
        }
        let title = format!("{} on {}", inst.workload_name, inst.arch.name);
        let plot = fr::FrontPlot {
            title: &title,
            x_axis: if a.front == FrontKindArg::Memory {
                fr::PlotAxis::Memory
            } else {
                fr::PlotAxis::Accuracy
            },
            accuracy_label: acc_label,
            front: &front.points,
            baseline: nsga.as_ref().map(|r| ("NSGA-II", r.front.as_slice())),
            marks: &marks,
        };
        plot.write_svg(svg)
            .map_err(|e| InputError::new(svg, "(file)", e.to_string()))?;
    }
    if a.json {
        let v = serde_json::json!({
            "workload": inst.workload_name,
            "architecture": inst.arch.name,
            "front": format!("{:?}", kind),
            "accuracy_model": acc_label,
            "complete": front.complete,
            "points": front.points.iter().map(point_json).collect::<Vec<_>>(),
            "uniform_8bit": uniform8.as_ref().map(point_json),
            "uniform_16bit": uniform16.as_ref().map(point_json),
            "uniform_8bit_random_search_pj": random8,
            "min_edp": (kind == fr::FrontKind::EnergyCycles).then(|| fr::min_edp(&front).map(point_json)).flatten(),
            "nsga2": nsga.as_ref().map(|r| r.front.iter().map(point_json).collect::<Vec<_>>()),
            "nsga2_within_budgets": nsga.as_ref().map(|_| nsga_in.len()),
            "hypervolume": hv.map(|(e, n)| serde_json::json!({"exact": e, "nsga2": n})),
            "comparison": comparison,
            "min_accuracy": min_accuracy,
            "best_vs_uniform_8bit": best_vs_8.map(point_json),
            "table_entries_not_proven": unproven,
            "table_seconds": table.seconds,
            "front_seconds": front_seconds,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!(
            "qmap front: {} on {} ({:?})",
            inst.workload_name, inst.arch.name, kind
        );
        println!(
            "table: {} layers, {} distinct shapes ({} cached), {} bit configurations, {:.1} s{}",
            n,
            table.units,
            table.cached_units,
            triples.len(),
            table.seconds,
            if unproven > 0 {
                format!("; {unproven} entries NOT proven optimal (time limit)")
            } else {
                String::new()
            }
        );
        if let Some(m) = min_accuracy {
            println!(
                "accuracy >= {m:.4}{}",
                if a.min_accuracy.is_none() {
                    " (default window: uniform 8-bit - 2 points; --min-accuracy 0 for the whole front)"
                } else {
                    ""
                }
            );
        }
        println!(
            "front: {} points{} in {:.2} s ({} stage solves)",
            front.points.len(),
            if front.complete {
                ""
            } else {
                " (incomplete: --points or a time limit)"
            },
            front_seconds,
            front.solves
        );
        println!();
        println!(
            "{:>4} {:>14} {:>12} {:>12} {:>14} {:<9} weight bits / output bits per layer",
            "#", "energy", acc_label, "memory KiB", "cycles", "status"
        );
        for (i, p) in front.points.iter().enumerate() {
            let bits: Vec<String> = p
                .layers
                .iter()
                .map(|l| format!("{}/{}", l.bits.weight_bits, l.bits.output_bits))
                .collect();
            println!(
                "{:>4} {:>14} {:>12.4} {:>12.1} {:>14} {:<9} {}",
                i,
                report::energy(p.energy_pj),
                p.accuracy,
                p.memory_bytes / 1024.0,
                report::thousands(p.cycles),
                serde_json::to_value(p.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                bits.join(" ")
            );
        }
        if kind == fr::FrontKind::EnergyCycles {
            if let Some(p) = fr::min_edp(&front) {
                println!(
                    "min EDP: {} x {} cycles = {:.4e} pJ*cycles",
                    report::energy(p.energy_pj),
                    report::thousands(p.cycles),
                    p.edp()
                );
            }
        }
        for (label, u) in [("uniform 8-bit", &uniform8), ("uniform 16-bit", &uniform16)] {
            if let Some(u) = u {
                println!(
                    "{label}: {}, {:.4} {acc_label}, {:.1} KiB",
                    report::energy(u.energy_pj),
                    u.accuracy,
                    u.memory_bytes / 1024.0
                );
            }
        }
        println!("{comparison}");
        if let Some(r) = &nsga {
            match hv {
                Some((e, h)) => println!(
                    "NSGA-II ({} evaluations): {} points, {} within the budgets; hypervolume {:.6e} vs exact {:.6e} ({:.2}%)",
                    r.evaluations,
                    r.front.len(),
                    nsga_in.len(),
                    h,
                    e,
                    100.0 * h / e
                ),
                None => println!(
                    "NSGA-II ({} evaluations): {} points, {} within the budgets; no hypervolume comparison: the exact front is incomplete (raise --points)",
                    r.evaluations,
                    r.front.len(),
                    nsga_in.len()
                ),
            }
        }
    }
    Ok(if unproven > 0 {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

struct Evaluated {
    title: String,
    arch: Arch,
    problem: Problem,
    mapping: Mapping,
    mapping_file: PathBuf,
    opts: ModelOptions,
}

fn eval_cmd(a: EvalArgs) -> Result<Outcome, Failure> {
    let e = if let Some(tl) = &a.timeloop {
        let (arch_f, prob_f, map_f, ert_f) = (&tl[0], &tl[1], &tl[2], &tl[3]);
        let (arch, problem, opts) = timeloop_design(arch_f, prob_f, ert_f)?;
        let mapping = timeloop::load_mapping(map_f, &arch, &problem)?;
        Evaluated {
            title: format!("{} on {}", problem.name, arch.name),
            arch,
            problem,
            mapping,
            mapping_file: map_f.clone(),
            opts,
        }
    } else {
        let path = a
            .instance
            .as_ref()
            .expect("clap requires INSTANCE without --timeloop");
        let mut inst = instance::load(path)?;
        if let Some(sel) = &a.layer {
            inst.selected = select_layer(&inst, sel, path)?;
        }
        let problem = inst.layer().problem.clone();
        let (mapping, mapping_file) = match &a.mapping {
            Some(mf) => {
                let ms = crate::spec::load_yaml(mf)?;
                (
                    crate::model::mapping_from_spec(&ms, &inst.arch, &problem, mf)?,
                    mf.clone(),
                )
            }
            None => inst.mapping.clone().ok_or_else(|| {
                InputError::new(
                    path,
                    "mapping",
                    "the instance has no mapping; pass --mapping FILE",
                )
            })?,
        };
        if inst.bits.fixed().is_none() && !inst.bits.is_native() {
            return Err(InputError::new(
                path,
                "bits",
                "eval needs one bit-width per tensor role (the instance lists choices)",
            )
            .into());
        }
        let opts = inst.fixed_options(&problem);
        Evaluated {
            title: format!(
                "{} / {} on {}",
                inst.workload_name,
                inst.layer().name,
                inst.arch.name
            ),
            arch: inst.arch,
            problem,
            mapping,
            mapping_file,
            opts,
        }
    };
    let ev = evaluate(&e.problem, &e.arch, &e.mapping, &e.opts);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ev).expect("evaluation serialises")
        );
    } else if ev.valid {
        print_eval(&e, &ev);
    }
    if let Some(inv) = &ev.invalid {
        let field = match &inv.level {
            Some(l) => format!("mapping.{l}"),
            None => "mapping".to_string(),
        };
        return Err(InputError::new(&e.mapping_file, field, inv.reason.clone()).into());
    }
    Ok(Outcome::Ok)
}

fn print_eval(e: &Evaluated, ev: &Evaluation) {
    println!("qmap eval: {}", e.title);
    println!("{}", report::settings_line(&e.problem, &e.opts));
    let dims: Vec<String> = e
        .problem
        .dims
        .iter()
        .zip(&e.problem.bounds)
        .map(|(d, b)| format!("{d}={b}"))
        .collect();
    println!(
        "problem: {} ({} MACs)",
        dims.join(" "),
        report::thousands(e.problem.macs())
    );
    println!();
    print!("{}", report::loop_nest(&e.mapping, &e.arch, &e.problem));
    println!();
    print!("{}", report::evaluation_table(ev));
}
