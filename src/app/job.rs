//! One layer to map, search or check: its design (an instance's layer, or Timeloop design
//! files), mapspace, bit-width choices and objective; and the small helpers the commands
//! share to pick layers and name files.

use crate::instance;
use crate::model::{Arch, ModelOptions, Problem};
use crate::spec::{InputError, Objective, PackingMode};
use crate::timeloop;
use std::path::{Path, PathBuf};

/// One layer to map or search: its design, mapspace, bit-width choices and objective.
pub struct Job {
    /// "workload / layer on arch".
    pub title: String,
    pub arch: Arch,
    pub problem: Problem,
    pub space: crate::mapspace::Mapspace,
    /// The allowed bit-widths: the (inputs, weights, outputs) triple (None = native or per
    /// tensor from a Timeloop problem) and the model options it gives.
    pub choices: Vec<(Option<instance::BitTriple>, ModelOptions)>,
    pub objective: Objective,
    /// The file the job came from (errors name it).
    pub file: PathBuf,
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
        objective: objective.unwrap_or(inst_objective),
        file,
    })
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

pub fn select_layer(
    inst: &instance::Instance,
    sel: &str,
    path: &Path,
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

/// A file name for a layer: its name with every character outside `[A-Za-z0-9-_.]` as `_`.
pub fn file_stem(name: &str) -> String {
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
pub fn sub_instance(inst: &instance::Instance, layers: &[usize]) -> instance::Instance {
    let mut sub = inst.clone();
    sub.layers = layers.iter().map(|&i| inst.layers[i].clone()).collect();
    sub.selected = 0;
    sub
}

/// Content hash of what an instance asks for: its file, architecture, constraints, layers.
pub fn instance_hash(inst: &instance::Instance, cons: &crate::mapspace::Constraints) -> String {
    let text = std::fs::read_to_string(&inst.file).unwrap_or_default();
    crate::optimum::content_hash(&[
        text,
        format!("{:?}", inst.arch),
        format!("{cons:?}"),
        format!(
            "{:?}",
            inst.layers.iter().map(|l| &l.problem).collect::<Vec<_>>()
        ),
    ])
}
