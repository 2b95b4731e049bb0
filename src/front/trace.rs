//! The exact fronts (ε-constraint), the minimum-EDP point, and brute force and non-dominated
//! filtering.
//!
//! [`trace_front`] traces, exactly, every non-dominated point of energy × accuracy, energy ×
//! memory, energy × accuracy × memory or energy × cycles, each objective vector once, no weakly
//! dominated point, unless a budget stops it first (`max_points`, `time_budget`: then
//! [`Front::stopped`] says which). Each point is a lexicographic solve (minimise energy; then, at that energy,
//! the second criterion; for 3-D, then memory), one solve per stage, under ε bounds:
//! - 2-D: ε on the second criterion, starting unbounded and tightened to just beyond the last
//!   point found (accuracy > last + `accuracy_resolution`, memory < last, cycles < last), until
//!   infeasible. Points come out in increasing energy.
//! - 3-D: the 2-D energy × accuracy front (lexicographic in energy, accuracy, memory) under a
//!   memory cap, for caps +∞, then just below the largest memory of the previous cap's front, until
//!   infeasible (Özlen & Azizoğlu's recursion). Every 3-D non-dominated point z is lexicographically
//!   optimal under the cap memory(z), and the caps visited skip no such cap. A solve whose bounds are
//!   tighter than a solved one's and whose solution satisfies them is answered from that solution
//!   (cache; `Front::cache_hits`).
//!
//! Exactness holds up to two resolutions: accuracies closer than `accuracy_resolution` (default
//! 1e-6 percentage points) count as equal (of two such points, the lower-energy one is reported),
//! and in a lexicographic stage energies within a relative 1e-9 count as equal. Memory (multiples of
//! 1/8 byte) and cycles (integers) are exact. Each point carries the status of its solves
//! ([`PointStatus`]); a front stops at `max_points` (then `complete` is false), keeping the points
//! found first (lowest energy first).
//!
//! Network EDP = (ΣE)(Σcycles) is not additive: [`min_edp`] reads it off the exact energy ×
//! cycles front. [`brute_force_front`] enumerates every chained selection (small networks, for
//! tests).

use super::selection::CRITERIA;
use super::stage::{Milp, Solve, MAX_LABELS};
use super::{Budgets, Criterion, FrontError, FrontPoint, PointStatus, SelectionProblem};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::time::Instant;

/// Which front to trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontKind {
    EnergyAccuracy,
    EnergyMemory,
    EnergyAccuracyMemory,
    /// For latency and EDP.
    EnergyCycles,
}

impl FrontKind {
    /// The front's criteria (minimisation sense).
    pub fn criteria(self) -> &'static [Criterion] {
        match self {
            FrontKind::EnergyAccuracy => &[Criterion::Energy, Criterion::Accuracy],
            FrontKind::EnergyMemory => &[Criterion::Energy, Criterion::Memory],
            FrontKind::EnergyAccuracyMemory => {
                &[Criterion::Energy, Criterion::Accuracy, Criterion::Memory]
            }
            FrontKind::EnergyCycles => &[Criterion::Energy, Criterion::Cycles],
        }
    }
}

/// When a trace stops before the front is complete (`Front::complete` is then false): the
/// request's, the trace's and the report's one record of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TraceLimits {
    /// Stop after this many points.
    pub max_points: usize,
    /// Stop when the trace has run this long (seconds; checked before each point's solve, so a
    /// trace overruns it by at most one solve).
    #[serde(default)]
    pub time_budget: Option<f64>,
}

impl Default for TraceLimits {
    /// 100 points, no time budget.
    fn default() -> Self {
        TraceLimits::points(100)
    }
}

impl TraceLimits {
    /// At most `max_points` points, no time budget.
    pub fn points(max_points: usize) -> TraceLimits {
        TraceLimits {
            max_points,
            time_budget: None,
        }
    }
}

/// Settings of [`trace_front`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontOptions {
    /// When the trace stops early.
    #[serde(flatten)]
    pub limits: TraceLimits,
    /// Accuracies closer than this (percentage points) count as equal.
    pub accuracy_resolution: f64,
    /// Time limit per MILP solve (s); a point from a timed-out solve has status `time_limit`.
    pub time_limit: Option<f64>,
    /// Budgets every point must meet.
    pub budgets: Budgets,
    /// Labels per layer beyond which the exact label search hands a stage to the selection MILP
    /// (0: every stage goes to the MILP).
    pub max_labels: usize,
}

impl Default for FrontOptions {
    fn default() -> Self {
        FrontOptions {
            limits: TraceLimits::default(),
            accuracy_resolution: 1e-6,
            time_limit: None,
            budgets: Budgets::default(),
            max_labels: MAX_LABELS,
        }
    }
}

/// A traced front.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Front {
    pub kind: FrontKind,
    /// Non-dominated points, increasing energy.
    pub points: Vec<FrontPoint>,
    /// False when `max_points` stopped the loop or a solve timed out without a solution.
    pub complete: bool,
    /// What stopped an incomplete front (None when complete).
    pub stopped: Option<StopReason>,
    /// Lexicographic stages solved (by the label search or the MILP; stages read off the first
    /// stage's pool are not counted).
    pub solves: usize,
    /// Lexicographic solves answered from an earlier solve.
    pub cache_hits: usize,
    /// Stages the label search handed to the selection MILP (0: the label search found every
    /// point).
    #[serde(default)]
    pub milp_solves: usize,
    /// Selectable entries before and after pruning (all layers).
    pub entries: usize,
    pub entries_kept: usize,
    pub seconds: f64,
}

/// What stopped a front before it was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// [`TraceLimits::max_points`] points were found.
    PointBudget,
    /// [`TraceLimits::time_budget`] ran out.
    TimeBudget,
    /// A solve hit its time limit ([`FrontOptions::time_limit`]) without a solution.
    SolveTimeLimit,
}

/// The budgets of a trace: admits points while they last, and remembers which one ran out.
struct Limits<'p> {
    max_points: usize,
    deadline: Option<Instant>,
    stopped: Option<StopReason>,
    /// Told of every point admitted (the count so far, the point).
    progress: &'p mut dyn FnMut(usize, &FrontPoint),
}

impl Limits<'_> {
    /// Adds the new point `p` to `points` unless the point budget is spent (and tells the
    /// progress); whether the trace may go on (false: a budget ran out).
    fn admit(&mut self, points: &mut Vec<FrontPoint>, p: FrontPoint) -> bool {
        if points.len() >= self.max_points {
            self.stopped = Some(StopReason::PointBudget);
            return false;
        }
        points.push(p);
        (self.progress)(points.len(), points.last().expect("pushed"));
        self.in_time()
    }

    /// Whether the time budget lasts (false: it ran out).
    fn in_time(&mut self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.stopped = Some(StopReason::TimeBudget);
        }
        self.stopped.is_none()
    }
}

/// The ε step below the last value of a criterion (see the module doc).
fn step(c: Criterion, opts: &FrontOptions) -> f64 {
    match c {
        Criterion::Accuracy => opts.accuracy_resolution,
        Criterion::Memory => 1.0 / 16.0,
        Criterion::Cycles => 0.5,
        Criterion::Energy => 0.0,
    }
}

/// Traces a front exactly (see the module doc).
pub fn trace_front(
    problem: &SelectionProblem,
    kind: FrontKind,
    opts: &FrontOptions,
) -> Result<Front, FrontError> {
    trace_front_with(problem, kind, opts, &mut |_, _| {})
}

/// [`trace_front`], telling `progress` of each point as it is found (the number of points so
/// far and the point).
pub fn trace_front_with(
    problem: &SelectionProblem,
    kind: FrontKind,
    opts: &FrontOptions,
    progress: &mut dyn FnMut(usize, &FrontPoint),
) -> Result<Front, FrontError> {
    let t0 = Instant::now();
    let mut crit = kind.criteria().to_vec();
    for c in opts.budgets.criteria() {
        if !crit.contains(&c) {
            crit.push(c);
        }
    }
    let tiebreak: Vec<Criterion> = CRITERIA
        .iter()
        .copied()
        .filter(|c| !crit.contains(c))
        .collect();
    let kept = problem.prune(&crit, &tiebreak);
    let entries = problem.cands.iter().map(Vec::len).sum();
    let entries_kept = kept.iter().map(Vec::len).sum();
    let mut milp = Milp::new(problem, kept, opts.time_limit, opts.max_labels);
    let base = opts.budgets.bounds();
    let mut points: Vec<FrontPoint> = Vec::new();
    let mut limits = Limits {
        max_points: opts.limits.max_points,
        deadline: opts
            .limits
            .time_budget
            .map(|s| t0 + std::time::Duration::from_secs_f64(s.max(0.0))),
        stopped: None,
        progress,
    };
    let complete = match kind {
        FrontKind::EnergyAccuracyMemory => {
            front_3d(&mut milp, &base, opts, &mut limits, &mut points)?
        }
        _ => front_2d(&mut milp, kind.criteria(), &base, opts, |p| {
            limits.admit(&mut points, p)
        })?,
    };
    let stopped = match (complete, limits.stopped) {
        (true, _) => None,
        (false, Some(r)) => Some(r),
        (false, None) => Some(StopReason::SolveTimeLimit),
    };
    points.sort_by(|a, b| lex_cmp(&a.costs(kind.criteria()), &b.costs(kind.criteria())));
    Ok(Front {
        kind,
        points,
        complete,
        stopped,
        solves: milp.solves,
        cache_hits: milp.cache_hits,
        milp_solves: milp.milp_solves.get(),
        entries,
        entries_kept,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Whether two points have the same costs in `criteria`.
pub(crate) fn same_costs(a: &FrontPoint, b: &FrontPoint, criteria: &[Criterion]) -> bool {
    criteria.iter().all(|c| c.cost(a) == c.cost(b))
}

/// The 2-D ε-constraint loop: lexicographic minimisation of `lex` (lex[0] primary, lex[1] under
/// the ε bound) within `bounds`, until infeasible, handing each point to `accept`. Returns true
/// when the loop ran to infeasibility, false when `accept` refused a point (a limit) or a solve
/// timed out without a solution.
fn front_2d(
    milp: &mut Milp,
    lex: &[Criterion],
    bounds: &[(Criterion, f64)],
    opts: &FrontOptions,
    mut accept: impl FnMut(FrontPoint) -> bool,
) -> Result<bool, FrontError> {
    let second = lex[1];
    let mut eps: Option<f64> = None;
    loop {
        let mut b = bounds.to_vec();
        if let Some(e) = eps {
            b.push((second, e));
        }
        match milp.solve_lex(lex, &b)? {
            Solve::Infeasible => return Ok(true),
            Solve::Unknown => return Ok(false),
            Solve::Found(choice, status) => {
                let p = milp.pb.point(&choice, status);
                let next = second.cost(&p) - step(second, opts);
                // Progress even if a solve returned a point slightly outside its bound.
                eps = Some(eps.map_or(next, |e| next.min(e - step(second, opts))));
                if !accept(p) {
                    return Ok(false);
                }
            }
        }
    }
}

/// The 3-D front (energy × accuracy × memory): the 2-D energy × accuracy fronts (lexicographic
/// in energy, accuracy, memory) under memory caps +∞, then just below the largest memory of the
/// previous cap's front, until infeasible; new points go to `points` while `limits` last.
/// Returns true when the caps ran to infeasibility (see [`front_2d`]).
fn front_3d(
    milp: &mut Milp,
    base: &[(Criterion, f64)],
    opts: &FrontOptions,
    limits: &mut Limits,
    points: &mut Vec<FrontPoint>,
) -> Result<bool, FrontError> {
    let lex = [Criterion::Energy, Criterion::Accuracy, Criterion::Memory];
    let criteria = FrontKind::EnergyAccuracyMemory.criteria();
    let mut cap: Option<f64> = None;
    loop {
        let mut bounds = base.to_vec();
        if let Some(m) = cap {
            bounds.push((Criterion::Memory, m));
        }
        let mut max_memory: Option<f64> = None;
        let done = front_2d(milp, &lex, &bounds, opts, |p| {
            max_memory = Some(max_memory.map_or(p.memory_bytes, |m| m.max(p.memory_bytes)));
            // Points of earlier caps come again; only new ones count towards the limit.
            if points.iter().any(|q| same_costs(q, &p, criteria)) {
                limits.in_time()
            } else {
                limits.admit(points, p)
            }
        })?;
        match max_memory {
            Some(m) if done => cap = Some(m - step(Criterion::Memory, opts)),
            _ => return Ok(done),
        }
    }
}

/// The point of a front with the least network EDP ((Σ energy)(Σ cycles)); exact on a complete
/// energy × cycles front (the EDP optimum is on it).
pub fn min_edp(front: &Front) -> Option<&FrontPoint> {
    front
        .points
        .iter()
        .min_by(|a, b| a.edp().total_cmp(&b.edp()))
}

/// Calls `f` with every chained selection (`choice[l]` indexes layer l's selectable entries, in
/// the order of the table's entries within the bit sets). Exponential: for small networks.
pub fn for_each_selection(problem: &SelectionProblem, mut f: impl FnMut(&[usize])) {
    fn rec(pb: &SelectionProblem, l: usize, choice: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
        if l == pb.cands.len() {
            f(choice);
            return;
        }
        let need = pb.producers[l].map(|p| pb.cands[p][choice[p]].bits.output_bits);
        for (k, c) in pb.cands[l].iter().enumerate() {
            if need.is_some_and(|b| c.bits.input_bits != b) {
                continue;
            }
            choice.push(k);
            rec(pb, l + 1, choice, f);
            choice.pop();
        }
    }
    rec(problem, 0, &mut Vec::new(), &mut f);
}

/// The exact front by enumerating every chained selection within the budgets: non-dominated in
/// `kind`'s criteria, one point per objective vector (the first enumerated).
pub fn brute_force_front(
    problem: &SelectionProblem,
    kind: FrontKind,
    budgets: &Budgets,
) -> Vec<FrontPoint> {
    let crit = kind.criteria();
    let bounds = budgets.bounds();
    let mut archive: Vec<(Vec<f64>, Vec<usize>)> = Vec::new();
    for_each_selection(problem, |choice| {
        let all = problem.costs_of(choice);
        if bounds.iter().any(|&(c, v)| all[c.index()] > v) {
            return;
        }
        let v: Vec<f64> = crit.iter().map(|c| all[c.index()]).collect();
        if archive.iter().any(|(a, _)| weakly_dominates(a, &v)) {
            return;
        }
        archive.retain(|(a, _)| !weakly_dominates(&v, a));
        archive.push((v, choice.to_vec()));
    });
    let mut pts: Vec<FrontPoint> = archive
        .into_iter()
        .map(|(_, c)| problem.point(&c, PointStatus::Optimal))
        .collect();
    pts.sort_by(|a, b| lex_cmp(&a.costs(crit), &b.costs(crit)));
    pts
}

/// Lexicographic order of two cost vectors ([`f64::total_cmp`] per coordinate).
pub(crate) fn lex_cmp(a: &[f64], b: &[f64]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.total_cmp(y))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// a ≤ b in every coordinate (minimisation).
fn weakly_dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y)
}

/// a ≤ b everywhere and a < b somewhere (minimisation).
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    weakly_dominates(a, b) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// The points not dominated in `criteria`, one per objective vector (the first given).
pub fn non_dominated(points: &[FrontPoint], criteria: &[Criterion]) -> Vec<FrontPoint> {
    let costs: Vec<Vec<f64>> = points.iter().map(|p| p.costs(criteria)).collect();
    let mut out: Vec<FrontPoint> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let beaten = costs
            .iter()
            .enumerate()
            .any(|(j, c)| dominates(c, &costs[i]) || (j < i && c == &costs[i]));
        if !beaten {
            out.push(p.clone());
        }
    }
    out
}
