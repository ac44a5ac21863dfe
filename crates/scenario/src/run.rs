//! Running one seed of a scenario: build the protocol's simulation from the plan, schedule the
//! faults, run to the end, measure the history, run the checks, and (with an output folder) write
//! the run folder: history.jsonl, trace.jsonl and run.json (the contract in docs/scenario-format.md).

use crate::checks::{self, default_model, run_check, txn_model, CheckContext, CheckResult};
use crate::format::Expect;
use crate::format::WorkloadKind;
use crate::load::{LoadedScenario, ScenarioError};
use crate::plan::Plan;
use detsim_check::{LinearizabilityOptions, Validity};
use detsim_core::{AnySimulation, EventType, Fault, History, RunStats, SimError, SimTime};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Default wall-time budget of each check.
pub const DEFAULT_CHECK_BUDGET_S: u64 = 20;

/// Why a run did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario asks for something the protocol or the simulator rejects (bad input, exit 2).
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// The simulation stopped (a limit, a fault that could not apply).
    #[error("{file}: seed {seed}: the simulation stopped: {error}\n  replay: {replay}")]
    Simulation { file: String, seed: u64, error: SimError, replay: String },
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl RunError {
    /// The exit code for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Scenario(_) | RunError::Io { .. } => 2,
            RunError::Simulation { error: SimError::Config(_) | SimError::Fault { .. }, .. } => 2,
            RunError::Simulation { .. } => 1,
        }
    }
}

/// Latency quantiles of successful operations, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// Everything one run produced that reports, sweeps and run.json need.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub scenario: String,
    pub description: String,
    pub file: String,
    pub protocol: String,
    pub seed: u64,
    pub trace_hash: u64,
    pub valid: Validity,
    pub expect: Expect,
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    /// Unknown outcomes, including operations still pending when the run ended.
    pub info: u64,
    pub availability: f64,
    pub latency_ns: LatencySummary,
    pub messages_per_op: f64,
    pub stats: RunStats,
    pub sim_time_s: f64,
    pub wall_s: f64,
    pub checks: Vec<CheckResult>,
    pub fault_windows: Vec<(String, u64, Option<u64>)>,
    /// The CAP figures of the client history (detsim-check's availability report over the run's
    /// fault windows: success inside and outside them, stale reads, unknown outcomes, latency
    /// quantiles); `None` for runs without client operations.
    pub cap: Option<serde_json::Value>,
    pub faults: Vec<(u64, Fault)>,
    pub servers: Vec<String>,
    pub clients: Vec<String>,
    pub nodes: Vec<String>,
    pub swarm: Option<serde_json::Value>,
    pub history: History,
}

impl RunOutcome {
    /// Whether the checks came out as the scenario expects.
    pub fn outcome_ok(&self) -> bool {
        match self.expect {
            Expect::Pass => self.valid == Validity::Valid,
            Expect::Violation => self.valid == Validity::Invalid,
        }
    }

    /// The 16-hex-digit trace hash.
    pub fn trace_hash_hex(&self) -> String {
        format!("{:016x}", self.trace_hash)
    }

    /// The one-line command that replays this run.
    pub fn replay_command(&self) -> String {
        replay_command(&self.file, self.seed)
    }

    /// The names of the checks that found a violation (what shrinking keeps).
    pub fn violated_checks(&self) -> Vec<String> {
        self.checks.iter().filter(|c| c.valid == Validity::Invalid).map(|c| c.name.clone()).collect()
    }

    /// The run.json object (see docs/scenario-format.md, "The run folder").
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = self.summary_json();
        let object = value.as_object_mut().expect("the summary is an object");
        object.insert("description".into(), json!(self.description));
        object.insert("wall_s".into(), json!(self.wall_s));
        object.insert("checks".into(), json!(self.checks.iter().map(CheckResult::to_json).collect::<Vec<_>>()));
        object.insert(
            "fault_windows".into(),
            json!(self
                .fault_windows
                .iter()
                .map(|(kind, start, end)| json!({"kind": kind, "start_ns": start, "end_ns": end}))
                .collect::<Vec<_>>()),
        );
        object.insert(
            "faults".into(),
            json!(self.faults.iter().map(|(at, fault)| json!({"at_ns": at, "fault": fault})).collect::<Vec<_>>()),
        );
        if let Some(cap) = &self.cap {
            object.insert("cap".into(), cap.clone());
        }
        object.insert("nodes".into(), json!(self.nodes));
        object.insert("servers".into(), json!(self.servers));
        object.insert("clients".into(), json!(self.clients));
        object.insert(
            "stats".into(),
            json!({
                "sends": self.stats.sends, "deliveries": self.stats.deliveries, "drops": self.stats.drops,
                "timers_fired": self.stats.timers_fired, "faults": self.stats.faults,
                "max_queue_len": self.stats.max_queue_len,
            }),
        );
        value
    }

    /// The availability the scenario's `availability` check measured, when it has one that ran.
    pub fn availability_check_figure(&self) -> Option<f64> {
        self.checks.iter().find(|c| c.name == "availability").and_then(|c| c.details.get("availability")?.as_f64())
    }

    /// The compact, deterministic summary a sweep writes per seed (no wall time, no reports):
    /// identical whatever the number of worker threads.
    pub fn summary_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("scenario".into(), json!(self.scenario));
        object.insert("file".into(), json!(self.file));
        object.insert("protocol".into(), json!(self.protocol));
        object.insert("seed".into(), json!(self.seed));
        object.insert("trace_hash".into(), json!(self.trace_hash_hex()));
        object.insert("valid".into(), self.valid.to_json());
        object.insert("expect".into(), json!(self.expect.as_str()));
        object.insert("outcome_ok".into(), json!(self.outcome_ok()));
        object.insert("ops".into(), json!(self.ops));
        object.insert("ok".into(), json!(self.ok));
        object.insert("fail".into(), json!(self.fail));
        object.insert("info".into(), json!(self.info));
        object.insert("availability".into(), json!(self.availability));
        object.insert(
            "latency_ns".into(),
            json!({"p50": self.latency_ns.p50, "p95": self.latency_ns.p95, "p99": self.latency_ns.p99, "max": self.latency_ns.max}),
        );
        object.insert("messages_per_op".into(), json!(self.messages_per_op));
        // What the scenario's own availability check measured (its window, operation kinds and
        // per-client averaging), which can differ a lot from the overall ok fraction above: a CAP
        // comparison across seeds plots this one when it is there.
        if let Some(measured) = self.availability_check_figure() {
            object.insert("availability_check".into(), json!(measured));
        }
        if let Some(stale) = self.cap.as_ref().and_then(|cap| cap.get("stale_reads")).and_then(|v| v.as_u64()) {
            object.insert("stale_reads".into(), json!(stale));
        }
        object.insert("events".into(), json!(self.stats.events));
        object.insert("sim_time_s".into(), json!(self.sim_time_s));
        object.insert("violations".into(), json!(self.violated_checks()));
        object.insert("replay".into(), json!(self.replay_command()));
        if let Some(swarm) = &self.swarm {
            object.insert("swarm".into(), swarm.clone());
        }
        serde_json::Value::Object(object)
    }
}

/// `detsim run FILE --seed N`.
pub fn replay_command(file: &str, seed: u64) -> String {
    let quoted = if file.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
        format!("'{}'", file.replace('\'', "'\\''"))
    } else {
        file.to_string()
    };
    format!("detsim run {quoted} --seed {seed}")
}

/// Where a run's trace goes.
#[derive(Default)]
pub enum TraceTo {
    /// Nowhere: only the hash is computed (fastest).
    #[default]
    Nowhere,
    /// A writer of JSON Lines (replay --trace filters and prints it).
    Writer(Box<dyn Write>),
}

/// Options of one run.
#[derive(Default)]
pub struct RunOptions {
    /// Write the run folder here (history.jsonl, trace.jsonl, run.json).
    pub out_dir: Option<PathBuf>,
    /// Where the trace goes when there is no run folder.
    pub trace: TraceTo,
    /// End the run at this simulated time instead of the scenario's duration (shrinking).
    pub duration_override_ns: Option<u64>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |error| RunError::Io { path: path.display().to_string(), error }
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Operation counts of a history.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    pub ops: u64,
    pub ok: u64,
    pub fail: u64,
    /// Unknown outcomes, including operations still pending at the end.
    pub info: u64,
    /// Operations still pending when the run ended (counted in `info`).
    pub pending_at_end: u64,
}

impl OpCounts {
    /// Fraction of operations that succeeded, leaving out those the end of the run cut short
    /// (they did not fail; the run just stopped). 1 when there were none.
    pub fn availability(&self) -> f64 {
        let decided = self.ops - self.pending_at_end;
        if decided == 0 {
            1.0
        } else {
            self.ok as f64 / decided as f64
        }
    }
}

/// Operation counts and latencies of successful operations.
pub fn measure(history: &History) -> (OpCounts, LatencySummary) {
    measure_selected(history, 0, u64::MAX, &[])
}

/// Operation counts and latencies of the operations invoked in `[from_ns, until_ns)` whose name is
/// one of `names` (every name when empty).
pub fn measure_selected(
    history: &History,
    from_ns: u64,
    until_ns: u64,
    names: &[String],
) -> (OpCounts, LatencySummary) {
    // Each process has at most one operation outstanding: pair each completion with its process'
    // pending invocation (and whether that invocation is in the window).
    let mut pending: BTreeMap<u64, (u64, bool)> = BTreeMap::new();
    let mut counts = OpCounts::default();
    let mut latencies = Vec::new();
    for event in &history.events {
        if event.kind == EventType::Invoke {
            let counted =
                (from_ns..until_ns).contains(&event.time_ns) && (names.is_empty() || names.contains(&event.f));
            counts.ops += u64::from(counted);
            pending.insert(event.process, (event.time_ns, counted));
            continue;
        }
        let Some((start_ns, true)) = pending.remove(&event.process) else {
            continue;
        };
        match event.kind {
            EventType::Ok => {
                counts.ok += 1;
                latencies.push(event.time_ns.saturating_sub(start_ns));
            }
            EventType::Fail => counts.fail += 1,
            EventType::Info => counts.info += 1,
            EventType::Invoke => unreachable!("handled above"),
        }
    }
    // Still pending at the end: outcome unknown.
    counts.pending_at_end = pending.values().filter(|(_, counted)| *counted).count() as u64;
    counts.info += counts.pending_at_end;
    latencies.sort_unstable();
    let latency = LatencySummary {
        p50: quantile(&latencies, 0.50),
        p95: quantile(&latencies, 0.95),
        p99: quantile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(0),
    };
    (counts, latency)
}

/// The availability the "availability" check judges: over the operations `[check]` selects, either
/// all together or as the mean of each client's.
fn checked_availability(history: &History, check: &crate::format::CheckOptions) -> f64 {
    let from_ns = check.availability_from.map_or(0, |d| d.as_ns());
    let until_ns = check.availability_until.map_or(u64::MAX, |d| d.as_ns());
    if !check.availability_per_client {
        return measure_selected(history, from_ns, until_ns, &check.availability_ops).0.availability();
    }
    let mut by_client: BTreeMap<String, History> = BTreeMap::new();
    for event in &history.events {
        let client = event.node.clone().unwrap_or_else(|| format!("process {}", event.process));
        by_client.entry(client).or_default().events.push(event.clone());
    }
    let per_client: Vec<f64> = by_client
        .values()
        .map(|events| measure_selected(events, from_ns, until_ns, &check.availability_ops).0)
        .filter(|counts| counts.ops > counts.pending_at_end)
        .map(|counts| counts.availability())
        .collect();
    if per_client.is_empty() {
        1.0
    } else {
        per_client.iter().sum::<f64>() / per_client.len() as f64
    }
}

/// How the availability check selects operations, in words ("read, write invoked from 2s until 5s").
fn availability_selection(check: &crate::format::CheckOptions) -> Option<String> {
    let mut words = Vec::new();
    if check.availability_per_client {
        words.push("per client".to_string());
    }
    if !check.availability_ops.is_empty() {
        words.push(format!("({})", check.availability_ops.join(", ")));
    }
    if check.availability_from.is_some() || check.availability_until.is_some() {
        words.push(format!(
            "invoked from {} until {}",
            check.availability_from.unwrap_or_default(),
            check.availability_until.map_or("the end".to_string(), |d| d.to_string())
        ));
    }
    (!words.is_empty()).then(|| words.join(" "))
}

/// Runs `loaded` with `seed`.
pub fn run_seed(loaded: &LoadedScenario, seed: u64, options: RunOptions) -> Result<RunOutcome, RunError> {
    let (plan, sim) = Plan::with_simulation(loaded, seed)?;
    run_simulation(loaded, &plan, sim, options)
}

/// Runs a plan built from `loaded` (building its simulation again).
pub fn run_plan(loaded: &LoadedScenario, plan: &Plan, options: RunOptions) -> Result<RunOutcome, RunError> {
    let (_, sim) = Plan::with_simulation(loaded, plan.seed)?;
    run_simulation(loaded, plan, sim, options)
}

/// Runs `sim`, the simulation `plan` was built with.
fn run_simulation(
    loaded: &LoadedScenario,
    plan: &Plan,
    mut sim: Box<dyn AnySimulation>,
    options: RunOptions,
) -> Result<RunOutcome, RunError> {
    let seed = plan.seed;
    let replay = replay_command(&loaded.file, seed);
    if let Some(dir) = &options.out_dir {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join("trace.jsonl");
        let file = File::create(&path).map_err(io_error(&path))?;
        sim.stream_trace_to(Box::new(BufWriter::with_capacity(1 << 16, file)));
    } else if let TraceTo::Writer(writer) = options.trace {
        sim.stream_trace_to(writer);
    }
    let simulation_error =
        |error: SimError| RunError::Simulation { file: loaded.file.clone(), seed, error, replay: replay.clone() };
    for (at, fault) in &plan.faults {
        sim.schedule_fault(SimTime(*at), fault.clone()).map_err(simulation_error)?;
    }
    let end_ns = options.duration_override_ns.unwrap_or(plan.duration_ns);
    let wall_start = Instant::now();
    sim.run_until(SimTime(end_ns)).map_err(simulation_error)?;
    sim.finish().map_err(simulation_error)?;
    let wall_s = wall_start.elapsed().as_secs_f64();

    let history = sim.take_history();
    let stats = sim.stats();
    let (counts, latency_ns) = measure(&history);
    let OpCounts { ops, ok, fail, info, .. } = counts;
    let availability = counts.availability();
    let messages_per_op = if ops == 0 { 0.0 } else { stats.sends as f64 / ops as f64 };

    let scenario = &plan.effective;
    let model = match &scenario.check.model {
        Some(name) => Some(name.parse().map_err(|message: String| ScenarioError::single(&loaded.file, message))?),
        None => default_model(plan.workload_kind),
    };
    let budget_ns = scenario.check.time_budget.map_or(DEFAULT_CHECK_BUDGET_S * 1_000_000_000, |d| d.as_ns());
    let fault_windows = sim.fault_windows();
    let nodes = sim.node_names();
    let mut context = CheckContext::new(&history, &scenario.check);
    context.model = model;
    context.txn_model = txn_model(plan.workload_kind);
    context.options = LinearizabilityOptions {
        strict_cas: scenario.check.strict_cas,
        time_budget: Some(std::time::Duration::from_nanos(budget_ns)),
        initial: scenario.check.initial.clone().unwrap_or_default(),
        ..LinearizabilityOptions::default()
    };
    context.availability = checked_availability(&history, &scenario.check);
    context.availability_window = availability_selection(&scenario.check);
    context.fault_windows = &fault_windows;
    context.faults = &plan.faults;
    context.end_ns = end_ns;
    context.seed = seed;
    context.node_names = &nodes;
    context.servers = plan.servers;
    let checks: Vec<CheckResult> =
        checks::expand(&scenario.checks).iter().map(|name| run_check(name, &context)).collect();
    let valid = checks.iter().fold(Validity::Valid, |all, check| all.and(check.valid));
    let cap = (plan.workload_kind != WorkloadKind::None).then(|| match context.cap() {
        Ok(report) => report.to_json(),
        Err(error) => json!({ "error": error }),
    });
    drop(context);

    let servers = nodes.iter().take(plan.servers).cloned().collect();
    let clients = nodes.iter().skip(plan.servers).take(plan.clients).cloned().collect();
    let outcome = RunOutcome {
        scenario: loaded.name.clone(),
        description: scenario.description.clone(),
        file: loaded.file.clone(),
        protocol: loaded.protocol.name.to_string(),
        seed,
        trace_hash: sim.trace_hash(),
        valid,
        expect: scenario.expect,
        ops,
        ok,
        fail,
        info,
        availability,
        latency_ns,
        messages_per_op,
        sim_time_s: end_ns as f64 / 1e9,
        wall_s,
        checks,
        fault_windows,
        cap,
        faults: plan.faults.clone(),
        servers,
        clients,
        nodes,
        swarm: plan.swarm.clone(),
        stats,
        history,
    };
    if let Some(dir) = &options.out_dir {
        write_run_folder(dir, &outcome)?;
    }
    Ok(outcome)
}

/// Writes history.jsonl and run.json into `dir` (trace.jsonl was streamed during the run).
pub fn write_run_folder(dir: &Path, outcome: &RunOutcome) -> Result<(), RunError> {
    let history_path = dir.join("history.jsonl");
    let file = File::create(&history_path).map_err(io_error(&history_path))?;
    let mut writer = BufWriter::new(file);
    outcome.history.write_jsonl(&mut writer).map_err(io_error(&history_path))?;
    writer.flush().map_err(io_error(&history_path))?;
    let run_path = dir.join("run.json");
    let text = serde_json::to_string_pretty(&outcome.to_json()).expect("run.json serialises");
    std::fs::write(&run_path, text + "\n").map_err(io_error(&run_path))?;
    Ok(())
}
