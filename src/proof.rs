//! How an answer's optimality is established: a table entry's [`Proof`] (enumeration, the
//! MILP's certificate, or an enumeration stopped by its time limit) and `qmap map`'s
//! [`ProofKind`].

use crate::milp::Status;
use serde::{Deserialize, Serialize};

/// How an entry's optimality is established.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Proof {
    /// Every mapping of the declared mapspace was evaluated, or bounded from below (with the
    /// other loop orders of its factorisation) by more than the optimum.
    Enumerated,
    /// The MILP's certificate.
    Milp {
        status: Status,
        bound: f64,
        gap: f64,
    },
    /// The enumeration, stopped by the time limit: the best mapping it found, and the least
    /// bound of what it had not searched.
    Stopped { bound: f64, gap: f64 },
}

impl Proof {
    /// Whether the entry is a proven optimum.
    pub fn optimal(&self) -> bool {
        self.status() == Status::Optimal
    }
    /// The status the proof gives an entry that has a mapping.
    pub fn status(&self) -> Status {
        match self {
            Proof::Enumerated => Status::Optimal,
            Proof::Milp { status, .. } => *status,
            Proof::Stopped { .. } => Status::TimeLimit,
        }
    }
    /// The lower bound (pJ) and gap of an entry of energy `energy_pj` (infinite: none).
    pub fn bound_and_gap(&self, energy_pj: f64) -> (f64, f64) {
        match self {
            Proof::Enumerated => (energy_pj, 0.0),
            Proof::Milp { bound, gap, .. } | Proof::Stopped { bound, gap } => (*bound, *gap),
        }
    }
    /// The engine that gave the proof: `enumerated` or `milp`.
    pub fn engine(&self) -> &'static str {
        match self {
            Proof::Enumerated | Proof::Stopped { .. } => "enumerated",
            Proof::Milp { .. } => "milp",
        }
    }
}

/// How `qmap map`'s answer was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// Every mapping of the declared mapspace was evaluated or bounded by more than the optimum
    /// (bound = value, gap 0).
    Enumerated,
    /// The MILP's certificate (bound and gap from the MILP).
    Milp,
}
