//! The harness around a user's protocol: the [`Service`] contract (how a client request and a reply
//! travel inside the user's message type), the client nodes that issue a workload and record the
//! history, and [`Actor`], the node type a simulation of servers plus clients runs.

use detsim_core::{Ctx, Message, Node, NodeId, Op, ProcessId, TimerId, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A client's request, as it arrives at a server inside the user's message type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Unique in the run; the reply must carry it back.
    pub id: u64,
    /// `read` (value nil), `write` (value: what to write) or `cas` (value `[from to]`), with an
    /// optional key; other workloads use the names of the checkers' models (`add`, `get`, `put`, ...).
    pub op: Op,
}

/// A server's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientReply {
    /// The operation took effect; `value` is a read's result (writes may send `Value::Nil`).
    Ok { id: u64, value: Value },
    /// The operation certainly did not take effect (for a cas: the register did not hold `from`).
    Fail { id: u64, error: String },
    /// This server cannot serve the request; try `leader` (or the next server). Not recorded.
    NotLeader { id: u64, leader: Option<NodeId> },
}

impl ClientReply {
    pub fn id(&self) -> u64 {
        match self {
            ClientReply::Ok { id, .. } | ClientReply::Fail { id, .. } | ClientReply::NotLeader { id, .. } => *id,
        }
    }
}

/// A protocol that serves client operations: says how a client request is wrapped into the
/// protocol's message type, and how a reply to a client is recognised. Servers reply with
/// `ctx.send(from, ...)` to the node the request came from.
pub trait Service: Node {
    /// Wraps a request for a server.
    fn request(request: ClientRequest) -> Self::Msg;
    /// The reply inside `msg`, if `msg` is a reply to a client.
    fn reply(msg: &Self::Msg) -> Option<ClientReply>;
}

/// How clients behave (times in milliseconds of their own, perfect, clocks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSettings {
    /// After this long without an answer an operation is recorded as `info` (unknown outcome).
    pub timeout_ms: u64,
    /// After a `NotLeader` reply, wait this long before trying again (inside the same operation).
    pub redirect_delay_ms: u64,
    /// Pause between the end of one operation and the start of the next.
    pub think_ms: u64,
    /// From this time on, a client whose plan is done keeps reading until one read succeeds, so
    /// that liveness after the heal can be measured. `None`: no probing.
    pub probe_from_ms: Option<u64>,
    /// At this time, a client whose plan is done reads every key of its plan once more: the final
    /// reads eventual-convergence checking needs. `None`: no final reads.
    pub final_read_at_ms: Option<u64>,
    /// No operation starts at or after this time.
    pub stop_at_ms: u64,
    /// Spread the plan over time: the plan's `k`-th operation starts no earlier than `k * pace_ms`
    /// (so faults late in the run still meet operations). 0: back to back.
    pub pace_ms: u64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            timeout_ms: 500,
            redirect_delay_ms: 10,
            think_ms: 20,
            probe_from_ms: None,
            final_read_at_ms: None,
            stop_at_ms: u64::MAX,
            pace_ms: 0,
        }
    }
}

/// Timer tags of clients: the kind in the top byte, the request id below.
mod tag {
    pub const NEXT: u64 = 1 << 56;
    pub const TIMEOUT: u64 = 2 << 56;
    pub const RETRY: u64 = 3 << 56;
    pub const KIND_MASK: u64 = 0xff << 56;
}

#[derive(Clone, Debug)]
struct Pending {
    request_id: u64,
    op: Op,
    timeout: TimerId,
    /// When the operation was invoked (the client's clock), to tell probes after the heal apart.
    invoked_ms: u64,
}

/// A client node: issues its planned operations one at a time (closed loop), records each as
/// invoke then ok / fail / info, follows `NotLeader` hints, and opens a new process after an
/// unknown outcome (a process that got `info` never invokes again, as in Jepsen).
#[derive(Clone, Debug)]
pub struct Client {
    index: u32,
    clients: u32,
    servers: u32,
    settings: ClientSettings,
    plan: Vec<Op>,
    next_in_plan: usize,
    process: ProcessId,
    pending: Option<Pending>,
    target: NodeId,
    next_request_seq: u64,
    /// A read has succeeded since `probe_from_ms`: stop probing.
    probed_ok: bool,
    /// The keys still to read at `final_read_at_ms` (filled when the plan is set).
    final_reads: Vec<Option<Value>>,
    /// Ops issued so far (the plan's and the probes).
    issued: u64,
}

/// The most operations one client may issue (plan and probes): a limit so a run cannot loop.
pub const MAX_OPS_PER_CLIENT: u64 = 100_000;

impl Client {
    /// Client `index` (of `clients`) of a cluster with `servers` servers, with its plan.
    pub fn new(index: u32, clients: u32, servers: u32, settings: ClientSettings, plan: Vec<Op>) -> Self {
        assert!(index < clients, "client index {index} out of {clients}");
        assert!(servers > 0, "a cluster has at least one server");
        let mut final_reads: Vec<Option<Value>> = Vec::new();
        if settings.final_read_at_ms.is_some() {
            for op in &plan {
                if !final_reads.contains(&op.key) {
                    final_reads.push(op.key.clone());
                }
            }
        }
        Client {
            index,
            clients,
            servers,
            settings,
            plan,
            next_in_plan: 0,
            process: u64::from(index),
            pending: None,
            target: NodeId(index % servers),
            next_request_seq: 0,
            probed_ok: false,
            final_reads,
            issued: 0,
        }
    }

    fn now_ms(ctx: &Ctx<'_, impl Message>) -> u64 {
        u64::try_from(ctx.now().as_nanos().max(0)).expect("non-negative") / 1_000_000
    }

    fn on_start<S: Service>(&mut self, ctx: &mut Ctx<'_, S::Msg>) {
        // Clients start a little apart so that their first requests do not all tie.
        ctx.set_timer(Duration::from_millis(1 + u64::from(self.index)), tag::NEXT);
    }

    /// Starts the next operation if the client is idle and has one to do.
    fn issue_next<S: Service>(&mut self, ctx: &mut Ctx<'_, S::Msg>) {
        if self.pending.is_some() || self.issued >= MAX_OPS_PER_CLIENT {
            return;
        }
        let now_ms = Self::now_ms(ctx);
        if now_ms >= self.settings.stop_at_ms {
            return;
        }
        let op = if self.next_in_plan < self.plan.len() {
            let not_before_ms = self.next_in_plan as u64 * self.settings.pace_ms;
            if now_ms < not_before_ms {
                ctx.set_timer(Duration::from_millis(not_before_ms - now_ms), tag::NEXT);
                return;
            }
            self.next_in_plan += 1;
            self.plan[self.next_in_plan - 1].clone()
        } else {
            match (self.settings.probe_from_ms, self.settings.final_read_at_ms) {
                (Some(from_ms), _) if !self.probed_ok => {
                    if now_ms < from_ms {
                        ctx.set_timer(Duration::from_millis(from_ms - now_ms), tag::NEXT);
                        return;
                    }
                    let key = self.plan.first().and_then(|op| op.key.clone());
                    Op::new("read", key, Value::Nil)
                }
                (_, Some(final_ms)) if !self.final_reads.is_empty() => {
                    if now_ms < final_ms {
                        ctx.set_timer(Duration::from_millis(final_ms - now_ms), tag::NEXT);
                        return;
                    }
                    Op::new("read", self.final_reads.remove(0), Value::Nil)
                }
                _ => return,
            }
        };
        self.issued += 1;
        let request_id = (u64::from(self.index) << 40) | self.next_request_seq;
        self.next_request_seq += 1;
        ctx.invoke(self.process, op.clone());
        let timeout = ctx.set_timer(Duration::from_millis(self.settings.timeout_ms), tag::TIMEOUT | request_id);
        self.pending = Some(Pending { request_id, op: op.clone(), timeout, invoked_ms: now_ms });
        ctx.send(self.target, S::request(ClientRequest { id: request_id, op }));
    }

    fn finish<S: Service>(&mut self, ctx: &mut Ctx<'_, S::Msg>) {
        self.pending = None;
        ctx.set_timer(Duration::from_millis(self.settings.think_ms), tag::NEXT);
    }

    fn next_server(&mut self) {
        self.target = NodeId((self.target.0 + 1) % self.servers);
    }

    fn on_message<S: Service>(&mut self, ctx: &mut Ctx<'_, S::Msg>, from: NodeId, msg: S::Msg) {
        let Some(reply) = S::reply(&msg) else {
            return; // clients only listen to replies
        };
        let Some(pending) = self.pending.clone() else {
            return; // a late or duplicated reply to an operation already ended
        };
        if reply.id() != pending.request_id {
            return;
        }
        match reply {
            ClientReply::Ok { value, .. } => {
                ctx.cancel_timer(pending.timeout);
                let mut op = pending.op;
                // A read's completion carries what it saw; a write's, what it wrote.
                if !value.is_nil() || matches!(op.f.as_str(), "read" | "get" | "dequeue") {
                    op.value = value;
                }
                // Only an operation invoked after the heal shows liveness after it; one that was
                // stuck across the heal and completes just after does not.
                if let Some(from_ms) = self.settings.probe_from_ms {
                    if pending.invoked_ms >= from_ms {
                        self.probed_ok = true;
                    }
                }
                ctx.ok(self.process, op);
                self.target = from;
                self.finish::<S>(ctx);
            }
            ClientReply::Fail { error, .. } => {
                ctx.cancel_timer(pending.timeout);
                ctx.fail(self.process, pending.op, &error);
                self.finish::<S>(ctx);
            }
            ClientReply::NotLeader { leader, .. } => {
                match leader {
                    Some(leader) if leader.0 < self.servers && leader != from => self.target = leader,
                    _ => self.next_server(),
                }
                ctx.set_timer(Duration::from_millis(self.settings.redirect_delay_ms), tag::RETRY | pending.request_id);
            }
        }
    }

    fn on_timer<S: Service>(&mut self, ctx: &mut Ctx<'_, S::Msg>, timer_tag: u64) {
        let request_id = timer_tag & !tag::KIND_MASK;
        match timer_tag & tag::KIND_MASK {
            tag::NEXT => self.issue_next::<S>(ctx),
            tag::TIMEOUT => {
                let Some(pending) = self.pending.clone() else { return };
                if pending.request_id != request_id {
                    return;
                }
                ctx.info(self.process, pending.op, "timed-out");
                // A process with an unknown outcome never invokes again.
                self.process += u64::from(self.clients);
                self.next_server();
                self.finish::<S>(ctx);
            }
            tag::RETRY => {
                let Some(pending) = self.pending.clone() else { return };
                if pending.request_id == request_id {
                    ctx.send(self.target, S::request(ClientRequest { id: request_id, op: pending.op }));
                }
            }
            other => unreachable!("client timer kind {other:#x}"),
        }
    }
}

/// A node of a simulated cluster: one of the user's servers, or a client of the harness.
pub enum Actor<N> {
    Server(N),
    Client(Client),
}

impl<N> Actor<N> {
    /// The server inside, if this is a server.
    pub fn server(&self) -> Option<&N> {
        match self {
            Actor::Server(node) => Some(node),
            Actor::Client(_) => None,
        }
    }
}

impl<N: Service> Node for Actor<N> {
    type Msg = N::Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self::Msg>) {
        match self {
            Actor::Server(node) => node.on_start(ctx),
            Actor::Client(client) => client.on_start::<N>(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Msg>, from: NodeId, msg: Self::Msg) {
        match self {
            Actor::Server(node) => node.on_message(ctx, from, msg),
            Actor::Client(client) => client.on_message::<N>(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self::Msg>, timer: TimerId, timer_tag: u64) {
        match self {
            Actor::Server(node) => node.on_timer(ctx, timer, timer_tag),
            Actor::Client(client) => client.on_timer::<N>(ctx, timer_tag),
        }
    }
}
