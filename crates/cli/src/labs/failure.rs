//! Lab 2: failure detection. Every node monitors every other and says when it starts and stops
//! suspecting it ([`record_suspect`], [`record_trust`]). The grader crashes nodes for long enough
//! to be noticed, skews and jumps their clocks, loses and delays messages, and judges the
//! detectors by the quality-of-service metrics of Chen, Toueg and Aguilera (2002), computed by
//! `detsim_protocols::failure_detector::quality` from the history: every crash detected by every
//! monitor that stayed up (completeness), within a detection-time budget, with no (or few) false
//! suspicions of live nodes (accuracy), within a heartbeat-message budget.

use crate::labs::report::RunFolder;
use crate::labs::{grade_scenario, GradeOptions, Lab, Mutant, RunOutcome, ScenarioRun, ScoreCard, Variant};
use crate::testing::schedule::{at, timeline};
use crate::testing::{fault_schedule, CaseSpace, FaultKinds, FaultWindow, NetworkConditions, WindowFault};
use detsim_core::{AnySimulation, Ctx, LocalClock, Message, Node, NodeId, Simulation, Storage, Value};
use detsim_protocols::failure_detector::quality;
use detsim_protocols::gossip::events::record_instant;
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use std::path::Path;

/// Records that this node starts suspecting `peer` now.
pub fn record_suspect<M: Message>(ctx: &mut Ctx<'_, M>, peer: NodeId) {
    record_instant(ctx, "suspect", Value::Int(i64::from(peer.0)), Value::Nil);
}

/// Records that this node stops suspecting `peer` now (it heard from it again).
pub fn record_trust<M: Message>(ctx: &mut Ctx<'_, M>, peer: NodeId) {
    record_instant(ctx, "trust", Value::Int(i64::from(peer.0)), Value::Nil);
}

/// What a student's monitor is told when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorSetup {
    pub id: NodeId,
    /// Every other node, in id order.
    pub peers: Vec<NodeId>,
}

/// Builds `spec.nodes` nodes `n1..nN` made by `make` (also after a restart, from their storage).
pub fn build_monitors<N: Node>(
    spec: &ClusterSpec,
    make: impl Fn(MonitorSetup, &Storage) -> N + Clone + 'static,
) -> Result<Box<dyn AnySimulation>, String> {
    if spec.nodes < 2 {
        return Err("failure detection needs at least 2 nodes".into());
    }
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let nodes = spec.nodes as u32;
    for i in 0..spec.nodes {
        let make = make.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |id, storage| {
            let peers = (0..nodes).map(NodeId).filter(|p| *p != id).collect();
            make(MonitorSetup { id, peers }, storage)
        });
    }
    Ok(Box::new(sim))
}

/// One scenario of the failure-detection lab.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub nodes: usize,
    pub network: NetworkConditions,
    /// Initial clock offsets are drawn from `±skew_ms`, drift from `±drift_ppm` (by node, from the seed).
    pub skew_ms: i64,
    pub drift_ppm: f64,
    pub fault_kinds: FaultKinds,
    pub max_faults: usize,
    /// Crashes last at least this long (long enough for any sane detector to notice).
    pub min_window_ms: u32,
    pub max_window_ms: u32,
    pub horizon_ms: u32,
    pub after_heal_ms: u32,
    /// Budget: the slowest detection of a crash.
    pub max_detection_ms: f64,
    /// At most this fraction of the time a live node is wrongly suspected (1 - query accuracy).
    pub max_mistake_fraction: f64,
    /// Budget: messages per node per second.
    pub max_messages_per_node_s: f64,
}

/// The lab's scenarios.
pub fn scenarios() -> Vec<DetectionScenario> {
    let crashes = DetectionScenario {
        name: "crashes",
        description: "6 nodes on a clean network; up to 3 crashes of 1.5-2.5 s: every monitor that stays up \
                      suspects each crashed node within 1 s, and (almost) never a live one",
        nodes: 6,
        network: NetworkConditions { latency_min_ms: 1, latency_spread_ms: 9, ..NetworkConditions::default() },
        skew_ms: 0,
        drift_ppm: 0.0,
        fault_kinds: FaultKinds::CRASHES,
        max_faults: 3,
        min_window_ms: 1_500,
        max_window_ms: 2_500,
        horizon_ms: 6_000,
        after_heal_ms: 1_000,
        max_detection_ms: 1_000.0,
        // A node that restarts while a peer is down suspects it and may only hear of its restart
        // a heartbeat later: a sliver of honest "mistake" the metric counts.
        max_mistake_fraction: 0.001,
        max_messages_per_node_s: 60.0,
    };
    let skewed = DetectionScenario {
        name: "skewed-clocks",
        description: "clocks off by up to 300 ms and drifting up to 200 ppm: detectors must measure silence on \
                      their own clock",
        skew_ms: 300,
        drift_ppm: 200.0,
        ..crashes.clone()
    };
    let lossy = DetectionScenario {
        name: "lossy",
        description: "3% loss and 1-40 ms latency: few mistakes (live nodes suspected under 1% of the time)",
        network: NetworkConditions {
            latency_min_ms: 1,
            latency_spread_ms: 39,
            loss_percent: 3,
            ..NetworkConditions::default()
        },
        max_detection_ms: 1_500.0,
        max_mistake_fraction: 0.01,
        ..crashes.clone()
    };
    vec![crashes, skewed, lossy]
}

/// Lab 2.
pub fn lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "sender-timestamps",
            bug: "silence measured from the sender's timestamp in the heartbeat: two clocks compared",
            params: r#"{"bug_sender_timestamps":true}"#,
            seeds: 10,
        },
        Mutant {
            name: "slow-timeout",
            bug: "a 2 s timeout: never wrong, but crashes are noticed far too late",
            params: r#"{"timeout_ms":2000}"#,
            seeds: 8,
        },
        Mutant {
            name: "eager-timeout",
            bug: "a 150 ms timeout on 100 ms heartbeats: one late or lost heartbeat is a false suspicion",
            params: r#"{"timeout_ms":150}"#,
            seeds: 8,
        },
        Mutant {
            name: "chatty",
            bug: "heartbeats every 10 ms: fast and accurate, far over the message budget",
            params: r#"{"heartbeat_ms":10,"timeout_ms":200}"#,
            seeds: 8,
        },
    ];
    Lab {
        number: 2,
        name: "failure-detection",
        title: "Failure detection: heartbeats, timeouts and their quality of service",
        guide: "docs/labs/02-failure-detection.md",
        reference: "heartbeat",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/failure-detection/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/failure-detection/tests/grade.rs")),
        ],
        grade_variant,
    }
}

fn grade_variant(lab: &Lab, variant: &Variant, options: &GradeOptions) -> Result<ScoreCard, String> {
    let entry = detsim_protocols::find(lab.reference)
        .ok_or_else(|| format!("the reference protocol {} is not in detsim-protocols' registry", lab.reference))?;
    let params = lab.variant_params(variant);
    (entry.build)(&spec_for(&scenarios()[0], 0, &params)).map_err(|e| format!("{}: {e}", lab.reference))?;
    let build = move |spec: &ClusterSpec| (entry.build)(spec);
    Ok(grade(lab, &build, &params, &lab.variant_label(variant), options))
}

/// Grades a student's monitors (what the skeleton's `tests/grade.rs` calls).
pub fn grade_student(build: fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>) -> ScoreCard {
    grade(&lab(), &build, &serde_json::Value::Null, "your implementation", &GradeOptions::from_env())
}

/// A SplitMix64 step: the clocks of a run are drawn from its seed with it.
fn mix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn spec_for(scenario: &DetectionScenario, seed: u64, params: &serde_json::Value) -> ClusterSpec {
    let workload = WorkloadSpec { kind: WorkloadKind::None, clients: 0, ..WorkloadSpec::default() };
    let mut spec = ClusterSpec::new(seed, scenario.nodes, workload);
    spec.network = scenario.network.to_config();
    spec.params = params.clone();
    spec.limits = crate::labs::service::run_limits();
    let mut state = seed ^ 0xC10C_C10C;
    spec.clocks = (0..scenario.nodes)
        .map(|_| {
            let offset_ms = if scenario.skew_ms == 0 {
                0
            } else {
                (mix(&mut state) % (2 * scenario.skew_ms as u64 + 1)) as i64 - scenario.skew_ms
            };
            let drift = (mix(&mut state) % 2_001) as f64 / 1_000.0 - 1.0;
            LocalClock::new(offset_ms * 1_000_000, drift * scenario.drift_ppm)
        })
        .collect();
    spec
}

/// Runs one scenario and judges the detectors.
pub fn run_scenario(
    scenario: &DetectionScenario,
    build: &dyn Fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>,
    params: &serde_json::Value,
    seed: u64,
    faults: &[FaultWindow],
    folder: Option<&Path>,
) -> RunOutcome {
    let spec = spec_for(scenario, seed, params);
    let mut sim = match build(&spec) {
        Ok(sim) => sim,
        Err(error) => return RunOutcome::failed_with("build", format!("the nodes could not be built: {error}")),
    };
    for timed in timeline(faults, scenario.nodes as u32, scenario.horizon_ms) {
        if let Err(error) = sim.schedule_fault(at(timed.at_ms), timed.fault) {
            return RunOutcome::failed_with("faults", error.to_string());
        }
    }
    let run_folder = folder.map(|dir| RunFolder::start(dir, sim.as_mut()));
    let end_ms = scenario.horizon_ms + scenario.after_heal_ms;
    if let Err(error) = sim.run_until(at(end_ms)) {
        return RunOutcome::failed_with("run", format!("the run stopped: {error}"));
    }
    let sends = sim.stats().sends;
    let history = sim.take_history();
    let crashes: Vec<(u32, u64, u64)> = faults
        .iter()
        .filter_map(|w| match w.fault {
            WindowFault::Crash { node } => {
                let start = u64::from(w.start_ms.min(scenario.horizon_ms)) * 1_000_000;
                let end = u64::from(w.start_ms.saturating_add(w.duration_ms).min(scenario.horizon_ms)) * 1_000_000;
                Some((node, start, end))
            }
            _ => None,
        })
        .collect();
    let end_ns = u64::from(end_ms) * 1_000_000;
    let q = quality(&history, &crashes, scenario.nodes, end_ns);
    let mut outcome = RunOutcome::default();
    let suspicions = history.events.iter().filter(|e| e.f == "suspect" || e.f == "trust").count();
    let messages_per_node_s = sends as f64 / scenario.nodes as f64 / (f64::from(end_ms) / 1e3);
    outcome.figure("messages per node per s", messages_per_node_s);
    outcome.figure("slowest detection ms", q.max_detection_ms());
    outcome.figure("mistake fraction", 1.0 - q.query_accuracy());
    outcome.figure("false suspicions", q.false_suspicions as f64);
    if !crashes.is_empty() && suspicions == 0 {
        outcome.fail(
            "detects every crash",
            format!(
                "{} crashes and not a single suspicion recorded: call record_suspect(ctx, peer) when a peer has \
                 been silent too long",
                crashes.len()
            ),
        );
    } else if q.missed > 0 {
        outcome.fail(
            "detects every crash",
            format!(
                "{} (crash, monitor) pairs where a monitor that stayed up never suspected the crashed node before \
                 it restarted (crashes last at least {} ms)",
                q.missed, scenario.min_window_ms
            ),
        );
    }
    if q.max_detection_ms() > scenario.max_detection_ms {
        outcome.fail(
            "detection time",
            format!(
                "the slowest detection of a crash took {:.0} ms (budget {} ms)",
                q.max_detection_ms(),
                scenario.max_detection_ms
            ),
        );
    }
    let mistakes = 1.0 - q.query_accuracy();
    if q.false_suspicions > 0 && mistakes > scenario.max_mistake_fraction {
        let first_ms = q.false_suspicions_at_ns.iter().min().map_or(0.0, |ns| *ns as f64 / 1e6);
        outcome.fail(
            "no false suspicions",
            format!(
                "{} suspicions of nodes that were up (the first at {first_ms:.0} ms); live nodes were suspected \
                 {:.2}% of the time (allowed {:.2}%)",
                q.false_suspicions,
                mistakes * 100.0,
                scenario.max_mistake_fraction * 100.0
            ),
        );
    }
    if messages_per_node_s > scenario.max_messages_per_node_s {
        outcome.fail(
            "messages per node per second",
            format!(
                "{messages_per_node_s:.1} messages per node per second (budget {})",
                scenario.max_messages_per_node_s
            ),
        );
    }
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
            "nodes": sim.node_names(),
            "sim_time_s": f64::from(end_ms) / 1e3,
        });
        outcome.report = Some(started.and_then(|folder| folder.finish(sim.as_mut(), &history, info)));
    }
    outcome
}

/// Grades `build` on the failure-detection lab.
pub fn grade(
    lab: &Lab,
    build: &dyn Fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>,
    params: &serde_json::Value,
    graded: &str,
    options: &GradeOptions,
) -> ScoreCard {
    let mut card = ScoreCard::new(lab, graded);
    for scenario in scenarios() {
        let space = CaseSpace {
            max_faults: scenario.max_faults,
            fault_kinds: scenario.fault_kinds,
            min_window_ms: scenario.min_window_ms,
            max_window_ms: scenario.max_window_ms,
            ..CaseSpace::default()
        };
        // Crashes start early enough to last their minimum before the heal.
        let starts_before_ms = scenario.horizon_ms - scenario.max_window_ms;
        let schedules = fault_schedule(scenario.nodes as u32, starts_before_ms, &space);
        let budgets = [
            ("slowest detection ms", scenario.max_detection_ms),
            ("mistake fraction", scenario.max_mistake_fraction),
            ("messages per node per s", scenario.max_messages_per_node_s),
        ];
        let run = ScenarioRun {
            lab: lab.name,
            name: scenario.name,
            description: scenario.description,
            schedules: &schedules,
            budgets: &budgets,
        };
        let mut result = grade_scenario(&run, options, |seed, faults, folder| {
            run_scenario(&scenario, build, params, seed, faults, folder)
        });
        if result.failed_runs_of("no false suspicions") > 0 && scenario.skew_ms > 0 {
            result.hints.push(
                "clocks disagree by hundreds of ms here: measure a peer's silence on your own clock \
                 (ctx.now() when its heartbeat arrived), never from a timestamp it sent"
                    .into(),
            );
        }
        if result.runs > 0 && result.failed_runs_of("detects every crash") == result.runs {
            result.hints.push(
                "send every peer a heartbeat every so often; keep, per peer, a timer that fires when it has been \
                 silent too long (reset it on each heartbeat), and call record_suspect then"
                    .into(),
            );
        }
        card.scenarios.push(result);
    }
    card
}
