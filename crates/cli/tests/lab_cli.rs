//! `detsim lab` from the command line: list, new, grade (reference, mutant, replay, JSON), and its
//! exit codes: 0 the grade passed, 1 it failed, 2 bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn detsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_detsim")).args(args).output().expect("the detsim binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lab-cli-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

#[test]
fn list_names_every_lab_with_its_reference_and_mutants() {
    let output = detsim(&["lab", "list"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let listing = text(&output);
    for lab in detsim::labs::all() {
        assert!(listing.contains(lab.name) && listing.contains(lab.guide), "{} in:\n{listing}", lab.name);
        for mutant in lab.mutants {
            assert!(listing.contains(mutant.name), "{} in:\n{listing}", mutant.name);
        }
    }
}

#[test]
fn grading_the_reference_passes_with_exit_0() {
    let output = detsim(&["lab", "grade", "clocks", "--seeds", "2", "--no-reports"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("score: 4/4 runs passed: PASS"), "{}", text(&output));
}

#[test]
fn grading_a_mutant_fails_with_exit_1_and_its_replay_fails_again() {
    let reports = scratch("reports");
    let reports_arg = reports.to_str().expect("utf-8 path");
    let output =
        detsim(&["lab", "grade", "clocks", "--mutant", "lamport-no-max", "--seeds", "2", "--reports", reports_arg]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let card = text(&output);
    let replay_line = card.lines().find(|l| l.trim_start().starts_with("replay: ")).expect("a replay line");
    let command = replay_line.trim_start().trim_start_matches("replay: ");
    assert!(command.starts_with("detsim lab grade clocks --mutant lamport-no-max --replay '"), "{command}");
    let report_line = card.lines().find(|l| l.trim_start().starts_with("report: ")).expect("a report line");
    let report = PathBuf::from(report_line.trim_start().trim_start_matches("report: "));
    assert!(report.starts_with(&reports) && report.exists(), "{report:?}");
    let json = command.split("--replay '").nth(1).and_then(|r| r.strip_suffix('\'')).expect("replay JSON");
    let again = detsim(&["lab", "grade", "clocks", "--mutant", "lamport-no-max", "--replay", json, "--no-reports"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("score: 0/1 runs passed: FAIL"), "{}", text(&again));
    std::fs::remove_dir_all(&reports).ok();
}

#[test]
fn json_score_cards_parse() {
    let output = detsim(&["lab", "grade", "gossip", "--mutant", "flooding", "--seeds", "1", "--no-reports", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let card: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(card["lab"], "gossip");
    assert_eq!(card["passed"], false);
    let steady = &card["scenarios"][0];
    assert_eq!(steady["name"], "steady");
    assert_eq!(steady["failed_checks"]["messages per broadcast"], 1);
    assert!(steady["failures"][0]["replay"].as_str().is_some_and(|r| r.contains("--mutant flooding")));
}

#[test]
fn bad_input_exits_2_with_a_message() {
    for (args, needle) in [
        (&["lab", "grade", "no-such-lab"][..], "unknown lab \"no-such-lab\""),
        (&["lab", "grade", "raft", "--mutant", "nope"][..], "has no mutant \"nope\" (mutants: stale-reads"),
        (&["lab", "grade", "raft", "--params", "{not json"][..], "--params is not JSON"),
        (&["lab", "grade", "raft", "--params", "{\"no_such_knob\":1}"][..], "no_such_knob"),
        (&["lab", "grade", "raft", "--replay", "{}"][..], "--replay: not a lab replay"),
        (&["lab", "grade", "raft", "--seeds", "0"][..], "--seeds must be at least 1"),
        (&["lab", "new", "no-such-lab"][..], "unknown lab"),
    ] {
        let output = detsim(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(text(&output).contains(needle), "{args:?}: {}", text(&output));
    }
}

#[test]
fn new_writes_a_crate_and_refuses_a_non_empty_directory() {
    let dir = scratch("new");
    let dir_arg = dir.join("lab-gossip");
    let dir_arg = dir_arg.to_str().expect("utf-8 path");
    let output = detsim(&["lab", "new", "gossip", dir_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let crate_dir = dir.join("lab-gossip");
    for file in ["Cargo.toml", "Cargo.lock", "README.md", "src/lib.rs", "tests/grade.rs"] {
        assert!(crate_dir.join(file).is_file(), "{file}");
    }
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("manifest");
    assert!(manifest.contains("[workspace]") && manifest.contains("name = \"lab-gossip\""), "{manifest}");
    let cli_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).canonicalize().expect("crate dir");
    assert!(manifest.contains(&format!("detsim = {{ path = \"{}\" }}", cli_dir.display())), "{manifest}");
    let skeleton = std::fs::read_to_string(crate_dir.join("src/lib.rs")).expect("lib.rs");
    assert_eq!(skeleton, include_str!("../lab-skeletons/gossip/src/lib.rs"));
    let again = detsim(&["lab", "new", "gossip", dir_arg]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("is not empty"), "{}", text(&again));
    std::fs::remove_dir_all(&dir).ok();
}
