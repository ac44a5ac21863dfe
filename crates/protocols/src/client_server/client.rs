//! The client of the client-server family: processes that issue KV operations (or gateway calls),
//! with per-attempt timeouts, retries with capped exponential backoff and jitter, and optional
//! idempotency keys. Closed loop (each process issues its next operation a think time after the
//! last one ended) or open loop (operations arrive as a Poisson process at a fixed rate, whatever
//! the servers do: the load of many independent users, which does not back off when the service
//! slows down, so overload shows as queues and timeouts instead of as a lower request rate).
//!
//! Backoff follows Marc Brooker, "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015)
//! and the AWS Builders' Library article "Timeouts, retries, and backoff with jitter": the n-th
//! retry waits `min(cap, base * 2^n)`, randomised ("full jitter": uniform in [0, that]) so that
//! clients that failed together do not retry together.
//!
//! A retried write is safe only when the server can recognise it: with `idempotency_keys` every
//! attempt of one operation carries the same key and a deduplicating server applies it once. Without
//! keys, an attempt whose reply was lost was applied *and* is applied again: the double-apply the
//! tests show.
//!
//! History: one process per (client, slot); an operation is invoked once, whatever its number of
//! attempts, and ends `ok` (a reply with a value), `fail` (refused, and no earlier attempt could have
//! applied it) or `info` (attempts exhausted with an unknown outcome). As in Jepsen, a process that
//! got `info` never invokes again: the slot continues as a fresh process.
//!
//! This is the family's own client rather than the shared `workload` client: the family needs
//! per-attempt retries with backoff, idempotency keys, shard routing and gateway calls, and shares
//! one message type across servers, proxies and clients.

use super::msg::{timer_tag, CsMsg, IdempotencyKey, KvOp, Outcome};
use super::sharding::ShardMap;
use detsim_core::{Ctx, Node, NodeId, Op, ProcessId, TimerId, Value};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a retry's wait is randomised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Jitter {
    /// Exactly `min(cap, base * 2^n)`: synchronised clients retry in lockstep.
    None,
    /// Uniform in `[0, min(cap, base * 2^n)]` (Brooker's recommendation).
    Full,
    /// Half fixed, half uniform.
    Equal,
}

/// Retry policy of the client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryParams {
    /// Per-attempt timeout; `None` uses the workload's `timeout_ns`.
    pub attempt_timeout_ns: Option<u64>,
    /// Attempts per operation (1: no retries).
    pub max_attempts: u32,
    pub backoff_base_ns: u64,
    pub backoff_cap_ns: u64,
    pub jitter: Jitter,
    /// Send an idempotency key with every write so a deduplicating server applies it once.
    pub idempotency_keys: bool,
}

impl Default for RetryParams {
    fn default() -> Self {
        RetryParams {
            attempt_timeout_ns: None,
            max_attempts: 1,
            backoff_base_ns: 10_000_000,
            backoff_cap_ns: 1_000_000_000,
            jitter: Jitter::Full,
            idempotency_keys: true,
        }
    }
}

impl RetryParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        if self.backoff_base_ns > self.backoff_cap_ns {
            return Err("retry.backoff_base_ns must not exceed retry.backoff_cap_ns".into());
        }
        Ok(())
    }

    /// The wait before retry number `retry` (1 for the first retry).
    pub fn backoff_ns(&self, retry: u32, rng: &mut detsim_core::SimRng) -> u64 {
        let exponential = self.backoff_base_ns.saturating_mul(1u64 << retry.saturating_sub(1).min(40));
        let ceiling = exponential.min(self.backoff_cap_ns);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => rng.random_range(0..=ceiling),
            Jitter::Equal => ceiling / 2 + rng.random_range(0..=ceiling - ceiling / 2),
        }
    }
}

/// Where a client sends each attempt.
#[derive(Clone, Debug)]
pub enum Routing {
    /// Always the same node (a server, a balancer, the client's own cache node).
    Fixed(NodeId),
    /// A node drawn at random for every attempt, so a retry can fail over to another front.
    Random(Vec<NodeId>),
    /// The owner of the key's shard.
    Shards(ShardMap),
}

/// Which operations a client issues.
#[derive(Clone, Debug)]
pub enum OpMix {
    /// Reads and writes of registers `0..keys`; written values are unique per run.
    Register { read_fraction: f64, keys: u64 },
    /// Reads and adds of 1 to counters `0..keys`.
    Counter { read_fraction: f64, keys: u64 },
    /// Gateway calls to dependencies `0..dependencies`, uniformly.
    Calls { dependencies: u32 },
}

/// Everything a client node needs.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Index among the clients (0 for `c1`).
    pub client_index: u32,
    pub routing: Routing,
    pub mix: OpMix,
    /// Closed loop: processes (slots) per client. Open loop: the most operations outstanding at
    /// once (a limit, so that a dead service cannot make a client grow without bound).
    pub concurrency: usize,
    /// Open loop: operations per second (Poisson arrivals); `None`: closed loop.
    pub rate_per_s: Option<f64>,
    pub think_time_ns: u64,
    /// No new operation starts at or after this local time.
    pub stop_at_ns: Option<u64>,
    pub max_ops: Option<u64>,
    pub retry: RetryParams,
    pub attempt_timeout_ns: u64,
    /// Process id of slot 0 of this client; slot `s` starts at `process_base + s`.
    pub process_base: ProcessId,
    /// What a slot adds to its process id after an `info` (the total number of slots in the run).
    pub process_stride: ProcessId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// An attempt is in flight.
    Waiting,
    /// Waiting out a backoff before the next attempt.
    Backoff,
}

#[derive(Clone, Debug)]
struct Slot {
    process: ProcessId,
    phase: Phase,
    op: Option<KvOp>,
    op_seq: u64,
    attempts: u32,
    /// Some attempt may have been applied (timed out or answered "unknown").
    maybe_applied: bool,
    /// The attempt-timeout or wake timer.
    timer: Option<TimerId>,
    current_request: u64,
    request_ids: Vec<u64>,
}

impl Slot {
    fn new(process: ProcessId) -> Self {
        Slot {
            process,
            phase: Phase::Idle,
            op: None,
            op_seq: 0,
            attempts: 0,
            maybe_applied: false,
            timer: None,
            current_request: u64::MAX,
            request_ids: Vec::new(),
        }
    }
}

/// A client node.
#[derive(Clone, Debug)]
pub struct CsClient {
    config: ClientConfig,
    slots: Vec<Slot>,
    /// Request id -> (slot, op_seq).
    requests: BTreeMap<u64, (usize, u64)>,
    next_request: u64,
    next_op_seq: u64,
    ops_started: u64,
    /// Attempts sent (first tries and retries).
    pub attempts_sent: u64,
    pub retries_sent: u64,
    /// Open loop: arrivals dropped because `concurrency` operations were already outstanding.
    pub skipped_arrivals: u64,
    /// How many times this client has started (restarts included); kept in durable storage so that
    /// a restarted client never reuses a process id whose operation is still open.
    generation: u64,
}

const GENERATION_KEY: &str = "client/generation";

impl CsClient {
    /// A client (re)started with `storage` (empty on the first start).
    pub fn new(mut config: ClientConfig, storage: &detsim_core::Storage) -> Self {
        assert!(config.concurrency > 0, "a client has at least one process");
        let generation = storage.get::<u64>(GENERATION_KEY).unwrap_or(0);
        config.process_base += generation << 32;
        // Open loop: slots are created as arrivals need them, up to `concurrency`.
        let initial_slots = if config.rate_per_s.is_some() { 0 } else { config.concurrency };
        let slots = (0..initial_slots).map(|s| Slot::new(config.process_base + s as u64)).collect();
        CsClient {
            config,
            slots,
            requests: BTreeMap::new(),
            next_request: 0,
            next_op_seq: 0,
            ops_started: 0,
            attempts_sent: 0,
            retries_sent: 0,
            skipped_arrivals: 0,
            generation,
        }
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_, CsMsg>) {
        let rate = self.config.rate_per_s.expect("open loop has a rate");
        // Poisson arrivals: exponential gaps with mean 1/rate (inverse transform; 1 - u is in (0, 1]).
        let u: f64 = ctx.rng().random::<f64>();
        let gap_ns = (-(1.0 - u).ln() / rate * 1e9).clamp(1.0, 1e15) as u64;
        ctx.set_timer(Duration::from_nanos(gap_ns), timer_tag::make(timer_tag::CLIENT_ARRIVAL, 0));
    }

    /// Open loop: an operation arrives; it takes an idle slot, or a new one below the limit.
    fn arrival(&mut self, ctx: &mut Ctx<'_, CsMsg>) {
        if !self.may_start(ctx) {
            return;
        }
        let slot = match self.slots.iter().position(|s| s.phase == Phase::Idle) {
            Some(slot) => slot,
            None if self.slots.len() < self.config.concurrency => {
                let process = self.config.process_base + self.slots.len() as u64;
                self.slots.push(Slot::new(process));
                self.slots.len() - 1
            }
            None => {
                self.skipped_arrivals += 1;
                return;
            }
        };
        self.start_op(ctx, slot);
    }

    fn wake_after(&mut self, ctx: &mut Ctx<'_, CsMsg>, slot: usize, after_ns: u64) {
        let timer = ctx.set_timer(Duration::from_nanos(after_ns), timer_tag::make(timer_tag::CLIENT_WAKE, slot as u64));
        self.slots[slot].timer = Some(timer);
    }

    fn draw_op(&mut self, ctx: &mut Ctx<'_, CsMsg>, op_seq: u64) -> KvOp {
        match self.config.mix {
            OpMix::Register { read_fraction, keys } => {
                let key = ctx.rng().random_range(0..keys.max(1));
                if ctx.rng().random_bool(read_fraction.clamp(0.0, 1.0)) {
                    KvOp::Read { key }
                } else {
                    // Unique per run: a read names the write it saw.
                    let value = (self.config.client_index as i64 + 1) * 1_000_000_000 + op_seq as i64;
                    KvOp::Write { key, value }
                }
            }
            OpMix::Counter { read_fraction, keys } => {
                let key = ctx.rng().random_range(0..keys.max(1));
                if ctx.rng().random_bool(read_fraction.clamp(0.0, 1.0)) {
                    KvOp::Read { key }
                } else {
                    KvOp::Add { key, delta: 1 }
                }
            }
            OpMix::Calls { dependencies } => KvOp::Call { dependency: ctx.rng().random_range(0..dependencies.max(1)) },
        }
    }

    fn may_start(&self, ctx: &Ctx<'_, CsMsg>) -> bool {
        let stopped = self.config.stop_at_ns.is_some_and(|stop| ctx.now().as_nanos() >= stop as i64);
        let exhausted = self.config.max_ops.is_some_and(|max| self.ops_started >= max);
        !stopped && !exhausted
    }

    fn start_op(&mut self, ctx: &mut Ctx<'_, CsMsg>, slot: usize) {
        if !self.may_start(ctx) {
            return;
        }
        let op_seq = self.next_op_seq;
        self.next_op_seq += 1;
        self.ops_started += 1;
        let op = self.draw_op(ctx, op_seq);
        let s = &mut self.slots[slot];
        ctx.invoke(s.process, op.history_op());
        s.op = Some(op);
        s.op_seq = op_seq;
        s.attempts = 0;
        s.maybe_applied = false;
        self.send_attempt(ctx, slot);
    }

    fn send_attempt(&mut self, ctx: &mut Ctx<'_, CsMsg>, slot: usize) {
        let id = self.next_request;
        self.next_request += 1;
        let target = match &self.config.routing {
            Routing::Fixed(node) => *node,
            Routing::Random(nodes) => nodes[ctx.rng().random_range(0..nodes.len())],
            Routing::Shards(map) => map.owner(self.slots[slot].op.as_ref().expect("an op in progress").key()),
        };
        let s = &mut self.slots[slot];
        let op = s.op.clone().expect("an op in progress");
        let idempotency_key = (self.config.retry.idempotency_keys && !op.is_read())
            .then_some(IdempotencyKey { client: self.config.client_index, op_seq: s.op_seq });
        s.attempts += 1;
        s.phase = Phase::Waiting;
        s.current_request = id;
        s.request_ids.push(id);
        self.requests.insert(id, (slot, s.op_seq));
        self.attempts_sent += 1;
        if s.attempts > 1 {
            self.retries_sent += 1;
        }
        ctx.send(target, CsMsg::Request { id, op, idempotency_key });
        let timeout = Duration::from_nanos(self.config.attempt_timeout_ns);
        let timer = ctx.set_timer(timeout, timer_tag::make(timer_tag::ATTEMPT_TIMEOUT, id));
        self.slots[slot].timer = Some(timer);
    }

    /// The current attempt ended without a definite answer: retry after a backoff, or give up.
    fn attempt_unknown(&mut self, ctx: &mut Ctx<'_, CsMsg>, slot: usize, reason: &str) {
        let s = &mut self.slots[slot];
        s.maybe_applied = true;
        if s.attempts < self.config.retry.max_attempts {
            let retry = s.attempts;
            s.phase = Phase::Backoff;
            let wait_ns = self.config.retry.backoff_ns(retry, ctx.rng());
            self.wake_after(ctx, slot, wait_ns);
        } else {
            self.finish(ctx, slot, Err(reason.to_string()));
        }
    }

    /// Ends the slot's operation: `Ok(result)` or `Err(reason)` (fail or info, by what may have happened).
    fn finish(&mut self, ctx: &mut Ctx<'_, CsMsg>, slot: usize, result: Result<Option<i64>, String>) {
        let s = &mut self.slots[slot];
        if let Some(timer) = s.timer.take() {
            ctx.cancel_timer(timer);
        }
        for id in s.request_ids.drain(..) {
            self.requests.remove(&id);
        }
        let op = s.op.take().expect("finishing an op in progress");
        let mut history_op: Op = op.history_op();
        match result {
            Ok(value) => {
                if op.is_read() {
                    history_op.value = value.map_or(Value::Nil, Value::Int);
                }
                ctx.ok(s.process, history_op);
            }
            // A read or call changes nothing, so its failure is certain whatever happened on the way.
            Err(reason) if !s.maybe_applied || !op.has_effect() => {
                ctx.fail(s.process, history_op, &reason);
            }
            Err(reason) => {
                ctx.info(s.process, history_op, &reason);
                s.process += self.config.process_stride;
            }
        }
        s.phase = Phase::Idle;
        if self.config.rate_per_s.is_none() {
            let think = self.config.think_time_ns;
            self.wake_after(ctx, slot, think);
        }
    }
}

impl Node for CsClient {
    type Msg = CsMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, CsMsg>) {
        ctx.storage().put(GENERATION_KEY, &(self.generation + 1));
        if self.config.rate_per_s.is_some() {
            self.schedule_arrival(ctx);
            return;
        }
        for slot in 0..self.slots.len() {
            // Staggered starts, so that slots do not move in lockstep.
            let offset = ctx.rng().random_range(0..=self.config.think_time_ns.max(1_000_000));
            self.wake_after(ctx, slot, offset);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, CsMsg>, _from: NodeId, msg: CsMsg) {
        let CsMsg::Reply { id, outcome } = msg else {
            return;
        };
        let Some(&(slot, op_seq)) = self.requests.get(&id) else {
            return; // a reply to an operation already finished
        };
        let s = &self.slots[slot];
        if s.op_seq != op_seq || s.phase == Phase::Idle {
            return;
        }
        match outcome {
            // Any attempt's answer is the operation's answer, even an earlier attempt's.
            Outcome::Value(value) => self.finish(ctx, slot, Ok(value)),
            Outcome::NotApplied(reason) => self.finish(ctx, slot, Err(reason)),
            Outcome::Unknown(reason) => {
                if id == s.current_request && s.phase == Phase::Waiting {
                    if let Some(timer) = self.slots[slot].timer.take() {
                        ctx.cancel_timer(timer);
                    }
                    self.attempt_unknown(ctx, slot, &reason);
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CsMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::ATTEMPT_TIMEOUT => {
                let Some(&(slot, op_seq)) = self.requests.get(&id) else {
                    return;
                };
                let s = &mut self.slots[slot];
                if s.op_seq == op_seq && s.phase == Phase::Waiting && s.current_request == id {
                    s.timer = None;
                    self.attempt_unknown(ctx, slot, "timed-out");
                }
            }
            timer_tag::CLIENT_ARRIVAL => {
                self.arrival(ctx);
                self.schedule_arrival(ctx);
            }
            timer_tag::CLIENT_WAKE => {
                let slot = id as usize;
                self.slots[slot].timer = None;
                match self.slots[slot].phase {
                    Phase::Idle => self.start_op(ctx, slot),
                    Phase::Backoff => self.send_attempt(ctx, slot),
                    Phase::Waiting => unreachable!("a waiting slot has no wake timer"),
                }
            }
            _ => {}
        }
    }
}
