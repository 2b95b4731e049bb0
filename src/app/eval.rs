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
    let (found, mapping_file) = match req {
        EvalRequest::Timeloop(tl) => timeloop_mapping(tl)?,
        EvalRequest::Instance {
            path,
            layer,
            mapping,
        } => instance_mapping(path, *layer, *mapping)?,
    };
    let m = found.mapping.as_ref().expect("a mapping to evaluate");
    let evaluation = evaluate(&found.problem, &found.arch, m, &found.opts);
    Ok(EvalReport {
        found,
        evaluation,
        mapping_file,
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

/// An instance's layer with its own mapping or a mapping file (qmap format).
fn instance_mapping(
    path: &Path,
    layer: Option<&str>,
    mapping: Option<&Path>,
) -> Result<(Found, PathBuf), InputError> {
    let mut inst = instance::load(path)?;
    if let Some(sel) = layer {
        inst.selected = select_layer(&inst, sel, path)?;
    }
    let problem = inst.layer().problem.clone();
    let (mapping, mapping_file): (Mapping, PathBuf) = match mapping {
        Some(mf) => {
            let ms = crate::spec::load_yaml(mf)?;
            let m = crate::model::mapping_from_spec(&ms, &inst.arch, &problem, mf)?;
            (m, mf.to_path_buf())
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
