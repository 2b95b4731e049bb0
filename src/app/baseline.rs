//! `qmap baseline`: the proven-optimal mappings of every layer (and bit choice) of an instance,
//! written as qmap and Timeloop mappings with a certificate each and a `summary.csv`, as a
//! typed report.

use super::job::RoleBits;
use crate::error::Error;
use crate::eval::Evaluation;
use crate::instance::{self, file_stem, instance_hash, select_layer, sub_instance, BitConfig};
use crate::optimum::{Entry, Proof, Table, TableSettings};
use crate::report::files::{check_output_dir, write_file, write_mapping, MappingFile};
use crate::spec::InputError;
use serde::Serialize;
use std::path::Path;
use totals::*;

mod totals;
pub use totals::{LayerRow, NetworkTotals, Verdict};

/// What to prove and where to write it.
pub struct BaselineRequest<'a> {
    pub instance: &'a Path,
    /// The output directory.
    pub out: &'a Path,
    /// Only these layers (names or 1-based indices); empty: all.
    pub layers: &'a [String],
    pub settings: TableSettings,
}

/// What was proved and written.
pub struct BaselineReport {
    /// Layers, distinct shapes and those from the cache, and the table's wall time.
    pub layers: usize,
    pub units: usize,
    pub cached_units: usize,
    pub seconds: f64,
    /// Layers with no mapping at any of their bit choices, and why.
    pub infeasible: Vec<(String, String)>,
    /// Entries not proven optimal (time limit).
    pub unproven: usize,
    pub cache_warnings: Vec<String>,
    /// The levels of the energy breakdowns (outermost first, then the MACs).
    pub levels: Vec<String>,
    /// Per layer, its least-energy entry (its only one at fixed bits).
    pub rows: Vec<LayerRow>,
    /// More than one bit choice per layer (the rows are the least-energy ones).
    pub several_bits: bool,
    /// The network's totals over `rows`.
    pub totals: NetworkTotals,
}

impl BaselineReport {
    /// False when a layer is infeasible or an entry is not proven optimal (exit code 1).
    pub fn pass(&self) -> bool {
        self.unproven == 0 && self.infeasible.is_empty()
    }
}

/// One entry's certificate (`LAYER[__iIwWoO].cert.json`; keys in alphabetical order).
#[derive(Serialize)]
pub struct Certificate<'a> {
    pub bits: Option<RoleBits>,
    pub bound_pj: Option<f64>,
    pub cycles: Option<u64>,
    pub energy_pj: Option<f64>,
    pub gap: f64,
    pub instance: String,
    pub instance_sha256: &'a str,
    pub layer: &'a str,
    pub mapping: String,
    /// Mappings in the layer's mapspace (null when too large to count within a second).
    pub mapspace_size: Option<f64>,
    pub model_version: &'a str,
    pub objective: &'static str,
    pub proof: Proof,
    pub qmap_version: &'static str,
    pub reason: &'a Option<String>,
    /// Wall time of the layer's shape in this run (a cache hit's is its check).
    pub solve_seconds: f64,
    pub status: &'static str,
    pub timeloop_mapping: String,
}

/// The columns of `summary.csv` (then one `energy_pj_LEVEL` column per level, outermost first,
/// and `energy_pj_MACs`).
const SUMMARY_HEADER: [&str; 16] = [
    "layer",
    "input_bits",
    "weight_bits",
    "output_bits",
    "energy_pj",
    "cycles",
    "status",
    "bound_pj",
    "gap",
    "proof",
    "mapping",
    "timeloop_mapping",
    "certificate",
    "weight_bytes",
    "solve_seconds",
    "mapspace_size",
];

/// Proves every selected layer at every allowed bit choice and writes the outputs.
pub fn run(req: &BaselineRequest) -> Result<BaselineReport, Error> {
    let inst = instance::load(req.instance)?;
    check_output_dir(req.out, "--out")?;
    let cons = inst.constraints()?;
    let layers: Vec<usize> = if req.layers.is_empty() {
        (0..inst.layers.len()).collect()
    } else {
        (req.layers.iter())
            .map(|l| select_layer(&inst, l, req.instance))
            .collect::<Result<_, _>>()?
    };
    let sub = sub_instance(&inst, &layers);
    let all = all_configs(&inst);
    let table = crate::optimum::build(&sub, &cons, &all, &req.settings)
        .map_err(|e| Error::solver(req.instance, e))?;
    let hash = instance_hash(&sub, &cons);
    let writer = Writer {
        req,
        inst: &inst,
        sub: &sub,
        hash: &hash,
        several_bits: all.len() > 1,
        mapspace_sizes: mapspace_sizes(&sub, &cons),
        layer_seconds: &table.layer_seconds,
    };
    let (all_rows, mut csv) = writer.write_all(&table)?;
    let levels = level_names(&sub);
    let rows = least_energy_per_layer(&all_rows);
    let totals = network_totals(&rows, levels.len(), table.seconds);
    csv.push_str(&network_row(&totals));
    write_file(&req.out.join("summary.csv"), &csv)?;
    Ok(BaselineReport {
        layers: sub.layers.len(),
        units: table.units,
        cached_units: table.cached_units,
        seconds: table.seconds,
        infeasible: infeasible_layers(&sub, &table),
        unproven: all_rows.iter().filter(|r| !r.verdict.proven).count(),
        cache_warnings: table.cache_warnings,
        levels,
        rows,
        several_bits: all.len() > 1,
        totals,
    })
}

/// Every bit configuration the table needs (the weight budget left to each layer), or native: the
/// bit choices of `qmap baseline`'s table (also sharded by `qmap table`).
pub fn all_configs(inst: &instance::Instance) -> Vec<Option<BitConfig>> {
    if inst.bits.is_native() {
        return vec![None];
    }
    let mut unbudgeted = inst.bits.clone();
    unbudgeted.weight_budget_bytes = None;
    unbudgeted.configs(0).into_iter().map(Some).collect()
}

/// A layer with no mapping at any of its bit choices is infeasible: the layer and why.
fn infeasible_layers(sub: &instance::Instance, table: &Table) -> Vec<(String, String)> {
    (sub.layers.iter().zip(&table.layers))
        .filter(|(_, entries)| {
            (entries.iter()).all(|e| e.energy_pj().is_none() && e.proof().optimal())
        })
        .map(|(layer, entries)| {
            let why = entries.iter().find_map(|e| e.cert.reason.clone());
            let why = why.as_deref().unwrap_or("no mapping of the mapspace fits");
            (layer.name.clone(), why.to_string())
        })
        .collect()
}

/// Writes the entries' files and the summary.
struct Writer<'a> {
    req: &'a BaselineRequest<'a>,
    inst: &'a instance::Instance,
    sub: &'a instance::Instance,
    hash: &'a str,
    /// More than one bit configuration: file names carry the triple.
    several_bits: bool,
    /// Per layer of `sub`: its mapspace's size and its shape's wall time.
    mapspace_sizes: Vec<Option<f64>>,
    layer_seconds: &'a [f64],
}

/// One entry's output files (names relative to the output directory; empty when not written).
struct EntryFiles {
    mapping: String,
    timeloop_mapping: String,
    certificate: String,
}

impl Writer<'_> {
    /// Writes every entry's files: each entry's row, and `summary.csv`'s text without its
    /// network row.
    fn write_all(&self, table: &Table) -> Result<(Vec<LayerRow>, String), InputError> {
        let mut csv = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Never)
            .from_writer(vec![]);
        let level_columns = level_names(self.sub)
            .into_iter()
            .map(|l| format!("energy_pj_{l}"));
        let header: Vec<String> = SUMMARY_HEADER
            .map(String::from)
            .into_iter()
            .chain(level_columns)
            .collect();
        csv.write_record(&header).expect("csv to memory");
        let mut rows = vec![];
        for (i, (layer, entries)) in self.sub.layers.iter().zip(&table.layers).enumerate() {
            let allowed = if self.inst.bits.is_native() {
                vec![None]
            } else {
                (self.inst.bits.configs(layer.weights).into_iter())
                    .map(Some)
                    .collect()
            };
            for e in entries.iter().filter(|e| allowed.contains(&e.bits)) {
                let (files, ev) = self.write_entry(i, layer, e)?;
                let row = LayerRow {
                    layer: layer.name.clone(),
                    bits: RoleBits::of(e.bits),
                    energy_pj: e.energy_pj(),
                    cycles: e.cycles(),
                    weight_bytes: weight_bytes(self.sub, layer.weights, e.bits),
                    verdict: Verdict::of(e),
                    solve_seconds: self.layer_seconds[i],
                    mapspace_size: self.mapspace_sizes[i],
                    level_energy_pj: ev.as_ref().map(level_energies).unwrap_or_default(),
                };
                csv.write_record(summary_row(&row, e, &files, header.len()))
                    .expect("csv to memory");
                rows.push(row);
            }
        }
        let csv = String::from_utf8(csv.into_inner().expect("csv to memory")).expect("utf-8");
        Ok((rows, csv))
    }

    /// Writes an entry's mappings (qmap, and Timeloop's when its format can express it) and
    /// its certificate.
    fn write_entry(
        &self,
        i: usize,
        layer: &crate::workload::Layer,
        e: &Entry,
    ) -> Result<(EntryFiles, Option<Evaluation>), InputError> {
        let (sub, out) = (self.sub, self.req.out);
        let mut stem = file_stem(&layer.name);
        if let (Some(b), true) = (e.bits, self.several_bits) {
            let (i, w, o) = (b.input_bits, b.weight_bits, b.output_bits);
            stem = format!("{stem}__i{i}w{w}o{o}");
        }
        let mut files = EntryFiles {
            mapping: String::new(),
            timeloop_mapping: String::new(),
            certificate: format!("{stem}.cert.json"),
        };
        let mut ev = None;
        if let Some(m) = &e.cert.mapping {
            let opts = sub.options(&layer.problem, e.bits);
            let title = format!(
                "{} / {} on {}",
                sub.workload_name, layer.name, sub.arch.name
            );
            let file = MappingFile {
                mapping: m,
                arch: &sub.arch,
                problem: &layer.problem,
                opts: &opts,
                title: &title,
                arch_file: &sub.arch_file,
                objective: crate::spec::Objective::Energy,
            };
            files.mapping = format!("{stem}.yaml");
            write_mapping(&out.join(&files.mapping), &file)?;
            let tpath = out.join(format!("{stem}.map.yaml"));
            if let Ok(text) = file.timeloop_text(&tpath) {
                write_file(&tpath, &text)?;
                files.timeloop_mapping = format!("{stem}.map.yaml");
            }
            ev = Some(crate::eval::evaluate(&layer.problem, &sub.arch, m, &opts));
        }
        let cert = self.certificate(i, &layer.name, e, &files);
        let text = crate::report::files::json(&cert);
        write_file(&out.join(&files.certificate), &text)?;
        Ok((files, ev))
    }

    fn certificate<'e>(
        &'e self,
        i: usize,
        layer: &'e str,
        e: &'e Entry,
        files: &EntryFiles,
    ) -> Certificate<'e> {
        let (bound, gap) = e
            .proof()
            .bound_and_gap(e.energy_pj().unwrap_or(f64::INFINITY));
        Certificate {
            bits: RoleBits::of(e.bits),
            bound_pj: bound.is_finite().then_some(bound),
            cycles: e.cycles(),
            energy_pj: e.energy_pj(),
            gap,
            instance: self.req.instance.display().to_string(),
            instance_sha256: self.hash,
            layer,
            mapping: files.mapping.clone(),
            mapspace_size: self.mapspace_sizes[i],
            model_version: crate::optimum::MODEL_VERSION,
            objective: "energy",
            proof: e.proof(),
            qmap_version: env!("CARGO_PKG_VERSION"),
            reason: &e.cert.reason,
            solve_seconds: self.layer_seconds[i],
            status: entry_status(e),
            timeloop_mapping: files.timeloop_mapping.clone(),
        }
    }
}

/// An entry's row of `summary.csv` (`columns` cells: no energy by level without a mapping).
fn summary_row(row: &LayerRow, e: &Entry, files: &EntryFiles, columns: usize) -> Vec<String> {
    let (bound, gap) = (e.proof()).bound_and_gap(e.energy_pj().unwrap_or(f64::INFINITY));
    let (i, w, o) = e
        .bits
        .map_or((String::new(), String::new(), String::new()), |b| {
            let bits = [b.input_bits, b.weight_bits, b.output_bits].map(|v| v.to_string());
            bits.into()
        });
    let mut cells = vec![
        row.layer.clone(),
        i,
        w,
        o,
        e.energy_pj().map_or(String::new(), |v| format!("{v:.4}")),
        e.cycles().map_or(String::new(), |v| v.to_string()),
        row.verdict.status.to_string(),
        if bound.is_finite() {
            format!("{bound:.4}")
        } else {
            String::new()
        },
        gap.to_string(),
        row.verdict.proof.to_string(),
        files.mapping.clone(),
        files.timeloop_mapping.clone(),
        files.certificate.clone(),
        format!("{}", row.weight_bytes),
        format!("{:.3}", row.solve_seconds),
        row.mapspace_size.map_or(String::new(), |n| format!("{n}")),
    ];
    cells.extend(row.level_energy_pj.iter().map(|e| format!("{e:.4}")));
    cells.resize(columns, String::new());
    cells
}

/// The last row of `summary.csv`: the network's totals (layer `(network)`; its status is
/// `optimal` when every layer is).
fn network_row(t: &NetworkTotals) -> String {
    let status = if t.optimal { "optimal" } else { "not_optimal" };
    let mut cells = vec![
        "(network)".to_string(),
        String::new(),
        String::new(),
        String::new(),
        format!("{:.4}", t.energy_pj),
        t.cycles.to_string(),
        status.to_string(),
    ];
    cells.extend(std::iter::repeat_n(String::new(), 6));
    cells.push(format!("{}", t.weight_bytes));
    cells.push(format!("{:.3}", t.solve_seconds));
    cells.push(String::new());
    cells.extend(t.level_energy_pj.iter().map(|e| format!("{e:.4}")));
    cells.join(",") + "\n"
}
