//! The text of `qmap front --verify-accuracy`: per design its predicted and measured top-1 and
//! KL, the points that break the front's budget, the prediction's error along the front and the
//! least-energy design at no measured loss against uniform 8-bit.

use super::text::energy;
use crate::app::codesign::{Checked, FrontReport, Verification};
use std::fmt::Write;

/// The verification section of the front's text.
pub fn text(r: &FrontReport, v: &Verification) -> String {
    let mut out = String::new();
    let p = &v.provenance;
    let _ = writeln!(
        out,
        "\naccuracy measured (--verify-accuracy): test images {}..{}, activations calibrated on {} \
         training images ({}), {:.1} s",
        p.test_first,
        p.test_first + v.references.float.images,
        p.calibration_images,
        p.data_dir,
        v.seconds
    );
    let _ = writeln!(
        out,
        "  float32 network: top-1 {:.2} %",
        v.references.float.top1
    );
    let _ = writeln!(
        out,
        "{:>4} {:>14} {:>10} {:>10} {:>10} {:>10}",
        "#", "energy", "top-1 pred", "top-1 meas", "KL pred", "KL meas"
    );
    if let Some(u) = &v.references.uniform_8bit {
        out += &row("u8", u);
    }
    for (i, c) in v.points.iter().enumerate() {
        out += &row(&i.to_string(), c);
    }
    out += "(top-1 in %; KL of the logits against float32 in nats; pred: the table's per-layer \
            values added up, top-1 from the float network's on these images; ! the measured value \
            breaks the front's budget)\n";
    out += &summary(r, v);
    out
}

/// One design's line.
fn row(name: &str, c: &Checked) -> String {
    let kl = c.predicted.kl.map_or("-".into(), |k| format!("{k:.5}"));
    format!(
        "{:>4} {:>14} {:>10.2} {:>10.2} {:>10} {:>10.5}{}\n",
        name,
        energy(c.energy_pj),
        c.predicted.top1,
        c.measured.top1,
        kl,
        c.measured.kl,
        if c.breaks_budget { " !" } else { "" }
    )
}

/// The budget breaks, the prediction error and the headline at no measured loss.
fn summary(r: &FrontReport, v: &Verification) -> String {
    let mut out = String::new();
    if let Some(b) = r.min_accuracy {
        let _ = writeln!(
            out,
            "{} of {} points break the budget (score {b:.4}) when measured",
            v.summary.broken,
            v.points.len()
        );
    }
    if let Some(e) = &v.summary.prediction_error {
        let _ = write!(
            out,
            "additive prediction vs measured along the front: top-1 error max {:.2}, median {:.2} \
             points",
            e.top1.max, e.top1.median
        );
        if let Some(k) = e.kl {
            let _ = write!(
                out,
                "; KL error max {:.5}, median {:.5} nats",
                k.max, k.median
            );
        }
        out += "\n";
    }
    let Some(u) = &v.references.uniform_8bit else {
        return out;
    };
    for h in &v.summary.headline {
        let what = match h.loss_points {
            0.0 => "at no measured top-1 loss vs uniform 8-bit".to_string(),
            l => format!("within {l} measured top-1 points of uniform 8-bit"),
        };
        let _ = match &h.best {
            Some(b) => writeln!(
                out,
                "{what}: point {}, top-1 {:.2} % (uniform 8-bit {:.2} %), {} vs {}: saves {:.1} %",
                b.point,
                b.top1,
                u.measured.top1,
                energy(b.energy_pj),
                energy(u.energy_pj),
                b.saving_percent
            ),
            None => writeln!(out, "{what} ({:.2} %): no front point", u.measured.top1),
        };
    }
    out
}
