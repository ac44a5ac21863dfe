//! Client workloads shared by every storage protocol: a generic client state machine that issues
//! operations, records the history, times out, retries and follows redirects; the in-memory store
//! replicas apply operations to; and a seeded nemesis that draws fault schedules.
//!
//! # How a protocol plugs in
//!
//! Clients are nodes (partitions reach them), so a protocol's node type is an enum with a client
//! variant, and its message enum carries the client request and reply:
//!
//! ```ignore
//! enum MyMsg { Request(ClientRequest), Reply(ClientReply), /* protocol messages */ }
//! enum MyNode { Server(MyServer), Client(WorkloadClient<MyClientProtocol>) }
//!
//! #[derive(Clone)]
//! struct MyClientProtocol;
//! impl ClientProtocol for MyClientProtocol {
//!     type Msg = MyMsg;
//!     fn wrap_request(&self, request: ClientRequest) -> MyMsg { MyMsg::Request(request) }
//!     fn into_reply(&self, msg: MyMsg) -> Option<ClientReply> {
//!         match msg { MyMsg::Reply(reply) => Some(reply), _ => None }
//!     }
//!     // optional: first_server, retry_policy
//! }
//!
//! impl Node for MyNode {
//!     type Msg = MyMsg;
//!     fn on_start(&mut self, ctx: &mut Ctx<'_, MyMsg>) {
//!         match self { MyNode::Server(s) => s.on_start(ctx), MyNode::Client(c) => c.on_start(ctx) }
//!     }
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, MyMsg>, from: NodeId, msg: MyMsg) {
//!         match self { MyNode::Server(s) => s.on_message(ctx, from, msg), MyNode::Client(c) => c.on_message(ctx, from, msg) }
//!     }
//!     fn on_timer(&mut self, ctx: &mut Ctx<'_, MyMsg>, timer: TimerId, tag: u64) {
//!         match self { MyNode::Server(s) => s.on_timer(ctx, timer, tag), MyNode::Client(c) => c.on_timer(ctx, timer, tag) }
//!     }
//! }
//! ```
//!
//! A server answers each [`ClientRequest`] with a [`ClientReply`] carrying the same `process` and
//! `seq`, and a [`ReplyResult`]: `Ok(value)` (the value the history's ok record carries: the read
//! value, the written value, the filled-in transaction), `Fail` (certainly not applied), `Redirect`
//! (not applied here, optionally "try nX": the client retries, same request), `Unknown` (maybe
//! applied: info, unless the protocol's retry policy says retrying is safe because servers execute
//! each (process, seq) at most once, as [`StateMachine::apply_request`] does).
//!
//! Replicas apply operations with [`StateMachine`] (`StateMachine::new(spec.workload.kind)`), so every
//! protocol gives an operation the meaning the checkers' models give it. [`build_cluster`] adds
//! servers `n1..nN` (node ids `0..N`) then clients `c1..cM` with the spec's clocks; [`nemesis`]
//! draws a random fault schedule from a seed.
//!
//! # What the client records
//!
//! Each outstanding operation slot is its own history process (sequential, as Jepsen requires). A
//! process whose operation timed out (`info`) never invokes again: its slot gets a fresh process id,
//! exactly as Jepsen does. Process ids are `client_index + clients * n`, so they are unique across
//! clients without coordination; values written are unique across the run (see [`OpGenerator`]).
//! Timeouts, think time and `stop_at_ns` are measured on the client's own (possibly drifting) clock.

pub mod generator;
pub mod nemesis;
pub mod state_machine;

pub use generator::{OpGenerator, OpMix};
pub use state_machine::{is_read_only, StateMachine};

use crate::spec::{ClusterSpec, WorkloadSpec};
use detsim_core::history::{Op, ProcessId, Value};
use detsim_core::{Ctx, Message, Node, NodeId, SimRng, Simulation, Storage, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A client operation on the wire. `(process, seq)` identifies the request across retries and
/// duplicates, so servers can execute it at most once.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientRequest {
    pub process: ProcessId,
    /// Per-process sequence number, from 1, increasing with each new operation of the process.
    pub seq: u64,
    /// The operation as invoked (reads carry `nil`).
    pub op: Op,
}

/// What happened to a request, as a server tells the client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReplyResult {
    /// Applied; the value is what the history's `ok` record carries.
    Ok(Value),
    /// Certainly not applied (e.g. a cas whose `from` did not match).
    Fail(String),
    /// Not applied here; try the hinted server (or another one when `None`).
    Redirect(Option<NodeId>),
    /// Maybe applied (e.g. the leader lost leadership with the entry uncommitted).
    Unknown(String),
}

/// A server's answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientReply {
    pub process: ProcessId,
    pub seq: u64,
    pub result: ReplyResult,
}

impl ClientReply {
    pub fn to(request: &ClientRequest, result: ReplyResult) -> Self {
        ClientReply { process: request.process, seq: request.seq, result }
    }
}

/// How the client retries. Limits are explicit so that no request loops forever.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Sends of one request (first try included) before the client gives up with `info`.
    pub max_attempts: u32,
    /// Wait before retrying after a redirect without a hint (an election may be under way).
    pub backoff_ms: u64,
    /// Resend the same request to another server when no reply came in this long. Only safe when
    /// servers execute each (process, seq) at most once. `None`: wait for the timeout.
    pub resend_ms: Option<u64>,
    /// Retry (same request) after a `ReplyResult::Unknown` instead of recording info. Only safe with
    /// at-most-once execution on the servers.
    pub retry_unknown: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 50, backoff_ms: 25, resend_ms: None, retry_unknown: false }
    }
}

/// How a protocol's client addresses, wraps and reads requests. Implemented once per protocol.
pub trait ClientProtocol: 'static {
    type Msg: Message;
    /// Wraps a request into the protocol's message type.
    fn wrap_request(&self, request: ClientRequest) -> Self::Msg;
    /// The client reply inside `msg`, or `None` when `msg` is something else (then it is ignored).
    fn into_reply(&self, msg: Self::Msg) -> Option<ClientReply>;
    /// Where a request goes first when the client knows no leader. Default: spread clients over
    /// servers by index.
    fn first_server(&self, client_index: usize, servers: &[NodeId], _rng: &mut SimRng) -> NodeId {
        servers[client_index % servers.len()]
    }
    /// Whether the client remembers the last server that answered (or was hinted) and sends new
    /// requests there: right for leader-based protocols, wrong for leaderless ones.
    fn sticky_leader(&self) -> bool {
        true
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
    /// Whether new requests avoid the servers that timed out since the last answer (when
    /// `first_server` picks one, the next server in the list that has not gone silent is used
    /// instead): right for leaderless protocols, where any server will do and a silent one may be
    /// cut off.
    fn avoid_server_after_timeout(&self) -> bool {
        false
    }
}

/// Counters of one client, for tests and figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub invoked: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Sends beyond the first of each request (redirects, resends, retries).
    pub retries: u64,
    /// Open loop: ticks skipped because every slot was busy and the slot limit was reached.
    pub skipped: u64,
}

/// Most outstanding operations of one open-loop client (a limit, so a dead cluster cannot make a
/// client grow without bound).
pub const MAX_OPEN_LOOP_SLOTS: usize = 1024;

/// Timer tags: kind in the top byte, slot in the next 24 bits, the request's seq (low 32 bits) last.
mod tag {
    pub const NEXT_OP: u64 = 1;
    pub const TIMEOUT: u64 = 2;
    pub const RESEND: u64 = 3;
    pub const BACKOFF: u64 = 4;
    pub const TICK: u64 = 5;

    pub fn make(kind: u64, slot: usize, seq: u64) -> u64 {
        assert!(slot < (1 << 24), "slot index fits 24 bits");
        (kind << 56) | ((slot as u64) << 32) | (seq & 0xFFFF_FFFF)
    }
    pub fn split(tag: u64) -> (u64, usize, u64) {
        (tag >> 56, ((tag >> 32) & 0xFF_FFFF) as usize, tag & 0xFFFF_FFFF)
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    op: Op,
    seq: u64,
    target: NodeId,
    attempts: u32,
    timeout_timer: TimerId,
    /// The pending resend or backoff timer, if any.
    retry_timer: Option<TimerId>,
}

#[derive(Clone, Debug)]
struct Slot {
    process: ProcessId,
    seq: u64,
    in_flight: Option<InFlight>,
}

/// The generic client: drives one client node's operations for any protocol `P`.
pub struct WorkloadClient<P: ClientProtocol> {
    protocol: P,
    policy: RetryPolicy,
    spec: WorkloadSpec,
    client_index: usize,
    servers: Vec<NodeId>,
    generator: OpGenerator,
    leader_guess: Option<NodeId>,
    /// Servers whose requests timed out since the last answer, for `avoid_server_after_timeout`.
    silent: Vec<NodeId>,
    /// Round-robin cursor over servers for redirects without a hint.
    cursor: usize,
    slots: Vec<Slot>,
    /// Restarts of this client so far (from durable storage), so process ids and values stay unique.
    epoch: u64,
    processes_created: u64,
    stats: ClientStats,
}

const EPOCH_KEY: &str = "workload/epoch";

impl<P: ClientProtocol> WorkloadClient<P> {
    /// Client number `client_index` (from 0; the node `c{client_index + 1}`) of `spec.clients`,
    /// talking to `servers`.
    pub fn new(protocol: P, spec: &WorkloadSpec, client_index: usize, servers: Vec<NodeId>) -> Self {
        assert!(!servers.is_empty(), "a client needs at least one server");
        let policy = protocol.retry_policy();
        assert!(policy.max_attempts >= 1, "at least one attempt per request");
        WorkloadClient {
            protocol,
            policy,
            spec: spec.clone(),
            client_index,
            servers,
            generator: OpGenerator::new(spec, client_index),
            leader_guess: None,
            silent: Vec::new(),
            cursor: client_index,
            slots: Vec::new(),
            epoch: 0,
            processes_created: 0,
            stats: ClientStats::default(),
        }
    }

    /// The same client drawing `mix` (operations beyond the workload's standard ones).
    pub fn with_op_mix(mut self, mix: OpMix) -> Self {
        self.generator = self.generator.with_mix(mix);
        self
    }

    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }

    /// Operations currently waiting for a reply.
    pub fn outstanding(&self) -> usize {
        self.slots.iter().filter(|s| s.in_flight.is_some()).count()
    }

    /// The server new requests go to, as far as this client knows.
    pub fn leader_guess(&self) -> Option<NodeId> {
        self.leader_guess
    }

    fn new_process(&mut self) -> ProcessId {
        let n = (self.epoch << 24) + self.processes_created;
        self.processes_created += 1;
        assert!(self.processes_created < (1 << 24), "process limit per client epoch");
        self.client_index as u64 + self.spec.clients.max(1) as u64 * n
    }

    /// Call from the node's `on_start` (also after a restart: the epoch in storage moves on, so no
    /// process id or value is reused).
    pub fn on_start(&mut self, ctx: &mut Ctx<'_, P::Msg>) {
        let epoch: u64 = ctx.storage().get(EPOCH_KEY).unwrap_or(0);
        ctx.storage().put(EPOCH_KEY, &(epoch + 1));
        self.epoch = epoch;
        self.generator.set_epoch(epoch);
        self.slots.clear();
        if self.spec.kind == crate::spec::WorkloadKind::None {
            return;
        }
        match self.spec.rate_per_s {
            Some(rate) => {
                assert!(rate > 0.0 && rate.is_finite(), "open-loop rate must be positive, got {rate}");
                self.schedule_tick(ctx);
            }
            None => {
                let concurrency = self.spec.concurrency.max(1);
                for slot in 0..concurrency {
                    let process = self.new_process();
                    self.slots.push(Slot { process, seq: 0, in_flight: None });
                    // A small random stagger so clients do not move in lockstep.
                    let stagger_ns = ctx.rng().random_range(0..=self.spec.think_time_ns.max(1_000_000));
                    ctx.set_timer(Duration::from_nanos(stagger_ns), tag::make(tag::NEXT_OP, slot, 0));
                }
            }
        }
    }

    /// Call from the node's `on_message`; messages that are not replies are ignored.
    pub fn on_message(&mut self, ctx: &mut Ctx<'_, P::Msg>, from: NodeId, msg: P::Msg) {
        if let Some(reply) = self.protocol.into_reply(msg) {
            self.on_reply(ctx, from, reply);
        }
    }

    /// Call from the node's `on_timer` (every timer of a client node is the client's).
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, P::Msg>, _timer: TimerId, timer_tag: u64) {
        let (kind, slot, seq_low) = tag::split(timer_tag);
        match kind {
            tag::NEXT_OP => {
                if slot < self.slots.len() && self.slots[slot].in_flight.is_none() {
                    self.start_op(ctx, slot);
                }
            }
            tag::TICK => {
                self.open_loop_tick(ctx);
                self.schedule_tick(ctx);
            }
            tag::TIMEOUT | tag::RESEND | tag::BACKOFF => {
                let Some(in_flight) = self.slots.get(slot).and_then(|s| s.in_flight.as_ref()) else {
                    return;
                };
                if in_flight.seq & 0xFFFF_FFFF != seq_low {
                    return; // a timer of an earlier request of this slot
                }
                match kind {
                    tag::TIMEOUT => self.finish(ctx, slot, Finish::Info("timed-out".into())),
                    _ => {
                        // A resend goes to another server: the one we tried may be partitioned away.
                        // A backoff ends by sending where `retry` already pointed the request.
                        let next = if kind == tag::RESEND { self.next_server(None) } else { in_flight.target };
                        self.slots[slot].in_flight.as_mut().expect("checked above").retry_timer = None;
                        self.send_attempt(ctx, slot, next);
                    }
                }
            }
            _ => panic!("unknown client timer tag {timer_tag:#x}"),
        }
    }

    /// Handles a server's reply (for protocols that unwrap replies themselves).
    pub fn on_reply(&mut self, ctx: &mut Ctx<'_, P::Msg>, from: NodeId, reply: ClientReply) {
        let Some(slot) = self
            .slots
            .iter()
            .position(|s| s.process == reply.process && s.in_flight.as_ref().is_some_and(|f| f.seq == reply.seq))
        else {
            return; // late, duplicated or for a retired process
        };
        match reply.result {
            ReplyResult::Ok(value) => {
                if self.protocol.sticky_leader() {
                    self.leader_guess = Some(from);
                }
                self.finish(ctx, slot, Finish::Ok(value));
            }
            ReplyResult::Fail(error) => {
                if self.protocol.sticky_leader() {
                    self.leader_guess = Some(from);
                }
                self.finish(ctx, slot, Finish::Fail(error));
            }
            ReplyResult::Unknown(error) => {
                if self.policy.retry_unknown {
                    self.retry(ctx, slot, None, true);
                } else {
                    self.finish(ctx, slot, Finish::Info(error));
                }
            }
            ReplyResult::Redirect(hint) => {
                let hint = hint.filter(|h| self.servers.contains(h) && *h != from);
                if self.protocol.sticky_leader() {
                    self.leader_guess = hint;
                }
                self.retry(ctx, slot, hint, hint.is_none());
            }
        }
    }

    /// Sends the slot's request again: at once to `hint`, or after a backoff to the next server.
    fn retry(&mut self, ctx: &mut Ctx<'_, P::Msg>, slot: usize, hint: Option<NodeId>, backoff: bool) {
        let in_flight = self.slots[slot].in_flight.as_mut().expect("retry of an in-flight request");
        if in_flight.attempts >= self.policy.max_attempts {
            self.finish(ctx, slot, Finish::Info("no-leader".into()));
            return;
        }
        if let Some(timer) = in_flight.retry_timer.take() {
            ctx.cancel_timer(timer);
        }
        let seq = in_flight.seq;
        let next = self.next_server(hint);
        if backoff {
            self.slots[slot].in_flight.as_mut().expect("in flight").target = next;
            let timer =
                ctx.set_timer(Duration::from_millis(self.policy.backoff_ms), tag::make(tag::BACKOFF, slot, seq));
            self.slots[slot].in_flight.as_mut().expect("in flight").retry_timer = Some(timer);
        } else {
            self.send_attempt(ctx, slot, next);
        }
    }

    fn next_server(&mut self, hint: Option<NodeId>) -> NodeId {
        if let Some(hint) = hint {
            return hint;
        }
        self.cursor = (self.cursor + 1) % self.servers.len();
        self.servers[self.cursor]
    }

    fn send_attempt(&mut self, ctx: &mut Ctx<'_, P::Msg>, slot: usize, target: NodeId) {
        let process = self.slots[slot].process;
        let in_flight = self.slots[slot].in_flight.as_mut().expect("send of an in-flight request");
        if in_flight.attempts >= self.policy.max_attempts {
            self.finish(ctx, slot, Finish::Info("no-leader".into()));
            return;
        }
        if in_flight.attempts > 0 {
            self.stats.retries += 1;
        }
        in_flight.attempts += 1;
        in_flight.target = target;
        let request = ClientRequest { process, seq: in_flight.seq, op: in_flight.op.clone() };
        let seq = in_flight.seq;
        if let Some(resend_ms) = self.policy.resend_ms {
            if let Some(timer) = in_flight.retry_timer.take() {
                ctx.cancel_timer(timer);
            }
            in_flight.retry_timer =
                Some(ctx.set_timer(Duration::from_millis(resend_ms), tag::make(tag::RESEND, slot, seq)));
        }
        let msg = self.protocol.wrap_request(request);
        ctx.send(target, msg);
    }

    fn may_start(&self, ctx: &Ctx<'_, P::Msg>) -> bool {
        if let Some(max_ops) = self.spec.max_ops_per_client {
            if self.stats.invoked >= max_ops {
                return false;
            }
        }
        if let Some(stop_at_ns) = self.spec.stop_at_ns {
            // The client's own clock: with skew it stops a little early or late, like a real one.
            if ctx.now().as_nanos() >= i64::try_from(stop_at_ns).unwrap_or(i64::MAX) {
                return false;
            }
        }
        true
    }

    fn start_op(&mut self, ctx: &mut Ctx<'_, P::Msg>, slot: usize) {
        if !self.may_start(ctx) {
            return;
        }
        if let Some(updates_until_ns) = self.spec.updates_until_ns {
            if ctx.now().as_nanos() >= i64::try_from(updates_until_ns).unwrap_or(i64::MAX) {
                self.generator.reads_only();
            }
        }
        let Some(op) = self.generator.next_op(ctx.rng()) else { return };
        let target = match self.leader_guess {
            Some(leader) => leader,
            None => {
                let first = self.protocol.first_server(self.client_index, &self.servers, ctx.rng());
                if self.silent.len() >= self.servers.len() {
                    self.silent.clear(); // every server went silent: start over
                }
                // The first server at or after the draw that has not gone silent.
                match self.servers.iter().position(|&s| s == first) {
                    Some(at) if !self.silent.is_empty() => (0..self.servers.len())
                        .map(|step| self.servers[(at + step) % self.servers.len()])
                        .find(|s| !self.silent.contains(s))
                        .expect("not every server is silent"),
                    _ => first,
                }
            }
        };
        let entry = &mut self.slots[slot];
        assert!(entry.in_flight.is_none(), "a process has one operation at a time");
        entry.seq += 1;
        let seq = entry.seq;
        let process = entry.process;
        ctx.invoke(process, op.clone());
        self.stats.invoked += 1;
        let timeout_timer =
            ctx.set_timer(Duration::from_nanos(self.spec.timeout_ns.max(1)), tag::make(tag::TIMEOUT, slot, seq));
        self.slots[slot].in_flight = Some(InFlight { op, seq, target, attempts: 0, timeout_timer, retry_timer: None });
        self.send_attempt(ctx, slot, target);
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, P::Msg>, slot: usize, how: Finish) {
        let in_flight = self.slots[slot].in_flight.take().expect("finish of an in-flight request");
        ctx.cancel_timer(in_flight.timeout_timer);
        if let Some(timer) = in_flight.retry_timer {
            ctx.cancel_timer(timer);
        }
        let process = self.slots[slot].process;
        let invoked = in_flight.op;
        if !matches!(how, Finish::Info(_)) {
            self.silent.clear(); // an answer: whatever went silent may be back
        }
        match how {
            Finish::Ok(value) => {
                let completed = Op { value, ..invoked };
                self.generator.observe(&completed);
                ctx.ok(process, completed);
                self.stats.ok += 1;
            }
            Finish::Fail(error) => {
                ctx.fail(process, invoked, &error);
                self.stats.fail += 1;
            }
            Finish::Info(error) => {
                ctx.info(process, invoked, &error);
                self.stats.info += 1;
                // Unknown outcome: the process may still be "inside" its operation forever, so it
                // never invokes again; the slot continues as a fresh process.
                let fresh = self.new_process();
                self.slots[slot] = Slot { process: fresh, seq: 0, in_flight: None };
                // After a timeout the server we chose may be gone; forget it.
                self.leader_guess = None;
                if self.protocol.avoid_server_after_timeout() && !self.silent.contains(&in_flight.target) {
                    self.silent.push(in_flight.target);
                }
            }
        }
        if self.spec.rate_per_s.is_none() {
            ctx.set_timer(Duration::from_nanos(self.spec.think_time_ns), tag::make(tag::NEXT_OP, slot, 0));
        }
    }

    fn schedule_tick(&mut self, ctx: &mut Ctx<'_, P::Msg>) {
        let rate = self.spec.rate_per_s.expect("open loop has a rate");
        // Poisson arrivals: exponential gaps with mean 1/rate.
        let uniform: f64 = ctx.rng().random_range(f64::MIN_POSITIVE..1.0);
        let gap_ns = (-uniform.ln() / rate * 1e9).clamp(1.0, 1e15) as u64;
        ctx.set_timer(Duration::from_nanos(gap_ns), tag::make(tag::TICK, 0, 0));
    }

    fn open_loop_tick(&mut self, ctx: &mut Ctx<'_, P::Msg>) {
        if !self.may_start(ctx) {
            return;
        }
        let slot = match self.slots.iter().position(|s| s.in_flight.is_none()) {
            Some(slot) => slot,
            None if self.slots.len() < MAX_OPEN_LOOP_SLOTS => {
                let process = self.new_process();
                self.slots.push(Slot { process, seq: 0, in_flight: None });
                self.slots.len() - 1
            }
            None => {
                self.stats.skipped += 1;
                return;
            }
        };
        self.start_op(ctx, slot);
    }
}

enum Finish {
    Ok(Value),
    Fail(String),
    Info(String),
}

/// Which node ids a [`ClusterSpec`] gives servers and clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterLayout {
    /// `n1..nN`: node ids `0..N`.
    pub servers: Vec<NodeId>,
    /// `c1..cM`: node ids `N..N+M`.
    pub clients: Vec<NodeId>,
}

impl ClusterLayout {
    pub fn of(spec: &ClusterSpec) -> Self {
        let servers = (0..spec.nodes).map(|i| NodeId(i as u32)).collect();
        let clients = (0..spec.workload.clients).map(|i| NodeId((spec.nodes + i) as u32)).collect();
        ClusterLayout { servers, clients }
    }
}

/// Builds a simulation with servers `n1..nN` then clients `c1..cM`, each with its clock from the
/// spec. `make_server(index, storage)` builds server `index` (also after each restart, from its
/// durable storage); `make_client(index)` builds client `index`.
pub fn build_cluster<N: Node>(
    spec: &ClusterSpec,
    make_server: impl Fn(usize, &Storage) -> N + Clone + 'static,
    make_client: impl Fn(usize) -> N + Clone + 'static,
) -> Result<Simulation<N>, String> {
    if spec.nodes == 0 {
        return Err("the cluster needs at least one server".into());
    }
    if spec.workload.kind != crate::spec::WorkloadKind::None && spec.workload.clients == 0 {
        return Err("the workload needs at least one client".into());
    }
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    for index in 0..spec.nodes {
        let make = make_server.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(index), spec.clock(index), move |_, storage| {
            make(index, storage)
        });
    }
    for index in 0..spec.workload.clients {
        let make = make_client.clone();
        sim.add_node_with_clock(&ClusterSpec::client_name(index), spec.clock(spec.nodes + index), move |_, _| {
            make(index)
        });
    }
    Ok(sim)
}
