//! The SVG plot of a front: energy (µJ) against accuracy or weight memory (MiB).
//!
//! [`FrontPlot`] writes an SVG (plotters' SVG backend without default features: text is emitted
//! as SVG `<text>` elements rendered by the viewer, with plotters' built-in size estimate for
//! layout, so no system fonts are needed). The exact front is a line with its points, a baseline
//! (e.g. NSGA-II's points) crosses, and marked designs (the uniform ones) triangles with a label.

use super::{FrontError, FrontPoint};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A design to mark on the plot (e.g. the uniform 8-bit and 16-bit designs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotMark {
    pub label: String,
    pub energy_pj: f64,
    pub accuracy: f64,
    pub memory_bytes: f64,
}

impl PlotMark {
    pub fn from_point(label: impl Into<String>, p: &FrontPoint) -> PlotMark {
        PlotMark {
            label: label.into(),
            energy_pj: p.energy_pj,
            accuracy: p.accuracy,
            memory_bytes: p.memory_bytes,
        }
    }
}

/// The horizontal axis of the plot (energy is vertical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotAxis {
    Accuracy,
    Memory,
}

/// A front plot: energy (µJ) against accuracy or weight memory (MiB).
#[derive(Debug, Clone)]
pub struct FrontPlot<'a> {
    pub title: &'a str,
    pub x_axis: PlotAxis,
    /// The accuracy axis name, e.g. [`AccuracyKind::label`](super::AccuracyKind::label).
    pub accuracy_label: &'a str,
    pub front: &'a [FrontPoint],
    /// Another point set (e.g. NSGA-II's), with its legend name.
    pub baseline: Option<(&'a str, &'a [FrontPoint])>,
    pub marks: &'a [PlotMark],
}

/// A chart of the plot: f64 coordinates on plotters' SVG backend.
type Chart<'c, 'b> = plotters::chart::ChartContext<
    'c,
    plotters::prelude::SVGBackend<'b>,
    plotters::coord::cartesian::Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// The plot's points in its coordinates (x: accuracy or MiB, y: µJ).
struct Series<'m> {
    /// The front, by increasing x.
    front: Vec<(f64, f64)>,
    base: Vec<(f64, f64)>,
    marks: Vec<(f64, f64, &'m str)>,
}

impl FrontPlot<'_> {
    /// Writes the plot as an SVG file.
    pub fn write_svg(&self, path: &Path) -> Result<(), FrontError> {
        let err = |e: String| FrontError::Plot {
            file: path.display().to_string(),
            message: e,
        };
        let series = self.series();
        let all: Vec<(f64, f64)> = series
            .front
            .iter()
            .chain(&series.base)
            .copied()
            .chain(series.marks.iter().map(|m| (m.0, m.1)))
            .collect();
        if all.is_empty() {
            return Err(err("nothing to plot".into()));
        }
        let xr = padded_range(all.iter().map(|p| p.0));
        let yr = padded_range(all.iter().map(|p| p.1));
        let mut text = String::new();
        self.draw(&mut text, &series, xr, yr).map_err(err)?;
        // Written like every other output (atomic, through links, in place into a FIFO).
        crate::report::write_atomic(path, &text).map_err(|e| err(e.to_string()))
    }

    /// The horizontal coordinate of a design.
    fn x_of(&self, acc: f64, mem: f64) -> f64 {
        match self.x_axis {
            PlotAxis::Accuracy => acc,
            PlotAxis::Memory => mem / (1024.0 * 1024.0),
        }
    }

    /// The front, the baseline and the marks in the plot's coordinates.
    fn series(&self) -> Series<'_> {
        let xy = |p: &FrontPoint| (self.x_of(p.accuracy, p.memory_bytes), p.energy_pj * 1e-6);
        let mut front: Vec<(f64, f64)> = self.front.iter().map(xy).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        let base: Vec<(f64, f64)> = self
            .baseline
            .map(|(_, b)| b.iter().map(xy).collect())
            .unwrap_or_default();
        let marks: Vec<(f64, f64, &str)> = self
            .marks
            .iter()
            .map(|m| {
                (
                    self.x_of(m.accuracy, m.memory_bytes),
                    m.energy_pj * 1e-6,
                    m.label.as_str(),
                )
            })
            .collect();
        Series { front, base, marks }
    }

    /// Draws the chart (title, axes, series, legend) as SVG into `text`.
    fn draw(
        &self,
        text: &mut String,
        series: &Series,
        xr: std::ops::Range<f64>,
        yr: std::ops::Range<f64>,
    ) -> Result<(), String> {
        use plotters::prelude::*;
        let x_desc = match self.x_axis {
            PlotAxis::Accuracy => format!("{} [%]", self.accuracy_label),
            PlotAxis::Memory => "weight memory [MiB]".to_string(),
        };
        let root = SVGBackend::with_string(text, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(xr, yr)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(x_desc)
            .y_desc("energy [µJ]")
            .draw()
            .map_err(|e| e.to_string())?;
        self.draw_series(&mut chart, series)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }

    /// Draws the front (line and points), the baseline (crosses) and the marks (triangles, the
    /// label left of each), each with its legend entry.
    fn draw_series(&self, chart: &mut Chart, series: &Series) -> Result<(), String> {
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        chart
            .draw_series(LineSeries::new(series.front.clone(), BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label("exact front (MILP)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(
                series
                    .front
                    .iter()
                    .map(|&p| Circle::new(p, 3, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
        if let Some((name, _)) = self.baseline {
            chart
                .draw_series(
                    series
                        .base
                        .iter()
                        .map(|&p| Cross::new(p, 4, RED.stroke_width(2))),
                )
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(|(x, y)| Cross::new((x + 10, y), 4, RED.stroke_width(2)));
        }
        // Marks (uniform designs sit at the high-accuracy, high-memory end): the label left of
        // the triangle.
        let label_style = ("sans-serif", 14)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        chart
            .draw_series(series.marks.iter().map(|&(x, y, label)| {
                EmptyElement::at((x, y))
                    + TriangleMarker::new((0, 0), 7, BLACK.filled())
                    + Text::new(label.to_string(), (-10, 0), label_style.clone())
            }))
            .map_err(|e| e.to_string())?
            .label("uniform designs")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
        Ok(())
    }
}

/// The range of `values`, padded by 5 % of its width (at least 0.1 % of its upper end, and
/// 1e-9) on both sides.
fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-9);
    (lo - pad)..(hi + pad)
}
