//! Regression tests for qmap's edges (issue 20): the cache verified whole, outputs written like
//! a careful Unix tool, a closed stdout, `qmap gap` as a CI gate, and messages that name the
//! right file. Each defect listed in the issue has a test here that failed before the fix.

mod common;

use common::design::{ARCH as TL_ARCH, ERT as TL_ERT, PROBLEM as TL_PROBLEM};
use common::{json, qmap_in, root, scratch, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const NET: &str = "instances/eyeriss_mbv2_l7.yaml";

/// A scratch directory that sees the project's `instances/` and `models/`.
fn project_dir(name: &str) -> PathBuf {
    let dir = scratch(name);
    for d in ["instances", "models"] {
        std::os::unix::fs::symlink(root().join(d), dir.join(d)).unwrap();
    }
    dir
}

/// `qmap baseline` of b3_exp and b4_exp (one shape, one cache file) into `out` with `cache`.
fn baseline(dir: &Path, out: &str) -> std::process::Output {
    qmap_in(
        dir,
        &[
            "baseline",
            NET,
            "--layers",
            "b3_exp,b4_exp",
            "--out",
            out,
            "--cache",
            "cache",
        ],
    )
}

/// The energies of summary.csv's layer rows (layer, energy, status): its last row, the
/// network's totals, left out.
fn summary(dir: &Path, out: &str) -> Vec<(String, f64, String)> {
    let text = std::fs::read_to_string(dir.join(out).join("summary.csv")).unwrap();
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("(network),"), "{text}");
    text.lines()
        .skip(1)
        .filter(|l| !l.starts_with("(network),"))
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (c[0].to_string(), c[4].parse().unwrap(), c[6].to_string())
        })
        .collect()
}

/// The cache files under `dir` (in its two-hex-digit subdirectories).
fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for sub in std::fs::read_dir(dir).unwrap() {
        let sub = sub.unwrap().path();
        assert!(sub.is_dir(), "only subdirectories at the top: {sub:?}");
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "json") {
                files.push(f);
            }
        }
    }
    files
}

/// The one cache file, parsed, and a function writing it back.
fn cache_file(dir: &Path) -> (PathBuf, serde_json::Value) {
    let files = cache_files(&dir.join("cache"));
    assert_eq!(files.len(), 1, "{files:?}");
    let v = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    (files[0].clone(), v)
}

/// The first entry of a cache file (an object with `entries`; before issue 20, a bare list).
fn first_entry(v: &mut serde_json::Value) -> &mut serde_json::Value {
    if v.is_array() {
        &mut v[0]
    } else {
        &mut v["entries"][0]
    }
}

/// Every kind of bad cache entry is noticed (a warning with a count), recomputed, and the
/// answers are the proven optimum (b3_exp and b4_exp: 70.827 uJ).
#[test]
fn cache_entries_are_verified_whole() {
    let dir = project_dir("cache");
    let out = baseline(&dir, "b0");
    assert!(out.status.success(), "{}", stderr(&out));
    let optimum = summary(&dir, "b0")[0].1;
    assert!((optimum - 70_827_186.633_6).abs() < 1e-3, "{optimum}");
    let (file, good) = cache_file(&dir);
    // The hand-written mapping of b3_exp: valid, 76.736 uJ.
    let hand: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("instances/mappings/eyeriss_mbv2_b3_exp.yaml"))
            .unwrap(),
    )
    .unwrap();
    let hand = serde_json::to_value(&hand).unwrap();
    type Corruption = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Corruption)> = vec![
        (
            "a valid but suboptimal mapping, with its own energy and cycles",
            Box::new(move |v| {
                let e = first_entry(v);
                e["mapping"] = hand.clone();
                e["energy_pj"] = 76_736_000.0.into();
                e["cycles"] = 64_512.into();
            }),
        ),
        (
            "a cycle count of 1",
            Box::new(|v| first_entry(v)["cycles"] = 1.into()),
        ),
        (
            "a null entry (claims infeasible)",
            Box::new(|v| {
                let e = first_entry(v);
                e["mapping"] = serde_json::Value::Null;
                e["energy_pj"] = serde_json::Value::Null;
                e["cycles"] = serde_json::Value::Null;
                e["bound_pj"] = serde_json::Value::Null;
            }),
        ),
        (
            "wrong bit-widths",
            Box::new(|v| first_entry(v)["bits"] = serde_json::json!([4, 4, 4])),
        ),
        (
            "junk",
            Box::new(|v| *v = serde_json::json!({"hello": "world"})),
        ),
    ];
    for (i, (what, corrupt)) in cases.iter().enumerate() {
        let mut v = good.clone();
        corrupt(&mut v);
        std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
        let name = format!("b{}", i + 1);
        let out = baseline(&dir, &name);
        let err = stderr(&out);
        assert!(out.status.success(), "{what}: {err}");
        assert!(
            err.contains("warning: 1 cache problem"),
            "{what}: no warning: {err}"
        );
        let rows = summary(&dir, &name);
        assert_eq!(rows.len(), 2, "{what}: {rows:?}");
        for (layer, energy, status) in rows {
            assert!(
                (energy - optimum).abs() < 1e-3 && status == "optimal",
                "{what}: {layer} {energy} {status}"
            );
        }
        // Recomputed and stored again: the next run reads it without a warning.
        let out = baseline(&dir, &name);
        assert!(
            !stderr(&out).contains("warning"),
            "{what}: {}",
            stderr(&out)
        );
    }
    // An unusable cache directory (its parent is a file) is a warning, not silence.
    std::fs::write(dir.join("plain"), "x").unwrap();
    let out = qmap_in(
        &dir,
        &[
            "baseline",
            NET,
            "--layers",
            "b3_exp",
            "--out",
            "bx",
            "--cache",
            "plain/cache",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not usable"), "{}", stderr(&out));
}

/// `--out` through a symbolic link (the link stays, its target is written), into a FIFO (its
/// reader gets the mapping), over a 0600 file (it stays 0600); an output path checked before
/// the work (`front --svg missing/f.svg` fails at once).
#[test]
fn outputs_are_written_like_a_careful_unix_tool() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = project_dir("outputs");
    let map = |out: &str| {
        qmap_in(
            &dir,
            &["map", "instances/default.yaml", "--out", out, "--quiet"],
        )
    };
    std::fs::write(dir.join("target.yaml"), "old").unwrap();
    std::os::unix::fs::symlink("target.yaml", dir.join("link.yaml")).unwrap();
    assert!(map("link.yaml").status.success());
    assert!(std::fs::symlink_metadata(dir.join("link.yaml"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(dir.join("target.yaml"))
        .unwrap()
        .contains("mapping:"));
    std::fs::write(dir.join("private.yaml"), "old").unwrap();
    std::fs::set_permissions(
        dir.join("private.yaml"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert!(map("private.yaml").status.success());
    let mode = std::fs::metadata(dir.join("private.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read_to_string(fifo).unwrap()
    });
    assert!(map("fifo").status.success());
    assert!(reader.join().unwrap().contains("mapping:"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A device is written in place, never replaced; a full one is an error naming it.
    if Path::new("/dev/full").exists() {
        let out = map("/dev/full");
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("/dev/full"), "{}", stderr(&out));
        assert!(std::fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device());
    }
    // Checked before any work: no table is built, nothing is written.
    let out = qmap_in(
        &dir,
        &[
            "front",
            "instances/front_mbv2_eyeriss.yaml",
            "--svg",
            "missing/f.svg",
            "--cache",
            "none",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("missing/f.svg: --svg"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// A closed stdout (`qmap eval ... --json | head -c 10`) ends the run quietly with exit code
/// 0, as grep does; it used to panic with exit code 101.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args(["map", "instances/default.yaml", "--json"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

/// `qmap gap` as a CI gate: every layer needs a mapping by default; a misnamed file is named
/// with the nearest layer; `--max-gap 5` is refused; a broken mapping file fails its layer and
/// the report goes on; the JUnit file is written with every case's numbers.
#[test]
fn gap_is_a_strict_ci_gate() {
    let dir = project_dir("gap");
    std::fs::create_dir(dir.join("h")).unwrap();
    for l in ["conv1", "b1_dw"] {
        let out = qmap_in(
            &dir,
            &[
                "search",
                NET,
                "--layer",
                l,
                "--method",
                "random",
                "--samples",
                "300",
                "--timeloop-out",
                &format!("h/{l}.map.yaml"),
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    std::fs::copy(dir.join("h/b1_dw.map.yaml"), dir.join("h/b3exp.map.yaml")).unwrap();
    std::fs::write(dir.join("h/b1_pw.yaml"), "mapping: [{level: nope").unwrap();
    let out = qmap_in(
        &dir,
        &[
            "gap",
            NET,
            "--mappings",
            "h",
            "--junit",
            "gap.xml",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["pass"], false);
    assert_eq!(v["layers"].as_array().unwrap().len(), 53);
    assert_eq!(v["missing"].as_array().unwrap().len(), 50);
    assert!(stderr(&out).contains("b3exp.map.yaml: names no layer (did you mean `b3_exp`?)"));
    let pw = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "b1_pw")
        .unwrap();
    assert_eq!(pw["pass"], false);
    assert!(
        pw["reason"].as_str().unwrap().contains("b1_pw.yaml"),
        "{pw}"
    );
    let xml = std::fs::read_to_string(dir.join("gap.xml")).unwrap();
    assert!(
        xml.contains("tests=\"53\"") && xml.contains("<property name=\"optimum_pj\""),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"conv1\"") && xml.contains(" time=\""),
        "{xml}"
    );
    // A bare number above 1 is refused, with what it would mean.
    let out = qmap_in(&dir, &["gap", NET, "--mappings", "h", "--max-gap", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("500 %"), "{}", stderr(&out));
    // The JUnit file is written even when the check cannot run.
    let out = qmap_in(
        &dir,
        &[
            "gap",
            "missing.yaml",
            "--mappings",
            "h",
            "--junit",
            "err.xml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let xml = std::fs::read_to_string(dir.join("err.xml")).unwrap();
    assert!(
        xml.contains("<error") && xml.contains("missing.yaml"),
        "{xml}"
    );
}

/// Messages name the right file: a typo in an architecture file's bypass list names the
/// architecture file; a missing referenced file names the referencing file and field; long
/// values are cut; deep nesting is refused at once; a layer the constraints leave no mapping
/// is infeasible (exit 1) with the reason.
#[test]
fn messages_name_the_file_that_is_wrong() {
    let dir = project_dir("messages");
    let arch = std::fs::read_to_string(root().join("models/arch/eyeriss.yaml"))
        .unwrap()
        .replacen("bypass: [", "bypass: [Wieghts, ", 1);
    std::fs::write(dir.join("arch.yaml"), arch).unwrap();
    let inst = |arch: &str, extra: &str| {
        format!(
            "architecture: {arch}\nworkload:\n  layer: {{name: l, kind: conv2d, C: 8, M: 8, P: 8, Q: 8}}\nbits: {{inputs: 8, weights: 8, outputs: 8}}\n{extra}"
        )
    };
    std::fs::write(dir.join("a.yaml"), inst("arch.yaml", "")).unwrap();
    let out = qmap_in(&dir, &["map", "a.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error: arch.yaml: levels["),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("Wieghts"), "{}", stderr(&out));
    std::fs::write(dir.join("b.yaml"), inst("models/arch/nope.yaml", "")).unwrap();
    let out = qmap_in(&dir, &["map", "b.yaml"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains(
            "b.yaml: architecture: cannot read `models/arch/nope.yaml` (relative to b.yaml)"
        ),
        "{err}"
    );
    let long = "x".repeat(10_000);
    std::fs::write(dir.join("c.yaml"), inst(&long, "")).unwrap();
    let err = stderr(&qmap_in(&dir, &["map", "c.yaml"]));
    assert!(
        err.len() < 1_000 && err.contains("more characters"),
        "{} bytes",
        err.len()
    );
    let deep = format!("{}{}", "[".repeat(80_000), "]".repeat(80_000));
    std::fs::write(dir.join("d.yaml"), deep).unwrap();
    let start = std::time::Instant::now();
    let out = qmap_in(&dir, &["map", "d.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nested deeper than 128"),
        "{}",
        stderr(&out)
    );
    assert!(start.elapsed().as_secs_f64() < 5.0);
    let simba = "architecture: models/arch/simba.yaml\nconstraints: models/arch/simba_constraints.yaml\nworkload:\n  layer: {name: p, kind: conv2d, C: 64, M: 997, P: 7, Q: 7}\nbits: {inputs: 8, weights: 8, outputs: 8}\n";
    std::fs::write(dir.join("e.yaml"), simba).unwrap();
    let out = qmap_in(&dir, &["map", "e.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("status: infeasible"), "{text}");
    assert!(text.contains("no factorisation of M = 997"), "{text}");
}

/// A Timeloop design's optimum in `qmap gap` goes through the cache like an instance's (it
/// never did): the second run reads it.
#[test]
fn gap_on_a_timeloop_design_uses_the_cache() {
    let dir = scratch("gap-tl");
    std::fs::write(dir.join("arch.yaml"), TL_ARCH).unwrap();
    std::fs::write(dir.join("ert.yaml"), TL_ERT).unwrap();
    std::fs::write(dir.join("problem.yaml"), TL_PROBLEM).unwrap();
    let map = qmap_in(
        &dir,
        &[
            "map",
            "--timeloop",
            "arch.yaml",
            "problem.yaml",
            "ert.yaml",
            "--out",
            "best.yaml",
            "--quiet",
        ],
    );
    assert!(map.status.success(), "{}", stderr(&map));
    let gap = || {
        qmap_in(
            &dir,
            &[
                "gap",
                "--timeloop",
                "arch.yaml",
                "problem.yaml",
                "ert.yaml",
                "--mappings",
                "best.yaml",
                "--cache",
                "c",
                "--json",
            ],
        )
    };
    let first = gap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let files = cache_files(&dir.join("c")).len();
    assert_eq!(files, 1, "one cache file for the design's one layer");
    // The second run reads the file: a junk one is noticed (and replaced).
    let file = cache_files(&dir.join("c")).remove(0);
    std::fs::write(&file, "junk").unwrap();
    let second = gap();
    assert!(
        stderr(&second).contains("1 cache problem"),
        "{}",
        stderr(&second)
    );
    let (a, b) = (json(&first), json(&second));
    for k in [
        "heuristic_pj",
        "optimum_pj",
        "gap",
        "optimum_status",
        "pass",
    ] {
        assert_eq!(a["layers"][0][k], b["layers"][0][k], "{k}");
    }
    let third = gap();
    assert!(!stderr(&third).contains("cache"), "{}", stderr(&third));
}

/// A layer the constraints leave no mapping is infeasible with its reason, exit code 1, in
/// `baseline` and `front` as in `map` (it was a bad-input error, exit code 2).
#[test]
fn an_infeasible_layer_exits_1_with_its_reason_everywhere() {
    let dir = project_dir("infeasible");
    std::fs::write(
        dir.join("net.yaml"),
        "name: two\nlayers:\n  - {name: a, kind: conv2d, C: 64, M: 64, P: 7, Q: 7}\n  - {name: b, kind: conv2d, C: 64, M: 997, P: 7, Q: 7}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("acc.yaml"),
        "kind: proxy\nfull_precision_accuracy: 70\nsource: test\nlayers:\n  - {name: a, weight_sensitivity: 10, activation_sensitivity: 10}\n  - {name: b, weight_sensitivity: 10, activation_sensitivity: 10}\n",
    )
    .unwrap();
    let head = "architecture: models/arch/simba.yaml\nconstraints: models/arch/simba_constraints.yaml\nworkload: {network: net.yaml}\n";
    std::fs::write(
        dir.join("b.yaml"),
        format!("{head}bits: {{inputs: 8, weights: 8, outputs: 8}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("f.yaml"),
        format!("{head}bits: {{inputs: [4, 8], weights: [4, 8], outputs: [4, 8]}}\nfront: {{accuracy: acc.yaml}}\n"),
    )
    .unwrap();
    for args in [
        vec!["baseline", "b.yaml", "--out", "out", "--cache", "none"],
        vec!["front", "f.yaml", "--cache", "none"],
    ] {
        let out = qmap_in(&dir, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("layer b") && text.contains("infeasible") && text.contains("M = 997"),
            "{args:?}: {text}"
        );
    }
}
