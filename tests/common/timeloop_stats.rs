//! Reading Timeloop's stats.txt and comparing it with qmap's evaluation, for the tests that
//! check imported designs and mappings against Timeloop's outputs.

use qmap::eval::Evaluation;
use qmap::model::*;
use qmap::spec::PackingMode;
use qmap::timeloop::{apply_bypass_constraints, load_arch};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Per-tensor bit-widths in the problem's tensor order.
pub fn bits_of(p: &Problem, bits: &Option<HashMap<String, u32>>) -> Option<Bits> {
    bits.as_ref()
        .map(|b| Bits(p.tensors.iter().map(|t| b[&t.name]).collect()))
}

pub fn opts(p: &Problem, bits: &Option<HashMap<String, u32>>) -> ModelOptions {
    ModelOptions {
        bits: bits_of(p, bits),
        packing: PackingMode::Seed,
        ..Default::default()
    }
}

/// `stats.txt` blocks: level name → tensor name ("" for the level itself) → key → value text.
pub type Stats = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

pub fn parse_stats(text: &str) -> Stats {
    let mut out = Stats::new();
    let mut level: Option<String> = None;
    let mut tensor = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t == "Networks" || t.starts_with("Operational Intensity") {
            break;
        }
        if let Some(name) = t.strip_prefix("=== ").and_then(|s| s.strip_suffix(" ===")) {
            level = Some(name.to_string());
            tensor.clear();
            continue;
        }
        let Some(l) = &level else { continue };
        if t.ends_with(':') && !t.contains(' ') && line.starts_with("    ") {
            tensor = t.trim_end_matches(':').to_string();
            continue;
        }
        if let Some((k, v)) = t.split_once(" : ") {
            out.entry(l.clone())
                .or_default()
                .entry(tensor.clone())
                .or_default()
                .entry(k.trim().to_string())
                .or_insert_with(|| v.trim().to_string());
        }
    }
    out
}

/// The `Cycles: N` of the summary at the end of a stats.txt.
pub fn summary_cycles(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix("Cycles: "))
        .expect("stats: no summary `Cycles:`")
        .trim()
        .parse()
        .unwrap()
}

pub fn stat_u64(block: &BTreeMap<String, String>, key: &str) -> u64 {
    block
        .get(key)
        .unwrap_or_else(|| panic!("stats: no `{key}`"))
        .parse()
        .unwrap_or_else(|_| panic!("stats: `{key}` is not an integer"))
}

/// A printed energy ("30.25 pJ") in pJ.
pub fn stat_pj(block: &BTreeMap<String, String>, key: &str) -> f64 {
    let v = block
        .get(key)
        .unwrap_or_else(|| panic!("stats: no `{key}`"));
    v.trim_end_matches("pJ").trim().parse().unwrap()
}

/// Compares per-level × tensor counts (and, with `energies`, the printed per-tensor energies,
/// and the MAC's when `mac` names its block) of a stats.txt with an evaluation. Returns the
/// differences and the number of (level, tensor) blocks compared.
pub fn compare_with_stats(
    ev: &Evaluation,
    stats: &Stats,
    mac: Option<&str>,
    energies: bool,
) -> (Vec<String>, usize) {
    let mut errs = Vec::new();
    let blocks: usize = stats
        .values()
        .map(|t| t.keys().filter(|k| !k.is_empty()).count())
        .sum();
    let ours: usize = ev.levels.iter().map(|l| l.tensors.len()).sum();
    if blocks != ours || blocks == 0 {
        errs.push(format!(
            "{blocks} tensor blocks in the stats, {ours} kept tensors here"
        ));
    }
    for (lname, tensors) in stats {
        if let Some(level) = ev.levels.iter().find(|l| &l.name == lname) {
            for (tname, block) in tensors.iter().filter(|(t, _)| !t.is_empty()) {
                let Some(ot) = level.tensors.iter().find(|t| &t.name == tname) else {
                    errs.push(format!("{lname}.{tname}: kept by Timeloop, not by us"));
                    continue;
                };
                for (key, ours) in [
                    ("Scalar reads (per-instance)", ot.reads_per_instance),
                    ("Scalar fills (per-instance)", ot.fills_per_instance),
                    ("Scalar updates (per-instance)", ot.updates_per_instance),
                    ("Partition size", ot.partition_size),
                    ("Utilized capacity", ot.tile_words),
                    ("Utilized instances (max)", ot.instances),
                ] {
                    let want = stat_u64(block, key);
                    if want != ours {
                        errs.push(format!("{lname}.{tname}.{key}: want {want} got {ours}"));
                    }
                }
                if let Some(k) = block.get("Data operands per word") {
                    let want: u64 = k.parse().unwrap();
                    if want != ot.packing {
                        errs.push(format!(
                            "{lname}.{tname}.operands per word: want {want} got {}",
                            ot.packing
                        ));
                    }
                }
                if energies {
                    let want = stat_pj(block, "Energy (total)");
                    if (want - ot.energy_pj).abs() > 0.005 + 1e-9 * want.abs() {
                        errs.push(format!(
                            "{lname}.{tname}.energy: want {want} got {}",
                            ot.energy_pj
                        ));
                    }
                }
            }
            for ot in &level.tensors {
                if !tensors.contains_key(&ot.name) {
                    errs.push(format!("{lname}.{}: kept by us, not by Timeloop", ot.name));
                }
            }
        } else if Some(lname.as_str()) != mac && tensors.keys().any(|t| !t.is_empty()) {
            errs.push(format!("{lname}: level missing"));
        }
    }
    if let (true, Some(mac)) = (energies, mac) {
        let want = stat_pj(&stats[mac][""], "Energy (total)");
        if (want - ev.mac_energy_pj).abs() > 0.005 + 1e-9 * want {
            errs.push(format!("mac energy: want {want} got {}", ev.mac_energy_pj));
        }
    }
    (errs, blocks)
}

pub fn exercise_arch(dir: &Path, design: &str) -> Arch {
    let ex = dir.join("timeloop_exercises").join(design);
    let mut a = load_arch(
        &ex.join("arch.v3-hyphen.yaml"),
        Some(&ex.join("ERT.v3-hyphen.yaml")),
    )
    .unwrap();
    apply_bypass_constraints(&mut a, &ex.join("constraints.v3-hyphen.yaml")).unwrap();
    a
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("qmap-timeloop-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One design qmap exported with `--timeloop-dir` and `timeloop-model` ran (`dir` holds
/// arch.yaml, ERT.yaml, problem.yaml, map.yaml and timeloop-model.stats.txt): the problem read
/// back equals `built` (the one qmap builds from the layer), and qmap's evaluation matches the
/// stats (every per-level × tensor count, energies within 0.005 pJ) and `cycles`. Returns the
/// number of (level, tensor) blocks compared.
pub fn check_exported_design(dir: &Path, built: &Problem, cycles: u64) -> usize {
    let name = dir.display();
    let arch = load_arch(&dir.join("arch.yaml"), Some(&dir.join("ERT.yaml"))).unwrap();
    let (p, bits) = qmap::timeloop::load_problem(&dir.join("problem.yaml")).unwrap();
    assert_eq!((&p.dims, &p.bounds), (&built.dims, &built.bounds), "{name}");
    assert_eq!(
        format!("{:?}", p.tensors),
        format!("{:?}", built.tensors),
        "{name}"
    );
    let m = qmap::timeloop::load_mapping(&dir.join("map.yaml"), &arch, &p).unwrap();
    let ev = qmap::eval::evaluate(&p, &arch, &m, &opts(&p, &bits));
    assert!(ev.valid, "{name}: {:?}", ev.invalid);
    let text = std::fs::read_to_string(dir.join("timeloop-model.stats.txt")).unwrap();
    let (errs, n) = compare_with_stats(&ev, &parse_stats(&text), Some(&arch.mac.name), true);
    assert!(errs.is_empty(), "{name}: {errs:#?}");
    assert_eq!(
        (summary_cycles(&text), ev.cycles),
        (cycles, cycles),
        "{name}"
    );
    n
}
