//! The "raft-5" benchmark: a five-server Raft cluster with ten closed-loop register clients for one
//! simulated hour, with a partition every 10 s (5 s long, cycling through isolate-the-leader,
//! majority/minority with the clients split, one-way and bridge). It reports how much faster than
//! real time the simulation runs (target: above 1,000x). The baseline runs the same clients against
//! one unreplicated server holding the same state machine: the cost of the simulator and workload
//! alone, without consensus.

use super::{timed, Bench, BenchResult};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{Ctx, Fault, Message, Node, NodeId, SimTime, Simulation, TimerId};
use detsim_protocols::raft;
use detsim_protocols::workload::{
    build_cluster, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, StateMachine, WorkloadClient,
};
use detsim_protocols::{ClusterSpec, WorkloadKind, WorkloadSpec};
use rand::RngExt;

pub fn benches() -> Vec<Bench> {
    vec![Bench { name: "raft-5", run: raft_5 }]
}

const SERVERS: usize = 5;
const CLIENTS: usize = 10;
const SIMULATED_S: u64 = 3_600;
const PARTITION_EVERY_S: u64 = 10;
const PARTITION_LASTS_S: u64 = 5;
const SEED: u64 = 5;

fn spec(servers: usize) -> ClusterSpec {
    let workload = WorkloadSpec {
        kind: WorkloadKind::Register,
        clients: CLIENTS,
        concurrency: 1,
        keys: 10,
        timeout_ns: 1_000_000_000,
        think_time_ns: 10_000_000,
        ..WorkloadSpec::default()
    };
    ClusterSpec::new(SEED, servers, workload)
}

/// The partition that starts at `round * PARTITION_EVERY_S`; `None` stands for "isolate whoever
/// leads then" (resolved when it starts).
fn partition(round: u64, layout: &ClusterLayout, rng: &mut detsim_core::SimRng) -> Option<Fault> {
    let mut servers = layout.servers.clone();
    for i in (1..servers.len()).rev() {
        servers.swap(i, rng.random_range(0..=i));
    }
    match round % 4 {
        0 => None,
        1 => {
            let mut minority = servers[..2].to_vec();
            let mut majority = servers[2..].to_vec();
            for (i, client) in layout.clients.iter().enumerate() {
                if i % 2 == 0 {
                    minority.push(*client);
                } else {
                    majority.push(*client);
                }
            }
            Some(Fault::Partition { groups: vec![minority, majority] })
        }
        2 => Some(Fault::OneWay { from: servers[..2].to_vec(), to: servers[2..].to_vec() }),
        _ => Some(Fault::Bridge { left: servers[1..3].to_vec(), right: servers[3..].to_vec(), bridge: servers[0] }),
    }
}

struct Outcome {
    ok: u64,
    info: u64,
    stats: detsim_core::RunStats,
    trace_hash: u64,
    /// The finished simulation, handed back so that freeing it (an hour of history and logs) is
    /// not timed, as building it is not.
    _teardown: Box<dyn std::any::Any>,
}

fn outcome<N: Node + 'static>(sim: Simulation<N>) -> Outcome {
    let history = sim.history();
    let count = |kind| history.events.iter().filter(|e| e.kind == kind).count() as u64;
    Outcome {
        ok: count(detsim_core::EventType::Ok),
        info: count(detsim_core::EventType::Info),
        stats: sim.stats().clone(),
        trace_hash: sim.trace_hash(),
        _teardown: Box::new(sim),
    }
}

fn run_raft(simulated_s: u64) -> Outcome {
    let spec = spec(SERVERS);
    let layout = ClusterLayout::of(&spec);
    let mut sim = raft::build_simulation(&spec).expect("the bench spec is valid");
    let mut rng = derive_stream(SEED, StreamPurpose::Nemesis, 0);
    let mut round = 1;
    while round * PARTITION_EVERY_S < simulated_s {
        let start = SimTime::from_secs(round * PARTITION_EVERY_S);
        sim.run_until(start).expect("run");
        let fault = partition(round, &layout, &mut rng)
            .unwrap_or_else(|| Fault::Isolate { node: raft::leader(&sim).unwrap_or(layout.servers[0]) });
        sim.schedule_fault(start, fault).expect("valid fault");
        sim.schedule_fault(start + std::time::Duration::from_secs(PARTITION_LASTS_S), Fault::Heal).expect("heal");
        round += 1;
    }
    sim.run_until(SimTime::from_secs(simulated_s)).expect("run");
    // The history is kept in memory for the whole hour: it is part of what a run costs.
    outcome(sim)
}

/// The simplest store the same clients can talk to: one server, no replication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SingleMsg {
    Request(ClientRequest),
    Reply(ClientReply),
}

impl Message for SingleMsg {}

#[derive(Clone)]
struct SingleClient;

impl ClientProtocol for SingleClient {
    type Msg = SingleMsg;
    fn wrap_request(&self, request: ClientRequest) -> SingleMsg {
        SingleMsg::Request(request)
    }
    fn into_reply(&self, msg: SingleMsg) -> Option<ClientReply> {
        match msg {
            SingleMsg::Reply(reply) => Some(reply),
            SingleMsg::Request(_) => None,
        }
    }
}

enum SingleNode {
    Server(StateMachine),
    Client(WorkloadClient<SingleClient>),
}

impl Node for SingleNode {
    type Msg = SingleMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, SingleMsg>) {
        if let SingleNode::Client(client) = self {
            client.on_start(ctx);
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, SingleMsg>, from: NodeId, msg: SingleMsg) {
        match (self, msg) {
            (SingleNode::Server(store), SingleMsg::Request(request)) => {
                let result = store.apply_request(&request);
                ctx.send(from, SingleMsg::Reply(ClientReply::to(&request, result)));
            }
            (SingleNode::Client(client), msg) => client.on_message(ctx, from, msg),
            (SingleNode::Server(_), SingleMsg::Reply(_)) => {}
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, SingleMsg>, timer: TimerId, tag: u64) {
        if let SingleNode::Client(client) = self {
            client.on_timer(ctx, timer, tag);
        }
    }
}

fn run_single(simulated_s: u64) -> Outcome {
    let spec = spec(1);
    let layout = ClusterLayout::of(&spec);
    let workload = spec.workload.clone();
    let mut sim = build_cluster(
        &spec,
        |_, _| SingleNode::Server(StateMachine::new(WorkloadKind::Register)),
        move |index| SingleNode::Client(WorkloadClient::new(SingleClient, &workload, index, layout.servers.clone())),
    )
    .expect("the baseline spec is valid");
    sim.run_until(SimTime::from_secs(simulated_s)).expect("run");
    outcome(sim)
}

fn raft_5() -> Vec<BenchResult> {
    run_raft(20); // warm-up
                  // Each outcome holds its finished simulation until the end of this function, out of the timing.
    let (raft, wall_s) = timed(|| run_raft(SIMULATED_S));
    let (single, single_s) = timed(|| run_single(SIMULATED_S));
    let ratio = |wall_s: f64| if wall_s > 0.0 { SIMULATED_S as f64 / wall_s } else { 0.0 };
    vec![
        BenchResult::new("raft-5", raft.ok, wall_s)
            .with(
                "unit",
                "ok client ops (5 servers, 10 closed-loop register clients, 1 simulated hour, a 5 s partition every 10 s)",
            )
            .with("sim_s", SIMULATED_S)
            .with("sim_to_wall", ratio(wall_s))
            .with("target_sim_to_wall", 1_000)
            .with("info_ops", raft.info)
            .with("events", raft.stats.events)
            .with("sends", raft.stats.sends)
            .with("timers_fired", raft.stats.timers_fired)
            .with("trace_hash", format!("{:016x}", raft.trace_hash)),
        BenchResult::new("raft-5-baseline-single", single.ok, single_s)
            .with("unit", "ok client ops, same clients against one unreplicated server, no faults")
            .with("sim_s", SIMULATED_S)
            .with("sim_to_wall", ratio(single_s))
            .with("events", single.stats.events)
            .with("sends", single.stats.sends)
            .with("timers_fired", single.stats.timers_fired),
    ]
}
