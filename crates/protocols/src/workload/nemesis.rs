//! A seeded nemesis: draws a random fault schedule over a cluster from a seed — partitions of every
//! kind (majority/minority, isolate a node or the leader, one-way, bridge, random halves with
//! clients), crash/restart, pause/resume, loss bursts, clock jumps and drift, plus link duplication
//! and initial clock skew — and heals everything at a chosen time, so tests can check liveness after.
//!
//! Draws come from `derive_stream(seed, Nemesis, 0)`, never from the nodes' streams: changing the
//! nemesis does not change what the nodes draw.

use super::ClusterLayout;
use crate::spec::ClusterSpec;
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::{AnySimulation, Fault, LocalClock, Node, NodeId, SimError, SimRng, SimTime, Simulation};
use rand::RngExt;
use serde::{Deserialize, Serialize};

/// What the nemesis may do, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NemesisOptions {
    /// No fault starts before this (let the cluster come up first).
    pub start_ms: u64,
    /// Every fault has ended by this time: partitions healed, nodes restarted and resumed.
    pub heal_at_ms: u64,
    /// Mean gap between the starts of two faults.
    pub mean_interval_ms: u64,
    /// Shortest and longest fault.
    pub min_fault_ms: u64,
    pub max_fault_ms: u64,
    pub partitions: bool,
    pub crashes: bool,
    pub pauses: bool,
    /// Loss bursts during the run, and a little base loss for the whole run.
    pub loss: bool,
    /// A little message duplication for the whole run.
    pub duplication: bool,
    /// Initial skew and drift per node, clock jumps and drift changes during the run.
    pub clocks: bool,
    /// Latency spikes (extra delay on one server's messages or on every message). Off by default,
    /// so the schedules drawn for existing seeds stay what they were.
    pub latency_spikes: bool,
    /// Most servers crashed or paused at the same time (`None`: a minority, `(n - 1) / 2`).
    pub max_down: Option<usize>,
    /// The shapes partitions are drawn from, uniformly (default: every kind). A kind the cluster is
    /// too small for (a bridge needs three servers) becomes random halves.
    pub partition_kinds: Vec<PartitionKind>,
}

/// A shape of partition the nemesis can draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionKind {
    /// A minority of servers against the majority; each client lands on either side.
    MajorityMinority,
    /// Cut off whichever server leads when the fault starts.
    IsolateLeader,
    /// Cut off one random server.
    IsolateNode,
    /// Some servers can send to the others but not hear from them.
    OneWay,
    /// Two sides that only one server connects.
    Bridge,
    /// Two random halves of every node, clients included.
    RandomHalves,
}

impl PartitionKind {
    /// Every kind, in the order seeds draw them.
    pub const ALL: [PartitionKind; 6] = [
        PartitionKind::MajorityMinority,
        PartitionKind::IsolateLeader,
        PartitionKind::IsolateNode,
        PartitionKind::OneWay,
        PartitionKind::Bridge,
        PartitionKind::RandomHalves,
    ];
}

impl Default for NemesisOptions {
    fn default() -> Self {
        NemesisOptions {
            start_ms: 300,
            heal_at_ms: 4_000,
            mean_interval_ms: 400,
            min_fault_ms: 100,
            max_fault_ms: 1_500,
            partitions: true,
            crashes: true,
            pauses: true,
            loss: true,
            duplication: true,
            clocks: true,
            latency_spikes: false,
            max_down: None,
            partition_kinds: PartitionKind::ALL.to_vec(),
        }
    }
}

/// A fault to apply, or one resolved when it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum PlannedFault {
    Fault(Fault),
    /// Isolate whichever server leads at that moment (the run's `leader` function says; when it
    /// cannot, `fallback` is isolated instead).
    IsolateLeader {
        fallback: NodeId,
    },
}

/// One step of the schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedFault {
    pub at: SimTime,
    pub fault: PlannedFault,
}

/// A drawn schedule plus whole-run network and clock settings.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisPlan {
    /// In time order; at equal times, in the order they must apply.
    pub steps: Vec<TimedFault>,
    /// Link duplication probability for the whole run.
    pub duplicate: f64,
    /// Base link loss probability for the whole run.
    pub loss: f64,
    /// Initial clock of each node (servers then clients).
    pub clocks: Vec<LocalClock>,
    /// When everything is healed.
    pub heal_at: SimTime,
    /// One line per fault episode, for printing a failing seed's schedule.
    pub description: Vec<String>,
}

/// A node fault episode, to keep at most `max_down` servers down at once and one episode per node.
struct Down {
    node: NodeId,
    end_ns: u64,
}

impl NemesisPlan {
    /// Draws a plan for `layout` from `seed`.
    pub fn random(seed: u64, layout: &ClusterLayout, options: &NemesisOptions) -> Self {
        let mut rng = derive_stream(seed, StreamPurpose::Nemesis, 0);
        let servers = &layout.servers;
        let n = servers.len();
        assert!(n >= 1, "a nemesis needs servers");
        assert!(options.min_fault_ms <= options.max_fault_ms, "min_fault_ms <= max_fault_ms");
        assert!(options.mean_interval_ms > 0, "mean_interval_ms > 0");
        let max_down = options.max_down.unwrap_or((n - 1) / 2);
        let heal_ns = options.heal_at_ms * 1_000_000;
        let mut plan = NemesisPlan {
            steps: Vec::new(),
            duplicate: if options.duplication { rng.random_range(0.0..0.05) } else { 0.0 },
            loss: if options.loss { rng.random_range(0.0..0.02) } else { 0.0 },
            clocks: Vec::new(),
            heal_at: SimTime(heal_ns),
            description: Vec::new(),
        };
        for _ in 0..servers.len() + layout.clients.len() {
            plan.clocks.push(if options.clocks {
                LocalClock::new(rng.random_range(-100_000_000..=100_000_000), rng.random_range(-200.0..=200.0))
            } else {
                LocalClock::new(0, 0.0)
            });
        }
        let mut kinds: Vec<&str> = Vec::new();
        if options.partitions && !options.partition_kinds.is_empty() {
            kinds.extend(["partition", "partition", "partition"]);
        }
        if options.crashes {
            kinds.push("crash");
        }
        if options.pauses {
            kinds.push("pause");
        }
        if options.loss {
            kinds.push("loss");
        }
        if options.clocks {
            kinds.push("clock");
        }
        if options.latency_spikes {
            kinds.push("latency");
        }
        if kinds.is_empty() {
            plan.push(heal_ns, Fault::Heal);
            return plan;
        }
        let mut partition_free_at_ns = 0u64;
        let mut loss_free_at_ns = 0u64;
        let mut latency_free_at_ns = 0u64;
        let mut downs: Vec<Down> = Vec::new();
        let mut t_ns = options.start_ms * 1_000_000;
        loop {
            let uniform: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            t_ns += (-uniform.ln() * options.mean_interval_ms as f64 * 1e6) as u64;
            if t_ns >= heal_ns {
                break;
            }
            let duration_ns = rng.random_range(options.min_fault_ms..=options.max_fault_ms) * 1_000_000;
            let end_ns = (t_ns + duration_ns).min(heal_ns);
            let kind = kinds[rng.random_range(0..kinds.len())];
            match kind {
                "partition" if t_ns >= partition_free_at_ns => {
                    let (label, start) = draw_partition(&mut rng, layout, &options.partition_kinds);
                    plan.description.push(format!("{label} from {} to {}", SimTime(t_ns), SimTime(end_ns)));
                    plan.steps.push(TimedFault { at: SimTime(t_ns), fault: start });
                    plan.push(end_ns, Fault::Heal);
                    partition_free_at_ns = end_ns;
                }
                "crash" | "pause" => {
                    downs.retain(|d| d.end_ns > t_ns);
                    if downs.len() >= max_down {
                        continue;
                    }
                    let candidates: Vec<NodeId> =
                        servers.iter().copied().filter(|s| downs.iter().all(|d| d.node != *s)).collect();
                    let Some(&node) = candidates.get(rng.random_range(0..candidates.len().max(1))) else {
                        continue;
                    };
                    downs.push(Down { node, end_ns });
                    let (start, end) = if kind == "crash" {
                        (Fault::Crash { node }, Fault::Restart { node })
                    } else {
                        (Fault::Pause { node }, Fault::Resume { node })
                    };
                    plan.description.push(format!(
                        "{kind} n{} from {} to {}",
                        node.0 + 1,
                        SimTime(t_ns),
                        SimTime(end_ns)
                    ));
                    plan.push(t_ns, start);
                    plan.push(end_ns, end);
                }
                "loss" if t_ns >= loss_free_at_ns => {
                    let loss = rng.random_range(0.1..0.6);
                    let node = if rng.random_bool(0.5) { None } else { Some(servers[rng.random_range(0..n)]) };
                    plan.description.push(format!(
                        "loss {loss:.2} at {} from {} to {}",
                        node.map_or("every node".to_string(), |n| format!("n{}", n.0 + 1)),
                        SimTime(t_ns),
                        SimTime(end_ns)
                    ));
                    plan.push(t_ns, Fault::LossBurst { node, loss });
                    plan.push(end_ns, Fault::LossBurstEnd { node });
                    loss_free_at_ns = end_ns;
                }
                "latency" if t_ns >= latency_free_at_ns => {
                    let extra_ns = rng.random_range(20_000_000..=300_000_000u64);
                    let node = if rng.random_bool(0.5) { None } else { Some(servers[rng.random_range(0..n)]) };
                    plan.description.push(format!(
                        "latency +{} at {} from {} to {}",
                        SimTime(extra_ns),
                        node.map_or("every node".to_string(), |n| format!("n{}", n.0 + 1)),
                        SimTime(t_ns),
                        SimTime(end_ns)
                    ));
                    plan.push(t_ns, Fault::LatencySpike { node, extra_ns });
                    plan.push(end_ns, Fault::LatencySpikeEnd { node });
                    latency_free_at_ns = end_ns;
                }
                "clock" => {
                    let node = servers[rng.random_range(0..n)];
                    let fault = if rng.random_bool(0.5) {
                        Fault::ClockJump { node, by_ns: rng.random_range(-500_000_000..=500_000_000) }
                    } else {
                        Fault::ClockDrift { node, drift_ppm: rng.random_range(-1_000.0..=1_000.0) }
                    };
                    plan.description.push(format!("{fault:?} at {}", SimTime(t_ns)));
                    plan.push(t_ns, fault);
                }
                _ => {} // the kind is busy right now: skip this draw
            }
        }
        plan.push(heal_ns, Fault::Heal);
        plan.steps.sort_by_key(|s| s.at); // stable: equal times keep the order they were drawn in
        plan
    }

    fn push(&mut self, at_ns: u64, fault: Fault) {
        self.steps.push(TimedFault { at: SimTime(at_ns), fault: PlannedFault::Fault(fault) });
    }

    /// Puts the plan's duplication, base loss and initial clocks into `spec` (before building).
    pub fn apply_to_spec(&self, spec: &mut ClusterSpec) {
        spec.network.default_link.duplicate = self.duplicate;
        spec.network.default_link.loss = self.loss;
        spec.clocks = self.clocks.clone();
    }

    /// Runs `sim` to `end`, applying the schedule; `leader` says which server leads (for
    /// isolate-leader faults), reading the typed simulation.
    pub fn run<N: Node>(
        &self,
        sim: &mut Simulation<N>,
        end: SimTime,
        leader: impl Fn(&Simulation<N>) -> Option<NodeId>,
    ) -> Result<(), SimError> {
        for step in &self.steps {
            if step.at > end {
                break;
            }
            sim.run_until(step.at)?;
            let fault = match &step.fault {
                PlannedFault::Fault(fault) => fault.clone(),
                PlannedFault::IsolateLeader { fallback } => Fault::Isolate { node: leader(sim).unwrap_or(*fallback) },
            };
            sim.schedule_fault(step.at, fault)?;
        }
        sim.run_until(end)?;
        Ok(())
    }

    /// Schedules the whole plan up front on any simulation (isolate-leader faults isolate their
    /// fallback server).
    pub fn schedule_all(&self, sim: &mut dyn AnySimulation) -> Result<(), SimError> {
        for step in &self.steps {
            let fault = match &step.fault {
                PlannedFault::Fault(fault) => fault.clone(),
                PlannedFault::IsolateLeader { fallback } => Fault::Isolate { node: *fallback },
            };
            sim.schedule_fault(step.at, fault)?;
        }
        Ok(())
    }
}

fn shuffled(rng: &mut SimRng, nodes: &[NodeId]) -> Vec<NodeId> {
    let mut nodes = nodes.to_vec();
    for i in (1..nodes.len()).rev() {
        let j = rng.random_range(0..=i);
        nodes.swap(i, j);
    }
    nodes
}

fn names(nodes: &[NodeId], layout: &ClusterLayout) -> String {
    let n = layout.servers.len();
    let names: Vec<String> = nodes
        .iter()
        .map(|id| if id.index() < n { format!("n{}", id.0 + 1) } else { format!("c{}", id.index() - n + 1) })
        .collect();
    format!("[{}]", names.join(" "))
}

/// One partition of a random kind, with a label for the description.
fn draw_partition(rng: &mut SimRng, layout: &ClusterLayout, kinds: &[PartitionKind]) -> (String, PlannedFault) {
    let servers = shuffled(rng, &layout.servers);
    let n = servers.len();
    // With every kind allowed this is one draw in 0..6, as before kinds were selectable, so the
    // schedules of existing seeds did not change.
    let kind = kinds[rng.random_range(0..kinds.len())];
    let fault = match kind {
        // Majority / minority; clients (if any) land on either side.
        PartitionKind::MajorityMinority if n >= 2 => {
            let minority = rng.random_range(1..=((n - 1) / 2).max(1));
            let mut small = servers[..minority].to_vec();
            let mut large = servers[minority..].to_vec();
            for client in &layout.clients {
                if rng.random_bool(0.5) {
                    small.push(*client);
                } else {
                    large.push(*client);
                }
            }
            Fault::Partition { groups: vec![small, large] }
        }
        PartitionKind::IsolateLeader => {
            return ("isolate the leader".into(), PlannedFault::IsolateLeader { fallback: servers[0] })
        }
        PartitionKind::IsolateNode => Fault::Isolate { node: servers[0] },
        // One-way: a few servers can send to the rest but not hear from them, or the reverse.
        PartitionKind::OneWay if n >= 2 => {
            let cut = rng.random_range(1..n);
            Fault::OneWay { from: servers[..cut].to_vec(), to: servers[cut..].to_vec() }
        }
        // Bridge: two sides that only one server connects.
        PartitionKind::Bridge if n >= 3 => {
            let left_size = rng.random_range(1..n - 1);
            Fault::Bridge {
                left: servers[1..=left_size].to_vec(),
                right: servers[left_size + 1..].to_vec(),
                bridge: servers[0],
            }
        }
        // Random halves of every node, clients included.
        _ => {
            let everyone: Vec<NodeId> = layout.servers.iter().chain(&layout.clients).copied().collect();
            let everyone = shuffled(rng, &everyone);
            let cut = rng.random_range(1..everyone.len().max(2)).min(everyone.len());
            Fault::Partition { groups: vec![everyone[..cut].to_vec(), everyone[cut..].to_vec()] }
        }
    };
    let label = match &fault {
        Fault::Partition { groups } => {
            format!("partition {}", groups.iter().map(|g| names(g, layout)).collect::<Vec<_>>().join(" | "))
        }
        Fault::Isolate { node } => format!("isolate {}", names(&[*node], layout)),
        Fault::OneWay { from, to } => format!("one-way {} -/-> {}", names(from, layout), names(to, layout)),
        Fault::Bridge { left, right, bridge } => {
            format!("bridge {} <{}> {}", names(left, layout), names(&[*bridge], layout), names(right, layout))
        }
        other => format!("{other:?}"),
    };
    (label, PlannedFault::Fault(fault))
}
