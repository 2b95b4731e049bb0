//! One layer to map, search or check: its design (an instance's layer, or Timeloop design
//! files), mapspace, bit-width choices and objective.

use crate::eval::Evaluation;
use crate::instance;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::spec::{InputError, MappingSpec, Objective, PackingMode};
use crate::timeloop;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use crate::instance::{file_stem, instance_hash, select_layer, sub_instance};

/// One layer to map or search: its design, mapspace, bit-width choices and objective.
pub struct Job {
    /// "workload / layer on arch".
    pub title: String,
    pub arch: Arch,
    pub problem: Problem,
    pub space: crate::mapspace::Mapspace,
    /// The allowed bit-widths: the (inputs, weights, outputs) triple (None = native or per
    /// tensor from a Timeloop problem) and the model options it gives.
    pub choices: Vec<(Option<instance::BitConfig>, ModelOptions)>,
    pub objective: Objective,
    /// The file the job came from (errors name it).
    pub file: PathBuf,
    /// The file the architecture came from.
    pub arch_file: PathBuf,
    /// The mapspace constraints (what a table unit of this layer is keyed by).
    pub cons: crate::mapspace::Constraints,
    /// The instance's latency budget (none from Timeloop design files).
    pub budget: crate::budget::Budget,
}

/// What a job is made of before its mapspace: the design, its constraints, the bit-width
/// choices and the design's own objective.
struct Parts {
    title: String,
    arch: Arch,
    problem: Problem,
    cons: crate::mapspace::Constraints,
    choices: Vec<(Option<instance::BitConfig>, ModelOptions)>,
    objective: Objective,
    file: PathBuf,
    arch_file: PathBuf,
    budget: crate::budget::Budget,
}

/// Loads a job from an instance (layer selected) or from Timeloop design files, with extra
/// constraints and an objective override.
pub fn load_job(
    instance: Option<&Path>,
    layer: &Option<String>,
    tl: Option<&[PathBuf]>,
    extra_constraints: Option<&Path>,
    objective: Option<Objective>,
) -> Result<Job, InputError> {
    let mut p = match tl {
        Some(tl) => timeloop_parts(tl)?,
        None => instance_parts(
            instance.expect("clap requires INSTANCE without --timeloop"),
            layer,
        )?,
    };
    if let Some(f) = extra_constraints {
        p.cons.add_file(f, &p.arch)?;
    }
    let space = crate::mapspace::Mapspace::new(&p.problem, &p.arch, &p.cons)
        .map_err(|e| InputError::new(extra_constraints.unwrap_or(&p.file), "constraints", e))?;
    Ok(Job {
        title: p.title,
        arch: p.arch,
        problem: p.problem,
        space,
        choices: p.choices,
        objective: objective.unwrap_or(p.objective),
        file: p.file,
        arch_file: p.arch_file,
        cons: p.cons,
        budget: p.budget,
    })
}

/// A job's parts from Timeloop design files ARCH PROBLEM ERT (objective: energy).
fn timeloop_parts(tl: &[PathBuf]) -> Result<Parts, InputError> {
    let (arch_f, prob_f, ert_f) = (&tl[0], &tl[1], &tl[2]);
    let (arch, problem, opts) = timeloop_design(arch_f, prob_f, ert_f)?;
    Ok(Parts {
        title: format!("{} on {}", problem.name, arch.name),
        cons: crate::mapspace::Constraints::new(&arch),
        arch,
        problem,
        choices: vec![(None, opts)],
        objective: Objective::Energy,
        file: prob_f.clone(),
        arch_file: arch_f.clone(),
        budget: Default::default(),
    })
}

/// A job's parts from an instance's layer (`layer`: a name or 1-based index).
fn instance_parts(path: &Path, layer: &Option<String>) -> Result<Parts, InputError> {
    let mut inst = instance::load(path)?;
    if let Some(sel) = layer {
        inst.selected = select_layer(&inst, sel, path)?;
    }
    let cons = inst.constraints()?;
    let problem = inst.layer().problem.clone();
    let choices = bit_choices(&inst, &problem, path)?;
    Ok(Parts {
        title: format!(
            "{} / {} on {}",
            inst.workload_name,
            inst.layer().name,
            inst.arch.name
        ),
        objective: inst.objective,
        arch: inst.arch,
        problem,
        cons,
        choices,
        file: path.to_path_buf(),
        arch_file: inst.arch_file,
        budget: inst.budget,
    })
}

/// The selected layer's bit-width choices with their model options (native: one, no triple);
/// an error when the weight budget leaves none.
fn bit_choices(
    inst: &instance::Instance,
    problem: &Problem,
    path: &Path,
) -> Result<Vec<(Option<instance::BitConfig>, ModelOptions)>, InputError> {
    if inst.bits.is_native() {
        return Ok(vec![(None, inst.options(problem, None))]);
    }
    let configs = inst.bits.configs(inst.layer().weights);
    if configs.is_empty() {
        return Err(InputError::new(
            path,
            "bits.weight_budget_bytes",
            format!(
                "no weight bit-width of layer {} fits the budget",
                inst.layer().name
            ),
        ));
    }
    Ok(configs
        .into_iter()
        .map(|t| (Some(t), inst.options(problem, Some(t))))
        .collect())
}

/// A Timeloop-format design: the architecture with its ERT, the problem, and the model options
/// at the problem's `instance.bitwidths` (seed packing; native without bit-widths).
pub fn timeloop_design(
    arch_f: &Path,
    prob_f: &Path,
    ert_f: &Path,
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
    prob_f: &Path,
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

/// A bit configuration as the JSON outputs give it (`null` for native or per-tensor bits).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RoleBits {
    pub inputs: u32,
    pub weights: u32,
    pub outputs: u32,
}

impl RoleBits {
    pub fn of(t: Option<instance::BitConfig>) -> Option<RoleBits> {
        t.map(|b| RoleBits {
            inputs: b.input_bits,
            weights: b.weight_bits,
            outputs: b.output_bits,
        })
    }
}

/// How long counting the mapspace (a report, not part of the answer) may take under a time
/// limit: a tenth of it (at least 0.2 s), so that the count leaves the solve its time.
pub fn count_deadline(start: Instant, time_limit: Option<f64>) -> Option<Instant> {
    time_limit.map(|t| start + Duration::from_secs_f64((t / 10.0).clamp(0.2, 1e9).min(t.max(0.0))))
}

/// A mapping a command found or read, with the design it maps (what the text printers show).
pub struct Found {
    /// "workload / layer on arch".
    pub title: String,
    pub arch: Arch,
    pub problem: Problem,
    /// The model options of the chosen bit-widths.
    pub opts: ModelOptions,
    pub mapping: Option<Mapping>,
}

/// Where `map` and `search` write the mapping they found: qmap's format (`--out`), and with
/// its problem Timeloop's v0.4 (`--timeloop-out`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MappingOutputs<'a> {
    pub out: Option<&'a Path>,
    pub timeloop_out: Option<&'a Path>,
}

impl MappingOutputs<'_> {
    /// Checks both before any work (an error names the path and its flag).
    pub fn check(&self) -> Result<(), InputError> {
        crate::report::files::check_outputs(&[
            (self.out, "--out"),
            (self.timeloop_out, "--timeloop-out"),
        ])
    }

    /// Writes `m` (nothing without a mapping) as asked.
    pub fn write(
        &self,
        m: Option<&Mapping>,
        job: &Job,
        opts: &ModelOptions,
    ) -> Result<(), InputError> {
        use crate::report::files::{write_mapping, write_timeloop, MappingFile};
        let Some(mapping) = m else { return Ok(()) };
        let file = MappingFile {
            mapping,
            arch: &job.arch,
            problem: &job.problem,
            opts,
            title: &job.title,
            arch_file: &job.arch_file,
            objective: job.objective,
        };
        if let Some(out) = self.out {
            write_mapping(out, &file)?;
        }
        if let Some(out) = self.timeloop_out {
            write_timeloop(out, &file)?;
        }
        Ok(())
    }
}

/// What the JSON of `map` and of `search` share (flattened into each).
#[derive(Serialize)]
pub struct Answer {
    /// The chosen bit-widths (null: native or per tensor).
    pub bits: Option<RoleBits>,
    /// The mapping's evaluation, and the mapping in qmap's format.
    pub evaluation: Option<Evaluation>,
    pub mapping: Option<MappingSpec>,
    /// The mapspace's size in mappings (null when counting it ran out of time).
    pub mapspace_size: Option<f64>,
    pub objective: Objective,
}

impl Answer {
    /// The answer of `job` at bit choice `chosen`.
    pub fn new(
        job: &Job,
        chosen: usize,
        mapping: Option<&Mapping>,
        evaluation: Option<Evaluation>,
        mapspace_size: Option<f64>,
    ) -> Answer {
        Answer {
            bits: RoleBits::of(job.choices[chosen].0),
            evaluation,
            mapping: mapping.map(|m| crate::model::mapping_to_spec(m, &job.arch, &job.problem)),
            mapspace_size,
            objective: job.objective,
        }
    }
}
