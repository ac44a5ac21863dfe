//! The wire protocol of the lease-based lock service: clients acquire and release a lease on the
//! lock server, and read and write the shared register on the storage node, every storage request
//! carrying the client's fencing token.

use detsim_core::Message;

/// A fencing token: the lock server hands out a larger one with every grant, so the order of
/// tokens is the order of lease holders.
pub type Token = u64;

/// Every message of the lease family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseMsg {
    /// Client -> lock server.
    Acquire {
        request: u64,
    },
    /// The lease is yours for `lease_ns` from when the server granted it, by the server's clock.
    Granted {
        request: u64,
        token: Token,
        lease_ns: u64,
    },
    /// Someone else holds it; ask again in `retry_in_ns`.
    Busy {
        request: u64,
        retry_in_ns: u64,
    },
    /// Client -> lock server: done with the lease of `token`.
    Release {
        token: Token,
    },
    /// Client -> storage: read the register, as the holder of `token`.
    Read {
        request: u64,
        token: Token,
    },
    /// `None`: refused, a larger token has been seen.
    ReadReply {
        request: u64,
        value: Option<i64>,
    },
    /// Client -> storage: write the register, as the holder of `token`.
    Write {
        request: u64,
        token: Token,
        value: i64,
    },
    WriteReply {
        request: u64,
        accepted: bool,
    },
}

impl Message for LeaseMsg {
    fn kind(&self) -> &'static str {
        match self {
            LeaseMsg::Acquire { .. } => "Acquire",
            LeaseMsg::Granted { .. } => "Granted",
            LeaseMsg::Busy { .. } => "Busy",
            LeaseMsg::Release { .. } => "Release",
            LeaseMsg::Read { .. } => "Read",
            LeaseMsg::ReadReply { .. } => "ReadReply",
            LeaseMsg::Write { .. } => "Write",
            LeaseMsg::WriteReply { .. } => "WriteReply",
        }
    }
}

/// Timer tags: the kind in the top byte, an id below.
pub(crate) mod timer_tag {
    const SHIFT: u32 = 56;
    const MASK: u64 = (1 << SHIFT) - 1;
    /// Client: time to ask for the lock (again).
    pub const ACQUIRE: u64 = 1;
    /// Client: no answer to a request (id: the request).
    pub const REQUEST_TIMEOUT: u64 = 2;
    /// Client: the work of the critical section is done (id: the request of the read).
    pub const WORK_DONE: u64 = 3;

    pub fn make(kind: u64, id: u64) -> u64 {
        assert!(id <= MASK, "timer id fits below the kind byte");
        (kind << SHIFT) | id
    }
    pub fn split(tag: u64) -> (u64, u64) {
        (tag >> SHIFT, tag & MASK)
    }
}
