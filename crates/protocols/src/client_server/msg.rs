//! The wire protocol shared by every client-server configuration: requests carrying a KV operation
//! (and optionally an idempotency key), replies carrying an outcome that says whether the operation
//! certainly did not happen or might have.

use detsim_core::{Message, Op, Value};
use serde::{Deserialize, Serialize};

/// A key of the key-value store.
pub type Key = u64;

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOp {
    /// Read a register (history `read`, value: what was read, nil when never written).
    Read { key: Key },
    /// Overwrite a register (history `write`).
    Write { key: Key, value: i64 },
    /// Add `delta` to a counter (history `add`): *not* idempotent, which is what makes retries
    /// dangerous without idempotency keys.
    Add { key: Key, delta: i64 },
    /// A call through the resilience gateway to dependency number `dependency` (history `call`).
    Call { dependency: u32 },
}

impl KvOp {
    /// The key the operation touches (the dependency number for a call).
    pub fn key(&self) -> Key {
        match self {
            KvOp::Read { key } | KvOp::Write { key, .. } | KvOp::Add { key, .. } => *key,
            KvOp::Call { dependency } => u64::from(*dependency),
        }
    }

    pub fn is_read(&self) -> bool {
        matches!(self, KvOp::Read { .. })
    }

    /// True for operations that change state (writes and adds).
    pub fn has_effect(&self) -> bool {
        matches!(self, KvOp::Write { .. } | KvOp::Add { .. })
    }

    /// The operation as a history records it at invocation.
    pub fn history_op(&self) -> Op {
        let key = Some(Value::Int(self.key() as i64));
        match self {
            KvOp::Read { .. } => Op::new("read", key, Value::Nil),
            KvOp::Write { value, .. } => Op::new("write", key, Value::Int(*value)),
            KvOp::Add { delta, .. } => Op::new("add", key, Value::Int(*delta)),
            KvOp::Call { .. } => Op::new("call", key, Value::Nil),
        }
    }
}

/// Identifies one logical client operation across all its retries: the server applies an operation
/// with a key it has seen before at most once and answers with the reply it gave the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The client node's index.
    pub client: u32,
    /// The client's operation number (unique per client).
    pub op_seq: u64,
}

/// How a request ended, as the replying node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; for a read, the value (`None`: never written); for a write or add, `None`.
    Value(Option<i64>),
    /// Certainly not applied (overloaded, circuit open, bulkhead full, wrong shard...).
    NotApplied(String),
    /// May or may not have been applied (a proxy's backend call timed out).
    Unknown(String),
}

/// The messages of every client-server configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CsMsg {
    /// `id` is unique per sender; the reply echoes it.
    Request {
        id: u64,
        op: KvOp,
        idempotency_key: Option<IdempotencyKey>,
    },
    Reply {
        id: u64,
        outcome: Outcome,
    },
}

impl Message for CsMsg {
    fn kind(&self) -> &'static str {
        match self {
            CsMsg::Request { op: KvOp::Read { .. }, .. } => "Read",
            CsMsg::Request { op: KvOp::Write { .. }, .. } => "Write",
            CsMsg::Request { op: KvOp::Add { .. }, .. } => "Add",
            CsMsg::Request { op: KvOp::Call { .. }, .. } => "Call",
            CsMsg::Reply { .. } => "Reply",
        }
    }
}

/// Timer tags: the kind in the top byte, an id below. Every node of the family shares this layout
/// so that one enum can dispatch timers without collisions.
pub(crate) mod timer_tag {
    pub const SHIFT: u32 = 56;
    pub const MASK: u64 = (1 << SHIFT) - 1;
    /// A job of a `ServiceQueue` finished its service time.
    pub const SERVICE: u64 = 1;
    /// A backend call of a proxy (front, cache, LB, gateway) timed out.
    pub const BACKEND_TIMEOUT: u64 = 2;
    /// A client attempt timed out.
    pub const ATTEMPT_TIMEOUT: u64 = 3;
    /// A client backoff (or think time) ended: send the next attempt or operation.
    pub const CLIENT_WAKE: u64 = 4;
    /// An open-loop client's next operation arrives.
    pub const CLIENT_ARRIVAL: u64 = 5;

    pub fn make(kind: u64, id: u64) -> u64 {
        assert!(id <= MASK, "timer id fits below the kind byte");
        (kind << SHIFT) | id
    }
    pub fn split(tag: u64) -> (u64, u64) {
        (tag >> SHIFT, tag & MASK)
    }
}
