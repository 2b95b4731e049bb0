//! The network front: per-layer bit-widths chosen from a table E*(layer, bits) (selection MILP, exact ε-constraint fronts, EDP, NSGA-II baseline, hypervolume, SVG plot) and the accuracy models.
//!
//! The front depends only on an energy table: whoever builds E*(layer, bits) (`qmap front`
//! builds it from proven per-layer optima, [`crate::app::codesign`]) hands it over with an
//! accuracy model and the allowed bit-widths, and gets exact fronts back.
//!
//! # Where things are
//! - [`table`]: the inputs: the table E*(layer, bits) ([`EnergyTable`]) and the allowed
//!   bit-widths ([`BitSets`]).
//! - [`accuracy`]: the accuracy models ([`AccuracyModel`]: measured per-layer deltas or a
//!   HAWQ-style proxy).
//! - [`selection`]: the selection problem (one table entry per layer, activation bits chained
//!   between layers), its criteria, budgets and points ([`SelectionProblem`], [`FrontPoint`]).
//! - `stage` (internal): the exact solver of one lexicographic stage of the selection problem:
//!   a Lagrangian bound (a dynamic program over the producer forest, the dual maximised by
//!   Kelley's cutting planes), a label-setting search over the layers pruned with it, and the
//!   selection MILP in HiGHS when the labels outgrow their limit. [`select`] is its public entry.
//! - [`trace`]: the exact ε-constraint fronts ([`trace_front`]), the minimum-EDP point
//!   ([`min_edp`]), brute force and non-dominated filtering (for tests).
//! - [`stored`]: a complete front as a cache file keeps it ([`StoredFront`]), checked when read.
//! - [`nsga2`](mod@nsga2): the seed paper's NSGA-II baseline over the same table.
//! - [`hypervolume`](mod@hypervolume): exact hypervolume of minimised objective vectors.
//! - [`plot`]: the SVG plot of a front ([`FrontPlot`]).
//!
//! Every item is re-exported here: `crate::front::X` names them all.

pub mod accuracy;
pub mod hypervolume;
pub mod nsga2;
pub mod plot;
pub mod selection;
mod stage;
pub mod stored;
pub mod table;
pub mod trace;

pub use accuracy::{
    quantization_noise, AccuracyKind, AccuracyModel, AccuracyProxy, AccuracyTable, DeltaRow,
    LayerDeltas, ProxyRule, SelectBy, Sensitivity,
};
pub use hypervolume::{front_hypervolume, hypervolume};
pub use nsga2::{nsga2, Nsga2Options, Nsga2Result};
pub use plot::{FrontPlot, MarkStyle, PlotAxis, PlotMark};
pub use selection::{Budgets, Criterion, FrontPoint, LayerChoice, PointStatus, SelectionProblem};
pub use stage::{select, Goal};
pub use stored::StoredFront;
pub use table::{BitConfig, BitSets, EnergyTable, LayerTable, TableEntry};
pub use trace::{
    brute_force_front, dominates, for_each_selection, min_edp, non_dominated, trace_front,
    trace_front_with, Front, FrontKind, FrontOptions, StopReason, TraceLimits,
};

use crate::spec::InputError;

/// Errors of the network front.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// An input file (the accuracy model) is wrong; names the file and the field.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The energy table is inconsistent (a programming error of whoever built it).
    #[error("energy table: {0}")]
    Table(String),
    /// HiGHS failed (not: the problem is infeasible, which is a normal outcome).
    #[error("selection MILP: {0}")]
    Solver(String),
    /// Writing the SVG failed.
    #[error("plot {file}: {message}")]
    Plot { file: String, message: String },
}
