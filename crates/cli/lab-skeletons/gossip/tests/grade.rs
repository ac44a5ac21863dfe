//! Runs the lab's grader on your peers. `cargo test --offline -- --nocapture` shows the score card
//! when it passes too; `DETSIM_LAB_SEEDS=200 cargo test --offline` grades on more seeds; a failure
//! prints the command that replays it alone.

#[test]
fn grade() {
    detsim::labs::gossip::grade_student(lab_gossip::build).assert_passed();
}
