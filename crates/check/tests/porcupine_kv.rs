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
        // Not partitioned, a key is named only when the verdict was settled key by key.
        let settled_by_key = verdict.reason.as_deref().is_some_and(|r| r.contains("each key was searched on its own"));
        assert_eq!(counterexample.key.is_some(), partition || settled_by_key);
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

#[test]
fn c50_ok_not_partitioned() {
    check("c50-ok.txt", false, Validity::Valid, 1712);
}

#[test]
fn c50_bad_not_partitioned() {
    check("c50-bad.txt", false, Validity::Invalid, 2024);
}

/// c50's whole-history search runs past its step allowance, so the verdict is settled key by key and
/// then stated of the whole history; the note says so. c10's is found by the whole search.
#[test]
fn not_partitioned_verdicts_say_how_they_were_reached() {
    for (file, settled_by_key) in
        [("c10-ok.txt", false), ("c10-bad.txt", false), ("c50-ok.txt", true), ("c50-bad.txt", true)]
    {
        let text = std::fs::read_to_string(data_dir().join(file)).expect("the porcupine-kv data set is in shared/");
        let history = parse_history(&text, None).expect("the data set parses");
        let options = LinearizabilityOptions { partition: false, ..LinearizabilityOptions::default() };
        let verdict = check_linearizable(&history, Model::KeyValue, &options).expect("a well-formed history");
        let note = verdict.reason.as_deref().unwrap_or("");
        assert_eq!(note.contains("each key was searched on its own"), settled_by_key, "{file}: {verdict}");
        if verdict.valid == Validity::Valid && settled_by_key {
            assert!(note.contains("replayed on the whole model"), "{file}: {note}");
        }
        if let Some(counterexample) = &verdict.counterexample {
            assert_eq!(
                counterexample.key.is_some(),
                settled_by_key,
                "{file}: the key is named when one key alone fails"
            );
        }
    }
}

/// However the whole search would have gone, settling key by key at once gives the same verdicts.
#[test]
fn settled_key_by_key_at_once_gives_the_same_verdicts() {
    for (file, expected) in [
        ("c01-ok.txt", Validity::Valid),
        ("c01-bad.txt", Validity::Invalid),
        ("c10-ok.txt", Validity::Valid),
        ("c10-bad.txt", Validity::Invalid),
    ] {
        let text = std::fs::read_to_string(data_dir().join(file)).expect("the porcupine-kv data set is in shared/");
        let history = parse_history(&text, None).expect("the data set parses");
        let options =
            LinearizabilityOptions { partition: false, whole_search_steps: 0, ..LinearizabilityOptions::default() };
        let verdict = check_linearizable(&history, Model::KeyValue, &options).expect("a well-formed history");
        assert_eq!(verdict.valid, expected, "{file}: {verdict}");
    }
}
