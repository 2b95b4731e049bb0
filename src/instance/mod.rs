//! Instances: loads an instance file (qmap's own or Timeloop-format design files) into model
//! types — the architecture, the workload's layers as problems, bit-width choices and settings.

use crate::model::{self, Arch, Bits, Mapping, ModelOptions, Problem, PsumPolicy};
use crate::spec::{
    self, DepthwiseMode, InputError, InstanceSpec, LayerSelect, Objective, PackingMode,
};
use crate::timeloop;
use crate::workload::{build_layer, build_network, Layer};
use std::path::{Path, PathBuf};

mod select;
pub use select::{file_stem, instance_hash, select_layer, sub_instance};

/// Bit-widths of the (inputs, weights, outputs) tensor roles.
pub use crate::model::BitConfig;

/// Allowed bit-widths per tensor role; empty = native (each tensor at each level's word size).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BitChoices {
    pub inputs: Vec<u32>,
    pub weights: Vec<u32>,
    pub outputs: Vec<u32>,
    /// Per-layer weight-storage budget in bytes (weights × weight bits / 8).
    pub weight_budget_bytes: Option<u64>,
}

impl BitChoices {
    /// The single fixed bit configuration (inputs, weights, outputs), when there is one.
    pub fn fixed(&self) -> Option<BitConfig> {
        match (&self.inputs[..], &self.weights[..], &self.outputs[..]) {
            ([i], [w], [o]) => Some(BitConfig::new(*i, *w, *o)),
            _ => None,
        }
    }
    pub fn is_native(&self) -> bool {
        self.inputs.is_empty() && self.weights.is_empty() && self.outputs.is_empty()
    }

    /// Every allowed (inputs, weights, outputs) triple whose weights fit the weight budget for a
    /// layer with `weights` weights.
    pub fn configs(&self, weights: u64) -> Vec<BitConfig> {
        let mut out = vec![];
        for &i in &self.inputs {
            for &w in &self.weights {
                for &o in &self.outputs {
                    let bytes = (weights * w as u64).div_ceil(8);
                    if self.weight_budget_bytes.is_none_or(|b| bytes <= b) {
                        out.push(BitConfig::new(i, w, o));
                    }
                }
            }
        }
        out
    }
}

/// A loaded, validated instance.
#[derive(Debug, Clone)]
pub struct Instance {
    pub file: PathBuf,
    pub arch: Arch,
    /// The file the architecture's keep/bypass lists come from, and the path of the levels in
    /// it (`architecture.levels` inline, `levels` in an architecture file).
    pub arch_source: (PathBuf, String),
    /// The file the architecture is read from (the instance itself when inline).
    pub arch_file: PathBuf,
    pub workload_name: String,
    pub layers: Vec<Layer>,
    /// The layer single-layer commands work on.
    pub selected: usize,
    pub bits: BitChoices,
    pub packing: PackingMode,
    pub psum: PsumPolicy,
    pub seed_compat: bool,
    pub objective: Objective,
    /// The instance's default mapping (for `eval`), against the selected layer.
    pub mapping: Option<(Mapping, PathBuf)>,
    /// Constraint file for the mapper (Timeloop format), if named.
    pub constraints_file: Option<PathBuf>,
    pub constraints: Option<serde_yaml_ng::Value>,
    /// `qmap front` settings, the accuracy file resolved against the instance.
    pub front: Option<FrontSettings>,
    /// The latency budget `qmap map` searches under (`budget:`; none by default).
    pub budget: crate::budget::Budget,
}

/// `qmap front` settings of an instance.
#[derive(Debug, Clone)]
pub struct FrontSettings {
    pub accuracy_file: PathBuf,
    pub first_input_bits: u32,
    pub last_output_bits: u32,
    /// The workload's network file (what `--verify-accuracy` runs; none when inline).
    pub network_file: Option<PathBuf>,
}

impl Instance {
    pub fn layer(&self) -> &Layer {
        &self.layers[self.selected]
    }

    /// Model options for `problem` at bit-widths (inputs, weights, outputs); None = native.
    pub fn options(&self, problem: &Problem, bits: Option<BitConfig>) -> ModelOptions {
        ModelOptions {
            bits: bits.map(|b| bits_for(problem, b)),
            packing: self.packing,
            psum: self.psum,
            seed_compat: self.seed_compat,
        }
    }

    /// The mapspace constraints the instance declares: its `timeloop.constraints` file and its
    /// `constraints` field (inline, or a Timeloop-format file relative to the instance).
    pub fn constraints(&self) -> Result<crate::mapspace::Constraints, InputError> {
        let mut cons = crate::mapspace::Constraints::new(&self.arch);
        if let Some(f) = &self.constraints_file {
            cons.add_file(f, &self.arch)?;
        }
        match &self.constraints {
            Some(serde_yaml_ng::Value::String(f)) => {
                let dir = self.file.parent().unwrap_or(Path::new("."));
                let f = spec::referenced(&self.file, "constraints", dir, Path::new(f))?;
                cons.add_file(&f, &self.arch)?;
            }
            Some(v) => cons.add_value(v, &self.file, "constraints", &self.arch)?,
            None => {}
        }
        Ok(cons)
    }

    /// Model options at the instance's fixed bit-widths (native when none are given).
    pub fn fixed_options(&self, problem: &Problem) -> ModelOptions {
        self.options(problem, self.bits.fixed())
    }
}

/// Per-tensor bits for a problem from a bit configuration (inputs, weights, outputs): tensors named
/// Inputs / Weights take those (a matmul's second operand, an activation, the input bits); the
/// read-write tensor takes the output bits.
pub fn bits_for(problem: &Problem, b: BitConfig) -> Bits {
    // A matmul's second operand takes the Weights tensor's place: an activation, at the input
    // bits.
    let activation = problem.weights_are_activation();
    Bits(
        problem
            .tensors
            .iter()
            .map(|t| {
                if t.read_write {
                    b.output_bits
                } else if t.name == "Weights" && !activation {
                    b.weight_bits
                } else {
                    b.input_bits
                }
            })
            .collect(),
    )
}

/// Loads an instance file.
pub fn load(path: &Path) -> Result<Instance, InputError> {
    let spec: InstanceSpec = spec::load_yaml(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |field: &str, msg: String| InputError::new(path, field, msg);

    let (arch, arch_source, arch_file) = load_architecture(&spec, dir, path)?;

    // Workload.
    let (workload_name, layers, selected) = load_workload(&spec, dir, path)?;

    let bits = load_bits(&spec, dir, path)?;
    let psum = match spec.psum_bits {
        None | Some(spec::PsumBits::Named(spec::PsumNamed::Output)) => PsumPolicy::OutputBits,
        Some(spec::PsumBits::Bits(0)) => return Err(err("psum_bits", "must be > 0".into())),
        Some(spec::PsumBits::Bits(b)) => PsumPolicy::Bits(b),
    };

    let mut inst = Instance {
        file: path.to_path_buf(),
        arch_source,
        arch_file,
        arch,
        workload_name,
        layers,
        selected,
        bits,
        packing: spec.packing.unwrap_or_default(),
        psum,
        seed_compat: spec.seed_compat,
        objective: spec.objective.unwrap_or_default(),
        mapping: None,
        constraints_file: spec
            .timeloop
            .as_ref()
            .and_then(|t| t.constraints.as_ref().map(|c| dir.join(c))),
        constraints: spec.constraints.clone(),
        front: None,
        budget: spec.budget.unwrap_or_default(),
    };
    if let Err((field, msg)) = inst.budget.check() {
        return Err(err(&format!("budget.{field}"), msg));
    }
    if let Some(f) = &spec.front {
        let bits = |field: &str, v: Option<u32>| match v {
            None => Ok(8),
            Some(b) if (1..=64).contains(&b) => Ok(b),
            Some(b) => Err(err(field, format!("{b} is not a bit-width in 1..=64"))),
        };
        inst.front = Some(FrontSettings {
            accuracy_file: spec::referenced(path, "front.accuracy", dir, &f.accuracy)?,
            first_input_bits: bits("front.first_input_bits", f.first_input_bits)?,
            last_output_bits: bits("front.last_output_bits", f.last_output_bits)?,
            network_file: (spec.workload.as_ref()).and_then(|w| match &w.network {
                Some(spec::Inline::Path(p)) => Some(dir.join(p)),
                _ => None,
            }),
        });
    }
    if let Some(m) = &spec.mapping {
        let (ms, file) = spec::resolve(m, dir, path, "mapping")?;
        let mapping = model::mapping_from_spec(&ms, &inst.arch, &inst.layer().problem, &file)?;
        inst.mapping = Some((mapping, file));
    }
    check_tensor_names(&inst)?;
    check_bits_fit(&inst)?;
    Ok(inst)
}

/// The architecture of an instance (its own or Timeloop's design files) and where its levels
/// were given (the file and field errors about them name).
fn load_architecture(
    spec: &InstanceSpec,
    dir: &Path,
    path: &Path,
) -> Result<(Arch, (PathBuf, String), PathBuf), InputError> {
    let err = |field: &str, msg: String| InputError::new(path, field, msg);
    let mut arch_source = (path.to_path_buf(), "architecture.levels".to_string());
    let arch_file;
    let arch = match (&spec.architecture, &spec.timeloop) {
        (Some(_), Some(_)) => {
            return Err(err(
                "architecture",
                "give either `architecture` or `timeloop`, not both".into(),
            ))
        }
        (None, None) => {
            return Err(err(
                "architecture",
                "missing (or give `timeloop` design files)".into(),
            ))
        }
        (Some(a), None) => {
            let (a, file) = spec::resolve(a, dir, path, "architecture")?;
            if file != path {
                arch_source = (file.clone(), "levels".into());
            }
            arch_file = file.clone();
            Arch::from_spec(&a, &file)?
        }
        (None, Some(tl)) => {
            let ert = tl
                .ert
                .as_ref()
                .map(|e| spec::referenced(path, "timeloop.ert", dir, e))
                .transpose()?;
            let file = spec::referenced(path, "timeloop.arch", dir, &tl.arch)?;
            let mut arch = timeloop::load_arch(&file, ert.as_deref())?;
            arch_source = (file.clone(), "architecture.subtree (storage levels)".into());
            arch_file = file.clone();
            if let Some(c) = &tl.constraints {
                let c = spec::referenced(path, "timeloop.constraints", dir, c)?;
                timeloop::apply_bypass_constraints(&mut arch, &c)?;
                arch_source = (c, "targets (bypass)".into());
            }
            arch
        }
    };
    Ok((arch, arch_source, arch_file))
}

/// The allowed bit-widths of an instance: its `bits`, else a Timeloop problem's
/// `instance.bitwidths`, else native.
fn load_bits(spec: &InstanceSpec, dir: &Path, path: &Path) -> Result<BitChoices, InputError> {
    let err = |field: &str, msg: String| InputError::new(path, field, msg);
    let mut bits = BitChoices::default();
    if let Some(b) = &spec.bits {
        for (field, v, out) in [
            ("bits.inputs", &b.inputs, &mut bits.inputs),
            ("bits.weights", &b.weights, &mut bits.weights),
            ("bits.outputs", &b.outputs, &mut bits.outputs),
        ] {
            let vals = v.as_ref().map(|v| v.values()).unwrap_or_default();
            if let Some(bad) = vals.iter().find(|&&x| x == 0 || x > 64) {
                return Err(err(field, format!("{bad} is not a bit-width in 1..=64")));
            }
            *out = vals;
        }
        bits.weight_budget_bytes = b.weight_budget_bytes;
        if b.weight_budget_bytes == Some(0) {
            return Err(err("bits.weight_budget_bytes", "must be > 0".into()));
        }
        let given = [&bits.inputs, &bits.weights, &bits.outputs]
            .iter()
            .filter(|v| !v.is_empty())
            .count();
        if given != 0 && given != 3 {
            return Err(err(
                "bits",
                "give inputs, weights and outputs bit-widths (or none for native)".into(),
            ));
        }
        if given == 0 && bits.weight_budget_bytes.is_some() {
            return Err(err(
                "bits.weight_budget_bytes",
                "a weight budget needs weight bit-widths".into(),
            ));
        }
    } else if let Some(tl) = &spec.timeloop {
        // Bit-widths from the Timeloop problem (`instance.bitwidths`), as the seed's fork reads them.
        if let Some(pf) = &tl.problem {
            let pf = spec::referenced(path, "timeloop.problem", dir, pf)?;
            let (_, bw) = timeloop::load_problem(&pf)?;
            if let Some(bw) = bw {
                let get = |k: &str| bw.get(k).copied();
                if let (Some(i), Some(w), Some(o)) = (get("Inputs"), get("Weights"), get("Outputs"))
                {
                    bits = BitChoices {
                        inputs: vec![i],
                        weights: vec![w],
                        outputs: vec![o],
                        weight_budget_bytes: None,
                    };
                }
            }
        }
    }
    Ok(bits)
}

/// Every allowed bit-width must fit the word of each level that may keep its tensor (the seed's
/// packing cannot split a value over words; 1-bit placeholder words are exempt).
fn check_bits_fit(inst: &Instance) -> Result<(), InputError> {
    let p = &inst.layer().problem;
    for (field, role, choices) in [
        ("bits.inputs", "Inputs", &inst.bits.inputs),
        ("bits.weights", "Weights", &inst.bits.weights),
        ("bits.outputs", "Outputs", &inst.bits.outputs),
    ] {
        let Some(&widest) = choices.iter().max() else {
            continue;
        };
        let Some(t) = p.tensor_index(role).or_else(|| {
            (role == "Outputs")
                .then(|| p.tensors.iter().position(|t| t.read_write))
                .flatten()
        }) else {
            continue;
        };
        let name = &p.tensors[t].name;
        for l in &inst.arch.levels {
            if l.word_bits > 1
                && (widest as u64) > l.word_bits
                && l.keep_rule(name) != model::KeepRule::Never
            {
                return Err(InputError::new(
                    &inst.file,
                    field,
                    format!(
                        "{widest} bits do not fit the {}-bit words of level {}, which may keep {name}",
                        l.word_bits, l.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Every tensor name the architecture's keep/bypass rules mention must exist in the problem.
fn check_tensor_names(inst: &Instance) -> Result<(), InputError> {
    let p = &inst.layer().problem;
    for (i, l) in inst.arch.levels.iter().enumerate() {
        for (field, names) in [("keep", &l.must_keep), ("bypass", &l.must_bypass)] {
            if let Some(bad) = names.iter().find(|n| p.tensor_index(n).is_none()) {
                let (file, levels) = &inst.arch_source;
                return Err(InputError::new(
                    file,
                    format!("{levels}[{i}] ({}).{field}", l.name),
                    format!(
                        "unknown tensor `{bad}` (the problem's tensors: {})",
                        p.tensors
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

type Workload = (String, Vec<Layer>, usize);

fn load_workload(spec: &InstanceSpec, dir: &Path, path: &Path) -> Result<Workload, InputError> {
    let err = |field: &str, msg: String| InputError::new(path, field, msg);
    if let Some(tl) = &spec.timeloop {
        if spec.workload.is_none() {
            let pf = tl
                .problem
                .as_ref()
                .ok_or_else(|| err("timeloop.problem", "missing (or give `workload`)".into()))?;
            let pf = spec::referenced(path, "timeloop.problem", dir, pf)?;
            let (problem, _) = timeloop::load_problem(&pf)?;
            let weights = problem.weight_count();
            let name = problem.name.clone();
            return Ok((
                name.clone(),
                vec![Layer {
                    name,
                    problem,
                    producer: None,
                    weights,
                }],
                0,
            ));
        }
    }
    let w = spec
        .workload
        .as_ref()
        .ok_or_else(|| err("workload", "missing".into()))?;
    let dense = w.depthwise == Some(DepthwiseMode::Dense);
    if w.batch == Some(0) {
        return Err(err("workload.batch", "must be > 0".into()));
    }
    match (&w.layer, &w.network) {
        (Some(_), Some(_)) => Err(err(
            "workload",
            "give either `layer` or `network`, not both".into(),
        )),
        (None, None) => Err(err("workload", "give a `layer` or a `network`".into())),
        (Some(l), None) => {
            let l = &with_batch(l, w.batch, path, "workload.layer")?;
            let layer = build_layer(l, dense, w.classes, path, "workload.layer")?;
            Ok((
                l.name.clone(),
                vec![Layer {
                    producer: None,
                    ..layer
                }],
                0,
            ))
        }
        (None, Some(n)) => {
            let (mut net, file) = resolve_network(n, dir, path)?;
            let batched = net.layers.iter().enumerate();
            let batched =
                batched.map(|(i, l)| with_batch(l, w.batch, &file, &format!("layers[{i}]")));
            net.layers = batched.collect::<Result<_, _>>()?;
            let layers = build_network(&net, dense, w.classes, &file)?;
            let selected = match &w.select {
                None => 0,
                Some(LayerSelect::Index(i)) if *i >= 1 && *i <= layers.len() => i - 1,
                Some(LayerSelect::Index(i)) => {
                    return Err(err(
                        "workload.select",
                        format!("layer {i} out of 1..={}", layers.len()),
                    ))
                }
                Some(LayerSelect::Name(name)) => layers
                    .iter()
                    .position(|l| &l.name == name)
                    .ok_or_else(|| err("workload.select", format!("no layer named `{name}`")))?,
            };
            Ok((net.name.clone(), layers, selected))
        }
    }
}

/// The workload's network: an inline one, a YAML file, or an ONNX file (imported; a dynamic
/// batch dim is 1, and `workload.batch` sets N as for any network).
fn resolve_network(
    n: &spec::Inline<spec::NetworkSpec>,
    dir: &Path,
    path: &Path,
) -> Result<(spec::NetworkSpec, std::path::PathBuf), InputError> {
    match n {
        spec::Inline::Path(p) if crate::onnx::is_onnx(p) => {
            let file = spec::referenced(path, "workload.network", dir, p)?;
            let opts = crate::onnx::InputOptions {
                shape: None,
                batch: Some(1),
            };
            Ok((crate::onnx::load(&file, &opts)?, file))
        }
        _ => spec::resolve(n, dir, path, "workload.network"),
    }
}

/// Layer `l` (at `field` of `file`) with `workload.batch` as its N; a layer that gives its own
/// N (other than 1) with a batch set is an error naming it.
fn with_batch(
    l: &spec::LayerSpec,
    batch: Option<u64>,
    file: &Path,
    field: &str,
) -> Result<spec::LayerSpec, InputError> {
    let mut l = l.clone();
    if let Some(b) = batch {
        if l.n != 1 {
            let why = format!(
                "N = {} here and workload.batch = {b}: give one of them",
                l.n
            );
            return Err(InputError::new(file, format!("{field}.N"), why));
        }
        l.n = b;
    }
    Ok(l)
}

/// Loads a mapping for `problem` on `arch` from any format qmap reads: qmap's mapping YAML
/// (entries with `level:`), a Timeloop `map.yaml` (entries with `target:`), a Timeloop
/// `map.txt` / `stats.txt` loop nest, or a `timeloop-mapper` output directory.
pub fn load_mapping_file(
    path: &Path,
    arch: &Arch,
    problem: &Problem,
) -> Result<Mapping, InputError> {
    let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    if is_yaml && path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        let value = spec::yaml_value(path, &text)?;
        let qmap_format = value
            .get("mapping")
            .and_then(|m| m.as_sequence())
            .and_then(|s| s.first())
            .is_some_and(|e| e.get("level").is_some());
        if qmap_format {
            let ms: spec::MappingSpec = spec::load_yaml(path)?;
            return model::mapping_from_spec(&ms, arch, problem, path);
        }
    }
    timeloop::load_mapping_any(path, arch, problem)
}
