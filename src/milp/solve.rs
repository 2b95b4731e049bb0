//! The solve entry points: the best-first loop over bypass patterns (`solve`), bit-width
//! classes (`solve_each`, `solve_choices`) and the certificate's gap.

use crate::eval::{evaluate, Evaluation};
use crate::mapspace::{KeepChoice, Mapspace};
use crate::milp::diagnose::diagnose;
use crate::milp::rounds::Pattern;
use crate::milp::{Certificate, SolveOptions, Status, MAX_SPLITS, SHAVE};
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
    let start = Instant::now();
    let deadline = so
        .time_limit
        .map(|t| start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let past = || deadline.is_some_and(|d| Instant::now() >= d);
    // One model per bypass pattern, built when it is first refined; best-first: always refine
    // the open pattern with the lowest bound, so patterns that cannot beat the incumbent are
    // closed by their completion bound or by one infeasible solve, and never built.
    let mut patterns: Vec<Pattern> = vec![];
    let mut timed_out = false;
    for keep in keep_patterns(space) {
        // Past the deadline, the patterns left keep the bound every mapping has: its MACs.
        let bound = if past() {
            timed_out = true;
            Some(mac_energy(space, opts))
        } else {
            crate::search::choice_bounds(space, &keep, opts, &[]).0
        };
        if let Some(b) = bound {
            patterns.push(Pattern::pending(keep, b * (1.0 - SHAVE)));
        }
    }
    // Under a time limit the first solves may not finish (a large model, an open mapspace): a
    // short random search over the same mapspace gives an incumbent (and a cutoff) to start
    // from, so that a time-limited answer is never worse than that search.
    let seeded: Option<(Mapping, Evaluation)> = deadline.and_then(|d| {
        let share = Duration::from_secs_f64(so.time_limit.unwrap_or(0.0).max(0.0) * SEED_SHARE);
        let until = d.min(Instant::now() + share);
        let r = crate::search::random_until(
            space,
            opts,
            Objective::Energy,
            0,
            SEED_SAMPLES,
            None,
            Some(until),
        );
        r.best.zip(r.evaluation)
    });
    let parallel = so.split_after.is_some() && rayon::current_thread_index().is_none();
    let mut splits = 0;
    loop {
        let incumbent = patterns
            .iter()
            .filter_map(|p| p.best.as_ref().map(|b| b.1.energy_pj))
            .chain(seeded.as_ref().map(|b| b.1.energy_pj))
            .fold(f64::INFINITY, f64::min);
        let open = patterns
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.done)
            .min_by(|a, b| a.1.bound.total_cmp(&b.1.bound))
            .map(|(i, _)| i);
        let Some(i) = open else { break };
        crate::progress::incumbent(incumbent);
        crate::progress::bound(patterns[i].bound.min(incumbent));
        if incumbent.is_finite() && patterns[i].bound >= incumbent * (1.0 - so.gap) {
            break; // every open pattern's bound is within the gap of the incumbent
        }
        if timed_out || past() {
            timed_out = true;
            break;
        }
        if !patterns[i].built {
            patterns[i].build(space, opts, so.slice_choices)?;
            continue;
        }
        let remaining = so.time_limit.map(|t| t - start.elapsed().as_secs_f64());
        let rounds: usize = patterns.iter().map(|p| p.rounds).sum();
        if remaining.is_some_and(|r| r <= 0.0) || rounds >= so.max_rounds {
            timed_out = true;
            break;
        }
        let cutoff = incumbent.is_finite().then_some(incumbent);
        // A second open pattern to refine on the other core: the next lowest bound, or else,
        // once a solve of this one took `split_after`, one half of it.
        let mut second = patterns
            .iter()
            .enumerate()
            .filter(|&(j, p)| j != i && !p.done)
            .filter(|(_, p)| !(incumbent.is_finite() && p.bound >= incumbent * (1.0 - so.gap)))
            .min_by(|a, b| a.1.bound.total_cmp(&b.1.bound))
            .map(|(j, _)| j);
        let slow = so
            .split_after
            .is_some_and(|t| patterns[i].solves > 0 && patterns[i].last_solve >= t);
        if parallel && second.is_none() && slow && splits < MAX_SPLITS {
            if let Some(half) = patterns[i].split() {
                patterns.push(half);
                second = Some(patterns.len() - 1);
                splits += 1;
            }
        }
        if let Some(j) = second.filter(|&j| parallel && !patterns[j].built) {
            patterns[j].build(space, opts, so.slice_choices)?;
            continue;
        }
        let stepped = match second.filter(|_| parallel) {
            None => patterns[i].step(space, opts, so, remaining, cutoff)?,
            Some(j) => {
                let (a, b) = if i < j {
                    let (lo, hi) = patterns.split_at_mut(j);
                    (&mut lo[i], &mut hi[0])
                } else {
                    let (lo, hi) = patterns.split_at_mut(i);
                    (&mut hi[0], &mut lo[j])
                };
                let (ra, rb) = rayon::join(
                    || a.step(space, opts, so, remaining, cutoff),
                    || b.step(space, opts, so, remaining, cutoff),
                );
                ra? & rb?
            }
        };
        if !stepped {
            timed_out = true;
            break;
        }
    }
    let rounds = patterns.iter().map(|p| p.rounds).sum();
    let solves = patterns.iter().map(|p| p.solves).sum();
    let bound = patterns
        .iter()
        .map(|p| p.bound)
        .fold(f64::INFINITY, f64::min);
    // The bound is of the optimum, which no mapping the run evaluated can undercut.
    let seen = patterns
        .iter()
        .filter_map(|p| p.best.as_ref().map(|b| b.1.energy_pj))
        .chain(seeded.as_ref().map(|b| b.1.energy_pj))
        .fold(f64::INFINITY, f64::min);
    if seen < bound * (1.0 - 1e-6) {
        return Err(crate::certify::internal_error(&format!(
            "the MILP's bound {bound} pJ is above a valid mapping it evaluated ({seen} pJ)"
        )));
    }
    let best = patterns
        .into_iter()
        .filter_map(|p| p.best)
        .chain(seeded)
        .min_by(|a, b| a.1.energy_pj.total_cmp(&b.1.energy_pj));
    let seconds = start.elapsed().as_secs_f64();
    let value = best.as_ref().map_or(f64::INFINITY, |b| b.1.energy_pj);
    if best.is_none() && !timed_out {
        // Infeasible as far as the MILP sees; the reason is checked, or left to the caller
        // to check (None).
        return Ok(Certificate {
            status: Status::Infeasible,
            mapping: None,
            evaluation: None,
            value,
            bound: f64::INFINITY,
            gap: 0.0,
            rounds,
            milp_solves: solves,
            splits,
            seconds,
            reason: diagnose(space, opts),
            check: None,
        });
    }
    let bound = bound.min(value);
    let gap = relative_gap(value, bound);
    let status = if !timed_out && gap <= so.gap {
        Status::Optimal
    } else {
        Status::TimeLimit
    };
    Ok(Certificate {
        status,
        mapping: best.as_ref().map(|b| b.0.clone()),
        evaluation: best.map(|b| b.1),
        value,
        bound,
        gap,
        rounds,
        milp_solves: solves,
        splits,
        seconds,
        reason: None,
        check: None,
    })
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

/// The optimum of every bit-width choice (one `ModelOptions` each): choices with the same
/// packing signature share one MILP solve (their energies differ by MACs × the MAC-energy
/// difference for every mapping), so each member's certificate is its class's, with the
/// mapping re-evaluated at the member's bit-widths and the bound shifted by the MAC energy.
/// The solve counts are on the certificate of each class's first member only (so they add up).
/// `so.time_limit` is for all classes together, or for each class with `per_class_limit`.
pub fn solve_each(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    so: &SolveOptions,
    per_class_limit: bool,
) -> Result<Vec<Certificate>, String> {
    let start = Instant::now();
    let (problem, arch) = (space.problem(), space.arch());
    let macs = problem.macs() as f64;
    let mac_e = |o: &ModelOptions| macs * crate::eval::mac_energy_per_op(arch, problem, o);
    let mut classes: Vec<(crate::eval::PackingSignature, usize, Certificate)> = vec![];
    let mut out = vec![];
    for (i, o) in choices.iter().enumerate() {
        let sig = crate::eval::packing_signature(arch, problem, o);
        let k = match classes.iter().position(|(s, _, _)| *s == sig) {
            Some(k) => k,
            None => {
                let mut class_so = so.clone();
                if let (Some(t), false) = (so.time_limit, per_class_limit) {
                    class_so.time_limit = Some(t - start.elapsed().as_secs_f64());
                }
                let cert = solve(space, o, objective, &class_so)?;
                classes.push((sig, i, cert));
                classes.len() - 1
            }
        };
        let (_, rep, class) = &classes[k];
        let mut cert = class.clone();
        if *rep != i {
            cert.rounds = 0;
            cert.milp_solves = 0;
            cert.splits = 0;
        }
        let shift = mac_e(o) - mac_e(&choices[*rep]);
        cert.bound += shift;
        if let Some(m) = &cert.mapping {
            let ev = evaluate(problem, arch, m, o);
            if !ev.valid || (ev.energy_pj - (class.value + shift)).abs() > 1e-9 * ev.energy_pj {
                return Err(format!(
                    "internal error: the packing signature promised {} pJ for bit choice {i}, the evaluator gives {} pJ",
                    class.value + shift,
                    ev.energy_pj
                ));
            }
            cert.value = ev.energy_pj;
            cert.gap = ((cert.value - cert.bound) / cert.value).max(0.0);
            cert.evaluation = Some(ev);
        }
        out.push(cert);
    }
    Ok(out)
}

/// The optimum over several bit-width choices ([`solve_each`], one time limit for all):
/// the certificate of the best choice and its index; the bound is the minimum over all choices.
pub fn solve_choices(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    so: &SolveOptions,
) -> Result<(Certificate, usize), String> {
    if choices.is_empty() {
        return Err("no bit-width choice is left (check the weight budget)".into());
    }
    let start = Instant::now();
    let certs = solve_each(space, choices, objective, so, false)?;
    let seconds = start.elapsed().as_secs_f64();
    let rounds = certs.iter().map(|c| c.rounds).sum();
    let solves = certs.iter().map(|c| c.milp_solves).sum();
    let splits = certs.iter().map(|c| c.splits).sum();
    let timed_out = certs.iter().any(|c| c.status == Status::TimeLimit);
    let bound = certs.iter().map(|c| c.bound).fold(f64::INFINITY, f64::min);
    let best = certs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.mapping.is_some())
        .min_by(|a, b| a.1.value.total_cmp(&b.1.value))
        .map(|(i, _)| i);
    let Some(i) = best else {
        // Checked only when every choice's reason is.
        let mut reasons: Vec<String> = vec![];
        for r in certs.iter().map(|c| c.reason.clone()) {
            if r.as_ref().is_none_or(|r| !reasons.contains(r)) {
                reasons.extend(r);
            }
        }
        let checked = certs.iter().all(|c| c.reason.is_some());
        let mut c = certs.into_iter().next().expect("at least one choice");
        c.seconds = seconds;
        c.milp_solves = solves;
        c.splits = splits;
        c.rounds = rounds;
        c.reason = checked.then(|| reasons.join("; "));
        if timed_out {
            c.status = Status::TimeLimit;
            c.reason = None;
        }
        return Ok((c, 0));
    };
    let mut cert = certs[i].clone();
    cert.bound = bound.min(cert.value);
    cert.gap = ((cert.value - cert.bound) / cert.value).max(0.0);
    cert.status = if !timed_out && cert.gap <= so.gap {
        Status::Optimal
    } else {
        Status::TimeLimit
    };
    cert.rounds = rounds;
    cert.milp_solves = solves;
    cert.splits = splits;
    cert.seconds = seconds;
    Ok((cert, i))
}

/// Under a time limit the MILP starts from the best of `SEED_SAMPLES` valid random mappings,
/// drawn in at most `SEED_SHARE` of the limit (a few milliseconds on the shipped layers).
pub(super) const SEED_SAMPLES: u64 = 2_000;

pub(super) const SEED_SHARE: f64 = 0.05;
