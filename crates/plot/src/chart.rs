//! The rendering frame every chart shares: the [`Chart`] trait (draw on any plotters backend), SVG to
//! a string and PNG to a file, colours, the legend row, and the time frame: a chart over true time
//! with the run's fault windows shaded in the plot and labelled on a strip above it.

use std::ops::Range;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
    pub y_range: Range<f64>,
}

impl ChartLayout {
    /// The pixel column of data value `x`.
    pub fn x_to_px(&self, x: f64) -> f64 {
        let span = self.x_range.end - self.x_range.start;
        let fraction = if span > 0.0 { (x - self.x_range.start) / span } else { 0.0 };
        self.x_px.start as f64 + fraction * (self.x_px.end - self.x_px.start) as f64
    }

    /// The pixel row of data value `y` (rows grow downwards).
    pub fn y_to_px(&self, y: f64) -> f64 {
        let span = self.y_range.end - self.y_range.start;
        let fraction = if span > 0.0 { (y - self.y_range.start) / span } else { 0.0 };
        self.y_px.end as f64 - fraction * (self.y_px.end - self.y_px.start) as f64
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
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
pub(crate) const TEXT_GREY: RGBColor = RGBColor(70, 70, 70);

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

/// The shading colour of a fault, by the kind's first word (`"crash n1"` → crash).
pub fn fault_color(kind: &str) -> RGBColor {
    match fault_family(kind) {
        "partition" | "isolate" | "bridge" | "one-way" | "topology-edge" | "heal" => RGBColor(31, 119, 180),
        "crash" | "restart" => RGBColor(214, 39, 40),
        "pause" | "resume" => RGBColor(148, 103, 189),
        "latency-spike" | "latency-spike-end" => RGBColor(255, 127, 14),
        "loss-burst" | "loss-burst-end" => RGBColor(140, 86, 75),
        "corrupt" => RGBColor(227, 119, 194),
        "clock-jump" | "clock-offset" | "clock-drift" => RGBColor(23, 190, 207),
        _ => RGBColor(127, 127, 127),
    }
}

/// The first word of a fault window's kind: `"crash n1"` → `"crash"`.
pub fn fault_family(kind: &str) -> &str {
    kind.split(' ').next().unwrap_or(kind)
}

/// Whether a fault kind opens or closes a fault window (the rest are instants, drawn as ticks).
pub fn is_window_fault(kind: &str) -> bool {
    matches!(
        kind,
        "partition"
            | "isolate"
            | "bridge"
            | "one-way"
            | "heal"
            | "topology-edge"
            | "crash"
            | "restart"
            | "pause"
            | "resume"
            | "latency-spike"
            | "latency-spike-end"
            | "loss-burst"
            | "loss-burst-end"
    )
}

/// The opacity of fault shading in a plot (tests look for it).
pub const FAULT_SHADE_OPACITY: f64 = 0.15;
/// The opacity of a fault window's bar on the fault strip.
pub const FAULT_BAR_OPACITY: f64 = 0.35;

pub(crate) fn text_style(size: u32, color: &RGBColor) -> TextStyle<'static> {
    let mut style = TextStyle::from((FONT_FAMILY, size).into_font());
    style.color = color.to_backend_color();
    style
}

pub(crate) fn title_font(size: u32) -> FontDesc<'static> {
    (FONT_FAMILY, size).into_font()
}

/// The width in pixels of `text` at font size `size` (the embedded font's metrics).
pub(crate) fn text_width_px(text: &str, size: u32) -> i32 {
    font::ensure_registered();
    title_font(size).box_size(text).map_or(text.chars().count() as i32 * size as i32 / 2, |(w, _)| w as i32)
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

/// A tick label: as few decimals as the value needs (`120`, `2.5`, `0.05`).
pub(crate) fn format_tick(value: f64) -> String {
    let magnitude = value.abs();
    let text = if magnitude >= 100.0 || magnitude == 0.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        format!("{value:.1}")
    } else if magnitude >= 0.01 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Splits `text` into lines at most `width_px` wide at font size `size` (at spaces).
pub(crate) fn wrap_text(text: &str, size: u32, width_px: i32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        if !line.is_empty() && text_width_px(&candidate, size) > width_px {
            lines.push(std::mem::take(&mut line));
            line = word.to_string();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marker {
    Dot,
    /// An open circle.
    Ring,
    Line,
    Square,
    Cross,
}

/// One entry of a chart's legend row.
#[derive(Clone, Debug)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub marker: Marker,
}

impl LegendEntry {
    pub fn new(label: impl Into<String>, color: RGBColor, marker: Marker) -> LegendEntry {
        LegendEntry { label: label.into(), color, marker }
    }
}

const LEGEND_FONT: u32 = 12;
const LEGEND_ROW_PX: i32 = 20;

/// How many rows `entries` need between `x_start` and `x_end`.
pub(crate) fn legend_rows(entries: &[LegendEntry], width_px: i32) -> u32 {
    legend_positions(entries, 0, width_px).last().map_or(0, |&(_, row)| row + 1)
}

fn legend_positions(entries: &[LegendEntry], x_start: i32, x_end: i32) -> Vec<(i32, u32)> {
    let mut positions = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (x_start, 0u32);
    for entry in entries {
        let width = 22 + text_width_px(&entry.label, LEGEND_FONT) + 18;
        if x > x_start && x + width > x_end {
            x = x_start;
            row += 1;
        }
        positions.push((x, row));
        x += width;
    }
    positions
}

/// Draws the legend entries left to right from `x_start`, wrapping before `x_end`, on `area` from its
/// top. Returns the rows used.
pub(crate) fn draw_legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    x_start: i32,
    x_end: i32,
) -> Result<u32, PlotError> {
    let positions = legend_positions(entries, x_start, x_end);
    for (entry, &(x, row)) in entries.iter().zip(&positions) {
        let y = row as i32 * LEGEND_ROW_PX + LEGEND_ROW_PX / 2;
        let color = entry.color;
        match entry.marker {
            Marker::Dot => area.draw(&Circle::new((x + 8, y), 4, color.filled())),
            Marker::Ring => area.draw(&Circle::new((x + 8, y), 4, color.stroke_width(1))),
            Marker::Line => area.draw(&PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(3))),
            Marker::Square => area.draw(&Rectangle::new([(x + 2, y - 6), (x + 14, y + 6)], color.filled())),
            Marker::Cross => area.draw(&Cross::new((x + 8, y), 4, color.stroke_width(2))),
        }
        .map_err(draw_error)?;
        let style = text_style(LEGEND_FONT, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(entry.label.clone(), (x + 22, y), style)).map_err(draw_error)?;
    }
    Ok(positions.last().map_or(0, |&(_, row)| row + 1))
}

/// Writes a chart's title centred in a band at the top of `root`; returns the area below it.
pub(crate) fn draw_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    let (width, _) = root.dim_in_pixel();
    let style = text_style(TITLE_FONT, &BLACK).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(title.to_string(), (width as i32 / 2, TITLE_PX as i32 / 2 + 2), style)).map_err(draw_error)?;
    Ok(root.split_vertically(TITLE_PX).1)
}

/// One item of the fault strip: a window (bar) or an instant (tick), with the row it landed on.
#[derive(Clone, Debug, PartialEq)]
struct StripItem {
    start_s: f64,
    /// `None`: an instantaneous fault (a clock jump...).
    end_s: Option<f64>,
    label: String,
    color: RGBColor,
    row: u32,
    /// Whether the label is written (it is left off when it would need a row of its own beyond
    /// [`FaultStrip::LABELLED_ROWS`]; the legend then names the colour).
    labelled: bool,
}

/// The strip above a chart over time that names each fault: a coloured bar per window, a tick per
/// instantaneous fault, packed on rows so labels never overlap. Nothing is left out: a fault whose
/// label does not fit still gets its bar or tick, and its colour is in the legend.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FaultStrip {
    items: Vec<StripItem>,
    rows: u32,
    /// Fault families present, in order of first appearance (for the legend).
    families: Vec<String>,
}

const STRIP_FONT: u32 = 11;
const STRIP_ROW_PX: i32 = 16;

impl FaultStrip {
    /// Rows beyond which labels are left off (bars still get rows of their own).
    pub const LABELLED_ROWS: u32 = 3;

    /// Lays out `windows` and the instantaneous `instants` over `x_range_s`, for a plot `width_px`
    /// wide.
    pub fn new(windows: &[FaultWindow], instants: &[FaultInstant], x_range_s: Range<f64>, width_px: i32) -> FaultStrip {
        let span_s = (x_range_s.end - x_range_s.start).max(1e-12);
        let px = |t_s: f64| ((t_s - x_range_s.start) / span_s * width_px as f64).round() as i32;
        let mut items: Vec<StripItem> = Vec::new();
        for window in windows {
            let start_s = window.start_ns as f64 / 1e9;
            let end_s = window.end_ns.map_or(x_range_s.end, |end| end as f64 / 1e9);
            if end_s < x_range_s.start || start_s > x_range_s.end {
                continue;
            }
            let label = match window.end_ns {
                Some(_) => window.kind.clone(),
                None => format!("{} (to the end)", window.kind),
            };
            items.push(StripItem {
                start_s: start_s.max(x_range_s.start),
                end_s: Some(end_s.min(x_range_s.end)),
                label,
                color: fault_color(&window.kind),
                row: 0,
                labelled: true,
            });
        }
        for fault in instants.iter().filter(|f| !is_window_fault(&f.kind)) {
            let t_s = fault.t_ns as f64 / 1e9;
            if !x_range_s.contains(&t_s) && t_s != x_range_s.end {
                continue;
            }
            items.push(StripItem {
                start_s: t_s,
                end_s: None,
                label: fault.label.clone(),
                color: fault_color(&fault.kind),
                row: 0,
                labelled: true,
            });
        }
        items.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then_with(|| a.label.cmp(&b.label)));
        let mut families: Vec<String> = Vec::new();
        for item in &items {
            let family = fault_family(&item.label).to_string();
            if !families.contains(&family) {
                families.push(family);
            }
        }
        // Greedy packing: the first row whose last item ends left of this one.
        let mut row_ends: Vec<i32> = Vec::new();
        for item in &mut items {
            let x0 = px(item.start_s);
            let bar_end = item.end_s.map_or(x0 + 4, px);
            let label_end = x0 + 4 + text_width_px(&item.label, STRIP_FONT) + 6;
            let labelled_row = row_ends.iter().take(Self::LABELLED_ROWS as usize).position(|&end| end < x0);
            let (row, end) = match labelled_row {
                Some(row) => (row, bar_end.max(label_end)),
                None if row_ends.len() < Self::LABELLED_ROWS as usize => (row_ends.len(), bar_end.max(label_end)),
                None => {
                    item.labelled = false;
                    match row_ends.iter().position(|&end| end < x0) {
                        Some(row) => (row, bar_end),
                        None => (row_ends.len(), bar_end),
                    }
                }
            };
            if row == row_ends.len() {
                row_ends.push(end);
            } else {
                row_ends[row] = end;
            }
            item.row = row as u32;
        }
        FaultStrip { items, rows: row_ends.len() as u32, families }
    }

    /// Height in pixels (0 without faults).
    pub fn height_px(&self) -> u32 {
        if self.rows == 0 {
            0
        } else {
            self.rows * STRIP_ROW_PX as u32 + 4
        }
    }

    /// Legend entries naming each fault family's colour, needed only when some label was left off
    /// (otherwise the strip names every fault itself).
    pub fn legend(&self) -> Vec<LegendEntry> {
        if self.items.iter().all(|item| item.labelled) {
            return Vec::new();
        }
        self.families
            .iter()
            .map(|family| LegendEntry::new(family.clone(), fault_color(family), Marker::Square))
            .collect()
    }

    /// Draws the strip on `area` (its top at the strip's top), with x mapped by `x_px` over
    /// `x_range_s` (the plot's own pixel columns).
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x_px: Range<i32>,
        x_range_s: Range<f64>,
    ) -> Result<(), PlotError> {
        let span_s = (x_range_s.end - x_range_s.start).max(1e-12);
        let px =
            |t_s: f64| x_px.start + ((t_s - x_range_s.start) / span_s * (x_px.end - x_px.start) as f64).round() as i32;
        for item in &self.items {
            let top = item.row as i32 * STRIP_ROW_PX + 2;
            let bottom = top + STRIP_ROW_PX - 3;
            let x0 = px(item.start_s);
            match item.end_s {
                Some(end_s) => {
                    let x1 = px(end_s).max(x0 + 2);
                    area.draw(&Rectangle::new([(x0, top), (x1, bottom)], item.color.mix(FAULT_BAR_OPACITY).filled()))
                        .map_err(draw_error)?;
                    area.draw(&Rectangle::new([(x0, top), (x1, bottom)], item.color.stroke_width(1)))
                        .map_err(draw_error)?;
                }
                None => {
                    let triangle = vec![(x0, bottom), (x0 - 4, top + 2), (x0 + 4, top + 2)];
                    area.draw(&Polygon::new(triangle, item.color.filled())).map_err(draw_error)?;
                }
            }
            if item.labelled {
                let style = text_style(STRIP_FONT, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
                let x = if item.end_s.is_some() { x0 + 4 } else { x0 + 6 };
                area.draw(&Text::new(item.label.clone(), (x, (top + bottom) / 2), style)).map_err(draw_error)?;
            }
        }
        Ok(())
    }
}

pub(crate) type TimeChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

const TITLE_FONT: u32 = 17;
const TITLE_PX: u32 = 30;
const MARGIN_PX: u32 = 14;
const Y_LABEL_AREA_PX: u32 = 68;
const X_LABEL_AREA_PX: u32 = 40;

/// Everything about a chart over true time except its series: title, legend, faults and axes.
pub(crate) struct TimeFrame<'a> {
    pub title: String,
    pub legend: Vec<LegendEntry>,
    pub windows: &'a [FaultWindow],
    pub instants: &'a [FaultInstant],
    pub x_range_s: Range<f64>,
    pub y_range: Range<f64>,
    pub y_desc: String,
    /// Width and height of the plotting area in pixels.
    pub plot_px: (u32, u32),
}

impl TimeFrame<'_> {
    fn x_range(&self) -> Range<f64> {
        let r = self.x_range_s.clone();
        if r.end > r.start {
            r
        } else {
            r.start..r.start + 1e-3
        }
    }
    fn strip(&self) -> FaultStrip {
        FaultStrip::new(self.windows, self.instants, self.x_range(), self.plot_px.0 as i32)
    }
    fn legend_entries(&self, strip: &FaultStrip) -> Vec<LegendEntry> {
        let mut entries = self.legend.clone();
        entries.extend(strip.legend());
        entries
    }

    /// Width and height of the whole chart.
    pub fn size(&self) -> (u32, u32) {
        let strip = self.strip();
        let legend = legend_rows(&self.legend_entries(&strip), self.plot_px.0 as i32);
        let width = self.plot_px.0 + Y_LABEL_AREA_PX + 2 * MARGIN_PX;
        let height =
            TITLE_PX + legend * LEGEND_ROW_PX as u32 + 4 + strip.height_px() + self.plot_px.1 + X_LABEL_AREA_PX + 8;
        (width, height)
    }

    /// Draws the frame (title, legend, fault strip, axes and fault shading), then `series` on the
    /// chart. Returns the plotting area's layout.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        series: impl FnOnce(&mut TimeChart<'_, DB>) -> Result<(), PlotError>,
    ) -> Result<ChartLayout, PlotError> {
        let strip = self.strip();
        let entries = self.legend_entries(&strip);
        let legend_px = legend_rows(&entries, self.plot_px.0 as i32) * LEGEND_ROW_PX as u32 + 4;
        let below_title = draw_title(root, &self.title)?;
        let (legend_area, below_legend) = below_title.split_vertically(legend_px);
        let (strip_area, chart_area) = below_legend.split_vertically(strip.height_px());
        let x_range = self.x_range();
        let y_range = if self.y_range.end > self.y_range.start {
            self.y_range.clone()
        } else {
            self.y_range.start..self.y_range.start + 1.0
        };
        let span_s = x_range.end - x_range.start;
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_left(MARGIN_PX)
            .margin_right(MARGIN_PX)
            .margin_top(2)
            .margin_bottom(8)
            .x_label_area_size(X_LABEL_AREA_PX)
            .y_label_area_size(Y_LABEL_AREA_PX)
            .build_cartesian_2d(x_range.clone(), y_range.clone())
            .map_err(draw_error)?;
        let x_formatter = move |v: &f64| format_seconds(*v, span_s);
        let y_formatter = |v: &f64| format_tick(*v);
        chart
            .configure_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID)
            .x_desc("true time (s)")
            .y_desc(self.y_desc.as_str())
            .x_label_formatter(&x_formatter)
            .y_label_formatter(&y_formatter)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        shade_faults(&mut chart, self.windows, self.instants)?;
        series(&mut chart)?;
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        strip.draw(&strip_area, x_px.clone(), x_range.clone())?;
        draw_legend_row(&legend_area, &entries, x_px.start, x_px.end)?;
        Ok(ChartLayout { x_px, y_px, x_range, y_range })
    }
}

/// Shades each fault window (clipped to the chart) and marks instantaneous faults with a thin line.
fn shade_faults<DB: DrawingBackend>(
    chart: &mut TimeChart<'_, DB>,
    windows: &[FaultWindow],
    instants: &[FaultInstant],
) -> Result<(), PlotError> {
    let x_range = chart.x_range();
    let y_range = chart.y_range();
    for window in windows {
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
    }
    for fault in instants.iter().filter(|f| !is_window_fault(&f.kind)) {
        let t_s = fault.t_ns as f64 / 1e9;
        if !x_range.contains(&t_s) {
            continue;
        }
        let color = fault_color(&fault.kind);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(t_s, y_range.start), (t_s, y_range.end)],
                color.mix(0.8).stroke_width(1),
            )))
            .map_err(draw_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(kind: &str, start_ms: u64, end_ms: Option<u64>) -> FaultWindow {
        FaultWindow { kind: kind.into(), start_ns: start_ms * 1_000_000, end_ns: end_ms.map(|e| e * 1_000_000) }
    }

    fn instant(kind: &str, t_ms: u64) -> FaultInstant {
        FaultInstant { t_ns: t_ms * 1_000_000, kind: kind.into(), node: Some("n1".into()), label: format!("{kind} n1") }
    }

    /// Labelled items on one row never overlap: each starts right of the previous one's label end.
    fn assert_no_overlap(strip: &FaultStrip, width_px: i32, span_s: f64) {
        for row in 0..strip.rows {
            let mut items: Vec<&StripItem> = strip.items.iter().filter(|i| i.row == row).collect();
            items.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            for pair in items.windows(2) {
                let px = |t: f64| (t / span_s * width_px as f64).round() as i32;
                let end = |item: &StripItem| {
                    let bar = item.end_s.map_or(px(item.start_s) + 4, px);
                    let label =
                        if item.labelled { px(item.start_s) + 10 + text_width_px(&item.label, STRIP_FONT) } else { 0 };
                    bar.max(label)
                };
                assert!(end(pair[0]) < px(pair[1].start_s), "{:?} overlaps {:?}", pair[0], pair[1]);
            }
        }
    }

    #[test]
    fn fault_strip_packs_labels_without_overlap_and_keeps_every_fault() {
        let windows = vec![
            window("partition", 1_000, Some(2_000)),
            window("crash n2", 1_100, Some(1_300)),
            window("crash n3", 1_150, Some(1_400)),
            window("pause n1", 3_000, None),
        ];
        let instants = vec![instant("clock-jump", 1_120), instant("crash", 1_100), instant("clock-drift", 3_500)];
        let strip = FaultStrip::new(&windows, &instants, 0.0..4.0, 900);
        // Four windows and two clock faults (the crash instant is a window's start, not an item).
        assert_eq!(strip.items.len(), 6);
        assert!(strip.items.iter().any(|i| i.label == "pause n1 (to the end)" && i.end_s == Some(4.0)));
        assert_eq!(strip.rows, 4, "three labelled rows, then one for bars whose labels did not fit");
        assert!(strip.items.iter().filter(|i| !i.labelled).count() >= 1);
        assert!(!strip.legend().is_empty(), "unlabelled bars need the colour legend");
        assert_no_overlap(&strip, 900, 4.0);
        assert_eq!(strip.height_px(), 4 * STRIP_ROW_PX as u32 + 4);
    }

    #[test]
    fn fault_strip_of_separate_faults_is_one_row_and_needs_no_legend() {
        let windows = vec![window("partition", 500, Some(1_000)), window("crash n1", 2_000, Some(2_500))];
        let strip = FaultStrip::new(&windows, &[instant("clock-jump", 3_000)], 0.0..4.0, 900);
        assert_eq!(strip.rows, 1);
        assert!(strip.items.iter().all(|i| i.labelled));
        assert!(strip.legend().is_empty());
        let empty = FaultStrip::new(&[], &[], 0.0..4.0, 900);
        assert_eq!((empty.rows, empty.height_px()), (0, 0));
        let outside = FaultStrip::new(&windows, &[], 3.0..4.0, 900);
        assert!(outside.items.is_empty(), "windows outside the range are not drawn");
    }

    #[test]
    fn ticks_use_as_few_decimals_as_they_need() {
        assert_eq!(format_tick(120.0), "120");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(5.0), "5");
        assert_eq!(format_tick(0.05), "0.05");
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(0.001), "0.001");
    }

    #[test]
    fn wrapped_lines_fit_and_keep_every_word() {
        let text =
            "Filtered out: 403 messages outside 0.87–1.40 s (the run lasts 4.0 s); 12 messages of types not shown.";
        let lines = wrap_text(text, 12, 200);
        assert!(lines.len() > 1);
        for line in &lines {
            assert!(text_width_px(line, 12) <= 200 || !line.contains(' '), "{line:?} is too wide");
        }
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap_text("", 12, 100), vec![String::new()]);
    }
}
