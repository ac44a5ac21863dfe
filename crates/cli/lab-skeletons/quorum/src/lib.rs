//! Lab 5: quorum replication and CAP. Write a leaderless, always-available replicated register store
//! in this file; `cargo test --offline` grades it (the guide is docs/labs/05-quorum.md in the detsim
//! repository). Everything marked TODO is yours; the client side is already wired to the grader.
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::prelude::*;

/// Timer tags (yours to extend).
const TICK_TIMER: u64 = 1;

/// A version of a value: last writer wins, ties broken by the coordinator's id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Version {
    pub time_ns: i64,
    pub coordinator: u32,
}

/// Everything servers and clients send. Client traffic is given; add replica traffic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Request(ClientRequest),
    Reply(ClientReply),
    // TODO: Store { key: Value, version: Version, value: Value, request_id: u64 },
    // TODO: Stored { request_id: u64 },
    // TODO: Fetch { key: Value, request_id: u64 },
    // TODO: Fetched { request_id: u64, version: Version, value: Value },
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
        }
    }
}

/// One replica, which also coordinates the client requests it receives.
pub struct Server {
    setup: ServerSetup,
    // TODO: per key, the newest (version, value) this replica stores (durably: `ctx.storage()`).
    // TODO: per client request being coordinated: acknowledgements or replies so far.
    // TODO: anything you need to converge after a partition: hints for unreachable replicas,
    // periodic anti-entropy with a peer, read repair.
}

impl Server {
    /// Builds replica `setup.id`, at the first start (empty storage) and after every crash.
    pub fn new(setup: ServerSetup, storage: &Storage) -> Self {
        // TODO: recover the stored versions from `storage`.
        Server { setup }
    }
}

impl Node for Server {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // TODO: a periodic tick for timeouts, hinted handoff and anti-entropy:
        // ctx.set_timer(Duration::from_millis(10), TICK_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(request) => {
                // TODO: coordinate: a `write` gets a new Version (ctx.now() and your id) and goes to
                // the key's replicas; answer ReplyResult::Ok(value written) after W acknowledgements.
                // A `read` asks the replicas and answers ReplyResult::Ok(newest value) after R replies
                // (Value::Nil when never written). Refuse `cas`: ReplyResult::Fail("no cas".into()).
                // Reply with ctx.send(from, Msg::Reply(ClientReply::to(&request, result))).
            }
            Msg::Reply(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        // TODO: give up on silent replicas (ask others instead: a sloppy quorum), hand hints back,
        // exchange versions with a peer.
    }
}

impl LabServer for Server {
    fn request(request: ClientRequest) -> Msg {
        Msg::Request(request)
    }
    fn reply(msg: Msg) -> Option<ClientReply> {
        match msg {
            Msg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    /// Leaderless: any replica coordinates, so clients do not stick to one.
    fn sticky_leader() -> bool {
        false
    }
}

/// Builds a cluster of your replicas with the lab's clients: the grader calls this for every run.
pub fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    build_servers(spec, Server::new)
}
