//! detsim-protocols: node actors and client workloads — client-server, P2P, replication, consensus,
//! transactions, clocks, failure detectors, queues — each runnable from a scenario through the
//! [`registry`].

pub mod spec;

pub mod broker;
pub mod chain;
pub mod client_server;
pub mod clocks;
pub mod configuration_service;
pub mod crdt;
pub mod dht;
pub mod dynamo;
pub mod failure_detector;
pub mod gossip;
pub mod lease;
pub mod paxos;
pub mod primary_backup;
pub mod raft;
pub mod swim;
pub mod two_phase_commit;
pub mod workload;

pub use spec::{BuildFn, ClusterSpec, ProtocolEntry, WorkloadKind, WorkloadSpec};

/// Every protocol a scenario can name, in the order `detsim list` shows them.
pub fn registry() -> Vec<ProtocolEntry> {
    let mut entries: Vec<ProtocolEntry> = Vec::new();
    entries.extend(raft::entries());
    entries.extend(primary_backup::entries());
    entries.extend(paxos::entries());
    entries.extend(dynamo::entries());
    entries.extend(crdt::entries());
    entries.extend(chain::entries());
    entries.extend(client_server::entries());
    entries.extend(broker::entries());
    entries.extend(two_phase_commit::entries());
    entries.extend(gossip::entries());
    entries.extend(swim::entries());
    entries.extend(dht::entries());
    entries.extend(clocks::entries());
    entries.extend(lease::entries());
    entries.extend(failure_detector::entries());

    let mut names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), entries.len(), "protocol names are unique");
    entries
}

/// The protocol named `name`.
pub fn find(name: &str) -> Option<ProtocolEntry> {
    registry().into_iter().find(|e| e.name == name)
}
