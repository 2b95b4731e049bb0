//! `qmap search`: the baseline mappers (exhaustive enumeration, random-pruned search) on one
//! layer's mapspace over its bit-width choices, as a typed report.

use super::job::{count_deadline, load_job, Answer, Found, Job, MappingOutputs};
use crate::error::Error;
use crate::search::{SearchResult, StopReason};
use crate::spec::{InputError, Objective};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// The mapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exhaustive,
    Random,
}

impl Method {
    /// As the JSON names it.
    fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// What to search and how.
pub struct SearchRequest<'a> {
    pub instance: &'a Path,
    pub layer: Option<String>,
    pub method: Method,
    /// Random search: valid samples to draw, and stop after this many without improvement.
    pub samples: u64,
    pub victory: Option<u64>,
    pub seed: u64,
    /// Exhaustive: refuse spaces larger than this (None: no limit).
    pub limit: Option<u128>,
    /// Wall-clock limit from `start`.
    pub time_limit: Option<f64>,
    pub start: Instant,
    /// Default: the instance's.
    pub objective: Option<Objective>,
    pub progress: crate::progress::Mode,
    /// Where the best mapping is written.
    pub outputs: MappingOutputs<'a>,
}

/// The outcome: a best mapping, or none valid.
pub enum SearchReport {
    Found(Box<Searched>),
    NotFound(NotFound),
}

/// No valid mapping found. Its `--json` (keys in alphabetical order; `value` is null).
#[derive(Serialize)]
pub struct NotFound {
    pub evaluated: u64,
    pub method: String,
    pub valid: u64,
    pub value: Option<f64>,
    #[serde(skip)]
    pub text_method: Method,
    #[serde(skip)]
    pub title: String,
}

/// The best mapping found. Its `--json` (keys in alphabetical order).
#[derive(Serialize)]
pub struct Searched {
    #[serde(flatten)]
    pub answer: Answer,
    /// Mappings evaluated, and the valid ones among them.
    pub evaluated: u64,
    pub valid: u64,
    /// `exhaustive` or `random`.
    pub method: String,
    pub stopped_at_time_limit: bool,
    /// The best mapping's objective value.
    pub value: f64,
    #[serde(skip)]
    pub text: SearchText,
}

/// What `qmap search`'s terminal text shows besides the JSON's fields.
pub struct SearchText {
    pub method: Method,
    pub found: Found,
}

/// The searches over every bit-width choice: the best result and its choice, and the totals.
struct Totals {
    best: Option<(SearchResult, usize)>,
    evaluated: u64,
    valid: u64,
    stopped: bool,
}

/// Searches the layer's mapspace at every bit-width choice and keeps the best mapping.
pub fn run(req: &SearchRequest) -> Result<SearchReport, Error> {
    let deadline = (req.time_limit).map(|t| req.start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let job = load_job(Some(req.instance), &req.layer, None, None, req.objective)?;
    let size = job
        .space
        .size_until(count_deadline(req.start, req.time_limit));
    let unit = crate::report::map::value_unit(job.objective);
    let display = crate::progress::Display::start(req.progress, unit);
    crate::progress::phase(match req.method {
        Method::Exhaustive => "exhaustive search",
        Method::Random => "random search",
    });
    let totals = search(req, &job, deadline)?;
    drop(display);
    let Some((res, chosen)) = totals.best else {
        return Ok(SearchReport::NotFound(NotFound {
            evaluated: totals.evaluated,
            method: req.method.name(),
            valid: totals.valid,
            value: None,
            text_method: req.method,
            title: job.title,
        }));
    };
    let opts = &job.choices[chosen].1;
    (req.outputs).write(res.best.as_ref(), &job, opts)?;
    Ok(SearchReport::Found(Box::new(Searched {
        answer: Answer::new(&job, chosen, res.best.as_ref(), res.evaluation, size),
        evaluated: totals.evaluated,
        method: req.method.name(),
        stopped_at_time_limit: totals.stopped,
        valid: totals.valid,
        value: res.value,
        text: SearchText {
            method: req.method,
            found: Found {
                opts: opts.clone(),
                mapping: res.best,
                title: job.title,
                arch: job.arch,
                problem: job.problem,
            },
        },
    })))
}

/// One search per bit-width choice; ties go to the first choice.
fn search(req: &SearchRequest, job: &Job, deadline: Option<Instant>) -> Result<Totals, InputError> {
    let mut t = Totals {
        best: None,
        evaluated: 0,
        valid: 0,
        stopped: false,
    };
    for (i, (_, opts)) in job.choices.iter().enumerate() {
        let res = match req.method {
            Method::Exhaustive => crate::search::exhaustive_until(
                &job.space,
                opts,
                job.objective,
                req.limit,
                deadline,
            )
            .map_err(|e| InputError::new(req.instance, "--method exhaustive", e))?,
            Method::Random => {
                let sampling = crate::search::Sampling {
                    seed: req.seed,
                    max_samples: req.samples,
                    victory: req.victory,
                    deadline,
                };
                crate::search::random_until(&job.space, opts, job.objective, &sampling)
            }
        };
        t.evaluated += res.evaluated;
        t.valid += res.valid;
        t.stopped |= res.stop == StopReason::Deadline;
        if res.best.is_some() && t.best.as_ref().is_none_or(|(b, _)| res.value < b.value) {
            t.best = Some((res, i));
        }
    }
    Ok(t)
}
