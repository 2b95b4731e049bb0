//! Bit-width choices: the classes of choices with one packing signature share a MILP solve
//! (`solve_each`), and the best choice's certificate bounds them all (`solve_choices`).

use crate::eval::evaluate;
use crate::mapspace::Mapspace;
use crate::milp::solve::solve;
use crate::milp::{Certificate, SolveOptions, Status};
use crate::model::ModelOptions;
use crate::spec::Objective;
use std::time::Instant;

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
/// `choices` is not empty ([`crate::optimum::prove_best`], its caller, refuses that).
pub(crate) fn solve_choices(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    so: &SolveOptions,
) -> Result<(Certificate, usize), String> {
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
