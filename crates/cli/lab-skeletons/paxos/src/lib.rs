//! Lab 7: Multi-Paxos. Write your replicated log in this file; `cargo test --offline` grades it (the
//! guide is docs/labs/07-paxos.md in the detsim repository). Everything marked TODO is yours; the
//! client side (`Msg::Request`, `Msg::Reply`, `LabServer`, `build`) is already wired to the grader.
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::prelude::*;

/// Timer tags (yours to extend).
const TICK_TIMER: u64 = 1;

/// A ballot: a round number made unique by the proposer's id, ordered round first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub proposer: u32,
}

/// Everything servers and clients send. Client traffic is given; add the two phases of Paxos.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Request(ClientRequest),
    Reply(ClientReply),
    // TODO: Prepare { ballot: Ballot, first_slot: u64 },
    // TODO: Promise { ballot: Ballot, accepted: Vec<(u64, Ballot, ClientRequest)> },
    // TODO: Accept { ballot: Ballot, slot: u64, request: ClientRequest },
    // TODO: Accepted { ballot: Ballot, slot: u64 },
    // TODO: Decided { slot: u64, request: ClientRequest },
    // TODO: Nack { promised: Ballot },
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
        }
    }
}

/// One Multi-Paxos server: proposer, acceptor and learner at once.
pub struct Server {
    setup: ServerSetup,
    /// The replicated state machine: apply decided slots in order with `state.apply_request(&request)`.
    state: StateMachine,
    // TODO: acceptor state, durable (write it to `ctx.storage()` before answering): the highest
    // ballot promised, and per slot the ballot and value accepted.
    // TODO: proposer state: your ballot, whether phase 1 succeeded, the next free slot, the
    // clients waiting per slot; learner state: decided slots, the next slot to apply.
}

impl Server {
    /// Builds server `setup.id`, at the first start (empty storage) and after every crash.
    pub fn new(setup: ServerSetup, storage: &Storage) -> Self {
        // TODO: recover the acceptor's promises and accepted values from `storage`.
        Server { state: StateMachine::new(setup.workload), setup }
    }
}

impl Node for Server {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // TODO: a periodic tick drives heartbeats, retransmissions and leader timeouts:
        // ctx.set_timer(Duration::from_millis(10), TICK_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(request) => {
                // TODO: the leader proposes `request` in its next free slot; once the slot is
                // decided and applied it answers: ctx.send(from, Msg::Reply(ClientReply::to(&request, result)));
                // Other servers answer ReplyResult::Redirect(Some(leader)).
            }
            Msg::Reply(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        // TODO: heartbeats from the leader; a follower that hears none for a randomized timeout
        // starts phase 1 with a higher ballot; resend unanswered Prepare/Accept messages.
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
