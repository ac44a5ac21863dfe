//! The lock server: grants one lease at a time, for `lease_ns` of its own clock, each with a
//! fencing token larger than every token before it (the counter is durable, so a restarted server
//! never hands out a token twice).
//!
//! A restarted server has forgotten who holds the lease, so it grants nothing for one lease
//! duration (Chubby's grace period, Burrows, "The Chubby lock service for loosely-coupled
//! distributed systems", OSDI 2006): any lease it granted before the crash has expired by then, by
//! its own clock.

use super::msg::{LeaseMsg, Token};
use detsim_core::{Ctx, LocalTime, Node, NodeId, Storage, TimerId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Settings of the lock server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockServerParams {
    /// How long a lease lasts, by the server's clock.
    pub lease_ns: u64,
    /// A busy answer tells the client to ask again when the lease runs out, or after this long
    /// if that is sooner (the holder may release it early).
    pub max_retry_in_ns: u64,
}

impl Default for LockServerParams {
    fn default() -> Self {
        LockServerParams { lease_ns: 200_000_000, max_retry_in_ns: 20_000_000 }
    }
}

#[derive(Clone, Debug)]
struct Holder {
    client: NodeId,
    token: Token,
    expires_at: LocalTime,
}

const TOKEN_KEY: &str = "lock/token";

/// The lock server node.
#[derive(Clone, Debug)]
pub struct LockServer {
    params: LockServerParams,
    last_token: Token,
    holder: Option<Holder>,
    /// No grant before this local time (after a restart).
    grace_until: Option<LocalTime>,
    pub grants: u64,
    /// Grants that took over a lease its holder had not released (it expired).
    pub expired_takeovers: u64,
}

impl LockServer {
    pub fn new(params: LockServerParams, storage: &Storage) -> Self {
        let last_token = storage.get(TOKEN_KEY).unwrap_or(0);
        LockServer { params, last_token, holder: None, grace_until: None, grants: 0, expired_takeovers: 0 }
    }

    /// The token of the latest grant.
    pub fn last_token(&self) -> Token {
        self.last_token
    }

    fn acquire(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, from: NodeId, request: u64) {
        let now = ctx.now();
        let lease = Duration::from_nanos(self.params.lease_ns);
        let busy_until = match (&self.holder, self.grace_until) {
            (_, Some(grace)) if now < grace => Some(grace),
            (Some(holder), _) if now < holder.expires_at && holder.client != from => Some(holder.expires_at),
            _ => None,
        };
        if let Some(until) = busy_until {
            let retry_in_ns =
                ((until.as_nanos() - now.as_nanos()).max(1) as u64).min(self.params.max_retry_in_ns.max(1));
            ctx.send(from, LeaseMsg::Busy { request, retry_in_ns });
            return;
        }
        if let Some(old) = self.holder.take() {
            if old.client != from && now >= old.expires_at {
                self.expired_takeovers += 1;
            }
        }
        self.last_token += 1;
        // Durable before use: no token is ever handed out twice.
        ctx.storage().put(TOKEN_KEY, &self.last_token);
        let token = self.last_token;
        self.holder = Some(Holder { client: from, token, expires_at: now + lease });
        self.grants += 1;
        ctx.annotate(format!("lease granted to {from} with token {token} for {} ms", self.params.lease_ns / 1_000_000));
        ctx.send(from, LeaseMsg::Granted { request, token, lease_ns: self.params.lease_ns });
    }
}

impl Node for LockServer {
    type Msg = LeaseMsg;

    fn on_start(&mut self, ctx: &mut Ctx<'_, LeaseMsg>) {
        if self.last_token > 0 {
            // Restarted: a lease granted before the crash may still be running.
            self.grace_until = Some(ctx.now() + Duration::from_nanos(self.params.lease_ns));
            ctx.annotate(format!("lock server restarted: no grants for {} ms", self.params.lease_ns / 1_000_000));
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, LeaseMsg>, from: NodeId, msg: LeaseMsg) {
        match msg {
            LeaseMsg::Acquire { request } => self.acquire(ctx, from, request),
            LeaseMsg::Release { token } if self.holder.as_ref().is_some_and(|h| h.token == token) => {
                self.holder = None;
            }
            _ => {} // not for the lock server
        }
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_, LeaseMsg>, _timer: TimerId, _tag: u64) {}
}
