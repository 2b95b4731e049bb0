//! The command line: argument parsing and the commands, each a thin layer over the library.

use crate::app::job::{file_stem, instance_hash, load_job, select_layer, sub_instance};
use crate::eval::{evaluate, Evaluation};
use crate::instance;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::report;
use crate::spec::{InputError, Objective};
use crate::timeloop;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod table;

/// `println!` to stdout through [`emit`]: a closed pipe ends the run quietly.
macro_rules! outln {
    () => { emit(format_args!("\n")) };
    ($($t:tt)*) => { emit(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` to stdout through [`emit`].
macro_rules! out {
    ($($t:tt)*) => { emit(format_args!($($t)*)) };
}

/// Writes to stdout. When stdout is a closed pipe (`qmap ... | head`), the run ends quietly
/// with exit code 0, as `grep` does; any other failure (a full disk) is a clear error, exit
/// code 2. Never a panic.
pub fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(e);
    }
}

/// Flushes stdout at the end of a run, like [`emit`] on failure.
pub fn flush_stdout() {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().flush() {
        stdout_failed(e);
    }
}

fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(Outcome::BadInput.code());
}

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
    /// The per-layer optimum tables of an instance as jobs for many machines: list them, or
    /// solve one shard of them into the cache (which is the merge).
    Table(table::TableArgs),
    /// Cache maintenance: merge caches.
    Cache(table::CacheArgs),
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
    #[arg(long, default_value_t = crate::optimum::ENUMERATE_LIMIT)]
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

impl From<EngineArg> for crate::optimum::Engine {
    fn from(e: EngineArg) -> crate::optimum::Engine {
        match e {
            EngineArg::Auto => crate::optimum::Engine::Auto,
            EngineArg::Milp => crate::optimum::Engine::Milp,
            EngineArg::Enumerate => crate::optimum::Engine::Enumerate,
        }
    }
}

impl OptimumArgs {
    fn settings(&self, progress: bool) -> crate::optimum::TableSettings {
        crate::optimum::TableSettings {
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
    /// timeloop-mapper output directory). With a directory every layer of the network needs
    /// its file: missing ones fail (see --layers, --allow-missing).
    #[arg(long)]
    pub mappings: PathBuf,
    /// Only these layers need mappings (names or 1-based indices, comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "layer")]
    pub layers: Vec<String>,
    /// Layers without a mapping file are listed but do not fail the check.
    #[arg(long)]
    pub allow_missing: bool,
    /// Largest acceptable gap: a percentage (5%) or a fraction at most 1 (0.05); a bare number
    /// above 1 is an error.
    #[arg(long, default_value = "5%")]
    pub max_gap: String,
    #[arg(long)]
    pub json: bool,
    /// Write a JUnit XML report (one test case per layer, with its numbers as properties), also
    /// when the check fails or cannot run.
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
        Command::Table(a) => table::table_cmd(a),
        Command::Cache(a) => table::cache_cmd(a),
    }
}

/// Checks every output path a command was given before it does any work
/// ([`report::check_output`]): `(path, flag)`; an error names the path and the flag.
fn check_outputs(outputs: &[(Option<&std::path::Path>, &str)]) -> Result<(), InputError> {
    for (path, flag) in outputs {
        if let Some(p) = path {
            report::check_output(p)
                .map_err(|e| InputError::new(p, *flag, format!("cannot write here: {e}")))?;
        }
    }
    Ok(())
}

/// Checks (or creates) an output directory before any work: an error names it and the flag.
fn check_output_dir(dir: &std::path::Path, flag: &str) -> Result<(), InputError> {
    std::fs::create_dir_all(dir)
        .and_then(|_| report::check_dir_writable(dir))
        .map_err(|e| InputError::new(dir, flag, format!("cannot write files here: {e}")))
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

/// Tells the user, once per run and on stderr, what went wrong with the cache: an unusable
/// directory, or files that did not check out (their entries were recomputed).
fn warn_cache(table: &crate::optimum::Table) {
    warn_cache_lines(&table.cache_warnings);
}

/// [`warn_cache`] for the warnings of a report.
fn warn_cache_lines(w: &[String]) {
    if w.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} cache problem(s); what they concern was recomputed:",
        w.len()
    );
    for line in w.iter().take(5) {
        eprintln!("  {line}");
    }
    if w.len() > 5 {
        eprintln!("  ... and {} more", w.len() - 5);
    }
}

/// How values of an objective are printed.
fn value_unit(objective: Objective) -> fn(f64) -> String {
    match objective {
        Objective::Energy => report::energy,
        Objective::Latency => |v: f64| format!("{v:.0} cycles"),
        Objective::Edp => |v: f64| format!("{v:.4e} pJ*cycles"),
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
    check_outputs(&[
        (a.out.as_deref(), "--out"),
        (a.timeloop_out.as_deref(), "--timeloop-out"),
    ])?;
    let job = load_job(
        a.instance.as_deref(),
        &a.layer,
        a.timeloop.as_deref(),
        a.constraints.as_deref(),
        a.objective.map(Objective::from),
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
    let solved = crate::optimum::prove_best(
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
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        outln!("qmap map: {}", job.title);
        outln!("{}", report::settings_line(&job.problem, opts));
        if job.choices.len() > 1 {
            outln!("bit-width choices: {} (best shown)", job.choices.len());
        }
        outln!("mapspace: {}", report::mapspace_size(size));
        if let (Some(m), Some(ev)) = (&cert.mapping, &cert.evaluation) {
            outln!();
            out!("{}", report::loop_nest(m, &job.arch, &job.problem));
            outln!();
            out!("{}", report::evaluation_table(ev));
        }
        outln!();
        let value = |v: f64| {
            if v.is_finite() {
                unit(v)
            } else {
                "-".to_string()
            }
        };
        let how = match proof {
            crate::optimum::ProofKind::Enumerated
                if cert.status == crate::milp::Status::TimeLimit =>
            {
                format!(
                    "proof: enumeration stopped at the time limit (bound: the least bound of the \
                     parts left; {:.3e} factorisations × keep patterns)",
                    crate::optimum::enumeration_size(&job.space)
                )
            }
            crate::optimum::ProofKind::Enumerated => {
                format!(
                    "proof: enumerated ({}, {:.3e} factorisations × keep patterns)",
                    report::mapspace_size(size),
                    crate::optimum::enumeration_size(&job.space)
                )
            }
            crate::optimum::ProofKind::Milp if cert.splits > 0 => format!(
                "proof: MILP, rounds {}   MILP solves {}   halvings {}",
                cert.rounds, cert.milp_solves, cert.splits
            ),
            crate::optimum::ProofKind::Milp => format!(
                "proof: MILP, rounds {}   MILP solves {}",
                cert.rounds, cert.milp_solves
            ),
        };
        let found = if cert.mapping.is_none() && cert.status == crate::milp::Status::TimeLimit {
            "no mapping found yet".to_string()
        } else {
            format!("{} {}", objective_name(job.objective), value(cert.value))
        };
        outln!(
            "status: {}   {found}   bound {}   gap {:.3e}   {how}   {:.2} s",
            report::status_name(cert.status),
            value(cert.bound),
            cert.gap,
            cert.seconds
        );
        if let Some(r) = &cert.reason {
            outln!("reason: {r}");
        }
        if let Some(c) = cert.check.filter(|c| c.samples > 0) {
            outln!(
                "self-check: {} random valid mappings of {} drawn, none below the bound ({:.2} s)",
                c.valid,
                c.samples,
                c.seconds
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
    check_outputs(&[
        (a.out.as_deref(), "--out"),
        (a.timeloop_out.as_deref(), "--timeloop-out"),
    ])?;
    let job = load_job(
        Some(&a.instance),
        &a.layer,
        None,
        None,
        a.objective.map(Objective::from),
    )?;
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
            outln!(
                "{}",
                serde_json::json!({"method": format!("{:?}", a.method).to_lowercase(), "value": null, "evaluated": evaluated, "valid": valid})
            );
        } else {
            outln!("qmap search ({:?}): {}", a.method, job.title);
            outln!("no valid mapping found");
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
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        outln!("qmap search ({:?}): {}", a.method, job.title);
        outln!(
            "{}",
            report::settings_line(&job.problem, &job.choices[chosen].1)
        );
        outln!(
            "mapspace: {}; evaluated {evaluated}, valid {valid}{}",
            report::mapspace_size(size),
            if stopped {
                " (stopped at the time limit)"
            } else {
                ""
            }
        );
        if let (Some(m), Some(ev)) = (&res.best, &res.evaluation) {
            outln!();
            out!("{}", report::loop_nest(m, &job.arch, &job.problem));
            outln!();
            out!("{}", report::evaluation_table(ev));
        }
    }
    Ok(Outcome::Ok)
}

fn export_cmd(a: ExportArgs) -> Result<Outcome, Failure> {
    check_outputs(&[(a.out.as_deref(), "--out")])?;
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
        outln!("wrote {} ({title})", out.display());
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
        check_output_dir(dir, "--timeloop-dir")?;
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
        outln!(
            "wrote {}/{{arch,ERT,problem,map}}.yaml ({title})",
            dir.display()
        );
        for issue in timeloop::arch_export_issues(&job.arch) {
            outln!("note: {issue}");
        }
        if opts.bits.is_some() {
            outln!(
                "note: the problem carries `instance.bitwidths` (the seed fork's packing); \
                 Timeloop v3.0.3 itself has no packing"
            );
        }
        outln!(
            "rerun: cd {} && timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml",
            dir.display()
        );
    }
    Ok(Outcome::Ok)
}

fn baseline_cmd(a: BaselineArgs) -> Result<Outcome, Failure> {
    let inst = instance::load(&a.instance)?;
    check_output_dir(&a.out, "--out")?;
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
    let table = crate::optimum::build(&sub, &cons, &all, &a.optimum.settings(true))
        .map_err(|e| solver_failure(&a.instance, e))?;
    warn_cache(&table);
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
            let status = report::status_name(e.proof.status());
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
                "model_version": crate::optimum::MODEL_VERSION,
                "qmap_version": env!("CARGO_PKG_VERSION"),
                "instance": a.instance.display().to_string(),
                "instance_sha256": hash,
                "mapping": qfile,
                "timeloop_mapping": tfile,
                "reason": e.reason,
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
    outln!(
        "qmap baseline: {} layers ({} distinct shapes, {} from the cache) in {:.1} s -> {}",
        sub.layers.len(),
        table.units,
        table.cached_units,
        table.seconds,
        a.out.display()
    );
    // A layer with no mapping at any of its bit choices is infeasible: say why, exit code 1.
    let mut infeasible = 0;
    for (layer, entries) in sub.layers.iter().zip(&table.layers) {
        if entries
            .iter()
            .all(|e| e.energy_pj.is_none() && e.proof.optimal())
        {
            infeasible += 1;
            let why = entries.iter().find_map(|e| e.reason.clone());
            outln!(
                "layer {}: infeasible: {}",
                layer.name,
                why.as_deref().unwrap_or("no mapping of the mapspace fits")
            );
        }
    }
    if unproven > 0 {
        outln!("{unproven} entries are not proven optimal (time limit): see summary.csv");
    }
    Ok(if unproven > 0 || infeasible > 0 {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}

fn gap_cmd(a: GapArgs) -> Result<Outcome, Failure> {
    check_outputs(&[(a.junit.as_deref(), "--junit")])?;
    let design = match (&a.timeloop, &a.instance) {
        (Some(tl), _) => crate::app::gap::Design::Timeloop(tl),
        (None, Some(path)) => crate::app::gap::Design::Instance {
            path,
            layer: a.layer.clone(),
        },
        (None, None) => unreachable!("clap requires INSTANCE without --timeloop"),
    };
    let suite = a
        .instance
        .as_ref()
        .map_or("timeloop design".to_string(), |p| p.display().to_string());
    let ran = crate::app::gap::parse_max_gap(&a.max_gap)
        .map_err(|m| InputError::new(std::path::Path::new("(command line)"), "--max-gap", m))
        .and_then(|max_gap| {
            let req = crate::app::gap::GapRequest {
                design,
                constraints: a.constraints.as_deref(),
                mappings: &a.mappings,
                max_gap,
                only: a.layers.clone(),
                allow_missing: a.allow_missing,
                settings: a.optimum.settings(!a.json),
            };
            crate::app::gap::run(&req)
        });
    // The JUnit file is written whatever happened: a CI job always has its report.
    if let Some(j) = &a.junit {
        let text = match &ran {
            Ok(r) => report::gap_junit(Some(r), &r.suite, None),
            Err(e) => report::gap_junit(None, &suite, Some(&e.to_string())),
        };
        write_atomic(j, &text)?;
    }
    let r = ran?;
    for w in report::gap_warnings(&r) {
        eprintln!("warning: {w}");
    }
    if !r.cache_warnings.is_empty() {
        eprintln!(
            "warning: {} cache problem(s); what they concern was recomputed: {}",
            r.cache_warnings.len(),
            r.cache_warnings.join("; ")
        );
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        out!("{}", report::gap_text(&r));
    }
    Ok(if r.pass {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
    })
}

fn front_cmd(a: FrontArgs) -> Result<Outcome, Failure> {
    use crate::app::codesign::{self, CodesignError, CodesignRequest, Method};
    use crate::front::FrontKind;
    check_outputs(&[(a.svg.as_deref(), "--svg"), (a.csv.as_deref(), "--csv")])?;
    let req = CodesignRequest {
        instance: &a.instance,
        kind: match a.front {
            FrontKindArg::Accuracy => FrontKind::EnergyAccuracy,
            FrontKindArg::Memory => FrontKind::EnergyMemory,
            FrontKindArg::Both => FrontKind::EnergyAccuracyMemory,
            FrontKindArg::Cycles => FrontKind::EnergyCycles,
        },
        method: match a.method {
            FrontMethod::Exact => Method::Exact,
            FrontMethod::Nsga2 => Method::Nsga2,
        },
        max_points: a.points,
        min_accuracy: a.min_accuracy,
        accuracy_resolution: a.accuracy_resolution,
        max_memory_bytes: a.max_memory,
        seed: a.seed,
        csv: a.csv.as_deref(),
        svg: a.svg.as_deref(),
        settings: a.optimum.settings(!a.json),
    };
    let r = codesign::run(&req).map_err(|e| match e {
        CodesignError::Input(e) => Failure::Input(e),
        CodesignError::Solver(e) => solver_failure(&a.instance, e),
    })?;
    warn_cache_lines(r.cache_warnings());
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        out!("{}", crate::report::codesign::text(&r));
    }
    Ok(if r.pass() {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
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
        let (arch, problem, opts) = crate::app::job::timeloop_design(arch_f, prob_f, ert_f)?;
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
        outln!(
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
    outln!("qmap eval: {}", e.title);
    outln!("{}", report::settings_line(&e.problem, &e.opts));
    let dims: Vec<String> = e
        .problem
        .dims
        .iter()
        .zip(&e.problem.bounds)
        .map(|(d, b)| format!("{d}={b}"))
        .collect();
    outln!(
        "problem: {} ({} MACs)",
        dims.join(" "),
        report::thousands(e.problem.macs())
    );
    outln!();
    out!("{}", report::loop_nest(&e.mapping, &e.arch, &e.problem));
    outln!();
    out!("{}", report::evaluation_table(ev));
}
