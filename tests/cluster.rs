//! The table across machines (issue 27): shards fill one cache and `qmap front` over it is the
//! merge; node-local caches merge with `qmap cache merge`; on a one-node Slurm cluster, an
//! array of 4 shards and a dependent front job give the same front as one process.
//!
//! The Slurm test uses the cluster `.ci/run` starts (`SLURM_CONF`), or starts one itself with
//! `tools/slurm/cluster.sh` when Slurm is installed and it runs as root; otherwise it says why
//! and skips.

mod common;

use common::{front_instance, qmap_in, root, scratch};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A six-layer network on the shipped Eyeriss with its constraints, bits {4, 8}, a proxy:
/// five distinct shapes (l5 repeats l3), so 10 jobs over the two tables `qmap front` builds.
fn instance(dir: &Path) -> PathBuf {
    front_instance(
        dir,
        "six",
        &[
            (
                "l1",
                "kind: conv2d, C: 8, M: 16, P: 14, Q: 14, R: 1, S: 1",
                40,
                40,
            ),
            (
                "l2",
                "kind: depthwise, G: 16, P: 14, Q: 14, R: 3, S: 3, pad: 1",
                80,
                20,
            ),
            (
                "l3",
                "kind: conv2d, C: 16, M: 16, P: 14, Q: 14, R: 1, S: 1",
                10,
                60,
            ),
            (
                "l4",
                "kind: conv2d, C: 16, M: 16, P: 14, Q: 14, R: 3, S: 3, pad: 1",
                50,
                10,
            ),
            (
                "l5",
                "kind: conv2d, C: 16, M: 16, P: 14, Q: 14, R: 1, S: 1",
                20,
                30,
            ),
            ("l6", "kind: fc, C: 3136, M: 10", 30, 30),
        ],
    )
}

/// `qmap front --json` over `cache`, wall times and cache counts left out.
fn front(dir: &Path, inst: &Path, cache: &Path) -> (serde_json::Value, String) {
    let out = qmap_in(
        dir,
        &[
            "front",
            inst.to_str().unwrap(),
            "--json",
            "--cache",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    strip(&mut v);
    (v, text)
}

/// Removes what differs between equal runs: wall times and how many units came from the cache.
fn strip(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("seconds") && !k.contains("cache"));
            m.values_mut().for_each(strip);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// `qmap front`'s terminal summary over `cache` (run before any JSON run on it): its table line
/// says how many distinct shapes came from the cache.
fn front_table_line(dir: &Path, inst: &Path, cache: &Path) -> String {
    let out = qmap_in(
        dir,
        &[
            "front",
            inst.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("table:"))
        .unwrap_or_default()
        .to_string()
}

fn jobs(dir: &Path, inst: &Path, cache: &Path) -> serde_json::Value {
    let out = qmap_in(
        dir,
        &[
            "table",
            inst.to_str().unwrap(),
            "--list-jobs",
            "--shards",
            "4",
            "--json",
            "--cache",
            cache.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn shards_into_one_cache_and_merged_node_caches_give_the_one_process_front() {
    let dir = scratch("cluster-shards");
    let inst = instance(&dir);
    let (one, _) = front(&dir, &inst, &dir.join("one"));
    let listed = jobs(&dir, &inst, &dir.join("shared"));
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 10, "{listed}");
    assert_eq!(listed["cached"], 0);
    // Four shard processes at once into one shared cache, and four into node-local caches.
    let qmap = env!("CARGO_BIN_EXE_qmap");
    let run = |cache: &Path, i: usize| {
        Command::new(qmap)
            .current_dir(&dir)
            .args(["table", inst.to_str().unwrap(), "--quiet", "--json"])
            .args([
                "--shard",
                &format!("{i}/4"),
                "--cache",
                cache.to_str().unwrap(),
            ])
            .spawn()
            .unwrap()
    };
    let shared: Vec<_> = (0..4).map(|i| run(&dir.join("shared"), i)).collect();
    let local: Vec<_> = (0..4)
        .map(|i| run(&dir.join(format!("node{i}")), i))
        .collect();
    let mut solved = 0;
    for child in shared.into_iter().chain(local) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        solved += 1;
    }
    assert_eq!(solved, 8);
    assert_eq!(jobs(&dir, &inst, &dir.join("shared"))["cached"], 10);
    let line = front_table_line(&dir, &inst, &dir.join("shared"));
    assert!(line.contains("5 distinct shapes (5 cached)"), "{line}");
    let (sharded, _) = front(&dir, &inst, &dir.join("shared"));
    assert_eq!(sharded, one, "4 shards give the one-process front");
    // Node-local caches merged.
    let merged = dir.join("merged");
    let mut args = vec!["cache".to_string(), "merge".into()];
    args.extend((0..4).map(|i| dir.join(format!("node{i}")).display().to_string()));
    args.extend([
        "--into".into(),
        merged.display().to_string(),
        "--json".into(),
    ]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = qmap_in(&dir, &args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["keys"].as_u64(), report["written"].as_u64()),
        (Some(10), Some(10))
    );
    let line = front_table_line(&dir, &inst, &merged);
    assert!(line.contains("5 distinct shapes (5 cached)"), "{line}");
    let (from_merge, _) = front(&dir, &inst, &merged);
    assert_eq!(
        from_merge, one,
        "merged node caches give the one-process front"
    );
}

#[test]
fn bad_shards_are_input_errors() {
    let dir = scratch("cluster-bad");
    let inst = instance(&dir);
    for (shard, says) in [
        ("4/4", "index counts from 0"),
        ("x/4", "not a whole number"),
        ("auto", "SLURM_ARRAY_TASK_COUNT"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_qmap"))
            .current_dir(&dir)
            .env_remove("SLURM_ARRAY_TASK_COUNT")
            .env_remove("SLURM_ARRAY_TASK_ID")
            .args(["table", inst.to_str().unwrap(), "--shard", shard])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{shard}: {err}");
        assert!(
            err.contains("--shard") && err.contains(says),
            "{shard}: {err}"
        );
    }
    let out = qmap_in(
        &dir,
        &[
            "table",
            inst.to_str().unwrap(),
            "--shard",
            "0/4",
            "--cache",
            "none",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "a shard needs a cache: {out:?}");
}

/// A Slurm cluster to submit to: the one `.ci/run` started (`SLURM_CONF`), or one this test
/// starts (and stops) with `tools/slurm/cluster.sh`; None (with the reason printed) when there
/// is none.
struct Cluster {
    conf: String,
    ours: bool,
}

impl Cluster {
    fn get() -> Option<Cluster> {
        let sinfo_ok = |conf: &str| {
            Command::new("sinfo")
                .env("SLURM_CONF", conf)
                .args(["-h", "-o", "%T"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("idle"))
        };
        if let Ok(conf) = std::env::var("SLURM_CONF") {
            if sinfo_ok(&conf) {
                return Some(Cluster { conf, ours: false });
            }
        }
        let script = root().join("tools/slurm/cluster.sh");
        let root_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        if !root_user || Command::new("sbatch").arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED: no Slurm cluster (SLURM_CONF unset) and Slurm is not installed here or \
                 this is not root (tools/slurm/install.sh, then tools/slurm/cluster.sh start)"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!("qmap-slurm-test-{}", std::process::id()));
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .env("QMAP_SLURM_DIR", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster.sh start: {out:?}");
        Some(Cluster {
            conf: dir.join("slurm.conf").display().to_string(),
            ours: true,
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.ours {
            let dir = Path::new(&self.conf).parent().unwrap().to_path_buf();
            let _ = Command::new("bash")
                .arg(root().join("tools/slurm/cluster.sh"))
                .arg("stop")
                .env("QMAP_SLURM_DIR", dir)
                .output();
        }
    }
}

#[test]
fn slurm_array_and_dependent_front_give_the_one_process_front() {
    let Some(cluster) = Cluster::get() else {
        return;
    };
    let dir = scratch("cluster-slurm");
    let inst = instance(&dir);
    let (one, _) = front(&dir, &inst, &dir.join("one"));
    let out = Command::new("bash")
        .arg(root().join("examples/slurm/submit.sh"))
        .args([inst.to_str().unwrap(), "cache", "4", "front.json"])
        .current_dir(&dir)
        .env("SLURM_CONF", &cluster.conf)
        .env("QMAP", env!("CARGO_BIN_EXE_qmap"))
        .output()
        .unwrap();
    assert!(out.status.success(), "submit.sh: {out:?}");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    // Wait for the queue to drain (the front job runs after the array).
    let start = std::time::Instant::now();
    loop {
        let q = Command::new("squeue")
            .env("SLURM_CONF", &cluster.conf)
            .args(["-h", "-o", "%i %T"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 600,
            "jobs still queued after 600 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let logs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("qmap-table-"))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert_eq!(logs.len(), 4, "one log per array task ({said})");
    // The array solved every job (so the front job only read the cache).
    let solved: usize = logs
        .iter()
        .filter_map(|l| {
            let rest = l.split_once("/4: ")?.1;
            rest.split_once(" of 10 jobs")?.0.parse::<usize>().ok()
        })
        .sum();
    assert_eq!(solved, 10, "the shards' jobs: {logs:?}");
    let text = std::fs::read_to_string(dir.join("front.json"))
        .unwrap_or_else(|e| panic!("no front.json ({e}); {said}; logs: {logs:?}"));
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    strip(&mut v);
    assert_eq!(v, one, "the array's front is the one-process front");
}
