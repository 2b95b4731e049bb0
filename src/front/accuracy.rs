//! Accuracy models: what a network loses in accuracy at given per-layer bit-widths.
//!
//! [`AccuracyModel`]: `table` (additive per-layer accuracy deltas per (weight bits, activation
//! bits), measured by the user) or `proxy` (HAWQ-style: delta_l = −(s_w,l·noise(w_l) +
//! s_a,l·noise(a_l)), noise(b) = 2^(−2b)). Network accuracy = full-precision accuracy + Σ_l delta_l.
//! **The activation bits of a layer's delta are its input activation bits**: the bits of the
//! activations its MACs consume (its producer's output bits, or `first_input`). The label of a
//! model kind ([`AccuracyKind::label`]) says `accuracy (proxy)` for the proxy: never print a proxy
//! value as measured accuracy.
//!
//! A measured table (`qmap accuracy measure`) also carries per cell the KL divergence of the
//! logits (against float32) and may select by it (`select_by: kl`): top-1 losses of single
//! layers do not add up (the sum is about 0.9 points too optimistic at 4 bits and up, useless
//! with 2-bit layers; issue 26's measurements), KL divergences do (correlation 0.989 at 4 bits
//! and up). The front's accuracy axis is then the score −Σ KL (nats, [`AccuracyKind::Kl`]), and
//! top-1 is only reported, after measurement (`qmap front --verify-accuracy`). Cells whose
//! single-layer top-1 loss exceeds `max_cell_loss` points are left out of the selection.

use crate::spec::{self, InputError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The kind of an accuracy model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccuracyKind {
    /// Per-layer deltas measured by the user.
    #[default]
    Table,
    /// HAWQ-style noise proxy: not a measured accuracy.
    Proxy,
    /// A measured table selecting by KL: the score is −Σ KL of the logits (nats).
    Kl,
}

impl AccuracyKind {
    /// How to name the accuracy column: `accuracy (table)` or `accuracy (proxy)`.
    pub fn label(self) -> &'static str {
        match self {
            AccuracyKind::Table => "accuracy (table)",
            AccuracyKind::Proxy => "accuracy (proxy)",
            AccuracyKind::Kl => "-KL (nats, measured table)",
        }
    }

    /// The unit of the score: `points` (of accuracy) or `nats` (of KL).
    pub fn unit(self) -> &'static str {
        match self {
            AccuracyKind::Kl => "nats",
            _ => "points",
        }
    }

    /// The headline's default tolerance below uniform 8-bit's score: 0.5 points, or 0.01 nats.
    pub fn default_tolerance(self) -> f64 {
        match self {
            AccuracyKind::Kl => 0.01,
            _ => 0.5,
        }
    }

    /// The budget below uniform 8-bit's score that a front traces by default: 2 points of
    /// accuracy, or 0.1 nats of KL (uniform 5-bit on fmnist_mbv2 is 0.04, 4-bit 0.18).
    pub fn default_window(self) -> f64 {
        match self {
            AccuracyKind::Kl => 0.1,
            _ => 2.0,
        }
    }
}

/// An accuracy model: accuracy = full-precision accuracy + Σ_l delta_l(weight bits, input bits).
#[derive(Debug, Clone)]
pub enum AccuracyModel {
    Table(AccuracyTable),
    Proxy(AccuracyProxy),
}

/// A layer's accuracy deltas: (weight bits, activation bits) → delta (percentage points).
pub type LayerDeltas = BTreeMap<(u32, u32), f64>;

/// Additive per-layer accuracy deltas (percentage points) per (weight bits, activation bits).
#[derive(Debug, Clone)]
pub struct AccuracyTable {
    pub full_precision_accuracy: f64,
    pub source: String,
    /// The file the deltas came from (errors name it).
    pub file: PathBuf,
    /// The field of `file` holding the deltas (`deltas`, or a CSV's rows).
    pub field: String,
    /// layer name → (weight bits, activation bits) → delta.
    pub deltas: BTreeMap<String, LayerDeltas>,
    /// layer name → (weight bits, activation bits) → KL of the logits (nats), when measured.
    pub kls: BTreeMap<String, LayerDeltas>,
    /// What the selection adds up: the top-1 deltas or the KLs.
    pub select_by: SelectBy,
    /// Cells with a delta below −this (points) are left out of the selection.
    pub max_cell_loss: Option<f64>,
}

impl AccuracyTable {
    fn new(fp: f64, source: String, file: &Path, field: &str, cells: Cells) -> AccuracyTable {
        AccuracyTable {
            full_precision_accuracy: fp,
            source,
            file: file.to_path_buf(),
            field: field.into(),
            deltas: cells.0,
            kls: cells.1,
            select_by: SelectBy::Top1,
            max_cell_loss: None,
        }
    }

    /// Reads a CSV table with header `layer,weight_bits,activation_bits,delta` (`#` starts a
    /// comment line); the full-precision accuracy and the source are given by the caller.
    pub fn from_csv(
        path: &Path,
        full_precision_accuracy: f64,
        source: &str,
    ) -> Result<AccuracyTable, InputError> {
        let mut rdr = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        let headers = rdr
            .headers()
            .map_err(|e| InputError::new(path, "(header)", e.to_string()))?
            .clone();
        let rows = rdr.deserialize::<DeltaRow>().map(|r| {
            r.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let field = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => {
                        match err.field().and_then(|i| headers.get(i as usize)) {
                            Some(h) => format!("line {line}: {h}"),
                            None => format!("line {line}"),
                        }
                    }
                    _ => format!("line {line}"),
                };
                let msg = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => err.kind().to_string(),
                    _ => e.to_string(),
                };
                InputError::new(path, field, msg)
            })
        });
        let cells = collect_deltas(path, "rows", rows)?;
        let source = source.to_string();
        Ok(AccuracyTable::new(
            full_precision_accuracy,
            source,
            path,
            "rows",
            cells,
        ))
    }

    /// Sets what the selection adds up (`kl` needs a KL in every row) and the cells it leaves
    /// out; `path` is the YAML file that says so.
    fn select(
        &mut self,
        path: &Path,
        by: SelectBy,
        max_cell_loss: Option<f64>,
    ) -> Result<(), InputError> {
        if let Some(m) = max_cell_loss {
            non_negative(path, "max_cell_loss".into(), m)?;
        }
        if by == SelectBy::Kl {
            let has_kl = |(layer, cells): (&String, &LayerDeltas)| {
                let kls = self.kls.get(layer);
                cells.keys().all(|c| kls.is_some_and(|k| k.contains_key(c)))
            };
            if !self.deltas.iter().all(has_kl) {
                let why = "`select_by: kl` needs a `kl` in every row (measured by `qmap accuracy measure`)";
                return Err(InputError::new(path, "select_by", why));
            }
        }
        self.select_by = by;
        self.max_cell_loss = max_cell_loss;
        Ok(())
    }
}

/// What a table's selection adds up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectBy {
    /// The top-1 deltas (percentage points).
    #[default]
    Top1,
    /// The KL divergences of the logits (nats): the score is −Σ KL.
    Kl,
}

/// HAWQ-style proxy: delta_l = −(weight · 2^(−2·w) + activation · 2^(−2·a)).
#[derive(Debug, Clone)]
pub struct AccuracyProxy {
    pub full_precision_accuracy: f64,
    pub source: String,
    pub file: PathBuf,
    /// layer name → sensitivities (from the file's `layers`, or its `rule` applied to a
    /// network by [`AccuracyModel::for_network`]).
    pub layers: BTreeMap<String, Sensitivity>,
    /// The file's rule, when it gives one instead of per-layer sensitivities.
    pub rule: Option<ProxyRule>,
}

/// A proxy's sensitivities by a fixed rule, for any network (e.g. one imported from ONNX):
/// layer l gets a multiplier m_l (`first` for the first layer, `last` for the last, `grouped`
/// for depthwise and grouped convolutions, `other` for the rest) and weight sensitivity =
/// activation sensitivity = m_l · u, with u = `total` / (2 · Σ m_l): every weight and activation
/// at b bits then loses `total` · 2^(−2b) points in all. The shipped MobileNet proxies list the
/// result of `{first: 4, last: 4, grouped: 2, other: 1, total: 960}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRule {
    pub first: f64,
    pub last: f64,
    pub grouped: f64,
    pub other: f64,
    pub total: f64,
}

impl ProxyRule {
    /// Per layer (name, whether it is depthwise or grouped), in execution order, its
    /// sensitivities.
    pub fn sensitivities(&self, layers: &[(String, bool)]) -> BTreeMap<String, Sensitivity> {
        let n = layers.len();
        let m = |i: usize, grouped: bool| match () {
            _ if i == 0 => self.first,
            _ if i + 1 == n => self.last,
            _ if grouped => self.grouped,
            _ => self.other,
        };
        let sum: f64 = (layers.iter().enumerate()).map(|(i, l)| m(i, l.1)).sum();
        let u = if sum > 0.0 {
            self.total / (2.0 * sum)
        } else {
            0.0
        };
        let of = |(i, (name, grouped)): (usize, &(String, bool))| {
            let s = m(i, *grouped) * u;
            let sens = Sensitivity {
                weight: s,
                activation: s,
            };
            (name.clone(), sens)
        };
        layers.iter().enumerate().map(of).collect()
    }
}

/// A layer's proxy sensitivities (percentage points per unit noise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sensitivity {
    pub weight: f64,
    pub activation: f64,
}

/// The proxy's noise of a b-bit uniform quantizer, relative to its range (up to a constant): 2^(−2b).
pub fn quantization_noise(bits: u32) -> f64 {
    (-2.0 * bits as f64).exp2()
}

/// An accuracy file (YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccuracyFile {
    kind: AccuracyKind,
    /// Informational: the network the file is for.
    #[serde(default)]
    #[allow(dead_code)]
    network: Option<String>,
    full_precision_accuracy: f64,
    /// Where the numbers come from.
    source: String,
    /// Proxy: per-layer sensitivities.
    #[serde(default)]
    layers: Option<Vec<ProxyLayerSpec>>,
    /// Proxy: a rule giving every layer of the network its sensitivities (instead of `layers`).
    #[serde(default)]
    rule: Option<ProxyRule>,
    /// Table: the deltas inline.
    #[serde(default)]
    deltas: Option<Vec<DeltaRow>>,
    /// Table: the deltas in a CSV file (relative to this file).
    #[serde(default)]
    deltas_csv: Option<PathBuf>,
    /// Table: the raw measurements the deltas were composed from (`qmap accuracy measure`:
    /// rows {layer, weight_bits, activation_bits, top1, kl}); read as a list and ignored, so
    /// that the file documents itself.
    #[serde(default)]
    #[allow(dead_code)]
    measured: Option<Vec<serde_yaml_ng::Value>>,
    /// Table: what the selection adds up (`top1`, the default, or `kl`).
    #[serde(default)]
    select_by: SelectBy,
    /// Table: cells whose delta is below −this many points are not selectable.
    #[serde(default)]
    max_cell_loss: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyLayerSpec {
    name: String,
    weight_sensitivity: f64,
    activation_sensitivity: f64,
}

/// One row of an accuracy table (YAML `deltas` entry or CSV row with header
/// `layer,weight_bits,activation_bits,delta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaRow {
    pub layer: String,
    pub weight_bits: u32,
    pub activation_bits: u32,
    /// Accuracy change in percentage points (negative = loss).
    pub delta: f64,
    /// KL divergence of the logits against float32 (nats), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
}

impl AccuracyModel {
    /// Loads a YAML accuracy file (`kind: table` or `kind: proxy`); a table's deltas are inline
    /// (`deltas`) or in a CSV file (`deltas_csv`).
    pub fn load(path: &Path) -> Result<AccuracyModel, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        AccuracyModel::parse(path, &text)
    }

    /// Parses YAML text that came from `path` (relative CSV paths resolve against its folder).
    pub fn parse(path: &Path, text: &str) -> Result<AccuracyModel, InputError> {
        let f: AccuracyFile = spec::parse_yaml(path, text)?;
        let fp = f.full_precision_accuracy;
        if !fp.is_finite() || fp <= 0.0 || fp > 100.0 {
            return Err(InputError::new(
                path,
                "full_precision_accuracy",
                format!("must be a percentage in (0, 100], got {fp}"),
            ));
        }
        if f.source.trim().is_empty() {
            return Err(InputError::new(
                path,
                "source",
                "say where the numbers come from",
            ));
        }
        match f.kind {
            AccuracyKind::Proxy => AccuracyModel::parse_proxy(path, f),
            AccuracyKind::Table => AccuracyModel::parse_table(path, f),
            AccuracyKind::Kl => {
                let why = "`kl` is not a file kind: write `kind: table` with `select_by: kl`";
                Err(InputError::new(path, "kind", why))
            }
        }
    }

    /// A proxy file's per-layer sensitivities (`layers`; deltas are refused).
    fn parse_proxy(path: &Path, f: AccuracyFile) -> Result<AccuracyModel, InputError> {
        let fp = f.full_precision_accuracy;
        for (k, present) in [
            ("deltas", f.deltas.is_some()),
            ("deltas_csv", f.deltas_csv.is_some()),
        ] {
            if present {
                return Err(InputError::new(
                    path,
                    k,
                    "a proxy takes `layers`, not deltas",
                ));
            }
        }
        if f.select_by != SelectBy::Top1 || f.max_cell_loss.is_some() {
            let why = "`select_by` and `max_cell_loss` are for measured tables, not a proxy";
            return Err(InputError::new(path, "select_by", why));
        }
        if let Some(rule) = f.rule {
            return AccuracyModel::proxy_rule(path, f.layers.is_some(), rule, fp, f.source);
        }
        let specs = f.layers.ok_or_else(|| {
            InputError::new(
                path,
                "layers",
                "a proxy needs per-layer sensitivities (`layers`) or a `rule`",
            )
        })?;
        let mut layers = BTreeMap::new();
        for (i, l) in specs.iter().enumerate() {
            for (k, v) in [
                ("weight_sensitivity", l.weight_sensitivity),
                ("activation_sensitivity", l.activation_sensitivity),
            ] {
                non_negative(path, format!("layers[{i}].{k}"), v)?;
            }
            let s = Sensitivity {
                weight: l.weight_sensitivity,
                activation: l.activation_sensitivity,
            };
            if layers.insert(l.name.clone(), s).is_some() {
                return Err(InputError::new(
                    path,
                    format!("layers[{i}].name"),
                    format!("duplicate layer `{}`", l.name),
                ));
            }
        }
        Ok(AccuracyModel::Proxy(AccuracyProxy {
            full_precision_accuracy: fp,
            source: f.source,
            file: path.to_path_buf(),
            layers,
            rule: None,
        }))
    }

    /// A proxy file's rule (checked: finite multipliers >= 0, a total > 0; not with `layers`).
    fn proxy_rule(
        path: &Path,
        has_layers: bool,
        rule: ProxyRule,
        fp: f64,
        source: String,
    ) -> Result<AccuracyModel, InputError> {
        if has_layers {
            return Err(InputError::new(
                path,
                "rule",
                "give either `layers` or a `rule`, not both",
            ));
        }
        for (k, v) in [
            ("first", rule.first),
            ("last", rule.last),
            ("grouped", rule.grouped),
            ("other", rule.other),
        ] {
            non_negative(path, format!("rule.{k}"), v)?;
        }
        if !(rule.total.is_finite() && rule.total > 0.0) {
            let why = format!("must be a finite number > 0, got {}", rule.total);
            return Err(InputError::new(path, "rule.total", why));
        }
        Ok(AccuracyModel::Proxy(AccuracyProxy {
            full_precision_accuracy: fp,
            source,
            file: path.to_path_buf(),
            layers: BTreeMap::new(),
            rule: Some(rule),
        }))
    }

    /// The model for a network whose layers are (name, whether depthwise or grouped), in
    /// execution order: a proxy's `rule` gives every layer its sensitivities; any other model
    /// is returned as it is.
    pub fn for_network(self, layers: &[(String, bool)]) -> AccuracyModel {
        match self {
            AccuracyModel::Proxy(mut p) => {
                if let Some(rule) = p.rule {
                    p.layers = rule.sensitivities(layers);
                }
                AccuracyModel::Proxy(p)
            }
            table => table,
        }
    }

    /// A table file's deltas, inline (`deltas`) or in a CSV file (`deltas_csv`), not both, with
    /// what its selection adds up (`select_by`) and the cells it leaves out (`max_cell_loss`).
    fn parse_table(path: &Path, f: AccuracyFile) -> Result<AccuracyModel, InputError> {
        let fp = f.full_precision_accuracy;
        if f.layers.is_some() {
            return Err(InputError::new(
                path,
                "layers",
                "a table takes `deltas` or `deltas_csv`, not sensitivities",
            ));
        }
        let mut table = match (f.deltas, f.deltas_csv) {
            (Some(rows), None) => {
                let cells = collect_deltas(path, "deltas", rows.into_iter().map(Ok))?;
                AccuracyTable::new(fp, f.source, path, "deltas", cells)
            }
            (None, Some(csv)) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                AccuracyTable::from_csv(&dir.join(csv), fp, &f.source)?
            }
            (Some(_), Some(_)) => {
                let why = "give `deltas` or `deltas_csv`, not both";
                return Err(InputError::new(path, "deltas_csv", why));
            }
            (None, None) => {
                let why = "a table needs `deltas` (inline) or `deltas_csv` (a file)";
                return Err(InputError::new(path, "deltas", why));
            }
        };
        table.select(path, f.select_by, f.max_cell_loss)?;
        Ok(AccuracyModel::Table(table))
    }

    /// Reads a CSV table ([`AccuracyTable::from_csv`]).
    pub fn table_from_csv(
        path: &Path,
        full_precision_accuracy: f64,
        source: &str,
    ) -> Result<AccuracyModel, InputError> {
        AccuracyTable::from_csv(path, full_precision_accuracy, source).map(AccuracyModel::Table)
    }

    pub fn kind(&self) -> AccuracyKind {
        match self {
            AccuracyModel::Table(t) if t.select_by == SelectBy::Kl => AccuracyKind::Kl,
            AccuracyModel::Table(_) => AccuracyKind::Table,
            AccuracyModel::Proxy(_) => AccuracyKind::Proxy,
        }
    }

    /// `accuracy (table)` or `accuracy (proxy)`.
    pub fn label(&self) -> &'static str {
        self.kind().label()
    }

    pub fn full_precision_accuracy(&self) -> f64 {
        match self {
            AccuracyModel::Table(t) => t.full_precision_accuracy,
            AccuracyModel::Proxy(p) => p.full_precision_accuracy,
        }
    }

    pub fn source(&self) -> &str {
        match self {
            AccuracyModel::Table(t) => &t.source,
            AccuracyModel::Proxy(p) => &p.source,
        }
    }

    pub fn file(&self) -> &Path {
        match self {
            AccuracyModel::Table(t) => &t.file,
            AccuracyModel::Proxy(p) => &p.file,
        }
    }

    /// Layer names the model covers.
    pub fn layer_names(&self) -> Vec<&str> {
        match self {
            AccuracyModel::Table(t) => t.deltas.keys().map(String::as_str).collect(),
            AccuracyModel::Proxy(p) => p.layers.keys().map(String::as_str).collect(),
        }
    }

    /// The accuracy delta of layer `layer` at `weight_bits` and input `activation_bits`; None
    /// when the model has no value for it.
    pub fn delta(&self, layer: &str, weight_bits: u32, activation_bits: u32) -> Option<f64> {
        match self {
            AccuracyModel::Table(t) => t
                .deltas
                .get(layer)
                .and_then(|m| m.get(&(weight_bits, activation_bits)))
                .copied(),
            AccuracyModel::Proxy(p) => p.layers.get(layer).map(|s| {
                -(s.weight * quantization_noise(weight_bits)
                    + s.activation * quantization_noise(activation_bits))
            }),
        }
    }

    /// What the selection adds to [`AccuracyModel::origin`] for layer `layer` at `weight_bits`
    /// and input `activation_bits`: the delta, or −KL when the table selects by KL; None when
    /// the model has no value for it.
    pub fn score(&self, layer: &str, weight_bits: u32, activation_bits: u32) -> Option<f64> {
        match self {
            AccuracyModel::Table(t) if t.select_by == SelectBy::Kl => {
                self.kl(layer, weight_bits, activation_bits).map(|kl| -kl)
            }
            _ => self.delta(layer, weight_bits, activation_bits),
        }
    }

    /// The KL of the logits (nats) of layer `layer` alone at `weight_bits` and input
    /// `activation_bits`, when the table measured it.
    pub fn kl(&self, layer: &str, weight_bits: u32, activation_bits: u32) -> Option<f64> {
        let AccuracyModel::Table(t) = self else {
            return None;
        };
        let cells = t.kls.get(layer)?;
        cells.get(&(weight_bits, activation_bits)).copied()
    }

    /// The score of the float network: its accuracy, or 0 (no KL) when selecting by KL.
    pub fn origin(&self) -> f64 {
        match self.kind() {
            AccuracyKind::Kl => 0.0,
            _ => self.full_precision_accuracy(),
        }
    }

    /// Whether a table leaves the cell out: its delta is below −`max_cell_loss`.
    pub fn excluded(&self, layer: &str, weight_bits: u32, activation_bits: u32) -> bool {
        let AccuracyModel::Table(t) = self else {
            return false;
        };
        let delta = self.delta(layer, weight_bits, activation_bits);
        matches!((t.max_cell_loss, delta), (Some(m), Some(d)) if d < -m)
    }

    /// The field of the model's file that per-layer values live in (for error messages).
    pub(crate) fn layers_field(&self) -> &str {
        match self {
            AccuracyModel::Table(t) => &t.field,
            AccuracyModel::Proxy(_) => "layers",
        }
    }
}

/// A sensitivity or multiplier: a finite number >= 0, else an error naming `field`.
fn non_negative(path: &Path, field: String, v: f64) -> Result<(), InputError> {
    if v.is_finite() && v >= 0.0 {
        return Ok(());
    }
    let why = format!("must be a finite number >= 0, got {v}");
    Err(InputError::new(path, field, why))
}

/// A table's cells: per layer, the deltas and the KLs measured.
type Cells = (BTreeMap<String, LayerDeltas>, BTreeMap<String, LayerDeltas>);

fn collect_deltas(
    path: &Path,
    field: &str,
    rows: impl Iterator<Item = Result<DeltaRow, InputError>>,
) -> Result<Cells, InputError> {
    let mut deltas: BTreeMap<String, LayerDeltas> = BTreeMap::new();
    let mut kls: BTreeMap<String, LayerDeltas> = BTreeMap::new();
    for (i, r) in rows.enumerate() {
        let r = r?;
        let at = |k: &str| format!("{field}[{i}].{k}");
        if !r.delta.is_finite() {
            return Err(InputError::new(
                path,
                at("delta"),
                "must be a finite number",
            ));
        }
        if let Some(kl) = r.kl {
            non_negative(path, at("kl"), kl)?;
            let cell = (r.weight_bits, r.activation_bits);
            kls.entry(r.layer.clone()).or_default().insert(cell, kl);
        }
        for (k, b) in [
            ("weight_bits", r.weight_bits),
            ("activation_bits", r.activation_bits),
        ] {
            if b == 0 {
                return Err(InputError::new(path, at(k), "must be > 0"));
            }
        }
        let m = deltas.entry(r.layer.clone()).or_default();
        if m.insert((r.weight_bits, r.activation_bits), r.delta)
            .is_some()
        {
            return Err(InputError::new(
                path,
                format!("{field}[{i}]"),
                format!(
                    "duplicate row for layer `{}`, weight_bits {}, activation_bits {}",
                    r.layer, r.weight_bits, r.activation_bits
                ),
            ));
        }
    }
    if deltas.is_empty() {
        return Err(InputError::new(path, field, "no rows"));
    }
    Ok((deltas, kls))
}
