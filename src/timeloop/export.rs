//! Writing qmap's architectures, energies, problems and mappings as Timeloop files (arch,
//! ERT, problem and mapping YAML), and saying what has no exact Timeloop spelling.
//!
//! Export follows Timeloop's own `FormatAsConstraints`: per level a datatype (`bypass`) entry,
//! factors for every dimension, permutations innermost first listing every dimension (the
//! mapping's temporal order, then the dimensions it leaves out), spatial X dimensions before
//! Y with `split` = their count, and spatial entries only at levels with a fanout (Timeloop
//! rejects the others).

use crate::model::{Arch, Bits, Level, LevelMapping, Loop, Mapping, Problem, Term};

/// Words a YAML reader may take for a boolean or null when plain (YAML 1.2, and YAML 1.1's
/// longer spellings; single letters such as `N` stay plain, as in Timeloop's own files).
pub(super) const YAML_RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off"];

/// `s` as a YAML scalar: plain when that reads back as the same string, else single-quoted.
fn yaml_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-= ".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && !s.ends_with(' ')
        && !YAML_RESERVED.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// A flow list of YAML scalars: `[Weights, Inputs]`.
fn yaml_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(yaml_str).collect();
    format!("[{}]", items.join(", "))
}

/// A permutation as Timeloop reads it: one character per dimension (`MCRSNPQ`) when every name
/// is a single character, else the names separated by spaces.
fn permutation_text(dims: &[usize], problem: &Problem) -> String {
    let names: Vec<&str> = dims.iter().map(|&d| problem.dims[d].as_str()).collect();
    if names.iter().all(|n| n.chars().count() == 1) {
        names.concat()
    } else {
        names.join(" ")
    }
}

/// Every dimension with its factor, in the problem's order: `C=3 M=2 R=1`.
fn factors_text(problem: &Problem, factor: impl Fn(usize) -> u64) -> String {
    (0..problem.dims.len())
        .map(|d| format!("{}={}", problem.dims[d], factor(d)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `factors` and `permutation` lines of a temporal or spatial mapping entry.
fn loop_entry(problem: &Problem, factor: impl Fn(usize) -> u64, perm: &[usize]) -> String {
    format!(
        "    factors: {}\n    permutation: {}\n",
        yaml_str(&factors_text(problem, factor)),
        yaml_str(&permutation_text(perm, problem))
    )
}

/// Dimensions in order of first appearance, without repeats.
fn unique_dims(dims: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for d in dims {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// `order` without repeats, followed by the dimensions it leaves out, in the problem's order.
pub(super) fn full_permutation(order: impl IntoIterator<Item = usize>, nd: usize) -> Vec<usize> {
    unique_dims(order.into_iter().chain(0..nd))
}

/// The dimensions of the non-unit loops of `loops`, innermost first, without repeats.
fn loop_dims(loops: &[Loop]) -> Vec<usize> {
    unique_dims(loops.iter().filter(|l| l.factor > 1).map(|l| l.dim))
}

/// Why `mapping` has no exact Timeloop spelling (empty when [`export_mapping`] is exact):
/// Timeloop gives each dimension one loop per level and direction, reads permutations one
/// character per dimension and factors as letters followed by digits.
pub fn timeloop_export_issues(mapping: &Mapping, arch: &Arch, problem: &Problem) -> Vec<String> {
    let mut issues = Vec::new();
    for d in &problem.dims {
        if d.chars().count() != 1 || !d.chars().all(|c| c.is_ascii_alphabetic()) {
            issues.push(format!(
                "dimension `{d}`: Timeloop reads dimensions as single letters"
            ));
        }
    }
    for (l, (lm, level)) in mapping.levels.iter().zip(&arch.levels).enumerate() {
        let name = &level.name;
        let repeated = |loops: &[Loop]| {
            let dims: Vec<usize> = loops
                .iter()
                .filter(|x| x.factor > 1)
                .map(|x| x.dim)
                .collect();
            dims.len() != loop_dims(loops).len()
        };
        if repeated(&lm.temporal) {
            issues.push(format!("{name}: a dimension has two temporal loops"));
        }
        if repeated(&lm.spatial_x) || repeated(&lm.spatial_y) {
            issues.push(format!(
                "{name}: a dimension has two spatial loops in one direction"
            ));
        }
        let x = loop_dims(&lm.spatial_x);
        if let Some(d) = loop_dims(&lm.spatial_y).iter().find(|d| x.contains(d)) {
            issues.push(format!(
                "{name}: dimension {} is split over X and Y (Timeloop has one spatial loop per \
                 dimension and level; the export puts it all on X)",
                problem.dims[*d]
            ));
        }
        let (fx, fy) = arch.fanout(l);
        if fx * fy == 1 && lm.spatial_x_product() * lm.spatial_y_product() > 1 {
            issues.push(format!("{name}: spatial loops but no spatial fanout"));
        }
    }
    issues
}

/// Writes a mapping as a Timeloop mapping file (a v0.4 `mapping:` list, which timeloop-model v3
/// reads too): per level, innermost first, a `bypass` entry (`keep` / `bypass` lists), a
/// `temporal` entry and, where the level has a spatial fanout, a `spatial` entry with its X/Y
/// `split`. Factors name every dimension; permutations list every dimension, innermost first.
pub fn export_mapping(mapping: &Mapping, arch: &Arch, problem: &Problem) -> String {
    let nd = problem.dims.len();
    let mut out = String::from("mapping:\n");
    let tensors = |lm: &LevelMapping, keep: bool| {
        yaml_list(
            problem
                .tensors
                .iter()
                .zip(&lm.keep)
                .filter(|(_, k)| **k == keep)
                .map(|(t, _)| t.name.as_str()),
        )
    };
    for (l, (lm, level)) in mapping.levels.iter().zip(&arch.levels).enumerate() {
        let head = |ty: &str| format!("  - target: {}\n    type: {ty}\n", yaml_str(&level.name));
        out += &head("bypass");
        out += &format!("    keep: {}\n", tensors(lm, true));
        out += &format!("    bypass: {}\n", tensors(lm, false));
        // Temporal: the mapping's own order (factor-1 loops included), the rest appended.
        let perm = full_permutation(lm.temporal.iter().map(|x| x.dim), nd);
        out += &head("temporal");
        out += &loop_entry(problem, |d| lm.temporal_factor(d), &perm);
        // Spatial: X loops first (innermost), then Y; `split` = number of X positions.
        let (fx, fy) = arch.fanout(l);
        if fx * fy > 1 {
            let x = loop_dims(&lm.spatial_x);
            let y: Vec<usize> = loop_dims(&lm.spatial_y)
                .into_iter()
                .filter(|d| !x.contains(d))
                .collect();
            let perm = full_permutation(x.iter().chain(&y).copied(), nd);
            out += &head("spatial");
            out += &loop_entry(problem, |d| lm.spatial_factor(d), &perm);
            out += &format!("    split: {}\n", x.len());
        }
    }
    out
}

/// A component name for a Timeloop tree: the name with its instance range (`psum_spad[1..168]`).
fn ranged(name: &str, instances: u64) -> String {
    format!("{name}[1..{instances}]")
}

/// An energy as Accelergy writes ERT values: the shortest decimal that reads back exactly.
fn energy_text(e: f64) -> String {
    let s = format!("{e}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// The name a Timeloop tree gives the architecture's single subtree.
fn system_name(arch: &Arch) -> String {
    let name: String = arch
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        format!("system_{name}")
    } else {
        name
    }
}

/// Why `arch` has no exact Timeloop spelling (empty when [`export_arch`] is exact).
pub fn arch_export_issues(arch: &Arch) -> Vec<String> {
    let mut issues = Vec::new();
    if !arch.mac.energy_table.is_empty() {
        issues.push(format!(
            "{}: the per-bit-width MAC energy table has no Timeloop spelling (the ERT gives the \
             default {} pJ per MAC)",
            arch.mac.name, arch.mac.energy
        ));
    }
    for l in &arch.levels {
        if l.width != l.word_bits * l.block_size * l.cluster_size {
            issues.push(format!(
                "{}: width {} is not word bits × block size × cluster size ({}); the export \
                 writes the product (qmap's counts and energies do not use the width)",
                l.name,
                l.width,
                l.word_bits * l.block_size * l.cluster_size
            ));
        }
    }
    issues
}

/// Writes an architecture as a Timeloop architecture file: the v0.4 tree (one subtree whose
/// `local` list holds every level, outermost first, then the MACs, instance counts as name
/// ranges and meshes as `meshX`/`meshY`), with the hyphenated attribute spellings Timeloop v3.0.3
/// reads (`word-bits`, `block-size`, `cluster-size`), and the levels' keep rules as
/// `architecture_constraints` (bypass targets). The outermost unbounded level is class `DRAM`,
/// dummy levels `dummy_storage`, the others `storage`, the MACs `intmac`. Energies go to the
/// ERT ([`export_ert`]); [`arch_export_issues`] says what the format cannot carry.
pub fn export_arch(arch: &Arch) -> String {
    let mut out = String::from("architecture:\n  version: '0.4'\n  subtree:\n");
    out += &format!(
        "    - name: {}\n      local:\n",
        yaml_str(&system_name(arch))
    );
    let outer = arch.levels.len() - 1;
    for (i, l) in arch.levels.iter().enumerate().rev() {
        let class = if l.dummy {
            "dummy_storage"
        } else if i == outer && l.depth.is_none() {
            "DRAM"
        } else {
            "storage"
        };
        out += &storage_entry(l, class);
    }
    let m = &arch.mac;
    out += &format!(
        "        - name: {}\n          class: intmac\n          attributes:\n            \
         meshX: {}\n            meshY: {}\n",
        yaml_str(&ranged(&m.name, m.instances)),
        m.mesh_x,
        m.mesh_y
    );
    let rules: Vec<&Level> = arch
        .levels
        .iter()
        .filter(|l| !l.dummy && (!l.must_keep.is_empty() || !l.must_bypass.is_empty()))
        .collect();
    if !rules.is_empty() {
        out += "architecture_constraints:\n  targets:\n";
        for l in rules {
            out += &format!(
                "    - target: {}\n      type: bypass\n      keep: {}\n      bypass: {}\n",
                yaml_str(&l.name),
                yaml_list(l.must_keep.iter().map(String::as_str)),
                yaml_list(l.must_bypass.iter().map(String::as_str))
            );
        }
    }
    out
}

/// One storage level of the architecture tree's `local` list, with its attributes.
fn storage_entry(l: &Level, class: &str) -> String {
    let mut out = format!(
        "        - name: {}\n          class: {class}\n          attributes:\n",
        yaml_str(&ranged(&l.name, l.instances))
    );
    let mut attr = |k: &str, v: String| out += &format!("            {k}: {v}\n");
    if let Some(d) = l.depth {
        attr("depth", d.to_string());
    }
    attr(
        "width",
        (l.word_bits * l.block_size * l.cluster_size).to_string(),
    );
    attr("word-bits", l.word_bits.to_string());
    attr("block-size", l.block_size.to_string());
    attr("cluster-size", l.cluster_size.to_string());
    attr("meshX", l.mesh_x.to_string());
    attr("meshY", l.mesh_y.to_string());
    for (k, bw) in [
        ("read_bandwidth", l.read_bandwidth),
        ("write_bandwidth", l.write_bandwidth),
        ("shared_bandwidth", l.shared_bandwidth),
    ] {
        if let Some(bw) = bw {
            attr(k, format!("{bw}"));
        }
    }
    out
}

/// Writes an architecture's energies as a Timeloop energy reference table (Accelergy's ERT
/// v0.4): per level the energies of one vector `read`, `write` (fill) and `update`, and `leak`
/// 0 (Timeloop v3.0.3 charges no leakage); per MAC `compute`. Dummy levels have no table
/// (they hold nothing, so Timeloop never charges them).
pub fn export_ert(arch: &Arch) -> String {
    let sys = system_name(arch);
    let mut out = String::from("ERT:\n  version: '0.4'\n  tables:\n");
    let mut table = |name: &str, instances: u64, actions: &[(&str, f64)]| {
        out += &format!(
            "    - name: {}\n      actions:\n",
            yaml_str(&format!("{sys}.{}", ranged(name, instances)))
        );
        for (a, e) in actions {
            out += &format!(
                "        - name: {a}\n          arguments: null\n          energy: {}\n",
                energy_text(*e)
            );
        }
    };
    for l in arch.levels.iter().rev().filter(|l| !l.dummy) {
        table(
            &l.name,
            l.instances,
            &[
                ("read", l.read_energy),
                ("write", l.write_energy),
                ("update", l.update_energy),
                ("leak", 0.0),
            ],
        );
    }
    table(
        &arch.mac.name,
        arch.mac.instances,
        &[("compute", arch.mac.energy), ("leak", 0.0)],
    );
    out
}

/// Writes a problem as a Timeloop problem file (inline shape, the hyphenated keys timeloop-model
/// v3 reads), with the seed fork's `instance.bitwidths` when `bits` are given.
pub fn export_problem(problem: &Problem, bits: Option<&Bits>) -> String {
    let dims = &problem.dims;
    let coef_name = |c: u64| coefficient_name(c, dims);
    let mut coefs: Vec<u64> = problem
        .tensors
        .iter()
        .flat_map(|t| t.ranks.iter().flatten())
        .map(|term| term.coef)
        .filter(|&c| c != 1)
        .collect();
    coefs.sort_unstable();
    coefs.dedup();
    let mut out = String::from("problem:\n  version: '0.4'\n  shape:\n");
    if !problem.name.is_empty() {
        out += &format!("    name: {}\n", yaml_str(&problem.name));
    }
    out += &format!(
        "    dimensions: {}\n",
        yaml_list(dims.iter().map(String::as_str))
    );
    if !coefs.is_empty() {
        out += "    coefficients:\n";
        for c in &coefs {
            out += &format!("      - {{name: {}, default: {c}}}\n", coef_name(*c));
        }
    }
    out += "    data-spaces:\n";
    for t in &problem.tensors {
        let ranks: Vec<String> = t.ranks.iter().map(|r| rank_text(r, dims)).collect();
        out += &format!("      - name: {}\n", yaml_str(&t.name));
        out += &format!("        projection: [{}]\n", ranks.join(", "));
        if t.read_write {
            out += "        read-write: true\n";
        }
    }
    out += "  instance:\n";
    for (d, b) in dims.iter().zip(&problem.bounds) {
        out += &format!("    {}: {b}\n", yaml_str(d));
    }
    if let Some(Bits(b)) = bits {
        let pairs: Vec<String> = problem
            .tensors
            .iter()
            .zip(b)
            .map(|(t, b)| format!("{}: {b}", yaml_str(&t.name)))
            .collect();
        out += &format!("    bitwidths: {{{}}}\n", pairs.join(", "));
    }
    out
}

/// The name of a coefficient other than 1: named after its value (`coef2`), clear of the dims.
fn coefficient_name(c: u64, dims: &[String]) -> String {
    let mut name = format!("coef{c}");
    while dims.contains(&name) {
        name.insert(0, '_');
    }
    name
}

/// One rank of a projection as Timeloop reads it: `[[C], [R, coef2]]`.
fn rank_text(rank: &[Term], dims: &[String]) -> String {
    let terms: Vec<String> = rank
        .iter()
        .map(|term| {
            let d = yaml_str(&dims[term.dim]);
            if term.coef == 1 {
                format!("[{d}]")
            } else {
                format!("[{d}, {}]", coefficient_name(term.coef, dims))
            }
        })
        .collect();
    format!("[{}]", terms.join(", "))
}
