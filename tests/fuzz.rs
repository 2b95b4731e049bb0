//! A fuzz test of every input kind qmap reads: mutations of the shipped instances,
//! architectures, constraints, networks, mappings and accuracy tables, and of a small Timeloop
//! design in each of its file kinds (arch, ERT, problem, constraints, map.yaml, map.txt,
//! stats.txt), run through the command line (or, for accuracy tables, the loader in process).
//! Whatever the mutation: no panic, no exit code outside 0/1/2, no hang (a case taking
//! `HANG_SECONDS` fails), and every error names a file.
//!
//! `QMAP_FUZZ_CASES` (default 4000) cases from a fixed seed (`QMAP_FUZZ_SEED`), spread over the
//! kinds; two cases run at a time.

mod common;

use common::design::{
    ARCH as TL_ARCH, CONSTRAINTS as TL_CONSTRAINTS, ERT as TL_ERT, MAP_TXT as TL_MAP_TXT,
    MAP_YAML as TL_MAP_YAML, PROBLEM as TL_PROBLEM, STATS_TXT as TL_STATS_TXT,
};
use common::{root, scratch};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A case running longer than this is a hang.
const HANG_SECONDS: u64 = 30;

/// One input kind: the files of a case (name, text), one of them mutated, and the command
/// line that reads them.
struct Kind {
    name: &'static str,
    /// (file name, text); the first is the one mutated.
    files: Vec<(String, String)>,
    args: Vec<String>,
}

fn shipped(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

/// The kinds: each shipped file kind behind the command that reads it.
fn kinds() -> Vec<Kind> {
    let r = root().display().to_string();
    let abs = |text: String| {
        text.replace("../", &format!("{r}/")).replace(
            "mapping: mappings/",
            &format!("mapping: {r}/instances/mappings/"),
        )
    };
    let s = |x: &str| x.to_string();
    let search = |inst: &str| -> Vec<String> {
        [
            "search",
            inst,
            "--method",
            "random",
            "--samples",
            "30",
            "--time-limit",
            "3",
            "--quiet",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let inst_with = |arch: &str, net: &str, cons: &str| {
        format!(
            "architecture: {arch}\nworkload:\n  network: {net}\n  select: b3_exp\nconstraints: {cons}\nbits: {{inputs: 8, weights: 8, outputs: 8}}\npacking: seed\n"
        )
    };
    let eyeriss_inst = inst_with(
        &format!("{r}/models/arch/eyeriss.yaml"),
        &format!("{r}/models/nets/mobilenet_v2.yaml"),
        &format!("{r}/models/arch/eyeriss_constraints.yaml"),
    );
    let tl = |mutated: &str| -> Vec<(String, String)> {
        let all = [
            ("arch.yaml", TL_ARCH),
            ("ert.yaml", TL_ERT),
            ("problem.yaml", TL_PROBLEM),
            ("map.yaml", TL_MAP_YAML),
            ("map.txt", TL_MAP_TXT),
            ("stats.txt", TL_STATS_TXT),
            ("constraints.yaml", TL_CONSTRAINTS),
        ];
        let mut v: Vec<(String, String)> = all
            .iter()
            .filter(|(n, _)| *n == mutated)
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        v.extend(
            all.iter()
                .filter(|(n, _)| *n != mutated)
                .map(|(n, t)| (n.to_string(), t.to_string())),
        );
        v
    };
    let tl_eval = |map: &str| -> Vec<String> {
        [
            "eval",
            "--timeloop",
            "arch.yaml",
            "problem.yaml",
            map,
            "ert.yaml",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let tl_gap = |map: &str| -> Vec<String> {
        [
            "gap",
            "--timeloop",
            "arch.yaml",
            "problem.yaml",
            "ert.yaml",
            "--mappings",
            map,
            "--cache",
            "none",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let mut kinds = vec![];
    for f in [
        "default",
        "eyeriss_mbv2_l7",
        "simba_mbv2_l7",
        "front_mbv1_eyeriss",
    ] {
        kinds.push(Kind {
            name: "instance",
            files: vec![(s("inst.yaml"), abs(shipped(&format!("instances/{f}.yaml"))))],
            args: vec![s("eval"), s("inst.yaml")],
        });
    }
    for (arch, net, cons) in [
        ("eyeriss", "mobilenet_v2", "eyeriss"),
        ("simba", "mobilenet_v1", "simba"),
    ] {
        let inst = inst_with(
            "arch.yaml",
            &format!("{r}/models/nets/{net}.yaml"),
            &format!("{r}/models/arch/{cons}_constraints.yaml"),
        )
        .replace("select: b3_exp", "select: 2");
        kinds.push(Kind {
            name: "architecture",
            files: vec![
                (s("arch.yaml"), shipped(&format!("models/arch/{arch}.yaml"))),
                (s("inst.yaml"), inst),
            ],
            args: search("inst.yaml"),
        });
    }
    kinds.push(Kind {
        name: "constraints",
        files: vec![
            (
                s("cons.yaml"),
                shipped("models/arch/simba_constraints.yaml"),
            ),
            (
                s("inst.yaml"),
                inst_with(
                    &format!("{r}/models/arch/simba.yaml"),
                    &format!("{r}/models/nets/mobilenet_v2.yaml"),
                    "cons.yaml",
                ),
            ),
        ],
        args: search("inst.yaml"),
    });
    kinds.push(Kind {
        name: "network",
        files: vec![
            (s("net.yaml"), shipped("models/nets/mobilenet_v2.yaml")),
            (
                s("inst.yaml"),
                inst_with(
                    &format!("{r}/models/arch/eyeriss.yaml"),
                    "net.yaml",
                    &format!("{r}/models/arch/eyeriss_constraints.yaml"),
                )
                .replace("select: b3_exp", "select: 3"),
            ),
        ],
        args: search("inst.yaml"),
    });
    kinds.push(Kind {
        name: "mapping",
        files: vec![
            (
                s("map.yaml"),
                shipped("instances/mappings/eyeriss_mbv2_b3_exp.yaml"),
            ),
            (s("inst.yaml"), eyeriss_inst.clone()),
        ],
        args: vec![s("eval"), s("inst.yaml"), s("--mapping"), s("map.yaml")],
    });
    for (file, args) in [
        ("arch.yaml", tl_eval("map.yaml")),
        ("ert.yaml", tl_eval("map.yaml")),
        ("problem.yaml", tl_eval("map.yaml")),
        ("map.yaml", tl_eval("map.yaml")),
        ("map.txt", tl_gap("map.txt")),
        ("stats.txt", tl_gap("stats.txt")),
        (
            "constraints.yaml",
            ["search-tl"].iter().map(|x| x.to_string()).collect(),
        ),
    ] {
        let args = if args[0] == "search-tl" {
            [
                "map",
                "--timeloop",
                "arch.yaml",
                "problem.yaml",
                "ert.yaml",
                "--constraints",
                "constraints.yaml",
                "--time-limit",
                "3",
                "--quiet",
            ]
            .iter()
            .map(|x| x.to_string())
            .collect()
        } else {
            args
        };
        kinds.push(Kind {
            name: "timeloop",
            files: tl(file),
            args,
        });
    }
    kinds
}

/// A mutation of `text`: a few edits among deletions, duplications, swaps, truncations,
/// extreme, large or malformed numbers, stray YAML punctuation, deep nesting, indentation
/// changes and typos.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let edits = rng.random_range(1..4);
    for _ in 0..edits {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..13) {
            11 => {
                // Deep nesting (the parser is quadratic in depth; qmap refuses it first).
                let d = rng.random_range(100..20_000);
                lines[i] = format!("{}{}", "[".repeat(d), "]".repeat(d));
            }
            12 => {
                // A large size where a number was: a huge mapspace or a long loop.
                const BIG: &[&str] = &["65536", "1048576", "4096", "3003", "999983", "16777216"];
                let v = BIG[rng.random_range(0..BIG.len())];
                lines[i] = replace_number(&lines[i], v, rng);
            }
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
            3 => lines.truncate(i),
            4 => {
                const EXTREME: &[&str] = &[
                    "0",
                    "-1",
                    "-7",
                    "1e308",
                    "nan",
                    ".inf",
                    "18446744073709551615",
                    "9223372036854775807",
                    "4294967296",
                    "3.5",
                    "abc",
                    "\"\"",
                    "[]",
                    "{}",
                    "null",
                    "0x10",
                    "1_000",
                ];
                let v = EXTREME[rng.random_range(0..EXTREME.len())];
                lines[i] = replace_number(&lines[i], v, rng);
            }
            5 => {
                const STRAY: &[&str] = &[
                    "[", "]", "{", "}", ":", "- ", "'", "\"", "#", "&a", "*a", "!!str", "\t",
                ];
                let s = STRAY[rng.random_range(0..STRAY.len())];
                let at = rng.random_range(0..=lines[i].len());
                if lines[i].is_char_boundary(at) {
                    lines[i].insert_str(at, s);
                }
            }
            6 => lines[i] = format!("  {}", lines[i]),
            7 => lines[i] = lines[i].trim_start().to_string(),
            8 => {
                // A typo in a word: one letter dropped.
                if let Some(p) = lines[i].find(|c: char| c.is_ascii_alphabetic()) {
                    lines[i].remove(p);
                }
            }
            9 => {
                let l = lines[i].clone();
                let k = rng.random_range(0..lines.len());
                lines.insert(k, l);
            }
            _ => {
                let n = rng.random_range(1..20);
                lines[i] = lines[i].repeat(n);
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `line` with one of its numbers replaced by `v` (or `v` appended when it has none).
fn replace_number(line: &str, v: &str, rng: &mut ChaCha8Rng) -> String {
    let spans: Vec<(usize, usize)> = {
        let b = line.as_bytes();
        let mut out = vec![];
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() {
                let s = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                out.push((s, i));
            } else {
                i += 1;
            }
        }
        out
    };
    if spans.is_empty() {
        return format!("{line} {v}");
    }
    let (s, e) = spans[rng.random_range(0..spans.len())];
    format!("{}{v}{}", &line[..s], &line[e..])
}

/// Runs `args` in `dir` with a hang limit: (exit code, stderr, seconds); None when it hung.
fn run(dir: &Path, args: &[String]) -> Option<(Option<i32>, String, f64)> {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let limit = Duration::from_secs(HANG_SECONDS);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            return Some((out.status.code(), err, start.elapsed().as_secs_f64()));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The files an error may name: the case's own and the shipped ones it reads.
fn names_a_file(err: &str, files: &[(String, String)]) -> bool {
    let first = err.lines().next().unwrap_or("");
    files.iter().any(|(n, _)| first.contains(n.as_str()))
        || first.contains(".yaml")
        || first.contains(".txt")
        || first.contains("(command line)")
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    ok: usize,
    infeasible_or_failed: usize,
    input_errors: usize,
    slowest: f64,
}

#[test]
fn mutated_inputs_never_panic_hang_or_exit_oddly() {
    let n: usize = std::env::var("QMAP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let seed: u64 = std::env::var("QMAP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let kinds = kinds();
    let accuracy = [
        "models/accuracy/mobilenet_v1_proxy.yaml",
        "models/accuracy/mobilenet_v2_proxy.yaml",
    ];
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (kinds, failures) = (&kinds, &failures);
                scope.spawn(move || {
                    let mut t = Tally::default();
                    let dir = scratch(&format!("fuzz{w}"));
                    let mut rng = ChaCha8Rng::seed_from_u64(seed * 2 + w as u64);
                    for i in (w..n).step_by(2) {
                        // One case in eight is an accuracy table, loaded in process.
                        if i % 8 == 7 {
                            let text = mutate(&shipped(accuracy[i % 2]), &mut rng);
                            let f = dir.join("acc.yaml");
                            std::fs::write(&f, &text).unwrap();
                            let r =
                                std::panic::catch_unwind(|| qmap::front::AccuracyModel::load(&f));
                            match r {
                                Err(_) => failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("accuracy case {i}: panic\n{text}")),
                                Ok(Err(e)) if !e.to_string().contains("acc.yaml") => failures
                                    .lock()
                                    .unwrap()
                                    .push(format!("accuracy case {i}: {e}")),
                                Ok(_) => {}
                            }
                            t.cases += 1;
                            continue;
                        }
                        let k = &kinds[rng.random_range(0..kinds.len())];
                        let mutated = mutate(&k.files[0].1, &mut rng);
                        for (j, (name, text)) in k.files.iter().enumerate() {
                            let body = if j == 0 { &mutated } else { text };
                            std::fs::write(dir.join(name), body).unwrap();
                        }
                        t.cases += 1;
                        let Some((code, err, secs)) = run(&dir, &k.args) else {
                            failures.lock().unwrap().push(format!(
                                "{} case {i}: hung ({HANG_SECONDS} s): {:?}\n{mutated}",
                                k.name, k.args
                            ));
                            continue;
                        };
                        t.slowest = t.slowest.max(secs);
                        let bad = match code {
                            Some(0) => {
                                t.ok += 1;
                                None
                            }
                            Some(1) => {
                                t.infeasible_or_failed += 1;
                                None
                            }
                            Some(2) => {
                                t.input_errors += 1;
                                (!names_a_file(&err, &k.files))
                                    .then(|| format!("error names no file: {err}"))
                            }
                            other => Some(format!("exit code {other:?}")),
                        };
                        let bad =
                            bad.or_else(|| err.contains("panicked").then(|| "panic".to_string()));
                        if let Some(why) = bad {
                            failures.lock().unwrap().push(format!(
                                "{} case {i} ({:?}): {why}\nstderr: {err}\nmutated {}:\n{mutated}",
                                k.name, k.args, k.files[0].0
                            ));
                        }
                    }
                    t
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let total = Tally {
        cases: tallies.iter().map(|t| t.cases).sum(),
        ok: tallies.iter().map(|t| t.ok).sum(),
        infeasible_or_failed: tallies.iter().map(|t| t.infeasible_or_failed).sum(),
        input_errors: tallies.iter().map(|t| t.input_errors).sum(),
        slowest: tallies.iter().map(|t| t.slowest).fold(0.0, f64::max),
    };
    eprintln!("fuzz: {total:?}");
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed; the first:\n{}",
        failures.len(),
        total.cases,
        failures
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n-----\n")
    );
    // The mutations reach every outcome.
    assert!(total.ok > n / 20 && total.input_errors > n / 5, "{total:?}");
}
