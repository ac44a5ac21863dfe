//! The client side of the broker family, which writes the history the checkers judge:
//!
//! - a **producer** publishes messages "add 1 to counter k" as an open-loop Poisson stream (so a
//!   load spike is a real spike: producers do not slow down when the broker does). Its history
//!   records each publish as an `add`: `ok` when the broker says it stored the message, `fail` when
//!   the broker refused it (queue full: certainly not stored), `info` when no answer came (maybe
//!   stored). Every publish is its own history process, so an `info` retires nothing.
//! - a **reader** reads the sink's counters in turn (history `read`), closed loop.
//!
//! Together they make a counter history: once the producers stop and the queue drains, the final
//! reads must lie between the acknowledged adds (at-least-once: nothing stored is lost) and the
//! acknowledged plus unknown ones (idempotent consumers: nothing is applied twice), which is what
//! `detsim_check::check_eventual` verifies for a counter.

use super::msg::{timer_tag, BrokerMsg, Payload, PublishResult};
use detsim_core::{Ctx, Node, NodeId, Op, ProcessId, Storage, TimerId, Value};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A window of the producers' local time during which they publish `factor` times faster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    pub from_ns: u64,
    pub until_ns: u64,
    pub factor: f64,
}

/// Everything a producer node needs.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// Index among the producers (0 for `c1`).
    pub index: u32,
    /// Producers in the run (process ids are `index + (producers + 1) * n`; the reader uses the
    /// residue `producers`).
    pub producers: u32,
    pub broker: NodeId,
    pub keys: u64,
    pub rate_per_s: f64,
    pub spike: Option<Spike>,
    pub publish_timeout_ns: u64,
    /// No publish starts at or after this local time.
    pub stop_at_ns: Option<u64>,
    pub max_ops: Option<u64>,
}

/// Publishes outstanding at once per producer (a limit; arrivals beyond it are skipped).
pub const MAX_OUTSTANDING_PUBLISHES: usize = 4_096;

#[derive(Clone, Debug)]
struct Outstanding {
    process: ProcessId,
    op: Op,
    timer: TimerId,
}

const EPOCH_KEY: &str = "producer/epoch";

/// A producer node.
#[derive(Clone, Debug)]
pub struct Producer {
    config: ProducerConfig,
    epoch: u64,
    started: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    pub ok: u64,
    pub refused: u64,
    pub unknown: u64,
    pub skipped: u64,
}

impl Producer {
    pub fn new(config: ProducerConfig, storage: &Storage) -> Self {
        assert!(config.rate_per_s > 0.0 && config.rate_per_s.is_finite(), "validated: a positive rate");
        let epoch = storage.get(EPOCH_KEY).unwrap_or(0);
        Producer { config, epoch, started: 0, outstanding: BTreeMap::new(), ok: 0, refused: 0, unknown: 0, skipped: 0 }
    }

    fn rate_at(&self, now_ns: i64) -> f64 {
        match &self.config.spike {
            Some(spike) if (spike.from_ns as i64..spike.until_ns as i64).contains(&now_ns) => {
                self.config.rate_per_s * spike.factor
            }
            _ => self.config.rate_per_s,
        }
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        // Poisson arrivals at the rate in force now (a spike that starts inside a gap is felt from
        // the next arrival on: gaps are a few milliseconds, spikes hundreds).
        let rate = self.rate_at(ctx.now().as_nanos());
        let u: f64 = ctx.rng().random::<f64>();
        let gap_ns = (-(1.0 - u).ln() / rate * 1e9).clamp(1.0, 1e15) as u64;
        ctx.set_timer(Duration::from_nanos(gap_ns), timer_tag::make(timer_tag::ARRIVAL, 0));
    }

    fn may_start(&self, ctx: &Ctx<'_, BrokerMsg>) -> bool {
        let stopped = self.config.stop_at_ns.is_some_and(|stop| ctx.now().as_nanos() >= stop as i64);
        let exhausted = self.config.max_ops.is_some_and(|max| self.started >= max);
        !stopped && !exhausted
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        if self.outstanding.len() >= MAX_OUTSTANDING_PUBLISHES {
            self.skipped += 1;
            return;
        }
        let n = (self.epoch << 32) + self.started;
        self.started += 1;
        let process = u64::from(self.config.index) + (u64::from(self.config.producers) + 1) * n;
        let key = ctx.rng().random_range(0..self.config.keys.max(1));
        let op = Op::new("add", Some(Value::Int(key as i64)), Value::Int(1));
        ctx.invoke(process, op.clone());
        let request = n;
        ctx.send(self.config.broker, BrokerMsg::Publish { request, payload: Payload { key, delta: 1 } });
        let wait = Duration::from_nanos(self.config.publish_timeout_ns);
        let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::PUBLISH_TIMEOUT, request));
        self.outstanding.insert(request, Outstanding { process, op, timer });
    }
}

impl Node for Producer {
    type Msg = BrokerMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        ctx.storage().put(EPOCH_KEY, &(self.epoch + 1));
        self.schedule_arrival(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, _from: NodeId, msg: BrokerMsg) {
        let BrokerMsg::PublishReply { request, result } = msg else { return };
        let Some(done) = self.outstanding.remove(&request) else {
            return; // answered after we gave up on it (its outcome stays unknown in the history)
        };
        ctx.cancel_timer(done.timer);
        match result {
            PublishResult::Stored(_) => {
                self.ok += 1;
                ctx.ok(done.process, done.op);
            }
            PublishResult::QueueFull => {
                self.refused += 1;
                ctx.fail(done.process, done.op, "queue-full");
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::ARRIVAL => {
                if self.may_start(ctx) {
                    self.publish(ctx);
                }
                self.schedule_arrival(ctx);
            }
            timer_tag::PUBLISH_TIMEOUT => {
                if let Some(done) = self.outstanding.remove(&id) {
                    self.unknown += 1;
                    ctx.info(done.process, done.op, "timed-out");
                }
            }
            _ => panic!("unknown producer timer tag {tag:#x}"),
        }
    }
}

/// Everything the reader needs.
#[derive(Clone, Debug)]
pub struct ReaderConfig {
    pub producers: u32,
    pub sink: NodeId,
    pub keys: u64,
    pub read_interval_ns: u64,
    pub timeout_ns: u64,
}

/// The reader node: reads counter 0, 1, ... in turn, one at a time.
#[derive(Clone, Debug)]
pub struct Reader {
    config: ReaderConfig,
    process: ProcessId,
    next_key: u64,
    request: u64,
    /// The read in flight: (request, key, timeout timer).
    in_flight: Option<(u64, u64, TimerId)>,
    pub reads_ok: u64,
}

const READER_EPOCH_KEY: &str = "reader/epoch";

impl Reader {
    pub fn new(config: ReaderConfig, storage: &Storage) -> Self {
        // A fresh process after each restart: the read in flight at the crash never completes.
        let epoch: u64 = storage.get(READER_EPOCH_KEY).unwrap_or(0);
        // Residue `producers` modulo `producers + 1`: a class no producer process falls in.
        let process = u64::from(config.producers) + (u64::from(config.producers) + 1) * epoch;
        Reader { config, process, next_key: 0, request: 0, in_flight: None, reads_ok: 0 }
    }

    fn read(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        let key = self.next_key;
        self.next_key = (self.next_key + 1) % self.config.keys.max(1);
        self.request += 1;
        ctx.invoke(self.process, Op::new("read", Some(Value::Int(key as i64)), Value::Nil));
        ctx.send(self.config.sink, BrokerMsg::Read { request: self.request, key });
        let wait = Duration::from_nanos(self.config.timeout_ns);
        let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::READ_TIMEOUT, self.request));
        self.in_flight = Some((self.request, key, timer));
    }

    fn after(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        self.in_flight = None;
        ctx.set_timer(Duration::from_nanos(self.config.read_interval_ns), timer_tag::make(timer_tag::NEXT_READ, 0));
    }
}

impl Node for Reader {
    type Msg = BrokerMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        let epoch: u64 = ctx.storage().get(READER_EPOCH_KEY).unwrap_or(0);
        ctx.storage().put(READER_EPOCH_KEY, &(epoch + 1));
        self.after(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, _from: NodeId, msg: BrokerMsg) {
        let BrokerMsg::ReadReply { request, value } = msg else { return };
        let Some((expected, key, timer)) = self.in_flight else { return };
        if request != expected {
            return;
        }
        ctx.cancel_timer(timer);
        self.reads_ok += 1;
        ctx.ok(self.process, Op::new("read", Some(Value::Int(key as i64)), Value::Int(value)));
        self.after(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::NEXT_READ => self.read(ctx),
            timer_tag::READ_TIMEOUT => {
                if let Some((request, key, _)) = self.in_flight {
                    if request == id {
                        // A read changes nothing, so a read without an answer certainly did nothing.
                        ctx.fail(self.process, Op::new("read", Some(Value::Int(key as i64)), Value::Nil), "timed-out");
                        self.after(ctx);
                    }
                }
            }
            _ => panic!("unknown reader timer tag {tag:#x}"),
        }
    }
}
