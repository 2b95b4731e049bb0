//! ONNX import (`qmap import`, `workload: {network: model.onnx}`): the generated MobileNetV2
//! graph equals `models/nets/mobilenet_v2.yaml` layer for layer, ResNet-18's and the trained
//! FashionMNIST files' totals against independent counts, the rarer ops (grouped, SAME-padded,
//! dilated convs, pooling, squeeze-excitation, a sequence MatMul), the YAML written reads back
//! as the same network, an instance runs `baseline` on an ONNX file, and bad inputs are errors
//! naming the file, the node and the op.

mod common;

use common::{json, qmap_in, root, scratch, stdout};
use qmap::onnx::{load, InputOptions};
use qmap::spec::{load_yaml, LayerSpec, NetworkSpec, Pair};
use qmap::workload::{build_network, total_macs, total_weights, Layer};
use std::path::{Path, PathBuf};

fn nets(name: &str) -> PathBuf {
    root().join("models/nets").join(name)
}

fn import(name: &str, shape: Option<Vec<u64>>) -> (NetworkSpec, Vec<Layer>) {
    let path = nets(name);
    let opts = InputOptions { shape, batch: None };
    let spec = load(&path, &opts).unwrap();
    let layers = build_network(&spec, false, None, &path).unwrap();
    (spec, layers)
}

fn pair(p: Option<Pair>, default: u64) -> (u64, u64) {
    p.map_or((default, default), |p| (p.w(), p.h()))
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// Everything that makes a layer's problem and its place in the chain.
fn shape(l: &LayerSpec) -> String {
    format!(
        "{} {:?} N{} C{} M{} G{} groups{:?} P{} Q{} R{} S{} stride{:?} pad{:?} dil{:?} {:?}",
        l.name,
        l.kind,
        l.n,
        opt(l.c),
        opt(l.m),
        opt(l.g),
        l.groups.unwrap_or(1),
        l.p,
        l.q,
        l.r,
        l.s,
        pair(l.stride, 1),
        pair(l.pad, 0),
        pair(l.dilation, 1),
        l.pool
            .map(|p| (p.kernel.w(), p.kernel.h(), p.stride.w(), pair(p.pad, 0)))
    )
}

#[test]
fn mobilenet_v2_equals_the_yaml_network() {
    let (spec, layers) = import("mobilenet_v2.onnx", None);
    let path = nets("mobilenet_v2.yaml");
    let yaml: NetworkSpec = load_yaml(&path).unwrap();
    let yl = build_network(&yaml, false, None, &path).unwrap();
    assert_eq!(spec.layers.len(), 53);
    assert_eq!(spec.layers.len(), yaml.layers.len());
    for (i, (a, b)) in spec.layers.iter().zip(&yaml.layers).enumerate() {
        assert_eq!(shape(a), shape(b), "layer {i}");
        assert_eq!(
            layers[i].producer, yl[i].producer,
            "producer of layer {i} ({})",
            a.name
        );
        assert_eq!(layers[i].problem.bounds, yl[i].problem.bounds, "layer {i}");
        // The residual adds are recorded on the same layers as the YAML's notes.
        assert_eq!(
            a.note.is_some(),
            b.note.is_some(),
            "note of layer {i} ({})",
            a.name
        );
    }
    assert_eq!(total_macs(&layers), 300_774_272);
    assert_eq!(total_weights(&layers), 3_469_760);
    let b3 = &spec.layers[8];
    assert_eq!(
        b3.note.as_deref(),
        Some("output summed with the output of b2_pw (ONNX Add node `b3_add`); the next layer reads the result")
    );
}

/// torchvision's resnet18 at 224: conv1 118,013,952 MACs; layer1 4 x 115,605,504; layers 2-4
/// 57,802,752 + 3 x 115,605,504 + 6,422,528 (the 1x1/2 projection) = 411,041,792 each; fc
/// 512,000: 1,814,073,344. Weights: 9,408 + 147,456 + 524,288 + 2,097,152 + 8,388,608 +
/// 512,000 = 11,678,912 (torchvision's 11,689,512 parameters less 1,000 fc biases and 9,600
/// batch-norm parameters).
#[test]
fn resnet18_totals_and_chain() {
    let (spec, layers) = import("resnet18.onnx", None);
    assert_eq!(layers.len(), 21);
    assert_eq!(total_macs(&layers), 1_814_073_344);
    assert_eq!(total_weights(&layers), 11_678_912);
    let by_name = |n: &str| spec.layers.iter().find(|l| l.name == n).unwrap();
    // The stem's max-pool is the pool of the first block's conv; the projections read the
    // previous block's sum (its last conv) and the next block reads the projection's sum.
    let pool = by_name("l1_0_c1").pool.unwrap();
    assert_eq!(
        (pool.kernel.w(), pool.stride.w(), pair(pool.pad, 0)),
        (3, 2, (1, 1))
    );
    assert_eq!(by_name("l2_0_ds").input.as_deref(), Some("l1_1_c2"));
    assert_eq!(by_name("l2_1_c1").input, None);
    let i = spec
        .layers
        .iter()
        .position(|l| l.name == "l2_1_c1")
        .unwrap();
    assert_eq!(spec.layers[i - 1].name, "l2_0_ds");
    assert_eq!(by_name("fc").kind, qmap::spec::LayerKind::Fc);
}

/// The trained FashionMNIST networks (initializers, batch-norm, a dynamic batch): totals
/// against an independent count, the products of each Conv/Gemm weight shape and its output
/// extent from `onnx.shape_inference` (PyPI onnx 1.23), which gave 4,895,456 MACs and 143,648
/// weights (mbv2; tools/accuracy/fmnist_models.json says 4,895,456 MACs too) and 2,832,352 MACs
/// and 155,968 weights (mbv1).
#[test]
fn fmnist_totals() {
    let (_, v2) = import("fmnist_mbv2.onnx", Some(vec![1, 1, 28, 28]));
    assert_eq!(
        (v2.len(), total_macs(&v2), total_weights(&v2)),
        (26, 4_895_456, 143_648)
    );
    let (_, v1) = import("fmnist_mbv1.onnx", Some(vec![1, 1, 28, 28]));
    assert_eq!(
        (v1.len(), total_macs(&v1), total_weights(&v1)),
        (18, 2_832_352, 155_968)
    );
    // A batch of 4 multiplies the MACs, not the weights.
    let (spec, b4) = import("fmnist_mbv1.onnx", Some(vec![4, 1, 28, 28]));
    assert_eq!(total_macs(&b4), 4 * 2_832_352);
    assert_eq!(total_weights(&b4), 155_968);
    assert!(spec.layers.iter().all(|l| l.n == 4));
}

#[test]
fn rarer_ops() {
    let (spec, layers) = import("onnx_features.onnx", None);
    let rows: Vec<String> = spec.layers.iter().map(shape).collect();
    assert_eq!(
        rows,
        [
            "grouped Conv2d N2 C8 M16 G- groups4 P32 Q32 R3 S3 stride(1, 1) pad(1, 1) dil(1, 1) None",
            // SAME_UPPER at stride 2 pads 0 before, 1 after: recorded as pad 1 (same 16 x 16).
            "same Conv2d N2 C16 M16 G- groups1 P16 Q16 R3 S3 stride(2, 2) pad(1, 1) dil(1, 1) None",
            "dilated Conv2d N2 C16 M32 G- groups1 P16 Q16 R3 S3 stride(1, 1) pad(2, 2) dil(2, 2) None",
            "proj Conv2d N2 C32 M64 G- groups1 P8 Q8 R1 S1 stride(1, 1) pad(0, 0) dil(1, 1) Some((2, 2, 2, (0, 0)))",
            "se_fc Conv2d N2 C64 M64 G- groups1 P1 Q1 R1 S1 stride(1, 1) pad(0, 0) dil(1, 1) Some((8, 8, 1, (0, 0)))",
            // The 8x8 image reshaped to a 64-long sequence: the sequence folds into N.
            "tokens Fc N128 C64 M48 G- groups1 P1 Q1 R1 S1 stride(1, 1) pad(0, 0) dil(1, 1) None",
        ]
    );
    assert_eq!(spec.layers[5].input.as_deref(), Some("proj"));
    assert!(spec.layers[3].note.as_deref().unwrap().contains("se_mul"));
    // grouped: 2·16·(8/4)·32·32·9 = 589,824 MACs, 16·2·9 = 288 weights.
    assert_eq!(
        (layers[0].problem.macs(), layers[0].weights),
        (589_824, 288)
    );
}

#[test]
fn cli_import_summary_json_and_yaml_round_trip() {
    let dir = scratch("onnx_import");
    let out = dir.join("resnet18.yaml");
    let o = qmap_in(
        &root(),
        &[
            "import",
            "models/nets/resnet18.onnx",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(
        text.contains("21 layers, 1,814,073,344 MACs, 11,678,912 weights"),
        "{text}"
    );
    assert!(
        text.contains("conv2d         20    1,813,561,344   11,166,912"),
        "{text}"
    );
    // The YAML reads back as the same network.
    let back: NetworkSpec = load_yaml(&out).unwrap();
    let (spec, _) = import("resnet18.onnx", None);
    assert_eq!(
        serde_json::to_value(&back.layers).unwrap(),
        serde_json::to_value(&spec.layers).unwrap()
    );
    let o = qmap_in(
        &root(),
        &["import", "models/nets/mobilenet_v2.onnx", "--json"],
    );
    let j = json(&o);
    assert_eq!(j["macs_total"], 300_774_272u64);
    assert_eq!(j["weights_total"], 3_469_760u64);
    assert_eq!(j["layers"].as_array().unwrap().len(), 53);
    assert_eq!(j["layers"][1]["name"], "b1_dw");
    assert_eq!(j["layers"][1]["kind"], "depthwise");
    assert_eq!(j["layers"][1]["dims"]["G"], 32);
    assert_eq!(j["layers"][1]["macs"], 32 * 112 * 112 * 9);
    assert_eq!(j["layers"][1]["weights"], 32 * 9);
}

fn fails(args: &[&str], expect: &[&str]) {
    let o = qmap_in(&root(), args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for e in expect {
        assert!(err.contains(e), "{args:?}: `{e}` not in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn import_errors() {
    fails(
        &["import", "models/nets/onnx_bad_op.onnx"],
        &["onnx_bad_op.onnx: graph.node[3] `up` (ConvTranspose): unsupported ONNX op `ConvTranspose`"],
    );
    fails(
        &["import", "Cargo.toml"],
        &["Cargo.toml: (file): not an ONNX model"],
    );
    fails(
        &["import", "no/such.onnx"],
        &["no/such.onnx: (file): cannot read"],
    );
    fails(
        &["import", "models/nets/fmnist_mbv2.onnx"],
        &["fmnist_mbv2.onnx: graph.input[0] `input`: dim 0 is dynamic (`N`): give the whole shape with --input-shape"],
    );
    fails(
        &["import", "models/nets/resnet18.onnx", "--input-shape", "1,3,112,112"],
        &["resnet18.onnx: graph.input[0] `input`: --input-shape gives 112 for dim 2, the graph 224"],
    );
    fails(
        &[
            "import",
            "models/nets/resnet18.onnx",
            "--input-shape",
            "1,3,224",
        ],
        &["does not fit the input's 4 dims"],
    );
}

/// An instance reads the ONNX file directly (its dynamic batch from `workload.batch`).
#[test]
fn instance_with_an_onnx_network_runs_baseline() {
    let dir = scratch("onnx_baseline");
    let o = qmap_in(
        &root(),
        &[
            "baseline",
            "instances/resnet18_eyeriss.yaml",
            "--out",
            dir.to_str().unwrap(),
            "--cache",
            "none",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    // 21 layers and the network's row, all proved.
    assert_eq!(rows.len(), 22);
    assert!(rows.iter().all(|r| r.contains(",optimal,")), "{csv}");
    assert!(
        rows[21].starts_with("(network),,,,7021885153.7816,14518272,optimal,"),
        "{csv}"
    );
    assert!(rows[0].starts_with("conv1,8,8,8,"), "{csv}");
    // fmnist_mbv1 with a dynamic batch: workload.batch sets N.
    let inst = dir.join("fmnist.yaml");
    let arch = root().join("models/arch/eyeriss.yaml");
    let net = nets("fmnist_mbv1.onnx");
    std::fs::write(
        &inst,
        format!(
            "architecture: {}\nworkload: {{network: {}, batch: 2, select: 1}}\nbits: {{inputs: 8, weights: 8, outputs: 8}}\n",
            arch.display(),
            net.display()
        ),
    )
    .unwrap();
    let loaded = qmap::instance::load(Path::new(&inst)).unwrap();
    assert_eq!(loaded.layers.len(), 18);
    assert_eq!(total_macs(&loaded.layers), 2 * 2_832_352);
}

/// The BERT-base block as a PyTorch export lays it out (heads by Reshape/Transpose, Q K^T and
/// softmax(.) V as MatMuls of two activations) equals models/nets/bert_base_block.yaml.
#[test]
fn bert_block_equals_the_yaml_network() {
    let (spec, layers) = import("bert_base_block.onnx", None);
    let path = nets("bert_base_block.yaml");
    let yaml: NetworkSpec = load_yaml(&path).unwrap();
    let yl = build_network(&yaml, false, None, &path).unwrap();
    assert_eq!(spec.layers.len(), yaml.layers.len());
    for (i, (a, b)) in spec.layers.iter().zip(&yaml.layers).enumerate() {
        assert_eq!(shape(a), shape(b), "layer {i}");
        assert_eq!(a.input_b, b.input_b, "layer {i}");
        assert_eq!(layers[i].producer, yl[i].producer, "layer {i}");
    }
    assert_eq!(total_macs(&layers), 931_135_488);
    assert_eq!(total_weights(&layers), 7_077_888);
}

/// Matmul layers: what they do not take is an error naming the field; `front` refuses them.
#[test]
fn matmul_errors_and_front_refusal() {
    let dir = scratch("onnx_matmul");
    let net = |extra: &str| {
        format!(
            "name: t\nlayers:\n  - {{name: a, kind: conv2d, C: 8, M: 8, P: 4}}\n  - {{name: m, \
             kind: matmul, N: 2, C: 4, M: 4, P: 4, input_b: a{extra}}}\n"
        )
    };
    let load = |text: String| {
        let p = dir.join("net.yaml");
        std::fs::write(&p, text).unwrap();
        let spec: NetworkSpec = load_yaml(&p).unwrap();
        build_network(&spec, false, None, &p).map(|l| l.len())
    };
    assert_eq!(load(net("")).unwrap(), 2);
    let e = load(net(", stride: 2")).unwrap_err().to_string();
    assert!(
        e.ends_with("layers[1].stride: matmul layers take no stride"),
        "{e}"
    );
    let e = load(net(", R: 3")).unwrap_err().to_string();
    assert!(
        e.ends_with("layers[1].kind: matmul layers have Q = R = S = 1"),
        "{e}"
    );
    let e = load(net("").replace("input_b: a", "input_b: zz")).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("layers[1].input_b: no earlier layer named `zz`"),
        "{e}"
    );
    // C·N = channels·N': 4 × 2 = 8 × 1; 3 × 2 is not.
    let e = load(net("").replace("C: 4, M: 4", "C: 3, M: 4")).unwrap_err();
    assert!(
        e.to_string()
            .contains("layers[1].C: C = 3 does not match the 8 output channels"),
        "{e}"
    );
    let names = [
        "q_proj", "k_proj", "v_proj", "scores", "context", "out_proj", "ffn1", "ffn2",
    ];
    let mut acc = String::from(
        "kind: proxy\nnetwork: bert_base_block\nfull_precision_accuracy: 70.0\nsource: test\nlayers:\n",
    );
    for n in names {
        acc += &format!("  - {{name: {n}, weight_sensitivity: 1, activation_sensitivity: 1}}\n");
    }
    std::fs::write(dir.join("acc.yaml"), acc).unwrap();
    let inst = dir.join("front.yaml");
    let r = root();
    std::fs::write(
        &inst,
        format!(
            "architecture: {r}/models/arch/eyeriss.yaml\nworkload: {{network: \
             {r}/models/nets/bert_base_block.yaml}}\nbits: {{inputs: [4, 8], weights: [4, 8], \
             outputs: [4, 8]}}\nfront: {{accuracy: acc.yaml}}\n",
            r = r.display()
        ),
    )
    .unwrap();
    let o = qmap_in(&root(), &["front", inst.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("layer `scores` is a matmul (two activation operands): `qmap front` does not take matmul layers yet"), "{err}");
}

/// `qmap front` end to end on ResNet-18 read from its ONNX file (proxy accuracy): the uniform
/// 8-bit point costs what `baseline` proves for the network (7021.885 uJ).
#[test]
fn front_on_the_onnx_resnet18() {
    let o = qmap_in(
        &root(),
        &[
            "front",
            "instances/front_resnet18_eyeriss.yaml",
            "--cache",
            "none",
        ],
    );
    let text = stdout(&o);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("uniform 8-bit: 7021.885 uJ, 69.7434 accuracy (proxy)"),
        "{text}"
    );
    assert!(
        text.contains("at no accuracy loss vs uniform 8-bit: 6943.533 uJ"),
        "{text}"
    );
}
