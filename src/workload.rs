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
    /// Number of weights (size of the Weights tensor).
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
        layers.push(layer);
    }
    Ok(layers)
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
        LayerKind::Conv2d | LayerKind::Fc => {
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
    let dims = [
        ("N", Some(l.n)),
        ("C", l.c),
        ("M", l.m),
        ("G", l.g),
        ("P", Some(l.p)),
        ("Q", Some(l.q)),
        ("R", Some(l.r)),
        ("S", Some(l.s)),
    ];
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
    let problem = Problem::from_layer(&l, dense_depthwise);
    problem
        .check_ranges()
        .map_err(|m| InputError::new(file, field.to_string(), m))?;
    let weights = problem
        .tensor_index("Weights")
        .map(|t| problem.tensor_size(t))
        .unwrap_or(0);
    Ok(Layer {
        name: l.name.clone(),
        problem,
        producer: None,
        weights,
    })
}
