//! A Dynamo storage node: replica (durable versions per key, hinted replicas kept apart), coordinator
//! of the client requests it receives (quorums, sloppy fallbacks, read repair), hinted handoff, and
//! anti-entropy with its peers.

use super::ring::Ring;
use super::version::{merge, next_clock, resolve, Stamp, Versioned};
use super::{DynamoMsg, DynamoParams};
use crate::workload::{ClientReply, ClientRequest, ReplyResult};
use detsim_core::{Ctx, NodeId, Storage, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Messages between storage nodes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerMsg {
    /// Store these versions of `key`; `hint` names the home replica a fallback stands in for.
    Put {
        op: u64,
        key: Value,
        versions: Vec<Versioned>,
        hint: Option<NodeId>,
    },
    PutAck {
        op: u64,
    },
    Get {
        op: u64,
        key: Value,
    },
    GetReply {
        op: u64,
        versions: Vec<Versioned>,
    },
    /// Read repair: merge these versions (they are at least as new as what a read saw here).
    Repair {
        key: Value,
        versions: Vec<Versioned>,
    },
    /// Hinted handoff: versions a fallback kept for the receiver while it was unreachable.
    Handoff {
        key: Value,
        versions: Vec<Versioned>,
    },
    HandoffAck {
        key: Value,
        versions: Vec<Versioned>,
    },
    /// Anti-entropy: every version the sender holds of keys both replicate; answer with `reply`.
    Sync {
        entries: Vec<(Value, Vec<Versioned>)>,
        reply: bool,
    },
}

impl PeerMsg {
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMsg::Put { .. } => "Put",
            PeerMsg::PutAck { .. } => "PutAck",
            PeerMsg::Get { .. } => "Get",
            PeerMsg::GetReply { .. } => "GetReply",
            PeerMsg::Repair { .. } => "Repair",
            PeerMsg::Handoff { .. } => "Handoff",
            PeerMsg::HandoffAck { .. } => "HandoffAck",
            PeerMsg::Sync { .. } => "Sync",
        }
    }
}

/// A client request this node coordinates.
struct Pending {
    client: NodeId,
    request: ClientRequest,
    key: Value,
    /// The versions to store (a write), or `None` (a read).
    write: Option<Vec<Versioned>>,
    homes: Vec<NodeId>,
    fallbacks: Vec<NodeId>,
    /// Nodes asked, with the home each fallback stands in for.
    asked: BTreeMap<NodeId, Option<NodeId>>,
    /// Answers so far (a write's acknowledgements carry no versions).
    answered: BTreeMap<NodeId, Vec<Versioned>>,
    /// Homes a fallback was asked to stand in for.
    covered: BTreeSet<NodeId>,
    /// A read's merged result once answered (late answers are repaired against it).
    merged: Option<Vec<Versioned>>,
    ticks: u64,
}

const DATA_PREFIX: &str = "dynamo/data/";
const HINT_PREFIX: &str = "dynamo/hint/";
const EPOCH_KEY: &str = "dynamo/epoch";
const COUNTER_KEY: &str = "dynamo/write-counter";
/// Most requests one node coordinates at once (a limit on everything).
const MAX_PENDING: usize = 4096;

/// One Dynamo storage node.
pub struct DynamoServer {
    id: NodeId,
    servers: Vec<NodeId>,
    ring: Ring,
    params: DynamoParams,
    store: BTreeMap<Value, Vec<Versioned>>,
    hints: BTreeMap<(NodeId, Value), Vec<Versioned>>,
    pending: BTreeMap<u64, Pending>,
    next_op: u64,
    write_counter: u64,
    ticks: u64,
    sync_cursor: usize,
    inbox: Vec<(NodeId, PeerMsg)>,
}

impl DynamoServer {
    /// A node rebuilt from its durable storage (empty at first start).
    pub fn recover(id: NodeId, servers: Vec<NodeId>, params: DynamoParams, storage: &Storage) -> Self {
        let ring = Ring::new(&servers, params.vnodes_per_server);
        let mut store = BTreeMap::new();
        for name in storage.keys_with_prefix(DATA_PREFIX) {
            let (key, versions): (Value, Vec<Versioned>) = storage.get(name).expect("listed key");
            store.insert(key, versions);
        }
        let mut hints = BTreeMap::new();
        for name in storage.keys_with_prefix(HINT_PREFIX) {
            let (home, key, versions): (NodeId, Value, Vec<Versioned>) = storage.get(name).expect("listed key");
            hints.insert((home, key), versions);
        }
        // Operation ids of an earlier life must not match this life's pending requests.
        let epoch: u64 = storage.get(EPOCH_KEY).unwrap_or(0);
        DynamoServer {
            id,
            servers,
            ring,
            store,
            hints,
            pending: BTreeMap::new(),
            next_op: epoch << 40,
            write_counter: storage.get(COUNTER_KEY).unwrap_or(0),
            ticks: 0,
            sync_cursor: id.index(),
            inbox: Vec::new(),
            params,
        }
    }

    /// The versions this node holds as a home replica of `key`.
    pub fn versions(&self, key: &Value) -> &[Versioned] {
        self.store.get(key).map_or(&[], Vec::as_slice)
    }
    /// The value a read served by this replica alone would return.
    pub fn resolved(&self, key: &Value) -> Value {
        resolve(self.versions(key))
    }
    /// Hinted versions waiting for their home replica.
    pub fn hint_count(&self) -> usize {
        self.hints.len()
    }
    /// The home replicas of `key`.
    pub fn homes(&self, key: &Value) -> Vec<NodeId> {
        self.ring.preference_list(key).into_iter().take(self.params.replicas_n).collect()
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, DynamoMsg>) {
        let epoch = (self.next_op >> 40) + 1;
        ctx.storage().put(EPOCH_KEY, &epoch);
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
    }

    fn send(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, to: NodeId, msg: PeerMsg) {
        if to == self.id {
            self.inbox.push((to, msg));
        } else {
            ctx.send(to, DynamoMsg::Peer(msg));
        }
    }

    fn drain_inbox(&mut self, ctx: &mut Ctx<'_, DynamoMsg>) {
        let mut rounds = 0;
        while !self.inbox.is_empty() {
            rounds += 1;
            assert!(rounds < 1_000, "local message loop");
            for (from, msg) in std::mem::take(&mut self.inbox) {
                self.handle(ctx, from, msg);
            }
        }
    }

    fn reply(ctx: &mut Ctx<'_, DynamoMsg>, client: NodeId, request: &ClientRequest, result: ReplyResult) {
        ctx.send(client, DynamoMsg::Reply(ClientReply::to(request, result)));
    }

    /// A client request: this node coordinates it, whichever node it is (Dynamo lets any node
    /// coordinate; a real client library would pick one of the key's replicas).
    pub fn on_request(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, client: NodeId, request: ClientRequest) {
        let key = request.op.key.clone().unwrap_or_default();
        let write = match request.op.f.as_str() {
            "read" | "get" => None,
            "write" | "put" => {
                let local = self.store.get(&key).cloned().unwrap_or_default();
                Some(vec![self.new_version(ctx, request.op.value.clone(), &local)])
            }
            other => {
                // No atomic read-modify-write without consensus: cas and append are refused, not faked.
                let result = ReplyResult::Fail(format!("dynamo does not support {other:?}"));
                Self::reply(ctx, client, &request, result);
                return;
            }
        };
        if self.pending.len() >= MAX_PENDING {
            Self::reply(ctx, client, &request, ReplyResult::Fail("overloaded".into()));
            return;
        }
        let preference = self.ring.preference_list(&key);
        let homes: Vec<NodeId> = preference[..self.params.replicas_n].to_vec();
        let fallbacks: Vec<NodeId> = preference[self.params.replicas_n..].to_vec();
        let op = self.next_op;
        self.next_op += 1;
        let mut pending = Pending {
            client,
            request,
            key,
            write,
            homes: homes.clone(),
            fallbacks,
            asked: BTreeMap::new(),
            answered: BTreeMap::new(),
            covered: BTreeSet::new(),
            merged: None,
            ticks: 0,
        };
        for home in &homes {
            pending.asked.insert(*home, None);
        }
        let msgs: Vec<(NodeId, PeerMsg)> = homes.iter().map(|h| (*h, Self::ask(op, &pending, None))).collect();
        self.pending.insert(op, pending);
        for (to, msg) in msgs {
            self.send(ctx, to, msg);
        }
        self.drain_inbox(ctx);
    }

    fn ask(op: u64, pending: &Pending, hint: Option<NodeId>) -> PeerMsg {
        match &pending.write {
            Some(versions) => PeerMsg::Put { op, key: pending.key.clone(), versions: versions.clone(), hint },
            None => PeerMsg::Get { op, key: pending.key.clone() },
        }
    }

    /// A fresh version of `key` written by this coordinator, newer than everything in `seen`.
    fn new_version(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, value: Value, seen: &[Versioned]) -> Versioned {
        self.write_counter += 1;
        // Durable, so that a restarted coordinator never reuses a vector-clock entry.
        ctx.storage().put(COUNTER_KEY, &self.write_counter);
        let stamp = Stamp { local_ns: ctx.now().as_nanos(), node: self.id.0, counter: self.write_counter };
        let clock = match self.params.versioning {
            super::Versioning::LastWriterWins => BTreeMap::new(),
            super::Versioning::VectorClock => next_clock(seen, self.id.0, self.write_counter),
        };
        Versioned { value, stamp, clock }
    }

    pub fn on_peer(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, from: NodeId, msg: PeerMsg) {
        self.handle(ctx, from, msg);
        self.drain_inbox(ctx);
    }

    fn handle(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, from: NodeId, msg: PeerMsg) {
        match msg {
            PeerMsg::Put { op, key, versions, hint } => {
                match hint {
                    Some(home) if home != self.id => self.store_hint(ctx, home, key, &versions),
                    _ => self.store_merged(ctx, key, &versions),
                }
                // Acknowledged only after the versions are durable.
                self.send(ctx, from, PeerMsg::PutAck { op });
            }
            PeerMsg::Get { op, key } => {
                let mut versions = self.store.get(&key).cloned().unwrap_or_default();
                for ((_, hinted_key), hinted) in &self.hints {
                    if *hinted_key == key {
                        versions = merge(self.params.versioning, &versions, hinted);
                    }
                }
                self.send(ctx, from, PeerMsg::GetReply { op, versions });
            }
            PeerMsg::PutAck { op } => self.on_answer(ctx, op, from, Vec::new()),
            PeerMsg::GetReply { op, versions } => self.on_answer(ctx, op, from, versions),
            PeerMsg::Repair { key, versions } => self.store_merged(ctx, key, &versions),
            PeerMsg::Handoff { key, versions } => {
                self.store_merged(ctx, key.clone(), &versions);
                self.send(ctx, from, PeerMsg::HandoffAck { key, versions });
            }
            PeerMsg::HandoffAck { key, versions } => {
                let slot = (from, key);
                // Only if nothing newer was hinted meanwhile; otherwise the next handoff carries it.
                if self.hints.get(&slot) == Some(&versions) {
                    ctx.storage().remove(&Self::hint_name(slot.0, &slot.1));
                    self.hints.remove(&slot);
                }
            }
            PeerMsg::Sync { entries, reply } => {
                for (key, versions) in entries {
                    if self.homes(&key).contains(&self.id) {
                        self.store_merged(ctx, key, &versions);
                    }
                }
                if reply {
                    let entries = self.entries_shared_with(from);
                    self.send(ctx, from, PeerMsg::Sync { entries, reply: false });
                }
            }
        }
    }

    fn data_name(key: &Value) -> String {
        format!("{DATA_PREFIX}{key}")
    }
    fn hint_name(home: NodeId, key: &Value) -> String {
        format!("{HINT_PREFIX}{}/{key}", home.0)
    }

    fn store_merged(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, key: Value, versions: &[Versioned]) {
        let local = self.store.get(&key).map_or(&[][..], Vec::as_slice);
        let merged = merge(self.params.versioning, local, versions);
        if merged.as_slice() != local {
            ctx.storage().put(&Self::data_name(&key), &(&key, &merged));
            self.store.insert(key, merged);
        }
    }

    fn store_hint(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, home: NodeId, key: Value, versions: &[Versioned]) {
        let slot = (home, key);
        let local = self.hints.get(&slot).map_or(&[][..], Vec::as_slice);
        let merged = merge(self.params.versioning, local, versions);
        if merged.as_slice() != local {
            ctx.storage().put(&Self::hint_name(home, &slot.1), &(home, &slot.1, &merged));
            self.hints.insert(slot, merged);
        }
    }

    fn entries_shared_with(&self, peer: NodeId) -> Vec<(Value, Vec<Versioned>)> {
        self.store
            .iter()
            .filter(|(key, _)| self.homes(key).contains(&peer))
            .map(|(key, versions)| (key.clone(), versions.clone()))
            .collect()
    }

    fn on_answer(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, op: u64, from: NodeId, versions: Vec<Versioned>) {
        let versioning = self.params.versioning;
        let Some(pending) = self.pending.get_mut(&op) else {
            return; // finished already
        };
        if !pending.asked.contains_key(&from) {
            return;
        }
        pending.answered.insert(from, versions.clone());
        let mut repairs: Vec<(NodeId, Vec<Versioned>)> = Vec::new();
        let mut finished = pending.answered.len() == pending.asked.len();
        match (&pending.write, &pending.merged) {
            (Some(written), _) => {
                if pending.answered.len() == self.params.write_quorum_w {
                    Self::reply(ctx, pending.client, &pending.request, ReplyResult::Ok(resolve(written)));
                    finished = true; // late acknowledgements change nothing
                }
            }
            (None, None) => {
                if pending.answered.len() == self.params.read_quorum_r {
                    let merged = pending.answered.values().fold(Vec::new(), |acc, v| merge(versioning, &acc, v));
                    Self::reply(ctx, pending.client, &pending.request, ReplyResult::Ok(resolve(&merged)));
                    for (node, seen) in &pending.answered {
                        if *seen != merged && pending.homes.contains(node) {
                            repairs.push((*node, seen.clone()));
                        }
                    }
                    pending.merged = Some(merged);
                }
            }
            (None, Some(merged)) => {
                // A late answer: repair it if it is behind what the read returned.
                if versions != *merged && pending.homes.contains(&from) {
                    repairs.push((from, versions));
                }
            }
        }
        let key = pending.key.clone();
        let merged = pending.merged.clone();
        if finished {
            self.pending.remove(&op);
        }
        if self.params.read_repair && !repairs.is_empty() {
            let merged = merged.expect("repairs follow a read's answer");
            let repair = if self.params.mutant_repair_restamps {
                // MUTANT: the value read is written back as a *new* version, so it beats any write
                // that reached a replica after the read's answers were gathered.
                let value = resolve(&merged);
                vec![self.new_version(ctx, value, &merged)]
            } else {
                merged
            };
            for (node, _) in repairs {
                self.send(ctx, node, PeerMsg::Repair { key: key.clone(), versions: repair.clone() });
            }
        }
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, DynamoMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
        self.ticks += 1;
        let retry_ticks = (self.params.fallback_after_ms / self.params.tick_ms).max(1);
        let deadline_ticks = (self.params.request_deadline_ms / self.params.tick_ms).max(1);
        let mut sends: Vec<(NodeId, PeerMsg)> = Vec::new();
        let mut expired = Vec::new();
        for (op, pending) in self.pending.iter_mut() {
            pending.ticks += 1;
            let answered = pending.merged.is_some();
            if pending.ticks >= deadline_ticks {
                expired.push(*op);
                continue;
            }
            if answered || pending.ticks % retry_ticks != 0 {
                continue;
            }
            // Ask again whoever has not answered (messages get lost), then, with a sloppy quorum,
            // ask the next fallback for each home replica that is still silent.
            for (node, hint) in &pending.asked {
                if !pending.answered.contains_key(node) {
                    sends.push((*node, Self::ask(*op, pending, *hint)));
                }
            }
            if self.params.sloppy_quorum {
                let silent: Vec<NodeId> = pending
                    .homes
                    .iter()
                    .copied()
                    .filter(|h| !pending.answered.contains_key(h) && !pending.covered.contains(h))
                    .collect();
                for home in silent {
                    let Some(position) = pending.fallbacks.iter().position(|f| !pending.asked.contains_key(f)) else {
                        break;
                    };
                    let fallback = pending.fallbacks[position];
                    pending.covered.insert(home);
                    pending.asked.insert(fallback, Some(home));
                    sends.push((fallback, Self::ask(*op, pending, Some(home))));
                }
            }
        }
        for op in expired {
            let pending = self.pending.remove(&op).expect("listed above");
            if pending.merged.is_none() {
                let result = match pending.write {
                    // Some replicas may hold the write: its outcome is unknown.
                    Some(_) => ReplyResult::Unknown("write quorum not reached".into()),
                    None => ReplyResult::Fail("read quorum not reached".into()),
                };
                Self::reply(ctx, pending.client, &pending.request, result);
            }
        }
        let handoff_ticks = (self.params.handoff_interval_ms / self.params.tick_ms).max(1);
        if self.ticks.is_multiple_of(handoff_ticks) {
            for ((home, key), versions) in &self.hints {
                sends.push((*home, PeerMsg::Handoff { key: key.clone(), versions: versions.clone() }));
            }
        }
        let sync_ticks = (self.params.anti_entropy_interval_ms / self.params.tick_ms).max(1);
        if self.params.anti_entropy && self.servers.len() > 1 && self.ticks.is_multiple_of(sync_ticks) {
            // Round robin over the peers, so every pair of replicas meets within n - 1 rounds.
            self.sync_cursor = (self.sync_cursor + 1) % self.servers.len();
            if self.servers[self.sync_cursor] == self.id {
                self.sync_cursor = (self.sync_cursor + 1) % self.servers.len();
            }
            let peer = self.servers[self.sync_cursor];
            let entries = self.entries_shared_with(peer);
            sends.push((peer, PeerMsg::Sync { entries, reply: true }));
        }
        for (to, msg) in sends {
            self.send(ctx, to, msg);
        }
        self.drain_inbox(ctx);
    }
}
