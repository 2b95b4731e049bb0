//! `qmap accuracy measure`: its arguments, the call of [`crate::app::accuracy::measure`] and
//! the printing of its report.

use super::emit;
use crate::app::accuracy::{self as app, MeasureRequest};
use crate::error::{Error, Outcome};
use crate::report;
use std::path::PathBuf;

/// `qmap accuracy`.
#[derive(clap::Args, Debug)]
pub struct AccuracyArgs {
    #[command(subcommand)]
    pub command: AccuracyCommand,
}

/// What to do about accuracy.
#[derive(clap::Subcommand, Debug)]
pub enum AccuracyCommand {
    /// Measure each layer's sensitivity on real images (post-training fake quantisation of its
    /// weights alone and of its input activations alone, at each bit-width: top-1 delta and KL
    /// against float32) and write it as a `kind: table` accuracy file.
    Measure(MeasureArgs),
}

/// `qmap accuracy measure`.
#[derive(clap::Args, Debug)]
pub struct MeasureArgs {
    /// The network (ONNX: Conv, Gemm, Relu, Clip, Add, GlobalAveragePool, Flatten).
    #[arg(long)]
    pub onnx: PathBuf,
    /// The images: a folder of MNIST-style IDX files (train-/t10k-images-idx3-ubyte[.gz] and
    /// labels), e.g. /usr/share/datasets/fashion-mnist.
    #[arg(long)]
    pub data: PathBuf,
    /// The accuracy table to write (YAML, `kind: table`).
    #[arg(long)]
    pub out: PathBuf,
    /// Bit-widths (2..8), for weights and for input activations.
    #[arg(long, value_delimiter = ',', default_value = "2,3,4,5,6,8")]
    pub bits: Vec<u32>,
    /// Only these layers (Conv/Gemm node names); default all.
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<String>>,
    /// Calibration images (the first N of the training split).
    #[arg(long, default_value_t = 1000)]
    pub calib: usize,
    /// Measure on the first N test images (default: all).
    #[arg(long, value_name = "N")]
    pub test_images: Option<usize>,
    /// The table's `max_cell_loss`: cells whose composed top-1 delta is below -this many points
    /// are never selected by `qmap front` (edit the file to change it later).
    #[arg(long, default_value_t = 5.0, value_name = "POINTS")]
    pub max_cell_loss: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `qmap accuracy ...`.
pub fn accuracy_cmd(a: AccuracyArgs) -> Result<Outcome, Error> {
    let AccuracyCommand::Measure(m) = a.command;
    let req = MeasureRequest {
        onnx: &m.onnx,
        data: &m.data,
        out: &m.out,
        bits: m.bits.clone(),
        layers: m.layers.clone(),
        calib_images: m.calib,
        test_images: m.test_images,
        max_cell_loss: m.max_cell_loss,
        progress: !m.quiet,
    };
    let r = app::measure(&req)?;
    if m.json {
        emit(format_args!("{}\n", report::files::json(&r)));
    } else {
        emit(format_args!("{}", report::accuracy::measure_text(&r)));
    }
    Ok(Outcome::Ok)
}
