//! A tiny protocol for testing the scenario machinery without the real ones: a single-copy register
//! at n1, optionally with asynchronous replicas that serve reads (stale reads: not linearizable).
//! Registered as "toy-register" by [`toy_registry`]; real scenarios name protocols from
//! detsim-protocols. With `observer = true` it adds an idle node named `observer` after the
//! clients, as real protocols add a view service or a load balancer.

use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Op, Simulation, TimerId, Value};
use detsim_protocols::{ClusterSpec, ProtocolEntry, WorkloadKind};
use rand::RngExt;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToyParams {
    /// Reads go to any server; replicas learn writes asynchronously (stale reads).
    #[serde(default)]
    stale_reads: bool,
    /// Add an idle node named `observer` after the clients (an extra node faults may name).
    #[serde(default)]
    observer: bool,
}

#[derive(Clone, Debug, Hash)]
enum ToyMsg {
    Write { op: u64, value: i64 },
    Read { op: u64 },
    WriteOk { op: u64 },
    ReadOk { op: u64, value: Option<i64> },
    Replicate { value: i64 },
}

impl Message for ToyMsg {
    fn kind(&self) -> &'static str {
        match self {
            ToyMsg::Write { .. } => "Write",
            ToyMsg::Read { .. } => "Read",
            ToyMsg::WriteOk { .. } => "WriteOk",
            ToyMsg::ReadOk { .. } => "ReadOk",
            ToyMsg::Replicate { .. } => "Replicate",
        }
    }
}

struct Server {
    value: Option<i64>,
    servers: usize,
}

struct Client {
    index: u64,
    servers: usize,
    stale_reads: bool,
    read_fraction: f64,
    timeout: Duration,
    think: Duration,
    stop_at_ns: Option<u64>,
    updates_until_ns: Option<u64>,
    /// History process: changes after an unknown outcome (Jepsen: that process never returns).
    process: u64,
    next_op: u64,
    pending: Option<(u64, Op)>,
    next_value: i64,
}

enum ToyNode {
    Server(Server),
    Client(Client),
    /// Does nothing: an extra node beyond the servers and clients.
    Observer,
}

const TAG_NEXT: u64 = u64::MAX;

impl Client {
    fn issue(&mut self, ctx: &mut Ctx<'_, ToyMsg>) {
        if self.stop_at_ns.is_some_and(|stop| ctx.now().0 >= stop as i64) {
            return;
        }
        let op_id = self.next_op;
        self.next_op += 1;
        let read = ctx.rng().random_bool(self.read_fraction)
            || self.updates_until_ns.is_some_and(|until| ctx.now().0 >= until as i64);
        let (to, msg, op) = if read {
            let to = if self.stale_reads { ctx.rng().random_range(0..self.servers) } else { 0 };
            (to, ToyMsg::Read { op: op_id }, Op::new("read", None, Value::Nil))
        } else {
            self.next_value += 1;
            let value = self.index as i64 * 1_000_000 + self.next_value;
            (0, ToyMsg::Write { op: op_id, value }, Op::new("write", None, Value::Int(value)))
        };
        ctx.invoke(self.process, op.clone());
        ctx.send(NodeId(to as u32), msg);
        self.pending = Some((op_id, op));
        ctx.set_timer(self.timeout, op_id);
    }

    fn complete(&mut self, ctx: &mut Ctx<'_, ToyMsg>, op_id: u64, value: Option<Option<i64>>) {
        let Some((pending_id, op)) = self.pending.take() else { return };
        if pending_id != op_id {
            self.pending = Some((pending_id, op));
            return;
        }
        let done = match value {
            Some(read) => Op::new("read", None, read.map_or(Value::Nil, Value::Int)),
            None => op,
        };
        ctx.ok(self.process, done);
        ctx.set_timer(self.think, TAG_NEXT);
    }
}

impl Node for ToyNode {
    type Msg = ToyMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, ToyMsg>) {
        if let ToyNode::Client(client) = self {
            client.issue(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, ToyMsg>, from: NodeId, msg: ToyMsg) {
        match self {
            ToyNode::Server(server) => match msg {
                ToyMsg::Write { op, value } => {
                    server.value = Some(value);
                    ctx.send(from, ToyMsg::WriteOk { op });
                    if ctx.id() == NodeId(0) {
                        ctx.send_all((1..server.servers as u32).map(NodeId), &ToyMsg::Replicate { value });
                    }
                }
                ToyMsg::Read { op } => ctx.send(from, ToyMsg::ReadOk { op, value: server.value }),
                ToyMsg::Replicate { value } => server.value = Some(value),
                ToyMsg::WriteOk { .. } | ToyMsg::ReadOk { .. } => {}
            },
            ToyNode::Client(client) => match msg {
                ToyMsg::WriteOk { op } => client.complete(ctx, op, None),
                ToyMsg::ReadOk { op, value } => client.complete(ctx, op, Some(value)),
                _ => {}
            },
            ToyNode::Observer => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, ToyMsg>, _timer: TimerId, tag: u64) {
        let ToyNode::Client(client) = self else { return };
        if tag == TAG_NEXT {
            client.issue(ctx);
            return;
        }
        if let Some((op_id, op)) = client.pending.take() {
            if op_id == tag {
                ctx.info(client.process, op, "timed-out");
                client.process += 1_000;
                client.issue(ctx);
            } else {
                client.pending = Some((op_id, op));
            }
        }
    }
}

fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    let params: ToyParams = spec.params()?;
    if spec.nodes == 0 {
        return Err("toy-register needs at least 1 node".into());
    }
    let mut sim: Simulation<ToyNode> = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let servers = spec.nodes;
    for i in 0..servers {
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |_, _| {
            ToyNode::Server(Server { value: None, servers })
        });
    }
    let workload = spec.workload.clone();
    for j in 0..workload.clients {
        let stale_reads = params.stale_reads;
        let workload = workload.clone();
        sim.add_node_with_clock(&ClusterSpec::client_name(j), spec.clock(servers + j), move |_, _| {
            ToyNode::Client(Client {
                index: j as u64,
                servers,
                stale_reads,
                read_fraction: workload.read_fraction,
                timeout: Duration::from_nanos(workload.timeout_ns),
                think: Duration::from_nanos(workload.think_time_ns.max(1)),
                stop_at_ns: workload.stop_at_ns,
                updates_until_ns: workload.updates_until_ns,
                process: j as u64,
                next_op: 0,
                pending: None,
                next_value: 0,
            })
        });
    }
    if params.observer {
        sim.add_node_with_clock("observer", spec.clock(servers + workload.clients), |_, _| ToyNode::Observer);
    }
    Ok(Box::new(sim))
}

/// The toy protocol's registry entry.
pub fn toy_entry() -> ProtocolEntry {
    ProtocolEntry {
        name: "toy-register",
        description: "test-only single-copy register at n1; stale_reads = true reads from async replicas",
        workloads: &[WorkloadKind::Register],
        build,
    }
}

/// A registry with only the toy protocol (for tests of the scenario machinery).
pub fn toy_registry() -> Vec<ProtocolEntry> {
    vec![toy_entry()]
}
