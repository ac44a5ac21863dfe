//! From a scenario and a seed to what one run needs: swarm knobs drawn and applied, the nemesis'
//! fault windows drawn, scripted faults turned into core faults on a timeline, and the
//! [`ClusterSpec`] the protocol builds its simulation from.
//!
//! Random draws come from streams derived from the seed, each with its own purpose and index, so
//! that adding a fault or a knob does not reshuffle anything else:
//! swarm knobs `(Swarm, 0)`, clock skew and drift `(Swarm, 1)`, the nemesis `(Nemesis, 0)`.

use crate::format::{FaultKind, FaultSpec, Latency, Nemesis, NemesisFault, Scenario, WorkloadKind};
use crate::load::{Diagnostic, LoadedScenario, ScenarioError};
use crate::units::{Duration, SignedDuration};
use detsim_core::rng::{derive_stream, StreamPurpose};
use detsim_core::AnySimulation;
use detsim_core::{Fault, LatencyDist, LinkConfig, LocalClock, NetworkConfig, NodeId, SimRng, Topology};
use detsim_protocols::{ClusterSpec, ProtocolEntry, WorkloadSpec};
use rand::RngExt;
use serde_json::json;

/// Everything one run of one seed needs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub seed: u64,
    /// The scenario with swarm draws applied (no `[swarm]` left).
    pub effective: Scenario,
    pub spec: ClusterSpec,
    pub duration_ns: u64,
    pub servers: usize,
    pub clients: usize,
    pub workload_kind: WorkloadKind,
    /// The nemesis' fault windows for this seed, as scripted faults.
    pub nemesis_faults: Vec<FaultSpec>,
    /// Every fault to schedule, in time order (scripted before nemesis at equal times).
    pub faults: Vec<(u64, Fault)>,
    /// The swarm knobs drawn for this seed, when in swarm mode.
    pub swarm: Option<serde_json::Value>,
    /// Every node of the simulation in id order, as the protocol names them: servers `n1..nN`,
    /// clients `c1..cM`, then any extra nodes the protocol adds (`vs`, `store`, `lb`, ...).
    pub node_names: Vec<String>,
}

/// A problem building a plan that validation could not see, with the dotted path of the value it
/// is about when it has one (the loader turns it into a line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    pub path: Option<String>,
    pub message: String,
    /// The simulation's node names, when the error came after it was built (a fault naming a node
    /// it does not have).
    pub node_names: Vec<String>,
}

impl PlanError {
    fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        PlanError { path: Some(path.into()), message: message.into(), node_names: Vec::new() }
    }

    /// This error as a scenario error of `loaded`, placed at its line and column.
    pub fn into_scenario_error(self, loaded: &LoadedScenario) -> ScenarioError {
        let (line, column) = self.path.as_deref().and_then(|path| loaded.locate(path)).unzip();
        ScenarioError {
            diagnostics: vec![Diagnostic { file: loaded.file.clone(), line, column, message: self.message }],
        }
    }
}

/// The node names of a simulation, to resolve the names scenarios use into node ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeNames<'a>(pub &'a [String]);

impl NodeNames<'_> {
    /// The node id of `name`.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.0.iter().position(|n| n == name).map(|i| NodeId(u32::try_from(i).expect("fewer than 2^32 nodes")))
    }

    /// The names for messages: `n1..n5, c1..c3, vs`.
    pub fn describe(&self) -> String {
        describe_names(self.0)
    }
}

/// `n1..n5, c1..c3, vs`: runs of numbered names collapsed.
pub fn describe_names(names: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let numbered = |name: &str| {
            let (prefix, number) = name.split_at_checked(1)?;
            Some((prefix.to_string(), number.parse::<usize>().ok()?))
        };
        let Some((prefix, first)) = numbered(&names[i]) else {
            parts.push(names[i].clone());
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < names.len() && numbered(&names[j]) == Some((prefix.clone(), first + (j - i))) {
            j += 1;
        }
        if j - i >= 3 {
            parts.push(format!("{}..{}", names[i], names[j - 1]));
        } else {
            parts.extend(names[i..j].iter().cloned());
        }
        i = j;
    }
    parts.join(", ")
}

/// The node index of `name` (`n1..nN` are servers `0..N`, `c1..cM` clients `N..N+M`).
pub fn node_index(name: &str, servers: usize, clients: usize) -> Option<u32> {
    let (prefix, number) = name.split_at_checked(1)?;
    let k: usize = number.parse().ok()?;
    if k == 0 || number != k.to_string() {
        return None;
    }
    let index = match prefix {
        "n" if k <= servers => k - 1,
        "c" if k <= clients => servers + k - 1,
        _ => return None,
    };
    u32::try_from(index).ok()
}

/// The core latency distribution of a scenario latency.
pub fn latency_dist(latency: &Latency) -> LatencyDist {
    match *latency {
        Latency::Constant { value } => LatencyDist::Constant { ns: value.as_ns() },
        Latency::Uniform { min, max } => LatencyDist::Uniform { min_ns: min.as_ns(), max_ns: max.as_ns() },
        Latency::Normal { mean, std_dev } => {
            LatencyDist::Normal { mean_ns: mean.as_ns() as f64, std_dev_ns: std_dev.as_ns() as f64 }
        }
        Latency::Exponential { mean } => LatencyDist::Exponential { mean_ns: mean.as_ns() as f64 },
        Latency::LogNormal { median, sigma } => LatencyDist::LogNormal { median_ns: median.as_ns() as f64, sigma },
        Latency::Pareto { scale, shape } => LatencyDist::Pareto { scale_ns: scale.as_ns() as f64, shape },
    }
}

/// The workload kind a scenario runs: its own, or the protocol's first.
pub fn workload_kind(loaded: &LoadedScenario) -> WorkloadKind {
    scenario_workload_kind(&loaded.scenario, &loaded.protocol)
}

/// The workload kind `scenario` runs on `protocol`: its own, or the protocol's first.
pub fn scenario_workload_kind(scenario: &Scenario, protocol: &ProtocolEntry) -> WorkloadKind {
    scenario
        .workload
        .kind
        .unwrap_or_else(|| protocol.workloads.first().map_or(WorkloadKind::None, |k| WorkloadKind::from_protocol(*k)))
}

/// Draws the swarm knobs for `seed` into a copy of the scenario. Returns the copy (without
/// `[swarm]`) and the drawn values, or the scenario unchanged when it has no `[swarm]`.
pub fn apply_swarm(scenario: &Scenario, seed: u64) -> (Scenario, Option<serde_json::Value>) {
    let mut effective = scenario.clone();
    let Some(swarm) = effective.swarm.take() else {
        return (effective, None);
    };
    let mut rng = derive_stream(seed, StreamPurpose::Swarm, 0);
    let mut drawn = serde_json::Map::new();
    if let Some([low, high]) = swarm.nodes {
        let nodes = rng.random_range(low..=high);
        effective.cluster.nodes = nodes;
        drawn.insert("nodes".into(), json!(nodes));
    }
    if let Some([low, high]) = swarm.clients {
        let clients = rng.random_range(low..=high);
        effective.workload.clients = Some(clients);
        drawn.insert("clients".into(), json!(clients));
    }
    if let Some([low, high]) = swarm.loss {
        // Rounded to 4 decimals so the drawn value prints and reads back exactly.
        let loss = (rng.random_range(low..=high) * 10_000.0).round() / 10_000.0;
        effective.network.loss = loss.clamp(low, high);
        drawn.insert("loss".into(), json!(effective.network.loss));
    }
    if let Some([low, high]) = swarm.latency {
        let mean_ns = rng.random_range(low.as_ns()..=high.as_ns());
        // Whole microseconds, so the latency prints and reads back exactly.
        let mean_ns = (mean_ns / 1_000).max(1) * 1_000;
        effective.network.latency =
            Latency::Uniform { min: Duration::from_ns(mean_ns / 2), max: Duration::from_ns(mean_ns / 2 * 3) };
        drawn.insert("latency_mean".into(), json!(Duration::from_ns(mean_ns).to_string()));
    }
    if let Some(mix) = &swarm.faults {
        let mut kept: Vec<NemesisFault> = mix.iter().copied().filter(|_| rng.random_bool(0.5)).collect();
        if kept.is_empty() {
            kept.push(mix[rng.random_range(0..mix.len())]);
        }
        drawn.insert("faults".into(), json!(kept.iter().map(|k| k.as_str()).collect::<Vec<_>>()));
        effective.nemesis.get_or_insert_with(|| Nemesis::with_faults(Vec::new())).faults = kept;
    }
    if let Some([low, high]) = swarm.interval {
        let interval_ns = rng.random_range(low.as_ns()..=high.as_ns()) / 1_000_000 * 1_000_000;
        let interval = Duration::from_ns(interval_ns.max(1_000_000));
        effective.nemesis.get_or_insert_with(|| Nemesis::with_faults(vec![NemesisFault::Partition])).interval =
            interval;
        drawn.insert("interval".into(), json!(interval.to_string()));
    }
    (effective, Some(serde_json::Value::Object(drawn)))
}

/// Fisher-Yates with our own draws (so the order never depends on a library's shuffle).
fn shuffled(items: &[String], rng: &mut SimRng) -> Vec<String> {
    let mut items = items.to_vec();
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
    items
}

/// The nemesis' fault windows for one seed, as scripted faults with a duration.
pub fn nemesis_faults(nemesis: &Nemesis, servers: usize, duration_ns: u64, seed: u64) -> Vec<FaultSpec> {
    let mut rng = derive_stream(seed, StreamPurpose::Nemesis, 0);
    let targets: Vec<String> = if nemesis.targets.is_empty() {
        (0..servers).map(ClusterSpec::server_name).collect()
    } else {
        nemesis.targets.clone()
    };
    let stop_ns = nemesis.stop.map_or(duration_ns, Duration::as_ns).min(duration_ns);
    let interval_ns = nemesis.interval.as_ns().max(1);
    let window_ns = nemesis.fault_duration.as_ns();
    let mut faults = Vec::new();
    if nemesis.faults.is_empty() || targets.is_empty() {
        return faults;
    }
    // The first window starts within one interval of `start`; later ones after a gap drawn around it.
    // Times are whole milliseconds, so that a shrunk scenario reads well.
    let ms = |ns: u64| ns / 1_000_000 * 1_000_000;
    let mut at_ns = nemesis.start.as_ns() + ms(rng.random_range(0..interval_ns));
    while at_ns + window_ns <= stop_ns {
        let kind = nemesis.faults[rng.random_range(0..nemesis.faults.len())];
        let order = shuffled(&targets, &mut rng);
        let mut fault = FaultSpec::new(Duration::from_ns(at_ns), FaultKind::Heal);
        fault.duration = Some(Duration::from_ns(window_ns));
        let pick = order[0].clone();
        let half = order.len() / 2;
        let usable = match kind {
            NemesisFault::Partition if order.len() >= 2 => {
                let minority = (order.len() - 1) / 2;
                let minority = minority.max(1);
                fault.kind = FaultKind::Partition;
                fault.groups = Some(vec![order[..minority].to_vec(), order[minority..].to_vec()]);
                true
            }
            NemesisFault::Isolate if order.len() >= 2 => {
                fault.kind = FaultKind::Isolate;
                fault.node = Some(pick);
                true
            }
            NemesisFault::Bridge if order.len() >= 3 => {
                let rest = &order[1..];
                let split = rest.len() / 2;
                fault.kind = FaultKind::Bridge;
                fault.bridge = Some(pick);
                fault.left = Some(rest[..split].to_vec());
                fault.right = Some(rest[split..].to_vec());
                true
            }
            NemesisFault::OneWay if order.len() >= 2 => {
                fault.kind = FaultKind::OneWay;
                fault.from = Some(order[..half].to_vec());
                fault.to = Some(order[half..].to_vec());
                true
            }
            NemesisFault::Crash => {
                fault.kind = FaultKind::Crash;
                fault.node = Some(pick);
                true
            }
            NemesisFault::Pause => {
                fault.kind = FaultKind::Pause;
                fault.node = Some(pick);
                true
            }
            NemesisFault::ClockJump => {
                let max = nemesis.max_clock_jump.as_ns().min(i64::MAX as u64) as i64;
                // Whole milliseconds, so the jump prints and reads back exactly.
                let by = rng.random_range(-max..=max) / 1_000_000 * 1_000_000;
                fault.kind = FaultKind::ClockJump;
                fault.node = Some(pick);
                fault.by = Some(SignedDuration(by));
                fault.duration = None;
                true
            }
            NemesisFault::ClockDrift => {
                let max = nemesis.max_drift_ppm.abs();
                let drift = (rng.random_range(-max..=max)).round();
                fault.kind = FaultKind::ClockDrift;
                fault.node = Some(pick);
                fault.drift_ppm = Some(drift);
                true
            }
            NemesisFault::LatencySpike => {
                fault.kind = FaultKind::LatencySpike;
                fault.extra = Some(nemesis.latency_spike);
                true
            }
            NemesisFault::LossBurst => {
                fault.kind = FaultKind::LossBurst;
                fault.loss = Some(nemesis.loss);
                true
            }
            // Too few targets for a split: this window stays quiet.
            _ => false,
        };
        if usable {
            faults.push(fault);
        }
        at_ns += window_ns + ms(rng.random_range(interval_ns / 2..=interval_ns / 2 * 3));
    }
    faults
}

/// The node names a fault uses, with the dotted key of each (`node`, `groups.1.0`, `left.2`, ...).
pub fn fault_node_names(fault: &FaultSpec) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    for (key, name) in [("node", &fault.node), ("bridge", &fault.bridge)] {
        if let Some(name) = name {
            out.push((key.to_string(), name));
        }
    }
    for (key, list) in [("left", &fault.left), ("right", &fault.right), ("from", &fault.from), ("to", &fault.to)] {
        for (i, name) in list.iter().flatten().enumerate() {
            out.push((format!("{key}.{i}"), name));
        }
    }
    for (g, group) in fault.groups.iter().flatten().enumerate() {
        for (i, name) in group.iter().enumerate() {
            out.push((format!("groups.{g}.{i}"), name));
        }
    }
    out
}

/// The core faults of a scripted fault: the fault itself and, with a `duration`, the fault that
/// undoes it.
pub fn core_faults(fault: &FaultSpec, names: &NodeNames<'_>) -> Result<Vec<(u64, Fault)>, String> {
    let id = |name: &str| {
        names.id(name).ok_or_else(|| format!("no node named {name:?}: the simulation has {}", names.describe()))
    };
    let ids = |names: &Option<Vec<String>>| -> Result<Vec<NodeId>, String> {
        names.iter().flatten().map(|n| id(n)).collect()
    };
    let node = || fault.node.as_deref().map(id).transpose();
    let need_node = || node()?.ok_or_else(|| format!("a {} fault needs `node`", fault.kind.as_str()));
    let (start, undo) = match fault.kind {
        FaultKind::Partition => {
            let groups = fault
                .groups
                .iter()
                .flatten()
                .map(|group| group.iter().map(|n| id(n)).collect::<Result<Vec<_>, _>>())
                .collect::<Result<Vec<_>, _>>()?;
            (Fault::Partition { groups }, Some(Fault::Heal))
        }
        FaultKind::Isolate => (Fault::Isolate { node: need_node()? }, Some(Fault::Heal)),
        FaultKind::Bridge => {
            let bridge = id(fault.bridge.as_deref().ok_or("a bridge fault needs `bridge`")?)?;
            (Fault::Bridge { left: ids(&fault.left)?, right: ids(&fault.right)?, bridge }, Some(Fault::Heal))
        }
        FaultKind::OneWay => (Fault::OneWay { from: ids(&fault.from)?, to: ids(&fault.to)? }, Some(Fault::Heal)),
        FaultKind::Heal => (Fault::Heal, None),
        FaultKind::Crash => {
            let node = need_node()?;
            (Fault::Crash { node }, Some(Fault::Restart { node }))
        }
        FaultKind::Restart => (Fault::Restart { node: need_node()? }, None),
        FaultKind::Pause => {
            let node = need_node()?;
            (Fault::Pause { node }, Some(Fault::Resume { node }))
        }
        FaultKind::Resume => (Fault::Resume { node: need_node()? }, None),
        FaultKind::ClockJump => {
            (Fault::ClockJump { node: need_node()?, by_ns: fault.by.ok_or("a clock-jump fault needs `by`")?.0 }, None)
        }
        FaultKind::ClockOffset => (
            Fault::ClockOffset {
                node: need_node()?,
                offset_ns: fault.offset.ok_or("a clock-offset fault needs `offset`")?.0,
            },
            None,
        ),
        FaultKind::ClockDrift => {
            let node = need_node()?;
            let drift_ppm = fault.drift_ppm.ok_or("a clock-drift fault needs `drift_ppm`")?;
            (Fault::ClockDrift { node, drift_ppm }, Some(Fault::ClockDrift { node, drift_ppm: 0.0 }))
        }
        FaultKind::LatencySpike => {
            let node = node()?;
            let extra_ns = fault.extra.ok_or("a latency-spike fault needs `extra`")?.as_ns();
            (Fault::LatencySpike { node, extra_ns }, Some(Fault::LatencySpikeEnd { node }))
        }
        FaultKind::LatencySpikeEnd => (Fault::LatencySpikeEnd { node: node()? }, None),
        FaultKind::LossBurst => {
            let node = node()?;
            let loss = fault.loss.ok_or("a loss-burst fault needs `loss`")?;
            (Fault::LossBurst { node, loss }, Some(Fault::LossBurstEnd { node }))
        }
        FaultKind::LossBurstEnd => (Fault::LossBurstEnd { node: node()? }, None),
        FaultKind::Corrupt => {
            let probability = fault.probability.ok_or("a corrupt fault needs `probability`")?;
            (Fault::Corrupt { probability }, Some(Fault::Corrupt { probability: 0.0 }))
        }
        FaultKind::TopologyEdge => {
            let a = fault.a.clone().ok_or("a topology-edge fault needs `a`")?;
            let b = fault.b.clone().ok_or("a topology-edge fault needs `b`")?;
            let up = fault.up.ok_or("a topology-edge fault needs `up`")?;
            (Fault::TopologyEdge { a: a.clone(), b: b.clone(), up }, Some(Fault::TopologyEdge { a, b, up: true }))
        }
    };
    start.validate()?;
    let at = fault.at.as_ns();
    let mut faults = vec![(at, start)];
    if let (Some(duration), Some(undo)) = (fault.duration, undo) {
        faults.push((at.saturating_add(duration.as_ns()), undo));
    }
    Ok(faults)
}

fn link_config(network: &crate::format::Network) -> LinkConfig {
    LinkConfig {
        latency: latency_dist(&network.latency),
        loss: network.loss,
        duplicate: network.duplicate,
        fifo: network.fifo,
        bandwidth_bytes_per_s: network.bandwidth.map(|b| b.0),
    }
}

impl Plan {
    /// The plan of `loaded` for `seed`. Errors are user errors the validation could not see.
    pub fn new(loaded: &LoadedScenario, seed: u64) -> Result<Plan, ScenarioError> {
        Plan::with_simulation(loaded, seed).map(|(plan, _)| plan)
    }

    /// The plan of `loaded` for `seed` and the simulation it built (ready to run, no fault
    /// scheduled yet): the simulation names the nodes faults refer to.
    pub fn with_simulation(
        loaded: &LoadedScenario,
        seed: u64,
    ) -> Result<(Plan, Box<dyn AnySimulation>), ScenarioError> {
        Plan::build(&loaded.scenario, &loaded.protocol, seed).map_err(|error| error.into_scenario_error(loaded))
    }

    /// The plan of `scenario` (validated) on `protocol` for `seed`, and its simulation.
    pub fn build(
        scenario: &Scenario,
        protocol: &ProtocolEntry,
        seed: u64,
    ) -> Result<(Plan, Box<dyn AnySimulation>), PlanError> {
        let (effective, swarm) = apply_swarm(scenario, seed);
        let servers = effective.cluster.nodes;
        let kind = effective.workload.kind.unwrap_or_else(|| scenario_workload_kind(scenario, protocol));
        let default_clients = if kind == WorkloadKind::None { 0 } else { 3 };
        let clients = effective.workload.clients.unwrap_or(default_clients);
        let duration_ns = effective.duration.as_ns();

        // Network.
        let mut network = NetworkConfig::new(link_config(&effective.network));
        network.partition_drops_in_flight = effective.network.partition_drops_in_flight;
        let standard = |path: String, name: &str| {
            node_index(name, servers, clients).ok_or_else(|| {
                PlanError::at(
                    path,
                    format!("no node named {name:?}: seed {seed} has servers n1..n{servers} and {clients} clients"),
                )
            })
        };
        for (i, link) in effective.network.links.iter().enumerate() {
            let from = standard(format!("network.links.{i}.from"), &link.from)?;
            let to = standard(format!("network.links.{i}.to"), &link.to)?;
            let mut config = network.default_link.clone();
            if let Some(latency) = &link.latency {
                config.latency = latency_dist(latency);
            }
            config.loss = link.loss.unwrap_or(config.loss);
            config.duplicate = link.duplicate.unwrap_or(config.duplicate);
            config.fifo = link.fifo.unwrap_or(config.fifo);
            if let Some(bandwidth) = link.bandwidth {
                config.bandwidth_bytes_per_s = Some(bandwidth.0);
            }
            network.links.insert((from, to), config.clone());
            if link.both_ways {
                network.links.insert((to, from), config);
            }
        }
        if !effective.network.topology.is_empty() {
            let mut topology = Topology::new();
            for i in 0..servers + clients {
                let name =
                    if i < servers { ClusterSpec::server_name(i) } else { ClusterSpec::client_name(i - servers) };
                topology.add_node(NodeId(i as u32), &name);
            }
            for edge in &effective.network.topology {
                let latency = edge.latency.as_ref().map_or(LatencyDist::Constant { ns: 0 }, latency_dist);
                topology
                    .connect(&edge.a, &edge.b, latency)
                    .map_err(|message| PlanError::at("network.topology", message))?;
            }
            network.topology = Some(topology);
        }

        // Clocks: random skew and drift first (one draw each per node, in node order), then
        // overrides. No [clocks] section: none, so the protocol decides (ntp and berkeley draw
        // their own from their skew_ms_max / drift_ppm_max; every other protocol's are perfect).
        let clocks_spec = &effective.clocks;
        let node_clocks = if clocks_spec.is_default() { 0 } else { servers + clients };
        let mut clocks = Vec::with_capacity(node_clocks);
        let mut clock_rng = derive_stream(seed, StreamPurpose::Swarm, 1);
        for _ in 0..node_clocks {
            let skew = clocks_spec.skew.map_or(0, |s| s.as_ns().min(i64::MAX as u64) as i64);
            let offset_ns = if skew > 0 { clock_rng.random_range(-skew..=skew) } else { 0 };
            let drift_max = clocks_spec.drift_ppm.unwrap_or(0.0).abs();
            let drift_ppm = if drift_max > 0.0 { clock_rng.random_range(-drift_max..=drift_max) } else { 0.0 };
            clocks.push(LocalClock::new(offset_ns, drift_ppm));
        }
        for (name, clock) in &clocks_spec.nodes {
            let index = standard(format!("clocks.nodes.{name}"), name)?;
            clocks[index as usize] = LocalClock::new(clock.offset.0, clock.drift_ppm);
        }

        // Workload.
        let w = &effective.workload;
        let defaults = WorkloadSpec::default();
        let workload = WorkloadSpec {
            kind: kind.to_protocol(),
            clients,
            concurrency: w.concurrency.unwrap_or(defaults.concurrency),
            rate_per_s: w.rate,
            keys: w.keys.unwrap_or(defaults.keys),
            timeout_ns: w.timeout.map_or(defaults.timeout_ns, Duration::as_ns),
            think_time_ns: w.think_time.map_or(defaults.think_time_ns, Duration::as_ns),
            max_ops_per_client: w.max_ops_per_client,
            stop_at_ns: w.stop_at.map(Duration::as_ns),
            read_fraction: w.read_fraction.unwrap_or(defaults.read_fraction),
            updates_until_ns: w.updates_until.map(Duration::as_ns),
        };

        let mut spec = ClusterSpec::new(seed, servers, workload);
        spec.network = network;
        spec.clocks = clocks;
        spec.params = if effective.cluster.params.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Object(effective.cluster.params.clone())
        };

        // The simulation names its nodes; faults may name any of them.
        let sim = (protocol.build)(&spec).map_err(|message| {
            let path = if effective.cluster.params.is_empty() { "cluster" } else { "cluster.params" };
            PlanError::at(path, format!("protocol {:?} rejected the cluster: {message}", protocol.name))
        })?;
        let node_names = sim.node_names();
        let names = NodeNames(&node_names);

        // Faults: scripted, then the nemesis' windows; stable-sorted by time.
        let nemesis_faults = match &effective.nemesis {
            Some(nemesis) => nemesis_faults(nemesis, servers, duration_ns, seed),
            None => Vec::new(),
        };
        let mut faults = Vec::new();
        let with_names = |mut error: PlanError| {
            error.node_names = node_names.clone();
            error
        };
        for (i, fault) in effective.faults.iter().enumerate() {
            for (key, name) in fault_node_names(fault) {
                if names.id(name).is_none() {
                    return Err(with_names(PlanError::at(
                        format!("faults.{i}.{key}"),
                        format!("no node named {name:?}: the simulation has {}", names.describe()),
                    )));
                }
            }
            let core = core_faults(fault, &names)
                .map_err(|message| with_names(PlanError::at(format!("faults.{i}"), message)))?;
            faults.extend(core);
        }
        for fault in &nemesis_faults {
            let core =
                core_faults(fault, &names).map_err(|message| with_names(PlanError::at("nemesis.targets", message)))?;
            faults.extend(core);
        }
        faults.sort_by_key(|(at, _)| *at);

        let plan = Plan {
            seed,
            effective,
            spec,
            duration_ns,
            servers,
            clients,
            workload_kind: kind,
            nemesis_faults,
            faults,
            swarm,
            node_names,
        };
        Ok((plan, sim))
    }

    /// The effective scenario with the nemesis' windows written out as scripted faults and the
    /// nemesis removed: the same run (the same trace hash), as a scenario a person can read and edit
    /// (used by shrink). The nemesis' faults follow the scripted ones, in the order the plan
    /// schedules them, so that faults at equal times keep their order.
    pub fn materialized(&self) -> Scenario {
        let mut scenario = self.effective.clone();
        scenario.nemesis = None;
        scenario.faults.extend(self.nemesis_faults.iter().cloned());
        scenario.seed = self.seed;
        scenario
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard_names(servers: usize, clients: usize) -> Vec<String> {
        (0..servers).map(ClusterSpec::server_name).chain((0..clients).map(ClusterSpec::client_name)).collect()
    }

    #[test]
    fn extra_nodes_resolve_by_name_and_names_describe_compactly() {
        let mut names = standard_names(5, 3);
        names.push("vs".into());
        let names = NodeNames(&names);
        assert_eq!(names.id("vs"), Some(NodeId(8)));
        assert_eq!(names.id("c1"), Some(NodeId(5)));
        assert_eq!(names.id("store"), None);
        assert_eq!(names.describe(), "n1..n5, c1..c3, vs");
        assert_eq!(describe_names(&["n1".into(), "n2".into(), "lb".into()]), "n1, n2, lb");
        let mut crash = FaultSpec::new(Duration::from_secs(1), FaultKind::Crash);
        crash.node = Some("vs".into());
        assert_eq!(
            core_faults(&crash, &names).expect("vs exists"),
            vec![(1_000_000_000, Fault::Crash { node: NodeId(8) })]
        );
        crash.node = Some("store".into());
        let error = core_faults(&crash, &names).expect_err("no store");
        assert!(error.contains("\"store\"") && error.contains("n1..n5, c1..c3, vs"), "{error}");
    }

    #[test]
    fn node_names_map_servers_then_clients() {
        assert_eq!(node_index("n1", 3, 2), Some(0));
        assert_eq!(node_index("n3", 3, 2), Some(2));
        assert_eq!(node_index("c1", 3, 2), Some(3));
        assert_eq!(node_index("c2", 3, 2), Some(4));
        for bad in ["n0", "n4", "c3", "x1", "n", "n01", "", "n-1"] {
            assert_eq!(node_index(bad, 3, 2), None, "{bad}");
        }
    }

    #[test]
    fn a_fault_with_a_duration_is_undone() {
        let mut crash = FaultSpec::new(Duration::from_secs(2), FaultKind::Crash);
        crash.node = Some("n2".into());
        crash.duration = Some(Duration::from_secs(3));
        let names = standard_names(3, 1);
        let faults = core_faults(&crash, &NodeNames(&names)).expect("valid fault");
        assert_eq!(
            faults,
            vec![
                (2_000_000_000, Fault::Crash { node: NodeId(1) }),
                (5_000_000_000, Fault::Restart { node: NodeId(1) })
            ]
        );
    }

    #[test]
    fn the_nemesis_is_a_function_of_the_seed_and_stays_in_its_window() {
        let mut nemesis = Nemesis::with_faults(vec![
            NemesisFault::Partition,
            NemesisFault::Crash,
            NemesisFault::ClockJump,
            NemesisFault::Bridge,
        ]);
        nemesis.stop = Some(Duration::from_secs(50));
        let a = nemesis_faults(&nemesis, 5, 60_000_000_000, 7);
        let b = nemesis_faults(&nemesis, 5, 60_000_000_000, 7);
        let c = nemesis_faults(&nemesis, 5, 60_000_000_000, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.len() >= 5, "about one window every 7s over 49s, got {}", a.len());
        for fault in &a {
            let end = fault.at.as_ns() + fault.duration.map_or(0, Duration::as_ns);
            assert!(fault.at.as_ns() >= 1_000_000_000 && end <= 50_000_000_000, "{fault:?}");
            for (_, core) in core_faults(fault, &NodeNames(&standard_names(5, 0))).expect("nemesis faults are valid") {
                core.validate().expect("valid core fault");
            }
        }
    }
}
