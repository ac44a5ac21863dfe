//! The labs' graders, proven on both sides: each grader passes its lab's reference implementation
//! from detsim-protocols and fails every one of the lab's mutants; each untouched skeleton compiles
//! (its `src/lib.rs` is compiled into this test) and fails with the message that says where to
//! start; a failure's score card carries the seed, the shrunk schedule, the replay command and a
//! report folder with report.html, and replaying it reproduces the failure.
//!
//! Seeds per grading: `DETSIM_LAB_CI_SEEDS` (default 8); a mutant that needs more gets its own `seeds`.

#[path = "../lab-skeletons/clocks/src/lib.rs"]
mod lab_clocks;
#[path = "../lab-skeletons/failure-detection/src/lib.rs"]
mod lab_failure_detection;
#[path = "../lab-skeletons/gossip/src/lib.rs"]
mod lab_gossip;
#[path = "../lab-skeletons/paxos/src/lib.rs"]
mod lab_paxos;
#[path = "../lab-skeletons/primary-backup/src/lib.rs"]
mod lab_primary_backup;
#[path = "../lab-skeletons/quorum/src/lib.rs"]
mod lab_quorum;
#[path = "../lab-skeletons/raft/src/lib.rs"]
mod lab_raft;
#[path = "../lab-skeletons/two-phase-commit/src/lib.rs"]
mod lab_two_phase_commit;

use detsim::labs::{self, GradeOptions, Lab, Replay, ScoreCard, Variant};
use std::path::PathBuf;

fn ci_seeds() -> u64 {
    std::env::var("DETSIM_LAB_CI_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8)
}

fn options(first_seed: u64) -> GradeOptions {
    GradeOptions {
        seeds: ci_seeds(),
        first_seed,
        max_shrink_runs: 40,
        max_failures_shown: 1,
        ..GradeOptions::default()
    }
}

fn lab(name: &str) -> Lab {
    labs::find(name).unwrap_or_else(|| panic!("lab {name} exists"))
}

fn reference_passes(name: &str) {
    let lab = lab(name);
    let card = lab.grade(&Variant::Reference, &options(1)).expect("the reference grades");
    assert!(card.passed(), "the reference must pass lab {name}:\n{card}");
    assert_eq!(card.runs(), ci_seeds() * card.scenarios.len() as u64, "every scenario ran every seed");
    println!("{card}");
}

fn mutants_fail(name: &str) {
    let lab = lab(name);
    assert!(lab.mutants.len() >= 2, "lab {name} has at least two mutants");
    for mutant in lab.mutants {
        let seeds = ci_seeds().max(mutant.seeds);
        let card = lab.grade(&Variant::Mutant(*mutant), &GradeOptions { seeds, ..options(1) }).expect("mutants grade");
        assert!(!card.passed(), "lab {name} must fail mutant {} ({}):\n{card}", mutant.name, mutant.bug);
        let failure = card.failures().next().expect("a failing card describes a failure");
        assert!(failure.seed >= 1 && failure.seed <= seeds);
        assert!(failure.replay.contains("--replay '") && failure.replay.contains(&format!("--mutant {}", mutant.name)));
        assert!(failure.shrunk.len() <= failure.original_faults, "shrinking never adds windows");
        // Build and run failures are the harness's, not a verdict on the protocol.
        for check in ["build", "faults", "history"] {
            assert_eq!(card.scenarios.iter().map(|s| s.failed_runs_of(check)).sum::<u64>(), 0, "{card}");
        }
        println!(
            "lab {name}: mutant {} fails `{}` first at seed {} ({} of {} runs failed)",
            mutant.name,
            failure.check,
            failure.seed,
            card.runs() - card.passed_runs(),
            card.runs()
        );
    }
}

macro_rules! lab_tests {
    ($($lab:ident => $name:literal),* $(,)?) => {
        mod reference_passes {
            $(#[test] fn $lab() { super::reference_passes($name) })*
        }
        mod mutants_fail {
            $(#[test] fn $lab() { super::mutants_fail($name) })*
        }
    };
}

lab_tests! {
    clocks => "clocks",
    failure_detection => "failure-detection",
    gossip => "gossip",
    primary_backup => "primary-backup",
    quorum => "quorum",
    raft => "raft",
    paxos => "paxos",
    two_phase_commit => "two-phase-commit",
}

#[test]
fn every_lab_has_a_guide_a_skeleton_and_a_unique_name() {
    let all = labs::all();
    assert!(all.len() >= 5, "labs: {}", all.len());
    let mut names: Vec<&str> = all.iter().map(|l| l.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "lab names are unique");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for lab in &all {
        let guide = std::fs::read_to_string(root.join(lab.guide)).unwrap_or_else(|e| panic!("{}: {e}", lab.guide));
        for section in ["## Background", "## The task", "## What correct means", "## Hints", "## Questions"] {
            assert!(guide.contains(section), "{} lacks a section {section:?}", lab.guide);
        }
        let files: Vec<&str> = lab.skeleton.iter().map(|(path, _)| *path).collect();
        assert_eq!(files, ["src/lib.rs", "tests/grade.rs"], "lab {}", lab.name);
        let grade = lab.skeleton[1].1;
        assert!(grade.contains(&format!("lab_{}", lab.name.replace('-', "_"))), "{} grades its own crate", lab.name);
        assert!(grade.contains("assert_passed()"), "{} asserts the grade", lab.name);
        assert!(labs::find(&lab.number.to_string()).is_some_and(|l| l.name == lab.name), "labs are found by number");
    }
}

/// Grades an untouched service-lab skeleton on two seeds.
fn grade_service_skeleton(
    name: &str,
    build: fn(&detsim::labs::prelude::ClusterSpec) -> Result<Box<dyn detsim::AnySimulation>, String>,
) -> ScoreCard {
    let lab = lab(name);
    let service = labs::service::service_lab(name).expect("a service lab");
    let options = GradeOptions { seeds: 2, max_shrink_runs: 5, ..GradeOptions::default() };
    labs::service::grade(&lab, &service, &build, &serde_json::Value::Null, "the untouched skeleton", &options)
}

#[test]
fn untouched_service_skeletons_fail_with_a_hint_to_start_with_the_client_path() {
    for (name, build) in [
        ("raft", lab_raft::build as fn(&_) -> _),
        ("paxos", lab_paxos::build),
        ("quorum", lab_quorum::build),
        ("primary-backup", lab_primary_backup::build),
        ("two-phase-commit", lab_two_phase_commit::build),
    ] {
        let card = grade_service_skeleton(name, build);
        assert!(!card.passed());
        for scenario in &card.scenarios {
            assert_eq!(scenario.failed_runs_of("progress"), scenario.runs, "lab {name}:\n{card}");
        }
        // Silence is not caused by faults: every failure shrinks to the empty schedule.
        for failure in card.failures() {
            assert!(failure.shrunk.is_empty(), "lab {name}: {:?} shrinks to no faults:\n{card}", failure.shrunk);
        }
        let text = card.to_string();
        for needle in [
            "no operation completed",
            "ClientReply::to(&request, result)",
            "hint: no run completed a single operation",
            "replay: DETSIM_LAB_REPLAY='",
            "(no faults needed)",
        ] {
            assert!(text.contains(needle), "lab {name}'s card lacks {needle:?}:\n{text}");
        }
    }
}

#[test]
fn untouched_gossip_skeleton_fails_because_nothing_spreads() {
    let lab = lab("gossip");
    let options = GradeOptions { seeds: 2, max_shrink_runs: 5, ..GradeOptions::default() };
    let card =
        labs::gossip::grade(&lab, &lab_gossip::build, &serde_json::Value::Null, "the untouched skeleton", &options);
    assert!(!card.passed());
    assert_eq!(card.scenario("steady").expect("steady").failed_runs_of("delivered everywhere"), 2, "{card}");
    let text = card.to_string();
    for needle in ["never reached", "hint: no broadcast ever reached a peer other than its origin"] {
        assert!(text.contains(needle), "card lacks {needle:?}:\n{text}");
    }
}

#[test]
fn untouched_clocks_skeleton_fails_the_clock_condition() {
    let lab = lab("clocks");
    let options = GradeOptions { seeds: 2, max_shrink_runs: 5, ..GradeOptions::default() };
    let card = labs::clocks::grade::<lab_clocks::Lamport, lab_clocks::Vector>(&lab, "the untouched skeleton", &options);
    assert!(!card.passed());
    let text = card.to_string();
    for needle in ["failed `lamport clock condition` on 2 of 2 runs", "is not smaller than", "hint: Lamport (1978)"] {
        assert!(text.contains(needle), "card lacks {needle:?}:\n{text}");
    }
}

#[test]
fn untouched_failure_detection_skeleton_fails_because_it_never_suspects() {
    let lab = lab("failure-detection");
    let options = GradeOptions { seeds: 2, max_shrink_runs: 5, ..GradeOptions::default() };
    let card = labs::failure::grade(
        &lab,
        &lab_failure_detection::build,
        &serde_json::Value::Null,
        "the untouched skeleton",
        &options,
    );
    assert!(!card.passed());
    let text = card.to_string();
    for needle in
        ["not a single suspicion recorded", "call record_suspect(ctx, peer)", "hint: send every peer a heartbeat"]
    {
        assert!(text.contains(needle), "card lacks {needle:?}:\n{text}");
    }
}

#[test]
fn a_failure_writes_a_report_and_its_replay_reproduces_it() {
    let lab = lab("raft");
    let mutant = lab.mutant("vote-without-log-check").expect("mutant");
    let reports = std::env::temp_dir().join(format!("detsim-lab-test-{}", std::process::id()));
    let options = GradeOptions { report_dir: Some(reports.clone()), ..options(1) };
    let card = lab.grade(&Variant::Mutant(mutant), &options).expect("grades");
    let failure = card.failures().next().expect("the mutant fails").clone();
    let report = failure.report.clone().expect("a report was asked for").expect("the report was written");
    assert!(report.ends_with("report.html") && report.exists(), "{report:?}");
    let folder = report.parent().expect("report folder");
    for file in ["run.json", "history.jsonl", "trace.jsonl"] {
        assert!(folder.join(file).metadata().is_ok_and(|m| m.len() > 0), "{file} in {folder:?}");
    }
    // The report shades the faults where the shrunk schedule put them, a crash on its node's lane.
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("run.json")).expect("run.json")).expect("JSON");
    let windows = info["fault_windows"].as_array().expect("fault windows");
    assert!(!failure.shrunk.is_empty(), "this mutant needs faults to fail");
    for window in &failure.shrunk {
        let kind = match window.fault {
            detsim::testing::WindowFault::Crash { node } => format!("crash n{}", node + 1),
            detsim::testing::WindowFault::Pause { node } => format!("pause n{}", node + 1),
            _ => window.fault.kind().to_string(),
        };
        if kind == "clock-jump" {
            continue; // an instant, not a window
        }
        let start_ns = u64::from(window.start_ms) * 1_000_000;
        assert!(
            windows.iter().any(|w| w["kind"] == kind.as_str() && w["start_ns"] == start_ns),
            "{window:?} as {kind:?} at {start_ns} ns in {windows:?}"
        );
    }
    let text = card.to_string();
    assert!(text.contains(&format!("report: {}", report.display())), "{text}");
    assert!(text.contains(&format!("seed {} failed", failure.seed)), "{text}");
    // The replay line's JSON runs exactly that case again, and it fails the same check.
    let json = failure.replay.split("--replay '").nth(1).and_then(|rest| rest.strip_suffix('\'')).expect("replay JSON");
    let replay = Replay::from_json(json).expect("the replay parses");
    assert_eq!(replay.faults.as_deref(), Some(failure.shrunk.as_slice()));
    let again =
        lab.grade(&Variant::Mutant(mutant), &GradeOptions { replay: Some(replay), ..options.clone() }).expect("grades");
    assert_eq!(again.runs(), 1, "a replay runs one case");
    let replayed = again.failures().next().expect("the replay fails again");
    assert_eq!(
        (replayed.seed, &replayed.check, &replayed.explanation),
        (failure.seed, &failure.check, &failure.explanation)
    );
    std::fs::remove_dir_all(&reports).ok();
}

#[test]
fn grading_is_deterministic() {
    let lab = lab("gossip");
    let options = GradeOptions { seeds: 3, ..GradeOptions::default() };
    let first = lab.grade(&Variant::Mutant(lab.mutant("push-only").expect("mutant")), &options).expect("grades");
    let second = lab.grade(&Variant::Mutant(lab.mutant("push-only").expect("mutant")), &options).expect("grades");
    assert_eq!(first, second);
}

#[test]
fn bad_variant_parameters_are_an_error_not_a_grade() {
    let raft = lab("raft");
    let error =
        raft.grade(&Variant::Params(serde_json::json!({"no_such_knob": 1})), &options(1)).expect_err("unknown field");
    assert!(error.contains("no_such_knob"), "{error}");
    let clocks = lab("clocks");
    let error = clocks
        .grade(&Variant::Params(serde_json::json!({"lamport": "sloppy"})), &options(1))
        .expect_err("unknown clock");
    assert!(error.contains("sloppy"), "{error}");
}
