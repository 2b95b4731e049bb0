//! Measured accuracy: a network's top-1 and the KL divergence of its logits, float32 and under
//! post-training fake quantisation of chosen layers, on real images (issue 26).
//!
//! This module owns the whole measurement: [`data`] reads the images (IDX files, as Debian's
//! `dataset-fashion-mnist` ships them), `net` turns an ONNX graph into an executable float32
//! network (refusing any operator it does not run, naming the node), `kernels` runs it on a
//! batch, [`quant`] fake-quantises weights and layer inputs, and [`Session`] ties them together:
//! calibration on the first training images, the float32 reference on the test images, and the
//! measurement of any [`QuantConfig`] (in parallel over configurations, with progress).
//!
//! The conventions are `tools/accuracy/README.md`'s ("The quantisation conventions of
//! `ptq_reference.py`"), which `tools/accuracy/ptq_reference.json` (PyTorch) measured and
//! `tests/accuracy_measure.rs` checks this module against: weights per output channel,
//! symmetric, narrow range; biases float; activations per tensor on the input edge of each
//! Conv/Gemm only (a residual's skip path reads the float tensor), unsigned when the calibrated
//! minimum is >= 0, else signed symmetric; round half to even of x / s (a float32 division);
//! calibration (min and max |x| of each layer input) with the float32 network on the first N
//! training images in file order; top-1 = argmax (first index on ties); KL = mean over the test
//! images of Σ p (ln p − ln q), log-softmax in float64 from the float32 logits, p the float32
//! network's.

pub mod data;
mod kernels;
mod net;
pub mod quant;

pub use data::{Dataset, Split};
pub use quant::InputRange;

use crate::spec::InputError;
use net::{Network, RunQuant};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Images per batch of a run (bounds the memory of one configuration's run).
const BATCH: usize = 100;

/// Per layer name: (weight bits, input activation bits); None = float32. Layers not listed stay
/// float. Bits must be 2..=8 (callers check: [`check_bits`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantConfig {
    pub layers: BTreeMap<String, (Option<u32>, Option<u32>)>,
}

/// Whether `bits` is a bit-width the measurement takes (2..=8).
pub fn check_bits(bits: u32) -> bool {
    (2..=8).contains(&bits)
}

/// One measurement on the test images: top-1 (%) and mean KL(fp32 ‖ this) in nats.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measurement {
    pub correct: usize,
    pub images: usize,
    pub top1: f64,
    pub kl: f64,
}

/// Where a session's numbers come from.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub onnx: String,
    pub onnx_sha256: String,
    pub onnx_bytes: u64,
    pub data_dir: String,
    pub calibration_split: Split,
    pub calibration_images: usize,
    pub test_split: Split,
    /// The index of the first test image measured.
    pub test_first: usize,
    pub test_images: usize,
}

/// A network with its calibration and its float reference on a test set.
pub struct Session {
    net: Network,
    test: Dataset,
    names: Vec<String>,
    calibration: Vec<InputRange>,
    /// Per test image, the float32 network's log-softmax (float64).
    reference: Vec<Vec<f64>>,
    float: Measurement,
    provenance: Provenance,
}

impl Session {
    /// Loads the network and the data, calibrates on the first `calib_images` training images
    /// and measures the float32 network on the first `test_images` test images (all when None).
    pub fn new(
        onnx: &Path,
        data_dir: &Path,
        calib_images: usize,
        test_images: Option<usize>,
    ) -> Result<Session, InputError> {
        Session::new_from(onnx, data_dir, calib_images, 0, test_images)
    }

    /// [`Session::new`] on the test images from index `first` on (`test_images` of them, all
    /// the rest when None): e.g. a table measured on the first half of the test split and a
    /// front verified on the second.
    pub fn new_from(
        onnx: &Path,
        data_dir: &Path,
        calib_images: usize,
        first: usize,
        test_images: Option<usize>,
    ) -> Result<Session, InputError> {
        let net = Network::load(onnx)?;
        let calib = Dataset::load(data_dir, Split::Train, Some(calib_images))?;
        let mut test = Dataset::load(data_dir, Split::Test, test_images.map(|n| first + n))?;
        test.skip(first);
        let (c, h, w) = net.input_shape;
        if c != 1 || (h, w) != (test.rows, test.cols) {
            let why = format!(
                "the network takes [N, {c}, {h}, {w}]; the images are {}x{} grey",
                test.rows, test.cols
            );
            return Err(InputError::new(onnx, "graph.input[0].type", why));
        }
        if calib.is_empty() || test.is_empty() {
            return Err(InputError::new(
                data_dir,
                "--data",
                "no images to measure on",
            ));
        }
        let calibration = calibrate(&net, &calib);
        let bytes = std::fs::read(onnx)
            .map_err(|e| InputError::new(onnx, "(file)", format!("cannot read: {e}")))?;
        let provenance = Provenance {
            onnx: onnx.display().to_string(),
            onnx_sha256: sha256_hex(&bytes),
            onnx_bytes: bytes.len() as u64,
            data_dir: data_dir.display().to_string(),
            calibration_split: Split::Train,
            calibration_images: calib.len(),
            test_split: Split::Test,
            test_first: first,
            test_images: test.len(),
        };
        let names = net.layers.iter().map(|l| l.name.clone()).collect();
        let mut s = Session {
            net,
            test,
            names,
            calibration,
            reference: Vec::new(),
            float: Measurement {
                correct: 0,
                images: 0,
                top1: 0.0,
                kl: 0.0,
            },
            provenance,
        };
        let (float, reference) = s.run(None);
        s.float = float;
        s.reference = reference;
        Ok(s)
    }

    /// The quantisable layers (Conv/Gemm node names), in execution order.
    pub fn layers(&self) -> &[String] {
        &self.names
    }

    /// The float32 network on the test images (KL 0).
    pub fn float_top1(&self) -> Measurement {
        self.float
    }

    /// Each layer input's calibration range, in [`Session::layers`] order.
    pub fn calibration(&self) -> &[InputRange] {
        &self.calibration
    }

    /// The network under `q` on the test images. Names not in [`Session::layers`] are ignored.
    pub fn measure(&self, q: &QuantConfig) -> Measurement {
        self.run(Some(q)).0
    }

    /// [`Session::measure`] of each configuration, in parallel (rayon), with a progress counter
    /// on stderr labelled `progress` (none when it is empty).
    pub fn measure_many(&self, qs: &[QuantConfig], progress: &str) -> Vec<Measurement> {
        let counter = crate::progress::Counter::labelled(
            !progress.is_empty(),
            qs.len(),
            progress,
            "configurations",
        );
        qs.par_iter()
            .map(|q| {
                let m = self.measure(q);
                counter.inc();
                m
            })
            .collect()
    }

    /// Where the numbers come from.
    pub fn provenance(&self) -> Provenance {
        self.provenance.clone()
    }

    /// The logits (row-major `[n, classes]`) of the first `n` test images under `q`.
    pub fn logits(&self, q: &QuantConfig, n: usize) -> Vec<f32> {
        let n = n.min(self.test.len());
        let rq = self.run_quant(q);
        self.net
            .run(self.test.images(0..n), n, Some(&rq), |_, _| {})
    }

    /// The per-layer weights and input quantisation of `q`.
    fn run_quant(&self, q: &QuantConfig) -> RunQuant {
        let mut rq = RunQuant {
            weights: vec![None; self.names.len()],
            inputs: vec![None; self.names.len()],
        };
        for (i, layer) in self.net.layers.iter().enumerate() {
            let Some(&(w, a)) = q.layers.get(&layer.name) else {
                continue;
            };
            rq.weights[i] = w.map(|b| quant::quantise_weights(&layer.weights, layer.rows(), b));
            rq.inputs[i] = a.map(|b| (self.calibration[i], b));
        }
        rq
    }

    /// One pass over the test images: the measurement (KL against the reference when there is
    /// one) and each image's log-softmax.
    fn run(&self, q: Option<&QuantConfig>) -> (Measurement, Vec<Vec<f64>>) {
        let rq = q.map(|q| self.run_quant(q));
        let (mut correct, mut kl) = (0usize, 0.0f64);
        let mut logps = Vec::with_capacity(self.test.len());
        for start in (0..self.test.len()).step_by(BATCH) {
            let end = (start + BATCH).min(self.test.len());
            let logits = (self.net).run(
                self.test.images(start..end),
                end - start,
                rq.as_ref(),
                |_, _| {},
            );
            let classes = logits.len() / (end - start);
            for (i, row) in logits.chunks_exact(classes).enumerate() {
                let label = self.test.labels[start + i] as usize;
                correct += usize::from(argmax(row) == label);
                let lp = log_softmax(row);
                if let Some(p) = self.reference.get(start + i) {
                    kl += p
                        .iter()
                        .zip(&lp)
                        .map(|(a, b)| a.exp() * (a - b))
                        .sum::<f64>();
                }
                logps.push(lp);
            }
        }
        let images = self.test.len();
        let m = Measurement {
            correct,
            images,
            top1: 100.0 * correct as f64 / images as f64,
            kl: kl / images as f64,
        };
        (m, logps)
    }
}

/// Per layer input, its range over the calibration images (the float32 network).
fn calibrate(net: &Network, calib: &Dataset) -> Vec<InputRange> {
    let mut ranges = vec![InputRange::default(); net.layers.len()];
    for start in (0..calib.len()).step_by(BATCH) {
        let end = (start + BATCH).min(calib.len());
        net.run(calib.images(start..end), end - start, None, |l, x| {
            ranges[l].observe(x)
        });
    }
    ranges
}

/// The first index of the largest value.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// log-softmax in float64 of float32 logits.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let lse = max
        + row
            .iter()
            .map(|&v| (v as f64 - max).exp())
            .sum::<f64>()
            .ln();
    row.iter().map(|&v| v as f64 - lse).collect()
}

/// The lowercase hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
