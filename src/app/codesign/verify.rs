//! `qmap front --verify-accuracy`: every front point's true accuracy, measured by running the
//! network ([`crate::infer`]) with the point's per-layer bits (weights at the layer's weight
//! bits, each layer's input at its input bits), beside what the additive accuracy model
//! predicted. A point breaks its budget when its measured score (top-1, or −KL for a table that
//! selects by KL) is below the front's accuracy budget. Also the least-energy point whose
//! measured top-1 is at least uniform 8-bit's measured top-1: the headline at no *measured*
//! loss.

use super::{CodesignRequest, ExactFront, Inputs};
use crate::front::{self as fr, AccuracyKind, FrontPoint};
use crate::infer::{Measurement, Provenance, QuantConfig, Session};
use crate::spec::InputError;
use serde::Serialize;
use std::path::PathBuf;

/// Where the measurement's data come from.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The folder of the dataset's IDX files.
    pub data: PathBuf,
    /// The first test image measured (e.g. past the images the table was measured on).
    pub first: usize,
    /// Test images measured (None: all from `first` on).
    pub test_images: Option<usize>,
    /// Training images the activation ranges are calibrated on.
    pub calib_images: usize,
}

/// One design, predicted and measured.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub energy_pj: f64,
    /// The front's score: accuracy (%), or −Σ KL (nats) for a table that selects by KL.
    pub predicted_score: f64,
    /// Full-precision top-1 + Σ per-layer top-1 deltas (%).
    pub predicted_top1: f64,
    /// Σ per-layer KLs (nats), when the table has them.
    pub predicted_kl: Option<f64>,
    pub measured: Measurement,
    /// The measured score is below the front's accuracy budget.
    pub breaks_budget: bool,
}

/// How far the additive predictions are from the measurements along the front.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PredictionError {
    /// |predicted top-1 − measured top-1| (points): largest and median over the points.
    pub top1_max: f64,
    pub top1_median: f64,
    /// |predicted KL − measured KL| (nats), when predicted.
    pub kl_max: Option<f64>,
    pub kl_median: Option<f64>,
}

/// The verification of a front.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub provenance: Provenance,
    /// The float network on the same test images.
    pub float: Measurement,
    pub uniform_8bit: Option<Checked>,
    /// One per front point, in the front's order.
    pub points: Vec<Checked>,
    /// Points whose measured score breaks the front's budget.
    pub broken: usize,
    pub prediction_error: Option<PredictionError>,
    /// The least-energy point (index into `points`) measured at least as accurate (top-1) as
    /// uniform 8-bit, and the energy it saves against it (%).
    pub best_at_no_measured_loss: Option<usize>,
    pub saving_at_no_measured_loss_percent: Option<f64>,
    pub seconds: f64,
}

/// Measures uniform 8-bit and every point of `exact` ([`Verification`]).
pub(super) fn verify(
    req: &CodesignRequest,
    v: &VerifyRequest,
    inputs: &Inputs,
    exact: &ExactFront,
) -> Result<Verification, InputError> {
    let t0 = std::time::Instant::now();
    let onnx = onnx_file(req, inputs)?;
    let session = Session::new_from(&onnx, &v.data, v.calib_images, v.first, v.test_images)?;
    let missing = (inputs.inst.layers.iter()).find(|l| !session.layers().contains(&l.name));
    if let Some(l) = missing {
        let why = format!(
            "layer `{}` is not a Conv/Gemm node of {}",
            l.name,
            onnx.display()
        );
        return Err(InputError::new(req.instance, "workload.network", why));
    }
    let designs: Vec<&FrontPoint> = exact.uniform8.iter().chain(&exact.front.points).collect();
    let configs: Vec<QuantConfig> = designs.iter().map(|p| config(p)).collect();
    let measured = session.measure_many(&configs, "verifying the front's accuracy");
    let budget = exact.budgets.min_accuracy;
    let check = |(p, m): (&&FrontPoint, &Measurement)| checked(inputs, p, *m, budget);
    let mut all: Vec<Checked> = designs.iter().zip(&measured).map(check).collect();
    let uniform_8bit = exact.uniform8.as_ref().map(|_| all.remove(0));
    let best = uniform_8bit.as_ref().and_then(|u| {
        let ok = |c: &&Checked| c.measured.correct >= u.measured.correct;
        let i = all
            .iter()
            .filter(ok)
            .min_by(|a, b| a.energy_pj.total_cmp(&b.energy_pj))?;
        Some((all.iter().position(|c| std::ptr::eq(c, i))?, u.energy_pj))
    });
    Ok(Verification {
        provenance: session.provenance(),
        float: session.float_top1(),
        broken: all.iter().filter(|c| c.breaks_budget).count(),
        prediction_error: prediction_error(&all),
        best_at_no_measured_loss: best.map(|b| b.0),
        saving_at_no_measured_loss_percent: best
            .map(|(i, u8pj)| 100.0 * (1.0 - all[i].energy_pj / u8pj)),
        uniform_8bit,
        points: all,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The instance's network file, which must be ONNX (it holds the weights).
fn onnx_file(req: &CodesignRequest, inputs: &Inputs) -> Result<PathBuf, InputError> {
    match &inputs.inst.network_file {
        Some(f) if crate::onnx::is_onnx(f) => Ok(f.clone()),
        _ => Err(InputError::new(
            req.instance,
            "workload.network",
            "--verify-accuracy runs the network: the workload must be an ONNX file with its \
             weights",
        )),
    }
}

/// A design's quantisation: per layer its weight bits and its input bits.
fn config(p: &FrontPoint) -> QuantConfig {
    let bits = |l: &fr::LayerChoice| {
        let b = l.bits;
        (l.name.clone(), (Some(b.weight_bits), Some(b.input_bits)))
    };
    QuantConfig {
        layers: p.layers.iter().map(bits).collect(),
    }
}

/// A design's predictions beside its measurement.
fn checked(inputs: &Inputs, p: &FrontPoint, m: Measurement, budget: Option<f64>) -> Checked {
    let model = &inputs.accuracy;
    let (w, a) = (
        |l: &fr::LayerChoice| l.bits.weight_bits,
        |l: &fr::LayerChoice| l.bits.input_bits,
    );
    let delta = |l: &fr::LayerChoice| model.delta(&l.name, w(l), a(l)).unwrap_or(f64::NAN);
    let kl = |l: &fr::LayerChoice| model.kl(&l.name, w(l), a(l));
    let measured_score = match model.kind() {
        AccuracyKind::Kl => -m.kl,
        _ => m.top1,
    };
    Checked {
        energy_pj: p.energy_pj,
        predicted_score: p.accuracy,
        predicted_top1: model.full_precision_accuracy() + p.layers.iter().map(delta).sum::<f64>(),
        predicted_kl: p.layers.iter().map(kl).sum(),
        measured: m,
        breaks_budget: budget.is_some_and(|b| measured_score < b),
    }
}

/// Largest and median absolute errors of the predictions; None without points.
fn prediction_error(points: &[Checked]) -> Option<PredictionError> {
    let top1: Vec<f64> = (points.iter())
        .map(|c| (c.predicted_top1 - c.measured.top1).abs())
        .collect();
    let kl: Option<Vec<f64>> = (points.iter())
        .map(|c| c.predicted_kl.map(|k| (k - c.measured.kl).abs()))
        .collect();
    let (top1_max, top1_median) = max_median(top1)?;
    let kl = kl.and_then(max_median);
    Some(PredictionError {
        top1_max,
        top1_median,
        kl_max: kl.map(|k| k.0),
        kl_median: kl.map(|k| k.1),
    })
}

/// The largest value and the median (the mean of the middle two for an even count).
fn max_median(mut v: Vec<f64>) -> Option<(f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((v[n - 1], median))
}
