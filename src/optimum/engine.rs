//! The engine choice: enumeration up to its limit (and as a timed trial above it), the MILP
//! above; [`prove_best`] (one layer, `qmap map`) and [`solve_unit`] (one table unit at every
//! bit choice), each answer re-evaluated and probed ([`crate::certify`]).

use super::*;

/// Which exact method fills the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Enumeration up to the limit, the MILP above it.
    Auto,
    Milp,
    Enumerate,
}

impl Engine {
    /// Whether this engine proves `space` by enumeration (`Auto`: when it has at most
    /// `enumerate_limit` factorisations × keep patterns, [`enumeration_size`]).
    pub fn enumerates(self, space: &Mapspace, enumerate_limit: u128) -> bool {
        match self {
            Engine::Enumerate => true,
            Engine::Milp => false,
            Engine::Auto => enumeration_size(space) <= enumerate_limit as f64,
        }
    }
}

/// What the enumerating engine's work grows with: factorisations × keep patterns. Each is
/// bounded once over all its loop orders, which are evaluated only when the bound does not
/// rule them out ([`crate::search::enumerate`]); on the shipped layers that is under 1 % of
/// them.
pub fn enumeration_size(space: &Mapspace) -> f64 {
    space.factorisations() * space.bypass_patterns() as f64
}

/// Largest [`enumeration_size`] the `Auto` engine proves by enumeration (default of
/// `--enumerate-limit`). How fast the bounds prove a space depends on more than its size
/// (2 cores): on Eyeriss, where every factorisation has one loop order, a 2.7-million
/// pointwise space enumerates in 1.9 s (the MILP: 2.8 s) and an 8.5-million one in 5.8 s
/// (the MILP: 1.8 s); on Simba every shipped layer, up to 16 million, enumerates in under
/// 0.7 s, and so do depthwise spaces of 110 and 300 million, while 30-million pointwise ones
/// take 7-13 s (the MILP: 2-6 s). Above the limit `qmap map` still lets the enumeration try
/// first ([`ENUMERATE_TRIAL_SECONDS`]).
pub const ENUMERATE_LIMIT: u128 = 6_000_000;

/// How long (seconds) `Auto` lets the enumeration try a mapspace above the limit before it
/// runs the MILP ([`prove_best`], [`solve_unit`]), per MILP it may save: one per packing class
/// (one enumeration serves them all). Depthwise layers, whose bounds cut whole sets of
/// factorisations, finish far above the limit: Simba MobileNetV2 b3_dw (16 million) in 0.1 s,
/// a 720-channel 56×56 one (110 million) in 0.5 s; wide pointwise layers do not (480×240
/// channels on Simba, 31 million: 7 s; the MILP: 2.2 s).
pub const ENUMERATE_TRIAL_SECONDS: f64 = 2.0;

/// The enumeration's trial above the limit for the bit choices `opts`:
/// [`ENUMERATE_TRIAL_SECONDS`] per packing class among them.
fn trial(space: &Mapspace, opts: &[ModelOptions]) -> Duration {
    Duration::from_secs_f64(ENUMERATE_TRIAL_SECONDS * packing_classes(space, opts) as f64)
}

/// How many packing classes the bit choices `opts` fall into on `space` (one MILP each).
pub fn packing_classes(space: &Mapspace, opts: &[ModelOptions]) -> usize {
    let (problem, arch) = (space.problem(), space.arch());
    let mut classes: Vec<_> = opts
        .iter()
        .map(|o| crate::eval::packing_signature(arch, problem, o))
        .collect();
    classes.sort();
    classes.dedup();
    classes.len()
}

/// The energy optimum of `space` at every bit choice in `opts` (each a [`Certificate`] whose
/// [`record`](Certificate::record) the table keeps): one enumeration priced at
/// every packing class when the engine (or `Auto` under its limit) enumerates, else one MILP
/// per packing class whose members share its mapping. Above the limit, `Auto` first lets the
/// enumeration try for [`ENUMERATE_TRIAL_SECONDS`] per packing class. Every mapping is
/// re-evaluated. `settings.time_limit` is on all of it together; a unit stopped there keeps
/// its incumbents and bounds. The answers are then probed ([`crate::certify::probe`]).
pub fn solve_unit(
    space: &Mapspace,
    opts: &[ModelOptions],
    settings: &TableSettings,
) -> Result<Vec<Certificate>, String> {
    let start = Instant::now();
    // The time limit is for the whole unit: the enumeration and every MILP together.
    let limit = settings
        .time_limit
        .map(|t| start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let optima = solve_unit_unchecked(space, opts, settings, start, limit)?;
    let bounds: Vec<f64> = (optima.iter())
        .map(|c| c.record().bound_and_gap(c.value).0)
        .collect();
    let budget = crate::certify::probe_budget(start.elapsed().as_secs_f64());
    crate::certify::probe(space, opts, &bounds, Objective::Energy, budget)?;
    Ok(optima)
}

/// [`solve_unit`] before its probe: an `infeasible` the MILP gives without a checked reason is
/// checked here already (by enumeration; `unknown` when that does not finish).
fn solve_unit_unchecked(
    space: &Mapspace,
    opts: &[ModelOptions],
    settings: &TableSettings,
    start: Instant,
    limit: Option<Instant>,
) -> Result<Vec<Certificate>, String> {
    let enumerates = settings.engine.enumerates(space, settings.enumerate_limit);
    if enumerates || settings.engine == Engine::Auto {
        let trial = (!enumerates).then(|| start + trial(space, opts));
        let deadline = [limit, trial].into_iter().flatten().min();
        let best = crate::search::exhaustive_choices(space, opts, None, deadline)?;
        // Proved when every choice's bound reaches its value (infinity when nothing fits).
        let proved = best.iter().all(|b| b.bound >= b.value);
        let spent = limit.is_some_and(|d| Instant::now() >= d);
        if proved || enumerates || spent {
            return Ok(best);
        }
    }
    let so = SolveOptions {
        time_limit: limit.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64()),
        ..Default::default()
    };
    let mut certs = milp::solve_each(space, opts, Objective::Energy, &so, false)?;
    for (cert, o) in certs.iter_mut().zip(opts) {
        if cert.status == Status::Infeasible && cert.reason.is_none() {
            let p = Proving {
                space,
                choices: std::slice::from_ref(o),
                objective: Objective::Energy,
                so: &so,
                start,
                deadline: limit,
            };
            p.check_infeasible(cert)?;
        }
    }
    Ok(certs)
}

/// The optimum of `space` over the bit choices for `objective`, proved by enumeration (the
/// engine says so, or `Auto` with the mapspace within `enumerate_limit`) or by the MILP (energy
/// only): the certificate of the best choice (saying which engine proved it) and its index.
/// Above the limit, `Auto` first gives the enumeration [`ENUMERATE_TRIAL_SECONDS`] per packing
/// class and runs the MILP only when it has not finished (in the time left). Ties go to the
/// first choice. An enumerated answer's certificate has bound = value and gap 0; with no valid
/// mapping at any choice it is `infeasible` with the MILP's diagnosis of why nothing fits. An
/// enumeration stopped by `so.time_limit` gives the best mapping found and the least bound of
/// what it did not search (`optimal` when the gap is within `so.gap`, else `time_limit`).
///
/// Every answer is then checked ([`crate::certify`]): an `infeasible` without a checked reason
/// is checked by enumeration (`unknown` when that does not finish in its time), and the
/// answer's bound is probed with random valid mappings; a failed check is an error.
pub fn prove_best(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    engine: Engine,
    enumerate_limit: u128,
    so: &SolveOptions,
) -> Result<(Certificate, usize), String> {
    if choices.is_empty() {
        return Err("no bit-width choice is left (check the weight budget)".into());
    }
    let start = Instant::now();
    let deadline = so
        .time_limit
        .map(|s| start + Duration::from_secs_f64(s.clamp(0.0, 1e9)));
    let p = Proving {
        space,
        choices,
        objective,
        so,
        start,
        deadline,
    };
    let (mut cert, i) = p.solve_best(engine, enumerate_limit)?;
    if cert.status == Status::Infeasible && cert.reason.is_none() {
        p.check_infeasible(&mut cert)?;
    }
    if cert.status == Status::Infeasible && space.max_cycles().is_some() {
        crate::progress::phase("least cycles");
        let seconds = start.elapsed().as_secs_f64().max(10.0);
        if let Some(r) = crate::budget::infeasible_reason(space, choices, seconds)? {
            cert.reason = Some(r);
        }
    }
    crate::progress::phase("self-check");
    if std::env::var_os("QMAP_TEST_FALSE_BOUND").is_some() {
        // For the tests of the self-check: a certificate whose bound is ten times too high.
        cert.bound *= 10.0;
    }
    let bounds = vec![cert.bound; choices.len()];
    let budget = crate::certify::probe_budget(start.elapsed().as_secs_f64());
    cert.check = Some(crate::certify::probe(
        space, choices, &bounds, objective, budget,
    )?);
    cert.seconds = start.elapsed().as_secs_f64();
    Ok((cert, i))
}

/// One proof over the bit choices of a mapspace: what it proves, its options, when it started
/// and its deadline (from `so.time_limit`).
struct Proving<'a> {
    space: &'a Mapspace,
    choices: &'a [ModelOptions],
    objective: Objective,
    so: &'a SolveOptions,
    start: Instant,
    deadline: Option<Instant>,
}

impl Proving<'_> {
    /// Checks the MILP's `infeasible` that has no checked reason by enumerating the space
    /// (until the deadline, and for at least 10 s or as long as the solve took): a valid
    /// mapping found is an internal error; an enumeration stopped early leaves the status
    /// `unknown`.
    fn check_infeasible(&self, cert: &mut Certificate) -> Result<(), String> {
        let own = Instant::now() + self.start.elapsed().max(Duration::from_secs(10));
        let until = self.deadline.map_or(own, |d| d.min(own));
        let (found, _) = self.enumerate_best(Some(until), 0.0)?;
        if found.mapping.is_some() {
            return Err(crate::certify::internal_error(&format!(
                "the MILP found no valid mapping, but the enumeration found one of value {}",
                found.value
            )));
        }
        if found.status == Status::Infeasible {
            cert.reason = Some(
                "no valid mapping: the MILP found none, and enumerating the mapspace (every \
                 mapping evaluated or bounded) confirms it"
                    .into(),
            );
        } else {
            cert.status = Status::Unknown;
            cert.reason = Some(
                "the MILP found no valid mapping, but no simple reason (the smallest tiles \
                 overflowing a level) shows why, and the enumeration that checks it did not \
                 finish in its time"
                    .into(),
            );
        }
        Ok(())
    }

    /// [`prove_best`] before its checks.
    fn solve_best(&self, engine: Engine, limit: u128) -> Result<(Certificate, usize), String> {
        let (space, choices, so) = (self.space, self.choices, self.so);
        crate::progress::phase("enumeration");
        if engine.enumerates(space, limit) {
            return self.enumerate_best(self.deadline, so.gap);
        }
        if self.objective != Objective::Energy {
            return Err(format!(
                "latency and EDP optima are proved by enumeration only (the MILP proves \
                 energy); this mapspace has {:.3e} factorisations × keep patterns, above the \
                 enumeration limit {limit}: raise --enumerate-limit, use --engine enumerate, \
                 or constrain the mapspace",
                enumeration_size(space)
            ));
        }
        let mut tried = None;
        if engine == Engine::Auto {
            let trial = self.start + trial(space, choices);
            let until = self.deadline.map_or(trial, |d| d.min(trial));
            let (cert, i) = self.enumerate_best(Some(until), so.gap)?;
            // Finished, or the time limit is spent: the enumeration's answer.
            if cert.status != Status::TimeLimit
                || self.deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Ok((cert, i));
            }
            tried = Some((cert, i));
        }
        let so = SolveOptions {
            time_limit: (so.time_limit).map(|s| (s - self.start.elapsed().as_secs_f64()).max(0.0)),
            ..so.clone()
        };
        crate::progress::phase("MILP");
        let milp = milp::solve_choices(space, choices, self.objective, &so)?;
        let (mut cert, i) = combine(milp, tried, so.gap)?;
        cert.seconds = self.start.elapsed().as_secs_f64();
        Ok((cert, i))
    }

    /// The best choice by enumeration ([`crate::search::exhaustive_choices`] for energy, one
    /// [`crate::search::enumerate`] per choice otherwise), stopped at `deadline`: its
    /// certificate (bound: the least over every choice) and index.
    fn enumerate_best(
        &self,
        deadline: Option<Instant>,
        gap_tolerance: f64,
    ) -> Result<(Certificate, usize), String> {
        let (space, choices) = (self.space, self.choices);
        let results: Vec<Certificate> = if self.objective == Objective::Energy {
            crate::search::exhaustive_choices(space, choices, None, deadline)?
        } else {
            (choices.iter())
                .map(|o| {
                    let r = crate::search::enumerate(space, o, self.objective, deadline);
                    let bound = r.bound.expect("an enumeration has a bound");
                    Certificate::enumerated(r.best, r.evaluation, r.value, bound, 0.0)
                })
                .collect()
        };
        let mut best = 0;
        for i in 1..results.len() {
            if results[i].value < results[best].value {
                best = i;
            }
        }
        let bound = results
            .iter()
            .map(|r| r.bound)
            .fold(f64::INFINITY, f64::min);
        let found = results.into_iter().nth(best).expect("at least one choice");
        let mut cert = Certificate::enumerated(
            found.mapping,
            found.evaluation,
            found.value,
            bound,
            gap_tolerance,
        );
        if cert.status == Status::Infeasible {
            cert.reason = Some(milp::diagnose(space, &choices[0]).unwrap_or_else(|| {
                "no valid mapping: every mapping of the mapspace was evaluated or bounded \
                 (each set bounded shows every completion invalid)"
                    .into()
            }));
        }
        cert.seconds = self.start.elapsed().as_secs_f64();
        Ok((cert, best))
    }
}

/// The MILP's answer and, when the enumeration tried first and stopped, the enumeration's:
/// a mapping the enumeration saw must not undercut the MILP's bound; stopped by the time limit,
/// the better incumbent of the two and the higher bound.
fn combine(
    (mut cert, mut i): (Certificate, usize),
    tried: Option<(Certificate, usize)>,
    gap_tolerance: f64,
) -> Result<(Certificate, usize), String> {
    if let Some((tried, _)) = (tried.as_ref()).filter(|t| t.0.value < cert.bound * (1.0 - 1e-6)) {
        return Err(crate::certify::internal_error(&format!(
            "the MILP's bound {} pJ is above a valid mapping the enumeration found ({} pJ)",
            cert.bound, tried.value
        )));
    }
    if let (Status::TimeLimit, Some((tried, k))) = (cert.status, tried) {
        cert.bound = cert.bound.max(tried.bound);
        if tried.value < cert.value {
            (cert.mapping, cert.evaluation, cert.value, i) =
                (tried.mapping, tried.evaluation, tried.value, k);
        }
        cert.gap = milp::relative_gap(cert.value, cert.bound);
        if cert.gap <= gap_tolerance {
            cert.status = Status::Optimal;
        }
    }
    Ok((cert, i))
}
