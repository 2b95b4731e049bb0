//! The on-disk cache of table units: the only place its format appears. Every entry read is
//! verified whole (mapping in the mapspace, valid, re-evaluated to the stored values, bound and
//! proof consistent) before it is used.

use super::*;

/// One table entry: a layer at one bit triple.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The bit triple; None = native word widths.
    pub bits: Option<BitTriple>,
    /// The optimum's energy (pJ); None when no mapping fits at these bit-widths.
    pub energy_pj: Option<f64>,
    pub cycles: Option<u64>,
    pub mapping: Option<MappingSpec>,
    pub proof: Proof,
    /// The lower bound (pJ) the proof gives (the energy itself for an enumerated optimum);
    /// None when no mapping fits.
    #[serde(default)]
    pub bound_pj: Option<f64>,
    /// Why no mapping fits (a checked reason), when none does.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `settings` with its cache directory checked (created if need be, and a file created and
/// removed there): when it is not usable, the settings without a cache and why.
pub fn usable_cache(settings: &TableSettings) -> (TableSettings, Option<String>) {
    let mut settings = settings.clone();
    let mut why = None;
    if let Some(dir) = &settings.cache_dir {
        let checked =
            std::fs::create_dir_all(dir).and_then(|_| crate::report::check_dir_writable(dir));
        if let Err(e) = checked {
            why = Some(format!(
                "cache directory {} is not usable ({e}): nothing is read from or written to it",
                dir.display()
            ));
            settings.cache_dir = None;
        }
    }
    (settings, why)
}

/// How a table unit used the cache.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheUse {
    /// No cache, or no entry yet: computed (and stored).
    Miss,
    /// Taken from the cache after every entry checked out.
    Hit,
    /// A cache file was there but did not check out (why): recomputed and stored again.
    Rejected(String),
}

/// A cache file: the entries of one table unit under its content hash.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    model_version: String,
    /// The unit's [`shape_key`]: a file of another shape is not taken.
    shape: String,
    entries: Vec<Entry>,
}

/// Reads the cache file `f` of a unit: None when there is none; an error (why) when it does
/// not check out. Every entry is verified whole: it is at the bit triple asked, at its place;
/// its mapping is in the mapspace, valid, and re-evaluates to the stored energy and cycles;
/// its bound is at most its energy, within the gap tolerance of it when it says optimal, and
/// the proof's own; an entry without a mapping has a reason that checks out again
/// ([`milp::diagnose`]) unless it claims nothing (a time limit).
pub(super) fn read_cache(
    f: &Path,
    space: &Mapspace,
    opts: &[ModelOptions],
    triples: &[Option<BitTriple>],
    shape: &str,
) -> Result<Option<Vec<Entry>>, String> {
    let text = match std::fs::read_to_string(f) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable ({e})")),
    };
    let file: CacheFile =
        serde_json::from_str(&text).map_err(|e| format!("not a cache file ({e})"))?;
    if file.model_version != MODEL_VERSION || file.shape != shape {
        return Err("made for another model version or layer shape".into());
    }
    if file.entries.len() != opts.len() {
        return Err(format!(
            "{} entries for {} bit choices",
            file.entries.len(),
            opts.len()
        ));
    }
    for (i, (e, o)) in file.entries.iter().zip(opts).enumerate() {
        check_entry(e, triples[i], space, o, f).map_err(|why| format!("entry {i}: {why}"))?;
    }
    Ok(Some(file.entries))
}

/// Verifies one cache entry (see [`read_cache`]).
fn check_entry(
    e: &Entry,
    bits: Option<BitTriple>,
    space: &Mapspace,
    opts: &ModelOptions,
    f: &Path,
) -> Result<(), String> {
    if e.bits != bits {
        return Err(format!("bits {:?} where {bits:?} belong", e.bits));
    }
    let (problem, arch) = (space.problem(), space.arch());
    let status = e.proof.status();
    let (Some(ms), Some(energy)) = (&e.mapping, e.energy_pj) else {
        if e.mapping.is_some() || e.energy_pj.is_some() {
            return Err("a mapping without an energy, or an energy without a mapping".into());
        }
        return match status {
            Status::TimeLimit | Status::Unknown => Ok(()),
            _ => milp::diagnose(space, opts)
                .map(|_| ())
                .ok_or_else(|| "infeasible without a reason that checks out".into()),
        };
    };
    let m = mapping_from_spec(ms, arch, problem, f).map_err(|e| e.to_string())?;
    let ev = evaluate(problem, arch, &m, opts);
    if !ev.valid || !space.contains(&m) {
        return Err("its mapping is not a valid mapping of the mapspace".into());
    }
    if (ev.energy_pj - energy).abs() > 1e-12 * energy || e.cycles != Some(ev.cycles) {
        return Err(format!(
            "stored {energy} pJ, {:?} cycles; the mapping evaluates to {} pJ, {} cycles",
            e.cycles, ev.energy_pj, ev.cycles
        ));
    }
    let bound = e.bound_pj.ok_or("no bound")?;
    let (proof_bound, _) = e.proof.bound_and_gap(energy);
    let consistent = bound <= energy * (1.0 + 1e-12)
        && (proof_bound - bound).abs() <= 1e-12 * energy
        && (status != Status::Optimal || milp::relative_gap(energy, bound) <= 1e-6);
    if !consistent {
        return Err(format!(
            "status {status:?} with energy {energy} pJ and bound {bound} pJ do not agree"
        ));
    }
    Ok(())
}

/// Writes a cache file atomically; a failure only costs a later recomputation, so it is
/// ignored (an unusable directory is reported once by [`build`]).
pub(super) fn write_cache(f: &Path, shape: &str, entries: &[Entry]) {
    if let Some(dir) = f.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = CacheFile {
        model_version: MODEL_VERSION.into(),
        shape: shape.into(),
        entries: entries.to_vec(),
    };
    if let Ok(text) = serde_json::to_string(&file) {
        let _ = crate::report::write_atomic(f, &text);
    }
}
