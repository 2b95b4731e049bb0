//! Proven per-layer optima: the engine choice between enumeration and the MILP (shared by
//! `qmap map`), and the per-layer optimum table of a network: the best energy of every layer at
//! every allowed (inputs, weights, outputs) bit configuration, deduplicated over identical layer shapes
//! and packing classes, solved in parallel and cached on disk under a content hash.
//!
//! Each table unit is one distinct layer shape: its mapspace is enumerated once and every
//! mapping is priced at every packing class, or bounded with the other loop orders of its
//! factorisation and skipped when no class can use it (`search::exhaustive_choices`); above
//! the enumeration limit, one MILP per packing class proves the optimum (`milp::solve`). Either
//! way the entry carries its proof: `enumerated` (every mapping of the declared mapspace was
//! evaluated or bounded) or the MILP's status, bound and gap. Every entry's mapping is
//! re-evaluated by the evaluator before it is stored, and again when it is read from the cache.

use crate::eval::evaluate;

use crate::instance::{BitConfig, Instance};
use crate::mapspace::{Constraints, Mapspace};
use crate::milp::{self, SolveOptions, Status};
use crate::model::{mapping_from_spec, mapping_to_spec, ModelOptions, Problem};
use crate::spec::{MappingSpec, Objective};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod cache;
mod engine;
mod shard;
mod table;

pub use crate::proof::{Certificate, Proof, ProofKind};
pub use cache::*;
pub use engine::*;
pub use shard::*;
pub use table::*;

/// Bumped whenever the cost model, the mapspace or the solvers change what a table entry is:
/// part of every cache key, so a changed model never reuses stale entries.
pub const MODEL_VERSION: &str = "qmap-table-4";
