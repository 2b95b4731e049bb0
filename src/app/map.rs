//! `qmap map`: the proven-optimal mapping of one layer (enumeration or MILP), cross-checked by
//! the evaluator and written where asked, as a typed report.

use super::job::{count_deadline, load_job, Answer, Found, Job, MappingOutputs};
use crate::budget::Budget;
use crate::error::Error;
use crate::eval::evaluate;
use crate::milp::{Certificate, Status};
use crate::optimum::Engine;
use crate::spec::{InputError, Objective};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to map and how.
pub struct MapRequest<'a> {
    pub instance: Option<&'a Path>,
    /// With a network workload: the layer (name or 1-based index).
    pub layer: Option<String>,
    /// Timeloop-format design files instead of an instance: ARCH PROBLEM ERT.
    pub timeloop: Option<&'a [PathBuf]>,
    /// Extra Timeloop-format mapspace constraints.
    pub constraints: Option<&'a Path>,
    /// Default: the instance's.
    pub objective: Option<Objective>,
    /// On the whole command, from `start` (loading and counting the mapspace included).
    pub time_limit: Option<f64>,
    pub start: Instant,
    /// The relative gap at which the answer counts as optimal.
    pub gap: f64,
    /// How the optimum is proved, and the largest mapspace `Auto` enumerates.
    pub engine: Engine,
    pub enumerate_limit: u128,
    pub progress: crate::progress::Mode,
    /// Where the mapping is written.
    pub outputs: MappingOutputs<'a>,
    /// Answer through the per-layer table's cache here ([`super::map_cache`]).
    pub cache: Option<&'a Path>,
    /// The latency budget's flags; each replaces the instance's `budget:` field it names.
    pub budget: Budget,
}

/// The latency budget a `map` answer was proved under ([`crate::budget`]).
#[derive(Serialize)]
pub struct BudgetReport {
    #[serde(flatten)]
    pub asked: Budget,
    /// The cycles cap the budget amounts to for this layer (the least of both).
    pub cycles_cap: u64,
    /// The answer's utilisation (MACs / (cycles × MAC instances)), when there is one.
    pub utilization: Option<f64>,
}

/// The certificate of `qmap map`. Its `--json` (keys in alphabetical order).
#[derive(Serialize)]
pub struct MapReport {
    #[serde(flatten)]
    pub answer: Answer,
    /// How many bit-width choices were compared.
    pub bit_choices: usize,
    #[serde(flatten)]
    pub cert: Certificate,
    /// The latency budget, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetReport>,
    /// The mapping's energy and cycles.
    pub cycles: Option<u64>,
    pub energy_pj: Option<f64>,
    /// What the terminal text shows besides.
    #[serde(skip)]
    pub text: MapText,
}

/// What `qmap map`'s terminal text shows besides the JSON's fields.
pub struct MapText {
    pub found: Found,
    /// Factorisations × keep patterns ([`crate::optimum::enumeration_size`]).
    pub enumeration_size: f64,
}

impl MapText {
    fn new(job: &Job, cert: &Certificate, opts: &crate::model::ModelOptions) -> MapText {
        MapText {
            enumeration_size: crate::optimum::enumeration_size(&job.space),
            found: Found {
                title: job.title.clone(),
                opts: opts.clone(),
                mapping: cert.mapping.clone(),
                arch: job.arch.clone(),
                problem: job.problem.clone(),
            },
        }
    }
}

impl MapReport {
    /// False when the layer is infeasible or nothing is known (exit code 1).
    pub fn pass(&self) -> bool {
        !matches!(self.cert.status, Status::Infeasible | Status::Unknown)
    }
}

/// Maps the layer and proves the answer optimal (or bounds it at the time limit).
pub fn run(req: &MapRequest) -> Result<MapReport, Error> {
    let mut job = load_job(
        req.instance,
        &req.layer,
        req.timeloop,
        req.constraints,
        req.objective,
    )?;
    let budget = req.budget.or(job.budget);
    let cap = budget.cycles_cap(job.problem.macs(), job.arch.mac.instances);
    if let Some(dir) = req.cache {
        if cap.is_some() {
            return Err(InputError::new(
                &job.file,
                "budget",
                "map --cache holds energy optima without a budget; drop --cache or the budget"
                    .to_string(),
            )
            .into());
        }
        return super::map_cache::run(req, &job, dir);
    }
    job.space = job.space.with_max_cycles(cap);
    let size = job
        .space
        .size_until(count_deadline(req.start, req.time_limit));
    let (cert, chosen) = solve(req, &job)?;
    let opts = &job.choices[chosen].1;
    cross_check(&job, &cert, opts)?;
    (req.outputs).write(cert.mapping.as_ref(), &job, opts)?;
    let text = MapText::new(&job, &cert, opts);
    Ok(MapReport {
        answer: Answer::new(
            &job,
            chosen,
            cert.mapping.as_ref(),
            cert.evaluation.clone(),
            size,
        ),
        bit_choices: job.choices.len(),
        budget: cap.map(|cycles_cap| BudgetReport {
            asked: budget,
            cycles_cap,
            utilization: cert.evaluation.as_ref().map(|e| e.utilization),
        }),
        cycles: cert.evaluation.as_ref().map(|e| e.cycles),
        energy_pj: cert.evaluation.as_ref().map(|e| e.energy_pj),
        cert,
        text,
    })
}

/// The proof over every bit-width choice, with the progress shown while it runs: the
/// certificate and the chosen choice.
fn solve(req: &MapRequest, job: &Job) -> Result<(Certificate, usize), Error> {
    let so = crate::milp::SolveOptions {
        time_limit: (req.time_limit).map(|t| (t - req.start.elapsed().as_secs_f64()).max(0.0)),
        gap: req.gap,
        ..Default::default()
    };
    let opts: Vec<_> = job.choices.iter().map(|c| c.1.clone()).collect();
    let unit = crate::report::map::value_unit(job.objective);
    let display = crate::progress::Display::start(req.progress, unit);
    let solved = crate::optimum::prove_best(
        &job.space,
        &opts,
        job.objective,
        req.engine,
        req.enumerate_limit,
        &so,
    );
    drop(display);
    solved.map_err(|e| Error::solver(&job.file, e))
}

/// The cross-check: the returned mapping, evaluated again, must give the certified value.
fn cross_check(
    job: &Job,
    cert: &Certificate,
    opts: &crate::model::ModelOptions,
) -> Result<(), InputError> {
    let Some(m) = &cert.mapping else {
        return Ok(());
    };
    let ev = evaluate(&job.problem, &job.arch, m, opts);
    let v = crate::search::objective_value(&ev, job.objective);
    if !ev.valid || (v - cert.value).abs() > 1e-9 * v.abs().max(1.0) {
        return Err(InputError::new(
            &job.file,
            "(solver)",
            format!(
                "internal error: the solver reports {} for its mapping, the evaluator {v}",
                cert.value
            ),
        ));
    }
    Ok(())
}
