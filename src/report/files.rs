//! The commands' output files, with errors as bad input naming the file and the flag: checking
//! outputs before any work, writing text atomically, and a mapping in qmap's or Timeloop's
//! format.

use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::spec::InputError;
use crate::timeloop;
use std::path::Path;

/// Checks every output path a command was given before it does any work
/// ([`super::check_output`]): `(path, flag)`; an error names the path and the flag.
pub fn check_outputs(outputs: &[(Option<&Path>, &str)]) -> Result<(), InputError> {
    for (path, flag) in outputs {
        if let Some(p) = path {
            super::check_output(p)
                .map_err(|e| InputError::new(p, *flag, format!("cannot write here: {e}")))?;
        }
    }
    Ok(())
}

/// Checks (or creates) an output directory before any work: an error names it and the flag.
pub fn check_output_dir(dir: &Path, flag: &str) -> Result<(), InputError> {
    std::fs::create_dir_all(dir)
        .and_then(|_| super::check_dir_writable(dir))
        .map_err(|e| InputError::new(dir, flag, format!("cannot write files here: {e}")))
}

/// Writes an output file atomically; an error names the file.
pub fn write_file(out: &Path, text: &str) -> Result<(), InputError> {
    super::write_atomic(out, text)
        .map_err(|e| InputError::new(out, "(file)", format!("cannot write: {e}")))
}

/// A mapping to write, with what its header comment names: the layer, the architecture and
/// its file, and the mapping's energy, cycles and the objective (evaluated here, by the
/// evaluator).
pub struct MappingFile<'a> {
    pub mapping: &'a Mapping,
    pub arch: &'a Arch,
    pub problem: &'a Problem,
    pub opts: &'a ModelOptions,
    /// "workload / layer on arch" (or "layer on arch").
    pub title: &'a str,
    /// The file the architecture came from.
    pub arch_file: &'a Path,
    pub objective: crate::spec::Objective,
}

impl MappingFile<'_> {
    /// The header comment (YAML `#` lines) naming the layer, the architecture, the energy,
    /// cycles and the objective.
    pub fn header(&self) -> String {
        let ev = crate::eval::evaluate(self.problem, self.arch, self.mapping, self.opts);
        let objective = match self.objective {
            crate::spec::Objective::Energy => "energy",
            crate::spec::Objective::Latency => "latency",
            crate::spec::Objective::Edp => "edp",
        };
        format!(
            "# qmap {}: {}\n# architecture: {} ({})\n# energy {} ({:.4} pJ), {} cycles; \
             objective: {objective}\n# {}\n",
            env!("CARGO_PKG_VERSION"),
            self.title,
            self.arch.name,
            tidy(self.arch_file).display(),
            super::energy(ev.energy_pj),
            ev.energy_pj,
            super::thousands(ev.cycles),
            super::settings_line(self.problem, self.opts),
        )
    }

    /// The mapping in qmap's YAML format, after its header.
    pub fn qmap_yaml(&self) -> String {
        let spec = crate::model::mapping_to_spec(self.mapping, self.arch, self.problem);
        let yaml = serde_yaml_ng::to_string(&spec).expect("mapping serialises");
        format!("{}{yaml}", self.header())
    }

    /// The Timeloop v0.4 text of the mapping with its problem (and bit-widths), after its
    /// header; an error naming `out` when Timeloop's format cannot express the mapping exactly.
    pub fn timeloop_text(&self, out: &Path) -> Result<String, InputError> {
        check_timeloop_exportable(out, self.mapping, self.arch, self.problem)?;
        Ok(format!(
            "{}{}{}",
            self.header(),
            timeloop::export_problem(self.problem, self.opts.bits.as_ref()),
            timeloop::export_mapping(self.mapping, self.arch, self.problem)
        ))
    }

    /// The Timeloop v0.4 mapping alone (`map.yaml` of a `timeloop-model` directory), after
    /// its header.
    pub fn timeloop_mapping(&self) -> String {
        format!(
            "{}{}",
            self.header(),
            timeloop::export_mapping(self.mapping, self.arch, self.problem)
        )
    }
}

/// `path` with each `dir/..` pair left out (`instances/../models/x.yaml` is
/// `models/x.yaml`): how a header names a file another one refers to.
fn tidy(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = vec![];
    for c in path.components() {
        match (c, out.last()) {
            (Component::ParentDir, Some(Component::Normal(_))) => {
                out.pop();
            }
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

/// Writes a mapping in qmap's YAML format.
pub fn write_mapping(out: &Path, f: &MappingFile) -> Result<(), InputError> {
    write_file(out, &f.qmap_yaml())
}

/// Why Timeloop's format cannot express `m` exactly (an error naming `out`), if it cannot.
pub fn check_timeloop_exportable(
    out: &Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
) -> Result<(), InputError> {
    let issues = timeloop::timeloop_export_issues(m, arch, problem);
    if issues.is_empty() {
        return Ok(());
    }
    Err(InputError::new(
        out,
        "(export)",
        format!(
            "Timeloop's format cannot express this mapping exactly: {}",
            issues.join("; ")
        ),
    ))
}

/// Writes a mapping with its problem in Timeloop's v0.4 format ([`MappingFile::timeloop_text`]).
pub fn write_timeloop(out: &Path, f: &MappingFile) -> Result<(), InputError> {
    write_file(out, &f.timeloop_text(out)?)
}

/// A report as `--json` prints it: pretty, with every object's keys in alphabetical order (as
/// `serde_json`'s `Value` keeps them).
pub fn json<T: serde::Serialize>(report: &T) -> String {
    let v = serde_json::to_value(report).expect("report serialises");
    serde_json::to_string_pretty(&v).expect("json")
}
