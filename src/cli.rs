//! The command line: argument parsing and the commands, each a thin layer over the library.

use crate::eval::{evaluate, Evaluation};
use crate::instance;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::report;
use crate::spec::{InputError, PackingMode};
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
    }
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
        let bits = bitwidths.map(|bw| {
            crate::model::Bits(
                problem
                    .tensors
                    .iter()
                    .map(|t| bw.get(&t.name).copied().unwrap_or(0))
                    .collect(),
            )
        });
        if let Some(b) = &bits {
            if let Some(i) = b.0.iter().position(|&x| x == 0) {
                return Err(InputError::new(
                    prob_f,
                    "problem.instance.bitwidths",
                    format!("no bit-width for {}", problem.tensors[i].name),
                ));
            }
        }
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
