//! Proven per-layer optima: the engine choice between enumeration and the MILP (shared by
//! `qmap map`), and the per-layer optimum table of a network: the best energy of every layer at
//! every allowed (inputs, weights, outputs) bit triple, deduplicated over identical layer shapes
//! and packing classes, solved in parallel and cached on disk under a content hash.
//!
//! Each table unit is one distinct layer shape: its mapspace is enumerated once and every
//! mapping is priced at every packing class, or bounded with the other loop orders of its
//! factorisation and skipped when no class can use it (`search::exhaustive_choices`); above
//! the enumeration limit, one MILP per packing class proves the optimum (`milp::solve`). Either
//! way the entry carries its proof: `enumerated` (every mapping of the declared mapspace was
//! evaluated or bounded) or the MILP's status, bound and gap. Every entry's mapping is
//! re-evaluated by the evaluator before it is stored, and again when it is read from the cache.

use crate::eval::evaluate;
use crate::eval::Evaluation;
use crate::instance::{BitTriple, Instance};
use crate::mapspace::{Constraints, Mapspace};
use crate::milp::{self, SolveOptions, Status};
use crate::model::{mapping_from_spec, mapping_to_spec, Mapping, ModelOptions, Problem};
use crate::spec::{MappingSpec, Objective};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bumped whenever the cost model, the mapspace or the solvers change what a table entry is:
/// part of every cache key, so a changed model never reuses stale entries.
pub const MODEL_VERSION: &str = "qmap-table-4";

/// How an entry's optimality is established.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Proof {
    /// Every mapping of the declared mapspace was evaluated, or bounded from below (with the
    /// other loop orders of its factorisation) by more than the optimum.
    Enumerated,
    /// The MILP's certificate.
    Milp {
        status: Status,
        bound: f64,
        gap: f64,
    },
    /// The enumeration, stopped by the time limit: the best mapping it found, and the least
    /// bound of what it had not searched.
    Stopped { bound: f64, gap: f64 },
}

impl Proof {
    /// Whether the entry is a proven optimum.
    pub fn optimal(&self) -> bool {
        self.status() == Status::Optimal
    }
    /// The status the proof gives an entry that has a mapping.
    pub fn status(&self) -> Status {
        match self {
            Proof::Enumerated => Status::Optimal,
            Proof::Milp { status, .. } => *status,
            Proof::Stopped { .. } => Status::TimeLimit,
        }
    }
    /// The lower bound (pJ) and gap of an entry of energy `energy_pj` (infinite: none).
    pub fn bound_and_gap(&self, energy_pj: f64) -> (f64, f64) {
        match self {
            Proof::Enumerated => (energy_pj, 0.0),
            Proof::Milp { bound, gap, .. } | Proof::Stopped { bound, gap } => (*bound, *gap),
        }
    }
    /// The engine that gave the proof: `enumerated` or `milp`.
    pub fn engine(&self) -> &'static str {
        match self {
            Proof::Enumerated | Proof::Stopped { .. } => "enumerated",
            Proof::Milp { .. } => "milp",
        }
    }
}

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

/// Which exact method fills the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Enumeration up to the limit, the MILP above it.
    Auto,
    Milp,
    Enumerate,
}

impl Engine {
    /// Whether this engine proves `space` by enumeration (`Auto`: when it has at most
    /// `enumerate_limit` factorisations × keep patterns, [`enumeration_size`]).
    pub fn enumerates(self, space: &Mapspace, enumerate_limit: u128) -> bool {
        match self {
            Engine::Enumerate => true,
            Engine::Milp => false,
            Engine::Auto => enumeration_size(space) <= enumerate_limit as f64,
        }
    }
}

/// What the enumerating engine's work grows with: factorisations × keep patterns. Each is
/// bounded once over all its loop orders, which are evaluated only when the bound does not
/// rule them out ([`crate::search::enumerate`]); on the shipped layers that is under 1 % of
/// them.
pub fn enumeration_size(space: &Mapspace) -> f64 {
    space.factorisations() * space.bypass_patterns() as f64
}

/// Largest [`enumeration_size`] the `Auto` engine proves by enumeration (default of
/// `--enumerate-limit`). How fast the bounds prove a space depends on more than its size
/// (2 cores): on Eyeriss, where every factorisation has one loop order, a 2.7-million
/// pointwise space enumerates in 1.9 s (the MILP: 2.8 s) and an 8.5-million one in 5.8 s
/// (the MILP: 1.8 s); on Simba every shipped layer, up to 16 million, enumerates in under
/// 0.7 s, and so do depthwise spaces of 110 and 300 million, while 30-million pointwise ones
/// take 7-13 s (the MILP: 2-6 s). Above the limit `qmap map` still lets the enumeration try
/// first ([`ENUMERATE_TRIAL_SECONDS`]).
pub const ENUMERATE_LIMIT: u128 = 6_000_000;

/// How long (seconds) `Auto` lets the enumeration try a mapspace above the limit before it
/// runs the MILP ([`prove_best`], [`solve_unit`]), per MILP it may save: one per packing class
/// (one enumeration serves them all). Depthwise layers, whose bounds cut whole sets of
/// factorisations, finish far above the limit: Simba MobileNetV2 b3_dw (16 million) in 0.1 s,
/// a 720-channel 56×56 one (110 million) in 0.5 s; wide pointwise layers do not (480×240
/// channels on Simba, 31 million: 7 s; the MILP: 2.2 s).
pub const ENUMERATE_TRIAL_SECONDS: f64 = 2.0;

/// The enumeration's trial above the limit for the bit choices `opts`:
/// [`ENUMERATE_TRIAL_SECONDS`] per packing class among them.
fn trial(space: &Mapspace, opts: &[ModelOptions]) -> Duration {
    let (problem, arch) = (space.problem(), space.arch());
    let mut classes: Vec<_> = opts
        .iter()
        .map(|o| crate::eval::packing_signature(arch, problem, o))
        .collect();
    classes.sort();
    classes.dedup();
    Duration::from_secs_f64(ENUMERATE_TRIAL_SECONDS * classes.len() as f64)
}

/// Table settings.
#[derive(Debug, Clone)]
pub struct TableSettings {
    pub engine: Engine,
    /// Largest mapspace `Auto` enumerates ([`enumeration_size`]).
    pub enumerate_limit: u128,
    /// Wall-clock limit (seconds) per table unit (one layer shape at every bit choice):
    /// enumeration and MILPs together.
    pub time_limit: Option<f64>,
    /// Cache directory; None = no cache.
    pub cache_dir: Option<PathBuf>,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

impl Default for TableSettings {
    fn default() -> Self {
        TableSettings {
            engine: Engine::Auto,
            enumerate_limit: ENUMERATE_LIMIT,
            time_limit: Some(60.0),
            cache_dir: None,
            progress: false,
        }
    }
}

/// The table: per layer, one entry per bit triple (in the order asked).
#[derive(Debug, Clone)]
pub struct Table {
    pub layers: Vec<Vec<Entry>>,
    /// Distinct layer shapes, and how many of them came from the cache.
    pub units: usize,
    pub cached_units: usize,
    /// Per layer, the wall time its unit took in this run (seconds; a cache hit's is its
    /// check).
    pub layer_seconds: Vec<f64>,
    pub seconds: f64,
    /// What the caller should tell the user about the cache: an unusable directory, and the
    /// cache files that did not check out (each recomputed), one line each.
    pub cache_warnings: Vec<String>,
}

/// SHA-256 (hex) of the parts, each terminated by a zero byte.
pub fn content_hash(parts: &[String]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A layer's shape without its name (what makes two layers the same table unit).
pub fn shape_key(p: &Problem) -> String {
    let mut p = p.clone();
    p.name.clear();
    format!("{p:?}")
}

/// Builds the table for every layer of `inst` at every bit choice in `triples` (None = native).
pub fn build(
    inst: &Instance,
    cons: &Constraints,
    triples: &[Option<BitTriple>],
    settings: &TableSettings,
) -> Result<Table, String> {
    let start = Instant::now();
    // Distinct shapes, in first-appearance order.
    let mut units: Vec<(String, usize)> = vec![];
    let unit_of: Vec<usize> = inst
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let key = shape_key(&l.problem);
            match units.iter().position(|(k, _)| *k == key) {
                Some(u) => u,
                None => {
                    units.push((key, i));
                    units.len() - 1
                }
            }
        })
        .collect();
    let bar = if settings.progress {
        indicatif::ProgressBar::new(units.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "table {bar:30} {pos}/{len} layer shapes  {elapsed_precise}  {msg}",
        )
        .expect("static template"),
    );
    let (settings, unusable) = usable_cache(settings);
    let mut cache_warnings: Vec<String> = unusable.into_iter().collect();
    type Solved = Result<(Vec<Entry>, CacheUse, f64), String>;
    let results: Vec<Solved> = units
        .par_iter()
        .map(|(key, rep)| {
            let t = Instant::now();
            let layer = &inst.layers[*rep];
            let opts: Vec<_> = triples
                .iter()
                .map(|&b| inst.options(&layer.problem, b))
                .collect();
            let unit = Unit {
                arch: &inst.arch,
                cons,
                problem: &layer.problem,
                shape: key,
                triples,
                opts: &opts,
            };
            let r = unit
                .entries(&settings)
                .map_err(|e| format!("layer {}: {e}", layer.name));
            bar.inc(1);
            r.map(|(e, u)| (e, u, t.elapsed().as_secs_f64()))
        })
        .collect();
    bar.finish_and_clear();
    let mut per_unit = vec![];
    let mut cached_units = 0;
    for (r, (_, rep)) in results.into_iter().zip(&units) {
        let (entries, used, secs) = r?;
        cached_units += (used == CacheUse::Hit) as usize;
        if let CacheUse::Rejected(why) = used {
            cache_warnings.push(format!("layer {}: {why}", inst.layers[*rep].name));
        }
        per_unit.push((entries, secs));
    }
    let layers = unit_of.iter().map(|&u| per_unit[u].0.clone()).collect();
    Ok(Table {
        layers,
        units: units.len(),
        cached_units,
        layer_seconds: unit_of.iter().map(|&u| per_unit[u].1).collect(),
        seconds: start.elapsed().as_secs_f64(),
        cache_warnings,
    })
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

/// One table unit: a layer shape on a design, at the bit choices `triples` (options `opts`).
pub struct Unit<'a> {
    pub arch: &'a crate::model::Arch,
    pub cons: &'a Constraints,
    pub problem: &'a Problem,
    /// [`shape_key`] of the problem.
    pub shape: &'a str,
    pub triples: &'a [Option<BitTriple>],
    pub opts: &'a [ModelOptions],
}

impl Unit<'_> {
    /// The unit's entries, from the cache when a file there checks out entry by entry
    /// (`read_cache`); otherwise solved ([`solve_unit`]) and stored.
    pub fn entries(&self, settings: &TableSettings) -> Result<(Vec<Entry>, CacheUse), String> {
        let space = Mapspace::new(self.problem, self.arch, self.cons)?;
        let cache_file = settings
            .cache_dir
            .as_ref()
            .map(|d| self.cache_file(d, settings));
        let mut used = CacheUse::Miss;
        if let Some(f) = &cache_file {
            match read_cache(f, &space, self.opts, self.triples, self.shape) {
                Ok(Some(entries)) => return Ok((entries, CacheUse::Hit)),
                Ok(None) => {}
                Err(why) => used = CacheUse::Rejected(format!("{}: {why}", f.display())),
            }
        }
        let entries: Vec<Entry> = solve_unit(&space, self.opts, settings)?
            .into_iter()
            .zip(self.triples.iter().zip(self.opts))
            .map(|(o, (&bits, opts))| self.entry(&space, o, bits, opts))
            .collect();
        if let Some(f) = &cache_file {
            write_cache(f, self.shape, &entries);
        }
        Ok((entries, used))
    }

    /// The cache file of the unit: named by a content hash of the model version, the design,
    /// the constraints, the shape, the bit choices, the options and the engine settings.
    fn cache_file(&self, dir: &Path, settings: &TableSettings) -> PathBuf {
        let hex = content_hash(&[
            MODEL_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
            format!("{:?}", self.arch),
            format!("{:?}", self.cons),
            self.shape.to_string(),
            format!("{:?}", self.triples),
            format!(
                "{:?}",
                self.opts
                    .first()
                    .map(|o| (o.packing, o.psum, o.seed_compat))
            ),
            format!(
                "{:?} {} {:?}",
                settings.engine, settings.enumerate_limit, settings.time_limit
            ),
        ]);
        dir.join(format!("{hex}.json"))
    }

    /// The table entry of an optimum.
    fn entry(
        &self,
        space: &Mapspace,
        o: Optimum,
        bits: Option<BitTriple>,
        opts: &ModelOptions,
    ) -> Entry {
        let energy = o.evaluation.as_ref().map(|e| e.energy_pj);
        let bound = o.proof.bound_and_gap(energy.unwrap_or(f64::INFINITY)).0;
        Entry {
            bits,
            energy_pj: energy,
            cycles: o.evaluation.as_ref().map(|e| e.cycles),
            mapping: o
                .mapping
                .as_ref()
                .map(|m| mapping_to_spec(m, self.arch, self.problem)),
            proof: o.proof,
            bound_pj: bound.is_finite().then_some(bound),
            reason: energy
                .is_none()
                .then(|| milp::diagnose(space, opts))
                .flatten(),
        }
    }
}

/// A proven (or, on a time limit, bounded) energy optimum at one bit choice.
#[derive(Debug, Clone)]
pub struct Optimum {
    pub mapping: Option<Mapping>,
    pub evaluation: Option<Evaluation>,
    pub proof: Proof,
}

/// The energy optimum of `space` at every bit choice in `opts`: one enumeration priced at
/// every packing class when the engine (or `Auto` under its limit) enumerates, else one MILP
/// per packing class whose members share its mapping. Above the limit, `Auto` first lets the
/// enumeration try for [`ENUMERATE_TRIAL_SECONDS`] per packing class. Every mapping is
/// re-evaluated. `settings.time_limit` is on all of it together; a unit stopped there keeps
/// its incumbents and bounds. The answers are then probed ([`crate::certify::probe`]).
pub fn solve_unit(
    space: &Mapspace,
    opts: &[ModelOptions],
    settings: &TableSettings,
) -> Result<Vec<Optimum>, String> {
    let start = Instant::now();
    // The time limit is for the whole unit: the enumeration and every MILP together.
    let limit = settings
        .time_limit
        .map(|t| start + Duration::from_secs_f64(t.clamp(0.0, 1e9)));
    let optima = solve_unit_unchecked(space, opts, settings, start, limit)?;
    let bounds: Vec<f64> = optima
        .iter()
        .map(|o| {
            let value = o.evaluation.as_ref().map_or(f64::INFINITY, |e| e.energy_pj);
            o.proof.bound_and_gap(value).0
        })
        .collect();
    let budget = crate::certify::probe_budget(start.elapsed().as_secs_f64());
    crate::certify::probe(space, opts, &bounds, Objective::Energy, budget)?;
    Ok(optima)
}

/// [`solve_unit`] before its probe: an `infeasible` the MILP gives without a checked reason is
/// checked here already (by enumeration; `unknown` when that does not finish).
fn solve_unit_unchecked(
    space: &Mapspace,
    opts: &[ModelOptions],
    settings: &TableSettings,
    start: Instant,
    limit: Option<Instant>,
) -> Result<Vec<Optimum>, String> {
    let enumerates = settings.engine.enumerates(space, settings.enumerate_limit);
    if enumerates || settings.engine == Engine::Auto {
        let trial = (!enumerates).then(|| start + trial(space, opts));
        let deadline = [limit, trial].into_iter().flatten().min();
        let best = crate::search::exhaustive_choices(space, opts, None, deadline)?;
        // Proved when every choice's bound reaches its value (infinity when nothing fits).
        let proved = best
            .iter()
            .all(|b| b.bound >= b.evaluation.as_ref().map_or(f64::INFINITY, |e| e.energy_pj));
        let spent = limit.is_some_and(|d| Instant::now() >= d);
        if proved || enumerates || spent {
            return Ok(best.into_iter().map(enumerated_optimum).collect());
        }
    }
    let so = SolveOptions {
        time_limit: limit.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64()),
        ..Default::default()
    };
    let mut certs = milp::solve_each(space, opts, Objective::Energy, &so, false)?;
    for (cert, o) in certs.iter_mut().zip(opts) {
        if cert.status == Status::Infeasible && cert.reason.is_none() {
            check_infeasible(
                space,
                std::slice::from_ref(o),
                Objective::Energy,
                limit,
                start,
                cert,
            )?;
        }
    }
    Ok(certs
        .into_iter()
        .map(|cert| Optimum {
            mapping: cert.mapping,
            evaluation: cert.evaluation,
            proof: Proof::Milp {
                status: cert.status,
                bound: if cert.status == Status::Unknown {
                    0.0
                } else {
                    cert.bound
                },
                gap: cert.gap,
            },
        })
        .collect())
}

/// The optimum an enumeration gives one bit choice: proved when its bound reaches its value,
/// else stopped at the time limit.
fn enumerated_optimum(b: crate::search::ChoiceBest) -> Optimum {
    let value = b.evaluation.as_ref().map_or(f64::INFINITY, |e| e.energy_pj);
    let proof = if b.bound >= value {
        Proof::Enumerated
    } else {
        Proof::Stopped {
            bound: b.bound,
            gap: milp::relative_gap(value, b.bound),
        }
    };
    Optimum {
        mapping: b.mapping,
        evaluation: b.evaluation,
        proof,
    }
}

/// How `qmap map`'s answer was proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// Every mapping of the declared mapspace was evaluated or bounded by more than the optimum
    /// (bound = value, gap 0).
    Enumerated,
    /// The MILP's certificate (bound and gap from the MILP).
    Milp,
}

/// The optimum of `space` over the bit choices for `objective`, proved by enumeration (the
/// engine says so, or `Auto` with the mapspace within `enumerate_limit`) or by the MILP (energy
/// only): the certificate of the best choice, its index, and how it was proved. Above the
/// limit, `Auto` first gives the enumeration [`ENUMERATE_TRIAL_SECONDS`] per packing class and
/// runs the MILP only when it has not finished (in the time left). Ties go to the first choice. An
/// enumerated answer's certificate has bound = value and gap 0; with no valid mapping at any
/// choice it is `infeasible` with the MILP's diagnosis of why nothing fits. An enumeration
/// stopped by `so.time_limit` gives the best mapping found and the least bound of what it
/// did not search (`optimal` when the gap is within `so.gap`, else `time_limit`).
///
/// Every answer is then checked ([`crate::certify`]): an `infeasible` without a checked reason
/// is checked by enumeration (`unknown` when that does not finish in its time), and the
/// answer's bound is probed with random valid mappings; a failed check is an error.
pub fn prove_best(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    engine: Engine,
    enumerate_limit: u128,
    so: &SolveOptions,
) -> Result<(milp::Certificate, usize, ProofKind), String> {
    if choices.is_empty() {
        return Err("no bit-width choice is left (check the weight budget)".into());
    }
    let start = Instant::now();
    let deadline = so
        .time_limit
        .map(|s| start + Duration::from_secs_f64(s.clamp(0.0, 1e9)));
    let (mut cert, i, kind) = solve_best(space, choices, objective, engine, enumerate_limit, so)?;
    if cert.status == Status::Infeasible && cert.reason.is_none() {
        check_infeasible(space, choices, objective, deadline, start, &mut cert)?;
    }
    crate::progress::phase("self-check");
    if std::env::var_os("QMAP_TEST_FALSE_BOUND").is_some() {
        // For the tests of the self-check: a certificate whose bound is ten times too high.
        cert.bound *= 10.0;
    }
    let bounds = vec![cert.bound; choices.len()];
    let budget = crate::certify::probe_budget(start.elapsed().as_secs_f64());
    cert.check = Some(crate::certify::probe(
        space, choices, &bounds, objective, budget,
    )?);
    cert.seconds = start.elapsed().as_secs_f64();
    Ok((cert, i, kind))
}

/// Checks the MILP's `infeasible` that has no checked reason by enumerating the space (until
/// the deadline, and for at least 10 s or as long as the solve took): a valid mapping found is
/// an internal error; an enumeration stopped early leaves the status `unknown`.
fn check_infeasible(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    deadline: Option<Instant>,
    start: Instant,
    cert: &mut milp::Certificate,
) -> Result<(), String> {
    let own = Instant::now() + start.elapsed().max(Duration::from_secs(10));
    let until = deadline.map_or(own, |d| d.min(own));
    let (found, _) = enumerate_best(space, choices, objective, Some(until), 0.0, start)?;
    if found.mapping.is_some() {
        return Err(crate::certify::internal_error(&format!(
            "the MILP found no valid mapping, but the enumeration found one of value {}",
            found.value
        )));
    }
    if found.status == Status::Infeasible {
        cert.reason = Some(
            "no valid mapping: the MILP found none, and enumerating the mapspace (every \
             mapping evaluated or bounded) confirms it"
                .into(),
        );
    } else {
        cert.status = Status::Unknown;
        cert.reason = Some(
            "the MILP found no valid mapping, but no simple reason (the smallest tiles \
             overflowing a level) shows why, and the enumeration that checks it did not finish \
             in its time"
                .into(),
        );
    }
    Ok(())
}

/// [`prove_best`] before its checks.
fn solve_best(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    engine: Engine,
    enumerate_limit: u128,
    so: &SolveOptions,
) -> Result<(milp::Certificate, usize, ProofKind), String> {
    let start = Instant::now();
    let deadline = so
        .time_limit
        .map(|s| start + Duration::from_secs_f64(s.clamp(0.0, 1e9)));
    crate::progress::phase("enumeration");
    if engine.enumerates(space, enumerate_limit) {
        let cert = enumerate_best(space, choices, objective, deadline, so.gap, start)?;
        return Ok((cert.0, cert.1, ProofKind::Enumerated));
    }
    if objective != Objective::Energy {
        return Err(format!(
            "latency and EDP optima are proved by enumeration only (the MILP proves energy); \
             this mapspace has {:.3e} factorisations × keep patterns, above the enumeration \
             limit {enumerate_limit}: raise --enumerate-limit, use --engine enumerate, or \
             constrain the mapspace",
            enumeration_size(space)
        ));
    }
    let mut tried = None;
    if engine == Engine::Auto {
        let trial = start + trial(space, choices);
        let (cert, i) = enumerate_best(
            space,
            choices,
            objective,
            Some(deadline.map_or(trial, |d| d.min(trial))),
            so.gap,
            start,
        )?;
        // Finished, or the time limit is spent: the enumeration's answer.
        if cert.status != Status::TimeLimit || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((cert, i, ProofKind::Enumerated));
        }
        tried = Some((cert, i));
    }
    let so = SolveOptions {
        time_limit: so
            .time_limit
            .map(|s| (s - start.elapsed().as_secs_f64()).max(0.0)),
        ..so.clone()
    };
    crate::progress::phase("MILP");
    let (mut cert, mut i) = milp::solve_choices(space, choices, objective, &so)?;
    // A mapping the enumeration saw must not undercut the MILP's bound.
    if let Some((tried, _)) = tried
        .as_ref()
        .filter(|t| t.0.value < cert.bound * (1.0 - 1e-6))
    {
        return Err(crate::certify::internal_error(&format!(
            "the MILP's bound {} pJ is above a valid mapping the enumeration found ({} pJ)",
            cert.bound, tried.value
        )));
    }
    // Stopped by the time limit: the better incumbent of the two, and the higher bound.
    if let (Status::TimeLimit, Some((tried, k))) = (cert.status, tried) {
        cert.bound = cert.bound.max(tried.bound);
        if tried.value < cert.value {
            (cert.mapping, cert.evaluation, cert.value, i) =
                (tried.mapping, tried.evaluation, tried.value, k);
        }
        cert.gap = milp::relative_gap(cert.value, cert.bound);
        if cert.gap <= so.gap {
            cert.status = Status::Optimal;
        }
    }
    cert.seconds = start.elapsed().as_secs_f64();
    Ok((cert, i, ProofKind::Milp))
}

/// The best choice by enumeration ([`crate::search::exhaustive_choices`] for energy, one
/// [`crate::search::enumerate`] per choice otherwise), stopped at `deadline`: its certificate
/// (bound: the least over every choice) and index.
fn enumerate_best(
    space: &Mapspace,
    choices: &[ModelOptions],
    objective: Objective,
    deadline: Option<Instant>,
    gap_tolerance: f64,
    start: Instant,
) -> Result<(milp::Certificate, usize), String> {
    type Found = (Option<Mapping>, Option<Evaluation>, f64);
    let results: Vec<Found> = if objective == Objective::Energy {
        crate::search::exhaustive_choices(space, choices, None, deadline)?
            .into_iter()
            .map(|b| (b.mapping, b.evaluation, b.bound))
            .collect()
    } else {
        choices
            .iter()
            .map(|o| {
                let r = crate::search::enumerate(space, o, objective, deadline);
                let bound = r.bound.expect("an enumeration has a bound");
                (r.best, r.evaluation, bound)
            })
            .collect()
    };
    let value = |e: &Option<Evaluation>| {
        e.as_ref().map_or(f64::INFINITY, |e| {
            crate::search::objective_value(e, objective)
        })
    };
    let mut best = 0;
    for i in 1..results.len() {
        if value(&results[i].1) < value(&results[best].1) {
            best = i;
        }
    }
    let (mapping, evaluation, _) = results[best].clone();
    let v = value(&evaluation);
    let bound = results.iter().map(|r| r.2).fold(f64::INFINITY, f64::min);
    let gap = milp::relative_gap(v, bound);
    let status = if gap <= gap_tolerance {
        if mapping.is_some() {
            Status::Optimal
        } else {
            Status::Infeasible
        }
    } else {
        Status::TimeLimit
    };
    let cert = milp::Certificate {
        status,
        reason: (status == Status::Infeasible).then(|| {
            milp::diagnose(space, &choices[0]).unwrap_or_else(|| {
                "no valid mapping: every mapping of the mapspace was evaluated or bounded \
                 (each set bounded shows every completion invalid)"
                    .into()
            })
        }),
        check: None,
        mapping,
        evaluation,
        value: v,
        bound,
        gap,
        rounds: 0,
        milp_solves: 0,
        splits: 0,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok((cert, best))
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
fn read_cache(
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
fn write_cache(f: &Path, shape: &str, entries: &[Entry]) {
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
