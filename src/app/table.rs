//! `qmap table` and `qmap cache merge`: the per-layer optimum tables a later command reads,
//! computed in shards any array scheduler can run (Slurm, PBS, Kubernetes indexed jobs,
//! HyperQueue, `xargs -P`), with the cache as the merge.
//!
//! The tables are those the instance's own command builds: for an instance with a `front:`
//! section, the two `qmap front` builds (the network's bit choices, and uniform 16-bit); for
//! any other, the one `qmap baseline` builds (every allowed bit configuration, no weight budget). A
//! job is one table unit (a layer shape at all of its table's bit choices: one enumeration
//! prices them all), keyed by its cache file's content hash; a shard takes a deterministic
//! share balanced by the jobs' estimated cost ([`crate::optimum::assign`]).

use crate::instance::{self, BitConfig, Instance};
use crate::mapspace::Constraints;
use crate::optimum::{self, Job, JobRun, MergeReport, Shard, TableSettings};
use crate::spec::InputError;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A failure of `qmap table`.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Bad input: the instance, its front data, the shard, the cache directory.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A unit could not be solved: the solver's message.
    #[error("{0}")]
    Solver(String),
}

/// The tables of an instance and the jobs they make.
struct Tables {
    inst: Instance,
    cons: Constraints,
    lists: Vec<TableList>,
    /// Every job of every table, table by table.
    jobs: Vec<Job>,
}

/// One table: its name, its bit choices, and the range of its jobs in [`Tables::jobs`].
struct TableList {
    name: &'static str,
    configs: Vec<Option<BitConfig>>,
    range: std::ops::Range<usize>,
}

impl Tables {
    fn load(path: &Path, settings: &TableSettings) -> Result<Tables, TableError> {
        let inst = instance::load(path)?;
        let cons = inst.constraints()?;
        let named: Vec<(&'static str, Vec<Option<BitConfig>>)> = if inst.front.is_some() {
            let mut l = crate::app::codesign::table_bit_choices(path)?.into_iter();
            vec![
                ("front", l.next().unwrap_or_default()),
                ("uniform16", l.next().unwrap_or_default()),
            ]
        } else {
            vec![("baseline", crate::app::baseline::all_configs(&inst))]
        };
        let (mut lists, mut jobs) = (vec![], vec![]);
        for (name, configs) in named {
            let start = jobs.len();
            jobs.extend(
                optimum::jobs(&inst, &cons, &configs, settings).map_err(TableError::Solver)?,
            );
            lists.push(TableList {
                name,
                configs,
                range: start..jobs.len(),
            });
        }
        Ok(Tables {
            inst,
            cons,
            lists,
            jobs,
        })
    }
}

/// One job of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableJob {
    /// `front`, `uniform16` or `baseline`.
    pub table: &'static str,
    #[serde(flatten)]
    pub job: Job,
}

/// `qmap table --list-jobs`: every job, and how `shards` would split them.
#[derive(Debug, Clone, Serialize)]
pub struct JobsReport {
    pub instance: PathBuf,
    pub jobs: Vec<TableJob>,
    /// Jobs whose cache file is there already.
    pub cached: usize,
    /// The shard count asked for (`--shards`), and each shard's jobs and estimated weight.
    pub shards: Vec<ShardPlan>,
}

/// One shard's share.
#[derive(Debug, Clone, Serialize)]
pub struct ShardPlan {
    pub index: usize,
    pub jobs: usize,
    pub weight: f64,
}

/// Lists the jobs of the instance's tables and their split into `shards`.
pub fn list_jobs(
    path: &Path,
    settings: &TableSettings,
    shards: usize,
) -> Result<JobsReport, TableError> {
    let tables = Tables::load(path, settings)?;
    let assigned = optimum::assign(&tables.jobs, shards);
    let shards = (0..shards.max(1))
        .map(|index| ShardPlan {
            index,
            jobs: assigned.iter().filter(|&&s| s == index).count(),
            weight: (assigned.iter().zip(&tables.jobs))
                .filter(|(&s, _)| s == index)
                .map(|(_, j)| j.weight)
                .sum(),
        })
        .collect();
    let lists = &tables.lists;
    let table_of = |j: usize| (lists.iter().find(|l| l.range.contains(&j))).map_or("", |l| l.name);
    let jobs: Vec<TableJob> = (tables.jobs.into_iter().enumerate())
        .map(|(j, job)| TableJob {
            table: table_of(j),
            job,
        })
        .collect();
    Ok(JobsReport {
        instance: path.to_path_buf(),
        cached: jobs.iter().filter(|j| j.job.cached).count(),
        jobs,
        shards,
    })
}

/// `qmap table --shard i/N`: what the shard did.
#[derive(Debug, Clone, Serialize)]
pub struct ShardReport {
    pub instance: PathBuf,
    pub shard: Shard,
    /// Jobs in all the instance's tables.
    pub total_jobs: usize,
    pub runs: Vec<ShardRun>,
    pub seconds: f64,
}

/// One job the shard ran.
#[derive(Debug, Clone, Serialize)]
pub struct ShardRun {
    pub table: &'static str,
    #[serde(flatten)]
    pub run: JobRun,
}

/// Solves the jobs of `shard` into the settings' cache (a cache directory is required: it is
/// where the result goes). Jobs whose cache file checks out are read, not solved.
pub fn run_shard(
    path: &Path,
    settings: &TableSettings,
    shard: Shard,
) -> Result<ShardReport, TableError> {
    let start = std::time::Instant::now();
    let (settings, unusable) = optimum::usable_cache(settings);
    if settings.cache_dir.is_none() {
        let why = unusable.unwrap_or_else(|| "a shard writes its results to the cache".into());
        return Err(InputError::new(path, "--cache", why).into());
    }
    let tables = Tables::load(path, &settings)?;
    let assigned = optimum::assign(&tables.jobs, shard.count);
    let mut runs = vec![];
    for list in &tables.lists {
        let jobs = &tables.jobs[list.range.clone()];
        let which: Vec<usize> = (0..jobs.len())
            .filter(|j| assigned[list.range.start + j] == shard.index)
            .collect();
        let (inst, cons) = (&tables.inst, &tables.cons);
        let done = optimum::solve_jobs(inst, cons, &list.configs, &settings, jobs, &which)
            .map_err(TableError::Solver)?;
        runs.extend(done.into_iter().map(|run| ShardRun {
            table: list.name,
            run,
        }));
    }
    Ok(ShardReport {
        instance: path.to_path_buf(),
        shard,
        total_jobs: tables.jobs.len(),
        runs,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `qmap cache merge A B ... --into C` ([`optimum::merge`]).
pub fn merge_caches(sources: &[PathBuf], into: &Path) -> Result<MergeReport, InputError> {
    optimum::merge(sources, into).map_err(|why| InputError::new(into, "cache merge", why))
}
