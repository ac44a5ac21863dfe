//! Multi-Paxos: a replicated log decided slot by slot with a stable leader, after Lamport, "Paxos Made
//! Simple" (2001), and van Renesse & Altinbuken, "Paxos Made Moderately Complex" (ACM Computing
//! Surveys, 2015).
//!
//! # The algorithm
//! Every server is an acceptor, a learner and a would-be leader (proposer). A server that has not
//! heard from a leader for a randomised election timeout picks a ballot higher than any it has seen
//! and runs phase 1 once for *all* slots from its first undecided one: each acceptor that has not
//! promised a higher ballot promises this one and reports every value it has accepted. With promises
//! from a majority, the new leader adopts, for each slot, the value accepted with the highest ballot
//! (a value that may have been chosen must be proposed again), fills the gaps with no-ops, and from
//! then on runs only phase 2 per slot: it sends `Accept(ballot, slot, command)`, an acceptor accepts
//! unless it promised a higher ballot, and a majority of acceptances chooses the command. The leader
//! tells every learner (`Decide`), applies the log in slot order to the key-value state machine and
//! answers the client. Reads go through the log too, so they are linearizable without leases. Acceptors
//! write their promise and accepted values to durable storage before they answer; learners rebuild
//! their log after a restart from the leader (`CatchUp`). A non-leader relays a client's request to the
//! leader it knows (`Forward`; the leader answers the client), or, knowing none, tells the client to
//! try elsewhere; a leader that meets a higher ballot steps down. Clients resend an unanswered request
//! to the next server every `client_resend_ms`: a lost request or reply is only ever recovered that way.
//!
//! # Guarantees
//! Safety (one command per slot, hence linearizable operations) under any number of crashes and
//! restarts, message loss, duplication, reordering, partitions of any shape, pauses and clock faults.
//! Liveness whenever a majority of servers is up and connected long enough to elect one leader.
//!
//! # Not tolerated
//! Byzantine faults (a lying acceptor breaks safety), loss of durable storage (an acceptor that forgets
//! its promise), more than a minority of servers down or cut off (no progress, but still safe), and
//! duelling proposers under pathological timing (progress stalls while ballots keep rising).
//!
//! # Bug switches
//! `mutant_accept_lower_ballot` (an acceptor accepts a ballot below its promise),
//! `mutant_skip_phase1` (a new leader starts phase 2 without phase 1), `mutant_ignore_accepted`
//! (phase 1 runs but the leader does not adopt the highest accepted values): each loses chosen
//! writes, which the linearizability checker reports.

pub mod server;

pub use server::{AcceptedEntry, Ballot, Command, PaxosServer, PeerMsg};

use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{
    build_cluster, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, RetryPolicy, WorkloadClient,
};
use detsim_core::{Ctx, Message, Node, NodeId, Simulation, TimerId};
use serde::{Deserialize, Serialize};

/// Protocol parameters, as a scenario's `[protocol.params]` sets them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaxosParams {
    /// Every server's periodic tick; the other periods are counted in ticks.
    pub tick_ms: u64,
    /// A leader sends a heartbeat every this many ticks.
    pub heartbeat_ticks: u32,
    /// Unanswered prepares and accepts are sent again every this many ticks.
    pub retransmit_ticks: u32,
    /// A follower that hears nothing from a leader for a time drawn from this range starts phase 1.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A client resends an unanswered request (to another server) after this long. A few round trips
    /// of phase 2 plus one accept retransmission: long enough not to duplicate proposals that are on
    /// their way, short enough that a request or reply lost to the network is resent several times
    /// within a few hundred milliseconds (at 250 ms, one lost request and one lost answer to its resend
    /// left an operation unanswered for half a second, past the liveness check of the nemesis test).
    pub client_resend_ms: u64,
    /// MUTANT: an acceptor accepts proposals with a ballot lower than the one it promised.
    pub mutant_accept_lower_ballot: bool,
    /// MUTANT: a server that times out makes itself leader and skips phase 1.
    pub mutant_skip_phase1: bool,
    /// MUTANT: a new leader ignores the values the acceptors reported in phase 1.
    pub mutant_ignore_accepted: bool,
}

impl Default for PaxosParams {
    fn default() -> Self {
        PaxosParams {
            tick_ms: 10,
            heartbeat_ticks: 5,
            retransmit_ticks: 5,
            election_timeout_min_ms: 200,
            election_timeout_max_ms: 400,
            client_resend_ms: 100,
            mutant_accept_lower_ballot: false,
            mutant_skip_phase1: false,
            mutant_ignore_accepted: false,
        }
    }
}

impl PaxosParams {
    pub fn any_mutant(&self) -> bool {
        self.mutant_accept_lower_ballot || self.mutant_skip_phase1 || self.mutant_ignore_accepted
    }

    fn validate(&self) -> Result<(), String> {
        if self.tick_ms == 0 || self.heartbeat_ticks == 0 || self.retransmit_ticks == 0 {
            return Err("tick_ms, heartbeat_ticks and retransmit_ticks must be positive".into());
        }
        if self.election_timeout_min_ms > self.election_timeout_max_ms {
            return Err("election_timeout_min_ms must not exceed election_timeout_max_ms".into());
        }
        if self.election_timeout_min_ms < self.tick_ms * u64::from(self.heartbeat_ticks) * 2 {
            return Err("the election timeout must span at least two heartbeats".into());
        }
        Ok(())
    }
}

/// Everything a Multi-Paxos node sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PaxosMsg {
    Request(ClientRequest),
    Reply(ClientReply),
    Peer(PeerMsg),
}

impl Message for PaxosMsg {
    fn kind(&self) -> &'static str {
        match self {
            PaxosMsg::Request(_) => "Request",
            PaxosMsg::Reply(_) => "Reply",
            PaxosMsg::Peer(peer) => peer.kind(),
        }
    }
}

/// How workload clients talk to Multi-Paxos: sticky to the leader, resending unanswered requests,
/// and retrying unknown outcomes (safe: the state machine executes each request once).
#[derive(Clone, Debug)]
pub struct PaxosClient {
    resend_ms: u64,
}

impl ClientProtocol for PaxosClient {
    type Msg = PaxosMsg;
    fn wrap_request(&self, request: ClientRequest) -> PaxosMsg {
        PaxosMsg::Request(request)
    }
    fn into_reply(&self, msg: PaxosMsg) -> Option<ClientReply> {
        match msg {
            PaxosMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { resend_ms: Some(self.resend_ms), retry_unknown: true, ..RetryPolicy::default() }
    }
}

/// A node of a Multi-Paxos simulation.
pub enum PaxosNode {
    Server(Box<PaxosServer>),
    Client(WorkloadClient<PaxosClient>),
}

impl PaxosNode {
    pub fn server(&self) -> Option<&PaxosServer> {
        match self {
            PaxosNode::Server(server) => Some(server),
            PaxosNode::Client(_) => None,
        }
    }
}

impl Node for PaxosNode {
    type Msg = PaxosMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        match self {
            PaxosNode::Server(server) => server.on_start(ctx),
            PaxosNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, msg: PaxosMsg) {
        match (self, msg) {
            (PaxosNode::Server(server), PaxosMsg::Request(request)) => server.on_request(ctx, from, request),
            (PaxosNode::Server(server), PaxosMsg::Peer(peer)) => server.on_peer(ctx, from, peer),
            (PaxosNode::Server(_), PaxosMsg::Reply(_)) => {}
            (PaxosNode::Client(client), msg) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, timer: TimerId, tag: u64) {
        match self {
            PaxosNode::Server(server) => server.on_tick(ctx),
            PaxosNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// Builds a Multi-Paxos cluster: servers `n1..nN`, clients `c1..cM`.
pub fn build_simulation(spec: &ClusterSpec) -> Result<Simulation<PaxosNode>, String> {
    let params: PaxosParams = spec.params()?;
    params.validate()?;
    let layout = ClusterLayout::of(spec);
    let servers = layout.servers.clone();
    let kind = spec.workload.kind;
    let workload = spec.workload.clone();
    let client = PaxosClient { resend_ms: params.client_resend_ms };
    let server_params = params.clone();
    build_cluster(
        spec,
        move |index, storage| {
            let id = NodeId(index as u32);
            PaxosNode::Server(Box::new(PaxosServer::recover(id, servers.clone(), server_params.clone(), kind, storage)))
        },
        move |index| PaxosNode::Client(WorkloadClient::new(client.clone(), &workload, index, layout.servers.clone())),
    )
}

fn build_boxed(spec: &ClusterSpec) -> Result<Box<dyn detsim_core::AnySimulation>, String> {
    Ok(Box::new(build_simulation(spec)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "multi-paxos",
        description: "Multi-Paxos: stable leader, phase 1 for all slots, phase 2 per slot; linearizable (CP)",
        workloads: &[
            WorkloadKind::Register,
            WorkloadKind::KeyValue,
            WorkloadKind::Counter,
            WorkloadKind::Set,
            WorkloadKind::ListAppend,
            WorkloadKind::RwRegister,
        ],
        build: build_boxed,
    }]
}
