//! The command line: argument parsing and the commands, each a thin layer over the library.

use crate::eval::{evaluate, Evaluation};
use crate::instance;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::report;
use crate::spec::{InputError, Objective, PackingMode};
use crate::timeloop;
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
    /// Find the optimal mapping of the instance's layer and prove it (MILP).
    Map(MapArgs),
    /// Baseline mappers on the same mapspace: exhaustive enumeration or random-pruned search.
    Search(SearchArgs),
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
    /// Wall-clock limit in seconds; on expiry the incumbent, the bound and the gap are printed.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Relative gap at which the answer counts as optimal.
    #[arg(long, default_value_t = 1e-6)]
    pub gap: f64,
    /// Write the mapping (qmap format) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the certificate as JSON.
    #[arg(long)]
    pub json: bool,
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
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
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

/// Runs a parsed command line; input errors come back as `Err` (exit code 2).
pub fn run(cli: Cli) -> Result<Outcome, InputError> {
    match cli.command {
        Command::Eval(a) => eval_cmd(a),
        Command::Map(a) => map_cmd(a),
        Command::Search(a) => search_cmd(a),
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
        let arch = timeloop::load_arch(arch_f, Some(ert_f))?;
        let (problem, bitwidths) = timeloop::load_problem(prob_f)?;
        let bits = timeloop_bits(&problem, bitwidths, prob_f)?;
        let opts = ModelOptions {
            bits,
            packing: PackingMode::Seed,
            ..Default::default()
        };
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
        let mut cons = crate::mapspace::Constraints::new(&inst.arch);
        if let Some(f) = &inst.constraints_file {
            cons.add_file(f, &inst.arch)?;
        }
        match &inst.constraints {
            // A path to a Timeloop-format constraint file, relative to the instance.
            Some(serde_yaml_ng::Value::String(f)) => {
                let dir = path.parent().unwrap_or(std::path::Path::new("."));
                cons.add_file(&dir.join(f), &inst.arch)?;
            }
            Some(v) => cons.add_value(v, path, "constraints", &inst.arch)?,
            None => {}
        }
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

fn write_mapping(
    out: &std::path::Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
) -> Result<(), InputError> {
    let spec = crate::model::mapping_to_spec(m, arch, problem);
    let text = serde_yaml_ng::to_string(&spec).expect("mapping serialises");
    // Write to a temporary file first so that nothing is half-written.
    let tmp = out.with_extension("yaml.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, out))
        .map_err(|e| InputError::new(out, "(file)", format!("cannot write: {e}")))
}

fn status_name(s: crate::milp::Status) -> &'static str {
    match s {
        crate::milp::Status::Optimal => "optimal",
        crate::milp::Status::TimeLimit => "time_limit",
        crate::milp::Status::Infeasible => "infeasible",
    }
}

fn bits_json(t: Option<instance::BitTriple>) -> serde_json::Value {
    match t {
        Some((i, w, o)) => serde_json::json!({"inputs": i, "weights": w, "outputs": o}),
        None => serde_json::Value::Null,
    }
}

fn map_cmd(a: MapArgs) -> Result<Outcome, InputError> {
    let job = load_job(
        a.instance.as_deref(),
        &a.layer,
        a.timeloop.as_deref(),
        a.constraints.as_deref(),
        a.objective,
    )?;
    let so = crate::milp::SolveOptions {
        time_limit: a.time_limit,
        gap: a.gap,
        ..Default::default()
    };
    let opts: Vec<ModelOptions> = job.choices.iter().map(|c| c.1.clone()).collect();
    let (cert, chosen) = crate::milp::solve_choices(&job.space, &opts, job.objective, &so)
        .map_err(|e| InputError::new(&job.file, "(solver)", e))?;
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
            ));
        }
    }
    if let (Some(out), Some(m)) = (&a.out, &cert.mapping) {
        write_mapping(out, m, &job.arch, &job.problem)?;
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
            "rounds": cert.rounds,
            "milp_solves": cert.milp_solves,
            "solve_seconds": cert.seconds,
            "mapspace_size": job.space.size_f64(),
            "bits": bits_json(*bits),
            "bit_choices": job.choices.len(),
            "reason": cert.reason,
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
        println!("mapspace: {:.3e} mappings", job.space.size_f64());
        if let (Some(m), Some(ev)) = (&cert.mapping, &cert.evaluation) {
            println!();
            print!("{}", report::loop_nest(m, &job.arch, &job.problem));
            println!();
            print!("{}", report::evaluation_table(ev));
        }
        println!();
        println!(
            "status: {}   energy {}   bound {}   gap {:.3e}   rounds {}   MILP solves {}   {:.2} s",
            status_name(cert.status),
            report::energy(cert.value),
            report::energy(cert.bound),
            cert.gap,
            cert.rounds,
            cert.milp_solves,
            cert.seconds
        );
        if let Some(r) = &cert.reason {
            println!("reason: {r}");
        }
    }
    Ok(match cert.status {
        crate::milp::Status::Infeasible => Outcome::CheckFailed,
        _ => Outcome::Ok,
    })
}

fn search_cmd(a: SearchArgs) -> Result<Outcome, InputError> {
    let job = load_job(Some(&a.instance), &a.layer, None, None, None)?;
    let mut best: Option<(crate::search::SearchResult, usize)> = None;
    let (mut evaluated, mut valid) = (0, 0);
    for (i, (_, opts)) in job.choices.iter().enumerate() {
        let res = match a.method {
            SearchMethod::Exhaustive => {
                let limit = if a.force { None } else { Some(a.limit) };
                crate::search::exhaustive(&job.space, opts, job.objective, limit)
                    .map_err(|e| InputError::new(&a.instance, "--method exhaustive", e))?
            }
            SearchMethod::Random => crate::search::random(
                &job.space,
                opts,
                job.objective,
                a.seed,
                a.samples,
                a.victory,
            ),
        };
        evaluated += res.evaluated;
        valid += res.valid;
        if res.best.is_some() && best.as_ref().is_none_or(|(b, _)| res.value < b.value) {
            best = Some((res, i));
        }
    }
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
    if a.json {
        let v = serde_json::json!({
            "method": format!("{:?}", a.method).to_lowercase(),
            "objective": job.objective,
            "value": res.value,
            "evaluated": evaluated,
            "valid": valid,
            "mapspace_size": job.space.size_f64(),
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
            "mapspace: {:.3e} mappings; evaluated {evaluated}, valid {valid}",
            job.space.size_f64(),
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

struct Evaluated {
    title: String,
    arch: Arch,
    problem: Problem,
    mapping: Mapping,
    mapping_file: PathBuf,
    opts: ModelOptions,
}

fn eval_cmd(a: EvalArgs) -> Result<Outcome, InputError> {
    let e = if let Some(tl) = &a.timeloop {
        let (arch_f, prob_f, map_f, ert_f) = (&tl[0], &tl[1], &tl[2], &tl[3]);
        let arch = timeloop::load_arch(arch_f, Some(ert_f))?;
        let (problem, bitwidths) = timeloop::load_problem(prob_f)?;
        let mapping = timeloop::load_mapping(map_f, &arch, &problem)?;
        let bits = timeloop_bits(&problem, bitwidths, prob_f)?;
        let opts = ModelOptions {
            bits,
            packing: PackingMode::Seed,
            ..Default::default()
        };
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
            inst.selected = match sel.parse::<usize>() {
                Ok(i) if i >= 1 && i <= inst.layers.len() => i - 1,
                _ => inst
                    .layers
                    .iter()
                    .position(|l| &l.name == sel)
                    .ok_or_else(|| {
                        InputError::new(
                            path,
                            "--layer",
                            format!("no layer `{sel}` in {}", inst.workload_name),
                        )
                    })?,
            };
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
            ));
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
        return Err(InputError::new(&e.mapping_file, field, inv.reason.clone()));
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
