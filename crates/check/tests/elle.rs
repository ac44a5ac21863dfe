//! Transactional anomalies on hand-written list-append and rw-register histories: every anomaly
//! named by the Elle checker is detected, with its cycle spelled out, and valid histories are not
//! flagged.

mod common;

use common::{names, ops};
use detsim_check::{check_transactions, TxnModel, TxnOptions, Validity};

/// Checks `text` at `consistency` and expects exactly these anomaly names (none: valid).
fn check(text: &str, consistency: &str, expected: &[&str]) {
    let options = TxnOptions::for_consistency(consistency).expect("a known consistency model");
    let verdict = check_transactions(&ops(text), &options).expect("a well-formed transaction history");
    assert_eq!(names(&verdict), expected, "{verdict}");
    let valid = if expected.is_empty() { Validity::Valid } else { Validity::Invalid };
    assert_eq!(verdict.valid, valid, "{verdict}");
    assert_eq!(verdict.checker, consistency);
    for anomaly in &verdict.anomalies {
        assert!(!anomaly.ops.is_empty(), "{verdict}");
        if anomaly.name.starts_with('G') && anomaly.name != "G1a" && anomaly.name != "G1b" {
            assert!(anomaly.explanation.starts_with("cycle #"), "{verdict}");
            assert_eq!(anomaly.steps.len(), anomaly.ops.len(), "one step per edge: {verdict}");
        }
    }
}

// ---- list-append ----------------------------------------------------------------------------------------

#[test]
fn serial_list_append_history_is_valid() {
    let history = "0 invoke txn [[:append :x 1]]\n0 ok txn [[:append :x 1]]\n\
                   1 invoke txn [[:r :x nil] [:append :x 2]]\n1 ok txn [[:r :x [1]] [:append :x 2]]\n\
                   0 invoke txn [[:r :x nil] [:r :y nil]]\n0 ok txn [[:r :x [1 2]] [:r :y nil]]";
    check(history, "serializable", &[]);
    check(history, "strict-serializable", &[]);
}

#[test]
fn write_cycle_is_g0() {
    let history = "0 invoke txn [[:append :x 1] [:append :y 1]]\n1 invoke txn [[:append :x 2] [:append :y 2]]\n\
                   0 ok txn [[:append :x 1] [:append :y 1]]\n1 ok txn [[:append :x 2] [:append :y 2]]\n\
                   2 invoke txn [[:r :x nil] [:r :y nil]]\n2 ok txn [[:r :x [1 2]] [:r :y [2 1]]]";
    check(history, "serializable", &["G0"]);
    let verdict = check_transactions(&ops(history), &TxnOptions::default()).expect("well formed");
    let g0 = &verdict.anomalies[0];
    assert!(g0.explanation.contains("-ww->"), "{verdict}");
    assert!(g0.steps.iter().any(|s| s.contains("appended 1 to key \"x\" before #1 appended 2")), "{verdict}");
}

#[test]
fn read_of_a_failed_append_is_g1a() {
    let history = "0 invoke txn [[:append :x 1]]\n0 fail txn [[:append :x 1]]\n\
                   1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x [1]]]";
    check(history, "serializable", &["G1a"]);
}

#[test]
fn read_of_an_overwritten_append_is_g1b() {
    let history = "0 invoke txn [[:append :x 1] [:append :x 2]]\n1 invoke txn [[:r :x nil]]\n\
                   1 ok txn [[:r :x [1]]]\n0 ok txn [[:append :x 1] [:append :x 2]]";
    check(history, "serializable", &["G1b"]);
}

#[test]
fn reading_each_others_writes_is_g1c() {
    let history = "0 invoke txn [[:append :x 1] [:r :y nil]]\n1 invoke txn [[:append :y 1] [:r :x nil]]\n\
                   0 ok txn [[:append :x 1] [:r :y [1]]]\n1 ok txn [[:append :y 1] [:r :x [1]]]";
    check(history, "serializable", &["G1c"]);
}

#[test]
fn read_skew_is_g_single() {
    let history = "0 invoke txn [[:append :x 1] [:append :y 1]]\n1 invoke txn [[:r :x nil] [:r :y nil]]\n\
                   0 ok txn [[:append :x 1] [:append :y 1]]\n1 ok txn [[:r :x nil] [:r :y [1]]]\n\
                   2 invoke txn [[:r :x nil]]\n2 ok txn [[:r :x [1]]]";
    check(history, "serializable", &["G-single"]);
    let verdict = check_transactions(&ops(history), &TxnOptions::default()).expect("well formed");
    assert!(verdict.anomalies[0].explanation.contains("#1 -rw-> #0 -wr-> #1"), "{verdict}");
}

#[test]
fn write_skew_is_g2_item() {
    let history = "0 invoke txn [[:r :x nil] [:append :y 1]]\n1 invoke txn [[:r :y nil] [:append :x 1]]\n\
                   0 ok txn [[:r :x nil] [:append :y 1]]\n1 ok txn [[:r :y nil] [:append :x 1]]\n\
                   2 invoke txn [[:r :x nil] [:r :y nil]]\n2 ok txn [[:r :x [1]] [:r :y [1]]]";
    check(history, "serializable", &["G2-item"]);
}

#[test]
fn stale_read_is_g_single_realtime_only_when_real_time_counts() {
    // p0's append completes before p1's read begins, yet the read misses it.
    let history = "0 invoke txn [[:append :x 1]]\n0 ok txn [[:append :x 1]]\n\
                   1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x nil]]\n\
                   2 invoke txn [[:r :x nil]]\n2 ok txn [[:r :x [1]]]";
    check(history, "serializable", &[]);
    check(history, "strong-session-serializable", &[]);
    check(history, "strict-serializable", &["G-single-realtime"]);
}

#[test]
fn reading_past_ones_own_write_is_g_single_process() {
    let history = "0 invoke txn [[:append :x 1]]\n0 ok txn [[:append :x 1]]\n\
                   0 invoke txn [[:r :x nil]]\n0 ok txn [[:r :x nil]]\n\
                   1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x [1]]]";
    check(history, "serializable", &[]);
    check(history, "strong-session-serializable", &["G-single-process"]);
    // Strict serializability finds the same cycle through process order (also real time).
    let options = TxnOptions::for_consistency("strict-serializable").expect("known");
    let verdict = check_transactions(&ops(history), &options).expect("well formed");
    assert_eq!(verdict.valid, Validity::Invalid, "{verdict}");
}

#[test]
fn non_cyclic_list_anomalies() {
    check(
        "0 invoke txn [[:append :x 1] [:r :x nil]]\n0 ok txn [[:append :x 1] [:r :x []]]",
        "serializable",
        &["internal"],
    );
    check(
        "0 invoke txn [[:append :x 1]]\n0 ok txn [[:append :x 1]]\n1 invoke txn [[:append :x 2]]\n1 ok txn [[:append :x 2]]\n\
         2 invoke txn [[:r :x nil]]\n2 ok txn [[:r :x [1 2]]]\n3 invoke txn [[:r :x nil]]\n3 ok txn [[:r :x [2 1]]]",
        "serializable",
        &["incompatible-order"],
    );
    check(
        "0 invoke txn [[:append :x 1]]\n0 ok txn [[:append :x 1]]\n1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x [1 1]]]",
        "serializable",
        &["duplicate-elements"],
    );
    check("1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x [9]]]", "serializable", &["garbage-read"]);
}

#[test]
fn unknown_outcome_appends_count_when_observed() {
    let history = "0 invoke txn [[:append :x 1]]\n0 info txn [[:append :x 1]]\n\
                   1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x [1]]]";
    check(history, "strict-serializable", &[]);
}

#[test]
fn malformed_transactions_are_errors() {
    let error =
        check_transactions(&ops("0 invoke txn [[:append :x]]\n0 ok txn [[:append :x]]"), &TxnOptions::default())
            .expect_err("a micro-op needs three parts");
    assert!(error.message.contains("[f key value]"), "{error}");
    let twice = "0 invoke txn [[:append :x 1]]\n0 ok txn [[:append :x 1]]\n1 invoke txn [[:append :x 1]]\n1 ok txn [[:append :x 1]]";
    let error = check_transactions(&ops(twice), &TxnOptions::default()).expect_err("values must be unique");
    assert!(error.message.contains("unique"), "{error}");
    let mixed = "0 invoke txn [[:append :x 1] [:w :y 1]]\n0 ok txn [[:append :x 1] [:w :y 1]]";
    assert!(check_transactions(&ops(mixed), &TxnOptions::default()).is_err());
}

// ---- rw-register ----------------------------------------------------------------------------------------

#[test]
fn serial_rw_register_history_is_valid() {
    let history = "0 invoke txn [[:w :x 1]]\n0 ok txn [[:w :x 1]]\n\
                   1 invoke txn [[:r :x nil] [:w :x 2]]\n1 ok txn [[:r :x 1] [:w :x 2]]\n\
                   0 invoke txn [[:r :x nil] [:r :y nil]]\n0 ok txn [[:r :x 2] [:r :y nil]]";
    check(history, "strict-serializable", &[]);
    let verdict = check_transactions(&ops(history), &TxnOptions::default()).expect("well formed");
    assert_eq!(verdict.model.as_deref(), Some(TxnModel::RwRegister.name()));
}

#[test]
fn rw_register_write_cycle_is_g0() {
    // T0 read y = 2 before overwriting it with 1; T1 read x = 1 before overwriting it with 2.
    let history = "0 invoke txn [[:r :y nil] [:w :x 1] [:w :y 1]]\n1 invoke txn [[:r :x nil] [:w :x 2] [:w :y 2]]\n\
                   0 ok txn [[:r :y 2] [:w :x 1] [:w :y 1]]\n1 ok txn [[:r :x 1] [:w :x 2] [:w :y 2]]";
    check(history, "serializable", &["G0"]);
}

#[test]
fn rw_register_aborted_and_intermediate_reads() {
    check(
        "0 invoke txn [[:w :x 1]]\n0 fail txn [[:w :x 1]]\n1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x 1]]",
        "serializable",
        &["G1a"],
    );
    check(
        "0 invoke txn [[:w :x 1] [:w :x 2]]\n1 invoke txn [[:r :x nil]]\n1 ok txn [[:r :x 1]]\n0 ok txn [[:w :x 1] [:w :x 2]]",
        "serializable",
        &["G1b"],
    );
    check("0 invoke txn [[:w :x 1] [:r :x nil]]\n0 ok txn [[:w :x 1] [:r :x 2]]", "serializable", &["internal"]);
}

#[test]
fn rw_register_circular_information_flow_is_g1c() {
    let history = "0 invoke txn [[:w :x 1] [:r :y nil]]\n1 invoke txn [[:w :y 1] [:r :x nil]]\n\
                   0 ok txn [[:w :x 1] [:r :y 1]]\n1 ok txn [[:w :y 1] [:r :x 1]]";
    check(history, "serializable", &["G1c"]);
}

#[test]
fn rw_register_read_skew_is_g_single() {
    let history = "0 invoke txn [[:w :x 1] [:w :y 1]]\n1 invoke txn [[:r :x nil] [:r :y nil]]\n\
                   0 ok txn [[:w :x 1] [:w :y 1]]\n1 ok txn [[:r :x nil] [:r :y 1]]";
    check(history, "serializable", &["G-single"]);
}

#[test]
fn rw_register_write_skew_is_g2_item() {
    let history = "0 invoke txn [[:r :x nil] [:w :y 1]]\n1 invoke txn [[:r :y nil] [:w :x 1]]\n\
                   0 ok txn [[:r :x nil] [:w :y 1]]\n1 ok txn [[:r :y nil] [:w :x 1]]";
    check(history, "serializable", &["G2-item"]);
    // Without the write skew (one txn sees the other's write) there is no cycle.
    let fine = "0 invoke txn [[:r :x nil] [:w :y 1]]\n0 ok txn [[:r :x nil] [:w :y 1]]\n\
                1 invoke txn [[:r :y nil] [:w :x 1]]\n1 ok txn [[:r :y 1] [:w :x 1]]";
    check(fine, "strict-serializable", &[]);
}
