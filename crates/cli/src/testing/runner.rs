//! Runs a user's protocol on one test case and judges the run: the [`Cluster`] under test, [`run`],
//! the [`Report`] with its assertions (linearizability or another model, liveness after heal), and
//! [`check`] / [`search`], which drive proptest with a deterministic RNG and turn the minimal failing
//! case into a message with the seed, the fault schedule and the replay command, and
//! [`write_report`], which runs a case again into a run folder with its report.html (the charts and
//! the Lamport diagram of the counterexample).

use crate::testing::case::{test_cases, CaseSpace, OpMix, TestCase};
use crate::testing::harness::{Actor, Client, ClientSettings, Service};
use crate::testing::schedule::{self, at, timeline};
use detsim_check::{
    check_causal, check_eventual, check_linearizable, check_sequential, check_session, CausalOptions, EventualOptions,
    LinearizabilityOptions, Model, Outcome, SessionGuarantee, SessionOptions, Validity, Verdict,
};
use detsim_core::{History, Limits, NodeId, RunStats, SimConfig, SimError, Simulation, Storage};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable that makes [`check`] run one case (JSON) instead of searching.
pub const REPLAY_ENV: &str = "DETSIM_REPLAY";
/// The environment variable that changes the seed of proptest's own search (default 0).
pub const SEARCH_SEED_ENV: &str = "DETSIM_SEARCH_SEED";
/// The environment variable with the folder [`check`] writes counterexample run folders to
/// (default: `detsim-testing/` in the target directory of the running test; `off` writes none).
pub const REPORTS_ENV: &str = "DETSIM_REPORTS";

type ServerFactory<N> = Arc<dyn Fn(NodeId, &Storage) -> N>;

/// The system under test: how many servers and clients, how to build (and rebuild after a crash) a
/// server, what the clients do, and the run's timeline: faults happen in `[0, horizon_ms)`, everything
/// is healed at `horizon_ms`, and the run ends `liveness_timeout_ms` later.
pub struct Cluster<N> {
    pub servers: u32,
    pub clients: u32,
    pub keys: u32,
    pub mix: OpMix,
    pub horizon_ms: u32,
    pub liveness_timeout_ms: u32,
    /// Client timeouts and pacing (think time comes from each case's workload; the probe and stop
    /// times from the timeline).
    pub client: ClientSettings,
    factory: ServerFactory<N>,
}

impl<N: Service> Cluster<N> {
    /// `servers` servers (`n1..`, node ids from 0) built by `factory` from their id and durable
    /// storage (empty at the first start, what they stored after a crash), and two clients.
    pub fn new(servers: u32, factory: impl Fn(NodeId, &Storage) -> N + 'static) -> Self {
        assert!(servers > 0, "a cluster has at least one server");
        Cluster {
            servers,
            clients: 2,
            keys: 1,
            mix: OpMix::Register,
            horizon_ms: 2_000,
            liveness_timeout_ms: 3_000,
            client: ClientSettings::default(),
            factory: Arc::new(factory),
        }
    }
    pub fn clients(mut self, clients: u32) -> Self {
        assert!(clients > 0, "at least one client");
        self.clients = clients;
        self
    }
    pub fn keys(mut self, keys: u32) -> Self {
        self.keys = keys;
        self
    }
    pub fn mix(mut self, mix: OpMix) -> Self {
        self.mix = mix;
        self
    }
    pub fn horizon_ms(mut self, horizon_ms: u32) -> Self {
        self.horizon_ms = horizon_ms;
        self
    }
    pub fn liveness_timeout_ms(mut self, liveness_timeout_ms: u32) -> Self {
        self.liveness_timeout_ms = liveness_timeout_ms;
        self
    }
    pub fn client_timeout_ms(mut self, timeout_ms: u64) -> Self {
        self.client.timeout_ms = timeout_ms;
        self
    }

    /// The proptest strategy of cases for this cluster.
    pub fn cases(&self, space: &CaseSpace) -> proptest::strategy::BoxedStrategy<TestCase> {
        test_cases(self.servers, self.keys, self.horizon_ms, space)
    }

    /// Builds the simulation of `case`, faults scheduled, ready to run.
    pub fn build(&self, case: &TestCase) -> Result<Simulation<Actor<N>>, String> {
        schedule::validate(&case.faults, self.servers)?;
        let limits = Limits { max_events: 20_000_000, max_queue_len: 1_000_000, ..Limits::default() };
        let config = SimConfig { seed: case.seed, network: case.network.to_config(), limits };
        let mut sim = Simulation::new(config).map_err(|e| e.to_string())?;
        for i in 0..self.servers {
            let factory = Arc::clone(&self.factory);
            sim.add_node(&format!("n{}", i + 1), move |id, storage| Actor::Server(factory(id, storage)));
        }
        let plans = case.workload.ops_per_client(self.mix, self.clients, self.keys);
        let longest_plan = plans.iter().map(Vec::len).max().unwrap_or(0).max(1) as u64;
        let settings = ClientSettings {
            think_ms: u64::from(case.workload.think_ms),
            // The plan spreads over the fault horizon, whatever its length.
            pace_ms: u64::from(self.horizon_ms) / longest_plan,
            probe_from_ms: Some(u64::from(self.horizon_ms)),
            final_read_at_ms: Some(u64::from(self.horizon_ms) + u64::from(self.liveness_timeout_ms) / 2),
            stop_at_ms: u64::from(self.horizon_ms) + u64::from(self.liveness_timeout_ms),
            ..self.client.clone()
        };
        for (i, plan) in plans.into_iter().enumerate() {
            let client = Client::new(i as u32, self.clients, self.servers, settings.clone(), plan);
            // A crashed client is rebuilt as a fresh one with nothing left to do (faults never
            // target clients, but a factory must exist).
            let (index, clients, servers, settings) = (i as u32, self.clients, self.servers, settings.clone());
            let mut first = Some(client);
            sim.add_node(&format!("c{}", i + 1), move |_, _| {
                Actor::Client(
                    first.take().unwrap_or_else(|| Client::new(index, clients, servers, settings.clone(), vec![])),
                )
            });
        }
        for timed in timeline(&case.faults, self.servers, self.horizon_ms) {
            sim.schedule_fault(at(timed.at_ms), timed.fault).map_err(|e| e.to_string())?;
        }
        Ok(sim)
    }
}

/// Runs `case` on `cluster` to the end of its timeline and returns what happened.
pub fn run<N: Service>(cluster: &Cluster<N>, case: &TestCase) -> Report {
    let heal_at_ms = cluster.horizon_ms;
    let end_ms = cluster.horizon_ms + cluster.liveness_timeout_ms;
    let mut report = Report {
        case: case.clone(),
        servers: cluster.servers,
        clients: cluster.clients,
        heal_at_ms,
        end_ms,
        history: History::new(),
        stats: RunStats::default(),
        trace_hash: 0,
        error: None,
    };
    let mut sim = match cluster.build(case) {
        Ok(sim) => sim,
        Err(error) => {
            report.error = Some(error);
            return report;
        }
    };
    let result: Result<(), SimError> = sim.run_until(at(end_ms)).map(|_| ());
    report.error = result.err().map(|e| e.to_string());
    report.history = sim.take_history();
    report.stats = sim.stats().clone();
    report.trace_hash = sim.trace_hash();
    report
}

/// Runs `case` on `cluster` once more with its trace recorded and writes a run folder into `dir`
/// (trace.jsonl, history.jsonl, run.json, report.html and plots/, the layout `detsim plot` reads):
/// the latency, availability and throughput charts with the case's fault windows shaded, and the
/// Lamport diagram with zooms on the first fault. `failure` is the property's message, shown as the
/// report's verdict (`None`: the case passed). Returns the path of report.html. The run is the same
/// run as [`run`]'s: same trace hash.
pub fn write_report<N: Service>(
    cluster: &Cluster<N>,
    case: &TestCase,
    failure: Option<&str>,
    dir: &Path,
) -> Result<PathBuf, String> {
    let mut sim = cluster.build(case)?;
    let folder = crate::labs::report::RunFolder::start(dir, &mut sim)?;
    let end_ms = cluster.horizon_ms + cluster.liveness_timeout_ms;
    if let Err(error) = sim.run_until(at(end_ms)) {
        return Err(format!("the run stopped: {error}"));
    }
    let history = sim.take_history();
    let stats = sim.stats().clone();
    let test = std::thread::current().name().filter(|n| *n != "main").map(str::to_string);
    let info = serde_json::json!({
        "scenario": test.unwrap_or_else(|| "detsim::testing case".to_string()),
        "description": format!(
            "A detsim::testing case: {} servers, {} clients, faults until the heal at {} ms, then {} ms to recover. \
             Network: {}.",
            cluster.servers, cluster.clients, cluster.horizon_ms, cluster.liveness_timeout_ms, case.network
        ),
        "protocol": std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "user protocol".to_string()),
        "seed": case.seed,
        "trace_hash": format!("{:016x}", sim.trace_hash()),
        "valid": failure.is_none(),
        "checks": [{
            "name": "property",
            "valid": failure.is_none(),
            "report": failure.unwrap_or("the property holds"),
        }],
        "replay": replay_command(case),
        "servers": (1..=cluster.servers).map(|i| format!("n{i}")).collect::<Vec<_>>(),
        "clients": (1..=cluster.clients).map(|i| format!("c{i}")).collect::<Vec<_>>(),
        "nodes": sim.node_names(),
        "events": stats.events,
        "sim_time_s": f64::from(end_ms) / 1e3,
    });
    folder.finish(&mut sim, &history, info)
}

/// Where [`check`] writes the run folder of a counterexample: `$DETSIM_REPORTS/<binary>/<test>`, else
/// `<target>/detsim-testing/<binary>/<test>` beside the running test binary
/// (`<target>/debug/deps/<binary>-<hash>`); `None` when `DETSIM_REPORTS=off` or the target directory
/// cannot be told.
pub fn report_folder() -> Option<PathBuf> {
    let base = match std::env::var_os(REPORTS_ENV) {
        Some(dir) if dir == "off" => return None,
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().ok()?;
            let deps = exe.parent()?;
            if deps.file_name()? != "deps" {
                return None;
            }
            deps.parent()?.parent()?.join("detsim-testing")
        }
    };
    let test = std::thread::current().name().filter(|n| *n != "main").unwrap_or("case").replace("::", "-");
    let exe = std::env::current_exe().ok();
    let stem = exe.as_deref().and_then(Path::file_stem).and_then(|s| s.to_str()).unwrap_or("test");
    let binary = stem.rsplit_once('-').map_or(stem, |(name, _hash)| name);
    Some(base.join(binary).join(test))
}

/// The report line of a failure message: where the run folder went, or why it did not.
fn report_line<N: Service>(cluster: &Cluster<N>, case: &TestCase, failure: Option<&str>) -> String {
    match report_folder() {
        None => format!("  report: not written ({REPORTS_ENV}=off, or no target directory)\n"),
        Some(dir) => match write_report(cluster, case, failure, &dir) {
            Ok(report) => format!("  report: {} (open it in a browser)\n", report.display()),
            Err(error) => format!("  report: not written: {error}\n"),
        },
    }
}

/// The checkers' options for a test: partitioned by key, and a memory budget (5 million memo
/// entries) rather than a wall-clock one.
fn checker_options() -> LinearizabilityOptions {
    LinearizabilityOptions { max_memory_entries: 5_000_000, ..LinearizabilityOptions::default() }
}

/// How long after the heal each client first completed an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Per client (`c1` first): milliseconds from the heal to its first `ok` invoked after the heal,
    /// or `None` if it got none before the run ended.
    pub recovery_ms: Vec<Option<u64>>,
}

impl Liveness {
    pub fn is_live(&self) -> bool {
        self.recovery_ms.iter().all(Option::is_some)
    }
    /// The slowest client's recovery time (`None` when some client never recovered).
    pub fn worst_recovery_ms(&self) -> Option<u64> {
        self.recovery_ms.iter().copied().collect::<Option<Vec<u64>>>().map(|v| v.into_iter().max().unwrap_or(0))
    }
}

/// Counts of operations by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub ok: usize,
    pub fail: usize,
    pub unknown: usize,
}

/// What a run did: the case, the history, the counters, and the trace hash.
#[derive(Clone, Debug)]
pub struct Report {
    pub case: TestCase,
    pub servers: u32,
    pub clients: u32,
    pub heal_at_ms: u32,
    pub end_ms: u32,
    pub history: History,
    pub stats: RunStats,
    pub trace_hash: u64,
    /// Why the run could not be built or stopped early (a limit hit, a bad fault), if it did.
    pub error: Option<String>,
}

impl Report {
    /// Checks the history for linearizability against `model`. The checker's budget is memory, not
    /// wall time, so the verdict does not depend on the machine.
    pub fn linearizable(&self, model: Model) -> Result<Verdict, String> {
        check_linearizable(&self.history, model, &checker_options()).map_err(|e| format!("malformed history: {e:?}"))
    }

    /// Checks the history for sequential consistency against `model` (a legal order of all operations
    /// that keeps each client process's order, real time aside).
    pub fn sequential(&self, model: Model) -> Result<Verdict, String> {
        check_sequential(&self.history, model, &checker_options()).map_err(|e| format!("malformed history: {e:?}"))
    }

    /// Checks the history for causal consistency (registers with unique written values: the bad
    /// patterns of Bouajjani et al., POPL 2017).
    pub fn causal(&self) -> Result<Verdict, String> {
        let ops = detsim_check::operations(&self.history).map_err(|e| format!("malformed history: {e:?}"))?;
        Ok(check_causal(&ops, &CausalOptions::default()))
    }

    /// Checks eventual convergence: the final reads invoked at least `settle_ms` after the heal agree,
    /// and include every acknowledged write. The harness's clients read every key they used once
    /// more half-way through the liveness timeout (1.5 s after the heal by default), so `settle_ms`
    /// must be shorter than that.
    pub fn eventual(&self, settle_ms: u32) -> Result<Verdict, String> {
        let ops = detsim_check::operations(&self.history).map_err(|e| format!("malformed history: {e:?}"))?;
        let options = EventualOptions {
            heal_ns: Some(u64::from(self.heal_at_ms) * 1_000_000),
            settle_ns: u64::from(settle_ms) * 1_000_000,
            ..EventualOptions::default()
        };
        Ok(check_eventual(&ops, &options))
    }

    /// Checks one session guarantee (read-your-writes, monotonic reads, ...) per client process.
    pub fn session(&self, guarantee: SessionGuarantee) -> Result<Verdict, String> {
        let ops = detsim_check::operations(&self.history).map_err(|e| format!("malformed history: {e:?}"))?;
        Ok(check_session(&ops, guarantee, &SessionOptions::default()))
    }

    /// Fails unless the run finished and the history is causally consistent.
    pub fn assert_causal(&self) -> Result<(), TestCaseError> {
        self.assert_ran()?;
        self.judged_verdict("causally consistent", self.causal())
    }

    /// Fails unless the run finished and the replicas converged `settle_ms` after the heal.
    pub fn assert_converged_after_heal(&self, settle_ms: u32) -> Result<(), TestCaseError> {
        self.assert_ran()?;
        self.judged_verdict("eventually consistent", self.eventual(settle_ms))
    }

    /// Fails unless the run finished and every client session kept `guarantee`.
    pub fn assert_session(&self, guarantee: SessionGuarantee) -> Result<(), TestCaseError> {
        self.assert_ran()?;
        self.judged_verdict(&format!("{guarantee:?}"), self.session(guarantee))
    }

    fn judged_verdict(&self, what: &str, verdict: Result<Verdict, String>) -> Result<(), TestCaseError> {
        match verdict {
            Ok(verdict) if verdict.valid == Validity::Valid => Ok(()),
            Ok(verdict) if verdict.valid == Validity::Unknown => {
                Err(self.failure(&format!("the checker could not decide whether this is {what}:\n{verdict}")))
            }
            Ok(verdict) => Err(self.failure(&format!("not {what}:\n{verdict}"))),
            Err(error) => Err(self.failure(&error)),
        }
    }

    /// Operation counts by outcome.
    pub fn op_counts(&self) -> OpCounts {
        let mut counts = OpCounts::default();
        if let Ok(ops) = detsim_check::operations(&self.history) {
            for op in ops {
                match op.outcome {
                    Outcome::Ok => counts.ok += 1,
                    Outcome::Fail => counts.fail += 1,
                    Outcome::Info => counts.unknown += 1,
                }
            }
        }
        counts
    }

    /// Recovery time of each client after the heal.
    pub fn liveness(&self) -> Liveness {
        let heal_ns = u64::from(self.heal_at_ms) * 1_000_000;
        let mut recovery_ms = vec![None; self.clients as usize];
        let ops = detsim_check::operations(&self.history).unwrap_or_default();
        // Process p belongs to client p % clients (processes are renumbered after an unknown outcome).
        for op in ops.iter().filter(|op| op.outcome == Outcome::Ok && op.invoke_ns >= heal_ns) {
            let client = (op.process % u64::from(self.clients)) as usize;
            let done_ms = op.complete_ns.map(|ns| (ns - heal_ns) / 1_000_000);
            if let (Some(done_ms), slot) = (done_ms, &mut recovery_ms[client]) {
                *slot = Some(slot.map_or(done_ms, |best: u64| best.min(done_ms)));
            }
        }
        Liveness { recovery_ms }
    }

    /// Fails unless the run finished without error and the history is linearizable for `model`.
    pub fn assert_linearizable(&self, model: Model) -> Result<(), TestCaseError> {
        self.assert_ran()?;
        self.judged("linearizable", model, self.linearizable(model))
    }

    /// Fails unless the run finished without error and the history is sequentially consistent for
    /// `model`.
    pub fn assert_sequential(&self, model: Model) -> Result<(), TestCaseError> {
        self.assert_ran()?;
        self.judged("sequentially consistent", model, self.sequential(model))
    }

    fn judged(&self, what: &str, model: Model, verdict: Result<Verdict, String>) -> Result<(), TestCaseError> {
        match verdict {
            Ok(verdict) if verdict.valid == Validity::Valid => Ok(()),
            Ok(verdict) if verdict.valid == Validity::Unknown => {
                Err(self.failure(&format!("the checker could not decide whether this is {what} ({model}):\n{verdict}")))
            }
            Ok(verdict) => Err(self.failure(&format!("not {what} ({model}):\n{verdict}"))),
            Err(error) => Err(self.failure(&error)),
        }
    }

    /// Fails unless every client completed an operation after the heal (within the liveness timeout).
    pub fn assert_live_after_heal(&self) -> Result<(), TestCaseError> {
        self.assert_ran()?;
        let liveness = self.liveness();
        if liveness.is_live() {
            return Ok(());
        }
        let stuck: Vec<String> = liveness
            .recovery_ms
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_none())
            .map(|(i, _)| format!("c{}", i + 1))
            .collect();
        Err(self.failure(&format!(
            "not live after heal: {} completed no operation between the heal at {}ms and the end at {}ms",
            stuck.join(", "),
            self.heal_at_ms,
            self.end_ms
        )))
    }

    /// Fails if the run could not be built or stopped early.
    pub fn assert_ran(&self) -> Result<(), TestCaseError> {
        match &self.error {
            None => Ok(()),
            Some(error) => Err(self.failure(&format!("the run stopped: {error}"))),
        }
    }

    /// A failure for this run: `what`, then the seed, network, minimal fault schedule, workload,
    /// counters, the replay command and the schedule as scenario `[[faults]]`.
    pub fn failure(&self, what: &str) -> TestCaseError {
        TestCaseError::fail(format!("{what}\n{}", self.describe()))
    }

    /// The run, described for a failure message.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let case = &self.case;
        out.push_str(&format!("  seed: {}\n", case.seed));
        out.push_str(&format!("  network: {}\n", case.network));
        out.push_str(&format!("  fault schedule ({} windows, healed at {}ms):\n", case.faults.len(), self.heal_at_ms));
        for window in &case.faults {
            out.push_str(&format!("    {window}\n"));
        }
        let counts = self.op_counts();
        out.push_str(&format!(
            "  workload: {} planned ops over {} clients, think {}ms; history: {} ok, {} fail, {} unknown\n",
            case.workload.ops.len(),
            self.clients,
            case.workload.think_ms,
            counts.ok,
            counts.fail,
            counts.unknown
        ));
        out.push_str(&format!(
            "  run: {} events, {} messages sent, {} dropped; trace hash {:016x}\n",
            self.stats.events, self.stats.sends, self.stats.drops, self.trace_hash
        ));
        out.push_str(&format!("  replay: {}\n", replay_command(case)));
        out.push_str("  as scenario faults:\n");
        let toml = schedule::scenario_faults_toml(&timeline(&case.faults, self.servers, self.heal_at_ms), self.servers);
        for line in toml.lines().filter(|l| !l.is_empty()) {
            out.push_str(&format!("    {line}\n"));
        }
        out
    }
}

/// The one-line command that re-runs `case` in the current test: `DETSIM_REPLAY='<case>' cargo test
/// -p <package> --test <file> -- <test> --exact`, with the package, test target and test name taken
/// from the running test binary when it can tell them.
pub fn replay_command(case: &TestCase) -> String {
    let test = std::thread::current().name().filter(|n| *n != "main").map(str::to_string);
    let filter = test.map_or(String::from(" -- <test name> --exact"), |name| format!(" -- {name} --exact"));
    let package = std::env::var("CARGO_PKG_NAME").ok();
    let mut target = String::new();
    if let Some(package) = &package {
        target.push_str(&format!(" -p {package}"));
    }
    if let Some(selector) = test_target(package.as_deref()) {
        target.push(' ');
        target.push_str(&selector);
    }
    format!("{REPLAY_ENV}='{}' cargo test{target}{filter}", case.to_json())
}

/// `--test <file>` (or `--lib`) for the running test binary, from its file name (`<target>-<hash>`).
fn test_target(package: Option<&str>) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let stem = exe.file_stem()?.to_str()?;
    let (name, hash) = stem.rsplit_once('-')?;
    if hash.len() != 16 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    match package {
        Some(package) if package.replace('-', "_") == name => Some("--lib".to_string()),
        _ => Some(format!("--test {name}")),
    }
}

/// A property's minimal failing case, as proptest shrank it.
#[derive(Clone, Debug)]
pub struct Counterexample {
    pub case: TestCase,
    /// The property's failure message for the minimal case.
    pub message: String,
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

/// The proptest configuration [`search`] uses: `space.cases` cases (unless `PROPTEST_CASES` is set),
/// no regression files, enough shrink steps to reach a minimal schedule.
pub fn proptest_config(space: &CaseSpace) -> Config {
    let mut config = Config { failure_persistence: None, max_shrink_iters: 4_096, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = space.cases;
    }
    config
}

/// A deterministic proptest RNG: the same cases every run unless `DETSIM_SEARCH_SEED` says otherwise.
fn search_rng() -> TestRng {
    let seed: u64 = std::env::var(SEARCH_SEED_ENV).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Searches `space` for a case on which `property` fails; returns proptest's shrunk, minimal case.
pub fn search<N: Service>(
    cluster: &Cluster<N>,
    space: &CaseSpace,
    property: impl Fn(&Report) -> Result<(), TestCaseError>,
) -> Result<(), Counterexample> {
    let mut runner = TestRunner::new_with_rng(proptest_config(space), search_rng());
    let strategy = cluster.cases(space);
    match runner.run(&strategy, |case| property(&run(cluster, &case))) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, case)) => Err(Counterexample { case, message: reason.to_string() }),
        Err(TestError::Abort(reason)) => panic!("proptest aborted the search: {reason}"),
    }
}

/// Checks `property` on the cases of `space`, or on the one case in `DETSIM_REPLAY` when set; panics
/// with the minimal counterexample (seed, fault schedule, replay command) when it fails.
pub fn check<N: Service>(
    cluster: &Cluster<N>,
    space: &CaseSpace,
    property: impl Fn(&Report) -> Result<(), TestCaseError>,
) {
    if let Ok(json) = std::env::var(REPLAY_ENV) {
        let case = TestCase::from_json(&json).unwrap_or_else(|e| panic!("{REPLAY_ENV}: {e}"));
        let report = run(cluster, &case);
        if let Err(error) = property(&report) {
            let error = error.to_string();
            let report_line = report_line(cluster, &case, Some(&error));
            panic!("replayed case fails: {error}{report_line}");
        }
        eprintln!("replayed case passes:\n{}{}", report.describe(), report_line(cluster, &case, None));
        return;
    }
    if let Err(counterexample) = search(cluster, space, property) {
        let report_line = report_line(cluster, &counterexample.case, Some(&counterexample.message));
        panic!("property failed; minimal counterexample after shrinking:\n{counterexample}{report_line}");
    }
}
