//! The wire protocol of two-phase commit: client transactions in and out, and between the
//! coordinator and its participants prepare, vote, decision, acknowledgement and the in-doubt
//! participant's inquiry.

use crate::workload::{ClientReply, ClientRequest};
use detsim_core::{Message, Value};
use serde::{Deserialize, Serialize};

/// A transaction id: the coordinator's index in the top 16 bits, its own counter below (durable,
/// so an id is never reused, even across coordinator restarts).
pub type TxnId = u64;

/// The coordinator index of a transaction id.
pub fn coordinator_of(txn: TxnId) -> usize {
    (txn >> 48) as usize
}

/// Builds a transaction id.
pub fn txn_id(coordinator: usize, counter: u64) -> TxnId {
    assert!(coordinator < (1 << 16) && counter < (1 << 48), "transaction ids fit their fields");
    ((coordinator as u64) << 48) | counter
}

/// One micro-op of a transaction, as a participant sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MicroOp {
    /// Append `value` to the list at `key`.
    Append { key: i64, value: Value },
    /// Read the list at `key` (as of this transaction: its own earlier appends included).
    Read { key: i64 },
}

impl MicroOp {
    pub fn key(&self) -> i64 {
        match self {
            MicroOp::Append { key, .. } | MicroOp::Read { key } => *key,
        }
    }
}

/// A participant's vote.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Vote {
    /// Prepared: its writes are durable and its keys locked until the decision. `reads` holds the
    /// result of each read micro-op it was sent, in order.
    Yes { reads: Vec<Value> },
    /// Cannot prepare (a key is locked by another transaction): the transaction must abort.
    No { reason: String },
}

/// Every message of the two-phase-commit family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TpcMsg {
    Request(ClientRequest),
    Reply(ClientReply),
    /// Coordinator -> participant: phase one, for this participant's micro-ops of `txn`.
    Prepare {
        txn: TxnId,
        ops: Vec<MicroOp>,
    },
    /// Participant -> coordinator.
    VoteMsg {
        txn: TxnId,
        vote: Vote,
    },
    /// Coordinator -> participant: phase two.
    Decision {
        txn: TxnId,
        commit: bool,
    },
    /// Participant -> coordinator: the decision is applied (the coordinator may forget `txn`).
    Done {
        txn: TxnId,
    },
    /// In-doubt participant -> coordinator: what was decided about `txn`?
    Inquire {
        txn: TxnId,
    },
}

impl Message for TpcMsg {
    fn kind(&self) -> &'static str {
        match self {
            TpcMsg::Request(_) => "Request",
            TpcMsg::Reply(_) => "Reply",
            TpcMsg::Prepare { .. } => "Prepare",
            TpcMsg::VoteMsg { vote: Vote::Yes { .. }, .. } => "VoteYes",
            TpcMsg::VoteMsg { vote: Vote::No { .. }, .. } => "VoteNo",
            TpcMsg::Decision { commit: true, .. } => "Commit",
            TpcMsg::Decision { commit: false, .. } => "Abort",
            TpcMsg::Done { .. } => "Done",
            TpcMsg::Inquire { .. } => "Inquire",
        }
    }
}

/// Timer tags: the kind in the top byte, an id below.
pub(crate) mod timer_tag {
    const SHIFT: u32 = 56;
    const MASK: u64 = (1 << SHIFT) - 1;
    /// Coordinator: votes did not all come in (id: the transaction's counter).
    pub const VOTE_TIMEOUT: u64 = 1;
    /// Coordinator: resend a commit decision to participants that have not confirmed it.
    pub const RESEND_DECISIONS: u64 = 2;
    /// Participant: still in doubt about a prepared transaction (id: the transaction id, which
    /// fits below the kind byte while there are fewer than 256 coordinators).
    pub const IN_DOUBT: u64 = 3;

    pub fn make(kind: u64, id: u64) -> u64 {
        assert!(id <= MASK, "timer id fits below the kind byte");
        (kind << SHIFT) | id
    }
    pub fn split(tag: u64) -> (u64, u64) {
        (tag >> SHIFT, tag & MASK)
    }
}
