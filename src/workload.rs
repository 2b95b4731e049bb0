//! Workloads: layers and networks built from their specs into problems, with their producers.

use crate::model::{Problem, MAX_COEF};

/// The largest dimension, padding or size a layer file may give (each count must stay exact).
pub const MAX_DIM: u64 = 1 << 32;
use crate::spec::{self, InputError, LayerKind};
use std::path::Path;

/// One layer of a workload, as a problem plus what links it to the network.
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: String,
    pub problem: Problem,
    /// Index of the layer producing this layer's input, None for the network input.
    pub producer: Option<usize>,
    /// Number of weights ([`Problem::weight_count`]: 0 for a matmul, whose second operand is an
    /// activation).
    pub weights: u64,
}

/// Total MACs of a network.
pub fn total_macs(layers: &[Layer]) -> u64 {
    layers.iter().map(|l| l.problem.macs()).sum()
}

/// Total weights of a network.
pub fn total_weights(layers: &[Layer]) -> u64 {
    layers.iter().map(|l| l.weights).sum()
}

/// Builds the layers of a network (validated; producers resolved).
pub fn build_network(
    net: &spec::NetworkSpec,
    dense_depthwise: bool,
    classes: Option<u64>,
    file: &Path,
) -> Result<Vec<Layer>, InputError> {
    if net.layers.is_empty() {
        return Err(InputError::new(
            file,
            "layers",
            "a network needs at least one layer",
        ));
    }
    let mut layers: Vec<Layer> = Vec::new();
    for (i, l) in net.layers.iter().enumerate() {
        let field = format!("layers[{i}]");
        if layers.iter().any(|x| x.name == l.name) {
            return Err(InputError::new(
                file,
                format!("{field}.name"),
                format!("duplicate layer name `{}`", l.name),
            ));
        }
        let mut layer = build_layer(l, dense_depthwise, classes, file, &field)?;
        layer.producer = match &l.input {
            None if i == 0 => None,
            None => Some(i - 1),
            Some(name) if name == "input" => None,
            Some(name) => Some(layers.iter().position(|x| &x.name == name).ok_or_else(|| {
                InputError::new(
                    file,
                    format!("{field}.input"),
                    format!("no earlier layer named `{name}`"),
                )
            })?),
        };
        if let Some(name) = l.input_b.as_ref().filter(|n| *n != "input") {
            if !layers.iter().any(|x| &x.name == name) {
                return Err(InputError::new(
                    file,
                    format!("{field}.input_b"),
                    format!("no earlier layer named `{name}`"),
                ));
            }
        }
        layers.push(layer);
    }
    for (i, l) in net.layers.iter().enumerate() {
        check_chain(net, i, l, layers[i].producer, file)?;
    }
    Ok(layers)
}

/// A conv2d's `groups`: at least 1, and dividing C and M (other kinds take none).
fn check_groups(l: &spec::LayerSpec) -> Result<(), String> {
    let Some(g) = l.groups else {
        return Ok(());
    };
    if l.kind != LayerKind::Conv2d {
        return Err("only conv2d layers take groups (depthwise layers are their own kind)".into());
    }
    let (c, m) = (l.c.unwrap_or(1), l.m.unwrap_or(1));
    if g == 0 || c % g != 0 || m % g != 0 {
        return Err(format!("{g} groups must divide C = {c} and M = {m}"));
    }
    Ok(())
}

/// Checks that layer `i` (spec `l`) can read its producer's output (or the network input):
/// its input channels are the producer's output channels (an fc layer may also read them
/// flattened), and its output width and height follow from the producer's, after the
/// layer's `pool`, by its stride, padding, dilation and filter size. An error names both
/// layers. Without a network `input` shape the first layer is not checked.
fn check_chain(
    net: &spec::NetworkSpec,
    i: usize,
    l: &spec::LayerSpec,
    producer: Option<usize>,
    file: &Path,
) -> Result<(), InputError> {
    let from = match producer {
        Some(j) => {
            let p = &net.layers[j];
            let out = if p.kind == LayerKind::Depthwise {
                p.g
            } else {
                p.m
            };
            let what = format!("its producer `{}` (layers[{j}])", p.name);
            let heads = [p.kind, l.kind].contains(&LayerKind::Matmul);
            (out.unwrap_or(0), p.p, p.q, what, heads.then_some(p.n))
        }
        None => match &net.input {
            Some(x) => (
                x.channels,
                x.width,
                x.height,
                "the network input".into(),
                None,
            ),
            None => return Ok(()),
        },
    };
    let (channels, w, h, what, producer_n) = from;
    let e = |k: &str, m: String| InputError::new(file, format!("layers[{i}].{k}"), m);
    let (w, h) = match &l.pool {
        Some(pool) => pooled(pool, w, h).ok_or_else(|| {
            e(
                "pool",
                format!("the pool window is larger than the {w}x{h} output of {what}"),
            )
        })?,
        None => (w, h),
    };
    let (key, takes) = match l.kind {
        LayerKind::Depthwise => ("G", l.g),
        _ => ("C", l.c),
    };
    let takes = takes.unwrap_or(0);
    let flattened = l.kind == LayerKind::Fc && takes == channels * w * h;
    // Into or out of a matmul, heads move between N and the channels (C·N = channels·N').
    let heads = producer_n.is_some_and(|n| takes * l.n == channels * n);
    if takes != channels && !flattened && !heads {
        return Err(e(
            key,
            format!("{key} = {takes} does not match the {channels} output channels of {what}"),
        ));
    }
    if l.kind == LayerKind::Fc {
        return Ok(());
    }
    let stride = l.stride.unwrap_or(spec::Pair::Both(1));
    let dilation = l.dilation.unwrap_or(spec::Pair::Both(1));
    let pad = l.pad.unwrap_or(spec::Pair::Both(0));
    let axes = [
        ("P", l.p, w, l.r, stride.w(), dilation.w(), pad.w()),
        ("Q", l.q, h, l.s, stride.h(), dilation.h(), pad.h()),
    ];
    for (k, out, input, filter, stride, dilation, pad) in axes {
        let span = dilation * (filter - 1) + 1;
        let expected = (input + 2 * pad).checked_sub(span).map(|x| x / stride + 1);
        if expected != Some(out) {
            let expected = expected.map_or("none".into(), |x| x.to_string());
            return Err(e(
                k,
                format!(
                    "{k} = {out}, but the {w}x{h} input from {what} gives {expected} (stride \
                     {stride}, pad {pad}, filter {filter}, dilation {dilation})"
                ),
            ));
        }
    }
    Ok(())
}

/// Width and height after a pooling window (None when the window does not fit).
fn pooled(pool: &spec::PoolSpec, w: u64, h: u64) -> Option<(u64, u64)> {
    let pad = pool.pad.unwrap_or(spec::Pair::Both(0));
    let axis =
        |x: u64, k: u64, s: u64, p: u64| (x + 2 * p).checked_sub(k).map(|v| v / s.max(1) + 1);
    Some((
        axis(w, pool.kernel.w(), pool.stride.w(), pad.w())?,
        axis(h, pool.kernel.h(), pool.stride.h(), pad.h())?,
    ))
}

/// Builds and validates one layer.
pub fn build_layer(
    l: &spec::LayerSpec,
    dense_depthwise: bool,
    classes: Option<u64>,
    file: &Path,
    field: &str,
) -> Result<Layer, InputError> {
    let e = |k: &str, m: String| InputError::new(file, format!("{field}.{k}"), m);
    let mut l = l.clone();
    if l.head {
        if let Some(c) = classes {
            l.m = Some(c);
        }
    }
    match l.kind {
        LayerKind::Depthwise => {
            if l.g.is_none() {
                return Err(e("G", "depthwise layers need G (channels)".into()));
            }
            if l.c.is_some() || l.m.is_some() {
                return Err(e("G", "depthwise layers take G, not C/M".into()));
            }
        }
        LayerKind::Conv2d | LayerKind::Fc | LayerKind::Matmul => {
            if l.c.is_none() {
                return Err(e("C", "missing".into()));
            }
            if l.m.is_none() {
                return Err(e("M", "missing".into()));
            }
            if l.g.is_some() {
                return Err(e("G", "only depthwise layers take G".into()));
            }
        }
    }
    check_groups(&l).map_err(|m| e("groups", m))?;
    let dims = l.dims();
    for (k, v) in dims {
        if v == Some(0) {
            return Err(e(k, "must be > 0".into()));
        }
    }
    for (k, v) in dims {
        if v.is_some_and(|v| v > MAX_DIM) {
            return Err(e(k, format!("must be at most 2^32 ({MAX_DIM})")));
        }
    }
    for (k, v) in [("stride", l.stride), ("dilation", l.dilation)] {
        if let Some(p) = v {
            if p.w() == 0 || p.h() == 0 {
                return Err(e(k, "must be > 0".into()));
            }
            if p.w().max(p.h()) > MAX_COEF {
                return Err(e(
                    k,
                    format!("must be at most {MAX_COEF} (qmap's counts are exact up to that)"),
                ));
            }
        }
    }
    if let Some(p) = l.pad {
        if p.w().max(p.h()) > MAX_DIM {
            return Err(e("pad", format!("must be at most 2^32 ({MAX_DIM})")));
        }
    }
    if l.kind == LayerKind::Fc && (l.p, l.q, l.r, l.s) != (1, 1, 1, 1) {
        return Err(e("kind", "fc layers have P = Q = R = S = 1".into()));
    }
    check_matmul(&l).map_err(|(k, m)| e(k, m))?;
    let problem = Problem::from_layer(&l, dense_depthwise);
    problem
        .check_ranges()
        .map_err(|m| InputError::new(file, field.to_string(), m))?;
    Ok(Layer {
        name: l.name.clone(),
        weights: problem.weight_count(),
        problem,
        producer: None,
    })
}

/// A matmul has no filter, stride, padding or pooling (Q = R = S = 1); only a matmul takes
/// `input_b`. The error: the field and why.
fn check_matmul(l: &spec::LayerSpec) -> Result<(), (&'static str, String)> {
    if l.kind != LayerKind::Matmul {
        return match l.input_b {
            Some(_) => Err(("input_b", "only matmul layers take input_b".into())),
            None => Ok(()),
        };
    }
    if (l.q, l.r, l.s) != (1, 1, 1) {
        return Err(("kind", "matmul layers have Q = R = S = 1".into()));
    }
    let given = [
        ("stride", l.stride.is_some()),
        ("dilation", l.dilation.is_some()),
        ("pad", l.pad.is_some()),
        ("pool", l.pool.is_some()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((k, _)) => Err((k, format!("matmul layers take no {k}"))),
        None => Ok(()),
    }
}
