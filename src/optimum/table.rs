//! The per-layer optimum table of a network: its settings, its units (distinct layer shapes),
//! built in parallel, each unit from the cache when it checks out or solved and stored.

use super::*;

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
    /// Show progress on stderr (a bar on a terminal, plain lines elsewhere).
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

/// One table entry: a layer at one bit configuration, and the certificate of its energy optimum.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The bit configuration; None = native word widths.
    pub bits: Option<BitConfig>,
    pub cert: Certificate,
}

impl Entry {
    /// The optimum's energy (pJ); None when no mapping fits at these bit-widths.
    pub fn energy_pj(&self) -> Option<f64> {
        self.cert.evaluation.as_ref().map(|e| e.energy_pj)
    }
    pub fn cycles(&self) -> Option<u64> {
        self.cert.evaluation.as_ref().map(|e| e.cycles)
    }
    /// How the entry is proved, as its cache file keeps it.
    pub fn proof(&self) -> Proof {
        self.cert.record()
    }
    /// The lower bound (pJ) the proof gives (the energy itself for an enumerated optimum);
    /// None when infinite (no mapping fits).
    pub fn bound_pj(&self) -> Option<f64> {
        let bound = self.proof().bound_and_gap(self.cert.value).0;
        bound.is_finite().then_some(bound)
    }
}

/// The table: per layer, one entry per bit configuration (in the order asked).
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

/// The distinct layer shapes of `inst` in first-appearance order (each with its key and its
/// first layer), and the shape of every layer.
pub fn distinct_shapes(inst: &Instance) -> (Vec<(String, usize)>, Vec<usize>) {
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
    (units, unit_of)
}

/// A table unit's entries, how it used the cache, and its wall time (seconds).
pub type Solved = (Vec<Entry>, CacheUse, f64);

/// The entries of the unit of shape `key` (first seen at layer `rep`) at the bit choices
/// `configs`: from the cache when they check out, else solved (and stored).
pub fn solve_shape(
    inst: &Instance,
    cons: &Constraints,
    configs: &[Option<BitConfig>],
    settings: &TableSettings,
    key: &str,
    rep: usize,
) -> Result<Solved, String> {
    let t = Instant::now();
    let layer = &inst.layers[rep];
    let opts = unit_options(inst, rep, configs);
    let unit = Unit {
        arch: &inst.arch,
        cons,
        problem: &layer.problem,
        shape: key,
        configs,
        opts: &opts,
    };
    let (entries, used) = unit
        .entries(settings)
        .map_err(|e| format!("layer {}: {e}", layer.name))?;
    Ok((entries, used, t.elapsed().as_secs_f64()))
}

/// The model options of layer `rep` at each bit choice.
pub fn unit_options(
    inst: &Instance,
    rep: usize,
    configs: &[Option<BitConfig>],
) -> Vec<ModelOptions> {
    let problem = &inst.layers[rep].problem;
    configs.iter().map(|&b| inst.options(problem, b)).collect()
}

/// Builds the table for every layer of `inst` at every bit choice in `configs` (None = native).
pub fn build(
    inst: &Instance,
    cons: &Constraints,
    configs: &[Option<BitConfig>],
    settings: &TableSettings,
) -> Result<Table, String> {
    let start = Instant::now();
    let (units, unit_of) = distinct_shapes(inst);
    let bar = crate::progress::Counter::new(settings.progress, units.len(), "layer shapes");
    let (settings, unusable) = usable_cache(settings);
    let mut cache_warnings: Vec<String> = unusable.into_iter().collect();
    let results: Vec<Result<Solved, String>> = units
        .par_iter()
        .map(|(key, rep)| {
            let r = solve_shape(inst, cons, configs, &settings, key, *rep);
            bar.inc();
            r
        })
        .collect();
    drop(bar);
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

/// One table unit: a layer shape on a design, at the bit choices `configs` (options `opts`).
pub struct Unit<'a> {
    pub arch: &'a crate::model::Arch,
    pub cons: &'a Constraints,
    pub problem: &'a Problem,
    /// [`shape_key`] of the problem.
    pub shape: &'a str,
    pub configs: &'a [Option<BitConfig>],
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
            .map(|d| cache_path(d, &self.cache_key(settings)));
        let mut used = CacheUse::Miss;
        if let Some(f) = &cache_file {
            match read_cache(f, &space, self.opts, self.configs, self.shape) {
                Ok(Some(entries)) => return Ok((entries, CacheUse::Hit)),
                Ok(None) => {}
                Err(why) => used = CacheUse::Rejected(format!("{}: {why}", f.display())),
            }
        }
        let certs = solve_unit(&space, self.opts, settings)?;
        let entries: Vec<Entry> = (certs.into_iter().zip(self.configs.iter().zip(self.opts)))
            .map(|(mut cert, (&bits, opts))| {
                if cert.mapping.is_none() {
                    cert.reason = milp::diagnose(&space, opts);
                }
                Entry { bits, cert }
            })
            .collect();
        if let Some(f) = &cache_file {
            write_cache(f, self, &entries);
        }
        Ok((entries, used))
    }

    /// The unit's cache key: a content hash of the model version, the design, the
    /// constraints, the shape, the bit choices, the options and the engine settings.
    pub fn cache_key(&self, settings: &TableSettings) -> String {
        content_hash(&[
            MODEL_VERSION.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
            format!("{:?}", self.arch),
            format!("{:?}", self.cons),
            self.shape.to_string(),
            // As `(inputs, weights, outputs)` tuples: the keys the cache has always used.
            format!(
                "{:?}",
                (self.configs.iter())
                    .map(|t| t.map(|b| (b.input_bits, b.weight_bits, b.output_bits)))
                    .collect::<Vec<_>>()
            ),
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
        ])
    }
}
