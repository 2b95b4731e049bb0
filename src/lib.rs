//! qmap: provably optimal mapping and mixed-precision co-design for DNN accelerators.
//!
//! Data flows one way: `spec` (file formats) → `model` (problem, architecture, mapping) →
//! `eval` (Timeloop's cost model, the single source of truth).

pub mod eval;
pub mod model;
pub mod spec;
