//! qmap: provably optimal mapping and mixed-precision co-design for DNN accelerators.
//!
//! Data flows one way: `spec` (file formats) and `timeloop` (Timeloop's formats) → `model`
//! (problem, architecture, mapping) → `instance` (a loaded instance) → `eval` (Timeloop's cost
//! model, the single source of truth) → `report`; `cli` is the command line.

pub mod app;
pub mod certify;
pub mod cli;
pub mod eval;
pub mod front;
pub mod instance;
pub mod mapspace;
pub mod milp;
pub mod model;
pub mod optimum;
pub mod progress;
pub mod report;
pub mod search;
pub mod solver;
pub mod spec;
pub mod timeloop;
pub mod workload;
