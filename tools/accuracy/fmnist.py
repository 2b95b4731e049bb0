"""Shared code for qmap's Fashion-MNIST accuracy artefacts (issue 26).

Used by train.py and ptq_reference.py; nothing here downloads anything.

* IDX reader (gzipped or plain), data provenance (Debian package, paths, sha256).
* The two networks (MobileNetV2-style and MobileNetV1-style, scaled to 28x28x1) and
  their batch-norm folding.
* A small ONNX graph evaluator written with torch.nn.functional, with optional
  post-training fake quantisation on the edges into Conv/Gemm nodes. It evaluates the
  committed .onnx files themselves, so the PTQ reference is computed from exactly the
  graph (weights, attributes, node names) that qmap's Rust importer will read.

Run with Debian's interpreter (/usr/bin/python3) and Debian's python3-torch.
"""

import gzip
import hashlib
import os
import struct
import subprocess

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def find_file(data_dir, stem):
    """The IDX file `stem` in data_dir, gzipped (Debian ships .gz) or not."""
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(
        f"{stem}(.gz) not found in {data_dir}; install it with "
        f"'apt-get install {DEBIAN_PACKAGE}' or pass --data DIR"
    )


def read_idx(path):
    """Reads an IDX file (http://yann.lecun.com/exdb/mnist/ format) into a numpy array.

    Header: 2 zero bytes, a type byte (0x08 = unsigned byte, the only type used here),
    the number of dimensions, then one big-endian u32 per dimension; then the data,
    row-major. Gzip is detected by its magic bytes, not by the file name.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (header {raw[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims)


def load_split(data_dir, split):
    """(images float32 [N,1,28,28] = pixel/255, labels int64 [N]) of 'train' or 'test'."""
    img_stem, lab_stem = SPLITS[split]
    images = read_idx(find_file(data_dir, img_stem))
    labels = read_idx(find_file(data_dir, lab_stem))
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"{split}: images {images.shape}, labels {labels.shape}")
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x.contiguous(), y


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance(data_dir):
    """Where the data came from: Debian package and version, file paths and sha256."""
    try:
        version = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", DEBIAN_PACKAGE],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        version = None
    files = {}
    for split, stems in SPLITS.items():
        for stem in stems:
            p = find_file(data_dir, stem)
            files[os.path.basename(p)] = {"path": p, "bytes": os.path.getsize(p), "sha256": sha256(p)}
    return {
        "dataset": "Fashion-MNIST (Zalando Research), 60,000 train / 10,000 test, 28x28 grey, 10 classes",
        "licence": "MIT (Expat), Copyright 2017 Zalando SE; see /usr/share/doc/dataset-fashion-mnist/copyright",
        "debian_package": DEBIAN_PACKAGE,
        "debian_version": version,
        "data_dir": data_dir,
        "files": files,
        "input_encoding": "float32 NCHW [N,1,28,28], value = pixel / 255 (0..1), no mean/std normalisation",
    }


# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------

# MobileNetV2-style, scaled to 28x28x1 (issue 26). (t, c, n, s) as in Sandler et al. Table 2.
MBV2_STEM = 16
MBV2_BLOCKS = [(1, 16, 1, 1), (4, 24, 2, 1), (4, 32, 2, 2), (4, 64, 2, 2), (4, 96, 1, 1)]
MBV2_LAST = 256
# MobileNetV1-style sibling: stem 3x3/s2 16 ch, then depthwise-separable blocks (c, s):
MBV1_STEM = 16
MBV1_BLOCKS = [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (256, 1), (256, 1)]
NUM_CLASSES = 10


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm + optional activation ('relu6', 'relu' or None)."""

    def __init__(self, cin, cout, k, stride, groups, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        if self.act == "relu6":
            x = torch.clamp(x, 0.0, 6.0)  # exports as one Clip(0, 6) (F.relu6 gives Relu + Clip)
        elif self.act == "relu":
            x = F.relu(x)
        return x


class Net(nn.Module):
    """A sequence of named ConvBN layers grouped into blocks, GAP and FC.

    `self.layers` maps layer name -> ConvBN; `self.plan` is the forward program:
    a list of blocks, each a list of layer names plus a flag for a residual add.
    """

    def __init__(self, plan, specs):
        super().__init__()
        self.layers = nn.ModuleDict()
        for name, (cin, cout, k, s, g, act) in specs.items():
            self.layers[name] = ConvBN(cin, cout, k, s, g, act)
        self.plan = plan
        self.fc = nn.Linear(list(specs.values())[-1][1], NUM_CLASSES)

    def forward(self, x):
        for names, residual in self.plan:
            y = x
            for n in names:
                y = self.layers[n](y)
            x = x + y if residual else y
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def mbv2_specs():
    """(plan, specs, table) of the MobileNetV2-style network.

    specs: name -> (C_in, C_out, kernel, stride, groups, activation). A block with t = 1
    has no expansion conv (as in the paper and torchvision), so b1 = b1_dw, b1_pw.
    """
    specs, plan = {}, []
    specs["conv1"] = (1, MBV2_STEM, 3, 2, 1, "relu6")
    plan.append((["conv1"], False))
    cin, b = MBV2_STEM, 0
    for t, c, n, s in MBV2_BLOCKS:
        for i in range(n):
            b += 1
            stride = s if i == 0 else 1
            hid = cin * t
            names = []
            if t != 1:
                specs[f"b{b}_exp"] = (cin, hid, 1, 1, 1, "relu6")
                names.append(f"b{b}_exp")
            specs[f"b{b}_dw"] = (hid, hid, 3, stride, hid, "relu6")
            specs[f"b{b}_pw"] = (hid, c, 1, 1, 1, None)  # linear bottleneck
            names += [f"b{b}_dw", f"b{b}_pw"]
            plan.append((names, stride == 1 and cin == c))
            cin = c
    specs["conv_last"] = (cin, MBV2_LAST, 1, 1, 1, "relu6")
    plan.append((["conv_last"], False))
    return plan, specs


def mbv1_specs():
    specs, plan = {}, []
    specs["conv1"] = (1, MBV1_STEM, 3, 2, 1, "relu")
    plan.append((["conv1"], False))
    cin = MBV1_STEM
    for b, (c, s) in enumerate(MBV1_BLOCKS, start=1):
        specs[f"b{b}_dw"] = (cin, cin, 3, s, cin, "relu")
        specs[f"b{b}_pw"] = (cin, c, 1, 1, 1, "relu")
        plan.append(([f"b{b}_dw", f"b{b}_pw"], False))
        cin = c
    return plan, specs


def build(model_name):
    plan, specs = {"fmnist_mbv2": mbv2_specs, "fmnist_mbv1": mbv1_specs}[model_name]()
    net = Net(plan, specs)
    net.model_name = model_name
    return net


def arch_table(net):
    """Per-layer table (name, kind, C, M, R, S, stride, pad, input/output size, act, params, MACs)."""
    rows, h = [], 28
    residual_after = {names[-1] for names, res in net.plan if res}
    for name, m in net.layers.items():
        conv = m.conv
        k, s, g = conv.kernel_size[0], conv.stride[0], conv.groups
        pad = conv.padding[0]
        ho = (h + 2 * pad - k) // s + 1
        cin, cout = conv.in_channels, conv.out_channels
        params = conv.weight.numel() + cout  # folded bias
        rows.append({
            "name": name,
            "kind": "depthwise" if g == cin and g == cout and g > 1 else "conv2d",
            "C": cin, "M": cout, "R": k, "S": k, "groups": g, "stride": s, "pad": pad,
            "in_hw": h, "out_hw": ho, "activation": m.act or "none (linear)",
            "residual_add_after": name in residual_after,
            "params": params, "macs": ho * ho * cout * (cin // g) * k * k,
        })
        h = ho
    fc = net.fc
    rows.append({
        "name": "fc", "kind": "fc", "C": fc.in_features, "M": fc.out_features, "R": 1, "S": 1,
        "groups": 1, "stride": 1, "pad": 0, "in_hw": 1, "out_hw": 1, "activation": "none (logits)",
        "residual_add_after": False,
        "params": fc.weight.numel() + fc.bias.numel(), "macs": fc.in_features * fc.out_features,
        "note": f"after global average pool of the {h}x{h} map",
    })
    return rows


@torch.no_grad()
def fold_bn(net):
    """A copy of `net` whose ConvBN layers are plain biased convs (BN folded, eval statistics).

    w' = w * gamma / sqrt(var + eps) (per output channel), b' = beta - mean * gamma / sqrt(var + eps).
    """
    folded = build(net.model_name)
    folded.load_state_dict(net.state_dict())
    for name, m in folded.layers.items():
        bn, conv = m.bn, m.conv
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                        conv.padding, groups=conv.groups, bias=True)
        new.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        new.bias.copy_(bn.bias - bn.running_mean * scale)
        m.conv = new
        m.bn = nn.Identity()
    return folded.eval()


# ---------------------------------------------------------------------------
# ONNX graph evaluation with fake quantisation
# ---------------------------------------------------------------------------


def _attrs(node):
    import onnx.helper

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxNet:
    """Evaluates an ONNX graph of Conv/Gemm/MatMul/Relu/Clip/Add/GlobalAveragePool/ReduceMean/
    Flatten/Reshape/Constant/Identity nodes with torch.nn.functional (float32, CPU).

    Quantisable layers are the Conv and Gemm (or MatMul) nodes, identified by node name.
    `quant` maps a layer name to {"w": bits or None, "a": bits or None}; activation
    quantisation needs `calib` (from calibrate()).
    """

    SUPPORTED = {"Conv", "Gemm", "MatMul", "Relu", "Clip", "Add", "GlobalAveragePool",
                 "ReduceMean", "Flatten", "Reshape", "Constant", "Identity"}

    def __init__(self, path):
        import onnx
        import onnx.numpy_helper as nh

        self.model = onnx.load(path)
        g = self.model.graph
        self.inits = {t.name: torch.from_numpy(nh.to_array(t).copy()) for t in g.initializer}
        self.nodes = list(g.node)
        for n in self.nodes:
            if n.op_type not in self.SUPPORTED:
                raise ValueError(f"{path}: unsupported op {n.op_type} ({n.name})")
            if n.op_type == "Constant":
                self.inits[n.output[0]] = torch.from_numpy(nh.to_array(_attrs(n)["value"]).copy())
        self.input_name = [i.name for i in g.input if i.name not in self.inits][0]
        self.output_name = g.output[0].name
        self.layers = [n.name for n in self.nodes if n.op_type in ("Conv", "Gemm", "MatMul")]
        self._wq_cache = {}

    def weight(self, node):
        return self.inits[node.input[1]]

    def quant_weight(self, node, bits):
        key = (node.name, bits)
        if key not in self._wq_cache:
            w = self.weight(node)
            # output-channel axis: Conv weight [M, C/g, R, S] -> 0; Gemm B with transB=1 is
            # [M, K] -> 0, with transB=0 (and MatMul) [K, M] -> 1.
            if node.op_type == "Conv":
                axis = 0
            elif node.op_type == "Gemm":
                axis = 0 if _attrs(node).get("transB", 0) else 1
            else:
                axis = 1
            self._wq_cache[key] = fake_quant_weight(w, bits, axis)
        return self._wq_cache[key]

    @torch.no_grad()
    def run(self, x, quant=None, calib=None, observe=None):
        quant = quant or {}
        env = dict(self.inits)
        env[self.input_name] = x
        for n in self.nodes:
            op = n.op_type
            if op == "Constant":
                continue
            a = _attrs(n)
            ins = [env[i] if i else None for i in n.input]
            if op in ("Conv", "Gemm", "MatMul"):
                q = quant.get(n.name, {})
                xin = ins[0]
                if observe is not None:
                    observe(n.name, xin)
                if q.get("a"):
                    xin = fake_quant_act(xin, q["a"], calib[n.name])
                w = self.quant_weight(n, q["w"]) if q.get("w") else ins[1]
                if op == "Conv":
                    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                        raise ValueError(f"{n.name}: auto_pad not supported")
                    pads = a.get("pads", [0, 0, 0, 0])
                    if pads[0] != pads[2] or pads[1] != pads[3]:
                        raise ValueError(f"{n.name}: asymmetric pads {pads}")
                    y = F.conv2d(xin, w, ins[2] if len(ins) > 2 else None,
                                 stride=a.get("strides", [1, 1]), padding=(pads[0], pads[1]),
                                 dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
                elif op == "Gemm":
                    A = xin.t() if a.get("transA", 0) else xin
                    B = w.t() if a.get("transB", 0) else w
                    y = a.get("alpha", 1.0) * (A @ B)
                    if len(ins) > 2 and ins[2] is not None:
                        y = y + a.get("beta", 1.0) * ins[2]
                else:
                    y = xin @ w
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "Clip":
                lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min")
                hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max")
                y = torch.clamp(ins[0], float(lo) if lo is not None else None,
                                float(hi) if hi is not None else None)
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif op == "ReduceMean":
                y = ins[0].mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
            elif op == "Flatten":
                ax = a.get("axis", 1)
                y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
            elif op == "Reshape":
                shape = [int(v) for v in ins[1].tolist()]
                shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
                y = ins[0].reshape(shape)
            elif op == "Identity":
                y = ins[0]
            env[n.output[0]] = y
        return env[self.output_name]


# ---------------------------------------------------------------------------
# Quantisation conventions (the oracle for the Rust implementation; see README.md)
# ---------------------------------------------------------------------------


def fake_quant_weight(w, bits, axis):
    """Symmetric per-output-channel weight fake quantisation (float32 throughout).

    qmax = 2^(bits-1) - 1 (so levels are -qmax..qmax; -2^(bits-1) is never used);
    s_c = max|w_c| / qmax; q = clamp(round_half_even(w / s_c), -qmax, qmax); w' = q * s_c.
    A channel with max|w_c| = 0 stays zero.
    """
    qmax = float(2 ** (bits - 1) - 1)
    dims = [d for d in range(w.dim()) if d != axis]
    maxabs = w.abs().amax(dim=dims, keepdim=True) if dims else w.abs()
    s = maxabs / torch.tensor(qmax, dtype=torch.float32)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    q = torch.clamp(torch.round(w / safe), -qmax, qmax)
    return torch.where(s > 0, q * safe, torch.zeros_like(w))


def act_params(stats, bits):
    """(scale, qmin, qmax) of a layer input at `bits` from its calibration stats.

    Unsigned if the calibration minimum is >= 0 (inputs after ReLU/ReLU6 and the network's
    image input): levels 0..2^bits-1, s = max / (2^bits - 1). Otherwise signed symmetric:
    levels -(2^(bits-1)-1)..2^(bits-1)-1, s = max|x| / (2^(bits-1) - 1).
    """
    if stats["min"] >= 0.0:
        qmin, qmax = 0.0, float(2 ** bits - 1)
    else:
        qmax = float(2 ** (bits - 1) - 1)
        qmin = -qmax
    s = torch.tensor(stats["maxabs"], dtype=torch.float32) / torch.tensor(qmax, dtype=torch.float32)
    return s, qmin, qmax


def fake_quant_act(x, bits, stats):
    s, qmin, qmax = act_params(stats, bits)
    if float(s) == 0.0:
        return torch.zeros_like(x)
    return torch.clamp(torch.round(x / s), qmin, qmax) * s


@torch.no_grad()
def calibrate(net, images, batch=100):
    """Per layer: min and max|x| of the tensor on its input edge over all `images` (fp32 net)."""
    stats = {}

    def observe(name, x):
        st = stats.setdefault(name, {"min": float("inf"), "maxabs": 0.0})
        st["min"] = min(st["min"], float(x.min()))
        st["maxabs"] = max(st["maxabs"], float(x.abs().max()))

    for i in range(0, images.shape[0], batch):
        net.run(images[i : i + batch], observe=observe)
    for st in stats.values():
        st["signed"] = st["min"] < 0.0
    return stats


@torch.no_grad()
def evaluate(net, x, y, quant=None, calib=None, ref_logp=None, batch=100):
    """(top-1 %, correct, mean KL(fp32 || quant) in nats or None, log-probs float64)."""
    correct, kl_sum, logps = 0, 0.0, []
    for i in range(0, x.shape[0], batch):
        logits = net.run(x[i : i + batch], quant, calib)
        correct += int((logits.argmax(dim=1) == y[i : i + batch]).sum())
        lp = F.log_softmax(logits.double(), dim=1)
        logps.append(lp)
        if ref_logp is not None:
            p = ref_logp[i : i + batch]
            kl_sum += float((p.exp() * (p - lp)).sum())
    n = x.shape[0]
    return 100.0 * correct / n, correct, (kl_sum / n if ref_logp is not None else None), torch.cat(logps)
