//! `qmap baseline`: the proven-optimal mappings of every layer (and bit choice) of an instance,
//! written as qmap and Timeloop mappings with a certificate each and a `summary.csv`, as a
//! typed report.

use super::job::RoleBits;
use crate::error::Error;
use crate::instance::{self, file_stem, instance_hash, select_layer, sub_instance, BitTriple};
use crate::optimum::{Entry, Proof, Table, TableSettings};
use crate::report::files::{check_output_dir, write_file, write_mapping, MappingFile};
use crate::spec::InputError;
use serde::Serialize;
use std::path::Path;

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
    pub model_version: &'a str,
    pub objective: &'static str,
    pub proof: &'a Proof,
    pub qmap_version: &'static str,
    pub reason: &'a Option<String>,
    pub status: &'static str,
    pub timeloop_mapping: String,
}

/// The columns of `summary.csv`.
const SUMMARY_HEADER: [&str; 13] = [
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
    let all = all_triples(&inst);
    let table = crate::optimum::build(&sub, &cons, &all, &req.settings)
        .map_err(|e| Error::solver(req.instance, e))?;
    let hash = instance_hash(&sub, &cons);
    let writer = Writer {
        req,
        inst: &inst,
        sub: &sub,
        hash: &hash,
        several_bits: all.len() > 1,
    };
    let unproven = writer.write_all(&table)?;
    Ok(BaselineReport {
        layers: sub.layers.len(),
        units: table.units,
        cached_units: table.cached_units,
        seconds: table.seconds,
        infeasible: infeasible_layers(&sub, &table),
        unproven,
        cache_warnings: table.cache_warnings,
    })
}

/// Every bit triple the table needs (the weight budget left to each layer), or native: the
/// bit choices of `qmap baseline`'s table (also sharded by `qmap table`).
pub fn all_triples(inst: &instance::Instance) -> Vec<Option<BitTriple>> {
    if inst.bits.is_native() {
        return vec![None];
    }
    let mut unbudgeted = inst.bits.clone();
    unbudgeted.weight_budget_bytes = None;
    unbudgeted.triples(0).into_iter().map(Some).collect()
}

/// A layer with no mapping at any of its bit choices is infeasible: the layer and why.
fn infeasible_layers(sub: &instance::Instance, table: &Table) -> Vec<(String, String)> {
    (sub.layers.iter().zip(&table.layers))
        .filter(|(_, entries)| (entries.iter()).all(|e| e.energy_pj.is_none() && e.proof.optimal()))
        .map(|(layer, entries)| {
            let why = entries.iter().find_map(|e| e.reason.clone());
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
    /// More than one bit triple: file names carry the triple.
    several_bits: bool,
}

/// One entry's output files (names relative to the output directory; empty when not written).
struct EntryFiles {
    mapping: String,
    timeloop_mapping: String,
    certificate: String,
}

impl Writer<'_> {
    /// Writes every entry's files and `summary.csv`: the number of entries not proven optimal.
    fn write_all(&self, table: &Table) -> Result<usize, InputError> {
        let mut csv = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Never)
            .from_writer(vec![]);
        csv.write_record(SUMMARY_HEADER).expect("csv to memory");
        let mut unproven = 0;
        for (layer, entries) in self.sub.layers.iter().zip(&table.layers) {
            let allowed = if self.inst.bits.is_native() {
                vec![None]
            } else {
                (self.inst.bits.triples(layer.weights).into_iter())
                    .map(Some)
                    .collect()
            };
            for e in entries.iter().filter(|e| allowed.contains(&e.bits)) {
                unproven += (!e.proof.optimal()) as usize;
                let files = self.write_entry(layer, e)?;
                csv.write_record(summary_row(&layer.name, e, &files))
                    .expect("csv to memory");
            }
        }
        let csv = String::from_utf8(csv.into_inner().expect("csv to memory")).expect("utf-8");
        write_file(&self.req.out.join("summary.csv"), &csv)?;
        Ok(unproven)
    }

    /// Writes an entry's mappings (qmap, and Timeloop's when its format can express it) and
    /// its certificate.
    fn write_entry(
        &self,
        layer: &crate::workload::Layer,
        e: &Entry,
    ) -> Result<EntryFiles, InputError> {
        let (sub, out) = (self.sub, self.req.out);
        let mut stem = file_stem(&layer.name);
        if let (Some((i, w, o)), true) = (e.bits, self.several_bits) {
            stem = format!("{stem}__i{i}w{w}o{o}");
        }
        let mut files = EntryFiles {
            mapping: String::new(),
            timeloop_mapping: String::new(),
            certificate: format!("{stem}.cert.json"),
        };
        if let Some(ms) = &e.mapping {
            let m = crate::model::mapping_from_spec(ms, &sub.arch, &layer.problem, out)?;
            let opts = sub.options(&layer.problem, e.bits);
            let title = format!(
                "{} / {} on {}",
                sub.workload_name, layer.name, sub.arch.name
            );
            let file = MappingFile {
                mapping: &m,
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
        }
        let cert = self.certificate(&layer.name, e, &files);
        let text = crate::report::files::json(&cert);
        write_file(&out.join(&files.certificate), &text)?;
        Ok(files)
    }

    fn certificate<'e>(
        &'e self,
        layer: &'e str,
        e: &'e Entry,
        files: &EntryFiles,
    ) -> Certificate<'e> {
        let (bound, gap) = e.proof.bound_and_gap(e.energy_pj.unwrap_or(f64::INFINITY));
        Certificate {
            bits: RoleBits::of(e.bits),
            bound_pj: bound.is_finite().then_some(bound),
            cycles: e.cycles,
            energy_pj: e.energy_pj,
            gap,
            instance: self.req.instance.display().to_string(),
            instance_sha256: self.hash,
            layer,
            mapping: files.mapping.clone(),
            model_version: crate::optimum::MODEL_VERSION,
            objective: "energy",
            proof: &e.proof,
            qmap_version: env!("CARGO_PKG_VERSION"),
            reason: &e.reason,
            status: entry_status(e),
            timeloop_mapping: files.timeloop_mapping.clone(),
        }
    }
}

/// An entry's status: `infeasible` without a mapping, else its proof's.
fn entry_status(e: &Entry) -> &'static str {
    if e.energy_pj.is_none() {
        "infeasible"
    } else {
        crate::report::status_name(e.proof.status())
    }
}

/// An entry's row of `summary.csv`.
fn summary_row(layer: &str, e: &Entry, files: &EntryFiles) -> [String; 13] {
    let (bound, gap) = e.proof.bound_and_gap(e.energy_pj.unwrap_or(f64::INFINITY));
    let (i, w, o) = e.bits.map_or(
        (String::new(), String::new(), String::new()),
        |(i, w, o)| (i.to_string(), w.to_string(), o.to_string()),
    );
    [
        layer.to_string(),
        i,
        w,
        o,
        e.energy_pj.map_or(String::new(), |v| format!("{v:.4}")),
        e.cycles.map_or(String::new(), |v| v.to_string()),
        entry_status(e).to_string(),
        if bound.is_finite() {
            format!("{bound:.4}")
        } else {
            String::new()
        },
        gap.to_string(),
        e.proof.engine().to_string(),
        files.mapping.clone(),
        files.timeloop_mapping.clone(),
        files.certificate.clone(),
    ]
}
