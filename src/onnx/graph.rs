//! An ONNX graph walked in node order into a qmap network: each Conv, Gemm and MatMul becomes
//! a layer (a MatMul of two activations a `matmul` layer); every other supported op only moves shapes, a
//! pending pooling and the producing layer along the activation it passes on.
//!
//! The activation chain: a layer's producer is the layer whose output it reads (`input:` in
//! the YAML, left out for the previous layer). An element-wise op of several activations (a
//! residual Add) passes on the operand with the most elements, the latest layer among equals,
//! and that layer gets a `note` naming the others, as `models/nets/mobilenet_v2.yaml` records
//! its residual adds. A pooling before a layer becomes the layer's `pool:`; a global pooling
//! before an fc layer is left implicit (fc reads the channels).

use super::proto::{GraphProto, NodeProto, TensorProto};
use super::shapes::{self, attr_int, attr_ints, attr_str, Window};
use crate::spec::{InputError, InputShape, LayerKind, LayerSpec, NetworkSpec, Pair, PoolSpec};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Where an activation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Src {
    /// The network input.
    Input,
    /// The output of layer i.
    Layer(usize),
    /// A constant (initializer, Constant node, or computed from constants only).
    Const,
}

/// Where a window op (Conv, pooling) puts its window, per axis [H, W].
struct Placed {
    out: [u64; 2],
    pad: [u64; 2],
    stride: [u64; 2],
}

/// A pooling not yet consumed by a layer.
#[derive(Debug, Clone, Copy)]
struct Pool {
    spec: PoolSpec,
    global: bool,
}

/// What the walker knows of one tensor.
#[derive(Debug, Clone)]
struct Value {
    shape: Vec<u64>,
    src: Src,
    pool: Option<Pool>,
    /// The integer values of a small constant (shapes and axes).
    ints: Option<Vec<i64>>,
}

/// Unary ops and normalisations: the output has the first input's shape (no MACs counted).
const UNARY: &[&str] = &[
    "Relu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Tanh",
    "Gelu",
    "Erf",
    "Softmax",
    "LogSoftmax",
    "Softplus",
    "Mish",
    "Swish",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Neg",
    "Abs",
    "Cast",
    "Identity",
    "Dropout",
    "BatchNormalization",
    "LayerNormalization",
    "InstanceNormalization",
];

/// Element-wise ops of several operands (broadcast).
const ELEMENTWISE: &[&str] = &["Add", "Sum", "Sub", "Mul", "Div", "Pow", "Max", "Min"];

/// Walks a graph into a network.
pub struct Walker<'a> {
    file: &'a Path,
    values: HashMap<String, Value>,
    layers: Vec<LayerSpec>,
    producers: Vec<Src>,
    names: HashSet<String>,
    /// The network input's width (P of what reads it), as [`input_shape`] gives it.
    input_width: Option<u64>,
    /// The node being walked (index, name, op) for error messages.
    at: (usize, String, String),
}

/// The graph's network: its layers, the input shape (batch first) and the network's name.
pub fn network(
    graph: &GraphProto,
    file: &Path,
    input: &[u64],
    name: &str,
) -> Result<NetworkSpec, InputError> {
    let mut w = Walker {
        file,
        values: HashMap::new(),
        layers: Vec::new(),
        producers: Vec::new(),
        names: HashSet::new(),
        input_width: input_shape(input).map(|s| s.width),
        at: (0, String::new(), String::new()),
    };
    w.seed(graph, input);
    for (i, n) in graph.node.iter().enumerate() {
        let op = n.op_type.clone().unwrap_or_default();
        w.at = (i, n.name.clone().unwrap_or_default(), op.clone());
        w.node(n, &op)?;
    }
    if w.layers.is_empty() {
        return Err(InputError::new(
            file,
            "graph",
            "no layer with MACs (Conv, Gemm, MatMul) in the graph",
        ));
    }
    Ok(NetworkSpec {
        name: name.to_string(),
        source: Some(format!(
            "Imported from the ONNX file {} by `qmap import`.",
            file.file_name()
                .map_or(String::new(), |f| f.to_string_lossy().into())
        )),
        input: input_shape(input),
        layers: w.finish(),
    })
}

/// The network's `input:` (channels, height, width) for an image [N, C, H, W] or a sequence
/// [N, S, K] (channels K along a width S).
fn input_shape(input: &[u64]) -> Option<InputShape> {
    match *input {
        [_, c, h, w] => Some(InputShape {
            channels: c,
            height: h,
            width: w,
        }),
        [_, s, k] => Some(InputShape {
            channels: k,
            height: 1,
            width: s,
        }),
        _ => None,
    }
}

impl Walker<'_> {
    /// The graph's constants (initializers, and graph inputs after the first: weights given as
    /// inputs with static shapes) and its input.
    fn seed(&mut self, graph: &GraphProto, input: &[u64]) {
        for t in &graph.initializer {
            self.values
                .insert(t.name.clone().unwrap_or_default(), constant(t));
        }
        let mut first = true;
        for vi in &graph.input {
            let name = vi.name.clone().unwrap_or_default();
            if self.values.contains_key(&name) {
                continue;
            }
            let value = if first {
                first = false;
                Value {
                    shape: input.to_vec(),
                    src: Src::Input,
                    pool: None,
                    ints: None,
                }
            } else {
                Value {
                    shape: super::static_shape(vi).unwrap_or_default(),
                    src: Src::Const,
                    pool: None,
                    ints: None,
                }
            };
            self.values.insert(name, value);
        }
    }

    /// An error about the current node.
    fn err(&self, message: impl Into<String>) -> InputError {
        let (i, name, op) = &self.at;
        InputError::new(
            self.file,
            format!("graph.node[{i}] `{name}` ({op})"),
            message,
        )
    }

    /// Input `k` of node `n`.
    fn get(&self, n: &NodeProto, k: usize) -> Result<&Value, InputError> {
        let name = n
            .input
            .get(k)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.err(format!("input {k} is missing")))?;
        self.values.get(name).ok_or_else(|| {
            self.err(format!(
                "input `{name}` is not produced earlier in the graph"
            ))
        })
    }

    /// Input `k` as an activation (not a constant).
    fn activation(&self, n: &NodeProto, k: usize) -> Result<Value, InputError> {
        let v = self.get(n, k)?;
        if v.src == Src::Const {
            return Err(self.err(format!("input {k} is a constant, not an activation")));
        }
        Ok(v.clone())
    }

    /// Sets output `k` of node `n`.
    fn set(&mut self, n: &NodeProto, k: usize, v: Value) {
        if let Some(name) = n.output.get(k).filter(|s| !s.is_empty()) {
            self.values.insert(name.clone(), v);
        }
    }

    /// Walks one node.
    fn node(&mut self, n: &NodeProto, op: &str) -> Result<(), InputError> {
        match op {
            "Conv" => self.conv(n),
            "Gemm" | "MatMul" => self.matmul(n, op),
            "MaxPool" | "AveragePool" => self.pool(n),
            "GlobalAveragePool" | "GlobalMaxPool" => self.global_pool(n),
            "Flatten" | "Reshape" | "Transpose" | "Squeeze" | "Unsqueeze" => self.reshape(n, op),
            "Constant" => self.constant_node(n),
            "Shape" => {
                let v = self.get(n, 0)?;
                let ints = v.shape.iter().map(|&d| d as i64).collect::<Vec<_>>();
                let out = const_ints(ints);
                self.set(n, 0, out);
                Ok(())
            }
            "Concat" => self.concat(n),
            _ if UNARY.contains(&op) => {
                let v = self.get(n, 0)?.clone();
                self.set(n, 0, v);
                Ok(())
            }
            _ if ELEMENTWISE.contains(&op) => self.elementwise(n, op),
            _ => Err(self.err(format!(
                "unsupported ONNX op `{op}`: qmap imports Conv, Gemm and MatMul as layers and \
                 passes element-wise ops, pooling, activations, normalisations and reshapes"
            ))),
        }
    }

    /// A Constant node's tensor.
    fn constant_node(&mut self, n: &NodeProto) -> Result<(), InputError> {
        let t = shapes::attr(n, "value")
            .and_then(|a| a.t.as_ref())
            .ok_or_else(|| self.err("only Constant nodes with a `value` tensor are supported"))?;
        let v = constant(t);
        self.set(n, 0, v);
        Ok(())
    }

    /// Flatten, Reshape, Transpose, Squeeze, Unsqueeze: a new shape, the rest passed on.
    fn reshape(&mut self, n: &NodeProto, op: &str) -> Result<(), InputError> {
        let mut v = self.get(n, 0)?.clone();
        let second = |k: usize| self.get(n, k).ok().and_then(|v| v.ints.clone());
        let shape = match op {
            "Flatten" => shapes::flatten(&v.shape, attr_int(n, "axis").unwrap_or(1)),
            "Reshape" => {
                let spec =
                    second(1).ok_or_else(|| self.err("the target shape must be a constant"))?;
                shapes::reshape(&v.shape, &spec)
            }
            "Transpose" => shapes::transpose(&v.shape, attr_ints(n, "perm").as_deref()),
            "Squeeze" => {
                let axes = attr_ints(n, "axes").or_else(|| second(1));
                shapes::squeeze(&v.shape, axes.as_deref())
            }
            _ => {
                let axes = attr_ints(n, "axes")
                    .or_else(|| second(1))
                    .ok_or_else(|| self.err("the axes must be a constant"))?;
                shapes::unsqueeze(&v.shape, &axes)
            }
        };
        v.shape = shape.ok_or_else(|| {
            self.err(format!(
                "cannot apply it to an input of shape {:?}",
                v.shape
            ))
        })?;
        if op != "Unsqueeze" && op != "Squeeze" {
            v.ints = None;
        }
        self.set(n, 0, v);
        Ok(())
    }

    /// Concat: of constants (shape arithmetic) only; a concat of activations has no single
    /// producer, which qmap's chain needs.
    fn concat(&mut self, n: &NodeProto) -> Result<(), InputError> {
        let mut ints = Vec::new();
        for k in 0..n.input.len() {
            let v = self.get(n, k)?;
            match (&v.ints, v.src) {
                (Some(x), Src::Const) => ints.extend_from_slice(x),
                _ => {
                    return Err(self.err(
                        "a Concat of activations is not supported: a qmap layer reads one \
                         producer (the activation chain has no channel concatenation)",
                    ))
                }
            }
        }
        self.set(n, 0, const_ints(ints));
        Ok(())
    }

    /// An element-wise op: a constant operand (a bias, a scale) is passed over; of several
    /// activations the largest (the latest layer among equals) is passed on, and its layer's
    /// note names the others.
    fn elementwise(&mut self, n: &NodeProto, op: &str) -> Result<(), InputError> {
        let inputs: Vec<Value> = (0..n.input.len())
            .map(|k| self.get(n, k).cloned())
            .collect::<Result<_, _>>()?;
        let shapes: Vec<&[u64]> = inputs.iter().map(|v| v.shape.as_slice()).collect();
        let shape = shapes::broadcast(&shapes)
            .ok_or_else(|| self.err(format!("operand shapes {shapes:?} do not broadcast")))?;
        let active: Vec<&Value> = inputs.iter().filter(|v| v.src != Src::Const).collect();
        let Some(main) = active
            .iter()
            .max_by_key(|v| (elements(&v.shape), order(v.src)))
        else {
            let out = Value {
                shape,
                ints: None,
                ..inputs[0].clone()
            };
            self.set(n, 0, out);
            return Ok(());
        };
        let mut out = (*main).clone();
        out.shape = shape;
        if let (Src::Layer(l), true) = (main.src, active.len() > 1) {
            let others: Vec<String> = (active.iter())
                .filter(|v| !std::ptr::eq(**v, *main))
                .map(|v| self.describe(v.src))
                .collect();
            let what = if matches!(op, "Add" | "Sum") {
                "summed with"
            } else {
                "combined element-wise with"
            };
            let note = format!(
                "output {what} {} (ONNX {op} node `{}`); the next layer reads the result",
                others.join(", "),
                self.at.1
            );
            let layer = &mut self.layers[l];
            layer.note = Some(match layer.note.take() {
                Some(old) => format!("{old}; {note}"),
                None => note,
            });
        }
        self.set(n, 0, out);
        Ok(())
    }

    /// "the output of `x`" or "the network input".
    fn describe(&self, src: Src) -> String {
        match src {
            Src::Layer(l) => format!("the output of {}", self.layers[l].name),
            _ => "the network input".into(),
        }
    }

    /// MaxPool / AveragePool: a pending `pool:` of the next layer.
    fn pool(&mut self, n: &NodeProto) -> Result<(), InputError> {
        let mut v = self.activation(n, 0)?;
        if v.shape.len() != 4 {
            return Err(self.err("only 2-D pooling (a 4-D input) is supported"));
        }
        if v.pool.is_some() {
            return Err(self.err("two poolings with no layer between them are not supported"));
        }
        let kernel = attr_ints(n, "kernel_shape")
            .filter(|k| k.len() == 2)
            .ok_or_else(|| self.err("kernel_shape: two values needed"))?;
        let dilations = attr_ints(n, "dilations").unwrap_or(vec![1, 1]);
        if dilations.iter().any(|&d| d != 1) {
            return Err(self.err("dilated pooling is not supported"));
        }
        let at = self.windows(n, &v.shape, [kernel[0], kernel[1]], [1, 1])?;
        v.shape = vec![v.shape[0], v.shape[1], at.out[0], at.out[1]];
        v.pool = Some(Pool {
            spec: PoolSpec {
                kernel: pair(kernel[1] as u64, kernel[0] as u64),
                stride: pair(at.stride[1], at.stride[0]),
                pad: Some(pair(at.pad[1], at.pad[0])).filter(|p| p.w() + p.h() > 0),
            },
            global: false,
        });
        self.set(n, 0, v);
        Ok(())
    }

    /// A window op's (Conv, pooling) output extents, symmetric pads and strides, from its
    /// `strides`, `pads`, `auto_pad` and `ceil_mode`.
    fn windows(
        &self,
        n: &NodeProto,
        x: &[u64],
        kernel: [i64; 2],
        dilation: [i64; 2],
    ) -> Result<Placed, InputError> {
        let strides = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
        let pads = attr_ints(n, "pads").unwrap_or(vec![0, 0, 0, 0]);
        let auto = attr_str(n, "auto_pad").unwrap_or("NOTSET".into());
        let ceil = attr_int(n, "ceil_mode").unwrap_or(0) == 1;
        let positive = |v: &[i64], len: usize| v.len() == len && v.iter().all(|&x| x > 0);
        if !positive(&strides, 2) || !positive(&kernel, 2) || !positive(&dilation, 2) {
            return Err(self.err("strides, kernel and dilations need two positive values each"));
        }
        if pads.len() != 4 || pads.iter().any(|&p| p < 0) {
            return Err(self.err("pads: four values >= 0 needed"));
        }
        let mut out = [0u64; 2];
        let mut sym = [0u64; 2];
        for a in 0..2 {
            let win = Window {
                input: x[2 + a],
                kernel: kernel[a] as u64,
                stride: strides[a] as u64,
                dilation: dilation[a] as u64,
            };
            let (b, e) = match auto.as_str() {
                "NOTSET" | "" => (pads[a] as u64, pads[a + 2] as u64),
                mode => win
                    .auto_pad(mode)
                    .ok_or_else(|| self.err(format!("auto_pad `{mode}` is not supported")))?,
            };
            let o = win
                .output(b, e, ceil)
                .ok_or_else(|| self.err("the window is larger than its padded input"))?;
            let p = win
                .symmetric_pad(b, e)
                .filter(|&p| win.output(p, p, false) == Some(o));
            sym[a] = p.ok_or_else(|| {
                self.err(format!(
                    "pads {b} (begin) and {e} (end) on axis {} give an output of {o}, which no \
                     symmetric padding gives (qmap records one pad per axis)",
                    2 + a
                ))
            })?;
            out[a] = o;
        }
        let stride = [strides[0] as u64, strides[1] as u64];
        Ok(Placed {
            out,
            pad: sym,
            stride,
        })
    }

    /// GlobalAveragePool / GlobalMaxPool: a window over the whole image.
    fn global_pool(&mut self, n: &NodeProto) -> Result<(), InputError> {
        let mut v = self.activation(n, 0)?;
        if v.shape.len() != 4 || v.pool.is_some() {
            return Err(self.err("a 4-D input with no pending pooling is needed"));
        }
        v.pool = Some(Pool {
            spec: PoolSpec {
                kernel: pair(v.shape[3], v.shape[2]),
                stride: Pair::Both(1),
                pad: None,
            },
            global: true,
        });
        v.shape = vec![v.shape[0], v.shape[1], 1, 1];
        self.set(n, 0, v);
        Ok(())
    }

    /// Conv: a conv2d layer (grouped with `groups:`), or depthwise when groups = C = M.
    fn conv(&mut self, n: &NodeProto) -> Result<(), InputError> {
        let x = self.activation(n, 0)?;
        let w = self.get(n, 1)?.clone();
        if w.src != Src::Const {
            return Err(self.err("the weights (input 1) must be a constant"));
        }
        let (&[b, c, _, _], &[m, cg, kh, kw]) = (x.shape.as_slice(), w.shape.as_slice()) else {
            return Err(self.err(format!(
                "only 2-D convolutions are supported (input shape {:?}, weights {:?})",
                x.shape, w.shape
            )));
        };
        let g = attr_int(n, "group").unwrap_or(1).max(1) as u64;
        if cg * g != c {
            return Err(self.err(format!(
                "weights {:?} with {g} groups do not fit {c} input channels",
                w.shape
            )));
        }
        let dil = attr_ints(n, "dilations").unwrap_or(vec![1, 1]);
        let dilation = [*dil.first().unwrap_or(&1), *dil.get(1).unwrap_or(&1)];
        let at = self.windows(n, &x.shape, [kh as i64, kw as i64], dilation)?;
        let out = at.out;
        let mut l = self.layer(if g == c && m == c && g > 1 {
            LayerKind::Depthwise
        } else {
            LayerKind::Conv2d
        });
        if l.kind == LayerKind::Depthwise {
            l.g = Some(c);
        } else {
            (l.c, l.m) = (Some(c), Some(m));
            l.groups = (g > 1).then_some(g);
        }
        (l.n, l.p, l.q, l.r, l.s) = (b, out[1], out[0], kw, kh);
        l.stride = Some(pair(at.stride[1], at.stride[0]));
        l.pad = Some(pair(at.pad[1], at.pad[0]));
        let (dw, dh) = (dilation[1] as u64, dilation[0] as u64);
        l.dilation = (dw * dh > 1).then(|| pair(dw, dh));
        l.pool = x.pool.map(|p| p.spec);
        self.push(n, l, &x, vec![b, m, out[0], out[1]]);
        Ok(())
    }

    /// Gemm, or MatMul with a constant second operand: an fc layer (a 2-D input) or a 1x1
    /// conv2d along P (the sequence) for a [.., S, K] input whose producer is S wide.
    fn matmul(&mut self, n: &NodeProto, op: &str) -> Result<(), InputError> {
        let a = self.activation(n, 0)?;
        let bv = self.get(n, 1)?.clone();
        if bv.src != Src::Const {
            return self.matmul_activations(n, op, &a, &bv);
        }
        let trans = |k: &str| op == "Gemm" && attr_int(n, k).unwrap_or(0) == 1;
        let (rank, brank) = (a.shape.len(), bv.shape.len());
        if rank < 2 || brank != 2 || (op == "Gemm" && rank != 2) {
            return Err(self.err(format!(
                "shapes {:?} x {:?} are not supported (a [.., K] activation times a [K, M] \
                 constant)",
                a.shape, bv.shape
            )));
        }
        let (rows, k) = if trans("transA") {
            (a.shape[1], a.shape[0])
        } else {
            (a.shape[rank - 2], a.shape[rank - 1])
        };
        let (kb, m) = if trans("transB") {
            (bv.shape[1], bv.shape[0])
        } else {
            (bv.shape[0], bv.shape[1])
        };
        if k != kb {
            return Err(self.err(format!("inner dims differ: {:?} x {:?}", a.shape, bv.shape)));
        }
        let lead: u64 = a.shape[..rank - 2].iter().product();
        // A [.., S, K] input is a sequence along P when its producer's width is S (the chain
        // reads it so); otherwise (an image reshaped to a sequence) S is folded into N.
        let along_p = rank > 2 && a.pool.is_none() && self.width(a.src) == Some(rows);
        let mut l = self.layer(if along_p {
            LayerKind::Conv2d
        } else {
            LayerKind::Fc
        });
        (l.c, l.m) = (Some(k), Some(m));
        if along_p {
            (l.n, l.p) = (lead, rows);
        } else {
            l.n = lead * rows;
            l.pool = a.pool.filter(|p| !p.global).map(|p| p.spec);
        }
        let mut shape = a.shape.clone();
        *shape.last_mut().expect("rank >= 2") = m;
        if trans("transA") {
            shape = vec![rows, m];
        }
        self.push(n, l, &a, shape);
        Ok(())
    }

    /// MatMul of two activations (attention's QK^T and AV): a matmul layer, N the leading
    /// dims (batch × heads), P the rows, C the inner dim, M the columns; B's producer is its
    /// `input_b`.
    fn matmul_activations(
        &mut self,
        n: &NodeProto,
        op: &str,
        a: &Value,
        b: &Value,
    ) -> Result<(), InputError> {
        let (ra, rb) = (a.shape.len(), b.shape.len());
        let fits = op == "MatMul"
            && ra >= 2
            && ra == rb
            && a.shape[..ra - 2] == b.shape[..rb - 2]
            && a.shape[ra - 1] == b.shape[rb - 2]
            && a.pool.is_none()
            && b.pool.is_none();
        if !fits {
            return Err(self.err(format!(
                "a product of two activations needs MatMul of [.., P, C] x [.., C, M] with the                  same leading dims and no pending pooling (shapes {:?} x {:?})",
                a.shape, b.shape
            )));
        }
        let mut l = self.layer(LayerKind::Matmul);
        l.n = a.shape[..ra - 2].iter().product();
        (l.p, l.c, l.m) = (
            a.shape[ra - 2],
            Some(a.shape[ra - 1]),
            Some(b.shape[rb - 1]),
        );
        l.input_b = Some(match b.src {
            Src::Layer(j) => self.layers[j].name.clone(),
            _ => "input".into(),
        });
        let mut shape = a.shape.clone();
        shape[ra - 1] = b.shape[rb - 1];
        self.push(n, l, a, shape);
        Ok(())
    }

    /// The width (P) of an activation's producer, or of the network input.
    fn width(&self, src: Src) -> Option<u64> {
        match src {
            Src::Layer(j) => Some(self.layers[j].p),
            Src::Input => self.input_width,
            Src::Const => None,
        }
    }

    /// A layer of `kind` with every field at its default.
    fn layer(&self, kind: LayerKind) -> LayerSpec {
        LayerSpec {
            name: String::new(),
            kind,
            n: 1,
            c: None,
            m: None,
            g: None,
            groups: None,
            p: 1,
            q: 1,
            r: 1,
            s: 1,
            stride: None,
            dilation: None,
            pad: None,
            input: None,
            input_b: None,
            head: false,
            note: None,
            pool: None,
        }
    }

    /// Adds layer `l` of node `n`, reading `x`, with output shape `shape`.
    fn push(&mut self, n: &NodeProto, mut l: LayerSpec, x: &Value, shape: Vec<u64>) {
        l.name = self.unique_name(n);
        let index = self.layers.len();
        self.layers.push(l);
        self.producers.push(x.src);
        let out = Value {
            shape,
            src: Src::Layer(index),
            pool: None,
            ints: None,
        };
        self.set(n, 0, out);
    }

    /// The node's name made a YAML-friendly identifier (letters, digits, `_`), unique (`_2`,
    /// `_3`, ... appended); an unnamed node is named after its op and index.
    fn unique_name(&mut self, n: &NodeProto) -> String {
        let raw = n.name.clone().filter(|s| !s.is_empty());
        let raw = raw.unwrap_or_else(|| format!("{}_{}", self.at.2.to_lowercase(), self.at.0));
        let clean: String = raw
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let mut base = clean.trim_matches('_').to_string();
        if base.is_empty() || base == "input" {
            base = format!("{}_{}", self.at.2.to_lowercase(), self.at.0);
        }
        let mut name = base.clone();
        let mut k = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// The layers with their `input:` set where the producer is not the previous layer.
    fn finish(self) -> Vec<LayerSpec> {
        let names: Vec<String> = self.layers.iter().map(|l| l.name.clone()).collect();
        let mut layers = self.layers;
        for (i, l) in layers.iter_mut().enumerate() {
            l.input = match self.producers[i] {
                Src::Layer(j) if j + 1 == i => None,
                Src::Layer(j) => Some(names[j].clone()),
                _ if i == 0 => None,
                _ => Some("input".into()),
            };
        }
        layers
    }
}

/// A [w, h] pair, one value when equal.
fn pair(w: u64, h: u64) -> Pair {
    if w == h {
        Pair::Both(w)
    } else {
        Pair::Each([w, h])
    }
}

/// Number of elements of a shape.
fn elements(shape: &[u64]) -> u64 {
    shape.iter().product()
}

/// Order of a source in the graph (later layers are larger).
fn order(src: Src) -> i64 {
    match src {
        Src::Layer(l) => l as i64,
        _ => -1,
    }
}

/// An initializer or Constant's tensor: its shape and (for integers) values.
fn constant(t: &TensorProto) -> Value {
    Value {
        shape: t.dims.iter().map(|&d| d.max(0) as u64).collect(),
        src: Src::Const,
        pool: None,
        ints: t.int_values(),
    }
}

/// A 1-D integer constant.
fn const_ints(ints: Vec<i64>) -> Value {
    Value {
        shape: vec![ints.len() as u64],
        src: Src::Const,
        pool: None,
        ints: Some(ints),
    }
}
