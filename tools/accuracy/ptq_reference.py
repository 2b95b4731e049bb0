#!/usr/bin/python3
"""Post-training fake-quantisation reference for qmap's Fashion-MNIST networks (issue 26).

    nice -n 10 /usr/bin/python3 tools/accuracy/ptq_reference.py              # both models
    nice -n 10 /usr/bin/python3 tools/accuracy/ptq_reference.py --layers all # every layer

Evaluates the committed ONNX files (models/nets/fmnist_mbv2.onnx, fmnist_mbv1.onnx) with
the small torch evaluator in fmnist.py, so that what is measured is exactly the graph a
Rust importer (tract-onnx) reads. Prints and writes tools/accuracy/ptq_reference.json:

* fp32 top-1 on the 10k test split;
* uniform quantisation at 2, 3, 4, 5, 6, 8 bits: W=A, weights only, activations only;
* single layers (each alone; weights alone, then its input activations alone) at 2 and
  4 bits: top-1, top-1 delta against fp32 and the mean KL divergence of the logits;
* per-layer calibration statistics and a few logits, to check an implementation against.

Conventions (also in README.md): weights per output channel, symmetric, levels
-(2^(b-1)-1)..2^(b-1)-1, scale max|w_c|/(2^(b-1)-1); activations per tensor on the input
edge of every Conv/Gemm, calibrated (min, max|x|) on the first 1,000 training images:
unsigned 0..2^b-1 with scale max/(2^b-1) when the calibration minimum is >= 0, otherwise
signed symmetric like the weights; q = clamp(round_half_to_even(x / s)), x' = q * s, all
in float32; biases stay float32; nothing else (Add, pooling, logits) is quantised.
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import fmnist  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MODELS = ["fmnist_mbv2", "fmnist_mbv1"]
# A handful of layers of different kinds: first layer, depthwise (stride 1 and 2),
# expansion / pointwise convs reading a residual sum (signed input), the last 1x1 and the FC.
HANDFUL = {
    "fmnist_mbv2": ["conv1", "b1_dw", "b2_exp", "b4_dw", "b5_pw", "b6_exp", "conv_last", "fc"],
    "fmnist_mbv1": ["conv1", "b1_dw", "b2_pw", "b4_dw", "b8_pw", "fc"],
}


def bits_list(s):
    return [int(b) for b in s.split(",") if b]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=MODELS + ["all"], default="all")
    ap.add_argument("--data", default=fmnist.DEFAULT_DATA_DIR)
    ap.add_argument("--nets", default=os.path.join(REPO, "models", "nets"))
    ap.add_argument("--calib", type=int, default=1000, help="calibration images: the first N of the training split")
    ap.add_argument("--uniform-bits", default="2,3,4,5,6,8")
    ap.add_argument("--layer-bits", default="2,4")
    ap.add_argument("--layers", default="handful", help="'handful', 'all' or a comma-separated list")
    ap.add_argument("--test-images", type=int, default=10000, help="evaluate on the first N test images")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=os.path.join(REPO, "tools", "accuracy", "ptq_reference.json"))
    args = ap.parse_args()
    for b in bits_list(args.uniform_bits) + bits_list(args.layer_bits):
        if not 2 <= b <= 8:
            ap.error(f"bits must be 2..8, got {b}")

    if os.nice(0) < 10:
        os.nice(10 - os.nice(0))
    torch.set_num_threads(args.threads)
    t_all = time.time()

    xtr, _ = fmnist.load_split(args.data, "train")
    calib_x = xtr[: args.calib].clone()
    del xtr
    xt, yt = fmnist.load_split(args.data, "test")
    xt, yt = xt[: args.test_images], yt[: args.test_images]
    prov = fmnist.provenance(args.data)

    out = {
        "about": "Post-training fake-quantisation reference (oracle) for qmap's Rust implementation; "
                 "written by tools/accuracy/ptq_reference.py. See tools/accuracy/README.md.",
        "conventions": {
            "layers": "every Conv and Gemm node of the ONNX graph, named by its node name",
            "weights": "per output channel (axis 0 of Conv [M,C/g,R,S]; axis 0 of Gemm B with transB=1), "
                       "symmetric: qmax = 2^(b-1)-1, s_c = max|w_c| / qmax, q = clamp(round(w/s_c), -qmax, qmax), "
                       "w' = q*s_c; -2^(b-1) is never used (2 bits = ternary -1,0,1); an all-zero channel stays zero",
            "biases": "not quantised (float32)",
            "activations": "per tensor, on the input edge of each Conv/Gemm (input 0: the data tensor); "
                           "only that edge is quantised, so a residual Add's skip path reads the float tensor",
            "activation_range": "calibrated on the first `calib_images` training images with the fp32 network "
                                "(no quantisation during calibration): min and max|x| over all of them",
            "activation_levels": "unsigned if calib min >= 0 (inputs after ReLU/ReLU6, the image input, "
                                 "the pooled FC input): q in 0..2^b-1, s = max|x| / (2^b-1); otherwise signed "
                                 "symmetric: q in -(2^(b-1)-1)..2^(b-1)-1, s = max|x| / (2^(b-1)-1)",
            "rounding": "round half to even (torch.round), on x / s computed in float32 (division, not "
                        "multiplication by 1/s); x' = q * s in float32; values past the range are clamped",
            "not_quantised": "Add, Clip/Relu, GlobalAveragePool, Flatten, the logits",
            "top1": "argmax of the float32 logits (first index on ties) against the label, in percent",
            "kl": "mean over the test images of sum_c p(c) (ln p(c) - ln q(c)), p = softmax(fp32 logits), "
                  "q = softmax(quantised logits), computed in float64 from the float32 logits; nats",
            "delta": "top-1 of the configuration minus fp32 top-1, in percentage points (negative = loss)",
        },
        "calib_images": args.calib,
        "calib_split": f"train, images 0..{args.calib - 1} in file order",
        "test_images": int(xt.shape[0]),
        "dataset": prov,
        "torch_version": torch.__version__,
        "threads": args.threads,
        "models": {},
    }

    for name in MODELS if args.model == "all" else [args.model]:
        path = os.path.join(args.nets, f"{name}.onnx")
        net = fmnist.OnnxNet(path)
        t0 = time.time()
        acc, correct, _, ref = fmnist.evaluate(net, xt, yt)
        t_pass = time.time() - t0
        calib = fmnist.calibrate(net, calib_x)
        print(f"{name}: {len(net.layers)} layers, fp32 top-1 {acc:.2f} % ({correct}/{xt.shape[0]}), "
              f"one pass {t_pass:.1f} s", flush=True)
        res = {
            "onnx": os.path.relpath(path, REPO),
            "onnx_sha256": fmnist.sha256(path),
            "layers": net.layers,
            "fp32": {"top1": acc, "correct": correct},
            "seconds_per_pass": round(t_pass, 2),
            "calibration": {
                ln: {"min": st["min"], "maxabs": st["maxabs"], "signed": st["signed"]} for ln, st in calib.items()
            },
            "uniform": [],
            "single_layer": [],
        }

        def run(quant):
            a, c, kl, lp = fmnist.evaluate(net, xt, yt, quant, calib, ref)
            return {"top1": a, "correct": c, "delta": round(a - acc, 4), "kl": kl}, lp

        for b in bits_list(args.uniform_bits):
            row = {"bits": b}
            for mode, q in (("w_a", {"w": b, "a": b}), ("w_only", {"w": b}), ("a_only", {"a": b})):
                r, lp = run({ln: q for ln in net.layers})
                row[mode] = r
                if mode == "w_a" and b == 4:
                    res["logits_first4_w4a4"] = [[round(float(v), 5) for v in l]
                                                 for l in net.run(xt[:4], {ln: q for ln in net.layers}, calib)]
            res["uniform"].append(row)
            print(f"  uniform {b} b: W=A {row['w_a']['top1']:6.2f} %  (KL {row['w_a']['kl']:.4f})   "
                  f"W only {row['w_only']['top1']:6.2f} %   A only {row['a_only']['top1']:6.2f} %", flush=True)
        res["logits_first4_fp32"] = [[round(float(v), 5) for v in l] for l in net.run(xt[:4])]

        if args.layers == "handful":
            layers = HANDFUL[name]
        elif args.layers == "all":
            layers = net.layers
        else:
            layers = [ln for ln in args.layers.split(",") if ln in net.layers]
        for ln in layers:
            for b in bits_list(args.layer_bits):
                for what in ("w", "a"):
                    r, _ = run({ln: {what: b}})
                    res["single_layer"].append({"layer": ln, "quantised": "weights" if what == "w" else "activations",
                                                "bits": b, **r})
                    print(f"  {ln:10s} {'W' if what == 'w' else 'A'}{b}: top-1 {r['top1']:6.2f} % "
                          f"(delta {r['delta']:+6.2f})  KL {r['kl']:.5f}", flush=True)
        res["seconds_total"] = round(time.time() - t0, 1)
        out["models"][name] = res
    out["seconds_total"] = round(time.time() - t_all, 1)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {args.json} in {out['seconds_total']:.0f} s")


if __name__ == "__main__":
    main()
