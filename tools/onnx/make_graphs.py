#!/usr/bin/env python3
"""Writes the ONNX test graphs of qmap's importer (shapes only: no trained weights).

Each graph is built node by node with PyPI's `onnx` package (onnx.helper), the way a PyTorch
export lays them out (Conv, BatchNormalization, activation, residual Add, pooling, Flatten,
Gemm), with its weights as graph inputs of static shape instead of initializers, so the files
stay a few kB. Written to models/nets/:

  mobilenet_v2.onnx  MobileNetV2 1.0-224 (Sandler et al., arXiv:1801.04381, Table 2): node names
                     are the layer names of models/nets/mobilenet_v2.yaml, which its import
                     must equal layer for layer (tests/onnx.rs).
  resnet18.onnx      ResNet-18 (He et al., arXiv:1512.03385, Table 1; torchvision's resnet18),
                     224x224, batch 1, 1000 classes: 1,814,073,344 MACs, 11,678,912 weights
                     (torchvision's 11,689,512 parameters less 1,000 fc biases and 9,600
                     batch-norm parameters).
  onnx_features.onnx a small graph of the rarer cases: a grouped conv, TensorFlow-style
                     SAME_UPPER padding (asymmetric), a dilated conv, a max-pool, a
                     squeeze-excitation Mul, a Reshape/Transpose of the 8x8 image to a
                     64-long sequence and a MatMul on it (an fc over batch x sequence).
  bert_base_block.onnx one BERT-base encoder layer (sequence 128, hidden 768, 12 heads, FFN
                     3072) as a PyTorch export lays it out (MatMul, Reshape/Transpose to heads,
                     Q K^T and softmax(.) V as MatMuls of two activations, residual Adds,
                     LayerNormalization): its import equals models/nets/bert_base_block.yaml.
  onnx_bad_op.onnx   a ConvTranspose (an op with MACs that qmap does not import): an error.

Run: python3 tools/onnx/make_graphs.py (needs `pip install onnx`).
"""
import os

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "nets")


class Graph:
    """Nodes, weight inputs and the current activation of a graph being built."""

    def __init__(self, name, shape):
        self.name = name
        self.nodes = []
        self.inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)]
        self.x = "input"
        self.count = 0

    def weight(self, name, shape):
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def node(self, op, inputs, name, **attrs):
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def conv(self, name, x, cin, cout, k, stride=1, pad=None, groups=1, bn=True, act="Relu"):
        pad = k // 2 if pad is None else pad
        w = self.weight(f"{name}.weight", [cout, cin // groups, k, k])
        y = self.node("Conv", [x, w], name, kernel_shape=[k, k], strides=[stride, stride],
                      pads=[pad] * 4, group=groups, dilations=[1, 1])
        if bn:
            p = [self.weight(f"{name}.bn.{s}", [cout]) for s in ("g", "b", "m", "v")]
            y = self.node("BatchNormalization", [y] + p, f"{name}_bn")
        if act == "Relu":
            y = self.node("Relu", [y], f"{name}_relu")
        elif act == "Relu6":
            lo = self.node("Constant", [], f"{name}_lo", value=helper.make_tensor("v", TensorProto.FLOAT, [], [0.0]))
            hi = self.node("Constant", [], f"{name}_hi", value=helper.make_tensor("v", TensorProto.FLOAT, [], [6.0]))
            y = self.node("Clip", [y, lo, hi], f"{name}_relu6")
        return y

    def head(self, x, cin, classes):
        y = self.node("GlobalAveragePool", [x], "gap")
        y = self.node("Flatten", [y], "flatten", axis=1)
        w = self.weight("fc.weight", [classes, cin])
        return self.node("Gemm", [y, w], "fc", transB=1)

    def save(self, out, shape, file, opset=13):
        outputs = [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape)]
        g = helper.make_graph(self.nodes, self.name, self.inputs, outputs)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="qmap tools/onnx/make_graphs.py")
        onnx.checker.check_model(m)
        path = os.path.join(OUT, file)
        onnx.save(m, path)
        print(f"{path}: {len(self.nodes)} nodes, {os.path.getsize(path)} bytes")


def mobilenet_v2():
    g = Graph("mobilenet_v2", [1, 3, 224, 224])
    x = g.conv("conv1", g.x, 3, 32, 3, stride=2, act="Relu6")
    cin, b = 32, 0
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            b += 1
            stride = s if i == 0 else 1
            hidden = cin * t
            y = x
            if t != 1:
                y = g.conv(f"b{b}_exp", y, cin, hidden, 1, act="Relu6")
            y = g.conv(f"b{b}_dw", y, hidden, hidden, 3, stride=stride, groups=hidden, act="Relu6")
            y = g.conv(f"b{b}_pw", y, hidden, c, 1, act=None)
            if stride == 1 and cin == c:
                y = g.node("Add", [x, y], f"b{b}_add")
            x, cin = y, c
    x = g.conv("conv_last", x, 320, 1280, 1, act="Relu6")
    g.save(g.head(x, 1280, 1000), [1, 1000], "mobilenet_v2.onnx")


def resnet18():
    g = Graph("resnet18", [1, 3, 224, 224])
    x = g.conv("conv1", g.x, 3, 64, 7, stride=2)
    x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    cin = 64
    for stage, c in enumerate([64, 128, 256, 512], start=1):
        for blk in range(2):
            stride = 2 if blk == 0 and stage > 1 else 1
            y = g.conv(f"l{stage}_{blk}_c1", x, cin, c, 3, stride=stride)
            y = g.conv(f"l{stage}_{blk}_c2", y, c, c, 3, act=None)
            short = x
            if stride != 1 or cin != c:
                short = g.conv(f"l{stage}_{blk}_ds", x, cin, c, 1, stride=stride, pad=0, act=None)
            y = g.node("Add", [y, short], f"l{stage}_{blk}_add")
            x = g.node("Relu", [y], f"l{stage}_{blk}_relu")
            cin = c
    g.save(g.head(x, 512, 1000), [1, 1000], "resnet18.onnx")


def features():
    g = Graph("onnx_features", [2, 8, 32, 32])
    # Grouped conv: 4 groups of 2 -> 4 channels each (16 out).
    x = g.conv("grouped", g.x, 8, 16, 3, groups=4)
    # TensorFlow SAME, stride 2 on 32: pads 0 before, 1 after; written as pad 1 (same 16).
    w = g.weight("same.weight", [16, 16, 3, 3])
    x = g.node("Conv", [x, w], "same", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
    w = g.weight("dilated.weight", [32, 16, 3, 3])
    x = g.node("Conv", [x, w], "dilated", kernel_shape=[3, 3], dilations=[2, 2], pads=[2] * 4)
    x = g.node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = g.conv("proj", x, 32, 64, 1, pad=0, bn=False)
    # Squeeze-excitation: GAP -> 1x1 conv -> sigmoid, multiplied into the activation.
    s = g.node("GlobalAveragePool", [x], "se_gap")
    s = g.conv("se_fc", s, 64, 64, 1, pad=0, bn=False, act=None)
    s = g.node("Sigmoid", [s], "se_sig")
    x = g.node("Mul", [x, s], "se_mul")
    # [2, 64, 8, 8] -> [2, 64, 64] -> [2, 64 (sequence), 64 (features)] -> MatMul 64 -> 48.
    shape = g.node("Constant", [], "seq_shape", value=helper.make_tensor("v", TensorProto.INT64, [3], [0, 64, -1]))
    x = g.node("Reshape", [x, shape], "to_seq")
    x = g.node("Transpose", [x], "seq_t", perm=[0, 2, 1])
    w = g.weight("tokens.weight", [64, 48])
    x = g.node("MatMul", [x, w], "tokens")
    g.save(x, [2, 64, 48], "onnx_features.onnx")


def bert_base_block(seq=128, hidden=768, heads=12, ffn=3072):
    d = hidden // heads
    g = Graph("bert_base_block", [1, seq, hidden])
    const = lambda name, v: g.node("Constant", [], name, value=helper.make_tensor("v", TensorProto.INT64, [len(v)], v))
    split, merge = const("split_shape", [1, seq, heads, d]), const("merge_shape", [1, seq, hidden])

    def linear(name, x, c, m):
        return g.node("MatMul", [x, g.weight(f"{name}.weight", [c, m])], name)

    def to_heads(x, name, perm):
        return g.node("Transpose", [g.node("Reshape", [x, split], f"{name}_split")], f"{name}_t", perm=perm)

    def layer_norm(x, name):
        p = [g.weight(f"{name}.{s}", [hidden]) for s in ("g", "b")]
        return g.node("LayerNormalization", [x] + p, name, axis=-1)

    x = g.x
    q = to_heads(linear("q_proj", x, hidden, hidden), "q", [0, 2, 1, 3])
    k = to_heads(linear("k_proj", x, hidden, hidden), "k", [0, 2, 3, 1])
    v = to_heads(linear("v_proj", x, hidden, hidden), "v", [0, 2, 1, 3])
    a = g.node("Softmax", [g.node("MatMul", [q, k], "scores")], "softmax", axis=-1)
    c = g.node("Transpose", [g.node("MatMul", [a, v], "context")], "context_t", perm=[0, 2, 1, 3])
    c = g.node("Reshape", [c, merge], "context_merge")
    h = layer_norm(g.node("Add", [x, linear("out_proj", c, hidden, hidden)], "attn_add"), "ln1")
    f = g.node("Relu", [linear("ffn1", h, hidden, ffn)], "gelu")  # GELU's place: shapes only
    y = layer_norm(g.node("Add", [h, linear("ffn2", f, ffn, hidden)], "ffn_add"), "ln2")
    g.save(y, [1, seq, hidden], "bert_base_block.onnx", opset=17)


def bad_op():
    g = Graph("onnx_bad_op", [1, 8, 16, 16])
    x = g.conv("conv", g.x, 8, 8, 3)
    w = g.weight("up.weight", [8, 8, 2, 2])
    x = g.node("ConvTranspose", [x, w], "up", kernel_shape=[2, 2], strides=[2, 2])
    g.save(x, [1, 8, 32, 32], "onnx_bad_op.onnx")


if __name__ == "__main__":
    mobilenet_v2()
    resnet18()
    features()
    bert_base_block()
    bad_op()
