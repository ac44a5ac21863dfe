//! The scheduler: a discrete-event loop over a queue ordered by (time, insertion sequence). It owns the
//! nodes, their clocks, random streams and storage, the network and the fault timeline; it applies
//! the effects handlers buffered, and records every event into the trace hash and the optional sink.

use crate::clock::LocalClock;
use crate::fault::Fault;
use crate::history::{History, HistoryEvent};
use crate::net::{DropReason, Network, NetworkConfig};
use crate::node::{Ctx, Effect, Message, Node, NodeId, Storage, TimerId};
use crate::queue::EventQueue;
use crate::rng::{derive_stream, link_key, message_stream, LinkRng, SimRng, StreamPurpose};
use crate::time::{LocalTime, SimTime};
use crate::trace::{TraceEvent, TraceHasher, TraceKind, TraceSink};
use rand::RngExt;
use std::collections::BTreeMap;
use std::hash::Hash;

/// Limits on everything a run can grow; hitting one ends the run with [`SimError::LimitExceeded`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_events: u64,
    pub max_queue_len: usize,
    pub max_message_bytes: usize,
    pub max_nodes: usize,
    pub max_history_len: usize,
    pub max_timers_per_node: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 2_000_000_000,
            max_queue_len: 10_000_000,
            max_message_bytes: 64 << 20,
            max_nodes: 1 << 20,
            max_history_len: 50_000_000,
            max_timers_per_node: 100_000,
        }
    }
}

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("limit exceeded: {what} (limit {limit}) at {time}")]
    LimitExceeded { what: &'static str, limit: u64, time: SimTime },
    #[error("node {from} sent to unknown node {to} at {time}")]
    UnknownNode { from: String, to: u32, time: SimTime },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("fault {fault} at {time}: {message}")]
    Fault { fault: &'static str, time: SimTime, message: String },
    #[error("trace sink failed: {0}")]
    TraceSink(String),
}

/// Settings of one run.
#[derive(Clone, Debug, Default)]
pub struct SimConfig {
    pub seed: u64,
    pub network: NetworkConfig,
    pub limits: Limits,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig { seed, ..SimConfig::default() }
    }
}

/// Counters of a run so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub events: u64,
    pub sends: u64,
    pub deliveries: u64,
    pub drops: u64,
    pub timers_fired: u64,
    pub faults: u64,
    pub max_queue_len: usize,
}

/// A node's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    Up,
    Paused,
    Crashed,
}

/// Rebuilds a node after a restart from its id and durable storage.
pub type Factory<N> = Box<dyn FnMut(NodeId, &Storage) -> N>;

struct TimerEntry {
    deadline: LocalTime,
    tag: u64,
    generation: u32,
}

struct NodeSlot<N: Node> {
    name: String,
    state: Option<N>,
    status: NodeStatus,
    clock: LocalClock,
    rng: SimRng,
    /// Messages this node has sent (every destination, across crashes): keys its message draws.
    sends: u64,
    storage: Storage,
    factory: Factory<N>,
    /// Active timers by id (ordered: clock changes reschedule them in id order).
    timers: BTreeMap<TimerId, TimerEntry>,
    /// Events that arrived while the node was paused, in arrival order.
    paused_queue: Vec<EventKind<N::Msg>>,
}

enum EventKind<M> {
    Start { node: NodeId },
    Deliver { from: NodeId, to: NodeId, msg_id: u64, msg: M, corrupted: bool },
    Timer { node: NodeId, id: TimerId, generation: u32 },
    Fault { fault: Box<Fault> },
}

/// Event tags fed to the trace hash (never renumber: golden hashes depend on them).
mod tag {
    pub const START: u64 = 1;
    pub const SEND: u64 = 2;
    pub const DELIVER: u64 = 3;
    pub const DROP: u64 = 4;
    pub const TIMER: u64 = 5;
    pub const FAULT: u64 = 6;
    pub const CLIENT: u64 = 7;
    pub const ANNOTATE: u64 = 8;
}

/// A deterministic simulation of nodes of type `N` (use an enum to mix kinds of node).
pub struct Simulation<N: Node> {
    seed: u64,
    now: SimTime,
    started: bool,
    queue: EventQueue<EventKind<N::Msg>>,
    nodes: Vec<NodeSlot<N>>,
    names: Vec<String>,
    /// Node ids by name, for unique names and fast lookups.
    ids_by_name: BTreeMap<String, NodeId>,
    network: Network,
    limits: Limits,
    history: History,
    hasher: TraceHasher,
    sink: Option<Box<dyn TraceSink<N::Msg>>>,
    effects: Vec<Effect<N::Msg>>,
    next_msg_id: u64,
    next_timer_id: u64,
    /// The key of every message's draws (see [`crate::rng`]).
    link_key: u64,
    /// The last delivery time of each FIFO link that has carried a message, by `(from << 32) | to`.
    /// Only looked up, never iterated, so its order cannot reach a result.
    fifo_last_delivery_ns: rustc_hash::FxHashMap<u64, u64>,
    stats: RunStats,
    /// (start, end) of each fault window in true nanoseconds; `end` is `None` while open.
    fault_windows: Vec<(String, u64, Option<u64>)>,
}

impl<N: Node> Simulation<N> {
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        let network = Network::new(&config.network).map_err(SimError::Config)?;
        Ok(Simulation {
            seed: config.seed,
            now: SimTime::ZERO,
            started: false,
            queue: EventQueue::new(),
            nodes: Vec::new(),
            names: Vec::new(),
            ids_by_name: BTreeMap::new(),
            network,
            limits: config.limits,
            history: History::new(),
            hasher: TraceHasher::new(),
            sink: None,
            effects: Vec::new(),
            next_msg_id: 0,
            next_timer_id: 0,
            link_key: link_key(config.seed),
            fifo_last_delivery_ns: Default::default(),
            stats: RunStats::default(),
            fault_windows: Vec::new(),
        })
    }

    /// Adds a node named `name` with a perfect clock; `factory` builds it now and after each restart.
    pub fn add_node(&mut self, name: &str, factory: impl FnMut(NodeId, &Storage) -> N + 'static) -> NodeId {
        self.add_node_with_clock(name, LocalClock::new(0, 0.0), factory)
    }

    /// Adds a node whose local clock starts as `clock` (skew and drift).
    pub fn add_node_with_clock(
        &mut self,
        name: &str,
        clock: LocalClock,
        factory: impl FnMut(NodeId, &Storage) -> N + 'static,
    ) -> NodeId {
        assert!(!self.started, "nodes are added before the run starts");
        assert!(self.nodes.len() < self.limits.max_nodes, "node limit reached");
        assert!(!self.ids_by_name.contains_key(name), "node names are unique: {name}");
        let id = NodeId(u32::try_from(self.nodes.len()).expect("fewer than 2^32 nodes"));
        let mut factory: Factory<N> = Box::new(factory);
        let storage = Storage::default();
        let state = factory(id, &storage);
        self.nodes.push(NodeSlot {
            name: name.to_string(),
            state: Some(state),
            status: NodeStatus::Up,
            clock,
            rng: derive_stream(self.seed, StreamPurpose::Node, id.0 as u64),
            sends: 0,
            storage,
            factory,
            timers: BTreeMap::new(),
            paused_queue: Vec::new(),
        });
        self.names.push(name.to_string());
        self.ids_by_name.insert(name.to_string(), id);
        id
    }

    /// Streams every trace event to `sink` as well as into the hash.
    pub fn set_trace_sink(&mut self, sink: Box<dyn TraceSink<N::Msg>>) {
        self.sink = Some(sink);
    }

    /// Schedules `fault` at true time `at` (not in the past).
    pub fn schedule_fault(&mut self, at: SimTime, fault: Fault) -> Result<(), SimError> {
        fault.validate().map_err(|message| SimError::Fault { fault: fault.kind(), time: at, message })?;
        for node in fault.nodes() {
            if node.index() >= self.nodes.len() {
                return Err(SimError::Fault {
                    fault: fault.kind(),
                    time: at,
                    message: format!("no node {node} (the cluster has {})", self.nodes.len()),
                });
            }
        }
        if at < self.now {
            return Err(SimError::Fault {
                fault: fault.kind(),
                time: at,
                message: format!("in the past (now {})", self.now),
            });
        }
        self.push(at.0, EventKind::Fault { fault: Box::new(fault) });
        Ok(())
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
    pub fn now(&self) -> SimTime {
        self.now
    }
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }
    pub fn history(&self) -> &History {
        &self.history
    }
    pub fn take_history(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
    /// The trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        self.hasher.digest()
    }
    pub fn trace_hash_hex(&self) -> String {
        self.hasher.hex()
    }
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    pub fn node_names(&self) -> &[String] {
        &self.names
    }
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.ids_by_name.get(name).copied()
    }
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.names[id.index()]
    }
    /// The node's current state (`None` while crashed).
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.nodes.get(id.index())?.state.as_ref()
    }
    pub fn node_mut(&mut self, id: NodeId) -> Option<&mut N> {
        self.nodes.get_mut(id.index())?.state.as_mut()
    }
    pub fn node_status(&self, id: NodeId) -> NodeStatus {
        self.nodes[id.index()].status
    }
    pub fn storage(&self, id: NodeId) -> &Storage {
        &self.nodes[id.index()].storage
    }
    pub fn local_time(&self, id: NodeId) -> LocalTime {
        self.nodes[id.index()].clock.local_at(self.now)
    }
    /// Fault windows so far as (fault kind, start ns, end ns or `None` while still open).
    pub fn fault_windows(&self) -> &[(String, u64, Option<u64>)] {
        &self.fault_windows
    }
    /// Events still queued.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    fn push(&mut self, time: u64, kind: EventKind<N::Msg>) {
        // The hint is the node the event goes to, so the next event's node can be fetched early.
        let node = match &kind {
            EventKind::Start { node } | EventKind::Timer { node, .. } => node.0,
            EventKind::Deliver { to, .. } => to.0,
            EventKind::Fault { .. } => 0,
        };
        self.queue.push(time, node, kind);
    }

    fn start_if_needed(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for i in 0..self.nodes.len() {
            self.push(0, EventKind::Start { node: NodeId(i as u32) });
        }
    }

    /// Runs every event up to and including true time `end`, then sets the clock to `end`.
    pub fn run_until(&mut self, end: SimTime) -> Result<&RunStats, SimError> {
        self.start_if_needed();
        while let Some(next_time) = self.queue.peek_time() {
            if next_time > end.0 {
                break;
            }
            self.step()?;
        }
        self.now = self.now.max(end);
        Ok(&self.stats)
    }

    /// Runs until no event is left or true time would pass `limit`.
    pub fn run_until_quiet(&mut self, limit: SimTime) -> Result<&RunStats, SimError> {
        self.start_if_needed();
        while let Some(next_time) = self.queue.peek_time() {
            if next_time > limit.0 {
                break;
            }
            self.step()?;
        }
        Ok(&self.stats)
    }

    /// Ends the run: flushes the sink and returns its error, if any.
    pub fn finish(&mut self) -> Result<(), SimError> {
        if let Some(sink) = self.sink.as_mut() {
            sink.finish().map_err(|e| SimError::TraceSink(e.to_string()))?;
        }
        Ok(())
    }

    /// Processes the next event. Returns `false` when the queue is empty.
    pub fn step(&mut self) -> Result<bool, SimError> {
        self.start_if_needed();
        let Some((time, kind, upcoming)) = self.queue.pop_with_hints() else {
            return Ok(false);
        };
        // Start loading the nodes of the next two events while this one is handled.
        for node in upcoming.into_iter().flatten() {
            if let Some(slot) = self.nodes.get(node as usize) {
                crate::prefetch::prefetch(&slot.status);
                crate::prefetch::prefetch(&slot.clock);
                crate::prefetch::prefetch(&slot.state);
            }
        }
        debug_assert!(time >= self.now.0, "time never goes backwards");
        self.now = SimTime(time);
        self.stats.events += 1;
        if self.stats.events > self.limits.max_events {
            return Err(SimError::LimitExceeded {
                what: "events per run",
                limit: self.limits.max_events,
                time: self.now,
            });
        }
        match kind {
            EventKind::Start { node } => {
                self.trace(Some(node), TraceKind::Start, &[tag::START]);
                self.dispatch(node, Dispatch::Start)?;
            }
            EventKind::Deliver { from, to, msg_id, msg, corrupted } => self.arrive(from, to, msg_id, msg, corrupted)?,
            EventKind::Timer { node, id, generation } => self.timer_due(node, id, generation)?,
            EventKind::Fault { fault } => self.apply_fault(*fault)?,
        }
        Ok(true)
    }

    fn arrive(&mut self, from: NodeId, to: NodeId, msg_id: u64, msg: N::Msg, corrupted: bool) -> Result<(), SimError> {
        let slot = &mut self.nodes[to.index()];
        match slot.status {
            NodeStatus::Crashed => {
                self.drop_msg(to, from, to, msg_id, &msg, DropReason::NodeDown);
                return Ok(());
            }
            _ if self.network.drops_in_flight && from != to && self.network.partition.blocked(from, to) => {
                self.drop_msg(to, from, to, msg_id, &msg, DropReason::PartitionInFlight);
                return Ok(());
            }
            NodeStatus::Paused => {
                slot.paused_queue.push(EventKind::Deliver { from, to, msg_id, msg, corrupted });
                return Ok(());
            }
            NodeStatus::Up => {}
        }
        self.deliver(from, to, msg_id, msg, corrupted)
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg_id: u64, msg: N::Msg, corrupted: bool) -> Result<(), SimError> {
        self.stats.deliveries += 1;
        if self.sink.is_some() {
            self.trace_slow(Some(to), TraceKind::Deliver { from, msg_id, msg: &msg, corrupted });
        }
        for w in [tag::DELIVER, self.now.0, to.0 as u64, from.0 as u64, msg_id, corrupted as u64] {
            self.hasher.word(w);
        }
        self.dispatch(to, Dispatch::Message(from, msg))
    }

    fn timer_due(&mut self, node: NodeId, id: TimerId, generation: u32) -> Result<(), SimError> {
        let slot = &mut self.nodes[node.index()];
        let Some(entry) = slot.timers.get(&id) else {
            return Ok(()); // cancelled, or cleared by a crash
        };
        if entry.generation != generation {
            return Ok(()); // rescheduled by a clock change; a newer queue entry stands for it
        }
        if slot.status == NodeStatus::Paused {
            slot.paused_queue.push(EventKind::Timer { node, id, generation });
            return Ok(());
        }
        let entry = slot.timers.remove(&id).expect("present: looked up above");
        self.stats.timers_fired += 1;
        self.trace(Some(node), TraceKind::Timer { timer: id, tag: entry.tag }, &[tag::TIMER, id.0, entry.tag]);
        self.dispatch(node, Dispatch::Timer(id, entry.tag))
    }

    /// Runs one handler of `node` and applies the effects it buffered.
    fn dispatch(&mut self, node: NodeId, what: Dispatch<N::Msg>) -> Result<(), SimError> {
        let mut effects = std::mem::take(&mut self.effects);
        debug_assert!(effects.is_empty());
        let node_count = self.nodes.len();
        let slot = &mut self.nodes[node.index()];
        let local_now = slot.clock.local_at(self.now);
        let Some(state) = slot.state.as_mut() else {
            self.effects = effects;
            return Ok(());
        };
        let mut ctx = Ctx {
            id: node,
            local_now,
            node_count,
            rng: &mut slot.rng,
            storage: &mut slot.storage,
            effects: &mut effects,
            next_timer_id: &mut self.next_timer_id,
        };
        match what {
            Dispatch::Start => state.on_start(&mut ctx),
            Dispatch::Message(from, msg) => state.on_message(&mut ctx, from, msg),
            Dispatch::Timer(id, tag) => state.on_timer(&mut ctx, id, tag),
        }
        let result = self.apply_effects(node, &mut effects);
        effects.clear();
        self.effects = effects;
        result
    }

    fn apply_effects(&mut self, node: NodeId, effects: &mut Vec<Effect<N::Msg>>) -> Result<(), SimError> {
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, msg } => self.send(node, to, msg)?,
                Effect::SetTimer { id, deadline, tag } => {
                    let slot = &mut self.nodes[node.index()];
                    if slot.timers.len() >= self.limits.max_timers_per_node {
                        return Err(SimError::LimitExceeded {
                            what: "active timers per node",
                            limit: self.limits.max_timers_per_node as u64,
                            time: self.now,
                        });
                    }
                    let at = slot.clock.true_time_of(self.now, deadline);
                    slot.timers.insert(id, TimerEntry { deadline, tag, generation: 0 });
                    self.push(at.0, EventKind::Timer { node, id, generation: 0 });
                }
                Effect::CancelTimer { id } => {
                    self.nodes[node.index()].timers.remove(&id);
                }
                Effect::History { process, kind, op, error } => {
                    if self.history.len() >= self.limits.max_history_len {
                        return Err(SimError::LimitExceeded {
                            what: "history length",
                            limit: self.limits.max_history_len as u64,
                            time: self.now,
                        });
                    }
                    let name = self.names[node.index()].clone();
                    self.history.push(self.now.0, process, kind, op, error, Some(name));
                    // Hashed where it lies: a copy per record (strings and all) is only for a sink.
                    let recorded = self.history.events.last().expect("just pushed");
                    let hasher = &mut self.hasher;
                    hasher.word(tag::CLIENT);
                    hasher.word(self.now.0);
                    recorded.process.hash(hasher);
                    recorded.kind.hash(hasher);
                    recorded.f.hash(hasher);
                    recorded.key.hash(hasher);
                    recorded.value.hash(hasher);
                    recorded.error.hash(hasher);
                    if self.sink.is_some() {
                        let recorded = recorded.clone();
                        self.trace_slow(Some(node), TraceKind::Client { event: &recorded });
                    }
                }
                Effect::Annotate { text } => {
                    let mut hasher = std::mem::take(&mut self.hasher);
                    hasher.word(tag::ANNOTATE);
                    text.hash(&mut hasher);
                    self.hasher = hasher;
                    if self.sink.is_some() {
                        self.trace_slow(Some(node), TraceKind::Annotate { text: &text });
                    }
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: N::Msg) -> Result<(), SimError> {
        if to.index() >= self.nodes.len() {
            return Err(SimError::UnknownNode { from: self.names[from.index()].clone(), to: to.0, time: self.now });
        }
        let size = msg.size_bytes();
        if size > self.limits.max_message_bytes {
            return Err(SimError::LimitExceeded {
                what: "message size in bytes",
                limit: self.limits.max_message_bytes as u64,
                time: self.now,
            });
        }
        if self.queue.len() >= self.limits.max_queue_len {
            return Err(SimError::LimitExceeded {
                what: "event queue length",
                limit: self.limits.max_queue_len as u64,
                time: self.now,
            });
        }
        self.stats.sends += 1;
        let send_seq = self.nodes[from.index()].sends;
        self.nodes[from.index()].sends += 1;
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        for w in [tag::SEND, self.now.0, from.0 as u64, to.0 as u64, msg_id] {
            self.hasher.word(w);
        }
        msg.hash(&mut self.hasher);

        if from == to {
            // Loopback: no network, delivered at once (after events already queued for now).
            self.trace_send(from, to, msg_id, &msg, Some(self.now));
            self.push(self.now.0, EventKind::Deliver { from, to, msg_id, msg, corrupted: false });
            return Ok(());
        }
        if self.network.partition.blocked(from, to) {
            self.trace_send(from, to, msg_id, &msg, None);
            self.drop_msg(from, from, to, msg_id, &msg, DropReason::Partition);
            return Ok(());
        }
        let mut rng = message_stream(self.link_key, from.0, to.0, send_seq);
        let outcome = plan_delivery(
            &mut self.network,
            &mut rng,
            &mut self.fifo_last_delivery_ns,
            self.now.0,
            from,
            to,
            size,
            &msg,
        );
        match outcome {
            Err(reason) => {
                self.trace_send(from, to, msg_id, &msg, None);
                self.drop_msg(from, from, to, msg_id, &msg, reason);
            }
            Ok(plan) => {
                self.trace_send(from, to, msg_id, &msg, Some(SimTime(plan.first_at)));
                if let Some(dup_at) = plan.duplicate_at {
                    let copy = plan.corrupted_msg.clone().unwrap_or_else(|| msg.clone());
                    self.push(
                        dup_at,
                        EventKind::Deliver { from, to, msg_id, msg: copy, corrupted: plan.corrupted_msg.is_some() },
                    );
                }
                let corrupted = plan.corrupted_msg.is_some();
                let delivered = plan.corrupted_msg.unwrap_or(msg);
                self.push(plan.first_at, EventKind::Deliver { from, to, msg_id, msg: delivered, corrupted });
            }
        }
        let len = self.queue.len();
        if len > self.stats.max_queue_len {
            self.stats.max_queue_len = len;
        }
        Ok(())
    }

    fn trace_send(&mut self, from: NodeId, to: NodeId, msg_id: u64, msg: &N::Msg, deliver_at: Option<SimTime>) {
        if self.sink.is_some() {
            self.trace_slow(Some(from), TraceKind::Send { to, msg_id, msg, deliver_at });
        }
    }

    fn drop_msg(&mut self, at: NodeId, from: NodeId, to: NodeId, msg_id: u64, msg: &N::Msg, reason: DropReason) {
        self.stats.drops += 1;
        self.trace(Some(at), TraceKind::Drop { from, to, msg_id, msg, reason }, &[tag::DROP, msg_id, reason as u64]);
    }

    /// Hashes `words` (with the time and node) and hands the event to the sink.
    fn trace(&mut self, node: Option<NodeId>, kind: TraceKind<'_, N::Msg>, words: &[u64]) {
        self.hasher.word(self.now.0);
        self.hasher.word(node.map_or(u64::MAX, |n| n.0 as u64));
        for w in words {
            self.hasher.word(*w);
        }
        if self.sink.is_some() {
            self.trace_slow(node, kind);
        }
    }

    #[cold]
    fn trace_slow(&mut self, node: Option<NodeId>, kind: TraceKind<'_, N::Msg>) {
        let local_time = node.map(|n| self.nodes[n.index()].clock.local_at(self.now));
        let event = TraceEvent { time: self.now, node, local_time, kind };
        if let Some(sink) = self.sink.as_mut() {
            sink.record(&event, &self.names);
        }
    }

    fn open_window(&mut self, kind: &str) {
        self.fault_windows.push((kind.to_string(), self.now.0, None));
    }

    fn close_windows(&mut self, matching: impl Fn(&str) -> bool) {
        let now = self.now.0;
        for window in self.fault_windows.iter_mut().filter(|w| w.2.is_none() && matching(&w.0)) {
            window.2 = Some(now);
        }
    }

    fn apply_fault(&mut self, fault: Fault) -> Result<(), SimError> {
        self.stats.faults += 1;
        let mut hasher = std::mem::take(&mut self.hasher);
        hasher.word(tag::FAULT);
        hasher.word(self.now.0);
        format!("{fault:?}").hash(&mut hasher);
        self.hasher = hasher;
        let node_of = |f: &Fault| f.nodes().first().copied();
        if self.sink.is_some() {
            self.trace_slow(node_of(&fault), TraceKind::Fault { fault: &fault });
        }
        let now = self.now;
        let count = self.nodes.len();
        let error = |message: String| SimError::Fault { fault: fault.kind(), time: now, message };
        match &fault {
            Fault::Partition { groups } => {
                self.network.partition.set_groups(count, groups);
                self.close_windows(|k| matches!(k, "partition" | "isolate" | "bridge"));
                self.open_window("partition");
            }
            Fault::Isolate { node } => {
                let others: Vec<NodeId> = (0..count as u32).map(NodeId).filter(|n| n != node).collect();
                self.network.partition.set_groups(count, &[vec![*node], others]);
                self.close_windows(|k| matches!(k, "partition" | "isolate" | "bridge"));
                self.open_window("isolate");
            }
            Fault::Bridge { left, right, bridge } => {
                let mut a = left.clone();
                a.push(*bridge);
                let mut b = right.clone();
                b.push(*bridge);
                self.network.partition.set_groups(count, &[a, b]);
                self.close_windows(|k| matches!(k, "partition" | "isolate" | "bridge"));
                self.open_window("bridge");
            }
            Fault::OneWay { from, to } => {
                self.network.partition.cut_one_way(from, to);
                self.open_window("one-way");
            }
            Fault::Heal => {
                self.network.partition.heal();
                self.close_windows(|k| matches!(k, "partition" | "isolate" | "bridge" | "one-way"));
            }
            Fault::TopologyEdge { a, b, up } => {
                let topology =
                    self.network.topology_mut().ok_or_else(|| error("the network has no topology".into()))?;
                if !topology.set_edge_up(a, b, *up) {
                    return Err(error(format!("no topology edge between {a} and {b}")));
                }
                if *up {
                    self.close_windows(|k| k == "topology-edge");
                } else {
                    self.open_window("topology-edge");
                }
            }
            Fault::Crash { node } => {
                self.crash(*node);
            }
            Fault::Restart { node } => {
                if self.nodes[node.index()].status != NodeStatus::Crashed {
                    self.crash(*node);
                }
                let slot = &mut self.nodes[node.index()];
                slot.state = Some((slot.factory)(*node, &slot.storage));
                slot.status = NodeStatus::Up;
                let name = slot.name.clone();
                self.close_windows(|k| k == format!("crash {name}"));
                self.dispatch(*node, Dispatch::Start)?;
            }
            Fault::Pause { node } => {
                let slot = &mut self.nodes[node.index()];
                if slot.status == NodeStatus::Up {
                    slot.status = NodeStatus::Paused;
                    let name = slot.name.clone();
                    self.open_window(&format!("pause {name}"));
                }
            }
            Fault::Resume { node } => {
                let slot = &mut self.nodes[node.index()];
                if slot.status == NodeStatus::Paused {
                    slot.status = NodeStatus::Up;
                    let name = slot.name.clone();
                    self.close_windows(|k| k == format!("pause {name}"));
                    let waiting = std::mem::take(&mut self.nodes[node.index()].paused_queue);
                    // What queued up is handled now, in arrival order.
                    for kind in waiting {
                        match kind {
                            EventKind::Deliver { from, to, msg_id, msg, corrupted } => {
                                if self.nodes[node.index()].status == NodeStatus::Up {
                                    self.deliver(from, to, msg_id, msg, corrupted)?;
                                }
                            }
                            EventKind::Timer { node, id, generation } => self.timer_due(node, id, generation)?,
                            EventKind::Start { .. } | EventKind::Fault { .. } => {
                                unreachable!("only deliveries and timers queue")
                            }
                        }
                    }
                }
            }
            Fault::ClockJump { node, by_ns } => {
                self.nodes[node.index()].clock.jump(now, *by_ns);
                self.reschedule_timers(*node);
            }
            Fault::ClockOffset { node, offset_ns } => {
                self.nodes[node.index()].clock.set_offset(now, *offset_ns);
                self.reschedule_timers(*node);
            }
            Fault::ClockDrift { node, drift_ppm } => {
                self.nodes[node.index()].clock.set_drift_ppm(now, *drift_ppm);
                self.reschedule_timers(*node);
            }
            Fault::LatencySpike { node, extra_ns } => {
                match node {
                    None => self.network.overlays.extra_latency_all_ns = *extra_ns,
                    Some(n) => {
                        self.network.overlays.extra_latency_node_ns.insert(n.0, *extra_ns);
                    }
                }
                self.open_window("latency-spike");
            }
            Fault::LatencySpikeEnd { node } => {
                match node {
                    None => self.network.overlays.extra_latency_all_ns = 0,
                    Some(n) => {
                        self.network.overlays.extra_latency_node_ns.remove(&n.0);
                    }
                }
                self.close_windows(|k| k == "latency-spike");
            }
            Fault::LossBurst { node, loss } => {
                match node {
                    None => self.network.overlays.loss_all = Some(*loss),
                    Some(n) => {
                        self.network.overlays.loss_node.insert(n.0, *loss);
                    }
                }
                self.open_window("loss-burst");
            }
            Fault::LossBurstEnd { node } => {
                match node {
                    None => self.network.overlays.loss_all = None,
                    Some(n) => {
                        self.network.overlays.loss_node.remove(&n.0);
                    }
                }
                self.close_windows(|k| k == "loss-burst");
            }
            Fault::Corrupt { probability } => {
                self.network.overlays.corrupt_probability = *probability;
                if *probability > 0.0 {
                    self.open_window("corrupt");
                } else {
                    self.close_windows(|k| k == "corrupt");
                }
            }
        }
        Ok(())
    }

    fn crash(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node.index()];
        if slot.status == NodeStatus::Crashed {
            return;
        }
        slot.state = None;
        slot.status = NodeStatus::Crashed;
        slot.timers.clear();
        let lost = std::mem::take(&mut slot.paused_queue);
        let name = slot.name.clone();
        self.close_windows(|k| k == format!("pause {name}"));
        self.open_window(&format!("crash {name}"));
        for kind in lost {
            if let EventKind::Deliver { from, to, msg_id, msg, .. } = kind {
                self.drop_msg(to, from, to, msg_id, &msg, DropReason::NodeDown);
            }
        }
    }

    /// After a clock change, every pending timer of `node` fires when the *new* local clock reaches
    /// its deadline: timers are rescheduled in id order, and old queue entries go stale.
    fn reschedule_timers(&mut self, node: NodeId) {
        let now = self.now;
        let slot = &mut self.nodes[node.index()];
        let mut pushes = Vec::with_capacity(slot.timers.len());
        for (id, entry) in slot.timers.iter_mut() {
            entry.generation += 1;
            let at = slot.clock.true_time_of(now, entry.deadline);
            pushes.push((at.0, EventKind::Timer { node, id: *id, generation: entry.generation }));
        }
        for (at, kind) in pushes {
            self.push(at, kind);
        }
    }
}

enum Dispatch<M> {
    Start,
    Message(NodeId, M),
    Timer(TimerId, u64),
}

/// Draws loss, latency, corruption and duplication for one message on its link.
#[allow(clippy::too_many_arguments)]
fn plan_delivery<M: Message>(
    network: &mut Network,
    rng: &mut LinkRng,
    fifo_last_delivery_ns: &mut rustc_hash::FxHashMap<u64, u64>,
    now: u64,
    from: NodeId,
    to: NodeId,
    size: usize,
    msg: &M,
) -> Result<DeliveryPlan<M>, DropReason> {
    let route_ns = network.topology_latency(from, to, rng).ok_or(DropReason::Unreachable)?;
    let config = network.link_config(from, to);
    let overlays = &network.overlays;
    let plain = overlays.is_empty();
    let loss = if plain { config.loss } else { overlays.loss(config.loss, from, to) };
    if loss > 0.0 && rng.random_bool(loss) {
        return Err(DropReason::Loss);
    }
    let extra_ns = if plain { 0 } else { overlays.extra_latency_ns(from, to) };
    let base_ns = route_ns + extra_ns + config.transmission_ns(size);
    let mut corrupted_msg = None;
    if !plain && overlays.corrupt_probability > 0.0 && rng.random_bool(overlays.corrupt_probability) {
        corrupted_msg = Some(msg.corrupt(rand::Rng::next_u64(rng)).ok_or(DropReason::Corrupt)?);
    }
    // A FIFO link delivers no earlier than its previous message (the wire keeps order).
    let mut fifo_last = if config.fifo {
        Some(fifo_last_delivery_ns.entry(((from.0 as u64) << 32) | to.0 as u64).or_insert(0))
    } else {
        None
    };
    let mut first_at = now + base_ns + config.sample_latency(rng);
    if let Some(last) = fifo_last.as_deref_mut() {
        first_at = first_at.max(*last);
        *last = first_at;
    }
    let mut duplicate_at = None;
    if config.duplicate > 0.0 && rng.random_bool(config.duplicate) {
        let mut at = now + base_ns + config.sample_latency(rng);
        if let Some(last) = fifo_last {
            at = at.max(*last);
            *last = at;
        }
        duplicate_at = Some(at);
    }
    Ok(DeliveryPlan { first_at, duplicate_at, corrupted_msg })
}

struct DeliveryPlan<M> {
    first_at: u64,
    duplicate_at: Option<u64>,
    corrupted_msg: Option<M>,
}

/// The history records of a finished run, by process (helper for tests and reports).
pub fn history_by_process(history: &History) -> BTreeMap<u64, Vec<&HistoryEvent>> {
    let mut by_process: BTreeMap<u64, Vec<&HistoryEvent>> = BTreeMap::new();
    for event in &history.events {
        by_process.entry(event.process).or_default().push(event);
    }
    by_process
}

/// A simulation with its node type erased, so that scenario runners, the CLI and plots can drive any
/// protocol through one interface.
pub trait AnySimulation {
    fn seed(&self) -> u64;
    fn now(&self) -> SimTime;
    fn schedule_fault(&mut self, at: SimTime, fault: Fault) -> Result<(), SimError>;
    /// Streams the trace as JSON Lines to `out` (buffer it yourself).
    fn stream_trace_to(&mut self, out: Box<dyn std::io::Write>);
    /// Keeps the trace in memory too (for short runs, diagrams and tests).
    fn record_trace_in(&mut self, trace: crate::trace::MemoryTrace);
    fn run_until(&mut self, end: SimTime) -> Result<RunStats, SimError>;
    fn finish(&mut self) -> Result<(), SimError>;
    fn history(&self) -> &History;
    fn take_history(&mut self) -> History;
    fn trace_hash(&self) -> u64;
    fn stats(&self) -> RunStats;
    fn node_names(&self) -> Vec<String>;
    fn node_id(&self, name: &str) -> Option<NodeId>;
    fn node_status(&self, id: NodeId) -> NodeStatus;
    fn fault_windows(&self) -> Vec<(String, u64, Option<u64>)>;
}

impl<N: Node> AnySimulation for Simulation<N> {
    fn seed(&self) -> u64 {
        Simulation::seed(self)
    }
    fn now(&self) -> SimTime {
        Simulation::now(self)
    }
    fn schedule_fault(&mut self, at: SimTime, fault: Fault) -> Result<(), SimError> {
        Simulation::schedule_fault(self, at, fault)
    }
    fn stream_trace_to(&mut self, out: Box<dyn std::io::Write>) {
        self.set_trace_sink(Box::new(crate::trace::JsonlTraceWriter::new(out)));
    }
    fn record_trace_in(&mut self, trace: crate::trace::MemoryTrace) {
        self.set_trace_sink(Box::new(trace));
    }
    fn run_until(&mut self, end: SimTime) -> Result<RunStats, SimError> {
        Simulation::run_until(self, end).cloned()
    }
    fn finish(&mut self) -> Result<(), SimError> {
        Simulation::finish(self)
    }
    fn history(&self) -> &History {
        Simulation::history(self)
    }
    fn take_history(&mut self) -> History {
        Simulation::take_history(self)
    }
    fn trace_hash(&self) -> u64 {
        Simulation::trace_hash(self)
    }
    fn stats(&self) -> RunStats {
        Simulation::stats(self).clone()
    }
    fn node_names(&self) -> Vec<String> {
        Simulation::node_names(self).to_vec()
    }
    fn node_id(&self, name: &str) -> Option<NodeId> {
        Simulation::node_id(self, name)
    }
    fn node_status(&self, id: NodeId) -> NodeStatus {
        Simulation::node_status(self, id)
    }
    fn fault_windows(&self) -> Vec<(String, u64, Option<u64>)> {
        Simulation::fault_windows(self).to_vec()
    }
}
