//! `qmap front --verify-accuracy` on the measured Fashion-MNIST instance: every point and uniform
//! 8-bit measured on 500 test images past the table's (5000..5500), the predictions recomputed from the table's rows by hand,
//! the measurements recomputed by the library with the bits read back from the JSON (weights at
//! the layer's weight bits, its input at its input bits), and the budget marks checked. Skips
//! with a message when the dataset (Debian's `dataset-fashion-mnist`) is absent.

use qmap::infer::{QuantConfig, Session};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const DATA: &str = "/usr/share/datasets/fashion-mnist";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Rows of a table: per (layer, weight bits, activation bits), (delta, kl).
type Rows = BTreeMap<(String, u64, u64), (f64, f64)>;

/// The measured table's rows.
fn table_rows(file: &Path) -> Rows {
    let text = std::fs::read_to_string(file).unwrap();
    let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let rows = y["deltas"].as_sequence().expect("deltas");
    let key = |r: &serde_yaml_ng::Value| {
        let u = |k: &str| r[k].as_u64().unwrap();
        let name = r["layer"].as_str().unwrap().to_string();
        (name, u("weight_bits"), u("activation_bits"))
    };
    let val = |r: &serde_yaml_ng::Value| (r["delta"].as_f64().unwrap(), r["kl"].as_f64().unwrap());
    rows.iter().map(|r| (key(r), val(r))).collect()
}

#[test]
fn verified_front_predictions_and_measurements() {
    if !Path::new(DATA).exists() {
        eprintln!("SKIP: {DATA} is absent (apt-get install dataset-fashion-mnist; make test does)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("qmap-verify-{}", std::process::id()));
    let inst = root().join("instances/front_fmnist_mbv2_eyeriss.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_qmap"))
        .args([
            "front",
            inst.to_str().unwrap(),
            "--verify-accuracy",
            "--test-from",
            "5000",
            "--test-images",
            "500",
        ])
        .args([
            "--max-kl", "0.03", "--points", "4", "--json", "--quiet", "--cache",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A stopped front (the point budget) exits 0 with `complete: false`.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["accuracy_model"], "-KL (nats, measured table)");
    assert!((j["min_accuracy"].as_f64().unwrap() + 0.03).abs() < 1e-12);
    let v = &j["verification"];
    let points = j["points"].as_array().unwrap();
    let checked = v["points"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() == checked.len());
    let rows = table_rows(&root().join("models/accuracy/fmnist_mbv2_measured.yaml"));
    let fp = v["references"]["float"]["top1"].as_f64().unwrap(); // the float network on the same images
    let onnx = root().join("models/nets/fmnist_mbv2.onnx");
    let session = Session::new_from(&onnx, Path::new(DATA), 1000, 5000, Some(500)).unwrap();
    assert_eq!(
        v["references"]["float"]["correct"].as_u64().unwrap() as usize,
        session.float_top1().correct
    );
    assert_eq!(v["provenance"]["test_first"], 5000);
    let mut broken = 0;
    for (p, c) in points.iter().zip(checked) {
        let layers = p["layers"].as_array().unwrap();
        let cell = |l: &Value| {
            let u = |k: &str| l[k].as_u64().unwrap();
            let key = (
                l["name"].as_str().unwrap().to_string(),
                u("weight_bits"),
                u("input_bits"),
            );
            rows[&key]
        };
        let (delta, kl): (f64, f64) = layers
            .iter()
            .map(cell)
            .fold((0.0, 0.0), |a, x| (a.0 + x.0, a.1 + x.1));
        assert!((c["predicted"]["kl"].as_f64().unwrap() - kl).abs() < 1e-9);
        assert!((c["predicted"]["score"].as_f64().unwrap() + kl).abs() < 1e-9);
        assert!((c["predicted"]["top1"].as_f64().unwrap() - (fp + delta)).abs() < 1e-6);
        let q = QuantConfig {
            layers: layers
                .iter()
                .map(|l| {
                    let b = |k: &str| Some(l[k].as_u64().unwrap() as u32);
                    (
                        l["name"].as_str().unwrap().to_string(),
                        (b("weight_bits"), b("input_bits")),
                    )
                })
                .collect(),
        };
        let m = session.measure(&q);
        assert_eq!(c["measured"]["images"], 500);
        assert_eq!(
            c["measured"]["correct"].as_u64().unwrap() as usize,
            m.correct
        );
        assert!((c["measured"]["kl"].as_f64().unwrap() - m.kl).abs() < 1e-12);
        assert_eq!(c["breaks_budget"].as_bool().unwrap(), m.kl > 0.03);
        broken += usize::from(m.kl > 0.03);
    }
    assert_eq!(v["summary"]["broken"].as_u64().unwrap() as usize, broken);
    // Uniform 8-bit loses almost nothing against float32 on the same images.
    let u8top1 = v["references"]["uniform_8bit"]["measured"]["top1"]
        .as_f64()
        .unwrap();
    let float = v["references"]["float"]["top1"].as_f64().unwrap();
    assert!(
        (u8top1 - float).abs() <= 1.0,
        "uniform 8-bit {u8top1} vs float {float}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
