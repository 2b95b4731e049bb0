//! `qmap export --timeloop-dir`: a qmap-format architecture (and its problem and mapping) written
//! as the four files `timeloop-model` takes, read back through qmap's own Timeloop importer,
//! gives the same architecture and the same evaluation — every count at every level, energy
//! and cycles — on random valid mappings of MobileNet layers on both shipped designs, native and
//! packed. (Run through a real Timeloop v3.0.3 build outside the test suite, the exported
//! optimal mappings of MobileNetV2 conv1, b2_dw and b3_exp on both designs reproduce qmap's
//! counts, cycles and energies: `docs/model.md`.)

mod common;

use common::{json, qmap_in, root, scratch};
use qmap::eval::{evaluate, Evaluation};
use qmap::instance;
use qmap::mapspace::Mapspace;
use qmap::model::{Arch, Bits, ModelOptions};
use qmap::timeloop::{
    export_arch, export_ert, export_mapping, export_problem, load_arch, load_mapping, load_problem,
};
use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;

/// The fields an evaluation depends on, level by level.
fn same_arch(a: &Arch, b: &Arch) -> Result<(), String> {
    let key = |a: &Arch| {
        let levels: Vec<String> = a
            .levels
            .iter()
            .map(|l| {
                let mut keep = l.must_keep.clone();
                let mut bypass = l.must_bypass.clone();
                keep.sort();
                bypass.sort();
                format!(
                    "{} {} {}x{} {:?} {} {} {} {} {:?} {:?} {} {} {} {:?} {:?} {:?}",
                    l.name,
                    l.instances,
                    l.mesh_x,
                    l.mesh_y,
                    l.depth.filter(|_| !l.dummy),
                    l.word_bits,
                    l.block_size,
                    l.cluster_size,
                    l.dummy,
                    keep,
                    bypass,
                    l.read_energy,
                    l.write_energy,
                    l.update_energy,
                    l.read_bandwidth,
                    l.write_bandwidth,
                    l.shared_bandwidth
                )
            })
            .collect();
        format!(
            "{levels:#?} mac {} {} {}x{} {}",
            a.mac.name, a.mac.instances, a.mac.mesh_x, a.mac.mesh_y, a.mac.energy
        )
    };
    if key(a) == key(b) {
        Ok(())
    } else {
        Err(format!("{}\n---\n{}", key(a), key(b)))
    }
}

/// Every count of two evaluations, their energies (to rounding) and cycles agree.
fn same_evaluation(a: &Evaluation, b: &Evaluation) -> Result<(), String> {
    let counts = |e: &Evaluation| -> Vec<String> {
        e.levels
            .iter()
            .flat_map(|l| {
                l.tensors.iter().map(move |t| {
                    format!(
                        "{} {} r{} f{} u{} x{} tile{}",
                        l.name, t.name, t.reads, t.fills, t.updates, t.instances, t.tile_points
                    )
                })
            })
            .collect()
    };
    if counts(a) != counts(b) || a.cycles != b.cycles || a.valid != b.valid {
        return Err(format!(
            "{:?} {} / {:?} {}",
            counts(a),
            a.cycles,
            counts(b),
            b.cycles
        ));
    }
    if (a.energy_pj - b.energy_pj).abs() > 1e-12 * a.energy_pj.abs() {
        return Err(format!("energy {} / {}", a.energy_pj, b.energy_pj));
    }
    Ok(())
}

#[test]
fn exported_designs_read_back_to_the_same_evaluation() {
    let dir = scratch("export-roundtrip");
    let mut checked = 0;
    for (arch_file, net, layers) in [
        (
            "eyeriss",
            "mobilenet_v2",
            ["conv1", "b2_dw", "b3_exp", "b16_pw"],
        ),
        ("simba", "mobilenet_v1", ["conv1", "dw2", "pw2", "fc"]),
    ] {
        for layer in layers {
            let inst_file = dir.join(format!("{arch_file}_{layer}.yaml"));
            std::fs::write(
                &inst_file,
                format!(
                    "architecture: {r}/models/arch/{arch_file}.yaml\nworkload: {{network: \
                     {r}/models/nets/{net}.yaml, select: {layer}}}\nconstraints: \
                     {r}/models/arch/{arch_file}_constraints.yaml\n",
                    r = root().display()
                ),
            )
            .unwrap();
            let inst = instance::load(&inst_file).unwrap();
            let problem = inst.layer().problem.clone();
            let arch = &inst.arch;
            let space = Mapspace::new(&problem, arch, &inst.constraints().unwrap()).unwrap();
            // The exported architecture and ERT read back as the same design.
            let out = dir.join(format!("{arch_file}_{layer}"));
            std::fs::create_dir_all(&out).unwrap();
            std::fs::write(out.join("arch.yaml"), export_arch(arch)).unwrap();
            std::fs::write(out.join("ERT.yaml"), export_ert(arch)).unwrap();
            let back = load_arch(&out.join("arch.yaml"), Some(&out.join("ERT.yaml"))).unwrap();
            same_arch(arch, &back).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(21);
            for i in 0..40 {
                let m = space.sample(&mut rng);
                let bits = Bits(vec![[8, 4, 2][i % 3], 8, 8]);
                for opts in [
                    ModelOptions::default(),
                    ModelOptions {
                        bits: Some(bits.clone()),
                        ..Default::default()
                    },
                ] {
                    let ev = evaluate(&problem, arch, &m, &opts);
                    if !ev.valid {
                        continue;
                    }
                    std::fs::write(
                        out.join("problem.yaml"),
                        export_problem(&problem, opts.bits.as_ref()),
                    )
                    .unwrap();
                    std::fs::write(out.join("map.yaml"), export_mapping(&m, arch, &problem))
                        .unwrap();
                    let (p2, b2) = load_problem(&out.join("problem.yaml")).unwrap();
                    assert_eq!((&p2.dims, &p2.bounds), (&problem.dims, &problem.bounds));
                    // The exported bit-widths come back as the problem's `bitwidths`.
                    assert_eq!(b2.is_some(), opts.bits.is_some());
                    let m2 = load_mapping(&out.join("map.yaml"), &back, &p2).unwrap();
                    let ev2 = evaluate(&p2, &back, &m2, &opts);
                    same_evaluation(&ev, &ev2)
                        .unwrap_or_else(|e| panic!("{arch_file} {layer} sample {i}: {e}"));
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 200, "{checked} evaluations compared");
}

/// The command line: `qmap export --timeloop-dir` writes the four files and `qmap eval
/// --timeloop` on them prints the instance's own evaluation.
#[test]
fn export_command_writes_a_design_timeloop_reads() {
    let dir = scratch("export-cli");
    let inst = root().join("instances/default.yaml");
    let out = dir.join("tl");
    let o = qmap_in(
        &dir,
        &[
            "export",
            inst.to_str().unwrap(),
            "--timeloop-dir",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml"));
    let own = json(&qmap_in(&dir, &["eval", inst.to_str().unwrap(), "--json"]));
    let f = |n: &str| out.join(n).display().to_string();
    let back = json(&qmap_in(
        &dir,
        &[
            "eval",
            "--json",
            "--timeloop",
            &f("arch.yaml"),
            &f("problem.yaml"),
            &f("map.yaml"),
            &f("ERT.yaml"),
        ],
    ));
    assert_eq!(own["energy_pj"], back["energy_pj"]);
    assert_eq!(own["cycles"], back["cycles"]);
    assert_eq!(own["levels"], back["levels"]);
}
