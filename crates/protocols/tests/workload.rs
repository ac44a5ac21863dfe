//! The shared client workloads against a toy single-server store: every workload kind produces a
//! well-formed history the checkers accept, timeouts become info and retire the process, redirects
//! are followed, open loop keeps its rate, and the nemesis draws are deterministic.

use detsim_check::{check_linearizable, LinearizabilityOptions, Model};
use detsim_core::history::{EventType, History, Op, ProcessId, Value};
use detsim_core::{Ctx, Fault, Message, Node, NodeId, SimTime, Simulation, Storage, TimerId};
use detsim_protocols::workload::nemesis::{NemesisOptions, NemesisPlan, PartitionKind, PlannedFault};
use detsim_protocols::workload::{
    build_cluster, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, ReplyResult, RetryPolicy, StateMachine,
    WorkloadClient,
};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, Hash)]
enum ToyMsg {
    Request(ClientRequest),
    Reply(ClientReply),
}
impl Message for ToyMsg {}

#[derive(Clone)]
struct ToyClient;
impl ClientProtocol for ToyClient {
    type Msg = ToyMsg;
    fn wrap_request(&self, request: ClientRequest) -> ToyMsg {
        ToyMsg::Request(request)
    }
    fn into_reply(&self, msg: ToyMsg) -> Option<ClientReply> {
        match msg {
            ToyMsg::Reply(reply) => Some(reply),
            ToyMsg::Request(_) => None,
        }
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { backoff_ms: 5, ..RetryPolicy::default() }
    }
}

/// Server 0 is the store; any other server redirects to it (so redirects get exercised). With
/// `drop_every`, the store ignores every n-th request (so timeouts get exercised).
struct ToyServer {
    index: usize,
    store: StateMachine,
    drop_every: u64,
    seen: u64,
}

enum ToyNode {
    Server(ToyServer),
    Client(WorkloadClient<ToyClient>),
}

impl Node for ToyNode {
    type Msg = ToyMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, ToyMsg>) {
        if let ToyNode::Client(client) = self {
            client.on_start(ctx);
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, ToyMsg>, from: NodeId, msg: ToyMsg) {
        match self {
            ToyNode::Client(client) => client.on_message(ctx, from, msg),
            ToyNode::Server(server) => {
                let ToyMsg::Request(request) = msg else { return };
                if server.index != 0 {
                    let reply = ClientReply::to(&request, ReplyResult::Redirect(Some(NodeId(0))));
                    ctx.send(from, ToyMsg::Reply(reply));
                    return;
                }
                server.seen += 1;
                if server.drop_every > 0 && server.seen % server.drop_every == 0 {
                    return;
                }
                let result = server.store.apply_request(&request);
                ctx.send(from, ToyMsg::Reply(ClientReply::to(&request, result)));
            }
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, ToyMsg>, timer: TimerId, tag: u64) {
        if let ToyNode::Client(client) = self {
            client.on_timer(ctx, timer, tag);
        }
    }
}

fn toy_sim(spec: &ClusterSpec, drop_every: u64) -> Simulation<ToyNode> {
    let layout = ClusterLayout::of(spec);
    let workload = spec.workload.clone();
    let kind = workload.kind;
    build_cluster(
        spec,
        move |index, _storage| {
            ToyNode::Server(ToyServer { index, store: StateMachine::new(kind), drop_every, seen: 0 })
        },
        move |index| ToyNode::Client(WorkloadClient::new(ToyClient, &workload, index, layout.servers.clone())),
    )
    .expect("valid spec")
}

fn run(kind: WorkloadKind, seed: u64, drop_every: u64) -> History {
    let workload =
        WorkloadSpec { kind, clients: 3, concurrency: 2, keys: 3, timeout_ns: 200_000_000, ..WorkloadSpec::default() };
    let spec = ClusterSpec::new(seed, 2, workload);
    let mut sim = toy_sim(&spec, drop_every);
    sim.run_until(SimTime::from_secs(2)).expect("run");
    sim.take_history()
}

fn counts(history: &History) -> BTreeMap<EventType, usize> {
    let mut counts = BTreeMap::new();
    for event in &history.events {
        *counts.entry(event.kind).or_insert(0) += 1;
    }
    counts
}

/// Every process is sequential and never invokes after an info.
fn assert_well_formed(history: &History) {
    let mut open: BTreeMap<ProcessId, bool> = BTreeMap::new();
    let mut retired: BTreeSet<ProcessId> = BTreeSet::new();
    for event in &history.events {
        assert!(!retired.contains(&event.process), "process {} acts after an info", event.process);
        let busy = open.entry(event.process).or_insert(false);
        match event.kind {
            EventType::Invoke => {
                assert!(!*busy, "process {} invokes twice", event.process);
                *busy = true;
            }
            kind => {
                assert!(*busy, "process {} completes without invoking", event.process);
                *busy = false;
                if kind == EventType::Info {
                    retired.insert(event.process);
                }
            }
        }
    }
}

fn linearizable(history: &History, model: Model) -> bool {
    let verdict = check_linearizable(history, model, &LinearizabilityOptions::default()).expect("well-formed history");
    verdict.is_valid()
}

#[test]
fn single_object_workloads_are_linearizable_on_a_single_store() {
    for (kind, model) in [
        (WorkloadKind::Register, Model::CasRegister),
        (WorkloadKind::KeyValue, Model::KeyValue),
        (WorkloadKind::Counter, Model::Counter),
        (WorkloadKind::Set, Model::Set),
    ] {
        let history = run(kind, 7, 0);
        assert_well_formed(&history);
        let counts = counts(&history);
        assert!(counts.get(&EventType::Ok).copied().unwrap_or(0) > 100, "{kind:?}: ops complete: {counts:?}");
        assert_eq!(counts.get(&EventType::Info), None, "{kind:?}: no timeouts without faults");
        assert!(linearizable(&history, model), "{kind:?} is linearizable on one store");
    }
}

#[test]
fn register_workload_mixes_reads_writes_and_cas_with_unique_values() {
    let history = run(WorkloadKind::Register, 3, 0);
    let functions: BTreeSet<&str> = history.events.iter().map(|e| e.f.as_str()).collect();
    assert_eq!(functions, BTreeSet::from(["cas", "read", "write"]));
    let written: Vec<i64> = history
        .events
        .iter()
        .filter(|e| e.kind == EventType::Invoke && e.f == "write")
        .filter_map(|e| e.value.as_int())
        .collect();
    let distinct: BTreeSet<i64> = written.iter().copied().collect();
    assert_eq!(distinct.len(), written.len(), "written values are unique");
    assert!(history.events.iter().any(|e| e.f == "cas" && e.kind == EventType::Ok), "some cas succeed");
}

#[test]
fn transactions_fill_in_their_reads() {
    for kind in [WorkloadKind::ListAppend, WorkloadKind::RwRegister] {
        let history = run(kind, 11, 0);
        assert_well_formed(&history);
        let ok_txns: Vec<_> = history.events.iter().filter(|e| e.kind == EventType::Ok).collect();
        assert!(ok_txns.len() > 50);
        let filled_reads = ok_txns
            .iter()
            .flat_map(|e| e.value.as_list().expect("txn value is a list").to_vec())
            .filter(|m| {
                let m = m.as_list().expect("micro-op is a list");
                m[0].as_str() == Some("r") && !m[2].is_nil()
            })
            .count();
        assert!(filled_reads > 0, "{kind:?}: some reads see writes");
    }
}

#[test]
fn timeouts_record_info_and_retire_the_process() {
    let history = run(WorkloadKind::Register, 5, 7);
    assert_well_formed(&history);
    let counts = counts(&history);
    assert!(counts.get(&EventType::Info).copied().unwrap_or(0) > 3, "dropped requests time out: {counts:?}");
    let processes: BTreeSet<ProcessId> = history.events.iter().map(|e| e.process).collect();
    assert!(processes.len() > 6, "retired processes are replaced by fresh ones");
    assert!(linearizable(&history, Model::CasRegister));
}

#[test]
fn open_loop_issues_about_its_rate() {
    let workload = WorkloadSpec {
        kind: WorkloadKind::Register,
        clients: 2,
        rate_per_s: Some(200.0),
        stop_at_ns: Some(1_000_000_000),
        ..WorkloadSpec::default()
    };
    let spec = ClusterSpec::new(1, 1, workload);
    let mut sim = toy_sim(&spec, 0);
    sim.run_until(SimTime::from_secs(2)).expect("run");
    let invokes = sim.history().events.iter().filter(|e| e.kind == EventType::Invoke).count();
    // Two clients at 200/s for one second: 400 expected; Poisson noise is well within ±25%.
    assert!((300..=500).contains(&invokes), "invokes {invokes}");
    assert!(sim.history().events.iter().all(|e| e.time_ns <= 1_200_000_000), "no invoke after stop_at");
    assert_well_formed(sim.history());
}

#[test]
fn max_ops_per_client_is_respected() {
    let workload = WorkloadSpec { clients: 3, concurrency: 3, max_ops_per_client: Some(10), ..WorkloadSpec::default() };
    let spec = ClusterSpec::new(2, 1, workload);
    let mut sim = toy_sim(&spec, 0);
    sim.run_until(SimTime::from_secs(2)).expect("run");
    let invokes = sim.history().events.iter().filter(|e| e.kind == EventType::Invoke).count();
    assert_eq!(invokes, 30);
}

#[test]
fn same_seed_same_history_and_nemesis() {
    assert_eq!(run(WorkloadKind::KeyValue, 9, 5), run(WorkloadKind::KeyValue, 9, 5));
    assert_ne!(run(WorkloadKind::KeyValue, 9, 5), run(WorkloadKind::KeyValue, 10, 5));
    let spec = ClusterSpec::new(0, 5, WorkloadSpec::default());
    let layout = ClusterLayout::of(&spec);
    let options = NemesisOptions::default();
    let a = NemesisPlan::random(42, &layout, &options);
    assert_eq!(a, NemesisPlan::random(42, &layout, &options));
    assert_ne!(a, NemesisPlan::random(43, &layout, &options));
}

#[test]
fn nemesis_draws_every_kind_and_heals_at_the_end() {
    let spec = ClusterSpec::new(0, 5, WorkloadSpec::default());
    let layout = ClusterLayout::of(&spec);
    let options = NemesisOptions::default();
    let mut kinds = BTreeSet::new();
    for seed in 0..200 {
        let plan = NemesisPlan::random(seed, &layout, &options);
        let last = plan.steps.last().expect("a plan ends with a heal");
        assert_eq!(last.at, plan.heal_at);
        assert!(plan.steps.windows(2).all(|w| w[0].at <= w[1].at), "steps in time order");
        assert!(plan.steps.iter().all(|s| s.at <= plan.heal_at), "nothing after the heal");
        for line in &plan.description {
            kinds.insert(line.split_whitespace().next().unwrap_or("").to_string());
        }
        // Every crash has its restart, every pause its resume.
        let mut down = BTreeMap::new();
        for step in &plan.steps {
            if let detsim_protocols::workload::nemesis::PlannedFault::Fault(fault) = &step.fault {
                match fault {
                    detsim_core::Fault::Crash { node } | detsim_core::Fault::Pause { node } => {
                        *down.entry(*node).or_insert(0) += 1;
                    }
                    detsim_core::Fault::Restart { node } | detsim_core::Fault::Resume { node } => {
                        *down.entry(*node).or_insert(0) -= 1;
                    }
                    _ => {}
                }
                assert!(down.values().filter(|v| **v > 0).count() <= 2, "at most a minority down at once");
            }
        }
        assert!(down.values().all(|v| *v == 0), "every node is back by the heal");
    }
    for kind in ["partition", "isolate", "one-way", "bridge", "crash", "pause", "loss", "ClockJump", "ClockDrift"] {
        assert!(kinds.contains(kind), "nemesis draws {kind}: {kinds:?}");
    }
}

#[test]
fn default_nemesis_schedule_is_pinned() {
    // Other protocols' tests pin failing seeds, so what a seed draws under the default options must
    // not change when options are added; this is seed 42 on five servers and three clients.
    let spec = ClusterSpec::new(0, 5, WorkloadSpec::default());
    let plan = NemesisPlan::random(42, &ClusterLayout::of(&spec), &NemesisOptions::default());
    let expected = [
        "partition [c3 n1 n5 c1] | [n3 n2 c2 n4] from 359.369365ms to 1.264369365s",
        "partition [n2 n3 c2 c3] | [n1 n4 n5 c1] from 1.326874964s to 1.851874964s",
        "ClockDrift { node: NodeId(2), drift_ppm: 606.3200132712425 } at 2.144908628s",
        "crash n4 from 2.656092621s to 4s",
        "partition [n5] | [n2 n4 n1 n3 c1 c2 c3] from 3.330221897s to 3.700221897s",
        "loss 0.57 at n1 from 3.532484683s to 4s",
        "pause n3 from 3.703187442s to 4s",
    ];
    assert_eq!(plan.description, expected);
}

#[test]
fn nemesis_partition_kinds_and_latency_spikes_are_selectable() {
    let spec = ClusterSpec::new(0, 5, WorkloadSpec::default());
    let layout = ClusterLayout::of(&spec);
    let only_bridges = NemesisOptions {
        partition_kinds: vec![PartitionKind::Bridge],
        crashes: false,
        pauses: false,
        loss: false,
        clocks: false,
        ..NemesisOptions::default()
    };
    let mut bridges = 0;
    for seed in 0..50 {
        let plan = NemesisPlan::random(seed, &layout, &only_bridges);
        for line in &plan.description {
            assert!(line.starts_with("bridge "), "seed {seed}: only bridges, got {line}");
            bridges += 1;
        }
        assert!(plan.steps.iter().all(|s| !matches!(s.fault, PlannedFault::IsolateLeader { .. })));
    }
    assert!(bridges > 50, "bridges are drawn: {bridges}");

    let spikes = |options: &NemesisOptions| {
        (0..50)
            .flat_map(|seed| NemesisPlan::random(seed, &layout, options).steps)
            .filter(|s| matches!(s.fault, PlannedFault::Fault(Fault::LatencySpike { .. })))
            .count()
    };
    assert_eq!(spikes(&NemesisOptions::default()), 0, "latency spikes are off by default");
    let with_spikes = NemesisOptions { latency_spikes: true, ..NemesisOptions::default() };
    assert!(spikes(&with_spikes) > 10, "latency spikes when asked");
    for seed in 0..50 {
        let steps = NemesisPlan::random(seed, &layout, &with_spikes).steps;
        let starts =
            steps.iter().filter(|s| matches!(s.fault, PlannedFault::Fault(Fault::LatencySpike { .. }))).count();
        let ends =
            steps.iter().filter(|s| matches!(s.fault, PlannedFault::Fault(Fault::LatencySpikeEnd { .. }))).count();
        assert_eq!(starts, ends, "seed {seed}: every spike ends");
    }
}

#[test]
fn nemesis_options_read_from_json_with_defaults() {
    let options: NemesisOptions = serde_json::from_value(
        serde_json::json!({ "heal_at_ms": 2000, "partition_kinds": ["isolate-leader", "one-way"] }),
    )
    .expect("valid options");
    assert_eq!(options.heal_at_ms, 2000);
    assert_eq!(options.partition_kinds, vec![PartitionKind::IsolateLeader, PartitionKind::OneWay]);
    assert_eq!(options.mean_interval_ms, NemesisOptions::default().mean_interval_ms);
    assert!(serde_json::from_value::<NemesisOptions>(serde_json::json!({ "heal_at": 1 })).is_err());
}

fn request(process: ProcessId, seq: u64, op: Op) -> ClientRequest {
    ClientRequest { process, seq, op }
}

#[test]
fn state_machine_survives_durable_storage() {
    // Replicas store snapshots with `Storage::put` (JSON): integer keys must come back as integers,
    // and the key of key-less operations (nil) must serialise at all.
    let mut machine = StateMachine::new(WorkloadKind::Register);
    machine.apply(&Op::new("write", Some(Value::Int(0)), Value::Int(7)));
    machine.apply(&Op::new("write", Some(Value::Str("0".into())), Value::Int(8)));
    machine.apply(&Op::new("write", None, Value::Int(9)));
    machine.apply(&Op::new(
        "txn",
        None,
        Value::List(vec![Value::List(vec!["w".into(), Value::Int(1), Value::Int(3)])]),
    ));
    machine.apply_request(&request(4, 1, Op::new("write", Some(Value::Int(1)), Value::Int(10))));
    let mut storage = Storage::default();
    storage.put("snapshot", &machine);
    let restored: StateMachine = storage.get("snapshot").expect("stored");
    assert_eq!(restored, machine);
    assert_eq!(restored.object(&Value::Int(0)), Some(&Value::Int(7)));
    assert_eq!(restored.object(&Value::Str("0".into())), Some(&Value::Int(8)));
    assert_eq!(restored.object(&Value::Nil), Some(&Value::Int(9)));
}

#[test]
fn state_machine_runs_each_request_once_and_remembers_its_result() {
    let mut machine = StateMachine::new(WorkloadKind::Counter);
    let add = request(3, 1, Op::new("add", Some(Value::Int(0)), Value::Int(2)));
    assert_eq!(machine.recorded_result(&add), None);
    assert_eq!(machine.apply_request(&add), ReplyResult::Ok(Value::Int(2)));
    assert_eq!(machine.apply_request(&add), ReplyResult::Ok(Value::Int(2)), "a retry gets the first result");
    assert_eq!(machine.recorded_result(&add), Some(&ReplyResult::Ok(Value::Int(2))));
    assert_eq!(machine.object(&Value::Int(0)), Some(&Value::Int(2)), "applied once");
    let read = request(3, 2, Op::new("read", Some(Value::Int(0)), Value::Nil));
    assert_eq!(machine.apply_request(&read), ReplyResult::Ok(Value::Int(2)));
    assert_eq!(machine.recorded_result(&read), None, "reads are not remembered");
    let second = request(3, 3, Op::new("add", Some(Value::Int(0)), Value::Int(1)));
    assert_eq!(machine.apply_request(&second), ReplyResult::Ok(Value::Int(1)));
    assert!(matches!(machine.apply_request(&add), ReplyResult::Unknown(_)), "older than the last write");
    assert_eq!(machine.object(&Value::Int(0)), Some(&Value::Int(3)));
}

#[test]
fn a_transaction_with_a_bad_micro_op_has_no_effect() {
    let mut machine = StateMachine::new(WorkloadKind::ListAppend);
    let txn = Op::new(
        "txn",
        None,
        Value::List(vec![
            Value::List(vec!["append".into(), Value::Int(1), Value::Int(5)]),
            Value::List(vec!["frobnicate".into(), Value::Int(1), Value::Int(6)]),
        ]),
    );
    assert!(matches!(machine.apply(&txn), ReplyResult::Fail(_)));
    let read = Op::new("txn", None, Value::List(vec![Value::List(vec!["r".into(), Value::Int(1), Value::Nil])]));
    assert_eq!(
        machine.apply(&read),
        ReplyResult::Ok(Value::List(vec![Value::List(vec!["r".into(), Value::Int(1), Value::Nil])])),
        "the good append before the bad micro-op did not happen"
    );
    assert_eq!(machine.applied_count(), 0);
}
