//! `qmap eval`: a mapping (an instance's own, a mapping file, or Timeloop design files)
//! evaluated with Timeloop's cost model, as a typed report.

use super::job::{timeloop_design, Found};
use crate::eval::{evaluate, Evaluation};
use crate::instance::{self, select_layer};
use crate::model::Mapping;
use crate::spec::InputError;
use crate::timeloop;
use std::path::{Path, PathBuf};

/// What to evaluate.
pub enum EvalRequest<'a> {
    /// An instance's layer (name or 1-based index) with its own mapping or a mapping file.
    Instance {
        path: &'a Path,
        layer: Option<&'a str>,
        mapping: Option<&'a Path>,
    },
    /// Timeloop-format design files: ARCH PROBLEM MAP ERT.
    Timeloop(&'a [PathBuf]),
}

/// The evaluation; its `--json` is the evaluation's own.
pub struct EvalReport {
    pub found: Found,
    pub evaluation: Evaluation,
    /// The file the mapping came from (an invalid mapping's error names it).
    pub mapping_file: PathBuf,
    /// What the user should know (stderr): the instance's mapping reused for another layer
    /// of the same shape.
    pub warnings: Vec<String>,
}

impl EvalReport {
    /// Why the mapping is invalid, as bad input naming the mapping file and the level.
    pub fn invalid(&self) -> Option<InputError> {
        let inv = self.evaluation.invalid.as_ref()?;
        let field = match &inv.level {
            Some(l) => format!("mapping.{l}"),
            None => "mapping".to_string(),
        };
        Some(InputError::new(
            &self.mapping_file,
            field,
            inv.reason.clone(),
        ))
    }
}

/// Loads the design and its mapping and evaluates it (an invalid mapping is reported, not an
/// error: see [`EvalReport::invalid`]).
pub fn run(req: &EvalRequest) -> Result<EvalReport, InputError> {
    let mut warnings = vec![];
    let (found, mapping_file) = match req {
        EvalRequest::Timeloop(tl) => timeloop_mapping(tl)?,
        EvalRequest::Instance {
            path,
            layer,
            mapping,
        } => instance_mapping(path, *layer, *mapping, &mut warnings)?,
    };
    let m = found.mapping.as_ref().expect("a mapping to evaluate");
    let evaluation = evaluate(&found.problem, &found.arch, m, &found.opts);
    Ok(EvalReport {
        found,
        evaluation,
        mapping_file,
        warnings,
    })
}

/// Timeloop design files and their mapping.
fn timeloop_mapping(tl: &[PathBuf]) -> Result<(Found, PathBuf), InputError> {
    let (arch_f, prob_f, map_f, ert_f) = (&tl[0], &tl[1], &tl[2], &tl[3]);
    let (arch, problem, opts) = timeloop_design(arch_f, prob_f, ert_f)?;
    let mapping = timeloop::load_mapping(map_f, &arch, &problem)?;
    let found = Found {
        title: format!("{} on {}", problem.name, arch.name),
        arch,
        problem,
        opts,
        mapping: Some(mapping),
    };
    Ok((found, map_f.clone()))
}

/// An instance's layer with its own mapping or a mapping file (any format qmap reads).
fn instance_mapping(
    path: &Path,
    layer: Option<&str>,
    mapping: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Result<(Found, PathBuf), InputError> {
    let mut inst = instance::load(path)?;
    let own_layer = inst.selected;
    if let Some(sel) = layer {
        inst.selected = select_layer(&inst, sel, path)?;
    }
    let problem = inst.layer().problem.clone();
    let (mapping, mapping_file): (Mapping, PathBuf) = match mapping {
        Some(mf) => {
            let m = instance::load_mapping_file(mf, &inst.arch, &problem)
                .map_err(|e| written_for_another_layer(e, inst.layer()))?;
            (m, mf.to_path_buf())
        }
        None => own_mapping(&inst, path, own_layer, warnings)?,
    };
    if inst.bits.fixed().is_none() && !inst.bits.is_native() {
        return Err(InputError::new(
            path,
            "bits",
            "eval needs one bit-width per tensor role (the instance lists choices)",
        ));
    }
    let opts = inst.fixed_options(&problem);
    let title = format!(
        "{} / {} on {}",
        inst.workload_name,
        inst.layer().name,
        inst.arch.name
    );
    let found = Found {
        title,
        arch: inst.arch,
        problem,
        opts,
        mapping: Some(mapping),
    };
    Ok((found, mapping_file))
}

/// The instance's own mapping for the selected layer. It is written for the instance's
/// `workload.select` layer (`own_layer`): another layer of the same shape reuses it with a
/// warning; another shape is an error naming the instance's `mapping` field.
fn own_mapping(
    inst: &instance::Instance,
    path: &Path,
    own_layer: usize,
    warnings: &mut Vec<String>,
) -> Result<(Mapping, PathBuf), InputError> {
    let (mapping, file) = inst.mapping.clone().ok_or_else(|| {
        InputError::new(
            path,
            "mapping",
            "the instance has no mapping; pass --mapping FILE",
        )
    })?;
    if inst.selected == own_layer {
        return Ok((mapping, file));
    }
    let (own, chosen) = (&inst.layers[own_layer], inst.layer());
    let is = |l: &crate::workload::Layer| format!("layer {} ({})", l.name, shape(&l.problem));
    if crate::optimum::shape_key(&own.problem) == crate::optimum::shape_key(&chosen.problem) {
        warnings.push(format!(
            "{}: mapping: {} is written for {}; {} has the same shape, so it is reused",
            path.display(),
            file.display(),
            own.name,
            chosen.name
        ));
        return Ok((mapping, file));
    }
    Err(InputError::new(
        path,
        "mapping",
        format!(
            "`{}` is written for {}, not {}; pass --mapping FILE with a mapping of {} \
             (e.g. written by `qmap map {} --layer {} --out FILE`)",
            file.display(),
            is(own),
            is(chosen),
            chosen.name,
            path.display(),
            chosen.name
        ),
    ))
}

/// A layer's dims and bounds: `N=1 M=144 C=24 P=56 Q=56 R=1 S=1`.
pub fn shape(p: &crate::model::Problem) -> String {
    (p.dims.iter().zip(&p.bounds))
        .map(|(d, b)| format!("{d}={b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A mapping file's error with what the mapping must fit: the selected layer's shape (a
/// mapping written for another layer fails on its factors).
fn written_for_another_layer(mut e: InputError, layer: &crate::workload::Layer) -> InputError {
    e.message = format!(
        "{} (the mapping must be one of layer {}: {})",
        e.message,
        layer.name,
        shape(&layer.problem)
    );
    e
}
