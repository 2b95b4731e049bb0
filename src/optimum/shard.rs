//! The table across machines. Its units (one layer shape at every bit choice: the unit of work
//! and of the cache) become jobs with a cost estimate; a shard `i/N` takes a deterministic,
//! balanced share of them and solves it into the cache. No scheduler is needed and nothing is
//! sent back: the cache is the merge, and a table (or `qmap front`) over a cache holding every
//! unit reads them all, each entry verified as any cache read is ([`super::cache`]).

use super::*;

/// One job: a table unit.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The unit's cache key (the content hash its cache file is named by): the same on every
    /// machine for the same design, constraints, shape, bit choices and engine settings.
    pub key: String,
    /// The layers of this shape, by name.
    pub layers: Vec<String>,
    /// Bit choices solved together.
    pub bit_choices: usize,
    /// Packing classes among them (one MILP each when the MILP runs).
    pub packing_classes: usize,
    /// Factorisations × keep patterns of the mapspace ([`enumeration_size`]).
    pub size: f64,
    /// Whether the engine proves it by enumeration (else by the MILP).
    pub enumerates: bool,
    /// The cost estimate shards are balanced by ([`job_weight`]).
    pub weight: f64,
    /// Whether the cache directory holds a file under its key (checked when read).
    pub cached: bool,
}

/// A job's relative cost: ln(size) × classes^¼. Measured on the Simba MobileNetV2 front's
/// 62 jobs (2 cores): the time a unit takes hardly follows its size (depthwise spaces of
/// 10^7 are bounded in 3-5 s, pointwise ones of 10^6 take 10-30 s), so a log keeps the large
/// ones from dominating; pricing 125 packing classes instead of one took about 3 times as
/// long. With this weight the four shards' measured times were within 1.3 × of an even split
/// (size^0.8: 1.7 ×).
pub fn job_weight(size: f64, packing_classes: usize) -> f64 {
    size.max(2.0).ln() * (packing_classes.max(1) as f64).powf(0.25)
}

/// The jobs of the table of `inst` at the bit choices `configs`, one per distinct layer shape
/// in first-appearance order.
pub fn jobs(
    inst: &Instance,
    cons: &Constraints,
    configs: &[Option<BitConfig>],
    settings: &TableSettings,
) -> Result<Vec<Job>, String> {
    let (units, unit_of) = distinct_shapes(inst);
    units
        .par_iter()
        .enumerate()
        .map(|(u, (shape, rep))| {
            let layer = &inst.layers[*rep];
            let opts = unit_options(inst, *rep, configs);
            let unit = Unit {
                arch: &inst.arch,
                cons,
                problem: &layer.problem,
                shape,
                configs,
                opts: &opts,
            };
            let space = Mapspace::new(&layer.problem, &inst.arch, cons)
                .map_err(|e| format!("layer {}: {e}", layer.name))?;
            let size = enumeration_size(&space);
            let classes = packing_classes(&space, &opts);
            let enumerates = settings.engine.enumerates(&space, settings.enumerate_limit);
            let key = unit.cache_key(settings);
            let cached =
                (settings.cache_dir.as_ref()).is_some_and(|d| cache_path(d, &key).is_file());
            Ok(Job {
                key,
                layers: (unit_of.iter().enumerate())
                    .filter(|&(_, &x)| x == u)
                    .map(|(i, _)| inst.layers[i].name.clone())
                    .collect(),
                bit_choices: configs.len(),
                packing_classes: classes,
                size,
                enumerates,
                weight: job_weight(size, classes),
                cached,
            })
        })
        .collect()
}

/// One shard of an array of `count`: `index` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The environment variables array schedulers set to a task's index: Slurm (offset by
/// `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`), PBS Pro, Torque, Kubernetes
/// indexed jobs, HyperQueue.
pub const INDEX_VARIABLES: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "PBS_ARRAY_INDEX",
    "PBS_ARRAYID",
    "JOB_COMPLETION_INDEX",
    "HQ_TASK_ID",
];

impl Shard {
    /// Parses `i/N` (0 ≤ i < N), `auto` (Slurm's array: its task index and count) or `auto/N`
    /// (the index from any scheduler in [`INDEX_VARIABLES`], N given), reading the environment
    /// through `env`.
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let (index, count) = text.split_once('/').unwrap_or((text, ""));
        let number = |name: &str, v: &str| -> Result<usize, String> {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("{name} `{v}` is not a whole number"))
        };
        let count = match (index, count) {
            ("auto", "") => {
                let c = env("SLURM_ARRAY_TASK_COUNT").ok_or(
                    "`auto` takes the shard count from SLURM_ARRAY_TASK_COUNT, which is not set \
                     (not in a Slurm array?); other schedulers: `auto/N`",
                )?;
                number("SLURM_ARRAY_TASK_COUNT", &c)?
            }
            (_, "") => return Err("expected `i/N` (0 <= i < N), `auto` or `auto/N`".into()),
            (_, c) => number("the shard count", c)?,
        };
        let index = match index {
            "auto" => auto_index(&env)?,
            i => number("the shard index", i)?,
        };
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index counts from 0 and must be below the count"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// The array task's index, from the first scheduler variable set.
fn auto_index(env: &impl Fn(&str) -> Option<String>) -> Result<usize, String> {
    let read = |name: &str| -> Result<Option<usize>, String> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{name}=`{v}` is not a whole number"))
            })
            .transpose()
    };
    if let Some(id) = read("SLURM_ARRAY_TASK_ID")? {
        let min = read("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = read("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        return id.checked_sub(min).map(|d| d / step).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
        });
    }
    for name in &INDEX_VARIABLES[1..] {
        if let Some(i) = read(name)? {
            return Ok(i);
        }
    }
    Err(format!(
        "`auto`: none of {} is set (not in an array job?)",
        INDEX_VARIABLES.join(", ")
    ))
}

/// The shard of each job among `count`: the jobs taken largest weight first (ties by key),
/// each given to the shard with the least weight so far (the lowest index on ties). The
/// same jobs always give the same split, on every machine; the largest shard is within 4/3
/// of the best split's (the longest-processing-time rule).
pub fn assign(jobs: &[Job], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|&a, &b| {
        (jobs[b].weight.total_cmp(&jobs[a].weight)).then_with(|| jobs[a].key.cmp(&jobs[b].key))
    });
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard = vec![0; jobs.len()];
    for j in order {
        let s = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[s] += jobs[j].weight;
        shard[j] = s;
    }
    shard
}

/// What solving one job did.
#[derive(Debug, Clone, Serialize)]
pub struct JobRun {
    pub key: String,
    pub layers: Vec<String>,
    /// `hit` (read from the cache, every entry verified), `solved`, or `rejected` (a cache
    /// file that did not check out: solved again and stored).
    pub cache: &'static str,
    /// Entries proved optimal (or proved infeasible), of `bit_choices`.
    pub optimal: usize,
    pub bit_choices: usize,
    pub seconds: f64,
}

/// Solves the jobs `which` (indices into `jobs`, the jobs of the table at `configs`), their
/// entries from the cache when they check out, in parallel, into the settings' cache.
/// Returns what each did, in the order of `which`.
pub fn solve_jobs(
    inst: &Instance,
    cons: &Constraints,
    configs: &[Option<BitConfig>],
    settings: &TableSettings,
    jobs: &[Job],
    which: &[usize],
) -> Result<Vec<JobRun>, String> {
    let (units, _) = distinct_shapes(inst);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let runs: Vec<Result<JobRun, String>> = which
        .par_iter()
        .map(|&j| {
            let (key, rep) = &units[j];
            let (entries, used, seconds) = solve_shape(inst, cons, configs, settings, key, *rep)?;
            if settings.progress {
                // One line per job on stderr (a shard's log under a scheduler is a file).
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                eprintln!(
                    "table: job {n}/{} ({}) {} in {seconds:.1} s",
                    which.len(),
                    jobs[j].layers.join(","),
                    if used == CacheUse::Hit {
                        "read from the cache"
                    } else {
                        "solved"
                    }
                );
            }
            Ok(JobRun {
                key: jobs[j].key.clone(),
                layers: jobs[j].layers.clone(),
                cache: match used {
                    CacheUse::Hit => "hit",
                    CacheUse::Miss => "solved",
                    CacheUse::Rejected(_) => "rejected",
                },
                optimal: entries.iter().filter(|e| e.proof().optimal()).count(),
                bit_choices: entries.len(),
                seconds,
            })
        })
        .collect();
    runs.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: &str, weight: f64) -> Job {
        Job {
            key: key.into(),
            layers: vec![],
            bit_choices: 1,
            packing_classes: 1,
            size: weight,
            enumerates: true,
            weight,
            cached: false,
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn shards_are_balanced_deterministic_and_cover_every_job_once() {
        // Random weights over six orders of magnitude, as layer spaces are.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut checked = 0;
        for n_jobs in [1usize, 3, 7, 30, 200] {
            for count in [1usize, 2, 4, 7] {
                let jobs: Vec<Job> = (0..n_jobs)
                    .map(|i| {
                        job(
                            &format!("k{i:03}"),
                            10f64.powf((next() % 600) as f64 / 100.0),
                        )
                    })
                    .collect();
                let a = assign(&jobs, count);
                assert_eq!(a, assign(&jobs, count), "deterministic");
                let mut reversed = jobs.clone();
                reversed.reverse();
                let mut b = assign(&reversed, count);
                b.reverse();
                assert_eq!(a, b, "independent of the jobs' order");
                assert!(a.iter().all(|&s| s < count));
                let mut load = vec![0.0; count];
                for (j, &s) in a.iter().enumerate() {
                    load[s] += jobs[j].weight;
                }
                let total: f64 = jobs.iter().map(|j| j.weight).sum();
                let largest = jobs.iter().map(|j| j.weight).fold(0.0, f64::max);
                let lower = (total / count as f64).max(largest);
                let max = load.iter().cloned().fold(0.0, f64::max);
                assert!(max <= lower * 4.0 / 3.0 + 1e-9, "{max} vs bound {lower}");
                checked += 1;
            }
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn shard_specs_read_every_scheduler() {
        let none = env(&[]);
        assert_eq!(Shard::parse("2/4", &none), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "0/0", "x/4", "2", "auto", "auto/4", "-1/4"] {
            assert!(Shard::parse(bad, &none).is_err(), "{bad}");
        }
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::parse("auto", &slurm),
            Ok(Shard { index: 3, count: 4 })
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "5")]);
        assert_eq!(
            Shard::parse("auto/8", &k8s),
            Ok(Shard { index: 5, count: 8 })
        );
        assert!(
            Shard::parse("auto/4", &k8s).is_err(),
            "index past the count"
        );
        let pbs = env(&[("PBS_ARRAY_INDEX", "0")]);
        assert_eq!(
            Shard::parse("auto/2", &pbs),
            Ok(Shard { index: 0, count: 2 })
        );
    }
}
