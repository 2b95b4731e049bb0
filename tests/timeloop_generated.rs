//! The 62 Timeloop v3.0.3 cases of `../shared/reference/timeloop_generated/cases.jsonl`: every
//! per-level × tensor count exact, energy within 1e-6, cycles exact, invalid mappings rejected
//! with the overflowing level named. Built from the records' own arch / mapping fields.

mod common;

use qmap::eval::evaluate;
use qmap::model::*;
use qmap::spec::PackingMode;
use serde_json::Value;

fn problem_of(rec: &Value) -> Problem {
    let l = &rec["layer"];
    let g = |k: &str| l[k].as_u64().unwrap();
    conv_problem(
        "case",
        false,
        [g("N"), g("M"), g("C"), g("P"), g("Q"), g("R"), g("S")],
        [g("Wstride"), g("Hstride"), g("Wdilation"), g("Hdilation")],
    )
}

fn bandwidth(level: &str) -> Option<f64> {
    match level {
        "shared_glb" => Some(16.0),
        "psum_spad" | "weights_spad" | "ifmap_spad" => Some(2.0),
        _ => None,
    }
}

fn arch_of(rec: &Value) -> Arch {
    let a = &rec["arch"];
    let levels = a["levels_inner_to_outer"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let names = |k: &str| -> Vec<String> {
                l[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            let e = |k: &str| l[k].as_f64().unwrap_or(0.0);
            Level {
                name: l["name"].as_str().unwrap().into(),
                instances: l["instances"].as_u64().unwrap(),
                mesh_x: l["meshX"].as_u64().unwrap(),
                mesh_y: l["meshY"].as_u64().unwrap(),
                depth: if l["dummy"].as_bool().unwrap() {
                    None
                } else {
                    l["depth"].as_u64()
                },
                width: l["width"].as_u64().unwrap(),
                word_bits: l["word_bits"].as_u64().unwrap(),
                block_size: l["block_size"].as_u64().unwrap(),
                cluster_size: l["cluster_size"].as_u64().unwrap(),
                dummy: l["dummy"].as_bool().unwrap(),
                must_keep: names("keep"),
                must_bypass: names("bypass"),
                read_energy: e("read_energy_pJ"),
                write_energy: e("write_energy_pJ"),
                update_energy: e("update_energy_pJ"),
                // cases.jsonl omits bandwidths: the eyeriss_like exercise design declares them
                // (arch.yaml), simba_like none.
                read_bandwidth: bandwidth(l["name"].as_str().unwrap()),
                write_bandwidth: bandwidth(l["name"].as_str().unwrap()),
                shared_bandwidth: None,
            }
        })
        .collect();
    let m = &a["mac"];
    Arch {
        name: rec["design"].as_str().unwrap().into(),
        levels,
        mac: Mac {
            name: "mac".into(),
            instances: m["instances"].as_u64().unwrap(),
            mesh_x: m["meshX"].as_u64().unwrap(),
            mesh_y: m["meshY"].as_u64().unwrap(),
            energy: m["energy_pJ"].as_f64().unwrap(),
            energy_table: vec![],
        },
    }
}

fn mapping_of(rec: &Value, arch: &Arch, p: &Problem) -> Mapping {
    let mut m = Mapping {
        levels: arch
            .levels
            .iter()
            .map(|_| LevelMapping {
                keep: vec![false; 3],
                ..Default::default()
            })
            .collect(),
    };
    for e in rec["mapping"].as_array().unwrap() {
        let l = arch.level_index(e["target"].as_str().unwrap()).unwrap();
        let f = |d: &str| e["factors"][d].as_u64().unwrap();
        let perm: Vec<usize> = e["permutation"]
            .as_str()
            .unwrap()
            .chars()
            .map(|c| p.dim_index(&c.to_string()).unwrap())
            .collect();
        let loops = |dims: &[usize]| -> Vec<Loop> {
            dims.iter()
                .map(|&d| Loop {
                    dim: d,
                    factor: f(&p.dims[d]),
                })
                .collect()
        };
        match e["type"].as_str().unwrap() {
            "temporal" => {
                m.levels[l].temporal = loops(&perm);
                let keep: Vec<String> = e["keep"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                m.levels[l].keep = p.tensors.iter().map(|t| keep.contains(&t.name)).collect();
            }
            "spatial" => {
                let dims = |k: &str| -> Vec<usize> {
                    e[k].as_array()
                        .unwrap()
                        .iter()
                        .map(|v| p.dim_index(v.as_str().unwrap()).unwrap())
                        .collect()
                };
                m.levels[l].spatial_x = loops(&dims("x_dims"));
                m.levels[l].spatial_y = loops(&dims("y_dims"));
            }
            other => panic!("unexpected mapping type {other}"),
        }
    }
    m
}

#[test]
fn timeloop_generated_cases() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("timeloop_generated/cases.jsonl")).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let id = rec["id"].as_str().unwrap().to_string();
        let p = problem_of(&rec);
        let arch = arch_of(&rec);
        let mapping = mapping_of(&rec, &arch, &p);
        let bits = rec["bitwidths"].as_object().map(|b| {
            Bits(
                p.tensors
                    .iter()
                    .map(|t| b[&t.name].as_u64().unwrap() as u32)
                    .collect(),
            )
        });
        let opts = ModelOptions {
            bits,
            packing: PackingMode::Seed,
            ..Default::default()
        };
        let ev = evaluate(&p, &arch, &mapping, &opts);
        checked += 1;
        let mut errs = Vec::new();
        if !rec["valid"].as_bool().unwrap() {
            let reason = rec["fail_reason"].as_str().unwrap();
            match &ev.invalid {
                Some(inv) if !ev.valid && reason.contains(inv.level.as_deref().unwrap_or("?")) => {}
                _ => errs.push(format!("expected invalid ({reason}), got {:?}", ev.invalid)),
            }
            if !errs.is_empty() {
                failures.push(format!("{id}: {}", errs.join("; ")));
            }
            continue;
        }
        if !ev.valid {
            failures.push(format!("{id}: rejected: {:?}", ev.invalid));
            continue;
        }
        let res = &rec["results"];
        for lv in res["levels_inner_to_outer"].as_array().unwrap() {
            let name = lv["name"].as_str().unwrap();
            let ours = ev.levels.iter().find(|l| l.name == name).unwrap();
            for (tname, tv) in lv["tensors"].as_object().unwrap() {
                let Some(ot) = ours.tensors.iter().find(|t| &t.name == tname) else {
                    errs.push(format!("{name}.{tname}: missing"));
                    continue;
                };
                for (key, val) in [
                    ("reads_per_instance", ot.reads_per_instance),
                    ("fills_per_instance", ot.fills_per_instance),
                    ("updates_per_instance", ot.updates_per_instance),
                    ("partition_size", ot.partition_size),
                    ("utilized_capacity_words", ot.tile_words),
                    ("utilized_instances", ot.instances),
                ] {
                    let want = tv[key].as_f64().unwrap() as u64;
                    if want != val {
                        errs.push(format!("{name}.{tname}.{key}: want {want} got {val}"));
                    }
                }
                for (key, val) in [
                    ("reads_total", ot.reads),
                    ("fills_total", ot.fills),
                    ("updates_total", ot.updates),
                ] {
                    let want = tv[key].as_f64().unwrap();
                    if want != val as f64 {
                        errs.push(format!("{name}.{tname}.{key}: want {want} got {val}"));
                    }
                }
                let want_e = tv["energy_pJ"].as_f64().unwrap();
                if common::rel_diff(want_e, ot.energy_pj) > 1e-6 {
                    errs.push(format!(
                        "{name}.{tname}.energy: want {want_e} got {}",
                        ot.energy_pj
                    ));
                }
            }
        }
        let want_cycles = res["cycles"].as_u64().unwrap();
        if want_cycles != ev.cycles {
            errs.push(format!("cycles: want {want_cycles} got {}", ev.cycles));
        }
        let want_e = res["energy_pJ"].as_f64().unwrap();
        if common::rel_diff(want_e, ev.energy_pj) > 1e-6 {
            errs.push(format!("energy: want {want_e} got {}", ev.energy_pj));
        }
        if !errs.is_empty() {
            failures.push(format!("{id}:\n    {}", errs.join("\n    ")));
        }
    }
    assert_eq!(checked, 62, "expected 62 cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
