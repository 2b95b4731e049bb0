//! ONNX import: an `.onnx` model file read into a qmap network ([`crate::spec::NetworkSpec`],
//! the type of the YAML networks), for `qmap import` and for an instance's
//! `workload: {network: model.onnx}`.
//!
//! [`proto`] decodes the file (a small protobuf wire reader for the subset of `onnx.proto` that
//! is read), [`shapes`] does the shape arithmetic, [`graph`] walks the nodes into layers. Shapes
//! follow from the graph input's shape: its static dims, or `--input-shape` (batch included) for
//! dynamic ones; the batch becomes every layer's N.
//!
//! Coverage: Conv (groups: depthwise when groups = C = M, else a grouped conv2d; strides;
//! dilations; `pads` and `auto_pad`, asymmetric pads recorded as the symmetric pad giving the
//! same output, else an error), Gemm and MatMul with a constant second operand (fc, or a 1x1
//! conv2d along P for a [.., S, K] sequence), MatMul of two activations (a `matmul` layer), element-wise ops (Add, Sum, Sub, Mul, Div, Pow,
//! Max, Min: residual adds recorded in the chain), MaxPool / AveragePool (the next layer's
//! `pool:`), GlobalAveragePool / GlobalMaxPool, activations and normalisations (BatchNorm is
//! folded: no MACs), Flatten / Reshape / Transpose / Squeeze / Unsqueeze / Identity / Dropout,
//! and the constant shape arithmetic (Constant, Shape, Concat of constants). Any other op is an
//! error naming it and its node.

pub mod graph;
pub mod proto;
pub mod shapes;

use crate::spec::{InputError, NetworkSpec};
use std::path::Path;

/// Whether `path` names an ONNX file (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// How to read the graph's input shape.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// The whole input shape (batch first); must agree with the graph's static dims.
    pub shape: Option<Vec<u64>>,
    /// The batch for a dynamic first dim (an instance's `workload.batch`, or 1).
    pub batch: Option<u64>,
}

/// Reads an ONNX file into a network named after the file.
pub fn load(path: &Path, opts: &InputOptions) -> Result<NetworkSpec, InputError> {
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
    let model = proto::ModelProto::decode(&bytes).map_err(|e| {
        InputError::new(path, "(file)", format!("not an ONNX model (protobuf): {e}"))
    })?;
    let graph = model
        .graph
        .as_ref()
        .filter(|g| !g.node.is_empty())
        .ok_or_else(|| InputError::new(path, "graph", "the model has no graph nodes"))?;
    let shape = input_shape(graph, path, opts)?;
    let name = path
        .file_stem()
        .map_or("network".into(), |s| s.to_string_lossy().into_owned());
    graph::network(graph, path, &shape, &name)
}

/// The static dims of a value (None when one is dynamic or missing).
pub fn static_shape(vi: &proto::ValueInfoProto) -> Option<Vec<u64>> {
    dims(vi)?
        .into_iter()
        .map(|d| d.ok())
        .collect::<Option<Vec<u64>>>()
}

/// The dims of a value: each a size, or the name (or `?`) of a dynamic dim.
fn dims(vi: &proto::ValueInfoProto) -> Option<Vec<Result<u64, String>>> {
    let shape = vi.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match (d.dim_value, &d.dim_param) {
                (Some(v), _) if v > 0 => Ok(v as u64),
                (_, Some(p)) if !p.is_empty() => Err(p.clone()),
                _ => Err("?".into()),
            })
            .collect(),
    )
}

/// The input shape: the first graph input that is not an initializer, its dynamic dims from
/// `opts` (a dynamic first dim from `opts.batch`).
fn input_shape(
    graph: &proto::GraphProto,
    path: &Path,
    opts: &InputOptions,
) -> Result<Vec<u64>, InputError> {
    let inits: std::collections::HashSet<_> =
        graph.initializer.iter().map(|t| t.name.clone()).collect();
    let (k, vi) = (graph.input.iter().enumerate())
        .find(|(_, vi)| !inits.contains(&vi.name))
        .ok_or_else(|| InputError::new(path, "graph.input", "the graph has no input"))?;
    let field = format!("graph.input[{k}] `{}`", vi.name.as_deref().unwrap_or(""));
    let e = |m: String| InputError::new(path, &field, m);
    let dims = dims(vi).ok_or_else(|| e("no tensor shape given".into()))?;
    if let Some(given) = &opts.shape {
        if given.len() != dims.len() || given.contains(&0) {
            return Err(e(format!(
                "--input-shape {given:?} does not fit the input's {} dims",
                dims.len()
            )));
        }
        if let Some((a, d)) = (dims.iter().zip(given).enumerate())
            .find_map(|(a, (d, g))| d.as_ref().ok().filter(|&d| d != g).map(|d| (a, d)))
        {
            return Err(e(format!(
                "--input-shape gives {} for dim {a}, the graph {d}",
                given[a]
            )));
        }
        return Ok(given.clone());
    }
    (dims.into_iter().enumerate())
        .map(|(a, d)| match d {
            Ok(v) => Ok(v),
            Err(_) if a == 0 && opts.batch.is_some() => Ok(opts.batch.unwrap_or(1)),
            Err(p) => Err(e(format!(
                "dim {a} is dynamic (`{p}`): give the whole shape with --input-shape \
                 (e.g. --input-shape 1,3,224,224; batch first)"
            ))),
        })
        .collect()
}
