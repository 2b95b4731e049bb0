//! Helpers shared by the integration tests: locating `../shared/reference` (skipping with a
//! message when it is absent) and comparing evaluator results with Timeloop's numbers.

#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/reference` next to the project, or None (with a message) when it is absent.
pub fn reference_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} not present; reference checks need ../shared/reference",
            dir.display()
        );
        None
    }
}

/// Relative difference of two energies.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs())
    }
}
