//! A consumer: fetches batches from the broker, processes each message (a service time, then an
//! update of the sink) and acknowledges it *after* the sink confirmed the update, so that a crash
//! anywhere before the ack leads to a redelivery rather than a lost message.
//!
//! Because redelivery can hand a processed message out again, the consumer is made idempotent
//! the way Hohpe and Woolf's *Enterprise Integration Patterns* (2003) call an "Idempotent
//! Receiver": every update carries the message id, and the sink applies each id at most once, in
//! the same step as the update itself (a dedup table beside the data, not in the consumer's memory,
//! which a crash would wipe and which another consumer, handed the redelivery, would not share).
//!
//! Deliberate bugs, each caught by a test:
//! - `idempotent = false`: updates carry no id, so every redelivery (and every retried update
//!   whose confirmation was lost) is applied again;
//! - `bug_ack_on_receipt`: the consumer acknowledges a batch as soon as it arrives ("auto-ack"),
//!   which makes delivery *at most* once: a consumer that crashes mid-batch loses the rest.

use super::msg::{timer_tag, BrokerMsg, Delivery};
use detsim_core::{Ctx, Node, NodeId, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// Settings of a consumer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerParams {
    /// Messages asked for per fetch.
    pub batch: u32,
    /// Mean processing time of one message (exponentially distributed).
    pub mean_processing_ns: u64,
    /// Send the message id with each update so the sink applies it at most once.
    pub idempotent: bool,
    /// Deliberate bug: acknowledge a batch on receipt instead of after processing.
    pub bug_ack_on_receipt: bool,
    /// How long to wait for the sink before resending an update.
    pub apply_timeout_ns: u64,
    /// Sends of one update before the consumer gives the message up (unacknowledged, so the broker
    /// redelivers it).
    pub max_apply_attempts: u32,
    /// How long to wait for a fetch's answer (longer than the broker's long poll).
    pub fetch_timeout_ns: u64,
}

impl Default for ConsumerParams {
    fn default() -> Self {
        ConsumerParams {
            batch: 8,
            mean_processing_ns: 2_000_000,
            idempotent: true,
            bug_ack_on_receipt: false,
            apply_timeout_ns: 50_000_000,
            max_apply_attempts: 5,
            fetch_timeout_ns: 400_000_000,
        }
    }
}

impl ConsumerParams {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 || self.max_apply_attempts == 0 {
            return Err("consumer.batch and consumer.max_apply_attempts must be at least 1".into());
        }
        if self.apply_timeout_ns == 0 || self.fetch_timeout_ns == 0 {
            return Err("consumer timeouts must be positive".into());
        }
        Ok(())
    }
}

/// Counters of a consumer (volatile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub received: u64,
    /// Messages whose update the sink confirmed.
    pub processed: u64,
    /// Updates sent again after no confirmation.
    pub apply_retries: u64,
    /// Messages given up after `max_apply_attempts` (left to redelivery).
    pub abandoned: u64,
}

#[derive(Clone, Debug)]
enum Phase {
    /// A fetch is outstanding.
    Fetching { request: u64, timer: TimerId },
    /// Working through a batch; `current` is being processed or applied.
    Working { current: Delivery, step: Step },
}

#[derive(Clone, Debug)]
enum Step {
    /// The processing (service) time is running.
    Processing,
    /// The update is at the sink.
    Applying { request: u64, attempts: u32, timer: TimerId },
}

/// A consumer node.
#[derive(Clone, Debug)]
pub struct Consumer {
    params: ConsumerParams,
    broker: NodeId,
    sink: NodeId,
    /// `None` before `on_start`.
    phase: Option<Phase>,
    batch: VecDeque<Delivery>,
    next_request: u64,
    pub stats: ConsumerStats,
}

impl Consumer {
    pub fn new(params: ConsumerParams, broker: NodeId, sink: NodeId) -> Self {
        Consumer {
            params,
            broker,
            sink,
            phase: None,
            batch: VecDeque::new(),
            next_request: 0,
            stats: ConsumerStats::default(),
        }
    }

    fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    fn fetch(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        let request = self.request_id();
        ctx.send(self.broker, BrokerMsg::Fetch { request, max: self.params.batch });
        let wait = Duration::from_nanos(self.params.fetch_timeout_ns);
        let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::FETCH_TIMEOUT, request));
        self.phase = Some(Phase::Fetching { request, timer });
    }

    /// Starts on the next message of the batch, or fetches when the batch is done.
    fn next_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        let Some(current) = self.batch.pop_front() else {
            return self.fetch(ctx);
        };
        let mean_ns = self.params.mean_processing_ns as f64;
        // Inverse-transform sampling of an exponential service time; 1 - u is in (0, 1].
        let u: f64 = ctx.rng().random::<f64>();
        let processing_ns = (-mean_ns * (1.0 - u).ln()).round() as u64;
        ctx.set_timer(Duration::from_nanos(processing_ns), timer_tag::make(timer_tag::PROCESSED, current.id));
        self.phase = Some(Phase::Working { current, step: Step::Processing });
    }

    fn send_apply(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, current: Delivery, attempts: u32) {
        let request = self.request_id();
        let dedup = self.params.idempotent.then_some(current.id);
        ctx.send(self.sink, BrokerMsg::Apply { request, payload: current.payload, dedup });
        let wait = Duration::from_nanos(self.params.apply_timeout_ns);
        let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::APPLY_TIMEOUT, request));
        self.phase = Some(Phase::Working { current, step: Step::Applying { request, attempts: attempts + 1, timer } });
    }
}

impl Node for Consumer {
    type Msg = BrokerMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        self.fetch(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, _from: NodeId, msg: BrokerMsg) {
        match msg {
            BrokerMsg::Messages { request, deliveries } => {
                let Some(Phase::Fetching { request: expected, timer }) = self.phase else { return };
                if request != expected {
                    return; // the answer to a fetch we gave up on; the broker will redeliver those
                }
                ctx.cancel_timer(timer);
                self.stats.received += deliveries.len() as u64;
                if self.params.bug_ack_on_receipt {
                    for delivery in &deliveries {
                        ctx.send(self.broker, BrokerMsg::Ack { id: delivery.id });
                    }
                }
                self.batch.extend(deliveries);
                self.next_message(ctx);
            }
            BrokerMsg::Applied { request } => {
                let Some(Phase::Working { current, step: Step::Applying { request: expected, timer, .. } }) =
                    self.phase.clone()
                else {
                    return;
                };
                if request != expected {
                    return; // a late confirmation of an earlier send of this update
                }
                ctx.cancel_timer(timer);
                self.stats.processed += 1;
                if !self.params.bug_ack_on_receipt {
                    // Only now: had we crashed before this point, the broker would redeliver.
                    ctx.send(self.broker, BrokerMsg::Ack { id: current.id });
                }
                self.next_message(ctx);
            }
            _ => {} // not for a consumer
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match (kind, self.phase.clone()) {
            (timer_tag::FETCH_TIMEOUT, Some(Phase::Fetching { request, .. })) if request == id => self.fetch(ctx),
            (timer_tag::PROCESSED, Some(Phase::Working { current, step: Step::Processing })) if current.id == id => {
                self.send_apply(ctx, current, 0);
            }
            (
                timer_tag::APPLY_TIMEOUT,
                Some(Phase::Working { current, step: Step::Applying { request, attempts, .. } }),
            ) if request == id => {
                if attempts < self.params.max_apply_attempts {
                    self.stats.apply_retries += 1;
                    self.send_apply(ctx, current, attempts);
                } else {
                    // Leave it unacknowledged: the broker redelivers it after its visibility timeout.
                    self.stats.abandoned += 1;
                    self.next_message(ctx);
                }
            }
            _ => {} // a timer of a step already over
        }
    }
}
