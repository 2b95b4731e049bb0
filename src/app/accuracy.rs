//! `qmap accuracy measure`: a network's per-layer sensitivity measured on real images
//! ([`crate::infer`]): each layer alone at each weight bit-width (its input float) and at each
//! input-activation bit-width (its weights float), as top-1 delta and KL against float32,
//! written as a `kind: table` accuracy file (every (weight, activation) cell composed
//! additively, with the raw measurements kept under `measured`).

use crate::front::accuracy::{AccuracyKind, DeltaRow, SelectBy};
use crate::infer::{self, Measurement, Provenance, QuantConfig, Session};
use crate::spec::InputError;
use serde::Serialize;
use std::path::Path;

/// What to measure.
pub struct MeasureRequest<'a> {
    pub onnx: &'a Path,
    pub data: &'a Path,
    pub out: &'a Path,
    /// Bit-widths (2..=8) for weights and for input activations.
    pub bits: Vec<u32>,
    /// The layers to measure (all quantisable layers when None).
    pub layers: Option<Vec<String>>,
    pub calib_images: usize,
    pub test_images: Option<usize>,
    /// The table's `max_cell_loss` (points, finite and >= 0).
    pub max_cell_loss: f64,
    /// Progress on stderr.
    pub progress: bool,
}

/// One layer alone with its weights or its input activations quantised: top-1 (%) and KL of
/// the logits against float32 (nats). The table file's `measured` rows.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredRow {
    pub layer: String,
    #[serde(flatten)]
    pub quantised: Quantised,
    pub top1: f64,
    pub kl: f64,
}

/// The run: configurations measured (one pass over the test images each), its wall time (s),
/// the table written.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub configurations: usize,
    pub seconds: f64,
    pub out: String,
}

/// The measurement: per layer (execution order), weights alone at each bit-width, then input
/// activations alone.
#[derive(Debug, Clone, Serialize)]
pub struct MeasureReport {
    pub provenance: Provenance,
    pub float: Measurement,
    pub measured: Vec<MeasuredRow>,
    pub run: RunSummary,
}

/// Checks the request, measures every layer alone at every bit-width, writes the table.
pub fn measure(req: &MeasureRequest) -> Result<MeasureReport, InputError> {
    let start = std::time::Instant::now();
    check_request(req)?;
    crate::report::files::check_outputs(&[(Some(req.out), "--out")])?;
    let session = Session::new(req.onnx, req.data, req.calib_images, req.test_images)?;
    let mut cells = Vec::new();
    for l in chosen_layers(req, session.layers())? {
        let weights = req.bits.iter().map(|&b| (Some(b), None));
        for (w, a) in weights.chain(req.bits.iter().map(|&b| (None, Some(b)))) {
            cells.push((l.clone(), w, a));
        }
    }
    let configs: Vec<QuantConfig> = (cells.iter())
        .map(|(l, w, a)| QuantConfig {
            layers: [(l.clone(), (*w, *a))].into_iter().collect(),
        })
        .collect();
    let label = if req.progress { "accuracy" } else { "" };
    let ms = session.measure_many(&configs, label);
    let measured: Vec<MeasuredRow> = (cells.into_iter().zip(ms))
        .map(|((layer, w, a), m)| MeasuredRow {
            layer,
            quantised: Quantised {
                weight_bits: w,
                activation_bits: a,
            },
            top1: m.top1,
            kl: m.kl,
        })
        .collect();
    let (provenance, float) = (session.provenance(), session.float_top1());
    let table = table_yaml(req, &provenance, float, &measured);
    crate::report::files::write_file(req.out, &table)?;
    let run = RunSummary {
        configurations: measured.len(),
        seconds: start.elapsed().as_secs_f64(),
        out: req.out.display().to_string(),
    };
    Ok(MeasureReport {
        provenance,
        float,
        measured,
        run,
    })
}

/// The bits and counts of a request, before any work.
fn check_request(req: &MeasureRequest) -> Result<(), InputError> {
    let cmd = "qmap accuracy measure";
    if req.bits.is_empty() {
        return Err(InputError::new(
            cmd,
            "--bits",
            "give at least one bit-width",
        ));
    }
    if let Some(b) = req.bits.iter().find(|&&b| !infer::check_bits(b)) {
        let why = format!(
            "{b} is outside 2..=8 (weights and activations are fake-quantised to 2 to 8 bits)"
        );
        return Err(InputError::new(cmd, "--bits", why));
    }
    if req.calib_images == 0 {
        return Err(InputError::new(cmd, "--calib", "must be at least 1 image"));
    }
    if !(req.max_cell_loss.is_finite() && req.max_cell_loss >= 0.0) {
        let why = format!("must be a finite number >= 0, got {}", req.max_cell_loss);
        return Err(InputError::new(cmd, "--max-cell-loss", why));
    }
    if req.test_images == Some(0) {
        return Err(InputError::new(
            cmd,
            "--test-images",
            "must be at least 1 image",
        ));
    }
    Ok(())
}

/// The requested layers (each checked to be a quantisable layer of the network), or all.
fn chosen_layers(req: &MeasureRequest, all: &[String]) -> Result<Vec<String>, InputError> {
    let Some(asked) = &req.layers else {
        return Ok(all.to_vec());
    };
    for l in asked {
        if !all.contains(l) {
            let why = format!(
                "`{l}` is not a Conv/Gemm layer of the network (it has: {})",
                all.join(", ")
            );
            return Err(InputError::new(req.onnx, "--layers", why));
        }
    }
    Ok(asked.clone())
}

/// The accuracy file: every (w, a) cell of every layer with delta = dW(w) + dA(a) and
/// kl = klW(w) + klA(a), and the raw measurements (`measured`).
fn table_yaml(
    req: &MeasureRequest,
    p: &Provenance,
    float: Measurement,
    measured: &[MeasuredRow],
) -> String {
    let mut deltas = Vec::new();
    for r in measured {
        let Some(w) = r.quantised.weight_bits else {
            continue;
        };
        let inputs = measured.iter().filter(|a| a.layer == r.layer);
        for (a, bits) in inputs.filter_map(|a| Some((a, a.quantised.activation_bits?))) {
            deltas.push(DeltaRow {
                layer: r.layer.clone(),
                weight_bits: w,
                activation_bits: bits,
                delta: tidy(r.top1 + a.top1 - 2.0 * float.top1),
                kl: Some(tidy(r.kl + a.kl)),
            });
        }
    }
    let source =
        format!(
        "measured by `qmap accuracy measure` (post-training fake quantisation, the conventions of \
         tools/accuracy/README.md): {} (sha256 {}), top-1 on the first {} images of the {:?} \
         split of {}, calibration on the first {} images of the {:?} split. Each layer was \
         measured alone with its weights quantised (input float) and alone with its input \
         activations quantised (weights float), under `measured`; each (w, a) row composes them \
         additively: delta = dW(w) + dA(a), kl = klW(w) + klA(a). The front selects by KL (KL \
         divergences add up over layers, top-1 losses do not: docs/accuracy.md) and leaves out \
         the cells whose delta is below -max_cell_loss points.",
        p.onnx, p.onnx_sha256, p.test_images, p.test_split, p.data_dir, p.calibration_images,
        p.calibration_split,
    );
    /// The file (the format `front::AccuracyModel` reads).
    #[derive(Serialize)]
    struct TableFile<'a> {
        kind: AccuracyKind,
        network: String,
        full_precision_accuracy: f64,
        source: String,
        select_by: SelectBy,
        max_cell_loss: f64,
        deltas: Vec<DeltaRow>,
        measured: &'a [MeasuredRow],
    }
    let file = TableFile {
        kind: AccuracyKind::Table,
        network: (req.onnx)
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned()),
        full_precision_accuracy: float.top1,
        source,
        select_by: SelectBy::Kl,
        max_cell_loss: req.max_cell_loss,
        deltas,
        measured,
    };
    serde_yaml_ng::to_string(&file).expect("an accuracy table serialises")
}

/// `x` rounded to 12 decimals (a sum's last-bit noise, e.g. 1.4e-14 for 0, left out).
fn tidy(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// Which of a layer's tensors a measurement quantised, at what bits (null: float32).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Quantised {
    pub weight_bits: Option<u32>,
    pub activation_bits: Option<u32>,
}
