//! NTP-style clock synchronisation by Cristian's algorithm (Cristian 1989, "Probabilistic Clock
//! Synchronization", Distributed Computing 3(3)), with the minimum-delay sample filter that NTP's
//! clock filter also uses (Mills 1991, "Internet Time Synchronization: the Network Time Protocol",
//! IEEE Trans. Communications 39(10), §4).
//!
//! # Protocol
//! `n1` is the reference time server (its clock is perfect unless the scenario gives it one);
//! `n2..nN` are clients with skewed, drifting clocks. Every `sync_interval_ms` a client runs a round
//! of `probes` probes, one after another: it sends a request at local time `t0`, the server answers
//! with its clock reading `T`, the reply arrives at local `t1`, and the round trip is
//! `rtt = t1 - t0`. The server read `T` at some instant inside the round trip, so the server's clock
//! at `t1` lies in `[T, T + rtt]`; Cristian's estimate is the middle, `T + rtt / 2`, and its error is
//! at most `rtt / 2` (plus the client's drift over the round trip). The shorter the round trip, the
//! tighter the bound, so of a round's samples the client keeps the one with the smallest round trip
//! (samples above `max_rtt_ms`, Cristian's cut-off `U`, are discarded) and steps its software clock
//! (see [`super`]) to it. A probe unanswered within `probe_timeout_ms` is skipped.
//!
//! Between rounds a client's error grows with its drift: `|error(t)| ≤ rtt/2 · (1 + |ρ|) + |ρ| · (t -
//! t_sample)` for drift rate `ρ`, the bound the tests check.
//!
//! **Asymmetric latency.** The estimate assumes the request and the reply took equally long. When
//! they take `d_req` and `d_resp`, the estimate is off by exactly `(d_req - d_resp) / 2`: still within
//! `rtt / 2`, but a bias that no number of samples averages away. No two-message protocol can detect
//! it (NTP has the same blind spot); the tests measure it.
//!
//! # Deliberate bug
//! `bug_no_rtt_compensation`: the client sets its clock to the server's reading `T` as it arrives,
//! forgetting the reply's time in flight. Its clock then lags by the reply's latency, which exceeds
//! `rtt / 2` whenever the reply was slower than the request; the bound test catches it.

use super::{drawn_clocks, validate_clock_draws, SoftwareClock};
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Simulation, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Cristian / NTP-style parameters (scenario `params`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CristianParams {
    pub sync_interval_ms: u64,
    /// Probes per round; the one with the smallest round trip is used.
    pub probes: u32,
    pub probe_timeout_ms: u64,
    /// Cristian's cut-off: samples with a longer round trip are discarded (`None`: keep all).
    pub max_rtt_ms: Option<u64>,
    /// How often every node records its clock reading.
    pub sample_ms: u64,
    /// Skew bound of the clocks drawn for clients the spec gives no clock.
    pub skew_ms_max: f64,
    /// Drift bound (ppm) of the clocks drawn for clients the spec gives no clock.
    pub drift_ppm_max: f64,
    /// Deliberate bug: the reply's time in flight is not compensated for.
    pub bug_no_rtt_compensation: bool,
}

impl Default for CristianParams {
    fn default() -> Self {
        CristianParams {
            sync_interval_ms: 2_000,
            probes: 4,
            probe_timeout_ms: 200,
            max_rtt_ms: None,
            sample_ms: 100,
            skew_ms_max: 50.0,
            drift_ppm_max: 100.0,
            bug_no_rtt_compensation: false,
        }
    }
}

impl CristianParams {
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if nodes < 2 {
            return Err("ntp needs a server and at least one client (2 nodes)".into());
        }
        if self.sync_interval_ms == 0 || self.probes == 0 || self.probe_timeout_ms == 0 {
            return Err("sync_interval_ms, probes and probe_timeout_ms must be positive".into());
        }
        if self.probes as u64 * self.probe_timeout_ms > self.sync_interval_ms {
            return Err("a round (probes × probe_timeout_ms) must fit in sync_interval_ms".into());
        }
        if self.max_rtt_ms == Some(0) {
            return Err("max_rtt_ms must be positive".into());
        }
        validate_clock_draws(self.skew_ms_max, self.drift_ppm_max, self.sample_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CristianMsg {
    TimeRequest {
        round: u64,
        probe: u32,
    },
    /// The server's clock reading when it answered.
    TimeReply {
        round: u64,
        probe: u32,
        server_ns: i64,
    },
}

impl Message for CristianMsg {
    fn kind(&self) -> &'static str {
        match self {
            CristianMsg::TimeRequest { .. } => "TimeRequest",
            CristianMsg::TimeReply { .. } => "TimeReply",
        }
    }
    fn size_bytes(&self) -> usize {
        48 // an NTP packet without extensions
    }
}

/// A usable sample: the correction it asks for and how good it is.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rtt_ns: i64,
    /// The correction that makes the corrected clock read the estimate at `taken_local_ns`.
    correction_ns: i64,
    taken_local_ns: i64,
}

struct Round {
    id: u64,
    probe: u32,
    sent_local_ns: i64,
    timer: TimerId,
    best: Option<Sample>,
}

const TAG_SAMPLE: u64 = 1;
const TAG_SYNC: u64 = 2;
const TAG_PROBE_TIMEOUT: u64 = 3;

/// The reference server, or a synchronising client.
pub struct CristianNode {
    params: CristianParams,
    server: NodeId,
    clock: SoftwareClock,
    round: Option<Round>,
    next_round: u64,
}

impl CristianNode {
    pub fn new(server: NodeId, params: CristianParams) -> Self {
        CristianNode { params, server, clock: SoftwareClock::default(), round: None, next_round: 0 }
    }

    /// The software clock (its correction and how many rounds were applied).
    pub fn clock(&self) -> SoftwareClock {
        self.clock
    }

    fn start_round(&mut self, ctx: &mut Ctx<'_, CristianMsg>) {
        let id = self.next_round;
        self.next_round += 1;
        let timer = self.send_probe(ctx, id, 0);
        self.round = Some(Round { id, probe: 0, sent_local_ns: ctx.now().as_nanos(), timer, best: None });
    }

    fn send_probe(&mut self, ctx: &mut Ctx<'_, CristianMsg>, round: u64, probe: u32) -> TimerId {
        ctx.send(self.server, CristianMsg::TimeRequest { round, probe });
        ctx.set_timer(Duration::from_millis(self.params.probe_timeout_ms), TAG_PROBE_TIMEOUT | (probe as u64) << 8)
    }

    /// The current probe is answered or given up on: send the next, or end the round.
    fn next_probe(&mut self, ctx: &mut Ctx<'_, CristianMsg>) {
        let round = self.round.as_mut().expect("a round is running");
        round.probe += 1;
        if round.probe < self.params.probes {
            let (id, probe) = (round.id, round.probe);
            let timer = self.send_probe(ctx, id, probe);
            let round = self.round.as_mut().expect("a round is running");
            round.timer = timer;
            round.sent_local_ns = ctx.now().as_nanos();
            return;
        }
        let round = self.round.take().expect("a round is running");
        match round.best {
            Some(best) => {
                let step_ns = best.correction_ns - self.clock.correction_ns;
                let age_ns = ctx.now().as_nanos() - best.taken_local_ns;
                self.clock.step(ctx, step_ns, best.rtt_ns, age_ns);
            }
            None => ctx.annotate(format!("ntp round {} got no usable sample", round.id)),
        }
    }
}

impl Node for CristianNode {
    type Msg = CristianMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, CristianMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.sample_ms), TAG_SAMPLE);
        // Round ids start at a random point, so that a reply to a round of the node's previous life
        // (before a crash) cannot pass for one of this life's.
        self.next_round = (ctx.rng().random::<u32>() as u64) << 32;
        if ctx.id() != self.server {
            // A random phase, so that clients do not all probe the server at the same instant.
            let phase_ns = ctx.rng().random_range(0..self.params.sync_interval_ms * 100_000);
            ctx.set_timer(Duration::from_nanos(phase_ns), TAG_SYNC);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, CristianMsg>, from: NodeId, msg: CristianMsg) {
        match msg {
            CristianMsg::TimeRequest { round, probe } => {
                let server_ns = self.clock.read(ctx);
                ctx.send(from, CristianMsg::TimeReply { round, probe, server_ns });
            }
            CristianMsg::TimeReply { round, probe, server_ns } => {
                let Some(current) = self.round.as_mut() else { return };
                if from != self.server || current.id != round || current.probe != probe {
                    return; // late (its probe timed out), or a duplicate
                }
                ctx.cancel_timer(current.timer);
                let now_ns = ctx.now().as_nanos();
                let rtt_ns = now_ns - current.sent_local_ns;
                // A clock stepped backwards during the probe (a clock fault) leaves no usable round
                // trip; one stepped forwards leaves a long one, which the minimum filter passes over.
                if rtt_ns < 0 {
                    self.next_probe(ctx);
                    return;
                }
                let estimate_ns = if self.params.bug_no_rtt_compensation { server_ns } else { server_ns + rtt_ns / 2 };
                let sample = Sample { rtt_ns, correction_ns: estimate_ns - now_ns, taken_local_ns: now_ns };
                let usable = self.params.max_rtt_ms.is_none_or(|max| rtt_ns <= (max * 1_000_000) as i64);
                if usable && current.best.is_none_or(|best| rtt_ns < best.rtt_ns) {
                    current.best = Some(sample);
                }
                self.next_probe(ctx);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, CristianMsg>, timer: TimerId, tag: u64) {
        match tag & 0xff {
            TAG_SAMPLE => {
                self.clock.sample(ctx);
                ctx.set_timer(Duration::from_millis(self.params.sample_ms), TAG_SAMPLE);
            }
            TAG_SYNC => {
                if self.round.is_none() {
                    self.start_round(ctx);
                }
                ctx.set_timer(Duration::from_millis(self.params.sync_interval_ms), TAG_SYNC);
            }
            TAG_PROBE_TIMEOUT => {
                if self.round.as_ref().is_some_and(|r| r.timer == timer) {
                    self.next_probe(ctx);
                }
            }
            _ => unreachable!("unknown ntp timer tag {tag}"),
        }
    }
}

/// The clocks a run with `spec` and `params` gives its nodes (`n1`, the server, perfect unless the
/// spec says otherwise).
pub fn clocks(spec: &ClusterSpec, params: &CristianParams) -> Vec<detsim_core::LocalClock> {
    drawn_clocks(spec, params.skew_ms_max, params.drift_ppm_max, &[0])
}

/// A reference server `n1` and clients `n2..nN`.
pub fn build(spec: &ClusterSpec, params: CristianParams) -> Result<Simulation<CristianNode>, String> {
    params.validate(spec.nodes)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let server = NodeId(0);
    for (i, clock) in clocks(spec, &params).into_iter().enumerate() {
        let params = params.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), clock, move |_id, _storage| {
            CristianNode::new(server, params.clone())
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
        name: "ntp",
        description:
            "NTP-style clock sync (Cristian's algorithm, min-delay filter) to a reference server; offset error vs RTT/2",
        workloads: &[WorkloadKind::None],
        build: build_any,
    }]
}
