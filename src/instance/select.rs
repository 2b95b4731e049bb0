//! Picking an instance's layers (by name or 1-based index), the instance cut to some layers,
//! a layer's file name, and the content hash that names what an instance asks for.

use super::Instance;
use crate::spec::InputError;
use std::path::Path;

/// The index of the layer `sel` names (a name or a 1-based index); an error names `path` and
/// the `--layer` flag.
pub fn select_layer(inst: &Instance, sel: &str, path: &Path) -> Result<usize, InputError> {
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
pub fn sub_instance(inst: &Instance, layers: &[usize]) -> Instance {
    let mut sub = inst.clone();
    sub.layers = layers.iter().map(|&i| inst.layers[i].clone()).collect();
    sub.selected = 0;
    sub
}

/// Content hash of what an instance asks for: its file, architecture, constraints, layers.
pub fn instance_hash(inst: &Instance, cons: &crate::mapspace::Constraints) -> String {
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
