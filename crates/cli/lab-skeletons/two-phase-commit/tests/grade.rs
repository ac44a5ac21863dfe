//! Runs the lab's grader on your servers. `cargo test --offline -- --nocapture` shows the score card
//! when it passes too; `DETSIM_LAB_SEEDS=200 cargo test --offline` grades on more seeds; a failure
//! prints the command that replays it alone.

#[test]
fn grade() {
    detsim::labs::service::grade_student("two-phase-commit", lab_two_phase_commit::build).assert_passed();
}
