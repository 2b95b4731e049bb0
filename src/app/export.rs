//! `qmap export`: a mapping (any format qmap reads) checked by the evaluator and written in
//! Timeloop's formats: one v0.4 `problem:` + `mapping:` file, or the four files
//! `timeloop-model` takes.

use super::job::load_job;
use crate::eval::evaluate;
use crate::instance;
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::report::files::{check_output_dir, check_timeloop_exportable, write_file, MappingFile};
use crate::spec::InputError;
use crate::timeloop;
use std::path::{Path, PathBuf};

/// What to export.
pub struct ExportRequest<'a> {
    pub instance: &'a Path,
    pub layer: Option<String>,
    /// The mapping file (default: the instance's own mapping).
    pub mapping: Option<&'a Path>,
}

/// A valid mapping of one layer, ready to write.
pub struct Export {
    /// "workload / layer on arch: energy, cycles".
    pub title: String,
    /// "workload / layer on arch", and the file the architecture came from.
    pub layer_title: String,
    pub arch_file: PathBuf,
    pub arch: Arch,
    pub problem: Problem,
    pub opts: ModelOptions,
    pub mapping: Mapping,
}

/// What [`write_timeloop_dir`] wrote, and what to note about it.
pub struct TimeloopDir {
    pub dir: PathBuf,
    /// What Timeloop's architecture format cannot carry.
    pub arch_issues: Vec<String>,
    /// The problem carries `instance.bitwidths`.
    pub bitwidths: bool,
}

/// Loads the layer and its mapping and checks the mapping valid (an invalid one is bad input
/// naming the mapping file).
pub fn load(req: &ExportRequest) -> Result<Export, InputError> {
    let job = load_job(Some(req.instance), &req.layer, None, None, None)?;
    if job.choices.len() != 1 {
        return Err(InputError::new(
            req.instance,
            "bits",
            "export needs one bit-width per tensor role (the instance lists choices)",
        ));
    }
    let opts = job.choices[0].1.clone();
    let (mapping, mapping_file) = match req.mapping {
        Some(f) => (
            instance::load_mapping_file(f, &job.arch, &job.problem)?,
            f.to_path_buf(),
        ),
        None => instance::load(req.instance)?
            .mapping
            .filter(|_| req.layer.is_none())
            .ok_or_else(|| {
                InputError::new(
                    req.instance,
                    "mapping",
                    "no mapping for this layer in the instance; pass --mapping FILE",
                )
            })?,
    };
    let ev = evaluate(&job.problem, &job.arch, &mapping, &opts);
    if let Some(inv) = &ev.invalid {
        let field = (inv.level.as_ref()).map_or("mapping".to_string(), |l| format!("mapping.{l}"));
        return Err(InputError::new(&mapping_file, field, inv.reason.clone()));
    }
    let title = format!(
        "{}: {}, {} cycles",
        job.title,
        crate::report::energy(ev.energy_pj),
        ev.cycles
    );
    Ok(Export {
        title,
        layer_title: job.title,
        arch_file: job.arch_file,
        arch: job.arch,
        problem: job.problem,
        opts,
        mapping,
    })
}

/// Writes the mapping with its problem as one Timeloop v0.4 file.
pub fn write_timeloop_file(e: &Export, out: &Path) -> Result<(), InputError> {
    write_file(out, &e.file().timeloop_text(out)?)
}

/// Writes the architecture, its energies, the problem and the mapping as the four files
/// `timeloop-model` takes (`arch.yaml`, `ERT.yaml`, `problem.yaml`, `map.yaml`) in `dir`.
pub fn write_timeloop_dir(e: &Export, dir: &Path) -> Result<TimeloopDir, InputError> {
    check_timeloop_exportable(dir, &e.mapping, &e.arch, &e.problem)?;
    check_output_dir(dir, "--timeloop-dir")?;
    let files = [
        ("arch.yaml", timeloop::export_arch(&e.arch)),
        ("ERT.yaml", timeloop::export_ert(&e.arch)),
        (
            "problem.yaml",
            timeloop::export_problem(&e.problem, e.opts.bits.as_ref()),
        ),
        ("map.yaml", e.file().timeloop_mapping()),
    ];
    for (name, text) in files {
        write_file(&dir.join(name), &text)?;
    }
    Ok(TimeloopDir {
        dir: dir.to_path_buf(),
        arch_issues: timeloop::arch_export_issues(&e.arch),
        bitwidths: e.opts.bits.is_some(),
    })
}

impl Export {
    /// The mapping as written, with its header comment.
    fn file(&self) -> MappingFile<'_> {
        MappingFile {
            mapping: &self.mapping,
            arch: &self.arch,
            problem: &self.problem,
            opts: &self.opts,
            title: &self.layer_title,
            arch_file: &self.arch_file,
            objective: crate::spec::Objective::Energy,
        }
    }
}
