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

    // Re-rendered with a chosen window and no PNGs, plots/ holds exactly what the report shows: the
    // zooms and PNGs of earlier renders are gone, a file that is not a chart stays.
    let plots = dir.join("plots");
    render_run(&dir, &RenderOptions { png: true, ..RenderOptions::default() }).expect("renders with PNGs");
    assert!(plots.join("lamport-fault-start.svg").exists() && plots.join("latency.png").exists());
    std::fs::write(plots.join("notes.txt"), "mine").expect("a file of the user's");
    let windowed = RenderOptions {
        lamport: detsim_plot::LamportOptions {
            window_ns: Some((900_000_000, 1_200_000_000)),
            ..detsim_plot::LamportOptions::default()
        },
        ..RenderOptions::default()
    };
    let summary = render_run(&dir, &windowed).expect("renders the window");
    let mut left: Vec<PathBuf> = std::fs::read_dir(&plots).expect("plots/").map(|e| e.expect("entry").path()).collect();
    left.retain(|p| p.extension().is_some_and(|e| e != "txt"));
    left.sort();
    let mut written = summary.files.clone();
    written.sort();
    assert_eq!(left, written, "plots/ holds this render's charts only");
    assert!(!plots.join("lamport-fault-start.svg").exists() && !plots.join("latency.png").exists());
    assert!(plots.join("notes.txt").exists(), "files that are not charts are left alone");
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
    assert!(html.contains("<details open><summary>counterexample (the checker's details, JSON)</summary>"));
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

/// The curated CAP pair (scenarios/cap-cp-raft.toml, scenarios/cap-ap-dynamo.toml): the comparison
/// shows the lesson their descriptions tell: CP keeps linearizability and fails its availability
/// check, AP passes the check and is not linearizable; `cas`, which Dynamo refuses, is left out.
#[test]
fn the_curated_cap_pair_renders_its_lesson() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let mut dirs = Vec::new();
    for name in ["cap-cp-raft", "cap-ap-dynamo"] {
        let file = scenarios.join(format!("{name}.toml"));
        let loaded =
            detsim_scenario::load_file(&file, &detsim_protocols::registry()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = scratch(name);
        let seed = loaded.scenario.seed;
        run_seed(&loaded, seed, RunOptions { out_dir: Some(dir.clone()), ..RunOptions::default() }).expect("runs");
        dirs.push(dir);
    }
    let runs: Vec<_> = dirs.iter().map(|d| load_run(d).expect("loads")).collect();
    let chart = detsim_plot::CapComparisonChart::new(&runs);
    let (cp, ap) = (&chart.runs[0], &chart.runs[1]);
    assert!(cp.left_out.is_empty(), "Raft serves cas");
    assert_eq!(ap.left_out, ["cas"], "Dynamo refuses cas");
    assert_eq!(cp.consistency, [("linearizable".to_string(), detsim_plot::Validity::Valid)]);
    assert_eq!(ap.consistency, [("linearizable".to_string(), detsim_plot::Validity::Invalid)]);
    let (cp_check, ap_check) =
        (cp.availability_check.clone().expect("a check"), ap.availability_check.clone().expect("a check"));
    assert!(cp_check.availability < 0.9 && cp_check.valid == detsim_plot::Validity::Invalid, "{cp_check:?}");
    assert!(ap_check.availability >= 0.9 && ap_check.valid == detsim_plot::Validity::Valid, "{ap_check:?}");
    assert!(
        ap.availability_during_faults > cp.availability_during_faults,
        "AP stays more available during the partition"
    );
    assert_eq!(cp.stale.stale, 0, "Raft never reads stale");
    // Over time, as the clients saw it: c1, cut off with the minority, gets nothing from Raft
    // during the partition (a third of the clients), while Dynamo serves everyone.
    let mean_during = |points: &[(u64, (f64, f64))]| {
        let inside: Vec<f64> = points.iter().filter(|(_, (t, _))| *t > 2.5 && *t < 4.5).map(|(_, (_, a))| *a).collect();
        inside.iter().sum::<f64>() / inside.len().max(1) as f64
    };
    let (cp_during, ap_during) = (mean_during(&chart.availability[0]), mean_during(&chart.availability[1]));
    assert!(cp_during < 0.8, "CP during the partition: {cp_during}");
    assert!(ap_during > 0.95, "AP during the partition: {ap_during}");
    let out = scratch("cap").join("cap.svg");
    detsim_plot::render_cap_comparison(&dirs, &out, false).expect("renders");
    let svg = std::fs::read_to_string(&out).expect("svg");
    roxmltree::Document::parse(&svg).expect("well-formed");
    for wanted in [
        "cap-cp-raft (raft)",
        "cap-ap-dynamo (dynamo)",
        "cas left out of",
        "linearizable: valid",
        "linearizable: invalid",
    ] {
        assert!(svg.contains(wanted), "the CAP chart lacks {wanted:?}");
    }
}
