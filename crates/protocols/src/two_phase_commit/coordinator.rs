//! The coordinator (transaction manager): runs two-phase commit for each client transaction.
//!
//! 1. Split the transaction's micro-ops by the participant that owns each key and send each its
//!    share in a `Prepare`.
//! 2. Collect the votes. Any *no*, or votes missing after `vote_timeout_ns`: abort. All *yes*:
//!    write the commit decision to durable storage — the commit point — then tell the client
//!    (with the reads the participants returned) and the participants.
//! 3. Resend the commit to participants that have not confirmed it (`Done`) until all have; then
//!    forget the transaction.
//!
//! Presumed abort (Mohan, Lindsay and Obermarck, "Transaction Management in the R* Distributed
//! Database Management System", ACM TODS 11(4), 1986): aborts are never logged, and a coordinator
//! asked about a transaction it has no commit record for answers *abort*. That is what a restarted
//! coordinator does for every transaction that was still collecting votes when it crashed; its
//! logged commits it resends. Until it is back, participants that voted yes are in doubt and
//! blocked (see the participant module): the classic weakness of two-phase commit that three-phase
//! commit and Paxos Commit (Gray and Lamport, "Consensus on Transaction Commit", ACM TODS 31(1),
//! 2006) remove by replacing the single coordinator's decision with one a quorum can recover.
//!
//! Deliberate bug `bug_no_decision_log`: the commit decision is not written before the commit
//! messages go out, so a coordinator that crashes while they are on the way presumes abort for a
//! transaction some participants have already committed: atomicity is lost.

use super::msg::{timer_tag, txn_id, MicroOp, TpcMsg, TxnId, Vote};
use crate::workload::{ClientReply, ClientRequest, ReplyResult};
use detsim_core::{Ctx, Node, NodeId, ProcessId, Storage, TimerId, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Settings of a coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoordinatorParams {
    /// How long to wait for every vote before aborting.
    pub vote_timeout_ns: u64,
    /// How often to resend a commit to participants that have not confirmed it.
    pub resend_ns: u64,
    /// Deliberate bug: do not log the commit decision before announcing it.
    pub bug_no_decision_log: bool,
}

impl Default for CoordinatorParams {
    fn default() -> Self {
        CoordinatorParams { vote_timeout_ns: 100_000_000, resend_ns: 50_000_000, bug_no_decision_log: false }
    }
}

/// Which participant owns a key: keys are spread round robin.
pub fn owner(key: i64, participants: &[NodeId]) -> NodeId {
    participants[key.rem_euclid(participants.len() as i64) as usize]
}

/// A commit decision as logged: who must hear it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CommitRecord {
    participants: Vec<NodeId>,
}

#[derive(Clone, Debug)]
struct Collecting {
    client: NodeId,
    request: ClientRequest,
    /// Each participant's micro-ops, and the index of each in the transaction.
    shares: BTreeMap<NodeId, Vec<(usize, MicroOp)>>,
    votes: BTreeMap<NodeId, Vec<Value>>,
    timer: TimerId,
}

/// Counters of a coordinator (volatile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoordinatorStats {
    pub started: u64,
    pub committed: u64,
    pub aborted: u64,
    /// Inquiries answered (commit from the log, or presumed abort).
    pub inquiries_answered: u64,
}

const COUNTER_KEY: &str = "coordinator/next";
const COMMIT_PREFIX: &str = "coordinator/commit/";
/// Client requests remembered after they finished, to answer network duplicates (a limit).
const RECENT_REQUESTS: usize = 10_000;

/// A coordinator node.
#[derive(Clone, Debug)]
pub struct Coordinator {
    params: CoordinatorParams,
    index: usize,
    participants: Vec<NodeId>,
    next: u64,
    collecting: BTreeMap<TxnId, Collecting>,
    /// Committed transactions whose participants have not all confirmed: who is still to.
    committing: BTreeMap<TxnId, BTreeSet<NodeId>>,
    /// (process, seq) of requests being run, and the replies of recent finished ones.
    running: BTreeMap<(ProcessId, u64), TxnId>,
    finished: BTreeMap<(ProcessId, u64), ReplyResult>,
    finished_order: VecDeque<(ProcessId, u64)>,
    resend_armed: bool,
    pub stats: CoordinatorStats,
}

impl Coordinator {
    /// Coordinator number `index`, rebuilt from `storage`: logged commits are resent.
    pub fn new(params: CoordinatorParams, index: usize, participants: Vec<NodeId>, storage: &Storage) -> Self {
        assert!(!participants.is_empty(), "validated: at least one participant");
        let mut committing = BTreeMap::new();
        for name in storage.keys_with_prefix(COMMIT_PREFIX) {
            let txn: TxnId = name[COMMIT_PREFIX.len()..].parse().expect("commit keys are ids");
            let record: CommitRecord = storage.get(name).expect("listed key exists");
            committing.insert(txn, record.participants.into_iter().collect());
        }
        Coordinator {
            params,
            index,
            participants,
            next: storage.get(COUNTER_KEY).unwrap_or(0),
            collecting: BTreeMap::new(),
            committing,
            running: BTreeMap::new(),
            finished: BTreeMap::new(),
            finished_order: VecDeque::new(),
            resend_armed: false,
            stats: CoordinatorStats::default(),
        }
    }

    /// Transactions still collecting votes (undecided).
    pub fn undecided(&self) -> Vec<TxnId> {
        self.collecting.keys().copied().collect()
    }

    /// Participants whose vote on `txn` has not come in (`None`: not collecting votes for it).
    pub fn awaiting_votes(&self, txn: TxnId) -> Option<Vec<NodeId>> {
        let collecting = self.collecting.get(&txn)?;
        Some(collecting.shares.keys().filter(|p| !collecting.votes.contains_key(p)).copied().collect())
    }

    /// Committed transactions not yet confirmed by every participant, with who is still to.
    pub fn unconfirmed_commits(&self) -> Vec<(TxnId, Vec<NodeId>)> {
        self.committing.iter().map(|(txn, waiting)| (*txn, waiting.iter().copied().collect())).collect()
    }

    fn arm_resend(&mut self, ctx: &mut Ctx<'_, TpcMsg>) {
        if !self.resend_armed && !self.committing.is_empty() {
            self.resend_armed = true;
            ctx.set_timer(Duration::from_nanos(self.params.resend_ns), timer_tag::make(timer_tag::RESEND_DECISIONS, 0));
        }
    }

    fn finish_request(
        &mut self,
        ctx: &mut Ctx<'_, TpcMsg>,
        client: NodeId,
        request: &ClientRequest,
        result: ReplyResult,
    ) {
        let id = (request.process, request.seq);
        self.running.remove(&id);
        self.finished.insert(id, result.clone());
        self.finished_order.push_back(id);
        if self.finished_order.len() > RECENT_REQUESTS {
            let oldest = self.finished_order.pop_front().expect("not empty");
            self.finished.remove(&oldest);
        }
        ctx.send(client, TpcMsg::Reply(ClientReply::to(request, result)));
    }

    fn start(&mut self, ctx: &mut Ctx<'_, TpcMsg>, client: NodeId, request: ClientRequest) {
        let id = (request.process, request.seq);
        if self.running.contains_key(&id) {
            return; // a duplicate of a request being run
        }
        if let Some(result) = self.finished.get(&id) {
            let reply = ClientReply::to(&request, result.clone());
            ctx.send(client, TpcMsg::Reply(reply));
            return;
        }
        let Some(micro_ops) = parse_txn(&request.op.value) else {
            let result = ReplyResult::Fail("not a list-append transaction".into());
            return self.finish_request(ctx, client, &request, result);
        };
        let txn = txn_id(self.index, self.next);
        self.next += 1;
        // Durable before use: a restarted coordinator never hands out an id twice.
        ctx.storage().put(COUNTER_KEY, &self.next);
        let mut shares: BTreeMap<NodeId, Vec<(usize, MicroOp)>> = BTreeMap::new();
        for (position, op) in micro_ops.into_iter().enumerate() {
            shares.entry(owner(op.key(), &self.participants)).or_default().push((position, op));
        }
        for (participant, ops) in &shares {
            let ops = ops.iter().map(|(_, op)| op.clone()).collect();
            ctx.send(*participant, TpcMsg::Prepare { txn, ops });
        }
        let wait = Duration::from_nanos(self.params.vote_timeout_ns);
        let timer = ctx.set_timer(wait, timer_tag::make(timer_tag::VOTE_TIMEOUT, txn));
        self.running.insert(id, txn);
        self.collecting.insert(txn, Collecting { client, request, shares, votes: BTreeMap::new(), timer });
        self.stats.started += 1;
    }

    fn abort(&mut self, ctx: &mut Ctx<'_, TpcMsg>, txn: TxnId, reason: &str) {
        let Some(collecting) = self.collecting.remove(&txn) else { return };
        ctx.cancel_timer(collecting.timer);
        // Presumed abort: nothing is logged; a participant that misses this asks and hears abort.
        for participant in collecting.shares.keys() {
            ctx.send(*participant, TpcMsg::Decision { txn, commit: false });
        }
        self.stats.aborted += 1;
        self.finish_request(
            ctx,
            collecting.client,
            &collecting.request,
            ReplyResult::Fail(format!("aborted: {reason}")),
        );
    }

    fn commit(&mut self, ctx: &mut Ctx<'_, TpcMsg>, txn: TxnId) {
        let collecting = self.collecting.remove(&txn).expect("committing a transaction that collected votes");
        ctx.cancel_timer(collecting.timer);
        let participants: Vec<NodeId> = collecting.shares.keys().copied().collect();
        if !self.params.bug_no_decision_log {
            // The commit point: once this is durable the transaction is committed, whatever crashes.
            ctx.storage().put(&format!("{COMMIT_PREFIX}{txn}"), &CommitRecord { participants: participants.clone() });
        }
        for participant in &participants {
            ctx.send(*participant, TpcMsg::Decision { txn, commit: true });
        }
        self.committing.insert(txn, participants.into_iter().collect());
        self.arm_resend(ctx);
        // The transaction as the client sees it: its reads filled in from the votes.
        let mut filled = parse_txn_values(&collecting.request.op.value);
        for (participant, ops) in &collecting.shares {
            let reads = &collecting.votes[participant];
            let read_positions = ops.iter().filter(|(_, op)| matches!(op, MicroOp::Read { .. })).map(|(i, _)| *i);
            for (position, value) in read_positions.zip(reads) {
                if let Value::List(items) = &mut filled[position] {
                    items[2] = value.clone();
                }
            }
        }
        self.stats.committed += 1;
        self.finish_request(ctx, collecting.client, &collecting.request, ReplyResult::Ok(Value::List(filled)));
    }

    fn vote(&mut self, ctx: &mut Ctx<'_, TpcMsg>, from: NodeId, txn: TxnId, vote: Vote) {
        let Some(collecting) = self.collecting.get_mut(&txn) else {
            return; // decided already (a late or duplicated vote)
        };
        if !collecting.shares.contains_key(&from) {
            return;
        }
        match vote {
            Vote::No { reason } => self.abort(ctx, txn, &reason),
            Vote::Yes { reads } => {
                let expected =
                    collecting.shares[&from].iter().filter(|(_, op)| matches!(op, MicroOp::Read { .. })).count();
                assert_eq!(reads.len(), expected, "a yes vote carries one result per read");
                collecting.votes.insert(from, reads);
                if collecting.votes.len() == collecting.shares.len() {
                    self.commit(ctx, txn);
                }
            }
        }
    }

    fn done(&mut self, txn: TxnId, from: NodeId, ctx: &mut Ctx<'_, TpcMsg>) {
        let Some(waiting) = self.committing.get_mut(&txn) else { return };
        waiting.remove(&from);
        if waiting.is_empty() {
            self.committing.remove(&txn);
            // Everyone has it: the record may go (the "end" record of the R* protocols).
            ctx.storage().remove(&format!("{COMMIT_PREFIX}{txn}"));
        }
    }

    fn inquire(&mut self, ctx: &mut Ctx<'_, TpcMsg>, from: NodeId, txn: TxnId) {
        if self.collecting.contains_key(&txn) {
            return; // still collecting votes: no decision to tell yet
        }
        // A commit not yet confirmed by `from` is in `committing`; anything else we do not know
        // of was aborted, or never committed before a crash: presumed abort.
        let commit = self.committing.get(&txn).is_some_and(|waiting| waiting.contains(&from));
        self.stats.inquiries_answered += 1;
        ctx.send(from, TpcMsg::Decision { txn, commit });
    }
}

/// The micro-ops of a list-append transaction value: `[["append" k v] ["r" k nil] ...]`.
pub fn parse_txn(value: &Value) -> Option<Vec<MicroOp>> {
    value
        .as_list()?
        .iter()
        .map(|micro| {
            let [f, key, v] = micro.as_list()? else { return None };
            let key = key.as_int()?;
            match f.as_str()? {
                "append" => Some(MicroOp::Append { key, value: v.clone() }),
                "r" => Some(MicroOp::Read { key }),
                _ => None,
            }
        })
        .collect()
}

fn parse_txn_values(value: &Value) -> Vec<Value> {
    value.as_list().expect("parsed before").to_vec()
}

impl Node for Coordinator {
    type Msg = TpcMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, TpcMsg>) {
        if !self.committing.is_empty() {
            ctx.annotate(format!(
                "coordinator restarted: resending {} logged commits; every other transaction it ran is presumed aborted",
                self.committing.len()
            ));
            let resend: Vec<(TxnId, Vec<NodeId>)> =
                self.committing.iter().map(|(t, w)| (*t, w.iter().copied().collect())).collect();
            for (txn, waiting) in resend {
                for participant in waiting {
                    ctx.send(participant, TpcMsg::Decision { txn, commit: true });
                }
            }
            self.arm_resend(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, TpcMsg>, from: NodeId, msg: TpcMsg) {
        match msg {
            TpcMsg::Request(request) => self.start(ctx, from, request),
            TpcMsg::VoteMsg { txn, vote } => self.vote(ctx, from, txn, vote),
            TpcMsg::Done { txn } => self.done(txn, from, ctx),
            TpcMsg::Inquire { txn } => self.inquire(ctx, from, txn),
            _ => {} // not for a coordinator
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, TpcMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::VOTE_TIMEOUT => self.abort(ctx, id, "votes timed out"),
            timer_tag::RESEND_DECISIONS => {
                self.resend_armed = false;
                let resend: Vec<(TxnId, Vec<NodeId>)> =
                    self.committing.iter().map(|(t, w)| (*t, w.iter().copied().collect())).collect();
                for (txn, waiting) in resend {
                    for participant in waiting {
                        ctx.send(participant, TpcMsg::Decision { txn, commit: true });
                    }
                }
                self.arm_resend(ctx);
            }
            _ => panic!("unknown coordinator timer tag {tag:#x}"),
        }
    }
}
