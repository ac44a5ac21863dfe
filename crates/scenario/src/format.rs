//! The scenario file format: plain serde types read from TOML (unknown keys rejected), with doc
//! comments that become the JSON Schema's descriptions. Everything but `[cluster] protocol` and
//! `duration` has a default.

use crate::units::{ByteSize, Duration, SignedDuration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One scenario: a cluster, its network and clocks, a client workload, faults, the checks to run on
/// the history, and the outcome the author expects (so that a scenario is also a test).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "detsim scenario")]
pub struct Scenario {
    /// Short name (defaults to the file name without `.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the scenario shows: a small lesson, in markdown-ish text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The seed `detsim run` uses unless `--seed` is given.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How long the run lasts in simulated time, e.g. "30s".
    pub duration: Duration,
    /// The outcome the author expects: "pass" (every check valid) or "violation" (some check invalid).
    #[serde(default)]
    pub expect: Expect,
    /// Checks to run on the client history: "linearizable", "sequential", "availability", ...
    /// (`detsim list` shows them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Options of the checks.
    #[serde(default, skip_serializing_if = "CheckOptions::is_default")]
    pub check: CheckOptions,
    pub cluster: Cluster,
    #[serde(default, skip_serializing_if = "Network::is_default")]
    pub network: Network,
    #[serde(default, skip_serializing_if = "Clocks::is_default")]
    pub clocks: Clocks,
    #[serde(default)]
    pub workload: Workload,
    /// Scripted faults on the timeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
    /// A random nemesis: faults drawn from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nemesis: Option<Nemesis>,
    /// Swarm mode: knobs drawn from the seed within ranges (printed and recorded in run.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<Swarm>,
}

fn default_seed() -> u64 {
    1
}

impl Scenario {
    /// The scenario as TOML text that reads back to the same scenario (defaults left out).
    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| format!("cannot write the scenario as TOML: {e}"))
    }
}

/// The outcome a scenario expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Every check is valid.
    #[default]
    Pass,
    /// Some check finds a violation (the scenario demonstrates a bug or a trade-off).
    Violation,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Pass => "pass",
            Expect::Violation => "violation",
        }
    }
}

/// Options of the checks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckOptions {
    /// The model for linearizable/sequential checks (default: from the workload kind — register:
    /// "cas-register", key-value: "kv", counter: "counter", set: "set").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Give up with verdict "unknown" after this much wall time per check (default "20s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget: Option<Duration>,
    /// The "availability" check passes when at least this fraction of operations succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_availability: Option<f64>,
    /// Count only operations invoked at or after this time for the "availability" check (e.g. the
    /// start of a partition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_from: Option<Duration>,
    /// Count only operations invoked before this time for the "availability" check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_until: Option<Duration>,
    /// Count only operations with these names (`f` in the history, e.g. ["read", "write"]) for the
    /// "availability" check; default: every operation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability_ops: Vec<String>,
    /// Average the availability of each client (the node that recorded the operations) instead of
    /// counting every operation together: a client cut off from the service counts as much as a
    /// busy one that is served quickly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub availability_per_client: bool,
    /// Porcupine's stricter reading of a failed cas (see detsim check --strict-cas).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict_cas: bool,
    /// The value of every register (or key) before the run, for the "linearizable" and
    /// "sequential" checks, when the protocol's objects do not start empty (e.g. 0 for the
    /// lease-lock's fenced register). Default: nil (a kv key: "").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub initial: Option<detsim_core::history::Value>,
    /// Grace period after a disturbance before a check judges: for "eventual", how long after the
    /// last fault window closes reads start to count as final; for "lookups", how long after a
    /// crash or restart lookups are judged again; for "clock-sync", how long after a clock fault
    /// readings of that node are judged again (default "0s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Duration>,
    /// "lookups" and "clock-sync" judge only what happens at or after this time (the protocol's
    /// warm-up: joins, first synchronisation rounds). Default: from the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_from: Option<Duration>,
    /// The "stale-reads" check passes with at most this many stale reads (default 0, or no limit
    /// when `max_staleness` is given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stale_reads: Option<u64>,
    /// The "stale-reads" check passes when no read is staler than this (e.g. a cache's TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness: Option<Duration>,
    /// The "latency" check: the median latency of successful operations is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_p50: Option<Duration>,
    /// The "latency" check: the 99th percentile latency of successful operations is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_p99: Option<Duration>,
    /// The "latency" check: no successful operation took longer than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Duration>,
    /// The "unknown-outcomes" check passes with at most this many operations whose outcome is
    /// unknown (timed out, crashed mid-operation; those the end of the run cut short do not count)
    /// (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unknown_outcomes: Option<u64>,
    /// "broadcast-delivery": every server must deliver each broadcast within this long of it
    /// (default: by the end of the run). Broadcasts later than `duration - deliver_within` are not
    /// judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_within: Option<Duration>,
    /// "failure-detection": the measurement event that declares a node failed (default "dead";
    /// heartbeat and phi-accrual detectors record "suspect").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_event: Option<String>,
    /// "failure-detection": every live server must declare a crashed (or paused) node failed
    /// within this long of the crash. Also the grace after a restart during which declaring the
    /// node failed still counts as true. Default: completeness is not judged, only accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detect_within: Option<Duration>,
    /// "failure-detection": at most this many declarations of a node that was up (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_false_detections: Option<u64>,
    /// "clock-sync": the largest error (corrected clock minus true time, either way) allowed of any
    /// synchronised clock reading that is judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clock_error: Option<Duration>,
}

impl CheckOptions {
    fn is_default(&self) -> bool {
        *self == CheckOptions::default()
    }
}

/// The cluster: which protocol, how many server nodes, and the protocol's own parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// A protocol from `detsim list` ("raft", "primary-backup", ...).
    pub protocol: String,
    /// Server nodes, named n1..nN (default 3).
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// The protocol's own parameters (each protocol documents its keys and rejects unknown ones).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
}

fn default_nodes() -> usize {
    3
}

/// The network: default link behaviour, per-link overrides, and an optional multi-hop topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Latency of every link (default: uniform from 1ms to 10ms).
    #[serde(default = "default_latency")]
    pub latency: Latency,
    /// Probability that a message is lost, in [0, 1].
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message is delivered twice, in [0, 1].
    #[serde(default)]
    pub duplicate: f64,
    /// FIFO links never reorder messages.
    #[serde(default)]
    pub fifo: bool,
    /// Bytes per second per link ("1MiB"): a message takes size / bandwidth longer. Default: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<ByteSize>,
    /// Whether a partition also drops messages already in flight (default true).
    #[serde(default = "default_true")]
    pub partition_drops_in_flight: bool,
    /// Per-link overrides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkOverride>,
    /// Edges of a multi-hop topology (nodes and routers). When present, a message's latency is the
    /// link's own latency plus one draw per edge along the fewest-hop route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology: Vec<TopologyEdge>,
}

fn default_true() -> bool {
    true
}

fn default_latency() -> Latency {
    Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(10) }
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: default_latency(),
            loss: 0.0,
            duplicate: 0.0,
            fifo: false,
            bandwidth: None,
            partition_drops_in_flight: true,
            links: Vec::new(),
            topology: Vec::new(),
        }
    }
}

impl Network {
    fn is_default(&self) -> bool {
        *self == Network::default()
    }
}

/// A latency distribution, e.g. `{ dist = "uniform", min = "1ms", max = "10ms" }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "dist", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same: `{ dist = "constant", value = "5ms" }`.
    Constant { value: Duration },
    /// Uniform between min and max.
    Uniform { min: Duration, max: Duration },
    /// Normal, truncated at zero.
    Normal { mean: Duration, std_dev: Duration },
    /// Exponential with the given mean.
    Exponential { mean: Duration },
    /// Log-normal with the given median and shape sigma (heavier tail as sigma grows).
    LogNormal { median: Duration, sigma: f64 },
    /// Pareto with minimum `scale` and tail index `shape` (heavy tail for shapes near 1).
    Pareto { scale: Duration, shape: f64 },
}

/// Overrides for the links between two nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// Sending node ("n1").
    pub from: String,
    /// Receiving node ("n2").
    pub to: String,
    /// Also override the reverse direction (default true).
    #[serde(default = "default_true")]
    pub both_ways: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<ByteSize>,
}

/// One edge of the topology graph between two vertices (node names or router names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyEdge {
    pub a: String,
    pub b: String,
    /// Latency of this hop (default: constant 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
}

/// Node clocks: random skew and drift within bounds, and per-node settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Clocks {
    /// Each node's clock starts off true time by an offset drawn uniformly from [-skew, skew].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<Duration>,
    /// Each node's clock runs fast or slow by a rate drawn uniformly from [-drift_ppm, drift_ppm].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<f64>,
    /// Per-node clocks by node name; they replace the random draws for that node.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeClock>,
}

impl Clocks {
    pub(crate) fn is_default(&self) -> bool {
        *self == Clocks::default()
    }
}

/// One node's clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeClock {
    /// Offset from true time at the start ("-20ms").
    #[serde(default)]
    pub offset: SignedDuration,
    /// Rate error in parts per million (positive: fast).
    #[serde(default)]
    pub drift_ppm: f64,
}

/// The kind of client workload (see detsim list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// read / write / cas on one register per key.
    Register,
    /// get / put / append over `keys` keys.
    #[serde(alias = "kv")]
    KeyValue,
    /// increments and reads of a counter.
    Counter,
    /// adds and reads of a set.
    Set,
    /// list-append transactions.
    ListAppend,
    /// read-write register transactions.
    RwRegister,
    /// no client operations (gossip, clocks, failure detectors...).
    None,
}

impl WorkloadKind {
    pub fn to_protocol(self) -> detsim_protocols::WorkloadKind {
        use detsim_protocols::WorkloadKind as P;
        match self {
            WorkloadKind::Register => P::Register,
            WorkloadKind::KeyValue => P::KeyValue,
            WorkloadKind::Counter => P::Counter,
            WorkloadKind::Set => P::Set,
            WorkloadKind::ListAppend => P::ListAppend,
            WorkloadKind::RwRegister => P::RwRegister,
            WorkloadKind::None => P::None,
        }
    }

    pub fn from_protocol(kind: detsim_protocols::WorkloadKind) -> Self {
        use detsim_protocols::WorkloadKind as P;
        match kind {
            P::Register => WorkloadKind::Register,
            P::KeyValue => WorkloadKind::KeyValue,
            P::Counter => WorkloadKind::Counter,
            P::Set => WorkloadKind::Set,
            P::ListAppend => WorkloadKind::ListAppend,
            P::RwRegister => WorkloadKind::RwRegister,
            P::None => WorkloadKind::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::KeyValue => "key-value",
            WorkloadKind::Counter => "counter",
            WorkloadKind::Set => "set",
            WorkloadKind::ListAppend => "list-append",
            WorkloadKind::RwRegister => "rw-register",
            WorkloadKind::None => "none",
        }
    }

    pub const ALL: [WorkloadKind; 7] = [
        WorkloadKind::Register,
        WorkloadKind::KeyValue,
        WorkloadKind::Counter,
        WorkloadKind::Set,
        WorkloadKind::ListAppend,
        WorkloadKind::RwRegister,
        WorkloadKind::None,
    ];

    pub fn description(self) -> &'static str {
        match self {
            WorkloadKind::Register => "read / write / cas on one register per key",
            WorkloadKind::KeyValue => "get / put / append over `keys` keys",
            WorkloadKind::Counter => "increments and reads of a counter",
            WorkloadKind::Set => "adds and reads of a set",
            WorkloadKind::ListAppend => "list-append transactions (Elle)",
            WorkloadKind::RwRegister => "read-write register transactions (Elle)",
            WorkloadKind::None => "no client operations (gossip, clocks, failure detectors)",
        }
    }
}

/// The client workload. Clients are nodes c1..cM, so partitions reach them too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Default: the protocol's first workload kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<WorkloadKind>,
    /// Client nodes c1..cM (default 3, or 0 for kind "none").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    /// Closed loop: outstanding operations per client (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Open loop: operations per second per client (default: closed loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Distinct keys (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<usize>,
    /// After this long without a reply an operation's outcome is unknown (default "1s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Pause between an operation's completion and the next one (default "10ms").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<Duration>,
    /// Stop after this many operations per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ops_per_client: Option<u64>,
    /// Stop issuing operations at this time, so the run can drain (default: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_at: Option<Duration>,
    /// Fraction of reads among operations, in [0, 1] (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_fraction: Option<f64>,
    /// From this time on clients only read, so the run ends with reads of a quiet system (what
    /// the "eventual" check judges). Honoured by the replicated protocols' shared client (raft,
    /// multi-paxos, primary-backup, dynamo, crdt-*, two-phase-commit); default: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updates_until: Option<Duration>,
}

/// Every kind of scripted fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Symmetric partition: `groups = [["n1","n2"],["n3","n4","n5"]]`; nodes in no group (clients,
    /// usually) still reach everyone.
    Partition,
    /// Cut one `node` off from every other node.
    Isolate,
    /// Two sides that share one node: `left`, `right`, `bridge`.
    Bridge,
    /// Drop messages `from` some nodes `to` others; the reverse still flows.
    OneWay,
    /// Remove every partition and one-way cut.
    Heal,
    /// Stop `node`, losing its volatile state; its storage survives.
    Crash,
    /// Rebuild `node` from its storage and start it again.
    Restart,
    /// Freeze `node`: messages and timers queue up until it resumes.
    Pause,
    Resume,
    /// Step `node`'s clock `by` a duration (negative: backwards).
    ClockJump,
    /// Set `node`'s clock to true time plus `offset`.
    ClockOffset,
    /// Make `node`'s clock run `drift_ppm` fast (negative: slow) from now on.
    ClockDrift,
    /// Add `extra` latency to messages from or to `node` (every message without `node`).
    LatencySpike,
    LatencySpikeEnd,
    /// Raise the loss probability to `loss` for messages from or to `node` (or every message).
    LossBurst,
    LossBurstEnd,
    /// Corrupt each message with `probability` (0 ends it).
    Corrupt,
    /// Cut (`up = false`) or restore the topology edges between `a` and `b`.
    TopologyEdge,
}

impl FaultKind {
    pub const ALL: [FaultKind; 18] = [
        FaultKind::Partition,
        FaultKind::Isolate,
        FaultKind::Bridge,
        FaultKind::OneWay,
        FaultKind::Heal,
        FaultKind::Crash,
        FaultKind::Restart,
        FaultKind::Pause,
        FaultKind::Resume,
        FaultKind::ClockJump,
        FaultKind::ClockOffset,
        FaultKind::ClockDrift,
        FaultKind::LatencySpike,
        FaultKind::LatencySpikeEnd,
        FaultKind::LossBurst,
        FaultKind::LossBurstEnd,
        FaultKind::Corrupt,
        FaultKind::TopologyEdge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Isolate => "isolate",
            FaultKind::Bridge => "bridge",
            FaultKind::OneWay => "one-way",
            FaultKind::Heal => "heal",
            FaultKind::Crash => "crash",
            FaultKind::Restart => "restart",
            FaultKind::Pause => "pause",
            FaultKind::Resume => "resume",
            FaultKind::ClockJump => "clock-jump",
            FaultKind::ClockOffset => "clock-offset",
            FaultKind::ClockDrift => "clock-drift",
            FaultKind::LatencySpike => "latency-spike",
            FaultKind::LatencySpikeEnd => "latency-spike-end",
            FaultKind::LossBurst => "loss-burst",
            FaultKind::LossBurstEnd => "loss-burst-end",
            FaultKind::Corrupt => "corrupt",
            FaultKind::TopologyEdge => "topology-edge",
        }
    }

    /// One line for `detsim list`, with the keys the fault takes.
    pub fn description(self) -> &'static str {
        match self {
            FaultKind::Partition => "groups = [[..],[..]]: nodes talk only within their group [duration]",
            FaultKind::Isolate => "node: cut one node off from all others [duration]",
            FaultKind::Bridge => "left, right, bridge: two sides that share one node [duration]",
            FaultKind::OneWay => "from, to: drop messages one way only [duration]",
            FaultKind::Heal => "remove every partition and one-way cut",
            FaultKind::Crash => "node: stop, losing volatile state [duration: restart after]",
            FaultKind::Restart => "node: rebuild from durable storage and start again",
            FaultKind::Pause => "node: freeze; messages and timers queue up [duration: resume after]",
            FaultKind::Resume => "node: unfreeze a paused node",
            FaultKind::ClockJump => "node, by: step the node's clock (\"-500ms\" jumps back)",
            FaultKind::ClockOffset => "node, offset: set the clock to true time plus offset",
            FaultKind::ClockDrift => "node, drift_ppm: the clock runs fast (slow if negative)",
            FaultKind::LatencySpike => "extra, [node]: add latency to messages [duration]",
            FaultKind::LatencySpikeEnd => "[node]: end a latency spike",
            FaultKind::LossBurst => "loss, [node]: raise message loss [duration]",
            FaultKind::LossBurstEnd => "[node]: end a loss burst",
            FaultKind::Corrupt => "probability: corrupt messages on the wire [duration]",
            FaultKind::TopologyEdge => "a, b, up: cut or restore a topology edge [duration]",
        }
    }
}

/// One scripted fault: `at` a time, of a `kind`, with the keys that kind takes. With `duration`, the
/// fault is undone after that long (heal, restart, resume, end of spike or burst).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// When the fault happens, from the start of the run ("10s").
    pub at: Duration,
    pub kind: FaultKind,
    /// The node (crash, restart, pause, resume, isolate, clock-*, and optionally latency-spike and
    /// loss-burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Partition groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Vec<String>>>,
    /// Bridge: the left side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<Vec<String>>,
    /// Bridge: the right side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<Vec<String>>,
    /// Bridge: the node both sides reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// One-way: senders whose messages are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Vec<String>>,
    /// One-way: receivers that no longer hear from `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    /// Clock jump: how far ("-500ms" jumps back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<SignedDuration>,
    /// Clock offset: the new offset from true time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<SignedDuration>,
    /// Clock drift: the new rate error in parts per million.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<f64>,
    /// Latency spike: the added latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Duration>,
    /// Loss burst: the loss probability in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Corrupt: the probability in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Topology edge: one end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<String>,
    /// Topology edge: the other end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    /// Topology edge: restore (true) or cut (false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    /// Undo the fault after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

impl FaultSpec {
    /// A fault of `kind` at `at` with no other keys set.
    pub fn new(at: Duration, kind: FaultKind) -> Self {
        FaultSpec {
            at,
            kind,
            node: None,
            groups: None,
            left: None,
            right: None,
            bridge: None,
            from: None,
            to: None,
            by: None,
            offset: None,
            drift_ppm: None,
            extra: None,
            loss: None,
            probability: None,
            a: None,
            b: None,
            up: None,
            duration: None,
        }
    }
}

/// Kinds of fault the random nemesis can inject (each is undone after `fault_duration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NemesisFault {
    /// A random majority/minority split of the targets.
    Partition,
    /// One random target cut off.
    Isolate,
    /// A random bridge: two sides sharing one node.
    Bridge,
    /// A random one-way cut between two halves.
    OneWay,
    /// One random target crashes, then restarts.
    Crash,
    /// One random target pauses, then resumes.
    Pause,
    /// One random target's clock jumps by up to `max_clock_jump` either way.
    ClockJump,
    /// One random target's clock drifts by up to `max_drift_ppm` either way, then stops drifting.
    ClockDrift,
    /// Every message gets `latency_spike` extra latency.
    LatencySpike,
    /// Every message is lost with probability `loss`.
    LossBurst,
}

impl NemesisFault {
    pub const ALL: [NemesisFault; 10] = [
        NemesisFault::Partition,
        NemesisFault::Isolate,
        NemesisFault::Bridge,
        NemesisFault::OneWay,
        NemesisFault::Crash,
        NemesisFault::Pause,
        NemesisFault::ClockJump,
        NemesisFault::ClockDrift,
        NemesisFault::LatencySpike,
        NemesisFault::LossBurst,
    ];

    /// One line for `detsim list`.
    pub fn description(self) -> &'static str {
        match self {
            NemesisFault::Partition => "a random minority/majority split of the targets",
            NemesisFault::Isolate => "one random target cut off from everyone",
            NemesisFault::Bridge => "two random sides that share one node",
            NemesisFault::OneWay => "one half stops hearing from the other",
            NemesisFault::Crash => "one random target crashes, then restarts",
            NemesisFault::Pause => "one random target pauses, then resumes",
            NemesisFault::ClockJump => "one random target's clock jumps by up to max_clock_jump either way",
            NemesisFault::ClockDrift => "one random target's clock drifts up to max_drift_ppm, then stops drifting",
            NemesisFault::LatencySpike => "every message gets latency_spike extra latency",
            NemesisFault::LossBurst => "every message is lost with probability loss",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NemesisFault::Partition => "partition",
            NemesisFault::Isolate => "isolate",
            NemesisFault::Bridge => "bridge",
            NemesisFault::OneWay => "one-way",
            NemesisFault::Crash => "crash",
            NemesisFault::Pause => "pause",
            NemesisFault::ClockJump => "clock-jump",
            NemesisFault::ClockDrift => "clock-drift",
            NemesisFault::LatencySpike => "latency-spike",
            NemesisFault::LossBurst => "loss-burst",
        }
    }
}

/// A random nemesis: from `start` to `stop`, one fault window after another, each of a kind drawn
/// from `faults`, lasting `fault_duration`, separated by gaps drawn around `interval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nemesis {
    /// Kinds to draw from.
    pub faults: Vec<NemesisFault>,
    /// Mean gap between fault windows; each gap is uniform in [interval/2, 3*interval/2] (default "5s").
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// How long each fault lasts before it is undone (default "2s").
    #[serde(default = "default_fault_duration")]
    pub fault_duration: Duration,
    /// No fault before this time (default "1s").
    #[serde(default = "default_start")]
    pub start: Duration,
    /// Every fault is undone by this time (default: the end of the run), so the run can recover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Duration>,
    /// Nodes the nemesis may pick (default: every server).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Clock jumps are drawn from [-max_clock_jump, max_clock_jump] (default "1s").
    #[serde(default = "default_clock_jump")]
    pub max_clock_jump: Duration,
    /// Drift is drawn from [-max_drift_ppm, max_drift_ppm] (default 500).
    #[serde(default = "default_drift")]
    pub max_drift_ppm: f64,
    /// Extra latency of a latency spike (default "200ms").
    #[serde(default = "default_spike")]
    pub latency_spike: Duration,
    /// Loss probability of a loss burst (default 0.5).
    #[serde(default = "default_loss")]
    pub loss: f64,
}

fn default_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_fault_duration() -> Duration {
    Duration::from_secs(2)
}
fn default_start() -> Duration {
    Duration::from_secs(1)
}
fn default_clock_jump() -> Duration {
    Duration::from_secs(1)
}
fn default_drift() -> f64 {
    500.0
}
fn default_spike() -> Duration {
    Duration::from_millis(200)
}
fn default_loss() -> f64 {
    0.5
}

impl Nemesis {
    pub fn with_faults(faults: Vec<NemesisFault>) -> Self {
        Nemesis {
            faults,
            interval: default_interval(),
            fault_duration: default_fault_duration(),
            start: default_start(),
            stop: None,
            targets: Vec::new(),
            max_clock_jump: default_clock_jump(),
            max_drift_ppm: default_drift(),
            latency_spike: default_spike(),
            loss: default_loss(),
        }
    }
}

/// Swarm mode: each present knob is drawn from the seed within its inclusive range `[min, max]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Swarm {
    /// Server count, e.g. [3, 7].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<[usize; 2]>,
    /// Client count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<[usize; 2]>,
    /// Default link loss probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<[f64; 2]>,
    /// Mean link latency m; links become uniform in [m/2, 3m/2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<[Duration; 2]>,
    /// The fault mix: each kind is kept with probability 1/2 (at least one is kept); it replaces
    /// the nemesis' `faults` (a default nemesis is added when the scenario has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<NemesisFault>>,
    /// The nemesis interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[Duration; 2]>,
}
