//! Lab 3: gossip broadcast. Write a peer that spreads every broadcast to every other peer, through
//! partitions, loss and pauses, within the lab's budget of messages and time; `cargo test --offline`
//! grades it (the guide is docs/labs/03-gossip.md in the detsim repository).
#![allow(dead_code, unused_variables)] // remove once the TODOs are done

use detsim::labs::gossip::{build_peers, record_broadcast, record_deliver, BroadcastPlan, PeerSetup};
use detsim::labs::prelude::*;

/// Timer tags below `detsim::labs::gossip::BROADCAST_TIMER_BASE` are yours.
const ROUND_TIMER: u64 = 1;

/// What peers send each other.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Msg {
    /// Rumors, each with the hops it took so far.
    Rumors(Vec<(u64, u32)>),
    // TODO: more messages, e.g. a digest of what you know for anti-entropy.
}

impl Message for Msg {
    fn kind(&self) -> &'static str {
        match self {
            Msg::Rumors(_) => "Rumors",
        }
    }
}

/// One peer.
pub struct Peer {
    setup: PeerSetup,
    /// The rumors this peer has delivered, with the hops each took to get here.
    known: BTreeMap<u64, u32>,
    // TODO: what else you need: which rumors are still "hot", a round counter...
}

impl Peer {
    /// Builds peer `setup.id` (peers keep nothing on disk: a crash would lose what they know).
    pub fn new(setup: PeerSetup) -> Self {
        Peer { setup, known: BTreeMap::new() }
    }

    /// Delivers `rumor` if it is new here (the grader counts the first delivery at each peer).
    fn learn(&mut self, ctx: &mut Ctx<'_, Msg>, rumor: u64, hops: u32) -> bool {
        if self.known.contains_key(&rumor) {
            return false;
        }
        record_deliver(ctx, rumor, hops);
        self.known.insert(rumor, hops);
        true
    }
}

impl Node for Peer {
    type Msg = Msg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // Given: the broadcasts this peer originates arrive as timers.
        self.setup.plan.schedule(ctx, self.setup.peers.len() + 1);
        // TODO: start your gossip rounds, e.g. ctx.set_timer(Duration::from_millis(50), ROUND_TIMER);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Msg>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Rumors(rumors) => {
                for (rumor, hops) in rumors {
                    self.learn(ctx, rumor, hops + 1);
                }
                // TODO: pass new rumors on (to whom? how many? how long?).
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Msg>, _timer: TimerId, tag: u64) {
        if let Some(rumor) = BroadcastPlan::broadcast_of(tag) {
            // Given: originate the broadcast and deliver it here.
            record_broadcast(ctx, rumor);
            self.learn(ctx, rumor, 0);
            // TODO: start spreading it.
            return;
        }
        // TODO: ROUND_TIMER: a gossip round (push hot rumors to a few random peers, and/or compare
        // notes with one peer so partitioned peers catch up after the heal); re-arm the timer.
    }
}

/// Builds the lab's peers: the grader calls this for every run.
pub fn build(spec: &ClusterSpec) -> Result<Box<dyn AnySimulation>, String> {
    build_peers(spec, Peer::new)
}
