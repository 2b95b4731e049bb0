//! The solve entry points: the best-first loop over bypass patterns (`solve`), bit-width
//! classes (`solve_each`, `solve_choices`) and the certificate's gap.

use crate::eval::Evaluation;
use crate::mapspace::{KeepChoice, Mapspace};
use crate::milp::diagnose::diagnose;
use crate::milp::rounds::Pattern;
use crate::milp::{Certificate, ProofKind, SolveOptions, Status, MAX_SPLITS, SHAVE};
use crate::model::{Mapping, ModelOptions};
use crate::spec::Objective;
use std::time::{Duration, Instant};

/// Solves the mapspace for `objective` (energy only so far) under `opts` (fixed bit-widths).
pub fn solve(
    space: &Mapspace,
    opts: &ModelOptions,
    objective: Objective,
    so: &SolveOptions,
) -> Result<Certificate, String> {
    check_supported(space, objective)?;
    let start = Instant::now();
    let deadline = so
        .time_limit
        .map(|t| start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let mut run = Run {
        space,
        opts,
        so,
        start,
        deadline,
        patterns: vec![],
        seeded: None,
        timed_out: false,
        splits: 0,
    };
    run.pending_patterns();
    run.seeded = run.seed();
    run.refine()?;
    run.certificate()
}

/// The problems the MILP encodes: energy, every dim irrelevant to at most one tensor.
fn check_supported(space: &Mapspace, objective: Objective) -> Result<(), String> {
    if objective != Objective::Energy {
        return Err("the MILP proves energy optima; latency and EDP are not supported yet".into());
    }
    let problem = space.problem();
    for d in 0..problem.dims.len() {
        let n = problem.tensors.iter().filter(|t| !t.relevant(d)).count();
        if n > 1 {
            return Err(format!(
                "the MILP needs every dimension irrelevant to at most one tensor; {} is irrelevant to {n}",
                problem.dims[d]
            ));
        }
    }
    Ok(())
}

/// One solve's state: the bypass patterns with their models, the seed incumbent, and whether
/// the time limit (or the round limit) stopped it.
struct Run<'a> {
    space: &'a Mapspace,
    opts: &'a ModelOptions,
    so: &'a SolveOptions,
    start: Instant,
    deadline: Option<Instant>,
    patterns: Vec<Pattern>,
    seeded: Option<(Mapping, Evaluation)>,
    timed_out: bool,
    splits: usize,
}

impl Run<'_> {
    fn past(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// One model per bypass pattern, built when it is first refined; best-first: always refine
    /// the open pattern with the lowest bound, so patterns that cannot beat the incumbent are
    /// closed by their completion bound or by one infeasible solve, and never built.
    fn pending_patterns(&mut self) {
        let (space, opts) = (self.space, self.opts);
        for keep in keep_patterns(space) {
            // Past the deadline, the patterns left keep the bound every mapping has: its MACs.
            let bound = if self.past() {
                self.timed_out = true;
                Some(mac_energy(space, opts))
            } else {
                crate::search::choice_bounds(space, &keep, opts, &[]).0
            };
            if let Some(b) = bound {
                self.patterns
                    .push(Pattern::pending(keep, b * (1.0 - SHAVE)));
            }
        }
    }

    /// Under a time limit the first solves may not finish (a large model, an open mapspace): a
    /// short random search over the same mapspace gives an incumbent (and a cutoff) to start
    /// from, so that a time-limited answer is never worse than that search.
    fn seed(&self) -> Option<(Mapping, Evaluation)> {
        let d = self.deadline?;
        let share =
            Duration::from_secs_f64(self.so.time_limit.unwrap_or(0.0).max(0.0) * SEED_SHARE);
        let until = d.min(Instant::now() + share);
        let sampling = crate::search::Sampling {
            seed: 0,
            max_samples: SEED_SAMPLES,
            victory: None,
            deadline: Some(until),
        };
        let r = crate::search::random_until(self.space, self.opts, Objective::Energy, &sampling);
        r.best.zip(r.evaluation)
    }

    /// The least energy of a mapping found so far (the patterns' and the seed's).
    fn incumbent(&self) -> f64 {
        (self.patterns.iter())
            .filter_map(|p| p.best.as_ref().map(|b| b.1.energy_pj))
            .chain(self.seeded.as_ref().map(|b| b.1.energy_pj))
            .fold(f64::INFINITY, f64::min)
    }

    /// The open pattern (other than `except`) of lowest bound; only those whose bound is not
    /// within the gap of `incumbent` when it is given.
    fn lowest_open(&self, except: Option<usize>, incumbent: Option<f64>) -> Option<usize> {
        let gap = self.so.gap;
        (self.patterns.iter().enumerate())
            .filter(|&(j, p)| Some(j) != except && !p.done)
            .filter(|(_, p)| {
                incumbent.is_none_or(|u| !(u.is_finite() && p.bound >= u * (1.0 - gap)))
            })
            .min_by(|a, b| a.1.bound.total_cmp(&b.1.bound))
            .map(|(i, _)| i)
    }

    /// Refines the open patterns, lowest bound first, until every open bound is within the gap
    /// of the incumbent or the time (or round) limit stops it.
    fn refine(&mut self) -> Result<(), String> {
        let (space, opts, so) = (self.space, self.opts, self.so);
        let parallel = so.split_after.is_some() && rayon::current_thread_index().is_none();
        loop {
            let incumbent = self.incumbent();
            let Some(i) = self.lowest_open(None, None) else {
                return Ok(());
            };
            crate::progress::incumbent(incumbent);
            crate::progress::bound(self.patterns[i].bound.min(incumbent));
            if incumbent.is_finite() && self.patterns[i].bound >= incumbent * (1.0 - so.gap) {
                return Ok(()); // every open pattern's bound is within the gap of the incumbent
            }
            if self.timed_out || self.past() {
                self.timed_out = true;
                return Ok(());
            }
            if !self.patterns[i].built {
                self.patterns[i].build(space, opts, so.slice_choices)?;
                continue;
            }
            let remaining = so
                .time_limit
                .map(|t| t - self.start.elapsed().as_secs_f64());
            let rounds: usize = self.patterns.iter().map(|p| p.rounds).sum();
            if remaining.is_some_and(|r| r <= 0.0) || rounds >= so.max_rounds {
                self.timed_out = true;
                return Ok(());
            }
            let second = self.second(i, incumbent).filter(|_| parallel);
            if let Some(j) = second.filter(|&j| !self.patterns[j].built) {
                self.patterns[j].build(space, opts, so.slice_choices)?;
                continue;
            }
            let cutoff = incumbent.is_finite().then_some(incumbent);
            if !self.step(i, second, remaining, cutoff)? {
                self.timed_out = true;
                return Ok(());
            }
        }
    }

    /// A second open pattern to refine on the other core: the next lowest bound, or else, once
    /// a solve of pattern `i` took `split_after`, one half of it.
    fn second(&mut self, i: usize, incumbent: f64) -> Option<usize> {
        let so = self.so;
        let parallel = so.split_after.is_some() && rayon::current_thread_index().is_none();
        let second = self.lowest_open(Some(i), Some(incumbent));
        let p = &self.patterns[i];
        let slow = so
            .split_after
            .is_some_and(|t| p.solves > 0 && p.last_solve >= t);
        if parallel && second.is_none() && slow && self.splits < MAX_SPLITS {
            if let Some(half) = self.patterns[i].split() {
                self.patterns.push(half);
                self.splits += 1;
                return Some(self.patterns.len() - 1);
            }
        }
        second
    }

    /// One round of pattern `i`, and of pattern `j` on the other core when given. False when
    /// the time limit stopped a solve.
    fn step(
        &mut self,
        i: usize,
        j: Option<usize>,
        remaining: Option<f64>,
        cutoff: Option<f64>,
    ) -> Result<bool, String> {
        let (space, opts, so) = (self.space, self.opts, self.so);
        let Some(j) = j else {
            return self.patterns[i].step(space, opts, so, remaining, cutoff);
        };
        let (a, b) = if i < j {
            let (lo, hi) = self.patterns.split_at_mut(j);
            (&mut lo[i], &mut hi[0])
        } else {
            let (lo, hi) = self.patterns.split_at_mut(i);
            (&mut hi[0], &mut lo[j])
        };
        let (ra, rb) = rayon::join(
            || a.step(space, opts, so, remaining, cutoff),
            || b.step(space, opts, so, remaining, cutoff),
        );
        Ok(ra? & rb?)
    }

    /// The certificate of the run: the best mapping met and the least bound over the patterns
    /// (infeasible, with the checked reason, when the MILP found no mapping in time).
    fn certificate(self) -> Result<Certificate, String> {
        let patterns = &self.patterns;
        let rounds = patterns.iter().map(|p| p.rounds).sum();
        let solves = patterns.iter().map(|p| p.solves).sum();
        let bound = (patterns.iter().map(|p| p.bound)).fold(f64::INFINITY, f64::min);
        // The bound is of the optimum, which no mapping the run evaluated can undercut.
        let seen = self.incumbent();
        if seen < bound * (1.0 - 1e-6) {
            return Err(crate::certify::internal_error(&format!(
                "the MILP's bound {bound} pJ is above a valid mapping it evaluated ({seen} pJ)"
            )));
        }
        let best = (self.patterns.into_iter())
            .filter_map(|p| p.best)
            .chain(self.seeded)
            .min_by(|a, b| a.1.energy_pj.total_cmp(&b.1.energy_pj));
        let value = best.as_ref().map_or(f64::INFINITY, |b| b.1.energy_pj);
        let infeasible = best.is_none() && !self.timed_out;
        let bound = if infeasible {
            f64::INFINITY
        } else {
            bound.min(value)
        };
        let gap = if infeasible {
            0.0
        } else {
            relative_gap(value, bound)
        };
        let status = if infeasible {
            // Infeasible as far as the MILP sees; the reason is checked, or left to the caller
            // to check (None).
            Status::Infeasible
        } else if !self.timed_out && gap <= self.so.gap {
            Status::Optimal
        } else {
            Status::TimeLimit
        };
        Ok(Certificate {
            status,
            proof: ProofKind::Milp,
            mapping: best.as_ref().map(|b| b.0.clone()),
            evaluation: best.map(|b| b.1),
            value,
            bound,
            gap,
            rounds,
            milp_solves: solves,
            splits: self.splits,
            seconds: self.start.elapsed().as_secs_f64(),
            reason: infeasible
                .then(|| diagnose(self.space, self.opts))
                .flatten(),
            check: None,
        })
    }
}

/// Every keep/bypass pattern of `space` in which each tensor is kept somewhere, in the order
/// of their numbers (bit i: the i-th free keep choice kept).
pub(super) fn keep_patterns(space: &Mapspace) -> impl Iterator<Item = Vec<Vec<bool>>> + '_ {
    let free = space.free_keeps();
    let nt = space.problem().tensors.len();
    let nl = space.arch().levels.len();
    (0u64..1u64 << free.len()).filter_map(move |pattern| {
        let mut keep = vec![vec![false; nt]; nl];
        for (l, row) in keep.iter_mut().enumerate() {
            for (t, k) in row.iter_mut().enumerate() {
                *k = match space.keep_choice(l, t) {
                    KeepChoice::Fixed(b) => b,
                    KeepChoice::Free => false,
                };
            }
        }
        for (i, &(l, t)) in free.iter().enumerate() {
            keep[l][t] = pattern >> i & 1 == 1;
        }
        (0..nt).all(|t| (0..nl).any(|l| keep[l][t])).then_some(keep)
    })
}

/// The MAC energy of the layer (pJ): a lower bound on every mapping's energy.
pub(super) fn mac_energy(space: &Mapspace, opts: &ModelOptions) -> f64 {
    let (problem, arch) = (space.problem(), space.arch());
    problem.macs() as f64 * crate::eval::mac_energy_per_op(arch, problem, opts)
}

/// A certificate's gap, `(value − bound) / value`: 0 where they meet (nothing valid, proved),
/// infinite where no mapping was found.
pub fn relative_gap(value: f64, bound: f64) -> f64 {
    if value == bound {
        0.0
    } else if value.is_finite() {
        ((value - bound) / value).max(0.0)
    } else {
        f64::INFINITY
    }
}

/// Under a time limit the MILP starts from the best of `SEED_SAMPLES` valid random mappings,
/// drawn in at most `SEED_SHARE` of the limit (a few milliseconds on the shipped layers).
pub(super) const SEED_SAMPLES: u64 = 2_000;

pub(super) const SEED_SHARE: f64 = 0.05;
