//! Model types shared by every part of qmap: problem (dims, tensor projections), architecture,
//! mapping, bit-widths and model settings, built and validated from the `spec` formats.

use crate::spec::{self, InputError, LayerKind, PackingMode};
use std::path::Path;

/// One term `coef · dim` of a tensor rank's index expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub coef: u64,
    pub dim: usize,
}

/// A tensor (Timeloop "data space"): one index expression (a sum of terms) per rank.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub ranks: Vec<Vec<Term>>,
    /// Read-modify-write tensor (Outputs / partial sums).
    pub read_write: bool,
}

impl Tensor {
    /// Whether `dim` appears in any rank of this tensor.
    pub fn relevant(&self, dim: usize) -> bool {
        self.ranks.iter().any(|r| r.iter().any(|t| t.dim == dim))
    }

    /// The rank that `dim` appears in, if any.
    pub fn rank_of(&self, dim: usize) -> Option<usize> {
        self.ranks
            .iter()
            .position(|r| r.iter().any(|t| t.dim == dim))
    }

    /// Extent of each rank (bounding box) for per-dim extents `ext`.
    pub fn rank_extents(&self, ext: &[u64]) -> Vec<u64> {
        self.ranks
            .iter()
            .map(|r| r.iter().map(|t| t.coef * (ext[t.dim] - 1)).sum::<u64>() + 1)
            .collect()
    }

    /// Number of points in the bounding box for per-dim extents `ext` (the tile size).
    pub fn tile_points(&self, ext: &[u64]) -> u64 {
        self.rank_extents(ext).iter().product()
    }

    /// Number of points some iteration of the box `ext` reaches: per rank, the distinct
    /// values of its index expression (fewer than the extent where strides or dilations leave
    /// gaps, e.g. a 1x1 kernel at stride 2).
    pub fn used_points(&self, ext: &[u64]) -> u64 {
        self.ranks
            .iter()
            .map(|r| {
                let mut offsets = vec![0u64];
                for t in r {
                    offsets = offsets
                        .iter()
                        .flat_map(|&o| (0..ext[t.dim]).map(move |i| o + t.coef * i))
                        .collect();
                    offsets.sort_unstable();
                    offsets.dedup();
                }
                offsets.len() as u64
            })
            .product()
    }
}

/// A problem: named dimensions with bounds and tensors projected from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub name: String,
    pub dims: Vec<String>,
    pub bounds: Vec<u64>,
    pub tensors: Vec<Tensor>,
}

/// The largest number of MACs a layer may have: every count qmap keeps is an exact u64, and
/// the largest (Inputs fills with halos, times the bits of a word in `ideal` packing) is at
/// most about MACs × (strides + dilations) × 64. 2^48 is 2.8e14 MACs, 37× a 3x3 conv of
/// 4096 to 4096 channels at 224x224.
pub const MAX_MACS: u64 = 1 << 48;

/// The largest number of points a tensor may have (with its halos), for the same reason.
pub const MAX_TENSOR_POINTS: u64 = 1 << 48;

/// The most instances of a level (or MACs), and the largest cluster.
pub const MAX_INSTANCES: u64 = 1 << 32;

/// The largest coefficient (stride, dilation) in a tensor's index expressions.
pub const MAX_COEF: u64 = 256;

impl Problem {
    pub fn macs(&self) -> u64 {
        self.bounds.iter().product()
    }

    /// Whether every number of the problem is within what qmap computes exactly: why not.
    pub fn check_ranges(&self) -> Result<(), String> {
        for t in &self.tensors {
            if let Some(term) = t.ranks.iter().flatten().find(|x| x.coef > MAX_COEF) {
                return Err(format!(
                    "{} uses {} with coefficient {} (a stride or dilation); qmap computes \
                     exactly up to {MAX_COEF}",
                    t.name, self.dims[term.dim], term.coef
                ));
            }
        }
        let macs = self
            .bounds
            .iter()
            .try_fold(1u64, |a, &b| a.checked_mul(b).filter(|&m| m <= MAX_MACS));
        if macs.is_none() {
            let product = self.bounds.iter().map(|&b| b as f64).product::<f64>();
            return Err(format!(
                "{} = {product:.3e} multiply-accumulates; qmap counts exactly up to 2^48 \
                 ({MAX_MACS})",
                self.dims.join(" × ")
            ));
        }
        for t in &self.tensors {
            let mut points = 1u64;
            for rank in &t.ranks {
                let span = rank.iter().try_fold(0u64, |s, x| {
                    s.checked_add(x.coef.checked_mul(self.bounds[x.dim] - 1)?)
                });
                let next = span.and_then(|s| points.checked_mul(s + 1));
                match next.filter(|&p| p <= MAX_TENSOR_POINTS) {
                    Some(p) => points = p,
                    None => {
                        return Err(format!(
                            "{} has more than 2^48 ({MAX_TENSOR_POINTS}) points; qmap counts \
                             exactly up to that",
                            t.name
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    pub fn dim_index(&self, name: &str) -> Option<usize> {
        self.dims.iter().position(|d| d == name)
    }

    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }

    /// Total number of points of tensor `t` (its size).
    pub fn tensor_size(&self, t: usize) -> u64 {
        self.tensors[t].tile_points(&self.bounds)
    }

    /// Builds a conv-family layer: conv2d (dims N M C P Q R S), depthwise (N G P Q R S) or fc.
    /// `dense_depthwise` models a depthwise layer as a dense conv with C = M = G (the seed's way).
    pub fn from_layer(layer: &spec::LayerSpec, dense_depthwise: bool) -> Problem {
        let (ws, hs) = layer.stride.map(|p| (p.w(), p.h())).unwrap_or((1, 1));
        let (wd, hd) = layer.dilation.map(|p| (p.w(), p.h())).unwrap_or((1, 1));
        let kind = if layer.kind == LayerKind::Depthwise && dense_depthwise {
            LayerKind::Conv2d
        } else {
            layer.kind
        };
        let (c, m) = match layer.kind {
            LayerKind::Depthwise => (layer.g.unwrap_or(1), layer.g.unwrap_or(1)),
            _ => (layer.c.unwrap_or(1), layer.m.unwrap_or(1)),
        };
        match kind {
            LayerKind::Conv2d | LayerKind::Fc => {
                let (p, q, r, s) = if kind == LayerKind::Fc {
                    (1, 1, 1, 1)
                } else {
                    (layer.p, layer.q, layer.r, layer.s)
                };
                conv_problem(
                    &layer.name,
                    false,
                    [layer.n, m, c, p, q, r, s],
                    [ws, hs, wd, hd],
                )
            }
            LayerKind::Depthwise => conv_problem(
                &layer.name,
                true,
                [layer.n, c, 1, layer.p, layer.q, layer.r, layer.s],
                [ws, hs, wd, hd],
            ),
        }
    }
}

/// conv2d (or depthwise when `depthwise`) with bounds `[N, M|G, C, P, Q, R, S]` and
/// `[Wstride, Hstride, Wdilation, Hdilation]`. Timeloop's convention: P and R index W, Q and S
/// index H.
pub fn conv_problem(name: &str, depthwise: bool, b: [u64; 7], coef: [u64; 4]) -> Problem {
    let t = |dim: usize| Term { coef: 1, dim };
    let [ws, hs, wd, hd] = coef;
    if depthwise {
        // dims: N G P Q R S
        let dims = ["N", "G", "P", "Q", "R", "S"];
        let bounds = vec![b[0], b[1], b[3], b[4], b[5], b[6]];
        let tensors = vec![
            Tensor {
                name: "Weights".into(),
                ranks: vec![vec![t(1)], vec![t(4)], vec![t(5)]],
                read_write: false,
            },
            Tensor {
                name: "Inputs".into(),
                ranks: vec![
                    vec![t(0)],
                    vec![t(1)],
                    vec![Term { coef: wd, dim: 4 }, Term { coef: ws, dim: 2 }],
                    vec![Term { coef: hd, dim: 5 }, Term { coef: hs, dim: 3 }],
                ],
                read_write: false,
            },
            Tensor {
                name: "Outputs".into(),
                ranks: vec![vec![t(0)], vec![t(1)], vec![t(3)], vec![t(2)]],
                read_write: true,
            },
        ];
        Problem {
            name: name.into(),
            dims: dims.iter().map(|s| s.to_string()).collect(),
            bounds,
            tensors,
        }
    } else {
        // dims: N M C P Q R S
        let dims = ["N", "M", "C", "P", "Q", "R", "S"];
        let tensors = vec![
            Tensor {
                name: "Weights".into(),
                ranks: vec![vec![t(2)], vec![t(1)], vec![t(5)], vec![t(6)]],
                read_write: false,
            },
            Tensor {
                name: "Inputs".into(),
                ranks: vec![
                    vec![t(0)],
                    vec![t(2)],
                    vec![Term { coef: wd, dim: 5 }, Term { coef: ws, dim: 3 }],
                    vec![Term { coef: hd, dim: 6 }, Term { coef: hs, dim: 4 }],
                ],
                read_write: false,
            },
            Tensor {
                name: "Outputs".into(),
                ranks: vec![vec![t(0)], vec![t(1)], vec![t(4)], vec![t(3)]],
                read_write: true,
            },
        ];
        Problem {
            name: name.into(),
            dims: dims.iter().map(|s| s.to_string()).collect(),
            bounds: b.to_vec(),
            tensors,
        }
    }
}

/// Whether a level may, must or must not keep a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepRule {
    Must,
    Never,
    Free,
}

/// One storage level.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub name: String,
    pub instances: u64,
    pub mesh_x: u64,
    pub mesh_y: u64,
    /// Rows per instance; None = unbounded.
    pub depth: Option<u64>,
    pub width: u64,
    pub word_bits: u64,
    pub block_size: u64,
    pub cluster_size: u64,
    pub dummy: bool,
    /// Keep rule per tensor name, resolved against a problem by [`Level::keep_rule`].
    pub must_keep: Vec<String>,
    pub must_bypass: Vec<String>,
    pub read_energy: f64,
    pub write_energy: f64,
    pub update_energy: f64,
    pub read_bandwidth: Option<f64>,
    pub write_bandwidth: Option<f64>,
    pub shared_bandwidth: Option<f64>,
}

impl Level {
    /// Capacity in words (depth × block size); None = unbounded.
    pub fn capacity_words(&self) -> Option<u64> {
        self.depth.map(|d| d * self.block_size)
    }

    pub fn keep_rule(&self, tensor: &str) -> KeepRule {
        if self.dummy || self.must_bypass.iter().any(|t| t == tensor) {
            KeepRule::Never
        } else if self.must_keep.iter().any(|t| t == tensor) {
            KeepRule::Must
        } else {
            KeepRule::Free
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mac {
    pub name: String,
    pub instances: u64,
    pub mesh_x: u64,
    pub mesh_y: u64,
    pub energy: f64,
    pub energy_table: Vec<spec::MacEnergyEntry>,
}

impl Mac {
    /// Energy per MAC at the given operand bit-widths: the smallest table entry covering both
    /// widths, `energy` when none does.
    pub fn energy_at(&self, weight_bits: u32, activation_bits: u32) -> f64 {
        self.energy_table
            .iter()
            .filter(|e| e.weight_bits >= weight_bits && e.activation_bits >= activation_bits)
            .min_by_key(|e| (e.weight_bits, e.activation_bits))
            .map(|e| e.energy)
            .unwrap_or(self.energy)
    }
}

/// An architecture: storage levels innermost first, and the MAC array.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub name: String,
    pub levels: Vec<Level>,
    pub mac: Mac,
}

impl Arch {
    /// Keep rule of `tensor` at level `l`: the level's own rule, except that the outermost level
    /// is the backing store and keeps every tensor (as in Timeloop).
    pub fn keep_rule(&self, l: usize, tensor: &str) -> KeepRule {
        if l + 1 == self.levels.len() {
            KeepRule::Must
        } else {
            self.levels[l].keep_rule(tensor)
        }
    }

    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }

    /// Spatial fanout (X, Y) from level `l` to the level below it (or the MACs).
    pub fn fanout(&self, l: usize) -> (u64, u64) {
        let (cx, cy) = if l == 0 {
            (self.mac.mesh_x, self.mac.mesh_y)
        } else {
            (self.levels[l - 1].mesh_x, self.levels[l - 1].mesh_y)
        };
        let p = &self.levels[l];
        (cx / p.mesh_x.max(1), cy / p.mesh_y.max(1))
    }

    /// Builds and validates an architecture from its spec; `file` names the source in errors.
    pub fn from_spec(s: &spec::ArchSpec, file: &Path) -> Result<Arch, InputError> {
        let err = |field: String, msg: String| InputError::new(file, field, msg);
        if s.levels.is_empty() {
            return Err(err(
                "levels".into(),
                "at least one storage level is required".into(),
            ));
        }
        let mut levels = Vec::new();
        for (i, l) in s.levels.iter().enumerate() {
            let f = |name: &str| format!("levels[{i}].{name}");
            if l.instances == 0 {
                return Err(err(f("instances"), "must be > 0".into()));
            }
            let mesh_x = l.mesh_x.unwrap_or(l.instances);
            if mesh_x == 0 || !l.instances.is_multiple_of(mesh_x) {
                return Err(err(
                    f("mesh_x"),
                    format!("must be > 0 and divide instances ({})", l.instances),
                ));
            }
            if l.depth == Some(0) {
                return Err(err(f("depth"), "must be > 0".into()));
            }
            if l.width == 0 {
                return Err(err(f("width"), "must be > 0".into()));
            }
            if l.word_bits == 0 {
                return Err(err(f("word_bits"), "must be > 0".into()));
            }
            if l.cluster_size == 0 {
                return Err(err(f("cluster_size"), "must be > 0".into()));
            }
            let block_size = match l.block_size {
                Some(0) => return Err(err(f("block_size"), "must be > 0".into())),
                Some(b) => b,
                None => (l.width / (l.word_bits * l.cluster_size)).max(1),
            };
            for (name, v) in [
                ("read", l.energy.read),
                ("write", l.energy.write),
                ("update", l.energy.update.unwrap_or(0.0)),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(
                        f(&format!("energy.{name}")),
                        "must be a finite number >= 0".into(),
                    ));
                }
            }
            for t in l.keep.iter().chain(&l.bypass) {
                if !["Weights", "Inputs", "Outputs"].contains(&t.as_str()) && !t.is_empty() {
                    // Other tensor names are allowed (Timeloop problems name their own data
                    // spaces); they are checked against the problem when evaluating.
                }
            }
            if let Some(t) = l.keep.iter().find(|t| l.bypass.contains(t)) {
                return Err(err(f("keep"), format!("{t} is both kept and bypassed")));
            }
            for (name, v) in [
                ("read", l.bandwidth.read),
                ("write", l.bandwidth.write),
                ("shared", l.bandwidth.shared),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(err(f(&format!("bandwidth.{name}")), "must be > 0".into()));
                    }
                }
            }
            levels.push(Level {
                name: l.name.clone(),
                instances: l.instances,
                mesh_x,
                mesh_y: l.instances / mesh_x,
                depth: l.depth,
                width: l.width,
                word_bits: l.word_bits,
                block_size,
                cluster_size: l.cluster_size,
                dummy: l.dummy,
                must_keep: l.keep.clone(),
                must_bypass: l.bypass.clone(),
                read_energy: l.energy.read,
                write_energy: l.energy.write,
                update_energy: l.energy.update.unwrap_or(l.energy.write),
                read_bandwidth: l.bandwidth.read,
                write_bandwidth: l.bandwidth.write,
                shared_bandwidth: l.bandwidth.shared,
            });
        }
        if s.mac.instances == 0 {
            return Err(err("mac.instances".into(), "must be > 0".into()));
        }
        let mac_x = s.mac.mesh_x.unwrap_or(s.mac.instances);
        if mac_x == 0 || !s.mac.instances.is_multiple_of(mac_x) {
            return Err(err(
                "mac.mesh_x".into(),
                "must be > 0 and divide mac.instances".into(),
            ));
        }
        let mac = Mac {
            name: s.mac.name.clone(),
            instances: s.mac.instances,
            mesh_x: mac_x,
            mesh_y: s.mac.instances / mac_x,
            energy: s.mac.energy,
            energy_table: s.mac.energy_table.clone(),
        };
        let arch = Arch {
            name: s.name.clone(),
            levels,
            mac,
        };
        arch.check_fanouts()
            .map_err(|(i, m)| err(format!("levels[{i}].instances"), m))?;
        arch.check_ranges().map_err(|(i, field, m)| match i {
            Some(i) => err(format!("levels[{i}].{field}"), m),
            None => err(format!("mac.{field}"), m),
        })?;
        Ok(arch)
    }

    /// Whether every size of the architecture is within what qmap computes exactly: the
    /// offending level (None: the MACs), its field and why not.
    pub fn check_ranges(&self) -> Result<(), (Option<usize>, &'static str, String)> {
        let most = |v: u64, max: u64, what: &str| {
            (v > max).then(|| format!("{v} is more than qmap computes exactly with ({what} {max})"))
        };
        for (i, l) in self.levels.iter().enumerate() {
            let checks = [
                ("instances", most(l.instances, MAX_INSTANCES, "at most")),
                ("depth", most(l.depth.unwrap_or(0), 1 << 40, "at most")),
                ("width", most(l.width, 1 << 20, "at most")),
                ("word_bits", most(l.word_bits, 1 << 10, "at most")),
                ("block_size", most(l.block_size, 1 << 20, "at most")),
                (
                    "cluster_size",
                    most(l.cluster_size, MAX_INSTANCES, "at most"),
                ),
            ];
            if let Some((field, Some(m))) = checks.into_iter().find(|c| c.1.is_some()) {
                return Err((Some(i), field, m));
            }
        }
        match most(self.mac.instances, MAX_INSTANCES, "at most") {
            Some(m) => Err((None, "instances", m)),
            None => Ok(()),
        }
    }

    /// Each level's instances (and mesh) must divide those of the level below it.
    pub fn check_fanouts(&self) -> Result<(), (usize, String)> {
        for i in 0..self.levels.len() {
            let (cx, cy, cname) = if i == 0 {
                (self.mac.mesh_x, self.mac.mesh_y, self.mac.name.as_str())
            } else {
                let c = &self.levels[i - 1];
                (c.mesh_x, c.mesh_y, c.name.as_str())
            };
            let p = &self.levels[i];
            if !cx.is_multiple_of(p.mesh_x) || !cy.is_multiple_of(p.mesh_y) {
                return Err((
                    i,
                    format!(
                        "mesh {}x{} does not divide the mesh {}x{} of {} below it",
                        p.mesh_x, p.mesh_y, cx, cy, cname
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A loop: a dimension and its factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loop {
    pub dim: usize,
    pub factor: u64,
}

/// The mapping of one storage level: its temporal loops (innermost first), the spatial loops of
/// its fanout to the level below (X and Y), and which tensors it keeps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LevelMapping {
    pub temporal: Vec<Loop>,
    pub spatial_x: Vec<Loop>,
    pub spatial_y: Vec<Loop>,
    /// `keep[t]` for each tensor of the problem.
    pub keep: Vec<bool>,
}

impl LevelMapping {
    pub fn temporal_factor(&self, dim: usize) -> u64 {
        self.temporal
            .iter()
            .filter(|l| l.dim == dim)
            .map(|l| l.factor)
            .product()
    }
    pub fn spatial_factor(&self, dim: usize) -> u64 {
        self.spatial_x
            .iter()
            .chain(&self.spatial_y)
            .filter(|l| l.dim == dim)
            .map(|l| l.factor)
            .product()
    }
    pub fn spatial_x_product(&self) -> u64 {
        self.spatial_x.iter().map(|l| l.factor).product()
    }
    pub fn spatial_y_product(&self) -> u64 {
        self.spatial_y.iter().map(|l| l.factor).product()
    }
}

/// A mapping: one [`LevelMapping`] per architecture level, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Mapping {
    pub levels: Vec<LevelMapping>,
}

/// Per-tensor bit-widths (indexed like the problem's tensors).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bits(pub Vec<u32>);

/// What partial sums (Outputs below their outermost level) are stored at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PsumPolicy {
    /// At the output activation width (the seed's choice).
    #[default]
    OutputBits,
    /// At a fixed width (e.g. a 24-bit accumulator).
    Bits(u32),
}

/// Model settings beyond the architecture and the mapping.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelOptions {
    /// Per-tensor bit-widths; None = native (each tensor at each level's word size).
    pub bits: Option<Bits>,
    pub packing: PackingMode,
    pub psum: PsumPolicy,
    /// Reproduce the seed fork's extra inner-level Outputs fill per element.
    pub seed_compat: bool,
}

/// Parses `"M8 R3 C1"` into loops over the problem's dims (factor-1 loops are kept: they carry
/// the order Timeloop prints but do not change any count).
pub fn parse_loops(text: &str, problem: &Problem) -> Result<Vec<Loop>, String> {
    let mut loops = Vec::new();
    for tok in text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        let split = tok
            .find(|c: char| c.is_ascii_digit() || c == '=')
            .ok_or_else(|| {
                format!("`{tok}`: expected a dimension name followed by a factor, e.g. `M8`")
            })?;
        let (name, num) = tok.split_at(split);
        let num = num.trim_start_matches('=');
        let dim = problem.dim_index(name).ok_or_else(|| {
            format!(
                "`{tok}`: unknown dimension `{name}` (dims: {})",
                problem.dims.join(" ")
            )
        })?;
        let factor: u64 = num
            .parse()
            .map_err(|_| format!("`{tok}`: factor `{num}` is not a positive integer"))?;
        if factor == 0 {
            return Err(format!("`{tok}`: factor must be > 0"));
        }
        if loops.iter().any(|l: &Loop| l.dim == dim) {
            return Err(format!("`{tok}`: dimension `{name}` appears twice"));
        }
        loops.push(Loop { dim, factor });
    }
    Ok(loops)
}

/// Builds a mapping from its spec, for `arch` and `problem`; `file` names the source in errors.
pub fn mapping_from_spec(
    s: &spec::MappingSpec,
    arch: &Arch,
    problem: &Problem,
    file: &Path,
) -> Result<Mapping, InputError> {
    // A level whose entry gives no `keep` keeps every tensor the architecture lets it keep
    // (Timeloop's default).
    let mut levels: Vec<LevelMapping> = (0..arch.levels.len())
        .map(|l| LevelMapping {
            keep: problem
                .tensors
                .iter()
                .map(|t| arch.keep_rule(l, &t.name) != KeepRule::Never)
                .collect(),
            ..Default::default()
        })
        .collect();
    let mut seen = vec![false; arch.levels.len()];
    for (i, e) in s.mapping.iter().enumerate() {
        let f = |name: &str| format!("mapping[{i}].{name}");
        let l = arch.level_index(&e.level).ok_or_else(|| {
            InputError::new(
                file,
                f("level"),
                format!(
                    "unknown level `{}` (levels: {})",
                    e.level,
                    arch.levels
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if seen[l] {
            return Err(InputError::new(
                file,
                f("level"),
                format!("level `{}` is mapped twice", e.level),
            ));
        }
        seen[l] = true;
        let lm = &mut levels[l];
        lm.temporal = parse_loops(&e.temporal, problem)
            .map_err(|m| InputError::new(file, f("temporal"), m))?;
        lm.spatial_x = parse_loops(&e.spatial_x, problem)
            .map_err(|m| InputError::new(file, f("spatial_x"), m))?;
        lm.spatial_y = parse_loops(&e.spatial_y, problem)
            .map_err(|m| InputError::new(file, f("spatial_y"), m))?;
        if let Some(keep) = &e.keep {
            for name in keep {
                if problem.tensor_index(name).is_none() {
                    return Err(InputError::new(
                        file,
                        f("keep"),
                        format!("unknown tensor `{name}`"),
                    ));
                }
            }
            lm.keep = problem
                .tensors
                .iter()
                .map(|t| keep.contains(&t.name))
                .collect();
        }
    }
    Ok(Mapping { levels })
}

/// Converts a mapping back to its spec (innermost first, factor-1 loops dropped).
pub fn mapping_to_spec(m: &Mapping, arch: &Arch, problem: &Problem) -> spec::MappingSpec {
    let fmt = |loops: &[Loop]| {
        loops
            .iter()
            .filter(|l| l.factor > 1)
            .map(|l| format!("{}{}", problem.dims[l.dim], l.factor))
            .collect::<Vec<_>>()
            .join(" ")
    };
    spec::MappingSpec {
        mapping: m
            .levels
            .iter()
            .zip(&arch.levels)
            .map(|(lm, l)| spec::LevelMappingSpec {
                level: l.name.clone(),
                temporal: fmt(&lm.temporal),
                spatial_x: fmt(&lm.spatial_x),
                spatial_y: fmt(&lm.spatial_y),
                keep: Some(
                    problem
                        .tensors
                        .iter()
                        .zip(&lm.keep)
                        .filter(|(_, k)| **k)
                        .map(|(t, _)| t.name.clone())
                        .collect(),
                ),
            })
            .collect(),
    }
}
