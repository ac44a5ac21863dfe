//! Lab 4: primary-backup replication with a view service. Write the view service and the servers
//! in this file; `cargo test --offline` grades them (the guide is docs/labs/04-primary-backup.md in
//! the detsim repository). Everything marked TODO is yours; the client side (`Msg::Request`,
//! `Msg::Reply`, `LabServer`, `build`) is already wired to the grader's clients.
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::prelude::*;

/// Timer tags (yours to extend).
const TICK_TIMER: u64 = 1;

/// A numbered configuration: one primary and its backups. Views count up from 1 (0: none yet).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct View {
    pub number: u64,
    pub primary: Option<NodeId>,
    pub backups: Vec<NodeId>,
}

/// Everything servers, clients and the view service send. Client traffic is given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Request(ClientRequest),
    Reply(ClientReply),
    // TODO: Ping { view: u64 } (server to view service, every few ticks),
    // TODO: ViewIs { view: View } (view service to server),
    // TODO: StateTransfer { view: u64, seq: u64, state: StateMachine } (new primary to backup),
    // TODO: Forward { view: u64, seq: u64, request: ClientRequest } and ForwardAck { view: u64, seq: u64 },
    // TODO: Stale { view: View } (a backup fencing off a primary of an older view).
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
        }
    }
}

/// The view service: the only node that makes views. It never crashes in this lab.
pub struct ViewService {
    setup: ServerSetup,
    view: View,
    // TODO: when each server last pinged; whether the primary of the current view confirmed it
    // (only then may the service move on to the next view).
}

/// A server: the primary of the current view, a backup, or idle.
pub struct Server {
    setup: ServerSetup,
    /// The replicated state: the primary applies each request with `state.apply_request(&request)`
    /// (at most once per request), forwards it, and answers once every backup has it.
    state: StateMachine,
    view: View,
    // TODO: the next operation number, what each backup acknowledged, the clients waiting;
    // persist `state` and your view in `ctx.storage()` before you acknowledge or answer.
}

/// A node of the lab's cluster.
pub enum Replica {
    ViewService(ViewService),
    Server(Server),
}

impl Replica {
    /// Builds node `setup.id`: the view service if it is the extra node, else a server (at the first
    /// start with empty storage, after a crash with what it stored).
    pub fn new(setup: ServerSetup, storage: &Storage) -> Self {
        if setup.is_extra() {
            return Replica::ViewService(ViewService { setup, view: View::default() });
        }
        // TODO: recover the state and view from `storage`.
        Replica::Server(Server { state: StateMachine::new(setup.workload), setup, view: View::default() })
    }
}

impl Node for Replica {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // TODO: everyone ticks, e.g. ctx.set_timer(Duration::from_millis(10), TICK_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (Replica::Server(server), Msg::Request(request)) => {
                // TODO: the primary of the current view executes, forwards to every backup, and
                // answers with ctx.send(from, Msg::Reply(ClientReply::to(&request, result))) once
                // they all acknowledged; anyone else answers ReplyResult::Redirect(primary).
            }
            (Replica::ViewService(service), msg) => {
                // TODO: pings: note who is alive; answer with the current view.
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        // TODO: servers ping the view service (`setup.extra_nodes[0]`); the view service declares
        // silent servers dead and moves to a new view (promoting a backup that has everything).
    }
}

impl LabServer for Replica {
    fn request(request: ClientRequest) -> Msg {
        Msg::Request(request)
    }
    fn reply(msg: Msg) -> Option<ClientReply> {
        match msg {
            Msg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
}

/// Builds the servers, the lab's clients and the view service `vs`: the grader calls this.
pub fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    build_servers_and(spec, &["vs"], Replica::new)
}
