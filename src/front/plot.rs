//! The SVG plot of a front: energy (µJ) against accuracy (%), weight memory (MiB) or latency
//! (million cycles), one panel per axis of the front's kind.
//!
//! [`FrontPlot`] writes an SVG (plotters' SVG backend without default features: text is emitted
//! as SVG `<text>` elements rendered by the viewer, with plotters' built-in size estimate for
//! layout, so no system fonts are needed). Per [`FrontKind`]: energy × accuracy and energy ×
//! memory and energy × cycles are one panel each (the front a line through its points);
//! energy × accuracy × memory is two panels, energy against accuracy and against memory, its
//! points coloured by weight memory (light: small) in both. A baseline (e.g. NSGA-II's points)
//! is drawn as crosses; marked designs ([`PlotMark`], [`MarkStyle`]) as triangles (the uniform
//! designs), squares (the random-search baseline) or diamonds (chosen designs: the
//! minimum-EDP point, the headline's), each with its label. An incomplete front says so in red across the top.

use super::{FrontError, FrontKind, FrontPoint};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A design to mark on the plot (e.g. the uniform 8-bit and 16-bit designs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotMark {
    pub label: String,
    pub energy_pj: f64,
    pub accuracy: f64,
    pub memory_bytes: f64,
    /// None: not drawn on a cycles axis.
    #[serde(default)]
    pub cycles: Option<u64>,
    #[serde(default)]
    pub style: MarkStyle,
}

/// How a mark is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkStyle {
    /// A reference design (a uniform one): a black triangle, labelled a little lower.
    #[default]
    Reference,
    /// A design mapped by a baseline mapper (random search): an orange square, labelled a
    /// little higher.
    Baseline,
    /// A chosen design (the minimum-EDP point, the headline's): a green diamond. (Every label is
    /// on the side of its mark towards the middle of the panel.)
    Chosen,
}

impl PlotMark {
    pub fn from_point(label: impl Into<String>, p: &FrontPoint) -> PlotMark {
        PlotMark {
            label: label.into(),
            energy_pj: p.energy_pj,
            accuracy: p.accuracy,
            memory_bytes: p.memory_bytes,
            cycles: Some(p.cycles),
            style: MarkStyle::Reference,
        }
    }
}

/// A horizontal axis of the plot (energy is vertical).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotAxis {
    Accuracy,
    Memory,
    Cycles,
}

impl PlotAxis {
    /// The panels of a front's plot, left to right.
    pub fn of(kind: FrontKind) -> &'static [PlotAxis] {
        match kind {
            FrontKind::EnergyAccuracy => &[PlotAxis::Accuracy],
            FrontKind::EnergyMemory => &[PlotAxis::Memory],
            FrontKind::EnergyCycles => &[PlotAxis::Cycles],
            FrontKind::EnergyAccuracyMemory => &[PlotAxis::Accuracy, PlotAxis::Memory],
        }
    }
}

/// A front plot (see the module doc).
#[derive(Debug, Clone)]
pub struct FrontPlot<'a> {
    pub title: &'a str,
    pub kind: FrontKind,
    /// The front's legend name, e.g. `exact front (label search)`.
    pub method: &'a str,
    /// The accuracy axis name, e.g. [`AccuracyKind::label`](super::AccuracyKind::label).
    pub accuracy_label: &'a str,
    pub front: &'a [FrontPoint],
    /// Another point set (e.g. NSGA-II's), with its legend name.
    pub baseline: Option<(&'a str, &'a [FrontPoint])>,
    pub marks: &'a [PlotMark],
    /// Why the front is incomplete (drawn across the top in red); None when it is complete.
    pub incomplete: Option<&'a str>,
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

/// A drawing area of the plot.
type Area<'b> =
    plotters::drawing::DrawingArea<plotters::prelude::SVGBackend<'b>, plotters::coord::Shift>;

/// A panel's points in its coordinates (x: the axis' unit, y: µJ).
struct Series<'m> {
    /// The front, by increasing x, with each point's weight memory share (0: least, 1: most).
    front: Vec<(f64, f64, f64)>,
    base: Vec<(f64, f64)>,
    marks: Vec<(f64, f64, &'m PlotMark)>,
}

impl FrontPlot<'_> {
    /// Writes the plot as an SVG file.
    pub fn write_svg(&self, path: &Path) -> Result<(), FrontError> {
        let err = |e: String| FrontError::Plot {
            file: path.display().to_string(),
            message: e,
        };
        let mut text = String::new();
        self.draw(&mut text).map_err(err)?;
        // Written like every other output (atomic, through links, in place into a FIFO).
        crate::report::write_atomic(path, &text).map_err(|e| err(e.to_string()))
    }

    /// Draws the title, the incomplete mark and the panels as SVG into `text`.
    fn draw(&self, text: &mut String) -> Result<(), String> {
        use plotters::prelude::*;
        let axes = PlotAxis::of(self.kind);
        let size = (if axes.len() > 1 { 1400 } else { 900 }, 600);
        let root = SVGBackend::with_string(text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(self.title, ("sans-serif", 22))
            .map_err(|e| e.to_string())?;
        let root = match self.incomplete {
            Some(why) => {
                let (top, rest) = root.split_vertically(24);
                let style = ("sans-serif", 15).into_font().color(&RED);
                top.draw_text(&format!("INCOMPLETE FRONT: {why}"), &style, (20, 4))
                    .map_err(|e| e.to_string())?;
                rest
            }
            None => root,
        };
        let panels = root.split_evenly((1, axes.len()));
        for (area, &axis) in panels.iter().zip(axes) {
            self.panel(area, axis)?;
        }
        root.present().map_err(|e| e.to_string())
    }

    /// The horizontal coordinate of a design on `axis` (None: not drawn there).
    fn x_of(axis: PlotAxis, acc: f64, mem: f64, cycles: Option<u64>) -> Option<f64> {
        match axis {
            PlotAxis::Accuracy => Some(acc),
            PlotAxis::Memory => Some(mem / (1024.0 * 1024.0)),
            PlotAxis::Cycles => cycles.map(|c| c as f64 * 1e-6),
        }
    }

    /// The front, the baseline and the marks in a panel's coordinates.
    fn series(&self, axis: PlotAxis) -> Series<'_> {
        let (lo, hi) = self
            .front
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), p| {
                (a.min(p.memory_bytes), b.max(p.memory_bytes))
            });
        let share = |m: f64| if hi > lo { (m - lo) / (hi - lo) } else { 0.0 };
        let x = |p: &FrontPoint| Self::x_of(axis, p.accuracy, p.memory_bytes, Some(p.cycles));
        let mut front: Vec<(f64, f64, f64)> = (self.front.iter())
            .filter_map(|p| Some((x(p)?, p.energy_pj * 1e-6, share(p.memory_bytes))))
            .collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        let base: Vec<(f64, f64)> = (self.baseline.map(|(_, b)| b).unwrap_or_default())
            .iter()
            .filter_map(|p| Some((x(p)?, p.energy_pj * 1e-6)))
            .collect();
        let marks = (self.marks.iter())
            .filter_map(|m| {
                let x = Self::x_of(axis, m.accuracy, m.memory_bytes, m.cycles)?;
                Some((x, m.energy_pj * 1e-6, m))
            })
            .collect();
        Series { front, base, marks }
    }

    /// One panel: energy against `axis`, with its axes, series and legend.
    fn panel(&self, area: &Area, axis: PlotAxis) -> Result<(), String> {
        use plotters::prelude::*;
        let series = self.series(axis);
        let xs = (series.front.iter().map(|p| p.0))
            .chain(series.base.iter().map(|p| p.0))
            .chain(series.marks.iter().map(|m| m.0));
        let ys = (series.front.iter().map(|p| p.1))
            .chain(series.base.iter().map(|p| p.1))
            .chain(series.marks.iter().map(|m| m.1));
        let (Some(xr), Some(yr)) = (padded_range(xs), padded_range(ys)) else {
            return Err("nothing to plot".into());
        };
        let middle = (xr.start + xr.end) / 2.0;
        let x_desc = match axis {
            PlotAxis::Accuracy => format!("{} [%]", self.accuracy_label),
            PlotAxis::Memory => "weight memory [MiB]".to_string(),
            PlotAxis::Cycles => "latency [million cycles]".to_string(),
        };
        let mut chart = ChartBuilder::on(area)
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
        self.draw_front(&mut chart, &series)?;
        self.draw_marks(&mut chart, &series, middle)?;
        chart
            .configure_series_labels()
            // Where the front and the marks leave room: the fronts run low, uniform 16-bit sits
            // high on the right (accuracy, memory) or high on the left (cycles).
            .position(match axis {
                PlotAxis::Accuracy | PlotAxis::Memory => SeriesLabelPosition::UpperLeft,
                PlotAxis::Cycles => SeriesLabelPosition::UpperRight,
            })
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())
    }

    /// The front (a line through its points; a 3-D front's projection: points coloured by
    /// weight memory, no line) and the baseline (crosses), each with its legend entry.
    fn draw_front(&self, chart: &mut Chart, series: &Series) -> Result<(), String> {
        use plotters::prelude::*;
        let three_d = self.kind == FrontKind::EnergyAccuracyMemory;
        let xy: Vec<(f64, f64)> = series.front.iter().map(|p| (p.0, p.1)).collect();
        let line = if three_d { vec![] } else { xy.clone() };
        let label = if three_d {
            format!("{} (colour: weight memory, light = small)", self.method)
        } else {
            self.method.to_string()
        };
        chart
            .draw_series(LineSeries::new(line, BLUE.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
        chart
            .draw_series(series.front.iter().map(|&(x, y, share)| {
                let colour = if three_d {
                    // From light (least memory) to dark blue (most).
                    HSLColor(0.62, 0.8, 0.8 - 0.55 * share).filled()
                } else {
                    BLUE.filled()
                };
                Circle::new((x, y), 3, colour)
            }))
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
        Ok(())
    }

    /// The marks (see [`MarkStyle`]), each style with its legend entry, then their labels
    /// (towards the middle of the panel, `middle` on the x axis, so that none leaves it).
    fn draw_marks(&self, chart: &mut Chart, series: &Series, middle: f64) -> Result<(), String> {
        use plotters::prelude::*;
        use plotters::style::text_anchor::{HPos, Pos, VPos};
        let (green, orange) = (RGBColor(0, 140, 60), RGBColor(230, 120, 0));
        let at = |style: MarkStyle| -> Vec<(f64, f64)> {
            (series.marks.iter())
                .filter(|m| m.2.style == style)
                .map(|m| (m.0, m.1))
                .collect()
        };
        let reference = at(MarkStyle::Reference);
        if !reference.is_empty() {
            chart
                .draw_series(
                    reference
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 7, BLACK.filled())),
                )
                .map_err(|e| e.to_string())?
                .label("uniform designs")
                .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
        }
        let baseline = at(MarkStyle::Baseline);
        if !baseline.is_empty() {
            chart
                .draw_series(baseline.iter().map(|&p| {
                    EmptyElement::at(p) + Rectangle::new([(-5, -5), (5, 5)], orange.filled())
                }))
                .map_err(|e| e.to_string())?
                .label("random-search mapping")
                .legend(move |(x, y)| {
                    Rectangle::new([(x + 5, y - 5), (x + 15, y + 5)], orange.filled())
                });
        }
        let chosen = at(MarkStyle::Chosen);
        if !chosen.is_empty() {
            chart
                .draw_series(chosen.iter().map(|&p| {
                    EmptyElement::at(p)
                        + Polygon::new(vec![(0, -8), (8, 0), (0, 8), (-8, 0)], green.filled())
                }))
                .map_err(|e| e.to_string())?
                .label("chosen designs")
                .legend(move |(x, y)| {
                    Polygon::new(
                        vec![(x + 10, y - 7), (x + 17, y), (x + 10, y + 7), (x + 3, y)],
                        green.filled(),
                    )
                });
        }
        chart
            .draw_series(series.marks.iter().map(|&(x, y, m)| {
                // On the side of the marker towards the middle; a random-search mark (just above
                // its uniform design) a little higher, the uniform designs a little lower, so that
                // the two labels part.
                let (v, dy) = match m.style {
                    MarkStyle::Baseline => (VPos::Bottom, -3),
                    MarkStyle::Reference => (VPos::Top, 3),
                    MarkStyle::Chosen => (VPos::Center, 0),
                };
                let (h, dx) = if x < middle {
                    (HPos::Left, 12)
                } else {
                    (HPos::Right, -12)
                };
                let font = ("sans-serif", 14)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(h, v));
                EmptyElement::at((x, y)) + Text::new(m.label.clone(), (dx, dy), font)
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The range of `values`, padded by 5 % of its width (at least 0.1 % of its upper end, and
/// 1e-9) on both sides; None when there are none.
fn padded_range(values: impl Iterator<Item = f64>) -> Option<std::ops::Range<f64>> {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if lo > hi {
        return None;
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-9);
    Some((lo - pad)..(hi + pad))
}
