//! `detsim plot` end to end, through the binary: re-rendering a run folder `detsim run` wrote (same
//! run, same bytes), the Lamport window and filters, PNG, the CAP comparison and sweep charts, and
//! bad input (exit code 2 with a message that says what the run has).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const QUICKSTART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/quickstart.toml");

fn detsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detsim")).args(args).env("NO_COLOR", "1").output().expect("detsim runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-plot").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old folder");
    }
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn run_quickstart(dir: &Path, extra: &[&str]) {
    let mut args = vec!["run", QUICKSTART, "--out", dir.to_str().expect("UTF-8")];
    args.extend_from_slice(extra);
    let output = detsim(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn run_writes_the_report_and_plot_re_renders_it_to_the_same_bytes() {
    let dir = scratch("rerender").join("run");
    run_quickstart(&dir, &[]);
    let report = std::fs::read(dir.join("report.html")).expect("detsim run wrote report.html");
    let latency = std::fs::read(dir.join("plots/latency.svg")).expect("and the charts");
    // The same scenario and seed run again: the same report, byte for byte.
    run_quickstart(&dir, &[]);
    assert!(std::fs::read(dir.join("report.html")).expect("report") == report, "report.html is deterministic");
    let output = detsim(&["plot", dir.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("report.html"));
    assert!(std::fs::read(dir.join("report.html")).expect("report") == report, "re-rendering changes nothing");
    assert!(std::fs::read(dir.join("plots/latency.svg")).expect("svg") == latency);

    let bare = scratch("rerender").join("no-report");
    run_quickstart(&bare, &["--no-report"]);
    assert!(bare.join("run.json").exists() && !bare.join("report.html").exists(), "--no-report skips it");
    let output = detsim(&["plot", bare.to_str().expect("UTF-8"), "--png"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(bare.join("report.html").exists() && bare.join("plots/lamport.png").exists());
}

#[test]
fn lamport_window_and_filters_reach_the_diagram() {
    let dir = scratch("window").join("run");
    run_quickstart(&dir, &["--no-report"]);
    let dir_arg = dir.to_str().expect("UTF-8");
    let output = detsim(&[
        "plot",
        dir_arg,
        "--from",
        "2.9s",
        "--to",
        "3200ms",
        "--node",
        "n1",
        "--node",
        "n2",
        "--kind",
        "AppendEntries",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let svg = std::fs::read_to_string(dir.join("plots/lamport.svg")).expect("lamport.svg");
    assert!(svg.contains("2.90 to 3.20 s"), "the window is the diagram's");
    assert!(svg.contains("nodes n1, n2; message types AppendEntries"), "the filters are written on it");
    assert!(svg.contains("Filtered out:"));
    assert!(!dir.join("plots/lamport-fault-start.svg").exists(), "a chosen window replaces the zooms");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("2.90 to 3.20 s"));

    for (args, message) in [
        (vec!["--kind", "Nope"], "--kind \"Nope\": the run sent no message of that type; types: AppendEntries"),
        (vec!["--node", "n9"], "--node \"n9\": the run has no such node; nodes: n1, n2, n3, n4, n5, c1, c2, c3"),
        (vec!["--from", "3s", "--to", "2s"], "--to must be after --from"),
        (vec!["--from", "20s"], "is after the end of the run (10 s)"),
    ] {
        let mut argv = vec!["plot", dir_arg];
        argv.extend(args);
        let output = detsim(&argv);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(message), "{message:?} in: {}", text(&output));
    }
    let output = detsim(&["plot", dir_arg, "--from", "soon"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("invalid duration \"soon\""), "{}", text(&output));
    let output = detsim(&["plot"]);
    assert_eq!(output.status.code(), Some(2), "a folder, --cap or --sweep is required");
    let output = detsim(&["plot", scratch("window").join("missing").to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("not a run folder"), "{}", text(&output));
}

#[test]
fn cap_comparison_and_sweep_charts_from_the_command_line() {
    let root = scratch("compare");
    let (first, second) = (root.join("seed-1"), root.join("seed-2"));
    run_quickstart(&first, &["--no-report"]);
    let output = detsim(&["run", QUICKSTART, "--seed", "2", "--out", second.to_str().expect("UTF-8"), "--no-report"]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", text(&output));
    let out = root.join("charts");
    let output = detsim(&[
        "plot",
        "--cap",
        first.to_str().expect("UTF-8"),
        second.to_str().expect("UTF-8"),
        "--png",
        "--out",
        out.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(out.join("cap-comparison.svg").exists() && out.join("cap-comparison.png").exists());

    let results = root.join("results.jsonl");
    let output =
        detsim(&["sweep", QUICKSTART, "--seeds", "1..4", "--jobs", "1", "--out", results.to_str().expect("UTF-8")]);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", text(&output));
    let output = detsim(&[
        "plot",
        "--sweep",
        results.to_str().expect("UTF-8"),
        "--metric",
        "latency_ns.p99",
        "--out",
        out.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let outcomes = std::fs::read_to_string(out.join("sweep-outcomes.svg")).expect("sweep-outcomes.svg");
    assert!(outcomes.contains("quickstart: 3 seeds"), "one cell per seed of the sweep");
    assert!(out.join("sweep-latency_ns-p99.svg").exists());
    let output = detsim(&[
        "plot",
        "--sweep",
        results.to_str().expect("UTF-8"),
        "--metric",
        "nope",
        "--out",
        out.to_str().expect("UTF-8"),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("no seed has metric \"nope\""), "{}", text(&output));
    // A sweep's results also drive the CAP comparison (grouped by scenario).
    let output = detsim(&["plot", "--cap", results.to_str().expect("UTF-8"), "--out", out.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(std::fs::read_to_string(out.join("cap-comparison.svg"))
        .expect("svg")
        .contains("CAP comparison over 3 seeds"));
}
