//! The view service: the one process that decides who is primary. It turns heartbeats into views —
//! fail over when the primary goes silent, drop silent or reported backups, take servers back in —
//! and never promotes a server that might miss an acknowledged operation.

use super::{PbMsg, PbParams, View};
use crate::configuration_service::Heartbeats;
use detsim_core::{Ctx, NodeId, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// What the view service keeps on durable storage, so that a restart neither forgets the view nor
/// which servers are safe to promote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Durable {
    view: View,
    /// Members of the view known to hold every acknowledged operation: only these may be promoted.
    complete: BTreeSet<NodeId>,
    /// The primary reported that every backup of this view finished state transfer.
    confirmed: bool,
}

const STATE_KEY: &str = "pb/view-service";

/// The view service node.
pub struct ViewService {
    id: NodeId,
    servers: Vec<NodeId>,
    params: PbParams,
    state: Durable,
    /// Servers' pings, and when the primary last reported each backup as not answering. A
    /// restarted view service gives every server `dead_after_ms` of grace, so it does not fail
    /// over a primary it simply has not heard yet.
    heartbeats: Heartbeats,
    views_made: u64,
}

impl ViewService {
    /// The view service rebuilt from its durable storage (no view at first start).
    pub fn recover(id: NodeId, servers: Vec<NodeId>, params: PbParams, storage: &Storage) -> Self {
        assert!(!servers.is_empty(), "primary-backup needs at least one server");
        ViewService {
            id,
            servers,
            heartbeats: Heartbeats::new(params.dead_after_ms, params.rejoin_after_ms),
            params,
            state: storage.get(STATE_KEY).unwrap_or_default(),
            views_made: 0,
        }
    }

    pub fn view(&self) -> &View {
        &self.state.view
    }
    /// The servers that may be promoted (they hold every acknowledged operation).
    pub fn complete(&self) -> &BTreeSet<NodeId> {
        &self.state.complete
    }
    pub fn confirmed(&self) -> bool {
        self.state.confirmed
    }
    /// Views this incarnation made.
    pub fn views_made(&self) -> u64 {
        self.views_made
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        self.heartbeats.start(ctx.now());
        if self.state.view.number == 0 {
            // Everyone starts empty, so everyone trivially holds every acknowledged operation.
            let first = View { number: 1, primary: Some(self.servers[0]), backups: self.servers[1..].to_vec() };
            let complete = self.servers.iter().copied().collect();
            self.install(ctx, first, complete);
        }
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
    }

    /// Makes `view` current, with `complete` as the members that may be promoted. Durable before
    /// anyone hears of it.
    fn install(&mut self, ctx: &mut Ctx<'_, PbMsg>, view: View, complete: BTreeSet<NodeId>) {
        assert!(view.number > self.state.view.number, "views only move forward");
        let members = view.members();
        assert!(complete.iter().all(|c| members.contains(c)), "complete servers are members");
        if let Some(primary) = view.primary {
            assert!(complete.contains(&primary), "only a complete server is promoted");
        }
        ctx.annotate(format!(
            "view {}: primary {:?}, backups {:?}, complete {:?}",
            view.number, view.primary, view.backups, complete
        ));
        self.state = Durable { view, complete, confirmed: false };
        ctx.storage().put(STATE_KEY, &self.state);
        self.views_made += 1;
        // Tell the members now rather than at their next ping: failover is faster, and a backup
        // that learns the new view early fences the old primary early.
        let msg = PbMsg::ViewIs { view: self.state.view.clone() };
        for member in members {
            ctx.send(member, msg.clone());
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, PbMsg>, from: NodeId, msg: PbMsg) {
        let PbMsg::Ping { view, synced, unreachable } = msg else {
            return; // servers only ping; anything else is not for the view service
        };
        if !self.servers.contains(&from) {
            return;
        }
        let now = ctx.now();
        self.heartbeats.ping(now, from);
        let current = self.state.view.clone();
        if current.primary == Some(from) && view == current.number {
            if synced && !self.state.confirmed {
                // Every backup holds the primary's state: all of them may be promoted from now on.
                self.state.confirmed = true;
                self.state.complete = current.members().into_iter().collect();
                ctx.storage().put(STATE_KEY, &self.state);
            }
            let dropped: Vec<NodeId> = unreachable.into_iter().filter(|b| current.is_backup(*b)).collect();
            if !dropped.is_empty() {
                for backup in &dropped {
                    self.heartbeats.report(now, *backup);
                }
                // Dropping a backup is always safe: the primary stays, and it holds everything.
                let backups = current.backups.iter().copied().filter(|b| !dropped.contains(b)).collect();
                self.change(ctx, current.primary, backups);
            }
        }
        ctx.send(from, PbMsg::ViewIs { view: self.state.view.clone() });
    }

    /// Installs the next view with `primary` and `backups`, keeping the complete servers that stay.
    fn change(&mut self, ctx: &mut Ctx<'_, PbMsg>, primary: Option<NodeId>, backups: Vec<NodeId>) {
        let view = View { number: self.state.view.number + 1, primary, backups };
        let members = view.members();
        let complete = self.state.complete.iter().copied().filter(|c| members.contains(c)).collect();
        self.install(ctx, view, complete);
    }

    pub fn on_tick(&mut self, ctx: &mut Ctx<'_, PbMsg>) {
        ctx.set_timer(Duration::from_millis(self.params.tick_ms), 0);
        let now = ctx.now();
        let view = self.state.view.clone();
        let Some(primary) = view.primary else {
            return; // no view can be made without a complete server; wait for one to come back
        };
        let alive_backups: Vec<NodeId> =
            view.backups.iter().copied().filter(|b| self.heartbeats.alive(now, *b)).collect();
        if !self.heartbeats.alive(now, primary) {
            // Fail over to a backup that holds every acknowledged operation, if one is alive. If
            // none is, promoting anyone would lose acknowledged writes: wait for the primary.
            let Some(successor) = alive_backups.iter().copied().find(|b| self.state.complete.contains(b)) else {
                return;
            };
            let backups = alive_backups.into_iter().filter(|b| *b != successor).collect();
            self.change(ctx, Some(successor), backups);
            return;
        }
        if alive_backups.len() < view.backups.len() {
            self.change(ctx, Some(primary), alive_backups);
            return;
        }
        if !self.state.confirmed {
            return; // one change at a time: let the primary finish state transfer first
        }
        let joining: Vec<NodeId> = self
            .servers
            .iter()
            .copied()
            .filter(|s| !view.members().contains(s) && self.heartbeats.may_rejoin(now, *s))
            .collect();
        if !joining.is_empty() {
            let mut backups = view.backups.clone();
            backups.extend(joining);
            self.change(ctx, Some(primary), backups);
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
}
