//! A chain server: head (orders and applies updates, passes them on), middle (applies in order and
//! passes on), tail (applies, answers the client, answers reads once the master confirms its
//! configuration); any server relays a client request to the head or the tail. Its state is durable
//! before it passes anything on or answers.

use super::{ChainMsg, ChainParams, Config};
use crate::configuration_service::{period_over, since_ms};
use crate::spec::WorkloadKind;
use crate::workload::{is_read_only, ClientReply, ClientRequest, ReplyResult, StateMachine};
use detsim_core::{Ctx, LocalTime, NodeId, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a chain server keeps on durable storage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Durable {
    config: Config,
    /// Updates applied to `machine` (the head's numbering, continued across configurations).
    seq: u64,
    /// This configuration's state transfer reached this server (the head is always synced).
    synced: bool,
    machine: StateMachine,
}

/// How far the successor got, as its acknowledgements say.
#[derive(Clone, Debug)]
struct SuccessorProgress {
    node: NodeId,
    synced: bool,
    acked: u64,
    behind_since: Option<LocalTime>,
    last_sync_sent: Option<LocalTime>,
}

/// Most reads a tail waits to confirm (a limit on everything).
const MAX_PENDING_READS: usize = 4096;
/// Most updates a server holds that arrived ahead of a gap.
const MAX_REORDERED: usize = 256;
/// Most updates a server remembers having forwarded without an acknowledgement (beyond that, a
/// lagging successor gets the whole state instead).
const MAX_SENT: usize = 1024;
/// Most times a client request is relayed between servers before it is dropped (configurations
/// may disagree for a moment; the client resends).
const MAX_RELAY_HOPS: u8 = 3;
const STATE_KEY: &str = "chain/server";

/// One chain server.
pub struct ChainServer {
    id: NodeId,
    master: NodeId,
    params: ChainParams,
    state: Durable,
    successor: Option<SuccessorProgress>,
    /// Reads waiting for the master's confirmation, by read number, with the answer as of their
    /// arrival.
    pending_reads: BTreeMap<u64, (NodeId, ClientRequest, ReplyResult)>,
    next_read: u64,
    /// When the tail last asked the master about its pending reads.
    last_read_check: Option<LocalTime>,
    /// Updates of this configuration that arrived before an earlier one (links reorder), by seq.
    reordered: BTreeMap<u64, (NodeId, ClientRequest)>,
    /// The paper's *Sent* list: updates forwarded to the successor and not yet acknowledged by
    /// it, resent when it stays behind (volatile: after a restart the whole state goes instead).
    sent: BTreeMap<u64, (NodeId, ClientRequest)>,
    last_ping: Option<LocalTime>,
    ok_answers: u64,
}

impl ChainServer {
    /// A server rebuilt from its durable storage (in no chain at first start).
    pub fn recover(id: NodeId, master: NodeId, params: ChainParams, kind: WorkloadKind, storage: &Storage) -> Self {
        let state = storage
            .get(STATE_KEY)
            .unwrap_or_else(|| Durable { machine: StateMachine::new(kind), ..Durable::default() });
        ChainServer {
            id,
            master,
            params,
            state,
            successor: None,
            pending_reads: BTreeMap::new(),
            next_read: 0,
            last_read_check: None,
            reordered: BTreeMap::new(),
            sent: BTreeMap::new(),
            last_ping: None,
            ok_answers: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.state.config
    }
    pub fn is_head(&self) -> bool {
        self.state.config.head() == Some(self.id)
    }
    pub fn is_tail(&self) -> bool {
        self.state.config.tail() == Some(self.id)
    }
    pub fn applied_seq(&self) -> u64 {
        self.state.seq
    }
    pub fn state_machine(&self) -> &StateMachine {
        &self.state.machine
    }
    /// Client operations this server answered `Ok` (this incarnation).
    pub fn ok_answers(&self) -> u64 {
        self.ok_answers
    }

    fn persist(&self, ctx: &mut Ctx<'_, ChainMsg>) {
        ctx.storage().put(STATE_KEY, &self.state);
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        // Whatever this server passed on before a crash is gone from its memory: pass its whole
        // state on again.
        self.reset_successor();
        if self.is_head() {
            self.state.synced = true;
        }
        self.ping(ctx);
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
    }

    fn reset_successor(&mut self) {
        self.sent.clear();
        self.successor = self.state.config.successor(self.id).map(|node| SuccessorProgress {
            node,
            synced: false,
            acked: 0,
            behind_since: None,
            last_sync_sent: None,
        });
    }

    fn ping(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        let now = ctx.now();
        self.last_ping = Some(now);
        let timeout_ms = self.params.successor_timeout_ms as i64;
        let stuck_successor = self
            .successor
            .as_ref()
            .filter(|p| p.behind_since.is_some_and(|t| since_ms(now, t) >= timeout_ms))
            .map(|p| p.node);
        let msg = ChainMsg::Ping { config: self.state.config.number, synced: self.state.synced, stuck_successor };
        ctx.send(self.master, msg);
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
        let now = ctx.now();
        if self.last_ping.is_none_or(|t| period_over(now, t, self.params.ping_interval_ms)) {
            self.ping(ctx);
        }
        // A successor that stays behind (a lost or reordered forward, a restart, a new
        // configuration) gets this server's whole state: one mechanism for every gap.
        let retransmit_ms = self.params.retransmit_ms;
        let resend = self.state.synced
            && self.successor.as_ref().is_some_and(|p| {
                let behind = !p.synced || p.acked < self.state.seq;
                behind
                    && p.behind_since.is_none_or(|t| period_over(now, t, retransmit_ms))
                    && p.last_sync_sent.is_none_or(|t| period_over(now, t, retransmit_ms))
            });
        if resend {
            self.resend(ctx);
        }
        // A lost question or answer must not strand the reads: ask again for the newest one (its
        // answer confirms every read before it too).
        let ask_again = self.last_read_check.is_none_or(|t| period_over(now, t, retransmit_ms));
        if let Some((&read, _)) = self.pending_reads.last_key_value().filter(|_| ask_again) {
            self.last_read_check = Some(now);
            ctx.send(self.master, ChainMsg::ReadCheck { config: self.state.config.number, read });
        }
    }

    /// Brings a lagging successor up to date: the updates it lacks from the Sent list when they
    /// are all there (cheap, and the tail can answer their clients), the whole state otherwise.
    fn resend(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        let now = ctx.now();
        let config = self.state.config.number;
        let seq = self.state.seq;
        let Some(progress) = self.successor.as_mut() else { return };
        let missing = progress.acked + 1..=seq;
        let all_there = progress.synced && missing.clone().all(|s| self.sent.contains_key(&s));
        if !all_there {
            self.send_sync(ctx);
            return;
        }
        progress.last_sync_sent = Some(now);
        for s in missing {
            let (client, request) = self.sent[&s].clone();
            ctx.send(progress.node, ChainMsg::Forward { config, seq: s, client, request });
        }
    }

    fn send_sync(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        let now = ctx.now();
        let Some(progress) = self.successor.as_mut() else { return };
        progress.last_sync_sent = Some(now);
        if progress.behind_since.is_none() {
            progress.behind_since = Some(now);
        }
        let msg = ChainMsg::Sync {
            config: self.state.config.clone(),
            seq: self.state.seq,
            state: Box::new(self.state.machine.clone()),
        };
        ctx.send(progress.node, msg);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, ChainMsg>, from: NodeId, msg: ChainMsg) {
        match msg {
            ChainMsg::Request(request) => self.on_request(ctx, from, request, 0),
            ChainMsg::Relay { client, request, hops } => self.on_request(ctx, client, request, hops),
            ChainMsg::ConfigIs { config } => {
                if from == self.master {
                    self.adopt(ctx, config);
                }
            }
            ChainMsg::Stale { config } => self.adopt(ctx, config),
            ChainMsg::Sync { config, seq, state } => self.on_sync(ctx, from, config, seq, *state),
            ChainMsg::Forward { config, seq, client, request } => {
                self.on_forward(ctx, from, config, seq, client, request)
            }
            ChainMsg::Ack { config, seq } => self.on_ack(ctx, from, config, seq),
            ChainMsg::ReadOk { config, read } => self.on_read_ok(ctx, from, config, read),
            ChainMsg::Reply(_) | ChainMsg::Ping { .. } | ChainMsg::ReadCheck { .. } => {}
        }
    }

    /// Moves to a newer configuration (from the master, a fence, or a state transfer).
    fn adopt(&mut self, ctx: &mut Ctx<'_, ChainMsg>, config: Config) {
        if config.number <= self.state.config.number {
            return;
        }
        self.state.config = config;
        // The head of the new chain holds every acknowledged update (the master made sure); every
        // other member waits for the state to be passed down to it.
        self.state.synced = self.is_head();
        self.persist(ctx);
        self.reset_successor();
        // Reads waiting here were for the old configuration; their clients resend.
        self.pending_reads.clear();
        self.reordered.clear();
        if self.is_head() {
            self.send_sync(ctx);
        }
    }

    fn reply(&mut self, ctx: &mut Ctx<'_, ChainMsg>, client: NodeId, request: &ClientRequest, result: ReplyResult) {
        if matches!(result, ReplyResult::Ok(_)) {
            self.ok_answers += 1;
        }
        ctx.send(client, ChainMsg::Reply(ClientReply::to(request, result)));
    }

    /// A client request (maybe relayed): updates belong to the head, reads to the tail.
    fn on_request(&mut self, ctx: &mut Ctx<'_, ChainMsg>, client: NodeId, request: ClientRequest, hops: u8) {
        let read = is_read_only(&request.op);
        let target = if read { self.state.config.tail() } else { self.state.config.head() };
        match target {
            Some(target) if target == self.id => {}
            Some(target) if hops < MAX_RELAY_HOPS => {
                ctx.send(target, ChainMsg::Relay { client, request, hops: hops + 1 });
                return;
            }
            _ => {
                self.reply(ctx, client, &request, ReplyResult::Redirect(None));
                return;
            }
        }
        if read {
            self.start_read(ctx, client, request);
        } else {
            self.update(ctx, client, request);
        }
    }

    /// At the head: order the update, apply it, pass it down the chain.
    fn update(&mut self, ctx: &mut Ctx<'_, ChainMsg>, client: NodeId, request: ClientRequest) {
        assert!(self.is_head() && self.state.synced, "the head executes updates");
        // Duplicates (a client's resend) go down the chain too: each server's session table
        // answers them with the recorded result, and only the tail may say they are committed.
        let result = self.state.machine.apply_request(&request);
        self.state.seq += 1;
        self.persist(ctx);
        if self.params.mutant_reply_at_head {
            // MUTANT: acknowledged before the rest of the chain has it; a head failure loses it.
            self.reply(ctx, client, &request, result.clone());
        }
        self.pass_on(ctx, client, request, result);
    }

    /// After applying update `seq`: the tail answers, anyone else forwards it to its successor.
    fn pass_on(&mut self, ctx: &mut Ctx<'_, ChainMsg>, client: NodeId, request: ClientRequest, result: ReplyResult) {
        let seq = self.state.seq;
        let now = ctx.now();
        let config = self.state.config.number;
        let answered_at_head = self.params.mutant_reply_at_head && self.is_head();
        match self.successor.as_mut() {
            Some(progress) => {
                if progress.behind_since.is_none() {
                    progress.behind_since = Some(now);
                }
                let node = progress.node;
                if self.sent.len() < MAX_SENT {
                    self.sent.insert(seq, (client, request.clone()));
                }
                ctx.send(node, ChainMsg::Forward { config, seq, client, request });
            }
            // The tail: every server of the chain holds the update, so it is committed.
            None if !answered_at_head => self.reply(ctx, client, &request, result),
            None => {}
        }
    }

    fn start_read(&mut self, ctx: &mut Ctx<'_, ChainMsg>, client: NodeId, request: ClientRequest) {
        if !self.state.synced {
            return; // state transfer has not reached this tail yet; the client resends
        }
        if self.params.mutant_unconfirmed_tail_reads {
            // MUTANT: the tail trusts that it is still the tail. One the master removed (it was cut
            // off, or paused) answers from a state the new tail has moved past.
            let result = self.state.machine.apply_request(&request);
            self.reply(ctx, client, &request, result);
            return;
        }
        if self.pending_reads.len() >= MAX_PENDING_READS {
            self.reply(ctx, client, &request, ReplyResult::Fail("overloaded".into()));
            return;
        }
        // A removed tail cannot know it was removed without asking: the master confirms that this
        // configuration is still current (a read index against the configuration service). The
        // answer is taken now: at this moment no later configuration exists (the master will say
        // so), so every update acknowledged before the read began is in this tail's state.
        let read = self.next_read;
        self.next_read += 1;
        let result = self.state.machine.apply_request(&request);
        self.pending_reads.insert(read, (client, request, result));
        self.last_read_check = Some(ctx.now());
        ctx.send(self.master, ChainMsg::ReadCheck { config: self.state.config.number, read });
    }

    fn on_read_ok(&mut self, ctx: &mut Ctx<'_, ChainMsg>, from: NodeId, config: u64, read: u64) {
        if from != self.master || config != self.state.config.number || !self.is_tail() {
            return;
        }
        // Reads that arrived before this one are confirmed by the same answer.
        let confirmed: Vec<u64> = self.pending_reads.range(..=read).map(|(r, _)| *r).collect();
        for r in confirmed {
            let (client, request, result) = self.pending_reads.remove(&r).expect("listed above");
            self.reply(ctx, client, &request, result);
        }
    }

    fn fenced(&self, config: u64) -> bool {
        !self.params.mutant_no_fencing && config < self.state.config.number
    }

    /// State transfer from the predecessor of `config`.
    fn on_sync(&mut self, ctx: &mut Ctx<'_, ChainMsg>, from: NodeId, config: Config, seq: u64, state: StateMachine) {
        if self.fenced(config.number) {
            ctx.send(from, ChainMsg::Stale { config: self.state.config.clone() });
            return;
        }
        if config.predecessor(self.id) != Some(from) {
            return; // not meant for this server in that configuration
        }
        let older = config.number < self.state.config.number; // only with the no-fencing mutant
        self.adopt(ctx, config.clone());
        if older || !self.state.synced || seq >= self.state.seq {
            // The predecessor's state extends this one (each server holds a prefix of what its
            // predecessor holds), so installing it loses nothing.
            self.state.seq = seq;
            self.state.machine = state;
            self.state.synced = true;
            self.persist(ctx);
            // Updates held back behind a gap that the transferred state covers: the tail answers
            // them (their results are in the session table); the rest apply in order.
            let covered: Vec<u64> = self.reordered.range(..=seq).map(|(s, _)| *s).collect();
            for covered_seq in covered {
                let (client, request) = self.reordered.remove(&covered_seq).expect("listed above");
                if self.successor.is_none() {
                    let result = self.state.machine.apply_request(&request);
                    if !matches!(result, ReplyResult::Unknown(_)) {
                        self.reply(ctx, client, &request, result);
                    }
                }
            }
            self.apply_reordered(ctx);
        }
        ctx.send(from, ChainMsg::Ack { config: config.number, seq: self.state.seq });
        if self.successor.as_ref().is_some_and(|p| !p.synced || p.acked < self.state.seq) {
            self.send_sync(ctx);
        }
    }

    /// Update `seq`, passed down by the predecessor.
    fn on_forward(
        &mut self,
        ctx: &mut Ctx<'_, ChainMsg>,
        from: NodeId,
        config: u64,
        seq: u64,
        client: NodeId,
        request: ClientRequest,
    ) {
        if self.fenced(config) {
            ctx.send(from, ChainMsg::Stale { config: self.state.config.clone() });
            return;
        }
        let current = config == self.state.config.number;
        if (!current && !self.params.mutant_no_fencing)
            || !self.state.synced
            || (current && self.state.config.predecessor(self.id) != Some(from))
        {
            return; // wait for this configuration's state transfer; the predecessor resends it
        }
        if seq == self.state.seq + 1 {
            self.apply_forward(ctx, client, request);
            self.apply_reordered(ctx);
        } else if seq > self.state.seq + 1 && current && self.reordered.len() < MAX_REORDERED {
            // Ahead of a gap (the link reordered): keep it for when the gap fills.
            self.reordered.insert(seq, (client, request));
        }
        // Cumulative: a duplicate or a gap just repeats how far this server got.
        ctx.send(from, ChainMsg::Ack { config, seq: self.state.seq });
    }

    fn apply_forward(&mut self, ctx: &mut Ctx<'_, ChainMsg>, client: NodeId, request: ClientRequest) {
        let result = self.state.machine.apply_request(&request);
        self.state.seq += 1;
        self.persist(ctx);
        self.pass_on(ctx, client, request, result);
    }

    /// Applies held-back updates that are next in line.
    fn apply_reordered(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        while let Some((client, request)) = self.reordered.remove(&(self.state.seq + 1)) {
            self.apply_forward(ctx, client, request);
        }
        // Anything at or below what is applied now is a duplicate.
        let applied = self.state.seq;
        self.reordered.retain(|s, _| *s > applied);
    }

    /// The successor applied everything up to `seq` in `config` (it only acknowledges once it
    /// holds this configuration's state).
    fn on_ack(&mut self, ctx: &mut Ctx<'_, ChainMsg>, from: NodeId, config: u64, seq: u64) {
        if config != self.state.config.number {
            return;
        }
        let now = ctx.now();
        let current = self.state.seq;
        let Some(progress) = self.successor.as_mut().filter(|p| p.node == from) else { return };
        progress.synced = true;
        let acked_now = progress.acked.max(seq);
        self.sent.retain(|s, _| *s > acked_now);
        let Some(progress) = self.successor.as_mut() else { return };
        // Only progress moves "behind since", so a successor stuck behind a gap is noticed.
        if seq > progress.acked || progress.behind_since.is_some() && seq >= current {
            progress.acked = progress.acked.max(seq);
            progress.behind_since = if progress.synced && progress.acked >= current { None } else { Some(now) };
        }
    }
}
