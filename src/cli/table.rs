//! `qmap table` (the tables of an instance as shardable jobs) and `qmap cache merge`.

use super::{emit, OptimumArgs};
use crate::app::table::{self as app, TableError};
use crate::error::{Error, Outcome};
use crate::optimum::Shard;
use crate::report;
use std::path::PathBuf;

/// `qmap table`.
#[derive(clap::Args, Debug)]
pub struct TableArgs {
    /// Instance file (a network with a `front:` section: the tables `qmap front` reads;
    /// any other: the table `qmap baseline` reads).
    pub instance: PathBuf,
    /// List the jobs (one per layer shape and table) with their cost estimates, and how they
    /// split into --shards shards; solves nothing.
    #[arg(long, conflicts_with = "shard")]
    pub list_jobs: bool,
    /// With --list-jobs: the shard count to show the split for.
    #[arg(long, default_value_t = 1, requires = "list_jobs")]
    pub shards: usize,
    /// Solve one shard into --cache: `i/N` (i from 0 to N-1), `auto` (a Slurm array task:
    /// SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT), or `auto/N` (the index from Slurm,
    /// PBS, Kubernetes indexed jobs or HyperQueue). Jobs whose cache file checks out are read,
    /// not solved.
    #[arg(long, required_unless_present = "list_jobs")]
    pub shard: Option<String>,
    #[arg(long)]
    pub json: bool,
    /// No per-job progress lines on stderr (shown by default: a shard's log is a file).
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub optimum: OptimumArgs,
}

/// `qmap cache`.
#[derive(clap::Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// What to do with caches.
#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Merge caches (e.g. node-local ones) into one: the union of their units; where a unit is
    /// in several, the better-proven entry; two proven answers that differ are an error.
    Merge(MergeArgs),
}

/// `qmap cache merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The caches to merge.
    #[arg(required = true)]
    pub sources: Vec<PathBuf>,
    /// The cache to merge them into (created if absent; what it holds is kept).
    #[arg(long)]
    pub into: PathBuf,
    #[arg(long)]
    pub json: bool,
}

fn table_failure(a: &TableArgs, e: TableError) -> Error {
    match e {
        TableError::Input(e) => Error::Input(e),
        TableError::Solver(e) => Error::solver(&a.instance, e),
    }
}

/// `qmap table`.
pub fn table_cmd(a: TableArgs) -> Result<Outcome, Error> {
    let settings = a.optimum.settings(!a.quiet);
    if a.list_jobs {
        let r = app::list_jobs(&a.instance, &settings, a.shards.max(1))
            .map_err(|e| table_failure(&a, e))?;
        emit(format_args!(
            "{}",
            json_or(a.json, &r, report::table::jobs_text)
        ));
        return Ok(Outcome::Ok);
    }
    let spec = a.shard.as_deref().unwrap_or_default();
    let shard = Shard::parse(spec, |name| std::env::var(name).ok())
        .map_err(|why| crate::spec::InputError::new(&a.instance, "--shard", why))?;
    let r = app::run_shard(&a.instance, &settings, shard).map_err(|e| table_failure(&a, e))?;
    emit(format_args!(
        "{}",
        json_or(a.json, &r, report::table::shard_text)
    ));
    Ok(Outcome::Ok)
}

/// `qmap cache merge`.
pub fn cache_cmd(a: CacheArgs) -> Result<Outcome, Error> {
    let CacheCommand::Merge(m) = a.command;
    let r = app::merge_caches(&m.sources, &m.into)?;
    let text = |r: &crate::optimum::MergeReport| {
        format!(
            "qmap cache merge: {} files read ({} of another model version left out), {} units, \
             {} files written ({} entries improved) -> {}\n",
            r.files_read,
            r.stale,
            r.keys,
            r.written,
            r.improved_entries,
            m.into.display()
        )
    };
    emit(format_args!("{}", json_or(m.json, &r, text)));
    Ok(Outcome::Ok)
}

/// The report as pretty JSON (with a final newline), or as text.
fn json_or<T: serde::Serialize>(json: bool, r: &T, text: impl Fn(&T) -> String) -> String {
    if json {
        serde_json::to_string_pretty(r).expect("reports serialise") + "\n"
    } else {
        text(r)
    }
}
