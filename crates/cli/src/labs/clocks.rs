//! Lab 1: clocks and ordering. The student writes a Lamport clock and a vector clock; the grader runs
//! them inside peers that do local work, send messages to random peers and receive them, over a
//! network that loses, duplicates, delays and reorders, with partitions and pauses, and records the
//! student's timestamp of every event. From the events themselves (program order plus each send
//! before its receives) the grader knows the true happened-before relation, and checks:
//!
//! - the clock condition for Lamport clocks: `a → b` implies `L(a) < L(b)`;
//! - the characterisation for vector clocks: `a → b` iff `V(a) < V(b)`, and concurrent events have
//!   incomparable vectors.
//!
//! The reference is `detsim_protocols::clocks::{lamport, vector}`; the mutants are realistic
//! mistakes wrapped around it ([`mutants`]).

use crate::labs::report::RunFolder;
use crate::labs::{grade_scenario, GradeOptions, Lab, Mutant, RunOutcome, ScenarioRun, ScoreCard, Variant};
use crate::testing::schedule::{at, timeline};
use crate::testing::{fault_schedule, CaseSpace, FaultKinds, FaultWindow, NetworkConditions};
use detsim_core::{Ctx, Message, Node, NodeId, SimConfig, Simulation, TimerId};
pub use detsim_protocols::clocks::vector::Causality;
use detsim_protocols::clocks::{lamport, vector};
use rand::RngExt;
use std::fmt::Debug;
use std::hash::Hash;
use std::path::Path;
use std::time::Duration;

/// A Lamport clock of one process, as the student writes it.
pub trait LabLamport: Clone + Debug + 'static {
    /// The clock of process `process`, before any event.
    fn new(process: u32) -> Self;
    /// A local event or a send: returns the event's timestamp.
    fn tick(&mut self) -> u64;
    /// A receive of a message stamped `remote` by its sender: returns the receive event's timestamp.
    fn receive(&mut self, remote: u64) -> u64;
}

/// A vector clock of one process, as the student writes it. The clock's value after an event is
/// that event's timestamp (a clone of it travels in messages).
pub trait LabVector: Clone + Debug + Hash + 'static {
    /// The clock of process `process` of `processes`, before any event.
    fn new(process: u32, processes: u32) -> Self;
    /// A local event or a send.
    fn tick(&mut self);
    /// A receive of a message stamped `remote`.
    fn receive(&mut self, remote: &Self);
    /// How the event stamped `self` relates to the event stamped `other`.
    fn compare(&self, other: &Self) -> Causality;
}

/// The reference Lamport clock: detsim-protocols' `LamportClock`.
#[derive(Clone, Debug)]
pub struct ReferenceLamport(lamport::LamportClock);

impl LabLamport for ReferenceLamport {
    fn new(_process: u32) -> Self {
        ReferenceLamport(lamport::LamportClock::new())
    }
    fn tick(&mut self) -> u64 {
        self.0.tick()
    }
    fn receive(&mut self, remote: u64) -> u64 {
        self.0.receive(remote)
    }
}

/// The reference vector clock: detsim-protocols' `VectorClock`.
#[derive(Clone, Debug, Hash)]
pub struct ReferenceVector {
    process: u32,
    clock: vector::VectorClock,
}

impl LabVector for ReferenceVector {
    fn new(process: u32, _processes: u32) -> Self {
        ReferenceVector { process, clock: vector::VectorClock::new() }
    }
    fn tick(&mut self) {
        self.clock.tick(self.process);
    }
    fn receive(&mut self, remote: &Self) {
        self.clock.receive(self.process, &remote.clock);
    }
    fn compare(&self, other: &Self) -> Causality {
        self.clock.compare(&other.clock)
    }
}

/// Realistic mistakes, wrapped around the reference.
pub mod mutants {
    use super::*;

    /// Lamport: a receive ticks but forgets to jump past the sender's timestamp.
    #[derive(Clone, Debug)]
    pub struct LamportNoMax(pub lamport::LamportClock);
    impl LabLamport for LamportNoMax {
        fn new(_process: u32) -> Self {
            LamportNoMax(lamport::LamportClock::new())
        }
        fn tick(&mut self) -> u64 {
            self.0.tick()
        }
        fn receive(&mut self, _remote: u64) -> u64 {
            self.0.tick()
        }
    }

    /// Lamport: a receive takes the maximum but does not count itself (`max(local, remote)`).
    #[derive(Clone, Debug)]
    pub struct LamportNoTickOnReceive(pub lamport::LamportClock);
    impl LabLamport for LamportNoTickOnReceive {
        fn new(_process: u32) -> Self {
            LamportNoTickOnReceive(lamport::LamportClock::new())
        }
        fn tick(&mut self) -> u64 {
            self.0.tick()
        }
        fn receive(&mut self, remote: u64) -> u64 {
            self.0.observe(remote);
            self.0.counter()
        }
    }

    /// Vector: a receive merges but does not tick, so a receive and the send it follows look equal.
    #[derive(Clone, Debug, Hash)]
    pub struct VectorNoTickOnReceive(pub ReferenceVector);
    impl LabVector for VectorNoTickOnReceive {
        fn new(process: u32, processes: u32) -> Self {
            VectorNoTickOnReceive(ReferenceVector::new(process, processes))
        }
        fn tick(&mut self) {
            self.0.tick();
        }
        fn receive(&mut self, remote: &Self) {
            self.0.clock.merge(&remote.0.clock);
        }
        fn compare(&self, other: &Self) -> Causality {
            self.0.compare(&other.0)
        }
    }

    /// Vector: compares by the sum of the entries (a Lamport-like scalar), so nothing is concurrent.
    #[derive(Clone, Debug, Hash)]
    pub struct VectorCompareBySum(pub ReferenceVector);
    impl LabVector for VectorCompareBySum {
        fn new(process: u32, processes: u32) -> Self {
            VectorCompareBySum(ReferenceVector::new(process, processes))
        }
        fn tick(&mut self) {
            self.0.tick();
        }
        fn receive(&mut self, remote: &Self) {
            self.0.receive(&remote.0);
        }
        fn compare(&self, other: &Self) -> Causality {
            match self.0.clock.total().cmp(&other.0.clock.total()) {
                std::cmp::Ordering::Less => Causality::Before,
                std::cmp::Ordering::Greater => Causality::After,
                std::cmp::Ordering::Equal if self.0.clock == other.0.clock => Causality::Equal,
                std::cmp::Ordering::Equal => Causality::Concurrent,
            }
        }
    }
}

/// What kind of event a peer recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Local,
    /// A send of message `msg` (unique in the run).
    Send {
        msg: u64,
    },
    /// A receive of message `msg` (a duplicate is a second receive of the same message).
    Receive {
        msg: u64,
    },
}

/// One event of one peer, with the student's timestamps.
#[derive(Clone, Debug)]
pub struct ClockEvent<V> {
    pub node: u32,
    /// Position in the peer's program order, from 0.
    pub index: usize,
    pub kind: EventKind,
    pub lamport: u64,
    pub vector: V,
    /// The peer's own clock when it happened (which, with clock jumps, says nothing about order).
    pub time_ns: u64,
}

/// A message between peers: its id and the sender's stamps.
#[derive(Clone, Debug, Hash)]
pub struct Stamped<V> {
    pub msg: u64,
    pub lamport: u64,
    pub vector: V,
}

impl<V: Clone + Debug + Hash + 'static> Message for Stamped<V> {
    fn kind(&self) -> &'static str {
        "Stamped"
    }
}

/// How often peers act, and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct ClocksScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub nodes: u32,
    /// Each peer acts every `act_ms` on average: a local event or a send to a random peer.
    pub act_ms: u64,
    /// Fraction of actions that are sends.
    pub send_fraction: f64,
    pub events_per_node: usize,
    pub network: NetworkConditions,
    pub fault_kinds: FaultKinds,
    pub max_faults: usize,
    pub horizon_ms: u32,
}

/// The clocks lab's scenarios.
pub fn scenarios() -> Vec<ClocksScenario> {
    let chatty = ClocksScenario {
        name: "chatty",
        description: "4 peers exchanging messages over a reordering network; no faults",
        nodes: 4,
        act_ms: 20,
        send_fraction: 0.6,
        events_per_node: 40,
        network: NetworkConditions { latency_min_ms: 1, latency_spread_ms: 40, ..NetworkConditions::default() },
        fault_kinds: FaultKinds::NONE,
        max_faults: 0,
        horizon_ms: 1_000,
    };
    let faults = ClocksScenario {
        name: "faults",
        description: "5 peers, mostly local work, with loss, duplication, partitions, pauses and clock jumps \
                      (logical clocks must not care)",
        nodes: 5,
        act_ms: 15,
        send_fraction: 0.3,
        events_per_node: 50,
        network: NetworkConditions { loss_percent: 5, duplicate_percent: 10, ..chatty.network.clone() },
        fault_kinds: FaultKinds { clock_jump: true, pause: true, ..FaultKinds::NETWORK },
        max_faults: 4,
        horizon_ms: 1_000,
    };
    vec![chatty, faults]
}

const ACT_TIMER: u64 = 1;

/// A peer that acts at random and stamps every event with the clocks under test.
pub struct ClockPeer<L, V> {
    id: u32,
    nodes: u32,
    act_ms: u64,
    send_fraction: f64,
    events_left: usize,
    lamport: L,
    vector: V,
    next_msg: u64,
    pub events: Vec<ClockEvent<V>>,
}

impl<L: LabLamport, V: LabVector> ClockPeer<L, V> {
    fn record(&mut self, ctx: &Ctx<'_, Stamped<V>>, kind: EventKind, lamport: u64) {
        let index = self.events.len();
        let time_ns = u64::try_from(ctx.now().as_nanos()).unwrap_or(0);
        self.events.push(ClockEvent { node: self.id, index, kind, lamport, vector: self.vector.clone(), time_ns });
    }
}

impl<L: LabLamport, V: LabVector> Node for ClockPeer<L, V> {
    type Msg = Stamped<V>;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Stamped<V>>) {
        let first_ms = ctx.rng().random_range(1..=self.act_ms);
        ctx.set_timer(Duration::from_millis(first_ms), ACT_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Stamped<V>>, _from: NodeId, msg: Stamped<V>) {
        let lamport = self.lamport.receive(msg.lamport);
        self.vector.receive(&msg.vector);
        self.record(ctx, EventKind::Receive { msg: msg.msg }, lamport);
        ctx.annotate(format!("receive m{} lamport={lamport} vector={:?}", msg.msg, self.vector));
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Stamped<V>>, _timer: TimerId, _tag: u64) {
        if self.events_left == 0 {
            return;
        }
        self.events_left -= 1;
        let send = self.nodes > 1 && ctx.rng().random_bool(self.send_fraction);
        let lamport = self.lamport.tick();
        self.vector.tick();
        if send {
            let offset = ctx.rng().random_range(1..self.nodes);
            let to = NodeId((self.id + offset) % self.nodes);
            let msg = (u64::from(self.id) << 32) | self.next_msg;
            self.next_msg += 1;
            self.record(ctx, EventKind::Send { msg }, lamport);
            ctx.annotate(format!("send m{msg} lamport={lamport} vector={:?}", self.vector));
            ctx.send(to, Stamped { msg, lamport, vector: self.vector.clone() });
        } else {
            self.record(ctx, EventKind::Local, lamport);
            ctx.annotate(format!("local lamport={lamport} vector={:?}", self.vector));
        }
        let gap_ms = ctx.rng().random_range(1..=2 * self.act_ms);
        ctx.set_timer(Duration::from_millis(gap_ms), ACT_TIMER);
    }
}

/// Runs one clocks scenario with the clocks `L` and `V` and judges every timestamp.
pub fn run_scenario<L: LabLamport, V: LabVector>(
    scenario: &ClocksScenario,
    seed: u64,
    faults: &[FaultWindow],
    folder: Option<&Path>,
) -> RunOutcome {
    let config = SimConfig { seed, network: scenario.network.to_config(), limits: crate::labs::service::run_limits() };
    let mut sim: Simulation<ClockPeer<L, V>> = match Simulation::new(config) {
        Ok(sim) => sim,
        Err(error) => return RunOutcome::failed_with("build", error.to_string()),
    };
    for i in 0..scenario.nodes {
        let s = scenario.clone();
        sim.add_node(&format!("n{}", i + 1), move |id, _storage| ClockPeer {
            id: id.0,
            nodes: s.nodes,
            act_ms: s.act_ms,
            send_fraction: s.send_fraction,
            events_left: s.events_per_node,
            lamport: L::new(id.0),
            vector: V::new(id.0, s.nodes),
            next_msg: 0,
            events: Vec::new(),
        });
    }
    for timed in timeline(faults, scenario.nodes, scenario.horizon_ms) {
        if let Err(error) = sim.schedule_fault(at(timed.at_ms), timed.fault) {
            return RunOutcome::failed_with("faults", error.to_string());
        }
    }
    let run_folder = folder.map(|dir| RunFolder::start(dir, &mut sim));
    let end_ms = scenario.horizon_ms + 2_000;
    if let Err(error) = sim.run_until(at(end_ms)) {
        return RunOutcome::failed_with("run", format!("the run stopped: {error}"));
    }
    let events: Vec<Vec<ClockEvent<V>>> =
        (0..scenario.nodes).map(|i| sim.node(NodeId(i)).map(|peer| peer.events.clone()).unwrap_or_default()).collect();
    let mut outcome = judge(&events);
    if let Some(started) = run_folder {
        let history = sim.take_history();
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
            "servers": sim.node_names(),
            "nodes": sim.node_names(),
            "sim_time_s": f64::from(end_ms) / 1e3,
        });
        outcome.report = Some(started.and_then(|folder| folder.finish(&mut sim, &history, info)));
    }
    outcome
}

fn describe<V: Debug>(event: &ClockEvent<V>) -> String {
    let what = match event.kind {
        EventKind::Local => "local event".to_string(),
        EventKind::Send { msg } => format!("send of m{msg}"),
        EventKind::Receive { msg } => format!("receive of m{msg}"),
    };
    format!("n{} event #{} ({what}; lamport {}, vector {:?})", event.node + 1, event.index, event.lamport, event.vector)
}

/// Checks every timestamp against the true happened-before relation of `events` (per peer, in
/// program order).
pub fn judge<V: LabVector>(events: &[Vec<ClockEvent<V>>]) -> RunOutcome {
    let mut outcome = RunOutcome::default();
    let all: Vec<&ClockEvent<V>> = events.iter().flatten().collect();
    let total = all.len();
    outcome.figure("events", total as f64);
    if total == 0 {
        outcome.fail("events", "no events were recorded");
        return outcome;
    }
    // Global index of each (node, index), and where each message was sent.
    let mut offset = Vec::with_capacity(events.len());
    let mut running = 0;
    for peer in events {
        offset.push(running);
        running += peer.len();
    }
    let global = |e: &ClockEvent<V>| offset[e.node as usize] + e.index;
    let mut send_of: std::collections::BTreeMap<u64, usize> = std::collections::BTreeMap::new();
    for event in &all {
        if let EventKind::Send { msg } = event.kind {
            send_of.insert(msg, global(event));
        }
    }
    // Direct predecessors: the previous event of the same peer, and for a receive its send.
    let mut predecessors: Vec<Vec<usize>> = vec![Vec::new(); total];
    for event in &all {
        let here = global(event);
        if event.index > 0 {
            predecessors[here].push(here - 1);
        }
        if let EventKind::Receive { msg } = event.kind {
            if let Some(send) = send_of.get(&msg) {
                predecessors[here].push(*send);
            }
        }
    }
    // The clock condition needs only the direct edges (< is transitive).
    for event in &all {
        let here = global(event);
        for before in &predecessors[here] {
            let earlier = all[*before];
            if earlier.lamport >= event.lamport {
                outcome.fail(
                    "lamport clock condition",
                    format!(
                        "{} happened before {}, but its Lamport timestamp {} is not smaller than {}",
                        describe(earlier),
                        describe(event),
                        earlier.lamport,
                        event.lamport
                    ),
                );
                break;
            }
        }
    }
    // The true happened-before relation as bit sets of ancestors, in an order where every
    // predecessor comes first (a message's send precedes its receives in true time, so sort by
    // the order events were recorded: peers' program order and send-before-receive).
    let order = topological_order(&predecessors);
    let Some(order) = order else {
        outcome.fail("events", "the recorded events have a causal cycle (a receive before its send)");
        return outcome;
    };
    let words = total.div_ceil(64);
    let mut ancestors: Vec<Vec<u64>> = vec![vec![0; words]; total];
    for &here in &order {
        let mut bits = vec![0u64; words];
        for &before in &predecessors[here] {
            bits[before / 64] |= 1 << (before % 64);
            for (word, theirs) in bits.iter_mut().zip(&ancestors[before]) {
                *word |= theirs;
            }
        }
        ancestors[here] = bits;
    }
    let happened_before = |a: usize, b: usize| ancestors[b][a / 64] & (1 << (a % 64)) != 0;
    'pairs: for a in 0..total {
        for b in 0..total {
            let truth = if a == b {
                Causality::Equal
            } else if happened_before(a, b) {
                Causality::Before
            } else if happened_before(b, a) {
                Causality::After
            } else {
                Causality::Concurrent
            };
            let claimed = all[a].vector.compare(&all[b].vector);
            if claimed != truth {
                let truth_text = match truth {
                    Causality::Equal => "the same event",
                    Causality::Before => "happened before",
                    Causality::After => "happened after",
                    Causality::Concurrent => "is concurrent with",
                };
                outcome.fail(
                    "vector clocks characterise causality",
                    format!(
                        "{} {truth_text} {}, but comparing their vector timestamps says {claimed:?}",
                        describe(all[a]),
                        describe(all[b])
                    ),
                );
                break 'pairs;
            }
        }
    }
    outcome
}

/// Kahn's algorithm over the predecessor lists; `None` on a cycle.
fn topological_order(predecessors: &[Vec<usize>]) -> Option<Vec<usize>> {
    let total = predecessors.len();
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); total];
    let mut waiting: Vec<usize> = vec![0; total];
    for (here, befores) in predecessors.iter().enumerate() {
        waiting[here] = befores.len();
        for &before in befores {
            successors[before].push(here);
        }
    }
    let mut ready: Vec<usize> = (0..total).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(total);
    while let Some(here) = ready.pop() {
        order.push(here);
        for &next in &successors[here] {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(next);
            }
        }
    }
    (order.len() == total).then_some(order)
}

/// Lab 1.
pub fn lab() -> Lab {
    const MUTANTS: &[Mutant] = &[
        Mutant {
            name: "lamport-no-max",
            bug: "a Lamport receive ticks but does not jump past the sender's timestamp",
            params: r#"{"lamport":"no-max"}"#,
            seeds: 8,
        },
        Mutant {
            name: "lamport-no-tick-on-receive",
            bug: "a Lamport receive takes the maximum but does not count itself",
            params: r#"{"lamport":"no-tick-on-receive"}"#,
            seeds: 8,
        },
        Mutant {
            name: "vector-no-tick-on-receive",
            bug: "a vector receive merges but does not tick its own entry",
            params: r#"{"vector":"no-tick-on-receive"}"#,
            seeds: 8,
        },
        Mutant {
            name: "vector-compare-by-sum",
            bug: "vectors compared by the sum of their entries: nothing is ever concurrent",
            params: r#"{"vector":"compare-by-sum"}"#,
            seeds: 8,
        },
    ];
    Lab {
        number: 1,
        name: "clocks",
        title: "Clocks and ordering: Lamport and vector clocks",
        guide: "docs/labs/01-clocks.md",
        reference: "Lamport and vector clocks of detsim-protocols (clocks::lamport, clocks::vector)",
        mutants: MUTANTS,
        skeleton: &[
            ("src/lib.rs", include_str!("../../lab-skeletons/clocks/src/lib.rs")),
            ("tests/grade.rs", include_str!("../../lab-skeletons/clocks/tests/grade.rs")),
        ],
        grade_variant,
    }
}

/// Which clocks a variant grades: `{"lamport": "reference" | "no-max" | "no-tick-on-receive",
/// "vector": "reference" | "no-tick-on-receive" | "compare-by-sum"}`.
fn grade_variant(lab: &Lab, variant: &Variant, options: &GradeOptions) -> Result<ScoreCard, String> {
    let params = lab.variant_params(variant);
    let choice = |field: &str| -> Result<String, String> {
        match params.get(field) {
            None => Ok("reference".to_string()),
            Some(serde_json::Value::String(name)) => Ok(name.clone()),
            Some(other) => Err(format!("clocks parameter {field} must be a string, got {other}")),
        }
    };
    if let Some(object) = params.as_object() {
        if let Some(unknown) = object.keys().find(|k| *k != "lamport" && *k != "vector") {
            return Err(format!("unknown clocks parameter {unknown:?} (expected lamport, vector)"));
        }
    } else if !params.is_null() {
        return Err(format!("clocks parameters must be a JSON object, got {params}"));
    }
    let label = lab.variant_label(variant);
    use mutants::*;
    type R = ReferenceLamport;
    type RV = ReferenceVector;
    let card = match (choice("lamport")?.as_str(), choice("vector")?.as_str()) {
        ("reference", "reference") => grade::<R, RV>(lab, &label, options),
        ("no-max", "reference") => grade::<LamportNoMax, RV>(lab, &label, options),
        ("no-tick-on-receive", "reference") => grade::<LamportNoTickOnReceive, RV>(lab, &label, options),
        ("reference", "no-tick-on-receive") => grade::<R, VectorNoTickOnReceive>(lab, &label, options),
        ("reference", "compare-by-sum") => grade::<R, VectorCompareBySum>(lab, &label, options),
        (lamport, vector) => {
            return Err(format!(
                "no clocks variant lamport={lamport:?} vector={vector:?} (lamport: reference, no-max, \
                 no-tick-on-receive; vector: reference, no-tick-on-receive, compare-by-sum; one mutant at a time)"
            ))
        }
    };
    Ok(card)
}

/// Grades a student's clocks (what the skeleton's `tests/grade.rs` calls).
pub fn grade_student<L: LabLamport, V: LabVector>() -> ScoreCard {
    grade::<L, V>(&lab(), "your implementation", &GradeOptions::from_env())
}

/// Grades the clocks `L` and `V` on the clocks lab.
pub fn grade<L: LabLamport, V: LabVector>(lab: &Lab, graded: &str, options: &GradeOptions) -> ScoreCard {
    let mut card = ScoreCard::new(lab, graded);
    for scenario in scenarios() {
        let space = CaseSpace {
            max_faults: scenario.max_faults,
            fault_kinds: if scenario.fault_kinds.is_empty() { FaultKinds::NODES } else { scenario.fault_kinds },
            max_window_ms: 400,
            ..CaseSpace::default()
        };
        let schedules = fault_schedule(scenario.nodes, scenario.horizon_ms, &space);
        let run = ScenarioRun {
            lab: lab.name,
            name: scenario.name,
            description: scenario.description,
            schedules: &schedules,
            budgets: &[],
        };
        let mut result =
            grade_scenario(&run, options, |seed, faults, folder| run_scenario::<L, V>(&scenario, seed, faults, folder));
        if result.failed_runs_of("lamport clock condition") == result.runs && result.runs > 0 {
            result.hints.push("Lamport (1978), rules IR1 and IR2: tick before each event; on a receive, first move past the timestamp in the message, then tick".into());
        }
        if result.failed_runs_of("vector clocks characterise causality") > 0 {
            result.hints.push("a vector receive is an event too: merge entry-wise maxima, then tick your own entry; compare entry-wise (all <= and one <) — incomparable vectors are concurrent events".into());
        }
        card.scenarios.push(result);
    }
    card
}
