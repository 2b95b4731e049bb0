//! `qmap front` end to end on a small network: every front point's per-layer mappings
//! re-evaluate to the reported per-layer energies and sum to the point's energy, activation
//! bits chain, the front is non-dominated, the table is served from the cache on a second run,
//! NSGA-II's hypervolume never exceeds the exact front's, the CSV and SVG files are written,
//! and the JSON's keys are in alphabetical order at every level.

use qmap::eval::evaluate;
use qmap::instance;
mod common;

use common::{front_instance, json, qmap_in, root, scratch};
use std::path::{Path, PathBuf};

/// A four-layer network on the shipped Eyeriss with its constraints, bits {4, 8}, a proxy.
fn small_instance(dir: &Path) -> PathBuf {
    front_instance(
        dir,
        "tiny",
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
                "kind: conv2d, C: 16, M: 8, P: 14, Q: 14, R: 1, S: 1",
                10,
                60,
            ),
            ("l4", "kind: fc, C: 1568, M: 10", 30, 30),
        ],
    )
}

/// `--json` prints its keys in alphabetical order at every level (mappings included), as it did
/// when it was built from `json!` literals: re-printing it through a `serde_json::Value` changes
/// nothing.
fn assert_key_sorted(out: &std::process::Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(text, serde_json::to_string_pretty(&v).unwrap() + "\n");
}

#[test]
fn front_points_reevaluate_and_chain() {
    let dir = scratch("small");
    let inst_path = small_instance(&dir);
    let inst = instance::load(&inst_path).unwrap();
    let cache = dir.join("cache");
    let (csv_path, svg_path) = (dir.join("front.csv"), dir.join("front.svg"));
    let args = [
        "front",
        inst_path.to_str().unwrap(),
        "--front",
        "both",
        "--min-accuracy",
        "0",
        "--json",
        "--cache",
        cache.to_str().unwrap(),
        "--csv",
        csv_path.to_str().unwrap(),
        "--svg",
        svg_path.to_str().unwrap(),
    ];
    let out = qmap_in(&dir, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_key_sorted(&out);
    let v = json(&out);
    let points = v["points"].as_array().unwrap();
    assert!(points.len() >= 3, "{v}");
    assert_eq!(v["complete"], true);
    assert!(v["table_seconds"].as_f64().is_some() && v["front_seconds"].as_f64().is_some());
    let mut costs = vec![];
    for p in points {
        assert_eq!(p["status"], "optimal");
        let layers = p["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 4);
        let mut sum = 0.0;
        let mut prev_out = 8; // the network input
        for (i, l) in layers.iter().enumerate() {
            let (ib, wb, ob) = (
                l["input_bits"].as_u64().unwrap() as u32,
                l["weight_bits"].as_u64().unwrap() as u32,
                l["output_bits"].as_u64().unwrap() as u32,
            );
            assert_eq!(ib, prev_out, "activation bits chain");
            prev_out = ob;
            let layer = &inst.layers[i];
            let ms: qmap::spec::MappingSpec =
                serde_json::from_value(l["mapping"].clone()).expect("a mapping per layer");
            let m = qmap::model::mapping_from_spec(&ms, &inst.arch, &layer.problem, &inst_path)
                .unwrap();
            let ev = evaluate(
                &layer.problem,
                &inst.arch,
                &m,
                &inst.options(
                    &layer.problem,
                    Some(qmap::model::BitConfig::new(ib, wb, ob)),
                ),
            );
            assert!(ev.valid);
            assert_eq!(ev.energy_pj, l["energy_pj"].as_f64().unwrap());
            sum += ev.energy_pj;
        }
        assert_eq!(prev_out, 8, "the last output is 8 bits");
        let e = p["energy_pj"].as_f64().unwrap();
        assert!((sum - e).abs() <= 1e-9 * e, "{sum} vs {e}");
        costs.push([
            e,
            -p["accuracy"].as_f64().unwrap(),
            p["memory_bytes"].as_f64().unwrap(),
        ]);
    }
    // Non-dominated, each objective vector once.
    for (i, a) in costs.iter().enumerate() {
        for (j, b) in costs.iter().enumerate() {
            if i != j {
                let dominates = a.iter().zip(b).all(|(x, y)| x <= y) && a != b;
                assert!(!dominates, "point {i} dominates point {j}");
                assert_ne!(a, b);
            }
        }
    }
    // Uniform 8-bit lies on or behind the 3-D front.
    let u8p = &v["uniform_8bit"];
    let u = [
        u8p["energy_pj"].as_f64().unwrap(),
        -u8p["accuracy"].as_f64().unwrap(),
        u8p["memory_bytes"].as_f64().unwrap(),
    ];
    assert!(costs.iter().any(|c| c
        .iter()
        .zip(&u)
        .all(|(x, y)| *x <= *y + 1e-9 * y.abs().max(1.0))));
    let csv = std::fs::read_to_string(dir.join("front.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * points.len());
    let svg = std::fs::read_to_string(dir.join("front.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("uniform 8-bit"));
    // Second run: the whole table comes from the cache, same points.
    let again = json(&qmap_in(&dir, &args));
    assert_eq!(again["points"], v["points"]);
    // NSGA-II over the same table: never above the exact front's hypervolume.
    let out = qmap_in(
        &dir,
        &[
            "front",
            inst_path.to_str().unwrap(),
            "--front",
            "both",
            "--min-accuracy",
            "0",
            "--method",
            "nsga2",
            "--json",
            "--cache",
            cache.to_str().unwrap(),
        ],
    );
    assert_key_sorted(&out);
    let n = json(&out);
    let hv = &n["hypervolume"];
    assert!(hv["nsga2"].as_f64().unwrap() <= hv["exact"].as_f64().unwrap() * (1.0 + 1e-12));
    assert!(hv["nsga2"].as_f64().unwrap() > 0.0);
}

#[test]
fn front_needs_a_front_section_and_bit_lists() {
    let dir = scratch("errors");
    let inst = root().join("instances/eyeriss_mbv2_l7.yaml");
    let out = qmap_in(&dir, &["front", inst.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("eyeriss_mbv2_l7.yaml: front"), "{err}");
}

/// The (energy, accuracy) of a front's points in the JSON.
fn energy_accuracy(points: &serde_json::Value) -> Vec<(f64, f64)> {
    (points.as_array().unwrap().iter())
        .map(|p| {
            (
                p["energy_pj"].as_f64().unwrap(),
                p["accuracy"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// `qmap front` of the small instance with `extra` arguments, as JSON (exit code 0).
fn front_json(dir: &Path, inst: &Path, cache: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["front", inst.to_str().unwrap(), "--json", "--cache", cache];
    args.extend_from_slice(extra);
    let out = qmap_in(dir, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_key_sorted(&out);
    json(&out)
}

#[test]
fn default_front_is_complete_and_is_the_whole_front_above_its_floor() {
    let dir = scratch("complete");
    let inst = small_instance(&dir);
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let v = front_json(&dir, &inst, cache, &[]);
    assert_eq!(v["complete"], true);
    assert!(v["stopped"].is_null());
    let floor = v["min_accuracy"].as_f64().unwrap();
    let u8acc = v["uniform_8bit"]["accuracy"].as_f64().unwrap();
    assert!((floor - (u8acc - 2.0)).abs() < 1e-9, "default floor");
    // The whole front traced from accuracy 0, cut at the floor: the same points.
    let all = front_json(&dir, &inst, "none", &["--min-accuracy", "0"]);
    assert_eq!(all["complete"], true);
    let above: Vec<(f64, f64)> = energy_accuracy(&all["points"])
        .into_iter()
        .filter(|p| p.1 >= floor)
        .collect();
    assert_eq!(energy_accuracy(&v["points"]), above);
    assert!(above.len() >= 3, "{above:?}");
    // It reaches the most accurate design within the floor: uniform 8-bit's accuracy or more.
    assert!(above.iter().any(|p| p.1 >= u8acc));
    // The headline: the least-energy point at no loss and within the tolerance, and its savings.
    let u8e = v["uniform_8bit"]["energy_pj"].as_f64().unwrap();
    let random = v["uniform_8bit_random_search_pj"].as_f64().unwrap();
    let headline = v["headline"].as_array().unwrap();
    assert_eq!(headline.len(), 2);
    for (h, tolerance) in headline.iter().zip([0.0, 0.5]) {
        assert_eq!(h["accuracy_tolerance"].as_f64().unwrap(), tolerance);
        let best = above
            .iter()
            .filter(|p| p.1 >= u8acc - tolerance)
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min);
        let e = h["energy_pj"].as_f64().unwrap();
        assert_eq!(e, best, "tolerance {tolerance}");
        let saved = h["energy_saved_vs_uniform_8bit_percent"].as_f64().unwrap();
        assert!((saved - 100.0 * (1.0 - e / u8e)).abs() < 1e-9);
        let saved_rs = h["energy_saved_vs_uniform_8bit_random_search_percent"]
            .as_f64()
            .unwrap();
        assert!((saved_rs - 100.0 * (1.0 - e / random)).abs() < 1e-9);
        assert!(random >= u8e, "random search never beats the optimum");
    }
    assert!(
        headline[1]["energy_pj"].as_f64().unwrap() <= headline[0]["energy_pj"].as_f64().unwrap()
    );
}

#[test]
fn a_budget_cuts_the_front_and_says_where() {
    let dir = scratch("budget");
    let inst = small_instance(&dir);
    let full = front_json(&dir, &inst, "none", &["--min-accuracy", "0"]);
    let v = front_json(
        &dir,
        &inst,
        "none",
        &["--min-accuracy", "0", "--points", "2"],
    );
    assert_eq!(v["complete"], false);
    assert_eq!(v["stopped"]["reason"], "point_budget");
    assert_eq!(v["points"].as_array().unwrap().len(), 2);
    // The points kept are the front's two of least energy; the last is where it stopped.
    let kept = energy_accuracy(&v["points"]);
    assert_eq!(kept, energy_accuracy(&full["points"])[..2].to_vec());
    assert_eq!(v["stopped"]["last_energy_pj"].as_f64().unwrap(), kept[1].0);
    // The terminal says so too.
    let out = qmap_in(
        &dir,
        &[
            "front",
            inst.to_str().unwrap(),
            "--cache",
            "none",
            "--points",
            "2",
            "--min-accuracy",
            "0",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("front: 2 points, INCOMPLETE") && text.contains("  stopped after 2 points"),
        "{text}"
    );
}

#[test]
fn warm_runs_read_the_front_and_the_baseline_from_the_cache_and_check_them() {
    let dir = scratch("warm");
    let inst = small_instance(&dir);
    let cache = dir.join("cache");
    let cold = front_json(&dir, &inst, cache.to_str().unwrap(), &[]);
    let warm = front_json(&dir, &inst, cache.to_str().unwrap(), &[]);
    for key in [
        "points",
        "uniform_8bit_random_search_pj",
        "headline",
        "complete",
    ] {
        assert_eq!(warm[key], cold[key], "{key}");
    }
    let uncached = front_json(&dir, &inst, "none", &[]);
    assert_eq!(
        uncached["uniform_8bit_random_search_pj"],
        cold["uniform_8bit_random_search_pj"]
    );
    // Tamper with every cached front and random-search file: each is rejected and recomputed.
    let mut tampered = (0, 0);
    for sub in std::fs::read_dir(&cache).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            let f = f.unwrap().path();
            let text = std::fs::read_to_string(&f).unwrap();
            let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if v["kind"] == "random-baseline" && v["energy_pj"].is_f64() {
                v["energy_pj"] = (v["energy_pj"].as_f64().unwrap() * 0.5).into();
                tampered.0 += 1;
            } else if v["front"]["points"].is_array() {
                v["front"]["points"].as_array_mut().unwrap().pop();
                tampered.1 += 1;
            } else {
                continue;
            }
            std::fs::write(&f, v.to_string()).unwrap();
        }
    }
    assert!(tampered.0 >= 1 && tampered.1 == 1, "{tampered:?}");
    let again = front_json(&dir, &inst, cache.to_str().unwrap(), &[]);
    for key in ["points", "uniform_8bit_random_search_pj", "headline"] {
        assert_eq!(again[key], cold[key], "{key}");
    }
}

/// `--max-cycles X`: network cycles at most X over the table's mappings. The energy × cycles
/// front under it is the whole energy × cycles front's points within X, and the energy ×
/// accuracy front's least energy is the least energy among those; `--json` says what the
/// budget is optimal over.
#[test]
fn a_network_latency_budget_keeps_the_designs_within_it() {
    let dir = scratch("latency");
    let inst = small_instance(&dir);
    let cache = dir.join("cache");
    let cache = cache.to_str().unwrap();
    let all = ["--min-accuracy", "0", "--front", "cycles"];
    let full = front_json(&dir, &inst, cache, &all);
    assert_eq!(full["complete"], true);
    let pts = |v: &serde_json::Value| -> Vec<(f64, u64)> {
        (v["points"].as_array().unwrap().iter())
            .map(|p| {
                (
                    p["energy_pj"].as_f64().unwrap(),
                    p["cycles"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let front = pts(&full);
    assert!(front.len() >= 2, "{front:?}");
    let x = front[front.len() - 1].1;
    let cut = front_json(
        &dir,
        &inst,
        cache,
        &[&all[..], &["--max-cycles", &x.to_string()]].concat(),
    );
    assert!(full.get("latency_budget").is_none());
    assert_eq!(cut["latency_budget"]["max_cycles"], x);
    assert!(cut["latency_budget"]["optimal_over"]
        .as_str()
        .unwrap()
        .contains("one energy-optimal mapping per layer and bits"));
    let within: Vec<(f64, u64)> = front.iter().copied().filter(|p| p.1 <= x).collect();
    assert_eq!(pts(&cut), within);
    assert!(within.len() < front.len());
    let acc = front_json(
        &dir,
        &inst,
        cache,
        &["--min-accuracy", "0", "--max-cycles", &x.to_string()],
    );
    let least = pts(&acc).iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let want = within.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    assert_eq!(least, want);
    assert!(pts(&acc).iter().all(|p| p.1 <= x));
}
