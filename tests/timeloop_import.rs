//! The Timeloop importer against Timeloop's own inputs and outputs (`../shared/reference`):
//! 1. the 62 generated cases built from their arch / ERT / constraints / problem / map files;
//! 2. the three timeloop-accelergy exercises against their stats.txt and v3.0.3's totals;
//! 3. the seed toolchain's simple_2d_conv (v0.3 files, bit-widths) against its stats.txt.
//!
//! Also: the seed's Eyeriss/Simba architecture sources against the specs its stats print, and
//! error reporting on bad inputs (which needs no reference).

mod common;

use qmap::eval::{evaluate, Evaluation};
use qmap::model::*;
use qmap::timeloop::{apply_bypass_constraints, load_arch, load_mapping, load_problem};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::timeloop_stats::*;

// ---------------------------------------------------------------------------------------------
// 1. The 62 generated cases through the importer
// ---------------------------------------------------------------------------------------------

/// The imported architecture against the record's description of it.
fn check_arch(arch: &Arch, rec: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let a = &rec["arch"];
    let recs = a["levels_inner_to_outer"].as_array().unwrap();
    let names: Vec<&str> = recs.iter().map(|l| l["name"].as_str().unwrap()).collect();
    let ours: Vec<&str> = arch.levels.iter().map(|l| l.name.as_str()).collect();
    if names != ours {
        return vec![format!("levels: want {names:?} got {ours:?}")];
    }
    for (l, r) in arch.levels.iter().zip(recs) {
        let dummy = r["dummy"].as_bool().unwrap();
        let u = |k: &str| r[k].as_u64();
        let mut check = |what: &str, want: Option<u64>, got: Option<u64>| {
            if want != got {
                errs.push(format!("{}.{what}: want {want:?} got {got:?}", l.name));
            }
        };
        check("instances", u("instances"), Some(l.instances));
        check("meshX", u("meshX"), Some(l.mesh_x));
        check("meshY", u("meshY"), Some(l.mesh_y));
        if !dummy {
            check("depth", u("depth"), l.depth);
        }
        check("width", u("width"), Some(l.width));
        check("word_bits", u("word_bits"), Some(l.word_bits));
        check("block_size", u("block_size"), Some(l.block_size));
        check("cluster_size", u("cluster_size"), Some(l.cluster_size));
        if dummy != l.dummy {
            errs.push(format!("{}.dummy: want {dummy}", l.name));
        }
        for (k, got) in [
            ("read_energy_pJ", l.read_energy),
            ("write_energy_pJ", l.write_energy),
            ("update_energy_pJ", l.update_energy),
        ] {
            let want = r[k].as_f64().unwrap_or(0.0);
            if want != got {
                errs.push(format!("{}.{k}: want {want} got {got}", l.name));
            }
        }
        let set = |v: &Value| -> Vec<String> {
            let mut s: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect();
            s.sort();
            s
        };
        let sorted = |v: &[String]| {
            let mut s = v.to_vec();
            s.sort();
            s
        };
        // Timeloop keeps everything at the outermost level by default (the record lists that as
        // `keep`); the importer leaves that level free, and unmentioned tensors default to kept.
        let outermost_default = std::ptr::eq(l, arch.levels.last().unwrap())
            && l.must_keep.is_empty()
            && l.must_bypass.is_empty()
            && r["bypass"].as_array().unwrap().is_empty();
        if !outermost_default
            && (set(&r["keep"]) != sorted(&l.must_keep)
                || set(&r["bypass"]) != sorted(&l.must_bypass))
        {
            errs.push(format!(
                "{}: keep/bypass want {:?}/{:?} got {:?}/{:?}",
                l.name, r["keep"], r["bypass"], l.must_keep, l.must_bypass
            ));
        }
    }
    let m = &a["mac"];
    if m["instances"].as_u64() != Some(arch.mac.instances)
        || m["meshX"].as_u64() != Some(arch.mac.mesh_x)
        || m["meshY"].as_u64() != Some(arch.mac.mesh_y)
        || m["energy_pJ"].as_f64() != Some(arch.mac.energy)
    {
        errs.push(format!("mac: want {m} got {:?}", arch.mac));
    }
    errs
}

/// The imported mapping against the record's (factors, permutation, X/Y dims, keep).
fn check_mapping(m: &Mapping, arch: &Arch, p: &Problem, rec: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for e in rec["mapping"].as_array().unwrap() {
        let target = e["target"].as_str().unwrap();
        let lm = &m.levels[arch.level_index(target).unwrap()];
        let dims = |loops: &[Loop]| -> Vec<String> {
            loops
                .iter()
                .filter(|l| l.factor > 1)
                .map(|l| p.dims[l.dim].clone())
                .collect()
        };
        let names = |k: &str| -> Vec<String> {
            e[k].as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        match e["type"].as_str().unwrap() {
            "temporal" => {
                let perm: String = lm.temporal.iter().map(|l| p.dims[l.dim].as_str()).collect();
                if perm != e["permutation"].as_str().unwrap() {
                    errs.push(format!("{target}: permutation {perm}"));
                }
                for l in &lm.temporal {
                    if Some(l.factor) != e["factors"][&p.dims[l.dim]].as_u64() {
                        errs.push(format!("{target}: factor of {}", p.dims[l.dim]));
                    }
                }
                let keep: Vec<String> = p
                    .tensors
                    .iter()
                    .zip(&lm.keep)
                    .filter(|(_, k)| **k)
                    .map(|(t, _)| t.name.clone())
                    .collect();
                let mut want = names("keep");
                want.sort();
                let mut keep = keep;
                keep.sort();
                if keep != want {
                    errs.push(format!("{target}: keep {keep:?}, want {want:?}"));
                }
            }
            "spatial"
                if dims(&lm.spatial_x) != names("x_dims")
                    || dims(&lm.spatial_y) != names("y_dims") =>
            {
                errs.push(format!(
                    "{target}: spatial X {:?} Y {:?}, want {:?} {:?}",
                    dims(&lm.spatial_x),
                    dims(&lm.spatial_y),
                    e["x_dims"],
                    e["y_dims"]
                ));
            }
            _ => {}
        }
    }
    errs
}

#[test]
fn generated_cases_through_the_importer() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("timeloop_generated/cases.jsonl")).unwrap();
    let mut archs: HashMap<String, Arch> = HashMap::new();
    let mut failures = Vec::new();
    let (mut checked, mut valid, mut invalid) = (0, 0, 0);
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        let id = rec["id"].as_str().unwrap().to_string();
        let design = rec["design"].as_str().unwrap().to_string();
        let arch = archs
            .entry(design.clone())
            .or_insert_with(|| exercise_arch(&dir, &design));
        let case = dir.join("timeloop_generated/cases").join(&id);
        let (p, bits) = load_problem(&case.join("problem.yaml")).unwrap();
        let mapping = load_mapping(&case.join("map.yaml"), arch, &p).unwrap();
        checked += 1;
        let mut errs = check_arch(arch, &rec);
        errs.extend(check_mapping(&mapping, arch, &p, &rec));
        let want_bits: Option<HashMap<String, u32>> = rec["bitwidths"].as_object().map(|b| {
            b.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as u32))
                .collect()
        });
        if want_bits != bits {
            errs.push(format!("bitwidths: want {want_bits:?} got {bits:?}"));
        }
        let ev = evaluate(&p, arch, &mapping, &opts(&p, &bits));
        if !rec["valid"].as_bool().unwrap() {
            invalid += 1;
            let reason = rec["fail_reason"].as_str().unwrap();
            match &ev.invalid {
                Some(inv) if !ev.valid && reason.contains(inv.level.as_deref().unwrap_or("?")) => {}
                _ => errs.push(format!("expected invalid ({reason}), got {:?}", ev.invalid)),
            }
        } else if !ev.valid {
            errs.push(format!("rejected: {:?}", ev.invalid));
        } else {
            valid += 1;
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
        }
        if !errs.is_empty() {
            failures.push(format!("{id}:\n    {}", errs.join("\n    ")));
        }
    }
    assert_eq!(checked, 62, "expected 62 cases");
    assert!(valid > 0 && invalid > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The timeloop-accelergy exercises
// ---------------------------------------------------------------------------------------------

/// Timeloop v3.0.3 on the exercises' arch / problem / map (reference/README.md): dynamic
/// energy (pJ) and cycles.
const EXERCISES: [(&str, f64, u64); 3] = [
    ("eyeriss_like", 59_259_828.70, 86_016),
    ("simba_like", 237_411_436.28, 225_792),
    ("simple_weight_stationary", 151_652_275.20, 903_168),
];

fn run_exercise(ex: &Path, arch: &Arch) -> (Problem, Evaluation) {
    let (p, bits) = load_problem(&ex.join("problem.yaml")).unwrap();
    assert!(bits.is_none());
    let m = load_mapping(&ex.join("map.yaml"), arch, &p).unwrap();
    let ev = evaluate(&p, arch, &m, &opts(&p, &bits));
    assert!(ev.valid, "{}: {:?}", ex.display(), ev.invalid);
    (p, ev)
}

#[test]
fn exercises_match_timeloop() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut failures = Vec::new();
    for (design, energy, cycles) in EXERCISES {
        let ex = dir.join("timeloop_exercises").join(design);
        let arch = load_arch(&ex.join("arch.yaml"), Some(&ex.join("ERT.yaml"))).unwrap();
        let (p, ev) = run_exercise(&ex, &arch);
        assert_eq!(p.dims, ["C", "M", "R", "S", "N", "P", "Q"]);
        let stats = parse_stats(
            &std::fs::read_to_string(ex.join("ref-timeloop-mapper.stats.txt")).unwrap(),
        );
        let mut errs = compare_with_stats(&ev, &stats, None, true).0;
        let mac = &stats[&arch.mac.name][""];
        let want_mac = stat_pj(mac, "Energy (total)");
        if (want_mac - ev.mac_energy_pj).abs() > 0.005 + 1e-9 * want_mac {
            errs.push(format!(
                "mac energy: want {want_mac} got {}",
                ev.mac_energy_pj
            ));
        }
        if common::rel_diff(energy, ev.energy_pj) > 1e-6 {
            errs.push(format!("energy: want {energy} got {}", ev.energy_pj));
        }
        if cycles != ev.cycles {
            errs.push(format!("cycles: want {cycles} got {}", ev.cycles));
        }
        // The older hyphenated spelling with its separate constraints file: identical results.
        if ex.join("arch.v3-hyphen.yaml").exists() {
            let a3 = exercise_arch(&dir, design);
            if a3 != arch {
                errs.push(format!("v3-hyphen arch differs:\n{arch:#?}\nvs\n{a3:#?}"));
            }
            let (_, ev3) = run_exercise(&ex, &a3);
            if serde_json::to_value(&ev3).unwrap() != serde_json::to_value(&ev).unwrap() {
                errs.push("v3-hyphen arch/ERT evaluate differently".into());
            }
        }
        eprintln!(
            "{design}: {:.2} pJ, {} cycles (Timeloop v3.0.3: {energy:.2} pJ, {cycles} cycles)",
            ev.energy_pj, ev.cycles
        );
        if !errs.is_empty() {
            failures.push(format!("{design}:\n    {}", errs.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 3. The seed toolchain's simple_2d_conv (v0.3 files, per-tensor bit-widths)
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_simple_2d_conv_matches_its_stats() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let mut failures = Vec::new();
    for (variant, want_bits) in [
        ("native", None),
        ("same_quantization", Some([4, 4, 4])),
        ("different_quantization", Some([8, 3, 8])),
    ] {
        let d = dir.join("seed_toolchain/simple_2d_conv").join(variant);
        let arch = load_arch(
            &d.join("1level.arch.yaml"),
            Some(&d.join("timeloop-model.ERT.yaml")),
        )
        .unwrap();
        assert_eq!(arch.levels.len(), 1);
        let buf = &arch.levels[0];
        assert_eq!(
            (
                buf.name.as_str(),
                buf.depth,
                buf.width,
                buf.word_bits,
                buf.block_size
            ),
            ("Buffer", Some(64), 8, 8, 1)
        );
        assert_eq!(
            (buf.read_bandwidth, buf.write_bandwidth),
            (Some(3.0), Some(1.0))
        );
        // Several address/data-delta variants per action: the largest energy.
        assert_eq!(
            (buf.read_energy, buf.write_energy, buf.update_energy),
            (0.42018, 0.42018, 0.42018)
        );
        assert_eq!((arch.mac.name.as_str(), arch.mac.energy), ("MAC", 0.5608));
        let (p, bits) = load_problem(&d.join("cnn-layer.prob.yaml")).unwrap();
        assert_eq!(p.name, "CNN-Layer");
        assert_eq!(p.dims, ["C", "B", "N", "R", "S", "P", "Q"]);
        assert_eq!(p.bounds, [1, 1, 1, 3, 3, 4, 4]);
        assert_eq!(p.tensor_size(p.tensor_index("Inputs").unwrap()), 36);
        let got_bits = bits_of(&p, &bits).map(|b| b.0);
        // Tensor order Weights, Inputs, Outputs; `want_bits` is [Inputs, Weights, Outputs].
        let want = want_bits.map(|[i, w, o]: [u32; 3]| vec![w, i, o]);
        assert_eq!(got_bits, want, "{variant}: bit-widths");
        let m = load_mapping(&d.join("conv-1level.yaml"), &arch, &p).unwrap();
        let ev = evaluate(&p, &arch, &m, &opts(&p, &bits));
        assert!(ev.valid, "{variant}: {:?}", ev.invalid);
        let stats =
            parse_stats(&std::fs::read_to_string(d.join("timeloop-model.stats.txt")).unwrap());
        let mut errs = compare_with_stats(&ev, &stats, None, true).0;
        let want_mac = stat_pj(&stats["MAC"][""], "Energy (total)");
        if (want_mac - ev.mac_energy_pj).abs() > 0.005 {
            errs.push(format!(
                "MAC energy: want {want_mac} got {}",
                ev.mac_energy_pj
            ));
        }
        assert_eq!(stat_u64(&stats["Buffer"][""], "Cycles"), ev.cycles);
        if !errs.is_empty() {
            failures.push(format!("{variant}:\n    {}", errs.join("\n    ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The seed's architecture sources against the specs its stats print
// ---------------------------------------------------------------------------------------------

#[test]
fn seed_architectures_match_their_printed_specs() {
    let Some(dir) = common::reference_dir() else {
        return;
    };
    let seed = dir.join("seed_toolchain");
    for (arch_file, constraints, stats_file, levels) in [
        (
            "eyeriss_like.yaml",
            "eyeriss_like_arch_constraints.yaml",
            "eyeriss_16bit_act8_weights4_layer2.stats.txt",
            &[
                "psum_spad",
                "weights_spad",
                "ifmap_spad",
                "DummyBuffer",
                "shared_glb",
                "DRAM",
            ][..],
        ),
        (
            "simba_like.yaml",
            "simba_like_arch_constraints.yaml",
            "simba_16bit_act8_weights4_layer2.stats.txt",
            &[
                "PEWeightRegs",
                "PEAccuBuffer",
                "PEWeightBuffer",
                "PEInputBuffer",
                "GlobalBuffer",
                "DRAM",
            ][..],
        ),
    ] {
        let mut arch = load_arch(&seed.join(arch_file), None).unwrap();
        apply_bypass_constraints(&mut arch, &seed.join(constraints)).unwrap();
        let names: Vec<&str> = arch.levels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, levels, "{arch_file}");
        let stats = parse_stats(
            &std::fs::read_to_string(seed.join("mobilenet_stats").join(stats_file)).unwrap(),
        );
        for l in &arch.levels {
            let s = &stats[&l.name][""];
            let size = l
                .capacity_words()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into());
            let bw = |b: Option<f64>| b.map(|b| format!("{b:.2}")).unwrap_or_else(|| "-".into());
            let inst = format!("{} ({}*{})", l.instances, l.mesh_x, l.mesh_y);
            for (key, ours) in [
                ("Size", size),
                ("Word bits", l.word_bits.to_string()),
                ("Block size", l.block_size.to_string()),
                ("Cluster size", l.cluster_size.to_string()),
                ("Instances", inst),
                ("Read bandwidth", bw(l.read_bandwidth)),
                ("Write bandwidth", bw(l.write_bandwidth)),
            ] {
                assert_eq!(s[key], ours, "{arch_file}: {}.{key}", l.name);
            }
        }
        let mac = &stats[&arch.mac.name][""];
        assert_eq!(
            mac["Instances"],
            format!(
                "{} ({}*{})",
                arch.mac.instances, arch.mac.mesh_x, arch.mac.mesh_y
            )
        );
        // The architecture constraints' keep/bypass rules.
        let rule = |lvl: &str, t: &str| arch.levels[arch.level_index(lvl).unwrap()].keep_rule(t);
        if arch_file.starts_with("eyeriss") {
            assert_eq!(rule("DummyBuffer", "Inputs"), KeepRule::Never);
            assert_eq!(rule("shared_glb", "Weights"), KeepRule::Never);
            assert_eq!(rule("shared_glb", "Inputs"), KeepRule::Must);
            assert_eq!(rule("DRAM", "Weights"), KeepRule::Free);
        } else {
            assert_eq!(rule("PEWeightRegs", "Weights"), KeepRule::Must);
            assert_eq!(rule("PEAccuBuffer", "Inputs"), KeepRule::Never);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors name the file and the field; nothing panics
// ---------------------------------------------------------------------------------------------

const ARCH: &str = "
architecture:
  version: 0.3
  subtree:
    - name: chip
      attributes: {word-bits: 8}
      local:
        - name: DRAM
          class: DRAM
          attributes: {width: 64, block-size: 8}
      subtree:
        - name: PE[0..3]
          local:
            - name: buf
              class: storage
              subclass: regfile
              attributes: {depth: DEPTH, width: 16, meshX: 2}
            - name: mac
              class: compute
              subclass: intmac
              attributes: {meshX: 2}
";

const ERT: &str = "
ERT:
  tables:
    - name: chip.DRAM
      actions:
        - {name: read, arguments: null, energy: 100}
        - {name: write, arguments: null, energy: 90}
    - name: chip.PE[0..3].buf
      actions:
        - {name: read, arguments: {address_delta: 0}, energy: 1.0}
        - {name: read, arguments: {address_delta: 1}, energy: 1.5}
        - {name: write, arguments: null, energy: 2.0}
        - {name: update, arguments: null, energy: 2.5}
    - name: chip.PE[0..3].mac
      actions:
        - {name: mac_random, arguments: null, energy: 0.5}
        - {name: mac_gated, arguments: null, energy: 0.1}
";

const PROBLEM: &str = "
problem:
  shape:
    name: MatVec
    dimensions: [K, N]
    data-spaces:
      - name: A
        projection: [[[K]], [[N]]]
      - name: x
        projection: [[[K]]]
      - name: y
        projection: [[[N]]]
        read-write: true
  instance: {K: 8, N: 4, bitwidths: {A: 4}}
";

fn err_text(e: qmap::spec::InputError) -> String {
    e.to_string()
}

#[test]
fn small_design_imports_and_evaluates() {
    let t = TempDir::new("ok");
    let arch = load_arch(
        &t.file("arch.yaml", &ARCH.replace("DEPTH", "16")),
        Some(&t.file("ert.yaml", ERT)),
    )
    .unwrap();
    // Innermost first; PE[0..3] multiplies the instances below it; block = width / word bits.
    assert_eq!(arch.levels.len(), 2);
    let (buf, dram) = (&arch.levels[0], &arch.levels[1]);
    assert_eq!(
        (
            buf.name.as_str(),
            buf.instances,
            buf.mesh_x,
            buf.mesh_y,
            buf.block_size,
            buf.depth
        ),
        ("buf", 4, 2, 2, 2, Some(16))
    );
    assert_eq!(
        (buf.read_energy, buf.write_energy, buf.update_energy),
        (1.5, 2.0, 2.5)
    );
    assert_eq!(
        (dram.block_size, dram.depth, dram.update_energy),
        (8, None, 90.0)
    );
    assert_eq!(
        (arch.mac.instances, arch.mac.mesh_x, arch.mac.energy),
        (4, 2, 0.5)
    );
    let (p, bits) = load_problem(&t.file("prob.yaml", PROBLEM)).unwrap();
    assert_eq!(p.name, "MatVec");
    assert_eq!(bits, Some(HashMap::from([("A".to_string(), 4)])));
    // Spatial split 1: N on X, K on Y; buf keeps only y; DRAM keeps everything by default.
    let m = load_mapping(
        &t.file(
            "map.yaml",
            "problem: ignored\nmapping:\n  - {target: buf, type: datatype, keep: [y], bypass: [A, x]}\n  \
             - {target: buf, type: temporal, factors: K4 N2, permutation: NK}\n  \
             - {target: DRAM, type: spatial, factors: N=2 K=2, permutation: NK, split: 1}\n",
        ),
        &arch,
        &p,
    )
    .unwrap();
    let (n, k) = (p.dim_index("N").unwrap(), p.dim_index("K").unwrap());
    assert_eq!(
        m.levels[0].temporal,
        [Loop { dim: n, factor: 2 }, Loop { dim: k, factor: 4 }]
    );
    assert_eq!(m.levels[1].spatial_x, [Loop { dim: n, factor: 2 }]);
    assert_eq!(m.levels[1].spatial_y, [Loop { dim: k, factor: 2 }]);
    assert_eq!(m.levels[0].keep, [false, false, true]);
    assert_eq!(m.levels[1].keep, [true, true, true]);
    let ev = evaluate(&p, &arch, &m, &ModelOptions::default());
    assert!(ev.valid, "{:?}", ev.invalid);
}

#[test]
fn bad_inputs_are_reported_with_file_and_field() {
    let t = TempDir::new("bad");
    let ert = t.file("ert.yaml", ERT);
    let arch_path = t.file("arch.yaml", &ARCH.replace("DEPTH", "0"));
    let e = err_text(load_arch(&arch_path, Some(&ert)).unwrap_err());
    assert!(
        e.contains("arch.yaml")
            && e.contains(
                "architecture.subtree[0].subtree[0].local[0].attributes.depth: must be > 0"
            ),
        "{e}"
    );
    let e = err_text(
        load_arch(
            &t.file(
                "arch2.yaml",
                &ARCH.replace("DEPTH", "16").replace(
                    "meshX: 2}\n            - name: mac",
                    "meshX: 3}\n            - name: mac",
                ),
            ),
            Some(&ert),
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("local[0].attributes.meshX: must divide the 4 instances"),
        "{e}"
    );
    let e = err_text(
        load_arch(
            &t.file(
                "arch3.yaml",
                &ARCH.replace("DEPTH", "16").replace("PE[0..3]", "PE[3..0]"),
            ),
            Some(&ert),
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("subtree[0].subtree[0].name") && e.contains("empty instance range"),
        "{e}"
    );
    let good_arch = t.file("good.yaml", &ARCH.replace("DEPTH", "16"));
    let e = err_text(
        load_arch(
            &good_arch,
            Some(&t.file("ert2.yaml", &ERT.replace("chip.DRAM", "chip.HBM"))),
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("ert2.yaml: ERT.tables: no table for storage level `DRAM`"),
        "{e}"
    );
    let e = err_text(load_arch(&t.file("junk.yaml", "a: [b"), None).unwrap_err());
    assert!(e.contains("junk.yaml") && e.contains("invalid YAML"), "{e}");
    let e = err_text(load_arch(&t.file("none.yaml", "foo: 1"), None).unwrap_err());
    assert!(e.contains("no `architecture`"), "{e}");

    let e = err_text(load_problem(&t.file("p1.yaml", &PROBLEM.replace("K: 8, ", ""))).unwrap_err());
    assert!(e.contains("p1.yaml: problem.instance.K: missing"), "{e}");
    let e = err_text(
        load_problem(&t.file(
            "p2.yaml",
            &PROBLEM.replace("[[[K]], [[N]]]", "[[[K]], [[Z]]]"),
        ))
        .unwrap_err(),
    );
    assert!(
        e.contains("problem.shape.data-spaces[0].projection[1][0]"),
        "{e}"
    );
    let e = err_text(
        load_problem(&t.file("p3.yaml", &PROBLEM.replace("{A: 4}", "{B: 4}"))).unwrap_err(),
    );
    assert!(
        e.contains("problem.instance.bitwidths.B: unknown data space"),
        "{e}"
    );

    let arch = load_arch(&good_arch, Some(&ert)).unwrap();
    let (p, _) = load_problem(&t.file("prob.yaml", PROBLEM)).unwrap();
    let map = |name: &str, body: &str| load_mapping(&t.file(name, body), &arch, &p);
    let e = err_text(
        map(
            "m1.yaml",
            "mapping:\n  - {target: buf, type: temporal, factors: K4 Z2, permutation: KN}\n",
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("m1.yaml: mapping[0].factors: unknown dimension `Z`"),
        "{e}"
    );
    let e = err_text(
        map(
            "m2.yaml",
            "mapping:\n  - {target: buf, type: temporal, factors: K4 N2, permutation: KN}\n",
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("dimension K multiply to 4, not to its bound 8"),
        "{e}"
    );
    let e = err_text(
        map(
            "m3.yaml",
            "mapping:\n  - {target: glb, type: temporal, factors: K8 N4}\n",
        )
        .unwrap_err(),
    );
    assert!(e.contains("mapping[0].target: unknown level `glb`"), "{e}");
    let e = err_text(
        map(
            "m4.yaml",
            "mapping:\n  - {target: buf, type: temporal, factors: K8 N4, permutation: KK}\n",
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("mapping[0].permutation: dimension `K` appears twice"),
        "{e}"
    );
    let e = err_text(
        map("m5.yaml", "mapping:\n  - {target: DRAM, type: temporal, factors: K8 N4}\n  - {target: buf, type: datatype, keep: [z]}\n")
            .unwrap_err(),
    );
    assert!(e.contains("mapping[1].keep: unknown data space `z`"), "{e}");
    // Factor 0 is the whole dimension, as in Timeloop.
    let m = map(
        "m6.yaml",
        "mapping:\n  - {target: DRAM, type: temporal, factors: K0 N0}\n",
    )
    .unwrap();
    assert_eq!(m.levels[1].temporal_factor(p.dim_index("K").unwrap()), 8);

    let mut a = arch.clone();
    let e = err_text(
        apply_bypass_constraints(
            &mut a,
            &t.file("c.yaml", "architecture_constraints:\n  targets:\n    - {target: nope, type: bypass, bypass: [A]}\n"),
        )
        .unwrap_err(),
    );
    assert!(
        e.contains("architecture_constraints.targets[0].target: unknown level `nope`"),
        "{e}"
    );
    apply_bypass_constraints(
        &mut a,
        &t.file("c2.yaml", "architecture_constraints:\n  targets:\n    - {target: buf, type: bypass, keep: [y], bypass: [A, x]}\n"),
    )
    .unwrap();
    assert_eq!(a.levels[0].keep_rule("A"), KeepRule::Never);
    assert_eq!(a.levels[0].keep_rule("y"), KeepRule::Must);
    // Unmentioned tensors follow the architecture's rules.
    let m = load_mapping(
        &t.file(
            "m7.yaml",
            "mapping:\n  - {target: DRAM, type: temporal, factors: K8 N4}\n",
        ),
        &a,
        &p,
    )
    .unwrap();
    assert_eq!(m.levels[0].keep, [false, false, true]);
}

/// Every single-line deletion and every numeric token replaced by an odd value in the small
/// fixtures: the loaders return errors (or a model), never panic.
#[test]
fn mutated_inputs_never_panic() {
    let t = TempDir::new("mut");
    let map = "mapping:\n  - {target: buf, type: datatype, keep: [y], bypass: [A, x]}\n  \
               - {target: buf, type: temporal, factors: K4 N2, permutation: NK}\n  \
               - {target: DRAM, type: spatial, factors: N=2 K=2, permutation: NK, split: 1}\n";
    let arch = ARCH.replace("DEPTH", "16");
    let base = [arch.as_str(), ERT, PROBLEM, map];
    let mut variants: Vec<(usize, String)> = Vec::new();
    for (f, text) in base.iter().enumerate() {
        let lines: Vec<&str> = text.lines().collect();
        for i in 0..lines.len() {
            let mut l = lines.clone();
            l.remove(i);
            variants.push((f, l.join("\n")));
        }
        let bytes: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let j = (i..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_digit())
                    .unwrap_or(bytes.len());
                for rep in ["0", "-3", "1e30", "abc", "18446744073709551615", "[]"] {
                    let s: String = bytes[..i]
                        .iter()
                        .chain(rep.chars().collect::<Vec<_>>().iter())
                        .chain(bytes[j..].iter())
                        .collect();
                    variants.push((f, s));
                }
                i = j;
            } else {
                i += 1;
            }
        }
    }
    for (n, (f, text)) in variants.iter().enumerate() {
        let mut files = base.map(str::to_string);
        files[*f] = text.clone();
        let paths: Vec<PathBuf> = files
            .iter()
            .enumerate()
            .map(|(k, s)| t.file(&format!("v{k}.yaml"), s))
            .collect();
        let r = std::panic::catch_unwind(|| {
            let arch = load_arch(&paths[0], Some(&paths[1]))?;
            let (p, _) = load_problem(&paths[2])?;
            let m = load_mapping(&paths[3], &arch, &p)?;
            let _ = evaluate(&p, &arch, &m, &ModelOptions::default());
            Ok::<(), qmap::spec::InputError>(())
        });
        assert!(r.is_ok(), "variant {n} of file {f} panicked:\n{text}");
    }
}

#[test]
fn classic_arch_layout() {
    let t = TempDir::new("classic");
    let arch = load_arch(
        &t.file(
            "arch.yaml",
            "arch:\n  arithmetic: {name: MACs, instances: 4, meshX: 2, word-bits: 16}\n  \
             storage:\n    - {name: RF, entries: 64, instances: 4, meshX: 2, word-bits: 16, \
             vector-access-energy: 0.5}\n    - {name: DRAM, technology: DRAM, instances: 1, \
             word-bits: 16, block-size: 4, vector-access-energy: 10}\n",
        ),
        None,
    )
    .unwrap();
    let names: Vec<&str> = arch.levels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["RF", "DRAM"]);
    let (rf, dram) = (&arch.levels[0], &arch.levels[1]);
    assert_eq!(
        (rf.depth, rf.block_size, rf.mesh_y, rf.read_energy),
        (Some(64), 1, 2, 0.5)
    );
    assert_eq!(
        (dram.depth, dram.block_size, dram.width, dram.write_energy),
        (None, 4, 64, 10.0)
    );
    assert_eq!(
        (arch.mac.name.as_str(), arch.mac.instances, arch.mac.mesh_y),
        ("MACs", 4, 2)
    );
}
