//! SWIM membership and failure detection (Das, Gupta, Motivala 2002, "SWIM: Scalable
//! Weakly-consistent Infection-style Process Group Membership Protocol", DSN).
//!
//! # Protocol
//! Every protocol period each member probes one other member, chosen round robin over a list it
//! reshuffles after each pass (§4.3: bounded time to first detection). It sends `Ping`; when no `Ack`
//! comes within `ping_timeout_ms`, it asks `indirect_probes` random members to `PingReq` the target
//! for it (§3.1), which routes around a lossy link or a congested direct path. When neither a direct
//! nor an indirect ack has come by the end of the period, the target becomes *suspect* (§4.2):
//! the suspicion spreads, and if the suspect does not refute it within `suspicion_periods` periods it
//! is declared *dead*. A member that hears itself suspected (or declared dead) refutes by bumping its
//! incarnation number and spreading `Alive`; higher incarnations override older news. Updates travel
//! piggybacked on pings and acks (infection-style dissemination, §4.1), each retransmitted about
//! `retransmit_mult * log2(N)` times, at most `piggyback_max` per message, least-sent first.
//!
//! A restarted member rejoins with a higher incarnation (kept in durable storage) than the one it was
//! declared dead at; like HashiCorp memberlist, a higher-incarnation `Alive` revives a dead member.
//!
//! **Reconnecting after a partition.** In the paper a dead member is gone for good, so after a
//! partition each side has declared the other dead, nobody probes across any more, and the group
//! stays split forever after the heal. Like Serf's reconnect loop, every `reconnect_periods` periods
//! a member also pings one random member it holds dead, with that member's own death notice on the
//! ping: a live one refutes it (a higher incarnation, carried back on the ack), and the `Alive`
//! spreads like any update. `reconnect_periods = 0` is the paper's behaviour.
//!
//! # What a run records
//! History measurement events (see [`crate::gossip::events`]), key = the member's node index, value =
//! the incarnation: `suspect`, `dead`, and `alive` (a suspect or dead member seen alive again).
//! [`detection_report`] and [`false_positive_deaths`] turn them into detection times and false
//! positives against the run's crash windows.
//!
//! # Deliberate bug
//! `bug_no_suspicion`: a failed probe declares the target dead at once (SWIM's basic protocol, §3).
//! Under message loss, live members get declared dead; the tests count those false positives.

use crate::gossip::events::{instant_events, record_instant};
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::history::{History, Value};
use detsim_core::{AnySimulation, Ctx, LocalTime, Message, Node, NodeId, Simulation, Storage, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// SWIM parameters (scenario `params`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwimParams {
    pub protocol_period_ms: u64,
    /// Direct ping timeout; must leave room for the indirect round within the period.
    pub ping_timeout_ms: u64,
    /// Members asked to probe indirectly (`k` in the paper).
    pub indirect_probes: usize,
    /// Suspicion timeout in protocol periods.
    pub suspicion_periods: u64,
    /// Retransmissions of an update: `retransmit_mult * ceil(log2(N + 1))`.
    pub retransmit_mult: u32,
    /// Updates piggybacked per message at most.
    pub piggyback_max: usize,
    /// Every this many periods, ping one member held dead (0: never, as in the paper).
    pub reconnect_periods: u64,
    /// Deliberate bug: no suspicion — a failed probe is a death.
    pub bug_no_suspicion: bool,
}

impl Default for SwimParams {
    fn default() -> Self {
        SwimParams {
            protocol_period_ms: 200,
            ping_timeout_ms: 60,
            indirect_probes: 3,
            suspicion_periods: 6,
            retransmit_mult: 4,
            piggyback_max: 8,
            reconnect_periods: 5,
            bug_no_suspicion: false,
        }
    }
}

impl SwimParams {
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if nodes < 2 {
            return Err("swim needs at least 2 members".into());
        }
        if self.ping_timeout_ms == 0 || self.ping_timeout_ms >= self.protocol_period_ms {
            return Err("ping_timeout_ms must be positive and below protocol_period_ms".into());
        }
        if self.suspicion_periods == 0 || self.retransmit_mult == 0 || self.piggyback_max == 0 {
            return Err("suspicion_periods, retransmit_mult and piggyback_max must be positive".into());
        }
        Ok(())
    }
}

/// A member's state as one node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Alive,
    Suspect,
    Dead,
}

/// A membership update, disseminated by piggybacking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Update {
    pub member: NodeId,
    pub status: Status,
    pub incarnation: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SwimMsg {
    Ping { seq: u64, updates: Vec<Update> },
    Ack { seq: u64, updates: Vec<Update> },
    PingReq { seq: u64, target: NodeId, updates: Vec<Update> },
    IndirectAck { seq: u64, target: NodeId, updates: Vec<Update> },
}

impl Message for SwimMsg {
    fn kind(&self) -> &'static str {
        match self {
            SwimMsg::Ping { .. } => "Ping",
            SwimMsg::Ack { .. } => "Ack",
            SwimMsg::PingReq { .. } => "PingReq",
            SwimMsg::IndirectAck { .. } => "IndirectAck",
        }
    }
    fn size_bytes(&self) -> usize {
        let updates = match self {
            SwimMsg::Ping { updates, .. }
            | SwimMsg::Ack { updates, .. }
            | SwimMsg::PingReq { updates, .. }
            | SwimMsg::IndirectAck { updates, .. } => updates.len(),
        };
        24 + 16 * updates
    }
}

/// One member's view of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberView {
    pub status: Status,
    pub incarnation: u64,
    suspicion_timer: Option<TimerId>,
}

struct Probe {
    seq: u64,
    target: NodeId,
    acked: bool,
}

const TAG_PERIOD: u64 = 1;
const TAG_PING_TIMEOUT: u64 = 2;
const TAG_SUSPICION: u64 = 3;
const STORAGE_INCARNATION: &str = "swim/incarnation";

/// A SWIM member.
pub struct SwimNode {
    id: NodeId,
    params: SwimParams,
    incarnation: u64,
    members: BTreeMap<NodeId, MemberView>,
    /// Round-robin probe order; reshuffled after each pass.
    probe_order: Vec<NodeId>,
    probe_cursor: usize,
    probe: Option<Probe>,
    next_seq: u64,
    /// Pings sent on behalf of others: my seq -> (requester, their seq, sent at).
    relayed: BTreeMap<u64, (NodeId, u64, LocalTime)>,
    /// Updates to piggyback, with how many times each was sent.
    outbox: Vec<(Update, u32)>,
    retransmit_limit: u32,
    /// Protocol periods since start.
    periods: u64,
}

impl SwimNode {
    /// A member of a group of `nodes` members; a restart reads its last incarnation from `storage`.
    pub fn new(id: NodeId, nodes: usize, params: SwimParams, storage: &Storage) -> Self {
        let incarnation = storage.get::<u64>(STORAGE_INCARNATION).unwrap_or(0);
        let members = (0..nodes as u32)
            .map(NodeId)
            .filter(|m| *m != id)
            .map(|m| (m, MemberView { status: Status::Alive, incarnation: 0, suspicion_timer: None }))
            .collect();
        let log_n = usize::BITS - nodes.leading_zeros();
        SwimNode {
            id,
            retransmit_limit: params.retransmit_mult * log_n.max(1),
            params,
            incarnation,
            members,
            probe_order: Vec::new(),
            probe_cursor: 0,
            probe: None,
            next_seq: 0,
            relayed: BTreeMap::new(),
            outbox: Vec::new(),
            periods: 0,
        }
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }
    /// This member's view of `member`.
    pub fn view(&self, member: NodeId) -> Option<MemberView> {
        self.members.get(&member).copied()
    }
    /// Members this node considers not dead (itself excluded).
    pub fn live_members(&self) -> Vec<NodeId> {
        self.members.iter().filter(|(_, v)| v.status != Status::Dead).map(|(m, _)| *m).collect()
    }

    fn enqueue(&mut self, update: Update) {
        // Newer news about a member replaces older news still waiting to be sent.
        self.outbox.retain(|(u, _)| u.member != update.member);
        self.outbox.push((update, 0));
    }

    fn piggyback(&mut self) -> Vec<Update> {
        // Least-sent first: fresh news spreads before old news is repeated.
        self.outbox.sort_by_key(|(u, sent)| (*sent, u.member));
        let take = self.params.piggyback_max.min(self.outbox.len());
        let mut updates = Vec::with_capacity(take);
        for (update, sent) in self.outbox.iter_mut().take(take) {
            *sent += 1;
            updates.push(*update);
        }
        let limit = self.retransmit_limit;
        self.outbox.retain(|(_, sent)| *sent < limit);
        updates
    }

    fn set_status(&mut self, ctx: &mut Ctx<'_, SwimMsg>, member: NodeId, status: Status, incarnation: u64) {
        let view = self.members.get_mut(&member).expect("known member");
        let before = view.status;
        view.status = status;
        view.incarnation = incarnation;
        if let Some(timer) = view.suspicion_timer.take() {
            ctx.cancel_timer(timer);
        }
        if status == Status::Suspect {
            let timeout = Duration::from_millis(self.params.protocol_period_ms * self.params.suspicion_periods);
            let timer = ctx.set_timer(timeout, TAG_SUSPICION | (member.0 as u64) << 8);
            self.members.get_mut(&member).expect("known member").suspicion_timer = Some(timer);
        }
        let event = match (before, status) {
            (_, Status::Suspect) => Some("suspect"),
            (Status::Dead, Status::Dead) => None,
            (_, Status::Dead) => Some("dead"),
            (Status::Suspect | Status::Dead, Status::Alive) => Some("alive"),
            (Status::Alive, Status::Alive) => None,
        };
        if let Some(f) = event {
            record_instant(ctx, f, Value::Int(member.0 as i64), Value::Int(incarnation as i64));
        }
        self.enqueue(Update { member, status, incarnation });
    }

    /// Applies one disseminated update, by SWIM's override rules.
    fn apply(&mut self, ctx: &mut Ctx<'_, SwimMsg>, update: Update) {
        if update.member == self.id {
            if update.status != Status::Alive && update.incarnation >= self.incarnation {
                // Refute: only the member itself may raise its incarnation (§4.2).
                self.incarnation = update.incarnation + 1;
                ctx.storage().put(STORAGE_INCARNATION, &self.incarnation);
                ctx.annotate(format!("swim refute incarnation={}", self.incarnation));
                self.enqueue(Update { member: self.id, status: Status::Alive, incarnation: self.incarnation });
            } else if update.status != Status::Alive && !self.outbox.iter().any(|(u, _)| u.member == self.id) {
                // An accusation older than our last refutation: the accuser missed it (it may have
                // run out of retransmissions while we were cut off), so say it again.
                self.enqueue(Update { member: self.id, status: Status::Alive, incarnation: self.incarnation });
            }
            return;
        }
        let Some(view) = self.members.get(&update.member).copied() else { return };
        let newer = update.incarnation > view.incarnation;
        let applies = match update.status {
            Status::Alive => newer,
            Status::Suspect => match view.status {
                Status::Alive => update.incarnation >= view.incarnation,
                Status::Suspect => newer,
                Status::Dead => false,
            },
            Status::Dead => view.status != Status::Dead && update.incarnation >= view.incarnation,
        };
        if applies {
            let status = if update.status == Status::Suspect && self.params.bug_no_suspicion {
                Status::Dead
            } else {
                update.status
            };
            self.set_status(ctx, update.member, status, update.incarnation);
        }
    }

    fn apply_all(&mut self, ctx: &mut Ctx<'_, SwimMsg>, updates: Vec<Update>) {
        for update in updates {
            self.apply(ctx, update);
        }
    }

    fn next_target(&mut self, ctx: &mut Ctx<'_, SwimMsg>) -> Option<NodeId> {
        for _ in 0..2 {
            while self.probe_cursor < self.probe_order.len() {
                let candidate = self.probe_order[self.probe_cursor];
                self.probe_cursor += 1;
                if self.members.get(&candidate).is_some_and(|v| v.status != Status::Dead) {
                    return Some(candidate);
                }
            }
            // A pass is over: reshuffle (Fisher-Yates) so that probe order is random but each member
            // is probed once per pass.
            self.probe_order = self.live_members();
            for i in (1..self.probe_order.len()).rev() {
                let j = ctx.rng().random_range(0..=i);
                self.probe_order.swap(i, j);
            }
            self.probe_cursor = 0;
        }
        None
    }

    fn end_period(&mut self, ctx: &mut Ctx<'_, SwimMsg>) {
        if let Some(probe) = self.probe.take() {
            let view = self.members.get(&probe.target).copied();
            if let (false, Some(view)) = (probe.acked, view) {
                if view.status == Status::Alive {
                    let status = if self.params.bug_no_suspicion { Status::Dead } else { Status::Suspect };
                    self.set_status(ctx, probe.target, status, view.incarnation);
                }
            }
        }
        // Relayed pings older than a period will not be answered in time to matter.
        let horizon = ctx.now().as_nanos() - (self.params.protocol_period_ms * 1_000_000) as i64;
        self.relayed.retain(|_, (_, _, at)| at.as_nanos() >= horizon);
    }

    fn start_probe(&mut self, ctx: &mut Ctx<'_, SwimMsg>) {
        let Some(target) = self.next_target(ctx) else { return };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.probe = Some(Probe { seq, target, acked: false });
        let updates = self.piggyback();
        ctx.send(target, SwimMsg::Ping { seq, updates });
        ctx.set_timer(Duration::from_millis(self.params.ping_timeout_ms), TAG_PING_TIMEOUT | seq << 8);
    }

    /// Pings a random member held dead, telling it so: if it is alive it refutes.
    fn reconnect_probe(&mut self, ctx: &mut Ctx<'_, SwimMsg>) {
        let dead: Vec<(NodeId, u64)> =
            self.members.iter().filter(|(_, v)| v.status == Status::Dead).map(|(m, v)| (*m, v.incarnation)).collect();
        if dead.is_empty() {
            return;
        }
        let (target, incarnation) = dead[ctx.rng().random_range(0..dead.len())];
        let mut updates = vec![Update { member: target, status: Status::Dead, incarnation }];
        updates.extend(self.piggyback().into_iter().filter(|u| u.member != target));
        let seq = self.next_seq;
        self.next_seq += 1;
        ctx.send(target, SwimMsg::Ping { seq, updates });
    }

    fn indirect_probe(&mut self, ctx: &mut Ctx<'_, SwimMsg>, seq: u64) {
        let Some(probe) = self.probe.as_ref().filter(|p| p.seq == seq && !p.acked) else { return };
        let target = probe.target;
        let mut helpers: Vec<NodeId> = self.live_members().into_iter().filter(|m| *m != target).collect();
        let k = self.params.indirect_probes.min(helpers.len());
        for i in 0..k {
            let j = ctx.rng().random_range(i..helpers.len());
            helpers.swap(i, j);
        }
        for helper in helpers.into_iter().take(k) {
            let updates = self.piggyback();
            ctx.send(helper, SwimMsg::PingReq { seq, target, updates });
        }
    }
}

impl Node for SwimNode {
    type Msg = SwimMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, SwimMsg>) {
        if self.incarnation > 0 || ctx.storage().get::<u64>(STORAGE_INCARNATION).is_some() {
            // A restart: come back above whatever incarnation we may have been declared dead at.
            self.incarnation += 1;
            ctx.storage().put(STORAGE_INCARNATION, &self.incarnation);
            self.enqueue(Update { member: self.id, status: Status::Alive, incarnation: self.incarnation });
        } else {
            ctx.storage().put(STORAGE_INCARNATION, &0u64);
        }
        let phase_ns = ctx.rng().random_range(0..self.params.protocol_period_ms * 1_000_000);
        ctx.set_timer(Duration::from_nanos(phase_ns), TAG_PERIOD);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, SwimMsg>, from: NodeId, msg: SwimMsg) {
        match msg {
            SwimMsg::Ping { seq, updates } => {
                self.apply_all(ctx, updates);
                let updates = self.piggyback();
                ctx.send(from, SwimMsg::Ack { seq, updates });
            }
            SwimMsg::Ack { seq, updates } => {
                self.apply_all(ctx, updates);
                if let Some(probe) = self.probe.as_mut().filter(|p| p.seq == seq && p.target == from) {
                    probe.acked = true;
                } else if let Some((requester, their_seq, _)) = self.relayed.remove(&seq) {
                    let updates = self.piggyback();
                    ctx.send(requester, SwimMsg::IndirectAck { seq: their_seq, target: from, updates });
                }
            }
            SwimMsg::PingReq { seq, target, updates } => {
                self.apply_all(ctx, updates);
                let my_seq = self.next_seq;
                self.next_seq += 1;
                self.relayed.insert(my_seq, (from, seq, ctx.now()));
                let updates = self.piggyback();
                ctx.send(target, SwimMsg::Ping { seq: my_seq, updates });
            }
            SwimMsg::IndirectAck { seq, target, updates } => {
                self.apply_all(ctx, updates);
                if let Some(probe) = self.probe.as_mut().filter(|p| p.seq == seq && p.target == target) {
                    probe.acked = true;
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, SwimMsg>, timer: TimerId, tag: u64) {
        match tag & 0xff {
            TAG_PERIOD => {
                self.end_period(ctx);
                self.start_probe(ctx);
                self.periods += 1;
                if self.params.reconnect_periods > 0 && self.periods.is_multiple_of(self.params.reconnect_periods) {
                    self.reconnect_probe(ctx);
                }
                ctx.set_timer(Duration::from_millis(self.params.protocol_period_ms), TAG_PERIOD);
            }
            TAG_PING_TIMEOUT => self.indirect_probe(ctx, tag >> 8),
            TAG_SUSPICION => {
                let member = NodeId((tag >> 8) as u32);
                if let Some(view) = self.members.get(&member).copied() {
                    if view.status == Status::Suspect && view.suspicion_timer == Some(timer) {
                        self.members.get_mut(&member).expect("known member").suspicion_timer = None;
                        self.set_status(ctx, member, Status::Dead, view.incarnation);
                    }
                }
            }
            _ => unreachable!("unknown swim timer tag {tag}"),
        }
    }
}

/// A SWIM group of `spec.nodes` members named `n1..nN`.
pub fn build(spec: &ClusterSpec, params: SwimParams) -> Result<Simulation<SwimNode>, String> {
    params.validate(spec.nodes)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let n = spec.nodes;
    for i in 0..n {
        let params = params.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |id, storage| {
            SwimNode::new(id, n, params.clone(), storage)
        });
    }
    Ok(sim)
}

fn build_any(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build(spec, spec.params()?)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "swim",
        description: "SWIM membership: ping, ping-req, suspicion and refutation, infection-style dissemination",
        workloads: &[WorkloadKind::None],
        build: build_any,
    }]
}

pub use crate::gossip::events::crash_windows;

fn crashed_at(crashes: &[(u32, u64, u64)], node: u32, time_ns: u64) -> bool {
    crashes.iter().any(|(n, start, end)| *n == node && (*start..*end).contains(&time_ns))
}

/// `dead` declarations about members that were not crashed at the time (false positives), as
/// (time ns, declaring node, declared node).
pub fn false_positive_deaths(history: &History, crashes: &[(u32, u64, u64)]) -> Vec<(u64, u32, u32)> {
    instant_events(history, "dead")
        .into_iter()
        .filter_map(|e| {
            let member = e.key.as_int().expect("member indexes are integers") as u32;
            (!crashed_at(crashes, member, e.time_ns)).then_some((e.time_ns, e.node, member))
        })
        .collect()
}

/// How a crash was detected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    pub node: u32,
    pub crashed_at_ns: u64,
    /// From the crash to the first member declaring it dead.
    pub first_ns: Option<u64>,
    /// From the crash until every member in `observers` had declared it dead.
    pub all_ns: Option<u64>,
}

/// For each crash window, how long until the crashed node was declared dead by the first and by
/// every one of `observers` (members up for the whole run).
pub fn detection_report(history: &History, crashes: &[(u32, u64, u64)], observers: &[u32]) -> Vec<Detection> {
    let deaths = instant_events(history, "dead");
    crashes
        .iter()
        .map(|(node, start, end)| {
            let mut first_by: BTreeMap<u32, u64> = BTreeMap::new();
            for e in &deaths {
                let member = e.key.as_int().expect("member indexes are integers") as u32;
                if member == *node && (*start..*end).contains(&e.time_ns) {
                    first_by.entry(e.node).or_insert(e.time_ns - start);
                }
            }
            let first_ns = first_by.values().min().copied();
            let all_ns = observers
                .iter()
                .filter(|o| *o != node)
                .map(|o| first_by.get(o).copied())
                .collect::<Option<Vec<u64>>>()
                .and_then(|v| v.into_iter().max());
            Detection { node: *node, crashed_at_ns: *start, first_ns, all_ns }
        })
        .collect()
}
