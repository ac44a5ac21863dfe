//! The rendering frame every chart shares: the [`Chart`] trait (draw on any plotters backend), SVG to
//! a string and PNG to a file, colours, fault shading and the time axis.

use std::ops::Range;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::data::{FaultInstant, FaultWindow};
use crate::font::{self, FONT_FAMILY};
use crate::PlotError;

/// Where a chart's plotting area landed, in pixels, and the data range it shows on x: structural
/// tests use it to find fault windows and series at the right place.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartLayout {
    pub x_px: Range<i32>,
    pub y_px: Range<i32>,
    pub x_range: Range<f64>,
}

impl ChartLayout {
    /// The pixel column of data value `x`.
    pub fn x_to_px(&self, x: f64) -> f64 {
        let span = self.x_range.end - self.x_range.start;
        let fraction = if span > 0.0 { (x - self.x_range.start) / span } else { 0.0 };
        self.x_px.start as f64 + fraction * (self.x_px.end - self.x_px.start) as f64
    }
}

/// A chart that can draw itself on any plotters backend.
pub trait Chart {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root` (already filled white); returns the layout of the main plotting area, if any.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError>;
}

/// Maps any plotters drawing error into ours.
pub(crate) fn draw_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(error.to_string())
}

/// Renders `chart` as an SVG document. Same chart, same bytes.
pub fn to_svg<C: Chart>(chart: &C) -> Result<(String, Option<ChartLayout>), PlotError> {
    font::ensure_registered();
    let mut svg = String::new();
    let layout;
    {
        let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        layout = chart.draw(&root)?;
        root.present().map_err(draw_error)?;
    }
    Ok((svg, layout))
}

/// Renders `chart` as a PNG file at `path`.
pub fn to_png<C: Chart>(chart: &C, path: &Path) -> Result<(), PlotError> {
    font::ensure_registered();
    let root = BitMapBackend::new(path, chart.size()).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    chart.draw(&root)?;
    root.present().map_err(|e| PlotError::Io { path: path.to_path_buf(), message: e.to_string() })
}

pub(crate) const OK_COLOR: RGBColor = RGBColor(44, 160, 44);
pub(crate) const FAIL_COLOR: RGBColor = RGBColor(214, 39, 40);
pub(crate) const UNKNOWN_COLOR: RGBColor = RGBColor(255, 127, 14);
pub(crate) const GREY: RGBColor = RGBColor(110, 110, 110);

/// A qualitative palette (Tableau 10), for message types and runs.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The shading colour of a fault window, by the kind's first word (`"crash n1"` → crash).
pub fn fault_color(kind: &str) -> RGBColor {
    match kind.split(' ').next().unwrap_or(kind) {
        "partition" | "isolate" | "bridge" | "one-way" | "topology-edge" => RGBColor(31, 119, 180),
        "crash" => RGBColor(214, 39, 40),
        "pause" => RGBColor(148, 103, 189),
        "latency-spike" => RGBColor(255, 127, 14),
        "loss-burst" => RGBColor(140, 86, 75),
        "corrupt" => RGBColor(227, 119, 194),
        "clock-jump" | "clock-offset" | "clock-drift" => RGBColor(23, 190, 207),
        _ => RGBColor(127, 127, 127),
    }
}

/// The opacity of fault shading (tests look for it).
pub const FAULT_SHADE_OPACITY: f64 = 0.15;

pub(crate) fn text_style(size: u32, color: &RGBColor) -> TextStyle<'static> {
    let mut style = TextStyle::from((FONT_FAMILY, size).into_font());
    style.color = color.to_backend_color();
    style
}

pub(crate) fn title_font(size: u32) -> FontDesc<'static> {
    (FONT_FAMILY, size).into_font()
}

/// Seconds with a precision that suits the span shown.
pub(crate) fn format_seconds(value: f64, span_s: f64) -> String {
    if span_s >= 20.0 {
        format!("{value:.0}")
    } else if span_s >= 2.0 {
        format!("{value:.1}")
    } else if span_s >= 0.2 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

pub(crate) type TimeChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart over true time in seconds on x, with the run's fault windows shaded and labelled.
pub(crate) fn time_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_range_s: Range<f64>,
    y_range: Range<f64>,
    y_desc: &str,
) -> Result<TimeChart<'a, DB>, PlotError> {
    let x_range_s = if x_range_s.end > x_range_s.start { x_range_s } else { x_range_s.start..x_range_s.start + 1e-3 };
    let y_range = if y_range.end > y_range.start { y_range } else { y_range.start..y_range.start + 1.0 };
    let span_s = x_range_s.end - x_range_s.start;
    let mut chart = ChartBuilder::on(root)
        .caption(title, title_font(17))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range_s, y_range)
        .map_err(draw_error)?;
    let x_formatter = move |v: &f64| format_seconds(*v, span_s);
    chart
        .configure_mesh()
        .light_line_style(RGBColor(235, 235, 235))
        .x_desc("true time (s)")
        .y_desc(y_desc)
        .x_label_formatter(&x_formatter)
        .label_style(text_style(12, &BLACK))
        .axis_desc_style(text_style(13, &BLACK))
        .draw()
        .map_err(draw_error)?;
    Ok(chart)
}

pub(crate) fn layout_of<DB: DrawingBackend>(chart: &TimeChart<'_, DB>) -> ChartLayout {
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let (x_range, _) = (chart.x_range(), chart.y_range());
    ChartLayout { x_px, y_px, x_range }
}

/// Shades each fault window (clipped to the chart) and labels it at the top; marks instantaneous
/// clock faults with a thin line. Labels are staggered on three rows so neighbours stay readable.
pub(crate) fn shade_faults<'a, DB: DrawingBackend + 'a>(
    chart: &mut TimeChart<'a, DB>,
    windows: &[FaultWindow],
    instants: &[FaultInstant],
) -> Result<(), PlotError> {
    let x_range = chart.x_range();
    let y_range = chart.y_range();
    let y_span = y_range.end - y_range.start;
    for (index, window) in windows.iter().enumerate() {
        let start_s = (window.start_ns as f64 / 1e9).max(x_range.start);
        let end_s = window.end_ns.map_or(x_range.end, |end| end as f64 / 1e9).min(x_range.end);
        if end_s < start_s || start_s > x_range.end {
            continue;
        }
        let color = fault_color(&window.kind);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(start_s, y_range.start), (end_s, y_range.end)],
                color.mix(FAULT_SHADE_OPACITY).filled(),
            )))
            .map_err(draw_error)?;
        let label_y = y_range.end - y_span * (0.01 + 0.06 * (index % 3) as f64);
        chart
            .draw_series(std::iter::once(Text::new(window.kind.clone(), (start_s, label_y), text_style(11, &color))))
            .map_err(draw_error)?;
    }
    let clock_faults = instants.iter().filter(|f| f.kind.starts_with("clock-"));
    for (index, fault) in clock_faults.enumerate() {
        let t_s = fault.t_ns as f64 / 1e9;
        if !x_range.contains(&t_s) {
            continue;
        }
        let color = fault_color(&fault.kind);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t_s, y_range.start), (t_s, y_range.end)],
                color.stroke_width(1),
            )))
            .map_err(draw_error)?;
        let label_y = y_range.end - y_span * (0.19 + 0.06 * (index % 2) as f64);
        chart
            .draw_series(std::iter::once(Text::new(fault.label.clone(), (t_s, label_y), text_style(11, &color))))
            .map_err(draw_error)?;
    }
    Ok(())
}

pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a>(chart: &mut TimeChart<'a, DB>) -> Result<(), PlotError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(text_style(12, &BLACK))
        .draw()
        .map_err(draw_error)
}
