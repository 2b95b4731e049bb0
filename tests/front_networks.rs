//! `qmap front` on the large shipped networks, with an accuracy proxy given by a rule instead of
//! per-layer lists: the rule reproduces the shipped MobileNet proxies layer for layer, its bad
//! fields are named, and the front on ResNet-50 (reduced bit lists, to keep the test short)
//! runs end to end with its most accurate point equal to uniform 8-bit.

use qmap::front::{AccuracyModel, ProxyRule};
use qmap::instance;
mod common;

use common::{json, qmap_in, root, scratch};

/// The rule the shipped MobileNet proxy files list the result of.
const SHIPPED_RULE: ProxyRule = ProxyRule {
    first: 4.0,
    last: 4.0,
    grouped: 2.0,
    other: 1.0,
    total: 960.0,
};

/// (name, depthwise or grouped) per layer of an instance's network.
fn kinds(inst: &instance::Instance) -> Vec<(String, bool)> {
    (inst.layers.iter())
        .map(|l| (l.name.clone(), l.problem.dims.iter().any(|d| d == "G")))
        .collect()
}

#[test]
fn proxy_rule_reproduces_the_shipped_mobilenet_proxies() {
    for (inst, proxy) in [
        ("front_mbv1_eyeriss.yaml", "mobilenet_v1_proxy.yaml"),
        ("front_mbv2_eyeriss.yaml", "mobilenet_v2_proxy.yaml"),
    ] {
        let inst = instance::load(&root().join("instances").join(inst)).unwrap();
        let listed = AccuracyModel::load(&root().join("models/accuracy").join(proxy)).unwrap();
        let AccuracyModel::Proxy(listed) = listed else {
            panic!("{proxy} is not a proxy")
        };
        let by_rule = SHIPPED_RULE.sensitivities(&kinds(&inst));
        assert_eq!(by_rule.len(), inst.layers.len());
        assert_eq!(listed.layers.len(), inst.layers.len(), "{proxy}");
        for (name, s) in &listed.layers {
            let r = by_rule[name];
            // The files list six decimals.
            assert!(
                (r.weight - s.weight).abs() < 1e-6,
                "{proxy} {name}: {r:?} vs {s:?}"
            );
            assert!((r.activation - s.activation).abs() < 1e-6, "{proxy} {name}");
        }
    }
}

#[test]
fn proxy_rule_errors_name_the_field() {
    let dir = scratch("proxy_rule_errors");
    let head = "kind: proxy\nfull_precision_accuracy: 70\nsource: test\n";
    let rule = "rule: {first: 4, last: 4, grouped: 2, other: 1, total: 960}\n";
    for (body, field) in [
        (format!("{rule}layers: []\n"), "rule"),
        (rule.replace("other: 1", "other: -1"), "rule.other"),
        (rule.replace("total: 960", "total: 0"), "rule.total"),
        (rule.replace("total: 960", "total: 960, extra: 1"), "rule"),
        (String::new(), "layers"),
    ] {
        let f = dir.join("acc.yaml");
        std::fs::write(&f, format!("{head}{body}")).unwrap();
        let e = AccuracyModel::load(&f).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{}: {field}", f.display())),
            "{body}: {e}"
        );
    }
}

#[test]
fn front_on_resnet50_end_to_end() {
    let dir = scratch("front_resnet50");
    let models = root().join("models");
    let inst = dir.join("resnet50_front.yaml");
    // Weights at 4 or 8 bits, activations at 8: two table entries per layer shape.
    std::fs::write(
        &inst,
        format!(
            "architecture: {m}/arch/eyeriss.yaml\nconstraints: {m}/arch/eyeriss_constraints.yaml\n\
             workload: {{network: {m}/nets/resnet50.yaml}}\n\
             bits: {{inputs: [8], weights: [4, 8], outputs: [8]}}\npacking: seed\n\
             front: {{accuracy: {m}/accuracy/resnet50_proxy.yaml, first_input_bits: 8, \
             last_output_bits: 8}}\n",
            m = models.display()
        ),
    )
    .unwrap();
    let out = qmap_in(&dir, &["front", "resnet50_front.yaml", "--json", "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["accuracy_model"], "accuracy (proxy)");
    assert_eq!(v["complete"], true);
    let points = v["points"].as_array().unwrap();
    assert!(points.len() >= 2, "{} points", points.len());
    // Uniform 8-bit: every weight and activation at 8 bits loses 960 · 2^-16 points in all.
    let u8 = &v["uniform_8bit"];
    let want = 76.13 - 960.0 * (-16f64).exp2();
    assert!(
        (u8["accuracy"].as_f64().unwrap() - want).abs() < 1e-9,
        "{u8}"
    );
    for p in points {
        let layers = p["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 54);
        let sum: f64 = layers
            .iter()
            .map(|l| l["energy_pj"].as_f64().unwrap())
            .sum();
        let e = p["energy_pj"].as_f64().unwrap();
        assert!((sum - e).abs() <= 1e-9 * e, "{sum} vs {e}");
    }
    // The most accurate point (the last: energy increases along the front) is uniform 8-bit.
    let last = points.last().unwrap();
    assert!((last["accuracy"].as_f64().unwrap() - want).abs() < 1e-9);
    let (e, e8) = (
        last["energy_pj"].as_f64().unwrap(),
        u8["energy_pj"].as_f64().unwrap(),
    );
    assert!((e - e8).abs() <= 1e-9 * e8, "{e} vs {e8}");
    // A 4-bit-weight design saves energy: the first point is cheaper than uniform 8-bit.
    assert!(points[0]["energy_pj"].as_f64().unwrap() < e8);
}
