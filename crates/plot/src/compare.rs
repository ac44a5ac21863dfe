//! Charts across runs: the CAP comparison (configurations side by side: availability over time and
//! overall, and stale or non-linearizable reads), from run folders or from sweeps; and, for sweeps,
//! the outcome per seed and a metric's distribution across seeds.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{
    draw_error, draw_legend_row, draw_title, format_tick, text_style, wrap_text, Chart, ChartLayout, LegendEntry,
    Marker, TimeFrame, FAIL_COLOR, GRID, OK_COLOR, PALETTE, TEXT_GREY, UNKNOWN_COLOR,
};
use crate::charts::default_bucket_ns;
use crate::data::{FaultInstant, FaultWindow, OpSpan, Outcome, RunData, SweepRow, Validity};
use crate::metrics::{self, StaleReads};
use crate::PlotError;

/// One run's figures for the CAP comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct CapFigures {
    pub label: String,
    /// Operations counted (those of the kinds compared).
    pub ops: usize,
    /// Ok fraction of the completed operations.
    pub availability: Option<f64>,
    /// Ok fraction of operations invoked inside a fault window (`None`: no such operation).
    pub availability_during_faults: Option<f64>,
    /// Stale reads among every read of the run.
    pub stale: StaleReads,
    /// The consistency checks run.json recorded (every check but `availability`), with verdicts.
    pub consistency: Vec<(String, Validity)>,
    /// The scenario's own availability check, when it has one (its window and operations).
    pub availability_check: Option<AvailabilityCheck>,
    /// Operation kinds this run refused outright, left out of its figures (not a service it offers).
    pub left_out: Vec<String>,
}

/// What the scenario's `availability` check measured (run.json's check details).
#[derive(Clone, Debug, PartialEq)]
pub struct AvailabilityCheck {
    pub availability: f64,
    pub min_availability: Option<f64>,
    pub valid: Validity,
    /// What it counted (`per client (read, write) invoked from 2s until 5s`).
    pub window: Option<String>,
}

impl CapFigures {
    /// The figures of `run`, leaving out the kinds of operation it refused outright.
    pub fn of(run: &RunData) -> CapFigures {
        let left_out = refused_kinds(run);
        let ops = offered_ops(run, &left_out);
        let during: Vec<OpSpan> =
            ops.iter().filter(|op| metrics::invoked_during_faults(op, &run.fault_windows)).cloned().collect();
        let consistency = run
            .info
            .checks
            .iter()
            .filter(|c| c.name != "availability")
            .map(|c| (c.name.clone(), c.validity()))
            .collect();
        let availability_check = run.info.checks.iter().find(|c| c.name == "availability").and_then(|check| {
            Some(AvailabilityCheck {
                availability: check.details.get("availability")?.as_f64()?,
                min_availability: check.details.get("min_availability").and_then(|v| v.as_f64()),
                valid: check.validity(),
                window: check.details.get("window").and_then(|v| v.as_str()).map(str::to_string),
            })
        });
        CapFigures {
            label: run_label(run),
            ops: ops.len(),
            availability: metrics::availability(&ops),
            availability_during_faults: metrics::availability(&during),
            stale: metrics::stale_reads(&run.ops),
            consistency,
            availability_check,
            left_out,
        }
    }
}

/// The operations of `run` but those of the `left_out` kinds.
fn offered_ops(run: &RunData, left_out: &[String]) -> Vec<OpSpan> {
    run.ops.iter().filter(|op| !left_out.contains(&op.f)).cloned().collect()
}

/// The kinds of operation `run` refused outright (some failed, none succeeded): a system that does
/// not offer `cas` is not unavailable for it, so the comparison leaves such kinds out of that run.
pub fn refused_kinds(run: &RunData) -> Vec<String> {
    // Per kind: (ok, failed).
    let mut seen: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for op in &run.ops {
        let entry = seen.entry(op.f.as_str()).or_default();
        match op.outcome {
            Outcome::Ok => entry.0 += 1,
            Outcome::Fail => entry.1 += 1,
            Outcome::Unknown => {}
        }
    }
    seen.into_iter().filter(|(_, (ok, failed))| *ok == 0 && *failed > 0).map(|(kind, _)| kind.to_string()).collect()
}

/// `scenario (protocol)`, or just one of them when they are the same or one is missing.
fn run_label(run: &RunData) -> String {
    let label = run.info.label();
    match &run.info.protocol {
        Some(protocol) if *protocol != label => format!("{label} ({protocol})"),
        _ => label,
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn run_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// A darker shade of `color` (the availability check's bar).
fn darker(color: RGBColor) -> RGBColor {
    RGBColor((color.0 as f64 * 0.6) as u8, (color.1 as f64 * 0.6) as u8, (color.2 as f64 * 0.6) as u8)
}

/// `color` mixed with white: `amount` of the colour (a light bar).
fn lighter(color: RGBColor, amount: f64) -> RGBColor {
    let mix = |c: u8| (255.0 - (255.0 - c as f64) * amount).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

/// The CAP comparison of run folders: availability as the clients saw it over time (one line per
/// configuration: each client's share of time in operations that succeeded, averaged over clients;
/// the first run's fault windows shaded), then availability overall, during faults and by the
/// scenario's own check, and stale reads with the consistency verdicts.
pub struct CapComparisonChart {
    pub runs: Vec<CapFigures>,
    /// Per run, the top panel's points: (bucket index, (time s, client-time availability)).
    pub availability: Vec<Vec<(u64, (f64, f64))>>,
    bucket_ns: u64,
    end_s: f64,
    windows: Vec<FaultWindow>,
    instants: Vec<FaultInstant>,
    /// Whether the runs' fault windows differ (the chart says whose it shades).
    faults_differ: bool,
}

impl CapComparisonChart {
    pub fn new(runs: &[RunData]) -> CapComparisonChart {
        let end_ns = runs.iter().map(|r| r.end_ns).max().unwrap_or(1).max(1);
        let bucket_ns = runs.iter().max_by_key(|r| r.end_ns).map_or(end_ns, default_bucket_ns).max(1);
        let first = runs.first();
        let windows = first.map(|r| r.fault_windows.clone()).unwrap_or_default();
        let instants = first.map(|r| r.trace.faults.clone()).unwrap_or_default();
        let faults_differ = runs.iter().any(|r| r.fault_windows != windows);
        let bucket_s = bucket_ns as f64 / 1e9;
        let availability = runs
            .iter()
            .map(|run| {
                let ops = offered_ops(run, &refused_kinds(run));
                metrics::client_time_availability(&ops, bucket_ns, run.end_ns)
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, share)| {
                        let t_s = ((i as f64 + 0.5) * bucket_s).min(run.end_ns as f64 / 1e9);
                        share.map(|share| (i as u64, (t_s, share)))
                    })
                    .collect()
            })
            .collect();
        CapComparisonChart {
            runs: runs.iter().map(CapFigures::of).collect(),
            availability,
            bucket_ns,
            end_s: end_ns as f64 / 1e9,
            windows,
            instants,
            faults_differ,
        }
    }

    fn frame(&self) -> TimeFrame<'_> {
        let mut title = format!(
            "CAP comparison: availability seen by the clients, per {}, of the same workload and faults",
            crate::data::human_duration(self.bucket_ns)
        );
        if self.faults_differ {
            let first = self.runs.first().map_or("the first run", |r| r.label.as_str());
            title = format!(
                "CAP comparison: availability over time (faults shaded are those of {first}; the runs' faults differ)"
            );
        }

        TimeFrame {
            title,
            legend: self
                .runs
                .iter()
                .enumerate()
                .map(|(index, run)| LegendEntry::new(run.label.clone(), run_color(index), Marker::Line))
                .collect(),
            windows: &self.windows,
            instants: &self.instants,
            x_range_s: 0.0..self.end_s,
            y_range: 0.0..1.05,
            y_desc: "client time in ok ops".into(),
            plot_px: (1000, 210),
        }
    }
}

const PANEL_HEIGHT_PX: u32 = 330;

/// Draws a bar panel's frame: a title, a y axis from 0 to `y_max`, and each group's label (wrapped)
/// under its slot; then `bars` draws on the chart (x: group index + 0..1).
fn bar_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    groups: &[String],
    y_max: f64,
    y_desc: &str,
    bars: impl FnOnce(
        &mut ChartContext<
            '_,
            DB,
            Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
        >,
    ) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    let n = groups.len().max(1);
    // The title, wrapped to the panel.
    let (width, _) = area.dim_in_pixel();
    let lines = wrap_text(title, 14, width as i32 - 24);
    for (index, line) in lines.iter().enumerate() {
        let style = text_style(14, &BLACK).pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new(line.clone(), (width as i32 / 2, 12 + 18 * index as i32), style)).map_err(draw_error)?;
    }
    let area = area.split_vertically(8 + 18 * lines.len() as u32).1;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n as f64, 0.0..y_max)
        .map_err(draw_error)?;
    let tick = |v: &f64| format_tick(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .max_light_lines(0)
        .bold_line_style(GRID)
        .y_desc(y_desc)
        .y_label_formatter(&tick)
        .label_style(text_style(12, &BLACK))
        .axis_desc_style(text_style(13, &BLACK))
        .draw()
        .map_err(draw_error)?;
    let base = area.get_base_pixel();
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let slot_px = (x_px.end - x_px.start) / n as i32;
    for (index, label) in groups.iter().enumerate() {
        let centre = x_px.start + slot_px * index as i32 + slot_px / 2 - base.0;
        for (line_index, line) in wrap_text(label, 12, slot_px - 8).into_iter().enumerate() {
            let style = text_style(12, &BLACK).pos(Pos::new(HPos::Center, VPos::Top));
            area.draw(&Text::new(line, (centre, y_px.end - base.1 + 6 + 15 * line_index as i32), style))
                .map_err(draw_error)?;
        }
    }
    bars(&mut chart)
}

/// Writes `text` centred above x, at data height `y`.
fn bar_label<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    text: String,
    x: f64,
    y: f64,
    offset_px: i32,
) -> Result<(), PlotError> {
    let style = text_style(12, &BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
    let (px, py) = chart.backend_coord(&(x, y));
    let area = chart.plotting_area().strip_coord_spec();
    let base = area.get_base_pixel();
    area.draw(&Text::new(text, (px - base.0, py - base.1 - 3 - offset_px), style)).map_err(draw_error)
}

impl Chart for CapComparisonChart {
    fn size(&self) -> (u32, u32) {
        let (width, top) = self.frame().size();
        (width, top + PANEL_HEIGHT_PX)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let (_, top_px) = self.frame().size();
        let (top, bottom) = root.split_vertically(top_px);
        let layout = self.frame().draw(&top, |chart| {
            for (index, points) in self.availability.iter().enumerate() {
                let color = run_color(index);
                let mut segment: Vec<(f64, f64)> = Vec::new();
                let mut previous: Option<u64> = None;
                for &(bucket, point) in points {
                    if previous.is_some_and(|p| p + 1 != bucket) && !segment.is_empty() {
                        chart
                            .draw_series(LineSeries::new(std::mem::take(&mut segment), color.stroke_width(2)))
                            .map_err(draw_error)?;
                    }
                    segment.push(point);
                    previous = Some(bucket);
                }
                chart.draw_series(LineSeries::new(segment, color.stroke_width(2))).map_err(draw_error)?;
                chart
                    .draw_series(points.iter().map(|&(_, p)| Circle::new(p, 2, color.filled())))
                    .map_err(draw_error)?;
            }
            Ok(())
        })?;
        let panels = bottom.split_evenly((1, 2));
        let labels: Vec<String> = self.runs.iter().map(|r| r.label.clone()).collect();
        // Left: availability overall (solid), during faults (light) and, when the scenarios have one,
        // their own availability check (dark, its threshold marked), a group per run.
        let with_check = self.runs.iter().any(|r| r.availability_check.is_some());
        let mut title = if with_check {
            "Availability: all ops (solid), during faults (light), the check (dark)".to_string()
        } else {
            "Availability: overall (solid) and during faults (light)".to_string()
        };
        let refusals: Vec<String> = self
            .runs
            .iter()
            .filter(|r| !r.left_out.is_empty())
            .map(|r| format!("{} left out of {} (refused outright)", r.left_out.join(", "), r.label))
            .collect();
        if !refusals.is_empty() {
            title = format!("{title}; {}", refusals.join("; "));
        }
        bar_panel(&panels[0], &title, &labels, 1.15, "ok fraction", |chart| {
            for (index, run) in self.runs.iter().enumerate() {
                let color = run_color(index);
                let x = index as f64;
                let mut bars: Vec<(Option<f64>, RGBColor, String)> = vec![
                    (run.availability, color, percent(run.availability)),
                    (run.availability_during_faults, lighter(color, 0.4), percent(run.availability_during_faults)),
                ];
                if with_check {
                    let check = run.availability_check.as_ref();
                    let text = check.map_or("no check".to_string(), |c| percent(Some(c.availability)));
                    bars.push((check.map(|c| c.availability), darker(color), text));
                }
                let width = 0.72 / bars.len() as f64;
                for (slot, (value, bar_color, text)) in bars.into_iter().enumerate() {
                    let left = x + 0.14 + width * slot as f64;
                    let height = value.unwrap_or(0.0);
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(left + 0.01, 0.0), (left + width - 0.01, height)],
                            bar_color.filled(),
                        )))
                        .map_err(draw_error)?;
                    bar_label(chart, text, left + width / 2.0, height, 0)?;
                }
                if let Some(min) = run.availability_check.as_ref().and_then(|c| c.min_availability) {
                    let left = x + 0.14 + width * 2.0;
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(left - 0.02, min), (left + width + 0.02, min)],
                            BLACK.stroke_width(2),
                        )))
                        .map_err(draw_error)?;
                }
            }
            Ok(())
        })?;
        // Right: stale reads as a fraction of ok reads, with the linearizability verdict.
        let fractions: Vec<f64> =
            self.runs.iter().map(|r| r.stale.stale as f64 / r.stale.reads_ok.max(1) as f64).collect();
        let y_max = fractions.iter().copied().fold(0.0, f64::max).max(0.05) * 1.45;
        bar_panel(
            &panels[1],
            "Stale reads (value already overwritten when read) and checks",
            &labels,
            y_max,
            "fraction of ok reads",
            |chart| {
                for (index, run) in self.runs.iter().enumerate() {
                    let x = index as f64;
                    let fraction = fractions[index];
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x + 0.3, 0.0), (x + 0.7, fraction)],
                            run_color(index).filled(),
                        )))
                        .map_err(draw_error)?;
                    let verdict = if run.consistency.is_empty() {
                        "no consistency check".to_string()
                    } else {
                        let verdicts: Vec<String> =
                            run.consistency.iter().map(|(name, v)| format!("{name}: {}", v.as_str())).collect();
                        verdicts.join(", ")
                    };
                    bar_label(chart, verdict, x + 0.5, fraction, 0)?;
                    bar_label(
                        chart,
                        format!("{} of {} reads stale", run.stale.stale, run.stale.reads_ok),
                        x + 0.5,
                        fraction,
                        16,
                    )?;
                }
                Ok(())
            },
        )?;
        Ok(Some(layout))
    }
}

/// The sweep field holding what a scenario's `availability` check measured.
const AVAILABILITY_CHECK: &str = "availability_check";

/// One configuration of a sweep-driven CAP comparison: its seeds' rows.
#[derive(Clone, Debug, PartialEq)]
pub struct CapSweepGroup {
    pub label: String,
    pub rows: Vec<SweepRow>,
}

impl CapSweepGroup {
    /// Groups sweep rows by scenario, in order of first appearance.
    pub fn group(rows: &[SweepRow]) -> Vec<CapSweepGroup> {
        let mut groups: Vec<CapSweepGroup> = Vec::new();
        for row in rows {
            let label = row.group();
            match groups.iter_mut().find(|g| g.label == label) {
                Some(group) => group.rows.push(row.clone()),
                None => groups.push(CapSweepGroup { label, rows: vec![row.clone()] }),
            }
        }
        groups
    }
    /// True when every seed carries its availability check's figure (sweeps since the
    /// `availability_check` field): the chart then plots that, not the overall ok fraction.
    fn has_availability_check(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.metrics.contains_key(AVAILABILITY_CHECK))
    }
    /// Per seed, the availability the chart plots: with `by_check`, the scenario's check's figure
    /// (it counts what the scenario says availability is, e.g. only reads and writes, only during
    /// the partition), otherwise the overall ok fraction.
    fn availability(&self, by_check: bool) -> Vec<f64> {
        let metric = if by_check { AVAILABILITY_CHECK } else { "availability" };
        self.rows.iter().filter_map(|r| r.metrics.get(metric).copied()).collect()
    }
    /// Seeds where a consistency check (not the availability threshold) found a violation.
    fn inconsistent_seeds(&self) -> usize {
        self.rows.iter().filter(|r| r.violations.iter().any(|v| v != "availability")).count()
    }
    /// Seeds where the scenario's availability check failed.
    fn unavailable_seeds(&self) -> usize {
        self.rows.iter().filter(|r| r.violations.iter().any(|v| v == "availability")).count()
    }
}

/// The CAP comparison driven by a sweep over two (or more) scenarios: per configuration, the
/// availability of every seed (dots) and their mean (bar), and the share of seeds that failed a
/// consistency check (non-linearizable, not sequential...) or the scenario's availability check.
pub struct CapSweepChart {
    pub groups: Vec<CapSweepGroup>,
}

impl Chart for CapSweepChart {
    fn size(&self) -> (u32, u32) {
        (1100, 420)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let seeds: usize = self.groups.iter().map(|g| g.rows.len()).sum();
        let title = format!("CAP comparison over {seeds} seeds: the same workload and faults on each configuration");
        let root = draw_title(root, &title)?;
        let panels = root.split_evenly((1, 2));
        let labels: Vec<String> = self.groups.iter().map(|g| format!("{} ({} seeds)", g.label, g.rows.len())).collect();
        let by_check = self.groups.iter().all(CapSweepGroup::has_availability_check);
        // Mixing figures would compare unlike things: either every group by its check, or all overall.
        let panel_title = if by_check {
            "Availability by each scenario's availability check, per seed (dots) and mean (bar)"
        } else {
            "Availability of all operations per seed (dots) and mean (bar)"
        };
        bar_panel(&panels[0], panel_title, &labels, 1.15, "ok fraction", |chart| {
            for (index, group) in self.groups.iter().enumerate() {
                let color = run_color(index);
                let x = index as f64;
                let values = group.availability(by_check);
                let mean = if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 };
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x + 0.25, 0.0), (x + 0.75, mean)],
                        color.mix(0.35).filled(),
                    )))
                    .map_err(draw_error)?;
                // Dots spread across the bar by seed order, so many seeds stay visible.
                let count = values.len().max(1) as f64;
                chart
                    .draw_series(
                        values.iter().enumerate().map(|(i, &v)| {
                            Circle::new((x + 0.3 + 0.4 * (i as f64 + 0.5) / count, v), 2, color.filled())
                        }),
                    )
                    .map_err(draw_error)?;
                let text = if values.is_empty() {
                    "no availability".to_string()
                } else {
                    format!("mean {:.1}%", mean * 100.0)
                };
                bar_label(chart, text, x + 0.5, 1.0, 4)?;
            }
            Ok(())
        })?;
        // Right: the share of seeds each kind of check failed: consistency (solid), availability (light).
        bar_panel(
            &panels[1],
            "Seeds failing a consistency check (solid) or the availability check (light)",
            &labels,
            1.2,
            "fraction of seeds",
            |chart| {
                for (index, group) in self.groups.iter().enumerate() {
                    let x = index as f64;
                    let seeds = group.rows.len().max(1) as f64;
                    let color = run_color(index);
                    let bars = [
                        (group.inconsistent_seeds(), color, "consistency"),
                        (group.unavailable_seeds(), lighter(color, 0.4), "availability"),
                    ];
                    for (slot, (count, bar_color, what)) in bars.into_iter().enumerate() {
                        let left = x + 0.14 + 0.36 * slot as f64;
                        let fraction = count as f64 / seeds;
                        chart
                            .draw_series(std::iter::once(Rectangle::new(
                                [(left + 0.01, 0.0), (left + 0.35, fraction)],
                                bar_color.filled(),
                            )))
                            .map_err(draw_error)?;
                        bar_label(chart, format!("{count} of {}", group.rows.len()), left + 0.18, fraction, 0)?;
                        bar_label(chart, what.to_string(), left + 0.18, fraction, 15)?;
                    }
                }
                Ok(())
            },
        )?;
        Ok(None)
    }
}

fn validity_color(valid: Validity) -> RGBColor {
    match valid {
        Validity::Valid => OK_COLOR,
        Validity::Invalid => FAIL_COLOR,
        Validity::Unknown => UNKNOWN_COLOR,
    }
}

const OUTCOME_GRID_PX: i32 = 900;
const OUTCOME_LEFT_PX: i32 = 80;
const GROUP_LABEL_PX: i32 = 22;

/// One cell per seed, coloured by verdict: a block per scenario (sorted by seed, in rows).
pub struct SweepOutcomeChart<'a> {
    pub rows: &'a [SweepRow],
}

impl SweepOutcomeChart<'_> {
    /// (cells per row, cell size in pixels) for the largest group.
    fn grid(&self, groups: &[CapSweepGroup]) -> (usize, i32) {
        let n = groups.iter().map(|g| g.rows.len()).max().unwrap_or(1).max(1);
        let columns = if n <= 1000 { n.min(50) } else { ((n as f64).sqrt() * 2.0).ceil().min(450.0) as usize };
        (columns, (OUTCOME_GRID_PX / columns as i32).min(18))
    }
    fn groups(&self) -> Vec<CapSweepGroup> {
        let mut groups = CapSweepGroup::group(self.rows);
        for group in &mut groups {
            group.rows.sort_by_key(|r| r.seed);
        }
        groups
    }
    fn grid_height_px(&self, groups: &[CapSweepGroup]) -> i32 {
        let (columns, cell_px) = self.grid(groups);
        groups.iter().map(|g| GROUP_LABEL_PX + g.rows.len().div_ceil(columns) as i32 * cell_px + 8).sum()
    }
}

impl Chart for SweepOutcomeChart<'_> {
    fn size(&self) -> (u32, u32) {
        let groups = self.groups();
        (1000, 30 + 26 + self.grid_height_px(&groups) as u32 + 30)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let groups = self.groups();
        let count = |v: Validity| self.rows.iter().filter(|r| r.valid == v).count();
        let scope = match groups.as_slice() {
            [only] => only.label.clone(),
            _ => format!("{} scenarios", groups.len()),
        };
        let title = format!("Outcome per seed of {scope}: {} seeds", self.rows.len());
        let below = draw_title(root, &title)?;
        let (legend_area, grid_area) = below.split_vertically(26);
        let (columns, cell_px) = self.grid(&groups);
        let left = OUTCOME_LEFT_PX;
        let legend: Vec<LegendEntry> = [Validity::Valid, Validity::Invalid, Validity::Unknown]
            .into_iter()
            .map(|v| LegendEntry::new(format!("{} ({})", v.as_str(), count(v)), validity_color(v), Marker::Square))
            .collect();
        draw_legend_row(&legend_area, &legend, left, left + OUTCOME_GRID_PX)?;
        let mut top = 0;
        for group in &groups {
            let invalid: Vec<String> =
                group.rows.iter().filter(|r| r.valid == Validity::Invalid).map(|r| r.seed.to_string()).collect();
            let shown: Vec<&str> = invalid.iter().take(10).map(String::as_str).collect();
            let mut label = format!("{}: {} seeds, {} invalid", group.label, group.rows.len(), invalid.len());
            if !shown.is_empty() {
                label.push_str(&format!(
                    " (seeds {}{})",
                    shown.join(", "),
                    if invalid.len() > shown.len() { ", …" } else { "" }
                ));
            }
            let style = text_style(12, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
            grid_area.draw(&Text::new(label, (left, top + GROUP_LABEL_PX / 2), style)).map_err(draw_error)?;
            top += GROUP_LABEL_PX;
            for (index, row) in group.rows.iter().enumerate() {
                let (r, c) = ((index / columns) as i32, (index % columns) as i32);
                let (x, y) = (left + c * cell_px, top + r * cell_px);
                let gap = if cell_px >= 6 { 1 } else { 0 };
                grid_area
                    .draw(&Rectangle::new(
                        [(x, y), (x + cell_px - gap, y + cell_px - gap)],
                        validity_color(row.valid).filled(),
                    ))
                    .map_err(draw_error)?;
                if c == 0 && (cell_px >= 12 || r % (12 / cell_px.max(1)).max(1) == 0) {
                    let style = text_style(11, &TEXT_GREY).pos(Pos::new(HPos::Right, VPos::Center));
                    grid_area
                        .draw(&Text::new(format!("seed {}", row.seed), (x - 6, y + cell_px / 2), style))
                        .map_err(draw_error)?;
                }
            }
            top += group.rows.len().div_ceil(columns) as i32 * cell_px + 8;
        }
        let style = text_style(12, &TEXT_GREY).pos(Pos::new(HPos::Left, VPos::Center));
        let note = "Cells left to right by seed; replay a seed with the scenario's replay command and --seed N.";
        grid_area.draw(&Text::new(note, (left, top + 12), style)).map_err(draw_error)?;
        Ok(None)
    }
}

/// A metric's display unit: nanosecond metrics are shown in milliseconds.
fn metric_scale(metric: &str) -> (f64, String) {
    if metric.ends_with("_ns") || metric.contains("_ns.") {
        (1e-6, format!("{metric} (ms)"))
    } else {
        (1.0, metric.to_string())
    }
}

/// A histogram of one metric across seeds, stacked by verdict.
pub struct SweepMetricChart<'a> {
    pub rows: &'a [SweepRow],
    pub metric: String,
}

impl Chart for SweepMetricChart<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 400)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let (scale, x_desc) = metric_scale(&self.metric);
        let values: Vec<(f64, Validity)> =
            self.rows.iter().filter_map(|r| r.metrics.get(&self.metric).map(|&v| (v * scale, r.valid))).collect();
        let missing = self.rows.len() - values.len();
        let (min, max) =
            values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (v, _)| (lo.min(*v), hi.max(*v)));
        let (min, max) = if values.is_empty() {
            (0.0, 1.0)
        } else if max > min {
            (min, max)
        } else {
            (min - 0.5, max + 0.5)
        };
        let bins = ((values.len() as f64).sqrt().ceil() as usize).clamp(1, 30);
        let width = (max - min) / bins as f64;
        let mut counts = vec![[0u32; 3]; bins];
        for (value, valid) in &values {
            let bin = (((value - min) / width) as usize).min(bins - 1);
            counts[bin][*valid as usize] += 1;
        }
        let y_max = counts.iter().map(|c| c.iter().sum::<u32>()).max().unwrap_or(1).max(1) as f64 * 1.15;
        let mut title = format!("{} across {} seeds", self.metric, values.len());
        if missing > 0 {
            title.push_str(&format!(" ({missing} seeds without this metric)"));
        }
        let root = draw_title(root, &title)?;
        let (legend_area, chart_area) = root.split_vertically(24);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(min..max, 0.0..y_max)
            .map_err(draw_error)?;
        let tick = |v: &f64| format_tick(*v);
        chart
            .configure_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID)
            .x_desc(x_desc)
            .y_desc("seeds")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        for valid in [Validity::Valid, Validity::Invalid, Validity::Unknown] {
            let color = validity_color(valid);
            let rects: Vec<_> = counts
                .iter()
                .enumerate()
                .filter(|(_, c)| c[valid as usize] > 0)
                .map(|(bin, c)| {
                    let below: u32 = c[..valid as usize].iter().sum();
                    let x0 = min + width * bin as f64;
                    let mut rect = Rectangle::new(
                        [(x0, below as f64), (x0 + width, (below + c[valid as usize]) as f64)],
                        color.filled(),
                    );
                    rect.set_margin(0, 0, 1, 1);
                    rect
                })
                .collect();
            chart.draw_series(rects).map_err(draw_error)?;
        }
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        let legend: Vec<LegendEntry> = [Validity::Valid, Validity::Invalid, Validity::Unknown]
            .into_iter()
            .map(|v| {
                let n = values.iter().filter(|(_, valid)| *valid == v).count();
                LegendEntry::new(format!("{} ({n})", v.as_str()), validity_color(v), Marker::Square)
            })
            .collect();
        draw_legend_row(&legend_area, &legend, x_px.start, x_px.end)?;
        Ok(Some(ChartLayout { x_px, y_px, x_range: min..max, y_range: 0.0..y_max }))
    }
}
