//! What every engine answers with: one [`Certificate`] (the mapping, the evaluator's value of
//! it, a proven lower bound, the gap, the [`Status`] and the engine that proved it), from the
//! enumerations, the MILP, `qmap map` and the optimum table alike; and the compact [`Proof`]
//! record a table entry and its cache file keep of it.

use crate::certify::SelfCheck;
use crate::eval::Evaluation;
use crate::model::Mapping;
use serde::{Deserialize, Serialize};

/// How a solve ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Optimal,
    TimeLimit,
    Infeasible,
    /// No mapping was found, and the reason none fits could not be checked.
    Unknown,
}

/// The answer with its proof: the evaluator's value of the mapping and a proven lower bound
/// over the whole mapspace, from whichever engine proved it. Its JSON (in `qmap map --json`)
/// has the value, bound and gap (null when infinite), the status, the proof and the engine's
/// work; the mapping and its evaluation are reported by the caller.
#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub status: Status,
    /// The engine that gave the bound.
    pub proof: ProofKind,
    #[serde(skip)]
    pub mapping: Option<Mapping>,
    #[serde(skip)]
    pub evaluation: Option<Evaluation>,
    /// The evaluator's objective value of `mapping` (upper bound); infinite when none.
    #[serde(serialize_with = "finite")]
    pub value: f64,
    /// Proven lower bound over the whole mapspace.
    #[serde(serialize_with = "finite")]
    pub bound: f64,
    /// (value − bound) / value.
    #[serde(serialize_with = "finite")]
    pub gap: f64,
    /// The MILP's work: rounds, solves and halvings of the mapspace (0 for an enumeration).
    pub rounds: usize,
    pub milp_solves: usize,
    #[serde(rename = "halvings")]
    pub splits: usize,
    #[serde(rename = "solve_seconds")]
    pub seconds: f64,
    /// Why nothing fits, when infeasible (checked); why it is not known, when unknown.
    pub reason: Option<String>,
    /// The independent probe the answer passed ([`crate::certify::probe`]), once run.
    #[serde(rename = "self_check")]
    pub check: Option<SelfCheck>,
}

/// A value in JSON: null when infinite.
fn finite<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    v.is_finite().then_some(*v).serialize(s)
}

impl Certificate {
    /// An enumeration's certificate: its best mapping (value infinite when none) and the least
    /// bound of what it searched or bounded. `optimal` (or `infeasible` without a mapping) when
    /// the gap is within `gap_tolerance`, else `time_limit`.
    pub fn enumerated(
        mapping: Option<Mapping>,
        evaluation: Option<Evaluation>,
        value: f64,
        bound: f64,
        gap_tolerance: f64,
    ) -> Certificate {
        let gap = crate::milp::relative_gap(value, bound);
        let status = match (gap <= gap_tolerance, mapping.is_some()) {
            (true, true) => Status::Optimal,
            (true, false) => Status::Infeasible,
            (false, _) => Status::TimeLimit,
        };
        Certificate {
            status,
            proof: ProofKind::Enumerated,
            mapping,
            evaluation,
            value,
            bound,
            gap,
            rounds: 0,
            milp_solves: 0,
            splits: 0,
            seconds: 0.0,
            reason: None,
            check: None,
        }
    }

    /// The record a table entry keeps: `enumerated` when the enumeration's bound reaches the
    /// value, `stopped` when it does not, else the MILP's status, bound (0 when unknown) and gap.
    pub fn record(&self) -> Proof {
        match self.proof {
            ProofKind::Enumerated if self.bound >= self.value => Proof::Enumerated,
            ProofKind::Enumerated => Proof::Stopped {
                bound: self.bound,
                gap: self.gap,
            },
            ProofKind::Milp => Proof::Milp {
                status: self.status,
                bound: if self.status == Status::Unknown {
                    0.0
                } else {
                    self.bound
                },
                gap: self.gap,
            },
        }
    }

    /// The certificate a table entry's record stands for, with its mapping and evaluation
    /// (energy optimum: the value is the energy).
    pub fn from_record(
        mapping: Option<Mapping>,
        evaluation: Option<Evaluation>,
        proof: Proof,
    ) -> Certificate {
        let value = evaluation.as_ref().map_or(f64::INFINITY, |e| e.energy_pj);
        let (bound, gap) = proof.bound_and_gap(value);
        let kind = match proof {
            Proof::Milp { .. } => ProofKind::Milp,
            _ => ProofKind::Enumerated,
        };
        let status = match (proof.status(), mapping.is_some()) {
            (Status::Optimal, false) => Status::Infeasible,
            (status, _) => status,
        };
        Certificate {
            status,
            proof: kind,
            bound,
            gap,
            ..Certificate::enumerated(mapping, evaluation, value, bound, 0.0)
        }
    }
}

/// How a table entry's optimality is established (kept in the cache file).
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

/// Which engine proved an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// Every mapping of the declared mapspace was evaluated or bounded by more than the optimum
    /// (bound = value, gap 0).
    Enumerated,
    /// The MILP's certificate (bound and gap from the MILP).
    Milp,
}
