//! A Chord distributed hash table (Stoica, Morris, Karger, Kaashoek, Balakrishnan 2001, "Chord: A
//! Scalable Peer-to-peer Lookup Service for Internet Applications", SIGCOMM), with iterative lookups.
//!
//! # Protocol
//! Nodes sit on a ring of 32-bit identifiers ([`node_key`]); key `k` belongs to its *successor*, the
//! first node clockwise from `k`. Each node keeps a successor list of `successors` entries (§E.3:
//! survives that many simultaneous failures), a predecessor, and 32 fingers, `finger[i] =
//! successor(me + 2^i)`.
//! - **join** (§4.4): `n1` starts the ring; every other node looks up its own key through `n1` and
//!   takes the answer as its successor. Restarted nodes join again the same way.
//! - **stabilize** every `stabilize_ms`: ask the successor for its predecessor and successor list,
//!   adopt the predecessor if it sits between, then *notify* the successor. The predecessor is
//!   pinged too, so that a live node can take the place of a failed one.
//! - **failure detection**: a successor (or predecessor) is declared failed only after
//!   `failure_threshold` *consecutive* probes went unanswered within `step_timeout_ms`; then the
//!   successor is dropped for the next one in the list (the predecessor is forgotten). Why not at the
//!   first miss: a node answers "the owner of k is my successor" from its successor list alone, so
//!   dropping a *live* successor makes it name the wrong owner for every key between itself and that
//!   successor until the next stabilize round re-adopts it. With a one-strike detector a single lost
//!   message (1% loss: about one probe in fifty) is enough; with three strikes the odds are about
//!   `(2 · loss)^3` per round. The successor list is changed only by stabilization and this detector.
//! - **fix fingers** every `fix_fingers_ms`: refresh the next finger by a lookup of `me + 2^i`.
//! - **lookup** (iterative, §4.3): the origin asks the closest preceding node it knows, which answers
//!   either "done: the owner is my successor" or "ask this closer node". Each remote query is a hop.
//!   A query that times out removes that node from the origin's *fingers* (routing hints, so a wrong
//!   removal costs hops, never correctness) and the lookup resumes from the origin; after
//!   `max_retries` timeouts (`"timed-out"`: only lost messages or dead nodes cause those) or
//!   `max_hops` hops (`"too-many-hops"`: a routing failure) it fails. With correct fingers the distance to the key
//!   halves per hop, so hops grow like `log2 N` (about `½ log2 N` on average).
//!
//! # What a run records
//! Client lookups, one at a time per node every `lookup_interval_ms` from `lookups_start_ms`, are
//! history operations of the node's process: `invoke lookup key=<key>`, then `ok` with value
//! `[owner index, hops]` or `fail` (`"timed-out"`, `"too-many-hops"`). [`lookups`] reads them back;
//! [`expected_owner`] gives the true owner among a set of live nodes, for correctness checks.
//!
//! # Deliberate bug
//! `bug_no_fix_fingers`: fingers are never refreshed, so lookups walk the successor lists: hops grow
//! like `N / (2 * successors)` instead of `log N`. The hop-count test catches it.

use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::history::{EventType, History, Op, Value};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Simulation, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Chord parameters (scenario `params`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChordParams {
    /// `n2`, `n3`, ... join one after another this far apart (`n1` starts the ring at 0).
    pub join_interval_ms: u64,
    pub stabilize_ms: u64,
    pub fix_fingers_ms: u64,
    /// Length of the successor list.
    pub successors: usize,
    pub step_timeout_ms: u64,
    /// Consecutive unanswered stabilize probes (or predecessor pings) before that neighbour is
    /// declared failed. 1 is a one-strike detector, wrong under any message loss.
    pub failure_threshold: u32,
    pub max_retries: u32,
    pub max_hops: u32,
    pub lookups_start_ms: u64,
    pub lookup_interval_ms: u64,
    /// Deliberate bug: fingers are never refreshed.
    pub bug_no_fix_fingers: bool,
}

impl Default for ChordParams {
    fn default() -> Self {
        ChordParams {
            join_interval_ms: 50,
            stabilize_ms: 100,
            fix_fingers_ms: 20,
            successors: 4,
            step_timeout_ms: 100,
            failure_threshold: 3,
            max_retries: 3,
            max_hops: 64,
            lookups_start_ms: 5_000,
            lookup_interval_ms: 200,
            bug_no_fix_fingers: false,
        }
    }
}

impl ChordParams {
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if nodes == 0 || nodes > 1 << 20 {
            return Err("chord needs between 1 and 2^20 nodes".into());
        }
        if self.successors == 0 || self.stabilize_ms == 0 || self.fix_fingers_ms == 0 || self.step_timeout_ms == 0 {
            return Err("successors, stabilize_ms, fix_fingers_ms and step_timeout_ms must be positive".into());
        }
        if self.lookup_interval_ms == 0 || self.max_hops == 0 || self.failure_threshold == 0 {
            return Err("lookup_interval_ms, max_hops and failure_threshold must be positive".into());
        }
        Ok(())
    }
}

/// Bits of the identifier ring.
pub const RING_BITS: u32 = 32;

/// The ring identifier of node `index` in a run with `seed` (splitmix64, so ids spread evenly and
/// differ from seed to seed).
pub fn node_key(seed: u64, index: u32) -> u32 {
    let mut z = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(index as u64 + 1);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// `x` in the ring interval `(a, b)`; when `a == b`, the whole ring but `a`.
pub fn between_open(x: u32, a: u32, b: u32) -> bool {
    let (dx, db) = (x.wrapping_sub(a), b.wrapping_sub(a));
    dx != 0 && (db == 0 || dx < db)
}

/// `x` in the ring interval `(a, b]`; when `a == b`, the whole ring.
pub fn between_right_closed(x: u32, a: u32, b: u32) -> bool {
    let (dx, db) = (x.wrapping_sub(a), b.wrapping_sub(a));
    db == 0 || (dx != 0 && dx <= db)
}

/// A node as others know it: its simulation id and its ring key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    pub node: NodeId,
    pub key: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hop {
    /// The owner of the key is this node (the answerer's successor).
    Done(Peer),
    /// Ask this node, closer to the key.
    Closer(Peer),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChordMsg {
    FindNext { lookup: u64, step: u32, key: u32 },
    NextHop { lookup: u64, step: u32, hop: Hop },
    GetPredecessor { nonce: u64 },
    Predecessor { nonce: u64, predecessor: Option<Peer>, successors: Vec<Peer> },
    Notify { peer: Peer },
    Ping { nonce: u64 },
    Pong { nonce: u64 },
}

impl Message for ChordMsg {
    fn kind(&self) -> &'static str {
        match self {
            ChordMsg::FindNext { .. } => "FindNext",
            ChordMsg::NextHop { .. } => "NextHop",
            ChordMsg::GetPredecessor { .. } => "GetPredecessor",
            ChordMsg::Predecessor { .. } => "Predecessor",
            ChordMsg::Notify { .. } => "Notify",
            ChordMsg::Ping { .. } => "Ping",
            ChordMsg::Pong { .. } => "Pong",
        }
    }
    fn size_bytes(&self) -> usize {
        match self {
            ChordMsg::Predecessor { successors, .. } => 32 + 8 * successors.len(),
            _ => 32,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Join,
    Finger(u32),
    Client,
}

struct Lookup {
    key: u32,
    purpose: Purpose,
    step: u32,
    hops: u32,
    retries: u32,
    asking: Peer,
    timer: TimerId,
}

const STORAGE_INCARNATION: &str = "chord/incarnation";
/// Low bits of a lookup history process: the node index (the rest counts restarts).
pub const PROCESS_NODE_BITS: u32 = 20;
const TAG_JOIN: u64 = 1;
const TAG_STABILIZE: u64 = 2;
const TAG_FIX_FINGERS: u64 = 3;
const TAG_CLIENT: u64 = 4;
const TAG_STEP_TIMEOUT: u64 = 5;
const TAG_STABILIZE_TIMEOUT: u64 = 6;
const TAG_PREDECESSOR_TIMEOUT: u64 = 7;

/// One Chord node.
pub struct ChordNode {
    me: Peer,
    bootstrap: Peer,
    params: ChordParams,
    joined: bool,
    successors: Vec<Peer>,
    predecessor: Option<Peer>,
    fingers: Vec<Option<Peer>>,
    next_finger: u32,
    lookups: BTreeMap<u64, Lookup>,
    next_lookup: u64,
    client_busy: bool,
    /// History process of this incarnation's lookups (a restart gets a fresh one).
    process: u64,
    join_due: bool,
    stabilize_wait: Option<(u64, TimerId)>,
    predecessor_wait: Option<(u64, TimerId)>,
    /// Consecutive stabilize probes the current successor left unanswered.
    successor_misses: u32,
    /// Consecutive pings the current predecessor left unanswered.
    predecessor_misses: u32,
    next_nonce: u64,
}

impl ChordNode {
    pub fn new(me: Peer, bootstrap: Peer, params: ChordParams) -> Self {
        ChordNode {
            me,
            bootstrap,
            params,
            joined: false,
            successors: Vec::new(),
            predecessor: None,
            fingers: vec![None; RING_BITS as usize],
            next_finger: 0,
            lookups: BTreeMap::new(),
            next_lookup: 0,
            client_busy: false,
            process: me.node.0 as u64,
            join_due: false,
            stabilize_wait: None,
            predecessor_wait: None,
            successor_misses: 0,
            predecessor_misses: 0,
            next_nonce: 0,
        }
    }

    pub fn me(&self) -> Peer {
        self.me
    }
    pub fn joined(&self) -> bool {
        self.joined
    }
    pub fn successors(&self) -> &[Peer] {
        &self.successors
    }
    pub fn predecessor(&self) -> Option<Peer> {
        self.predecessor
    }
    pub fn fingers(&self) -> &[Option<Peer>] {
        &self.fingers
    }

    fn successor(&self) -> Peer {
        self.successors.first().copied().unwrap_or(self.me)
    }

    /// One step of a lookup, as this node answers it.
    fn next_hop(&self, key: u32) -> Hop {
        let successor = self.successor();
        if between_right_closed(key, self.me.key, successor.key) {
            return Hop::Done(successor);
        }
        // Closest preceding node (§4.3, Fig. 5): among fingers and successors, the one in
        // (me, key) farthest from me.
        let best = self
            .fingers
            .iter()
            .flatten()
            .chain(self.successors.iter())
            .filter(|p| between_open(p.key, self.me.key, key))
            .max_by_key(|p| p.key.wrapping_sub(self.me.key))
            .copied();
        match best {
            Some(peer) if peer.node != self.me.node => Hop::Closer(peer),
            _ => Hop::Done(successor),
        }
    }

    fn nonce(&mut self) -> u64 {
        self.next_nonce += 1;
        self.next_nonce
    }

    fn start_lookup(&mut self, ctx: &mut Ctx<'_, ChordMsg>, key: u32, purpose: Purpose) {
        let id = self.next_lookup;
        self.next_lookup += 1;
        if purpose == Purpose::Client {
            ctx.invoke(self.process, Op::new("lookup", Some(Value::Int(key as i64)), Value::Nil));
        }
        let first = if self.joined {
            match self.next_hop(key) {
                Hop::Done(owner) => {
                    self.finish_lookup(ctx, key, purpose, 0, Ok(owner));
                    return;
                }
                Hop::Closer(peer) => peer,
            }
        } else {
            self.bootstrap
        };
        let timer = ctx.set_timer(Duration::from_millis(self.params.step_timeout_ms), TAG_STEP_TIMEOUT | id << 8);
        ctx.send(first.node, ChordMsg::FindNext { lookup: id, step: 0, key });
        self.lookups.insert(id, Lookup { key, purpose, step: 0, hops: 1, retries: 0, asking: first, timer });
    }

    fn ask(&mut self, ctx: &mut Ctx<'_, ChordMsg>, id: u64, peer: Peer) {
        let timeout = Duration::from_millis(self.params.step_timeout_ms);
        let lookup = self.lookups.get_mut(&id).expect("live lookup");
        lookup.step += 1;
        lookup.hops += 1;
        lookup.asking = peer;
        lookup.timer = ctx.set_timer(timeout, TAG_STEP_TIMEOUT | id << 8);
        let (step, key) = (lookup.step, lookup.key);
        ctx.send(peer.node, ChordMsg::FindNext { lookup: id, step, key });
    }

    fn finish_lookup(
        &mut self,
        ctx: &mut Ctx<'_, ChordMsg>,
        key: u32,
        purpose: Purpose,
        hops: u32,
        result: Result<Peer, &str>,
    ) {
        match (purpose, result) {
            (Purpose::Client, Ok(owner)) => {
                let value = Value::List(vec![Value::Int(owner.node.0 as i64), Value::Int(hops as i64)]);
                ctx.ok(self.process, Op::new("lookup", Some(Value::Int(key as i64)), value));
                self.client_busy = false;
            }
            (Purpose::Client, Err(error)) => {
                ctx.fail(self.process, Op::new("lookup", Some(Value::Int(key as i64)), Value::Nil), error);
                self.client_busy = false;
            }
            (Purpose::Join, Ok(owner)) => {
                // Our own key's successor is our successor; a node that finds itself (a restart
                // racing its old incarnation out of the tables) just tries again later.
                if owner.node != self.me.node {
                    self.successors = vec![owner];
                    self.successor_misses = 0;
                    self.joined = true;
                    ctx.annotate(format!("chord joined key={} successor={}", self.me.key, owner.node));
                }
            }
            (Purpose::Join, Err(_)) => {}
            (Purpose::Finger(i), Ok(owner)) => self.fingers[i as usize] = Some(owner),
            (Purpose::Finger(_), Err(_)) => {}
        }
    }

    /// Forgets a node that did not answer a lookup step, from the fingers only: they are routing
    /// hints, and the next `fix_fingers` round restores a wrongly removed one.
    fn forget_finger(&mut self, node: NodeId) {
        for finger in self.fingers.iter_mut() {
            if finger.is_some_and(|f| f.node == node) {
                *finger = None;
            }
        }
    }

    /// Forgets a neighbour the failure detector declared failed, from every table.
    fn forget(&mut self, ctx: &mut Ctx<'_, ChordMsg>, node: NodeId) {
        self.forget_finger(node);
        self.successors.retain(|p| p.node != node);
        self.successor_misses = 0;
        if self.predecessor.is_some_and(|p| p.node == node) {
            self.predecessor = None;
            self.predecessor_misses = 0;
        }
        if self.joined && self.successors.is_empty() && self.me.node != self.bootstrap.node {
            // Every successor is gone: the ring is lost to us; join again.
            self.joined = false;
            ctx.annotate("chord lost every successor; rejoining");
        }
    }

    fn stabilize(&mut self, ctx: &mut Ctx<'_, ChordMsg>) {
        if !self.joined {
            return;
        }
        let successor = self.successor();
        if successor.node == self.me.node {
            // A ring of one adopts whoever notified it (the bootstrap's first joiner).
            if let Some(pred) = self.predecessor {
                self.successors = vec![pred];
            }
        } else if self.stabilize_wait.is_none() {
            let nonce = self.nonce();
            let timer = ctx.set_timer(Duration::from_millis(self.params.step_timeout_ms), TAG_STABILIZE_TIMEOUT);
            self.stabilize_wait = Some((nonce, timer));
            ctx.send(successor.node, ChordMsg::GetPredecessor { nonce });
        }
        if let (Some(pred), None) = (self.predecessor, self.predecessor_wait) {
            let nonce = self.nonce();
            let timer = ctx.set_timer(Duration::from_millis(self.params.step_timeout_ms), TAG_PREDECESSOR_TIMEOUT);
            self.predecessor_wait = Some((nonce, timer));
            ctx.send(pred.node, ChordMsg::Ping { nonce });
        }
    }

    fn adopt_successor_list(&mut self, successor: Peer, list: Vec<Peer>) {
        let mut successors = vec![successor];
        for peer in list {
            if peer.node != self.me.node && !successors.iter().any(|p| p.node == peer.node) {
                successors.push(peer);
            }
        }
        successors.truncate(self.params.successors);
        self.successors = successors;
    }
}

impl Node for ChordNode {
    type Msg = ChordMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, ChordMsg>) {
        // A lookup cut short by a crash never completes; the next incarnation uses a fresh history
        // process so that no process invokes twice without a completion.
        let incarnation = ctx.storage().get::<u64>(STORAGE_INCARNATION).unwrap_or(0);
        ctx.storage().put(STORAGE_INCARNATION, &(incarnation + 1));
        self.process = incarnation << PROCESS_NODE_BITS | self.me.node.0 as u64;
        if self.me.node == self.bootstrap.node {
            self.joined = true;
        } else {
            let at_ms = self.params.join_interval_ms * self.me.node.0 as u64;
            let now_ms = (ctx.now().as_nanos().max(0) as u64) / 1_000_000;
            ctx.set_timer(Duration::from_millis(at_ms.saturating_sub(now_ms)), TAG_JOIN);
        }
        let jitter = ctx.rng().random_range(0..self.params.stabilize_ms);
        ctx.set_timer(Duration::from_millis(self.params.stabilize_ms + jitter), TAG_STABILIZE);
        if !self.params.bug_no_fix_fingers {
            ctx.set_timer(Duration::from_millis(self.params.fix_fingers_ms + jitter), TAG_FIX_FINGERS);
        }
        let now_ms = (ctx.now().as_nanos().max(0) as u64) / 1_000_000;
        let start = self.params.lookups_start_ms.saturating_sub(now_ms) + jitter;
        ctx.set_timer(Duration::from_millis(start), TAG_CLIENT);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, ChordMsg>, from: NodeId, msg: ChordMsg) {
        match msg {
            ChordMsg::FindNext { lookup, step, key } => {
                // A node outside the ring stays silent: any answer it gave would be wrong.
                if self.joined {
                    let hop = self.next_hop(key);
                    ctx.send(from, ChordMsg::NextHop { lookup, step, hop });
                }
            }
            ChordMsg::NextHop { lookup: id, step, hop } => {
                let Some(lookup) = self.lookups.get(&id) else { return };
                if lookup.step != step || lookup.asking.node != from {
                    return; // the answer to a step that already timed out
                }
                ctx.cancel_timer(lookup.timer);
                let (key, purpose, hops) = (lookup.key, lookup.purpose, lookup.hops);
                match hop {
                    Hop::Done(owner) => {
                        self.lookups.remove(&id);
                        self.finish_lookup(ctx, key, purpose, hops, Ok(owner));
                    }
                    Hop::Closer(_) if hops >= self.params.max_hops => {
                        self.lookups.remove(&id);
                        self.finish_lookup(ctx, key, purpose, hops, Err("too-many-hops"));
                    }
                    Hop::Closer(peer) => self.ask(ctx, id, peer),
                }
            }
            ChordMsg::GetPredecessor { nonce } => {
                if self.joined {
                    let successors = self.successors.clone();
                    ctx.send(from, ChordMsg::Predecessor { nonce, predecessor: self.predecessor, successors });
                }
            }
            ChordMsg::Predecessor { nonce, predecessor, successors } => {
                let Some((waiting, timer)) = self.stabilize_wait else { return };
                if waiting != nonce {
                    return;
                }
                ctx.cancel_timer(timer);
                self.stabilize_wait = None;
                let mut successor = self.successor();
                if successor.node != from {
                    return; // our successor changed while we waited
                }
                self.successor_misses = 0;
                self.adopt_successor_list(successor, successors);
                if let Some(pred) = predecessor {
                    if pred.node != self.me.node && between_open(pred.key, self.me.key, successor.key) {
                        successor = pred;
                        let rest = self.successors.clone();
                        self.adopt_successor_list(pred, rest);
                    }
                }
                ctx.send(successor.node, ChordMsg::Notify { peer: self.me });
            }
            ChordMsg::Notify { peer } => {
                if peer.node == self.me.node || !self.joined {
                    return;
                }
                let adopt = match self.predecessor {
                    None => true,
                    Some(pred) => between_open(peer.key, pred.key, self.me.key),
                };
                if adopt {
                    self.predecessor = Some(peer);
                    self.predecessor_misses = 0;
                }
            }
            ChordMsg::Ping { nonce } => ctx.send(from, ChordMsg::Pong { nonce }),
            ChordMsg::Pong { nonce } => {
                if let Some((waiting, timer)) = self.predecessor_wait {
                    if waiting == nonce {
                        ctx.cancel_timer(timer);
                        self.predecessor_wait = None;
                        self.predecessor_misses = 0;
                    }
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, ChordMsg>, timer: TimerId, tag: u64) {
        match tag & 0xff {
            TAG_JOIN => {
                self.join_due = true;
                if !self.joined {
                    self.start_lookup(ctx, self.me.key, Purpose::Join);
                }
            }
            TAG_STABILIZE => {
                let joining = self.lookups.values().any(|l| l.purpose == Purpose::Join);
                if self.join_due && !self.joined && !joining {
                    // Lost the ring (or the join lookup failed): try again.
                    self.start_lookup(ctx, self.me.key, Purpose::Join);
                }
                self.stabilize(ctx);
                ctx.set_timer(Duration::from_millis(self.params.stabilize_ms), TAG_STABILIZE);
            }
            TAG_FIX_FINGERS => {
                if self.joined {
                    let i = self.next_finger;
                    self.next_finger = (self.next_finger + 1) % RING_BITS;
                    let key = self.me.key.wrapping_add(1u32 << i);
                    self.start_lookup(ctx, key, Purpose::Finger(i));
                }
                ctx.set_timer(Duration::from_millis(self.params.fix_fingers_ms), TAG_FIX_FINGERS);
            }
            TAG_CLIENT => {
                if self.joined && !self.client_busy {
                    self.client_busy = true;
                    let key: u32 = ctx.rng().random();
                    self.start_lookup(ctx, key, Purpose::Client);
                }
                ctx.set_timer(Duration::from_millis(self.params.lookup_interval_ms), TAG_CLIENT);
            }
            TAG_STEP_TIMEOUT => {
                let id = tag >> 8;
                let Some(lookup) = self.lookups.get(&id) else { return };
                if lookup.timer != timer {
                    return;
                }
                let (asking, key, purpose, hops, retries) =
                    (lookup.asking, lookup.key, lookup.purpose, lookup.hops, lookup.retries);
                self.forget_finger(asking.node);
                if retries >= self.params.max_retries || (!self.joined && purpose != Purpose::Join) {
                    self.lookups.remove(&id);
                    self.finish_lookup(ctx, key, purpose, hops, Err("timed-out"));
                    return;
                }
                self.lookups.get_mut(&id).expect("live lookup").retries += 1;
                // Resume from our own (now pruned) tables; a joiner can only ask the bootstrap.
                let next = if self.joined { self.next_hop(key) } else { Hop::Closer(self.bootstrap) };
                match next {
                    Hop::Done(owner) => {
                        self.lookups.remove(&id);
                        self.finish_lookup(ctx, key, purpose, hops, Ok(owner));
                    }
                    Hop::Closer(peer) => self.ask(ctx, id, peer),
                }
            }
            TAG_STABILIZE_TIMEOUT => {
                if let Some((_, waiting)) = self.stabilize_wait {
                    if waiting == timer {
                        self.stabilize_wait = None;
                        self.successor_misses += 1;
                        if self.successor_misses >= self.params.failure_threshold {
                            let dead = self.successor().node;
                            ctx.annotate(format!("chord successor {dead} failed"));
                            self.forget(ctx, dead);
                        }
                    }
                }
            }
            TAG_PREDECESSOR_TIMEOUT => {
                if let Some((_, waiting)) = self.predecessor_wait {
                    if waiting == timer {
                        self.predecessor_wait = None;
                        self.predecessor_misses += 1;
                        if self.predecessor_misses >= self.params.failure_threshold {
                            self.predecessor = None;
                            self.predecessor_misses = 0;
                        }
                    }
                }
            }
            _ => unreachable!("unknown chord timer tag {tag}"),
        }
    }
}

/// A Chord ring of `spec.nodes` nodes named `n1..nN` (`n1` is the bootstrap node).
pub fn build(spec: &ClusterSpec, params: ChordParams) -> Result<Simulation<ChordNode>, String> {
    params.validate(spec.nodes)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let seed = spec.seed;
    let bootstrap = Peer { node: NodeId(0), key: node_key(seed, 0) };
    for i in 0..spec.nodes {
        let params = params.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |id, _storage| {
            ChordNode::new(Peer { node: id, key: node_key(seed, id.0) }, bootstrap, params.clone())
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
        name: "chord",
        description: "Chord DHT: joins, stabilization, fingers, iterative lookups under churn; hops grow like log N",
        workloads: &[WorkloadKind::None],
        build: build_any,
    }]
}

/// One client lookup read back from a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupRecord {
    pub invoked_ns: u64,
    pub completed_ns: u64,
    pub node: u32,
    pub key: u32,
    /// `Some((owner index, hops))` when it succeeded.
    pub result: Option<(u32, u32)>,
}

/// Every completed client lookup, in completion order.
pub fn lookups(history: &History) -> Vec<LookupRecord> {
    let mut open: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for event in history.events.iter().filter(|e| e.f == "lookup") {
        let key = event.key.as_ref().and_then(Value::as_int).expect("lookup keys are integers") as u32;
        match event.kind {
            EventType::Invoke => {
                open.insert(event.process, event.time_ns);
            }
            kind => {
                let invoked_ns = open.remove(&event.process).expect("a completion follows its invoke");
                let result = (kind == EventType::Ok).then(|| {
                    let list = event.value.as_list().expect("lookup results are [owner hops]");
                    (list[0].as_int().expect("owner") as u32, list[1].as_int().expect("hops") as u32)
                });
                let node = (event.process & ((1 << PROCESS_NODE_BITS) - 1)) as u32;
                out.push(LookupRecord { invoked_ns, completed_ns: event.time_ns, node, key, result });
            }
        }
    }
    out
}

/// The true owner of `key` among `live` nodes (their indexes), given the run's `seed`.
pub fn expected_owner(seed: u64, live: &[u32], key: u32) -> u32 {
    *live.iter().min_by_key(|n| node_key(seed, **n).wrapping_sub(key)).expect("at least one live node")
}
