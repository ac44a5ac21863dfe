//! Chain replication: servers in a line, updates enter at the head and flow to the tail, reads are
//! answered by the tail. After van Renesse & Schneider, "Chain Replication for Supporting High
//! Throughput and Availability" (OSDI 2004).
//!
//! # The algorithm
//! The servers form a chain: the *head* receives every update, executes it, and passes the new
//! state change to its successor; each server applies what its predecessor passes on, in order, and
//! passes it further; the *tail* applies it and answers the client. An update is acknowledged only
//! once every server of the chain holds it, so the tail's state is exactly the set of committed
//! updates, and in the paper the tail answers reads from it with no extra round. Each server holds a
//! prefix of what its predecessor holds. A *master* (node `master`, after the clients) watches
//! heartbeats and changes the chain: a silent head is replaced by its successor, a silent tail by its
//! predecessor, a silent middle server (or one its predecessor reports stuck) is spliced out, and a
//! server that comes back is appended at the tail. Every configuration is numbered, and a server
//! refuses anything stamped with an older configuration (the fence). Any server relays a client
//! request to the head (updates) or the tail (reads) it knows; the head or tail answers the client.
//! Servers keep their state on durable storage before they pass anything on or answer.
//!
//! Two departures from the paper, both because the paper assumes fail-stop servers whose failures
//! the master detects perfectly, and the simulated network can partition a live server away: (1)
//! the tail confirms with the master that its configuration is still current before it answers a
//! read (a read index against the configuration service), since a tail that the master removed
//! cannot know it without asking; (2) after a configuration change the head passes its whole state
//! down the chain (state transfer), where the paper has each server resend the updates the tail has
//! not acknowledged. Within a configuration each server does keep the paper's *Sent* list — updates
//! it forwarded that its successor has not acknowledged (hop by hop here) — and resends them when
//! the successor stays behind, falling back to state transfer when the list is incomplete (after a
//! restart); updates that arrive ahead of a gap wait for it to fill. Both departures keep the paper's
//! prefix property, which is what safety rests on. Like the primary-backup view service, the master
//! makes a server head only if it is *complete*: known to hold every acknowledged update.
//!
//! # Guarantees
//! Linearizable reads and updates under crashes and restarts (storage survives), message loss,
//! duplication and reordering, partitions of any shape (the master included), pauses and clock
//! faults — clocks drive failure detection only. Available while the master and every server of the
//! chain can talk; after a failure, once the master has spliced the chain. Reads cost one round to
//! the master here (the paper's fail-stop tail needs none); updates cost one message per server.
//!
//! # Not tolerated
//! A crashed or partitioned master stops reconfiguration and reads (the paper replicates it with
//! Paxos). One slow server slows every update until the master removes it. Byzantine servers and
//! lost durable storage are not handled.
//!
//! # Bug switches
//! `mutant_unconfirmed_tail_reads` (the tail answers reads without asking the master: a removed
//! tail serves stale reads), `mutant_reply_at_head` (the head acknowledges an update before the
//! rest of the chain has it: a head failure loses it), `mutant_no_fencing` (servers accept updates
//! and state from any configuration). The linearizability checker catches each
//! (tests/chain.rs).

pub mod master;
pub mod server;

pub use master::ChainMaster;
pub use server::ChainServer;

use crate::configuration_service::{self, check_heartbeat_periods};
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{
    ClientProtocol, ClientReply, ClientRequest, ClusterLayout, RetryPolicy, StateMachine, WorkloadClient,
};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Simulation, TimerId};
use serde::{Deserialize, Serialize};

/// Protocol parameters, as a scenario's `[protocol.params]` sets them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainParams {
    /// Every node's periodic tick; the periods below are checked on it.
    pub tick_ms: u64,
    /// Servers ping the master this often (the heartbeat).
    pub ping_interval_ms: u64,
    /// The master declares a server dead after this long without a ping.
    pub dead_after_ms: u64,
    /// A server reports a successor that has not caught up for this long; the master splices it out.
    pub successor_timeout_ms: u64,
    /// A server outside the chain is appended at the tail once it has pinged for this long.
    pub rejoin_after_ms: u64,
    /// A server resends its state to a successor that stays behind this often.
    pub retransmit_ms: u64,
    /// A client resends an unanswered request to another server after this long.
    pub client_resend_ms: u64,
    /// MUTANT: the tail answers reads without confirming its configuration with the master.
    pub mutant_unconfirmed_tail_reads: bool,
    /// MUTANT: the head acknowledges an update as soon as it applied it.
    pub mutant_reply_at_head: bool,
    /// MUTANT: servers accept updates and state from any configuration, older ones included.
    pub mutant_no_fencing: bool,
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            tick_ms: 10,
            ping_interval_ms: 20,
            dead_after_ms: 200,
            successor_timeout_ms: 150,
            rejoin_after_ms: 300,
            retransmit_ms: 40,
            client_resend_ms: 250,
            mutant_unconfirmed_tail_reads: false,
            mutant_reply_at_head: false,
            mutant_no_fencing: false,
        }
    }
}

impl ChainParams {
    fn validate(&self) -> Result<(), String> {
        let periods = [
            ("tick_ms", self.tick_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("dead_after_ms", self.dead_after_ms),
            ("successor_timeout_ms", self.successor_timeout_ms),
            ("retransmit_ms", self.retransmit_ms),
            ("client_resend_ms", self.client_resend_ms),
        ];
        check_heartbeat_periods(&periods, self.ping_interval_ms, self.dead_after_ms)
    }
}

/// A numbered chain: head first, tail last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// 0 is "no configuration yet"; configurations count up from 1.
    pub number: u64,
    pub chain: Vec<NodeId>,
}

impl Config {
    pub fn head(&self) -> Option<NodeId> {
        self.chain.first().copied()
    }
    pub fn tail(&self) -> Option<NodeId> {
        self.chain.last().copied()
    }
    pub fn successor(&self, id: NodeId) -> Option<NodeId> {
        let position = self.chain.iter().position(|n| *n == id)?;
        self.chain.get(position + 1).copied()
    }
    pub fn predecessor(&self, id: NodeId) -> Option<NodeId> {
        let position = self.chain.iter().position(|n| *n == id)?;
        position.checked_sub(1).map(|p| self.chain[p])
    }
}

/// Everything a chain-replication node sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChainMsg {
    Request(ClientRequest),
    Reply(ClientReply),
    /// A client request passed on to the head or the tail, which answers `client` directly.
    Relay {
        client: NodeId,
        request: ClientRequest,
        hops: u8,
    },
    /// Server to master, the heartbeat: its configuration, whether state transfer reached it
    /// there, and a successor that stopped catching up.
    Ping {
        config: u64,
        synced: bool,
        stuck_successor: Option<NodeId>,
    },
    /// Master to server: the current configuration.
    ConfigIs {
        config: Config,
    },
    /// Tail to master: is `config` still current? (`read` numbers the tail's question.)
    ReadCheck {
        config: u64,
        read: u64,
    },
    ReadOk {
        config: u64,
        read: u64,
    },
    /// Predecessor to successor: the whole state after update `seq` (state transfer).
    Sync {
        config: Config,
        seq: u64,
        state: Box<StateMachine>,
    },
    /// Predecessor to successor: update number `seq`, with the client the tail answers.
    Forward {
        config: u64,
        seq: u64,
        client: NodeId,
        request: ClientRequest,
    },
    /// Successor to predecessor: "I hold every update up to `seq` in `config`".
    Ack {
        config: u64,
        seq: u64,
    },
    /// To a server of an older configuration: the newer one (the fence).
    Stale {
        config: Config,
    },
}

impl Message for ChainMsg {
    fn kind(&self) -> &'static str {
        match self {
            ChainMsg::Request(_) => "Request",
            ChainMsg::Reply(_) => "Reply",
            ChainMsg::Relay { .. } => "Relay",
            ChainMsg::Ping { .. } => "Ping",
            ChainMsg::ConfigIs { .. } => "ConfigIs",
            ChainMsg::ReadCheck { .. } => "ReadCheck",
            ChainMsg::ReadOk { .. } => "ReadOk",
            ChainMsg::Sync { .. } => "Sync",
            ChainMsg::Forward { .. } => "Forward",
            ChainMsg::Ack { .. } => "Ack",
            ChainMsg::Stale { .. } => "Stale",
        }
    }
}

/// How workload clients talk to a chain: to any server (it relays to the head or the tail), sticky
/// to one that answered, resending to another on silence, retrying unknown outcomes (safe: every
/// server's state machine executes each request at most once).
#[derive(Clone, Debug)]
pub struct ChainClient {
    resend_ms: u64,
}

impl ClientProtocol for ChainClient {
    type Msg = ChainMsg;
    fn wrap_request(&self, request: ClientRequest) -> ChainMsg {
        ChainMsg::Request(request)
    }
    fn into_reply(&self, msg: ChainMsg) -> Option<ClientReply> {
        match msg {
            ChainMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { resend_ms: Some(self.resend_ms), retry_unknown: true, ..RetryPolicy::default() }
    }
}

/// A node of a chain-replication simulation.
pub enum ChainNode {
    Server(Box<ChainServer>),
    Master(Box<ChainMaster>),
    Client(Box<WorkloadClient<ChainClient>>),
}

impl ChainNode {
    pub fn server(&self) -> Option<&ChainServer> {
        match self {
            ChainNode::Server(server) => Some(server),
            _ => None,
        }
    }
    pub fn master(&self) -> Option<&ChainMaster> {
        match self {
            ChainNode::Master(master) => Some(master),
            _ => None,
        }
    }
}

impl Node for ChainNode {
    type Msg = ChainMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        match self {
            ChainNode::Server(server) => server.on_start(ctx),
            ChainNode::Master(master) => master.on_start(ctx),
            ChainNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, ChainMsg>, from: NodeId, msg: ChainMsg) {
        match self {
            ChainNode::Server(server) => server.on_message(ctx, from, msg),
            ChainNode::Master(master) => master.on_message(ctx, from, msg),
            ChainNode::Client(client) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, ChainMsg>, timer: TimerId, tag: u64) {
        match self {
            ChainNode::Server(server) => server.on_tick(ctx),
            ChainNode::Master(master) => master.on_tick(ctx),
            ChainNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// The name of the master node (it comes after the clients).
pub const MASTER_NAME: &str = "master";

/// The master's node id in a simulation built from `spec`.
pub fn master_id(spec: &ClusterSpec) -> NodeId {
    configuration_service::service_id(spec)
}

/// Builds a chain: servers `n1..nN` (the first chain in that order), clients `c1..cM`, then the
/// master.
pub fn build_simulation(spec: &ClusterSpec) -> Result<Simulation<ChainNode>, String> {
    let params: ChainParams = spec.params()?;
    params.validate()?;
    let layout = ClusterLayout::of(spec);
    let servers = layout.servers.clone();
    let master = master_id(spec);
    let kind = spec.workload.kind;
    let workload = spec.workload.clone();
    let client = ChainClient { resend_ms: params.client_resend_ms };
    let server_params = params.clone();
    configuration_service::build_with_service(
        spec,
        move |index, storage| {
            let id = NodeId(index as u32);
            ChainNode::Server(Box::new(ChainServer::recover(id, master, server_params.clone(), kind, storage)))
        },
        move |index| {
            ChainNode::Client(Box::new(WorkloadClient::new(client.clone(), &workload, index, layout.servers.clone())))
        },
        MASTER_NAME,
        move |_, storage| ChainNode::Master(Box::new(ChainMaster::recover(servers.clone(), params.clone(), storage))),
    )
}

/// The server that acts as head in the newest configuration any server knows (for
/// isolate-the-leader faults and figures).
pub fn head(sim: &Simulation<ChainNode>) -> Option<NodeId> {
    configuration_service::newest_leader(sim, |node| node.server().filter(|s| s.is_head()).map(|s| s.config().number))
}

fn build_boxed(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build_simulation(spec)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "chain",
        description: "Chain replication: updates flow head to tail, the tail answers reads; master-run reconfiguration",
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
