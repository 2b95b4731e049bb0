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

    /// Whether the operand in the Weights place is an activation: a matmul's second operand,
    /// which has the batch rank N (a convolution's or fc's weights never have it).
    pub fn weights_are_activation(&self) -> bool {
        let batch = self.dims.iter().position(|d| d == "N");
        (self.tensors.iter()).any(|t| t.name == "Weights" && batch.is_some_and(|n| t.relevant(n)))
    }

    /// Number of weights: the size of the Weights tensor, 0 without one or when it is an
    /// activation ([`Problem::weights_are_activation`]).
    pub fn weight_count(&self) -> u64 {
        match self.tensor_index("Weights") {
            Some(t) if !self.weights_are_activation() => self.tensor_size(t),
            _ => 0,
        }
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
            LayerKind::Matmul => matmul_problem(&layer.name, [layer.n, m, c, layer.p]),
        }
    }
}

/// A grouped convolution: `G` groups, each of `C` input and `M` output channels (`C·G` and
/// `M·G` in all), with bounds `[N, G, M, C, P, Q, R, S]` and `[Wstride, Hstride, Wdilation,
/// Hdilation]`. The group is a rank of every tensor (channel `g·C + c` as the pair `(g, c)`),
/// so each group's Weights, Inputs and Outputs are disjoint, as in Timeloop's grouped-conv
/// problem shape.
pub fn grouped_problem(name: &str, b: [u64; 8], coef: [u64; 4]) -> Problem {
    let dims = ["N", "G", "M", "C", "P", "Q", "R", "S"];
    let roles = ConvDims {
        g: Some(1),
        m: Some(2),
        c: Some(3),
        p: 4,
        q: 5,
        r: 6,
        s: 7,
    };
    conv_shaped(name, &dims, b.to_vec(), &roles, coef)
}

/// A matmul of two activations with bounds `[N, M, C, P]`: Inputs `[N, C, P]`, the second
/// operand `[N, C, M]` (named Weights: it takes the weights' place, one matrix per N, i.e.
/// per head), Outputs `[N, M, P]`. Dims Q, R and S are kept with bound 1 (ranks of the conv
/// tensors, so a conv's mapspace constraints apply as they are): it is a 1x1 conv whose
/// "weights" also have the N rank, as Timeloop's problem format expresses it.
pub fn matmul_problem(name: &str, b: [u64; 4]) -> Problem {
    let one = |dim: usize| vec![Term { coef: 1, dim }];
    let sum = |a: usize, b: usize| vec![Term { coef: 1, dim: a }, Term { coef: 1, dim: b }];
    let tensor = |name: &str, ranks: Vec<Vec<Term>>, read_write| Tensor {
        name: name.into(),
        ranks,
        read_write,
    };
    let [n, m, c, p, q, r, s] = [0, 1, 2, 3, 4, 5, 6];
    Problem {
        name: name.into(),
        dims: ["N", "M", "C", "P", "Q", "R", "S"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        bounds: vec![b[0], b[1], b[2], b[3], 1, 1, 1],
        tensors: vec![
            tensor(
                "Weights",
                vec![one(n), one(c), one(m), one(r), one(s)],
                false,
            ),
            tensor("Inputs", vec![one(n), one(c), sum(r, p), sum(s, q)], false),
            tensor("Outputs", vec![one(n), one(m), one(q), one(p)], true),
        ],
    }
}

/// conv2d (or depthwise when `depthwise`) with bounds `[N, M|G, C, P, Q, R, S]` and
/// `[Wstride, Hstride, Wdilation, Hdilation]`. Timeloop's convention: P and R index W, Q and S
/// index H.
pub fn conv_problem(name: &str, depthwise: bool, b: [u64; 7], coef: [u64; 4]) -> Problem {
    if depthwise {
        let roles = ConvDims {
            g: Some(1),
            m: None,
            c: None,
            p: 2,
            q: 3,
            r: 4,
            s: 5,
        };
        let bounds = vec![b[0], b[1], b[3], b[4], b[5], b[6]];
        conv_shaped(name, &["N", "G", "P", "Q", "R", "S"], bounds, &roles, coef)
    } else {
        let roles = ConvDims {
            g: None,
            m: Some(1),
            c: Some(2),
            p: 3,
            q: 4,
            r: 5,
            s: 6,
        };
        conv_shaped(
            name,
            &["N", "M", "C", "P", "Q", "R", "S"],
            b.to_vec(),
            &roles,
            coef,
        )
    }
}

/// Where a convolution's roles sit among its problem's dims (N is dim 0; None: the role has
/// no dim, e.g. M and C of a depthwise conv, G of a plain one).
struct ConvDims {
    g: Option<usize>,
    m: Option<usize>,
    c: Option<usize>,
    p: usize,
    q: usize,
    r: usize,
    s: usize,
}

/// The problem of a convolution over `dims`: Weights `[G, C, M, R, S]`, Inputs `[N, G, C,
/// W, H]` and Outputs `[N, G, M, Q, P]`, each without the ranks of absent roles; W = wd·R +
/// ws·P and H = hd·S + hs·Q (`coef` = `[ws, hs, wd, hd]`).
fn conv_shaped(
    name: &str,
    dims: &[&str],
    bounds: Vec<u64>,
    d: &ConvDims,
    coef: [u64; 4],
) -> Problem {
    let [ws, hs, wd, hd] = coef;
    let rank = |dim: usize| vec![Term { coef: 1, dim }];
    let ranks = |first: [Option<usize>; 3], last: [Vec<Term>; 2]| -> Vec<Vec<Term>> {
        first.into_iter().flatten().map(rank).chain(last).collect()
    };
    let term = |coef: u64, dim: usize| Term { coef, dim };
    let tensor = |name: &str, ranks, read_write| Tensor {
        name: name.into(),
        ranks,
        read_write,
    };
    let tensors = vec![
        tensor(
            "Weights",
            ranks([d.g, d.c, d.m], [rank(d.r), rank(d.s)]),
            false,
        ),
        tensor(
            "Inputs",
            ranks(
                [Some(0), d.g, d.c],
                [
                    vec![term(wd, d.r), term(ws, d.p)],
                    vec![term(hd, d.s), term(hs, d.q)],
                ],
            ),
            false,
        ),
        tensor(
            "Outputs",
            ranks([Some(0), d.g, d.m], [rank(d.q), rank(d.p)]),
            true,
        ),
    ];
    Problem {
        name: name.into(),
        dims: dims.iter().map(|s| s.to_string()).collect(),
        bounds,
        tensors,
    }
}
