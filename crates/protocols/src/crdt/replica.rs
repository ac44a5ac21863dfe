//! A CRDT replica: answers every client operation from its own state at once (no coordination, so
//! it is available whenever a client reaches it), and gossips its whole state to one peer after
//! another (push-pull anti-entropy), merging whatever it receives.

use super::types::{Crdt, GCounter, OrSet, PnCounter};
use super::{CrdtKind, CrdtMsg, CrdtParams};
use crate::workload::{ClientReply, ClientRequest, ReplyResult};
use detsim_core::history::ProcessId;
use detsim_core::{Ctx, NodeId, Storage, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a replica keeps on durable storage, written before it answers a client.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Durable {
    /// The object under each key (pairs, since JSON object keys are strings).
    objects: Vec<(Value, Crdt)>,
    /// Per client process, the last request applied here and its answer: a duplicated request
    /// (the network duplicates messages) must not count twice.
    sessions: BTreeMap<ProcessId, (u64, ReplyResult)>,
}

const STATE_KEY: &str = "crdt/replica";
/// Most keys one replica holds (a limit on everything).
const MAX_KEYS: usize = 4096;

/// One replica.
pub struct CrdtReplica {
    id: NodeId,
    peers: Vec<NodeId>,
    kind: CrdtKind,
    params: CrdtParams,
    objects: BTreeMap<Value, Crdt>,
    sessions: BTreeMap<ProcessId, (u64, ReplyResult)>,
    /// Round-robin position over the peers, so every pair gossips within `peers.len()` rounds.
    cursor: usize,
    merges: u64,
}

impl CrdtReplica {
    /// A replica rebuilt from its durable storage (empty at first start).
    pub fn recover(id: NodeId, servers: &[NodeId], kind: CrdtKind, params: CrdtParams, storage: &Storage) -> Self {
        let durable: Durable = storage.get(STATE_KEY).unwrap_or_default();
        let peers: Vec<NodeId> = servers.iter().copied().filter(|s| *s != id).collect();
        CrdtReplica {
            id,
            cursor: id.index() % peers.len().max(1),
            peers,
            kind,
            params,
            objects: durable.objects.into_iter().collect(),
            sessions: durable.sessions,
            merges: 0,
        }
    }

    /// The object under `key` (`None`: never touched here).
    pub fn object(&self, key: &Value) -> Option<&Crdt> {
        self.objects.get(key)
    }
    /// Every key this replica holds, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Value> {
        self.objects.keys()
    }
    /// Gossip merges that changed this replica's state.
    pub fn merges(&self) -> u64 {
        self.merges
    }

    fn persist(&self, ctx: &mut Ctx<'_, CrdtMsg>) {
        let durable = Durable {
            objects: self.objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            sessions: self.sessions.clone(),
        };
        ctx.storage().put(STATE_KEY, &durable);
    }

    fn empty(&self) -> Crdt {
        match self.kind {
            CrdtKind::GCounter => Crdt::GCounter(GCounter::default()),
            CrdtKind::PnCounter => Crdt::PnCounter(PnCounter::default()),
            CrdtKind::OrSet => Crdt::OrSet(OrSet::default()),
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, CrdtMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.gossip_interval_ms), 0);
    }

    pub fn on_request(&mut self, ctx: &mut Ctx<'_, CrdtMsg>, client: NodeId, request: ClientRequest) {
        let result = match self.sessions.get(&request.process) {
            Some((seq, result)) if *seq == request.seq => result.clone(),
            Some((seq, _)) if *seq > request.seq => ReplyResult::Unknown("stale-request".into()),
            _ => {
                let result = self.apply(&request);
                if !matches!(request.op.f.as_str(), "read") {
                    self.sessions.insert(request.process, (request.seq, result.clone()));
                    self.persist(ctx);
                }
                result
            }
        };
        ctx.send(client, CrdtMsg::Reply(ClientReply::to(&request, result)));
    }

    /// Applies one client operation to the local replica.
    fn apply(&mut self, request: &ClientRequest) -> ReplyResult {
        let op = &request.op;
        let key = op.key.clone().unwrap_or_default();
        if op.f == "read" {
            // A key never touched reads as the empty object (and is not created by reading).
            return ReplyResult::Ok(self.objects.get(&key).map_or_else(|| self.empty().read(), Crdt::read));
        }
        if !self.objects.contains_key(&key) && self.objects.len() >= MAX_KEYS {
            return ReplyResult::Fail("too many keys".into());
        }
        let replica = self.id.0;
        let mutants = self.params.mutants();
        let empty = self.empty();
        let object = self.objects.entry(key).or_insert(empty);
        match (op.f.as_str(), object) {
            ("add", Crdt::GCounter(counter)) => match op.value.as_int() {
                Some(amount) if amount >= 0 => {
                    counter.increment(replica, amount.unsigned_abs());
                    ReplyResult::Ok(op.value.clone())
                }
                _ => ReplyResult::Fail("a G-counter only counts up (use crdt-pncounter)".into()),
            },
            ("add", Crdt::PnCounter(counter)) => match op.value.as_int() {
                Some(amount) => {
                    counter.add(replica, amount, &mutants);
                    ReplyResult::Ok(op.value.clone())
                }
                None => ReplyResult::Fail("a counter adds integers".into()),
            },
            ("add", Crdt::OrSet(set)) => {
                set.add(replica, op.value.clone(), &mutants);
                ReplyResult::Ok(op.value.clone())
            }
            ("remove", Crdt::OrSet(set)) => {
                set.remove(&op.value, &mutants);
                ReplyResult::Ok(op.value.clone())
            }
            (other, _) => ReplyResult::Fail(format!("{:?} does not support {other:?}", self.kind)),
        }
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, CrdtMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.gossip_interval_ms), 0);
        if self.peers.is_empty() {
            return;
        }
        self.cursor = (self.cursor + 1) % self.peers.len();
        let peer = self.peers[self.cursor];
        ctx.send(peer, CrdtMsg::Gossip { objects: self.snapshot(), reply: true });
    }

    fn snapshot(&self) -> Vec<(Value, Crdt)> {
        self.objects.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// A peer's state: merge it in; answer with ours when asked (push-pull), so one exchange
    /// brings both sides up to their join.
    pub fn on_gossip(&mut self, ctx: &mut Ctx<'_, CrdtMsg>, from: NodeId, objects: Vec<(Value, Crdt)>, reply: bool) {
        let mutants = self.params.mutants();
        let mut changed = false;
        for (key, theirs) in objects {
            if !self.objects.contains_key(&key) && self.objects.len() >= MAX_KEYS {
                continue;
            }
            let empty = self.empty();
            let mine = self.objects.entry(key).or_insert(empty);
            let before = mine.clone();
            mine.merge(&theirs, &mutants);
            changed |= *mine != before;
        }
        if changed {
            self.merges += 1;
            self.persist(ctx);
        }
        if reply {
            ctx.send(from, CrdtMsg::Gossip { objects: self.snapshot(), reply: false });
        }
    }
}
