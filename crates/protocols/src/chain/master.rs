//! The chain master: turns heartbeats into chain configurations — drop servers that went silent or
//! that their predecessor reports stuck, extend the chain at the tail with servers that came back —
//! never lets a server that might miss an acknowledged update become the head, and confirms to the
//! tail that its configuration is still current before it answers a read.

use super::{ChainMsg, ChainParams, Config};
use crate::configuration_service::Heartbeats;
use detsim_core::{Ctx, NodeId, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// What the master keeps on durable storage.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Durable {
    config: Config,
    /// Members known to hold every acknowledged update: only these may lead the chain.
    complete: BTreeSet<NodeId>,
    /// The tail reported that state transfer reached it in this configuration.
    confirmed: bool,
}

const STATE_KEY: &str = "chain/master";

/// The master node.
pub struct ChainMaster {
    servers: Vec<NodeId>,
    params: ChainParams,
    state: Durable,
    /// Servers' pings, and when a predecessor last reported each server stuck.
    heartbeats: Heartbeats,
    configs_made: u64,
}

impl ChainMaster {
    /// The master rebuilt from its durable storage (no configuration at first start).
    pub fn recover(servers: Vec<NodeId>, params: ChainParams, storage: &Storage) -> Self {
        assert!(!servers.is_empty(), "a chain needs at least one server");
        ChainMaster {
            servers,
            heartbeats: Heartbeats::new(params.dead_after_ms, params.rejoin_after_ms),
            params,
            state: storage.get(STATE_KEY).unwrap_or_default(),
            configs_made: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.state.config
    }
    pub fn complete(&self) -> &BTreeSet<NodeId> {
        &self.state.complete
    }
    pub fn confirmed(&self) -> bool {
        self.state.confirmed
    }
    pub fn configs_made(&self) -> u64 {
        self.configs_made
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        self.heartbeats.start(ctx.now());
        if self.state.config.number == 0 {
            // Every server starts empty, so each trivially holds every acknowledged update.
            let first = Config { number: 1, chain: self.servers.clone() };
            self.install(ctx, first, self.servers.iter().copied().collect());
        }
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
    }

    fn install(&mut self, ctx: &mut Ctx<'_, ChainMsg>, config: Config, complete: BTreeSet<NodeId>) {
        assert!(config.number > self.state.config.number, "configurations only move forward");
        assert!(complete.iter().all(|c| config.chain.contains(c)), "complete servers are members");
        if let Some(head) = config.head() {
            assert!(complete.contains(&head), "only a complete server leads the chain");
        }
        ctx.annotate(format!("config {}: chain {:?}, complete {:?}", config.number, config.chain, complete));
        self.state = Durable { config, complete, confirmed: false };
        ctx.storage().put(STATE_KEY, &self.state);
        self.configs_made += 1;
        let msg = ChainMsg::ConfigIs { config: self.state.config.clone() };
        for member in self.state.config.chain.clone() {
            ctx.send(member, msg.clone());
        }
    }

    /// Installs a chain made of `members` (in order), keeping the complete ones. Servers before
    /// the first complete one are dropped: the head must hold every acknowledged update.
    fn change(&mut self, ctx: &mut Ctx<'_, ChainMsg>, members: Vec<NodeId>) {
        let Some(first_complete) = members.iter().position(|m| self.state.complete.contains(m)) else {
            return; // nobody left who holds everything: wait for a complete server to come back
        };
        let chain = members[first_complete..].to_vec();
        let complete = self.state.complete.iter().copied().filter(|c| chain.contains(c)).collect();
        let config = Config { number: self.state.config.number + 1, chain };
        self.install(ctx, config, complete);
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, ChainMsg>, from: NodeId, msg: ChainMsg) {
        if !self.servers.contains(&from) {
            return;
        }
        match msg {
            ChainMsg::Ping { config, synced, stuck_successor } => {
                let now = ctx.now();
                self.heartbeats.ping(now, from);
                let current = self.state.config.clone();
                if config == current.number && current.chain.contains(&from) {
                    if synced && current.tail() == Some(from) && !self.state.confirmed {
                        // State transfer flows from the head down; at the tail it has reached all.
                        self.state.confirmed = true;
                        self.state.complete = current.chain.iter().copied().collect();
                        ctx.storage().put(STATE_KEY, &self.state);
                    }
                    if let Some(stuck) = stuck_successor.filter(|s| current.successor(from) == Some(*s)) {
                        self.heartbeats.report(now, stuck);
                        let members = current.chain.iter().copied().filter(|m| *m != stuck).collect();
                        self.change(ctx, members);
                    }
                }
                ctx.send(from, ChainMsg::ConfigIs { config: self.state.config.clone() });
            }
            ChainMsg::ReadCheck { config, read } => {
                // The read is safe when the asking tail's configuration is still the current one:
                // no later configuration, hence no update committed elsewhere, exists yet.
                if config == self.state.config.number && self.state.config.tail() == Some(from) {
                    ctx.send(from, ChainMsg::ReadOk { config, read });
                } else {
                    ctx.send(from, ChainMsg::ConfigIs { config: self.state.config.clone() });
                }
            }
            _ => {}
        }
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, ChainMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
        let now = ctx.now();
        let config = self.state.config.clone();
        let alive: Vec<NodeId> = config.chain.iter().copied().filter(|m| self.heartbeats.alive(now, *m)).collect();
        if alive.len() < config.chain.len() {
            self.change(ctx, alive);
            return;
        }
        if !self.state.confirmed || config.chain.is_empty() {
            return; // one change at a time: let state transfer reach the tail first
        }
        let joining: Vec<NodeId> = self
            .servers
            .iter()
            .copied()
            .filter(|s| !config.chain.contains(s) && self.heartbeats.may_rejoin(now, *s))
            .collect();
        if !joining.is_empty() {
            // The chain grows at the tail (the paper's §3 "extending a chain"): the new servers get
            // the state passed down to them and are complete once it reaches the tail.
            let mut chain = config.chain.clone();
            chain.extend(joining);
            self.change(ctx, chain);
        }
    }
}
