//! The Berkeley clock synchronisation algorithm (Gusella, Zatti 1989, "The Accuracy of the Clock
//! Synchronization Achieved by TEMPO in Berkeley UNIX 4.3BSD", IEEE Trans. Software Engineering
//! 15(7)): internal synchronisation by a master that polls and averages, with no reference clock.
//!
//! # Protocol
//! `n1` is the master, `n2..nN` the slaves, every clock skewed and drifting. Every
//! `round_interval_ms` the master asks every slave for its clock. A slave answers with its corrected
//! reading `T_i`; the master, which sent at local `m0` and got the answer at `m1`, estimates that the
//! slave read `T_i` at the middle of the round trip, so the slave's offset from the master is
//! `d_i = T_i - (m0 + m1) / 2` (Cristian's estimate, off by at most `rtt / 2`). Answers slower than
//! `max_rtt_ms` are discarded, since their estimate is too loose.
//!
//! After `reply_timeout_ms` the master takes the offsets (its own is 0) and computes the
//! *fault-tolerant average*: the average over the largest set of clocks that agree with each other to
//! within `outlier_threshold_ms` (TEMPO's rule). A clock far from the others — one that jumped, or
//! that drifts wildly — falls outside that set and cannot drag the group. Every clock that answered,
//! outliers included, is then told its *relative* adjustment `avg - d_i` (a relative value, so the
//! adjustment message's own latency does not matter), and the master steps its own clock by `avg`.
//!
//! Berkeley makes the clocks agree with each other (precision), not with true time (accuracy): the
//! group follows the average of its clocks, drift included. With a single master there is no
//! election here: while the master is down the slaves run free.
//!
//! # What a run records
//! The `clock` and `sync` events of [`super`] (a slave's `sync` carries the master's round trip to it),
//! and at the master a `berkeley-round` event per round, key = round number, value =
//! `[answers, averaged, avg_ns]`.
//!
//! # Deliberate bug
//! `bug_no_outlier_rejection`: the plain average over every answer. One clock that jumps by seconds
//! shifts the whole group by the jump divided by the group size; the outlier test catches it.

use super::{drawn_clocks, validate_clock_draws, SoftwareClock};
use crate::gossip::events::record_instant;
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::history::Value;
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Simulation, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Berkeley parameters (scenario `params`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BerkeleyParams {
    pub round_interval_ms: u64,
    /// How long the master waits for answers before averaging.
    pub reply_timeout_ms: u64,
    /// Answers with a longer round trip are discarded.
    pub max_rtt_ms: u64,
    /// Clocks averaged must agree with each other to within this.
    pub outlier_threshold_ms: u64,
    /// How often every node records its clock reading.
    pub sample_ms: u64,
    /// Skew bound of the clocks drawn for nodes the spec gives no clock.
    pub skew_ms_max: f64,
    /// Drift bound (ppm) of the clocks drawn for nodes the spec gives no clock.
    pub drift_ppm_max: f64,
    /// Deliberate bug: plain average, outliers included.
    pub bug_no_outlier_rejection: bool,
}

impl Default for BerkeleyParams {
    fn default() -> Self {
        BerkeleyParams {
            round_interval_ms: 2_000,
            reply_timeout_ms: 200,
            max_rtt_ms: 50,
            outlier_threshold_ms: 20,
            sample_ms: 100,
            skew_ms_max: 50.0,
            drift_ppm_max: 100.0,
            bug_no_outlier_rejection: false,
        }
    }
}

impl BerkeleyParams {
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if nodes < 2 {
            return Err("berkeley needs a master and at least one slave (2 nodes)".into());
        }
        if self.round_interval_ms == 0 || self.reply_timeout_ms == 0 || self.max_rtt_ms == 0 {
            return Err("round_interval_ms, reply_timeout_ms and max_rtt_ms must be positive".into());
        }
        if self.reply_timeout_ms >= self.round_interval_ms {
            return Err("reply_timeout_ms must be below round_interval_ms".into());
        }
        validate_clock_draws(self.skew_ms_max, self.drift_ppm_max, self.sample_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BerkeleyMsg {
    TimeRequest {
        round: u64,
    },
    TimeReply {
        round: u64,
        clock_ns: i64,
    },
    /// Step your clock by `step_ns`; `rtt_ns` is the round trip your reading came with.
    Adjust {
        round: u64,
        step_ns: i64,
        rtt_ns: i64,
    },
}

impl Message for BerkeleyMsg {
    fn kind(&self) -> &'static str {
        match self {
            BerkeleyMsg::TimeRequest { .. } => "TimeRequest",
            BerkeleyMsg::TimeReply { .. } => "TimeReply",
            BerkeleyMsg::Adjust { .. } => "Adjust",
        }
    }
    fn size_bytes(&self) -> usize {
        32
    }
}

struct MasterRound {
    id: u64,
    sent_local_ns: i64,
    /// Offset estimate and round trip per slave that answered in time.
    answers: BTreeMap<NodeId, (i64, i64)>,
}

/// The indexes of the largest set of `offsets` within `threshold` of each other (a window of the
/// sorted values; the leftmost of equally large ones).
pub fn largest_agreeing_set(offsets: &[i64], threshold: i64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|i| (offsets[*i], *i));
    let (mut best_start, mut best_len, mut start) = (0, 0, 0);
    for end in 0..order.len() {
        while offsets[order[end]] - offsets[order[start]] > threshold {
            start += 1;
        }
        if end + 1 - start > best_len {
            (best_start, best_len) = (start, end + 1 - start);
        }
    }
    let mut chosen = order[best_start..best_start + best_len].to_vec();
    chosen.sort_unstable();
    chosen
}

const TAG_SAMPLE: u64 = 1;
const TAG_ROUND: u64 = 2;
const TAG_AVERAGE: u64 = 3;

/// The master (`n1`) or a slave.
pub struct BerkeleyNode {
    params: BerkeleyParams,
    master: NodeId,
    slaves: Vec<NodeId>,
    clock: SoftwareClock,
    round: Option<MasterRound>,
    next_round: u64,
    /// At a slave: when (local) it answered each recent round, to age its adjustment.
    answered: BTreeMap<u64, i64>,
}

impl BerkeleyNode {
    pub fn new(master: NodeId, nodes: usize, params: BerkeleyParams) -> Self {
        let slaves = (0..nodes as u32).map(NodeId).filter(|n| *n != master).collect();
        BerkeleyNode {
            params,
            master,
            slaves,
            clock: SoftwareClock::default(),
            round: None,
            next_round: 0,
            answered: BTreeMap::new(),
        }
    }

    pub fn clock(&self) -> SoftwareClock {
        self.clock
    }

    fn average(&mut self, ctx: &mut Ctx<'_, BerkeleyMsg>) {
        let Some(round) = self.round.take() else { return };
        // The master's own clock takes part with offset 0.
        let mut offsets = vec![0i64];
        let mut members = vec![(self.master, 0i64)];
        for (slave, (offset, rtt)) in &round.answers {
            offsets.push(*offset);
            members.push((*slave, *rtt));
        }
        let chosen: Vec<usize> = if self.params.bug_no_outlier_rejection {
            (0..offsets.len()).collect()
        } else {
            largest_agreeing_set(&offsets, (self.params.outlier_threshold_ms * 1_000_000) as i64)
        };
        assert!(!chosen.is_empty(), "the set always holds at least one clock");
        let avg_ns = chosen.iter().map(|i| offsets[*i] as i128).sum::<i128>() / chosen.len() as i128;
        let avg_ns = avg_ns as i64;
        let value = Value::List(vec![
            Value::Int(round.answers.len() as i64),
            Value::Int(chosen.len() as i64),
            Value::Int(avg_ns),
        ]);
        record_instant(ctx, "berkeley-round", Value::Int(round.id as i64), value);
        for (i, (member, rtt_ns)) in members.iter().enumerate().skip(1) {
            let step_ns = avg_ns - offsets[i];
            ctx.send(*member, BerkeleyMsg::Adjust { round: round.id, step_ns, rtt_ns: *rtt_ns });
        }
        self.clock.step(ctx, avg_ns, 0, 0);
    }
}

impl Node for BerkeleyNode {
    type Msg = BerkeleyMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, BerkeleyMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.sample_ms), TAG_SAMPLE);
        // Random round ids, so that an answer to the master's previous life cannot pass for a new one.
        self.next_round = (ctx.rng().random::<u32>() as u64) << 32;
        if ctx.id() == self.master {
            let phase_ns = ctx.rng().random_range(0..self.params.round_interval_ms * 100_000);
            ctx.set_timer(Duration::from_nanos(phase_ns), TAG_ROUND);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, BerkeleyMsg>, from: NodeId, msg: BerkeleyMsg) {
        match msg {
            BerkeleyMsg::TimeRequest { round } => {
                let clock_ns = self.clock.read(ctx);
                self.answered.insert(round, ctx.now().as_nanos());
                // Keep the last few rounds only (an adjustment older than that is not coming).
                while self.answered.len() > 8 {
                    self.answered.pop_first();
                }
                ctx.send(from, BerkeleyMsg::TimeReply { round, clock_ns });
            }
            BerkeleyMsg::TimeReply { round: id, clock_ns } => {
                let max_rtt_ns = (self.params.max_rtt_ms * 1_000_000) as i64;
                let correction_ns = self.clock.correction_ns;
                let Some(round) = self.round.as_mut().filter(|r| r.id == id) else { return };
                let rtt_ns = ctx.now().as_nanos() - round.sent_local_ns;
                if !(0..=max_rtt_ns).contains(&rtt_ns) {
                    return; // too loose an estimate, or the master's clock stepped back meanwhile
                }
                let midpoint_ns = round.sent_local_ns + correction_ns + rtt_ns / 2;
                round.answers.entry(from).or_insert((clock_ns - midpoint_ns, rtt_ns));
            }
            BerkeleyMsg::Adjust { round, step_ns, rtt_ns } => {
                if from != self.master {
                    return;
                }
                // A duplicate adjustment must not be applied twice.
                let Some(answered_ns) = self.answered.remove(&round) else { return };
                let age_ns = ctx.now().as_nanos() - answered_ns;
                self.clock.step(ctx, step_ns, rtt_ns, age_ns);
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, BerkeleyMsg>, _timer: TimerId, tag: u64) {
        match tag {
            TAG_SAMPLE => {
                self.clock.sample(ctx);
                ctx.set_timer(Duration::from_millis(self.params.sample_ms), TAG_SAMPLE);
            }
            TAG_ROUND => {
                let id = self.next_round;
                self.next_round += 1;
                self.round = Some(MasterRound { id, sent_local_ns: ctx.now().as_nanos(), answers: BTreeMap::new() });
                ctx.send_all(self.slaves.clone(), &BerkeleyMsg::TimeRequest { round: id });
                ctx.set_timer(Duration::from_millis(self.params.reply_timeout_ms), TAG_AVERAGE);
                ctx.set_timer(Duration::from_millis(self.params.round_interval_ms), TAG_ROUND);
            }
            TAG_AVERAGE => self.average(ctx),
            _ => unreachable!("unknown berkeley timer tag {tag}"),
        }
    }
}

/// The clocks a run with `spec` and `params` gives its nodes.
pub fn clocks(spec: &ClusterSpec, params: &BerkeleyParams) -> Vec<detsim_core::LocalClock> {
    drawn_clocks(spec, params.skew_ms_max, params.drift_ppm_max, &[])
}

/// A master `n1` and slaves `n2..nN`.
pub fn build(spec: &ClusterSpec, params: BerkeleyParams) -> Result<Simulation<BerkeleyNode>, String> {
    params.validate(spec.nodes)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let nodes = spec.nodes;
    for (i, clock) in clocks(spec, &params).into_iter().enumerate() {
        let params = params.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), clock, move |_id, _storage| {
            BerkeleyNode::new(NodeId(0), nodes, params.clone())
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
        name: "berkeley",
        description: "Berkeley clock sync: a master polls and steps every clock to a fault-tolerant average",
        workloads: &[WorkloadKind::None],
        build: build_any,
    }]
}

#[cfg(test)]
mod tests {
    use super::largest_agreeing_set;

    #[test]
    fn the_largest_agreeing_set_leaves_outliers_out() {
        assert_eq!(largest_agreeing_set(&[0, 5_000, 3, -2, 7], 10), vec![0, 2, 3, 4]);
        assert_eq!(largest_agreeing_set(&[0], 10), vec![0]);
        // Two equally large sets: the leftmost.
        assert_eq!(largest_agreeing_set(&[0, 100, 1, 101], 10), vec![0, 2]);
    }
}
