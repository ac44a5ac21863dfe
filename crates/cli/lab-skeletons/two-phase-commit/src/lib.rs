//! Lab 8: two-phase commit. Write the coordinators and the participants in this file; `cargo test
//! --offline` grades them (the guide is docs/labs/08-two-phase-commit.md in the detsim repository).
//! Servers `n1 n2` coordinate, `n3..n5` hold the data (key `k` on participant `k mod 3`); clients
//! send list-append transactions to a coordinator.
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::prelude::*;

/// How many of the servers are coordinators (the rest are participants).
pub const COORDINATORS: usize = 2;

/// Timer tags (yours to extend).
const TICK_TIMER: u64 = 1;

/// A transaction's id: the client's (process, seq), unique in the run.
pub type TxnId = (u64, u64);

/// Everything coordinators, participants and clients send. Client traffic is given.
///
/// A transaction arrives as `request.op` with `f == "txn"` and a value that is a list of micro-ops,
/// each `["append", key, value]` or `["r", key, nil]`. The reply's `ReplyResult::Ok` carries the
/// same list with each read's nil replaced by the key's list as the transaction saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Request(ClientRequest),
    Reply(ClientReply),
    // TODO: Prepare { txn: TxnId, micro_ops: Vec<Value> } (coordinator to each participant involved),
    // TODO: Vote { txn: TxnId, yes: bool, reads: Vec<(i64, Value)> },
    // TODO: Decision { txn: TxnId, commit: bool } and DecisionAck { txn: TxnId },
    // TODO: Inquiry { txn: TxnId } (an in-doubt participant asking its coordinator).
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Request(_) => "Request",
            Msg::Reply(_) => "Reply",
        }
    }
}

/// A coordinator: runs the two phases for the transactions its clients send.
pub struct Coordinator {
    setup: ServerSetup,
    // TODO: per transaction: the participants involved, their votes, the client waiting.
    // TODO: the decision log, in `ctx.storage()`, written *before* any participant hears a commit.
}

/// A participant: holds the lists of its keys.
pub struct Participant {
    setup: ServerSetup,
    /// Each key's list (durable: write it to `ctx.storage()` when a transaction commits).
    lists: BTreeMap<i64, Vec<Value>>,
    // TODO: locks, and the prepared transactions (durable: a yes vote is a promise that survives
    // a crash); an in-doubt participant must wait for the decision, not guess.
}

/// A node of the lab's cluster.
pub enum Server {
    Coordinator(Coordinator),
    Participant(Participant),
}

impl Server {
    /// Builds server `setup.id` (at the first start with empty storage, after a crash with what it stored).
    pub fn new(setup: ServerSetup, storage: &Storage) -> Self {
        if setup.id.index() < COORDINATORS {
            // TODO: recover the decision log.
            Server::Coordinator(Coordinator { setup })
        } else {
            // TODO: recover the lists and the prepared transactions.
            Server::Participant(Participant { setup, lists: BTreeMap::new() })
        }
    }
}

impl Node for Server {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // TODO: a tick for vote timeouts, resending decisions and in-doubt inquiries:
        // ctx.set_timer(Duration::from_millis(10), TICK_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (Server::Coordinator(coordinator), Msg::Request(request)) => {
                // TODO: phase 1: send Prepare to every participant the transaction touches (key k lives
                // on participant number k mod (servers - COORDINATORS)); phase 2 once every vote is in
                // (or one is no, or a timeout passed): log the decision, then send it. Answer the
                // client with ctx.send(from, Msg::Reply(ClientReply::to(&request, result))):
                // ReplyResult::Ok(the filled-in micro-ops) on commit, ReplyResult::Fail on abort.
            }
            (Server::Participant(_), Msg::Request(request)) => {
                // Clients only talk to coordinators; this does not happen.
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        // TODO: coordinators abort transactions whose votes did not all arrive in time, and resend
        // unacknowledged decisions; in-doubt participants ask their coordinator again.
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
    /// Clients keep to one coordinator each.
    fn sticky_leader() -> bool {
        false
    }
    /// No resends: a transaction is not idempotent unless you make it so.
    fn retry_policy() -> RetryPolicy {
        RetryPolicy::default()
    }
    fn client_targets(setup: &ServerSetup) -> Vec<NodeId> {
        setup.servers[..COORDINATORS].to_vec()
    }
}

/// Builds the coordinators, the participants and the lab's clients: the grader calls this.
pub fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    build_servers(spec, Server::new)
}
