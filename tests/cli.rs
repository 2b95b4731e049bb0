//! The command line end to end: `qmap eval` on the shipped default instance (human and JSON
//! output), and every class of bad input — malformed YAML, unknown keys, zero or negative sizes,
//! wrong factor products, tensors kept nowhere, bit-widths above the word size, buffer overflow —
//! giving a message that names the file and the field, exit code 2 and no panic.

mod common;

use common::{json, root, scratch, stdout};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn qmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// An instance over the shipped models with the given architecture and mapping files.
fn instance(dir: &Path, arch: &str, mapping: &str, bits: &str) -> String {
    let r = root();
    write(
        dir,
        "inst.yaml",
        &format!(
            "architecture: {arch}\nworkload: {{network: {}/models/nets/mobilenet_v2.yaml, select: b3_exp}}\nbits: {bits}\nmapping: {mapping}\n",
            r.display()
        ),
    )
}

fn default_mapping() -> String {
    std::fs::read_to_string(root().join("instances/mappings/eyeriss_mbv2_b3_exp.yaml")).unwrap()
}

fn eyeriss() -> String {
    std::fs::read_to_string(root().join("models/arch/eyeriss.yaml")).unwrap()
}

const BITS8: &str = "{inputs: 8, weights: 8, outputs: 8}";

/// Runs `qmap eval` on an instance and expects exit code 2 with `needles` in stderr.
fn expect_input_error(args: &[&str], needles: &[&str]) {
    let out = qmap(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "args {args:?}: stderr {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks `{n}`: {err}");
    }
}

#[test]
fn eval_default_instance() {
    let out = qmap(&["eval", "instances/default.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "shared_glb",
        "psum_spad",
        "energy",
        "cycles 64,512",
        "<< Compute >>",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn eval_json_has_stable_fields() {
    let out = qmap(&["eval", "instances/default.yaml", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["macs"], 10_838_016);
    assert_eq!(v["cycles"], 64_512);
    assert!(v["energy_pj"].as_f64().unwrap() > 0.0);
    assert!(v["utilization"].as_f64().unwrap() > 0.99);
    let levels = v["levels"].as_array().unwrap();
    let glb = levels.iter().find(|l| l["name"] == "shared_glb").unwrap();
    assert_eq!(glb["instances_used"], 1);
    let inputs = glb["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Inputs")
        .unwrap();
    for key in [
        "reads",
        "fills",
        "updates",
        "reads_per_instance",
        "fills_per_instance",
        "updates_per_instance",
    ] {
        assert!(inputs[key].is_u64(), "{key}");
    }
    // The level energies and the MAC energy add up to the total.
    let sum: f64 = levels
        .iter()
        .map(|l| l["energy_pj"].as_f64().unwrap())
        .sum::<f64>()
        + v["mac_energy_pj"].as_f64().unwrap();
    let total = v["energy_pj"].as_f64().unwrap();
    assert!((sum - total).abs() <= 1e-9 * total);
}

#[test]
fn malformed_yaml() {
    let d = scratch("malformed");
    let i = write(&d, "inst.yaml", "architecture: [unclosed\n");
    expect_input_error(&["eval", &i], &["inst.yaml"]);
}

#[test]
fn unknown_key() {
    let d = scratch("unknown");
    let arch = write(
        &d,
        "arch.yaml",
        &eyeriss().replacen("depth: 24", "depht: 24", 1),
    );
    let m = write(&d, "map.yaml", &default_mapping());
    let i = instance(&d, &arch, &m, BITS8);
    expect_input_error(
        &["eval", &i],
        &["arch.yaml", "levels[0]", "unknown field `depht`"],
    );
}

#[test]
fn zero_and_negative_sizes() {
    let d = scratch("sizes");
    let m = write(&d, "map.yaml", &default_mapping());
    let arch = write(
        &d,
        "arch.yaml",
        &eyeriss().replacen("depth: 24", "depth: 0", 1),
    );
    let i = instance(&d, &arch, &m, BITS8);
    expect_input_error(
        &["eval", &i],
        &["arch.yaml", "levels[0].depth", "must be > 0"],
    );
    let arch = write(
        &d,
        "arch.yaml",
        &eyeriss().replacen("depth: 24", "depth: -3", 1),
    );
    expect_input_error(&["eval", &i], &["arch.yaml", "levels[0].depth"]);
    let arch2 = write(
        &d,
        "arch2.yaml",
        &eyeriss().replacen("instances: 168", "instances: 0", 1),
    );
    let i2 = instance(&d, &arch2, &m, BITS8);
    expect_input_error(
        &["eval", &i2],
        &["arch2.yaml", "levels[0].instances", "must be > 0"],
    );
    // Negative energies would break every lower bound (they assume costs grow with counts).
    let arch3 = write(
        &d,
        "arch3.yaml",
        &eyeriss().replacen("update: 0.30161", "update: -0.3", 1),
    );
    let i3 = instance(&d, &arch3, &m, BITS8);
    expect_input_error(
        &["eval", &i3],
        &[
            "arch3.yaml",
            "energy.update",
            "must be a finite number >= 0",
        ],
    );
    let _ = arch;
}

#[test]
fn layer_with_zero_dimension() {
    let d = scratch("layer");
    let r = root().display().to_string();
    let i = write(
        &d,
        "inst.yaml",
        &format!(
            "architecture: {r}/models/arch/eyeriss.yaml\nworkload:\n  layer: {{name: l, kind: conv2d, C: 0, M: 4, P: 4, Q: 4}}\n"
        ),
    );
    expect_input_error(
        &["eval", &i],
        &["inst.yaml", "workload.layer.C", "must be > 0"],
    );
}

#[test]
fn factors_not_multiplying_to_bound() {
    let d = scratch("factors");
    let m = write(&d, "map.yaml", &default_mapping().replace("M9 Q2", "M3 Q2"));
    expect_input_error(
        &["eval", "instances/default.yaml", "--mapping", &m],
        &[
            "map.yaml",
            "mapping",
            "factors of M multiply to 48, the bound is 144",
        ],
    );
}

#[test]
fn unknown_dimension_in_mapping() {
    let d = scratch("dim");
    let m = write(&d, "map.yaml", &default_mapping().replace("M9 Q2", "Z9 Q2"));
    expect_input_error(
        &["eval", "instances/default.yaml", "--mapping", &m],
        &["map.yaml", "mapping[5].temporal", "unknown dimension `Z`"],
    );
}

#[test]
fn tensor_kept_nowhere() {
    let d = scratch("kept");
    // An architecture that leaves keeping Inputs free everywhere, and a mapping that keeps it
    // nowhere: the outermost level is the backing store and must keep it.
    let arch = eyeriss()
        .replace(
            "keep: [Weights, Inputs, Outputs]",
            "keep: [Weights, Outputs]",
        )
        .replace("keep: [Inputs, Outputs]", "keep: [Outputs]")
        .replace("keep: [Inputs]", "keep: []");
    let arch = write(&d, "arch.yaml", &arch);
    let m = default_mapping()
        .replace("  - level: ifmap_spad\n", "")
        .replace(
            "    temporal: M9 Q2\n",
            "    temporal: M9 Q2\n    keep: [Weights, Outputs]\n",
        )
        .replace(
            "    temporal: P28 Q2\n",
            "    temporal: P28 Q2\n    keep: [Outputs]\n",
        );
    let m = write(&d, "map.yaml", &m);
    let i = instance(&d, &arch, &m, BITS8);
    expect_input_error(
        &["eval", &i],
        &[
            "map.yaml",
            "mapping.DRAM",
            "must keep Inputs but the mapping bypasses it",
        ],
    );
}

#[test]
fn bits_above_word_size() {
    let d = scratch("bits");
    let m = write(&d, "map.yaml", &default_mapping());
    let arch = write(&d, "arch.yaml", &eyeriss());
    let i = instance(&d, &arch, &m, "{inputs: 8, weights: 32, outputs: 8}");
    expect_input_error(
        &["eval", &i],
        &["inst.yaml", "bits.weights", "do not fit the 16-bit words"],
    );
}

#[test]
fn mapping_overflowing_a_buffer() {
    let d = scratch("overflow");
    let m = write(
        &d,
        "map.yaml",
        &default_mapping()
            .replace("temporal: M16", "temporal: M144")
            .replace("M9 Q2", "Q2"),
    );
    expect_input_error(
        &["eval", "instances/default.yaml", "--mapping", &m],
        &[
            "map.yaml",
            "mapping.psum_spad",
            "mapped tile size 72 exceeds buffer capacity 24",
        ],
    );
    // --json still prints the verdict before failing.
    let out = qmap(&["eval", "instances/default.yaml", "--mapping", &m, "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
}

#[test]
fn spatial_factors_above_fanout() {
    let d = scratch("fanout");
    let m = default_mapping()
        .replace("spatial_y: C6 P2", "spatial_y: C6 P4")
        .replace("temporal: P28 Q2", "temporal: P14 Q2");
    let m = write(&d, "map.yaml", &m);
    expect_input_error(
        &["eval", "instances/default.yaml", "--mapping", &m],
        &["map.yaml", "mapping.DummyBuffer", "exceed the fanout"],
    );
}

#[test]
fn missing_file() {
    expect_input_error(
        &["eval", "instances/does-not-exist.yaml"],
        &["does-not-exist.yaml", "cannot read"],
    );
}

#[test]
fn timeloop_design_as_is() {
    let Some(dir) = reference_dir() else { return };
    let e = dir.join("timeloop_exercises/eyeriss_like");
    let f = |n: &str| e.join(n).display().to_string();
    let out = qmap(&[
        "eval",
        "--timeloop",
        &f("arch.yaml"),
        &f("problem.yaml"),
        &f("map.yaml"),
        &f("ERT.yaml"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cycles"], 86_016);
    let e = v["energy_pj"].as_f64().unwrap();
    assert!((e - 59_259_828.70).abs() / e < 1e-6, "{e}");
}

fn reference_dir() -> Option<PathBuf> {
    let d = root().join("../shared/reference");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("SKIPPED: ../shared/reference not present");
        None
    }
}

/// An instance naming Timeloop-format design files (arch + ERT + problem, with the arch's own
/// constraints) and a qmap-format mapping equal to the exercise's `map.yaml` gives Timeloop's
/// numbers.
#[test]
fn instance_with_timeloop_design_files() {
    let Some(dir) = reference_dir() else { return };
    let e = dir.join("timeloop_exercises/eyeriss_like");
    let d = scratch("tl-instance");
    let m = write(
        &d,
        "map.yaml",
        "mapping:\n  - {level: psum_spad, temporal: M8}\n  - {level: weights_spad, temporal: R3}\n  - {level: inter_PE_spatial, spatial_y: C3 S3}\n  - {level: inter_PE_column_spatial, spatial_x: Q14}\n  - {level: shared_glb, temporal: Q4 P14}\n  - {level: DRAM, temporal: M4 Q2 P8}\n",
    );
    let i = write(
        &d,
        "inst.yaml",
        &format!(
            "timeloop: {{arch: {a}/arch.yaml, ert: {a}/ERT.yaml, problem: {a}/problem.yaml}}\nmapping: {m}\n",
            a = e.display()
        ),
    );
    let out = qmap(&["eval", &i, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cycles"], 86_016);
    let en = v["energy_pj"].as_f64().unwrap();
    assert!((en - 59_259_828.70).abs() / en < 1e-6, "{en}");
}

/// A tiny instance (one conv layer on a two-level design) that `map` proves and `search`
/// enumerates: both must agree on the optimum, and the written mapping evaluates to it.
#[test]
fn map_and_search_agree_on_a_tiny_instance() {
    let d = scratch("map");
    let arch = write(
        &d,
        "arch.yaml",
        "name: tiny\nlevels:\n  - {name: RF, instances: 2, depth: 16, width: 16, word_bits: 16, energy: {read: 1, write: 1.5}}\n  - {name: DRAM, width: 64, word_bits: 16, block_size: 4, energy: {read: 200, write: 200}}\nmac: {instances: 2, energy: 1}\n",
    );
    let inst = write(
        &d,
        "inst.yaml",
        &format!(
            "architecture: {arch}\nworkload:\n  layer: {{name: l, kind: conv2d, C: 2, M: 4, P: 3, Q: 1, R: 2, S: 1}}\n"
        ),
    );
    let out = d.join("best.yaml").display().to_string();
    let m = qmap(&["map", &inst, "--engine", "milp", "--json", "--out", &out]);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let v: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    assert_eq!(v["status"], "optimal");
    assert_eq!(v["proof"], "milp");
    let milp = v["energy_pj"].as_f64().unwrap();
    assert!(v["bound"].as_f64().unwrap() <= milp * (1.0 + 1e-9));
    let s = qmap(&["search", &inst, "--method", "exhaustive", "--json"]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let sv: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    let ex = sv["value"].as_f64().unwrap();
    assert!(
        (milp - ex).abs() <= 1e-6 * ex,
        "MILP {milp} exhaustive {ex}"
    );
    let e = qmap(&["eval", &inst, "--mapping", &out, "--json"]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert!((ev["energy_pj"].as_f64().unwrap() - milp).abs() <= 1e-9 * milp);
    // Random search on the same space never beats the exhaustive optimum.
    let r = qmap(&["search", &inst, "--samples", "200", "--seed", "3", "--json"]);
    let rv: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert!(rv["value"].as_f64().unwrap() >= ex * (1.0 - 1e-12));
    // The default engine enumerates a space this small: same optimum, bound = value.
    let a = json(&qmap(&["map", &inst, "--json"]));
    assert_eq!(a["proof"], "enumerated");
    assert_eq!(a["status"], "optimal");
    assert_eq!(a["energy_pj"].as_f64().unwrap(), ex);
    assert_eq!(a["bound"], a["value"]);
    // Latency and EDP are proved by enumeration: equal to the exhaustive search's optimum.
    for obj in ["latency", "edp"] {
        let mv = json(&qmap(&["map", &inst, "--objective", obj, "--json"]));
        let sv = json(&qmap(&[
            "search",
            &inst,
            "--method",
            "exhaustive",
            "--objective",
            obj,
            "--json",
        ]));
        assert_eq!(mv["status"], "optimal", "{obj}");
        assert_eq!(mv["proof"], "enumerated", "{obj}");
        assert_eq!(mv["value"], sv["value"], "{obj}");
        let (e, c) = (
            mv["energy_pj"].as_f64().unwrap(),
            mv["cycles"].as_f64().unwrap(),
        );
        let want = if obj == "latency" { c } else { e * c };
        assert!(
            (mv["value"].as_f64().unwrap() - want).abs() <= 1e-9 * want,
            "{obj}"
        );
    }
    // Above the enumeration limit the MILP proves energy only: a clear error, exit 2.
    let too_big = qmap(&[
        "map",
        &inst,
        "--objective",
        "latency",
        "--enumerate-limit",
        "1",
    ]);
    assert_eq!(too_big.status.code(), Some(2));
    let err = String::from_utf8_lossy(&too_big.stderr);
    assert!(
        err.contains("inst.yaml") && err.contains("enumeration only"),
        "{err}"
    );
    // Above the limit, `auto` lets the enumeration try first: it finishes this space.
    let tried = json(&qmap(&["map", &inst, "--enumerate-limit", "1", "--json"]));
    assert_eq!(
        (&tried["proof"], &tried["status"]),
        (&a["proof"], &a["status"])
    );
    assert_eq!(tried["energy_pj"].as_f64().unwrap(), ex);
}

/// An enumeration stopped by `--time-limit` reports what it has: here (a limit of 0) no
/// mapping, and a bound from the parts it did not search, below the optimum.
#[test]
fn map_enumeration_stops_at_the_time_limit_with_a_bound() {
    let inst = "instances/simba_mbv2_l7.yaml";
    let full = json(&qmap(&["map", inst, "--json"]));
    assert_eq!(
        (&full["proof"], &full["status"]),
        (&"enumerated".into(), &"optimal".into())
    );
    let opt = full["energy_pj"].as_f64().unwrap();
    let out = qmap(&["map", inst, "--time-limit", "0", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["status"], "time_limit");
    assert_eq!(v["proof"], "enumerated");
    assert!(v["energy_pj"].is_null() && v["mapping"].is_null(), "{v}");
    let bound = v["bound"].as_f64().unwrap();
    assert!(bound > 0.0 && bound <= opt, "bound {bound}, optimum {opt}");
    let human = stdout(&qmap(&["map", inst, "--time-limit", "0"]));
    assert!(
        human.contains("status: time_limit")
            && human.contains("enumeration stopped at the time limit"),
        "{human}"
    );
}

/// `instances/default.yaml` without its `constraints:` line (6e14 mappings): `--time-limit 2`
/// holds on every engine for the whole command (a wide margin, 20 s, for a loaded machine),
/// with the incumbent, the bound and the gap.
#[test]
fn map_keeps_its_time_limit_on_an_unconstrained_space_on_every_engine() {
    let dir = scratch("unconstrained");
    let r = root();
    let text = std::fs::read_to_string(r.join("instances/default.yaml"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("constraints:"))
        .map(|l| l.replace("../", &format!("{}/", r.display())))
        .map(|l| {
            l.replace(
                "mapping: mappings/",
                &format!("mapping: {}/instances/mappings/", r.display()),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let inst = write(&dir, "open.yaml", &text);
    for engine in ["auto", "milp", "enumerate"] {
        let start = std::time::Instant::now();
        let out = qmap(&[
            "map",
            &inst,
            "--engine",
            engine,
            "--time-limit",
            "2",
            "--json",
        ]);
        let took = start.elapsed().as_secs_f64();
        let v = json(&out);
        assert!(took < 20.0, "{engine}: {took} s for a 2 s limit");
        assert_eq!(v["status"], "time_limit", "{engine}: {v}");
        let (value, bound) = (v["value"].as_f64().unwrap(), v["bound"].as_f64().unwrap());
        assert!(bound > 0.0 && bound <= value, "{engine}: {value} {bound}");
        assert!(v["gap"].as_f64().unwrap() > 0.0, "{engine}: {v}");
        assert!(
            v["self_check"]["valid"].as_u64().unwrap() > 0,
            "{engine}: {v}"
        );
        // Its progress is on stderr off a terminal too, from the first second on.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().any(|l| l.starts_with("[1 s] ")),
            "{engine}: {err}"
        );
    }
    // --quiet silences it (and stdout is JSON either way).
    let out = qmap(&["map", &inst, "--time-limit", "1.5", "--json", "--quiet"]);
    assert_eq!(json(&out)["status"], "time_limit");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// A certificate the self-check refutes is an internal error (exit code 3, a request for a bug
/// report), never a result: here the bound is made ten times too high on purpose, and random
/// valid mappings fall below it.
#[test]
fn a_certificate_that_fails_its_self_check_is_an_internal_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args(["map", "instances/default.yaml"])
        .env("QMAP_TEST_FALSE_BOUND", "1")
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("self-check failed") && err.contains("bug in qmap"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "a result was printed");
}

/// `--layer` picking another layer than the instance's `workload.select`: its mapping is not
/// reused silently. Another shape is an error naming the instance's `mapping` field, both
/// layers and how to get a mapping; the same shape is reused with a warning.
#[test]
fn eval_layer_does_not_reuse_another_layers_mapping() {
    expect_input_error(
        &["eval", "instances/default.yaml", "--layer", "b2_dw"],
        &[
            "instances/default.yaml: mapping:",
            "is written for layer b3_exp (N=1 M=144 C=24",
            "not layer b2_dw (N=1 G=96",
            "--layer b2_dw --out FILE",
        ],
    );
    let out = qmap(&["eval", "instances/default.yaml", "--layer", "b4_exp"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: instances/default.yaml: mapping:")
            && err.contains("written for b3_exp; b4_exp has the same shape"),
        "{err}"
    );
    // A mapping file of another layer: the error says which layer it must fit.
    expect_input_error(
        &[
            "eval",
            "instances/default.yaml",
            "--layer",
            "b2_dw",
            "--mapping",
            "instances/mappings/eyeriss_mbv2_b3_exp.yaml",
        ],
        &["the mapping must be one of layer b2_dw: N=1 G=96 P=56 Q=56 R=3 S=3"],
    );
}

/// Written mapping files (qmap's and Timeloop's) start with a comment naming the layer, the
/// architecture and its file, the energy and the objective, and still load back.
#[test]
fn written_mappings_carry_a_header_and_load_back() {
    let dir = scratch("mapping_header");
    let (q, t) = (dir.join("b2.yaml"), dir.join("b2.map.yaml"));
    let (qs, ts) = (q.display().to_string(), t.display().to_string());
    let args = ["instances/default.yaml", "--layer", "b2_dw"];
    let out = qmap(
        &[
            &["map"],
            &args[..],
            &["--json", "--out", &qs, "--timeloop-out", &ts],
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0));
    let energy = json(&out)["evaluation"]["energy_pj"].as_f64().unwrap();
    for f in [&q, &t] {
        let text = std::fs::read_to_string(f).unwrap();
        let head: Vec<&str> = text.lines().take(4).collect();
        assert_eq!(
            head[0], "# qmap 0.1.0: mobilenet_v2 / b2_dw on eyeriss_like",
            "{text}"
        );
        assert_eq!(
            head[1],
            "# architecture: eyeriss_like (models/arch/eyeriss.yaml)"
        );
        assert!(
            head[2].contains(&format!("({energy:.4} pJ)"))
                && head[2].ends_with("objective: energy"),
            "{}",
            head[2]
        );
        let f = f.display().to_string();
        let back = qmap(&[&["eval"], &args[..], &["--mapping", &f, "--json"]].concat());
        assert_eq!(
            back.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&back.stderr)
        );
        assert_eq!(json(&back)["energy_pj"].as_f64().unwrap(), energy);
    }
}

/// A Timeloop ERT's leakage, which qmap does not charge, is a warning on stderr naming the
/// file, each leaking component with its leak and instances, and the sum per cycle; the
/// energies are those of the same design without leakage.
#[test]
fn dropped_ert_leakage_is_a_warning_with_its_amount() {
    let dir = scratch("leak");
    let ex = root().join("examples/timeloop");
    let ert = std::fs::read_to_string(ex.join("ERT.yaml")).unwrap();
    // The first `leak` is DRAM's (1 instance), the second shared_glb's (1 instance).
    let leaky = ert.replacen("energy: 0.0\n", "energy: 0.5\n", 1).replacen(
        "energy: 0.0\n",
        "energy: 0.25\n",
        1,
    );
    assert_ne!(leaky, ert);
    let leaky_file = write(&dir, "ERT.yaml", &leaky);
    let files = |ert: &str| {
        let f = |n: &str| ex.join(n).display().to_string();
        vec![
            f("arch.yaml"),
            f("problem.yaml"),
            f("map.yaml"),
            ert.to_string(),
        ]
    };
    let run = |ert: &str| {
        let files = files(ert);
        let mut args = vec!["eval", "--json", "--timeloop"];
        args.extend(files.iter().map(String::as_str));
        let out = qmap(&args);
        assert_eq!(out.status.code(), Some(0));
        out
    };
    let plain = run(&ex.join("ERT.yaml").display().to_string());
    assert_eq!(String::from_utf8_lossy(&plain.stderr), "");
    let out = run(&leaky_file);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "warning: {leaky_file}: ERT.tables: leakage is dropped"
        )),
        "{err}"
    );
    assert!(
        err.contains("shared_glb 0.25 pJ x 1, DRAM 0.5 pJ x 1: 0.750000 pJ per cycle in all"),
        "{err}"
    );
    assert_eq!(json(&out)["energy_pj"], json(&plain)["energy_pj"]);
}

/// `map` over bit-width lists ends at the smallest bits (no accuracy term), and says so in its
/// output and its `--help`.
#[test]
fn map_over_bit_lists_says_it_ends_at_the_smallest_bits() {
    let dir = scratch("bit_lists");
    let r = root().display().to_string();
    let inst = write(
        &dir,
        "bits.yaml",
        &format!(
            "architecture: {r}/models/arch/eyeriss.yaml\nconstraints: {r}/models/arch/eyeriss_constraints.yaml\n\
             workload: {{network: {r}/models/nets/mobilenet_v2.yaml, select: b3_exp}}\n\
             bits: {{inputs: 8, weights: [4, 8], outputs: 8}}\npacking: seed\n"
        ),
    );
    let out = qmap(&["map", &inst]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("bits: Weights 4, Inputs 8, Outputs 8"),
        "{text}"
    );
    assert!(
        text.contains("note: map minimises the objective alone, with no accuracy term"),
        "{text}"
    );
    assert!(
        text.contains("the MAC energy does not depend on bits in this design"),
        "{text}"
    );
    let json = json(&qmap(&["map", &inst, "--json"]));
    assert_eq!(json["bits"]["weights"], 4);
    let help = stdout(&qmap(&["map", "--help"]));
    assert!(
        help.contains("so the answer is at the smallest bits"),
        "{help}"
    );
}

/// `map --cache DIR`: the first run proves and stores the optimum, the second reads it back
/// (verified, with a note) at the same energy and mapping; an entry that does not check out is
/// a warning and is recomputed; other objectives are refused (exit code 2).
#[test]
fn map_cache_stores_reads_back_and_verifies() {
    let dir = scratch("map_cache");
    let cache = dir.join("c").display().to_string();
    let args = ["map", "instances/default.yaml", "--json", "--cache", &cache];
    let plain = json(&qmap(&args[..3]));
    let cold = qmap(&args);
    assert_eq!(String::from_utf8_lossy(&cold.stderr), "");
    let warm = qmap(&args);
    let err = String::from_utf8_lossy(&warm.stderr);
    assert_eq!(
        err,
        "note: the optimum was read from the cache (verified)\n"
    );
    for v in [json(&cold), json(&warm)] {
        assert_eq!(v["status"], "optimal");
        assert_eq!(v["energy_pj"], plain["energy_pj"]);
        assert_eq!(v["mapping"], plain["mapping"]);
    }
    let files: Vec<PathBuf> = walk(&dir.join("c"));
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let e = v["entries"][0]["energy_pj"].as_f64().unwrap();
    v["entries"][0]["energy_pj"] = serde_json::json!(e * 0.9);
    std::fs::write(&files[0], v.to_string()).unwrap();
    let again = qmap(&args);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.starts_with("warning: cache: ") && err.contains("recomputed"),
        "{err}"
    );
    assert_eq!(json(&again)["energy_pj"], plain["energy_pj"]);
    expect_input_error(
        &[&args[..], &["--objective", "edp"]].concat(),
        &["--cache: the cache holds energy optima"],
    );
}

/// The files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `map --max-cycles` / `--min-utilization` on the ResNet-50 stem on Eyeriss (876 mappings):
/// the unconstrained energy optimum takes 4,214,784 cycles; at most 2,000,000 the optimum is
/// 442.503 uJ at 1,204,224 cycles (proved, by both engines, and the same from the instance's
/// `budget:` field); below the least cycles of the mapspace it is `infeasible` (exit 1) with
/// that least; a bad budget is an input error naming the field.
#[test]
fn map_under_a_latency_budget() {
    let stem = [
        "map",
        "instances/eyeriss_resnet50.yaml",
        "--layer",
        "conv1",
        "--json",
    ];
    let run = |extra: &[&str]| qmap(&[&stem[..], extra].concat());
    let free = json(&run(&[]));
    assert_eq!(free["cycles"], 4_214_784);
    assert!(free.get("budget").is_none());
    for engine in ["enumerate", "milp"] {
        let out = run(&["--max-cycles", "2000000", "--engine", engine]);
        assert_eq!(out.status.code(), Some(0));
        let j = json(&out);
        assert_eq!(j["status"], "optimal", "{engine}");
        assert_eq!(j["cycles"], 1_204_224, "{engine}");
        assert!(
            (j["energy_pj"].as_f64().unwrap() - 442.503e6).abs() < 1e3,
            "{j}"
        );
        assert_eq!(j["budget"]["cycles_cap"], 2_000_000);
        assert_eq!(j["budget"]["max_cycles"], 2_000_000);
    }
    // min utilisation 0.5: cap ⌊118,013,952 / (0.5 × 168)⌋ = 1,404,928.
    let j = json(&run(&["--min-utilization", "0.5"]));
    assert_eq!(j["budget"]["cycles_cap"], 1_404_928);
    assert!(j["budget"]["utilization"].as_f64().unwrap() >= 0.5);
    let out = run(&["--max-cycles", "1000000"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(j["status"], "infeasible");
    let reason = j["reason"].as_str().unwrap();
    assert!(
        reason.contains("least cycles of the mapspace are 1204224"),
        "{reason}"
    );
    // The same budget from the instance file, and bad ones.
    let dir = scratch("budget");
    let text = std::fs::read_to_string(root().join("instances/eyeriss_resnet50.yaml")).unwrap();
    let text = text.replace("../", &format!("{}/", root().display()));
    let inst = write(
        &dir,
        "b.yaml",
        &format!("{text}budget: {{max_cycles: 2000000}}\n"),
    );
    let j = json(&qmap(&["map", &inst, "--layer", "conv1", "--json"]));
    assert_eq!(j["cycles"], 1_204_224);
    let bad = write(
        &dir,
        "bad.yaml",
        &format!("{text}budget: {{min_utilization: 2}}\n"),
    );
    expect_input_error(
        &["map", &bad, "--layer", "conv1"],
        &["bad.yaml", "budget.min_utilization"],
    );
    expect_input_error(
        &["map", &inst, "--min-utilization", "0"],
        &["--min-utilization"],
    );
    expect_input_error(&["map", &inst, "--max-cycles", "0"], &["--max-cycles"]);
}

/// The `*_bitmac` designs price the MAC by its operand widths (E = 2.20035 − 0.8 + 0.003125 ×
/// w × a pJ, `tools/arch/make_bitmac.py`): the evaluator's MAC energy is the table's, `map` over
/// a bit list still ends at the smallest bits (the table grows with bits), and a table that
/// prices fewer bits above more moves the answer off them, with a note that says so.
#[test]
fn bit_dependent_mac_energy() {
    let dir = scratch("bitmac");
    let r = root().display().to_string();
    let inst = |arch: &str, cons: &str, name: &str| {
        write(
            &dir,
            name,
            &format!(
                "architecture: {arch}\nconstraints: {r}/models/arch/{cons}_constraints.yaml\n\
                 workload: {{network: {r}/models/nets/mobilenet_v2.yaml, select: b3_exp}}\n\
                 bits: {{inputs: 8, weights: [4, 8], outputs: 8}}\npacking: seed\n"
            ),
        )
    };
    for base in ["eyeriss", "simba"] {
        let design = format!("{base}_bitmac");
        let i = inst(&format!("{r}/models/arch/{design}.yaml"), base, "b.yaml");
        let j = json(&qmap(&["map", &i, "--json"]));
        assert_eq!(j["bits"]["weights"], 4, "{design}");
        let ev = &j["evaluation"];
        let macs = ev["macs"].as_f64().unwrap();
        let per_op = 2.20035 - 0.8 + 0.003125 * 4.0 * 8.0;
        let mac = ev["mac_energy_pj"].as_f64().unwrap();
        assert!(
            (mac - macs * per_op).abs() <= 1e-9 * mac,
            "{design}: {mac} vs {per_op}/MAC"
        );
    }
    // Every (w, a) of the shipped table, through `qmap eval` of the instance's mapping.
    let text = std::fs::read_to_string(root().join("instances/default.yaml")).unwrap();
    let text = text
        .replace(
            "../models/arch/eyeriss.yaml",
            &format!("{r}/models/arch/eyeriss_bitmac.yaml"),
        )
        .replace("../", &format!("{r}/"))
        .replace("mappings/", &format!("{r}/instances/mappings/"));
    for (w, a) in [(2, 2), (3, 7), (8, 8), (5, 16)] {
        let bits = format!("bits: {{inputs: {a}, weights: {w}, outputs: 8}}");
        let body = text
            .lines()
            .filter(|l| !l.starts_with("bits:"))
            .collect::<Vec<_>>();
        let i = write(&dir, "e.yaml", &format!("{}\n{bits}\n", body.join("\n")));
        let out = qmap(&["eval", &i, "--json"]);
        let ev = json(&out);
        let per_op = 1.40035 + 0.003125 * (w * a) as f64;
        let (mac, macs) = (ev["mac_energy_pj"].as_f64(), ev["macs"].as_f64());
        let (mac, macs) = (mac.expect("mac_energy_pj"), macs.unwrap());
        assert!(
            (mac - macs * per_op).abs() <= 1e-9 * mac,
            "({w}, {a}): {mac}"
        );
    }
    // A table that prices 4-bit weights above 8-bit ones: map takes 8 and says why.
    let arch = std::fs::read_to_string(root().join("models/arch/eyeriss.yaml")).unwrap();
    let odd = format!(
        "{arch}  energy_table:\n    - {{weight_bits: 4, activation_bits: 8, energy: 9.0}}\n    \
         - {{weight_bits: 8, activation_bits: 8, energy: 1.0}}\n"
    );
    let odd = write(&dir, "odd.yaml", &odd);
    let i = inst(&odd, "eyeriss", "o.yaml");
    let out = qmap(&["map", &i]);
    let text = stdout(&out);
    assert!(
        text.contains("bits: Weights 8, Inputs 8, Outputs 8"),
        "{text}"
    );
    assert!(
        text.contains("the answer need not be at the smallest bits"),
        "{text}"
    );
}
