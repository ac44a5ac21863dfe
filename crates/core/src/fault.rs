//! Faults: instantaneous changes to the simulated world, scheduled on a timeline (scripted by a
//! scenario or drawn by a seeded nemesis) and applied by the scheduler.

use crate::node::NodeId;
use serde::{Deserialize, Serialize};

/// One fault. Windows (a latency spike from 10 s to 12 s) are two faults: the start and its end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Symmetric partition: a pair of nodes may talk iff some group holds both. Nodes in no group are
    /// not affected. Replaces the previous group partition; one-way cuts stay.
    Partition {
        groups: Vec<Vec<NodeId>>,
    },
    /// Cuts one node off from every other node.
    Isolate {
        node: NodeId,
    },
    /// Two sides that share one node: `left + bridge` and `right + bridge` can talk, left and right
    /// cannot.
    Bridge {
        left: Vec<NodeId>,
        right: Vec<NodeId>,
        bridge: NodeId,
    },
    /// Asymmetric cut: messages from any of `from` to any of `to` are dropped; the reverse still flows.
    OneWay {
        from: Vec<NodeId>,
        to: Vec<NodeId>,
    },
    /// Removes every partition and one-way cut.
    Heal,
    /// Cuts (`up = false`) or restores the topology edges between two named vertices.
    TopologyEdge {
        a: String,
        b: String,
        up: bool,
    },
    /// The node stops: its volatile state, timers and queued messages are lost; storage survives.
    Crash {
        node: NodeId,
    },
    /// A crashed node is rebuilt by its factory from its durable storage and started again. A running
    /// node is crashed first (a reboot).
    Restart {
        node: NodeId,
    },
    /// The node stops handling anything; messages and timers queue up until it resumes.
    Pause {
        node: NodeId,
    },
    Resume {
        node: NodeId,
    },
    /// The node's clock steps by `by_ns` (negative: backwards).
    ClockJump {
        node: NodeId,
        by_ns: i64,
    },
    /// The node's clock is set to true time plus `offset_ns`.
    ClockOffset {
        node: NodeId,
        offset_ns: i64,
    },
    /// The node's clock runs `drift_ppm` parts per million fast (negative: slow) from now on.
    ClockDrift {
        node: NodeId,
        drift_ppm: f64,
    },
    /// Adds latency to messages from or to `node` (every message when `None`).
    LatencySpike {
        node: Option<NodeId>,
        extra_ns: u64,
    },
    LatencySpikeEnd {
        node: Option<NodeId>,
    },
    /// Raises the loss probability of messages from or to `node` (every message when `None`).
    LossBurst {
        node: Option<NodeId>,
        loss: f64,
    },
    LossBurstEnd {
        node: Option<NodeId>,
    },
    /// Each message is corrupted with this probability (see `Message::corrupt`); 0 ends it.
    Corrupt {
        probability: f64,
    },
}

impl Fault {
    /// A short name for the kind of fault (`"partition"`, `"crash"`, ...), for traces and plots.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Isolate { .. } => "isolate",
            Fault::Bridge { .. } => "bridge",
            Fault::OneWay { .. } => "one-way",
            Fault::Heal => "heal",
            Fault::TopologyEdge { .. } => "topology-edge",
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::Pause { .. } => "pause",
            Fault::Resume { .. } => "resume",
            Fault::ClockJump { .. } => "clock-jump",
            Fault::ClockOffset { .. } => "clock-offset",
            Fault::ClockDrift { .. } => "clock-drift",
            Fault::LatencySpike { .. } => "latency-spike",
            Fault::LatencySpikeEnd { .. } => "latency-spike-end",
            Fault::LossBurst { .. } => "loss-burst",
            Fault::LossBurstEnd { .. } => "loss-burst-end",
            Fault::Corrupt { .. } => "corrupt",
        }
    }

    /// Every node the fault names (to validate against the cluster).
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Fault::Partition { groups } => groups.iter().flatten().copied().collect(),
            Fault::Bridge { left, right, bridge } => left.iter().chain(right).chain([bridge]).copied().collect(),
            Fault::OneWay { from, to } => from.iter().chain(to).copied().collect(),
            Fault::Isolate { node }
            | Fault::Crash { node }
            | Fault::Restart { node }
            | Fault::Pause { node }
            | Fault::Resume { node }
            | Fault::ClockJump { node, .. }
            | Fault::ClockOffset { node, .. }
            | Fault::ClockDrift { node, .. } => vec![*node],
            Fault::LatencySpike { node, .. }
            | Fault::LatencySpikeEnd { node }
            | Fault::LossBurst { node, .. }
            | Fault::LossBurstEnd { node } => node.iter().copied().collect(),
            Fault::Heal | Fault::TopologyEdge { .. } | Fault::Corrupt { .. } => Vec::new(),
        }
    }

    /// Checks parameters that do not depend on the cluster.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Fault::LossBurst { loss, .. } if !(0.0..=1.0).contains(loss) => {
                Err(format!("loss must be a probability in [0, 1], got {loss}"))
            }
            Fault::Corrupt { probability } if !(0.0..=1.0).contains(probability) => {
                Err(format!("corruption probability must be in [0, 1], got {probability}"))
            }
            Fault::ClockDrift { drift_ppm, .. } if !(drift_ppm.is_finite() && *drift_ppm > -1_000_000.0) => {
                Err(format!("drift must be finite and above -1000000 ppm, got {drift_ppm}"))
            }
            Fault::Partition { groups } if groups.len() > 64 => Err("at most 64 partition groups".into()),
            _ => Ok(()),
        }
    }

    /// Whether this fault starts a period of degraded network or node service (for fault windows).
    pub fn starts_window(&self) -> bool {
        !matches!(
            self,
            Fault::Heal
                | Fault::Restart { .. }
                | Fault::Resume { .. }
                | Fault::LatencySpikeEnd { .. }
                | Fault::LossBurstEnd { .. }
                | Fault::Corrupt { probability: 0.0 }
                | Fault::TopologyEdge { up: true, .. }
        )
    }
}
