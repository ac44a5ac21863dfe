//! A lease-based lock service, the failure it cannot prevent on its own, and fencing tokens.
//!
//! Leases (Gray and Cheriton, "Leases: An Efficient Fault-Tolerant Mechanism for Distributed File
//! Cache Consistency", SOSP 1989) make a lock safe against holders that crash: the lock is granted
//! for a bounded time, after which the server may grant it again without hearing from the old
//! holder. The catch is that "time" is measured by two different clocks. The server counts the
//! lease on its own clock; the holder can only count it on its own. If the holder's clock runs
//! slow, or its write is delayed (a long network delay, a paused storage node), it acts on a lease
//! the server already considers expired and has handed to someone else: two clients both believe
//! they hold the lock. Martin Kleppmann, "How to do distributed locking" (2016), and Chubby's
//! sequencers (Burrows, OSDI 2006) give the remedy: every grant carries a *fencing token* that
//! increases with each grant, every storage request carries the token, and the storage refuses
//! requests older than the newest token it has seen. The overlap of beliefs remains; the damage
//! does not.
//!
//! Node layout of the `lease-lock` entry (see [`build`]): `n1` the lock server, `n2` the storage
//! node holding one register, clients `c1..cM` each running critical sections "read v, work,
//! write v+1" under the lease (history: `cas [v v+1]` on key 0; see [`client`]).
//!
//! What is checked (`tests/lease.rs`): with drifting client clocks, the intervals in which clients
//! believe they hold the lock overlap, with fencing or without; without fencing
//! (`storage.bug_no_fencing`, the deliberate bug) increments are lost and the cas-register history
//! is not linearizable; with fencing it is. With accurate clocks and delays within the safety
//! margin the lease alone keeps the beliefs apart. The register starts at 0, so a scenario that
//! checks it says `[check] initial = 0` (scenarios/lease-lock-drift.toml, lease-lock-fencing.toml).

pub mod build;
pub mod client;
pub mod msg;
pub mod server;
pub mod storage;

pub use build::{build_lease_lock, LeaseSetup};
pub use msg::LeaseMsg;

use crate::spec::ProtocolEntry;
use detsim_core::{Ctx, Node, NodeId, TimerId};

/// Any node of the lease family.
#[derive(Clone, Debug)]
pub enum LeaseNode {
    Server(server::LockServer),
    Storage(storage::FencedStorage),
    Client(client::LockClient),
}

impl Node for LeaseNode {
    type Msg = LeaseMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, LeaseMsg>) {
        match self {
            LeaseNode::Server(n) => n.on_start(ctx),
            LeaseNode::Storage(n) => n.on_start(ctx),
            LeaseNode::Client(n) => n.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, from: NodeId, msg: LeaseMsg) {
        match self {
            LeaseNode::Server(n) => n.on_message(ctx, from, msg),
            LeaseNode::Storage(n) => n.on_message(ctx, from, msg),
            LeaseNode::Client(n) => n.on_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, timer: TimerId, tag: u64) {
        match self {
            LeaseNode::Server(n) => n.on_timer(ctx, timer, tag),
            LeaseNode::Storage(n) => n.on_timer(ctx, timer, tag),
            LeaseNode::Client(n) => n.on_timer(ctx, timer, tag),
        }
    }
}

impl LeaseNode {
    pub fn as_server(&self) -> Option<&server::LockServer> {
        match self {
            LeaseNode::Server(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_storage(&self) -> Option<&storage::FencedStorage> {
        match self {
            LeaseNode::Storage(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_client(&self) -> Option<&client::LockClient> {
        match self {
            LeaseNode::Client(c) => Some(c),
            _ => None,
        }
    }
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    build::entries()
}
