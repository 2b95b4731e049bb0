//! Text for `qmap table`: the job list with its shard split, and what a shard did.

use crate::app::table::{JobsReport, ShardReport};
use std::fmt::Write;

/// The job list: one row per job, then each shard's share.
pub fn jobs_text(r: &JobsReport) -> String {
    let mut s = format!(
        "qmap table: {} jobs ({} with a cache file) for {}\n",
        r.jobs.len(),
        r.cached,
        r.instance.display()
    );
    let _ = writeln!(
        s,
        "{:<10} {:<16} {:>5} {:>8} {:>11} {:<9} {:>10} {:<6} layers",
        "table", "key", "bits", "classes", "size", "engine", "weight", "cached"
    );
    for j in &r.jobs {
        let _ = writeln!(
            s,
            "{:<10} {:<16} {:>5} {:>8} {:>11.3e} {:<9} {:>10.3e} {:<6} {}",
            j.table,
            &j.job.key[..16.min(j.job.key.len())],
            j.job.bit_choices,
            j.job.packing_classes,
            j.job.size,
            if j.job.enumerates {
                "enumerate"
            } else {
                "milp"
            },
            j.job.weight,
            if j.job.cached { "yes" } else { "no" },
            j.job.layers.join(",")
        );
    }
    let total: f64 = r.shards.iter().map(|p| p.weight).sum();
    for p in &r.shards {
        let _ = writeln!(
            s,
            "shard {}/{}: {} jobs, {:.1} % of the estimated work",
            p.index,
            r.shards.len(),
            p.jobs,
            100.0 * p.weight / total.max(f64::MIN_POSITIVE)
        );
    }
    s
}

/// What a shard did: a summary line, then one row per job.
pub fn shard_text(r: &ShardReport) -> String {
    let hits = r.runs.iter().filter(|j| j.run.cache == "hit").count();
    let mut s = format!(
        "qmap table: shard {}/{}: {} of {} jobs ({} from the cache, {} solved) in {:.1} s\n",
        r.shard.index,
        r.shard.count,
        r.runs.len(),
        r.total_jobs,
        hits,
        r.runs.len() - hits,
        r.seconds
    );
    for j in &r.runs {
        let _ = writeln!(
            s,
            "  {:<10} {:<16} {:<8} {:>3}/{:<3} optimal {:>8.2} s  {}",
            j.table,
            &j.run.key[..16.min(j.run.key.len())],
            j.run.cache,
            j.run.optimal,
            j.run.bit_choices,
            j.run.seconds,
            j.run.layers.join(",")
        );
    }
    s
}
