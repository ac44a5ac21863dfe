//! CRDT replication: state-based conflict-free replicated data types kept in sync by gossip, after
//! Shapiro, Preguiça, Baquero & Zawirski, "Conflict-free Replicated Data Types" (SSS 2011) and "A
//! comprehensive study of Convergent and Commutative Replicated Data Types" (INRIA RR-7506, 2011).
//!
//! # The algorithm
//! Every replica holds a full copy of each object and applies a client's update to its own copy at
//! once, answering without talking to anyone: there is no leader, no quorum and nothing to wait
//! for. The objects are *join semi-lattices*: their states are ordered, an update only moves a state
//! up, and `merge` computes the least upper bound of two states, which makes it commutative,
//! associative and idempotent. Replicas therefore need no agreement on the order of updates:
//! each replica sends its whole state to one peer after another (push-pull anti-entropy, round
//! robin so every pair meets), and whatever order, duplication or delay the network adds, replicas
//! that have received the same updates hold the same state. Three types are provided: the
//! **G-counter** (one entry per replica, raised only by its owner; value = sum, merge = pointwise
//! max), the **PN-counter** (a G-counter of increments and one of decrements) and the
//! **observed-remove set** (each add carries a unique tag; a remove tombstones the tags it has
//! seen, so an add concurrent with a remove wins). Replicas keep their state on durable storage,
//! written before they answer, and count each client request once (duplicated messages are not
//! counted twice).
//!
//! # Guarantees
//! Always available: any replica a client reaches answers, during any partition. Strong eventual
//! consistency: once updates stop and gossip gets through, every replica holds the same state, and
//! that state reflects every acknowledged update (a counter's value is the sum of the acknowledged
//! amounts plus some of the unknown ones; a set holds every element whose add no remove saw).
//! Tolerates crashes with durable storage, message loss, duplication and reordering, partitions of
//! any shape, pauses and clock faults (clocks play no part).
//!
//! # Not tolerated (by design)
//! Linearizability, or any guarantee on reads before convergence: a read sees its replica's state,
//! which may miss updates made elsewhere. No invariants across replicas (a counter cannot be kept
//! non-negative). Tombstones and per-replica entries grow with history and membership; garbage
//! collection needs coordination. A client that retries an update at another replica after a
//! timeout would count it twice, so clients here do not resend.
//!
//! # Bug switches
//! `mutant_merge_sum` (counters merge by adding entries: repeated gossip double counts),
//! `mutant_merge_totals` (counters keep the state with the larger total: concurrent increments are
//! lost), `mutant_decrement_own_entry` (a PN-counter decrement lowers the replica's increment
//! entry, which a max-merge resurrects), `mutant_remove_by_element` (an OR-set remove hides the
//! element itself, dropping adds it never saw) and `mutant_merge_drops_tombstones` (removes never
//! spread). The convergence checks of tests/crdt.rs catch each.

pub mod replica;
pub mod types;

pub use replica::CrdtReplica;
pub use types::{Crdt, CrdtMutants, GCounter, OrSet, PnCounter};

use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{
    build_cluster, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, OpMix, RetryPolicy, WorkloadClient,
};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, SimRng, Simulation, TimerId, Value};
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Which object the replicas hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrdtKind {
    #[default]
    GCounter,
    PnCounter,
    OrSet,
}

impl CrdtKind {
    /// The workload whose operations this object serves.
    pub fn workload(self) -> WorkloadKind {
        match self {
            CrdtKind::GCounter | CrdtKind::PnCounter => WorkloadKind::Counter,
            CrdtKind::OrSet => WorkloadKind::Set,
        }
    }

    /// The operations clients draw: a PN-counter also decrements, an OR-set also removes (from a
    /// few elements, so that adds and removes of one element meet).
    pub fn op_mix(self) -> OpMix {
        match self {
            CrdtKind::GCounter => OpMix::Standard,
            CrdtKind::PnCounter => OpMix::CounterWithDecrements,
            CrdtKind::OrSet => OpMix::SetWithRemoves { elements: 6 },
        }
    }
}

/// Protocol parameters, as a scenario's `[protocol.params]` sets them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrdtParams {
    pub kind: CrdtKind,
    /// Each replica sends its state to its next peer this often.
    pub gossip_interval_ms: u64,
    /// MUTANT: counters merge by adding entries instead of taking the maximum.
    pub mutant_merge_sum: bool,
    /// MUTANT: counters merge by keeping the state with the larger total.
    pub mutant_merge_totals: bool,
    /// MUTANT: a PN-counter decrement lowers the replica's own increment entry.
    pub mutant_decrement_own_entry: bool,
    /// MUTANT: an OR-set remove hides the element, not the tags it saw.
    pub mutant_remove_by_element: bool,
    /// MUTANT: an OR-set merge keeps only its own tombstones.
    pub mutant_merge_drops_tombstones: bool,
}

impl Default for CrdtParams {
    fn default() -> Self {
        CrdtParams {
            kind: CrdtKind::GCounter,
            gossip_interval_ms: 50,
            mutant_merge_sum: false,
            mutant_merge_totals: false,
            mutant_decrement_own_entry: false,
            mutant_remove_by_element: false,
            mutant_merge_drops_tombstones: false,
        }
    }
}

impl CrdtParams {
    pub fn mutants(&self) -> CrdtMutants {
        CrdtMutants {
            merge_sum: self.mutant_merge_sum,
            merge_totals: self.mutant_merge_totals,
            decrement_own_entry: self.mutant_decrement_own_entry,
            remove_by_element: self.mutant_remove_by_element,
            merge_drops_tombstones: self.mutant_merge_drops_tombstones,
        }
    }

    fn validate(&self, workload: WorkloadKind) -> Result<(), String> {
        if self.gossip_interval_ms == 0 {
            return Err("gossip_interval_ms must be positive".into());
        }
        if workload != WorkloadKind::None && workload != self.kind.workload() {
            return Err(format!("a {:?} serves the {:?} workload, not {workload:?}", self.kind, self.kind.workload()));
        }
        Ok(())
    }
}

/// Everything a CRDT node sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CrdtMsg {
    Request(ClientRequest),
    Reply(ClientReply),
    /// A replica's whole state; `reply` asks the receiver to send its own back.
    Gossip {
        objects: Vec<(Value, Crdt)>,
        reply: bool,
    },
}

impl Message for CrdtMsg {
    fn kind(&self) -> &'static str {
        match self {
            CrdtMsg::Request(_) => "Request",
            CrdtMsg::Reply(_) => "Reply",
            CrdtMsg::Gossip { .. } => "Gossip",
        }
    }
}

/// How workload clients talk to CRDT replicas: a random replica at first, then the one that
/// answered (a session stays on one replica, so it reads its own writes); never a resend to
/// another replica, which would apply the same update twice. After a timeout new operations go
/// to a random replica, or to the next one in the list when the draw falls on a replica that went
/// silent since the last answer, so a client cut off from its replica finds a reachable one.
#[derive(Clone, Debug)]
pub struct CrdtClient;

impl ClientProtocol for CrdtClient {
    type Msg = CrdtMsg;
    fn wrap_request(&self, request: ClientRequest) -> CrdtMsg {
        CrdtMsg::Request(request)
    }
    fn into_reply(&self, msg: CrdtMsg) -> Option<ClientReply> {
        match msg {
            CrdtMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    fn first_server(&self, _client_index: usize, servers: &[NodeId], rng: &mut SimRng) -> NodeId {
        servers[rng.random_range(0..servers.len())]
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { resend_ms: None, retry_unknown: false, ..RetryPolicy::default() }
    }
    fn avoid_server_after_timeout(&self) -> bool {
        true
    }
}

/// A node of a CRDT simulation.
pub enum CrdtNode {
    Replica(Box<CrdtReplica>),
    Client(Box<WorkloadClient<CrdtClient>>),
}

impl CrdtNode {
    pub fn replica(&self) -> Option<&CrdtReplica> {
        match self {
            CrdtNode::Replica(replica) => Some(replica),
            CrdtNode::Client(_) => None,
        }
    }
}

impl Node for CrdtNode {
    type Msg = CrdtMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, CrdtMsg>) {
        match self {
            CrdtNode::Replica(replica) => replica.on_start(ctx),
            CrdtNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, CrdtMsg>, from: NodeId, msg: CrdtMsg) {
        match (self, msg) {
            (CrdtNode::Replica(replica), CrdtMsg::Request(request)) => replica.on_request(ctx, from, request),
            (CrdtNode::Replica(replica), CrdtMsg::Gossip { objects, reply }) => {
                replica.on_gossip(ctx, from, objects, reply)
            }
            (CrdtNode::Replica(_), CrdtMsg::Reply(_)) => {}
            (CrdtNode::Client(client), msg) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, CrdtMsg>, timer: TimerId, tag: u64) {
        match self {
            CrdtNode::Replica(replica) => replica.on_tick(ctx),
            CrdtNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// Builds a CRDT cluster: replicas `n1..nN`, clients `c1..cM` (the object is `params.kind`).
pub fn build_simulation(spec: &ClusterSpec) -> Result<Simulation<CrdtNode>, String> {
    let params: CrdtParams = spec.params()?;
    params.validate(spec.workload.kind)?;
    let layout = ClusterLayout::of(spec);
    let servers = layout.servers.clone();
    let workload = spec.workload.clone();
    let kind = params.kind;
    build_cluster(
        spec,
        move |index, storage| {
            let id = NodeId(index as u32);
            CrdtNode::Replica(Box::new(CrdtReplica::recover(id, &servers, kind, params.clone(), storage)))
        },
        move |index| {
            let client = WorkloadClient::new(CrdtClient, &workload, index, layout.servers.clone());
            CrdtNode::Client(Box::new(client.with_op_mix(kind.op_mix())))
        },
    )
}

/// `spec` with the protocol parameter `kind` set (refusing a different one).
fn with_kind(spec: &ClusterSpec, kind: &str) -> Result<ClusterSpec, String> {
    let mut spec = spec.clone();
    let mut params = match spec.params.take() {
        serde_json::Value::Null => serde_json::Map::new(),
        serde_json::Value::Object(map) => map,
        other => return Err(format!("protocol parameters: expected a table, found {other}")),
    };
    if params.get("kind").is_some_and(|given| given != kind) {
        return Err(format!("this entry replicates a {kind}; the kind parameter says otherwise"));
    }
    params.insert("kind".into(), serde_json::Value::from(kind));
    spec.params = serde_json::Value::Object(params);
    Ok(spec)
}

fn build_g_counter(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build_simulation(&with_kind(spec, "g-counter")?)?))
}
fn build_pn_counter(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build_simulation(&with_kind(spec, "pn-counter")?)?))
}
fn build_or_set(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build_simulation(&with_kind(spec, "or-set")?)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![
        ProtocolEntry {
            name: "crdt-gcounter",
            description: "G-counter CRDT: local increments, max-merge gossip; always available, converges",
            workloads: &[WorkloadKind::Counter],
            build: build_g_counter,
        },
        ProtocolEntry {
            name: "crdt-pncounter",
            description: "PN-counter CRDT: increments and decrements as two G-counters; always available, converges",
            workloads: &[WorkloadKind::Counter],
            build: build_pn_counter,
        },
        ProtocolEntry {
            name: "crdt-orset",
            description: "Observed-remove set CRDT: tagged adds, tombstoned removes, add wins; converges",
            workloads: &[WorkloadKind::Set],
            build: build_or_set,
        },
    ]
}
