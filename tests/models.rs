//! The shipped networks: layer counts, MACs and weights against the published figures (true
//! networks) and against the seed's own layer lists (dense depthwise, 100-class head).

use qmap::spec::{load_yaml, NetworkSpec};
use qmap::workload::{build_network, total_macs, total_weights, Layer};
use std::path::PathBuf;

fn net(name: &str, dense: bool, classes: Option<u64>) -> Vec<Layer> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models/nets")
        .join(name);
    let spec: NetworkSpec = load_yaml(&path).unwrap();
    build_network(&spec, dense, classes, &path).unwrap()
}

#[test]
fn mobilenet_v1_true_network() {
    let l = net("mobilenet_v1.yaml", false, None);
    assert_eq!(l.len(), 28);
    assert_eq!(total_macs(&l), 568_740_352);
    assert_eq!(total_weights(&l), 4_209_088);
    // 13 depthwise layers, each with G·R·S weights.
    assert_eq!(
        l.iter()
            .filter(|x| x.problem.dims.contains(&"G".to_string()))
            .count(),
        13
    );
    assert_eq!(l.last().unwrap().problem.bounds[1], 1000);
}

#[test]
fn mobilenet_v2_true_network() {
    let l = net("mobilenet_v2.yaml", false, None);
    assert_eq!(l.len(), 53);
    assert_eq!(total_macs(&l), 300_774_272);
    assert_eq!(total_weights(&l), 3_469_760);
    assert_eq!(
        l.iter()
            .filter(|x| x.problem.dims.contains(&"G".to_string()))
            .count(),
        17
    );
}

/// The seed modelled depthwise layers as dense C×M convolutions and used a 100-class head; its
/// layer lists (`seed_toolchain/mobilenetv{1,2}.yaml`) give these totals.
#[test]
fn seed_mode_totals() {
    let v1 = net("mobilenet_v1.yaml", true, Some(100));
    assert_eq!(
        (v1.len(), total_macs(&v1), total_weights(&v1)),
        (28, 4_827_836_416, 28_356_448)
    );
    let v2 = net("mobilenet_v2.yaml", true, Some(100));
    assert_eq!(
        (v2.len(), total_macs(&v2), total_weights(&v2)),
        (53, 5_547_987_968, 42_863_840)
    );
}

/// Cross-check with the seed's own layer rows when the reference is present: every layer's
/// shape in seed mode equals the seed's row `[W,H,C,N,M,S,R,Wpad,Hpad,Wstride,Hstride]`.
#[test]
fn seed_rows_match_seed_mode_layers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/seed_toolchain");
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} not present", dir.display());
        return;
    }
    for (file, ours) in [
        ("mobilenetv1.yaml", "mobilenet_v1.yaml"),
        ("mobilenetv2.yaml", "mobilenet_v2.yaml"),
    ] {
        let rows: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let rows = rows["layers"].as_sequence().unwrap();
        let layers = net(ours, true, Some(100));
        assert_eq!(rows.len(), layers.len(), "{file}");
        for (row, layer) in rows.iter().zip(&layers) {
            let r: Vec<u64> = row
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let p = &layer.problem;
            let b = |d: &str| p.bounds[p.dim_index(d).unwrap()];
            // Seed rows give the input W, H; ours the output P, Q: P = (W + 2·pad − R) / stride + 1.
            let pw = (r[0] + 2 * r[7] - r[6]) / r[9] + 1;
            let qh = (r[1] + 2 * r[8] - r[5]) / r[10] + 1;
            assert_eq!(
                (b("C"), b("M"), b("R"), b("S"), b("P"), b("Q")),
                (r[2], r[4], r[6], r[5], pw, qh),
                "{file}: layer {}",
                layer.name
            );
        }
    }
}

/// The instance-level switches reach the layers: `classes` resizes the head, `depthwise: dense`
/// turns depthwise layers into dense convolutions; `grouped` (the default) keeps them.
#[test]
fn instance_switches_for_the_seed_modelling() {
    let dir = std::env::temp_dir().join(format!("qmap-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let write = |name: &str, depthwise: &str| {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!(
                "architecture: {r}/models/arch/eyeriss.yaml\nworkload:\n  network: {r}/models/nets/mobilenet_v2.yaml\n  classes: 100\n  depthwise: {depthwise}\n",
                r = root.display()
            ),
        )
        .unwrap();
        qmap::instance::load(&p).unwrap()
    };
    let seed = write("seed.yaml", "dense");
    assert_eq!(
        (total_macs(&seed.layers), total_weights(&seed.layers)),
        (5_547_987_968, 42_863_840)
    );
    let grouped = write("grouped.yaml", "grouped");
    let fc = grouped.layers.last().unwrap();
    assert_eq!(fc.weights, 1280 * 100);
    assert_eq!(
        grouped.layers[1].problem.dims,
        ["N", "G", "P", "Q", "R", "S"]
    );
}

/// The paper's MobileNetV1 as its pipeline ran it (`mobilenet_v1_seed.yaml`): output sizes 112
/// ×3, 55 ×4, 27 ×4, 13 ×12, 6 ×4, dense depthwise layers, and a 1×1 head of 1024 → 1000 over
/// the 6×6 map (the published head count 36,864,000 = 1024 · 1000 · 36). MACs of the 27 layers:
/// Σ C·M·P·Q·R·S = 4,211,429,376; with the head 4,248,293,376.
#[test]
fn mobilenet_v1_as_the_seed_pipeline_ran_it() {
    let l = net("mobilenet_v1_seed.yaml", false, None);
    assert_eq!(l.len(), 28);
    assert_eq!(total_macs(&l), 4_248_293_376);
    assert_eq!(total_macs(&l[..27]), 4_211_429_376);
    assert_eq!(l[27].problem.macs(), 36_864_000);
    let sizes: Vec<u64> = l[..27].iter().map(|x| x.problem.bounds[3]).collect();
    let mut want = vec![112; 3];
    for (size, n) in [(55, 4), (27, 4), (13, 12), (6, 4)] {
        want.extend(std::iter::repeat_n(size, n));
    }
    assert_eq!(sizes, want);
    // Dense depthwise: C = M on every 3x3 layer after conv1.
    assert!(l[1..27]
        .iter()
        .filter(|x| x.problem.bounds[5] == 3)
        .all(|x| x.problem.bounds[1] == x.problem.bounds[2]));
}

/// ResNet-50 v1.5 and VGG-16 (written by `tools/nets/make_nets.py`): the published MACs, and
/// weights equal to the published parameter counts less biases and batch-norm parameters
/// (torchvision: 25,557,032 = 25,502,912 + 1,000 fc biases + 53,120 batch-norm parameters;
/// 138,357,544 = 138,344,128 + 13,416 biases).
#[test]
fn resnet50_and_vgg16() {
    let r = net("resnet50.yaml", false, None);
    assert_eq!(
        (r.len(), total_macs(&r), total_weights(&r)),
        (54, 4_089_184_256, 25_502_912)
    );
    let v = net("vgg16.yaml", false, None);
    assert_eq!(
        (v.len(), total_macs(&v), total_weights(&v)),
        (16, 15_470_264_320, 138_344_128)
    );
    // The projection shortcuts read their block's input, not the previous layer.
    let ds = r.iter().position(|l| l.name == "l2_0_ds").unwrap();
    assert_eq!(r[r[ds].producer.unwrap()].name, "l1_2_c3");
}

/// A layer that cannot read its producer's output is refused with both layers named.
#[test]
fn chaining_errors_name_both_layers() {
    let dir = std::env::temp_dir().join(format!("qmap-chain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        // C against the producer's M.
        (
            "{name: b, kind: conv2d, C: 16, M: 8, P: 8, Q: 8, R: 1, S: 1}",
            "layers[1].C",
            "C = 16 does not match the 32 output channels of its producer `a` (layers[0])",
        ),
        // P against the producer's output, the stride and the padding.
        (
            "{name: b, kind: conv2d, C: 32, M: 8, P: 8, Q: 8, R: 3, S: 3, stride: 1, pad: 0}",
            "layers[1].P",
            "P = 8, but the 8x8 input from its producer `a` (layers[0]) gives 6",
        ),
        // A pool window larger than the producer's output.
        (
            "{name: b, kind: conv2d, C: 32, M: 8, P: 1, Q: 1, R: 1, S: 1, pool: {kernel: 9, stride: 1}}",
            "layers[1].pool",
            "larger than the 8x8 output of its producer `a`",
        ),
        // An fc layer reads the channels, or the whole output flattened; nothing else.
        (
            "{name: b, kind: fc, C: 64, M: 10}",
            "layers[1].C",
            "C = 64 does not match the 32 output channels",
        ),
    ];
    for (i, (second, field, message)) in cases.iter().enumerate() {
        let path = dir.join(format!("net{i}.yaml"));
        let text = format!(
            "name: t\ninput: {{channels: 3, height: 16, width: 16}}\nlayers:\n  - {{name: a, kind: conv2d, C: 3, M: 32, P: 8, Q: 8, R: 3, S: 3, stride: 2, pad: 1}}\n  - {second}\n"
        );
        std::fs::write(&path, text).unwrap();
        let spec: NetworkSpec = load_yaml(&path).unwrap();
        let err = build_network(&spec, false, None, &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(field) && err.contains(message),
            "case {i}: {err}"
        );
    }
    // The same chain is accepted when it is consistent: flattened fc and a pooled conv.
    let ok = dir.join("ok.yaml");
    std::fs::write(
        &ok,
        "name: t\ninput: {channels: 3, height: 16, width: 16}\nlayers:\n  - {name: a, kind: conv2d, C: 3, M: 32, P: 8, Q: 8, R: 3, S: 3, stride: 2, pad: 1}\n  - {name: b, kind: conv2d, C: 32, M: 8, P: 4, Q: 4, R: 3, S: 3, pad: 1, pool: {kernel: 2, stride: 2}}\n  - {name: c, kind: fc, C: 128, M: 10}\n",
    )
    .unwrap();
    let spec: NetworkSpec = load_yaml(&ok).unwrap();
    assert_eq!(build_network(&spec, false, None, &ok).unwrap().len(), 3);
    std::fs::remove_dir_all(&dir).ok();
}

/// `workload.batch` sets every layer's N: MACs and activations scale, weights do not; a layer
/// with its own N, and a batch of 0, are refused naming the field.
#[test]
fn network_batch() {
    let dir = std::env::temp_dir().join(format!("qmap-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let write = |name: &str, workload: &str| {
        let p = dir.join(name);
        let text = format!("architecture: {root}/models/arch/eyeriss.yaml\nworkload:\n{workload}");
        std::fs::write(&p, text).unwrap();
        p
    };
    let net = format!("  network: {root}/models/nets/resnet50.yaml\n");
    let one = qmap::instance::load(&write("b1.yaml", &net)).unwrap();
    let four = qmap::instance::load(&write("b4.yaml", &format!("{net}  batch: 4\n"))).unwrap();
    assert!(four.layers.iter().all(|l| l.problem.bounds[0] == 4));
    assert_eq!(total_macs(&four.layers), 4 * total_macs(&one.layers));
    assert_eq!(total_weights(&four.layers), total_weights(&one.layers));
    let zero = qmap::instance::load(&write("b0.yaml", &format!("{net}  batch: 0\n")));
    assert!(zero
        .unwrap_err()
        .to_string()
        .contains("workload.batch: must be > 0"));
    let own = "  layer: {name: l, kind: conv2d, N: 2, C: 8, M: 8, P: 4, Q: 4}\n  batch: 4\n";
    let err = qmap::instance::load(&write("own.yaml", own))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("workload.layer.N") && err.contains("workload.batch = 4"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// One BERT-base encoder layer at sequence 128 (tools/nets/make_nets.py). MACs: q, k, v and
/// out projections 4 × 128·768·768 = 301,989,888; scores 12 heads × 128·128·64 = 12,582,912;
/// context the same 12,582,912; ffn1 and ffn2 2 × 128·768·3072 = 603,979,776: 931,135,488 in
/// all. Weights: 4 × 768² + 2 × 768·3072 = 7,077,888 (BERT-base's 7,087,872 parameters per
/// layer less 6,912 biases and 3,072 LayerNorm parameters); the two matmuls have none.
#[test]
fn bert_base_block() {
    let l = net("bert_base_block.yaml", false, None);
    assert_eq!(l.len(), 8);
    assert_eq!(total_macs(&l), 931_135_488);
    assert_eq!(total_weights(&l), 7_077_888);
    let scores = &l[3];
    assert_eq!(scores.name, "scores");
    assert!(scores.problem.weights_are_activation());
    assert_eq!((scores.weights, scores.problem.macs()), (0, 12_582_912));
    // The second operand (k_proj's output, per head 64 × 128) sits where weights would.
    let b = scores.problem.tensor_index("Weights").unwrap();
    assert_eq!(scores.problem.tensor_size(b), 12 * 64 * 128);
    assert_eq!(l[4].producer, Some(3));
    assert_eq!(l[5].producer, Some(4));
}

/// `qmap baseline` proves every layer of the BERT block on the shipped Eyeriss (2.7 s when
/// measured, 8 layers, 5 distinct shapes, all enumerated).
#[test]
fn bert_base_block_baseline_on_eyeriss() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("qmap_bert_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inst = dir.join("bert.yaml");
    let m = |p: &str| root.join(p).display().to_string();
    std::fs::write(
        &inst,
        format!(
            "architecture: {}\nconstraints: {}\nworkload: {{network: {}}}\n\
             bits: {{inputs: 8, weights: 8, outputs: 8}}\npacking: seed\n",
            m("models/arch/eyeriss.yaml"),
            m("models/arch/eyeriss_constraints.yaml"),
            m("models/nets/bert_base_block.yaml")
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args(["baseline", inst.to_str().unwrap(), "--out"])
        .arg(&out)
        .args(["--cache", "none"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 9, "{csv}");
    assert!(rows.iter().all(|r| r.contains(",optimal,")), "{csv}");
    // The network's weight bytes at 8 bits: the matmuls add none.
    assert!(rows[8].contains(",7077888,"), "{csv}");
}

/// A matmul's second operand is an activation: at a bit configuration it takes the input bits,
/// where a conv's weights (of every BERT projection and FFN layer) take the weight bits.
#[test]
fn matmul_second_operand_takes_the_input_bits() {
    use qmap::instance::bits_for;
    use qmap::model::BitConfig;
    let bert = net("bert_base_block.yaml", false, None);
    let bits = BitConfig::new(8, 4, 6);
    let (mut matmuls, mut convs) = (0, 0);
    for l in &bert {
        let per_tensor = bits_for(&l.problem, bits).0;
        let names: Vec<&str> = l.problem.tensors.iter().map(|t| t.name.as_str()).collect();
        let at = |n: &str| per_tensor[names.iter().position(|x| *x == n).unwrap()];
        let want = if l.weights == 0 { 8 } else { 4 };
        assert_eq!(at("Weights"), want, "{}", l.name);
        assert_eq!((at("Inputs"), at("Outputs")), (8, 6), "{}", l.name);
        *(if l.weights == 0 {
            &mut matmuls
        } else {
            &mut convs
        }) += 1;
    }
    assert_eq!((matmuls, convs), (2, 6));
}
