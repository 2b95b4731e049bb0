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

/// One design, predicted and measured; `breaks_budget`: its measured score is below the front's
/// accuracy budget.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub energy_pj: f64,
    pub predicted: Predicted,
    pub measured: Measurement,
    pub breaks_budget: bool,
}

/// What the table's per-layer values add up to for a design: the front's `score` (accuracy in
/// %, or −Σ KL in nats for a table that selects by KL), `top1` (the float network's top-1 on
/// the measured images + Σ top-1 deltas, %) and `kl` (Σ KLs, nats, when the table has them).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Predicted {
    pub score: f64,
    pub top1: f64,
    pub kl: Option<f64>,
}

/// The largest and the median of absolute errors over the front's points.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub max: f64,
    pub median: f64,
}

/// How far the additive predictions are from the measurements: top-1 (points), KL (nats).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PredictionError {
    pub top1: Spread,
    pub kl: Option<Spread>,
}

/// The verification of a front: where the numbers come from, the float network and uniform
/// 8-bit on the same images, one [`Checked`] per front point (the front's order), the summary,
/// and its wall time.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub provenance: Provenance,
    pub references: References,
    pub points: Vec<Checked>,
    pub summary: Summary,
    pub seconds: f64,
}

/// The designs a front's measurements are read against.
#[derive(Debug, Clone, Serialize)]
pub struct References {
    pub float: Measurement,
    pub uniform_8bit: Option<Checked>,
}

/// `broken`: the points whose measured score breaks the front's budget; the prediction's error;
/// the least-energy points measured at no top-1 loss against uniform 8-bit and within
/// [`MEASURED_TOLERANCE`] points of it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub broken: usize,
    pub prediction_error: Option<PredictionError>,
    pub headline: Vec<MeasuredHeadline>,
}

/// The measured headline's second tolerance (top-1 points below uniform 8-bit's): one pass over
/// 5,000 images resolves top-1 to about ±0.4 points (one standard error), so "no loss" alone
/// compares noise.
pub const MEASURED_TOLERANCE: f64 = 0.5;

/// The least-energy point measured within `loss_points` of uniform 8-bit's top-1 (None: no
/// point qualifies).
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredHeadline {
    pub loss_points: f64,
    pub best: Option<HeadlinePoint>,
}

/// A measured headline's point: its index in the verification's `points`, measured top-1 (%),
/// energy and the energy it saves against uniform 8-bit (%).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HeadlinePoint {
    pub point: usize,
    pub top1: f64,
    pub energy_pj: f64,
    pub saving_percent: f64,
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
    let label = if req.quiet {
        ""
    } else {
        "verifying the front's accuracy"
    };
    let measured = session.measure_many(&configs, label);
    let budget = exact.budgets.min_accuracy;
    let float_top1 = session.float_top1().top1;
    let check = |(p, m): (&&FrontPoint, &Measurement)| checked(inputs, p, *m, float_top1, budget);
    let mut all: Vec<Checked> = designs.iter().zip(&measured).map(check).collect();
    let uniform_8bit = exact.uniform8.as_ref().map(|_| all.remove(0));
    let headline = match &uniform_8bit {
        Some(u) => [0.0, MEASURED_TOLERANCE]
            .map(|t| measured_headline(&all, u, t))
            .to_vec(),
        None => vec![],
    };
    Ok(Verification {
        provenance: session.provenance(),
        references: References {
            float: session.float_top1(),
            uniform_8bit,
        },
        summary: Summary {
            broken: all.iter().filter(|c| c.breaks_budget).count(),
            prediction_error: prediction_error(&all),
            headline,
        },
        points: all,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The least-energy point measured within `loss` top-1 points of uniform 8-bit `u`.
fn measured_headline(points: &[Checked], u: &Checked, loss: f64) -> MeasuredHeadline {
    let ok = |(_, c): &(usize, &Checked)| c.measured.top1 >= u.measured.top1 - loss - 1e-9;
    let by_energy =
        |a: &(usize, &Checked), b: &(usize, &Checked)| a.1.energy_pj.total_cmp(&b.1.energy_pj);
    let best = points.iter().enumerate().filter(ok).min_by(by_energy);
    MeasuredHeadline {
        loss_points: loss,
        best: best.map(|(i, c)| HeadlinePoint {
            point: i,
            top1: c.measured.top1,
            energy_pj: c.energy_pj,
            saving_percent: 100.0 * (1.0 - c.energy_pj / u.energy_pj),
        }),
    }
}

/// The instance's network file, which must be ONNX (it holds the weights).
fn onnx_file(req: &CodesignRequest, inputs: &Inputs) -> Result<PathBuf, InputError> {
    match inputs
        .inst
        .front
        .as_ref()
        .and_then(|f| f.network_file.as_ref())
    {
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

/// A design's predictions beside its measurement; its top-1 predicted from the float network's
/// top-1 on the same images (`float_top1`), the table's deltas added.
fn checked(
    inputs: &Inputs,
    p: &FrontPoint,
    m: Measurement,
    float_top1: f64,
    budget: Option<f64>,
) -> Checked {
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
        predicted: Predicted {
            score: p.accuracy,
            top1: float_top1 + p.layers.iter().map(delta).sum::<f64>(),
            kl: p.layers.iter().map(kl).sum(),
        },
        measured: m,
        breaks_budget: budget.is_some_and(|b| measured_score < b),
    }
}

/// Largest and median absolute errors of the predictions; None without points.
fn prediction_error(points: &[Checked]) -> Option<PredictionError> {
    let top1: Vec<f64> = (points.iter())
        .map(|c| (c.predicted.top1 - c.measured.top1).abs())
        .collect();
    let kl: Option<Vec<f64>> = (points.iter())
        .map(|c| c.predicted.kl.map(|k| (k - c.measured.kl).abs()))
        .collect();
    Some(PredictionError {
        top1: max_median(top1)?,
        kl: kl.and_then(max_median),
    })
}

/// The largest value and the median (the mean of the middle two for an even count).
fn max_median(mut v: Vec<f64>) -> Option<Spread> {
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
    Some(Spread {
        max: v[n - 1],
        median,
    })
}
