//! Baselines and regression checks end to end: `qmap gap` on a directory holding an optimal, a
//! suboptimal and an invalid mapping (gaps, verdicts, exit codes, JSON and JUnit XML), the same
//! on a Timeloop-format design, `qmap export` → `qmap gap` agreeing with `qmap eval`, `qmap
//! baseline` files and certificates, and the README's CI example run as written.

mod common;

use common::{json, qmap_in, root, scratch, stdout};
use std::path::PathBuf;
use std::process::Command;

/// Checks that `text` is well-formed XML and returns (test cases, failures) it lists.
fn junit_counts(text: &str) -> (usize, usize, Vec<String>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut cases, mut failures, mut names) = (0, 0, vec![]);
    let mut depth = 0i32;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                cases += 1;
                let name = e
                    .try_get_attribute("name")
                    .unwrap()
                    .expect("a test case has a name");
                names.push(String::from_utf8_lossy(&name.value).into_owned());
                if matches!(reader.read_event(), Ok(Event::End(_))) {
                    // <testcase ...></testcase> without a failure: nothing to count
                }
            }
            Event::Start(e) if e.name().as_ref() == b"failure" => {
                failures += 1;
                depth += 1;
            }
            Event::End(e) if e.name().as_ref() == b"failure" => depth -= 1,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);
    (cases, failures, names)
}

const HAND_WRITTEN: &str = "instances/mappings/eyeriss_mbv2_b3_exp.yaml";

#[test]
fn gap_reports_optimal_suboptimal_and_invalid_mappings() {
    let dir = scratch("gap");
    let inst = root().join("instances/eyeriss_mbv2_l7.yaml");
    let inst = inst.to_str().unwrap();
    let maps = dir.join("maps");
    std::fs::create_dir_all(&maps).unwrap();
    // conv1: the exhaustive optimum (qmap format).
    let out = qmap_in(
        &dir,
        &[
            "search",
            inst,
            "--layer",
            "conv1",
            "--method",
            "exhaustive",
            "--out",
            maps.join("conv1.yaml").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // b4_exp (the shape of b3_exp): the hand-written mapping, 76.736 uJ against 70.827 uJ.
    let hand = std::fs::read_to_string(root().join(HAND_WRITTEN)).unwrap();
    std::fs::write(maps.join("b4_exp.yaml"), &hand).unwrap();
    // b3_exp: the same with all of M at the psum scratchpad: 72 words in a 24-word buffer.
    let invalid = hand
        .replace("temporal: M16", "temporal: M144")
        .replace("temporal: M9 Q2", "temporal: Q2");
    assert_ne!(invalid, hand);
    std::fs::write(maps.join("b3_exp.yaml"), invalid).unwrap();
    let cache = dir.join("cache");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "gap",
            inst,
            "--mappings",
            maps.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--layers",
            "conv1,b3_exp,b4_exp",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let junit = dir.join("gap.xml");
    let a = args(&["--json", "--junit", junit.to_str().unwrap()]);
    let out = qmap_in(&dir, &a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1), "a failing layer exits with 1");
    let v = json(&out);
    assert_eq!(v["pass"], false);
    let layers = v["layers"].as_array().unwrap();
    let by_name = |n: &str| layers.iter().find(|l| l["name"] == n).unwrap().clone();
    assert_eq!(layers.len(), 3);
    let c = by_name("conv1");
    assert_eq!(c["valid"], true);
    assert_eq!(c["gap"].as_f64().unwrap(), 0.0);
    assert_eq!(c["heuristic_pj"], c["optimum_pj"]);
    assert_eq!(c["pass"], true);
    let s = by_name("b4_exp");
    assert_eq!(s["valid"], true);
    assert!((s["heuristic_pj"].as_f64().unwrap() - 76_736_000.0).abs() < 1_000.0);
    assert!((s["optimum_pj"].as_f64().unwrap() - 70_827_186.633_6).abs() < 1e-3);
    let g = s["gap"].as_f64().unwrap();
    assert!((g - (76.736 / 70.827 - 1.0)).abs() < 1e-3, "{g}");
    assert_eq!(s["pass"], false);
    let i = by_name("b3_exp");
    assert_eq!(i["valid"], false);
    assert!(i["gap"].is_null());
    let reason = i["reason"].as_str().unwrap();
    assert!(
        reason.contains("psum_spad") && reason.contains("capacity"),
        "{reason}"
    );
    // JUnit: well-formed, three cases, two failures.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let (cases, failures, names) = junit_counts(&xml);
    assert_eq!((cases, failures), (3, 2), "{xml}");
    assert!(names.contains(&"b4_exp".to_string()));
    // With a 10% threshold only the invalid mapping fails; without it everything passes.
    let a = args(&["--max-gap", "10%", "--json"]);
    let v = json(&qmap_in(
        &dir,
        &a.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    ));
    assert_eq!(by_name_in(&v, "b4_exp")["pass"], true);
    assert_eq!(by_name_in(&v, "b3_exp")["pass"], false);
    // A layer asked for without a mapping fails (issue 20: it used to pass unseen); with
    // --allow-missing it is only listed.
    std::fs::remove_file(maps.join("b3_exp.yaml")).unwrap();
    let a = args(&["--max-gap", "0.1"]);
    let out = qmap_in(&dir, &a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("no mapping for 1 layer(s): b3_exp"),
        "{}",
        stdout(&out)
    );
    let a = args(&["--max-gap", "0.1", "--allow-missing"]);
    let out = qmap_in(&dir, &a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("2 of 2 layers within the gap"));
    // Bad threshold: input error.
    let a = args(&["--max-gap", "five"]);
    let out = qmap_in(&dir, &a.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-gap"));
}

fn by_name_in(v: &serde_json::Value, n: &str) -> serde_json::Value {
    v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == n)
        .unwrap()
        .clone()
}

#[test]
fn export_then_gap_agrees_with_eval() {
    let dir = scratch("export");
    let inst = root().join("instances/default.yaml");
    let inst = inst.to_str().unwrap();
    let tl = dir.join("b3_exp.map.yaml");
    let out = qmap_in(&dir, &["export", inst, "--out", tl.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&tl).unwrap();
    assert!(text.contains("problem:") && text.contains("mapping:") && text.contains("bitwidths"));
    let eval = json(&qmap_in(&dir, &["eval", inst, "--json"]));
    let gap = json(&qmap_in(
        &dir,
        &[
            "gap",
            inst,
            "--mappings",
            tl.to_str().unwrap(),
            "--json",
            "--max-gap",
            "50%",
            "--cache",
            "none",
        ],
    ));
    let l = &gap["layers"][0];
    assert_eq!(l["name"], "b3_exp");
    assert_eq!(l["heuristic_pj"], eval["energy_pj"]);
    assert!(l["optimum_pj"].as_f64().unwrap() <= l["heuristic_pj"].as_f64().unwrap());
}

#[test]
fn gap_on_a_timeloop_design_and_mapper_output() {
    let ex = root().join("../shared/reference/timeloop_exercises/eyeriss_like");
    if !ex.exists() {
        eprintln!("skipped: ../shared/reference is not present");
        return;
    }
    let dir = scratch("timeloop");
    // A timeloop-mapper output directory: the reference mapper's map.txt as it is.
    let mapper_out = dir.join("mapper");
    std::fs::create_dir_all(&mapper_out).unwrap();
    std::fs::copy(
        ex.join("ref-timeloop-mapper.map.txt"),
        mapper_out.join("timeloop-mapper.map.txt"),
    )
    .unwrap();
    let p = |f: &str| ex.join(f).display().to_string();
    let out = qmap_in(
        &dir,
        &[
            "gap",
            "--timeloop",
            &p("arch.yaml"),
            &p("problem.yaml"),
            &p("ERT.yaml"),
            "--constraints",
            &p("constraints.v3-hyphen.yaml"),
            "--mappings",
            mapper_out.to_str().unwrap(),
            "--max-gap",
            "50%",
            "--json",
            "--time-limit",
            "60",
        ],
    );
    let v = json(&out);
    let l = &v["layers"][0];
    assert_eq!(l["valid"], true);
    // The reference mapper's mapping costs what Timeloop reported (59,259,828.70 pJ).
    assert!((l["heuristic_pj"].as_f64().unwrap() - 59_259_828.70).abs() < 0.05);
    let opt = l["optimum_pj"].as_f64().unwrap();
    assert!(
        opt <= 59_259_828.70,
        "optimum {opt} above the mapper's mapping"
    );
    assert!(l["gap"].as_f64().unwrap() >= 0.0);
}

#[test]
fn baseline_writes_mappings_certificates_and_summary() {
    let dir = scratch("baseline");
    let inst = root().join("instances/eyeriss_mbv2_l7.yaml");
    let out_dir = dir.join("out");
    let out = qmap_in(
        &dir,
        &[
            "baseline",
            inst.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--layers",
            "conv1,b1_dw",
            "--cache",
            "none",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[0].starts_with("layer,input_bits,weight_bits,output_bits,energy_pj"));
    check_network_row(&csv, &stdout(&out));
    for (row, layer) in rows[1..3].iter().zip(["conv1", "b1_dw"]) {
        let cols: Vec<&str> = row.split(',').collect();
        assert_eq!(cols[0], layer);
        assert_eq!(cols[6], "optimal");
        let cert: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out_dir.join(format!("{layer}.cert.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(cert["status"], "optimal");
        assert_eq!(cert["instance_sha256"].as_str().unwrap().len(), 64);
        // Both mapping files evaluate to the certified energy.
        for f in [format!("{layer}.yaml"), format!("{layer}.map.yaml")] {
            let ev = json(&qmap_in(
                &dir,
                &[
                    "gap",
                    inst.to_str().unwrap(),
                    "--layer",
                    layer,
                    "--mappings",
                    out_dir.join(&f).to_str().unwrap(),
                    "--json",
                    "--cache",
                    "none",
                ],
            ));
            let l = &ev["layers"][0];
            assert_eq!(l["name"], layer, "{f}");
            assert_eq!(l["heuristic_pj"], cert["energy_pj"], "{f}");
            assert_eq!(l["gap"].as_f64().unwrap(), 0.0);
        }
        let e: f64 = cols[4].parse().unwrap();
        assert!((e - cert["energy_pj"].as_f64().unwrap()).abs() < 1e-3);
    }
}

/// `summary.csv`'s last row is the network's: its energy, cycles and weight bytes are the
/// layers' sums, and each layer's (and the network's) energy by level sums to its energy; the
/// terminal prints the same totals, and a mapspace size and solve time per layer.
fn check_network_row(csv: &str, text: &str) {
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|c| *c == name).unwrap();
    let levels: Vec<usize> = (0..rows[0].len())
        .filter(|&i| rows[0][i].starts_with("energy_pj_"))
        .collect();
    assert_eq!(
        levels.len(),
        7,
        "6 Eyeriss levels and the MACs: {:?}",
        rows[0]
    );
    let num = |r: &[&str], c: usize| r[c].parse::<f64>().unwrap();
    let (layers, net) = (&rows[1..rows.len() - 1], &rows[rows.len() - 1]);
    assert_eq!(net[0], "(network)");
    for c in [col("energy_pj"), col("cycles"), col("weight_bytes")] {
        let sum: f64 = layers.iter().map(|r| num(r, c)).sum();
        assert!(
            (num(net, c) - sum).abs() < 1e-3 * sum.max(1.0),
            "{}: {sum}",
            rows[0][c]
        );
    }
    for r in layers.iter().chain([net]) {
        let by_level: f64 = levels.iter().map(|&c| num(r, c)).sum();
        let e = num(r, col("energy_pj"));
        assert!(
            (by_level - e).abs() < 1e-6 * e,
            "{}: {by_level} vs {e}",
            r[0]
        );
        assert!(r[0] == "(network)" || num(r, col("mapspace_size")) > 1.0);
        assert!(num(r, col("solve_seconds")) >= 0.0);
    }
    // conv1 (32 x 3 x 3 x 3) and b1_dw (32 x 3 x 3) weights at 8 bits.
    assert_eq!(num(net, col("weight_bytes")), 864.0 + 288.0);
    let cycles: u64 = num(net, col("cycles")) as u64;
    let line = text
        .lines()
        .find(|l| l.starts_with("network: 2 layers"))
        .expect(text);
    assert!(
        line.contains(&format!("{} cycles", qmap::report::thousands(cycles))),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("energy by level:  DRAM ")),
        "{text}"
    );
}

/// A baseline longer than a second shows its progress on stderr when stderr is not a
/// terminal (plain lines), and `--quiet` silences it; stdout has none of it.
#[test]
fn baseline_progress_on_stderr_off_a_terminal_and_quiet() {
    let dir = scratch("baseline_progress");
    let inst = root().join("instances/eyeriss_mbv2_l7.yaml");
    let run = |extra: &[&str]| {
        let args = [
            &[
                "baseline",
                inst.to_str().unwrap(),
                "--out",
                "out",
                "--layers",
                "b12_exp,b12_pw",
            ],
            &["--cache", "none"][..],
            extra,
        ]
        .concat();
        let out = qmap_in(&dir, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let shown = run(&[]);
    let err = String::from_utf8_lossy(&shown.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("table: ") && l.contains("/2 layer shapes [")),
        "{err}"
    );
    assert!(!stdout(&shown).contains("layer shapes ["));
    let quiet = run(&["--quiet"]);
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
}

/// The README's CI example, extracted and run as written (with `qmap` on the PATH, in a scratch
/// directory that sees the project's `instances/` and `models/`).
#[test]
fn readme_ci_example_runs_as_written() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let after = readme
        .split("<!-- ci-example -->")
        .nth(1)
        .expect("the README marks its CI example");
    let block = after
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block follows the marker");
    let dir = scratch("readme");
    for d in ["instances", "models"] {
        std::os::unix::fs::symlink(root().join(d), dir.join(d)).unwrap();
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_qmap"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-e", "-c", block])
        .current_dir(&dir)
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.contains("3 of 3 layers within the gap"), "{text}");
    let (cases, failures, _) = junit_counts(&std::fs::read_to_string(dir.join("gap.xml")).unwrap());
    assert_eq!((cases, failures), (3, 0));
}
