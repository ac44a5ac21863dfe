//! The student's side of a replicated-service lab: implement [`LabServer`] for your server (a
//! [`Node`] whose message type carries detsim-protocols' client requests and replies), and
//! [`build_servers`] puts it in a cluster with the same workload clients the reference
//! implementations are graded with: servers `n1..nN`, then clients `c1..cM`.

use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, SimRng, Storage, TimerId};
use detsim_protocols::workload::{
    build_cluster, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, RetryPolicy, WorkloadClient,
};
use detsim_protocols::{ClusterSpec, WorkloadKind};
use std::marker::PhantomData;

/// A server of a replicated service: says how a client request travels inside its message type and
/// how a reply to a client is recognised. Servers answer each request with a [`ClientReply`]
/// (`ClientReply::to(&request, result)`) sent to the node the request came from.
pub trait LabServer: Node {
    /// Wraps a client request for a server.
    fn request(request: ClientRequest) -> Self::Msg;
    /// The client reply inside `msg`, if `msg` is one (clients ignore everything else).
    fn reply(msg: Self::Msg) -> Option<ClientReply>;
    /// Whether clients keep sending to the server that last answered (right for a leader or a
    /// primary; a leaderless store says `false`).
    fn sticky_leader() -> bool {
        true
    }
    /// How clients retry. The default resends an unanswered request to the next server after
    /// 300 ms and retries unknown outcomes: safe only because servers apply each request at most
    /// once (`StateMachine::apply_request` does).
    fn retry_policy() -> RetryPolicy {
        RetryPolicy { resend_ms: Some(300), retry_unknown: true, ..RetryPolicy::default() }
    }
    /// The servers clients send requests to (default: all of them; two-phase commit's clients talk
    /// to the coordinators only).
    fn client_targets(setup: &ServerSetup) -> Vec<NodeId> {
        setup.servers.clone()
    }
}

/// What a server is told when it is built (at the start, and again after each restart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSetup {
    /// This server's id (`n1` is `NodeId(0)`).
    pub id: NodeId,
    /// Every server's id, this one's included, in order.
    pub servers: Vec<NodeId>,
    /// What the clients do, so the state machine gives `add` its meaning (`StateMachine::new(kind)`).
    pub workload: WorkloadKind,
    /// The cluster's extra nodes (after the clients: a view service, a coordinator...), in the
    /// order [`build_servers_and`] was given their names. A node built with an id from this list
    /// plays that role.
    pub extra_nodes: Vec<NodeId>,
}

impl ServerSetup {
    /// Every server but this one.
    pub fn peers(&self) -> Vec<NodeId> {
        self.servers.iter().copied().filter(|s| *s != self.id).collect()
    }
    /// How many servers make a majority.
    pub fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }
    /// Whether this node is one of the extra nodes rather than a server.
    pub fn is_extra(&self) -> bool {
        self.extra_nodes.contains(&self.id)
    }
}

/// How workload clients address a [`LabServer`].
#[doc(hidden)]
pub struct Wire<S>(PhantomData<fn() -> S>);

impl<S> Clone for Wire<S> {
    fn clone(&self) -> Self {
        Wire(PhantomData)
    }
}

impl<S: LabServer> ClientProtocol for Wire<S> {
    type Msg = S::Msg;
    fn wrap_request(&self, request: ClientRequest) -> S::Msg {
        S::request(request)
    }
    fn into_reply(&self, msg: S::Msg) -> Option<ClientReply> {
        S::reply(msg)
    }
    fn first_server(&self, client_index: usize, servers: &[NodeId], _rng: &mut SimRng) -> NodeId {
        servers[client_index % servers.len()]
    }
    fn sticky_leader(&self) -> bool {
        S::sticky_leader()
    }
    fn retry_policy(&self) -> RetryPolicy {
        S::retry_policy()
    }
}

/// A node of a lab cluster: one of the student's servers or a workload client.
pub enum LabNode<S: LabServer> {
    Server(S),
    Client(WorkloadClient<Wire<S>>),
}

impl<S: LabServer> LabNode<S> {
    /// The server inside, if this node is one.
    pub fn server(&self) -> Option<&S> {
        match self {
            LabNode::Server(server) => Some(server),
            LabNode::Client(_) => None,
        }
    }
}

impl<S: LabServer> Node for LabNode<S>
where
    S::Msg: Message,
{
    type Msg = S::Msg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, S::Msg>) {
        match self {
            LabNode::Server(server) => server.on_start(ctx),
            LabNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, S::Msg>, from: NodeId, msg: S::Msg) {
        match self {
            LabNode::Server(server) => server.on_message(ctx, from, msg),
            LabNode::Client(client) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, S::Msg>, timer: TimerId, tag: u64) {
        match self {
            LabNode::Server(server) => server.on_timer(ctx, timer, tag),
            LabNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// Builds the cluster `spec` describes with `make(setup, storage)` as its servers (called at the
/// start with empty storage, and after each crash with what the server stored) and the lab's
/// workload clients. This is what a skeleton's `build` function calls.
pub fn build_servers<S: LabServer>(
    spec: &ClusterSpec,
    make: impl Fn(ServerSetup, &Storage) -> S + Clone + 'static,
) -> Result<Box<dyn AnySimulation>, String> {
    build_servers_and(spec, &[], make)
}

/// Like [`build_servers`], plus one extra node per name in `extra` after the clients (a view
/// service, say), also built by `make`: its `setup.id` is in `setup.extra_nodes`. The grader's
/// faults only ever hit the servers `n1..nN`; extra nodes stay up, reachable from every side of a
/// partition.
pub fn build_servers_and<S: LabServer>(
    spec: &ClusterSpec,
    extra: &[&str],
    make: impl Fn(ServerSetup, &Storage) -> S + Clone + 'static,
) -> Result<Box<dyn AnySimulation>, String> {
    let layout = ClusterLayout::of(spec);
    let first_extra = spec.nodes + spec.workload.clients;
    let extra_nodes: Vec<NodeId> = (0..extra.len()).map(|i| NodeId((first_extra + i) as u32)).collect();
    let kind = spec.workload.kind;
    let setup = move |id: NodeId| ServerSetup {
        id,
        servers: layout.servers.clone(),
        workload: kind,
        extra_nodes: extra_nodes.clone(),
    };
    let servers = S::client_targets(&setup(NodeId(0)));
    assert!(!servers.is_empty(), "clients need a server to talk to");
    let workload = spec.workload.clone();
    let server_setup = setup.clone();
    let server_make = make.clone();
    let mut sim = build_cluster(
        spec,
        move |index, storage| LabNode::Server(server_make(server_setup(NodeId(index as u32)), storage)),
        move |index| LabNode::Client(WorkloadClient::new(Wire(PhantomData), &workload, index, servers.clone())),
    )?;
    for (i, name) in extra.iter().enumerate() {
        let (make, setup) = (make.clone(), setup.clone());
        let id = NodeId((first_extra + i) as u32);
        let added = sim.add_node_with_clock(name, spec.clock(first_extra + i), move |_, storage| {
            LabNode::Server(make(setup(id), storage))
        });
        assert_eq!(added, id, "extra nodes come right after the clients");
    }
    Ok(Box::new(sim))
}
