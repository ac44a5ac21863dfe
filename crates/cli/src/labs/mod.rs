//! The teaching labs: each lab has a guide (docs/labs/<lab>.md), a skeleton crate that
//! `detsim lab new` writes out (templates under crates/cli/labs/<lab>/), and a grader that runs the
//! lab's scenarios over many seeds with random fault schedules, checks correctness and the lab's
//! performance budget, shrinks each failing schedule, and prints a [`ScoreCard`].

pub mod clocks;
pub mod gossip;
pub mod service;

use crate::testing::FaultWindow;
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One file of a lab's skeleton crate: its path inside the crate and its contents.
pub type SkeletonFile = (&'static str, &'static str);

/// What grades a lab: a protocol built from a `ClusterSpec` (the service and gossip labs, whose
/// reference is a protocol of detsim-protocols), or the clocks lab's library types.
#[derive(Clone, Copy)]
pub enum LabKind {
    Service(fn() -> service::ServiceLab),
    Gossip,
    Clocks,
}

/// A lab: its name (`detsim lab new <name>`), title, reference protocol and skeleton.
#[derive(Clone, Copy)]
pub struct Lab {
    pub number: u32,
    pub name: &'static str,
    pub title: &'static str,
    /// The reference implementation in detsim-protocols' registry (`None`: library types).
    pub reference: Option<&'static str>,
    pub kind: LabKind,
    pub skeleton: &'static [SkeletonFile],
}

/// Every lab, in course order.
pub fn all() -> Vec<Lab> {
    vec![
        Lab {
            number: 1,
            name: "clocks",
            title: "Clocks and ordering: Lamport and vector clocks",
            reference: None,
            kind: LabKind::Clocks,
            skeleton: &[
                ("src/lib.rs", include_str!("../../labs/clocks/src/lib.rs")),
                ("tests/grade.rs", include_str!("../../labs/clocks/tests/grade.rs")),
            ],
        },
        Lab {
            number: 3,
            name: "gossip",
            title: "Gossip broadcast with a message and latency budget",
            reference: Some("gossip"),
            kind: LabKind::Gossip,
            skeleton: &[
                ("src/lib.rs", include_str!("../../labs/gossip/src/lib.rs")),
                ("tests/grade.rs", include_str!("../../labs/gossip/tests/grade.rs")),
            ],
        },
        Lab {
            number: 4,
            name: "primary-backup",
            title: "Primary-backup replication with failover",
            reference: Some("primary-backup"),
            kind: LabKind::Service(service::primary_backup),
            skeleton: &[
                ("src/lib.rs", include_str!("../../labs/primary-backup/src/lib.rs")),
                ("tests/grade.rs", include_str!("../../labs/primary-backup/tests/grade.rs")),
            ],
        },
        Lab {
            number: 5,
            name: "quorum",
            title: "Quorum replication and CAP",
            reference: Some("dynamo"),
            kind: LabKind::Service(service::quorum),
            skeleton: &[
                ("src/lib.rs", include_str!("../../labs/quorum/src/lib.rs")),
                ("tests/grade.rs", include_str!("../../labs/quorum/tests/grade.rs")),
            ],
        },
        Lab {
            number: 6,
            name: "raft",
            title: "Raft consensus",
            reference: Some("raft"),
            kind: LabKind::Service(service::raft),
            skeleton: &[
                ("src/lib.rs", include_str!("../../labs/raft/src/lib.rs")),
                ("tests/grade.rs", include_str!("../../labs/raft/tests/grade.rs")),
            ],
        },
        Lab {
            number: 8,
            name: "paxos",
            title: "Multi-Paxos",
            reference: Some("multi-paxos"),
            kind: LabKind::Service(service::paxos),
            skeleton: &[
                ("src/lib.rs", include_str!("../../labs/paxos/src/lib.rs")),
                ("tests/grade.rs", include_str!("../../labs/paxos/tests/grade.rs")),
            ],
        },
    ]
}

/// The lab named `name`.
pub fn find(name: &str) -> Option<Lab> {
    all().into_iter().find(|lab| lab.name == name)
}

/// The environment variable with a JSON [`Replay`] that makes a grader run one seed and schedule.
pub const LAB_REPLAY_ENV: &str = "DETSIM_LAB_REPLAY";
/// The environment variable with the number of seeds per scenario.
pub const LAB_SEEDS_ENV: &str = "DETSIM_LAB_SEEDS";

/// One run to repeat exactly: a scenario, a seed, and optionally a fault schedule to use instead of
/// the one the seed draws.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replay {
    pub scenario: String,
    pub seed: u64,
    #[serde(default)]
    pub faults: Option<Vec<FaultWindow>>,
}

/// How a failure's replay command is spelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayStyle {
    /// From a student's crate: `DETSIM_LAB_REPLAY='...' cargo test`.
    CargoTest,
    /// From the command line, grading a registry protocol with these parameters.
    Cli { lab: String, protocol: String, params: Option<String> },
}

/// How a grader runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GradeOptions {
    /// Seeds per scenario, from `first_seed`.
    pub seeds: u64,
    pub first_seed: u64,
    /// Run only this.
    pub replay: Option<Replay>,
    /// Most re-runs spent shrinking one failing schedule.
    pub max_shrink_runs: u32,
    /// Most failures described in full per scenario (the rest are counted).
    pub max_failures_shown: usize,
    pub replay_style: ReplayStyle,
}

impl Default for GradeOptions {
    fn default() -> Self {
        GradeOptions {
            seeds: 20,
            first_seed: 1,
            replay: None,
            max_shrink_runs: 150,
            max_failures_shown: 3,
            replay_style: ReplayStyle::CargoTest,
        }
    }
}

impl GradeOptions {
    /// Defaults, with `DETSIM_LAB_SEEDS` and `DETSIM_LAB_REPLAY` applied (what a skeleton's test uses).
    pub fn from_env() -> Self {
        let mut options = GradeOptions::default();
        if let Some(seeds) = std::env::var(LAB_SEEDS_ENV).ok().and_then(|s| s.parse().ok()) {
            options.seeds = seeds;
        }
        if let Ok(json) = std::env::var(LAB_REPLAY_ENV) {
            let replay: Replay =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{LAB_REPLAY_ENV} is not a replay: {e}"));
            options.replay = Some(replay);
        }
        options
    }

    /// The seeds a scenario runs (just the replayed one when replaying it; none for other scenarios).
    pub fn seeds_for(&self, scenario: &str) -> Vec<u64> {
        match &self.replay {
            Some(replay) if replay.scenario == scenario => vec![replay.seed],
            Some(_) => Vec::new(),
            None => (self.first_seed..self.first_seed + self.seeds).collect(),
        }
    }

    /// The command that replays `replay`.
    pub fn replay_command(&self, replay: &Replay) -> String {
        let json = serde_json::to_string(replay).expect("replays serialise to JSON");
        match &self.replay_style {
            ReplayStyle::CargoTest => format!("{LAB_REPLAY_ENV}='{json}' cargo test"),
            ReplayStyle::Cli { lab, protocol, params } => {
                let params = params.as_ref().map_or(String::new(), |p| format!(" --params '{p}'"));
                format!("detsim lab grade {lab} --protocol {protocol}{params} --replay '{json}'")
            }
        }
    }
}

/// A TestRng for `seed`: the fault schedule of a grading run is drawn from the run's seed.
pub fn schedule_rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        let word = seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// One check's result on one run: `None` when it passed, or what went wrong.
pub type CheckFailure = Option<String>;

/// The outcome of one run: the first failing check (name and explanation) or none, plus figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOutcome {
    /// (check name, explanation) of the first failed check.
    pub failure: Option<(String, String)>,
    /// Named figures of the run (messages per op, p99 latency, recovery time...).
    pub figures: Vec<(String, f64)>,
}

impl RunOutcome {
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }
    fn failed_check(&self) -> Option<&str> {
        self.failure.as_ref().map(|(name, _)| name.as_str())
    }
}

/// A failing run, after shrinking its fault schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub scenario: String,
    pub seed: u64,
    pub check: String,
    /// The explanation for the shrunk schedule (a checker's counterexample, a budget overrun).
    pub report: String,
    pub original_faults: usize,
    pub shrunk: Vec<FaultWindow>,
    pub replay: String,
}

/// How one scenario went over all its seeds.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ScenarioResult {
    pub name: String,
    pub description: String,
    pub runs: u64,
    pub passed: u64,
    /// Worst value of each figure over the runs, with the budget if there is one.
    pub figures: Vec<(String, f64, Option<f64>)>,
    /// Failures described in full (at most `max_failures_shown`).
    pub failures: Vec<Failure>,
    /// Failed runs by check name.
    pub failed_checks: Vec<(String, u64)>,
    /// Hints for the student when nothing at all worked.
    pub hints: Vec<String>,
}

/// A lab's grade.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ScoreCard {
    pub lab: String,
    pub title: String,
    pub graded: String,
    pub scenarios: Vec<ScenarioResult>,
}

impl ScoreCard {
    pub fn runs(&self) -> u64 {
        self.scenarios.iter().map(|s| s.runs).sum()
    }
    pub fn passed_runs(&self) -> u64 {
        self.scenarios.iter().map(|s| s.passed).sum()
    }
    /// Every run of every scenario passed (and something ran).
    pub fn passed(&self) -> bool {
        self.runs() > 0 && self.passed_runs() == self.runs()
    }
    /// Every failure, over all scenarios.
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.scenarios.iter().flat_map(|s| s.failures.iter())
    }
    /// Panics with the score card unless every run passed (what a skeleton's test calls).
    pub fn assert_passed(&self) {
        assert!(self.passed(), "\n{self}");
        println!("{self}");
    }
}

impl fmt::Display for ScoreCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== detsim lab {}: {} ==", self.lab, self.title)?;
        writeln!(f, "graded: {}", self.graded)?;
        for scenario in &self.scenarios {
            let mark = if scenario.runs > 0 && scenario.passed == scenario.runs { "PASS" } else { "FAIL" };
            writeln!(f, "\n[{mark}] {} — {}/{} runs passed", scenario.name, scenario.passed, scenario.runs)?;
            writeln!(f, "       {}", scenario.description)?;
            for (name, worst, budget) in &scenario.figures {
                match budget {
                    Some(budget) => writeln!(f, "       {name}: worst {worst:.2} (budget {budget:.2})")?,
                    None => writeln!(f, "       {name}: worst {worst:.2}")?,
                }
            }
            for (check, count) in &scenario.failed_checks {
                writeln!(f, "       failed {check}: {count} runs")?;
            }
            for hint in &scenario.hints {
                writeln!(f, "       hint: {hint}")?;
            }
            for failure in &scenario.failures {
                writeln!(f, "   - seed {} failed {}", failure.seed, failure.check)?;
                writeln!(
                    f,
                    "     shrunk fault schedule ({} of {} windows):",
                    failure.shrunk.len(),
                    failure.original_faults
                )?;
                if failure.shrunk.is_empty() {
                    writeln!(f, "       (no faults needed)")?;
                }
                for window in &failure.shrunk {
                    writeln!(f, "       {window}")?;
                }
                writeln!(f, "     replay: {}", failure.replay)?;
                for line in failure.report.lines().take(40) {
                    writeln!(f, "     | {line}")?;
                }
            }
        }
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(f, "\nscore: {}/{} runs passed — {verdict}", self.passed_runs(), self.runs())
    }
}

/// Runs one scenario over `seeds`: each seed draws a fault schedule from `schedules`, `run` judges
/// it, and a failing schedule is shrunk (proptest's value tree: drop windows, shorten them) while
/// the same check keeps failing.
pub fn grade_scenario(
    name: &str,
    description: &str,
    schedules: &BoxedStrategy<Vec<FaultWindow>>,
    options: &GradeOptions,
    budgets: &[(&str, f64)],
    mut run: impl FnMut(u64, &[FaultWindow]) -> RunOutcome,
) -> ScenarioResult {
    let mut result = ScenarioResult { name: name.to_string(), description: description.to_string(), ..Default::default() };
    let mut worst: Vec<(String, f64)> = Vec::new();
    for seed in options.seeds_for(name) {
        let mut runner = TestRunner::new_with_rng(Config::default(), schedule_rng(seed));
        let mut tree = schedules.new_tree(&mut runner).expect("fault schedules always generate");
        let drawn = match &options.replay {
            Some(Replay { faults: Some(faults), .. }) => faults.clone(),
            _ => tree.current(),
        };
        let outcome = run(seed, &drawn);
        result.runs += 1;
        for (figure, value) in &outcome.figures {
            match worst.iter_mut().find(|(n, _)| n == figure) {
                Some((_, w)) => *w = w.max(*value),
                None => worst.push((figure.clone(), *value)),
            }
        }
        let Some((check, _)) = outcome.failure.clone() else {
            result.passed += 1;
            continue;
        };
        match result.failed_checks.iter_mut().find(|(c, _)| *c == check) {
            Some((_, count)) => *count += 1,
            None => result.failed_checks.push((check.clone(), 1)),
        }
        if result.failures.len() >= options.max_failures_shown {
            continue;
        }
        let (shrunk, shrunk_outcome) = if options.replay.as_ref().is_some_and(|r| r.faults.is_some()) {
            (drawn.clone(), outcome.clone())
        } else {
            shrink(&mut tree, drawn.clone(), outcome.clone(), options.max_shrink_runs, |faults| run(seed, faults))
        };
        let replay = Replay { scenario: name.to_string(), seed, faults: Some(shrunk.clone()) };
        let (check, report) = shrunk_outcome.failure.expect("a shrunk outcome still fails");
        result.failures.push(Failure {
            scenario: name.to_string(),
            seed,
            check,
            report,
            original_faults: drawn.len(),
            shrunk,
            replay: options.replay_command(&replay),
        });
    }
    result.figures = worst
        .into_iter()
        .map(|(name, value)| {
            let budget = budgets.iter().find(|(b, _)| *b == name).map(|(_, v)| *v);
            (name, value, budget)
        })
        .collect();
    result
}

/// proptest's shrinking loop over a value tree: keep a simpler schedule while the same check fails.
fn shrink(
    tree: &mut impl ValueTree<Value = Vec<FaultWindow>>,
    drawn: Vec<FaultWindow>,
    outcome: RunOutcome,
    max_runs: u32,
    mut run: impl FnMut(&[FaultWindow]) -> RunOutcome,
) -> (Vec<FaultWindow>, RunOutcome) {
    let check = outcome.failed_check().expect("shrinking a failure").to_string();
    let mut best = (drawn, outcome);
    let mut runs = 0;
    if !tree.simplify() {
        return best;
    }
    loop {
        runs += 1;
        let candidate = tree.current();
        let candidate_outcome = run(&candidate);
        let still_fails = candidate_outcome.failed_check() == Some(check.as_str());
        if still_fails {
            best = (candidate, candidate_outcome);
        }
        if runs >= max_runs {
            break;
        }
        let more = if still_fails { tree.simplify() } else { tree.complicate() };
        if !more {
            break;
        }
    }
    best
}
