//! Eventual convergence, session guarantees and availability metrics on hand-written histories:
//! every anomaly detected, and valid histories not flagged.

mod common;

use common::{names, ops};
use detsim_check::{
    availability, check_eventual, check_session, EventualOptions, FaultWindow, Model, SessionGuarantee, SessionOptions,
    Validity,
};

/// Checks eventual convergence and expects exactly these anomaly names (none: valid).
fn eventual(text: &str, options: &EventualOptions, expected: &[&str]) {
    let verdict = check_eventual(&ops(text), options);
    assert_eq!(names(&verdict), expected, "{verdict}");
    let valid = if expected.is_empty() { Validity::Valid } else { Validity::Invalid };
    assert_eq!(verdict.valid, valid, "{verdict}");
}

fn session(text: &str, guarantee: SessionGuarantee, expected_valid: Validity) {
    let verdict = check_session(&ops(text), guarantee, &SessionOptions::default());
    assert_eq!(verdict.valid, expected_valid, "{verdict}");
    if expected_valid == Validity::Invalid {
        assert!(verdict.anomalies.iter().all(|a| a.name == guarantee.name()), "{verdict}");
        assert!(verdict.anomalies.iter().all(|a| !a.ops.is_empty()), "{verdict}");
    }
}

const OPTIONS: EventualOptions =
    EventualOptions { heal_ns: None, settle_ns: 0, model: None, initial: detsim_core::history::Value::Nil };

#[test]
fn register_that_converges_is_valid() {
    let history = "0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 2\n1 ok write @x 2\n\
                   0 invoke read @x\n0 ok read @x 2\n1 invoke read @x\n1 ok read @x 2";
    eventual(history, &OPTIONS, &[]);
}

#[test]
fn final_reads_that_disagree_are_not_converged() {
    let history = "0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 2\n1 ok write @x 2\n\
                   0 invoke read @x\n0 ok read @x 1\n1 invoke read @x\n1 ok read @x 2";
    eventual(history, &OPTIONS, &["not-converged"]);
}

#[test]
fn register_that_keeps_an_older_write_loses_the_newer_one() {
    // Write 2 began after write 1 was acknowledged, yet everyone ends up with 1.
    let history = "0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 2\n1 ok write @x 2\n\
                   0 invoke read @x\n0 ok read @x 1\n1 invoke read @x\n1 ok read @x 1";
    eventual(history, &OPTIONS, &["lost-write"]);
}

#[test]
fn concurrent_register_writes_may_converge_either_way() {
    let history = "0 invoke write @x 1\n1 invoke write @x 2\n0 ok write @x 1\n1 ok write @x 2\n\
                   0 invoke read @x\n0 ok read @x 1\n1 invoke read @x\n1 ok read @x 1";
    eventual(history, &OPTIONS, &[]);
}

#[test]
fn set_must_end_with_every_acknowledged_add() {
    let adds =
        "0 invoke add @s 1\n0 ok add @s 1\n1 invoke add @s 2\n1 ok add @s 2\n2 invoke add @s 3\n2 info add @s 3\n";
    eventual(
        &format!("{adds}0 invoke read @s\n0 ok read @s [2 1]\n1 invoke read @s\n1 ok read @s [1 2]"),
        &OPTIONS,
        &[],
    );
    eventual(
        &format!("{adds}0 invoke read @s\n0 ok read @s [1 3 2]\n1 invoke read @s\n1 ok read @s [1 2 3]"),
        &OPTIONS,
        &[],
    );
    eventual(
        &format!("{adds}0 invoke read @s\n0 ok read @s [1]\n1 invoke read @s\n1 ok read @s [1]"),
        &OPTIONS,
        &["lost-write"],
    );
}

#[test]
fn failed_and_unknown_elements_in_the_final_value() {
    let history = "0 invoke add @s 1\n0 fail add @s 1\n1 invoke read @s\n1 ok read @s [1]";
    eventual(history, &OPTIONS, &["failed-write-visible"]);
    let history = "0 invoke add @s 1\n0 ok add @s 1\n1 invoke read @s\n1 ok read @s [1 9]";
    eventual(history, &OPTIONS, &["garbage-read"]);
}

#[test]
fn appended_strings_are_split_into_their_appends() {
    let appends =
        "0 invoke append @k \",1\"\n0 ok append @k \",1\"\n1 invoke append @k \",12\"\n1 ok append @k \",12\"\n";
    eventual(
        &format!("{appends}0 invoke get @k\n0 ok get @k \",12,1\"\n1 invoke get @k\n1 ok get @k \",12,1\""),
        &OPTIONS,
        &[],
    );
    // ",12" contains ",1" as text, but not as an append.
    eventual(
        &format!("{appends}0 invoke get @k\n0 ok get @k \",12\"\n1 invoke get @k\n1 ok get @k \",12\""),
        &OPTIONS,
        &["lost-write"],
    );
}

#[test]
fn counter_final_value_is_bounded_by_the_increments() {
    let adds =
        "0 invoke add @c 1\n0 ok add @c 1\n1 invoke add @c 2\n1 ok add @c 2\n2 invoke add @c 5\n2 info add @c 5\n";
    let read =
        |value: i64| format!("{adds}0 invoke read @c\n0 ok read @c {value}\n1 invoke read @c\n1 ok read @c {value}");
    eventual(&read(3), &OPTIONS, &[]);
    eventual(&read(8), &OPTIONS, &[]);
    eventual(&read(2), &OPTIONS, &["lost-write"]);
    eventual(&read(9), &OPTIONS, &["failed-write-visible"]);
}

#[test]
fn reads_before_the_heal_are_not_final() {
    // Records 0..4 happen while partitioned; the reads from record 8 on are after the heal.
    let history = "0 invoke write @x 1\n0 ok write @x 1\n1 invoke read @x\n1 ok read @x\n\
                   0 invoke read @x\n0 ok read @x 1\n1 invoke read @x\n1 ok read @x 1";
    let healed_late = EventualOptions { heal_ns: Some(6), ..OPTIONS };
    eventual(history, &healed_late, &[]);
    let disagree =
        "0 invoke write @x 1\n0 ok write @x 1\n1 invoke read @x\n1 ok read @x\n0 invoke read @x\n0 ok read @x 1";
    eventual(disagree, &OPTIONS, &["not-converged"]);
    let verdict = check_eventual(&ops(disagree), &EventualOptions { heal_ns: Some(100), ..OPTIONS });
    assert_eq!(verdict.valid, Validity::Unknown, "no read after the heal: {verdict}");
    assert!(verdict.reason.as_deref().is_some_and(|r| r.contains("no final read")), "{verdict}");
}

#[test]
fn key_value_initial_value_is_the_empty_string() {
    let history = "0 invoke get @k\n0 ok get @k \"\"\n1 invoke get @k\n1 ok get @k";
    let options = EventualOptions { model: Some(Model::KeyValue), ..OPTIONS };
    let verdict = check_eventual(&ops(history), &options);
    assert_eq!(verdict.valid, Validity::Valid, "{verdict}");
}

// ---- session guarantees ----------------------------------------------------------------------------

#[test]
fn read_your_writes_on_a_set() {
    let base = "0 invoke add @s 1\n0 ok add @s 1\n";
    session(&format!("{base}0 invoke read @s\n0 ok read @s [1]"), SessionGuarantee::ReadYourWrites, Validity::Valid);
    session(&format!("{base}0 invoke read @s\n0 ok read @s []"), SessionGuarantee::ReadYourWrites, Validity::Invalid);
    // Another process may not see it yet: that is not a session violation.
    session(&format!("{base}1 invoke read @s\n1 ok read @s []"), SessionGuarantee::ReadYourWrites, Validity::Valid);
}

#[test]
fn read_your_writes_on_a_register() {
    let base = "0 invoke write @x 1\n0 ok write @x 1\n";
    session(&format!("{base}0 invoke read @x\n0 ok read @x 1"), SessionGuarantee::ReadYourWrites, Validity::Valid);
    session(&format!("{base}0 invoke read @x\n0 ok read @x"), SessionGuarantee::ReadYourWrites, Validity::Invalid);
    // A newer write by someone else is fine.
    let other = "1 invoke write @x 2\n1 ok write @x 2\n0 invoke read @x\n0 ok read @x 2";
    session(&format!("{base}{other}"), SessionGuarantee::ReadYourWrites, Validity::Valid);
    // p0 wrote 1 and read 2; p1 wrote 2 and read 1: no order of 1 and 2 serves both.
    let crossed = "0 invoke write @x 1\n1 invoke write @x 2\n0 ok write @x 1\n1 ok write @x 2\n\
                   0 invoke read @x\n1 invoke read @x\n0 ok read @x 2\n1 ok read @x 1";
    session(crossed, SessionGuarantee::ReadYourWrites, Validity::Invalid);
}

#[test]
fn monotonic_reads_on_lists_and_registers() {
    let appends = "1 invoke append @l 1\n1 ok append @l 1\n1 invoke append @l 2\n1 ok append @l 2\n";
    let reads = |second: &str| {
        format!("{appends}0 invoke read @l\n0 ok read @l [1 2]\n0 invoke read @l\n0 ok read @l {second}")
    };
    session(&reads("[1 2]"), SessionGuarantee::MonotonicReads, Validity::Valid);
    session(&reads("[1]"), SessionGuarantee::MonotonicReads, Validity::Invalid);
    session(&reads("[2 1]"), SessionGuarantee::MonotonicReads, Validity::Invalid);
    let writes = "1 invoke write @x 1\n1 ok write @x 1\n2 invoke write @x 2\n2 ok write @x 2\n";
    // One process going from 2 back to 1 is fine alone (2 may be ordered before 1)...
    let one = format!("{writes}0 invoke read @x\n0 ok read @x 2\n0 invoke read @x\n0 ok read @x 1");
    session(&one, SessionGuarantee::MonotonicReads, Validity::Valid);
    // ...but not when another process goes from 1 to 2.
    let two = format!("{one}\n3 invoke read @x\n3 ok read @x 1\n3 invoke read @x\n3 ok read @x 2");
    session(&two, SessionGuarantee::MonotonicReads, Validity::Invalid);
    // Nothing comes before the initial value.
    let back = format!("{writes}0 invoke read @x\n0 ok read @x 1\n0 invoke read @x\n0 ok read @x");
    session(&back, SessionGuarantee::MonotonicReads, Validity::Invalid);
}

#[test]
fn monotonic_writes_on_lists_and_registers() {
    let appends = "0 invoke append @l 1\n0 ok append @l 1\n0 invoke append @l 2\n0 ok append @l 2\n";
    let read = |seen: &str| format!("{appends}1 invoke read @l\n1 ok read @l {seen}");
    session(&read("[1 2]"), SessionGuarantee::MonotonicWrites, Validity::Valid);
    session(&read("[1]"), SessionGuarantee::MonotonicWrites, Validity::Valid);
    session(&read("[2]"), SessionGuarantee::MonotonicWrites, Validity::Invalid);
    session(&read("[2 1]"), SessionGuarantee::MonotonicWrites, Validity::Invalid);
    // Registers: everyone converges on the first of p0's two writes.
    let writes = "0 invoke write @x 1\n0 ok write @x 1\n0 invoke write @x 2\n0 ok write @x 2\n";
    let end =
        |value: i64| format!("{writes}1 invoke read @x\n1 ok read @x {value}\n2 invoke read @x\n2 ok read @x {value}");
    session(&end(2), SessionGuarantee::MonotonicWrites, Validity::Valid);
    session(&end(1), SessionGuarantee::MonotonicWrites, Validity::Invalid);
}

#[test]
fn writes_follow_reads_on_lists_and_registers() {
    let base = "1 invoke append @l 1\n1 ok append @l 1\n0 invoke read @l\n0 ok read @l [1]\n0 invoke append @l 2\n0 ok append @l 2\n";
    let read = |seen: &str| format!("{base}2 invoke read @l\n2 ok read @l {seen}");
    session(&read("[1 2]"), SessionGuarantee::WritesFollowReads, Validity::Valid);
    session(&read("[1]"), SessionGuarantee::WritesFollowReads, Validity::Valid);
    session(&read("[2]"), SessionGuarantee::WritesFollowReads, Validity::Invalid);
    session(&read("[2 1]"), SessionGuarantee::WritesFollowReads, Validity::Invalid);
    // Registers: p0 read 1 and then wrote 2, so 2 must come after 1; converging on 1 contradicts it.
    let base = "1 invoke write @x 1\n1 ok write @x 1\n0 invoke read @x\n0 ok read @x 1\n0 invoke write @x 2\n0 ok write @x 2\n";
    let end =
        |value: i64| format!("{base}2 invoke read @x\n2 ok read @x {value}\n3 invoke read @x\n3 ok read @x {value}");
    session(&end(2), SessionGuarantee::WritesFollowReads, Validity::Valid);
    session(&end(1), SessionGuarantee::WritesFollowReads, Validity::Invalid);
    // Reading each other's later writes: p0 read 1 then wrote 2, p1 read 2 then wrote 1.
    let crossed = "0 invoke read @x\n1 invoke read @x\n0 ok read @x 1\n1 ok read @x 2\n\
                   0 invoke write @x 2\n1 invoke write @x 1\n0 ok write @x 2\n1 ok write @x 1\n";
    session(crossed, SessionGuarantee::WritesFollowReads, Validity::Invalid);
}

#[test]
fn counters_read_your_writes_and_monotonic_reads() {
    let base = "0 invoke add @c 2\n0 ok add @c 2\n";
    session(&format!("{base}0 invoke read @c\n0 ok read @c 2"), SessionGuarantee::ReadYourWrites, Validity::Valid);
    session(&format!("{base}0 invoke read @c\n0 ok read @c 1"), SessionGuarantee::ReadYourWrites, Validity::Invalid);
    let reads = "1 invoke read @c\n1 ok read @c 2\n1 invoke read @c\n1 ok read @c 0";
    session(&format!("{base}{reads}"), SessionGuarantee::MonotonicReads, Validity::Invalid);
}

#[test]
fn registers_with_repeated_values_are_not_judged() {
    let history =
        "0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 1\n1 ok write @x 1\n0 invoke read @x\n0 ok read @x 1";
    let verdict = check_session(&ops(history), SessionGuarantee::ReadYourWrites, &SessionOptions::default());
    assert_eq!(verdict.valid, Validity::Unknown, "{verdict}");
    assert!(verdict.reason.as_deref().is_some_and(|r| r.contains("more than once")), "{verdict}");
}

// ---- availability ---------------------------------------------------------------------------------------

#[test]
fn availability_counts_outcomes_inside_and_outside_faults() {
    // Times are record numbers: ops invoked at 0, 2 (outside), 4, 6 (inside [4, 8)), 8 (outside).
    let history = "0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 2\n1 ok write @x 2\n\
                   0 invoke write @x 3\n0 fail write @x 3\n1 invoke read @x\n1 info read @x\n\
                   0 invoke read @x\n0 ok read @x 2";
    let report = availability(&ops(history), &[FaultWindow::new(4, 8)]);
    assert_eq!((report.overall.ops, report.overall.ok, report.overall.fail, report.overall.unknown), (5, 3, 1, 1));
    assert_eq!(report.success_fraction(), 0.6);
    assert_eq!((report.inside_faults.ops, report.inside_faults.ok), (2, 0));
    assert_eq!((report.outside_faults.ops, report.outside_faults.ok), (3, 3));
    assert_eq!(report.unknown_outcomes, 1);
    assert_eq!(report.latency.count, 3);
    assert_eq!((report.latency.min_ns, report.latency.max_ns), (1, 1));
    assert_eq!(report.stale_reads, 0);
    let json = report.to_json();
    assert_eq!(json["success_fraction"], 0.6);
    assert_eq!(json["inside_faults"]["ok"], 0);
    assert!(report.to_string().contains("60.0% of 5 succeeded"), "{report}");
}

#[test]
fn stale_reads_and_worst_staleness() {
    // Write 2 is acknowledged at 3; the read at 4 still sees 1 (stale by 1), the read at 8 sees the
    // initial value although write 1 was acknowledged at 1 (stale by 7).
    let history = "0 invoke write @x 1\n0 ok write @x 1\n0 invoke write @x 2\n0 ok write @x 2\n\
                   1 invoke read @x\n1 ok read @x 1\n1 invoke read @x\n1 ok read @x 2\n\
                   2 invoke read @x\n2 ok read @x";
    let report = availability(&ops(history), &[]);
    assert_eq!((report.reads, report.stale_reads), (3, 2), "{report}");
    let worst = report.worst_stale_read.as_ref().expect("a stale read");
    assert_eq!((worst.read.id, worst.staleness_ns, worst.missed.id), (4, 7, 0), "{report}");
    let set = "0 invoke add @s 1\n0 ok add @s 1\n1 invoke read @s\n1 ok read @s []\n1 invoke read @s\n1 ok read @s [1]";
    let report = availability(&ops(set), &[]);
    assert_eq!((report.reads, report.stale_reads, report.worst_staleness_ns()), (2, 1, 1), "{report}");
    let counter =
        "0 invoke add @c 1\n0 ok add @c 1\n0 invoke add @c 1\n0 ok add @c 1\n1 invoke read @c\n1 ok read @c 1";
    let report = availability(&ops(counter), &[]);
    assert_eq!((report.reads, report.stale_reads, report.worst_staleness_ns()), (1, 1, 1), "{report}");
}

#[test]
fn latency_quantiles_use_nearest_rank() {
    let quantiles = detsim_check::LatencyQuantiles::from_latencies((1..=1000).rev().collect());
    assert_eq!((quantiles.p50_ns, quantiles.p90_ns, quantiles.p99_ns, quantiles.p999_ns), (500, 900, 990, 999));
    assert_eq!((quantiles.min_ns, quantiles.max_ns, quantiles.mean_ns, quantiles.count), (1, 1000, 500, 1000));
}
