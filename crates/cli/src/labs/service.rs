//! The grader of the replicated-service labs (primary-backup, quorum, Raft, Multi-Paxos): the
//! student's servers run with detsim-protocols' workload clients, under random fault schedules drawn
//! from each seed; each run is checked for linearizability (or, in the AP quorum lab, availability and
//! convergence), liveness after heal, and the lab's budget (messages per operation, p99 latency).

use crate::labs::{grade_scenario, GradeOptions, Lab, RunOutcome, ScoreCard};
use crate::testing::schedule::{at, timeline};
use crate::testing::{fault_schedule, CaseSpace, FaultKinds, FaultWindow, NetworkConditions};
use detsim_check::{check_linearizable, operations, LinearizabilityOptions, Model, Operation, Outcome};
use detsim_core::{AnySimulation, Value};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use std::collections::BTreeMap;
use std::time::Duration;

/// Builds a ready-to-run cluster (servers `n1..nN` then clients `c1..cM`) from a spec.
pub type BuildService<'a> = &'a dyn Fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>;

/// What a service lab checks on every run.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceChecks {
    /// Linearizability against this model.
    pub linearizable: Option<Model>,
    /// Every client completes an operation invoked after the heal, before the run ends.
    pub live_after_heal: bool,
    /// Reads invoked at least this long after the heal agree, per key (eventual convergence).
    pub converged_after_ms: Option<u32>,
    /// At least this fraction of the operations invoked while faults were active completed ok.
    pub min_availability_during_faults: Option<f64>,
    /// Budget: messages sent per completed (ok) operation.
    pub max_messages_per_op: Option<f64>,
    /// Budget: 99th percentile latency of the ok operations invoked when no fault was active.
    pub max_p99_latency_ms: Option<f64>,
}

/// One scenario of a service lab.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub nodes: usize,
    pub clients: usize,
    pub workload: WorkloadKind,
    pub network: NetworkConditions,
    pub fault_kinds: FaultKinds,
    pub max_faults: usize,
    pub max_window_ms: u32,
    /// Faults start in `[0, horizon_ms)`; all is healed at `horizon_ms`.
    pub horizon_ms: u32,
    /// The run ends this long after the heal.
    pub after_heal_ms: u32,
    pub checks: ServiceChecks,
}

/// A service lab: its scenarios.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceLab {
    pub scenarios: Vec<ServiceScenario>,
}

fn checks_cp(model: Model, max_messages_per_op: f64, max_p99_latency_ms: f64) -> ServiceChecks {
    ServiceChecks {
        linearizable: Some(model),
        live_after_heal: true,
        converged_after_ms: None,
        min_availability_during_faults: None,
        max_messages_per_op: Some(max_messages_per_op),
        max_p99_latency_ms: Some(max_p99_latency_ms),
    }
}

/// The three scenarios of a CP (linearizable) service lab: no faults, network faults, node faults.
fn cp_scenarios(nodes: usize, max_messages_per_op: f64, max_p99_latency_ms: f64) -> Vec<ServiceScenario> {
    let checks = checks_cp(Model::CasRegister, max_messages_per_op, max_p99_latency_ms);
    let base = ServiceScenario {
        name: "steady",
        description: "no faults: every operation completes, within the message and latency budget",
        nodes,
        clients: 3,
        workload: WorkloadKind::Register,
        network: NetworkConditions::default(),
        fault_kinds: FaultKinds::NONE,
        max_faults: 0,
        max_window_ms: 0,
        horizon_ms: 1_000,
        after_heal_ms: 1_500,
        checks: checks.clone(),
    };
    vec![
        base.clone(),
        ServiceScenario {
            name: "partitions",
            description: "partitions, isolated nodes, one-way cuts, loss bursts, latency spikes; then heal",
            fault_kinds: FaultKinds::NETWORK,
            max_faults: 4,
            max_window_ms: 1_500,
            horizon_ms: 3_000,
            after_heal_ms: 4_000,
            network: NetworkConditions { loss_percent: 1, duplicate_percent: 1, ..NetworkConditions::default() },
            ..base.clone()
        },
        ServiceScenario {
            name: "crashes",
            description: "crash and restart, pause and resume, clock jumps; then heal",
            fault_kinds: FaultKinds { clock_jump: true, ..FaultKinds::NODES },
            max_faults: 4,
            max_window_ms: 1_500,
            horizon_ms: 3_000,
            after_heal_ms: 4_000,
            ..base
        },
    ]
}

/// Lab 4: primary-backup with failover (linearizable when failover is done right).
pub fn primary_backup() -> ServiceLab {
    ServiceLab { scenarios: cp_scenarios(3, 30.0, 300.0) }
}

/// Lab 6: Raft.
pub fn raft() -> ServiceLab {
    ServiceLab { scenarios: cp_scenarios(3, 30.0, 300.0) }
}

/// Lab 8: Multi-Paxos.
pub fn paxos() -> ServiceLab {
    ServiceLab { scenarios: cp_scenarios(3, 30.0, 300.0) }
}

/// Lab 5: quorum replication on the AP side of CAP: available through partitions, convergent after.
pub fn quorum() -> ServiceLab {
    let checks = ServiceChecks {
        linearizable: None,
        live_after_heal: true,
        converged_after_ms: Some(1_500),
        min_availability_during_faults: Some(0.9),
        max_messages_per_op: Some(20.0),
        max_p99_latency_ms: Some(300.0),
    };
    let base = ServiceScenario {
        name: "partitions",
        description: "partitions and isolated nodes: stay available on every side, converge after the heal",
        nodes: 3,
        clients: 3,
        workload: WorkloadKind::Register,
        network: NetworkConditions::default(),
        fault_kinds: FaultKinds { isolate: true, partition: true, ..FaultKinds::NONE },
        max_faults: 3,
        max_window_ms: 1_500,
        horizon_ms: 3_000,
        after_heal_ms: 4_000,
        checks,
    };
    let crashes = ServiceScenario {
        name: "crashes",
        description: "a replica crashes and restarts: no acknowledged write is lost once it is back",
        fault_kinds: FaultKinds::NODES,
        ..base.clone()
    };
    ServiceLab { scenarios: vec![base, crashes] }
}

/// The cluster spec of one run of `scenario` with `seed`.
pub fn scenario_spec(scenario: &ServiceScenario, seed: u64, params: &serde_json::Value) -> ClusterSpec {
    let workload = WorkloadSpec {
        kind: scenario.workload,
        clients: scenario.clients,
        concurrency: 1,
        keys: 1,
        timeout_ns: 1_000_000_000,
        think_time_ns: 10_000_000,
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(seed, scenario.nodes, workload);
    spec.network = scenario.network.to_config();
    spec.params = params.clone();
    spec
}

/// Runs `scenario` once: builds the cluster, schedules `faults`, runs to the end, judges the run.
pub fn run_scenario(
    scenario: &ServiceScenario,
    build: BuildService<'_>,
    params: &serde_json::Value,
    seed: u64,
    faults: &[FaultWindow],
) -> RunOutcome {
    let fail = |check: &str, why: String| RunOutcome { failure: Some((check.to_string(), why)), figures: Vec::new() };
    let spec = scenario_spec(scenario, seed, params);
    let mut sim = match build(&spec) {
        Ok(sim) => sim,
        Err(error) => return fail("build", format!("the cluster could not be built: {error}")),
    };
    let servers = scenario.nodes as u32;
    for timed in timeline(faults, servers, scenario.horizon_ms) {
        if let Err(error) = sim.schedule_fault(at(timed.at_ms), timed.fault) {
            return fail("faults", error.to_string());
        }
    }
    let end_ms = scenario.horizon_ms + scenario.after_heal_ms;
    if let Err(error) = sim.run_until(at(end_ms)) {
        return fail("run", format!("the run stopped: {error}"));
    }
    let stats = sim.stats();
    let history = sim.take_history();
    let ops = match operations(&history) {
        Ok(ops) => ops,
        Err(error) => return fail("history", format!("malformed history: {error:?}")),
    };
    judge(scenario, faults, &ops, &history, stats.sends)
}

fn judge(
    scenario: &ServiceScenario,
    faults: &[FaultWindow],
    ops: &[Operation],
    history: &detsim_core::History,
    sends: u64,
) -> RunOutcome {
    let checks = &scenario.checks;
    let heal_ns = u64::from(scenario.horizon_ms) * 1_000_000;
    let ok_ops = ops.iter().filter(|op| op.outcome == Outcome::Ok).count();
    let mut outcome = RunOutcome::default();
    let messages_per_op = sends as f64 / ok_ops.max(1) as f64;
    outcome.figures.push(("messages per op".into(), messages_per_op));
    // Latency of ok operations invoked outside every fault window.
    let windows_ns: Vec<(u64, u64)> = faults
        .iter()
        .map(|w| {
            let start = u64::from(w.start_ms.min(scenario.horizon_ms)) * 1_000_000;
            let end = u64::from(w.start_ms.saturating_add(w.duration_ms).min(scenario.horizon_ms)) * 1_000_000;
            (start, end)
        })
        .collect();
    let during_fault = |ns: u64| windows_ns.iter().any(|(s, e)| *s <= ns && ns < *e);
    let mut latencies_ms: Vec<f64> = ops
        .iter()
        .filter(|op| op.outcome == Outcome::Ok && !during_fault(op.invoke_ns))
        .filter_map(|op| op.complete_ns.map(|c| (c - op.invoke_ns) as f64 / 1e6))
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    let p99_ms = latencies_ms.get((latencies_ms.len() * 99).div_ceil(100).saturating_sub(1)).copied().unwrap_or(0.0);
    outcome.figures.push(("p99 latency ms".into(), p99_ms));
    let mut fail = |check: &str, why: String| {
        if outcome.failure.is_none() {
            outcome.failure = Some((check.to_string(), why));
        }
    };
    if ok_ops == 0 {
        fail(
            "progress",
            format!(
                "no operation completed ok ({} invoked, {} messages sent). Do your servers answer every \
                 ClientRequest with a ClientReply carrying the request's process and seq?",
                ops.len(),
                sends
            ),
        );
    }
    if let Some(model) = checks.linearizable {
        let options = LinearizabilityOptions { time_budget: Some(Duration::from_secs(20)), ..Default::default() };
        match check_linearizable(history, model, &options) {
            Ok(verdict) if verdict.is_valid() => {}
            Ok(verdict) => fail("linearizable", format!("{verdict}")),
            Err(error) => fail("linearizable", format!("malformed history: {error:?}")),
        }
    }
    if let Some(min) = checks.min_availability_during_faults {
        let during: Vec<&Operation> = ops.iter().filter(|op| during_fault(op.invoke_ns)).collect();
        if !during.is_empty() {
            let available = during.iter().filter(|op| op.outcome == Outcome::Ok).count() as f64 / during.len() as f64;
            outcome.figures.push(("unavailability during faults".into(), 1.0 - available));
            if available < min {
                fail(
                    "availability",
                    format!(
                        "only {:.0}% of the {} operations invoked during faults completed (need {:.0}%)",
                        available * 100.0,
                        during.len(),
                        min * 100.0
                    ),
                );
            }
        }
    }
    if let Some(after_ms) = checks.converged_after_ms {
        let from_ns = heal_ns + u64::from(after_ms) * 1_000_000;
        let mut last_read: BTreeMap<Option<Value>, BTreeMap<u64, (Value, u64)>> = BTreeMap::new();
        for op in ops.iter().filter(|op| op.outcome == Outcome::Ok && op.f == "read" && op.invoke_ns >= from_ns) {
            let client = op.process % scenario.clients as u64;
            last_read.entry(op.key.clone()).or_default().insert(client, (op.output.clone(), op.id as u64));
        }
        for (key, reads) in &last_read {
            let values: std::collections::BTreeSet<&Value> = reads.values().map(|(v, _)| v).collect();
            if values.len() > 1 {
                let described: Vec<String> =
                    reads.iter().map(|(client, (v, id))| format!("c{} read {v} (op #{id})", client + 1)).collect();
                fail(
                    "converged",
                    format!(
                        "{}ms after the heal, clients' last reads of {} still disagree: {}",
                        after_ms,
                        key.as_ref().map_or("the register".to_string(), |k| format!("key {k}")),
                        described.join(", ")
                    ),
                );
            }
        }
    }
    if checks.live_after_heal {
        let mut recovered_ms: Vec<Option<f64>> = vec![None; scenario.clients];
        for op in ops.iter().filter(|op| op.outcome == Outcome::Ok && op.invoke_ns >= heal_ns) {
            let client = (op.process % scenario.clients as u64) as usize;
            let done_ms = op.complete_ns.map(|c| (c - heal_ns) as f64 / 1e6);
            if let Some(done_ms) = done_ms {
                recovered_ms[client] = Some(recovered_ms[client].map_or(done_ms, |best: f64| best.min(done_ms)));
            }
        }
        let stuck: Vec<String> =
            recovered_ms.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| format!("c{}", i + 1)).collect();
        if stuck.is_empty() {
            let worst = recovered_ms.iter().flatten().copied().fold(0.0, f64::max);
            outcome.figures.push(("recovery after heal ms".into(), worst));
        } else {
            fail(
                "live after heal",
                format!(
                    "{} completed no operation in the {}ms after the heal (a majority is connected then)",
                    stuck.join(", "),
                    scenario.after_heal_ms
                ),
            );
        }
    }
    if let Some(max) = checks.max_messages_per_op {
        if messages_per_op > max {
            fail("messages per op", format!("{messages_per_op:.1} messages per completed operation (budget {max})"));
        }
    }
    if let Some(max) = checks.max_p99_latency_ms {
        if p99_ms > max {
            fail("p99 latency", format!("p99 latency {p99_ms:.1}ms outside fault windows (budget {max}ms)"));
        }
    }
    outcome
}

/// Grades `build` (a student's cluster, or a registry protocol's) on the service lab `lab`.
pub fn grade(
    lab: &Lab,
    service: &ServiceLab,
    build: BuildService<'_>,
    params: &serde_json::Value,
    graded: &str,
    options: &GradeOptions,
) -> ScoreCard {
    let mut card = ScoreCard {
        lab: lab.name.to_string(),
        title: lab.title.to_string(),
        graded: graded.to_string(),
        scenarios: Vec::new(),
    };
    for scenario in &service.scenarios {
        let space = CaseSpace {
            max_faults: scenario.max_faults,
            fault_kinds: if scenario.fault_kinds.is_empty() { FaultKinds::NODES } else { scenario.fault_kinds },
            max_window_ms: scenario.max_window_ms,
            ..CaseSpace::default()
        };
        let schedules = fault_schedule(scenario.nodes as u32, scenario.horizon_ms, &space);
        let mut budgets: Vec<(&str, f64)> = Vec::new();
        if let Some(max) = scenario.checks.max_messages_per_op {
            budgets.push(("messages per op", max));
        }
        if let Some(max) = scenario.checks.max_p99_latency_ms {
            budgets.push(("p99 latency ms", max));
        }
        let mut any_progress = false;
        let mut result =
            grade_scenario(scenario.name, scenario.description, &schedules, options, &budgets, |seed, faults| {
                let outcome = run_scenario(scenario, build, params, seed, faults);
                any_progress |= outcome.failure.as_ref().is_none_or(|(check, _)| check != "progress");
                outcome
            });
        if result.runs > 0 && !any_progress {
            result.hints.push(
                "no run completed a single operation: start with the client path (answer ClientRequest, \
                 redirect to the leader you know), then replication"
                    .into(),
            );
        }
        card.scenarios.push(result);
    }
    card
}
