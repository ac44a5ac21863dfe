//! Raft consensus: a replicated state machine over a replicated log (Ongaro & Ousterhout, "In Search
//! of an Understandable Consensus Algorithm", USENIX ATC 2014; the extended version's §5–§8).
//!
//! # The algorithm in a paragraph
//!
//! Time is divided into numbered *terms*. In each term at most one *leader* is elected: a follower
//! that hears nothing from a leader for a randomized election timeout becomes a candidate, increments
//! its term, votes for itself and asks the others for votes; a server grants at most one vote per term
//! (persisted before it answers), and only to a candidate whose log is at least as up to date as its
//! own (last term, then last index). The leader appends client commands to its log and replicates them
//! with AppendEntries, which carry the index and term of the preceding entry so a follower only accepts
//! entries that extend a log identical to the leader's up to that point (Log Matching); conflicting
//! suffixes are truncated. An entry is *committed* once the leader has stored an entry **of its current
//! term** on a majority (entries of earlier terms are then committed indirectly: counting replicas of an
//! old-term entry is unsafe, Figure 8 of the paper). Committed entries are applied in order to the state
//! machine ([`StateMachine`]), which executes each client request at most once (client sessions, §6.3).
//! Reads use the leader's *read index* (§6.4): the leader notes its commit index, confirms with a
//! majority heartbeat round that it is still the leader, and answers once that index is applied; a new
//! leader first commits a no-op entry of its own term. Followers redirect clients to the leader they
//! know. Logs are compacted into snapshots (§7) that lagging followers receive with InstallSnapshot.
//!
//! # Batching and flow control
//!
//! Two things real implementations do (etcd's raft, the Raft thesis §6.4 and §10.2), which change
//! no rule of the algorithm, only when messages go:
//!
//! - **At most one AppendEntries with entries in flight per follower.** Entries the leader appends
//!   meanwhile wait and go together in the next one, sent when the reply comes. Heartbeats and read
//!   rounds to a follower with entries in flight carry no entries and repeat only the index it is
//!   known to match, so a reordering network cannot make them fail on a gap. Entries unanswered
//!   for a whole heartbeat period count as lost (or their reply was): the heartbeat sends again
//!   from the next index. Without this, every client write sent four AppendEntries and a
//!   non-FIFO network delivered a fifth of them out of order, each refusal costing a resend.
//! - **One read round for many reads.** A read-index read that arrives while a leadership round is
//!   unconfirmed waits for the next round (which the next AppendEntries to everyone starts: a
//!   heartbeat, a write, or the confirmation of the current round) instead of starting its own:
//!   a round confirms every read that arrived before it started.
//!
//! Together they halve the messages per client operation (raft-5: 15.3 -> 9.2 sends per ok
//! operation) at the price of some latency (about 11% fewer operations per simulated hour).
//!
//! # Guarantees and limits
//!
//! Linearizable reads and writes as long as servers fail by crashing (with their storage intact) and
//! messages can be lost, duplicated, delayed or reordered, partitioned in any way, and clocks drift or
//! jump: clocks only drive timeouts, never safety. Available (makes progress) whenever a majority of
//! servers are up and connected to each other and to the client. Not tolerated: Byzantine servers,
//! lost or corrupted durable storage, a majority permanently down. Membership changes are not
//! implemented (the cluster is fixed).
//!
//! Mutants ([`RaftMutants`]) switch on realistic bugs so the checkers can be seen catching them. Two
//! need an interleaving a clock-driven nemesis almost never produces, and the tests
//! (`tests/raft.rs`) search for them with nemeses that watch the servers: `forget_vote` needs a voter
//! to crash and restart between two candidates' requests of one term (two leaders in that term);
//! `commit_previous_term` needs the three leader changes of the paper's Figure 8, and is searched for
//! without the election no-op (`noop_on_election = false`; the no-op would reach a majority along
//! with the old entries, so counting them would commit nothing correct Raft would not) and with reads
//! through the log.

use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{
    build_cluster, is_read_only, ClientProtocol, ClientReply, ClientRequest, ClusterLayout, ReplyResult, RetryPolicy,
    StateMachine, WorkloadClient,
};
use detsim_core::codec::{Decoder, Encoder};
use detsim_core::{AnySimulation, Ctx, LocalTime, Message, Node, NodeId, Simulation, Storage, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// How the leader serves read-only operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadMode {
    /// Read index (§6.4): confirm leadership with a heartbeat round, no log write.
    ReadIndex,
    /// Reads go through the log like writes (simplest, slowest).
    Log,
}

/// Deliberate bugs, each off by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftMutants {
    /// The leader commits entries of earlier terms by counting replicas (Figure 8 of the paper).
    pub commit_previous_term: bool,
    /// A voter does not persist its vote: after a restart it may vote again in the same term.
    pub forget_vote: bool,
    /// The leader answers reads from its own state without confirming it still leads (stale reads
    /// from a deposed leader in a minority partition).
    pub stale_reads: bool,
    /// Votes are granted without checking that the candidate's log is up to date (a leader may lack
    /// committed entries).
    pub vote_without_log_check: bool,
}

/// Raft's parameters (a scenario's `params` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftParams {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    /// Most entries in one AppendEntries.
    pub max_entries_per_append: usize,
    pub read_mode: ReadMode,
    /// A new leader appends a no-op entry of its term, so it can commit (and serve read-index reads)
    /// without waiting for a client write.
    pub noop_on_election: bool,
    /// Take a snapshot after this many applied entries beyond the last one (0: never compact).
    pub snapshot_every: u64,
    /// A client resends an unanswered request (same id, so at most once) after this long.
    pub client_resend_ms: u64,
    pub mutants: RaftMutants,
}

impl Default for RaftParams {
    fn default() -> Self {
        RaftParams {
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_ms: 50,
            max_entries_per_append: 64,
            read_mode: ReadMode::ReadIndex,
            noop_on_election: true,
            snapshot_every: 1_000,
            client_resend_ms: 150,
            mutants: RaftMutants::default(),
        }
    }
}

impl RaftParams {
    fn validate(&self) -> Result<(), String> {
        if self.election_timeout_min_ms == 0 || self.election_timeout_min_ms > self.election_timeout_max_ms {
            return Err("raft: need 0 < election_timeout_min_ms <= election_timeout_max_ms".into());
        }
        if self.heartbeat_ms == 0 || self.heartbeat_ms >= self.election_timeout_min_ms {
            return Err("raft: need 0 < heartbeat_ms < election_timeout_min_ms".into());
        }
        if self.max_entries_per_append == 0 {
            return Err("raft: max_entries_per_append must be positive".into());
        }
        Ok(())
    }
}

/// What a log entry asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    /// Appended by a new leader to commit an entry of its own term.
    Noop,
    Client(ClientRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub term: u64,
    pub command: Command,
}

/// Raft's messages, client traffic included.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftMsg {
    RequestVote {
        term: u64,
        last_log_index: u64,
        last_log_term: u64,
    },
    Vote {
        term: u64,
        granted: bool,
    },
    AppendEntries {
        term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        /// Shared with the leader's log (and every other follower's copy): sending an entry to four
        /// followers costs four reference counts, not four deep copies of the client's operation.
        entries: Vec<Arc<Entry>>,
        leader_commit: u64,
        /// The leader's read round when it sent this; echoed back to confirm leadership for reads.
        read_round: u64,
    },
    AppendReply {
        term: u64,
        success: bool,
        /// On success: the last index known to match the leader. On failure: where the leader should
        /// retry from (a hint that skips a whole conflicting term at once).
        index: u64,
        read_round: u64,
    },
    InstallSnapshot {
        term: u64,
        last_included_index: u64,
        last_included_term: u64,
        /// Shared, not copied: the leader sends the same snapshot to every lagging follower.
        state: Arc<StateMachine>,
        read_round: u64,
    },
    Request(ClientRequest),
    Reply(ClientReply),
}

impl Message for RaftMsg {
    fn kind(&self) -> &'static str {
        match self {
            RaftMsg::RequestVote { .. } => "RequestVote",
            RaftMsg::Vote { .. } => "Vote",
            RaftMsg::AppendEntries { .. } => "AppendEntries",
            RaftMsg::AppendReply { .. } => "AppendReply",
            RaftMsg::InstallSnapshot { .. } => "InstallSnapshot",
            RaftMsg::Request(_) => "Request",
            RaftMsg::Reply(_) => "Reply",
        }
    }
    fn size_bytes(&self) -> usize {
        match self {
            RaftMsg::AppendEntries { entries, .. } => 48 + 64 * entries.len(),
            RaftMsg::InstallSnapshot { state, .. } => 64 + 32 * state.applied_count().min(1 << 20) as usize,
            _ => 48,
        }
    }
}

/// How workload clients talk to Raft: to the leader they know, following redirects, resending
/// unanswered requests (safe: the state machine runs each request at most once).
#[derive(Clone, Debug)]
pub struct RaftClientProtocol {
    resend_ms: u64,
}

impl ClientProtocol for RaftClientProtocol {
    type Msg = RaftMsg;
    fn wrap_request(&self, request: ClientRequest) -> RaftMsg {
        RaftMsg::Request(request)
    }
    fn into_reply(&self, msg: RaftMsg) -> Option<ClientReply> {
        match msg {
            RaftMsg::Reply(reply) => Some(reply),
            _ => None,
        }
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { max_attempts: 100, backoff_ms: 30, resend_ms: Some(self.resend_ms), retry_unknown: true }
    }
}

/// A server's role, with the state only that role has.
#[derive(Clone, Debug)]
enum Role {
    Follower,
    /// Who granted a vote in this term (self included).
    Candidate {
        votes: Vec<NodeId>,
    },
    Leader(Box<LeaderState>),
}

#[derive(Clone, Debug)]
struct PendingRead {
    client: NodeId,
    request: ClientRequest,
    read_index: u64,
    round: u64,
}

#[derive(Clone, Debug)]
struct LeaderState {
    /// By server index.
    next_index: Vec<u64>,
    match_index: Vec<u64>,
    /// Highest read round each server acknowledged in this term.
    acked_round: Vec<u64>,
    /// The last read round started (sent to every follower).
    read_round: u64,
    /// Reads arrived while `read_round` was unconfirmed: they wait for the next round, which the
    /// next AppendEntries to everyone starts (a heartbeat, a write, or the confirmation of this one).
    next_round_wanted: bool,
    /// By server index: the AppendEntries with entries in flight to it, if any. Flow control: while
    /// one is in flight, entries appended meanwhile wait and go together in the next one.
    in_flight: Vec<Option<InFlight>>,
    /// Client write requests waiting for their entry to be applied, by log index.
    pending_writes: std::collections::BTreeMap<u64, (NodeId, ClientRequest)>,
    pending_reads: Vec<PendingRead>,
    /// The index of the first entry of this term (its no-op); read index needs it committed.
    term_start_index: u64,
}

/// An AppendEntries with entries, in flight to one follower.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    /// The last index it carries.
    end: u64,
    /// The leader's local time when it went.
    at: LocalTime,
}

/// Timer tags of a server.
const TIMER_ELECTION: u64 = 1;
const TIMER_HEARTBEAT: u64 = 2;
/// A candidate re-asks for votes it got no answer to (the term is in the tag's upper bits).
const TIMER_VOTE_RETRY: u64 = 3;

const KEY_HARD_STATE: &str = "raft/hard";
const KEY_SNAPSHOT: &str = "raft/snapshot";

/// A log entry as durable storage keeps it (record `index` of the storage's log): the compact binary
/// encoding, since every replica writes every entry.
fn encode_entry(entry: &Entry) -> Vec<u8> {
    // Room for a register or key-value operation (term, tag, process, seq, f, key and value).
    let mut encoder = Encoder::with_capacity(80);
    encoder.u64(entry.term);
    match &entry.command {
        Command::Noop => encoder.u8(0),
        Command::Client(request) => {
            encoder.u8(1);
            encoder.u64(request.process);
            encoder.u64(request.seq);
            encoder.op(&request.op);
        }
    }
    encoder.finish()
}

fn decode_entry(bytes: &[u8]) -> Option<Entry> {
    let mut decoder = Decoder::new(bytes);
    let term = decoder.u64()?;
    let command = match decoder.u8()? {
        0 => Command::Noop,
        1 => Command::Client(ClientRequest { process: decoder.u64()?, seq: decoder.u64()?, op: decoder.op()? }),
        _ => return None,
    };
    decoder.is_empty().then_some(Entry { term, command })
}

/// Persistent term and vote (§5.1: updated on stable storage before responding to RPCs).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct HardState {
    term: u64,
    voted_for: Option<NodeId>,
}

#[derive(Clone, Debug, Deserialize)]
struct Snapshot {
    last_included_index: u64,
    last_included_term: u64,
    state: StateMachine,
}

/// What [`Snapshot`] reads back, written from a borrowed state machine.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    last_included_index: u64,
    last_included_term: u64,
    state: &'a StateMachine,
}

/// One Raft server.
#[derive(Clone, Debug)]
pub struct RaftServer {
    id: NodeId,
    servers: usize,
    params: RaftParams,
    role: Role,
    current_term: u64,
    voted_for: Option<NodeId>,
    /// Entries after the snapshot: `log[i]` has index `snapshot_index + 1 + i`. Shared with the
    /// AppendEntries that carry them.
    log: Vec<Arc<Entry>>,
    snapshot_index: u64,
    snapshot_term: u64,
    /// The state machine as of `snapshot_index` (a copy of what storage holds, kept to send).
    snapshot_state: Arc<StateMachine>,
    commit_index: u64,
    last_applied: u64,
    state: StateMachine,
    leader_hint: Option<NodeId>,
    /// Local time after which, without news from a leader, this server starts an election.
    election_deadline: LocalTime,
    election_timer: Option<TimerId>,
}

impl RaftServer {
    /// Server `id` of `servers`, rebuilt from `storage` (empty on first start).
    pub fn new(id: NodeId, servers: usize, params: RaftParams, kind: WorkloadKind, storage: &Storage) -> Self {
        let hard: HardState = storage.get(KEY_HARD_STATE).unwrap_or_default();
        let snapshot: Option<Snapshot> = storage.get(KEY_SNAPSHOT);
        let (snapshot_index, snapshot_term, state) = match snapshot {
            Some(s) => (s.last_included_index, s.last_included_term, s.state),
            None => (0, 0, StateMachine::new(kind)),
        };
        let snapshot_state = Arc::new(state.clone());
        let mut log = Vec::new();
        for (index, record) in storage.log_records() {
            if index <= snapshot_index {
                continue;
            }
            assert_eq!(index, snapshot_index + 1 + log.len() as u64, "the stored log has no gaps");
            log.push(Arc::new(decode_entry(record).expect("the log holds entries encode_entry wrote")));
        }
        RaftServer {
            id,
            servers,
            params,
            role: Role::Follower,
            current_term: hard.term,
            voted_for: hard.voted_for,
            log,
            snapshot_index,
            snapshot_term,
            snapshot_state,
            // Commit index and applied state are volatile; the snapshot is known committed.
            commit_index: snapshot_index,
            last_applied: snapshot_index,
            state,
            leader_hint: None,
            election_deadline: LocalTime(0),
            election_timer: None,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
    pub fn role_name(&self) -> &'static str {
        match self.role {
            Role::Follower => "follower",
            Role::Candidate { .. } => "candidate",
            Role::Leader(_) => "leader",
        }
    }
    pub fn term(&self) -> u64 {
        self.current_term
    }
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }
    pub fn last_log_index(&self) -> u64 {
        self.snapshot_index + self.log.len() as u64
    }
    /// The replicated state machine as applied so far.
    pub fn state_machine(&self) -> &StateMachine {
        &self.state
    }
    /// The entry at `index` (`None` if compacted or absent).
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.log.get((index - self.snapshot_index - 1) as usize).map(|entry| &**entry)
    }

    fn last_log_term(&self) -> u64 {
        self.log.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term of the entry at `index`, if this server still knows it.
    fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot_index {
            Some(self.snapshot_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// No mutant is on: the invariants of correct Raft hold and are asserted.
    fn strict(&self) -> bool {
        self.params.mutants == RaftMutants::default()
    }

    fn majority(&self) -> usize {
        self.servers / 2 + 1
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + 'static {
        let id = self.id;
        (0..self.servers as u32).map(NodeId).filter(move |n| *n != id)
    }

    fn persist_hard_state(&self, ctx: &mut Ctx<'_, RaftMsg>) {
        // The forget-vote mutant writes the term but drops the vote, as if the write of the vote were
        // forgotten: after a restart the server can vote twice in one term.
        let voted_for = if self.params.mutants.forget_vote { None } else { self.voted_for };
        ctx.storage().put(KEY_HARD_STATE, &HardState { term: self.current_term, voted_for });
    }

    fn random_election_timeout(&self, ctx: &mut Ctx<'_, RaftMsg>) -> Duration {
        let ms = ctx.rng().random_range(self.params.election_timeout_min_ms..=self.params.election_timeout_max_ms);
        Duration::from_millis(ms)
    }

    /// Pushes the election deadline out by a fresh random timeout (a leader was heard from, or a
    /// vote was granted), arming the timer if none is pending.
    fn reset_election_deadline(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let timeout = self.random_election_timeout(ctx);
        self.election_deadline = ctx.now() + timeout;
        if self.election_timer.is_none() {
            self.election_timer = Some(ctx.set_timer(timeout, TIMER_ELECTION));
        }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        self.reset_election_deadline(ctx);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, RaftMsg>, _timer: TimerId, tag: u64) {
        match tag & 0xFF {
            TIMER_ELECTION => {
                self.election_timer = None;
                if self.is_leader() {
                    return; // leaders do not time out; the timer is re-armed when they step down
                }
                let now = ctx.now();
                if now >= self.election_deadline {
                    self.start_election(ctx);
                } else {
                    // The deadline moved since the timer was set (cheaper than cancel-and-set on
                    // every heartbeat).
                    let remaining = self.election_deadline.since(now);
                    self.election_timer = Some(ctx.set_timer(remaining, TIMER_ELECTION));
                }
            }
            TIMER_HEARTBEAT => {
                if self.is_leader() && tag >> 8 == self.current_term {
                    // Entries in flight for a whole heartbeat period were lost, or their reply was:
                    // send again from the next index (the paper's retry of an unanswered RPC).
                    let now = ctx.now();
                    let period = Duration::from_millis(self.params.heartbeat_ms);
                    let leader = self.leader_mut().expect("checked: leader");
                    for in_flight in &mut leader.in_flight {
                        if in_flight.is_some_and(|sent| now >= sent.at + period) {
                            *in_flight = None;
                        }
                    }
                    self.broadcast_append(ctx);
                    ctx.set_timer(Duration::from_millis(self.params.heartbeat_ms), tag);
                }
            }
            TIMER_VOTE_RETRY => {
                if matches!(self.role, Role::Candidate { .. }) && tag >> 8 == self.current_term {
                    self.retry_vote_requests(ctx);
                }
            }
            other => panic!("unknown raft timer tag {other}"),
        }
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        self.current_term += 1;
        self.voted_for = Some(self.id);
        self.leader_hint = None;
        self.persist_hard_state(ctx);
        self.role = Role::Candidate { votes: vec![self.id] };
        self.reset_election_deadline(ctx);
        ctx.annotate(format!("candidate for term {}", self.current_term));
        if self.majority() == 1 {
            self.become_leader(ctx);
            return;
        }
        let msg = RaftMsg::RequestVote {
            term: self.current_term,
            last_log_index: self.last_log_index(),
            last_log_term: self.last_log_term(),
        };
        let peers: Vec<NodeId> = self.peers().collect();
        ctx.send_all(peers, &msg);
        // Requests and replies can be lost; re-asking within the term (the paper's "servers retry
        // RPCs if they do not receive a response in a timely manner") saves a whole election timeout.
        ctx.set_timer(Duration::from_millis(self.params.heartbeat_ms), TIMER_VOTE_RETRY | (self.current_term << 8));
    }

    fn retry_vote_requests(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let Role::Candidate { votes } = &self.role else { return };
        // Everyone who has not granted, refusals included: re-asking costs little, and a refusal in
        // this term never turns into a grant in correct Raft (a voter's choice is durable).
        let not_granted: Vec<NodeId> = self.peers().filter(|p| !votes.contains(p)).collect();
        let msg = RaftMsg::RequestVote {
            term: self.current_term,
            last_log_index: self.last_log_index(),
            last_log_term: self.last_log_term(),
        };
        ctx.send_all(not_granted, &msg);
        ctx.set_timer(Duration::from_millis(self.params.heartbeat_ms), TIMER_VOTE_RETRY | (self.current_term << 8));
    }

    /// Adopts a higher term seen in any message: back to follower, vote cleared (§5.1).
    fn observe_term(&mut self, ctx: &mut Ctx<'_, RaftMsg>, term: u64) {
        if term <= self.current_term {
            return;
        }
        self.current_term = term;
        self.voted_for = None;
        self.persist_hard_state(ctx);
        self.step_down(ctx);
    }

    /// Leaves the leader or candidate role. Clients still waiting on this leader learn that their
    /// writes have an unknown outcome (they may yet commit under the next leader) and that their
    /// reads were not served.
    fn step_down(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let old = std::mem::replace(&mut self.role, Role::Follower);
        if let Role::Leader(leader) = old {
            self.leader_hint = None;
            for (_, (client, request)) in leader.pending_writes {
                let reply = ClientReply::to(&request, ReplyResult::Unknown("leadership-lost".into()));
                ctx.send(client, RaftMsg::Reply(reply));
            }
            for read in leader.pending_reads {
                ctx.send(read.client, RaftMsg::Reply(ClientReply::to(&read.request, ReplyResult::Redirect(None))));
            }
            self.reset_election_deadline(ctx);
        }
    }

    fn become_leader(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let last = self.last_log_index();
        ctx.annotate(format!("leader for term {}", self.current_term));
        self.leader_hint = Some(self.id);
        let mut leader = LeaderState {
            next_index: vec![last + 1; self.servers],
            match_index: vec![0; self.servers],
            acked_round: vec![0; self.servers],
            read_round: 0,
            next_round_wanted: false,
            in_flight: vec![None; self.servers],
            pending_writes: Default::default(),
            pending_reads: Vec::new(),
            term_start_index: last + 1,
        };
        leader.match_index[self.id.index()] = last;
        self.role = Role::Leader(Box::new(leader));
        if self.params.noop_on_election {
            self.append_local(ctx, Command::Noop);
        }
        self.broadcast_append(ctx);
        ctx.set_timer(Duration::from_millis(self.params.heartbeat_ms), TIMER_HEARTBEAT | (self.current_term << 8));
        self.advance_commit(ctx); // a one-server cluster commits on its own
    }

    fn leader_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            Role::Leader(leader) => Some(leader),
            _ => None,
        }
    }

    /// Appends to the leader's own log, persisted before anyone can hear of it.
    fn append_local(&mut self, ctx: &mut Ctx<'_, RaftMsg>, command: Command) -> u64 {
        let entry = Entry { term: self.current_term, command };
        let index = self.last_log_index() + 1;
        ctx.storage().log_put(index, encode_entry(&entry));
        self.log.push(Arc::new(entry));
        let id = self.id.index();
        let leader = self.leader_mut().expect("only leaders append locally");
        leader.match_index[id] = index;
        index
    }

    /// An AppendEntries to every follower; it starts the read round that reads wait for, if any.
    fn broadcast_append(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        if let Some(leader) = self.leader_mut() {
            if leader.next_round_wanted {
                leader.next_round_wanted = false;
                leader.read_round += 1;
            }
        }
        for peer in self.peers() {
            self.send_append(ctx, peer);
        }
    }

    /// Sends a new entry on its way: to each follower with no entries in flight (the others get it
    /// with the next batch, when their reply comes), or to everyone when reads wait for a round.
    fn replicate(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let Role::Leader(leader) = &self.role else { return };
        if leader.next_round_wanted {
            self.broadcast_append(ctx);
            return;
        }
        for peer in self.peers() {
            if self.leader_mut().is_some_and(|leader| leader.in_flight[peer.index()].is_none()) {
                self.send_append(ctx, peer);
            }
        }
    }

    /// Whether a majority (the leader included) acknowledged the last read round started.
    fn read_round_confirmed(&self) -> bool {
        let Role::Leader(leader) = &self.role else { return false };
        let id = self.id.index();
        let acked = leader.acked_round.iter().enumerate().filter(|(peer, r)| *peer == id || **r >= leader.read_round);
        acked.count() >= self.majority()
    }

    /// Sends `peer` what it is missing from its next index (or a snapshot when that part of the log
    /// is compacted), optimistically assuming it will arrive (pipelining), unless entries to it are
    /// in flight already: then an AppendEntries without entries that only repeats what `peer` is
    /// known to match (a heartbeat or read round, which cannot fail on a gap however the network
    /// reorders it).
    fn send_append(&mut self, ctx: &mut Ctx<'_, RaftMsg>, peer: NodeId) {
        let term = self.current_term;
        let commit = self.commit_index;
        let last = self.last_log_index();
        let Role::Leader(leader) = &self.role else { return };
        let next = leader.next_index[peer.index()].max(1);
        let read_round = leader.read_round;
        let matched = leader.match_index[peer.index()];
        if leader.in_flight[peer.index()].is_some() && matched >= self.snapshot_index {
            let prev_log_term = self.term_at(matched).expect("a matched index at or after the snapshot");
            let msg = RaftMsg::AppendEntries {
                term,
                prev_log_index: matched,
                prev_log_term,
                entries: Vec::new(),
                leader_commit: commit,
                read_round,
            };
            ctx.send(peer, msg);
            return;
        }
        if next <= self.snapshot_index {
            let msg = RaftMsg::InstallSnapshot {
                term,
                last_included_index: self.snapshot_index,
                last_included_term: self.snapshot_term,
                state: Arc::clone(&self.snapshot_state),
                read_round,
            };
            ctx.send(peer, msg);
            return;
        }
        let prev_log_index = next - 1;
        let prev_log_term = self.term_at(prev_log_index).expect("prev index is at or after the snapshot");
        let end = last.min(prev_log_index + self.params.max_entries_per_append as u64);
        let first = (next - self.snapshot_index - 1) as usize;
        let entries: Vec<Arc<Entry>> = self.log[first..(end - self.snapshot_index) as usize].to_vec();
        let msg =
            RaftMsg::AppendEntries { term, prev_log_index, prev_log_term, entries, leader_commit: commit, read_round };
        let now = ctx.now();
        if let Some(leader) = self.leader_mut() {
            leader.next_index[peer.index()] = end + 1;
            if end >= next {
                leader.in_flight[peer.index()] = Some(InFlight { end, at: now });
            }
        }
        ctx.send(peer, msg);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, RaftMsg>, from: NodeId, msg: RaftMsg) {
        match msg {
            RaftMsg::RequestVote { term, last_log_index, last_log_term } => {
                self.observe_term(ctx, term);
                let log_ok = (last_log_term, last_log_index) >= (self.last_log_term(), self.last_log_index());
                let log_ok = log_ok || self.params.mutants.vote_without_log_check;
                let granted = term == self.current_term
                    && self.voted_for.is_none_or(|v| v == from)
                    && log_ok
                    && !self.is_leader();
                if granted {
                    self.voted_for = Some(from);
                    self.persist_hard_state(ctx); // before the reply leaves (§5.1)
                    self.reset_election_deadline(ctx);
                }
                ctx.send(from, RaftMsg::Vote { term: self.current_term, granted });
            }
            RaftMsg::Vote { term, granted } => {
                self.observe_term(ctx, term);
                if term != self.current_term {
                    return;
                }
                let majority = self.majority();
                if let Role::Candidate { votes } = &mut self.role {
                    if granted && !votes.contains(&from) {
                        votes.push(from);
                    }
                    if votes.len() >= majority {
                        self.become_leader(ctx);
                    }
                }
            }
            RaftMsg::AppendEntries { term, prev_log_index, prev_log_term, entries, leader_commit, read_round } => {
                self.on_append(ctx, from, term, prev_log_index, prev_log_term, entries, leader_commit, read_round);
            }
            RaftMsg::InstallSnapshot { term, last_included_index, last_included_term, state, read_round } => {
                self.on_install_snapshot(ctx, from, term, last_included_index, last_included_term, state, read_round);
            }
            RaftMsg::AppendReply { term, success, index, read_round } => {
                self.on_append_reply(ctx, from, term, success, index, read_round);
            }
            RaftMsg::Request(request) => self.on_client_request(ctx, from, request),
            RaftMsg::Reply(_) => {} // servers get no replies
        }
    }

    /// Hearing a current leader: follow it and push the election out.
    fn accept_leader(&mut self, ctx: &mut Ctx<'_, RaftMsg>, from: NodeId) {
        if !matches!(self.role, Role::Follower) {
            self.step_down(ctx);
            self.role = Role::Follower;
        }
        self.leader_hint = Some(from);
        self.reset_election_deadline(ctx);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        ctx: &mut Ctx<'_, RaftMsg>,
        from: NodeId,
        term: u64,
        prev_log_index: u64,
        prev_log_term: u64,
        entries: Vec<Arc<Entry>>,
        leader_commit: u64,
        read_round: u64,
    ) {
        self.observe_term(ctx, term);
        if term < self.current_term {
            let reply = RaftMsg::AppendReply { term: self.current_term, success: false, index: 0, read_round };
            ctx.send(from, reply);
            return;
        }
        if self.is_leader() {
            // Two leaders in one term: impossible in correct Raft (Election Safety), reachable with
            // the vote mutants, whose damage the checkers are meant to see rather than a panic.
            assert!(!self.strict(), "two leaders in term {term}: Election Safety violated");
            ctx.send(from, RaftMsg::AppendReply { term, success: false, index: 0, read_round });
            return;
        }
        self.accept_leader(ctx, from);
        let last = self.last_log_index();
        if prev_log_index > last {
            let reply = RaftMsg::AppendReply { term, success: false, index: last + 1, read_round };
            ctx.send(from, reply);
            return;
        }
        // Entries at or below our snapshot are committed, hence identical: skip them.
        let (mut index, mut entries) = (prev_log_index, entries);
        if index < self.snapshot_index {
            let skip = ((self.snapshot_index - index) as usize).min(entries.len());
            entries.drain(..skip);
            index += skip as u64;
            if index < self.snapshot_index {
                // The whole message is older than our snapshot: nothing to learn from it.
                let reply = RaftMsg::AppendReply { term, success: true, index: self.snapshot_index, read_round };
                ctx.send(from, reply);
                return;
            }
        } else if self.term_at(index) != Some(prev_log_term) {
            // Log Matching: our log differs at prev. Hint the first index of our conflicting term so
            // the leader skips back a whole term per round trip.
            let conflict_term = self.term_at(index);
            let mut hint = index;
            while hint > self.snapshot_index + 1 && self.term_at(hint - 1) == conflict_term {
                hint -= 1;
            }
            if index <= self.commit_index {
                // Committed entries are in every later leader's log (Leader Completeness), so they
                // cannot conflict. A mutant can break that; then back off below the conflict like any
                // other, so the leader overwrites it rather than retrying the same index forever.
                assert!(!self.strict(), "committed entry {index} conflicts with the leader's log");
                ctx.annotate(format!("committed entry {index} conflicts with the leader's log"));
            } else {
                // Never ask for committed entries again: they match.
                hint = hint.max(self.commit_index + 1);
            }
            ctx.send(from, RaftMsg::AppendReply { term, success: false, index: hint, read_round });
            return;
        }
        for entry in entries {
            index += 1;
            match self.term_at(index) {
                Some(existing) if existing == entry.term => continue, // already have it (duplicate or reordered message)
                Some(_) => {
                    if index <= self.commit_index {
                        assert!(!self.strict(), "a committed entry is never overwritten (index {index})");
                        ctx.annotate(format!(
                            "committed entry {index} overwritten (a mutant broke Leader Completeness)"
                        ));
                        self.commit_index = index - 1;
                        self.last_applied = self.last_applied.min(index - 1);
                    }
                    self.truncate_from(ctx, index);
                }
                None => {}
            }
            ctx.storage().log_put(index, encode_entry(&entry));
            self.log.push(entry);
        }
        let match_index = index;
        // Only what this message proves matches the leader may be committed (not our stale tail).
        let new_commit = leader_commit.min(match_index);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
            self.apply_committed(ctx);
        }
        ctx.send(from, RaftMsg::AppendReply { term, success: true, index: match_index, read_round });
    }

    fn truncate_from(&mut self, ctx: &mut Ctx<'_, RaftMsg>, index: u64) {
        ctx.storage().log_truncate(index);
        self.log.truncate((index - self.snapshot_index - 1) as usize);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_install_snapshot(
        &mut self,
        ctx: &mut Ctx<'_, RaftMsg>,
        from: NodeId,
        term: u64,
        last_included_index: u64,
        last_included_term: u64,
        state: Arc<StateMachine>,
        read_round: u64,
    ) {
        self.observe_term(ctx, term);
        if term < self.current_term {
            ctx.send(from, RaftMsg::AppendReply { term: self.current_term, success: false, index: 0, read_round });
            return;
        }
        self.accept_leader(ctx, from);
        if last_included_index > self.commit_index {
            // Keep a suffix that extends the snapshot (§7); otherwise discard the whole log.
            let keep_suffix = self.term_at(last_included_index) == Some(last_included_term);
            if !keep_suffix {
                ctx.storage().log_truncate(self.snapshot_index + 1);
            }
            ctx.storage().log_compact(last_included_index);
            if keep_suffix {
                self.log.drain(..(last_included_index - self.snapshot_index) as usize);
            } else {
                self.log.clear();
            }
            self.snapshot_index = last_included_index;
            self.snapshot_term = last_included_term;
            self.state = StateMachine::clone(&state);
            self.commit_index = last_included_index;
            self.last_applied = last_included_index;
            ctx.storage().put(KEY_SNAPSHOT, &SnapshotRef { last_included_index, last_included_term, state: &state });
            self.snapshot_state = state;
        }
        let index = self.commit_index.max(last_included_index);
        ctx.send(from, RaftMsg::AppendReply { term, success: true, index, read_round });
    }

    fn on_append_reply(
        &mut self,
        ctx: &mut Ctx<'_, RaftMsg>,
        from: NodeId,
        term: u64,
        success: bool,
        index: u64,
        read_round: u64,
    ) {
        self.observe_term(ctx, term);
        if term != self.current_term {
            return; // stale reply from an earlier term
        }
        let last = self.last_log_index();
        let strict = self.strict();
        let Some(leader) = self.leader_mut() else { return };
        if !success && index == 0 {
            // Refused by a server that leads this term too (only a vote mutant makes two leaders in
            // one term). It did not accept us, and resending would only ping-pong.
            assert!(!strict, "two leaders in term {term}");
            return;
        }
        let peer = from.index();
        // Any other reply of this term means `from` accepted us as leader when it answered.
        leader.acked_round[peer] = leader.acked_round[peer].max(read_round);
        if success {
            assert!(index <= last || !strict, "a follower cannot match beyond the leader's log");
            let index = index.min(last);
            leader.match_index[peer] = leader.match_index[peer].max(index);
            leader.next_index[peer] = leader.next_index[peer].max(index + 1);
            let sent_waiting = leader.in_flight[peer].is_some_and(|sent| index >= sent.end);
            if sent_waiting {
                leader.in_flight[peer] = None;
            }
            self.advance_commit(ctx);
            if sent_waiting && self.leader_mut().is_some_and(|leader| leader.next_index[peer] <= last) {
                // What was appended while those entries were in flight goes now, in one message.
                self.send_append(ctx, from);
            }
        } else {
            leader.in_flight[peer] = None;
            // Back off to the hint (never below what is known to match) and resend at once, but only
            // when that moved back: a duplicated or stale refusal must not start a second stream of
            // AppendEntries (duplicates would multiply them); the next heartbeat retries anyway.
            let floor = leader.match_index[peer] + 1;
            let next = index.max(floor).min(last + 1).max(1);
            if next < leader.next_index[peer] {
                leader.next_index[peer] = next;
                self.send_append(ctx, from);
            }
        }
        self.serve_confirmed_reads(ctx);
        if self.leader_mut().is_some_and(|leader| leader.next_round_wanted) && self.read_round_confirmed() {
            self.broadcast_append(ctx); // the round that reads which came during the last one wait for
        }
    }

    /// Commit rule (§5.3, §5.4.2): the highest index stored on a majority whose entry is of the
    /// current term. The commit-previous-term mutant drops the term condition (Figure 8).
    fn advance_commit(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let majority = self.majority();
        let Role::Leader(leader) = &self.role else { return };
        // The majority-th highest match index: the highest one that a majority has reached (counted
        // in place, with no sorted copy, on every reply).
        let matched = &leader.match_index;
        let candidate = matched
            .iter()
            .copied()
            .filter(|index| matched.iter().filter(|m| *m >= index).count() >= majority)
            .max()
            .expect("the leader's own match index counts");
        if candidate <= self.commit_index {
            return;
        }
        // Terms only grow along the log, so if the candidate's entry is of an older term, so are all
        // below it: nothing can commit until an entry of this term reaches a majority.
        let term = self.term_at(candidate).expect("a majority-matched index is in the leader's log");
        if term == self.current_term || self.params.mutants.commit_previous_term {
            if term != self.current_term {
                ctx.annotate(format!("mutant: commits index {candidate} of term {term} by counting replicas"));
            }
            let new_commit = candidate;
            self.commit_index = new_commit;
            // Followers learn the new commit index with the next AppendEntries or heartbeat.
            self.apply_committed(ctx);
        }
    }

    /// Applies committed entries in order and answers the clients waiting on them.
    fn apply_committed(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        assert!(self.commit_index <= self.last_log_index(), "commit index within the log");
        while self.last_applied < self.commit_index {
            self.last_applied += 1;
            let index = self.last_applied;
            let entry = Arc::clone(&self.log[(index - self.snapshot_index - 1) as usize]);
            let result = match &entry.command {
                Command::Noop => None,
                Command::Client(request) => Some(self.state.apply_request(request)),
            };
            if let (Some(result), Command::Client(request), Some(leader)) = (result, &entry.command, self.leader_mut())
            {
                if let Some((client, waiting)) = leader.pending_writes.remove(&index) {
                    if &waiting == request {
                        ctx.send(client, RaftMsg::Reply(ClientReply::to(request, result)));
                    }
                }
            }
        }
        self.maybe_snapshot(ctx);
        self.serve_confirmed_reads(ctx);
    }

    fn maybe_snapshot(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let every = self.params.snapshot_every;
        if every == 0 || self.last_applied < self.snapshot_index + every {
            return;
        }
        let index = self.last_applied;
        let term = self.term_at(index).expect("applied entry is in the log");
        let snapshot = SnapshotRef { last_included_index: index, last_included_term: term, state: &self.state };
        ctx.storage().put(KEY_SNAPSHOT, &snapshot);
        self.snapshot_state = Arc::new(self.state.clone());
        ctx.storage().log_compact(index);
        self.log.drain(..(index - self.snapshot_index) as usize);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    fn on_client_request(&mut self, ctx: &mut Ctx<'_, RaftMsg>, client: NodeId, request: ClientRequest) {
        if !self.is_leader() {
            let hint = self.leader_hint.filter(|l| *l != self.id);
            ctx.send(client, RaftMsg::Reply(ClientReply::to(&request, ReplyResult::Redirect(hint))));
            return;
        }
        let read_only = is_read_only(&request.op);
        if read_only && self.params.mutants.stale_reads {
            let result = self.state.apply(&request.op);
            ctx.send(client, RaftMsg::Reply(ClientReply::to(&request, result)));
            return;
        }
        let commit_index = self.commit_index;
        let majority = self.majority();
        let read_index_mode = self.params.read_mode == ReadMode::ReadIndex;
        let leader = self.leader_mut().expect("checked: leader");
        // Read index needs an entry of this term committed: before that, the leader's commit index
        // may lag what earlier leaders committed. Until then reads go through the log.
        if read_only && read_index_mode && commit_index >= leader.term_start_index {
            if majority == 1 {
                leader.pending_reads.push(PendingRead { client, request, read_index: commit_index, round: 0 });
                self.serve_confirmed_reads(ctx);
                return;
            }
            // One heartbeat round confirms every read that arrived before it started (the Raft
            // thesis, §6.4): a read that comes while a round is unconfirmed waits for the next one,
            // which starts with the next AppendEntries to everyone.
            let in_flight = !self.read_round_confirmed();
            let leader = self.leader_mut().expect("checked: leader");
            let round = leader.read_round + 1;
            leader.pending_reads.push(PendingRead { client, request, read_index: commit_index, round });
            leader.next_round_wanted = true;
            if !in_flight {
                self.broadcast_append(ctx);
            }
            return;
        }
        // A resent request (the client's resend timer, or a retry after a redirect) may have been
        // applied already: answer from the session table (§6.3). Or its entry may still be in the
        // uncommitted part of the log, from this term or an earlier one: wait for that entry, since a
        // second copy would only grow the log on every resend while the leader cannot commit.
        if let Some(result) = self.state.recorded_result(&request) {
            ctx.send(client, RaftMsg::Reply(ClientReply::to(&request, result.clone())));
            return;
        }
        let uncommitted = self.commit_index + 1..=self.last_log_index();
        let in_log = uncommitted
            .into_iter()
            .find(|i| matches!(self.entry(*i), Some(Entry { command: Command::Client(r), .. }) if *r == request));
        if let Some(index) = in_log {
            self.leader_mut().expect("still leader").pending_writes.insert(index, (client, request));
            // An entry of an earlier term commits only under one of this term (§5.4.2): make sure
            // there is one after it, or the client would wait for a write that may never come.
            if self.last_log_term() != self.current_term {
                self.append_local(ctx, Command::Noop);
                self.replicate(ctx);
                self.advance_commit(ctx);
            }
            return;
        }
        let index = self.append_local(ctx, Command::Client(request.clone()));
        self.leader_mut().expect("still leader").pending_writes.insert(index, (client, request));
        self.replicate(ctx);
        self.advance_commit(ctx);
    }

    /// Answers reads whose round a majority acknowledged and whose read index is applied.
    fn serve_confirmed_reads(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        let majority = self.majority();
        let id = self.id.index();
        let last_applied = self.last_applied;
        let Role::Leader(leader) = &mut self.role else { return };
        if leader.pending_reads.is_empty() {
            return;
        }
        let acked = &leader.acked_round;
        let confirmed =
            |round: u64| acked.iter().enumerate().filter(|(peer, r)| *peer == id || **r >= round).count() >= majority;
        // In place and in arrival order; nothing is allocated while no read is ready.
        let ready: Vec<PendingRead> = leader
            .pending_reads
            .extract_if(.., |read| confirmed(read.round) && read.read_index <= last_applied)
            .collect();
        for read in ready {
            let result = self.state.apply(&read.request.op);
            ctx.send(read.client, RaftMsg::Reply(ClientReply::to(&read.request, result)));
        }
    }
}

/// A node of a Raft simulation: a server or a workload client.
pub enum RaftNode {
    Server(Box<RaftServer>),
    Client(WorkloadClient<RaftClientProtocol>),
}

impl RaftNode {
    pub fn server(&self) -> Option<&RaftServer> {
        match self {
            RaftNode::Server(server) => Some(server),
            RaftNode::Client(_) => None,
        }
    }
    pub fn client(&self) -> Option<&WorkloadClient<RaftClientProtocol>> {
        match self {
            RaftNode::Client(client) => Some(client),
            RaftNode::Server(_) => None,
        }
    }
}

impl Node for RaftNode {
    type Msg = RaftMsg;
    fn on_start(&mut self, ctx: &mut Ctx<'_, RaftMsg>) {
        match self {
            RaftNode::Server(server) => server.on_start(ctx),
            RaftNode::Client(client) => client.on_start(ctx),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, RaftMsg>, from: NodeId, msg: RaftMsg) {
        match self {
            RaftNode::Server(server) => server.on_message(ctx, from, msg),
            RaftNode::Client(client) => client.on_message(ctx, from, msg),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, RaftMsg>, timer: TimerId, tag: u64) {
        match self {
            RaftNode::Server(server) => server.on_timer(ctx, timer, tag),
            RaftNode::Client(client) => client.on_timer(ctx, timer, tag),
        }
    }
}

/// Builds a Raft cluster from `spec` (parameters from `spec.params`), typed.
pub fn build_simulation(spec: &ClusterSpec) -> Result<Simulation<RaftNode>, String> {
    let params: RaftParams = spec.params()?;
    build_simulation_with(spec, params)
}

/// Builds a Raft cluster from `spec` with `params` (ignoring `spec.params`).
pub fn build_simulation_with(spec: &ClusterSpec, params: RaftParams) -> Result<Simulation<RaftNode>, String> {
    params.validate()?;
    let layout = ClusterLayout::of(spec);
    let servers = spec.nodes;
    let kind = spec.workload.kind;
    let workload = spec.workload.clone();
    let client_protocol = RaftClientProtocol { resend_ms: params.client_resend_ms };
    let server_params = params.clone();
    build_cluster(
        spec,
        move |index, storage| {
            RaftNode::Server(Box::new(RaftServer::new(
                NodeId(index as u32),
                servers,
                server_params.clone(),
                kind,
                storage,
            )))
        },
        move |index| {
            RaftNode::Client(WorkloadClient::new(client_protocol.clone(), &workload, index, layout.servers.clone()))
        },
    )
}

/// The server that leads in the highest term right now, if any.
pub fn leader(sim: &Simulation<RaftNode>) -> Option<NodeId> {
    (0..sim.node_count() as u32)
        .map(NodeId)
        .filter_map(|id| sim.node(id).and_then(RaftNode::server).filter(|s| s.is_leader()).map(|s| (s.term(), id)))
        .max()
        .map(|(_, id)| id)
}

fn build_boxed(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build_simulation(spec)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "raft",
        description:
            "Raft consensus (Ongaro & Ousterhout 2014): leader election, log replication, read index, snapshots",
        workloads: &[
            WorkloadKind::Register,
            WorkloadKind::KeyValue,
            WorkloadKind::Counter,
            WorkloadKind::Set,
            WorkloadKind::ListAppend,
            WorkloadKind::RwRegister,
        ],
        build: build_boxed,
    }]
}
