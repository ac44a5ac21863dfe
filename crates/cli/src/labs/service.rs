//! The grader of the replicated-service labs (primary-backup, quorum, Raft, Multi-Paxos): the
//! servers under test run with detsim-protocols' workload clients under random fault schedules drawn
//! from each seed; each run is checked for linearizability (or, in the AP quorum lab, availability
//! during faults and fresh reads after the heal), liveness after heal, and the lab's budget
//! (messages per operation, p99 latency) in the fault-free scenario.

use crate::labs::report::RunFolder;
use crate::labs::{grade_scenario, GradeOptions, Lab, Mutant, RunOutcome, ScenarioRun, ScoreCard, Variant};
use crate::testing::schedule::{at, timeline};
use crate::testing::{fault_schedule, CaseSpace, FaultKinds, FaultWindow, NetworkConditions, WindowFault};
use detsim_check::{
    check_linearizable, check_transactions, operations, LinearizabilityOptions, Model, Operation, Outcome, TxnOptions,
    Validity,
};
use detsim_core::{AnySimulation, History, Value};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use std::collections::BTreeMap;
use std::path::Path;

/// Builds a ready-to-run cluster (servers `n1..nN` then clients `c1..cM`) from a spec.
pub type BuildService<'a> = &'a dyn Fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>;

/// What a service lab checks on every run.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceChecks {
    /// Linearizability against this model.
    pub linearizable: Option<Model>,
    /// Transactions checked for this consistency model (`strict-serializable`, ...; Elle's analysis).
    pub transactions: Option<&'static str>,
    /// Every client completes an operation invoked after the heal, before the run ends.
    pub live_after_heal: bool,
    /// Reads invoked at least this long after the heal see every write that completed before they
    /// began (no stale reads once the store has had time to converge).
    pub fresh_reads_after_ms: Option<u32>,
    /// At least this fraction of the reads and writes invoked while a fault was active completed ok.
    pub min_availability_during_faults: Option<f64>,
    /// Budget: messages sent per completed (ok) operation.
    pub max_messages_per_op: Option<f64>,
    /// Budget: 99th percentile latency of the ok operations invoked after the warm-up.
    pub max_p99_latency_ms: Option<f64>,
    /// Operations invoked before this (true time) do not count towards the latency budget: the
    /// cluster may still be electing its first leader.
    pub warm_up_ms: u32,
}

/// One scenario of a service lab.
#[derive(Clone, Debug)]
pub struct ServiceScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub nodes: usize,
    pub clients: usize,
    pub keys: usize,
    pub workload: WorkloadKind,
    pub network: NetworkConditions,
    pub fault_kinds: FaultKinds,
    /// Each side of a partition has at least this many servers.
    pub min_partition_side: u32,
    /// Partitions may cut clients off along with their side.
    pub partition_clients: bool,
    /// A fault-schedule strategy of the scenario's own, instead of the one the fields above draw.
    pub custom_faults: Option<fn(&ServiceScenario) -> BoxedStrategy<Vec<FaultWindow>>>,
    pub max_faults: usize,
    pub min_window_ms: u32,
    pub max_window_ms: u32,
    /// Faults start in `[0, horizon_ms)`; all is healed at `horizon_ms`.
    pub horizon_ms: u32,
    /// The run ends this long after the heal.
    pub after_heal_ms: u32,
    pub checks: ServiceChecks,
}

/// A service lab: its scenarios.
#[derive(Clone, Debug)]
pub struct ServiceLab {
    pub scenarios: Vec<ServiceScenario>,
}

/// The three scenarios of a CP (linearizable) service lab: no faults (with the budget), network
/// faults, node faults.
fn cp_scenarios(nodes: usize, max_messages_per_op: f64, max_p99_latency_ms: f64) -> Vec<ServiceScenario> {
    let checks = ServiceChecks {
        linearizable: Some(Model::CasRegister),
        transactions: None,
        live_after_heal: true,
        fresh_reads_after_ms: None,
        min_availability_during_faults: None,
        max_messages_per_op: None,
        max_p99_latency_ms: None,
        warm_up_ms: 0,
    };
    let steady = ServiceScenario {
        name: "steady",
        description: "no faults: linearizable, and within the message and latency budget (latency counted after a \
                      600 ms warm-up)",
        nodes,
        clients: 3,
        keys: 1,
        workload: WorkloadKind::Register,
        network: NetworkConditions::default(),
        fault_kinds: FaultKinds::NONE,
        min_partition_side: 1,
        partition_clients: false,
        custom_faults: None,
        max_faults: 0,
        min_window_ms: 0,
        max_window_ms: 0,
        horizon_ms: 1_000,
        after_heal_ms: 1_500,
        checks: ServiceChecks {
            max_messages_per_op: Some(max_messages_per_op),
            max_p99_latency_ms: Some(max_p99_latency_ms),
            warm_up_ms: 600,
            ..checks.clone()
        },
    };
    let partitions = ServiceScenario {
        name: "partitions",
        description: "partitions (some clients cut off with a minority), isolated servers, one-way cuts, loss \
                      bursts, latency spikes, a lossy network; linearizable throughout, live once healed",
        fault_kinds: FaultKinds::NETWORK,
        partition_clients: true,
        max_faults: 4,
        max_window_ms: 1_500,
        horizon_ms: 3_000,
        after_heal_ms: 3_000,
        network: NetworkConditions { loss_percent: 1, duplicate_percent: 1, ..NetworkConditions::default() },
        checks: checks.clone(),
        ..steady.clone()
    };
    let crashes = ServiceScenario {
        name: "crashes",
        description: "crash and restart from storage, pause and resume, clock jumps; linearizable throughout, \
                      live once everyone is back",
        fault_kinds: FaultKinds { clock_jump: true, ..FaultKinds::NODES },
        max_faults: 4,
        max_window_ms: 1_500,
        horizon_ms: 3_000,
        after_heal_ms: 3_000,
        checks: checks.clone(),
        ..steady.clone()
    };
    let split_brain = ServiceScenario {
        name: "split-brain",
        description: "long partitions that cut a minority of servers off together with some clients: a server \
                      that was leader must not serve those clients stale reads or conflicting writes",
        fault_kinds: FaultKinds { partition: true, ..FaultKinds::NONE },
        partition_clients: true,
        max_faults: 2,
        min_window_ms: 500,
        max_window_ms: 1_500,
        horizon_ms: 3_000,
        after_heal_ms: 3_000,
        checks: checks.clone(),
        ..steady.clone()
    };
    vec![steady, partitions, split_brain, crashes]
}

/// The scenarios of the AP quorum lab: available on every side of a partition, fresh after the heal.
fn ap_scenarios() -> Vec<ServiceScenario> {
    let checks = ServiceChecks {
        linearizable: None,
        transactions: None,
        live_after_heal: true,
        fresh_reads_after_ms: Some(1_000),
        min_availability_during_faults: Some(0.8),
        max_messages_per_op: None,
        max_p99_latency_ms: None,
        warm_up_ms: 0,
    };
    let steady = ServiceScenario {
        name: "steady",
        description: "no faults: every read sees the writes completed before it, within the message and latency budget",
        nodes: 5,
        clients: 3,
        keys: 3,
        workload: WorkloadKind::Register,
        network: NetworkConditions::default(),
        fault_kinds: FaultKinds::NONE,
        min_partition_side: 1,
        partition_clients: false,
        custom_faults: None,
        max_faults: 0,
        min_window_ms: 0,
        max_window_ms: 0,
        horizon_ms: 1_000,
        after_heal_ms: 1_500,
        checks: ServiceChecks {
            fresh_reads_after_ms: Some(0),
            min_availability_during_faults: None,
            max_messages_per_op: Some(12.0),
            max_p99_latency_ms: Some(60.0),
            ..checks.clone()
        },
    };
    let partitions = ServiceScenario {
        name: "partitions",
        description: "partitions into two sides of at least two servers, isolated servers: reads and writes keep \
                      succeeding on every side (AP); a second after the heal no read is stale",
        fault_kinds: FaultKinds { isolate: true, partition: true, ..FaultKinds::NONE },
        min_partition_side: 2,
        max_faults: 3,
        max_window_ms: 1_500,
        horizon_ms: 3_000,
        after_heal_ms: 3_000,
        checks: checks.clone(),
        ..steady.clone()
    };
    let crashes = ServiceScenario {
        name: "crashes",
        description: "a replica crashes and restarts from its storage: no acknowledged write is lost",
        fault_kinds: FaultKinds::NODES,
        max_faults: 3,
        max_window_ms: 1_500,
        horizon_ms: 3_000,
        after_heal_ms: 3_000,
        checks,
        ..steady.clone()
    };
    vec![steady, partitions, crashes]
}

/// The scenarios of the two-phase commit lab: coordinators `n1 n2`, participants `n3..n5`,
/// list-append transactions; strictly serializable (so all-or-nothing) throughout, live after heal.
fn commit_scenarios() -> Vec<ServiceScenario> {
    let mut scenarios = cp_scenarios(5, 24.0, 80.0);
    let split_brain = scenarios.iter().position(|s| s.name == "split-brain").expect("a CP lab has split-brain");
    // Instead of split brain (there is no leader), crash coordinators often while participants are
    // cut off: what a coordinator decided must survive its crash.
    scenarios[split_brain] = ServiceScenario {
        name: "coordinator-crashes",
        custom_faults: Some(coordinator_crashes),
        max_faults: 12,
        min_window_ms: 50,
        max_window_ms: 400,
        ..scenarios[split_brain].clone()
    };
    for scenario in &mut scenarios {
        scenario.workload = WorkloadKind::ListAppend;
        scenario.clients = 4;
        scenario.keys = 8;
        scenario.checks.linearizable = None;
        scenario.checks.transactions = Some("strict-serializable");
        scenario.description = match scenario.name {
            "steady" => "no faults: strictly serializable transactions within the message and latency budget",
            "coordinator-crashes" => {
                "coordinators crash often and briefly while participants are cut off: a commit the coordinator \
                 announced must reach every participant, and one it did not must not"
            }
            "partitions" => {
                "partitions, isolated servers, one-way cuts, loss bursts, latency spikes: every transaction \
                 all-or-nothing, strictly serializable; live once healed"
            }
            _ => {
                "coordinators and participants crash and restart from their logs, pause, jump clocks: in-doubt \
                 participants block rather than guess; live once everyone is back"
            }
        };
    }
    scenarios
}

/// Fault windows of the `coordinator-crashes` scenario: crashes of the coordinators `n1 n2` and
/// isolations of the participants `n3..n5`.
fn coordinator_crashes(scenario: &ServiceScenario) -> BoxedStrategy<Vec<FaultWindow>> {
    let fault = prop_oneof![
        (0u32..2).prop_map(|node| WindowFault::Crash { node }),
        (2u32..scenario.nodes as u32).prop_map(|node| WindowFault::Isolate { node }),
    ];
    let window = (0..scenario.horizon_ms, scenario.min_window_ms..=scenario.max_window_ms, fault)
        .prop_map(|(start_ms, duration_ms, fault)| FaultWindow { start_ms, duration_ms, fault });
    proptest::collection::vec(window, 0..=scenario.max_faults).boxed()
}

/// The service lab behind `lab`.
pub fn service_lab(lab: &str) -> Option<ServiceLab> {
    match lab {
        "raft" => Some(ServiceLab { scenarios: cp_scenarios(3, 12.0, 80.0) }),
        "paxos" => Some(ServiceLab { scenarios: cp_scenarios(3, 15.0, 80.0) }),
        "primary-backup" => Some(ServiceLab { scenarios: cp_scenarios(3, 20.0, 120.0) }),
        "quorum" => Some(ServiceLab { scenarios: ap_scenarios() }),
        "two-phase-commit" => Some(ServiceLab { scenarios: commit_scenarios() }),
        _ => None,
    }
}

/// Lab 4: primary-backup with failover.
pub fn primary_backup_lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "async",
            bug: "asynchronous replication: the primary answers before its backups have the operation",
            params: r#"{"mode":"async"}"#,
            seeds: 12,
        },
        Mutant {
            name: "no-fencing",
            bug: "backups do not compare view numbers, so a deposed primary keeps completing operations",
            params: r#"{"mutant_no_fencing":true}"#,
            seeds: 8,
        },
        Mutant {
            name: "ack-before-apply",
            bug: "a backup acknowledges an operation on arrival, before it applied it and those before it",
            params: r#"{"mutant_ack_before_apply":true}"#,
            seeds: 50,
        },
    ];
    Lab {
        number: 4,
        name: "primary-backup",
        title: "Primary-backup replication with a view service and failover",
        guide: "docs/labs/04-primary-backup.md",
        reference: "primary-backup",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/primary-backup/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/primary-backup/tests/grade.rs")),
        ],
        grade_variant: grade_registry_variant,
    }
}

/// Lab 6: Raft.
pub fn raft_lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "stale-reads",
            bug: "the leader answers reads from its own state without confirming it still leads",
            params: r#"{"mutants":{"stale_reads":true}}"#,
            // A deposed leader needs a client cut off with it, and a write on the other side.
            seeds: 80,
        },
        Mutant {
            name: "vote-without-log-check",
            bug: "votes are granted without checking that the candidate's log is up to date",
            params: r#"{"mutants":{"vote_without_log_check":true}}"#,
            seeds: 8,
        },
    ];
    Lab {
        number: 6,
        name: "raft",
        title: "Raft: leader election, log replication, linearizable reads",
        guide: "docs/labs/06-raft.md",
        reference: "raft",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/raft/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/raft/tests/grade.rs")),
        ],
        grade_variant: grade_registry_variant,
    }
}

/// Lab 7: Multi-Paxos.
pub fn paxos_lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "skip-phase-1",
            bug: "a server that times out makes itself leader without running phase 1",
            params: r#"{"mutant_skip_phase1":true}"#,
            seeds: 8,
        },
        Mutant {
            name: "ignore-accepted",
            bug: "a new leader ignores the values the acceptors reported in phase 1",
            params: r#"{"mutant_ignore_accepted":true}"#,
            seeds: 8,
        },
    ];
    Lab {
        number: 7,
        name: "paxos",
        title: "Multi-Paxos: a replicated log from single-decree Paxos",
        guide: "docs/labs/07-paxos.md",
        reference: "multi-paxos",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/paxos/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/paxos/tests/grade.rs")),
        ],
        grade_variant: grade_registry_variant,
    }
}

/// Lab 5: quorum replication and CAP.
pub fn quorum_lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "repair-restamps",
            bug: "read repair writes the value it read back as a fresh version, overwriting newer writes",
            params: r#"{"mutant_repair_restamps":true}"#,
            seeds: 8,
        },
        Mutant {
            name: "no-convergence",
            bug: "no hinted handoff, read repair or anti-entropy: replicas that missed writes stay behind",
            params: r#"{"read_repair":false,"anti_entropy":false,"sloppy_quorum":false,"read_quorum_r":1,"write_quorum_w":1}"#,
            // A replica must miss a write and be read before the key is written again.
            seeds: 10,
        },
        Mutant {
            name: "strict-quorum",
            bug:
                "strict quorums without sloppy fallbacks: writes fail while the home replicas are cut off (CP, not AP)",
            params: r#"{"sloppy_quorum":false}"#,
            // A partition must cut two of a key's three homes off from a busy coordinator.
            seeds: 20,
        },
    ];
    Lab {
        number: 5,
        name: "quorum",
        title: "Quorum replication and CAP: a Dynamo-style AP store",
        guide: "docs/labs/05-quorum.md",
        reference: "dynamo",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/quorum/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/quorum/tests/grade.rs")),
        ],
        grade_variant: grade_registry_variant,
    }
}

/// Lab 8: two-phase commit.
pub fn two_phase_commit_lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "heuristic-commit",
            bug: "an in-doubt participant commits on its own after 200 ms instead of waiting for the decision",
            params: r#"{"participant":{"bug_heuristic_commit_after_ns":200000000}}"#,
            seeds: 8,
        },
        Mutant {
            name: "no-decision-log",
            bug: "the coordinator announces a commit without logging it first, and forgets it in a crash",
            params: r#"{"coordinator":{"bug_no_decision_log":true}}"#,
            // A coordinator must crash while a participant it sent a commit to is cut off.
            seeds: 60,
        },
    ];
    Lab {
        number: 8,
        name: "two-phase-commit",
        title: "Two-phase commit: atomic transactions across participants, and blocking",
        guide: "docs/labs/08-two-phase-commit.md",
        reference: "two-phase-commit",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/two-phase-commit/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/two-phase-commit/tests/grade.rs")),
        ],
        grade_variant: grade_registry_variant,
    }
}

/// Grades a service lab's registry protocol (the reference, a mutant, other parameters).
fn grade_registry_variant(lab: &Lab, variant: &Variant, options: &GradeOptions) -> Result<ScoreCard, String> {
    let service = service_lab(lab.name).ok_or_else(|| format!("{} is not a service lab", lab.name))?;
    let entry = detsim_protocols::find(lab.reference)
        .ok_or_else(|| format!("the reference protocol {} is not in detsim-protocols' registry", lab.reference))?;
    let params = lab.variant_params(variant);
    // Bad parameters are the user's mistake: say so before grading anything.
    let probe = scenario_spec(&service.scenarios[0], 0, &params);
    (entry.build)(&probe).map_err(|e| format!("{}: {e}", lab.reference))?;
    let build = move |spec: &ClusterSpec| (entry.build)(spec);
    Ok(grade(lab, &service, &build, &params, &lab.variant_label(variant), options))
}

/// Grades a student's servers (what the skeleton's `tests/grade.rs` calls): the lab's scenarios
/// over `DETSIM_LAB_SEEDS` seeds (default 20), or the one run in `DETSIM_LAB_REPLAY`.
pub fn grade_student(lab: &str, build: fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>) -> ScoreCard {
    let lab = crate::labs::find(lab).unwrap_or_else(|| panic!("no lab named {lab}"));
    let service = service_lab(lab.name).unwrap_or_else(|| panic!("{} is not a service lab", lab.name));
    let options = GradeOptions::from_env();
    grade(&lab, &service, &build, &serde_json::Value::Null, "your implementation", &options)
}

/// The cluster spec of one run of `scenario` with `seed`.
pub fn scenario_spec(scenario: &ServiceScenario, seed: u64, params: &serde_json::Value) -> ClusterSpec {
    let workload = WorkloadSpec {
        kind: scenario.workload,
        clients: scenario.clients,
        concurrency: 1,
        keys: scenario.keys,
        timeout_ns: 1_000_000_000,
        think_time_ns: 10_000_000,
        ..WorkloadSpec::default()
    };
    let mut spec = ClusterSpec::new(seed, scenario.nodes, workload);
    spec.network = scenario.network.to_config();
    spec.params = params.clone();
    spec.limits = run_limits();
    spec
}

/// Limits of one graded run: a reference run has tens of thousands of events; a message storm or a
/// timer loop in a student's code stops at these instead of running for minutes.
pub fn run_limits() -> detsim_core::Limits {
    detsim_core::Limits { max_events: 5_000_000, max_history_len: 500_000, ..detsim_core::Limits::default() }
}

/// Runs `scenario` once: builds the cluster, schedules `faults`, runs to the end, judges the run;
/// with `folder`, also writes the run folder (trace, history, run.json, report.html) there.
pub fn run_scenario(
    scenario: &ServiceScenario,
    build: BuildService<'_>,
    params: &serde_json::Value,
    seed: u64,
    faults: &[FaultWindow],
    folder: Option<&Path>,
) -> RunOutcome {
    let spec = scenario_spec(scenario, seed, params);
    let mut sim = match build(&spec) {
        Ok(sim) => sim,
        Err(error) => return RunOutcome::failed_with("build", format!("the cluster could not be built: {error}")),
    };
    let servers = scenario.nodes as u32;
    for timed in timeline(faults, servers, scenario.horizon_ms) {
        if let Err(error) = sim.schedule_fault(at(timed.at_ms), timed.fault) {
            return RunOutcome::failed_with("faults", error.to_string());
        }
    }
    let run_folder = folder.map(|dir| RunFolder::start(dir, sim.as_mut()));
    let end_ms = scenario.horizon_ms + scenario.after_heal_ms;
    if let Err(error) = sim.run_until(at(end_ms)) {
        return RunOutcome::failed_with(
            "run",
            format!("the run stopped: {error} (a message storm, or a timer that re-arms itself with no delay?)"),
        );
    }
    let stats = sim.stats();
    let history = sim.take_history();
    let mut outcome = match operations(&history) {
        Ok(ops) => judge(scenario, faults, &ops, &history, stats.sends),
        Err(error) => RunOutcome::failed_with("history", format!("malformed history: {error:?}")),
    };
    if let Some(started) = run_folder {
        let info = serde_json::json!({
            "scenario": scenario.name,
            "description": scenario.description,
            "seed": seed,
            "trace_hash": format!("{:016x}", sim.trace_hash()),
            "valid": outcome.failure.is_none(),
            "checks": [{
                "name": outcome.failure.as_ref().map_or("all checks", |(check, _)| check.as_str()),
                "valid": outcome.failure.is_none(),
                "report": outcome.failure.as_ref().map_or(String::new(), |(_, why)| why.clone()),
            }],
            "servers": (0..scenario.nodes).map(ClusterSpec::server_name).collect::<Vec<_>>(),
            "clients": (0..scenario.clients).map(ClusterSpec::client_name).collect::<Vec<_>>(),
            "nodes": sim.node_names(),
            "sim_time_s": f64::from(end_ms) / 1e3,
        });
        outcome.report = Some(started.and_then(|folder| folder.finish(sim.as_mut(), &history, info)));
    }
    outcome
}

fn judge(
    scenario: &ServiceScenario,
    faults: &[FaultWindow],
    ops: &[Operation],
    history: &History,
    sends: u64,
) -> RunOutcome {
    let checks = &scenario.checks;
    let heal_ns = u64::from(scenario.horizon_ms) * 1_000_000;
    let ok_ops = ops.iter().filter(|op| op.outcome == Outcome::Ok).count();
    let mut outcome = RunOutcome::default();
    let messages_per_op = sends as f64 / ok_ops.max(1) as f64;
    outcome.figure("messages per op", messages_per_op);
    let windows_ns: Vec<(u64, u64)> = faults
        .iter()
        .map(|w| {
            let start = u64::from(w.start_ms.min(scenario.horizon_ms)) * 1_000_000;
            let end = u64::from(w.start_ms.saturating_add(w.duration_ms).min(scenario.horizon_ms)) * 1_000_000;
            (start, end)
        })
        .collect();
    let during_fault = |ns: u64| windows_ns.iter().any(|(s, e)| *s <= ns && ns < *e);
    let warm_up_ns = u64::from(checks.warm_up_ms) * 1_000_000;
    let mut latencies_ms: Vec<f64> = ops
        .iter()
        .filter(|op| op.outcome == Outcome::Ok && op.invoke_ns >= warm_up_ns)
        .filter_map(|op| op.complete_ns.map(|c| (c - op.invoke_ns) as f64 / 1e6))
        .collect();
    latencies_ms.sort_by(f64::total_cmp);
    let p99_ms = latencies_ms.get((latencies_ms.len() * 99).div_ceil(100).saturating_sub(1)).copied().unwrap_or(0.0);
    outcome.figure("p99 latency ms", p99_ms);
    if ok_ops == 0 {
        outcome.fail(
            "progress",
            format!(
                "no operation completed ({} invoked, {} messages sent). Does every server answer each \
                 ClientRequest with ClientReply::to(&request, result), sent back to the client it came from?",
                ops.len(),
                sends
            ),
        );
    }
    if let Some(model) = checks.linearizable {
        // A memory budget, not a time budget: the verdict must not depend on the machine's speed.
        let options = LinearizabilityOptions { max_memory_entries: 5_000_000, ..Default::default() };
        match check_linearizable(history, model, &options) {
            Ok(verdict) if verdict.valid == Validity::Valid => {}
            Ok(verdict) if verdict.valid == Validity::Unknown => {
                outcome.fail("linearizable", format!("the checker gave up (history too hard to decide): {verdict}"))
            }
            Ok(verdict) => outcome.fail("linearizable", format!("{verdict}")),
            Err(error) => outcome.fail("linearizable", format!("malformed history: {error:?}")),
        }
    }
    if let Some(consistency) = checks.transactions {
        let options = TxnOptions::for_consistency(consistency).expect("the lab names a known model");
        match check_transactions(ops, &options) {
            Ok(verdict) if verdict.valid == Validity::Valid => {}
            Ok(verdict) => outcome.fail(consistency, format!("{verdict}")),
            Err(error) => outcome.fail(consistency, format!("malformed history: {error:?}")),
        }
        if let Some(lost) = first_lost_append(ops) {
            outcome.fail("committed appends stay", lost);
        }
    }
    if let Some(min) = checks.min_availability_during_faults {
        let during: Vec<&Operation> =
            ops.iter().filter(|op| matches!(op.f.as_str(), "read" | "write") && during_fault(op.invoke_ns)).collect();
        if !during.is_empty() {
            let available = during.iter().filter(|op| op.outcome == Outcome::Ok).count() as f64 / during.len() as f64;
            outcome.figure("unavailability during faults", 1.0 - available);
            if available < min {
                outcome.fail(
                    "available during faults",
                    format!(
                        "only {:.0}% of the {} reads and writes invoked during faults completed ok (need {:.0}%): \
                         an AP store answers on every side of a partition",
                        available * 100.0,
                        during.len(),
                        min * 100.0
                    ),
                );
            }
        }
    }
    if let Some(after_ms) = checks.fresh_reads_after_ms {
        let from_ns = if faults.is_empty() { 0 } else { heal_ns + u64::from(after_ms) * 1_000_000 };
        if let Some(stale) = first_stale_read(ops, from_ns) {
            outcome.fail("fresh reads after heal", stale);
        }
    }
    if checks.live_after_heal {
        let mut recovered_ms: Vec<Option<f64>> = vec![None; scenario.clients];
        for op in ops.iter().filter(|op| op.outcome == Outcome::Ok && op.invoke_ns >= heal_ns) {
            let client = (op.process % scenario.clients as u64) as usize;
            if let Some(done_ms) = op.complete_ns.map(|c| (c - heal_ns) as f64 / 1e6) {
                recovered_ms[client] = Some(recovered_ms[client].map_or(done_ms, |best: f64| best.min(done_ms)));
            }
        }
        let stuck: Vec<String> =
            recovered_ms.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| format!("c{}", i + 1)).collect();
        if stuck.is_empty() {
            let worst = recovered_ms.iter().flatten().copied().fold(0.0, f64::max);
            outcome.figure("recovery after heal ms", worst);
        } else if ok_ops > 0 {
            outcome.fail(
                "live after heal",
                format!(
                    "{} completed no operation in the {}ms after the heal, although every server was up and \
                     connected then",
                    stuck.join(", "),
                    scenario.after_heal_ms
                ),
            );
        }
    }
    if let Some(max) = checks.max_messages_per_op {
        if messages_per_op > max {
            outcome.fail(
                "messages per op",
                format!("{messages_per_op:.1} messages sent per completed operation (budget {max})"),
            );
        }
    }
    if let Some(max) = checks.max_p99_latency_ms {
        if p99_ms > max {
            outcome.fail("p99 latency", format!("p99 latency of completed operations {p99_ms:.1}ms (budget {max}ms)"));
        }
    }
    outcome
}

/// The first ok read invoked at or after `from_ns` that returned a value some completed write had
/// already overwritten: a write `w'` of the same key completed before the read began, and `w'` began
/// after the write of the value read had completed (or the read saw nothing at all).
fn first_stale_read(ops: &[Operation], from_ns: u64) -> Option<String> {
    let mut writes: BTreeMap<Option<Value>, Vec<&Operation>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op.outcome == Outcome::Ok && op.f == "write") {
        writes.entry(op.key.clone()).or_default().push(op);
    }
    let no_writes = Vec::new();
    for read in ops.iter().filter(|op| op.outcome == Outcome::Ok && op.f == "read" && op.invoke_ns >= from_ns) {
        let writes = writes.get(&read.key).unwrap_or(&no_writes);
        let completed_before: Vec<&&Operation> =
            writes.iter().filter(|w| w.complete_ns.is_some_and(|c| c < read.invoke_ns)).collect();
        // When the value read was written: its write's completion (never, for an unknown-outcome write).
        let source_complete_ns: Option<u64> = if read.output.is_nil() {
            Some(0)
        } else {
            ops.iter()
                .find(|w| w.f == "write" && w.key == read.key && w.input == read.output)
                .and_then(|w| w.complete_ns)
        };
        let Some(source_complete_ns) = source_complete_ns else { continue };
        let newer = completed_before.iter().find(|w| w.invoke_ns > source_complete_ns || read.output.is_nil());
        if let Some(newer) = newer {
            let key = read.key.as_ref().map_or("the register".to_string(), |k| format!("key {k}"));
            return Some(format!(
                "stale read of {key}: op #{} ({}) invoked at {:.1}ms read {}, but op #{} wrote {} and completed at \
                 {:.1}ms, before the read began (and after the value read was written)",
                read.id,
                format_args!("p{}", read.process),
                read.invoke_ns as f64 / 1e6,
                read.output,
                newer.id,
                newer.input,
                newer.complete_ns.unwrap_or(0) as f64 / 1e6
            ));
        }
    }
    None
}

/// The micro-ops `[f key value]` of a transaction's value.
fn micro_ops(value: &Value) -> Vec<(String, Value, Value)> {
    let Some(list) = value.as_list() else { return Vec::new() };
    list.iter()
        .filter_map(|m| match m.as_list() {
            Some([f, key, value]) => Some((f.as_str()?.to_string(), key.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// The first read that misses an append of a transaction acknowledged before the read's
/// transaction began. Strict serializability demands that it see it; Elle's inference cannot
/// place an append no read ever shows, so a commit lost on some participant needs this check.
fn first_lost_append(ops: &[Operation]) -> Option<String> {
    let committed: Vec<&Operation> = ops.iter().filter(|op| op.outcome == Outcome::Ok && op.f == "txn").collect();
    let mut appends: Vec<(u64, usize, Value, Value)> = Vec::new(); // (completed, op id, key, value)
    for op in &committed {
        let Some(done) = op.complete_ns else { continue };
        for (f, key, value) in micro_ops(&op.input) {
            if f == "append" {
                appends.push((done, op.id, key, value));
            }
        }
    }
    for reader in &committed {
        for (f, key, seen) in micro_ops(&reader.output) {
            if f != "r" {
                continue;
            }
            let seen = seen.as_list().map(<[Value]>::to_vec).unwrap_or_default();
            let missing = appends.iter().find(|(done, writer, k, v)| {
                *done < reader.invoke_ns && *writer != reader.id && *k == key && !seen.contains(v)
            });
            if let Some((done, writer, _, value)) = missing {
                return Some(format!(
                    "transaction #{} (invoked at {:.1}ms) read key {key} as {} without the {value} that transaction \
                     #{writer} appended and was acknowledged for at {:.1}ms: a committed write was lost (did every \
                     participant commit it?)",
                    reader.id,
                    reader.invoke_ns as f64 / 1e6,
                    Value::List(seen.clone()),
                    *done as f64 / 1e6
                ));
            }
        }
    }
    None
}

/// Grades `build` (a student's cluster, or a registry protocol's) on the service lab `service`.
pub fn grade(
    lab: &Lab,
    service: &ServiceLab,
    build: BuildService<'_>,
    params: &serde_json::Value,
    graded: &str,
    options: &GradeOptions,
) -> ScoreCard {
    let mut card = ScoreCard::new(lab, graded);
    for scenario in &service.scenarios {
        let space = CaseSpace {
            max_faults: scenario.max_faults,
            fault_kinds: if scenario.fault_kinds.is_empty() { FaultKinds::NODES } else { scenario.fault_kinds },
            min_window_ms: scenario.min_window_ms,
            max_window_ms: scenario.max_window_ms,
            min_partition_side: scenario.min_partition_side,
            partition_clients: if scenario.partition_clients { scenario.clients as u32 } else { 0 },
            ..CaseSpace::default()
        };
        let schedules = match scenario.custom_faults {
            Some(custom) => custom(scenario),
            None => fault_schedule(scenario.nodes as u32, scenario.horizon_ms, &space),
        };
        let mut budgets: Vec<(&str, f64)> = Vec::new();
        if let Some(max) = scenario.checks.max_messages_per_op {
            budgets.push(("messages per op", max));
        }
        if let Some(max) = scenario.checks.max_p99_latency_ms {
            budgets.push(("p99 latency ms", max));
        }
        let run = ScenarioRun {
            lab: lab.name,
            name: scenario.name,
            description: scenario.description,
            schedules: &schedules,
            budgets: &budgets,
        };
        let mut result = grade_scenario(&run, options, |seed, faults, folder| {
            run_scenario(scenario, build, params, seed, faults, folder)
        });
        if result.runs > 0 && result.failed_runs_of("progress") == result.runs {
            result.hints.push(
                "no run completed a single operation: start with the client path (answer each ClientRequest, or \
                 redirect it to the leader you know), then add replication"
                    .into(),
            );
        }
        if result.failed_runs_of("live after heal") > 0 {
            result.hints.push(
                "after the heal every server is up and connected: a stuck client means a server that never \
                 answers or redirects, or an election that never ends (randomize your timeouts)"
                    .into(),
            );
        }
        card.scenarios.push(result);
    }
    card
}
