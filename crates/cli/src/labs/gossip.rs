//! Lab 3: gossip broadcast with a message and latency budget (after Fly.io's Gossip Glomers,
//! challenge 3). Peers `n1..nN` originate broadcasts on a fixed schedule; every broadcast must reach
//! every peer despite partitions, loss and pauses, and in the fault-free scenario the whole run must
//! stay within a budget of messages per broadcast and of time until the last peer has it.
//!
//! The grader reads only the history's `broadcast` and `deliver` measurement events (recorded with
//! [`record_broadcast`] and [`record_deliver`], in true time), so it grades the reference (the
//! `gossip` protocol of detsim-protocols) and a student's peers the same way.

use crate::labs::report::RunFolder;
use crate::labs::{grade_scenario, GradeOptions, Lab, Mutant, RunOutcome, ScenarioRun, ScoreCard, Variant};
use crate::testing::schedule::{at, timeline};
use crate::testing::{fault_schedule, CaseSpace, FaultKinds, FaultWindow, NetworkConditions};
use detsim_core::{AnySimulation, Ctx, History, Message, Node, NodeId, Simulation, Value};
use detsim_protocols::gossip::events::{instant_events, record_instant};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// When broadcasts happen: broadcast `b` (from 0) is originated by peer `b % N` at
/// `first_broadcast_ms + b * broadcast_interval_ms` (true time; peers' clocks are perfect here).
/// A peer that is down or paused at that moment originates it when it runs again, if it still can.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BroadcastPlan {
    pub broadcasts: u32,
    pub first_broadcast_ms: u64,
    pub broadcast_interval_ms: u64,
}

impl Default for BroadcastPlan {
    fn default() -> Self {
        BroadcastPlan { broadcasts: 6, first_broadcast_ms: 200, broadcast_interval_ms: 300 }
    }
}

/// Timer tags at and above this one belong to [`BroadcastPlan::schedule`]: tag `BASE + b` is broadcast `b`.
pub const BROADCAST_TIMER_BASE: u64 = 1 << 40;

impl BroadcastPlan {
    /// The plan inside a spec's parameters (unknown fields are the protocol's own and ignored).
    pub fn from_spec(spec: &ClusterSpec) -> Result<BroadcastPlan, String> {
        spec.params()
    }

    /// Sets a timer for each broadcast `me` originates that is still to come (call from
    /// `on_start`); each fires with tag `BROADCAST_TIMER_BASE + b`.
    pub fn schedule<M: Message>(&self, ctx: &mut Ctx<'_, M>, nodes: usize) {
        let me = ctx.id().0 as u64;
        let now_ns = ctx.now().as_nanos();
        for b in (0..u64::from(self.broadcasts)).filter(|b| b % nodes as u64 == me) {
            let at_ns = ((self.first_broadcast_ms + b * self.broadcast_interval_ms) * 1_000_000) as i64;
            if at_ns > now_ns {
                ctx.set_timer(Duration::from_nanos((at_ns - now_ns) as u64), BROADCAST_TIMER_BASE + b);
            }
        }
    }

    /// The broadcast a timer tag stands for, if it is one of [`BroadcastPlan::schedule`]'s.
    pub fn broadcast_of(tag: u64) -> Option<u64> {
        tag.checked_sub(BROADCAST_TIMER_BASE)
    }
}

/// Records that this peer originates broadcast `rumor` now (what the grader counts as a broadcast).
pub fn record_broadcast<M: Message>(ctx: &mut Ctx<'_, M>, rumor: u64) {
    let origin = i64::from(ctx.id().0);
    record_instant(ctx, "broadcast", Value::Int(rumor as i64), Value::Int(origin));
}

/// Records that this peer delivers `rumor` now, `hops` hops from its origin (the origin delivers
/// its own broadcast with 0 hops). Deliver each rumor once per life of the peer.
pub fn record_deliver<M: Message>(ctx: &mut Ctx<'_, M>, rumor: u64, hops: u32) {
    record_instant(ctx, "deliver", Value::Int(rumor as i64), Value::Int(i64::from(hops)));
}

/// What a student's peer is told when it is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSetup {
    pub id: NodeId,
    /// Every other peer, in id order.
    pub peers: Vec<NodeId>,
    /// The broadcasts of the run (call `plan.schedule(ctx, nodes)` in `on_start`).
    pub plan: BroadcastPlan,
}

/// Builds a simulation of `spec.nodes` peers `n1..nN` made by `make` (also after a restart: peers
/// keep nothing on disk).
pub fn build_peers<P: Node>(
    spec: &ClusterSpec,
    make: impl Fn(PeerSetup) -> P + Clone + 'static,
) -> Result<Box<dyn AnySimulation>, String> {
    if spec.nodes < 2 {
        return Err("gossip needs at least 2 peers".into());
    }
    let plan = BroadcastPlan::from_spec(spec)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let nodes = spec.nodes as u32;
    for i in 0..spec.nodes {
        let (make, plan) = (make.clone(), plan.clone());
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |id, _storage| {
            let peers = (0..nodes).map(NodeId).filter(|p| *p != id).collect();
            make(PeerSetup { id, peers, plan: plan.clone() })
        });
    }
    Ok(Box::new(sim))
}

/// One scenario of the gossip lab.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub nodes: usize,
    pub plan: BroadcastPlan,
    pub network: NetworkConditions,
    pub fault_kinds: FaultKinds,
    pub max_faults: usize,
    pub max_window_ms: u32,
    pub horizon_ms: u32,
    pub after_heal_ms: u32,
    /// Budget: messages sent over the run per broadcast.
    pub max_messages_per_broadcast: Option<f64>,
    /// Budget: the slowest broadcast's time from origin until the last peer delivered it.
    pub max_spread_ms: Option<f64>,
    /// Budget: the median broadcast's spread time.
    pub max_median_spread_ms: Option<f64>,
}

/// The gossip lab's scenarios.
pub fn scenarios() -> Vec<GossipScenario> {
    let steady = GossipScenario {
        name: "steady",
        description: "16 peers, 10 broadcasts, 5-25 ms links, no faults: everyone gets everything, within budget",
        nodes: 16,
        plan: BroadcastPlan { broadcasts: 10, first_broadcast_ms: 200, broadcast_interval_ms: 200 },
        network: NetworkConditions { latency_min_ms: 5, latency_spread_ms: 20, ..NetworkConditions::default() },
        fault_kinds: FaultKinds::NONE,
        max_faults: 0,
        max_window_ms: 0,
        horizon_ms: 2_400,
        after_heal_ms: 1_600,
        max_messages_per_broadcast: Some(GOSSIP_MESSAGES_BUDGET),
        max_spread_ms: Some(GOSSIP_SPREAD_BUDGET_MS),
        max_median_spread_ms: Some(GOSSIP_MEDIAN_SPREAD_BUDGET_MS),
    };
    let faults = GossipScenario {
        name: "partitions",
        description: "partitions, isolated peers, one-way cuts, loss bursts, latency spikes and pauses; \
                      healed at 3 s: every broadcast still reaches every peer by the end",
        nodes: 10,
        plan: BroadcastPlan { broadcasts: 8, first_broadcast_ms: 200, broadcast_interval_ms: 300 },
        network: NetworkConditions { loss_percent: 2, duplicate_percent: 2, ..steady.network.clone() },
        fault_kinds: FaultKinds { pause: true, ..FaultKinds::NETWORK },
        max_faults: 5,
        max_window_ms: 2_000,
        horizon_ms: 3_000,
        after_heal_ms: 3_000,
        max_messages_per_broadcast: None,
        max_spread_ms: None,
        max_median_spread_ms: None,
    };
    vec![steady, faults]
}

/// The figure that counts deliveries at peers other than a rumor's origin.
const FORWARDED: &str = "deliveries beyond the origin";

/// The steady scenario's budgets.
pub const GOSSIP_MESSAGES_BUDGET: f64 = 200.0;
pub const GOSSIP_SPREAD_BUDGET_MS: f64 = 600.0;
pub const GOSSIP_MEDIAN_SPREAD_BUDGET_MS: f64 = 400.0;

/// Lab 3.
pub fn lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "push-only",
            bug: "rumor mongering without anti-entropy: a rumor goes cold before a partitioned peer can hear it",
            params: r#"{"mode":"push"}"#,
            seeds: 8,
        },
        Mutant {
            name: "flooding",
            bug: "every peer pushes every rumor to every neighbour for many rounds: correct, but far over budget",
            params: r#"{"overlay":"complete","fanout":15,"rumor_rounds":10}"#,
            seeds: 8,
        },
        Mutant {
            name: "slow-rounds",
            bug: "gossip rounds every 400 ms: correct, but the last peer hears of a broadcast far too late",
            params: r#"{"round_ms":400}"#,
            seeds: 8,
        },
    ];
    Lab {
        number: 3,
        name: "gossip",
        title: "Gossip broadcast with a message and latency budget",
        guide: "docs/labs/03-gossip.md",
        reference: "gossip",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/gossip/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/gossip/tests/grade.rs")),
        ],
        grade_variant,
    }
}

fn grade_variant(lab: &Lab, variant: &Variant, options: &GradeOptions) -> Result<ScoreCard, String> {
    let entry = detsim_protocols::find(lab.reference)
        .ok_or_else(|| format!("the reference protocol {} is not in detsim-protocols' registry", lab.reference))?;
    let extra = lab.variant_params(variant);
    let probe = spec_for(&scenarios()[0], 0, &extra)?;
    (entry.build)(&probe).map_err(|e| format!("{}: {e}", lab.reference))?;
    let build = move |spec: &ClusterSpec| (entry.build)(spec);
    Ok(grade(lab, &build, &extra, &lab.variant_label(variant), options))
}

/// Grades a student's peers (what the skeleton's `tests/grade.rs` calls).
pub fn grade_student(build: fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>) -> ScoreCard {
    let lab = lab();
    grade(&lab, &build, &serde_json::Value::Null, "your implementation", &GradeOptions::from_env())
}

/// The spec of one run: the broadcast plan, merged with `extra` parameters (a variant's).
fn spec_for(scenario: &GossipScenario, seed: u64, extra: &serde_json::Value) -> Result<ClusterSpec, String> {
    let workload = WorkloadSpec { kind: WorkloadKind::None, clients: 0, ..WorkloadSpec::default() };
    let mut spec = ClusterSpec::new(seed, scenario.nodes, workload);
    spec.network = scenario.network.to_config();
    let mut params = serde_json::to_value(&scenario.plan).expect("plans serialise");
    match extra {
        serde_json::Value::Null => {}
        serde_json::Value::Object(fields) => {
            let object = params.as_object_mut().expect("a plan is an object");
            for (name, value) in fields {
                object.insert(name.clone(), value.clone());
            }
        }
        other => return Err(format!("gossip parameters must be a JSON object, got {other}")),
    }
    spec.params = params;
    spec.limits = crate::labs::service::run_limits();
    Ok(spec)
}

/// How far each broadcast got, from the history.
struct Spread {
    rumor: u64,
    origin: u32,
    start_ns: u64,
    /// First delivery per peer.
    delivered_ns: BTreeMap<u32, u64>,
}

fn spreads(history: &History) -> Vec<Spread> {
    let mut by_rumor: BTreeMap<u64, Spread> = BTreeMap::new();
    for event in instant_events(history, "broadcast") {
        let rumor = event.key.as_int().unwrap_or(-1) as u64;
        by_rumor.entry(rumor).or_insert(Spread {
            rumor,
            origin: event.node,
            start_ns: event.time_ns,
            delivered_ns: BTreeMap::new(),
        });
    }
    for event in instant_events(history, "deliver") {
        let rumor = event.key.as_int().unwrap_or(-1) as u64;
        if let Some(spread) = by_rumor.get_mut(&rumor) {
            spread.delivered_ns.entry(event.node).or_insert(event.time_ns);
        }
    }
    by_rumor.into_values().collect()
}

/// Runs one gossip scenario and judges it.
pub fn run_scenario(
    scenario: &GossipScenario,
    build: &dyn Fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>,
    extra: &serde_json::Value,
    seed: u64,
    faults: &[FaultWindow],
    folder: Option<&Path>,
) -> RunOutcome {
    let spec = match spec_for(scenario, seed, extra) {
        Ok(spec) => spec,
        Err(error) => return RunOutcome::failed_with("build", error),
    };
    let mut sim = match build(&spec) {
        Ok(sim) => sim,
        Err(error) => return RunOutcome::failed_with("build", format!("the peers could not be built: {error}")),
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
    let mut outcome = judge(scenario, &history, sends);
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

fn judge(scenario: &GossipScenario, history: &History, sends: u64) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    let spreads = spreads(history);
    let peers: BTreeSet<u32> = (0..scenario.nodes as u32).collect();
    if spreads.is_empty() {
        outcome.fail(
            "broadcasts happen",
            format!(
                "no peer recorded a broadcast ({} were planned). On each BroadcastPlan timer, call \
                 record_broadcast(ctx, rumor) and record_deliver(ctx, rumor, 0)",
                scenario.plan.broadcasts
            ),
        );
        return outcome;
    }
    let messages_per_broadcast = sends as f64 / spreads.len() as f64;
    outcome.figure("messages per broadcast", messages_per_broadcast);
    let forwarded = spreads.iter().map(|s| s.delivered_ns.keys().filter(|p| **p != s.origin).count()).sum::<usize>();
    outcome.figure(FORWARDED, forwarded as f64);
    let mut spread_ms: Vec<f64> = Vec::new();
    for spread in &spreads {
        let missing: Vec<String> =
            peers.iter().filter(|p| !spread.delivered_ns.contains_key(p)).map(|p| format!("n{}", p + 1)).collect();
        if missing.is_empty() {
            let last_ns = spread.delivered_ns.values().max().copied().unwrap_or(spread.start_ns);
            spread_ms.push(last_ns.saturating_sub(spread.start_ns) as f64 / 1e6);
        } else {
            outcome.fail(
                "delivered everywhere",
                format!(
                    "broadcast {} (from n{} at {:.0}ms) never reached {} by the end of the run ({}ms, {}ms after \
                     the heal); {} of {} peers delivered it",
                    spread.rumor,
                    spread.origin + 1,
                    spread.start_ns as f64 / 1e6,
                    missing.join(" "),
                    scenario.horizon_ms + scenario.after_heal_ms,
                    scenario.after_heal_ms,
                    spread.delivered_ns.len(),
                    scenario.nodes
                ),
            );
        }
    }
    spread_ms.sort_by(f64::total_cmp);
    if let (Some(worst), Some(median)) = (spread_ms.last().copied(), spread_ms.get(spread_ms.len() / 2).copied()) {
        outcome.figure("spread ms", worst);
        outcome.figure("median spread ms", median);
        if let Some(max) = scenario.max_spread_ms {
            if worst > max {
                outcome.fail(
                    "spread time",
                    format!("the slowest broadcast took {worst:.0}ms to reach every peer (budget {max}ms)"),
                );
            }
        }
        if let Some(max) = scenario.max_median_spread_ms {
            if median > max {
                outcome.fail(
                    "median spread time",
                    format!("the median broadcast took {median:.0}ms to reach every peer (budget {max}ms)"),
                );
            }
        }
    }
    if let Some(max) = scenario.max_messages_per_broadcast {
        if messages_per_broadcast > max {
            outcome.fail(
                "messages per broadcast",
                format!("{messages_per_broadcast:.1} messages sent per broadcast over the run (budget {max})"),
            );
        }
    }
    outcome
}

/// Grades `build` on the gossip lab.
pub fn grade(
    lab: &Lab,
    build: &dyn Fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>,
    extra: &serde_json::Value,
    graded: &str,
    options: &GradeOptions,
) -> ScoreCard {
    let mut card = ScoreCard::new(lab, graded);
    for scenario in scenarios() {
        let space = CaseSpace {
            max_faults: scenario.max_faults,
            fault_kinds: if scenario.fault_kinds.is_empty() { FaultKinds::NODES } else { scenario.fault_kinds },
            max_window_ms: scenario.max_window_ms,
            ..CaseSpace::default()
        };
        let schedules = fault_schedule(scenario.nodes as u32, scenario.horizon_ms, &space);
        let mut budgets: Vec<(&str, f64)> = Vec::new();
        if let Some(max) = scenario.max_messages_per_broadcast {
            budgets.push(("messages per broadcast", max));
        }
        if let Some(max) = scenario.max_spread_ms {
            budgets.push(("spread ms", max));
        }
        if let Some(max) = scenario.max_median_spread_ms {
            budgets.push(("median spread ms", max));
        }
        let run = ScenarioRun {
            lab: lab.name,
            name: scenario.name,
            description: scenario.description,
            schedules: &schedules,
            budgets: &budgets,
        };
        let mut nothing_spread = true;
        let mut result = grade_scenario(&run, options, |seed, faults, folder| {
            let outcome = run_scenario(&scenario, build, extra, seed, faults, folder);
            nothing_spread &= !outcome.figures.iter().any(|(name, value)| name == FORWARDED && *value > 0.0);
            outcome
        });
        if result.runs > 0 && nothing_spread && result.failed_runs_of("broadcasts happen") < result.runs {
            result.hints.push(
                "no broadcast ever reached a peer other than its origin: send each rumor you learn to some peers \
                 (and have them deliver it and pass it on)"
                    .into(),
            );
        }
        if result.runs > 0 && result.failed_runs_of("broadcasts happen") == result.runs {
            result.hints.push(
                "start with the origin: on a BroadcastPlan timer, record the broadcast and deliver it locally; then \
                 send it to a few peers, and have peers deliver what they hear for the first time"
                    .into(),
            );
        }
        if result.failed_runs_of("delivered everywhere") > 0 && !nothing_spread {
            result.hints.push(
                "pushing a rumor for a few rounds is not enough when a peer is cut off longer than that: add \
                 anti-entropy (peers periodically compare what they know and send what the other lacks)"
                    .into(),
            );
        }
        card.scenarios.push(result);
    }
    card
}
