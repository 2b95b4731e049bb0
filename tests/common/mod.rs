//! Helpers shared by the integration tests: locating `../shared/reference` (skipping with a
//! message when it is absent), comparing evaluator results with Timeloop's numbers, and running
//! the `qmap` binary in scratch directories.

#![allow(dead_code)]

pub mod design;
pub mod timeloop_stats;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The project root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory for one test's files (unique per test process).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qmap-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `qmap` binary with `args` in `dir`.
pub fn qmap_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A command's standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard output parsed as JSON (panics with both streams when it is not).
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), String::from_utf8_lossy(&o.stderr)))
}

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

/// A small network instance for `qmap front` in `dir` (`inst.yaml`, with its proxy accuracy
/// model `acc.yaml`): the shipped Eyeriss with its constraints, 8 input channels at 14×14, bits
/// {4, 8}. Each layer is `(name, the rest of its YAML flow mapping, weight sensitivity,
/// activation sensitivity)`.
pub fn front_instance(dir: &Path, network: &str, layers: &[(&str, &str, u32, u32)]) -> PathBuf {
    let mut acc = format!(
        "kind: proxy\nnetwork: {network}\nfull_precision_accuracy: 70.0\nsource: test proxy\nlayers:\n"
    );
    let mut net = String::new();
    for (name, shape, w, a) in layers {
        acc += &format!(
            "  - {{name: {name}, weight_sensitivity: {w}, activation_sensitivity: {a}}}\n"
        );
        net += &format!("      - {{name: {name}, {shape}}}\n");
    }
    std::fs::write(dir.join("acc.yaml"), acc).unwrap();
    let r = root();
    let inst = dir.join("inst.yaml");
    std::fs::write(
        &inst,
        format!(
            "architecture: {r}/models/arch/eyeriss.yaml\n\
             constraints: {r}/models/arch/eyeriss_constraints.yaml\n\
             workload:\n  network:\n    name: {network}\n    \
             input: {{channels: 8, height: 14, width: 14}}\n    layers:\n{net}\
             bits: {{inputs: [4, 8], weights: [4, 8], outputs: [4, 8]}}\n\
             front: {{accuracy: acc.yaml}}\n",
            r = r.display()
        ),
    )
    .unwrap();
    inst
}
