//! Lab 6: Raft. Write your Raft server in this file; `cargo test --offline` grades it (the guide is
//! docs/labs/06-raft.md in the detsim repository). Everything marked TODO is yours; the client side
//! (`Msg::Request`, `Msg::Reply`, `LabServer`, `build`) is already wired to the grader's clients.
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::prelude::*;

/// Timer tags (yours to extend).
const ELECTION_TIMER: u64 = 1;
const HEARTBEAT_TIMER: u64 = 2;

/// Everything servers and clients send. Client traffic is given; add Raft's two RPCs and their replies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Request(ClientRequest),
    Reply(ClientReply),
    // TODO: RequestVote { term: u64, last_log_index: u64, last_log_term: u64 },
    // TODO: Vote { term: u64, granted: bool },
    // TODO: AppendEntries { term: u64, prev_log_index: u64, prev_log_term: u64, entries: Vec<Entry>, leader_commit: u64 },
    // TODO: AppendReply { term: u64, success: bool, match_index: u64 },
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
        }
    }
}

/// One log entry: the term it was created in and the client request it carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub term: u64,
    pub request: ClientRequest,
}

/// One Raft server.
pub struct Server {
    setup: ServerSetup,
    /// The replicated state machine: apply each committed entry with `state.apply_request(&request)`,
    /// which executes every client request at most once and returns the reply's result.
    state: StateMachine,
    // TODO: persistent state (current_term, voted_for, log): write it to `ctx.storage()` before
    // answering any RPC, and read it back in `new` after a crash.
    // TODO: volatile state (role, commit_index, last_applied, next_index, match_index, the
    // clients waiting for each log index, the leader you believe in).
}

impl Server {
    /// Builds server `setup.id`, at the first start (empty storage) and after every crash.
    pub fn new(setup: ServerSetup, storage: &Storage) -> Self {
        // TODO: recover term, vote and log from `storage`, e.g. `storage.get::<u64>("term")`.
        Server { state: StateMachine::new(setup.workload), setup }
    }
}

impl Node for Server {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // TODO: arm a randomized election timeout, e.g. 150-300 ms:
        // let timeout_ms = ctx.rng().random_range(150..300);
        // ctx.set_timer(Duration::from_millis(timeout_ms), ELECTION_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(request) => {
                // TODO: the leader appends `request` to its log, replicates it, and once the entry
                // is committed and applied answers the client:
                //     ctx.send(from, Msg::Reply(ClientReply::to(&request, result)));
                // A follower answers ReplyResult::Redirect(Some(leader)) (or None if it knows no leader).
            }
            Msg::Reply(_) => {} // servers never receive replies
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        // TODO: ELECTION_TIMER: no leader heard from: start an election.
        // TODO: HEARTBEAT_TIMER: a leader sends AppendEntries (empty or not) to every peer.
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
}

/// Builds a cluster of your servers with the lab's clients: the grader calls this for every run.
pub fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    build_servers(spec, Server::new)
}
