//! A participant (resource manager): owns some keys, each a list of values, and takes part in the
//! two phases of every transaction that touches them.
//!
//! - **Prepare**: lock every key the transaction touches here (exclusive locks, no waiting: a key
//!   locked by another transaction means a *no* vote, so transactions never wait on each other and
//!   cannot deadlock), compute the reads, write a durable prepare record (the appends and the
//!   locked keys) and only then vote *yes*. From that vote on the participant has given up its
//!   right to abort on its own.
//! - **Decision**: apply the appends (commit) or drop them (abort), durably; release the locks;
//!   confirm with `Done`.
//! - **In doubt**: a participant that voted yes and has heard no decision cannot commit (another
//!   participant may have voted no) and cannot abort (the coordinator may have decided commit and
//!   told the client). It keeps its locks and asks the coordinator every `inquiry_interval_ns`:
//!   this is the blocking of two-phase commit, and every transaction that needs those keys is
//!   refused until the coordinator answers. The trace says when it starts and how long it lasted.
//! - **Restart**: data and prepare records come back from storage; prepared transactions get
//!   their locks back and are in doubt again until the coordinator answers.
//!
//! Locks are held until the decision (strict two-phase locking), so committed transactions are
//! strictly serializable (Bernstein, Hadzilacos and Goodman, *Concurrency Control and Recovery in
//! Database Systems*, 1987, ch. 3 and 7).
//!
//! Deliberate bug `bug_heuristic_commit_after_ns`: an in-doubt participant commits on its own after
//! this long (a "heuristic decision", which real transaction managers offer to operators and which
//! breaks atomicity whenever the coordinator decided the other way).

use super::msg::{coordinator_of, timer_tag, MicroOp, TpcMsg, TxnId, Vote};
use detsim_core::{Ctx, LocalTime, Node, NodeId, Storage, TimerId, Value};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Settings of a participant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParticipantParams {
    /// How long a prepared participant waits for the decision before asking, and between asks.
    pub inquiry_interval_ns: u64,
    /// Deliberate bug: commit on its own after this long in doubt.
    pub bug_heuristic_commit_after_ns: Option<u64>,
}

impl Default for ParticipantParams {
    fn default() -> Self {
        ParticipantParams { inquiry_interval_ns: 100_000_000, bug_heuristic_commit_after_ns: None }
    }
}

/// A transaction this participant voted yes for and has no decision about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Prepared {
    appends: Vec<(i64, Value)>,
    keys: Vec<i64>,
    /// When it voted (local time, volatile: restarts reset it).
    #[serde(skip)]
    since: Option<LocalTime>,
    /// Whether "in doubt" was written to the trace.
    #[serde(skip)]
    announced: bool,
}

/// Counters of a participant (volatile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParticipantStats {
    pub votes_yes: u64,
    pub votes_no: u64,
    pub commits: u64,
    pub aborts: u64,
    pub inquiries: u64,
    /// Longest time a transaction stayed in doubt here, ns of local time.
    pub longest_in_doubt_ns: u64,
    pub heuristic_commits: u64,
}

const DATA_PREFIX: &str = "participant/data/";
const PREPARED_PREFIX: &str = "participant/prepared/";
/// Decisions remembered for duplicate messages (a limit).
const RECENT_DECISIONS: usize = 10_000;

/// A participant node.
#[derive(Clone, Debug)]
pub struct Participant {
    params: ParticipantParams,
    coordinators: Vec<NodeId>,
    data: BTreeMap<i64, Vec<Value>>,
    locks: BTreeMap<i64, TxnId>,
    prepared: BTreeMap<TxnId, Prepared>,
    /// Recently decided transactions (so a late duplicate prepare is not prepared again).
    decided: BTreeSet<TxnId>,
    decided_order: VecDeque<TxnId>,
    pub stats: ParticipantStats,
}

impl Participant {
    /// A participant rebuilt from `storage`: data, and prepared transactions with their locks.
    pub fn new(params: ParticipantParams, coordinators: Vec<NodeId>, storage: &Storage) -> Self {
        let mut data = BTreeMap::new();
        for name in storage.keys_with_prefix(DATA_PREFIX) {
            let key: i64 = name[DATA_PREFIX.len()..].parse().expect("data keys are numbers");
            data.insert(key, storage.get(name).expect("listed key exists"));
        }
        let mut prepared = BTreeMap::new();
        let mut locks = BTreeMap::new();
        for name in storage.keys_with_prefix(PREPARED_PREFIX) {
            let txn: TxnId = name[PREPARED_PREFIX.len()..].parse().expect("prepared keys are ids");
            let record: Prepared = storage.get(name).expect("listed key exists");
            for &key in &record.keys {
                let previous = locks.insert(key, txn);
                assert!(previous.is_none(), "two prepared transactions never hold one key");
            }
            prepared.insert(txn, record);
        }
        Participant {
            params,
            coordinators,
            data,
            locks,
            prepared,
            decided: BTreeSet::new(),
            decided_order: VecDeque::new(),
            stats: ParticipantStats::default(),
        }
    }

    /// The list at every key, in key order.
    pub fn data(&self) -> &BTreeMap<i64, Vec<Value>> {
        &self.data
    }

    /// Transactions prepared here and not yet decided.
    pub fn in_doubt(&self) -> Vec<TxnId> {
        self.prepared.keys().copied().collect()
    }

    /// The keys prepared transaction `txn` holds here (`None`: not prepared here).
    pub fn prepared_keys(&self, txn: TxnId) -> Option<&[i64]> {
        self.prepared.get(&txn).map(|p| p.keys.as_slice())
    }

    /// How many appends prepared transaction `txn` will apply here (`None`: not prepared here).
    pub fn prepared_appends(&self, txn: TxnId) -> Option<usize> {
        self.prepared.get(&txn).map(|p| p.appends.len())
    }

    /// Keys locked by prepared transactions.
    pub fn locked_keys(&self) -> Vec<i64> {
        self.locks.keys().copied().collect()
    }

    fn arm_in_doubt_timer(&self, ctx: &mut Ctx<'_, TpcMsg>, txn: TxnId) {
        let wait = Duration::from_nanos(self.params.inquiry_interval_ns);
        ctx.set_timer(wait, timer_tag::make(timer_tag::IN_DOUBT, txn));
    }

    fn remember_decided(&mut self, txn: TxnId) {
        if self.decided.insert(txn) {
            self.decided_order.push_back(txn);
            if self.decided_order.len() > RECENT_DECISIONS {
                let oldest = self.decided_order.pop_front().expect("not empty");
                self.decided.remove(&oldest);
            }
        }
    }

    fn prepare(&mut self, ctx: &mut Ctx<'_, TpcMsg>, from: NodeId, txn: TxnId, ops: Vec<MicroOp>) {
        if self.prepared.contains_key(&txn) {
            // A resent prepare: the vote stands (a lost yes vote would otherwise leave us in doubt
            // about a transaction the coordinator aborts for want of votes, which is still safe).
            return;
        }
        if self.decided.contains(&txn) {
            return; // decided already: a late duplicate
        }
        let keys: BTreeSet<i64> = ops.iter().map(MicroOp::key).collect();
        if let Some((&key, &holder)) = keys.iter().find_map(|k| self.locks.get_key_value(k)) {
            self.stats.votes_no += 1;
            let reason = format!("key {key} locked by transaction {holder:#x}");
            ctx.send(from, TpcMsg::VoteMsg { txn, vote: Vote::No { reason } });
            return;
        }
        // Reads see the transaction's own earlier appends, as the transaction would on one node.
        let mut view: BTreeMap<i64, Vec<Value>> =
            keys.iter().map(|k| (*k, self.data.get(k).cloned().unwrap_or_default())).collect();
        let mut reads = Vec::new();
        let mut appends = Vec::new();
        for op in &ops {
            match op {
                MicroOp::Read { key } => reads.push(Value::List(view[key].clone())),
                MicroOp::Append { key, value } => {
                    view.get_mut(key).expect("every key is in the view").push(value.clone());
                    appends.push((*key, value.clone()));
                }
            }
        }
        for &key in &keys {
            self.locks.insert(key, txn);
        }
        let record = Prepared { appends, keys: keys.into_iter().collect(), since: Some(ctx.now()), announced: false };
        // Durable before the vote: after a yes, a crash must not make us forget what we promised.
        ctx.storage().put(&format!("{PREPARED_PREFIX}{txn}"), &record);
        self.prepared.insert(txn, record);
        self.stats.votes_yes += 1;
        self.arm_in_doubt_timer(ctx, txn);
        ctx.send(from, TpcMsg::VoteMsg { txn, vote: Vote::Yes { reads } });
    }

    /// Applies a decision about a prepared transaction (no-op for one not prepared here).
    fn decide(&mut self, ctx: &mut Ctx<'_, TpcMsg>, txn: TxnId, commit: bool, how: &str) {
        self.remember_decided(txn);
        let Some(record) = self.prepared.remove(&txn) else { return };
        if commit {
            for (key, value) in &record.appends {
                self.data.entry(*key).or_default().push(value.clone());
            }
            let touched: BTreeSet<i64> = record.appends.iter().map(|(k, _)| *k).collect();
            for key in touched {
                ctx.storage().put(&format!("{DATA_PREFIX}{key}"), &self.data[&key]);
            }
            self.stats.commits += 1;
        } else {
            self.stats.aborts += 1;
        }
        // The data and the removal of the prepare record go to storage in the same handler.
        ctx.storage().remove(&format!("{PREPARED_PREFIX}{txn}"));
        for key in &record.keys {
            let holder = self.locks.remove(key);
            assert_eq!(holder, Some(txn), "a prepared transaction holds its keys");
        }
        if record.announced {
            let waited_ns = record.since.map_or(0, |since| ctx.now().as_nanos().saturating_sub(since.as_nanos()));
            let outcome = if commit { "commit" } else { "abort" };
            ctx.annotate(format!(
                "transaction {txn:#x} no longer in doubt: {outcome} ({how}) after {:.1} ms, keys {:?} unlocked",
                waited_ns as f64 / 1e6,
                record.keys
            ));
        }
    }

    fn in_doubt_timer(&mut self, ctx: &mut Ctx<'_, TpcMsg>, txn: TxnId) {
        let now = ctx.now();
        let Some(record) = self.prepared.get_mut(&txn) else { return };
        let since = *record.since.get_or_insert(now);
        let waited_ns = now.as_nanos().saturating_sub(since.as_nanos()).max(0) as u64;
        self.stats.longest_in_doubt_ns = self.stats.longest_in_doubt_ns.max(waited_ns);
        if let Some(after_ns) = self.params.bug_heuristic_commit_after_ns {
            if waited_ns >= after_ns {
                self.stats.heuristic_commits += 1;
                ctx.annotate(format!(
                    "transaction {txn:#x}: heuristic commit after {:.1} ms in doubt",
                    waited_ns as f64 / 1e6
                ));
                self.decide(ctx, txn, true, "heuristic");
                return;
            }
        }
        if !record.announced {
            record.announced = true;
            ctx.annotate(format!(
                "transaction {txn:#x} in doubt: voted yes, no decision from its coordinator; blocking keys {:?}",
                record.keys
            ));
        }
        self.stats.inquiries += 1;
        let coordinator = self.coordinators[coordinator_of(txn)];
        ctx.send(coordinator, TpcMsg::Inquire { txn });
        self.arm_in_doubt_timer(ctx, txn);
    }
}

impl Node for Participant {
    type Msg = TpcMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, TpcMsg>) {
        let recovered: Vec<TxnId> = self.prepared.keys().copied().collect();
        if !recovered.is_empty() {
            ctx.annotate(format!("restarted with {} prepared transactions, in doubt until decided", recovered.len()));
        }
        for txn in recovered {
            // In doubt from the moment we are back: ask at once.
            self.in_doubt_timer(ctx, txn);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, TpcMsg>, from: NodeId, msg: TpcMsg) {
        match msg {
            TpcMsg::Prepare { txn, ops } => self.prepare(ctx, from, txn, ops),
            TpcMsg::Decision { txn, commit } => {
                self.decide(ctx, txn, commit, "decision");
                ctx.send(from, TpcMsg::Done { txn });
            }
            _ => {} // not for a participant
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, TpcMsg>, _timer: TimerId, tag: u64) {
        let (kind, id) = timer_tag::split(tag);
        match kind {
            timer_tag::IN_DOUBT => self.in_doubt_timer(ctx, id),
            _ => panic!("unknown participant timer tag {tag:#x}"),
        }
    }
}
