//! `qmap map --cache DIR`: the layer's energy optimum through the per-layer table's cache, as
//! `table`, `baseline` and `front` use it. The layer at its bit choices is one table unit:
//! read back when its cache file checks out entry by entry (mapping re-evaluated, bounds and
//! status checked), else solved by the table's engine and stored; the best entry is the
//! answer. A cache file that does not check out is a warning and is
//! recomputed.

use super::job::{Answer, Found, Job};
use super::map::{MapReport, MapRequest, MapText};
use crate::error::Error;
use crate::optimum::{self, CacheUse, Entry, TableSettings, Unit};
use crate::spec::{InputError, Objective};
use std::path::Path;

/// The answer of `job` through the cache in `dir` (energy only: the table holds energy optima).
pub fn run(req: &MapRequest, job: &Job, dir: &Path) -> Result<MapReport, Error> {
    if job.objective != Objective::Energy {
        return Err(InputError::new(
            dir,
            "--cache",
            "the cache holds energy optima: use --objective energy, or no --cache",
        )
        .into());
    }
    let settings = TableSettings {
        engine: req.engine,
        enumerate_limit: req.enumerate_limit,
        time_limit: req.time_limit,
        cache_dir: Some(dir.to_path_buf()),
        progress: false,
    };
    let (settings, unusable) = optimum::usable_cache(&settings);
    unusable.into_iter().for_each(crate::notices::warn);
    let entries = unit_entries(job, &settings)?;
    let size = job
        .space
        .size_until(super::job::count_deadline(req.start, req.time_limit));
    report(req, job, &entries, size)
}

/// The unit's entries, one per bit choice of `job`: from the cache or solved and stored.
fn unit_entries(job: &Job, settings: &TableSettings) -> Result<Vec<Entry>, Error> {
    let configs: Vec<_> = job.choices.iter().map(|c| c.0).collect();
    let opts: Vec<_> = job.choices.iter().map(|c| c.1.clone()).collect();
    let shape = optimum::shape_key(&job.problem);
    let unit = Unit {
        arch: &job.arch,
        cons: &job.cons,
        problem: &job.problem,
        shape: &shape,
        configs: &configs,
        opts: &opts,
    };
    let (entries, used) = unit
        .entries(settings)
        .map_err(|e| Error::solver(&job.file, e))?;
    match used {
        CacheUse::Hit => {
            crate::notices::note("the optimum was read from the cache (verified)".into())
        }
        CacheUse::Rejected(why) => crate::notices::warn(format!("cache: {why}; recomputed")),
        CacheUse::Miss => {}
    }
    Ok(entries)
}

/// `qmap map`'s report of the best entry (least energy; the first choice when none has a
/// mapping), its mapping written where asked.
fn report(
    req: &MapRequest,
    job: &Job,
    entries: &[Entry],
    size: Option<f64>,
) -> Result<MapReport, Error> {
    let energy = |e: &Entry| e.energy_pj().unwrap_or(f64::INFINITY);
    let chosen = (0..entries.len())
        .min_by(|&a, &b| energy(&entries[a]).total_cmp(&energy(&entries[b])))
        .expect("one entry per bit choice");
    let opts = &job.choices[chosen].1;
    // The table's certificate: its mapping was evaluated at these bits when it was solved,
    // or again when its cache entry was checked.
    let mut cert = entries[chosen].cert.clone();
    cert.seconds = req.start.elapsed().as_secs_f64();
    (req.outputs).write(cert.mapping.as_ref(), job, opts)?;
    let text = MapText {
        found: Found {
            title: job.title.clone(),
            arch: job.arch.clone(),
            problem: job.problem.clone(),
            opts: opts.clone(),
            mapping: cert.mapping.clone(),
        },
        enumeration_size: optimum::enumeration_size(&job.space),
    };
    let ev = cert.evaluation.clone();
    Ok(MapReport {
        answer: Answer::new(job, chosen, cert.mapping.as_ref(), ev.clone(), size),
        bit_choices: job.choices.len(),
        budget: None,
        cycles: ev.as_ref().map(|e| e.cycles),
        energy_pj: ev.as_ref().map(|e| e.energy_pj),
        cert,
        text,
    })
}
