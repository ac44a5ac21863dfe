//! Runs the lab's grader on your monitors. `cargo test --offline -- --nocapture` shows the score card
//! when it passes too; `DETSIM_LAB_SEEDS=200 cargo test --offline` grades on more seeds; a failure
//! prints the command that replays it alone.

#[test]
fn grade() {
    detsim::labs::failure::grade_student(lab_failure_detection::build).assert_passed();
}
