//! The charts of one run: latency per operation, latency quantiles per bucket, the latency CDF,
//! throughput, availability, and messages per operation. Charts over time shade the run's fault
//! windows and name them on a strip above the plot.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::chart::{
    draw_error, draw_title, format_tick, text_style, Chart, ChartLayout, LegendEntry, Marker, TimeFrame, FAIL_COLOR,
    GRID, OK_COLOR, PALETTE, TEXT_GREY, UNKNOWN_COLOR,
};
use crate::data::{human_duration, OpSpan, Outcome, RunData};
use crate::metrics;
use crate::PlotError;

/// The buckets charts over time use: about 60 over the run.
pub fn default_bucket_ns(run: &RunData) -> u64 {
    metrics::bucket_width_ns(run.end_ns.max(1), 60)
}

fn end_s(run: &RunData) -> f64 {
    (run.end_ns as f64 / 1e9).max(1e-3)
}

pub(crate) fn outcome_color(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Ok => OK_COLOR,
        Outcome::Fail => FAIL_COLOR,
        Outcome::Unknown => UNKNOWN_COLOR,
    }
}

/// The plotting area of the wide charts over time, in pixels.
const WIDE_PLOT_PX: (u32, u32) = (900, 250);

/// Dots of one outcome: the outcome, its operation count, and the points drawn.
type OutcomeDots = (Outcome, usize, Vec<(f64, f64)>);

/// Latency of every operation against its invocation time, coloured by outcome.
pub struct LatencyChart<'a> {
    pub run: &'a RunData,
}

impl LatencyChart<'_> {
    fn latency_ms(&self, op: &OpSpan) -> f64 {
        op.latency_ns(self.run.end_ns) as f64 / 1e6
    }
    fn y_max_ms(&self) -> f64 {
        self.run.ops.iter().map(|op| self.latency_ms(op)).fold(0.0, f64::max).max(1e-3) * 1.08
    }
    /// The points drawn per outcome (operations on the same pixel share one) and each outcome's
    /// operation count.
    fn points(&self) -> Vec<OutcomeDots> {
        let (x_end, y_max) = (end_s(self.run), self.y_max_ms());
        let (width, height) = WIDE_PLOT_PX;
        let cell = |op: &OpSpan| {
            let x = (op.start_ns as f64 / 1e9 / x_end * width as f64) as i64;
            let y = (self.latency_ms(op) / y_max * height as f64) as i64;
            (x, y)
        };
        [Outcome::Ok, Outcome::Fail, Outcome::Unknown]
            .into_iter()
            .map(|outcome| {
                let mut seen = BTreeSet::new();
                let points: Vec<(f64, f64)> = self
                    .run
                    .ops
                    .iter()
                    // Operations that never completed are drawn as crosses instead.
                    .filter(|op| op.outcome == outcome && op.end_ns.is_some() && seen.insert(cell(op)))
                    .map(|op| (op.start_ns as f64 / 1e9, self.latency_ms(op)))
                    .collect();
                let count = self.run.ops.iter().filter(|op| op.outcome == outcome).count();
                (outcome, count, points)
            })
            .collect()
    }
    fn frame(&self, points: &[OutcomeDots]) -> TimeFrame<'_> {
        let run = self.run;
        let never_completed = run.ops.iter().filter(|op| op.end_ns.is_none()).count();
        let mut title = format!("Latency per operation ({} operations)", run.ops.len());
        let drawn: usize = points.iter().map(|p| p.2.len()).sum();
        if drawn < run.ops.len() {
            title.push_str(&format!(": {drawn} dots, operations on the same pixel share one"));
        }
        let mut legend: Vec<LegendEntry> = points
            .iter()
            .map(|(outcome, count, _)| {
                LegendEntry::new(format!("{} ({count})", outcome.as_str()), outcome_color(*outcome), Marker::Dot)
            })
            .collect();
        if never_completed > 0 {
            legend.push(LegendEntry::new(
                format!("{never_completed} never completed: latency to the end of the run"),
                UNKNOWN_COLOR,
                Marker::Cross,
            ));
        }
        TimeFrame {
            title,
            legend,
            windows: &run.fault_windows,
            instants: &run.trace.faults,
            x_range_s: 0.0..end_s(run),
            y_range: 0.0..self.y_max_ms(),
            y_desc: "latency (ms)".into(),
            plot_px: WIDE_PLOT_PX,
        }
    }
}

impl Chart for LatencyChart<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame(&self.points()).size()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let points = self.points();
        let frame = self.frame(&points);
        let unfinished: Vec<(f64, f64)> = self
            .run
            .ops
            .iter()
            .filter(|op| op.end_ns.is_none())
            .map(|op| (op.start_ns as f64 / 1e9, self.latency_ms(op)))
            .collect();
        let layout = frame.draw(root, |chart| {
            for (outcome, _, points) in points {
                let color = outcome_color(outcome);
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 2, color.filled()))).map_err(draw_error)?;
            }
            chart
                .draw_series(unfinished.into_iter().map(|p| Cross::new(p, 4, UNKNOWN_COLOR.stroke_width(2))))
                .map_err(draw_error)?;
            Ok(())
        })?;
        Ok(Some(layout))
    }
}

/// p50, p95, p99 and max latency of the ok operations invoked in each time bucket.
pub struct QuantilesChart<'a> {
    pub run: &'a RunData,
    pub bucket_ns: u64,
}

type QuantileSeries = (&'static str, RGBColor, u32, fn(&metrics::QuantileBucket) -> u64);

const QUANTILE_SERIES: [QuantileSeries; 4] = [
    ("max", RGBColor(90, 90, 90), 1, |b| b.max_ns),
    ("p99", PALETTE[3], 2, |b| b.p99_ns),
    ("p95", PALETTE[1], 2, |b| b.p95_ns),
    ("p50", PALETTE[0], 3, |b| b.p50_ns),
];

impl QuantilesChart<'_> {
    fn frame(&self, buckets: &[metrics::QuantileBucket]) -> TimeFrame<'_> {
        let run = self.run;
        let y_max = buckets.iter().map(|b| b.max_ns as f64 / 1e6).fold(0.0, f64::max).max(1e-3) * 1.08;
        let legend = QUANTILE_SERIES
            .iter()
            .rev()
            .map(|(name, color, _, _)| LegendEntry::new(*name, *color, Marker::Line))
            .chain(std::iter::once(LegendEntry::new("no ok operation in the bucket: gap", GRID, Marker::Line)))
            .collect();
        TimeFrame {
            title: format!(
                "Latency quantiles of ok operations, by invocation time ({} buckets)",
                human_duration(self.bucket_ns)
            ),
            legend,
            windows: &run.fault_windows,
            instants: &run.trace.faults,
            x_range_s: 0.0..end_s(run),
            y_range: 0.0..y_max,
            y_desc: "latency (ms)".into(),
            plot_px: WIDE_PLOT_PX,
        }
    }
}

/// Splits bucket points into runs of consecutive buckets: a missing bucket breaks the line.
fn consecutive_segments<T>(items: &[(u64, T)]) -> Vec<Vec<&(u64, T)>> {
    let mut segments: Vec<Vec<&(u64, T)>> = Vec::new();
    for item in items {
        match segments.last_mut() {
            Some(last) if last.last().is_some_and(|prev| prev.0 + 1 == item.0) => last.push(item),
            _ => segments.push(vec![item]),
        }
    }
    segments
}

impl Chart for QuantilesChart<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame(&metrics::latency_quantiles(&self.run.ops, self.bucket_ns)).size()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let buckets = metrics::latency_quantiles(&self.run.ops, self.bucket_ns);
        let frame = self.frame(&buckets);
        let bucket_s = self.bucket_ns as f64 / 1e9;
        let layout = frame.draw(root, |chart| {
            for (_, color, width, value) in QUANTILE_SERIES {
                let indexed: Vec<(u64, (f64, f64))> = buckets
                    .iter()
                    .map(|b| {
                        let index = b.start_ns / self.bucket_ns;
                        (index, ((index as f64 + 0.5) * bucket_s, value(b) as f64 / 1e6))
                    })
                    .collect();
                for segment in consecutive_segments(&indexed) {
                    let points: Vec<(f64, f64)> = segment.iter().map(|(_, p)| *p).collect();
                    chart
                        .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))
                        .map_err(draw_error)?;
                    if points.len() == 1 {
                        chart
                            .draw_series(points.into_iter().map(|p| Circle::new(p, 2, color.filled())))
                            .map_err(draw_error)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(Some(layout))
    }
}

/// The cumulative distribution of ok latencies (at most 400 steps: a curve, every operation counted).
pub struct LatencyCdfChart<'a> {
    pub run: &'a RunData,
}

impl LatencyCdfChart<'_> {
    fn latencies(&self) -> Vec<u64> {
        let mut latencies: Vec<u64> = self
            .run
            .ops
            .iter()
            .filter(|op| op.outcome == Outcome::Ok)
            .map(|op| op.latency_ns(self.run.end_ns))
            .collect();
        latencies.sort_unstable();
        latencies
    }
}

const CDF_MARKS: [(&str, f64); 3] = [("p50", 0.5), ("p99", 0.99), ("max", 1.0)];

impl Chart for LatencyCdfChart<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 400)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let latencies = self.latencies();
        let x_max = latencies.last().map_or(1e-3, |&l| l as f64 / 1e6).max(1e-3) * 1.05;
        let steps = latencies.len().min(400);
        let points: Vec<(f64, f64)> = (0..=steps)
            .map(|i| {
                let q = i as f64 / steps.max(1) as f64;
                (metrics::quantile(&latencies, q).unwrap_or(0) as f64 / 1e6, q)
            })
            .collect();
        let title = format!("Latency CDF of {} ok operations", latencies.len());
        let root = draw_title(root, &title)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)
            .map_err(draw_error)?;
        let tick = |v: &f64| format_tick(*v);
        chart
            .configure_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID)
            .x_desc("latency (ms)")
            .y_desc("fraction of ok operations")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        if !latencies.is_empty() {
            chart.draw_series(LineSeries::new(points, PALETTE[0].stroke_width(2))).map_err(draw_error)?;
            for (index, (name, q)) in CDF_MARKS.into_iter().enumerate() {
                let at_ns = metrics::quantile(&latencies, q).unwrap_or(0);
                let at_ms = at_ns as f64 / 1e6;
                chart
                    .draw_series(DashedLineSeries::new(vec![(at_ms, 0.0), (at_ms, q)], 4, 4, TEXT_GREY.stroke_width(1)))
                    .map_err(draw_error)?;
                chart
                    .draw_series(std::iter::once(Circle::new((at_ms, q), 4, PALETTE[3].filled())))
                    .map_err(draw_error)?;
                // Labels sit left of the curve (the curve rises to the right), staggered downwards.
                let style = text_style(12, &BLACK).pos(Pos::new(HPos::Right, VPos::Center));
                let label_q = (q - 0.09 * index as f64).clamp(0.05, 0.97);
                let text = Text::new(format!("{name} {}  ", human_duration(at_ns)), (at_ms, label_q), style);
                chart.plotting_area().draw(&text).map_err(draw_error)?;
            }
        }
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        Ok(Some(ChartLayout { x_px, y_px, x_range: 0.0..x_max, y_range: 0.0..1.0 }))
    }
}

/// Completions per second by outcome, per bucket of completion time.
pub struct ThroughputChart<'a> {
    pub run: &'a RunData,
    pub bucket_ns: u64,
}

const OUTCOMES: [Outcome; 3] = [Outcome::Ok, Outcome::Fail, Outcome::Unknown];

fn outcome_count(counts: &metrics::OutcomeCounts, outcome: Outcome) -> u64 {
    match outcome {
        Outcome::Ok => counts.ok,
        Outcome::Fail => counts.fail,
        Outcome::Unknown => counts.unknown,
    }
}

impl ThroughputChart<'_> {
    fn frame(&self, buckets: &[metrics::OutcomeCounts]) -> TimeFrame<'_> {
        let run = self.run;
        let bucket_s = self.bucket_ns as f64 / 1e9;
        let y_max = buckets.iter().map(|b| b.total() as f64 / bucket_s).fold(0.0, f64::max).max(1.0) * 1.1;
        let legend = OUTCOMES
            .iter()
            .map(|&outcome| {
                let total: u64 = buckets.iter().map(|b| outcome_count(b, outcome)).sum();
                LegendEntry::new(format!("{} ({total})", outcome.as_str()), outcome_color(outcome), Marker::Line)
            })
            .collect();
        TimeFrame {
            title: format!("Throughput: operations completed per second ({} buckets)", human_duration(self.bucket_ns)),
            legend,
            windows: &run.fault_windows,
            instants: &run.trace.faults,
            x_range_s: 0.0..end_s(run),
            y_range: 0.0..y_max,
            y_desc: "completions / s".into(),
            plot_px: WIDE_PLOT_PX,
        }
    }
}

impl Chart for ThroughputChart<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame(&metrics::throughput(&self.run.ops, self.bucket_ns, self.run.end_ns)).size()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let buckets = metrics::throughput(&run.ops, self.bucket_ns, run.end_ns);
        let frame = self.frame(&buckets);
        let bucket_s = self.bucket_ns as f64 / 1e9;
        let end = end_s(run);
        let layout = frame.draw(root, |chart| {
            for outcome in OUTCOMES {
                let color = outcome_color(outcome);
                let points: Vec<(f64, f64)> = buckets
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (((i as f64 + 0.5) * bucket_s).min(end), outcome_count(b, outcome) as f64 / bucket_s))
                    .collect();
                let width = if outcome == Outcome::Ok { 3 } else { 2 };
                chart.draw_series(LineSeries::new(points, color.stroke_width(width))).map_err(draw_error)?;
            }
            Ok(())
        })?;
        Ok(Some(layout))
    }
}

/// The fraction of operations invoked in each bucket that completed ok (gaps: no operation invoked).
pub struct AvailabilityChart<'a> {
    pub run: &'a RunData,
    pub bucket_ns: u64,
}

impl AvailabilityChart<'_> {
    fn frame(&self) -> TimeFrame<'_> {
        let run = self.run;
        let overall = metrics::availability(&run.ops).map_or("n/a".to_string(), |a| format!("{:.1}%", a * 100.0));
        TimeFrame {
            title: format!(
                "Availability: ok fraction of the operations invoked per {} (overall {overall})",
                human_duration(self.bucket_ns)
            ),
            legend: vec![
                LegendEntry::new("availability", PALETTE[0], Marker::Line),
                LegendEntry::new("no operation invoked: gap", GRID, Marker::Line),
            ],
            windows: &run.fault_windows,
            instants: &run.trace.faults,
            x_range_s: 0.0..end_s(run),
            y_range: 0.0..1.05,
            y_desc: "ok fraction".into(),
            plot_px: WIDE_PLOT_PX,
        }
    }
}

/// (bucket index, (bucket centre in seconds, ok fraction)) of every non-empty bucket.
pub(crate) fn availability_points(run: &RunData, bucket_ns: u64) -> Vec<(u64, (f64, f64))> {
    let bucket_s = bucket_ns as f64 / 1e9;
    let end = end_s(run);
    metrics::outcomes_by_invocation(&run.ops, bucket_ns, run.end_ns)
        .iter()
        .enumerate()
        .filter(|(_, b)| b.total() > 0)
        .map(|(i, b)| (i as u64, (((i as f64 + 0.5) * bucket_s).min(end), b.ok as f64 / b.total() as f64)))
        .collect()
}

impl Chart for AvailabilityChart<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame().size()
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let points = availability_points(self.run, self.bucket_ns);
        let layout = self.frame().draw(root, |chart| {
            let color = PALETTE[0];
            for segment in consecutive_segments(&points) {
                let line: Vec<(f64, f64)> = segment.iter().map(|(_, p)| *p).collect();
                chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(2))).map_err(draw_error)?;
                chart.draw_series(line.into_iter().map(|p| Circle::new(p, 2, color.filled()))).map_err(draw_error)?;
            }
            Ok(())
        })?;
        Ok(Some(layout))
    }
}

/// Messages sent per client operation, by message type (and in total), as horizontal bars.
pub struct MessagesPerOpChart<'a> {
    pub run: &'a RunData,
}

impl MessagesPerOpChart<'_> {
    /// (label, messages per operation, messages), the total first, then types by count.
    fn rows(&self) -> Vec<(String, f64, u64)> {
        let run = self.run;
        let ops = run.ops.len().max(1) as f64;
        let mut kinds: Vec<(&String, &u64)> = run.trace.sends_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut rows = vec![("all types".to_string(), run.trace.sends as f64 / ops, run.trace.sends)];
        rows.extend(kinds.into_iter().map(|(kind, &count)| (kind.clone(), count as f64 / ops, count)));
        rows
    }
}

const BAR_ROW_PX: u32 = 26;

impl Chart for MessagesPerOpChart<'_> {
    fn size(&self) -> (u32, u32) {
        (700, 110 + BAR_ROW_PX * self.rows().len() as u32)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let rows = self.rows();
        let n = rows.len();
        let x_max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-3) * 1.25;
        let title = format!("Messages per operation: {} sends for {} operations", run.trace.sends, run.ops.len());
        let root = draw_title(root, &title)?;
        let label_px = rows.iter().map(|r| crate::chart::text_width_px(&r.0, 12)).max().unwrap_or(40) as u32 + 16;
        let mut chart = ChartBuilder::on(&root)
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(label_px.clamp(60, 280))
            .build_cartesian_2d(0.0..x_max, 0.0..n as f64)
            .map_err(draw_error)?;
        let tick = |v: &f64| format_tick(*v);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .max_light_lines(0)
            .bold_line_style(GRID)
            .x_desc("messages sent per client operation")
            .x_label_formatter(&tick)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        for (index, (name, per_op, count)) in rows.iter().enumerate() {
            // The first row on top.
            let y = (n - 1 - index) as f64;
            let color = if index == 0 { RGBColor(70, 70, 70) } else { PALETTE[(index - 1) % PALETTE.len()] };
            chart
                .draw_series(std::iter::once(Rectangle::new([(0.0, y + 0.18), (*per_op, y + 0.82)], color.filled())))
                .map_err(draw_error)?;
            let value_style = text_style(12, &BLACK).pos(Pos::new(HPos::Left, VPos::Center));
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{per_op:.2} ({count})"),
                    (*per_op + x_max * 0.01, y + 0.5),
                    value_style,
                )))
                .map_err(draw_error)?;
            let (x, y_px) = chart.backend_coord(&(0.0, y + 0.5));
            let base = root.get_base_pixel();
            let label_style = text_style(12, &BLACK).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(name.clone(), (x - 8 - base.0, y_px - base.1), label_style)).map_err(draw_error)?;
        }
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        Ok(Some(ChartLayout { x_px, y_px, x_range: 0.0..x_max, y_range: 0.0..n as f64 }))
    }
}
