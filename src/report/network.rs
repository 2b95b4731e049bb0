//! `qmap import`'s outputs: the network YAML (one flow mapping per layer, the layout of
//! `models/nets/*.yaml`) and the import summary (layers by kind, MACs, weights).

use crate::app::import::{kind_name, ImportReport};
use crate::report::thousands;
use crate::spec::{LayerKind, LayerSpec, NetworkSpec, Pair, PoolSpec};
use std::fmt::Write;

/// A string as a YAML (JSON-style) quoted scalar.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A pair as YAML: `2` or `[2, 1]`.
fn pair(p: Pair) -> String {
    match p {
        Pair::Both(v) => v.to_string(),
        Pair::Each([w, h]) => format!("[{w}, {h}]"),
    }
}

/// A pooling window as a YAML flow mapping.
fn pool(p: &PoolSpec) -> String {
    let mut s = format!("{{kernel: {}, stride: {}", pair(p.kernel), pair(p.stride));
    if let Some(pad) = p.pad {
        let _ = write!(s, ", pad: {}", pair(pad));
    }
    s + "}"
}

/// One layer as a YAML flow mapping.
fn layer(l: &LayerSpec) -> String {
    let mut parts = vec![
        format!("name: {}", quoted(&l.name)),
        format!("kind: {}", kind_name(l.kind)),
    ];
    let dims = [
        ("N", (l.n != 1).then_some(l.n)),
        ("C", l.c),
        ("M", l.m),
        ("G", l.g),
        ("groups", l.groups),
    ];
    parts.extend(
        dims.iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}"))),
    );
    let spatial = [("P", l.p), ("Q", l.q), ("R", l.r), ("S", l.s)];
    let shown = match l.kind {
        LayerKind::Fc => 0,
        LayerKind::Matmul => 1,
        _ => 4,
    };
    parts.extend(spatial[..shown].iter().map(|(k, v)| format!("{k}: {v}")));
    let pairs = [
        ("stride", l.stride),
        ("dilation", l.dilation),
        ("pad", l.pad),
    ];
    parts.extend(
        pairs
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}: {}", pair(v)))),
    );
    if let Some(input) = &l.input {
        parts.push(format!("input: {}", quoted(input)));
    }
    if let Some(b) = &l.input_b {
        parts.push(format!("input_b: {}", quoted(b)));
    }
    if let Some(p) = &l.pool {
        parts.push(format!("pool: {}", pool(p)));
    }
    if let Some(note) = &l.note {
        parts.push(format!("note: {}", quoted(note)));
    }
    format!("  - {{{}}}\n", parts.join(", "))
}

/// The network as a YAML file that qmap reads back as the same network.
pub fn network_yaml(net: &NetworkSpec) -> String {
    let mut s = format!(
        "# {}: written by `qmap import`.\nname: {}\n",
        net.name,
        quoted(&net.name)
    );
    if let Some(source) = &net.source {
        let _ = writeln!(s, "source: {}", quoted(source));
    }
    if let Some(i) = &net.input {
        let _ = writeln!(
            s,
            "input: {{channels: {}, height: {}, width: {}}}",
            i.channels, i.height, i.width
        );
    }
    s.push_str("layers:\n");
    for l in &net.layers {
        s.push_str(&layer(l));
    }
    s
}

/// The import summary: totals, then layers, MACs and weights by kind.
pub fn import_text(r: &ImportReport) -> String {
    let mut s = format!(
        "{}: network `{}`, {} layers, {} MACs, {} weights\n",
        r.model,
        r.network,
        r.layers.len(),
        thousands(r.macs_total),
        thousands(r.weights_total)
    );
    let _ = writeln!(
        s,
        "  {:<10} {:>6} {:>16} {:>12}",
        "kind", "layers", "MACs", "weights"
    );
    for (kind, t) in &r.by_kind {
        let _ = writeln!(
            s,
            "  {kind:<10} {:>6} {:>16} {:>12}",
            t.layers,
            thousands(t.macs),
            thousands(t.weights)
        );
    }
    if let Some(out) = &r.out {
        let _ = writeln!(s, "wrote {out}");
    }
    s
}
