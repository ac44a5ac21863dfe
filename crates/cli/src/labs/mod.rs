//! The teaching labs: each lab has a guide (docs/labs/), a skeleton crate that `detsim lab new`
//! writes out (templates under crates/cli/lab-skeletons/<lab>/), and a grader that runs the lab's
//! scenarios over many seeds with random fault schedules, checks correctness and the lab's
//! performance budget, shrinks each failing schedule, and prints a [`ScoreCard`].
//!
//! Every grader grades one of three things: the lab's reference implementation from
//! detsim-protocols, one of its mutants (a deliberate bug, so CI can prove the grader catches it), or
//! a student's code, which the skeleton's `tests/grade.rs` hands to the grader.

pub mod clocks;
pub mod failure;
pub mod gossip;
pub mod report;
pub mod server;
pub mod service;

pub use report::write_run_folder;
pub use server::{build_servers, build_servers_and, LabNode, LabServer, ServerSetup};

use crate::testing::FaultWindow;
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// What a student's lab crate needs, in one `use detsim::labs::prelude::*;`.
pub mod prelude {
    pub use crate::labs::server::{build_servers, build_servers_and, LabServer, ServerSetup};
    pub use crate::labs::ScoreCard;
    pub use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Op, Storage, TimerId, Value};
    pub use detsim_protocols::workload::{
        is_read_only, ClientReply, ClientRequest, ReplyResult, RetryPolicy, StateMachine,
    };
    pub use detsim_protocols::{ClusterSpec, WorkloadKind};
    /// `ctx.rng().random_range(150..300)` and friends.
    pub use rand::RngExt;
    pub use std::collections::{BTreeMap, BTreeSet};
    pub use std::time::Duration;
}

/// One file of a lab's skeleton crate: its path inside the crate and its contents.
pub type SkeletonFile = (&'static str, &'static str);

/// A deliberate bug of the reference implementation that the lab's grader must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mutant {
    /// `detsim lab grade <lab> --mutant <name>`.
    pub name: &'static str,
    /// What the bug is, in one line.
    pub bug: &'static str,
    /// The reference's parameters (JSON) that switch the bug on.
    pub params: &'static str,
    /// CI grades it on seeds `1..=seeds` (at least): the bug shows within them, with a margin
    /// (measured: twice the first failing seed, at least 8).
    pub seeds: u64,
}

/// What a grader grades when it is not a student's crate.
#[derive(Clone, Debug, PartialEq)]
pub enum Variant {
    /// The lab's reference implementation with its default parameters.
    Reference,
    /// The reference with one of the lab's mutants switched on.
    Mutant(Mutant),
    /// The lab's reference protocol with these parameters (JSON).
    Params(serde_json::Value),
}

/// A lab: its name (`detsim lab new <name>`), title, guide, reference, mutants, skeleton and grader.
#[derive(Clone, Copy)]
pub struct Lab {
    pub number: u32,
    pub name: &'static str,
    pub title: &'static str,
    /// The guide, relative to the repository root.
    pub guide: &'static str,
    /// What grades as the reference: a protocol of detsim-protocols' registry, or library types.
    pub reference: &'static str,
    pub mutants: &'static [Mutant],
    pub skeleton: &'static [SkeletonFile],
    /// Grades the reference, a mutant or the reference with other parameters.
    pub grade_variant: fn(&Lab, &Variant, &GradeOptions) -> Result<ScoreCard, String>,
}

impl Lab {
    /// The mutant named `name`.
    pub fn mutant(&self, name: &str) -> Option<Mutant> {
        self.mutants.iter().copied().find(|m| m.name == name)
    }

    /// Grades `variant` with `options`; failures are replayed with `detsim lab grade` (whatever
    /// `options.replay_style` says, since a variant is not a student's crate).
    pub fn grade(&self, variant: &Variant, options: &GradeOptions) -> Result<ScoreCard, String> {
        let options = GradeOptions { replay_style: self.replay_style(variant), ..options.clone() };
        (self.grade_variant)(self, variant, &options)
    }

    /// The parameters (JSON) a variant runs the reference with.
    pub fn variant_params(&self, variant: &Variant) -> serde_json::Value {
        match variant {
            Variant::Reference => serde_json::Value::Null,
            Variant::Mutant(mutant) => serde_json::from_str(mutant.params).expect("mutant parameters are JSON"),
            Variant::Params(params) => params.clone(),
        }
    }

    /// How a score card names what it graded.
    pub fn variant_label(&self, variant: &Variant) -> String {
        match variant {
            Variant::Reference => format!("the reference ({})", self.reference),
            Variant::Mutant(mutant) => format!("mutant {} of {}: {}", mutant.name, self.reference, mutant.bug),
            Variant::Params(params) => format!("{} with parameters {params}", self.reference),
        }
    }

    /// How a failure of `variant` is replayed from the command line.
    pub fn replay_style(&self, variant: &Variant) -> ReplayStyle {
        let selector = match variant {
            Variant::Reference => String::new(),
            Variant::Mutant(mutant) => format!(" --mutant {}", mutant.name),
            Variant::Params(params) => format!(" --params '{params}'"),
        };
        ReplayStyle::Cli { lab: self.name.to_string(), selector }
    }
}

/// Every lab, in course order.
pub fn all() -> Vec<Lab> {
    vec![
        clocks::lab(),
        failure::lab(),
        gossip::lab(),
        service::primary_backup_lab(),
        service::quorum_lab(),
        service::raft_lab(),
        service::paxos_lab(),
        service::two_phase_commit_lab(),
    ]
}

/// The lab named `name` (or numbered `name`).
pub fn find(name: &str) -> Option<Lab> {
    all().into_iter().find(|lab| lab.name == name || lab.number.to_string() == name)
}

/// The environment variable with a JSON [`Replay`] that makes a grader run one seed and schedule.
pub const LAB_REPLAY_ENV: &str = "DETSIM_LAB_REPLAY";
/// The environment variable with the number of seeds per scenario.
pub const LAB_SEEDS_ENV: &str = "DETSIM_LAB_SEEDS";
/// The environment variable with the folder failing runs are written to (default: target/detsim-lab).
pub const LAB_REPORTS_ENV: &str = "DETSIM_LAB_REPORTS";
/// The environment variable that, set to 1, also writes each scenario's first run folder.
pub const LAB_PLOTS_ENV: &str = "DETSIM_LAB_PLOTS";

/// One run to repeat exactly: a scenario, a seed, and optionally a fault schedule to use instead of
/// the one the seed draws.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    pub scenario: String,
    pub seed: u64,
    #[serde(default)]
    pub faults: Option<Vec<FaultWindow>>,
}

impl Replay {
    /// Reads a replay written by a score card.
    pub fn from_json(text: &str) -> Result<Replay, String> {
        serde_json::from_str(text)
            .map_err(|e| format!("not a lab replay (expected {{\"scenario\":..,\"seed\":..}}): {e}"))
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("replays serialise to JSON")
    }
}

/// How a failure's replay command is spelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayStyle {
    /// From a student's crate: `DETSIM_LAB_REPLAY='...' cargo test`.
    CargoTest,
    /// From the command line: `detsim lab grade <lab><selector> --replay '...'`.
    Cli { lab: String, selector: String },
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
    /// Most failures described in full (and shrunk) per scenario; the rest are counted.
    pub max_failures_shown: usize,
    pub replay_style: ReplayStyle,
    /// Where each failure's run folder (run.json, history, trace, report.html) is written; `None`:
    /// nowhere.
    pub report_dir: Option<PathBuf>,
    /// Also write the run folder of each scenario's first seed, failing or not (for the guides'
    /// questions about the plots).
    pub plots: bool,
}

impl Default for GradeOptions {
    fn default() -> Self {
        GradeOptions {
            seeds: 20,
            first_seed: 1,
            replay: None,
            max_shrink_runs: 120,
            max_failures_shown: 2,
            replay_style: ReplayStyle::CargoTest,
            report_dir: None,
            plots: false,
        }
    }
}

impl GradeOptions {
    /// What a skeleton's test uses: defaults, with `DETSIM_LAB_SEEDS`, `DETSIM_LAB_REPLAY` and
    /// `DETSIM_LAB_REPORTS` applied; reports go to target/detsim-lab/ of the crate by default.
    pub fn from_env() -> Self {
        let mut options = GradeOptions::default();
        if let Some(seeds) = std::env::var(LAB_SEEDS_ENV).ok().and_then(|s| s.parse().ok()) {
            options.seeds = seeds;
        }
        if let Ok(json) = std::env::var(LAB_REPLAY_ENV) {
            options.replay = Some(Replay::from_json(&json).unwrap_or_else(|e| panic!("{LAB_REPLAY_ENV}: {e}")));
        }
        options.plots = std::env::var(LAB_PLOTS_ENV).is_ok_and(|v| v == "1");
        options.report_dir = match std::env::var_os(LAB_REPORTS_ENV) {
            Some(dir) => Some(PathBuf::from(dir)),
            None => std::env::var_os("CARGO_MANIFEST_DIR").map(|d| Path::new(&d).join("target").join("detsim-lab")),
        };
        options
    }

    /// The seeds a scenario runs (just the replayed one when replaying it; none for other scenarios).
    pub fn seeds_for(&self, scenario: &str) -> Vec<u64> {
        match &self.replay {
            Some(replay) if replay.scenario == scenario => vec![replay.seed],
            Some(_) => Vec::new(),
            None => (self.first_seed..self.first_seed.saturating_add(self.seeds)).collect(),
        }
    }

    /// The command that replays `replay`.
    pub fn replay_command(&self, replay: &Replay) -> String {
        let json = replay.to_json();
        match &self.replay_style {
            ReplayStyle::CargoTest => format!("{LAB_REPLAY_ENV}='{json}' cargo test --offline"),
            ReplayStyle::Cli { lab, selector } => format!("detsim lab grade {lab}{selector} --replay '{json}'"),
        }
    }

    /// The folder of one failing run's report, if reports are written.
    pub fn report_folder(&self, lab: &str, scenario: &str, seed: u64) -> Option<PathBuf> {
        self.report_dir.as_ref().map(|dir| dir.join(lab).join(format!("{scenario}-seed-{seed}")))
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

/// The outcome of one run: the first failing check (name and explanation) or none, plus figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunOutcome {
    /// (check name, explanation) of the first failed check.
    pub failure: Option<(String, String)>,
    /// Named figures of the run (messages per op, p99 latency, recovery time...).
    pub figures: Vec<(String, f64)>,
    /// The run folder written for this run, if one was asked for (and how writing it went).
    pub report: Option<Result<PathBuf, String>>,
}

impl RunOutcome {
    /// A run that failed `check` before producing figures.
    pub fn failed_with(check: &str, why: impl Into<String>) -> Self {
        RunOutcome { failure: Some((check.to_string(), why.into())), ..RunOutcome::default() }
    }
    pub fn failed(&self) -> bool {
        self.failure.is_some()
    }
    fn failed_check(&self) -> Option<&str> {
        self.failure.as_ref().map(|(name, _)| name.as_str())
    }
    /// Records `check` as failed with `why`, unless an earlier check failed already.
    pub fn fail(&mut self, check: &str, why: impl Into<String>) {
        if self.failure.is_none() {
            self.failure = Some((check.to_string(), why.into()));
        }
    }
    pub fn figure(&mut self, name: &str, value: f64) {
        self.figures.push((name.to_string(), value));
    }
}

/// A failing run, after shrinking its fault schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub scenario: String,
    pub seed: u64,
    pub check: String,
    /// The explanation for the shrunk schedule (a checker's counterexample, a budget overrun).
    pub explanation: String,
    pub original_faults: usize,
    pub shrunk: Vec<FaultWindow>,
    pub replay: String,
    /// The run folder of the shrunk run (report.html inside), or why it could not be written.
    pub report: Option<Result<PathBuf, String>>,
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
    /// Hints for the student when a check failed on every run.
    pub hints: Vec<String>,
    /// Reports written for the plots (`GradeOptions::plots`).
    pub plots: Vec<PathBuf>,
}

impl ScenarioResult {
    pub fn passed(&self) -> bool {
        self.runs > 0 && self.passed == self.runs
    }
    /// Runs that failed `check`.
    pub fn failed_runs_of(&self, check: &str) -> u64 {
        self.failed_checks.iter().find(|(c, _)| c == check).map_or(0, |(_, n)| *n)
    }
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
    pub fn new(lab: &Lab, graded: &str) -> Self {
        ScoreCard {
            lab: lab.name.to_string(),
            title: lab.title.to_string(),
            graded: graded.to_string(),
            scenarios: Vec::new(),
        }
    }
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
    /// Every failure described in full, over all scenarios.
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.scenarios.iter().flat_map(|s| s.failures.iter())
    }
    /// Names of the checks that failed on some run, over all scenarios, without repeats.
    pub fn failed_checks(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (check, _) in self.scenarios.iter().flat_map(|s| s.failed_checks.iter()) {
            if !names.contains(check) {
                names.push(check.clone());
            }
        }
        names
    }
    /// The scenario named `name`.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioResult> {
        self.scenarios.iter().find(|s| s.name == name)
    }
    /// The score card as JSON (what `detsim lab grade --json` prints).
    pub fn to_json(&self) -> serde_json::Value {
        let scenarios: Vec<serde_json::Value> = self
            .scenarios
            .iter()
            .map(|s| {
                let figures: Vec<serde_json::Value> = s
                    .figures
                    .iter()
                    .map(|(name, worst, budget)| serde_json::json!({"name": name, "worst": worst, "budget": budget}))
                    .collect();
                let failed_checks: serde_json::Map<String, serde_json::Value> =
                    s.failed_checks.iter().map(|(check, n)| (check.clone(), serde_json::json!(n))).collect();
                let failures: Vec<serde_json::Value> = s
                    .failures
                    .iter()
                    .map(|f| {
                        serde_json::json!({
                            "seed": f.seed,
                            "check": f.check,
                            "explanation": f.explanation,
                            "original_faults": f.original_faults,
                            "shrunk": f.shrunk,
                            "shrunk_text": f.shrunk.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
                            "replay": f.replay,
                            "report": f.report.as_ref().and_then(|r| r.as_ref().ok()).map(|p| p.display().to_string()),
                            "report_error": f.report.as_ref().and_then(|r| r.as_ref().err()),
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": s.name,
                    "description": s.description,
                    "runs": s.runs,
                    "passed": s.passed,
                    "figures": figures,
                    "failed_checks": failed_checks,
                    "hints": s.hints,
                    "plots": s.plots.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                    "failures": failures,
                })
            })
            .collect();
        serde_json::json!({
            "lab": self.lab,
            "title": self.title,
            "graded": self.graded,
            "passed": self.passed(),
            "runs": self.runs(),
            "passed_runs": self.passed_runs(),
            "scenarios": scenarios,
        })
    }
    /// Panics with the score card unless every run passed (what a skeleton's test calls); prints
    /// the card either way (`cargo test -- --nocapture` shows it on success).
    pub fn assert_passed(&self) {
        assert!(self.passed(), "the lab's grader failed your implementation:\n\n{self}");
        println!("{self}");
    }
}

impl fmt::Display for ScoreCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== detsim lab {}: {} ==", self.lab, self.title)?;
        writeln!(f, "graded: {}", self.graded)?;
        for scenario in self.scenarios.iter().filter(|s| s.runs > 0) {
            let mark = if scenario.passed() { "PASS" } else { "FAIL" };
            writeln!(f, "\n[{mark}] {}: {}/{} runs passed", scenario.name, scenario.passed, scenario.runs)?;
            writeln!(f, "       {}", scenario.description)?;
            for (name, worst, budget) in &scenario.figures {
                match budget {
                    Some(budget) => {
                        let over = if worst > budget { "  OVER BUDGET" } else { "" };
                        writeln!(f, "       {name}: worst {worst:.2} (budget {budget:.2}){over}")?
                    }
                    None => writeln!(f, "       {name}: worst {worst:.2}")?,
                }
            }
            for (check, count) in &scenario.failed_checks {
                writeln!(f, "       failed `{check}` on {count} of {} runs", scenario.runs)?;
            }
            for hint in &scenario.hints {
                writeln!(f, "       hint: {hint}")?;
            }
            for plot in &scenario.plots {
                writeln!(f, "       plots: {}", plot.display())?;
            }
            for failure in &scenario.failures {
                writeln!(f, "   - seed {} failed `{}`", failure.seed, failure.check)?;
                writeln!(
                    f,
                    "     shrunk fault schedule ({} of {} windows; every fault healed at the end):",
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
                match &failure.report {
                    Some(Ok(path)) => writeln!(f, "     report: {}", path.display())?,
                    Some(Err(error)) => writeln!(f, "     report: not written ({error})")?,
                    None => {}
                }
                // Long explanations (a checker's linearization prefix) matter most at their end,
                // where the operation that cannot be placed is.
                let lines: Vec<&str> = failure.explanation.lines().collect();
                let (head, tail) = if lines.len() > 40 { (4, 30) } else { (lines.len(), 0) };
                for line in &lines[..head] {
                    writeln!(f, "     | {line}")?;
                }
                if tail > 0 {
                    writeln!(f, "     | ... ({} lines; all of them in the report)", lines.len() - head - tail)?;
                    for line in &lines[lines.len() - tail..] {
                        writeln!(f, "     | {line}")?;
                    }
                }
            }
        }
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        writeln!(f, "\nscore: {}/{} runs passed: {verdict}", self.passed_runs(), self.runs())
    }
}

/// Turns a panic inside a run (a student's `unwrap`, an index out of bounds) into a failed check.
fn run_guarded(
    run: &mut dyn FnMut(u64, &[FaultWindow], Option<&Path>) -> RunOutcome,
    seed: u64,
    faults: &[FaultWindow],
    dir: Option<&Path>,
) -> RunOutcome {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(seed, faults, dir))) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(a panic without a message)".to_string());
            RunOutcome::failed_with("no panic", format!("a node panicked: {message}"))
        }
    }
}

/// One scenario of a lab, as the generic grading loop sees it.
pub struct ScenarioRun<'a> {
    pub lab: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    /// Fault schedules; each seed draws one.
    pub schedules: &'a BoxedStrategy<Vec<FaultWindow>>,
    /// Budgets of named figures (the check that enforces one is the run's business).
    pub budgets: &'a [(&'a str, f64)],
}

/// Runs one scenario over the seeds of `options`: each seed draws a fault schedule, `run` judges
/// it (writing a run folder when given one), and a failing schedule is shrunk with proptest's value
/// tree (drop windows, shorten them, simpler faults) while the same check keeps failing.
pub fn grade_scenario(
    scenario: &ScenarioRun<'_>,
    options: &GradeOptions,
    mut run: impl FnMut(u64, &[FaultWindow], Option<&Path>) -> RunOutcome,
) -> ScenarioResult {
    let mut result = ScenarioResult {
        name: scenario.name.to_string(),
        description: scenario.description.to_string(),
        ..Default::default()
    };
    let mut worst: Vec<(String, f64)> = Vec::new();
    let replaying_schedule = options.replay.as_ref().is_some_and(|r| r.faults.is_some());
    for (position, seed) in options.seeds_for(scenario.name).into_iter().enumerate() {
        let mut runner = TestRunner::new_with_rng(Config::default(), schedule_rng(seed));
        let mut tree = scenario.schedules.new_tree(&mut runner).expect("fault schedules always generate");
        let drawn = match &options.replay {
            Some(Replay { faults: Some(faults), .. }) => faults.clone(),
            _ => tree.current(),
        };
        let outcome = run_guarded(&mut run, seed, &drawn, None);
        result.runs += 1;
        if position == 0 && options.plots {
            if let Some(dir) = options.report_folder(scenario.lab, scenario.name, seed) {
                let plotted = run_guarded(&mut run, seed, &drawn, Some(&dir));
                if let Some(Ok(report)) = &plotted.report {
                    result.plots.push(report.clone());
                }
            }
        }
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
        let (shrunk, shrunk_outcome) = if replaying_schedule {
            (drawn.clone(), outcome.clone())
        } else {
            shrink(&mut tree, drawn.clone(), outcome.clone(), options.max_shrink_runs, |faults| {
                run_guarded(&mut run, seed, faults, None)
            })
        };
        // The shrunk run once more, writing its run folder for the report.
        let report = options.report_folder(scenario.lab, scenario.name, seed).map(|dir| {
            let rerun = run_guarded(&mut run, seed, &shrunk, Some(&dir));
            rerun.report.unwrap_or_else(|| Err("this lab writes no run folders".to_string()))
        });
        let replay = Replay { scenario: scenario.name.to_string(), seed, faults: Some(shrunk.clone()) };
        let (check, explanation) = shrunk_outcome.failure.expect("a shrunk outcome still fails");
        result.failures.push(Failure {
            scenario: scenario.name.to_string(),
            seed,
            check,
            explanation,
            original_faults: drawn.len(),
            shrunk,
            replay: options.replay_command(&replay),
            report,
        });
    }
    result.figures = worst
        .into_iter()
        .map(|(name, value)| {
            let budget = scenario.budgets.iter().find(|(b, _)| *b == name).map(|(_, v)| *v);
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
    if best.0.is_empty() || max_runs == 0 {
        return best;
    }
    // A failure the faults do not cause (a skeleton that never answers, a budget blown in calm
    // weather) shrinks to no faults at all in one run, instead of one window at a time.
    let calm = run(&[]);
    if calm.failed_check() == Some(check.as_str()) {
        return (Vec::new(), calm);
    }
    if !tree.simplify() {
        return best;
    }
    for _ in 1..max_runs {
        let candidate = tree.current();
        let candidate_outcome = run(&candidate);
        let still_fails = candidate_outcome.failed_check() == Some(check.as_str());
        if still_fails {
            best = (candidate, candidate_outcome);
        }
        let more = if still_fails { tree.simplify() } else { tree.complicate() };
        if !more {
            break;
        }
    }
    best
}
