//! The network model: latency distributions, per-link behaviour (loss, duplication, FIFO or reordering,
//! bandwidth), partitions and one-way cuts, network fault overlays, and an optional multi-hop topology.
//!
//! # Messages in flight when a partition starts
//! A message is checked against the partition when it is sent *and*, by default, again when it would
//! be delivered: it arrives only if its link is up at both moments. So a partition also loses the
//! messages already on the wire (as a firewall rule dropping packets would), and a heal does not bring
//! back what was sent while the link was cut. Set [`NetworkConfig::partition_drops_in_flight`] to
//! `false` to let messages that were already sent arrive (a cut that only stops new sends).

use crate::node::NodeId;
use crate::rng::LinkRng;
use petgraph::graph::{NodeIndex, UnGraph};
use rand::RngExt;
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How long a message takes on a link (before bandwidth delay), in nanoseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "kebab-case")]
pub enum LatencyDist {
    Constant {
        ns: u64,
    },
    Uniform {
        min_ns: u64,
        max_ns: u64,
    },
    /// Normal, truncated at zero.
    Normal {
        mean_ns: f64,
        std_dev_ns: f64,
    },
    Exponential {
        mean_ns: f64,
    },
    /// Log-normal with the given median and shape (sigma of the underlying normal).
    LogNormal {
        median_ns: f64,
        sigma: f64,
    },
    /// Pareto with minimum `scale_ns` and tail index `shape` (heavy tail for small shapes).
    Pareto {
        scale_ns: f64,
        shape: f64,
    },
}

/// A sampler built once from a validated [`LatencyDist`].
#[derive(Clone, Debug)]
enum LatencySampler {
    Constant(u64),
    Uniform(u64, u64),
    Normal(Normal<f64>),
    Exponential(Exp<f64>),
    LogNormal(LogNormal<f64>),
    Pareto(Pareto<f64>),
}

impl LatencyDist {
    pub fn constant_ms(ms: u64) -> Self {
        LatencyDist::Constant { ns: ms * 1_000_000 }
    }
    pub fn uniform_ms(min_ms: u64, max_ms: u64) -> Self {
        LatencyDist::Uniform { min_ns: min_ms * 1_000_000, max_ns: max_ms * 1_000_000 }
    }

    /// Checks the parameters; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.sampler().map(|_| ())
    }

    fn sampler(&self) -> Result<LatencySampler, String> {
        let finite_non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a finite, non-negative number, got {v}"))
            }
        };
        Ok(match *self {
            LatencyDist::Constant { ns } => LatencySampler::Constant(ns),
            LatencyDist::Uniform { min_ns, max_ns } => {
                if min_ns > max_ns {
                    return Err(format!("uniform latency: min {min_ns}ns is above max {max_ns}ns"));
                }
                LatencySampler::Uniform(min_ns, max_ns)
            }
            LatencyDist::Normal { mean_ns, std_dev_ns } => {
                finite_non_negative("normal mean", mean_ns)?;
                finite_non_negative("normal std_dev", std_dev_ns)?;
                LatencySampler::Normal(Normal::new(mean_ns, std_dev_ns).map_err(|e| e.to_string())?)
            }
            LatencyDist::Exponential { mean_ns } => {
                if !(mean_ns.is_finite() && mean_ns > 0.0) {
                    return Err(format!("exponential mean must be positive, got {mean_ns}"));
                }
                LatencySampler::Exponential(Exp::new(1.0 / mean_ns).map_err(|e| e.to_string())?)
            }
            LatencyDist::LogNormal { median_ns, sigma } => {
                if !(median_ns.is_finite() && median_ns > 0.0) {
                    return Err(format!("log-normal median must be positive, got {median_ns}"));
                }
                finite_non_negative("log-normal sigma", sigma)?;
                LatencySampler::LogNormal(LogNormal::new(median_ns.ln(), sigma).map_err(|e| e.to_string())?)
            }
            LatencyDist::Pareto { scale_ns, shape } => {
                if !(scale_ns.is_finite() && scale_ns > 0.0 && shape.is_finite() && shape > 0.0) {
                    return Err(format!("pareto scale and shape must be positive, got {scale_ns} and {shape}"));
                }
                LatencySampler::Pareto(Pareto::new(scale_ns, shape).map_err(|e| e.to_string())?)
            }
        })
    }
}

impl LatencySampler {
    fn sample(&self, rng: &mut LinkRng) -> u64 {
        // Float draws are clamped to [0, 1 hour] so one wild Pareto draw cannot overflow time.
        const CAP_NS: f64 = 3_600e9;
        let clamp = |v: f64| if v.is_finite() { v.clamp(0.0, CAP_NS) as u64 } else { CAP_NS as u64 };
        match self {
            LatencySampler::Constant(ns) => *ns,
            LatencySampler::Uniform(min, max) => {
                if min == max {
                    *min
                } else {
                    rng.random_range(*min..=*max)
                }
            }
            LatencySampler::Normal(d) => clamp(d.sample(rng)),
            LatencySampler::Exponential(d) => clamp(d.sample(rng)),
            LatencySampler::LogNormal(d) => clamp(d.sample(rng)),
            LatencySampler::Pareto(d) => clamp(d.sample(rng)),
        }
    }
}

/// How one directed link behaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkConfig {
    pub latency: LatencyDist,
    /// Probability that a message is lost, in [0, 1].
    pub loss: f64,
    /// Probability that a message is delivered twice, in [0, 1].
    pub duplicate: f64,
    /// FIFO links never reorder; other links deliver each message after its own latency draw.
    pub fifo: bool,
    /// Bytes per second; a message of `size` bytes takes `size / bandwidth` longer. `None`: unlimited.
    pub bandwidth_bytes_per_s: Option<u64>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: LatencyDist::uniform_ms(1, 10),
            loss: 0.0,
            duplicate: 0.0,
            fifo: false,
            bandwidth_bytes_per_s: None,
        }
    }
}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.latency.validate()?;
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} must be a probability in [0, 1], got {p}"));
            }
        }
        if self.bandwidth_bytes_per_s == Some(0) {
            return Err("bandwidth must be positive".into());
        }
        Ok(())
    }
}

/// The network of a simulation: a default link, per-link overrides and an optional topology.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub default_link: LinkConfig,
    /// Directed overrides, keyed by (from, to) node index.
    #[serde(default)]
    pub links: BTreeMap<(u32, u32), LinkConfig>,
    /// See the module documentation. Default `true`.
    #[serde(default = "default_true")]
    pub partition_drops_in_flight: bool,
    #[serde(skip)]
    pub topology: Option<Topology>,
}

fn default_true() -> bool {
    true
}

impl Default for NetworkConfig {
    /// The default link, and partitions that drop what is in flight (as `new` and serde do).
    fn default() -> Self {
        NetworkConfig::new(LinkConfig::default())
    }
}

impl NetworkConfig {
    pub fn new(default_link: LinkConfig) -> Self {
        NetworkConfig { default_link, links: BTreeMap::new(), partition_drops_in_flight: true, topology: None }
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// The link was cut by a partition when the message was sent.
    Partition,
    /// The link was cut while the message was in flight.
    PartitionInFlight,
    /// No route in the topology.
    Unreachable,
    /// Random loss on the link.
    Loss,
    /// Corrupted on the wire and rejected by the receiver's checksum.
    Corrupt,
    /// The receiver was crashed when the message arrived (or crashed while it waited, paused).
    NodeDown,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Partition => "partition",
            DropReason::PartitionInFlight => "partition-in-flight",
            DropReason::Unreachable => "unreachable",
            DropReason::Loss => "loss",
            DropReason::Corrupt => "corrupt",
            DropReason::NodeDown => "node-down",
        }
    }
}

/// A multi-hop topology: simulation nodes and routers joined by edges with their own latency. A
/// message's latency is the sum of the draws along its route (fewest hops); when cut edges leave no
/// route, messages are dropped as unreachable.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    graph: UnGraph<String, TopologyEdge>,
    /// Graph vertex of each simulation node, by node index.
    node_vertex: Vec<Option<NodeIndex>>,
    by_name: BTreeMap<String, NodeIndex>,
}

#[derive(Clone, Debug)]
struct TopologyEdge {
    latency: LatencySampler,
    up: bool,
}

impl Topology {
    pub fn new() -> Self {
        Topology::default()
    }

    /// Adds (or finds) the vertex of simulation node `node`, named `name`.
    pub fn add_node(&mut self, node: NodeId, name: &str) -> NodeIndex {
        let vertex = self.vertex(name);
        let index = node.index();
        if self.node_vertex.len() <= index {
            self.node_vertex.resize(index + 1, None);
        }
        self.node_vertex[index] = Some(vertex);
        vertex
    }

    /// Adds (or finds) a router: a vertex that forwards but runs no node.
    pub fn vertex(&mut self, name: &str) -> NodeIndex {
        if let Some(v) = self.by_name.get(name) {
            return *v;
        }
        let v = self.graph.add_node(name.to_string());
        self.by_name.insert(name.to_string(), v);
        v
    }

    pub fn connect(&mut self, a: &str, b: &str, latency: LatencyDist) -> Result<(), String> {
        let latency = latency.sampler()?;
        let (va, vb) = (self.vertex(a), self.vertex(b));
        self.graph.add_edge(va, vb, TopologyEdge { latency, up: true });
        Ok(())
    }

    /// Cuts or restores every edge between the named vertices. Returns false when there is none.
    pub fn set_edge_up(&mut self, a: &str, b: &str, up: bool) -> bool {
        let (Some(&va), Some(&vb)) = (self.by_name.get(a), self.by_name.get(b)) else {
            return false;
        };
        let edges: Vec<_> = self.graph.edges_connecting(va, vb).map(|e| petgraph::visit::EdgeRef::id(&e)).collect();
        for e in &edges {
            self.graph[*e].up = up;
        }
        !edges.is_empty()
    }

    pub fn has_vertex(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The edges of the fewest-hop route over edges that are up (breadth-first, neighbours in
    /// insertion order, so the route is deterministic), or `None` when unreachable.
    pub(crate) fn route(&self, from: NodeId, to: NodeId) -> Option<Vec<petgraph::graph::EdgeIndex>> {
        let start = (*self.node_vertex.get(from.index())?)?;
        let goal = (*self.node_vertex.get(to.index())?)?;
        if start == goal {
            return Some(Vec::new());
        }
        let mut came_by: BTreeMap<NodeIndex, (NodeIndex, petgraph::graph::EdgeIndex)> = BTreeMap::new();
        let mut seen = BTreeSet::from([start]);
        let mut frontier = VecDeque::from([start]);
        while let Some(v) = frontier.pop_front() {
            let mut edges: Vec<_> = self.graph.edges(v).collect();
            edges.sort_by_key(petgraph::visit::EdgeRef::id);
            for e in edges {
                use petgraph::visit::EdgeRef;
                if !e.weight().up {
                    continue;
                }
                let next = if e.source() == v { e.target() } else { e.source() };
                if seen.insert(next) {
                    came_by.insert(next, (v, e.id()));
                    if next == goal {
                        let mut path = Vec::new();
                        let mut at = goal;
                        while at != start {
                            let (prev, edge) = came_by[&at];
                            path.push(edge);
                            at = prev;
                        }
                        path.reverse();
                        return Some(path);
                    }
                    frontier.push_back(next);
                }
            }
        }
        None
    }
}

/// Partition state: groups (a pair may talk iff some group holds both; nodes in no group are not
/// affected) and directed one-way cuts.
#[derive(Clone, Debug, Default)]
pub(crate) struct PartitionState {
    /// Bit i set: the node is in group i. Zero: in no group.
    group_mask: Vec<u64>,
    one_way: BTreeSet<(u32, u32)>,
    any_cut: bool,
}

impl PartitionState {
    pub(crate) fn blocked(&self, from: NodeId, to: NodeId) -> bool {
        if !self.any_cut {
            return false;
        }
        let (f, t) = (from.index(), to.index());
        let mf = self.group_mask.get(f).copied().unwrap_or(0);
        let mt = self.group_mask.get(t).copied().unwrap_or(0);
        if mf != 0 && mt != 0 && mf & mt == 0 {
            return true;
        }
        self.one_way.contains(&(from.0, to.0))
    }

    /// Replaces the group partition (one-way cuts stay).
    pub(crate) fn set_groups(&mut self, node_count: usize, groups: &[Vec<NodeId>]) {
        assert!(groups.len() <= 64, "at most 64 partition groups");
        self.group_mask = vec![0; node_count];
        for (i, group) in groups.iter().enumerate() {
            for node in group {
                self.group_mask[node.index()] |= 1 << i;
            }
        }
        self.any_cut = true;
    }

    pub(crate) fn cut_one_way(&mut self, from: &[NodeId], to: &[NodeId]) {
        for f in from {
            for t in to {
                if f != t {
                    self.one_way.insert((f.0, t.0));
                }
            }
        }
        self.any_cut = true;
    }

    pub(crate) fn heal(&mut self) {
        self.group_mask.clear();
        self.one_way.clear();
        self.any_cut = false;
    }
}

/// Validated, ready-to-sample link behaviour.
pub(crate) struct CompiledLink {
    latency: LatencySampler,
    pub(crate) loss: f64,
    pub(crate) duplicate: f64,
    pub(crate) fifo: bool,
    pub(crate) bandwidth_bytes_per_s: Option<u64>,
}

impl CompiledLink {
    pub(crate) fn compile(config: &LinkConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(CompiledLink {
            latency: config.latency.sampler()?,
            loss: config.loss,
            duplicate: config.duplicate,
            fifo: config.fifo,
            bandwidth_bytes_per_s: config.bandwidth_bytes_per_s,
        })
    }

    pub(crate) fn sample_latency(&self, rng: &mut LinkRng) -> u64 {
        self.latency.sample(rng)
    }

    pub(crate) fn transmission_ns(&self, size_bytes: usize) -> u64 {
        match self.bandwidth_bytes_per_s {
            None => 0,
            Some(bw) => ((size_bytes as u128 * 1_000_000_000u128) / bw as u128) as u64,
        }
    }
}

/// Network overlays set by faults: latency spikes, loss bursts, corruption.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlays {
    pub(crate) extra_latency_all_ns: u64,
    pub(crate) extra_latency_node_ns: BTreeMap<u32, u64>,
    pub(crate) loss_all: Option<f64>,
    pub(crate) loss_node: BTreeMap<u32, f64>,
    pub(crate) corrupt_probability: f64,
}

impl Overlays {
    pub(crate) fn is_empty(&self) -> bool {
        self.extra_latency_all_ns == 0
            && self.extra_latency_node_ns.is_empty()
            && self.loss_all.is_none()
            && self.loss_node.is_empty()
            && self.corrupt_probability == 0.0
    }

    pub(crate) fn extra_latency_ns(&self, from: NodeId, to: NodeId) -> u64 {
        let f = self.extra_latency_node_ns.get(&from.0).copied().unwrap_or(0);
        let t = self.extra_latency_node_ns.get(&to.0).copied().unwrap_or(0);
        self.extra_latency_all_ns.max(f).max(t)
    }

    pub(crate) fn loss(&self, base: f64, from: NodeId, to: NodeId) -> f64 {
        let mut loss = base;
        if let Some(l) = self.loss_all {
            loss = loss.max(l);
        }
        for node in [from, to] {
            if let Some(l) = self.loss_node.get(&node.0) {
                loss = loss.max(*l);
            }
        }
        loss
    }
}

/// The compiled network of a running simulation.
pub(crate) struct Network {
    pub(crate) default_link: CompiledLink,
    pub(crate) link_overrides: BTreeMap<(u32, u32), CompiledLink>,
    pub(crate) partition: PartitionState,
    pub(crate) overlays: Overlays,
    pub(crate) topology: Option<Topology>,
    /// Routes already computed, by (from, to); cleared whenever the topology changes.
    route_cache: rustc_hash::FxHashMap<(u32, u32), Option<Vec<petgraph::graph::EdgeIndex>>>,
    pub(crate) drops_in_flight: bool,
}

impl Network {
    pub(crate) fn new(config: &NetworkConfig) -> Result<Self, String> {
        let mut link_overrides = BTreeMap::new();
        for (&(from, to), link) in &config.links {
            link_overrides
                .insert((from, to), CompiledLink::compile(link).map_err(|e| format!("link {from}->{to}: {e}"))?);
        }
        Ok(Network {
            default_link: CompiledLink::compile(&config.default_link)?,
            link_overrides,
            partition: PartitionState::default(),
            overlays: Overlays::default(),
            topology: config.topology.clone(),
            route_cache: Default::default(),
            drops_in_flight: config.partition_drops_in_flight,
        })
    }

    pub(crate) fn link_config(&self, from: NodeId, to: NodeId) -> &CompiledLink {
        if self.link_overrides.is_empty() {
            return &self.default_link;
        }
        self.link_overrides.get(&(from.0, to.0)).unwrap_or(&self.default_link)
    }

    /// Sum of one latency draw per edge on the route, or `None` when unreachable. Without a
    /// topology: `Some(0)` (the link's own latency is drawn by the caller).
    pub(crate) fn topology_latency(&mut self, from: NodeId, to: NodeId, rng: &mut LinkRng) -> Option<u64> {
        let Some(topology) = &self.topology else {
            return Some(0);
        };
        let route = self.route_cache.entry((from.0, to.0)).or_insert_with(|| topology.route(from, to)).as_ref()?;
        let mut total: u64 = 0;
        for edge in route {
            total = total.saturating_add(topology.graph[*edge].latency.sample(rng));
        }
        Some(total)
    }

    /// The topology, for a fault to change; forgets every cached route.
    pub(crate) fn topology_mut(&mut self) -> Option<&mut Topology> {
        self.route_cache.clear();
        self.topology.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{link_key, message_stream};

    fn samples(dist: LatencyDist, n: usize) -> Vec<u64> {
        let sampler = dist.sampler().expect("valid distribution");
        let mut rng = message_stream(link_key(1), 0, 1, 0);
        (0..n).map(|_| sampler.sample(&mut rng)).collect()
    }

    fn mean(values: &[u64]) -> f64 {
        values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64
    }

    #[test]
    fn default_new_and_serde_agree_that_partitions_drop_in_flight_messages() {
        let from_json: NetworkConfig =
            serde_json::from_value(serde_json::json!({ "default_link": LinkConfig::default() })).expect("valid");
        for config in [NetworkConfig::default(), NetworkConfig::new(LinkConfig::default()), from_json] {
            assert!(config.partition_drops_in_flight, "the documented default");
        }
    }

    #[test]
    fn every_distribution_has_roughly_its_mean() {
        let n = 20_000;
        let uniform = samples(LatencyDist::uniform_ms(1, 10), n);
        assert!(uniform.iter().all(|v| (1_000_000..=10_000_000).contains(v)));
        assert!((mean(&uniform) - 5.5e6).abs() < 0.1e6);
        let normal = samples(LatencyDist::Normal { mean_ns: 5e6, std_dev_ns: 1e6 }, n);
        assert!((mean(&normal) - 5e6).abs() < 0.05e6);
        let exp = samples(LatencyDist::Exponential { mean_ns: 2e6 }, n);
        assert!((mean(&exp) - 2e6).abs() < 0.1e6);
        let mut lognormal = samples(LatencyDist::LogNormal { median_ns: 3e6, sigma: 0.5 }, n);
        lognormal.sort_unstable();
        let median = lognormal[n / 2] as f64;
        assert!((median - 3e6).abs() < 0.1e6, "median {median}");
        let pareto = samples(LatencyDist::Pareto { scale_ns: 1e6, shape: 3.0 }, n);
        assert!(pareto.iter().all(|v| *v >= 1_000_000));
        assert!((mean(&pareto) - 1.5e6).abs() < 0.1e6, "mean {}", mean(&pareto));
        assert!(samples(LatencyDist::constant_ms(4), 10).iter().all(|v| *v == 4_000_000));
    }

    #[test]
    fn impossible_parameters_are_rejected_with_a_message() {
        assert!(LatencyDist::uniform_ms(10, 1).validate().unwrap_err().contains("above max"));
        assert!(LatencyDist::Exponential { mean_ns: 0.0 }.validate().is_err());
        assert!(LatencyDist::Pareto { scale_ns: 1.0, shape: -1.0 }.validate().is_err());
        let link = LinkConfig { loss: 1.5, ..LinkConfig::default() };
        assert!(link.validate().unwrap_err().contains("loss"));
    }

    #[test]
    fn partition_groups_bridge_and_one_way_cuts() {
        let n = |i| NodeId(i);
        let mut p = PartitionState::default();
        assert!(!p.blocked(n(0), n(1)));
        // Bridge: {0,1,2} and {2,3,4}; node 2 talks to both sides; node 5 is in no group.
        p.set_groups(6, &[vec![n(0), n(1), n(2)], vec![n(2), n(3), n(4)]]);
        assert!(!p.blocked(n(0), n(2)));
        assert!(!p.blocked(n(2), n(4)));
        assert!(p.blocked(n(0), n(4)));
        assert!(p.blocked(n(4), n(1)));
        assert!(!p.blocked(n(5), n(0)));
        p.heal();
        p.cut_one_way(&[n(0)], &[n(1)]);
        assert!(p.blocked(n(0), n(1)));
        assert!(!p.blocked(n(1), n(0)));
        p.heal();
        assert!(!p.blocked(n(0), n(1)));
    }

    #[test]
    fn topology_routes_by_fewest_hops_and_cuts_make_unreachable() {
        let mut t = Topology::new();
        t.add_node(NodeId(0), "a");
        t.add_node(NodeId(1), "b");
        t.connect("a", "r1", LatencyDist::constant_ms(1)).unwrap();
        t.connect("r1", "b", LatencyDist::constant_ms(2)).unwrap();
        t.connect("a", "r2", LatencyDist::constant_ms(10)).unwrap();
        t.connect("r2", "r3", LatencyDist::constant_ms(10)).unwrap();
        t.connect("r3", "b", LatencyDist::constant_ms(10)).unwrap();
        let net = |t: &Topology| {
            let config = NetworkConfig { topology: Some(t.clone()), ..NetworkConfig::default() };
            Network::new(&config).unwrap()
        };
        let mut rng = message_stream(link_key(1), 0, 1, 0);
        assert_eq!(net(&t).topology_latency(NodeId(0), NodeId(1), &mut rng), Some(3_000_000));
        assert!(t.set_edge_up("r1", "b", false));
        assert_eq!(net(&t).topology_latency(NodeId(0), NodeId(1), &mut rng), Some(30_000_000));
        assert!(t.set_edge_up("a", "r2", false));
        assert_eq!(net(&t).topology_latency(NodeId(0), NodeId(1), &mut rng), None);
    }
}
