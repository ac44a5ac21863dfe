//! Heartbeat failure detection with a fixed timeout (registry name `heartbeat`) or the φ accrual
//! detector (`phi-accrual`; Hayashibara, Défago, Yared, Katayama 2004, "The φ Accrual Failure
//! Detector", SRDS), judged by the quality-of-service metrics of Chen, Toueg, Aguilera 2002 ("On the
//! Quality of Service of Failure Detectors", IEEE Trans. Computers 51(5)): detection time, and the
//! rate and duration of mistakes.
//!
//! # Protocol
//! Every node sends a heartbeat to every other node every `heartbeat_ms` (its own clock) and
//! monitors every other node with a [`detector::Detector`]. On each heartbeat the monitor records the
//! inter-arrival time, measured on *its own* clock only (skew between clocks never enters; drift
//! scales intervals by parts per million), and re-arms one timer per peer for the detector's
//! suspicion delay. When the timer fires the peer is suspected; the next heartbeat from it ends the
//! suspicion. A heartbeat carries the sender's incarnation (kept in durable storage, bumped at each
//! start), so the silence of a crashed-and-restarted peer is not learnt as an inter-arrival sample:
//! a new incarnation starts a fresh detector. A monitor starts watching every peer when it starts
//! itself, as if a heartbeat had just arrived, so a peer that never speaks is suspected too.
//!
//! # What a run records
//! History measurement events (see [`crate::gossip::events`]) at the monitor, key = the peer's node
//! index: `suspect` (value: the silence so far, local ns) and `trust` (value: the peer's
//! incarnation). [`quality`] turns them and the run's crash windows into false suspicions, mistake
//! durations, query accuracy and per-crash detection times.
//!
//! # What to expect (measured by `tests/failure_detector.rs`, 6 nodes, heartbeats every 100 ms)
//! - A fixed timeout `T` detects a crash between `T - interval` and `T + latency` after it, whatever
//!   the loss or jitter; its mistakes grow steeply with loss and jitter (they need `T / interval`
//!   heartbeats in a row to go missing or late).
//! - φ accrual's suspicion delay follows what it has seen: its detection time grows with loss and
//!   jitter, and stays longer for a while after a loss burst (until the window slides past it).
//! - On links of mixed quality (some 1-5 ms, some log-normal with a heavy tail), φ accrual makes
//!   several times fewer mistakes than a fixed timeout tuned to the same mean detection time: it
//!   waits long only on the links that need it.
//! - φ is only as good as its model. With loss, a single missed heartbeat doubles the gap, which a
//!   normal model of the inter-arrivals calls extremely unlikely; hence Akka's `acceptable_pause_ms`
//!   (default 0 here, as in the paper). With bounded jitter, a fixed timeout just above the bound
//!   never errs, which φ's unbounded normal tail cannot promise.
//!
//! # Deliberate bug
//! `bug_sender_timestamps`: the monitor measures the silence from the *sender's* timestamp in the
//! heartbeat (`my clock now - your clock then`), the classic mistake of comparing two clocks. A peer
//! whose clock is behind the monitor's looks silent for longer than it is, so it is suspected while
//! alive; one ahead is detected late. The skewed-clock test catches it.

pub mod detector;

use crate::gossip::events::record_instant;
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detector::{Detector, PhiAccrual, PhiConfig};
use detsim_core::history::{History, Value};
use detsim_core::{AnySimulation, Ctx, Message, Node, NodeId, Simulation, Storage, TimerId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Which detector the monitors run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorKind {
    FixedTimeout,
    PhiAccrual,
}

/// Failure detector parameters (scenario `params`). `timeout_ms` is the fixed timeout's; the
/// `phi_*`, `window`, `min_std_dev_ms` and `acceptable_pause_ms` fields are φ accrual's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorParams {
    pub heartbeat_ms: u64,
    pub timeout_ms: u64,
    pub phi_threshold: f64,
    /// Inter-arrival samples φ accrual keeps.
    pub window: usize,
    pub min_std_dev_ms: f64,
    pub acceptable_pause_ms: u64,
    /// Deliberate bug: silence measured from the sender's timestamp.
    pub bug_sender_timestamps: bool,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            heartbeat_ms: 100,
            timeout_ms: 500,
            phi_threshold: 8.0,
            window: 100,
            min_std_dev_ms: 10.0,
            acceptable_pause_ms: 0,
            bug_sender_timestamps: false,
        }
    }
}

impl DetectorParams {
    pub fn validate(&self, nodes: usize) -> Result<(), String> {
        if nodes < 2 {
            return Err("failure detection needs at least 2 nodes".into());
        }
        if self.heartbeat_ms == 0 || self.timeout_ms == 0 {
            return Err("heartbeat_ms and timeout_ms must be positive".into());
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.5 && self.phi_threshold < 300.0) {
            return Err(format!("phi_threshold must be in (0.5, 300), got {}", self.phi_threshold));
        }
        if self.window < 2 {
            return Err("window must hold at least 2 samples".into());
        }
        if !(self.min_std_dev_ms.is_finite() && self.min_std_dev_ms > 0.0) {
            return Err(format!("min_std_dev_ms must be positive, got {}", self.min_std_dev_ms));
        }
        Ok(())
    }

    /// A fresh detector of `kind` for one peer.
    pub fn detector(&self, kind: DetectorKind) -> Detector {
        match kind {
            DetectorKind::FixedTimeout => Detector::FixedTimeout { timeout_ns: self.timeout_ms as f64 * 1e6 },
            DetectorKind::PhiAccrual => Detector::PhiAccrual(PhiAccrual::new(PhiConfig {
                threshold: self.phi_threshold,
                window: self.window,
                min_std_dev_ns: self.min_std_dev_ms * 1e6,
                acceptable_pause_ns: self.acceptable_pause_ms as f64 * 1e6,
                expected_interval_ns: self.heartbeat_ms as f64 * 1e6,
            })),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DetectorMsg {
    Heartbeat { incarnation: u64, seq: u64, sent_local_ns: i64 },
}

impl Message for DetectorMsg {
    fn kind(&self) -> &'static str {
        "Heartbeat"
    }
    fn size_bytes(&self) -> usize {
        24
    }
}

/// What a monitor knows of one peer.
struct Watch {
    detector: Detector,
    incarnation: u64,
    /// When the last heartbeat arrived (local ns; with the bug, the sender's timestamp).
    last_ns: i64,
    timer: TimerId,
    suspected: bool,
}

const TAG_HEARTBEAT: u64 = 1;
const TAG_SUSPECT: u64 = 2;
const STORAGE_INCARNATION: &str = "fd/incarnation";

/// A node that heartbeats every other node and monitors each of them.
pub struct DetectorNode {
    kind: DetectorKind,
    params: DetectorParams,
    peers: Vec<NodeId>,
    incarnation: u64,
    seq: u64,
    watches: BTreeMap<NodeId, Watch>,
}

impl DetectorNode {
    pub fn new(id: NodeId, nodes: usize, kind: DetectorKind, params: DetectorParams, storage: &Storage) -> Self {
        let peers = (0..nodes as u32).map(NodeId).filter(|n| *n != id).collect();
        let incarnation = storage.get::<u64>(STORAGE_INCARNATION).map_or(0, |i| i + 1);
        DetectorNode { kind, params, peers, incarnation, seq: 0, watches: BTreeMap::new() }
    }

    /// Whether this node suspects `peer` now.
    pub fn suspects(&self, peer: NodeId) -> bool {
        self.watches.get(&peer).is_some_and(|w| w.suspected)
    }

    /// The delay after the last heartbeat at which this node will suspect `peer`, in ms.
    pub fn suspicion_delay_ms(&self, peer: NodeId) -> Option<f64> {
        self.watches.get(&peer).map(|w| w.detector.suspicion_delay_ns() / 1e6)
    }

    /// (Re)arms the suspicion timer of `peer` from its last heartbeat.
    fn arm(&self, ctx: &mut Ctx<'_, DetectorMsg>, peer: NodeId, last_ns: i64, detector: &Detector) -> TimerId {
        let deadline_ns = last_ns as f64 + detector.suspicion_delay_ns();
        let after_ns = (deadline_ns - ctx.now().as_nanos() as f64).max(0.0).ceil() as u64;
        ctx.set_timer(Duration::from_nanos(after_ns), TAG_SUSPECT | (peer.0 as u64) << 8)
    }
}

impl Node for DetectorNode {
    type Msg = DetectorMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, DetectorMsg>) {
        ctx.storage().put(STORAGE_INCARNATION, &self.incarnation);
        let now_ns = ctx.now().as_nanos();
        for peer in self.peers.clone() {
            let detector = self.params.detector(self.kind);
            let timer = self.arm(ctx, peer, now_ns, &detector);
            self.watches.insert(peer, Watch { detector, incarnation: 0, last_ns: now_ns, timer, suspected: false });
        }
        let phase_ns = ctx.rng().random_range(0..self.params.heartbeat_ms * 1_000_000);
        ctx.set_timer(Duration::from_nanos(phase_ns), TAG_HEARTBEAT);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, DetectorMsg>, from: NodeId, msg: DetectorMsg) {
        let DetectorMsg::Heartbeat { incarnation, seq: _, sent_local_ns } = msg;
        let arrival_ns = if self.params.bug_sender_timestamps { sent_local_ns } else { ctx.now().as_nanos() };
        let kind = self.kind;
        let Some(watch) = self.watches.get_mut(&from) else { return };
        if incarnation < watch.incarnation {
            return; // from a previous life of the peer, overtaken on the wire
        }
        if incarnation > watch.incarnation {
            // A restarted peer: its silence while down is no sample of how it heartbeats.
            watch.incarnation = incarnation;
            watch.detector = self.params.detector(kind);
        } else {
            watch.detector.record_interval((arrival_ns - watch.last_ns).max(0) as f64);
        }
        watch.last_ns = arrival_ns;
        let was_suspected = std::mem::replace(&mut watch.suspected, false);
        ctx.cancel_timer(watch.timer);
        let watch = self.watches.remove(&from).expect("watched");
        let timer = self.arm(ctx, from, watch.last_ns, &watch.detector);
        self.watches.insert(from, Watch { timer, ..watch });
        if was_suspected {
            record_instant(ctx, "trust", Value::Int(from.0 as i64), Value::Int(incarnation as i64));
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, DetectorMsg>, timer: TimerId, tag: u64) {
        match tag & 0xff {
            TAG_HEARTBEAT => {
                self.seq += 1;
                let msg = DetectorMsg::Heartbeat {
                    incarnation: self.incarnation,
                    seq: self.seq,
                    sent_local_ns: ctx.now().as_nanos(),
                };
                ctx.send_all(self.peers.clone(), &msg);
                ctx.set_timer(Duration::from_millis(self.params.heartbeat_ms), TAG_HEARTBEAT);
            }
            TAG_SUSPECT => {
                let peer = NodeId((tag >> 8) as u32);
                let now_ns = ctx.now().as_nanos();
                let Some(watch) = self.watches.get_mut(&peer) else { return };
                if watch.timer != timer || watch.suspected {
                    return;
                }
                watch.suspected = true;
                let silence_ns = now_ns - watch.last_ns;
                record_instant(ctx, "suspect", Value::Int(peer.0 as i64), Value::Int(silence_ns));
            }
            _ => unreachable!("unknown failure detector timer tag {tag}"),
        }
    }
}

/// `spec.nodes` nodes `n1..nN`, each heartbeating and monitoring every other with `kind`.
pub fn build(
    spec: &ClusterSpec,
    kind: DetectorKind,
    params: DetectorParams,
) -> Result<Simulation<DetectorNode>, String> {
    params.validate(spec.nodes)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let nodes = spec.nodes;
    for i in 0..nodes {
        let params = params.clone();
        sim.add_node_with_clock(&ClusterSpec::server_name(i), spec.clock(i), move |id, storage| {
            DetectorNode::new(id, nodes, kind, params.clone(), storage)
        });
    }
    Ok(sim)
}

fn build_heartbeat(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build(spec, DetectorKind::FixedTimeout, spec.params()?)?))
}

fn build_phi(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    Ok(Box::new(build(spec, DetectorKind::PhiAccrual, spec.params()?)?))
}

/// The scenario-runnable configurations of this protocol.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![
        ProtocolEntry {
            name: "heartbeat",
            description:
                "all-to-all heartbeats with a fixed-timeout failure detector; detection time and false suspicions",
            workloads: &[WorkloadKind::None],
            build: build_heartbeat,
        },
        ProtocolEntry {
            name: "phi-accrual",
            description: "all-to-all heartbeats with the phi accrual failure detector (Hayashibara et al. 2004)",
            workloads: &[WorkloadKind::None],
            build: build_phi,
        },
    ]
}

/// Quality of service of the detectors of a run (Chen, Toueg, Aguilera 2002).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectorQuality {
    /// Suspicions of a peer that was up (mistakes).
    pub false_suspicions: usize,
    /// When each of them happened (true ns), in pair order.
    pub false_suspicions_at_ns: Vec<u64>,
    /// Total time live peers spent wrongly suspected, over all (monitor, peer) pairs.
    pub mistake_ns: u64,
    /// The longest single mistake: from a false suspicion to the trust that ended it (or to the
    /// peer's or monitor's crash, or the end of the run).
    pub longest_mistake_ns: u64,
    /// Total time a live monitor watched a live peer, over all pairs.
    pub watched_ns: u64,
    /// Per (crash, monitor up throughout): time from the crash to the monitor's suspicion.
    pub detections_ns: Vec<u64>,
    /// (crash, monitor) pairs where the monitor did not suspect before the peer restarted.
    pub missed: usize,
}

impl DetectorQuality {
    /// Probability that a query of a live peer's state at a random time gets "trusted" (P_A).
    pub fn query_accuracy(&self) -> f64 {
        1.0 - self.mistake_ns as f64 / self.watched_ns.max(1) as f64
    }
    /// Mistakes per hour of watching.
    pub fn mistakes_per_hour(&self) -> f64 {
        self.false_suspicions as f64 / (self.watched_ns.max(1) as f64 / 3.6e12)
    }
    pub fn mean_detection_ms(&self) -> f64 {
        self.detections_ns.iter().sum::<u64>() as f64 / self.detections_ns.len().max(1) as f64 / 1e6
    }
    pub fn max_detection_ms(&self) -> f64 {
        self.detections_ns.iter().max().copied().unwrap_or(0) as f64 / 1e6
    }
    /// Adds another run's figures.
    pub fn merge(&mut self, other: DetectorQuality) {
        self.false_suspicions += other.false_suspicions;
        self.false_suspicions_at_ns.extend(other.false_suspicions_at_ns);
        self.mistake_ns += other.mistake_ns;
        self.longest_mistake_ns = self.longest_mistake_ns.max(other.longest_mistake_ns);
        self.watched_ns += other.watched_ns;
        self.detections_ns.extend(other.detections_ns);
        self.missed += other.missed;
    }
}

fn down_at(crashes: &[(u32, u64, u64)], node: u32, time_ns: u64) -> bool {
    crashes.iter().any(|(n, start, end)| *n == node && (*start..*end).contains(&time_ns))
}

/// The quality figures of a run of `nodes` nodes that ended at `end_ns`, from its history and its
/// crash windows `(node, start ns, end ns)` (see [`crate::gossip::events::crash_windows`]). A
/// suspicion carried over from a peer's crash into its next life (until its first heartbeat
/// arrives) is recovery lag, not a mistake, and is not counted as one.
pub fn quality(history: &History, crashes: &[(u32, u64, u64)], nodes: usize, end_ns: u64) -> DetectorQuality {
    // Per (monitor, peer): the suspect (true) and trust (false) events, in order.
    let mut transitions: BTreeMap<(u32, u32), Vec<(u64, bool)>> = BTreeMap::new();
    for event in history.events.iter().filter(|e| e.kind == detsim_core::EventType::Ok) {
        let becomes = match event.f.as_str() {
            "suspect" => true,
            "trust" => false,
            _ => continue,
        };
        let peer = event.key.as_ref().and_then(Value::as_int).expect("peer indexes are integers") as u32;
        let monitor = u32::try_from(event.process).expect("monitors are node indexes");
        transitions.entry((monitor, peer)).or_default().push((event.time_ns, becomes));
    }
    let mut quality = DetectorQuality::default();
    for monitor in 0..nodes as u32 {
        for peer in (0..nodes as u32).filter(|p| *p != monitor) {
            let events = transitions.get(&(monitor, peer)).map_or(&[][..], Vec::as_slice);
            quality.merge(pair_quality(events, crashes, monitor, peer, end_ns));
        }
    }
    quality
}

/// The figures of one (monitor, peer) pair.
fn pair_quality(
    events: &[(u64, bool)],
    crashes: &[(u32, u64, u64)],
    monitor: u32,
    peer: u32,
    end_ns: u64,
) -> DetectorQuality {
    let mut quality = DetectorQuality::default();
    // Cut the pair's timeline at every crash start and end of either node: between two cuts each
    // node is up or down throughout.
    let mut cuts: Vec<u64> = vec![0, end_ns];
    for (_, start, end) in crashes.iter().filter(|(n, _, _)| *n == monitor || *n == peer) {
        cuts.push((*start).min(end_ns));
        cuts.push((*end).min(end_ns));
    }
    cuts.sort_unstable();
    cuts.dedup();
    let (mut suspected, mut carried, mut peer_was_up) = (false, false, true);
    // The crash of the peer being watched for detection: (start, end), until suspicion.
    let mut watching_crash: Option<u64> = None;
    let mut next = 0;
    for span in cuts.windows(2) {
        let (from, to) = (span[0], span[1]);
        let monitor_up = !down_at(crashes, monitor, from);
        let peer_up = !down_at(crashes, peer, from);
        if !monitor_up {
            // A crashed monitor forgets everything; its next life starts trusting everyone.
            (suspected, carried, watching_crash) = (false, false, None);
            while next < events.len() && events[next].0 < to {
                next += 1;
            }
            peer_was_up = peer_up;
            continue;
        }
        if peer_up && !peer_was_up {
            carried = suspected; // left over from the crash just ended
            if watching_crash.take().is_some() {
                quality.missed += 1; // the peer came back before the monitor noticed
            }
        }
        if !peer_up && peer_was_up {
            if suspected {
                quality.detections_ns.push(0); // a mistake that turned out right
            } else {
                watching_crash = Some(from);
            }
        }
        peer_was_up = peer_up;
        if peer_up {
            quality.watched_ns += to - from;
        }
        let mut since = from;
        while next < events.len() && events[next].0 < to {
            let (at, becomes) = events[next];
            next += 1;
            if peer_up && suspected && !carried {
                quality.mistake_ns += at - since;
            }
            if becomes && !suspected {
                if peer_up {
                    quality.false_suspicions += 1;
                    quality.false_suspicions_at_ns.push(at);
                } else if let Some(crashed_at) = watching_crash.take() {
                    quality.detections_ns.push(at - crashed_at);
                }
            }
            (suspected, carried, since) = (becomes, false, at);
        }
        if peer_up && suspected && !carried {
            quality.mistake_ns += to - since;
        }
    }
    if watching_crash.is_some() {
        quality.missed += 1; // still undetected when the run ended
    }
    for at in &quality.false_suspicions_at_ns {
        let trusted = events.iter().find(|(t, becomes)| t > at && !becomes).map_or(end_ns, |(t, _)| *t);
        let crashed = crashes
            .iter()
            .filter(|(n, start, _)| (*n == monitor || *n == peer) && start > at)
            .map(|(_, start, _)| *start)
            .min()
            .unwrap_or(end_ns);
        quality.longest_mistake_ns = quality.longest_mistake_ns.max(trusted.min(crashed).min(end_ns) - at);
    }
    quality
}
