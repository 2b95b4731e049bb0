//! The on-disk cache of table units: the only place its format appears. Every entry read is
//! verified whole (mapping in the mapspace, valid, re-evaluated to the stored values, bound and
//! proof consistent) before it is used.

use super::*;

/// A cache file keeps a bit configuration as `[inputs, weights, outputs]`.
mod as_triple {
    use crate::model::BitConfig;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(b: &Option<BitConfig>, s: S) -> Result<S::Ok, S::Error> {
        let t = b.map(|b| [b.input_bits, b.weight_bits, b.output_bits]);
        t.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BitConfig>, D::Error> {
        let t = Option::<[u32; 3]>::deserialize(d)?;
        Ok(t.map(|[i, w, o]| BitConfig::new(i, w, o)))
    }
}

/// A table entry as its cache file keeps it (the mapping in the instance's mapping format).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedEntry {
    /// The bit configuration as `[inputs, weights, outputs]`; None = native word widths.
    #[serde(with = "as_triple")]
    pub bits: Option<BitConfig>,
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
    entries: Vec<CachedEntry>,
}

/// Reads the cache file `f` of a unit: None when there is none; an error (why) when it does
/// not check out. Every entry is verified whole: it is at the bit configuration asked, at its place;
/// its mapping is in the mapspace, valid, and re-evaluates to the stored energy and cycles;
/// its bound is at most its energy, within the gap tolerance of it when it says optimal, and
/// the proof's own; an entry without a mapping has a reason that checks out again
/// ([`milp::diagnose`]) unless it claims nothing (a time limit).
pub(super) fn read_cache(
    f: &Path,
    space: &Mapspace,
    opts: &[ModelOptions],
    configs: &[Option<BitConfig>],
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
    let check = |(i, (e, o))| {
        check_entry(e, configs[i], space, o, f).map_err(|why| format!("entry {i}: {why}"))
    };
    let entries = file.entries.iter().zip(opts).enumerate().map(check);
    Ok(Some(entries.collect::<Result<_, _>>()?))
}

/// Verifies one cache entry (see [`read_cache`]) and gives the table entry it stands for.
fn check_entry(
    e: &CachedEntry,
    bits: Option<BitConfig>,
    space: &Mapspace,
    opts: &ModelOptions,
    f: &Path,
) -> Result<Entry, String> {
    if e.bits != bits {
        return Err(format!("bits {:?} where {bits:?} belong", e.bits));
    }
    let (problem, arch) = (space.problem(), space.arch());
    let status = e.proof.status();
    let (Some(ms), Some(energy)) = (&e.mapping, e.energy_pj) else {
        if e.mapping.is_some() || e.energy_pj.is_some() {
            return Err("a mapping without an energy, or an energy without a mapping".into());
        }
        if !matches!(status, Status::TimeLimit | Status::Unknown)
            && milp::diagnose(space, opts).is_none()
        {
            return Err("infeasible without a reason that checks out".into());
        }
        let mut cert = Certificate::from_record(None, None, e.proof);
        cert.reason = e.reason.clone();
        return Ok(Entry { bits, cert });
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
    let mut cert = Certificate::from_record(Some(m), Some(ev), e.proof);
    cert.reason = e.reason.clone();
    Ok(Entry { bits, cert })
}

impl CachedEntry {
    /// The cache's form of a table entry of `problem` on `arch`.
    fn new(e: &Entry, arch: &crate::model::Arch, problem: &Problem) -> CachedEntry {
        CachedEntry {
            bits: e.bits,
            energy_pj: e.energy_pj(),
            cycles: e.cycles(),
            mapping: (e.cert.mapping.as_ref()).map(|m| mapping_to_spec(m, arch, problem)),
            proof: e.proof(),
            bound_pj: e.bound_pj(),
            reason: e.cert.reason.clone(),
        }
    }
}

/// Writes a cache file atomically; a failure only costs a later recomputation, so it is
/// ignored (an unusable directory is reported once by [`build`]).
pub(super) fn write_cache(f: &Path, unit: &Unit, entries: &[Entry]) {
    let file = CacheFile {
        model_version: MODEL_VERSION.into(),
        shape: unit.shape.into(),
        entries: (entries.iter())
            .map(|e| CachedEntry::new(e, unit.arch, unit.problem))
            .collect(),
    };
    let _ = store(f, &file);
}

/// Where the cache in `dir` keeps the unit of content hash `key`: in a subdirectory named by
/// the key's first two hex digits (256 of them, so that a cache of a large sweep never puts
/// tens of thousands of files in one directory).
pub fn cache_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(&key[..2.min(key.len())])
        .join(format!("{key}.json"))
}

/// Writes `file` at `f` atomically, creating its subdirectory.
fn store(f: &Path, file: &CacheFile) -> std::io::Result<()> {
    if let Some(dir) = f.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string(file).map_err(std::io::Error::other)?;
    crate::report::write_atomic(f, &text)
}

/// What [`merge`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MergeReport {
    /// Cache files read (sources and the target).
    pub files_read: usize,
    /// Files of another model version, left out.
    pub stale: usize,
    /// Distinct keys (table units) in the result.
    pub keys: usize,
    /// Files written into the target (new or improved).
    pub written: usize,
    /// Entries taken over from another file because they were better proven.
    pub improved_entries: usize,
}

/// Merges the caches `sources` into `into` (which may already hold a cache): the union of
/// their units. A unit present in several must agree: per entry, a proven answer (optimal, or
/// infeasible with its reason) beats an unproven one, a lower incumbent beats a higher one
/// among unproven ones, and two proven entries that differ (energies more than 1e-9 apart,
/// or one infeasible) are an error naming both files. Nothing is written unless every unit
/// merges; each file is written atomically. The entries are not re-verified here (that needs
/// the instance): every read by a table verifies them.
pub fn merge(sources: &[PathBuf], into: &Path) -> Result<MergeReport, String> {
    let mut report = MergeReport::default();
    let mut units: std::collections::BTreeMap<String, (PathBuf, CacheFile, bool)> =
        Default::default();
    let dirs = std::iter::once(into.to_path_buf()).chain(sources.iter().cloned());
    for (d, dir) in dirs.enumerate() {
        for f in cache_files(&dir, d > 0)? {
            report.files_read += 1;
            let file: CacheFile = std::fs::read_to_string(&f)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                .map_err(|e| format!("{}: not a qmap cache file ({e})", f.display()))?;
            if file.model_version != MODEL_VERSION {
                report.stale += 1;
                continue;
            }
            let key = f
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into());
            match units.get_mut(&key) {
                None => {
                    units.insert(key, (f, file, d > 0));
                }
                Some((first, merged, changed)) => {
                    let n = merge_unit(merged, &file, first, &f)?;
                    report.improved_entries += n;
                    *changed |= n > 0;
                }
            }
        }
    }
    report.keys = units.len();
    for (key, (_, file, changed)) in &units {
        if *changed {
            let out = cache_path(into, key);
            store(&out, file).map_err(|e| format!("{}: cannot write ({e})", out.display()))?;
            report.written += 1;
        }
    }
    Ok(report)
}

/// The cache files under `dir` (its two-hex-digit subdirectories and, from older caches, the
/// directory itself): files named by a 64-hex-digit key. A missing target is empty; a missing
/// source is an error.
fn cache_files(dir: &Path, source: bool) -> Result<Vec<PathBuf>, String> {
    let list = |d: &Path| -> std::io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    };
    let top = match list(dir) {
        Ok(v) => v,
        Err(e) if !source && e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("{}: cannot read the cache ({e})", dir.display())),
    };
    let is_key = |p: &Path| {
        p.extension().is_some_and(|x| x == "json")
            && p.file_stem().is_some_and(|s| {
                s.len() == 64 && s.to_string_lossy().bytes().all(|b| b.is_ascii_hexdigit())
            })
    };
    let mut files = vec![];
    for p in top {
        if p.is_dir() && p.file_name().is_some_and(|n| n.len() == 2) {
            let inner = list(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            files.extend(inner.into_iter().filter(|f| is_key(f)));
        } else if is_key(&p) {
            files.push(p);
        }
    }
    Ok(files)
}

/// Merges `other` (read from `f`) into `merged` (first read from `first`) entry by entry;
/// returns how many entries `other` improved.
fn merge_unit(
    merged: &mut CacheFile,
    other: &CacheFile,
    first: &Path,
    f: &Path,
) -> Result<usize, String> {
    let both = || format!("{} and {}", first.display(), f.display());
    if merged.shape != other.shape || merged.entries.len() != other.entries.len() {
        return Err(format!("{}: the same key for different units", both()));
    }
    let mut improved = 0;
    for (i, (a, b)) in merged.entries.iter_mut().zip(&other.entries).enumerate() {
        if a.bits != b.bits {
            return Err(format!("{}: entry {i} is at different bits", both()));
        }
        if better(b, a).map_err(|why| format!("{}: entry {i}: {why}", both()))? {
            *a = b.clone();
            improved += 1;
        }
    }
    Ok(improved)
}

/// Whether entry `b` is better proven than `a`; an error when both are proven and differ.
fn better(b: &CachedEntry, a: &CachedEntry) -> Result<bool, String> {
    let rank = |e: &CachedEntry| match (e.proof.optimal(), e.energy_pj) {
        (true, _) => 2,
        (false, Some(_)) => 1,
        (false, None) => 0,
    };
    match (rank(a), rank(b)) {
        (2, 2) => match (a.energy_pj, b.energy_pj) {
            (Some(x), Some(y)) if (x - y).abs() <= 1e-9 * x.abs().max(y.abs()) => Ok(false),
            (None, None) => Ok(false),
            (x, y) => Err(format!(
                "two proven answers differ ({} and {} pJ; none = infeasible)",
                x.map_or("none".into(), |v| v.to_string()),
                y.map_or("none".into(), |v| v.to_string())
            )),
        },
        (1, 1) => Ok(b.energy_pj < a.energy_pj),
        (ra, rb) => Ok(rb > ra),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(energy: Option<f64>, optimal: bool) -> CachedEntry {
        let status = if optimal {
            Status::Optimal
        } else {
            Status::TimeLimit
        };
        CachedEntry {
            bits: Some(BitConfig::uniform(8)),
            energy_pj: energy,
            cycles: energy.map(|_| 10),
            mapping: None,
            proof: Proof::Milp {
                status,
                bound: 1.0,
                gap: 0.0,
            },
            bound_pj: Some(1.0),
            reason: None,
        }
    }

    fn write(dir: &Path, key: &str, entries: Vec<CachedEntry>) {
        let f = cache_path(dir, key);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        let file = CacheFile {
            model_version: MODEL_VERSION.into(),
            shape: "s".into(),
            entries,
        };
        std::fs::write(f, serde_json::to_string(&file).unwrap()).unwrap();
    }

    fn read(dir: &Path, key: &str) -> Vec<Option<f64>> {
        let f = cache_path(dir, key);
        let file: CacheFile = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        file.entries.iter().map(|e| e.energy_pj).collect()
    }

    #[test]
    fn merge_takes_the_union_and_the_better_proven_entry() {
        let root = std::env::temp_dir().join(format!("qmap-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
        let (k1, k2) = ("a".repeat(64), "b".repeat(64));
        // k1 in both: a has an unproven incumbent and a proven entry, b proves the first.
        write(
            &a,
            &k1,
            vec![entry(Some(5.0), false), entry(Some(3.0), true)],
        );
        write(
            &b,
            &k1,
            vec![entry(Some(4.0), true), entry(Some(3.0), true)],
        );
        write(&b, &k2, vec![entry(None, true)]);
        let r = merge(&[a.clone(), b.clone()], &c).unwrap();
        assert_eq!(
            (r.files_read, r.keys, r.written, r.improved_entries),
            (3, 2, 2, 1)
        );
        assert_eq!(read(&c, &k1), vec![Some(4.0), Some(3.0)]);
        assert_eq!(read(&c, &k2), vec![None]);
        // Merging again into the result changes nothing.
        let r = merge(&[a.clone(), b.clone()], &c).unwrap();
        assert_eq!((r.written, r.improved_entries), (0, 0));
        // Two proven answers that differ: an error naming both files, nothing written.
        let d = root.join("d");
        write(
            &d,
            &k1,
            vec![entry(Some(4.5), true), entry(Some(3.0), true)],
        );
        let e = root.join("e");
        let err = merge(&[b.clone(), d.clone()], &e).unwrap_err();
        assert!(err.contains("two proven answers differ"), "{err}");
        assert!(err.contains(&b.display().to_string()) && err.contains(&d.display().to_string()));
        assert!(!e.exists(), "nothing written on a conflict");
        // A proven infeasible against a proven mapping is a conflict too.
        let f = root.join("f");
        write(&f, &k2, vec![entry(Some(2.0), true)]);
        assert!(merge(&[b.clone(), f], &root.join("g")).is_err());
        // A missing source is an error; files of another model version are left out.
        assert!(merge(&[root.join("none")], &root.join("h")).is_err());
        let stale = root.join("stale");
        let sf = stale.join("cc").join(format!("{}.json", "c".repeat(64)));
        std::fs::create_dir_all(sf.parent().unwrap()).unwrap();
        std::fs::write(
            &sf,
            r#"{"model_version":"qmap-table-0","shape":"s","entries":[]}"#,
        )
        .unwrap();
        let r = merge(&[stale], &root.join("i")).unwrap();
        assert_eq!((r.stale, r.keys), (1, 0));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
