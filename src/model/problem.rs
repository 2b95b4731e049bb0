//! The problem: its dims and bounds, and each tensor's projection (Timeloop's data spaces as
//! sums of `coef · dim` terms), with the size limits every count stays exact under.

use crate::spec::{self, LayerKind};

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
        let groups = layer.groups.unwrap_or(1);
        if kind == LayerKind::Conv2d && groups > 1 {
            let (p, q, r, s) = (layer.p, layer.q, layer.r, layer.s);
            let b = [layer.n, groups, m / groups, c / groups, p, q, r, s];
            return grouped_problem(&layer.name, b, [ws, hs, wd, hd]);
        }
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

/// A grouped convolution: `G` groups, each of `C` input and `M` output channels (`C·G` and
/// `M·G` in all), with bounds `[N, G, M, C, P, Q, R, S]` and `[Wstride, Hstride, Wdilation,
/// Hdilation]`. The group is a rank of every tensor (channel `g·C + c` as the pair `(g, c)`),
/// so each group's Weights, Inputs and Outputs are disjoint, as in Timeloop's grouped-conv
/// problem shape.
pub fn grouped_problem(name: &str, b: [u64; 8], coef: [u64; 4]) -> Problem {
    let t = |dim: usize| Term { coef: 1, dim };
    let [ws, hs, wd, hd] = coef;
    let dims = ["N", "G", "M", "C", "P", "Q", "R", "S"];
    let tensors = vec![
        Tensor {
            name: "Weights".into(),
            ranks: vec![vec![t(1)], vec![t(3)], vec![t(2)], vec![t(6)], vec![t(7)]],
            read_write: false,
        },
        Tensor {
            name: "Inputs".into(),
            ranks: vec![
                vec![t(0)],
                vec![t(1)],
                vec![t(3)],
                vec![Term { coef: wd, dim: 6 }, Term { coef: ws, dim: 4 }],
                vec![Term { coef: hd, dim: 7 }, Term { coef: hs, dim: 5 }],
            ],
            read_write: false,
        },
        Tensor {
            name: "Outputs".into(),
            ranks: vec![vec![t(0)], vec![t(1)], vec![t(2)], vec![t(5)], vec![t(4)]],
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
