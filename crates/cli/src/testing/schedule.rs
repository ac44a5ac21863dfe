//! Fault schedules as a list of self-closing fault windows (a crash and its restart, a partition and
//! its heal, ...), so that shrinking by dropping a window never leaves the cluster broken for good,
//! and every schedule ends healed: "live after heal" always has a heal to be live after.

use detsim_core::{Fault, NodeId, SimTime};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What goes wrong during one window. Node numbers are server indexes (node `n1` is 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WindowFault {
    /// The node crashes (volatile state lost) and restarts from its storage at the end.
    Crash { node: u32 },
    /// The node stops handling events; what arrives queues up until the end.
    Pause { node: u32 },
    /// The node is cut off from every other node (clients too) until the end.
    Isolate { node: u32 },
    /// The servers split into `side` and the rest until the end. The clients listed (by index: `c1`
    /// is 0) are cut off together with `side`; every other client still reaches both sides.
    Partition {
        side: Vec<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        clients: Vec<u32>,
    },
    /// Messages from `from` to `to` are lost until the end; the reverse direction still flows.
    OneWay { from: u32, to: u32 },
    /// The node's clock steps by `by_ms` at the start (negative: backwards); nothing happens at the end.
    ClockJump { node: u32, by_ms: i32 },
    /// Messages from or to the node are lost with `loss_percent` % probability until the end.
    LossBurst { node: u32, loss_percent: u8 },
    /// Messages from or to the node take `extra_ms` longer until the end.
    LatencySpike { node: u32, extra_ms: u32 },
}

/// One fault window: `fault` starts at `start_ms` and ends `duration_ms` later (true time).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultWindow {
    pub start_ms: u32,
    pub duration_ms: u32,
    pub fault: WindowFault,
}

/// The kinds of fault a strategy may draw (all on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultKinds {
    pub crash: bool,
    pub pause: bool,
    pub isolate: bool,
    pub partition: bool,
    pub one_way: bool,
    pub clock_jump: bool,
    pub loss_burst: bool,
    pub latency_spike: bool,
}

impl FaultKinds {
    pub const ALL: FaultKinds = FaultKinds {
        crash: true,
        pause: true,
        isolate: true,
        partition: true,
        one_way: true,
        clock_jump: true,
        loss_burst: true,
        latency_spike: true,
    };
    pub const NONE: FaultKinds = FaultKinds {
        crash: false,
        pause: false,
        isolate: false,
        partition: false,
        one_way: false,
        clock_jump: false,
        loss_burst: false,
        latency_spike: false,
    };
    /// Only network faults: partitions of every kind, loss bursts and latency spikes.
    pub const NETWORK: FaultKinds = FaultKinds {
        isolate: true,
        partition: true,
        one_way: true,
        loss_burst: true,
        latency_spike: true,
        ..Self::NONE
    };
    /// Only node faults: crash/restart and pause/resume.
    pub const NODES: FaultKinds = FaultKinds { crash: true, pause: true, ..Self::NONE };
    /// Only crash/restart.
    pub const CRASHES: FaultKinds = FaultKinds { crash: true, ..Self::NONE };

    pub fn is_empty(&self) -> bool {
        *self == Self::NONE
    }
}

impl Default for FaultKinds {
    fn default() -> Self {
        Self::ALL
    }
}

/// The servers a window names.
fn server_name(index: u32) -> String {
    format!("n{}", index + 1)
}

impl WindowFault {
    /// A short name for the kind, as the scenario format spells faults.
    pub fn kind(&self) -> &'static str {
        match self {
            WindowFault::Crash { .. } => "crash",
            WindowFault::Pause { .. } => "pause",
            WindowFault::Isolate { .. } => "isolate",
            WindowFault::Partition { .. } => "partition",
            WindowFault::OneWay { .. } => "one-way",
            WindowFault::ClockJump { .. } => "clock-jump",
            WindowFault::LossBurst { .. } => "loss-burst",
            WindowFault::LatencySpike { .. } => "latency-spike",
        }
    }

    /// The fault that opens the window and the one that closes it (none for a clock jump).
    /// `servers` is the cluster size, needed to spell out the other side of a partition.
    pub fn faults(&self, servers: u32) -> (Fault, Option<Fault>) {
        let id = NodeId;
        match self {
            WindowFault::Crash { node } => (Fault::Crash { node: id(*node) }, Some(Fault::Restart { node: id(*node) })),
            WindowFault::Pause { node } => (Fault::Pause { node: id(*node) }, Some(Fault::Resume { node: id(*node) })),
            WindowFault::Isolate { node } => (Fault::Isolate { node: id(*node) }, Some(Fault::Heal)),
            WindowFault::Partition { side, clients } => {
                let left: Vec<NodeId> =
                    side.iter().copied().chain(clients.iter().map(|c| servers + c)).map(id).collect();
                let right: Vec<NodeId> = (0..servers).filter(|n| !side.contains(n)).map(id).collect();
                (Fault::Partition { groups: vec![left, right] }, Some(Fault::Heal))
            }
            WindowFault::OneWay { from, to } => {
                (Fault::OneWay { from: vec![id(*from)], to: vec![id(*to)] }, Some(Fault::Heal))
            }
            WindowFault::ClockJump { node, by_ms } => {
                (Fault::ClockJump { node: id(*node), by_ns: i64::from(*by_ms) * 1_000_000 }, None)
            }
            WindowFault::LossBurst { node, loss_percent } => (
                Fault::LossBurst { node: Some(id(*node)), loss: f64::from(*loss_percent) / 100.0 },
                Some(Fault::LossBurstEnd { node: Some(id(*node)) }),
            ),
            WindowFault::LatencySpike { node, extra_ms } => (
                Fault::LatencySpike { node: Some(id(*node)), extra_ns: u64::from(*extra_ms) * 1_000_000 },
                Some(Fault::LatencySpikeEnd { node: Some(id(*node)) }),
            ),
        }
    }
}

impl fmt::Display for WindowFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowFault::Crash { node } => write!(f, "crash {}", server_name(*node)),
            WindowFault::Pause { node } => write!(f, "pause {}", server_name(*node)),
            WindowFault::Isolate { node } => write!(f, "isolate {}", server_name(*node)),
            WindowFault::Partition { side, clients } => {
                let mut names: Vec<String> = side.iter().map(|n| server_name(*n)).collect();
                names.extend(clients.iter().map(|c| format!("c{}", c + 1)));
                write!(f, "partition {{{}}} from the rest", names.join(" "))
            }
            WindowFault::OneWay { from, to } => write!(f, "cut {} -> {}", server_name(*from), server_name(*to)),
            WindowFault::ClockJump { node, by_ms } => write!(f, "clock of {} jumps {by_ms:+}ms", server_name(*node)),
            WindowFault::LossBurst { node, loss_percent } => {
                write!(f, "lose {loss_percent}% of {}'s messages", server_name(*node))
            }
            WindowFault::LatencySpike { node, extra_ms } => {
                write!(f, "+{extra_ms}ms on {}'s messages", server_name(*node))
            }
        }
    }
}

impl fmt::Display for FaultWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end_ms = self.start_ms.saturating_add(self.duration_ms);
        match self.fault {
            WindowFault::ClockJump { .. } => write!(f, "at {}ms: {}", self.start_ms, self.fault),
            _ => write!(f, "{}ms..{}ms: {}", self.start_ms, end_ms, self.fault),
        }
    }
}

/// A fault on the timeline, in true time.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedFault {
    pub at_ms: u32,
    pub fault: Fault,
}

impl WindowFault {
    /// Whether this window changes which links carry messages (isolate, partition, one-way): such
    /// windows all end with the core's blanket `heal`, so the timeline re-opens the ones still active.
    pub fn is_network_cut(&self) -> bool {
        matches!(self, WindowFault::Isolate { .. } | WindowFault::Partition { .. } | WindowFault::OneWay { .. })
    }
}

/// Spells a list of windows out as a timeline of faults, in time order (ties: in window order, starts
/// before ends), every window closed by `heal_at_ms` at the latest, and a final `heal` then.
///
/// Overlapping network windows behave as a stack: the core keeps one group partition (an isolate or
/// partition replaces the previous one) and heals every cut at once, so when a network window ends
/// the timeline heals and then re-opens every network window still active, in start order. A
/// window's fault therefore holds for its whole duration unless a later group partition overrides it.
pub fn timeline(windows: &[FaultWindow], servers: u32, heal_at_ms: u32) -> Vec<TimedFault> {
    let span = |window: &FaultWindow| {
        let start_ms = window.start_ms.min(heal_at_ms);
        let end_ms = window.start_ms.saturating_add(window.duration_ms).min(heal_at_ms);
        (start_ms, end_ms)
    };
    // (time, phase, window index, order within the step): a window's end sorts after every start at
    // the same instant, so a zero-length window still opens before it closes.
    let mut keyed: Vec<(u32, u8, usize, usize, Fault)> = Vec::with_capacity(windows.len() * 2 + 1);
    for (index, window) in windows.iter().enumerate() {
        let (start_ms, end_ms) = span(window);
        let (open, close) = window.fault.faults(servers);
        keyed.push((start_ms, 0, index, 0, open));
        let Some(close) = close else { continue };
        if close == Fault::Heal && end_ms >= heal_at_ms {
            continue; // the final heal closes it
        }
        keyed.push((end_ms, 1, index, 0, close));
        if !window.fault.is_network_cut() || end_ms >= heal_at_ms {
            continue;
        }
        // Still active after this close: started by now (ties: earlier in the list), ending later.
        let mut still_open: Vec<(u32, usize)> = windows
            .iter()
            .enumerate()
            .filter(|(other, w)| *other != index && w.fault.is_network_cut())
            .filter(|(_, w)| {
                let (other_start, other_end) = span(w);
                other_start <= end_ms && other_end > end_ms
            })
            .map(|(other, w)| (span(w).0, other))
            .collect();
        still_open.sort_unstable();
        for (order, (_, other)) in still_open.into_iter().enumerate() {
            keyed.push((end_ms, 1, index, order + 1, windows[other].fault.faults(servers).0));
        }
    }
    keyed.push((heal_at_ms, 2, usize::MAX, 0, Fault::Heal));
    keyed.sort_by_key(|(at, phase, index, order, _)| (*at, *phase, *index, *order));
    keyed.into_iter().map(|(at_ms, _, _, _, fault)| TimedFault { at_ms, fault }).collect()
}

/// Checks that every node a window names is one of the `servers`; the message says which is not.
pub fn validate(windows: &[FaultWindow], servers: u32) -> Result<(), String> {
    for window in windows {
        let nodes: Vec<u32> = match &window.fault {
            WindowFault::Partition { side, .. } => side.clone(),
            WindowFault::OneWay { from, to } => vec![*from, *to],
            WindowFault::Crash { node }
            | WindowFault::Pause { node }
            | WindowFault::Isolate { node }
            | WindowFault::ClockJump { node, .. }
            | WindowFault::LossBurst { node, .. }
            | WindowFault::LatencySpike { node, .. } => vec![*node],
        };
        if let Some(bad) = nodes.iter().find(|n| **n >= servers) {
            return Err(format!("fault window `{window}` names server index {bad}, but there are {servers} servers"));
        }
    }
    Ok(())
}

/// Renders a fault timeline as the `[[faults]]` tables of a scenario file; node ids from `servers`
/// on are clients (`c1`, ...).
pub fn scenario_faults_toml(timeline: &[TimedFault], servers: u32) -> String {
    let node_name = |id: u32| if id < servers { server_name(id) } else { format!("c{}", id - servers + 1) };
    let mut out = String::new();
    for timed in timeline {
        out.push_str("[[faults]]\n");
        out.push_str(&format!("at = \"{}ms\"\n", timed.at_ms));
        out.push_str(&format!("kind = \"{}\"\n", timed.fault.kind()));
        let names = |nodes: &[NodeId]| {
            let quoted: Vec<String> = nodes.iter().map(|n| format!("\"{}\"", node_name(n.0))).collect();
            format!("[{}]", quoted.join(", "))
        };
        match &timed.fault {
            Fault::Partition { groups } => {
                let groups: Vec<String> = groups.iter().map(|g| names(g)).collect();
                out.push_str(&format!("groups = [{}]\n", groups.join(", ")));
            }
            Fault::OneWay { from, to } => {
                out.push_str(&format!("from = {}\nto = {}\n", names(from), names(to)));
            }
            Fault::ClockJump { node, by_ns } => {
                out.push_str(&format!("node = \"{}\"\nby = \"{}ms\"\n", node_name(node.0), by_ns / 1_000_000));
            }
            Fault::LossBurst { node, loss } => {
                if let Some(node) = node {
                    out.push_str(&format!("node = \"{}\"\n", node_name(node.0)));
                }
                out.push_str(&format!("loss = {loss}\n"));
            }
            Fault::LatencySpike { node, extra_ns } => {
                if let Some(node) = node {
                    out.push_str(&format!("node = \"{}\"\n", node_name(node.0)));
                }
                out.push_str(&format!("extra = \"{}ms\"\n", extra_ns / 1_000_000));
            }
            other => {
                if let Some(node) = other.nodes().first() {
                    out.push_str(&format!("node = \"{}\"\n", node_name(node.0)));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// Converts a timeline time to simulated time.
pub fn at(ms: u32) -> SimTime {
    SimTime::from_millis(u64::from(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_closes_every_window_by_the_heal_and_heals_last() {
        let windows = vec![
            FaultWindow { start_ms: 100, duration_ms: 5_000, fault: WindowFault::Crash { node: 0 } },
            FaultWindow {
                start_ms: 50,
                duration_ms: 0,
                fault: WindowFault::Partition { side: vec![2], clients: vec![] },
            },
            FaultWindow { start_ms: 70, duration_ms: 10, fault: WindowFault::ClockJump { node: 1, by_ms: -20 } },
        ];
        let timeline = timeline(&windows, 3, 1_000);
        let spelled: Vec<(u32, &str)> = timeline.iter().map(|t| (t.at_ms, t.fault.kind())).collect();
        assert_eq!(
            spelled,
            [(50, "partition"), (50, "heal"), (70, "clock-jump"), (100, "crash"), (1_000, "restart"), (1_000, "heal")]
        );
        match &timeline[0].fault {
            Fault::Partition { groups } => assert_eq!(groups, &vec![vec![NodeId(2)], vec![NodeId(0), NodeId(1)]]),
            other => panic!("expected a partition, got {other:?}"),
        }
    }

    #[test]
    fn ending_one_network_window_reopens_the_others_still_active() {
        let windows = vec![
            FaultWindow {
                start_ms: 100,
                duration_ms: 900,
                fault: WindowFault::Partition { side: vec![0], clients: vec![1] },
            },
            FaultWindow { start_ms: 200, duration_ms: 100, fault: WindowFault::OneWay { from: 1, to: 2 } },
            FaultWindow { start_ms: 250, duration_ms: 100, fault: WindowFault::Crash { node: 2 } },
        ];
        let timeline = timeline(&windows, 3, 2_000);
        let spelled: Vec<(u32, &str)> = timeline.iter().map(|t| (t.at_ms, t.fault.kind())).collect();
        assert_eq!(
            spelled,
            [
                (100, "partition"),
                (200, "one-way"),
                (250, "crash"),
                (300, "heal"),
                (300, "partition"),
                (350, "restart"),
                (1_000, "heal"),
                (2_000, "heal")
            ]
        );
        assert_eq!(timeline[4].fault, timeline[0].fault, "the partition is re-opened as it was");
    }

    #[test]
    fn validation_names_the_window_with_a_missing_server() {
        let windows = vec![FaultWindow { start_ms: 1, duration_ms: 1, fault: WindowFault::OneWay { from: 0, to: 5 } }];
        let message = validate(&windows, 3).expect_err("server index 5 does not exist");
        assert!(message.contains("cut n1 -> n6"), "{message}");
        assert!(validate(&windows, 6).is_ok());
    }

    #[test]
    fn scenario_toml_spells_each_fault() {
        let windows = vec![FaultWindow { start_ms: 10, duration_ms: 20, fault: WindowFault::Crash { node: 1 } }];
        let toml = scenario_faults_toml(&timeline(&windows, 3, 500), 3);
        assert_eq!(
            toml,
            "[[faults]]\nat = \"10ms\"\nkind = \"crash\"\nnode = \"n2\"\n\n\
             [[faults]]\nat = \"30ms\"\nkind = \"restart\"\nnode = \"n2\"\n\n\
             [[faults]]\nat = \"500ms\"\nkind = \"heal\"\n\n"
        );
    }
}
