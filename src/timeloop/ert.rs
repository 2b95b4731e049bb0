//! Timeloop's energy reference table (ERT): tables matched to the architecture's components,
//! their read / write / update and compute energies set on the levels and the MAC.
//!
//! ERT: tables matched to components by their last path segment without the instance range;
//! when an action lists several argument variants the largest energy is taken (as Timeloop
//! does). `update` defaults to `write`; the MAC's energy is `compute` (or the largest `mac_*`).

use super::yaml::{get, join, load_value, req_str, section, seq, strip_ranges, value_f64, Src};
use crate::model::{Arch, Level};
use crate::spec::InputError;
use std::collections::HashMap;
use std::path::Path;

/// The component an ERT table name refers to: its last path segment without the range
/// (`system_top_level.shared_glb[1..1]` → `shared_glb`, `PE.Buffer` → `Buffer`).
pub(super) fn ert_component(name: &str) -> String {
    let s = strip_ranges(name);
    s.rsplit('.').next().unwrap_or("").trim().to_string()
}

/// ERT tables by component: action → largest energy, and the table's field path.
pub(super) type ErtTables = HashMap<String, (HashMap<String, f64>, String)>;

/// Reads an ERT file into [`ErtTables`].
pub(super) fn load_ert(path: &Path) -> Result<ErtTables, InputError> {
    let src = Src { file: path };
    let root = load_value(path)?;
    let (ert, base) = section(&root, "ERT");
    let tpath = join(base, "tables");
    let tables = get(ert, "tables").ok_or_else(|| src.err(tpath.clone(), "missing"))?;
    let mut out: ErtTables = HashMap::new();
    for (i, t) in seq(tables, &tpath, src)?.iter().enumerate() {
        let path = format!("{tpath}[{i}]");
        let name = req_str(t, "name", &path, src)?;
        let key = ert_component(name);
        let mut actions: HashMap<String, f64> = HashMap::new();
        if let Some(acts) = get(t, "actions") {
            let apath = join(&path, "actions");
            for (j, act) in seq(acts, &apath, src)?.iter().enumerate() {
                let p = format!("{apath}[{j}]");
                let an = req_str(act, "name", &p, src)?;
                let e = get(act, "energy").ok_or_else(|| src.err(join(&p, "energy"), "missing"))?;
                let e = value_f64(e)
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| src.err(join(&p, "energy"), "must be a number >= 0"))?;
                // Several argument variants of one action: Timeloop takes the largest.
                let slot = actions.entry(an.to_string()).or_insert(e);
                *slot = slot.max(e);
            }
        }
        if out.contains_key(&key) {
            return Err(src.err(
                join(&path, "name"),
                format!("a second table for component `{key}`"),
            ));
        }
        out.insert(key, (actions, path));
    }
    Ok(out)
}

/// Sets the storage levels' and the MAC's energies from the ERT file `ert` (dummy levels cost
/// nothing); the leakage its tables list, which qmap does not charge, is a warning
/// ([`crate::notices`]) with its amount.
pub(super) fn apply_ert(arch: &mut Arch, ert: &Path) -> Result<(), InputError> {
    let src = Src { file: ert };
    let tables = load_ert(ert)?;
    let table = |name: &str, what: &str| {
        tables.get(name).ok_or_else(|| {
            let mut known: Vec<&str> = tables.keys().map(String::as_str).collect();
            known.sort_unstable();
            src.err(
                "ERT.tables",
                format!(
                    "no table for {what} `{name}` (tables: {})",
                    known.join(", ")
                ),
            )
        })
    };
    for l in arch.levels.iter_mut() {
        if l.dummy {
            l.read_energy = 0.0;
            l.write_energy = 0.0;
            l.update_energy = 0.0;
            continue;
        }
        let (acts, path) = table(&l.name, "storage level")?;
        set_level_energies(l, acts, path, src)?;
    }
    let (acts, path) = table(&arch.mac.name, "compute")?;
    arch.mac.energy = mac_energy(acts, path, &arch.mac.name, src)?;
    if let Some(w) = dropped_leakage(arch, &tables, ert) {
        crate::notices::warn(w);
    }
    Ok(())
}

/// The warning for the `leak` actions of `tables` (energy per instance and cycle, which
/// Timeloop adds as leak × instances × cycles and qmap leaves out): per component its leak and
/// instances, and their sum per cycle. None when nothing leaks.
fn dropped_leakage(arch: &Arch, tables: &ErtTables, ert: &Path) -> Option<String> {
    let components = (arch.levels.iter().filter(|l| !l.dummy))
        .map(|l| (&l.name, l.instances))
        .chain([(&arch.mac.name, arch.mac.instances)]);
    let leaks: Vec<(&String, f64, u64)> = components
        .filter_map(|(name, n)| Some((name, *tables.get(name)?.0.get("leak")?, n)))
        .filter(|(_, leak, _)| *leak > 0.0)
        .collect();
    if leaks.is_empty() {
        return None;
    }
    let per_cycle: f64 = leaks.iter().map(|(_, leak, n)| leak * *n as f64).sum();
    let parts: Vec<String> = (leaks.iter())
        .map(|(name, leak, n)| format!("{name} {leak} pJ x {n}"))
        .collect();
    Some(format!(
        "{}: ERT.tables: leakage is dropped (qmap charges none; Timeloop's stats count leak x instances x \
         cycles): {}: {per_cycle:.6} pJ per cycle in all, left out of every energy qmap reports",
        ert.display(),
        parts.join(", ")
    ))
}

/// A level's read, write (fill) and update energies from its table's actions; update defaults
/// to write.
fn set_level_energies(
    l: &mut Level,
    acts: &HashMap<String, f64>,
    path: &str,
    src: Src,
) -> Result<(), InputError> {
    let find = |names: &[&str]| names.iter().find_map(|n| acts.get(*n).copied());
    let missing = |action: &str| {
        src.err(
            join(path, "actions"),
            format!("{}: no `{action}` action", l.name),
        )
    };
    let read = find(&["read", "random_read"]).ok_or_else(|| missing("read"))?;
    let write = find(&["write", "random_fill", "fill"]).ok_or_else(|| missing("write"))?;
    l.read_energy = read;
    l.write_energy = write;
    l.update_energy = find(&["update", "random_update"]).unwrap_or(write);
    Ok(())
}

/// The MAC's energy: its `compute` action, else the largest `mac_*` action.
fn mac_energy(
    acts: &HashMap<String, f64>,
    path: &str,
    mac: &str,
    src: Src,
) -> Result<f64, InputError> {
    if let Some(e) = acts.get("compute") {
        return Ok(*e);
    }
    acts.iter()
        .filter(|(k, _)| k.starts_with("mac"))
        .map(|(_, e)| *e)
        .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))))
        .ok_or_else(|| {
            src.err(
                join(path, "actions"),
                format!("{mac}: no `compute` or `mac_*` action"),
            )
        })
}
