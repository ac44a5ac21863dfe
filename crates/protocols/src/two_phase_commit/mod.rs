//! Two-phase commit (Gray, "Notes on Data Base Operating Systems", 1978; Lampson and Sturgis,
//! 1976): atomic commitment of list-append transactions over keys spread across participants,
//! with durable prepare records and decisions, presumed abort, and recovery of both coordinators
//! and participants from storage.
//!
//! The protocol in two sentences: the coordinator asks every participant a transaction touches to
//! *prepare* (lock, make its part durable, promise to commit if asked), and commits only if all
//! vote yes; it logs the decision before announcing it, so that a crash cannot make it change its
//! mind. The price is *blocking*: a participant that voted yes and then lost its coordinator must
//! wait, locks held, for the coordinator to come back; no timeout can safely decide for it.
//!
//! Node layout of the `two-phase-commit` entry (see [`build`]): `n1..nK` coordinators (`K` =
//! `coordinators`, default 2), the remaining servers participants (key `k` lives on participant
//! `k mod P`), clients `c1..cM` send each transaction to coordinator `c mod K`. With two
//! coordinators the blocking is visible on its own: while one coordinator is down, the other keeps
//! running transactions, and exactly those that need a key an in-doubt participant holds fail.
//!
//! What is checked (`tests/two_phase_commit.rs`): the history of committed transactions is strictly
//! serializable (`detsim_check::check_transactions`, Elle's list-append analysis), and every
//! transaction is all-or-nothing in the participants' final data. The trace carries an annotation
//! when a participant starts being in doubt (with the keys it blocks) and when it stops (with how
//! long it waited).
//!
//! Deliberate bug switches, each caught by a test:
//! - `participant.bug_heuristic_commit_after_ns`: an in-doubt participant commits on its own;
//! - `coordinator.bug_no_decision_log`: a coordinator crash forgets commits it already announced.
//!
//! Three-phase commit is not implemented: it removes the blocking only under a synchronous network
//! with no partitions, which the simulator exists to violate; the module docs of [`coordinator`]
//! point at Paxos Commit, the non-blocking alternative that survives them.

pub mod build;
pub mod coordinator;
pub mod msg;
pub mod participant;

pub use build::{build_two_phase_commit, TpcSetup};
pub use msg::TpcMsg;

use crate::spec::ProtocolEntry;
use crate::workload::{ClientProtocol, ClientReply, ClientRequest, WorkloadClient};
use detsim_core::{Ctx, Node, NodeId, TimerId};

/// How the shared workload client talks to coordinators.
#[derive(Clone, Copy, Debug, Default)]
pub struct TpcClientProtocol;

impl ClientProtocol for TpcClientProtocol {
    type Msg = TpcMsg;
    fn wrap_request(&self, request: ClientRequest) -> TpcMsg {
        TpcMsg::Request(request)
    }
    fn into_reply(&self, msg: TpcMsg) -> Option<ClientReply> {
        match msg {
            TpcMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    /// Each client keeps to its own coordinator.
    fn sticky_leader(&self) -> bool {
        false
    }
}

/// Any node of the two-phase-commit family.
pub enum TpcNode {
    Coordinator(coordinator::Coordinator),
    Participant(participant::Participant),
    Client(WorkloadClient<TpcClientProtocol>),
}

impl Node for TpcNode {
    type Msg = TpcMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, TpcMsg>) {
        match self {
            TpcNode::Coordinator(n) => n.on_start(ctx),
            TpcNode::Participant(n) => n.on_start(ctx),
            TpcNode::Client(n) => n.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, TpcMsg>, from: NodeId, msg: TpcMsg) {
        match self {
            TpcNode::Coordinator(n) => n.on_message(ctx, from, msg),
            TpcNode::Participant(n) => n.on_message(ctx, from, msg),
            TpcNode::Client(n) => n.on_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, TpcMsg>, timer: TimerId, tag: u64) {
        match self {
            TpcNode::Coordinator(n) => n.on_timer(ctx, timer, tag),
            TpcNode::Participant(n) => n.on_timer(ctx, timer, tag),
            TpcNode::Client(n) => n.on_timer(ctx, timer, tag),
        }
    }
}

impl TpcNode {
    pub fn as_coordinator(&self) -> Option<&coordinator::Coordinator> {
        match self {
            TpcNode::Coordinator(c) => Some(c),
            _ => None,
        }
    }
    pub fn as_participant(&self) -> Option<&participant::Participant> {
        match self {
            TpcNode::Participant(p) => Some(p),
            _ => None,
        }
    }
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    build::entries()
}
