//! Timeloop importer and exporter: flattened architecture, ERT, problem, mapping and constraint
//! files (v0.3 and v0.4 spellings) and the mappings Timeloop prints, read into qmap's model
//! types; mappings and problems written back as Timeloop files.
//!
//! The readers follow Timeloop v3's own parsers (`model/topology.cpp`, `model/buffer.cpp`,
//! `workload/problem-shape.cpp`, `mapping/parser.cpp`) wherever they define a default:
//! - Architecture trees: each `subtree` list holds one node; a name `X[a..b]` multiplies the
//!   instances of everything below it by `b - a + 1`; `local` lists run outermost → innermost.
//!   Components whose class contains `DRAM`, `SRAM`, `regfile`, `smartbuffer` or `storage` are
//!   storage levels (`dummy_storage` → a dummy level that holds nothing), classes containing `mac`
//!   or `compute` the arithmetic units; other classes (networks) are ignored. Attributes of a tree
//!   node are inherited by everything below it (Accelergy's rule; a component's own attributes
//!   win), except `instances` and the mesh.
//! - Word bits: `word-bits` | `word_bits` | `word_width` | `datawidth` (default 16). Block size
//!   (`block-size` | `block_size` | `n_words`) and cluster size (`cluster-size` | `cluster_size`)
//!   follow Timeloop's rules against the width (`width` | `memory_width`): both given → they
//!   must multiply to the width; one given → the other is derived; neither → block = width / word
//!   bits, cluster 1; no width → block 1 and cluster 1 unless given. Capacity: `entries` words,
//!   or `depth` | `memory_depth` rows of one block each, or `sizeKB`; divided by
//!   `multiple-buffering`.
//! - Mesh: `meshX` and/or `meshY` against the instances; neither → all instances along X.
//! - ERT: tables matched to components by their last path segment without the instance range;
//!   when an action lists several argument variants the largest energy is taken (as Timeloop
//!   does). `update` defaults to `write`; the MAC's energy is `compute` (or the largest `mac_*`).
//! - Mappings: factors missing at a level are 1, factor 0 means the whole dimension, missing
//!   permutation dims are appended (outermost), spatial dims at permutation positions `< split`
//!   go to X (default: all X). Timeloop does not fill a missing factor with the remaining
//!   quotient: a mapping whose factors do not multiply to the bounds is an error, as in
//!   Timeloop. A tensor the mapping says nothing about at a level is kept there (Timeloop's
//!   default) unless the architecture forbids it.
//! - Printed mappings (`map.txt`, and the `Loop nest:` of each level in `stats.txt`): loops
//!   outermost first, a level's temporal loops before its spatial ones (X inside Y), loops of
//!   factor 1 not printed. In map.txt the header `NAME [ Tensor:tile (words) ... ]` lists the
//!   tensors kept, and a level without loops prints its header alone, straight above the next
//!   one; in stats.txt the kept tensors are the blocks under `STATS`. Timeloop's stats.txt
//!   leaves `dummy_storage` levels out, and with them their spatial loops: such a nest is
//!   reported, not guessed.
//! - Export follows Timeloop's own `FormatAsConstraints`: per level a datatype (`bypass`) entry,
//!   factors for every dimension, permutations innermost first listing every dimension (the
//!   mapping's temporal order, then the dimensions it leaves out), spatial X dimensions before
//!   Y with `split` = their count, and spatial entries only at levels with a fanout (Timeloop
//!   rejects the others).

mod arch;
mod attrs;
mod components;
mod constraints;
mod ert;
mod export;
mod mapping;
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
use std::path::Path;

/// Loads a mapping from a Timeloop map.yaml, a printed loop nest (map.txt / stats.txt), or a
/// Timeloop output directory (its `*.map.yaml`, else `*.map.txt`, else `*.stats.txt`).
pub fn load_mapping_any(
    path: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    if path.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|e| InputError::new(path, "(directory)", format!("cannot read: {e}")))?;
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
                many => match ["timeloop-mapper", "timeloop-model"]
                    .iter()
                    .find_map(|p| many.iter().find(|f| **f == &format!("{p}{suffix}")))
                {
                    Some(f) => *f,
                    None => {
                        return Err(InputError::new(
                            path,
                            "(directory)",
                            format!(
                                "several *{suffix} files ({}): name the one to load",
                                many.iter()
                                    .map(|f| f.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ))
                    }
                },
            };
            return load_mapping_any(&path.join(chosen), arch, problem);
        }
        return Err(InputError::new(
            path,
            "(directory)",
            "no *.map.yaml, *.map.txt or *.stats.txt file",
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("yaml" | "yml") => load_mapping(path, arch, problem),
        Some("txt") => load_loop_nest_text(path, arch, problem),
        _ => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
            if is_loop_nest_text(&text) {
                load_loop_nest_text(path, arch, problem)
            } else {
                load_mapping(path, arch, problem)
            }
        }
    }
}
