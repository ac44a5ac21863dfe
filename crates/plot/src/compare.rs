//! Charts across runs: the CAP comparison (several run folders side by side: availability, and stale
//! or non-linearizable reads) and, for sweeps, the outcome per seed and a metric's distribution.

use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::{draw_error, text_style, title_font, Chart, ChartLayout, FAIL_COLOR, OK_COLOR, PALETTE, UNKNOWN_COLOR};
use crate::data::{RunData, SweepRow, Validity};
use crate::metrics::{self, StaleReads};
use crate::PlotError;

/// One run's figures for the CAP comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct CapFigures {
    pub label: String,
    pub ops: usize,
    /// Ok fraction of every operation.
    pub availability: Option<f64>,
    /// Ok fraction of operations invoked inside a fault window (`None`: no such operation).
    pub availability_during_faults: Option<f64>,
    pub stale: StaleReads,
    /// The linearizability verdict run.json recorded, if any.
    pub linearizable: Option<Validity>,
}

impl CapFigures {
    pub fn of(run: &RunData) -> CapFigures {
        let during: Vec<_> =
            run.ops.iter().filter(|op| metrics::invoked_during_faults(op, &run.fault_windows)).cloned().collect();
        let linearizable = run.info.checks.iter().find(|c| c.name.starts_with("linearizab")).map(|c| c.validity());
        let protocol = run.info.protocol.as_ref().map(|p| format!(" ({p})")).unwrap_or_default();
        CapFigures {
            label: format!("{}{protocol}", run.info.label()),
            ops: run.ops.len(),
            availability: metrics::availability(&run.ops),
            availability_during_faults: metrics::availability(&during),
            stale: metrics::stale_reads(&run.ops),
            linearizable,
        }
    }
}

/// CP against AP (or any runs): two panels, availability on the left, stale reads on the right.
pub struct CapComparisonChart {
    pub runs: Vec<CapFigures>,
}

impl CapComparisonChart {
    pub fn new(runs: &[RunData]) -> CapComparisonChart {
        CapComparisonChart { runs: runs.iter().map(CapFigures::of).collect() }
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), |v| format!("{:.1}%", v * 100.0))
}

impl Chart for CapComparisonChart {
    fn size(&self) -> (u32, u32) {
        (1100, 440)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let root = root.titled("CAP comparison: the same workload and faults on each configuration", title_font(18)).map_err(draw_error)?;
        let panels = root.split_evenly((1, 2));
        let n = self.runs.len().max(1);
        let labels: Vec<String> = self.runs.iter().map(|r| r.label.clone()).collect();
        let x_formatter = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        // Left: availability overall and during faults.
        let mut left = ChartBuilder::on(&panels[0])
            .caption("Availability (ok fraction of operations)", title_font(15))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..1.15)
            .map_err(draw_error)?;
        left.configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(n)
            .x_label_formatter(&x_formatter)
            .y_desc("ok fraction")
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        let bars: [(&str, RGBColor, fn(&CapFigures) -> Option<f64>); 2] = [
            ("overall", PALETTE[0], |r| r.availability),
            ("during faults", PALETTE[1], |r| r.availability_during_faults),
        ];
        let (plot_x_px, _) = left.plotting_area().get_pixel_range();
        let segment_px = (plot_x_px.end - plot_x_px.start) / n as i32;
        for (bar_index, (name, color, value)) in bars.into_iter().enumerate() {
            let mut rects = Vec::new();
            for (run_index, run) in self.runs.iter().enumerate() {
                let v = value(run).unwrap_or(0.0);
                let (l, r) = if bar_index == 0 { (segment_px / 6, segment_px / 2) } else { (segment_px / 2, segment_px / 6) };
                let mut rect = Rectangle::new(
                    [(SegmentValue::Exact(run_index), 0.0), (SegmentValue::Exact(run_index + 1), v)],
                    color.filled(),
                );
                rect.set_margin(0, 0, l as u32, r as u32);
                rects.push(rect);
                let label_x = if bar_index == 0 { SegmentValue::Exact(run_index) } else { SegmentValue::CenterOf(run_index) };
                let text = Text::new(percent(value(run)), (label_x, v + 0.04), text_style(12, &BLACK));
                left.plotting_area().draw(&text).map_err(draw_error)?;
            }
            left.draw_series(rects)
                .map_err(draw_error)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x - 6, y - 6), (x + 6, y + 6)], color.filled()));
        }
        left.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font(text_style(12, &BLACK))
            .draw()
            .map_err(draw_error)?;
        // Right: stale reads (reads of an already-overwritten value) as a fraction of ok reads.
        let y_max = self
            .runs
            .iter()
            .map(|r| r.stale.stale as f64 / r.stale.reads_ok.max(1) as f64)
            .fold(0.0, f64::max)
            .max(0.05)
            * 1.3;
        let mut right = ChartBuilder::on(&panels[1])
            .caption("Stale reads (value already overwritten)", title_font(15))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(50)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..y_max)
            .map_err(draw_error)?;
        right
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(n)
            .x_label_formatter(&x_formatter)
            .y_desc("fraction of ok reads")
            .label_style(text_style(12, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        for (run_index, run) in self.runs.iter().enumerate() {
            let fraction = run.stale.stale as f64 / run.stale.reads_ok.max(1) as f64;
            let mut rect = Rectangle::new(
                [(SegmentValue::Exact(run_index), 0.0), (SegmentValue::Exact(run_index + 1), fraction)],
                FAIL_COLOR.filled(),
            );
            rect.set_margin(0, 0, (segment_px / 4) as u32, (segment_px / 4) as u32);
            right.plotting_area().draw(&rect).map_err(draw_error)?;
            let verdict = match run.linearizable {
                Some(v) => format!("linearizable: {}", v.as_str()),
                None => "linearizable: not checked".to_string(),
            };
            let texts = [
                format!("{} of {} reads stale", run.stale.stale, run.stale.reads_ok),
                verdict,
            ];
            for (line, text) in texts.into_iter().enumerate() {
                let y = fraction + y_max * (0.1 - 0.05 * line as f64);
                let element = Text::new(text, (SegmentValue::Exact(run_index), y), text_style(12, &BLACK));
                right.plotting_area().draw(&element).map_err(draw_error)?;
            }
        }
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

/// One cell per seed (sorted by seed), coloured by verdict.
pub struct SweepOutcomeChart<'a> {
    pub rows: &'a [SweepRow],
}

impl Chart for SweepOutcomeChart<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 220)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let mut rows: Vec<&SweepRow> = self.rows.iter().collect();
        rows.sort_by_key(|r| r.seed);
        let count = |v: Validity| rows.iter().filter(|r| r.valid == v).count();
        let title = format!(
            "Outcome per seed: {} seeds, {} valid, {} invalid, {} unknown",
            rows.len(),
            count(Validity::Valid),
            count(Validity::Invalid),
            count(Validity::Unknown)
        );
        let n = rows.len().max(1);
        let seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
        let x_formatter = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) => seeds.get(*i).map(|s| s.to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_font(16))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(20)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..1.0)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .y_labels(0)
            .x_labels(n.min(25))
            .x_label_formatter(&x_formatter)
            .x_desc("seed")
            .label_style(text_style(11, &BLACK))
            .axis_desc_style(text_style(13, &BLACK))
            .draw()
            .map_err(draw_error)?;
        for valid in [Validity::Valid, Validity::Invalid, Validity::Unknown] {
            let color = validity_color(valid);
            let cells: Vec<_> = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.valid == valid)
                .map(|(i, _)| {
                    let mut rect =
                        Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), 1.0)], color.filled());
                    rect.set_margin(0, 0, 1, 1);
                    rect
                })
                .collect();
            chart
                .draw_series(cells)
                .map_err(draw_error)?
                .label(valid.as_str())
                .legend(move |(x, y)| Rectangle::new([(x - 6, y - 6), (x + 6, y + 6)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .label_font(text_style(12, &BLACK))
            .draw()
            .map_err(draw_error)?;
        Ok(None)
    }
}

/// A histogram of one metric across seeds, stacked by verdict.
pub struct SweepMetricChart<'a> {
    pub rows: &'a [SweepRow],
    pub metric: String,
}

impl Chart for SweepMetricChart<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 380)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<Option<ChartLayout>, PlotError> {
        let values: Vec<(f64, Validity)> =
            self.rows.iter().filter_map(|r| r.metrics.get(&self.metric).map(|&v| (v, r.valid))).collect();
        let missing = self.rows.len() - values.len();
        let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (v, _)| (lo.min(*v), hi.max(*v)));
        let (min, max) = if values.is_empty() { (0.0, 1.0) } else if max > min { (min, max) } else { (min - 0.5, max + 0.5) };
        let bins = ((values.len() as f64).sqrt().ceil() as usize).clamp(1, 30);
        let width = (max - min) / bins as f64;
        let mut counts = vec![[0u32; 3]; bins];
        for (value, valid) in &values {
            let bin = (((value - min) / width) as usize).min(bins - 1);
            counts[bin][*valid as usize] += 1;
        }
        let y_max = counts.iter().map(|c| c.iter().sum::<u32>()).max().unwrap_or(1).max(1) as f64 * 1.2;
        let mut title = format!("{} across {} seeds", self.metric, values.len());
        if missing > 0 {
            title.push_str(&format!(" ({missing} seeds without this metric)"));
        }
        let mut chart = ChartBuilder::on(root)
            .caption(title, title_font(16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(min..max, 0.0..y_max)
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc(self.metric.as_str())
            .y_desc("seeds")
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
            chart
                .draw_series(rects)
                .map_err(draw_error)?
                .label(valid.as_str())
                .legend(move |(x, y)| Rectangle::new([(x - 6, y - 6), (x + 6, y + 6)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .label_font(text_style(12, &BLACK))
            .draw()
            .map_err(draw_error)?;
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        Ok(Some(ChartLayout { x_px, y_px, x_range: min..max }))
    }
}
