//! The random-search baseline of `qmap front`: uniform bits with each layer mapped by random
//! search (the seed paper's mapper: [`SAMPLES`] valid samples per layer, seeded), cached.
//!
//! Layers of one shape give one search (the search depends on the shape, the design, the bits
//! and the seed only). Each shape's best mapping is kept in the table's cache directory under a
//! content hash of everything it depends on (like the table's units,
//! [`crate::optimum::cache_path`]), and verified like them when read: the mapping must be in the
//! mapspace, valid, and re-evaluate to the stored energy; a file that does not check out is
//! searched again and rewritten.

use crate::instance::{BitConfig, Instance};
use crate::mapspace::{Constraints, Mapspace};
use crate::model::{mapping_from_spec, mapping_to_spec};
use crate::optimum::{cache_path, content_hash, distinct_shapes, MODEL_VERSION};
use crate::spec::{MappingSpec, Objective};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Valid samples per layer.
pub const SAMPLES: u64 = 10_000;

/// The baseline's total and how it used the cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomBaseline {
    /// Network energy (pJ) and latency (cycles) of the mappings found; None when some layer
    /// found no valid mapping.
    pub energy_pj: Option<f64>,
    pub cycles: Option<u64>,
    /// Distinct layer shapes, and how many were read from the cache.
    pub shapes: usize,
    pub cached_shapes: usize,
}

/// One shape's cached search result.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    model_version: String,
    kind: String,
    shape: String,
    /// The best mapping's energy (pJ) and the mapping; None when no sample was valid.
    energy_pj: Option<f64>,
    mapping: Option<MappingSpec>,
}

/// The network's energy at uniform `bits` with each layer mapped by random search (seeded),
/// each distinct shape from `cache_dir` when its file checks out, else searched (and stored).
pub fn uniform_random(
    inst: &Instance,
    cons: &Constraints,
    bits: BitConfig,
    seed: u64,
    cache_dir: Option<&Path>,
) -> RandomBaseline {
    let (units, unit_of) = distinct_shapes(inst);
    let per_shape: Vec<(Option<(f64, u64)>, bool)> = units
        .par_iter()
        .map(|(shape, rep)| shape_energy(inst, cons, *rep, shape, bits, seed, cache_dir))
        .collect();
    let energy_pj = (unit_of.iter().map(|&u| per_shape[u].0.map(|b| b.0))).sum::<Option<f64>>();
    let cycles = (unit_of.iter().map(|&u| per_shape[u].0.map(|b| b.1))).sum::<Option<u64>>();
    RandomBaseline {
        energy_pj,
        cycles,
        shapes: units.len(),
        cached_shapes: per_shape.iter().filter(|s| s.1).count(),
    }
}

/// One shape's best energy by random search and that mapping's cycles (None: no valid sample;
/// None also when its mapspace cannot be built), and whether it came from the cache.
fn shape_energy(
    inst: &Instance,
    cons: &Constraints,
    rep: usize,
    shape: &str,
    bits: BitConfig,
    seed: u64,
    cache_dir: Option<&Path>,
) -> (Option<(f64, u64)>, bool) {
    let problem = &inst.layers[rep].problem;
    let Ok(space) = Mapspace::new(problem, &inst.arch, cons) else {
        return (None, false);
    };
    let opts = inst.options(problem, Some(bits));
    let file = cache_dir.map(|d| {
        let key = content_hash(&[
            "random-baseline".into(),
            MODEL_VERSION.into(),
            env!("CARGO_PKG_VERSION").into(),
            format!("{:?}", inst.arch),
            format!("{cons:?}"),
            shape.into(),
            format!("{bits:?} {opts:?} seed {seed} samples {SAMPLES}"),
        ]);
        cache_path(d, &key)
    });
    if let Some(hit) = file.as_deref().and_then(|f| read(f, &space, &opts, shape)) {
        return (hit, true);
    }
    let r = crate::search::random(&space, &opts, Objective::Energy, seed, SAMPLES, None);
    let best = (r.evaluation.as_ref())
        .filter(|_| r.value.is_finite())
        .map(|e| (r.value, e.cycles));
    let energy = best.map(|b| b.0);
    if let Some(f) = file {
        let cached = CacheFile {
            model_version: MODEL_VERSION.into(),
            kind: "random-baseline".into(),
            shape: shape.into(),
            energy_pj: energy,
            mapping: r
                .best
                .as_ref()
                .map(|m| mapping_to_spec(m, &inst.arch, problem)),
        };
        // A failed write only costs a later search.
        if let Some(dir) = f.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(text) = serde_json::to_string(&cached) {
            let _ = crate::report::write_atomic(&f, &text);
        }
    }
    (best, false)
}

/// The cached energy of a shape and its mapping's cycles (Some(None): no valid sample was
/// found) when the file at `f` checks out: same model version and shape, and its mapping in
/// the mapspace, valid and re-evaluating to the stored energy (a file without a mapping is
/// believed: the search found no valid sample). None when there is no such file or it does
/// not check out.
fn read(
    f: &Path,
    space: &Mapspace,
    opts: &crate::model::ModelOptions,
    shape: &str,
) -> Option<Option<(f64, u64)>> {
    let file: CacheFile = serde_json::from_str(&std::fs::read_to_string(f).ok()?).ok()?;
    if file.model_version != MODEL_VERSION || file.shape != shape || file.kind != "random-baseline"
    {
        return None;
    }
    match (&file.mapping, file.energy_pj) {
        (None, None) => Some(None),
        (Some(ms), Some(e)) => {
            let m = mapping_from_spec(ms, space.arch(), space.problem(), f).ok()?;
            let ev = crate::eval::evaluate(space.problem(), space.arch(), &m, opts);
            let same = ev.valid && space.contains(&m) && (ev.energy_pj - e).abs() <= 1e-12 * e;
            same.then_some(Some((e, ev.cycles)))
        }
        _ => None,
    }
}
