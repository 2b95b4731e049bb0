//! Timeloop importer and exporter: flattened architecture, ERT, problem, mapping and constraint
//! files (v0.3 and v0.4 spellings) and the mappings Timeloop prints, read into qmap's model
//! types; mappings and problems written back as Timeloop files.
//!
//! The readers follow Timeloop v3's own parsers (`model/topology.cpp`, `model/buffer.cpp`,
//! `workload/problem-shape.cpp`, `mapping/parser.cpp`) wherever they define a default; each
//! file's doc says how:
//! - `yaml`: YAML documents, field paths and scalars; `messages`: shared error texts.
//! - `components` (the architecture tree), `attrs` (attribute spellings), `level` (a storage
//!   level's geometry, capacity, bandwidths and mesh), `arch` (the whole architecture), `ert`
//!   (energies) and `constraints` (keep / bypass rules).
//! - `problem`, `mapping` (mapping files) and `printed` (map.txt and stats.txt loop nests).
//! - `export`: architectures, ERTs, problems and mappings written as Timeloop files.

mod arch;
mod attrs;
mod components;
mod constraints;
mod ert;
mod export;
mod level;
mod mapping;
mod messages;
mod printed;
mod problem;
mod yaml;

#[cfg(test)]
mod tests;

pub use arch::load_arch;
pub use constraints::apply_bypass_constraints;
pub use export::{
    arch_export_issues, export_arch, export_ert, export_mapping, export_problem,
    timeloop_export_issues,
};
pub use mapping::load_mapping;
pub use printed::load_loop_nest_text;
pub use problem::load_problem;
pub use yaml::parse_instance_name;

use crate::model::{Arch, Mapping, Problem};
use crate::spec::InputError;
use printed::is_loop_nest_text;
use std::path::{Path, PathBuf};
use yaml::read_text;

/// Loads a mapping from a Timeloop map.yaml, a printed loop nest (map.txt / stats.txt), or a
/// Timeloop output directory (its `*.map.yaml`, else `*.map.txt`, else `*.stats.txt`).
pub fn load_mapping_any(
    path: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    if path.is_dir() {
        return load_mapping_any(&mapping_file_in(path)?, arch, problem);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("yaml" | "yml") => load_mapping(path, arch, problem),
        Some("txt") => load_loop_nest_text(path, arch, problem),
        _ => {
            if is_loop_nest_text(&read_text(path)?) {
                load_loop_nest_text(path, arch, problem)
            } else {
                load_mapping(path, arch, problem)
            }
        }
    }
}

/// The mapping file of a Timeloop output directory: its one `*.map.yaml`, else `*.map.txt`,
/// else `*.stats.txt`; among several, the mapper's, then the model's.
fn mapping_file_in(dir: &Path) -> Result<PathBuf, InputError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InputError::new(dir, "(directory)", format!("cannot read: {e}")))?;
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    files.sort();
    for suffix in [".map.yaml", ".map.txt", ".stats.txt"] {
        let found: Vec<&String> = files.iter().filter(|f| f.ends_with(suffix)).collect();
        let chosen = match found.as_slice() {
            [] => continue,
            [one] => *one,
            many => ["timeloop-mapper", "timeloop-model"]
                .iter()
                .find_map(|p| many.iter().find(|f| **f == &format!("{p}{suffix}")))
                .ok_or_else(|| {
                    let names: Vec<&str> = many.iter().map(|f| f.as_str()).collect();
                    InputError::new(
                        dir,
                        "(directory)",
                        format!(
                            "several *{suffix} files ({}): name the one to load",
                            names.join(", ")
                        ),
                    )
                })?,
        };
        return Ok(dir.join(chosen));
    }
    Err(InputError::new(
        dir,
        "(directory)",
        "no *.map.yaml, *.map.txt or *.stats.txt file",
    ))
}
