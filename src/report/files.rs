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

/// A mapping in qmap's YAML format.
pub fn mapping_yaml(m: &Mapping, arch: &Arch, problem: &Problem) -> String {
    let spec = crate::model::mapping_to_spec(m, arch, problem);
    serde_yaml_ng::to_string(&spec).expect("mapping serialises")
}

/// Writes a mapping in qmap's YAML format.
pub fn write_mapping(
    out: &Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
) -> Result<(), InputError> {
    write_file(out, &mapping_yaml(m, arch, problem))
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

/// The Timeloop v0.4 text of a mapping with its problem (and bit-widths); an error when
/// Timeloop's format cannot express the mapping exactly.
pub fn timeloop_text(
    out: &Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
    opts: &ModelOptions,
) -> Result<String, InputError> {
    check_timeloop_exportable(out, m, arch, problem)?;
    Ok(format!(
        "{}{}",
        timeloop::export_problem(problem, opts.bits.as_ref()),
        timeloop::export_mapping(m, arch, problem)
    ))
}

/// Writes a mapping with its problem in Timeloop's v0.4 format ([`timeloop_text`]).
pub fn write_timeloop(
    out: &Path,
    m: &Mapping,
    arch: &Arch,
    problem: &Problem,
    opts: &ModelOptions,
) -> Result<(), InputError> {
    write_file(out, &timeloop_text(out, m, arch, problem, opts)?)
}

/// A report as `--json` prints it: pretty, with every object's keys in alphabetical order (as
/// `serde_json`'s `Value` keeps them).
pub fn json<T: serde::Serialize>(report: &T) -> String {
    let v = serde_json::to_value(report).expect("report serialises");
    serde_json::to_string_pretty(&v).expect("json")
}
