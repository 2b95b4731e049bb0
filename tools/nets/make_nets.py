#!/usr/bin/env python3
"""Writes models/nets/resnet50.yaml, models/nets/vgg16.yaml and models/nets/bert_base_block.yaml
from the networks' definitions (ResNet-50 v1.5 as in torchvision: stride on the 3x3 conv of a
bottleneck; VGG-16 configuration D; one BERT-base encoder layer).
Run from the repository root: python3 tools/nets/make_nets.py. Prints each network's totals."""


def conv(name, c, m, size, k, stride, pad, **extra):
    out = (size + 2 * pad - k) // stride + 1
    layer = dict(name=name, kind="conv2d", C=c, M=m, P=out, Q=out, R=k, S=k, stride=stride, pad=pad)
    layer.update(extra)
    return layer, out


def fmt(layer):
    parts = []
    for k, v in layer.items():
        if isinstance(v, dict):
            v = "{" + ", ".join(f"{a}: {b}" for a, b in v.items()) + "}"
        elif isinstance(v, str) and k in ("note", "input", "input_b"):
            v = f'"{v}"'
        parts.append(f"{k}: {v}")
    return "  - {" + ", ".join(parts) + "}"


def macs(layer):
    n = layer.get("N", 1)
    return n * layer["C"] * layer["M"] * layer["P"] * layer["Q"] * layer["R"] * layer["S"]


def weights(layer):
    # A matmul's second operand is an activation: no weights.
    if layer["kind"] == "matmul":
        return 0
    return layer["C"] * layer["M"] * layer["R"] * layer["S"]


def resnet50():
    layers = []
    stem, size = conv("conv1", 3, 64, 224, 7, 2, 3)
    layers.append(stem)
    pool = {"kernel": 3, "stride": 2, "pad": 1}
    size = (size + 2 - 3) // 2 + 1  # 56
    c, last = 64, "conv1"
    for s, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and s > 1) else 1
            p = f"l{s}_{b}"
            extra = {"pool": pool} if (s == 1 and b == 0) else {}
            c1, _ = conv(f"{p}_c1", c, width, size, 1, 1, 0, **extra)
            c2, out = conv(f"{p}_c2", width, width, size, 3, stride, 1)
            c3, _ = conv(f"{p}_c3", width, 4 * width, out, 1, 1, 0)
            block = [c1, c2, c3]
            if b == 0:
                ds, _ = conv(f"{p}_ds", c, 4 * width, size, 1, stride, 0, input=last, **extra)
                ds["note"] = f"projection shortcut, summed with the output of {p}_c3; the next layer reads the sum"
                block.append(ds)
            else:
                c3["note"] = f"output summed with the block input (identity shortcut); the next layer reads the sum"
            layers += block
            c, size, last = 4 * width, out, block[-1]["name"]
    layers.append(dict(name="fc", kind="fc", C=2048, M=1000, head=True))
    return layers


def vgg16():
    layers, size, c = [], 224, 3
    for stage, (width, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], start=1):
        for i in range(n):
            extra = {"pool": {"kernel": 2, "stride": 2}} if (i == 0 and stage > 1) else {}
            if extra:
                size //= 2
            layer, _ = conv(f"conv{stage}_{i + 1}", c, width, size, 3, 1, 1, **extra)
            layers.append(layer)
            c = width
    layers.append(dict(name="fc6", kind="fc", C=512 * 7 * 7, M=4096, pool={"kernel": 2, "stride": 2}))
    layers.append(dict(name="fc7", kind="fc", C=4096, M=4096))
    layers.append(dict(name="fc8", kind="fc", C=4096, M=1000, head=True))
    return layers


def full(layer):
    return {"P": 1, "Q": 1, "R": 1, "S": 1, **layer}


def bert_base_block(seq=128, hidden=768, heads=12, ffn=3072):
    d = hidden // heads

    def proj(name, c, m, **extra):
        return dict(name=name, kind="conv2d", C=c, M=m, P=seq, Q=1, R=1, S=1, **extra)

    return [
        proj("q_proj", hidden, hidden),
        proj("k_proj", hidden, hidden, input="input"),
        proj("v_proj", hidden, hidden, input="input"),
        dict(name="scores", kind="matmul", N=heads, C=d, M=seq, P=seq, input="q_proj",
             input_b="k_proj", note="Q K^T per head (B = K^T); softmax follows"),
        dict(name="context", kind="matmul", N=heads, C=seq, M=d, P=seq, input_b="v_proj",
             note="softmax(scores) V per head"),
        proj("out_proj", hidden, hidden,
             note="output summed with the block input (residual), then LayerNorm; the next layer reads the sum"),
        proj("ffn1", hidden, ffn, note="GELU follows"),
        proj("ffn2", ffn, hidden,
             note="output summed with out_proj's sum (residual), then LayerNorm: the block output"),
    ]


def write(path, name, source, layers, input_shape="{channels: 3, height: 224, width: 224}"):
    total_macs = sum(macs(full(l)) for l in layers)
    total_weights = sum(weights(full(l)) for l in layers)
    with open(path, "w") as f:
        f.write(f"# {name}: written by tools/nets/make_nets.py (do not edit by hand).\n")
        f.write(f"name: {name}\nsource: |\n")
        for line in source.strip().splitlines():
            f.write(f"  {line}\n")
        f.write(f"  Totals: {len(layers)} layers, MACs {total_macs:,}, weights {total_weights:,}.\n")
        f.write(f"input: {input_shape}\nlayers:\n")
        for l in layers:
            f.write(fmt(l) + "\n")
    print(f"{path}: {len(layers)} layers, MACs {total_macs:,}, weights {total_weights:,}")


write("models/nets/resnet50.yaml", "resnet50", """
ResNet-50 v1.5 (He et al., arXiv:1512.03385, Table 1; torchvision's resnet50, whose bottlenecks
put the stride on the 3x3 conv), 224x224, batch 1, 1000 classes. Stage s block b is l{s}_{b}:
c1 (1x1), c2 (3x3, stride 2 on the first block of stages 2-4), c3 (1x1, 4x expansion); the
first block of each stage has a projection shortcut l{s}_0_ds (1x1, the block's stride) that
reads the block input. The stem's 3x3/2 max-pool is the `pool` of l1_0_c1 and l1_0_ds; global
average pooling precedes fc. Biases and batch-norm (folded) are not counted.
""", resnet50())
write("models/nets/vgg16.yaml", "vgg16", """
VGG-16 (Simonyan and Zisserman, arXiv:1409.1556, configuration D), 224x224, batch 1, 1000
classes: 13 3x3 convolutions (pad 1) in five stages, each stage after the first behind a 2x2/2
max-pool (the `pool` of its first layer), then fc6 (reads the last pool's 7x7x512 output
flattened), fc7, fc8. Biases are not counted.
""", vgg16())
write("models/nets/bert_base_block.yaml", "bert_base_block", """
One encoder layer of BERT-base (Devlin et al., arXiv:1810.04805, Section 3: L=12, H=768, A=12;
the Transformer layer of Vaswani et al., arXiv:1706.03762, Section 3.2), sequence 128, batch 1.
The input is the 128 x 768 hidden states: the sequence is the width (P), the hidden size the
channels. q_proj, k_proj, v_proj, out_proj, ffn1 (768 -> 3072) and ffn2 (3072 -> 768) are 1x1
convolutions along the sequence (a linear layer applied to every token). The attention is two
`matmul` layers (both operands activations, no weights) with the 12 heads as N: scores = Q K^T
(per head C = 64, M = P = 128; its second operand is k_proj's output) and context =
softmax(scores) V (C = 128, M = 64; second operand v_proj's output). One layer with N = heads
rather than 12 per-head layers: the heads are independent products of the same shape, so N is
exactly their loop (the mapper may split or parallelise it), and the network stays 8 layers.
Softmax, GELU, the residual adds and LayerNorm have no MACs and are not layers; biases and
LayerNorm parameters are not counted (BERT-base's 7,087,872 parameters per layer less 6,912
biases and 3,072 LayerNorm parameters = 7,077,888).
""", bert_base_block(), input_shape="{channels: 768, height: 1, width: 128}")
