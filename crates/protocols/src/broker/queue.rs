//! The broker: a durable, bounded message queue with at-least-once delivery, acknowledgements and
//! redelivery after a visibility timeout (the model of Amazon SQS; RabbitMQ's unacked-message
//! requeue is the same idea with the timeout replaced by the channel closing).
//!
//! - **Publish**: a message is written to durable storage *before* the producer is told it is
//!   stored; a publish the broker refuses or never answers may not have been stored.
//! - **Fetch** (pull, with long polling): a consumer asks for up to `max` messages. The broker
//!   hands out the oldest visible ones and makes each invisible for `visibility_timeout_ns`. When
//!   none is visible it parks the fetch and answers as soon as one is, or empty after
//!   `long_poll_ns`, so idle consumers neither spin nor wait a poll interval for new work.
//! - **Ack**: the consumer has processed the message; the broker deletes it.
//! - **Redelivery**: a message not acknowledged within its visibility timeout becomes visible
//!   again, to be fetched by any consumer. A crashed consumer, a lost message, a lost ack or a
//!   consumer slower than the timeout all end this way, which is why delivery is *at least* once:
//!   the same message can be processed twice, and consumers must be idempotent.
//! - **Restart**: the queue is rebuilt from storage with every message visible (what was in flight
//!   is redelivered: the broker cannot know whether those were processed).
//! - **Bound**: the queue holds at most `max_queue_len` messages (visible and in flight). At the
//!   bound a publish is refused with [`PublishResult::QueueFull`]: nothing is stored and the
//!   producer records a certain failure. This is backpressure: a load spike is buffered up to the
//!   bound, beyond it producers must slow down or shed load, and the broker never drops a message it
//!   has acknowledged to make room.
//!
//! Deliberate bug `bug_ack_before_persist`: publishes are acknowledged at once and written to
//! storage by a periodic flush (a group commit that does not wait for the disk), so a broker crash
//! loses every acknowledged message of the last flush interval.

use super::msg::{timer_tag, BrokerMsg, Delivery, MessageId, Payload, PublishResult};
use detsim_core::{Ctx, Node, NodeId, Storage, TimerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Settings of the broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueParams {
    /// Messages held at most (visible and in flight); publishes beyond are refused.
    pub max_queue_len: usize,
    /// How long a delivered message stays invisible waiting for its ack.
    pub visibility_timeout_ns: u64,
    /// How long a fetch that found nothing waits for a message before an empty answer.
    pub long_poll_ns: u64,
    /// Deliberate bug: acknowledge publishes before they are durable (flushed every
    /// `flush_interval_ns`).
    pub bug_ack_before_persist: bool,
    pub flush_interval_ns: u64,
}

impl Default for QueueParams {
    fn default() -> Self {
        QueueParams {
            max_queue_len: 10_000,
            visibility_timeout_ns: 300_000_000,
            long_poll_ns: 100_000_000,
            bug_ack_before_persist: false,
            flush_interval_ns: 100_000_000,
        }
    }
}

impl QueueParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_queue_len == 0 {
            return Err("broker.max_queue_len must be at least 1".into());
        }
        if self.visibility_timeout_ns == 0 || self.long_poll_ns == 0 || self.flush_interval_ns == 0 {
            return Err("broker timeouts and intervals must be positive".into());
        }
        Ok(())
    }
}

/// Counters of the broker, for tests and figures (volatile: a restart zeroes them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub stored: u64,
    pub refused_full: u64,
    pub deliveries: u64,
    /// Deliveries beyond a message's first.
    pub redeliveries: u64,
    pub acked: u64,
    /// Most messages held at once.
    pub max_depth: usize,
}

#[derive(Clone, Debug)]
struct Held {
    payload: Payload,
    /// Deliveries so far (since the last restart).
    attempts: u32,
    /// `Some` while delivered and unacknowledged: the consumer and the visibility timer.
    in_flight: Option<(NodeId, TimerId)>,
}

#[derive(Clone, Debug)]
struct ParkedFetch {
    request: u64,
    max: u32,
    timer: TimerId,
}

const NEXT_ID_KEY: &str = "broker/next_id";
const MESSAGE_PREFIX: &str = "broker/msg/";

fn message_key(id: MessageId) -> String {
    // Zero-padded so storage order is id order.
    format!("{MESSAGE_PREFIX}{id:020}")
}

/// The broker node.
#[derive(Clone, Debug)]
pub struct QueueNode {
    params: QueueParams,
    next_id: MessageId,
    held: BTreeMap<MessageId, Held>,
    /// Visible messages, oldest (lowest id) first.
    visible: BTreeSet<MessageId>,
    /// One parked fetch per consumer at most.
    parked: BTreeMap<NodeId, ParkedFetch>,
    /// Bug switch: acknowledged messages not yet written to storage.
    unflushed: BTreeSet<MessageId>,
    /// Whether the last publish was refused (to annotate the edges of a full period only).
    refusing: bool,
    pub stats: QueueStats,
}

impl QueueNode {
    /// The broker, rebuilt from `storage` (empty on first start): every stored message is visible.
    pub fn new(params: QueueParams, storage: &Storage) -> Self {
        let mut held = BTreeMap::new();
        let mut visible = BTreeSet::new();
        for name in storage.keys_with_prefix(MESSAGE_PREFIX) {
            let id: MessageId = name[MESSAGE_PREFIX.len()..].parse().expect("message keys are ids");
            let payload: Payload = storage.get(name).expect("listed key exists");
            held.insert(id, Held { payload, attempts: 0, in_flight: None });
            visible.insert(id);
        }
        let next_id = storage.get(NEXT_ID_KEY).unwrap_or(0);
        assert!(held.keys().all(|&id| id < next_id), "stored ids were handed out before");
        let depth = held.len();
        QueueNode {
            params,
            next_id,
            held,
            visible,
            parked: BTreeMap::new(),
            unflushed: BTreeSet::new(),
            refusing: false,
            stats: QueueStats { max_depth: depth, ..QueueStats::default() },
        }
    }

    /// Messages held (visible and in flight).
    pub fn depth(&self) -> usize {
        self.held.len()
    }

    /// Messages delivered and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.held.len() - self.visible.len()
    }

    /// Cheap invariants, checked after every event (the per-message ones are asserted where
    /// messages change state).
    fn check_invariants(&self) {
        assert!(self.held.len() <= self.params.max_queue_len, "the queue never exceeds its bound");
        assert!(self.visible.len() <= self.held.len(), "visible messages are held");
        assert!(self.parked.is_empty() || self.visible.is_empty(), "no fetch waits while a message is visible");
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, from: NodeId, request: u64, payload: Payload) {
        if self.held.len() >= self.params.max_queue_len {
            self.stats.refused_full += 1;
            if !self.refusing {
                ctx.annotate(format!("queue full ({} messages): refusing publishes", self.held.len()));
            }
            self.refusing = true;
            ctx.send(from, BrokerMsg::PublishReply { request, result: PublishResult::QueueFull });
            return;
        }
        if self.refusing {
            ctx.annotate(format!("queue below its bound again ({} messages)", self.held.len()));
        }
        self.refusing = false;
        let id = self.next_id;
        self.next_id += 1;
        // The id counter is always durable, so that ids are never reused across restarts.
        ctx.storage().put(NEXT_ID_KEY, &self.next_id);
        if self.params.bug_ack_before_persist {
            self.unflushed.insert(id);
        } else {
            // Durable before the producer hears "stored": an acknowledged message survives a crash.
            ctx.storage().put(&message_key(id), &payload);
        }
        self.held.insert(id, Held { payload, attempts: 0, in_flight: None });
        self.visible.insert(id);
        self.stats.stored += 1;
        self.stats.max_depth = self.stats.max_depth.max(self.held.len());
        ctx.send(from, BrokerMsg::PublishReply { request, result: PublishResult::Stored(id) });
        self.serve_parked(ctx);
    }

    /// Takes up to `max` visible messages for `consumer`, oldest first.
    fn take(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, consumer: NodeId, max: u32) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        while deliveries.len() < max as usize {
            let Some(id) = self.visible.pop_first() else { break };
            let timeout = Duration::from_nanos(self.params.visibility_timeout_ns);
            let timer = ctx.set_timer(timeout, timer_tag::make(timer_tag::VISIBILITY, id));
            let held = self.held.get_mut(&id).expect("visible messages are held");
            assert!(held.in_flight.is_none(), "a visible message is not in flight");
            held.attempts += 1;
            held.in_flight = Some((consumer, timer));
            self.stats.deliveries += 1;
            if held.attempts > 1 {
                self.stats.redeliveries += 1;
            }
            deliveries.push(Delivery { id, payload: held.payload, attempt: held.attempts });
        }
        deliveries
    }

    fn fetch(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, consumer: NodeId, request: u64, max: u32) {
        if let Some(old) = self.parked.remove(&consumer) {
            // A consumer has one fetch outstanding; a new one means it gave up on the old.
            ctx.cancel_timer(old.timer);
        }
        let deliveries = self.take(ctx, consumer, max.max(1));
        if deliveries.is_empty() {
            let wait = Duration::from_nanos(self.params.long_poll_ns);
            let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::LONG_POLL, u64::from(consumer.0)));
            self.parked.insert(consumer, ParkedFetch { request, max, timer });
        } else {
            ctx.send(consumer, BrokerMsg::Messages { request, deliveries });
        }
    }

    /// Answers parked fetches while messages are visible (consumers in id order).
    fn serve_parked(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        while !self.visible.is_empty() {
            let Some((consumer, fetch)) = self.parked.pop_first() else { break };
            ctx.cancel_timer(fetch.timer);
            let deliveries = self.take(ctx, consumer, fetch.max.max(1));
            ctx.send(consumer, BrokerMsg::Messages { request: fetch.request, deliveries });
        }
    }

    fn ack(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, id: MessageId) {
        let Some(held) = self.held.remove(&id) else {
            return; // acknowledged already (a duplicate ack, or two consumers processed it)
        };
        if let Some((_, timer)) = held.in_flight {
            ctx.cancel_timer(timer);
        }
        // An ack may come for a message that timed out and is visible again: it is done all the same.
        self.visible.remove(&id);
        if !self.unflushed.remove(&id) {
            ctx.storage().remove(&message_key(id));
        }
        self.stats.acked += 1;
    }

    fn visibility_timeout(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, timer: TimerId, id: MessageId) {
        let Some(held) = self.held.get_mut(&id) else { return };
        match held.in_flight {
            Some((consumer, current)) if current == timer => {
                held.in_flight = None;
                ctx.annotate(format!(
                    "message {id}: no ack from {consumer} within the visibility timeout (delivery {}), redelivering",
                    held.attempts
                ));
                self.visible.insert(id);
                self.serve_parked(ctx);
            }
            _ => {} // the timer of an earlier delivery
        }
    }

    fn flush(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        for id in std::mem::take(&mut self.unflushed) {
            let payload = self.held.get(&id).expect("unflushed messages are held").payload;
            ctx.storage().put(&message_key(id), &payload);
        }
        ctx.set_timer(Duration::from_nanos(self.params.flush_interval_ns), timer_tag::make(timer_tag::FLUSH, 0));
    }
}

impl Node for QueueNode {
    type Msg = BrokerMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        if !self.held.is_empty() {
            ctx.annotate(format!("broker restarted with {} stored messages, all visible again", self.held.len()));
        }
        if self.params.bug_ack_before_persist {
            ctx.set_timer(Duration::from_nanos(self.params.flush_interval_ns), timer_tag::make(timer_tag::FLUSH, 0));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, from: NodeId, msg: BrokerMsg) {
        match msg {
            BrokerMsg::Publish { request, payload } => self.publish(ctx, from, request, payload),
            BrokerMsg::Fetch { request, max } => self.fetch(ctx, from, request, max),
            BrokerMsg::Ack { id } => self.ack(ctx, id),
            _ => {} // not for a broker
        }
        self.check_invariants();
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::VISIBILITY => self.visibility_timeout(ctx, timer, id),
            timer_tag::LONG_POLL => {
                let consumer = NodeId(u32::try_from(id).expect("node ids fit u32"));
                if self.parked.get(&consumer).is_some_and(|f| f.timer == timer) {
                    let fetch = self.parked.remove(&consumer).expect("just found");
                    ctx.send(consumer, BrokerMsg::Messages { request: fetch.request, deliveries: Vec::new() });
                }
            }
            timer_tag::FLUSH => self.flush(ctx),
            _ => panic!("unknown broker timer tag {tag:#x}"),
        }
        self.check_invariants();
    }
}
