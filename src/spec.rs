//! On-disk formats of qmap (instances, architectures, workloads, mappings): serde types and validation.
//!
//! Every loader names the file and the field in its errors (`file: field: message`) and rejects
//! unknown keys. The model types built from these live in `model`.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An error in an input file: the file, the field path inside it, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct InputError {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl InputError {
    pub fn new(
        file: impl AsRef<Path>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        InputError {
            file: file.as_ref().display().to_string(),
            field: cut(&field.into(), 200),
            message: cut_values(&message.into()),
        }
    }
}

/// `text` cut to `max` characters (with how many were left out).
fn cut(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… ({} more characters)", n - max)
}

/// A message whose quoted values (between backticks) are cut to 80 characters each, and which
/// is cut to 2,000 characters in all: an input's 10,000-character value is not echoed whole.
fn cut_values(message: &str) -> String {
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&cut(part, 80));
        } else {
            out.push_str(part);
        }
    }
    cut(&out, 2000)
}

/// The deepest nesting a YAML document may have: deeper documents are refused before parsing
/// (the parser takes time quadratic in the depth: 80,000 nested brackets took 31 s).
pub const MAX_YAML_DEPTH: usize = 128;

/// Refuses a YAML text nested deeper than [`MAX_YAML_DEPTH`] (flow brackets and braces, and
/// block indentation), in one pass over it.
fn check_depth(text: &str) -> Result<(), String> {
    let (mut depth, mut quote) = (0usize, None::<char>);
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if indent / 2 > MAX_YAML_DEPTH {
            return Err(format!("indented deeper than {MAX_YAML_DEPTH} levels"));
        }
        let mut comment = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '#') => comment = true,
                _ if comment => {}
                (None, '"') | (None, '\'') => quote = Some(c),
                (None, '[') | (None, '{') => {
                    depth += 1;
                    if depth > MAX_YAML_DEPTH {
                        return Err(format!("nested deeper than {MAX_YAML_DEPTH} levels"));
                    }
                }
                (None, ']') | (None, '}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        // Single quotes inside a plain scalar (an apostrophe) end at the line.
        if quote == Some('\'') {
            quote = None;
        }
    }
    Ok(())
}

/// Parses YAML text from `path` into a generic value, with the depth check (errors name the
/// file, field `(document)`).
pub fn yaml_value(path: &Path, text: &str) -> Result<serde_yaml_ng::Value, InputError> {
    check_depth(text).map_err(|m| InputError::new(path, "(document)", m))?;
    serde_yaml_ng::from_str(text)
        .map_err(|e| InputError::new(path, "(document)", format!("invalid YAML: {e}")))
}

/// Reads and parses a YAML file into `T`, mapping serde's errors to an [`InputError`] that names
/// the file and, where serde_yaml_ng reports it, the field path and line.
pub fn load_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
    parse_yaml(path, &text)
}

/// Parses YAML text that came from `path` (used for error messages only).
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, InputError> {
    check_depth(text).map_err(|m| InputError::new(path, "(document)", m))?;
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error_free(de).map_err(|(field, msg)| InputError::new(path, field, msg))
}

fn serde_path_to_error_free<'de, T: serde::de::DeserializeOwned>(
    de: serde_yaml_ng::Deserializer<'de>,
) -> Result<T, (String, String)> {
    T::deserialize(de).map_err(|e| {
        let msg = e.to_string();
        // serde_yaml_ng messages look like "field.path: message at line L column C"; split the
        // path off when present so that the message reads `file: field: message`.
        match msg.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') && !path.is_empty() => {
                (path.to_string(), rest.to_string())
            }
            _ => ("(top level)".to_string(), msg),
        }
    })
}

/// A value given inline or as a path to another YAML file, relative to the file that names it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Inline<T> {
    Path(PathBuf),
    Value(T),
}

/// Resolves an [`Inline`]: loads the named file (relative to `base_dir`) or returns the inline
/// value, together with the file its fields are reported against.
pub fn resolve<T: serde::de::DeserializeOwned + Clone>(
    item: &Inline<T>,
    base_dir: &Path,
    owner_file: &Path,
    field: &str,
) -> Result<(T, PathBuf), InputError> {
    match item {
        Inline::Path(p) => {
            let path = referenced(owner_file, field, base_dir, p)?;
            Ok((load_yaml(&path)?, path))
        }
        Inline::Value(v) => Ok((v.clone(), owner_file.to_path_buf())),
    }
}

/// The file `rel` that `owner_file`'s `field` names (relative to `base_dir`, the owner's
/// directory), when it can be read; otherwise an error against the owner and the field:
/// `x.yaml: architecture: cannot read ../arch/y.yaml (relative to x.yaml): No such file`.
pub fn referenced(
    owner_file: &Path,
    field: &str,
    base_dir: &Path,
    rel: &Path,
) -> Result<PathBuf, InputError> {
    let path = base_dir.join(rel);
    let problem = match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Some("it is a directory".to_string()),
        Ok(_) => std::fs::File::open(&path).err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    match problem {
        None => Ok(path),
        Some(why) => Err(InputError::new(
            owner_file,
            field,
            format!(
                "cannot read `{}` (relative to {}): {why}",
                rel.display(),
                owner_file
                    .file_name()
                    .map_or("its file".into(), |n| n.to_string_lossy().into_owned())
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Architecture
// ---------------------------------------------------------------------------------------------

/// An accelerator: storage levels from innermost (next to the MACs) to outermost (DRAM).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArchSpec {
    pub name: String,
    /// Where the numbers come from (free text, shown in reports).
    #[serde(default)]
    pub source: Option<String>,
    /// Storage levels, innermost first.
    pub levels: Vec<LevelSpec>,
    pub mac: MacSpec,
}

/// One storage level (Timeloop "storage" / "buffer"). A `dummy` level holds nothing: it only
/// provides a spatial fanout (Timeloop's `dummy_storage`, 1-bit words).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSpec {
    pub name: String,
    /// Number of instances of this level in the whole design.
    #[serde(default = "one")]
    pub instances: u64,
    /// Instances along X (meshY = instances / mesh_x). Defaults to `instances`.
    #[serde(default)]
    pub mesh_x: Option<u64>,
    /// Rows (vectors) per instance; omitted = unbounded (DRAM).
    #[serde(default)]
    pub depth: Option<u64>,
    /// Bits per row (vector).
    pub width: u64,
    /// Bits per word (Timeloop "datawidth" / "word-bits").
    pub word_bits: u64,
    /// Instances sharing one physical vector (Timeloop `cluster_size`).
    #[serde(default = "one")]
    pub cluster_size: u64,
    /// Words per vector access; default width / (word_bits * cluster_size).
    #[serde(default)]
    pub block_size: Option<u64>,
    /// Holds nothing (spatial-fanout placeholder).
    #[serde(default)]
    pub dummy: bool,
    /// Tensors this level must keep.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Tensors this level must bypass. Tensors in neither list are free (chosen by the mapping).
    #[serde(default)]
    pub bypass: Vec<String>,
    /// Energy per vector access, pJ.
    #[serde(default)]
    pub energy: EnergySpec,
    /// Words per cycle per instance; omitted = unlimited.
    #[serde(default)]
    pub bandwidth: BandwidthSpec,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnergySpec {
    #[serde(default)]
    pub read: f64,
    #[serde(default)]
    pub write: f64,
    /// Defaults to `write`.
    #[serde(default)]
    pub update: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthSpec {
    #[serde(default)]
    pub read: Option<f64>,
    #[serde(default)]
    pub write: Option<f64>,
    #[serde(default)]
    pub shared: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MacSpec {
    #[serde(default = "mac_name")]
    pub name: String,
    pub instances: u64,
    #[serde(default)]
    pub mesh_x: Option<u64>,
    /// Energy per MAC, pJ.
    pub energy: f64,
    /// Optional energy per MAC by operand bit-widths; the nearest entry with bits >= the layer's
    /// is used, `energy` when none matches.
    #[serde(default)]
    pub energy_table: Vec<MacEnergyEntry>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MacEnergyEntry {
    pub weight_bits: u32,
    pub activation_bits: u32,
    pub energy: f64,
}

fn one() -> u64 {
    1
}
fn mac_name() -> String {
    "mac".to_string()
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

/// The kind of a layer, which fixes its dimensions and tensor projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Dense convolution: dims N M C P Q R S.
    Conv2d,
    /// Depthwise convolution: dims N G P Q R S (G replaces both M and C).
    Depthwise,
    /// Fully connected: conv with P = Q = R = S = 1.
    Fc,
    /// A product of two activations (attention's QK^T and AV): dims N M C P, Outputs[N, M, P]
    /// = Σ_C Inputs[N, C, P] · B[N, C, M], N the batch × heads, P the rows (sequence), C the
    /// inner dim, M the columns. The second operand B (from `input_b`) takes the Weights
    /// tensor's place in the problem (its bits are the `weights` bits) but is an activation:
    /// the layer has no weights (weight memory 0).
    Matmul,
}

/// One layer. Output sizes P (width) and Q (height) are given; input extents follow from
/// stride, dilation and padding.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    pub name: String,
    pub kind: LayerKind,
    #[serde(default = "one", rename = "N")]
    pub n: u64,
    /// Input channels (conv2d, fc).
    #[serde(default, rename = "C")]
    pub c: Option<u64>,
    /// Output channels (conv2d, fc).
    #[serde(default, rename = "M")]
    pub m: Option<u64>,
    /// Channels (depthwise).
    #[serde(default, rename = "G")]
    pub g: Option<u64>,
    /// Groups of a grouped conv2d (ONNX's and PyTorch's `groups`): C and M are the totals,
    /// each group maps C/groups input channels to M/groups outputs. Default 1.
    #[serde(default)]
    pub groups: Option<u64>,
    #[serde(default = "one", rename = "P")]
    pub p: u64,
    #[serde(default = "one", rename = "Q")]
    pub q: u64,
    #[serde(default = "one", rename = "R")]
    pub r: u64,
    #[serde(default = "one", rename = "S")]
    pub s: u64,
    /// Stride, one value for both axes or `[w, h]`.
    #[serde(default)]
    pub stride: Option<Pair>,
    #[serde(default)]
    pub dilation: Option<Pair>,
    #[serde(default)]
    pub pad: Option<Pair>,
    /// Producer of this layer's input activations (a layer name); default: the previous layer,
    /// or the network input for the first layer.
    #[serde(default)]
    pub input: Option<String>,
    /// matmul: the layer producing the second operand B (a layer name, or `input`); default:
    /// none recorded (a single layer).
    #[serde(default)]
    pub input_b: Option<String>,
    /// Set on the classifier layer whose M is the number of classes.
    #[serde(default)]
    pub head: bool,
    /// A note (e.g. "residual add after this layer").
    #[serde(default)]
    pub note: Option<String>,
    /// A pooling (max or average: no MACs) between the producer's output and this layer's
    /// input, e.g. ResNet's stem max-pool or VGG's 2x2 pools; checked in the chain only.
    #[serde(default)]
    pub pool: Option<PoolSpec>,
}

impl LayerSpec {
    /// The layer's dims by their YAML keys (N, C, M, G, P, Q, R, S; None where not given).
    pub fn dims(&self) -> [(&'static str, Option<u64>); 8] {
        [
            ("N", Some(self.n)),
            ("C", self.c),
            ("M", self.m),
            ("G", self.g),
            ("P", Some(self.p)),
            ("Q", Some(self.q)),
            ("R", Some(self.r)),
            ("S", Some(self.s)),
        ]
    }
}

/// A pooling window: kernel, stride and padding (one value for both axes or `[w, h]`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub kernel: Pair,
    pub stride: Pair,
    #[serde(default)]
    pub pad: Option<Pair>,
}

/// One value for both axes or `[w, h]`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Pair {
    Both(u64),
    Each([u64; 2]),
}

impl Pair {
    pub fn w(&self) -> u64 {
        match self {
            Pair::Both(v) => *v,
            Pair::Each([w, _]) => *w,
        }
    }
    pub fn h(&self) -> u64 {
        match self {
            Pair::Both(v) => *v,
            Pair::Each([_, h]) => *h,
        }
    }
}

/// A network: layers in execution order.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    pub name: String,
    #[serde(default)]
    pub source: Option<String>,
    /// Input image: channels, height, width.
    #[serde(default)]
    pub input: Option<InputShape>,
    pub layers: Vec<LayerSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputShape {
    pub channels: u64,
    pub height: u64,
    pub width: u64,
}

// ---------------------------------------------------------------------------------------------
// Mappings
// ---------------------------------------------------------------------------------------------

/// A mapping: one entry per storage level that has loops or keeps something. A level not listed
/// (or listed without `keep`) has no loops and keeps every tensor the architecture lets it keep
/// (Timeloop's default).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    pub mapping: Vec<LevelMappingSpec>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LevelMappingSpec {
    /// The architecture level this entry maps.
    pub level: String,
    /// Temporal loops, innermost first, as `DIMfactor` tokens: `"M8 R3"` is `for R in 3: for M
    /// in 8`. Dims not listed have factor 1.
    #[serde(default)]
    pub temporal: String,
    /// Spatial loops along X of this level's fanout (to the level below), e.g. `"Q14"`.
    #[serde(default)]
    pub spatial_x: String,
    /// Spatial loops along Y, e.g. `"C3 S3"`.
    #[serde(default)]
    pub spatial_y: String,
    /// Tensors kept at this level; omitted = every tensor the architecture lets it keep.
    #[serde(default)]
    pub keep: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------

/// An instance: what to map onto what, at which bit-widths, under which model settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// qmap architecture file (relative to the instance) or an inline architecture.
    #[serde(default)]
    pub architecture: Option<Inline<ArchSpec>>,
    /// Timeloop-format design instead of `architecture`.
    #[serde(default)]
    pub timeloop: Option<TimeloopFiles>,
    /// The workload: one layer or a network.
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
    /// Bit-widths: fixed or sets to choose from.
    #[serde(default)]
    pub bits: Option<BitsSpec>,
    /// Packing of sub-word bit-widths: `seed` (k = floor(word/bits) operands per word, the seed's
    /// rule) or `ideal` (capacity and traffic in bits).
    #[serde(default)]
    pub packing: Option<PackingMode>,
    /// Bits of partial sums held at levels below the outermost Outputs level; default `output`
    /// (the seed's choice: partial sums packed at the output activation width).
    #[serde(default)]
    pub psum_bits: Option<PsumBits>,
    /// Reproduce the seed fork's extra inner-level Outputs fill per element.
    #[serde(default)]
    pub seed_compat: bool,
    /// A default mapping for `qmap eval` (path or inline).
    #[serde(default)]
    pub mapping: Option<Inline<MappingSpec>>,
    /// `energy` (default), `latency` or `edp`.
    #[serde(default)]
    pub objective: Option<Objective>,
    /// Mapspace constraints in Timeloop's format: inline, or a path to a constraint file.
    #[serde(default)]
    pub constraints: Option<serde_yaml_ng::Value>,
    /// Network co-design settings (`qmap front`).
    #[serde(default)]
    pub front: Option<FrontSpec>,
    /// A latency budget for `qmap map`: `{max_cycles, min_utilization}` ([`crate::budget`]).
    #[serde(default)]
    pub budget: Option<crate::budget::Budget>,
}

/// Settings of `qmap front`: the accuracy model and the fixed bit-widths at the network's ends.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FrontSpec {
    /// Accuracy model file (a measured table or a proxy; see `models/accuracy/`), relative to
    /// the instance.
    pub accuracy: PathBuf,
    /// Bits of the network's input activations (default 8).
    #[serde(default)]
    pub first_input_bits: Option<u32>,
    /// Bits of the network's output activations (default 8).
    #[serde(default)]
    pub last_output_bits: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeloopFiles {
    pub arch: PathBuf,
    #[serde(default)]
    pub ert: Option<PathBuf>,
    #[serde(default)]
    pub problem: Option<PathBuf>,
    #[serde(default)]
    pub constraints: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// A single layer (inline).
    #[serde(default)]
    pub layer: Option<LayerSpec>,
    /// A network file (relative path) or inline network.
    #[serde(default)]
    pub network: Option<Inline<NetworkSpec>>,
    /// With `network`: the layer to use for single-layer commands (by name or 1-based index).
    #[serde(default)]
    pub select: Option<LayerSelect>,
    /// Override the classifier head's number of classes (the seed used 100).
    #[serde(default)]
    pub classes: Option<u64>,
    /// The batch: every layer's N (then no layer may give its own N).
    #[serde(default)]
    pub batch: Option<u64>,
    /// `grouped` (default: true depthwise layers) or `dense`: model depthwise layers as dense C×M convolutions (the seed's
    /// modelling; inflates their weights).
    #[serde(default)]
    pub depthwise: Option<DepthwiseMode>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LayerSelect {
    Index(usize),
    Name(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DepthwiseMode {
    /// True depthwise layers (G replaces M and C); the default.
    Grouped,
    /// The seed's modelling: a dense conv with C = M = G.
    Dense,
}

/// Bit-widths per tensor role. Each is one value or a list of allowed values.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BitsSpec {
    #[serde(default)]
    pub inputs: Option<OneOrMany>,
    #[serde(default)]
    pub weights: Option<OneOrMany>,
    #[serde(default)]
    pub outputs: Option<OneOrMany>,
    /// Per-layer limit on weight storage (weights × weight bits / 8, in bytes); bit choices
    /// above it are not considered.
    #[serde(default)]
    pub weight_budget_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl OneOrMany {
    pub fn values(&self) -> Vec<u32> {
        match self {
            OneOrMany::One(v) => vec![*v],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackingMode {
    #[default]
    Seed,
    Ideal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PsumBits {
    Bits(u32),
    Named(PsumNamed),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PsumNamed {
    Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    #[default]
    Energy,
    Latency,
    Edp,
}
