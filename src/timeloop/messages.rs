//! The error texts several readers share: a level, data space or dimension the file names that
//! the architecture or problem does not have, listed against the ones it has.

use crate::model::{Arch, Problem, Tensor};

/// `unknown level `X` (levels: A, B)`.
pub(super) fn unknown_level(name: &str, arch: &Arch) -> String {
    let levels: Vec<&str> = arch.levels.iter().map(|l| l.name.as_str()).collect();
    format!("unknown level `{name}` (levels: {})", levels.join(", "))
}

/// `unknown data space `X` (data spaces: A, B)`.
pub(super) fn unknown_data_space(name: &str, tensors: &[Tensor]) -> String {
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    format!(
        "unknown data space `{name}` (data spaces: {})",
        names.join(", ")
    )
}

/// `unknown dimension `X` (dims: A B)`.
pub(super) fn unknown_dim(name: &str, problem: &Problem) -> String {
    format!(
        "unknown dimension `{name}` (dims: {})",
        problem.dims.join(" ")
    )
}
