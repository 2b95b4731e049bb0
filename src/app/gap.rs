//! `qmap gap`, the CI gate for heuristic mappers: a mapper's mappings of a network's layers
//! against the proven optima of the same mapspaces.
//!
//! Strict by default, as a gate must be: every layer of the instance's network needs a mapping
//! (missing ones fail and are listed; `only` or `allow_missing` narrow that); files in the
//! mapping directory that name no layer are listed with the nearest layer name; a bad mapping
//! file fails its layer (with its reason), never the report; every mapping file is read and
//! checked before any optimum is proved; the optima come from the table and its cache, for
//! instances and Timeloop designs alike.

use crate::app::job::{file_stem, load_job, select_layer};
use crate::eval::evaluate;
use crate::instance::{self, BitConfig};
use crate::mapspace::{Constraints, Mapspace};
use crate::model::{Arch, Mapping, ModelOptions, Problem};
use crate::optimum::{shape_key, CacheUse, Entry, TableSettings, Unit};
use crate::spec::InputError;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The design the mappings are for.
pub enum Design<'a> {
    /// An instance file; `layer` picks one layer of a network (with a single mapping file).
    Instance {
        path: &'a Path,
        layer: Option<String>,
    },
    /// Timeloop design files: ARCH PROBLEM ERT.
    Timeloop(&'a [PathBuf]),
}

/// What `qmap gap` is asked.
pub struct GapRequest<'a> {
    pub design: Design<'a>,
    /// Timeloop-format constraints added to the design's own.
    pub constraints: Option<&'a Path>,
    /// One mapping file (or a timeloop-mapper output directory) for one layer, or a directory
    /// of per-layer files.
    pub mappings: &'a Path,
    pub max_gap: f64,
    /// Only these layers (names or 1-based indices); empty: every layer of the network.
    pub only: Vec<String>,
    /// Layers without a mapping file are skipped (listed) instead of failing.
    pub allow_missing: bool,
    pub settings: TableSettings,
}

/// One layer's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct GapRow {
    pub name: String,
    pub heuristic_pj: Option<f64>,
    pub heuristic_cycles: Option<u64>,
    pub optimum_pj: Option<f64>,
    /// The optimum's proven lower bound (equal to it when proved).
    pub optimum_bound_pj: Option<f64>,
    pub gap: Option<f64>,
    pub valid: bool,
    pub reason: Option<String>,
    /// Whether the heuristic's mapping lies in the declared mapspace (the optimum's domain).
    pub in_mapspace: bool,
    pub optimum_status: String,
    pub pass: bool,
    pub mapping_file: String,
    /// Wall time this layer took in this run (reading its mapping and its optimum's unit).
    pub seconds: f64,
}

/// A file of the mapping directory that names no layer, and the layer name nearest to it.
#[derive(Debug, Clone, Serialize)]
pub struct Unrecognised {
    pub file: String,
    pub nearest: Option<String>,
}

/// The report: per layer a verdict; the layers without a mapping; the files that name no layer.
#[derive(Debug, Clone, Serialize)]
pub struct GapReport {
    pub suite: String,
    pub max_gap: f64,
    pub pass: bool,
    pub layers: Vec<GapRow>,
    /// Layers with no mapping file (failed, unless `allow_missing`).
    pub missing: Vec<String>,
    pub unrecognised: Vec<Unrecognised>,
    #[serde(skip)]
    pub cache_warnings: Vec<String>,
}

/// `--max-gap`: `5%`, or a fraction at most 1 (`0.05`); a bare number above 1 is refused (it
/// would be read as more than 100 %).
pub fn parse_max_gap(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map_err(|e| e.to_string())? / 100.0,
        None => {
            let v: f64 = t.parse().map_err(|e| format!("`{t}`: {e}"))?;
            if v > 1.0 {
                return Err(format!(
                    "`{t}` would be a gap of {:.0} %: write a percentage (`{t}%`) or a \
                     fraction at most 1 (`{}`)",
                    v * 100.0,
                    v / 100.0
                ));
            }
            v
        }
    };
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("`{t}` is not a gap (write 5% or 0.05)"))
    }
}

/// One layer to check: its problem and options, and its mapping (read and checked) or why
/// there is none.
struct Item {
    name: String,
    problem: Problem,
    space: Mapspace,
    opts: ModelOptions,
    file: Option<PathBuf>,
    mapping: Result<Mapping, String>,
    seconds: f64,
}

/// Runs the gate (see the module doc).
pub fn run(req: &GapRequest) -> Result<GapReport, InputError> {
    let (suite, arch, cons, bits, mut items, missing, unrecognised) = gather(req)?;
    let mut cache_warnings = vec![];
    let optima = optima(req, &arch, &cons, bits, &mut items, &mut cache_warnings)?;
    let layers: Vec<GapRow> = items
        .iter()
        .zip(&optima)
        .map(|(it, opt)| verdict(it, opt.as_ref(), &arch, req.max_gap))
        .collect();
    let pass = layers.iter().all(|r| r.pass) && (req.allow_missing || missing.is_empty());
    Ok(GapReport {
        suite,
        max_gap: req.max_gap,
        pass,
        layers,
        missing,
        unrecognised,
        cache_warnings,
    })
}

type Gathered = (
    String,
    Arch,
    Constraints,
    Option<BitConfig>,
    Vec<Item>,
    Vec<String>,
    Vec<Unrecognised>,
);

/// The design, its layers to check with their mapping files read and checked, the layers
/// without a file and the unrecognised files.
fn gather(req: &GapRequest) -> Result<Gathered, InputError> {
    match &req.design {
        Design::Timeloop(files) => {
            let t = Instant::now();
            let job = load_job(None, &None, Some(files), req.constraints, None)?;
            let opts = job.choices[0].1.clone();
            let mut cons = Constraints::new(&job.arch);
            if let Some(c) = req.constraints {
                cons.add_file(c, &job.arch)?;
            }
            let mapping = read_mapping(req.mappings, &job.arch, &job.problem);
            let item = Item {
                name: job.problem.name.clone(),
                problem: job.problem,
                space: job.space,
                opts,
                file: Some(req.mappings.to_path_buf()),
                mapping,
                seconds: t.elapsed().as_secs_f64(),
            };
            Ok((job.title, job.arch, cons, None, vec![item], vec![], vec![]))
        }
        Design::Instance { path, layer } => gather_instance(req, path, layer.as_deref()),
    }
}

/// [`gather`] for an instance.
fn gather_instance(
    req: &GapRequest,
    path: &Path,
    layer: Option<&str>,
) -> Result<Gathered, InputError> {
    let mut inst = instance::load(path)?;
    if let Some(sel) = layer {
        inst.selected = select_layer(&inst, sel, path)?;
    }
    let mut cons = inst.constraints()?;
    if let Some(f) = req.constraints {
        cons.add_file(f, &inst.arch)?;
    }
    let bits = match (inst.bits.is_native(), inst.bits.fixed()) {
        (true, _) => None,
        (false, Some(t)) => Some(t),
        (false, None) => {
            return Err(InputError::new(
                path,
                "bits",
                "gap needs one bit-width per tensor role (the instance lists choices)",
            ))
        }
    };
    let (files, missing, unrecognised) = layer_files(req, &inst, layer.is_some(), path)?;
    let mut items = vec![];
    for (i, file) in files {
        let t = Instant::now();
        let l = &inst.layers[i];
        let space = Mapspace::new(&l.problem, &inst.arch, &cons)
            .map_err(|e| InputError::new(path, "constraints", e))?;
        let mapping = match &file {
            Some(f) => read_mapping(f, &inst.arch, &l.problem),
            None => Err("no mapping file for this layer".to_string()),
        };
        items.push(Item {
            name: l.name.clone(),
            problem: l.problem.clone(),
            space,
            opts: inst.options(&l.problem, bits),
            file,
            mapping,
            seconds: t.elapsed().as_secs_f64(),
        });
    }
    let suite = format!("{} on {}", inst.workload_name, inst.arch.name);
    Ok((suite, inst.arch, cons, bits, items, missing, unrecognised))
}

/// Per layer to check, its mapping file (None: missing, checked and failed); the missing
/// layers' names; the files of the directory that name no layer.
#[allow(clippy::type_complexity)]
fn layer_files(
    req: &GapRequest,
    inst: &instance::Instance,
    one_layer: bool,
    path: &Path,
) -> Result<
    (
        Vec<(usize, Option<PathBuf>)>,
        Vec<String>,
        Vec<Unrecognised>,
    ),
    InputError,
> {
    let dir = req.mappings;
    let per_layer_dir = dir.is_dir()
        && !one_layer
        && !(inst.layers.len() == 1
            && is_mapper_output(dir)
            && layer_files_in(dir, inst).is_empty());
    if !per_layer_dir {
        // One mapping (a file, or a mapper's output directory) for the selected layer.
        return Ok((
            vec![(inst.selected, Some(dir.to_path_buf()))],
            vec![],
            vec![],
        ));
    }
    let wanted: Vec<usize> = if req.only.is_empty() {
        (0..inst.layers.len()).collect()
    } else {
        req.only
            .iter()
            .map(|l| select_layer(inst, l, path))
            .collect::<Result<_, _>>()?
    };
    let found = layer_files_in(dir, inst);
    let mut out = vec![];
    let mut missing = vec![];
    for i in wanted {
        let file = found.iter().find(|(j, _)| *j == i).map(|(_, f)| f.clone());
        if file.is_none() {
            missing.push(inst.layers[i].name.clone());
            if req.allow_missing {
                continue;
            }
        }
        out.push((i, file));
    }
    let unrecognised = unrecognised_files(dir, inst, &found);
    Ok((out, missing, unrecognised))
}

/// The layers that have a mapping file in `dir`: `LAYER.yaml`, `LAYER.map.yaml`,
/// `LAYER.map.txt`, `LAYER.stats.txt` or a `LAYER/` mapper output directory.
fn layer_files_in(dir: &Path, inst: &instance::Instance) -> Vec<(usize, PathBuf)> {
    inst.layers
        .iter()
        .enumerate()
        .filter_map(|(i, l)| layer_mapping_path(dir, &l.name).map(|p| (i, p)))
        .collect()
}

/// The heuristic's mapping file of a layer in a directory, if there is one.
pub fn layer_mapping_path(dir: &Path, name: &str) -> Option<PathBuf> {
    let stem = file_stem(name);
    [
        format!("{stem}.yaml"),
        format!("{stem}.map.yaml"),
        format!("{stem}.map.txt"),
        format!("{stem}.stats.txt"),
        stem.clone(),
    ]
    .into_iter()
    .map(|f| dir.join(f))
    .find(|p| p.exists())
}

/// Whether `dir` is one timeloop-mapper output directory (its map or stats file).
fn is_mapper_output(dir: &Path) -> bool {
    [
        "timeloop-mapper.map.yaml",
        "timeloop-mapper.map.txt",
        "timeloop-mapper.stats.txt",
    ]
    .iter()
    .any(|f| dir.join(f).is_file())
}

/// The entries of `dir` that are no layer's mapping file (hidden files aside), each with the
/// layer name nearest to its stem.
fn unrecognised_files(
    dir: &Path,
    inst: &instance::Instance,
    found: &[(usize, PathBuf)],
) -> Vec<Unrecognised> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<Unrecognised> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| !found.iter().any(|(_, f)| f == p))
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let stem = [".map.yaml", ".map.txt", ".stats.txt", ".yaml", ".yml"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_string();
            let nearest = inst
                .layers
                .iter()
                .map(|l| (edit_distance(&stem, &file_stem(&l.name)), &l.name))
                .min()
                .filter(|(d, _)| *d <= stem.len().max(3) / 2 + 1)
                .map(|(_, n)| n.clone());
            Some(Unrecognised {
                file: p.display().to_string(),
                nearest,
            })
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// Levenshtein distance (for "did you mean" hints).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + (ca != cb) as usize).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A mapper's mapping file, read and checked against the layer (any error is the layer's).
fn read_mapping(file: &Path, arch: &Arch, problem: &Problem) -> Result<Mapping, String> {
    instance::load_mapping_file(file, arch, problem).map_err(|e| e.to_string())
}

/// The optimum table entry of every item whose mapping was read (None for the others), from
/// the table's cache when it checks out; items' seconds grow by their unit's time.
fn optima(
    req: &GapRequest,
    arch: &Arch,
    cons: &Constraints,
    bits: Option<BitConfig>,
    items: &mut [Item],
    warnings: &mut Vec<String>,
) -> Result<Vec<Option<Entry>>, InputError> {
    let (settings, unusable) = crate::optimum::usable_cache(&req.settings);
    warnings.extend(unusable);
    let mut out = vec![];
    for it in items.iter_mut() {
        if it.mapping.is_err() {
            out.push(None);
            continue;
        }
        let t = Instant::now();
        let shape = shape_key(&it.problem);
        let unit = Unit {
            arch,
            cons,
            problem: &it.problem,
            shape: &shape,
            configs: &[bits],
            opts: std::slice::from_ref(&it.opts),
        };
        let file = it.file.clone().unwrap_or_default();
        let (mut entries, used) = unit
            .entries(&settings)
            .map_err(|e| InputError::new(&file, "(solver)", e))?;
        if let CacheUse::Rejected(why) = used {
            warnings.push(format!("layer {}: {why}", it.name));
        }
        it.seconds += t.elapsed().as_secs_f64();
        out.push(entries.pop());
    }
    Ok(out)
}

/// One layer's verdict: the heuristic's mapping evaluated, against the optimum.
fn verdict(it: &Item, opt: Option<&Entry>, arch: &Arch, max_gap: f64) -> GapRow {
    let file = it
        .file
        .as_ref()
        .map_or(String::new(), |f| f.display().to_string());
    let mut row = GapRow {
        name: it.name.clone(),
        heuristic_pj: None,
        heuristic_cycles: None,
        optimum_pj: opt.and_then(|e| e.energy_pj()),
        optimum_bound_pj: opt.and_then(|e| e.bound_pj()),
        gap: None,
        valid: false,
        reason: None,
        in_mapspace: false,
        optimum_status: opt.map_or("not proved".into(), |e| match e.energy_pj() {
            None => "infeasible".into(),
            Some(_) => crate::report::status_name(e.proof().status()).into(),
        }),
        pass: false,
        mapping_file: file,
        seconds: it.seconds,
    };
    let m = match &it.mapping {
        Ok(m) => m,
        Err(why) => {
            row.reason = Some(why.clone());
            return row;
        }
    };
    let ev = evaluate(&it.problem, arch, m, &it.opts);
    row.valid = ev.valid;
    row.in_mapspace = it.space.contains(m);
    if let Some(inv) = &ev.invalid {
        row.reason = Some(inv.to_string());
        return row;
    }
    row.heuristic_pj = Some(ev.energy_pj);
    row.heuristic_cycles = Some(ev.cycles);
    match row.optimum_pj {
        Some(o) => {
            let g = (ev.energy_pj - o) / o;
            row.gap = Some(g);
            row.pass = g <= max_gap;
            if !row.in_mapspace {
                row.reason = Some(format!(
                    "outside the declared mapspace ({}); the optimum covers the mapspace only",
                    it.space.check(m).err().unwrap_or_default()
                ));
            }
        }
        None => {
            row.reason = Some(
                opt.and_then(|e| e.cert.reason.clone())
                    .unwrap_or("no mapping of the mapspace fits".into()),
            )
        }
    }
    row
}
