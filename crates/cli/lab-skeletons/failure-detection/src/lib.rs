//! Lab 2: failure detection. Write a node that heartbeats its peers and suspects the ones that fall
//! silent; `cargo test --offline` grades it (the guide is docs/labs/02-failure-detection.md in the
//! detsim repository). The grader crashes nodes, skews their clocks and loses messages, and judges
//! every monitor: each crash noticed in time, live nodes (almost) never suspected, few messages.
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::failure::{build_monitors, record_suspect, record_trust, MonitorSetup};
use detsim::labs::prelude::*;

/// Timer tags (yours to extend): heartbeats, and one suspicion timer per peer (tag `SUSPECT_BASE + peer`).
const HEARTBEAT_TIMER: u64 = 1;
const SUSPECT_BASE: u64 = 1_000;

/// What monitors send each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    Heartbeat {
        // TODO: what should a heartbeat carry? (Think about restarts, and about whose clock.)
    },
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        "Heartbeat"
    }
}

/// One node: it heartbeats every peer and monitors every peer.
pub struct Monitor {
    setup: MonitorSetup,
    /// The peers this node suspects right now.
    suspected: BTreeSet<NodeId>,
    // TODO: per peer: when you last heard from it (your clock), its suspicion timer.
}

impl Monitor {
    /// Builds node `setup.id`, at the first start and after each restart (with what it stored).
    pub fn new(setup: MonitorSetup, storage: &Storage) -> Self {
        Monitor { setup, suspected: BTreeSet::new() }
    }

    fn suspect(&mut self, ctx: &mut Ctx<'_, Msg>, peer: NodeId) {
        if self.suspected.insert(peer) {
            record_suspect(ctx, peer);
        }
    }

    fn trust(&mut self, ctx: &mut Ctx<'_, Msg>, peer: NodeId) {
        if self.suspected.remove(&peer) {
            record_trust(ctx, peer);
        }
    }
}

impl Node for Monitor {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // TODO: start heartbeating (e.g. every 100 ms) and start watching every peer.
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        // TODO: a heartbeat from `from`: it is alive. Trust it again if you suspected it, and
        // re-arm its suspicion timer.
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, timer: TimerId, tag: u64) {
        // TODO: HEARTBEAT_TIMER: send a heartbeat to every peer, re-arm.
        // TODO: SUSPECT_BASE + peer: that peer has been silent too long: self.suspect(ctx, peer).
    }
}

/// Builds the lab's nodes: the grader calls this for every run.
pub fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    build_monitors(spec, Monitor::new)
}
