//! Building a lease-lock simulation from a [`ClusterSpec`].
//!
//! | nodes | role |
//! |---|---|
//! | `n1` | the lock server |
//! | `n2` | the storage node (one register, fenced unless `storage.bug_no_fencing`) |
//! | `c1..cM` | lock clients (their clocks, from the spec, are what drifts) |

use super::client::{LockClient, LockClientParams};
use super::server::{LockServer, LockServerParams};
use super::storage::{FencedStorage, StorageParams};
use super::LeaseNode;
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use detsim_core::{NodeId, Simulation};
use serde::{Deserialize, Serialize};

/// Parameters of the `lease-lock` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseSetup {
    pub server: LockServerParams,
    pub storage: StorageParams,
    pub client: LockClientParams,
}

/// Lock server `n1`, storage `n2`, clients `c1..cM`.
pub fn build_lease_lock(spec: &ClusterSpec, params: &LeaseSetup) -> Result<Simulation<LeaseNode>, String> {
    if spec.workload.kind != WorkloadKind::Register {
        return Err(format!("lease-lock serves the register workload (cas on key 0), not {:?}", spec.workload.kind));
    }
    if spec.nodes != 2 {
        return Err(format!(
            "lease-lock has two servers, the lock server and the storage node; got nodes = {}",
            spec.nodes
        ));
    }
    if spec.workload.clients == 0 {
        return Err("lease-lock needs at least one client".into());
    }
    if params.server.lease_ns == 0 {
        return Err("server.lease_ns must be positive".into());
    }
    params.client.validate(params.server.lease_ns)?;
    let mut sim = Simulation::new(spec.sim_config()).map_err(|e| e.to_string())?;
    let (server, storage) = (NodeId(0), NodeId(1));
    let server_params = params.server.clone();
    sim.add_node_with_clock("n1", spec.clock(0), move |_, disk| {
        LeaseNode::Server(LockServer::new(server_params.clone(), disk))
    });
    let storage_params = params.storage.clone();
    sim.add_node_with_clock("n2", spec.clock(1), move |_, disk| {
        LeaseNode::Storage(FencedStorage::new(storage_params.clone(), disk))
    });
    let clients = spec.workload.clients;
    for i in 0..clients {
        let client = params.client.clone();
        sim.add_node_with_clock(&ClusterSpec::client_name(i), spec.clock(2 + i), move |_, disk| {
            LeaseNode::Client(LockClient::new(client.clone(), i, clients, server, storage, disk))
        });
    }
    Ok(sim)
}

/// The registry entries of the lease family.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "lease-lock",
        description:
            "lease-based lock with fencing tokens: drifting clocks break the lease, fencing keeps the data safe",
        workloads: &[WorkloadKind::Register],
        build: |spec| {
            let params: LeaseSetup = spec.params()?;
            Ok(Box::new(build_lease_lock(spec, &params)?))
        },
    }]
}
