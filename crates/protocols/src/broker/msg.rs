//! The wire protocol of the broker family: producers publish to the broker, consumers fetch,
//! process into the sink and acknowledge, a reader reads the sink.

use detsim_core::Message;

/// A message id, assigned by the broker (unique per run, also across broker restarts).
pub type MessageId = u64;

/// What a message asks its consumer to do: add `delta` to counter `key` of the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Payload {
    pub key: u64,
    pub delta: i64,
}

/// One delivery of a stored message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delivery {
    pub id: MessageId,
    pub payload: Payload,
    /// 1 for the first delivery, 2 for the first redelivery, ...
    pub attempt: u32,
}

/// How the broker answered a publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublishResult {
    /// Stored (durably, unless the `bug_ack_before_persist` switch is on) under this id.
    Stored(MessageId),
    /// Refused: the queue is at its bound. Nothing was stored.
    QueueFull,
}

/// Every message of the broker family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BrokerMsg {
    /// Producer -> broker. `request` is unique per producer; the reply echoes it.
    Publish {
        request: u64,
        payload: Payload,
    },
    PublishReply {
        request: u64,
        result: PublishResult,
    },
    /// Consumer -> broker: up to `max` messages, please. The broker may hold the request until a
    /// message is visible or its long-poll wait ends (then it answers with none).
    Fetch {
        request: u64,
        max: u32,
    },
    Messages {
        request: u64,
        deliveries: Vec<Delivery>,
    },
    /// Consumer -> broker: this message is processed; delete it.
    Ack {
        id: MessageId,
    },
    /// Consumer -> sink: apply a message's payload. `dedup` is the message id when the consumer is
    /// idempotent (the sink applies each id at most once), `None` for a naive consumer.
    Apply {
        request: u64,
        payload: Payload,
        dedup: Option<MessageId>,
    },
    Applied {
        request: u64,
    },
    /// Reader -> sink.
    Read {
        request: u64,
        key: u64,
    },
    ReadReply {
        request: u64,
        value: i64,
    },
}

impl Message for BrokerMsg {
    fn kind(&self) -> &'static str {
        match self {
            BrokerMsg::Publish { .. } => "Publish",
            BrokerMsg::PublishReply { .. } => "PublishReply",
            BrokerMsg::Fetch { .. } => "Fetch",
            BrokerMsg::Messages { .. } => "Messages",
            BrokerMsg::Ack { .. } => "Ack",
            BrokerMsg::Apply { .. } => "Apply",
            BrokerMsg::Applied { .. } => "Applied",
            BrokerMsg::Read { .. } => "Read",
            BrokerMsg::ReadReply { .. } => "ReadReply",
        }
    }

    fn size_bytes(&self) -> usize {
        match self {
            BrokerMsg::Messages { deliveries, .. } => 32 + 32 * deliveries.len(),
            _ => 48,
        }
    }
}

/// Timer tags shared by the family's nodes: the kind in the top byte, an id below.
pub(crate) mod timer_tag {
    const SHIFT: u32 = 56;
    const MASK: u64 = (1 << SHIFT) - 1;
    /// Broker: a delivered message's visibility timeout ended (id: the message id).
    pub const VISIBILITY: u64 = 1;
    /// Broker: a parked fetch's long-poll wait ended (id: the consumer's node id).
    pub const LONG_POLL: u64 = 2;
    /// Broker (bug switch): the periodic flush of acknowledged messages to storage.
    pub const FLUSH: u64 = 3;
    /// Consumer: no answer to a fetch (id: the fetch request).
    pub const FETCH_TIMEOUT: u64 = 4;
    /// Consumer: processing of the current message is done (id: the message id).
    pub const PROCESSED: u64 = 5;
    /// Consumer: no answer from the sink (id: the apply request).
    pub const APPLY_TIMEOUT: u64 = 6;
    /// Producer: the next message arrives.
    pub const ARRIVAL: u64 = 7;
    /// Producer: a publish timed out (id: the request).
    pub const PUBLISH_TIMEOUT: u64 = 8;
    /// Reader: time for the next read.
    pub const NEXT_READ: u64 = 9;
    /// Reader: a read timed out (id: the request).
    pub const READ_TIMEOUT: u64 = 10;

    pub fn make(kind: u64, id: u64) -> u64 {
        assert!(id <= MASK, "timer id fits below the kind byte");
        (kind << SHIFT) | id
    }
    pub fn split(tag: u64) -> (u64, u64) {
        (tag >> SHIFT, tag & MASK)
    }
}
