//! `qmap accuracy measure`'s text: the provenance, the float32 top-1, and per layer its top-1
//! delta (points) and KL (nats) with its weights alone and its input activations alone at each
//! bit-width.

use crate::app::accuracy::MeasureReport;
use std::fmt::Write;

/// The report as text.
pub fn measure_text(r: &MeasureReport) -> String {
    let p = &r.provenance;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} (sha256 {}…): float32 top-1 {:.2} % ({}/{} test images; calibration: {} training \
         images)",
        p.onnx,
        &p.onnx_sha256[..12],
        r.float.top1,
        r.float.correct,
        r.float.images,
        p.calibration_images
    );
    let _ = writeln!(s, "\none layer alone: top-1 delta (points) / KL (nats)");
    let _ = writeln!(
        s,
        "{:<14} {:<3} {:>5} {:>9} {:>9}",
        "layer", "", "bits", "delta", "KL"
    );
    for m in &r.measured {
        let (what, bits) = match (m.quantised.weight_bits, m.quantised.activation_bits) {
            (Some(b), _) => ("W", b),
            (_, b) => ("A", b.unwrap_or(32)),
        };
        let delta = m.top1 - r.float.top1;
        let _ = writeln!(
            s,
            "{:<14} {what:<3} {bits:>5} {delta:>+9.2} {:>9.4}",
            m.layer, m.kl
        );
    }
    let _ = writeln!(
        s,
        "\n{} configurations measured in {:.1} s; table written to {}",
        r.run.configurations, r.run.seconds, r.run.out
    );
    s
}
