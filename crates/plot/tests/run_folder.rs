//! The run-folder contract between detsim-scenario (which writes run.json, history.jsonl and
//! trace.jsonl) and detsim-plot (which reads them): a real scenario run on the toy protocol, rendered,
//! with every figure the report shows checked against run.json. Bad run folders give errors that name
//! the file and line.

use std::path::{Path, PathBuf};

use detsim_plot::{load_run, render_run, PlotError, RenderOptions};
use detsim_scenario::toy::toy_registry;
use detsim_scenario::{load_str, run_seed, RunOptions};

const SCENARIO: &str = r#"
name = "toy-partition"
description = "A toy register under a partition and a crash."
seed = 7
duration = "3s"
checks = ["linearizable"]

[cluster]
protocol = "toy-register"
nodes = 3

[workload]
clients = 2
timeout = "200ms"

[[faults]]
at = "1s"
kind = "partition"
groups = [["n1", "c1"], ["n2", "n3", "c2"]]

[[faults]]
at = "1500ms"
kind = "heal"

[[faults]]
at = "2s"
kind = "crash"
node = "n3"

[[faults]]
at = "2200ms"
kind = "clock-jump"
node = "n2"
by = "-40ms"
"#;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plot-run-folder").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old folder");
    }
    dir
}

/// Runs `text` with seed 7 into a fresh folder.
fn run_scenario(name: &str, text: &str) -> (PathBuf, detsim_scenario::RunOutcome) {
    let loaded = load_str(text, "toy.toml", "toy", &toy_registry()).unwrap_or_else(|e| panic!("valid scenario: {e}"));
    let dir = scratch(name);
    let options = RunOptions { out_dir: Some(dir.clone()), ..RunOptions::default() };
    let outcome = run_seed(&loaded, 7, options).expect("the run completes");
    (dir, outcome)
}

#[test]
fn a_scenario_run_folder_renders_with_its_recorded_figures() {
    let (dir, outcome) = run_scenario("partition", SCENARIO);
    let run = load_run(&dir).expect("the run folder loads");
    assert_eq!(run.info.seed, Some(7));
    assert_eq!(run.info.trace_hash.as_deref(), Some(outcome.trace_hash_hex().as_str()));
    assert_eq!(run.ops.len() as u64, outcome.ops, "the plots pair the same operations the run counted");
    let ok = run.ops.iter().filter(|op| op.outcome == detsim_plot::Outcome::Ok).count() as u64;
    assert_eq!(ok, outcome.ok);
    let availability = detsim_plot::metrics::availability(&run.ops).expect("operations");
    assert!((availability - outcome.availability).abs() < 1e-9, "{availability} vs run.json {}", outcome.availability);
    let windows: Vec<(&str, u64, Option<u64>)> =
        run.fault_windows.iter().map(|w| (w.kind.as_str(), w.start_ns, w.end_ns)).collect();
    assert_eq!(windows, [("partition", 1_000_000_000, Some(1_500_000_000)), ("crash n3", 2_000_000_000, None)]);
    let fault_kinds: Vec<&str> = run.trace.faults.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(fault_kinds, ["partition", "heal", "crash", "clock-jump"]);
    assert_eq!(run.trace.faults[3].label, "clock-jump n2 -40 ms");
    assert_eq!(run.node_names(), ["n1", "n2", "n3", "c1", "c2"]);
    assert_eq!(run.end_ns, 3_000_000_000);

    let summary = render_run(&dir, &RenderOptions::default()).expect("renders");
    let html = std::fs::read_to_string(&summary.report).expect("report.html");
    for wanted in [
        "toy-partition",
        "A toy register under a partition and a crash.",
        "detsim run toy.toml --seed 7",
        outcome.trace_hash_hex().as_str(),
        "linearizable",
        "crash n3",
        "end of run",
    ] {
        assert!(html.contains(wanted), "report.html lacks {wanted:?}");
    }
    assert!(html.contains(&format!("<tr><th>operations</th><td class=\"num\">{}</td></tr>", outcome.ops)));
    assert!(html.contains(&format!(
        "<tr><th>availability</th><td class=\"num\">{:.2}%</td></tr>",
        outcome.availability * 100.0
    )));
    for chart in
        ["latency", "latency-quantiles", "latency-cdf", "throughput", "availability", "messages-per-op", "lamport"]
    {
        assert!(dir.join("plots").join(format!("{chart}.svg")).exists(), "{chart}.svg");
    }
}

#[test]
fn a_violation_in_a_scenario_run_shows_the_checker_report() {
    let text = format!("{SCENARIO}\n[cluster.params]\nstale_reads = true\n")
        .replace("checks = [", "expect = \"violation\"\nchecks = [");
    let (dir, outcome) = run_scenario("stale", &text);
    assert_eq!(outcome.violated_checks(), ["linearizable"]);
    render_run(&dir, &RenderOptions::default()).expect("renders");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    assert!(html.contains("<h3>linearizable <span class=\"badge invalid\">invalid</span></h3>"));
    assert!(html.contains("<details open><summary>details (counterexample, JSON)</summary>"));
    assert!(html.contains("as expected"), "a violation was expected");
    let report = &outcome.checks[0].report;
    let first_line = report.lines().next().expect("a report");
    assert!(html.contains(&detsim_plot::report::escape_html(first_line)), "the checker's report: {first_line}");
}

#[test]
fn bad_run_folders_name_the_file_and_line() {
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).expect("mkdir");
    match load_run(&dir) {
        Err(PlotError::Io { path, .. }) => assert!(path.ends_with("history.jsonl"), "{}", path.display()),
        other => panic!("a missing history is an I/O error, got {other:?}"),
    }
    std::fs::write(
        dir.join("history.jsonl"),
        "{\"index\":0,\"time_ns\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\nnot json\n",
    )
    .expect("write");
    let error = load_run(&dir).expect_err("line 2 is not JSON");
    let message = error.to_string();
    assert!(message.contains("history.jsonl:2:"), "{message}");
    let (good, _) = run_scenario("good", SCENARIO);
    std::fs::copy(good.join("history.jsonl"), dir.join("history.jsonl")).expect("copy");
    std::fs::write(dir.join("trace.jsonl"), "{\"t\":0,\"ev\":\"start\",\"node\":\"n1\"}\n{\"t\": oops}\n")
        .expect("write");
    let message = load_run(&dir).expect_err("trace line 2").to_string();
    assert!(message.contains("trace.jsonl:2:"), "{message}");
    std::fs::remove_file(dir.join("trace.jsonl")).expect("rm");
    std::fs::write(dir.join("run.json"), "{\"seed\": \"seven\"}").expect("write");
    let message = load_run(&dir).expect_err("a string seed").to_string();
    assert!(message.contains("run.json:1:"), "{message}");
    // Without run.json and trace.jsonl the history alone still renders.
    std::fs::remove_file(dir.join("run.json")).expect("rm");
    let summary = render_run(&dir, &RenderOptions::default()).expect("a history alone renders");
    assert!(std::fs::read_to_string(summary.report).expect("report").contains("run.json records no checks"));
}
