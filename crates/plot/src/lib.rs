//! detsim-plot: charts of a run (SVG always, PNG on request), the Lamport space-time diagram, CAP and
//! sweep comparisons, and the self-contained `report.html` of a run folder.
//!
//! Input is the run folder the CLI writes (run.json, history.jsonl, trace.jsonl; see docs/plots.md);
//! nothing here runs a simulation. Text uses an embedded DejaVu Sans, so rendering needs no installed
//! font, and the same run folder always gives the same bytes.

pub mod chart;
pub mod charts;
pub mod compare;
pub mod data;
pub mod demo;
mod font;
pub mod lamport;
pub mod metrics;
pub mod report;

use std::path::{Path, PathBuf};

pub use chart::{to_png, to_svg, Chart, ChartLayout};
pub use charts::{AvailabilityChart, LatencyCdfChart, LatencyChart, MessagesPerOpChart, QuantilesChart, ThroughputChart};
pub use compare::{CapComparisonChart, CapFigures, SweepMetricChart, SweepOutcomeChart};
pub use data::{load_run, read_sweep, FaultWindow, OpSpan, Outcome, RunData, RunInfo, SweepRow, Validity};
pub use lamport::{LamportDiagram, LamportOptions};

/// Why a plot could not be made. Bad input names the file (and line); drawing errors are plotters'.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse { path: PathBuf, line: usize, column: usize, message: String },
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("{0}")]
    Input(String),
}

/// What to render for a run.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Also write a PNG beside each SVG.
    pub png: bool,
    /// The main Lamport diagram's window and filters (the report adds a zoom on the first fault).
    pub lamport: LamportOptions,
    /// Bucket width of charts over time (default: about 60 buckets over the run).
    pub bucket_ns: Option<u64>,
}

/// One rendered chart.
#[derive(Clone, Debug)]
pub struct RenderedChart {
    /// File stem: `latency`, `lamport`, ...
    pub name: String,
    /// A one-line caption for the report.
    pub caption: String,
    pub svg: String,
    pub layout: Option<ChartLayout>,
}

fn emit<C: Chart>(
    name: &str,
    caption: &str,
    chart: &C,
    png_dir: Option<&Path>,
    out: &mut Vec<RenderedChart>,
) -> Result<(), PlotError> {
    let (svg, layout) = to_svg(chart)?;
    if let Some(dir) = png_dir {
        to_png(chart, &dir.join(format!("{name}.png")))?;
    }
    out.push(RenderedChart { name: name.to_string(), caption: caption.to_string(), svg, layout });
    Ok(())
}

/// The window of the zoomed Lamport diagram: around the first fault window (else the first fault), a
/// tenth of the run wide.
pub fn zoom_window_ns(run: &RunData) -> Option<(u64, u64)> {
    let first_fault_ns =
        run.fault_windows.iter().map(|w| w.start_ns).min().or_else(|| run.trace.faults.first().map(|f| f.t_ns))?;
    let width = (run.end_ns / 10).max(1);
    let start = first_fault_ns.saturating_sub(width / 4);
    Some((start, (start + width).min(run.end_ns.max(start + 1))))
}

/// Renders every chart of a run in memory (and PNGs into `png_dir` when given).
pub fn render_run_charts(
    run: &RunData,
    options: &RenderOptions,
    png_dir: Option<&Path>,
) -> Result<Vec<RenderedChart>, PlotError> {
    let bucket_ns = options.bucket_ns.unwrap_or_else(|| charts::default_bucket_ns(run)).max(1);
    let mut out = Vec::new();
    emit(
        "latency",
        "Latency of each operation at its invocation time; shaded: fault windows.",
        &LatencyChart { run },
        png_dir,
        &mut out,
    )?;
    emit(
        "latency-quantiles",
        "Latency quantiles of ok operations per time bucket.",
        &QuantilesChart { run, bucket_ns },
        png_dir,
        &mut out,
    )?;
    emit("latency-cdf", "Cumulative distribution of ok latencies.", &LatencyCdfChart { run }, png_dir, &mut out)?;
    emit(
        "throughput",
        "Completed operations per second, by outcome.",
        &ThroughputChart { run, bucket_ns },
        png_dir,
        &mut out,
    )?;
    emit(
        "availability",
        "Fraction of operations invoked in each bucket that completed ok.",
        &AvailabilityChart { run, bucket_ns },
        png_dir,
        &mut out,
    )?;
    emit(
        "messages-per-op",
        "Messages sent per client operation, by message type.",
        &MessagesPerOpChart { run },
        png_dir,
        &mut out,
    )?;
    let overview = LamportDiagram::build(run, &options.lamport)?;
    emit(
        "lamport",
        "Space-time diagram: one lane per node, one arrow per message (bundled when there are many, as noted on it).",
        &overview,
        png_dir,
        &mut out,
    )?;
    if options.lamport.window_ns.is_none() {
        if let Some(window) = zoom_window_ns(run) {
            let zoom_options = LamportOptions { window_ns: Some(window), ..options.lamport.clone() };
            let zoom = LamportDiagram::build(run, &zoom_options)?;
            emit(
                "lamport-zoom",
                "Space-time diagram zoomed on the first fault.",
                &zoom,
                png_dir,
                &mut out,
            )?;
        }
    }
    Ok(out)
}

/// What [`render_run`] wrote.
#[derive(Clone, Debug)]
pub struct RenderSummary {
    pub report: PathBuf,
    /// Every chart file written (SVG, and PNG when asked).
    pub files: Vec<PathBuf>,
    pub report_bytes: u64,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    std::fs::write(path, bytes).map_err(|e| PlotError::Io { path: path.to_path_buf(), message: e.to_string() })
}

/// Renders a run folder: DIR/plots/*.svg (and *.png with `png`), and DIR/report.html.
pub fn render_run(dir: &Path, options: &RenderOptions) -> Result<RenderSummary, PlotError> {
    let run = load_run(dir)?;
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir)
        .map_err(|e| PlotError::Io { path: plots_dir.clone(), message: e.to_string() })?;
    let charts = render_run_charts(&run, options, options.png.then_some(plots_dir.as_path()))?;
    let mut files = Vec::new();
    for chart in &charts {
        let path = plots_dir.join(format!("{}.svg", chart.name));
        write_file(&path, chart.svg.as_bytes())?;
        files.push(path);
        if options.png {
            files.push(plots_dir.join(format!("{}.png", chart.name)));
        }
    }
    let html = report::report_html(&run, &charts);
    let report = dir.join("report.html");
    write_file(&report, html.as_bytes())?;
    Ok(RenderSummary { report, files, report_bytes: html.len() as u64 })
}

/// Renders a run folder's charts and report.html with default options; returns the report's path.
/// This is what `detsim run` calls unless `--no-report`.
pub fn render_report(dir: &Path) -> Result<PathBuf, PlotError> {
    Ok(render_run(dir, &RenderOptions::default())?.report)
}

/// Renders the CAP comparison of several run folders into `out` (an .svg path; a .png beside it with
/// `png`). Returns the files written.
pub fn render_cap_comparison(dirs: &[PathBuf], out: &Path, png: bool) -> Result<Vec<PathBuf>, PlotError> {
    if dirs.is_empty() {
        return Err(PlotError::Input("the CAP comparison needs at least one run folder".into()));
    }
    let runs = dirs.iter().map(|d| load_run(d)).collect::<Result<Vec<_>, _>>()?;
    let chart = CapComparisonChart::new(&runs);
    let (svg, _) = to_svg(&chart)?;
    write_file(out, svg.as_bytes())?;
    let mut files = vec![out.to_path_buf()];
    if png {
        let png_path = out.with_extension("png");
        to_png(&chart, &png_path)?;
        files.push(png_path);
    }
    Ok(files)
}

/// Renders a sweep's JSON Lines into `out_dir`: sweep-outcomes.svg and, for each metric named (or,
/// when none is, `availability` if present), sweep-METRIC.svg. Returns the files written.
pub fn render_sweep(sweep: &Path, metrics: &[String], out_dir: &Path, png: bool) -> Result<Vec<PathBuf>, PlotError> {
    let rows = read_sweep(sweep)?;
    if rows.is_empty() {
        return Err(PlotError::Input(format!("{}: no sweep rows", sweep.display())));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| PlotError::Io { path: out_dir.to_path_buf(), message: e.to_string() })?;
    let mut files = Vec::new();
    let mut write = |name: &str, svg: String| -> Result<PathBuf, PlotError> {
        let path = out_dir.join(format!("{name}.svg"));
        write_file(&path, svg.as_bytes())?;
        files.push(path.clone());
        Ok(path)
    };
    let outcome = SweepOutcomeChart { rows: &rows };
    let path = write("sweep-outcomes", to_svg(&outcome)?.0)?;
    if png {
        to_png(&outcome, &path.with_extension("png"))?;
    }
    let chosen: Vec<String> = if metrics.is_empty() {
        rows.iter().any(|r| r.metrics.contains_key("availability")).then(|| "availability".to_string()).into_iter().collect()
    } else {
        metrics.to_vec()
    };
    for metric in chosen {
        if !rows.iter().any(|r| r.metrics.contains_key(&metric)) {
            let known: std::collections::BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
            let known: Vec<&str> = known.into_iter().map(String::as_str).collect();
            return Err(PlotError::Input(format!("no seed has metric {metric:?}; metrics: {}", known.join(", "))));
        }
        let chart = SweepMetricChart { rows: &rows, metric: metric.clone() };
        let safe: String = metric.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
        let path = write(&format!("sweep-{safe}"), to_svg(&chart)?.0)?;
        if png {
            to_png(&chart, &path.with_extension("png"))?;
        }
    }
    if png {
        let pngs: Vec<PathBuf> = files.iter().map(|f| f.with_extension("png")).collect();
        files.extend(pngs);
    }
    Ok(files)
}
