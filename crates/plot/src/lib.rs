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
pub use charts::{
    AvailabilityChart, LatencyCdfChart, LatencyChart, MessagesPerOpChart, QuantilesChart, ThroughputChart,
};
pub use compare::{CapComparisonChart, CapFigures, CapSweepChart, CapSweepGroup, SweepMetricChart, SweepOutcomeChart};
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

/// About how many messages a zoomed Lamport diagram shows (it is then drawn message by message).
pub const ZOOM_MESSAGES: u64 = 60;

/// A zoomed Lamport diagram the report adds to the overview.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoomWindow {
    /// File stem: `lamport-fault-start`, `lamport-fault-end` or `lamport-start`.
    pub name: String,
    pub caption: String,
    /// `[start, end]` in true nanoseconds.
    pub window_ns: (u64, u64),
}

/// The zooms of the report: on the start and the end of the first fault window (or on the first
/// fault), else on the start of the run. Each is wide enough for about [`ZOOM_MESSAGES`] messages at
/// the run's average rate, with the fault a quarter of the way in.
pub fn zoom_windows(run: &RunData) -> Vec<ZoomWindow> {
    let end_ns = run.end_ns.max(1);
    let width_ns = if run.trace.sends == 0 {
        end_ns / 10
    } else {
        (u128::from(ZOOM_MESSAGES) * u128::from(end_ns) / u128::from(run.trace.sends)) as u64
    }
    .clamp((end_ns / 200).max(1), (end_ns / 4).max(1));
    let around = |t_ns: u64| {
        let start = t_ns.saturating_sub(width_ns / 4).min(end_ns.saturating_sub(width_ns));
        (start, (start + width_ns).min(end_ns))
    };
    let first_window = run.fault_windows.iter().min_by_key(|w| w.start_ns);
    let mut zooms = Vec::new();
    match (first_window, run.trace.faults.first()) {
        (Some(window), _) => {
            zooms.push(ZoomWindow {
                name: "lamport-fault-start".into(),
                caption: format!("Zoom on the start of the first fault window ({}).", window.kind),
                window_ns: around(window.start_ns),
            });
            if let Some(window_end_ns) = window.end_ns.filter(|&e| e < end_ns) {
                let zoom = around(window_end_ns);
                if zoom.0 >= zooms[0].window_ns.1 {
                    zooms.push(ZoomWindow {
                        name: "lamport-fault-end".into(),
                        caption: format!("Zoom on the end of the first fault window ({}).", window.kind),
                        window_ns: zoom,
                    });
                }
            }
        }
        (None, Some(fault)) => zooms.push(ZoomWindow {
            name: "lamport-fault-start".into(),
            caption: format!("Zoom on the first fault ({}).", fault.label),
            window_ns: around(fault.t_ns),
        }),
        (None, None) => zooms.push(ZoomWindow {
            name: "lamport-start".into(),
            caption: "Zoom on the start of the run.".into(),
            window_ns: (0, width_ns.min(end_ns)),
        }),
    }
    zooms
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
    let caption = if options.lamport.window_ns.is_some() {
        "Space-time diagram of the chosen window: one lane per node, one arrow per message."
    } else {
        "Space-time diagram of the whole run: one lane per node, one arrow per message (bundled when dense, as noted on it)."
    };
    emit("lamport", caption, &overview, png_dir, &mut out)?;
    if options.lamport.window_ns.is_none() {
        for zoom in zoom_windows(run) {
            let zoom_options = LamportOptions { window_ns: Some(zoom.window_ns), ..options.lamport.clone() };
            let diagram = LamportDiagram::build(run, &zoom_options)?;
            emit(&zoom.name, &zoom.caption, &diagram, png_dir, &mut out)?;
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

/// Renders a run folder: DIR/plots/*.svg (and *.png with `png`), and DIR/report.html. Charts left in
/// DIR/plots by an earlier render that this one does not draw are removed.
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
    remove_stale_charts(&plots_dir, &files)?;
    let html = report::report_html(&run, &charts);
    let report = dir.join("report.html");
    write_file(&report, html.as_bytes())?;
    Ok(RenderSummary { report, files, report_bytes: html.len() as u64 })
}

/// Removes the charts (`*.svg`, `*.png`) in `plots_dir` that this render did not write: an earlier
/// render's zooms replaced by a chosen window, its PNGs when this one wrote none. plots/ then holds
/// exactly what report.html shows.
fn remove_stale_charts(plots_dir: &Path, written: &[PathBuf]) -> Result<(), PlotError> {
    let io = |e: std::io::Error| PlotError::Io { path: plots_dir.to_path_buf(), message: e.to_string() };
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(plots_dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let chart = path.extension().is_some_and(|e| e == "svg" || e == "png");
        if chart && path.is_file() && !written.contains(&path) {
            stale.push(path);
        }
    }
    stale.sort(); // read_dir's order is the file system's
    for path in stale {
        std::fs::remove_file(&path).map_err(|e| PlotError::Io { path: path.clone(), message: e.to_string() })?;
    }
    Ok(())
}

/// Renders a run folder's charts and report.html with default options; returns the report's path.
/// This is what `detsim run` calls unless `--no-report`.
pub fn render_report(dir: &Path) -> Result<PathBuf, PlotError> {
    Ok(render_run(dir, &RenderOptions::default())?.report)
}

/// Renders the CAP comparison into `out` (an .svg path; a .png beside it with `png`) from either run
/// folders (one per configuration: availability over time, stale reads, verdicts) or sweep JSON
/// Lines files (grouped by scenario: availability per seed, seeds with violations). Returns the files
/// written.
pub fn render_cap_comparison(inputs: &[PathBuf], out: &Path, png: bool) -> Result<Vec<PathBuf>, PlotError> {
    if inputs.is_empty() {
        return Err(PlotError::Input("the CAP comparison needs run folders or sweep files".into()));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| PlotError::Io { path: parent.to_path_buf(), message: e.to_string() })?;
    }
    let folders = inputs.iter().filter(|p| p.is_dir()).count();
    let svg = if folders == inputs.len() {
        let runs = inputs.iter().map(|d| load_run(d)).collect::<Result<Vec<_>, _>>()?;
        let chart = CapComparisonChart::new(&runs);
        if png {
            to_png(&chart, &out.with_extension("png"))?;
        }
        to_svg(&chart)?.0
    } else if folders == 0 {
        let mut rows = Vec::new();
        for input in inputs {
            rows.extend(read_sweep(input)?);
        }
        let groups = CapSweepGroup::group(&rows);
        if groups.is_empty() {
            return Err(PlotError::Input("the sweep files hold no seeds".into()));
        }
        let chart = CapSweepChart { groups };
        if png {
            to_png(&chart, &out.with_extension("png"))?;
        }
        to_svg(&chart)?.0
    } else {
        return Err(PlotError::Input(
            "the CAP comparison takes either run folders or sweep JSON Lines files, not a mix".into(),
        ));
    };
    write_file(out, svg.as_bytes())?;
    let mut files = vec![out.to_path_buf()];
    if png {
        files.push(out.with_extension("png"));
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
    let chosen: Vec<String> = if metrics.is_empty() {
        rows.iter()
            .any(|r| r.metrics.contains_key("availability"))
            .then(|| "availability".to_string())
            .into_iter()
            .collect()
    } else {
        metrics.to_vec()
    };
    // Every metric is known before anything is written.
    for metric in &chosen {
        if !rows.iter().any(|r| r.metrics.contains_key(metric)) {
            let known: std::collections::BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
            let known: Vec<&str> = known.into_iter().map(String::as_str).collect();
            return Err(PlotError::Input(format!("no seed has metric {metric:?}; metrics: {}", known.join(", "))));
        }
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| PlotError::Io { path: out_dir.to_path_buf(), message: e.to_string() })?;
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
    for metric in chosen {
        let chart = SweepMetricChart { rows: &rows, metric: metric.clone() };
        let safe: String =
            metric.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
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
