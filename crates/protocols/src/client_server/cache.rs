//! A read-through cache tier with a time-to-live: cache nodes answer reads from their own copy
//! until it expires, and send writes through to the storage node (dropping their own copy). Other
//! cache nodes keep serving the old value until their copy expires: stale reads, bounded by the TTL
//! plus one network delay, which the linearizability checker flags and a staleness measure bounds.
//! This is the "cache-aside with expiry" of the AWS Builders' Library article "Caching challenges
//! and strategies" (Matt Brinkley): the TTL is the knob between load on the store and staleness.
//!
//! Deliberate bug: `bug_ttl_never_expires` keeps entries forever, so a cache serves a stale value
//! for the rest of the run once another node has written the key.

use super::msg::{timer_tag, CsMsg, Key, KvOp, Outcome};
use super::proxy::Forwarder;
use detsim_core::{Ctx, LocalTime, Node, NodeId, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings of a cache node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheParams {
    /// How long a cached value may be served.
    pub ttl_ns: u64,
    /// Deliberate bug: entries never expire.
    pub bug_ttl_never_expires: bool,
    /// How long the cache waits for the storage node.
    pub backend_timeout_ns: u64,
    /// Entries kept (least recently filled evicted first).
    pub capacity: usize,
}

impl Default for CacheParams {
    fn default() -> Self {
        CacheParams {
            ttl_ns: 200_000_000,
            bug_ttl_never_expires: false,
            backend_timeout_ns: 500_000_000,
            capacity: 100_000,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    value: Option<i64>,
    /// Local time after which the entry is not served; `None`: never (the bug).
    expires_at: Option<LocalTime>,
    filled_seq: u64,
}

/// A cache node.
#[derive(Clone, Debug)]
pub struct CacheServer {
    params: CacheParams,
    store: NodeId,
    entries: BTreeMap<Key, Entry>,
    fill_seq: u64,
    forwarder: Forwarder<()>,
    pub hits: u64,
    pub misses: u64,
}

impl CacheServer {
    pub fn new(params: CacheParams, store: NodeId) -> Self {
        CacheServer {
            forwarder: Forwarder::new(params.backend_timeout_ns),
            params,
            store,
            entries: BTreeMap::new(),
            fill_seq: 0,
            hits: 0,
            misses: 0,
        }
    }

    fn fresh(&self, key: Key, now: LocalTime) -> Option<Option<i64>> {
        let entry = self.entries.get(&key)?;
        match entry.expires_at {
            Some(expires_at) if now >= expires_at => None,
            _ => Some(entry.value),
        }
    }

    fn fill(&mut self, key: Key, value: Option<i64>, now: LocalTime) {
        if self.entries.len() >= self.params.capacity && !self.entries.contains_key(&key) {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.filled_seq).map(|(k, _)| *k);
            self.entries.remove(&oldest.expect("a full cache is not empty"));
        }
        let expires_at =
            if self.params.bug_ttl_never_expires { None } else { Some(now + Duration::from_nanos(self.params.ttl_ns)) };
        self.fill_seq += 1;
        self.entries.insert(key, Entry { value, expires_at, filled_seq: self.fill_seq });
    }
}

impl Node for CacheServer {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        match msg {
            CsMsg::Request { id, op, idempotency_key } => {
                if let KvOp::Read { key } = op {
                    if let Some(value) = self.fresh(key, ctx.now()) {
                        self.hits += 1;
                        ctx.send(from, CsMsg::Reply { id, outcome: Outcome::Value(value) });
                        return;
                    }
                    self.misses += 1;
                }
                self.forwarder.forward(ctx, from, id, self.store, op, idempotency_key, ());
            }
            CsMsg::Reply { id, outcome } => {
                let Some(call) = self.forwarder.answered(ctx, from, id) else {
                    return;
                };
                match (&call.op, &outcome) {
                    (KvOp::Read { key }, Outcome::Value(value)) => self.fill(*key, *value, ctx.now()),
                    // Our own write made our copy wrong; other caches' copies stay wrong until expiry.
                    (op, _) if !op.is_read() => {
                        self.entries.remove(&op.key());
                    }
                    _ => {}
                }
                ctx.send(call.client, CsMsg::Reply { id: call.client_id, outcome });
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        if kind == timer_tag::BACKEND_TIMEOUT {
            if let Some(call) = self.forwarder.timed_out(id) {
                if !call.op.is_read() {
                    self.entries.remove(&call.op.key());
                }
                let outcome = Outcome::Unknown("store-timeout".into());
                ctx.send(call.client, CsMsg::Reply { id: call.client_id, outcome });
            }
        }
    }
}
