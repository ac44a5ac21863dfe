//! A Multi-Paxos server: acceptor, proposer (leader) and learner in one node, as in "Paxos Made
//! Moderately Complex" where every replica runs all roles. The acceptor state is persisted before any
//! reply that depends on it; the learner's log and the state machine are volatile and rebuilt from
//! the other servers after a restart.

use super::{PaxosMsg, PaxosParams};
use crate::spec::WorkloadKind;
use crate::workload::{ClientReply, ClientRequest, ReplyResult, StateMachine};
use detsim_core::{Ctx, NodeId, Storage};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A ballot (proposal number): a round, with the proposer's id to make ballots of different
/// proposers distinct. Ordered by round, then proposer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub leader: u32,
}

/// What a log slot holds: a client request (with the client node to answer), or a no-op that fills a
/// gap a new leader found.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Command {
    Noop,
    Client { client: NodeId, request: ClientRequest },
}

impl Command {
    fn is_request(&self, request: &ClientRequest) -> bool {
        matches!(self, Command::Client { request: r, .. } if r.process == request.process && r.seq == request.seq)
    }
}

/// An accepted proposal as an acceptor reports it in a promise.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AcceptedEntry {
    pub slot: u64,
    pub ballot: Ballot,
    pub command: Command,
}

/// Messages between servers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerMsg {
    /// Phase 1a, for every slot from `from_slot` on.
    Prepare { ballot: Ballot, from_slot: u64 },
    /// Phase 1b: the acceptor promised `ballot` and reports what it accepted from `from_slot` on.
    Promise { ballot: Ballot, accepted: Vec<AcceptedEntry> },
    /// Phase 2a.
    Accept { ballot: Ballot, slot: u64, command: Command },
    /// Phase 2b.
    Accepted { ballot: Ballot, slot: u64 },
    /// The acceptor has promised a higher ballot: the sender is preempted.
    Reject { promised: Ballot },
    /// `command` is chosen in `slot` (the learners' message).
    Decide { slot: u64, command: Command },
    /// The leader is alive; its log is decided up to (excluding) `first_undecided`.
    Heartbeat { ballot: Ballot, first_undecided: u64 },
    /// A lagging learner asks for decided slots from `from_slot` on.
    CatchUp { from_slot: u64 },
    /// A client request a follower relays to the leader it knows; the leader answers `client` itself.
    Forward { client: NodeId, request: ClientRequest },
}

impl PeerMsg {
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMsg::Prepare { .. } => "Prepare",
            PeerMsg::Promise { .. } => "Promise",
            PeerMsg::Accept { .. } => "Accept",
            PeerMsg::Accepted { .. } => "Accepted",
            PeerMsg::Reject { .. } => "Reject",
            PeerMsg::Decide { .. } => "Decide",
            PeerMsg::Heartbeat { .. } => "Heartbeat",
            PeerMsg::CatchUp { .. } => "CatchUp",
            PeerMsg::Forward { .. } => "Forward",
        }
    }
}

struct Proposal {
    command: Command,
    acks: BTreeSet<NodeId>,
    ticks_since_sent: u32,
}

enum Role {
    Follower,
    Candidate { ballot: Ballot, from_slot: u64, promises: BTreeMap<NodeId, Vec<AcceptedEntry>>, ticks: u32 },
    Leader { ballot: Ballot, next_slot: u64, proposals: BTreeMap<u64, Proposal> },
}

const PROMISED_KEY: &str = "paxos/promised";
const ACCEPTED_PREFIX: &str = "paxos/accepted/";
/// Catch-up answers carry at most this many slots, so a far-behind learner cannot ask for a huge message.
const CATCH_UP_BATCH: u64 = 64;
/// A leader refuses new requests beyond this many undecided proposals (a limit on everything).
const MAX_PROPOSALS_IN_FLIGHT: usize = 4096;

/// One Multi-Paxos server.
pub struct PaxosServer {
    id: NodeId,
    servers: Vec<NodeId>,
    params: PaxosParams,
    // Acceptor (durable).
    promised: Ballot,
    accepted: BTreeMap<u64, (Ballot, Command)>,
    // Learner (volatile).
    decided: BTreeMap<u64, Command>,
    first_unapplied: u64,
    machine: StateMachine,
    // Proposer.
    role: Role,
    leader_hint: Option<NodeId>,
    max_round_seen: u64,
    ticks_since_heard: u32,
    election_timeout_ticks: u32,
    ticks: u64,
    /// Messages to itself, handled right after the current handler (never through the network).
    inbox: Vec<PeerMsg>,
    /// Conflicting decisions seen (two values chosen in one slot); only a mutant can make this non-zero.
    conflicts: u64,
}

impl PaxosServer {
    /// A server rebuilt from its durable storage (empty at first start).
    pub fn recover(
        id: NodeId,
        servers: Vec<NodeId>,
        params: PaxosParams,
        kind: WorkloadKind,
        storage: &Storage,
    ) -> Self {
        assert!(servers.contains(&id), "a paxos server is one of the servers");
        let promised: Ballot = storage.get(PROMISED_KEY).unwrap_or_default();
        let mut accepted = BTreeMap::new();
        for key in storage.keys_with_prefix(ACCEPTED_PREFIX) {
            let slot: u64 = key[ACCEPTED_PREFIX.len()..].parse().expect("accepted keys end in a slot number");
            let entry: (Ballot, Command) = storage.get(key).expect("the key was listed");
            accepted.insert(slot, entry);
        }
        PaxosServer {
            id,
            servers,
            params,
            max_round_seen: promised.round,
            promised,
            accepted,
            decided: BTreeMap::new(),
            first_unapplied: 0,
            machine: StateMachine::new(kind),
            role: Role::Follower,
            leader_hint: None,
            ticks_since_heard: 0,
            election_timeout_ticks: 0,
            ticks: 0,
            inbox: Vec::new(),
            conflicts: 0,
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }
    pub fn promised(&self) -> Ballot {
        self.promised
    }
    /// Slots decided and applied, from 0.
    pub fn applied_slots(&self) -> u64 {
        self.first_unapplied
    }
    /// The decided log (for tests: every server's log must agree slot by slot).
    pub fn decided(&self) -> &BTreeMap<u64, Command> {
        &self.decided
    }
    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }
    pub fn state_machine(&self) -> &StateMachine {
        &self.machine
    }

    fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        self.reset_election_timeout(ctx);
        ctx.set_timer(std::time::Duration::from_millis(self.params.tick_ms), 0);
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        ctx.set_timer(std::time::Duration::from_millis(self.params.tick_ms), 0);
        self.ticks += 1;
        let retransmit = self.params.retransmit_ticks;
        match &mut self.role {
            Role::Follower => {
                self.ticks_since_heard += 1;
                if self.ticks_since_heard >= self.election_timeout_ticks {
                    self.start_election(ctx);
                }
            }
            Role::Candidate { ballot, from_slot, promises, ticks } => {
                *ticks += 1;
                if *ticks >= self.election_timeout_ticks {
                    // Split votes or a partition: try again with a higher ballot.
                    self.start_election(ctx);
                } else if *ticks % retransmit == 0 {
                    let msg = PeerMsg::Prepare { ballot: *ballot, from_slot: *from_slot };
                    let missing: Vec<NodeId> =
                        self.servers.iter().copied().filter(|s| !promises.contains_key(s)).collect();
                    for to in missing {
                        self.send(ctx, to, msg.clone());
                    }
                }
            }
            Role::Leader { ballot, proposals, .. } => {
                let ballot = *ballot;
                let mut resend = Vec::new();
                for (slot, proposal) in proposals.iter_mut() {
                    proposal.ticks_since_sent += 1;
                    if proposal.ticks_since_sent >= retransmit {
                        proposal.ticks_since_sent = 0;
                        let missing: Vec<NodeId> =
                            self.servers.iter().copied().filter(|s| !proposal.acks.contains(s)).collect();
                        resend.push((
                            missing,
                            PeerMsg::Accept { ballot, slot: *slot, command: proposal.command.clone() },
                        ));
                    }
                }
                for (missing, msg) in resend {
                    for to in missing {
                        self.send(ctx, to, msg.clone());
                    }
                }
                if self.ticks.is_multiple_of(u64::from(self.params.heartbeat_ticks)) {
                    self.broadcast_heartbeat(ctx, ballot);
                }
            }
        }
        self.drain_inbox(ctx);
    }

    /// A client request: the leader proposes it; a follower that knows a leader relays it there (the
    /// leader answers the client directly), and one that knows none tells the client to look elsewhere.
    /// Relaying rather than redirecting saves the client a round trip, and with it one more message
    /// that loss could take: a client that resends to a follower after a lost request or reply still
    /// reaches the leader in one attempt.
    pub fn on_request(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, client: NodeId, request: ClientRequest) {
        match self.leader_hint {
            _ if self.is_leader() => self.propose_request(ctx, client, request),
            Some(leader) if leader != self.id => self.send(ctx, leader, PeerMsg::Forward { client, request }),
            _ => {
                let reply = ClientReply::to(&request, ReplyResult::Redirect(None));
                ctx.send(client, PaxosMsg::Reply(reply));
            }
        }
        self.drain_inbox(ctx);
    }

    /// A request relayed by a follower. Relayed once only: a server that is no longer leader sends the
    /// client its own hint instead of relaying again, so a stale hint cannot make requests circle.
    fn on_forward(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, client: NodeId, request: ClientRequest) {
        if self.is_leader() {
            self.propose_request(ctx, client, request);
        } else {
            let hint = self.leader_hint.filter(|h| *h != self.id);
            ctx.send(client, PaxosMsg::Reply(ClientReply::to(&request, ReplyResult::Redirect(hint))));
        }
    }

    /// The leader proposes a client request in the next free slot. A retry of a request that was
    /// chosen already is proposed again: applying it a second time only returns the first result (the
    /// state machine executes each (process, seq) once).
    fn propose_request(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, client: NodeId, request: ClientRequest) {
        let Role::Leader { ballot, next_slot, proposals } = &mut self.role else {
            unreachable!("only a leader proposes");
        };
        if proposals.values().any(|p| p.command.is_request(&request)) {
            return; // already in flight; the reply comes when it is decided
        }
        if proposals.len() >= MAX_PROPOSALS_IN_FLIGHT {
            let reply = ClientReply::to(&request, ReplyResult::Fail("overloaded".into()));
            ctx.send(client, PaxosMsg::Reply(reply));
            return;
        }
        let slot = *next_slot;
        *next_slot += 1;
        let ballot = *ballot;
        let command = Command::Client { client, request };
        proposals.insert(slot, Proposal { command: command.clone(), acks: BTreeSet::new(), ticks_since_sent: 0 });
        self.broadcast(ctx, PeerMsg::Accept { ballot, slot, command });
    }

    pub fn on_peer(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, msg: PeerMsg) {
        self.handle(ctx, from, msg);
        self.drain_inbox(ctx);
    }

    fn drain_inbox(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        // Bounded: each local message can only cause a bounded number of further local messages.
        let mut rounds = 0;
        while !self.inbox.is_empty() {
            rounds += 1;
            assert!(rounds < 10_000, "local message loop");
            let batch = std::mem::take(&mut self.inbox);
            for msg in batch {
                self.handle(ctx, self.id, msg);
            }
        }
    }

    fn handle(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, msg: PeerMsg) {
        match msg {
            PeerMsg::Prepare { ballot, from_slot } => self.on_prepare(ctx, from, ballot, from_slot),
            PeerMsg::Promise { ballot, accepted } => self.on_promise(ctx, from, ballot, accepted),
            PeerMsg::Accept { ballot, slot, command } => self.on_accept(ctx, from, ballot, slot, command),
            PeerMsg::Accepted { ballot, slot } => self.on_accepted(ctx, from, ballot, slot),
            PeerMsg::Reject { promised } => self.on_reject(ctx, promised),
            PeerMsg::Decide { slot, command } => self.learn(ctx, slot, command),
            PeerMsg::Heartbeat { ballot, first_undecided } => self.on_heartbeat(ctx, from, ballot, first_undecided),
            PeerMsg::Forward { client, request } => self.on_forward(ctx, client, request),
            PeerMsg::CatchUp { from_slot } => {
                let end = self.first_unapplied.min(from_slot.saturating_add(CATCH_UP_BATCH));
                for slot in from_slot..end {
                    let command = self.decided.get(&slot).expect("applied slots are decided").clone();
                    self.send(ctx, from, PeerMsg::Decide { slot, command });
                }
            }
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, to: NodeId, msg: PeerMsg) {
        if to == self.id {
            self.inbox.push(msg);
        } else {
            ctx.send(to, PaxosMsg::Peer(msg));
        }
    }

    fn broadcast(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, msg: PeerMsg) {
        for to in self.servers.clone() {
            self.send(ctx, to, msg.clone());
        }
    }

    fn broadcast_heartbeat(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, ballot: Ballot) {
        let msg = PeerMsg::Heartbeat { ballot, first_undecided: self.first_unapplied };
        for to in self.servers.clone() {
            if to != self.id {
                ctx.send(to, PaxosMsg::Peer(msg.clone()));
            }
        }
    }

    fn reset_election_timeout(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        // Randomised so that two servers rarely time out together (and split the acceptors).
        let min = self.params.election_timeout_min_ms.max(self.params.tick_ms);
        let max = self.params.election_timeout_max_ms.max(min);
        let timeout_ms = ctx.rng().random_range(min..=max);
        self.election_timeout_ticks = u32::try_from(timeout_ms / self.params.tick_ms).unwrap_or(u32::MAX).max(1);
        self.ticks_since_heard = 0;
    }

    fn step_down(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, leader_hint: Option<NodeId>) {
        if !matches!(self.role, Role::Follower) {
            ctx.annotate(format!("step down (promised {:?})", self.promised));
        }
        self.role = Role::Follower;
        self.leader_hint = leader_hint;
        self.reset_election_timeout(ctx);
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        self.max_round_seen = self.max_round_seen.max(self.promised.round);
        let ballot = Ballot { round: self.max_round_seen + 1, leader: self.id.0 };
        self.max_round_seen = ballot.round;
        self.reset_election_timeout(ctx);
        let from_slot = self.first_unapplied;
        if self.params.mutant_skip_phase1 {
            // MUTANT: the new leader trusts its own view and starts phase 2 at once, without learning
            // what a majority has already accepted.
            ctx.annotate(format!("leader {ballot:?} (mutant: phase 1 skipped)"));
            self.role = Role::Leader { ballot, next_slot: from_slot, proposals: BTreeMap::new() };
            self.leader_hint = Some(self.id);
            self.broadcast_heartbeat(ctx, ballot);
            return;
        }
        ctx.annotate(format!("candidate {ballot:?} from slot {from_slot}"));
        self.role = Role::Candidate { ballot, from_slot, promises: BTreeMap::new(), ticks: 0 };
        self.leader_hint = None;
        self.broadcast(ctx, PeerMsg::Prepare { ballot, from_slot });
    }

    fn persist_promised(&mut self, ctx: &mut Ctx<'_, PaxosMsg>) {
        ctx.storage().put(PROMISED_KEY, &self.promised);
    }

    fn on_prepare(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, ballot: Ballot, from_slot: u64) {
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if ballot < self.promised {
            self.send(ctx, from, PeerMsg::Reject { promised: self.promised });
            return;
        }
        if ballot > self.promised {
            self.promised = ballot;
            // The promise must survive a crash, or a restarted acceptor could accept a lower ballot.
            self.persist_promised(ctx);
            let preempted = match &self.role {
                Role::Candidate { ballot: mine, .. } | Role::Leader { ballot: mine, .. } => *mine < ballot,
                Role::Follower => false,
            };
            if preempted {
                self.step_down(ctx, Some(from));
            }
        }
        let accepted = self
            .accepted
            .range(from_slot..)
            .map(|(slot, (b, command))| AcceptedEntry { slot: *slot, ballot: *b, command: command.clone() })
            .collect();
        self.send(ctx, from, PeerMsg::Promise { ballot, accepted });
    }

    fn on_promise(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, ballot: Ballot, accepted: Vec<AcceptedEntry>) {
        let majority = self.majority();
        let Role::Candidate { ballot: mine, from_slot, promises, .. } = &mut self.role else {
            return;
        };
        if *mine != ballot {
            return;
        }
        promises.insert(from, accepted);
        if promises.len() < majority {
            return;
        }
        let from_slot = *from_slot;
        // For each slot, the value accepted with the highest ballot: the only one that may have been
        // chosen, so the only one a new leader may propose there.
        let mut adopted: BTreeMap<u64, (Ballot, Command)> = BTreeMap::new();
        for entry in promises.values().flatten() {
            if entry.slot < from_slot {
                continue;
            }
            let better = adopted.get(&entry.slot).is_none_or(|(b, _)| *b < entry.ballot);
            if better {
                adopted.insert(entry.slot, (entry.ballot, entry.command.clone()));
            }
        }
        if self.params.mutant_ignore_accepted {
            // MUTANT: phase 1 runs, but the leader forgets what the acceptors reported.
            adopted.clear();
        }
        let next_slot = adopted.keys().next_back().map_or(from_slot, |last| last + 1);
        let mut proposals = BTreeMap::new();
        for slot in from_slot..next_slot {
            let command = adopted.remove(&slot).map_or(Command::Noop, |(_, c)| c);
            if let Some(decided) = self.decided.get(&slot) {
                if !self.params.any_mutant() {
                    assert_eq!(decided, &command, "a new leader re-proposes what was chosen in slot {slot}");
                }
            }
            proposals.insert(slot, Proposal { command, acks: BTreeSet::new(), ticks_since_sent: 0 });
        }
        ctx.annotate(format!("leader {ballot:?}, re-proposing slots {from_slot}..{next_slot}"));
        let resend: Vec<PeerMsg> = proposals
            .iter()
            .map(|(slot, p)| PeerMsg::Accept { ballot, slot: *slot, command: p.command.clone() })
            .collect();
        self.role = Role::Leader { ballot, next_slot, proposals };
        self.leader_hint = Some(self.id);
        self.broadcast_heartbeat(ctx, ballot);
        for msg in resend {
            self.broadcast(ctx, msg);
        }
    }

    fn on_accept(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, ballot: Ballot, slot: u64, command: Command) {
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if ballot < self.promised && !self.params.mutant_accept_lower_ballot {
            self.send(ctx, from, PeerMsg::Reject { promised: self.promised });
            return;
        }
        if ballot > self.promised {
            self.promised = ballot;
            self.persist_promised(ctx);
            if !matches!(self.role, Role::Follower) && from != self.id {
                self.step_down(ctx, Some(from));
            }
        }
        if from != self.id {
            self.leader_hint = Some(from);
            self.ticks_since_heard = 0;
        }
        // Persist before answering: an acceptor that forgets an accepted value after a crash could let
        // a later leader choose a different value in this slot.
        ctx.storage().put(&format!("{ACCEPTED_PREFIX}{slot:020}"), &(ballot, &command));
        self.accepted.insert(slot, (ballot, command));
        self.send(ctx, from, PeerMsg::Accepted { ballot, slot });
    }

    fn on_accepted(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, ballot: Ballot, slot: u64) {
        let majority = self.majority();
        let Role::Leader { ballot: mine, proposals, .. } = &mut self.role else {
            return;
        };
        if *mine != ballot {
            return;
        }
        let Some(proposal) = proposals.get_mut(&slot) else {
            return; // decided already
        };
        proposal.acks.insert(from);
        if proposal.acks.len() < majority {
            return;
        }
        let command = proposals.remove(&slot).expect("present above").command;
        for to in self.servers.clone() {
            if to != self.id {
                ctx.send(to, PaxosMsg::Peer(PeerMsg::Decide { slot, command: command.clone() }));
            }
        }
        self.learn(ctx, slot, command);
    }

    fn on_reject(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, promised: Ballot) {
        self.max_round_seen = self.max_round_seen.max(promised.round);
        let mine = match &self.role {
            Role::Candidate { ballot, .. } | Role::Leader { ballot, .. } => *ballot,
            Role::Follower => return,
        };
        if promised > mine {
            self.step_down(ctx, Some(NodeId(promised.leader)));
        }
    }

    fn on_heartbeat(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, from: NodeId, ballot: Ballot, first_undecided: u64) {
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if ballot < self.promised {
            // A deposed leader that has not noticed yet: tell it.
            ctx.send(from, PaxosMsg::Peer(PeerMsg::Reject { promised: self.promised }));
            return;
        }
        let mine = match &self.role {
            Role::Candidate { ballot, .. } | Role::Leader { ballot, .. } => Some(*ballot),
            Role::Follower => None,
        };
        if mine.is_some_and(|b| b < ballot) {
            self.step_down(ctx, Some(from));
        }
        if mine.is_none_or(|b| b < ballot) {
            self.leader_hint = Some(from);
            self.ticks_since_heard = 0;
        }
        if self.first_unapplied < first_undecided {
            ctx.send(from, PaxosMsg::Peer(PeerMsg::CatchUp { from_slot: self.first_unapplied }));
        }
    }

    fn learn(&mut self, ctx: &mut Ctx<'_, PaxosMsg>, slot: u64, command: Command) {
        if let Some(known) = self.decided.get(&slot) {
            if *known != command {
                self.conflicts += 1;
                ctx.annotate(format!("conflicting decisions in slot {slot}: {known:?} vs {command:?}"));
                assert!(self.params.any_mutant(), "two values chosen in slot {slot}: {known:?} and {command:?}");
            }
            return;
        }
        self.decided.insert(slot, command);
        let leading = self.is_leader();
        while let Some(command) = self.decided.get(&self.first_unapplied) {
            if let Command::Client { client, request } = command {
                let result = self.machine.apply_request(request);
                // Only the leader answers, so a client gets one reply per attempt; any server's
                // answer would be right, as every server applies the same log.
                if leading {
                    ctx.send(*client, PaxosMsg::Reply(ClientReply::to(request, result)));
                }
            }
            self.first_unapplied += 1;
        }
    }
}
