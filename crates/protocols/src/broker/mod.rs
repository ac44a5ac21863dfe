//! A message broker (queue) with at-least-once delivery: producers publish to a durable, bounded
//! queue; consumers fetch, process into a sink database and acknowledge; unacknowledged messages
//! are redelivered after a visibility timeout; consumers are made idempotent with the message id.
//!
//! The design is Amazon SQS's (visibility timeout, long polling, delete on ack) and the failure
//! analysis is the standard one (Kleppmann, *Designing Data-Intensive Applications*, ch. 11
//! "Acknowledgments and redelivery"; Hohpe and Woolf, *Enterprise Integration Patterns*,
//! "Guaranteed Delivery" and "Idempotent Receiver"): a broker that redelivers until it hears an
//! ack never loses a stored message, but it cannot tell "processed, ack lost" from "never
//! processed", so it delivers some messages twice, and only an idempotent consumer turns
//! at-least-once delivery into exactly-once *effects*.
//!
//! Node layout of the `broker` entry (see [`build`]): `n1` the broker, `n2..nN` consumers, `c1..cM`
//! producers, then `sink` (the database consumers update) and `reader` (reads the sink).
//!
//! What the history shows: producers record each publish as a counter `add`, the reader records
//! reads of the sink's counters, and after the producers stop and the queue drains,
//! `detsim_check::check_eventual` with the counter model checks both halves of the guarantee: no
//! acknowledged message is lost (`lost-write`), and no message is applied twice
//! (`failed-write-visible`, a count above the acknowledged plus unknown adds).
//!
//! Load spikes: producers are open loop with an optional [`clients::Spike`]; the queue buffers the
//! excess up to `broker.max_queue_len` and refuses publishes beyond it (the producer records a
//! certain failure, `queue-full`); consumers drain the backlog at their own pace.
//!
//! Deliberate bug switches, each caught by a test in `tests/broker.rs`:
//! - `consumer.idempotent = false`: redelivered messages are applied twice;
//! - `consumer.bug_ack_on_receipt`: at-most-once delivery, a crashed consumer loses its batch;
//! - `broker.bug_ack_before_persist`: a crashed broker loses acknowledged messages.

pub mod build;
pub mod clients;
pub mod consumer;
pub mod msg;
pub mod queue;
pub mod sink;

pub use build::{build_broker, BrokerSetup};
pub use msg::BrokerMsg;

use crate::spec::ProtocolEntry;
use detsim_core::{Ctx, Node, NodeId, TimerId};

/// Any node of the broker family.
#[derive(Clone, Debug)]
pub enum BrokerNode {
    Broker(queue::QueueNode),
    Consumer(consumer::Consumer),
    Producer(clients::Producer),
    Sink(sink::Sink),
    Reader(clients::Reader),
}

macro_rules! each {
    ($self:ident, $node:ident => $body:expr) => {
        match $self {
            BrokerNode::Broker($node) => $body,
            BrokerNode::Consumer($node) => $body,
            BrokerNode::Producer($node) => $body,
            BrokerNode::Sink($node) => $body,
            BrokerNode::Reader($node) => $body,
        }
    };
}

impl Node for BrokerNode {
    type Msg = BrokerMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, BrokerMsg>) {
        each!(self, node => node.on_start(ctx))
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, from: NodeId, msg: BrokerMsg) {
        each!(self, node => node.on_message(ctx, from, msg))
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, BrokerMsg>, timer: TimerId, tag: u64) {
        each!(self, node => node.on_timer(ctx, timer, tag))
    }
}

impl BrokerNode {
    pub fn as_broker(&self) -> Option<&queue::QueueNode> {
        match self {
            BrokerNode::Broker(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_consumer(&self) -> Option<&consumer::Consumer> {
        match self {
            BrokerNode::Consumer(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_producer(&self) -> Option<&clients::Producer> {
        match self {
            BrokerNode::Producer(p) => Some(p),
            _ => None,
        }
    }
    pub fn as_sink(&self) -> Option<&sink::Sink> {
        match self {
            BrokerNode::Sink(s) => Some(s),
            _ => None,
        }
    }
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    build::entries()
}
