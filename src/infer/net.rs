//! An ONNX graph as an executable float32 network: its nodes in file order (ONNX stores them
//! topologically sorted) over numbered values, its quantisable layers (every Conv and Gemm) with
//! their weights, and a run over one batch with fake quantisation of chosen layers' weights and
//! input edges (and an observer of each layer's input, for calibration). Operators: Conv (any
//! groups, strides and pads; dilation 1), Gemm (`transA` 0), Relu, Clip, Add (same shapes),
//! GlobalAveragePool, Flatten (axis 1) and Identity; any other is refused, naming the node.

use super::kernels::{self, ConvGeom, Tensor};
use crate::onnx::proto::{AttributeProto, ModelProto, NodeProto, TensorProto};
use crate::spec::InputError;
use std::collections::BTreeMap;
use std::path::Path;

/// A quantisable layer: its node name, weights (row = output channel) and bias.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub name: String,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub kind: LayerOp,
}

/// What a layer computes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LayerOp {
    Conv(ConvGeom),
    /// Output features and alpha (the bias is already scaled by beta).
    Gemm {
        m: usize,
        alpha: f32,
    },
}

impl Layer {
    /// Output channels (weight rows).
    pub fn rows(&self) -> usize {
        match self.kind {
            LayerOp::Conv(g) => g.m,
            LayerOp::Gemm { m, .. } => m,
        }
    }
}

/// One operator of the graph.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A layer (index into [`Network::layers`]).
    Layer(usize),
    Clip(f32, f32),
    Add,
    GlobalAveragePool,
    Flatten,
    Identity,
}

#[derive(Debug, Clone)]
struct Node {
    op: Op,
    /// Value ids of its data inputs (weights are held by the layer).
    inputs: Vec<usize>,
    output: usize,
}

/// The executable network.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub layers: Vec<Layer>,
    nodes: Vec<Node>,
    /// Number of values (0 is the network input).
    values: usize,
    output: usize,
    /// Per value, the index of the last node reading it (freed after it).
    last_use: Vec<usize>,
    /// The input's channels (the images' planes must match rows x cols).
    pub input_shape: (usize, usize, usize),
}

/// Per layer: the weights to use (None: its float weights) and its input's quantisation.
pub(crate) struct RunQuant {
    pub weights: Vec<Option<Vec<f32>>>,
    pub inputs: Vec<Option<(super::quant::InputRange, u32)>>,
}

impl Network {
    /// Reads `path` and builds the network (input `[N, C, H, W]` with fixed C, H, W).
    pub fn load(path: &Path) -> Result<Network, InputError> {
        let bytes = std::fs::read(path)
            .map_err(|e| InputError::new(path, "(file)", format!("cannot read: {e}")))?;
        let model = ModelProto::decode(&bytes)
            .map_err(|e| InputError::new(path, "(file)", format!("not an ONNX model: {e}")))?;
        let graph = model
            .graph
            .ok_or_else(|| InputError::new(path, "graph", "the model has no graph"))?;
        let inits: BTreeMap<&str, &TensorProto> = (graph.initializer.iter())
            .filter_map(|t| t.name.as_deref().map(|n| (n, t)))
            .collect();
        let input = (graph.input.iter())
            .find(|v| v.name.as_deref().is_some_and(|n| !inits.contains_key(n)))
            .ok_or_else(|| InputError::new(path, "graph.input", "no data input"))?;
        let dims: Vec<Option<i64>> = (input.r#type.as_ref())
            .and_then(|t| t.tensor_type.as_ref()?.shape.as_ref())
            .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
            .unwrap_or_default();
        let input_shape = match dims[..] {
            [_, Some(c), Some(h), Some(w)] if c > 0 && h > 0 && w > 0 => {
                (c as usize, h as usize, w as usize)
            }
            _ => {
                let why = format!("must be [N, C, H, W] with fixed C, H, W, got {dims:?}");
                return Err(InputError::new(path, "graph.input[0].type", why));
            }
        };
        let mut b = Builder {
            path,
            inits,
            ids: BTreeMap::from([(input.name.clone().unwrap_or_default(), 0)]),
            shapes: vec![input_shape],
            layers: Vec::new(),
            nodes: Vec::new(),
        };
        for node in &graph.node {
            b.node(node)?;
        }
        b.finish()
    }

    /// Runs one batch of images (`n` planes, image after image): the logits `[n, classes]`
    /// row-major. `observe` sees each layer's input (layer index, values) before quantisation.
    pub fn run(
        &self,
        images: &[f32],
        n: usize,
        q: Option<&RunQuant>,
        mut observe: impl FnMut(usize, &[f32]),
    ) -> Vec<f32> {
        let (c, h, w) = self.input_shape;
        let mut vals: Vec<Option<Tensor>> = vec![None; self.values];
        let mut x = Tensor::zeros(c, n, h, w);
        // Images are [N, C, H, W]; the layout is channel-major.
        for (i, img) in images.chunks_exact(c * h * w).enumerate() {
            for (ch, plane) in img.chunks_exact(h * w).enumerate() {
                x.data[(ch * n + i) * h * w..(ch * n + i + 1) * h * w].copy_from_slice(plane);
            }
        }
        vals[0] = Some(x);
        for (k, node) in self.nodes.iter().enumerate() {
            // An element-wise op takes its first input over when nothing reads it later.
            let first = node.inputs[0];
            let last_reader = self.last_use[first] == k && !node.inputs[1..].contains(&first);
            let owned = match node.op {
                Op::Clip(..) | Op::Add | Op::Identity if last_reader => vals[first].take(),
                _ => None,
            };
            let out = self.step(node, &vals, owned, q, &mut observe);
            for &i in &node.inputs {
                if self.last_use[i] == k {
                    vals[i] = None;
                }
            }
            vals[node.output] = Some(out);
        }
        let y = vals[self.output].take().expect("the output is computed");
        // Channel-major [classes][n] → row-major [n][classes].
        let mut logits = vec![0.0; y.data.len()];
        for (cls, row) in y.data.chunks_exact(y.n).enumerate() {
            for (i, v) in row.iter().enumerate() {
                logits[i * y.c + cls] = *v;
            }
        }
        logits
    }

    /// One node's output (`owned`: its first input, when the node may consume it).
    fn step(
        &self,
        node: &Node,
        vals: &[Option<Tensor>],
        owned: Option<Tensor>,
        q: Option<&RunQuant>,
        observe: &mut impl FnMut(usize, &[f32]),
    ) -> Tensor {
        let arg = |i: usize| vals[node.inputs[i]].as_ref().expect("computed before use");
        match node.op {
            Op::Layer(l) => {
                let layer = &self.layers[l];
                let x = arg(0);
                observe(l, &x.data);
                let quantised = q.and_then(|q| q.inputs[l].as_ref()).map(|(range, bits)| {
                    let mut xq = x.clone();
                    super::quant::quantise_activations(&mut xq.data, range, *bits);
                    xq
                });
                let x = quantised.as_ref().unwrap_or(x);
                let wts = q.and_then(|q| q.weights[l].as_deref());
                let wts = wts.unwrap_or(&layer.weights);
                match layer.kind {
                    LayerOp::Conv(g) => kernels::conv(x, &g, wts, &layer.bias),
                    LayerOp::Gemm { m, alpha } => {
                        kernels::gemm_layer(x, m, wts, alpha, &layer.bias)
                    }
                }
            }
            Op::Clip(lo, hi) => {
                let mut y = owned.unwrap_or_else(|| arg(0).clone());
                kernels::clip(&mut y, lo, hi);
                y
            }
            Op::Add => {
                let mut y = owned.unwrap_or_else(|| arg(0).clone());
                kernels::add(&mut y, arg(1));
                y
            }
            Op::GlobalAveragePool => kernels::global_average_pool(arg(0)),
            Op::Flatten => kernels::flatten(arg(0)),
            Op::Identity => owned.unwrap_or_else(|| arg(0).clone()),
        }
    }
}

/// An initializer's float values and dims.
type Init = (Vec<f32>, Vec<i64>);

/// Builds the network node by node, tracking each value's shape (C, H, W).
struct Builder<'a> {
    path: &'a Path,
    inits: BTreeMap<&'a str, &'a TensorProto>,
    ids: BTreeMap<String, usize>,
    shapes: Vec<(usize, usize, usize)>,
    layers: Vec<Layer>,
    nodes: Vec<Node>,
}

impl<'a> Builder<'a> {
    fn err(&self, node: &NodeProto, why: impl Into<String>) -> InputError {
        let name = node.name.clone().unwrap_or_default();
        let op = node.op_type.clone().unwrap_or_default();
        InputError::new(self.path, format!("node `{name}` ({op})"), why)
    }

    /// The value id and shape of a node's data input `i`.
    fn value(
        &self,
        node: &NodeProto,
        i: usize,
    ) -> Result<(usize, (usize, usize, usize)), InputError> {
        let name = node.input.get(i).map(String::as_str).unwrap_or("");
        let id = *(self.ids.get(name))
            .ok_or_else(|| self.err(node, format!("input `{name}` is not computed before it")))?;
        Ok((id, self.shapes[id]))
    }

    /// The float values and dims of initializer input `i` (None when the input is absent).
    fn init(&self, node: &NodeProto, i: usize) -> Result<Option<Init>, InputError> {
        let Some(name) = node.input.get(i).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        let t = (self.inits.get(name.as_str()))
            .ok_or_else(|| self.err(node, format!("input `{name}` must be an initializer")))?;
        let v = (t.float_values())
            .ok_or_else(|| self.err(node, format!("initializer `{name}` is not float32")))?;
        let size: i64 = t.dims.iter().product();
        if size != v.len() as i64 {
            let why = format!(
                "initializer `{name}` has {} values for dims {:?}",
                v.len(),
                t.dims
            );
            return Err(self.err(node, why));
        }
        Ok(Some((v, t.dims.clone())))
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), InputError> {
        let op_type = node.op_type.as_deref().unwrap_or("");
        let (op, shape) = match op_type {
            "Conv" => self.conv(node)?,
            "Gemm" => self.gemm(node)?,
            "Relu" => (Op::Clip(0.0, f32::INFINITY), self.value(node, 0)?.1),
            "Clip" => self.clip(node)?,
            "Add" => {
                let (a, b) = (self.value(node, 0)?.1, self.value(node, 1)?.1);
                if a != b {
                    return Err(self.err(node, format!("shapes {a:?} and {b:?} differ")));
                }
                (Op::Add, a)
            }
            "GlobalAveragePool" => (Op::GlobalAveragePool, (self.value(node, 0)?.1 .0, 1, 1)),
            "Flatten" => {
                if attr(node, "axis").and_then(|a| a.i).unwrap_or(1) != 1 {
                    return Err(self.err(node, "only axis 1 is supported"));
                }
                let (c, h, w) = self.value(node, 0)?.1;
                (Op::Flatten, (c * h * w, 1, 1))
            }
            "Identity" => (Op::Identity, self.value(node, 0)?.1),
            other => {
                let why = format!("operator `{other}` is not supported by qmap's inference \
                                   (Conv, Gemm, Relu, Clip, Add, GlobalAveragePool, Flatten, Identity)");
                return Err(self.err(node, why));
            }
        };
        let inputs = match op {
            Op::Layer(_) | Op::Clip(..) | Op::GlobalAveragePool | Op::Flatten | Op::Identity => {
                vec![self.value(node, 0)?.0]
            }
            Op::Add => vec![self.value(node, 0)?.0, self.value(node, 1)?.0],
        };
        let out = node.output.first().cloned().unwrap_or_default();
        self.ids.insert(out, self.shapes.len());
        let output = self.shapes.len();
        self.shapes.push(shape);
        self.nodes.push(Node { op, inputs, output });
        Ok(())
    }

    fn conv(&mut self, node: &NodeProto) -> Result<(Op, (usize, usize, usize)), InputError> {
        let (_, (c, h, w)) = self.value(node, 0)?;
        let (weights, dims) = (self.init(node, 1)?)
            .ok_or_else(|| self.err(node, "the weights (input 1) are missing"))?;
        let ints = |k: &str, d: Vec<i64>| attr(node, k).map_or(d, |a| a.ints.clone());
        if attr(node, "auto_pad")
            .and_then(|a| a.s.clone())
            .is_some_and(|s| s != b"NOTSET")
        {
            return Err(self.err(node, "auto_pad is not supported (give pads)"));
        }
        if ints("dilations", vec![1, 1]).iter().any(|&d| d != 1) {
            return Err(self.err(node, "dilations other than 1 are not supported"));
        }
        let groups = attr(node, "group").and_then(|a| a.i).unwrap_or(1);
        let strides = ints("strides", vec![1, 1]);
        let pads = ints("pads", vec![0; 4]);
        let ok = dims.len() == 4
            && dims.iter().all(|&d| d > 0)
            && groups > 0
            && strides.len() == 2
            && strides.iter().all(|&s| s > 0)
            && pads.len() == 4
            && pads.iter().all(|&p| p >= 0);
        if !ok {
            let why = format!(
                "a 2-D conv needs 4-D weights, 2 strides and 4 pads; got weights \
                               {dims:?}, strides {strides:?}, pads {pads:?}, group {groups}"
            );
            return Err(self.err(node, why));
        }
        let u = |v: i64| v as usize;
        let g = ConvGeom {
            m: u(dims[0]),
            c,
            groups: u(groups),
            r: u(dims[2]),
            s: u(dims[3]),
            stride: (u(strides[0]), u(strides[1])),
            pads: [u(pads[0]), u(pads[1]), u(pads[2]), u(pads[3])],
        };
        if !c.is_multiple_of(g.groups)
            || !g.m.is_multiple_of(g.groups)
            || u(dims[1]) * g.groups != c
        {
            let why = format!("weights {dims:?} with group {groups} do not fit {c} input channels");
            return Err(self.err(node, why));
        }
        let (p, q) = (g.out_size(h, w))
            .ok_or_else(|| self.err(node, format!("the kernel does not fit the {h}x{w} input")))?;
        let bias = self.bias(node, g.m, 1.0)?;
        Ok((
            self.layer(node, weights, bias, LayerOp::Conv(g)),
            (g.m, p, q),
        ))
    }

    fn gemm(&mut self, node: &NodeProto) -> Result<(Op, (usize, usize, usize)), InputError> {
        let (_, (k, h, w)) = self.value(node, 0)?;
        if (h, w) != (1, 1) {
            return Err(self.err(node, "the input must be 2-D [N, K] (Flatten it)"));
        }
        let int = |n: &str| attr(node, n).and_then(|a| a.i).unwrap_or(0);
        let float = |n: &str| attr(node, n).and_then(|a| a.f).unwrap_or(1.0);
        if int("transA") != 0 {
            return Err(self.err(node, "transA = 1 is not supported"));
        }
        let (b, dims) =
            (self.init(node, 1)?).ok_or_else(|| self.err(node, "B (input 1) is missing"))?;
        let trans_b = int("transB") != 0;
        let (m, kb) = match dims[..] {
            [r, c] if trans_b => (r as usize, c as usize),
            [r, c] => (c as usize, r as usize),
            _ => return Err(self.err(node, format!("B must be 2-D, got {dims:?}"))),
        };
        if kb != k {
            return Err(self.err(node, format!("B {dims:?} does not fit {k} input features")));
        }
        // Weights kept as [M, K] (row = output feature, the quantisation's channel axis).
        let weights = if trans_b {
            b
        } else {
            (0..m * k).map(|i| b[(i % k) * m + i / k]).collect()
        };
        let bias = self.bias(node, m, float("beta"))?;
        let op = LayerOp::Gemm {
            m,
            alpha: float("alpha"),
        };
        Ok((self.layer(node, weights, bias, op), (m, 1, 1)))
    }

    /// Input 2 as one bias per output channel, times `beta` (zeros when absent).
    fn bias(&self, node: &NodeProto, m: usize, beta: f32) -> Result<Vec<f32>, InputError> {
        match self.init(node, 2)? {
            None => Ok(vec![0.0; m]),
            Some((v, _)) if v.len() == m => Ok(v.into_iter().map(|x| beta * x).collect()),
            Some((v, _)) if v.len() == 1 => Ok(vec![beta * v[0]; m]),
            Some((v, _)) => Err(self.err(node, format!("{} bias values for {m} outputs", v.len()))),
        }
    }

    fn layer(&mut self, node: &NodeProto, weights: Vec<f32>, bias: Vec<f32>, kind: LayerOp) -> Op {
        self.layers.push(Layer {
            name: node.name.clone().unwrap_or_default(),
            weights,
            bias,
            kind,
        });
        Op::Layer(self.layers.len() - 1)
    }

    fn clip(&self, node: &NodeProto) -> Result<(Op, (usize, usize, usize)), InputError> {
        let bound = |i: usize, name: &str, default: f32| -> Result<f32, InputError> {
            if let Some((v, _)) = self.init(node, i)? {
                return (v.len() == 1)
                    .then(|| v[0])
                    .ok_or_else(|| self.err(node, format!("{name} must be one value")));
            }
            Ok(attr(node, name).and_then(|a| a.f).unwrap_or(default))
        };
        let (lo, hi) = (
            bound(1, "min", f32::NEG_INFINITY)?,
            bound(2, "max", f32::INFINITY)?,
        );
        Ok((Op::Clip(lo, hi), self.value(node, 0)?.1))
    }

    /// The network, its output the last node's (checked to be `[N, classes]`).
    fn finish(self) -> Result<Network, InputError> {
        let last = self
            .nodes
            .last()
            .ok_or_else(|| InputError::new(self.path, "graph.node", "the graph has no nodes"))?;
        let (classes, h, w) = self.shapes[last.output];
        if (h, w) != (1, 1) || self.layers.is_empty() {
            let why =
                format!("the output must be logits [N, classes], got [N, {classes}, {h}, {w}]");
            return Err(InputError::new(self.path, "graph.output", why));
        }
        let mut last_use = vec![usize::MAX; self.shapes.len()];
        for (k, n) in self.nodes.iter().enumerate() {
            for &i in &n.inputs {
                last_use[i] = k;
            }
        }
        Ok(Network {
            output: last.output,
            values: self.shapes.len(),
            input_shape: self.shapes[0],
            last_use,
            layers: self.layers,
            nodes: self.nodes,
        })
    }
}

/// A node's attribute by name.
fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}
