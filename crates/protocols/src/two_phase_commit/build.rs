//! Building a two-phase-commit simulation from a [`ClusterSpec`].
//!
//! | nodes | role |
//! |---|---|
//! | `n1..nK` | coordinators (`K` = `coordinators`) |
//! | `n(K+1)..nN` | participants; key `k` lives on participant number `k mod (N - K)` |
//! | `c1..cM` | clients (the shared list-append workload); client `ci` uses coordinator `(i-1) mod K` |

use super::coordinator::{Coordinator, CoordinatorParams};
use super::participant::{Participant, ParticipantParams};
use super::{TpcClientProtocol, TpcNode};
use crate::spec::{ClusterSpec, ProtocolEntry, WorkloadKind};
use crate::workload::{ClusterLayout, WorkloadClient};
use detsim_core::{NodeId, Simulation};
use serde::{Deserialize, Serialize};

/// Parameters of the `two-phase-commit` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TpcSetup {
    /// How many of the servers are coordinators (the rest are participants).
    pub coordinators: usize,
    pub coordinator: CoordinatorParams,
    pub participant: ParticipantParams,
}

impl Default for TpcSetup {
    fn default() -> Self {
        TpcSetup {
            coordinators: 2,
            coordinator: CoordinatorParams::default(),
            participant: ParticipantParams::default(),
        }
    }
}

/// Coordinators, participants and list-append clients, as the module table says.
pub fn build_two_phase_commit(spec: &ClusterSpec, params: &TpcSetup) -> Result<Simulation<TpcNode>, String> {
    if spec.workload.kind != WorkloadKind::ListAppend {
        return Err(format!("two-phase-commit serves the list-append workload, not {:?}", spec.workload.kind));
    }
    if params.coordinators == 0 || params.coordinators >= 256 {
        return Err(format!("coordinators must be between 1 and 255, got {}", params.coordinators));
    }
    if spec.nodes <= params.coordinators {
        return Err(format!(
            "two-phase-commit needs at least one participant: nodes ({}) must exceed coordinators ({})",
            spec.nodes, params.coordinators
        ));
    }
    let (c, p) = (&params.coordinator, &params.participant);
    if c.vote_timeout_ns == 0 || c.resend_ns == 0 || p.inquiry_interval_ns == 0 {
        return Err("timeouts and intervals must be positive".into());
    }
    let coordinators: Vec<NodeId> = (0..params.coordinators as u32).map(NodeId).collect();
    let participants: Vec<NodeId> = (params.coordinators as u32..spec.nodes as u32).map(NodeId).collect();
    let servers_coordinators = coordinators.clone();
    let setup = params.clone();
    let workload = spec.workload.clone();
    let layout = ClusterLayout::of(spec);
    assert_eq!(layout.servers.len(), spec.nodes);
    crate::workload::build_cluster(
        spec,
        move |index, storage| {
            if index < setup.coordinators {
                TpcNode::Coordinator(Coordinator::new(setup.coordinator.clone(), index, participants.clone(), storage))
            } else {
                TpcNode::Participant(Participant::new(setup.participant.clone(), coordinators.clone(), storage))
            }
        },
        move |index| {
            TpcNode::Client(WorkloadClient::new(TpcClientProtocol, &workload, index, servers_coordinators.clone()))
        },
    )
}

/// The registry entries of the two-phase-commit family.
pub fn entries() -> Vec<ProtocolEntry> {
    vec![ProtocolEntry {
        name: "two-phase-commit",
        description:
            "two-phase commit with presumed abort: atomic, strictly serializable, blocks while a coordinator is down",
        workloads: &[WorkloadKind::ListAppend],
        build: |spec| {
            let params: TpcSetup = spec.params()?;
            Ok(Box::new(build_two_phase_commit(spec, &params)?))
        },
    }]
}
