//! `qmap import`: an ONNX model read into a qmap network (checked and counted by the same
//! [`crate::workload::build_network`] as every YAML network) and, with `--out`, written as a
//! network YAML file.

use crate::onnx::{self, InputOptions};
use crate::spec::{InputError, LayerKind, LayerSpec, NetworkSpec};
use crate::workload::build_network;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What to import.
pub struct ImportRequest<'a> {
    pub model: &'a Path,
    /// The whole input shape (batch first), for dynamic dims.
    pub input_shape: Option<Vec<u64>>,
    /// Where to write the network YAML.
    pub out: Option<&'a Path>,
}

/// One imported layer.
#[derive(Debug, Clone, Serialize)]
pub struct ImportedLayer {
    pub name: String,
    pub kind: LayerKind,
    /// The layer's dims as its YAML gives them (N, C, M or G, P, Q, R, S, and `groups`).
    pub dims: BTreeMap<String, u64>,
    pub macs: u64,
    pub weights: u64,
    /// The producer, when not the previous layer (`input` for the network input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// Layers, MACs and weights of one kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindTotals {
    pub layers: usize,
    pub macs: u64,
    pub weights: u64,
}

/// The imported network, counted.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub model: String,
    pub network: String,
    pub layers: Vec<ImportedLayer>,
    pub by_kind: BTreeMap<String, KindTotals>,
    pub macs_total: u64,
    pub weights_total: u64,
    /// The YAML file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
    #[serde(skip)]
    pub spec: NetworkSpec,
}

/// Imports the model, checks its chain and counts it; writes the YAML when asked.
pub fn run(req: &ImportRequest) -> Result<ImportReport, InputError> {
    if let Some(out) = req.out {
        crate::report::files::check_outputs(&[(Some(out), "--out")])?;
    }
    let opts = InputOptions {
        shape: req.input_shape.clone(),
        batch: None,
    };
    let spec = onnx::load(req.model, &opts)?;
    let built = build_network(&spec, false, None, req.model)?;
    let mut by_kind: BTreeMap<String, KindTotals> = BTreeMap::new();
    let mut layers = Vec::new();
    for (l, b) in spec.layers.iter().zip(&built) {
        let macs = b.problem.macs();
        let t = by_kind.entry(kind_name(l.kind)).or_default();
        t.layers += 1;
        t.macs += macs;
        t.weights += b.weights;
        layers.push(ImportedLayer {
            name: l.name.clone(),
            kind: l.kind,
            dims: dims(l),
            macs,
            weights: b.weights,
            input: l.input.clone(),
        });
    }
    if let Some(out) = req.out {
        crate::report::files::write_file(out, &crate::report::network::network_yaml(&spec))?;
    }
    Ok(ImportReport {
        model: req.model.display().to_string(),
        network: spec.name.clone(),
        macs_total: crate::workload::total_macs(&built),
        weights_total: crate::workload::total_weights(&built),
        layers,
        by_kind,
        out: req.out.map(|p| p.display().to_string()),
        spec,
    })
}

/// The kind as the YAML spells it.
pub fn kind_name(kind: LayerKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A layer's dims as its YAML gives them (and `groups` when given).
fn dims(l: &LayerSpec) -> BTreeMap<String, u64> {
    let groups = ("groups", l.groups);
    (l.dims().into_iter().chain([groups]))
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}
