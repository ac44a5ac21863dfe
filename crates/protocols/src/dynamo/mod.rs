//! A Dynamo-style leaderless replicated key-value store (AP), after DeCandia et al., "Dynamo: Amazon's
//! Highly Available Key-value Store" (SOSP 2007).
//!
//! # The algorithm
//! Keys live on a consistent-hashing ring with virtual nodes ([`ring`]); a key's preference list
//! starts with its N home replicas. Any node coordinates the requests it receives: a write gets a new
//! version (a last-writer-wins timestamp from the coordinator's own clock, or a vector clock, see
//! [`version`]) and is sent to the N homes, and the client hears "ok" after W of them stored it
//! durably; a read asks the homes and answers after R replies with the newest version (vector-clock
//! siblings resolve deterministically). With a *sloppy quorum*, homes that stay silent are replaced
//! by the next nodes on the ring, which keep the data as *hints* and hand it back to the home when it
//! answers again (*hinted handoff*). A read that saw stale replicas sends them the merged version
//! (*read repair*), and every node periodically exchanges its versions with its peers (*anti-entropy*,
//! a full-state exchange here where Dynamo uses Merkle trees: the key spaces of a simulation are small).
//!
//! # Guarantees
//! Always writable while any W nodes (any, with a sloppy quorum) are reachable from a coordinator the
//! client reaches: both sides of a partition keep serving. Replicas converge once the partition
//! heals (hinted handoff, anti-entropy, read repair): every home replica of a key ends up with the
//! same versions. With strict quorums (no fallbacks), R + W > N, durable replicas, clocks without
//! faults and clients that do not resend writes, a read never returns a value older than a write
//! that completed before the read began (tests/dynamo.rs checks exactly this on 200 seeds).
//!
//! # Not tolerated (by design)
//! Linearizability: reads can be stale during partitions (sloppy quorums do not intersect), a read
//! concurrent with a write can see it and a later read not (read repair is asynchronous), and
//! last-writer-wins lets a write from a coordinator with a slow clock lose to an older one. Client
//! resends have a price too: a resent write that an old (paused, cut-off) coordinator handles late
//! gets a fresh timestamp and overwrites newer writes. No atomic read-modify-write: `cas` and
//! `append` are refused, not faked. Loss of durable storage on every replica of a key loses it.
//!
//! # Bug switches
//! R + W <= N sold as strict quorums (`read_quorum_r = 1, write_quorum_w = 1`: a read can miss every
//! replica that acknowledged a write), and `mutant_repair_restamps` (read repair writes the value it
//! read back as a *new* version, which beats a write that completed meanwhile). The stale-read
//! check of tests/dynamo.rs catches both within a few seeds.

pub mod ring;
pub mod server;
pub mod version;

pub use ring::Ring;
pub use server::{DynamoServer, PeerMsg};
pub use version::{Stamp, Versioned, Versioning};

use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{
    build_cluster, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, RetryPolicy, WorkloadClient,
};
use detsim_core::{Ctx, Message, Node, NodeId, SimRng, Simulation, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Protocol parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamoParams {
    /// N: home replicas per key.
    pub replicas_n: usize,
    /// R: replies a read waits for.
    pub read_quorum_r: usize,
    /// W: acknowledgements a write waits for.
    pub write_quorum_w: usize,
    /// Tokens per server on the ring.
    pub vnodes_per_server: usize,
    /// Stand in for silent home replicas with the next nodes on the ring (and hand off later).
    pub sloppy_quorum: bool,
    pub versioning: Versioning,
    pub read_repair: bool,
    pub anti_entropy: bool,
    pub tick_ms: u64,
    /// Silent replicas are asked again (and fallbacks asked) every this long.
    pub fallback_after_ms: u64,
    /// A coordinator gives up on a request after this long (write: unknown outcome; read: fail).
    pub request_deadline_ms: u64,
    pub handoff_interval_ms: u64,
    pub anti_entropy_interval_ms: u64,
    /// A client resends an unanswered request to another coordinator after this long (`None`: it
    /// waits for its timeout). Resending keeps clients served when their coordinator is cut off,
    /// but under last-writer-wins a resent write that an old coordinator handles late gets a
    /// fresh timestamp and can overwrite newer writes: an old value comes back.
    pub client_resend_ms: Option<u64>,
    /// MUTANT: read repair writes the value read back as a fresh version.
    pub mutant_repair_restamps: bool,
}

impl Default for DynamoParams {
    fn default() -> Self {
        DynamoParams {
            replicas_n: 3,
            read_quorum_r: 2,
            write_quorum_w: 2,
            vnodes_per_server: 8,
            sloppy_quorum: true,
            versioning: Versioning::LastWriterWins,
            read_repair: true,
            anti_entropy: true,
            tick_ms: 10,
            fallback_after_ms: 50,
            request_deadline_ms: 400,
            handoff_interval_ms: 100,
            anti_entropy_interval_ms: 100,
            client_resend_ms: Some(300),
            mutant_repair_restamps: false,
        }
    }
}

impl DynamoParams {
    fn validate(&self, servers: usize) -> Result<(), String> {
        if self.replicas_n == 0 || self.replicas_n > servers {
            return Err(format!("replicas_n must be between 1 and the {servers} servers, got {}", self.replicas_n));
        }
        for (name, quorum) in [("read_quorum_r", self.read_quorum_r), ("write_quorum_w", self.write_quorum_w)] {
            if quorum == 0 || quorum > self.replicas_n {
                return Err(format!("{name} must be between 1 and replicas_n ({}), got {quorum}", self.replicas_n));
            }
        }
        if self.vnodes_per_server == 0 || self.tick_ms == 0 {
            return Err("vnodes_per_server and tick_ms must be positive".into());
        }
        if self.client_resend_ms == Some(0) {
            return Err("client_resend_ms must be positive (or null for no resends)".into());
        }
        Ok(())
    }
}

/// Everything a Dynamo node sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DynamoMsg {
    Request(ClientRequest),
    Reply(ClientReply),
    Peer(PeerMsg),
}

impl Message for DynamoMsg {
    fn kind(&self) -> &'static str {
        match self {
            DynamoMsg::Request(_) => "Request",
            DynamoMsg::Reply(_) => "Reply",
            DynamoMsg::Peer(peer) => peer.kind(),
        }
    }
}

/// Clients pick a random coordinator for each request (no leader to stick to) and resend to another
/// one when theirs does not answer.
#[derive(Clone, Debug)]
pub struct DynamoClient {
    resend_ms: Option<u64>,
}

impl ClientProtocol for DynamoClient {
    type Msg = DynamoMsg;
    fn wrap_request(&self, request: ClientRequest) -> DynamoMsg {
        DynamoMsg::Request(request)
    }
    fn into_reply(&self, msg: DynamoMsg) -> Option<ClientReply> {
        match msg {
            DynamoMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    fn first_server(&self, _client_index: usize, servers: &[NodeId], rng: &mut SimRng) -> NodeId {
        servers[rng.random_range(0..servers.len())]
    }
    fn sticky_leader(&self) -> bool {
        false
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { resend_ms: self.resend_ms, ..RetryPolicy::default() }
    }
}

/// A node of a Dynamo simulation.
pub enum DynamoNode {
    Server(Box<DynamoServer>),
    Client(Box<WorkloadClient<DynamoClient>>),
}

impl DynamoNode {
    pub fn server(&self) -> Option<&DynamoServer> {
        match self {
            DynamoNode::Server(server) => Some(server),
            DynamoNode::Client(_) => None,
        }
    }
}

impl Node for DynamoNode {
    type Msg = DynamoMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, DynamoMsg>) {
        match self {
            DynamoNode::Server(server) => server.on_start(ctx),
            DynamoNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, from: NodeId, msg: DynamoMsg) {
        match (self, msg) {
            (DynamoNode::Server(server), DynamoMsg::Request(request)) => server.on_request(ctx, from, request),
            (DynamoNode::Server(server), DynamoMsg::Peer(peer)) => server.on_peer(ctx, from, peer),
            (DynamoNode::Server(_), DynamoMsg::Reply(_)) => {}
            (DynamoNode::Client(client), msg) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, DynamoMsg>, timer: TimerId, tag: u64) {
        match self {
            DynamoNode::Server(server) => server.on_tick(ctx),
            DynamoNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// Builds a Dynamo cluster: storage nodes `n1..nN`, clients `c1..cM`.
pub fn build_simulation(spec: &ClusterSpec) -> Result<Simulation<DynamoNode>, String> {
    let params: DynamoParams = spec.params()?;
    params.validate(spec.nodes)?;
    let layout = ClusterLayout::of(spec);
    let servers = layout.servers.clone();
    let workload = spec.workload.clone();
    let client = DynamoClient { resend_ms: params.client_resend_ms };
    build_cluster(
        spec,
        move |index, storage| {
            let id = NodeId(index as u32);
            DynamoNode::Server(Box::new(DynamoServer::recover(id, servers.clone(), params.clone(), storage)))
        },
        move |index| {
            DynamoNode::Client(Box::new(WorkloadClient::new(client.clone(), &workload, index, layout.servers.clone())))
        },
    )
}

fn build_boxed(spec: &ClusterSpec) -> Result<Box<dyn detsim_core::AnySimulation>, String> {
    Ok(Box::new(build_simulation(spec)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "dynamo",
        description: "Dynamo-style leaderless quorum store: N/R/W, sloppy quorum, hinted handoff, read repair (AP)",
        workloads: &[WorkloadKind::Register, WorkloadKind::KeyValue],
        build: build_boxed,
    }]
}
