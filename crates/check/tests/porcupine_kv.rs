//! The six Porcupine key-value histories give their expected verdicts, partitioned and not.

use detsim_check::{check_linearizable, parse_history, LinearizabilityOptions, Model, Validity};
use std::time::Instant;

/// The data set lives in `shared/data/` beside the checkout (`../../../shared` from this crate in the
/// main checkout, one level further up from a worktree under `wt/`).
fn data_dir() -> std::path::PathBuf {
    let candidates = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/porcupine-kv"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../../shared/data/porcupine-kv"),
    ];
    let found = candidates.iter().map(std::path::PathBuf::from).find(|path| path.join("c01-ok.txt").is_file());
    found.unwrap_or_else(|| panic!("the porcupine-kv data set is missing; looked in {candidates:?}"))
}

fn check(file: &str, partition: bool, expected: Validity, ops: usize) {
    let text = std::fs::read_to_string(data_dir().join(file)).expect("the porcupine-kv data set is in shared/");
    let history = parse_history(&text, None).expect("the data set parses");
    let options = LinearizabilityOptions { partition, ..LinearizabilityOptions::default() };
    let start = Instant::now();
    let verdict = check_linearizable(&history, Model::KeyValue, &options).expect("a well-formed history");
    eprintln!("{file} partition={partition}: {} in {:?}", verdict.valid, start.elapsed());
    assert_eq!(verdict.valid, expected, "{file} partition={partition}:\n{verdict}");
    assert_eq!(verdict.ops, ops);
    if expected == Validity::Invalid {
        let counterexample = verdict.counterexample.as_ref().expect("an invalid verdict has a counterexample");
        assert!(counterexample.involved.iter().any(|op| op.id == counterexample.unplaceable.id));
        assert!(counterexample.key.is_some() == partition);
    }
}

#[test]
fn c01_ok_partitioned() {
    check("c01-ok.txt", true, Validity::Valid, 58);
}

#[test]
fn c01_ok_not_partitioned() {
    check("c01-ok.txt", false, Validity::Valid, 58);
}

#[test]
fn c01_bad_partitioned() {
    check("c01-bad.txt", true, Validity::Invalid, 38);
}

#[test]
fn c01_bad_not_partitioned() {
    check("c01-bad.txt", false, Validity::Invalid, 38);
}

#[test]
fn c10_ok_partitioned() {
    check("c10-ok.txt", true, Validity::Valid, 337);
}

#[test]
fn c10_ok_not_partitioned() {
    check("c10-ok.txt", false, Validity::Valid, 337);
}

#[test]
fn c10_bad_partitioned() {
    check("c10-bad.txt", true, Validity::Invalid, 405);
}

#[test]
fn c10_bad_not_partitioned() {
    check("c10-bad.txt", false, Validity::Invalid, 405);
}

#[test]
fn c50_ok_partitioned() {
    check("c50-ok.txt", true, Validity::Valid, 1712);
}

#[test]
fn c50_bad_partitioned() {
    check("c50-bad.txt", true, Validity::Invalid, 2024);
}

/// Without partitioning, c50 (50 clients, 10 keys) is beyond the search's budget: the product of the
/// keys' states blows up. The verdict must then be "unknown", never a wrong one.
fn check_budgeted(file: &str, wrong: Validity) {
    let text = std::fs::read_to_string(data_dir().join(file)).expect("the porcupine-kv data set is in shared/");
    let history = parse_history(&text, None).expect("the data set parses");
    let options = LinearizabilityOptions {
        partition: false,
        time_budget: Some(std::time::Duration::from_secs(2)),
        max_memory_entries: 2_000_000,
        ..LinearizabilityOptions::default()
    };
    let verdict = check_linearizable(&history, Model::KeyValue, &options).expect("a well-formed history");
    assert_ne!(verdict.valid, wrong, "{file}:\n{verdict}");
    if verdict.valid == Validity::Unknown {
        assert!(verdict.reason.as_deref().is_some_and(|r| r.contains("budget")), "{verdict}");
    }
}

#[test]
fn c50_ok_not_partitioned_is_valid_or_unknown() {
    check_budgeted("c50-ok.txt", Validity::Invalid);
}

#[test]
fn c50_bad_not_partitioned_is_invalid_or_unknown() {
    check_budgeted("c50-bad.txt", Validity::Valid);
}
