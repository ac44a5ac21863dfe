//! Primary-backup (passive) replication with a view service: one primary executes client operations
//! and ships them to its backups; a view service watches heartbeats and fails over to a backup.
//! After Alsberg & Day, "A Principle for Resilient Sharing of Distributed Resources" (ICSE 1976), and
//! Budhiraja, Marzullo, Schneider & Toueg, "The Primary-Backup Approach" (Distributed Systems, 2nd
//! ed., 1993); the view service follows the MIT 6.824 primary/backup labs and the configuration
//! master of van Renesse & Schneider's chain replication (OSDI 2004).
//!
//! # The algorithm
//! A *view* is a numbered configuration: one primary and a list of backups. The view service (node
//! `vs`, after the clients) is the only one that makes views. Every server pings it every
//! `ping_interval_ms`; a server silent for `dead_after_ms` is declared dead. When the primary dies the
//! view service promotes a backup, when a backup dies (or the primary reports that it stopped
//! answering) it drops it, and a server that has been up for a while joins again as a backup. At the
//! start of each view the primary sends its whole state to every backup (*state transfer*). It then
//! executes each client operation in order, numbers it, and forwards it to every backup; a backup
//! applies forwarded operations in number order and acknowledges the highest it applied. In
//! **synchronous** mode the primary answers the client only once every backup of the view
//! acknowledged the operation, reads included; in **asynchronous** mode it answers at once and lets
//! the backups catch up. Every server writes its state to durable storage before it acknowledges or
//! answers, so a crash loses nothing it promised.
//!
//! Failover is safe because of two rules. *Fencing*: a backup refuses anything stamped with a view
//! older than its own (and tells the sender about the newer view), so once any backup of view v has
//! moved on, the primary of v can complete nothing more; because reads need every backup's
//! acknowledgement too, a deposed primary cannot even serve a stale read. *Completeness*: the view
//! service only promotes a server it knows holds every acknowledged operation: a member of the view
//! that carried over from a confirmed view, or that the primary confirmed it finished state transfer
//! to. When no such server is alive, the view service waits rather than lose data.
//!
//! # Guarantees
//! Synchronous mode is linearizable under crashes and restarts (storage survives), message loss,
//! duplication and reordering, partitions of any shape (the view service included), pauses and
//! clock faults: clocks only drive failure detection, never safety. It stays available while the
//! view service, the primary and every backup can talk, and recovers once a server that holds every
//! acknowledged operation reaches the view service again. Asynchronous mode answers faster and
//! without the backups, and pays for it: a failover **loses acknowledged writes** the backups had not
//! received yet, and a primary cut off from the view service but reachable by clients keeps serving
//! after a backup took over — **split brain** — so it answers stale reads and accepts writes that
//! the new primary never sees. The linearizability checker reports both.
//!
//! # Not tolerated
//! A crashed or partitioned view service stops failover (the cluster stays safe, and stays available
//! only as long as its view works); a real deployment replicates it with Paxos or Raft. Synchronous
//! mode waits for the slowest backup, and until the view service removes a silent backup (a few
//! hundred milliseconds) every operation stalls. Byzantine servers and lost durable storage are not
//! handled.
//!
//! # Bug switches
//! `mutant_ack_before_apply` (a backup acknowledges each operation when it arrives, before it applied
//! it and the ones before it: after a lost message the primary believes the backup has operations
//! it never got), `mutant_no_fencing` (backups accept operations and state transfers from any view,
//! so a deposed primary keeps completing them), `mutant_local_reads` (the primary answers reads from
//! its own state without a round to the backups: a deposed primary answers stale reads). The
//! linearizability checker catches each (tests/primary_backup.rs).

pub mod server;
pub mod view_service;

pub use server::PbServer;
pub use view_service::ViewService;

use crate::configuration_service::{self, check_heartbeat_periods};
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{
    ClientProtocol, ClientReply, ClientRequest, ClusterLayout, RetryPolicy, StateMachine, WorkloadClient,
};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Simulation, TimerId};
use serde::{Deserialize, Serialize};

/// When the primary answers a client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicationMode {
    /// After every backup of the view acknowledged the operation (linearizable).
    #[default]
    Sync,
    /// At once; backups are updated in the background (fast; loses writes on failover).
    Async,
}

/// Protocol parameters, as a scenario's `[protocol.params]` sets them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PbParams {
    pub mode: ReplicationMode,
    /// Every node's periodic tick; the periods below are checked on it.
    pub tick_ms: u64,
    /// Servers ping the view service this often (the heartbeat).
    pub ping_interval_ms: u64,
    /// The view service declares a server dead after this long without a ping.
    pub dead_after_ms: u64,
    /// The primary reports a backup that has not caught up for this long, and the view service
    /// drops it from the view.
    pub backup_timeout_ms: u64,
    /// A server the view service does not count on joins a view again once it has pinged for this
    /// long (and the primary has not reported it for this long).
    pub rejoin_after_ms: u64,
    /// The primary resends its state to a backup that is behind this often.
    pub retransmit_ms: u64,
    /// A client resends an unanswered request to another server after this long.
    pub client_resend_ms: u64,
    /// MUTANT: a backup acknowledges an operation on arrival, before applying it (and those before it).
    pub mutant_ack_before_apply: bool,
    /// MUTANT: backups do not compare view numbers: a deposed primary keeps completing operations.
    pub mutant_no_fencing: bool,
    /// MUTANT: the primary answers reads from its own state without asking its backups.
    pub mutant_local_reads: bool,
}

impl Default for PbParams {
    fn default() -> Self {
        PbParams {
            mode: ReplicationMode::Sync,
            tick_ms: 10,
            ping_interval_ms: 20,
            dead_after_ms: 200,
            backup_timeout_ms: 150,
            rejoin_after_ms: 300,
            retransmit_ms: 40,
            client_resend_ms: 250,
            mutant_ack_before_apply: false,
            mutant_no_fencing: false,
            mutant_local_reads: false,
        }
    }
}

impl PbParams {
    pub fn any_mutant(&self) -> bool {
        self.mutant_ack_before_apply || self.mutant_no_fencing || self.mutant_local_reads
    }

    fn validate(&self) -> Result<(), String> {
        let periods = [
            ("tick_ms", self.tick_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("dead_after_ms", self.dead_after_ms),
            ("backup_timeout_ms", self.backup_timeout_ms),
            ("retransmit_ms", self.retransmit_ms),
            ("client_resend_ms", self.client_resend_ms),
        ];
        check_heartbeat_periods(&periods, self.ping_interval_ms, self.dead_after_ms)
    }
}

/// A numbered configuration: who is primary, who are the backups.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct View {
    /// 0 is "no view yet"; views count up from 1.
    pub number: u64,
    pub primary: Option<NodeId>,
    pub backups: Vec<NodeId>,
}

impl View {
    /// The primary and the backups.
    pub fn members(&self) -> Vec<NodeId> {
        self.primary.iter().chain(&self.backups).copied().collect()
    }
    pub fn is_backup(&self, id: NodeId) -> bool {
        self.backups.contains(&id)
    }
}

/// Everything a primary-backup node sends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PbMsg {
    Request(ClientRequest),
    Reply(ClientReply),
    /// Server to view service, the heartbeat: the view the server is in; a primary adds whether
    /// every backup finished state transfer in that view, and the backups that stopped answering.
    Ping {
        view: u64,
        synced: bool,
        unreachable: Vec<NodeId>,
    },
    /// View service to server: the current view.
    ViewIs {
        view: View,
    },
    /// Primary to backup: state transfer, the whole state after operation `seq`.
    Sync {
        view: View,
        seq: u64,
        state: Box<StateMachine>,
    },
    SyncAck {
        view: u64,
        seq: u64,
    },
    /// Primary to backup: operation number `seq` of the view.
    Forward {
        view: u64,
        seq: u64,
        request: ClientRequest,
    },
    /// Backup to primary: "I applied every operation up to `seq` in `view`".
    ForwardAck {
        view: u64,
        seq: u64,
    },
    /// Backup to an out-of-date primary: the newer view it is in (the fence).
    Stale {
        view: View,
    },
}

impl Message for PbMsg {
    fn kind(&self) -> &'static str {
        match self {
            PbMsg::Request(_) => "Request",
            PbMsg::Reply(_) => "Reply",
            PbMsg::Ping { .. } => "Ping",
            PbMsg::ViewIs { .. } => "ViewIs",
            PbMsg::Sync { .. } => "Sync",
            PbMsg::SyncAck { .. } => "SyncAck",
            PbMsg::Forward { .. } => "Forward",
            PbMsg::ForwardAck { .. } => "ForwardAck",
            PbMsg::Stale { .. } => "Stale",
        }
    }
}

/// How workload clients talk to primary-backup: sticky to the primary, following redirects,
/// resending unanswered requests to another server, and retrying unknown outcomes (safe: the
/// replicated state machine executes each request at most once).
#[derive(Clone, Debug)]
pub struct PbClient {
    resend_ms: u64,
}

impl ClientProtocol for PbClient {
    type Msg = PbMsg;
    fn wrap_request(&self, request: ClientRequest) -> PbMsg {
        PbMsg::Request(request)
    }
    fn into_reply(&self, msg: PbMsg) -> Option<ClientReply> {
        match msg {
            PbMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { resend_ms: Some(self.resend_ms), retry_unknown: true, ..RetryPolicy::default() }
    }
}

/// A node of a primary-backup simulation.
pub enum PbNode {
    Server(Box<PbServer>),
    ViewService(Box<ViewService>),
    Client(Box<WorkloadClient<PbClient>>),
}

impl PbNode {
    pub fn server(&self) -> Option<&PbServer> {
        match self {
            PbNode::Server(server) => Some(server),
            _ => None,
        }
    }
    pub fn view_service(&self) -> Option<&ViewService> {
        match self {
            PbNode::ViewService(vs) => Some(vs),
            _ => None,
        }
    }
}

impl Node for PbNode {
    type Msg = PbMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        match self {
            PbNode::Server(server) => server.on_start(ctx),
            PbNode::ViewService(vs) => vs.on_start(ctx),
            PbNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, PbMsg>, from: NodeId, msg: PbMsg) {
        match self {
            PbNode::Server(server) => server.on_message(ctx, from, msg),
            PbNode::ViewService(vs) => vs.on_message(ctx, from, msg),
            PbNode::Client(client) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, PbMsg>, timer: TimerId, tag: u64) {
        match self {
            PbNode::Server(server) => server.on_tick(ctx),
            PbNode::ViewService(vs) => vs.on_tick(ctx),
            PbNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// The name of the view service node (it comes after the clients).
pub const VIEW_SERVICE_NAME: &str = "vs";

/// The view service's node id in a simulation built from `spec`.
pub fn view_service_id(spec: &ClusterSpec) -> NodeId {
    configuration_service::service_id(spec)
}

/// Builds a primary-backup cluster: servers `n1..nN`, clients `c1..cM`, then the view service `vs`.
pub fn build_simulation(spec: &ClusterSpec) -> Result<Simulation<PbNode>, String> {
    let params: PbParams = spec.params()?;
    params.validate()?;
    let layout = ClusterLayout::of(spec);
    let servers = layout.servers.clone();
    let vs = view_service_id(spec);
    let kind = spec.workload.kind;
    let workload = spec.workload.clone();
    let client = PbClient { resend_ms: params.client_resend_ms };
    let server_params = params.clone();
    configuration_service::build_with_service(
        spec,
        move |index, storage| {
            let id = NodeId(index as u32);
            PbNode::Server(Box::new(PbServer::recover(id, vs, server_params.clone(), kind, storage)))
        },
        move |index| {
            PbNode::Client(Box::new(WorkloadClient::new(client.clone(), &workload, index, layout.servers.clone())))
        },
        VIEW_SERVICE_NAME,
        move |id, storage| {
            PbNode::ViewService(Box::new(ViewService::recover(id, servers.clone(), params.clone(), storage)))
        },
    )
}

/// The server that acts as primary in the newest view any server knows (for isolate-the-leader
/// faults and figures).
pub fn primary(sim: &Simulation<PbNode>) -> Option<NodeId> {
    configuration_service::newest_leader(sim, |node| node.server().filter(|s| s.is_primary()).map(|s| s.view().number))
}

fn build_boxed(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build_simulation(spec)?))
}

fn build_async_boxed(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    let mut spec = spec.clone();
    let mut params = match spec.params.take() {
        serde_json::Value::Null => serde_json::Map::new(),
        serde_json::Value::Object(map) => map,
        other => return Err(format!("protocol parameters: expected a table, found {other}")),
    };
    if params.get("mode").is_some_and(|mode| mode != "async") {
        return Err("primary-backup-async runs in async mode; use primary-backup for sync".into());
    }
    params.insert("mode".into(), serde_json::Value::from("async"));
    spec.params = serde_json::Value::Object(params);
    build_boxed(&spec)
}

const WORKLOADS: &[WorkloadKind] = &[
    WorkloadKind::Register,
    WorkloadKind::KeyValue,
    WorkloadKind::Counter,
    WorkloadKind::Set,
    WorkloadKind::ListAppend,
    WorkloadKind::RwRegister,
];

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![
        ProtocolEntry {
            name: "primary-backup",
            description:
                "Primary-backup with a view service, heartbeats and fenced failover (mode = sync: linearizable)",
            workloads: WORKLOADS,
            build: build_boxed,
        },
        ProtocolEntry {
            name: "primary-backup-async",
            description: "Primary-backup answering before the backups ack: loses acked writes on failover, split brain",
            workloads: WORKLOADS,
            build: build_async_boxed,
        },
    ]
}
