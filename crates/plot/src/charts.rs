//! The charts of one run: latency per operation, latency quantiles per bucket, the latency CDF,
//! throughput, availability, and messages per operation. Each shades the run's fault windows.

use std::collections::BTreeSet;

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{
    draw_error, draw_legend, layout_of, shade_faults, text_style, time_chart, title_font, Chart, ChartLayout,
    FAIL_COLOR, OK_COLOR, PALETTE, UNKNOWN_COLOR,
};
use crate::data::{Outcome, RunData};
use crate::metrics;
use crate::PlotError;

/// The buckets charts over time use: about 60 over the run.
pub fn default_bucket_ns(run: &RunData) -> u64 {
    metrics::bucket_width_ns(run.end_ns.max(1), 60)
}

fn end_s(run: &RunData) -> f64 {
    (run.end_ns as f64 / 1e9).max(1e-3)
}

fn outcome_color(outcome: Outcome) -> RGBColor {
    match outcome {
        Outcome::Ok => OK_COLOR,
        Outcome::Fail => FAIL_COLOR,
        Outcome::Unknown => UNKNOWN_COLOR,
    }
}

const WIDE: (u32, u32) = (1000, 380);

/// Latency of every operation against its invocation time, coloured by outcome.
pub struct LatencyChart<'a> {
    pub run: &'a RunData,
}

impl Chart for LatencyChart<'_> {
    fn size(&self) -> (u32, u32) {
        WIDE
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let never_completed = run.ops.iter().filter(|op| op.end_ns.is_none()).count();
        let latency_ms = |op: &crate::data::OpSpan| op.latency_ns(run.end_ns) as f64 / 1e6;
        let y_max = run.ops.iter().map(latency_ms).fold(0.0, f64::max).max(1e-3) * 1.12;
        let x_end = end_s(run);
        // Operations that land on the same pixel cell are drawn once: say how many points stand for
        // how many operations instead of drawing a million circles.
        let (width, height) = self.size();
        let cell = |op: &crate::data::OpSpan| {
            let x = (op.start_ns as f64 / 1e9 / x_end * width as f64) as i64;
            let y = (latency_ms(op) / y_max * height as f64) as i64;
            (x, y)
        };
        let mut title = format!("Latency per operation: {} ops", run.ops.len());
        if never_completed > 0 {
            title.push_str(&format!(", {never_completed} never completed (drawn at run end)"));
        }
        let mut cells_by_outcome = Vec::new();
        let mut drawn = 0usize;
        for outcome in [Outcome::Ok, Outcome::Fail, Outcome::Unknown] {
            let mut seen = BTreeSet::new();
            let points: Vec<(f64, f64)> = run
                .ops
                .iter()
                .filter(|op| op.outcome == outcome && seen.insert(cell(op)))
                .map(|op| (op.start_ns as f64 / 1e9, latency_ms(op)))
                .collect();
            drawn += points.len();
            let count = run.ops.iter().filter(|op| op.outcome == outcome).count();
            cells_by_outcome.push((outcome, count, points));
        }
        if drawn < run.ops.len() {
            title.push_str(&format!("; overlapping ops share a dot ({drawn} dots)"));
        }
        let mut chart = time_chart(root, &title, 0.0..x_end, 0.0..y_max, "latency (ms)")?;
        shade_faults(&mut chart, &run.fault_windows, &run.trace.faults)?;
        for (outcome, count, points) in cells_by_outcome {
            let color = outcome_color(outcome);
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 2, color.filled())))
                .map_err(draw_error)?
                .label(format!("{} ({count})", outcome.as_str()))
                .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        }
        draw_legend(&mut chart)?;
        Ok(Some(layout_of(&chart)))
    }
}

/// p50, p95, p99 and max latency of the ok operations invoked in each time bucket.
pub struct QuantilesChart<'a> {
    pub run: &'a RunData,
    pub bucket_ns: u64,
}

impl Chart for QuantilesChart<'_> {
    fn size(&self) -> (u32, u32) {
        WIDE
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let buckets = metrics::latency_quantiles(&run.ops, self.bucket_ns);
        let y_max = buckets.iter().map(|b| b.max_ns as f64 / 1e6).fold(0.0, f64::max).max(1e-3) * 1.12;
        let title = format!(
            "Latency quantiles of ok operations per {} bucket",
            crate::data::human_duration(self.bucket_ns)
        );
        let mut chart = time_chart(root, &title, 0.0..end_s(run), 0.0..y_max, "latency (ms)")?;
        shade_faults(&mut chart, &run.fault_windows, &run.trace.faults)?;
        let half_bucket_s = self.bucket_ns as f64 / 2e9;
        let series: [(&str, RGBColor, fn(&metrics::QuantileBucket) -> u64); 4] = [
            ("p50", PALETTE[0], |b| b.p50_ns),
            ("p95", PALETTE[1], |b| b.p95_ns),
            ("p99", PALETTE[3], |b| b.p99_ns),
            ("max", RGBColor(40, 40, 40), |b| b.max_ns),
        ];
        for (name, color, value) in series {
            let points: Vec<(f64, f64)> =
                buckets.iter().map(|b| (b.start_ns as f64 / 1e9 + half_bucket_s, value(b) as f64 / 1e6)).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(draw_error)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 2, color.filled()))).map_err(draw_error)?;
        }
        draw_legend(&mut chart)?;
        Ok(Some(layout_of(&chart)))
    }
}

/// The cumulative distribution of ok latencies (at most 400 steps: a curve, every operation counted).
pub struct LatencyCdfChart<'a> {
    pub run: &'a RunData,
}

impl Chart for LatencyCdfChart<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 380)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let mut latencies: Vec<u64> = self
            .run
            .ops
            .iter()
            .filter(|op| op.outcome == Outcome::Ok)
            .map(|op| op.latency_ns(self.run.end_ns))
            .collect();
        latencies.sort_unstable();
        let x_max = latencies.last().map_or(1e-3, |&l| l as f64 / 1e6).max(1e-3) * 1.05;
        let steps = latencies.len().min(400);
        let points: Vec<(f64, f64)> = (0..=steps)
            .map(|i| {
                let q = i as f64 / steps.max(1) as f64;
                (metrics::quantile(&latencies, q).unwrap_or(0) as f64 / 1e6, q)
            })
            .collect();
        let title = format!("Latency CDF of {} ok operations", latencies.len());
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_font(17))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc("latency (ms)")
            .y_desc("fraction of ok operations")
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        if !latencies.is_empty() {
            chart
                .draw_series(LineSeries::new(points, PALETTE[0].stroke_width(2)))
                .map_err(draw_error)?
                .label("ok latency")
                .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], PALETTE[0].stroke_width(2)));
            for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
                let at_ms = metrics::quantile(&latencies, q).unwrap_or(0) as f64 / 1e6;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{name} {at_ms:.2} ms"),
                        (at_ms, q - 0.06),
                        text_style(11, &BLACK),
                    )))
                    .map_err(draw_error)?;
            }
        }
        Ok(Some(layout_of(&chart)))
    }
}

/// Completions per second by outcome, per bucket of completion time.
pub struct ThroughputChart<'a> {
    pub run: &'a RunData,
    pub bucket_ns: u64,
}

impl Chart for ThroughputChart<'_> {
    fn size(&self) -> (u32, u32) {
        WIDE
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let buckets = metrics::throughput(&run.ops, self.bucket_ns, run.end_ns);
        let bucket_s = self.bucket_ns as f64 / 1e9;
        let y_max = buckets.iter().map(|b| b.total() as f64 / bucket_s).fold(0.0, f64::max).max(1.0) * 1.15;
        let title = format!("Throughput: completions per second ({} buckets)", crate::data::human_duration(self.bucket_ns));
        let mut chart = time_chart(root, &title, 0.0..end_s(run), 0.0..y_max, "operations / s")?;
        shade_faults(&mut chart, &run.fault_windows, &run.trace.faults)?;
        let series: [(Outcome, fn(&metrics::OutcomeCounts) -> u64); 3] =
            [(Outcome::Ok, |b| b.ok), (Outcome::Fail, |b| b.fail), (Outcome::Unknown, |b| b.unknown)];
        for (outcome, count) in series {
            let color = outcome_color(outcome);
            let points: Vec<(f64, f64)> = buckets
                .iter()
                .enumerate()
                .map(|(i, b)| ((i as f64 + 0.5) * bucket_s, count(b) as f64 / bucket_s))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(draw_error)?
                .label(outcome.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], color.stroke_width(2)));
        }
        draw_legend(&mut chart)?;
        Ok(Some(layout_of(&chart)))
    }
}

/// The fraction of operations invoked in each bucket that completed ok (gaps: no operation invoked).
pub struct AvailabilityChart<'a> {
    pub run: &'a RunData,
    pub bucket_ns: u64,
}

impl Chart for AvailabilityChart<'_> {
    fn size(&self) -> (u32, u32) {
        WIDE
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let buckets = metrics::outcomes_by_invocation(&run.ops, self.bucket_ns, run.end_ns);
        let bucket_s = self.bucket_ns as f64 / 1e9;
        let overall = metrics::availability(&run.ops).map_or("n/a".to_string(), |a| format!("{:.1}%", a * 100.0));
        let title = format!(
            "Availability: ok fraction of operations invoked per {} (overall {overall})",
            crate::data::human_duration(self.bucket_ns)
        );
        let mut chart = time_chart(root, &title, 0.0..end_s(run), 0.0..1.08, "ok fraction")?;
        shade_faults(&mut chart, &run.fault_windows, &run.trace.faults)?;
        // Consecutive non-empty buckets form one line; an empty bucket breaks it.
        let mut segments: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, bucket) in buckets.iter().enumerate() {
            if bucket.total() == 0 {
                if !segments.last().expect("never empty").is_empty() {
                    segments.push(Vec::new());
                }
                continue;
            }
            let point = ((i as f64 + 0.5) * bucket_s, bucket.ok as f64 / bucket.total() as f64);
            segments.last_mut().expect("never empty").push(point);
        }
        let color = PALETTE[0];
        for (index, segment) in segments.into_iter().filter(|s| !s.is_empty()).enumerate() {
            let series = chart
                .draw_series(LineSeries::new(segment.clone(), color.stroke_width(2)))
                .map_err(draw_error)?;
            if index == 0 {
                series
                    .label("availability")
                    .legend(move |(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], color.stroke_width(2)));
            }
            chart.draw_series(segment.into_iter().map(|p| Circle::new(p, 2, color.filled()))).map_err(draw_error)?;
        }
        draw_legend(&mut chart)?;
        Ok(Some(layout_of(&chart)))
    }
}

/// Messages sent per client operation, by message type (and in total).
pub struct MessagesPerOpChart<'a> {
    pub run: &'a RunData,
}

impl Chart for MessagesPerOpChart<'_> {
    fn size(&self) -> (u32, u32) {
        let kinds = self.run.trace.sends_by_kind.len() as u32 + 1;
        (640, 110 + 26 * kinds)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let run = self.run;
        let ops = run.ops.len().max(1) as f64;
        let mut rows: Vec<(String, f64, u64)> = vec![("all types".to_string(), run.trace.sends as f64 / ops, run.trace.sends)];
        rows.extend(run.trace.sends_by_kind.iter().map(|(kind, &count)| (kind.clone(), count as f64 / ops, count)));
        let x_max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-3) * 1.3;
        let title = format!("Messages per operation ({} sends, {} operations)", run.trace.sends, run.ops.len());
        let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let label_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(4) as u32 * 8 + 16;
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_font(17))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(label_width.clamp(60, 260))
            .build_cartesian_2d(0.0..x_max, (0..rows.len()).into_segmented())
            .map_err(draw_error)?;
        let y_formatter = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc("messages sent per operation")
            .y_labels(rows.len())
            .y_label_formatter(&y_formatter)
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        for (index, (_, per_op, count)) in rows.iter().enumerate() {
            let color = if index == 0 { RGBColor(60, 60, 60) } else { PALETTE[(index - 1) % PALETTE.len()] };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, SegmentValue::Exact(index)), (*per_op, SegmentValue::Exact(index + 1))],
                    color.filled(),
                )))
                .map_err(draw_error)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{per_op:.2} ({count})"),
                    (*per_op + x_max * 0.01, SegmentValue::CenterOf(index)),
                    text_style(11, &BLACK),
                )))
                .map_err(draw_error)?;
        }
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        Ok(Some(ChartLayout { x_px, y_px, x_range: 0.0..x_max }))
    }
}
