//! Epidemic broadcast over a peer overlay: push rumor mongering, pull anti-entropy and push-pull
//! (Demers, Greene, Hauser, Irish, Larson, Shenker, Sturgis, Swinehart, Terry 1987, "Epidemic
//! Algorithms for Replicated Database Maintenance", PODC).
//!
//! # Protocol
//! Nodes `n1..nN` are the peers. Each one knows only its neighbours in an overlay graph (a petgraph
//! `UnGraph`, see [`overlay_graph`]): complete, ring, or a ring with random chords. Every
//! `round_ms` (each node on its own phase, so rounds are not synchronised) a node:
//! - **push**: sends each *hot* rumor to `fanout` random neighbours. A rumor stays hot for
//!   `rumor_rounds` rounds after the node learned it (Demers' "blind, counter" variant of rumor
//!   mongering). Push alone can leave a residue of nodes that never hear a rumor (Demers §1.4:
//!   `s = e^{-(k+1)(1-s)}`), and it cannot repair a node that lost its state in a crash.
//! - **pull**: sends the digest of the rumor ids it knows to one random neighbour, which replies
//!   with every rumor the asker lacks, hot or cold (anti-entropy). Pull reaches every live node of a
//!   connected overlay with probability 1, at the price of a digest per node per round forever.
//! - **push-pull**: both; push spreads fast while a rumor is young, pull mops up the residue.
//!
//! Rumors are volatile: a restarted node gets them back by pulling, but a broadcast that had not
//! left its origin when the origin crashed is gone.
//!
//! Rumors carry a [`VectorClock`] and a Lamport counter of the broadcast events (ticked only when a
//! node originates a broadcast, merged when it learns one), so that a run shows which broadcasts were
//! causally related and which were concurrent — what vector clocks tell apart and Lamport cannot.
//! Both clocks and the broadcast sequence number live in durable storage: a node that lost them in a
//! crash would reuse a rumor id its peers already hold (so its next broadcast would go nowhere), and
//! stamp its next broadcast as concurrent with what it had learned before the crash, which by
//! process order happened before it.
//!
//! # What a run records
//! History measurement events (see [`events`]): `broadcast` (key: rumor id, value: origin index) at
//! the origin and `deliver` (key: rumor id, value: hop count) at each node on first receipt, both in
//! true time. [`spread_report`] turns them into per-broadcast figures: nodes reached and time to
//! full spread. Rumor transmissions (message-rumor pairs sent) are counted per node
//! ([`GossipNode::transmissions`], summed by [`transmissions_per_rumor`]) and annotated as
//! `"gossip-sent rumor=<id> total=<count>"` each round a node sends a rumor.
//!
//! # Deliberate bug
//! `bug_unshuffled_peers`: peers are the *first* `fanout` neighbours in id order instead of a random
//! sample ("forgot to shuffle"). On an overlay where the first-neighbour relation is not connected,
//! some nodes are never reached; the tests catch it.

pub mod events;

use crate::clocks::lamport::LamportClock;
use crate::clocks::vector::VectorClock;
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::history::{History, Value};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, SimRng, Simulation, Storage, TimerId};
use events::{instant_events, record_instant};
use petgraph::graph::{NodeIndex, UnGraph};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How nodes exchange rumors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GossipMode {
    Push,
    Pull,
    PushPull,
}

/// The shape of the peer overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlayKind {
    /// Everyone is everyone's neighbour.
    Complete,
    /// Each node knows its two ring neighbours (diameter N/2: the slow case).
    Ring,
    /// A ring plus `chords` random edges per node (connected, small diameter, like a random graph).
    RandomChords,
}

/// Gossip parameters (scenario `params`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GossipParams {
    pub mode: GossipMode,
    pub overlay: OverlayKind,
    /// Random extra edges per node for `random-chords`.
    pub chords: usize,
    /// Neighbours each hot rumor is pushed to per round.
    pub fanout: usize,
    pub round_ms: u64,
    /// Rounds a rumor stays hot (is pushed) after a node learns it.
    pub rumor_rounds: u32,
    /// Broadcasts the run issues, round robin over the nodes (`n1` first).
    pub broadcasts: u32,
    pub first_broadcast_ms: u64,
    pub broadcast_interval_ms: u64,
    /// Deliberate bug: peers are the first `fanout` neighbours instead of a random sample.
    pub bug_unshuffled_peers: bool,
}

impl Default for GossipParams {
    fn default() -> Self {
        GossipParams {
            mode: GossipMode::PushPull,
            overlay: OverlayKind::RandomChords,
            chords: 2,
            fanout: 2,
            round_ms: 100,
            rumor_rounds: 6,
            broadcasts: 5,
            first_broadcast_ms: 200,
            broadcast_interval_ms: 1_000,
            bug_unshuffled_peers: false,
        }
    }
}

impl GossipParams {
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if nodes < 2 {
            return Err("gossip needs at least 2 nodes".into());
        }
        if self.fanout == 0 {
            return Err("fanout must be at least 1".into());
        }
        if self.round_ms == 0 {
            return Err("round_ms must be positive".into());
        }
        if self.broadcasts as usize >= RUMOR_SEQ_LIMIT as usize {
            return Err(format!("at most {} broadcasts", RUMOR_SEQ_LIMIT - 1));
        }
        Ok(())
    }
}

/// Rumor ids: `origin << 32 | seq`, unique per run.
pub type RumorId = u64;
const RUMOR_SEQ_LIMIT: u32 = 1 << 20;

pub fn rumor_id(origin: NodeId, seq: u32) -> RumorId {
    ((origin.0 as u64) << 32) | seq as u64
}

/// A rumor as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rumor {
    pub id: RumorId,
    pub origin: NodeId,
    /// Hops from the origin to the node that sent this copy.
    pub hops: u32,
    /// Vector timestamp of the broadcast event.
    pub stamp: VectorClock,
    /// Lamport timestamp of the broadcast event.
    pub lamport: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GossipMsg {
    Push { rumors: Vec<Rumor> },
    PullRequest { known: Vec<RumorId> },
    PullReply { rumors: Vec<Rumor> },
}

impl Message for GossipMsg {
    fn kind(&self) -> &'static str {
        match self {
            GossipMsg::Push { .. } => "Push",
            GossipMsg::PullRequest { .. } => "PullRequest",
            GossipMsg::PullReply { .. } => "PullReply",
        }
    }
    fn size_bytes(&self) -> usize {
        match self {
            GossipMsg::Push { rumors } | GossipMsg::PullReply { rumors } => {
                16 + rumors.iter().map(|r| 32 + 12 * r.stamp.entries().count()).sum::<usize>()
            }
            GossipMsg::PullRequest { known } => 16 + 8 * known.len(),
        }
    }
}

/// What a node knows of one rumor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownRumor {
    pub rumor: Rumor,
    /// Rounds it will still be pushed.
    pub hot_rounds_left: u32,
    /// Hops it took to reach this node.
    pub hops: u32,
}

const TAG_ROUND: u64 = 1;
const TAG_BROADCAST_BASE: u64 = 1_000;
const STORAGE_CAUSAL: &str = "gossip/causal";

/// What a node keeps across crashes: its place in the causal order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CausalState {
    next_seq: u32,
    vector: VectorClock,
    lamport: LamportClock,
}

/// One gossip peer.
pub struct GossipNode {
    id: NodeId,
    params: GossipParams,
    node_count: usize,
    neighbours: Vec<NodeId>,
    rumors: BTreeMap<RumorId, KnownRumor>,
    vector: VectorClock,
    lamport: LamportClock,
    transmissions: BTreeMap<RumorId, u64>,
    next_seq: u32,
}

impl GossipNode {
    /// A peer; a restarted one reads its broadcast sequence and clocks back from `storage`.
    pub fn new(
        id: NodeId,
        node_count: usize,
        neighbours: Vec<NodeId>,
        params: GossipParams,
        storage: &Storage,
    ) -> Self {
        assert!(!neighbours.contains(&id), "a node is not its own neighbour");
        let causal: CausalState = storage.get(STORAGE_CAUSAL).unwrap_or_default();
        GossipNode {
            id,
            params,
            node_count,
            neighbours,
            rumors: BTreeMap::new(),
            vector: causal.vector,
            lamport: causal.lamport,
            transmissions: BTreeMap::new(),
            next_seq: causal.next_seq,
        }
    }

    pub fn rumors(&self) -> &BTreeMap<RumorId, KnownRumor> {
        &self.rumors
    }
    pub fn neighbours(&self) -> &[NodeId] {
        &self.neighbours
    }
    /// Message-rumor pairs this node sent, per rumor (volatile: a crash resets it).
    pub fn transmissions(&self) -> &BTreeMap<RumorId, u64> {
        &self.transmissions
    }
    /// This node's vector clock of broadcast events.
    pub fn vector_clock(&self) -> &VectorClock {
        &self.vector
    }

    /// Originates a broadcast now (also called from the broadcast timers).
    pub fn broadcast(&mut self, ctx: &mut Ctx<'_, GossipMsg>) -> RumorId {
        assert!(self.next_seq < RUMOR_SEQ_LIMIT, "broadcast sequence limit");
        let id = rumor_id(self.id, self.next_seq);
        self.next_seq += 1;
        self.vector.tick(self.id.0);
        let lamport = self.lamport.tick();
        let rumor = Rumor { id, origin: self.id, hops: 0, stamp: self.vector.clone(), lamport };
        self.persist_causal(ctx);
        record_instant(ctx, "broadcast", Value::Int(id as i64), Value::Int(self.id.0 as i64));
        self.learn(ctx, rumor, 0);
        id
    }

    /// Takes in a rumor; returns whether it was new.
    fn learn(&mut self, ctx: &mut Ctx<'_, GossipMsg>, rumor: Rumor, hops: u32) -> bool {
        if self.rumors.contains_key(&rumor.id) {
            return false;
        }
        // Merging without a tick: only broadcasts are events of interest, which keeps stamps as
        // small as the number of origins while preserving "a → b iff V(a) < V(b)" among broadcasts.
        self.vector.merge(&rumor.stamp);
        self.lamport.observe(rumor.lamport);
        self.persist_causal(ctx);
        record_instant(ctx, "deliver", Value::Int(rumor.id as i64), Value::Int(hops as i64));
        let hot_rounds_left = match self.params.mode {
            GossipMode::Pull => 0,
            GossipMode::Push | GossipMode::PushPull => self.params.rumor_rounds,
        };
        self.rumors.insert(rumor.id, KnownRumor { rumor, hot_rounds_left, hops });
        true
    }

    fn persist_causal(&self, ctx: &mut Ctx<'_, GossipMsg>) {
        let causal = CausalState { next_seq: self.next_seq, vector: self.vector.clone(), lamport: self.lamport };
        ctx.storage().put(STORAGE_CAUSAL, &causal);
    }

    /// `count` distinct neighbours: a random sample (partial Fisher-Yates), or with the bug the first.
    fn pick_peers(&self, rng: &mut SimRng, count: usize) -> Vec<NodeId> {
        let count = count.min(self.neighbours.len());
        if self.params.bug_unshuffled_peers {
            return self.neighbours[..count].to_vec();
        }
        let mut pool = self.neighbours.clone();
        for i in 0..count {
            let j = rng.random_range(i..pool.len());
            pool.swap(i, j);
        }
        pool.truncate(count);
        pool
    }

    fn outgoing(&self, rumor: &KnownRumor) -> Rumor {
        Rumor { hops: rumor.hops + 1, ..rumor.rumor.clone() }
    }

    fn count_sent(&mut self, ctx: &mut Ctx<'_, GossipMsg>, ids: &[RumorId], copies: u64) {
        for id in ids {
            let total = self.transmissions.entry(*id).or_insert(0);
            *total += copies;
            ctx.annotate(format!("gossip-sent rumor={id} total={total}"));
        }
    }

    fn round(&mut self, ctx: &mut Ctx<'_, GossipMsg>) {
        if matches!(self.params.mode, GossipMode::Push | GossipMode::PushPull) {
            let hot: Vec<Rumor> =
                self.rumors.values().filter(|r| r.hot_rounds_left > 0).map(|r| self.outgoing(r)).collect();
            if !hot.is_empty() {
                let peers = self.pick_peers(ctx.rng(), self.params.fanout);
                let ids: Vec<RumorId> = hot.iter().map(|r| r.id).collect();
                self.count_sent(ctx, &ids, peers.len() as u64);
                ctx.send_all(peers, &GossipMsg::Push { rumors: hot });
                for rumor in self.rumors.values_mut() {
                    rumor.hot_rounds_left = rumor.hot_rounds_left.saturating_sub(1);
                }
            }
        }
        if matches!(self.params.mode, GossipMode::Pull | GossipMode::PushPull) {
            if let Some(peer) = self.pick_peers(ctx.rng(), 1).first().copied() {
                let known = self.rumors.keys().copied().collect();
                ctx.send(peer, GossipMsg::PullRequest { known });
            }
        }
    }
}

impl Node for GossipNode {
    type Msg = GossipMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, GossipMsg>) {
        // A random phase per node: synchronised rounds would make every push of a round race.
        let phase_ns = ctx.rng().random_range(0..self.params.round_ms * 1_000_000);
        ctx.set_timer(Duration::from_nanos(phase_ns), TAG_ROUND);
        let n = self.node_count as u64;
        let now_ns = ctx.now().as_nanos();
        for b in 0..self.params.broadcasts as u64 {
            if b % n != self.id.0 as u64 {
                continue;
            }
            let at_ns = (self.params.first_broadcast_ms + b * self.params.broadcast_interval_ms) as i64 * 1_000_000;
            // After a restart, broadcasts whose time has passed are not re-issued.
            if at_ns > now_ns {
                ctx.set_timer(Duration::from_nanos((at_ns - now_ns) as u64), TAG_BROADCAST_BASE + b);
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, GossipMsg>, from: NodeId, msg: GossipMsg) {
        match msg {
            GossipMsg::Push { rumors } | GossipMsg::PullReply { rumors } => {
                for rumor in rumors {
                    let hops = rumor.hops;
                    self.learn(ctx, rumor, hops);
                }
            }
            GossipMsg::PullRequest { known } => {
                let known: BTreeSet<RumorId> = known.into_iter().collect();
                let missing: Vec<Rumor> =
                    self.rumors.values().filter(|r| !known.contains(&r.rumor.id)).map(|r| self.outgoing(r)).collect();
                if !missing.is_empty() {
                    let ids: Vec<RumorId> = missing.iter().map(|r| r.id).collect();
                    self.count_sent(ctx, &ids, 1);
                    ctx.send(from, GossipMsg::PullReply { rumors: missing });
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, GossipMsg>, _timer: TimerId, tag: u64) {
        if tag == TAG_ROUND {
            self.round(ctx);
            ctx.set_timer(Duration::from_millis(self.params.round_ms), TAG_ROUND);
        } else if tag >= TAG_BROADCAST_BASE {
            self.broadcast(ctx);
        }
    }
}

/// The peer overlay for `nodes` peers: vertex `i` is node `i`. Random edges come from a stream of
/// the run seed, so the same seed gives the same overlay.
pub fn overlay_graph(kind: OverlayKind, nodes: usize, chords: usize, seed: u64) -> UnGraph<NodeId, ()> {
    let mut graph = UnGraph::<NodeId, ()>::with_capacity(nodes, nodes * (chords + 1));
    for i in 0..nodes {
        graph.add_node(NodeId(i as u32));
    }
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut add = |a: usize, b: usize| {
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    };
    match kind {
        OverlayKind::Complete => {
            for a in 0..nodes {
                for b in a + 1..nodes {
                    add(a, b);
                }
            }
        }
        OverlayKind::Ring | OverlayKind::RandomChords => {
            for a in 0..nodes {
                add(a, (a + 1) % nodes);
            }
            if kind == OverlayKind::RandomChords && nodes > 3 {
                // Stream index 0x90551 ("gossip"): the overlay's own draws, apart from every node's.
                let mut rng = derive_stream(seed, StreamPurpose::Workload, 0x90551);
                for a in 0..nodes {
                    for _ in 0..chords {
                        add(a, rng.random_range(0..nodes));
                    }
                }
            }
        }
    }
    for (a, b) in edges {
        graph.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
    }
    graph
}

/// Neighbours of `node` in `graph`, in id order.
pub fn neighbours_of(graph: &UnGraph<NodeId, ()>, node: NodeId) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = graph.neighbors(NodeIndex::new(node.index())).map(|v| graph[v]).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A gossip simulation of `spec.nodes` peers named `n1..nN`.
pub fn build(spec: &ClusterSpec, params: GossipParams) -> Result<Simulation<GossipNode>, String> {
    params.validate(spec.nodes)?;
    let graph = overlay_graph(params.overlay, spec.nodes, params.chords, spec.seed);
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let n = spec.nodes;
    for i in 0..n {
        let id = NodeId(i as u32);
        let neighbours = neighbours_of(&graph, id);
        let params = params.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |id, storage| {
            GossipNode::new(id, n, neighbours.clone(), params.clone(), storage)
        });
    }
    Ok(sim)
}

fn build_any(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build(spec, spec.params()?)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "gossip",
        description: "epidemic broadcast (push / pull / push-pull) over a petgraph overlay; spread time and messages per broadcast",
        workloads: &[WorkloadKind::None],
        build: build_any,
    }]
}

/// How far one broadcast spread, from the history's `broadcast` and `deliver` events.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastSpread {
    pub rumor: RumorId,
    pub origin: NodeId,
    pub start_ns: u64,
    /// Distinct nodes that delivered it (the origin included).
    pub reached: usize,
    /// True time from the broadcast until the last of `nodes` nodes delivered it, if all did.
    pub full_spread_ns: Option<u64>,
    /// Largest hop count a node received it with.
    pub max_hops: u32,
}

/// Per broadcast, in rumor id order: reach and time to full spread over `nodes` nodes. A node that
/// delivered it twice (once again after losing its state in a crash) counts once, at its first.
pub fn spread_report(history: &History, nodes: usize) -> Vec<BroadcastSpread> {
    let mut spreads: BTreeMap<RumorId, BroadcastSpread> = BTreeMap::new();
    for event in instant_events(history, "broadcast") {
        let rumor = event.key.as_int().expect("rumor ids are integers") as RumorId;
        spreads.insert(
            rumor,
            BroadcastSpread {
                rumor,
                origin: NodeId(event.node),
                start_ns: event.time_ns,
                reached: 0,
                full_spread_ns: None,
                max_hops: 0,
            },
        );
    }
    let mut seen: BTreeMap<RumorId, BTreeMap<u32, u64>> = BTreeMap::new();
    for event in instant_events(history, "deliver") {
        let rumor = event.key.as_int().expect("rumor ids are integers") as RumorId;
        let hops = event.value.as_int().expect("hop counts are integers") as u32;
        seen.entry(rumor).or_default().entry(event.node).or_insert(event.time_ns);
        if let Some(spread) = spreads.get_mut(&rumor) {
            spread.max_hops = spread.max_hops.max(hops);
        }
    }
    for (rumor, spread) in spreads.iter_mut() {
        let Some(nodes_seen) = seen.get(rumor) else { continue };
        spread.reached = nodes_seen.len();
        if nodes_seen.len() >= nodes {
            let last = nodes_seen.values().max().copied().expect("non-empty");
            spread.full_spread_ns = Some(last.saturating_sub(spread.start_ns));
        }
    }
    spreads.into_values().collect()
}

/// Rumor transmissions per rumor, summed over the nodes that are up (a crashed node's count is lost).
pub fn transmissions_per_rumor(sim: &Simulation<GossipNode>) -> BTreeMap<RumorId, u64> {
    let mut total: BTreeMap<RumorId, u64> = BTreeMap::new();
    for i in 0..sim.node_count() {
        if let Some(node) = sim.node(NodeId(i as u32)) {
            for (rumor, count) in node.transmissions() {
                *total.entry(*rumor).or_insert(0) += count;
            }
        }
    }
    total
}
