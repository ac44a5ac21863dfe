//! The stateful key-value server: registers and counters in memory, optionally written through to
//! durable storage (so a restart keeps acknowledged writes), optional idempotency-key
//! deduplication, optional shard ownership. It is the single KV server, the storage node behind
//! the front tier, cache and load balancer, and one shard of the sharded KV.
//!
//! A single server applies operations one at a time in arrival order, so its history is
//! linearizable; while it is down nobody can be served: the single point of failure.

use super::msg::{timer_tag, CsMsg, IdempotencyKey, Key, KvOp, Outcome};
use super::service::{ServiceParams, ServiceQueue};
use super::sharding::ShardMap;
use detsim_core::{Ctx, Node, NodeId, Storage, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of a KV server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KvServerParams {
    pub service: ServiceParams,
    /// Write every update (and dedup entry) to durable storage before replying.
    pub durable: bool,
    /// Remember the reply to each idempotency key and answer retries from it without reapplying.
    pub dedup: bool,
    /// Dedup entries kept (oldest forgotten first); bounded like everything else.
    pub dedup_capacity: usize,
}

impl Default for KvServerParams {
    fn default() -> Self {
        KvServerParams { service: ServiceParams::default(), durable: true, dedup: true, dedup_capacity: 100_000 }
    }
}

/// One request waiting for (or in) service.
#[derive(Clone, Debug)]
struct Job {
    from: NodeId,
    id: u64,
    op: KvOp,
    idempotency_key: Option<IdempotencyKey>,
}

const DATA_PREFIX: &str = "kv/";
const DEDUP_PREFIX: &str = "dedup/";

/// The KV server node.
#[derive(Clone, Debug)]
pub struct KvServer {
    params: KvServerParams,
    data: BTreeMap<Key, i64>,
    dedup: BTreeMap<IdempotencyKey, Outcome>,
    queue: ServiceQueue<Job>,
    /// `Some` for a shard server: requests for keys it does not own are refused.
    shard_ownership: Option<(ShardMap, NodeId)>,
    /// Times each operation was applied (retries included), for the double-apply figures.
    pub applied_ops: u64,
    /// Retries answered from the dedup table instead of being applied again.
    pub deduplicated: u64,
}

impl KvServer {
    /// A server, rebuilt from `storage` (empty on first start).
    pub fn new(params: KvServerParams, slowdown: f64, storage: &Storage) -> Self {
        let mut data = BTreeMap::new();
        let mut dedup = BTreeMap::new();
        if params.durable {
            for name in storage.keys_with_prefix(DATA_PREFIX) {
                let key: Key = name[DATA_PREFIX.len()..].parse().expect("data keys are numbers");
                data.insert(key, storage.get::<i64>(name).expect("listed key exists"));
            }
            for name in storage.keys_with_prefix(DEDUP_PREFIX) {
                let (key, outcome): (IdempotencyKey, Outcome) = storage.get(name).expect("listed key exists");
                dedup.insert(key, outcome);
            }
        }
        KvServer {
            queue: ServiceQueue::new(params.service.clone(), slowdown),
            params,
            data,
            dedup,
            shard_ownership: None,
            applied_ops: 0,
            deduplicated: 0,
        }
    }

    /// Makes this server the owner of its shards in `map`: other keys are refused.
    pub fn with_shards(mut self, map: ShardMap, me: NodeId) -> Self {
        self.shard_ownership = Some((map, me));
        self
    }

    /// The current value of `key`.
    pub fn value(&self, key: Key) -> Option<i64> {
        self.data.get(&key).copied()
    }

    /// Every key and value, in key order.
    pub fn data(&self) -> &BTreeMap<Key, i64> {
        &self.data
    }

    fn serve(&mut self, ctx: &mut Ctx<'_, CsMsg>, job: Job) {
        let outcome = self.execute(ctx, &job);
        ctx.send(job.from, CsMsg::Reply { id: job.id, outcome });
    }

    fn execute(&mut self, ctx: &mut Ctx<'_, CsMsg>, job: &Job) -> Outcome {
        if let Some((map, me)) = &self.shard_ownership {
            if map.owner(job.op.key()) != *me {
                return Outcome::NotApplied("wrong-shard".into());
            }
        }
        let dedup_key = job.idempotency_key.filter(|_| self.params.dedup && !job.op.is_read());
        if let Some(key) = dedup_key {
            if let Some(previous) = self.dedup.get(&key) {
                // A retry of an operation already applied: the first reply, not a second effect.
                self.deduplicated += 1;
                return previous.clone();
            }
        }
        let outcome = match job.op {
            KvOp::Read { key } => Outcome::Value(self.data.get(&key).copied()),
            KvOp::Write { key, value } => {
                self.store(ctx, key, value);
                Outcome::Value(None)
            }
            KvOp::Add { key, delta } => {
                let value = self.data.get(&key).copied().unwrap_or(0) + delta;
                self.store(ctx, key, value);
                Outcome::Value(None)
            }
            KvOp::Call { .. } => return Outcome::NotApplied("not-a-kv-operation".into()),
        };
        if !job.op.is_read() {
            self.applied_ops += 1;
        }
        if let Some(key) = dedup_key {
            if self.dedup.len() >= self.params.dedup_capacity {
                let oldest = *self.dedup.keys().next().expect("a full table is not empty");
                self.dedup.remove(&oldest);
                if self.params.durable {
                    ctx.storage().remove(&dedup_name(&oldest));
                }
            }
            self.dedup.insert(key, outcome.clone());
            if self.params.durable {
                // Written in the same handler as the data: a crash keeps both or neither.
                ctx.storage().put(&dedup_name(&key), &(key, outcome.clone()));
            }
        }
        outcome
    }

    fn store(&mut self, ctx: &mut Ctx<'_, CsMsg>, key: Key, value: i64) {
        self.data.insert(key, value);
        if self.params.durable {
            ctx.storage().put(&format!("{DATA_PREFIX}{key}"), &value);
        }
    }
}

fn dedup_name(key: &IdempotencyKey) -> String {
    // Zero-padded so that storage order is (client, op_seq) order.
    format!("{DEDUP_PREFIX}{:010}/{:020}", key.client, key.op_seq)
}

impl Node for KvServer {
    type Msg = CsMsg;

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, from: NodeId, msg: CsMsg) {
        let CsMsg::Request { id, op, idempotency_key } = msg else {
            return; // servers never ask anyone anything, so a reply is a stray duplicate
        };
        let job = Job { from, id, op, idempotency_key };
        if self.queue.is_instant() {
            self.serve(ctx, job);
        } else if let Err(job) = self.queue.offer(ctx, job) {
            ctx.send(job.from, CsMsg::Reply { id: job.id, outcome: Outcome::NotApplied("overloaded".into()) });
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        if kind == timer_tag::SERVICE {
            if let Some(job) = self.queue.complete(ctx, id) {
                self.serve(ctx, job);
            }
        }
    }
}
