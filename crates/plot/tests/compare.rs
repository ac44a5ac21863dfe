//! The charts across runs: the CAP comparison from run folders and from a sweep over two scenarios,
//! the outcome per seed and a metric's distribution across seeds, and their input errors.

use std::path::{Path, PathBuf};

use detsim_plot::demo::{write_demo_run, DemoConfig, Mode};
use detsim_plot::{load_run, read_sweep, render_cap_comparison, render_sweep, CapFigures, PlotError, Validity};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plot-compare").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old folder");
    }
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

fn demo(dir: &Path, mode: Mode, seed: u64, duration_ms: u64) -> PathBuf {
    let run_dir = dir.join(format!("{}-{seed}", mode.as_str()));
    write_demo_run(&run_dir, &DemoConfig { mode, seed, duration_ms, ..DemoConfig::default() }).expect("the demo runs");
    run_dir
}

fn svg_texts(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("the SVG");
    let document = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: well-formed: {e}", path.display()));
    document
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

fn has(texts: &[String], wanted: &str) -> bool {
    texts.iter().any(|t| t.contains(wanted))
}

#[test]
fn cap_comparison_of_run_folders_sets_cp_and_ap_side_by_side() {
    let dir = scratch("folders");
    let cp = demo(&dir, Mode::Cp, 7, 4_000);
    let ap = demo(&dir, Mode::Ap, 7, 4_000);
    let (cp_run, ap_run) = (load_run(&cp).expect("loads"), load_run(&ap).expect("loads"));
    let (cp_figures, ap_figures) = (CapFigures::of(&cp_run), CapFigures::of(&ap_run));
    // The lesson the chart shows: CP loses availability during the faults, AP keeps it but reads stale.
    let (cp_during, ap_during) =
        (cp_figures.availability_during_faults.expect("ops"), ap_figures.availability_during_faults.expect("ops"));
    assert!(cp_during < 0.95 && ap_during > cp_during, "CP {cp_during} vs AP {ap_during} during faults");
    assert_eq!(cp_figures.stale.stale, 0, "CP never reads stale");
    assert!(ap_figures.stale.stale > 0, "AP reads stale values during the partition");
    let out = dir.join("cap.svg");
    let files = render_cap_comparison(&[cp.clone(), ap.clone()], &out, true).expect("renders");
    assert_eq!(files, [out.clone(), out.with_extension("png")]);
    let texts = svg_texts(&out);
    for wanted in [
        "demo-register-cp",
        "demo-register-ap",
        "partition",
        "crash s2",
        &format!("{:.1}%", cp_figures.availability.expect("ops") * 100.0),
        &format!("{:.1}%", ap_during * 100.0),
        &format!("{} of {} reads stale", ap_figures.stale.stale, ap_figures.stale.reads_ok),
        "0 of ",
        "stale-reads: valid",
        "stale-reads: invalid",
    ] {
        assert!(has(&texts, wanted), "the CAP chart lacks {wanted:?}: {texts:?}");
    }
    // Deterministic: the same inputs, the same bytes.
    let again = dir.join("cap-again.svg");
    render_cap_comparison(&[cp, ap], &again, false).expect("renders");
    assert!(std::fs::read(&out).expect("read") == std::fs::read(&again).expect("read"));
}

/// A sweep's JSON Lines over both configurations, as `detsim sweep` writes them (run.json's summary
/// fields per seed).
fn write_sweep(dir: &Path, seeds: u64) -> PathBuf {
    let mut lines = String::new();
    for seed in 0..seeds {
        for mode in [Mode::Cp, Mode::Ap] {
            let run_dir = demo(dir, mode, seed, 1_500);
            let run: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).expect("run.json"))
                    .expect("JSON");
            lines.push_str(&serde_json::to_string(&run).expect("JSON"));
            lines.push('\n');
        }
    }
    lines.push_str("{\"summary\": true, \"seeds\": 0}\n");
    let path = dir.join("sweep.jsonl");
    std::fs::write(&path, lines).expect("write");
    path
}

#[test]
fn sweep_charts_show_every_seed_and_the_metric_distribution() {
    let dir = scratch("sweep");
    let sweep = write_sweep(&dir, 12);
    let rows = read_sweep(&sweep).expect("reads");
    assert_eq!(rows.len(), 24, "the summary line without a seed is not a seed");
    let invalid = rows.iter().filter(|r| r.valid == Validity::Invalid).count();
    assert!(invalid > 0 && rows.iter().all(|r| r.valid != Validity::Invalid || r.violations == ["stale-reads"]));
    assert!(rows[0].metrics.contains_key("latency_ns.p99"), "nested numbers become metrics");

    let out = dir.join("charts");
    let files = render_sweep(&sweep, &["availability".into(), "latency_ns.p99".into()], &out, false).expect("renders");
    let names: Vec<String> =
        files.iter().map(|f| f.file_name().expect("name").to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["sweep-outcomes.svg", "sweep-availability.svg", "sweep-latency_ns-p99.svg"]);
    let outcomes = std::fs::read_to_string(&files[0]).expect("read");
    let document = roxmltree::Document::parse(&outcomes).expect("well-formed");
    let cells = |fill: &str| {
        document.descendants().filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(fill)).count()
    };
    // One cell per seed plus the legend's square.
    assert_eq!(cells("#D62728"), invalid + 1);
    assert_eq!(cells("#2CA02C"), 24 - invalid + 1);
    let texts = svg_texts(&files[0]);
    assert!(has(&texts, "demo-register-cp: 12 seeds, 0 invalid"), "{texts:?}");
    assert!(has(&texts, &format!("demo-register-ap: 12 seeds, {invalid} invalid")), "{texts:?}");
    let p99 = svg_texts(&files[2]);
    assert!(has(&p99, "latency_ns.p99 across 24 seeds") && has(&p99, "latency_ns.p99 (ms)"), "{p99:?}");
    assert!(has(&p99, &format!("invalid ({invalid})")));

    let error = render_sweep(&sweep, &["nope".into()], &out, false).expect_err("an unknown metric");
    assert!(error.to_string().contains("no seed has metric \"nope\"; metrics: availability,"), "{error}");
}

#[test]
fn cap_comparison_from_a_sweep_groups_seeds_by_scenario() {
    let dir = scratch("cap-sweep");
    let sweep = write_sweep(&dir, 8);
    let rows = read_sweep(&sweep).expect("reads");
    let ap_violations = rows.iter().filter(|r| r.group() == "demo-register-ap" && !r.violations.is_empty()).count();
    let out = dir.join("cap.svg");
    render_cap_comparison(std::slice::from_ref(&sweep), &out, true).expect("renders");
    assert!(out.with_extension("png").exists());
    let texts = svg_texts(&out);
    assert!(has(&texts, "CAP comparison over 16 seeds"), "{texts:?}");
    assert!(has(&texts, "demo-register-cp (8 seeds)") && has(&texts, "demo-register-ap (8 seeds)"));
    assert!(has(&texts, "0 of 8"), "CP: no consistency violation");
    assert!(has(&texts, &format!("{ap_violations} of 8")), "AP: {ap_violations} seeds read stale");
    assert!(has(&texts, "consistency") && has(&texts, "availability"));
    let error = render_cap_comparison(&[sweep, dir.join("cp-0")], &out, false).expect_err("a mix");
    assert!(matches!(error, PlotError::Input(_)) && error.to_string().contains("not a mix"), "{error}");
}

/// A sweep over a CP and an AP scenario whose availability checks count something else than the
/// overall ok fraction (the AP store refuses cas, which the check leaves out).
fn write_checked_sweep(dir: &Path, ap_has_check: bool) -> PathBuf {
    let mut lines = String::new();
    for seed in 1..=4u64 {
        let cp_check = 0.30 + 0.01 * seed as f64;
        lines.push_str(&format!(
            "{{\"scenario\":\"cp\",\"seed\":{seed},\"valid\":false,\"violations\":[\"availability\"],\"availability\":0.85,\"availability_check\":{cp_check}}}\n"
        ));
        let check = if ap_has_check { ",\"availability_check\":1.0" } else { "" };
        lines.push_str(&format!(
            "{{\"scenario\":\"ap\",\"seed\":{seed},\"valid\":true,\"violations\":[],\"availability\":0.75{check}}}\n"
        ));
    }
    let path = dir.join(format!("checked-{ap_has_check}.jsonl"));
    std::fs::write(&path, lines).expect("write the sweep");
    path
}

#[test]
fn cap_comparison_from_a_sweep_plots_what_the_availability_checks_measured() {
    let dir = scratch("cap-sweep-checked");
    let out = dir.join("cap.svg");
    render_cap_comparison(&[write_checked_sweep(&dir, true)], &out, false).expect("renders");
    let texts = svg_texts(&out);
    assert!(has(&texts, "by each scenario's availability check"), "{texts:?}");
    // CP's check: mean of 0.31..0.34; AP's check: 100%, not the 75% of all its operations.
    assert!(has(&texts, "mean 32.5%") && has(&texts, "mean 100.0%"), "{texts:?}");
    assert!(!has(&texts, "mean 75.0%") && !has(&texts, "mean 85.0%"), "{texts:?}");

    // When one scenario has no availability check, both fall back to the overall fraction.
    render_cap_comparison(&[write_checked_sweep(&dir, false)], &out, false).expect("renders");
    let texts = svg_texts(&out);
    assert!(has(&texts, "Availability of all operations"), "{texts:?}");
    assert!(has(&texts, "mean 85.0%") && has(&texts, "mean 75.0%"), "{texts:?}");
}

#[test]
fn malformed_sweep_lines_are_placed() {
    let dir = scratch("bad-sweep");
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, "{\"seed\": 1, \"valid\": true}\n\n{\"seed\": 2, \"valid\": tru}\n").expect("write");
    let message = read_sweep(&path).expect_err("line 3").to_string();
    assert!(message.contains("bad.jsonl:3:"), "{message}");
    // A last line cut short (an interrupted sweep) is not a seed; the same line complete is an error.
    std::fs::write(&path, "{\"seed\": 1, \"valid\": true}\n{\"seed\": 2, \"va").expect("write");
    assert_eq!(read_sweep(&path).expect("the cut line is left out").len(), 1);
    std::fs::write(&path, "{\"seed\": 1, \"valid\": true}\n{\"seed\": 2, \"va\n").expect("write");
    assert!(read_sweep(&path).expect_err("a complete bad line").to_string().contains("bad.jsonl:2:"));
    std::fs::write(&path, "{\"seed\": -4}\n").expect("write");
    let message = read_sweep(&path).expect_err("a negative seed").to_string();
    assert!(message.contains("bad.jsonl:1:1: \"seed\" is not a non-negative integer"), "{message}");
    std::fs::write(&path, "[1, 2]\n").expect("write");
    assert!(read_sweep(&path).expect_err("not an object").to_string().contains("expected a JSON object"));
    std::fs::write(&path, "").expect("write");
    let error = render_sweep(&path, &[], &dir, false).expect_err("no rows");
    assert!(error.to_string().contains("no sweep rows"), "{error}");
}
