//! The command line's arguments: one clap struct per command, and the argument groups they
//! share (how optima are proved, the table's options, progress).

use crate::spec::Objective;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    Table(super::table::TableArgs),
    /// Cache maintenance: merge caches.
    Cache(super::table::CacheArgs),
    /// Read an ONNX model into a qmap network: a summary (layers by kind, MACs, weights) and,
    /// with --out, the network YAML.
    Import(ImportArgs),
    /// Measured accuracy: `measure` each layer's sensitivity to quantisation on real images
    /// and write it as an accuracy table.
    Accuracy(super::accuracy::AccuracyArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The ONNX model file.
    pub model: PathBuf,
    /// Write the network YAML here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The whole input shape, batch first (e.g. 1,3,224,224): needed when the model's input
    /// has dynamic dims. The batch becomes every layer's N.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub input_shape: Option<Vec<u64>>,
    /// Print the import as JSON: `layers[]` (name, kind, dims, macs, weights), `macs_total`,
    /// `weights_total`.
    #[arg(long)]
    pub json: bool,
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

/// `front --verify-accuracy` and where its images come from.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Re-measure every front point's true top-1 and KL on the test split (the workload must
    /// be an ONNX file with its weights) and print them beside the predictions.
    #[arg(long)]
    pub verify_accuracy: bool,
    /// With --verify-accuracy: the folder of the dataset's IDX files.
    #[arg(
        long,
        default_value = "/usr/share/datasets/fashion-mnist",
        requires = "verify_accuracy"
    )]
    pub data: PathBuf,
    /// With --verify-accuracy: the first test image measured (e.g. 5000: past the images a
    /// table measured with `--test-images 5000` saw).
    #[arg(long, default_value_t = 0, requires = "verify_accuracy")]
    pub test_from: usize,
    /// With --verify-accuracy: test images measured (default: all from --test-from on).
    #[arg(long, requires = "verify_accuracy")]
    pub test_images: Option<usize>,
    /// With --verify-accuracy: training images the activation ranges are calibrated on.
    #[arg(long, default_value_t = 1000, requires = "verify_accuracy")]
    pub calib_images: usize,
}

#[derive(clap::Args, Debug)]
pub struct FrontArgs {
    /// Instance with a network workload, bit-width lists and a `front:` section.
    pub instance: PathBuf,
    #[arg(long, value_enum, default_value_t = FrontKindArg::Accuracy)]
    pub front: FrontKindArg,
    #[arg(long, value_enum, default_value_t = FrontMethod::Exact)]
    pub method: FrontMethod,
    /// Point budget: stop the front after this many points (lowest energy first). The front is
    /// traced whole unless this or --front-time-limit stops it; then the output says so
    /// (`complete: false`, `stopped`) and where.
    #[arg(long, default_value_t = 5000)]
    pub points: usize,
    /// Time budget of the front's trace (seconds; `0`: none).
    #[arg(long, default_value_t = 120.0)]
    pub front_time_limit: f64,
    /// Only points with at least this accuracy (the accuracy model's unit, % top-1). Default:
    /// uniform 8-bit's accuracy minus 2 points (the front below is long and rarely wanted);
    /// `--min-accuracy 0` traces all of it.
    #[arg(long, conflicts_with = "max_kl")]
    pub min_accuracy: Option<f64>,
    /// Only points whose summed KL is at most this (nats), for an accuracy table that selects by
    /// KL (`select_by: kl`). Default: uniform 8-bit's KL plus 0.1.
    #[arg(long)]
    pub max_kl: Option<f64>,
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Accuracies closer than this count as equal (percentage points).
    #[arg(long, default_value_t = 1e-6)]
    pub accuracy_resolution: f64,
    /// Only points with at most this weight memory (bytes).
    #[arg(long)]
    pub max_memory: Option<f64>,
    /// Only points whose network cycles (Σ layer cycles) are at most N: least energy over the
    /// table's mappings (one energy-optimal mapping per layer and bits), not over every mapping.
    #[arg(long, value_name = "N")]
    pub max_cycles: Option<u64>,
    /// The headline's second comparison: the least energy within this many points of uniform
    /// 8-bit's accuracy (nats of KL for a KL table); default 0.5 points, 0.01 nats.
    #[arg(long, value_name = "POINTS|NATS")]
    pub accuracy_tolerance: Option<f64>,
    /// Print every point's per-layer bits (weight / output bits, by layer name).
    #[arg(long)]
    pub detail: bool,
    /// Show no progress on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// NSGA-II seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
    /// Write the points as CSV.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write an SVG plot of the front (uniform 8- and 16-bit designs, the random-search baseline,
    /// NSGA-II's points, the headline's design and, for cycles, the minimum-EDP point marked).
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
    pub fn settings(&self, progress: bool) -> crate::optimum::TableSettings {
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
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// The design a layer's mapping is for: an instance, or a Timeloop design (`map` and `gap`).
#[derive(clap::Args, Debug)]
pub struct DesignArgs {
    /// Instance file (a layer or a network).
    #[arg(required_unless_present = "timeloop")]
    pub instance: Option<PathBuf>,
    /// Timeloop-format design instead of an instance: ARCH PROBLEM ERT (bit-widths from the
    /// problem's `instance.bitwidths`).
    #[arg(long, num_args = 3, value_names = ["ARCH", "PROBLEM", "ERT"], conflicts_with_all = ["instance", "layer"])]
    pub timeloop: Option<Vec<PathBuf>>,
    /// Timeloop-format mapspace constraints (added to the instance's own).
    #[arg(long)]
    pub constraints: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GapArgs {
    #[command(flatten)]
    pub design: DesignArgs,
    /// With a single mapping file and a network workload: its layer (name or 1-based index).
    #[arg(long)]
    pub layer: Option<String>,
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
#[command(after_help = "\
With bit-width lists in the instance (`bits: {weights: [4, 8], ...}`), map returns the choice
that minimises the objective alone: there is no accuracy term, and fewer bits never cost more
(they pack at least as densely, and the shipped designs' MAC energy does not depend on bits,
or in the *_bitmac variants grows with them), so the answer is at the smallest bits, or a choice
as cheap; only a MAC energy table that prices fewer bits above more changes that. `qmap front`
trades energy against accuracy over per-layer bit-widths.")]
pub struct MapArgs {
    #[command(flatten)]
    pub design: DesignArgs,
    /// With a network workload: the layer (name or 1-based index).
    #[arg(long)]
    pub layer: Option<String>,
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
    #[command(flatten)]
    pub outputs: MappingOutArgs,
    /// Print the certificate as JSON.
    #[arg(long)]
    pub json: bool,
    /// Take the energy optimum from the per-layer cache in DIR (the one `baseline`, `table`
    /// and `front` use; `.qmap-cache` is theirs) when an entry there checks out, else prove it
    /// with the table's engine and store it. Energy objective only.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// A latency budget for `map` (each flag replaces the instance's `budget:` field it names).
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct BudgetArgs {
    /// Only mappings of at most N cycles: the answer is the optimum among them (proved under
    /// the budget), or `infeasible` with the least cycles of the mapspace.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_cycles: Option<u64>,
    /// Only mappings of utilisation (MACs / (cycles × the design's MAC instances)) at least U,
    /// in (0, 1]: the cycles cap ⌊MACs / (U × instances)⌋.
    #[arg(long, value_name = "U", value_parser = utilization)]
    pub min_utilization: Option<f64>,
}

impl From<BudgetArgs> for crate::budget::Budget {
    fn from(a: BudgetArgs) -> Self {
        crate::budget::Budget {
            max_cycles: a.max_cycles,
            min_utilization: a.min_utilization,
        }
    }
}

/// A utilisation in (0, 1].
fn utilization(s: &str) -> Result<f64, String> {
    let u: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if u > 0.0 && u <= 1.0 {
        Ok(u)
    } else {
        Err(format!("{u} is not in (0, 1]"))
    }
}

/// How a long solve shows its progress on stderr.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ProgressArgs {
    /// Show progress on stderr (the default): on a terminal a line redrawn every second, elsewhere
    /// a line every 5 s, from the first second on (kept for scripts that pass it).
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// Show no progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl ProgressArgs {
    pub fn mode(self) -> crate::progress::Mode {
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
    #[command(flatten)]
    pub outputs: MappingOutArgs,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub progress: ProgressArgs,
}

/// Where `map` and `search` write the mapping they find.
#[derive(clap::Args, Debug)]
pub struct MappingOutArgs {
    /// Write the mapping found (qmap format) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the mapping found and its problem in Timeloop's v0.4 format to this file.
    #[arg(long)]
    pub timeloop_out: Option<PathBuf>,
}

impl MappingOutArgs {
    /// The outputs, checked before any work (an error names the path and its flag).
    pub fn checked(&self) -> Result<crate::app::job::MappingOutputs<'_>, crate::spec::InputError> {
        let outputs = crate::app::job::MappingOutputs {
            out: self.out.as_deref(),
            timeloop_out: self.timeloop_out.as_deref(),
        };
        outputs.check()?;
        Ok(outputs)
    }
}

/// What `qmap eval`'s table shows (after its `--help`; docs/format.md says the same).
const EVAL_COLUMNS: &str = "\
The table (outermost level first; a level's [ ... ] in the loop nest lists the tensors it keeps):
  level    storage level (Timeloop's name); the last row, MACs, is the arithmetic units
  inst     instances of the level in use (spatial copies: PEs, banks); on MACs, MAC units used
  tensor   a tensor the level keeps (a bypassed tensor has no row there)
  k        operands per word: floor(word bits / tensor bits) with `packing: seed` (8-bit
           operands in 16-bit words: k = 2); 1 = no packing (native widths)
  tile(w)  words one instance holds of the tensor's tile (after packing): what counts
           against the level's capacity (depth x block size words)
  reads    words read from the level, over all its instances (by the level below, or the
           MACs' operand fetches at the innermost keeper)
  fills    words written into the level from the level above (outermost keeper: none)
  updates  words of partial sums written back into the level (Outputs only)
  energy   the level's energy for the tensor: reads, fills and updates in vector accesses
           (ceil(words / block size) per instance) times the energy per access; on MACs,
           MACs x energy per MAC
The last line: total energy (pJ per MAC), cycles (compute steps stretched by the slowest
level's bandwidth), utilization (MAC units used / MAC units) and EDP (energy x cycles).
--json has every count per instance and in total, with the tile's points and partition size.";

#[derive(clap::Args, Debug)]
#[command(after_help = EVAL_COLUMNS)]
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

impl From<SearchMethod> for crate::app::search::Method {
    fn from(m: SearchMethod) -> crate::app::search::Method {
        match m {
            SearchMethod::Exhaustive => crate::app::search::Method::Exhaustive,
            SearchMethod::Random => crate::app::search::Method::Random,
        }
    }
}

impl From<FrontKindArg> for crate::front::FrontKind {
    fn from(k: FrontKindArg) -> crate::front::FrontKind {
        use crate::front::FrontKind;
        match k {
            FrontKindArg::Accuracy => FrontKind::EnergyAccuracy,
            FrontKindArg::Memory => FrontKind::EnergyMemory,
            FrontKindArg::Both => FrontKind::EnergyAccuracyMemory,
            FrontKindArg::Cycles => FrontKind::EnergyCycles,
        }
    }
}

impl From<FrontMethod> for crate::app::codesign::Method {
    fn from(m: FrontMethod) -> crate::app::codesign::Method {
        match m {
            FrontMethod::Exact => crate::app::codesign::Method::Exact,
            FrontMethod::Nsga2 => crate::app::codesign::Method::Nsga2,
        }
    }
}
