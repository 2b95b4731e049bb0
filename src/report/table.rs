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
    let header = [
        "table", "key", "bits", "classes", "size", "engine", "weight", "cached",
    ];
    s.push_str(&job_row(header.map(String::from), "layers"));
    for j in &r.jobs {
        let engine = if j.job.enumerates {
            "enumerate"
        } else {
            "milp"
        };
        let cells = [
            j.table.to_string(),
            j.job.key[..16.min(j.job.key.len())].to_string(),
            j.job.bit_choices.to_string(),
            j.job.packing_classes.to_string(),
            format!("{:.3e}", j.job.size),
            engine.to_string(),
            format!("{:.3e}", j.job.weight),
            (if j.job.cached { "yes" } else { "no" }).to_string(),
        ];
        s.push_str(&job_row(cells, &j.job.layers.join(",")));
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

/// One line of the job list: its columns, then the layers.
fn job_row(c: [String; 8], layers: &str) -> String {
    format!(
        "{:<10} {:<16} {:>5} {:>8} {:>11} {:<9} {:>10} {:<6} {layers}\n",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    )
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
