//! `detsim plot`: re-render a run folder's charts and report.html from its recorded data (with a
//! Lamport window and filters, PNG on request), the CAP comparison of run folders or sweeps, and the
//! charts of a sweep's results.

use crate::common::Exit;
use clap::Args;
use detsim_plot::{LamportOptions, RenderOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `detsim plot`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:
  detsim plot runs/quickstart-seed-1                      re-render charts and report.html
  detsim plot runs/raft-seed-3 --from 9s --to 10.5s --node n1 --node n2 --kind AppendEntries
  detsim plot --cap runs/cp-seed-1 runs/ap-seed-1         CAP comparison of two run folders
  detsim plot --cap cp.jsonl ap.jsonl                     CAP comparison of two sweeps
  detsim plot --sweep results.jsonl --metric latency_ns.p99")]
pub struct PlotArgs {
    /// A run folder (run.json, history.jsonl, trace.jsonl): writes DIR/plots/*.svg and DIR/report.html.
    #[arg(value_name = "DIR", required_unless_present_any = ["cap", "sweep"])]
    pub dir: Option<PathBuf>,
    /// Also write a PNG beside each SVG.
    #[arg(long)]
    pub png: bool,
    /// Start of the Lamport diagram's window, in true time ("1.5s", "900ms"); default: the run's start.
    #[arg(long, value_name = "TIME", value_parser = parse_time_ns)]
    pub from: Option<u64>,
    /// End of the Lamport diagram's window; default: the run's end.
    #[arg(long, value_name = "TIME", value_parser = parse_time_ns)]
    pub to: Option<u64>,
    /// Draw only this node's lane in the Lamport diagram (repeatable; messages need both ends shown).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Draw only messages of this type in the Lamport diagram (repeatable).
    #[arg(long = "kind", value_name = "TYPE")]
    pub kinds: Vec<String>,
    /// Above this many messages the Lamport diagram bundles arrows (and says so on it).
    #[arg(long, value_name = "N", default_value_t = detsim_plot::lamport::DEFAULT_DETAIL_LIMIT)]
    pub detail: usize,
    /// Bucket width of the charts over time ("100ms"; default: about 60 buckets over the run).
    #[arg(long, value_name = "DURATION", value_parser = parse_time_ns)]
    pub bucket: Option<u64>,
    /// CAP comparison of these run folders or sweep results files (JSON Lines, grouped by scenario):
    /// writes OUT/cap-comparison.svg.
    #[arg(long, value_name = "INPUT", num_args = 1.., conflicts_with = "sweep")]
    pub cap: Vec<PathBuf>,
    /// Charts of a sweep's results file: outcome per seed and each --metric's distribution across
    /// seeds, into OUT/sweep-*.svg.
    #[arg(long, value_name = "FILE")]
    pub sweep: Option<PathBuf>,
    /// A sweep metric to chart (repeatable; nested ones as `latency_ns.p99`; default: availability).
    #[arg(long = "metric", value_name = "NAME", requires = "sweep")]
    pub metrics: Vec<String>,
    /// Where --cap and --sweep write (default: DIR when given, else ./plots).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// A time as the scenario files write durations (`"1.5s"`, `"900ms"`), in nanoseconds.
fn parse_time_ns(text: &str) -> Result<u64, String> {
    detsim_scenario::units::parse_duration_ns(text)
}

impl PlotArgs {
    /// The render options the window and filter flags ask for.
    pub fn render_options(&self) -> anyhow::Result<RenderOptions> {
        let window_ns = match (self.from, self.to) {
            (None, None) => None,
            (from, to) => {
                let (from, to) = (from.unwrap_or(0), to.unwrap_or(u64::MAX));
                if to <= from {
                    return Err(Exit::bad_input(format!("--to must be after --from (got {} ns to {} ns)", from, to)));
                }
                Some((from, to))
            }
        };
        if self.detail == 0 {
            return Err(Exit::bad_input("--detail must be at least 1"));
        }
        Ok(RenderOptions {
            png: self.png,
            lamport: LamportOptions {
                window_ns,
                nodes: self.nodes.clone(),
                kinds: self.kinds.clone(),
                detail_limit: self.detail,
                ..LamportOptions::default()
            },
            bucket_ns: self.bucket.filter(|&b| b > 0),
        })
    }
}

fn plot_error(error: detsim_plot::PlotError) -> anyhow::Error {
    Exit::bad_input(error)
}

/// Runs `detsim plot`.
pub fn run(args: &PlotArgs) -> anyhow::Result<ExitCode> {
    let options = args.render_options()?;
    let out_dir = args.out.clone().or_else(|| args.dir.clone()).unwrap_or_else(|| PathBuf::from("plots"));
    if let Some(dir) = &args.dir {
        render_folder(dir, &options)?;
    }
    if !args.cap.is_empty() {
        create_dir(&out_dir)?;
        let out = out_dir.join("cap-comparison.svg");
        let files = detsim_plot::render_cap_comparison(&args.cap, &out, args.png).map_err(plot_error)?;
        print_files("CAP comparison", &files);
    }
    if let Some(sweep) = &args.sweep {
        let files = detsim_plot::render_sweep(sweep, &args.metrics, &out_dir, args.png).map_err(plot_error)?;
        print_files("sweep charts", &files);
    }
    Ok(ExitCode::SUCCESS)
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Exit::bad_input(format!("{}: {e}", dir.display())))
}

fn render_folder(dir: &Path, options: &RenderOptions) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Err(Exit::bad_input(format!("{}: not a run folder (no such directory)", dir.display())));
    }
    let run = detsim_plot::load_run(dir).map_err(plot_error)?;
    check_filters(&run, options)?;
    let summary = detsim_plot::render_run(dir, options).map_err(plot_error)?;
    let charts = summary.files.len();
    println!("{:<12} {} ({} KiB)", "report", summary.report.display(), summary.report_bytes.div_ceil(1024));
    println!("{:<12} {charts} files in {}", "charts", dir.join("plots").display());
    Ok(())
}

/// A node or message type the run never saw is a typo: say which ones it has.
fn check_filters(run: &detsim_plot::RunData, options: &RenderOptions) -> anyhow::Result<()> {
    let nodes = run.node_names();
    for node in &options.lamport.nodes {
        if !nodes.contains(node) {
            return Err(Exit::bad_input(format!(
                "--node {node:?}: the run has no such node; nodes: {}",
                nodes.join(", ")
            )));
        }
    }
    let kinds: Vec<&str> = run.trace.sends_by_kind.keys().map(String::as_str).collect();
    for kind in &options.lamport.kinds {
        if !kinds.contains(&kind.as_str()) {
            return Err(Exit::bad_input(format!(
                "--kind {kind:?}: the run sent no message of that type; types: {}",
                kinds.join(", ")
            )));
        }
    }
    if let Some((from, _)) = options.lamport.window_ns {
        if from >= run.end_ns {
            return Err(Exit::bad_input(format!(
                "--from {} s is after the end of the run ({} s)",
                from as f64 / 1e9,
                run.end_ns as f64 / 1e9
            )));
        }
    }
    Ok(())
}

fn print_files(what: &str, files: &[PathBuf]) {
    println!("{what}:");
    for file in files {
        println!("  {}", file.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: PlotArgs,
    }

    fn parse(argv: &[&str]) -> Result<PlotArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("plot").chain(argv.iter().copied())).map(|w| w.args)
    }

    #[test]
    fn window_and_filter_flags_become_render_options() {
        let args =
            parse(&["run", "--from", "1.5s", "--to", "2s", "--node", "n1", "--node", "c1", "--kind", "Vote", "--png"])
                .expect("valid flags");
        let options = args.render_options().expect("valid options");
        assert_eq!(options.lamport.window_ns, Some((1_500_000_000, 2_000_000_000)));
        assert_eq!(options.lamport.nodes, ["n1", "c1"]);
        assert_eq!(options.lamport.kinds, ["Vote"]);
        assert!(options.png);
        let open_ended = parse(&["run", "--from", "900ms"]).expect("valid").render_options().expect("valid");
        assert_eq!(open_ended.lamport.window_ns, Some((900_000_000, u64::MAX)));
        assert_eq!(parse(&["run"]).expect("valid").render_options().expect("valid").lamport.window_ns, None);
    }

    #[test]
    fn impossible_flags_are_bad_input() {
        let backwards = parse(&["run", "--from", "2s", "--to", "1s"]).expect("parses").render_options();
        let error = backwards.expect_err("--to before --from");
        assert_eq!(error.downcast_ref::<Exit>().map(|e| e.code), Some(2));
        assert!(parse(&["run", "--from", "soon"]).is_err(), "not a duration");
        assert!(parse(&[]).is_err(), "a run folder, --cap or --sweep is required");
        assert!(parse(&["--metric", "availability"]).is_err(), "--metric needs --sweep");
        assert!(parse(&["--cap", "a", "b"]).is_ok());
        assert!(parse(&["--cap", "a", "--sweep", "s.jsonl"]).is_err(), "one comparison at a time");
    }
}
