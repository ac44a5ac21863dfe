//! Causal consistency on hand-written histories: each bad pattern detected, valid histories not flagged.

mod common;

use common::{names, ops};
use detsim_check::{check_causal, CausalOptions, Validity};

/// Checks causal consistency and expects exactly these anomaly names (none: valid).
fn check(text: &str, expected: &[&str]) {
    let verdict = check_causal(&ops(text), &CausalOptions::default());
    assert_eq!(names(&verdict), expected, "{verdict}");
    let valid = if expected.is_empty() { Validity::Valid } else { Validity::Invalid };
    assert_eq!(verdict.valid, valid, "{verdict}");
    for anomaly in &verdict.anomalies {
        assert!(!anomaly.ops.is_empty() && !anomaly.explanation.is_empty(), "{verdict}");
    }
}

#[test]
fn causally_ordered_reads_are_valid() {
    check(
        "0 invoke write @x 1\n0 ok write @x 1\n1 invoke read @x\n1 ok read @x 1\n1 invoke write @y 2\n1 ok write @y 2\n\
         2 invoke read @y\n2 ok read @y 2\n2 invoke read @x\n2 ok read @x 1",
        &[],
    );
}

#[test]
fn concurrent_writes_may_be_seen_in_different_orders() {
    // Not sequentially consistent, but causal: the two writes are causally unrelated.
    check(
        "0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 2\n1 ok write @x 2\n\
         2 invoke read @x\n2 ok read @x 1\n2 invoke read @x\n2 ok read @x 2\n\
         3 invoke read @x\n3 ok read @x 2\n3 invoke read @x\n3 ok read @x 1",
        &[],
    );
}

#[test]
fn overwritten_value_read_after_its_overwrite_is_write_co_read() {
    check(
        "0 invoke write @x 1\n0 ok write @x 1\n0 invoke write @x 2\n0 ok write @x 2\n\
         1 invoke read @x\n1 ok read @x 2\n1 invoke read @x\n1 ok read @x 1",
        &["WriteCORead"],
    );
}

#[test]
fn initial_value_after_a_causally_earlier_write_is_write_co_init_read() {
    // p1 saw y = 2, which p0 wrote after x = 1: x cannot be back at its initial value for p1.
    check(
        "0 invoke write @x 1\n0 ok write @x 1\n0 invoke write @y 2\n0 ok write @y 2\n\
         1 invoke read @y\n1 ok read @y 2\n1 invoke read @x\n1 ok read @x",
        &["WriteCOInitRead"],
    );
}

#[test]
fn values_nobody_wrote_are_thin_air_reads() {
    check("0 invoke read @x\n0 ok read @x 7", &["ThinAirRead"]);
    check("0 invoke write @x 7\n0 fail write @x 7\n1 invoke read @x\n1 ok read @x 7", &["ThinAirRead"]);
    // An unknown outcome may have happened.
    check("0 invoke write @x 7\n0 info write @x 7\n1 invoke read @x\n1 ok read @x 7", &[]);
}

#[test]
fn reading_from_the_causal_future_is_cyclic_co() {
    check(
        "0 invoke read @x\n1 invoke read @y\n0 ok read @x 1\n1 ok read @y 1\n\
         0 invoke write @y 1\n1 invoke write @x 1\n0 ok write @y 1\n1 ok write @x 1",
        &["CyclicCO"],
    );
}

#[test]
fn repeated_values_give_unknown() {
    let verdict = check_causal(
        &ops("0 invoke write @x 1\n0 ok write @x 1\n1 invoke write @x 1\n1 ok write @x 1"),
        &CausalOptions::default(),
    );
    assert_eq!(verdict.valid, Validity::Unknown, "{verdict}");
    assert!(verdict.reason.as_deref().is_some_and(|r| r.contains("unique")), "{verdict}");
}

#[test]
fn report_spells_out_the_causal_path() {
    let verdict = check_causal(
        &ops("0 invoke write @x 1\n0 ok write @x 1\n0 invoke write @x 2\n0 ok write @x 2\n\
              1 invoke read @x\n1 ok read @x 2\n1 invoke read @x\n1 ok read @x 1"),
        &CausalOptions::default(),
    );
    let text = verdict.to_string();
    assert!(text.contains("#0 -po-> #1"), "{text}");
    assert!(text.contains("#1 -rf-> #2 -po-> #3"), "{text}");
    assert_eq!(verdict.to_json()["anomalies"][0]["name"], "WriteCORead");
}
