//! A primary-backup replica: primary of its view (execute, number, forward, answer), backup (install
//! state transfers, apply forwarded operations in order, fence older views), or a bystander that
//! redirects clients to the primary it knows. Its state is durable before it acknowledges anything.

use super::{PbMsg, PbParams, ReplicationMode, View};
use crate::configuration_service::{period_over, since_ms};
use crate::spec::WorkloadKind;
use crate::workload::{is_read_only, ClientReply, ClientRequest, ReplyResult, StateMachine};
use detsim_core::{Ctx, LocalTime, NodeId, Storage};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// What a replica keeps on durable storage: written before every acknowledgement and every answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Durable {
    view: View,
    /// Operations applied to `machine` (numbering continues across views).
    seq: u64,
    /// As a backup: the primary of `view` transferred its state here (operations of the view are
    /// accepted only after that). A primary is always synced.
    synced: bool,
    machine: StateMachine,
}

/// The primary's view of one backup.
#[derive(Clone, Debug)]
struct BackupProgress {
    /// The backup installed this view's state transfer.
    synced: bool,
    /// The highest operation it acknowledged in this view.
    acked: u64,
    /// When it fell behind (`None` while caught up).
    behind_since: Option<LocalTime>,
    last_sent: LocalTime,
}

/// A client operation the primary executed and is waiting to answer.
#[derive(Clone, Debug)]
struct Pending {
    client: NodeId,
    request: ClientRequest,
    result: ReplyResult,
}

/// Most operations a primary waits on, or queues while it transfers state (a limit on everything).
const MAX_PENDING: usize = 4096;
const STATE_KEY: &str = "pb/replica";

/// One replica.
pub struct PbServer {
    id: NodeId,
    view_service: NodeId,
    params: PbParams,
    state: Durable,
    // Primary only (volatile: a restarted primary transfers its state again).
    progress: BTreeMap<NodeId, BackupProgress>,
    pending: BTreeMap<u64, Pending>,
    /// Requests that arrived before every backup finished state transfer.
    queued: VecDeque<(NodeId, ClientRequest)>,
    // Backup only, with `mutant_ack_before_apply`: operations acknowledged but not yet applied.
    unapplied: BTreeMap<u64, ClientRequest>,
    last_ping: Option<LocalTime>,
    /// Client operations this server answered `Ok` (for split-brain probes and figures).
    ok_answers: u64,
}

impl PbServer {
    /// A replica rebuilt from its durable storage (empty, in no view, at first start).
    pub fn recover(id: NodeId, view_service: NodeId, params: PbParams, kind: WorkloadKind, storage: &Storage) -> Self {
        let state = storage
            .get(STATE_KEY)
            .unwrap_or_else(|| Durable { machine: StateMachine::new(kind), ..Durable::default() });
        PbServer {
            id,
            view_service,
            params,
            state,
            progress: BTreeMap::new(),
            pending: BTreeMap::new(),
            queued: VecDeque::new(),
            unapplied: BTreeMap::new(),
            last_ping: None,
            ok_answers: 0,
        }
    }

    pub fn view(&self) -> &View {
        &self.state.view
    }
    pub fn is_primary(&self) -> bool {
        self.state.view.primary == Some(self.id)
    }
    /// A primary whose backups all hold its state (it executes client operations).
    pub fn is_serving(&self) -> bool {
        self.is_primary() && self.progress.values().all(|p| p.synced)
    }
    pub fn applied_seq(&self) -> u64 {
        self.state.seq
    }
    pub fn state_machine(&self) -> &StateMachine {
        &self.state.machine
    }
    /// Client operations answered `Ok` by this server (this incarnation).
    pub fn ok_answers(&self) -> u64 {
        self.ok_answers
    }

    fn persist(&self, ctx: &mut Ctx<'_, PbMsg>) {
        ctx.storage().put(STATE_KEY, &self.state);
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        if self.is_primary() {
            // A restarted primary forgot which backups hold what: transfer its state again.
            self.start_primary(ctx);
        }
        self.ping(ctx);
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
    }

    fn ping(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        let now = ctx.now();
        self.last_ping = Some(now);
        let (synced, unreachable) = if self.is_primary() {
            let timeout_ms = self.params.backup_timeout_ms as i64;
            let unreachable = self
                .progress
                .iter()
                .filter(|(_, p)| p.behind_since.is_some_and(|t| since_ms(now, t) >= timeout_ms))
                .map(|(b, _)| *b)
                .collect();
            (self.progress.values().all(|p| p.synced), unreachable)
        } else {
            (false, Vec::new())
        };
        ctx.send(self.view_service, PbMsg::Ping { view: self.state.view.number, synced, unreachable });
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
        let now = ctx.now();
        if self.last_ping.is_none_or(|t| period_over(now, t, self.params.ping_interval_ms)) {
            self.ping(ctx);
        }
        if self.is_primary() {
            // A backup that is behind gets the whole state again: that covers lost forwards, a
            // lost state transfer and a backup that restarted, with one mechanism.
            let retransmit_ms = self.params.retransmit_ms;
            // Only a backup that stayed behind for a while: one that is a message or two behind
            // is just waiting for forwards in flight.
            let behind: Vec<NodeId> = self
                .progress
                .iter()
                .filter(|(_, p)| p.behind_since.is_some_and(|t| period_over(now, t, retransmit_ms)))
                .filter(|(_, p)| period_over(now, p.last_sent, retransmit_ms))
                .map(|(b, _)| *b)
                .collect();
            for backup in behind {
                self.send_sync(ctx, backup);
            }
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, PbMsg>, from: NodeId, msg: PbMsg) {
        match msg {
            PbMsg::Request(request) => self.on_request(ctx, from, request),
            PbMsg::ViewIs { view } => {
                if from == self.view_service {
                    self.adopt(ctx, view);
                }
            }
            PbMsg::Stale { view } => self.adopt(ctx, view),
            PbMsg::Sync { view, seq, state } => self.on_sync(ctx, from, view, seq, *state),
            PbMsg::Forward { view, seq, request } => self.on_forward(ctx, from, view, seq, request),
            PbMsg::SyncAck { view, seq } => self.on_ack(ctx, from, view, seq, true),
            PbMsg::ForwardAck { view, seq } => self.on_ack(ctx, from, view, seq, false),
            PbMsg::Reply(_) | PbMsg::Ping { .. } => {}
        }
    }

    /// Moves to a newer view (from the view service, a backup's fence, or a state transfer).
    fn adopt(&mut self, ctx: &mut Ctx<'_, PbMsg>, view: View) {
        if view.number <= self.state.view.number {
            return; // an old or repeated announcement
        }
        let was_primary = self.is_primary();
        self.state.view = view;
        if self.is_primary() {
            // The new primary already holds every acknowledged operation (the view service only
            // promotes such servers); its state is the truth of the new view. Operations still
            // pending from the previous view stay pending: they are answered once every backup of
            // this view has installed a state that contains them.
            self.state.synced = true;
            self.persist(ctx);
            self.start_primary(ctx);
            return;
        }
        // A backup waits for the new primary's state transfer before it accepts operations; a
        // server outside the view only redirects. Either way it now refuses the old view.
        self.state.synced = false;
        self.unapplied.clear();
        self.persist(ctx);
        if was_primary {
            self.step_down(ctx);
        }
    }

    /// Gives up the primary role: whatever waits here is answered so that clients move on.
    fn step_down(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        let hint = self.state.view.primary;
        for (_, pending) in std::mem::take(&mut self.pending) {
            // Executed here and maybe on some backups: the outcome is unknown. The client retries
            // at the new primary, which executes it at most once.
            let result = ReplyResult::Unknown("primary deposed".into());
            self.reply(ctx, pending.client, &pending.request, result);
        }
        for (client, request) in std::mem::take(&mut self.queued) {
            self.reply(ctx, client, &request, ReplyResult::Redirect(hint));
        }
        self.progress.clear();
    }

    /// Starts (or restarts) serving as primary of the current view: transfer state to every backup.
    fn start_primary(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        assert!(self.is_primary(), "only the primary transfers state");
        let now = ctx.now();
        self.progress = self
            .state
            .view
            .backups
            .iter()
            .map(|b| (*b, BackupProgress { synced: false, acked: 0, behind_since: Some(now), last_sent: now }))
            .collect();
        for backup in self.state.view.backups.clone() {
            self.send_sync(ctx, backup);
        }
        self.after_progress(ctx);
    }

    fn send_sync(&mut self, ctx: &mut Ctx<'_, PbMsg>, backup: NodeId) {
        let now = ctx.now();
        let progress = self.progress.get_mut(&backup).expect("state goes to backups of the view");
        progress.last_sent = now;
        let msg = PbMsg::Sync {
            view: self.state.view.clone(),
            seq: self.state.seq,
            state: Box::new(self.state.machine.clone()),
        };
        ctx.send(backup, msg);
    }

    fn reply(&mut self, ctx: &mut Ctx<'_, PbMsg>, client: NodeId, request: &ClientRequest, result: ReplyResult) {
        if matches!(result, ReplyResult::Ok(_)) {
            self.ok_answers += 1;
        }
        ctx.send(client, PbMsg::Reply(ClientReply::to(request, result)));
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_, PbMsg>, client: NodeId, request: ClientRequest) {
        if !self.is_primary() {
            let hint = self.state.view.primary.filter(|p| *p != self.id);
            self.reply(ctx, client, &request, ReplyResult::Redirect(hint));
            return;
        }
        let synchronous = self.params.mode == ReplicationMode::Sync;
        if synchronous && !self.is_serving() {
            // Executing now would run ahead of a backup that has not got our state yet; queue.
            if self.queued.len() + self.pending.len() >= MAX_PENDING {
                self.reply(ctx, client, &request, ReplyResult::Fail("overloaded".into()));
            } else {
                self.queued.push_back((client, request));
            }
            return;
        }
        self.execute(ctx, client, request);
    }

    fn execute(&mut self, ctx: &mut Ctx<'_, PbMsg>, client: NodeId, request: ClientRequest) {
        if self.params.mutant_local_reads && is_read_only(&request.op) {
            // MUTANT: a read answered from local state, without checking that the backups still
            // follow this primary. A deposed primary that has not heard of its successor answers
            // from a state the new primary has moved past.
            let result = self.state.machine.apply_request(&request);
            self.reply(ctx, client, &request, result);
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            self.reply(ctx, client, &request, ReplyResult::Fail("overloaded".into()));
            return;
        }
        let result = self.state.machine.apply_request(&request);
        self.state.seq += 1;
        let seq = self.state.seq;
        // Durable before anyone hears of it, so that a restarted primary is never behind a backup.
        self.persist(ctx);
        let now = ctx.now();
        let msg = PbMsg::Forward { view: self.state.view.number, seq, request: request.clone() };
        for (backup, progress) in self.progress.iter_mut() {
            if progress.behind_since.is_none() {
                progress.behind_since = Some(now);
            }
            ctx.send(*backup, msg.clone());
        }
        match self.params.mode {
            // Reads too: only the backups' acknowledgements prove this is still the primary.
            ReplicationMode::Sync if !self.progress.is_empty() => {
                self.pending.insert(seq, Pending { client, request, result });
            }
            // Asynchronous: answer now and let the backups catch up (the lesson is in what this
            // costs on failover).
            _ => self.reply(ctx, client, &request, result),
        }
    }

    fn on_ack(&mut self, ctx: &mut Ctx<'_, PbMsg>, from: NodeId, view: u64, seq: u64, sync: bool) {
        if view != self.state.view.number || !self.is_primary() {
            return;
        }
        let now = ctx.now();
        let current = self.state.seq;
        let Some(progress) = self.progress.get_mut(&from) else { return };
        if sync {
            progress.synced = true;
        }
        if !progress.synced {
            return; // acknowledgements count only after the backup installed this view's state
        }
        // "Behind since" measures the time without progress: only a higher acknowledgement moves
        // it, so a backup stuck behind a gap that keeps repeating its old number is noticed.
        if seq > progress.acked || sync {
            progress.acked = progress.acked.max(seq);
            progress.behind_since = if progress.acked >= current { None } else { Some(now) };
        }
        self.after_progress(ctx);
    }

    /// Answers every pending operation all backups acknowledged, and starts the queued ones once
    /// every backup is synced.
    fn after_progress(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        let replicated = self.progress.values().map(|p| if p.synced { p.acked } else { 0 }).min().unwrap_or(u64::MAX);
        let done: Vec<u64> = self.pending.range(..=replicated).map(|(seq, _)| *seq).collect();
        for seq in done {
            let pending = self.pending.remove(&seq).expect("listed above");
            self.reply(ctx, pending.client, &pending.request, pending.result);
        }
        if self.is_serving() {
            while let Some((client, request)) = self.queued.pop_front() {
                self.execute(ctx, client, request);
            }
        }
    }

    /// State transfer from the primary of `view`.
    fn on_sync(&mut self, ctx: &mut Ctx<'_, PbMsg>, from: NodeId, view: View, seq: u64, state: StateMachine) {
        if view.primary != Some(from) || !view.is_backup(self.id) {
            return; // not a state transfer meant for this server
        }
        if view.number < self.state.view.number {
            if self.params.mutant_no_fencing {
                // MUTANT: the state of whoever claims to be primary is installed, view or no view.
                self.state.seq = seq;
                self.state.machine = state;
                self.unapplied.clear();
                self.persist(ctx);
                ctx.send(from, PbMsg::SyncAck { view: view.number, seq });
            } else {
                // The fence: a deposed primary learns about the newer view and steps down.
                ctx.send(from, PbMsg::Stale { view: self.state.view.clone() });
            }
            return;
        }
        // A newer view's primary is the truth whatever this replica held (and if this server led
        // an older view, it stops). Within one view the primary's states only grow, so a later
        // transfer replaces an earlier one and a delayed older one is ignored.
        self.adopt(ctx, view.clone());
        if !self.state.synced || seq >= self.state.seq {
            self.state.seq = seq;
            self.state.machine = state;
            self.state.synced = true;
            self.unapplied.clear();
            self.persist(ctx);
        }
        ctx.send(from, PbMsg::SyncAck { view: view.number, seq: self.state.seq });
    }

    /// Operation `seq` of `view`, forwarded by its primary.
    fn on_forward(&mut self, ctx: &mut Ctx<'_, PbMsg>, from: NodeId, view: u64, seq: u64, request: ClientRequest) {
        if self.params.mutant_no_fencing {
            // MUTANT: whoever forwards is obeyed, whatever view it is in.
            if !self.state.synced {
                return;
            }
            if seq == self.state.seq + 1 {
                self.apply(ctx, &request);
            }
            ctx.send(from, PbMsg::ForwardAck { view, seq: self.state.seq });
            return;
        }
        if view < self.state.view.number {
            // The fence: the sender was deposed. Telling it why makes it step down at once.
            ctx.send(from, PbMsg::Stale { view: self.state.view.clone() });
            return;
        }
        if view > self.state.view.number || !self.state.synced || self.state.view.primary != Some(from) {
            return; // wait for this view's state transfer; the primary resends it
        }
        if self.params.mutant_ack_before_apply {
            // MUTANT: acknowledged on arrival. After a lost forward, later ones are acknowledged
            // while they wait for the gap, so the primary counts operations this backup lacks.
            self.unapplied.insert(seq, request);
            ctx.send(from, PbMsg::ForwardAck { view, seq });
            while let Some(next) = self.unapplied.remove(&(self.state.seq + 1)) {
                self.apply(ctx, &next);
            }
            return;
        }
        if seq == self.state.seq + 1 {
            self.apply(ctx, &request);
        }
        // Cumulative: duplicates and gaps just repeat how far this backup got, and the primary
        // resends its state when it sees the backup stay behind.
        ctx.send(from, PbMsg::ForwardAck { view, seq: self.state.seq });
    }

    fn apply(&mut self, ctx: &mut Ctx<'_, PbMsg>, request: &ClientRequest) {
        self.state.machine.apply_request(request);
        self.state.seq += 1;
        self.persist(ctx);
    }
}
