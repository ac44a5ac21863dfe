//! What chain replication and primary-backup share about their configuration service (the chain
//! master, the view service): one node after the clients that turns server heartbeats into
//! numbered configurations. Here are the service's heartbeat bookkeeping (who is alive, who has
//! been up long enough to rejoin, who was reported stuck), the clock arithmetic both ends of the
//! heartbeat use, the checks on the heartbeat periods, building the cluster with the service node,
//! and finding the server that leads the newest configuration.
//!
//! Times are each node's own [`LocalTime`]: a drifting or jumping clock changes when a server is
//! declared dead, never whether an acknowledged update survives.

use crate::spec::ClusterSpec;
use crate::workload::build_cluster;
use detsim_core::{LocalTime, Node, NodeId, Simulation, Storage};
use std::collections::BTreeMap;

/// Milliseconds from `then` to `now` on one node's clock (negative after a backward jump).
pub fn since_ms(now: LocalTime, then: LocalTime) -> i64 {
    (now.as_nanos() - then.as_nanos()) / 1_000_000
}

/// Whether a period of `period_ms` that began at `then` is over. A clock that jumped backwards
/// counts as "over" too, so a backward jump cannot silence a heartbeat for the jump's length.
pub fn period_over(now: LocalTime, then: LocalTime, period_ms: u64) -> bool {
    let elapsed_ms = since_ms(now, then);
    elapsed_ms < 0 || elapsed_ms >= period_ms as i64
}

/// Checks the heartbeat periods of a protocol's parameters: every one of `periods` (name, value)
/// is positive, and `dead_after_ms` spans at least two pings.
pub fn check_heartbeat_periods(
    periods: &[(&str, u64)],
    ping_interval_ms: u64,
    dead_after_ms: u64,
) -> Result<(), String> {
    if let Some((name, _)) = periods.iter().find(|(_, ms)| *ms == 0) {
        return Err(format!("{name} must be positive"));
    }
    if dead_after_ms < 2 * ping_interval_ms {
        return Err(format!(
            "dead_after_ms ({dead_after_ms}) must span at least two pings (ping_interval_ms {ping_interval_ms})"
        ));
    }
    Ok(())
}

/// The configuration service's view of the servers' heartbeats (volatile: a restarted service
/// starts over and gives every server `dead_after_ms` of grace).
#[derive(Clone, Debug)]
pub struct Heartbeats {
    dead_after_ms: u64,
    rejoin_after_ms: u64,
    /// Local time of the last ping from each server.
    last_ping: BTreeMap<NodeId, LocalTime>,
    /// Since when each server has been pinging without a gap longer than `dead_after_ms`.
    up_since: BTreeMap<NodeId, LocalTime>,
    /// When a member last reported each server as stuck (not answering, not catching up).
    reported: BTreeMap<NodeId, LocalTime>,
    /// When this incarnation started: a server it has not heard yet counts as pinging then, so a
    /// restarted service does not declare dead a server it simply has not heard from.
    started_at: LocalTime,
}

impl Heartbeats {
    pub fn new(dead_after_ms: u64, rejoin_after_ms: u64) -> Self {
        Heartbeats {
            dead_after_ms,
            rejoin_after_ms,
            last_ping: BTreeMap::new(),
            up_since: BTreeMap::new(),
            reported: BTreeMap::new(),
            started_at: LocalTime(0),
        }
    }

    /// The service (re)started at `now`.
    pub fn start(&mut self, now: LocalTime) {
        self.started_at = now;
    }

    /// A ping from `server` at `now`. One that was dead or never heard is up from now on.
    pub fn ping(&mut self, now: LocalTime, server: NodeId) {
        if !self.alive(now, server) || !self.last_ping.contains_key(&server) {
            self.up_since.insert(server, now);
        }
        self.last_ping.insert(server, now);
    }

    /// A member reported `server` stuck at `now`: it rejoins no sooner than `rejoin_after_ms` later.
    pub fn report(&mut self, now: LocalTime, server: NodeId) {
        self.reported.insert(server, now);
    }

    /// `server` pinged within `dead_after_ms` (or the service started that recently).
    pub fn alive(&self, now: LocalTime, server: NodeId) -> bool {
        let last = self.last_ping.get(&server).copied().unwrap_or(self.started_at);
        since_ms(now, last) <= self.dead_after_ms as i64
    }

    /// `server` is alive, has been up for `rejoin_after_ms`, and nobody reported it stuck for as
    /// long: it may join a configuration again.
    pub fn may_rejoin(&self, now: LocalTime, server: NodeId) -> bool {
        let rejoin_ms = self.rejoin_after_ms as i64;
        self.alive(now, server)
            && self.up_since.get(&server).is_some_and(|t| since_ms(now, *t) >= rejoin_ms)
            && self.reported.get(&server).is_none_or(|t| since_ms(now, *t) >= rejoin_ms)
    }
}

/// The configuration service's node id in a simulation built from `spec`: right after the clients.
pub fn service_id(spec: &ClusterSpec) -> NodeId {
    spec.extra_node_id(0)
}

/// Builds servers `n1..nN` and clients `c1..cM` (see [`build_cluster`]), then the configuration
/// service `name`, `make_service(id, storage)` (also after each restart, from its durable storage).
pub fn build_with_service<N: Node>(
    spec: &ClusterSpec,
    make_server: impl Fn(usize, &Storage) -> N + Clone + 'static,
    make_client: impl Fn(usize) -> N + Clone + 'static,
    name: &str,
    make_service: impl FnMut(NodeId, &Storage) -> N + 'static,
) -> Result<Simulation<N>, String> {
    let mut sim = build_cluster(spec, make_server, make_client)?;
    let service = service_id(spec);
    let added = sim.add_node_with_clock(name, spec.clock(service.index()), make_service);
    assert_eq!(added, service, "the configuration service {name} comes right after the clients");
    Ok(sim)
}

/// The server that leads the newest configuration any server knows (for isolate-the-leader faults
/// and figures): `leads(node)` is the number of the configuration in which `node` leads, if it does.
pub fn newest_leader<N: Node>(sim: &Simulation<N>, leads: impl Fn(&N) -> Option<u64>) -> Option<NodeId> {
    (0..sim.node_count() as u32)
        .map(NodeId)
        .filter_map(|id| sim.node(id).and_then(&leads).map(|number| (number, id)))
        .max()
        .map(|(_, id)| id)
}
