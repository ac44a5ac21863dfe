//! Validation of what the types cannot say: ranges, node names, times within the run, keys that a
//! fault kind does or does not take, and the protocol and checks named. Each problem carries the
//! dotted path of the value it is about, which the loader turns into a line and column.

use crate::checks;
use crate::format::{FaultKind, FaultSpec, Latency, Scenario, WorkloadKind};
use crate::plan::{describe_names, latency_dist, node_index};
use crate::units::format_duration_ns;
use detsim_protocols::ProtocolEntry;

/// One validation problem: where (a dotted path such as `faults.2.node`) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// Upper bounds that keep a hand-written typo (`nodes = 30000`) from eating the machine.
pub const MAX_SERVERS: usize = 1_000;
pub const MAX_CLIENTS: usize = 10_000;

/// What validation found: problems, and node names it could not resolve without the simulation
/// (a fault may name an extra node a protocol adds, such as `vs` or `store`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validation {
    pub problems: Vec<Problem>,
    /// `(path, name)` of each node name that is neither a server nor a client of the scenario.
    pub unresolved_names: Vec<(String, String)>,
}

struct Checker<'a> {
    problems: Vec<Problem>,
    unresolved_names: Vec<(String, String)>,
    servers: usize,
    clients: usize,
    duration_ns: u64,
    topology_vertices: Vec<&'a str>,
}

impl<'a> Checker<'a> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn probability(&mut self, path: &str, what: &str, value: f64) {
        if !(0.0..=1.0).contains(&value) {
            self.problem(path, format!("{what} must be a probability between 0 and 1, got {value}"));
        }
    }

    fn node(&mut self, path: &str, name: &str) {
        if node_index(name, self.servers, self.clients).is_none() {
            let clients = if self.clients == 0 { String::new() } else { format!(" and clients c1..c{}", self.clients) };
            self.problem(
                path,
                format!("no node named {name:?}: the cluster has servers n1..n{}{clients}", self.servers),
            );
        }
    }

    /// A node a fault names: a server, a client, or (resolved later against the simulation) an
    /// extra node of the protocol.
    fn fault_node(&mut self, path: &str, name: &str) {
        if node_index(name, self.servers, self.clients).is_none() {
            self.unresolved_names.push((path.to_string(), name.to_string()));
        }
    }

    fn fault_nodes(&mut self, path: &str, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            self.fault_node(&format!("{path}.{i}"), name);
        }
    }

    fn latency(&mut self, path: &str, latency: &Latency) {
        if let Err(message) = latency_dist(latency).validate() {
            self.problem(path, format!("invalid latency: {message}"));
        }
    }

    fn drift(&mut self, path: &str, drift_ppm: f64) {
        if !(drift_ppm.is_finite() && drift_ppm.abs() < 1_000_000.0) {
            self.problem(
                path,
                format!("drift must be a finite number of ppm between -1000000 and 1000000, got {drift_ppm}"),
            );
        }
    }

    fn time_in_run(&mut self, path: &str, what: &str, at_ns: u64) {
        if at_ns > self.duration_ns {
            self.problem(
                path,
                format!(
                    "{what} at {} is after the end of the run (duration = {})",
                    format_duration_ns(at_ns as i64),
                    format_duration_ns(self.duration_ns as i64)
                ),
            );
        }
    }
}

/// Every problem with `scenario` (empty when it is valid), node names the simulation may still
/// resolve aside.
pub fn validate(scenario: &Scenario, registry: &[ProtocolEntry]) -> Validation {
    let swarm = scenario.swarm.clone().unwrap_or_default();
    // With swarm ranges, names must exist in the smallest cluster that can be drawn.
    let servers = swarm.nodes.map_or(scenario.cluster.nodes, |range| range[0]);
    let protocol = registry.iter().find(|entry| entry.name == scenario.cluster.protocol);
    let kind = scenario
        .workload
        .kind
        .or_else(|| protocol.and_then(|p| p.workloads.first()).map(|k| WorkloadKind::from_protocol(*k)));
    let default_clients = if kind == Some(WorkloadKind::None) { 0 } else { 3 };
    let clients = swarm.clients.map_or(scenario.workload.clients.unwrap_or(default_clients), |range| range[0]);
    let mut c = Checker {
        problems: Vec::new(),
        unresolved_names: Vec::new(),
        servers,
        clients,
        duration_ns: scenario.duration.as_ns(),
        topology_vertices: Vec::new(),
    };

    if let Some(name) = &scenario.name {
        if name.trim().is_empty() {
            c.problem("name", "name must not be empty");
        }
    }
    if scenario.duration.as_ns() == 0 {
        c.problem("duration", "duration must be above 0, e.g. \"30s\"");
    }

    // Cluster.
    match protocol {
        None => {
            let mut names: Vec<&str> = registry.iter().map(|e| e.name).collect();
            names.sort_unstable();
            let known = if names.is_empty() { "none are registered yet".to_string() } else { names.join(", ") };
            c.problem(
                "cluster.protocol",
                format!("unknown protocol {:?}: expected one of {known}", scenario.cluster.protocol),
            );
        }
        Some(entry) => {
            if let Some(kind) = scenario.workload.kind {
                if !entry.workloads.contains(&kind.to_protocol()) {
                    let served: Vec<&str> =
                        entry.workloads.iter().map(|k| WorkloadKind::from_protocol(*k).as_str()).collect();
                    c.problem(
                        "workload.kind",
                        format!(
                            "protocol {:?} does not serve workload {:?}: expected one of {}",
                            entry.name,
                            kind.as_str(),
                            served.join(", ")
                        ),
                    );
                }
            }
        }
    }
    if scenario.cluster.nodes == 0 {
        c.problem("cluster.nodes", "a cluster needs at least 1 node, got 0");
    } else if scenario.cluster.nodes > MAX_SERVERS {
        c.problem("cluster.nodes", format!("at most {MAX_SERVERS} nodes, got {}", scenario.cluster.nodes));
    }

    // Network.
    let network = &scenario.network;
    c.latency("network.latency", &network.latency);
    c.probability("network.loss", "loss", network.loss);
    c.probability("network.duplicate", "duplicate", network.duplicate);
    if network.bandwidth.is_some_and(|b| b.0 == 0) {
        c.problem("network.bandwidth", "bandwidth must be above 0");
    }
    for (i, link) in network.links.iter().enumerate() {
        let path = format!("network.links.{i}");
        c.node(&format!("{path}.from"), &link.from);
        c.node(&format!("{path}.to"), &link.to);
        if let Some(latency) = &link.latency {
            c.latency(&format!("{path}.latency"), latency);
        }
        if let Some(loss) = link.loss {
            c.probability(&format!("{path}.loss"), "loss", loss);
        }
        if let Some(duplicate) = link.duplicate {
            c.probability(&format!("{path}.duplicate"), "duplicate", duplicate);
        }
        if link.bandwidth.is_some_and(|b| b.0 == 0) {
            c.problem(format!("{path}.bandwidth"), "bandwidth must be above 0");
        }
    }
    for (i, edge) in network.topology.iter().enumerate() {
        let path = format!("network.topology.{i}");
        if edge.a == edge.b {
            c.problem(format!("{path}.b"), format!("an edge joins two different vertices, got {:?} twice", edge.a));
        }
        if let Some(latency) = &edge.latency {
            c.latency(&format!("{path}.latency"), latency);
        }
        c.topology_vertices.push(&edge.a);
        c.topology_vertices.push(&edge.b);
    }

    // Clocks.
    if let Some(drift) = scenario.clocks.drift_ppm {
        c.drift("clocks.drift_ppm", drift);
    }
    for (name, clock) in &scenario.clocks.nodes {
        c.node(&format!("clocks.nodes.{name}"), name);
        c.drift(&format!("clocks.nodes.{name}.drift_ppm"), clock.drift_ppm);
    }

    // Workload.
    let workload = &scenario.workload;
    if let Some(clients) = workload.clients {
        if clients > MAX_CLIENTS {
            c.problem("workload.clients", format!("at most {MAX_CLIENTS} clients, got {clients}"));
        }
    }
    if workload.concurrency == Some(0) {
        c.problem("workload.concurrency", "concurrency must be at least 1");
    }
    if let Some(rate) = workload.rate {
        if !(rate.is_finite() && rate > 0.0) {
            c.problem("workload.rate", format!("rate must be a positive number of operations per second, got {rate}"));
        }
    }
    if workload.keys == Some(0) {
        c.problem("workload.keys", "keys must be at least 1");
    }
    if workload.timeout.is_some_and(|t| t.as_ns() == 0) {
        c.problem("workload.timeout", "timeout must be above 0");
    }
    if let Some(fraction) = workload.read_fraction {
        c.probability("workload.read_fraction", "read_fraction", fraction);
    }
    if let Some(stop_at) = workload.stop_at {
        c.time_in_run("workload.stop_at", "stop_at", stop_at.as_ns());
    }
    if let Some(updates_until) = workload.updates_until {
        c.time_in_run("workload.updates_until", "updates_until", updates_until.as_ns());
    }

    // Faults.
    for (i, fault) in scenario.faults.iter().enumerate() {
        validate_fault(&mut c, &format!("faults.{i}"), fault);
    }

    // Checks.
    for (i, name) in scenario.checks.iter().enumerate() {
        if checks::find(name).is_none() {
            let known: Vec<&str> = checks::CHECKS.iter().map(|check| check.name).collect();
            c.problem(format!("checks.{i}"), format!("unknown check {name:?}: expected one of {}", known.join(", ")));
        }
    }
    if scenario.checks.iter().any(|name| name == "availability") && scenario.check.min_availability.is_none() {
        c.problem("checks", "the \"availability\" check needs [check] min_availability = <fraction>");
    }
    let wants = |check: &str| scenario.checks.iter().any(|name| name == check);
    let check = &scenario.check;
    if wants("latency")
        && check.max_latency_p50.is_none()
        && check.max_latency_p99.is_none()
        && check.max_latency.is_none()
    {
        c.problem(
            "checks",
            "the \"latency\" check needs [check] max_latency_p50, max_latency_p99 or max_latency = <duration>",
        );
    }
    if wants("clock-sync") && check.max_clock_error.is_none() {
        c.problem("checks", "the \"clock-sync\" check needs [check] max_clock_error = <duration>");
    }
    if check.detection_event.as_ref().is_some_and(|event| event.trim().is_empty()) {
        c.problem("check.detection_event", "detection_event names a measurement event, e.g. \"dead\" or \"suspect\"");
    }
    if check.detect_within.is_some_and(|d| d.as_ns() == 0) {
        c.problem("check.detect_within", "detect_within must be above 0");
    }
    if check.deliver_within.is_some_and(|d| d.as_ns() == 0) {
        c.problem("check.deliver_within", "deliver_within must be above 0");
    }
    if let Some(from) = check.judge_from {
        c.time_in_run("check.judge_from", "judge_from", from.as_ns());
    }
    if let Some(min) = scenario.check.min_availability {
        c.probability("check.min_availability", "min_availability", min);
    }
    if let Some(from) = scenario.check.availability_from {
        c.time_in_run("check.availability_from", "availability_from", from.as_ns());
    }
    if let Some(until) = scenario.check.availability_until {
        c.time_in_run("check.availability_until", "availability_until", until.as_ns());
        if scenario.check.availability_from.is_some_and(|from| from >= until) {
            c.problem("check.availability_until", "availability_until must come after availability_from");
        }
    }
    if let Some(model) = &scenario.check.model {
        if let Err(message) = model.parse::<detsim_check::Model>() {
            c.problem("check.model", message);
        }
    }

    // Nemesis.
    if let Some(nemesis) = &scenario.nemesis {
        if nemesis.faults.is_empty() && scenario.swarm.as_ref().is_none_or(|s| s.faults.is_none()) {
            c.problem("nemesis.faults", "the nemesis needs at least one fault kind, e.g. [\"partition\", \"crash\"]");
        }
        if nemesis.interval.as_ns() == 0 {
            c.problem("nemesis.interval", "interval must be above 0");
        }
        if nemesis.fault_duration.as_ns() == 0 {
            c.problem("nemesis.fault_duration", "fault_duration must be above 0");
        }
        c.time_in_run("nemesis.start", "the nemesis start", nemesis.start.as_ns());
        if let Some(stop) = nemesis.stop {
            c.time_in_run("nemesis.stop", "the nemesis stop", stop.as_ns());
            if stop <= nemesis.start {
                c.problem("nemesis.stop", "stop must come after start");
            }
        }
        let targets = nemesis.targets.clone();
        c.fault_nodes("nemesis.targets", &targets);
        c.drift("nemesis.max_drift_ppm", nemesis.max_drift_ppm);
        c.probability("nemesis.loss", "loss", nemesis.loss);
    }

    // Swarm.
    if let Some(swarm) = &scenario.swarm {
        let ordered = |c: &mut Checker, path: &str, low: f64, high: f64| {
            if low > high {
                c.problem(path, format!("a range is [min, max] with min <= max, got [{low}, {high}]"));
            }
        };
        if let Some([low, high]) = swarm.nodes {
            ordered(&mut c, "swarm.nodes", low as f64, high as f64);
            if low == 0 {
                c.problem("swarm.nodes", "a cluster needs at least 1 node");
            }
            if high > MAX_SERVERS {
                c.problem("swarm.nodes", format!("at most {MAX_SERVERS} nodes"));
            }
        }
        if let Some([low, high]) = swarm.clients {
            ordered(&mut c, "swarm.clients", low as f64, high as f64);
            if high > MAX_CLIENTS {
                c.problem("swarm.clients", format!("at most {MAX_CLIENTS} clients"));
            }
        }
        if let Some([low, high]) = swarm.loss {
            ordered(&mut c, "swarm.loss", low, high);
            c.probability("swarm.loss", "loss", low);
            c.probability("swarm.loss", "loss", high);
        }
        if let Some([low, high]) = swarm.latency {
            ordered(&mut c, "swarm.latency", low.as_ns() as f64, high.as_ns() as f64);
        }
        if let Some([low, high]) = swarm.interval {
            ordered(&mut c, "swarm.interval", low.as_ns() as f64, high.as_ns() as f64);
            if low.as_ns() == 0 {
                c.problem("swarm.interval", "interval must be above 0");
            }
        }
        if swarm.faults.as_ref().is_some_and(Vec::is_empty) {
            c.problem("swarm.faults", "the fault mix needs at least one fault kind");
        }
    }
    Validation { problems: c.problems, unresolved_names: c.unresolved_names }
}

/// Problems with the names validation left unresolved, now that the simulation's node names are
/// known.
pub fn check_names(unresolved: &[(String, String)], node_names: &[String]) -> Vec<Problem> {
    unresolved
        .iter()
        .filter(|(_, name)| !node_names.contains(name))
        .map(|(path, name)| Problem {
            path: path.clone(),
            message: format!("no node named {name:?}: the simulation has {}", describe_names(node_names)),
        })
        .collect()
}

/// Keys a fault kind takes (beyond `at`, `kind`), as (key, required).
fn fault_keys(kind: FaultKind) -> &'static [(&'static str, bool)] {
    match kind {
        FaultKind::Partition => &[("groups", true), ("duration", false)],
        FaultKind::Isolate => &[("node", true), ("duration", false)],
        FaultKind::Bridge => &[("left", true), ("right", true), ("bridge", true), ("duration", false)],
        FaultKind::OneWay => &[("from", true), ("to", true), ("duration", false)],
        FaultKind::Heal => &[],
        FaultKind::Crash | FaultKind::Pause => &[("node", true), ("duration", false)],
        FaultKind::Restart | FaultKind::Resume => &[("node", true)],
        FaultKind::ClockJump => &[("node", true), ("by", true)],
        FaultKind::ClockOffset => &[("node", true), ("offset", true)],
        FaultKind::ClockDrift => &[("node", true), ("drift_ppm", true), ("duration", false)],
        FaultKind::LatencySpike => &[("extra", true), ("node", false), ("duration", false)],
        FaultKind::LatencySpikeEnd | FaultKind::LossBurstEnd => &[("node", false)],
        FaultKind::LossBurst => &[("loss", true), ("node", false), ("duration", false)],
        FaultKind::Corrupt => &[("probability", true), ("duration", false)],
        FaultKind::TopologyEdge => &[("a", true), ("b", true), ("up", true), ("duration", false)],
    }
}

/// The optional keys of a fault that are set.
fn keys_present(fault: &FaultSpec) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut note = |present: bool, key: &'static str| {
        if present {
            keys.push(key);
        }
    };
    note(fault.node.is_some(), "node");
    note(fault.groups.is_some(), "groups");
    note(fault.left.is_some(), "left");
    note(fault.right.is_some(), "right");
    note(fault.bridge.is_some(), "bridge");
    note(fault.from.is_some(), "from");
    note(fault.to.is_some(), "to");
    note(fault.by.is_some(), "by");
    note(fault.offset.is_some(), "offset");
    note(fault.drift_ppm.is_some(), "drift_ppm");
    note(fault.extra.is_some(), "extra");
    note(fault.loss.is_some(), "loss");
    note(fault.probability.is_some(), "probability");
    note(fault.a.is_some(), "a");
    note(fault.b.is_some(), "b");
    note(fault.up.is_some(), "up");
    note(fault.duration.is_some(), "duration");
    keys
}

fn validate_fault(c: &mut Checker<'_>, path: &str, fault: &FaultSpec) {
    let kind = fault.kind.as_str();
    c.time_in_run(&format!("{path}.at"), &format!("the {kind} fault"), fault.at.as_ns());
    let takes = fault_keys(fault.kind);
    let present = keys_present(fault);
    for key in &present {
        if !takes.iter().any(|(k, _)| k == key) {
            let allowed: Vec<&str> = takes.iter().map(|(k, _)| *k).collect();
            let allowed = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
            c.problem(
                format!("{path}.{key}"),
                format!("a {kind} fault does not take `{key}` (it takes: at, kind, {allowed})"),
            );
        }
    }
    for (key, required) in takes {
        if *required && !present.contains(key) {
            c.problem(path, format!("a {kind} fault needs `{key}`"));
        }
    }
    if let Some(node) = &fault.node {
        c.fault_node(&format!("{path}.node"), node);
    }
    if let Some(bridge) = &fault.bridge {
        c.fault_node(&format!("{path}.bridge"), bridge);
    }
    for (key, list) in [("left", &fault.left), ("right", &fault.right), ("from", &fault.from), ("to", &fault.to)] {
        if let Some(list) = list {
            c.fault_nodes(&format!("{path}.{key}"), list);
            if list.is_empty() {
                c.problem(format!("{path}.{key}"), format!("`{key}` must name at least one node"));
            }
        }
    }
    if let Some(groups) = &fault.groups {
        if groups.len() < 2 {
            c.problem(
                format!("{path}.groups"),
                "a partition needs at least 2 groups, e.g. [[\"n1\"], [\"n2\", \"n3\"]]",
            );
        }
        if groups.len() > 64 {
            c.problem(format!("{path}.groups"), "at most 64 partition groups");
        }
        for (g, group) in groups.iter().enumerate() {
            c.fault_nodes(&format!("{path}.groups.{g}"), group);
        }
    }
    if let Some(drift) = fault.drift_ppm {
        c.drift(&format!("{path}.drift_ppm"), drift);
    }
    if let Some(loss) = fault.loss {
        c.probability(&format!("{path}.loss"), "loss", loss);
    }
    if let Some(probability) = fault.probability {
        c.probability(&format!("{path}.probability"), "probability", probability);
    }
    if fault.duration.is_some_and(|d| d.as_ns() == 0) {
        c.problem(format!("{path}.duration"), "duration must be above 0");
    }
    if fault.kind == FaultKind::TopologyEdge {
        if c.topology_vertices.is_empty() {
            c.problem(path, "a topology-edge fault needs [[network.topology]] edges");
        }
        for (key, vertex) in [("a", &fault.a), ("b", &fault.b)] {
            if let Some(vertex) = vertex {
                if !c.topology_vertices.contains(&vertex.as_str()) {
                    c.problem(format!("{path}.{key}"), format!("no topology vertex named {vertex:?}"));
                }
            }
        }
        if fault.up == Some(true) && fault.duration.is_some() {
            c.problem(format!("{path}.duration"), "only a cut (up = false) can have a duration");
        }
    }
}
