//! What a scenario asks of a protocol: the cluster (node counts, network, clocks), the client
//! workload, and the protocol's own parameters. Every protocol in the registry builds a ready-to-run
//! simulation from a [`ClusterSpec`].
//!
//! Naming convention, shared by scenarios, faults and reports: servers are `n1..nN` (node ids
//! `0..N`), clients are `c1..cM` (node ids `N..N+M`), any extra nodes a protocol needs come after.

use detsim_core::{AnySimulation, LocalClock, NetworkConfig, NodeId};
use serde::{Deserialize, Serialize};

/// The kind of client workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// read / write / cas on one register per key (history `f`: read, write, cas).
    Register,
    /// get / put / append over `keys` keys (history `f`: get, put, append).
    KeyValue,
    /// increments and reads of a counter (history `f`: add, read).
    Counter,
    /// adds and reads of a set (history `f`: add, read).
    Set,
    /// list-append transactions (history `f`: txn, micro-ops `["append" k v]`, `["r" k list]`).
    ListAppend,
    /// read-write register transactions (history `f`: txn, micro-ops `["w" k v]`, `["r" k v]`).
    RwRegister,
    /// No client operations (protocols that are not a storage service: gossip, clocks...).
    None,
}

/// How clients issue operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    /// Client nodes (`c1..`).
    pub clients: usize,
    /// Closed loop: outstanding operations per client (each is its own history process).
    pub concurrency: usize,
    /// Open loop: operations per second per client; `None` means closed loop.
    pub rate_per_s: Option<f64>,
    /// Number of distinct keys.
    pub keys: usize,
    /// After this long without a reply an operation is recorded as info (unknown outcome).
    pub timeout_ns: u64,
    /// Pause between a completed operation and the next one of the same process (closed loop).
    pub think_time_ns: u64,
    /// Stop issuing new operations after this many per client (`None`: until the run ends).
    pub max_ops_per_client: Option<u64>,
    /// Stop issuing new operations at this true time (so the run can drain); `None`: never.
    pub stop_at_ns: Option<u64>,
    /// Fraction of reads among operations (the rest are writes/updates of the workload's kind).
    pub read_fraction: f64,
    /// From this time on (the client's own clock) clients issue only reads, so that a run ends
    /// with reads of a quiet system (what eventual-convergence checks judge); `None`: never.
    /// Honoured by the shared [`crate::workload::WorkloadClient`].
    #[serde(default)]
    pub updates_until_ns: Option<u64>,
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            kind: WorkloadKind::Register,
            clients: 3,
            concurrency: 1,
            rate_per_s: None,
            keys: 1,
            timeout_ns: 1_000_000_000,
            think_time_ns: 10_000_000,
            max_ops_per_client: None,
            stop_at_ns: None,
            read_fraction: 0.5,
            updates_until_ns: None,
        }
    }
}

/// Everything needed to build a simulation of one protocol.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub seed: u64,
    /// Server nodes (`n1..`).
    pub nodes: usize,
    pub network: NetworkConfig,
    /// Clock of each server then each client, by node index; missing entries are perfect clocks.
    pub clocks: Vec<LocalClock>,
    pub workload: WorkloadSpec,
    /// The protocol's own parameters (a JSON object; `{}` or null for defaults). Each protocol reads
    /// it into its serde parameter struct and rejects unknown fields.
    pub params: serde_json::Value,
    pub limits: detsim_core::Limits,
}

impl ClusterSpec {
    pub fn new(seed: u64, nodes: usize, workload: WorkloadSpec) -> Self {
        ClusterSpec {
            seed,
            nodes,
            network: NetworkConfig::default(),
            clocks: Vec::new(),
            workload,
            params: serde_json::Value::Null,
            limits: detsim_core::Limits::default(),
        }
    }

    /// The name of server `i` (from 0): `n1`, `n2`, ...
    pub fn server_name(i: usize) -> String {
        format!("n{}", i + 1)
    }

    /// The name of client `i` (from 0): `c1`, `c2`, ...
    pub fn client_name(i: usize) -> String {
        format!("c{}", i + 1)
    }

    /// The id of extra node `i` (from 0): the nodes a protocol adds after the clients.
    pub fn extra_node_id(&self, i: usize) -> NodeId {
        NodeId(u32::try_from(self.nodes + self.workload.clients + i).expect("fewer than 2^32 nodes"))
    }

    /// The clock of node index `i`.
    pub fn clock(&self, i: usize) -> LocalClock {
        self.clocks.get(i).cloned().unwrap_or_else(|| LocalClock::new(0, 0.0))
    }

    /// A `SimConfig` for this spec.
    pub fn sim_config(&self) -> detsim_core::SimConfig {
        detsim_core::SimConfig { seed: self.seed, network: self.network.clone(), limits: self.limits.clone() }
    }

    /// Reads the protocol parameters into `T`, with defaults for what is absent. Only a table (a
    /// JSON object) or nothing is accepted: serde would otherwise read an array into a struct's
    /// fields by position.
    pub fn params<T: serde::de::DeserializeOwned + Default>(&self) -> Result<T, String> {
        match &self.params {
            serde_json::Value::Null => Ok(T::default()),
            value @ serde_json::Value::Object(_) => {
                serde_json::from_value(value.clone()).map_err(|e| format!("protocol parameters: {e}"))
            }
            other => Err(format!("protocol parameters: expected a table, found {other}")),
        }
    }
}

/// Builds a ready-to-run simulation, or says what is wrong with the spec.
pub type BuildFn = fn(&ClusterSpec) -> Result<Box<dyn AnySimulation>, String>;

/// One runnable protocol configuration, as scenarios name it (`protocol = "raft"`).
#[derive(Clone, Copy)]
pub struct ProtocolEntry {
    pub name: &'static str,
    /// One line for `detsim list`.
    pub description: &'static str,
    /// Workload kinds it serves (the first is the default).
    pub workloads: &'static [WorkloadKind],
    pub build: BuildFn,
}
