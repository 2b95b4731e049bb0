#!/usr/bin/python3
"""Trains qmap's two Fashion-MNIST networks on the CPU and exports them as ONNX (issue 26).

    nice -n 10 /usr/bin/python3 tools/accuracy/train.py            # both models
    nice -n 10 /usr/bin/python3 tools/accuracy/train.py --model fmnist_mbv2

Writes models/nets/<model>.onnx (batch-norm folded, layers named conv1, b1_dw, ..., fc) and
updates tools/accuracy/fmnist_models.json (accuracy, params, seed, epochs, time, versions,
data provenance, architecture table). Needs Debian's python3-torch, python3-onnx and
dataset-fashion-mnist; downloads nothing. See tools/accuracy/README.md.
"""

import argparse
import json
import os
import platform
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.helper  # noqa: E402
import onnx.numpy_helper as nh  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fmnist  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODELS = ["fmnist_mbv2", "fmnist_mbv1"]
ALLOWED_OPS = {"Conv", "Gemm", "MatMul", "Relu", "Clip", "Add", "GlobalAveragePool",
               "ReduceMean", "Flatten", "Reshape"}


def rel(p):
    return os.path.relpath(p, REPO)


@torch.no_grad()
def accuracy(model, x, y, batch=100):
    model.eval()
    correct, logits = 0, []
    for i in range(0, x.shape[0], batch):
        out = model(x[i : i + batch])
        logits.append(out)
        correct += int((out.argmax(1) == y[i : i + batch]).sum())
    return 100.0 * correct / x.shape[0], torch.cat(logits)


def train(model, x, y, xt, yt, args):
    g = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    steps = args.epochs * ((x.shape[0] + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    log = []
    for ep in range(args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(x.shape[0], generator=g)
        flip = torch.rand(x.shape[0], generator=g) < 0.5
        loss_sum, n = 0.0, 0
        for i in range(0, x.shape[0], args.batch):
            idx = perm[i : i + args.batch]
            xb = x[idx]
            fb = flip[i : i + args.batch]
            xb = torch.where(fb.reshape(-1, 1, 1, 1), xb.flip(3), xb)  # random horizontal flip
            xb = xb.contiguous(memory_format=torch.channels_last)  # ~1.5x faster convs on CPU
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * idx.shape[0]
            n += idx.shape[0]
        acc, _ = accuracy(model, xt, yt)
        dt = time.time() - t0
        log.append({"epoch": ep + 1, "train_loss": round(loss_sum / n, 4), "test_top1": acc,
                    "seconds": round(dt, 1)})
        print(f"  epoch {ep + 1}/{args.epochs}: loss {loss_sum / n:.4f}, test top-1 {acc:.2f} %, {dt:.0f} s",
              flush=True)
    return log


def name_graph(path, net, meta):
    """Gives the exported graph's nodes, tensors and initializers the layer names."""
    m = onnx.load(path)
    g = m.graph
    # torch.onnx deduplicates equal initializers (e.g. all-zero biases) and re-creates the
    # copies with Identity nodes: give each layer its own initializer again.
    inits = {t.name: t for t in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[n.input[0]])
            t.name = n.output[0]
            g.initializer.append(t)
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    layer_names = list(net.layers.keys()) + ["fc"]
    layer_shapes = [tuple(l.conv.weight.shape) for l in net.layers.values()] + [tuple(net.fc.weight.shape)]
    inits = {t.name: t for t in g.initializer}
    producer = {}
    for n in g.node:
        for o in n.output:
            producer[o] = n

    tensor_map, init_map = {}, {}
    qnodes = [n for n in g.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    if len(qnodes) != len(layer_names):
        raise RuntimeError(f"{len(qnodes)} Conv/Gemm nodes, model has {len(layer_names)} layers")
    for n, name, shape in zip(qnodes, layer_names, layer_shapes):
        w = inits[n.input[1]]
        if tuple(w.dims) != shape:
            raise RuntimeError(f"node {n.name}: weight {tuple(w.dims)}, layer {name} has {shape}")
        n.name = name
        init_map[n.input[1]] = f"{name}.weight"
        if len(n.input) > 2:
            init_map[n.input[2]] = f"{name}.bias"
    for n in g.node:
        if n.op_type in ("Relu", "Clip"):
            src = producer[n.input[0]].name
            n.name = f"{src}_{'relu6' if n.op_type == 'Clip' else 'relu'}"
        elif n.op_type == "Add":
            # named after its block: the projection conv among its inputs that comes last
            # (the other input is the block input, e.g. the previous block's projection)
            pos = {id(x): k for k, x in enumerate(g.node)}
            pw = max((producer[i] for i in n.input if i in producer and producer[i].op_type == "Conv"),
                     key=lambda x: pos[id(x)])
            n.name = pw.name.replace("_pw", "_add")
        elif n.op_type == "GlobalAveragePool":
            n.name = "gap"
        elif n.op_type == "Flatten":
            n.name = "flatten"
    # ReLU6 bounds: one shared pair of initializers.
    clip_consts = set()
    for n in g.node:
        if n.op_type == "Clip":
            for k, (nm, val) in enumerate((("relu6_min", 0.0), ("relu6_max", 6.0)), start=1):
                src = n.input[k]
                v = float(nh.to_array(inits[src]) if src in inits
                          else nh.to_array(onnx.helper.get_attribute_value(producer[src].attribute[0])))
                if v != val:
                    raise RuntimeError(f"{n.name}: Clip bound {v}, expected {val}")
                clip_consts.add(src)
                n.input[k] = nm
    if clip_consts:
        for nm, val in (("relu6_min", 0.0), ("relu6_max", 6.0)):
            g.initializer.append(nh.from_array(np.array(val, dtype=np.float32), nm))
    keep_nodes = [n for n in g.node if not (n.op_type == "Constant" and n.output[0] in clip_consts)]
    del g.node[:]
    g.node.extend(keep_nodes)
    keep_inits = [t for t in g.initializer if t.name not in clip_consts]
    del g.initializer[:]
    g.initializer.extend(keep_inits)
    # Tensor names: <node name>_out, except the graph's input and output.
    outputs = {o.name for o in g.output}
    for n in g.node:
        if n.output[0] not in outputs:
            tensor_map[n.output[0]] = f"{n.name}_out"
    ren = {**tensor_map, **init_map}
    for t in g.initializer:
        t.name = ren.get(t.name, t.name)
    for n in g.node:
        for i, v in enumerate(n.input):
            n.input[i] = ren.get(v, v)
        for i, v in enumerate(n.output):
            n.output[i] = ren.get(v, v)
    del g.value_info[:]
    # Initializers in the order the nodes use them (conv1.weight, conv1.bias, ...).
    order = {}
    for n in g.node:
        for i in n.input:
            order.setdefault(i, len(order))
    sorted_inits = sorted(g.initializer, key=lambda t: order.get(t.name, len(order)))
    copies = [onnx.TensorProto() for _ in sorted_inits]
    for c, t in zip(copies, sorted_inits):
        c.CopyFrom(t)
    del g.initializer[:]
    g.initializer.extend(copies)
    # Unused initializers (none expected) would confuse an importer.
    used = {i for n in g.node for i in n.input}
    extra = [t.name for t in g.initializer if t.name not in used]
    if extra:
        raise RuntimeError(f"unused initializers: {extra}")
    g.name = meta["qmap_model"]
    g.doc_string = meta["description"]
    del m.metadata_props[:]
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def export(folded, path, meta):
    x = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(folded, x, path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    m = name_graph(path, folded, meta)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    bad = set(ops) - ALLOWED_OPS
    if bad:
        raise RuntimeError(f"{path}: unexpected ops {sorted(bad)} (batch-norm not folded?)")
    return m, ops


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=MODELS + ["all"], default="all")
    ap.add_argument("--data", default=fmnist.DEFAULT_DATA_DIR)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (one-cycle, AdamW)")
    ap.add_argument("--wd", type=float, default=1e-4, help="AdamW weight decay")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default=os.path.join(REPO, "models", "nets"))
    ap.add_argument("--ckpt", default=None, help="also save the trained state_dict here (not committed)")
    ap.add_argument("--export-only", metavar="CKPT_DIR", default=None,
                    help="skip training: load CKPT_DIR/<model>.pt (written by --ckpt) and only export")
    ap.add_argument("--json", default=os.path.join(REPO, "tools", "accuracy", "fmnist_models.json"))
    args = ap.parse_args()

    if os.nice(0) < 10:
        os.nice(10 - os.nice(0))
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    t0 = time.time()
    x, y = fmnist.load_split(args.data, "train")
    xt, yt = fmnist.load_split(args.data, "test")
    prov = fmnist.provenance(args.data)
    print(f"data: {x.shape[0]} train, {xt.shape[0]} test from {args.data} "
          f"({prov['debian_package']} {prov['debian_version']}), loaded in {time.time() - t0:.1f} s")

    try:
        with open(args.json) as f:
            out = json.load(f)
    except FileNotFoundError:
        out = {}
    out["about"] = ("qmap's Fashion-MNIST networks (issue 26), written by tools/accuracy/train.py; "
                    "the ONNX files are batch-norm folded and their Conv/Gemm node names are the layer names.")
    out["dataset"] = prov
    out.setdefault("models", {})

    for name in MODELS if args.model == "all" else [args.model]:
        torch.manual_seed(args.seed)
        net = fmnist.build(name).to(memory_format=torch.channels_last)
        nparams = sum(p.numel() for p in net.parameters())
        what = "export only" if args.export_only else f"training {args.epochs} epochs"
        print(f"{name}: {nparams} parameters (with batch-norm), {what}", flush=True)
        t1 = time.time()
        if args.export_only:
            net.load_state_dict(torch.load(os.path.join(args.export_only, f"{name}.pt")))
            old = out["models"].get(name, {})
            log = old.get("training", {}).get("per_epoch")
            train_s = old.get("training", {}).get("seconds")
            print(f"  loaded {args.export_only}/{name}.pt (no training; training record kept from {args.json})")
        else:
            log = train(net, x, y, xt, yt, args)
            train_s = time.time() - t1
        net.eval()
        if args.ckpt and not args.export_only:
            os.makedirs(args.ckpt, exist_ok=True)
            torch.save(net.state_dict(), os.path.join(args.ckpt, f"{name}.pt"))
        acc_bn, _ = accuracy(net, xt, yt)
        folded = fmnist.fold_bn(net)
        acc_folded, logits_folded = accuracy(folded, xt, yt)
        folded_params = sum(p.numel() for p in folded.parameters())

        path = os.path.join(args.out_dir, f"{name}.onnx")
        meta = {
            "qmap_model": name,
            "description": (f"{name}: Fashion-MNIST classifier for qmap (issue 26), batch-norm folded. "
                            "Input float32 [N,1,28,28] = pixel/255; output logits [N,10]."),
            "input_encoding": "float32 NCHW [N,1,28,28], pixel / 255, no mean/std normalisation",
            "test_top1_fp32": f"{acc_folded:.2f}",
            "seed": args.seed,
            "epochs": args.epochs,
            "trained_by": "tools/accuracy/train.py",
            "torch_version": torch.__version__,
            "dataset": f"{prov['debian_package']} {prov['debian_version']}",
        }
        m, ops = export(folded, path, meta)

        onet = fmnist.OnnxNet(path)
        acc_onnx, correct, _, _ = fmnist.evaluate(onet, xt, yt)
        with torch.no_grad():
            diff = float((onet.run(xt[:1000]) - logits_folded[:1000]).abs().max())
        print(f"  top-1: {acc_bn:.2f} % (with BN), {acc_folded:.2f} % (BN folded), {acc_onnx:.2f} % "
              f"(ONNX graph, max |logit diff| {diff:.2e}); {train_s or 0:.0f} s training; "
              f"{path}: {os.path.getsize(path)} bytes; ops {ops}", flush=True)
        if abs(acc_onnx - acc_folded) > 0.02:
            raise RuntimeError("ONNX graph and folded torch model disagree")

        table = fmnist.arch_table(folded)
        out["models"][name] = {
            "onnx": rel(path),
            "onnx_bytes": os.path.getsize(path),
            "onnx_sha256": fmnist.sha256(path),
            "test_top1_fp32": round(acc_onnx, 2),
            "test_correct": correct,
            "test_images": int(xt.shape[0]),
            "test_top1_before_bn_fold": round(acc_bn, 2),
            "max_abs_logit_diff_onnx_vs_torch_first_1000": diff,
            "params_trained": nparams,
            "params_exported": folded_params,
            "quantisable_layers": len(table),
            "macs": sum(r["macs"] for r in table),
            "epochs": args.epochs,
            "seed": args.seed,
            "training": {
                "optimizer": f"AdamW, weight decay {args.wd}, one-cycle LR (peak {args.lr}), batch {args.batch}",
                "augmentation": "random horizontal flip (p = 0.5); no other",
                "loss": "cross-entropy",
                "threads": args.threads,
                "deterministic": True,
                "seconds": round(train_s, 1) if train_s is not None else None,
                "per_epoch": log,
            },
            "onnx_export": {
                "opset": m.opset_import[0].version,
                "op_counts": ops,
                "input": "input [N,1,28,28] float32 (N dynamic)",
                "output": "logits [N,10] float32",
                "batch_norm": "folded into the convs before export (w*gamma/sqrt(var+eps), beta-mean*gamma/sqrt(var+eps))",
            },
            "torch_version": torch.__version__,
            "onnx_version": onnx.__version__,
            "python": platform.python_version(),
            "architecture": arch_description(name),
            "layers": table,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
    print(f"wrote {args.json}; total {time.time() - t0:.0f} s")


def arch_description(name):
    if name == "fmnist_mbv2":
        return {
            "style": "MobileNetV2 (Sandler et al. 2018) scaled to 28x28x1",
            "stem": f"conv 3x3 stride 2, {fmnist.MBV2_STEM} ch, BN, ReLU6",
            "blocks_t_c_n_s": fmnist.MBV2_BLOCKS,
            "block": "inverted residual: 1x1 expand (absent when t = 1) + BN + ReLU6, 3x3 depthwise "
                     "(stride s on the first repeat) + BN + ReLU6, 1x1 linear projection + BN; "
                     "residual add when stride 1 and in = out channels",
            "head": f"conv 1x1 to {fmnist.MBV2_LAST} + BN + ReLU6, global average pool, flatten, FC 10",
        }
    return {
        "style": "MobileNetV1 (Howard et al. 2017) scaled to 28x28x1",
        "stem": f"conv 3x3 stride 2, {fmnist.MBV1_STEM} ch, BN, ReLU",
        "blocks_c_s": fmnist.MBV1_BLOCKS,
        "block": "depthwise separable: 3x3 depthwise (stride s) + BN + ReLU, 1x1 pointwise to c + BN + ReLU",
        "head": "global average pool, flatten, FC 10",
    }


if __name__ == "__main__":
    main()
